/* The library lifecycle where no loader exists for the system's format (the
 * Windows build: PE images cannot be mapped over a placeholder, and the
 * loader that copies their sections is not written yet).  Loading is refused
 * by name; a handle never holds a library, so the other calls see none. */
#include "lib/libs.h"
#include "base/error.h"
#include "lib/tls.h"

#include <errno.h>

static int unsupported(void)
{
    return vmc__fail(-ENOTSUP, "vmc_lib_load: private loading of libraries is not supported on this "
                               "system yet");
}

void vmc__loader_lock(vmc_loader_t *v) { (void)v; }
void vmc__loader_unlock(vmc_loader_t *v) { (void)v; }
void vmc__loader_close(vmc_loader_t *v) { (void)v; }
size_t vmc__loader_count(vmc_loader_t *v) { return v ? v->nlibs : 0; }

int vmc__lib_load(vmc_loader_t *v, const char *path, int flags, vmc_lib_t **out)
{
    (void)v, (void)path, (void)flags;
    if (out) *out = NULL;
    return unsupported();
}

int vmc__lib_load_mem(vmc_loader_t *v, const void *bytes, size_t len, const char *name, int flags,
                      vmc_lib_t **out)
{
    (void)v, (void)bytes, (void)len, (void)name, (void)flags;
    if (out) *out = NULL;
    return unsupported();
}

void vmc__phdr_fork_prepare(void) {}
void vmc__phdr_fork_release(void) {}
void vmc__tls_fork_prepare(void) {}
void vmc__tls_fork_parent(void) {}
void vmc__tls_fork_child(void) {}
void vmc__tlsdtor_fork_prepare(void) {}
void vmc__tlsdtor_fork_release(void) {}
void vmc__unwinder_fork_prepare(void) {}
void vmc__unwinder_fork_release(void) {}

/* No vmc_lib_t ever exists here: each call gets what a NULL one gets. */
void *vmc_lib_sym(vmc_lib_t *l, const char *name)
{
    (void)l, (void)name;
    vmc__fail(-EINVAL, "vmc_lib_sym: NULL argument");
    return NULL;
}

int vmc_lib_span(vmc_lib_t *l, void **start, size_t *len)
{
    (void)l, (void)start, (void)len;
    return vmc__fail(-EINVAL, "vmc_lib_span: NULL argument");
}

int vmc_lib_info(vmc_lib_t *l, vmc_lib_info_t *out)
{
    (void)l, (void)out;
    return vmc__fail(-EINVAL, "vmc_lib_info: NULL argument");
}

int vmc_lib_dep(vmc_lib_t *l, unsigned i, vmc_lib_dep_t *out)
{
    (void)l, (void)i, (void)out;
    return vmc__fail(-EINVAL, "vmc_lib_dep: NULL argument");
}

int vmc_lib_unload(vmc_lib_t *l)
{
    (void)l;
    return vmc__fail(-EINVAL, "vmc_lib_unload: NULL argument");
}

int vmc__lib_addr_info(vmc_loader_t *v, const void *addr, vmc_addr_info_t *info)
{
    (void)v, (void)addr, (void)info;
    return vmc__fail(-ENOTSUP, "vmc_addr_info: looking addresses up in loaded objects is not supported "
                               "on this system yet");
}
