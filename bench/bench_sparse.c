/* bench_sparse.c: decode (one token) y = W x through lb__linear for sparse
 * weights against dense ones of the 110M model's shapes (768 x 768,
 * 2048 x 768, 768 x 2048), with 1 and 2 threads, all in one run:
 *   dense BF16 (the baseline of the ratios, timed alternately with each
 *   variant so both see the same load), dense int4_g32 (RTN; FP32
 *   activations: the multi-row qdot kernel), dense int4_g32 with int8_g32
 *   activations (W4A8: the integer kernels), 2:4 BF16, 64:2:8 BF16
 *   (V:N:M, 75%), unstructured 50% BF16, and 2:4, 4:8, 64:2:8, 1:4 with
 *   the kept values in int4_g32 (the fused packed kernel; each also timed
 *   against both int4_g32 baselines), 64:2:8 BF16 with each row
 *   gathering its own inputs (the kernel before the V:N:M shared gather),
 *   2:4 BF16 through the kernel of any mask with 4 kept per byte (before
 *   the 2:4 nibble kernel); 2:4 and 64:2:8 BF16 are also timed directly
 *   against these; and 2:4, 4:8, 64:2:8 int4_g32 with int8_g32 activations
 *   (`--act int8`: the sparse integer kernel of kernels/sparse.h, also timed
 *   against both int4_g32 baselines).
 * Each matrix is streamed from DRAM as in generation: COPIES copies (over
 * 100 MB of dense BF16) are cycled. Printed per variant: bytes per weight
 * as stored, ns per weight, speed-up over the baseline (> 1: faster) in
 * wall time and in process CPU time (other jobs' time on the cores left
 * out: the steadier figure on a shared machine), and the bytes read per
 * second as a fraction of a plain streaming read (a sum over 256 MB)
 * measured in the same run. The machine is shared: read the ratios and the
 * load printed with them.
 * usage: bench_sparse [NAME]   (only the variants whose name contains NAME)
 *        bench_sparse --profile [NAME]: per variant, CPU time per weight with
 *        one copy (it stays in cache) against all copies cycled (streamed
 *        from DRAM), alternated, at 1 and 2 threads: a kernel whose in-cache
 *        time is close to its streamed time is bound by its own work, not
 *        by memory (the hardware counters of perf are absent on the VM). */
#include "lowbit.h"
#include "quant/quant.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { COPIES = 48, N_VAR = 15 };
static const char *var_name[N_VAR] = {"dense BF16", "dense int4_g32", "2:4 BF16", "64:2:8 BF16 (V:N:M 75%)",
                                      "unstructured 50% BF16", "2:4 int4_g32", "dense int4_g32 x int8 act (W4A8)",
                                      "4:8 int4_g32", "64:2:8 int4_g32", "1:4 int4_g32",
                                      "64:2:8 BF16 per-row gather", "2:4 BF16 any-4-per-byte kernel",
                                      "2:4 int4_g32 x int8 act", "4:8 int4_g32 x int8 act", "64:2:8 int4_g32 x int8 act"};

typedef struct var { lb_weight w[COPIES]; lb_wstore store; lb_qmatrix q[COPIES]; size_t bytes; } var;

/* Plain read bandwidth (bytes/s): the best of 3 sums over 256 MB. */
static double read_bandwidth(int threads)
{
    size_t n = (size_t)64 << 20;
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 7);
    lb_pool *pool = NULL;
    lb_pool_create(threads, &pool);
    const lb_weight w = lb__weight_dense(a, LB_DTYPE_F32, (int64_t)(n / 4096), 4096);
    float x[4096], *y = malloc(sizeof(float) * (n / 4096));
    for (int i = 0; i < 4096; i++) x[i] = 1.0f;
    const lb_weight *wl[1] = {&w};
    lb_wspace *ws = NULL;
    lb__wspace_create(wl, 1, 1, threads, &ws);
    double best = 1e30;
    for (int r = 0; r < 3; r++) {   /* the F32 matvec: one FMA per 4 bytes, bound by the read */
        double t0 = lb_time_now();
        lb__linear(ws, pool, &w, x, 1, 4096, y, (int64_t)(n / 4096));
        double t = lb_time_now() - t0;
        if (t < best) best = t;
    }
    lb__wspace_free(ws);
    lb_pool_free(pool);
    free(a);
    free(y);
    return (double)(n * sizeof(float)) / best;
}

