/* The test harness: registration, assertions, and leak snapshots.
 *
 * Each TEST runs in its own forked process with a timeout; its output is shown
 * only when it fails.  A test passes by returning, is skipped with SKIP(), and
 * may instead be declared to die of a signal (TEST_SIGNAL).
 */
#ifndef VMC_TEST_H
#define VMC_TEST_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmcode.h"

enum { VT_THREADED = 1 };   /* runs under ThreadSanitizer in make check-tsan */

void vt_register(const char *name, void (*fn)(void), int signal, int timeout, int flags);
#ifdef __MINGW32__
#define VT_PRINTF gnu_printf   /* MinGW's C99 printf, as src/base/error.h says */
#else
#define VT_PRINTF printf
#endif
_Noreturn void vt_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(VT_PRINTF, 3, 4)));
_Noreturn void vt_skip(const char *why);

#define VT_REG(name, sig, tmo, fl)                                                         \
    static void test_##name(void);                                                         \
    __attribute__((constructor)) static void vt_reg_##name(void)                           \
    {                                                                                      \
        vt_register(#name, test_##name, sig, tmo, fl);                                     \
    }                                                                                      \
    static void test_##name(void)

#define TEST(name) VT_REG(name, 0, 0, 0)
#define TEST_SIGNAL(name, sig) VT_REG(name, sig, 0, 0)
#define TEST_THREADED(name) VT_REG(name, 0, 0, VT_THREADED)
#define TEST_TIMEOUT(name, secs) VT_REG(name, 0, secs, 0)

#define SKIP(why) vt_skip(why)

#define ASSERT(cond)                                                                       \
    do {                                                                                   \
        if (!(cond)) vt_fail(__FILE__, __LINE__, "ASSERT(%s) failed", #cond);               \
    } while (0)

#define ASSERT_MSG(cond, ...)                                                              \
    do {                                                                                   \
        if (!(cond)) vt_fail(__FILE__, __LINE__, __VA_ARGS__);                             \
    } while (0)

#define VT_CMP(a, op, b)                                                                   \
    do {                                                                                   \
        long long vt_a = (long long)(a), vt_b = (long long)(b);                            \
        if (!(vt_a op vt_b))                                                               \
            vt_fail(__FILE__, __LINE__, "%s %s %s failed: %lld (%#llx) vs %lld (%#llx)", #a,  \
                    #op, #b, vt_a, (unsigned long long)vt_a, vt_b, (unsigned long long)vt_b); \
    } while (0)

#define ASSERT_EQ(a, b) VT_CMP(a, ==, b)
#define ASSERT_NE(a, b) VT_CMP(a, !=, b)
#define ASSERT_LT(a, b) VT_CMP(a, <, b)
#define ASSERT_LE(a, b) VT_CMP(a, <=, b)
#define ASSERT_GT(a, b) VT_CMP(a, >, b)
#define ASSERT_GE(a, b) VT_CMP(a, >=, b)

/* A vmcode call that must succeed: prints the error text if not. */
#define ASSERT_OK(expr)                                                                    \
    do {                                                                                   \
        int vt_r = (expr);                                                                 \
        if (vt_r != 0)                                                                     \
            vt_fail(__FILE__, __LINE__, "%s = %d (%s): %s", #expr, vt_r, vmc_strerror(vt_r), \
                    vmc_last_error());                                                     \
    } while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                                                   \
    do {                                                                                   \
        const char *vt_h = (hay), *vt_n = (needle);                                        \
        if (!vt_h || !strstr(vt_h, vt_n))                                                  \
            vt_fail(__FILE__, __LINE__, "'%s' does not contain '%s'", vt_h ? vt_h : "(null)", \
                    vt_n);                                                                 \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                \
    do {                                                                                   \
        const char *vt_x = (a), *vt_y = (b);                                               \
        if (!vt_x || !vt_y || strcmp(vt_x, vt_y))                                          \
            vt_fail(__FILE__, __LINE__, "\"%s\" != \"%s\"", vt_x ? vt_x : "(null)",        \
                    vt_y ? vt_y : "(null)");                                               \
    } while (0)

/* xorshift64: fixed seeds, the same sequence every run. */
static inline uint64_t vt_xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- process-state snapshots: nothing leaked ------------------------------ */
typedef struct vt_snapshot {
    char *maps;      /* /proc/self/maps, the [heap] line's size left out */
    char *fds;       /* the open descriptors, space separated           */
} vt_snapshot_t;

void vt_snap(vt_snapshot_t *s);
/* Fails the test, showing the difference, if the process now differs. */
void vt_snap_same(vt_snapshot_t *s, const char *file, int line);
#define ASSERT_NO_LEAK(snap) vt_snap_same(&(snap), __FILE__, __LINE__)
void vt_snap_free(vt_snapshot_t *s);

/* Lines of /proc/self/maps (caller frees); count of lines matching `needle`. */
char *vt_read_file(const char *path);
int vt_maps_count(const char *needle);
int vt_rwx_count(void);
/* Windows only (tests/windows/util.c): how many free pieces of address space
 * lie in [base, base+len): 0 for a region that holds all of its range. */
int vt_free_pieces(uintptr_t base, size_t len);
/* Windows only: the stack as a debugger or a crash reporter walks it from
 * `context` (a CONTEXT from RtlCaptureContext): RtlLookupFunctionEntry, a
 * frame without an entry taken for a leaf, RtlVirtualUnwind; each frame's
 * Rip into out[], up to max frames or the thread's stack's end.  The count. */
int vt_walk_stack(void *context, uintptr_t *out, int max);
/* Is [lo, hi) mapped with exactly these perms ("---p") as one line? */
int vt_maps_has(uintptr_t lo, uintptr_t hi, const char *perms);
size_t vt_rss_kib(void);   /* anonymous + shared memory (memory files) */
/* vmc_open with option text, which must work (the test fails otherwise). */
struct vmc *vt_open(const char *options);

/* vmc_open(options) in a child process under RLIMIT_AS = limit; if it
 * opened, one allocation of each kind, code written and called. */
typedef struct vt_limited {
    int r;                      /* vmc_open's result; -9999: the child died */
    vmc_info_t in;              /* when r == 0                              */
    int alloc_ok;               /* the allocations and the call worked      */
    size_t vm_before_kib;       /* the child's VmSize before the limit      */
    char msg[256];              /* vmc_last_error() after vmc_open          */
} vt_limited_t;
vt_limited_t vt_open_limited(unsigned long limit, const char *options);

/* The build directory (VMC_TEST_BUILD), for helper binaries and libraries. */
const char *vt_build_dir(void);
/* The source tree (VMC_TEST_SRC, "." without it): a file of it, in a static
 * buffer that the next call reuses. */
const char *vt_src_path(const char *rel);
/* BUILD/tests/libs/NAME, asserted to exist (the test libraries); the last
 * eight results stay valid. */
const char *vt_tlib(const char *name);
/* Wait until path's last change is old enough for what a load reads of it
 * to be kept (vmc__os_file_settled). */
void vt_wait_settled(const char *path);
/* Does p lie in v's code region? */
int vt_in_code_region(vmc_t *v, const void *p);
/* 1 if running under a sanitizer that reserves huge shadow memory. */
int vt_sanitized(void);

#endif
