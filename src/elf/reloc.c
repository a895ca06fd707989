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
 * symbol of type STT_GNU_IFUNC (call its resolver); the TLS ones, DTPMOD64,
 * DTPOFF64, TPOFF64 and TLSDESC, with values from the lifecycle (env->tls).
 * The other types the system loader applies in a library are refused as
 * unsupported (-ENOTSUP, naming the type and the feature: COPY, which is for
 * executables, the 32-bit and size ones); any other number is no dynamic
 * relocation of the machine (-ENOEXEC).
 *
 * Resolvers run in a second pass, after every other relocation, because
 * they read the library's data through its GOT (the linker sorts IRELATIVE
 * last for the same reason).  When DT_RELA's range covers DT_JMPREL's (older
 * linkers did that), the overlap is processed once.
 */
#include "elf/elf.h"
#include "base/attrs.h"
#include "arch/reloc.h"
#include "base/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rtab {
    const char *tag;             /* "DT_RELA", "DT_JMPREL", "DT_RELR"       */
    uint64_t va, size;
} rtab_t;

/* "libx.so: DT_RELA entry 5 (offset 0x558+0x78): PROBLEM", -ENOEXEC
 * (entry_fail) or another code.  Cold, and the message buffer lives here,
 * not in the relocation loops' frames. */
static int __attribute__((noinline, cold)) entry_fail_code(vmc_elf_obj_t *l, int code, const rtab_t *t, size_t i,
                                                           size_t entsize, const char *fmt, ...)
    VMC_PRINTF(6, 7);

static int entry_fail_code(vmc_elf_obj_t *l, int code, const rtab_t *t, size_t i, size_t entsize,
                           const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vmc__fail(code, "%s: %s entry %zu (offset 0x%lx+0x%lx): %s", l->name, t->tag, i,
                     (unsigned long)vmc__elf_offset(&l->elf, t->va), (unsigned long)(i * entsize), msg);
}

#define entry_fail(l, ...) entry_fail_code(l, -ENOEXEC, __VA_ARGS__)

/* Targets need not be 8-byte aligned (a packed structure may hold a
 * pointer): read and write them as bytes. */
