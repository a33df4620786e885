/* bench_formats.c: quantize (floor rule) and dequantize throughput of every
 * format, reference path and best ISA, as a ratio to memcpy of the same
 * float32 bytes measured in the same run (higher is faster; 1.0 = memcpy
 * speed), for an L2-sized buffer (256 KiB of floats) and a DRAM-sized one
 * (64 MiB of floats; the _bf16 variants run the same kernels as their FP16
 * rows and are skipped there to keep the run short). One thread.
 * memcpy is re-measured before each format's row. Timings on a shared
 * machine are noisy: read the ratios, not the times. */
#include "bench_util.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_buf { float *x, *y; uint8_t *p; int64_t n; } bench_buf;

typedef struct job { const lb_format *f; bench_buf *b; int64_t cols; float ts; } job;
static void run_memcpy(void *c) { bench_buf *b = ((job *)c)->b; memcpy(b->y, b->x, (size_t)b->n * 4); }
static void run_quant(void *c)
{
    job *j = c;
    lb_format_quantize(j->f, NULL, j->b->x, j->b->n / j->cols, j->cols, j->b->p, &j->ts);
}
static void run_dequant(void *c)
{
    job *j = c;
    lb_format_dequantize(j->f, j->b->p, j->ts, j->b->n / j->cols, j->cols, j->b->y);
}

/* Repetitions so that one measurement takes ~40 ms (at most 50). */
static int reps_for(double one) { int r = (int)(0.04 / (one > 1e-7 ? one : 1e-7)); return r < 1 ? 1 : r > 50 ? 50 : r; }

static double ratio(job *j, void (*fn)(void *), double t_memcpy, lb_isa isa)
{
    lb_isa_set(isa);
    double one = best_time(1, fn, j);                 /* also the warm-up */
    int reps = reps_for(one);
    double t = one > 0.3 ? one : best_time(reps < 3 ? 3 : reps, fn, j);
    t = t < one ? t : one;
    return t_memcpy / t;
}

static void bench_size(const char *label, int64_t n, bool skip_dups)
{
    bench_buf b = {malloc((size_t)n * 4), malloc((size_t)n * 4), malloc((size_t)n * 2), n};
    if (!b.x || !b.y || !b.p) { fprintf(stderr, "bench_formats: out of memory\n"); exit(1); }
    lb_rng r;
    lb_rng_seed(&r, 42);
    for (int64_t i = 0; i < n; i++) b.x[i] = (float)lb_rng_normal(&r) * 0.02f;
    memset(b.y, 0, (size_t)n * 4);
    memset(b.p, 0, (size_t)n * 2);
    job mj = {NULL, &b, 0, 1};
    double tm = best_time(20, run_memcpy, &mj);
    lb_isa best = lb_isa_best();
    printf("\n%s: %lld floats (%.0f KiB); memcpy %.2f GB/s; ratios = memcpy time / op time; best ISA = %s\n\n", label,
           (long long)n, n * 4 / 1024.0, 2.0 * n * 4 / tm / 1e9, lb_isa_name(best));
    printf("| format | bits/w | quant ref | quant %s | dequant ref | dequant %s |\n|---|---:|---:|---:|---:|---:|\n",
           lb_isa_name(best), lb_isa_name(best));
    for (int i = 0; i < lb_format_count(); i++) {
        const lb_format *f = lb_format_at(i);
        if (skip_dups && strstr(lb_format_name(f), "_bf16")) continue;
        job j = {f, &b, 4096, 1};
        tm = best_time(n > (1 << 20) ? 3 : 20, run_memcpy, &mj);   /* re-measured per row: the machine is shared */
        double qr = ratio(&j, run_quant, tm, LB_ISA_REF), qb = ratio(&j, run_quant, tm, best);
        double dr = ratio(&j, run_dequant, tm, LB_ISA_REF), db = ratio(&j, run_dequant, tm, best);
        printf("| %s | %.4g | %.3f | %.3f | %.3f | %.3f |\n", lb_format_name(f), lb_format_bits_per_weight(f), qr, qb,
               dr, db);
        fflush(stdout);
    }
    lb_isa_set(best);
    free(b.x); free(b.y); free(b.p);
}

int main(void)
{
    double t0 = lb_time_now();
    printf("bench_formats: quantize (floor rule) / dequantize throughput relative to memcpy, rows of 4096, 1 thread\n");
    bench_size("L2-sized", 256 * 1024 / 4, false);
    bench_size("DRAM-sized", (int64_t)64 * 1024 * 1024 / 4, true);
    printf("\ntotal %.1f s\n", lb_time_now() - t0);
    return 0;
}
