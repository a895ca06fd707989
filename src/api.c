/* The handle: vmc_open, vmc_close, vmc_info, vmc_stats. */
#include "vmc.h"
#include "error.h"
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vmc_open(const vmc_options_t *o, vmc_t **out)
{
    if (!out) return vmc__fail(-EINVAL, "vmc_open: out is NULL");
    *out = NULL;
    vmc_options_t opt;
    if (o) {
        opt = *o;
        int r = vmc__options_check(&opt);
        if (r) return r;
    } else {
        vmc_options_init(&opt);
        const char *env = getenv("VMCODE_OPTIONS");
        int r = vmc_options_parse(&opt, env);
        if (r) return vmc__fail_wrap(r, "VMCODE_OPTIONS");
    }
    vmc_t *v = calloc(1, sizeof *v);
    if (!v) return vmc__fail(-ENOMEM, "vmc_open: out of memory for the handle");
    v->opt = opt;
    int r = vmc__region_open_code(&v->code, &opt, &v->place);
    if (r) goto fail_handle;
    r = vmc__region_open_heap(&v->heap, &opt);
    if (r) goto fail_code;
    pthread_mutex_init(&v->lock, NULL);
    vmc__clear_error();
    *out = v;
    return 0;

fail_code:
    vmc__region_close(&v->code);
fail_handle:
    free(v);
    return r;
}

void vmc_close(vmc_t *v)
{
    if (!v) return;
    vmc__region_close(&v->heap);
    vmc__region_close(&v->code);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

int vmc_info(vmc_t *v, vmc_info_t *out)
{
    if (!v || !out) return vmc__fail(-EINVAL, "vmc_info: NULL argument");
    memset(out, 0, sizeof *out);
    out->code_base = (void *)v->code.base;
    out->code_size = v->code.size;
    out->code_wbase = (void *)v->code.wbase;
    out->heap_base = v->heap.size ? (void *)v->heap.base : NULL;
    out->heap_size = v->heap.size;
    out->w_xor_x = v->code.wx;
    out->placement = v->place.step;
    out->reach_lo = v->place.reach_lo;
    out->reach_hi = v->place.reach_hi;
    out->code_reaching = v->place.reaching;
    out->requested_code_size = v->opt.vm_size;
    out->requested_heap_size = v->opt.vmheap_size;
    return 0;
}

int vmc_stats(vmc_t *v, vmc_stats_t *out)
{
    if (!v || !out) return vmc__fail(-EINVAL, "vmc_stats: NULL argument");
    memset(out, 0, sizeof *out);
    out->code_size = v->code.size;
    out->code_largest_free = v->code.size;
    out->heap_size = v->heap.size;
    return 0;
}
