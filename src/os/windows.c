/* The OS layer for Windows x64 (see os.h for the contract): the address-space
 * verbs, W^X pairs and the fault seam (the hold list is hold.c's).
 *
 * Two modes, chosen once by trying the call itself (a 64 KiB placeholder
 * reservation): Wine 8 has VirtualAlloc2 but rejects MEM_RESERVE_PLACEHOLDER
 * with ERROR_INVALID_PARAMETER, so looking the function up is not enough.
 *
 * Placeholders (Windows 10 1803+, Wine 9+): a reservation starts as one
 * placeholder.  Committing a piece splits it off (VirtualFree with
 * MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER) and replaces it with private
 * memory (VirtualAlloc2 + MEM_REPLACE_PLACEHOLDER); a file view replaces a
 * placeholder of exactly its size (MapViewOfFile3); decommitting turns the
 * piece back into a placeholder (VirtualFree / UnmapViewOfFile2 with
 * MEM_PRESERVE_PLACEHOLDER) and merges it with free neighbours
 * (MEM_COALESCE_PLACEHOLDERS), so the number of pieces stays small.  At no
 * point is any of it free address space.
 *
 * Slots (the fallback): the reservation is adjacent plain reservations of
 * slot_size bytes (the last one may be shorter).  Commit and decommit work
 * inside each slot.  A file view needs free address space, so it releases a
 * run of whole slots and maps the view at that exact base: another thread
 * may take the space in between.  That is detected (the map fails, or the
 * re-reservation of a slot does) and reported as -EBUSY with every slot that
 * can be re-reserved put back; a slot another allocation took stays lost to
 * the region, recorded so that release skips it.
 *
 * Windows allows no view or placeholder split finer than the 64 KiB
 * allocation granularity, so that is what vmc__os_granularity reports.
 * MinGW's headers lack the placeholder constants and its import libraries
 * lack VirtualAlloc2, MapViewOfFile3 and UnmapViewOfFile2: they are defined
 * here and looked up in kernelbase.dll.
 */
#include "os/os.h"
#include "base/error.h"

#include <windows.h>
#include <bcrypt.h>
#include <errno.h>
#include <io.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MEM_RESERVE_PLACEHOLDER
#define MEM_RESERVE_PLACEHOLDER   0x00040000
#endif
#ifndef MEM_REPLACE_PLACEHOLDER
#define MEM_REPLACE_PLACEHOLDER   0x00004000
#endif
#ifndef MEM_PRESERVE_PLACEHOLDER
#define MEM_PRESERVE_PLACEHOLDER  0x00000002
#endif
#ifndef MEM_COALESCE_PLACEHOLDERS
#define MEM_COALESCE_PLACEHOLDERS 0x00000001
#endif

#define GRANULE       ((size_t)64 << 10)
#define DEFAULT_SLOT  ((size_t)640 << 10)   /* the request's number: 3,277 slots per 2 GiB */

typedef PVOID (WINAPI *virtualalloc2_fn)(HANDLE, PVOID, SIZE_T, ULONG, ULONG, void *, ULONG);
typedef PVOID (WINAPI *mapview3_fn)(HANDLE, HANDLE, PVOID, ULONG64, SIZE_T, ULONG, ULONG, void *,
                                    ULONG);
typedef BOOL (WINAPI *unmapview2_fn)(HANDLE, PVOID, ULONG);

static virtualalloc2_fn p_virtualalloc2;
static mapview3_fn p_mapview3;
static unmapview2_fn p_unmapview2;

/* ---- fault seam ------------------------------------------------------------ */

static const char *const call_names[VMC_OS_CALL_COUNT] = {
    [VMC_OS_MMAP] = "mmap", [VMC_OS_MUNMAP] = "munmap", [VMC_OS_MPROTECT] = "mprotect",
    [VMC_OS_MADVISE] = "madvise", [VMC_OS_MEMFD_CREATE] = "memfd_create",
    [VMC_OS_FTRUNCATE] = "ftruncate", [VMC_OS_FALLOCATE] = "fallocate", [VMC_OS_OPEN] = "open",
    [VMC_OS_CLOSE] = "close", [VMC_OS_PREAD] = "pread", [VMC_OS_PWRITE] = "pwrite",
    [VMC_OS_FSTAT] = "fstat", [VMC_OS_FSTATFS] = "fstatfs", [VMC_OS_GETRANDOM] = "getrandom",
    [VMC_OS_UNLINK] = "unlink", [VMC_OS_LSEEK] = "lseek", [VMC_OS_GETRLIMIT] = "getrlimit",
    [VMC_OS_COPY_FILE_RANGE] = "copy_file_range", [VMC_OS_VIRTUALALLOC] = "VirtualAlloc",
    [VMC_OS_VIRTUALFREE] = "VirtualFree", [VMC_OS_VIRTUALPROTECT] = "VirtualProtect",
    [VMC_OS_CREATEFILEMAPPING] = "CreateFileMapping", [VMC_OS_MAPVIEW] = "MapViewOfFile",
    [VMC_OS_UNMAPVIEW] = "UnmapViewOfFile", [VMC_OS_FUNCTION_TABLE] = "RtlAddFunctionTable",
    [VMC_OS_MITIGATION] = "GetProcessMitigationPolicy",
    [VMC_OS_LOADLIBRARY] = "LoadLibrary", [VMC_OS_GETPROCADDRESS] = "GetProcAddress",
};

static struct {
    atomic_int armed;
    atomic_ulong seen;
    unsigned long nth;
    int err, persistent;
} os_faults[VMC_OS_CALL_COUNT];
static atomic_ulong os_faults_hit;
static atomic_ulong os_call_counts[VMC_OS_CALL_COUNT];
static _Thread_local unsigned long os_detail;

void vmc__os_fault(enum vmc_os_call call, unsigned long nth, int err, int persistent)
{
    os_faults[call].nth = nth ? nth : 1;
    os_faults[call].err = err;
    os_faults[call].persistent = persistent;
    atomic_store(&os_faults[call].seen, 0);
    atomic_store(&os_faults[call].armed, 1);
}

void vmc__os_fault_clear(void)
{
    for (int i = 0; i < VMC_OS_CALL_COUNT; i++) atomic_store(&os_faults[i].armed, 0);
    atomic_store(&os_faults_hit, 0);
}

unsigned long vmc__os_faults_hit(void) { return atomic_load(&os_faults_hit); }
unsigned long vmc__os_calls(enum vmc_os_call call) { return atomic_load(&os_call_counts[call]); }

void vmc__os_calls_reset(void)
{
    for (int i = 0; i < VMC_OS_CALL_COUNT; i++) atomic_store(&os_call_counts[i], 0);
}

const char *vmc__os_call_name(enum vmc_os_call call)
{
    return (unsigned)call < VMC_OS_CALL_COUNT && call_names[call] ? call_names[call] : "?";
}

/* Replacing calls is a Linux seam (libc signatures); here faults suffice. */
void vmc__os_set_call(enum vmc_os_call call, void (*fn)(void)) { (void)call; (void)fn; }

