/* win_pe_load (Windows): private load+unload of DLLs against the system
 * loader, in one run, the two methods taking turns every round:
 *   private       vmc_lib_load + vmc_lib_unload (copied into the code region)
 *   LoadLibrary   LoadLibraryEx(LOAD_WITH_ALTERED_SEARCH_PATH) + FreeLibrary
 *                 (the DLL's own directory searched for its dependencies, as
 *                 the private loader looks beside it)
 * for the test DLLs of tests/pe/ (t_pe_chain.dll brings t_pe_mid.dll and
 * t_pe_basic.dll with it).  None of them is loaded otherwise, so every
 * LoadLibrary really loads and every FreeLibrary really unloads.  Prints a
 * markdown table of medians (microseconds) and their ratio.
 *
 *   make bench-windows-pe      (builds build/windows/win_pe_load.exe, runs it under Wine 10), or
 *   win_pe_load.exe DIR [ROUNDS]          (default 400 rounds)
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


int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [ROUNDS]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 400;
    if (rounds < 1) rounds = 1;
    static const char *const dlls[] = {"t_pe_basic.dll", "t_pe_cxx.dll", "t_pe_chain.dll"};
    vmc_t *v;
    if (vmc_open(NULL, &v)) {
        fprintf(stderr, "vmc_open: %s\n", vmc_last_error());
        return 1;
    }
    double *a = malloc(sizeof *a * (size_t)rounds), *b = malloc(sizeof *b * (size_t)rounds);
    if (!a || !b) return 1;
    printf("## DLLs: private load+unload vs LoadLibrary+FreeLibrary (Windows, under Wine)\n\n");
    printf("Median of %d rounds, the methods taking turns; Wine's loader is not Windows'.\n\n", rounds);
    printf("| DLL | private (us) | LoadLibrary (us) | private / LoadLibrary |\n|---|---|---|---|\n");
    for (size_t d = 0; d < sizeof dlls / sizeof dlls[0]; d++) {
        char path[1024];
        snprintf(path, sizeof path, "%s\\%s", argv[1], dlls[d]);
        for (int i = 0; i < rounds + 5; i++) {
            double t0 = bench_now_us();
            vmc_lib_t *l;
            if (vmc_lib_load(v, path, 0, &l)) {
                fprintf(stderr, "%s\n", vmc_last_error());
                return 1;
            }
            vmc_lib_unload(l);
            double t1 = bench_now_us();
            HMODULE h = LoadLibraryExA(path, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
            if (!h) {
                fprintf(stderr, "LoadLibrary %s: error %lu\n", path, (unsigned long)GetLastError());
                return 1;
            }
            FreeLibrary(h);
            double t2 = bench_now_us();
            if (i >= 5) {  /* the first rounds warm the file cache up */
                a[i - 5] = t1 - t0;
                b[i - 5] = t2 - t1;
            }
        }
        double ma = bench_median(a, (size_t)rounds), mb = bench_median(b, (size_t)rounds);
        printf("| %s | %.1f | %.1f | %.2f |\n", dlls[d], ma, mb, ma / mb);
    }
    printf("\n");
    vmc_close(v);
    free(a);
    free(b);
    return 0;
}
