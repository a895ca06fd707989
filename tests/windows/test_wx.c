/* Windows: W^X through the public API (vmc_open -w_xor_x): code allocated,
 * written through the writable view and run from the code region;
 * VirtualQuery over the whole region and the whole writable view after
 * every kind of operation (never writable and executable at one address,
 * never free address space inside either); each Windows call of the W^X
 * path failed in turn, with its exact message and nothing leaked; the slot
 * fallback refuses -w_xor_x by name. */
#include "test.h"
#include "os/os.h"
#include "region/region.h"
#include "region/wx.h"

#include <windows.h>

#define G ((size_t)64 << 10)

static const unsigned char ret_n[] = {0xb8, 0, 0, 0, 0, 0xc3};   /* mov eax, n; ret */

static void put_ret(void *w, unsigned char n)
{
    memcpy(w, ret_n, sizeof ret_n);
    ((unsigned char *)w)[1] = n;
}

static int call_x(const void *x) { return ((int (*)(void))x)(); }

typedef struct scan { int free, wx, regions, committed; } scan_t;

/* Walk [base, base+len) with VirtualQuery. */
static scan_t scan(uintptr_t base, size_t len)
{
    scan_t s = {0, 0, 0, 0};
    for (uintptr_t a = base; a < base + len;) {
        MEMORY_BASIC_INFORMATION m;
        if (!VirtualQuery((void *)a, &m, sizeof m)) break;
        s.regions++;
        if (m.State == MEM_FREE) s.free++;
        if (m.State == MEM_COMMIT) s.committed++;
        DWORD p = m.Protect & 0xff;
        if (m.State == MEM_COMMIT && (p == PAGE_EXECUTE_READWRITE || p == PAGE_EXECUTE_WRITECOPY)) s.wx++;
        a = (uintptr_t)m.BaseAddress + m.RegionSize;
    }
    return s;
}

/* The code region and its writable view: no hole, no W+X page, and nothing
 * W+X anywhere else in the process either. */
#define ASSERT_WX_WHOLE(in)                                                                     \
    do {                                                                                         \
        scan_t x_ = scan((uintptr_t)(in).code_base, (in).code_size);                             \
        scan_t w_ = scan((uintptr_t)(in).code_wbase, (in).code_size);                            \
        ASSERT_MSG(x_.free == 0 && w_.free == 0, "free regions inside: %d (code), %d (writable)", \
                   x_.free, w_.free);                                                            \
        ASSERT_MSG(x_.wx == 0 && w_.wx == 0, "writable+executable: %d (code), %d (writable)",     \
                   x_.wx, w_.wx);                                                                \
        ASSERT_EQ(vt_rwx_count(), 0);                                                            \
    } while (0)

static int all_free(uintptr_t base, size_t len)
{
    MEMORY_BASIC_INFORMATION m;
    return VirtualQuery((void *)base, &m, sizeof m) && m.State == MEM_FREE &&
           (uintptr_t)m.BaseAddress + m.RegionSize >= base + len;
}

/* What a failure must not leave: handles (sections) and views (mapped
 * regions) anywhere in the process. */
typedef struct leaks { DWORD handles; int views; } leaks_t;

static leaks_t leaks_now(void)
{
    leaks_t l = {0, 0};
    GetProcessHandleCount(GetCurrentProcess(), &l.handles);
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    for (uintptr_t a = (uintptr_t)si.lpMinimumApplicationAddress;
         a < (uintptr_t)si.lpMaximumApplicationAddress;) {
        MEMORY_BASIC_INFORMATION m;
        if (!VirtualQuery((void *)a, &m, sizeof m)) break;
        if (m.State != MEM_FREE && m.Type == MEM_MAPPED) l.views++;
        a = (uintptr_t)m.BaseAddress + m.RegionSize;
    }
    return l;
}

#define ASSERT_NO_WIN_LEAK(before)                                                              \
    do {                                                                                         \
        leaks_t now_ = leaks_now();                                                              \
        ASSERT_MSG(now_.handles == (before).handles, "%lu handles, %lu before",                  \
                   (unsigned long)now_.handles, (unsigned long)(before).handles);                \
        ASSERT_MSG(now_.views == (before).views, "%d views, %d before", now_.views, (before).views); \
    } while (0)