unsigned long vmc__os_last_detail(void) { return os_detail; }

/* 0 to make the call, or the injected -errno (then GetLastError-style detail
 * is 0: nothing was called). */
static int os_enter(enum vmc_os_call call)
{
    atomic_fetch_add_explicit(&os_call_counts[call], 1, memory_order_relaxed);
    if (!atomic_load_explicit(&os_faults[call].armed, memory_order_relaxed)) return 0;
    unsigned long n = atomic_fetch_add(&os_faults[call].seen, 1) + 1;
    if (n == os_faults[call].nth || (os_faults[call].persistent && n > os_faults[call].nth)) {
        atomic_fetch_add(&os_faults_hit, 1);
        os_detail = 0;
        return -os_faults[call].err;
    }
    return 0;
}

/* GetLastError as an errno value; the code itself is kept for messages. */
static int win_err(void)
{
    DWORD e = GetLastError();
    os_detail = e;
    switch (e) {
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT: return -ENOMEM;
    case ERROR_INVALID_ADDRESS: return -EEXIST;   /* the range is (partly) in use */
    case ERROR_ACCESS_DENIED: return -EACCES;
    case ERROR_INVALID_HANDLE: return -EBADF;
    case ERROR_DISK_FULL: return -ENOSPC;
    case ERROR_INVALID_PARAMETER:
    default: return -EINVAL;
    }
}

/* The seam and the error translation for the layer's other Windows files
 * (winload.c). */
int vmc__os_win_enter(enum vmc_os_call call) { return os_enter(call); }
int vmc__os_win_error(void) { return win_err(); }

/* No fork on Windows: nothing to keep consistent across it. */
void vmc__os_fork_prepare(void) {}
void vmc__os_fork_parent(void) {}
void vmc__os_fork_child(void) {}

size_t vmc__os_page_size(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwPageSize;
}

const char *vmc__os_enomem_hint(int err)
{
    return err == -ENOMEM ? " (the commit limit: pagefile size)" : "";
}

/* ---- mode -------------------------------------------------------------------- */

static INIT_ONCE mode_once = INIT_ONCE_STATIC_INIT;
static int mode_slots;                  /* 1: the fallback                    */
static size_t slot_size = DEFAULT_SLOT;

static BOOL CALLBACK mode_init(PINIT_ONCE once, PVOID arg, PVOID *ctx)
{
    (void)once; (void)arg; (void)ctx;
    HMODULE kb = GetModuleHandleA("kernelbase.dll");
    if (kb) {
        p_virtualalloc2 = (virtualalloc2_fn)(void (*)(void))GetProcAddress(kb, "VirtualAlloc2");
        p_mapview3 = (mapview3_fn)(void (*)(void))GetProcAddress(kb, "MapViewOfFile3");
        p_unmapview2 = (unmapview2_fn)(void (*)(void))GetProcAddress(kb, "UnmapViewOfFile2");
    }
    void *p = NULL;
    if (p_virtualalloc2 && p_mapview3 && p_unmapview2)
        p = p_virtualalloc2(NULL, NULL, GRANULE, MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
                            PAGE_NOACCESS, NULL, 0);
    if (p) VirtualFree(p, 0, MEM_RELEASE);
    mode_slots = p == NULL;
    return TRUE;
}

static void mode_get(void) { InitOnceExecuteOnce(&mode_once, mode_init, NULL, NULL); }

unsigned vmc__os_caps(void)
{
    mode_get();
    return VMC_OS_CAP_HANDLES | VMC_OS_CAP_PE | (mode_slots ? VMC_OS_CAP_SLOTS : VMC_OS_CAP_OVERLAY | VMC_OS_CAP_DUAL);
}

size_t vmc__os_granularity(void) { return GRANULE; }

size_t vmc__os_slot_size(void)
{
    mode_get();
    return mode_slots ? slot_size : 0;
}

void vmc__os_force_slots(size_t size)
{
    mode_get();
    mode_slots = 1;
    slot_size = size ? size : DEFAULT_SLOT;
}

/* ---- pieces ------------------------------------------------------------------
 * Windows cannot tell a placeholder from a plain reservation through
 * VirtualQuery, and each piece must be released with the call that matches
 * what it holds, so every reservation keeps its pieces in address order. */

/* P_DUAL: the executable view of a W^X pair's piece, whose section it keeps
 * (see "W^X pairs" below). */
enum { P_HOLE_FREE, P_RESERVED, P_PRIVATE, P_VIEW, P_LOST, P_DUAL };

typedef struct piece { uintptr_t base; size_t len; int state; HANDLE sec; } piece_t;

typedef struct resv {
    uintptr_t base;
    size_t len;
    piece_t *p;
    int n, cap;
    struct resv *next;
} resv_t;

static SRWLOCK resv_lock = SRWLOCK_INIT;
static resv_t *resvs;

/* W^X pairs (below), under resv_lock. */
/* [hole_lo, hole_hi): not the pair's (os.h).  Nothing here has a brk, so
 * vmc_open never makes one, but the contract holds the same. */
struct vmc_os_dual {
    uintptr_t x, w;
    size_t len;
    uintptr_t hole_lo, hole_hi;
    struct vmc_os_dual *next;
};
static vmc_os_dual_t *dual_list;

static resv_t *resv_find(uintptr_t a, size_t len)
{
    for (resv_t *r = resvs; r; r = r->next)
        if (a >= r->base && len <= r->len && a - r->base <= r->len - len) return r;
    return NULL;
}

