/* bench_util.h: timing helpers shared by the benchmarks under bench/. */
#ifndef LB_BENCH_UTIL_H
#define LB_BENCH_UTIL_H
#include "lowbit.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Fastest of `reps` runs of fn(ctx), in seconds (wall clock). */
static inline double best_time(int reps, void (*fn)(void *), void *ctx)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = lb_time_now();
        fn(ctx);
        double t = lb_time_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

/* Resident memory of this process, bytes (Linux /proc/self/statm). */
static inline double bench_rss(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE);
}

typedef struct bench_rd { const float *x; size_t n; volatile float sink; } bench_rd;

static inline void bench_read_all(void *ctx)
{
    bench_rd *r = ctx;
    float s[16] = {0};
    for (size_t i = 0; i < r->n; i += 16)
        for (int k = 0; k < 16; k++) s[k] += r->x[i + k];
    r->sink = s[0] + s[15];
}

/* Streaming read bandwidth of one thread over 256 MiB, bytes per second
 * (best of 3): the bound a decode that reads its data once can reach. */
static inline double bench_read_bw(void)
{
    size_t n = (size_t)1 << 26;
    float *x = malloc(sizeof(float) * n);
    if (!x) return 0;
    for (size_t i = 0; i < n; i++) x[i] = 1;
    bench_rd r = {x, n, 0};
    double bw = (double)(sizeof(float) * n) / best_time(3, bench_read_all, &r);
    free(x);
    return bw;
}

/* The FP32 FMA ceiling's inner loop (AVX2): 12 independent accumulators,
 * 8 multiply-adds each per step; returns a sum that keeps the loop live. */
#define BENCH_N_ACC 12
__attribute__((target("avx2,fma"))) static inline double bench_fma_loop_avx2(int64_t iters)
{
    __m256 a[BENCH_N_ACC], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < BENCH_N_ACC; i++) a[i] = _mm256_set1_ps((float)i);
    for (int64_t k = 0; k < iters; k++)
#pragma GCC unroll 16
        for (int i = 0; i < BENCH_N_ACC; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    float t[8], s = 0;
    for (int i = 0; i < BENCH_N_ACC; i++) {
        _mm256_storeu_ps(t, a[i]);
        for (int j = 0; j < 8; j++) s += t[j];
    }
    return s;
}
#endif
