/* The dynamic section, the tables it points to, and symbol look-up.
 *
 * The image is mapped by the time this runs, so the tables are read in
 * place, but every address and size that the dynamic section gives is
 * checked first to lie inside the file-backed part of one readable PT_LOAD
 * (vmc__elf_ptr), with its alignment; sizes are checked against entry sizes;
 * the string table must end in a NUL so that any offset below DT_STRSZ is a
 * terminated string; every symbol's name offset is checked once here, as is
 * every version index, so later look-ups need not.
 *
 * The symbol count is not in the dynamic section: it is DT_HASH's nchain,
 * or for DT_GNU_HASH one past the end of the chain that starts at the
 * largest bucket (walked with bounds), or more if a relocation names a
 * symbol past that (undefined symbols are not hashed).  Look-ups use DT_GNU_HASH when present
 * (bloom filter, then the bucket's chain) and DT_HASH otherwise, with a step
 * limit so a hostile chain cannot loop.
 *
 * Where the tables are read: a library's symbol, string, hash, version and
 * relocation tables sit together in its first segment, which is not
 * writable (the linkers put them there).  The file part of the segment
 * holding the lowest of them is read whole, once, with pread into memory of
 * the loader's own (when it is not writable and at most SNAP_MAX), and
 * every table inside it is checked and used there for the library's life.
 * Two reasons: reading them through the fresh mapping costs a page fault
 * that maps up to 16 pages, several microseconds on a virtual machine, more
 * than the pread, and the system loader takes it; and what was checked
 * there cannot change afterwards, where a private file mapping shows another
 * process's writes to the file in every page not yet copied.  Tables
 * elsewhere (another layout, a segment over SNAP_MAX, a load from memory)
 * are read in the image.  Either way, the tables checked once and trusted
 * after (symbols, strings, hashes, versions) must not be in a writable
 * segment, where a relocation could change them after the check.
 *
 * Versions: DT_VERDEF and DT_VERNEED together define what each version index
 * means; a table indexed by version gives the name, and for VERNEED the file
 * that is asked for (it is what dlvsym gets).  A versioned reference matches
 * a definition of that version name; an unversioned one matches the default
 * (non-hidden) definition.
 */
#include "elf/elf.h"
#include "base/attrs.h"
#include "arch/reloc.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VERSION_INDEX 0x7fff
#define MAX_SYMBOLS       (1u << 24)

VMC_LOAD_PATH const void *vmc__elf_ptr(const vmc_elf_obj_t *l, uint64_t vaddr, uint64_t size)
{
    /* The copy is the whole file part of one readable segment (segments
     * never overlap): a range inside it needs no search of the segments. */
    if (l->snap && vaddr >= l->snap_va && size <= l->snap_len && vaddr - l->snap_va <= l->snap_len - size)
        return l->snap + (vaddr - l->snap_va);
    const vmc_seg_t *s = vmc__elf_seg(&l->elf, vaddr, size, 0);
    if (!s || !(s->flags & PF_R)) return NULL;
    return (const void *)(l->bias + vaddr);
}

VMC_LOAD_PATH const char *vmc__elf_str(const vmc_elf_obj_t *l, uint32_t off)
{
    return off < l->strsz ? l->strtab + off : "";
}

VMC_LOAD_PATH uint32_t vmc__elf_hash(const char *name)
{
    uint32_t h = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h = (h << 4) + *p;
        uint32_t g = h & 0xf0000000u;
        if (g) h ^= g >> 24;
        h &= ~g;
    }
    return h;
}

VMC_LOAD_PATH vmc_name_t vmc__elf_name(const char *str)
{
    uint32_t h = 5381;
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) h = h * 33 + *p;
    return (vmc_name_t){str, h};
}

static const char *tag_name(int64_t tag)
{
    switch (tag) {
    case DT_NEEDED: return "DT_NEEDED";
    case DT_PLTRELSZ: return "DT_PLTRELSZ";
    case DT_HASH: return "DT_HASH";
    case DT_STRTAB: return "DT_STRTAB";
    case DT_SYMTAB: return "DT_SYMTAB";
    case DT_RELA: return "DT_RELA";
    case DT_RELASZ: return "DT_RELASZ";
    case DT_RELAENT: return "DT_RELAENT";
    case DT_STRSZ: return "DT_STRSZ";
    case DT_SYMENT: return "DT_SYMENT";
    case DT_INIT: return "DT_INIT";
    case DT_FINI: return "DT_FINI";
    case DT_SONAME: return "DT_SONAME";
    case DT_REL: return "DT_REL";
    case DT_RELSZ: return "DT_RELSZ";
    case DT_PLTREL: return "DT_PLTREL";
    case DT_TEXTREL: return "DT_TEXTREL";
    case DT_JMPREL: return "DT_JMPREL";
    case DT_INIT_ARRAY: return "DT_INIT_ARRAY";
    case DT_FINI_ARRAY: return "DT_FINI_ARRAY";
    case DT_INIT_ARRAYSZ: return "DT_INIT_ARRAYSZ";
    case DT_FINI_ARRAYSZ: return "DT_FINI_ARRAYSZ";
    case DT_FLAGS: return "DT_FLAGS";
    case DT_PREINIT_ARRAY: return "DT_PREINIT_ARRAY";
    case DT_RELRSZ: return "DT_RELRSZ";
    case DT_RELR: return "DT_RELR";
    case DT_RELRENT: return "DT_RELRENT";
    case DT_GNU_HASH: return "DT_GNU_HASH";
    case DT_VERSYM: return "DT_VERSYM";
    case DT_VERDEF: return "DT_VERDEF";
    case DT_VERDEFNUM: return "DT_VERDEFNUM";
    case DT_VERNEED: return "DT_VERNEED";
    case DT_VERNEEDNUM: return "DT_VERNEEDNUM";
    case DT_FLAGS_1: return "DT_FLAGS_1";
    case DT_PREINIT_ARRAYSZ: return "DT_PREINIT_ARRAYSZ";
    case DT_FILTER: return "DT_FILTER";
    case DT_AUXILIARY: return "DT_AUXILIARY";
    case DT_RPATH: return "DT_RPATH";
    case DT_RUNPATH: return "DT_RUNPATH";
    default: return "entry";
    }
}

