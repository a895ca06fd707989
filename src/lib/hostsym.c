/* Host symbol look-up for binding, with a cache.
 *
 * Binding a private library asks the host process for each symbol it
 * imports (dlvsym with the version, dlsym without).  Each such call takes the
 * system loader's lock and its error-catching path, about a quarter of a
 * microsecond, and a library imports tens of symbols: a load spent more time
 * there than anywhere else in user space.  Answers, found or not, are kept in
 * a process-wide table keyed by handle, name and version.
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
 * the program frees with its own allocator breaks).  So a versioned look-up
 * also asks dlsym, and when that finds a different address whose definition
 * is unversioned (dladdr1 gives the symbol and its object, whose DT_VERSYM
 * says), that interposer wins.
 */
#include "lib/loader.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
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

static pthread_mutex_t hc_lock = PTHREAD_MUTEX_INITIALIZER;
static hc_ent_t *hc_tab[HC_BUCKETS];
static size_t hc_count;
static unsigned long long hc_adds, hc_subs;   /* the generation it was filled under */

/* The name's GNU hash (computed once per symbol by the caller) mixed with
 * the handle; versions of one name share a chain. */
static uint32_t hc_hash(void *handle, const vmc_name_t *name)
{
    return (name->gnu ^ (uint32_t)((uintptr_t)handle >> 4)) * 0x9e3779b1u;
}

static void hc_flush_locked(void)
{
    for (size_t i = 0; i < HC_BUCKETS; i++) {
        while (hc_tab[i]) {
            hc_ent_t *e = hc_tab[i];
            hc_tab[i] = e->next;
            free(e);
        }
    }
    hc_count = 0;
}

static int generation_cb(struct dl_phdr_info *info, size_t size, void *arg)
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

void vmc__host_sym_sync(void)
{
    unsigned long long g[2] = {~0ull, ~0ull};
    dl_iterate_phdr(generation_cb, g);
    pthread_mutex_lock(&hc_lock);
    if (g[0] != hc_adds || g[1] != hc_subs || g[0] == ~0ull) {
        hc_flush_locked();
        hc_adds = g[0];
        hc_subs = g[1];
    }
    pthread_mutex_unlock(&hc_lock);
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

void *vmc__host_sym(void *handle, const vmc_name_t *key, const char *version)
{
    const char *name = key->str;
    uint32_t h = hc_hash(handle, key);
    pthread_mutex_lock(&hc_lock);
    for (hc_ent_t *e = hc_tab[HC_SLOT(h)]; e; e = e->next) {
        if (e->hash == h && e->handle == handle && !strcmp(e->name, name) &&
            (e->version ? version && !strcmp(e->version, version) : !version)) {
            void *a = e->addr;
            pthread_mutex_unlock(&hc_lock);
            return a;
        }
    }
    pthread_mutex_unlock(&hc_lock);
    void *a = resolve(handle, name, version);
    size_t nl = strlen(name) + 1, vl = version ? strlen(version) + 1 : 0;
    hc_ent_t *e = malloc(sizeof *e + nl + vl);
    if (!e) return a;  /* no memory to remember it: still the right answer */
    e->handle = handle;
    e->addr = a;
    e->hash = h;
    memcpy(e->name, name, nl);
    e->version = version ? memcpy(e->name + nl, version, vl) : NULL;
    pthread_mutex_lock(&hc_lock);
    if (hc_count >= HC_MAX) hc_flush_locked();
    e->next = hc_tab[HC_SLOT(h)];
    hc_tab[HC_SLOT(h)] = e;
    hc_count++;
    pthread_mutex_unlock(&hc_lock);
    return a;
}
