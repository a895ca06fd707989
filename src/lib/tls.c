/* Thread-local storage of private libraries: modules, per-thread blocks,
 * __tls_get_addr.
 *
 * The system loader's TLS machinery has no public interface for a module it
 * did not load, so private libraries get their own, beside it (tls.h says
 * how ids are told apart).  Per thread, two initial-exec variables hold a
 * table of block pointers indexed by slot and its length: a second access
 * to a module is two loads from the thread pointer, a compare and a load,
 * with no lock and no call.  The first access in a thread (vmc__tls_slow)
 * takes the lock, grows the table, allocates the block with malloc (never
 * from the code region), copies .tdata into it, zeroes .tbss, and records
 * the table in a list of every thread's tables, so that:
 *
 *   - a thread's blocks are freed when it exits (a pthread key's destructor,
 *     which glibc runs after the thread's C++ thread_local destructors);
 *   - unloading a library frees its block in every thread, under the lock,
 *     and clears the pointer (a slot taken again later starts empty).
 *
 * Writers of a thread's table are that thread (growing it) and an unload
 * (clearing one entry), both under the lock; the lock-free reader is the
 * owning thread, for a slot that is not being unloaded (using a library
 * while it is unloaded is the caller's error, as with dlclose).
 *
 * Out of memory in the first access has no error path to report to: the
 * compiled code dereferences what __tls_get_addr returns.  Like glibc, the
 * process stops with a message naming the library ("cannot allocate memory
 * for thread-local data").  A load never allocates blocks; it can only fail
 * to take a slot, which refuses the load with -ENOMEM.
 */
#include "lib/tls.h"
#include "base/error.h"

#include <errno.h>
#include <link.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* glibc's, for the host's modules; in ld.so. */
extern void *__tls_get_addr(void *ti);

#define IE __attribute__((tls_model("initial-exec")))
/* Also read by tlsdesc.c's resolver. */
__thread void **vmc__tls_blocks IE;     /* this thread's table, by slot    */
__thread size_t vmc__tls_nblocks IE;    /* its length                      */
#define tls_blocks vmc__tls_blocks
#define tls_nblocks vmc__tls_nblocks

typedef struct tls_thread {
    struct tls_thread *next, *prev;     /* every thread's table (under lock) */
    size_t n;                           /* entries in blocks and raw       */
    void **blocks;                      /* block address by slot, or NULL  */
    void **raw;                         /* what malloc gave (NULL: not ours) */
    int exit_round;                     /* thread exit: destructor rounds seen */
} tls_thread_t;

static __thread tls_thread_t *tls_self;

enum { MOD_FREE, MOD_PRIVATE, MOD_HOST, MOD_STATIC };

typedef struct tls_mod {
    int kind;                           /* MOD_*                           */
    char *name;                         /* the library, for the abort message */
    vmc_tls_image_t img;                /* MOD_PRIVATE                     */
    uint64_t host_modid;                /* MOD_HOST: glibc's id            */
    int64_t tpoff;                      /* MOD_STATIC: block - thread pointer */
    unsigned host_refs;                 /* MOD_HOST: libraries using it    */
} tls_mod_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tls_mod_t *mods;                 /* by slot                         */
static size_t nmods, capmods;           /* slots ever used; allocated      */
static tls_thread_t *threads;
static size_t live_blocks;
static pthread_key_t exit_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_err;

static atomic_ulong fault_nth, fault_count;

void vmc__tls_fault(unsigned long nth)
{
    atomic_store(&fault_count, 0);
    atomic_store(&fault_nth, nth);
}

static void *tls_alloc(size_t size)
{
    unsigned long nth = atomic_load(&fault_nth);
    if (nth && atomic_fetch_add(&fault_count, 1) + 1 == nth) return NULL;
    return malloc(size);
}

static void *tls_realloc(void *p, size_t size)
{
    unsigned long nth = atomic_load(&fault_nth);
    if (nth && atomic_fetch_add(&fault_count, 1) + 1 == nth) return NULL;
    return realloc(p, size);
}

size_t vmc__tls_live_blocks(void)
{
    pthread_mutex_lock(&lock);
    size_t n = live_blocks;
    pthread_mutex_unlock(&lock);
    return n;
}

/* ---- threads ------------------------------------------------------------------ */

/* Free t's blocks and unlink it (under the lock). */
static void thread_drop(tls_thread_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->raw[i]) {
            free(t->raw[i]);
            live_blocks--;
        }
    if (t->prev) t->prev->next = t->next;
    else threads = t->next;
    if (t->next) t->next->prev = t->prev;
    free(t->blocks);
    free(t->raw);
    free(t);
}

