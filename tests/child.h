/* Running one test in a process of its own (runner.c's half that differs per
 * system: child_fork.c forks, windows/child_process.c starts the runner again
 * with --run-one NAME). */
#ifndef VMC_TEST_CHILD_H
#define VMC_TEST_CHILD_H
#include <stddef.h>

typedef struct vt_test {
    const char *name;
    void (*fn)(void);
    int signal, timeout, flags;
} vt_test_t;

typedef struct vt_outcome {
    int timed_out;
    int signal;          /* the signal it died of (on Windows: the exception as one), or 0 */
    int status;          /* exit status when it exited                                     */
    char *out;           /* stdout and stderr, NUL terminated (caller frees), or NULL     */
    double ms;
} vt_outcome_t;

#define VT_SKIP_STATUS 77

/* Run t in a child with a timeout; 0, or -1 if no child could be started
 * (the reason printed). */
int vt_child_run(const vt_test_t *t, const char *argv0, int timeout_ms, vt_outcome_t *o);
const char *vt_signal_name(int sig);
/* In the child, before the test runs (--run-one where there is no fork). */
void vt_child_enter(const vt_test_t *t);
double vt_now_ms(void);

/* Output capture shared by both: append, capped at 1 MiB. */
typedef struct vt_buf { char *p; size_t n, cap; } vt_buf_t;
void vt_buf_add(vt_buf_t *b, const char *s, size_t n);
#endif
