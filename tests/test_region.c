/* Regions: reservation, placement, halving, faults, release. */
#include "test.h"
#include "vmcode.h"
#include "os/os.h"
#include "region/region.h"
#include "arch/arch.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(reach_rule)
{
    ASSERT(vmc_reaches(0x100000000, 0x100000000 + 0x7fffffff));
    ASSERT(!vmc_reaches(0x100000000, 0x100000000 + 0x80000000));
    ASSERT(vmc_reaches(0x100000000, 0x100000000 - 0x80000000));
    ASSERT(!vmc_reaches(0x100000000, 0x100000000 - 0x80000001));
    /* a 2 GiB region reaches itself; one byte more does not */
    uintptr_t a = 0x200000000;
    ASSERT(vmc_span_reaches(a, a + 0x80000000, a, a + 0x80000000));
    ASSERT(!vmc_span_reaches(a, a + 0x80000001, a, a + 0x80000001));
    /* target below */
    ASSERT(vmc_span_reaches(a, a + 16, a - 0x7ffffff0, a - 0x1000));
    ASSERT(!vmc_span_reaches(a, a + 16, a - 0x80000000 + 15, a - 0x1000));
}

TEST(open_default_reserves_2g_near_the_program)
{
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc_t *v;
    ASSERT_OK(vmc_open(NULL, &v));  /* once, so the library's own text is paged in */
    vmc_close(v);
    size_t rss0 = vt_rss_kib();
    ASSERT_OK(vmc_open(NULL, &v));
    size_t rss1 = vt_rss_kib();
    if (rss1 - rss0 >= 256) fprintf(stderr, "RSS growth at open: %zu KiB\n", rss1 - rss0);
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.code_size, (size_t)2 << 30);
    ASSERT_EQ(in.heap_size, (size_t)1 << 30);
    ASSERT(in.code_wbase == in.code_base);
    ASSERT_EQ(in.w_xor_x, 0);
    uintptr_t b = (uintptr_t)in.code_base;
    ASSERT_MSG(vt_maps_has(b, b + in.code_size, "---p"), "no 2G ---p line at %#lx", (unsigned long)b);
    uintptr_t h = (uintptr_t)in.heap_base;
    ASSERT(vt_maps_has(h, h + in.heap_size, "---p"));
    /* regions do not overlap */
    ASSERT(h + in.heap_size <= b || b + in.code_size <= h);
    if (!vt_sanitized()) ASSERT_LT(rss1 - rss0, 256);  /* ASan's own allocations count too */
    /* >= 90 % reaches the test program's image */
    uintptr_t lo, hi;
    ASSERT_OK(vmc__main_image(&lo, &hi));
    ASSERT_EQ(in.reach_lo, lo);
    ASSERT_EQ(in.reach_hi, hi);
    ASSERT_EQ(in.placement, VMC_PLACED_NEAR_APP);
    ASSERT_GE(in.code_reaching, in.code_size / 10 * 9);
    /* check the claim independently: byte by byte at 64K steps */
    size_t reach = 0;
    for (uintptr_t p = b; p < b + in.code_size; p += 65536)
        if (vmc_span_reaches(p, p + 65536, lo, hi)) reach += 65536;
    ASSERT_GE(reach, in.code_size / 10 * 9);
    ASSERT_GE(reach + 65536, in.code_reaching);
    /* not in the brk area just after the program */
    ASSERT(b + in.code_size <= lo || b >= hi + (128u << 20));
    vmc_close(v);
    ASSERT_NO_LEAK(snap);
}

TEST(open_respects_reach_range)
{
    /* A target range of our own choosing, far from the program. */
    void *p = mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(p != MAP_FAILED);
    char text[128];
    snprintf(text, sizeof text, "-reach_lo %#lx -reach_hi %#lx -vmheap_size 0",
             (unsigned long)p, (unsigned long)p + (1 << 20));
    vmc_t *v = vt_open(text);
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.placement, VMC_PLACED_NEAR_APP);
    ASSERT_EQ(in.reach_lo, (uintptr_t)p);
    ASSERT_GE(in.code_reaching, in.code_size / 10 * 9);
    vmc_close(v);
    munmap(p, 1 << 20);
}

TEST(open_no_near_app_bases_are_random)
{
    uintptr_t bases[32];
    for (int i = 0; i < 32; i++) {
        vmc_t *v = vt_open("-no_near_app -vmheap_size 0 -vm_size 64M");
        vmc_info_t in;
        ASSERT_OK(vmc_info(v, &in));
        ASSERT_EQ(in.placement, VMC_PLACED_VM_BASE);
        bases[i] = (uintptr_t)in.code_base;
        ASSERT_EQ(bases[i] % 4096, 0);
        for (int j = 0; j < i; j++) ASSERT_NE(bases[i], bases[j]);
        vmc_close(v);
    }
}

