/* Look-up in one host object, as the system loader does it.
 *
 * The tables are the ones the system loader itself searches: the dynamic
 * section's DT_GNU_HASH (else DT_HASH), DT_SYMTAB, DT_STRTAB, DT_VERSYM,
 * DT_VERDEF and DT_VERNEED.  glibc rewrites the address-valued entries of a
 * writable dynamic section in place (adding the load bias) and leaves a
 * read-only one (the vDSO's) alone, so each pointer is taken as given when
 * it lies in the object's mapped span and as bias-relative otherwise; when
 * both readings would fit, or neither, the object is not read.
 *
 * A hash chain is walked in the same order as the system loader walks it,
 * and a symbol is a candidate under the same rules (glibc's dl-lookup.c):
 *   - undefined (value 0, not absolute, not TLS), or of a type that is no
 *     definition (section, file), or of another name: not a candidate;
 *   - a versioned query (a relocation's version): a definition of that
 *     version (name and hash), or one without a version (index 0 or 1, not
 *     hidden) when the query is not exact (an interposer: the program's
 *     malloc answers libc's malloc@GLIBC_2.2.5), or any definition in an
 *     object that has no DT_VERSYM;
 *   - an unversioned query (as dlsym): a definition at index 0 or 1 at
 *     once; otherwise the object's only non-hidden versioned one (the
 *     default version, name@@V), if there is exactly one;
 *   - binding local or visibility hidden/internal: passed over; weak and
 *     global are definitions alike (LD_DYNAMIC_WEAK is hostsym.c's concern).
 * Two kinds of definition are left to the system loader (VMC_HFIND_UNSURE):
 * STB_GNU_UNIQUE (the first object to define the name process-wide wins,
 * through a table that is not public) and STT_TLS (the address depends on
 * the thread asking).
 */
#include "elf/hostscope.h"
#include "base/attrs.h"
#include "elf/elf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The address a dynamic entry's d_ptr means, or 0 (see the file comment). */
VMC_LOAD_PATH static uintptr_t dyn_addr(const vmc_hobj_t *o, uintptr_t v)
{
    int as_is = v >= o->lo && v < o->hi;
    int biased = o->base && v <= UINTPTR_MAX - o->base && v + o->base >= o->lo && v + o->base < o->hi;
    if (as_is && biased) return 0;
    return as_is ? v : biased ? v + o->base : 0;
}

/* [p, p+n) inside the object's span? */
static int inside(const vmc_hobj_t *o, const void *p, size_t n)
{
    uintptr_t a = (uintptr_t)p;
    return a >= o->lo && a <= o->hi && n <= o->hi - a;
}

