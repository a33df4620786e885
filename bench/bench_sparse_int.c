/* bench_sparse_int.c: the sparse integer kernel (kernels/sparse.h
 * lb__sparse_igemm) against the dense integer kernel (igemm.h lb__igemm,
 * W4A8) in cache: one 768 x 768 int4_g32 matrix, one token (decode), the
 * kernels of the active ISA called directly (no threads, no activation
 * quantization), masks of p = 4 (random 2:4), 2 (random 2 of 8: V:2:8's
 * bytes), 1 and 8 kept per mask byte. Printed: ns per weight of the dense
 * shape (cols x rows, whatever is kept) for both, and dense / sparse in
 * thread CPU time (> 1: the sparse kernel is faster), best of 7 rounds.
 * usage: bench_sparse_int [ROWS COLS] */
#include "kernels/sparse.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    int64_t rows = argc > 2 ? atoll(argv[1]) : 768, cols = argc > 2 ? atoll(argv[2]) : 768;
    if (rows < 1 || cols < 256 || cols % 256) { fprintf(stderr, "bench_sparse_int: COLS must be a multiple of 256\n"); return 1; }
    const lb_format *f = lb_format_find("int4_g32");
    lb__iw iw;
    lb__iw_init(f, &iw);
    lb_rng r;
    lb_rng_seed(&r, 1);
    size_t rbd = lb_format_row_bytes(f, cols);
    uint8_t *w = malloc(rbd * (size_t)rows), *mask = malloc((size_t)(rows * cols / 8));
    for (size_t i = 0; i < rbd * (size_t)rows; i++) w[i] = (uint8_t)lb_rng_u64(&r);
    for (size_t i = 0; i < rbd * (size_t)rows; i += 18) { w[i] = 0x00; w[i + 1] = 0x20; }   /* scales 0.0078125 */
    int8_t *q = malloc((size_t)cols);
    float *d = malloc(sizeof(float) * (size_t)(cols / 32)), *y = malloc(sizeof(float) * (size_t)rows);
    for (int64_t i = 0; i < cols; i++) q[i] = (int8_t)((int)(lb_rng_u64(&r) % 255) - 127);
    for (int64_t i = 0; i < cols / 32; i++) d[i] = 0.01f;
    lb__iact a = {.q = q, .d = d, .qs = cols, .ds = cols / 32};
    lb__igemm_fn dense = lb__igemm();
    lb__sparse_igemm_fn sparse = lb__sparse_igemm();
    double load = -1;
    FILE *fl = fopen("/proc/loadavg", "r");
    if (fl) { if (fscanf(fl, "%lf", &load) != 1) load = -1; fclose(fl); }
    printf("isa %s; load average %.2f; %lld x %lld int4_g32, 1 token, in cache\n", lb_isa_name(lb_isa_active()), load,
           (long long)rows, (long long)cols);
    printf("| kept per mask byte | pattern | sparse ns/weight | W4A8 ns/weight | speed-up vs W4A8 (CPU time) |\n|---:|---|---:|---:|---:|\n");
    static const uint8_t nib2[6] = {3, 5, 6, 9, 10, 12};
    static const int ps[4] = {4, 2, 1, 8};
    static const char *names[4] = {"2:4", "2 of 8 (V:2:8)", "1 of 8", "none pruned"};
    for (int pi = 0; pi < 4; pi++) {
        int p = ps[pi];
        for (int64_t i = 0; i < rows * cols / 8; i++) {
            uint8_t b = 0;
            if (p == 4) b = (uint8_t)(nib2[lb_rng_u64(&r) % 6] | nib2[lb_rng_u64(&r) % 6] << 4);
            else if (p == 8) b = 0xff;
            else
                for (int n = 0; n < p;) {
                    int k = (int)(lb_rng_u64(&r) % 8);
                    if (!(b >> k & 1)) { b |= (uint8_t)(1u << k); n++; }
                }
            mask[i] = b;
        }
        size_t rb = lb_format_row_bytes(f, cols / 8 * p);
        int reps = (int)(2e8 / (double)(rows * cols)) + 1;
        double bs = 1e30, bd = 1e30;
        for (int round = 0; round < 7; round++) {
            double t0 = cpu_now();
            for (int k = 0; k < reps; k++) sparse(&iw, p, mask, (size_t)cols / 8, w, rb, 0, rows, cols, &a, 1, y, rows);
            double t1 = cpu_now();
            for (int k = 0; k < reps; k++) dense(&iw, w, rbd, 0, rows, cols, &a, 1, y, rows);
            double t2 = cpu_now();
            if (t1 - t0 < bs) bs = t1 - t0;
            if (t2 - t1 < bd) bd = t2 - t1;
        }
        double n = (double)reps * (double)(rows * cols);
        printf("| %d | %s | %.4f | %.4f | %.2fx |\n", p, names[pi], 1e9 * bs / n, 1e9 * bd / n, bd / bs);
    }
    free(w); free(mask); free(q); free(d); free(y);
    return 0;
}
