/* The fault-injection sweep: for every public operation and every kind of
 * OS call, fail the k-th call (k = 1, 2, ... until a run sees no injected
 * failure), once and for good, with the errnos the kernel really returns.
 * After each: the result is success or exactly the injected errno with a
 * message; undoing the operation leaves no mapping, block or descriptor
 * behind; and the handle still works. */
#include "test.h"

#include <dlfcn.h>
#include "vmcode.h"
#include "os/os.h"
#include "lib/debug_registry.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct op_ctx {
    vmc_t *v;                   /* a handle opened before the fault        */
    void *p;                    /* what the operation made, to undo        */
    vmc_t *opened;              /* op_open's result                        */
} op_ctx_t;

typedef struct op {
    const char *name;
    const char *options;        /* for the handle; NULL: the op opens one  */
    int (*run)(op_ctx_t *c);
    void (*undo)(op_ctx_t *c);
} op_t;

static int run_open(op_ctx_t *c, const char *text)
{
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, text));
    return vmc_open(&o, &c->opened);
}
static int op_open_default(op_ctx_t *c) { return run_open(c, ""); }
static int op_open_no_near(op_ctx_t *c) { return run_open(c, "-no_near_app"); }
static int op_open_small(op_ctx_t *c) { return run_open(c, "-vm_size 64M -vmheap_size 0 -no_allow_smaller"); }
static int op_open_wx(op_ctx_t *c) { return run_open(c, "-w_xor_x -vm_size 64M -vmheap_size 0"); }
static void undo_open(op_ctx_t *c) { vmc_close(c->opened); }

static int alloc_into(op_ctx_t *c, size_t size, int kind)
{
    vmc_span_t s;
    int r = vmc_alloc(c->v, size, kind, &s);
    if (!r) c->p = s.x;
    return r;
}
static int op_alloc_code(op_ctx_t *c) { return alloc_into(c, 100, VMC_CODE); }
static int op_alloc_rdata(op_ctx_t *c) { return alloc_into(c, 100, VMC_RDATA); }
static int op_alloc_data(op_ctx_t *c) { return alloc_into(c, 100, VMC_DATA); }
static int op_alloc_large_code(op_ctx_t *c) { return alloc_into(c, 300000, VMC_CODE); }
static int op_alloc_large_data(op_ctx_t *c) { return alloc_into(c, 300000, VMC_DATA); }
static int op_alloc_reaching(op_ctx_t *c)
{
    vmc_info_t in;
    vmc_info(c->v, &in);
    uintptr_t t = (uintptr_t)in.code_base + in.code_size / 2;
    vmc_span_t s;
    int r = vmc_alloc_reaching(c->v, 5000, VMC_CODE, t, t + 4096, &s);
    if (!r) c->p = s.x;
    return r;
}
static void undo_alloc(op_ctx_t *c)
{
    if (c->p) ASSERT_OK(vmc_free(c->v, c->p));
}

/* The free of a large allocation re-reserves its range: that can fail, and
 * then the allocation must still be there to free again. */
static int op_free_large(op_ctx_t *c)
{
    vmc__os_fault_clear();
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(c->v, 300000, VMC_RDATA, &s));
    memset(s.w, 0x77, s.size);
    c->p = s.x;
    return -1;  /* the sweep arms the fault after this: see op_free_large_2 */
}

static int op_stub(op_ctx_t *c)
{
    void *x;
    return vmc_stub(c->v, (uintptr_t)&vmc_open, &x);
}

static int op_lib_load(op_ctx_t *c)
{
    vmc_lib_t *l;
    int r = vmc_lib_load(c->v, "/usr/lib/x86_64-linux-gnu/libz.so.1", VMC_LOAD_DEFAULT, &l);
    if (!r) c->p = l;
    return r;
}
static void undo_lib_load(op_ctx_t *c) { ASSERT_OK(vmc_lib_unload(c->p)); }

static int map_file_into(op_ctx_t *c, int flags)
{
    int fd = open("/usr/lib/x86_64-linux-gnu/libz.so.1", O_RDONLY | O_CLOEXEC);
    ASSERT(fd >= 0);
    void *p;
    int r = vmc_map_file(c->v, fd, 4096, 16384, PROT_READ, flags, &p);
    close(fd);
    if (!r) c->p = p;
    return r;
}
static int op_map_reachable(op_ctx_t *c) { return map_file_into(c, VMC_MAP_REACHABLE); }
static int op_map_heap_shared(op_ctx_t *c) { return map_file_into(c, VMC_MAP_SHARED); }
static void undo_map(op_ctx_t *c) { ASSERT_OK(vmc_unmap_file(c->v, c->p, 16384)); }

