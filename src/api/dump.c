/* The region map: vmc_walk visits every run of both regions in address order
 * (free runs included); vmc_dump prints what it visits. */
#include "api/vmc.h"
#include "base/error.h"

#include <errno.h>
#include <inttypes.h>

typedef struct walk_ctx {
    vmc_run_fn fn;
    void *arg;
    int region;
    uintptr_t at;                /* end of the previous run               */
    int stop;                    /* what fn returned, once non-zero       */
} walk_ctx_t;

static void visit(walk_ctx_t *c, vmc_run_info_t *ri)
{
    if (!c->stop) c->stop = c->fn(ri, c->arg);
}

static void visit_free(walk_ctx_t *c, uintptr_t to)
{
    if (to <= c->at) return;
    vmc_run_info_t ri = {(void *)c->at, to - c->at, c->region, VMC_RUN_FREE,
                         vmc__owner_name(VMC_OWNER_FREE), 0, 0, NULL};
    visit(c, &ri);
}

static void visit_run(const vmc_run_t *run, void *arg)
{
    walk_ctx_t *c = arg;
    visit_free(c, run->start);
    vmc_run_info_t ri = {(void *)run->start, run->len, c->region, run->owner,
                         vmc__owner_name(run->owner), run->kind, run->committed,
                         run->name};
    visit(c, &ri);
    c->at = run->start + run->len;
}

int vmc_walk(vmc_t *v, vmc_run_fn fn, void *arg)
{
    if (!v || !fn) return vmc__fail(-EINVAL, "vmc_walk: NULL argument");
    vmc_region_t *rs[2] = {&v->sp.code, &v->sp.heap};
    vmc_blocks_t *bs[2] = {v->sp.code_blocks, v->sp.heap_blocks};
    walk_ctx_t c = {fn, arg, 0, 0, 0};
    for (int i = 0; i < 2 && !c.stop; i++) {
        if (!rs[i]->size) continue;
        c.region = i;
        c.at = rs[i]->base;
        vmc__blocks_each(bs[i], visit_run, &c);
        visit_free(&c, rs[i]->base + rs[i]->size);
    }
    return c.stop;
}

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

static int print_run(const vmc_run_info_t *ri, FILE *f, int kept)
{
    char sz[32], cm[32];
    uintptr_t a = (uintptr_t)ri->start;
    size_str(ri->size, sz, sizeof sz);
    fprintf(f, "  %#014" PRIxPTR "-%#014" PRIxPTR " %8s  ", (uintptr_t)a, (uintptr_t)(a + ri->size), sz);
    if (ri->owner == VMC_RUN_FREE) {
        fputs(ri->owner_name, f);
    } else {
        size_str(ri->committed, cm, sizeof cm);
        fprintf(f, "%-10s %s, committed %s", ri->owner_name, kind_name(ri->kind), cm);
    }
    if (ri->name) fprintf(f, "  %s", ri->name);
    if (kept) fputs("  (wholly free, kept for reuse: counts as free)", f);
    fputc('\n', f);
    return 0;
}

static void print_header(vmc_region_t *r, FILE *f)
{
    char sz[32];
    if (!r->size) {
        fprintf(f, "%s region: none\n", r->name);
        return;
    }
    size_str(r->size, sz, sizeof sz);
    fprintf(f, "%s region %#014" PRIxPTR "-%#014" PRIxPTR " %s", r->name, (uintptr_t)r->base,
            (uintptr_t)(r->base + r->size), sz);
    if (r->wx) fprintf(f, " (writable view at %#" PRIxPTR ")", (uintptr_t)r->wbase);
    fputc('\n', f);
}

typedef struct dump_ctx {
    FILE *f;
    vmc_t *v;
    int region;
    uintptr_t kept[16];          /* the code heap's kept chunks, read before
                                    the walk (it holds the block locks)    */
    size_t nkept;
} dump_ctx_t;

static int dump_run(const vmc_run_info_t *ri, void *arg)
{
    dump_ctx_t *d = arg;
    if (ri->region != d->region) {  /* entering the heap region */
        d->region = ri->region;
        print_header(&d->v->sp.heap, d->f);
    }
    int kept = 0;
    for (size_t i = 0; i < d->nkept && ri->owner != VMC_RUN_FREE; i++)
        kept |= d->kept[i] == (uintptr_t)ri->start;
    return print_run(ri, d->f, kept);
}

int vmc_dump(vmc_t *v, FILE *f)
{
    if (!v || !f) return vmc__fail(-EINVAL, "vmc_dump: NULL argument");
    print_header(&v->sp.code, f);
    dump_ctx_t d = {.f = f, .v = v, .region = 0};
    d.nkept = vmc__codeheap_kept(&v->sp, d.kept, sizeof d.kept / sizeof *d.kept);
    vmc_walk(v, dump_run, &d);
    if (!v->sp.heap.size) print_header(&v->sp.heap, f);
    return 0;
}
