/* Thread-local storage in private libraries: every dialect (general and
 * local dynamic, descriptors, initial-exec of the host's variables), values
 * per thread for threads made before and after the load, blocks freed at
 * thread exit and at unload, the host's own variables (errno), system
 * libraries that use TLS, and the failure of each allocation. */
#include "test.h"
#include "vmcode.h"
#include "lib/tls.h"
#include "lib/phdr.h"
#include "os/os.h"

#include <link.h>

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

/* The test program's own TLS variable, which the host-TLS libraries name
 * (exported: the test program is linked -rdynamic). */
__thread int vt_host_tls = 17;

static void *sym(vmc_lib_t *l, const char *name)
{
    void *p = vmc_lib_sym(l, name);
    ASSERT_MSG(p, "%s: %s", name, vmc_last_error());
    return p;
}

/* ---- the variables of t_tls.c, in one library ------------------------------- */

typedef struct tls_api {
    int *(*int_addr)(void);
    int (*get)(void);
    int (*bump)(void);
    int (*local_bump)(void);
    int (*pair_a)(void);
    const char *(*pair_s)(void);
    char *(*big_addr)(void);
    int (*big_dirty)(void);
    int (*ptr_ok)(void);
} tls_api_t;

static tls_api_t api_of(vmc_lib_t *l)
{
    tls_api_t a;
    *(void **)&a.int_addr = sym(l, "t_tls_int_addr");
    *(void **)&a.get = sym(l, "t_tls_get");
    *(void **)&a.bump = sym(l, "t_tls_bump");
    *(void **)&a.local_bump = sym(l, "t_tls_local_bump");
    *(void **)&a.pair_a = sym(l, "t_tls_pair_a");
    *(void **)&a.pair_s = sym(l, "t_tls_pair_s");
    *(void **)&a.big_addr = sym(l, "t_tls_big_addr");
    *(void **)&a.big_dirty = sym(l, "t_tls_big_dirty");
    *(void **)&a.ptr_ok = sym(l, "t_tls_ptr_ok");
    return a;
}

/* What a thread that has not touched the library yet must see, then `n`
 * increments of its own; returns 0 or a line number that failed. */
static int fresh_thread_checks(const tls_api_t *a, int n)
{
    if (a->get() != 5) return __LINE__;
    if (a->pair_a() != 7 || strcmp(a->pair_s(), "hello")) return __LINE__;
    if ((uintptr_t)a->big_addr() % 64) return __LINE__;
    if (a->big_dirty()) return __LINE__;
    if (!a->ptr_ok()) return __LINE__;
    for (int i = 1; i <= n; i++) {
        if (a->bump() != 5 + i) return __LINE__;
        if (a->local_bump() != i) return __LINE__;
        sched_yield();
    }
    if (*a->int_addr() != 5 + n) return __LINE__;
    memset(a->big_addr(), 1, 32);
    if (a->big_dirty() != 32) return __LINE__;
    return 0;
}

typedef struct worker {
    pthread_t th;
    const tls_api_t *api;
    pthread_barrier_t *start;    /* NULL: go at once                         */
    pthread_barrier_t *done;     /* every worker's block lives until all checked */
    int n;
    int fail;                    /* a failing line, or 0                     */
    int *addr;
    intptr_t tpoff;              /* addr less the thread pointer             */
} worker_t;

static void *worker_main(void *p)
{
    worker_t *w = p;
    if (w->start) pthread_barrier_wait(w->start);
    w->fail = fresh_thread_checks(w->api, w->n);
    w->addr = w->api->int_addr();
    w->tpoff = (intptr_t)((uintptr_t)w->addr - vmc__tls_tp());
    pthread_barrier_wait(w->done);
    return NULL;
}

/* Threads made before the load (waiting on a barrier the load opens) and
 * after it, each with its own copies; the main thread too.  With
 * `in_static`, the block is in glibc's static TLS: at the same offset from
 * the thread pointer in every thread. */
static void check_dialect(const char *name, int in_static)
{
    enum { BEFORE = 4, AFTER = 4 };
    vmc_t *v = vt_open("-vmheap_size 64M");
    worker_t w[BEFORE + AFTER];
    tls_api_t a;
    pthread_barrier_t start, done;
    pthread_barrier_init(&start, NULL, BEFORE + 1);
    pthread_barrier_init(&done, NULL, BEFORE + AFTER + 1);
    memset(w, 0, sizeof w);
    for (int i = 0; i < BEFORE; i++) {
        w[i] = (worker_t){.api = &a, .start = &start, .done = &done, .n = 50 + i};
        ASSERT_EQ(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
    }
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib(name), 0, &l));
    a = api_of(l);
    pthread_barrier_wait(&start);
    for (int i = BEFORE; i < BEFORE + AFTER; i++) {
        w[i] = (worker_t){.api = &a, .done = &done, .n = 50 + i};
        ASSERT_EQ(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
    }
    ASSERT_EQ(fresh_thread_checks(&a, 10), 0);
    pthread_barrier_wait(&done);
    for (int i = 0; i < BEFORE + AFTER; i++) {
        pthread_join(w[i].th, NULL);
        ASSERT_MSG(w[i].fail == 0, "thread %d: check at line %d failed", i, w[i].fail);
        ASSERT(!vt_in_code_region(v, w[i].addr));  /* blocks are not in the code region */
        for (int j = 0; j < i; j++) ASSERT(w[i].addr != w[j].addr);
        intptr_t mine = (intptr_t)((uintptr_t)a.int_addr() - vmc__tls_tp());
        if (in_static) ASSERT_EQ(w[i].tpoff, mine);
    }
    ASSERT_EQ(a.get(), 15);  /* the main thread's copy, untouched by the others */
    ASSERT(!vt_in_code_region(v, a.int_addr()));
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&done);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST_THREADED(tls_general_dynamic_per_thread) { check_dialect("libt_tls.so", 0); }

