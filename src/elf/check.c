/* ELF validation: everything checked before anything is mapped.
 *
 * Every field of the ELF header and of each program header is hostile until
 * checked.  Ranges are compared with overflow-safe arithmetic (a + b never
 * computed before knowing it cannot wrap); the program header table is capped
 * at 64 KiB as bionic's ElfReader does; PT_LOAD segments must be sorted and,
 * rounded to pages, must not overlap, so that mapping one never replaces
 * another.  Refusals are "NAME: WHAT (offset ...): PROBLEM": -ENOEXEC for a
 * file that is malformed or that no loader of this machine would load,
 * -ENOTSUP for a valid library using a feature this loader does not take
 * (the system loader would: the caller may fall back to dlopen).
 *
 * Refused as unsupported (policies of the region, or not implemented):
 * writable+executable segments, an executable stack (PT_GNU_STACK with
 * PF_X), more PT_LOADs or program headers than the loader's tables hold.  PT_INTERP is no refusal: shared
 * libraries that can also be run as programs (libc.so.6, libcap.so.2) have
 * one, and the system loader ignores it when loading a library; it is a
 * position-independent executable (DF_1_PIE, dyn.c) that it refuses.
 *
 * PT_TLS (at most one): its alignment a power of two up to
 * VMC_ELF_MAX_TLS_ALIGN, p_filesz <= p_memsz <= VMC_ELF_MAX_TLS_SIZE, and its
 * initialisation image (.tdata, p_filesz bytes at p_vaddr) inside the file
 * part of one readable PT_LOAD, where every thread's block is copied from.
 */
#include "elf/elf.h"
#include "base/attrs.h"
#include "arch/reloc.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <string.h>

/* User-space addresses end below the architecture's top; nothing in an
 * image may go past. */
#define VADDR_LIMIT ((uint64_t)VMC_ARCH_USER_TOP)

static int is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

VMC_LOAD_PATH int vmc__elf_check_ehdr(const char *name, const uint8_t *hdr, size_t hdrlen, uint64_t file_size,
                        uint64_t *phoff, unsigned *phnum)
{
    if (file_size < sizeof(Elf64_Ehdr) || hdrlen < sizeof(Elf64_Ehdr))
        return vmc__fail(-ENOEXEC, "%s: ELF header (offset 0x0+0x40): file is 0x%lx bytes, too short",
                         name, (unsigned long)file_size);
    Elf64_Ehdr eh;
    memcpy(&eh, hdr, sizeof eh);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG))
        return vmc__fail(-ENOEXEC, "%s: ELF header e_ident (offset 0x0): not an ELF file", name);
    if (eh.e_ident[EI_CLASS] != ELFCLASS64)
        return vmc__fail(-ENOEXEC, "%s: ELF header e_ident[EI_CLASS] (offset 0x4): class %u is not ELFCLASS64",
                         name, eh.e_ident[EI_CLASS]);
    if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return vmc__fail(-ENOEXEC, "%s: ELF header e_ident[EI_DATA] (offset 0x5): encoding %u is not little-endian",
                         name, eh.e_ident[EI_DATA]);
    if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT)
        return vmc__fail(-ENOEXEC, "%s: ELF header e_version (offset 0x14): version %u is not EV_CURRENT",
                         name, eh.e_version);
    if (eh.e_type != ET_DYN)
        return vmc__fail(-ENOEXEC, "%s: ELF header e_type (offset 0x10): type %u is not ET_DYN", name,
                         eh.e_type);
    if (eh.e_machine != vmc__arch_elf_machine())
        return vmc__fail(-ENOEXEC, "%s: ELF header e_machine (offset 0x12): machine %u is not %s",
                         name, eh.e_machine, vmc__arch_elf_machine_name());
    if (eh.e_phentsize != sizeof(Elf64_Phdr))
        return vmc__fail(-ENOEXEC, "%s: ELF header e_phentsize (offset 0x36): %u is not %zu", name,
                         eh.e_phentsize, sizeof(Elf64_Phdr));
    if (eh.e_phnum < 1)
        return vmc__fail(-ENOEXEC, "%s: ELF header e_phnum (offset 0x38): no program headers", name);
    if (eh.e_phnum > VMC_ELF_MAX_PHDRS)
        return vmc__fail(-ENOTSUP, "%s: ELF header e_phnum (offset 0x38): %u program headers are not "
                         "supported (at most %zu)", name, eh.e_phnum, VMC_ELF_MAX_PHDRS);
    uint64_t end;
    if (!add_ok(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), &end) || end > file_size)
        return vmc__fail(-ENOEXEC,
                         "%s: ELF header e_phoff (offset 0x20): program header table 0x%lx+0x%lx "
                         "is past the end of the file (0x%lx bytes)",
                         name, (unsigned long)eh.e_phoff,
                         (unsigned long)(eh.e_phnum * sizeof(Elf64_Phdr)), (unsigned long)file_size);
    if (eh.e_phoff % 8)
        return vmc__fail(-ENOEXEC, "%s: ELF header e_phoff (offset 0x20): 0x%lx is not 8-byte aligned",
                         name, (unsigned long)eh.e_phoff);
    *phoff = eh.e_phoff;
    *phnum = eh.e_phnum;
    return 0;
}

