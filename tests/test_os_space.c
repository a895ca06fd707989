/* The OS layer's address-space verbs (os.h), on every system: what a user of
 * the contract may rely on, checked by behaviour (contents, what a second
 * reservation at the same place gets), not by how a system records it. */
#include "test.h"
#include "os/os.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>

static size_t G(void) { return vmc__os_granularity(); }
/* A reservation held as the region layer holds its own (the MAP_FIXED
 * audit is on in tests), and its release. */
static void reserve(uintptr_t at, size_t len, uintptr_t *out)
{
    ASSERT_OK(vmc__os_reserve(at, len, out));
    vmc__os_hold(*out, *out + len);
}

static void release(uintptr_t base, size_t len)
{
    vmc__os_unhold(base, base + len);
    ASSERT_OK(vmc__os_release(base, len));
}

/* Where views may start: a slot boundary in the Windows fallback. */
static size_t U(void) { return vmc__os_slot_size() ? vmc__os_slot_size() : G(); }

TEST(os_space_commit_decommit_zeroes)
{
    uintptr_t base;
    reserve(0, 16 * G(), &base);
    ASSERT_EQ(base % G(), 0);
    uintptr_t a = base + 4 * G();
    ASSERT_OK(vmc__os_commit(a, 4 * G(), VMC_OS_READ | VMC_OS_WRITE));
    memset((void *)a, 0xab, 4 * G());
    /* Committing again (a neighbour, and pages already committed) keeps them. */
    ASSERT_OK(vmc__os_commit(a + 4 * G(), G(), VMC_OS_READ | VMC_OS_WRITE));
    ASSERT_OK(vmc__os_commit(a, 5 * G(), VMC_OS_READ | VMC_OS_WRITE));
    ASSERT_EQ(((unsigned char *)a)[4 * G() - 1], 0xab);
    ASSERT_EQ(((unsigned char *)a)[4 * G()], 0);
    ASSERT_OK(vmc__os_decommit(a, 5 * G()));
    ASSERT_OK(vmc__os_commit(a + G(), G(), VMC_OS_READ | VMC_OS_WRITE));
    ASSERT_EQ(((unsigned char *)a)[G()], 0);
    /* Part of a committed range back, then the rest. */
    ASSERT_OK(vmc__os_commit(a, 4 * G(), VMC_OS_READ | VMC_OS_WRITE));
    ASSERT_OK(vmc__os_decommit(a + G(), G()));
    ASSERT_OK(vmc__os_decommit(a, 4 * G()));
    release(base, 16 * G());
}

TEST(os_space_reserve_at_taken_is_eexist)
{
    uintptr_t base, again;
    reserve(0, 8 * G(), &base);
    ASSERT_EQ(vmc__os_reserve(base + 2 * G(), 2 * G(), &again), -EEXIST);
    release(base, 8 * G());
    /* Released means free: the same place can be reserved again. */
    reserve(base, 8 * G(), &again);
    ASSERT_EQ(again, base);
    release(base, 8 * G());
}

TEST(os_space_unaligned_is_einval)
{
    uintptr_t base;
    if (G() > 4096) ASSERT_EQ(vmc__os_reserve(0, G() + 4096, &base), -EINVAL);
    reserve(0, 4 * G(), &base);
    if (G() > 4096) ASSERT_EQ(vmc__os_commit(base + 4096, G(), VMC_OS_READ), -EINVAL);
    if (G() > 4096)  /* Linux's mprotect does not know whose reservation it is */
        ASSERT_EQ(vmc__os_commit(base + 8 * G(), G(), VMC_OS_READ), -EINVAL);
    release(base, 4 * G());
}

/* Protection is page granular, though reservations and commits are granule
 * granular: one page in the middle of a committed granule becomes read-only
 * and its neighbours stay writable (a DLL's 4 KiB sections each get their
 * own protection). */
static size_t unit(void) { return G() > 4 * vmc__os_page_size() ? G() : 4 * vmc__os_page_size(); }

