/* Windows: unwinding through generated code.  Functions written into the
 * code region are described with vmc_unwind_add (RUNTIME_FUNCTION entries,
 * offsets from the region's base), then: the system's look-up finds them
 * (RtlLookupFunctionEntry, with the region's base as image base), a stack
 * walk with RtlVirtualUnwind goes through a generated frame to its caller
 * (and loses it without the table), a C++ exception thrown by a callee
 * passes through a generated frame to the C++ caller that catches it, and an
 * SEH exception passes through one generated frame to a generated frame
 * whose handler (a C function, reached through vmc_stub) unwinds to it.
 * Removal, vmc_close, refusals, a failed registration, and Arbitrary Code
 * Guard refused by vmc_open (simulated: Wine does not enforce it). */
#include "test.h"
#include "os/os.h"

#include <windows.h>

/* mid(fn): push rbx; sub rsp, 32; call rcx; nop; add rsp, 32; pop rbx; ret.
 * The nop after the call, as compilers emit it: a return address right at
 * an epilog makes the unwinder take the frame for one leaving already, and
 * it then calls no handler of it. */
static const unsigned char mid_code[] = {0x53, 0x48, 0x83, 0xec, 0x20, 0xff, 0xd1, 0x90,
                                         0x48, 0x83, 0xc4, 0x20, 0x5b, 0xc3};
/* guard(fn, arg): push rbx; sub rsp, 32; mov rax, rcx; mov rcx, rdx; call rax;
 * resume: nop; add rsp, 32; pop rbx; ret */
static const unsigned char guard_code[] = {0x53, 0x48, 0x83, 0xec, 0x20, 0x48, 0x89, 0xc8, 0x48, 0x89,
                                           0xd1, 0xff, 0xd0, 0x90, 0x48, 0x83, 0xc4, 0x20, 0x5b, 0xc3};
#define GUARD_RESUME 13
/* UNWIND_INFO of both prologs: version 1, prolog 5 bytes, 2 codes: at 5
 * UWOP_ALLOC_SMALL 32 bytes, at 1 UWOP_PUSH_NONVOL rbx.  Flags in byte 0. */
static const unsigned char prolog_info[] = {0x01, 0x05, 0x02, 0x00, 0x05, 0x32, 0x01, 0x30};

#define MID 0x00
#define MID_INFO 0x20
#define GUARD 0x40
#define GUARD_INFO 0x60   /* + the handler's offset: 12 bytes */

typedef struct jit {
    vmc_t *v;
    vmc_span_t s;
    uintptr_t base;          /* the code region's */
    int (*mid)(int (*)(void));
    int (*guard)(void *, void *);
} jit_t;

static const char *jit_options = "-vm_size 256M -vmheap_size 0";

static void jit_make(jit_t *j, uintptr_t handler)
{
    j->v = vt_open(jit_options);   /* skips where an option is not supported */
    vmc_info_t in;
    ASSERT_OK(vmc_info(j->v, &in));
    j->base = (uintptr_t)in.code_base;
    ASSERT_OK(vmc_alloc(j->v, 256, VMC_CODE, &j->s));
    unsigned char *w = j->s.w;
    memcpy(w + MID, mid_code, sizeof mid_code);
    memcpy(w + MID_INFO, prolog_info, sizeof prolog_info);
    memcpy(w + GUARD, guard_code, sizeof guard_code);
    memcpy(w + GUARD_INFO, prolog_info, sizeof prolog_info);
    if (handler) {
        w[GUARD_INFO] = 0x01 | 1 << 3;   /* UNW_FLAG_EHANDLER */
        void *stub;
        ASSERT_OK(vmc_stub(j->v, handler, &stub));
        uint32_t rva = (uint32_t)((uintptr_t)stub - j->base);
        memcpy(w + GUARD_INFO + 8, &rva, 4);
    }
    FlushInstructionCache(GetCurrentProcess(), j->s.x, 256);
    *(void **)&j->mid = (char *)j->s.x + MID;
    *(void **)&j->guard = (char *)j->s.x + GUARD;
}

static uint32_t off(const jit_t *j, int at) { return (uint32_t)((uintptr_t)j->s.x + at - j->base); }

static void jit_describe(jit_t *j)
{
    vmc_unwind_entry_t e[2] = {
        {off(j, GUARD), off(j, GUARD) + sizeof guard_code, off(j, GUARD_INFO)},   /* any order */
        {off(j, MID), off(j, MID) + sizeof mid_code, off(j, MID_INFO)},
    };
    ASSERT_OK(vmc_unwind_add(j->v, e, 2));
}

