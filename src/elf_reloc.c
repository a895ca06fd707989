/* Relocations: DT_RELR, then DT_RELA and DT_JMPREL, IFUNCs last.
 *
 * Binding is always eager.  Every target address (r_offset, or each address
 * a RELR entry names) is checked to lie inside a writable PT_LOAD before it
 * is written: outside the image is refused, and inside a read-only segment
 * is a text relocation and refused too.  Symbol indices are checked against
 * the symbol count.
 *
 * Types: NONE, RELATIVE (B + A), 64 (S + A), GLOB_DAT and JUMP_SLOT (S, no
 * addend, as glibc does), IRELATIVE (call the resolver at B + A), and any
 * symbol of type STT_GNU_IFUNC (call its resolver).  COPY is refused (it is
 * for executables), as is anything else, by number (TLS relocations among
 * them: no TLS in private libraries yet).
 *
 * Resolvers run in a second pass, after every other relocation, because
 * they read the library's data through its GOT (the linker sorts IRELATIVE
 * last for the same reason).  When DT_RELA's range covers DT_JMPREL's (older
 * linkers did that), the overlap is processed once.
 */
#include "loader.h"
#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rtab {
    const char *tag;             /* "DT_RELA", "DT_JMPREL", "DT_RELR"       */
    uint64_t va, size;
} rtab_t;

static int entry_fail(vmc_lib_t *l, const rtab_t *t, size_t i, size_t entsize, const char *msg)
{
    return vmc__fail(-ENOEXEC, "%s: %s entry %zu (offset 0x%lx+0x%lx): %s", l->name, t->tag, i,
                     (unsigned long)vmc__elf_offset(&l->elf, t->va), (unsigned long)(i * entsize), msg);
}

/* Targets need not be 8-byte aligned (a packed structure may hold a
 * pointer): read and write them as bytes. */
static uint64_t load64(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static void store64(uint8_t *p, uint64_t x) { memcpy(p, &x, 8); }

/* The 8 bytes at vaddr va, if they may be written. */
static int target(vmc_lib_t *l, const rtab_t *t, size_t i, size_t entsize, uint64_t va, uint8_t **p)
{
    char msg[160];
    const vmc_seg_t *s = l->reloc_seg;  /* relocations come in runs over one segment */
    if (!s || va < s->vaddr || va - s->vaddr > s->memsz || 8 > s->memsz - (va - s->vaddr))
        l->reloc_seg = s = vmc__elf_seg(&l->elf, va, 8, 1);
    if (!s) {
        snprintf(msg, sizeof msg, "target 0x%lx is outside the image (0x%lx..0x%lx)", (unsigned long)va,
                 (unsigned long)l->elf.lo, (unsigned long)l->elf.hi);
        return entry_fail(l, t, i, entsize, msg);
    }
    if (!(s->flags & PF_W)) {
        snprintf(msg, sizeof msg, "target 0x%lx is in read-only program header %u (a text relocation)",
                 (unsigned long)va, s->index);
        return entry_fail(l, t, i, entsize, msg);
    }
    *p = (uint8_t *)(l->bias + va);
    return 0;
}

static int apply_relr(vmc_lib_t *l, const rtab_t *t)
{
    const uint64_t *e = vmc__elf_ptr(l, t->va, t->size);
    size_t n = t->size / 8;
    uint64_t where = 0;
    uint8_t *p;
    int err;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = e[i];
        if (!(x & 1)) {
            if ((err = target(l, t, i, 8, x, &p))) return err;
            store64(p, load64(p) + l->bias);
            l->counts.relr++;
            where = x + 8;
            continue;
        }
        uint64_t at = where;
        for (x >>= 1; x; x >>= 1, at += 8) {
            if (!(x & 1)) continue;
            if ((err = target(l, t, i, 8, at, &p))) return err;
            store64(p, load64(p) + l->bias);
            l->counts.relr++;
        }
        where += 63 * 8;
    }
    return 0;
}

static const char *type_name(unsigned type)
{
    switch (type) {
    case R_X86_64_COPY: return " (R_X86_64_COPY: copy relocations belong in executables)";
    case R_X86_64_DTPMOD64:
    case R_X86_64_DTPOFF64:
    case R_X86_64_TPOFF64:
    case R_X86_64_TPOFF32:
    case R_X86_64_GOTTPOFF:
    case R_X86_64_TLSDESC: return " (thread-local storage is not supported)";
    default: return "";
    }
}

/* Each symbol is bound once per load, however many relocations name it
 * (GLOB_DAT and JUMP_SLOT of one function, both passes). */
typedef struct bound {
    uintptr_t value;
    uint8_t known, ifunc, from;
} bound_t;

static int bind_once(vmc_lib_t *l, bound_t *memo, size_t sym, const rtab_t *t, size_t i, uintptr_t *value,
                     int *ifunc)
{
    bound_t *b = memo ? &memo[sym] : NULL;
    if (!b || !b->known) {
        int err = vmc__bind(l, sym, value, ifunc, t->tag, i);
        if (err) return err;
        if (!b) return 0;
        *b = (bound_t){*value, 1, (uint8_t)*ifunc, (uint8_t)l->bound_from};
    }
    *value = b->value;
    *ifunc = b->ifunc;
    l->bound_from = b->from;
    return 0;
}

