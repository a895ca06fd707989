/* Windows: the public API on the ported layers: vmc_open's 2 GiB code region
 * next to the main module, code allocated, written and called, reach
 * constraints, a full region, reachable file mappings, what is refused by
 * name, failures of each Windows call during vmc_open, and threads. */
#include "test.h"
#include "os/os.h"

#include <windows.h>

#define G ((size_t)64 << 10)

static int all_free(uintptr_t base, size_t len)
{
    MEMORY_BASIC_INFORMATION m;
    return VirtualQuery((void *)base, &m, sizeof m) && m.State == MEM_FREE && m.RegionSize >= len;
}

static const unsigned char ret_n[] = {0xb8, 0, 0, 0, 0, 0xc3};   /* mov eax, n; ret */

static void put_ret(const vmc_span_t *s, unsigned char n)
{
    memcpy(s->w, ret_n, sizeof ret_n);
    ((unsigned char *)s->w)[1] = n;
}

static int call(const vmc_span_t *s) { return ((int (*)(void))s->x)(); }

TEST(win_api_open_default_2g_near_the_main_module)
{
    vmc_t *v = vt_open("");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.code_size, (size_t)2 << 30);
    ASSERT_EQ(in.heap_size, (size_t)1 << 30);
    ASSERT_EQ(in.placement, VMC_PLACED_NEAR_APP);
    ASSERT_EQ(in.reach_lo, (uintptr_t)GetModuleHandleA(NULL));
    ASSERT_GE(in.code_reaching, in.code_size / 10 * 9);
    uintptr_t b = (uintptr_t)in.code_base, h = (uintptr_t)in.heap_base;
    ASSERT_EQ(vt_free_pieces(b, in.code_size), 0);
    ASSERT_EQ(vt_free_pieces(h, in.heap_size), 0);
    ASSERT(h + in.heap_size <= b || b + in.code_size <= h);
    vmc_close(v);
    ASSERT(all_free(b, in.code_size));
    ASSERT(all_free(h, in.heap_size));
}

TEST(win_api_code_written_and_called)
{
    vmc_t *v = vt_open("-vm_size 256M -vmheap_size 64M");
    vmc_span_t s[200];
    for (int i = 0; i < 200; i++) {
        ASSERT_OK(vmc_alloc(v, 16 + (size_t)i * 97, VMC_CODE, &s[i]));
        put_ret(&s[i], (unsigned char)i);
    }
    for (int i = 0; i < 200; i++) ASSERT_EQ(call(&s[i]), i);
    /* A large one (a run of its own), data in the heap region. */
    vmc_span_t big, d;
    ASSERT_OK(vmc_alloc(v, 300 << 10, VMC_CODE, &big));
    put_ret(&big, 99);
    ASSERT_EQ(call(&big), 99);
    ASSERT_OK(vmc_alloc(v, 100, VMC_DATA, &d));
    memset(d.w, 7, 100);
    for (int i = 0; i < 200; i += 2) ASSERT_OK(vmc_free(v, s[i].x));
    ASSERT_OK(vmc_free(v, big.x));
    for (int i = 1; i < 200; i += 2) ASSERT_EQ(call(&s[i]), i);
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(vt_free_pieces((uintptr_t)in.code_base, in.code_size), 0);
    vmc_close(v);
}

TEST(win_api_reach_constraint)
{
    vmc_t *v = vt_open("");
    uintptr_t lo = (uintptr_t)GetModuleHandleA(NULL), hi = lo + 4096;
    for (int i = 0; i < 50; i++) {
        vmc_span_t s;
        ASSERT_OK(vmc_alloc_reaching(v, 4000, VMC_CODE, lo, hi, &s));
        ASSERT(vmc_span_reaches((uintptr_t)s.x, (uintptr_t)s.x + s.size, lo, hi));
    }
    vmc_close(v);
}

TEST(win_api_full_region_enospc_keeps_code)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0");
    vmc_span_t first;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &first));
    put_ret(&first, 5);
    int e = 0, n = 0;
    vmc_span_t s;
    while ((e = vmc_alloc(v, 1 << 20, VMC_CODE, &s)) == 0) n++;
    ASSERT_EQ(e, -ENOSPC);
    ASSERT_STR_CONTAINS(vmc_last_error(), "code region");
    ASSERT_GT(n, 50);
    ASSERT_EQ(call(&first), 5);
    vmc_close(v);
}

