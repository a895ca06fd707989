/* The loaded objects as the C library reports them, private ones included.
 *
 * dl_iterate_phdr and _dl_find_object list only what the system loader
 * loaded.  An unwinder linked into a private library (-static-libgcc) finds
 * its frames through them, and stops at the first private frame when they
 * do not list it.  Private libraries are published here once relocated
 * (their constructors may throw) and withdrawn just before their image goes;
 * a private library's imports of both functions are bound to the versions
 * below (interpose.c), which answer for the published libraries and hand
 * everything else to the host's.
 */
#ifndef VMC_PHDR_H
#define VMC_PHDR_H

#include "lib/loader.h"

#include <dlfcn.h>
#include <link.h>

/* List l for the functions below (an inert library is never listed: its
 * tables would be read for frames that cannot exist).  Under the loader's
 * lock; never fails. */
void vmc__phdr_publish(vmc_lib_t *l);
/* Take it off again (no-op if it was not listed); waits for a walk that is
 * reading it. */
void vmc__phdr_withdraw(vmc_lib_t *l);

/* dl_iterate_phdr: the host's objects (main program first), then each
 * published library.  The walk holds a lock while a private library's entry
 * is being reported: the callback must not load or unload a private library
 * while another thread is loading one (the system loader's own walk has the
 * same rule for dlopen). */
int vmc__dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data);

#ifdef DLFO_EH_SEGMENT_TYPE
/* _dl_find_object: a published library's span and PT_GNU_EH_FRAME, or the
 * host's answer.  dlfo_link_map is NULL for a private library (it has no
 * link map). */
int vmc__dl_find_object(void *pc, struct dl_find_object *out);
#endif

/* The published library whose run holds address a, or NULL; between
 * vmc__phdr_enter and vmc__phdr_leave, which keep it from being withdrawn
 * (the lock the walks take; the same thread may take it again). */
void vmc__phdr_enter(void);
void vmc__phdr_leave(void);
vmc_lib_t *vmc__phdr_find(uintptr_t a);
/* The newest published library (then ->pub_next), likewise. */
vmc_lib_t *vmc__phdr_first(void);


#endif
