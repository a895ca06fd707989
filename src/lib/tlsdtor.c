/* thread_local destructors of private libraries (tlsdtor.h says why).
 *
 * Each registration for a private library becomes a record {dtor, obj,
 * library}, on the library's list, and the C library is given a destructor
 * of vmcode's with the record as its argument and vmcode's own __dso_handle:
 * the C library keeps its per-thread order (the reverse of registration,
 * across all objects) and keeps libvmcode loaded while records are pending.
 *
 * When the thread exits, the record is taken off the list and counted as
 * running, the library's destructor is called without any lock held (it may
 * do anything, load a library among them), then, under the loader's lock,
 * the library's count drops; at zero, an unload that was left pending is
 * finished (loader.c).  vmc_close drops the records that have not started
 * and waits for the running ones: the thread later finds its record
 * orphaned and calls nothing.
 */
#include "lib/tlsdtor.h"
#include "base/attrs.h"
#include "lib/phdr.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct tdtor {
    void (*fn)(void *);
    void *obj;
    vmc_lib_t *lib;              /* NULL: orphaned by vmc_close             */
    struct tdtor *next, *prev;   /* the library's list                      */
} tdtor_t;

extern int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso);
extern void *__dso_handle;

static pthread_mutex_t dt_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dt_done = PTHREAD_COND_INITIALIZER;
static unsigned long dt_finished;    /* destructors finished: close waits on it */

static atomic_ulong fault_nth, fault_count;

void vmc__tlsdtor_fork_prepare(void) { pthread_mutex_lock(&dt_lock); }
void vmc__tlsdtor_fork_release(void) { pthread_mutex_unlock(&dt_lock); }

void vmc__tlsdtor_fault(unsigned long nth)
{
    atomic_store(&fault_count, 0);
    atomic_store(&fault_nth, nth);
}

static tdtor_t *record_new(void)
{
    unsigned long nth = atomic_load(&fault_nth);
    if (nth && atomic_fetch_add(&fault_count, 1) + 1 == nth) return NULL;
    return malloc(sizeof(tdtor_t));
}

static void unlink_record(tdtor_t *r)
{
    vmc_lib_t *l = r->lib;
    if (r->prev) r->prev->next = r->next;
    else l->tls_dtor_list = r->next;
    if (r->next) r->next->prev = r->prev;
    r->next = r->prev = NULL;
}

static void run_record(void *arg)
{
    tdtor_t *r = arg;
    pthread_mutex_lock(&dt_lock);
    vmc_lib_t *l = r->lib;
    if (l) {
        unlink_record(r);
        l->tls_running++;
    }
    pthread_mutex_unlock(&dt_lock);
    if (l) r->fn(r->obj);
    free(r);
    if (!l) return;
    vmc_loader_t *v = l->v;  /* l and v stay while it is counted running */
    vmc__loader_lock(v);
    pthread_mutex_lock(&dt_lock);
    l->tls_running--;
    size_t left = --l->tls_dtors;
    dt_finished++;
    pthread_cond_broadcast(&dt_done);
    pthread_mutex_unlock(&dt_lock);
    if (!left) vmc__lib_unload_pending(l);
    vmc__loader_unlock(v);
}

int vmc__cxa_thread_atexit(void (*dtor)(void *), void *obj, void *dso)
{
    vmc__phdr_enter();
    vmc_lib_t *l = vmc__phdr_find((uintptr_t)dso);
    if (!l) {
        vmc__phdr_leave();
        return __cxa_thread_atexit_impl(dtor, obj, dso);
    }
    tdtor_t *r = record_new();
    if (!r) {
        vmc__phdr_leave();
        return -1;
    }
    *r = (tdtor_t){dtor, obj, l, NULL, NULL};
    pthread_mutex_lock(&dt_lock);
    r->next = l->tls_dtor_list;
    if (r->next) r->next->prev = r;
    l->tls_dtor_list = r;
    l->tls_dtors++;
    pthread_mutex_unlock(&dt_lock);
    vmc__phdr_leave();
    /* glibc's registration cannot fail (it aborts when out of memory) */
    __cxa_thread_atexit_impl(run_record, r, &__dso_handle);
    return 0;
}

VMC_LOAD_PATH size_t vmc__tlsdtor_pending(vmc_lib_t *l)
{
    pthread_mutex_lock(&dt_lock);
    size_t n = l->tls_dtors;
    pthread_mutex_unlock(&dt_lock);
    return n;
}

void vmc__tlsdtor_close(vmc_loader_t *v)
{
    for (;;) {
        vmc__loader_lock(v);
        pthread_mutex_lock(&dt_lock);
        size_t running = 0;
        for (vmc_lib_t *l = v->libs; l; l = l->next) {
            while (l->tls_dtor_list) {
                tdtor_t *r = l->tls_dtor_list;
                unlink_record(r);
                r->lib = NULL;
                l->tls_dtors--;
            }
            running += l->tls_running;
        }
        unsigned long seen = dt_finished;
        pthread_mutex_unlock(&dt_lock);
        vmc__loader_unlock(v);
        if (!running) return;
        pthread_mutex_lock(&dt_lock);
        while (dt_finished == seen) pthread_cond_wait(&dt_done, &dt_lock);
        pthread_mutex_unlock(&dt_lock);
    }
}
