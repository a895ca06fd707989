/* Walking the stack through private code: backtrace(), _Unwind_Backtrace
 * from libgcc_s, and the unwinder a -static-libgcc library carries (which
 * asks _dl_find_object), whether or not the process had libgcc_s when the
 * library was loaded (src/lib/unwinder.c, src/lib/phdr.c). */
#include "test.h"
#include "elfimg.h"
#include "elf/elf.h"
#include "lib/phdr.h"
#include "lib/unwinder.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unwind.h>

typedef int (*walker_t)(void **, int);

/* The host frame below the library's: it must show up in the walk. */
int vt_bt_caller(walker_t f, void **buf, int max);
__attribute__((noinline)) int vt_bt_caller(walker_t f, void **buf, int max)
{
    int n = f(buf, max);
    __asm__ volatile("" ::: "memory");  /* not a tail call */
    return n;
}

static int in_lib(vmc_lib_t *l, const void *p)
{
    void *s;
    size_t n;
    ASSERT_OK(vmc_lib_span(l, &s, &n));
    return (const char *)p >= (const char *)s && (const char *)p < (const char *)s + n;
}

/* A walk of n frames: at least `inside` in l, and the host caller after them. */
static void walk_ok(vmc_lib_t *l, void **buf, int n, int inside, const char *file, int line)
{
    int in = 0, caller = -1, last_in = -1;
    for (int i = 0; i < n; i++) {
        Dl_info di;
        if (in_lib(l, buf[i])) {
            in++;
            last_in = i;
        } else if (caller < 0 && dladdr(buf[i], &di) && di.dli_saddr == (void *)vt_bt_caller) {
            caller = i;
        }
    }
    if (n < inside + 1 || in < inside || caller < 0 || caller < last_in)
        vt_fail(file, line, "walk of %d frames: %d in the library (want %d), the caller at %d", n, in, inside,
                caller);
}
#define WALK_OK(l, buf, n, inside) walk_ok(l, buf, n, inside, __FILE__, __LINE__)

static int gcc_loaded(void)
{
    void *h = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (h) dlclose(h);
    return h != NULL;
}

/* backtrace() inside a library loaded while the process had no unwinder
 * and none could be loaded then: its import is vmcode's, which loads
 * libgcc_s as glibc's would and registers the library first. */
TEST(unwind_backtrace_in_a_library_loaded_before_libgcc)
{
    int had = gcc_loaded();
    vmc_t *v = vt_open("");
    vmc__unwinder_refuse_load(1);
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_bt.so"), 0, &l));
    vmc__unwinder_refuse_load(0);
    ASSERT(had || !gcc_loaded());
    walker_t bt = (walker_t)vmc_lib_sym(l, "t_bt");
    void *buf[64];
    int n = vt_bt_caller(bt, buf, 64);
    WALK_OK(l, buf, n, 2);
    ASSERT(gcc_loaded());
    /* the first frame is the library's call site, not vmcode's function */
    ASSERT(in_lib(l, buf[0]));
    /* a buffer shorter than the stack is filled and no more */
    ASSERT_EQ(vt_bt_caller(bt, buf, 2), 2);
    ASSERT_EQ(vt_bt_caller(bt, buf, 0), 0);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
    if (had) printf("libgcc_s was loaded before the test: the late path was not taken\n");
}

/* ---- the host walks with libgcc_s's _Unwind_Backtrace ------------------ */

typedef struct hwalk {
    void **buf;
    int n, max;
    uintptr_t (*ip)(struct _Unwind_Context *);
} hwalk_t;

static _Unwind_Reason_Code hwalk_cb(struct _Unwind_Context *ctx, void *arg)
{
    hwalk_t *w = arg;
    if (w->n == w->max) return _URC_END_OF_STACK;
    w->buf[w->n++] = (void *)w->ip(ctx);
    return _URC_NO_REASON;
}

static int host_walk(void **buf, int max)
{
    void *gcc = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NOLOAD);
    ASSERT(gcc);
    _Unwind_Reason_Code (*bt)(_Unwind_Trace_Fn, void *) =
        (_Unwind_Reason_Code (*)(_Unwind_Trace_Fn, void *))dlsym(gcc, "_Unwind_Backtrace");
    hwalk_t w = {buf, 0, max, (uintptr_t (*)(struct _Unwind_Context *))dlsym(gcc, "_Unwind_GetIP")};
    ASSERT(bt && w.ip);
    bt(hwalk_cb, &w);
    dlclose(gcc);
    return w.n;
}

