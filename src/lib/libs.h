/* What the API layer sees of the library lifecycle: a handle's loader and
 * its entry points, without the format's types (loader.h has those). */
#ifndef VMC_LIBS_H
#define VMC_LIBS_H

#include "alloc/space.h"

#include <stddef.h>

/* One handle's private libraries. */
typedef struct vmc_loader {
    vmc_space_t *sp;             /* the space they are loaded into          */
    struct vmc_lib *libs;        /* privately loaded libraries, mapping order */
    struct vmc_lib *libs_tail;
    size_t nlibs;
    unsigned long lib_seq;       /* relocations and constructors finished so
                                    far: the order of init and fini         */
    /* kept.c: what the loads of files unloaded since read and checked, for
     * the next load of the same unchanged file */
    struct vmc_kept {
        uint64_t id[2], stamp[3];    /* the file's identity, size and times  */
        const struct vmc_lib_fmt *fmt;
        struct vmc_lib *lib;         /* an unloaded library's record, what its
                                        format kept in it (NULL: a free entry) */
        unsigned long used;          /* when it was kept (kept_clock)        */
    } kept[8];
    unsigned long kept_clock;
} vmc_loader_t;

/* The handle's lock, taken again by the thread that holds it (a constructor
 * may load a library or map a file) without deadlock.  Not a recursive
 * mutex: fork's handlers (api.c) unlock it in the child, which a recursive
 * mutex owned by the parent's thread refuses. */
void vmc__loader_lock(vmc_loader_t *v);
void vmc__loader_unlock(vmc_loader_t *v);
/* Unload everything still loaded (vmc_close). */
void vmc__loader_close(vmc_loader_t *v);
/* The process is exiting: run the destructors of the libraries still
 * loaded (reverse constructor order), as glibc's _dl_fini does for its own;
 * nothing is unmapped.  Later unloads and vmc_close run none again. */
void vmc__loader_exit(vmc_loader_t *v);
size_t vmc__loader_count(vmc_loader_t *v);
/* vmc_lib_load and vmc_lib_load_mem (vmcode.h) for a handle's loader; a NULL
 * loader fails as a NULL handle does. */
int vmc__lib_load(vmc_loader_t *v, const char *path, int flags, vmc_lib_t **out);
int vmc__lib_load_mem(vmc_loader_t *v, const void *bytes, size_t len, const char *name, int flags,
                      vmc_lib_t **out);
/* vmc_addr_info (addrinfo.c) for a handle's loader. */
int vmc__lib_addr_info(vmc_loader_t *v, const void *addr, vmc_addr_info_t *info);
/* Around fork (api.c): the process-wide locks of private libraries, taken
 * after the handles' loader locks, in this order: the list of published
 * objects (phdr.c), thread-exit destructors (tlsdtor.c), the unwinder
 * (unwinder.c); released in the reverse order. */
void vmc__phdr_fork_prepare(void);
void vmc__phdr_fork_release(void);
void vmc__tlsdtor_fork_prepare(void);
void vmc__tlsdtor_fork_release(void);
void vmc__unwinder_fork_prepare(void);
void vmc__unwinder_fork_release(void);
#endif
