/* The README's example: open a region, emit a function, run it. */
#include <vmcode.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    vmc_t *v;
    if (vmc_open(NULL, &v)) {                      /* 2 GiB next to this program */
        fprintf(stderr, "vmc_open: %s\n", vmc_last_error());
        return 1;
    }
    vmc_span_t f;
    if (vmc_alloc(v, 16, VMC_CODE, &f)) {          /* f.w to write, f.x to run */
        fprintf(stderr, "vmc_alloc: %s\n", vmc_last_error());
        return 1;
    }
    static const unsigned char ret42[] = {0xb8, 42, 0, 0, 0, 0xc3}; /* mov eax,42; ret */
    memcpy(f.w, ret42, sizeof ret42);
    int (*fn)(void) = (int (*)(void))f.x;
    printf("generated code at %p returned %d; reaches main by rel32: %s\n", f.x, fn(),
           vmc_reaches((uintptr_t)f.x + 5, (uintptr_t)&main) ? "yes" : "no");
    vmc_free(v, f.x);
    vmc_close(v);
    return 0;
}
