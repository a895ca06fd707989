/* bench_open: the cost of vmc_open + vmc_close against the bare system calls.
 *
 * vmc_open reserves the code region (2 GiB by default, placed next to the
 * main program) and the heap region (1 GiB by default, anywhere).  The peer
 * is what any runtime would do at the least: mmap(PROT_NONE, MAP_NORESERVE)
 * of the same sizes and munmap.  Each round times a batch of open/close pairs
 * of every variant, one after the other; the table gives the median over
 * rounds of ns per pair, and the ratio is the median over rounds of the
 * per-round ratio (vmcode / bare of the same sizes, measured back to back).
 *
 * A second table repeats the default case in a process with many mappings,
 * because placing the region next to the program reads /proc/self/maps.
 */
#include "vmcode.h"
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define GiB ((size_t)1 << 30)

enum { V_VMC, V_BARE, V_MAPS, V_NEAR };

typedef struct variant {
    int kind;             /* V_*                                              */
    const char *name;
    const char *opts;     /* V_VMC: option text                               */
    size_t code, heap;    /* V_BARE, V_NEAR: sizes                            */
    int peer;             /* index of the variant to compare with, or -1      */
    int diag;             /* a diagnostic row (where the time goes)          */
} variant_t;

static const variant_t variants[] = {
    {V_VMC, "vmcode, default (2 GiB code + 1 GiB heap)", "", 0, 0, 1, 0},
    {V_BARE, "bare mmap+munmap 2 GiB + 1 GiB", NULL, 2 * GiB, 1 * GiB, -1, 0},
    {V_VMC, "vmcode, `-vmheap_size 0` (2 GiB code)", "-vmheap_size 0", 0, 0, 3, 0},
    {V_BARE, "bare mmap+munmap 2 GiB", NULL, 2 * GiB, 0, -1, 0},
    {V_VMC, "vmcode, `-vmheap_size 0 -no_near_app` (placed at a random base)",
     "-vmheap_size 0 -no_near_app", 0, 0, 3, 1},
    {V_MAPS, "open + read to the end + close of /proc/self/maps (4 KiB reads)", NULL, 0, 0, 3, 1},
    {V_NEAR, "mmap 2 GiB `MAP_FIXED_NOREPLACE` right below the program + munmap", NULL, 2 * GiB, 0,
     3, 1},
};
#define NV (sizeof variants / sizeof variants[0])

static void die(const char *what, int err)
{
    fprintf(stderr, "bench_open: %s: %s (%s)\n", what, vmc_strerror(err), vmc_last_error());
    exit(1);
}

static vmc_options_t opts_of(const char *text)
{
    vmc_options_t o;
    vmc_options_init(&o);
    int r = vmc_options_parse(&o, text);
    if (r) die("vmc_options_parse", r);
    return o;
}

static void bare_pair(size_t code, size_t heap)
{
    const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    void *c = mmap(NULL, code, PROT_NONE, flags, -1, 0);
    if (c == MAP_FAILED) {
        perror("bench_open: mmap");
        exit(1);
    }
    void *h = NULL;
    if (heap) {
        h = mmap(NULL, heap, PROT_NONE, flags, -1, 0);
        if (h == MAP_FAILED) {
            perror("bench_open: mmap");
            exit(1);
        }
    }
    munmap(c, code);
    if (h) munmap(h, heap);
}

static void read_maps(void)
{
    char buf[4096];
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0) {
        perror("bench_open: /proc/self/maps");
        exit(1);
    }
    while (read(fd, buf, sizeof buf) > 0) {}
    close(fd);
}

static uintptr_t image_lo = UINTPTR_MAX;

static int image_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD && info->dlpi_addr + info->dlpi_phdr[i].p_vaddr < image_lo)
            image_lo = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
    return 1;  /* the main program only */
}

/* A 2 GiB reservation ending at the program's first page, 64 KiB aligned:
 * what placing next to the program costs without looking at the map first. */
static void near_pair(size_t size)
{
    uintptr_t at = ((image_lo & ~(uintptr_t)0xffff) - size);
    void *p = mmap((void *)at, size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || (uintptr_t)p != at) {
        perror("bench_open: mmap below the program");
        exit(1);
    }
    munmap(p, size);
}

static double minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_minflt;
}

/* What -w_xor_x needs at the least: a memory file and a second reservation
 * for the writable view. */