VMC_LOAD_PATH int vmc__hobj_read(vmc_hobj_t *o, const struct dl_phdr_info *info)
{
    memset(o, 0, sizeof *o);
    o->path = info->dlpi_name ? info->dlpi_name : "";
    o->base = info->dlpi_addr;
    uintptr_t lo = UINTPTR_MAX, hi = 0, dynva = 0;
    int have_dyn = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_LOAD && p->p_memsz) {
            if (p->p_vaddr < lo) lo = p->p_vaddr;
            if (p->p_vaddr + p->p_memsz > hi) hi = p->p_vaddr + p->p_memsz;
        } else if (p->p_type == PT_DYNAMIC) {
            dynva = p->p_vaddr;
            have_dyn = 1;
        }
    }
    if (!have_dyn || lo >= hi) return -ENOEXEC;
    o->lo = o->base + lo;
    o->hi = o->base + hi;
    o->dyn = (const ElfW(Dyn) *)(o->base + dynva);
    uintptr_t strtab = 0, symtab = 0, hash = 0, gnu = 0, versym = 0, verdef = 0, verneed = 0;
    size_t soname = SIZE_MAX;
    int have_strsz = 0;
    if (!inside(o, o->dyn, sizeof *o->dyn)) return -ENOEXEC;
    /* the entries that fit in the span, counted once */
    const ElfW(Dyn) *end = o->dyn + (o->hi - (uintptr_t)o->dyn) / sizeof *o->dyn;
    for (const ElfW(Dyn) *d = o->dyn;; d++) {
        if (d == end) return -ENOEXEC;
        if (d->d_tag == DT_NULL) break;
        switch (d->d_tag) {
        case DT_STRTAB: strtab = dyn_addr(o, d->d_un.d_ptr); break;
        case DT_STRSZ: o->strsz = d->d_un.d_val; have_strsz = 1; break;
        case DT_SYMTAB: symtab = dyn_addr(o, d->d_un.d_ptr); break;
        case DT_HASH: hash = dyn_addr(o, d->d_un.d_ptr); break;
        case DT_GNU_HASH: gnu = dyn_addr(o, d->d_un.d_ptr); break;
        case DT_VERSYM: versym = dyn_addr(o, d->d_un.d_ptr); break;
        case DT_VERDEF: verdef = dyn_addr(o, d->d_un.d_ptr); break;
        case DT_VERDEFNUM: o->nverdef = d->d_un.d_val; break;
        case DT_VERNEED: verneed = dyn_addr(o, d->d_un.d_ptr); break;
        case DT_VERNEEDNUM: o->nverneed = d->d_un.d_val; break;
        case DT_SONAME: soname = d->d_un.d_val; break;
        case DT_NEEDED:
            if (!o->needed) o->needed = d;
            o->needed_end = d + 1;
            break;
        case DT_FILTER:
        case DT_AUXILIARY: o->filter = 1; break;
        default: break;
        }
    }
    if (!strtab || !symtab || !have_strsz || !inside(o, (void *)strtab, o->strsz)) return -ENOEXEC;
    o->strtab = (const char *)strtab;
    o->symtab = (const ElfW(Sym) *)symtab;
    o->versym = (const uint16_t *)versym;
    o->verdef = (const ElfW(Verdef) *)verdef;
    o->verneed = (const ElfW(Verneed) *)verneed;
    if (soname < o->strsz) o->soname = o->strtab + soname;
    if (gnu) {
        const uint32_t *g = (const uint32_t *)gnu;
        if (!inside(o, g, 16)) return -ENOEXEC;
        uint64_t nb = g[0], nbloom = g[2];
        /* the system loader masks the bloom index, so a size that is not a
         * power of two cannot be searched the same way */
        if (!nb || !nbloom || (nbloom & (nbloom - 1)) || !inside(o, g + 4, nbloom * 8 + nb * 4))
            return -ENOEXEC;
        o->g_nbuckets = g[0];
        o->g_symoffset = g[1];
        o->g_bloom_mask = g[2] - 1;
        o->g_shift = g[3];
        o->g_bloom = (const uint64_t *)(g + 4);
        o->g_buckets = (const uint32_t *)(o->g_bloom + nbloom);
        o->g_chain = o->g_buckets + nb - o->g_symoffset;
    } else if (hash) {
        const uint32_t *h = (const uint32_t *)hash;
        if (!inside(o, h, 8) || !h[0] || !inside(o, h + 2, ((size_t)h[0] + h[1]) * 4)) return -ENOEXEC;
        o->hash = h;
    }
    /* no hash table: nothing can be found in it, as in the system loader */
    return 0;
}

/* Call fn(o, index, name offset, hash, arg) for each version the object
 * defines (not the base one: its name is the file's, never matched) and
 * each it needs; a nonzero return stops the walk and is returned.  -1 if a
 * list leaves the object. */
typedef int (*ver_fn)(vmc_hobj_t *o, unsigned ndx, size_t name, uint32_t hash, void *arg);

VMC_LOAD_PATH static int walk_versions(const vmc_hobj_t *o, ver_fn fn, void *arg)
{
    vmc_hobj_t *w = (vmc_hobj_t *)o;
    const char *p = (const char *)o->verdef;
    for (size_t k = 0; p && k < o->nverdef; k++) {
        const ElfW(Verdef) *d = (const ElfW(Verdef) *)p;
        if (!inside(o, d, sizeof *d)) return -1;
        if (!(d->vd_flags & VER_FLG_BASE) && d->vd_cnt) {
            const ElfW(Verdaux) *a = (const ElfW(Verdaux) *)(p + d->vd_aux);
            if (!inside(o, a, sizeof *a)) return -1;
            int r = fn(w, d->vd_ndx & 0x7fff, a->vda_name, d->vd_hash, arg);
            if (r) return r;
        }
        if (!d->vd_next) break;
        p += d->vd_next;
    }
    p = (const char *)o->verneed;
    for (size_t k = 0; p && k < o->nverneed; k++) {
        const ElfW(Verneed) *d = (const ElfW(Verneed) *)p;
        if (!inside(o, d, sizeof *d)) return -1;
        const char *q = p + d->vn_aux;
        for (unsigned j = 0; j < d->vn_cnt; j++) {
            const ElfW(Vernaux) *a = (const ElfW(Vernaux) *)q;
            if (!inside(o, a, sizeof *a)) return -1;
            int r = fn(w, a->vna_other & 0x7fff, a->vna_name, a->vna_hash, arg);
            if (r) return r;
            if (!a->vna_next) break;
            q += a->vna_next;
        }
        if (!d->vn_next) break;
        p += d->vn_next;
    }
    return 0;
}

