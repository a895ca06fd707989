/* Unwind information for generated code: vmc_unwind_add, vmc_unwind_remove.
 *
 * Windows x64 unwinds a frame (C++ and SEH exceptions, stack walks,
 * debuggers) from the RUNTIME_FUNCTION entry of the function it is in; a
 * frame of code nobody described is taken for a leaf (return address at
 * [rsp]), which is wrong for any generated function that pushes or moves rsp.
 * The user describes functions in tables laid out as RUNTIME_FUNCTION, every
 * offset from the code region's base; each table is copied, sorted and
 * handed to the system as one (vmc__os_unwind_add) with that base.
 *
 * The system asks the first table whose range [first begin, last end) holds
 * a pc, so ranges must not overlap: not each other's, and not a DLL image's
 * (a loaded DLL registers its own .pdata).  Hence a table's functions lie in
 * one run of blocks (one code-heap chunk or one large allocation), each in
 * live VMC_CODE memory, and no two tables' ranges overlap.  The handle keeps
 * its tables in a list (few: one per code allocation a user describes) and
 * vmc_close hands every one back.
 */
#include "api/vmc.h"
#include "alloc/blocks.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct vmc_unwind_table {
    struct vmc_unwind_table *next;
    uint32_t lo, hi;                  /* [first begin, last end), from the base */
    uint32_t n;
    vmc_unwind_entry_t e[];           /* sorted by begin: what the system reads */
};

/* Entries per table: more than any one code allocation holds functions. */
#define UNWIND_MAX_ENTRIES (1u << 20)

