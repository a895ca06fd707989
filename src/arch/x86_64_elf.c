/* x86-64 in ELF terms: the machine number and the relocation types:
 * names and unsupported features (arch/reloc.h; the kinds are inline in
 * x86_64.h). */
#include "arch/reloc.h"
#include "base/attrs.h"

#include <elf.h>

VMC_LOAD_PATH unsigned vmc__arch_elf_machine(void) { return EM_X86_64; }
const char *vmc__arch_elf_machine_name(void) { return "EM_X86_64"; }
unsigned vmc__arch_elf_tpoff_type(void) { return R_X86_64_TPOFF64; }

const char *vmc__arch_reloc_name(unsigned type)
{
    switch (type) {
    case R_X86_64_COPY: return "R_X86_64_COPY";
    case R_X86_64_32: return "R_X86_64_32";
    case R_X86_64_PC32: return "R_X86_64_PC32";
    case R_X86_64_SIZE32: return "R_X86_64_SIZE32";
    case R_X86_64_SIZE64: return "R_X86_64_SIZE64";
    case R_X86_64_DTPMOD64: return "R_X86_64_DTPMOD64";
    case R_X86_64_DTPOFF64: return "R_X86_64_DTPOFF64";
    case R_X86_64_TPOFF64: return "R_X86_64_TPOFF64";
    case R_X86_64_TPOFF32: return "R_X86_64_TPOFF32";
    case R_X86_64_GOTTPOFF: return "R_X86_64_GOTTPOFF";
    case R_X86_64_TLSDESC: return "R_X86_64_TLSDESC";
    default: return NULL;
    }
}

const char *vmc__arch_reloc_unsupported(unsigned type)
{
    switch (type) {
    case R_X86_64_COPY: return "copy relocations, for executables";
    case R_X86_64_32:
    case R_X86_64_PC32: return "32-bit relocations";
    case R_X86_64_SIZE32:
    case R_X86_64_SIZE64: return "symbol size relocations";
    default: return NULL;
    }
}
