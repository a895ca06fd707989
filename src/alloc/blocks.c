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
 * Where the metadata lives decides what the first take costs: every page of
 * it touched for the first time is a page fault (several microseconds on a
 * virtual machine, more than the take).  In plain heap order a leaf-to-root
 * path crosses a page per level below the top few, and the bitmaps and the
 * run pointers are arrays of their own: a library's first load touched 11
 * pages.  So the map is cut into chunks of 64 bitmap words (4096 blocks,
 * 16 MiB of a Linux region), one page each, holding the chunk's taken and
 * run-start words and the bottom seven levels of the tree (its 64 leaves
 * and their ancestors up to the chunk's root); the levels above the chunks
 * (127 nodes for 2 GiB) fit in the spare end of the last chunk's page, at
 * the top of the region, where libraries go.  A take touches one page, or
 * two when it is the first in its chunk and that chunk is not the last.
 * Finding a node's place costs a few shifts more per node than heap order:
 * a take executes about a third more instructions (callgrind, takes and
 * gives at random in a 2 GiB region half full), under a microsecond, for
 * ten page faults fewer in a fresh process.
 *
 * A few runs: until a 17th run is taken, the runs live in a sorted array of
 * 16 in the handle's own allocation (the hash table's inline buckets, which
 * nothing else uses until then), and the chunks are not mapped at all.  A
 * free run is then found by walking the gaps between the runs, a few dozen
 * instructions.  Mapping the chunks made a process's first take its
 * dearest: a 512 KiB mmap, a page written for the first time, the tree's
 * path up from the run (2,600 instructions and about 9 us, against 530 and
 * 2 us now: callgrind, and a test program timing it in fresh processes);
 * and most processes load a library or two and take a chunk of the code
 * heap, never 17 runs.  Keeping the runs in the handle does not make
 * opening dearer (no byte more is allocated, nothing is written; a region
 * with a hole no longer maps the chunks at open), and the runs move into
 * the chunks and the hash once, when the 17th is taken; if that mapping
 * fails, that take fails with its message and nothing has changed.  From
 * then on everything is as below (the array is not used again).
 *
 * First writes to the metadata are single read-modify-write instructions or
 * plain stores: a load first would map the zero page, and the store then
 * fault a second time to replace it; the page holding the top levels, which
 * every search reads first, is written when the map is mapped.
 *
 * Each taken run has a record (vmc_run_t), found by its first block in a
 * hash table (chained through the records, in the C heap); the run-start
 * bits let the run containing any address be found by scanning back to the
 * nearest start.  The chunks live in memory the caller maps (one mapping
 * per handle, see api.c), zero-filled and untouched until used.
 */
#include "alloc/blocks.h"
#include "base/attrs.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

typedef struct node { uint32_t mx, pre, suf; } node_t;  /* deficits */

#define CHUNK_LOG   6                    /* log2 of the bitmap words per chunk */
#define CHUNK_WORDS (1u << CHUNK_LOG)

/* One chunk: its words of both bitmaps and its subtree, in heap order from
 * 1 (the chunk's root) to 2 * words - 1 (the leaves). */
typedef struct chunk {
    uint64_t taken[CHUNK_WORDS];         /* 1 bit per block                  */
    uint64_t starts[CHUNK_WORDS];        /* 1 bit per run start              */
    node_t node[2 * CHUNK_WORDS];
} chunk_t;

/* A run record, on a list of all of them so closing needs no scan. */
typedef struct rec {
    vmc_run_t run;               /* first: a record is its run              */
    struct rec *prev, *next;
    struct rec *hnext;           /* the hash chain                          */
    uint64_t first;              /* first block                             */
} rec_t;

#define HASH_INLINE_LOG 6

/* Runs a map keeps before its chunks are mapped, by address (see "A few
 * runs" at the top), in the hash table's inline buckets, unused until then. */
#define FEW_RUNS 16
typedef struct few {
    uint64_t first, end;         /* blocks [first, end)                     */
    rec_t *rec;
} few_t;

