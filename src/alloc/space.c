/* The space's mapping lock (see space.h). */
#include "alloc/space.h"
#include "base/attrs.h"

void vmc__space_lock_init(vmc_space_t *s)
{
    pthread_mutex_init(&s->lock, NULL);
    atomic_store_explicit(&s->lock_owner, 0, memory_order_relaxed);
    s->lock_depth = 0;
}

VMC_LOAD_PATH void vmc__space_lock(vmc_space_t *s)
{
    unsigned long self = (unsigned long)pthread_self();
    /* only this thread ever stores its own id there */
    if (atomic_load_explicit(&s->lock_owner, memory_order_relaxed) == self) {
        s->lock_depth++;
        return;
    }
    pthread_mutex_lock(&s->lock);
    atomic_store_explicit(&s->lock_owner, self, memory_order_relaxed);
    s->lock_depth = 1;
}

VMC_LOAD_PATH void vmc__space_unlock(vmc_space_t *s)
{
    if (--s->lock_depth > 0) return;
    atomic_store_explicit(&s->lock_owner, 0, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
}