TEST(win_wx_alloc_write_through_w_run_through_x_never_wx)
{
    vmc_t *v = vt_open("-w_xor_x -vm_size 256M -vmheap_size 64M");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.w_xor_x, 1);
    ASSERT(in.code_wbase != in.code_base);
    uintptr_t x0 = (uintptr_t)in.code_base, w0 = (uintptr_t)in.code_wbase;
    ASSERT(w0 + in.code_size <= x0 || x0 + in.code_size <= w0);
    ASSERT_WX_WHOLE(in);
    ASSERT_EQ(scan(x0, in.code_size).committed, 0);
    ASSERT_EQ(scan(w0, in.code_size).committed, 0);

    enum { N = 300 };
    static vmc_span_t s[N];
    for (int i = 0; i < N; i++) {
        ASSERT_OK(vmc_alloc(v, 16 + (size_t)(i % 9) * 70, VMC_CODE, &s[i]));
        ASSERT(s[i].x != s[i].w);
        ASSERT_EQ((char *)s[i].w - (char *)s[i].x, (char *)in.code_wbase - (char *)in.code_base);
        ASSERT(vmc_writable(v, s[i].x) == s[i].w);
        ASSERT(vmc_executable(v, s[i].w) == s[i].x);
        put_ret(s[i].w, (unsigned char)i);
    }
    for (int i = 0; i < N; i++) ASSERT_EQ(call_x(s[i].x), (unsigned char)i);
    /* a large one, a stub, data in the code region */
    vmc_span_t big, rd;
    ASSERT_OK(vmc_alloc(v, 300 << 10, VMC_CODE, &big));
    put_ret((char *)big.w + (200 << 10), 77);
    ASSERT_EQ(call_x((char *)big.x + (200 << 10)), 77);
    void *stub;
    ASSERT_OK(vmc_stub(v, (uintptr_t)&vmc_open, &stub));
    ASSERT_OK(vmc_alloc(v, 100, VMC_RDATA, &rd));
    ASSERT(rd.x == rd.w);
    memset(rd.w, 5, 100);
    MEMORY_BASIC_INFORMATION m;
    ASSERT(VirtualQuery(s[0].x, &m, sizeof m));
    ASSERT_EQ(m.Protect, PAGE_EXECUTE_READ);
    ASSERT(VirtualQuery(s[0].w, &m, sizeof m));
    ASSERT_EQ(m.Protect, PAGE_READWRITE);
    ASSERT(VirtualQuery(rd.x, &m, sizeof m));
    ASSERT_EQ(m.Protect, PAGE_READWRITE);
    ASSERT_WX_WHOLE(in);

    /* rewritten in place, seen through x */
    for (int i = 0; i < N; i++) put_ret(s[i].w, (unsigned char)(i + 1));
    for (int i = 0; i < N; i++) ASSERT_EQ(call_x(s[i].x), (unsigned char)(i + 1));

    /* frees, by either view */
    for (int i = 0; i < N; i += 2) ASSERT_OK(vmc_free(v, s[i].w));
    uintptr_t bx = (uintptr_t)big.x, bw = (uintptr_t)big.w;
    ASSERT_OK(vmc_free(v, big.x));
    ASSERT(VirtualQuery((void *)bx, &m, sizeof m));
    ASSERT_EQ(m.State, MEM_RESERVE);
    ASSERT(VirtualQuery((void *)bw, &m, sizeof m));
    ASSERT_EQ(m.State, MEM_RESERVE);
    ASSERT_OK(vmc_free(v, rd.x));
    ASSERT_WX_WHOLE(in);
    for (int i = 1; i < N; i += 2) ASSERT_EQ(call_x(s[i].x), (unsigned char)(i + 1));

    /* a file mapped into the code region, as a library would be */
    FILE *f = tmpfile();
    if (!f) SKIP("no temporary file");
    for (size_t k = 0; k < 2 * G; k++) fputc(k < G ? 'x' : 'y', f);
    fflush(f);
    void *p, *q;
    ASSERT_OK(vmc_map_file(v, fileno(f), 0, 2 * G, VMC_OS_READ | VMC_OS_EXEC, VMC_MAP_REACHABLE, &p));
    ASSERT_OK(vmc_map_file(v, fileno(f), G, G, VMC_OS_READ | VMC_OS_WRITE, VMC_MAP_REACHABLE, &q));
    ASSERT((uintptr_t)p >= x0 && (uintptr_t)p < x0 + in.code_size);
    ASSERT_EQ(((char *)p)[G], 'y');
    ((char *)q)[0] = 'z';   /* private copy on write */
    ASSERT(vmc_writable(v, p) == NULL);
    ASSERT_WX_WHOLE(in);
    ASSERT_OK(vmc_unmap_file(v, p, 2 * G));
    ASSERT_OK(vmc_unmap_file(v, q, G));
    ASSERT_WX_WHOLE(in);
    fclose(f);

    /* and code goes on after all of it */
    vmc_span_t n;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &n));
    put_ret(n.w, 99);
    ASSERT_EQ(call_x(n.x), 99);
    ASSERT_WX_WHOLE(in);
    vmc_close(v);
    ASSERT(all_free(x0, in.code_size));
    ASSERT(all_free(w0, in.code_size));
    ASSERT_EQ(vt_rwx_count(), 0);
}