/* Variant v of every copy from the F32 matrix w. */
static int build(int v, const float *w, int64_t rows, int64_t cols, uint16_t **bf, var *out)
{
    memset(out, 0, sizeof *out);
    float *wp = malloc(sizeof(float) * (size_t)(rows * cols));
    uint8_t *keep = malloc((size_t)(rows * cols));
    static const char *pats[N_VAR] = {NULL, NULL, "2:4", "64:2:8", "unstructured", "2:4", NULL, "4:8", "64:2:8", "1:4",
                                      "64:2:8", "2:4", "2:4", "4:8", "64:2:8"};
    static const int vnm[N_VAR][3] = {{0, 0, 0}, {0, 0, 0}, {0, 2, 4}, {64, 2, 8}, {0, 0, 0}, {0, 2, 4}, {0, 0, 0},
                                      {0, 4, 8}, {64, 2, 8}, {0, 1, 4}, {64, 2, 8}, {0, 2, 4}, {0, 2, 4}, {0, 4, 8},
                                      {64, 2, 8}};
    int rc = 0;
    if (pats[v]) {
        memcpy(wp, w, sizeof(float) * (size_t)(rows * cols));
        lb_prune_opts o = {.pattern = pats[v], .ratio = 0.5};
        rc = lb_prune_matrix(&o, wp, rows, cols, keep) != LB_OK;
    }
    for (int c = 0; c < COPIES && !rc; c++) {
        if (v == 0) out->w[c] = lb__weight_dense(bf[c], LB_DTYPE_BF16, rows, cols);
        else if (v == 5 || (v >= 7 && v <= 9) || v >= 12) {   /* prune, then the kept values (k per row) into int4_g32 */
            int64_t k = cols * vnm[v][1] / (vnm[v][0] ? 8 : vnm[v][2]);
            float *k2 = malloc(sizeof(float) * (size_t)(rows * k));
            for (int64_t i = 0, n = 0; i < rows * cols; i++)
                if (keep[i]) k2[n++] = wp[i];
            lb_quantize_opts o = {0};
            rc = lb_quantize_matrix(lb_quantizer_find("rtn"), lb_format_find("int4_g32"), &o, k2, rows, k, &out->q[c]) != LB_OK;
            if (!rc) rc = lb__weight_sparse_packed(&out->store, keep, rows, cols, out->q[c].fmt, out->q[c].tensor_scale,
                                                   out->q[c].packed, vnm[v][0], vnm[v][1], vnm[v][2], &out->w[c]) != LB_OK;
            if (v >= 12) out->w[c].act = lb_format_find("int8_g32");   /* the sparse integer kernel (spint) */
            free(k2);
        } else if (v == 1 || v == 6) {
            lb_quantize_opts o = {0};
            rc = lb_quantize_matrix(lb_quantizer_find("rtn"), lb_format_find("int4_g32"), &o, w, rows, cols, &out->q[c]) != LB_OK;
            if (!rc) out->w[c] = lb__qmatrix_weight(&out->q[c]);
            if (v == 6) out->w[c].act = lb_format_find("int8_g32");
        } else {
            rc = lb__weight_sparse(&out->store, wp, keep, rows, cols, LB_DTYPE_BF16, vnm[v][0], vnm[v][1], vnm[v][2],
                                   LB_SPARSE_AUTO, &out->w[c]) != LB_OK;
            if (v == 10) out->w[c].u.sparse.vsel = out->w[c].u.sparse.vmask = NULL;   /* each row gathers its own */
            if (v == 11) out->w[c].u.sparse.m = 8;   /* not known to be 2:4 (a valid 4:8 mask): the p = 4 kernel */
        }
    }
    if (!rc) out->bytes = lb__weight_bytes(&out->w[0]);
    free(wp);
    free(keep);
    return rc;
}

