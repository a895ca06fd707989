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
 * cache gives its empty slabs back and goes idle, keeping the others, and the
 * next new thread adopts it.
 *
 * What the heap keeps for itself never makes a request fail: a few wholly
 * free chunks stay committed for reuse (KEEP_CHUNKS per kind), a thread's
 * current slab may be empty, and remote frees may wait in a slab.  Before a
 * take from a region fails, whoever takes (this heap, or the loader, the file
 * mapper and the stubs through the block layer's reclaimer) has the heap give
 * back the kept chunks and the empty slabs of the calling thread's cache and
 * of idle caches, and tries again.  vmc_stats counts the kept chunks as free.
 * An empty slab another running thread holds stays with it (its owner's
 * fields are not ours to touch) until that thread frees into its chunk again
 * or exits.
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
#include <inttypes.h>

#define SLAB_SHIFT   16
#define SLAB_SIZE    ((size_t)1 << SLAB_SHIFT)
#define CHUNK_SLABS  16                          /* 1 MiB chunks            */
#define MAX_OBJS     (SLAB_SIZE / 64)
#define NCLASSES     25
#define NKINDS       4                           /* indexed by enum vmc_kind */
#define MAX_SMALL    8192
#define KEEP_CHUNKS  4                           /* wholly free, per kind   */

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
    uint32_t nslabs;               /* slabs                                 */
    _Atomic uint32_t nfree;        /* slabs back in the heap: written under
                                      the heap lock, read without it by an
                                      owner that empties a slab here       */
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
    chunk_t *kept[NKINDS][KEEP_CHUNKS]; /* wholly free chunks kept committed,
                                          oldest first                     */
    int nkept[NKINDS];
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
    int e = vmc__os_alloc(h->table_size, &m);
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

static int cache_drop_empty(vmc_space_t *v, tcache_t *tc, int ri);

static void tcache_release(void *arg)
{
    tcache_t *tc = arg;
    vmc_codeheap_t *h = tc->v->ch;
    pthread_mutex_lock(&h->lock);
    /* Its thread is gone: slabs it kept empty are of no use to anyone. */
    cache_drop_empty(tc->v, tc, 0);
    cache_drop_empty(tc->v, tc, 1);
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

static void slab_collect(slab_t *s);
static int slab_has_room(const slab_t *s);

static void chunk_unlink(vmc_codeheap_t *h, chunk_t *c)
{
    if (c->prev) c->prev->next = c->next;
    else h->chunks[c->kind] = c->next;
    if (c->next) c->next->prev = c->prev;
}

/* Give a wholly free chunk back to the block layer: 0 if it went.  If it
 * cannot be re-reserved it stays, committed and usable. */
static int chunk_release(vmc_space_t *v, chunk_t *c)
{
    vmc_codeheap_t *h = v->ch;
    for (uint32_t i = 0; i < c->nslabs; i++) {
        slab_t *s = &c->slabs[i];
        if (s->list == LIST_FREE) list_remove(&h->free_slabs[c->kind], s);
        slab_table_set(h, s, NULL);
    }
    chunk_unlink(h, c);
    int e = vmc__blocks_give(blocks_for(v, c->kind), c->start);
    if (e) {
        c->prev = NULL;
        c->next = h->chunks[c->kind];
        if (c->next) c->next->prev = c;
        h->chunks[c->kind] = c;
        for (uint32_t i = 0; i < c->nslabs; i++) {
            slab_t *s = &c->slabs[i];
            slab_table_set(h, s, s);
            list_push(&h->free_slabs[c->kind], s, LIST_FREE);
        }
        return e;
    }
    free(c);
    return 0;
}

static void kept_remove(vmc_codeheap_t *h, chunk_t *c)
{
    int k = c->kind;
    for (int i = 0; i < h->nkept[k]; i++)
        if (h->kept[k][i] == c) {
            memmove(&h->kept[k][i], &h->kept[k][i + 1],
                    (size_t)(h->nkept[k] - i - 1) * sizeof h->kept[k][0]);
            h->nkept[k]--;
            return;
        }
}

/* A slab went back to the heap.  A chunk it leaves wholly free stays
 * committed for reuse (hysteresis: a heap that empties and fills again by
 * a few MiB makes no system call); beyond KEEP_CHUNKS per kind the oldest
 * kept one goes back to the block layer. */
static void slab_retire_locked(vmc_space_t *v, slab_t *s)
{
    vmc_codeheap_t *h = v->ch;
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    s->cap = 0;
    list_push(&h->free_slabs[s->kind], s, LIST_FREE);
    chunk_t *c = s->chunk;
    uint32_t nfree = atomic_load_explicit(&c->nfree, memory_order_relaxed) + 1;
    atomic_store_explicit(&c->nfree, nfree, memory_order_relaxed);
    if (nfree < c->nslabs) return;
    int k = c->kind;
    if (h->nkept[k] == KEEP_CHUNKS) {
        chunk_t *old = h->kept[k][0];
        kept_remove(h, old);
        chunk_release(v, old);  /* if it stays, a reclaim tries again */
    }
    h->kept[k][h->nkept[k]++] = c;
}

/* Take a slab of cache tc (the caller's own, or an idle one) off the
 * cache's lists and give it to the heap.  0 if it is on none of them. */
static int slab_drop_locked(vmc_space_t *v, tcache_t *tc, slab_t *s)
{
    int k = s->kind, c = s->cls;
    if (s->list == LIST_AVAIL) list_remove(&tc->avail[k][c], s);
    else if (s->list == LIST_FULL) list_remove(&tc->full[k][c], s);
    else if (tc->cur[k][c] == s) tc->cur[k][c] = NULL;
    else return 0;
    slab_retire_locked(v, s);
    return 1;
}

/* Hand the empty slabs of cache tc in region ri (0 code, 1 heap) back to the
 * heap, collecting remote frees first (heap lock held; tc is the calling
 * thread's own cache or an idle one, whose fields no other thread touches).
 * Returns how many went back. */
static int cache_drop_empty(vmc_space_t *v, tcache_t *tc, int ri)
{
    int n = 0;
    for (int k = 1; k < NKINDS; k++) {
        if ((k == VMC_DATA) != ri) continue;
        for (int c = 0; c < NCLASSES; c++) {
            slab_t *cur = tc->cur[k][c];
            if (cur) {
                slab_collect(cur);
                if (cur->used == 0) n += slab_drop_locked(v, tc, cur);
            }
            for (int l = 0; l < 2; l++)
                for (slab_t *s = l ? tc->full[k][c] : tc->avail[k][c], *next; s; s = next) {
                    next = s->next;
                    slab_collect(s);
                    if (s->used == 0) {
                        n += slab_drop_locked(v, tc, s);
                    } else if (l && slab_has_room(s)) {
                        list_remove(&tc->full[k][c], s);
                        list_push(&tc->avail[k][c], s, LIST_AVAIL);
                    }
                }
        }
    }
    return n;
}

/* The slabs of chunk c that are out of the heap: are they all tc's and
 * empty?  Then tc may hand them all back and the chunk is wholly free.  Read
 * without the heap lock: another cache's slabs only through their owner. */
static int chunk_only_mine_empty(tcache_t *tc, chunk_t *c)
{
    /* The caller's own empty slab is out: if it is the only one, no need to
     * look at the others. */
    if (atomic_load_explicit(&c->nfree, memory_order_relaxed) + 1 == c->nslabs) return 1;
    for (uint32_t i = 0; i < c->nslabs; i++) {
        slab_t *t = &c->slabs[i];
        tcache_t *o = atomic_load_explicit(&t->owner, memory_order_acquire);
        if (!o) continue;
        if (o != tc || t->used || atomic_load_explicit(&t->remote, memory_order_relaxed)) return 0;
    }
    return 1;
}

static void chunk_drop_mine_locked(vmc_space_t *v, tcache_t *tc, slab_t *s)
{
    chunk_t *c = s->chunk;
    if (atomic_load_explicit(&c->nfree, memory_order_relaxed) + 1 == c->nslabs) {
        slab_drop_locked(v, tc, s);  /* the only one out */
        return;
    }
    for (uint32_t i = 0; i < c->nslabs; i++) {
        slab_t *t = &c->slabs[i];
        if (atomic_load_explicit(&t->owner, memory_order_relaxed) == tc && !t->used &&
            !atomic_load_explicit(&t->remote, memory_order_relaxed))
            slab_drop_locked(v, tc, t);
    }
}

/* Give back what the heap keeps for itself in region ri (0 code, 1 heap),
 * before a take there fails (heap lock held): the empty slabs of the calling
 * thread's cache and of idle caches, then every wholly free chunk.  Returns
 * how many slabs and chunks went back.  Whatever cannot be given back stays
 * usable, and the message of the request that asked is kept. */
static int reclaim_locked(vmc_space_t *v, int ri)
{
    vmc_codeheap_t *h = v->ch;
    char saved[VMC_ERROR_MAX];
    vmc__error_save(saved);
    int n = 0;
    tcache_t *mine = pthread_getspecific(h->key);
    if (mine) n += cache_drop_empty(v, mine, ri);
    for (tcache_t *tc = h->idle; tc; tc = tc->next_idle) n += cache_drop_empty(v, tc, ri);
    for (int k = 1; k < NKINDS; k++) {
        if ((k == VMC_DATA) != ri) continue;
        h->nkept[k] = 0;
        for (chunk_t *c = h->chunks[k], *next; c; c = next) {
            next = c->next;
            if (atomic_load_explicit(&c->nfree, memory_order_relaxed) == c->nslabs &&
                chunk_release(v, c) == 0)
                n++;
        }
    }
    vmc__error_restore(0, saved, NULL);
    return n;
}

static int reclaim(vmc_space_t *v, int ri)
{
    pthread_mutex_lock(&v->ch->lock);
    int n = reclaim_locked(v, ri);
    pthread_mutex_unlock(&v->ch->lock);
    return n;
}

/* The block layer's reclaimers: other owners' takes (libraries, mapped
 * files, stubs) that find no room. */
static int reclaim_code(void *v) { return reclaim(v, 0); }
static int reclaim_heap(void *v) { return reclaim(v, 1); }

/* Unconstrained code-region requests go first to the part of the region
 * that reaches the placement target (by default the program), so generated
 * code can call the program directly unless that part is full.  The heap's
 * own takes do not call the reclaimer (that would take the heap lock
 * again): their callers reclaim and retry. */
static int take_preferring(vmc_space_t *v, vmc_blocks_t *b, size_t len, size_t align, uintptr_t lo,
                           uintptr_t hi, int kind, int owner, uintptr_t *out)
{
    vmc_codeheap_t *h = v->ch;
    int top = kind == VMC_RDATA;
    if (!lo && !hi && kind != VMC_DATA && h->pref_hi > h->pref_lo &&
        vmc__blocks_take_noreclaim(b, len, align, h->pref_lo, h->pref_hi, top, owner, NULL, out) == 0)
        return 0;
    return vmc__blocks_take_noreclaim(b, len, align, lo, hi, top, owner, NULL, out);
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
    c->nslabs = nslabs;
    atomic_store_explicit(&c->nfree, nslabs, memory_order_relaxed);
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
    slab_t *s;
    for (int pass = 0;; pass++) {
        s = h->free_slabs[kind];
        while (s && windowed && !in_window(s->start, SLAB_SIZE, wlo, whi)) s = s->next;
        if (s) break;
        int e = chunk_new(v, kind, wlo, whi);
        if (!e) {
            s = h->free_slabs[kind];  /* the new chunk's first slab */
            break;
        }
        if (e != -ENOSPC || pass || !reclaim_locked(v, kind == VMC_DATA)) {
            pthread_mutex_unlock(&h->lock);
            return e;
        }
    }
    list_remove(&h->free_slabs[kind], s);
    chunk_t *c = s->chunk;
    uint32_t nfree = atomic_load_explicit(&c->nfree, memory_order_relaxed);
    atomic_store_explicit(&c->nfree, nfree - 1, memory_order_relaxed);
    if (nfree == c->nslabs) kept_remove(h, c);
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
    /* A new slab: cur waits on the available list meanwhile (a reclaim on
     * the way may hand it back to the heap if it is empty). */
    if (cur) {
        list_push(&tc->avail[kind][cls], cur, LIST_AVAIL);
        tc->cur[kind][cls] = NULL;
    }
    slab_t *s;
    int e = slab_acquire(v, tc, kind, cls, wlo, whi, &s);
    if (e) return e;
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
    /* A slab back in the heap holds no allocation at all. */
    if (!cap) return vmc__fail(-EINVAL, "vmc_free: %#" PRIxPTR " is not allocated (freed twice?)", (uintptr_t)x);
    if (!size || off % size || off / size >= cap)
        return vmc__fail(-EINVAL, "vmc_free: %#" PRIxPTR " is not the start of an allocation",
                         (uintptr_t)x);
    uint32_t i = (uint32_t)(off / size);
    uint64_t bit = 1ull << (i % 64);
    uint64_t was = atomic_fetch_and_explicit(&s->live[i / 64], ~bit, memory_order_relaxed);
    if (!(was & bit))
        return vmc__fail(-EINVAL, "vmc_free: %#" PRIxPTR " is not allocated (freed twice?)", (uintptr_t)x);
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
        /* An empty slab goes back to the heap, except the current one
         * (the next allocation of its class needs no lock) while other
         * slabs of its chunk are out: when only this cache's empty ones
         * are, they all go, so a heap whose allocations are all freed holds
         * no chunk anyone else could use. */
        if (s->used == 0 && !atomic_load(&s->remote)) {
            int whole = chunk_only_mine_empty(tc, s->chunk);
            if (whole || s != tc->cur[kind][cls]) {
                pthread_mutex_lock(&v->ch->lock);
                if (whole) chunk_drop_mine_locked(v, tc, s);
                else slab_drop_locked(v, tc, s);
                pthread_mutex_unlock(&v->ch->lock);
            }
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
    /* Whole blocks: what the system commits and gives back (64 KiB on Windows). */
    size_t page = vmc__os_granularity(), len = (size + page - 1) & ~(page - 1);
    if (len < size) return vmc__fail(-ENOSPC, "vmc_alloc: %zu bytes do not fit any region", size);
    uintptr_t x;
    int e = take_preferring(v, b, len, page, wlo, whi, kind, VMC_OWNER_LARGE, &x);
    if (e == -ENOSPC && reclaim(v, kind == VMC_DATA))
        e = take_preferring(v, b, len, page, wlo, whi, kind, VMC_OWNER_LARGE, &x);
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
        return vmc__fail(-EINVAL, "vmc_free: %#" PRIxPTR " is not the start of an allocation",
                         (uintptr_t)x);
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

/* A small request that fails needed a new slab: the message says so, with
 * both sizes, before what the block layer said about that slab. */
static int needs_slab(vmc_space_t *v, size_t size, int kind)
{
    return size <= MAX_SMALL && blocks_for(v, kind) != NULL;
}

int vmc__alloc(vmc_space_t *v, size_t size, int kind, vmc_span_t *out)
{
    int e = check_args(v, kind, out, "vmc_alloc");
    if (e) return e;
    e = alloc_in(v, size, kind, 0, 0, out);
    if (e == -ENOSPC && needs_slab(v, size, kind))
        return vmc__fail_wrap(e, "vmc_alloc: %zu bytes need a new %zu-byte slab", size, SLAB_SIZE);
    if (e == -ENOSPC)  /* the block layer names the rounded size; say what was asked */
        return vmc__fail_wrap(e, "vmc_alloc: %zu bytes", size);
    return e;
}

int vmc__alloc_reaching(vmc_space_t *v, size_t size, int kind, uintptr_t lo, uintptr_t hi, vmc_span_t *out)
{
    int e = check_args(v, kind, out, "vmc_alloc_reaching");
    if (e) return e;
    if (hi < lo) return vmc__fail(-EINVAL, "vmc_alloc_reaching: hi %#" PRIxPTR " is below lo %#" PRIxPTR,
                                  (uintptr_t)hi, (uintptr_t)lo);
    uintptr_t a = 0, b = 0;  /* 0, 0: the whole region reaches */
    vmc_region_t *r = kind == VMC_DATA ? &v->heap : &v->code;
    uintptr_t wlo, whi;
    vmc__reach_window(lo, hi, &wlo, &whi);
    if (hi != lo && (wlo > r->base || whi < r->base + r->size)) {
        a = wlo > r->base ? wlo : r->base;
        b = whi < r->base + r->size ? whi : r->base + r->size;
        if (!r->size || b <= a || b - a < size)
            return vmc__fail(-ENOSPC,
                             "vmc_alloc_reaching: no part of the %s region (%#" PRIxPTR "..%#" PRIxPTR ") can hold "
                             "%zu bytes reaching %#" PRIxPTR "..%#" PRIxPTR,
                             r->name, (uintptr_t)r->base, (uintptr_t)(r->base + r->size),
                             size, (uintptr_t)lo, (uintptr_t)hi);
    }
    e = alloc_in(v, size, kind, a, b, out);
    if (e == -ENOSPC && needs_slab(v, size, kind))
        return vmc__fail_wrap(e, "vmc_alloc_reaching: %zu bytes reaching %#" PRIxPTR "..%#" PRIxPTR " need a new "
                              "%zu-byte slab", size, (uintptr_t)lo, (uintptr_t)hi, SLAB_SIZE);
    if (e == -ENOSPC)
        return vmc__fail_wrap(e, "vmc_alloc_reaching: %zu bytes reaching %#" PRIxPTR "..%#" PRIxPTR, size,
                              (uintptr_t)lo, (uintptr_t)hi);
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
    vmc__blocks_set_reclaim(v->code_blocks, reclaim_code, v);
    if (v->heap_blocks) vmc__blocks_set_reclaim(v->heap_blocks, reclaim_heap, v);
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
    if (t) vmc__os_free(t, h->table_size);
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

size_t vmc__codeheap_largest_free(vmc_space_t *v, int ri)
{
    vmc_codeheap_t *h = v->ch;
    vmc_blocks_t *b = ri ? v->heap_blocks : v->code_blocks;
    if (!b) return 0;
    uintptr_t starts[2 * KEEP_CHUNKS];
    size_t n = 0;
    pthread_mutex_lock(&h->lock);
    /* Empty slabs that caches keep go back first, so that what is free
     * counts as free (they would at the next take that finds no room): those
     * of exited threads, emptied since by other threads' frees, and the
     * caller's own (a thread that frees may have adopted an exited thread's
     * cache). */
    tcache_t *mine = pthread_getspecific(h->key);
    if (mine) cache_drop_empty(v, mine, ri);
    for (tcache_t *tc = h->idle; tc; tc = tc->next_idle) cache_drop_empty(v, tc, ri);
    for (int k = 1; k < NKINDS; k++)
        if ((k == VMC_DATA) == ri)
            for (int i = 0; i < h->nkept[k] && n < sizeof starts / sizeof *starts; i++)
                starts[n++] = h->kept[k][i]->start;
    size_t largest = vmc__blocks_largest_free_counting(b, starts, n);
    pthread_mutex_unlock(&h->lock);
    return largest;
}

size_t vmc__codeheap_kept(vmc_space_t *v, uintptr_t *starts, size_t max)
{
    vmc_codeheap_t *h = v->ch;
    size_t n = 0;
    pthread_mutex_lock(&h->lock);
    for (int k = 1; k < NKINDS; k++)
        for (int i = 0; i < h->nkept[k] && n < max; i++) starts[n++] = h->kept[k][i]->start;
    pthread_mutex_unlock(&h->lock);
    return n;
}
