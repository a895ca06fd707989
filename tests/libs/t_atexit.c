/* What runs of a private library at the process's exit when nothing
 * unloaded it (tests/test_exit.c): a handler its constructor registered
 * with atexit (__cxa_atexit under the library's __dso_handle, as static C++
 * objects' destructors are) and its own destructor (DT_FINI_ARRAY), each
 * writing a line to descriptor 1. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *s)
{
    ssize_t r = write(1, s, strlen(s));
    (void)r;
}
static void at_exit(void) { say("atexit handler\n"); }
__attribute__((constructor)) static void start(void)
{
    say("constructor\n");
    atexit(at_exit);
}
/* Set by the test: the destructor forks and waits (fork takes vmcode's
 * locks through its atfork handlers while the exit's finalisation runs). */
int t_fork_at_fini;
static int finalised;
/* The program's own destructor calls this: is the library finalised yet? */
void t_alive(void) { say(finalised ? "used after its destructor\n" : "alive\n"); }
__attribute__((destructor)) static void stop(void)
{
    say("destructor\n");
    finalised = 1;
    if (t_fork_at_fini) {
        pid_t p = fork();
        if (!p) _exit(0);
        int st;
        say(p > 0 && waitpid(p, &st, 0) == p ? "forked\n" : "fork failed\n");
    }
}
