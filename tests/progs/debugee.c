/* The program the debugger and profiler tests run (tests/test_debug.c):
 * it loads private libraries, calls into them, names a piece of generated
 * code and calls it, in one of these modes:
 *
 *   debugee [-w] [-perf_map] basic DIR   load DIR/libt_dbg.so and libt_dbg2.so,
 *                                        call both, unload, call a named fragment
 *   debugee [-w] fork DIR                load libt_dbg.so, fork; the child loads
 *                                        libt_dbg2.so and calls both
 *   debugee [-w] wait DIR                load libt_dbg.so, print "ready", then
 *                                        call it every 10 ms for 30 s (gdb -p)
 *   debugee [-w] uninit DIR              load libt_dbg.so, call t_dbg_uninit (one
 *                                        error for valgrind to report)
 *   debugee [-w] loads DIR               200 loads and unloads of libt_dbg2.so: the
 *                                        time of one
 *   debugee names DIR                    10,000 names, flushed every VMC_TEST_FLUSH
 *   debugee [-w] hot DIR                 a second of work in libt_dbg.so and in a
 *                                        named fragment (perf record)
 */
#include <vmcode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static vmc_t *v;
static char dir[4096];

/* Where the tests stop: never inlined, so each is a frame of its own. */
__attribute__((noinline)) void dbg_after_unload(void) { __asm__ volatile(""); }
__attribute__((noinline)) void dbg_jit_target(void) { __asm__ volatile(""); }

static vmc_lib_t *load(const char *name)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    vmc_lib_t *l;
    if (vmc_lib_load(v, path, 0, &l)) {
        fprintf(stderr, "debugee: %s\n", vmc_last_error());
        exit(1);
    }
    return l;
}

static int call(vmc_lib_t *l, const char *sym, int x)
{
    int (*f)(int);
    *(void **)&f = vmc_lib_sym(l, sym);
    if (!f) {
        fprintf(stderr, "debugee: %s\n", vmc_last_error());
        exit(1);
    }
    return f(x);
}

/* Copy code into a fresh VMC_CODE allocation and name it. */
static void (*fragment(const char *name, const unsigned char *code, size_t len))(void)
{
    vmc_span_t s;
    if (vmc_alloc(v, 64, VMC_CODE, &s)) {
        fprintf(stderr, "debugee: %s\n", vmc_last_error());
        exit(1);
    }
    memcpy(s.w, code, len);
    if (vmc_name(v, s.x, len, name) || vmc_name_flush(v)) {
        fprintf(stderr, "debugee: %s\n", vmc_last_error());
        exit(1);
    }
    void (*f)(void);
    *(void **)&f = s.x;
    return f;
}

/* push rbp; mov rbp, rsp; movabs rax, target; call rax; pop rbp; ret:
 * a frame gdb unwinds by its frame pointer. */
static void (*calling_fragment(const char *name, void (*target)(void)))(void)
{
    unsigned char code[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xd0, 0x5d, 0xc3};
    uintptr_t t = (uintptr_t)target;
    memcpy(code + 6, &t, 8);
    return fragment(name, code, sizeof code);
}

/* mov ecx, 1000000; 1: dec ecx; jnz 1b; ret */
static const unsigned char spin_code[] = {0xb9, 0x40, 0x42, 0x0f, 0x00, 0xff, 0xc9, 0x75, 0xfc, 0xc3};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    vmc_options_t o;
    vmc_options_init(&o);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-w")) o.w_xor_x = 1;
        else if (!strcmp(argv[i], "-perf_map")) o.perf_map = 1;
        else if (!strcmp(argv[i], "-jitdump")) o.jitdump = 1;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: debugee [-w] [-perf_map] basic|fork|wait|uninit|loads|names|hot DIR\n");
        return 2;
    }
    const char *mode = argv[i];
    snprintf(dir, sizeof dir, "%s", argv[i + 1]);
    if (vmc_open(&o, &v)) {
        fprintf(stderr, "debugee: %s\n", vmc_last_error());
        return 1;
    }
    if (!strcmp(mode, "basic")) {
        vmc_lib_t *a = load("libt_dbg.so"), *b = load("libt_dbg2.so");
        printf("entry %d\n", call(a, "t_dbg_entry", 2));
        printf("fn2 %d\n", call(b, "t_dbg2_fn", 10));
        vmc_lib_unload(a);
        vmc_lib_unload(b);
        dbg_after_unload();
        calling_fragment("vmc_test_fragment", dbg_jit_target)();
    } else if (!strcmp(mode, "fork")) {
        vmc_lib_t *a = load("libt_dbg.so");
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            vmc_lib_t *b = load("libt_dbg2.so");
            printf("child %d %d\n", call(a, "t_dbg_entry", 2), call(b, "t_dbg2_fn", 10));
            fflush(stdout);
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        printf("parent %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    } else if (!strcmp(mode, "wait")) {
        vmc_lib_t *a = load("libt_dbg.so");
        printf("ready %ld\n", (long)getpid());
        fflush(stdout);
        for (int k = 0; k < 3000; k++) {
            call(a, "t_dbg_entry", k);
            usleep(10000);
        }
    } else if (!strcmp(mode, "uninit")) {
        vmc_lib_t *a = load("libt_dbg.so");
        int (*f)(void);
        *(void **)&f = vmc_lib_sym(a, "t_dbg_uninit");
        printf("uninit %d\n", f() > 0);
        vmc_lib_unload(a);
    } else if (!strcmp(mode, "loads")) {
        /* what a load and unload costs, for docs/loader.md (with gdb and without) */
        double t0 = now();
        for (int k = 0; k < 200; k++) vmc_lib_unload(load("libt_dbg2.so"));
        printf("load+unload %.1f us\n", (now() - t0) / 200 * 1e6);
    } else if (!strcmp(mode, "names")) {
        /* what naming costs, for docs/loader.md: 10,000 names, a flush
         * after every 10, 100 or 1,000 (VMC_TEST_FLUSH) */
        int every = getenv("VMC_TEST_FLUSH") ? atoi(getenv("VMC_TEST_FLUSH")) : 100;
        vmc_span_t s;
        if (vmc_alloc(v, 10000, VMC_CODE, &s)) return 1;
        double t0 = now();
        for (int k = 0; k < 10000; k++) {
            char n[32];
            snprintf(n, sizeof n, "frag_%d", k);
            vmc_name(v, (char *)s.x + k, 1, n);
            if ((k + 1) % every == 0) vmc_name_flush(v);
        }
        printf("10000 names, flush every %d: %.3f s\n", every, now() - t0);
    } else if (!strcmp(mode, "hot")) {
        vmc_lib_t *a = load("libt_dbg.so");
        printf("pid %ld\n", (long)getpid());  /* the test removes /tmp/perf-PID.map and the like */
        fflush(stdout);
        void (*f)(void) = fragment("vmc_hot_fragment", spin_code, sizeof spin_code);
        double end = now() + 1.0;
        while (now() < end) {
            f();
            call(a, "t_dbg_spin", 1000000);
        }
    } else {
        fprintf(stderr, "debugee: unknown mode %s\n", mode);
        return 2;
    }
    vmc_close(v);
    return 0;
}
