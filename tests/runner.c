/* The test runner: each test in its own process, with a timeout (forked on
 * Linux, child_fork.c; a fresh process running --run-one NAME on Windows,
 * windows/child_process.c).
 *
 *   vmc-tests [--list] [--threaded] [-j N] [PATTERN...]
 *
 * PATTERNs select tests whose names contain one of them.  A child's output is
 * collected through a pipe and shown only when the test fails.  The last line
 * is "N passed, N failed, N skipped"; the exit status is 1 on any failure.
 */
#include "test.h"
#include "os/os.h"

#include "child.h"

#include <stdarg.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT 120

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
    _exit(VT_SKIP_STATUS);
}

void vt_buf_add(vt_buf_t *b, const char *s, size_t n)
{
    if (b->n >= (1 << 20)) return;
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
static int run_one(const vt_test_t *t, const char *argv0, double scale)
{
    fflush(stdout);
    vt_outcome_t o = {0};
    int timeout_ms = (int)((t->timeout ? t->timeout : DEFAULT_TIMEOUT) * 1000 * scale);
    if (vt_child_run(t, argv0, timeout_ms, &o)) return 1;
    int result;
    char why[128];
    if (o.timed_out) {
        snprintf(why, sizeof why, "timed out after %d s", timeout_ms / 1000);
        result = 1;
    } else if (o.signal) {
        if (t->signal && o.signal == t->signal) result = 0;
        else {
            snprintf(why, sizeof why, "killed by signal %d (%s)", o.signal, vt_signal_name(o.signal));
            result = 1;
        }
    } else if (o.status == VT_SKIP_STATUS) {
        result = 2;
    } else if (o.status != 0) {
        snprintf(why, sizeof why, "exit status %d", o.status);
        result = 1;
    } else if (t->signal) {
        snprintf(why, sizeof why, "expected signal %d (%s), exited normally", t->signal,
                 vt_signal_name(t->signal));
        result = 1;
    } else {
        result = 0;
    }
    if (result == 0) {
        printf("ok    %-48s %8.1f ms\n", t->name, o.ms);
    } else if (result == 2) {
        char *nl = o.out ? strchr(o.out, '\n') : NULL;
        if (nl) *nl = 0;
        printf("skip  %-48s %s\n", t->name, o.out ? o.out : "");
    } else {
        printf("FAIL  %-48s %s\n", t->name, why);
        if (o.out) {
            for (char *line = strtok(o.out, "\n"); line; line = strtok(NULL, "\n"))
                printf("      | %s\n", line);
        }
    }
    free(o.out);
    fflush(stdout);
    return result;
}

/* The child side where there is no fork: run one test in this process. */
static int run_here(const char *name)
{
    for (int i = 0; i < ntests; i++) {
        if (strcmp(tests[i].name, name)) continue;
        vt_child_enter(&tests[i]);
        tests[i].fn();
        fflush(stdout);
        fflush(stderr);
        _exit(0);
    }
    fprintf(stderr, "no test named %s\n", name);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--run-one")) {
        vmc__os_set_audit(1);
        return run_here(argv[2]);
    }
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
        switch (run_one(t, argv[0], scale)) {
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
