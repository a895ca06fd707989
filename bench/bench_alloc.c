/* bench_alloc: code-heap allocation throughput and latency (issue 3).
 *
 * Throughput: each thread keeps 8,192 live allocations of mixed sizes
 * (32 B to 4 KiB, skewed small: a power-of-two class 32..2048 picked
 * uniformly, then a uniform size inside [class, 2 class)), and repeatedly
 * frees a random one and allocates a new one in its place (fixed seeds).  Each
 * new allocation gets 16 bytes written through its writable address, as an
 * emitter would.  One "op" is one free + one alloc.  Peers, side by side in
 * every round (order rotated):
 *   - vmcode     vmc_alloc(VMC_CODE) / vmc_free on one handle (default options)
 *   - asmjit     JitAllocator, default options (bench/asmjit_shim.h)
 *   - mmap       mmap(RW|X) + munmap per allocation (size rounded to pages)
 *   - malloc     glibc malloc/free: the no-syscall reference
 * With 2 threads, both share one allocator (one vmc_t, one JitAllocator).
 *
 * Latency: vmc_alloc of the same size mix, timed one call at a time, with
 * the 2 GiB code region filled to 1 %, 50 %, 90 % and 99 % (vmc_stats'
 * code_used / region size) under a random free-then-alloc pattern; median and
 * p99 per level, plotted into docs/alloc-latency.svg with gnuplot.
 */
#include "vmcode.h"
#include "asmjit_shim.h"
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#define LIVE      8192
#define MAX_THR   2

static size_t page_size;

static size_t mix_size(bench_rng_t *r)
{
    uint64_t x = bench_rand(r);
    size_t cls = (size_t)32 << (x % 7);          /* 32 .. 2048 */
    return cls + (size_t)((x >> 8) % cls);       /* [cls, 2 cls) */
}

/* ---- allocators under test ------------------------------------------------- */

typedef struct allocator {
    const char *name;
    void *(*create)(void);
    void (*destroy)(void *ctx);
    /* 0 or -errno; *x is what to free, *w where to write */
    int (*alloc)(void *ctx, size_t size, void **x, void **w);
    void (*free)(void *ctx, void *x, size_t size);
} allocator_t;

static void *vmc_create(void)
{
    vmc_options_t o;
    vmc_options_init(&o);
    vmc_t *v;
    int r = vmc_open(&o, &v);
    if (r) {
        fprintf(stderr, "bench_alloc: vmc_open: %s\n", vmc_last_error());
        exit(1);
    }
    return v;
}
static void vmc_destroy(void *ctx) { vmc_close(ctx); }
static int vmc_alloc_fn(void *ctx, size_t size, void **x, void **w)
{
    vmc_span_t s;
    int r = vmc_alloc(ctx, size, VMC_CODE, &s);
    if (r) return r;
    *x = s.x;
    *w = s.w;
    return 0;
}
static void vmc_free_fn(void *ctx, void *x, size_t size)
{
    (void)size;
    int r = vmc_free(ctx, x);
    if (r) {
        fprintf(stderr, "bench_alloc: vmc_free: %s\n", vmc_last_error());
        exit(1);
    }
}

static void *ajs_create_fn(void)
{
    ajs_alloc_t *a = ajs_create(AJS_DEFAULT);
    if (!a) {
        fprintf(stderr, "bench_alloc: asmjit: %s\n", ajs_strerror());
        exit(1);
    }
    return a;
}
static void ajs_destroy_fn(void *ctx) { ajs_destroy(ctx); }
static int ajs_alloc_fn(void *ctx, size_t size, void **x, void **w)
{
    return ajs_alloc(ctx, size, x, w);
}
static void ajs_free_fn(void *ctx, void *x, size_t size)
{
    (void)size;
    ajs_release(ctx, x);
}