VMC_LOAD_PATH static int ver_max(vmc_hobj_t *o, unsigned ndx, size_t name, uint32_t hash, void *arg)
{
    (void)o, (void)name, (void)hash;
    unsigned *m = arg;
    if (ndx > *m) *m = ndx;
    return 0;
}

VMC_LOAD_PATH static int ver_fill(vmc_hobj_t *o, unsigned ndx, size_t name, uint32_t hash, void *arg)
{
    (void)arg;
    if (name >= o->strsz) return -1;
    o->vers[ndx] = (vmc_hver_t){o->strtab + name, hash};
    return 0;
}

VMC_LOAD_PATH int vmc__hobj_versions(vmc_hobj_t *o)
{
    unsigned max = 1;
    if (walk_versions(o, ver_max, &max)) return -ENOEXEC;
    vmc_hobj_t t = *o;           /* filled aside, published whole */
    t.vers = calloc(max + 1, sizeof *t.vers);
    if (!t.vers) return -ENOMEM;
    t.nvers = max + 1;
    if (walk_versions(&t, ver_fill, NULL)) {
        free(t.vers);
        return -ENOEXEC;
    }
    o->nvers = t.nvers;
    __atomic_store_n(&o->vers, t.vers, __ATOMIC_RELEASE);
    return 0;
}

/* An object searched by many threads indexes its versions when first
 * asked: most objects of a scope are never asked for one (the program,
 * say), and the index costs more than a few walks of the lists. */
static pthread_mutex_t index_lock = PTHREAD_MUTEX_INITIALIZER;

static const vmc_hver_t *index_of(const vmc_hobj_t *o)
{
    const vmc_hver_t *v = __atomic_load_n(&o->vers, __ATOMIC_ACQUIRE);
    if (v || !__atomic_load_n(&o->index_on_use, __ATOMIC_RELAXED)) return v;
    pthread_mutex_lock(&index_lock);
    vmc_hobj_t *w = (vmc_hobj_t *)o;
    if (!w->vers && w->index_on_use && vmc__hobj_versions(w))
        __atomic_store_n(&w->index_on_use, 0, __ATOMIC_RELAXED);   /* walk the lists instead */
    pthread_mutex_unlock(&index_lock);
    return __atomic_load_n(&o->vers, __ATOMIC_ACQUIRE);
}

typedef struct ver_want {
    unsigned ndx;
    vmc_hver_t out;
    int bad;
} ver_want_t;

static int ver_find(vmc_hobj_t *o, unsigned ndx, size_t name, uint32_t hash, void *arg)
{
    ver_want_t *w = arg;
    if (ndx != w->ndx) return 0;
    if (name >= o->strsz) w->bad = 1;
    else w->out = (vmc_hver_t){o->strtab + name, hash};
    return 1;
}

/* Version index ndx of o: 0 with *v filled (name NULL for an index that no
 * list names, as the system loader's table leaves it), -1 if unreadable. */
static int version_of(const vmc_hobj_t *o, unsigned ndx, vmc_hver_t *v)
{
    const vmc_hver_t *ix = index_of(o);
    if (ix) {
        if (ndx >= o->nvers) return -1;
        *v = ix[ndx];
        return 0;
    }
    ver_want_t w = {ndx, {NULL, 0}, 0};
    if (walk_versions(o, ver_find, &w) < 0 || w.bad) return -1;
    *v = w.out;
    return 0;
}

#define DEFINITION_TYPES ((1u << STT_NOTYPE) | (1u << STT_OBJECT) | (1u << STT_FUNC) | (1u << STT_COMMON) | \
                          (1u << STT_TLS) | (1u << STT_GNU_IFUNC))

/* Per-object state of a look-up: the default-version candidate of an
 * unversioned query. */
typedef struct walk {
    const ElfW(Sym) *versioned;
    int nversioned;
    int unsure;
} walk_t;