/* The index of the piece holding a. */
static int piece_at(const resv_t *r, uintptr_t a)
{
    int lo = 0, hi = r->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (r->p[mid].base <= a) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static int piece_room(resv_t *r, int more)
{
    if (r->n + more <= r->cap) return 0;
    int cap = r->cap ? r->cap * 2 : 16;
    while (cap < r->n + more) cap *= 2;
    piece_t *p = realloc(r->p, (size_t)cap * sizeof *p);
    if (!p) return -ENOMEM;
    r->p = p;
    r->cap = cap;
    return 0;
}

/* Record that [a, a+len) inside piece i is now `state` (the piece is cut in up
 * to three; room for two more was made by the caller). */
static void piece_set(resv_t *r, int i, uintptr_t a, size_t len, int state)
{
    piece_t old = r->p[i];
    piece_t parts[3];
    int k = 0;
    if (a > old.base) parts[k++] = (piece_t){old.base, a - old.base, old.state, NULL};
    parts[k++] = (piece_t){a, len, state, NULL};
    if (a + len < old.base + old.len)
        parts[k++] = (piece_t){a + len, old.base + old.len - (a + len), old.state, NULL};
    memmove(&r->p[i + k], &r->p[i + 1], (size_t)(r->n - i - 1) * sizeof *r->p);
    memcpy(&r->p[i], parts, (size_t)k * sizeof *parts);
    r->n += k - 1;
}

static DWORD page_prot(int prot)
{
    switch (prot & (VMC_OS_READ | VMC_OS_WRITE | VMC_OS_EXEC)) {
    case 0: return PAGE_NOACCESS;
    case VMC_OS_READ: return PAGE_READONLY;
    case VMC_OS_EXEC:
    case VMC_OS_READ | VMC_OS_EXEC: return PAGE_EXECUTE_READ;
    case VMC_OS_EXEC | VMC_OS_WRITE:
    case VMC_OS_READ | VMC_OS_WRITE | VMC_OS_EXEC: return PAGE_EXECUTE_READWRITE;
    default: return PAGE_READWRITE;
    }
}

/* ---- the Windows calls, each through the seam -------------------------------- */

static int w_reserve_placeholder(uintptr_t at, size_t len, uintptr_t *out)
{
    int e = os_enter(VMC_OS_VIRTUALALLOC);
    if (e) return e;
    void *p = p_virtualalloc2(NULL, (void *)at, len, MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
                              PAGE_NOACCESS, NULL, 0);
    if (!p) return win_err();
    *out = (uintptr_t)p;
    return 0;
}

static int w_reserve(uintptr_t at, size_t len, uintptr_t *out)
{
    int e = os_enter(VMC_OS_VIRTUALALLOC);
    if (e) return e;
    void *p = VirtualAlloc((void *)at, len, MEM_RESERVE, PAGE_NOACCESS);
    if (!p) return win_err();
    *out = (uintptr_t)p;
    return 0;
}

static int w_replace_commit(uintptr_t a, size_t len, int prot)
{
    int e = os_enter(VMC_OS_VIRTUALALLOC);
    if (e) return e;
    return p_virtualalloc2(NULL, (void *)a, len, MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
                           page_prot(prot), NULL, 0) ? 0 : win_err();
}

static int w_commit(uintptr_t a, size_t len, int prot)
{
    int e = os_enter(VMC_OS_VIRTUALALLOC);
    if (e) return e;
    return VirtualAlloc((void *)a, len, MEM_COMMIT, page_prot(prot)) ? 0 : win_err();
}

static int w_free(uintptr_t a, size_t len, DWORD how)
{
    int e = os_enter(VMC_OS_VIRTUALFREE);
    if (e) return e;
    return VirtualFree((void *)a, len, how) ? 0 : win_err();
}

static int w_protect(uintptr_t a, size_t len, int prot)
{
    int e = os_enter(VMC_OS_VIRTUALPROTECT);
    if (e) return e;
    DWORD old;
    return VirtualProtect((void *)a, len, page_prot(prot), &old) ? 0 : win_err();
}

static int w_unmap(uintptr_t a, int preserve)
{
    int e = os_enter(VMC_OS_UNMAPVIEW);
    if (e) return e;
    BOOL ok = preserve ? p_unmapview2(GetCurrentProcess(), (void *)a, MEM_PRESERVE_PLACEHOLDER)
                       : UnmapViewOfFile((void *)a);
    return ok ? 0 : win_err();
}

/* ---- reserve and release ------------------------------------------------------ */

static int aligned(uintptr_t a, size_t len)
{
    return len && a % GRANULE == 0 && len % GRANULE == 0;
}

/* Release one piece as what it is (used at release, and to undo). */
static int piece_free(const piece_t *pc)
{
    switch (pc->state) {
    case P_VIEW: return w_unmap(pc->base, 0);
    case P_DUAL: {
        int e = w_unmap(pc->base, 0);
        if (!e) CloseHandle(pc->sec);
        return e;
    }
    case P_LOST: return 0;   /* not ours any more */
    default: return w_free(pc->base, 0, MEM_RELEASE);
    }
}

/* Slot mode: the slots of [at, at+len) one by one; on failure the ones made
 * are released again. */
static int reserve_slots(resv_t *r, uintptr_t at)
{
    int n = (int)((r->len + slot_size - 1) / slot_size);
    int e = piece_room(r, n);
    if (e) return e;
    for (int i = 0; i < n; i++) {
        uintptr_t a = at + (size_t)i * slot_size, got;
        size_t len = i == n - 1 ? r->len - (size_t)i * slot_size : slot_size;
        e = w_reserve(a, len, &got);
        if (e) {
            while (i-- > 0) piece_free(&r->p[i]);
            r->n = 0;
            return e;
        }
        r->p[i] = (piece_t){a, len, P_RESERVED, NULL};
        r->n = i + 1;
    }
    return 0;
}

int vmc__os_reserve(uintptr_t at, size_t len, uintptr_t *out)
{
    mode_get();
    if (!aligned(at, len)) return -EINVAL;
    resv_t *r = calloc(1, sizeof *r);
    if (!r || piece_room(r, 1)) {
        free(r);
        return -ENOMEM;
    }
    r->len = len;
    int e;
    if (!mode_slots) {
        e = w_reserve_placeholder(at, len, &r->base);
        if (!e) r->p[r->n++] = (piece_t){r->base, len, P_RESERVED, NULL};
    } else if (at) {
        r->base = at;
        e = reserve_slots(r, at);
    } else {
        /* Find a place with one reservation, then slot it.  Another thread
         * may take part of it between the two: look again. */
        e = -ENOMEM;
        for (int attempt = 0; attempt < 8; attempt++) {
            uintptr_t probe = 0;
            e = w_reserve(0, len, &probe);
            if (e) break;
            w_free(probe, 0, MEM_RELEASE);
            r->base = probe;
            e = reserve_slots(r, probe);
            if (e != -EEXIST) break;
        }
    }
    if (e) {
        if (e == -EEXIST && !at) e = -ENOMEM;
        free(r->p);
        free(r);
        return e;
    }
    AcquireSRWLockExclusive(&resv_lock);
    r->next = resvs;
    resvs = r;
    ReleaseSRWLockExclusive(&resv_lock);
    *out = r->base;
    return 0;
}

/* Back to reserved, whatever the pieces hold: the same as a decommit here. */
int vmc__os_rereserve(uintptr_t addr, size_t len) { return vmc__os_decommit(addr, len); }

const char *vmc__os_rereserve_call(void) { return mode_slots ? "VirtualFree" : "VirtualFree/UnmapViewOfFile2"; }

int vmc__os_release(uintptr_t base, size_t len)
{
    AcquireSRWLockExclusive(&resv_lock);
    resv_t **pp = &resvs;
    while (*pp && !((*pp)->base == base && (*pp)->len == len)) pp = &(*pp)->next;
    resv_t *r = *pp;
    if (!r) {
        ReleaseSRWLockExclusive(&resv_lock);
        return -EINVAL;
    }
    int first = 0;
    for (int i = 0; i < r->n; i++) {
        int e = piece_free(&r->p[i]);
        if (e && !first) first = e;
    }
    *pp = r->next;
    ReleaseSRWLockExclusive(&resv_lock);
    free(r->p);
    free(r);
    return first;
}

/* ---- commit, protect, decommit ----------------------------------------------- */

/* Placeholder mode: [a, a+len) inside the placeholder piece *i becomes a
 * placeholder of its own, recorded as a piece; *i is then its index. */
static int split(resv_t *r, int *i, uintptr_t a, size_t len)
{
    piece_t pc = r->p[*i];
    if (a == pc.base && len == pc.len) return 0;
    int e = w_free(a, len, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER);
    if (e) return e;
    piece_set(r, *i, a, len, P_RESERVED);
    *i = piece_at(r, a);
    return 0;
}

/* Placeholder mode: a reserved piece [a, a+len) inside piece i becomes its own
 * placeholder (split off), then private committed memory. */
static int commit_placeholder(resv_t *r, int i, uintptr_t a, size_t len, int prot)
{
    int e = split(r, &i, a, len);
    if (!e) e = w_replace_commit(a, len, prot);
    if (e) return e;   /* a split placeholder is still a placeholder: merged later */
    r->p[i].state = P_PRIVATE;
    return 0;
}

static void coalesce(resv_t *r);
static int decommit_locked(resv_t *r, uintptr_t addr, size_t len);
static int dual_piece_down(resv_t *r, int i, const char **step);

int vmc__os_commit(uintptr_t addr, size_t len, int prot)
{
    if (!aligned(addr, len)) return -EINVAL;
    AcquireSRWLockExclusive(&resv_lock);
    resv_t *r = resv_find(addr, len);
    /* Only the first and the last piece visited can be cut. */
    int e = r ? piece_room(r, 4) : -EINVAL;
    uintptr_t a = addr, end = addr + len;
    while (!e && a < end) {
        int i = piece_at(r, a);
        piece_t pc = r->p[i];
        size_t n = (pc.base + pc.len < end ? pc.base + pc.len : end) - a;
        if (pc.state == P_RESERVED && !mode_slots) {
            e = commit_placeholder(r, i, a, n, prot);
            if (e) coalesce(r);
        }
        else if (pc.state == P_RESERVED || pc.state == P_PRIVATE) e = w_commit(a, n, prot);
        else e = -EINVAL;   /* a view or a lost slot: not committable */
        if (!e) a += n;
    }
    if (e && a > addr) {
        /* Nothing changes on failure: what this call committed goes back.
         * Pieces committed before it cannot be told apart here, so the
         * precondition (the range was reserved) is what makes this exact. */
        int saved = e;
        unsigned long detail = os_detail;
        decommit_locked(r, addr, a - addr);
        e = saved;
        os_detail = detail;
    }
    ReleaseSRWLockExclusive(&resv_lock);
    return e;
}

/* Page granular (os.h): VirtualProtect changes committed pages one 4 KiB page
 * at a time, so a PE image's sections (4 KiB aligned) each get their own. */
int vmc__os_protect(uintptr_t addr, size_t len, int prot)
{
    size_t page = vmc__os_page_size();
    if (!len || addr % page || len % page) return -EINVAL;
    AcquireSRWLockShared(&resv_lock);
    resv_t *r = resv_find(addr, len);
    int e = r ? 0 : -EINVAL;
    /* VirtualProtect works within one allocation: piece by piece. */
    for (uintptr_t a = addr, end = addr + len; !e && a < end;) {
        const piece_t *pc = &r->p[piece_at(r, a)];
        size_t n = (pc->base + pc->len < end ? pc->base + pc->len : end) - a;
        e = w_protect(a, n, prot);
        a += n;
    }
    ReleaseSRWLockShared(&resv_lock);
    return e;
}

/* Is the whole private allocation of piece i decommitted? */
static int all_decommitted(const piece_t *pc)
{
    for (uintptr_t q = pc->base; q < pc->base + pc->len;) {
        MEMORY_BASIC_INFORMATION m;
        if (!VirtualQuery((void *)q, &m, sizeof m) || m.State != MEM_RESERVE) return 0;
        q = (uintptr_t)m.BaseAddress + m.RegionSize;
    }
    return 1;
}

static int decommit_locked(resv_t *r, uintptr_t addr, size_t len)
{
    int first = 0;
    uintptr_t end = addr + len;
    for (uintptr_t a = addr; a < end;) {
        int i = piece_at(r, a);
        piece_t pc = r->p[i];
        size_t n = (pc.base + pc.len < end ? pc.base + pc.len : end) - a;
        int whole = a == pc.base && n == pc.len, e = 0;
        if (pc.state == P_PRIVATE && whole && !mode_slots) {
            e = w_free(a, n, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER);
            if (!e) r->p[i].state = P_RESERVED;
        } else if (pc.state == P_PRIVATE || pc.state == P_RESERVED) {
            /* Part of an allocation (or a slot): its pages go, the address
             * space stays reserved by the allocation.  Once all of a
             * placeholder-mode allocation is decommitted it becomes a
             * placeholder again, so views can go there. */
            if (pc.state == P_PRIVATE || mode_slots) e = w_free(a, n, MEM_DECOMMIT);
            if (!e && pc.state == P_PRIVATE && !mode_slots && all_decommitted(&pc)) {
                if (w_free(pc.base, pc.len, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER) == 0)
                    r->p[i].state = P_RESERVED;
            }
        } else if (pc.state == P_DUAL) {
            e = whole ? dual_piece_down(r, i, NULL) : -EINVAL;
        } else if (pc.state == P_VIEW) {
            if (!whole) e = -EINVAL;
            else if (!mode_slots) {
                e = w_unmap(a, 1);
                if (!e) r->p[i].state = P_RESERVED;
            } else {
                /* Slot mode: the view's address space is free for a moment
                 * between the unmap and the slots' re-reservation. */
                e = w_unmap(a, 0);
                if (!e) {
                    r->p[i].state = P_HOLE_FREE;
                    for (uintptr_t s = a; s < a + n;) {
                        size_t sl = a + n - s < slot_size ? a + n - s : slot_size;
                        uintptr_t got;
                        int i2 = piece_at(r, s);
                        int e2 = w_reserve(s, sl, &got);
                        piece_set(r, i2, s, sl, e2 ? P_LOST : P_RESERVED);
                        if (e2 && !e) e = -EBUSY;
                        s += sl;
                    }
                }
            }
        }
        if (e && !first) first = e;
        a += n;
    }
    if (!mode_slots) coalesce(r);
    return first;
}

int vmc__os_decommit(uintptr_t addr, size_t len)
{
    if (!aligned(addr, len)) return -EINVAL;
    AcquireSRWLockExclusive(&resv_lock);
    resv_t *r = resv_find(addr, len);
    /* A slot-mode view becomes one piece per slot again. */
    int e = r ? piece_room(r, (int)(len / (mode_slots ? slot_size : len)) + 2) : -EINVAL;
    if (!e) e = decommit_locked(r, addr, len);
    ReleaseSRWLockExclusive(&resv_lock);
    return e;
}

/* Neighbouring placeholders become one, so that splits do not pile up. */
static void coalesce(resv_t *r)
{
    int out = 0;
    for (int i = 0; i < r->n;) {
        int j = i + 1;
        while (j < r->n && r->p[i].state == P_RESERVED && r->p[j].state == P_RESERVED) j++;
        piece_t merged = r->p[i];
        if (j > i + 1) {
            size_t len = r->p[j - 1].base + r->p[j - 1].len - merged.base;
            if (w_free(merged.base, len, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS) == 0) {
                merged.len = len;
            } else {
                j = i + 1;  /* left split: correct, merely more pieces */
            }
        }
        r->p[out++] = merged;
        i = j;
    }
    r->n = out;
}

/* ---- file views ---------------------------------------------------------------- */

static int w_section(HANDLE file, int prot, int shared, HANDLE *out)
{
    int e = os_enter(VMC_OS_CREATEFILEMAPPING);
    if (e) return e;
    DWORD p = (prot & VMC_OS_EXEC) ? (prot & VMC_OS_WRITE ? (shared ? PAGE_EXECUTE_READWRITE
                                                                      : PAGE_EXECUTE_WRITECOPY)
                                                          : PAGE_EXECUTE_READ)
                                   : (prot & VMC_OS_WRITE ? (shared ? PAGE_READWRITE : PAGE_WRITECOPY)
                                                          : PAGE_READONLY);
    HANDLE h = CreateFileMappingA(file, NULL, p, 0, 0, NULL);
    if (!h) return win_err();
    *out = h;
    return 0;
}

static int w_mapview(HANDLE sec, uintptr_t at, size_t len, uint64_t off, int prot, int shared)
{
    int e = os_enter(VMC_OS_MAPVIEW);
    if (e) return e;
    DWORD vp = (prot & VMC_OS_WRITE) && !shared ? ((prot & VMC_OS_EXEC) ? PAGE_EXECUTE_WRITECOPY
                                                                         : PAGE_WRITECOPY)
                                                : page_prot(prot);
    void *v;
    if (!mode_slots) {
        v = p_mapview3(sec, GetCurrentProcess(), (void *)at, off, len, MEM_REPLACE_PLACEHOLDER, vp,
                       NULL, 0);
    } else {
        DWORD acc = (prot & VMC_OS_WRITE) ? (shared ? FILE_MAP_WRITE : FILE_MAP_COPY) : FILE_MAP_READ;
        if (prot & VMC_OS_EXEC) acc |= FILE_MAP_EXECUTE;
        v = MapViewOfFileEx(sec, acc, (DWORD)(off >> 32), (DWORD)off, len, (void *)at);
    }
    if (!v) return win_err();
    if ((uintptr_t)v != at) {  /* cannot happen with an address given; never keep it elsewhere */
        UnmapViewOfFile(v);
        return -EEXIST;
    }
    return 0;
}

/* Slot mode: release the slots under [at, at+len) and map there.  The tail
 * of the last slot past the view is reserved again as its own piece. */
static int map_slots(resv_t *r, HANDLE sec, uintptr_t at, size_t len, uint64_t off, int prot,
                     int shared)
{
    if ((at - r->base) % slot_size) return -EINVAL;
    uintptr_t end = at + len, run_end = at;
    for (uintptr_t a = at; a < end;) {
        const piece_t *pc = &r->p[piece_at(r, a)];
        if (pc->state != P_RESERVED || pc->base != a) return -EINVAL;
        /* Committed pages there: the range was not reserved. */
        for (uintptr_t q = a; q < a + pc->len;) {
            MEMORY_BASIC_INFORMATION m;
            if (!VirtualQuery((void *)q, &m, sizeof m) || m.State != MEM_RESERVE) return -EBUSY;
            q = (uintptr_t)m.BaseAddress + m.RegionSize;
        }
        a += pc->len;
        run_end = a;
    }
    for (uintptr_t a = at; a < run_end;) {
        int i = piece_at(r, a);
        size_t sl = r->p[i].len;
        int e = w_free(a, 0, MEM_RELEASE);
        if (e) {
            /* Put back what was released before this one. */
            for (uintptr_t b = at; b < a;) {
                int k = piece_at(r, b);
                uintptr_t got;
                if (w_reserve(b, r->p[k].len, &got)) r->p[k].state = P_LOST;
                else r->p[k].state = P_RESERVED;
                b += r->p[k].len;
            }
            return e;
        }
        r->p[i].state = P_HOLE_FREE;
        a += sl;
    }
    int e = w_mapview(sec, at, len, off, prot, shared);
    if (!e && end < run_end) {
        uintptr_t got;
        e = w_reserve(end, run_end - end, &got);
        if (e) w_unmap(at, 0);   /* all or nothing: the slots go back below */
    }
    int i = piece_at(r, at);
    int j = piece_at(r, run_end - 1);
    piece_t tail = {end, run_end - end, P_RESERVED, NULL};
    if (e) {
        /* Another thread took some of the space: re-reserve every slot that
         * is still free; the others are lost to the region, not holes in it. */
        for (int k = i; k <= j; k++) {
            uintptr_t got;
            r->p[k].state = w_reserve(r->p[k].base, r->p[k].len, &got) ? P_LOST : P_RESERVED;
        }
        return e == -EEXIST ? -EBUSY : e;
    }
    memmove(&r->p[i + 1 + (tail.len > 0)], &r->p[j + 1], (size_t)(r->n - j - 1) * sizeof *r->p);
    r->p[i] = (piece_t){at, len, P_VIEW, NULL};
    if (tail.len) r->p[i + 1] = tail;
    r->n -= (j - i) - (tail.len > 0);
    return 0;
}

int vmc__os_map_view(uintptr_t at, size_t len, int prot, int fd, uint64_t off, int shared)
{
    if (!aligned(at, len) || off % GRANULE) return -EINVAL;
    intptr_t fh = _get_osfhandle(fd);
    if (fh == -1) return -EBADF;
    return vmc__os_map_view_handle(at, len, prot, (void *)fh, off, shared);
}

int vmc__os_map_view_handle(uintptr_t at, size_t len, int prot, void *fh, uint64_t off, int shared)
{
    if (!aligned(at, len) || off % GRANULE) return -EINVAL;
    AcquireSRWLockExclusive(&resv_lock);
    resv_t *r = resv_find(at, len);
    int e = r ? piece_room(r, 3) : -EINVAL;
    int i = e ? 0 : piece_at(r, at);
    if (!e && !mode_slots &&
        (r->p[i].state != P_RESERVED || at + len > r->p[i].base + r->p[i].len))
        e = -EINVAL;   /* views replace one reserved piece */
    HANDLE sec = NULL;
    if (!e) e = w_section((HANDLE)fh, prot, shared, &sec);
    if (!e && !mode_slots) {
        e = split(r, &i, at, len);
        if (!e) e = w_mapview(sec, at, len, off, prot, shared);
        if (!e) r->p[i].state = P_VIEW;
        else coalesce(r);
    } else if (!e) {
        e = map_slots(r, sec, at, len, off, prot, shared);
    }
    if (sec) CloseHandle(sec);  /* the view keeps the section alive */
    ReleaseSRWLockExclusive(&resv_lock);
    return e;
}

/* ---- W^X pairs ------------------------------------------------------------------
 * The writable side is a placeholder reservation of its own, held like the
 * region.  Each committed piece is one pagefile-backed section of exactly its
 * size: its writable view (PAGE_READWRITE) replaces the piece's placeholder
 * on the writable side, its executable view (PAGE_EXECUTE_READ) the piece's
 * placeholder on the executable side, so no address is ever writable and
 * executable.  A section per piece rather than one for the whole region:
 * the committed pages of a pagefile-backed section cannot be decommitted
 * (VirtualFree refuses views), so only unmapping a section's views and
 * closing its handle gives its memory back, and a piece committed again is
 * a new section, zero filled.  The handle stays open while the piece lives,
 * so that a decommit whose second unmapping fails can map back the view the
 * first one took away.  The cost: a piece is decommitted whole (-EINVAL for
 * part of one), which is how the block layer uses pieces (a run grows by
 * whole blocks and is given back whole).  Without placeholders (the slot
 * fallback) a view can only replace whole slots, far coarser than a block:
 * no pairs there (-ENOTSUP). */

/* The message's tail for the call that just failed with e: the errno's
 * text, and GetLastError's code when a real call failed. */
static const char *win_why(int e)
{
    static _Thread_local char buf[128];
    if (os_detail) snprintf(buf, sizeof buf, "%s (error %lu)", strerror(-e), os_detail);
    else snprintf(buf, sizeof buf, "%s", strerror(-e));
    return buf;
}

const char *vmc__os_why(int e) { return win_why(e); }

static int w_section_anon(size_t len, HANDLE *out)
{
    int e = os_enter(VMC_OS_CREATEFILEMAPPING);
    if (e) return e;
    /* SEC_COMMIT (the default): the piece is committed whole at once. */
    HANDLE h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_EXECUTE_READWRITE,
                                  (DWORD)((uint64_t)len >> 32), (DWORD)len, NULL);
    if (!h) return win_err();
    *out = h;
    return 0;
}

