/* bench_wx: emit-and-run under W^X (issue 5).
 *
 * One "fragment" is what a JIT does for a tiny piece of code: allocate 16
 * bytes of code, write `mov eax, imm32; ret` (6 bytes) through the writable
 * address, then call it once through the executable address.  Each variant
 * emits N = 100,000 fragments into a fresh allocator (set-up and tear-down
 * are not timed); all variants run in every round, in rotated order, and the
 * figures are medians over rounds.
 *
 * W^X variants (no page is ever writable and executable at once):
 *   - vmcode, -w_xor_x: vmc_alloc(VMC_CODE), write through span.w, call
 *     span.x (two views of one memory file; no system call per fragment);
 *   - mprotect toggling: a bump allocator over one mapping; per fragment,
 *     mprotect the fragment's page RW, write, mprotect it RX, call (two
 *     system calls, and the page's VMA split and merged each time);
 *   - asmjit JitAllocator with kUseDualMapping (bench/asmjit_shim.h).
 * References, not W^X (code pages writable and executable):
 *   - vmcode without -w_xor_x, asmjit JitAllocator with default options.
 *
 * Goal (issue 5): vmcode -w_xor_x at least 20x faster than mprotect
 * toggling, and no slower than asmjit's dual mapping.
 */
#include "vmcode.h"
#include "asmjit_shim.h"
#include "bench.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#define FRAG_SIZE 16

static size_t page_size;

/* mov eax, imm32; ret */
static void emit(void *w, uint32_t v)
{
    unsigned char *p = w;
    p[0] = 0xb8;
    memcpy(p + 1, &v, 4);
    p[5] = 0xc3;
}

static int call(void *x)
{
    int (*fn)(void);
    memcpy(&fn, &x, sizeof fn);
    return fn();
}

static _Noreturn void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_wx: %s: %s\n", what, why);
    exit(1);
}

/* ---- variants: set up, make one fragment (timed), tear down ------------------- */

typedef struct variant {
    const char *name;
    const char *wx;                   /* "yes": never writable and executable  */
    void *(*setup)(int n);
    void *(*frag)(void *ctx, int i);  /* allocate, write; returns where to call */
    void (*teardown)(void *ctx, int n);
} variant_t;

static void *vmc_setup(int wx)
{
    vmc_options_t o;
    vmc_options_init(&o);
    o.w_xor_x = wx;
    o.vmheap_size = 0;
    vmc_t *v;
    if (vmc_open(&o, &v)) die("vmc_open", vmc_last_error());
    return v;
}
static void *vmc_setup_wx(int n) { (void)n; return vmc_setup(1); }
static void *vmc_setup_plain(int n) { (void)n; return vmc_setup(0); }

static void *vmc_frag(void *ctx, int i)
{
    vmc_span_t s;
    if (vmc_alloc(ctx, FRAG_SIZE, VMC_CODE, &s)) die("vmc_alloc", vmc_last_error());
    emit(s.w, (uint32_t)i);
    return s.x;
}
static void vmc_teardown(void *ctx, int n) { (void)n; vmc_close(ctx); }

/* A bump allocator over one mapping: the mprotect variant, and the floor. */
typedef struct bump {
    unsigned char *base;
    size_t len;
} bump_t;