static void thread_exit(void *p)
{
    /* Other keys' destructors of the same round may still read these
     * variables (a C++ runtime's thread_local list kept under a key): set
     * the key again, and free in the next round, which glibc runs for the
     * keys set during this one. */
    tls_thread_t *t = p;
    if (!t->exit_round++ && !pthread_setspecific(exit_key, t)) return;
    pthread_mutex_lock(&lock);
    thread_drop(p);
    pthread_mutex_unlock(&lock);
    tls_self = NULL;
    tls_blocks = NULL;
    tls_nblocks = 0;
}

/* fork (api.c's handlers, after every handle's locks: an unload takes this
 * one under the loader's). */
void vmc__tls_fork_prepare(void) { pthread_mutex_lock(&lock); }
void vmc__tls_fork_parent(void) { pthread_mutex_unlock(&lock); }

/* Only the forking thread goes on in the child: the others' blocks are
 * copies nobody will use. */
void vmc__tls_fork_child(void)
{
    for (tls_thread_t *t = threads, *next; t; t = next) {
        next = t->next;
        if (t != tls_self) thread_drop(t);
    }
    pthread_mutex_unlock(&lock);
}

static void init_once(void)
{
    vmc__tlsdesc_init();
    once_err = pthread_key_create(&exit_key, thread_exit);
}

/* ---- modules ------------------------------------------------------------------ */

static int take_slot(const char *name, size_t *slot)
{
    pthread_once(&once, init_once);
    if (once_err)
        return vmc__fail(-once_err, "%s: thread-local storage: cannot create the thread-exit key: %s", name,
                         strerror(once_err));
    size_t i = 0;
    while (i < nmods && mods[i].kind != MOD_FREE) i++;
    if (i == nmods) {
        if (nmods == VMC_TLS_MAX_SLOTS)
            return vmc__fail(-ENOMEM, "%s: thread-local storage: %zu modules are loaded already", name,
                             (size_t)VMC_TLS_MAX_SLOTS);
        if (nmods == capmods) {
            size_t cap = capmods ? capmods * 2 : 16;
            tls_mod_t *m = tls_realloc(mods, cap * sizeof *m);
            if (!m) return vmc__fail(-ENOMEM, "%s: out of memory for its thread-local storage module", name);
            mods = m;
            capmods = cap;
        }
        mods[nmods++].kind = MOD_FREE;
    }
    char *copy = tls_alloc(strlen(name) + 1);
    if (!copy) return vmc__fail(-ENOMEM, "%s: out of memory for its thread-local storage module", name);
    strcpy(copy, name);
    memset(&mods[i], 0, sizeof mods[i]);
    mods[i].name = copy;
    *slot = i;
    return 0;
}

int vmc__tls_add(const char *name, const vmc_tls_image_t *img, size_t *slot)
{
    pthread_mutex_lock(&lock);
    int e = take_slot(name, slot);
    if (!e) {
        mods[*slot].kind = MOD_PRIVATE;
        mods[*slot].img = *img;
        if (!mods[*slot].img.align) mods[*slot].img.align = 1;
    }
    pthread_mutex_unlock(&lock);
    return e;
}

/* Clear the slot in every thread, freeing blocks that are ours (under the lock). */
static void slot_clear_blocks(size_t slot)
{
    for (tls_thread_t *t = threads; t; t = t->next) {
        if (slot >= t->n) continue;
        if (t->raw[slot]) {
            free(t->raw[slot]);
            t->raw[slot] = NULL;
            live_blocks--;
        }
        __atomic_store_n(&t->blocks[slot], NULL, __ATOMIC_RELAXED);
    }
}

/* ... and give the slot back. */
static void slot_clear(size_t slot)
{
    slot_clear_blocks(slot);
    free(mods[slot].name);
    memset(&mods[slot], 0, sizeof mods[slot]);
}

void vmc__tls_set_static(size_t slot, int64_t tpoff)
{
    pthread_mutex_lock(&lock);
    if (slot < nmods && mods[slot].kind == MOD_PRIVATE) {
        slot_clear_blocks(slot);  /* (none yet: nothing of the library has run) */
        mods[slot].kind = MOD_STATIC;
        mods[slot].tpoff = tpoff;
    }
    pthread_mutex_unlock(&lock);
}