static const op_t ops[] = {
    {"lib load", "-vm_size 64M -vmheap_size 0", op_lib_load, undo_lib_load},
    {"lib load -w_xor_x", "-w_xor_x -vm_size 64M -vmheap_size 0", op_lib_load, undo_lib_load},
    {"map file reachable", "-vm_size 64M -vmheap_size 64M", op_map_reachable, undo_map},
    {"map file heap shared", "-vm_size 64M -vmheap_size 64M", op_map_heap_shared, undo_map},
    {"open default", NULL, op_open_default, undo_open},
    {"open -no_near_app", NULL, op_open_no_near, undo_open},
    {"open 64M", NULL, op_open_small, undo_open},
    {"alloc code", "-vm_size 64M -vmheap_size 64M", op_alloc_code, undo_alloc},
    {"alloc rdata", "-vm_size 64M -vmheap_size 64M", op_alloc_rdata, undo_alloc},
    {"alloc data", "-vm_size 64M -vmheap_size 64M", op_alloc_data, undo_alloc},
    {"alloc large code", "-vm_size 64M -vmheap_size 64M", op_alloc_large_code, undo_alloc},
    {"alloc large data", "-vm_size 64M -vmheap_size 64M", op_alloc_large_data, undo_alloc},
    {"alloc reaching", "-vm_size 64M -vmheap_size 0", op_alloc_reaching, undo_alloc},
    {"stub", "-vm_size 64M -vmheap_size 0", op_stub, NULL},
    {"open -w_xor_x", NULL, op_open_wx, undo_open},
    {"alloc code -w_xor_x", "-w_xor_x -vm_size 64M -vmheap_size 0", op_alloc_code, undo_alloc},
    {"alloc rdata -w_xor_x", "-w_xor_x -vm_size 64M -vmheap_size 0", op_alloc_rdata, undo_alloc},
    {"alloc large code -w_xor_x", "-w_xor_x -vm_size 64M -vmheap_size 0", op_alloc_large_code,
     undo_alloc},
    {"stub -w_xor_x", "-w_xor_x -vm_size 64M -vmheap_size 0", op_stub, NULL},
};

static const int errs[] = {ENOMEM, EPERM, EAGAIN, EEXIST, EINVAL};

/* The handle still works: code can be allocated, written and run. */
static void still_usable(vmc_t *v)
{
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &s));
    memcpy(s.w, "\xb8\x2a\x00\x00\x00\xc3", 6);
    ASSERT_EQ(((int (*)(void))s.x)(), 42);
    ASSERT_OK(vmc_free(v, s.x));
}

/* Make the handle's lazily created bookkeeping (block maps, slab table,
 * thread cache) exist, so a snapshot taken now can be compared exactly. */
static void warm_up(vmc_t *v)
{
    vmc_info_t in;
    vmc_info(v, &in);
    for (int kind = VMC_CODE; kind <= VMC_DATA; kind++) {
        vmc_span_t s;
        if (kind == VMC_DATA && !in.heap_size) continue;
        ASSERT_OK(vmc_alloc(v, 64, kind, &s));
        ASSERT_OK(vmc_free(v, s.x));
    }
}

/* cold: the handle is fresh, so the operation also makes the bookkeeping;
 * the snapshot is taken before vmc_open and compared after vmc_close.
 * warm: the bookkeeping exists; a failure must leave no trace at once. */
