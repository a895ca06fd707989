/* x86-64: rel32 reach arithmetic (shared by placement, allocation and the
 * loader) and the far-jump stub (arch.h); the ELF side is x86_64_elf.c,
 * which only systems that load ELF build. */
#include "arch/arch.h"

#include <string.h>

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

/* ---- stubs -------------------------------------------------------------------- */

void vmc__arch_stub(uint8_t *buf, uintptr_t target)
{
    /* jmp qword ptr [rip+0] (FF 25 00000000), the 8-byte target, two int3:
     * no register is clobbered, so it serves calls and jumps alike. */
    static const uint8_t jmp[6] = {0xff, 0x25, 0, 0, 0, 0};
    memcpy(buf, jmp, sizeof jmp);
    memcpy(buf + 6, &target, 8);
    buf[14] = buf[15] = 0xcc;
}
