/* bench_tls: a thread-local variable read in a private library against the
 * same library loaded by dlopen (issue 12).
 *
 * The library is compiled here at start (with $CC, default cc) from the
 * source below, twice: the default dialect (general dynamic: a call to
 * __tls_get_addr per access, vmcode's for the private copy, glibc's for the
 * dlopen one) and TLS descriptors (-mtls-dialect=gnu2: vmcode's resolver,
 * or glibc's, which for a dlopen'd library uses static TLS when its surplus
 * has room).  Its bt_loop(n) calls a non-inlined reader n times, so each
 * iteration is one call and one TLS access: the first access in the thread
 * is made before timing, so every timed one is a second-or-later access.
 * Each round times the four copies in rotated order; figures are medians
 * over rounds, the ratio the median of per-round ratios (dlopen / private:
 * above 1, the private copy is faster).
 *
 *   bench_tls [--quick]
 */
#include "vmcode.h"
#include "bench.h"

#include <dlfcn.h>
#include <unistd.h>

static const char lib_src[] =
    "__thread int bt_var = 3;\n"
    "__attribute__((noipa)) static int bt_read(void) { return *(volatile int *)&bt_var; }\n"
    "int bt_loop(int n) { int s = 0; for (int i = 0; i < n; i++) { s += bt_read(); __asm__ volatile(\"\"); } return s; }\n";

static int build_lib(const char *dir, const char *name, const char *flags, char *out, size_t len)
{
    char src[512], cmd[2048];
    snprintf(src, sizeof src, "%s/bt.c", dir);
    FILE *f = fopen(src, "w");
    if (!f) return -1;
    fputs(lib_src, f);
    fclose(f);
    snprintf(out, len, "%s/%s", dir, name);
    const char *cc = getenv("CC");
    snprintf(cmd, sizeof cmd, "%s -O2 -fPIC -shared %s -o %s %s", cc && *cc ? cc : "cc", flags, out, src);
    return system(cmd) == 0 ? 0 : -1;
}

typedef int (*loop_fn)(int);

static double time_ns(loop_fn f, int n)
{
    uint64_t t0 = bench_now_ns();
    int s = f(n);
    uint64_t t1 = bench_now_ns();
    if (s != 3 * n) {
        fprintf(stderr, "bench_tls: wrong sum %d\n", s);
        exit(1);
    }
    return (double)(t1 - t0) / n;
}

int main(int argc, char **argv)
{
    int quick = bench_quick() || (argc > 1 && !strcmp(argv[1], "--quick"));
    char dir[] = "/tmp/vmc-bench-tls-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    static const char *const names[2] = {"libbt_gd.so", "libbt_desc.so"};
    static const char *const flags[2] = {"", "-mtls-dialect=gnu2"};
    static const char *const label[2] = {"general dynamic (`__tls_get_addr`)", "TLS descriptors (`-mtls-dialect=gnu2`)"};
    char path[2][600];
    vmc_t *v;
    if (vmc_open(NULL, &v)) {
        fprintf(stderr, "bench_tls: vmc_open: %s\n", vmc_last_error());
        return 1;
    }
    loop_fn priv[2], sys[2];
    vmc_lib_t *lib[2];
    void *h[2];
    for (int k = 0; k < 2; k++) {
        if (build_lib(dir, names[k], flags[k], path[k], sizeof path[k])) {
            fprintf(stderr, "bench_tls: cannot compile the library\n");
            return 1;
        }
        if (vmc_lib_load(v, path[k], 0, &lib[k])) {
            fprintf(stderr, "bench_tls: %s\n", vmc_last_error());
            return 1;
        }
        *(void **)&priv[k] = vmc_lib_sym(lib[k], "bt_loop");
        if (!(h[k] = dlopen(path[k], RTLD_NOW | RTLD_LOCAL))) {
            fprintf(stderr, "bench_tls: %s\n", dlerror());
            return 1;
        }
        *(void **)&sys[k] = dlsym(h[k], "bt_loop");
        if (!priv[k] || !sys[k]) return 1;
        priv[k](1);  /* the first access in this thread */
        sys[k](1);
    }
    int rounds = quick ? 3 : 31, n = quick ? 100000 : 2000000;
    double t[4][64], ratio[2][64];
    for (int r = 0; r < rounds; r++) {
        double x[4];
        for (int j = 0; j < 4; j++) {
            int m = (j + r) % 4;
            x[m] = time_ns(m & 1 ? sys[m >> 1] : priv[m >> 1], n);
        }
        for (int m = 0; m < 4; m++) t[m][r] = x[m];
        for (int k = 0; k < 2; k++) ratio[k][r] = x[2 * k + 1] / x[2 * k];
    }
    printf("## Thread-local storage: a variable read in a private library against dlopen\n\n");
    printf("One call of a non-inlined reader plus one access to a `__thread` int, second and later accesses "
           "in the thread (`build/bench/bench_tls`; medians of %d rounds of %d calls, the four copies in "
           "rotated order each round; ratio: the median of per-round dlopen / private, above 1 = the private "
           "copy is faster).\n\n", rounds, n);
    printf("| dialect | private (ns/access) | dlopen (ns/access) | dlopen / private |\n");
    printf("|---|---:|---:|---:|\n");
    for (int k = 0; k < 2; k++)
        printf("| %s | %.2f | %.2f | **%.2f** |\n", label[k], bench_median(t[2 * k], (size_t)rounds),
               bench_median(t[2 * k + 1], (size_t)rounds), bench_median(ratio[k], (size_t)rounds));
    printf("\n");
    for (int k = 0; k < 2; k++) {
        vmc_lib_unload(lib[k]);
        dlclose(h[k]);
        unlink(path[k]);
    }
    char src[600];
    snprintf(src, sizeof src, "%s/bt.c", dir);
    unlink(src);
    rmdir(dir);
    vmc_close(v);
    return 0;
}
