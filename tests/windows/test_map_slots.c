/* Windows slot fallback (no placeholders, as under Wine 8): file mappings
 * after the first one.  A view there starts on a slot boundary and replaces
 * whole slots, so every mapping has to get a run of whole free slots even
 * when the region's first slot already holds a stub, an allocation or
 * another view; unmapping and mapping again reuses them, and no address in
 * the region ever becomes free. */
#include "test.h"
#include "os/os.h"

#include <windows.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define G ((size_t)64 << 10)

/* A file of three granules, 'a', 'b', 'c'; open for reading. */
static int three_granules(char path[MAX_PATH])
{
    char dir[MAX_PATH];
    ASSERT(GetTempPathA(sizeof dir, dir));
    ASSERT(GetTempFileNameA(dir, "vms", 0, path));
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    static char buf[3 * G];
    for (int i = 0; i < 3; i++) memset(buf + i * G, 'a' + i, G);
    ASSERT_EQ(fwrite(buf, 1, sizeof buf, f), sizeof buf);
    fclose(f);
    int fd = open(path, O_RDONLY | O_BINARY);
    ASSERT(fd >= 0);
    return fd;
}

/* Open in the slot fallback, with slots of `slot` bytes. */
static vmc_t *open_slots(size_t slot)
{
    vmc__os_force_slots(slot);
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.slot_size, slot ? slot : (size_t)640 << 10);
    return v;
}

/* Several views of `fd` into one region (flags) while something else holds
 * its first slot, each one readable; then unmapped and mapped again. */
static void several(vmc_t *v, int fd, int flags, const void *base, size_t size)
{
    void *p[3];
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(vmc_map_file(v, fd, (uint64_t)i * G, G, VMC_OS_READ, flags, &p[i]));
        ASSERT((uintptr_t)p[i] >= (uintptr_t)base && (uintptr_t)p[i] + G <= (uintptr_t)base + size);
        ASSERT_EQ(((char *)p[i])[10], 'a' + i);
    }
    ASSERT(p[0] != p[1] && p[1] != p[2]);
    ASSERT_OK(vmc_unmap_file(v, p[1], G));
    ASSERT_EQ(vt_free_pieces((uintptr_t)base, size), 0);
    void *q;
    ASSERT_OK(vmc_map_file(v, fd, G, 2 * G - 100, VMC_OS_READ, flags, &q));   /* two granules */
    ASSERT_EQ(((char *)q)[10], 'b');
    ASSERT_EQ(((char *)q)[G + 10], 'c');
    ASSERT_OK(vmc_unmap_file(v, q, 2 * G - 100));
    ASSERT_OK(vmc_unmap_file(v, p[0], G));
    ASSERT_OK(vmc_unmap_file(v, p[2], G));
    ASSERT_EQ(vt_free_pieces((uintptr_t)base, size), 0);
    /* everything free again: the same sequence works a second time */
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(vmc_map_file(v, fd, (uint64_t)i * G, G, VMC_OS_READ, flags, &p[i]));
        ASSERT_EQ(((char *)p[i])[G - 1], 'a' + i);
    }
    for (int i = 0; i < 3; i++) ASSERT_OK(vmc_unmap_file(v, p[i], G));
    ASSERT_EQ(vt_free_pieces((uintptr_t)base, size), 0);
}

TEST(win_slots_map_after_a_stub)
{
    char path[MAX_PATH];
    int fd = three_granules(path);
    vmc_t *v = open_slots(0);
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    void *x;
    ASSERT_OK(vmc_stub(v, (uintptr_t)&vt_free_pieces, &x));   /* the code region's first slot */
    several(v, fd, VMC_MAP_REACHABLE, in.code_base, in.code_size);
    vmc_close(v);
    close(fd);
    DeleteFileA(path);
}

TEST(win_slots_map_twice_in_the_heap)
{
    char path[MAX_PATH];
    int fd = three_granules(path);
    vmc_t *v = open_slots(0);
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    void *first;   /* the heap region's first slot holds a view */
    ASSERT_OK(vmc_map_file(v, fd, 0, G, VMC_OS_READ, 0, &first));
    several(v, fd, 0, in.heap_base, in.heap_size);
    ASSERT_OK(vmc_unmap_file(v, first, G));
    /* and an allocation in front of the views */
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 4096, VMC_DATA, &s));
    several(v, fd, 0, in.heap_base, in.heap_size);
    ASSERT_OK(vmc_free(v, s.x));
    vmc_close(v);
    close(fd);
    DeleteFileA(path);
}

/* Slots smaller than a view and an uneven slot size: the view takes several
 * whole slots, and the code allocated after it never lands in them. */
TEST(win_slots_view_over_several_slots)
{
    char path[MAX_PATH];
    int fd = three_granules(path);
    vmc_t *v = open_slots(2 * G);
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    vmc_span_t c;
    ASSERT_OK(vmc_alloc(v, 100, VMC_CODE, &c));
    void *p, *q;
    ASSERT_OK(vmc_map_file(v, fd, 0, 3 * G, VMC_OS_READ, VMC_MAP_REACHABLE, &p));
    ASSERT_EQ(((uintptr_t)p - (uintptr_t)in.code_base) % (2 * G), 0);
    ASSERT_EQ(((char *)p)[2 * G + 1], 'c');
    ASSERT_OK(vmc_map_file(v, fd, G, G, VMC_OS_READ, VMC_MAP_REACHABLE, &q));
    ASSERT_EQ(((uintptr_t)q - (uintptr_t)in.code_base) % (2 * G), 0);
    ASSERT_EQ(((char *)q)[1], 'b');
    vmc_span_t d;
    ASSERT_OK(vmc_alloc(v, 3 * G, VMC_CODE, &d));
    ASSERT((uintptr_t)d.x >= (uintptr_t)p + 4 * G || (uintptr_t)d.x + d.size <= (uintptr_t)p);
    ASSERT_OK(vmc_unmap_file(v, p, 3 * G));
    ASSERT_EQ(vmc_unmap_file(v, q, 2 * G), -EINVAL);   /* the view is one granule, not its slots */
    ASSERT_OK(vmc_unmap_file(v, q, G));
    ASSERT_OK(vmc_map_file(v, fd, 0, 3 * G, VMC_OS_READ, VMC_MAP_REACHABLE, &p));
    ASSERT_EQ(((char *)p)[0], 'a');
    ASSERT_OK(vmc_unmap_file(v, p, 3 * G));
    ASSERT_OK(vmc_free(v, d.x));
    ASSERT_OK(vmc_free(v, c.x));
    ASSERT_EQ(vt_free_pieces((uintptr_t)in.code_base, in.code_size), 0);
    vmc_close(v);
    close(fd);
    DeleteFileA(path);
}
