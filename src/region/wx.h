/* W^X by dual mapping: the code region backed by one memory file, mapped
 * read+execute at the region's address and read+write at a second view a
 * constant offset away.  Only VMC_CODE pages are dual mapped; data, library
 * images and file mappings replace the executable view's pages in their range.
 */
#ifndef VMC_WX_H
#define VMC_WX_H
#include "region/region.h"

/* After the code reservation exists: create the memory file and reserve the
 * writable view.  Sets r->wx, r->fd, r->wbase.  Undoes itself on failure. */
int  vmc__wx_open(vmc_region_t *r);
void vmc__wx_close(vmc_region_t *r);
/* Make [addr, addr+len) code: the file mapped RX at addr, its writable view
 * opened RW.  Nothing changes on failure. */
int  vmc__wx_commit(vmc_region_t *r, uintptr_t addr, size_t len);
/* Put a PROT_NONE reservation back over [addr, addr+len) of the executable
 * view (whatever the range held: code, data, an image); where it was code,
 * close the writable view and release the file's pages.  Nothing changes on
 * failure. */
int  vmc__wx_decommit(vmc_region_t *r, uintptr_t addr, size_t len);

/* fork: called by the process-wide pthread_atfork handlers (api.c), after
 * every handle's own locks are taken, so the lock order is the same as on
 * the allocation paths (blocks, then the file lock).  The child gets its own
 * memory file with the committed contents, both views remapped in place. */
void vmc__wx_fork_prepare(void);
void vmc__wx_fork_parent(void);
void vmc__wx_fork_child(void);
#endif