static void *none_create(void) { return NULL; }
static void none_destroy(void *ctx) { (void)ctx; }
static int mmap_alloc_fn(void *ctx, size_t size, void **x, void **w)
{
    (void)ctx;
    size_t len = (size + page_size - 1) & ~(page_size - 1);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -errno;
    *x = *w = p;
    return 0;
}
static void mmap_free_fn(void *ctx, void *x, size_t size)
{
    (void)ctx;
    munmap(x, (size + page_size - 1) & ~(page_size - 1));
}
static int malloc_alloc_fn(void *ctx, size_t size, void **x, void **w)
{
    (void)ctx;
    void *p = malloc(size);
    if (!p) return -ENOMEM;
    *x = *w = p;
    return 0;
}
static void malloc_free_fn(void *ctx, void *x, size_t size)
{
    (void)ctx;
    (void)size;
    free(x);
}

enum { A_VMC, A_ASMJIT, A_MMAP, A_MALLOC, NA };
static const allocator_t allocators[NA] = {
    [A_VMC] = {"vmcode `vmc_alloc(VMC_CODE)`", vmc_create, vmc_destroy, vmc_alloc_fn, vmc_free_fn},
    [A_ASMJIT] = {"asmjit `JitAllocator`", ajs_create_fn, ajs_destroy_fn, ajs_alloc_fn, ajs_free_fn},
    [A_MMAP] = {"`mmap` + `munmap` per allocation", none_create, none_destroy, mmap_alloc_fn,
                mmap_free_fn},
    [A_MALLOC] = {"glibc `malloc` / `free`", none_create, none_destroy, malloc_alloc_fn,
                  malloc_free_fn},
};

/* ---- throughput -------------------------------------------------------------- */

typedef struct slot {
    void *x;
    size_t size;
} slot_t;

typedef struct worker {
    const allocator_t *a;
    void *ctx;
    long ops;
    uint64_t seed;
    pthread_barrier_t *start;
    uint64_t t0, t1;
    slot_t *slots;
} worker_t;

static void must(int r, const char *what, const allocator_t *a)
{
    if (r) {
        fprintf(stderr, "bench_alloc: %s: %s failed: %s\n", a->name, what, strerror(-r));
        exit(1);
    }
}

static void *worker_main(void *arg)
{
    worker_t *wk = arg;
    const allocator_t *a = wk->a;
    bench_rng_t rng = {wk->seed};
    slot_t *s = wk->slots;
    void *w;
    for (int i = 0; i < LIVE; i++) {
        s[i].size = mix_size(&rng);
        must(a->alloc(wk->ctx, s[i].size, &s[i].x, &w), "alloc", a);
        memset(w, 0xc3, 16);
    }
    pthread_barrier_wait(wk->start);
    wk->t0 = bench_now_ns();
    for (long n = 0; n < wk->ops; n++) {
        uint64_t r = bench_rand(&rng);
        slot_t *sl = &s[r % LIVE];
        a->free(wk->ctx, sl->x, sl->size);
        sl->size = mix_size(&rng);
        must(a->alloc(wk->ctx, sl->size, &sl->x, &w), "alloc", a);
        memset(w, 0xc3, 16);
    }
    wk->t1 = bench_now_ns();
    for (int i = 0; i < LIVE; i++) a->free(wk->ctx, s[i].x, s[i].size);
    return NULL;
}