TEST_THREADED(tls_descriptors_per_thread) { check_dialect("libt_tls_desc.so", 0); }

TEST_THREADED(tls_descriptors_small_block_in_static_tls) { check_dialect("libt_tls_desc_small.so", 1); }

TEST_THREADED(tls_initial_exec_per_thread) { check_dialect("libt_tls_ie.so", 1); }

/* An initial-exec block that does not fit in glibc's static TLS surplus is
 * refused, naming the size and the tunable; with the tunable set at process
 * start (the CLI in a child), it loads. */
TEST(tls_initial_exec_too_large_for_static_tls)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    const char *path = vt_tlib("libt_tls_iebig.so");
    ASSERT_EQ(vmc_lib_load(v, path, 0, &l), -ENOTSUP);
    char want[700];
    snprintf(want, sizeof want, "%s: initial-exec TLS: its 8260-byte block (alignment 64) does not fit in the C "
             "library's static TLS surplus; start the process with GLIBC_TUNABLES=glibc.rtld.optional_static_tls="
             "BYTES to enlarge it", path);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_EQ(vmc__tls_live_blocks(), 0);
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 0);
    vmc_close(v);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 %s/vmcode load %s "
             "--sym t_tls_get >/dev/null 2>&1", vt_build_dir(), path);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/vmcode load %s >/dev/null 2>&1", vt_build_dir(), path);
    ASSERT_NE(system(cmd), 0);
}

/* ---- descriptors preserve the caller's registers ----------------------------- */

typedef struct probe {
    long (*fn)(const void *, void *);
    int *(*addr)(void);
    uint8_t in[2176], out[2176];
    long off;
    int *var, value, tp_ok;
} probe_t;

static void *probe_main(void *p)
{
    probe_t *q = p;
    q->off = q->fn(q->in, q->out);  /* this thread's first access: the slow path */
    q->var = q->addr();
    q->value = *q->var;
    q->tp_ok = (uintptr_t)q->off + vmc__tls_tp() == (uintptr_t)q->var;
    return NULL;
}

TEST_THREADED(tls_descriptor_first_access_keeps_vector_registers)
{
    if (!__builtin_cpu_supports("avx")) SKIP("no AVX");
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tlsdesc_probe.so"), 0, &l));
    static probe_t q;
    *(void **)&q.fn = sym(l, "t_tlsdesc_probe");
    *(void **)&q.addr = sym(l, "t_probe_var_addr");
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < sizeof q.in; i += 8) {
        uint64_t x = vt_xorshift(&seed);
        memcpy(q.in + i, &x, 8);
    }
    for (int round = 0; round < 2; round++) {  /* first access, then the fast path */
        pthread_t th;
        memset(q.out, 0, sizeof q.out);
        ASSERT_EQ(pthread_create(&th, NULL, probe_main, &q), 0);
        pthread_join(th, NULL);
        for (int r = 0; r < 16; r++)
            ASSERT_MSG(!memcmp(q.in + 32 * r, q.out + 32 * r, 32), "ymm%d changed across the descriptor call", r);
        static const char *const gpr[] = {"rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"};
        for (int r = 0; r < 8; r++)
            ASSERT_MSG(!memcmp(q.in + 512 + 8 * r, q.out + 512 + 8 * r, 8), "%s changed across the descriptor call",
                       gpr[r]);
        ASSERT_EQ(q.value, 1234);
        ASSERT(q.tp_ok);  /* the offset is the variable's address less the thread pointer */
    }
    long off = q.fn(q.in, q.out);
    ASSERT_EQ((uintptr_t)off + vmc__tls_tp(), (uintptr_t)q.addr());
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* The same with AVX-512: zmm0-31 and k0-7 survive a thread's first
 * descriptor call (whose memcpy and memset are the C library's EVEX
 * variants, which use ymm16-31). */
