/* Regions: reserving, placing, committing and releasing (see region.h).
 *
 * The code region is placed in three steps, the first that works wins:
 *   1. near_app: in the free gap that makes the most of the region reach the
 *      target range (default: the main program's image), never in the space
 *      after the program's data where brk grows;
 *   2. vm_base (or, when 0, a random base in the middle of the address space)
 *      plus a random page-aligned jitter in [0, vm_max_offset);
 *   3. wherever the kernel puts it.
 * With allow_smaller, if no step works the size is halved (floor 64 MiB) and
 * the steps run again.
 *
 * A -no-pie program (image at 0x400000) is the one case where step 1 may give
 * the region a hole.  The kernel starts brk anywhere up to 1 GiB after the
 * program's data (x86-64 ASLR), so a region that must begin after brk and its
 * room reaches the image with only 45-92 % of its bytes.  Instead the region
 * spans from right after the image, as two reservations around the brk heap
 * and its room: every byte of it that is ours reaches the image (about 93 %
 * of a 2 GiB span).  The hole is never ours: the block layer keeps it taken,
 * the hold list does not cover it, nothing is ever mapped there.  Under W^X
 * the pair is told of the hole (wx.c, os.h): its executable view is the two
 * pieces, its writable view one reservation at the same offset from both,
 * and it refuses any range that meets the hole.  Fixed-address attempts use
 * MAP_FIXED_NOREPLACE and check the result: kernels before 4.17 take the
 * flag as a mere hint.
 */
#include "region/region.h"
#include "base/attrs.h"
#include "base/error.h"
#include "os/os.h"
#include "arch/arch.h"
#include "region/wx.h"

#include <errno.h>
#include <string.h>
#include <inttypes.h>

#define PLACE_ALIGN   ((size_t)64 << 10)
#define RANDOM_LO     ((uintptr_t)1 << 44)     /* step 2 with vm_base 0: somewhere in */
#define RANDOM_HI     ((uintptr_t)3 << 45)     /*   the middle of the address space   */

/* ---- the main program's image ------------------------------------------ */

int vmc__main_image(uintptr_t *lo, uintptr_t *hi) { return vmc__os_main_image(lo, hi); }

/* ---- reservations ---------------------------------------------------------- */

static int random_page_offset(size_t range, uintptr_t *out)
{
    size_t page = vmc__os_granularity();   /* the unit a reservation may start at */
    uint64_t rnd;
    *out = 0;
    if (range < page) return 0;
    int r = vmc__os_getrandom(&rnd, sizeof rnd);
    if (r) return r;
    *out = (uintptr_t)(rnd % (range / page)) * page;
    return 0;
}

/* Step 1: next to the target range.  Right below it is the best place there
 * is (all but the target's own size and the alignment slack reaches it), so
 * that is tried first, without reading /proc/self/maps; only if it is taken
 * are the free gaps scored. */
static int try_near(size_t size, uintptr_t lo, uintptr_t hi, uintptr_t avoid_lo,
                    uintptr_t avoid_hi, uintptr_t *out)
{
    int r = -ENOSPC;
    if (lo > size + ((uintptr_t)1 << 32)) {
        uintptr_t below = (lo - size) & ~(uintptr_t)(PLACE_ALIGN - 1);
        int in_brk_room = below < avoid_hi && below + size > avoid_lo;
        if (!in_brk_room && vmc__reach_bytes(below, size, lo, hi) > 0 &&
            (r = vmc__os_reserve(below, size, out)) == 0)
            return 0;
        if (r != -EEXIST && r != -ENOSPC) return r;
    }
    for (int attempt = 0; attempt < 4; attempt++) {
        uintptr_t at;
        r = vmc__place_near(size, PLACE_ALIGN, lo, hi, avoid_lo, avoid_hi, &at);
        if (r) return r;
        if (vmc__reach_bytes(at, size, lo, hi) == 0) return -ENOSPC;
        r = vmc__os_reserve(at, size, out);
        if (r != -EEXIST) return r;  /* EEXIST: raced with another mapping, look again */
    }
    return r;
}

