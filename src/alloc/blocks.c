/* The block layer (see blocks.h).
 *
 * One bit per block (1 = taken), and over the 64-bit words of that bitmap a
 * segment tree whose nodes hold, for the blocks beneath them, the longest free
 * run and the free runs at either end.  Finding the lowest (or highest) free
 * run of k blocks whose start lies at or after (before) a bound is one descent:
 * O(log n) nodes plus at most two leaf scans of 64 bits.  Reach windows and
 * alignment are bounds on that search, so constrained requests cost the same.
 *
 * Node values are stored as deficits (node length minus the free count), so
 * the tree's memory starts out all zero = all free and is touched only where
 * blocks are taken: a 2 GiB region opens without faulting in its metadata.
 *
 * First writes to the metadata are single read-modify-write instructions or
 * plain stores: a load first would map the zero page, and the store then
 * fault a second time to replace it (a leaf-to-root path crosses a page per
 * level below the top few, and each such page's first touch is a fault).
 * Storing the tree in page-sized subtrees would cut those pages to two or
 * three, but computing where a node lives costs every take and give about
 * a fifth more (bench_blocks), for faults a region pays once.
 *
 * Each taken run has a record (vmc_run_t) found through a per-block pointer
 * array at its first block; a second bitmap marks run starts so the run
 * containing any address is found by scanning back to the nearest start.
 * The arrays live in memory the caller maps (one mapping per handle, see
 * api.c), zero-filled and untouched until used.
 */
#include "alloc/blocks.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

typedef struct node { uint32_t mx, pre, suf; } node_t;  /* deficits */

/* A run record, on a list of all of them so closing needs no scan. */
typedef struct rec {
    vmc_run_t run;               /* first: rec[] points here                */
    struct rec *prev, *next;
} rec_t;

struct vmc_blocks {
    vmc_region_t *region;
    pthread_mutex_t lock;
    size_t shift;            /* log2 of the block size                    */
    uint64_t nblocks;
    uint64_t nwords;         /* bitmap words                              */
    uint64_t leaves;         /* power of two >= nwords                    */
    uint64_t *taken;         /* 1 bit per block                           */
    uint64_t *starts;        /* 1 bit per run start                       */
    node_t *tree;            /* 2 * leaves nodes, 1-based heap order      */
    vmc_run_t **rec;         /* per block: the run starting there         */
    rec_t *all;              /* every run record                          */
    size_t abandoned;        /* runs waiting to be re-reserved            */
    void *meta;              /* the mapping holding the arrays, or NULL   */
    size_t meta_size;
    size_t used, committed;  /* bytes                                     */
    size_t runs[VMC_OWNER_COUNT], bytes[VMC_OWNER_COUNT];
    vmc_blocks_reclaim_fn reclaim;  /* asked for space before a take fails */
    void *reclaim_arg;
};

static const char *owner_names[VMC_OWNER_COUNT] = {
    [VMC_OWNER_FREE] = "free",       [VMC_OWNER_CODE] = "code heap",
    [VMC_OWNER_RDATA] = "rdata heap", [VMC_OWNER_DATA] = "data heap",
    [VMC_OWNER_LARGE] = "large",     [VMC_OWNER_LIBRARY] = "library",
    [VMC_OWNER_FILE] = "file",       [VMC_OWNER_STUBS] = "stubs",
    [VMC_OWNER_BRK] = "brk heap",
};

const char *vmc__owner_name(int owner)
{
    return owner >= 0 && owner < VMC_OWNER_COUNT ? owner_names[owner] : "?";
}

/* ---- the tree ---------------------------------------------------------------- */

typedef struct sums { uint64_t mx, pre, suf; } sums_t;  /* free counts */

static sums_t node_get(const vmc_blocks_t *b, uint64_t i, uint64_t len)
{
    const node_t *n = &b->tree[i];
    return (sums_t){len - n->mx, len - n->pre, len - n->suf};
}

static void node_put(vmc_blocks_t *b, uint64_t i, uint64_t len, sums_t s)
{
    node_t n = {(uint32_t)(len - s.mx), (uint32_t)(len - s.pre), (uint32_t)(len - s.suf)};
    node_t *t = &b->tree[i];
    /* A store of all-free (zero) that changes nothing is skipped: it keeps
     * untouched pages untouched.  Any other value is stored without looking:
     * the store is then the page's first touch (one fault, not two). */
    if (n.mx | n.pre | n.suf) *t = n;
    else if (t->mx | t->pre | t->suf) *t = n;
}