TEST_THREADED(tls_descriptor_first_access_keeps_avx512_registers)
{
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) SKIP("no AVX-512");
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tlsdesc_probe.so"), 0, &l));
    static probe_t q;
    *(void **)&q.fn = sym(l, "t_tlsdesc_probe512");
    *(void **)&q.addr = sym(l, "t_probe_var_addr");
    uint64_t seed = 0x2545f4914f6cdd1du;
    for (size_t i = 0; i < sizeof q.in; i += 8) {
        uint64_t x = vt_xorshift(&seed);
        memcpy(q.in + i, &x, 8);
    }
    for (int round = 0; round < 2; round++) {  /* first access, then the fast path */
        pthread_t th;
        memset(q.out, 0, sizeof q.out);
        ASSERT_EQ(pthread_create(&th, NULL, probe_main, &q), 0);
        pthread_join(th, NULL);
        for (int r = 0; r < 32; r++)
            ASSERT_MSG(!memcmp(q.in + 64 * r, q.out + 64 * r, 64), "zmm%d changed across the descriptor call", r);
        for (int r = 0; r < 8; r++)
            ASSERT_MSG(!memcmp(q.in + 2048 + 8 * r, q.out + 2048 + 8 * r, 8), "k%d changed across the descriptor "
                       "call", r);
        static const char *const gpr[] = {"rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"};
        for (int r = 0; r < 8; r++)
            ASSERT_MSG(!memcmp(q.in + 2112 + 8 * r, q.out + 2112 + 8 * r, 8), "%s changed across the descriptor "
                       "call", gpr[r]);
        ASSERT_EQ(q.value, 1234);
        ASSERT(q.tp_ok);
    }
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* ---- the host's variables ---------------------------------------------------- */

typedef struct host_api {
    int *(*errno_addr)(void);
    void (*set_errno)(int);
    int *(*var_addr)(void);
    int (*var_bump)(void);
    int fail;
} host_api_t;

static int host_checks(host_api_t *h)
{
    if (h->errno_addr() != &errno) return __LINE__;
    h->set_errno(1234);
    if (errno != 1234) return __LINE__;
    errno = 0;
    if (h->var_addr() != &vt_host_tls) return __LINE__;
    int before = vt_host_tls;
    if (h->var_bump() != before + 1 || vt_host_tls != before + 1) return __LINE__;
    return 0;
}

static void *host_main(void *p)
{
    host_api_t *h = p;
    h->fail = host_checks(h);
    return NULL;
}

static void check_host(const char *name)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib(name), 0, &l));
    host_api_t h;
    *(void **)&h.errno_addr = sym(l, "t_tlshost_errno_addr");
    *(void **)&h.set_errno = sym(l, "t_tlshost_set_errno");
    *(void **)&h.var_addr = sym(l, "t_tlshost_var_addr");
    *(void **)&h.var_bump = sym(l, "t_tlshost_var_bump");
    ASSERT_EQ(host_checks(&h), 0);
    for (int i = 0; i < 3; i++) {
        pthread_t th;
        host_api_t t = h;
        ASSERT_EQ(pthread_create(&th, NULL, host_main, &t), 0);
        pthread_join(th, NULL);
        ASSERT_MSG(t.fail == 0, "thread %d: check at line %d failed", i, t.fail);
    }
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST_THREADED(tls_host_variables_general_dynamic) { check_host("libt_tlshost.so"); }
TEST_THREADED(tls_host_variables_descriptors) { check_host("libt_tlshost_desc.so"); }
TEST_THREADED(tls_host_variables_initial_exec) { check_host("libt_tlshost_ie.so"); }

/* A host library in dynamic TLS (opened with dlopen): by GD and TLSDESC the
 * plug-in sees the host's copy in every thread; by initial-exec it cannot. */
typedef struct dyn_api {
    int *(*host)(void);
    int *(*plug)(void);
    int fail;
} dyn_api_t;

static void *dyn_main(void *p)
{
    dyn_api_t *d = p;
    int *h = d->host(), *q = d->plug();
    d->fail = h != q ? __LINE__ : *q != 99 ? __LINE__ : 0;
    return NULL;
}

TEST_THREADED(tls_host_dynamic_module)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    void *h = dlopen(vt_tlib("libt_tlsvar.so"), RTLD_NOW | RTLD_GLOBAL);
    ASSERT_MSG(h, "%s", dlerror());
    static const char *const libs[] = {"libt_tlsdyn.so", "libt_tlsdyn_desc.so"};
    for (int k = 0; k < 2; k++) {
        vmc_lib_t *l;
        ASSERT_OK(vmc_lib_load(v, vt_tlib(libs[k]), 0, &l));
        dyn_api_t d;
        *(void **)&d.host = dlsym(h, "t_tlsvar_addr");
        *(void **)&d.plug = sym(l, "t_tlsdyn_addr");
        ASSERT(d.host);
        ASSERT(d.host() == d.plug());
        for (int i = 0; i < 3; i++) {
            pthread_t th;
            dyn_api_t t = d;
            ASSERT_EQ(pthread_create(&th, NULL, dyn_main, &t), 0);
            pthread_join(th, NULL);
            ASSERT_MSG(t.fail == 0, "%s, thread %d: check at line %d failed", libs[k], i, t.fail);
        }
        ASSERT_OK(vmc_lib_unload(l));
    }
    vmc_lib_t *l;
    ASSERT_EQ(vmc_lib_load(v, vt_tlib("libt_tlsdyn_ie.so"), 0, &l), -ENOTSUP);
    ASSERT_STR_CONTAINS(vmc_last_error(), "R_X86_64_TPOFF64: initial-exec access to a host variable whose module "
                                          "is not in static TLS is not supported");
    dlclose(h);
    vmc_close(v);
}

