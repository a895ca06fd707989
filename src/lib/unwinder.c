/* Registering private libraries' unwind tables (unwinder.h says why).
 *
 * The unwinder is found once and kept for the life of the process: the
 * host's __register_frame (its global scope, or the system dependencies of
 * the library being loaded, where libgcc_s comes with libstdc++), or a
 * libgcc_s the process has loaded locally (glibc's backtrace() and
 * pthread_cancel load it that way, where no symbol look-up sees it).  When
 * the process has none when a load has succeeded (before constructors
 * run: a failed load leaves nothing behind), this file loads libgcc_s
 * itself, as glibc's backtrace() would (RTLD_LOCAL, for good): libgcc_s finds a frame
 * only through the tables registered with it, then through the C library's
 * _dl_find_object, which knows only the system loader's objects, and
 * nothing tells a library when libgcc_s arrives later.  Registered at its
 * load, a private library's frames are found by every later walk and
 * exception of the process, whoever brings libgcc_s in afterwards (one
 * copy per process: a later dlopen or DT_NEEDED of it gives the same
 * object).  The object that holds the unwinder is opened once more and
 * never closed, so its functions stay valid whatever else is unloaded
 * (one the process started with is never unloaded: its handle is kept as
 * it is).
 *
 * If that load fails (no libgcc_s on the system), each load searches
 * again, but only when objects were added to the process since the last
 * search (dlpi_adds of dl_iterate_phdr's first entry), so that a process
 * without one pays a walk of its objects only when something changed.  The
 * search and dlopen run under this file's lock alone; registering runs
 * under the publication lock (phdr.c), which also orders it with
 * unpublishing, so every published library is registered exactly once, by
 * whichever comes first: its own load, or the search that found the
 * unwinder.
 */
#include "lib/unwinder.h"
#include "base/attrs.h"
#include "lib/phdr.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <unwind.h>

#define LIBGCC_S "libgcc_s.so.1"

typedef void (*frame_fn)(void *);

static pthread_mutex_t uw_lock = PTHREAD_MUTEX_INITIALIZER;
static frame_fn uw_reg, uw_dereg;    /* set once, never cleared             */
static void *uw_object;              /* the dlopen reference that keeps them */
static int uw_startup;               /* uw_object: a startup object's handle */
static unsigned long long uw_adds = ~0ull;   /* dlpi_adds at the last search */
static int uw_load_failed;           /* dlopen of libgcc_s failed once      */
static int uw_refuse;                /* tests: as if there were no libgcc_s */

void vmc__unwinder_refuse_load(int on)
{
    pthread_mutex_lock(&uw_lock);
    uw_refuse = on;
    pthread_mutex_unlock(&uw_lock);
}

void vmc__unwinder_fork_prepare(void) { pthread_mutex_lock(&uw_lock); }
void vmc__unwinder_fork_release(void) { pthread_mutex_unlock(&uw_lock); }

typedef struct search {
    unsigned long long adds;
    int first, changed;
    char path[4096];                 /* a loaded libgcc_s, or ""            */
} search_t;

static int search_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    search_t *s = arg;
    if (s->first) {
        s->first = 0;
        int has = size >= offsetof(struct dl_phdr_info, dlpi_subs);
        s->adds = has ? info->dlpi_adds : ~0ull;
        if (has && s->adds == uw_adds) return 1;  /* nothing new since the last search */
        s->changed = 1;
    }
    const char *n = info->dlpi_name ? info->dlpi_name : "";
    const char *base = strrchr(n, '/') ? strrchr(n, '/') + 1 : n;
    if (!strcmp(base, LIBGCC_S) && strlen(n) < sizeof s->path) {
        strcpy(s->path, n);
        return 1;
    }
    return 0;
}

/* Keep the object holding reg loaded for good; 1 if it is.  An object the
 * process started with never goes: its handle is kept without asking the
 * system loader (dladdr walks the object's whole symbol table, and a
 * dlopen takes its lock and error-catching path: a fifth of a fresh
 * process's first load). */
VMC_LOAD_PATH static int pin(frame_fn reg, frame_fn dereg)
{
    void *own = vmc__host_startup_owner((void *)reg);
    if (own && own == vmc__host_startup_owner((void *)dereg)) {
        uw_object = own;
        uw_startup = 1;
        uw_dereg = dereg;
        uw_reg = reg;
        return 1;
    }
    Dl_info di;
    if (!dladdr((void *)reg, &di) || !di.dli_fname) return 0;
    void *h = dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    if (!h) return 0;
    uw_object = h;
    uw_dereg = dereg;
    uw_reg = reg;
    return 1;
}