/* Step 2: vm_base (or a random base) plus jitter. */
static int try_base(size_t size, uintptr_t vm_base, size_t max_offset, uintptr_t *out)
{
    int r = -ENOSPC;
    for (int attempt = 0; attempt < 4; attempt++) {
        uintptr_t base = vm_base, jitter;
        if (!base) {
            r = random_page_offset(RANDOM_HI - RANDOM_LO, &base);
            if (r) return r;
            base = (RANDOM_LO + base) & ~(uintptr_t)(PLACE_ALIGN - 1);
        }
        r = random_page_offset(max_offset, &jitter);
        if (r) return r;
        r = vmc__os_reserve(base + jitter, size, out);
        if (r != -EEXIST) return r;
    }
    return r;
}

static const char *size_text(size_t n, char *buf, size_t len)
{
    static const char unit[] = "KMGT";
    int u = -1;
    while (n >= 1024 && n % 1024 == 0 && u < 3) {
        n /= 1024;
        u++;
    }
    if (u < 0) snprintf(buf, len, "%zu", n);
    else snprintf(buf, len, "%zu%c", n, unit[u]);
    return buf;
}

static void region_init(vmc_region_t *r, const char *name)
{
    memset(r, 0, sizeof *r);
    r->name = name;
}

/* What an attempt reserved: [base, base+size), less the hole if any. */
typedef struct resv {
    uintptr_t base, hole_lo, hole_hi;
} resv_t;

static void region_set(vmc_region_t *r, const resv_t *v, size_t size)
{
    r->base = r->wbase = v->base;
    r->size = size;
    r->hole_lo = v->hole_lo;
    r->hole_hi = v->hole_hi;
    if (r->hole_hi > r->hole_lo) {
        vmc__os_hold(r->base, r->hole_lo);
        vmc__os_hold(r->hole_hi, r->base + size);
    } else {
        vmc__os_hold(r->base, r->base + size);
    }
}

size_t vmc__region_reaching(const vmc_region_t *r, uintptr_t lo, uintptr_t hi)
{
    size_t n = vmc__reach_bytes(r->base, r->size, lo, hi);
    if (r->hole_hi > r->hole_lo) n -= vmc__reach_bytes(r->hole_lo, r->hole_hi - r->hole_lo, lo, hi);
    return n;
}

/* Reserve `want` bytes with `attempt`, halving down to 64 MiB with
 * allow_smaller.  The message names the region, the size and why. */
typedef int (*attempt_fn)(size_t size, void *ctx, resv_t *out);

static int reserve_halving(vmc_region_t *r, size_t want, int allow_smaller, attempt_fn attempt,
                           void *ctx)
{
    size_t page = vmc__os_granularity();
    size_t floor = want < VMC_MIN_SIZE ? want : VMC_MIN_SIZE;
    int err = -ENOMEM;
    /* Options are parsed in pages; Windows reserves in 64 KiB granules. */
    if (want % page) {
        char a[32], g[32];
        return vmc__fail(-EINVAL, "%s region: cannot reserve %s: the size must be a multiple of the "
                         "%s allocation granularity (Windows reserves address space in 64 KiB units)",
                         r->name, size_text(want, a, sizeof a), size_text(page, g, sizeof g));
    }
    for (size_t size = want; size >= floor; size = (size / 2) & ~(page - 1)) {
        resv_t v = {0, 0, 0};
        err = attempt(size, ctx, &v);
        if (!err) {
            region_set(r, &v, size);
            return 0;
        }
        if (!allow_smaller || size / 2 < floor) break;
    }
    char a[32], b[32];
    int halved = allow_smaller && want > floor;
    return vmc__fail(err, "%s region: cannot reserve %s%s%s%s: %s", r->name,
                     size_text(want, a, sizeof a), halved ? " (nor any half of it down to " : "",
                     halved ? size_text(floor, b, sizeof b) : "", halved ? ")" : "",
                     strerror(-err));
}

typedef struct code_ctx {
    const vmc_options_t *o;
    uintptr_t lo, hi, avoid_lo, avoid_hi;
    uintptr_t brk;           /* the program break, when it follows the image */
    int step;
    int near_failed;         /* step 1 was tried, for the last size, and failed */
} code_ctx_t;

/* The first mapping at or after `a` (which must be free), for where the brk
 * heap begins: the end of the free gap holding `a`. */
