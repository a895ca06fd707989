/* Unwind tables of private libraries.
 *
 * The unwinder behind C++ exceptions and backtrace() (libgcc's) finds the
 * frame description of a return address through dl_iterate_phdr, which does
 * not list private libraries: an exception thrown and caught inside a private
 * C++ library would call std::terminate.  The unwinder also keeps a list of
 * .eh_frame sections registered with __register_frame, searched first; each
 * private library that has a PT_GNU_EH_FRAME goes on it with the
 * unwinder's __register_frame (which unwinder, and when, the lifecycle
 * decides: src/lib/unwinder.c) and comes off with __deregister_frame before
 * its image is given back.
 *
 * .eh_frame is found through .eh_frame_hdr's eh_frame_ptr, in the encodings
 * linkers emit (pc-relative or absolute, 4 or 8 bytes), and must lie in a
 * readable segment.  Inert loads register nothing: the unwinder would read
 * the table when some other frame is unwound.
 */
#include "elf/elf.h"

#include <string.h>

#define DW_EH_PE_absptr  0x00
#define DW_EH_PE_udata4  0x03
#define DW_EH_PE_sdata4  0x0b
#define DW_EH_PE_sdata8  0x0c
#define DW_EH_PE_pcrel   0x10


/* The link-time address of .eh_frame, or 0. */
static uint64_t eh_frame_vaddr(const vmc_elf_obj_t *l)
{
    uint64_t hv = l->elf.ehhdr_vaddr;
    const uint8_t *h = l->elf.ehhdr_size >= 12 ? vmc__elf_ptr(l, hv, 12) : NULL;
    if (!h || h[0] != 1) return 0;
    int32_t s4;
    uint32_t u4;
    int64_t s8;
    switch (h[1]) {
    case DW_EH_PE_pcrel | DW_EH_PE_sdata4:
        memcpy(&s4, h + 4, 4);
        return hv + 4 + (uint64_t)(int64_t)s4;
    case DW_EH_PE_pcrel | DW_EH_PE_sdata8:
        memcpy(&s8, h + 4, 8);
        return hv + 4 + (uint64_t)s8;
    case DW_EH_PE_udata4:
        memcpy(&u4, h + 4, 4);
        return u4;
    case DW_EH_PE_absptr:
        memcpy(&s8, h + 4, 8);
        return (uint64_t)s8;
    default:
        return 0;
    }
}

void vmc__elf_unwind_register(vmc_elf_obj_t *l, void (*reg)(void *), void (*dereg)(void *))
{
    if (!l->elf.ehhdr_size || l->eh_frame) return;
    uint64_t va = eh_frame_vaddr(l);
    /* at least the first entry's length word, readable */
    if (!va || !vmc__elf_ptr(l, va, 4)) return;
    l->eh_frame = (void *)(l->bias + va);
    l->eh_deregister = dereg;
    reg(l->eh_frame);
}

void vmc__elf_unwind_deregister(vmc_elf_obj_t *l)
{
    if (!l->eh_frame) return;
    l->eh_deregister(l->eh_frame);
    l->eh_frame = NULL;
}
