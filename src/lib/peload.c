/* The lifecycle's PE path: a file that starts with "MZ" goes to the PE
 * layer instead of the ELF one (loader.c picks by the magic, the same on
 * every system).
 *
 * What exists is the format half: the whole file is read (a DLL is copied,
 * never mapped) and its headers checked, so a broken DLL is refused with
 * the PE layer's message naming field and offset.  A valid DLL is refused
 * as unsupported, because the steps after the check (a piece of the region
 * committed, the image laid out and relocated into it, imports bound
 * through the system's DLLs, per-section protection, RtlAddFunctionTable,
 * DllMain) are Windows calls that are not written yet.
 */
#include "lib/loader.h"
#include "pe/pe.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vmc__lib_pe_load(vmc_lib_t *l, const vmc_src_t *src)
{
    const uint8_t *bytes = src->bytes;
    uint8_t *buf = NULL;
    int e = 0;
    if (src->fd >= 0) {
        if (src->size > VMC_PE_MAX_IMAGE)
            return vmc__fail(-ENOTSUP, "%s: PE file of 0x%llx bytes: files over 1 GiB are not supported", l->name,
                             (unsigned long long)src->size);
        size_t got = 0;
        if (!(buf = malloc(src->size ? (size_t)src->size : 1)))
            return vmc__fail(-ENOMEM, "%s: out of memory for the PE file", l->name);
        if ((e = vmc__os_pread(src->fd, buf, (size_t)src->size, 0, &got)))
            e = vmc__fail(e, "%s: reading the PE file: %s", l->name, strerror(-e));
        else if (got != src->size)
            e = vmc__fail(-ENOEXEC, "%s: reading the PE file: it shrank", l->name);
        bytes = buf;
    }
    if (!e) {
        vmc_pe_obj_t *o = calloc(1, sizeof *o);
        if (!o) {
            e = vmc__fail(-ENOMEM, "%s: out of memory for the PE headers", l->name);
        } else {
            o->name = l->name;
            e = vmc__pe_check(o, bytes, (size_t)src->size);
            if (!e)
                e = vmc__fail(-ENOTSUP, "%s: a PE32+ DLL (Windows x64): loading Windows DLLs privately is not "
                              "supported yet", l->name);
            free(o);
        }
    }
    free(buf);
    return e;
}