/* ---- several modules ------------------------------------------------------- */

TEST_THREADED(tls_two_private_libraries_and_a_private_dependency)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *gd, *desc, *use;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls_desc.so"), 0, &desc));
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tlsuse.so"), 0, &use));
    vmc_lib_dep_t dep;
    ASSERT_OK(vmc_lib_dep(use, 0, &dep));
    ASSERT_STR_EQ(dep.name, "libt_tls.so");
    ASSERT_EQ(dep.how, VMC_DEP_LOADED_PRIVATELY);
    gd = dep.lib;
    tls_api_t a = api_of(gd), b = api_of(desc);
    int *(*use_addr)(void) = (int *(*)(void))sym(use, "t_tlsuse_addr");
    int (*use_bump)(void) = (int (*)(void))sym(use, "t_tlsuse_bump");
    ASSERT(use_addr() == a.int_addr());
    ASSERT(a.int_addr() != b.int_addr());
    ASSERT_EQ(use_bump(), 6);
    ASSERT_EQ(a.get(), 6);
    ASSERT_EQ(b.get(), 5);
    ASSERT_EQ(b.bump(), 6);
    ASSERT_EQ(b.bump(), 7);
    ASSERT_EQ(a.get(), 6);
    ASSERT_OK(vmc_lib_unload(use));
    ASSERT_OK(vmc_lib_unload(desc));
    ASSERT_EQ(vmc__tls_live_blocks(), 0);
    vmc_close(v);
}

/* ---- initial-exec access to another private library's variables ----------- */

typedef struct ie_api {
    int *(*use_addr)(void);
    int *(*def_addr)(void);
    int (*use_bump)(void);
} ie_api_t;

typedef struct ie_probe {
    const ie_api_t *api;         /* filled before the barrier opens         */
    pthread_barrier_t *start;
    int same, first, second;     /* the thread's results                    */
    intptr_t tpoff;
} ie_probe_t;

static void *ie_main(void *p)
{
    ie_probe_t *q = p;
    if (q->start) pthread_barrier_wait(q->start);
    const ie_api_t *a = q->api;
    q->same = a->use_addr() == a->def_addr();
    q->first = a->use_bump();   /* this thread's own copy, from the image */
    q->second = a->use_bump();
    q->tpoff = (intptr_t)((uintptr_t)a->use_addr() - vmc__tls_tp());
    return NULL;
}

/* A library read by initial-exec from its private dependency, whose own
 * accesses are general dynamic: the dependency's module gets a block in
 * static TLS at the load (before anything of it ran), at one offset from
 * the thread pointer in every thread, threads made before the load
 * included; both libraries see one variable.  Again and again (the room
 * comes back at each unload). */
TEST_THREADED(tls_initial_exec_into_a_private_dependency)
{
    enum { BEFORE = 3 };
    vmc_t *v = vt_open("-vmheap_size 64M");
    for (int round = 0; round < 100; round++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, BEFORE + 1);
        ie_probe_t q[BEFORE + 1];
        memset(q, 0, sizeof q);
        pthread_t th[BEFORE + 1];
        int threads = round % 25 ? 0 : BEFORE;  /* a few rounds with threads */
        ie_api_t api;
        for (int i = 0; i < threads; i++) {
            q[i].api = &api;
            q[i].start = &start;
            ASSERT_EQ(pthread_create(&th[i], NULL, ie_main, &q[i]), 0);
        }
        vmc_lib_t *use;
        ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tlsuse_ie.so"), 0, &use));
        vmc_lib_dep_t dep;
        ASSERT_OK(vmc_lib_dep(use, 0, &dep));
        ASSERT_STR_EQ(dep.name, "libt_tls_small.so");
        ASSERT_EQ(dep.how, VMC_DEP_LOADED_PRIVATELY);
        tls_api_t a = api_of(dep.lib);
        *(void **)&api.use_addr = sym(use, "t_tlsuse_addr");
        *(void **)&api.use_bump = sym(use, "t_tlsuse_bump");
        api.def_addr = a.int_addr;
        if (threads) pthread_barrier_wait(&start);
        ASSERT(api.use_addr() == a.int_addr());
        ASSERT(api.use_addr() == vmc_lib_sym(dep.lib, "t_tls_int"));
        ASSERT_EQ(a.get(), 5);
        ASSERT_EQ(api.use_bump(), 6);
        ASSERT_EQ(a.bump(), 7);
        intptr_t tpoff = (intptr_t)((uintptr_t)api.use_addr() - vmc__tls_tp());
        q[BEFORE].api = &api;
        ASSERT_EQ(pthread_create(&th[BEFORE], NULL, ie_main, &q[BEFORE]), 0);  /* after the load */
        ASSERT_EQ(pthread_join(th[BEFORE], NULL), 0);
        for (int i = 0; i < threads; i++) ASSERT_EQ(pthread_join(th[i], NULL), 0);
        for (int i = 0; i <= BEFORE; i++) {
            if (i < BEFORE && i >= threads) continue;
            ASSERT_MSG(q[i].same, "thread %d: the two libraries see different variables", i);
            ASSERT_EQ(q[i].first, 6);
            ASSERT_EQ(q[i].second, 7);
            ASSERT_EQ(q[i].tpoff, tpoff);
        }
        ASSERT_EQ(a.get(), 7);  /* the main thread's copy, untouched */
        ASSERT_EQ(vmc__tls_live_blocks(), 0);  /* no block of its own: glibc's, in static TLS */
        pthread_barrier_destroy(&start);
        ASSERT_OK(vmc_lib_unload(use));
    }
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 0);
    vmc_close(v);
}

