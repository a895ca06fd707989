/* The handle: what one vmc_open owns. */
#ifndef VMC_VMC_H
#define VMC_VMC_H
#include "vmcode.h"
#include "region/region.h"
#include "alloc/blocks.h"
#include "alloc/codeheap.h"
#include "alloc/stub.h"
#include <pthread.h>
#include <stdatomic.h>

struct vmc {
    vmc_options_t opt;           /* as given, after defaults and checks     */
    vmc_region_t code;           /* the reachable region                    */
    vmc_region_t heap;           /* unreachable data; size 0 = none         */
    vmc_place_t place;           /* how the code region was placed          */
    vmc_blocks_t *code_blocks;   /* who owns which blocks of `code`         */
    vmc_blocks_t *heap_blocks;   /* ... of `heap`; NULL when there is none  */
    vmc_codeheap_t *ch;          /* vmc_alloc and friends                   */
    vmc_stubs_t stubs;           /* far-target stubs                        */
    pthread_mutex_t lock;        /* libraries and mapped-file lists         */
    struct vmc *next;            /* all open handles (api.c, for fork)      */
    atomic_ulong lib_owner;      /* the thread inside the loader, or 0: a
                                    constructor may load (loader.c)         */
    int lib_depth;               /* that thread's nesting of loader calls   */
    struct vmc_lib *libs;        /* privately loaded libraries, mapping order */
    struct vmc_lib *libs_tail;
    size_t nlibs;
    unsigned long lib_seq;       /* relocations and constructors finished so
                                    far: the order of init and fini         */
};
/* The block layer of one of the handle's regions. */
static inline vmc_blocks_t *vmc__blocks_of(vmc_t *v, vmc_region_t *r)
{
    return r == &v->heap ? v->heap_blocks : v->code_blocks;
}
#endif