TEST_SIGNAL(win_wx_write_through_x_faults, SIGSEGV)
{
    vmc_t *v = vt_open("-w_xor_x -vm_size 64M -vmheap_size 0");
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 32, VMC_CODE, &s));
    put_ret(s.w, 1);
    ASSERT_EQ(call_x(s.x), 1);
    *(volatile unsigned char *)s.x = 0xc3;
}

TEST_SIGNAL(win_wx_execute_through_w_faults, SIGSEGV)
{
    vmc_t *v = vt_open("-w_xor_x -vm_size 64M -vmheap_size 0");
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 32, VMC_CODE, &s));
    put_ret(s.w, 1);
    ASSERT_EQ(call_x(s.x), 1);
    call_x(s.w);
}

/* A code region opened without W^X, for turning it on under a fault. */
static void region_open(vmc_region_t *r)
{
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, "-vm_size 64M -no_near_app"));
    vmc_place_t pl;
    ASSERT_OK(vmc__region_open_code(r, &o, &pl));
}

/* One call of the W^X path failed (once, or for good): the exact message,
 * nothing changed, nothing leaked, and the same step works afterwards. */
static void commit_fails(vmc_region_t *r, uintptr_t a, size_t len, enum vmc_os_call call,
                         unsigned long nth, int persistent, const char *step)
{
    leaks_t before = leaks_now();
    scan_t x0 = scan(r->base, r->size), w0 = scan(r->wbase, r->size);
    vmc__os_fault(call, nth, ENOMEM, persistent);
    int e = vmc__region_commit(r, a, len, VMC_CODE);
    vmc__os_fault_clear();
    ASSERT_EQ(e, -ENOMEM);
    char want[256];
    snprintf(want, sizeof want, "code region: cannot commit %#zx bytes at %#llx: %s: Cannot allocate memory",
             len, (unsigned long long)a, step);
    ASSERT_STR_EQ(vmc_last_error(), want);
    scan_t x1 = scan(r->base, r->size), w1 = scan(r->wbase, r->size);
    ASSERT_EQ(x1.free + w1.free, 0);
    ASSERT_EQ(x1.committed, x0.committed);
    ASSERT_EQ(w1.committed, w0.committed);
    ASSERT_NO_WIN_LEAK(before);
    ASSERT_OK(vmc__region_commit(r, a, len, VMC_CODE));
    put_ret((void *)(r->wbase + (a - r->base)), 3);
    ASSERT_EQ(call_x((void *)a), 3);
    ASSERT_OK(vmc__region_decommit(r, a, len));
    ASSERT_NO_WIN_LEAK(before);
}

static void decommit_fails(vmc_region_t *r, uintptr_t a, size_t len, unsigned long nth,
                           int persistent, const char *step)
{
    leaks_t before = leaks_now();
    ASSERT_OK(vmc__region_commit(r, a, len, VMC_CODE));
    put_ret((void *)(r->wbase + (a - r->base)), 4);
    vmc__os_fault(VMC_OS_UNMAPVIEW, nth, ENOMEM, persistent);
    int e = vmc__region_decommit(r, a, len);
    vmc__os_fault_clear();
    ASSERT_EQ(e, -ENOMEM);
    char want[256];
    snprintf(want, sizeof want, "code region: cannot decommit %#zx bytes at %#llx: %s: Cannot allocate memory",
             len, (unsigned long long)a, step);
    ASSERT_STR_EQ(vmc_last_error(), want);
    /* nothing changed: still runnable, still writable */
    ASSERT_EQ(call_x((void *)a), 4);
    put_ret((void *)(r->wbase + (a - r->base)), 5);
    ASSERT_EQ(call_x((void *)a), 5);
    ASSERT_EQ(scan(r->base, r->size).free + scan(r->wbase, r->size).free, 0);
    ASSERT_OK(vmc__region_decommit(r, a, len));
    ASSERT_NO_WIN_LEAK(before);
}

