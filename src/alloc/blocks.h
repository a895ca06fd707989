/* The block layer: which blocks (pages) of a region belong to whom.
 *
 * A region is cut into blocks of the OS layer's granularity (the page on
 * Linux, 64 KiB on Windows, where views and placeholders go no finer).  Runs of blocks are taken
 * by an owner (code heap, reachable data, heap data, library image, mapped
 * file, stubs) and given back whole.  Finding a free run costs O(log n): a
 * segment tree over 64-block bitmap words keeps, per node, the longest free
 * run and the free runs touching either end (see blocks.c).
 *
 * Taking a run is bookkeeping only: the range stays a PROT_NONE reservation
 * until its owner commits it (vmc__blocks_commit) or maps a file over it with
 * MAP_FIXED (the loader, the file mapper).  Giving a run back re-reserves it
 * PROT_NONE with MAP_FIXED first; never munmap.
 *
 * Thread-safe: one mutex per region.  None of this is on the code heap's
 * fast path.
 */
#ifndef VMC_BLOCKS_H
#define VMC_BLOCKS_H
#include "region/region.h"
#include <stdio.h>

/* Owners are the public run owners (vmcode.h), so maps need no translation. */
enum vmc_owner {
    VMC_OWNER_FREE = VMC_RUN_FREE,
    VMC_OWNER_CODE = VMC_RUN_CODE_HEAP,     /* code heap chunks (VMC_CODE)   */
    VMC_OWNER_RDATA = VMC_RUN_RDATA_HEAP,   /* code heap chunks (VMC_RDATA)  */
    VMC_OWNER_DATA = VMC_RUN_DATA_HEAP,     /* heap-region chunks (VMC_DATA) */
    VMC_OWNER_LARGE = VMC_RUN_LARGE,        /* one allocation of > 8 KiB     */
    VMC_OWNER_LIBRARY = VMC_RUN_LIBRARY,    /* a privately loaded library    */
    VMC_OWNER_FILE = VMC_RUN_FILE,          /* a vmc_map_file mapping        */
    VMC_OWNER_STUBS = VMC_RUN_STUBS,        /* far-target stubs              */
    VMC_OWNER_BRK = VMC_RUN_BRK_HEAP,       /* not ours: the program's brk heap
                                               inside the span (region.h)   */
    VMC_OWNER_COUNT
};

typedef struct vmc_blocks vmc_blocks_t;

typedef struct vmc_run {
    uintptr_t start;     /* first byte of the run                        */
    size_t len;          /* bytes, a multiple of the block size          */
    int owner;           /* enum vmc_owner                               */
    int kind;            /* enum vmc_kind it was committed as, 0 = not   */
    size_t committed;    /* bytes committed (from the start of the run)  */
    void *tag;           /* the owner's pointer (library, chunk, ...)    */
    const char *name;    /* for maps and dumps (a library's path), or NULL */
    int abandoned;       /* its owner is gone; re-reserving it failed      */
} vmc_run_t;

/* No system call: the map's chunks are mapped when a 17th run is taken
 * (blocks.c: the first 16 are kept in the handle). */
int  vmc__blocks_init(vmc_blocks_t **out, vmc_region_t *r);
void vmc__blocks_fini(vmc_blocks_t *b);

/* Take a run of `len` bytes (rounded up to blocks), its start address a
 * multiple of `align` (a power of two; 0 = one block), entirely inside [lo, hi)
 * (0, 0 = anywhere in the region).  `top` prefers the highest such run,
 * otherwise the lowest.  -ENOSPC, with a message giving the size asked and
 * the largest free run, when nothing fits. */
int vmc__blocks_take(vmc_blocks_t *b, size_t len, size_t align, uintptr_t lo, uintptr_t hi,
                     int top, int owner, void *tag, uintptr_t *out);
/* As vmc__blocks_take (lowest run, anywhere), the start a multiple of `unit`
 * bytes from the region's base: any multiple of the block size, not only a
 * power of two (the Windows slot fallback, whose views replace whole slots
 * counted from the reservation's base). */
