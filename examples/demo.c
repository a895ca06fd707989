/* The demonstration (grows with each layer): open a region and show it. */
#include "vmcode.h"

#include <stdio.h>

int main(void)
{
    vmc_t *v;
    int r = vmc_open(NULL, &v);
    if (r) {
        fprintf(stderr, "vmc_open: %s\n", vmc_last_error());
        return 1;
    }
    vmc_info_t in;
    vmc_info(v, &in);
    printf("code region %p, %zu MiB; %.1f %% of it reaches this program by rel32\n", in.code_base,
           in.code_size >> 20, 100.0 * (double)in.code_reaching / (double)in.code_size);
    printf("heap region %p, %zu MiB\n", in.heap_base, in.heap_size >> 20);
    vmc_close(v);
    return 0;
}
