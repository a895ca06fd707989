/* The architecture: what differs between instruction sets, in one file
 * per architecture (x86_64.c today; aarch64.c beside it later).
 *
 *   - reach: which spans reach which ranges with the direct branch and
 *     pc-relative operand the generated code uses (rel32 on x86-64, see
 *     vmcode.h for the rule);
 *   - stubs: the bytes of a jump from inside the region to any address;
 *   - the user address space's top (VMC_ARCH_USER_TOP);
 *   - ELF: the machine number, the relocation types and the static-TLS
 *     relocation, in arch/reloc.h (only systems with <elf.h> build it);
 *   - PE: the machine number and the base-relocation types, in
 *     arch/pe_reloc.h.
 *
 * No system calls; the one state is the TLS resolvers' save-area size,
 * set once from CPUID (x86_64_tls.c).
 */
#ifndef VMC_ARCH_H
#define VMC_ARCH_H
#include "vmcode.h"
#include <stdint.h>

/* ---- reach ------------------------------------------------------------------ */
/* The window [wlo, whi) of addresses a span must lie in to reach [lo, hi). */
void vmc__reach_window(uintptr_t lo, uintptr_t hi, uintptr_t *wlo, uintptr_t *whi);
/* How many bytes of [a, a+size) lie in the window of [lo, hi). */
size_t vmc__reach_bytes(uintptr_t a, size_t size, uintptr_t lo, uintptr_t hi);

/* ---- address space ---------------------------------------------------------- */
/* User-space addresses end below this (x86-64's 4-level paging: 2^47):
 * no placement, option or image may go past it. */
#define VMC_ARCH_USER_TOP ((uintptr_t)1 << 47)

/* ---- stubs ------------------------------------------------------------------ */
#define VMC_ARCH_STUB_SIZE 16
/* Write into buf (VMC_ARCH_STUB_SIZE bytes) a stub that jumps to `target`
 * from wherever it is placed, clobbering no register. */
void vmc__arch_stub(uint8_t *buf, uintptr_t target);
#endif
