/* Windows: the region and block layers on the OS layer's verbs: the 2 GiB
 * code region next to the main module, commit and give-back at the 64 KiB
 * granularity, a full region is -ENOSPC, and failures of each Windows call
 * leave nothing behind.  VirtualQuery checks what the process really holds. */
#include "test.h"
#include "os/os.h"
#include "region/region.h"
#include "alloc/blocks.h"
#include "arch/arch.h"

#include <windows.h>

#define G ((size_t)64 << 10)

static int free_regions(uintptr_t base, size_t len, int *regions)
{
    int n = 0, fr = 0;
    for (uintptr_t a = base; a < base + len;) {
        MEMORY_BASIC_INFORMATION m;
        if (!VirtualQuery((void *)a, &m, sizeof m)) break;
        n++;
        if (m.State == MEM_FREE) fr++;
        a = (uintptr_t)m.BaseAddress + m.RegionSize;
    }
    if (regions) *regions = n;
    return fr;
}

static void options(vmc_options_t *o, const char *text)
{
    vmc_options_init(o);
    if (text) ASSERT_OK(vmc_options_parse(o, text));
}

TEST(win_region_2g_next_to_the_main_module)
{
    vmc_options_t o;
    options(&o, NULL);
    vmc_region_t r;
    vmc_place_t pl;
    ASSERT_OK(vmc__region_open_code(&r, &o, &pl));
    ASSERT_EQ(r.size, (size_t)2 << 30);
    ASSERT_EQ(pl.step, VMC_PLACED_NEAR_APP);
    uintptr_t lo, hi;
    ASSERT_OK(vmc__main_image(&lo, &hi));
    ASSERT_EQ(lo, (uintptr_t)GetModuleHandleA(NULL));
    ASSERT_EQ(pl.reach_lo, lo);
    ASSERT_GE(pl.reaching, r.size / 10 * 9);
    ASSERT_EQ(pl.reaching, vmc__reach_bytes(r.base, r.size, lo, hi));
    ASSERT_EQ(r.base % G, 0);
    int n;
    ASSERT_EQ(free_regions(r.base, r.size, &n), 0);
    /* One placeholder, or in the fallback one reservation per slot. */
    size_t slot = vmc__os_slot_size();
    ASSERT_EQ(n, slot ? (int)((r.size + slot - 1) / slot) : 1);
    uintptr_t base = r.base;
    size_t size = r.size;
    vmc__region_close(&r);
    ASSERT_EQ(free_regions(base, size, &n), n);
}

/* The fallback under a system that has placeholders too. */
TEST(win_region_2g_in_slots)
{
    vmc__os_force_slots(0);
    vmc_options_t o;
    options(&o, NULL);
    vmc_region_t r;
    vmc_place_t pl;
    ASSERT_OK(vmc__region_open_code(&r, &o, &pl));
    ASSERT_EQ(r.size, (size_t)2 << 30);
    ASSERT_EQ(pl.step, VMC_PLACED_NEAR_APP);
    int n;
    ASSERT_EQ(free_regions(r.base, r.size, &n), 0);
    ASSERT_EQ(n, (int)((r.size + (640 << 10) - 1) / (640 << 10)));
    vmc__region_close(&r);
}

/* W^X works where the OS layer can make pairs (placeholders) and is refused
 * by name where it cannot (the slot fallback; tests/windows/test_wx.c). */
TEST(win_region_w_xor_x_where_pairs_exist)
{
    vmc_options_t o;
    options(&o, "-w_xor_x -vm_size 64M");
    vmc_region_t r;
    vmc_place_t pl;
    int e = vmc__region_open_code(&r, &o, &pl);
    if (!(vmc__os_caps() & VMC_OS_CAP_DUAL)) {
        ASSERT_EQ(e, -ENOTSUP);
        ASSERT_STR_CONTAINS(vmc_last_error(), "W^X needs placeholders");
        return;
    }
    ASSERT_OK(e);
    ASSERT(r.wx);
    ASSERT(r.wbase != r.base);
    ASSERT_EQ(free_regions(r.wbase, r.size, NULL), 0);
    uintptr_t w = r.wbase;
    vmc__region_close(&r);
    ASSERT_EQ(free_regions(w, (size_t)64 << 20, NULL), 1);   /* the writable view went too */
}