TEST(open_vm_base_jitter)
{
    /* A fixed base with jitter: every base inside [vm_base, vm_base + offset). */
    uintptr_t want = 0x7e0000000000, seen_or = 0;
    for (int i = 0; i < 16; i++) {
        vmc_t *v = vt_open("-no_near_app -vmheap_size 0 -vm_size 64M -vm_base 0x7e0000000000 "
                             "-vm_max_offset 256M");
        vmc_info_t in;
        ASSERT_OK(vmc_info(v, &in));
        uintptr_t b = (uintptr_t)in.code_base;
        ASSERT_EQ(in.placement, VMC_PLACED_VM_BASE);
        ASSERT_GE(b, want);
        ASSERT_LT(b, want + (256u << 20));
        seen_or |= b ^ want;
        vmc_close(v);
    }
    ASSERT_NE(seen_or, 0);
    vmc_t *v = vt_open("-no_near_app -vmheap_size 0 -vm_size 64M -vm_base 0x7e0000000000 "
                         "-vm_max_offset 0");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ((uintptr_t)in.code_base, want);
    vmc_close(v);
}

TEST(open_vm_base_taken_falls_back)
{
    /* vm_base occupied: step 3 puts the region wherever the kernel likes. */
    void *p = mmap((void *)0x7d0000000000, 1 << 30, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    ASSERT(p == (void *)0x7d0000000000);
    vmc_t *v = vt_open("-no_near_app -vmheap_size 0 -vm_size 64M -vm_base 0x7d0000000000 "
                         "-vm_max_offset 64M");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.placement, VMC_PLACED_ANYWHERE);
    vmc_close(v);
}

/* A kernel older than 4.17 ignores MAP_FIXED_NOREPLACE and treats the address
 * as a hint: simulate it and check nothing lands elsewhere unnoticed. */
static void *hint_only_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if ((flags & MAP_FIXED_NOREPLACE) == MAP_FIXED_NOREPLACE) {
        flags &= ~MAP_FIXED_NOREPLACE;
        addr = NULL;  /* the hint is not taken */
    }
    return mmap(addr, len, prot, flags, fd, off);
}

TEST(open_old_kernel_noreplace_is_a_hint)
{
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc__os_set_call(VMC_OS_MMAP, (void (*)(void))hint_only_mmap);
    vmc_t *v = vt_open("-vmheap_size 0 -vm_size 64M");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.placement, VMC_PLACED_ANYWHERE);
    vmc_close(v);
    vmc__os_set_call(VMC_OS_MMAP, NULL);
    ASSERT_NO_LEAK(snap);
}

TEST(open_under_rlimit_as_halves)
{
    if (vt_sanitized()) SKIP("sanitizer shadow memory does not fit under RLIMIT_AS");
    rlim_t lim = (rlim_t)3 << 29;  /* 1.5 GiB */
    vt_limited_t res = vt_open_limited(lim, "");
    ASSERT_OK(res.r);
    ASSERT(res.alloc_ok);
    ASSERT_LT(res.in.code_size, (size_t)2 << 30);
    ASSERT_GE(res.in.code_size, (size_t)64 << 20);
    ASSERT_EQ(res.in.requested_code_size, (size_t)2 << 30);
    ASSERT_LT(res.in.code_size + res.in.heap_size, (size_t)lim);
    res = vt_open_limited(lim, "-no_allow_smaller");
    ASSERT_EQ(res.r, -ENOMEM);
    ASSERT_STR_CONTAINS(res.msg, "code region: cannot reserve 2G: Cannot allocate memory");
    /* Nothing fits at all: the message names the floor. */
    res = vt_open_limited((rlim_t)32 << 20, "");
    ASSERT_EQ(res.r, -ENOMEM);
    ASSERT_STR_CONTAINS(res.msg, "code region: cannot reserve 2G (nor any half of it down to 64M)");
}

TEST(open_heap_failure_message)
{
    if (vt_sanitized()) SKIP("sanitizer shadow memory does not fit under RLIMIT_AS");
    /* room for a 64M code region, not for a 1G heap without halving */
    vt_limited_t res = vt_open_limited((rlim_t)512 << 20, "-vm_size 64M -no_allow_smaller");
    ASSERT_EQ(res.r, -ENOMEM);
    ASSERT_STR_CONTAINS(res.msg, "heap region: cannot reserve 1G: Cannot allocate memory");
}

/* Fail the k-th call of every kind vmc_open makes, once and for good, until a
 * run sees no injected failure: the result is an error with a message or a
 * working handle, and nothing leaks either way. */