/* The same through a library that has no DT_NEEDED for the definer (it
 * binds to whichever private library defines the variable): its module
 * moves to static TLS if no thread has used it yet; once one has, the
 * copies cannot move, and the load is refused naming why (glibc refuses
 * the same).  A block too large for the surplus is refused with its size
 * and the tunable. */
TEST(tls_initial_exec_into_another_private_library)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *def, *use;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls_small.so"), 0, &def));
    tls_api_t a = api_of(def);
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tlsuse_ie_nodep.so"), 0, &use));
    int *(*use_addr)(void) = (int *(*)(void))sym(use, "t_tlsuse_addr");
    ASSERT(use_addr() == a.int_addr());
    ASSERT_EQ(a.bump(), 6);
    ASSERT_EQ(*use_addr(), 6);
    ASSERT_EQ(vmc__tls_live_blocks(), 0);
    ASSERT_OK(vmc_lib_unload(use));
    ASSERT_OK(vmc_lib_unload(def));

    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls_small.so"), 0, &def));
    a = api_of(def);
    ASSERT_EQ(a.bump(), 6);  /* this thread has its copy now */
    ASSERT_EQ(vmc_lib_load(v, vt_tlib("libt_tlsuse_ie_nodep.so"), 0, &use), -ENOTSUP);
    char want[1024];
    snprintf(want, sizeof want, "%s: DT_RELA entry ", vt_tlib("libt_tlsuse_ie_nodep.so"));
    ASSERT_STR_CONTAINS(vmc_last_error(), want);
    snprintf(want, sizeof want, ": R_X86_64_TPOFF64: initial-exec access to a variable of %s, whose block is not "
             "in static TLS and which threads have used already (their copies cannot move), is not supported",
             vt_tlib("libt_tls_small.so"));
    ASSERT_STR_CONTAINS(vmc_last_error(), want);
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 1);
    ASSERT_EQ(a.bump(), 7);  /* untouched */
    ASSERT_EQ(vmc__tls_live_blocks(), 1);
    ASSERT_OK(vmc_lib_unload(def));

    ASSERT_EQ(vmc_lib_load(v, vt_tlib("libt_tlsuse_iebig.so"), 0, &use), -ENOTSUP);
    snprintf(want, sizeof want, ": R_X86_64_TPOFF64: initial-exec access to a variable of %s: %s: initial-exec "
             "TLS: its 8260-byte block (alignment 64) does not fit in the C library's static TLS surplus; start "
             "the process with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=BYTES to enlarge it",
             vt_tlib("libt_tls.so"), vt_tlib("libt_tls.so"));
    ASSERT_STR_CONTAINS(vmc_last_error(), want);
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 0);
    ASSERT_EQ(vmc__tls_live_blocks(), 0);
    vmc_close(v);
}

/* The static TLS object for the definer cannot be made: the user's load
 * is refused with the OS error and leaves nothing; then it loads. */
TEST(tls_fault_moving_a_dependency_to_static_tls)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *use;
    vmc__os_fault(VMC_OS_MEMFD_CREATE, 1, EMFILE, 0);
    ASSERT_EQ(vmc_lib_load(v, vt_tlib("libt_tlsuse_ie.so"), 0, &use), -EMFILE);
    vmc__os_fault_clear();
    char want[1024];
    snprintf(want, sizeof want, ": R_X86_64_TPOFF64: initial-exec access to a variable of %s: %s: static TLS "
             "object: memfd_create: ", vt_tlib("libt_tls_small.so"), vt_tlib("libt_tls_small.so"));
    ASSERT_STR_CONTAINS(vmc_last_error(), want);
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 0);
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tlsuse_ie.so"), 0, &use));
    ASSERT_EQ(((int (*)(void))sym(use, "t_tlsuse_bump"))(), 6);
    ASSERT_OK(vmc_lib_unload(use));
    vmc_close(v);
}

/* ---- lifetimes ----------------------------------------------------------------- */

static void *short_main(void *p)
{
    const tls_api_t *a = p;
    return (void *)(intptr_t)(a->bump() == 6 && a->local_bump() == 1);
}

