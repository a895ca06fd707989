#include <vmcode.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    vmc_options_t o;                               /* 2 GiB next to this program, W^X */
    vmc_options_init(&o);
    o.w_xor_x = 1;
    vmc_t *v;
    vmc_lib_t *z;                                  /* a plug-in, mapped into the region */
    if (vmc_open(&o, &v) || vmc_lib_load(v, "/usr/lib/x86_64-linux-gnu/libz.so.1", 0, &z))
        return fprintf(stderr, "%s\n", vmc_last_error()), 1;
    char *crc = vmc_lib_sym(z, "crc32");           /* reachable by rel32 from all code */

    vmc_span_t f;                                  /* f.w to write, f.x to run */
    if (vmc_alloc(v, 16, VMC_CODE, &f)) return fprintf(stderr, "%s\n", vmc_last_error()), 1;
    unsigned char code[5] = {0xe9};                /* jmp rel32 crc32 */
    int32_t rel = (int32_t)(crc - ((char *)f.x + sizeof code));
    memcpy(code + 1, &rel, 4);
    memcpy(f.w, code, sizeof code);
    unsigned long (*fn)(unsigned long, const char *, unsigned) = (void *)f.x;
    printf("crc32(\"vmcode\") = %lu, through a jmp rel32\n", fn(0, "vmcode", 6));
    vmc_close(v);                                  /* unloads libz; the map is as before */
}