TEST(open_fault_sweep)
{
    static const int kinds[] = {VMC_OS_MMAP, VMC_OS_MUNMAP, VMC_OS_OPEN, VMC_OS_PREAD,
                                VMC_OS_CLOSE, VMC_OS_GETRANDOM};
    static const int errs[] = {ENOMEM, EPERM, EAGAIN, EEXIST};
    const char *texts[] = {"", "-no_near_app", "-no_allow_smaller -vm_size 64M"};
    vt_snapshot_t snap;
    vt_snap(&snap);
    int injected = 0, failures = 0;
    for (size_t t = 0; t < sizeof texts / sizeof *texts; t++)
        for (size_t ki = 0; ki < sizeof kinds / sizeof *kinds; ki++)
            for (size_t ei = 0; ei < sizeof errs / sizeof *errs; ei++)
                for (int persistent = 0; persistent < 2; persistent++)
                    for (unsigned long k = 1;; k++) {
                        vmc_options_t o;
                        vmc_options_init(&o);
                        ASSERT_OK(vmc_options_parse(&o, texts[t]));
                        vmc__os_fault_clear();
                        vmc__os_fault(kinds[ki], k, errs[ei], persistent);
                        vmc_t *v = NULL;
                        int r = vmc_open(&o, &v);
                        unsigned long hit = vmc__os_faults_hit();
                        vmc__os_fault_clear();
                        if (r) {
                            failures++;
                            ASSERT(v == NULL);
                            ASSERT_LT(r, 0);
                            ASSERT_MSG(strlen(vmc_last_error()) > 10, "no message for %d", r);
                        } else {
                            vmc_info_t in;
                            ASSERT_OK(vmc_info(v, &in));
                            ASSERT(in.code_size >= (64u << 20));
                            vmc_close(v);
                        }
                        ASSERT_NO_LEAK(snap);
                        if (!hit) break;
                        injected++;
                        if (k > 64) break;
                    }
    ASSERT_GT(injected, 50);
    ASSERT_GT(failures, 5);
}

TEST(open_persistent_mmap_failure_message)
{
    vmc__os_fault(VMC_OS_MMAP, 1, ENOMEM, 1);
    vmc_t *v;
    int r = vmc_open(NULL, &v);
    vmc__os_fault_clear();
    ASSERT_EQ(r, -ENOMEM);
    ASSERT_STR_EQ(vmc_last_error(),
                  "code region: cannot reserve 2G (nor any half of it down to 64M): Cannot allocate memory");
}

TEST(close_restores_map_many_times)
{
    vt_snapshot_t snap;
    vt_snap(&snap);
    for (int i = 0; i < 50; i++) {
        vmc_t *v;
        ASSERT_OK(vmc_open(NULL, &v));
        vmc_close(v);
    }
    ASSERT_NO_LEAK(snap);
    vmc_close(NULL);
}

TEST(regions_are_prot_none)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT(vt_maps_has((uintptr_t)in.code_base, (uintptr_t)in.code_base + in.code_size, "---p"));
    ASSERT(vt_maps_has((uintptr_t)in.heap_base, (uintptr_t)in.heap_base + in.heap_size, "---p"));
    vmc_close(v);
}

TEST_SIGNAL(unused_code_region_faults, SIGSEGV)
{
    vmc_t *v = vt_open("-vm_size 64M");
    vmc_info_t in;
    vmc_info(v, &in);
    volatile char *p = (char *)in.code_base + 12345;
    *p = 1;
}

/* When the spot right below the program is taken, the free gaps are scored:
 * the region still reaches the program almost entirely, and stays out of
 * the brk area above it. */
TEST(open_near_app_when_below_is_taken)
{
    uintptr_t lo, hi;
    ASSERT_OK(vmc__main_image(&lo, &hi));
    /* take a page right below the program and one 1 GiB further down */
    void *b1 = mmap((void *)(lo - 65536), 4096, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    void *b2 = mmap((void *)(lo - ((uintptr_t)1 << 30)), 4096, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    ASSERT(b1 == (void *)(lo - 65536) && b2 == (void *)(lo - ((uintptr_t)1 << 30)));
    vmc_t *v = vt_open("-vmheap_size 0");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    uintptr_t b = (uintptr_t)in.code_base;
    ASSERT_EQ(in.placement, VMC_PLACED_NEAR_APP);
    ASSERT_EQ(in.code_size, (size_t)2 << 30);
    /* The best free places: right below b2, or above the program past brk
     * plus 128 MiB.  The region takes the better and stays out of brk's way. */
    uintptr_t brk_end = (uintptr_t)sbrk(0) > hi ? (uintptr_t)sbrk(0) : hi;
    uintptr_t above = (brk_end + (128u << 20) + 65535) & ~(uintptr_t)65535;
    uintptr_t below = ((uintptr_t)b2 - in.code_size) & ~(uintptr_t)65535;
    size_t best = vmc__reach_bytes(above, in.code_size, lo, hi);
    if (vmc__reach_bytes(below, in.code_size, lo, hi) > best)
        best = vmc__reach_bytes(below, in.code_size, lo, hi);
    ASSERT_MSG(b + in.code_size <= (uintptr_t)b2 || b >= brk_end + (128u << 20),
               "region %#lx, program %#lx-%#lx, brk %#lx", (unsigned long)b, (unsigned long)lo,
               (unsigned long)hi, (unsigned long)brk_end);
    ASSERT_GE(in.code_reaching + (1u << 20), best);
    ASSERT_EQ(in.code_reaching, vmc__reach_bytes(b, in.code_size, lo, hi));
    vmc_close(v);
    munmap(b1, 4096);
    munmap(b2, 4096);
}
