/* vmc_addr_info: what dladdr says, for private libraries too, of either
 * format.
 *
 * The library is the one whose image holds the address (its format's span;
 * states where the image is in place: relocated, ready, or unloaded but
 * held for pending thread-exit destructors).  The symbol is its format's
 * answer (vmc_lib_fmt_t.nearest): for an ELF object the exported one with
 * the highest address at or below addr inside the same PT_LOAD, the one
 * that contains it when one does, as dladdr answers, else the nearest
 * below, which is what a profiler wants for a static function between two
 * exports (the offset then passes the symbol's size, which says so); for a
 * DLL the named export at or below addr in the same section (exports have
 * no sizes: sym_size 0).  Addresses outside every private library of the
 * handle go to the system loader (vmc__os_addr_object: dladdr on Linux,
 * the module and its path, without a symbol, on Windows).
 */
#include "lib/loader.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <string.h>

static vmc_lib_t *holder(vmc_loader_t *v, uintptr_t a)
{
    for (vmc_lib_t *l = v->libs; l; l = l->next) {
        if (l->state == VMC_LIB_LOADING || l->state == VMC_LIB_FINISHED || !l->fmt || !l->fmt->span) continue;
        void *start;
        size_t len;
        l->fmt->span(l, &start, &len);
        if (start && a >= (uintptr_t)start && a - (uintptr_t)start < len) return l;
    }
    return NULL;
}

static void nearest(vmc_lib_t *l, uintptr_t a, vmc_addr_info_t *info)
{
    const char *name;
    uintptr_t at;
    size_t size;
    if (!l->fmt->nearest || !l->fmt->nearest(l, a, &name, &at, &size)) return;
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
        void *start;
        size_t len;
        l->fmt->span(l, &start, &len);
        out.lib = l;
        out.path = l->name;
        out.base = start;
        nearest(l, (uintptr_t)addr, &out);
    }
    vmc__loader_unlock(v);
    if (!l) {
        vmc_os_addr_t o;
        int e = vmc__os_addr_object(addr, &o);
        if (e == -ENOENT)
            return vmc__fail(-ENOENT, "vmc_addr_info: %p is in no private library of this handle and in no "
                             "object of the process", addr);
        if (e) return vmc__fail(e, "vmc_addr_info: %p: looking it up in the system loader's objects: %s", addr,
                                vmc__os_why(e));
        out.path = o.path;
        out.base = o.base;
        out.sym_name = o.sym;
        out.sym_addr = o.sym_addr;
        out.sym_offset = o.sym_addr ? (size_t)((const char *)addr - (const char *)o.sym_addr) : 0;
    }
    *info = out;
    return 0;
}
