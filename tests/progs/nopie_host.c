/* A host program linked -no-pie (its image at 0x400000), for the placement
 * tests (tests/test_place.c).  It opens a region with the options given as
 * its one argument (or the defaults), prints what vmc_info says and where brk
 * was, then allocates code that must reach the program's image, writes a
 * `call rel32` to one of the program's functions into it and runs it.  With
 * a hole (the brk heap inside the region's span) it does that on both sides
 * of the hole, looks at /proc/self/maps (no rwx line, nothing but the brk
 * heap in the hole) and forks: the child rewrites and allocates code on both
 * sides, the parent must see none of it.
 * Output: one "key value" per line; exit status 0 if all of it worked.
 *
 * VMC_NOPIE_FAULT=N: the Nth mmap of vmc_open fails (ENOMEM).
 * VMC_NOPIE_FAULT="CALL N ERRNO [persistent]": the Nth call of that kind
 * (vmc__os_call_name) from vmc_open on fails with ERRNO; a failed vmc_open
 * is then reported ("open_failed", "message") rather than an error.
 * VMC_NOPIE_REGION=1: only the code region, through the region layer (open,
 * commit and run code on each side of the hole, decommit each side, close),
 * with the fault set before the open; "failed STEP ERR" and "message" say
 * which step failed, "step_same" whether the maps were as before it.
 * Either way, "maps_same" and "fds_same" at the end say whether the maps
 * (less the brk heap) and the open descriptors are as before vmc_open, and
 * "leftover" how many inaccessible mappings are left below 4 GiB. */
#include "vmcode.h"
#include "os/os.h"
#include "region/region.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char __executable_start[], _end[];

__attribute__((noinline)) static int answer(void) { return 42; }
__attribute__((noinline)) static int other_answer(void) { return 43; }

static int walk_hole(const vmc_run_info_t *ri, void *arg)
{
    struct { uintptr_t lo; size_t size; } *seen = arg;
    if (ri->owner == VMC_RUN_BRK_HEAP) {
        seen->lo = (uintptr_t)ri->start;
        seen->size = ri->size;
    }
    return 0;
}

/* /proc/self/maps into buf, without the brk heap's line (malloc moves it). */
static void read_maps(char *buf, size_t cap)
{
    static char raw[1 << 16];
    size_t n = 0;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    ssize_t got;
    while (fd >= 0 && n < sizeof raw - 1 && (got = read(fd, raw + n, sizeof raw - 1 - n)) > 0)
        n += (size_t)got;
    if (fd >= 0) close(fd);
    raw[n] = 0;
    size_t o = 0;
    for (char *line = raw; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
        if (!memmem(line, len, "[heap]", 6) && o + len < cap) {
            memcpy(buf + o, line, len);
            o += len;
        }
        line += len;
    }
    buf[o] = 0;
}

/* The open descriptors and what they are. */
static void read_fds(char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d)) continue;
        char link[300], target[256] = "";
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t r = readlink(link, target, sizeof target - 1);
        if (r > 0) target[r] = 0;
        n += (size_t)snprintf(buf + n, cap - n, "%s->%s\n", e->d_name, target);
        if (n > cap - 400) break;
    }
    closedir(d);
}

/* Injected failures returned, kept across clearing the fault. */
static unsigned long hits;

static void fault_clear(void)
{
    hits += vmc__os_faults_hit();
    vmc__os_fault_clear();
}

static char maps0[1 << 16], maps1[1 << 16], fds0[8192], fds1[8192];

static void snap(void)
{
    read_maps(maps0, sizeof maps0);
    read_fds(fds0, sizeof fds0);
}

static int maps_same(void)
{
    read_maps(maps1, sizeof maps1);
    return !strcmp(maps0, maps1);
}

static int fds_same(void)
{
    read_fds(fds1, sizeof fds1);
    return !strcmp(fds0, fds1);
}

/* Inaccessible mappings starting in [0x400000, 4 GiB): what a reservation
 * left behind would be. */
static int low_reservations(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char prot[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, prot) == 3 && !strcmp(prot, "---p") &&
            lo >= 0x400000 && lo < (1ul << 32))
            n++;
    }
    fclose(f);
    return n;
}