/* ops (free+alloc pairs) per second, all threads together. */
static double throughput(const allocator_t *a, int threads, long ops_per_thread, uint64_t seed)
{
    void *ctx = a->create();
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    worker_t wk[MAX_THR];
    pthread_t tid[MAX_THR];
    for (int t = 0; t < threads; t++) {
        wk[t] = (worker_t){.a = a, .ctx = ctx, .ops = ops_per_thread,
                           .seed = seed * 7919 + (uint64_t)t * 104729 + 1, .start = &start,
                           .slots = calloc(LIVE, sizeof(slot_t))};
        if (!wk[t].slots) exit(1);
    }
    for (int t = 1; t < threads; t++) pthread_create(&tid[t], NULL, worker_main, &wk[t]);
    worker_main(&wk[0]);
    for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
    uint64_t t0 = wk[0].t0, t1 = wk[0].t1;
    for (int t = 1; t < threads; t++) {
        if (wk[t].t0 < t0) t0 = wk[t].t0;
        if (wk[t].t1 > t1) t1 = wk[t].t1;
    }
    for (int t = 0; t < threads; t++) free(wk[t].slots);
    pthread_barrier_destroy(&start);
    a->destroy(ctx);
    return (double)ops_per_thread * threads * 1e9 / (double)(t1 - t0);
}

/* ---- latency at fill levels -------------------------------------------------- */

typedef struct lat_row {
    double fill_target;          /* % of the region, as code_used           */
    double fill_used;            /* reached: code_used / region             */
    double fill_requested;       /* reached: live requested bytes / region  */
    double a_med, a_p99, f_med, f_p99;
    double m_med, m_p99;         /* malloc with as many live allocations    */
    size_t live;
    int enospc;
    int samples;
    double meta_mib;             /* RSS growth less the bench's own arrays  */
} lat_row_t;

/* Resident memory of the process, bytes. */
static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return (size_t)res * page_size;
}

static size_t code_used(vmc_t *v)
{
    vmc_stats_t st;
    return vmc_stats(v, &st) == 0 ? st.code_used : 0;
}

static int latency(lat_row_t *rows, const double *levels, int nlevels, int samples, size_t *region)
{
    size_t rss0 = rss_bytes();
    vmc_t *v = vmc_create();
    vmc_info_t info;
    vmc_info(v, &info);
    *region = info.code_size;
    size_t cap = 1 << 16, live = 0, bytes = 0;
    slot_t *s = malloc(cap * sizeof *s);
    double *at = malloc((size_t)samples * sizeof *at), *ft = malloc((size_t)samples * sizeof *ft);
    if (!s || !at || !ft) exit(1);
    bench_rng_t rng = {12345};
    for (int l = 0; l < nlevels; l++) {
        lat_row_t *row = &rows[l];
        memset(row, 0, sizeof *row);
        row->fill_target = levels[l];
        size_t target = (size_t)(levels[l] / 100.0 * (double)info.code_size);
        /* Fill up to the target with the same size mix.  No request rounds
         * to more than 4 KiB, so a batch of (target - used) / 4 KiB never
         * overshoots by more than one allocation. */
        int full = 0;
        for (size_t used = code_used(v); used < target && !full; used = code_used(v)) {
            size_t batch = (target - used) / 4096;
            for (size_t n = 0; n < (batch ? batch : 1); n++) {
                if (live == cap) {
                    cap *= 2;
                    s = realloc(s, cap * sizeof *s);
                    if (!s) exit(1);
                }
                vmc_span_t sp;
                size_t sz = mix_size(&rng);
                int r = vmc_alloc(v, sz, VMC_CODE, &sp);
                if (r == -ENOSPC) {
                    row->enospc++;
                    full = 1;
                    break;
                }
                must(r, "vmc_alloc (fill)", &allocators[A_VMC]);
                s[live++] = (slot_t){sp.x, sz};
                bytes += sz;
            }
        }
        /* Steady state at this level: free a random one, allocate one. */
        int got = 0;
        for (int i = 0; i < samples && live; i++) {
            size_t k = (size_t)(bench_rand(&rng) % live);
            uint64_t t0 = bench_now_ns();
            int r = vmc_free(v, s[k].x);
            uint64_t t1 = bench_now_ns();
            must(r, "vmc_free", &allocators[A_VMC]);
            bytes -= s[k].size;
            ft[got] = (double)(t1 - t0);
            vmc_span_t sp;
            size_t sz = mix_size(&rng);
            t0 = bench_now_ns();
            r = vmc_alloc(v, sz, VMC_CODE, &sp);
            t1 = bench_now_ns();
            if (r == -ENOSPC) {
                /* Full: the failed call is not a sample.  Try the size just
                 * freed; if even that fails, the slot stays empty. */
                row->enospc++;
                sz = s[k].size;
                if (vmc_alloc(v, sz, VMC_CODE, &sp) != 0) {
                    s[k] = s[--live];
                    continue;
                }
                s[k] = (slot_t){sp.x, sz};
                bytes += sz;
                continue;
            }
            must(r, "vmc_alloc", &allocators[A_VMC]);
            at[got++] = (double)(t1 - t0);
            s[k] = (slot_t){sp.x, sz};
            bytes += sz;
        }
        row->samples = got;
        row->a_med = bench_percentile(at, (size_t)got, 50);
        row->a_p99 = bench_percentile(at, (size_t)got, 99);
        row->f_med = bench_percentile(ft, (size_t)got, 50);
        row->f_p99 = bench_percentile(ft, (size_t)got, 99);
        row->live = live;
        row->fill_used = 100.0 * (double)code_used(v) / (double)info.code_size;
        row->fill_requested = 100.0 * (double)bytes / (double)info.code_size;
        /* No allocation is ever written, so what the process gained is the
         * library's bookkeeping plus this function's own arrays. */
        double own = (double)(live * sizeof *s) + 2.0 * (double)samples * sizeof(double);
        row->meta_mib = ((double)rss_bytes() - (double)rss0 - own) / 1048576.0;
    }
    free(at);
    free(ft);
    free(s);
    vmc_close(v);  /* releases every allocation */
    return 0;
}

