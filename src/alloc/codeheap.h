/* The code heap: small and large allocations inside the regions.
 *
 * Small sizes (up to 8 KiB) come from 64 KiB slabs of one size class, carved
 * out of 1 MiB chunks that the block layer hands out and that are committed
 * whole (so adjacent chunks share one kernel VMA).  Each thread has a cache
 * that owns slabs: allocating and freeing there takes no lock and no system
 * call.  A free from another thread goes onto the slab's lock-free remote
 * list, which the owner collects when it runs dry.  Larger sizes take their
 * own run of blocks.
 *
 * Metadata (free lists, the allocated bitmap) lives outside the regions, so
 * code pages never hold allocator pointers and a stray write into generated
 * code cannot corrupt the heap.
 */
#ifndef VMC_CODEHEAP_H
#define VMC_CODEHEAP_H
#include "vmcode.h"
#include "alloc/space.h"

typedef struct vmc_codeheap vmc_codeheap_t;

/* No system call: the slab table is mapped with the first chunk. */
int  vmc__codeheap_init(vmc_space_t *v);
void vmc__codeheap_fini(vmc_space_t *v);

/* Live small-allocation totals, summed over thread caches. */
typedef struct vmc_heap_counts {
    size_t allocations;             /* live allocations (small + large)   */
    size_t live_bytes[4];           /* per kind, rounded to class size    */
} vmc_heap_counts_t;
void vmc__codeheap_counts(vmc_space_t *v, vmc_heap_counts_t *out);

/* The largest request region ri (0 code, 1 heap) can take now: its largest
 * free run, counting the wholly free chunks the heap keeps committed for
 * reuse (it gives them back before any take would fail). */
size_t vmc__codeheap_largest_free(vmc_space_t *v, int ri);
/* The starts of those kept chunks (both regions), at most max of them. */
size_t vmc__codeheap_kept(vmc_space_t *v, uintptr_t *starts, size_t max);

/* fork: hold the heap's lock across fork() (see api.c). */
void vmc__codeheap_lock(vmc_space_t *v);
/* In a forked child (locks held): the caches of threads that do not exist
 * there go idle. */
void vmc__codeheap_fork_child(vmc_space_t *v);
void vmc__codeheap_unlock(vmc_space_t *v);

/* The kind of allocated memory at x (0 if none, or not ours). */
int vmc__codeheap_kind_at(vmc_space_t *v, uintptr_t x);

/* vmc_alloc, vmc_alloc_reaching, vmc_free, vmc_writable, vmc_executable
 * (vmcode.h), on a space: a NULL space fails as a NULL handle does. */
int   vmc__alloc(vmc_space_t *v, size_t size, int kind, vmc_span_t *out);
int   vmc__alloc_reaching(vmc_space_t *v, size_t size, int kind, uintptr_t lo, uintptr_t hi,
                          vmc_span_t *out);
int   vmc__free(vmc_space_t *v, void *p);
void *vmc__writable(vmc_space_t *v, const void *x);
void *vmc__executable(vmc_space_t *v, const void *w);
#endif
