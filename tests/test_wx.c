/* W^X by dual mapping: the two views, commit/decommit on both, no rwx page
 * anywhere, faults through the wrong view, fork, the memory file's traps,
 * and every failure path. */
#include "test.h"
#include "vmcode.h"
#include "os/os.h"
#include "region/region.h"
#include "api/vmc.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096u

static vmc_t *wx_open_text(const char *text)
{
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, "-w_xor_x -vmheap_size 0 -vm_size 64M"));
    ASSERT_OK(vmc_options_parse(&o, text));
    vmc_t *v = NULL;
    ASSERT_OK(vmc_open(&o, &v));
    ASSERT(v->sp.code.wx);
    return v;
}

static vmc_t *wx_open(void) { return wx_open_text(""); }

static uintptr_t wview(vmc_region_t *r, uintptr_t x) { return r->wbase + (x - r->base); }

/* The memory file behind the region's W^X pair, and its size. */
static int wx_fd(vmc_region_t *r)
{
    int fd;
    size_t size;
    ASSERT_OK(vmc__os_dual_file(r->dual, &fd, &size));
    return fd;
}

static size_t wx_file_size(vmc_region_t *r)
{
    int fd;
    size_t size;
    ASSERT_OK(vmc__os_dual_file(r->dual, &fd, &size));
    return size;
}

/* mov eax, imm32; ret */
static void emit_ret(void *w, uint32_t value)
{
    unsigned char *p = w;
    p[0] = 0xb8;
    memcpy(p + 1, &value, 4);
    p[5] = 0xc3;
}

static int call_at(uintptr_t x)
{
    int (*fn)(void);
    void *p = (void *)x;
    memcpy(&fn, &p, sizeof fn);
    return fn();
}

/* The perms of the /proc/self/maps line holding `a` ("" if unmapped). */
static const char *perms_at(uintptr_t a)
{
    static char out[8];
    out[0] = 0;
    char *m = vt_read_file("/proc/self/maps");
    for (char *line = m; line && *line;) {
        char *nl = strchr(line, '\n');
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) {
            snprintf(out, sizeof out, "%s", perms);
            break;
        }
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(m);
    return out;
}

/* Every page of [lo, hi) is mapped with `perms`. */
static int range_is(uintptr_t lo, uintptr_t hi, const char *perms)
{
    for (uintptr_t a = lo; a < hi; a += PAGE)
        if (strcmp(perms_at(a), perms)) return 0;
    return 1;
}

#define ASSERT_PERMS(lo, hi, perms)                                                          \
    ASSERT_MSG(range_is((lo), (hi), (perms)), "%#lx-%#lx is not all %s (%#lx is %s)",         \
               (unsigned long)(lo), (unsigned long)(hi), (perms), (unsigned long)(lo),        \
               perms_at(lo))

#define ASSERT_NO_RWX() ASSERT_EQ(vt_rwx_count(), 0)

/* The writable view where nothing is committed: the file, mapped PROT_NONE
 * (the executable view's idle state is the region's own reservation, ---p). */
#define W_IDLE "---s"

static void fd_target(int fd, char *buf, size_t len)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, len - 1);
    buf[n > 0 ? n : 0] = 0;
}

static long file_bytes(int fd)
{
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    return (long)st.st_blocks * 512;
}

/* Files named vmcode-* in /dev/shm. */
static int shm_files(void)
{
    DIR *d = opendir("/dev/shm");
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "vmcode-", 7)) n++;
    closedir(d);
    return n;
}

/* Wait for a child and require a normal exit with status 0. */
static void wait_ok(pid_t pid)
{
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s %d",
               WIFEXITED(st) ? "exit status" : "signal",
               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* ---- the views ---------------------------------------------------------------- */

TEST(wx_open_reserves_two_views_and_a_memfd)
{
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc_t *v = wx_open();
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.w_xor_x, 1);
    ASSERT(in.code_wbase != in.code_base);
    uintptr_t x = (uintptr_t)in.code_base, w = (uintptr_t)in.code_wbase;
    ASSERT_EQ(in.code_size, (size_t)64 << 20);
    /* two disjoint reservations of the same size, nothing mapped yet */
    ASSERT(w + in.code_size <= x || x + in.code_size <= w);
    ASSERT_PERMS(x, x + in.code_size, "---p");
    ASSERT_PERMS(w, w + in.code_size, W_IDLE);
    ASSERT(vmc__os_holds(w, w + in.code_size));
    ASSERT_NO_RWX();
    /* the file: a memfd, close-on-exec, one page long */
    int fd = wx_fd(&v->sp.code);
    ASSERT_GE(fd, 0);
    ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    char target[256];
    fd_target(fd, target, sizeof target);
    ASSERT_STR_CONTAINS(target, "memfd:vmcode-code");
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    ASSERT_EQ(st.st_size, PAGE);
    ASSERT_EQ(wx_file_size(&v->sp.code), PAGE);
    vmc_close(v);
    ASSERT(!vmc__os_holds(w, w + PAGE));
    ASSERT_NO_LEAK(snap);
}

/* A 2 GiB W^X region costs address space, not memory: the file is sparse
 * and nothing is populated until written. */
TEST(wx_open_2g_and_commit_take_no_memory_until_written)
{
    vt_snapshot_t snap;
    vt_snap(&snap);
    size_t rss0 = vt_rss_kib();
    vmc_t *v = wx_open_text("-vm_size 2G");
    vmc_region_t *r = &v->sp.code;
    ASSERT_EQ(r->size, (size_t)2 << 30);
    ASSERT_OK(vmc__region_commit(r, r->base + r->size - (64u << 20), 64u << 20, VMC_CODE));
    size_t rss1 = vt_rss_kib();
    ASSERT_LT(rss1 - rss0, 256);
    ASSERT_GE(wx_file_size(r), r->size);
    ASSERT_LT(file_bytes(wx_fd(r)), 64 << 10);
    memset((void *)(r->wbase + r->size - (8u << 20)), 0xc3, 8u << 20);
    ASSERT_GE(vt_rss_kib() - rss0, 8u << 10);
    vmc_close(v);
    ASSERT_NO_LEAK(snap);
}

TEST(wx_commit_maps_both_views_at_a_constant_offset)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t a = r->base + 16 * PAGE, b = r->base + (40u << 20);
    ASSERT_OK(vmc__region_commit(r, a, 3 * PAGE, VMC_CODE));
    ASSERT_OK(vmc__region_commit(r, b, PAGE, VMC_CODE));
    ASSERT_PERMS(a, a + 3 * PAGE, "r-xs");
    ASSERT_PERMS(wview(r, a), wview(r, a) + 3 * PAGE, "rw-s");
    ASSERT_PERMS(b, b + PAGE, "r-xs");
    ASSERT_PERMS(wview(r, b), wview(r, b) + PAGE, "rw-s");
    /* the neighbours stay reserved */
    ASSERT_PERMS(a - PAGE, a, "---p");
    ASSERT_PERMS(a + 3 * PAGE, a + 4 * PAGE, "---p");
    ASSERT_PERMS(wview(r, a) - PAGE, wview(r, a), W_IDLE);
    ASSERT_PERMS(wview(r, a) + 3 * PAGE, wview(r, a) + 4 * PAGE, W_IDLE);
    ASSERT_NO_RWX();
    /* one file behind both views: a write through w is read through x */
    for (size_t i = 0; i < 3 * PAGE; i += 512) ((volatile char *)wview(r, a))[i] = (char)(i / 512 + 1);
    for (size_t i = 0; i < 3 * PAGE; i += 512) ASSERT_EQ(((volatile char *)a)[i], (char)(i / 512 + 1));
    *(volatile int *)wview(r, b) = 0x5a5a;
    ASSERT_EQ(*(volatile int *)b, 0x5a5a);
    ASSERT_GE(wx_file_size(r), (size_t)(b - r->base) + PAGE);
    ASSERT_LE(wx_file_size(r), r->size);
    vmc_close(v);
}

TEST(wx_rewrite_in_place_is_visible_through_x)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t x = r->base + 5 * PAGE;
    ASSERT_OK(vmc__region_commit(r, x, PAGE, VMC_CODE));
    emit_ret((void *)wview(r, x), 111);
    emit_ret((void *)wview(r, x + 64), 7);
    ASSERT_EQ(call_at(x), 111);
    ASSERT_EQ(call_at(x + 64), 7);
    emit_ret((void *)wview(r, x), 222);
    ASSERT_EQ(call_at(x), 222);
    for (uint32_t i = 0; i < 1000; i++) {
        emit_ret((void *)wview(r, x + (i % 60) * 64), i);
        ASSERT_EQ(call_at(x + (i % 60) * 64), (int)i);
    }
    ASSERT_NO_RWX();
    vmc_close(v);
}