/* The library calls back into the host, which walks from there. */
static void *hop_lib;
static int hop(void **buf, int max)
{
    int (*f)(walker_t, void **, int) = (int (*)(walker_t, void **, int))hop_lib;
    return f(host_walk, buf, max);
}

typedef struct fde_bases {
    void *tbase, *dbase, *func;
} fde_bases_t;

/* libgcc_s's own look-up of the frame description of pc (what every walk
 * and exception asks): registered tables, then the C library's
 * _dl_find_object. */
static void *find_fde(void *pc)
{
    void *gcc = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NOLOAD);
    ASSERT(gcc);
    void *(*find)(void *, fde_bases_t *) = (void *(*)(void *, fde_bases_t *))dlsym(gcc, "_Unwind_Find_FDE");
    ASSERT(find);
    fde_bases_t b;
    void *f = find(pc, &b);
    dlclose(gcc);
    return f;
}

/* glibc's backtrace() called by the host, from inside the library. */
static int glibc_walk(void **buf, int max) { return backtrace(buf, max); }

/* A process without libgcc_s (a C program) loads a library: libgcc_s is
 * loaded with it and the library registered, so the host's walks cross its
 * frames at once, with no other load in between: libgcc_s's own
 * _Unwind_Backtrace, and glibc's backtrace().  Once unloaded, the unwinder
 * no longer knows its frames. */
TEST(unwind_host_walks_right_after_the_first_load)
{
    int had = gcc_loaded();
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_bt.so"), 0, &l));
    ASSERT(gcc_loaded());
    hop_lib = vmc_lib_sym(l, "t_bt_hop");
    ASSERT(find_fde((char *)hop_lib + 1) != NULL);
    void *buf[64];
    int n = vt_bt_caller(hop, buf, 64);
    WALK_OK(l, buf, n, 1);
    int (*f)(walker_t, void **, int) = (int (*)(walker_t, void **, int))hop_lib;
    n = vt_bt_caller(glibc_walk, buf, 64);  /* (the host's own frames only: a check of the check) */
    ASSERT_GT(n, 1);
    n = f(glibc_walk, buf, 64);
    ASSERT_GT(n, 2);
    int found = 0;
    for (int i = 0; i < n; i++) found += in_lib(l, buf[i]);
    ASSERT_EQ(found, 1);
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT(find_fde((char *)hop_lib + 1) == NULL);
    vmc_close(v);
    if (had) printf("libgcc_s was loaded before the test: the load did not bring it\n");
}

/* A library loaded while no libgcc_s could be loaded; libgcc_s then comes
 * (loaded locally, as glibc's backtrace() and pthread_cancel load it) and
 * another library is loaded: the first one is registered then, and the
 * host's walk crosses its frames. */
TEST(unwind_host_walk_through_a_library_registered_late)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l, *other;
    vmc__unwinder_refuse_load(1);
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_bt.so"), 0, &l));
    vmc__unwinder_refuse_load(0);
    void *gcc = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
    ASSERT(gcc);
    hop_lib = vmc_lib_sym(l, "t_bt_hop");
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &other));
    ASSERT(find_fde((char *)hop_lib + 1) != NULL);
    void *buf[64];
    int n = vt_bt_caller(hop, buf, 64);
    WALK_OK(l, buf, n, 1);
    ASSERT_OK(vmc_lib_unload(other));
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT(find_fde((char *)hop_lib + 1) == NULL);
    dlclose(gcc);
    vmc_close(v);
}

/* A load that fails brings nothing into the process: libgcc_s comes only
 * with one that works (and stays, as glibc keeps it). */
TEST(unwind_failed_load_leaves_no_libgcc)
{
    if (gcc_loaded()) SKIP("libgcc_s is loaded already (a sanitizer's runtime brings it)");
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    /* its dependency loads and is registered, then its own symbol fails */
    ASSERT_EQ(vmc_lib_load(v, vt_tlib("libt_faildep.so"), 0, &l), -ENOENT);
    ASSERT_STR_CONTAINS(vmc_last_error(), "t_nothing_defines_this");
    ASSERT(!gcc_loaded());
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &l));
    ASSERT(gcc_loaded());
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT(gcc_loaded());
    vmc_close(v);
}

