/* The directories read after relocation, and the order of the steps.
 *
 * TLS (IMAGE_TLS_DIRECTORY64): its fields are addresses, relocated like
 * any other, so they are read after vmc__pe_relocate and turned back into
 * RVAs.  The callbacks (a zero-terminated array of addresses, each inside
 * an executable section) are listed for the lifecycle to call as the
 * system loader would.  Implicit TLS data (__declspec(thread), a template
 * the system loader copies for every thread and reaches through
 * TEB.ThreadLocalStoragePointer[_tls_index]) cannot be given to a DLL the
 * system loader does not know, so it is refused (-ENOTSUP).  A template of
 * at most 8 zero bytes and no zero fill is taken as none: it is what
 * MinGW-w64's CRT puts in every DLL (its _tls_start and _tls_end markers;
 * GCC's __thread is emulated and never uses it).  A zero-initialised
 * variable small enough to hide in those 8 bytes is not told apart.
 *
 * The exception directory (.pdata) is an array of 12-byte RUNTIME_FUNCTION
 * entries that RtlAddFunctionTable takes as it is: each function range
 * inside an executable section, its unwind data inside the image, the
 * entries sorted and not overlapping (the unwinder binary-searches them).
 *
 * The load config is read for Control Flow Guard only: GuardFlags and the
 * slots of __guard_check_icall_fptr and __guard_dispatch_icall_fptr, which
 * the lifecycle must fill with a check that accepts the region's targets.
 * They are reported; nothing here refuses a CFG image.
 */
#include "pe/pe.h"
#include "base/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vmc__pe_tls(vmc_pe_obj_t *o)
{
    const vmc_pe_t *pe = &o->pe;
    uint32_t rva = pe->dir[VMC_PE_DIR_TLS].rva, size = pe->dir[VMC_PE_DIR_TLS].size;
    unsigned long long off = vmc__pe_offset(pe, rva);
    o->has_tls = 0;
    o->ncallbacks = 0;
    if (!size) return 0;
    if (size < 40)
        return vmc__fail(-ENOEXEC, "%s: TLS directory (offset 0x%llx): size 0x%x is less than 40 bytes", o->name,
                         off, size);
    const uint8_t *d = o->img + rva;
    uint64_t start = vmc__pe_u64(d), end = vmc__pe_u64(d + 8), index = vmc__pe_u64(d + 16),
             cbs = vmc__pe_u64(d + 24);
    uint32_t zero_fill = vmc__pe_u32(d + 32);
    uint64_t srva = start - o->base;
    if (start || end) {
        if (end < start || !vmc__pe_in_image(pe, srva, end - start))
            return vmc__fail(-ENOEXEC, "%s: TLS directory (offset 0x%llx+0x0): raw data 0x%llx..0x%llx is not "
                             "inside the image", o->name, off, (unsigned long long)start,
                             (unsigned long long)end);
    }
    int data = zero_fill != 0 || end - start > 8;
    for (uint64_t i = 0; !data && start && i < end - start; i++) data = o->img[srva + i] != 0;
    if (data)
        return vmc__fail(-ENOTSUP, "%s: TLS directory (offset 0x%llx+0x0): implicit thread-local data "
                         "(__declspec(thread): a 0x%llx-byte template, SizeOfZeroFill 0x%x) is not supported",
                         o->name, off, (unsigned long long)(end - start), zero_fill);
    if (index) {
        if (!vmc__pe_in_image(pe, index - o->base, 4))
            return vmc__fail(-ENOEXEC, "%s: TLS directory AddressOfIndex (offset 0x%llx+0x10): 0x%llx is not "
                             "inside the image", o->name, off, (unsigned long long)index);
        o->tls_index = (uint32_t)(index - o->base);
    }
    if (cbs) {
        uint64_t crva = cbs - o->base;
        for (uint32_t i = 0;; i++) {
            if (!vmc__pe_in_image(pe, crva, 8ull * (i + 1)))
                return vmc__fail(-ENOEXEC, "%s: TLS directory AddressOfCallBacks (offset 0x%llx+0x18): callback %u "
                                 "at 0x%llx is not inside the image", o->name, off, i,
                                 (unsigned long long)(cbs + 8ull * i));
            uint64_t f = vmc__pe_u64(o->img + crva + 8ull * i);
            if (!f) break;
            if (i == VMC_PE_MAX_CALLBACKS)
                return vmc__fail(-ENOTSUP, "%s: TLS directory AddressOfCallBacks (offset 0x%llx+0x18): more than %d "
                                 "callbacks are not supported", o->name, off, VMC_PE_MAX_CALLBACKS);
            if (!vmc__pe_executable(pe, f - o->base))
                return vmc__fail(-ENOEXEC, "%s: TLS directory AddressOfCallBacks (offset 0x%llx+0x18): callback %u "
                                 "0x%llx is not inside an executable section", o->name, off, i,
                                 (unsigned long long)f);
            o->callbacks[o->ncallbacks++] = (uint32_t)(f - o->base);
        }
    }
    o->has_tls = 1;
    return 0;
}

