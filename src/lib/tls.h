/* Thread-local storage of private libraries (tls.c, tlsdesc.c).
 *
 * Every private library with a PT_TLS gets a module: a slot number, the
 * same in every handle and thread, and an id for R_X86_64_DTPMOD64 that is
 * VMC_TLS_MODID_BASE + slot, far above any id glibc hands out (its ids count
 * the modules it has loaded), so vmc__tls_get_addr tells its own from the
 * host's by the number alone.  Each thread has a table of block pointers
 * indexed by slot, filled at its first access to a module (vmc__tls_slow)
 * and read without a lock after that.  A slot may instead stand for a host
 * module (a TLS variable of the host reached by TLSDESC): its entries are the
 * host's blocks, never freed here.
 */
#ifndef VMC_TLS_H
#define VMC_TLS_H

#include "arch/tls.h"

#include <stddef.h>
#include <stdint.h>

#define VMC_TLS_MODID_BASE ((uint64_t)0x564d4300 << 32)   /* "VMC\0" above glibc's ids */
#define VMC_TLS_MAX_SLOTS  ((size_t)1 << 20)
/* A module reached by its own descriptors goes to static TLS (when there is
 * room) up to this size: glibc keeps a few hundred bytes of its surplus for
 * such opportunistic use (glibc.rtld.optional_static_tls, 512 by default). */
#define VMC_TLS_STATIC_OPPORTUNISTIC 256

/* What __tls_get_addr takes (the GOT pair DTPMOD64, DTPOFF64). */
typedef struct vmc_tls_index {
    uint64_t module, offset;
} vmc_tls_index_t;

/* The image a module's blocks start from: filesz bytes at init (the
 * relocated .tdata in the library's mapping), then memsz - filesz zeros;
 * every block's address is congruent to vaddr modulo align, as the linker
 * laid the variables out. */
typedef struct vmc_tls_image {
    const void *init;
    uint64_t filesz, memsz, vaddr, align;
} vmc_tls_image_t;

/* Take a slot for a private library's PT_TLS (-ENOMEM with a message when
 * no memory or no slot is left); *slot is valid until vmc__tls_remove. */
int vmc__tls_add(const char *name, const vmc_tls_image_t *img, size_t *slot);
/* Free the module's block in every thread and give the slot back. */
void vmc__tls_remove(size_t slot);

/* The module's blocks are in glibc's static TLS, at tpoff from the thread
 * pointer (tlsstatic.c); set before anything of the library ran. */
void vmc__tls_set_static(size_t slot, int64_t tpoff);

/* The same for a module that may have run already (another library's
 * initial-exec access to it): only if no thread has a block of it yet,
 * since those copies cannot move (-EBUSY otherwise, and nothing changes).
 * Atomic with the threads' first accesses. */
int vmc__tls_move_static(size_t slot, int64_t tpoff);
/* Whether any thread has a block of slot's module (a hint: it may change
 * at once; vmc__tls_move_static decides). */
int vmc__tls_used(size_t slot);

/* tlsstatic.c: a block for img in glibc's static TLS, through an object
 * glibc loads (*handle, for vmc__tls_static_free); *tpoff: the block's
 * address minus the thread pointer, in every thread.  -ENOTSUP with a
 * message when the surplus has no room. */
int vmc__tls_static_new(const char *name, const vmc_tls_image_t *img, void **handle, int64_t *tpoff);
void vmc__tls_static_free(void *handle);

/* A slot that stands for host module `modid` (glibc's id), shared by every
 * private library that reaches that module by TLSDESC; counted. */
int vmc__tls_host_slot(const char *name, uint64_t modid, size_t *slot);
void vmc__tls_host_release(size_t slot);

/* The host's module id and offset for `addr`, the calling thread's copy of a
 * host TLS variable (what dlsym returns for one): -ENOENT when no module's
 * block holds it.  *static_off: addr minus the thread pointer when the
 * module is in the static TLS area (the same in every thread), else 0 with
 * *is_static = 0. */
int vmc__tls_host_locate(const void *addr, uint64_t *modid, uint64_t *offset, int *is_static,
                         int64_t *static_off);

/* The calling thread's block of slot's module, or NULL if it has none yet. */
void *vmc__tls_block(size_t slot);

/* The function private libraries' __tls_get_addr binds to. */
void *vmc__tls_get_addr(vmc_tls_index_t *ti);
/* The first access by this thread to slot's module: the block's address
 * (allocated and initialised, or the host's); aborts with a message when no
 * memory is left, as glibc does. */
void *vmc__tls_slow(size_t slot);

/* TLSDESC (tlsdesc.c): the resolver for a private module's variable, whose
 * descriptor argument is vmc__tlsdesc_arg(slot, offset). */
uintptr_t vmc__tlsdesc_resolver(void);
/* The resolver for a variable at a fixed offset from the thread pointer
 * (initial-exec placement): the argument is that offset. */
uintptr_t vmc__tlsdesc_static_resolver(void);
/* Size the resolver's save area from CPUID (once, before the first module). */
void vmc__tlsdesc_init(void);
#define VMC_TLSDESC_OFF_BITS 44
static inline uint64_t vmc__tlsdesc_arg(size_t slot, uint64_t offset)
{
    return ((uint64_t)slot << VMC_TLSDESC_OFF_BITS) | offset;
}

/* The thread pointer (the instruction set's: arch/tls.h). */
static inline uintptr_t vmc__tls_tp(void) { return vmc__arch_tp(); }

/* fork: the table's lock, taken last (api.c's handlers). */
void vmc__tls_fork_prepare(void);
void vmc__tls_fork_parent(void);
void vmc__tls_fork_child(void);

/* ---- fault seam (tests) ---------------------------------------------------- */
/* Make the nth block or table allocation from now fail (0: none). */
void vmc__tls_fault(unsigned long nth);
/* Blocks allocated and not yet freed, over every thread and module. */
size_t vmc__tls_live_blocks(void);

#endif