static uintptr_t protect_middle_page(uintptr_t *base)
{
    size_t pg = vmc__os_page_size();
    reserve(0, 4 * unit(), base);
    uintptr_t a = *base + unit();
    ASSERT_OK(vmc__os_commit(a, unit(), VMC_OS_READ | VMC_OS_WRITE));
    ((unsigned char *)a)[pg] = 7;
    ASSERT_OK(vmc__os_protect(a + pg, pg, VMC_OS_READ));
    ASSERT_EQ(vmc__os_protect(a + pg + 1, pg, VMC_OS_READ), -EINVAL);
    ((unsigned char *)a)[pg - 1] = 1;       /* the page before */
    ((unsigned char *)a)[2 * pg] = 2;       /* the page after */
    ASSERT_EQ(((unsigned char *)a)[pg], 7);
    return a + pg;
}

TEST(os_space_protect_is_page_granular)
{
    uintptr_t base;
    uintptr_t p = protect_middle_page(&base);
    ASSERT_OK(vmc__os_protect(p, vmc__os_page_size(), VMC_OS_READ | VMC_OS_WRITE));
    ((unsigned char *)p)[0] = 8;
    release(base, 4 * unit());
}

TEST_SIGNAL(os_space_protected_page_faults_on_write, SIGSEGV)
{
    uintptr_t base;
    uintptr_t p = protect_middle_page(&base);
    *(volatile unsigned char *)p = 9;
}

/* A file of n granules, granule i filled with the byte 'a' + i. */
static FILE *granule_file(int n)
{
    FILE *f = tmpfile();
    if (!f) SKIP("no temporary file");
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < G(); k++) fputc('a' + i, f);
    fflush(f);
    return f;
}

TEST(os_space_file_view_and_back)
{
    FILE *f = granule_file(3);
    int fd = fileno(f);
    uintptr_t base;
    reserve(0, 32 * U(), &base);
    uintptr_t at = base + 8 * U();
    ASSERT_OK(vmc__os_map_view(at, 2 * G(), VMC_OS_READ, fd, G(), 0));
    ASSERT_EQ(((unsigned char *)at)[0], 'b');
    ASSERT_EQ(((unsigned char *)at)[2 * G() - 1], 'c');
    /* A private writable view: writes stay in memory. */
    uintptr_t at2 = base + 16 * U();
    ASSERT_OK(vmc__os_map_view(at2, G(), VMC_OS_READ | VMC_OS_WRITE, fd, 0, 0));
    ((unsigned char *)at2)[0] = 'z';
    ASSERT_EQ(((unsigned char *)at2)[1], 'a');
    /* Back to reserved, then committed memory in the same place. */
    ASSERT_OK(vmc__os_decommit(at, 2 * G()));
    ASSERT_OK(vmc__os_decommit(at2, G()));
    ASSERT_OK(vmc__os_commit(at, 2 * G(), VMC_OS_READ | VMC_OS_WRITE));
    ASSERT_EQ(((unsigned char *)at)[0], 0);
    ASSERT_OK(vmc__os_decommit(at, 2 * G()));
    /* And a view again where memory was. */
    ASSERT_OK(vmc__os_map_view(at, G(), VMC_OS_READ, fd, 2 * G(), 0));
    ASSERT_EQ(((unsigned char *)at)[5], 'c');
    fseek(f, 0, SEEK_SET);
    fputc('Q', f);
    fflush(f);
    release(base, 32 * U());
    fclose(f);
}

/* Every call the verbs make, failed in turn: the verb reports it, and the
 * range is as it was (committing afterwards gives zeroed memory, and the
 * reservation releases). */
