/* Windows only: what VirtualQuery shows of a reservation while its pieces
 * change (never free address space inside it, never writable and executable
 * at one address), the mode the OS layer chose, and the slot fallback. */
#include "test.h"
#include "os/os.h"

#include <windows.h>

#define G ((size_t)64 << 10)

typedef struct scan { int free, wx, regions; } scan_t;

/* Walk [base, base+len) with VirtualQuery. */
static scan_t scan(uintptr_t base, size_t len)
{
    scan_t s = {0, 0, 0};
    for (uintptr_t a = base; a < base + len;) {
        MEMORY_BASIC_INFORMATION m;
        if (!VirtualQuery((void *)a, &m, sizeof m)) break;
        s.regions++;
        if (m.State == MEM_FREE) s.free++;
        DWORD p = m.Protect & 0xff;
        if (m.State == MEM_COMMIT && (p == PAGE_EXECUTE_READWRITE || p == PAGE_EXECUTE_WRITECOPY)) s.wx++;
        a = (uintptr_t)m.BaseAddress + m.RegionSize;
    }
    return s;
}

#define ASSERT_WHOLE(base, len)                                                       \
    do {                                                                               \
        scan_t s_ = scan(base, len);                                                   \
        ASSERT_MSG(s_.free == 0, "%d free region(s) inside the reservation", s_.free); \
        ASSERT_MSG(s_.wx == 0, "%d writable+executable region(s)", s_.wx);             \
    } while (0)

static HANDLE file_of(int n, int *fd)
{
    FILE *f = tmpfile();
    if (!f) SKIP("no temporary file");
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < G; k++) fputc('a' + i, f);
    fflush(f);
    *fd = fileno(f);
    return (HANDLE)f;
}

/* The same life of a reservation in either mode. */
static void life(size_t size)
{
    int fd;
    file_of(3, &fd);
    uintptr_t base;
    ASSERT_OK(vmc__os_reserve(0, size, &base));
    ASSERT_WHOLE(base, size);
    size_t slot = vmc__os_slot_size() ? vmc__os_slot_size() : G;
    uintptr_t c = base + slot, v = base + 4 * slot;
    ASSERT_OK(vmc__os_commit(c, 2 * G, VMC_OS_READ | VMC_OS_WRITE));
    ASSERT_WHOLE(base, size);
    ASSERT_OK(vmc__os_protect(c, G, VMC_OS_READ | VMC_OS_EXEC));
    ASSERT_WHOLE(base, size);
    ASSERT_OK(vmc__os_map_view(v, 3 * G, VMC_OS_READ, fd, 0, 0));
    ASSERT_EQ(((unsigned char *)v)[2 * G], 'c');
    ASSERT_WHOLE(base, size);
    ASSERT_OK(vmc__os_decommit(v, 3 * G));
    ASSERT_WHOLE(base, size);
    ASSERT_OK(vmc__os_decommit(c, 2 * G));
    ASSERT_WHOLE(base, size);
    /* A view where memory was committed. */
    ASSERT_OK(vmc__os_map_view(c - (c - base) % slot, G, VMC_OS_READ, fd, G, 0));
    ASSERT_WHOLE(base, size);
    ASSERT_OK(vmc__os_release(base, size));
    ASSERT_EQ(scan(base, size).free, scan(base, size).regions);
}

TEST(win_mode_is_what_the_system_has)
{
    /* Wine 8 (and Windows before 1803) reject the placeholder reservation
     * itself; the other calls would ignore the flags. */
    typedef PVOID (WINAPI *va2_t)(HANDLE, PVOID, SIZE_T, ULONG, ULONG, void *, ULONG);
    va2_t va2 = (va2_t)(void (*)(void))GetProcAddress(GetModuleHandleA("kernelbase.dll"),
                                                         "VirtualAlloc2");
    void *p = va2 ? va2(NULL, NULL, G, MEM_RESERVE | 0x00040000, PAGE_NOACCESS, NULL, 0) : NULL;
    if (p) VirtualFree(p, 0, MEM_RELEASE);
    ASSERT_EQ((vmc__os_caps() & ~(VMC_OS_CAP_HANDLES | VMC_OS_CAP_PE)), p ? VMC_OS_CAP_OVERLAY | VMC_OS_CAP_DUAL : VMC_OS_CAP_SLOTS);
    ASSERT_EQ(vmc__os_granularity(), G);
    printf("%s\n", p ? "placeholders" : "slots");
}

TEST(win_reservation_never_has_a_hole)
{
    life(64 * G);
}

