/* Host symbol look-up for binding.
 *
 * Binding a private library asks the host process for each symbol it
 * imports.  Asking the system loader (dlvsym, dlsym) takes its lock and its
 * error-catching path for every symbol and walks the whole global scope each
 * time: that was most of a first load's instructions.  Instead the host's
 * global scope is read once (dl_iterate_phdr) and each name is looked up in
 * the hash tables of its objects, in the system loader's order, with its
 * matching rules (elf/hostscope.c).
 *
 * The hot.scope.  glibc's global scope is the program's search list (the
 * program, LD_PRELOAD objects, then their DT_NEEDED breadth-first, each
 * once) followed by the objects dlopen'ed RTLD_GLOBAL later, in the order
 * they became global.  The first part never changes and its order can be
 * rebuilt from public data: the objects dl_iterate_phdr lists first are the
 * ones the process started with, in the order they were mapped, which is that
 * breadth-first order; the preloaded ones come before the program's first
 * dependency.  That is computed from each object's DT_NEEDED and DT_SONAME
 * and checked against the listing; if it does not match exactly (or
 * LD_AUDIT, LD_DYNAMIC_WEAK or a filter object could change the answer),
 * nothing is decided here.  The vDSO is listed but is not in the hot.scope.
 *
 * Whether a later object is global is not public (dl_iterate_phdr lists
 * RTLD_LOCAL objects and other namespaces too), nor the order in which later
 * objects became global.  An answer found in the first part is final, since
 * it comes first in the hot.scope.  Otherwise the later objects are searched
 * (inside a dl_iterate_phdr callback, so none is unloaded meanwhile): if none
 * defines the name, it is absent; if one does, the system loader decides.
 *
 * So the system loader (dlvsym, dlsym) still answers when: the scope's first
 * part could not be rebuilt; the name is missing there and an object loaded
 * later defines it; the definition is STB_GNU_UNIQUE or STT_TLS; an
 * object's tables could not be read; the look-up is in a dependency's handle
 * that is not in the first part.  Those answers, found or not, are kept in
 * a table keyed by handle, name and version.
 *
 * An IFUNC found in the host is called, without arguments, as glibc's dlsym
 * and its x86-64 relocations do.
 *
 * The table is valid only while the set of loaded objects is the one it was
 * filled under: dl_iterate_phdr reports how many objects were ever added and
 * removed (dlpi_adds, dlpi_subs), and when either has moved since, the table
 * is emptied before use (an unloaded object's addresses are gone; a new
 * RTLD_GLOBAL object may now interpose).  vmc__host_sym_sync checks that once
 * per library, before its relocations.
 *
 * Versioned references and interposers: dlvsym asks for the version
 * exactly, so it passes over an unversioned definition that comes first in
 * the global scope: the program's own malloc, a sanitizer's interceptors, a
 * malloc replacement.  The system loader binds a library's malloc@GLIBC_2.2.5
 * to such a definition, and so must we (a library allocating with libc while
 * the program frees with its own allocator breaks).  The hash look-up does
 * that by rule; the dlvsym path also asks dlsym, and when that finds a
 * different address whose definition is unversioned (dladdr1 gives the
 * symbol and its object, whose DT_VERSYM says), that interposer wins.
 */
#include "lib/loader.h"
#include "base/attrs.h"
#include "lib/hostsym.h"
#include "elf/hostscope.h"
#include "os/os.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HC_BITS    10
#define HC_BUCKETS (1u << HC_BITS)
#define HC_SLOT(h) ((h) >> (32 - HC_BITS))  /* the well-mixed top bits */
#define HC_MAX     8192              /* entries before the table is emptied */

typedef struct hc_ent {
    struct hc_ent *next;
    void *handle;                    /* RTLD_DEFAULT or a dlopen handle     */
    void *addr;                      /* the answer; NULL = not found        */
    uint32_t hash;
    char *version;                   /* NULL: unversioned look-up           */
    char name[];                     /* name, then the version's text       */
} hc_ent_t;