/* The reference: malloc latency with as many live allocations of the same
 * mix as vmc_alloc had at each level, same pattern. */
static void latency_malloc(lat_row_t *rows, int nlevels, int samples)
{
    size_t cap = rows[nlevels - 1].live + 1, live = 0;
    slot_t *s = malloc(cap * sizeof *s);
    double *at = malloc((size_t)samples * sizeof *at);
    if (!s || !at) exit(1);
    bench_rng_t rng = {12345};
    for (int l = 0; l < nlevels; l++) {
        size_t want = rows[l].live < cap ? rows[l].live : cap;
        while (live < want) {
            size_t sz = mix_size(&rng);
            s[live].x = malloc(sz);
            if (!s[live].x) exit(1);
            s[live++].size = sz;
        }
        for (int i = 0; i < samples && live; i++) {
            size_t k = (size_t)(bench_rand(&rng) % live);
            free(s[k].x);
            size_t sz = mix_size(&rng);
            uint64_t t0 = bench_now_ns();
            void *p = malloc(sz);
            uint64_t t1 = bench_now_ns();
            if (!p) exit(1);
            /* keep the compiler from pairing the calls away */
            __asm__ volatile("" : : "r"(p) : "memory");
            at[i] = (double)(t1 - t0);
            s[k] = (slot_t){p, sz};
        }
        rows[l].m_med = bench_percentile(at, (size_t)samples, 50);
        rows[l].m_p99 = bench_percentile(at, (size_t)samples, 99);
    }
    for (size_t i = 0; i < live; i++) free(s[i].x);
    free(s);
    free(at);
}

static double timer_overhead(void)
{
    double d[1001];
    for (int i = 0; i < 1001; i++) {
        uint64_t t0 = bench_now_ns();
        d[i] = (double)(bench_now_ns() - t0);
    }
    return bench_median(d, 1001);
}

