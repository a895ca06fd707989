/* A region whose allocations are all freed is whole again: what the code
 * heap keeps for itself (whole free chunks kept committed, empty slabs in
 * thread caches) never makes a request fail that the empty region could
 * satisfy, and vmc_stats counts it as free.  Also the -ENOSPC message of a
 * small allocation. */
#include "test.h"
#include "vmcode.h"
#include "os/os.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define REGION ((size_t)64 << 20)
#define BIG    ((size_t)48 << 20)

static vmc_t *open_64m(void) { return vt_open("-vm_size 64M -vmheap_size 0 -no_allow_smaller"); }

/* What libraries, stubs and file mappings hold of the code region: their
 * bytes, and the longest stretch between them (everything else there is free
 * once all allocations are freed). */
typedef struct held {
    size_t bytes, longest, run;
} held_t;

static int held_run(const vmc_run_info_t *ri, void *arg)
{
    held_t *h = arg;
    if (ri->region != 0) return 0;
    if (ri->owner == VMC_RUN_LIBRARY || ri->owner == VMC_RUN_STUBS || ri->owner == VMC_RUN_FILE) {
        h->bytes += ri->size;
        h->run = 0;
    } else {
        h->run += ri->size;
        if (h->run > h->longest) h->longest = h->run;
    }
    return 0;
}

static held_t held(vmc_t *v)
{
    held_t h = {0, 0, 0};
    vmc_walk(v, held_run, &h);
    return h;
}

typedef struct filled {
    void **p;
    size_t n;
} filled_t;

/* Size mixes: 0 = 64 bytes, 1 = 3 KB, 2 = 70 KB, 3 = all three and 200 bytes. */
static size_t mix_size(int mix, size_t i)
{
    static const size_t all[] = {64, 3072, 200, 71680, 64, 200};
    switch (mix) {
    case 0: return 64;
    case 1: return 3072;
    case 2: return 71680;
    default: return all[i % 6];
    }
}

/* Allocate until the region is full (-ENOSPC). */
static filled_t fill(vmc_t *v, int mix, int kind)
{
    filled_t f = {NULL, 0};
    size_t cap = 0;
    for (;;) {
        if (f.n == cap) {
            cap = cap ? cap * 2 : 4096;
            f.p = realloc(f.p, cap * sizeof *f.p);
            ASSERT(f.p != NULL);
        }
        vmc_span_t s;
        int e = vmc_alloc(v, mix_size(mix, f.n), kind, &s);
        if (e == -ENOSPC) break;
        ASSERT_OK(e);
        f.p[f.n++] = s.x;
    }
    ASSERT_GT(f.n, 100);
    return f;
}

/* Free everything, the allocation nearest the middle of the region last. */
static void free_all_middle_last(vmc_t *v, filled_t *f)
{
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    uintptr_t mid = (uintptr_t)in.code_base + in.code_size / 2;
    size_t last = 0;
    for (size_t i = 0; i < f->n; i++) {
        uintptr_t a = (uintptr_t)f->p[i], b = (uintptr_t)f->p[last];
        if ((a > mid ? a - mid : mid - a) < (b > mid ? b - mid : mid - b)) last = i;
    }
    for (size_t i = 0; i < f->n; i++)
        if (i != last) ASSERT_OK(vmc_free(v, f->p[i]));
    ASSERT_OK(vmc_free(v, f->p[last]));
    free(f->p);
    f->p = NULL;
}

/* edges: the held runs are at the ends of the region (not split by, say, a
 * stub page that went into the middle while that was the only room). */
static void assert_whole(vmc_t *v, int edges)
{
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.allocations, 0);
    held_t h = held(v);
    ASSERT_EQ(st.code_largest_free, h.longest);
    /* libraries go to the top, stubs and mappings to the bottom: */
    if (edges) ASSERT_EQ(h.longest, REGION - h.bytes);
}

/* mov eax, imm32; ret */
static void emit_ret(void *w, uint32_t imm)
{
    unsigned char *p = w;
    p[0] = 0xb8;
    memcpy(p + 1, &imm, 4);
    p[5] = 0xc3;
}

static void big_alloc_works(vmc_t *v)
{
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, BIG, VMC_CODE, &s));
    emit_ret((char *)s.w + BIG - 4096, 48);
    ASSERT_EQ(((int (*)(void))((char *)s.x + BIG - 4096))(), 48);
    ASSERT_OK(vmc_free(v, s.x));
}

