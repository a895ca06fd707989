/* The processor's capabilities as glibc's ld.so names them when it searches
 * for libraries: the $PLATFORM string and the glibc-hwcaps ISA level
 * (hwcaps.c, from CPUID: no system call). */
#ifndef VMC_ARCH_HWCAPS_H
#define VMC_ARCH_HWCAPS_H

/* glibc's $PLATFORM on x86-64: `kernel` (the kernel's AT_PLATFORM; NULL or
 * "" for "x86_64"), replaced on an Intel processor by "xeon_phi" or
 * "haswell" when it has (and the OS enables) those generations' features. */
const char *vmc__arch_platform(const char *kernel);

/* The x86-64 ISA level the processor and OS support: 1 (baseline) to 4
 * (x86-64-v4), as glibc decides which glibc-hwcaps subdirectories to use. */
int vmc__arch_isa_level(void);

#endif
