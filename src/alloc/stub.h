/* Far-target stubs: an address inside the code region that jumps anywhere. */
#ifndef VMC_STUB_H
#define VMC_STUB_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vmc_stubs {
    pthread_mutex_t lock;
    uintptr_t *targets;          /* open-addressed table: target ...       */
    uintptr_t *stubs;            /* ... and its stub                       */
    size_t cap, count;
    uintptr_t page_x, page_w;    /* the stub page being filled             */
    size_t page_used;
} vmc_stubs_t;

struct vmc_space;
void vmc__stubs_init(struct vmc_space *v);
void vmc__stubs_fini(struct vmc_space *v);

#include "arch/arch.h"
#define VMC_STUB_SIZE VMC_ARCH_STUB_SIZE
/* vmc_stub (vmcode.h) on a space. */
int vmc__stub(struct vmc_space *v, uintptr_t target, void **x);
#endif
