/* The space: one handle's two regions and everything that hands out pieces
 * of them (block layers, code heap, stubs, file mappings).  The layers above
 * (the loaders, the API) hold one; nothing in this layer knows the handle.
 */
#ifndef VMC_SPACE_H
#define VMC_SPACE_H
#include "vmcode.h"
#include "region/region.h"
#include "alloc/blocks.h"
#include "alloc/stub.h"
#include <pthread.h>
#include <stdatomic.h>

struct vmc_codeheap;

typedef struct vmc_space {
    vmc_region_t code;           /* the reachable region                    */
    vmc_region_t heap;           /* unreachable data; size 0 = none         */
    vmc_place_t place;           /* how the code region was placed          */
    vmc_blocks_t *code_blocks;   /* who owns which blocks of `code`         */
    vmc_blocks_t *heap_blocks;   /* ... of `heap`; NULL when there is none  */
    struct vmc_codeheap *ch;     /* vmc_alloc and friends                   */
    vmc_stubs_t stubs;           /* far-target stubs                        */
    /* Serialises what maps files into the space (library loads and unloads,
     * vmc_map_file), re-entrant for the thread holding it: a library
     * constructor may load a library or map a file. */
    pthread_mutex_t lock;
    atomic_ulong lock_owner;     /* the thread holding `lock`, or 0         */
    int lock_depth;              /* that thread's nesting                   */
} vmc_space_t;

/* The block layer of one of the space's regions. */
static inline vmc_blocks_t *vmc__blocks_of(vmc_space_t *s, vmc_region_t *r)
{
    return r == &s->heap ? s->heap_blocks : s->code_blocks;
}

/* The space's mapping lock, taken again by the thread that holds it without
 * deadlock.  Not a recursive mutex: fork's handlers (api.c) unlock it in the
 * child, which a recursive mutex owned by the parent's thread refuses. */
void vmc__space_lock_init(vmc_space_t *s);
void vmc__space_lock(vmc_space_t *s);
void vmc__space_unlock(vmc_space_t *s);

/* ---- mapfile.c: plain files mapped into a region ---------------------------- */
int vmc__map_file(vmc_space_t *s, int fd, uint64_t offset, size_t size, int prot, int flags, void **out);
int vmc__map_handle(vmc_space_t *s, void *handle, uint64_t offset, size_t size, int prot, int flags,
                    void **out);
int vmc__unmap_file(vmc_space_t *s, void *addr, size_t size);
#endif