typedef struct gap_find {
    uintptr_t a, end;
} gap_find_t;

static void gap_end_cb(void *ctx, uintptr_t g0, uintptr_t g1)
{
    gap_find_t *f = ctx;
    if (g0 <= f->a && f->a < g1) f->end = g1;
}

/* Step 1 for a -no-pie program: the region from right after the image, with
 * the brk heap and its room as a hole (see the top of this file).  Taken only
 * when it reaches more than the best place without a hole; -ENOSPC otherwise,
 * -EEXIST when something is in the way of either piece. */
static int try_hole(size_t size, const code_ctx_t *c, resv_t *out)
{
    uintptr_t wlo, whi;
    vmc__reach_window(c->lo, c->hi, &wlo, &whi);
    if (!c->brk || wlo >= ((uintptr_t)1 << 32)) return -ENOSPC;
    uintptr_t base = (c->avoid_lo + PLACE_ALIGN - 1) & ~(uintptr_t)(PLACE_ALIGN - 1);
    uintptr_t min = vmc__os_min_addr();
    if (base < min) base = (min + PLACE_ALIGN - 1) & ~(uintptr_t)(PLACE_ALIGN - 1);
    if (base >= whi) return -ENOSPC;   /* the image is not the target */
    gap_find_t f = {base, 0};
    int r = vmc__os_free_gaps(gap_end_cb, &f);
    if (r) return r;
    uintptr_t heap = f.end < c->brk ? f.end : c->brk;
    uintptr_t hole_lo = heap & ~(uintptr_t)(PLACE_ALIGN - 1);
    uintptr_t hole_hi = (c->avoid_hi + PLACE_ALIGN - 1) & ~(uintptr_t)(PLACE_ALIGN - 1);
    if (!f.end || hole_lo <= base || base + size <= hole_hi)
        return -ENOSPC;  /* no room before the heap, or none after its room */
    vmc_region_t with = {.base = base, .size = size, .hole_lo = hole_lo, .hole_hi = hole_hi};
    size_t reach = vmc__region_reaching(&with, c->lo, c->hi);
    uintptr_t at;
    if (vmc__place_near(size, PLACE_ALIGN, c->lo, c->hi, c->avoid_lo, c->avoid_hi, &at) == 0 &&
        vmc__reach_bytes(at, size, c->lo, c->hi) >= reach)
        return -ENOSPC;
    uintptr_t got;
    if ((r = vmc__os_reserve(base, hole_lo - base, &got)) != 0) return r;
    if ((r = vmc__os_reserve(hole_hi, base + size - hole_hi, &got)) != 0) {
        vmc__os_release(base, hole_lo - base);
        return r;
    }
    *out = (resv_t){base, hole_lo, hole_hi};
    return 0;
}

static int attempt_code(size_t size, void *arg, resv_t *out)
{
    code_ctx_t *c = arg;
    int err;
    c->near_failed = 0;
    if (c->o->near_app && c->hi > c->lo) {
        /* Like try_near's, its failures (maps unreadable, the space taken)
         * leave the next way to place the region to try. */
        if (try_hole(size, c, out) == 0) {
            c->step = VMC_PLACED_NEAR_APP;
            return 0;
        }
        if ((err = try_near(size, c->lo, c->hi, c->avoid_lo, c->avoid_hi, &out->base)) == 0) {
            c->step = VMC_PLACED_NEAR_APP;
            return 0;
        }
        c->near_failed = 1;
    }
    if ((err = try_base(size, c->o->vm_base, c->o->vm_max_offset, &out->base)) == 0)
        c->step = VMC_PLACED_VM_BASE;
    else if ((err = vmc__os_reserve(0, size, &out->base)) == 0)
        c->step = VMC_PLACED_ANYWHERE;
    return err;
}