TEST(wx_decommit_frees_pages_and_reserves_both_views)
{
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t x = r->base + (8u << 20);
    size_t len = 64 * PAGE;
    ASSERT_OK(vmc__region_commit(r, x, len, VMC_CODE));
    long before = file_bytes(wx_fd(r));
    memset((void *)wview(r, x), 0xc3, len);
    ASSERT_GE(file_bytes(wx_fd(r)) - before, (long)len);
    ASSERT_OK(vmc__region_decommit(r, x, len));
    ASSERT_LE(file_bytes(wx_fd(r)), before);
    ASSERT_PERMS(x, x + len, "---p");
    ASSERT_PERMS(wview(r, x), wview(r, x) + len, W_IDLE);
    ASSERT_NO_RWX();
    /* committed again: fresh zero pages, not the old code */
    ASSERT_OK(vmc__region_commit(r, x, len, VMC_CODE));
    for (size_t i = 0; i < len; i += PAGE) ASSERT_EQ(((volatile unsigned char *)x)[i], 0);
    /* part of it */
    ASSERT_OK(vmc__region_decommit(r, x + PAGE, PAGE));
    ASSERT_PERMS(x, x + PAGE, "r-xs");
    ASSERT_PERMS(x + PAGE, x + 2 * PAGE, "---p");
    ASSERT_PERMS(x + 2 * PAGE, x + len, "r-xs");
    ASSERT_PERMS(wview(r, x + PAGE), wview(r, x + 2 * PAGE), W_IDLE);
    vmc_close(v);
    ASSERT_NO_LEAK(snap);
}

TEST(wx_rdata_in_the_code_region_is_private_and_single)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t x = r->base + 3 * PAGE;
    ASSERT_OK(vmc__region_commit(r, x, 2 * PAGE, VMC_RDATA));
    ASSERT_PERMS(x, x + 2 * PAGE, "rw-p");
    ASSERT_PERMS(wview(r, x), wview(r, x) + 2 * PAGE, W_IDLE);
    *(volatile int *)x = 42;
    ASSERT_NO_RWX();
    ASSERT_OK(vmc__region_decommit(r, x, 2 * PAGE));
    ASSERT_PERMS(x, x + 2 * PAGE, "---p");
    /* the same pages as code afterwards */
    ASSERT_OK(vmc__region_commit(r, x, 2 * PAGE, VMC_CODE));
    ASSERT_PERMS(x, x + 2 * PAGE, "r-xs");
    ASSERT_EQ(*(volatile int *)x, 0);
    vmc_close(v);
}

TEST_SIGNAL(wx_write_through_x_faults, SIGSEGV)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t x = r->base + PAGE;
    ASSERT_OK(vmc__region_commit(r, x, PAGE, VMC_CODE));
    emit_ret((void *)wview(r, x), 1);
    ASSERT_EQ(call_at(x), 1);
    *(volatile unsigned char *)x = 0x90;
}

TEST_SIGNAL(wx_execute_through_w_faults, SIGSEGV)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t x = r->base + PAGE;
    ASSERT_OK(vmc__region_commit(r, x, PAGE, VMC_CODE));
    emit_ret((void *)wview(r, x), 1);
    ASSERT_EQ(call_at(x), 1);
    call_at(wview(r, x));
}

TEST_SIGNAL(wx_decommitted_code_faults, SIGSEGV)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t x = r->base + PAGE;
    ASSERT_OK(vmc__region_commit(r, x, PAGE, VMC_CODE));
    emit_ret((void *)wview(r, x), 1);
    ASSERT_EQ(call_at(x), 1);
    ASSERT_OK(vmc__region_decommit(r, x, PAGE));
    call_at(x);
}

TEST(wx_no_rwx_after_every_operation)
{
    ASSERT_NO_RWX();
    vmc_t *v = wx_open();
    ASSERT_NO_RWX();
    vmc_region_t *r = &v->sp.code;
    uintptr_t c = r->base + 10 * PAGE, d = r->base + 20 * PAGE;
    ASSERT_OK(vmc__region_commit(r, c, 4 * PAGE, VMC_CODE));
    ASSERT_NO_RWX();
    emit_ret((void *)wview(r, c), 9);
    ASSERT_EQ(call_at(c), 9);
    ASSERT_NO_RWX();
    ASSERT_OK(vmc__region_commit(r, d, PAGE, VMC_RDATA));
    ASSERT_NO_RWX();
    ASSERT_OK(vmc__region_decommit(r, c + PAGE, PAGE));
    ASSERT_NO_RWX();
    ASSERT_OK(vmc__region_decommit(r, d, PAGE));
    ASSERT_NO_RWX();
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        ASSERT_NO_RWX();
        ASSERT_EQ(call_at(c), 9);
        ASSERT_OK(vmc__region_commit(r, d, PAGE, VMC_CODE));
        ASSERT_NO_RWX();
        _exit(0);
    }
    wait_ok(pid);
    ASSERT_NO_RWX();
    vmc_t *v2 = wx_open();  /* a second W^X handle alongside */
    ASSERT_OK(vmc__region_commit(&v2->sp.code, v2->sp.code.base, PAGE, VMC_CODE));
    ASSERT_NO_RWX();
    vmc_close(v2);
    vmc_close(v);
    ASSERT_NO_RWX();
}

/* A library image or a reachable file mapping is mapped over a piece of the
 * executable view with MAP_FIXED, as the loader does: it replaces those pages
 * and has no writable view; code around it and fork are unaffected; giving
 * the range back leaves both views as they were. */
TEST(wx_file_mapped_over_the_executable_view)
{
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    char path[] = "/tmp/vmcode-wx-image-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    unlink(path);
    unsigned char img[2 * PAGE];
    memset(img, 0xcc, sizeof img);
    emit_ret(img + PAGE, 31337);
    ASSERT_EQ(write(fd, img, sizeof img), (ssize_t)sizeof img);
    uintptr_t code = r->base + 8 * PAGE, lib = code + PAGE;
    ASSERT_OK(vmc__region_commit(r, code, PAGE, VMC_CODE));
    emit_ret((void *)wview(r, code), 5);
    void *p = mmap((void *)lib, 2 * PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fd, 0);
    ASSERT(p == (void *)lib);
    ASSERT_PERMS(lib, lib + 2 * PAGE, "r-xp");
    ASSERT_PERMS(wview(r, lib), wview(r, lib) + 2 * PAGE, W_IDLE);
    ASSERT_EQ(call_at(lib + PAGE), 31337);
    ASSERT_EQ(call_at(code), 5);
    pid_t pid = fork();
    if (pid == 0) {
        ASSERT_PERMS(lib, lib + 2 * PAGE, "r-xp");   /* left alone by the child's remap */
        ASSERT_EQ(call_at(lib + PAGE), 31337);
        emit_ret((void *)wview(r, code), 6);
        ASSERT_EQ(call_at(code), 6);
        _exit(0);
    }
    wait_ok(pid);
    ASSERT_EQ(call_at(code), 5);
    ASSERT_NO_RWX();
    ASSERT_OK(vmc__region_decommit(r, lib, 2 * PAGE));
    ASSERT_PERMS(lib, lib + 2 * PAGE, "---p");
    ASSERT_PERMS(wview(r, lib), wview(r, lib) + 2 * PAGE, W_IDLE);
    ASSERT_EQ(call_at(code), 5);
    close(fd);
    vmc_close(v);
    ASSERT_NO_LEAK(snap);
}

/* ---- fork ------------------------------------------------------------------------ */

TEST(wx_fork_child_gets_its_own_copy)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t a = r->base + PAGE, b = r->base + (40u << 20), c = r->base + 100 * PAGE;
    ASSERT_OK(vmc__region_commit(r, a, PAGE, VMC_CODE));
    ASSERT_OK(vmc__region_commit(r, b, 4 * PAGE, VMC_CODE));
    emit_ret((void *)wview(r, a), 111);
    emit_ret((void *)wview(r, b), 5);
    struct stat pst;
    ASSERT_EQ(fstat(wx_fd(r), &pst), 0);
    int go[2], done[2];
    ASSERT_EQ(pipe(go), 0);
    ASSERT_EQ(pipe(done), 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        /* a different file, with only the committed data in it */
        struct stat cst;
        ASSERT_EQ(fstat(wx_fd(r), &cst), 0);
        ASSERT(cst.st_ino != pst.st_ino || cst.st_dev != pst.st_dev);
        ASSERT_EQ(cst.st_size, pst.st_size);
        ASSERT_LE((long)cst.st_blocks * 512, 2 * (long)PAGE);
        ASSERT(fcntl(wx_fd(r), F_GETFD) & FD_CLOEXEC);
        ASSERT_PERMS(a, a + PAGE, "r-xs");
        ASSERT_PERMS(wview(r, a), wview(r, a) + PAGE, "rw-s");
        ASSERT_PERMS(b, b + 4 * PAGE, "r-xs");
        ASSERT_EQ(call_at(a), 111);
        ASSERT_EQ(call_at(b), 5);
        char ch;
        ASSERT_EQ(read(go[0], &ch, 1), 1);  /* the parent has rewritten a to 444 */
        ASSERT_EQ(call_at(a), 111);
        /* the child's own changes */
        emit_ret((void *)wview(r, a), 222);
        ASSERT_EQ(call_at(a), 222);
        ASSERT_OK(vmc__region_commit(r, c, PAGE, VMC_CODE));
        emit_ret((void *)wview(r, c), 333);
        ASSERT_EQ(call_at(c), 333);
        ASSERT_OK(vmc__region_decommit(r, b, 4 * PAGE));
        ASSERT_NO_RWX();
        ASSERT_EQ(write(done[1], "x", 1), 1);
        _exit(0);
    }
    close(go[0]);
    close(done[1]);
    emit_ret((void *)wview(r, a), 444);
    ASSERT_EQ(call_at(a), 444);
    ASSERT_EQ(write(go[1], "x", 1), 1);
    char ch;
    ASSERT_EQ(read(done[0], &ch, 1), 1);
    wait_ok(pid);
    /* none of the child's changes reached the parent */
    ASSERT_EQ(call_at(a), 444);
    ASSERT_EQ(call_at(b), 5);
    ASSERT_PERMS(c, c + PAGE, "---p");
    ASSERT_PERMS(wview(r, c), wview(r, c) + PAGE, W_IDLE);
    struct stat now;
    ASSERT_EQ(fstat(wx_fd(r), &now), 0);
    ASSERT_EQ(now.st_ino, pst.st_ino);
    /* and the parent goes on */
    ASSERT_OK(vmc__region_commit(r, c, PAGE, VMC_CODE));
    emit_ret((void *)wview(r, c), 555);
    ASSERT_EQ(call_at(c), 555);
    ASSERT_NO_RWX();
    vmc_close(v);
}

