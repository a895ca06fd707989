/* A library for the debugger tests (tests/test_debug.c), built with -O0 -g
 * so that gdb shows its arguments and lines.  The marked line is looked
 * for by the tests. */
int t_dbg_leaf(int x);
int t_dbg_entry(int x);

int t_dbg_leaf(int x)
{
    return x * 3 + 1; /* T_DBG_LEAF_LINE */
}

int t_dbg_entry(int x)
{
    return t_dbg_leaf(x + 1) + 1;
}

/* Work for the profiler test: samples land here. */
int t_dbg_spin(int n);

int t_dbg_spin(int n)
{
    volatile int s = 0;
    for (int i = 0; i < n; i++) s += i;
    return s;
}

/* One real error for memcheck to report (tests/test_debug.c checks that it
 * is the only one, and that the report names this function and its line):
 * a branch on memory malloc never initialised. */
#include <stdlib.h>
int t_dbg_uninit(void);

int t_dbg_uninit(void)
{
    int *volatile p = malloc(sizeof *p);  /* volatile: the compiler cannot see the read is of nothing */
    int r = *p > 0 ? 1 : 2; /* T_DBG_UNINIT_LINE */
    free(p);
    return r;
}
