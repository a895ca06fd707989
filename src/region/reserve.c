/* Re-reserving a piece of a region: what every decommit, unload and unmap
 * ends in (invariant 2: never a hole).  Below both region.c and wx.c, so
 * neither calls the other back. */
#include "region/region.h"
#include "base/attrs.h"
#include "base/error.h"
#include "os/os.h"

#include <string.h>
#include <inttypes.h>

VMC_LOAD_PATH int vmc__region_rereserve(vmc_region_t *r, uintptr_t addr, size_t len)
{
    int e = vmc__os_rereserve(addr, len);
    if (e)
        return vmc__fail(e, "%s region: cannot re-reserve %#zx bytes at %#" PRIxPTR ": %s: %s%s", r->name, len,
                         (uintptr_t)addr, vmc__os_rereserve_call(), strerror(-e),
                         vmc__os_enomem_hint(e));
    return 0;
}