static int w_mapview3(HANDLE sec, uintptr_t at, size_t len, DWORD prot)
{
    int e = os_enter(VMC_OS_MAPVIEW);
    if (e) return e;
    void *v = p_mapview3(sec, GetCurrentProcess(), (void *)at, 0, len, MEM_REPLACE_PLACEHOLDER,
                         prot, NULL, 0);
    if (!v) return win_err();
    if ((uintptr_t)v != at) {   /* cannot happen with a placeholder given; never keep it elsewhere */
        UnmapViewOfFile(v);
        return -EEXIST;
    }
    return 0;
}

static vmc_os_dual_t *dual_of(uintptr_t x)
{
    for (vmc_os_dual_t *d = dual_list; d; d = d->next)
        if (x >= d->x && x - d->x < d->len) return d;
    return NULL;
}

/* Take down the P_DUAL piece i of r (whole): its writable view first (so the
 * code cannot change once it is going), then its executable view, then the
 * section.  On failure *step names what failed and nothing changed. */
static int dual_piece_down(resv_t *r, int i, const char **step)
{
    piece_t *pc = &r->p[i];
    vmc_os_dual_t *d = dual_of(pc->base);
    resv_t *rw = d ? resv_find(d->w + (pc->base - d->x), pc->len) : NULL;
    int iw = rw ? piece_at(rw, d->w + (pc->base - d->x)) : -1;
    if (rw && rw->p[iw].state != P_VIEW) rw = NULL;   /* its view went with the pair */
    int e = 0;
    if (rw) {
        e = w_unmap(rw->p[iw].base, 1);
        if (e) {
            if (step) *step = "closing the writable view: UnmapViewOfFile2";
            return e;
        }
        rw->p[iw].state = P_RESERVED;
    }
    e = w_unmap(pc->base, 1);
    if (e) {
        if (step) *step = "unmapping the executable view: UnmapViewOfFile2";
        unsigned long detail = os_detail;
        if (rw && w_mapview3(pc->sec, rw->p[iw].base, pc->len, PAGE_READWRITE) == 0)
            rw->p[iw].state = P_VIEW;
        os_detail = detail;
        if (rw) coalesce(rw);
        return e;
    }
    CloseHandle(pc->sec);
    pc->sec = NULL;
    pc->state = P_RESERVED;
    if (rw) coalesce(rw);
    return 0;
}

