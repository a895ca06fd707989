/* Thread-exit destructors registered by private libraries
 * (src/lib/tlsdtor.c): they run at thread exit in the reverse order of
 * registration, the library's unload waits for them, and vmc_close drops
 * the ones not yet run. */
#include "test.h"
#include "lib/tlsdtor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- host side: what the library reports ----------------------------------- */

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static char events[256];

void vt_tl_event(int what);
void vt_tl_event(int what)
{
    pthread_mutex_lock(&ev_lock);
    size_t n = strlen(events);
    snprintf(events + n, sizeof events - n, "%s%d", n ? " " : "", what);
    pthread_mutex_unlock(&ev_lock);
}

static void events_are(const char *want, const char *file, int line)
{
    pthread_mutex_lock(&ev_lock);
    int same = !strcmp(events, want);
    char got[256];
    memcpy(got, events, sizeof got);
    pthread_mutex_unlock(&ev_lock);
    if (!same) vt_fail(file, line, "events \"%s\", expected \"%s\"", got, want);
}
#define EVENTS_ARE(want) events_are(want, __FILE__, __LINE__)

static const char *tldlib(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/tests/libs/libt_tldtor.so", vt_build_dir());
    ASSERT_MSG(access(p, R_OK) == 0, "test library %s is not built", p);
    return p;
}

/* ---- a thread that registers, then waits to be told to exit ----------------- */

typedef struct worker {
    int (*reg)(int);
    int ntags, result;
    pthread_t t;
    pthread_mutex_t m;
    pthread_cond_t c;
    int registered, go;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    w->result = 0;
    for (int i = 1; i <= w->ntags; i++) w->result |= w->reg(i);
    pthread_mutex_lock(&w->m);
    w->registered = 1;
    pthread_cond_broadcast(&w->c);
    while (!w->go) pthread_cond_wait(&w->c, &w->m);
    pthread_mutex_unlock(&w->m);
    return NULL;
}

static void worker_start(worker_t *w, int (*reg)(int), int ntags)
{
    memset(w, 0, sizeof *w);
    w->reg = reg;
    w->ntags = ntags;
    pthread_mutex_init(&w->m, NULL);
    pthread_cond_init(&w->c, NULL);
    ASSERT_EQ(pthread_create(&w->t, NULL, worker_main, w), 0);
    pthread_mutex_lock(&w->m);
    while (!w->registered) pthread_cond_wait(&w->c, &w->m);
    pthread_mutex_unlock(&w->m);
}

static void worker_finish(worker_t *w)
{
    pthread_mutex_lock(&w->m);
    w->go = 1;
    pthread_cond_broadcast(&w->c);
    pthread_mutex_unlock(&w->m);
    ASSERT_EQ(pthread_join(w->t, NULL), 0);
}

static size_t libraries(vmc_t *v)
{
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    return st.libraries;
}

static size_t code_used(vmc_t *v)
{
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    return st.code_used;
}

/* The import binds to vmcode's; the destructors run at thread exit, last
 * registered first, and an unload after that is immediate. */
TEST_THREADED(tlsdtor_run_at_thread_exit_in_reverse_order)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, tldlib(), 0, &l));
    int (*reg)(int) = (int (*)(int))vmc_lib_sym(l, "t_tld_register");
    ASSERT(reg);
    worker_t w;
    worker_start(&w, reg, 3);
    ASSERT_EQ(w.result, 0);
    EVENTS_ARE("");
    worker_finish(&w);
    EVENTS_ARE("103 102 101");
    ASSERT_OK(vmc_lib_unload(l));
    EVENTS_ARE("103 102 101 1");
    ASSERT_EQ(libraries(v), 0);
    vmc_close(v);
}

/* Unloaded while a thread still has destructors of it to run: the unload
 * returns, the library stays (its destructor not run, its range held) until
 * the thread exits; then its destructors run, then the library's, and the
 * range comes back. */
