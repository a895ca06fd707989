/* The hold list (invariant 1): the ranges this library holds, so that every
 * call that replaces whatever is at an address (MAP_FIXED on Linux) can be
 * checked to target one of them.  One list for every system: a fixed array
 * under a pthread mutex (glibc's; winpthreads' in the MinGW build), small
 * because a handle holds two or three ranges. */
#include "os/os.h"
#include "base/attrs.h"
#include "os/hold.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define OS_MAX_HOLDS 256
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { uintptr_t lo, hi; } holds[OS_MAX_HOLDS];
static int nholds;
static int audit;

void vmc__os_set_audit(int on) { audit = on; }

void vmc__os_hold(uintptr_t lo, uintptr_t hi)
{
    pthread_mutex_lock(&hold_lock);
    if (nholds < OS_MAX_HOLDS) {
        holds[nholds].lo = lo;
        holds[nholds].hi = hi;
        nholds++;
    }
    pthread_mutex_unlock(&hold_lock);
}

void vmc__os_unhold(uintptr_t lo, uintptr_t hi)
{
    pthread_mutex_lock(&hold_lock);
    for (int i = 0; i < nholds; i++) {
        if (holds[i].lo == lo && holds[i].hi == hi) {
            holds[i] = holds[--nholds];
            break;
        }
    }
    pthread_mutex_unlock(&hold_lock);
}

int vmc__os_holds(uintptr_t lo, uintptr_t hi)
{
    int found = 0;
    pthread_mutex_lock(&hold_lock);
    for (int i = 0; i < nholds && !found; i++)
        found = lo >= holds[i].lo && hi <= holds[i].hi && lo < hi;
    pthread_mutex_unlock(&hold_lock);
    return found;
}

VMC_LOAD_PATH void vmc__os_audit_fixed_range(uintptr_t lo, size_t len, const char *what)
{
    if (!audit || vmc__os_holds(lo, lo + len)) return;
    fprintf(stderr, "vmcode audit: %s at %#" PRIxPTR "+%#zx outside every held reservation\n", what,
            lo, len);
    abort();
}

void vmc__os_hold_lock(void) { pthread_mutex_lock(&hold_lock); }
void vmc__os_hold_unlock(void) { pthread_mutex_unlock(&hold_lock); }
