/* What the Windows build has instead of the lifecycle's ELF side (elfload.c)
 * and of the Linux-only parts of src/lib/ (TLS, dl_iterate_phdr, the
 * unwinder's registration): the lifecycle (loader.c)
 * loads DLLs there (peload.c); a file that is not one is refused by name. */
#include "lib/loader.h"
#include "lib/tls.h"
#include "lib/ldcache.h"
#include "base/error.h"

#include <errno.h>
#include <string.h>

static int noelf_load(vmc_lib_t *l, vmc_src_t *src, const uint8_t *hdr, size_t hdrlen)
{
    (void)src;
    if (hdrlen >= 4 && !memcmp(hdr, "\177ELF", 4))
        return vmc__fail(-ENOTSUP, "%s: an ELF object: ELF shared objects are loaded privately on Linux only",
                         l->name);
    return vmc__fail(-ENOEXEC, "%s: not a DLL (no MZ header)", l->name);
}

static void noelf_nothing(vmc_lib_t *l) { (void)l; }

/* Only load is ever reached: no ELF library exists here. */
const vmc_lib_fmt_t vmc__lib_elf_fmt = {
    .load = noelf_load,
    .teardown = noelf_nothing,
    .free = noelf_nothing,
};

void vmc__ldcache_recheck(void) {}   /* no ld.so cache here */
void vmc__phdr_fork_prepare(void) {}
void vmc__phdr_fork_release(void) {}
void vmc__tls_fork_prepare(void) {}
void vmc__tls_fork_parent(void) {}
void vmc__tls_fork_child(void) {}
void vmc__tlsdtor_fork_prepare(void) {}
void vmc__tlsdtor_fork_release(void) {}
void vmc__unwinder_fork_prepare(void) {}
void vmc__unwinder_fork_release(void) {}