static sums_t word_sums(uint64_t w)
{
    if (w == 0) return (sums_t){64, 64, 64};
    sums_t s = {0, (uint64_t)__builtin_ctzll(w), (uint64_t)__builtin_clzll(w)};
    uint64_t x = ~w;  /* longest run of ones in x */
    while (x) {
        x &= x << 1;
        s.mx++;
    }
    return s;
}

static void leaf_update(vmc_blocks_t *b, uint64_t word)
{
    sums_t s = word < b->nwords ? word_sums(b->taken[word]) : (sums_t){0, 0, 0};
    node_put(b, b->leaves + word, 64, s);
}

/* Recompute leaves [w0, w1] and every ancestor of them. */
static void tree_update(vmc_blocks_t *b, uint64_t w0, uint64_t w1)
{
    for (uint64_t w = w0; w <= w1; w++) leaf_update(b, w);
    uint64_t lo = b->leaves + w0, hi = b->leaves + w1, len = 64;
    while (lo > 1) {
        lo >>= 1;
        hi >>= 1;
        for (uint64_t i = lo; i <= hi; i++) {
            sums_t l = node_get(b, 2 * i, len), r = node_get(b, 2 * i + 1, len), s;
            s.pre = l.pre == len ? len + r.pre : l.pre;
            s.suf = r.suf == len ? len + l.suf : r.suf;
            s.mx = l.mx > r.mx ? l.mx : r.mx;
            if (l.suf + r.pre > s.mx) s.mx = l.suf + r.pre;
            node_put(b, i, 2 * len, s);
        }
        len *= 2;
    }
}

static int bit(const uint64_t *map, uint64_t i) { return (int)(map[i >> 6] >> (i & 63) & 1); }

static void set_range(vmc_blocks_t *b, uint64_t first, uint64_t n, int taken)
{
    for (uint64_t i = first; i < first + n;) {
        uint64_t w = i >> 6, off = i & 63, cnt = 64 - off;
        if (cnt > first + n - i) cnt = first + n - i;
        uint64_t mask = (cnt == 64 ? ~0ull : ((1ull << cnt) - 1)) << off;
        /* one read-modify-write instruction each (see the top) */
        if (taken) __atomic_fetch_or(&b->taken[w], mask, __ATOMIC_RELAXED);
        else __atomic_fetch_and(&b->taken[w], ~mask, __ATOMIC_RELAXED);
        i += cnt;
    }
    tree_update(b, first >> 6, (first + n - 1) >> 6);
}

/* Lowest start s >= f of k free blocks.  *carry: free blocks (all >= f) just
 * before this node.  Returns -1 if none in this node. */
static int64_t find_up(const vmc_blocks_t *b, uint64_t i, uint64_t nlo, uint64_t len, uint64_t f,
                       uint64_t k, uint64_t *carry)
{
    uint64_t nhi = nlo + len;
    if (nhi <= f) {
        *carry = 0;
        return -1;
    }
    if (nlo >= f) {
        sums_t s = node_get(b, i, len);
        if (*carry + s.pre >= k) return (int64_t)(nlo - *carry);
        if (s.mx < k) {
            *carry = s.pre == len ? *carry + len : s.suf;
            return -1;
        }
    }
    if (i >= b->leaves) {
        uint64_t w = i - b->leaves, start = nlo < f ? f : nlo;
        if (nlo < f) *carry = 0;
        for (uint64_t blk = start; blk < nhi; blk++) {
            if (w < b->nwords && !bit(b->taken, blk)) {
                if (++*carry >= k) return (int64_t)(blk + 1 - *carry);
            } else {
                *carry = 0;
            }
        }
        return -1;
    }
    int64_t r = find_up(b, 2 * i, nlo, len / 2, f, k, carry);
    return r >= 0 ? r : find_up(b, 2 * i + 1, nlo + len / 2, len / 2, f, k, carry);
}

