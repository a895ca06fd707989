/* Exports: the export directory, checked once at load and searched by
 * vmc__pe_export.
 *
 * At load: the directory holds its 40-byte header, the address, name and
 * ordinal tables lie inside the image (sizes computed in 64 bits), every
 * name ends inside the image, every name's ordinal indexes the address
 * table, and the names are in strictly ascending byte order: the search is
 * a binary search over them, as the Windows loader's is, and unsorted
 * names would make it miss without a word.  At look-up every read is
 * checked again: the tables may sit in a writable section the DLL's own
 * code has written since.
 *
 * "#12" looks ordinal 12 up (biased by the directory's Base, as
 * GetProcAddress takes MAKEINTRESOURCE(12)).  An address inside the export
 * directory's own range is a forwarder: its string ("KERNEL32.GetTickCount"
 * or "DLL.#5") is returned for the lifecycle to follow.
 *
 * vmc__pe_nearest answers the other way round, for vmc_addr_info: the
 * named export at or below an address, in the same section (a DLL's
 * exports have no sizes, so the nearest one below is all there is to say).
 */
#include "pe/pe.h"
#include "base/error.h"

#include <errno.h>
#include <string.h>

#define EXP_FAIL(...) vmc__fail(-ENOEXEC, "%s: export directory (offset 0x%llx+0x%x): " __VA_ARGS__)

int vmc__pe_exports(vmc_pe_obj_t *o)
{
    const vmc_pe_t *pe = &o->pe;
    uint32_t rva = pe->dir[VMC_PE_DIR_EXPORT].rva, size = pe->dir[VMC_PE_DIR_EXPORT].size;
    unsigned long long off = vmc__pe_offset(pe, rva);
    o->exp_nfuncs = o->exp_nnames = 0;
    o->exp_dll = NULL;
    if (!size) return 0;
    if (size < 40) return EXP_FAIL("size 0x%x is less than its 40-byte header", o->name, off, 0, size);
    const uint8_t *d = o->img + rva;
    uint32_t name = vmc__pe_u32(d + 12), nfuncs = vmc__pe_u32(d + 20), nnames = vmc__pe_u32(d + 24);
    uint32_t funcs = vmc__pe_u32(d + 28), names = vmc__pe_u32(d + 32), ords = vmc__pe_u32(d + 36);
    o->exp_base = vmc__pe_u32(d + 16);
    if (name && !(o->exp_dll = vmc__pe_str(o, name)))
        return EXP_FAIL("Name 0x%x is not a string inside the image", o->name, off, 12, name);
    if (nfuncs > 65536)
        return EXP_FAIL("NumberOfFunctions %u is more than 16-bit ordinals reach", o->name, off, 20, nfuncs);
    if (!vmc__pe_in_image(pe, funcs, 4ull * nfuncs))
        return EXP_FAIL("AddressOfFunctions 0x%x+0x%llx is past the image (SizeOfImage 0x%x)", o->name, off, 28,
                        funcs, 4ull * nfuncs, pe->size_of_image);
    if (!vmc__pe_in_image(pe, names, 4ull * nnames))
        return EXP_FAIL("AddressOfNames 0x%x+0x%llx is past the image (SizeOfImage 0x%x)", o->name, off, 32, names,
                        4ull * nnames, pe->size_of_image);
    if (!vmc__pe_in_image(pe, ords, 2ull * nnames))
        return EXP_FAIL("AddressOfNameOrdinals 0x%x+0x%llx is past the image (SizeOfImage 0x%x)", o->name, off, 36,
                        ords, 2ull * nnames, pe->size_of_image);
    const char *prev = NULL;
    for (uint32_t i = 0; i < nnames; i++) {
        uint32_t nrva = vmc__pe_u32(o->img + names + 4 * i);
        uint16_t ord = vmc__pe_u16(o->img + ords + 2 * i);
        const char *s = vmc__pe_str(o, nrva);
        if (!s)
            return EXP_FAIL("name %u at 0x%x is not a string inside the image", o->name, off, 32, i, nrva);
        if (ord >= nfuncs)
            return EXP_FAIL("name %u %s has ordinal index %u, past NumberOfFunctions (%u)", o->name, off, 36, i, s,
                            ord, nfuncs);
        if (prev && strcmp(prev, s) >= 0)
            return EXP_FAIL("name %u %s is not after name %u %s: the names are not sorted", o->name, off, 32, i, s,
                            i - 1, prev);
        prev = s;
    }
    o->exp_nfuncs = nfuncs;
    o->exp_nnames = nnames;
    o->exp_funcs = funcs;
    o->exp_names = names;
    o->exp_ords = ords;
    return 0;
}

