/* A private library still loaded when the process exits (exit(), no
 * vmc_lib_unload, no vmc_close): glibc runs every handler registered with
 * atexit/__cxa_atexit, the library's too (its memory is still mapped), but
 * its DT_FINI_ARRAY and DT_FINI run only at its unload, which exit does not
 * do (glibc's own finalisation knows only the objects it loaded).  With
 * vmc_close before exit everything runs, once.  docs/loader.md, "At the
 * process's exit". */
#include "test.h"

#include <sys/wait.h>
#include <unistd.h>

/* The child's output: it loads the library, closes the handle if asked,
 * and calls exit(0).  The handle in a static, so that a leak checker at
 * exit sees it reachable. */
static vmc_t *exit_v;

static void exit_child(int close_first, char *out, size_t size)
{
    int p[2];
    ASSERT(!pipe(p));
    fflush(stdout);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (!pid) {
        dup2(p[1], 1);
        close(p[0]);
        vmc_lib_t *l;
        if (vmc_open(NULL, &exit_v) || vmc_lib_load(exit_v, vt_tlib("libt_atexit.so"), 0, &l)) _exit(3);
        if (close_first) vmc_close(exit_v);
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

TEST(exit_without_close_runs_atexit_handlers_not_fini_array)
{
    char out[256];
    exit_child(0, out, sizeof out);
    ASSERT_STR_EQ(out, "constructor\natexit handler\n");
    exit_child(1, out, sizeof out);
    ASSERT_STR_EQ(out, "constructor\ndestructor\natexit handler\n");   /* DT_FINI_ARRAY, whose crtbegin entry runs __cxa_finalize */
}
