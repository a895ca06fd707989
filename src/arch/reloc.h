/* The architecture in ELF terms: the machine number and what each
 * relocation type means, in the generic kinds the ELF layer applies (the
 * definitions: x86_64_elf.c, and x86_64.h inline). */
#ifndef VMC_ARCH_RELOC_H
#define VMC_ARCH_RELOC_H
#include "arch/arch.h"

/* The e_machine this build loads. */
unsigned vmc__arch_elf_machine(void);
const char *vmc__arch_elf_machine_name(void);   /* "EM_X86_64" */
/* The relocation type that stores a symbol's offset from the thread
 * pointer in a 64-bit word (static TLS: R_X86_64_TPOFF64). */
unsigned vmc__arch_elf_tpoff_type(void);

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