/* pass 1: everything but resolvers; pass 2: IRELATIVE and IFUNC symbols. */
static int apply_rela(vmc_lib_t *l, const rtab_t *t, int pass, int *deferred, bound_t *memo)
{
    const Elf64_Rela *rel = vmc__elf_ptr(l, t->va, t->size);
    size_t n = t->size / sizeof(Elf64_Rela);
    char msg[160];
    for (size_t i = 0; i < n; i++) {
        Elf64_Rela r;
        memcpy(&r, &rel[i], sizeof r);
        unsigned type = ELF64_R_TYPE(r.r_info);
        size_t sym = ELF64_R_SYM(r.r_info);
        uint8_t *p;
        uint64_t value;
        int err, ifunc = 0;
        if (type == R_X86_64_NONE) continue;
        if ((err = target(l, t, i, sizeof r, r.r_offset, &p))) return err;
        switch (type) {
        case R_X86_64_RELATIVE:
            if (pass == 1) {
                store64(p, l->bias + (uint64_t)r.r_addend);
                l->counts.relative++;
            }
            break;
        case R_X86_64_IRELATIVE:
            if (pass == 1) {
                (*deferred)++;
                l->counts.irelative++;
                break;
            }
            if ((err = vmc__call_ifunc(l, l->bias + (uint64_t)r.r_addend, &value, t->tag, i))) return err;
            store64(p, value);
            break;
        case R_X86_64_64:
        case R_X86_64_GLOB_DAT:
        case R_X86_64_JUMP_SLOT:
            if (sym >= l->nsyms) {
                snprintf(msg, sizeof msg, "symbol index %zu is past the symbol table (%zu symbols)", sym,
                         l->nsyms);
                return entry_fail(l, t, i, sizeof r, msg);
            }
            uintptr_t bv;
            if ((err = bind_once(l, memo, sym, t, i, &bv, &ifunc))) return err;
            value = bv;
            if (pass == 1) {
                l->counts.symbolic++;
                l->counts.bound[l->bound_from]++;
            }
            if (ifunc != (pass == 2)) {
                if (ifunc) (*deferred)++;
                break;
            }
            if (ifunc && (err = vmc__call_ifunc(l, value, &value, t->tag, i))) return err;
            store64(p, type == R_X86_64_64 ? value + (uint64_t)r.r_addend : value);
            break;
        default:
            snprintf(msg, sizeof msg, "relocation type %u is not supported%s", type, type_name(type));
            return entry_fail(l, t, i, sizeof r, msg);
        }
    }
    return 0;
}

int vmc__elf_relocate(vmc_lib_t *l)
{
    rtab_t tabs[2];
    int ntabs = 0, err;
    uint64_t a = l->rela, asz = l->relasz, j = l->jmprel, jsz = l->pltrelsz;
    if (asz && jsz && j < a + asz && a < j + jsz) {
        /* overlapping: one pass over the union (each piece was checked) */
        uint64_t lo = a < j ? a : j, hi = a + asz > j + jsz ? a + asz : j + jsz;
        if (!vmc__elf_ptr(l, lo, hi - lo))
            return vmc__fail(-ENOEXEC, "%s: DT_RELA 0x%lx+0x%lx and DT_JMPREL 0x%lx+0x%lx overlap across "
                             "segments", l->name, (unsigned long)a, (unsigned long)asz,
                             (unsigned long)j, (unsigned long)jsz);
        if ((hi - lo) % sizeof(Elf64_Rela) || (j - lo) % sizeof(Elf64_Rela))
            return vmc__fail(-ENOEXEC, "%s: DT_RELA 0x%lx+0x%lx and DT_JMPREL 0x%lx+0x%lx overlap out of step",
                             l->name, (unsigned long)a, (unsigned long)asz, (unsigned long)j,
                             (unsigned long)jsz);
        tabs[ntabs++] = (rtab_t){"DT_RELA", lo, hi - lo};
    } else {
        if (asz) tabs[ntabs++] = (rtab_t){"DT_RELA", a, asz};
        if (jsz) tabs[ntabs++] = (rtab_t){"DT_JMPREL", j, jsz};
    }
    if (l->relrsz) {
        rtab_t relr = {"DT_RELR", l->relr, l->relrsz};
        if ((err = apply_relr(l, &relr))) return err;
    }
    int deferred = 0;
    err = 0;
    bound_t *memo = l->nsyms ? calloc(l->nsyms, sizeof *memo) : NULL;  /* NULL: bind each time */
    for (int i = 0; i < ntabs && !err; i++) err = apply_rela(l, &tabs[i], 1, &deferred, memo);
    for (int i = 0; i < ntabs && !err && deferred; i++) err = apply_rela(l, &tabs[i], 2, &deferred, memo);
    free(memo);
    return err;
}