/* Highest end e <= g of k free blocks (the mirror of find_up). */
static int64_t find_down(const vmc_blocks_t *b, uint64_t i, uint64_t nlo, uint64_t len, uint64_t g,
                         uint64_t k, uint64_t *carry)
{
    uint64_t nhi = nlo + len;
    if (nlo >= g) {
        *carry = 0;
        return -1;
    }
    if (nhi <= g) {
        sums_t s = node_get(b, i, len);
        if (*carry + s.suf >= k) return (int64_t)(nhi + *carry);
        if (s.mx < k) {
            *carry = s.suf == len ? *carry + len : s.pre;
            return -1;
        }
    }
    if (i >= b->leaves) {
        uint64_t w = i - b->leaves, end = nhi > g ? g : nhi;
        if (nhi > g) *carry = 0;
        for (uint64_t blk = end; blk-- > nlo;) {
            if (w < b->nwords && !bit(b->taken, blk)) {
                if (++*carry >= k) return (int64_t)(blk + *carry);
            } else {
                *carry = 0;
            }
        }
        return -1;
    }
    int64_t r = find_down(b, 2 * i + 1, nlo + len / 2, len / 2, g, k, carry);
    return r >= 0 ? r : find_down(b, 2 * i, nlo, len / 2, g, k, carry);
}

/* Smallest s >= f, and largest s <= f, with (s + phase) % a == 0; -1 if none. */
static int64_t align_up_phase(uint64_t f, uint64_t a, uint64_t phase)
{
    return (int64_t)((f + phase + a - 1) / a * a - phase);
}
static int64_t align_down_phase(uint64_t f, uint64_t a, uint64_t phase)
{
    uint64_t d = (f + phase) / a * a;
    return d < phase ? -1 : (int64_t)(d - phase);
}

/* A free run of k blocks inside [lo, hi) (blocks) whose start block s has
 * (s + phase) % a == 0: phase makes the alignment absolute, not relative to
 * the region's base. */
static int64_t find_run(const vmc_blocks_t *b, uint64_t k, uint64_t a, uint64_t phase, uint64_t lo,
                        uint64_t hi, int top)
{
    uint64_t span = b->leaves * 64;
    if (hi > b->nblocks) hi = b->nblocks;
    if (k == 0 || hi < lo || hi - lo < k) return -1;
    if (!top) {
        for (uint64_t f = (uint64_t)align_up_phase(lo, a, phase);;) {
            uint64_t carry = 0;
            int64_t s = find_up(b, 1, 0, span, f, k, &carry);
            if (s < 0 || (uint64_t)s + k > hi) return -1;
            if (((uint64_t)s + phase) % a == 0) return s;
            f = (uint64_t)align_up_phase((uint64_t)s, a, phase);
        }
    }
    for (uint64_t g = hi;;) {
        uint64_t carry = 0;
        int64_t e = find_down(b, 1, 0, span, g, k, &carry);
        if (e < 0 || (uint64_t)e < lo + k) return -1;
        uint64_t s = (uint64_t)e - k;
        if ((s + phase) % a == 0) return (int64_t)s;
        int64_t down = align_down_phase(s, a, phase);
        if (down < 0 || (uint64_t)down < lo) return -1;
        g = (uint64_t)down + k;
    }
}

/* ---- setup -------------------------------------------------------------------- */

/* The metadata arrays of a region of `size` bytes, laid out in one area. */
typedef struct layout { uint64_t nblocks, nwords, leaves; size_t bits, tree, recs, total; } layout_t;

static layout_t layout_of(size_t size)
{
    layout_t l;
    size_t page = vmc__os_page_size();
    l.nblocks = size / vmc__os_granularity();
    l.nwords = (l.nblocks + 63) / 64;
    l.leaves = 1;
    while (l.leaves < l.nwords) l.leaves *= 2;
    l.bits = (l.nwords * 8 + 63) & ~(size_t)63;
    l.tree = (2 * l.leaves * sizeof(node_t) + 63) & ~(size_t)63;
    l.recs = l.nblocks * sizeof(vmc_run_t *);
    l.total = (2 * l.bits + l.tree + l.recs + page - 1) & ~(page - 1);
    return l;
}

static int meta_ready(vmc_blocks_t *b);
static int record(vmc_blocks_t *b, uint64_t first, uint64_t n, int owner, void *tag, uintptr_t *out);