struct vmc_blocks {
    vmc_region_t *region;
    pthread_mutex_t lock;
    size_t shift;            /* log2 of the block size                    */
    uint64_t nblocks;
    uint64_t nwords;         /* bitmap words                              */
    uint64_t leaves;         /* power of two >= nwords                    */
    unsigned leaf_depth;     /* log2(leaves): the leaves' level           */
    unsigned chunk_log;      /* log2 of the leaves per chunk (<= CHUNK_LOG) */
    uint64_t nchunks;        /* leaves >> chunk_log                       */
    size_t chunk_shift;      /* log2 of the bytes from one chunk to the next */
    char *chunks;            /* chunk c at chunks + (c << chunk_shift)    */
    node_t *top;             /* levels above the chunks: [1, nchunks)     */
    rec_t **hash;            /* by first block, once meta is mapped       */
    unsigned hash_log;
    size_t nrecs;            /* run records (in few[] or in the hash)     */
    union {
        rec_t *hash_inline[1u << HASH_INLINE_LOG];
        few_t few[FEW_RUNS]; /* the runs while meta is NULL               */
    };
    rec_t *all;              /* every run record                          */
    size_t abandoned;        /* runs waiting to be re-reserved            */
    void *meta;              /* the mapping holding the chunks, or NULL:
                                until then the runs are in few[]          */
    size_t meta_size;
    size_t used, committed;  /* bytes                                     */
    size_t runs[VMC_OWNER_COUNT], bytes[VMC_OWNER_COUNT];
    vmc_blocks_reclaim_fn reclaim;  /* asked for space before a take fails */
    void *reclaim_arg;
    uint64_t touched[];      /* 1 bit per chunk ever written              */
};

/* few[] takes no room of its own: the handle's allocation stays as it was. */
_Static_assert(sizeof(few_t) * FEW_RUNS <= sizeof(rec_t *) << HASH_INLINE_LOG, "few[] fits the inline buckets");

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

/* ---- where things are ------------------------------------------------------- */

static chunk_t *chunk_at(const vmc_blocks_t *b, uint64_t c)
{
    return (chunk_t *)(b->chunks + (c << b->chunk_shift));
}

/* A chunk none of whose words was ever written is all free, and is not
 * read either (its page stays untouched): reading the zero page is a fault
 * too.  Updating a chunk's root reads its sibling's, so the sibling's page
 * would be read otherwise. */
static int touched(const vmc_blocks_t *b, uint64_t c) { return (int)(b->touched[c >> 6] >> (c & 63) & 1); }

static uint64_t word_index(const vmc_blocks_t *b, uint64_t w) { return w & ((1ull << b->chunk_log) - 1); }

static uint64_t taken_get(const vmc_blocks_t *b, uint64_t w)
{
    uint64_t c = w >> b->chunk_log;
    return touched(b, c) ? chunk_at(b, c)->taken[word_index(b, w)] : 0;
}

static uint64_t starts_get(const vmc_blocks_t *b, uint64_t w)
{
    uint64_t c = w >> b->chunk_log;
    return touched(b, c) ? chunk_at(b, c)->starts[word_index(b, w)] : 0;
}

/* For writing: the chunk counts as touched from now on. */
static chunk_t *chunk_w(vmc_blocks_t *b, uint64_t c)
{
    b->touched[c >> 6] |= 1ull << (c & 63);
    return chunk_at(b, c);
}

static uint64_t *taken_ptr(vmc_blocks_t *b, uint64_t w)
{
    return &chunk_w(b, w >> b->chunk_log)->taken[word_index(b, w)];
}

static uint64_t *starts_ptr(vmc_blocks_t *b, uint64_t w)
{
    return &chunk_w(b, w >> b->chunk_log)->starts[word_index(b, w)];
}

/* Node i (heap order over the whole tree) covering len blocks: in the top
 * levels (*chunk = -1), or in the chunk its ancestor at the chunks' level
 * roots (*chunk = that chunk). */
static inline __attribute__((always_inline)) node_t *node_at(const vmc_blocks_t *b, uint64_t i, uint64_t len,
                                                             int64_t *chunk)
{
    unsigned height = (unsigned)__builtin_ctzll(len) - 6;   /* 0 = a leaf */
    if (height > b->chunk_log) {
        *chunk = -1;
        return &b->top[i];
    }
    unsigned r = b->chunk_log - height;                     /* depth in its chunk */
    uint64_t c = (i >> r) - b->nchunks;
    *chunk = (int64_t)c;
    return &chunk_at(b, c)->node[(1ull << r) | (i & ((1ull << r) - 1))];
}

