/* A shared library that can also be run as a program, as libc.so.6 and
 * libcap.so.2 can: it has PT_INTERP (the .interp section below) and an
 * entry point (-Wl,-e,t_interp_main).  Built as a PIE it is an executable
 * (DF_1_PIE), which neither loader takes as a library. */
#include <stdio.h>
#include <stdlib.h>

#ifndef T_PIE  /* the linker makes a PIE's own */
const char t_interp_path[] __attribute__((section(".interp"))) = "/lib64/ld-linux-x86-64.so.2";
#endif

int t_interp_value(void) { return 7; }

void t_interp_main(void)
{
    printf("t_interp: run as a program\n");
    exit(0);
}

int main(void)
{
    t_interp_main();
    return 0;
}
