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
 * readable segment.  Those 12 bytes are read from the file with the rest of
 * what the load reads (vmc__elf_unwind_read), not through the image: the
 * first read of the read-only segment holding them costs a page fault that
 * maps up to 16 pages, several microseconds on a virtual machine
 * (docs/loader.md, "Cost").  Inert
 * loads register nothing: the unwinder would read the table when some
 * other frame is unwound.
 */
#include "elf/elf.h"
#include "base/attrs.h"
#include "base/error.h"
#include "os/os.h"

#include <string.h>

#define DW_EH_PE_absptr  0x00
#define DW_EH_PE_udata4  0x03
#define DW_EH_PE_sdata4  0x0b
#define DW_EH_PE_sdata8  0x0c
#define DW_EH_PE_pcrel   0x10


/* The link-time address of .eh_frame from the first 12 bytes of
 * .eh_frame_hdr at hv, or 0. */
static uint64_t eh_frame_vaddr(uint64_t hv, const uint8_t *h)
{
    if (h[0] != 1) return 0;
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

VMC_LOAD_PATH int vmc__elf_unwind_read(vmc_elf_obj_t *l, const vmc_src_t *src)
{
    uint64_t hv = l->elf.ehhdr_vaddr;
    const vmc_seg_t *s = l->elf.ehhdr_size >= 12 ? vmc__elf_seg(&l->elf, hv, 12, 0) : NULL;
    l->eh_frame_va = 0;
    if (!s || !(s->flags & PF_R)) return 0;
    uint64_t off = s->offset + (hv - s->vaddr);
    uint8_t h[12];
    size_t got = sizeof h;
    if (src->fd < 0) {
        memcpy(h, src->bytes + off, sizeof h);
    } else {
        int e = vmc__os_pread(src->fd, h, sizeof h, (off_t)off, &got);
        if (e) return vmc__fail(e, "%s: reading PT_GNU_EH_FRAME (offset 0x%lx): %s", l->name, (unsigned long)off,
                                strerror(-e));
        if (got != sizeof h) return 0;   /* the file shrank: nothing to register */
    }
    uint64_t va = eh_frame_vaddr(hv, h);
    /* at least the first entry's length word, readable */
    if (va && vmc__elf_ptr(l, va, 4)) l->eh_frame_va = va;
    return 0;
}

VMC_LOAD_PATH void vmc__elf_unwind_register(vmc_elf_obj_t *l, const vmc_elf_unwinder_t *u)
{
    if (!l->eh_frame_va || l->eh_frame) return;
    l->eh_unwinder = u;
    l->eh_frame = (void *)(l->bias + l->eh_frame_va);
    u->reg(l->eh_frame);
}

VMC_LOAD_PATH void vmc__elf_unwind_deregister(vmc_elf_obj_t *l)
{
    if (!l->eh_frame) return;
    l->eh_unwinder->dereg(l->eh_frame);
    l->eh_frame = NULL;
}