TEST_THREADED(tls_blocks_freed_at_thread_exit)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls.so"), 0, &l));
    tls_api_t a = api_of(l);
    ASSERT_EQ(a.get(), 5);
    size_t base = vmc__tls_live_blocks();
    ASSERT_EQ(base, 1);
    size_t rss0 = 0;
    int n = vt_sanitized() ? 2000 : 10000;
    for (int i = 0; i < n; i++) {
        pthread_t th;
        void *ok;
        ASSERT_EQ(pthread_create(&th, NULL, short_main, &a), 0);
        pthread_join(th, &ok);
        ASSERT_MSG(ok, "thread %d saw another thread's values", i);
        if (i == 999) rss0 = vt_rss_kib();
    }
    ASSERT_EQ(vmc__tls_live_blocks(), base);
    /* no growth after the first thousand (slack for the allocator's own caches) */
    if (!vt_sanitized()) ASSERT_LT(vt_rss_kib(), rss0 + 2048);  /* (ASan keeps freed memory a while) */
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT_EQ(vmc__tls_live_blocks(), 0);
    vmc_close(v);
}

typedef struct runner {
    pthread_t th;
    tls_api_t *api;
    pthread_barrier_t *used, *unloaded, *reloaded;
    int fail;
} runner_t;

static void *runner_main(void *p)
{
    runner_t *r = p;
    r->fail = fresh_thread_checks(r->api, 3);
    pthread_barrier_wait(r->used);       /* the library is unloaded now ... */
    pthread_barrier_wait(r->unloaded);   /* ... and loaded again */
    pthread_barrier_wait(r->reloaded);
    if (!r->fail) r->fail = fresh_thread_checks(r->api, 2);  /* a fresh block, not the old one */
    return NULL;
}

TEST_THREADED(tls_unload_while_threads_run)
{
    enum { N = 6 };
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls.so"), 0, &l));
    static tls_api_t a;
    a = api_of(l);
    pthread_barrier_t used, unloaded, reloaded;
    pthread_barrier_init(&used, NULL, N + 1);
    pthread_barrier_init(&unloaded, NULL, N + 1);
    pthread_barrier_init(&reloaded, NULL, N + 1);
    runner_t r[N];
    for (int i = 0; i < N; i++) {
        r[i] = (runner_t){.api = &a, .used = &used, .unloaded = &unloaded, .reloaded = &reloaded};
        ASSERT_EQ(pthread_create(&r[i].th, NULL, runner_main, &r[i]), 0);
    }
    pthread_barrier_wait(&used);
    ASSERT_EQ(vmc__tls_live_blocks(), N);
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT_EQ(vmc__tls_live_blocks(), 0);  /* every thread's block, while they live */
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls.so"), 0, &l));
    a = api_of(l);
    pthread_barrier_wait(&unloaded);
    pthread_barrier_wait(&reloaded);
    for (int i = 0; i < N; i++) {
        pthread_join(r[i].th, NULL);
        ASSERT_MSG(r[i].fail == 0, "thread %d: check at line %d failed", i, r[i].fail);
    }
    ASSERT_EQ(vmc__tls_live_blocks(), 0);  /* they exited */
    ASSERT_OK(vmc_lib_unload(l));
    pthread_barrier_destroy(&used);
    pthread_barrier_destroy(&unloaded);
    pthread_barrier_destroy(&reloaded);
    vmc_close(v);
}

TEST(tls_load_unload_1000_times)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    size_t rss0 = 0;
    for (int i = 0; i < 1000; i++) {
        static const char *const libs[] = {"libt_tls.so", "libt_tls_desc.so", "libt_tls_ie.so",
                                           "libt_tls_desc_small.so"};
        ASSERT_OK(vmc_lib_load(v, vt_tlib(libs[i % 4]), 0, &l));
        tls_api_t a = api_of(l);
        ASSERT_EQ(a.bump(), 6);
        ASSERT_EQ(a.local_bump(), 1);
        ASSERT_EQ(vmc__tls_live_blocks(), i % 4 < 2);  /* static TLS blocks are glibc's */
        ASSERT_OK(vmc_lib_unload(l));
        ASSERT_EQ(vmc__tls_live_blocks(), 0);
        if (i == 99) rss0 = vt_rss_kib();
    }
    if (!vt_sanitized()) ASSERT_LT(vt_rss_kib(), rss0 + 1024);  /* (ASan keeps freed memory a while) */
    vmc_close(v);
}

/* ---- allocation failures ------------------------------------------------------ */

/* A load whose module allocation fails is refused with -ENOMEM and leaves
 * nothing; every allocation of a load, in turn. */
TEST(tls_fault_during_load)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    int failed = 0;
    for (unsigned long nth = 1; nth < 10; nth++) {
        vmc__tls_fault(nth);
        int r = vmc_lib_load(v, vt_tlib("libt_tls.so"), 0, &l);
        vmc__tls_fault(0);
        if (r == 0) {
            ASSERT_OK(vmc_lib_unload(l));
            continue;
        }
        failed++;
        ASSERT_EQ(r, -ENOMEM);
        ASSERT_STR_CONTAINS(vmc_last_error(), "libt_tls.so: out of memory for its thread-local storage module");
        vmc_stats_t st;
        ASSERT_OK(vmc_stats(v, &st));
        ASSERT_EQ(st.libraries, 0);
    }
    ASSERT_GT(failed, 0);
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls.so"), 0, &l));
    ASSERT_EQ(api_of(l).get(), 5);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* The static TLS object's memory file cannot be made or written: an
 * initial-exec library is refused with the OS error; one whose descriptors
 * only would have used static TLS loads with dynamic blocks. */
