/* A private library's thread-local storage: its module, and where each TLS
 * symbol it names lives.
 *
 * A library with a PT_TLS takes a module of tls.c once it is mapped (its
 * .tdata is then in place; blocks are copied from it, as relocated, at each
 * thread's first access) and gives it back when it is unloaded, after its
 * destructors ran.
 *
 * A TLS symbol is bound like any other (vmc__elf_bind: the library, its private
 * dependencies, other private libraries, the host), and then the answer is
 * turned into a module and an offset.  In a private library: that library's
 * module and the symbol's st_value.  In the host: dlsym's answer is the
 * calling thread's copy of the variable (glibc allocates it if need be), and
 * the object whose block in this thread holds that address
 * (dl_iterate_phdr's dlpi_tls_data) gives glibc's module id and the offset.
 * That look-up is made here, not through the host-symbol cache, whose
 * answer may be another thread's copy.
 */
#include "lib/loader.h"
#include "base/attrs.h"
#include "lib/tls.h"
#include "arch/reloc.h"
#include "base/error.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

VMC_LOAD_PATH int vmc__lib_tls_add(vmc_lib_t *l)
{
    if (!l->o.elf.has_tls) return 0;
    const vmc_elf_t *h = &l->o.elf;
    vmc_tls_image_t img = {(const void *)(l->o.bias + h->tls_vaddr), h->tls_filesz, h->tls_memsz, h->tls_vaddr,
                           h->tls_align};
    int e = vmc__tls_add(l->name, &img, &l->tls_slot);
    if (!e) l->has_tls_slot = 1;
    return e;
}

VMC_LOAD_PATH void vmc__lib_tls_remove(vmc_lib_t *l)
{
    if (l->has_tls_slot) vmc__tls_remove(l->tls_slot);
    l->has_tls_slot = 0;
    vmc__tls_static_free(l->tls_static);  /* glibc frees the block in every thread */
    l->tls_static = NULL;
    free(l->tls_later);
    l->tls_later = NULL;
    l->ntls_later = 0;
    for (size_t i = 0; i < l->ntls_host; i++) vmc__tls_host_release(l->tls_host[i].slot);
    free(l->tls_host);
    l->tls_host = NULL;
    l->ntls_host = 0;
}

static int host_slot(vmc_lib_t *l, uint64_t modid, size_t *slot)
{
    for (size_t i = 0; i < l->ntls_host; i++)
        if (l->tls_host[i].modid == modid) {
            *slot = l->tls_host[i].slot;
            return 0;
        }
    vmc_tls_host_ref_t *a = realloc(l->tls_host, (l->ntls_host + 1) * sizeof *a);
    if (!a) return vmc__fail(-ENOMEM, "%s: out of memory for its thread-local storage", l->name);
    l->tls_host = a;
    int e = vmc__tls_host_slot(l->name, modid, slot);
    if (e) return e;
    a[l->ntls_host++] = (vmc_tls_host_ref_t){modid, *slot};
    return 0;
}

/* Note a relocation of l's own module to patch once its static TLS offset
 * is known. */
static int later(vmc_lib_t *l, uint64_t at, uint64_t offset, int desc)
{
    vmc_tls_later_t *a = realloc(l->tls_later, (l->ntls_later + 1) * sizeof *a);
    if (!a) return vmc__fail(-ENOMEM, "%s: out of memory for its thread-local storage", l->name);
    l->tls_later = a;
    a[l->ntls_later++] = (vmc_tls_later_t){at, offset, desc};
    return 0;
}

/* "DT_RELA entry 5", for messages. */
static const char *what_text(char *buf, size_t len, const char *tag, size_t index)
{
    snprintf(buf, len, "%s entry %zu", tag, index);
    return buf;
}

