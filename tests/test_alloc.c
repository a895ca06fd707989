/* The code heap: vmc_alloc, vmc_alloc_reaching, vmc_free, stubs, stats. */
#include "test.h"
#include "vmcode.h"
#include "os/os.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* mov eax, imm32; ret */
static void emit_ret_imm(void *w, uint32_t imm)
{
    unsigned char *p = w;
    p[0] = 0xb8;
    memcpy(p + 1, &imm, 4);
    p[5] = 0xc3;
}

typedef int (*fn_t)(void);

static int in_range(const void *p, size_t n, const void *base, size_t size)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    return a >= b && n <= size && a - b <= size - n;
}

TEST(alloc_kinds_sizes_alignment)
{
    vmc_t *v = vt_open("-vm_size 256M -vmheap_size 256M");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    static const size_t sizes[] = {1, 15, 16, 17, 63, 64, 65, 100, 1000, 1024, 1025, 3000, 4095,
                                   4096, 4097, 8192, 8193, 65536, 100000, 1 << 20};
    for (int kind = VMC_CODE; kind <= VMC_DATA; kind++) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            vmc_span_t s;
            ASSERT_OK(vmc_alloc(v, sizes[i], kind, &s));
            ASSERT_GE(s.size, sizes[i]);
            ASSERT_EQ((uintptr_t)s.x % 16, 0);
            if (sizes[i] >= 4096) ASSERT_EQ((uintptr_t)s.x % 4096, 0);
            if (kind == VMC_DATA) ASSERT(in_range(s.x, s.size, in.heap_base, in.heap_size));
            else ASSERT(in_range(s.x, s.size, in.code_base, in.code_size));
            ASSERT(s.w == s.x);  /* no W^X */
            memset(s.w, 0x5a, s.size);
            if (kind == VMC_CODE) {
                emit_ret_imm(s.w, (uint32_t)(i * 7 + 3));
                ASSERT_EQ(((fn_t)s.x)(), (int)(i * 7 + 3));
            }
            ASSERT_OK(vmc_free(v, s.x));
        }
    }
    vmc_span_t s;
    ASSERT_EQ(vmc_alloc(v, 64, 9, &s), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "kind 9 is not VMC_CODE, VMC_RDATA or VMC_DATA");
    ASSERT_EQ(vmc_alloc(v, (size_t)3 << 30, VMC_CODE, &s), -ENOSPC);
    ASSERT_OK(vmc_alloc(v, 0, VMC_CODE, &s));
    ASSERT_OK(vmc_free(v, s.x));
    vmc_close(v);
}

TEST(free_rejects_bad_pointers)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    vmc_span_t a, big;
    ASSERT_OK(vmc_alloc(v, 100, VMC_CODE, &a));
    ASSERT_OK(vmc_alloc(v, 50000, VMC_RDATA, &big));
    ASSERT_EQ(vmc_free(v, (char *)a.x + 16), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "is not the start of an allocation");
    ASSERT_OK(vmc_free(v, a.x));
    ASSERT_EQ(vmc_free(v, a.x), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "is not allocated (freed twice?)");
    int local;
    ASSERT_EQ(vmc_free(v, &local), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "is not inside either region");
    ASSERT_EQ(vmc_free(v, (char *)big.x + 4096), -EINVAL);
    ASSERT_OK(vmc_free(v, big.x));
    ASSERT_EQ(vmc_free(v, big.x), -EINVAL);
    ASSERT_OK(vmc_free(v, NULL));
    vmc_close(v);
}

TEST(alloc_no_heap_region)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0");
    vmc_span_t s;
    ASSERT_EQ(vmc_alloc(v, 64, VMC_DATA, &s), -ENOSPC);
    ASSERT_STR_CONTAINS(vmc_last_error(), "heap region: there is none (-vmheap_size 0)");
    ASSERT_EQ(vmc_alloc(v, 1 << 20, VMC_DATA, &s), -ENOSPC);
    vmc_close(v);
}

