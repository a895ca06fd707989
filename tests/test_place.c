/* Placement next to targets below 4 GiB (a -no-pie program's image at
 * 0x400000), vm.mmap_min_addr, and the report when nothing can reach the
 * target. */
#include "test.h"
#include "vmcode.h"
#include "os/os.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

#define GIB ((uintptr_t)1 << 30)
#define BRK_ROOM ((uintptr_t)128 << 20)   /* what placement keeps free after brk */

/* What tests/progs/nopie_host.c printed. */
typedef struct host {
    int status;              /* exit status; 77: ASLR could not be turned off */
    char out[4096];
    uintptr_t img_lo, img_hi, brk_before, brk_after, code, target_lo, target_hi, alloc;
    size_t code_size, reaching;
    int placement, near_app_failed, call;
    uintptr_t hole, walk_hole, big;
    size_t hole_size, walk_hole_size, big_size;
    int w_xor_x, sbrk_ok, sbrk_past;
    size_t room;             /* the brk room asked for */
    /* with a hole: code on each side, the maps, a fork */
    uintptr_t lo_side, hi_side;
    int call_lo, call_hi, rwx, in_hole, fork_child, fork_parent_lo, fork_parent_hi;
    int maps_same, fds_same;
} host_t;

static uintptr_t field(const char *out, const char *key, int which)
{
    char k[64];
    snprintf(k, sizeof k, "\n%s ", key);
    const char *p = strstr(out, k);
    if (!p && strncmp(out, k + 1, strlen(k + 1)) == 0) p = out - 1;
    ASSERT_MSG(p, "no '%s' in the host's output:\n%s", key, out);
    p += strlen(k);
    char *end;
    uintptr_t v = strtoull(p, &end, 0);
    if (which) v = strtoull(end, NULL, 0);
    return v;
}

/* Run the -no-pie host with `options` (NULL: defaults), with address space
 * randomisation on or off; its output in h.out, its status in h.status. */
