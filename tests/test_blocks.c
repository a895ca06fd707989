/* The block layer against a brute-force model: every take finds exactly the
 * run a linear scan would (lowest or highest, aligned, inside the window). */
#include "test.h"
#include "alloc/blocks.h"
#include "os/os.h"
#include "base/error.h"

#include <sys/mman.h>

static void region_for_test(vmc_region_t *r, size_t size)
{
    memset(r, 0, sizeof *r);
    r->name = "code";
    uintptr_t base;
    ASSERT_OK(vmc__os_reserve(0, size, &base));
    r->base = r->wbase = base;
    r->size = size;
    vmc__os_hold(base, base + size);
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void) { return vt_xorshift(&rng_state); }

/* Model: lowest/highest k-run with a-aligned start in [lo, hi). */
/* Alignment is absolute: (base_block + s) % a == 0. */
static int64_t model_find(const unsigned char *used, uint64_t n, uint64_t k, uint64_t a, uint64_t lo,
                          uint64_t hi, int top, uint64_t base_block)
{
    if (hi > n) hi = n;
    if (hi < lo + k) return -1;
    for (uint64_t j = 0; j + k <= hi - lo; j++) {
        uint64_t s = top ? hi - k - j : lo + j, i = 0;
        if ((base_block + s) % a) continue;
        while (i < k && !used[s + i]) i++;
        if (i == k) return (int64_t)s;
    }
    return -1;
}

typedef struct each { size_t n; uintptr_t last; int ordered; } each_t;

static void each_cb(const vmc_run_t *run, void *arg)
{
    each_t *e = arg;
    if (e->n && run->start <= e->last) e->ordered = 0;
    e->last = run->start;
    e->n++;
}

/* Random takes (sizes up to big_k blocks, alignments, reach windows, both
 * ends) and gives against a brute-force model of a region of nblocks, with
 * at most max_live runs taken at a time.  Returns whether the map's chunks
 * were mapped (more runs than it keeps without them). */