/* Where each tag we use was found (dynamic entry index), for messages. */
enum { T_STRTAB, T_STRSZ, T_SYMTAB, T_HASH, T_GNU_HASH, T_RELA, T_RELASZ, T_JMPREL, T_PLTRELSZ,
       T_RELR, T_RELRSZ, T_INIT_ARRAY, T_INIT_ARRAYSZ, T_FINI_ARRAY, T_FINI_ARRAYSZ, T_VERSYM,
       T_VERDEF, T_VERDEFNUM, T_VERNEED, T_VERNEEDNUM, T_SONAME, T_RPATH, T_RUNPATH, T_COUNT };

typedef struct dyn_ctx {
    vmc_elf_obj_t *l;
    int at[T_COUNT];             /* entry index + 1, 0 = absent             */
    uint64_t val[T_COUNT];
    int needed_at[VMC_ELF_MAX_NEEDED];
    uint32_t needed[VMC_ELF_MAX_NEEDED];  /* the offsets, copied out once counted */
    size_t nneeded;
} dyn_ctx_t;

static int dyn_fail(const dyn_ctx_t *c, int t, const char *fmt, ...) VMC_PRINTF(3, 4);
static int dyn_unsup(const dyn_ctx_t *c, int t, const char *fmt, ...) VMC_PRINTF(3, 4);

/* "libx.so: dynamic entry 7 DT_SYMTAB (offset 0x2de0+0x70): PROBLEM", with
 * -ENOEXEC (malformed) or -ENOTSUP (a valid feature this loader does not
 * take: dyn_entry_unsup). */
static int entry_fail_code(const vmc_elf_obj_t *l, int code, size_t i, const char *msg)
{
    return vmc__fail(code, "%s: dynamic entry %zu %s (offset 0x%lx+0x%lx): %s", l->name, i,
                     tag_name(l->dyn[i].d_tag), (unsigned long)l->elf.dyn_offset,
                     (unsigned long)(i * sizeof(Elf64_Dyn)), msg);
}

static int dyn_entry_fail(const vmc_elf_obj_t *l, size_t i, const char *msg)
{
    return entry_fail_code(l, -ENOEXEC, i, msg);
}

static int dyn_entry_unsup(const vmc_elf_obj_t *l, size_t i, const char *msg)
{
    return entry_fail_code(l, -ENOTSUP, i, msg);
}

static int dyn_fail(const dyn_ctx_t *c, int t, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dyn_entry_fail(c->l, (size_t)c->at[t] - 1, msg);
}

static int dyn_unsup(const dyn_ctx_t *c, int t, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dyn_entry_unsup(c->l, (size_t)c->at[t] - 1, msg);
}

/* Copy the file part of the segment holding the lowest table into l->snap,
 * whole: a range vmc__elf_ptr accepts lies inside one segment, so a table
 * that starts in the copy ends in it.  The copy starts at the same offset
 * from a 16-byte boundary as the segment, so every table keeps in the copy
 * the alignment its address was checked for. */
#define SNAP_MAX (124 * 1024)    /* under malloc's mmap threshold: heap memory
                                    that is already mapped, no fresh pages */

static int tables_unreadable(vmc_elf_obj_t *l, const vmc_seg_t *s, size_t len, int e, uint64_t ends)
{
    if (e)
        return vmc__fail(e, "%s: reading its dynamic tables (offset 0x%lx, 0x%zx bytes): %s", l->name,
                         (unsigned long)s->offset, len, strerror(-e));
    return vmc__fail(-ENOEXEC, "%s: reading its dynamic tables (offset 0x%lx, 0x%zx bytes): the file "
                     "ends at 0x%lx (it shrank while loading)", l->name, (unsigned long)s->offset, len,
                     (unsigned long)ends);
}

/* Could segment s be the tables' copy with the file's first bytes as its
 * start? */