static void dual_pair(size_t size)
{
    const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    int fd = memfd_create("bench_open", MFD_CLOEXEC);
    void *x = mmap(NULL, size, PROT_NONE, flags, -1, 0);
    void *w = mmap(NULL, size, PROT_NONE, flags, -1, 0);
    if (fd < 0 || x == MAP_FAILED || w == MAP_FAILED) {
        perror("bench_open: memfd_create/mmap");
        exit(1);
    }
    munmap(x, size);
    munmap(w, size);
    close(fd);
}

static double vmc_pairs(const vmc_options_t *o, int iters)
{
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < iters; i++) {
        vmc_t *h;
        int r = vmc_open(o, &h);
        if (r) die("vmc_open", r);
        vmc_close(h);
    }
    return (double)(bench_now_ns() - t0) / iters;
}

static void wx_section(int quick)
{
    printf("### With `-w_xor_x`\n\n");
    vmc_options_t wx = opts_of("-vmheap_size 0 -w_xor_x"), plain = opts_of("-vmheap_size 0");
    vmc_t *h;
    int e = vmc_open(&wx, &h);
    if (e) {
        printf("Not measured: `vmc_open` with `-w_xor_x` fails in this build: %s.\n\n",
               vmc_last_error());
        return;
    }
    vmc_close(h);
    int rounds = quick ? 3 : 21, iters = quick ? 10 : 100;
    double a[64], b[64], c[64], ab[64], ac[64];
    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = bench_now_ns();
        for (int i = 0; i < iters; i++) dual_pair(2 * GiB);
        b[r] = (double)(bench_now_ns() - t0) / iters;
        a[r] = vmc_pairs(&wx, iters);
        c[r] = vmc_pairs(&plain, iters);
        ab[r] = a[r] / b[r];
        ac[r] = a[r] / c[r];
    }
    char b1[64], b2[64], b3[64];
    printf("`-vmheap_size 0 -w_xor_x` against the least a dual mapping needs (memfd_create + a "
           "second 2 GiB reservation, both released), and against the same open without W^X; "
           "median over %d rounds of %d pairs.\n\n", rounds, iters);
    printf("| variant | ns per open+close | ratio |\n|---|---:|---:|\n");
    printf("| vmcode `-vmheap_size 0 -w_xor_x` | %s | |\n",
           bench_grouped(bench_median(a, (size_t)rounds), b1, sizeof b1));
    printf("| bare memfd_create + 2 × mmap 2 GiB + munmap + close | %s | vmcode ÷ this: %.2f× |\n",
           bench_grouped(bench_median(b, (size_t)rounds), b2, sizeof b2),
           bench_median(ab, (size_t)rounds));
    printf("| vmcode `-vmheap_size 0` (no W^X) | %s | W^X ÷ this: %.2f× |\n\n",
           bench_grouped(bench_median(c, (size_t)rounds), b3, sizeof b3),
           bench_median(ac, (size_t)rounds));
}

/* ns per open/close pair over `iters` pairs; *faults: minor page faults per pair. */
static double run_variant(const variant_t *v, const vmc_options_t *o, int iters, double *faults)
{
    double f0 = minflt();
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < iters; i++) {
        switch (v->kind) {
        case V_VMC: {
            vmc_t *h;
            int r = vmc_open(o, &h);
            if (r) die("vmc_open", r);
            vmc_close(h);
            break;
        }
        case V_BARE: bare_pair(v->code, v->heap); break;
        case V_MAPS: read_maps(); break;
        case V_NEAR: near_pair(v->code); break;
        }
    }
    double ns = (double)(bench_now_ns() - t0) / iters;
    if (faults) *faults = (minflt() - f0) / iters;
    return ns;
}

static int count_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, c;
    if (!f) return -1;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

/* Make the process have about `extra` more mappings: pages with alternating
 * protections so that the kernel cannot merge them. */
static void *add_mappings(int extra, size_t *len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    *len = (size_t)extra * page;
    char *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("bench_open: mmap");
        exit(1);
    }
    for (int i = 1; i < extra; i += 2) mprotect(p + (size_t)i * page, page, PROT_NONE);
    return p;
}