static int match_model(uint64_t nblocks, int steps, uint64_t big_k, int max_live)
{
    vmc_region_t r;
    size_t size = (size_t)nblocks << 12;
    region_for_test(&r, size);
    vmc_blocks_t *b;
    ASSERT_OK(vmc__blocks_init(&b, &r));
    uint64_t n = size >> 12;
    unsigned char *used = calloc(n, 1);
    uintptr_t starts[4096];
    size_t lens[4096];
    int nlive = 0;
    for (int step = 0; step < steps; step++) {
        if (nlive > 0 && (rnd() % 3 == 0 || nlive == max_live)) {
            int j = (int)(rnd() % (uint64_t)nlive);
            ASSERT_OK(vmc__blocks_give(b, starts[j]));
            memset(used + ((starts[j] - r.base) >> 12), 0, lens[j] >> 12);
            starts[j] = starts[--nlive];
            lens[j] = lens[nlive];
            continue;
        }
        uint64_t k = rnd() % 8 == 0 ? 1 + rnd() % big_k : 1 + rnd() % 12;
        uint64_t a = 1ull << (rnd() % 4 == 0 ? rnd() % 6 : 0);
        uint64_t lo = 0, hi = n;
        int windowed = rnd() % 4 == 0, top = (int)(rnd() % 2);
        if (windowed) {
            lo = rnd() % n;
            hi = lo + rnd() % (n - lo + 1);
        }
        int64_t want = model_find(used, n, k, a, lo, hi, top, r.base >> 12);
        uintptr_t got = 0;
        int e = vmc__blocks_take(b, k << 12, a << 12, windowed ? r.base + (lo << 12) : 0,
                                 windowed ? r.base + (hi << 12) : 0, top, VMC_OWNER_CODE, NULL, &got);
        if (windowed && lo == hi) want = -1;
        if (want < 0) {
            ASSERT_MSG(e == -ENOSPC, "step %d: k=%lu a=%lu [%lu,%lu) top=%d: got %d at %#lx, model none",
                       step, (unsigned long)k, (unsigned long)a, (unsigned long)lo,
                       (unsigned long)hi, top, e, (unsigned long)got);
            continue;
        }
        ASSERT_MSG(e == 0, "step %d: k=%lu a=%lu [%lu,%lu) top=%d: %s (model %ld)", step,
                   (unsigned long)k, (unsigned long)a, (unsigned long)lo, (unsigned long)hi, top,
                   vmc_last_error(), (long)want);
        ASSERT_EQ((got - r.base) >> 12, want);
        ASSERT_EQ(got % (a << 12), 0);
        memset(used + want, 1, k);
        starts[nlive] = got;
        lens[nlive++] = k << 12;
    }
    vmc_blocks_usage_t u;
    vmc__blocks_usage(b, &u);
    size_t used_bytes = 0;
    for (int j = 0; j < nlive; j++) used_bytes += lens[j];
    ASSERT_EQ(u.used, used_bytes);
    /* largest free run agrees with the model */
    uint64_t best = 0, cur = 0;
    for (uint64_t i = 0; i < n; i++) {
        cur = used[i] ? 0 : cur + 1;
        if (cur > best) best = cur;
    }
    ASSERT_EQ(u.largest_free, best << 12);
    /* each: every live run once, in address order */
    each_t ea = {0, 0, 1};
    vmc__blocks_each(b, each_cb, &ea);
    ASSERT_EQ(ea.n, (size_t)nlive);
    ASSERT(ea.ordered);
    /* find: every block of a run maps back to it */
    for (int j = 0; j < nlive && j < 200; j++) {
        vmc_run_t run;
        ASSERT_OK(vmc__blocks_find(b, starts[j] + lens[j] - 1, &run));
        ASSERT_EQ(run.start, starts[j]);
        ASSERT_EQ(run.len, lens[j]);
    }
    /* the largest free run counting two live runs (and an address that
     * starts none) as free */
    if (nlive >= 2) {
        uintptr_t as_free[3] = {starts[0], starts[nlive - 1], starts[0] + 1};
        memset(used + ((starts[0] - r.base) >> 12), 0, lens[0] >> 12);
        memset(used + ((starts[nlive - 1] - r.base) >> 12), 0, lens[nlive - 1] >> 12);
        best = cur = 0;
        for (uint64_t i = 0; i < n; i++) {
            cur = used[i] ? 0 : cur + 1;
            if (cur > best) best = cur;
        }
        ASSERT_EQ(vmc__blocks_largest_free_counting(b, as_free, 3), best << 12);
        vmc__blocks_usage(b, &u);
        ASSERT_EQ(u.used, used_bytes);
    }
    void *meta;
    size_t meta_len;
    vmc__blocks_meta(b, &meta, &meta_len);
    free(used);
    vmc__blocks_fini(b);
    return meta != NULL;
}

TEST(blocks_match_model)
{
    /* 4100 blocks: not a power of two, not a word multiple */
    ASSERT(match_model(4100, 20000, 300, 4096));
}

TEST(blocks_match_model_deep_tree)
{
    /* 70,000 blocks: a tree of 12 levels, its paths crossing pages */
    ASSERT(match_model(70000, 4000, 4000, 4096));
}

TEST(blocks_match_model_one_chunk)
{
    /* 1000 blocks: 16 bitmap words, fewer than a chunk holds */
    ASSERT(match_model(1000, 5000, 200, 4096));
}

/* Up to 16 runs the map keeps them in a list of its own (its chunks never
 * mapped); the 17th moves them into the chunks, found the same way after. */
TEST(blocks_match_model_few_runs)
{
    ASSERT(!match_model(4100, 20000, 300, 16));
    ASSERT(!match_model(70000, 4000, 4000, 16));
    ASSERT(!match_model(1000, 5000, 200, 16));
    ASSERT(match_model(4100, 20000, 300, 17));
    ASSERT(match_model(70000, 4000, 4000, 17));
}