TEST(writable_executable_translate)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    vmc_span_t c, r, d;
    ASSERT_OK(vmc_alloc(v, 128, VMC_CODE, &c));
    ASSERT_OK(vmc_alloc(v, 128, VMC_RDATA, &r));
    ASSERT_OK(vmc_alloc(v, 128, VMC_DATA, &d));
    ASSERT(vmc_writable(v, c.x) == c.w);
    ASSERT(vmc_executable(v, c.w) == c.x);
    ASSERT(vmc_writable(v, (char *)c.x + 5) == (char *)c.w + 5);
    ASSERT(vmc_writable(v, r.x) == r.x);
    ASSERT(vmc_executable(v, r.x) == NULL);
    ASSERT(vmc_writable(v, d.x) == d.x);
    ASSERT(vmc_executable(v, d.x) == NULL);
    int local;
    ASSERT(vmc_writable(v, &local) == NULL);
    vmc_info_t in;
    vmc_info(v, &in);
    ASSERT(vmc_writable(v, (char *)in.code_base + in.code_size - 4096) == NULL);
    ASSERT_OK(vmc_free(v, c.x));
    ASSERT(vmc_writable(v, c.x) == NULL);
    vmc_close(v);
}

TEST(stats_count_truthfully)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.allocations, 0);
    ASSERT_EQ(st.code_used, 0);
    ASSERT_EQ(st.code_committed, 0);
    ASSERT_EQ(st.code_largest_free, 64 << 20);
    ASSERT_EQ(st.code_size, 64 << 20);
    vmc_span_t s[10], big, d;
    for (int i = 0; i < 10; i++) ASSERT_OK(vmc_alloc(v, 100, VMC_CODE, &s[i]));
    ASSERT_OK(vmc_alloc(v, 100000, VMC_CODE, &big));
    ASSERT_OK(vmc_alloc(v, 64, VMC_DATA, &d));
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.allocations, 12);
    ASSERT_EQ(st.code_used, 10 * 128 + 102400);
    ASSERT_EQ(st.code_committed, (1 << 20) + 102400);
    ASSERT_EQ(st.code_largest_free, (64 << 20) - (1 << 20) - 102400);
    ASSERT_EQ(st.heap_used, 64);
    ASSERT_EQ(st.heap_committed, 1 << 20);
    for (int i = 0; i < 10; i++) ASSERT_OK(vmc_free(v, s[i].x));
    ASSERT_OK(vmc_free(v, big.x));
    ASSERT_OK(vmc_free(v, d.x));
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.allocations, 0);
    ASSERT_EQ(st.code_used, 0);
    vmc_close(v);
}

TEST(many_small_allocations_few_vmas)
{
    vmc_t *v = vt_open("");
    int before = vt_maps_count(NULL);
    static vmc_span_t s[20000];
    for (int i = 0; i < 20000; i++) {
        int kind = i % 3 == 0 ? VMC_CODE : i % 3 == 1 ? VMC_RDATA : VMC_DATA;
        ASSERT_OK(vmc_alloc(v, 32 + (size_t)(i * 37) % 2000, kind, &s[i]));
    }
    int after = vt_maps_count(NULL);
    ASSERT_LT(after - before, 100);
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.allocations, 20000);
    vmc_close(v);
}

/* After warming up, small alloc/free pairs make no system call at all. */
TEST(fast_path_makes_no_syscalls)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    vmc_span_t s[256];
    for (int round = 0; round < 2; round++) {
        if (round == 1) vmc__os_calls_reset();
        for (int i = 0; i < 256; i++) ASSERT_OK(vmc_alloc(v, 64 + (size_t)i * 8, i % 2 ? VMC_CODE : VMC_DATA, &s[i]));
        for (int i = 0; i < 256; i++) ASSERT_OK(vmc_free(v, s[i].x));
    }
    for (int k = 0; k < VMC_OS_CALL_COUNT; k++)
        ASSERT_MSG(vmc__os_calls(k) == 0, "%lu calls of %s on the fast path", vmc__os_calls(k),
                   vmc__os_call_name(k));
    vmc_close(v);
}

/* Alternating alloc/free at a chunk boundary does not commit and decommit
 * each time. */
