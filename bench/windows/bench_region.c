/* Windows (under Wine): what the region costs against the system's own calls
 * (make bench-windows; bench/run-windows.sh runs it and writes BENCHMARKS.md).
 *
 *   open+close   vmc_open + vmc_close of a 2 GiB code region (no heap region)
 *                against one bare 2 GiB reservation: a VirtualAlloc2
 *                placeholder with placeholders, a plain VirtualAlloc
 *                reservation without (the slot fallback, Wine 8), released
 *                at once;
 *   code         vmc_alloc(VMC_CODE) + write + vmc_free of 64 B-4 KiB
 *                against VirtualAlloc(PAGE_EXECUTE_READWRITE) + write +
 *                VirtualFree per allocation (the naive way);
 *   slots        with placeholders, the fallback forced: open+close at each
 *                slot size, for what the fallback costs on the same Wine.
 *
 * Medians over rounds, the variants interleaved in every round, ratios
 * taken per round; printed as markdown.  Cross-built (make bench-windows)
 * and run by scripts/wine-chroot.sh under Wine 10 and the host's Wine 8.
 */
#include "vmcode.h"
#include "../bench.h"
#include "os/os.h"

#include <windows.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* A time in µs as the table shows it: µs below 10 ms, else ms. */
static const char *fmt_us(double us, char *buf, size_t len)
{
    if (us < 1e4) snprintf(buf, len, "%.*f µs", us < 10 ? 3 : 1, us);
    else snprintf(buf, len, "%.1f ms", us / 1e3);
    return buf;
}

static const char *fmt_ratio(double r, char *buf, size_t len)
{
    if (r < 100) snprintf(buf, len, "%.1f", r);
    else snprintf(buf, len, "%.0f", r);
    return buf;
}

typedef PVOID(WINAPI *va2_t)(HANDLE, PVOID, SIZE_T, ULONG, ULONG, void *, ULONG);

#define SIZE_2G ((size_t)2 << 30)

static vmc_t *open_2g(void)
{
    vmc_options_t o;
    vmc_options_init(&o);
    if (vmc_options_parse(&o, "-vm_size 2G -vmheap_size 0")) exit(1);
    vmc_t *v;
    if (vmc_open(&o, &v)) {
        fprintf(stderr, "vmc_open: %s\n", vmc_last_error());
        exit(1);
    }
    return v;
}

/* One bare reservation of 2 GiB, released again. */
static double bare_reserve(va2_t va2)
{
    double t0 = bench_now_us();
    void *p = va2 ? va2(NULL, NULL, SIZE_2G, MEM_RESERVE | 0x00040000 /* MEM_RESERVE_PLACEHOLDER */,
                        PAGE_NOACCESS, NULL, 0)
                  : VirtualAlloc(NULL, SIZE_2G, MEM_RESERVE, PAGE_NOACCESS);
    if (!p) {
        fprintf(stderr, "bare reservation failed: %lu\n", GetLastError());
        exit(1);
    }
    VirtualFree(p, 0, MEM_RELEASE);
    return bench_now_us() - t0;
}

static double vmc_open_close(void)
{
    double t0 = bench_now_us();
    vmc_t *v = open_2g();
    vmc_close(v);
    return bench_now_us() - t0;
}

static void bench_open(int placeholders, va2_t va2)
{
    enum { ROUNDS = 21 };
    double a[ROUNDS], b[ROUNDS], r[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        if (i % 2) {
            a[i] = vmc_open_close();
            b[i] = bare_reserve(placeholders ? va2 : NULL);
        } else {
            b[i] = bare_reserve(placeholders ? va2 : NULL);
            a[i] = vmc_open_close();
        }
        r[i] = a[i] / b[i];
    }
    vmc_t *v = open_2g();
    vmc_info_t in;
    vmc_info(v, &in);
    vmc_close(v);
    char t[32];
    char mode[64];
    if (in.slot_size) snprintf(mode, sizeof mode, "slot fallback, %zu KiB slots", in.slot_size >> 10);
    else snprintf(mode, sizeof mode, "placeholders");
    printf("| `vmc_open` + `vmc_close`, 2 GiB code region, no heap region (%s) | %s |\n", mode,
           fmt_us(bench_median(a, (size_t)ROUNDS), t, sizeof t));
    printf("| one bare 2 GiB reservation + release (%s) | %s |\n",
           placeholders ? "`VirtualAlloc2` placeholder" : "`VirtualAlloc` `MEM_RESERVE`",
           fmt_us(bench_median(b, (size_t)ROUNDS), t, sizeof t));
    printf("| vmcode's time ÷ the bare reservation's (median of %d per-round ratios) | %s |\n", ROUNDS,
           fmt_ratio(bench_median(r, (size_t)ROUNDS), t, sizeof t));
}

