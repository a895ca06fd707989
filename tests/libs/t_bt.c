/* backtrace() from inside a private library that does not bring libgcc_s
 * with it: the unwinder must still walk through its frames. */
#include <execinfo.h>

__attribute__((noinline)) static int inner(void **buf, int max)
{
    int n = backtrace(buf, max);
    __asm__ volatile("" ::: "memory");  /* not a tail call: this frame stays */
    return n;
}

__attribute__((noinline)) int t_bt(void **buf, int max)
{
    int n = inner(buf, max);
    __asm__ volatile("" ::: "memory");
    return n;
}

/* Calls back into the host, which walks the stack from there. */
__attribute__((noinline)) int t_bt_hop(int (*fn)(void **, int), void **buf, int max)
{
    int n = fn(buf, max);
    __asm__ volatile("" ::: "memory");
    return n;
}
