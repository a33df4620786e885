/* bench_qdot.c: decode (one token) y = W x from packed weights through
 * lb__linear, the path generation uses, for a 768 x 2048 matrix (the
 * 110M model's down projection; packed it stays in L2) and a 2048 x 768
 * one streamed from DRAM (16 copies cycled, 100+ MB in all), each as a
 * ratio to the FP32 engine matmul of the same shape measured in the same
 * run (> 1: the packed decode is faster), plus ns per weight. Per-row
 * lb_format_dot (the formats module's kernels) is listed as a second
 * baseline. Arguments (optional): the formats to run. One thread; the machine is shared: read the ratios. */
#include "lowbit.h"
#include "quant/quant.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { COPIES = 16 };

typedef struct mat { int64_t rows, cols; lb_weight w[COPIES]; lb_qmatrix q[COPIES]; } mat;

static double best_of(int reps, int iters, const mat *m, const float *x, float *y, lb_wspace *ws, bool rowdot)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = lb_time_now();
        for (int i = 0; i < iters; i++) {
            const lb_weight *w = &m->w[i % COPIES];
            if (!rowdot) { lb__linear(ws, NULL, w, x, 1, m->cols, y, m->rows); continue; }
            const lb_wblock *b = &w->u.block;
            for (int64_t k = 0; k < m->rows; k++)
                y[k] = lb_format_dot(b->fmt, (const uint8_t *)w->data + (size_t)k * b->row_bytes, b->tensor_scale, x,
                                     m->cols);
        }
        double t = (lb_time_now() - t0) / iters;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    const char *fmts[] = {"f32", "int4_g32", "int4_g32_asym", "mxfp4", "nvfp4", "nf4", "int8_g32", "mxint8"};
    const int64_t shapes[2][2] = {{768, 2048}, {2048, 768}};
    printf("isa %s; decode y = W x, one thread; ratio = FP32 time / packed time (higher is faster)\n",
           lb_isa_name(lb_isa_active()));
    for (int s = 0; s < 2; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
        int copies = s == 0 ? 1 : COPIES, iters = s == 0 ? 400 : 64;
        float *w = malloc(sizeof(float) * (size_t)n), *x = malloc(sizeof(float) * (size_t)cols);
        float *y = malloc(sizeof(float) * (size_t)rows);
        float *dense[COPIES];
        lb_rng r;
        lb_rng_seed(&r, 1);
        for (int64_t i = 0; i < n; i++) w[i] = (float)lb_rng_normal(&r) * 0.05f;
        for (int64_t i = 0; i < cols; i++) x[i] = (float)lb_rng_normal(&r);
        for (int c = 0; c < copies; c++) { dense[c] = malloc(sizeof(float) * (size_t)n); memcpy(dense[c], w, sizeof(float) * (size_t)n); }
        printf("\n%lld x %lld (%s)\n| format | ns/weight | vs FP32 | vs per-row lb_format_dot |\n|---|---:|---:|---:|\n",
               (long long)rows, (long long)cols, s == 0 ? "resident" : "streamed, 16 copies");
        double t32 = 0;
        for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++) {
            bool want = argc < 2 || f == 0;   /* optional arguments: the formats to run */
            for (int a = 1; a < argc; a++) want = want || !strcmp(argv[a], fmts[f]);
            if (!want) continue;
            mat m = {.rows = rows, .cols = cols};
            bool ok = true;
            for (int c = 0; c < COPIES; c++) {
                int cc = c % copies;
                if (!strcmp(fmts[f], "f32")) {
                    m.w[c] = lb__weight_dense(dense[cc], LB_DTYPE_F32, rows, cols);
                    continue;
                }
                if (c < copies) {
                    lb_quantize_opts o = {0};
                    ok = ok && !lb_quantize_matrix(lb_quantizer_find("rtn"), lb_format_find(fmts[f]), &o, w, rows, cols, &m.q[c]);
                }
                if (ok) m.w[c] = lb__qmatrix_weight(&m.q[cc]);
            }
            if (!ok) { printf("| %s | (failed: %s) | | |\n", fmts[f], lb_errmsg()); continue; }
            const lb_weight *all[COPIES];
            for (int c = 0; c < COPIES; c++) all[c] = &m.w[c];
            lb_wspace *ws = NULL;
            if (lb__wspace_create(all, COPIES, 1, 1, &ws)) { printf("| %s | (failed: %s) | | |\n", fmts[f], lb_errmsg()); continue; }
            double t = best_of(5, iters, &m, x, y, ws, false);
            if (f == 0) { t32 = t; printf("| f32 | %.4f | 1.00x | |\n", t * 1e9 / (double)n); lb__wspace_free(ws); continue; }
            double tr = best_of(3, iters / 4, &m, x, y, ws, true);
            lb__wspace_free(ws);
            printf("| %s | %.4f | %.2fx | %.2fx |\n", fmts[f], t * 1e9 / (double)n, t32 / t, tr / t);
            for (int c = 0; c < copies; c++) lb_qmatrix_free(&m.q[c]);
        }
        for (int c = 0; c < copies; c++) free(dense[c]);
        free(w); free(x); free(y);
    }
    return 0;
}