/* Pages of the map's mapping present (touched, even if only read). */
static size_t meta_pages(vmc_blocks_t *b)
{
    void *m;
    size_t len, page = vmc__os_page_size(), n = 0;
    vmc__blocks_meta(b, &m, &len);
    if (!m) return 0;
    unsigned char *v = calloc(len / page + 1, 1);
    ASSERT_OK(mincore(m, len, v));
    for (size_t i = 0; i < (len + page - 1) / page; i++) n += v[i] & 1;
    free(v);
    return n;
}

/* A fresh 2 GiB region's first runs (a library's at the top, a code run at
 * the bottom, up to 16 in all) map nothing: they are kept in the map's own
 * list.  The 17th maps the chunks, and the runs then touch one page each
 * where they lie: 17 runs in one chunk in the middle touch its page and the
 * last chunk's (the top levels are there); a library's run at the top
 * nothing more, a code run at the bottom one more page; giving them back
 * and taking again nothing new. */
TEST(blocks_first_takes_touch_few_pages)
{
    vmc_region_t r;
    region_for_test(&r, (size_t)2 << 30);
    vmc_blocks_t *b;
    ASSERT_OK(vmc__blocks_init(&b, &r));
    ASSERT_EQ(meta_pages(b), 0);
    uintptr_t lib, code, lib2, mid = r.base + (1u << 30);
    ASSERT_OK(vmc__blocks_take(b, 0x1f000, 0x1000, 0, 0, 1, VMC_OWNER_LIBRARY, NULL, &lib));
    ASSERT_EQ(lib, r.base + r.size - 0x1f000);
    ASSERT_OK(vmc__blocks_take(b, 0x40000, 0, 0, 0, 0, VMC_OWNER_CODE, NULL, &code));
    ASSERT_EQ(code, r.base);
    void *meta;
    size_t meta_len;
    vmc__blocks_meta(b, &meta, &meta_len);
    ASSERT(meta == NULL);
    ASSERT_OK(vmc__blocks_give(b, lib));
    ASSERT_OK(vmc__blocks_give(b, code));
    for (int i = 0; i < 16; i++)
        ASSERT_OK(vmc__blocks_take_at(b, mid + (uintptr_t)i * 0x2000, 0x1000, VMC_OWNER_FILE, NULL));
    vmc__blocks_meta(b, &meta, &meta_len);
    ASSERT(meta == NULL);
    ASSERT_OK(vmc__blocks_take_at(b, mid + 16 * 0x2000, 0x1000, VMC_OWNER_FILE, NULL));
    ASSERT_EQ(meta_pages(b), 2);
    ASSERT_OK(vmc__blocks_take(b, 0x1f000, 0x1000, 0, 0, 1, VMC_OWNER_LIBRARY, NULL, &lib));
    ASSERT_EQ(lib, r.base + r.size - 0x1f000);
    ASSERT_EQ(meta_pages(b), 2);
    ASSERT_OK(vmc__blocks_take(b, 0x40000, 0, 0, 0, 0, VMC_OWNER_CODE, NULL, &code));
    ASSERT_EQ(code, r.base);
    ASSERT_EQ(meta_pages(b), 3);
    vmc_run_t run;
    ASSERT_OK(vmc__blocks_find(b, lib + 0x1e000, &run));
    ASSERT_EQ(run.start, lib);
    ASSERT_OK(vmc__blocks_find(b, mid + 16 * 0x2000, &run));
    ASSERT_EQ(run.owner, VMC_OWNER_FILE);
    ASSERT_EQ(vmc__blocks_find(b, mid + 0x1000, &run), -ENOENT);
    ASSERT_OK(vmc__blocks_give(b, lib));
    ASSERT_OK(vmc__blocks_take(b, 0x30000, 0x10000, 0, 0, 1, VMC_OWNER_LIBRARY, NULL, &lib2));
    ASSERT_OK(vmc__blocks_give(b, lib2));
    ASSERT_OK(vmc__blocks_give(b, code));
    for (int i = 0; i < 17; i++) ASSERT_OK(vmc__blocks_give(b, mid + (uintptr_t)i * 0x2000));
    each_t ea = {0, 0, 1};
    vmc__blocks_each(b, each_cb, &ea);
    ASSERT_EQ(ea.n, 0);
    ASSERT_EQ(meta_pages(b), 3);
    vmc__blocks_fini(b);
}