/* A C++ exception thrown by host code (a C++ library the C program opens
 * after the private load, which brings libstdc++ and libgcc_s) through the
 * private library's frames, caught above them. */
TEST(unwind_host_exception_through_a_library_loaded_before_libstdcxx)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/libs/libt_hostthrow.so", vt_build_dir());
    if (access(path, R_OK)) SKIP("no C++ compiler: libt_hostthrow.so not built");
    void *cxx = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (cxx) {
        printf("libstdc++ was loaded before the test\n");
        dlclose(cxx);
    }
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_bt.so"), 0, &l));
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ASSERT_MSG(h, "%s", dlerror());
    int (*catcher)(void *) = (int (*)(void *))dlsym(h, "t_ht_catch");
    ASSERT(catcher);
    for (int i = 0; i < 3; i++) ASSERT_EQ(catcher(vmc_lib_sym(l, "t_bt_hop")), 42);
    ASSERT_OK(vmc_lib_unload(l));
    dlclose(h);
    vmc_close(v);
}

/* _Unwind_Backtrace inside a library that needs libgcc_s. */
TEST(unwind_backtrace_with_the_shared_libgcc)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_unwind.so"), 0, &l));
    void *buf[64];
    int n = vt_bt_caller((walker_t)vmc_lib_sym(l, "t_uw"), buf, 64);
    WALK_OK(l, buf, n, 2);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* A program that starts with libgcc_s (linked with it, as every C++
 * program is): the unwinder is that object, found in the host scope and
 * kept by its handle.  The library's backtrace() (vmcode's, which drives
 * that unwinder), the host's _Unwind_Backtrace and glibc's backtrace(),
 * from a callback of the library, all cross its frames
 * (tests/progs/gcc_host.c). */
TEST(unwind_startup_libgcc_walks_through_private_frames)
{
    char cmd[1200], out[256];
    snprintf(cmd, sizeof cmd, "%s/tests/gcc_host %s 2>&1", vt_build_dir(), vt_tlib("libt_bt.so"));
    FILE *f = popen(cmd, "r");
    ASSERT(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    int st = pclose(f);
    ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x: %s", st, out);
    ASSERT_STR_EQ(out, "walks 2 1 1\n");
}

/* A library with its own copy of libgcc's unwinder (-static-libgcc): it
 * finds the library's frames through vmcode's _dl_find_object, and the
 * host's through the C library's. */
TEST(unwind_static_libgcc_walks_through_its_own_frames)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_unwind_static.so"), 0, &l));
    void *buf[64];
    int n = vt_bt_caller((walker_t)vmc_lib_sym(l, "t_uw"), buf, 64);
    WALK_OK(l, buf, n, 2);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

#ifdef DLFO_EH_SEGMENT_TYPE
/* _dl_find_object's answers: a private library's span and PT_GNU_EH_FRAME,
 * the C library's for the host's own code, -1 elsewhere and after unload. */
TEST(unwind_dl_find_object_answers)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_bt.so"), 0, &l));
    vmc_lib_info_t in;
    ASSERT_OK(vmc_lib_info(l, &in));
    char *f = vmc_lib_sym(l, "t_bt");
    struct dl_find_object d, h;
    ASSERT_EQ(vmc__dl_find_object(f, &d), 0);
    ASSERT(d.dlfo_map_start == in.base);
    ASSERT(d.dlfo_map_end == (char *)in.base + in.size);
    ASSERT(d.dlfo_link_map == NULL);
    ASSERT(d.dlfo_eh_frame != NULL && in_lib(l, d.dlfo_eh_frame));
    ASSERT_EQ(((unsigned char *)d.dlfo_eh_frame)[0], 1);  /* .eh_frame_hdr version */
    ASSERT_EQ(vmc__dl_find_object((void *)vt_bt_caller, &d), 0);
    ASSERT_EQ(_dl_find_object((void *)vt_bt_caller, &h), 0);
    ASSERT(d.dlfo_map_start == h.dlfo_map_start && d.dlfo_eh_frame == h.dlfo_eh_frame);
    vmc_span_t code;  /* in the region, not in a library */
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &code));
    ASSERT_EQ(vmc__dl_find_object(code.x, &d), -1);
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT_EQ(vmc__dl_find_object(f, &d), -1);
    /* an inert load is not listed: nothing of it can be on a stack */
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_bt.so"), VMC_LOAD_INERT, &l));
    ASSERT_EQ(vmc__dl_find_object(vmc_lib_sym(l, "t_bt"), &d), -1);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}
