/* A program that defines t_host_value and loads libt_needhost.so, which
 * calls it, privately: built with and without -rdynamic, and stripped.
 * Prints "ok N" or "error CODE: MESSAGE". */
#include "vmcode.h"

#include <stdio.h>

int t_host_value(void) { return 42; }

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    vmc_t *v;
    vmc_lib_t *l;
    int r = vmc_open(NULL, &v);
    if (r) {
        printf("error %d: %s\n", r, vmc_last_error());
        return 1;
    }
    if ((r = vmc_lib_load(v, argv[1], 0, &l))) {
        printf("error %d: %s\n", r, vmc_last_error());
        vmc_close(v);
        return 1;
    }
    int (*f)(void) = (int (*)(void))vmc_lib_sym(l, "t_needhost");
    printf("ok %d\n", f ? f() : -1);
    vmc_close(v);
    return 0;
}
