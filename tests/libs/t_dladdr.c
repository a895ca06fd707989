/* A plug-in asking the C library's introspection functions about itself
 * and about other code: dladdr, dladdr1, backtrace_symbols and
 * backtrace_symbols_fd, as a plug-in finding its own path or a crash
 * handler printing its stack calls them. */
#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <stddef.h>

int t_dl_data[8];

/* Where is this library?  (Its own function, as plug-ins ask it.) */
const char *t_dl_self_path(void)
{
    Dl_info di;
    return dladdr((void *)t_dl_self_path, &di) ? di.dli_fname : NULL;
}

int t_dl_addr(const void *a, Dl_info *out) { return dladdr(a, out); }

int t_dl_addr1(const void *a, Dl_info *out, void **extra, int flags) { return dladdr1(a, out, extra, flags); }

__attribute__((noinline)) static char **inner(void **buf, int max, int *n)
{
    *n = backtrace(buf, max);
    char **s = backtrace_symbols(buf, *n);
    __asm__ volatile("" ::: "memory");  /* not a tail call: this frame stays */
    return s;
}

/* This thread's stack, named (the caller frees the array). */
__attribute__((noinline)) char **t_dl_stack(void **buf, int max, int *n)
{
    char **s = inner(buf, max, n);
    __asm__ volatile("" ::: "memory");
    return s;
}

char **t_dl_symbols(void *const *buf, int n) { return backtrace_symbols(buf, n); }

void t_dl_symbols_fd(void *const *buf, int n, int fd) { backtrace_symbols_fd(buf, n, fd); }