/* Mapping the chunks fails (the 17th run): that take fails with the
 * mapping's error and changes nothing; the next one maps them. */
TEST(blocks_map_failing_at_the_17th_run)
{
    vmc_region_t r;
    region_for_test(&r, 16 << 20);
    vmc_blocks_t *b;
    ASSERT_OK(vmc__blocks_init(&b, &r));
    uintptr_t at[17];
    for (int i = 0; i < 16; i++) ASSERT_OK(vmc__blocks_take(b, 0x2000, 0, 0, 0, i & 1, VMC_OWNER_CODE, NULL, &at[i]));
    vmc__os_fault(VMC_OS_MMAP, 1, ENOMEM, 0);
    ASSERT_EQ(vmc__blocks_take(b, 0x3000, 0, 0, 0, 0, VMC_OWNER_CODE, NULL, &at[16]), -ENOMEM);
    vmc__os_fault_clear();
    ASSERT_STR_EQ(vmc_last_error(), "code region: cannot map the block map (4096 bytes): Cannot allocate memory");
    vmc__os_fault(VMC_OS_MMAP, 1, ENOMEM, 0);
    ASSERT_EQ(vmc__blocks_take_at(b, r.base + (8 << 20), 0x1000, VMC_OWNER_FILE, NULL), -ENOMEM);
    vmc__os_fault_clear();
    void *meta;
    size_t meta_len;
    vmc__blocks_meta(b, &meta, &meta_len);
    ASSERT(meta == NULL);
    vmc_blocks_usage_t u;
    vmc__blocks_usage(b, &u);
    ASSERT_EQ(u.used, 16 * 0x2000);
    ASSERT_EQ(u.runs[VMC_OWNER_CODE], 16);
    ASSERT_EQ(u.runs[VMC_OWNER_FILE], 0);
    ASSERT_EQ(u.largest_free, (16 << 20) - 16 * 0x2000);
    vmc_run_t run;
    ASSERT_EQ(vmc__blocks_find(b, r.base + (8 << 20), &run), -ENOENT);
    ASSERT_OK(vmc__blocks_take(b, 0x3000, 0, 0, 0, 0, VMC_OWNER_CODE, NULL, &at[16]));
    ASSERT_EQ(at[16], r.base + 8 * 0x2000);
    vmc__blocks_meta(b, &meta, &meta_len);
    ASSERT(meta != NULL);
    for (int i = 0; i < 17; i++) {
        ASSERT_OK(vmc__blocks_find(b, at[i] + 0x1fff, &run));
        ASSERT_EQ(run.start, at[i]);
    }
    each_t ea = {0, 0, 1};
    vmc__blocks_each(b, each_cb, &ea);
    ASSERT_EQ(ea.n, 17);
    ASSERT(ea.ordered);
    for (int i = 0; i < 17; i++) ASSERT_OK(vmc__blocks_give(b, at[i]));
    vmc__blocks_usage(b, &u);
    ASSERT_EQ(u.largest_free, 16 << 20);
    vmc__blocks_fini(b);
}

