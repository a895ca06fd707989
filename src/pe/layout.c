/* The image in memory: SizeOfImage bytes, the headers and each section's
 * file bytes copied to their RVAs, everything else zero (a section's tail
 * past SizeOfRawData, the gaps between sections), as the Windows loader
 * lays a DLL out.  The memory is zero already (freshly committed, or
 * calloc'd): writing zeros would only touch every page of .bss too.  A section's raw bytes past its VirtualSize are file
 * padding and are not copied, so no section writes over the next one.
 *
 * After the layout every directory is read here, by RVA, never in the file:
 * the reads below check that a range lies inside the image before it is
 * touched (the bytes are the loader's copy; a later write to the file
 * changes nothing).
 */
#include "pe/pe.h"

#include <string.h>

void vmc__pe_layout(vmc_pe_obj_t *o, const uint8_t *file, uint8_t *img)
{
    const vmc_pe_t *pe = &o->pe;
    o->img = img;
    memcpy(img, file, pe->size_of_headers);
    for (uint32_t i = 0; i < pe->nsect; i++) {
        const vmc_pe_sect_t *s = &pe->sect[i];
        if (s->copy) memcpy(img + s->va, file + s->raw, s->copy);
    }
}

int vmc__pe_in_image(const vmc_pe_t *pe, uint64_t rva, uint64_t size)
{
    return rva <= pe->size_of_image && size <= pe->size_of_image - rva;
}

const vmc_pe_sect_t *vmc__pe_sect(const vmc_pe_t *pe, uint64_t rva, uint64_t size)
{
    for (uint32_t i = 0; i < pe->nsect; i++) {
        const vmc_pe_sect_t *s = &pe->sect[i];
        if (rva >= s->va && rva - s->va <= s->vsize && size <= s->vsize - (rva - s->va)) return s;
    }
    return NULL;
}

uint64_t vmc__pe_offset(const vmc_pe_t *pe, uint64_t rva)
{
    if (rva < pe->size_of_headers) return rva;
    const vmc_pe_sect_t *s = vmc__pe_sect(pe, rva, 0);
    return s && rva - s->va < s->copy ? s->raw + (rva - s->va) : rva;
}

const char *vmc__pe_str(const vmc_pe_obj_t *o, uint64_t rva)
{
    if (!rva || rva >= o->pe.size_of_image) return NULL;
    size_t room = o->pe.size_of_image - rva;
    if (room > VMC_PE_MAX_NAME) room = VMC_PE_MAX_NAME;
    const char *s = (const char *)o->img + rva;
    return memchr(s, 0, room) ? s : NULL;
}