TEST(win_pieces_coalesce)
{
    if (vmc__os_caps() & VMC_OS_CAP_SLOTS) SKIP("slot mode: the pieces are the slots");
    uintptr_t base;
    ASSERT_OK(vmc__os_reserve(0, 64 * G, &base));
    for (int i = 0; i < 16; i++) ASSERT_OK(vmc__os_commit(base + (size_t)i * 2 * G, G, VMC_OS_READ));
    ASSERT_GE(scan(base, 64 * G).regions, 32);
    for (int i = 0; i < 16; i++) ASSERT_OK(vmc__os_decommit(base + (size_t)i * 2 * G, G));
    /* All placeholders again, merged into one. */
    ASSERT_EQ(scan(base, 64 * G).regions, 1);
    ASSERT_OK(vmc__os_release(base, 64 * G));
}

TEST(win_slots_fallback)
{
    vmc__os_force_slots(640 << 10);
    ASSERT_EQ((vmc__os_caps() & ~(VMC_OS_CAP_HANDLES | VMC_OS_CAP_PE)), VMC_OS_CAP_SLOTS);
    ASSERT_EQ(vmc__os_slot_size(), 640 << 10);
    life(64 * (640 << 10) + 3 * G);   /* a short last slot */
}

TEST(win_slots_view_needs_a_slot_boundary)
{
    vmc__os_force_slots(4 * G);
    int fd;
    file_of(2, &fd);
    uintptr_t base;
    ASSERT_OK(vmc__os_reserve(0, 32 * G, &base));
    ASSERT_EQ(vmc__os_map_view(base + G, G, VMC_OS_READ, fd, 0, 0), -EINVAL);
    /* A view over committed pages is refused: the range was not reserved. */
    ASSERT_OK(vmc__os_commit(base + 4 * G, G, VMC_OS_READ | VMC_OS_WRITE));
    ASSERT_EQ(vmc__os_map_view(base + 4 * G, G, VMC_OS_READ, fd, 0, 0), -EBUSY);
    ASSERT_WHOLE(base, 32 * G);
    ASSERT_OK(vmc__os_release(base, 32 * G));
}

/* The view's map call fails after the slots were released (as when another
 * thread took the space): every slot is reserved again, none left free. */
TEST(win_slots_failed_view_leaves_no_hole)
{
    vmc__os_force_slots(4 * G);
    int fd;
    file_of(2, &fd);
    uintptr_t base;
    ASSERT_OK(vmc__os_reserve(0, 32 * G, &base));
    vmc__os_fault(VMC_OS_MAPVIEW, 1, EEXIST, 0);
    ASSERT_EQ(vmc__os_map_view(base + 8 * G, 6 * G, VMC_OS_READ, fd, 0, 0), -EBUSY);
    vmc__os_fault_clear();
    ASSERT_WHOLE(base, 32 * G);
    ASSERT_OK(vmc__os_map_view(base + 8 * G, 2 * G, VMC_OS_READ, fd, 0, 0));
    ASSERT_EQ(((unsigned char *)(base + 8 * G))[G], 'b');
    ASSERT_WHOLE(base, 32 * G);
    ASSERT_OK(vmc__os_release(base, 32 * G));
}

TEST(win_fault_detail_is_kept)
{
    uintptr_t base;
    /* More than the address space: a real failure, with its error code. */
    int e = vmc__os_reserve(0, (size_t)1 << 50, &base);
    ASSERT_MSG(e == -ENOMEM || e == -EINVAL, "reserve of 1 PiB: %d", e);
    ASSERT_NE(vmc__os_last_detail(), 0);
}

/* W^X: VirtualQuery over the region and the writable view after each step:
 * pieces committed, written through the writable view and run from the
 * executable one, decommitted (whole, and a range that cuts one refused). */
