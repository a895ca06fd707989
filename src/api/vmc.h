/* The handle: what one vmc_open owns. */
#ifndef VMC_VMC_H
#define VMC_VMC_H
#include "vmcode.h"
#include "alloc/space.h"
#include "alloc/codeheap.h"
#include "lib/libs.h"
#include <pthread.h>
#include <stdatomic.h>

struct vmc {
    vmc_options_t opt;           /* as given, after defaults and checks     */
    vmc_space_t sp;              /* the regions and what hands them out     */
    struct vmc *next;            /* all open handles (api.c, for fork)      */
    int exit_done;               /* its libraries finalised at exit (api.c) */
    vmc_loader_t ld;             /* the private libraries                   */
    struct vmc_names *names;     /* vmc_name's objects (jitnames.c), or NULL */
    struct vmc_unwind_table *unwind;   /* vmc_unwind_add's tables (unwind.c)   */
    pthread_mutex_t unwind_lock;       /* guards `unwind`                      */
};

/* unwind.c: hand every table back to the system (vmc_close). */
void vmc__unwind_close(vmc_t *v);
#endif