TEST(win_wx_each_call_failed_has_its_message_and_leaves_nothing)
{
    if (!(vmc__os_caps() & VMC_OS_CAP_DUAL)) SKIP("slot mode: no W^X pairs");
    vmc_region_t r;
    region_open(&r);
    /* once through first, so that what the system makes on first use is
     * not taken for a leak */
    ASSERT_OK(vmc__wx_open(&r));
    ASSERT_OK(vmc__region_commit(&r, r.base, G, VMC_CODE));
    ASSERT_OK(vmc__region_decommit(&r, r.base, G));
    vmc__wx_close(&r);
    leaks_t before = leaks_now();
    /* the writable view's reservation */
    vmc__os_fault(VMC_OS_VIRTUALALLOC, 1, ENOMEM, 0);
    ASSERT_EQ(vmc__wx_open(&r), -ENOMEM);
    vmc__os_fault_clear();
    char want[256];
    snprintf(want, sizeof want, "w_xor_x: cannot reserve the writable view (%zu bytes): VirtualAlloc2: "
             "Cannot allocate memory", r.size);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT(!r.wx && r.wbase == r.base);
    ASSERT_NO_WIN_LEAK(before);
    ASSERT_OK(vmc__wx_open(&r));
    ASSERT(r.wx);

    uintptr_t a = r.base + 16 * G;
    for (int persistent = 0; persistent < 2; persistent++) {
        commit_fails(&r, a, 2 * G, VMC_OS_CREATEFILEMAPPING, 1, persistent,
                     "creating its section: CreateFileMapping");
        commit_fails(&r, a, 2 * G, VMC_OS_VIRTUALFREE, 1, persistent,
                     "splitting the writable view's placeholder: VirtualFree");
        commit_fails(&r, a, 2 * G, VMC_OS_VIRTUALFREE, 2, persistent,
                     "splitting the executable view's placeholder: VirtualFree");
        commit_fails(&r, a, 2 * G, VMC_OS_MAPVIEW, 1, persistent, "mapping the writable view: MapViewOfFile3");
        commit_fails(&r, a, 2 * G, VMC_OS_MAPVIEW, 2, persistent,
                     "mapping the executable view: MapViewOfFile3");
        decommit_fails(&r, a, 2 * G, 1, persistent, "closing the writable view: UnmapViewOfFile2");
        decommit_fails(&r, a, 2 * G, 2, persistent, "unmapping the executable view: UnmapViewOfFile2");
    }
    vmc__wx_close(&r);
    vmc__region_close(&r);
    ASSERT_NO_WIN_LEAK(before);
}

/* The public operations with each Windows call of the W^X path failed in
 * turn, once: -ENOMEM and a message, never a hole or a W+X page, nothing
 * left after close. */
