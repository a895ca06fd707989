/* sweep_libs: load every library named on standard input privately, one
 * after another in one process (constructors run, then unload), and print
 * OK or the refusal for each; the last line counts them.  The loader's
 * robustness check on a whole system (docs/loader.md quotes one run).
 *
 *   cc -std=c11 -O2 -D_GNU_SOURCE -Iinclude bench/sweep_libs.c build/libvmcode.a \
 *      -ldl -lpthread -o build/sweep_libs
 *   find /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu -maxdepth 1 -name '*.so*' -type f \
 *      | sort -u | grep -v -E 'lib(a|t|l|ub|hwa)san|grpc|protobuf|protoc' | build/sweep_libs
 *
 * With --inert the libraries are loaded with VMC_LOAD_INERT (nothing run).
 */
#include "vmcode.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    int flags = argc > 1 && !strcmp(argv[1], "--inert") ? VMC_LOAD_INERT : 0;
    vmc_t *v;
    if (vmc_open(NULL, &v)) {
        fprintf(stderr, "sweep_libs: vmc_open: %s\n", vmc_last_error());
        return 1;
    }
    char line[4096];
    int ok = 0, refused = 0;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) continue;
        vmc_lib_t *l;
        int r = vmc_lib_load(v, line, flags, &l);
        if (r == 0) {
            ok++;
            vmc_lib_unload(l);
            printf("OK %s\n", line);
        } else {
            refused++;
            printf("ERR %d %s\n", r, vmc_last_error());
        }
        fflush(stdout);
    }
    printf("%d loaded and unloaded, %d refused\n", ok, refused);
    vmc_close(v);
    return 0;
}