TEST_THREADED(tlsdtor_unload_waits_for_a_live_thread)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    size_t used0 = code_used(v);
    ASSERT_OK(vmc_lib_load(v, tldlib(), 0, &l));
    size_t used1 = code_used(v);
    ASSERT_GT(used1, used0);
    int (*reg)(int) = (int (*)(int))vmc_lib_sym(l, "t_tld_register");
    worker_t w;
    worker_start(&w, reg, 2);
    ASSERT_OK(vmc_lib_unload(l));
    EVENTS_ARE("");
    ASSERT_EQ(libraries(v), 1);
    ASSERT_EQ(code_used(v), used1);
    /* its code is still there, and still named */
    vmc_addr_info_t ai;
    ASSERT_OK(vmc_addr_info(v, (void *)reg, &ai));
    ASSERT(ai.lib == l);
    ASSERT_STR_EQ(ai.sym_name, "t_tld_register");
    /* one more unload is refused: the handle's loads are all matched */
    ASSERT_EQ(vmc_lib_unload(l), -EINVAL);
    worker_finish(&w);
    EVENTS_ARE("102 101 1");
    ASSERT_EQ(libraries(v), 0);
    ASSERT_EQ(code_used(v), used0);
    vmc_close(v);
}

/* A load of the same file while the unload is pending takes it back: the
 * thread's exit then leaves it loaded. */
TEST_THREADED(tlsdtor_load_again_while_pending)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l, *l2;
    ASSERT_OK(vmc_lib_load(v, tldlib(), 0, &l));
    worker_t w;
    worker_start(&w, (int (*)(int))vmc_lib_sym(l, "t_tld_register"), 1);
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT_OK(vmc_lib_load(v, tldlib(), 0, &l2));
    ASSERT(l2 == l);
    worker_finish(&w);
    EVENTS_ARE("101");
    ASSERT_EQ(libraries(v), 1);
    ASSERT_OK(vmc_lib_unload(l2));
    EVENTS_ARE("101 1");
    ASSERT_EQ(libraries(v), 0);
    vmc_close(v);
}

/* vmc_close with a thread that has destructors to run: the library goes
 * (its destructor runs now), the thread's exit later calls nothing. */
TEST_THREADED(tlsdtor_close_drops_destructors_not_yet_run)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, tldlib(), 0, &l));
    worker_t w;
    worker_start(&w, (int (*)(int))vmc_lib_sym(l, "t_tld_register"), 2);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
    EVENTS_ARE("1");
    worker_finish(&w);
    EVENTS_ARE("1");
}

/* __cxa_atexit registrations under the library's __dso_handle run at its
 * unload, last first, after its own destructors (crtbegin's
 * __cxa_finalize call is the first DT_FINI_ARRAY entry, so it runs last). */
TEST(tlsdtor_cxa_atexit_runs_at_unload)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, tldlib(), 0, &l));
    int (*ae)(int) = (int (*)(int))vmc_lib_sym(l, "t_tld_atexit");
    ASSERT(ae);
    ASSERT_EQ(ae(1), 0);
    ASSERT_EQ(ae(2), 0);
    EVENTS_ARE("");
    ASSERT_OK(vmc_lib_unload(l));
    EVENTS_ARE("1 202 201");
    /* and at vmc_close for a library still loaded */
    ASSERT_OK(vmc_lib_load(v, tldlib(), 0, &l));
    ae = (int (*)(int))vmc_lib_sym(l, "t_tld_atexit");
    ASSERT_EQ(ae(3), 0);
    vmc_close(v);
    EVENTS_ARE("1 202 201 1 203");
}

static int host_dtors;
static void host_dtor(void *p) { host_dtors += *(int *)p; }
static int host_reg(int tag)
{
    static int one = 1;
    (void)tag;
    return vmc__cxa_thread_atexit(host_dtor, &one, &host_dtors);
}

/* A registration whose dso is not a private library's goes to the C
 * library's, and runs at the thread's exit as before. */
TEST_THREADED(tlsdtor_other_objects_go_to_the_c_library)
{
    worker_t w;
    worker_start(&w, host_reg, 2);
    ASSERT_EQ(w.result, 0);
    worker_finish(&w);
    ASSERT_EQ(host_dtors, 2);
}

/* Out of memory for a registration: -1, that destructor never runs, the
 * others do, and the unload does not wait for it. */
