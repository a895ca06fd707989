/* _Unwind_Backtrace from inside a private library.  Built twice: with the
 * shared libgcc_s, and with -static-libgcc, where the library carries its
 * own unwinder, which finds frames through _dl_find_object (or
 * dl_iterate_phdr). */
#include <stdint.h>
#include <unwind.h>
#include "t_walk.h"

__attribute__((noinline)) static int inner(void **buf, int max)
{
    walk_t w = {buf, 0, max};
    _Unwind_Backtrace(walk_cb, &w);
    __asm__ volatile("" ::: "memory");
    return w.n;
}

__attribute__((noinline)) int t_uw(void **buf, int max)
{
    int n = inner(buf, max);
    __asm__ volatile("" ::: "memory");
    return n;
}