/* A DLL copied into the region registers its own .pdata with its own image
 * base (RtlAddFunctionTable); tables of generated code beside it keep the
 * region's base, and each look-up finds its own (no table's range covers
 * another's). */
TEST(win_unwind_tables_beside_a_dll_table)
{
    jit_t j;
    jit_make(&j, 0);
    jit_describe(&j);
    /* A stand-in for a DLL's image: a large allocation, its own base. */
    vmc_span_t img;
    ASSERT_OK(vmc_alloc(j.v, 1 << 20, VMC_CODE, &img));
    memcpy((char *)img.w + 0x1000, mid_code, sizeof mid_code);
    memcpy((char *)img.w + 0x2000, prolog_info, sizeof prolog_info);
    static RUNTIME_FUNCTION pdata[1];
    pdata[0].BeginAddress = 0x1000;
    pdata[0].EndAddress = 0x1000 + sizeof mid_code;
    pdata[0].UnwindData = 0x2000;
    ASSERT(RtlAddFunctionTable(pdata, 1, (DWORD64)(uintptr_t)img.x));
    DWORD64 ib;
    PRUNTIME_FUNCTION f = RtlLookupFunctionEntry((uintptr_t)img.x + 0x1006, &ib, NULL);
    ASSERT(f == pdata);
    ASSERT_EQ(ib, (uintptr_t)img.x);
    f = RtlLookupFunctionEntry((uintptr_t)j.s.x + MID + 6, &ib, NULL);
    ASSERT(f && f->BeginAddress == off(&j, MID));
    ASSERT_EQ(ib, j.base);
    ASSERT(RtlDeleteFunctionTable(pdata));
    vmc_close(j.v);
}

/* ---- the stack walk ------------------------------------------------------------- */

static uintptr_t walked[16];
static int nwalked;

/* Walks its own stack as a debugger or a crash reporter would. */
static __attribute__((noinline)) int walker(void)
{
    CONTEXT c;
    RtlCaptureContext(&c);
    nwalked = vt_walk_stack(&c, walked, 16);
    return 5;
}

/* The caller of the generated frame: its own function entry is how the
 * walk is recognised to have reached it. */
static __attribute__((noinline)) int call_mid(jit_t *j)
{
    int r = j->mid(walker);
    __asm__ volatile("" ::: "memory");   /* not a tail call */
    return r + 1;
}

static int in_span(uintptr_t pc, const vmc_span_t *s, int at, size_t len)
{
    return pc >= (uintptr_t)s->x + at && pc < (uintptr_t)s->x + at + len;
}

/* The pc the walk found after the generated frame's, or 0. */
static uintptr_t after_mid(const jit_t *j)
{
    for (int i = 0; i + 1 < nwalked; i++)
        if (in_span(walked[i], &j->s, MID, sizeof mid_code)) return walked[i + 1];
    return 0;
}

TEST(win_unwind_lookup_finds_the_entry)
{
    jit_t j;
    jit_make(&j, 0);
    DWORD64 ib = 0;
    ASSERT(!RtlLookupFunctionEntry((uintptr_t)j.s.x + MID + 6, &ib, NULL));   /* not yet described */
    jit_describe(&j);
    PRUNTIME_FUNCTION f = RtlLookupFunctionEntry((uintptr_t)j.s.x + MID + 6, &ib, NULL);
    ASSERT(f);
    ASSERT_EQ(ib, j.base);
    ASSERT_EQ(f->BeginAddress, off(&j, MID));
    ASSERT_EQ(f->EndAddress, off(&j, MID) + sizeof mid_code);
    ASSERT_EQ(f->UnwindData, off(&j, MID_INFO));
    f = RtlLookupFunctionEntry((uintptr_t)j.s.x + GUARD, &ib, NULL);
    ASSERT(f);
    ASSERT_EQ(f->BeginAddress, off(&j, GUARD));
    /* Between the functions: nothing. */
    ASSERT(!RtlLookupFunctionEntry((uintptr_t)j.s.x + MID_INFO, &ib, NULL));
    /* Removed: not found any more; the handle can describe it again. */
    ASSERT_OK(vmc_unwind_remove(j.v, j.s.x, j.s.size));
    ASSERT(!RtlLookupFunctionEntry((uintptr_t)j.s.x + MID + 6, &ib, NULL));
    jit_describe(&j);
    ASSERT(RtlLookupFunctionEntry((uintptr_t)j.s.x + MID + 6, &ib, NULL));
    /* vmc_close hands the table back. */
    uintptr_t pc = (uintptr_t)j.s.x + MID + 6;
    vmc_close(j.v);
    ASSERT(!RtlLookupFunctionEntry(pc, &ib, NULL));
}