TEST(blocks_take_at_and_errors)
{
    vmc_region_t r;
    region_for_test(&r, 16 << 20);
    vmc_blocks_t *b;
    ASSERT_OK(vmc__blocks_init(&b, &r));
    ASSERT_OK(vmc__blocks_take_at(b, r.base + 0x10000, 0x3000, VMC_OWNER_LIBRARY, NULL));
    ASSERT_EQ(vmc__blocks_take_at(b, r.base + 0x12000, 0x1000, VMC_OWNER_FILE, NULL), -EEXIST);
    ASSERT_EQ(vmc__blocks_take_at(b, r.base + 0xf000, 0x2000, VMC_OWNER_FILE, NULL), -EEXIST);
    ASSERT_OK(vmc__blocks_take_at(b, r.base + 0xf000, 0x1000, VMC_OWNER_FILE, NULL));
    ASSERT_EQ(vmc__blocks_take_at(b, r.base + 0x123, 0x1000, VMC_OWNER_FILE, NULL), -EINVAL);
    ASSERT_EQ(vmc__blocks_give(b, r.base + 0x11000), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "is not the start of a taken run");
    ASSERT_EQ(vmc__blocks_give(b, r.base + 0x100000), -EINVAL);
    vmc_run_t run;
    ASSERT_EQ(vmc__blocks_find(b, r.base + 0x13000, &run), -ENOENT);
    ASSERT_OK(vmc__blocks_find(b, r.base + 0x12fff, &run));
    ASSERT_EQ(run.owner, VMC_OWNER_LIBRARY);
    /* A request larger than any free run: the message says both sizes. */
    ASSERT_EQ(vmc__blocks_take(b, 17 << 20, 0, 0, 0, 0, VMC_OWNER_CODE, NULL, NULL), -ENOSPC);
    ASSERT_EQ(vmc__blocks_take(b, 16 << 20, 0, 0, 0, 0, VMC_OWNER_CODE, NULL, NULL), -ENOSPC);
    ASSERT_STR_EQ(vmc_last_error(),
                  "code region full: asked for 16777216 bytes, largest free run is 16699392 bytes");
    vmc__blocks_fini(b);
}

/* A step that is no power of two (the Windows slot fallback's slots),
 * counted from the region's base: each run starts on one, past taken blocks
 * inside the first steps; a unit that is not whole blocks is refused. */
TEST(blocks_take_units_from_the_base)
{
    vmc_region_t r;
    region_for_test(&r, 16 << 20);
    vmc_blocks_t *b;
    ASSERT_OK(vmc__blocks_init(&b, &r));
    size_t bs = vmc__os_granularity(), unit = 10 * bs;
    uintptr_t a, c, d;
    ASSERT_OK(vmc__blocks_take(b, bs, 0, 0, 0, 0, VMC_OWNER_STUBS, NULL, &a));
    ASSERT_EQ(a, r.base);
    ASSERT_OK(vmc__blocks_take_units(b, unit, unit, VMC_OWNER_FILE, NULL, &c));
    ASSERT_EQ(c, r.base + unit);
    ASSERT_OK(vmc__blocks_take_units(b, unit + bs, unit, VMC_OWNER_FILE, NULL, &d));
    ASSERT_EQ(d, r.base + 2 * unit);
    ASSERT_OK(vmc__blocks_give(b, c));
    ASSERT_OK(vmc__blocks_take_units(b, bs, unit, VMC_OWNER_FILE, NULL, &c));
    ASSERT_EQ(c, r.base + unit);
    ASSERT_OK(vmc__blocks_take_units(b, bs, unit, VMC_OWNER_FILE, NULL, &c));
    ASSERT_EQ(c, r.base + 4 * unit);
    ASSERT_EQ(vmc__blocks_take_units(b, bs, bs + 1, VMC_OWNER_FILE, NULL, &c), -EINVAL);
    vmc__blocks_fini(b);
}

/* Committing and giving back: no VMA is split per run, giving back
 * re-reserves PROT_NONE, and a failing commit changes nothing. */
