/* vmc_map_file / vmc_unmap_file: reachable and heap mappings, private and
 * shared, errors with messages, no holes, no leaks, faults. */
#include "test.h"
#include "vmcode.h"
#include "os/os.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

/* A handle whose regions have each had a file mapped once: the block layer
 * maps its own tables at the first run taken, so later snapshots see only
 * what a mapping leaves. */
static vmc_t *open_heap(size_t heap)
{
    vmc_options_t o;
    vmc_options_init(&o);
    o.vmheap_size = heap;
    vmc_t *v = NULL;
    ASSERT_OK(vmc_open(&o, &v));
    int fd = open("/proc/self/exe", O_RDONLY);
    ASSERT(fd >= 0);
    void *p;
    ASSERT_OK(vmc_map_file(v, fd, 0, 4096, PROT_READ, VMC_MAP_REACHABLE, &p));
    ASSERT_OK(vmc_unmap_file(v, p, 4096));
    if (heap) {
        ASSERT_OK(vmc_map_file(v, fd, 0, 4096, PROT_READ, 0, &p));
        ASSERT_OK(vmc_unmap_file(v, p, 4096));
    }
    close(fd);
    return v;
}

/* A temporary file of `pages` pages, page i filled with byte 'a' + i. */
static int temp_file(int pages, char *path, size_t len)
{
    snprintf(path, len, "/tmp/vmc-map-XXXXXX");
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    unlink(path);
    char page[4096];
    for (int i = 0; i < pages; i++) {
        memset(page, 'a' + i, sizeof page);
        ASSERT_EQ(pwrite(fd, page, sizeof page, (off_t)i * 4096), 4096);
    }
    return fd;
}

static int inside(const void *p, const void *base, size_t size)
{
    return (uintptr_t)p >= (uintptr_t)base && (uintptr_t)p - (uintptr_t)base < size;
}

TEST(mapfile_reachable_and_heap_private)
{
    vmc_t *v = open_heap((size_t)64 << 20);
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    char path[64];
    int fd = temp_file(3, path, sizeof path);
    vt_snapshot_t snap;
    vt_snap(&snap);

    void *p, *q;
    ASSERT_OK(vmc_map_file(v, fd, 0, 3 * 4096, PROT_READ, VMC_MAP_REACHABLE, &p));
    ASSERT(inside(p, in.code_base, in.code_size));
    ASSERT_EQ(((char *)p)[0], 'a');
    ASSERT_EQ(((char *)p)[2 * 4096 + 17], 'c');
    ASSERT_OK(vmc_map_file(v, fd, 4096, 100, PROT_READ | PROT_WRITE, 0, &q));
    ASSERT(inside(q, in.heap_base, in.heap_size));
    ASSERT_EQ(((char *)q)[0], 'b');
    ((char *)q)[0] = 'X';  /* private: the file keeps its byte */
    char c;
    ASSERT_EQ(pread(fd, &c, 1, 4096), 1);
    ASSERT_EQ(c, 'b');
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.mapped_files, 2);
    ASSERT_OK(vmc_unmap_file(v, p, 3 * 4096));
    ASSERT_OK(vmc_unmap_file(v, q, 100));
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.mapped_files, 0);
    ASSERT_NO_LEAK(snap);
    uintptr_t b = (uintptr_t)in.code_base;
    ASSERT(vt_maps_has(b, b + in.code_size, "---p"));
    close(fd);
    vmc_close(v);
}

TEST(mapfile_shared_writes_reach_the_file)
{
    vmc_t *v = open_heap((size_t)64 << 20);
    char path[64];
    int fd = temp_file(2, path, sizeof path);
    void *p;
    ASSERT_OK(vmc_map_file(v, fd, 0, 8192, PROT_READ | PROT_WRITE, VMC_MAP_SHARED | VMC_MAP_REACHABLE, &p));
    memcpy((char *)p + 4096, "hello", 5);
    char buf[6] = {0};
    ASSERT_EQ(pread(fd, buf, 5, 4096), 5);
    ASSERT_STR_EQ(buf, "hello");
    ASSERT_OK(vmc_unmap_file(v, p, 8192));
    close(fd);
    vmc_close(v);
}

