/* What the load of a library read and checked of its file, kept after the
 * library is unloaded for the next load of the same file.
 *
 * A plug-in host that loads and unloads the same library again reads the
 * same headers and tables every time: the ELF header and program headers,
 * the dynamic section and the symbol, string, hash and version tables it
 * names, and DT_FINI's bytes (three preads and the checks of all of it,
 * about a fifth of a steady-state load of libz: docs/loader.md, "Cost").
 * The unloaded library's record itself is kept, with what its format left
 * in it (fmt->keep: nothing is allocated or copied at the unload, which at
 * a first load in a fresh process would be fresh heap), and a load of a
 * file with the same identity (device, inode), size and times of last
 * change takes that over instead of reading the file again.  Only a file whose
 * last change is more than two seconds old is kept (vmc__os_file_settled):
 * any later change then moves one of those times, even on a file system
 * with whole-second times, so a rewritten file is read again.  What was
 * kept is the copy that was checked, as a single load uses only its copy
 * (elf/dyn.c): no byte of the image is trusted beyond what a first load
 * trusts.
 *
 * Per handle, under its lock; at most as many files as kept[] holds (the
 * oldest goes), each entry a library's record (1.2 KiB) and the tables'
 * copy (at most 124 KiB, elf/dyn.c's SNAP_MAX); dropped at vmc_close.
 */
#include "lib/loader.h"
#include "base/attrs.h"

#include <stdlib.h>
#include <string.h>

#define NKEPT (sizeof ((vmc_loader_t *)0)->kept / sizeof ((vmc_loader_t *)0)->kept[0])

static int refuse;   /* tests: keep nothing (every load reads its file) */

void vmc__kept_refuse(int on) { refuse = on; }

VMC_LOAD_PATH void vmc__kept_drop(vmc_lib_t *l)
{
    l->fmt->free(l);
    free(l);
}

VMC_LOAD_PATH vmc_lib_t *vmc__kept_take(vmc_loader_t *v, const uint64_t id[2], const uint64_t stamp[3])
{
    if (refuse) return NULL;
    for (size_t i = 0; i < NKEPT; i++) {
        struct vmc_kept *k = &v->kept[i];
        if (k->lib && !memcmp(k->id, id, sizeof k->id) && !memcmp(k->stamp, stamp, sizeof k->stamp)) {
            vmc_lib_t *t = k->lib;
            k->lib = NULL;
            return t;
        }
    }
    return NULL;
}

VMC_LOAD_PATH int vmc__kept_put(vmc_lib_t *l)
{
    vmc_loader_t *v = l->v;
    if (refuse || !l->settled || !l->has_id || !l->fmt || !l->fmt->keep) return 0;
    if (!l->fmt->keep(l)) return 0;
    /* the slot of the same file (a second load with other flags kept it
     * too), else a free one, else the oldest */
    struct vmc_kept *pick = NULL;
    for (size_t i = 0; i < NKEPT; i++) {
        struct vmc_kept *k = &v->kept[i];
        if (k->lib && !memcmp(k->id, l->id, sizeof k->id)) {
            pick = k;
            break;
        }
        if (!pick || (pick->lib && (!k->lib || k->used < pick->used))) pick = k;
    }
    if (pick->lib) vmc__kept_drop(pick->lib);
    memcpy(pick->id, l->id, sizeof pick->id);
    memcpy(pick->stamp, l->stamp, sizeof pick->stamp);
    pick->fmt = l->fmt;
    pick->lib = l;
    pick->used = ++v->kept_clock;
    return 1;
}

void vmc__kept_clear(vmc_loader_t *v)
{
    for (size_t i = 0; i < NKEPT; i++) {
        struct vmc_kept *k = &v->kept[i];
        if (k->lib) vmc__kept_drop(k->lib);
        k->lib = NULL;
    }
}
