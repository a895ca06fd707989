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
    uintptr_t span = o->hi - o->lo;     /* (x - lo < span: lo <= x < hi) */
    int as_is = v - o->lo < span;
    int biased = o->base && v <= UINTPTR_MAX - o->base && v + o->base - o->lo < span;
    if (as_is && biased) return 0;
    return as_is ? v : biased ? v + o->base : 0;
}

/* [p, p+n) inside the object's span? */
static int inside(const vmc_hobj_t *o, const void *p, size_t n)
{
    uintptr_t off = (uintptr_t)p - o->lo, span = o->hi - o->lo;   /* (off <= span: lo <= p <= hi) */
    return off <= span && n <= span - off;
}

/* How many entries of `size` bytes from p (inside the span) lie in it,
 * from index `first`; at most UINT32_MAX (see vmc_hobj_t). */
static uint32_t entries_in(const vmc_hobj_t *o, const void *p, size_t size, size_t first)
{
    size_t n = first + (o->hi - (uintptr_t)p) / size;
    return n < UINT32_MAX ? (uint32_t)n : UINT32_MAX;
}

/* The dynamic entries vmc__hobj_read keeps, by tag: each one's last value. */
typedef struct dyn_vals {
    uintptr_t strtab, symtab, hash, gnu, versym, verdef, verneed, strsz, soname;
    unsigned seen;               /* 1 << DV_*: which were given             */
} dyn_vals_t;

enum { DV_STRTAB = 1, DV_SYMTAB = 2, DV_HASH = 4, DV_GNU = 8, DV_VERSYM = 16, DV_VERDEF = 32, DV_VERNEED = 64,
       DV_STRSZ = 128, DV_SONAME = 256 };

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
    if (!inside(o, o->dyn, sizeof *o->dyn)) return -ENOEXEC;
    /* One pass, each entry sorted by its tag's range first (the tags kept
     * are the low ones and DT_VERSYM..DT_VERNEEDNUM, besides DT_GNU_HASH
     * and the filters), its value taken as it is; the addresses are worked
     * out once, after. */
    dyn_vals_t v = {0};
    const ElfW(Dyn) *end = o->dyn + (o->hi - (uintptr_t)o->dyn) / sizeof *o->dyn;   /* that fit */
    for (const ElfW(Dyn) *d = o->dyn;; d++) {
        if (d == end) return -ENOEXEC;
        uint64_t tag = (uint64_t)d->d_tag, val = d->d_un.d_val;
        if (tag < 32) {
            switch (tag) {
            case DT_NULL: goto done;
            case DT_NEEDED:
                if (!o->needed) o->needed = d;
                o->needed_end = d + 1;
                break;
            case DT_STRTAB: v.strtab = val, v.seen |= DV_STRTAB; break;
            case DT_STRSZ: v.strsz = val, v.seen |= DV_STRSZ; break;
            case DT_SYMTAB: v.symtab = val, v.seen |= DV_SYMTAB; break;
            case DT_HASH: v.hash = val, v.seen |= DV_HASH; break;
            case DT_SONAME: v.soname = val, v.seen |= DV_SONAME; break;
            default: break;
            }
        } else if (tag - DT_VERSYM <= DT_VERNEEDNUM - DT_VERSYM) {
            switch (tag) {
            case DT_VERSYM: v.versym = val, v.seen |= DV_VERSYM; break;
            case DT_VERDEF: v.verdef = val, v.seen |= DV_VERDEF; break;
            case DT_VERDEFNUM: o->nverdef = val; break;
            case DT_VERNEED: v.verneed = val, v.seen |= DV_VERNEED; break;
            case DT_VERNEEDNUM: o->nverneed = val; break;
            default: break;
            }
        } else if (tag == DT_GNU_HASH) {
            v.gnu = val, v.seen |= DV_GNU;
        } else if (tag == DT_FILTER || tag == DT_AUXILIARY) {
            o->filter = 1;
        }
    }
