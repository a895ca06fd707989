/* Placement: choosing where in the address space the code region goes.
 *
 * The free gaps of the address space are read from /proc/self/maps (through
 * the OS layer, streaming, with no allocation).  In each gap large enough for
 * the region, a few candidate bases are scored by how many bytes of the region
 * would reach the target range by rel32 (ties: nearer the target wins).  The
 * caller then tries the winner with MAP_FIXED_NOREPLACE; if another thread took
 * the space meanwhile it simply asks again.
 *
 * The low 4 GiB are left alone (programs built -no-pie, MAP_32BIT users and
 * brk live there) unless the target's reach window extends into them, as for
 * a -no-pie program's image at 0x400000: then the floor is vm.mmap_min_addr.
 * Below such an image there are only 4 MiB, so a large region goes above it,
 * past the room kept for brk, and reaches the image from every byte below
 * image + 2 GiB.
 */
#include "region/region.h"
#include "arch/arch.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define ADDR_FLOOR   ((uintptr_t)1 << 32)     /* the low 4 GiB: for a low target only */
#define MIN_ADDR     ((uintptr_t)64 << 10)    /* never lower, whatever vm.mmap_min_addr */
#define ADDR_CEIL    ((uintptr_t)1 << 47)     /* 4-level paging user space     */
#define STACK_GUARD  ((uintptr_t)256 << 20)   /* room for the main stack to grow */

typedef struct place_state {
    size_t size, align;
    uintptr_t lo, hi;              /* target                                 */
    uintptr_t avoid_lo, avoid_hi;  /* kept free for brk                      */
    uintptr_t floor;               /* lowest base considered                 */
    uintptr_t prev_end;            /* end of the previous mapping            */
    int found;
    uintptr_t best;
    size_t best_reach;
    uintptr_t best_dist;
} place_state_t;

static uintptr_t dist_to(uintptr_t a, size_t size, uintptr_t lo, uintptr_t hi)
{
    if (a + size <= lo) return lo - (a + size);
    if (a >= hi) return a - hi;
    return 0;
}

static void consider(place_state_t *s, uintptr_t g0, uintptr_t g1, uintptr_t a)
{
    /* Align down, or up if that leaves the gap. */
    uintptr_t al = a & ~(uintptr_t)(s->align - 1);
    if (al < g0) al = (a + s->align - 1) & ~(uintptr_t)(s->align - 1);
    if (al < g0 || al > g1 || g1 - al < s->size) return;
    size_t r = vmc__reach_bytes(al, s->size, s->lo, s->hi);
    uintptr_t d = dist_to(al, s->size, s->lo, s->hi);
    if (!s->found || r > s->best_reach || (r == s->best_reach && d < s->best_dist)) {
        s->found = 1;
        s->best = al;
        s->best_reach = r;
        s->best_dist = d;
    }
}

static uintptr_t clampu(uintptr_t v, uintptr_t lo, uintptr_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void gap(place_state_t *s, uintptr_t g0, uintptr_t g1)
{
    if (g0 < s->floor) g0 = s->floor;
    if (g1 > ADDR_CEIL) g1 = ADDR_CEIL;
    /* The brk area is not free: what lies on either side of it is. */
    if (s->avoid_hi > s->avoid_lo && g0 < s->avoid_hi && g1 > s->avoid_lo) {
        if (g0 < s->avoid_lo) gap(s, g0, s->avoid_lo);
        if (g1 > s->avoid_hi) gap(s, s->avoid_hi, g1);
        return;
    }
    if (g1 <= g0 || g1 - g0 < s->size) return;
    uintptr_t last = g1 - s->size;
    uintptr_t wlo, whi;
    vmc__reach_window(s->lo, s->hi, &wlo, &whi);
    consider(s, g0, g1, g0);
    consider(s, g0, g1, last);
    consider(s, g0, g1, clampu(wlo, g0, last));
    consider(s, g0, g1, clampu(whi > s->size ? whi - s->size : 0, g0, last));
    consider(s, g0, g1, clampu(s->hi, g0, last));
    consider(s, g0, g1, clampu(s->lo > s->size ? s->lo - s->size : 0, g0, last));
}

static uintptr_t parse_hex(const char **p, const char *end)
{
    uintptr_t v = 0;
    while (*p < end) {
        char c = **p;
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else break;
        v = v << 4 | (uintptr_t)d;
        (*p)++;
    }
    return v;
}

/* One line of /proc/self/maps: "start-end perms offset dev inode   path". */
static void line(place_state_t *s, const char *p, const char *end)
{
    uintptr_t start = parse_hex(&p, end);
    if (p >= end || *p != '-') return;
    p++;
    uintptr_t stop = parse_hex(&p, end);
    if (end - p >= 7 && memmem(p, (size_t)(end - p), "[stack]", 7))
        start = start > STACK_GUARD ? start - STACK_GUARD : 0;
    if (start > s->prev_end) gap(s, s->prev_end, start);
    if (stop > s->prev_end) s->prev_end = stop;
}

/* vm.mmap_min_addr (below it mmap fails with EPERM), at least MIN_ADDR;
 * MIN_ADDR, the usual value, if the file cannot be read. */
static uintptr_t mmap_min_addr(void)
{
    int fd;
    if (vmc__os_open("/proc/sys/vm/mmap_min_addr", O_RDONLY, 0, &fd)) return MIN_ADDR;
    char buf[32];
    size_t got = 0;
    int r = vmc__os_pread(fd, buf, sizeof buf, 0, &got);
    vmc__os_close(fd);
    uintptr_t v = 0;
    for (size_t i = 0; !r && i < got && buf[i] >= '0' && buf[i] <= '9' && v < ((uintptr_t)1 << 40); i++)
        v = v * 10 + (uintptr_t)(buf[i] - '0');
    return v > MIN_ADDR ? v : MIN_ADDR;
}

int vmc__place_near(size_t size, size_t align, uintptr_t lo, uintptr_t hi,
                    uintptr_t avoid_lo, uintptr_t avoid_hi, uintptr_t *out)
{
    place_state_t s = {.size = size, .align = align, .lo = lo, .hi = hi,
                       .avoid_lo = avoid_lo, .avoid_hi = avoid_hi, .floor = ADDR_FLOOR};
    uintptr_t wlo, whi;
    vmc__reach_window(lo, hi, &wlo, &whi);
    if (wlo < ADDR_FLOOR) s.floor = mmap_min_addr();
    int fd, r = vmc__os_open("/proc/self/maps", O_RDONLY, 0, &fd);
    if (r) return r;
    char buf[4096];
    size_t have = 0;
    off_t off = 0;
    for (;;) {
        size_t got;
        r = vmc__os_pread(fd, buf + have, sizeof buf - have, off, &got);
        if (r) break;
        off += (off_t)got;
        have += got;
        char *p = buf, *end = buf + have, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
            line(&s, p, nl);
            p = nl + 1;
        }
        have = (size_t)(end - p);
        memmove(buf, p, have);
        if (got == 0) {
            if (have) line(&s, buf, buf + have);
            break;
        }
        if (have == sizeof buf) have = 0;  /* a line longer than the buffer: skip it */
    }
    vmc__os_close(fd);
    if (r) return r;
    gap(&s, s.prev_end, ADDR_CEIL);
    if (!s.found) return -ENOSPC;
    *out = s.best;
    return 0;
}