/* Write the data and a gnuplot script next to the programs, run gnuplot. */
static void plot(const lat_row_t *rows, int n)
{
    const char *dir = getenv("BENCH_OUT_DIR");
    const char *docs = getenv("BENCH_DOCS_DIR");
    char dat[2048], gp[2048], svg[2048], cmd[4200];
    if (!dir || !*dir) dir = ".";
    snprintf(dat, sizeof dat, "%s/alloc-latency.dat", dir);
    snprintf(gp, sizeof gp, "%s/alloc-latency.gp", dir);
    snprintf(svg, sizeof svg, "%s/alloc-latency.svg", docs && *docs ? docs : "docs");
    FILE *f = fopen(dat, "w"), *g = fopen(gp, "w");
    if (!f || !g) {
        printf("(no plot: cannot write %s)\n\n", f ? gp : dat);
        if (f) fclose(f);
        if (g) fclose(g);
        return;
    }
    fprintf(f, "# fill%% alloc_median alloc_p99 free_median free_p99 malloc_median malloc_p99 (ns)\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%g %g %g %g %g %g %g\n", rows[i].fill_used, rows[i].a_med, rows[i].a_p99,
                rows[i].f_med, rows[i].f_p99, rows[i].m_med, rows[i].m_p99);
    fclose(f);
    fprintf(g,
            "set terminal svg size 760,520 dynamic font 'sans,12' background '#ffffff'\n"
            "set output '%s'\n"
            "set title 'vmc\\_alloc(VMC\\_CODE) latency vs fill of the code region'\n"
            "set xlabel 'fill (code\\_used / region size), %%'\n"
            "set ylabel 'ns per call (log scale)'\n"
            "set logscale y\nset grid\nset key below maxrows 3 width -2\n"
            "set xrange [0:100]\nset xtics (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99)\n"
            "plot '%s' using 1:2 with linespoints lw 2 pt 7 title 'vmc\\_alloc median', \\\n"
            "     '' using 1:3 with linespoints lw 2 pt 5 title 'vmc\\_alloc p99', \\\n"
            "     '' using 1:4 with linespoints lw 1 pt 6 dt 2 title 'vmc\\_free median', \\\n"
            "     '' using 1:5 with linespoints lw 1 pt 4 dt 2 title 'vmc\\_free p99', \\\n"
            "     '' using 1:6 with linespoints lw 1 pt 3 dt 3 lc rgb 'gray40' title 'malloc median (same live count)', \\\n"
            "     '' using 1:7 with linespoints lw 1 pt 2 dt 3 lc rgb 'gray60' title 'malloc p99 (same live count)'\n",
            svg, dat);
    fclose(g);
    snprintf(cmd, sizeof cmd, "gnuplot '%s' >&2", gp);
    int rc = system(cmd);
    if (rc == 0) printf("Plot: [%s](%s) (gnuplot script: `%s`).\n\n", svg, svg, gp);
    else printf("(no plot: `gnuplot %s` failed, status %d)\n\n", gp, rc);
}