static int head_can_hold(const vmc_seg_t *s)
{
    return s && (s->flags & (PF_R | PF_W)) == PF_R && s->filesz && s->filesz <= SNAP_MAX && s->offset == 0 &&
           !(s->vaddr & 15);
}

VMC_LOAD_PATH int vmc__elf_read_head(vmc_elf_obj_t *l, vmc_src_t *src)
{
    const vmc_seg_t *s = l->elf.nload ? &l->elf.load[0] : NULL;
    if (src->fd < 0 || !src->head || !head_can_hold(s) || s->filesz <= src->head_len) return 0;
    size_t len = (size_t)s->filesz, got;
    uint8_t *p = realloc(src->head, len);
    if (!p) return vmc__fail(-ENOMEM, "%s: out of memory for its dynamic tables (%zu bytes)", l->name, len);
    src->head = p;
    int e = vmc__os_pread(src->fd, p + src->head_len, len - src->head_len, (off_t)src->head_len, &got);
    if (e || got != len - src->head_len) return tables_unreadable(l, s, len, e, src->head_len + got);
    src->head_len = len;
    return 0;
}

static int snapshot(dyn_ctx_t *c, vmc_src_t *src)
{
    static const int starts[] = {T_STRTAB, T_SYMTAB, T_HASH, T_GNU_HASH, T_VERSYM,
                                 T_VERDEF, T_VERNEED, T_RELA, T_JMPREL, T_RELR};
    vmc_elf_obj_t *l = c->l;
    uint64_t lo = UINT64_MAX;
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++)
        if (c->at[starts[i]] && c->val[starts[i]] < lo) lo = c->val[starts[i]];
    const vmc_seg_t *s = vmc__elf_seg(&l->elf, lo, 0, 0);
    if (!s || (s->flags & (PF_R | PF_W)) != PF_R || !s->filesz || s->filesz > SNAP_MAX) return 0;
    size_t len = (size_t)s->filesz, skew = (size_t)(s->vaddr & 15), got;
    if (head_can_hold(s) && src->head && src->head_len >= len) {
        /* the usual layout: read with the header already
         * (vmc__elf_read_head); that buffer becomes the copy */
        l->snap_mem = src->head;
        src->head = NULL;
    } else {
        uint8_t *buf = malloc(skew + len);
        if (!buf) return vmc__fail(-ENOMEM, "%s: out of memory for its dynamic tables (%zu bytes)", l->name, len);
        int e = vmc__os_pread(src->fd, buf + skew, len, (off_t)s->offset, &got);
        if (e || got != len) {
            free(buf);
            return tables_unreadable(l, s, len, e, s->offset + got);
        }
        l->snap_mem = buf;
    }
    l->snap = l->snap_mem + skew;
    l->snap_va = s->vaddr;
    l->snap_len = len;
    return 0;
}

/* A table named by entry t: [val, val+size) inside the image, aligned.
 * The pointer is good for those `size` bytes only (the first ones may be in
 * l->snap and the rest not): take it again for a longer range.  With
 * `trusted`, the table is checked once and used for the library's life (the
 * symbol, string, hash and version tables), so it must not be writable: a
 * relocation could change it after the check. */
VMC_LOAD_PATH static const void *table(const dyn_ctx_t *c, int t, uint64_t size, uint64_t align, int trusted, int *err)
{
    uint64_t a = c->val[t];
    const void *p = vmc__elf_ptr(c->l, a, size);
    if (!p) {
        *err = dyn_fail(c, t, "0x%lx+0x%lx is not inside the file part of a readable PT_LOAD",
                        (unsigned long)a, (unsigned long)size);
        return NULL;
    }
    if (a % align) {
        *err = dyn_fail(c, t, "0x%lx is not %lu-byte aligned", (unsigned long)a, (unsigned long)align);
        return NULL;
    }
    if (trusted && (vmc__elf_seg(&c->l->elf, a, size, 0)->flags & PF_W)) {
        *err = dyn_unsup(c, t, "0x%lx+0x%lx is in a writable PT_LOAD, which is not supported (a relocation "
                         "could change it after it is checked)", (unsigned long)a, (unsigned long)size);
        return NULL;
    }
    return p;
}

