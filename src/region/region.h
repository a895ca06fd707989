/* Regions: the reservations (code and heap), their placement, and the
 * commit/decommit primitives every layer above uses.
 *
 * A region is one PROT_NONE, MAP_NORESERVE reservation.  Nothing inside it is
 * ever unmapped while it lives: decommitting maps a fresh PROT_NONE
 * reservation over the range with MAP_FIXED, which is atomic (no window in
 * which another thread's mmap could land in a hole).  Under W^X the code
 * region's code pages are an OS-layer W^X pair, mapped twice (see wx.c).
 */
#ifndef VMC_REGION_H
#define VMC_REGION_H
#include "vmcode.h"
#include <pthread.h>

typedef struct vmc_region {
    const char *name;        /* "code" or "heap", for messages             */
    uintptr_t base;          /* the reservation (the executable view)      */
    size_t size;             /* bytes reserved; 0 = no region              */
    uintptr_t wbase;         /* writable view of VMC_CODE pages (W^X), or base */
    int wx;                  /* dual mapped                                */
    struct vmc_os_dual *dual;  /* the OS layer's W^X pair (wx.c), or NULL  */
    /* [hole_lo, hole_hi) inside [base, base+size), or 0, 0: not ours.  A
     * -no-pie program's brk heap and the room it grows into lie there; the
     * region is then two reservations, one on either side, and the block
     * layer keeps the hole taken (owner "brk heap") so nothing lands in it.
     * Under W^X the pair spans it (its writable view one reservation). */
    uintptr_t hole_lo, hole_hi;
} vmc_region_t;

/* Where the code region went and why (filled by vmc__region_open_code). */
typedef struct vmc_place {
    int step;                /* enum vmc_placement                         */
    uintptr_t reach_lo, reach_hi;
    size_t reaching;         /* bytes of the region that reach the target
                                (the hole, being not ours, not counted)   */
    int near_failed;         /* near_app was tried and found no placement
                                from which any byte reaches the target     */
} vmc_place_t;

/* The main program's loaded image, [lo, hi), found with dl_iterate_phdr. */
int vmc__main_image(uintptr_t *lo, uintptr_t *hi);

int  vmc__region_open_code(vmc_region_t *r, const vmc_options_t *o, vmc_place_t *place);
int  vmc__region_open_heap(vmc_region_t *r, const vmc_options_t *o);
void vmc__region_close(vmc_region_t *r);

/* Make [addr, addr+len) usable as `kind` (enum vmc_kind).  Page aligned,
 * inside the region, currently reserved.  Nothing changes on failure. */
int vmc__region_commit(vmc_region_t *r, uintptr_t addr, size_t len, int kind);
/* Put a PROT_NONE reservation back over [addr, addr+len) (both views). */
int vmc__region_decommit(vmc_region_t *r, uintptr_t addr, size_t len);
/* The executable view only: map a fresh PROT_NONE reservation over the range
 * with MAP_FIXED (atomic: never a hole).  The message names the region. */
int vmc__region_rereserve(vmc_region_t *r, uintptr_t addr, size_t len);   /* reserve.c */

static inline int vmc__region_contains(const vmc_region_t *r, uintptr_t a, size_t len)
{
    return r->size && a >= r->base && len <= r->size && a - r->base <= r->size - len;
}


/* Bytes of [a, a+size) that reach [lo, hi), less those in r's hole. */
size_t vmc__region_reaching(const vmc_region_t *r, uintptr_t lo, uintptr_t hi);

/* Placement (place.c): the base in a free gap of the address space that
 * makes the most of [a, a+size) reach [lo, hi), avoiding `avoid_lo..avoid_hi`
 * (where brk grows).  -ENOSPC if no gap fits. */
int vmc__place_near(size_t size, size_t align, uintptr_t lo, uintptr_t hi,
                    uintptr_t avoid_lo, uintptr_t avoid_hi, uintptr_t *out);
#endif