int vmc__tls_move_static(size_t slot, int64_t tpoff)
{
    pthread_mutex_lock(&lock);
    int e = slot < nmods && mods[slot].kind == MOD_PRIVATE ? 0 : -EINVAL;
    for (tls_thread_t *t = threads; t && !e; t = t->next)
        if (slot < t->n && t->blocks[slot]) e = -EBUSY;
    if (!e) {
        mods[slot].kind = MOD_STATIC;
        mods[slot].tpoff = tpoff;
    }
    pthread_mutex_unlock(&lock);
    return e;
}

int vmc__tls_used(size_t slot)
{
    pthread_mutex_lock(&lock);
    int used = 0;
    for (tls_thread_t *t = threads; t && !used; t = t->next) used = slot < t->n && t->blocks[slot];
    pthread_mutex_unlock(&lock);
    return used;
}

void vmc__tls_remove(size_t slot)
{
    pthread_mutex_lock(&lock);
    if (slot < nmods && (mods[slot].kind == MOD_PRIVATE || mods[slot].kind == MOD_STATIC)) slot_clear(slot);
    pthread_mutex_unlock(&lock);
}

int vmc__tls_host_slot(const char *name, uint64_t modid, size_t *slot)
{
    pthread_mutex_lock(&lock);
    int e = 0;
    size_t i;
    for (i = 0; i < nmods; i++)
        if (mods[i].kind == MOD_HOST && mods[i].host_modid == modid) break;
    if (i < nmods) {
        mods[i].host_refs++;
        *slot = i;
    } else if (!(e = take_slot(name, slot))) {
        mods[*slot].kind = MOD_HOST;
        mods[*slot].host_modid = modid;
        mods[*slot].host_refs = 1;
    }
    pthread_mutex_unlock(&lock);
    return e;
}

void vmc__tls_host_release(size_t slot)
{
    pthread_mutex_lock(&lock);
    if (slot < nmods && mods[slot].kind == MOD_HOST && --mods[slot].host_refs == 0) slot_clear(slot);
    pthread_mutex_unlock(&lock);
}

/* ---- access ------------------------------------------------------------------- */

/* Out of line, so that the fast path saves no register. */
static __attribute__((noinline)) void *get_addr_slow(vmc_tls_index_t *ti)
{
    return (char *)vmc__tls_slow(ti->module - VMC_TLS_MODID_BASE) + ti->offset;
}

void *vmc__tls_get_addr(vmc_tls_index_t *ti)
{
    uint64_t slot = ti->module - VMC_TLS_MODID_BASE;
    if (__builtin_expect(slot < VMC_TLS_MAX_SLOTS, 1)) {
        void *b;
        if (__builtin_expect(slot < tls_nblocks, 1) && (b = __atomic_load_n(&tls_blocks[slot], __ATOMIC_RELAXED)))
            return (char *)b + ti->offset;
        return get_addr_slow(ti);
    }
    return __tls_get_addr(ti);
}

void *vmc__tls_block(size_t slot)
{
    return slot < tls_nblocks ? __atomic_load_n(&tls_blocks[slot], __ATOMIC_RELAXED) : NULL;
}

static _Noreturn void die(const char *what, const char *name, size_t size)
{
    /* no error path exists: the caller dereferences the answer */
    fprintf(stderr, "vmcode: %s: cannot allocate memory for thread-local data (%s, %zu bytes)\n",
            name ? name : "(unknown library)", what, size);
    abort();
}

/* This thread's table, created and registered at its first access. */
static tls_thread_t *self_table(const char *name)
{
    tls_thread_t *t = tls_self;
    if (t) return t;
    t = tls_alloc(sizeof *t);
    if (!t) die("the thread's table", name, sizeof *t);
    memset(t, 0, sizeof *t);
    if (pthread_setspecific(exit_key, t)) {
        free(t);
        die("the thread's exit handler", name, 0);
    }
    t->next = threads;
    if (threads) threads->prev = t;
    threads = t;
    tls_self = t;
    return t;
}

static void table_grow(tls_thread_t *t, size_t slot, const char *name)
{
    if (slot < t->n) return;
    size_t n = t->n ? t->n : 8;
    while (n <= slot) n *= 2;
    void **b = tls_realloc(t->blocks, n * sizeof *b);
    if (!b) die("the thread's table", name, n * sizeof *b);
    t->blocks = b;
    void **r = tls_realloc(t->raw, n * sizeof *r);
    if (!r) die("the thread's table", name, n * sizeof *r);
    t->raw = r;
    memset(b + t->n, 0, (n - t->n) * sizeof *b);
    memset(r + t->n, 0, (n - t->n) * sizeof *r);
    t->n = n;
    tls_blocks = b;
    tls_nblocks = n;
}