static int read_gnu_hash(dyn_ctx_t *c, size_t *nsyms)
{
    vmc_elf_obj_t *l = c->l;
    int err = 0;
    const uint32_t *h = table(c, T_GNU_HASH, 16, 8, 1, &err);
    if (!h) return err;
    uint64_t off = vmc__elf_offset(&l->elf, c->val[T_GNU_HASH]);
    uint32_t nb = h[0], symoff = h[1], bloom = h[2], shift = h[3];
    if (nb == 0)
        return vmc__fail(-ENOEXEC, "%s: DT_GNU_HASH (offset 0x%lx): nbuckets is 0", l->name,
                         (unsigned long)off);
    if (bloom == 0 || (bloom & (bloom - 1)))
        return vmc__fail(-ENOEXEC, "%s: DT_GNU_HASH (offset 0x%lx+0x8): bloom size %u is not a power of two",
                         l->name, (unsigned long)off, bloom);
    if (shift >= 32)  /* it shifts a 32-bit hash */
        return vmc__fail(-ENOEXEC, "%s: DT_GNU_HASH (offset 0x%lx+0xc): bloom shift %u is not below 32",
                         l->name, (unsigned long)off, shift);
    uint64_t size = 16 + (uint64_t)bloom * 8 + (uint64_t)nb * 4;
    if (!(h = vmc__elf_ptr(l, c->val[T_GNU_HASH], size)))  /* h again: for all `size` bytes */
        return vmc__fail(-ENOEXEC, "%s: DT_GNU_HASH (offset 0x%lx): %u buckets and %u bloom words "
                         "run past the end of their segment", l->name, (unsigned long)off, nb, bloom);
    l->g_nbuckets = nb;
    l->g_symoffset = symoff;
    l->g_bloom_size = bloom;
    l->g_bloom_shift = shift;
    l->g_bloom = (const uint64_t *)(h + 4);
    l->g_buckets = (const uint32_t *)(l->g_bloom + bloom);
    l->g_chain = l->g_buckets + nb;
    uint32_t maxb = 0;
    for (uint32_t i = 0; i < nb; i++) {
        uint32_t b = l->g_buckets[i];
        if (b && b < symoff)
            return vmc__fail(-ENOEXEC, "%s: DT_GNU_HASH bucket %u (offset 0x%lx+0x%lx): symbol %u is below "
                             "symoffset %u", l->name, i, (unsigned long)off,
                             (unsigned long)(16 + (uint64_t)bloom * 8 + (uint64_t)i * 4), b, symoff);
        if (b > maxb) maxb = b;
    }
    if (maxb == 0) {
        *nsyms = symoff;
        return 0;
    }
    uint64_t chain_va = c->val[T_GNU_HASH] + size;
    for (uint64_t i = maxb;; i++) {
        if (i >= MAX_SYMBOLS)
            return vmc__fail(-ENOEXEC, "%s: DT_GNU_HASH (offset 0x%lx): chain has more than %u symbols",
                             l->name, (unsigned long)off, MAX_SYMBOLS);
        const uint32_t *e = vmc__elf_ptr(l, chain_va + (i - symoff) * 4, 4);
        if (!e)
            return vmc__fail(-ENOEXEC, "%s: DT_GNU_HASH (offset 0x%lx): chain of symbol %lu runs past "
                             "the end of its segment", l->name, (unsigned long)off, (unsigned long)i);
        if (*e & 1) {
            /* the whole table with every chain a look-up may walk, in one
             * piece, and the pointers taken again for all of it */
            if (!(h = vmc__elf_ptr(l, c->val[T_GNU_HASH], size + (i + 1 - symoff) * 4)))
                return vmc__fail(-ENOEXEC, "%s: DT_GNU_HASH (offset 0x%lx): its chains (%lu entries) are "
                                 "not inside one segment", l->name, (unsigned long)off,
                                 (unsigned long)(i + 1 - symoff));
            l->g_bloom = (const uint64_t *)(h + 4);
            l->g_buckets = (const uint32_t *)(l->g_bloom + bloom);
            l->g_chain = l->g_buckets + nb;
            *nsyms = i + 1;
            return 0;
        }
    }
}

static int read_sysv_hash(dyn_ctx_t *c, size_t *nsyms)
{
    vmc_elf_obj_t *l = c->l;
    int err = 0;
    const uint32_t *h = table(c, T_HASH, 8, 4, 1, &err);
    if (!h) return err;
    uint32_t nb = h[0], nc = h[1];
    /* h again, for all of the table */
    if (nb == 0 || nc > MAX_SYMBOLS || !(h = vmc__elf_ptr(l, c->val[T_HASH], 8 + 4 * ((uint64_t)nb + nc))))
        return vmc__fail(-ENOEXEC, "%s: DT_HASH (offset 0x%lx): %u buckets and %u chains do not fit "
                         "their segment", l->name,
                         (unsigned long)vmc__elf_offset(&l->elf, c->val[T_HASH]), nb, nc);
    l->h_nbucket = nb;
    l->h_nchain = nc;
    l->h_bucket = h + 2;
    l->h_chain = h + 2 + nb;
    *nsyms = nc;
    return 0;
}

