/* win_pe_load (Windows): private load+unload of DLLs against the system
 * loader, in one run, the two methods taking turns every round (which one
 * goes first alternating between rounds):
 *   private       vmc_lib_load + vmc_lib_unload (copied into the code region)
 *   LoadLibrary   LoadLibraryEx(LOAD_WITH_ALTERED_SEARCH_PATH) + FreeLibrary
 *                 (the DLL's own directory searched for its dependencies, as
 *                 the private loader looks beside it)
 * for the test DLLs of tests/pe/ (t_pe_chain.dll brings t_pe_mid.dll and
 * t_pe_basic.dll with it).  None of them is loaded otherwise, so every
 * LoadLibrary really loads and every FreeLibrary really unloads.  Prints a
 * markdown section: medians (microseconds) and the median of the per-round
 * ratios.
 *
 *   make bench-windows         (bench/run-windows.sh: under Wine 10 and 8, into BENCHMARKS.md)
 *   make bench-windows-pe      (Wine 10 only, printed), or
 *   win_pe_load.exe DIR [ROUNDS [LABEL]]   (default 400 rounds; LABEL names the Wine)
 *
 * Under Wine the system loader is Wine's (ntdll's loader, over a wineserver
 * round trip for every mapping), not Windows': the ratio says how the two
 * compare there, not on Windows.
 */
#include "vmcode.h"
#include "bench.h"

#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double private_once(vmc_t *v, const char *path)
{
    double t0 = bench_now_us();
    vmc_lib_t *l;
    if (vmc_lib_load(v, path, 0, &l)) {
        fprintf(stderr, "%s\n", vmc_last_error());
        exit(1);
    }
    vmc_lib_unload(l);
    return bench_now_us() - t0;
}

static double system_once(const char *path)
{
    double t0 = bench_now_us();
    HMODULE h = LoadLibraryExA(path, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
    if (!h) {
        fprintf(stderr, "LoadLibrary %s: error %lu\n", path, (unsigned long)GetLastError());
        exit(1);
    }
    FreeLibrary(h);
    return bench_now_us() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [ROUNDS [LABEL]]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 400;
    if (rounds < 1) rounds = 1;
    if (bench_quick()) rounds = 20;
    const char *label = argc > 3 ? argv[3] : "Wine";
    static const char *const dlls[] = {"t_pe_basic.dll", "t_pe_cxx.dll", "t_pe_chain.dll"};
    vmc_t *v;
    if (vmc_open(NULL, &v)) {
        fprintf(stderr, "vmc_open: %s\n", vmc_last_error());
        return 1;
    }
    double *a = malloc(sizeof *a * (size_t)rounds), *b = malloc(sizeof *b * (size_t)rounds),
           *r = malloc(sizeof *r * (size_t)rounds);
    if (!a || !b || !r) return 1;
    printf("### %s: DLLs, private load+unload against LoadLibrary+FreeLibrary\n\n", label);
    printf("`bench/win_pe_load.c`: the test DLLs of tests/pe/, %d rounds each, the two methods taking turns in "
           "every round (the order alternating). Wine's loader is not Windows': these compare vmcode with "
           "Wine's loader, not with Windows'.\n\n", rounds);
    printf("| DLL | private (µs) | LoadLibrary (µs) | private ÷ LoadLibrary (median of per-round ratios) |\n"
           "|---|---:|---:|---:|\n");
    for (size_t d = 0; d < sizeof dlls / sizeof dlls[0]; d++) {
        char path[1024];
        snprintf(path, sizeof path, "%s\\%s", argv[1], dlls[d]);
        for (int i = 0; i < rounds + 5; i++) {
            double tp, ts;
            if (i % 2) {
                ts = system_once(path);
                tp = private_once(v, path);
            } else {
                tp = private_once(v, path);
                ts = system_once(path);
            }
            if (i >= 5) {  /* the first rounds warm the file cache up */
                a[i - 5] = tp;
                b[i - 5] = ts;
                r[i - 5] = tp / ts;
            }
        }
        double ma = bench_median(a, (size_t)rounds), mb = bench_median(b, (size_t)rounds),
               mr = bench_median(r, (size_t)rounds);
        printf("| %s | %.1f | %.1f | %.2f |\n", dlls[d], ma, mb, mr);
    }
    printf("\n");
    vmc_close(v);
    free(a);
    free(b);
    free(r);
    return 0;
}
