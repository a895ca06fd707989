/* The test runner: each test in its own forked process, with a timeout.
 *
 *   vmc-tests [--list] [--threaded] [-j N] [PATTERN...]
 *
 * PATTERNs select tests whose names contain one of them.  A child's output is
 * collected through a pipe and shown only when the test fails.  The last line
 * is "N passed, N failed, N skipped"; the exit status is 1 on any failure.
 */
#include "test.h"
#include "os/os.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SKIP_STATUS 77
#define DEFAULT_TIMEOUT 120

typedef struct vt_test {
    const char *name;
    void (*fn)(void);
    int signal, timeout, flags;
} vt_test_t;

static vt_test_t *tests;
static int ntests, cap;

void vt_register(const char *name, void (*fn)(void), int signal, int timeout, int flags)
{
    if (ntests == cap) {
        cap = cap ? cap * 2 : 64;
        tests = realloc(tests, (size_t)cap * sizeof *tests);
        if (!tests) abort();
    }
    tests[ntests++] = (vt_test_t){name, fn, signal, timeout, flags};
}

void vt_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stdout);
    fflush(stderr);
    _exit(1);
}

void vt_skip(const char *why)
{
    fprintf(stderr, "%s\n", why);
    fflush(stdout);
    fflush(stderr);
    _exit(SKIP_STATUS);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct vt_buf { char *p; size_t n, cap; } vt_buf_t;

static void buf_add(vt_buf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* 0 pass, 1 fail, 2 skip */
static int run_one(const vt_test_t *t, double scale)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC)) {
        perror("pipe");
        return 1;
    }
    fflush(stdout);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
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
    int timeout_ms = (int)((t->timeout ? t->timeout : DEFAULT_TIMEOUT) * 1000 * scale);
    int timed_out = 0;
    for (;;) {
        int left = timeout_ms - (int)(now_ms() - t0);
        if (left <= 0) {
            timed_out = 1;
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
        if (out.n < (1 << 20)) buf_add(&out, tmp, (size_t)n);
    }
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    kill(-pid, SIGKILL);  /* helpers the test left behind */
    double ms = now_ms() - t0;
    int result;
    char why[128];
    if (timed_out) {
        snprintf(why, sizeof why, "timed out after %d s", timeout_ms / 1000);
        result = 1;
    } else if (WIFSIGNALED(status)) {
        if (t->signal && WTERMSIG(status) == t->signal) result = 0;
        else {
            snprintf(why, sizeof why, "killed by signal %d (%s)", WTERMSIG(status),
                     strsignal(WTERMSIG(status)));
            result = 1;
        }
    } else if (WEXITSTATUS(status) == SKIP_STATUS) {
        result = 2;
    } else if (WEXITSTATUS(status) != 0) {
        snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(status));
        result = 1;
    } else if (t->signal) {
        snprintf(why, sizeof why, "expected signal %d (%s), exited normally", t->signal,
                 strsignal(t->signal));
        result = 1;
    } else {
        result = 0;
    }
    if (result == 0) {
        printf("ok    %-48s %8.1f ms\n", t->name, ms);
    } else if (result == 2) {
        char *nl = out.p ? strchr(out.p, '\n') : NULL;
        if (nl) *nl = 0;
        printf("skip  %-48s %s\n", t->name, out.p ? out.p : "");
    } else {
        printf("FAIL  %-48s %s\n", t->name, why);
        if (out.p) {
            for (char *line = strtok(out.p, "\n"); line; line = strtok(NULL, "\n"))
                printf("      | %s\n", line);
        }
    }
    free(out.p);
    fflush(stdout);
    return result;
}

int main(int argc, char **argv)
{
    int list = 0, threaded = 0;
    const char **pats = calloc((size_t)argc, sizeof *pats);
    int npats = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) list = 1;
        else if (!strcmp(argv[i], "--threaded")) threaded = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: %s [--list] [--threaded] [PATTERN...]\n", argv[0]);
            return 2;
        } else pats[npats++] = argv[i];
    }
    vmc__os_set_audit(1);  /* every MAP_FIXED must land inside a held reservation */
    double scale = 1;
    const char *s = getenv("VMC_TEST_TIMEOUT_SCALE");
    if (s) scale = atof(s) > 0 ? atof(s) : 1;
    if (vt_sanitized()) scale *= 3;
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < ntests; i++) {
        const vt_test_t *t = &tests[i];
        if (threaded && !(t->flags & VT_THREADED)) continue;
        int match = npats == 0;
        for (int j = 0; j < npats && !match; j++) match = strstr(t->name, pats[j]) != NULL;
        if (!match) continue;
        if (list) {
            printf("%s\n", t->name);
            continue;
        }
        switch (run_one(t, scale)) {
        case 0: passed++; break;
        case 1: failed++; break;
        default: skipped++; break;
        }
    }
    free(pats);
    if (list) return 0;
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