static int dual_inside(const vmc_os_dual_t *d, uintptr_t x, size_t len)
{
    return aligned(x, len) && x >= d->x && len <= d->len && x - d->x <= d->len - len;
}

/* A range that meets the pair's hole: -EINVAL, naming it (nothing of the
 * pair is ever mapped there). */
static int dual_meets_hole(const vmc_os_dual_t *d, uintptr_t x, size_t len, const char *what)
{
    if (x < d->hole_hi && x + len > d->hole_lo)
        return vmc__fail(-EINVAL, "cannot %s %#zx bytes at %#llx: the range meets the hole "
                         "%#llx-%#llx, which is not the W^X pair's", what, len,
                         (unsigned long long)x, (unsigned long long)d->hole_lo,
                         (unsigned long long)d->hole_hi);
    return 0;
}

int vmc__os_dual_map(uintptr_t xat, size_t len, uintptr_t hole_lo, uintptr_t hole_hi,
                     vmc_os_dual_t **out, uintptr_t *wat)
{
    mode_get();
    if (mode_slots)
        return vmc__fail(-ENOTSUP,
                         "W^X needs placeholders (VirtualAlloc2 with MEM_RESERVE_PLACEHOLDER, "
                         "Windows 10 1803 or later, Wine 9 or later) to map a code piece's two "
                         "views, and this system has none: in the slot fallback a view can only "
                         "replace whole slots of %zu KiB",
                         slot_size >> 10);
    if (!aligned(xat, len)) return vmc__fail(-EINVAL, "the W^X pair's range is not whole granules");
    if ((hole_lo || hole_hi) &&
        (hole_lo % GRANULE || hole_hi % GRANULE || hole_lo <= xat || hole_hi <= hole_lo ||
         hole_hi - xat >= len))
        return vmc__fail(-EINVAL, "the W^X pair's hole %#llx-%#llx is not whole granules strictly "
                         "inside %#llx+%#zx", (unsigned long long)hole_lo,
                         (unsigned long long)hole_hi, (unsigned long long)xat, len);
    vmc_os_dual_t *d = calloc(1, sizeof *d);
    if (!d) return vmc__fail(-ENOMEM, "out of memory for the W^X pair");
    uintptr_t w;
    int e = vmc__os_reserve(0, len, &w);
    if (e) {
        free(d);
        return vmc__fail(e, "cannot reserve the writable view (%zu bytes): VirtualAlloc2: %s", len,
                         win_why(e));
    }
    vmc__os_hold(w, w + len);
    d->x = xat;
    d->w = w;
    d->len = len;
    d->hole_lo = hole_lo;
    d->hole_hi = hole_hi;
    AcquireSRWLockExclusive(&resv_lock);
    d->next = dual_list;
    dual_list = d;
    ReleaseSRWLockExclusive(&resv_lock);
    *out = d;
    *wat = w;
    return 0;
}