done:;
    uintptr_t strtab = v.seen & DV_STRTAB ? dyn_addr(o, v.strtab) : 0;
    uintptr_t symtab = v.seen & DV_SYMTAB ? dyn_addr(o, v.symtab) : 0;
    if (!strtab || !symtab || !(v.seen & DV_STRSZ)) return -ENOEXEC;
    o->strsz = v.strsz;
    if (!inside(o, (void *)strtab, o->strsz)) return -ENOEXEC;
    o->strtab = (const char *)strtab;
    o->symtab = (const ElfW(Sym) *)symtab;
    o->nsym_in = entries_in(o, o->symtab, sizeof *o->symtab, 0);
    o->versym = (const uint16_t *)(v.seen & DV_VERSYM ? dyn_addr(o, v.versym) : 0);
    if (o->versym) o->nversym_in = entries_in(o, o->versym, sizeof *o->versym, 0);
    o->verdef = (const ElfW(Verdef) *)(v.seen & DV_VERDEF ? dyn_addr(o, v.verdef) : 0);
    o->verneed = (const ElfW(Verneed) *)(v.seen & DV_VERNEED ? dyn_addr(o, v.verneed) : 0);
    if ((v.seen & DV_SONAME) && v.soname < o->strsz) o->soname = o->strtab + v.soname;
    uintptr_t gnu = v.seen & DV_GNU ? dyn_addr(o, v.gnu) : 0;
    uintptr_t hash = !gnu && (v.seen & DV_HASH) ? dyn_addr(o, v.hash) : 0;
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
        o->g_chain_end = entries_in(o, o->g_buckets + nb, 4, o->g_symoffset);
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
 * list leaves the object.  Inlined into each of its three users, whose fn
 * is then inlined in turn: the walk is short and the calls were most of
 * its cost. */
typedef int (*ver_fn)(vmc_hobj_t *o, unsigned ndx, size_t name, uint32_t hash, void *arg);

static inline __attribute__((always_inline)) int walk_versions(const vmc_hobj_t *o, ver_fn fn, void *arg)
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

/* The index being built: grown when a list gives an index past its end. */
typedef struct ver_index {
    vmc_hver_t *v;
    size_t n;
    int err;                     /* -ENOMEM, once growing failed            */
} ver_index_t;

static inline int ver_put(vmc_hobj_t *o, unsigned ndx, size_t name, uint32_t hash, void *arg)
{
    ver_index_t *x = arg;
    if (name >= o->strsz) return -1;
    if (ndx >= x->n) {
        size_t n = (size_t)ndx + 9;
        vmc_hver_t *p = realloc(x->v, n * sizeof *p);
        if (!p) {
            x->err = -ENOMEM;
            return 1;
        }
        memset(p + x->n, 0, (n - x->n) * sizeof *p);
        x->v = p;
        x->n = n;
    }
    x->v[ndx] = (vmc_hver_t){o->strtab + name, hash, 0};
    return 0;
}

/* The index's size for the usual numbering: the definitions from 1 (the
 * base) up, then the needed versions, from 2 if nothing is defined; so
 * counted from the files' entries (vn_cnt), the lists themselves not
 * walked.  Anything odd: a size the walk grows from. */
static size_t guess_versions(const vmc_hobj_t *o)
{
    size_t n = (o->nverdef ? o->nverdef : 1) + 1;
    const char *p = (const char *)o->verneed;
    if (o->nverdef > 4096 || o->nverneed > 256) return 16;
    for (size_t k = 0; p && k < o->nverneed; k++) {
        const ElfW(Verneed) *d = (const ElfW(Verneed) *)p;
        if (!inside(o, d, sizeof *d)) return 16;
        n += d->vn_cnt;
        if (!d->vn_next) break;
        p += d->vn_next;
    }
    return n;
}

VMC_LOAD_PATH int vmc__hobj_versions(vmc_hobj_t *o)
{
    /* One walk of the lists, into the room guess_versions gives (grown if
     * an index is past it); published whole, once filled. */
    ver_index_t x = {NULL, guess_versions(o), 0};
    if (!(x.v = calloc(x.n, sizeof *x.v))) return -ENOMEM;
    if (walk_versions(o, ver_put, &x)) {
        free(x.v);
        return x.err ? x.err : -ENOEXEC;
    }
    o->nvers = x.n;
    __atomic_store_n(&o->vers, x.v, __ATOMIC_RELEASE);
    return 0;
}