int vmc__region_open_code(vmc_region_t *r, const vmc_options_t *o, vmc_place_t *place)
{
    region_init(r, "code");
    memset(place, 0, sizeof *place);
    code_ctx_t c = {.o = o, .lo = o->reach_lo, .hi = o->reach_hi};
    uintptr_t img_lo = 0, img_hi = 0;
    int have_image = vmc__main_image(&img_lo, &img_hi) == 0;
    if (!c.lo && !c.hi && have_image) {
        c.lo = img_lo;
        c.hi = img_hi;
    }
    uintptr_t brk_now = vmc__os_program_break();
    if (have_image && brk_now) {  /* brk grows up from the end of the program's data */
        int follows = brk_now > img_hi && brk_now - img_hi < ((uintptr_t)1 << 40);
        c.avoid_lo = img_hi;
        c.avoid_hi = (follows ? brk_now : img_hi) + o->brk_room;
        c.brk = follows ? brk_now : 0;
    }
    /* Under W^X the writable view needs as much address space again: when it
     * does not fit (RLIMIT_AS), halving goes on for both. */
    size_t want = o->vm_size, floor = want < VMC_MIN_SIZE ? want : VMC_MIN_SIZE;
    for (;;) {
        int err = reserve_halving(r, want, o->allow_smaller, attempt_code, &c);
        if (err) return err;
        place->step = c.step;
        place->near_failed = c.near_failed;
        place->reach_lo = c.lo;
        place->reach_hi = c.hi;
        place->reaching = c.hi > c.lo ? vmc__region_reaching(r, c.lo, c.hi)
                                      : r->size - (r->hole_hi - r->hole_lo);
        if (!o->w_xor_x) return 0;
        err = vmc__wx_open(r);
        if (!err) return 0;
        size_t got = r->size;
        vmc__region_close(r);
        if (err != -ENOMEM || !o->allow_smaller || got / 2 < floor) return err;
        want = (got / 2) & ~(vmc__os_granularity() - 1);
        region_init(r, "code");
    }
}

static int attempt_anywhere(size_t size, void *ctx, resv_t *out)
{
    (void)ctx;
    return vmc__os_reserve(0, size, &out->base);
}

int vmc__region_open_heap(vmc_region_t *r, const vmc_options_t *o)
{
    region_init(r, "heap");
    if (o->vmheap_size == 0) return 0;
    return reserve_halving(r, o->vmheap_size, o->allow_smaller, attempt_anywhere, NULL);
}

void vmc__region_close(vmc_region_t *r)
{
    if (r->size) {
        if (r->wx) vmc__wx_close(r);
        if (r->hole_hi > r->hole_lo) {
            vmc__os_unhold(r->base, r->hole_lo);
            vmc__os_unhold(r->hole_hi, r->base + r->size);
            vmc__os_release(r->base, r->hole_lo - r->base);
            vmc__os_release(r->hole_hi, r->base + r->size - r->hole_hi);
        } else {
            vmc__os_unhold(r->base, r->base + r->size);
            vmc__os_release(r->base, r->size);
        }
    }
    r->size = 0;
}

/* ---- commit ---------------------------------------------------------------- */

int vmc__region_commit(vmc_region_t *r, uintptr_t addr, size_t len, int kind)
{
    if (!vmc__region_contains(r, addr, len))
        return vmc__fail(-EINVAL, "%s region: commit of %#" PRIxPTR "+%#zx is outside it",
                         r->name, (uintptr_t)addr, len);
    if (kind == VMC_CODE && r->wx) return vmc__wx_commit(r, addr, len);
    int prot = VMC_OS_READ | VMC_OS_WRITE | (kind == VMC_CODE ? VMC_OS_EXEC : 0);
    int e = vmc__os_commit(addr, len, prot);
    if (e)
        return vmc__fail(e, "%s region: cannot commit %#zx bytes at %#" PRIxPTR ": %s: %s%s", r->name,
                         len, (uintptr_t)addr, vmc__os_commit_call(), strerror(-e),
                         vmc__os_enomem_hint(e));
    return 0;
}

VMC_LOAD_PATH int vmc__region_decommit(vmc_region_t *r, uintptr_t addr, size_t len)
{
    if (!vmc__region_contains(r, addr, len))
        return vmc__fail(-EINVAL, "%s region: decommit of %#" PRIxPTR "+%#zx is outside it",
                         r->name, (uintptr_t)addr, len);
    /* Under W^X both views change together, under the pair's lock, so that
     * a fork never sees one half done (see wx.c). */
    if (r->wx) return vmc__wx_decommit(r, addr, len);
    return vmc__region_rereserve(r, addr, len);
}
