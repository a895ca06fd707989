/* One test in a forked child (see child.h): output through a pipe, a
 * timeout enforced with poll, the child's process group killed afterwards
 * (helpers the test left behind). */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double vt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

const char *vt_signal_name(int sig) { return strsignal(sig); }

void vt_child_enter(const vt_test_t *t) { (void)t; }   /* the forked child set itself up */

int vt_child_run(const vt_test_t *t, const char *argv0, int timeout_ms, vt_outcome_t *o)
{
    (void)argv0;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC)) {
        perror("pipe");
        return -1;
    }
    double t0 = vt_now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        setpgid(0, 0);
        /* The test expects to die of this signal: take back any handler a
         * sanitizer installed, which would turn it into an exit status. */
        if (t->signal) signal(t->signal, SIG_DFL);
        t->fn();
        fflush(stdout);
        fflush(stderr);
        _exit(0);
    }
    close(pfd[1]);
    vt_buf_t out = {0};
    for (;;) {
        int left = timeout_ms - (int)(vt_now_ms() - t0);
        if (left <= 0) {
            o->timed_out = 1;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd p = {pfd[0], POLLIN, 0};
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        char tmp[4096];
        ssize_t n = read(pfd[0], tmp, sizeof tmp);
        if (n <= 0) break;
        vt_buf_add(&out, tmp, (size_t)n);
    }
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    kill(-pid, SIGKILL);  /* helpers the test left behind */
    o->ms = vt_now_ms() - t0;
    o->out = out.p;
    if (WIFSIGNALED(status)) o->signal = WTERMSIG(status);
    else o->status = WEXITSTATUS(status);
    return 0;
}
