/* Which object holds an address, as private libraries ask it.
 *
 * The C library's dladdr, dladdr1, backtrace_symbols and
 * backtrace_symbols_fd know only the objects the system loader loaded: for
 * an address inside a private library they find nothing (a plug-in asking
 * where its own code is, to find its data files; a crash handler printing
 * its stack).  A private library's imports of them are bound to the
 * versions below (interpose.c), which answer for every published private
 * library and hand other addresses to the C library's.  The host's own
 * calls still go to the C library's functions (its imports are bound by
 * the system loader, which vmcode does not change): the host asks
 * vmc_addr_info instead.
 */
#ifndef VMC_DLADDR_H
#define VMC_DLADDR_H

#include "lib/loader.h"

#include <dlfcn.h>
#include <link.h>

int vmc__dladdr(const void *addr, Dl_info *info);
/* RTLD_DL_SYMENT gives the symbol's entry in the library's table (NULL
 * when no symbol holds the address).  RTLD_DL_LINKMAP is the C library's
 * answer, 0 for a private address: a private library has no link map, and
 * callers read fields of one beyond the public part (alsa-lib takes its
 * plug-in directory from l_origin), so a made-up one would be worse than
 * none. */
int vmc__dladdr1(const void *addr, Dl_info *info, void **extra, int flags);
char **vmc__backtrace_symbols(void *const *buf, int n);
void vmc__backtrace_symbols_fd(void *const *buf, int n, int fd);

#endif