TEST(os_space_faults_change_nothing)
{
    static const enum vmc_os_call kinds[] = {VMC_OS_MMAP, VMC_OS_MPROTECT, VMC_OS_VIRTUALALLOC,
                                             VMC_OS_VIRTUALFREE, VMC_OS_MAPVIEW,
                                             VMC_OS_CREATEFILEMAPPING, VMC_OS_UNMAPVIEW};
    FILE *f = granule_file(2);
    int hit_any = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        for (unsigned long nth = 1; nth < 6; nth++) {
            uintptr_t base;
            reserve(0, 16 * U(), &base);
            uintptr_t a = base + 2 * G(), v = base + 8 * U();
            vmc__os_fault(kinds[k], nth, ENOMEM, 0);
            int e1 = vmc__os_commit(a, 2 * G(), VMC_OS_READ | VMC_OS_WRITE);
            if (!e1) ((unsigned char *)a)[0] = 1;
            int e2 = vmc__os_map_view(v, G(), VMC_OS_READ, fileno(f), 0, 0);
            int e3 = e1 ? 0 : vmc__os_decommit(a, 2 * G());
            int e4 = e2 ? 0 : vmc__os_decommit(v, G());
            unsigned long hit = vmc__os_faults_hit();
            vmc__os_fault_clear();
            if (hit) hit_any = 1;
            ASSERT_MSG(!e1 || e1 == -ENOMEM, "%s #%lu: commit %d", vmc__os_call_name(kinds[k]), nth, e1);
            ASSERT_MSG(!e2 || e2 == -ENOMEM, "%s #%lu: view %d", vmc__os_call_name(kinds[k]), nth, e2);
            /* A failure is always the injected one; an injected failure may
             * also be absorbed (merging free neighbours is an optimisation). */
            ASSERT_MSG(!(e1 || e2 || e3 || e4) || hit > 0, "%s #%lu: %lu faults, results %d %d %d %d",
                       vmc__os_call_name(kinds[k]), nth, hit, e1, e2, e3, e4);
            /* Whatever failed, the pieces can be used again. */
            if (!e3) {
                ASSERT_OK(vmc__os_commit(a, 2 * G(), VMC_OS_READ | VMC_OS_WRITE));
                ASSERT_EQ(((unsigned char *)a)[0], 0);
                ASSERT_OK(vmc__os_decommit(a, 2 * G()));
            }
            if (!e4) {
                ASSERT_OK(vmc__os_map_view(v, G(), VMC_OS_READ, fileno(f), 0, 0));
                ASSERT_EQ(((unsigned char *)v)[0], 'a');
            }
            release(base, 16 * U());
            uintptr_t again;
            reserve(base, 16 * U(), &again);
            release(base, 16 * U());
        }
    }
    ASSERT(hit_any);
    fclose(f);
}

/* W^X pairs: code written through one view runs from the other. */
TEST(os_space_dual_views_run_what_was_written)
{
    uintptr_t base, w;
    reserve(0, 16 * U(), &base);
    uintptr_t x = base + 4 * U();
    vmc_os_dual_t *d;
    int e = vmc__os_dual_map(x, 2 * G(), 0, 0, &d, &w);
    if (e == -ENOTSUP) {
        ASSERT(!(vmc__os_caps() & VMC_OS_CAP_DUAL));
        SKIP("no W^X pairs in the Windows slot fallback");
    }
    ASSERT_OK(e);
    ASSERT(vmc__os_caps() & VMC_OS_CAP_DUAL);
    ASSERT(w < base || w >= base + 16 * U());
    ASSERT_OK(vmc__os_dual_commit(d, x + G(), G()));
    static const unsigned char ret42[] = {0xb8, 42, 0, 0, 0, 0xc3};   /* mov eax, 42; ret */
    memcpy((void *)(w + G()), ret42, sizeof ret42);
    int (*fn)(void) = (int (*)(void))(x + G());
    ASSERT_EQ(fn(), 42);
    ASSERT_EQ(vmc__os_dual_commit(d, base, G()), -EINVAL);   /* not in the pair */
    /* The rest of the executable side is the caller's (private memory
     * here), and a decommit of the pair takes both kinds back. */
    ASSERT_OK(vmc__os_commit(x, G(), VMC_OS_READ | VMC_OS_WRITE));
    ((unsigned char *)x)[0] = 1;
    ASSERT_OK(vmc__os_dual_decommit(d, x, 2 * G()));
    vmc__os_dual_unmap(d);
    /* Reserved again: memory can be committed there, zero filled. */
    ASSERT_OK(vmc__os_commit(x + G(), G(), VMC_OS_READ | VMC_OS_WRITE));
    ASSERT_EQ(((unsigned char *)x)[G()], 0);
    release(base, 16 * U());
}