/* Under uw_lock: load libgcc_s as glibc's backtrace() would, for good; 1
 * if its unwinder is the one now.  Tried once: a system without it does
 * not pay a failed search of the library path at every load. */
static int load_libgcc(void)
{
    if (uw_load_failed) return 0;
    void *h = uw_refuse ? NULL : dlopen(LIBGCC_S, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        uw_load_failed = 1;
        return 0;
    }
    frame_fn reg = (frame_fn)dlsym(h, "__register_frame"), dereg = (frame_fn)dlsym(h, "__deregister_frame");
    int ok = reg && dereg && pin(reg, dereg);
    dlclose(h);  /* pin took its own reference */
    if (!ok) uw_load_failed = 1;
    return ok;
}

/* Under uw_lock: find the unwinder (or, with may_load, load one); 1 if it
 * was found just now. */
VMC_LOAD_PATH static int search(vmc_lib_t *l, int may_load)
{
    if (uw_reg) return 0;
    if (l) {
        const vmc_name_t rn = vmc__elf_name("__register_frame");
        frame_fn reg = (frame_fn)vmc__host_sym_for(l, &rn, NULL), dereg = NULL;
        /* its pair is the same object's: one the process started with
         * answers in its own tables, without a second walk of the scope */
        void *own = reg ? vmc__host_startup_owner((void *)reg) : NULL;
        if (own) {
            dereg = (frame_fn)vmc__host_startup_sym(own, "__deregister_frame");
        } else if (reg) {
            const vmc_name_t dn = vmc__elf_name("__deregister_frame");
            dereg = (frame_fn)vmc__host_sym_for(l, &dn, NULL);
        }
        if (reg && dereg && pin(reg, dereg)) return 1;
    }
    search_t s;
    s.first = 1;
    s.changed = 0;
    s.path[0] = 0;
    dl_iterate_phdr(search_cb, &s);
    if (s.changed) {  /* (else nothing came since a search that found none) */
        uw_adds = s.adds;
        if (s.path[0]) {
            void *h = dlopen(s.path, RTLD_NOW | RTLD_NOLOAD);
            frame_fn reg = h ? (frame_fn)dlsym(h, "__register_frame") : NULL;
            frame_fn dereg = h ? (frame_fn)dlsym(h, "__deregister_frame") : NULL;
            int ok = reg && dereg && pin(reg, dereg);
            if (h) dlclose(h);  /* pin took its own reference */
            if (ok) return 1;
        }
    }
    return may_load ? load_libgcc() : 0;
}

/* Under uw_lock: the unwinder's calls (uw_reg set): __register_frame and
 * __deregister_frame, and, when the unwinder is libgcc's, the calls beneath
 * them that take the caller's record (elf/unwind.c says which, and why).
 * Only libgcc's: another unwinder's functions of those names (LLVM's
 * libunwind has some that register nothing, also when it is installed as
 * libgcc_s.so.1, which its unw_* interface tells) are left alone.  Whether that
 * libgcc keeps its records in a list (GCC 12 and before: registering reads
 * nothing, and a table of one may go in) or a b-tree of ranges (GCC 13 and
 * later: a table may not) is told by its version definitions: GCC 13's is
 * the first libgcc_s to define GCC_13.0.0, whose functions on x86-64 are
 * the bfloat16 conversions (__truncsfbf2 among them).  Looked up once, in
 * the unwinder's own object. */
static vmc_elf_unwinder_t uw_fns;
static int uw_fns_known;

static void *unwinder_sym(void *obj, int startup, const char *name);

