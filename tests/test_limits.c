/* Resource limits and address randomisation: operations under pressure fail
 * cleanly or adapt, and nothing crashes. */
#include "test.h"
#include "vmcode.h"
#include "region/region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(rlimit_as_levels)
{
    if (vt_sanitized()) SKIP("sanitizer shadow memory does not fit under RLIMIT_AS");
    static const rlim_t limits[] = {(rlim_t)4 << 30, (rlim_t)2 << 30, (rlim_t)1 << 30,
                                    (rlim_t)256 << 20, (rlim_t)96 << 20};
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        vt_limited_t res = vt_open_limited(limits[i], "");
        ASSERT_MSG(res.r != -9999, "child crashed at limit %lu MiB", (unsigned long)(limits[i] >> 20));
        if (res.r == 0) {
            size_t total = res.in.code_size + res.in.heap_size + res.vm_before_kib * 1024;
            ASSERT_LE(total, limits[i]);
            ASSERT_GE(res.in.code_size, (size_t)64 << 20);
            ASSERT(res.alloc_ok);
            if (limits[i] == (rlim_t)4 << 30) {
                ASSERT_EQ(res.in.code_size, (size_t)2 << 30);
                ASSERT_EQ(res.in.heap_size, (size_t)1 << 30);
            } else {
                ASSERT_LT(res.in.code_size, (size_t)2 << 30);  /* halved */
            }
        } else {
            /* only where 64 MiB of code + 64 MiB of heap cannot fit */
            ASSERT_EQ(res.r, -ENOMEM);
            ASSERT_LT(limits[i], ((rlim_t)128 << 20) + res.vm_before_kib * 1024);
            ASSERT_STR_CONTAINS(res.msg, "region: cannot reserve");
            ASSERT_STR_CONTAINS(res.msg, "(nor any half of it down to 64M)");
        }
    }
    /* at 96 MiB a code region alone still fits */
    vt_limited_t res = vt_open_limited((rlim_t)96 << 20, "-vmheap_size 0");
    ASSERT_OK(res.r);
    ASSERT_EQ(res.in.code_size, (size_t)64 << 20);
    ASSERT(res.alloc_ok);
    /* and below the floor nothing does: a clear error */
    res = vt_open_limited((rlim_t)48 << 20, "-vmheap_size 0");
    ASSERT_EQ(res.r, -ENOMEM);
    ASSERT_STR_CONTAINS(res.msg, "code region: cannot reserve 2G (nor any half of it down to 64M): Cannot allocate memory");
}

/* With every descriptor in use, open still works: the spot right below the
 * program needs no descriptor; when it is taken, placement cannot read
 * /proc/self/maps and falls back to a random base. */
TEST(rlimit_nofile_exhausted)
{
    uintptr_t lo, hi;
    ASSERT_OK(vmc__main_image(&lo, &hi));
    struct rlimit rl = {64, 64};
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int fds[64], n = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) break;
        fds[n++] = fd;
    }
    ASSERT_EQ(errno, EMFILE);
    vmc_t *v;
    ASSERT_OK(vmc_open(NULL, &v));
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.placement, VMC_PLACED_NEAR_APP);
    vmc_close(v);
    void *block = mmap((void *)(lo - 65536), 4096, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    ASSERT(block == (void *)(lo - 65536));
    ASSERT_OK(vmc_open(NULL, &v));
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.placement, VMC_PLACED_VM_BASE);
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &s));
    /* a library needs a descriptor: a clean -EMFILE, and the handle works on */
    vmc_lib_t *l;
    ASSERT_EQ(vmc_lib_load(v, "/usr/lib/x86_64-linux-gnu/libz.so.1", 0, &l), -EMFILE);
    ASSERT_STR_CONTAINS(vmc_last_error(), "libz.so.1");
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &s));
    vmc_close(v);
    /* W^X needs a memory file: a clean error naming it */
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, "-w_xor_x -vmheap_size 0"));
    ASSERT_EQ(vmc_open(&o, &v), -EMFILE);
    ASSERT_STR_CONTAINS(vmc_last_error(), "w_xor_x");
    munmap(block, 4096);
    for (int i = 0; i < n; i++) close(fds[i]);
}

/* Near the map-count limit, commits that would split a mapping fail with
 * ENOMEM and a hint; what was allocated before keeps working. */
TEST_TIMEOUT(map_count_nearly_exhausted, 120)
{
    char *mc = vt_read_file("/proc/sys/vm/max_map_count");
    long max = mc ? atol(mc) : 0;
    free(mc);
    if (max <= 0 || max > 1000000) SKIP("vm.max_map_count unreadable or too large to exhaust");
    vmc_t *v;
    ASSERT_OK(vmc_open(NULL, &v));
    vmc_span_t early;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &early));
    memcpy(early.w, "\xb8\x07\x00\x00\x00\xc3", 6);
    /* fill the map count with one-page mappings that cannot merge */
    long page = 4096, have = vt_maps_count(NULL);
    long want = max - have - 3;
    char *area = mmap(NULL, (size_t)(2 * want + 2) * (size_t)page, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT(area != MAP_FAILED);
    for (long i = 0; i < want; i++)
        mprotect(area + (2 * i + 1) * page, (size_t)page, PROT_READ);
    int failures = 0;
    vmc_span_t s;
    for (int i = 0; i < 64; i++) {
        int r = vmc_alloc(v, 20000 + (size_t)i * 4096, i % 2 ? VMC_CODE : VMC_RDATA, &s);
        if (r) {
            ASSERT_EQ(r, -ENOMEM);
            ASSERT_STR_CONTAINS(vmc_last_error(), "vm.max_map_count");
            failures++;
        }
    }
    ASSERT_GT(failures, 0);
    ASSERT_EQ(((int (*)(void))early.x)(), 7);
    munmap(area, (size_t)(2 * want + 2) * (size_t)page);
    ASSERT_OK(vmc_alloc(v, 20000, VMC_CODE, &s));
    vmc_close(v);
}

TEST(randomised_bases)
{
    uintptr_t first = 0, diff = 0, bases[100];
    for (int i = 0; i < 100; i++) {
        vmc_options_t o;
        vmc_options_init(&o);
        ASSERT_OK(vmc_options_parse(&o, "-no_near_app -vmheap_size 0"));
        vmc_t *v;
        ASSERT_OK(vmc_open(&o, &v));
        vmc_info_t in;
        ASSERT_OK(vmc_info(v, &in));
        uintptr_t b = (uintptr_t)in.code_base;
        ASSERT_EQ(in.placement, VMC_PLACED_VM_BASE);
        ASSERT_EQ(b % 4096, 0);
        ASSERT_GE(b, (uintptr_t)1 << 32);
        ASSERT_LE(b + in.code_size, (uintptr_t)1 << 47);
        for (int j = 0; j < i; j++) ASSERT_NE(b, bases[j]);
        bases[i] = b;
        if (i == 0) first = b;
        diff |= b ^ first;
        vmc_close(v);
    }
    ASSERT_GE(__builtin_popcountll(diff), 16);
}