TEST(decommit_has_hysteresis)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0");
    vmc_span_t a;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &a));  /* the first chunk is committed */
    ASSERT_OK(vmc_free(v, a.x));
    vmc__os_calls_reset();
    for (int i = 0; i < 1000; i++) {
        ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &a));
        ASSERT_OK(vmc_free(v, a.x));
    }
    ASSERT_EQ(vmc__os_calls(VMC_OS_MPROTECT) + vmc__os_calls(VMC_OS_MMAP), 0);
    /* fill 8 MiB with one class, free everything: what stays committed is
     * at most four wholly free chunks, kept for reuse and counted as free */
    static vmc_span_t s[16384];
    for (int i = 0; i < 16384; i++) ASSERT_OK(vmc_alloc(v, 512, VMC_CODE, &s[i]));
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_GE(st.code_committed, 8 << 20);
    for (int i = 0; i < 16384; i++) ASSERT_OK(vmc_free(v, s[i].x));
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_LE(st.code_committed, 4 << 20);
    ASSERT_EQ(st.code_largest_free, 64 << 20);
    vmc_close(v);
}

TEST(full_region_enospc_keeps_code)
{
    vmc_t *v = vt_open("-vm_size 16M -vmheap_size 0 -no_allow_smaller");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.code_size, 16 << 20);
    static void *code[100000];
    int n = 0, e = 0;
    size_t sizes[] = {64, 200, 1000, 3000, 20000};
    for (;;) {
        vmc_span_t s;
        e = vmc_alloc(v, sizes[n % 5], VMC_CODE, &s);
        if (e) break;
        ASSERT(in_range(s.x, s.size, in.code_base, in.code_size));
        emit_ret_imm(s.w, (uint32_t)n);
        code[n++] = s.x;
        ASSERT_LT(n, 100000);
    }
    ASSERT_EQ(e, -ENOSPC);
    ASSERT_STR_CONTAINS(vmc_last_error(), "code region full: asked for ");
    ASSERT_STR_CONTAINS(vmc_last_error(), "largest free run is ");
    ASSERT_GT(n, 1000);
    for (int i = 0; i < n; i++) ASSERT_EQ(((fn_t)code[i])(), i);
    /* nothing spilled outside: every mapping added is inside the region */
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_LE(st.code_committed, 16 << 20);
    /* freeing makes room again */
    for (int i = 0; i < n; i += 2) ASSERT_OK(vmc_free(v, code[i]));
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &s));
    for (int i = 1; i < n; i += 2) ASSERT_EQ(((fn_t)code[i])(), i);
    vmc_close(v);
}

/* Injected commit failures: the error comes back with a message, nothing
 * leaks, and the next allocation works.  With the fault armed for good,
 * allocations go on succeeding from chunks already committed until one needs
 * a new chunk: that one must fail and leave no trace. */
TEST(alloc_commit_faults_leave_no_trace)
{
    static const int kinds[] = {VMC_CODE, VMC_RDATA, VMC_DATA};
    static const size_t sizes[] = {64, 4096, 100000};
    static const int errs[] = {ENOMEM, EAGAIN, EPERM};
    static void *got[40000];
    int injected = 0;
    for (size_t k = 0; k < 3; k++)
        for (size_t z = 0; z < 3; z++)
            for (size_t er = 0; er < 3; er++) {
                vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
                vmc_span_t s;
                /* the handle's bookkeeping exists before the snapshot */
                ASSERT_OK(vmc_alloc(v, sizes[z], kinds[k], &s));
                ASSERT_OK(vmc_free(v, s.x));
                vmc_stats_t st0, st1;
                ASSERT_OK(vmc_stats(v, &st0));
                vt_snapshot_t snap;
                vt_snap(&snap);
                vmc__os_fault(VMC_OS_MPROTECT, 1, errs[er], 1);
                int n = 0, r = 0;
                while (n < 40000 && (r = vmc_alloc(v, sizes[z], kinds[k], &s)) == 0) got[n++] = s.x;
                vmc__os_fault_clear();
                ASSERT_EQ(r, -errs[er]);
                injected++;
                ASSERT_STR_CONTAINS(vmc_last_error(), "cannot commit");
                ASSERT_NO_LEAK(snap);
                ASSERT_OK(vmc_stats(v, &st1));
                ASSERT_EQ(st1.allocations, st0.allocations + (size_t)n);
                ASSERT_EQ(st1.code_committed, st0.code_committed);
                ASSERT_EQ(st1.heap_committed, st0.heap_committed);
                for (int i = 0; i < n; i++) ASSERT_OK(vmc_free(v, got[i]));
                ASSERT_OK(vmc_alloc(v, sizes[z], kinds[k], &s));  /* works again */
                ASSERT_OK(vmc_free(v, s.x));
                vt_snap_free(&snap);
                vmc_close(v);
            }
    ASSERT_EQ(injected, 27);
}