static int by_begin(const void *a, const void *b)
{
    const vmc_unwind_entry_t *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* UNWIND_INFO's size from its header: 4 bytes, the unwind codes (2 bytes
 * each, an even count), then a handler (4 bytes and its data, which the
 * user's handler reads) or a chained RUNTIME_FUNCTION (12). */
static int info_check(vmc_t *v, size_t i, uint32_t off)
{
    uintptr_t base = v->sp.code.base;
    size_t size = v->sp.code.size;
    if (off % 4 || (size_t)off + 4 > size)
        return vmc__fail(-EINVAL, "vmc_unwind_add: entry %zu: info 0x%" PRIx32 " is not a 4-byte aligned "
                         "offset inside the code region (0x%zx bytes)", i, off, size);
    if (!vmc__codeheap_kind_at(&v->sp, base + off))
        return vmc__fail(-EINVAL, "vmc_unwind_add: entry %zu: info 0x%" PRIx32 " is not in allocated memory "
                         "of the code region", i, off);
    const uint8_t *u = (const uint8_t *)(base + off);
    unsigned version = u[0] & 7, flags = u[0] >> 3, codes = u[2];
    if (version != 1 && version != 2)
        return vmc__fail(-EINVAL, "vmc_unwind_add: entry %zu: UNWIND_INFO at 0x%" PRIx32 ": version %u "
                         "(1 or 2 expected)", i, off, version);
    size_t len = 4 + 2 * (size_t)((codes + 1) & ~1u);
    if (flags & 4) len += 12;              /* UNW_FLAG_CHAININFO         */
    else if (flags & 3) len += 4;          /* UNW_FLAG_EHANDLER / _UHANDLER */
    if ((size_t)off + len > size || !vmc__codeheap_kind_at(&v->sp, base + off + len - 1))
        return vmc__fail(-EINVAL, "vmc_unwind_add: entry %zu: UNWIND_INFO at 0x%" PRIx32 " (0x%zx bytes with "
                         "its %u codes) runs past allocated memory", i, off, len, codes);
    return 0;
}

/* Is [lo, hi) (offsets) inside one run of the code region's blocks? */
static int one_run(vmc_t *v, uint32_t lo, uint32_t hi)
{
    vmc_run_t a, b;
    uintptr_t base = v->sp.code.base;
    return !vmc__blocks_find(v->sp.code_blocks, base + lo, &a) &&
           !vmc__blocks_find(v->sp.code_blocks, base + hi - 1, &b) && a.start == b.start;
}

int vmc_unwind_add(vmc_t *v, const vmc_unwind_entry_t *entries, size_t n)
{
    if (!v || !entries) return vmc__fail(-EINVAL, "vmc_unwind_add: NULL argument");
    if (!n || n > UNWIND_MAX_ENTRIES)
        return vmc__fail(-EINVAL, "vmc_unwind_add: %zu entries (1 to %u per table)", n, UNWIND_MAX_ENTRIES);
    struct vmc_unwind_table *t = malloc(sizeof *t + n * sizeof *t->e);
    if (!t) return vmc__fail(-ENOMEM, "vmc_unwind_add: out of memory for %zu entries", n);
    memcpy(t->e, entries, n * sizeof *t->e);
    qsort(t->e, n, sizeof *t->e, by_begin);
    t->n = (uint32_t)n;
    size_t size = v->sp.code.size;
    uintptr_t base = v->sp.code.base;
    int e = 0;
    for (size_t i = 0; i < n && !e; i++) {
        const vmc_unwind_entry_t *f = &t->e[i];
        if (f->begin >= f->end || f->end > size)
            e = vmc__fail(-EINVAL, "vmc_unwind_add: function 0x%" PRIx32 "-0x%" PRIx32 " is empty or past the "
                          "end of the code region (0x%zx bytes)", f->begin, f->end, size);
        else if (vmc__codeheap_kind_at(&v->sp, base + f->begin) != VMC_CODE ||
                 vmc__codeheap_kind_at(&v->sp, base + f->end - 1) != VMC_CODE)
            e = vmc__fail(-EINVAL, "vmc_unwind_add: function 0x%" PRIx32 "-0x%" PRIx32 " is not in live VMC_CODE "
                          "memory", f->begin, f->end);
        else if (i && f->begin < t->e[i - 1].end)
            e = vmc__fail(-EINVAL, "vmc_unwind_add: functions 0x%" PRIx32 "-0x%" PRIx32 " and 0x%" PRIx32
                          "-0x%" PRIx32 " overlap", t->e[i - 1].begin, t->e[i - 1].end, f->begin, f->end);
        else
            e = info_check(v, i, f->info);
    }
    t->lo = t->e[0].begin;
    t->hi = t->e[n - 1].end;
    if (!e && !one_run(v, t->lo, t->hi))
        e = vmc__fail(-EINVAL, "vmc_unwind_add: functions 0x%" PRIx32 "-0x%" PRIx32 " span more than one "
                      "allocation: one table per code allocation", t->lo, t->hi);
    if (e) {
        free(t);
        return e;
    }
    pthread_mutex_lock(&v->unwind_lock);
    for (struct vmc_unwind_table *o = v->unwind; o && !e; o = o->next)
        if (t->lo < o->hi && o->lo < t->hi)
            e = vmc__fail(-EEXIST, "vmc_unwind_add: functions 0x%" PRIx32 "-0x%" PRIx32 " overlap a table "
                          "added before (0x%" PRIx32 "-0x%" PRIx32 ")", t->lo, t->hi, o->lo, o->hi);
    if (!e && (e = vmc__os_unwind_add(t->e, t->n, base)) != 0) {
        if (e == -ENOTSUP)
            e = vmc__fail(e, "vmc_unwind_add: unwind tables are Windows x64's (RUNTIME_FUNCTION); on this "
                          "system describe generated code with DWARF CFI (__register_frame)");
        else
            e = vmc__fail(e, "vmc_unwind_add: RtlAddFunctionTable of %u entries: %s", t->n, strerror(-e));
    }
    if (!e) {
        t->next = v->unwind;
        v->unwind = t;
    }
    pthread_mutex_unlock(&v->unwind_lock);
    if (e) free(t);
    return e;
}

int vmc_unwind_remove(vmc_t *v, const void *addr, size_t size)
{
    if (!v) return vmc__fail(-EINVAL, "vmc_unwind_remove: NULL handle");
    uintptr_t a = (uintptr_t)addr, base = v->sp.code.base;
    if (a < base || size > v->sp.code.size || a - base > v->sp.code.size - size)
        return vmc__fail(-EINVAL, "vmc_unwind_remove: %#" PRIxPTR "+%#zx is not inside the code region", a, size);
    uintptr_t lo = a - base, hi = lo + size;
    int e = 0;
    pthread_mutex_lock(&v->unwind_lock);
    for (struct vmc_unwind_table *o = v->unwind; o && !e; o = o->next)
        if (o->lo < hi && lo < o->hi && (o->lo < lo || o->hi > hi))
            e = vmc__fail(-EINVAL, "vmc_unwind_remove: %#" PRIxPTR "+%#zx cuts the table of functions 0x%" PRIx32
                          "-0x%" PRIx32 " (remove all of it)", a, size, o->lo, o->hi);
    for (struct vmc_unwind_table **p = &v->unwind; *p && !e;) {
        struct vmc_unwind_table *o = *p;
        if (o->lo >= lo && o->hi <= hi) {
            vmc__os_unwind_remove(o->e);
            *p = o->next;
            free(o);
        } else {
            p = &o->next;
        }
    }
    pthread_mutex_unlock(&v->unwind_lock);
    return e;
}

void vmc__unwind_close(vmc_t *v)
{
    while (v->unwind) {
        struct vmc_unwind_table *o = v->unwind;
        vmc__os_unwind_remove(o->e);
        v->unwind = o->next;
        free(o);
    }
    pthread_mutex_destroy(&v->unwind_lock);
}