TEST(blocks_commit_give_and_faults)
{
    vmc_region_t r;
    region_for_test(&r, 16 << 20);
    vmc_blocks_t *b;
    ASSERT_OK(vmc__blocks_init(&b, &r));
    int lines0 = vt_maps_count(NULL);
    uintptr_t a[8];
    for (int i = 0; i < 8; i++) {
        ASSERT_OK(vmc__blocks_take(b, 0x10000, 0, 0, 0, 0, VMC_OWNER_RDATA, NULL, &a[i]));
        ASSERT_OK(vmc__blocks_commit(b, a[i], 0x10000, VMC_RDATA));
        memset((void *)a[i], 0xab, 0x10000);
    }
    /* eight adjacent committed runs: one rw-p line (plus the rest ---p) */
    ASSERT_LE(vt_maps_count(NULL), lines0 + 2);
    ASSERT(vt_maps_has(r.base, r.base + 0x80000, "rw-p"));
    vmc_blocks_usage_t u;
    vmc__blocks_usage(b, &u);
    ASSERT_EQ(u.committed, 0x80000);
    /* an injected mprotect failure: nothing committed, state unchanged */
    uintptr_t c;
    ASSERT_OK(vmc__blocks_take(b, 0x10000, 0, 0, 0, 0, VMC_OWNER_RDATA, NULL, &c));
    vmc__os_fault(VMC_OS_MPROTECT, 1, ENOMEM, 0);
    ASSERT_EQ(vmc__blocks_commit(b, c, 0x10000, VMC_RDATA), -ENOMEM);
    vmc__os_fault_clear();
    ASSERT_STR_CONTAINS(vmc_last_error(), "cannot commit 0x10000 bytes at");
    ASSERT_STR_CONTAINS(vmc_last_error(), "vm.max_map_count");
    vmc__blocks_usage(b, &u);
    ASSERT_EQ(u.committed, 0x80000);
    ASSERT(vt_maps_has(r.base, r.base + 0x80000, "rw-p"));
    /* an injected re-reserve failure: the run stays taken and committed */
    vmc__os_fault(VMC_OS_MMAP, 1, ENOMEM, 0);
    ASSERT_EQ(vmc__blocks_give(b, a[3]), -ENOMEM);
    vmc__os_fault_clear();
    vmc_run_t run;
    ASSERT_OK(vmc__blocks_find(b, a[3], &run));
    ASSERT_EQ(*(unsigned char *)a[3], 0xab);
    for (int i = 0; i < 8; i++) ASSERT_OK(vmc__blocks_give(b, a[i]));
    ASSERT_OK(vmc__blocks_give(b, c));
    ASSERT(vt_maps_has(r.base, r.base + r.size, "---p"));
    vmc__blocks_usage(b, &u);
    ASSERT_EQ(u.committed, 0);
    ASSERT_EQ(u.used, 0);
    ASSERT_EQ(u.largest_free, 16 << 20);
    vmc__blocks_fini(b);
}

/* An owner that goes away while re-reserving keeps failing: its range is
 * made inaccessible at once and re-reserved by the next take that works. */
TEST(blocks_abandon_when_re_reserve_fails)
{
    vmc_region_t r;
    region_for_test(&r, 16 << 20);
    vmc_blocks_t *b;
    ASSERT_OK(vmc__blocks_init(&b, &r));
    uintptr_t a;
    ASSERT_OK(vmc__blocks_take(b, 0x4000, 0, 0, 0, 0, VMC_OWNER_FILE, NULL, &a));
    ASSERT_OK(vmc__blocks_commit(b, a, 0x4000, VMC_RDATA));
    memset((void *)a, 7, 0x4000);
    vmc__fail(-EIO, "the failure that made the owner go");
    vmc__os_fault(VMC_OS_MMAP, 1, ENOMEM, 1);
    ASSERT_EQ(vmc__blocks_abandon(b, a), -ENOMEM);
    vmc__os_fault_clear();
    ASSERT_STR_CONTAINS(vmc_last_error(), "the failure that made the owner go; its range is inaccessible "
                                          "until it can be re-reserved: code region: cannot re-reserve");
    ASSERT(vt_maps_has(r.base, r.base + r.size, "---p")); /* no access left: it merged back */
    vmc_run_t run;
    ASSERT_OK(vmc__blocks_find(b, a, &run));
    ASSERT(run.abandoned);
    ASSERT(run.tag == NULL);
    /* the next take re-reserves it: the whole region is one reservation again */
    uintptr_t c;
    ASSERT_OK(vmc__blocks_take(b, 0x1000, 0, 0, 0, 1, VMC_OWNER_RDATA, NULL, &c));
    ASSERT_EQ(vmc__blocks_find(b, a, &run), -ENOENT);
    ASSERT_OK(vmc__blocks_give(b, c));
    ASSERT(vt_maps_has(r.base, r.base + r.size, "---p"));
    /* and when re-reserving works, abandon is give */
    ASSERT_OK(vmc__blocks_take(b, 0x4000, 0, 0, 0, 0, VMC_OWNER_FILE, NULL, &a));
    ASSERT_OK(vmc__blocks_abandon(b, a));
    ASSERT_EQ(vmc__blocks_find(b, a, &run), -ENOENT);
    vmc__blocks_fini(b);
}