int main(void)
{
    int quick = bench_quick();
    int rounds = quick ? 3 : 31, iters = quick ? 20 : 200;
    vmc_options_t o[NV];
    dl_iterate_phdr(image_cb, NULL);
    for (size_t i = 0; i < NV; i++)
        if (variants[i].kind == V_VMC) o[i] = opts_of(variants[i].opts);

    /* Warm up (page tables, the library's first-use paths). */
    for (size_t i = 0; i < NV; i++) run_variant(&variants[i], &o[i], 10, NULL);

    double ns[NV][64], ratio[NV][64], flt[NV][64];  /* rounds <= 64 */
    for (int r = 0; r < rounds; r++) {
        double t[NV];
        for (size_t k = 0; k < NV; k++) {
            size_t i = (k + (size_t)r) % NV;  /* rotate the order each round */
            t[i] = run_variant(&variants[i], &o[i], iters, &flt[i][r]);
        }
        for (size_t i = 0; i < NV; i++) {
            ns[i][r] = t[i];
            ratio[i][r] = variants[i].peer >= 0 ? t[i] / t[variants[i].peer] : 1;
        }
    }

    vmc_t *h;
    int e = vmc_open(&o[0], &h);
    if (e) die("vmc_open", e);
    vmc_info_t info;
    vmc_info(h, &info);
    vmc_close(h);

    printf("## vmc_open + vmc_close (issue 2)\n\n");
    printf("Median over %d rounds of %d open/close pairs each, all variants in every round "
           "(order rotated). The process has %d mappings. Default placement: step %d "
           "(1 = next to the program), code region %zu MiB, heap region %zu MiB.\n\n",
           rounds, iters, count_mappings(), info.placement, info.code_size >> 20,
           info.heap_size >> 20);
    printf("| variant | ns per open+close | vs bare syscalls, same sizes | page faults per pair |\n");
    printf("|---|---:|---:|---:|\n");
    double med_ratio[NV];
    for (size_t i = 0; i < NV; i++) {
        char buf[64];
        double m = bench_median(ns[i], (size_t)rounds);
        med_ratio[i] = bench_median(ratio[i], (size_t)rounds);
        if (variants[i].diag && (i == 0 || !variants[i - 1].diag)) {
            printf("\nWhere the time goes: the same rounds also timed these pieces, "
                       "per operation, against the bare 2 GiB pair.\n\n"
                       "| piece | ns per op | vs bare 2 GiB mmap+munmap | page faults per op |\n"
                   "|---|---:|---:|---:|\n");
        }
        double f = bench_median(flt[i], (size_t)rounds);
        if (variants[i].peer >= 0)
            printf("| %s | %s | %.2f× | %.1f |\n", variants[i].name,
                   bench_grouped(m, buf, sizeof buf), med_ratio[i], f);
        else
            printf("| %s | %s | (peer) | %.1f |\n", variants[i].name,
                   bench_grouped(m, buf, sizeof buf), f);
    }
    printf("\nGoal (issue 2): at most 2× the bare syscalls. Default: %.2f× — %s; "
           "`-vmheap_size 0`: %.2f× — %s.\n\n",
           med_ratio[0], med_ratio[0] <= 2 ? "met" : "not met", med_ratio[2],
           med_ratio[2] <= 2 ? "met" : "not met");

    wx_section(quick);

    /* Scaling with the number of mappings in the process. */
    static const int extras[] = {1000, 10000};
    printf("### With more mappings in the process\n\n");
    printf("Default options against the bare 2 GiB + 1 GiB pair, after adding mappings "
           "(median over %d rounds).\n\n", quick ? 3 : 9);
    printf("| mappings | vmcode ns | bare ns | ratio |\n|---:|---:|---:|---:|\n");
    for (size_t x = 0; x < sizeof extras / sizeof extras[0]; x++) {
        size_t len;
        void *p = add_mappings(extras[x], &len);
        int n = quick ? 3 : 9, it = extras[x] >= 10000 ? (quick ? 2 : 10) : (quick ? 5 : 50);
        double a[16], b[16], q[16];
        for (int r = 0; r < n; r++) {
            a[r] = run_variant(&variants[0], &o[0], it, NULL);
            b[r] = run_variant(&variants[1], &o[1], it, NULL);
            q[r] = a[r] / b[r];
        }
        char b1[64], b2[64];
        int maps = count_mappings();
        printf("| %d | %s | %s | %.1f× |\n", maps, bench_grouped(bench_median(a, (size_t)n), b1, sizeof b1),
               bench_grouped(bench_median(b, (size_t)n), b2, sizeof b2), bench_median(q, (size_t)n));
        munmap(p, len);
    }
    printf("\n");
    return 0;
}