int vmc__blocks_take_units(vmc_blocks_t *b, size_t len, size_t unit, int owner, void *tag, uintptr_t *out);
/* Who can give space back before a take fails (the code heap, which keeps
 * whole free chunks committed for reuse).  When no run fits, vmc__blocks_take
 * calls fn(arg), without the map's lock, and if it returns non-zero (it gave
 * something back) searches once more. */
typedef int (*vmc_blocks_reclaim_fn)(void *arg);
void vmc__blocks_set_reclaim(vmc_blocks_t *b, vmc_blocks_reclaim_fn fn, void *arg);
/* As vmc__blocks_take, without asking the reclaimer: for the reclaimer's own
 * takes, made under the lock its reclaiming takes. */
int vmc__blocks_take_noreclaim(vmc_blocks_t *b, size_t len, size_t align, uintptr_t lo,
                               uintptr_t hi, int top, int owner, void *tag, uintptr_t *out);
/* Take exactly [addr, addr+len); -EEXIST if any of it is taken. */
int vmc__blocks_take_at(vmc_blocks_t *b, uintptr_t addr, size_t len, int owner, void *tag);
/* Give back the run starting at `start`: re-reserve it PROT_NONE, then
 * mark it free.  If re-reserving fails the run stays taken. */
int vmc__blocks_give(vmc_blocks_t *b, uintptr_t start);
/* For an owner that goes away (a failed or finished load, a failed file
 * mapping): give the run back; if re-reserving fails, the run is made
 * inaccessible (mprotect PROT_NONE, a call of another kind), kept taken and
 * re-reserved at the next take or give that works, or at close.  Returns
 * the re-reservation's error, if any. */
int vmc__blocks_abandon(vmc_blocks_t *b, uintptr_t start);
/* Commit the first `len` bytes of the run at `start` as `kind`. */
int vmc__blocks_commit(vmc_blocks_t *b, uintptr_t start, size_t len, int kind);
/* Record that the owner mapped `len` bytes of the run at `start` itself
 * (the loader, the file mapper): counted as committed, as `kind`. */
int vmc__blocks_mapped(vmc_blocks_t *b, uintptr_t start, size_t len, int kind);
/* The run containing addr; -ENOENT if addr is free or outside. */
int vmc__blocks_find(vmc_blocks_t *b, uintptr_t addr, vmc_run_t *out);

typedef struct vmc_blocks_usage {
    size_t size, used, committed, largest_free;
    size_t runs[VMC_OWNER_COUNT];     /* runs per owner                   */
    size_t bytes[VMC_OWNER_COUNT];    /* bytes per owner                  */
} vmc_blocks_usage_t;
void vmc__blocks_usage(vmc_blocks_t *b, vmc_blocks_usage_t *out);
/* The largest free run there would be if the taken runs starting at
 * starts[0..n) (at most 16; others are ignored, as are addresses that start no
 * run) were free too. */
size_t vmc__blocks_largest_free_counting(vmc_blocks_t *b, const uintptr_t *starts, size_t n);

/* Visit every taken run in address order (under the lock: cb must not call
 * back into this block layer). */
void vmc__blocks_each(vmc_blocks_t *b, void (*cb)(const vmc_run_t *run, void *arg), void *arg);
const char *vmc__owner_name(int owner);
/* fork: hold the map's lock across fork() (see api.c). */
void vmc__blocks_lock(vmc_blocks_t *b);
void vmc__blocks_unlock(vmc_blocks_t *b);
/* The mapping holding the map's chunks (NULL until a 17th run is taken): for
 * tests counting the pages a take touches. */
void vmc__blocks_meta(vmc_blocks_t *b, void **start, size_t *len);
/* Give the run at `start` a name for maps and dumps (a library's path); the
 * string must live as long as the run. */
int vmc__blocks_set_name(vmc_blocks_t *b, uintptr_t start, const char *name);
#endif
