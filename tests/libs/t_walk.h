/* An _Unwind_Backtrace callback that records each frame's IP into a buffer
 * (tests/libs/t_unwind.c, a private library's walk; tests/progs/gcc_host.c,
 * the host's). */
#ifndef T_WALK_H
#define T_WALK_H
#include <unwind.h>

typedef struct walk {
    void **buf;
    int n, max;
} walk_t;

static _Unwind_Reason_Code walk_cb(struct _Unwind_Context *ctx, void *arg)
{
    walk_t *w = arg;
    if (w->n == w->max) return _URC_END_OF_STACK;
    w->buf[w->n++] = (void *)_Unwind_GetIP(ctx);
    return _URC_NO_REASON;
}
#endif
