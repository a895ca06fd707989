/* The handle: vmc_open, vmc_close, vmc_info, vmc_stats. */
#include "api/vmc.h"
#include "base/error.h"
#include "os/os.h"
#include "api/options.h"
#include "api/jitnames.h"
#include "lib/tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- fork ----------------------------------------------------------------------
 *
 * A thread may be inside vmcode, holding one of its locks, when another
 * thread forks: the child would then hang on that lock.  One set of
 * pthread_atfork handlers takes every lock of every open handle before fork,
 * in the order the operations take them (loader, stubs, code heap, block
 * maps), then the private libraries' process-wide lists (published
 * libraries, thread-exit destructors, the unwinder), then the OS layer's
 * (its W^X pairs', where a child's copy of the code is made, and its hold
 * list's) and the thread-local storage table's (taken under the loader's by
 * an unload), and releases them on both sides after it.
 */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static vmc_t *handles;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static int fork_err;

static void fork_prepare(void)
{
    pthread_mutex_lock(&handles_lock);
    for (vmc_t *v = handles; v; v = v->next) {
        vmc__space_lock(&v->sp);  /* re-entrant: a constructor may fork */
        pthread_mutex_lock(&v->sp.stubs.lock);
        vmc__codeheap_lock(&v->sp);
        vmc__blocks_lock(v->sp.code_blocks);
        vmc__blocks_lock(v->sp.heap_blocks);
    }
    vmc__phdr_fork_prepare();
    vmc__tlsdtor_fork_prepare();
    vmc__unwinder_fork_prepare();
    vmc__os_fork_prepare();
    vmc__tls_fork_prepare();
}

static void fork_release(void)
{
    vmc__unwinder_fork_release();
    vmc__tlsdtor_fork_release();
    vmc__phdr_fork_release();
    for (vmc_t *v = handles; v; v = v->next) {
        vmc__blocks_unlock(v->sp.heap_blocks);
        vmc__blocks_unlock(v->sp.code_blocks);
        vmc__codeheap_unlock(&v->sp);
        pthread_mutex_unlock(&v->sp.stubs.lock);
        vmc__space_unlock(&v->sp);
    }
    pthread_mutex_unlock(&handles_lock);
}

static void fork_parent(void)
{
    vmc__tls_fork_parent();
    vmc__os_fork_parent();
    fork_release();
}

static void fork_child(void)
{
    vmc__tls_fork_child();
    vmc__os_fork_child();
    /* Only the forking thread exists here: the other threads' caches go idle,
     * for the child's new threads to adopt. */
    for (vmc_t *v = handles; v; v = v->next) vmc__codeheap_fork_child(&v->sp);
    fork_release();
}

static void fork_register(void) { fork_err = vmc__os_atfork(fork_prepare, fork_parent, fork_child); }

#ifndef _WIN32
/* At the process's normal exit (exit(), a return from main) glibc runs the
 * atexit handlers, then _dl_fini runs the DT_FINI_ARRAY and DT_FINI of every
 * object it loaded, each before the objects it depends on.  This function is
 * in that pass as part of whatever holds vmcode (the program, or
 * libvmcode.so, before the C library it and the private libraries use), and
 * after that object's other destructors (the lowest priority a program may
 * use runs last: a program's own destructor may still call its plug-ins, as
 * under dlopen, where the program is finalised before them): the private
 * libraries still loaded get their destructors then, in the reverse of
 * their constructors' order, as dlopen's would (their memory stays; a
 * vmc_close or unload after this runs none again).  One handle at a time,
 * with the handles' list unlocked while its destructors run: they may fork
 * or open and close handles, which take that lock.  A thread inside a load
 * holds the loader's lock, and exit waits for it, as _dl_fini waits for
 * glibc's.  Windows: a private DLL gets no DLL_PROCESS_DETACH at exit
 * (docs/loader.md, "At the process's exit"). */
__attribute__((destructor(101))) static void exit_fini(void)
{
    for (;;) {
        pthread_mutex_lock(&handles_lock);
        vmc_t *v = handles;
        while (v && v->exit_done) v = v->next;
        if (v) v->exit_done = 1;
        pthread_mutex_unlock(&handles_lock);
        if (!v) return;
        vmc__loader_exit(&v->ld);
    }
}
#endif

int vmc_open(const vmc_options_t *o, vmc_t **out)
{
    if (!out) return vmc__fail(-EINVAL, "vmc_open: out is NULL");
    *out = NULL;
    /* VMCODE_OPTIONS applies on top of what the program asked for (or the
     * defaults), as DynamoRIO applies its options from the environment: a
     * user can change a program's region without rebuilding it. */
    vmc_options_t opt;
    if (o) {
        vmc__options_load(&opt, o);  /* a version 1 struct: only that much is read */
        int r = vmc__options_check(&opt);
        if (r) return r;
    } else {
        vmc_options_init(&opt);
    }
    const char *env = getenv("VMCODE_OPTIONS");
    int r = vmc_options_parse(&opt, env);
    if (r) return vmc__fail_wrap(r, "VMCODE_OPTIONS");
    /* Under Arbitrary Code Guard nothing vmcode commits as code could run:
     * say so now rather than with the first allocation's system error. */
    const char *why = NULL;
    r = vmc__os_dynamic_code_allowed(&why);
    if (r == -EPERM)
        return vmc__fail(r, "vmc_open: %s: the system refuses executable memory the process wrote, so no "
                         "code can be generated in it", why);
    if (r) return vmc__fail(r, "vmc_open: GetProcessMitigationPolicy (Arbitrary Code Guard): %s", strerror(-r));
    pthread_once(&fork_once, fork_register);
    if (fork_err) return vmc__fail(fork_err, "vmc_open: pthread_atfork: %s", strerror(-fork_err));
    vmc_t *v = calloc(1, sizeof *v);
    if (!v) return vmc__fail(-ENOMEM, "vmc_open: out of memory for the handle");
    v->opt = opt;
    r = vmc__region_open_code(&v->sp.code, &opt, &v->sp.place);
    if (r) goto fail_handle;
    r = vmc__region_open_heap(&v->sp.heap, &opt);
    if (r) goto fail_code;
    /* No system calls past the reservations: the bookkeeping is mapped when
     * first used. */
    r = vmc__blocks_init(&v->sp.code_blocks, &v->sp.code);
    if (r) goto fail_heap;
    if (v->sp.heap.size && (r = vmc__blocks_init(&v->sp.heap_blocks, &v->sp.heap))) goto fail_code_blocks;
    r = vmc__codeheap_init(&v->sp);
    if (r) goto fail_heap_blocks;
    vmc__stubs_init(&v->sp);
    vmc__space_lock_init(&v->sp);
    pthread_mutex_init(&v->unwind_lock, NULL);
    v->ld.sp = &v->sp;
    pthread_mutex_lock(&handles_lock);
    v->next = handles;
    handles = v;
    pthread_mutex_unlock(&handles_lock);
    vmc__clear_error();
    *out = v;
    return 0;

fail_heap_blocks:
    vmc__blocks_fini(v->sp.heap_blocks);
fail_code_blocks:
    vmc__blocks_fini(v->sp.code_blocks);
fail_heap:
    vmc__region_close(&v->sp.heap);
fail_code:
    vmc__region_close(&v->sp.code);
fail_handle:
    free(v);
    return r;
}

void vmc_close(vmc_t *v)
{
    if (!v) return;
    pthread_mutex_lock(&handles_lock);
    for (vmc_t **p = &handles; *p; p = &(*p)->next)
        if (*p == v) {
            *p = v->next;
            break;
        }
    pthread_mutex_unlock(&handles_lock);
    vmc__loader_close(&v->ld);
    vmc__names_close(v);
    vmc__unwind_close(v);   /* before the code it describes goes */
    vmc__stubs_fini(&v->sp);
    vmc__codeheap_fini(&v->sp);
    vmc__blocks_fini(v->sp.heap_blocks);
    vmc__blocks_fini(v->sp.code_blocks);
    vmc__region_close(&v->sp.heap);
    vmc__region_close(&v->sp.code);
    pthread_mutex_destroy(&v->sp.lock);
    free(v);
}

int vmc_info(vmc_t *v, vmc_info_t *out)
{
    if (!v || !out) return vmc__fail(-EINVAL, "vmc_info: NULL argument");
    memset(out, 0, sizeof *out);
    out->code_base = (void *)v->sp.code.base;
    out->code_size = v->sp.code.size;
    out->code_wbase = (void *)v->sp.code.wbase;
    out->heap_base = v->sp.heap.size ? (void *)v->sp.heap.base : NULL;
    out->heap_size = v->sp.heap.size;
    out->w_xor_x = v->sp.code.wx;
    out->placement = v->sp.place.step;
    out->reach_lo = v->sp.place.reach_lo;
    out->reach_hi = v->sp.place.reach_hi;
    out->code_reaching = v->sp.place.reaching;
    out->near_app_failed = v->sp.place.near_failed;
    out->requested_code_size = v->opt.vm_size;
    out->requested_heap_size = v->opt.vmheap_size;
    out->block_size = vmc__os_granularity();
    out->slot_size = vmc__os_slot_size();
    out->brk_hole = (void *)v->sp.code.hole_lo;
    out->brk_hole_size = v->sp.code.hole_hi - v->sp.code.hole_lo;
    return 0;
}

int vmc_stats(vmc_t *v, vmc_stats_t *out)
{
    if (!v || !out) return vmc__fail(-EINVAL, "vmc_stats: NULL argument");
    memset(out, 0, sizeof *out);
    vmc_blocks_usage_t cu, hu;
    vmc__blocks_usage(v->sp.code_blocks, &cu);
    memset(&hu, 0, sizeof hu);
    if (v->sp.heap_blocks) vmc__blocks_usage(v->sp.heap_blocks, &hu);
    vmc_heap_counts_t hc;
    vmc__codeheap_counts(&v->sp, &hc);
    /* "used": bytes of live allocations (rounded to their size class) plus
     * whole runs held by libraries, file mappings and stubs. */
    out->code_size = v->sp.code.size;
    out->code_used = hc.live_bytes[VMC_CODE] + hc.live_bytes[VMC_RDATA] +
                     cu.bytes[VMC_OWNER_LIBRARY] + cu.bytes[VMC_OWNER_FILE] + cu.bytes[VMC_OWNER_STUBS];
    out->code_committed = cu.committed;
    out->code_largest_free = vmc__codeheap_largest_free(&v->sp, 0);
    out->heap_size = v->sp.heap.size;
    out->heap_used = hc.live_bytes[VMC_DATA] + hu.bytes[VMC_OWNER_FILE];
    out->heap_committed = hu.committed;
    out->allocations = hc.allocations;
    out->libraries = vmc__loader_count(&v->ld);
    out->mapped_files = cu.runs[VMC_OWNER_FILE] + hu.runs[VMC_OWNER_FILE];
    return 0;
}
