/* One C++ runtime per process, for a library that carries its own copy.
 *
 * A plug-in linked with -static-libstdc++ defines (and exports) the C++
 * runtime's names itself: __cxa_throw, __gxx_personality_v0, the standard
 * classes' type_info and members.  Private libraries bind to themselves
 * first, so it kept that copy, and in a C++ host two runtimes met: an
 * exception thrown by the plug-in's __cxa_throw and unwound by its own
 * unwinder reached the host's frames, whose personality routine (the
 * host's) drove the plug-in's unwind context through the host's libgcc_s
 * (which aborts when its register table was never set up), and even where
 * that held, a catch in the host counted the exception out of the host's
 * runtime while the plug-in's had counted it in (std::uncaught_exceptions()
 * stays -1 after).  The system loader searches the global scope first, so
 * under dlopen every such name binds to the host's runtime: there is one.
 *
 * So when the process's global scope has a C++ runtime (the object
 * defining __gxx_personality_v0) and a library defines that symbol too,
 * each symbol the library defines that the runtime object also defines is
 * bound to the global scope's definition (the runtime's, or the program's
 * copy of one of its variables), as dlopen binds it; every other symbol of
 * the library stays its own (self first).  A name vmcode interposes
 * (__cxa_thread_atexit: thread_local destructors are counted on the
 * library) goes to vmcode's.  Thread-local symbols stay the library's.
 * The library's own unwinder (-static-libgcc, hidden) runs only where its
 * code calls it directly, as under dlopen.
 */
#include "lib/cxxrt.h"
#include "base/attrs.h"
#include "lib/interpose.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

/* The runtime object, found once and kept (the handle holds it loaded):
 * its handle, and its PT_LOAD extent. */
static pthread_mutex_t rt_lock = PTHREAD_MUTEX_INITIALIZER;
static void *rt_handle;
static uintptr_t rt_lo, rt_hi;

typedef struct span {
    uintptr_t addr, lo, hi;
} span_t;

static int span_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    span_t *s = arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo) lo = a;
        if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
    }
    if (s->addr < lo || s->addr >= hi) return 0;
    s->lo = lo;
    s->hi = hi;
    return 1;
}

/* Under rt_lock: find the object defining the global scope's personality
 * routine; 1 if there is one. */
static int find_runtime(void *personality)
{
    if (rt_handle) return 1;
    Dl_info di;
    span_t s = {(uintptr_t)personality, 0, 0};
    if (!dladdr(personality, &di) || !di.dli_fname || !dl_iterate_phdr(span_cb, &s)) return 0;
    void *h = dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    if (!h) return 0;
    rt_lo = s.lo;
    rt_hi = s.hi;
    rt_handle = h;
    return 1;
}

VMC_LOAD_PATH void vmc__lib_runtime_check(vmc_lib_t *l)
{
    l->o.runtime_first = 0;
    if (l->flags & VMC_LOAD_INERT) return;
    const vmc_name_t key = vmc__elf_name("__gxx_personality_v0");
    uintptr_t own;
    int ifunc;
    if (!vmc__elf_find(&l->o, &key, NULL, &own, &ifunc)) return;
    void *host = vmc__host_sym(RTLD_DEFAULT, &key, NULL);
    if (!host || host == (void *)own) return;
    pthread_mutex_lock(&rt_lock);
    l->o.runtime_first = find_runtime(host) && (uintptr_t)host >= rt_lo && (uintptr_t)host < rt_hi;
    pthread_mutex_unlock(&rt_lock);
}

int vmc__lib_runtime_sym(const vmc_elf_obj_t *o, const char *name, const vmc_ver_t *ver, uintptr_t *value)
{
    (void)o;
    pthread_mutex_lock(&rt_lock);
    void *h = rt_handle;
    uintptr_t lo = rt_lo, hi = rt_hi;
    pthread_mutex_unlock(&rt_lock);
    void *q = !h ? NULL : ver && ver->name ? dlvsym(h, name, ver->name) : dlsym(h, name);
    if (!q || (uintptr_t)q < lo || (uintptr_t)q >= hi) return 0;  /* not a name of the runtime object */
    const vmc_name_t key = vmc__elf_name(name);
    void *own = vmc__interposed(&key, ver);
    void *p = own ? own : vmc__host_sym(RTLD_DEFAULT, &key, ver ? ver->name : NULL);
    if (!p) return 0;
    *value = (uintptr_t)p;
    return 1;
}
