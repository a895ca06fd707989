/* The code heap (see codeheap.h): vmc_alloc, vmc_alloc_reaching, vmc_free,
 * vmc_writable, vmc_executable.
 *
 * Size classes are multiples of 64 bytes up to 1 KiB, then a few steps up to
 * 4 KiB, then 8 KiB; every class is a multiple of 64, so every result is
 * 64-byte aligned and the 4 and 8 KiB classes are page aligned.
 *
 * A slab's objects are tracked by index: `link[]` chains free objects and
 * `live[]` has a bit per allocated object, so a double or stray free is an
 * error (-EINVAL) instead of silent corruption.  The owner pops and pushes its
 * local list without atomics; other threads push onto `remote` (a Treiber
 * stack that is only ever emptied whole, so it has no ABA problem).
 *
 * Thread caches are never freed before vmc_close: when a thread exits its
 * cache goes idle, keeping its slabs, and the next new thread adopts it.
 * Remote frees into an idle cache's slabs wait there until then.
 */
#include "alloc/codeheap.h"
#include "alloc/space.h"
#include "alloc/codeheap.h"
#include "base/error.h"
#include "os/os.h"
#include "arch/arch.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SLAB_SHIFT   16
#define SLAB_SIZE    ((size_t)1 << SLAB_SHIFT)
#define CHUNK_SLABS  16                          /* 1 MiB chunks            */
#define MAX_OBJS     (SLAB_SIZE / 64)
#define NCLASSES     25
#define NKINDS       4                           /* indexed by enum vmc_kind */
#define MAX_SMALL    8192

static const uint32_t class_size[NCLASSES] = {
    64,   128,  192,  256,  320,  384,  448,  512,  576,  640,  704,  768,  832,
    896,  960,  1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 8192,
};

enum { LIST_NONE, LIST_AVAIL, LIST_FULL, LIST_FREE };

typedef struct tcache tcache_t;
typedef struct chunk chunk_t;

typedef struct slab {
    _Atomic(tcache_t *) owner;     /* owning cache; NULL while in the heap  */
    uintptr_t start;               /* address of object 0 (executable view) */
    uint32_t size, cap;            /* object size; objects (0: not carved)  */
    int kind, cls;
    uint32_t free_head;            /* local free list: index + 1, 0 = empty */
    uint32_t bump;                 /* objects past here were never used     */
    uint32_t used;                 /* live objects as the owner counts them */
    _Atomic uint32_t remote;       /* remote free list: index + 1           */
    int list;                      /* which list holds it                   */
    struct slab *next, *prev;
    chunk_t *chunk;
    /* live[] next to the header: a free touches both, so one cache miss
     * instead of two when the slab is cold */
    _Atomic uint64_t live[MAX_OBJS / 64];  /* 1 bit per allocated object    */
    uint16_t link[MAX_OBJS];       /* free-list links: index + 1, 0 = end   */
} slab_t;

struct chunk {
    uintptr_t start;               /* a run of the block layer              */
    uint32_t nslabs, nfree;        /* slabs; slabs back in the heap         */
    int kind;
    chunk_t *next, *prev;
    slab_t slabs[];
};

struct tcache {
    vmc_space_t *v;
    slab_t *cur[NKINDS][NCLASSES];     /* allocating from                   */
    slab_t *avail[NKINDS][NCLASSES];   /* owned, with free objects          */
    slab_t *full[NKINDS][NCLASSES];    /* owned, full when last looked      */
    _Atomic int remote_hint;           /* some full slab got a remote free  */
    _Atomic size_t allocs, frees;      /* written by the owning thread only */
    _Atomic size_t alloc_bytes[NKINDS], free_bytes[NKINDS];
    tcache_t *next_all, *next_idle;
};

