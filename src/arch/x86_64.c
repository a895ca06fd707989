/* rel32 reach arithmetic, shared by placement, allocation and the loader. */
#include "arch/reach.h"

#define REL32_SPAN ((uint64_t)1 << 31)

int vmc_reaches(uintptr_t from, uintptr_t to)
{
    int64_t d = (int64_t)(to - from);
    return d >= -(int64_t)REL32_SPAN && d <= (int64_t)REL32_SPAN - 1;
}

int vmc_span_reaches(uintptr_t a, uintptr_t b, uintptr_t lo, uintptr_t hi)
{
    if (b < a || hi < lo) return 0;
    if (hi == lo) return 1;
    /* Over every instruction end e in [a, b] and byte t in [lo, hi), the
     * extreme displacements are hi - 1 - a and lo - b. */
    return (int64_t)(hi - a) <= (int64_t)REL32_SPAN && (int64_t)(b - lo) <= (int64_t)REL32_SPAN;
}

void vmc__reach_window(uintptr_t lo, uintptr_t hi, uintptr_t *wlo, uintptr_t *whi)
{
    /* A span [a, b) reaches [lo, hi) iff a >= hi - 2^31 and b <= lo + 2^31
     * (clamped to the address space). */
    *wlo = hi > REL32_SPAN ? hi - REL32_SPAN : 0;
    *whi = lo < UINTPTR_MAX - REL32_SPAN ? lo + REL32_SPAN : UINTPTR_MAX;
}

size_t vmc__reach_bytes(uintptr_t a, size_t size, uintptr_t lo, uintptr_t hi)
{
    if (lo == hi) return size;
    uintptr_t wlo, whi;
    vmc__reach_window(lo, hi, &wlo, &whi);
    uintptr_t s = a > wlo ? a : wlo;
    uintptr_t e = a + size < whi ? a + size : whi;
    return e > s ? e - s : 0;
}