TEST(win_wx_api_fault_sweep)
{
    if (!(vmc__os_caps() & VMC_OS_CAP_DUAL)) SKIP("slot mode: no W^X pairs");
    static const enum vmc_os_call kinds[] = {VMC_OS_VIRTUALALLOC, VMC_OS_VIRTUALFREE,
                                             VMC_OS_CREATEFILEMAPPING, VMC_OS_MAPVIEW,
                                             VMC_OS_UNMAPVIEW};
    vmc_t *warm = vt_open("-w_xor_x -vm_size 64M -vmheap_size 0");
    vmc_span_t ws;
    ASSERT_OK(vmc_alloc(warm, 100, VMC_CODE, &ws));
    vmc_close(warm);
    leaks_t before = leaks_now();
    int hits = 0, failures = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (unsigned long nth = 1; nth <= 12; nth++) {
            vmc_options_t o;
            vmc_options_init(&o);
            ASSERT_OK(vmc_options_parse(&o, "-w_xor_x -vm_size 64M -vmheap_size 0 -no_near_app"));
            vmc__os_fault(kinds[k], nth, ENOMEM, 0);
            vmc_t *v = NULL;
            vmc_span_t s[3];
            int n = 0;
            int e = vmc_open(&o, &v);
            for (int i = 0; !e && i < 3; i++) {
                e = vmc_alloc(v, i == 1 ? 200 << 10 : 100, VMC_CODE, &s[i]);
                if (!e) {
                    put_ret(s[i].w, (unsigned char)(i + 1));
                    ASSERT_EQ(call_x(s[i].x), i + 1);
                    n++;
                }
            }
            for (int i = 0; !e && i < n; i++) e = vmc_free(v, s[i].x);
            hits += (int)vmc__os_faults_hit();
            vmc__os_fault_clear();
            ASSERT_MSG(!e || e == -ENOMEM, "%s #%lu: %d", vmc__os_call_name(kinds[k]), nth, e);
            if (e) {
                failures++;
                ASSERT_MSG(vmc_last_error()[0], "%s #%lu: no message", vmc__os_call_name(kinds[k]), nth);
            }
            if (v) {
                vmc_info_t in;
                ASSERT_OK(vmc_info(v, &in));
                ASSERT_WX_WHOLE(in);
                vmc_close(v);
                ASSERT(all_free((uintptr_t)in.code_base, in.code_size));
                ASSERT(all_free((uintptr_t)in.code_wbase, in.code_size));
            }
            ASSERT_NO_WIN_LEAK(before);
        }
    ASSERT_GT(hits, 10);
    ASSERT_GT(failures, 5);
}

/* Without placeholders a view replaces whole slots only, far coarser than a
 * block: -w_xor_x is refused, naming what is missing. */
TEST(win_wx_refused_in_the_slot_fallback)
{
    vmc__os_force_slots(0);
    ASSERT_EQ(vmc__os_caps() & VMC_OS_CAP_DUAL, 0);
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, "-w_xor_x -vm_size 64M -vmheap_size 0"));
    vmc_t *v = NULL;
    ASSERT_EQ(vmc_open(&o, &v), -ENOTSUP);
    ASSERT(v == NULL);
    ASSERT_STR_EQ(vmc_last_error(),
                  "w_xor_x: W^X needs placeholders (VirtualAlloc2 with MEM_RESERVE_PLACEHOLDER, Windows 10 "
                  "1803 or later, Wine 9 or later) to map a code piece's two views, and this system has "
                  "none: in the slot fallback a view can only replace whole slots of 640 KiB");
    /* without W^X the same process opens */
    vmc_close(vt_open("-vm_size 64M -vmheap_size 0"));
}

typedef struct worker { vmc_t *v; int id, ok; } worker_t;

static DWORD WINAPI wx_work(void *arg)
{
    worker_t *w = arg;
    vmc_span_t s[48];
    w->ok = 1;
    for (int round = 0; round < 20 && w->ok; round++) {
        for (int i = 0; i < 48; i++) {
            size_t size = i % 16 == 15 ? 100 << 10 : 32 + (size_t)i * 40;   /* some whole blocks */
            if (vmc_alloc(w->v, size, VMC_CODE, &s[i])) {
                w->ok = 0;
                return 0;
            }
            put_ret(s[i].w, (unsigned char)(w->id * 50 + i));
        }
        for (int i = 0; i < 48; i++) {
            if (call_x(s[i].x) != w->id * 50 + i) w->ok = 0;
            if (vmc_free(w->v, s[i].x)) w->ok = 0;
        }
    }
    return 0;
}

/* Threads allocate, write, run and free code at once: the pieces' sections
 * and views change under the OS layer's lock, and nothing is ever W+X. */
TEST_THREADED(win_wx_threads_allocate_write_run_free)
{
    vmc_t *v = vt_open("-w_xor_x -vm_size 256M -vmheap_size 0");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    worker_t w[4];
    HANDLE t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){v, i, 0};
        t[i] = CreateThread(NULL, 0, wx_work, &w[i], 0, NULL);
        ASSERT(t[i] != NULL);
    }
    WaitForMultipleObjects(4, t, TRUE, INFINITE);
    for (int i = 0; i < 4; i++) {
        CloseHandle(t[i]);
        ASSERT(w[i].ok);
    }
    ASSERT_WX_WHOLE(in);
    vmc_close(v);
    ASSERT(all_free((uintptr_t)in.code_wbase, in.code_size));
}