TEST(mapfile_errors_with_messages_and_no_holes)
{
    vmc_t *v = open_heap(0);
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    char path[64];
    int fd = temp_file(2, path, sizeof path);
    vt_snapshot_t snap;
    vt_snap(&snap);
    void *p = (void *)1;
    ASSERT_EQ(vmc_map_file(v, -1, 0, 4096, PROT_READ, VMC_MAP_REACHABLE, &p), -EBADF);
    ASSERT(p == NULL);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_file: fd -1 is not a descriptor");
    ASSERT_EQ(vmc_map_file(v, 999, 0, 4096, PROT_READ, VMC_MAP_REACHABLE, &p), -EBADF);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_file: fd 999: fstat: Bad file descriptor");
    ASSERT_EQ(vmc_map_file(v, fd, 0, 0, PROT_READ, VMC_MAP_REACHABLE, &p), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_file: size is 0");
    ASSERT_EQ(vmc_map_file(v, fd, 100, 4096, PROT_READ, VMC_MAP_REACHABLE, &p), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_file: offset 0x64 is not a multiple of the page size 0x1000");
    ASSERT_EQ(vmc_map_file(v, fd, 0, 4096, PROT_WRITE | PROT_EXEC, VMC_MAP_REACHABLE, &p), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_file: writable and executable at once is refused");
    ASSERT_EQ(vmc_map_file(v, fd, 0, 4096, PROT_READ, 0x40, &p), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_file: unknown flags 0x40");
    char want[200];
    ASSERT_EQ(vmc_map_file(v, fd, 4096, 8192, PROT_READ, VMC_MAP_REACHABLE, &p), -EINVAL);
    snprintf(want, sizeof want, "vmc_map_file: fd %d: 0x2000 bytes at offset 0x1000 run past the end of the "
             "file (0x2000 bytes)", fd);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_EQ(vmc_map_file(v, fd, 0, 4096, PROT_READ, 0, &p), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_file: there is no heap region (vmheap_size 0); use "
                                    "VMC_MAP_REACHABLE for the code region");
    /* no room: more than the region */
    int big = temp_file(1, path, sizeof path);
    ASSERT_EQ(ftruncate(big, (off_t)in.code_size + 4096), 0);
    ASSERT_EQ(vmc_map_file(v, big, 0, in.code_size + 4096, PROT_READ, VMC_MAP_REACHABLE, &p), -ENOSPC);
    ASSERT_STR_CONTAINS(vmc_last_error(), "vmc_map_file: ");
    close(big);
    /* unmapping what was never mapped, or the wrong size, is an error */
    char *inreg = (char *)in.code_base + (64 << 20);
    ASSERT_EQ(vmc_unmap_file(v, inreg, 4096), -EINVAL);
    snprintf(want, sizeof want, "vmc_unmap_file: %p is not the start of a vmc_map_file mapping", (void *)inreg);
    ASSERT_STR_EQ(vmc_last_error(), want);
    int x;
    ASSERT_EQ(vmc_unmap_file(v, &x, 4096), -EINVAL);
    ASSERT_OK(vmc_map_file(v, fd, 0, 8192, PROT_READ, VMC_MAP_REACHABLE, &p));
    ASSERT_EQ(vmc_unmap_file(v, p, 4096), -EINVAL);
    snprintf(want, sizeof want, "vmc_unmap_file: size 0x1000 does not match the mapping at %p (0x2000 bytes)", p);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_EQ(vmc_unmap_file(v, (char *)p + 4096, 4096), -EINVAL);
    ASSERT_EQ(((char *)p)[4096], 'b');  /* still mapped, whole */
    ASSERT_OK(vmc_unmap_file(v, p, 8192));
    ASSERT_EQ(vmc_unmap_file(v, p, 8192), -EINVAL);  /* twice */
    /* a vmc_alloc block is not a file mapping */
    vmc_span_t sp;
    ASSERT_OK(vmc_alloc(v, 65536, VMC_RDATA, &sp));
    ASSERT_EQ(vmc_unmap_file(v, sp.x, 65536), -EINVAL);
    ASSERT_OK(vmc_free(v, sp.x));
    ASSERT_NO_LEAK(snap);
    close(fd);
    vmc_close(v);
}

TEST(mapfile_mmap_failure_gives_the_run_back)
{
    vmc_t *v = open_heap((size_t)64 << 20);
    char path[64];
    int fd = temp_file(2, path, sizeof path);
    vt_snapshot_t snap;
    vt_snap(&snap);
    void *p;
    vmc__os_fault(VMC_OS_MMAP, 1, ENOMEM, 0);
    ASSERT_EQ(vmc_map_file(v, fd, 0, 8192, PROT_READ, VMC_MAP_REACHABLE, &p), -ENOMEM);
    vmc__os_fault_clear();
    ASSERT_STR_CONTAINS(vmc_last_error(), "mmap of 0x2000 bytes at offset 0x0: Cannot allocate memory");
    vmc__os_fault(VMC_OS_FSTAT, 1, EIO, 0);
    ASSERT_EQ(vmc_map_file(v, fd, 0, 8192, PROT_READ, 0, &p), -EIO);
    vmc__os_fault_clear();
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.mapped_files, 0);
    ASSERT_NO_LEAK(snap);
    /* a mapping read-only from a descriptor opened read-only but shared+write */
    int ro = open("/etc/hostname", O_RDONLY);
    if (ro >= 0) {
        ASSERT_EQ(vmc_map_file(v, ro, 0, 1, PROT_READ | PROT_WRITE, VMC_MAP_SHARED | VMC_MAP_REACHABLE, &p),
                  -EACCES);
        close(ro);
    }
    ASSERT_NO_LEAK(snap);
    close(fd);
    vmc_close(v);
}

TEST(mapfile_close_releases_mappings)
{
    vt_snapshot_t snap;
    char path[64];
    int fd = temp_file(1, path, sizeof path);
    vt_snap(&snap);
    vmc_t *v = open_heap((size_t)64 << 20);
    void *p, *q;
    ASSERT_OK(vmc_map_file(v, fd, 0, 4096, PROT_READ, VMC_MAP_REACHABLE, &p));
    ASSERT_OK(vmc_map_file(v, fd, 0, 4096, PROT_READ, 0, &q));
    vmc_close(v);
    ASSERT_NO_LEAK(snap);
    close(fd);
}

/* The header's portable protection values are Linux's own. */
TEST(mapfile_prot_constants_are_prot_values)
{
    ASSERT_EQ(VMC_PROT_READ, PROT_READ);
    ASSERT_EQ(VMC_PROT_WRITE, PROT_WRITE);
    ASSERT_EQ(VMC_PROT_EXEC, PROT_EXEC);
}