/* "#12" into 12, or -1 if name is not "#" and 1 to 5 decimal digits below 65536. */
static long long ordinal_of(const char *name)
{
    if (name[0] != '#' || !name[1]) return -1;
    long long v = 0;
    for (const char *p = name + 1; *p; p++) {
        if (*p < '0' || *p > '9' || p - name > 5) return -1;
        v = v * 10 + (*p - '0');
    }
    return v < 65536 ? v : -1;
}

static int by_index(const vmc_pe_obj_t *o, uint32_t idx, vmc_pe_sym_t *out)
{
    const vmc_pe_t *pe = &o->pe;
    if (idx >= o->exp_nfuncs || !vmc__pe_in_image(pe, o->exp_funcs + 4ull * idx, 4)) return 0;
    uint32_t rva = vmc__pe_u32(o->img + o->exp_funcs + 4 * idx);
    if (!rva || rva >= pe->size_of_image) return 0;
    out->ordinal = o->exp_base + idx;
    out->forward = NULL;
    out->rva = rva;
    uint32_t drva = pe->dir[VMC_PE_DIR_EXPORT].rva, dsize = pe->dir[VMC_PE_DIR_EXPORT].size;
    if (rva >= drva && rva - drva < dsize) {
        if (!(out->forward = vmc__pe_str(o, rva))) return 0;
        out->rva = 0;
    }
    return 1;
}

int vmc__pe_export(const vmc_pe_obj_t *o, const char *name, vmc_pe_sym_t *out)
{
    long long ord = ordinal_of(name);
    if (ord >= 0) return ord >= (long long)o->exp_base ? by_index(o, (uint32_t)(ord - o->exp_base), out) : 0;
    size_t lo = 0, hi = o->exp_nnames;
    const vmc_pe_t *pe = &o->pe;
    if (!vmc__pe_in_image(pe, o->exp_names, 4ull * hi) || !vmc__pe_in_image(pe, o->exp_ords, 2ull * hi)) return 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *s = vmc__pe_str(o, vmc__pe_u32(o->img + o->exp_names + 4 * mid));
        if (!s) return 0;
        int c = strcmp(name, s);
        if (c == 0) return by_index(o, vmc__pe_u16(o->img + o->exp_ords + 2 * mid), out);
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return 0;
}

int vmc__pe_nearest(const vmc_pe_obj_t *o, uint64_t rva, const char **name, uint32_t *at)
{
    const vmc_pe_t *pe = &o->pe;
    const vmc_pe_sect_t *sect = vmc__pe_sect(pe, rva, 1);
    uint32_t n = o->exp_nnames, drva = pe->dir[VMC_PE_DIR_EXPORT].rva, dsize = pe->dir[VMC_PE_DIR_EXPORT].size;
    if (!sect || !vmc__pe_in_image(pe, o->exp_names, 4ull * n) || !vmc__pe_in_image(pe, o->exp_ords, 2ull * n))
        return 0;
    int found = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint16_t idx = vmc__pe_u16(o->img + o->exp_ords + 2 * i);
        if (idx >= o->exp_nfuncs || !vmc__pe_in_image(pe, o->exp_funcs + 4ull * idx, 4)) continue;
        uint32_t f = vmc__pe_u32(o->img + o->exp_funcs + 4 * idx);
        if (f > rva || f < sect->va || (f >= drva && f - drva < dsize)) continue;   /* above, below, forwarder */
        if (found && f <= *at) continue;   /* at one address, the first name (the names are sorted) */
        const char *s = vmc__pe_str(o, vmc__pe_u32(o->img + o->exp_names + 4 * i));
        if (!s) continue;
        *name = s;
        *at = f;
        found = 1;
    }
    return found;
}
