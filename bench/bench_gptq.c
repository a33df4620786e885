/* bench_gptq.c: time of GPTQ on the matrix shapes of the 110M synthetic
 * model (dim 768, hidden 2048): 768 x 768 (q, k, v, o), 2048 x 768 (gate,
 * up), 768 x 2048 (down), format int4_g32 (rows x cols = out x in; the
 * Hessian is cols x cols). For each: RTN of the same matrix (the same-run
 * baseline, printed as a ratio), the factor U of H^-1 alone (O(cols^3)),
 * and the whole GPTQ (factor + the column loop, O(rows cols^2)). One
 * thread; then the per-layer sum (4 + 2 + 1 matrices) and the 12-layer
 * estimate on 1 and 2 threads (model_quant runs a layer's matrices in
 * parallel, one per thread). Times are CPU seconds of the one thread (the
 * machine is shared; note the load beside them).
 *   bench_gptq [reps] [format] [act_order 0|1] */
#include "bench_util.h"
#include "core/core.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Fastest of reps runs in CPU seconds of this process (one thread, so this
 * is the work itself, less sensitive than wall time to a loaded machine). */
static double best_cpu(int reps, void (*fn)(void *), void *ctx)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        clock_t c0 = clock();
        fn(ctx);
        double t = (double)(clock() - c0) / CLOCKS_PER_SEC;
        if (t < best) best = t;
    }
    return best;
}

typedef struct job {
    const lb_format *f;
    const lb_quantizer *q;
    lb_quantize_opts o;
    const float *w;
    double *H, *scratch;
    int64_t rows, cols;
} job;

static void run_method(void *c)
{
    job *j = c;
    lb_qmatrix m;
    if (lb_quantize_matrix(j->q, j->f, &j->o, j->w, j->rows, j->cols, &m)) {
        fprintf(stderr, "bench_gptq: %s\n", lb_errmsg());
        exit(1);
    }
    lb_qmatrix_free(&m);
}

static void run_factor(void *c)
{
    job *j = c;
    int64_t n = j->cols;
    memcpy(j->scratch, j->H, (size_t)(n * n) * sizeof *j->H);
    for (int64_t i = 0; i < n; i++) j->scratch[i * n + i] += 0.01;
    if (lb__chol_inv_upper(j->scratch, n)) { fprintf(stderr, "bench_gptq: %s\n", lb_errmsg()); exit(1); }
}

/* H = B B^T / k + 0.1 I, B (n x k) normal with columns of varied scale. */
static double *make_h(lb_rng *r, int64_t n, int64_t k)
{
    double *B = malloc(sizeof(double) * (size_t)(n * k)), *H = calloc((size_t)(n * n), sizeof *H);
    for (int64_t i = 0; i < n * k; i++) B[i] = lb_rng_normal(r) * (1 + (i / k) % 5);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0;
            for (int64_t t = 0; t < k; t++) s += B[i * k + t] * B[j * k + t];
            H[i * n + j] = H[j * n + i] = s / (double)k + (i == j ? 0.1 : 0);
        }
    free(B);
    return H;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 2;
    const char *fname = argc > 2 ? argv[2] : "int4_g32";
    int act = argc > 3 ? atoi(argv[3]) : 0;
    if (reps < 1) reps = 1;
    const lb_format *f = lb_format_find(fname);
    if (!f) { fprintf(stderr, "bench_gptq: unknown format %s\n", fname); return 1; }
    int64_t shapes[3][3] = {{768, 768, 4}, {2048, 768, 2}, {768, 2048, 1}};   /* rows, cols, per layer */
    lb_rng r;
    lb_rng_seed(&r, 1);
    printf("GPTQ timing (CPU seconds), %s, act_order %d, one thread, best of %d\n\n", fname, act, reps);
    printf("| matrix | rtn s | factor s | gptq s | gptq / rtn | factor share |\n|---|---:|---:|---:|---:|---:|\n");
    double layer = 0, layer_factor = 0;
    for (int s = 0; s < 3; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1];
        float *w = malloc(sizeof(float) * (size_t)(rows * cols));
        for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)(0.02 * lb_rng_normal(&r));
        double *H = make_h(&r, cols, 128);
        lb_calib_stats st = {.n = cols, .n_tokens = 128, .H = H};
        job j = {.f = f, .q = lb_quantizer_find("rtn"), .w = w, .H = H, .rows = rows, .cols = cols,
                 .o = {.calib = &st, .act_order = act}};
        j.scratch = malloc(sizeof(double) * (size_t)(cols * cols));
        double t_rtn = best_cpu(reps, run_method, &j);
        double t_fac = best_cpu(reps, run_factor, &j);
        j.q = lb_quantizer_find("gptq");
        double t_gptq = best_cpu(reps, run_method, &j);
        printf("| %lld x %lld | %.3f | %.3f | %.3f | %.0f | %.0f%% |\n", (long long)rows, (long long)cols, t_rtn,
               t_fac, t_gptq, t_gptq / t_rtn, 100 * t_fac / t_gptq);
        layer += shapes[s][2] * t_gptq;
        layer_factor += shapes[s][2] * t_fac;
        free(w); free(H); free(j.scratch);
    }
    printf("\nper layer (4 x 768x768 + 2 x 2048x768 + 768x2048): %.2f s on one thread, of which factors %.2f s\n",
           layer, layer_factor);
    printf("12 layers: %.1f s on one thread, about %.1f s on two (matrices of a layer in parallel)\n", 12 * layer,
           6 * layer);
    return 0;
}
