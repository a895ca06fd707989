/* Imports: the import directory and the delay-load directory read into one
 * list of DLLs and of the IAT slots to fill with each one's functions, by
 * name (with its hint) or by ordinal.  The lifecycle binds them; nothing
 * here looks anything up.
 *
 * Import descriptors run until the all-zero one (the directory's size is
 * often wrong, and the system loader does not read it); delay-load
 * descriptors fill the directory's size or end at one whose DllNameRVA is 0
 * (nothing but tools walk that directory, and GNU ld leaves it empty: a
 * delay-load descriptor of dlltool's is found only when the directory is
 * set); each descriptor, each lookup entry, each
 * hint/name entry and each IAT slot must lie inside the image, names must
 * end inside it (at most VMC_PE_MAX_NAME bytes).  A lookup entry is an
 * ordinal (bit 63, the ordinal in bits 0-15, the rest 0) or the RVA of a
 * hint/name entry (bits 31-62 0).  Without an OriginalFirstThunk the lookup
 * entries are read from the IAT itself, before anything is bound, as old
 * linkers made them.
 *
 * Delay-load imports are bound at load like the others (their slots and
 * the module-handle slot written directly), so the DLL's own delay-load
 * helper never runs: a DLL whose delay-loaded dependency is missing is
 * refused at load instead of failing at its first call.  Only RVA-based
 * descriptors (Attributes bit 0, what every x64 linker emits) are taken.
 */
#include "pe/pe.h"
#include "base/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int add_dll(vmc_pe_obj_t *o, size_t *cap, const char *name, int delay, uint32_t handle_slot)
{
    vmc_pe_imports_t *im = &o->imp;
    if (im->ndlls == VMC_PE_MAX_DLLS)
        return vmc__fail(-ENOTSUP, "%s: imports: more than %d DLLs imported from are not supported", o->name,
                         VMC_PE_MAX_DLLS);
    if (im->ndlls == *cap) {
        size_t n = *cap ? *cap * 2 : 8;
        vmc_pe_dll_t *d = realloc(im->dlls, n * sizeof *d);
        if (!d) return vmc__fail(-ENOMEM, "%s: out of memory for the import list", o->name);
        im->dlls = d;
        *cap = n;
    }
    vmc_pe_dll_t *d = &im->dlls[im->ndlls++];
    d->name = name;
    d->delay = delay;
    d->handle_slot = handle_slot;
    d->first = im->nfn;
    d->count = 0;
    return 0;
}

/* The lookup table at `lookup` and the IAT at `iat` of DLL `what` (for
 * messages: "import descriptor 3" at file offset base+delta). */
static int read_thunks(vmc_pe_obj_t *o, size_t *cap, uint32_t lookup, uint32_t iat, const char *what, uint64_t base,
                       uint32_t delta)
{
    const vmc_pe_t *pe = &o->pe;
    vmc_pe_imports_t *im = &o->imp;
    vmc_pe_dll_t *d = &im->dlls[im->ndlls - 1];
    uint64_t toff = vmc__pe_offset(pe, lookup);
    for (uint64_t j = 0;; j++) {
        uint64_t ent = lookup + 8 * j, slot = iat + 8 * j;
        if (!vmc__pe_in_image(pe, ent, 8))
            return vmc__fail(-ENOEXEC, "%s: %s %s lookup entry %llu (offset 0x%llx+0x%llx): 0x%llx is past the "
                             "image (SizeOfImage 0x%x)", o->name, what, d->name, (unsigned long long)j,
                             (unsigned long long)toff, (unsigned long long)(8 * j), (unsigned long long)ent,
                             pe->size_of_image);
        uint64_t v = vmc__pe_u64(o->img + ent);
        if (!v) break;
        if (!vmc__pe_in_image(pe, slot, 8))
            return vmc__fail(-ENOEXEC, "%s: %s %s (offset 0x%llx+0x%x): import address table entry %llu at "
                             "0x%llx is past the image (SizeOfImage 0x%x)", o->name, what, d->name,
                             (unsigned long long)base, delta, (unsigned long long)j, (unsigned long long)slot,
                             pe->size_of_image);
        if (im->nfn == VMC_PE_MAX_IMPORTS)
            return vmc__fail(-ENOTSUP, "%s: imports: more than %d imported functions are not supported", o->name,
                             VMC_PE_MAX_IMPORTS);
        if (im->nfn == *cap) {
            size_t n = *cap ? *cap * 2 : 64;
            vmc_pe_import_t *f = realloc(im->fn, n * sizeof *f);
            if (!f) return vmc__fail(-ENOMEM, "%s: out of memory for the import list", o->name);
            im->fn = f;
            *cap = n;
        }
        vmc_pe_import_t *f = &im->fn[im->nfn];
        f->dll = (uint16_t)(im->ndlls - 1);
        f->slot = (uint32_t)slot;
        if (v >> 63) {
            if (v & 0x7fffffffffff0000ull)
                return vmc__fail(-ENOEXEC, "%s: %s %s lookup entry %llu (offset 0x%llx+0x%llx): ordinal entry "
                                 "0x%llx has bits set above the ordinal", o->name, what, d->name,
                                 (unsigned long long)j, (unsigned long long)toff, (unsigned long long)(8 * j),
                                 (unsigned long long)v);
            f->name = NULL;
            f->hint = (uint16_t)v;
        } else {
            if (v >> 31 || !vmc__pe_in_image(pe, v, 2) || !(f->name = vmc__pe_str(o, v + 2)))
                return vmc__fail(-ENOEXEC, "%s: %s %s lookup entry %llu (offset 0x%llx+0x%llx): hint/name 0x%llx "
                                 "is not a name inside the image (SizeOfImage 0x%x)", o->name, what, d->name,
                                 (unsigned long long)j, (unsigned long long)toff, (unsigned long long)(8 * j),
                                 (unsigned long long)v, pe->size_of_image);
            f->hint = vmc__pe_u16(o->img + v);
        }
        im->nfn++;
        im->dlls[im->ndlls - 1].count++;
    }
    return 0;
}