static void *host_tls_sym(const vmc_lib_t *l, const char *name, const vmc_ver_t *ver)
{
    void *p = ver ? dlvsym(RTLD_DEFAULT, name, ver->name) : NULL;
    if (!p) p = dlsym(RTLD_DEFAULT, name);
    for (size_t i = 0; !p && i < l->ndeps; i++) {
        if (l->deps[i].kind != VMC_DEP_SYSTEM) continue;
        p = ver ? dlvsym(l->deps[i].handle, name, ver->name) : NULL;
        if (!p) p = dlsym(l->deps[i].handle, name);
    }
    return p;
}

/* Where a TLS symbol of a relocation lives. */
typedef struct tls_ref {
    int host;                    /* in a host module (else a private one)   */
    uint64_t modid;              /* for DTPMOD64: glibc's id, or tls.c's    */
    uint64_t offset;             /* in the module's block                   */
    const vmc_lib_t *lib;        /* private: the defining library           */
    size_t slot;                 /* private: its tls.c slot                 */
    int is_static;               /* host: the block is in static TLS ...    */
    int64_t static_off;          /* ... at this offset from the thread pointer */
} tls_ref_t;

/* Another library l reads d's variables by initial-exec: give d's module a
 * block in static TLS now, as glibc does for a module loaded before such a
 * user when no thread has used it yet (its threads' copies could not move:
 * glibc refuses then too).  Every access of d's own (GD, descriptors) goes
 * through its slot, which then yields the static block. */
static int move_static(vmc_lib_t *d, vmc_lib_t *l, const char *what, const char *tname)
{
    const char *why = NULL;
    if (d->state != VMC_LIB_RELOCATED && d->state != VMC_LIB_READY)
        why = "is not relocated yet (its .tdata would be copied unrelocated: a library of the same load that "
              "is not a dependency, or a dependency cycle)";
    else if (d->flags & VMC_LOAD_INERT) why = "is loaded inert";
    else if (vmc__tls_used(d->tls_slot)) why = "threads have used already (their copies cannot move)";
    if (why)
        return vmc__fail(-ENOTSUP, "%s: %s: %s: initial-exec access to a variable of %s, whose block is not in "
                         "static TLS and which %s, is not supported", l->name, what, tname, d->name, why);
    const vmc_elf_t *h = &d->o.elf;
    vmc_tls_image_t img = {(const void *)(d->o.bias + h->tls_vaddr), h->tls_filesz, h->tls_memsz, h->tls_vaddr,
                           h->tls_align};
    void *handle;
    int64_t tpoff;
    int e = vmc__tls_static_new(d->name, &img, &handle, &tpoff);
    if (e)
        return vmc__fail_wrap(e, "%s: %s: %s: initial-exec access to a variable of %s", l->name, what, tname,
                              d->name);
    if (vmc__tls_move_static(d->tls_slot, tpoff)) {  /* a thread's first access came first */
        vmc__tls_static_free(handle);
        return vmc__fail(-ENOTSUP, "%s: %s: %s: initial-exec access to a variable of %s, whose block is not in "
                         "static TLS and which threads have used already (their copies cannot move), is not "
                         "supported", l->name, what, tname, d->name);
    }
    d->tls_static = handle;
    d->tls_tpoff = tpoff;
    return 0;
}