/* Lines of /proc/self/maps that are writable and executable, and lines that
 * meet [hole, hole+size) other than the brk heap's. */
static void maps_check(uintptr_t hole, size_t size, int *rwx, int *in_hole)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    *rwx = *in_hole = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char prot[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, prot) != 3) continue;
        if (prot[1] == 'w' && prot[2] == 'x') ++*rwx;
        if (size && lo < hole + size && hi > hole && !strstr(line, "[heap]")) ++*in_hole;
    }
    if (f) fclose(f);
}

/* sub rsp, 8; call fn; add rsp, 8; ret, written at w to run at x.  0 if fn
 * is out of rel32 reach from x. */
static int write_call(void *w, uintptr_t x, int (*fn)(void))
{
    unsigned char code[] = {0x48, 0x83, 0xec, 0x08, 0xe8, 0, 0, 0, 0, 0x48, 0x83, 0xc4, 0x08, 0xc3};
    int64_t d = (int64_t)((uintptr_t)fn - (x + 9));
    if (d < INT32_MIN || d > INT32_MAX) return 0;
    int32_t rel = (int32_t)d;
    memcpy(code + 5, &rel, 4);
    memcpy(w, code, sizeof code);
    return 1;
}

static int run_at(uintptr_t x)
{
    int (*fn)(void);
    void *p = (void *)x;
    memcpy(&fn, &p, sizeof fn);
    return fn();
}

/* Set the fault VMC_NOPIE_FAULT asks for; 1 if it is in the long form. */
static int set_fault(const char *spec)
{
    char name[32];
    unsigned long nth;
    int err, persistent = 0;
    char extra[16] = "";
    if (sscanf(spec, "%31s %lu %d %15s", name, &nth, &err, extra) >= 3) {
        persistent = !strcmp(extra, "persistent");
        for (int c = 0; c < VMC_OS_CALL_COUNT; c++)
            if (!strcmp(vmc__os_call_name((enum vmc_os_call)c), name)) {
                vmc__os_fault((enum vmc_os_call)c, nth, err, persistent);
                return 1;
            }
        printf("error no call named %s\n", name);
        exit(1);
    }
    vmc__os_fault(VMC_OS_MMAP, strtoul(spec, NULL, 10), ENOMEM, 0);
    return 0;
}

/* The code region alone, through the region layer: open, then on each side
 * of the hole commit 64 KiB of code, write a call into the program through
 * the writable view and run it from the executable view, then decommit each
 * side, then close.  Stops at the first failure. */
static int region_mode(const vmc_options_t *o, const char *fault)
{
    vmc_region_t r;
    vmc_place_t place;
    size_t blk = 64 << 10;
    snap();
    if (fault) set_fault(fault);
    int e = vmc__region_open_code(&r, o, &place);
    if (e) {
        fault_clear();
        printf("failed open %d\nmessage %s\n", e, vmc_last_error());
    } else {
        uintptr_t lo = r.base, hi = r.hole_hi > r.hole_lo ? r.hole_hi : r.base + r.size / 2;
        printf("code %#lx %zu\nwbase %#lx\nw_xor_x %d\n", (unsigned long)r.base, r.size,
               (unsigned long)r.wbase, r.wx);
        printf("hole %#lx %zu\n", (unsigned long)r.hole_lo, (size_t)(r.hole_hi - r.hole_lo));
        printf("a_lo %#lx\na_hi %#lx\n", (unsigned long)lo, (unsigned long)hi);
        struct { const char *name; uintptr_t a; int commit; } steps[] = {
            {"commit_lo", lo, 1}, {"commit_hi", hi, 1}, {"decommit_lo", lo, 0}, {"decommit_hi", hi, 0},
        };
        int rwx = 0, in_hole = 0;   /* after every step */
        for (int i = 0; i < 4; i++) {
            read_maps(maps1, sizeof maps1);
            char before[sizeof maps1];
            memcpy(before, maps1, sizeof before);
            e = steps[i].commit ? vmc__region_commit(&r, steps[i].a, blk, VMC_CODE)
                                : vmc__region_decommit(&r, steps[i].a, blk);
            if (e) {
                fault_clear();
                printf("failed %s %d\nmessage %s\n", steps[i].name, e, vmc_last_error());
                read_maps(maps1, sizeof maps1);
                printf("step_same %d\n", !strcmp(before, maps1));
                break;
            }
            if (steps[i].commit) {
                /* Placed elsewhere after a failure, the region may not
                 * reach the program: then code that returns 42 itself. */
                void *w = (void *)(r.wbase + (steps[i].a - r.base));
                int rel32 = write_call(w, steps[i].a, answer);
                if (!rel32) memcpy(w, "\xb8\x2a\0\0\0\xc3", 6);   /* mov eax, 42; ret */
                printf("rel32_%s %d\ncall_%s %d\n", steps[i].name + 7, rel32, steps[i].name + 7,
                       run_at(steps[i].a));
            }
            int x1, x2;
            maps_check(r.hole_lo, r.hole_hi - r.hole_lo, &x1, &x2);
            rwx += x1;
            in_hole += x2;
        }
        fault_clear();
        printf("rwx %d\nin_hole %d\n", rwx, in_hole);
        vmc__region_close(&r);
    }
    fault_clear();
    printf("faults_hit %lu\n", hits);
    printf("maps_same %d\nfds_same %d\n", maps_same(), fds_same());
    printf("leftover %d\n", low_reservations());
    return 0;
}

