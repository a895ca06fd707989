/* rel32 reach: which spans reach which ranges (see vmcode.h for the rule). */
#ifndef VMC_REACH_H
#define VMC_REACH_H
#include "vmcode.h"

/* The window [wlo, whi) of addresses a span must lie in to reach [lo, hi). */
void vmc__reach_window(uintptr_t lo, uintptr_t hi, uintptr_t *wlo, uintptr_t *whi);
/* How many bytes of [a, a+size) lie in the window of [lo, hi). */
size_t vmc__reach_bytes(uintptr_t a, size_t size, uintptr_t lo, uintptr_t hi);
#endif