void vmc__os_dual_unmap(vmc_os_dual_t *d)
{
    if (!d) return;
    AcquireSRWLockExclusive(&resv_lock);
    for (vmc_os_dual_t **pp = &dual_list; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    ReleaseSRWLockExclusive(&resv_lock);
    vmc__os_unhold(d->w, d->w + d->len);
    vmc__os_release(d->w, d->len);   /* every writable view with it */
    free(d);
}

int vmc__os_dual_file(vmc_os_dual_t *d, int *fd, size_t *size)
{
    (void)d;
    (void)fd;
    (void)size;
    return -ENOTSUP;   /* a section per piece, no file */
}

int vmc__os_dual_commit(vmc_os_dual_t *d, uintptr_t xat, size_t len)
{
    if (!dual_inside(d, xat, len))
        return vmc__fail(-EINVAL, "cannot commit %#zx bytes at %#llx: not whole granules of the W^X "
                         "pair", len, (unsigned long long)xat);
    int he = dual_meets_hole(d, xat, len, "commit");
    if (he) return he;
    uintptr_t w = d->w + (xat - d->x);
    const char *step = "not reserved on both views";
    AcquireSRWLockExclusive(&resv_lock);
    resv_t *rx = resv_find(xat, len), *rw = resv_find(w, len);
    int e = rx && rw ? 0 : -EINVAL;
    if (!e) e = piece_room(rx, 3);
    if (!e) e = piece_room(rw, 3);
    int ix = e ? 0 : piece_at(rx, xat), iw = e ? 0 : piece_at(rw, w);
    if (!e && (rx->p[ix].state != P_RESERVED || xat + len > rx->p[ix].base + rx->p[ix].len ||
               rw->p[iw].state != P_RESERVED || w + len > rw->p[iw].base + rw->p[iw].len))
        e = -EINVAL;
    HANDLE sec = NULL;
    int wmapped = 0;
    if (!e && (e = w_section_anon(len, &sec))) step = "creating its section: CreateFileMapping";
    if (!e && (e = split(rw, &iw, w, len)))
        step = "splitting the writable view's placeholder: VirtualFree";
    if (!e && (e = w_mapview3(sec, w, len, PAGE_READWRITE)))
        step = "mapping the writable view: MapViewOfFile3";
    if (!e) {
        wmapped = 1;
        rw->p[iw].state = P_VIEW;
    }
    if (!e && (e = split(rx, &ix, xat, len)))
        step = "splitting the executable view's placeholder: VirtualFree";
    if (!e && (e = w_mapview3(sec, xat, len, PAGE_EXECUTE_READ)))
        step = "mapping the executable view: MapViewOfFile3";
    if (!e) {
        rx->p[ix].state = P_DUAL;
        rx->p[ix].sec = sec;
        ReleaseSRWLockExclusive(&resv_lock);
        return 0;
    }
    e = vmc__fail(e, "cannot commit %#zx bytes at %#llx: %s: %s", len, (unsigned long long)xat, step,
                  win_why(e));
    /* Undo with calls of other kinds than the one that failed. */
    if (wmapped && w_unmap(w, 1) == 0) rw->p[iw].state = P_RESERVED;
    if (rw) coalesce(rw);
    if (rx) coalesce(rx);
    if (sec) CloseHandle(sec);
    ReleaseSRWLockExclusive(&resv_lock);
    return e;
}

/* Piece by piece: a W^X piece goes down whole (both views, its section),
 * anything else as vmc__os_decommit takes it.  A failure stops there: the
 * pieces before it are reserved, the failing one and those after it are as
 * they were, so doing it again finishes the job. */
int vmc__os_dual_decommit(vmc_os_dual_t *d, uintptr_t addr, size_t len)
{
    if (!dual_inside(d, addr, len))
        return vmc__fail(-EINVAL, "cannot decommit %#zx bytes at %#llx: not whole granules of the "
                         "W^X pair", len, (unsigned long long)addr);
    int he = dual_meets_hole(d, addr, len, "decommit");
    if (he) return he;
    AcquireSRWLockExclusive(&resv_lock);
    resv_t *r = resv_find(addr, len);
    int e = r ? 0 : -EINVAL;
    uintptr_t end = addr + len;
    /* Check first, so that a range that cuts a piece changes nothing. */
    for (uintptr_t a = addr; !e && a < end;) {
        const piece_t *pc = &r->p[piece_at(r, a)];
        if (pc->state == P_DUAL && (pc->base < addr || pc->base + pc->len > end)) e = -EINVAL;
        a = pc->base + pc->len;
    }
    if (e) {
        ReleaseSRWLockExclusive(&resv_lock);
        return vmc__fail(e, "cannot decommit %#zx bytes at %#llx: the range cuts a committed piece "
                         "(pieces are decommitted whole)", len, (unsigned long long)addr);
    }
    for (uintptr_t a = addr; !e && a < end;) {
        int i = piece_at(r, a);
        piece_t pc = r->p[i];
        size_t n = (pc.base + pc.len < end ? pc.base + pc.len : end) - a;
        if (pc.state == P_DUAL) {
            const char *step = "";
            e = dual_piece_down(r, i, &step);
            if (e)
                e = vmc__fail(e, "cannot decommit %#zx bytes at %#llx: %s: %s", len,
                              (unsigned long long)addr, step, win_why(e));
        } else {
            e = piece_room(r, 3);
            if (!e) e = decommit_locked(r, a, n);
            if (e)
                e = vmc__fail(e, "cannot re-reserve %#zx bytes at %#llx: %s: %s", len,
                              (unsigned long long)addr, vmc__os_rereserve_call(), win_why(e));
        }
        a += n;
    }
    coalesce(r);
    ReleaseSRWLockExclusive(&resv_lock);
    return e;
}

/* ---- the process ------------------------------------------------------------------ */

int vmc__os_main_image(uintptr_t *lo, uintptr_t *hi)
{
    /* The image's extent is SizeOfImage in its own PE header. */
    const unsigned char *base = (const unsigned char *)GetModuleHandleA(NULL);
    if (!base) return -ENOENT;
    const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)base;
    const IMAGE_NT_HEADERS64 *nt = (const IMAGE_NT_HEADERS64 *)(base + dos->e_lfanew);
    size_t page = vmc__os_page_size();
    *lo = (uintptr_t)base;
    *hi = ((uintptr_t)base + nt->OptionalHeader.SizeOfImage + page - 1) & ~(uintptr_t)(page - 1);
    return 0;
}