/* The run record of the run starting at block `first`, or NULL. */
static uint64_t hash_of(const vmc_blocks_t *b, uint64_t first)
{
    return (first * 0x9e3779b97f4a7c15ull) >> (64 - b->hash_log);
}

static vmc_run_t *rec_find(const vmc_blocks_t *b, uint64_t first)
{
    for (rec_t *rc = b->hash[hash_of(b, first)]; rc; rc = rc->hnext)
        if (rc->first == first) return &rc->run;
    return NULL;
}

/* Twice as many records as buckets: four times the buckets.  Without the
 * memory for that the chains just grow longer. */
static void hash_grow(vmc_blocks_t *b)
{
    if (b->nrecs < (2ull << b->hash_log) || b->hash_log >= 40) return;
    unsigned log = b->hash_log + 2;
    rec_t **h = calloc((size_t)1 << log, sizeof *h);
    if (!h) return;
    rec_t **old = b->hash;
    size_t n = (size_t)1 << b->hash_log;
    b->hash = h;
    b->hash_log = log;
    for (size_t i = 0; i < n; i++)
        for (rec_t *rc = old[i], *next; rc; rc = next) {
            next = rc->hnext;
            uint64_t k = hash_of(b, rc->first);
            rc->hnext = h[k];
            h[k] = rc;
        }
    if (old != b->hash_inline) free(old);
}

static void hash_add(vmc_blocks_t *b, rec_t *rc)
{
    uint64_t k = hash_of(b, rc->first);
    rc->hnext = b->hash[k];
    b->hash[k] = rc;
    b->nrecs++;
    hash_grow(b);
}

static void hash_remove(vmc_blocks_t *b, rec_t *rc)
{
    for (rec_t **p = &b->hash[hash_of(b, rc->first)]; *p; p = &(*p)->hnext)
        if (*p == rc) {
            *p = rc->hnext;
            b->nrecs--;
            return;
        }
}

/* ---- the tree ---------------------------------------------------------------- */

typedef struct sums { uint64_t mx, pre, suf; } sums_t;  /* free counts */

static inline __attribute__((always_inline)) sums_t node_get(const vmc_blocks_t *b, uint64_t i, uint64_t len)
{
    int64_t c;
    const node_t *n = node_at(b, i, len, &c);
    if (c >= 0 && !touched(b, (uint64_t)c)) return (sums_t){len, len, len};
    return (sums_t){len - n->mx, len - n->pre, len - n->suf};
}

/* Store s into node t (of chunk c, or -1 for the top levels). */
static void put_at(vmc_blocks_t *b, node_t *t, int64_t c, uint64_t len, sums_t s)
{
    node_t n = {(uint32_t)(len - s.mx), (uint32_t)(len - s.pre), (uint32_t)(len - s.suf)};
    /* A store of all-free (zero) that changes nothing is skipped: it keeps
     * untouched pages untouched.  Any other value is stored without looking:
     * the store is then the page's first touch (one fault, not two). */
    if (n.mx | n.pre | n.suf) {
        if (c >= 0) chunk_w(b, (uint64_t)c);
        *t = n;
    } else if (c < 0 || touched(b, (uint64_t)c)) {
        if (t->mx | t->pre | t->suf) *t = n;
    }
}

static void node_put(vmc_blocks_t *b, uint64_t i, uint64_t len, sums_t s)
{
    int64_t c;
    node_t *t = node_at(b, i, len, &c);
    put_at(b, t, c, len, s);
}

static sums_t sums_of(const node_t *n, uint64_t len) { return (sums_t){len - n->mx, len - n->pre, len - n->suf}; }

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
    sums_t s = word < b->nwords ? word_sums(taken_get(b, word)) : (sums_t){0, 0, 0};
    node_put(b, b->leaves + word, 64, s);
}

