/* W^X by dual mapping (see wx.h): the code region's VMC_CODE pages are the
 * OS layer's W^X pair over the whole region (os.h, "W^X: two views of one
 * memory object"), so this file is the same on every system.  What the pair
 * is made of, and what each system needs for it (Linux: a memory file, its
 * growth under RLIMIT_FSIZE, IMA, the copy a forked child gets; Windows: a
 * section per committed piece, which needs placeholders), is the OS layer's.
 *
 * The region's part: the writable view's address (r->wbase, so that
 * vmc_writable and vmc_executable translate with one subtraction), the
 * region's hole if it has one (a -no-pie program's brk heap, region.c: the
 * pair spans it, one offset on both sides, and never maps anything in it),
 * and the messages, which the OS layer writes about addresses and this file
 * prefixes with what they are ("w_xor_x: ...", "code region: ...").
 */
#include "region/wx.h"
#include "base/error.h"
#include "os/os.h"

int vmc__wx_open(vmc_region_t *r)
{
    vmc_os_dual_t *d;
    uintptr_t w;
    int e = vmc__os_dual_map(r->base, r->size, r->hole_lo, r->hole_hi, &d, &w);
    if (e) return vmc__fail_wrap(e, "w_xor_x");
    r->dual = d;
    r->wbase = w;
    r->wx = 1;
    return 0;
}

void vmc__wx_close(vmc_region_t *r)
{
    if (!r->dual) return;
    vmc__os_dual_unmap(r->dual);
    r->dual = NULL;
    r->wx = 0;
    r->wbase = r->base;
}

int vmc__wx_commit(vmc_region_t *r, uintptr_t addr, size_t len)
{
    int e = vmc__os_dual_commit(r->dual, addr, len);
    return e ? vmc__fail_wrap(e, "%s region", r->name) : 0;
}

int vmc__wx_decommit(vmc_region_t *r, uintptr_t addr, size_t len)
{
    int e = vmc__os_dual_decommit(r->dual, addr, len);
    return e ? vmc__fail_wrap(e, "%s region", r->name) : 0;
}