/* The lines of /proc/self/maps that meet [lo, hi) (caller frees). */
static char *maps_lines_in(uintptr_t lo, uintptr_t hi)
{
    char *m = vt_read_file("/proc/self/maps"), *out = calloc(1, strlen(m) + 1), *o = out;
    for (char *line = m; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a < hi && b > lo) {
            memcpy(o, line, len);
            o += len;
        }
        line += len;
    }
    free(m);
    return out;
}

/* A pair around a hole (a -no-pie program's brk heap inside the code
 * region's span) at fork: the child gets its own copy of the code on both
 * sides, at the same addresses, and nothing in the hole, whose memory is
 * not the pair's. */
TEST(wx_fork_copies_both_sides_of_a_hole)
{
    vmc_t *v = wx_open();   /* the library's fork handlers, which fork every pair */
    uintptr_t base, lo, hi, other, w;
    size_t n = 64 * PAGE;
    ASSERT_OK(vmc__os_reserve(0, n, &base));
    ASSERT_OK(vmc__os_release(base, n));
    uintptr_t hole = base + 16 * PAGE, hole_end = base + 32 * PAGE;
    ASSERT_OK(vmc__os_reserve(base, hole - base, &lo));
    ASSERT_OK(vmc__os_reserve(hole_end, base + n - hole_end, &hi));
    vmc__os_hold(base, hole);
    vmc__os_hold(hole_end, base + n);
    ASSERT_OK(vmc__os_reserve(hole, hole_end - hole, &other));   /* not ours */
    ASSERT_OK(vmc__os_commit(hole + PAGE, PAGE, VMC_OS_READ | VMC_OS_WRITE));
    memset((void *)(hole + PAGE), 0x5a, PAGE);
    vmc_os_dual_t *d;
    ASSERT_OK(vmc__os_dual_map(base, n, hole, hole_end, &d, &w));
    uintptr_t a = base + PAGE, b = hole_end + 8 * PAGE;
    ASSERT_OK(vmc__os_dual_commit(d, a, PAGE));
    ASSERT_OK(vmc__os_dual_commit(d, b, 2 * PAGE));
    emit_ret((void *)(w + (a - base)), 1);
    emit_ret((void *)(w + (b - base)), 2);
    int pfd;
    size_t psize;
    ASSERT_OK(vmc__os_dual_file(d, &pfd, &psize));
    struct stat pst;
    ASSERT_EQ(fstat(pfd, &pst), 0);
    char *in_hole = maps_lines_in(hole, hole_end);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int cfd;
        size_t csize;
        ASSERT_OK(vmc__os_dual_file(d, &cfd, &csize));
        struct stat cst;
        ASSERT_EQ(fstat(cfd, &cst), 0);
        ASSERT(cst.st_ino != pst.st_ino || cst.st_dev != pst.st_dev);
        ASSERT_LE((long)cst.st_blocks * 512, 2 * (long)PAGE);   /* the two pages written */
        ASSERT_PERMS(a, a + PAGE, "r-xs");
        ASSERT_PERMS(b, b + 2 * PAGE, "r-xs");
        ASSERT_PERMS(w + (b - base), w + (b - base) + 2 * PAGE, "rw-s");
        ASSERT_EQ(call_at(a), 1);
        ASSERT_EQ(call_at(b), 2);
        emit_ret((void *)(w + (a - base)), 3);
        emit_ret((void *)(w + (b - base)), 4);
        ASSERT_EQ(call_at(a), 3);
        ASSERT_EQ(call_at(b), 4);
        char *now = maps_lines_in(hole, hole_end);
        ASSERT_STR_EQ(now, in_hole);
        ASSERT_NO_RWX();
        _exit(0);
    }
    wait_ok(pid);
    ASSERT_EQ(call_at(a), 1);
    ASSERT_EQ(call_at(b), 2);
    char *now = maps_lines_in(hole, hole_end);
    ASSERT_STR_EQ(now, in_hole);
    free(now);
    free(in_hole);
    ASSERT_EQ(((unsigned char *)hole)[PAGE], 0x5a);
    ASSERT_OK(vmc__os_dual_decommit(d, base, hole - base));
    ASSERT_OK(vmc__os_dual_decommit(d, hole_end, base + n - hole_end));
    vmc__os_dual_unmap(d);
    vmc__os_unhold(base, hole);
    vmc__os_unhold(hole_end, base + n);
    ASSERT_OK(vmc__os_release(base, hole - base));
    ASSERT_OK(vmc__os_release(hole_end, base + n - hole_end));
    ASSERT_OK(vmc__os_release(other, hole_end - hole));
    vmc_close(v);
}

TEST(wx_fork_gives_every_region_its_own_file)
{
    vmc_t *v1 = wx_open(), *v2 = wx_open();
    uintptr_t x1 = v1->sp.code.base, x2 = v2->sp.code.base + PAGE;
    ASSERT_OK(vmc__region_commit(&v1->sp.code, x1, PAGE, VMC_CODE));
    ASSERT_OK(vmc__region_commit(&v2->sp.code, x2, PAGE, VMC_CODE));
    emit_ret((void *)wview(&v1->sp.code, x1), 1);
    emit_ret((void *)wview(&v2->sp.code, x2), 2);
    for (int round = 0; round < 3; round++) {  /* forks of forks */
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            ASSERT_EQ(call_at(x1), 1 + round * 10);
            ASSERT_EQ(call_at(x2), 2 + round * 10);
            emit_ret((void *)wview(&v1->sp.code, x1), 99);
            emit_ret((void *)wview(&v2->sp.code, x2), 98);
            ASSERT_EQ(call_at(x1), 99);
            ASSERT_EQ(call_at(x2), 98);
            _exit(0);
        }
        wait_ok(pid);
        ASSERT_EQ(call_at(x1), 1 + round * 10);
        ASSERT_EQ(call_at(x2), 2 + round * 10);
        emit_ret((void *)wview(&v1->sp.code, x1), 1 + (round + 1) * 10);
        emit_ret((void *)wview(&v2->sp.code, x2), 2 + (round + 1) * 10);
    }
    vmc_close(v2);
    /* a closed region is no longer copied at fork */
    pid_t pid = fork();
    if (pid == 0) {
        ASSERT_EQ(call_at(x1), 31);
        _exit(0);
    }
    wait_ok(pid);
    vmc_close(v1);
}

/* If the child cannot get its own file it must not be able to write the
 * parent's code; what is mapped keeps running and commits say why. */
TEST(wx_fork_without_a_new_file_keeps_the_child_read_only)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t a = r->base + PAGE;
    ASSERT_OK(vmc__region_commit(r, a, PAGE, VMC_CODE));
    emit_ret((void *)wview(r, a), 17);
    vmc__os_fault(VMC_OS_MEMFD_CREATE, 1, EMFILE, 1);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        ASSERT_PERMS(wview(r, a), wview(r, a) + PAGE, "---p");
        ASSERT_EQ(call_at(a), 17);
        int e = vmc__region_commit(r, a + PAGE, PAGE, VMC_CODE);
        ASSERT_EQ(e, -EMFILE);
        ASSERT_STR_CONTAINS(vmc_last_error(),
                            "after fork it could not get its own copy of the code file "
                            "(memfd_create: Too many open files)");
        ASSERT_PERMS(a + PAGE, a + 2 * PAGE, "---p");
        ASSERT_OK(vmc__region_decommit(r, a, PAGE));
        ASSERT_PERMS(a, a + PAGE, "---p");
        ASSERT_NO_RWX();
        vmc_close(v);
        _exit(0);
    }
    vmc__os_fault_clear();
    wait_ok(pid);
    ASSERT_EQ(call_at(a), 17);
    emit_ret((void *)wview(r, a), 18);
    ASSERT_EQ(call_at(a), 18);
    vmc_close(v);
}