static void load_works(vmc_t *v, const char *name, const char *sym)
{
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib(name), 0, &l));
    ASSERT(vmc_lib_sym(l, sym) != NULL);
    ASSERT_OK(vmc_lib_unload(l));
}

TEST(emptied_region_is_whole_for_every_size_mix)
{
    for (int mix = 0; mix < 4; mix++) {
        for (int kind = VMC_CODE; kind <= VMC_RDATA; kind++) {
            vmc_t *v = open_64m();
            filled_t f = fill(v, mix, kind);
            free_all_middle_last(v, &f);
            assert_whole(v, 1);
            big_alloc_works(v);
            load_works(v, "libt_basic.so", "t_add");
            assert_whole(v, 1);
            /* and it fills as full again */
            f = fill(v, mix, kind);
            free_all_middle_last(v, &f);
            assert_whole(v, 1);
            big_alloc_works(v);
            vmc_close(v);
        }
    }
}

TEST(emptied_region_is_whole_around_libraries)
{
    vmc_t *v = open_64m();
    vmc_lib_t *keep;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &keep));
    void *lib_base;
    size_t lib_len;
    ASSERT_OK(vmc_lib_span(keep, &lib_base, &lib_len));
    for (int mix = 0; mix < 4; mix++) {
        filled_t f = fill(v, mix, VMC_CODE);
        free_all_middle_last(v, &f);
        assert_whole(v, 1);
        ASSERT_EQ(held(v).bytes, lib_len);
        big_alloc_works(v);
        load_works(v, "libt_weak.so", "t_weak_is_null");
    }
    ASSERT_OK(vmc_lib_unload(keep));
    assert_whole(v, 1);
    ASSERT_EQ(held(v).bytes, 0);
    vmc_close(v);
}

/* The region fully taken by code-heap chunks, one of them in the middle
 * wholly free again (kept committed by the heap): the block layer has no
 * free block, yet the kept chunk counts as free, and every kind of taker
 * gets it. */
static int middle_chunk(const vmc_run_info_t *ri, void *arg)
{
    uintptr_t *want = arg;  /* [0]: the middle of the region in, the run out */
    uintptr_t a = (uintptr_t)ri->start;
    if (ri->region == 0 && ri->owner == VMC_RUN_CODE_HEAP && ri->size == (1u << 20) &&
        a <= want[0] && a + ri->size > want[0] - (8u << 20)) {
        want[1] = a;
        return 1;
    }
    return 0;
}

static vmc_t *packed(filled_t *f)
{
    vmc_t *v = open_64m();
    *f = fill(v, 0, VMC_CODE);
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    uintptr_t want[2] = {(uintptr_t)in.code_base + in.code_size / 2, 0};
    vmc_walk(v, middle_chunk, want);
    ASSERT_NE(want[1], 0);
    for (size_t i = 0; i < f->n; i++) {
        uintptr_t a = (uintptr_t)f->p[i];
        if (a >= want[1] && a < want[1] + (1u << 20)) {
            ASSERT_OK(vmc_free(v, f->p[i]));
            f->p[i] = NULL;
        }
    }
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.code_largest_free, 1u << 20);
    ASSERT_EQ(st.code_committed, REGION);
    return v;
}

static void unpack(vmc_t *v, filled_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->p[i]) ASSERT_OK(vmc_free(v, f->p[i]));
    free(f->p);
    assert_whole(v, 0);
    vmc_close(v);
}

TEST(kept_chunk_goes_to_any_taker)
{
    filled_t f;
    vmc_t *v = packed(&f);
    load_works(v, "libt_basic.so", "t_add");
    unpack(v, &f);

    v = packed(&f);
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 100000, VMC_CODE, &s));
    ASSERT_OK(vmc_free(v, s.x));
    unpack(v, &f);

    v = packed(&f);
    ASSERT_OK(vmc_alloc(v, 64, VMC_RDATA, &s));
    ASSERT_OK(vmc_free(v, s.x));
    unpack(v, &f);

    v = packed(&f);
    void *stub;
    ASSERT_OK(vmc_stub(v, (uintptr_t)0x10000000000, &stub));
    unpack(v, &f);

    v = packed(&f);
    char path[] = "/tmp/vmc-refill-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    unlink(path);
    ASSERT_EQ(write(fd, "map me", 6), 6);
    void *m;
    ASSERT_OK(vmc_map_file(v, fd, 0, 4096, PROT_READ, VMC_MAP_REACHABLE, &m));
    ASSERT_EQ(memcmp(m, "map me", 6), 0);
    ASSERT_OK(vmc_unmap_file(v, m, 4096));
    close(fd);
    unpack(v, &f);
}