/* ---- code allocation ------------------------------------------------------------ */

static const unsigned char ret42[16] = {0xb8, 42, 0, 0, 0, 0xc3};

static void bench_code(void)
{
    enum { ROUNDS = 11, N = 2000 };
    static size_t sizes[N];
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        sizes[i] = 64 + s % (4096 - 64);
    }
    vmc_options_t o;
    vmc_options_init(&o);
    vmc_options_parse(&o, "-vm_size 256M -vmheap_size 0");
    vmc_t *v;
    if (vmc_open(&o, &v)) exit(1);
    double a[ROUNDS], b[ROUNDS], r[ROUNDS];
    volatile int sink = 0;
    for (int k = 0; k < ROUNDS; k++) {
        double t0 = bench_now_us();
        for (int i = 0; i < N; i++) {
            vmc_span_t sp;
            if (vmc_alloc(v, sizes[i], VMC_CODE, &sp)) exit(1);
            memcpy(sp.w, ret42, sizeof ret42);
            sink += ((int (*)(void))sp.x)();
            vmc_free(v, sp.x);
        }
        a[k] = (bench_now_us() - t0) / N;
        t0 = bench_now_us();
        for (int i = 0; i < N; i++) {
            void *p = VirtualAlloc(NULL, sizes[i], MEM_RESERVE | MEM_COMMIT, PAGE_EXECUTE_READWRITE);
            if (!p) exit(1);
            memcpy(p, ret42, sizeof ret42);
            sink += ((int (*)(void))p)();
            VirtualFree(p, 0, MEM_RELEASE);
        }
        b[k] = (bench_now_us() - t0) / N;
        r[k] = b[k] / a[k];
    }
    vmc_close(v);
    char t[32];
    printf("| `vmc_alloc(VMC_CODE)` + write + call + `vmc_free`, 64 B–4 KiB, per allocation | %s |\n",
           fmt_us(bench_median(a, (size_t)ROUNDS), t, sizeof t));
    printf("| `VirtualAlloc(PAGE_EXECUTE_READWRITE)` + write + call + `VirtualFree`, per allocation | %s |\n",
           fmt_us(bench_median(b, (size_t)ROUNDS), t, sizeof t));
    printf("| VirtualAlloc's time ÷ vmcode's (median of %d per-round ratios of %d allocations each) | %s |\n",
           ROUNDS, N, fmt_ratio(bench_median(r, (size_t)ROUNDS), t, sizeof t));
    (void)sink;
}

int main(int argc, char **argv)
{
    const char *wine = argc > 1 ? argv[1] : "Wine";
    HMODULE kb = GetModuleHandleA("kernelbase.dll");
    va2_t va2 = kb ? (va2_t)(void (*)(void))GetProcAddress(kb, "VirtualAlloc2") : NULL;
    int placeholders = !(vmc__os_caps() & VMC_OS_CAP_SLOTS);
    printf("### %s (%s)\n\n", wine, placeholders ? "placeholders" : "no placeholders: the slot fallback");
    printf("| what | median |\n|---|---:|\n");
    bench_open(placeholders, va2);
    bench_code();
    if (placeholders) {
        /* The fallback on the same Wine: forced, per slot size (reservations
         * made from now on use it). */
        static const size_t slots[] = {(size_t)2 << 20, (size_t)640 << 10};
        for (size_t k = 0; k < sizeof slots / sizeof *slots; k++) {
            vmc__os_force_slots(slots[k]);
            enum { ROUNDS = 5 };
            double a[ROUNDS];
            for (int i = 0; i < ROUNDS; i++) a[i] = vmc_open_close();
            char t[32];
            printf("| `vmc_open` + `vmc_close`, 2 GiB, slot fallback forced, %zu KiB slots (%zu reservations) | "
                   "%s |\n", slots[k] >> 10, (SIZE_2G + slots[k] - 1) / slots[k],
                   fmt_us(bench_median(a, (size_t)ROUNDS), t, sizeof t));
        }
    }
    printf("\n");
    return 0;
}
