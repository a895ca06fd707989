/* W^X by dual mapping (see wx.h). */
#include "wx.h"
#include "error.h"

#include <errno.h>

int vmc__wx_open(vmc_region_t *r)
{
    (void)r;
    return vmc__fail(-ENOSYS, "w_xor_x: dual mapping is not available in this build yet");
}

void vmc__wx_close(vmc_region_t *r) { (void)r; }

int vmc__wx_commit(vmc_region_t *r, uintptr_t addr, size_t len)
{
    (void)r; (void)addr; (void)len;
    return -ENOSYS;
}

int vmc__wx_decommit(vmc_region_t *r, uintptr_t addr, size_t len)
{
    (void)r; (void)addr; (void)len;
    return -ENOSYS;
}
