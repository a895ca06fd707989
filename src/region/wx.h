/* W^X by dual mapping: the code region's VMC_CODE pages mapped read+execute
 * at the region's address and read+write at a second view a constant offset
 * away, through the OS layer's W^X pair.  Only VMC_CODE pages are dual
 * mapped; data, library images and file mappings replace the executable
 * view's pages in their range.
 */
#ifndef VMC_WX_H
#define VMC_WX_H
#include "region/region.h"

/* After the code reservation exists: make the pair and its writable view.
 * Sets r->wx, r->dual, r->wbase.  Undoes itself on failure; -ENOTSUP (with
 * the missing feature named) where the system cannot make one. */
int  vmc__wx_open(vmc_region_t *r);
void vmc__wx_close(vmc_region_t *r);
/* Make [addr, addr+len) code: read+execute at addr, its writable view opened
 * read+write, zero filled.  Nothing changes on failure. */
int  vmc__wx_commit(vmc_region_t *r, uintptr_t addr, size_t len);
/* Put a reservation back over [addr, addr+len) of the executable view
 * (whatever the range held: code, data, an image); where it was code, close
 * the writable view and release the pages.  Nothing changes on failure. */
int  vmc__wx_decommit(vmc_region_t *r, uintptr_t addr, size_t len);
#endif