uintptr_t vmc__os_program_break(void) { return 0; }   /* no brk here */

int vmc__os_free_gaps(void (*gap)(void *ctx, uintptr_t lo, uintptr_t hi), void *ctx)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    uintptr_t a = (uintptr_t)si.lpMinimumApplicationAddress;
    uintptr_t top = (uintptr_t)si.lpMaximumApplicationAddress + 1;
    while (a < top) {
        MEMORY_BASIC_INFORMATION m;
        if (!VirtualQuery((void *)a, &m, sizeof m)) break;
        uintptr_t end = (uintptr_t)m.BaseAddress + m.RegionSize;
        if (m.State == MEM_FREE) gap(ctx, a, end < top ? end : top);
        if (end <= a) break;
        a = end;
    }
    return 0;
}

uintptr_t vmc__os_min_addr(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return ((uintptr_t)si.lpMinimumApplicationAddress + GRANULE - 1) & ~(uintptr_t)(GRANULE - 1);
}

int vmc__os_alloc(size_t len, void **out)
{
    int e = os_enter(VMC_OS_VIRTUALALLOC);
    if (e) return e;
    void *p = VirtualAlloc(NULL, len, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    if (!p) return win_err();
    *out = p;
    return 0;
}

int vmc__os_free(void *p, size_t len)
{
    (void)len;
    return w_free((uintptr_t)p, 0, MEM_RELEASE);
}

const char *vmc__os_commit_call(void)
{
    mode_get();
    return mode_slots ? "VirtualAlloc" : "VirtualAlloc2";
}

int vmc__os_getrandom(void *buf, size_t len)
{
    int e = os_enter(VMC_OS_GETRANDOM);
    if (e) return e;
    /* The system's preferred generator; no handle to open or leak. */
    NTSTATUS st = BCryptGenRandom(NULL, buf, (ULONG)len, BCRYPT_USE_SYSTEM_PREFERRED_RNG);
    os_detail = (unsigned long)st;
    return st == 0 ? 0 : -EIO;
}

int vmc__os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    (void)prepare;
    (void)parent;
    (void)child;
    return 0;   /* no fork: nothing is ever inherited half-locked */
}