TEST(win_dual_never_wx)
{
    if (!(vmc__os_caps() & VMC_OS_CAP_DUAL)) SKIP("slot mode: no W^X pairs");
    uintptr_t base, w, x;
    vmc_os_dual_t *d;
    ASSERT_OK(vmc__os_reserve(0, 64 * G, &base));
    x = base + 8 * G;
    ASSERT_OK(vmc__os_dual_map(x, 16 * G, 0, 0, &d, &w));
    ASSERT(vmc__os_holds(w, w + 16 * G));
    ASSERT_WHOLE(base, 64 * G);
    ASSERT_WHOLE(w, 16 * G);
    ASSERT_OK(vmc__os_dual_commit(d, x, 4 * G));
    ASSERT_OK(vmc__os_dual_commit(d, x + 6 * G, 2 * G));
    ASSERT_WHOLE(base, 64 * G);
    ASSERT_WHOLE(w, 16 * G);
    MEMORY_BASIC_INFORMATION m;
    ASSERT(VirtualQuery((void *)x, &m, sizeof m));
    ASSERT_EQ(m.Protect, PAGE_EXECUTE_READ);
    ASSERT_EQ(m.State, MEM_COMMIT);
    ASSERT(VirtualQuery((void *)w, &m, sizeof m));
    ASSERT_EQ(m.Protect, PAGE_READWRITE);
    static const unsigned char ret9[] = {0xb8, 9, 0, 0, 0, 0xc3};   /* mov eax, 9; ret */
    memcpy((void *)(w + 7 * G), ret9, sizeof ret9);
    ASSERT_EQ(((int (*)(void))(x + 7 * G))(), 9);
    /* A piece goes down whole: part of one is refused, nothing changes. */
    ASSERT_EQ(vmc__os_dual_decommit(d, x + 6 * G, G), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "the range cuts a committed piece");
    ASSERT_EQ(((int (*)(void))(x + 7 * G))(), 9);
    ASSERT_OK(vmc__os_dual_decommit(d, x, 4 * G));
    ASSERT(VirtualQuery((void *)x, &m, sizeof m));
    ASSERT_EQ(m.State, MEM_RESERVE);
    ASSERT(VirtualQuery((void *)w, &m, sizeof m));
    ASSERT_EQ(m.State, MEM_RESERVE);
    ASSERT_WHOLE(base, 64 * G);
    ASSERT_WHOLE(w, 16 * G);
    /* Committed again: a new section, zero filled. */
    ASSERT_OK(vmc__os_dual_commit(d, x, 4 * G));
    ASSERT_EQ(*(volatile unsigned char *)(x + G), 0);
    ASSERT_OK(vmc__os_dual_decommit(d, x, 16 * G));
    vmc__os_dual_unmap(d);
    ASSERT(!vmc__os_holds(w, w + 16 * G));
    ASSERT_EQ(scan(w, 16 * G).free, scan(w, 16 * G).regions);   /* the writable view is gone */
    ASSERT_EQ(scan(base, 64 * G).regions, 1);   /* one placeholder again */
    ASSERT_OK(vmc__os_release(base, 64 * G));
}

/* Every Windows call of a pair's life failed in turn, once and for good:
 * -ENOMEM with a message, never a hole or a writable and executable page,
 * and the piece is as it was (a pair can be made, committed and taken down
 * there afterwards). */
TEST(win_dual_faults_leave_the_piece)
{
    if (!(vmc__os_caps() & VMC_OS_CAP_DUAL)) SKIP("slot mode: no W^X pairs");
    static const enum vmc_os_call kinds[] = {VMC_OS_CREATEFILEMAPPING, VMC_OS_MAPVIEW,
                                             VMC_OS_VIRTUALFREE, VMC_OS_VIRTUALALLOC,
                                             VMC_OS_UNMAPVIEW};
    uintptr_t base, w, x;
    ASSERT_OK(vmc__os_reserve(0, 64 * G, &base));
    x = base + 8 * G;
    DWORD handles0;
    GetProcessHandleCount(GetCurrentProcess(), &handles0);
    int hits = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (int persistent = 0; persistent < 2; persistent++)
            for (unsigned long nth = 1; nth <= 4; nth++) {
                vmc_os_dual_t *d = NULL;
                vmc__os_fault(kinds[k], nth, ENOMEM, persistent);
                int e = vmc__os_dual_map(x, 16 * G, 0, 0, &d, &w), e2 = 0;
                if (!e) e = vmc__os_dual_commit(d, x + 2 * G, 2 * G);
                if (!e) e = vmc__os_dual_decommit(d, x + 2 * G, 2 * G);
                int hit = (int)vmc__os_faults_hit();
                hits += hit;
                vmc__os_fault_clear();
                ASSERT_MSG(!e || (e == -ENOMEM && hit), "%s #%lu: %d", vmc__os_call_name(kinds[k]), nth, e);
                if (e) ASSERT_MSG(vmc_last_error()[0], "%s #%lu: no message", vmc__os_call_name(kinds[k]), nth);
                ASSERT_WHOLE(base, 64 * G);
                if (d) {
                    ASSERT_WHOLE(w, 16 * G);
                    /* Whatever was left committed goes; then it all works. */
                    e2 = vmc__os_dual_decommit(d, x, 16 * G);
                    ASSERT_MSG(e2 == 0, "%s #%lu: decommit after: %s", vmc__os_call_name(kinds[k]), nth,
                               vmc_last_error());
                    ASSERT_OK(vmc__os_dual_commit(d, x + 2 * G, 2 * G));
                    ASSERT_OK(vmc__os_dual_decommit(d, x + 2 * G, 2 * G));
                    vmc__os_dual_unmap(d);
                }
                DWORD handles;
                GetProcessHandleCount(GetCurrentProcess(), &handles);
                ASSERT_MSG(handles == handles0, "%s #%lu: %lu handles, %lu before", vmc__os_call_name(kinds[k]),
                           nth, (unsigned long)handles, (unsigned long)handles0);
            }
    ASSERT_GT(hits, 10);
    ASSERT_EQ(scan(base, 64 * G).regions, 1);   /* one placeholder again */
    ASSERT_OK(vmc__os_release(base, 64 * G));
}
