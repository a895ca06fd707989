/* Placement: choosing where in the address space the code region goes.
 *
 * The free gaps of the address space come from the OS layer
 * (vmc__os_free_gaps: /proc/self/maps on Linux, VirtualQuery on Windows,
 * without allocating).  In each gap large enough for
 * the region, a few candidate bases are scored by how many bytes of the region
 * would reach the target range by rel32 (ties: nearer the target wins).  The
 * caller then tries the winner with MAP_FIXED_NOREPLACE; if another thread took
 * the space meanwhile it simply asks again.
 *
 * The low 4 GiB are left alone (programs built -no-pie, MAP_32BIT users and
 * brk live there) unless the target's reach window extends into them, as for
 * a -no-pie program's image at 0x400000 (or any Windows program: its default
 * image base is 0x140000000, just above 4 GiB): then the floor is the lowest
 * address the system maps at (vmc__os_min_addr; Linux: vm.mmap_min_addr).
 * Below such an image there are only 4 MiB, so a large region goes above it,
 * past the room kept for brk, and reaches the image from every byte below
 * image + 2 GiB.
 */
#include "region/region.h"
#include "arch/arch.h"
#include "os/os.h"

#include <errno.h>

#define ADDR_FLOOR   ((uintptr_t)1 << 32)     /* the low 4 GiB: for a low target only */
#define ADDR_CEIL    VMC_ARCH_USER_TOP        /* the user address space's top  */

typedef struct place_state {
    size_t size, align;
    uintptr_t lo, hi;              /* target                                 */
    uintptr_t avoid_lo, avoid_hi;  /* kept free for brk                      */
    uintptr_t floor;               /* lowest base considered                 */
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
    /* The brk area is not free: what lies on either side of it is.  Nor is
     * the target itself, when nothing is mapped there yet (a range given
     * with reach_lo/reach_hi for something to come): the region goes beside
     * it, never over it. */
    if (s->avoid_hi > s->avoid_lo && g0 < s->avoid_hi && g1 > s->avoid_lo) {
        if (g0 < s->avoid_lo) gap(s, g0, s->avoid_lo);
        if (g1 > s->avoid_hi) gap(s, s->avoid_hi, g1);
        return;
    }
    uintptr_t tlo = s->lo & ~(uintptr_t)(s->align - 1), thi = (s->hi + s->align - 1) & ~(uintptr_t)(s->align - 1);
    if (thi > tlo && g0 < thi && g1 > tlo) {
        if (g0 < tlo) gap(s, g0, tlo);
        if (g1 > thi) gap(s, thi, g1);
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

static void gap_cb(void *ctx, uintptr_t g0, uintptr_t g1) { gap(ctx, g0, g1); }

int vmc__place_near(size_t size, size_t align, uintptr_t lo, uintptr_t hi,
                    uintptr_t avoid_lo, uintptr_t avoid_hi, uintptr_t *out)
{
    place_state_t s = {.size = size, .align = align, .lo = lo, .hi = hi,
                       .avoid_lo = avoid_lo, .avoid_hi = avoid_hi, .floor = ADDR_FLOOR};
    uintptr_t wlo, whi;
    vmc__reach_window(lo, hi, &wlo, &whi);
    if (wlo < ADDR_FLOOR) s.floor = vmc__os_min_addr();
    int r = vmc__os_free_gaps(gap_cb, &s);
    if (r) return r;
    if (!s.found) return -ENOSPC;
    *out = s.best;
    return 0;
}