static void *bump_setup(int n, int prot)
{
    bump_t *t = malloc(sizeof *t);
    t->len = ((size_t)n * FRAG_SIZE + page_size - 1) & ~(page_size - 1);
    void *p = mmap(NULL, t->len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap", strerror(errno));
    t->base = p;
    return t;
}
static void *toggle_setup(int n) { return bump_setup(n, PROT_READ | PROT_EXEC); }
static void *floor_setup(int n) { return bump_setup(n, PROT_READ | PROT_WRITE | PROT_EXEC); }

static void *toggle_frag(void *ctx, int i)
{
    bump_t *t = ctx;
    unsigned char *x = t->base + (size_t)i * FRAG_SIZE;
    void *pg = (void *)((uintptr_t)x & ~(uintptr_t)(page_size - 1));
    if (mprotect(pg, page_size, PROT_READ | PROT_WRITE)) die("mprotect RW", strerror(errno));
    emit(x, (uint32_t)i);
    if (mprotect(pg, page_size, PROT_READ | PROT_EXEC)) die("mprotect RX", strerror(errno));
    return x;
}

static void *floor_frag(void *ctx, int i)
{
    bump_t *t = ctx;
    unsigned char *x = t->base + (size_t)i * FRAG_SIZE;
    emit(x, (uint32_t)i);
    return x;
}

static void bump_teardown(void *ctx, int n)
{
    (void)n;
    bump_t *t = ctx;
    munmap(t->base, t->len);
    free(t);
}

typedef struct ajs_ctx {
    ajs_alloc_t *a;
    void **rx;                        /* to release them afterwards, untimed  */
} ajs_ctx_t;

static void *ajs_setup(unsigned flags, int n)
{
    ajs_ctx_t *c = malloc(sizeof *c);
    c->a = ajs_create(flags);
    if (!c->a) die("asmjit", ajs_strerror());
    c->rx = calloc((size_t)n, sizeof *c->rx);
    return c;
}
static void *ajs_setup_dual(int n) { return ajs_setup(AJS_DUAL_MAPPING, n); }
static void *ajs_setup_plain(int n) { return ajs_setup(AJS_DEFAULT, n); }

static void *ajs_frag(void *ctx, int i)
{
    ajs_ctx_t *c = ctx;
    void *rx, *rw;
    if (ajs_alloc(c->a, FRAG_SIZE, &rx, &rw)) die("ajs_alloc", ajs_strerror());
    emit(rw, (uint32_t)i);
    ajs_flush(rx, 6);
    c->rx[i] = rx;
    return rx;
}

static void ajs_teardown(void *ctx, int n)
{
    ajs_ctx_t *c = ctx;
    for (int i = 0; i < n; i++) ajs_release(c->a, c->rx[i]);
    ajs_destroy(c->a);
    free(c->rx);
    free(c);
}

enum { V_VMC_WX, V_TOGGLE, V_AJS_DUAL, V_VMC_PLAIN, V_AJS_PLAIN, V_FLOOR, NV };
static const variant_t variants[NV] = {
    [V_VMC_WX] = {"vmcode `-w_xor_x` (dual mapping)", "yes", vmc_setup_wx, vmc_frag,
                  vmc_teardown},
    [V_TOGGLE] = {"`mprotect` RW, write, `mprotect` RX", "yes", toggle_setup, toggle_frag,
                  bump_teardown},
    [V_AJS_DUAL] = {"asmjit `JitAllocator` `kUseDualMapping`", "yes", ajs_setup_dual, ajs_frag,
                    ajs_teardown},
    [V_VMC_PLAIN] = {"vmcode without W^X", "no (RWX)", vmc_setup_plain, vmc_frag, vmc_teardown},
    [V_AJS_PLAIN] = {"asmjit `JitAllocator` default", "no (RWX)", ajs_setup_plain, ajs_frag,
                     ajs_teardown},
    [V_FLOOR] = {"floor: bump pointer in one RWX mapping", "no (RWX)", floor_setup, floor_frag,
                 bump_teardown},
};

/* One timed pass: interleaved (call each fragment right after writing it)
 * or batched (write them all, then call each).  Returns seconds. */
static double pass(int k, int n, int batched, void **xs)
{
    void *ctx = variants[k].setup(n);
    long sum = 0, want = (long)n * (n - 1) / 2;
    uint64_t t0 = bench_now_ns();
    if (batched) {
        for (int i = 0; i < n; i++) xs[i] = variants[k].frag(ctx, i);
        for (int i = 0; i < n; i++) sum += call(xs[i]);
    } else {
        for (int i = 0; i < n; i++) sum += call(variants[k].frag(ctx, i));
    }
    uint64_t t1 = bench_now_ns();
    variants[k].teardown(ctx, n);
    if (sum != want) {
        fprintf(stderr, "bench_wx: %s: fragments returned %ld, expected %ld\n", variants[k].name,
                sum, want);
        exit(1);
    }
    return (double)(t1 - t0) / 1e9;
}

static void table(const char *title, const char *how, int n, int rounds, double *secs[NV])
{
    double med[NV], best[NV];
    for (int k = 0; k < NV; k++) {
        best[k] = bench_percentile(secs[k], (size_t)rounds, 0);
        med[k] = bench_median(secs[k], (size_t)rounds);
    }
    char buf[32];
    printf("## W^X: %s, %s fragments\n\n%s\n\n", title, bench_grouped(n, buf, sizeof buf), how);
    printf("| variant | W^X | total (ms) | best (ms) | ns / fragment | above the floor (ns) | "
           "time vs vmcode `-w_xor_x` |\n");
    printf("|---|---|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < NV; k++)
        printf("| %s | %s | %.2f | %.2f | %.1f | %.1f | %.2fx |\n", variants[k].name,
               variants[k].wx, med[k] * 1e3, best[k] * 1e3, med[k] * 1e9 / n,
               (med[k] - med[V_FLOOR]) * 1e9 / n, med[k] / med[V_VMC_WX]);
    printf("\nvmcode `-w_xor_x`: **%.1fx** faster than `mprotect` toggling (goal: at least 20x), "
           "**%.2fx** the speed of asmjit's dual mapping (goal: at least 1x).\n\n",
           med[V_TOGGLE] / med[V_VMC_WX], med[V_AJS_DUAL] / med[V_VMC_WX]);
}

int main(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    int quick = bench_quick();
    int n = quick ? 10000 : 100000, rounds = quick ? 3 : 9;
    void **xs = calloc((size_t)n, sizeof *xs);
    double *secs[2][NV];
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < NV; k++) secs[m][k] = calloc((size_t)rounds, sizeof(double));
    for (int round = 0; round < rounds; round++)
        for (int j = 0; j < 2 * NV; j++) {
            int k = (round + j) % NV, m = (j / NV + round) % 2;
            secs[m][k][round] = pass(k, n, m, xs);
        }
    char common[600];
    snprintf(common, sizeof common,
             "Each fragment: allocate %d bytes of code, write `mov eax, imm32; ret` through the "
             "writable address, call it once through the executable address.  Every variant "
             "starts from a fresh allocator; set-up and tear-down are not timed.  Median (and "
             "best) of %d rounds, all variants interleaved in each round (`bench/bench_wx.c`, "
             "asmjit %s).",
             FRAG_SIZE, rounds, ajs_version());
    char how[900];
    snprintf(how, sizeof how,
             "%s  Each fragment is called right after it is written.  The floor row has no "
             "allocator and no W^X: what is left there is the processor's cost of executing "
             "bytes it has just stored (a pipeline clear on self-modifying code, several "
             "hundred ns on this virtual machine), which every variant pays.",
             common);
    table("emit and run each fragment at once", how, n, rounds, secs[0]);
    snprintf(how, sizeof how,
             "%s  All fragments are written first, then each is called once (a JIT that emits a "
             "batch, then runs it): the cost of stores reaching code is out of the way, and what "
             "remains is allocation and W^X.", common);
    table("emit all, then run each once", how, n, rounds, secs[1]);
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < NV; k++) free(secs[m][k]);
    free(xs);
    return 0;
}