/* An object searched by many threads indexes its versions when first
 * asked: most objects of a scope are never asked for one (the program,
 * say), and the index costs more than a few walks of the lists. */
static pthread_mutex_t index_lock = PTHREAD_MUTEX_INITIALIZER;

static vmc_hver_t *index_of(const vmc_hobj_t *o)
{
    vmc_hver_t *v = __atomic_load_n(&o->vers, __ATOMIC_ACQUIRE);
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

static inline int ver_find(vmc_hobj_t *o, unsigned ndx, size_t name, uint32_t hash, void *arg)
{
    ver_want_t *w = arg;
    if (ndx != w->ndx) return 0;
    if (name >= o->strsz) w->bad = 1;
    else w->out = (vmc_hver_t){o->strtab + name, hash, 0};
    return 1;
}

/* Version index ndx of o from its lists, into *tmp (name NULL for an
 * index that no list names, as the system loader's table leaves it); NULL
 * if unreadable.  For an object without an index (one loaded later, or
 * whose index could not be made): out of the load's hot path. */
static __attribute__((noinline, cold)) vmc_hver_t *version_listed(const vmc_hobj_t *o, unsigned ndx,
                                                                  vmc_hver_t *tmp)
{
    ver_want_t w = {ndx, {NULL, 0, 0}, 0};
    if (walk_versions(o, ver_find, &w) < 0 || w.bad) return NULL;
    *tmp = w.out;
    return tmp;
}

/* Version index ndx of o: its entry in the index, or version_listed's. */
static vmc_hver_t *version_of(const vmc_hobj_t *o, unsigned ndx, vmc_hver_t *tmp)
{
    vmc_hver_t *ix = index_of(o);
    if (ix) return ndx < o->nvers ? &ix[ndx] : NULL;
    return version_listed(o, ndx, tmp);
}

/* Is v the version named `name`, as the system loader compares them: the
 * hash the file stores for it equal to the name's, and the names equal?
 * The names are compared first, so that a name's hash is worked out only
 * for a version it names, once per version of the object (kept in the
 * index, where threads may race to store the same value). */
static int same_version(vmc_hver_t *v, const char *name)
{
    if (!v->name || strcmp(v->name, name)) return 0;
    int ok = __atomic_load_n(&v->hash_ok, __ATOMIC_RELAXED);
    if (!ok) {
        ok = vmc__elf_hash(v->name) == v->hash ? 1 : 2;
        __atomic_store_n(&v->hash_ok, ok, __ATOMIC_RELAXED);
    }
    return ok == 1;
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
    if (i >= o->nsym_in) {
        w->unsure = 1;
        return 0;
    }
    const ElfW(Sym) *s = &o->symtab[i];
    unsigned type = ELF64_ST_TYPE(s->st_info);
    if (s->st_value == 0 && s->st_shndx != SHN_ABS && type != STT_TLS) return 0;
    if (!((1u << type) & DEFINITION_TYPES)) return 0;
    if (s->st_name >= o->strsz || strcmp(o->strtab + s->st_name, q->name)) return 0;
    if (o->versym) {
        if (i >= o->nversym_in) {
            w->unsure = 1;
            return 0;
        }
        unsigned vs = o->versym[i], ndx = vs & 0x7fff, hidden = vs & 0x8000;
        if (q->version) {
            vmc_hver_t tmp, *v = version_of(o, ndx, &tmp);
            if (!v) {
                w->unsure = 1;
                return 0;
            }
            if (!same_version(v, q->version) && (q->exact || v->name || hidden)) return 0;
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
    if (o->g_bloom) {
        uint32_t h = q->gnu;
        if (!vmc__hobj_may_have(o, h)) return VMC_HFIND_NONE;
        size_t i = o->g_buckets[h % o->g_nbuckets];
        if (i < o->g_symoffset) return VMC_HFIND_NONE;
        for (;; i++) {
            if (i >= o->g_chain_end) return VMC_HFIND_UNSURE;
            uint32_t c = o->g_chain[i];
            if (((c ^ h) >> 1) == 0 && candidate(o, i, q, &w)) {
                found = &o->symtab[i];
                break;
            }
            if (c & 1) break;
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
