/* The public memory calls: code and data allocation, stubs and file
 * mappings, on the handle's space (alloc/). */
#include "api/vmc.h"

#include <stddef.h>

/* The handle's space; NULL for a NULL handle, which each call refuses with
 * its own message. */
static vmc_space_t *space(vmc_t *v) { return v ? &v->sp : NULL; }

int vmc_alloc(vmc_t *v, size_t size, int kind, vmc_span_t *out)
{
    return vmc__alloc(space(v), size, kind, out);
}

int vmc_alloc_reaching(vmc_t *v, size_t size, int kind, uintptr_t lo, uintptr_t hi, vmc_span_t *out)
{
    return vmc__alloc_reaching(space(v), size, kind, lo, hi, out);
}

int vmc_free(vmc_t *v, void *p) { return vmc__free(space(v), p); }
void *vmc_writable(vmc_t *v, const void *x) { return vmc__writable(space(v), x); }
void *vmc_executable(vmc_t *v, const void *w) { return vmc__executable(space(v), w); }
int vmc_stub(vmc_t *v, uintptr_t target, void **x) { return vmc__stub(space(v), target, x); }

int vmc_map_file(vmc_t *v, int fd, uint64_t offset, size_t size, int prot, int flags, void **out)
{
    return vmc__map_file(space(v), fd, offset, size, prot, flags, out);
}

int vmc_map_handle(vmc_t *v, void *handle, uint64_t offset, size_t size, int prot, int flags, void **out)
{
    return vmc__map_handle(space(v), handle, offset, size, prot, flags, out);
}

int vmc_unmap_file(vmc_t *v, void *addr, size_t size) { return vmc__unmap_file(space(v), addr, size); }
