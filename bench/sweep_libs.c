/* sweep_libs: the loader's coverage of a whole system.  Each library named
 * on standard input is loaded twice, each time in a fresh child process:
 * privately (vmc_open, vmc_lib_load with its constructors, unload,
 * vmc_close) and with dlopen(RTLD_NOW | RTLD_LOCAL) + dlclose.  One line per
 * library says both outcomes; the last lines count them and group the
 * private refusals of libraries dlopen loads by their errno.
 * docs/loader.md quotes one run.
 *
 *   cc -std=c11 -O2 -D_GNU_SOURCE -Iinclude bench/sweep_libs.c build/libvmcode.a \
 *      -ldl -lpthread -o build/sweep_libs
 *   find /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu -maxdepth 1 -name '*.so*' -type f \
 *      | sort -u | grep -v -E 'lib(a|t|l|ub|hwa)san|grpc|protobuf|protoc' | build/sweep_libs
 *
 * With --inert the private loads use VMC_LOAD_INERT (nothing run); with
 * --one-process every private load runs one after another in this process
 * (no dlopen column), the robustness check the loader had first.
 * A child gets 20 seconds; one that crashes or hangs counts as refused.
 */
#include "vmcode.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 1024

/* Run one load in a child; its status and message come back through a pipe.
 * Returns 0 (loaded), a negative errno, or 1 (the child died: msg says how). */
static int in_child(const char *path, int flags, int private_load, char *msg)
{
    int p[2];
    msg[0] = 0;
    if (pipe(p)) {
        snprintf(msg, MSG, "pipe: %s", strerror(errno));
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(msg, MSG, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return 1;
    }
    if (pid == 0) {
        close(p[0]);
        alarm(20);
        /* the libraries' own output would mix with the report */
        if (!freopen("/dev/null", "w", stdout)) _exit(2);
        int r = 0;
        char m[MSG] = "";
        if (private_load) {
            vmc_t *v;
            vmc_lib_t *l;
            if ((r = vmc_open(NULL, &v)) == 0) {
                if ((r = vmc_lib_load(v, path, flags, &l)) == 0) vmc_lib_unload(l);
                vmc_close(v);
            }
            if (r) snprintf(m, sizeof m, "%s", vmc_last_error());
        } else {
            void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
            if (h) dlclose(h);
            else {
                r = -1;
                snprintf(m, sizeof m, "%s", dlerror());
            }
        }
        if (write(p[1], &r, sizeof r) != sizeof r || write(p[1], m, strlen(m) + 1) < 0) _exit(3);
        _exit(0);
    }
    close(p[1]);
    int r = 1;
    ssize_t n = read(p[0], &r, sizeof r);
    if (n == (ssize_t)sizeof r) {
        ssize_t got = 0, k;
        while (got < MSG - 1 && (k = read(p[0], msg + got, (size_t)(MSG - 1 - got))) > 0) got += k;
        msg[got] = 0;
    } else {
        r = 1;
    }
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(st) && r != 0) {
        r = 1;
        snprintf(msg, MSG, "child killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    } else if (n != (ssize_t)sizeof r) {
        r = 1;
        snprintf(msg, MSG, "child died (status 0x%x)", st);
    }
    return r;
}

static int one_process(int flags)
{
    vmc_t *v;
    if (vmc_open(NULL, &v)) {
        fprintf(stderr, "sweep_libs: vmc_open: %s\n", vmc_last_error());
        return 1;
    }
    char line[4096];
    int ok = 0, refused = 0;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) continue;
        vmc_lib_t *l;
        int r = vmc_lib_load(v, line, flags, &l);
        if (r == 0) {
            ok++;
            vmc_lib_unload(l);
            printf("OK %s\n", line);
        } else {
            refused++;
            printf("ERR %d %s\n", r, vmc_last_error());
        }
        fflush(stdout);
    }
    printf("%d loaded and unloaded, %d refused\n", ok, refused);
    vmc_close(v);
    return 0;
}

int main(int argc, char **argv)
{
    int flags = 0, one = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--inert")) flags |= VMC_LOAD_INERT;
        else if (!strcmp(argv[i], "--one-process")) one = 1;
        else {
            fprintf(stderr, "usage: sweep_libs [--inert] [--one-process] < list-of-paths\n");
            return 2;
        }
    }
    if (one) return one_process(flags);
    char line[4096], pmsg[MSG], dmsg[MSG];
    int total = 0, both = 0, only_private = 0, only_dlopen = 0, neither = 0;
    int by_errno[256] = {0};
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) continue;
        total++;
        int p = in_child(line, flags, 1, pmsg);
        int d = in_child(line, flags, 0, dmsg);
        if (!p && !d) both++;
        else if (!p) only_private++;
        else if (!d) only_dlopen++;
        else neither++;
        if (p && !d) by_errno[p < 0 && p > -256 ? -p : 0]++;
        printf("%s private=%s dlopen=%s\n", line, p == 0 ? "OK" : p < 0 ? strerrorname_np(-p) : "DIED",
               d == 0 ? "OK" : "ERR");
        if (p) printf("  private: %s\n", pmsg);
        if (d) printf("  dlopen: %s\n", dmsg);
        fflush(stdout);
    }
    printf("%d libraries: private %d, dlopen %d (both %d, private only %d, dlopen only %d, neither %d)\n",
           total, both + only_private, both + only_dlopen, both, only_private, only_dlopen, neither);
    for (int e = 0; e < 256; e++)
        if (by_errno[e])
            printf("  dlopen only, private refused with %s: %d\n", e ? strerrorname_np(e) : "a crash or hang",
                   by_errno[e]);
    return 0;
}
