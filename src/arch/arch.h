/* The architecture: what differs between instruction sets, in one file
 * per architecture (x86_64.c today; aarch64.c beside it later).
 *
 *   - reach: which spans reach which ranges with the direct branch and
 *     pc-relative operand the generated code uses (rel32 on x86-64, see
 *     vmcode.h for the rule);
 *   - stubs: the bytes of a jump from inside the region to any address;
 *   - ELF: the machine number, and what each relocation type means, in the
 *     generic kinds the ELF layer applies.
 *
 * Pure functions: no system calls, no state.
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

/* ---- stubs ------------------------------------------------------------------ */
#define VMC_ARCH_STUB_SIZE 16
/* Write into buf (VMC_ARCH_STUB_SIZE bytes) a stub that jumps to `target`
 * from wherever it is placed, clobbering no register. */
void vmc__arch_stub(uint8_t *buf, uintptr_t target);

/* ---- ELF ---------------------------------------------------------------------- */
/* The e_machine this build loads. */
unsigned vmc__arch_elf_machine(void);
const char *vmc__arch_elf_machine_name(void);   /* "EM_X86_64" */

/* What a relocation type does, in the terms the ELF layer applies. */
enum vmc_reloc_kind {
    VMC_RELOC_NONE,          /* nothing                                       */
    VMC_RELOC_RELATIVE,      /* base + addend                                 */
    VMC_RELOC_IRELATIVE,     /* resolver(base + addend)                       */
    VMC_RELOC_ABS64,         /* symbol + addend                               */
    VMC_RELOC_GOT,           /* symbol (addend ignored): GLOB_DAT             */
    VMC_RELOC_PLT,           /* symbol (addend ignored): JUMP_SLOT            */
    VMC_RELOC_COPY,          /* copy relocation: executables only             */
    VMC_RELOC_DTPMOD,        /* TLS: module id of the symbol's object         */
    VMC_RELOC_DTPOFF,        /* TLS: offset of the symbol in its TLS block    */
    VMC_RELOC_TPOFF,         /* TLS: offset from the thread pointer           */
    VMC_RELOC_TLSDESC,       /* TLS: descriptor (resolver, argument)          */
    VMC_RELOC_OTHER,         /* anything else: refused by number              */
};
static inline int vmc__arch_reloc_kind(unsigned type);
/* The type's name for messages ("R_X86_64_COPY"), or NULL if unknown. */
const char *vmc__arch_reloc_name(unsigned type);
/* For a type the system loader applies in a shared library but the ELF
 * layer does not: the feature it belongs to ("copy relocations, for
 * executables"), for the -ENOTSUP message; NULL for every other type. */
const char *vmc__arch_reloc_unsupported(unsigned type);

/* The architecture's inline definitions (one header per architecture). */
#if defined(__x86_64__) || defined(_M_X64)
#include "arch/x86_64.h"
#else
#error "vmcode: this architecture is not supported yet (see docs/design.md, AArch64)"
#endif
#endif