typedef struct scope {
    int ok;                      /* 0: every look-up goes to the system loader */
    vmc_hobj_t *obj;             /* the search list, in order               */
    struct link_map **map;       /* each one's link map, or NULL            */
    size_t n;
    uintptr_t *listed;           /* dlpi_addr of the first `nlisted` objects */
    size_t nlisted;              /*   dl_iterate_phdr lists (vDSO included)  */
    unsigned long long adds, subs;   /* the counters when it was read       */
    size_t total;                /* objects listed then                     */
    uintptr_t vdso_phdr;         /* the vDSO's program headers, or 0        */
} scope_t;

#define KNOWN_HANDLES 16
#define FINAL_BUCKETS 256
#define FINAL_MAX     65536
#define FINAL_CHUNK   1024            /* (small: a first load's heap grows by
                                         no more than its answers take)      */
#define FINAL_LONGEST 1024            /* a longer entry is not kept          */
struct final;
/* scope_init's working arrays, per listed object: order[], roots[], the
 * names to match, their keys, in[] */
#define SCOPE_SCRATCH      16
#define SCOPE_SCRATCH_EACH (2 * sizeof(size_t) + sizeof(char *) + sizeof(uint32_t) + 1)

/* The state every load touches, in one place: each page of it that a
 * fresh process touches costs a fault, two when the first access is a read
 * (the zero page mapped, then replaced; locking a mutex reads it first), so
 * the first access of a load, vmc__host_startup_object's or
 * vmc__host_sym_sync's, is a store. */
static struct {
    int touched;                 /* written before anything is read         */
    pthread_mutex_t lock;        /* the table, the scope's reading, handles */
    size_t hc_count;             /* entries in hc_tab                       */
    unsigned long long hc_adds, hc_subs;   /* the generation it was filled under */
    int scope_read;              /* scope is read (atomic)                  */
    int later_objects;           /* the last sync saw objects past the scope's
                                    first part (atomic: read without the lock) */
    void *known_handles[KNOWN_HANDLES];   /* handles of first-part objects  */
    scope_t scope;
    size_t nfinal;               /* entries in final[]                      */
    char *chunk;                 /* where the next entry goes               */
    size_t chunk_left;
    struct final *final[FINAL_BUCKETS];   /* answers found in the first part */
    _Alignas(8) unsigned char scratch[SCOPE_SCRATCH * SCOPE_SCRATCH_EACH];   /* scope_init's,
                                    under the lock */
} hot __attribute__((aligned(4096))) = {.lock = PTHREAD_MUTEX_INITIALIZER};
_Static_assert(sizeof hot <= 4096, "the look-up state is in one page");

/* An answer found in the scope's first part is final: those objects never
 * go, and nothing loaded later comes before them.  So it is kept for the
 * life of the process, in a table read without the lock (entries are only
 * ever added, each published whole), and a library loaded again binds
 * without searching.  Bounded: past FINAL_MAX the scope is searched. */
typedef struct final {
    struct final *next;
    void *addr;                  /* IFUNCs: the resolver's answer           */
    uint32_t hash;
    const char *version;         /* NULL: the default version               */
    char name[];                 /* name, then the version's text           */
} final_t;

VMC_LOAD_PATH static void *final_get(const vmc_name_t *key, const char *version)
{
    uint32_t h = key->gnu;
    for (final_t *e = __atomic_load_n(&hot.final[h % FINAL_BUCKETS], __ATOMIC_ACQUIRE); e; e = e->next)
        if (e->hash == h && !strcmp(e->name, key->str) &&
            (e->version ? version && !strcmp(e->version, version) : !version))
            return e->addr;
    return NULL;
}