TEST(win_blocks_take_commit_give_full)
{
    vmc_options_t o;
    options(&o, "-vm_size 64M");
    vmc_region_t r;
    vmc_place_t pl;
    ASSERT_OK(vmc__region_open_code(&r, &o, &pl));
    vmc_blocks_t *b;
    ASSERT_OK(vmc__blocks_init(&b, &r));
    uintptr_t runs[64];
    int n = 0;
    /* 1 MiB runs until the region is full. */
    for (;;) {
        uintptr_t at;
        int e = vmc__blocks_take(b, 1 << 20, 0, 0, 0, 0, VMC_OWNER_CODE, NULL, &at);
        if (e) {
            ASSERT_EQ(e, -ENOSPC);
            ASSERT_STR_CONTAINS(vmc_last_error(), "largest free");
            break;
        }
        ASSERT_EQ(at % G, 0);
        ASSERT_LT(n, 64);
        runs[n++] = at;
    }
    ASSERT_EQ(n, 64);
    /* Commit a few, as code: write and call. */
    ASSERT_OK(vmc__blocks_commit(b, runs[3], 2 * G, VMC_CODE));
    static const unsigned char ret7[] = {0xb8, 7, 0, 0, 0, 0xc3};
    memcpy((void *)runs[3], ret7, sizeof ret7);
    ASSERT_EQ(((int (*)(void))runs[3])(), 7);
    ASSERT_OK(vmc__blocks_commit(b, runs[3], 1 << 20, VMC_CODE));   /* grows from the start */
    ASSERT_OK(vmc__blocks_commit(b, runs[9], G, VMC_DATA));
    ASSERT_EQ(free_regions(r.base, r.size, NULL), 0);
    /* Give back: reserved again, never free; and taken again, zeroed. */
    ASSERT_OK(vmc__blocks_give(b, runs[3]));
    ASSERT_OK(vmc__blocks_give(b, runs[9]));
    ASSERT_EQ(free_regions(r.base, r.size, NULL), 0);
    uintptr_t again;
    ASSERT_OK(vmc__blocks_take(b, 1 << 20, 0, 0, 0, 0, VMC_OWNER_CODE, NULL, &again));
    ASSERT_OK(vmc__blocks_commit(b, again, G, VMC_CODE));
    ASSERT_EQ(((unsigned char *)again)[0], 0);
    vmc__blocks_fini(b);
    vmc__region_close(&r);
}

/* Every Windows call the region and block layers make, failed in turn. */
TEST(win_region_faults_leave_nothing)
{
    static const enum vmc_os_call kinds[] = {VMC_OS_VIRTUALALLOC, VMC_OS_VIRTUALFREE};
    int hits = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (unsigned long nth = 1; nth <= 8; nth++) {
            vmc_options_t o;
            options(&o, "-vm_size 64M");
            vmc_region_t r;
            vmc_place_t pl;
            vmc__os_fault(kinds[k], nth, ENOMEM, 0);
            int e = vmc__region_open_code(&r, &o, &pl);
            vmc_blocks_t *b = NULL;
            uintptr_t at = 0;
            if (!e) e = vmc__blocks_init(&b, &r);
            if (!e) e = vmc__blocks_take(b, 1 << 20, 0, 0, 0, 0, VMC_OWNER_CODE, NULL, &at);
            if (!e) e = vmc__blocks_commit(b, at, 2 * G, VMC_CODE);
            if (!e) e = vmc__blocks_give(b, at);
            hits += (int)vmc__os_faults_hit();
            vmc__os_fault_clear();
            ASSERT_MSG(!e || e == -ENOMEM, "%s #%lu: %d (%s)", vmc__os_call_name(kinds[k]), nth, e,
                       vmc_last_error());
            if (e) ASSERT_MSG(vmc_last_error()[0], "%s #%lu: no message", vmc__os_call_name(kinds[k]), nth);
            if (r.size) ASSERT_EQ(free_regions(r.base, r.size, NULL), 0);
            if (b) vmc__blocks_fini(b);
            if (r.size) vmc__region_close(&r);
        }
    ASSERT_GT(hits, 0);
}

/* Options are parsed in pages, Windows reserves in 64 KiB granules: a size
 * that is no multiple of one is refused at open, saying so. */
TEST(win_region_size_below_the_granularity)
{
    const char *opts[] = {"-vm_size 4K", "-vm_size 100K", "-vm_size 64M -vmheap_size 100K"};
    const char *want[] = {
        "code region: cannot reserve 4K: the size must be a multiple of the 64K allocation granularity "
        "(Windows reserves address space in 64 KiB units)",
        "code region: cannot reserve 100K: the size must be a multiple of the 64K allocation granularity "
        "(Windows reserves address space in 64 KiB units)",
        "heap region: cannot reserve 100K: the size must be a multiple of the 64K allocation granularity "
        "(Windows reserves address space in 64 KiB units)"};
    for (int i = 0; i < 3; i++) {
        vmc_options_t o;
        vmc_options_init(&o);
        ASSERT_OK(vmc_options_parse(&o, opts[i]));
        vmc_t *v = NULL;
        ASSERT_EQ(vmc_open(&o, &v), -EINVAL);
        ASSERT(v == NULL);
        ASSERT_STR_CONTAINS(vmc_last_error(), want[i]);
    }
}
