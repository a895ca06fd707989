/* The public library calls that take the handle: the private loader
 * (lib/) works on the handle's loader. */
#include "api/vmc.h"
#include "base/attrs.h"

VMC_LOAD_PATH int vmc_lib_load(vmc_t *v, const char *path, int flags, vmc_lib_t **out)
{
    return vmc__lib_load(v ? &v->ld : NULL, path, flags, out);
}

int vmc_lib_load_mem(vmc_t *v, const void *bytes, size_t len, const char *name, int flags, vmc_lib_t **out)
{
    return vmc__lib_load_mem(v ? &v->ld : NULL, bytes, len, name, flags, out);
}

int vmc_addr_info(vmc_t *v, const void *addr, vmc_addr_info_t *info)
{
    return vmc__lib_addr_info(v ? &v->ld : NULL, addr, info);
}
