/* Binding one symbol a relocation names: what the ELF symbol itself says
 * (local, defined here, its version, weak or strong), and the messages when
 * nothing defines it.  The scope beyond the object itself (other private
 * libraries, the host) is the lifecycle's, asked through env->resolve.
 */
#include "elf/elf.h"
#include "base/attrs.h"
#include "base/error.h"

#include <errno.h>
#include <stdio.h>

/* "DT_RELA entry 5", or the tag alone when index is (size_t)-1. */
static const char *what_text(char *buf, size_t len, const char *tag, size_t index)
{
    if (index == (size_t)-1) snprintf(buf, len, "%s", tag);
    else snprintf(buf, len, "%s entry %zu", tag, index);
    return buf;
}

VMC_LOAD_PATH int vmc__elf_bind(vmc_elf_obj_t *l, size_t symidx, uintptr_t *value, int *ifunc, const char *tag,
                                 size_t index)
{
    char what[64];
    const Elf64_Sym *s = &l->symtab[symidx];
    const char *name = l->strtab + s->st_name;
    int bind = ELF64_ST_BIND(s->st_info);
    *ifunc = 0;
    *value = 0;
    l->bound_from = VMC_BOUND_SELF;
    l->bound_obj = l;
    l->bound_final = 0;
    if (symidx == 0) return 0;
    if (bind == STB_LOCAL || (s->st_shndx != SHN_UNDEF && ELF64_ST_VISIBILITY(s->st_other) != STV_DEFAULT)) {
        if (s->st_shndx == SHN_UNDEF)
            return vmc__fail(-ENOEXEC, "%s: %s: local symbol %zu \"%s\" is undefined", l->name,
                             what_text(what, sizeof what, tag, index), symidx, name);
        *value = vmc__elf_sym_addr(l, s);
        *ifunc = ELF64_ST_TYPE(s->st_info) == STT_GNU_IFUNC;
        return 0;
    }
    const vmc_ver_t *ver = vmc__elf_sym_version(l, symidx);
    if (l->runtime_first && s->st_shndx != SHN_UNDEF && ELF64_ST_TYPE(s->st_info) != STT_TLS &&
        l->env->runtime(l, name, ver, value)) {
        l->bound_from = VMC_BOUND_HOST;
        l->bound_obj = NULL;
        return 0;
    }
    /* A reference to a symbol the library defines is bound to that symbol:
     * a look-up of its name in the library would find it (the only other
     * answers: a second definition of the same name and version, or a
     * definition the hash tables do not reach, neither of which linkers
     * emit), without hashing the name. */
    if (s->st_shndx != SHN_UNDEF && vmc__elf_defines(l, symidx, name, ver)) {
        *value = vmc__elf_sym_addr(l, s);
        *ifunc = ELF64_ST_TYPE(s->st_info) == STT_GNU_IFUNC;
        return 0;
    }
    const vmc_name_t key = vmc__elf_name(name);
    l->bound_hash = key.gnu;
    if (vmc__elf_find(l, &key, ver, value, ifunc)) return 0;
    int found = l->env->resolve(l, &key, ver, value, ifunc, tag, index);
    if (found < 0) return found;
    if (found) return 0;
    l->bound_from = VMC_BOUND_WEAK_ZERO;
    if (bind == STB_WEAK) return 0;
    what_text(what, sizeof what, tag, index);  /* only now: most symbols bind */
    const char *hint = l->env->missing_hint ? l->env->missing_hint(l, name) : "";
    if (ver)
        return vmc__fail(-ENOENT, "%s: %s: undefined symbol %s version %s (from %s)%s", l->name, what, name,
                         ver->name, ver->file ? ver->file : l->name, hint);
    return vmc__fail(-ENOENT, "%s: %s: undefined symbol %s%s", l->name, what, name, hint);
}
