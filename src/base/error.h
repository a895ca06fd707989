/* Errors: every failure returns a negative errno and records, per thread, a
 * sentence saying what failed, on which file/field/offset, and why. */
#ifndef VMC_ERROR_H
#define VMC_ERROR_H

/* MinGW's GCC checks "printf" formats against Microsoft's printf (no %zu);
 * the Windows build formats with MinGW's own C99 printf
 * (__USE_MINGW_ANSI_STDIO=1), which is gnu_printf there. */
#if defined(__MINGW32__)
#define VMC_PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))
#elif defined(__GNUC__)
#define VMC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VMC_PRINTF(a, b)
#endif

/* A failure is the rare path: the compiler moves the code that leads to
 * one out of the functions' hot parts (into .text.unlikely), so the code a
 * load runs is dense, and a process's first load fetches fewer cold cache
 * lines and pages of it. */
#if defined(__GNUC__)
#define VMC_COLD __attribute__((cold))
#else
#define VMC_COLD
#endif

/* Records the message and returns err (a negative errno), so callers can
 * write `return vmc__fail(-EINVAL, "...")`. */
int vmc__fail(int err, const char *fmt, ...) VMC_PRINTF(2, 3) VMC_COLD;
/* Prefixes the current message with more context: "ctx: old message". */
int vmc__fail_wrap(int err, const char *fmt, ...) VMC_PRINTF(2, 3) VMC_COLD;
void vmc__clear_error(void);
/* For cleanup after a failure: keep the message of the failure itself
 * while the cleanup's own calls run, then add what the cleanup could not do. */
#define VMC_ERROR_MAX 512
void vmc__error_save(char buf[VMC_ERROR_MAX]);
int  vmc__error_restore(int err, const char saved[VMC_ERROR_MAX], const char *also);

#endif