int main(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    int quick = bench_quick();
    int rounds = quick ? 3 : 15;
    double target_s = quick ? 0.01 : 0.08;

    /* Size each allocator's batch from a short pilot so that a round takes
     * about target_s per allocator and thread count. */
    long ops[NA];
    for (int a = 0; a < NA; a++) {
        double pilot = throughput(&allocators[a], 1, 4000, 99);
        double n = pilot * target_s;
        ops[a] = n < 5000 ? 5000 : n > 5e6 ? 5000000 : (long)n;
    }

    static const int thread_counts[] = {1, 2};
    double tput[2][NA][64], ratio[2][NA][64];  /* rounds <= 64 */
    for (int tc = 0; tc < 2; tc++) {
        int threads = thread_counts[tc];
        for (int r = 0; r < rounds; r++) {
            double t[NA] = {0};
            for (int k = 0; k < NA; k++) {
                int a = (k + r) % NA;
                t[a] = throughput(&allocators[a], threads, ops[a] / threads, (uint64_t)r + 1);
            }
            for (int a = 0; a < NA; a++) {
                tput[tc][a][r] = t[a];
                ratio[tc][a][r] = t[a] / t[A_VMC];
            }
        }
    }

    printf("## Code allocation throughput (issue 3)\n\n");
    printf("%d live allocations per thread, sizes 32 B–4 KiB (mean about 870 B), random "
           "free-then-alloc with fixed seeds, 16 bytes written into each new allocation. "
           "One op = one free + one alloc. Median over %d rounds, all allocators in every round "
           "(order rotated); ratios are medians of the per-round ratios. With 2 threads both "
           "share one allocator (one `vmc_t`, one `JitAllocator`). asmjit %s.\n\n",
           LIVE, rounds, ajs_version());
    printf("The ÷ columns divide each row's ops/s by vmcode's in the same round "
           "(above 1: faster than vmcode).\n\n");
    printf("| allocator | 1 thread, ops/s | ÷ vmcode | 2 threads, ops/s | ÷ vmcode |\n");
    printf("|---|---:|---:|---:|---:|\n");
    for (int a = 0; a < NA; a++) {
        char b1[64], b2[64];
        printf("| %s | %s | %.2f | %s | %.2f |\n", allocators[a].name,
               bench_grouped(bench_median(tput[0][a], (size_t)rounds), b1, sizeof b1),
               bench_median(ratio[0][a], (size_t)rounds),
               bench_grouped(bench_median(tput[1][a], (size_t)rounds), b2, sizeof b2),
               bench_median(ratio[1][a], (size_t)rounds));
    }
    printf("\n");

    printf("## vmc_alloc latency vs fill of the code region (issue 3)\n\n");
    static const double levels[] = {1, 50, 90, 99};
    enum { NL = sizeof levels / sizeof levels[0] };
    lat_row_t rows[NL];
    size_t region;
    int samples = quick ? 2000 : 50000;
    latency(rows, levels, NL, samples, &region);
    latency_malloc(rows, NL, samples);
    printf("Default options (code region %zu MiB). Fill is what `vmc_stats` counts as "
           "`code_used` (live allocations rounded to their size class) over the region size. "
           "The region is filled with the size mix above up to each level, then %d times: free "
           "a random live allocation and allocate one (each call timed alone with "
           "`clock_gettime`, whose own cost here is about %.0f ns). A call that fails with "
           "-ENOSPC is not a sample. No memory is written, so the process's resident memory "
           "grows only by the library's bookkeeping (column \"bookkeeping\": RSS growth since "
           "before `vmc_open`, less the benchmark's own arrays). The malloc columns repeat the "
           "same pattern with glibc malloc holding as many live allocations.\n\n",
           region >> 20, samples, timer_overhead());
    printf("| fill | reached (`code_used`) | live requested bytes | live allocations | "
           "alloc median ns | alloc p99 ns | free median ns | free p99 ns | -ENOSPC | "
           "bookkeeping MiB | malloc median ns | malloc p99 ns |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < NL; i++) {
        char b[64];
        printf("| %.0f %% | %.1f %% | %.1f %% | %s | %.0f | %.0f | %.0f | %.0f | %d | %.1f | %.0f | "
               "%.0f |\n",
               rows[i].fill_target, rows[i].fill_used, rows[i].fill_requested,
               bench_grouped((double)rows[i].live, b, sizeof b), rows[i].a_med, rows[i].a_p99,
               rows[i].f_med, rows[i].f_p99, rows[i].enospc, rows[i].meta_mib, rows[i].m_med,
               rows[i].m_p99);
    }
    printf("\nvmc_alloc at 99 %% fill ÷ at 1 %% fill: median %.2f, p99 %.2f. "
           "vmc_alloc ÷ malloc at 99 %% fill: median %.2f, p99 %.2f.\n\n",
           rows[NL - 1].a_med / rows[0].a_med, rows[NL - 1].a_p99 / rows[0].a_p99,
           rows[NL - 1].a_med / rows[NL - 1].m_med, rows[NL - 1].a_p99 / rows[NL - 1].m_p99);
    plot(rows, NL);
    return 0;
}
