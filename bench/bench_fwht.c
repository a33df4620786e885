/* bench_fwht.c: throughput of the block-diagonal FWHT (lb_hadamard_rows, no
 * signs) for block sizes 32..4096 on a large buffer (64 MiB, memory bound)
 * and an L2-sized one (1 MiB), reference path and best ISA path, each as a
 * ratio to memcpy of the same bytes timed in the same run (ratio > 1: the
 * transform is faster than copying the buffer). Single thread; best of
 * several repetitions. Timings on a shared machine are noisy: read ratios. */
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct job { float *x, *y; int64_t n, block; } job;

static void run_copy(void *c) { job *j = c; memcpy(j->y, j->x, sizeof(float) * j->n); }

static void run_fwht(void *c)
{
    job *j = c;
    if (lb_hadamard_rows(j->x, j->n / j->block, j->block, j->block, NULL, 0) != LB_OK) {
        fprintf(stderr, "bench_fwht: %s\n", lb_errmsg());
        exit(1);
    }
}

int main(void)
{
    static const int64_t blocks[] = {32, 64, 128, 256, 512, 1024, 2048, 4096, 768, 14336};
    static const int64_t sizes[] = {64 << 20, 1 << 20};
    lb_isa best = lb_isa_best();
    printf("FWHT throughput, single thread, best of N; ratio = memcpy time / transform time (same bytes)\n");
    printf("best ISA: %s\n\n", lb_isa_name(best));
    printf("| block | buffer | memcpy GB/s | ref GB/s | ref/memcpy | %s GB/s | %s/memcpy |\n", lb_isa_name(best), lb_isa_name(best));
    printf("|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int s = 0; s < 2; s++) {
        int64_t bytes = sizes[s];
        int reps = s == 0 ? 5 : 200;
        for (int b = 0; b < (int)(sizeof blocks / sizeof *blocks); b++) {
            int64_t n = bytes / 4 / blocks[b] * blocks[b];
            job j = {malloc(sizeof(float) * n), malloc(sizeof(float) * n), n, blocks[b]};
            if (!j.x || !j.y) { fprintf(stderr, "bench_fwht: out of memory\n"); return 1; }
            lb_rng r;
            lb_rng_seed(&r, 1);
            for (int64_t i = 0; i < n; i++) j.x[i] = (float)lb_rng_normal(&r), j.y[i] = 0;
            double tc = best_time(reps, run_copy, &j);
            lb_isa_set(LB_ISA_REF);
            double tr = best_time(s == 0 ? 3 : reps / 4, run_fwht, &j);
            lb_isa_set(best);
            double tb = best_time(reps, run_fwht, &j);
            double gb = (double)n * 4 / 1e9;
            printf("| %lld | %lld MiB | %.1f | %.2f | %.3f | %.2f | %.3f |\n", (long long)blocks[b], (long long)(bytes >> 20),
                   gb / tc, gb / tr, tc / tr, gb / tb, tc / tb);
            fflush(stdout);
            free(j.x);
            free(j.y);
        }
    }
    return 0;
}