static int tls_bind(vmc_lib_t *l, size_t symidx, tls_ref_t *out, const char *tag, size_t index)
{
    char what[64];
    memset(out, 0, sizeof *out);
    if (symidx == 0) {  /* local-dynamic and local variables: the library's own module */
        if (!l->has_tls_slot)
            return vmc__fail(-ENOEXEC, "%s: %s: a TLS relocation without a symbol, and the library has no "
                             "PT_TLS", l->name, what_text(what, sizeof what, tag, index));
        out->lib = l;
        out->modid = VMC_TLS_MODID_BASE + l->tls_slot;
        out->slot = l->tls_slot;
        return 0;
    }
    const Elf64_Sym *ref = &l->o.symtab[symidx];
    const char *name = l->o.strtab + ref->st_name;
    if (ELF64_ST_TYPE(ref->st_info) != STT_TLS)
        return vmc__fail(-ENOEXEC, "%s: %s: a TLS relocation names symbol %s, which is not STT_TLS (type %u)",
                         l->name, what_text(what, sizeof what, tag, index), name, ELF64_ST_TYPE(ref->st_info));
    uintptr_t value;
    int ifunc, e = vmc__elf_bind(&l->o, symidx, &value, &ifunc, tag, index);
    if (e) return e;
    if (l->o.bound_from == VMC_BOUND_WEAK_ZERO)
        return vmc__fail(-ENOENT, "%s: %s: undefined symbol %s (a weak TLS variable nothing defines)", l->name,
                         what_text(what, sizeof what, tag, index), name);
    const vmc_ver_t *ver = vmc__elf_sym_version(&l->o, symidx);
    if (l->o.bound_obj) {
        const vmc_lib_t *d = vmc__lib_of(l->o.bound_obj);
        const vmc_name_t key = vmc__elf_name(name);
        const Elf64_Sym *s = d == l && ref->st_shndx != SHN_UNDEF ? ref : vmc__elf_lookup(&d->o, &key, ver);
        if (!s || ELF64_ST_TYPE(s->st_info) != STT_TLS || !d->has_tls_slot || s->st_value > d->o.elf.tls_memsz)
            return vmc__fail(-ENOEXEC, "%s: %s: TLS symbol %s is defined in %s outside its PT_TLS (st_value "
                             "0x%lx, type %u)", l->name, what_text(what, sizeof what, tag, index), name, d->name,
                             s ? (unsigned long)s->st_value : 0ul, s ? ELF64_ST_TYPE(s->st_info) : 0u);
        out->lib = d;
        out->modid = VMC_TLS_MODID_BASE + d->tls_slot;
        out->slot = d->tls_slot;
        out->offset = s->st_value;
        return 0;
    }
    void *p = host_tls_sym(l, name, ver);
    if (!p || vmc__tls_host_locate(p, &out->modid, &out->offset, &out->is_static, &out->static_off))
        return vmc__fail(-ENOENT, "%s: %s: TLS symbol %s: the host defines it, but no thread-local block of "
                         "the host holds it", l->name, what_text(what, sizeof what, tag, index), name);
    out->host = 1;
    return 0;
}