/* ---- reach ------------------------------------------------------------------ */

static uint64_t seed = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { return vt_xorshift(&seed); }

TEST(alloc_reaching_property)
{
    /* A region placed away from the program, so constraints really bite. */
    vmc_t *v = vt_open("-vm_size 2G -vmheap_size 0 -no_near_app");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    uintptr_t base = (uintptr_t)in.code_base, size = in.code_size;
    int ok = 0, nospace = 0;
    for (int i = 0; i < 3000; i++) {
        /* targets from 3 GiB below the region to 3 GiB above it */
        uintptr_t lo = base - ((uintptr_t)3 << 30) + rnd() % (size + ((uintptr_t)6 << 30));
        uintptr_t hi = lo + 1 + rnd() % (rnd() % 4 ? 1 << 20 : 1u << 30);
        size_t n = rnd() % 3 ? 16 + rnd() % 3000 : 4096 + rnd() % 200000;
        int kind = rnd() % 2 ? VMC_CODE : VMC_RDATA;
        vmc_span_t s;
        int r = vmc_alloc_reaching(v, n, kind, lo, hi, &s);
        /* how much of the region lies inside the constraint's window? */
        uintptr_t wlo = hi > ((uintptr_t)1 << 31) ? hi - ((uintptr_t)1 << 31) : 0;
        uintptr_t whi = lo + ((uintptr_t)1 << 31);
        uintptr_t a = wlo > base ? wlo : base, b = whi < base + size ? whi : base + size;
        size_t room = b > a ? b - a : 0;
        if (r == 0) {
            ok++;
            ASSERT(in_range(s.x, s.size, in.code_base, in.code_size));
            ASSERT_MSG(vmc_span_reaches((uintptr_t)s.x, (uintptr_t)s.x + s.size, lo, hi),
                       "%p+%zu does not reach %#lx..%#lx", s.x, s.size, (unsigned long)lo,
                       (unsigned long)hi);
            ASSERT_GE(room, n);
            ASSERT_OK(vmc_free(v, s.x));
        } else {
            /* The region holds little besides cached slabs: with 4 MiB of
             * window to spare the request must succeed. */
            ASSERT_EQ(r, -ENOSPC);
            ASSERT_MSG(room < n + (4 << 20), "ENOSPC for %zu kind %d reaching %#lx..%#lx: %s", n,
                       kind, (unsigned long)lo, (unsigned long)hi, vmc_last_error());
            nospace++;
        }
    }
    ASSERT_GT(ok, 500);
    ASSERT_GT(nospace, 100);
    /* a 3 GiB target is reached from its middle; one of 4 GiB from nowhere */
    vmc_span_t s;
    ASSERT_OK(vmc_alloc_reaching(v, 64, VMC_CODE, base - ((uintptr_t)1 << 30), base + ((uintptr_t)2 << 30), &s));
    ASSERT(vmc_span_reaches((uintptr_t)s.x, (uintptr_t)s.x + s.size, base - ((uintptr_t)1 << 30),
                            base + ((uintptr_t)2 << 30)));
    ASSERT_EQ(vmc_alloc_reaching(v, 64, VMC_CODE, base - ((uintptr_t)1 << 30), base + ((uintptr_t)3 << 30), &s), -ENOSPC);
    ASSERT_STR_CONTAINS(vmc_last_error(), "vmc_alloc_reaching");
    vmc_close(v);
}

TEST(alloc_reaching_default_region_reaches_program)
{
    /* With the default placement, allocations reaching the program succeed. */
    vmc_t *v = vt_open("");
    uintptr_t lo = (uintptr_t)&vt_open, hi = lo + 4096;
    for (int i = 0; i < 1000; i++) {
        vmc_span_t s;
        ASSERT_OK(vmc_alloc_reaching(v, 32 + (size_t)i % 5000, VMC_CODE, lo, hi, &s));
        ASSERT(vmc_span_reaches((uintptr_t)s.x, (uintptr_t)s.x + s.size, lo, hi));
    }
    vmc_close(v);
}

