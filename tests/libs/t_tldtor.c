/* Registers thread-exit destructors the way C++ does for a thread_local
 * object (with its own __dso_handle), and reports to the host when they
 * and its own destructor run. */
#include <stdint.h>

extern int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso);
extern int __cxa_atexit(void (*fn)(void *), void *arg, void *dso);
extern void *__dso_handle;
void vt_tl_event(int what);

static int tags[8];

static void dtor(void *p) { vt_tl_event(100 + *(int *)p); }

/* A destructor for this thread, reporting 100 + tag when it runs. */
int t_tld_register(int tag)
{
    tags[tag & 7] = tag & 7;
    return __cxa_thread_atexit_impl(dtor, &tags[tag & 7], &__dso_handle);
}

void *t_tld_dso(void) { return &__dso_handle; }

static void at_exit_fn(void *p) { vt_tl_event(200 + *(int *)p); }

/* What C++ does for a static object with a destructor: run at the
 * library's unload (by __cxa_finalize, from its destructors), 200 + tag. */
int t_tld_atexit(int tag)
{
    tags[tag & 7] = tag & 7;
    return __cxa_atexit(at_exit_fn, &tags[tag & 7], &__dso_handle);
}

__attribute__((destructor)) static void fini(void) { vt_tl_event(1); }
