/* The block layer's run search at 1 %, 50 %, 90 % and 99 % fill of a 2 GiB
 * region, against a linear first-fit scan of the same bitmap as the peer.
 *
 * The region is filled with runs of 1..64 blocks (random, fixed seed), every
 * other one given back so the free space is fragmented; then each sample
 * takes a run of 1..64 blocks (a quarter of them inside a random 256 MiB
 * reach window), timed alone, and gives it back untimed.  Giving back
 * re-reserves with mmap, which is the kernel's cost, not the search's.
 * The linear peer searches a byte-per-block copy of the same occupancy.
 */
#include "bench.h"
#include "alloc/blocks.h"
#include "os/os.h"

#include <sys/mman.h>

#define REGION   ((size_t)2 << 30)
#define PAGE     4096
#define SAMPLES  20000

static size_t linear_first_fit(const unsigned char *used, size_t n, size_t lo, size_t hi, size_t k)
{
    size_t run = 0;
    for (size_t i = lo; i < hi && i < n; i++) {
        run = used[i] ? 0 : run + 1;
        if (run == k) return i + 1 - k;
    }
    return (size_t)-1;
}

int main(void)
{
    int quick = bench_quick();
    size_t samples = quick ? 2000 : SAMPLES;
    static const double fills[] = {0.01, 0.50, 0.90, 0.99};
    double p99[4], med[4], lp99[4], lmed[4];
    bench_rng_t rng = {0x5eed1234abcdull};
    printf("## Block layer: run search vs fill (issue 3)\n\n");
    printf("A 2 GiB region of 4 KiB blocks, filled with runs of 1..64 blocks (every other run "
           "given back, so free space is fragmented), then %zu takes of 1..64 blocks, a quarter "
           "of them inside a random 256 MiB reach window; each take timed alone "
           "(`clock_gettime`, about 20 ns of its own). Peer: a linear first-fit scan of the same "
           "occupancy (one byte per block), same requests.\n\n", samples);
    printf("| fill | take median ns | take p99 ns | linear scan median ns | linear scan p99 ns |\n");
    printf("|---:|---:|---:|---:|---:|\n");
    for (int f = 0; f < 4; f++) {
        vmc_region_t r;
        memset(&r, 0, sizeof r);
        r.name = "code";
        uintptr_t base;
        if (vmc__os_reserve(0, REGION, &base)) return 1;
        r.base = r.wbase = base;
        r.size = REGION;
        vmc__os_hold(base, base + REGION);
        vmc_blocks_t *b;
        if (vmc__blocks_init(&b, &r)) return 1;
        size_t nblocks = REGION / PAGE;
        unsigned char *used = calloc(nblocks, 1);
        size_t want = (size_t)(fills[f] * (double)nblocks), have = 0;
        int keep = 0;
        while (have < want) {
            size_t k = 1 + bench_rand(&rng) % 64;
            uintptr_t a;
            if (vmc__blocks_take(b, k * PAGE, 0, 0, 0, 0, VMC_OWNER_LARGE, NULL, &a)) break;
            if ((keep ^= 1)) {
                memset(used + (a - base) / PAGE, 1, k);
                have += k;
            } else {
                vmc__blocks_give(b, a);
            }
        }
        double *t = malloc(samples * sizeof *t), *l = malloc(samples * sizeof *l);
        size_t n = 0;
        for (size_t i = 0; i < samples; i++) {
            size_t k = 1 + bench_rand(&rng) % 64;
            uintptr_t lo = 0, hi = 0;
            if (i % 4 == 0) {
                lo = base + (bench_rand(&rng) % (REGION - ((size_t)256 << 20))) / PAGE * PAGE;
                hi = lo + ((size_t)256 << 20);
            }
            uintptr_t a;
            uint64_t t0 = bench_now_ns();
            int e = vmc__blocks_take(b, k * PAGE, 0, lo, hi, 0, VMC_OWNER_LARGE, NULL, &a);
            uint64_t t1 = bench_now_ns();
            size_t s = linear_first_fit(used, nblocks, lo ? (lo - base) / PAGE : 0,
                                        hi ? (hi - base) / PAGE : nblocks, k);
            uint64_t t2 = bench_now_ns();
            if (e) continue;
            if (s != (a - base) / PAGE) {
                fprintf(stderr, "bench_blocks: the two searches disagree (%zu vs %zu)\n", s,
                        (size_t)((a - base) / PAGE));
                return 1;
            }
            t[n] = (double)(t1 - t0);
            l[n] = (double)(t2 - t1);
            n++;
            vmc__blocks_give(b, a);
        }
        med[f] = bench_median(t, n);
        p99[f] = bench_percentile(t, n, 99);
        lmed[f] = bench_median(l, n);
        lp99[f] = bench_percentile(l, n, 99);
        printf("| %.0f %% | %.0f | %.0f | %.0f | %.0f |\n", fills[f] * 100, med[f], p99[f], lmed[f],
               lp99[f]);
        free(t);
        free(l);
        free(used);
        vmc__blocks_fini(b);
        vmc__os_unhold(base, base + REGION);
        munmap((void *)base, REGION);
    }
    printf("\np99 at 90 %% fill ÷ p99 at 1 %% fill: %.2f (linear scan: %.2f); at 99 %%: %.2f "
           "(linear scan: %.2f).\n\n",
           p99[2] / p99[0], lp99[2] / lp99[0], p99[3] / p99[0], lp99[3] / lp99[0]);
    return 0;
}
