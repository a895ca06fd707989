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
 * the steps run again.  Fixed-address attempts use MAP_FIXED_NOREPLACE and
 * check the result: kernels before 4.17 take the flag as a mere hint.
 */
#include "region/region.h"
#include "base/error.h"
#include "os/os.h"
#include "arch/arch.h"
#include "region/wx.h"

#include <errno.h>
#include <string.h>

#define PLACE_ALIGN   ((size_t)64 << 10)
#define BRK_ROOM      ((uintptr_t)128 << 20)   /* left free after the program's data */
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
    r->fd = -1;
    pthread_mutex_init(&r->file_lock, NULL);
}

static void region_set(vmc_region_t *r, uintptr_t base, size_t size)
{
    r->base = r->wbase = base;
    r->size = size;
    vmc__os_hold(base, base + size);
}

/* Reserve `want` bytes with `attempt`, halving down to 64 MiB with
 * allow_smaller.  The message names the region, the size and why. */
typedef int (*attempt_fn)(size_t size, void *ctx, uintptr_t *base);

static int reserve_halving(vmc_region_t *r, size_t want, int allow_smaller, attempt_fn attempt,
                           void *ctx)
{
    size_t page = vmc__os_granularity();
    size_t floor = want < VMC_MIN_SIZE ? want : VMC_MIN_SIZE;
    int err = -ENOMEM;
    for (size_t size = want; size >= floor; size = (size / 2) & ~(page - 1)) {
        uintptr_t base;
        err = attempt(size, ctx, &base);
        if (!err) {
            region_set(r, base, size);
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
    int step;
    int near_failed;         /* step 1 was tried, for the last size, and failed */
} code_ctx_t;

static int attempt_code(size_t size, void *arg, uintptr_t *base)
{
    code_ctx_t *c = arg;
    int err;
    c->near_failed = 0;
    if (c->o->near_app && c->hi > c->lo) {
        if ((err = try_near(size, c->lo, c->hi, c->avoid_lo, c->avoid_hi, base)) == 0) {
            c->step = VMC_PLACED_NEAR_APP;
            return 0;
        }
        c->near_failed = 1;
    }
    if ((err = try_base(size, c->o->vm_base, c->o->vm_max_offset, base)) == 0)
        c->step = VMC_PLACED_VM_BASE;
    else if ((err = vmc__os_reserve(0, size, base)) == 0)
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
        c.avoid_lo = img_hi;
        c.avoid_hi = (brk_now > img_hi && brk_now - img_hi < ((uintptr_t)1 << 40) ? brk_now : img_hi) +
                     BRK_ROOM;
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
        place->reaching = c.hi > c.lo ? vmc__reach_bytes(r->base, r->size, c.lo, c.hi) : r->size;
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

static int attempt_anywhere(size_t size, void *ctx, uintptr_t *base)
{
    (void)ctx;
    return vmc__os_reserve(0, size, base);
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
        vmc__os_unhold(r->base, r->base + r->size);
        vmc__os_release(r->base, r->size);
    }
    pthread_mutex_destroy(&r->file_lock);
    r->size = 0;
}

/* ---- commit ---------------------------------------------------------------- */

int vmc__region_commit(vmc_region_t *r, uintptr_t addr, size_t len, int kind)
{
    if (!vmc__region_contains(r, addr, len))
        return vmc__fail(-EINVAL, "%s region: commit of %#lx+%#zx is outside it",
                         r->name, (unsigned long)addr, len);
    if (kind == VMC_CODE && r->wx) return vmc__wx_commit(r, addr, len);
    int prot = VMC_OS_READ | VMC_OS_WRITE | (kind == VMC_CODE ? VMC_OS_EXEC : 0);
    int e = vmc__os_commit(addr, len, prot);
    if (e)
        return vmc__fail(e, "%s region: cannot commit %#zx bytes at %#lx: %s: %s%s", r->name,
                         len, (unsigned long)addr, vmc__os_commit_call(), strerror(-e),
                         vmc__os_enomem_hint(e));
    return 0;
}

int vmc__region_decommit(vmc_region_t *r, uintptr_t addr, size_t len)
{
    if (!vmc__region_contains(r, addr, len))
        return vmc__fail(-EINVAL, "%s region: decommit of %#lx+%#zx is outside it",
                         r->name, (unsigned long)addr, len);
    /* Under W^X both views and the file change together, under the file
     * lock, so that a fork never sees one half done (see wx.c). */
    if (r->wx) return vmc__wx_decommit(r, addr, len);
    return vmc__region_rereserve(r, addr, len);
}