TEST(alloc_default_prefers_the_part_reaching_the_program)
{
    vmc_t *v = vt_open("");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_LT(in.code_reaching, in.code_size); /* some of the region does not reach */
    for (int i = 0; i < 2000; i++) {
        vmc_span_t s;
        int kind = i % 2 ? VMC_CODE : VMC_RDATA;
        ASSERT_OK(vmc_alloc(v, 16 + (size_t)(i * 97) % 20000, kind, &s));
        ASSERT(vmc_span_reaches((uintptr_t)s.x, (uintptr_t)s.x + s.size, in.reach_lo, in.reach_hi));
    }
    vmc_close(v);
}

/* ---- stubs ------------------------------------------------------------------- */

TEST(stub_reaches_far_target)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    /* a far page of code, more than 2 GiB away from the region */
    void *far = NULL;
    for (uintptr_t hint = (uintptr_t)in.code_base + ((uintptr_t)8 << 30);; hint += (uintptr_t)1 << 30) {
        far = mmap((void *)hint, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (far != MAP_FAILED) break;
    }
    emit_ret_imm(far, 4242);
    ASSERT(!vmc_reaches((uintptr_t)in.code_base, (uintptr_t)far));
    void *stub, *stub2;
    ASSERT_OK(vmc_stub(v, (uintptr_t)far, &stub));
    ASSERT(in_range(stub, 16, in.code_base, in.code_size));
    ASSERT_OK(vmc_stub(v, (uintptr_t)far, &stub2));
    ASSERT(stub == stub2);
    /* generated code: call rel32 stub; ret */
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 16, VMC_CODE, &s));
    unsigned char *w = s.w;
    int32_t rel = (int32_t)((intptr_t)stub - ((intptr_t)s.x + 5));
    w[0] = 0xe8;
    memcpy(w + 1, &rel, 4);
    w[5] = 0xc3;
    ASSERT_EQ(((fn_t)s.x)(), 4242);
    /* many targets: distinct stubs, each one works */
    void *stubs[600];
    for (int i = 0; i < 600; i++) {
        ASSERT_OK(vmc_stub(v, (uintptr_t)far + (uintptr_t)i * 0, &stubs[i]));
        ASSERT(stubs[i] == stub);
    }
    for (int i = 1; i < 600; i++) {
        ASSERT_OK(vmc_stub(v, (uintptr_t)0x10000000000 + (uintptr_t)i * 16, &stubs[i]));
        for (int j = 1; j < i; j += 97) ASSERT(stubs[i] != stubs[j]);
    }
    void *again;
    ASSERT_OK(vmc_stub(v, (uintptr_t)0x10000000000 + 16 * 300, &again));
    ASSERT(again == stubs[300]);
    /* a target inside the region is its own stub */
    ASSERT_OK(vmc_stub(v, (uintptr_t)s.x, &again));
    ASSERT(again == s.x);
    ASSERT_EQ(vmc_stub(v, 0, &again), -EINVAL);
    /* stubs are not counted as the user's allocations */
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.allocations, 1);
    vmc_close(v);
}

TEST(dump_shows_runs)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    vmc_span_t a, b, c;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &a));
    ASSERT_OK(vmc_alloc(v, 200000, VMC_CODE, &b));
    ASSERT_OK(vmc_alloc(v, 64, VMC_RDATA, &c));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ASSERT_OK(vmc_dump(v, f));
    fclose(f);
    ASSERT_STR_CONTAINS(buf, "code region 0x");
    ASSERT_STR_CONTAINS(buf, "heap region 0x");
    ASSERT_STR_CONTAINS(buf, "code heap  code, committed 1M");
    ASSERT_STR_CONTAINS(buf, "large      code, committed 196K");
    ASSERT_STR_CONTAINS(buf, "rdata heap rdata, committed 1M");
    ASSERT_STR_CONTAINS(buf, "free");
    free(buf);
    vmc_close(v);
}

/* ---- threads ------------------------------------------------------------------ */

#define STRESS_THREADS 3
#define STRESS_SLOTS 2048

typedef struct stress {
    vmc_t *v;
    vmc_info_t in;
    pthread_mutex_t lock;             /* guards the shared slots              */
    vmc_span_t slot[STRESS_SLOTS];
    uint32_t tag[STRESS_SLOTS];
    int kind[STRESS_SLOTS];
} stress_t;

