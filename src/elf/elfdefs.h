/* The few ELF types the ELF layer's and the lifecycle's structures name,
 * for systems whose C library has no <elf.h> (Windows): there the lifecycle
 * (src/lib/loader.c) is built for DLLs, its structures still hold an ELF
 * object's fields, and none of the ELF layer's code is built.  Laid out as
 * the ELF-64 specification (System V ABI) defines them. */
#ifndef VMC_ELFDEFS_H
#define VMC_ELFDEFS_H

#include <stdint.h>

typedef struct {
    uint32_t p_type, p_flags;
    uint64_t p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align;
} Elf64_Phdr;

typedef struct {
    uint32_t st_name;
    unsigned char st_info, st_other;
    uint16_t st_shndx;
    uint64_t st_value, st_size;
} Elf64_Sym;

typedef struct {
    int64_t d_tag;
    union { uint64_t d_val, d_ptr; } d_un;
} Elf64_Dyn;

#define SHN_ABS          0xfff1
#define STT_TLS          6
#define STT_GNU_IFUNC    10
#define ELF64_ST_TYPE(i) ((i) & 0xf)

#endif