int vmc__lib_tls_reloc(vmc_lib_t *l, int kind, unsigned type, size_t symidx, int64_t addend, uint64_t at,
                       uint64_t out[2], const char *tag, size_t index)
{
    char what[64];
    const char *tname = vmc__arch_reloc_name(type);
    tls_ref_t ref;
    int err = tls_bind(l, symidx, &ref, tag, index);
    if (err) return err;
    uint64_t off = ref.offset + (uint64_t)addend;
    out[1] = 0;
    switch (kind) {
    case VMC_RELOC_DTPMOD:
        out[0] = ref.modid;
        return 0;
    case VMC_RELOC_DTPOFF:
        out[0] = off;
        return 0;
    case VMC_RELOC_TPOFF:
        if (ref.host) {
            /* valid, but there is no offset to give: -ENOTSUP, naming why */
            if (!ref.is_static)
                return vmc__fail(-ENOTSUP, "%s: %s: %s: initial-exec access to a host variable whose module is "
                                 "not in static TLS is not supported", l->name,
                                 what_text(what, sizeof what, tag, index), tname);
            out[0] = (uint64_t)ref.static_off + (uint64_t)addend;
            return 0;
        }
        if (ref.lib->tls_static) {
            out[0] = (uint64_t)ref.lib->tls_tpoff + off;
            return 0;
        }
        if (ref.lib != l) {
            if (l->flags & VMC_LOAD_INERT) {  /* nothing of it runs; no static TLS object is made */
                out[0] = 0;
                return 0;
            }
            if ((err = move_static((vmc_lib_t *)ref.lib, l, what_text(what, sizeof what, tag, index), tname)))
                return err;
            out[0] = (uint64_t)ref.lib->tls_tpoff + off;
            return 0;
        }
        out[0] = 0;  /* until vmc__lib_tls_finish knows the offset */
        l->tls_needs_static = 1;
        return later(l, at, off, 0);
    default:  /* VMC_RELOC_TLSDESC */
        if (ref.host && ref.is_static) {
            out[0] = vmc__tlsdesc_static_resolver();
            out[1] = (uint64_t)ref.static_off + (uint64_t)addend;
            return 0;
        }
        if (!ref.host && ref.lib->tls_static) {
            out[0] = vmc__tlsdesc_static_resolver();
            out[1] = (uint64_t)ref.lib->tls_tpoff + off;
            return 0;
        }
        {
            size_t slot = ref.slot;
            uint64_t limit = ref.host ? ((uint64_t)1 << VMC_TLSDESC_OFF_BITS) - 1 : ref.lib->o.elf.tls_memsz;
            if (off > limit)
                return vmc__fail(-ENOEXEC, "%s: %s: %s: offset 0x%lx is outside the variable's thread-local "
                                 "block (0x%lx bytes)", l->name, what_text(what, sizeof what, tag, index), tname,
                                 (unsigned long)off, (unsigned long)limit);
            if (ref.host && (err = host_slot(l, ref.modid, &slot))) return err;
            out[0] = vmc__tlsdesc_resolver();
            out[1] = vmc__tlsdesc_arg(slot, off);
        }
        /* A small block of its own goes to static TLS if there is room (as
         * glibc does for descriptors of the objects it loads): its
         * descriptors then take one load.  These words stay otherwise. */
        if (!ref.host && ref.lib == l && l->o.elf.tls_memsz <= VMC_TLS_STATIC_OPPORTUNISTIC)
            return later(l, at, off, 1);
        return 0;
    }
}

VMC_LOAD_PATH int vmc__lib_tls_finish(vmc_lib_t *l)
{
    if (!l->ntls_later) return 0;
    int e = 0;
    if (!(l->flags & VMC_LOAD_INERT)) {  /* (an inert load loads nothing through the system loader) */
        const vmc_elf_t *h = &l->o.elf;
        vmc_tls_image_t img = {(const void *)(l->o.bias + h->tls_vaddr), h->tls_filesz, h->tls_memsz,
                               h->tls_vaddr, h->tls_align};
        void *handle;
        int64_t tpoff;
        e = vmc__tls_static_new(l->name, &img, &handle, &tpoff);
        if (!e) {
            l->tls_static = handle;
            l->tls_tpoff = tpoff;
            vmc__tls_set_static(l->tls_slot, tpoff);
            for (size_t i = 0; i < l->ntls_later; i++) {
                const vmc_tls_later_t *w = &l->tls_later[i];
                uint8_t *p = (uint8_t *)(l->o.bias + w->at);
                uint64_t v = (uint64_t)tpoff + w->offset;
                if (w->desc) {
                    uint64_t fn = vmc__tlsdesc_static_resolver();
                    memcpy(p, &fn, 8);
                    memcpy(p + 8, &v, 8);
                } else {
                    memcpy(p, &v, 8);
                }
            }
        } else if (!l->tls_needs_static) {
            e = 0;  /* descriptors only: the dynamic words stay */
            vmc__clear_error();
        }
    }
    free(l->tls_later);
    l->tls_later = NULL;
    l->ntls_later = 0;
    return e;
}

void *vmc__lib_tls_sym(vmc_lib_t *l, const Elf64_Sym *s)
{
    if (!l->has_tls_slot || s->st_value > l->o.elf.tls_memsz) {
        vmc__fail(-ENOEXEC, "%s: TLS symbol %s is outside its PT_TLS", l->name, l->o.strtab + s->st_name);
        return NULL;
    }
    vmc_tls_index_t ti = {VMC_TLS_MODID_BASE + l->tls_slot, s->st_value};
    return vmc__tls_get_addr(&ti);
}
