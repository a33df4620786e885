/* bench_calib.c: the calibration statistics' accumulation H += X^T X (src/calib)
 * for the 110M shape's widest site (down_proj's input, n = 2048) and its
 * 768-wide sites, over one sequence of 128 tokens, upper triangle as the
 * runner does it: the AVX2 path as a ratio to the reference loop measured in
 * the same run (> 1: faster), plus multiply-adds per ns of this thread's CPU
 * time (best of several runs), for several token-chunk sizes. One thread; the
 * machine may be shared: read the ratios. */
#include "calib/calib.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* CPU time of this thread: the machine is shared, wall time would count the others' slices. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double run(lb__calib_acc_fn fn, double *M, const double *x, int64_t n, int64_t T, int64_t C, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = cpu_now();
        for (int64_t t0k = 0; t0k < T; t0k += C)
            for (int64_t i0 = 0; i0 < n; i0 += 4)
                fn(M, x + t0k * n, x + t0k * n, n, T - t0k < C ? T - t0k : C, i0, n - i0 < 4 ? n - i0 : 4, i0);
        double t = cpu_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

int main(void)
{
    const int64_t widths[] = {768, 2048}, T = 128;
    printf("isa %s; H += X^T X (upper triangle), T = %lld tokens, one thread; ratio = reference time / AVX2 time\n",
           lb_isa_name(lb_isa_best()), (long long)T);
    if (lb_isa_best() < LB_ISA_AVX2) { printf("no AVX2 on this CPU: nothing to compare\n"); return 0; }
    for (int k = 0; k < 2; k++) {
        int64_t n = widths[k];
        double *x = malloc(sizeof(double) * (size_t)(T * n)), *M = calloc((size_t)(n * n), sizeof(double));
        lb_rng r;
        lb_rng_seed(&r, 1);
        for (int64_t i = 0; i < T * n; i++) x[i] = (float)lb_rng_normal(&r);
        double macs = (double)T * (double)n * (double)(n + 1) / 2;
        double tr = run(lb__calib_acc_rows_ref, M, x, n, T, 32, 2);
        for (int64_t C = 8; C <= 128; C *= 2) {
            double ta = run(lb__calib_acc_rows_avx2, M, x, n, T, C, 5);
            printf("n %5lld: reference %.3f ms (%.2f MAC/ns), avx2 with %3lld-token chunks %.3f ms (%.2f MAC/ns), "
                   "ratio %.2f%s\n", (long long)n, tr * 1e3, macs / tr * 1e-9, (long long)C, ta * 1e3,
                   macs / ta * 1e-9, tr / ta, C == LB__CALIB_ACC_TOKENS ? " (the runner's chunk)" : "");
        }
        free(x); free(M);
    }
    return 0;
}