/* The child of the fork: its own code on both sides, rewritten and new;
 * nothing in the hole and, under W^X, no rwx line.  Exit status 0 if all of it holds, else which check failed. */
static int fork_child(vmc_t *v, const vmc_span_t *lo, const vmc_span_t *hi, uintptr_t hole,
                      size_t hole_size, int wx)
{
    if (!write_call(lo->w, (uintptr_t)lo->x, other_answer) || run_at((uintptr_t)lo->x) != 43)
        return 1;
    if (!write_call(hi->w, (uintptr_t)hi->x, other_answer) || run_at((uintptr_t)hi->x) != 43)
        return 2;
    vmc_span_t a, b;
    if (vmc_alloc_reaching(v, 64 << 10, VMC_CODE, (uintptr_t)__executable_start,
                           (uintptr_t)_end, &a) ||
        vmc_alloc_reaching(v, 64 << 10, VMC_CODE, (uintptr_t)__executable_start,
                           hole + hole_size + ((uintptr_t)2 << 30), &b))
        return 3;
    if ((uintptr_t)a.x >= hole || (uintptr_t)b.x < hole + hole_size) return 4;
    if (!write_call(a.w, (uintptr_t)a.x, answer) || run_at((uintptr_t)a.x) != 42) return 5;
    if (!write_call(b.w, (uintptr_t)b.x, answer) || run_at((uintptr_t)b.x) != 42) return 6;
    int rwx, in_hole;
    maps_check(hole, hole_size, &rwx, &in_hole);
    if ((wx && rwx) || in_hole) return 7;   /* without W^X, code is rwx */
    return 0;
}

/* Code on each side of the hole: written through w, run from x, calling
 * into the program; then a fork. */
static int both_sides(vmc_t *v, const vmc_info_t *in)
{
    uintptr_t hole = (uintptr_t)in->brk_hole;
    size_t hole_size = in->brk_hole_size;
    vmc_span_t lo, hi;
    /* The lowest free space that reaches the image is below the hole; space
     * that reaches [image, hole end + 2 GiB) is above it. */
    if (vmc_alloc_reaching(v, 64 << 10, VMC_CODE, in->reach_lo, in->reach_hi, &lo) ||
        vmc_alloc_reaching(v, 64 << 10, VMC_CODE, in->reach_lo,
                           hole + hole_size + ((uintptr_t)2 << 30), &hi)) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    printf("lo_side %#lx\nhi_side %#lx\n", (unsigned long)(uintptr_t)lo.x,
           (unsigned long)(uintptr_t)hi.x);
    printf("call_lo %d\n", write_call(lo.w, (uintptr_t)lo.x, answer) ? run_at((uintptr_t)lo.x) : -1);
    printf("call_hi %d\n", write_call(hi.w, (uintptr_t)hi.x, answer) ? run_at((uintptr_t)hi.x) : -1);
    int rwx, in_hole;
    maps_check(hole, hole_size, &rwx, &in_hole);
    printf("rwx %d\nin_hole %d\n", rwx, in_hole);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(fork_child(v, &lo, &hi, hole, hole_size, in->w_xor_x));
    int st = -1;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) {
        printf("error fork\n");
        return 1;
    }
    printf("fork_child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    printf("fork_parent %d %d\n", run_at((uintptr_t)lo.x), run_at((uintptr_t)hi.x));
    vmc_free(v, lo.x);
    vmc_free(v, hi.x);
    return 0;
}