static void run_raw(host_t *h, const char *options, int randomize)
{
    memset(h, 0, sizeof *h);
    char path[512];
    snprintf(path, sizeof path, "%s/tests/nopie_host", vt_build_dir());
    ASSERT_MSG(access(path, X_OK) == 0, "%s is not built", path);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        if (!randomize && personality(ADDR_NO_RANDOMIZE) == -1) _exit(77);
        execl(path, path, options, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while (n < sizeof h->out - 1 && (got = read(fds[0], h->out + n, sizeof h->out - 1 - n)) > 0)
        n += (size_t)got;
    h->out[n] = 0;
    close(fds[0]);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT_MSG(WIFEXITED(st), "the host died (%#x):\n%s", st, h->out);
    h->status = WEXITSTATUS(st);
}

static host_t run_host(const char *options, int randomize)
{
    host_t h;
    run_raw(&h, options, randomize);
    if (h.status == 77) return h;
    ASSERT_MSG(h.status == 0, "the host failed (%d):\n%s", h.status, h.out);
    h.img_lo = field(h.out, "image", 0);
    h.img_hi = field(h.out, "image", 1);
    h.brk_before = field(h.out, "brk", 0);
    h.brk_after = field(h.out, "brk", 1);
    h.code = field(h.out, "code", 0);
    h.code_size = field(h.out, "code", 1);
    h.target_lo = field(h.out, "target", 0);
    h.target_hi = field(h.out, "target", 1);
    h.reaching = field(h.out, "reaching", 0);
    h.placement = (int)field(h.out, "placement", 0);
    h.near_app_failed = (int)field(h.out, "near_app_failed", 0);
    h.alloc = field(h.out, "alloc", 0);
    h.call = (int)field(h.out, "call", 0);
    h.hole = field(h.out, "hole", 0);
    h.hole_size = field(h.out, "hole", 1);
    h.walk_hole = field(h.out, "walk_hole", 0);
    h.walk_hole_size = field(h.out, "walk_hole", 1);
    h.big = field(h.out, "big", 0);
    h.big_size = field(h.out, "big", 1);
    h.w_xor_x = (int)field(h.out, "w_xor_x", 0);
    h.sbrk_ok = (int)field(h.out, "sbrk", 0);
    h.sbrk_past = (int)field(h.out, "sbrk_past", 0);
    h.maps_same = (int)field(h.out, "maps_same", 0);
    h.fds_same = (int)field(h.out, "fds_same", 0);
    if (h.hole_size) {
        h.lo_side = field(h.out, "lo_side", 0);
        h.hi_side = field(h.out, "hi_side", 0);
        h.call_lo = (int)field(h.out, "call_lo", 0);
        h.call_hi = (int)field(h.out, "call_hi", 0);
        h.rwx = (int)field(h.out, "rwx", 0);
        h.in_hole = (int)field(h.out, "in_hole", 0);
        h.fork_child = (int)field(h.out, "fork_child", 0);
        h.fork_parent_lo = (int)field(h.out, "fork_parent", 0);
        h.fork_parent_hi = (int)field(h.out, "fork_parent", 1);
    }
    h.room = BRK_ROOM;
    const char *r = options ? strstr(options, "-brk_room ") : NULL;
    if (r) h.room = strtoull(r + 10, NULL, 0) << 20;   /* given in M */
    return h;
}

#define ALIGN64K(a) (((a) + 0xffff) & ~(uintptr_t)0xffff)

/* The checks every run of the host passes: the image is where -no-pie puts
 * it; the region is either
 *  - after the brk room and as low as that allows (brk right after the data),
 *    or
 *  - from right after the image, spanning around the brk heap and its room
 *    (the hole), when brk went far enough that this reaches more, with or
 *    without W^X;
 * either way at least 90 % of it reaches the image, brk still grows into its
 * room, nothing of ours is in the hole, and the reaching allocation called
 * into the program.  With a hole, code on each side of it (written through
 * the writable view under W^X) calls into the program, under W^X no page is
 * writable and executable, and a forked child's code on both sides is its
 * own.
 * vmc_close leaves the maps and descriptors as they were. */
static void check_host(const host_t *h)
{
    ASSERT_EQ(h->img_lo, 0x400000);
    ASSERT_EQ(h->target_lo, 0x400000);
    ASSERT_GE(h->target_hi, h->img_hi);
    ASSERT_EQ(h->code_size, 2 * GIB);
    ASSERT_EQ(h->placement, VMC_PLACED_NEAR_APP);
    ASSERT_EQ(h->near_app_failed, 0);
    if (h->hole_size) {
        ASSERT_EQ(h->code, ALIGN64K(h->img_hi));
        ASSERT_GT(h->hole, h->code);
        ASSERT_LE(h->hole, h->brk_before);   /* the heap begins inside it */
        ASSERT_GE(h->hole + h->hole_size, h->brk_after + h->room);
        ASSERT_LE(h->hole + h->hole_size, ALIGN64K(h->brk_after + h->room));
        ASSERT_LT(h->hole + h->hole_size, h->code + h->code_size);
        ASSERT_EQ(h->walk_hole, h->hole);
        ASSERT_EQ(h->walk_hole_size, h->hole_size);
        ASSERT_EQ(h->reaching, h->target_lo + 2 * GIB - h->code - h->hole_size);
        ASSERT_MSG(h->big + h->big_size <= h->hole || h->big >= h->hole + h->hole_size,
                   "an allocation overlaps the hole:\n%s", h->out);
        ASSERT_MSG(h->alloc < h->hole || h->alloc >= h->hole + h->hole_size,
                   "an allocation is in the hole:\n%s", h->out);
        ASSERT_MSG(h->lo_side >= h->code && h->lo_side + 0x10000 <= h->hole,
                   "the low side's code is not below the hole:\n%s", h->out);
        ASSERT_MSG(h->hi_side >= h->hole + h->hole_size && h->hi_side < h->code + h->code_size,
                   "the high side's code is not above the hole:\n%s", h->out);
        ASSERT_EQ(h->call_lo, 42);
        ASSERT_EQ(h->call_hi, 42);
        if (h->w_xor_x) ASSERT_EQ(h->rwx, 0);   /* without W^X, code is rwx */
        ASSERT_MSG(h->in_hole == 0, "something besides the brk heap is in the hole:\n%s", h->out);
        ASSERT_MSG(h->fork_child == 0, "the forked child's check %d failed:\n%s", h->fork_child,
                   h->out);
        ASSERT_EQ(h->fork_parent_lo, 42);   /* the child's rewrites are its own */
        ASSERT_EQ(h->fork_parent_hi, 42);
    } else {
        ASSERT_GE(h->code, h->brk_before + h->room);
        ASSERT_LE(h->code, ALIGN64K(h->brk_after + h->room));
        ASSERT_EQ(h->reaching, h->target_lo + 2 * GIB - h->code);
        ASSERT_EQ(h->walk_hole_size, 0);
    }
    ASSERT_GE(h->big, h->code);
    ASSERT_LE(h->big + h->big_size, h->code + h->code_size);
    ASSERT_EQ(h->sbrk_ok, 1);
    ASSERT_EQ(h->sbrk_past, 0);
    ASSERT(h->alloc >= h->code && h->alloc < h->code + h->code_size);
    ASSERT_EQ(h->call, 42);
    ASSERT_EQ(h->maps_same, 1);
    ASSERT_EQ(h->fds_same, 1);
}

TEST(nopie_program_reaches_90_percent_with_brk_after_its_data)
{
    if (vt_sanitized()) SKIP("the sanitizer's shadow memory takes the space above 2 GiB");
    host_t h = run_host(NULL, 0);
    if (h.status == 77) SKIP("address space randomisation cannot be turned off here");
    check_host(&h);
    /* brk right after the data: no hole; all but the brk room and the image reach */
    ASSERT_LT(h.brk_before - h.img_hi, 1u << 20);
    ASSERT_EQ(h.hole_size, 0);
    ASSERT_GE(h.reaching, 2 * GIB / 10 * 9);
}

/* With randomisation the kernel puts brk up to 1 GiB after the data (x86-64):
 * a region after brk and its room would reach with 45-92 % of its bytes; the
 * region around the heap reaches with all of its own, at least 90 % of the
 * span, wherever brk went.  Eight runs see brk in eight places. */
TEST(nopie_program_with_randomised_brk_reaches_90_percent)
{
    if (vt_sanitized()) SKIP("the sanitizer's shadow memory takes the space above 2 GiB");
    int holes = 0;
    for (int i = 0; i < 8; i++) {
        host_t h = run_host(NULL, 1);
        check_host(&h);
        ASSERT_MSG(h.reaching >= 2 * GIB / 10 * 9, "only %zu bytes reach:\n%s", h.reaching, h.out);
        holes += h.hole_size != 0;
    }
    ASSERT_GT(holes, 0);
}

/* Either piece of the region around the heap failing to reserve: the region
 * goes after the brk room instead, and nothing of the failed attempt stays. */
TEST(nopie_hole_reservation_failure_falls_back_and_leaks_nothing)
{
    if (vt_sanitized()) SKIP("the sanitizer's shadow memory takes the space above 2 GiB");
    for (int nth = 1; nth <= 2; nth++) {
        char n[8];
        snprintf(n, sizeof n, "%d", nth);
        setenv("VMC_NOPIE_FAULT", n, 1);
        host_t h = run_host(NULL, 1);
        unsetenv("VMC_NOPIE_FAULT");
        if (h.brk_before - h.img_hi < (1u << 20)) continue;  /* brk after the data: no hole tried */
        ASSERT_EQ(field(h.out, "faults_hit", 0), 1);
        check_host(&h);
        ASSERT_EQ(h.hole_size, 0);
        ASSERT_EQ(field(h.out, "leftover", 0), 0);
    }
    host_t h = run_host(NULL, 1);
    ASSERT_EQ(field(h.out, "leftover", 0), 0);
}

/* -brk_room: a program that needs more heap by brk keeps more room (and
 * reaches a little less). */
TEST(nopie_program_keeps_the_brk_room_it_asks_for)
{
    if (vt_sanitized()) SKIP("the sanitizer's shadow memory takes the space above 2 GiB");
    host_t h = run_host("-brk_room 512M", 1);
    check_host(&h);
    if (h.hole_size) ASSERT_GE(h.hole_size, (size_t)512 << 20);
    ASSERT_GE(h.reaching, 2 * GIB / 10 * 7);
}

/* Under W^X the region gets the hole too: the executable view is the two
 * pieces, the writable view one reservation at one offset from both, and
 * at least 90 % of the span reaches the image wherever brk went (a region
 * after brk and its room got 44-94 %).  check_host runs code on both sides,
 * through the writable view, calling into the program, and forks. */
TEST(nopie_program_under_w_xor_x_gets_the_hole)
{
    if (vt_sanitized()) SKIP("the sanitizer's shadow memory takes the space above 2 GiB");
    int holes = 0;
    for (int i = 0; i < 8; i++) {
        host_t h = run_host("-w_xor_x", 1);
        check_host(&h);
        ASSERT_EQ(h.w_xor_x, 1);
        ASSERT_MSG(h.reaching >= 2 * GIB / 10 * 9, "only %zu bytes reach:\n%s", h.reaching, h.out);
        holes += h.hole_size != 0;
    }
    ASSERT_GT(holes, 0);
}

/* The -no-pie W^X path through the region layer, each kind of call failing
 * at each of its calls, once and for good: open (the two pieces, the memory
 * file, the writable view), a commit of code on each side of the hole, a
 * decommit of each.  Failing the pieces, or reading the maps, places the
 * region without a hole; any other failure is the call's exact message, the
 * step that failed changed nothing, and after the close no mapping and no
 * descriptor is left. */
typedef struct expect {
    const char *step, *text;   /* "%A": the step's address */
    int seen;
} expect_t;

static int message_is(const char *msg, const char *text, uintptr_t a)
{
    char want[512], hex[32];
    snprintf(hex, sizeof hex, "%#lx", (unsigned long)a);
    const char *at = strstr(text, "%A");
    if (at) snprintf(want, sizeof want, "%.*s%s%s", (int)(at - text), text, hex, at + 2);
    else snprintf(want, sizeof want, "%s", text);
    char *grow = strstr(want, "%N");   /* the file size a growth asked for */
    if (!grow) return !strcmp(msg, want);
    size_t pre = (size_t)(grow - want);
    if (strncmp(msg, want, pre)) return 0;
    const char *p = msg + pre;
    while (*p >= '0' && *p <= '9') p++;
    return p > msg + pre && !strcmp(p, grow + 2);
}

TEST(nopie_w_xor_x_hole_failures_undo_exactly)
{
    if (vt_sanitized()) SKIP("the sanitizer's shadow memory takes the space above 2 GiB");
    static const char *const kinds[] = {"mmap", "mprotect", "memfd_create", "ftruncate", "fallocate",
                                        "getrlimit", "open", "pread", "close"};
    expect_t ex[] = {
        {"open", "w_xor_x: cannot create the code file: memfd_create: Input/output error", 0},
        {"open", "w_xor_x: getrlimit: Input/output error", 0},
        {"open", "w_xor_x: cannot size the code file to one page: ftruncate: Input/output error", 0},
        {"open", "w_xor_x: cannot reserve the writable view (2147483648 bytes): mmap: "
                 "Input/output error", 0},
        {"open", "w_xor_x: cannot map the code file executable: mmap: Input/output error", 0},
        {"open", "w_xor_x: cannot map the code file at the writable view: mmap: Input/output error",
         0},
    };
    static const char *const commit_fails[] = {
        "code region: cannot commit 0x10000 bytes at %A: getrlimit: Input/output error",
        "code region: cannot commit 0x10000 bytes at %A: cannot grow the code file to %N bytes: "
        "ftruncate: Input/output error",
        "code region: cannot commit 0x10000 bytes at %A: opening the writable view: mprotect: "
        "Input/output error",
        "code region: cannot commit 0x10000 bytes at %A: mapping the executable view: mmap: "
        "Input/output error",
    };
    static const char *const decommit_fails[] = {
        "code region: cannot decommit 0x10000 bytes at %A: closing the writable view: mprotect: "
        "Input/output error",
        "code region: cannot re-reserve 0x10000 bytes at %A: mmap: Input/output error",
        "code region: cannot decommit 0x10000 bytes at %A: freeing the code file's pages: "
        "fallocate(PUNCH_HOLE): Input/output error",
    };
    /* each commit and decommit failure, on each side of the hole */
    expect_t side[2][7];
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 4; i++) side[s][i] = (expect_t){s ? "commit_hi" : "commit_lo", commit_fails[i], 0};
        for (int i = 0; i < 3; i++)
            side[s][4 + i] = (expect_t){s ? "decommit_hi" : "decommit_lo", decommit_fails[i], 0};
    }
    /* placing the region failing for good (every reservation) */
    const char *no_region = "code region: cannot reserve 2G (nor any half of it down to 64M): "
                            "Input/output error";
    setenv("VMC_NOPIE_REGION", "1", 1);
    int runs = 0, holes = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (int persistent = 0; persistent < 2; persistent++)
            for (int nth = 1; nth < 30; nth++) {
                char spec[64];
                snprintf(spec, sizeof spec, "%s %d %d%s", kinds[k], nth, EIO,
                         persistent ? " persistent" : "");
                setenv("VMC_NOPIE_FAULT", spec, 1);
                host_t h;
                run_raw(&h, "-w_xor_x", 1);
                ASSERT_MSG(h.status == 0, "%s: the host failed (%d):\n%s", spec, h.status, h.out);
                runs++;
                ASSERT_MSG(field(h.out, "maps_same", 0) == 1 && field(h.out, "fds_same", 0) == 1 &&
                               field(h.out, "leftover", 0) == 0,
                           "%s: something is left:\n%s", spec, h.out);
                const char *failed = strstr(h.out, "failed ");
                if (failed) {
                    char step[32], msg[512];
                    int err;
                    ASSERT_EQ(sscanf(failed, "failed %31s %d", step, &err), 2);
                    ASSERT_MSG(err == -EIO, "%s: %d", spec, err);
                    const char *m = strstr(h.out, "\nmessage ");
                    ASSERT(m);
                    ASSERT_EQ(sscanf(m, "\nmessage %511[^\n]", msg), 1);
                    int matched = 0;
                    if (!strcmp(step, "open")) {
                        for (size_t i = 0; i < sizeof ex / sizeof *ex; i++)
                            if (!strcmp(msg, ex[i].text)) matched = ++ex[i].seen;
                        if (persistent && !strcmp(msg, no_region)) matched = 1;
                    } else {
                        ASSERT_EQ(field(h.out, "step_same", 0), 1);
                        int hi = strstr(step, "_hi") != NULL;
                        uintptr_t a = field(h.out, hi ? "a_hi" : "a_lo", 0);
                        size_t hole = field(h.out, "hole", 1);
                        for (int i = 0; i < 7; i++)
                            if (!strcmp(step, side[hi][i].step) && message_is(msg, side[hi][i].text, a)) {
                                matched = 1;
                                side[hi][i].seen += hole != 0;   /* counted with the hole there */
                            }
                    }
                    ASSERT_MSG(matched, "%s: unexpected failure of %s: %s", spec, step, msg);
                } else {
                    ASSERT_EQ(field(h.out, "call_lo", 0), 42);
                    ASSERT_EQ(field(h.out, "call_hi", 0), 42);
                    ASSERT_EQ(field(h.out, "rwx", 0), 0);
                    ASSERT_EQ(field(h.out, "in_hole", 0), 0);
                    if (field(h.out, "hole", 1)) {
                        holes++;
                        ASSERT_EQ(field(h.out, "rel32_lo", 0), 1);
                        ASSERT_EQ(field(h.out, "rel32_hi", 0), 1);
                    }
                }
                if (field(h.out, "faults_hit", 0) == 0) break;
            }
    unsetenv("VMC_NOPIE_REGION");
    /* The same through vmc_open: the pair's failure undoes the whole open. */
    setenv("VMC_NOPIE_FAULT", "memfd_create 1 5", 1);
    host_t h;
    run_raw(&h, "-w_xor_x", 1);
    unsetenv("VMC_NOPIE_FAULT");
    ASSERT_MSG(h.status == 0, "the host failed (%d):\n%s", h.status, h.out);
    ASSERT_EQ((int)field(h.out, "open_failed", 0), -EIO);
    ASSERT_STR_CONTAINS(h.out, "\nmessage w_xor_x: cannot create the code file: memfd_create: "
                               "Input/output error\n");
    ASSERT_EQ(field(h.out, "maps_same", 0), 1);
    ASSERT_EQ(field(h.out, "fds_same", 0), 1);
    for (size_t i = 0; i < sizeof ex / sizeof *ex; i++)
        ASSERT_MSG(ex[i].seen, "never failed with: %s", ex[i].text);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 7; i++)
            ASSERT_MSG(side[s][i].seen, "%s never failed with the hole there: %s", side[s][i].step,
                       side[s][i].text);
    ASSERT_GT(holes, 0);
    ASSERT_GT(runs, 50);
}