struct vmc_codeheap {
    pthread_mutex_t lock;              /* chunks, free slabs, caches, large */
    pthread_key_t key;
    /* The slab of each 64 KiB of the code region, then of the heap region;
     * mapped when the first chunk is made. */
    _Atomic(_Atomic(slab_t *) *) table;
    size_t table_size;                 /* bytes mapped                      */
    uintptr_t table_first[2];          /* address >> SLAB_SHIFT of entry 0  */
    size_t table_len[2];
    slab_t *free_slabs[NKINDS];        /* empty slabs, kind-committed       */
    chunk_t *chunks[NKINDS];
    chunk_t *spare_chunk[NKINDS];      /* one whole free chunk kept back    */
    tcache_t *all, *idle;
    uintptr_t pref_lo, pref_hi;        /* the part of the code region that
                                          reaches the placement target     */
    _Atomic size_t large_allocs;
    _Atomic size_t large_bytes[NKINDS];
};

/* ---- helpers ---------------------------------------------------------------- */

static int size_class(size_t n)
{
    if (n <= 1024) return n ? (int)((n + 63) / 64) - 1 : 0;
    for (int c = 16; c < NCLASSES; c++)
        if (n <= class_size[c]) return c;
    return -1;
}

static void counter_add(_Atomic size_t *c, size_t n)
{
    /* Only the owning thread writes a cache's counters: no RMW needed. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static int region_index(vmc_space_t *v, uintptr_t x)
{
    if (vmc__region_contains(&v->code, x, 1)) return 0;
    if (vmc__region_contains(&v->heap, x, 1)) return 1;
    return -1;
}

static _Atomic(slab_t *) *table_entry(vmc_codeheap_t *h, int ri, uintptr_t x)
{
    _Atomic(slab_t *) *t = atomic_load_explicit(&h->table, memory_order_acquire);
    size_t i = (x >> SLAB_SHIFT) - h->table_first[ri];
    if (!t || i >= h->table_len[ri]) return NULL;
    return t + (ri ? h->table_len[0] : 0) + i;
}

static slab_t *slab_of(vmc_codeheap_t *h, int ri, uintptr_t x)
{
    _Atomic(slab_t *) *e = table_entry(h, ri, x);
    return e ? atomic_load_explicit(e, memory_order_acquire) : NULL;
}

static void slab_table_set(vmc_codeheap_t *h, slab_t *s, slab_t *value)
{
    atomic_store_explicit(table_entry(h, s->kind == VMC_DATA, s->start), value, memory_order_release);
}

/* Map the slab table (heap lock held). */
static int table_ready(vmc_codeheap_t *h)
{
    if (atomic_load_explicit(&h->table, memory_order_relaxed)) return 0;
    void *m;
    int e = vmc__os_mmap(NULL, h->table_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &m);
    if (e) return vmc__fail(e, "code heap: cannot map the slab table: %s", strerror(-e));
    atomic_store_explicit(&h->table, m, memory_order_release);
    return 0;
}

static vmc_blocks_t *blocks_for(vmc_space_t *v, int kind)
{
    return vmc__blocks_of(v, kind == VMC_DATA ? &v->heap : &v->code);
}

static void list_push(slab_t **head, slab_t *s, int list)
{
    s->list = list;
    s->prev = NULL;
    s->next = *head;
    if (*head) (*head)->prev = s;
    *head = s;
}

static void list_remove(slab_t **head, slab_t *s)
{
    if (s->prev) s->prev->next = s->next;
    else *head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->list = LIST_NONE;
}

/* ---- thread caches ---------------------------------------------------------- */

static void tcache_release(void *arg)
{
    tcache_t *tc = arg;
    vmc_codeheap_t *h = tc->v->ch;
    pthread_mutex_lock(&h->lock);
    tc->next_idle = h->idle;
    h->idle = tc;
    pthread_mutex_unlock(&h->lock);
}

static tcache_t *tcache_get(vmc_space_t *v)
{
    vmc_codeheap_t *h = v->ch;
    tcache_t *tc = pthread_getspecific(h->key);
    if (tc) return tc;
    pthread_mutex_lock(&h->lock);
    if (h->idle) {
        tc = h->idle;
        h->idle = tc->next_idle;
    } else if ((tc = calloc(1, sizeof *tc))) {
        tc->v = v;
        tc->next_all = h->all;
        h->all = tc;
    }
    pthread_mutex_unlock(&h->lock);
    if (tc && pthread_setspecific(h->key, tc)) {
        tcache_release(tc);
        tc = NULL;
    }
    return tc;
}

/* ---- chunks and slabs (heap lock held) ---------------------------------------- */

static void chunk_unlink(vmc_codeheap_t *h, chunk_t *c)
{
    if (c->prev) c->prev->next = c->next;
    else h->chunks[c->kind] = c->next;
    if (c->next) c->next->prev = c->prev;
}

static void chunk_release(vmc_space_t *v, chunk_t *c)
{
    vmc_codeheap_t *h = v->ch;
    for (uint32_t i = 0; i < c->nslabs; i++) {
        slab_t *s = &c->slabs[i];
        if (s->list == LIST_FREE) list_remove(&h->free_slabs[c->kind], s);
        slab_table_set(h, s, NULL);
    }
    chunk_unlink(h, c);
    if (vmc__blocks_give(blocks_for(v, c->kind), c->start)) {
        /* Could not re-reserve: keep the chunk, still committed and usable. */
        c->prev = NULL;
        c->next = h->chunks[c->kind];
        if (c->next) c->next->prev = c;
        h->chunks[c->kind] = c;
        for (uint32_t i = 0; i < c->nslabs; i++) {
            slab_t *s = &c->slabs[i];
            slab_table_set(h, s, s);
            list_push(&h->free_slabs[c->kind], s, LIST_FREE);
        }
        return;
    }
    free(c);
}

/* A slab went back to the heap: when its whole chunk is free, keep one such
 * chunk per kind committed (hysteresis) and give older ones back. */
static void slab_retire_locked(vmc_space_t *v, slab_t *s)
{
    vmc_codeheap_t *h = v->ch;
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    s->cap = 0;
    list_push(&h->free_slabs[s->kind], s, LIST_FREE);
    chunk_t *c = s->chunk;
    if (++c->nfree < c->nslabs) return;
    chunk_t *old = h->spare_chunk[c->kind];
    h->spare_chunk[c->kind] = c;
    if (old && old != c && old->nfree == old->nslabs) chunk_release(v, old);
}

/* Unconstrained code-region requests go first to the part of the region
 * that reaches the placement target (by default the program), so generated
 * code can call the program directly unless that part is full. */
static int take_preferring(vmc_space_t *v, vmc_blocks_t *b, size_t len, size_t align, uintptr_t lo,
                           uintptr_t hi, int kind, int owner, uintptr_t *out)
{
    vmc_codeheap_t *h = v->ch;
    int top = kind == VMC_RDATA;
    if (!lo && !hi && kind != VMC_DATA && h->pref_hi > h->pref_lo &&
        vmc__blocks_take(b, len, align, h->pref_lo, h->pref_hi, top, owner, NULL, out) == 0)
        return 0;
    return vmc__blocks_take(b, len, align, lo, hi, top, owner, NULL, out);
}

static int chunk_new(vmc_space_t *v, int kind, uintptr_t lo, uintptr_t hi)
{
    vmc_codeheap_t *h = v->ch;
    vmc_blocks_t *b = blocks_for(v, kind);
    if (!b)
        return vmc__fail(-ENOSPC, "heap region: there is none (-vmheap_size 0) for VMC_DATA");
    static const int owners[NKINDS] = {0, VMC_OWNER_CODE, VMC_OWNER_RDATA, VMC_OWNER_DATA};
    int e = table_ready(h);
    if (e) return e;
    uintptr_t start = 0;
    uint32_t nslabs = CHUNK_SLABS;
    e = take_preferring(v, b, nslabs * SLAB_SIZE, SLAB_SIZE, lo, hi, kind, owners[kind], &start);
    if (e == -ENOSPC) {
        nslabs = 1;
        e = take_preferring(v, b, SLAB_SIZE, SLAB_SIZE, lo, hi, kind, owners[kind], &start);
    }
    if (e) return e;
    chunk_t *c = calloc(1, sizeof *c + nslabs * sizeof(slab_t));
    if (!c) {
        vmc__blocks_give(b, start);
        return vmc__fail(-ENOMEM, "code heap: out of memory for slab metadata");
    }
    e = vmc__blocks_commit(b, start, nslabs * SLAB_SIZE, kind);
    if (e) {
        free(c);
        vmc__blocks_give(b, start);
        return e;
    }
    c->start = start;
    c->nslabs = c->nfree = nslabs;
    c->kind = kind;
    c->next = h->chunks[kind];
    if (c->next) c->next->prev = c;
    h->chunks[kind] = c;
    for (uint32_t i = nslabs; i-- > 0;) {
        slab_t *s = &c->slabs[i];
        s->start = start + i * SLAB_SIZE;
        s->kind = kind;
        s->chunk = c;
        slab_table_set(h, s, s);
        list_push(&h->free_slabs[kind], s, LIST_FREE);
    }
    return 0;
}

static int in_window(uintptr_t a, size_t len, uintptr_t wlo, uintptr_t whi)
{
    return a >= wlo && a + len <= whi;
}

/* An empty slab of `kind` inside [wlo, whi), carved for class `cls` and
 * owned by tc. */
static int slab_acquire(vmc_space_t *v, tcache_t *tc, int kind, int cls, uintptr_t wlo, uintptr_t whi,
                        slab_t **out)
{
    vmc_codeheap_t *h = v->ch;
    int windowed = wlo || whi;
    pthread_mutex_lock(&h->lock);
    slab_t *s = h->free_slabs[kind];
    while (s && windowed && !in_window(s->start, SLAB_SIZE, wlo, whi)) s = s->next;
    if (!s) {
        int e = chunk_new(v, kind, wlo, whi);
        if (e) {
            pthread_mutex_unlock(&h->lock);
            return e;
        }
        s = h->free_slabs[kind];
    }
    list_remove(&h->free_slabs[kind], s);
    chunk_t *c = s->chunk;
    if (c->nfree-- == c->nslabs && h->spare_chunk[kind] == c) h->spare_chunk[kind] = NULL;
    pthread_mutex_unlock(&h->lock);

    s->size = class_size[cls];
    s->cap = (uint32_t)(SLAB_SIZE / s->size);
    s->cls = cls;
    s->free_head = 0;
    s->bump = 0;
    s->used = 0;
    atomic_store_explicit(&s->remote, 0, memory_order_relaxed);
    for (size_t i = 0; i < MAX_OBJS / 64; i++) atomic_store_explicit(&s->live[i], 0, memory_order_relaxed);
    atomic_store_explicit(&s->owner, tc, memory_order_release);
    *out = s;
    return 0;
}

/* ---- the owner's side ----------------------------------------------------------- */

static void slab_collect(slab_t *s)
{
    uint32_t hd = atomic_exchange_explicit(&s->remote, 0, memory_order_acquire);
    while (hd) {
        uint32_t i = hd - 1;
        hd = s->link[i];
        s->link[i] = (uint16_t)s->free_head;
        s->free_head = i + 1;
        s->used--;
    }
}

static int64_t slab_pop(slab_t *s)
{
    uint32_t i;
    if (s->free_head) {
        i = s->free_head - 1;
        s->free_head = s->link[i];
    } else if (s->bump < s->cap) {
        i = s->bump++;
    } else if (atomic_load_explicit(&s->remote, memory_order_relaxed)) {
        slab_collect(s);
        if (!s->free_head) return -1;
        i = s->free_head - 1;
        s->free_head = s->link[i];
    } else {
        return -1;
    }
    s->used++;
    atomic_fetch_or_explicit(&s->live[i / 64], 1ull << (i % 64), memory_order_relaxed);
    return i;
}

static int slab_has_room(const slab_t *s)
{
    return s->free_head || s->bump < s->cap ||
           atomic_load_explicit(&s->remote, memory_order_relaxed);
}

/* cur had no room (or is outside the window): find or make a slab that has. */
static int small_slow(vmc_space_t *v, tcache_t *tc, int kind, int cls, uintptr_t wlo, uintptr_t whi,
                      slab_t **out)
{
    int windowed = wlo || whi;
    slab_t *cur = tc->cur[kind][cls];
    if (cur && !slab_has_room(cur)) {
        list_push(&tc->full[kind][cls], cur, LIST_FULL);
        tc->cur[kind][cls] = cur = NULL;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (slab_t *s = tc->avail[kind][cls]; s; s = s->next) {
            if (windowed && !in_window(s->start, SLAB_SIZE, wlo, whi)) continue;
            list_remove(&tc->avail[kind][cls], s);
            if (cur) list_push(&tc->avail[kind][cls], cur, LIST_AVAIL);
            tc->cur[kind][cls] = s;
            *out = s;
            return 0;
        }
        /* Full slabs may have had objects freed by other threads. */
        if (pass || !atomic_exchange_explicit(&tc->remote_hint, 0, memory_order_acquire)) break;
        for (slab_t *s = tc->full[kind][cls], *next; s; s = next) {
            next = s->next;
            if (atomic_load_explicit(&s->remote, memory_order_relaxed)) {
                list_remove(&tc->full[kind][cls], s);
                list_push(&tc->avail[kind][cls], s, LIST_AVAIL);
            }
        }
    }
    slab_t *s;
    int e = slab_acquire(v, tc, kind, cls, wlo, whi, &s);
    if (e) return e;
    if (cur) list_push(&tc->avail[kind][cls], cur, LIST_AVAIL);
    tc->cur[kind][cls] = s;
    *out = s;
    return 0;
}

static void fill_span(vmc_space_t *v, int kind, uintptr_t x, size_t size, vmc_span_t *out)
{
    out->x = (void *)x;
    out->w = (void *)(kind == VMC_CODE ? x - v->code.base + v->code.wbase : x);
    out->size = size;
}

static int small_alloc(vmc_space_t *v, int kind, int cls, uintptr_t wlo, uintptr_t whi, vmc_span_t *out)
{
    tcache_t *tc = tcache_get(v);
    if (!tc) return vmc__fail(-ENOMEM, "code heap: out of memory for a thread cache");
    int windowed = wlo || whi;
    slab_t *s = tc->cur[kind][cls];
    int64_t i = -1;
    if (s && (!windowed || in_window(s->start, SLAB_SIZE, wlo, whi))) i = slab_pop(s);
    while (i < 0) {
        int e = small_slow(v, tc, kind, cls, wlo, whi, &s);
        if (e) return e;
        i = slab_pop(s);
    }
    counter_add(&tc->allocs, 1);
    counter_add(&tc->alloc_bytes[kind], s->size);
    fill_span(v, kind, s->start + (uintptr_t)i * s->size, s->size, out);
    return 0;
}

static int small_free(vmc_space_t *v, slab_t *s, uintptr_t x)
{
    uintptr_t off = x - s->start;
    uint32_t size = s->size, cap = s->cap;
    if (!cap || !size || off % size || off / size >= cap)
        return vmc__fail(-EINVAL, "vmc_free: %#lx is not the start of an allocation",
                         (unsigned long)x);
    uint32_t i = (uint32_t)(off / size);
    uint64_t bit = 1ull << (i % 64);
    uint64_t was = atomic_fetch_and_explicit(&s->live[i / 64], ~bit, memory_order_relaxed);
    if (!(was & bit))
        return vmc__fail(-EINVAL, "vmc_free: %#lx is not allocated (freed twice?)", (unsigned long)x);
    tcache_t *tc = tcache_get(v);
    tcache_t *owner = atomic_load_explicit(&s->owner, memory_order_acquire);
    if (tc && owner == tc) {
        int kind = s->kind, cls = s->cls;
        s->link[i] = (uint16_t)s->free_head;
        s->free_head = i + 1;
        s->used--;
        if (s->list == LIST_FULL) {
            list_remove(&tc->full[kind][cls], s);
            list_push(&tc->avail[kind][cls], s, LIST_AVAIL);
        }
        if (s->used == 0 && s != tc->cur[kind][cls] && !atomic_load(&s->remote)) {
            list_remove(&tc->avail[kind][cls], s);
            pthread_mutex_lock(&v->ch->lock);
            slab_retire_locked(v, s);
            pthread_mutex_unlock(&v->ch->lock);
        }
    } else {
        uint32_t hd = atomic_load_explicit(&s->remote, memory_order_relaxed);
        do s->link[i] = (uint16_t)hd;
        while (!atomic_compare_exchange_weak_explicit(&s->remote, &hd, i + 1, memory_order_release,
                                                      memory_order_relaxed));
        if (owner) atomic_store_explicit(&owner->remote_hint, 1, memory_order_release);
    }
    if (tc) {
        counter_add(&tc->frees, 1);
        counter_add(&tc->free_bytes[s->kind], size);
    }
    return 0;
}

/* ---- large allocations: a run of their own ------------------------------------ */

static int large_alloc(vmc_space_t *v, size_t size, int kind, uintptr_t wlo, uintptr_t whi, vmc_span_t *out)
{
    vmc_blocks_t *b = blocks_for(v, kind);
    if (!b) return vmc__fail(-ENOSPC, "heap region: there is none (-vmheap_size 0) for VMC_DATA");
    size_t page = vmc__os_page_size(), len = (size + page - 1) & ~(page - 1);
    if (len < size) return vmc__fail(-ENOSPC, "vmc_alloc: %zu bytes do not fit any region", size);
    uintptr_t x;
    int e = take_preferring(v, b, len, page, wlo, whi, kind, VMC_OWNER_LARGE, &x);
    if (e) return e;
    e = vmc__blocks_commit(b, x, len, kind);
    if (e) {
        vmc__blocks_give(b, x);
        return e;
    }
    atomic_fetch_add(&v->ch->large_allocs, 1);
    atomic_fetch_add(&v->ch->large_bytes[kind], len);
    fill_span(v, kind, x, len, out);
    return 0;
}

static int large_free(vmc_space_t *v, vmc_blocks_t *b, uintptr_t x)
{
    vmc_run_t run;
    if (!b || vmc__blocks_find(b, x, &run) || run.owner != VMC_OWNER_LARGE || run.start != x)
        return vmc__fail(-EINVAL, "vmc_free: %#lx is not the start of an allocation",
                         (unsigned long)x);
    int e = vmc__blocks_give(b, x);
    if (e) return e;
    atomic_fetch_sub(&v->ch->large_allocs, 1);
    atomic_fetch_sub(&v->ch->large_bytes[run.kind], run.len);
    return 0;
}

/* ---- the public calls --------------------------------------------------------- */

static int alloc_in(vmc_space_t *v, size_t size, int kind, uintptr_t wlo, uintptr_t whi, vmc_span_t *out)
{
    int cls = size <= MAX_SMALL ? size_class(size) : -1;
    if (cls >= 0) return small_alloc(v, kind, cls, wlo, whi, out);
    return large_alloc(v, size, kind, wlo, whi, out);
}

static int check_args(vmc_space_t *v, int kind, vmc_span_t *out, const char *fn)
{
    if (!v || !out) return vmc__fail(-EINVAL, "%s: NULL argument", fn);
    if (kind != VMC_CODE && kind != VMC_RDATA && kind != VMC_DATA)
        return vmc__fail(-EINVAL, "%s: kind %d is not VMC_CODE, VMC_RDATA or VMC_DATA", fn, kind);
    return 0;
}

int vmc__alloc(vmc_space_t *v, size_t size, int kind, vmc_span_t *out)
{
    int e = check_args(v, kind, out, "vmc_alloc");
    if (e) return e;
    return alloc_in(v, size, kind, 0, 0, out);
}

int vmc__alloc_reaching(vmc_space_t *v, size_t size, int kind, uintptr_t lo, uintptr_t hi, vmc_span_t *out)
{
    int e = check_args(v, kind, out, "vmc_alloc_reaching");
    if (e) return e;
    if (hi < lo) return vmc__fail(-EINVAL, "vmc_alloc_reaching: hi %#lx is below lo %#lx",
                                  (unsigned long)hi, (unsigned long)lo);
    if (hi == lo) return alloc_in(v, size, kind, 0, 0, out);
    vmc_region_t *r = kind == VMC_DATA ? &v->heap : &v->code;
    uintptr_t wlo, whi;
    vmc__reach_window(lo, hi, &wlo, &whi);
    if (wlo <= r->base && whi >= r->base + r->size) return alloc_in(v, size, kind, 0, 0, out);
    uintptr_t a = wlo > r->base ? wlo : r->base;
    uintptr_t b = whi < r->base + r->size ? whi : r->base + r->size;
    if (!r->size || b <= a || b - a < size)
        return vmc__fail(-ENOSPC,
                         "vmc_alloc_reaching: no part of the %s region (%#lx..%#lx) can hold %zu "
                         "bytes reaching %#lx..%#lx",
                         r->name, (unsigned long)r->base, (unsigned long)(r->base + r->size), size,
                         (unsigned long)lo, (unsigned long)hi);
    e = alloc_in(v, size, kind, a, b, out);
    if (e == -ENOSPC)
        return vmc__fail_wrap(e, "vmc_alloc_reaching: %zu bytes reaching %#lx..%#lx", size,
                              (unsigned long)lo, (unsigned long)hi);
    return e;
}

/* The executable-view address for p, which may be in the writable view. */
static uintptr_t to_x(vmc_space_t *v, uintptr_t p)
{
    if (v->code.wx && p >= v->code.wbase && p - v->code.wbase < v->code.size)
        return p - v->code.wbase + v->code.base;
    return p;
}

int vmc__free(vmc_space_t *v, void *p)
{
    if (!v) return vmc__fail(-EINVAL, "vmc_free: NULL handle");
    if (!p) return 0;
    uintptr_t x = to_x(v, (uintptr_t)p);
    int ri = region_index(v, x);
    if (ri < 0)
        return vmc__fail(-EINVAL, "vmc_free: %p is not inside either region", p);
    slab_t *s = slab_of(v->ch, ri, x);
    if (s) return small_free(v, s, x);
    return large_free(v, ri ? v->heap_blocks : v->code_blocks, x);
}

int vmc__codeheap_kind_at(vmc_space_t *v, uintptr_t x)
{
    int ri = region_index(v, x);
    if (ri < 0) return 0;
    slab_t *s = slab_of(v->ch, ri, x);
    if (s) {
        uint32_t cap = s->cap, size = s->size;
        if (!cap || !size) return 0;
        uint32_t i = (uint32_t)((x - s->start) / size);
        if (i >= cap) return 0;
        uint64_t live = atomic_load_explicit(&s->live[i / 64], memory_order_relaxed);
        return live >> (i % 64) & 1 ? s->kind : 0;
    }
    vmc_run_t run;
    if (vmc__blocks_find(ri ? v->heap_blocks : v->code_blocks, x, &run)) return 0;
    if (run.owner == VMC_OWNER_LARGE || run.owner == VMC_OWNER_STUBS) return run.kind;
    return 0;
}

void *vmc__writable(vmc_space_t *v, const void *x)
{
    if (!v) return NULL;
    uintptr_t a = (uintptr_t)x;
    int kind = vmc__codeheap_kind_at(v, a);
    if (!kind) return NULL;
    return (void *)(kind == VMC_CODE ? a - v->code.base + v->code.wbase : a);
}

void *vmc__executable(vmc_space_t *v, const void *w)
{
    if (!v) return NULL;
    uintptr_t x = to_x(v, (uintptr_t)w);
    return vmc__codeheap_kind_at(v, x) == VMC_CODE ? (void *)x : NULL;
}

/* ---- setup, teardown, counts --------------------------------------------------- */

/* Entries of the slab table for region r. */
static size_t table_len_of(const vmc_region_t *r)
{
    return r->size ? ((r->base + r->size - 1) >> SLAB_SHIFT) - (r->base >> SLAB_SHIFT) + 1 : 0;
}

int vmc__codeheap_init(vmc_space_t *v)
{
    vmc_codeheap_t *h = calloc(1, sizeof *h);
    if (!h) return vmc__fail(-ENOMEM, "code heap: out of memory");
    vmc_region_t *rs[2] = {&v->code, &v->heap};
    for (int i = 0; i < 2; i++) {
        h->table_first[i] = rs[i]->base >> SLAB_SHIFT;
        h->table_len[i] = table_len_of(rs[i]);
    }
    size_t page = vmc__os_page_size();
    h->table_size = ((h->table_len[0] + h->table_len[1]) * sizeof(slab_t *) + page - 1) & ~(page - 1);
    if (pthread_key_create(&h->key, tcache_release)) {
        free(h);
        return vmc__fail(-EAGAIN, "code heap: no thread-specific key left (PTHREAD_KEYS_MAX)");
    }
    pthread_mutex_init(&h->lock, NULL);
    if (v->place.reach_hi > v->place.reach_lo) {
        uintptr_t wlo, whi, end = v->code.base + v->code.size;
        vmc__reach_window(v->place.reach_lo, v->place.reach_hi, &wlo, &whi);
        h->pref_lo = wlo > v->code.base ? wlo : v->code.base;
        h->pref_hi = whi < end ? whi : end;
    }
    v->ch = h;
    return 0;
}

void vmc__codeheap_fini(vmc_space_t *v)
{
    vmc_codeheap_t *h = v->ch;
    if (!h) return;
    pthread_key_delete(h->key);
    for (tcache_t *tc = h->all, *next; tc; tc = next) {
        next = tc->next_all;
        free(tc);
    }
    /* The regions are about to go whole: no need to give runs back. */
    for (int k = 0; k < NKINDS; k++)
        for (chunk_t *c = h->chunks[k], *next; c; c = next) {
            next = c->next;
            free(c);
        }
    void *t = atomic_load(&h->table);
    if (t) vmc__os_munmap(t, h->table_size);
    pthread_mutex_destroy(&h->lock);
    free(h);
    v->ch = NULL;
}

void vmc__codeheap_fork_child(vmc_space_t *v)
{
    vmc_codeheap_t *h = v->ch;
    tcache_t *mine = pthread_getspecific(h->key);
    h->idle = NULL;
    for (tcache_t *tc = h->all; tc; tc = tc->next_all)
        if (tc != mine) {
            tc->next_idle = h->idle;
            h->idle = tc;
        }
}

void vmc__codeheap_lock(vmc_space_t *v) { pthread_mutex_lock(&v->ch->lock); }
void vmc__codeheap_unlock(vmc_space_t *v) { pthread_mutex_unlock(&v->ch->lock); }

void vmc__codeheap_counts(vmc_space_t *v, vmc_heap_counts_t *out)
{
    vmc_codeheap_t *h = v->ch;
    memset(out, 0, sizeof *out);
    size_t allocs = 0, frees = 0, ab[NKINDS] = {0}, fb[NKINDS] = {0};
    pthread_mutex_lock(&h->lock);
    for (tcache_t *tc = h->all; tc; tc = tc->next_all) {
        allocs += atomic_load_explicit(&tc->allocs, memory_order_relaxed);
        frees += atomic_load_explicit(&tc->frees, memory_order_relaxed);
        for (int k = 0; k < NKINDS; k++) {
            ab[k] += atomic_load_explicit(&tc->alloc_bytes[k], memory_order_relaxed);
            fb[k] += atomic_load_explicit(&tc->free_bytes[k], memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&h->lock);
    /* The caches' counters are read one after another while other threads
     * run: a free counted before its allocation must not wrap the total. */
    out->allocations = (allocs > frees ? allocs - frees : 0) + atomic_load(&h->large_allocs);
    for (int k = 0; k < NKINDS; k++)
        out->live_bytes[k] = (ab[k] > fb[k] ? ab[k] - fb[k] : 0) + atomic_load(&h->large_bytes[k]);
}