/* "program header 3 (offset 0x40+0xa8)": malformed (PH_FAIL) or a valid
 * feature this loader does not take (PH_UNSUP, which names it). */
#define PH_FAIL(e, i, ...)                                                                 \
    vmc__fail(-ENOEXEC, "%s: program header %u (offset 0x%lx+0x%lx): " __VA_ARGS__)
#define PH_UNSUP(e, i, ...)                                                                \
    vmc__fail(-ENOTSUP, "%s: program header %u (offset 0x%lx+0x%lx): " __VA_ARGS__)
#define PH_ARGS(e, i) (e)->name, (unsigned)(i), (unsigned long)(e)->phoff, \
    (unsigned long)((i) * sizeof(Elf64_Phdr))

static int check_load(vmc_elf_t *e, unsigned i, const Elf64_Phdr *p, size_t page)
{
    uint64_t fend, vend;
    if (!add_ok(p->p_offset, p->p_filesz, &fend) || fend > e->file_size)
        return PH_FAIL(e, i, "p_offset 0x%lx + p_filesz 0x%lx is past the end of the file (0x%lx bytes)",
                       PH_ARGS(e, i), (unsigned long)p->p_offset, (unsigned long)p->p_filesz,
                       (unsigned long)e->file_size);
    if (p->p_filesz > p->p_memsz)
        return PH_FAIL(e, i, "p_filesz 0x%lx > p_memsz 0x%lx", PH_ARGS(e, i),
                       (unsigned long)p->p_filesz, (unsigned long)p->p_memsz);
    if (!add_ok(p->p_vaddr, p->p_memsz, &vend) || vend > VADDR_LIMIT)
        return PH_FAIL(e, i, "p_vaddr 0x%lx + p_memsz 0x%lx is past the address space", PH_ARGS(e, i),
                       (unsigned long)p->p_vaddr, (unsigned long)p->p_memsz);
    if (p->p_align > 1 && !is_pow2(p->p_align))
        return PH_FAIL(e, i, "p_align 0x%lx is not a power of two", PH_ARGS(e, i),
                       (unsigned long)p->p_align);
    if (p->p_align > 1 && p->p_offset % p->p_align != p->p_vaddr % p->p_align)
        return PH_FAIL(e, i, "p_offset 0x%lx and p_vaddr 0x%lx are not congruent modulo p_align 0x%lx",
                       PH_ARGS(e, i), (unsigned long)p->p_offset, (unsigned long)p->p_vaddr,
                       (unsigned long)p->p_align);
    if (p->p_offset % page != p->p_vaddr % page)
        return PH_FAIL(e, i, "p_offset 0x%lx and p_vaddr 0x%lx are not congruent modulo the page size 0x%zx",
                       PH_ARGS(e, i), (unsigned long)p->p_offset, (unsigned long)p->p_vaddr, page);
    if ((p->p_flags & PF_W) && (p->p_flags & PF_X))
        return PH_UNSUP(e, i, "a writable and executable segment (p_flags 0x%x) is not supported",
                        PH_ARGS(e, i), p->p_flags);
    /* The bss part of a segment's last file page must be zeroed, which needs
     * the page writable for a moment: never for an executable segment. */
    if ((p->p_flags & PF_X) && p->p_memsz > p->p_filesz && p->p_filesz && (p->p_vaddr + p->p_filesz) % page)
        return PH_UNSUP(e, i, "an executable segment with a zero-filled tail in its last file page "
                              "(p_filesz 0x%lx, p_memsz 0x%lx) is not supported: zeroing it would make "
                              "the page writable and executable",
                        PH_ARGS(e, i), (unsigned long)p->p_filesz, (unsigned long)p->p_memsz);
    if (p->p_memsz == 0) return 0;  /* an empty PT_LOAD maps nothing */
    if (e->nload == VMC_ELF_MAX_LOADS)
        return PH_UNSUP(e, i, "more than %d PT_LOAD segments are not supported", PH_ARGS(e, i),
                        VMC_ELF_MAX_LOADS);
    if (e->nload) {
        const vmc_seg_t *prev = &e->load[e->nload - 1];
        uint64_t prev_end = (prev->vaddr + prev->memsz + page - 1) & ~(uint64_t)(page - 1);
        if (p->p_vaddr < prev->vaddr)
            return PH_FAIL(e, i, "PT_LOAD p_vaddr 0x%lx is below the previous one's 0x%lx (not sorted)",
                           PH_ARGS(e, i), (unsigned long)p->p_vaddr, (unsigned long)prev->vaddr);
        if ((p->p_vaddr & ~(uint64_t)(page - 1)) < prev_end)
            return PH_FAIL(e, i, "PT_LOAD p_vaddr 0x%lx overlaps program header %u's pages (up to 0x%lx)",
                           PH_ARGS(e, i), (unsigned long)p->p_vaddr, prev->index,
                           (unsigned long)prev_end);
    }
    vmc_seg_t *s = &e->load[e->nload++];
    s->vaddr = p->p_vaddr;
    s->memsz = p->p_memsz;
    s->offset = p->p_offset;
    s->filesz = p->p_filesz;
    s->flags = p->p_flags;
    s->index = i;
    if (p->p_align > e->align) e->align = p->p_align;
    return 0;
}