static uint64_t load64(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static void store64(uint8_t *p, uint64_t x) { memcpy(p, &x, 8); }

/* Relocation targets come in long runs over one writable segment: the
 * window [lo, hi] of addresses where 8 bytes may be written is kept
 * in locals, so the common case is one compare; anything outside it goes
 * through retarget(), which finds the segment or formats the refusal. */
typedef struct window {
    uint64_t lo, hi;             /* lo <= va <= hi: va..va+7 writable       */
} window_t;

#define NO_WINDOW ((window_t){UINT64_MAX, 0})

static int __attribute__((noinline)) retarget(vmc_elf_obj_t *l, const rtab_t *t, size_t i, size_t entsize,
                                              uint64_t va, window_t *w)
{
    const vmc_seg_t *s = vmc__elf_seg(&l->elf, va, 8, 1);
    if (!s)
        return entry_fail(l, t, i, entsize, "target 0x%lx is outside the image (0x%lx..0x%lx)",
                          (unsigned long)va, (unsigned long)l->elf.lo, (unsigned long)l->elf.hi);
    if (!(s->flags & PF_W))
        return entry_fail(l, t, i, entsize, "target 0x%lx is in read-only program header %u (a text relocation)",
                          (unsigned long)va, s->index);
    w->lo = s->vaddr;  /* vmc__elf_seg found 8 bytes at va inside it: memsz >= 8 */
    w->hi = s->vaddr + s->memsz - 8;
    return 0;
}

/* The address of the 8 bytes at vaddr va, if they may be written. */
static inline int target(vmc_elf_obj_t *l, const rtab_t *t, size_t i, size_t entsize, uint64_t va, window_t *w,
                         uint8_t **p)
{
    if (__builtin_expect(va < w->lo || va > w->hi, 0)) {
        int err = retarget(l, t, i, entsize, va, w);
        if (err) return err;
    }
    *p = (uint8_t *)(l->bias + va);
    return 0;
}

static int apply_relr(vmc_elf_obj_t *l, const rtab_t *t)
{
    const uint64_t *e = vmc__elf_ptr(l, t->va, t->size);
    const uint64_t bias = l->bias;
    size_t n = t->size / 8, done = 0;
    uint64_t where = 0;
    window_t w = NO_WINDOW;
    uint8_t *p;
    int err = 0;
    for (size_t i = 0; i < n && !err; i++) {
        uint64_t x = e[i];
        if (!(x & 1)) {
            if ((err = target(l, t, i, 8, x, &w, &p))) break;
            store64(p, load64(p) + bias);
            done++;
            where = x + 8;
            continue;
        }
        uint64_t at = where;
        for (x >>= 1; x; x >>= 1, at += 8) {
            if (!(x & 1)) continue;
            if ((err = target(l, t, i, 8, at, &w, &p))) break;
            store64(p, load64(p) + bias);
            done++;
        }
        where += 63 * 8;
    }
    l->counts.relr += done;
    return err;
}

/* A type this loader does not apply: -ENOTSUP naming it and the feature
 * when the system loader applies it in a library, -ENOEXEC otherwise. */
static int __attribute__((noinline, cold)) bad_type(vmc_elf_obj_t *l, const rtab_t *t, size_t i, unsigned type)
{
    const char *name = vmc__arch_reloc_name(type), *what = vmc__arch_reloc_unsupported(type);
    if (what)
        return entry_fail_code(l, -ENOTSUP, t, i, sizeof(Elf64_Rela), "relocation type %u (%s: %s) is not supported",
                               type, name, what);
    if (name)
        return entry_fail(l, t, i, sizeof(Elf64_Rela), "relocation type %u (%s) is not a dynamic relocation of %s",
                          type, name, vmc__arch_elf_machine_name());
    return entry_fail(l, t, i, sizeof(Elf64_Rela), "relocation type %u is not a dynamic relocation of %s", type,
                      vmc__arch_elf_machine_name());
}

/* Each symbol is bound once per load, however many relocations name it
 * (GLOB_DAT and JUMP_SLOT of one function, both passes).  What a load bound
 * stays with the library's kept tables (vmc__elf_keep): a host answer that
 * holds for the life of the process (from the objects the process started
 * with, or vmcode's own function: `final`) is taken again by the next load
 * of the same file unless a private library now defines the name, which
 * would come first in the scope.  Nothing else could change it: the
 * library's own tables are the same bytes, and the answer did not come from
 * another private library. */
struct vmc_elf_bound {
    uintptr_t value;
    uint32_t hash;               /* the name's DT_GNU_HASH hash (final ones) */
    uint8_t known, ifunc, from, final;
};
typedef struct vmc_elf_bound bound_t;

/* The earlier load's answer for sym, if it still holds. */
static int still_bound(vmc_elf_obj_t *l, const bound_t *prev, size_t sym)
{
    const bound_t *p = &prev[sym];
    if (!p->final || !l->env->private_defines) return 0;
    const vmc_name_t key = {l->strtab + l->symtab[sym].st_name, p->hash};
    return !l->env->private_defines(l, &key, vmc__elf_sym_version(l, sym));
}

static int bind_once(vmc_elf_obj_t *l, bound_t *memo, const bound_t *prev, size_t sym, const rtab_t *t, size_t i,
                     uintptr_t *value, int *ifunc)
{
    bound_t *b = memo ? &memo[sym] : NULL;
    if (b && !b->known && prev && still_bound(l, prev, sym)) {
        *b = prev[sym];
        b->known = 1;
        l->bound_obj = NULL;   /* the host's */
    } else if (!b || !b->known) {
        int err = vmc__elf_bind(l, sym, value, ifunc, t->tag, i);
        if (err) return err;
        if (!b) return 0;
        int final = l->bound_final && l->bound_from == VMC_BOUND_HOST && !*ifunc;
        *b = (bound_t){*value, final ? l->bound_hash : 0, 1, (uint8_t)*ifunc, (uint8_t)l->bound_from,
                       (uint8_t)final};
    }
    *value = b->value;
    *ifunc = b->ifunc;
    l->bound_from = b->from;
    return 0;
}

/* pass 1: everything but resolvers; pass 2: IRELATIVE and IFUNC symbols.
 * Counts are kept in locals: a store through a byte pointer may alias
 * anything, which would make the compiler reload *l at every entry. */
VMC_LOAD_PATH static int apply_rela(vmc_elf_obj_t *l, const rtab_t *t, int pass, int *deferred, bound_t *memo,
                      const bound_t *prev)
{
    const Elf64_Rela *rel = vmc__elf_ptr(l, t->va, t->size);
    const uint64_t bias = l->bias;
    const size_t n = t->size / sizeof(Elf64_Rela), nsyms = l->nsyms;
    size_t relative = 0, irelative = 0, symbolic = 0, later = 0;
    window_t w = NO_WINDOW;
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        Elf64_Rela r;
        memcpy(&r, &rel[i], sizeof r);
        unsigned type = ELF64_R_TYPE(r.r_info);
        int kind = vmc__arch_reloc_kind(type);
        size_t sym = ELF64_R_SYM(r.r_info);
        uint8_t *p;
        uint64_t value;
        int ifunc = 0;
        if (kind == VMC_RELOC_NONE) continue;
        if ((err = target(l, t, i, sizeof r, r.r_offset, &w, &p))) break;
        if (kind == VMC_RELOC_RELATIVE) {
            if (pass == 1) {
                store64(p, bias + (uint64_t)r.r_addend);
                relative++;
            }
            continue;
        }
        switch (kind) {
        case VMC_RELOC_IRELATIVE:
            if (pass == 1) {
                later++;
                irelative++;
                break;
            }
            if ((err = l->env->call_ifunc(l, bias + (uint64_t)r.r_addend, &value, t->tag, i))) goto out;
            store64(p, value);
            break;
        case VMC_RELOC_ABS64:
        case VMC_RELOC_GOT:
        case VMC_RELOC_PLT: {
            if (sym >= nsyms) {
                err = entry_fail(l, t, i, sizeof r, "symbol index %zu is past the symbol table (%zu symbols)",
                                 sym, nsyms);
                goto out;
            }
            uintptr_t bv;
            if ((err = bind_once(l, memo, prev, sym, t, i, &bv, &ifunc))) goto out;
            value = bv;
            if (pass == 1) {
                symbolic++;
                l->counts.bound[l->bound_from]++;
            }
            if (ifunc != (pass == 2)) {
                if (ifunc) later++;
                break;
            }
            if (ifunc && (err = l->env->call_ifunc(l, value, &value, t->tag, i))) goto out;
            store64(p, kind == VMC_RELOC_ABS64 ? value + (uint64_t)r.r_addend : value);
            break;
        }
        case VMC_RELOC_DTPMOD:
        case VMC_RELOC_DTPOFF:
        case VMC_RELOC_TPOFF:
        case VMC_RELOC_TLSDESC: {
            /* bound afresh each time (no memo): a host variable's address
             * depends on the calling thread, and these are few */
            if (pass == 2) break;
            if (sym >= nsyms) {
                err = entry_fail(l, t, i, sizeof r, "symbol index %zu is past the symbol table (%zu symbols)",
                                 sym, nsyms);
                goto out;
            }
            uint8_t *p2 = NULL;
            uint64_t words[2];
            if (kind == VMC_RELOC_TLSDESC && (err = target(l, t, i, sizeof r, r.r_offset + 8, &w, &p2))) goto out;
            if ((err = l->env->tls(l, kind, type, sym, r.r_addend, r.r_offset, words, t->tag, i))) goto out;
            store64(p, words[0]);
            if (p2) store64(p2, words[1]);
            symbolic++;
            l->counts.bound[l->bound_from]++;
            break;
        }
        default: {
            err = bad_type(l, t, i, type);
            goto out;
        }
        }
    }
out:
    l->counts.relative += relative;
    l->counts.irelative += irelative;
    l->counts.symbolic += symbolic;
    *deferred += (int)later;
    return err;
}

VMC_LOAD_PATH int vmc__elf_relocate(vmc_elf_obj_t *l)
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
    const bound_t *prev = memo ? l->binds : NULL;   /* the earlier load's, or NULL */
    for (int i = 0; i < ntabs && !err; i++) err = apply_rela(l, &tabs[i], 1, &deferred, memo, prev);
    for (int i = 0; i < ntabs && !err && deferred; i++) err = apply_rela(l, &tabs[i], 2, &deferred, memo, prev);
    /* this load's answers replace the earlier ones; kept only where the
     * tables may be (vmc__elf_keep: in the copy, at most 124 KiB of them) */
    free(l->binds);
    l->binds = l->snap ? memo : NULL;
    if (!l->snap) free(memo);
    return err;
}