/* Giving the kept chunk back fails (the re-reservation's mmap): the request
 * fails with its own message, the chunk stays usable, and the next request
 * gets it. */
TEST(kept_chunk_that_cannot_go_back_fails_cleanly)
{
    filled_t f;
    vmc_t *v = packed(&f);
    vmc_span_t s;
    vmc__os_fault(VMC_OS_MMAP, 1, ENOMEM, 0);
    ASSERT_EQ(vmc_alloc(v, 100000, VMC_CODE, &s), -ENOSPC);
    ASSERT_EQ(vmc__os_faults_hit(), 1);
    ASSERT_STR_EQ(vmc_last_error(),
                  "vmc_alloc: 100000 bytes: code region full: asked for 102400 bytes, largest free run is 0 bytes");
    vmc__os_fault_clear();
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &s));  /* the chunk is still the heap's */
    ASSERT_OK(vmc_free(v, s.x));
    ASSERT_OK(vmc_alloc(v, 100000, VMC_CODE, &s));
    ASSERT_OK(vmc_free(v, s.x));
    unpack(v, &f);
}

/* The map says which code-heap runs are kept chunks that count as free. */
TEST(dump_marks_kept_chunks)
{
    vmc_t *v = open_64m();
    static void *p[20480];
    for (int i = 0; i < 20480; i++) {
        vmc_span_t s;
        ASSERT_OK(vmc_alloc(v, 512, VMC_CODE, &s));
        p[i] = s.x;
    }
    for (int i = 0; i < 20480; i++) ASSERT_OK(vmc_free(v, p[i]));
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ASSERT(f != NULL);
    ASSERT_OK(vmc_dump(v, f));
    fclose(f);
    int runs = 0, kept = 0;
    for (char *l = text; (l = strstr(l, "code heap  code, committed 1M")); l++) {
        runs++;
        char *eol = strchr(l, '\n');
        ASSERT(eol != NULL);
        static const char mark[] = "  (wholly free, kept for reuse: counts as free)";
        size_t m = sizeof mark - 1;
        if ((size_t)(eol - l) > m && memcmp(eol - m, mark, m) == 0) kept++;
    }
    ASSERT_GE(runs, 1);
    ASSERT_LE(runs, 4);
    ASSERT_MSG(kept == runs, "%d of %d code-heap runs marked kept:\n%s", kept, runs, text);
    free(text);
    assert_whole(v, 1);
    vmc_close(v);
}

/* ---- other threads -------------------------------------------------------------- */

typedef struct worker {
    vmc_t *v;
    filled_t f;
    pthread_barrier_t *bar;   /* NULL: exit right after filling */
} worker_t;

static void *fill_thread(void *arg)
{
    worker_t *w = arg;
    w->f = fill(w->v, 3, VMC_CODE);
    if (w->bar) {
        pthread_barrier_wait(w->bar);   /* filled */
        pthread_barrier_wait(w->bar);   /* the main thread freed everything */
    }
    return NULL;
}

/* A thread filled the region and exited; another frees everything (into the
 * exited thread's idle cache): the 48 MiB request gets the space. */
TEST_THREADED(emptied_by_another_thread_after_the_filler_exited)
{
    vmc_t *v = open_64m();
    worker_t w = {v, {NULL, 0}, NULL};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, fill_thread, &w), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    free_all_middle_last(v, &w.f);
    big_alloc_works(v);
    assert_whole(v, 1);
    vmc_close(v);
}

/* Freed by another thread while the filler lives; when it exits, its cache
 * gives the emptied slabs back: the region is whole. */
TEST_THREADED(emptied_while_the_filler_lives_is_whole_when_it_exits)
{
    vmc_t *v = open_64m();
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    worker_t w = {v, {NULL, 0}, &bar};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, fill_thread, &w), 0);
    pthread_barrier_wait(&bar);
    free_all_middle_last(v, &w.f);
    pthread_barrier_wait(&bar);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    pthread_barrier_destroy(&bar);
    assert_whole(v, 1);
    big_alloc_works(v);
    vmc_close(v);
}

/* ---- the message ---------------------------------------------------------------- */