/* Walk DT_VERDEF and DT_VERNEED; with fill == 0 only find the largest index. */
VMC_LOAD_PATH static int walk_versions(dyn_ctx_t *c, int fill, size_t *maxidx)
{
    vmc_elf_obj_t *l = c->l;
    size_t budget = MAX_VERSION_INDEX;
    if (c->at[T_VERDEF]) {
        uint64_t va = c->val[T_VERDEF];
        uint64_t n = c->at[T_VERDEFNUM] ? c->val[T_VERDEFNUM] : 0;
        for (uint64_t k = 0; k < n; k++) {
            if (!budget--) return dyn_fail(c, T_VERDEFNUM, "more than %d versions", MAX_VERSION_INDEX);
            const Elf64_Verdef *d = vmc__elf_ptr(l, va, sizeof *d);
            uint64_t aux;
            if (!d || va % 4 || !add_ok(va, d->vd_aux, &aux))
                return dyn_fail(c, T_VERDEF, "definition %lu at 0x%lx is outside the image",
                                (unsigned long)k, (unsigned long)va);
            if (d->vd_version != 1)
                return dyn_fail(c, T_VERDEF, "definition %lu has vd_version %u", (unsigned long)k,
                                d->vd_version);
            const Elf64_Verdaux *a = d->vd_cnt ? vmc__elf_ptr(l, aux, sizeof *a) : NULL;
            if (!a || aux % 4 || a->vda_name >= l->strsz)
                return dyn_fail(c, T_VERDEF, "definition %lu has no name inside the string table",
                                (unsigned long)k);
            size_t ndx = d->vd_ndx & MAX_VERSION_INDEX;
            if (ndx > *maxidx && !fill) *maxidx = ndx;
            if (fill && ndx < l->nvers) {
                l->vers[ndx].name = l->strtab + a->vda_name;
                l->vers[ndx].file = NULL;
                l->vers[ndx].hash = d->vd_hash;
                l->vers[ndx].defined = 1;   /* hash0: vmc__elf_ver_hash0 */
            }
            if (!d->vd_next) break;
            if (!add_ok(va, d->vd_next, &va))
                return dyn_fail(c, T_VERDEF, "definition %lu: vd_next overflows", (unsigned long)k);
        }
    }
    if (c->at[T_VERNEED]) {
        uint64_t va = c->val[T_VERNEED];
        uint64_t n = c->at[T_VERNEEDNUM] ? c->val[T_VERNEEDNUM] : 0;
        for (uint64_t k = 0; k < n; k++) {
            const Elf64_Verneed *d = vmc__elf_ptr(l, va, sizeof *d);
            uint64_t aux;
            if (!d || va % 4 || !add_ok(va, d->vn_aux, &aux))
                return dyn_fail(c, T_VERNEED, "requirement %lu at 0x%lx is outside the image",
                                (unsigned long)k, (unsigned long)va);
            if (d->vn_version != 1)
                return dyn_fail(c, T_VERNEED, "requirement %lu has vn_version %u", (unsigned long)k,
                                d->vn_version);
            if (d->vn_file >= l->strsz)
                return dyn_fail(c, T_VERNEED, "requirement %lu: vn_file 0x%x is outside the string table",
                                (unsigned long)k, d->vn_file);
            for (unsigned j = 0; j < d->vn_cnt; j++) {
                if (!budget--)
                    return dyn_fail(c, T_VERNEEDNUM, "more than %d versions", MAX_VERSION_INDEX);
                const Elf64_Vernaux *a = vmc__elf_ptr(l, aux, sizeof *a);
                if (!a || aux % 4 || a->vna_name >= l->strsz)
                    return dyn_fail(c, T_VERNEED, "requirement %lu version %u is outside the image or "
                                    "has no name", (unsigned long)k, j);
                size_t ndx = a->vna_other & MAX_VERSION_INDEX;
                if (ndx > *maxidx && !fill) *maxidx = ndx;
                if (fill && ndx < l->nvers) {
                    l->vers[ndx].name = l->strtab + a->vna_name;
                    l->vers[ndx].file = l->strtab + d->vn_file;
                    l->vers[ndx].hash = a->vna_hash;
                    l->vers[ndx].defined = 0;
                    l->vers[ndx].hash0 = vmc__elf_hash(l->vers[ndx].name) == 0;
                }
                if (!a->vna_next) break;
                if (!add_ok(aux, a->vna_next, &aux))
                    return dyn_fail(c, T_VERNEED, "requirement %lu: vna_next overflows", (unsigned long)k);
            }
            if (!d->vn_next) break;
            if (!add_ok(va, d->vn_next, &va))
                return dyn_fail(c, T_VERNEED, "requirement %lu: vn_next overflows", (unsigned long)k);
        }
    }
    return 0;
}

static int read_versions(dyn_ctx_t *c)
{
    vmc_elf_obj_t *l = c->l;
    int err = 0;
    if (!c->at[T_VERSYM]) return 0;
    l->versym = table(c, T_VERSYM, (uint64_t)l->nsyms * 2, 2, 1, &err);
    if (!l->versym) return err;
    size_t maxidx = 1;
    if ((err = walk_versions(c, 0, &maxidx))) return err;
    l->nvers = maxidx + 1;
    l->vers = calloc(l->nvers, sizeof *l->vers);
    if (!l->vers) return vmc__fail(-ENOMEM, "%s: out of memory for %zu versions", l->name, l->nvers);
    if ((err = walk_versions(c, 1, &maxidx))) return err;
    for (size_t i = 0; i < l->nsyms; i++) {
        size_t ndx = l->versym[i] & MAX_VERSION_INDEX;
        if (ndx > 1 && (ndx >= l->nvers || !l->vers[ndx].name))
            return vmc__fail(-ENOEXEC, "%s: DT_VERSYM entry %zu (offset 0x%lx+0x%lx): version index %zu "
                             "is defined by neither DT_VERDEF nor DT_VERNEED", l->name, i,
                             (unsigned long)vmc__elf_offset(&l->elf, c->val[T_VERSYM]),
                             (unsigned long)(i * 2), ndx);
    }
    return 0;
}