#endif

/* What registration handed an unwinder (elf/unwind.c), recorded by
 * stand-ins for its calls. */
static struct fake_uw {
    int reg, dereg, reg_bases, reg_table, dereg_bases;
    const void *given, *ob, *table0, *table1, *taken;
} fk;

static void fk_reg(void *e) { fk.reg++, fk.given = e; }
static void fk_dereg(void *e) { fk.dereg++, fk.taken = e; }
static void fk_reg_bases(const void *e, void *ob, void *tb, void *db)
{
    fk.reg_bases++, fk.given = e, fk.ob = ob;
    ASSERT(!tb && !db);
}
static void fk_reg_table(void *t, void *ob, void *tb, void *db)
{
    fk.reg_table++, fk.given = t, fk.ob = ob;
    fk.table0 = ((void **)t)[0], fk.table1 = ((void **)t)[1];
    ASSERT(!tb && !db);
}
static void *fk_dereg_bases(const void *b)
{
    fk.dereg_bases++, fk.taken = b;
    return (void *)fk.ob;
}

/* Each kind of unwinder gets the calls that suit it, and each record is
 * taken back by the pointer libgcc finds it by: another unwinder's
 * __register_frame and __deregister_frame; a b-tree libgcc (GCC 13 on) the
 * .eh_frame with the library's record; a list libgcc (GCC 12 and before) a
 * table of one, unless its first 32-bit word would be 0, which libgcc
 * takes for an empty .eh_frame and would not take back (__register_frame
 * then). */
/* The registration a host's libgcc_s.so.1 gets, by what it is: a list
 * libgcc (GCC 12 and before) the table of one, read by nothing until an
 * unwind; a b-tree libgcc (GCC 13 and later, told by __truncsfbf2) the
 * .eh_frame; LLVM's libunwind installed under libgcc's name (told by
 * unw_getcontext), whose calls of those names register nothing, the plain
 * __register_frame.  Stand-ins record the calls (tests/libs/t_fakegcc.c),
 * each first on LD_LIBRARY_PATH for a program linked with one. */
TEST(unwind_registration_by_the_unwinder_the_host_has)
{
    if (vt_sanitized()) SKIP("the sanitizer's runtime needs the real libgcc_s.so.1");
    static const char *const kinds[][2] = {
        {"list", "info_table_bases deregister_info_bases\n"},
        {"btree", "info_bases deregister_info_bases\n"},
        {"llvm", "register_frame deregister_frame\n"},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        char cmd[1600], out[256];
        snprintf(cmd, sizeof cmd, "LD_LIBRARY_PATH=%s/tests/libs/fakegcc_%s %s/tests/libs/t_fakegcc_host %s 2>&1",
                 vt_build_dir(), kinds[k][0], vt_build_dir(), vt_tlib("libt_bt.so"));
        FILE *f = popen(cmd, "r");
        ASSERT(f);
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = 0;
        int st = pclose(f);
        ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status 0x%x: %s", kinds[k][0], st, out);
        ASSERT_MSG(!strcmp(out, kinds[k][1]), "%s: %s", kinds[k][0], out);
    }
}

