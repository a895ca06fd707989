/* The registry of privately loaded libraries that debuggers read.
 *
 * The system loader tells gdb about a dlopen'ed library through r_debug and
 * a breakpoint on _dl_debug_state; a private library is in neither (gdb 13
 * ignores a second r_debug, and glibc's own list must not be touched), so
 * vmcode keeps its own list in a fixed, documented layout and calls an
 * empty, never-inlined function after every change.  tools/vmcode-gdb.py
 * stops there (silently, continuing at once), reads the list, and runs
 * add-symbol-file FILE -o BIAS or remove-symbol-file for what changed;
 * when it is loaded into a gdb attached to a running process it reads the
 * list once.  docs/loader.md, "Debugging and profiling", describes it.
 *
 * Layout (version 1; 64-bit, native byte order; a reader checks `version`
 * and `entry_size` and reads no further than entry_size of an entry):
 *
 *     vmc_debug_registry:  u32 version, u32 entry_size, u64 generation,
 *                          u64 count, vmc_debug_lib *first
 *     vmc_debug_lib:       vmc_debug_lib *next, *prev, const char *path,
 *                          u64 bias, u64 start, u64 size, u64 text,
 *                          u32 flags, u32 reserved
 *
 * The list holds every library that has been mapped and relocated (its
 * constructors not yet run, so breakpoints in them hit) and is not yet
 * being given back (after its destructors ran).  `generation` grows by one
 * with every change; it is written, like the list, only under the registry
 * lock, which is held while the hook runs, so a debugger stopped there sees
 * a consistent list.  A process with several handles has one list.
 */
#ifndef VMC_DEBUG_REGISTRY_H
#define VMC_DEBUG_REGISTRY_H

#include <stdint.h>

#define VMC_DEBUG_REGISTRY_VERSION 1

enum {
    VMC_DEBUG_FROM_MEMORY = 1,   /* loaded by vmc_lib_load_mem: no file to read */
};

typedef struct vmc_debug_lib {
    struct vmc_debug_lib *next, *prev;
    const char *path;            /* absolute when it could be made so          */
    uint64_t bias;               /* add to the file's addresses (the -o of
                                    add-symbol-file)                           */
    uint64_t start, size;        /* the piece of the code region it occupies   */
    uint64_t text;               /* the start of its first executable segment,
                                    an address inside it (remove-symbol-file -a) */
    uint32_t flags;              /* VMC_DEBUG_*                                */
    uint32_t reserved;
} vmc_debug_lib_t;

typedef struct vmc_debug_registry {
    uint32_t version;            /* VMC_DEBUG_REGISTRY_VERSION                 */
    uint32_t entry_size;         /* sizeof(vmc_debug_lib_t)                    */
    uint64_t generation;         /* changes so far                             */
    uint64_t count;              /* entries in the list                        */
    vmc_debug_lib_t *first;      /* in the order they were added               */
} vmc_debug_registry_t;

/* Add e (filled by the caller, path owned by the caller until removal),
 * then call the hook.  Remove e if it is in the list, then call the hook. */
void vmc__debug_add(vmc_debug_lib_t *e);
void vmc__debug_remove(vmc_debug_lib_t *e);

/* For tests: entries in the list now. */
uint64_t vmc__debug_count(void);

#endif