TEST_THREADED(tlsdtor_registration_out_of_memory)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, tldlib(), 0, &l));
    int (*reg)(int) = (int (*)(int))vmc_lib_sym(l, "t_tld_register");
    vmc__tlsdtor_fault(2);
    worker_t w;
    worker_start(&w, reg, 3);
    vmc__tlsdtor_fault(0);
    ASSERT_EQ(w.result, -1);
    worker_finish(&w);
    EVENTS_ARE("103 101");
    ASSERT_OK(vmc_lib_unload(l));
    EVENTS_ARE("103 101 1");
    /* failing the first of one: nothing pending, the unload is immediate */
    ASSERT_OK(vmc_lib_load(v, tldlib(), 0, &l));
    reg = (int (*)(int))vmc_lib_sym(l, "t_tld_register");
    vmc__tlsdtor_fault(1);
    worker_start(&w, reg, 1);
    vmc__tlsdtor_fault(0);
    ASSERT_EQ(w.result, -1);
    ASSERT_OK(vmc_lib_unload(l));
    EVENTS_ARE("103 101 1 1");
    ASSERT_EQ(libraries(v), 0);
    worker_finish(&w);
    EVENTS_ARE("103 101 1 1");
    vmc_close(v);
}

/* ---- C++: thread_local objects, static objects ------------------------------ */

/* A C++ library; SKIP while private libraries cannot have TLS. */
static int load_cxx(vmc_t *v, const char *name, vmc_lib_t **l)
{
    char p[512];
    snprintf(p, sizeof p, "%s/tests/libs/%s", vt_build_dir(), name);
    if (access(p, R_OK)) SKIP("no C++ compiler: the C++ test libraries are not built");
    int e = vmc_lib_load(v, p, 0, l);
    if ((e == -ENOTSUP || e == -ENOEXEC) && (strstr(vmc_last_error(), "thread-local") || strstr(vmc_last_error(), "TLS")))
        SKIP("private libraries with TLS are not supported yet");
    ASSERT_OK(e);
    return 0;
}

/* A C++ plug-in unloaded while a thread that used its thread_local object
 * is still alive: the unload returns; the object's destructor, then the
 * static one (__cxa_atexit, run by the library's destructors), run when
 * the thread exits, and then the range comes back. */
TEST_THREADED(tlsdtor_cxx_thread_local_outlives_the_unload)
{
    vmc_t *v = vt_open("");
    size_t used0 = code_used(v);
    vmc_lib_t *l;
    load_cxx(v, "libt_tlcxx.so", &l);
    int (*use)(int) = (int (*)(int))vmc_lib_sym(l, "t_tlx_use");
    int (*st)(void) = (int (*)(void))vmc_lib_sym(l, "t_tlx_static");
    ASSERT(use && st);
    ASSERT_EQ(st(), 1);
    worker_t w;
    worker_start(&w, use, 2);  /* 7 + 1, then + 2 */
    ASSERT_EQ(w.result, 8 | 10);
    EVENTS_ARE("10");
    ASSERT_OK(vmc_lib_unload(l));
    EVENTS_ARE("10");
    ASSERT_EQ(libraries(v), 1);
    worker_finish(&w);
    EVENTS_ARE("10 20 30");
    ASSERT_EQ(libraries(v), 0);
    ASSERT_EQ(code_used(v), used0);
    vmc_close(v);
}

/* Copies are per thread; with no thread left holding one, the unload is
 * immediate and runs the static object's destructor. */
TEST_THREADED(tlsdtor_cxx_thread_local_per_thread_and_static_at_unload)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    load_cxx(v, "libt_tlcxx.so", &l);
    int (*use)(int) = (int (*)(int))vmc_lib_sym(l, "t_tlx_use");
    int (*st)(void) = (int (*)(void))vmc_lib_sym(l, "t_tlx_static");
    st();
    worker_t a, b;
    worker_start(&a, use, 1);
    worker_start(&b, use, 1);
    ASSERT_EQ(a.result, 8);
    ASSERT_EQ(b.result, 8);
    worker_finish(&a);
    worker_finish(&b);
    EVENTS_ARE("10 10 20 20");
    ASSERT_OK(vmc_lib_unload(l));
    EVENTS_ARE("10 10 20 20 30");
    ASSERT_EQ(libraries(v), 0);
    vmc_close(v);
}

/* A plug-in built with -static-libgcc -static-libstdc++ throws and catches
 * inside itself: its own unwinder finds its frames through vmcode's
 * _dl_find_object. */
