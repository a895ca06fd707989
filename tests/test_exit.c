/* A private library still loaded when the process exits (exit(), no
 * vmc_lib_unload, no vmc_close) is finalised as a dlopen'ed one: glibc runs
 * every handler registered with atexit/__cxa_atexit, the library's too,
 * then vmcode's destructor, in _dl_fini's pass, runs its DT_FINI_ARRAY and
 * DT_FINI.  With vmc_close before exit everything runs once, in dlclose's
 * order.  Each compared with the same library under dlopen in a process of
 * its own.  docs/loader.md, "At the process's exit". */
#include "test.h"

#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PRIVATE, PRIVATE_CLOSED, DLOPEN, DLOPEN_CLOSED };

/* The child's output: it loads the library (privately or with dlopen),
 * closes the handle (or dlcloses) if asked, and calls exit(0).  The handle in a static, so that a leak checker at
 * exit sees it reachable. */
static vmc_t *exit_v;
static void (*exit_alive)(void);   /* the library's t_alive, when asked for */

/* A destructor of the program's own: it runs before the libraries' at
 * exit, under dlopen (the program is finalised before what it loaded) and
 * privately alike, and may still use them. */
__attribute__((destructor)) static void program_destructor(void)
{
    if (exit_alive) exit_alive();
}

static void exit_child(int how, int fork_at_fini, int use_at_fini, char *out, size_t size)
{
    int p[2];
    ASSERT(!pipe(p));
    fflush(stdout);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (!pid) {
        dup2(p[1], 1);
        close(p[0]);
        if (how == DLOPEN || how == DLOPEN_CLOSED) {
            void *h = dlopen(vt_tlib("libt_atexit.so"), RTLD_NOW | RTLD_LOCAL);
            if (!h) _exit(3);
            *(int *)dlsym(h, "t_fork_at_fini") = fork_at_fini;
            if (use_at_fini) exit_alive = (void (*)(void))dlsym(h, "t_alive");
            if (how == DLOPEN_CLOSED) dlclose(h);
            exit(0);
        }
        vmc_lib_t *l;
        if (vmc_open(NULL, &exit_v) || vmc_lib_load(exit_v, vt_tlib("libt_atexit.so"), 0, &l)) _exit(3);
        *(int *)vmc_lib_sym(l, "t_fork_at_fini") = fork_at_fini;
        if (use_at_fini) exit_alive = (void (*)(void))vmc_lib_sym(l, "t_alive");
        if (how == PRIVATE_CLOSED) vmc_close(exit_v);
        exit(0);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(p[0], out + n, size - 1 - n)) > 0) n += (size_t)r;
    out[n] = 0;
    close(p[0]);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x: %s", st, out);
}

TEST(exit_without_close_finalises_as_dlopen_does)
{
    char out[256], sys[256];
    exit_child(PRIVATE, 0, 0, out, sizeof out);
    exit_child(DLOPEN, 0, 0, sys, sizeof sys);
    ASSERT_STR_EQ(sys, "constructor\natexit handler\ndestructor\n");   /* atexit handlers, then _dl_fini */
    ASSERT_STR_EQ(out, sys);
    exit_child(PRIVATE_CLOSED, 0, 0, out, sizeof out);
    exit_child(DLOPEN_CLOSED, 0, 0, sys, sizeof sys);
    ASSERT_STR_EQ(sys, "constructor\ndestructor\natexit handler\n");   /* crtbegin's entry runs __cxa_finalize */
    ASSERT_STR_EQ(out, sys);
}

/* A destructor that forks at exit (fork's handlers take the handles' lock,
 * which the exit's finalisation must not hold then), and the program's own
 * destructor using the library before it is finalised (vmcode linked into
 * the program, as this runner has it: its exit hook runs after the
 * program's other destructors). */
TEST(exit_finalisation_lets_destructors_fork_and_the_program_use_its_plugins)
{
    char out[256], sys[256];
    exit_child(PRIVATE, 1, 1, out, sizeof out);
    exit_child(DLOPEN, 1, 1, sys, sizeof sys);
    ASSERT_STR_EQ(sys, "constructor\natexit handler\nalive\ndestructor\nforked\n");
    ASSERT_STR_EQ(out, sys);
}
