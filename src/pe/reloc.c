/* Base relocations: the image moved from its preferred ImageBase to where
 * it runs (o->base), by the .reloc directory's blocks.
 *
 * Each block is a page RVA, its size, and 16-bit entries (type << 12 |
 * offset in the page).  What each type means is the architecture's
 * (arch/pe_reloc.h: on x86-64, DIR64 adds the delta to the 64-bit word and
 * ABSOLUTE is padding); any other type is refused by number (-ENOTSUP).  Every block must lie inside the directory
 * and every target's eight bytes inside the image.  Blocks are applied even
 * when the delta is 0, so a bad table is refused wherever the image lands.
 * An image that must move but cannot (IMAGE_FILE_RELOCS_STRIPPED, or no
 * relocation directory) is refused as unsupported: the region decides the
 * address, never the DLL.
 */
#include "pe/pe.h"
#include "arch/pe_reloc.h"
#include "base/error.h"

#include <errno.h>

int vmc__pe_relocate(vmc_pe_obj_t *o)
{
    const vmc_pe_t *pe = &o->pe;
    uint64_t delta = o->base - pe->image_base;
    uint32_t rva = pe->dir[VMC_PE_DIR_BASERELOC].rva, size = pe->dir[VMC_PE_DIR_BASERELOC].size;
    uint64_t off = vmc__pe_offset(pe, rva);
    o->nrelocs = 0;
    if (delta && (!size || (pe->file_chars & VMC_PE_FILE_RELOCS_STRIPPED)))
        return vmc__fail(-ENOTSUP, "%s: base relocation directory (offset 0x%x+0x%x): the DLL is not "
                         "relocatable (%s) and must move from ImageBase 0x%llx to 0x%llx", o->name,
                         pe->opt, 112 + 8 * VMC_PE_DIR_BASERELOC,
                         size ? "IMAGE_FILE_RELOCS_STRIPPED" : "no relocations",
                         (unsigned long long)pe->image_base, (unsigned long long)o->base);
    /* check.c: the directory is inside the image */
    for (uint32_t pos = 0, block = 0; pos < size; block++) {
        if (size - pos < 8)
            return vmc__fail(-ENOEXEC, "%s: base relocation block %u (offset 0x%llx+0x%x): %u bytes left in the "
                             "directory, less than a block header", o->name, block, (unsigned long long)off, pos,
                             size - pos);
        const uint8_t *b = o->img + rva + pos;
        uint32_t page = vmc__pe_u32(b), bsize = vmc__pe_u32(b + 4);
        if (bsize < 8 || bsize % 2 || bsize > size - pos)
            return vmc__fail(-ENOEXEC, "%s: base relocation block %u (offset 0x%llx+0x%x): SizeOfBlock 0x%x is "
                             "not an even size from 8 to the directory's end (0x%x bytes left)", o->name, block,
                             (unsigned long long)off, pos, bsize, size - pos);
        if (page >= pe->size_of_image)
            return vmc__fail(-ENOEXEC, "%s: base relocation block %u (offset 0x%llx+0x%x): VirtualAddress 0x%x is "
                             "past the image (SizeOfImage 0x%x)", o->name, block, (unsigned long long)off, pos,
                             page, pe->size_of_image);
        for (uint32_t k = 8; k < bsize; k += 2) {
            uint16_t ent = vmc__pe_u16(b + k);
            unsigned type = ent >> 12;
            uint64_t target = (uint64_t)page + (ent & 0xfff);
            int kind = vmc__arch_pe_reloc_kind(type);
            if (kind == VMC_PE_RELOC_SKIP) continue;
            if (kind != VMC_PE_RELOC_ADD64)
                return vmc__fail(-ENOTSUP, "%s: base relocation block %u entry %u (offset 0x%llx+0x%x): type %u "
                                 "(IMAGE_REL_BASED_%s) is not supported", o->name, block, (k - 8) / 2,
                                 (unsigned long long)off, pos + k, type, vmc__arch_pe_reloc_name(type));
            if (!vmc__pe_in_image(pe, target, 8))
                return vmc__fail(-ENOEXEC, "%s: base relocation block %u entry %u (offset 0x%llx+0x%x): target "
                                 "0x%llx+8 is past the image (SizeOfImage 0x%x)", o->name, block, (k - 8) / 2,
                                 (unsigned long long)off, pos + k, (unsigned long long)target,
                                 pe->size_of_image);
            uint8_t *p = o->img + target;
            vmc__pe_put64(p, vmc__pe_u64(p) + delta);
            o->nrelocs++;
        }
        pos += bsize;
    }
    return 0;
}
