/* The helpers of test.h that the Windows tests use (tests/util.c holds the
 * Linux ones, which read /proc). */
#include "test.h"

#include <windows.h>

int vt_sanitized(void) { return 0; }   /* MinGW has no sanitizers */

const char *vt_build_dir(void)
{
    const char *b = getenv("VMC_TEST_BUILD");
    return b ? b : "build/windows";
}

/* As on Linux; an option set this system does not support (-w_xor_x in the
 * slot fallback) skips the test instead of failing it. */
vmc_t *vt_open(const char *options)
{
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, options));
    vmc_t *v = NULL;
    int e = vmc_open(&o, &v);
    if (e == -ENOTSUP) SKIP(vmc_last_error());
    ASSERT_OK(e);
    return v;
}

int vt_walk_stack(void *context, uintptr_t *out, int max)
{
    CONTEXT *c = context;
    ULONG_PTR lo, hi;
    GetCurrentThreadStackLimits(&lo, &hi);
    int n = 0;
    while (n < max && c->Rip && c->Rsp >= lo && c->Rsp < hi) {
        out[n++] = c->Rip;
        DWORD64 ib;
        PRUNTIME_FUNCTION f = RtlLookupFunctionEntry(c->Rip, &ib, NULL);
        if (!f) {   /* a leaf: the return address at rsp */
            c->Rip = *(DWORD64 *)c->Rsp;
            c->Rsp += 8;
            continue;
        }
        void *hd;
        DWORD64 est;
        RtlVirtualUnwind(UNW_FLAG_NHANDLER, ib, c->Rip, f, c, &hd, &est, NULL);
    }
    return n;
}

int vt_free_pieces(uintptr_t base, size_t len)
{
    int fr = 0;
    for (uintptr_t a = base; a < base + len;) {
        MEMORY_BASIC_INFORMATION m;
        if (!VirtualQuery((void *)a, &m, sizeof m)) break;
        if (m.State == MEM_FREE) fr++;
        a = (uintptr_t)m.BaseAddress + m.RegionSize;
    }
    return fr;
}

/* Committed memory anywhere in the process that is writable and executable. */
int vt_rwx_count(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    int n = 0;
    for (uintptr_t a = (uintptr_t)si.lpMinimumApplicationAddress;
         a < (uintptr_t)si.lpMaximumApplicationAddress;) {
        MEMORY_BASIC_INFORMATION m;
        if (!VirtualQuery((void *)a, &m, sizeof m)) break;
        DWORD p = m.Protect & 0xff;
        if (m.State == MEM_COMMIT && (p == PAGE_EXECUTE_READWRITE || p == PAGE_EXECUTE_WRITECOPY)) n++;
        a = (uintptr_t)m.BaseAddress + m.RegionSize;
    }
    return n;
}