/* Recompute leaves [w0, w1] and every ancestor of them. */
VMC_LOAD_PATH static void tree_update(vmc_blocks_t *b, uint64_t w0, uint64_t w1)
{
    for (uint64_t w = w0; w <= w1; w++) leaf_update(b, w);
    uint64_t lo = b->leaves + w0, hi = b->leaves + w1, len = 64;
    unsigned h = 0;   /* the level's height above the leaves */
    while (lo > 1) {
        lo >>= 1;
        hi >>= 1;
        h++;
        for (uint64_t i = lo; i <= hi; i++) {
            sums_t l, r, s;
            node_t *t;
            int64_t c = -1;
            if (h <= b->chunk_log) {
                /* the node and its children in one chunk: found once */
                unsigned d = b->chunk_log - h;
                uint64_t loc = (1ull << d) | (i & ((1ull << d) - 1));
                c = (int64_t)((i >> d) - b->nchunks);
                chunk_t *ch = chunk_at(b, (uint64_t)c);
                t = &ch->node[loc];
                if (touched(b, (uint64_t)c)) {
                    l = sums_of(&ch->node[2 * loc], len);
                    r = sums_of(&ch->node[2 * loc + 1], len);
                } else {
                    l = r = (sums_t){len, len, len};
                }
            } else {
                l = node_get(b, 2 * i, len);
                r = node_get(b, 2 * i + 1, len);
                t = &b->top[i];
            }
            s.pre = l.pre == len ? len + r.pre : l.pre;
            s.suf = r.suf == len ? len + l.suf : r.suf;
            s.mx = l.mx > r.mx ? l.mx : r.mx;
            if (l.suf + r.pre > s.mx) s.mx = l.suf + r.pre;
            put_at(b, t, c, 2 * len, s);
        }
        len *= 2;
    }
}