TEST(win_api_map_file_reachable)
{
    FILE *f = tmpfile();
    if (!f) SKIP("no temporary file");
    for (size_t k = 0; k < 2 * G; k++) fputc(k < G ? 'x' : 'y', f);
    fflush(f);
    vmc_t *v = vt_open("-vm_size 256M -vmheap_size 64M");
    void *p;
    ASSERT_OK(vmc_map_file(v, fileno(f), G, G, VMC_OS_READ, VMC_MAP_REACHABLE, &p));
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT((uintptr_t)p >= (uintptr_t)in.code_base &&
           (uintptr_t)p < (uintptr_t)in.code_base + in.code_size);
    ASSERT_EQ(((char *)p)[10], 'y');
    ASSERT_EQ(vmc_map_file(v, fileno(f), 4096, G, VMC_OS_READ, 0, &p), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "granularity");
    ASSERT_OK(vmc_map_file(v, fileno(f), 0, G, VMC_OS_READ, 0, &p));
    ASSERT_EQ(((char *)p)[0], 'x');
    ASSERT_OK(vmc_unmap_file(v, p, G));
    ASSERT_EQ(vt_free_pieces((uintptr_t)in.heap_base, in.heap_size), 0);
    vmc_close(v);
    fclose(f);
}

TEST(win_api_refused_by_name)
{
    vmc_t *v = vt_open("-vm_size 64M");
    vmc_lib_t *l;
    ASSERT_EQ(vmc_lib_load(v, "no-such-plugin.dll", 0, &l), -ENOENT);
    ASSERT_STR_CONTAINS(vmc_last_error(), "no-such-plugin.dll: cannot open: ");
    vmc_close(v);
}

/* Each Windows call vmc_open and a first allocation make, failed in turn:
 * a clean error with a message, nothing left reserved, and the next open
 * works. */
TEST(win_api_open_fault_sweep)
{
    static const enum vmc_os_call kinds[] = {VMC_OS_VIRTUALALLOC, VMC_OS_VIRTUALFREE,
                                             VMC_OS_GETRANDOM};
    int hits = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (unsigned long nth = 1; nth <= 6; nth++) {
            vmc_options_t o;
            vmc_options_init(&o);
            ASSERT_OK(vmc_options_parse(&o, "-vm_size 64M -vmheap_size 64M -no_near_app"));
            vmc__os_fault(kinds[k], nth, ENOMEM, 0);
            vmc_t *v = NULL;
            vmc_span_t s;
            int e = vmc_open(&o, &v);
            if (!e) e = vmc_alloc(v, 100, VMC_CODE, &s);
            hits += (int)vmc__os_faults_hit();
            vmc__os_fault_clear();
            ASSERT_MSG(!e || e == -ENOMEM || e == -EIO, "%s #%lu: %d", vmc__os_call_name(kinds[k]), nth, e);
            if (e) ASSERT_MSG(vmc_last_error()[0], "%s #%lu: no message", vmc__os_call_name(kinds[k]), nth);
            if (v) {
                vmc_info_t in;
                ASSERT_OK(vmc_info(v, &in));
                ASSERT_EQ(vt_free_pieces((uintptr_t)in.code_base, in.code_size), 0);
                vmc_close(v);
                ASSERT(all_free((uintptr_t)in.code_base, in.code_size));
            }
        }
    ASSERT_GT(hits, 0);
    vmc_close(vt_open("-vm_size 64M"));
}

typedef struct worker { vmc_t *v; int id, ok; } worker_t;

static DWORD WINAPI work(void *arg)
{
    worker_t *w = arg;
    vmc_span_t s[64];
    w->ok = 1;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 64; i++) {
            if (vmc_alloc(w->v, 32 + (size_t)i * 50, VMC_CODE, &s[i])) {
                w->ok = 0;
                return 0;
            }
            put_ret(&s[i], (unsigned char)(w->id * 16 + i % 16));
        }
        for (int i = 0; i < 64; i++) {
            if (call(&s[i]) != w->id * 16 + i % 16) w->ok = 0;
            vmc_free(w->v, s[i].x);
        }
    }
    return 0;
}

TEST_THREADED(win_api_threads_allocate_and_free)
{
    vmc_t *v = vt_open("-vm_size 256M -vmheap_size 0");
    worker_t w[4];
    HANDLE t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){v, i, 0};
        t[i] = CreateThread(NULL, 0, work, &w[i], 0, NULL);
        ASSERT(t[i] != NULL);
    }
    WaitForMultipleObjects(4, t, TRUE, INFINITE);
    for (int i = 0; i < 4; i++) {
        CloseHandle(t[i]);
        ASSERT(w[i].ok);
    }
    vmc_close(v);
}