TEST(win_unwind_stack_walk_goes_through_a_generated_frame)
{
    jit_t j;
    jit_make(&j, 0);
    DWORD64 ib;
    PRUNTIME_FUNCTION caller = RtlLookupFunctionEntry((uintptr_t)call_mid, &ib, NULL);
    ASSERT(caller);
    /* Without a description the frame is taken for a leaf: the walk reads
     * the frame's own stack as the return address and loses the caller. */
    ASSERT_EQ(call_mid(&j), 6);
    uintptr_t next = after_mid(&j);
    ASSERT_MSG(next, "the walk did not see the generated frame (%d frames)", nwalked);
    DWORD64 ib2;
    ASSERT(RtlLookupFunctionEntry(next, &ib2, NULL) != caller);
    /* Described: the next frame is call_mid's. */
    jit_describe(&j);
    ASSERT_EQ(call_mid(&j), 6);
    next = after_mid(&j);
    ASSERT(next);
    ASSERT(RtlLookupFunctionEntry(next, &ib2, NULL) == caller);
    vmc_close(j.v);
}

/* ---- exceptions ------------------------------------------------------------------ */

int vt_cxx_catch_through(int (*jit)(int (*)(void)), int (*callee)(void));   /* cxx_through.cc */
int vt_cxx_throw_42(void);

/* What the table changes for an exception's path, asserted before the
 * throw: the look-up finds the entry and a walk through the frame reaches
 * its caller (without the table it loses it).  Without the table the throw
 * itself is not tried: Windows leaves it undefined, and Wine, taking
 * frame after frame for a leaf, pops stack slots until one holds an address
 * of described code, so whether it is caught depends on what lies in the
 * frame (README: Windows). */
static void table_changes_the_walk(jit_t *j)
{
    DWORD64 ib;
    PRUNTIME_FUNCTION caller = RtlLookupFunctionEntry((uintptr_t)call_mid, &ib, NULL);
    ASSERT(caller);
    ASSERT(!RtlLookupFunctionEntry((uintptr_t)j->s.x + MID + 6, &ib, NULL));
    ASSERT_EQ(call_mid(j), 6);
    uintptr_t next = after_mid(j);
    ASSERT_MSG(next, "the walk did not see the generated frame (%d frames)", nwalked);
    ASSERT(RtlLookupFunctionEntry(next, &ib, NULL) != caller);
    jit_describe(j);
    PRUNTIME_FUNCTION f = RtlLookupFunctionEntry((uintptr_t)j->s.x + MID + 6, &ib, NULL);
    ASSERT(f && f->BeginAddress == off(j, MID));
    ASSERT_EQ(ib, j->base);
    ASSERT_EQ(call_mid(j), 6);
    next = after_mid(j);
    ASSERT(next && RtlLookupFunctionEntry(next, &ib, NULL) == caller);
}

TEST(win_unwind_cxx_exception_passes_a_generated_frame)
{
    jit_t j;
    jit_make(&j, 0);
    table_changes_the_walk(&j);
    ASSERT_EQ(vt_cxx_catch_through(j.mid, vt_cxx_throw_42), 42);
    ASSERT_EQ(vt_cxx_catch_through(j.mid, vt_cxx_throw_42), 42);   /* and again */
    vmc_close(j.v);
}

/* Under W^X the code and its UNWIND_INFO are written through the writable
 * view and read by the system through the executable one. */
TEST(win_unwind_exceptions_under_w_xor_x)
{
    jit_options = "-vm_size 256M -vmheap_size 0 -w_xor_x";
    jit_t j;
    jit_make(&j, 0);
    ASSERT_NE((uintptr_t)j.s.w, (uintptr_t)j.s.x);
    table_changes_the_walk(&j);
    ASSERT_EQ(vt_cxx_catch_through(j.mid, vt_cxx_throw_42), 42);
    vmc_close(j.v);
}

/* Threads describe, throw through, and forget their own generated code at
 * once, on one handle: each table is found by its own thread's exceptions
 * while the others' come and go. */
typedef struct unw_thread { vmc_t *v; uintptr_t base; int caught; int err; } unw_thread_t;