VMC_LOAD_PATH static int reloc_table(dyn_ctx_t *c, int t, int tsz, uint64_t entsize, uint64_t *va, uint64_t *sz)
{
    if (!c->at[t] && !c->at[tsz]) return 0;
    if (!c->at[t] || !c->at[tsz])
        return dyn_fail(c, c->at[t] ? t : tsz, "given without its %s", c->at[t] ? "size" : "address");
    int err = 0;
    if (c->val[tsz] % entsize)
        return dyn_fail(c, tsz, "0x%lx is not a multiple of %lu", (unsigned long)c->val[tsz],
                        (unsigned long)entsize);
    if (c->val[tsz] && !table(c, t, c->val[tsz], 8, 0, &err)) return err;
    *va = c->val[t];
    *sz = c->val[tsz];
    return 0;
}

/* One past the largest symbol index that DT_RELA or DT_JMPREL names. */
static size_t reloc_symbols(const vmc_elf_obj_t *l)
{
    size_t n = 0;
    uint64_t tabs[2][2] = {{l->rela, l->relasz}, {l->jmprel, l->pltrelsz}};
    for (int t = 0; t < 2; t++) {
        const Elf64_Rela *r = tabs[t][1] ? vmc__elf_ptr(l, tabs[t][0], tabs[t][1]) : NULL;
        for (size_t i = 0; r && i < tabs[t][1] / sizeof *r; i++) {
            size_t sym = ELF64_R_SYM(r[i].r_info);
            if (vmc__arch_reloc_kind(ELF64_R_TYPE(r[i].r_info)) != VMC_RELOC_NONE && sym >= n) n = sym + 1;
        }
    }
    return n;
}