/* A pair around a hole (a -no-pie program's brk heap inside the code
 * region's span): the executable side is two reservations, the writable
 * side one, at one offset from both; code runs on both sides; nothing of
 * the pair goes into the hole, where other memory lives (here a reservation
 * that is not held, with a page of data). */
TEST(os_space_dual_views_around_a_hole)
{
    uintptr_t base, lo, hi, other, w;
    reserve(0, 16 * G(), &base);
    release(base, 16 * G());
    reserve(base, 6 * G(), &lo);
    reserve(base + 10 * G(), 6 * G(), &hi);
    uintptr_t hole = base + 6 * G(), hole_end = base + 10 * G();
    ASSERT_OK(vmc__os_reserve(hole, 4 * G(), &other));
    ASSERT_OK(vmc__os_commit(hole + G(), G(), VMC_OS_READ | VMC_OS_WRITE));
    memset((void *)(hole + G()), 0x5a, G());
    vmc_os_dual_t *d;
    int e = vmc__os_dual_map(base, 16 * G(), hole, hole_end, &d, &w);
    if (e == -ENOTSUP) {
        ASSERT(!(vmc__os_caps() & VMC_OS_CAP_DUAL));
        SKIP("no W^X pairs in the Windows slot fallback");
    }
    ASSERT_OK(e);
    ASSERT(w + 16 * G() <= base || w >= base + 16 * G());
    uintptr_t a = base + G(), b = hole_end + 2 * G();
    ASSERT_OK(vmc__os_dual_commit(d, a, G()));
    ASSERT_OK(vmc__os_dual_commit(d, b, G()));
    static const unsigned char ret42[] = {0xb8, 42, 0, 0, 0, 0xc3}, ret43[] = {0xb8, 43, 0, 0, 0, 0xc3};
    memcpy((void *)(w + (a - base)), ret42, sizeof ret42);
    memcpy((void *)(w + (b - base)), ret43, sizeof ret43);
    int (*fa)(void) = (int (*)(void))a, (*fb)(void) = (int (*)(void))b;
    ASSERT_EQ(fa(), 42);
    ASSERT_EQ(fb(), 43);
    /* The hole, or a range that meets it, is refused by name. */
    char want[256];
    ASSERT_EQ(vmc__os_dual_commit(d, hole, G()), -EINVAL);
    snprintf(want, sizeof want, "cannot commit %#zx bytes at %#llx: the range meets the hole "
             "%#llx-%#llx, which is not the W^X pair's", G(), (unsigned long long)hole,
             (unsigned long long)hole, (unsigned long long)hole_end);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_EQ(vmc__os_dual_commit(d, hole - G(), 2 * G()), -EINVAL);
    ASSERT_EQ(vmc__os_dual_commit(d, hole_end - G(), 2 * G()), -EINVAL);
    ASSERT_EQ(vmc__os_dual_decommit(d, base, 16 * G()), -EINVAL);
    snprintf(want, sizeof want, "cannot decommit %#zx bytes at %#llx: the range meets the hole "
             "%#llx-%#llx, which is not the W^X pair's", 16 * G(), (unsigned long long)base,
             (unsigned long long)hole, (unsigned long long)hole_end);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_EQ(fa(), 42);
    ASSERT_EQ(fb(), 43);
    for (size_t i = 0; i < G(); i++) ASSERT_EQ(((unsigned char *)hole)[G() + i], 0x5a);
    /* Each side goes back whole. */
    ASSERT_OK(vmc__os_dual_decommit(d, base, 6 * G()));
    ASSERT_OK(vmc__os_dual_decommit(d, hole_end, 6 * G()));
    vmc__os_dual_unmap(d);
    ASSERT_OK(vmc__os_commit(b, G(), VMC_OS_READ | VMC_OS_WRITE));
    ASSERT_EQ(((unsigned char *)b)[0], 0);
    ASSERT_EQ(((unsigned char *)hole)[G()], 0x5a);
    /* A hole that is not strictly inside, or not whole granules. */
    static const uintptr_t bad[][2] = {{0, 6}, {6, 16}, {6, 17}, {10, 6}, {6, 6}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uintptr_t h0 = bad[i][0] ? base + bad[i][0] * G() : base, h1 = base + bad[i][1] * G();
        ASSERT_EQ(vmc__os_dual_map(base, 16 * G(), h0, h1, &d, &w), -EINVAL);
        ASSERT_STR_CONTAINS(vmc_last_error(), "the W^X pair's hole");
    }
    ASSERT_EQ(vmc__os_dual_map(base, 16 * G(), hole + G() / 2, hole_end, &d, &w), -EINVAL);
    release(lo, 6 * G());
    release(hi, 6 * G());
    ASSERT_OK(vmc__os_release(other, 4 * G()));
}