/* The copy for the child made without copy_file_range (another file
 * system, an old kernel), and a copy that fails outright. */
TEST(wx_fork_copy_fallbacks)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t a = r->base + PAGE, b = r->base + (3u << 20);
    ASSERT_OK(vmc__region_commit(r, a, 40 * PAGE, VMC_CODE));
    ASSERT_OK(vmc__region_commit(r, b, PAGE, VMC_CODE));
    for (size_t i = 0; i < 40 * PAGE; i += 64) emit_ret((void *)wview(r, a + i), (uint32_t)i);
    emit_ret((void *)wview(r, b), 77);
    static const int errs[] = {EXDEV, ENOSYS, EIO};
    for (size_t k = 0; k < sizeof errs / sizeof *errs; k++) {
        vmc__os_fault(VMC_OS_COPY_FILE_RANGE, 1, errs[k], 1);
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            for (size_t i = 0; i < 40 * PAGE; i += 64) ASSERT_EQ(call_at(a + i), (int)i);
            ASSERT_EQ(call_at(b), 77);
            if (errs[k] == EIO) {   /* no copy: read-only, and says why */
                ASSERT_PERMS(wview(r, a), wview(r, a) + PAGE, "---p");
                ASSERT_EQ(vmc__region_commit(r, b + PAGE, PAGE, VMC_CODE), -EIO);
                ASSERT_STR_CONTAINS(vmc_last_error(), "(copy_file_range: Input/output error)");
            } else {
                emit_ret((void *)wview(r, b), 78);
                ASSERT_EQ(call_at(b), 78);
            }
            _exit(0);
        }
        vmc__os_fault_clear();
        wait_ok(pid);
        ASSERT_EQ(call_at(b), 77);
    }
    vmc_close(v);
}

typedef struct worker {
    vmc_region_t *r;
    int id;
    atomic_int *stop;
    long rounds;
} worker_t;

static void *commit_loop(void *arg)
{
    worker_t *wk = arg;
    vmc_region_t *r = wk->r;
    uintptr_t x = r->base + (uintptr_t)(wk->id + 1) * (1u << 20);
    while (!atomic_load(wk->stop)) {
        if (vmc__region_commit(r, x, 4 * PAGE, VMC_CODE)) abort();
        emit_ret((void *)wview(r, x), (uint32_t)wk->id);
        if (call_at(x) != wk->id) abort();
        if (vmc__region_decommit(r, x, 4 * PAGE)) abort();
        wk->rounds++;
    }
    return NULL;
}

/* Threads commit and decommit while another forks: every child sees whole
 * commits (both views or neither) and its own working copy. */
TEST_THREADED(wx_fork_while_other_threads_commit)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t fixed = r->base;
    ASSERT_OK(vmc__region_commit(r, fixed, PAGE, VMC_CODE));
    emit_ret((void *)wview(r, fixed), 4242);
    atomic_int stop = 0;
    worker_t wk[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        wk[i] = (worker_t){r, i, &stop, 0};
        ASSERT_EQ(pthread_create(&th[i], NULL, commit_loop, &wk[i]), 0);
    }
    for (int n = 0; n < 30; n++) {
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            if (call_at(fixed) != 4242) _exit(3);
            if (vt_rwx_count()) _exit(4);
            for (int i = 0; i < 3; i++) {
                uintptr_t x = r->base + (uintptr_t)(i + 1) * (1u << 20);
                char px[8], pw[8];
                snprintf(px, sizeof px, "%s", perms_at(x));
                snprintf(pw, sizeof pw, "%s", perms_at(wview(r, x)));
                int code = !strcmp(px, "r-xs");
                if (code != !strcmp(pw, "rw-s")) {   /* half a commit */
                    fprintf(stderr, "x %s w %s\n", px, pw);
                    _exit(5);
                }
                if (!code && (strcmp(px, "---p") || strcmp(pw, W_IDLE))) _exit(6);
                if (code) {
                    emit_ret((void *)wview(r, x), 77);
                    if (call_at(x) != 77) _exit(7);
                }
            }
            emit_ret((void *)wview(r, fixed), 1);
            if (call_at(fixed) != 1) _exit(8);
            _exit(0);
        }
        wait_ok(pid);
        ASSERT_EQ(call_at(fixed), 4242);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        ASSERT_GT(wk[i].rounds, 0);
    }
    ASSERT_NO_RWX();
    vmc_close(v);
}

TEST(wx_exec_does_not_leak_the_file)
{
    vmc_t *v = wx_open();
    int fd = wx_fd(&v->sp.code);
    ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    char script[128];
    snprintf(script, sizeof script, "test ! -e /proc/self/fd/%d", fd);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    wait_ok(pid);
    vmc_close(v);
}

/* ---- the memory file's traps ----------------------------------------------------- */

static unsigned memfd_flags_seen[4];
static int memfd_calls;

static int memfd_without_mfd_exec(const char *name, unsigned flags)
{
    if (memfd_calls < 4) memfd_flags_seen[memfd_calls] = flags;
    memfd_calls++;
    if (flags & 0x10u) {  /* a kernel before 6.3 */
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_memfd_create, name, flags);
}

TEST(wx_memfd_exec_flag_retried_without_on_old_kernels)
{
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc__os_set_call(VMC_OS_MEMFD_CREATE, (void (*)(void))memfd_without_mfd_exec);
    vmc_t *v = wx_open();
    vmc__os_set_call(VMC_OS_MEMFD_CREATE, NULL);
    ASSERT_EQ(memfd_calls, 2);
    ASSERT_EQ(memfd_flags_seen[0], MFD_CLOEXEC | 0x10u);
    ASSERT_EQ(memfd_flags_seen[1], MFD_CLOEXEC);
    ASSERT(fcntl(wx_fd(&v->sp.code), F_GETFD) & FD_CLOEXEC);
    ASSERT_OK(vmc__region_commit(&v->sp.code, v->sp.code.base, PAGE, VMC_CODE));
    emit_ret((void *)v->sp.code.wbase, 3);
    ASSERT_EQ(call_at(v->sp.code.base), 3);
    vmc_close(v);
    ASSERT_NO_LEAK(snap);
}

TEST(wx_memfd_unavailable_falls_back_to_dev_shm)
{
    static const int errs[] = {ENOSYS, EPERM, EACCES};
    int before = shm_files();
    vt_snapshot_t snap;
    vt_snap(&snap);
    for (size_t i = 0; i < sizeof errs / sizeof *errs; i++) {
        vmc__os_fault(VMC_OS_MEMFD_CREATE, 1, errs[i], 1);
        vmc_t *v = wx_open();
        vmc_region_t *r = &v->sp.code;
        char target[256];
        fd_target(wx_fd(r), target, sizeof target);
        ASSERT_STR_CONTAINS(target, "/dev/shm/vmcode-");
        ASSERT_STR_CONTAINS(target, "(deleted)");
        ASSERT(fcntl(wx_fd(r), F_GETFD) & FD_CLOEXEC);
        ASSERT_EQ(shm_files(), before);
        ASSERT_OK(vmc__region_commit(r, r->base + PAGE, PAGE, VMC_CODE));
        emit_ret((void *)wview(r, r->base + PAGE), 61);
        ASSERT_EQ(call_at(r->base + PAGE), 61);
        pid_t pid = fork();  /* the child's copy takes the fallback too */
        if (pid == 0) {
            char t[256];
            fd_target(wx_fd(r), t, sizeof t);
            ASSERT_STR_CONTAINS(t, "/dev/shm/vmcode-");
            emit_ret((void *)wview(r, r->base + PAGE), 62);
            ASSERT_EQ(call_at(r->base + PAGE), 62);
            _exit(0);
        }
        wait_ok(pid);
        ASSERT_EQ(call_at(r->base + PAGE), 61);
        ASSERT_NO_RWX();
        vmc_close(v);
        vmc__os_fault_clear();
    }
    ASSERT_EQ(shm_files(), before);
    ASSERT_NO_LEAK(snap);
}

static int read_memfd_noexec(void)
{
    char *t = vt_read_file("/proc/sys/vm/memfd_noexec");
    int v = t ? atoi(t) : -1;
    free(t);
    return v;
}

/* vm.memfd_noexec (Linux 6.3+) is set per pid namespace: in a new one, with
 * policy 1 (a memfd without MFD_EXEC is sealed non-executable) and policy 2
 * (only MFD_NOEXEC_SEAL memfds at all), W^X still works, by MFD_EXEC and by
 * the /dev/shm fallback respectively. */