TEST(tlsdtor_cxx_static_runtime_throws_and_catches)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    load_cxx(v, "libt_cxxstatic.so", &l);
    int (*f)(int) = (int (*)(int))vmc_lib_sym(l, "t_cxx_catch");
    ASSERT(f);
    for (int i = 0; i < 20; i++) ASSERT_EQ(f(i % 5), i + 1);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* A C++ program catches what a C++ plug-in throws through frames with
 * destructors: built with the shared libstdc++, and -static-libstdc++,
 * whose runtime names bind to the program's runtime as dlopen binds them
 * (one runtime: the exception is counted in and out of the same one, and
 * the plug-in's own throw and catch still work). */
TEST(tlsdtor_cxx_host_catches_a_plugin_exception)
{
    char prog[512];
    snprintf(prog, sizeof prog, "%s/tests/libs/t_cxxhost", vt_build_dir());
    if (access(prog, X_OK)) SKIP("no C++ compiler: t_cxxhost not built");
    static const char *const libs[] = {"libt_cxx.so", "libt_cxxstatic.so"};
    for (int i = 0; i < 2; i++) {
        char cmd[1200], out[512];
        /* (LeakSanitizer, at the program's exit: the plug-in's copy of
         * libstdc++ mallocs its emergency exception pool and never frees
         * it, and the pointer lives in private data the leak check does
         * not scan) */
        snprintf(cmd, sizeof cmd, "ASAN_OPTIONS=detect_leaks=0 %s %s 2>&1", prog, vt_tlib(libs[i]));
        FILE *f = popen(cmd, "r");
        ASSERT(f);
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = 0;
        int st = pclose(f);
        ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status 0x%x: %s", libs[i], st, out);
        ASSERT_STR_EQ(out, "caught 3 uncaught 0 unwound 6 inside 1\n");
    }
}

/* ---- fork ------------------------------------------------------------------ */

static atomic_int churn_stop;
static int (*churn_reg)(int);

static void *churn_one(void *arg)
{
    (void)arg;
    churn_reg(1);
    return NULL;
}

static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&churn_stop)) {
        pthread_t t;
        if (pthread_create(&t, NULL, churn_one, NULL) == 0) pthread_join(t, NULL);
    }
    return NULL;
}

/* Threads registering and running thread-exit destructors while the
 * process forks: the child registers, unloads, walks its stack and exits,
 * running its own (the locks of the published libraries, the registrations
 * and the unwinder are taken around fork: none is left held in the child). */
TEST_THREADED(tlsdtor_fork_while_threads_register)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, tldlib(), 0, &l));
    churn_reg = (int (*)(int))vmc_lib_sym(l, "t_tld_register");
    vmc_lib_t *bl;
    char btp[512];
    snprintf(btp, sizeof btp, "%s/tests/libs/libt_bt.so", vt_build_dir());
    ASSERT_OK(vmc_lib_load(v, btp, 0, &bl));
    int (*bt)(void **, int) = (int (*)(void **, int))vmc_lib_sym(bl, "t_bt");
    ASSERT(bt);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) ASSERT_EQ(pthread_create(&th[i], NULL, churn, NULL), 0);
    int forks = vt_sanitized() ? 5 : 20;  /* a sanitizer's fork is slow */
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            /* (no new thread: ThreadSanitizer refuses them after a fork
             * with threads) the child's main thread registers; its exit
             * runs them, and the last finishes the pending unload */
            if (churn_reg(1) || churn_reg(2) || vmc_lib_unload(l) || libraries(v) != 2) _exit(3);
            void *buf[16];
            if (bt(buf, 16) < 2) _exit(4);
            fflush(NULL);
            /* exit runs the main thread's destructors; under AddressSanitizer
             * it also runs the leak check, which can hang in a child forked
             * from a process with threads: leave without it there */
            if (vt_sanitized()) _exit(0);
            exit(0);
        }
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT(WIFEXITED(st));
        ASSERT_EQ(WEXITSTATUS(st), 0);
    }
    atomic_store(&churn_stop, 1);
    for (int i = 0; i < 2; i++) ASSERT_EQ(pthread_join(th[i], NULL), 0);
    ASSERT_OK(vmc_lib_unload(bl));
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}