static void final_put(const vmc_name_t *key, const char *version, void *addr)
{
    if (__atomic_load_n(&hot.nfinal, __ATOMIC_RELAXED) >= FINAL_MAX) return;
    size_t nl = strlen(key->str) + 1, vl = version ? strlen(version) + 1 : 0;
    size_t need = (sizeof(final_t) + nl + vl + 15) & ~(size_t)15;
    if (need > FINAL_LONGEST) return;  /* a name that long is searched each time */
    /* (Not looked up again under the lock: two threads that found the same
     * answer at once keep it twice, the first of the two is the one read.) */
    pthread_mutex_lock(&hot.lock);
    /* carved from chunks that are never freed, as the entries are not:
     * one malloc per chunk, not per symbol */
    if (hot.chunk_left < need) {
        size_t len = need > FINAL_CHUNK ? need : FINAL_CHUNK;
        char *c = malloc(len);
        if (!c) {  /* not remembered: searched again next time */
            pthread_mutex_unlock(&hot.lock);
            return;
        }
        hot.chunk = c;
        hot.chunk_left = len;
    }
    final_t *e = (final_t *)hot.chunk;
    hot.chunk += need;
    hot.chunk_left -= need;
    e->addr = addr;
    e->hash = key->gnu;
    memcpy(e->name, key->str, nl);
    e->version = version ? memcpy(e->name + nl, version, vl) : NULL;
    final_t **b = &hot.final[key->gnu % FINAL_BUCKETS];
    e->next = *b;
    __atomic_store_n(b, e, __ATOMIC_RELEASE);
    __atomic_store_n(&hot.nfinal, hot.nfinal + 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&hot.lock);
}

static hc_ent_t *hc_tab[HC_BUCKETS];

/* The name's GNU hash (computed once per symbol by the caller) mixed with
 * the handle; versions of one name share a chain. */
static uint32_t hc_hash(void *handle, const vmc_name_t *name)
{
    return (name->gnu ^ (uint32_t)((uintptr_t)handle >> 4)) * 0x9e3779b1u;
}

static void hc_flush_locked(void)
{
    if (!hot.hc_count) return;   /* (and the table's pages stay untouched) */
    for (size_t i = 0; i < HC_BUCKETS; i++) {
        while (hc_tab[i]) {
            hc_ent_t *e = hc_tab[i];
            hc_tab[i] = e->next;
            free(e);
        }
    }
    hot.hc_count = 0;
}

VMC_LOAD_PATH static int generation_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    unsigned long long *g = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        g[0] = info->dlpi_adds;
        g[1] = info->dlpi_subs;
    } else {
        g[0] = g[1] = ~0ull;  /* unknown: never trust the table */
    }
    return 1;  /* the first object is enough: the counters are global */
}

static void scope_init(void);
/* Read once, by the first look-up (a flag and a mutex rather than
 * pthread_once: the first load in a process pays a page of the C library
 * and its lazy binding for every function it is the first to call). */

VMC_LOAD_PATH static void scope_once(void)
{
    if (__atomic_load_n(&hot.scope_read, __ATOMIC_ACQUIRE)) return;
    pthread_mutex_lock(&hot.lock);
    if (!hot.scope_read) {
        scope_init();
        __atomic_store_n(&hot.scope_read, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&hot.lock);
}
static int later_since(unsigned long long adds, unsigned long long subs);

VMC_LOAD_PATH void vmc__host_sym_sync(void)
{
    unsigned long long g[2] = {~0ull, ~0ull};
    __atomic_store_n(&hot.touched, 1, __ATOMIC_RELAXED);   /* see `hot` */
    pthread_mutex_lock(&hot.lock);
    if (!hot.scope_read) {
        scope_init();
        __atomic_store_n(&hot.scope_read, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&hot.lock);
    dl_iterate_phdr(generation_cb, g);
    __atomic_store_n(&hot.later_objects, later_since(g[0], g[1]), __ATOMIC_RELAXED);
    pthread_mutex_lock(&hot.lock);
    if (g[0] != hot.hc_adds || g[1] != hot.hc_subs || g[0] == ~0ull) {
        hc_flush_locked();
        hot.hc_adds = g[0];
        hot.hc_subs = g[1];
    }
    pthread_mutex_unlock(&hot.lock);
}

/* Is the definition at `addr` unversioned?  dladdr1 gives a dynamic symbol
 * of the object holding addr; it must sit exactly at addr (an alias, such as
 * a sanitizer's __interceptor_free for free, is as good: it shares the
 * definition) or we cannot tell (an IFUNC's implementation is not in the
 * dynamic symbol table), and then the versioned answer stands. */
static int unversioned_definition(void *addr)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    struct link_map *map = NULL;
    if (!dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym) return 0;
    if (!dladdr1(addr, &info, (void **)&map, RTLD_DL_LINKMAP) || !map || !map->l_ld) return 0;
    if (sym->st_shndx == SHN_UNDEF || ELF64_ST_TYPE(sym->st_info) == STT_GNU_IFUNC ||
        map->l_addr + sym->st_value != (uintptr_t)addr)
        return 0;
    uintptr_t symtab = 0, versym = 0;
    for (const ElfW(Dyn) *d = map->l_ld; d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_SYMTAB) symtab = d->d_un.d_ptr;
        else if (d->d_tag == DT_VERSYM) versym = d->d_un.d_ptr;
    }
    if (!versym) return 1;
    /* glibc relocates these in place; be safe if an object's were not */
    if (symtab < map->l_addr) symtab += map->l_addr;
    if (versym < map->l_addr) versym += map->l_addr;
    if (!symtab || (uintptr_t)sym < symtab) return 0;
    size_t idx = ((uintptr_t)sym - symtab) / sizeof(ElfW(Sym));
    return (((const uint16_t *)versym)[idx] & 0x7fff) <= 1;
}

