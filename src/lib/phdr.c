/* dl_iterate_phdr and _dl_find_object over the private libraries too
 * (phdr.h says why).
 *
 * The published libraries of every handle are on one list.  Its lock is
 * held while a callback reads a private library's entry, so the library
 * cannot be unmapped under it; the lock is taken again by the thread that
 * holds it (a callback may load a library, whose publication then needs it),
 * the way the loader's lock is, and for the same reason is not a recursive
 * mutex (fork's child must be able to unlock it).
 *
 * Unwinders that walk with dl_iterate_phdr cache what they found and drop
 * the cache when dlpi_adds or dlpi_subs moved: every entry reports the
 * host's counters plus the number of publications and withdrawals here, so
 * a private library coming or going is seen as an object added or removed.
 */
#include "lib/phdr.h"
#include "base/attrs.h"
#include "lib/tls.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static pthread_mutex_t pub_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ulong pub_owner;   /* the thread holding pub_lock, or 0       */
static int pub_depth;            /* its nesting                             */
static vmc_lib_t *pub_head;      /* published libraries, newest first       */
static atomic_ullong pub_adds, pub_subs;

VMC_LOAD_PATH static void pub_enter(void)
{
    unsigned long self = (unsigned long)pthread_self();
    if (atomic_load_explicit(&pub_owner, memory_order_relaxed) == self) {
        pub_depth++;
        return;
    }
    pthread_mutex_lock(&pub_lock);
    atomic_store_explicit(&pub_owner, self, memory_order_relaxed);
    pub_depth = 1;
}

static void pub_leave(void)
{
    if (--pub_depth > 0) return;
    atomic_store_explicit(&pub_owner, 0, memory_order_relaxed);
    pthread_mutex_unlock(&pub_lock);
}

VMC_LOAD_PATH void vmc__phdr_enter(void) { pub_enter(); }
VMC_LOAD_PATH void vmc__phdr_leave(void) { pub_leave(); }
void vmc__phdr_fork_prepare(void) { pub_enter(); }
void vmc__phdr_fork_release(void) { pub_leave(); }

VMC_LOAD_PATH void vmc__phdr_publish(vmc_lib_t *l)
{
    if (l->flags & VMC_LOAD_INERT) return;
    const Elf64_Phdr *ph = vmc__elf_image_phdrs(&l->o);
    const void *eh = vmc__elf_image_eh_hdr(&l->o);
    pub_enter();
    l->phdr_mem = ph;
    l->ehhdr_mem = eh;
    l->pub_prev = NULL;
    l->pub_next = pub_head;
    if (pub_head) pub_head->pub_prev = l;
    pub_head = l;
    l->published = 1;
    atomic_fetch_add(&pub_adds, 1);
    pub_leave();
}

VMC_LOAD_PATH void vmc__phdr_withdraw(vmc_lib_t *l)
{
    if (!l->published) return;
    pub_enter();
    if (l->pub_prev) l->pub_prev->pub_next = l->pub_next;
    else pub_head = l->pub_next;
    if (l->pub_next) l->pub_next->pub_prev = l->pub_prev;
    l->pub_next = l->pub_prev = NULL;
    l->published = 0;
    atomic_fetch_add(&pub_subs, 1);
    pub_leave();
}

typedef struct walk {
    int (*cb)(struct dl_phdr_info *, size_t, void *);
    void *data;
    unsigned long long adds, subs;   /* the host's, as last reported         */
} walk_t;

static int host_entry(struct dl_phdr_info *info, size_t size, void *arg)
{
    walk_t *w = arg;
    struct dl_phdr_info copy;
    memset(&copy, 0, sizeof copy);
    size_t n = size < sizeof copy ? size : sizeof copy;
    memcpy(&copy, info, n);
    if (n >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof copy.dlpi_subs) {
        w->adds = copy.dlpi_adds;
        w->subs = copy.dlpi_subs;
        copy.dlpi_adds += atomic_load(&pub_adds);
        copy.dlpi_subs += atomic_load(&pub_subs);
    }
    return w->cb(&copy, n, w->data);
}

int vmc__dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
    walk_t w = {cb, data, 0, 0};
    int r = dl_iterate_phdr(host_entry, &w);
    if (r) return r;
    pub_enter();
    for (vmc_lib_t *l = pub_head; l && !r; l = l->pub_next) {
        if (!l->phdr_mem) continue;  /* no headers to show */
        struct dl_phdr_info info;
        memset(&info, 0, sizeof info);
        info.dlpi_addr = l->o.bias;
        info.dlpi_name = l->name;
        info.dlpi_phdr = l->phdr_mem;
        info.dlpi_phnum = (ElfW(Half))l->o.elf.phnum;
        info.dlpi_adds = w.adds + atomic_load(&pub_adds);
        info.dlpi_subs = w.subs + atomic_load(&pub_subs);
        if (l->has_tls_slot) {  /* as glibc: the id, and this thread's block if it has one yet */
            info.dlpi_tls_modid = (size_t)(VMC_TLS_MODID_BASE + l->tls_slot);
            info.dlpi_tls_data = vmc__tls_block(l->tls_slot);
        }
        r = cb(&info, sizeof info, data);
    }
    pub_leave();
    return r;
}

VMC_LOAD_PATH vmc_lib_t *vmc__phdr_first(void) { return pub_head; }

vmc_lib_t *vmc__phdr_find(uintptr_t a)
{
    for (vmc_lib_t *l = pub_head; l; l = l->pub_next)
        if (a >= l->o.run && a - l->o.run < l->o.run_len) return l;
    return NULL;
}

#ifdef DLFO_EH_SEGMENT_TYPE
typedef int (*find_fn)(void *, struct dl_find_object *);
static find_fn host_find;
static pthread_once_t host_find_once = PTHREAD_ONCE_INIT;

/* Looked up rather than linked: libvmcode then runs on a C library older
 * than the function (2.35), where no library can import it either. */
static void find_host_find(void) { host_find = (find_fn)dlsym(RTLD_DEFAULT, "_dl_find_object"); }

int vmc__dl_find_object(void *pc, struct dl_find_object *out)
{
    pub_enter();
    vmc_lib_t *l = vmc__phdr_find((uintptr_t)pc);
    if (l) {
        memset(out, 0, sizeof *out);
        out->dlfo_map_start = (void *)l->o.run;
        out->dlfo_map_end = (void *)(l->o.run + l->o.run_len);
        out->dlfo_link_map = NULL;
        out->dlfo_eh_frame = (void *)l->ehhdr_mem;
        pub_leave();
        return 0;
    }
    pub_leave();
    pthread_once(&host_find_once, find_host_find);
    return host_find ? host_find(pc, out) : -1;
}
#endif
