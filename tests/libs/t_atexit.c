/* What runs of a private library at the process's exit when nothing
 * unloaded it (tests/test_exit.c): a handler its constructor registered
 * with atexit (__cxa_atexit under the library's __dso_handle, as static C++
 * objects' destructors are) and its own destructor (DT_FINI_ARRAY), each
 * writing a line to descriptor 1. */
#include <stdlib.h>
#include <string.h>
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
__attribute__((destructor)) static void stop(void) { say("destructor\n"); }