static void *resolve(void *handle, const char *name, const char *version)
{
    if (!version) return dlsym(handle, name);
    void *p = dlvsym(handle, name, version);
    void *q = dlsym(handle, name);
    if (q && q != p && unversioned_definition(q)) return q;
    return p;
}

static void *cached(void *handle, const vmc_name_t *key, const char *version)
{
    const char *name = key->str;
    uint32_t h = hc_hash(handle, key);
    pthread_mutex_lock(&hot.lock);
    for (hc_ent_t *e = hc_tab[HC_SLOT(h)]; e; e = e->next) {
        if (e->hash == h && e->handle == handle && !strcmp(e->name, name) &&
            (e->version ? version && !strcmp(e->version, version) : !version)) {
            void *a = e->addr;
            pthread_mutex_unlock(&hot.lock);
            return a;
        }
    }
    pthread_mutex_unlock(&hot.lock);
    void *a = resolve(handle, name, version);
    size_t nl = strlen(name) + 1, vl = version ? strlen(version) + 1 : 0;
    hc_ent_t *e = malloc(sizeof *e + nl + vl);
    if (!e) return a;  /* no memory to remember it: still the right answer */
    e->handle = handle;
    e->addr = a;
    e->hash = h;
    memcpy(e->name, name, nl);
    e->version = version ? memcpy(e->name + nl, version, vl) : NULL;
    pthread_mutex_lock(&hot.lock);
    if (hot.hc_count >= HC_MAX) hc_flush_locked();
    e->next = hc_tab[HC_SLOT(h)];
    hc_tab[HC_SLOT(h)] = e;
    hot.hc_count++;
    pthread_mutex_unlock(&hot.lock);
    return a;
}

/* ---- the global scope's first part ---------------------------------------- */

#define MAX_MAPS 64

/* What dl_iterate_phdr lists, each object's tables read in the listing's
 * callback, into the array that becomes the scope (the listing itself is
 * not copied: a first load's heap stays small). */
typedef struct listing {
    vmc_hobj_t *o;
    size_t n, cap;
    uintptr_t vdso_phdr;         /* the vDSO's program headers, or 0        */
    size_t vdso;                 /* its index, or (size_t)-1                */
    struct link_map *maps[MAX_MAPS];   /* the base namespace's link maps */
    size_t nmaps;
    size_t want;                 /* objects the first allocation holds      */
    unsigned long long adds, subs;
    int failed;
} listing_t;

/* The name a DT_NEEDED entry without a slash matches an already loaded
 * object by, as the system loader does: its DT_SONAME, or the last part of
 * its path.  Names with a slash match the path.  The program's path is no
 * name to match. */
static const char *match_name(const listing_t *ls, size_t i)
{
    const vmc_hobj_t *o = &ls->o[i];
    if (o->soname) return o->soname;
    if (!i) return "";
    const char *b = strrchr(o->path, '/');
    return b ? b + 1 : o->path;
}

