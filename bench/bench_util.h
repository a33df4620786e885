/* bench_util.h: timing helpers shared by the benchmarks under bench/. */
#ifndef LB_BENCH_UTIL_H
#define LB_BENCH_UTIL_H
#include "lowbit.h"

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
#endif