VMC_LOAD_PATH int vmc__elf_dyn(vmc_elf_obj_t *l, vmc_src_t *src)
{
    dyn_ctx_t c;
    memset(&c, 0, sizeof c);
    c.l = l;
    l->dyn = vmc__elf_ptr(l, l->elf.dyn_vaddr, l->elf.dyn_size);
    if (!l->dyn)  /* checked in check.c, unless the segment is not readable */
        return vmc__fail(-ENOEXEC, "%s: PT_DYNAMIC (offset 0x%lx) is not in a readable segment", l->name,
                         (unsigned long)l->elf.dyn_offset);
    l->ndyn = l->elf.dyn_size / sizeof(Elf64_Dyn);
    free(l->needed);
    l->needed = NULL;
    l->nneeded = 0;
    for (size_t i = 0; i < l->ndyn; i++) {
        int64_t tag = l->dyn[i].d_tag;
        uint64_t val = l->dyn[i].d_un.d_val;
        int t = -1;
        if (tag == DT_NULL) break;
        switch (tag) {
        case DT_NEEDED:
            if (c.nneeded == VMC_ELF_MAX_NEEDED)
                return dyn_entry_unsup(l, i, "more than 64 DT_NEEDED entries are not supported");
            c.needed_at[c.nneeded] = (int)i;
            c.needed[c.nneeded++] = (uint32_t)(val > UINT32_MAX ? UINT32_MAX : val);
            break;
        case DT_STRTAB: t = T_STRTAB; break;
        case DT_STRSZ: t = T_STRSZ; break;
        case DT_SYMTAB: t = T_SYMTAB; break;
        case DT_HASH: t = T_HASH; break;
        case DT_GNU_HASH: t = T_GNU_HASH; break;
        case DT_RELA: t = T_RELA; break;
        case DT_RELASZ: t = T_RELASZ; break;
        case DT_JMPREL: t = T_JMPREL; break;
        case DT_PLTRELSZ: t = T_PLTRELSZ; break;
        case DT_RELR: t = T_RELR; break;
        case DT_RELRSZ: t = T_RELRSZ; break;
        case DT_INIT_ARRAY: t = T_INIT_ARRAY; break;
        case DT_INIT_ARRAYSZ: t = T_INIT_ARRAYSZ; break;
        case DT_FINI_ARRAY: t = T_FINI_ARRAY; break;
        case DT_FINI_ARRAYSZ: t = T_FINI_ARRAYSZ; break;
        case DT_VERSYM: t = T_VERSYM; break;
        case DT_VERDEF: t = T_VERDEF; break;
        case DT_VERDEFNUM: t = T_VERDEFNUM; break;
        case DT_VERNEED: t = T_VERNEED; break;
        case DT_VERNEEDNUM: t = T_VERNEEDNUM; break;
        case DT_SONAME: t = T_SONAME; break;
        case DT_INIT: l->init = val; break;
        case DT_FINI: l->fini = val; break;
        case DT_SYMENT:
            if (val != sizeof(Elf64_Sym)) return dyn_entry_fail(l, i, "symbol size is not 24");
            break;
        case DT_RELAENT:
            if (val != sizeof(Elf64_Rela)) return dyn_entry_fail(l, i, "relocation size is not 24");
            break;
        case DT_RELRENT:
            if (val != 8) return dyn_entry_fail(l, i, "RELR entry size is not 8");
            break;
        case DT_PLTREL:
            if (val != DT_RELA) return dyn_entry_fail(l, i, "PLT relocations are not DT_RELA");
            break;
        case DT_REL:
        case DT_RELSZ:
            return dyn_entry_fail(l, i, "DT_REL relocations are not used on x86-64");
        case DT_TEXTREL:
            return dyn_entry_unsup(l, i, "text relocations (DT_TEXTREL) are not supported");
        case DT_FLAGS:
            l->dt_flags = val;
            if (val & DF_TEXTREL) return dyn_entry_unsup(l, i, "text relocations (DF_TEXTREL) are not supported");
            break;
        case DT_FLAGS_1:
            l->dt_flags_1 = val;
            /* as the system loader: a PIE has PT_INTERP and is ET_DYN like
             * a library, and only this flag tells them apart */
            if (val & DF_1_PIE)
                return dyn_entry_fail(l, i, "DF_1_PIE: a position-independent executable cannot be loaded "
                                      "as a library");
            break;
        case DT_PREINIT_ARRAY:
        case DT_PREINIT_ARRAYSZ:
            return dyn_entry_unsup(l, i, "DT_PREINIT_ARRAY (run before an executable's constructors) is not "
                                   "supported");
        case DT_FILTER:
        case DT_AUXILIARY:
            /* the look-ups would have to go to the filtee, which is not done */
            return dyn_entry_unsup(l, i, "filters (DT_FILTER, DT_AUXILIARY) are not supported");
        case DT_RPATH: t = T_RPATH; break;
        case DT_RUNPATH: t = T_RUNPATH; break;
        default: break;
        }
        if (t >= 0) {
            c.at[t] = (int)i + 1;
            c.val[t] = val;
        }
    }

    int err = 0;
    if (!c.at[T_STRTAB] || !c.at[T_STRSZ] || !c.at[T_SYMTAB] || (!c.at[T_HASH] && !c.at[T_GNU_HASH]))
        return vmc__fail(-ENOEXEC, "%s: dynamic section (offset 0x%lx): %s is missing", l->name,
                         (unsigned long)l->elf.dyn_offset,
                         !c.at[T_STRTAB] ? "DT_STRTAB" : !c.at[T_STRSZ] ? "DT_STRSZ"
                         : !c.at[T_SYMTAB] ? "DT_SYMTAB" : "DT_HASH or DT_GNU_HASH");
    if (c.val[T_STRSZ] == 0 || c.val[T_STRSZ] > UINT32_MAX)
        return dyn_fail(&c, T_STRSZ, "string table size 0x%lx", (unsigned long)c.val[T_STRSZ]);
    if (src->fd >= 0 && (err = snapshot(&c, src))) return err;
    l->strtab = table(&c, T_STRTAB, c.val[T_STRSZ], 1, 1, &err);
    if (!l->strtab) return err;
    l->strsz = c.val[T_STRSZ];
    if (l->strtab[l->strsz - 1])
        return dyn_fail(&c, T_STRSZ, "the string table does not end in a NUL");

    /* The symbol count: what the hash tables reach, and every symbol a
     * relocation names (a GNU hash table says nothing about undefined
     * symbols, which may lie past its symoffset). */
    if ((err = reloc_table(&c, T_RELA, T_RELASZ, sizeof(Elf64_Rela), &l->rela, &l->relasz))) return err;
    if ((err = reloc_table(&c, T_JMPREL, T_PLTRELSZ, sizeof(Elf64_Rela), &l->jmprel, &l->pltrelsz)))
        return err;
    size_t ng = 0, nh = 0, nr = reloc_symbols(l);
    if (c.at[T_GNU_HASH] && (err = read_gnu_hash(&c, &ng))) return err;
    if (c.at[T_HASH] && (err = read_sysv_hash(&c, &nh))) return err;
    l->nsyms = ng > nh ? ng : nh;
    if (nr > l->nsyms) l->nsyms = nr;
    l->symtab = table(&c, T_SYMTAB, (uint64_t)l->nsyms * sizeof(Elf64_Sym), 8, 1, &err);
    if (!l->symtab) return err;
    for (size_t i = 0; i < l->nsyms; i++) {
        if (l->symtab[i].st_name >= l->strsz)
            return vmc__fail(-ENOEXEC, "%s: symbol %zu (offset 0x%lx+0x%lx): st_name 0x%x is outside the "
                             "string table (DT_STRSZ 0x%zx)", l->name, i,
                             (unsigned long)vmc__elf_offset(&l->elf, c.val[T_SYMTAB]),
                             (unsigned long)(i * sizeof(Elf64_Sym)), l->symtab[i].st_name, l->strsz);
    }
    /* The offsets are gathered in one pass and copied out sized to the
     * section's count (not room for 64 in every record).  Counting first
     * and storing in a second pass would read the image twice: a file
     * rewritten in place under its private mapping could show the second
     * pass more entries than the first counted. */
    if (c.nneeded) {
        if (!(l->needed = malloc(c.nneeded * sizeof *l->needed)))
            return vmc__fail(-ENOMEM, "%s: out of memory for its %zu DT_NEEDED entries", l->name, c.nneeded);
        memcpy(l->needed, c.needed, c.nneeded * sizeof *l->needed);
        l->nneeded = c.nneeded;
    }
    for (size_t i = 0; i < l->nneeded; i++)
        if (l->needed[i] >= l->strsz)
            return dyn_entry_fail(l, (size_t)c.needed_at[i], "name is outside the string table");
    if (c.at[T_SONAME]) {
        if (c.val[T_SONAME] >= l->strsz) return dyn_fail(&c, T_SONAME, "name is outside the string table");
        l->soname = l->strtab + c.val[T_SONAME];
    }
    if (c.at[T_RPATH]) {
        if (c.val[T_RPATH] >= l->strsz) return dyn_fail(&c, T_RPATH, "path is outside the string table");
        l->rpath = l->strtab + c.val[T_RPATH];
    }
    if (c.at[T_RUNPATH]) {
        if (c.val[T_RUNPATH] >= l->strsz) return dyn_fail(&c, T_RUNPATH, "path is outside the string table");
        l->runpath = l->strtab + c.val[T_RUNPATH];
    }
    if ((err = read_versions(&c))) return err;
    if ((err = reloc_table(&c, T_RELR, T_RELRSZ, 8, &l->relr, &l->relrsz))) return err;
    if ((err = reloc_table(&c, T_INIT_ARRAY, T_INIT_ARRAYSZ, 8, &l->init_array, &l->init_arraysz)))
        return err;
    if ((err = reloc_table(&c, T_FINI_ARRAY, T_FINI_ARRAYSZ, 8, &l->fini_array, &l->fini_arraysz)))
        return err;
    return 0;
}