/* A region next to a low target starts at vm.mmap_min_addr (never below
 * 64 KiB) when that gives it most reach; the file unreadable: 64 KiB. */
static uintptr_t min_base(void)
{
    char *s = vt_read_file("/proc/sys/vm/mmap_min_addr");
    uintptr_t min = s ? strtoull(s, NULL, 10) : 0;
    free(s);
    if (min < 0x10000) min = 0x10000;
    return (min + 0xffff) & ~(uintptr_t)0xffff;
}

TEST(low_target_region_starts_at_mmap_min_addr)
{
    /* the target [0x10000, 0x20000) itself is left free: the region starts
     * at the first address past both */
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0 -reach_lo 0x10000 -reach_hi 0x20000");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.placement, VMC_PLACED_NEAR_APP);
    ASSERT_EQ((uintptr_t)in.code_base, min_base() > 0x20000 ? min_base() : 0x20000);
    vmc_close(v);
    /* room below a target at 128 MiB: the region ends right below it */
    v = vt_open("-vm_size 64M -vmheap_size 0 -reach_lo 0x8000000 -reach_hi 0x8010000");
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.placement, VMC_PLACED_NEAR_APP);
    ASSERT_EQ((uintptr_t)in.code_base, 0x8000000 - (64u << 20));
    ASSERT_EQ(in.code_reaching, 64u << 20);
    ASSERT_EQ(in.near_app_failed, 0);
    vmc_close(v);
    static const enum vmc_os_call calls[] = {VMC_OS_OPEN, VMC_OS_PREAD};
    for (int i = 0; i < 2; i++) {
        vmc__os_fault(calls[i], 1, EACCES, 0);
        v = vt_open("-vm_size 64M -vmheap_size 0 -reach_lo 0x10000 -reach_hi 0x20000");
        ASSERT_EQ(vmc__os_faults_hit(), 1);
        vmc__os_fault_clear();
        ASSERT_OK(vmc_info(v, &in));
        ASSERT_EQ(in.placement, VMC_PLACED_NEAR_APP);
        ASSERT_GE((uintptr_t)in.code_base, 0x10000);
        ASSERT_EQ(in.code_reaching, 64u << 20);
        vmc_close(v);
    }
}