static DWORD WINAPI unw_worker(void *arg)
{
    unw_thread_t *t = arg;
    for (int round = 0; round < 20 && !t->err; round++) {
        vmc_span_t s;
        if ((t->err = vmc_alloc(t->v, 128, VMC_CODE, &s))) break;
        memcpy(s.w, mid_code, sizeof mid_code);
        memcpy((char *)s.w + 64, prolog_info, sizeof prolog_info);
        FlushInstructionCache(GetCurrentProcess(), s.x, 128);
        uint32_t at = (uint32_t)((uintptr_t)s.x - t->base);
        vmc_unwind_entry_t e = {at, at + sizeof mid_code, at + 64};
        if ((t->err = vmc_unwind_add(t->v, &e, 1))) break;
        int (*mid)(int (*)(void));
        *(void **)&mid = s.x;
        for (int k = 0; k < 10; k++) t->caught += vt_cxx_catch_through(mid, vt_cxx_throw_42) == 42;
        if ((t->err = vmc_unwind_remove(t->v, s.x, s.size)) || (t->err = vmc_free(t->v, s.x))) break;
    }
    return 0;
}

TEST(win_unwind_threads_add_throw_and_remove_at_once)
{
    vmc_t *v = vt_open("-vm_size 256M -vmheap_size 0");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    enum { N = 4 };
    unw_thread_t t[N];
    HANDLE h[N];
    for (int i = 0; i < N; i++) {
        t[i] = (unw_thread_t){v, (uintptr_t)in.code_base, 0, 0};
        h[i] = CreateThread(NULL, 0, unw_worker, &t[i], 0, NULL);
        ASSERT(h[i]);
    }
    WaitForMultipleObjects(N, h, TRUE, INFINITE);
    for (int i = 0; i < N; i++) {
        CloseHandle(h[i]);
        ASSERT_MSG(!t[i].err, "thread %d: %d: %s", i, t[i].err, vmc_strerror(t[i].err));
        ASSERT_EQ(t[i].caught, 200);
    }
    vmc_close(v);
}

#define SEH_CODE 0xE0564D43u
static uintptr_t resume_ip;
static DWORD seen_code;

static int raiser(void)
{
    RaiseException(SEH_CODE, 0, 0, NULL);
    return -1;
}

typedef VOID(NTAPI *unwind_ex_t)(PVOID, PVOID, PEXCEPTION_RECORD, PVOID, PCONTEXT, PUNWIND_HISTORY_TABLE);

/* The generated guard frame's language handler: catches SEH_CODE by
 * unwinding to the guard's resume point with 77 in rax, as a compiler's
 * __except does. */
static EXCEPTION_DISPOSITION seh_handler(EXCEPTION_RECORD *rec, void *frame, CONTEXT *ctx,
                                         DISPATCHER_CONTEXT *dc)
{
    (void)ctx;
    if (rec->ExceptionFlags & 0x6) return ExceptionContinueSearch;   /* unwinding: nothing to undo */
    if (rec->ExceptionCode != SEH_CODE) return ExceptionContinueSearch;
    seen_code = rec->ExceptionCode;
    unwind_ex_t unwind_ex = (unwind_ex_t)(void (*)(void))GetProcAddress(GetModuleHandleA("ntdll.dll"),
                                                                        "RtlUnwindEx");
    CONTEXT scratch;
    unwind_ex(frame, (void *)resume_ip, rec, (void *)(uintptr_t)77, &scratch, dc->HistoryTable);
    return ExceptionContinueSearch;
}

TEST(win_unwind_seh_exception_passes_a_generated_frame)
{
    jit_t j;
    jit_make(&j, (uintptr_t)seh_handler);
    table_changes_the_walk(&j);   /* mid's, and the guard's with the handler: */
    DWORD64 ib;
    PRUNTIME_FUNCTION g = RtlLookupFunctionEntry((uintptr_t)j.s.x + GUARD + GUARD_RESUME, &ib, NULL);
    ASSERT(g && g->UnwindData == off(&j, GUARD_INFO));
    resume_ip = (uintptr_t)j.s.x + GUARD + GUARD_RESUME;
    seen_code = 0;
    /* test -> guard (generated, handler) -> mid (generated) -> raiser */
    ASSERT_EQ(j.guard((void *)j.mid, (void *)raiser), 77);
    ASSERT_EQ(seen_code, SEH_CODE);
    /* No exception: the guard returns what its callee did. */
    ASSERT_EQ(j.guard((void *)j.mid, (void *)walker), 5);
    vmc_close(j.v);
}

/* ---- refusals and failures ----------------------------------------------------------- */