TEST(wx_memfd_noexec_policies)
{
    int outer = read_memfd_noexec();
    if (outer < 0) SKIP("no vm.memfd_noexec (Linux before 6.3)");
    if (outer > 0) SKIP("vm.memfd_noexec is already set here");
    for (int policy = 1; policy <= 2; policy++) {
        pid_t helper = fork();
        ASSERT(helper >= 0);
        if (helper == 0) {
            /* a new pid namespace for each policy: its first process is
             * its init, and when that exits the namespace is gone */
            if (unshare(CLONE_NEWPID)) _exit(77);
            pid_t pid = fork();
            if (pid < 0) _exit(92);
            if (pid > 0) {
                int st;
                if (waitpid(pid, &st, 0) != pid) _exit(93);
                _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 94);
            }
            if (getpid() != 1) _exit(90);   /* not in the new namespace: touch nothing */
            FILE *f = fopen("/proc/sys/vm/memfd_noexec", "w");
            if (!f || fprintf(f, "%d\n", policy) < 0 || fclose(f)) _exit(91);
            ASSERT_EQ(read_memfd_noexec(), policy);
            vmc_t *v = wx_open();
            vmc_region_t *r = &v->sp.code;
            char target[256];
            fd_target(wx_fd(r), target, sizeof target);
            ASSERT_STR_CONTAINS(target, policy == 1 ? "memfd:vmcode-code" : "/dev/shm/vmcode-");
            ASSERT_OK(vmc__region_commit(r, r->base, PAGE, VMC_CODE));
            emit_ret((void *)r->wbase, 40 + policy);
            ASSERT_EQ(call_at(r->base), 40 + policy);
            ASSERT_NO_RWX();
            vmc_close(v);
            _exit(0);
        }
        int st;
        ASSERT_EQ(waitpid(helper, &st, 0), helper);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 77) SKIP("cannot make a pid namespace (not root?)");
        ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "policy %d: status %#x", policy, st);
        /* the namespace's setting stayed in it */
        ASSERT_EQ(read_memfd_noexec(), outer);
    }
}

static int fstatfs_noexec(int fd, struct statfs *st)
{
    int r = fstatfs(fd, st);
    if (r == 0) st->f_flags |= ST_NOEXEC;
    return r;
}

TEST(wx_noexec_dev_shm_is_refused)
{
    int before = shm_files();
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc__os_fault(VMC_OS_MEMFD_CREATE, 1, ENOSYS, 1);
    vmc__os_set_call(VMC_OS_FSTATFS, (void (*)(void))fstatfs_noexec);
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, "-w_xor_x -vmheap_size 0 -vm_size 64M"));
    vmc_t *v = NULL;
    int r = vmc_open(&o, &v);
    vmc__os_set_call(VMC_OS_FSTATFS, NULL);
    vmc__os_fault_clear();
    ASSERT_EQ(r, -EACCES);
    ASSERT(v == NULL);
    ASSERT_STR_EQ(vmc_last_error(),
                  "w_xor_x: cannot create the code file: memfd_create: Function not implemented, "
                  "and the fallback failed: /dev/shm is mounted noexec, so code cannot be mapped "
                  "from a file there");
    ASSERT_EQ(shm_files(), before);
    ASSERT_NO_LEAK(snap);
}

static off_t ima_size_at_first_exec = -1;
static int exec_maps_of_files;

static void *mmap_spy(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (fd >= 0 && (prot & PROT_EXEC)) {
        struct stat st;
        if (exec_maps_of_files++ == 0 && fstat(fd, &st) == 0) ima_size_at_first_exec = st.st_size;
    }
    return mmap(addr, len, prot, flags, fd, off);
}

/* IMA hashes a file at its first executable mapping: that happens while the
 * file is one page long. */
TEST(wx_file_is_one_page_at_its_first_exec_mapping)
{
    vmc__os_set_call(VMC_OS_MMAP, (void (*)(void))mmap_spy);
    vmc_t *v = wx_open();
    ASSERT_EQ(exec_maps_of_files, 1);
    ASSERT_EQ(ima_size_at_first_exec, PAGE);
    vmc_region_t *r = &v->sp.code;
    ASSERT_OK(vmc__region_commit(r, r->base + (32u << 20), PAGE, VMC_CODE));
    ASSERT_EQ(exec_maps_of_files, 2);
    /* the child's new file too */
    pid_t pid = fork();
    if (pid == 0) {
        ASSERT_EQ(exec_maps_of_files, 4);  /* the child's file: a page, then the run */
        _exit(0);
    }
    wait_ok(pid);
    vmc__os_set_call(VMC_OS_MMAP, NULL);
    vmc_close(v);
}

static off_t child_prime_size = -1;
static int child_exec_maps;
static void *mmap_spy_child(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (fd >= 0 && (prot & PROT_EXEC) && child_exec_maps++ == 0) {
        struct stat st;
        if (fstat(fd, &st) == 0) child_prime_size = st.st_size;
    }
    return mmap(addr, len, prot, flags, fd, off);
}

TEST(wx_child_file_is_one_page_at_its_first_exec_mapping)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    ASSERT_OK(vmc__region_commit(r, r->base + (32u << 20), 8 * PAGE, VMC_CODE));
    vmc__os_set_call(VMC_OS_MMAP, (void (*)(void))mmap_spy_child);
    pid_t pid = fork();
    if (pid == 0) {
        ASSERT_EQ(child_exec_maps, 2);  /* the prime, then the committed run */
        ASSERT_EQ(child_prime_size, PAGE);
        ASSERT_GE(wx_file_size(r), (32u << 20) + 8 * PAGE);
        _exit(0);
    }
    wait_ok(pid);
    vmc__os_set_call(VMC_OS_MMAP, NULL);
    vmc_close(v);
}

TEST(wx_file_grows_in_steps)
{
    vmc_t *v = wx_open_text("-vm_size 256M");
    vmc_region_t *r = &v->sp.code;
    vmc__os_calls_reset();
    for (int i = 0; i < 200; i++)
        ASSERT_OK(vmc__region_commit(r, r->base + (uintptr_t)i * PAGE, PAGE, VMC_CODE));
    ASSERT_LE(vmc__os_calls(VMC_OS_FTRUNCATE), 1);
    ASSERT_GE(wx_file_size(r), 200 * PAGE);
    ASSERT_EQ(wx_file_size(r) % (1u << 20), 0);
    ASSERT_OK(vmc__region_commit(r, r->base + (200u << 20), PAGE, VMC_CODE));
    ASSERT_LE(vmc__os_calls(VMC_OS_FTRUNCATE), 2);
    ASSERT_GE(wx_file_size(r), (200u << 20) + PAGE);
    ASSERT_LE(wx_file_size(r), r->size);
    /* sparse: size is not memory */
    ASSERT_LT(file_bytes(wx_fd(r)), 1 << 20);
    vmc_close(v);
}

/* ---- RLIMIT_FSIZE ------------------------------------------------------------------ */

TEST(wx_rlimit_fsize_gives_efbig_not_sigxfsz)
{
    int pfd[2];
    ASSERT_EQ(pipe(pfd), 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_DFL);
        struct rlimit rl = {1u << 20, 1u << 20};
        ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
        vmc_t *v = wx_open();
        vmc_region_t *r = &v->sp.code;
        ASSERT_OK(vmc__region_commit(r, r->base, PAGE, VMC_CODE));
        ASSERT_OK(vmc__region_commit(r, r->base + (512u << 10), PAGE, VMC_CODE));
        ASSERT_OK(vmc__region_commit(r, r->base + (1u << 20) - PAGE, PAGE, VMC_CODE));
        ASSERT_LE(wx_file_size(r), 1u << 20);
        int e = vmc__region_commit(r, r->base + (4u << 20), PAGE, VMC_CODE);
        char msg[512];
        snprintf(msg, sizeof msg, "%d %s", e, vmc_last_error());
        ASSERT_PERMS(r->base + (4u << 20), r->base + (4u << 20) + PAGE, "---p");
        /* still working */
        emit_ret((void *)r->wbase, 12);
        ASSERT_EQ(call_at(r->base), 12);
        /* a fork under the limit copies a file within it */
        pid_t g = fork();
        if (g == 0) _exit(call_at(r->base) == 12 ? 0 : 1);
        wait_ok(g);
        vmc_close(v);
        ASSERT_EQ(write(pfd[1], msg, strlen(msg) + 1), (ssize_t)strlen(msg) + 1);
        _exit(0);
    }
    close(pfd[1]);
    char msg[512] = "";
    ASSERT_GT(read(pfd[0], msg, sizeof msg - 1), 0);
    wait_ok(pid);   /* exited normally: no SIGXFSZ */
    char want[256];
    snprintf(want, sizeof want, "%d code region: cannot commit 0x1000 bytes at ", -EFBIG);
    ASSERT_STR_CONTAINS(msg, want);
    ASSERT_STR_CONTAINS(msg, ": the code file would grow to 4198400 bytes, past RLIMIT_FSIZE "
                             "(1048576 bytes; see ulimit -f)");
}

