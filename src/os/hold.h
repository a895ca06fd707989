/* Inside the OS layer only: the hold list's lock and audit (hold.c), for the
 * system files' fork handlers and MAP_FIXED checks. */
#ifndef VMC_OS_HOLD_H
#define VMC_OS_HOLD_H
#include <stddef.h>
#include <stdint.h>

/* Taken before fork and released on both sides after it (os/unix.c). */
void vmc__os_hold_lock(void);
void vmc__os_hold_unlock(void);
/* With auditing on, abort the process unless [lo, lo+len) lies inside one
 * held range; `what` names the call for the report ("MAP_FIXED"). */
void vmc__os_audit_fixed_range(uintptr_t lo, size_t len, const char *what);
#endif