static int read_imports(vmc_pe_obj_t *o, size_t *dcap, size_t *fcap)
{
    const vmc_pe_t *pe = &o->pe;
    uint32_t rva = pe->dir[VMC_PE_DIR_IMPORT].rva;
    uint64_t off = vmc__pe_offset(pe, rva);
    if (!pe->dir[VMC_PE_DIR_IMPORT].size) return 0;
    for (uint32_t i = 0;; i++) {
        uint64_t at = (uint64_t)rva + 20 * i;
        if (!vmc__pe_in_image(pe, at, 20))
            return vmc__fail(-ENOEXEC, "%s: import descriptor %u (offset 0x%llx+0x%x): past the image (SizeOfImage "
                             "0x%x) before the all-zero descriptor", o->name, i, (unsigned long long)off, 20 * i,
                             pe->size_of_image);
        const uint8_t *d = o->img + at;
        uint32_t lookup = vmc__pe_u32(d), name = vmc__pe_u32(d + 12), iat = vmc__pe_u32(d + 16);
        if (!name && !iat) break;
        const char *s = vmc__pe_str(o, name);
        if (!s)
            return vmc__fail(-ENOEXEC, "%s: import descriptor %u (offset 0x%llx+0x%x): Name 0x%x is not a string "
                             "inside the image (SizeOfImage 0x%x)", o->name, i, (unsigned long long)off, 20 * i,
                             name, pe->size_of_image);
        int e = add_dll(o, dcap, s, 0, 0);
        if (e) return e;
        char what[40];
        snprintf(what, sizeof what, "import descriptor %u", i);
        if ((e = read_thunks(o, fcap, lookup ? lookup : iat, iat, what, off, 20 * i))) return e;
    }
    return 0;
}

static int read_delay(vmc_pe_obj_t *o, size_t *dcap, size_t *fcap)
{
    const vmc_pe_t *pe = &o->pe;
    uint32_t rva = pe->dir[VMC_PE_DIR_DELAY_IMPORT].rva;
    uint64_t off = vmc__pe_offset(pe, rva);
    uint32_t n = pe->dir[VMC_PE_DIR_DELAY_IMPORT].size / 32;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t at = (uint64_t)rva + 32 * i;
        if (!vmc__pe_in_image(pe, at, 32))
            return vmc__fail(-ENOEXEC, "%s: delay import descriptor %u (offset 0x%llx+0x%x): past the image "
                             "(SizeOfImage 0x%x) before the last descriptor", o->name, i, (unsigned long long)off,
                             32 * i, pe->size_of_image);
        const uint8_t *d = o->img + at;
        uint32_t attrs = vmc__pe_u32(d), name = vmc__pe_u32(d + 4), handle = vmc__pe_u32(d + 8),
                 iat = vmc__pe_u32(d + 12), lookup = vmc__pe_u32(d + 16);
        if (!name) break;
        if (!(attrs & 1))
            return vmc__fail(-ENOTSUP, "%s: delay import descriptor %u (offset 0x%llx+0x%x): Attributes 0x%x: "
                             "descriptors holding addresses instead of RVAs are not supported", o->name, i,
                             (unsigned long long)off, 32 * i, attrs);
        const char *s = vmc__pe_str(o, name);
        if (!s)
            return vmc__fail(-ENOEXEC, "%s: delay import descriptor %u (offset 0x%llx+0x%x): DllNameRVA 0x%x is not "
                             "a string inside the image (SizeOfImage 0x%x)", o->name, i, (unsigned long long)off,
                             32 * i, name, pe->size_of_image);
        if (handle && !vmc__pe_in_image(pe, handle, 8))
            return vmc__fail(-ENOEXEC, "%s: delay import descriptor %u (offset 0x%llx+0x%x): ModuleHandleRVA 0x%x "
                             "is past the image (SizeOfImage 0x%x)", o->name, i, (unsigned long long)off, 32 * i,
                             handle, pe->size_of_image);
        if (!lookup || !iat)
            return vmc__fail(-ENOEXEC, "%s: delay import descriptor %u (offset 0x%llx+0x%x): no import name table "
                             "or import address table", o->name, i, (unsigned long long)off, 32 * i);
        int e = add_dll(o, dcap, s, 1, handle);
        if (e) return e;
        char what[40];
        snprintf(what, sizeof what, "delay import descriptor %u", i);
        if ((e = read_thunks(o, fcap, lookup, iat, what, off, 32 * i))) return e;
    }
    return 0;
}

int vmc__pe_imports(vmc_pe_obj_t *o)
{
    size_t dcap = 0, fcap = 0;
    int e = read_imports(o, &dcap, &fcap);
    if (!e) e = read_delay(o, &dcap, &fcap);
    if (e) {
        free(o->imp.dlls);
        free(o->imp.fn);
        o->imp.dlls = NULL;
        o->imp.fn = NULL;
        o->imp.ndlls = o->imp.nfn = 0;
    }
    return e;
}
