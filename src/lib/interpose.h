/* Imports that private libraries bind to vmcode's own functions.
 *
 * A few functions of the C library answer about the process's loaded
 * objects (dl_iterate_phdr, _dl_find_object) or keep state per object
 * (__cxa_thread_atexit_impl, __tls_get_addr): the host's copy knows nothing
 * of private libraries, so a private library's import of one of them is
 * bound to vmcode's version instead, which serves private libraries itself
 * and hands everything else to the host's.  The binder (loader.c) asks here
 * after the private libraries and before the host.
 */
#ifndef VMC_INTERPOSE_H
#define VMC_INTERPOSE_H

#include "lib/loader.h"

/* vmcode's definition of the import `name` at version `ver` (NULL: an
 * unversioned reference), or NULL when the host's is to be used. */
void *vmc__interposed(const vmc_name_t *name, const vmc_ver_t *ver);


#endif
