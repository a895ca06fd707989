/* What the introspection of private code needs of an ELF image: its
 * program headers as mapped (for dl_iterate_phdr), its PT_GNU_EH_FRAME (for
 * _dl_find_object), the exported symbol nearest an address (for
 * vmc_addr_info) and the one covering it (for dladdr).
 */
#include "elf/elf.h"
#include "base/attrs.h"

VMC_LOAD_PATH const Elf64_Phdr *vmc__elf_image_phdrs(const vmc_elf_obj_t *l)
{
    uint64_t size = (uint64_t)l->elf.phnum * sizeof(Elf64_Phdr), end;
    if (!add_ok(l->elf.phoff, size, &end)) return NULL;
    for (int i = 0; i < l->elf.nload; i++) {
        const vmc_seg_t *s = &l->elf.load[i];
        if (l->elf.phoff >= s->offset && end <= s->offset + s->filesz)
            return (const Elf64_Phdr *)(l->bias + s->vaddr + (l->elf.phoff - s->offset));
    }
    return NULL;
}

VMC_LOAD_PATH const void *vmc__elf_image_eh_hdr(const vmc_elf_obj_t *l)
{
    if (!l->elf.ehhdr_size) return NULL;
    const vmc_seg_t *s = vmc__elf_seg(&l->elf, l->elf.ehhdr_vaddr, l->elf.ehhdr_size, 0);
    return s && (s->flags & PF_R) ? (const void *)(l->bias + l->elf.ehhdr_vaddr) : NULL;
}

/* Defined, global or weak, default or protected: what dladdr would name
 * (neither TLS, whose value is an offset, nor absolute). */
static int exported(const vmc_elf_obj_t *l, const Elf64_Sym *s)
{
    int bind = ELF64_ST_BIND(s->st_info), type = ELF64_ST_TYPE(s->st_info);
    int vis = ELF64_ST_VISIBILITY(s->st_other);
    return s->st_shndx != SHN_UNDEF && s->st_shndx != SHN_ABS && (bind == STB_GLOBAL || bind == STB_WEAK) &&
           (vis == STV_DEFAULT || vis == STV_PROTECTED) && type != STT_TLS && type != STT_SECTION &&
           type != STT_FILE && s->st_name < l->strsz;
}

int vmc__elf_nearest(const vmc_elf_obj_t *l, uintptr_t a, const char **name, uintptr_t *addr, size_t *size)
{
    if (a < l->bias) return 0;
    uint64_t va = a - l->bias;
    const vmc_seg_t *seg = vmc__elf_seg(&l->elf, va, 1, 1);
    if (!seg) return 0;
    const Elf64_Sym *best = NULL;
    for (size_t i = 1; i < l->nsyms; i++) {
        const Elf64_Sym *s = &l->symtab[i];
        if (s->st_value > va || s->st_value < seg->vaddr || !exported(l, s)) continue;
        /* the highest wins; at one address, one that covers va, then a
         * function over an object, so that aliases give a stable answer */
        if (best && s->st_value < best->st_value) continue;
        if (best && s->st_value == best->st_value) {
            int sc = va < s->st_value + s->st_size, bc = va < best->st_value + best->st_size;
            if (sc < bc || (sc == bc && ELF64_ST_TYPE(best->st_info) == STT_FUNC)) continue;
        }
        best = s;
    }
    if (!best) return 0;
    *name = l->strtab + best->st_name;
    *addr = l->bias + best->st_value;
    *size = best->st_size;
    return 1;
}

const Elf64_Sym *vmc__elf_covering(const vmc_elf_obj_t *l, uintptr_t a)
{
    if (a < l->bias) return NULL;
    uint64_t va = a - l->bias;
    const Elf64_Sym *best = NULL;
    for (size_t i = 1; i < l->nsyms; i++) {
        const Elf64_Sym *s = &l->symtab[i];
        if (s->st_value > va || !exported(l, s)) continue;
        if (va - s->st_value >= s->st_size && !(s->st_size == 0 && va == s->st_value)) continue;
        /* the highest start wins (the innermost); at one address, a
         * function over an object, then the first in the table */
        if (best && s->st_value < best->st_value) continue;
        if (best && s->st_value == best->st_value &&
            (ELF64_ST_TYPE(best->st_info) == STT_FUNC || ELF64_ST_TYPE(s->st_info) != STT_FUNC))
            continue;
        best = s;
    }
    return best;
}