TEST(wx_rlimit_fsize_below_a_page_fails_open)
{
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_DFL);
        struct rlimit rl = {1000, 1000};
        ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
        vt_snapshot_t snap;
        vt_snap(&snap);
        vmc_options_t o;
        vmc_options_init(&o);
        ASSERT_OK(vmc_options_parse(&o, "-w_xor_x -vmheap_size 0 -vm_size 64M"));
        vmc_t *v = NULL;
        ASSERT_EQ(vmc_open(&o, &v), -EFBIG);
        ASSERT_STR_EQ(vmc_last_error(),
                      "w_xor_x: RLIMIT_FSIZE (1000 bytes; see ulimit -f) is below one page");
        ASSERT_NO_LEAK(snap);
        _exit(0);
    }
    wait_ok(pid);
}

/* ---- RLIMIT_AS: the writable view doubles the address space --------------------- */

TEST(wx_open_under_rlimit_as_halves_for_both_views)
{
    if (vt_sanitized()) SKIP("sanitizer shadow memory does not fit under RLIMIT_AS");
    rlim_t lim = (rlim_t)3 << 30;  /* room for 2G of code, not for 2G more of writable view */
    vt_limited_t a = vt_open_limited(lim, "-w_xor_x");
    ASSERT_MSG(a.r == 0, "%d: %s", a.r, a.msg);
    ASSERT(a.alloc_ok);
    ASSERT_EQ(a.in.w_xor_x, 1);
    ASSERT_LT(a.in.code_size, (size_t)2 << 30);
    ASSERT_GE(a.in.code_size, (size_t)64 << 20);
    ASSERT_LT(2 * a.in.code_size + a.in.heap_size, (size_t)lim);
    a = vt_open_limited(lim, "-w_xor_x -no_allow_smaller -vmheap_size 0");
    ASSERT_EQ(a.r, -ENOMEM);
    ASSERT_STR_CONTAINS(a.msg, "w_xor_x: cannot reserve the writable view (2147483648 bytes): "
                               "mmap: Cannot allocate memory (address space limit? see ulimit -v)");
}

/* ---- injected failures ---------------------------------------------------------------- */

static int open_wx_err(vmc_t **v)
{
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, "-w_xor_x -vmheap_size 0 -vm_size 64M"));
    *v = NULL;
    return vmc_open(&o, v);
}

/* Fail one kind of call at open: the exact error and message, nothing left. */
static void open_fails_with(int want, const char *msg)
{
    vt_snapshot_t snap;
    vt_snap(&snap);
    int shm = shm_files();
    vmc_t *v;
    int r = open_wx_err(&v);
    vmc__os_fault_clear();
    ASSERT_MSG(r == want, "%d, wanted %d (%s)", r, want, vmc_last_error());
    ASSERT(v == NULL);
    ASSERT_STR_CONTAINS(vmc_last_error(), msg);
    ASSERT_EQ(shm_files(), shm);
    ASSERT_NO_LEAK(snap);
    vt_snap_free(&snap);
}

static void open_fails(enum vmc_os_call call, unsigned long nth, int err, int want,
                       const char *msg)
{
    vmc__os_fault(call, nth, err, 0);
    open_fails_with(want, msg);
}

/* The fallback's open fails (the program's other opens do not). */
static int open_shm_fails(const char *path, int flags, mode_t mode)
{
    if (!strncmp(path, "/dev/shm/", 9)) {
        errno = EACCES;
        return -1;
    }
    return open(path, flags, mode);
}

TEST(wx_open_failures_are_clean)
{
    open_fails(VMC_OS_MEMFD_CREATE, 1, ENOMEM, -ENOMEM,
               "w_xor_x: cannot create the code file: memfd_create: Cannot allocate memory");
    open_fails(VMC_OS_MEMFD_CREATE, 1, EMFILE, -EMFILE,
               "w_xor_x: cannot create the code file: memfd_create: Too many open files");
    open_fails(VMC_OS_FTRUNCATE, 1, EIO, -EIO,
               "w_xor_x: cannot size the code file to one page: ftruncate: Input/output error");
    open_fails(VMC_OS_GETRLIMIT, 1, EPERM, -EPERM, "w_xor_x: getrlimit: Operation not permitted");
    /* both memfd and its fallback */
    vmc__os_fault(VMC_OS_MEMFD_CREATE, 1, ENOSYS, 1);
    vmc__os_set_call(VMC_OS_OPEN, (void (*)(void))open_shm_fails);
    open_fails_with(-EACCES,
               "w_xor_x: cannot create the code file: memfd_create: Function not implemented, and "
               "the fallback failed: cannot create /dev/shm/vmcode-");
    vmc__os_set_call(VMC_OS_OPEN, NULL);
    vmc__os_fault(VMC_OS_MEMFD_CREATE, 1, ENOSYS, 1);
    open_fails(VMC_OS_UNLINK, 1, EIO, -EIO, "the fallback failed: cannot unlink /dev/shm/vmcode-");
    vmc__os_fault(VMC_OS_MEMFD_CREATE, 1, EPERM, 1);
    open_fails(VMC_OS_FSTATFS, 1, EIO, -EIO,
               "memfd_create: Operation not permitted, and the fallback failed: cannot check the "
               "mount of /dev/shm: fstatfs: Input/output error");
    vmc__os_fault(VMC_OS_MEMFD_CREATE, 1, ENOSYS, 1);
    open_fails(VMC_OS_GETRANDOM, 1, EAGAIN, -EAGAIN,
               "the fallback failed: cannot name a file in /dev/shm: getrandom:");
}

/* An mmap that fails on a chosen kind of call: the second reservation, the
 * executable mapping of the file at open, or the writable / executable
 * mapping of a commit. */
enum { FAIL_NONE, FAIL_WVIEW_RESERVE, FAIL_PRIME, FAIL_WVIEW_FILE, FAIL_COMMIT_X, FAIL_RERESERVE };
static int mmap_fail_what, mmap_fail_err, mmap_hits;

static void *mmap_failing(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    int fail = 0;
    int fixed = (flags & MAP_FIXED) && (flags & MAP_FIXED_NOREPLACE) != MAP_FIXED_NOREPLACE;
    switch (mmap_fail_what) {
    case FAIL_WVIEW_RESERVE:  /* the first unfixed reservation after the memfd exists */
        fail = fd < 0 && !fixed && prot == PROT_NONE && memfd_calls > 0;
        break;
    case FAIL_PRIME:
        fail = fd >= 0 && prot == (PROT_READ | PROT_EXEC) && len == PAGE;
        break;
    case FAIL_WVIEW_FILE:  /* the file over the whole writable view */
        fail = fd >= 0 && fixed && prot == PROT_NONE;
        break;
    case FAIL_COMMIT_X:
        fail = fd >= 0 && prot == (PROT_READ | PROT_EXEC);
        break;
    case FAIL_RERESERVE:
        fail = fd < 0 && fixed && prot == PROT_NONE;
        break;
    }
    if (fail) {
        mmap_hits++;
        errno = mmap_fail_err;
        return MAP_FAILED;
    }
    return mmap(addr, len, prot, flags, fd, off);
}

static int memfd_counting(const char *name, unsigned flags)
{
    memfd_calls++;
    return (int)syscall(SYS_memfd_create, name, flags);
}

TEST(wx_second_mapping_failures_at_open_are_clean)
{
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc__os_set_call(VMC_OS_MEMFD_CREATE, (void (*)(void))memfd_counting);
    vmc__os_set_call(VMC_OS_MMAP, (void (*)(void))mmap_failing);
    vmc_t *v;
    mmap_fail_what = FAIL_WVIEW_RESERVE;
    mmap_fail_err = ENOMEM;
    memfd_calls = 0;
    ASSERT_EQ(open_wx_err(&v), -ENOMEM);
    ASSERT_EQ(mmap_hits, 1);
    ASSERT_STR_EQ(vmc_last_error(), "w_xor_x: cannot reserve the writable view (67108864 bytes): "
                                    "mmap: Cannot allocate memory (address space limit? see ulimit -v)");
    ASSERT_NO_LEAK(snap);
    mmap_fail_what = FAIL_PRIME;
    mmap_fail_err = EPERM;
    ASSERT_EQ(open_wx_err(&v), -EPERM);
    ASSERT_EQ(mmap_hits, 2);
    ASSERT_STR_EQ(vmc_last_error(),
                  "w_xor_x: cannot map the code file executable: mmap: Operation not permitted (a "
                  "noexec mount, a vm.memfd_noexec policy or a security module refuses it)");
    ASSERT_NO_LEAK(snap);
    mmap_fail_what = FAIL_WVIEW_FILE;
    mmap_fail_err = ENOMEM;
    ASSERT_EQ(open_wx_err(&v), -ENOMEM);
    ASSERT_STR_EQ(vmc_last_error(), "w_xor_x: cannot map the code file at the writable view: mmap: "
                                    "Cannot allocate memory");
    ASSERT_NO_LEAK(snap);
    vmc__os_set_call(VMC_OS_MMAP, NULL);
    vmc__os_set_call(VMC_OS_MEMFD_CREATE, NULL);
}