TEST(win_unwind_refusals)
{
    jit_t j;
    jit_make(&j, 0);
    uint32_t m = off(&j, MID);
    vmc_unwind_entry_t e = {m, m + sizeof mid_code, off(&j, MID_INFO)};
    ASSERT_EQ(vmc_unwind_add(j.v, &e, 0), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "0 entries");
    vmc_unwind_entry_t bad = e;
    bad.end = bad.begin;
    ASSERT_EQ(vmc_unwind_add(j.v, &bad, 1), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "is empty or past the end of the code region");
    bad = e;
    bad.info += 2;
    ASSERT_EQ(vmc_unwind_add(j.v, &bad, 1), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "is not a 4-byte aligned offset");
    bad = e;
    bad.begin = bad.end = 0x1000000;   /* free space of the region */
    bad.end += 16;
    ASSERT_EQ(vmc_unwind_add(j.v, &bad, 1), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "is not in live VMC_CODE memory");
    vmc_unwind_entry_t two[2] = {e, e};
    two[1].begin += 4;
    ASSERT_EQ(vmc_unwind_add(j.v, two, 2), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "overlap");
    /* Functions in two allocations: one table each. */
    vmc_span_t big;
    ASSERT_OK(vmc_alloc(j.v, 1 << 20, VMC_CODE, &big));
    memcpy(big.w, mid_code, sizeof mid_code);
    two[1] = (vmc_unwind_entry_t){off(&j, 0) + (uint32_t)((char *)big.x - (char *)j.s.x),
                                  off(&j, 0) + (uint32_t)((char *)big.x - (char *)j.s.x) + 16, e.info};
    ASSERT_EQ(vmc_unwind_add(j.v, two, 2), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "span more than one allocation");
    ASSERT_OK(vmc_unwind_add(j.v, &e, 1));
    ASSERT_EQ(vmc_unwind_add(j.v, &e, 1), -EEXIST);
    ASSERT_STR_CONTAINS(vmc_last_error(), "overlap a table added before");
    ASSERT_EQ(vmc_unwind_remove(j.v, j.s.x, 8), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "cuts the table");
    ASSERT_EQ(vmc_unwind_remove(j.v, (void *)16, 8), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "is not inside the code region");
    ASSERT_OK(vmc_unwind_remove(j.v, j.s.x, j.s.size));
    ASSERT_OK(vmc_unwind_remove(j.v, j.s.x, j.s.size));   /* nothing left there: fine */
    vmc_close(j.v);
}

TEST(win_unwind_failed_registration_changes_nothing)
{
    jit_t j;
    jit_make(&j, 0);
    vmc__os_fault(VMC_OS_FUNCTION_TABLE, 1, ENOMEM, 0);
    vmc_unwind_entry_t e = {off(&j, MID), off(&j, MID) + sizeof mid_code, off(&j, MID_INFO)};
    ASSERT_EQ(vmc_unwind_add(j.v, &e, 1), -ENOMEM);
    vmc__os_fault_clear();
    ASSERT_STR_CONTAINS(vmc_last_error(), "vmc_unwind_add: RtlAddFunctionTable of 1 entries");
    DWORD64 ib;
    ASSERT(!RtlLookupFunctionEntry((uintptr_t)j.s.x + MID, &ib, NULL));
    ASSERT_OK(vmc_unwind_add(j.v, &e, 1));   /* not recorded as added */
    ASSERT(RtlLookupFunctionEntry((uintptr_t)j.s.x + MID, &ib, NULL));
    vmc_close(j.v);
}

/* ---- Arbitrary Code Guard ------------------------------------------------------------- */

TEST(win_acg_refuses_vmc_open_by_name)
{
    vmc__os_simulate_acg(1);
    unsigned long reserves = vmc__os_calls(VMC_OS_VIRTUALALLOC);
    vmc_t *v = NULL;
    ASSERT_EQ(vmc_open(NULL, &v), -EPERM);
    ASSERT(!v);
    ASSERT_STR_CONTAINS(vmc_last_error(), "vmc_open: this process runs under Arbitrary Code Guard "
                                          "(ProcessDynamicCodePolicy ProhibitDynamicCode)");
    ASSERT_STR_CONTAINS(vmc_last_error(), "no code can be generated");
    ASSERT_EQ(vmc__os_calls(VMC_OS_VIRTUALALLOC), reserves);   /* nothing reserved */
    vmc__os_simulate_acg(0);
    ASSERT_OK(vmc_open(NULL, &v));   /* the real policy (Wine: none) */
    vmc_close(v);
}

TEST(win_acg_query_failure_fails_vmc_open)
{
    vmc__os_fault(VMC_OS_MITIGATION, 1, EACCES, 0);
    vmc_t *v = NULL;
    ASSERT_EQ(vmc_open(NULL, &v), -EACCES);
    vmc__os_fault_clear();
    ASSERT_STR_CONTAINS(vmc_last_error(), "vmc_open: GetProcessMitigationPolicy (Arbitrary Code Guard)");
    ASSERT_OK(vmc_open(NULL, &v));
    vmc_close(v);
}