TEST(unwind_registration_calls_by_kind_of_unwinder)
{
    vmc_elf_obj_t *o = calloc(1, sizeof *o);
    ASSERT(o);
    const vmc_elf_unwinder_t other = {fk_reg, fk_dereg, NULL, NULL, NULL};
    const vmc_elf_unwinder_t btree = {fk_reg, fk_dereg, fk_reg_bases, NULL, fk_dereg_bases};
    const vmc_elf_unwinder_t list = {fk_reg, fk_dereg, NULL, fk_reg_table, fk_dereg_bases};
    struct {
        const vmc_elf_unwinder_t *u;
        uintptr_t bias;
    } c[] = {{&other, 0x7f0000000000}, {&btree, 0x7f0000000000}, {&list, 0x7f0000000000},
             {&list, 0x7f0100000000 - 0x1a000}};   /* .eh_frame at 0x7f0100000000 */
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        memset(&fk, 0, sizeof fk);
        o->bias = c[i].bias;
        o->eh_frame_va = 0x1a000;
        void *eh = (void *)(c[i].bias + 0x1a000);
        vmc__elf_unwind_register(o, c[i].u);
        vmc__elf_unwind_register(o, c[i].u);   /* once only */
        ASSERT(o->eh_frame == eh);
        ASSERT_EQ(fk.reg + fk.reg_bases + fk.reg_table, 1);
        int plain = c[i].u == &other || !(uint32_t)(uintptr_t)eh;
        if (plain) {
            ASSERT_EQ(fk.reg, 1);
            ASSERT(fk.given == eh);
        } else if (c[i].u == &list) {
            ASSERT_EQ(fk.reg_table, 1);
            ASSERT(fk.given == o->eh_table && fk.table0 == eh && fk.table1 == NULL);
            ASSERT(fk.ob == o->eh_ob);
        } else {
            ASSERT_EQ(fk.reg_bases, 1);
            ASSERT(fk.given == eh && fk.ob == o->eh_ob);
        }
        const void *given = fk.given;
        vmc__elf_unwind_deregister(o);
        vmc__elf_unwind_deregister(o);   /* once only */
        ASSERT(o->eh_frame == NULL);
        ASSERT_EQ(fk.dereg + fk.dereg_bases, 1);
        ASSERT_EQ(plain ? fk.dereg : fk.dereg_bases, 1);
        ASSERT(fk.taken == given);
    }
    /* no .eh_frame: nothing registered, nothing taken back */
    memset(&fk, 0, sizeof fk);
    o->eh_frame_va = 0;
    vmc__elf_unwind_register(o, &list);
    vmc__elf_unwind_deregister(o);
    ASSERT_EQ(fk.reg + fk.reg_bases + fk.reg_table + fk.dereg + fk.dereg_bases, 0);
    free(o);
}

typedef struct thrower {
    int (*f)(int);
    atomic_int *stop;
    int rounds, bad;
} thrower_t;

static void *thrower(void *arg)
{
    thrower_t *t = arg;
    while (!atomic_load(t->stop) || t->rounds < 50) {
        if (t->f(t->rounds % 7) != 1) t->bad++;
        t->rounds++;
    }
    return NULL;
}

/* Exceptions thrown and caught in a private library in two threads while
 * the main thread loads and unloads other libraries (one of them a copy of
 * the C++ one, whose own exceptions it throws): registering and taking
 * back the libraries' records (ours, elf/unwind.c) while the unwinder
 * searches and sorts the others. */
TEST_THREADED(unwind_exceptions_in_threads_while_libraries_come_and_go)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/libs/libt_cxx.so", vt_build_dir());
    if (access(path, R_OK)) SKIP("no C++ compiler: libt_cxx.so not built");
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    int (*f)(int) = (int (*)(int))vmc_lib_sym(l, "t_cxx_catch_quietly");
    ASSERT(f);
    vt_img_t cxx, basic;
    ASSERT_OK(vt_img_read(path, &cxx));
    ASSERT_OK(vt_img_read(vt_tlib("libt_basic.so"), &basic));
    atomic_int stop = 0;
    thrower_t t[2] = {{f, &stop, 0, 0}, {f, &stop, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) ASSERT_EQ(pthread_create(&th[i], NULL, thrower, &t[i]), 0);
    int bad = 0;
    for (int i = 0; i < 150; i++) {
        vmc_lib_t *a, *b;
        ASSERT_OK(vmc_lib_load_mem(v, basic.b, basic.n, "basic-copy", 0, &a));
        ASSERT_OK(vmc_lib_load_mem(v, cxx.b, cxx.n, "cxx-copy", 0, &b));
        int (*g)(int) = (int (*)(int))vmc_lib_sym(b, "t_cxx_catch");
        if (!g || g(i % 7) != 1) bad++;
        ASSERT_OK(vmc_lib_unload(a));
        ASSERT_OK(vmc_lib_unload(b));
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(t[0].bad + t[1].bad, 0);
    vt_img_free(&cxx);
    vt_img_free(&basic);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}