TEST(tls_fault_making_the_static_tls_object)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    static const enum vmc_os_call calls[] = {VMC_OS_MEMFD_CREATE, VMC_OS_PWRITE};
    static const char *const what[] = {"static TLS object: memfd_create: ", "static TLS object: write: "};
    for (int k = 0; k < 2; k++) {
        vmc__os_fault(calls[k], 1, EMFILE, 0);
        ASSERT_EQ(vmc_lib_load(v, vt_tlib("libt_tls_ie.so"), 0, &l), -EMFILE);
        vmc__os_fault_clear();
        ASSERT_STR_CONTAINS(vmc_last_error(), what[k]);
        vmc_stats_t st;
        ASSERT_OK(vmc_stats(v, &st));
        ASSERT_EQ(st.libraries, 0);
        vmc__os_fault(calls[k], 1, EMFILE, 0);
        ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls_desc_small.so"), 0, &l));
        vmc__os_fault_clear();
        ASSERT_EQ(api_of(l).bump(), 6);
        ASSERT_EQ(vmc__tls_live_blocks(), 1);  /* a dynamic block */
        ASSERT_OK(vmc_lib_unload(l));
    }
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls_ie.so"), 0, &l));
    ASSERT_EQ(api_of(l).bump(), 6);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* An allocation that fails at a thread's first access has no error path
 * (the code dereferences the answer): the process stops with a message
 * naming the library, as glibc does.  Each allocation of a first access in
 * a fresh thread, in turn, in a child. */
static void *first_access(void *p)
{
    const tls_api_t *a = p;
    return (void *)(intptr_t)a->get();
}

TEST_THREADED(tls_fault_at_first_access_stops_with_a_message)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls.so"), 0, &l));
    tls_api_t a = api_of(l);
    int aborted = 0;
    for (unsigned long nth = 1; nth <= 4; nth++) {
        int fds[2];
        ASSERT_EQ(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            dup2(fds[1], 2);
            vmc__tls_fault(nth);
            pthread_t th;
            void *got;
            if (pthread_create(&th, NULL, first_access, &a)) _exit(3);
            pthread_join(th, &got);
            _exit((intptr_t)got == 5 ? 0 : 4);
        }
        close(fds[1]);
        char buf[512] = {0};
        size_t n = 0;
        ssize_t k;
        while (n < sizeof buf - 1 && (k = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)k;
        close(fds[0]);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st)) {
            ASSERT_EQ(WEXITSTATUS(st), 0);  /* past the last allocation: it worked */
            continue;
        }
        ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
        ASSERT_STR_CONTAINS(buf, "libt_tls.so: cannot allocate memory for thread-local data");
        aborted++;
    }
    ASSERT_GE(aborted, 2);  /* the thread's table and the block */
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* ---- system libraries ------------------------------------------------------ */

static const char *syslib(const char *name)
{
    static const char *const dirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64"};
    static char path[512];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        if (access(path, R_OK) == 0) return path;
    }
    return NULL;
}

typedef struct json_api {
    void *(*parse)(const char *);
    const char *(*print)(void *, int);
    int (*put)(void *);
    int fail;
} json_api_t;

static void *json_main(void *p)
{
    json_api_t *j = p;
    for (int i = 0; i < 200 && !j->fail; i++) {
        char in[128], want[128];
        snprintf(in, sizeof in, "{ \"n\": %d, \"a\": [ 1, 2.5, \"x\" ], \"t\": true }", i);
        snprintf(want, sizeof want, "{\"n\":%d,\"a\":[1,2.5,\"x\"],\"t\":true}", i);
        void *o = j->parse(in);
        if (!o || strcmp(j->print(o, 0), want)) j->fail = __LINE__;
        if (o) j->put(o);
    }
    return NULL;
}