static void free_var(var *v)
{
    for (int c = 0; c < COPIES; c++) lb_qmatrix_free(&v->q[c]);
    lb__wstore_free(&v->store);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds per product of one pass over all copies: wall, and process CPU
 * time in *cpu (other jobs' time on the cores left out). */
static double pass(var *v, lb_wspace *ws, int64_t rows, int64_t cols, lb_pool *pool, const float *x, float *y,
                   double *cpu)
{
    double t0 = lb_time_now(), c0 = cpu_now();
    for (int c = 0; c < COPIES; c++) lb__linear(ws, pool, &v->w[c], x, 1, cols, y, rows);
    *cpu = (cpu_now() - c0) / COPIES;
    return (lb_time_now() - t0) / COPIES;
}

static lb_wspace *space(var *v, int threads)
{
    const lb_weight *all[COPIES];
    for (int c = 0; c < COPIES; c++) all[c] = &v->w[c];
    lb_wspace *ws = NULL;
    return lb__wspace_create(all, COPIES, 1, threads, &ws) ? NULL : ws;
}

/* Best of 7 passes of v and of the baseline b, alternated so that both see
 * the same load: t[0] = baseline, t[1] = v (wall), t[2], t[3] the same in
 * CPU time. */
static void time_pair(var *b, var *v, int64_t rows, int64_t cols, lb_pool *pool, int threads, const float *x, float *y,
                      double *t)
{
    lb_wspace *wb = space(b, threads), *wv = space(v, threads);
    t[0] = t[1] = t[2] = t[3] = 1e30;
    for (int r = 0; r < 7 && wb && wv; r++) {
        double ca, cc, a = pass(b, wb, rows, cols, pool, x, y, &ca), c = pass(v, wv, rows, cols, pool, x, y, &cc);
        if (a < t[0]) t[0] = a;
        if (c < t[1]) t[1] = c;
        if (ca < t[2]) t[2] = ca;
        if (cc < t[3]) t[3] = cc;
    }
    lb__wspace_free(wb);
    lb__wspace_free(wv);
}

/* CPU seconds per product: one copy COPIES times (in cache) and each copy once (streamed). */
static void cache_vs_stream(var *v, lb_wspace *ws, int64_t rows, int64_t cols, lb_pool *pool, const float *x, float *y,
                            double *t)
{
    t[0] = t[1] = 1e30;
    for (int r = 0; r < 7; r++) {
        double c0 = cpu_now();
        for (int c = 0; c < COPIES; c++) lb__linear(ws, pool, &v->w[0], x, 1, cols, y, rows);
        double a = (cpu_now() - c0) / COPIES, b;
        pass(v, ws, rows, cols, pool, x, y, &b);
        if (a < t[0]) t[0] = a;
        if (b < t[1]) t[1] = b;
    }
}

/* Seeded Gaussian weights (rows x cols) and input, an output row, and
 * COPIES BF16 copies of the weights (the matrices the variants are built from). */
static void shape_data(int64_t rows, int64_t cols, float **w, float **x, float **y, uint16_t **bf)
{
    int64_t n = rows * cols;
    *w = malloc(sizeof(float) * (size_t)n);
    *x = malloc(sizeof(float) * (size_t)cols);
    *y = malloc(sizeof(float) * (size_t)rows);
    lb_rng r;
    lb_rng_seed(&r, 1);
    for (int64_t i = 0; i < n; i++) (*w)[i] = (float)lb_rng_normal(&r) * 0.05f;
    for (int64_t i = 0; i < cols; i++) (*x)[i] = (float)lb_rng_normal(&r);
    for (int c = 0; c < COPIES; c++) {
        bf[c] = malloc(sizeof(uint16_t) * (size_t)n);
        lb_f32_to_bf16_row(*w, bf[c], n);
    }
}

static int profile(const char *only)
{
    const int64_t shapes[3][2] = {{768, 768}, {2048, 768}, {768, 2048}};
    printf("| shape | variant | threads | in cache ns/weight | streamed ns/weight | streamed / in cache |\n|---|---|---:|---:|---:|---:|\n");
    for (int s = 0; s < 3; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
        float *w, *x, *y;
        uint16_t *bf[COPIES];
        shape_data(rows, cols, &w, &x, &y, bf);
        for (int v = 0; v < N_VAR; v++) {
            if ((only && !strstr(var_name[v], only)) || !strstr(var_name[v], "BF16")) continue;
            var vv;
            if (build(v, w, rows, cols, bf, &vv)) { printf("| %s | failed: %s |\n", var_name[v], lb_errmsg()); continue; }
            for (int th = 1; th <= 2; th++) {
                lb_pool *pool = NULL;
                lb_pool_create(th, &pool);
                lb_wspace *ws = space(&vv, th);
                double t[2];
                if (ws) cache_vs_stream(&vv, ws, rows, cols, pool, x, y, t);
                if (ws) printf("| %lld x %lld | %s | %d | %.4f | %.4f | %.2f |\n", (long long)rows, (long long)cols, var_name[v],
                               th, 1e9 * t[0] / (double)n, 1e9 * t[1] / (double)n, t[1] / t[0]);
                lb__wspace_free(ws);
                lb_pool_free(pool);
            }
            free_var(&vv);
        }
        for (int c = 0; c < COPIES; c++) free(bf[c]);
        free(w); free(x); free(y);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--profile")) return profile(argc > 2 ? argv[2] : NULL);
    const char *only = argc > 1 ? argv[1] : NULL;   /* run the variants whose name contains this */
    const int64_t shapes[3][2] = {{768, 768}, {2048, 768}, {768, 2048}};
    double load[3] = {0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) { if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1; fclose(f); }
    printf("isa %s; load average %.2f; decode y = W x streamed from DRAM (%d copies cycled)\n",
           lb_isa_name(lb_isa_active()), load[0], COPIES);
    double bw[3] = {0, read_bandwidth(1), read_bandwidth(2)};
    printf("plain read bandwidth: %.2f GB/s (1 thread), %.2f GB/s (2 threads)\n", bw[1] / 1e9, bw[2] / 1e9);
    for (int s = 0; s < 3; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
        float *w, *x, *y;
        uint16_t *bf[COPIES];
        shape_data(rows, cols, &w, &x, &y, bf);
        printf("\n%lld x %lld\n| variant | bytes/weight | threads | ns/weight | speed-up (wall) | speed-up (CPU time) | fraction of read bandwidth |\n"
               "|---|---:|---:|---:|---:|---:|---:|\n", (long long)rows, (long long)cols);
        var base, base4, base48;
        if (build(0, w, rows, cols, bf, &base) || build(1, w, rows, cols, bf, &base4) || build(6, w, rows, cols, bf, &base48)) {
            printf("baselines failed: %s\n", lb_errmsg());
            return 1;
        }
        for (int th = 1; th <= 2; th++) {
            lb_pool *pool = NULL;
            lb_pool_create(th, &pool);
            for (int v = 0; v < N_VAR; v++) {
                if (only && !strstr(var_name[v], only)) continue;
                var vv, per_row;
                if (build(v, w, rows, cols, bf, &vv)) { printf("| %s | failed: %s |\n", var_name[v], lb_errmsg()); continue; }
                double t[4];
                time_pair(&base, &vv, rows, cols, pool, th, x, y, t);
                printf("| %s | %.4f | %d | %.4f | %.2fx | %.2fx | %.0f%% |\n", var_name[v], (double)vv.bytes / (double)n, th,
                       1e9 * t[1] / (double)n, t[0] / t[1], t[2] / t[3], 100.0 * ((double)vv.bytes / t[1]) / bw[th]);
                int before = v == 3 ? 10 : v == 2 ? 11 : 0;   /* against the kernel it replaced */
                if (before && !build(before, w, rows, cols, bf, &per_row)) {
                    time_pair(&per_row, &vv, rows, cols, pool, th, x, y, t);
                    printf("| %s vs %s | | %d | %.4f | %.2fx | %.2fx | |\n", var_name[v], var_name[before], th,
                           1e9 * t[1] / (double)n, t[0] / t[1], t[2] / t[3]);
                    free_var(&per_row);
                }
                for (int b = 0; b < 2 && (v == 5 || (v >= 7 && v <= 9) || v >= 12); b++) {   /* and against both int4_g32 baselines */
                    time_pair(b ? &base48 : &base4, &vv, rows, cols, pool, th, x, y, t);
                    printf("| %s vs %s | | %d | %.4f | %.2fx | %.2fx | |\n", var_name[v], b ? "W4A8" : "dense int4_g32", th,
                           1e9 * t[1] / (double)n, t[0] / t[1], t[2] / t[3]);
                }
                free_var(&vv);
            }
            lb_pool_free(pool);
        }
        free_var(&base);
        free_var(&base4);
        free_var(&base48);
        for (int c = 0; c < COPIES; c++) free(bf[c]);
        free(w); free(x); free(y);
    }
    return 0;
}