TEST(small_alloc_enospc_names_both_sizes)
{
    vmc_t *v = open_64m();
    vmc_span_t big, s;
    ASSERT_OK(vmc_alloc(v, REGION - 61440, VMC_CODE, &big));
    ASSERT_EQ(vmc_alloc(v, 100, VMC_CODE, &s), -ENOSPC);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_alloc: 100 bytes need a new 65536-byte slab: code region "
                                    "full: asked for 65536 bytes, largest free run is 61440 bytes");
    ASSERT_EQ(vmc_alloc(v, 5000, VMC_RDATA, &s), -ENOSPC);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_alloc: 5000 bytes need a new 65536-byte slab: code region "
                                    "full: asked for 65536 bytes, largest free run is 61440 bytes");
    /* a large one names what was asked, then the size rounded to pages */
    ASSERT_EQ(vmc_alloc(v, 65536, VMC_CODE, &s), -ENOSPC);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_alloc: 65536 bytes: code region full: asked for 65536 bytes, "
                                    "largest free run is 61440 bytes");
    ASSERT_EQ(vmc_alloc(v, 70000, VMC_CODE, &s), -ENOSPC);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_alloc: 70000 bytes: code region full: asked for 73728 bytes, "
                                    "largest free run is 61440 bytes");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    uintptr_t lo = (uintptr_t)in.code_base, hi = lo + 4096;
    ASSERT_EQ(vmc_alloc_reaching(v, 64, VMC_CODE, lo, hi, &s), -ENOSPC);
    char want[512];
    snprintf(want, sizeof want,
             "vmc_alloc_reaching: 64 bytes reaching %#lx..%#lx need a new 65536-byte slab: code "
             "region full: asked for 65536 bytes, largest free run is 61440 bytes",
             (unsigned long)lo, (unsigned long)hi);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_OK(vmc_free(v, big.x));
    ASSERT_OK(vmc_alloc(v, 100, VMC_CODE, &s));
    vmc_close(v);
}

/* Threads allocating, freeing their own and each other's allocations, and
 * asking for more than is free (so reclaims run while the others work);
 * when they are done and gone the region is whole. */
#define CHURN_THREADS 4
#define CHURN_BATCH   512

typedef struct churn {
    vmc_t *v;
    _Atomic(void *) handoff[CHURN_THREADS][CHURN_BATCH];  /* for the next thread to free */
} churn_t;

static churn_t churn_state;

static void *churn_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    churn_t *c = &churn_state;
    void *mine[CHURN_BATCH];
    uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < CHURN_BATCH; i++) {
            vmc_span_t s;
            size_t sz = mix_size((int)(vt_xorshift(&rng) % 4), (size_t)i);
            int e = vmc_alloc(c->v, sz, i % 3 ? VMC_CODE : VMC_RDATA, &s);
            mine[i] = e ? NULL : s.x;
            if (e) ASSERT_EQ(e, -ENOSPC);
        }
        /* every other one is freed by the next thread (a remote free) */
        int next = (id + 1) % CHURN_THREADS;
        for (int i = 0; i < CHURN_BATCH; i++) {
            void *theirs = atomic_exchange(&c->handoff[id][i], NULL);
            if (theirs) ASSERT_OK(vmc_free(c->v, theirs));
            if (i % 2 && mine[i]) {
                void *old = atomic_exchange(&c->handoff[next][i], mine[i]);
                if (old) ASSERT_OK(vmc_free(c->v, old));
            } else if (mine[i]) {
                ASSERT_OK(vmc_free(c->v, mine[i]));
            }
        }
        vmc_span_t big;
        int e = vmc_alloc(c->v, 40 << 20, VMC_CODE, &big);
        if (e) ASSERT_EQ(e, -ENOSPC);
        else ASSERT_OK(vmc_free(c->v, big.x));
    }
    return NULL;
}

TEST_THREADED(churning_threads_leave_the_region_whole)
{
    vmc_t *v = open_64m();
    churn_state.v = v;
    pthread_t t[CHURN_THREADS];
    for (int i = 0; i < CHURN_THREADS; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, churn_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < CHURN_THREADS; i++) ASSERT_EQ(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < CHURN_THREADS; i++)
        for (int j = 0; j < CHURN_BATCH; j++) {
            void *p = atomic_exchange(&churn_state.handoff[i][j], NULL);
            if (p) ASSERT_OK(vmc_free(v, p));
        }
    /* the frees just made went into exited threads' (idle) caches: the
     * first request that needs the space gets it back */
    big_alloc_works(v);
    assert_whole(v, 1);
    vmc_close(v);
}
