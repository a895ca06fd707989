/* vmc_dump: the map of both regions, run by run. */
#include "vmc.h"
#include "error.h"

#include <errno.h>

typedef struct dump_ctx {
    FILE *f;
    uintptr_t at;                /* end of the previous run             */
} dump_ctx_t;

static const char *kind_name(int kind)
{
    switch (kind) {
    case VMC_CODE: return "code";
    case VMC_RDATA: return "rdata";
    case VMC_DATA: return "data";
    default: return "-";
    }
}

static void size_str(size_t n, char *buf, size_t len)
{
    if (n >= (1u << 20) && n % (1u << 20) == 0) snprintf(buf, len, "%zuM", n >> 20);
    else if (n >= 1024 && n % 1024 == 0) snprintf(buf, len, "%zuK", n >> 10);
    else snprintf(buf, len, "%zu", n);
}

static void dump_free(dump_ctx_t *c, uintptr_t to)
{
    if (to <= c->at) return;
    char sz[32];
    size_str(to - c->at, sz, sizeof sz);
    fprintf(c->f, "  %#014lx-%#014lx %8s  free\n", (unsigned long)c->at, (unsigned long)to, sz);
}

static void dump_run(const vmc_run_t *run, void *arg)
{
    dump_ctx_t *c = arg;
    dump_free(c, run->start);
    char sz[32], cm[32];
    size_str(run->len, sz, sizeof sz);
    size_str(run->committed, cm, sizeof cm);
    fprintf(c->f, "  %#014lx-%#014lx %8s  %-10s %s, committed %s\n", (unsigned long)run->start,
            (unsigned long)(run->start + run->len), sz, vmc__owner_name(run->owner),
            kind_name(run->kind), cm);
    c->at = run->start + run->len;
}

static void dump_region(vmc_region_t *r, vmc_blocks_t *b, FILE *f)
{
    char sz[32];
    size_str(r->size, sz, sizeof sz);
    if (!r->size) {
        fprintf(f, "%s region: none\n", r->name);
        return;
    }
    fprintf(f, "%s region %#014lx-%#014lx %s", r->name, (unsigned long)r->base,
            (unsigned long)(r->base + r->size), sz);
    if (r->wx) fprintf(f, " (writable view at %#lx)", (unsigned long)r->wbase);
    fputc('\n', f);
    dump_ctx_t c = {f, r->base};
    vmc__blocks_each(b, dump_run, &c);
    dump_free(&c, r->base + r->size);
}

int vmc_dump(vmc_t *v, FILE *f)
{
    if (!v || !f) return vmc__fail(-EINVAL, "vmc_dump: NULL argument");
    dump_region(&v->code, v->code_blocks, f);
    dump_region(&v->heap, v->heap_blocks, f);
    return 0;
}
