/* One C++ runtime per process (cxxrt.c says why). */
#ifndef VMC_CXXRT_H
#define VMC_CXXRT_H

#include "lib/loader.h"

/* Before l is relocated (host look-ups synced): if l carries its own C++
 * runtime and the process's global scope has one, note that l's runtime
 * names go to the process's (l->o.runtime_first). */
void vmc__lib_runtime_check(vmc_lib_t *l);
/* vmc_elf_env_t.runtime: 1 and the address to bind when the process's
 * runtime defines name (vmcode's own for an interposed name), else 0. */
int vmc__lib_runtime_sym(const vmc_elf_obj_t *o, const char *name, const vmc_ver_t *ver, uintptr_t *value);

#endif