static int check_tls(vmc_elf_t *e, unsigned i, const Elf64_Phdr *ph)
{
    Elf64_Phdr p;
    memcpy(&p, ph, sizeof p);
    uint64_t align = p.p_align ? p.p_align : 1;
    if (!is_pow2(align) || align > VMC_ELF_MAX_TLS_ALIGN)
        return PH_FAIL(e, i, "PT_TLS p_align 0x%lx is not a power of two up to 0x%lx", PH_ARGS(e, i),
                       (unsigned long)p.p_align, (unsigned long)VMC_ELF_MAX_TLS_ALIGN);
    if (p.p_filesz > p.p_memsz)
        return PH_FAIL(e, i, "PT_TLS p_filesz 0x%lx > p_memsz 0x%lx", PH_ARGS(e, i), (unsigned long)p.p_filesz,
                       (unsigned long)p.p_memsz);
    if (p.p_memsz > VMC_ELF_MAX_TLS_SIZE)
        return PH_FAIL(e, i, "PT_TLS p_memsz 0x%lx is over the 0x%lx bytes accepted", PH_ARGS(e, i),
                       (unsigned long)p.p_memsz, (unsigned long)VMC_ELF_MAX_TLS_SIZE);
    const vmc_seg_t *s = p.p_filesz ? vmc__elf_seg(e, p.p_vaddr, p.p_filesz, 0) : NULL;
    if (p.p_filesz && (!s || !(s->flags & PF_R) || p.p_offset != s->offset + (p.p_vaddr - s->vaddr)))
        return PH_FAIL(e, i, "PT_TLS 0x%lx+0x%lx (its .tdata) is not inside the file part of a readable PT_LOAD",
                       PH_ARGS(e, i), (unsigned long)p.p_vaddr, (unsigned long)p.p_filesz);
    e->has_tls = 1;
    e->tls_index = i;
    e->tls_vaddr = p.p_vaddr;
    e->tls_filesz = p.p_filesz;
    e->tls_memsz = p.p_memsz;
    e->tls_align = align;
    return 0;
}

VMC_LOAD_PATH const vmc_seg_t *vmc__elf_seg(const vmc_elf_t *e, uint64_t vaddr, uint64_t size, int mem)
{
    for (int i = 0; i < e->nload; i++) {
        const vmc_seg_t *s = &e->load[i];
        uint64_t len = mem ? s->memsz : s->filesz;
        if (vaddr >= s->vaddr && vaddr - s->vaddr <= len && size <= len - (vaddr - s->vaddr))
            return s;
    }
    return NULL;
}

VMC_LOAD_PATH uint64_t vmc__elf_offset(const vmc_elf_t *e, uint64_t vaddr)
{
    const vmc_seg_t *s = vmc__elf_seg(e, vaddr, 0, 0);
    return s ? s->offset + (vaddr - s->vaddr) : vaddr;
}

