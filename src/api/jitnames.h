/* Names for generated code (jitnames.c): gdb's JIT interface, perf maps. */
#ifndef VMC_JITNAMES_H
#define VMC_JITNAMES_H
#include "vmcode.h"

#define VMC_NAME_BATCH 1024      /* names per object handed to gdb          */
#define VMC_NAME_MAX   1024      /* bytes in a name, with its NUL            */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vmc_names;

/* jitdump.c: perf's jit-PID.dump file (the -jitdump option). */
typedef struct vmc_jitdump {
    int fd;                      /* /tmp/jit-PID.dump, or -1                */
    pid_t pid;                   /* the process that opened it              */
    void *marker;                /* its executable mapping, for perf        */
    uint64_t index;              /* records written                         */
} vmc_jitdump_t;
void vmc__jitdump_init(vmc_jitdump_t *d);
/* Open (or, in a forked child, reopen) the file; *fresh: it was just
 * created, so every name so far is to be written again. */
int  vmc__jitdump_open(vmc_jitdump_t *d, int *fresh);
/* One JIT_CODE_LOAD record: the name and a copy of the code at addr, or
 * zeros when !readable. */
int  vmc__jitdump_record(vmc_jitdump_t *d, uintptr_t addr, size_t size, const char *name, int readable);
void vmc__jitdump_close(vmc_jitdump_t *d);
/* Take back everything the handle registered (vmc_close). */
void vmc__names_close(vmc_t *v);
#endif