/* A name's first four bytes (fewer if shorter), compared before the whole
 * name: the names a search list matches nearly all begin "lib", so their
 * first byte alone tells few apart. */
static uint32_t name_key(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t k = p[0];
    if (p[0]) {
        k |= (uint32_t)p[1] << 8;
        if (p[1]) {
            k |= (uint32_t)p[2] << 16;
            if (p[2]) k |= (uint32_t)p[3] << 24;
        }
    }
    return k;
}

VMC_LOAD_PATH static int list_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    listing_t *ls = arg;
    if (size < offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        ls->failed = 1;
        return 1;
    }
    if (!ls->n) {
        /* the system loader's own list, read while it is held: its link
         * maps, and how many objects to make room for (a listing of other
         * namespaces' objects too grows the array below) */
        size_t count = 0;
        for (struct link_map *m = _r_debug.r_map; m; m = m->l_next, count++)
            if (ls->nmaps < MAX_MAPS) ls->maps[ls->nmaps++] = m;
        ls->cap = 0;
        ls->want = count ? count : 4;   /* (the vDSO is on that list too) */
    }
    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? 2 * ls->cap + 4 : ls->want;
        vmc_hobj_t *p = realloc(ls->o, cap * sizeof *p);
        if (!p) {
            ls->failed = 1;
            return 1;
        }
        ls->o = p;
        ls->cap = cap;
    }
    vmc_hobj_t *o = &ls->o[ls->n];
    /* an object whose tables cannot be read never matches a name */
    if (vmc__hobj_read(o, info)) *o = (vmc_hobj_t){.path = "", .base = info->dlpi_addr};
    if (ls->n && ls->vdso_phdr && (uintptr_t)info->dlpi_phdr == ls->vdso_phdr) ls->vdso = ls->n;
    ls->n++;
    ls->adds = info->dlpi_adds;
    ls->subs = info->dlpi_subs;
    return 0;
}

/* The vDSO's program headers (how dl_iterate_phdr's entry for it is told
 * apart), or 0 if the process has none. */
static uintptr_t vdso_phdr(void)
{
    unsigned long at = 0;
    if (vmc__os_auxval(AT_SYSINFO_EHDR, &at) || !at) return 0;
    return (uintptr_t)at + ((const ElfW(Ehdr) *)(uintptr_t)at)->e_phoff;
}

/* LD_AUDIT or LD_DYNAMIC_WEAK set?  Either changes what the system loader
 * binds.  (One pass over the environment, not a getenv each.) */
static int loader_options_set(void)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++)
        if ((*e)[0] == 'L' && (*e)[1] == 'D' && (*e)[2] == '_' &&
            (!strncmp(*e + 3, "AUDIT=", 6) || !strncmp(*e + 3, "DYNAMIC_WEAK=", 13)))
            return 1;
    return 0;
}

/* Each listed object's name to match (match_name) and its name_key, worked
 * out once for all the DT_NEEDED entries that are compared with it. */
typedef struct names {
    const char **name;
    uint32_t *key;
} names_t;

/* The breadth-first search list from ls->o[roots[0..nroots)] over
 * DT_NEEDED, into order[] (indices into ls->o; in[] marks what is in it);
 * its length, or 0 if a name matches no object. */
static size_t search_list(const listing_t *ls, const names_t *nm, const size_t *roots, size_t nroots,
                          size_t *order, unsigned char *in)
{
    size_t len = 0, n = ls->n;
    memset(in, 0, n);
    for (size_t i = 0; i < nroots; i++) {
        order[len++] = roots[i];
        in[roots[i]] = 1;
    }
    for (size_t q = 0; q < len; q++) {
        const vmc_hobj_t *o = &ls->o[order[q]];
        if (!o->strtab) return 0;
        for (const ElfW(Dyn) *d = o->needed; d && d < o->needed_end; d++) {
            if (d->d_tag != DT_NEEDED) continue;
            if (d->d_un.d_val >= o->strsz) return 0;
            const char *need = o->strtab + d->d_un.d_val;
            size_t j = 0;
            if (strchr(need, '/')) {
                for (; j < n; j++)
                    if (!strcmp(j ? ls->o[j].path : "", need)) break;
            } else {
                uint32_t key = name_key(need);
                for (; j < n; j++)
                    if (nm->key[j] == key && !strcmp(nm->name[j], need)) break;
            }
            if (j == n) return 0;
            if (!in[j]) {
                in[j] = 1;
                order[len++] = j;
            }
        }
    }
    return len;
}