VMC_LOAD_PATH const vmc_ver_t *vmc__elf_sym_version(const vmc_elf_obj_t *l, size_t symidx)
{
    if (!l->versym || symidx >= l->nsyms) return NULL;
    size_t ndx = l->versym[symidx] & MAX_VERSION_INDEX;
    return ndx > 1 && ndx < l->nvers && l->vers[ndx].name ? &l->vers[ndx] : NULL;
}

/* Does symbol i define `name` in the version asked for? */
VMC_LOAD_PATH int vmc__elf_defines(const vmc_elf_obj_t *l, size_t i, const char *name, const vmc_ver_t *ver)
{
    const Elf64_Sym *s = &l->symtab[i];
    if (s->st_shndx == SHN_UNDEF) return 0;
    int type = ELF64_ST_TYPE(s->st_info), bind = ELF64_ST_BIND(s->st_info);
    if (type != STT_NOTYPE && type != STT_OBJECT && type != STT_FUNC && type != STT_COMMON &&
        type != STT_GNU_IFUNC && type != STT_TLS)
        return 0;
    if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) return 0;
    int vis = ELF64_ST_VISIBILITY(s->st_other);
    if (vis != STV_DEFAULT && vis != STV_PROTECTED) return 0;
    const char *own = l->strtab + s->st_name;  /* the same text when a library binds itself */
    if (own != name && strcmp(own, name)) return 0;
    if (!l->versym) return 1;
    unsigned raw = l->versym[i], ndx = raw & MAX_VERSION_INDEX;
    if (ndx == 0) return 0;   /* local */
    if (!ver) return !(raw & 0x8000);
    if (ndx < l->nvers && l->vers[ndx].name && l->vers[ndx].defined)
        return &l->vers[ndx] == ver || !strcmp(l->vers[ndx].name, ver->name);
    /* an unversioned definition satisfies a versioned reference (as glibc) */
    return ndx == 1 && !(raw & 0x8000);
}

VMC_LOAD_PATH const Elf64_Sym *vmc__elf_lookup(const vmc_elf_obj_t *l, const vmc_name_t *key, const vmc_ver_t *ver)
{
    const char *name = key->str;
    if (l->g_nbuckets) {
        uint32_t h = key->gnu;
        uint64_t word = l->g_bloom[(h / 64) & (l->g_bloom_size - 1)];
        uint64_t mask = ((uint64_t)1 << (h % 64)) | ((uint64_t)1 << ((h >> l->g_bloom_shift) % 64));
        if ((word & mask) != mask) return NULL;
        uint32_t i = l->g_buckets[h % l->g_nbuckets];
        if (i == 0 || i < l->g_symoffset) return NULL;
        for (; i < l->nsyms; i++) {
            uint32_t ch = l->g_chain[i - l->g_symoffset];
            if ((ch | 1) == (h | 1) && vmc__elf_defines(l, i, name, ver)) return &l->symtab[i];
            if (ch & 1) break;
        }
        return NULL;
    }
    if (l->h_nbucket) {
        uint32_t h = vmc__elf_hash(name);
        uint32_t i = l->h_bucket[h % l->h_nbucket];
        for (size_t steps = 0; i && i < l->h_nchain && i < l->nsyms && steps < l->h_nchain; steps++) {
            if (vmc__elf_defines(l, i, name, ver)) return &l->symtab[i];
            i = l->h_chain[i];
        }
    }
    return NULL;
}