/* A failed commit or decommit changes nothing: the maps, the file size. */
TEST(wx_commit_and_decommit_failures_change_nothing)
{
    vmc_t *v = wx_open();
    vmc_region_t *r = &v->sp.code;
    uintptr_t a = r->base + 2 * PAGE, far = r->base + (16u << 20);
    ASSERT_OK(vmc__region_commit(r, a, PAGE, VMC_CODE));
    emit_ret((void *)wview(r, a), 8);
    size_t size0 = wx_file_size(r);
    vt_snapshot_t snap;
    vt_snap(&snap);
    char want[256];

    /* Every kind of call failing for good: the step that failed is undone
     * with another kind, so nothing changes. */
    vmc__os_fault(VMC_OS_MPROTECT, 1, ENOMEM, 1);
    ASSERT_EQ(vmc__region_commit(r, far, PAGE, VMC_CODE), -ENOMEM);
    snprintf(want, sizeof want, "code region: cannot commit 0x1000 bytes at %#lx: opening the "
             "writable view: mprotect: Cannot allocate memory (too many mappings? see "
             "vm.max_map_count)", (unsigned long)far);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_EQ(wx_file_size(r), size0);
    ASSERT_NO_LEAK(snap);
    ASSERT_EQ(vmc__region_decommit(r, a, PAGE), -ENOMEM);
    snprintf(want, sizeof want, "code region: cannot decommit 0x1000 bytes at %#lx: closing the "
             "writable view: mprotect: Cannot allocate memory (too many mappings? see "
             "vm.max_map_count)", (unsigned long)a);
    ASSERT_STR_EQ(vmc_last_error(), want);
    vmc__os_fault_clear();
    ASSERT_NO_LEAK(snap);
    ASSERT_EQ(call_at(a), 8);

    vmc__os_set_call(VMC_OS_MMAP, (void (*)(void))mmap_failing);
    mmap_fail_what = FAIL_COMMIT_X;
    mmap_fail_err = EACCES;
    ASSERT_EQ(vmc__region_commit(r, far, PAGE, VMC_CODE), -EACCES);
    snprintf(want, sizeof want, "code region: cannot commit 0x1000 bytes at %#lx: mapping the "
             "executable view: mmap: Permission denied", (unsigned long)far);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_EQ(wx_file_size(r), size0);
    ASSERT_NO_LEAK(snap);

    mmap_fail_what = FAIL_RERESERVE;
    mmap_fail_err = ENOMEM;
    ASSERT_EQ(vmc__region_decommit(r, a, PAGE), -ENOMEM);
    snprintf(want, sizeof want, "code region: cannot re-reserve 0x1000 bytes at %#lx: mmap: "
             "Cannot allocate memory (too many mappings? see vm.max_map_count)", (unsigned long)a);
    ASSERT_STR_EQ(vmc_last_error(), want);
    vmc__os_set_call(VMC_OS_MMAP, NULL);
    ASSERT_NO_LEAK(snap);
    ASSERT_PERMS(a, a + PAGE, "r-xs");
    ASSERT_EQ(call_at(a), 8);
    emit_ret((void *)wview(r, a), 8);   /* still writable */

    vmc__os_fault(VMC_OS_FTRUNCATE, 1, EIO, 0);
    ASSERT_EQ(vmc__region_commit(r, far, PAGE, VMC_CODE), -EIO);
    snprintf(want, sizeof want, "code region: cannot commit 0x1000 bytes at %#lx: cannot grow the "
             "code file to 17825792 bytes: ftruncate: Input/output error", (unsigned long)far);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_EQ(wx_file_size(r), size0);
    ASSERT_NO_LEAK(snap);

    vmc__os_fault(VMC_OS_FTRUNCATE, 1, EFBIG, 0);
    ASSERT_EQ(vmc__region_commit(r, far, PAGE, VMC_CODE), -EFBIG);
    ASSERT_STR_CONTAINS(vmc_last_error(), "ftruncate: File too large (see ulimit -f)");
    ASSERT_NO_LEAK(snap);

    vmc__os_fault(VMC_OS_GETRLIMIT, 1, EINVAL, 0);
    ASSERT_EQ(vmc__region_commit(r, far, PAGE, VMC_CODE), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "getrlimit: Invalid argument");
    ASSERT_NO_LEAK(snap);

    vmc__os_fault(VMC_OS_FALLOCATE, 1, EOPNOTSUPP, 1);
    ASSERT_EQ(vmc__region_decommit(r, a, PAGE), -EOPNOTSUPP);
    snprintf(want, sizeof want, "code region: cannot decommit 0x1000 bytes at %#lx: freeing the "
             "code file's pages: fallocate(PUNCH_HOLE): Operation not supported", (unsigned long)a);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_NO_LEAK(snap);
    vmc__os_fault_clear();

    /* all still works */
    ASSERT_EQ(call_at(a), 8);
    emit_ret((void *)wview(r, a), 18);
    ASSERT_EQ(call_at(a), 18);
    ASSERT_OK(vmc__region_commit(r, far, PAGE, VMC_CODE));
    emit_ret((void *)wview(r, far), 9);
    ASSERT_EQ(call_at(far), 9);
    ASSERT_OK(vmc__region_decommit(r, a, PAGE));
    ASSERT_NO_RWX();
    vt_snap_free(&snap);
    vmc_close(v);
}

/* Fail the k-th call of each kind, once and for good, through a whole
 * life (open, commits, writes, decommits, fork, close): every failure is an
 * error with a message, and nothing is left behind. */
TEST(wx_fault_sweep)
{
    static const int kinds[] = {
        VMC_OS_MMAP,   VMC_OS_MPROTECT, VMC_OS_MEMFD_CREATE, VMC_OS_FTRUNCATE,
        VMC_OS_FALLOCATE, VMC_OS_OPEN,  VMC_OS_CLOSE,        VMC_OS_FSTATFS,
        VMC_OS_UNLINK, VMC_OS_LSEEK,    VMC_OS_GETRLIMIT,    VMC_OS_PWRITE,
        VMC_OS_GETRANDOM, VMC_OS_COPY_FILE_RANGE, VMC_OS_PREAD,
    };
    static const int errs[] = {ENOMEM, EPERM, ENOSYS, EIO};
    int shm = shm_files();
    vt_snapshot_t snap;
    vt_snap(&snap);
    int injected = 0, failures = 0;
    for (size_t ki = 0; ki < sizeof kinds / sizeof *kinds; ki++)
        for (size_t ei = 0; ei < sizeof errs / sizeof *errs; ei++)
            for (int persistent = 0; persistent < 2; persistent++)
                for (unsigned long k = 1; k < 40; k++) {
                    vmc__os_fault_clear();
                    vmc__os_fault(kinds[ki], k, errs[ei], persistent);
                    vmc_t *v = NULL;
                    int r = open_wx_err(&v), step = 0;
                    if (!r) {
                        vmc_region_t *c = &v->sp.code;
                        uintptr_t a = c->base + PAGE, b = c->base + (20u << 20);
                        if (!(r = vmc__region_commit(c, a, 2 * PAGE, VMC_CODE))) {
                            emit_ret((void *)wview(c, a + PAGE), 5);
                            ASSERT_EQ(call_at(a + PAGE), 5);
                            step++;
                        }
                        if (!r && !(r = vmc__region_commit(c, b, PAGE, VMC_CODE))) step++;
                        if (!r && !(r = vmc__region_commit(c, b + PAGE, PAGE, VMC_RDATA))) step++;
                        if (!r && !(r = vmc__region_decommit(c, a, PAGE))) step++;
                        if (!r && !(r = vmc__region_decommit(c, b, 2 * PAGE))) step++;
                        if (!r) {
                            /* the child's copy may fail too: its code still runs */
                            pid_t pid = fork();
                            if (pid == 0) _exit(call_at(a + PAGE) == 5 && !vt_rwx_count() ? 0 : 1);
                            wait_ok(pid);
                        }
                        ASSERT_NO_RWX();
                    }
                    unsigned long hit = vmc__os_faults_hit();
                    vmc__os_fault_clear();
                    if (r) {
                        failures++;
                        ASSERT_LT(r, 0);
                        ASSERT_MSG(strlen(vmc_last_error()) > 10, "no message for %d", r);
                    }
                    vmc_close(v);
                    ASSERT_NO_LEAK(snap);
                    ASSERT_EQ(shm_files(), shm);
                    if (!hit) break;
                    injected++;
                }
    ASSERT_GT(injected, 40);
    ASSERT_GT(failures, 20);
}

/* ---- through the public API ---------------------------------------------------------- */

static int in_view(const void *p, size_t n, const void *base, size_t size)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    return a >= b && n <= size && a - b <= size - n;
}

