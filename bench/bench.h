/* Helpers shared by the benchmark programs (header only).
 *
 * Each program prints markdown sections (starting at "## ") on stdout; the
 * runner (bench/run.sh) concatenates them into BENCHMARKS.md.  Diagnostics go
 * to stderr.  The machine is noisy and small, so programs measure in rounds,
 * interleave the variants inside each round, and report medians over rounds
 * plus ratios against a peer measured in the same run.
 *
 * BENCH_QUICK=1 in the environment shrinks every program's work (for smoke
 * runs; numbers from such a run are not for BENCHMARKS.md).
 */
#ifndef VMC_BENCH_H
#define VMC_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#ifdef _WIN32
#include <windows.h>
/* Microseconds from the performance counter (the Windows benchmarks). */
static inline double bench_now_us(void)
{
    static LARGE_INTEGER f;
    LARGE_INTEGER t;
    if (!f.QuadPart) QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart * 1e6 / (double)f.QuadPart;
}
#endif

static inline int bench_quick(void)
{
    const char *q = getenv("BENCH_QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v in place; p in [0, 100]; nearest-rank percentile. */
static inline double bench_percentile(double *v, size_t n, double p)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    size_t k = (size_t)(p / 100.0 * (double)n + 0.5);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

static inline double bench_median(double *v, size_t n)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* xorshift64*: fixed seeds give the same sequence on every run. */
typedef struct { uint64_t s; } bench_rng_t;

static inline uint64_t bench_rand(bench_rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A number of the form "1,234,567" in buf. */
static inline const char *bench_grouped(double v, char *buf, size_t len)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.0f", v);
    size_t n = strlen(tmp), o = 0;
    for (size_t i = 0; i < n && o + 2 < len; i++) {
        buf[o++] = tmp[i];
        size_t left = n - i - 1;
        if (left && left % 3 == 0 && tmp[i] != '-') buf[o++] = ',';
    }
    buf[o] = 0;
    return buf;
}

#endif