/* Does the listing (vDSO at index vdso, or none if vdso == n) begin with
 * order[0..len)?  The count of listing entries that covers, or 0. */
static size_t listing_begins_with(const listing_t *ls, size_t vdso, const size_t *order, size_t len)
{
    size_t pos = 0, n = ls->n;
    if (!len) return 0;
    for (size_t k = 0; k < len; k++, pos++) {
        if (pos == vdso) pos++;
        if (pos >= n || order[k] != pos || ls->o[pos].filter || !ls->o[pos].strtab) return 0;
    }
    if (vdso < n && vdso == pos) pos++;
    return pos;
}

VMC_LOAD_PATH static void scope_init(void)
{
    listing_t ls = {0};
    size_t len = 0, *order;
    void *scratch = NULL;
    if (loader_options_set()) return;
    ls.vdso_phdr = hot.scope.vdso_phdr = vdso_phdr();
    ls.vdso = (size_t)-1;
    dl_iterate_phdr(list_cb, &ls);
    if (ls.failed || !ls.n) goto out;
    /* order[], roots[], the names and their keys, and in[] in one piece:
     * the look-up state's own page for a listing of up to SCOPE_SCRATCH
     * objects (the heap would keep a freed piece this small apart, below
     * what is allocated next, and so grow by it), else the heap */
    size_t n = ls.n, need = n * SCOPE_SCRATCH_EACH;
    scratch = n <= SCOPE_SCRATCH ? hot.scratch : malloc(need);
    if (!scratch) goto out;
    order = (size_t *)scratch;
    size_t *roots = order + n;
    names_t nm = {(const char **)(roots + n), NULL};
    nm.key = (uint32_t *)(nm.name + n);
    unsigned char *in = (unsigned char *)(nm.key + n);
    for (size_t j = 0; j < n; j++) {
        nm.name[j] = match_name(&ls, j);
        nm.key[j] = name_key(nm.name[j]);
    }
    size_t vdso = ls.vdso < ls.n ? ls.vdso : ls.n;
    /* The search list starts from the program and the preloaded objects,
     * which are the ones listed right after it: try none, then one, two...
     * until the list computed is the listing's beginning (the vDSO aside).
     * Any that matches is the same sequence as the system loader's; one
     * cannot run past the objects the process started with, which depend
     * only on each other. */
    size_t pos = 0;
    for (size_t npre = 0; npre < 16 && !pos; npre++) {
        size_t nroots = 0;
        for (size_t i = 0; i < ls.n && nroots < npre + 1; i++)
            if (i != vdso) roots[nroots++] = i;
        if (nroots < npre + 1) break;
        len = search_list(&ls, &nm, roots, nroots, order, in);
        pos = listing_begins_with(&ls, vdso, order, len);
    }
    if (!pos) goto out;
    /* the link maps and the listing's addresses; the listing's array
     * becomes the objects in search order, which is the listing's without
     * the vDSO */
    void **blk = calloc(len + pos, sizeof *blk);
    if (!blk) goto out;
    hot.scope.map = (struct link_map **)blk;
    hot.scope.listed = (uintptr_t *)(blk + len);
    for (size_t i = 0; i < pos; i++) hot.scope.listed[i] = ls.o[i].base;
    if (vdso < pos) memmove(&ls.o[vdso], &ls.o[vdso + 1], (ls.n - vdso - 1) * sizeof *ls.o);
    vmc_hobj_t *obj = realloc(ls.o, len * sizeof *obj);   /* smaller: stays in place */
    hot.scope.obj = obj ? obj : ls.o;
    ls.o = NULL;
    for (size_t k = 0; k < len; k++) {
        hot.scope.obj[k].index_on_use = 1;
        for (size_t m = 0; m < ls.nmaps; m++)
            if (ls.maps[m]->l_addr == hot.scope.obj[k].base && (void *)ls.maps[m]->l_ld == (void *)hot.scope.obj[k].dyn)
                hot.scope.map[k] = ls.maps[m];
    }
    hot.scope.n = len;
    hot.scope.nlisted = pos;
    hot.scope.adds = ls.adds;
    hot.scope.subs = ls.subs;
    hot.scope.total = ls.n;
    hot.scope.ok = 1;
out:
    if (scratch != hot.scratch) free(scratch);
    free(ls.o);
}