static int check_and_free(stress_t *st, int i)
{
    vmc_span_t s = st->slot[i];
    if (!s.x) return 0;
    uint32_t tag = st->tag[i];
    if (st->kind[i] == VMC_CODE) {
        if (((fn_t)s.x)() != (int)tag) return -1;
    } else {
        uint32_t got, last;
        memcpy(&got, s.x, 4);
        memcpy(&last, (char *)s.x + s.size - 4, 4);
        if (got != tag || last != tag) return -2;
    }
    st->slot[i].x = NULL;
    return vmc_free(st->v, s.x) ? -3 : 0;
}

static void *stress_thread(void *arg)
{
    stress_t *st = arg;
    uint64_t x = (uint64_t)(uintptr_t)pthread_self() | 1;
    static _Atomic uint32_t next_tag = 1;
    for (int it = 0; it < 30000; it++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int i = (int)(x % STRESS_SLOTS);
        int kind = (int)((x >> 20) % 3) + 1;
        size_t size = (x >> 30) % 16 == 0 ? 4096 + (x >> 40) % 40000 : 16 + (x >> 40) % 3000;
        vmc_span_t s;
        if (vmc_alloc(st->v, size, kind, &s)) {
            fprintf(stderr, "alloc %zu kind %d: %s\n", size, kind, vmc_last_error());
            return (void *)1;
        }
        uint32_t tag = atomic_fetch_add(&next_tag, 1);
        if (kind == VMC_CODE) emit_ret_imm(s.w, tag);
        else {
            memcpy(s.w, &tag, 4);
            memcpy((char *)s.w + s.size - 4, &tag, 4);
        }
        pthread_mutex_lock(&st->lock);
        /* free whatever was in the slot: often another thread's allocation */
        int bad = check_and_free(st, i);
        st->slot[i] = s;
        st->tag[i] = tag;
        st->kind[i] = kind;
        pthread_mutex_unlock(&st->lock);
        if (bad) return (void *)(intptr_t)(10 - bad);
        uintptr_t base = (uintptr_t)(kind == VMC_DATA ? st->in.heap_base : st->in.code_base);
        size_t rsize = kind == VMC_DATA ? st->in.heap_size : st->in.code_size;
        if (!in_range(s.x, s.size, (void *)base, rsize) || (uintptr_t)s.x % 16) return (void *)20;
    }
    return NULL;
}

TEST_THREADED(alloc_stress_threads)
{
    static stress_t st;
    st.v = vt_open("-vm_size 256M -vmheap_size 256M");
    ASSERT_OK(vmc_info(st.v, &st.in));
    pthread_mutex_init(&st.lock, NULL);
    pthread_t t[STRESS_THREADS];
    for (int i = 0; i < STRESS_THREADS; i++) pthread_create(&t[i], NULL, stress_thread, &st);
    for (int i = 0; i < STRESS_THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        ASSERT_EQ((intptr_t)r, 0);
    }
    /* every surviving allocation is intact and none overlaps another */
    static struct { uintptr_t a, b; } iv[STRESS_SLOTS];
    int n = 0;
    for (int i = 0; i < STRESS_SLOTS; i++)
        if (st.slot[i].x) {
            iv[n].a = (uintptr_t)st.slot[i].x;
            iv[n].b = iv[n].a + st.slot[i].size;
            n++;
        }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) ASSERT(iv[i].b <= iv[j].a || iv[j].b <= iv[i].a);
    vmc_stats_t s;
    ASSERT_OK(vmc_stats(st.v, &s));
    ASSERT_EQ(s.allocations, n);
    for (int i = 0; i < STRESS_SLOTS; i++) ASSERT_EQ(check_and_free(&st, i), 0);
    ASSERT_OK(vmc_stats(st.v, &s));
    ASSERT_EQ(s.allocations, 0);
    vmc_close(st.v);
}

/* Threads come and go: their caches are adopted, frees into the caches of
 * exited threads are not lost. */
static void *short_lived(void *arg)
{
    stress_t *st = arg;
    for (int i = 0; i < 200; i++) {
        vmc_span_t s;
        if (vmc_alloc(st->v, 64 + (size_t)i, VMC_CODE, &s)) return (void *)1;
        emit_ret_imm(s.w, (uint32_t)i);
        pthread_mutex_lock(&st->lock);
        int slot = (int)(((uintptr_t)s.x / 64 + (uintptr_t)i) % STRESS_SLOTS);
        int bad = check_and_free(st, slot);
        st->slot[slot] = s;
        st->tag[slot] = (uint32_t)i;
        st->kind[slot] = VMC_CODE;
        pthread_mutex_unlock(&st->lock);
        if (bad) return (void *)2;
    }
    return NULL;
}