/* Is symbol i of o an answer to q?  1 yes, 0 no (w may remember it). */
VMC_LOAD_PATH static int candidate(const vmc_hobj_t *o, size_t i, const vmc_hquery_t *q, walk_t *w)
{
    const ElfW(Sym) *s = &o->symtab[i];
    if (!inside(o, s, sizeof *s)) {
        w->unsure = 1;
        return 0;
    }
    unsigned type = ELF64_ST_TYPE(s->st_info);
    if (s->st_value == 0 && s->st_shndx != SHN_ABS && type != STT_TLS) return 0;
    if (!((1u << type) & DEFINITION_TYPES)) return 0;
    if (s->st_name >= o->strsz || strcmp(o->strtab + s->st_name, q->name)) return 0;
    if (o->versym) {
        const uint16_t *vs = &o->versym[i];
        if (!inside(o, vs, 2)) {
            w->unsure = 1;
            return 0;
        }
        unsigned ndx = *vs & 0x7fff, hidden = *vs & 0x8000;
        if (q->version) {
            vmc_hver_t v;
            if (version_of(o, ndx, &v)) {
                w->unsure = 1;
                return 0;
            }
            int same = v.name && v.hash == q->vhash && !strcmp(v.name, q->version);
            if (!same && (q->exact || v.name || hidden)) return 0;
        } else if (ndx >= 2) {
            if (!hidden && w->nversioned++ == 0) w->versioned = s;
            return 0;
        }
    }
    return 1;
}

/* A candidate found: does it bind, and how? */
VMC_LOAD_PATH static int take(const vmc_hobj_t *o, const ElfW(Sym) *s, const ElfW(Sym) **sym, uintptr_t *addr)
{
    unsigned bind = ELF64_ST_BIND(s->st_info), vis = ELF64_ST_VISIBILITY(s->st_other);
    if (vis == STV_HIDDEN || vis == STV_INTERNAL) return VMC_HFIND_NONE;
    if (bind == STB_GNU_UNIQUE || ELF64_ST_TYPE(s->st_info) == STT_TLS) return VMC_HFIND_UNSURE;
    if (bind != STB_GLOBAL && bind != STB_WEAK) return VMC_HFIND_NONE;
    *sym = s;
    *addr = (s->st_shndx == SHN_ABS ? 0 : o->base) + s->st_value;
    return VMC_HFIND_FOUND;
}

VMC_LOAD_PATH int vmc__hobj_find(const vmc_hobj_t *o, vmc_hquery_t *q, const ElfW(Sym) **sym, uintptr_t *addr)
{
    walk_t w = {NULL, 0, 0};
    const ElfW(Sym) *found = NULL;
    if (o->g_buckets) {
        uint32_t h = q->gnu;
        uint64_t word = o->g_bloom[(h / 64) & o->g_bloom_mask];
        uint64_t bits = (1ull << (h % 64)) | (1ull << ((h >> o->g_shift) % 64));
        if ((word & bits) != bits) return VMC_HFIND_NONE;
        uint32_t i = o->g_buckets[h % o->g_nbuckets];
        if (i < o->g_symoffset) return VMC_HFIND_NONE;
        for (;; i++) {
            const uint32_t *c = &o->g_chain[i];
            if (!inside(o, c, 4)) return VMC_HFIND_UNSURE;
            if (((*c ^ h) >> 1) == 0 && candidate(o, i, q, &w)) {
                found = &o->symtab[i];
                break;
            }
            if (*c & 1) break;
        }
    } else if (o->hash) {
        if (!q->have_elf) {
            q->elf = vmc__elf_hash(q->name);
            q->have_elf = 1;
        }
        uint32_t nbucket = o->hash[0], nchain = o->hash[1];
        const uint32_t *chain = o->hash + 2 + nbucket;
        uint32_t i = o->hash[2 + q->elf % nbucket];
        for (uint32_t steps = 0; i != STN_UNDEF; i = chain[i]) {
            if (i >= nchain || ++steps > nchain) return VMC_HFIND_UNSURE;
            if (candidate(o, i, q, &w)) {
                found = &o->symtab[i];
                break;
            }
        }
    }
    if (w.unsure) return VMC_HFIND_UNSURE;
    if (!found && w.nversioned == 1) found = w.versioned;
    /* the object's first candidate is its answer, even when it does not
     * bind (a local or hidden one): the search goes on to the next object */
    return found ? take(o, found, sym, addr) : VMC_HFIND_NONE;
}
