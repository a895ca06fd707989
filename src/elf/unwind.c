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
 *
 * With libgcc's unwinder, the record it keeps of a table (its struct
 * object) is the library's own (eh_ob), given to the functions beneath
 * __register_frame and __deregister_frame: those two are each a lazily
 * bound call of libgcc_s to the next, plus its malloc or free, and each
 * such call's first run is a symbol look-up of the system loader: 7,600
 * instructions of a process's first load, 2,000 this way (libgcc's two
 * locks bound lazily all the same).  Which calls depends on how that
 * libgcc keeps its records:
 *  - GCC 12 and before keep a list: registering reads nothing of the
 *    table, and __deregister_frame_info_bases finds a record by the pointer
 *    it was registered with.  There the table goes in as a table of one
 *    .eh_frame (__register_frame_info_table_bases), which, unlike
 *    __register_frame_info_bases, does not read its first word: a page
 *    fault fewer in the library's read-only data.
 *  - GCC 13 and later keep a b-tree of PC ranges: registering reads all of
 *    .eh_frame to find its range, and __deregister_frame_info_bases reads
 *    what it is given as one .eh_frame to find the range again.  Given a
 *    table's address, it reads the table's pointers as frame entries (and
 *    crashes): there the table goes in as itself
 *    (__register_frame_info_bases) and is taken back by its address.
 * The lifecycle tells which (lib/unwinder.c): reg_table_bases is set only
 * for the first kind.
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
    l->eh_key = NULL;
    memset(l->eh_ob, 0, sizeof l->eh_ob);
    /* A table of one reads nothing now; libgcc takes it back by the
     * table's address, after checking the table's first 32-bit word is
     * not 0 (its test for an empty .eh_frame): so not when .eh_frame's
     * address has a low word of 0 (__register_frame then). */
    if (u->reg_table_bases && u->dereg_bases && (uint32_t)(uintptr_t)l->eh_frame) {
        l->eh_table[0] = l->eh_frame;
        l->eh_table[1] = NULL;
        l->eh_key = l->eh_table;
        u->reg_table_bases(l->eh_table, l->eh_ob, NULL, NULL);
    } else if (u->reg_bases && u->dereg_bases) {
        l->eh_key = l->eh_frame;
        u->reg_bases(l->eh_frame, l->eh_ob, NULL, NULL);
    } else {
        u->reg(l->eh_frame);
    }
}

VMC_LOAD_PATH void vmc__elf_unwind_deregister(vmc_elf_obj_t *l)
{
    if (!l->eh_frame) return;
    if (l->eh_key) (void)l->eh_unwinder->dereg_bases(l->eh_key);  /* returns eh_ob, ours */
    else l->eh_unwinder->dereg(l->eh_frame);
    l->eh_frame = NULL;
    l->eh_key = NULL;
}