int vmc__pe_pdata(vmc_pe_obj_t *o)
{
    const vmc_pe_t *pe = &o->pe;
    uint32_t rva = pe->dir[VMC_PE_DIR_EXCEPTION].rva, size = pe->dir[VMC_PE_DIR_EXCEPTION].size;
    unsigned long long off = vmc__pe_offset(pe, rva);
    o->pdata = o->npdata = 0;
    if (!size) return 0;
    if (size % 12)
        return vmc__fail(-ENOEXEC, "%s: exception directory (offset 0x%llx): size 0x%x is not a whole number of "
                         "12-byte RUNTIME_FUNCTION entries", o->name, off, size);
    uint32_t prev_end = 0;
    for (uint32_t i = 0; i < size / 12; i++) {
        const uint8_t *e = o->img + rva + 12 * i;
        uint32_t begin = vmc__pe_u32(e), end = vmc__pe_u32(e + 4), unwind = vmc__pe_u32(e + 8);
        const vmc_pe_sect_t *s = vmc__pe_sect(pe, begin, end > begin ? end - begin : 0);
        if (end <= begin || !s || !(s->chars & VMC_PE_SCN_EXECUTE))
            return vmc__fail(-ENOEXEC, "%s: exception directory entry %u (offset 0x%llx+0x%x): function 0x%x..0x%x "
                             "is not inside an executable section", o->name, i, off, 12 * i, begin, end);
        if (!vmc__pe_in_image(pe, unwind & ~1u, 4))
            return vmc__fail(-ENOEXEC, "%s: exception directory entry %u (offset 0x%llx+0x%x): unwind data 0x%x is "
                             "past the image (SizeOfImage 0x%x)", o->name, i, off, 12 * i, unwind,
                             pe->size_of_image);
        if (begin < prev_end)
            return vmc__fail(-ENOEXEC, "%s: exception directory entry %u (offset 0x%llx+0x%x): function 0x%x is "
                             "below the previous one's end 0x%x (not sorted)", o->name, i, off, 12 * i, begin,
                             prev_end);
        prev_end = end;
    }
    o->pdata = rva;
    o->npdata = size / 12;
    return 0;
}

int vmc__pe_load_config(vmc_pe_obj_t *o)
{
    const vmc_pe_t *pe = &o->pe;
    uint32_t rva = pe->dir[VMC_PE_DIR_LOAD_CONFIG].rva;
    unsigned long long off = vmc__pe_offset(pe, rva);
    o->has_load_config = 0;
    o->guard_flags = o->guard_check = o->guard_dispatch = 0;
    if (!pe->dir[VMC_PE_DIR_LOAD_CONFIG].size) return 0;
    uint32_t size = vmc__pe_in_image(pe, rva, 4) ? vmc__pe_u32(o->img + rva) : 0;
    if (size < 4 || !vmc__pe_in_image(pe, rva, size))
        return vmc__fail(-ENOEXEC, "%s: load config Size (offset 0x%llx+0x0): 0x%x is not a size inside the image "
                         "(SizeOfImage 0x%x)", o->name, off, size, pe->size_of_image);
    const uint8_t *d = o->img + rva;
    static const struct { uint32_t at; const char *field; } slots[] = {
        {0x70, "GuardCFCheckFunctionPointer"}, {0x78, "GuardCFDispatchFunctionPointer"}};
    uint32_t *out[] = {&o->guard_check, &o->guard_dispatch};
    for (int i = 0; i < 2; i++) {
        if (size < slots[i].at + 8) break;
        uint64_t va = vmc__pe_u64(d + slots[i].at);
        if (!va) continue;
        if (!vmc__pe_in_image(pe, va - o->base, 8))
            return vmc__fail(-ENOEXEC, "%s: load config %s (offset 0x%llx+0x%x): 0x%llx is not inside the image",
                             o->name, slots[i].field, off, slots[i].at, (unsigned long long)va);
        *out[i] = (uint32_t)(va - o->base);
    }
    if (size >= 0x94) o->guard_flags = vmc__pe_u32(d + 0x90);
    o->has_load_config = 1;
    return 0;
}

int vmc__pe_read(vmc_pe_obj_t *o, uint64_t base)
{
    int e;
    o->base = base;
    memset(&o->imp, 0, sizeof o->imp);
    if ((e = vmc__pe_relocate(o)) || (e = vmc__pe_imports(o))) return e;
    if ((e = vmc__pe_exports(o)) || (e = vmc__pe_tls(o)) || (e = vmc__pe_pdata(o)) ||
        (e = vmc__pe_load_config(o))) {
        vmc__pe_free(o);
        return e;
    }
    return 0;
}

void vmc__pe_free(vmc_pe_obj_t *o)
{
    free(o->imp.dlls);
    free(o->imp.fn);
    memset(&o->imp, 0, sizeof o->imp);
}