/* The reclaimer: asked (without the map's lock) only when a take finds no
 * room, the take searches again when it gave something back; the _noreclaim
 * take never asks. */
typedef struct reclaimer {
    vmc_blocks_t *b;
    uintptr_t give;              /* a run to give back when asked, or 0    */
    int asked;
} reclaimer_t;

static int reclaim_one(void *arg)
{
    reclaimer_t *rc = arg;
    rc->asked++;
    if (!rc->give) return 0;
    ASSERT_OK(vmc__blocks_give(rc->b, rc->give));  /* would deadlock under the lock */
    rc->give = 0;
    return 1;
}

TEST(blocks_reclaimer_and_counting_runs_as_free)
{
    vmc_region_t r;
    region_for_test(&r, 1 << 20);
    vmc_blocks_t *b;
    ASSERT_OK(vmc__blocks_init(&b, &r));
    reclaimer_t rc = {b, 0, 0};
    vmc__blocks_set_reclaim(b, reclaim_one, &rc);
    uintptr_t lo, mid, hi, x;
    ASSERT_OK(vmc__blocks_take(b, 256 << 10, 0, 0, 0, 0, VMC_OWNER_LIBRARY, NULL, &lo));
    ASSERT_OK(vmc__blocks_take(b, 256 << 10, 0, 0, 0, 0, VMC_OWNER_CODE, NULL, &mid));
    ASSERT_OK(vmc__blocks_take(b, 256 << 10, 0, 0, 0, 0, VMC_OWNER_FILE, NULL, &hi));
    ASSERT_EQ(rc.asked, 0);
    /* free: the top 256K; counting the middle run: it and the run above */
    uintptr_t starts[] = {mid, mid + 4096, r.base + (1 << 20) + 4096};
    ASSERT_EQ(vmc__blocks_largest_free_counting(b, starts, 1), 256 << 10);
    ASSERT_EQ(vmc__blocks_largest_free_counting(b, starts, 0), 256 << 10);
    ASSERT_EQ(vmc__blocks_largest_free_counting(b, starts + 1, 2), 256 << 10);  /* no run starts there */
    uintptr_t both[] = {mid, hi};
    ASSERT_EQ(vmc__blocks_largest_free_counting(b, both, 2), 768 << 10);
    ASSERT_EQ(vmc__blocks_largest_free_counting(b, both, 0), 256 << 10);  /* nothing changed */
    /* nothing to give back: asked once, the message as before */
    ASSERT_EQ(vmc__blocks_take(b, 512 << 10, 0, 0, 0, 0, VMC_OWNER_FILE, NULL, &x), -ENOSPC);
    ASSERT_EQ(rc.asked, 1);
    ASSERT_STR_EQ(vmc_last_error(), "code region full: asked for 524288 bytes, largest free run is 262144 bytes");
    /* the run below the free top given back when asked: the take gets both */
    rc.give = hi;
    ASSERT_EQ(vmc__blocks_take_noreclaim(b, 512 << 10, 0, 0, 0, 0, VMC_OWNER_FILE, NULL, &x), -ENOSPC);
    ASSERT_EQ(rc.asked, 1);
    ASSERT_OK(vmc__blocks_take(b, 512 << 10, 0, 0, 0, 0, VMC_OWNER_FILE, NULL, &x));
    ASSERT_EQ(rc.asked, 2);
    ASSERT_EQ(x, hi);
    vmc__blocks_fini(b);
}
