/* x86-64 in PE terms (arch/pe_reloc.h): IMAGE_FILE_MACHINE_AMD64, and the
 * base-relocation types an x64 DLL uses, DIR64 and ABSOLUTE padding. */
#include "arch/pe_reloc.h"

#define MACHINE_AMD64 0x8664
#define REL_ABSOLUTE  0
#define REL_DIR64     10

unsigned vmc__arch_pe_machine(void) { return MACHINE_AMD64; }
const char *vmc__arch_pe_machine_name(void) { return "AMD64"; }

int vmc__arch_pe_reloc_kind(unsigned type)
{
    switch (type) {
    case REL_ABSOLUTE: return VMC_PE_RELOC_SKIP;
    case REL_DIR64: return VMC_PE_RELOC_ADD64;
    default: return VMC_PE_RELOC_OTHER;
    }
}

const char *vmc__arch_pe_reloc_name(unsigned type)
{
    static const char *const names[16] = {
        "ABSOLUTE", "HIGH", "LOW", "HIGHLOW", "HIGHADJ", "MACHINE_SPECIFIC_5", "RESERVED",
        "MACHINE_SPECIFIC_7", "MACHINE_SPECIFIC_8", "MACHINE_SPECIFIC_9", "DIR64",
        "11", "12", "13", "14", "15",
    };
    return names[type & 15];
}
