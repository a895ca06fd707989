/* The registry of private libraries for debuggers (layout and protocol in
 * debug_registry.h), the hook a debugger stops at, and the
 * .debug_gdb_scripts entry that makes gdb load tools/vmcode-gdb.py.
 *
 * Without a debugger a change costs a lock, a few stores and a call of an
 * empty function; a load takes tens of microseconds (docs/loader.md,
 * "Debugging and profiling", has the numbers with gdb attached).
 */
#include "lib/debug_registry.h"
#include "base/attrs.h"
#include "vmcode.h"

#include <pthread.h>
#include <stddef.h>

/* Both names are part of the documented layout: exported from the shared
 * library so that a stripped libvmcode.so still has them (in .dynsym). */
VMC_API vmc_debug_registry_t vmc_debug_registry = {
    VMC_DEBUG_REGISTRY_VERSION, sizeof(vmc_debug_lib_t), 0, 0, NULL};

/* The debugger's breakpoint.  The empty asm with a memory clobber keeps
 * the compiler from dropping the call or moving the list's stores past
 * it; noinline and noclone keep it one function at one address. */
VMC_API VMC_NOCLONE __attribute__((noinline, used)) void vmc_debug_libraries_changed(void)
{
    __asm__ volatile("" ::: "memory");
}

/* Taken only inside a handle's loader lock (loads and unloads), so fork's
 * handlers, which take every loader lock, never find it held.  Kept in
 * .data, next to the registry, rather than in .bss among whatever the link
 * puts after large buffers: locking reads it first, so on a page the
 * process has not touched yet the first load would take two page faults
 * for it (the zero page mapped, then replaced). */
static pthread_mutex_t registry_lock __attribute__((section(".data"))) = PTHREAD_MUTEX_INITIALIZER;

VMC_LOAD_PATH void vmc__debug_add(vmc_debug_lib_t *e)
{
    pthread_mutex_lock(&registry_lock);
    vmc_debug_lib_t **at = &vmc_debug_registry.first, *prev = NULL;
    while (*at) {
        prev = *at;
        at = &(*at)->next;
    }
    e->next = NULL;
    e->prev = prev;
    *at = e;
    vmc_debug_registry.count++;
    vmc_debug_registry.generation++;
    vmc_debug_libraries_changed();
    pthread_mutex_unlock(&registry_lock);
}

VMC_LOAD_PATH void vmc__debug_remove(vmc_debug_lib_t *e)
{
    pthread_mutex_lock(&registry_lock);
    if (e->prev || vmc_debug_registry.first == e) {
        if (e->prev) e->prev->next = e->next;
        else vmc_debug_registry.first = e->next;
        if (e->next) e->next->prev = e->prev;
        e->next = e->prev = NULL;
        vmc_debug_registry.count--;
        vmc_debug_registry.generation++;
        vmc_debug_libraries_changed();
    }
    pthread_mutex_unlock(&registry_lock);
}

uint64_t vmc__debug_count(void)
{
    pthread_mutex_lock(&registry_lock);
    uint64_t n = vmc_debug_registry.count;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

/* gdb reads .debug_gdb_scripts of every object it loads: entry type 4 is
 * a Python script's text, its first line a name (gdb loads a name once
 * per program).  Embedding the text, rather than naming a file (type 1),
 * works from the build tree and for a program linked with libvmcode.a,
 * where no installed file sits next to the object; gdb runs it when the
 * object is in its "auto-load safe-path" (README says how to allow it).
 * The section is not allocated: it costs the process nothing. */
#ifdef VMC_GDB_SCRIPT
__asm__(".pushsection .debug_gdb_scripts, \"MS\", @progbits, 1\n"
        ".byte 4\n"
        ".ascii \"gdb.inlined-script.vmcode\\n\"\n"
        ".incbin \"" VMC_GDB_SCRIPT "\"\n"
        ".byte 0\n"
        ".popsection\n");
#endif