/* vmc_info says which unit and which mode the OS layer works in. */
TEST(os_space_info_reports_block_and_slot)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.block_size, G());
    ASSERT_EQ(in.slot_size, vmc__os_slot_size());
    if (!(vmc__os_caps() & VMC_OS_CAP_SLOTS)) ASSERT_EQ(in.slot_size, 0);
    vmc_close(v);
}

/* The process id and the auxiliary vector through the OS contract: the
 * kernel's page size is there on Linux, an entry it never passes is
 * -ENOENT; Windows has no auxiliary vector (-ENOTSUP). */
TEST(os_space_pid_and_auxiliary_vector)
{
    ASSERT(vmc__os_pid() > 0);
    ASSERT_EQ(vmc__os_pid(), vmc__os_pid());
    unsigned long v = 7;
#ifdef _WIN32
    ASSERT_EQ(vmc__os_auxval(6, &v), -ENOTSUP);
    ASSERT(vmc__os_caps() & VMC_OS_CAP_HANDLES);
    ASSERT_STR_EQ(vmc__os_handle_size_call(), "GetFileSizeEx");
#else
    ASSERT_EQ(vmc__os_auxval(6 /* AT_PAGESZ */, &v), 0);
    ASSERT_EQ(v, (unsigned long)vmc__os_page_size());
    v = 7;
    ASSERT_EQ(vmc__os_auxval(0x7fff, &v), -ENOENT);
    ASSERT_EQ(v, 7);
    ASSERT(!(vmc__os_caps() & VMC_OS_CAP_HANDLES));
#endif
}

/* A path for a descriptor, and the program's own file. */
TEST(os_space_fd_path_and_self_exe)
{
    char buf[64];
#ifdef _WIN32
    ASSERT_EQ(vmc__os_fd_path(0, buf, sizeof buf), -ENOTSUP);
    ASSERT(!vmc__os_self_exe_path());
#else
    int fd;
    ASSERT_OK(vmc__os_open("/dev/null", O_RDONLY, 0, &fd));
    ASSERT_OK(vmc__os_fd_path(fd, buf, sizeof buf));
    char want[64];
    snprintf(want, sizeof want, "/proc/%ld/fd/%d", vmc__os_pid(), fd);
    ASSERT_STR_EQ(buf, want);
    ASSERT_EQ(vmc__os_fd_path(fd, buf, 8), -ENAMETOOLONG);
    vmc__os_close(fd);
    int exe;
    ASSERT_OK(vmc__os_open(vmc__os_self_exe_path(), O_RDONLY, 0, &exe));
    vmc__os_close(exe);
#endif
}