long vmc__os_pid(void) { return (long)GetCurrentProcessId(); }

int vmc__os_auxval(unsigned long type, unsigned long *val)
{
    (void)type;
    (void)val;
    return -ENOTSUP;   /* the kernel hands a process no auxiliary vector here */
}

const char *vmc__os_handle_size_call(void) { return "GetFileSizeEx"; }

int vmc__os_fd_path(int fd, char *buf, size_t len)
{
    (void)fd;
    (void)buf;
    (void)len;
    return -ENOTSUP;   /* no file system view of the descriptors */
}

const char *vmc__os_self_exe_path(void) { return NULL; }

const char *vmc__os_map_view_call(void)
{
    mode_get();
    return mode_slots ? "MapViewOfFileEx" : "MapViewOfFile3";
}

int vmc__os_fstat(int fd, struct stat *st)
{
    int e = os_enter(VMC_OS_FSTAT);
    if (e) return e;
    /* The C runtime's descriptor table first, as the view will use it:
     * fstat alone can answer for a descriptor _get_osfhandle refuses. */
    if (_get_osfhandle(fd) == -1) {
        os_detail = ERROR_INVALID_HANDLE;
        return -EBADF;
    }
    return fstat(fd, st) ? -errno : 0;
}

/* ---- file views from a HANDLE ------------------------------------------------------ */

int vmc__os_handle_size(void *handle, uint64_t *size, int *regular)
{
    int e = os_enter(VMC_OS_FSTAT);
    if (e) return e;
    if (!handle || handle == INVALID_HANDLE_VALUE) {
        os_detail = ERROR_INVALID_HANDLE;
        return -EBADF;
    }
    DWORD type = GetFileType(handle);
    if (type == FILE_TYPE_UNKNOWN && GetLastError() != NO_ERROR) return win_err();
    if (type != FILE_TYPE_DISK) {
        *regular = 0;
        *size = 0;
        return 0;
    }
    LARGE_INTEGER n;
    if (!GetFileSizeEx(handle, &n)) return win_err();
    *regular = 1;
    *size = (uint64_t)n.QuadPart;
    return 0;
}

/* ---- unwinding through generated code ------------------------------------------------
 * RtlAddFunctionTable, not one RtlInstallFunctionTableCallback over the
 * whole code region: the system asks the first dynamic table whose range
 * holds a pc and stops there (Wine 8 and 10: a callback over the region hid
 * a table added later inside it), and DLLs copied into the region register
 * their own .pdata, relative to their own image base.  A table's range is
 * only its functions', so tables of generated code and of DLLs never
 * overlap. */

int vmc__os_unwind_add(const void *table, uint32_t n, uintptr_t base)
{
    int e = os_enter(VMC_OS_FUNCTION_TABLE);
    if (e) return e;
    if (RtlAddFunctionTable((PRUNTIME_FUNCTION)(uintptr_t)table, n, base)) return 0;
    os_detail = 0;   /* no error code: it fails only for lack of memory */
    return -ENOMEM;
}

int vmc__os_unwind_remove(const void *table)
{
    return RtlDeleteFunctionTable((PRUNTIME_FUNCTION)(uintptr_t)table) ? 0 : -ENOENT;
}

/* ---- Arbitrary Code Guard ---------------------------------------------------------------
 * ProcessDynamicCodePolicy's ProhibitDynamicCode makes the system refuse
 * executable memory that was ever writable (VirtualAlloc/VirtualProtect with
 * an execute protection, and an executable view of a section mapped writable
 * anywhere): nothing vmcode commits as code could run.  A thread may opt out
 * where the policy allows it (AllowThreadOptOut, then SetThreadInformation
 * with ThreadDynamicCodePolicy).  GetProcessMitigationPolicy is Windows 8's;
 * where it is missing there is no such policy. */

static int simulate_acg;

void vmc__os_simulate_acg(int on) { simulate_acg = on; }

typedef BOOL (WINAPI *get_policy_fn)(HANDLE, int, void *, SIZE_T);
typedef BOOL (WINAPI *get_thread_info_fn)(HANDLE, int, void *, DWORD);

int vmc__os_dynamic_code_allowed(const char **why)
{
    *why = NULL;
    int e = os_enter(VMC_OS_MITIGATION);
    if (e) return e;
    HMODULE k32 = GetModuleHandleA("kernel32.dll");
    get_policy_fn get = k32 ? (get_policy_fn)(void (*)(void))GetProcAddress(k32, "GetProcessMitigationPolicy")
                            : NULL;
    DWORD flags = 0;   /* PROCESS_MITIGATION_DYNAMIC_CODE_POLICY: bit 0 ProhibitDynamicCode,
                          bit 1 AllowThreadOptOut, bit 2 AllowRemoteDowngrade */
    if (simulate_acg) flags = 1;
    else if (get && !get(GetCurrentProcess(), 2 /* ProcessDynamicCodePolicy */, &flags, sizeof flags))
        return win_err();
    if (!(flags & 1)) return 0;
    if (flags & 2) {
        /* ThreadDynamicCodePolicy (2): 1 = THREAD_DYNAMIC_CODE_ALLOW. */
        HMODULE kb = GetModuleHandleA("kernelbase.dll");
        get_thread_info_fn ti = kb ? (get_thread_info_fn)(void (*)(void))GetProcAddress(kb, "GetThreadInformation")
                                   : NULL;
        DWORD opt = 0;
        if (ti && ti(GetCurrentThread(), 2, &opt, sizeof opt) && opt == 1) return 0;
    }
    *why = flags & 2 ? "this process runs under Arbitrary Code Guard (ProcessDynamicCodePolicy "
                       "ProhibitDynamicCode; this thread did not opt out through ThreadDynamicCodePolicy)"
                     : "this process runs under Arbitrary Code Guard (ProcessDynamicCodePolicy "
                       "ProhibitDynamicCode)";
    return -EPERM;
}
