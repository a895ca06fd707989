/* The unwinder private libraries' frames are registered with.
 *
 * libgcc's unwinder (libgcc_s, behind C++ exceptions, backtrace() and
 * _Unwind_Backtrace) finds private frames only through the tables
 * registered with it.  A library loaded while the process has no unwinder
 * cannot be registered then; it is registered as soon as one is found: at a
 * later load (libgcc_s arriving with a C++ library, or loaded by anything
 * else meanwhile) or at a private library's call to backtrace(), whose
 * import is bound to vmc__backtrace (interpose.c).
 */
#ifndef VMC_UNWINDER_H
#define VMC_UNWINDER_H

#include "lib/loader.h"

/* Register l (published already, see phdr.h), and every published library
 * that was loaded before the process had an unwinder if there is one now.
 * Under l's loader lock; never fails. */
void vmc__unwinder_register(vmc_lib_t *l);

/* backtrace(3) for private libraries: loads libgcc_s as the C library's
 * would, registers what was loaded before it, then walks. */
int vmc__backtrace(void **buf, int size);

#endif