TEST_THREADED(alloc_threads_come_and_go)
{
    static stress_t st;
    st.v = vt_open("-vm_size 64M -vmheap_size 0");
    pthread_mutex_init(&st.lock, NULL);
    for (int round = 0; round < 20; round++) {
        pthread_t t[2];
        for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, short_lived, &st);
        for (int i = 0; i < 2; i++) {
            void *r;
            pthread_join(t[i], &r);
            ASSERT_EQ((intptr_t)r, 0);
        }
    }
    for (int i = 0; i < STRESS_SLOTS; i++) ASSERT_EQ(check_and_free(&st, i), 0);
    vmc_stats_t s;
    ASSERT_OK(vmc_stats(st.v, &s));
    ASSERT_EQ(s.allocations, 0);
    vmc_close(st.v);
}

static int count_runs(const vmc_run_info_t *ri, void *arg)
{
    size_t *n = arg;
    n[ri->owner]++;
    n[16] += ri->size;
    if (ri->region == 1) n[17] += ri->size;
    return 0;
}

static int stop_at_second(const vmc_run_info_t *ri, void *arg)
{
    (void)ri;
    return ++*(int *)arg == 2 ? 77 : 0;
}

TEST(walk_covers_both_regions)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 32M");
    vmc_span_t a, b, c;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &a));
    ASSERT_OK(vmc_alloc(v, 200000, VMC_CODE, &b));
    ASSERT_OK(vmc_alloc(v, 64, VMC_DATA, &c));
    size_t n[18] = {0};
    ASSERT_OK(vmc_walk(v, count_runs, n));
    ASSERT_EQ(n[VMC_RUN_CODE_HEAP], 1);
    ASSERT_EQ(n[VMC_RUN_LARGE], 1);
    ASSERT_EQ(n[VMC_RUN_DATA_HEAP], 1);
    ASSERT_GE(n[VMC_RUN_FREE], 2);
    ASSERT_EQ(n[16], (size_t)96 << 20);   /* the runs tile both regions */
    ASSERT_EQ(n[17], (size_t)32 << 20);
    int seen = 0;
    ASSERT_EQ(vmc_walk(v, stop_at_second, &seen), 77);
    ASSERT_EQ(seen, 2);
    vmc_close(v);
}

/* fork while another thread is inside the allocator, holding its locks: the
 * child must not hang on them. */
static _Atomic int fork_stop;

static void *alloc_spinner(void *arg)
{
    vmc_t *v = arg;
    while (!atomic_load(&fork_stop)) {
        vmc_span_t s;
        if (vmc_alloc(v, 100000, VMC_CODE, &s) == 0) vmc_free(v, s.x);
        if (vmc_alloc(v, 64, VMC_RDATA, &s) == 0) vmc_free(v, s.x);
    }
    return NULL;
}

TEST_THREADED(fork_while_another_thread_allocates)
{
    vmc_t *v = vt_open("-vm_size 256M -vmheap_size 0");
    pthread_t t;
    pthread_create(&t, NULL, alloc_spinner, v);
    for (int i = 0; i < 40; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10);
            vmc_span_t s;
            if (vmc_alloc(v, 100000, VMC_CODE, &s)) _exit(2);
            emit_ret_imm(s.w, 5);
            if (((fn_t)s.x)() != 5) _exit(3);
            if (vmc_free(v, s.x)) _exit(4);
            _exit(0);
        }
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d: status %#x", i, st);
    }
    atomic_store(&fork_stop, 1);
    pthread_join(t, NULL);
    vmc_close(v);
}

/* A plug-in whose constructor forks: the fork handlers must not wait for
 * the loader lock the constructor's own thread holds. */
TEST_TIMEOUT(fork_from_a_library_constructor, 30)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/libs/libt_forkctor.so", vt_build_dir());
    if (access(path, R_OK)) SKIP("test libraries not built");
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0");
    alarm(20);
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, VMC_LOAD_DEFAULT, &l));
    int (*result)(void) = (int (*)(void))vmc_lib_sym(l, "t_fork_result");
    ASSERT(result);
    ASSERT_EQ(result(), 7);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}