/* Are objects listed now that are not in the scope's first part? */
static int later_since(unsigned long long adds, unsigned long long subs)
{
    if (!hot.scope.ok || adds == ~0ull) return 1;
    return hot.scope.total + (adds - hot.scope.adds) - (subs - hot.scope.subs) != hot.scope.nlisted;
}

typedef struct later {
    vmc_hquery_t *q;
    size_t index;
    int unsure;
} later_t;

static int later_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    later_t *w = arg;
    (void)size;
    size_t i = w->index++;
    if (i < hot.scope.nlisted) {
        if (info->dlpi_addr == hot.scope.listed[i]) return 0;
        w->unsure = 1;           /* not the listing the scope was read from */
        return 1;
    }
    vmc_hobj_t o;
    const ElfW(Sym) *s;
    uintptr_t a;
    if (hot.scope.vdso_phdr && (uintptr_t)info->dlpi_phdr == hot.scope.vdso_phdr) return 0;
    if (vmc__hobj_read(&o, info) || vmc__hobj_find(&o, w->q, &s, &a) != VMC_HFIND_NONE) {
        w->unsure = 1;
        return 1;
    }
    return 0;
}

/* q in the host's global scope: VMC_HFIND_FOUND with *addr, NONE, or
 * UNSURE (ask the system loader). */
VMC_LOAD_PATH static int scope_find(vmc_hquery_t *q, uintptr_t *addr)
{
    for (size_t k = 0; k < hot.scope.n; k++) {
        const ElfW(Sym) *s;
        /* most objects are passed over by their bloom filter, without a call */
        if (!vmc__hobj_may_have(&hot.scope.obj[k], q->gnu)) continue;
        int r = vmc__hobj_find(&hot.scope.obj[k], q, &s, addr);
        if (r == VMC_HFIND_NONE) continue;
        if (r == VMC_HFIND_FOUND && ELF64_ST_TYPE(s->st_info) == STT_GNU_IFUNC)
            *addr = ((uintptr_t(*)(void)) * addr)();
        return r;
    }
    if (!__atomic_load_n(&hot.later_objects, __ATOMIC_RELAXED)) return VMC_HFIND_NONE;
    later_t w = {q, 0, 0};
    dl_iterate_phdr(later_cb, &w);
    return w.unsure || w.index < hot.scope.nlisted ? VMC_HFIND_UNSURE : VMC_HFIND_NONE;
}

/* Handles of objects in the scope's first part (never unloaded, so a
 * handle found here stays valid). */

static int in_first_part(void *handle)
{
    /* glibc's handles are link maps: no need to ask it (dlinfo) then */
    for (size_t k = 0; k < hot.scope.n; k++)
        if (hot.scope.map[k] && (void *)hot.scope.map[k] == handle) return 1;
    pthread_mutex_lock(&hot.lock);
    for (int i = 0; i < KNOWN_HANDLES && hot.known_handles[i]; i++)
        if (hot.known_handles[i] == handle) {
            pthread_mutex_unlock(&hot.lock);
            return 1;
        }
    pthread_mutex_unlock(&hot.lock);
    struct link_map *lm = NULL;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) || !lm) return 0;
    int in = 0;
    for (size_t k = 0; k < hot.scope.n && !in; k++)
        in = hot.scope.obj[k].base == lm->l_addr && hot.scope.obj[k].dyn == (const ElfW(Dyn) *)lm->l_ld;
    if (in) {
        pthread_mutex_lock(&hot.lock);
        for (int i = 0; i < KNOWN_HANDLES; i++)
            if (!hot.known_handles[i] || hot.known_handles[i] == handle) {
                hot.known_handles[i] = handle;
                break;
            }
        pthread_mutex_unlock(&hot.lock);
    }
    return in;
}

