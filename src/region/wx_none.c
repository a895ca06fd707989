/* W^X where the region layer has no dual-view design for the system yet
 * (the Windows build, which compiles this instead of wx.c): asking for it is
 * refused by name, and nothing else is ever called. */
#include "region/wx.h"
#include "base/error.h"

#include <errno.h>

int vmc__wx_open(vmc_region_t *r)
{
    return vmc__fail(-ENOTSUP, "%s region: W^X (w_xor_x) is not supported on this system yet",
                     r->name);
}

void vmc__wx_close(vmc_region_t *r) { (void)r; }

int vmc__wx_commit(vmc_region_t *r, uintptr_t addr, size_t len)
{
    (void)addr;
    (void)len;
    return vmc__wx_open(r);
}

int vmc__wx_decommit(vmc_region_t *r, uintptr_t addr, size_t len)
{
    (void)addr;
    (void)len;
    return vmc__wx_open(r);
}

void vmc__wx_fork_prepare(void) {}
void vmc__wx_fork_parent(void) {}
void vmc__wx_fork_child(void) {}
