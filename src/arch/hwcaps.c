/* The processor as glibc's ld.so names it on x86-64 (arch/hwcaps.h): the
 * $PLATFORM string and the ISA level of the glibc-hwcaps directories.
 *
 * $PLATFORM: the kernel passes AT_PLATFORM "x86_64" (the caller reads it,
 * through the OS layer); ld.so replaces it, on Intel processors only, with
 * "xeon_phi" (AVX512ER, AVX512PF and AVX512CD usable) or "haswell" (AVX2
 * usable, BMI1, BMI2, LZCNT, MOVBE, POPCNT), and there is no interface that
 * reports its choice, so the same test is made here from CPUID.  "Usable"
 * means the OS saves the registers too (XGETBV).  A test compares the
 * result with what ld.so finds through a DT_RUNPATH using $PLATFORM. */
#include "arch/hwcaps.h"

#include <cpuid.h>
#include <stdint.h>
#include <string.h>

static uint64_t xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

const char *vmc__arch_platform(const char *kernel)
{
    const char *at = kernel && *kernel ? kernel : "x86_64";
    unsigned a, b, c, d, max;
    char vendor[13];
    if (!__get_cpuid(0, &max, &b, &c, &d)) return at;
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    vendor[12] = 0;
    if (strcmp(vendor, "GenuineIntel") || max < 7) return at;
    __cpuid(1, a, b, c, d);
    unsigned ecx1 = c;
    int osxsave = (ecx1 >> 27) & 1;
    uint64_t x = osxsave ? xcr0() : 0;
    int ymm = (x & 6) == 6, zmm = (x & 0xe6) == 0xe6;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned ebx7 = b;
    unsigned ecx81 = 0;
    if (__get_cpuid(0x80000001, &a, &b, &c, &d)) ecx81 = c;
#define BIT(r, n) (((r) >> (n)) & 1)
    if (zmm && BIT(ebx7, 28) && BIT(ebx7, 27) && BIT(ebx7, 26)) return "xeon_phi";  /* CD, ER, PF */
    if (ymm && BIT(ebx7, 5) && BIT(ebx7, 3) && BIT(ebx7, 8) && BIT(ecx81, 5) && BIT(ecx1, 22) && BIT(ecx1, 23))
        return "haswell";  /* AVX2, BMI1, BMI2, LZCNT, MOVBE, POPCNT */
#undef BIT
    return at;
}

/* The x86-64 ISA level (1 = baseline, 2-4 = x86-64-v2..v4) by the feature
 * lists of the psABI, each usable only with the OS saving its registers:
 * glibc takes the glibc-hwcaps subdirectories it tries, and the ISA level
 * entries of the ld.so cache it accepts, from the same lists.  A test
 * compares the result with what ld.so --help says is supported. */
int vmc__arch_isa_level(void)
{
    unsigned a, b, c, d, max;
    if (!__get_cpuid(0, &max, &b, &c, &d) || max < 7) return 1;
    __cpuid(1, a, b, c, d);
    unsigned ecx1 = c;
    uint64_t x = ((ecx1 >> 27) & 1) ? xcr0() : 0;  /* OSXSAVE */
    int ymm = (x & 6) == 6, zmm = (x & 0xe6) == 0xe6;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned ebx7 = b;
    unsigned ecx81 = 0;
    if (__get_cpuid(0x80000001, &a, &b, &c, &d)) ecx81 = c;
#define BIT(r, n) (((r) >> (n)) & 1)
    /* CMPXCHG16B, LAHF/SAHF, POPCNT, SSE3, SSE4.1, SSE4.2, SSSE3 */
    if (!(BIT(ecx1, 13) && BIT(ecx81, 0) && BIT(ecx1, 23) && BIT(ecx1, 0) && BIT(ecx1, 19) && BIT(ecx1, 20) &&
          BIT(ecx1, 9)))
        return 1;
    /* AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT, MOVBE */
    if (!(ymm && BIT(ecx1, 28) && BIT(ebx7, 5) && BIT(ebx7, 3) && BIT(ebx7, 8) && BIT(ecx1, 29) &&
          BIT(ecx1, 12) && BIT(ecx81, 5) && BIT(ecx1, 22)))
        return 2;
    /* AVX512F, AVX512BW, AVX512CD, AVX512DQ, AVX512VL */
    if (!(zmm && BIT(ebx7, 16) && BIT(ebx7, 30) && BIT(ebx7, 28) && BIT(ebx7, 17) && BIT(ebx7, 31))) return 3;
#undef BIT
    return 4;
}
