/* Names for generated code (jitnames.c): gdb's JIT interface, perf maps. */
#ifndef VMC_JITNAMES_H
#define VMC_JITNAMES_H
#include "vmcode.h"

#define VMC_NAME_BATCH 1024      /* names per object handed to gdb          */
#define VMC_NAME_MAX   1024      /* bytes in a name, with its NUL            */

struct vmc_names;
/* Take back everything the handle registered (vmc_close). */
void vmc__names_close(vmc_t *v);
#endif