int vmc__blocks_init(vmc_blocks_t **out, vmc_region_t *r)
{
    vmc_blocks_t *b = calloc(1, sizeof *b);
    if (!b) return vmc__fail(-ENOMEM, "%s region: out of memory for the block map", r->name);
    layout_t l = layout_of(r->size);
    b->region = r;
    /* A block is the unit the system can commit, give back and map a view at:
     * the page on Linux, 64 KiB on Windows. */
    b->shift = (size_t)__builtin_ctzll(vmc__os_granularity());
    b->nblocks = l.nblocks;
    b->nwords = l.nwords;
    b->leaves = l.leaves;
    b->meta_size = l.total;
    pthread_mutex_init(&b->lock, NULL);
    if (r->hole_hi > r->hole_lo) {
        /* The program's brk heap inside the region's span is taken for good
         * from the start, so the map is needed now. */
        int e = meta_ready(b);
        if (!e)
            e = record(b, (r->hole_lo - r->base) >> b->shift, (r->hole_hi - r->hole_lo) >> b->shift,
                       VMC_OWNER_BRK, NULL, NULL);
        if (e) {
            vmc__blocks_fini(b);
            return e;
        }
    }
    *out = b;
    return 0;
}

/* The arrays are mapped when the first run is taken (lock held): opening a
 * region costs no more than its reservation, and until then every block is
 * free by definition. */
static int meta_ready(vmc_blocks_t *b)
{
    if (b->meta) return 0;
    void *m;
    int e = vmc__os_alloc(b->meta_size, &m);
    if (e)
        return vmc__fail(e, "%s region: cannot map the block map (%zu bytes): %s", b->region->name,
                         b->meta_size, strerror(-e));
    layout_t l = layout_of(b->region->size);
    char *p = m;
    b->meta = m;
    b->taken = (uint64_t *)p;
    b->starts = (uint64_t *)(p += l.bits);
    b->tree = (node_t *)(p += l.bits);
    b->rec = (vmc_run_t **)(p + l.tree);
    /* Blocks past the end of the region, in the last word, are never free;
     * leaves past the last word are all-taken by leaf_update's rule.  A
     * region of a power-of-two number of words has neither, and its
     * metadata is touched only where blocks are taken. */
    if (b->nblocks % 64) b->taken[b->nwords - 1] = ~0ull << (b->nblocks % 64);
    if (b->nblocks % 64 || b->leaves > b->nwords)
        tree_update(b, b->nwords ? b->nwords - 1 : 0, b->leaves - 1);
    return 0;
}

