/* A C program linked with libgcc_s, so that the unwinder is one of the
 * objects the process starts with (run by tests/test_unwind.c).  Loads the
 * library given and walks the stack through its frames three ways: the
 * library's backtrace() (vmcode's, driving libgcc_s), libgcc_s's
 * _Unwind_Backtrace called by the host from a callback of the library, and
 * glibc's backtrace() from there.  Prints "walks N M K": the library's
 * frames seen by each (the first two must be at least 2 and 1, the last 1).
 */
#include "vmcode.h"

#include <execinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <unwind.h>
#include "../libs/t_walk.h"

static vmc_lib_t *lib;

static int in_lib(const void *p)
{
    void *s;
    size_t n;
    return !vmc_lib_span(lib, &s, &n) && (const char *)p >= (const char *)s && (const char *)p < (const char *)s + n;
}

static int count(void **buf, int n)
{
    int in = 0;
    for (int i = 0; i < n; i++) in += in_lib(buf[i]);
    return in;
}


static int host_walk(void **buf, int max)
{
    walk_t w = {buf, 0, max};
    _Unwind_Backtrace(walk_cb, &w);
    return w.n;
}

static int glibc_walk(void **buf, int max) { return backtrace(buf, max); }

int main(int argc, char **argv)
{
    vmc_t *v;
    if (argc != 2 || vmc_open(NULL, &v) || vmc_lib_load(v, argv[1], 0, &lib)) {
        fprintf(stderr, "%s\n", vmc_last_error());
        return 2;
    }
    int (*bt)(void **, int) = (int (*)(void **, int))vmc_lib_sym(lib, "t_bt");
    int (*hop)(int (*)(void **, int), void **, int) =
        (int (*)(int (*)(void **, int), void **, int))vmc_lib_sym(lib, "t_bt_hop");
    if (!bt || !hop) return 2;
    void *buf[64];
    int a = count(buf, bt(buf, 64));
    int b = count(buf, hop(host_walk, buf, 64));
    int c = count(buf, hop(glibc_walk, buf, 64));
    printf("walks %d %d %d\n", a, b, c);
    if (vmc_lib_unload(lib)) return 2;
    vmc_close(v);
    return 0;
}
