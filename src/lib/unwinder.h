/* The unwinder private libraries' frames are registered with.
 *
 * libgcc's unwinder (libgcc_s, behind C++ exceptions, backtrace() and
 * _Unwind_Backtrace) finds private frames only through the tables
 * registered with it: after those it asks the C library's _dl_find_object,
 * which knows only the objects the system loader loaded.  So each library
 * is registered at its load, with the process's libgcc_s, which is loaded
 * at the end of a successful load if the process has none yet (as glibc's
 * backtrace() loads it); if it cannot be, at a later load that finds one, or at a private library's
 * call to backtrace(), whose import is bound to vmc__backtrace
 * (interpose.c).
 */
#ifndef VMC_UNWINDER_H
#define VMC_UNWINDER_H

#include "lib/loader.h"

/* Register l (published already, see phdr.h) with the process's unwinder
 * if it has one, and every published library that was loaded while there
 * was none if there is one now.  Under l's loader lock; never fails. */
void vmc__unwinder_register(vmc_lib_t *l);
/* A load succeeded, its constructors are next: if a library is published
 * and the process still has no unwinder, load libgcc_s and register them
 * all.  Under the loader lock; never fails (without libgcc_s nothing is
 * registered until an unwinder comes). */
void vmc__unwinder_ready(void);

/* backtrace(3) for private libraries: loads libgcc_s as the C library's
 * would, registers what was loaded before it, then walks. */
int vmc__backtrace(void **buf, int size);

/* Tests: make loading libgcc_s fail (1) or work again (0). */
void vmc__unwinder_refuse_load(int on);

#endif