/* A target range with nothing mapped in it yet (something the program will
 * put there): the region goes beside it, never over it, and all of it
 * reaches. */
TEST(unmapped_target_is_left_free)
{
    size_t len = 1 * GIB;
    void *m = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT(m != MAP_FAILED);
    ASSERT_EQ(munmap(m, len), 0);
    uintptr_t lo = (uintptr_t)m + len / 2, hi = lo + 0x10000;
    char opts[256];
    snprintf(opts, sizeof opts, "-vm_size 64M -vmheap_size 0 -reach_lo %#lx -reach_hi %#lx",
             (unsigned long)lo, (unsigned long)hi);
    vmc_t *v = vt_open(opts);
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    uintptr_t b = (uintptr_t)in.code_base;
    ASSERT_EQ(in.placement, VMC_PLACED_NEAR_APP);
    ASSERT_MSG(b + in.code_size <= lo || b >= hi, "the region %#lx+%#zx covers the target %#lx..%#lx",
               (unsigned long)b, in.code_size, (unsigned long)lo, (unsigned long)hi);
    ASSERT_EQ(in.code_reaching, 64u << 20);
    vmc_close(v);
}

/* A target with other mappings all around it: nothing can reach it.  The
 * handle opens anyway, elsewhere, and says so. */
TEST(unreachable_target_opens_and_says_so)
{
    size_t len = 6 * GIB;
    void *m = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT(m != MAP_FAILED);
    uintptr_t lo = (uintptr_t)m + 3 * GIB, hi = lo + 4096;
    char opts[256];
    snprintf(opts, sizeof opts, "-vm_size 64M -vmheap_size 0 -reach_lo %#lx -reach_hi %#lx",
             (unsigned long)lo, (unsigned long)hi);
    vmc_t *v = vt_open(opts);
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.near_app_failed, 1);
    ASSERT_EQ(in.placement, VMC_PLACED_VM_BASE);
    ASSERT_EQ(in.reach_lo, lo);
    ASSERT_EQ(in.code_reaching, 0);
    vmc_span_t s;
    ASSERT_EQ(vmc_alloc_reaching(v, 64, VMC_CODE, lo, hi, &s), -ENOSPC);
    ASSERT_STR_CONTAINS(vmc_last_error(), "no part of the code region");
    void *stub;
    ASSERT_OK(vmc_stub(v, lo, &stub));  /* what to do instead */
    vmc_close(v);
    /* near_app off: not tried, so not failed */
    snprintf(opts, sizeof opts, "-vm_size 64M -vmheap_size 0 -no_near_app -reach_lo %#lx -reach_hi %#lx",
             (unsigned long)lo, (unsigned long)hi);
    v = vt_open(opts);
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.near_app_failed, 0);
    vmc_close(v);
    munmap(m, len);
    /* the default target, this (PIE) test program: reached */
    v = vt_open("-vm_size 64M -vmheap_size 0");
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.near_app_failed, 0);
    ASSERT_EQ(in.placement, VMC_PLACED_NEAR_APP);
    ASSERT_EQ(in.code_reaching, 64u << 20);
    vmc_close(v);
}
