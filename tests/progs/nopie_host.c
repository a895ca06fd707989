/* A host program linked -no-pie (its image at 0x400000), for the placement
 * tests (tests/test_place.c).  It opens a region with the options given as
 * its one argument (or the defaults), prints what vmc_info says and where brk
 * was, then allocates code that must reach the program's image, writes a
 * `call rel32` to one of the program's functions into it and runs it.
 * Output: one "key value" per line; exit status 0 if all of it worked.
 * With VMC_NOPIE_FAULT=N the Nth mmap of vmc_open fails (ENOMEM), and after
 * vmc_close it prints how many inaccessible mappings are left below 4 GiB. */
#include "vmcode.h"
#include "os/os.h"

#include <errno.h>
#include <stdlib.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char __executable_start[], _end[];

__attribute__((noinline)) static int answer(void) { return 42; }

static int walk_hole(const vmc_run_info_t *ri, void *arg)
{
    struct { uintptr_t lo; size_t size; } *seen = arg;
    if (ri->owner == VMC_RUN_BRK_HEAP) {
        seen->lo = (uintptr_t)ri->start;
        seen->size = ri->size;
    }
    return 0;
}

/* Inaccessible mappings starting in [0x400000, 4 GiB): what a reservation
 * left behind would be. */
static int low_reservations(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char prot[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, prot) == 3 && !strcmp(prot, "---p") &&
            lo >= 0x400000 && lo < (1ul << 32))
            n++;
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    const char *fault = getenv("VMC_NOPIE_FAULT");
    uintptr_t brk_before = (uintptr_t)sbrk(0);
    vmc_options_t o;
    vmc_options_init(&o);
    if (argc > 1 && vmc_options_parse(&o, argv[1])) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    vmc_t *v;
    if (fault) vmc__os_fault(VMC_OS_MMAP, strtoul(fault, NULL, 10), ENOMEM, 0);
    if (vmc_open(&o, &v)) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    uintptr_t brk_after = (uintptr_t)sbrk(0);
    vmc_info_t in;
    vmc_info(v, &in);
    printf("image %#lx %#lx\n", (unsigned long)(uintptr_t)__executable_start, (unsigned long)(uintptr_t)_end);
    printf("brk %#lx %#lx\n", (unsigned long)brk_before, (unsigned long)brk_after);
    printf("code %#lx %zu\n", (unsigned long)(uintptr_t)in.code_base, in.code_size);
    printf("target %#lx %#lx\n", (unsigned long)in.reach_lo, (unsigned long)in.reach_hi);
    printf("reaching %zu\n", in.code_reaching);
    printf("placement %d\n", in.placement);
    printf("near_app_failed %d\n", in.near_app_failed);
    printf("hole %#lx %zu\n", (unsigned long)(uintptr_t)in.brk_hole, in.brk_hole_size);
    printf("w_xor_x %d\n", in.w_xor_x);

    /* The heap still grows by brk into all of its room (inside the hole, if
     * any), and no further: the region is there. */
    intptr_t room = (intptr_t)o.brk_room - (intptr_t)(brk_after - brk_before) - (1 << 20);
    void *grown = sbrk(room);
    printf("sbrk %d\n", grown != (void *)-1 && sbrk(-room) != (void *)-1);
    grown = sbrk((intptr_t)o.brk_room + (64 << 20));
    printf("sbrk_past %d\n", grown != (void *)-1);
    if (grown != (void *)-1) sbrk(-((intptr_t)o.brk_room + (64 << 20)));
    /* The block map shows the hole as a run of its own. */
    struct { uintptr_t lo; size_t size; } seen = {0, 0};
    vmc_walk(v, walk_hole, &seen);
    printf("walk_hole %#lx %zu\n", (unsigned long)seen.lo, seen.size);
    /* One allocation of half the region lands on one side of the hole. */
    vmc_span_t big;
    if (vmc_alloc(v, in.code_size / 2 - (in.brk_hole_size + (64u << 20)), VMC_CODE, &big)) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    printf("big %#lx %zu\n", (unsigned long)(uintptr_t)big.x, big.size);
    vmc_free(v, big.x);

    /* sub rsp, 8; call answer; add rsp, 8; ret */
    vmc_span_t s;
    if (vmc_alloc_reaching(v, 64, VMC_CODE, in.reach_lo, in.reach_hi, &s)) {
        printf("error %s\n", vmc_last_error());
        return 1;
    }
    printf("alloc %#lx\n", (unsigned long)(uintptr_t)s.x);
    unsigned char code[] = {0x48, 0x83, 0xec, 0x08, 0xe8, 0, 0, 0, 0, 0x48, 0x83, 0xc4, 0x08, 0xc3};
    int64_t d = (int64_t)((uintptr_t)&answer - ((uintptr_t)s.x + 9));
    if (d < INT32_MIN || d > INT32_MAX) {
        printf("error the allocation does not reach the program (%lld)\n", (long long)d);
        return 1;
    }
    int32_t rel = (int32_t)d;
    memcpy(code + 5, &rel, 4);
    memcpy(s.w, code, sizeof code);
    int (*fn)(void) = (int (*)(void))s.x;
    printf("call %d\n", fn());
    vmc_close(v);
    printf("faults_hit %lu\n", vmc__os_faults_hit());
    printf("leftover %d\n", low_reservations());
    return 0;
}
