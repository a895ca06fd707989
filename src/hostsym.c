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
 */
#include "loader.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HC_BUCKETS 1024
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

static uint32_t hc_hash(void *handle, const char *name, const char *version)
{
    uint32_t h = 2166136261u ^ (uint32_t)((uintptr_t)handle >> 4);
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ '@') * 16777619u;
    for (const char *p = version ? version : ""; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
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

void *vmc__host_sym(void *handle, const char *name, const char *version)
{
    uint32_t h = hc_hash(handle, name, version);
    pthread_mutex_lock(&hc_lock);
    for (hc_ent_t *e = hc_tab[h % HC_BUCKETS]; e; e = e->next) {
        if (e->hash == h && e->handle == handle && !strcmp(e->name, name) &&
            (e->version ? version && !strcmp(e->version, version) : !version)) {
            void *a = e->addr;
            pthread_mutex_unlock(&hc_lock);
            return a;
        }
    }
    pthread_mutex_unlock(&hc_lock);
    void *a = version ? dlvsym(handle, name, version) : dlsym(handle, name);
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
    e->next = hc_tab[h % HC_BUCKETS];
    hc_tab[h % HC_BUCKETS] = e;
    hc_count++;
    pthread_mutex_unlock(&hc_lock);
    return a;
}
