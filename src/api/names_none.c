/* Names for generated code where gdb's JIT interface and perf's files do
 * not exist (the Windows build, instead of jitnames.c and jitdump.c, which
 * hand debuggers ELF objects): naming is refused by name. */
#include "api/jitnames.h"
#include "base/error.h"

#include <errno.h>

int vmc_name(vmc_t *v, const void *addr, size_t size, const char *name)
{
    (void)v, (void)addr, (void)size, (void)name;
    return vmc__fail(-ENOTSUP, "vmc_name: names for debuggers and profilers (gdb's JIT interface, "
                               "perf) are not supported on this system yet");
}

int vmc_name_flush(vmc_t *v)
{
    (void)v;
    return 0;   /* nothing was ever named */
}

void vmc__names_close(vmc_t *v) { (void)v; }
