/* _Unwind_Backtrace from inside a private library.  Built twice: with the
 * shared libgcc_s, and with -static-libgcc, where the library carries its
 * own unwinder, which finds frames through _dl_find_object (or
 * dl_iterate_phdr). */
#include <stdint.h>
#include <unwind.h>

typedef struct walk {
    void **buf;
    int n, max;
} walk_t;

static _Unwind_Reason_Code cb(struct _Unwind_Context *ctx, void *arg)
{
    walk_t *w = arg;
    if (w->n == w->max) return _URC_END_OF_STACK;
    w->buf[w->n++] = (void *)_Unwind_GetIP(ctx);
    return _URC_NO_REASON;
}

__attribute__((noinline)) static int inner(void **buf, int max)
{
    walk_t w = {buf, 0, max};
    _Unwind_Backtrace(cb, &w);
    __asm__ volatile("" ::: "memory");
    return w.n;
}

__attribute__((noinline)) int t_uw(void **buf, int max)
{
    int n = inner(buf, max);
    __asm__ volatile("" ::: "memory");
    return n;
}
