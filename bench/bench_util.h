/* bench_util.h: timing helpers shared by the benchmarks under bench/. */
#ifndef LB_BENCH_UTIL_H
#define LB_BENCH_UTIL_H
#include "lowbit.h"
#include <immintrin.h>

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
