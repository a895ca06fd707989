/* vmc_addr_info: what dladdr says, for private libraries too.
 *
 * The library is the one whose run holds the address (states where its
 * image is mapped: relocated, ready, or unloaded but held for pending
 * thread-exit destructors).  The symbol is the exported one
 * (vmc__elf_nearest) with the highest address at or below addr inside the
 * same PT_LOAD: the one that contains it when one does, as dladdr answers; else
 * the nearest below, which is what a profiler wants for a static function
 * between two exports (the offset then passes the symbol's size, which says
 * so).  Addresses outside every private library of the handle go to dladdr.
 */
#include "lib/loader.h"
#include "base/error.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

static vmc_lib_t *holder(vmc_loader_t *v, uintptr_t a)
{
    for (vmc_lib_t *l = v->libs; l; l = l->next)
        if (l->state != VMC_LIB_LOADING && l->state != VMC_LIB_FINISHED && l->o.run && a >= l->o.run &&
            a - l->o.run < l->o.run_len)
            return l;
    return NULL;
}

static void nearest(const vmc_lib_t *l, uintptr_t a, vmc_addr_info_t *info)
{
    const char *name;
    uintptr_t at;
    size_t size;
    if (!vmc__elf_nearest(&l->o, a, &name, &at, &size)) return;
    info->sym_name = name;
    info->sym_addr = (void *)at;
    info->sym_size = size;
    info->sym_offset = a - at;
}

int vmc__lib_addr_info(vmc_loader_t *v, const void *addr, vmc_addr_info_t *info)
{
    if (!v || !info) return vmc__fail(-EINVAL, "vmc_addr_info: NULL argument");
    vmc_addr_info_t out;
    memset(&out, 0, sizeof out);
    vmc__loader_lock(v);
    vmc_lib_t *l = holder(v, (uintptr_t)addr);
    if (l) {
        out.lib = l;
        out.path = l->name;
        out.base = (void *)l->o.run;
        nearest(l, (uintptr_t)addr, &out);
    }
    vmc__loader_unlock(v);
    if (!l) {
        Dl_info di;
        if (!dladdr(addr, &di))
            return vmc__fail(-ENOENT, "vmc_addr_info: %p is in no private library of this handle and in no "
                             "object of the process", addr);
        out.path = di.dli_fname;
        out.base = di.dli_fbase;
        out.sym_name = di.dli_sname;
        out.sym_addr = di.dli_saddr;
        out.sym_offset = di.dli_saddr ? (size_t)((const char *)addr - (const char *)di.dli_saddr) : 0;
    }
    *info = out;
    return 0;
}