int main(int argc, char **argv)
{
    const char *fault = getenv("VMC_NOPIE_FAULT");
    uintptr_t brk_before = (uintptr_t)sbrk(0);
    vmc_options_t o;
    vmc_options_init(&o);
    if (argc > 1 && vmc_options_parse(&o, argv[1])) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    if (getenv("VMC_NOPIE_REGION")) return region_mode(&o, fault);
    vmc_t *v;
    snap();
    int long_fault = fault ? set_fault(fault) : 0;
    int e = vmc_open(&o, &v);
    if (e && long_fault) {
        fault_clear();
        printf("open_failed %d\nmessage %s\n", e, vmc_last_error());
        printf("faults_hit %lu\n", hits);
        printf("maps_same %d\nfds_same %d\n", maps_same(), fds_same());
        return 0;
    }
    if (e) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    fault_clear();   /* what is tested is vmc_open */
    uintptr_t brk_after = (uintptr_t)sbrk(0);
    vmc_info_t in;
    vmc_info(v, &in);
    printf("image %#lx %#lx\n", (unsigned long)(uintptr_t)__executable_start, (unsigned long)(uintptr_t)_end);
    printf("brk %#lx %#lx\n", (unsigned long)brk_before, (unsigned long)brk_after);
    printf("code %#lx %zu\n", (unsigned long)(uintptr_t)in.code_base, in.code_size);
    printf("target %#lx %#lx\n", (unsigned long)in.reach_lo, (unsigned long)in.reach_hi);
    printf("reaching %zu\n", in.code_reaching);
    printf("placement %d\n", in.placement);
    printf("near_app_failed %d\n", in.near_app_failed);
    printf("hole %#lx %zu\n", (unsigned long)(uintptr_t)in.brk_hole, in.brk_hole_size);
    printf("w_xor_x %d\n", in.w_xor_x);

    /* The heap still grows by brk into all of its room (inside the hole, if
     * any), and no further: the region is there. */
    intptr_t room = (intptr_t)o.brk_room - (intptr_t)(brk_after - brk_before) - (1 << 20);
    void *grown = sbrk(room);
    printf("sbrk %d\n", grown != (void *)-1 && sbrk(-room) != (void *)-1);
    grown = sbrk((intptr_t)o.brk_room + (64 << 20));
    printf("sbrk_past %d\n", grown != (void *)-1);
    if (grown != (void *)-1) sbrk(-((intptr_t)o.brk_room + (64 << 20)));
    /* The block map shows the hole as a run of its own. */
    struct { uintptr_t lo; size_t size; } seen = {0, 0};
    vmc_walk(v, walk_hole, &seen);
    printf("walk_hole %#lx %zu\n", (unsigned long)seen.lo, seen.size);
    /* One allocation of half the region lands on one side of the hole. */
    vmc_span_t big;
    if (vmc_alloc(v, in.code_size / 2 - (in.brk_hole_size + (64u << 20)), VMC_CODE, &big)) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    printf("big %#lx %zu\n", (unsigned long)(uintptr_t)big.x, big.size);
    vmc_free(v, big.x);

    vmc_span_t s;
    if (vmc_alloc_reaching(v, 64, VMC_CODE, in.reach_lo, in.reach_hi, &s)) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    printf("alloc %#lx\n", (unsigned long)(uintptr_t)s.x);
    if (!write_call(s.w, (uintptr_t)s.x, answer)) {
        printf("error the allocation does not reach the program\n");
        return 1;
    }
    printf("call %d\n", run_at((uintptr_t)s.x));
    if (in.brk_hole_size && both_sides(v, &in)) return 1;
    vmc_close(v);
    fault_clear();
    printf("faults_hit %lu\n", hits);
    printf("maps_same %d\nfds_same %d\n", maps_same(), fds_same());
    printf("leftover %d\n", low_reservations());
    return 0;
}