TEST_THREADED(tls_system_json_c_from_two_threads)
{
    const char *p = syslib("libjson-c.so.5");
    if (!p) SKIP("libjson-c.so.5 is not installed (make test-deps installs it)");
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, p, 0, &l));
    json_api_t j = {0};
    *(void **)&j.parse = sym(l, "json_tokener_parse");
    *(void **)&j.print = sym(l, "json_object_to_json_string_ext");
    *(void **)&j.put = sym(l, "json_object_put");
    json_api_t t[2] = {j, j};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) ASSERT_EQ(pthread_create(&th[i], NULL, json_main, &t[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        ASSERT_MSG(t[i].fail == 0, "thread %d: line %d", i, t[i].fail);
    }
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* mpfr_t as mpfr.h lays it out */
typedef struct { long prec; int sign; long exp; void *d; } vt_mpfr_t;

typedef struct mpfr_api {
    void (*init2)(vt_mpfr_t *, long);
    int (*const_pi)(vt_mpfr_t *, int);
    char *(*get_str)(char *, long *, int, size_t, const vt_mpfr_t *, int);
    void (*free_str)(char *);
    void (*clear)(vt_mpfr_t *);
} mpfr_api_t;

static void mpfr_api(mpfr_api_t *m, void *(*look)(void *, const char *), void *h)
{
    *(void **)&m->init2 = look(h, "mpfr_init2");
    *(void **)&m->const_pi = look(h, "mpfr_const_pi");
    *(void **)&m->get_str = look(h, "mpfr_get_str");
    *(void **)&m->free_str = look(h, "mpfr_free_str");
    *(void **)&m->clear = look(h, "mpfr_clear");
    ASSERT(m->init2 && m->const_pi && m->get_str && m->free_str && m->clear);
}

static void *vmc_look(void *h, const char *name) { return vmc_lib_sym(h, name); }

static void pi_digits(const mpfr_api_t *m, char *out, size_t len)
{
    vt_mpfr_t x;
    long e;
    m->init2(&x, 1000);
    m->const_pi(&x, 0);  /* MPFR_RNDN; the constant's cache is thread-local */
    char *s = m->get_str(NULL, &e, 10, 250, &x, 0);
    snprintf(out, len, "%s e%ld", s, e);
    m->free_str(s);
    m->clear(&x);
}

typedef struct pi_job {
    const mpfr_api_t *m;
    char out[300];
} pi_job_t;

static void *pi_main(void *p)
{
    pi_job_t *j = p;
    pi_digits(j->m, j->out, sizeof j->out);
    return NULL;
}

TEST_THREADED(tls_system_mpfr_equals_the_host_copy)
{
    const char *p = syslib("libmpfr.so.6");
    if (!p) SKIP("libmpfr.so.6 is not installed (make test-deps installs it)");
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, p, 0, &l));
    mpfr_api_t mine, host;
    mpfr_api(&mine, vmc_look, l);
    void *h = dlopen("libmpfr.so.6", RTLD_NOW | RTLD_LOCAL);
    ASSERT_MSG(h, "%s", dlerror());
    mpfr_api(&host, dlsym, h);
    char a[300], b[300];
    pi_digits(&mine, a, sizeof a);
    pi_digits(&host, b, sizeof b);
    ASSERT_STR_EQ(a, b);
    ASSERT_STR_CONTAINS(a, "31415926535897932384626433832795028841971");
    pi_job_t j = {&mine, ""};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, pi_main, &j), 0);
    pthread_join(th, NULL);
    ASSERT_STR_EQ(j.out, b);
    dlclose(h);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* ---- dl_iterate_phdr as private libraries see it ------------------------ */

typedef struct phdr_find {
    const char *name;
    size_t modid;
    void *data;
    int found;
} phdr_find_t;

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *p)
{
    (void)size;
    phdr_find_t *f = p;
    if (info->dlpi_name && strstr(info->dlpi_name, f->name)) {
        f->modid = info->dlpi_tls_modid;
        f->data = info->dlpi_tls_data;
        f->found = 1;
        return 1;
    }
    return 0;
}

static void *phdr_thread(void *p)
{
    phdr_find_t *f = p;
    vmc__dl_iterate_phdr(phdr_cb, f);
    return NULL;
}

TEST_THREADED(tls_dl_iterate_phdr_reports_the_module)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls.so"), 0, &l));
    tls_api_t a = api_of(l);
    phdr_find_t f = {"libt_tls.so", 0, NULL, 0};
    vmc__dl_iterate_phdr(phdr_cb, &f);
    ASSERT(f.found);
    ASSERT_GE((uint64_t)f.modid, VMC_TLS_MODID_BASE);
    ASSERT(f.data == NULL);  /* this thread has not touched it yet */
    int *x = a.int_addr();
    f.found = 0;
    vmc__dl_iterate_phdr(phdr_cb, &f);
    ASSERT(f.found && f.data != NULL);
    ASSERT((char *)x >= (char *)f.data && (char *)x < (char *)f.data + 16384);
    phdr_find_t g = {"libt_tls.so", 0, NULL, 0};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, phdr_thread, &g), 0);
    pthread_join(th, NULL);
    ASSERT(g.found && g.modid == f.modid && g.data == NULL);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* A destructor of another pthread key, run at thread exit in the same round
 * as vmcode's (after it: a later key), still reads the thread's values. */
static pthread_key_t late_key;
static tls_api_t late_api;
static atomic_int late_seen;

static void late_dtor(void *p)
{
    (void)p;
    atomic_store(&late_seen, late_api.get());
}

static void *late_main(void *p)
{
    (void)p;
    late_api.bump();
    pthread_setspecific(late_key, (void *)1);
    return NULL;
}

TEST_THREADED(tls_values_live_through_other_thread_exit_destructors)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_tls.so"), 0, &l));
    late_api = api_of(l);
    ASSERT_EQ(late_api.get(), 5);  /* vmcode's key exists from here on */
    ASSERT_EQ(pthread_key_create(&late_key, late_dtor), 0);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, late_main, NULL), 0);
    pthread_join(th, NULL);
    ASSERT_EQ(atomic_load(&late_seen), 6);
    ASSERT_EQ(vmc__tls_live_blocks(), 1);  /* the thread's block went after */
    pthread_key_delete(late_key);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}