void vmc__blocks_fini(vmc_blocks_t *b)
{
    if (!b) return;
    for (rec_t *r = b->all, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    if (b->meta) vmc__os_free(b->meta, b->meta_size);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* ---- taking and giving ------------------------------------------------------ */

static void retry_abandoned(vmc_blocks_t *b);

static size_t largest_free_locked(const vmc_blocks_t *b)
{
    if (!b->meta) return (size_t)b->nblocks << b->shift;
    return node_get(b, 1, b->leaves * 64).mx << b->shift;
}

static int record(vmc_blocks_t *b, uint64_t first, uint64_t n, int owner, void *tag, uintptr_t *out)
{
    rec_t *rc = malloc(sizeof *rc);
    if (!rc) return vmc__fail(-ENOMEM, "%s region: out of memory for a run record", b->region->name);
    rc->prev = NULL;
    rc->next = b->all;
    if (b->all) b->all->prev = rc;
    b->all = rc;
    vmc_run_t *run = &rc->run;
    *run = (vmc_run_t){b->region->base + (first << b->shift), n << b->shift, owner, 0, 0, tag, NULL, 0};
    set_range(b, first, n, 1);
    __atomic_fetch_or(&b->starts[first >> 6], 1ull << (first & 63), __ATOMIC_RELAXED);  /* one RMW */
    b->rec[first] = run;
    b->used += run->len;
    b->runs[owner]++;
    b->bytes[owner] += run->len;
    if (out) *out = run->start;
    return 0;
}

void vmc__blocks_set_reclaim(vmc_blocks_t *b, vmc_blocks_reclaim_fn fn, void *arg)
{
    b->reclaim = fn;
    b->reclaim_arg = arg;
}

static int take(vmc_blocks_t *b, size_t len, size_t align, uintptr_t lo, uintptr_t hi, int top,
                int owner, void *tag, int reclaim, uintptr_t *out)
{
    vmc_region_t *r = b->region;
    size_t bs = (size_t)1 << b->shift;
    if (len == 0 || len > r->size || (align & (align - 1)) || owner <= 0 || owner >= VMC_OWNER_COUNT)
        return vmc__fail(len > r->size ? -ENOSPC : -EINVAL,
                         "%s region: cannot take %zu bytes (align %zu) from a %zu-byte region",
                         r->name, len, align, r->size);
    uint64_t k = (len + bs - 1) >> b->shift, a = align > bs ? align >> b->shift : 1;
    uint64_t blo = 0, bhi = b->nblocks;
    if (lo || hi) {
        uintptr_t end = r->base + r->size;
        if (hi <= r->base || lo >= end) goto nospace_window;
        blo = lo > r->base ? (lo - r->base + bs - 1) >> b->shift : 0;
        bhi = hi < end ? (hi - r->base) >> b->shift : b->nblocks;
    }
    pthread_mutex_lock(&b->lock);
    int e = meta_ready(b);
    if (e) {
        pthread_mutex_unlock(&b->lock);
        return e;
    }
    retry_abandoned(b);
    uint64_t phase = a > 1 ? (r->base >> b->shift) % a : 0;
    int64_t s = find_run(b, k, a, phase, blo, bhi, top);
    if (s < 0 && reclaim && b->reclaim) {
        /* The reclaimer gives runs back through this map: not under its lock. */
        pthread_mutex_unlock(&b->lock);
        int gave = b->reclaim(b->reclaim_arg);
        pthread_mutex_lock(&b->lock);
        if (gave) s = find_run(b, k, a, phase, blo, bhi, top);
    }
    if (s < 0) {
        size_t largest = largest_free_locked(b);
        pthread_mutex_unlock(&b->lock);
        if (lo || hi)
            return vmc__fail(-ENOSPC,
                             "%s region: no free run of %zu bytes inside %#" PRIxPTR "..%#" PRIxPTR " (largest free "
                             "run in the region: %zu bytes)",
                             r->name, (size_t)k << b->shift, (uintptr_t)lo,
                             (uintptr_t)hi, largest);
        return vmc__fail(-ENOSPC, "%s region full: asked for %zu bytes, largest free run is %zu bytes",
                         r->name, (size_t)k << b->shift, largest);
    }
    e = record(b, (uint64_t)s, k, owner, tag, out);
    pthread_mutex_unlock(&b->lock);
    return e;

nospace_window:
    return vmc__fail(-ENOSPC, "%s region %#" PRIxPTR "..%#" PRIxPTR " lies outside the window %#" PRIxPTR "..%#" PRIxPTR, r->name,
                     (uintptr_t)r->base, (uintptr_t)(r->base + r->size), (uintptr_t)lo,
                     (uintptr_t)hi);
}

int vmc__blocks_take(vmc_blocks_t *b, size_t len, size_t align, uintptr_t lo, uintptr_t hi,
                     int top, int owner, void *tag, uintptr_t *out)
{
    return take(b, len, align, lo, hi, top, owner, tag, 1, out);
}

int vmc__blocks_take_noreclaim(vmc_blocks_t *b, size_t len, size_t align, uintptr_t lo,
                               uintptr_t hi, int top, int owner, void *tag, uintptr_t *out)
{
    return take(b, len, align, lo, hi, top, owner, tag, 0, out);
}

int vmc__blocks_take_at(vmc_blocks_t *b, uintptr_t addr, size_t len, int owner, void *tag)
{
    vmc_region_t *r = b->region;
    size_t bs = (size_t)1 << b->shift;
    if (len == 0 || (addr & (bs - 1)) || !vmc__region_contains(r, addr, len) || owner <= 0 ||
        owner >= VMC_OWNER_COUNT)
        return vmc__fail(-EINVAL, "%s region: cannot take %#" PRIxPTR "+%#zx (outside or unaligned)", r->name,
                         (uintptr_t)addr, len);
    uint64_t first = (addr - r->base) >> b->shift, k = (len + bs - 1) >> b->shift;
    pthread_mutex_lock(&b->lock);
    int e = meta_ready(b);
    if (!e) retry_abandoned(b);
    uint64_t carry = 0;
    int64_t s = e ? -1 : find_up(b, 1, 0, b->leaves * 64, first, k, &carry);
    if (e) {
        /* the message is meta_ready's */
    } else if (s != (int64_t)first)
        e = vmc__fail(-EEXIST, "%s region: %#" PRIxPTR "+%#zx is not free", r->name, (uintptr_t)addr, len);
    else
        e = record(b, first, k, owner, tag, NULL);
    pthread_mutex_unlock(&b->lock);
    return e;
}

/* The run record whose run contains block i, or NULL (lock held). */
static vmc_run_t *run_at(const vmc_blocks_t *b, uint64_t i)
{
    if (!b->meta || i >= b->nblocks || !bit(b->taken, i)) return NULL;
    for (uint64_t w = i >> 6;; w--) {
        uint64_t s = b->starts[w];
        if (w == i >> 6) s &= (i & 63) == 63 ? ~0ull : (2ull << (i & 63)) - 1;
        if (s) return b->rec[w * 64 + 63 - (uint64_t)__builtin_clzll(s)];
        if (w == 0) return NULL;
    }
}

/* Re-reserve a run and mark it free (lock held).  If re-reserving fails the
 * run stays as it was and the error is returned. */
static int give_locked(vmc_blocks_t *b, vmc_run_t *run)
{
    int e = vmc__region_decommit(b->region, run->start, run->len);
    if (e) return e;
    uint64_t first = (run->start - b->region->base) >> b->shift, n = run->len >> b->shift;
    set_range(b, first, n, 0);
    b->starts[first >> 6] &= ~(1ull << (first & 63));
    b->rec[first] = NULL;
    b->used -= run->len;
    b->committed -= run->committed;
    b->runs[run->owner]--;
    b->bytes[run->owner] -= run->len;
    if (run->abandoned) b->abandoned--;
    rec_t *rc = (rec_t *)run;
    if (rc->prev) rc->prev->next = rc->next;
    else b->all = rc->next;
    if (rc->next) rc->next->prev = rc->prev;
    free(rc);
    return 0;
}

/* Runs whose owner is gone but could not be re-reserved: try again now
 * (lock held).  Cheap when there are none. */
static void retry_abandoned(vmc_blocks_t *b)
{
    for (rec_t *rc = b->all, *next; b->abandoned && rc; rc = next) {
        next = rc->next;
        if (rc->run.abandoned) give_locked(b, &rc->run);
    }
}

static vmc_run_t *run_starting(vmc_blocks_t *b, uintptr_t start)
{
    vmc_region_t *r = b->region;
    vmc_run_t *run = vmc__region_contains(r, start, 1) ? run_at(b, (start - r->base) >> b->shift) : NULL;
    if (!run || run->start != start) {
        vmc__fail(-EINVAL, "%s region: %#" PRIxPTR " is not the start of a taken run", r->name, (uintptr_t)start);
        return NULL;
    }
    return run;
}

int vmc__blocks_give(vmc_blocks_t *b, uintptr_t start)
{
    pthread_mutex_lock(&b->lock);
    vmc_run_t *run = run_starting(b, start);
    int e = run ? give_locked(b, run) : -EINVAL;
    if (!e) retry_abandoned(b);
    pthread_mutex_unlock(&b->lock);
    return e;
}

int vmc__blocks_abandon(vmc_blocks_t *b, uintptr_t start)
{
    char saved[VMC_ERROR_MAX];
    vmc__error_save(saved);  /* usually the failure that made the owner go */
    pthread_mutex_lock(&b->lock);
    vmc_run_t *run = run_starting(b, start);
    int e = run ? give_locked(b, run) : -EINVAL;
    if (!e) vmc__error_restore(0, saved, NULL);
    if (e && run) {
        vmc__error_restore(e, saved, "its range is inaccessible until it can be re-reserved");
        /* Nothing may reach it meanwhile: take every access away with a call
         * of another kind than the one that failed. */
        vmc__os_protect(run->start, run->len, 0);
        run->abandoned = 1;
        run->tag = NULL;
        run->name = "(owner gone; to be re-reserved)";
        b->abandoned++;
    }
    pthread_mutex_unlock(&b->lock);
    return e;
}

/* Commits (or, with `commit` 0, only records) the first len bytes of a run. */
static int commit_run(vmc_blocks_t *b, uintptr_t start, size_t len, int kind, int commit)
{
    vmc_region_t *r = b->region;
    size_t bs = (size_t)1 << b->shift;
    len = (len + bs - 1) & ~(bs - 1);
    pthread_mutex_lock(&b->lock);
    vmc_run_t *run = vmc__region_contains(r, start, 1) ? run_at(b, (start - r->base) >> b->shift) : NULL;
    int e = 0;
    if (!run || run->start != start || len > run->len || (run->kind && run->kind != kind)) {
        e = vmc__fail(-EINVAL, "%s region: cannot commit %#" PRIxPTR "+%#zx: not the start of a run that long",
                      r->name, (uintptr_t)start, len);
    } else if (len > run->committed) {
        if (commit) e = vmc__region_commit(r, start + run->committed, len - run->committed, kind);
        if (!e) {
            b->committed += len - run->committed;
            run->committed = len;
            run->kind = kind;
        }
    }
    pthread_mutex_unlock(&b->lock);
    return e;
}

int vmc__blocks_commit(vmc_blocks_t *b, uintptr_t start, size_t len, int kind)
{
    return commit_run(b, start, len, kind, 1);
}

int vmc__blocks_mapped(vmc_blocks_t *b, uintptr_t start, size_t len, int kind)
{
    return commit_run(b, start, len, kind, 0);
}

int vmc__blocks_set_name(vmc_blocks_t *b, uintptr_t start, const char *name)
{
    pthread_mutex_lock(&b->lock);
    vmc_run_t *run = run_starting(b, start);
    if (run) run->name = name;
    pthread_mutex_unlock(&b->lock);
    return run ? 0 : -EINVAL;
}

int vmc__blocks_find(vmc_blocks_t *b, uintptr_t addr, vmc_run_t *out)
{
    vmc_region_t *r = b->region;
    if (!vmc__region_contains(r, addr, 1)) return -ENOENT;
    pthread_mutex_lock(&b->lock);
    vmc_run_t *run = run_at(b, (addr - r->base) >> b->shift);
    if (run) *out = *run;
    pthread_mutex_unlock(&b->lock);
    return run ? 0 : -ENOENT;
}

void vmc__blocks_usage(vmc_blocks_t *b, vmc_blocks_usage_t *out)
{
    memset(out, 0, sizeof *out);
    out->size = b->region->size;
    pthread_mutex_lock(&b->lock);
    out->used = b->used;
    out->committed = b->committed;
    out->largest_free = largest_free_locked(b);
    memcpy(out->runs, b->runs, sizeof out->runs);
    memcpy(out->bytes, b->bytes, sizeof out->bytes);
    pthread_mutex_unlock(&b->lock);
}

size_t vmc__blocks_largest_free_counting(vmc_blocks_t *b, const uintptr_t *starts, size_t n)
{
    pthread_mutex_lock(&b->lock);
    vmc_run_t *runs[16];
    size_t m = 0;
    /* Mark the runs free in the tree, read its root, mark them taken again:
     * all under the lock, so no one sees the difference. */
    for (size_t i = 0; i < n && m < sizeof runs / sizeof *runs; i++) {
        vmc_region_t *r = b->region;
        vmc_run_t *run = b->meta && vmc__region_contains(r, starts[i], 1)
                             ? run_at(b, (starts[i] - r->base) >> b->shift) : NULL;
        if (!run || run->start != starts[i]) continue;
        set_range(b, (run->start - r->base) >> b->shift, run->len >> b->shift, 0);
        runs[m++] = run;
    }
    size_t largest = largest_free_locked(b);
    for (size_t i = 0; i < m; i++)
        set_range(b, (runs[i]->start - b->region->base) >> b->shift, runs[i]->len >> b->shift, 1);
    pthread_mutex_unlock(&b->lock);
    return largest;
}

void vmc__blocks_lock(vmc_blocks_t *b)
{
    if (b) pthread_mutex_lock(&b->lock);
}

void vmc__blocks_unlock(vmc_blocks_t *b)
{
    if (b) pthread_mutex_unlock(&b->lock);
}

void vmc__blocks_each(vmc_blocks_t *b, void (*cb)(const vmc_run_t *run, void *arg), void *arg)
{
    pthread_mutex_lock(&b->lock);
    for (uint64_t w = 0; b->meta && w < b->nwords; w++)
        for (uint64_t s = b->starts[w]; s; s &= s - 1)
            cb(b->rec[w * 64 + (uint64_t)__builtin_ctzll(s)], arg);
    pthread_mutex_unlock(&b->lock);
}