static void sweep(const op_t *op, int *injected)
{
    for (int warm = 0; warm < (op->options ? 2 : 1); warm++)
    for (int k = 0; k < VMC_OS_CALL_COUNT; k++)
        for (size_t ei = 0; ei < sizeof errs / sizeof *errs; ei++)
            for (int persistent = 0; persistent < 2; persistent++)
                for (unsigned long nth = 1; nth < 200; nth++) {
                    op_ctx_t c = {0};
                    vt_snapshot_t before_open;
                    vt_snap(&before_open);
                    if (op->options) {
                        vmc_options_t o;
                        vmc_options_init(&o);
                        ASSERT_OK(vmc_options_parse(&o, op->options));
                        ASSERT_OK(vmc_open(&o, &c.v));
                        if (warm) warm_up(c.v);
                    }
                    vt_snapshot_t snap;
                    vt_snap(&snap);
                    vmc_stats_t st0, st1;
                    if (c.v) ASSERT_OK(vmc_stats(c.v, &st0));
                    vmc__os_fault(k, nth, errs[ei], persistent);
                    int r = op->run(&c);
                    unsigned long hit = vmc__os_faults_hit();
                    vmc__os_fault_clear();
                    if (r) {
                        ASSERT_MSG(r == -errs[ei], "%s, %s #%lu failing with %s: returned %d (%s)",
                                   op->name, vmc__os_call_name(k), nth, strerror(errs[ei]), r,
                                   vmc_last_error());
                        ASSERT_MSG(strlen(vmc_last_error()) > 10, "%s: no message", op->name);
                        ASSERT_EQ(vmc__debug_count(), 0);  /* nothing left for debuggers either */
                        /* a failure leaves no trace at all */
                        if (warm || !op->options) {
                            fprintf(stderr, "%s (%s), %s #%lu%s failing with %s: %s\n", op->name,
                                    warm ? "warm" : "cold", vmc__os_call_name(k), nth,
                                    persistent ? " and after" : "", strerror(errs[ei]), vmc_last_error());
                            /* When the call that failed is also the one the
                             * cleanup needs and it keeps failing, the range is
                             * left inaccessible and re-reserved by the next
                             * operation that works: do the operation again. */
                            if (strstr(vmc_last_error(), "inaccessible until it can be re-reserved")) {
                                ASSERT(persistent);
                                ASSERT(op->undo);
                                op_ctx_t again = c;
                                ASSERT_OK(op->run(&again));
                                op->undo(&again);
                            }
                            ASSERT_NO_LEAK(snap);
                        }
                    } else if (op->undo) {
                        op->undo(&c);
                        /* opening and closing leaves nothing; allocating and
                         * freeing may leave a chunk cached, nothing else */
                        if (!op->options) ASSERT_NO_LEAK(snap);
                    }
                    if (c.v) {
                        ASSERT_OK(vmc_stats(c.v, &st1));
                        if (r || op->undo) ASSERT_EQ(st1.allocations, st0.allocations);
                        if (r) ASSERT_EQ(st1.code_committed, st0.code_committed);
                        if (r) ASSERT_EQ(st1.heap_committed, st0.heap_committed);
                    }
                    vt_snap_free(&snap);
                    if (c.v) {
                        still_usable(c.v);
                        vmc_close(c.v);
                    }
                    ASSERT_NO_LEAK(before_open);
                    vt_snap_free(&before_open);
                    if (!hit) break;
                    (*injected)++;
                }
}

TEST_TIMEOUT(fault_sweep_public_operations, 300)
{
    /* The first load that works brings libgcc_s into a process without it,
     * for good (as glibc's backtrace() does): part of the process before
     * any snapshot.  That a failed load does not bring it is
     * unwind_failed_load_leaves_no_libgcc. */
    ASSERT(dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL));
    int injected = 0;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) sweep(&ops[i], &injected);
    ASSERT_GT(injected, 100);
}

/* vmc_free of a large allocation whose re-reservation fails: an error, the
 * memory still allocated and intact, and a second free works. */
TEST(fault_free_large_keeps_allocation)
{
    op_ctx_t c = {0};
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, "-vm_size 64M -vmheap_size 0"));
    ASSERT_OK(vmc_open(&o, &c.v));
    op_free_large(&c);
    vmc__os_fault(VMC_OS_MMAP, 1, ENOMEM, 0);
    ASSERT_EQ(vmc_free(c.v, c.p), -ENOMEM);
    vmc__os_fault_clear();
    ASSERT_STR_CONTAINS(vmc_last_error(), "cannot re-reserve");
    ASSERT_EQ(((unsigned char *)c.p)[299999], 0x77);
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(c.v, &st));
    ASSERT_EQ(st.allocations, 1);
    ASSERT_OK(vmc_free(c.v, c.p));
    ASSERT_OK(vmc_stats(c.v, &st));
    ASSERT_EQ(st.allocations, 0);
    still_usable(c.v);
    vmc_close(c.v);
}