VMC_LOAD_PATH void *vmc__host_sym(void *handle, const vmc_name_t *key, const char *version)
{
    return vmc__host_sym_final(handle, key, version, NULL);
}

VMC_LOAD_PATH void *vmc__host_sym_final(void *handle, const vmc_name_t *key, const char *version, int *final)
{
    if (final) *final = 0;
    scope_once();
    if (!hot.scope.ok) return cached(handle, key, version);
    if (handle != RTLD_DEFAULT) {
        /* Asked only after the global scope had no answer: an object of
         * its first part depends only on objects of the first part, so its
         * handle has none either. */
        if (in_first_part(handle)) return NULL;
        return cached(handle, key, version);
    }
    void *f = final_get(key, version);
    if (f) {
        if (final) *final = 1;
        return f;
    }
    vmc_hquery_t q = {.name = key->str, .gnu = key->gnu, .version = version};
    uintptr_t a = 0;
    int r = scope_find(&q, &a);
    if (r == VMC_HFIND_FOUND) {
        if (a) final_put(key, version, (void *)a);
        if (final) *final = a != 0;
        return (void *)a;
    }
    if (r == VMC_HFIND_NONE) return NULL;
    return cached(handle, key, version);
}

VMC_LOAD_PATH void *vmc__host_startup_object(const char *name)
{
    __atomic_store_n(&hot.touched, 1, __ATOMIC_RELAXED);   /* the first access (see `hot`) */
    scope_once();
    if (!hot.scope.ok) return NULL;
    /* The system loader matches a name without a slash against each
     * object's names, in load order: the first part comes first, and a
     * DT_SONAME always matches.  (A path's last part also does, for the
     * name it was opened by: left to dlopen.) */
    for (size_t k = 0; k < hot.scope.n; k++)
        if (hot.scope.map[k] && hot.scope.obj[k].soname && !strcmp(hot.scope.obj[k].soname, name))
            return hot.scope.map[k];
    return NULL;
}

VMC_LOAD_PATH void *vmc__host_startup_owner(const void *addr)
{
    scope_once();
    if (!hot.scope.ok) return NULL;
    uintptr_t a = (uintptr_t)addr;
    for (size_t k = 0; k < hot.scope.n; k++)
        if (hot.scope.map[k] && a >= hot.scope.obj[k].lo && a < hot.scope.obj[k].hi) return hot.scope.map[k];
    return NULL;
}

VMC_LOAD_PATH void *vmc__host_startup_sym(void *handle, const char *name)
{
    scope_once();
    for (size_t k = 0; hot.scope.ok && k < hot.scope.n; k++) {
        if (hot.scope.map[k] != handle) continue;
        vmc_name_t key = vmc__elf_name(name);
        vmc_hquery_t q = {.name = name, .gnu = key.gnu};
        const ElfW(Sym) *s;
        uintptr_t a;
        if (vmc__hobj_find(&hot.scope.obj[k], &q, &s, &a) != VMC_HFIND_FOUND) return NULL;
        if (ELF64_ST_TYPE(s->st_info) == STT_GNU_IFUNC) a = ((uintptr_t(*)(void))a)();
        return (void *)a;
    }
    return NULL;
}

size_t vmc__host_scope_size(void)
{
    scope_once();
    return hot.scope.ok ? hot.scope.n : 0;
}

int vmc__host_scope_find(const char *name, const char *version, void **addr)
{
    vmc__host_sym_sync();
    *addr = NULL;
    if (!hot.scope.ok) return 0;
    vmc_name_t key = vmc__elf_name(name);
    vmc_hquery_t q = {.name = name, .gnu = key.gnu, .version = version};
    uintptr_t a = 0;
    int r = scope_find(&q, &a);
    if (r == VMC_HFIND_UNSURE) return 0;
    *addr = r == VMC_HFIND_FOUND ? (void *)a : NULL;
    return 1;
}

void *vmc__host_sym_system(void *handle, const char *name, const char *version)
{
    return resolve(handle, name, version);
}
