/* The table of interposed imports (interpose.h says why they exist).
 *
 * An entry names the import, the version it stands for (NULL: any version,
 * and unversioned references), and vmcode's function.  An entry with a
 * version also takes unversioned references, which the system loader binds
 * to the default version.  A reference at any other version goes to the
 * host: the C library keeps old versions of a function for an older
 * contract, and ours implements only the one named.
 *
 * The look-up runs for every import the private libraries do not define
 * themselves, so the names' hashes are computed once and compared first.
 */
#include "lib/interpose.h"
#include "base/attrs.h"
#include "lib/dladdr.h"
#include "lib/phdr.h"
#include "lib/tlsdtor.h"
#include "lib/unwinder.h"
#include "lib/tls.h"

#include <dlfcn.h>
#include <string.h>

typedef struct interpose {
    const char *name;
    const char *version;         /* NULL: any                               */
    void *fn;                    /* vmcode's definition                     */
} interpose_t;

static const interpose_t table[] = {
    {"dl_iterate_phdr", NULL, (void *)vmc__dl_iterate_phdr},
#ifdef DLFO_EH_SEGMENT_TYPE
    {"_dl_find_object", NULL, (void *)vmc__dl_find_object},
#endif
    {"__cxa_thread_atexit_impl", NULL, (void *)vmc__cxa_thread_atexit},  /* glibc's */
    {"__cxa_thread_atexit", NULL, (void *)vmc__cxa_thread_atexit},       /* libstdc++'s, which calls it */
    {"backtrace", NULL, (void *)vmc__backtrace},
    {"backtrace_symbols", NULL, (void *)vmc__backtrace_symbols},     /* name private frames (dladdr.c) */
    {"backtrace_symbols_fd", NULL, (void *)vmc__backtrace_symbols_fd},
    {"dladdr", NULL, (void *)vmc__dladdr},
    {"dladdr1", NULL, (void *)vmc__dladdr1},
    {"__tls_get_addr", NULL, (void *)vmc__tls_get_addr},   /* serves private modules (tls.c) */
};

#define NTABLE (sizeof table / sizeof table[0])

/* Computed by the first look-up.  Not with pthread_once: its wake-up is a
 * futex system call in a process's first load.  Threads that race compute
 * the same values, each stored atomically, and publish them with the flag. */
static uint32_t hashes[NTABLE];
static int hashed;

VMC_LOAD_PATH static void hash_table(void)
{
    if (__atomic_load_n(&hashed, __ATOMIC_ACQUIRE)) return;
    for (size_t i = 0; i < NTABLE; i++)
        __atomic_store_n(&hashes[i], vmc__elf_name(table[i].name).gnu, __ATOMIC_RELAXED);
    __atomic_store_n(&hashed, 1, __ATOMIC_RELEASE);
}

VMC_LOAD_PATH void *vmc__interposed(const vmc_name_t *name, const vmc_ver_t *ver)
{
    hash_table();
    for (size_t i = 0; i < NTABLE; i++) {
        const interpose_t *t = &table[i];
        if (__atomic_load_n(&hashes[i], __ATOMIC_RELAXED) != name->gnu || strcmp(t->name, name->str)) continue;
        if (t->version && ver && ver->name && strcmp(t->version, ver->name)) return NULL;
        return t->fn;
    }
    return NULL;
}

