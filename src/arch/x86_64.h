/* x86-64's definitions of what arch/reloc.h declares inline: the relocation
 * kinds, on the path of every relocation a load applies. */
#ifndef VMC_ARCH_X86_64_H
#define VMC_ARCH_X86_64_H
#include <elf.h>

static inline int vmc__arch_reloc_kind(unsigned type)
{
    /* most relocations of a library are RELATIVE: one compare for them */
    if (__builtin_expect(type == R_X86_64_RELATIVE, 1)) return VMC_RELOC_RELATIVE;
    switch (type) {
    case R_X86_64_NONE: return VMC_RELOC_NONE;
    case R_X86_64_RELATIVE: return VMC_RELOC_RELATIVE;
    case R_X86_64_IRELATIVE: return VMC_RELOC_IRELATIVE;
    case R_X86_64_64: return VMC_RELOC_ABS64;
    case R_X86_64_GLOB_DAT: return VMC_RELOC_GOT;
    case R_X86_64_JUMP_SLOT: return VMC_RELOC_PLT;
    case R_X86_64_COPY: return VMC_RELOC_COPY;
    case R_X86_64_DTPMOD64: return VMC_RELOC_DTPMOD;
    case R_X86_64_DTPOFF64: return VMC_RELOC_DTPOFF;
    case R_X86_64_TPOFF64: return VMC_RELOC_TPOFF;
    case R_X86_64_TLSDESC: return VMC_RELOC_TLSDESC;
    default: return VMC_RELOC_OTHER;
    }
}
#endif
