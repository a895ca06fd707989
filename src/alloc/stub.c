/* Far-target stubs (vmc_stub).
 *
 * A stub is VMC_ARCH_STUB_SIZE bytes that jump to one target from anywhere,
 * clobbering no register (arch/x86_64.c writes them).  Stubs are carved
 * from page-sized runs of their own (owner "stubs" in the map) and are
 * shared per target through a hash table; they live until vmc_close.
 */
#include "alloc/space.h"
#include "alloc/codeheap.h"
#include "base/error.h"
#include "os/os.h"
#include "arch/arch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void vmc__stubs_init(vmc_space_t *v)
{
    memset(&v->stubs, 0, sizeof v->stubs);
    pthread_mutex_init(&v->stubs.lock, NULL);
}

void vmc__stubs_fini(vmc_space_t *v)
{
    free(v->stubs.targets);
    free(v->stubs.stubs);
    pthread_mutex_destroy(&v->stubs.lock);
}

static size_t slot_of(uintptr_t t, size_t cap)
{
    uint64_t h = (uint64_t)t * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

static int table_grow(vmc_stubs_t *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    uintptr_t *t = calloc(cap, sizeof *t), *x = calloc(cap, sizeof *x);
    if (!t || !x) {
        free(t);
        free(x);
        return vmc__fail(-ENOMEM, "vmc_stub: out of memory for the stub table");
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->targets[i]) continue;
        size_t j = slot_of(s->targets[i], cap);
        while (t[j]) j = (j + 1) & (cap - 1);
        t[j] = s->targets[i];
        x[j] = s->stubs[i];
    }
    free(s->targets);
    free(s->stubs);
    s->targets = t;
    s->stubs = x;
    s->cap = cap;
    return 0;
}

int vmc__stub(vmc_space_t *v, uintptr_t target, void **x)
{
    if (!v || !x) return vmc__fail(-EINVAL, "vmc_stub: NULL argument");
    if (!target) return vmc__fail(-EINVAL, "vmc_stub: target is 0");
    if (vmc__region_contains(&v->code, target, 1)) {
        *x = (void *)target;  /* already in the region: every fragment reaches it */
        return 0;
    }
    vmc_stubs_t *s = &v->stubs;
    pthread_mutex_lock(&s->lock);
    int e = 0;
    if (s->cap) {
        for (size_t j = slot_of(target, s->cap); s->targets[j]; j = (j + 1) & (s->cap - 1))
            if (s->targets[j] == target) {
                *x = (void *)s->stubs[j];
                goto out;
            }
    }
    if ((s->count + 1) * 2 > s->cap && (e = table_grow(s))) goto out;
    size_t page = vmc__os_granularity();   /* one block: the page, or 64 KiB on Windows */
    if (!s->page_x || s->page_used + VMC_STUB_SIZE > page) {
        /* A block of its own, so the map shows where the stubs are. */
        uintptr_t x;
        e = vmc__blocks_take(v->code_blocks, page, 0, 0, 0, 0, VMC_OWNER_STUBS, NULL, &x);
        if (!e && (e = vmc__blocks_commit(v->code_blocks, x, page, VMC_CODE))) vmc__blocks_give(v->code_blocks, x);
        if (e) {
            vmc__fail_wrap(e, "vmc_stub: no room for a stub page");
            goto out;
        }
        s->page_x = x;
        s->page_w = x - v->code.base + v->code.wbase;
        s->page_used = 0;
    }
    uint8_t code[VMC_STUB_SIZE];
    vmc__arch_stub(code, target);
    memcpy((void *)(s->page_w + s->page_used), code, sizeof code);
    uintptr_t stub = s->page_x + s->page_used;
    s->page_used += VMC_STUB_SIZE;
    size_t j = slot_of(target, s->cap);
    while (s->targets[j]) j = (j + 1) & (s->cap - 1);
    s->targets[j] = target;
    s->stubs[j] = stub;
    s->count++;
    *x = (void *)stub;
out:
    pthread_mutex_unlock(&s->lock);
    return e;
}
