/* The processor's platform name, as the system loader's $PLATFORM. */
#ifndef VMC_PLATFORM_H
#define VMC_PLATFORM_H

/* glibc's value on x86-64: the kernel's AT_PLATFORM ("x86_64"), replaced
 * on an Intel processor by "xeon_phi" or "haswell" when it has (and the OS
 * enables) those generations' features. */
const char *vmc__arch_platform(void);

/* The x86-64 ISA level the processor and OS support: 1 (baseline) to 4
 * (x86-64-v4), as glibc decides which glibc-hwcaps subdirectories to use. */
int vmc__arch_isa_level(void);

#endif