/* The malloc'd block for img, at an address congruent to img->vaddr modulo
 * its alignment. */
static void *block_new(const vmc_tls_image_t *img, void **raw, const char *name)
{
    size_t size = (size_t)img->memsz + (size_t)img->align - 1;
    if (!size) size = 1;
    char *r = tls_alloc(size);
    if (!r) die("a block", name, size);
    uintptr_t a = (uintptr_t)r;
    a += ((uintptr_t)img->vaddr - a) & (uintptr_t)(img->align - 1);
    memcpy((void *)a, img->init, (size_t)img->filesz);
    memset((char *)a + img->filesz, 0, (size_t)(img->memsz - img->filesz));
    *raw = r;
    return (void *)a;
}

__attribute__((force_align_arg_pointer, noinline)) void *vmc__tls_slow(size_t slot)
{
    pthread_mutex_lock(&lock);
    if (slot >= nmods || mods[slot].kind == MOD_FREE) {
        pthread_mutex_unlock(&lock);
        fprintf(stderr, "vmcode: thread-local access to module slot %zu, which is not loaded\n", slot);
        abort();
    }
    void *host = NULL;
    if (mods[slot].kind == MOD_HOST) {
        /* glibc's __tls_get_addr may take its own lock: not under ours */
        vmc_tls_index_t ti = {mods[slot].host_modid, 0};
        pthread_mutex_unlock(&lock);
        host = __tls_get_addr(&ti);
        pthread_mutex_lock(&lock);
    }
    const char *name = mods[slot].name;
    tls_thread_t *t = self_table(name);
    table_grow(t, slot, name);
    void *b = t->blocks[slot];
    if (!b) {
        if (host) {
            b = host;
        } else if (mods[slot].kind == MOD_STATIC) {
            b = (char *)vmc__tls_tp() + mods[slot].tpoff;  /* glibc's block, in static TLS */
        } else {
            b = block_new(&mods[slot].img, &t->raw[slot], name);
            live_blocks++;
        }
        __atomic_store_n(&t->blocks[slot], b, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&lock);
    return b;
}

/* ---- host modules ------------------------------------------------------------- */

typedef struct locate {
    uintptr_t addr;
    uint64_t modid, offset;
    uintptr_t data;
    int found;
} locate_t;

static int locate_cb(struct dl_phdr_info *info, size_t size, void *p)
{
    (void)size;
    locate_t *q = p;
    if (!info->dlpi_tls_modid || !info->dlpi_tls_data) return 0;
    uintptr_t data = (uintptr_t)info->dlpi_tls_data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_TLS) continue;
        if (q->addr >= data && q->addr - data < ph->p_memsz + (ph->p_memsz == 0)) {
            q->modid = info->dlpi_tls_modid;
            q->offset = q->addr - data;
            q->data = data;
            q->found = 1;
            return 1;
        }
    }
    return 0;
}

int vmc__tls_host_locate(const void *addr, uint64_t *modid, uint64_t *offset, int *is_static,
                         int64_t *static_off)
{
    locate_t q = {(uintptr_t)addr, 0, 0, 0, 0};
    dl_iterate_phdr(locate_cb, &q);
    if (!q.found) return -ENOENT;
    *modid = q.modid;
    *offset = q.offset;
    /* In the static TLS area, below the thread pointer within the size
     * glibc reserved at start (its _dl_get_tls_static_info, which its
     * thread library uses to size stacks), a block is at the same offset
     * from the thread pointer in every thread.  Anything else is a block
     * glibc allocated on demand. */
    static void (*get_static)(size_t *, size_t *);
    static int looked;
    if (!__atomic_load_n(&looked, __ATOMIC_ACQUIRE)) {
        void (*f)(size_t *, size_t *) = (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
        __atomic_store_n(&get_static, f, __ATOMIC_RELAXED);
        __atomic_store_n(&looked, 1, __ATOMIC_RELEASE);
    }
    void (*f)(size_t *, size_t *) = __atomic_load_n(&get_static, __ATOMIC_RELAXED);
    size_t ssize = 0, salign = 0;
    if (f) f(&ssize, &salign);
    uintptr_t tp = vmc__tls_tp();
    *is_static = q.data < tp && tp - q.data <= ssize;
    *static_off = *is_static ? (int64_t)(q.addr - tp) : 0;
    return 0;
}
