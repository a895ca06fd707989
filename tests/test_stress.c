/* Concurrency: several threads mix allocation, writes and calls of code,
 * stubs, library loads and unloads, and file mappings, for a bounded time.
 * With W^X, no mapping of the process is ever rwx: a watcher thread reads
 * /proc/self/maps throughout, and every worker checks after each step.
 * Runs under ThreadSanitizer in make check-tsan. */
#include "test.h"
#include "vmcode.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef struct mix {
    vmc_t *v;
    vmc_info_t in;
    int wx;
    char lib[512];
    int fd;                      /* a file to map, 64 KiB of a known pattern */
    _Atomic int stop;
    _Atomic long steps, rwx_seen;
    _Atomic int failed;
    char why[256];
    pthread_mutex_t why_lock;
} mix_t;

static void fail(mix_t *m, const char *what, int r)
{
    pthread_mutex_lock(&m->why_lock);
    if (!atomic_load(&m->failed))
        snprintf(m->why, sizeof m->why, "%s: %d %s", what, r, vmc_last_error());
    atomic_store(&m->failed, 1);
    pthread_mutex_unlock(&m->why_lock);
    atomic_store(&m->stop, 1);
}

static int rwx_now(void)
{
    char *maps = vt_read_file("/proc/self/maps");
    int n = 0;
    for (char *p = maps; p && (p = strstr(p, " rwx")); p++) n++;
    free(maps);
    return n;
}

/* With W^X, check the whole process after a step. */
static void step_done(mix_t *m)
{
    atomic_fetch_add(&m->steps, 1);
    if (m->wx && rwx_now()) {
        atomic_fetch_add(&m->rwx_seen, 1);
        fail(m, "an rwx mapping exists", 0);
    }
}

static void *worker_code(void *arg)
{
    mix_t *m = arg;
    for (uint32_t i = 0; !atomic_load(&m->stop); i++) {
        vmc_span_t s;
        int r = vmc_alloc(m->v, 16 + (i * 977) % 20000, VMC_CODE, &s);
        if (r) return fail(m, "vmc_alloc", r), NULL;
        unsigned char code[6] = {0xb8, 0, 0, 0, 0, 0xc3};
        memcpy(code + 1, &i, 4);
        memcpy(s.w, code, sizeof code);
        if (((uint32_t (*)(void))s.x)() != i) return fail(m, "generated code returned the wrong value", 0), NULL;
        if ((r = vmc_free(m->v, s.w))) return fail(m, "vmc_free", r), NULL;
        step_done(m);
    }
    return NULL;
}

static void *worker_stubs(void *arg)
{
    mix_t *m = arg;
    for (uint32_t i = 0; !atomic_load(&m->stop); i++) {
        void *stub;
        int r = vmc_stub(m->v, (uintptr_t)&rwx_now + (i % 64) * 16, &stub);
        if (r) return fail(m, "vmc_stub", r), NULL;
        vmc_span_t s;
        uintptr_t t = (uintptr_t)m->in.code_base + (i % 16) * (m->in.code_size / 16);
        r = vmc_alloc_reaching(m->v, 64 + i % 5000, i % 2 ? VMC_CODE : VMC_RDATA, t, t + 4096, &s);
        if (r) return fail(m, "vmc_alloc_reaching", r), NULL;
        if (!vmc_span_reaches((uintptr_t)s.x, (uintptr_t)s.x + s.size, t, t + 4096))
            return fail(m, "a reaching allocation does not reach", 0), NULL;
        if ((r = vmc_free(m->v, s.x))) return fail(m, "vmc_free", r), NULL;
        step_done(m);
    }
    return NULL;
}

static void *worker_libs(void *arg)
{
    mix_t *m = arg;
    while (!atomic_load(&m->stop)) {
        vmc_lib_t *l;
        int r = vmc_lib_load(m->v, m->lib, VMC_LOAD_DEFAULT, &l);
        if (r) return fail(m, "vmc_lib_load", r), NULL;
        int (*add)(int, int) = (int (*)(int, int))vmc_lib_sym(l, "t_add");
        if (!add || add(20, 22) != 42) return fail(m, "t_add from the private library", 0), NULL;
        void *base;
        size_t len;
        vmc_lib_span(l, &base, &len);
        if ((uintptr_t)add < (uintptr_t)base || (uintptr_t)add >= (uintptr_t)base + len)
            return fail(m, "a symbol outside its image", 0), NULL;
        if ((r = vmc_lib_unload(l))) return fail(m, "vmc_lib_unload", r), NULL;
        step_done(m);
    }
    return NULL;
}