VMC_LOAD_PATH static const vmc_elf_unwinder_t *unwinder_fns(void)
{
    if (uw_fns_known || !uw_object) return &uw_fns;
    uw_fns_known = 1;
    uw_fns.reg = uw_reg;
    uw_fns.dereg = uw_dereg;
    struct link_map *lm = NULL;
    if (uw_startup) lm = uw_object;   /* a startup object's handle is its link map */
    else if (dlinfo(uw_object, RTLD_DI_LINKMAP, &lm)) return &uw_fns;
    const char *n = lm && lm->l_name ? lm->l_name : "";
    const char *base = strrchr(n, '/') ? strrchr(n, '/') + 1 : n;
    if (strcmp(base, LIBGCC_S)) return &uw_fns;
#if !defined(__x86_64__)
    return &uw_fns;   /* the GCC 13 marker below is x86-64's: elsewhere the plain calls, right for both */
#endif
    /* LLVM's libunwind installed as libgcc_s.so.1 (llvm-libgcc) has calls of
     * these names that register nothing; libgcc has no unw_* interface. */
    if (unwinder_sym(uw_object, uw_startup, "unw_getcontext")) return &uw_fns;
    void *(*dereg)(const void *) =
        (void *(*)(const void *))unwinder_sym(uw_object, uw_startup, "__deregister_frame_info_bases");
    if (!dereg) return &uw_fns;
    if (unwinder_sym(uw_object, uw_startup, "__truncsfbf2"))   /* GCC 13 or later: a b-tree */
        uw_fns.reg_bases = (void (*)(const void *, void *, void *, void *))unwinder_sym(
            uw_object, uw_startup, "__register_frame_info_bases");
    else   /* a list */
        uw_fns.reg_table_bases = (void (*)(void *, void *, void *, void *))unwinder_sym(
            uw_object, uw_startup, "__register_frame_info_table_bases");
    uw_fns.dereg_bases = dereg;
    return &uw_fns;
}

/* Under the publication lock: register every published library not yet
 * registered (just l, unless the unwinder is new). */
static void register_published(vmc_lib_t *l, int all, const vmc_elf_unwinder_t *u)
{
    if (!all) {
        if (l && l->published) vmc__elf_unwind_register(&l->o, u);
        return;
    }
    for (vmc_lib_t *p = vmc__phdr_first(); p; p = p->pub_next) vmc__elf_unwind_register(&p->o, u);
}

VMC_LOAD_PATH static void register_now(vmc_lib_t *l, int may_load)
{
    pthread_mutex_lock(&uw_lock);
    int fresh = search(l, may_load);
    const vmc_elf_unwinder_t *u = uw_reg ? unwinder_fns() : NULL;
    pthread_mutex_unlock(&uw_lock);
    if (!u || (!l && !fresh)) return;
    vmc__phdr_enter();
    register_published(l, fresh, u);
    vmc__phdr_leave();
}

VMC_LOAD_PATH void vmc__unwinder_register(vmc_lib_t *l)
{
    if (!l->published || !l->o.elf.ehhdr_size) return;
    register_now(l, 0);
}

VMC_LOAD_PATH void vmc__unwinder_ready(void)
{
    vmc__phdr_enter();
    int any = vmc__phdr_first() != NULL;
    vmc__phdr_leave();
    if (any) register_now(NULL, 1);
}

typedef struct walk {
    void **buf;
    int size, n, skip;
    uintptr_t (*get_ip)(struct _Unwind_Context *);
} walk_t;

static _Unwind_Reason_Code walk_cb(struct _Unwind_Context *ctx, void *arg)
{
    walk_t *w = arg;
    if (w->skip > 0) {  /* this function's own frame */
        w->skip--;
        return _URC_NO_REASON;
    }
    uintptr_t ip = w->get_ip(ctx);
    if (!ip) return _URC_END_OF_STACK;
    w->buf[w->n++] = (void *)ip;
    return w->n == w->size ? _URC_END_OF_STACK : _URC_NO_REASON;
}

/* A function of the unwinder's own object. */
static void *unwinder_sym(void *obj, int startup, const char *name)
{
    if (!obj) return NULL;
    return startup ? vmc__host_startup_sym(obj, name) : dlsym(obj, name);
}

int vmc__backtrace(void **buf, int size)
{
    if (size <= 0) return 0;
    pthread_mutex_lock(&uw_lock);
    if (!uw_reg) {
        uw_load_failed = 0;  /* what glibc's backtrace would do, tried again */
        if (load_libgcc()) {
            const vmc_elf_unwinder_t *u = unwinder_fns();
            pthread_mutex_unlock(&uw_lock);
            vmc__phdr_enter();
            register_published(NULL, 1, u);
            vmc__phdr_leave();
            pthread_mutex_lock(&uw_lock);
        }
    }
    void *obj = uw_object;
    int startup = uw_startup;
    pthread_mutex_unlock(&uw_lock);
    _Unwind_Reason_Code (*bt)(_Unwind_Trace_Fn, void *) =
        (_Unwind_Reason_Code (*)(_Unwind_Trace_Fn, void *))unwinder_sym(obj, startup, "_Unwind_Backtrace");
    walk_t w = {buf, size, 0, 1, (uintptr_t (*)(struct _Unwind_Context *))unwinder_sym(obj, startup, "_Unwind_GetIP")};
    if (!bt || !w.get_ip) return backtrace(buf, size);  /* an unwinder we cannot drive: the host's answer */
    bt(walk_cb, &w);
    return w.n;
}