VMC_LOAD_PATH static void set_range(vmc_blocks_t *b, uint64_t first, uint64_t n, int taken)
{
    for (uint64_t i = first; i < first + n;) {
        uint64_t w = i >> 6, off = i & 63, cnt = 64 - off;
        if (cnt > first + n - i) cnt = first + n - i;
        uint64_t mask = (cnt == 64 ? ~0ull : ((1ull << cnt) - 1)) << off;
        /* one read-modify-write instruction each (see the top) */
        if (taken) __atomic_fetch_or(taken_ptr(b, w), mask, __ATOMIC_RELAXED);
        else __atomic_fetch_and(taken_ptr(b, w), ~mask, __ATOMIC_RELAXED);
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
        uint64_t word = w < b->nwords ? taken_get(b, w) : ~0ull;
        if (nlo < f) *carry = 0;
        for (uint64_t blk = start; blk < nhi; blk++) {
            if (!(word >> (blk & 63) & 1)) {
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
VMC_LOAD_PATH static int64_t find_down(const vmc_blocks_t *b, uint64_t i, uint64_t nlo, uint64_t len, uint64_t g,
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
        uint64_t word = w < b->nwords ? taken_get(b, w) : ~0ull;
        if (nhi > g) *carry = 0;
        for (uint64_t blk = end; blk-- > nlo;) {
            if (!(word >> (blk & 63) & 1)) {
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
VMC_LOAD_PATH static int64_t find_run(const vmc_blocks_t *b, uint64_t k, uint64_t a, uint64_t phase, uint64_t lo,
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

/* ---- a few runs, before the chunks are mapped ------------------------------------ */

/* The first few[] entry not ending at or before block i: the run holding i,
 * or the first after it (nrecs if none). */
VMC_LOAD_PATH static size_t few_at(const vmc_blocks_t *b, uint64_t i)
{
    size_t j = 0;
    while (j < b->nrecs && b->few[j].end <= i) j++;
    return j;
}

/* find_run's answer from the gaps between the few runs: the lowest (highest)
 * start s in [lo, hi - k] with (s + phase) % a == 0 and [s, s + k) free. */
VMC_LOAD_PATH static int64_t few_find(const vmc_blocks_t *b, uint64_t k, uint64_t a, uint64_t phase, uint64_t lo,
                                      uint64_t hi, int top)
{
    if (hi > b->nblocks) hi = b->nblocks;
    if (k == 0 || hi < lo || hi - lo < k) return -1;
    size_t n = b->nrecs;
    for (size_t g = 0; g <= n; g++) {
        size_t j = top ? n - g : g;   /* the gap before few[j] */
        uint64_t g0 = j ? b->few[j - 1].end : 0, g1 = j < n ? b->few[j].first : b->nblocks;
        if (g0 < lo) g0 = lo;
        if (g1 > hi) g1 = hi;
        if (g1 <= g0 || g1 - g0 < k) continue;
        if (!top) {
            int64_t s = align_up_phase(g0, a, phase);
            if ((uint64_t)s + k <= g1) return s;
        } else {
            int64_t s = align_down_phase(g1 - k, a, phase);
            if (s >= 0 && (uint64_t)s >= g0) return s;
        }
    }
    return -1;
}

/* The longest gap between the few runs, skipping the runs starting at the
 * blocks skip[0..nskip) as if free. */
static uint64_t few_largest(const vmc_blocks_t *b, const uint64_t *skip, size_t nskip)
{
    uint64_t best = 0, from = 0;
    for (size_t j = 0; j <= b->nrecs; j++) {
        if (j < b->nrecs) {
            size_t m = 0;
            while (m < nskip && skip[m] != b->few[j].first) m++;
            if (m < nskip) continue;
        }
        uint64_t to = j < b->nrecs ? b->few[j].first : b->nblocks;
        if (to - from > best) best = to - from;
        if (j < b->nrecs) from = b->few[j].end;
    }
    return best;
}

/* ---- setup -------------------------------------------------------------------- */

/* The chunks of a region of `size` bytes, in one mapping: each one page
 * apart; the top levels in the last chunk's page when they fit there, else
 * in pages of their own at the start. */
typedef struct layout {
    uint64_t nblocks, nwords, leaves, nchunks;
    unsigned leaf_depth, chunk_log;
    size_t chunk_shift, top_off, chunks_off, total;
} layout_t;

VMC_LOAD_PATH static layout_t layout_of(size_t size)
{
    layout_t l;
    size_t page = vmc__os_page_size();
    l.nblocks = size / vmc__os_granularity();
    l.nwords = (l.nblocks + 63) / 64;
    l.leaves = 1;
    l.leaf_depth = 0;
    while (l.leaves < l.nwords) {
        l.leaves *= 2;
        l.leaf_depth++;
    }
    l.chunk_log = l.leaf_depth < CHUNK_LOG ? l.leaf_depth : CHUNK_LOG;
    l.nchunks = l.leaves >> l.chunk_log;
    size_t stride = page;
    while (stride < sizeof(chunk_t)) stride *= 2;
    l.chunk_shift = (size_t)__builtin_ctzll(stride);
    size_t top = l.nchunks * sizeof(node_t);
    if (top <= stride - sizeof(chunk_t)) {
        l.chunks_off = 0;
        l.top_off = ((l.nchunks - 1) << l.chunk_shift) + sizeof(chunk_t);
    } else {
        l.top_off = 0;
        l.chunks_off = (top + stride - 1) & ~(stride - 1);
    }
    l.total = l.chunks_off + (l.nchunks << l.chunk_shift);
    return l;
}

static int meta_ready(vmc_blocks_t *b);
static int record(vmc_blocks_t *b, uint64_t first, uint64_t n, int owner, void *tag, uintptr_t *out);

int vmc__blocks_init(vmc_blocks_t **out, vmc_region_t *r)
{
    layout_t l = layout_of(r->size);
    vmc_blocks_t *b = calloc(1, sizeof *b + (l.nchunks + 63) / 64 * sizeof(uint64_t));
    if (!b) return vmc__fail(-ENOMEM, "%s region: out of memory for the block map", r->name);
    b->region = r;
    /* A block is the unit the system can commit, give back and map a view at:
     * the page on Linux, 64 KiB on Windows. */
    b->shift = (size_t)__builtin_ctzll(vmc__os_granularity());
    b->nblocks = l.nblocks;
    b->nwords = l.nwords;
    b->leaves = l.leaves;
    b->leaf_depth = l.leaf_depth;
    b->chunk_log = l.chunk_log;
    b->nchunks = l.nchunks;
    b->chunk_shift = l.chunk_shift;
    b->meta_size = l.total;
    b->hash = b->hash_inline;
    b->hash_log = HASH_INLINE_LOG;
    pthread_mutex_init(&b->lock, NULL);
    if (r->hole_hi > r->hole_lo) {
        /* The program's brk heap inside the region's span is taken for good
         * from the start: the first of few[]'s runs. */
        int e = record(b, (r->hole_lo - r->base) >> b->shift, (r->hole_hi - r->hole_lo) >> b->shift,
                       VMC_OWNER_BRK, NULL, NULL);
        if (e) {
            vmc__blocks_fini(b);
            return e;
        }
    }
    *out = b;
    return 0;
}

/* The chunks are mapped when a run more than few[] holds is taken (lock
 * held): opening a region costs no more than its reservation, and a process
 * that takes only a few runs (a library or two, a chunk of the code heap)
 * never maps them. */
/* A run into the mapped map: its record in the hash, its blocks taken, its
 * first block marked as a run's start. */
VMC_LOAD_PATH static void mapped_add(vmc_blocks_t *b, rec_t *rc, uint64_t first, uint64_t n)
{
    hash_add(b, rc);
    set_range(b, first, n, 1);
    __atomic_fetch_or(starts_ptr(b, first >> 6), 1ull << (first & 63), __ATOMIC_RELAXED);  /* one RMW */
}

VMC_LOAD_PATH static int meta_ready(vmc_blocks_t *b)
{
    if (b->meta) return 0;
    void *m;
    int e = vmc__os_alloc(b->meta_size, &m);
    if (e)
        return vmc__fail(e, "%s region: cannot map the block map (%zu bytes): %s", b->region->name,
                         b->meta_size, strerror(-e));
    layout_t l = layout_of(b->region->size);
    b->meta = m;
    b->chunks = (char *)m + l.chunks_off;
    b->top = (node_t *)((char *)m + l.top_off);
    /* Every search reads the top levels first: write their page now, so that
     * its first touch is one fault, not the zero page and then a second. */
    __atomic_store_n(&b->top[0].mx, 0, __ATOMIC_RELAXED);
    /* Blocks past the end of the region, in the last word, are never free;
     * leaves past the last word are all-taken by leaf_update's rule.  A
     * region of a power-of-two number of words has neither, and its
     * metadata is touched only where blocks are taken. */
    if (b->nblocks % 64) *taken_ptr(b, b->nwords - 1) = ~0ull << (b->nblocks % 64);
    if (b->nblocks % 64 || b->leaves > b->nwords)
        tree_update(b, b->nwords ? b->nwords - 1 : 0, b->leaves - 1);
    /* The runs taken so far move into the chunks and the hash table (whose
     * inline buckets held them). */
    few_t few[FEW_RUNS];
    size_t n = b->nrecs;
    memcpy(few, b->few, n * sizeof *few);
    memset(b->hash_inline, 0, sizeof b->hash_inline);
    b->nrecs = 0;
    for (size_t j = 0; j < n; j++) mapped_add(b, few[j].rec, few[j].first, few[j].end - few[j].first);
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
    if (b->hash != b->hash_inline) free(b->hash);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* ---- taking and giving ------------------------------------------------------ */

static void retry_abandoned(vmc_blocks_t *b);

static size_t largest_free_locked(const vmc_blocks_t *b)
{
    if (!b->meta) return (size_t)few_largest(b, NULL, 0) << b->shift;
    return node_get(b, 1, b->leaves * 64).mx << b->shift;
}

VMC_LOAD_PATH static int record(vmc_blocks_t *b, uint64_t first, uint64_t n, int owner, void *tag, uintptr_t *out)
{
    rec_t *rc = malloc(sizeof *rc);
    if (!rc) return vmc__fail(-ENOMEM, "%s region: out of memory for a run record", b->region->name);
    if (!b->meta && b->nrecs == FEW_RUNS) {
        int e = meta_ready(b);
        if (e) {
            free(rc);
            return e;
        }
    }
    rc->prev = NULL;
    rc->next = b->all;
    if (b->all) b->all->prev = rc;
    b->all = rc;
    vmc_run_t *run = &rc->run;
    *run = (vmc_run_t){b->region->base + (first << b->shift), n << b->shift, owner, 0, 0, tag, NULL, 0};
    rc->first = first;
    if (b->meta) {
        mapped_add(b, rc, first, n);
    } else {
        size_t j = few_at(b, first);   /* the run is free: its place in the order */
        memmove(&b->few[j + 1], &b->few[j], (b->nrecs - j) * sizeof *b->few);
        b->few[j] = (few_t){first, first + n, rc};
        b->nrecs++;
    }
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

static int64_t search(const vmc_blocks_t *b, uint64_t k, uint64_t a, uint64_t phase, uint64_t lo, uint64_t hi,
                      int top)
{
    return b->meta ? find_run(b, k, a, phase, lo, hi, top) : few_find(b, k, a, phase, lo, hi, top);
}

/* unit: 0, or the start's step counted from the region's base (any multiple
 * of the block size), in place of an absolute power-of-two align. */
VMC_LOAD_PATH static int take(vmc_blocks_t *b, size_t len, size_t align, size_t unit, uintptr_t lo, uintptr_t hi,
                int top, int owner, void *tag, int reclaim, uintptr_t *out)
{
    vmc_region_t *r = b->region;
    size_t bs = (size_t)1 << b->shift;
    if (len == 0 || len > r->size || (align & (align - 1)) || (unit & (bs - 1)) || owner <= 0 ||
        owner >= VMC_OWNER_COUNT)
        return vmc__fail(len > r->size ? -ENOSPC : -EINVAL,
                         "%s region: cannot take %zu bytes (align %zu) from a %zu-byte region",
                         r->name, len, unit ? unit : align, r->size);
    uint64_t k = (len + bs - 1) >> b->shift, a = align > bs ? align >> b->shift : 1;
    if (unit) a = unit >> b->shift;
    uint64_t blo = 0, bhi = b->nblocks;
    if (lo || hi) {
        uintptr_t end = r->base + r->size;
        if (hi <= r->base || lo >= end) goto nospace_window;
        blo = lo > r->base ? (lo - r->base + bs - 1) >> b->shift : 0;
        bhi = hi < end ? (hi - r->base) >> b->shift : b->nblocks;
    }
    pthread_mutex_lock(&b->lock);
    retry_abandoned(b);
    uint64_t phase = a > 1 && !unit ? (r->base >> b->shift) % a : 0;
    int64_t s = search(b, k, a, phase, blo, bhi, top);
    if (s < 0 && reclaim && b->reclaim) {
        /* The reclaimer gives runs back through this map: not under its lock. */
        pthread_mutex_unlock(&b->lock);
        int gave = b->reclaim(b->reclaim_arg);
        pthread_mutex_lock(&b->lock);
        if (gave) s = search(b, k, a, phase, blo, bhi, top);
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
    int e = record(b, (uint64_t)s, k, owner, tag, out);
    pthread_mutex_unlock(&b->lock);
    return e;

nospace_window:
    return vmc__fail(-ENOSPC, "%s region %#" PRIxPTR "..%#" PRIxPTR " lies outside the window %#" PRIxPTR "..%#" PRIxPTR, r->name,
                     (uintptr_t)r->base, (uintptr_t)(r->base + r->size), (uintptr_t)lo,
                     (uintptr_t)hi);
}

VMC_LOAD_PATH int vmc__blocks_take(vmc_blocks_t *b, size_t len, size_t align, uintptr_t lo, uintptr_t hi,
                     int top, int owner, void *tag, uintptr_t *out)
{
    return take(b, len, align, 0, lo, hi, top, owner, tag, 1, out);
}

int vmc__blocks_take_units(vmc_blocks_t *b, size_t len, size_t unit, int owner, void *tag, uintptr_t *out)
{
    return take(b, len, 0, unit, 0, 0, 0, owner, tag, 1, out);
}

int vmc__blocks_take_noreclaim(vmc_blocks_t *b, size_t len, size_t align, uintptr_t lo,
                               uintptr_t hi, int top, int owner, void *tag, uintptr_t *out)
{
    return take(b, len, align, 0, lo, hi, top, owner, tag, 0, out);
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
    retry_abandoned(b);
    int e = 0, is_free;
    if (b->meta) {
        uint64_t carry = 0;
        is_free = find_up(b, 1, 0, b->leaves * 64, first, k, &carry) == (int64_t)first;
    } else {
        size_t j = few_at(b, first);
        is_free = j == b->nrecs || b->few[j].first >= first + k;
    }
    if (!is_free)
        e = vmc__fail(-EEXIST, "%s region: %#" PRIxPTR "+%#zx is not free", r->name, (uintptr_t)addr, len);
    else
        e = record(b, first, k, owner, tag, NULL);
    pthread_mutex_unlock(&b->lock);
    return e;
}

/* The run record whose run contains block i, or NULL (lock held). */
VMC_LOAD_PATH static vmc_run_t *run_at(const vmc_blocks_t *b, uint64_t i)
{
    if (i >= b->nblocks) return NULL;
    if (!b->meta) {
        size_t j = few_at(b, i);
        return j < b->nrecs && b->few[j].first <= i ? &b->few[j].rec->run : NULL;
    }
    if (!(taken_get(b, i >> 6) >> (i & 63) & 1)) return NULL;
    for (uint64_t w = i >> 6;; w--) {
        uint64_t s = starts_get(b, w);
        if (w == i >> 6) s &= (i & 63) == 63 ? ~0ull : (2ull << (i & 63)) - 1;
        if (s) return rec_find(b, w * 64 + 63 - (uint64_t)__builtin_clzll(s));
        if (w == 0) return NULL;
    }
}

/* Re-reserve a run and mark it free (lock held).  If re-reserving fails the
 * run stays as it was and the error is returned. */
VMC_LOAD_PATH static int give_locked(vmc_blocks_t *b, vmc_run_t *run)
{
    int e = vmc__region_decommit(b->region, run->start, run->len);
    if (e) return e;
    uint64_t first = (run->start - b->region->base) >> b->shift, n = run->len >> b->shift;
    rec_t *rc = (rec_t *)run;
    if (b->meta) {
        set_range(b, first, n, 0);
        *starts_ptr(b, first >> 6) &= ~(1ull << (first & 63));
        hash_remove(b, rc);
    } else {
        size_t j = few_at(b, first);
        memmove(&b->few[j], &b->few[j + 1], (b->nrecs - j - 1) * sizeof *b->few);
        b->nrecs--;
    }
    b->used -= run->len;
    b->committed -= run->committed;
    b->runs[run->owner]--;
    b->bytes[run->owner] -= run->len;
    if (run->abandoned) b->abandoned--;
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

VMC_LOAD_PATH static vmc_run_t *run_starting(vmc_blocks_t *b, uintptr_t start)
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

VMC_LOAD_PATH int vmc__blocks_abandon(vmc_blocks_t *b, uintptr_t start)
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
VMC_LOAD_PATH static int commit_run(vmc_blocks_t *b, uintptr_t start, size_t len, int kind, int commit)
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

VMC_LOAD_PATH int vmc__blocks_mapped(vmc_blocks_t *b, uintptr_t start, size_t len, int kind)
{
    return commit_run(b, start, len, kind, 0);
}

VMC_LOAD_PATH int vmc__blocks_set_name(vmc_blocks_t *b, uintptr_t start, const char *name)
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
    uint64_t firsts[16];
    size_t m = 0;
    /* Mark the runs free in the tree, read its root, mark them taken again:
     * all under the lock, so no one sees the difference. */
    for (size_t i = 0; i < n && m < sizeof runs / sizeof *runs; i++) {
        vmc_region_t *r = b->region;
        vmc_run_t *run = vmc__region_contains(r, starts[i], 1)
                             ? run_at(b, (starts[i] - r->base) >> b->shift) : NULL;
        if (!run || run->start != starts[i]) continue;
        firsts[m] = (run->start - r->base) >> b->shift;
        if (b->meta) set_range(b, firsts[m], run->len >> b->shift, 0);
        runs[m++] = run;
    }
    if (!b->meta) {
        size_t largest = (size_t)few_largest(b, firsts, m) << b->shift;
        pthread_mutex_unlock(&b->lock);
        return largest;
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
    for (size_t j = 0; !b->meta && j < b->nrecs; j++) cb(&b->few[j].rec->run, arg);
    for (uint64_t w = 0; b->meta && w < b->nwords; w++) {
        /* two chunks with no block taken (their parent says so) are not
         * read: their pages stay untouched */
        uint64_t pair = 2ull << b->chunk_log;
        if (b->nchunks > 1 && !(w & (pair - 1)) && !b->top[(b->nchunks + (w >> b->chunk_log)) >> 1].mx) {
            w += pair - 1;
            continue;
        }
        for (uint64_t s = starts_get(b, w); s; s &= s - 1)
            cb(rec_find(b, w * 64 + (uint64_t)__builtin_ctzll(s)), arg);
    }
    pthread_mutex_unlock(&b->lock);
}

void vmc__blocks_meta(vmc_blocks_t *b, void **start, size_t *len)
{
    pthread_mutex_lock(&b->lock);
    *start = b->meta;
    *len = b->meta_size;
    pthread_mutex_unlock(&b->lock);
}