static void *worker_files(void *arg)
{
    mix_t *m = arg;
    for (int i = 0; !atomic_load(&m->stop); i++) {
        void *p;
        int flags = (i % 2 ? VMC_MAP_REACHABLE : 0) | (i % 3 == 0 ? VMC_MAP_SHARED : 0);
        if (!m->in.heap_size) flags |= VMC_MAP_REACHABLE;
        int r = vmc_map_file(m->v, m->fd, 4096 * (uint64_t)(i % 8), 8192, PROT_READ, flags, &p);
        if (r) return fail(m, "vmc_map_file", r), NULL;
        const unsigned char *b = p;
        if (b[0] != (unsigned char)(i % 8) || b[8191] != (unsigned char)(i % 8 + 1))
            return fail(m, "mapped file contents", 0), NULL;
        if ((r = vmc_unmap_file(m->v, p, 8192))) return fail(m, "vmc_unmap_file", r), NULL;
        step_done(m);
    }
    return NULL;
}

static void *watcher(void *arg)
{
    mix_t *m = arg;
    while (!atomic_load(&m->stop)) {
        if (m->wx && rwx_now()) {
            atomic_fetch_add(&m->rwx_seen, 1);
            fail(m, "the watcher saw an rwx mapping", 0);
        }
        usleep(1000);
    }
    return NULL;
}

static void run_mix(const char *options, int wx, double seconds)
{
    static mix_t m;
    memset(&m, 0, sizeof m);
    pthread_mutex_init(&m.why_lock, NULL);
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, options));
    ASSERT_OK(vmc_open(&o, &m.v));
    ASSERT_OK(vmc_info(m.v, &m.in));
    m.wx = wx;
    snprintf(m.lib, sizeof m.lib, "%s/tests/libs/libt_basic.so", vt_build_dir());
    if (access(m.lib, R_OK)) SKIP("test libraries not built");
    char path[] = "/tmp/vmcode-stress-XXXXXX";
    m.fd = mkstemp(path);
    ASSERT(m.fd >= 0);
    unlink(path);
    static unsigned char page[4096];
    for (int i = 0; i < 16; i++) {
        memset(page, i, sizeof page);
        ASSERT_EQ(pwrite(m.fd, page, sizeof page, (off_t)i * 4096), 4096);
    }
    pthread_t t[5];
    void *(*fns[5])(void *) = {worker_code, worker_stubs, worker_libs, worker_files, watcher};
    for (int i = 0; i < 5; i++) ASSERT_EQ(pthread_create(&t[i], NULL, fns[i], &m), 0);
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)seconds;
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (atomic_load(&m.stop) || now.tv_sec > end.tv_sec ||
            (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
            break;
        usleep(10000);
    }
    atomic_store(&m.stop, 1);
    for (int i = 0; i < 5; i++) pthread_join(t[i], NULL);
    ASSERT_MSG(!atomic_load(&m.failed), "%s", m.why);
    ASSERT_GT(atomic_load(&m.steps), 100);
    ASSERT_EQ(atomic_load(&m.rwx_seen), 0);
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(m.v, &st));
    ASSERT_EQ(st.allocations, 0);
    ASSERT_EQ(st.libraries, 0);
    ASSERT_EQ(st.mapped_files, 0);
    close(m.fd);
    vmc_close(m.v);
    if (wx) ASSERT_EQ(vt_rwx_count(), 0);
}

TEST_THREADED(stress_mixed_operations_w_xor_x)
{
    run_mix("-vm_size 512M -vmheap_size 64M -w_xor_x", 1, vt_sanitized() ? 4 : 2);
}

TEST_THREADED(stress_mixed_operations)
{
    run_mix("-vm_size 512M -vmheap_size 64M", 0, vt_sanitized() ? 4 : 2);
}
