/* A host program linked -no-pie (its image at 0x400000), for the placement
 * tests (tests/test_place.c).  It opens a region with the options given as
 * its one argument (or the defaults), prints what vmc_info says and where brk
 * was, then allocates code that must reach the program's image, writes a
 * `call rel32` to one of the program's functions into it and runs it.
 * Output: one "key value" per line; exit status 0 if all of it worked. */
#include "vmcode.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char __executable_start[], _end[];

__attribute__((noinline)) static int answer(void) { return 42; }

int main(int argc, char **argv)
{
    uintptr_t brk_before = (uintptr_t)sbrk(0);
    vmc_options_t o;
    vmc_options_init(&o);
    if (argc > 1 && vmc_options_parse(&o, argv[1])) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    vmc_t *v;
    if (vmc_open(&o, &v)) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    uintptr_t brk_after = (uintptr_t)sbrk(0);
    vmc_info_t in;
    vmc_info(v, &in);
    printf("image %#lx %#lx\n", (unsigned long)(uintptr_t)__executable_start, (unsigned long)(uintptr_t)_end);
    printf("brk %#lx %#lx\n", (unsigned long)brk_before, (unsigned long)brk_after);
    printf("code %#lx %zu\n", (unsigned long)(uintptr_t)in.code_base, in.code_size);
    printf("target %#lx %#lx\n", (unsigned long)in.reach_lo, (unsigned long)in.reach_hi);
    printf("reaching %zu\n", in.code_reaching);
    printf("placement %d\n", in.placement);
    printf("near_app_failed %d\n", in.near_app_failed);

    /* sub rsp, 8; call answer; add rsp, 8; ret */
    vmc_span_t s;
    if (vmc_alloc_reaching(v, 64, VMC_CODE, in.reach_lo, in.reach_hi, &s)) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    printf("alloc %#lx\n", (unsigned long)(uintptr_t)s.x);
    unsigned char code[] = {0x48, 0x83, 0xec, 0x08, 0xe8, 0, 0, 0, 0, 0x48, 0x83, 0xc4, 0x08, 0xc3};
    int64_t d = (int64_t)((uintptr_t)&answer - ((uintptr_t)s.x + 9));
    if (d < INT32_MIN || d > INT32_MAX) {
        printf("error the allocation does not reach the program (%lld)\n", (long long)d);
        return 1;
    }
    int32_t rel = (int32_t)d;
    memcpy(code + 5, &rel, 4);
    memcpy(s.w, code, sizeof code);
    int (*fn)(void) = (int (*)(void))s.x;
    printf("call %d\n", fn());
    vmc_close(v);
    return 0;
}