VMC_LOAD_PATH int vmc__elf_check_phdrs(vmc_elf_t *e, const Elf64_Phdr *ph)
{
    size_t page = vmc__os_page_size();
    int ndyn = 0, r;
    unsigned dyn_index = 0;
    const Elf64_Phdr *relro = NULL;
    unsigned relro_index = 0;
    const Elf64_Phdr *tls = NULL;
    unsigned tls_index = 0;
    e->nload = 0;
    e->has_tls = 0;
    e->align = page;
    e->ehhdr_size = 0;
    for (unsigned i = 0; i < e->phnum; i++) {
        Elf64_Phdr p;
        memcpy(&p, &ph[i], sizeof p);
        switch (p.p_type) {
        case PT_LOAD:
            if ((r = check_load(e, i, &p, page))) return r;
            break;
        case PT_DYNAMIC:
            if (++ndyn > 1)
                return PH_FAIL(e, i, "a second PT_DYNAMIC", PH_ARGS(e, i));
            e->dyn_vaddr = p.p_vaddr;
            e->dyn_offset = p.p_offset;
            e->dyn_size = p.p_filesz;
            dyn_index = i;
            break;
        case PT_TLS:
            if (tls)
                return PH_FAIL(e, i, "a second PT_TLS (the first is program header %u)", PH_ARGS(e, i),
                               tls_index);
            tls = &ph[i];
            tls_index = i;
            break;
        case PT_GNU_STACK:
            if (p.p_flags & PF_X)
                return PH_UNSUP(e, i, "an executable stack (PT_GNU_STACK with PF_X) is not supported",
                                PH_ARGS(e, i));
            break;
        case PT_GNU_RELRO:
            relro = &ph[i];
            relro_index = i;
            break;
        case PT_GNU_EH_FRAME:  /* only located here; unwind.c checks its use */
            e->ehhdr_vaddr = p.p_vaddr;
            e->ehhdr_size = p.p_memsz;
            break;
        default:
            break;
        }
    }
    if (e->nload == 0)
        return vmc__fail(-ENOEXEC, "%s: program headers (offset 0x%lx): no PT_LOAD segment", e->name,
                         (unsigned long)e->phoff);
    if (ndyn == 0)
        return vmc__fail(-ENOEXEC, "%s: program headers (offset 0x%lx): no PT_DYNAMIC segment", e->name,
                         (unsigned long)e->phoff);
    {
        unsigned i = dyn_index;
        uint64_t end;
        if (e->dyn_size < sizeof(Elf64_Dyn) || e->dyn_size % sizeof(Elf64_Dyn) ||
            e->dyn_vaddr % 8)
            return PH_FAIL(e, i, "PT_DYNAMIC p_vaddr 0x%lx p_filesz 0x%lx is not a table of Elf64_Dyn",
                           PH_ARGS(e, i), (unsigned long)e->dyn_vaddr, (unsigned long)e->dyn_size);
        const vmc_seg_t *s = vmc__elf_seg(e, e->dyn_vaddr, e->dyn_size, 0);
        if (!s || !add_ok(e->dyn_offset, e->dyn_size, &end) ||
            e->dyn_offset != s->offset + (e->dyn_vaddr - s->vaddr))
            return PH_FAIL(e, i, "PT_DYNAMIC 0x%lx+0x%lx is not inside the file part of a PT_LOAD",
                           PH_ARGS(e, i), (unsigned long)e->dyn_vaddr, (unsigned long)e->dyn_size);
    }
    e->relro_size = 0;
    if (relro) {
        Elf64_Phdr p;
        memcpy(&p, relro, sizeof p);
        if (p.p_memsz) {
            const vmc_seg_t *s = vmc__elf_seg(e, p.p_vaddr, p.p_memsz, 1);
            if (!s || !(s->flags & PF_W))
                return PH_FAIL(e, relro_index, "PT_GNU_RELRO 0x%lx+0x%lx is not inside a writable PT_LOAD",
                               PH_ARGS(e, relro_index), (unsigned long)p.p_vaddr,
                               (unsigned long)p.p_memsz);
            e->relro_vaddr = p.p_vaddr;
            e->relro_size = p.p_memsz;
        }
    }
    if (tls && (r = check_tls(e, tls_index, tls))) return r;
    e->lo = e->load[0].vaddr & ~(uint64_t)(page - 1);
    const vmc_seg_t *last = &e->load[e->nload - 1];
    e->hi = (last->vaddr + last->memsz + page - 1) & ~(uint64_t)(page - 1);
    if (e->align > VMC_ELF_MAX_ALIGN) e->align = VMC_ELF_MAX_ALIGN;
    return 0;
}