TEST(wx_api_alloc_write_through_w_run_through_x)
{
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc_t *v = wx_open_text("-vm_size 256M -vmheap_size 64M");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.w_xor_x, 1);
    enum { N = 2000 };
    static vmc_span_t s[N];
    for (int i = 0; i < N; i++) {
        size_t size = 16 + (size_t)(i % 7) * 40;
        ASSERT_OK(vmc_alloc(v, size, VMC_CODE, &s[i]));
        ASSERT(s[i].x != s[i].w);
        ASSERT(in_view(s[i].x, size, in.code_base, in.code_size));
        ASSERT(in_view(s[i].w, size, in.code_wbase, in.code_size));
        ASSERT_EQ((char *)s[i].w - (char *)s[i].x, (char *)in.code_wbase - (char *)in.code_base);
        ASSERT(vmc_writable(v, s[i].x) == s[i].w);
        ASSERT(vmc_executable(v, s[i].w) == s[i].x);
        emit_ret(s[i].w, (uint32_t)i);
        ASSERT_EQ(call_at((uintptr_t)s[i].x), i);
    }
    ASSERT_NO_RWX();
    /* rewrite every fragment in place */
    for (int i = 0; i < N; i++) emit_ret(s[i].w, (uint32_t)(i * 3));
    for (int i = 0; i < N; i++) ASSERT_EQ(call_at((uintptr_t)s[i].x), i * 3);
    /* a large one: whole pages, both views */
    vmc_span_t big;
    ASSERT_OK(vmc_alloc(v, 5 * PAGE, VMC_CODE, &big));
    ASSERT_PERMS((uintptr_t)big.x, (uintptr_t)big.x + 5 * PAGE, "r-xs");
    ASSERT_PERMS((uintptr_t)big.w, (uintptr_t)big.w + 5 * PAGE, "rw-s");
    emit_ret((char *)big.w + 4 * PAGE, 4444);
    ASSERT_EQ(call_at((uintptr_t)big.x + 4 * PAGE), 4444);
    /* data kinds are single-mapped */
    vmc_span_t rd, d;
    ASSERT_OK(vmc_alloc(v, 100, VMC_RDATA, &rd));
    ASSERT(rd.x == rd.w);
    ASSERT(in_view(rd.x, 100, in.code_base, in.code_size));
    ASSERT_STR_EQ(perms_at((uintptr_t)rd.x), "rw-p");
    ASSERT(vmc_writable(v, rd.x) == rd.x);
    ASSERT(vmc_executable(v, rd.x) == NULL);
    ASSERT_OK(vmc_alloc(v, 100, VMC_DATA, &d));
    ASSERT(d.x == d.w);
    ASSERT_NO_RWX();
    /* freeing by either view */
    for (int i = 0; i < N; i += 2) ASSERT_OK(vmc_free(v, s[i].w));
    for (int i = 1; i < N; i += 2) ASSERT_OK(vmc_free(v, s[i].x));
    uintptr_t bx = (uintptr_t)big.x, bw = (uintptr_t)big.w;
    ASSERT_OK(vmc_free(v, big.w));
    ASSERT_PERMS(bx, bx + 5 * PAGE, "---p");
    ASSERT_PERMS(bw, bw + 5 * PAGE, W_IDLE);
    ASSERT(vmc_writable(v, big.x) == NULL);
    ASSERT_OK(vmc_free(v, rd.x));
    ASSERT_OK(vmc_free(v, d.x));
    ASSERT_NO_RWX();
    vmc_close(v);
    ASSERT_NO_LEAK(snap);
}

TEST_SIGNAL(wx_api_write_through_x_faults, SIGSEGV)
{
    vmc_t *v = wx_open();
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 32, VMC_CODE, &s));
    emit_ret(s.w, 1);
    ASSERT_EQ(call_at((uintptr_t)s.x), 1);
    *(volatile unsigned char *)s.x = 0xc3;
}

TEST_SIGNAL(wx_api_execute_through_w_faults, SIGSEGV)
{
    vmc_t *v = wx_open();
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 32, VMC_CODE, &s));
    emit_ret(s.w, 1);
    ASSERT_EQ(call_at((uintptr_t)s.x), 1);
    call_at((uintptr_t)s.w);
}

TEST(wx_api_fork_child_allocates_and_modifies_parent_unchanged)
{
    vmc_t *v = wx_open_text("-vm_size 256M");
    vmc_span_t a, b;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &a));
    ASSERT_OK(vmc_alloc(v, 3 * PAGE, VMC_CODE, &b));
    emit_ret(a.w, 1);
    emit_ret(b.w, 2);
    int done[2];
    ASSERT_EQ(pipe(done), 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(done[0]);
        ASSERT_EQ(call_at((uintptr_t)a.x), 1);
        emit_ret(a.w, 10);
        ASSERT_EQ(call_at((uintptr_t)a.x), 10);
        vmc_span_t c[100];
        for (int i = 0; i < 100; i++) {
            ASSERT_OK(vmc_alloc(v, 48, VMC_CODE, &c[i]));
            emit_ret(c[i].w, (uint32_t)(1000 + i));
        }
        for (int i = 0; i < 100; i++) ASSERT_EQ(call_at((uintptr_t)c[i].x), 1000 + i);
        ASSERT_OK(vmc_free(v, b.x));
        ASSERT_NO_RWX();
        ASSERT_EQ(write(done[1], c, sizeof c), (ssize_t)sizeof c);
        vmc_close(v);
        _exit(0);
    }
    close(done[1]);
    vmc_span_t c[100];
    ASSERT_EQ(read(done[0], c, sizeof c), (ssize_t)sizeof c);
    wait_ok(pid);
    ASSERT_EQ(call_at((uintptr_t)a.x), 1);
    ASSERT_EQ(call_at((uintptr_t)b.x), 2);
    /* none of the child's code is in the parent: where the child emitted,
     * the parent has either nothing mapped or the zeros it never wrote */
    for (int i = 0; i < 100; i++) {
        ASSERT(vmc_writable(v, c[i].x) == NULL);
        if (!strcmp(perms_at((uintptr_t)c[i].x), "---p")) continue;
        static const unsigned char zero[6];
        ASSERT_EQ(memcmp(c[i].x, zero, sizeof zero), 0);
    }
    vmc_span_t n;
    ASSERT_OK(vmc_alloc(v, 48, VMC_CODE, &n));
    emit_ret(n.w, 77);
    ASSERT_EQ(call_at((uintptr_t)n.x), 77);
    ASSERT_EQ(call_at((uintptr_t)a.x), 1);
    ASSERT_NO_RWX();
    vmc_close(v);
}

/* Fail the k-th call of each kind while allocating code through the API:
 * every failure is an error with a message and nothing leaks. */
TEST(wx_api_alloc_fault_sweep)
{
    static const int kinds[] = {VMC_OS_MMAP, VMC_OS_MPROTECT, VMC_OS_FTRUNCATE,
                                VMC_OS_FALLOCATE, VMC_OS_GETRLIMIT, VMC_OS_MEMFD_CREATE};
    vt_snapshot_t snap;
    vt_snap(&snap);
    int injected = 0, failures = 0;
    for (size_t ki = 0; ki < sizeof kinds / sizeof *kinds; ki++)
        for (int persistent = 0; persistent < 2; persistent++)
            for (unsigned long k = 1; k < 30; k++) {
                vmc_t *v = NULL;
                vmc__os_fault_clear();
                vmc__os_fault(kinds[ki], k, ENOMEM, persistent);
                int r = open_wx_err(&v);
                vmc_span_t s[4];
                int n = 0;
                for (int i = 0; !r && i < 4; i++) {
                    r = vmc_alloc(v, i == 3 ? 2 * PAGE : 64, i == 2 ? VMC_RDATA : VMC_CODE, &s[i]);
                    if (!r) n++;
                }
                for (int i = 0; i < n; i++) {
                    if (i == 2) continue;
                    emit_ret(s[i].w, (uint32_t)i);
                    ASSERT_EQ(call_at((uintptr_t)s[i].x), i);
                }
                for (int i = 0; !r && i < n; i++) r = vmc_free(v, s[i].x);
                ASSERT_NO_RWX();
                unsigned long hit = vmc__os_faults_hit();
                vmc__os_fault_clear();
                if (r) {
                    failures++;
                    ASSERT_LT(r, 0);
                    ASSERT_MSG(strlen(vmc_last_error()) > 10, "no message for %d", r);
                }
                vmc_close(v);
                ASSERT_NO_LEAK(snap);
                if (!hit) break;
                injected++;
            }
    ASSERT_GT(injected, 10);
    ASSERT_GT(failures, 5);
}

static int forty_two(void) { return 42; }

/* Far-target stubs are written through the writable view and run from the
 * executable one, like any code. */
TEST(wx_api_stub_reaches_a_far_target)
{
    vmc_t *v = wx_open_text("-vm_size 256M");
    void *stub;
    int (*fn)(void) = forty_two;
    uintptr_t target;
    memcpy(&target, &fn, sizeof target);
    ASSERT_OK(vmc_stub(v, target, &stub));
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT(in_view(stub, 16, in.code_base, in.code_size));
    ASSERT_STR_EQ(perms_at((uintptr_t)stub), "r-xs");
    ASSERT_EQ(call_at((uintptr_t)stub), 42);
    ASSERT_NO_RWX();
    vmc_close(v);
}
