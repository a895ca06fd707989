/* The architecture in PE terms: the machine number a DLL must carry and
 * what each base-relocation type means, in the kinds the PE layer applies
 * (as arch/reloc.h does for ELF; the definitions: x86_64_pe.c).  No system
 * header: the PE layer is built on every system. */
#ifndef VMC_ARCH_PE_RELOC_H
#define VMC_ARCH_PE_RELOC_H

/* IMAGE_FILE_HEADER.Machine of the DLLs this build loads, and its name
 * for messages ("AMD64"). */
unsigned vmc__arch_pe_machine(void);
const char *vmc__arch_pe_machine_name(void);

/* What a base-relocation type (the entry's top four bits) does. */
enum vmc_pe_reloc_kind {
    VMC_PE_RELOC_SKIP,       /* padding: nothing (ABSOLUTE)                   */
    VMC_PE_RELOC_ADD64,      /* add the delta to the 64-bit word (DIR64)      */
    VMC_PE_RELOC_OTHER,      /* anything else: refused by number              */
};
int vmc__arch_pe_reloc_kind(unsigned type);
/* The type's name after IMAGE_REL_BASED_ ("DIR64"; "11" for a number
 * with none), for messages; type is taken modulo 16. */
const char *vmc__arch_pe_reloc_name(unsigned type);
#endif
