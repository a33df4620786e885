/* test_awq.c: the calibrated matrix methods of src/quant: rtn with an
 * importance matrix (weighted MSE scale search), awq, awq+sinq and qronos.
 * Checks: exhaustive argmin over the scale candidates, bit-identity with
 * uniform importance, the independent NumPy references tests/ref/awq_ref.py
 * and qronos_ref.py (same alpha / same codes), layer-output losses against
 * rtn computed here from the statistics, and bad input. */
#include "harness.h"
#include "quant/quant.h"
#include "formats/formats.h"
#include "tstats.h"
#include <unistd.h>

static lb_rng rng;

/* Activations with a few strong channels (the setting AWQ is built for). */
static float *activations(int64_t T, int64_t n)
{
    float *X = malloc(sizeof(float) * (size_t)(T * n));
    double *g = malloc(sizeof(double) * (size_t)n);
    for (int64_t j = 0; j < n; j++) g[j] = exp(1.2 * lb_rng_normal(&rng)) * (j % 11 == 3 ? 8.0 : 1.0);
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < n; j++) X[t * n + j] = (float)(g[j] * lb_rng_normal(&rng) + 0.1 * g[j]);
    free(g);
    return X;
}

static float *random_w(int64_t rows, int64_t n)
{
    float *w = malloc(sizeof(float) * (size_t)(rows * n));
    for (int64_t i = 0; i < rows * n; i++) w[i] = (float)(lb_rng_normal(&rng) * (i % 97 == 5 ? 4.0 : 1.0));
    return w;
}

/* tr(E H E^T), E = w - y, computed here (independently of awq.c). */
static double hloss(const double *H, const float *w, const float *y, int64_t rows, int64_t n)
{
    double tot = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                tot += ((double)w[r * n + i] - y[r * n + i]) * H[i * n + j] * ((double)w[r * n + j] - y[r * n + j]);
    return tot;
}

/* mean ||W x - Q xq||^2 from the statistics. */
static double xqloss(const stats *s, const float *w, const float *q, int64_t rows, int64_t n)
{
    double tot = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double wi = w[r * n + i], wj = w[r * n + j], qi = q[r * n + i], qj = q[r * n + j];
                tot += wi * s->H[i * n + j] * wj - 2 * qi * s->Hqx[i * n + j] * wj + qi * s->Hq[i * n + j] * qj;
            }
    return tot;
}

static lb_status quant(const char *method, const char *fmt, const lb_quantize_opts *o, const float *w, int64_t rows,
                       int64_t n, lb_qmatrix *q, float *y)
{
    lb_status s = lb_quantize_matrix(lb_quantizer_find(method), lb_format_find(fmt), o, w, rows, n, q);
    if (!s && y) s = lb_qmatrix_dequantize(q, y);
    return s;
}

/* ---- rtn --calib */

static int64_t cols_for(const lb_format *f) { return lb_format_block(f) ? 4 * lb_format_block(f) : 72; }

/* Uniform importance (1, a power of two, and 0.3) picks exactly the
 * unweighted MSE choice, for every format of the registry. */
static void test_uniform_importance(void)
{
    const float levels[] = {1.0f, 4.0f, 0.3f};
    for (int fi = 0; fi < lb_format_count(); fi++) {
        const lb_format *f = lb_format_at(fi);
        int64_t rows = 5, n = cols_for(f);
        float *x = random_w(rows, n), *imp = malloc(sizeof(float) * (size_t)n), g0 = 0, g1 = 0;
        size_t bytes = lb_format_row_bytes(f, n) * (size_t)rows;
        uint8_t *a = malloc(bytes), *b = malloc(bytes);
        REQUIRE(!lb_format_quantize(f, &(lb_quant_opts){LB_SCALE_MSE}, x, rows, n, a, &g0), "%s", lb_errmsg());
        for (int l = 0; l < 3; l++) {
            for (int64_t i = 0; i < n; i++) imp[i] = levels[l];
            REQUIRE(!lb__format_quantize_w(f, imp, x, rows, n, b, &g1), "%s", lb_errmsg());
            CHECK(!memcmp(a, b, bytes) && g0 == g1, "%s: importance %g changes the search", lb_format_name(f),
                  (double)levels[l]);
        }
        free(x); free(imp); free(a); free(b);
    }
    /* rtn with uniform statistics through the public API = rtn with the mse rule */
    int64_t rows = 8, n = 64, T = 16;
    float *X = malloc(sizeof(float) * (size_t)(T * n));
    for (int64_t i = 0; i < T * n; i++) X[i] = i % 2 ? 1.0f : -1.0f;
    stats st;
    stats_build(&st, X, NULL, T, n);
    float *w = random_w(rows, n);
    lb_qmatrix q1, q2;
    REQUIRE(!quant("rtn", "int4_g32", &(lb_quantize_opts){.scale_rule = LB_SCALE_MSE}, w, rows, n, &q1, NULL), "%s",
            lb_errmsg());
    REQUIRE(!quant("rtn", "int4_g32", &(lb_quantize_opts){.calib = &st.c}, w, rows, n, &q2, NULL), "%s", lb_errmsg());
    CHECK(!memcmp(q1.packed, q2.packed, q1.row_bytes * (size_t)rows), "rtn --calib with uniform importance differs");
    lb_qmatrix_free(&q1); lb_qmatrix_free(&q2);
    stats_free(&st); free(X); free(w);
}

/* Random importance: every block's choice has the least weighted error of
 * all candidates (exhaustive), hence never more than the unweighted choice. */
static void test_weighted_argmin(void)
{
    for (int fi = 0; fi < lb_format_count(); fi++) {
        const lb_format *f = lb_format_at(fi);
        int64_t rows = 4, n = cols_for(f), B = lb_format_block(f) ? lb_format_block(f) : n;
        float *x = random_w(rows, n), *imp = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)B);
        for (int64_t i = 0; i < n; i++) imp[i] = (float)exp(2.0 * lb_rng_normal(&rng));
        imp[1] = 0.0f;
        size_t rb = lb_format_row_bytes(f, n), bb = lb__block_bytes(f, B);
        uint8_t *pw = malloc(rb * (size_t)rows), *pu = malloc(rb * (size_t)rows), *cand = malloc(bb);
        float g = 0, gu = 0;
        REQUIRE(!lb__format_quantize_w(f, imp, x, rows, n, pw, &g), "%s", lb_errmsg());
        REQUIRE(!lb_format_quantize(f, &(lb_quant_opts){LB_SCALE_MSE}, x, rows, n, pu, &gu), "%s", lb_errmsg());
        int worse = 0, better = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t b = 0; b < n / B; b++) {
                const float *xb = x + r * n + b * B, *wb = imp + b * B;
                double e[3];
                const uint8_t *blk[2] = {pw + r * rb + b * bb, pu + r * rb + b * bb};
                for (int k = 0; k < 2; k++) {
                    lb_format_dequantize(f, blk[k], g, 1, B, y);
                    e[k] = 0;
                    for (int64_t i = 0; i < B; i++) e[k] += wb[i] * ((double)xb[i] - y[i]) * ((double)xb[i] - y[i]);
                }
                for (int j = 0; j < lb__mse_ncand(f); j++) {
                    lb__mse_candidate(f, g, j, xb, B, cand);
                    lb_format_dequantize(f, cand, g, 1, B, y);
                    e[2] = 0;
                    for (int64_t i = 0; i < B; i++) e[2] += wb[i] * ((double)xb[i] - y[i]) * ((double)xb[i] - y[i]);
                    worse += e[0] > e[2] * (1 + 1e-12);
                }
                worse += e[0] > e[1] * (1 + 1e-12);
                better += e[0] < e[1];
            }
        CHECK(!worse, "%s: %d candidates beat the weighted choice", lb_format_name(f), worse);
        if (!strcmp(lb_format_name(f), "int4_g32")) printf("%s: weighted search improves %d of %lld blocks\n", lb_format_name(f), better,
                            (long long)(rows * n / B));
        free(x); free(imp); free(y); free(pw); free(pu); free(cand);
    }
}

/* ---- awq */

/* Run tests/ref/<script> on a file holding rows, n, w and the double
 * matrices mats[0..nm) of sizes sz[]; read back nd doubles and rows*n floats. */
static int run_ref(const char *py, const char *script, const float *w, int64_t rows, int64_t n, const double **mats,
                   const int64_t *sz, int nm, double *d, int nd, float *y)
{
    char in[] = "/tmp/lb_awq_in.XXXXXX", out[] = "/tmp/lb_awq_out.XXXXXX", cmd[512];
    int fi = mkstemp(in), fo = mkstemp(out);
    if (fi < 0 || fo < 0) return -1;
    close(fo);
    FILE *f = fdopen(fi, "wb");
    int64_t hdr[2] = {rows, n};
    fwrite(hdr, sizeof hdr, 1, f);
    fwrite(w, sizeof(float), (size_t)(rows * n), f);
    for (int k = 0; k < nm; k++) fwrite(mats[k], sizeof(double), (size_t)sz[k], f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s tests/ref/%s %s %s", py, script, in, out);
    int rc = system(cmd);
    f = rc == 0 ? fopen(out, "rb") : NULL;
    size_t got = f ? fread(d, sizeof(double), (size_t)nd, f) + fread(y, sizeof(float), (size_t)(rows * n), f) : 0;
    if (f) fclose(f);
    remove(in); remove(out);
    return got == (size_t)nd + (size_t)(rows * n) ? 0 : -1;
}

static void test_awq(void)
{
    int64_t rows = 48, n = 64, T = 200, N = rows * n;
    float *X = activations(T, n);
    stats st;
    stats_build(&st, X, NULL, T, n);
    float *w = random_w(rows, n), *y = malloc(sizeof(float) * (size_t)N), *yr = malloc(sizeof(float) * (size_t)N);
    lb_quantize_opts o = {.calib = &st.c};
    lb_qmatrix q, r;
    REQUIRE(!quant("awq", "int4_g32", &o, w, rows, n, &q, y), "%s", lb_errmsg());
    REQUIRE(!quant("rtn", "int4_g32", NULL, w, rows, n, &r, yr), "%s", lb_errmsg());
    double la = hloss(st.H, w, y, rows, n), lr = hloss(st.H, w, yr, rows, n);
    CHECK(fabs(la - q.layer_loss) <= 1e-9 * la, "awq loss %.12g, recomputed %.12g", q.layer_loss, la);
    CHECK(la <= lr, "awq loss %g above rtn %g", la, lr);
    printf("int4_g32 %lldx%lld: proxy loss rtn %.5g, awq %.5g (alpha %.2f, %.1f%% lower)\n", (long long)rows,
           (long long)n, lr, la, q.awq_alpha, 100 * (1 - la / lr));
    CHECK(q.awq_alpha > 0 && q.col_scale, "strong channels, yet alpha %g chosen", q.awq_alpha);
    /* the stored identity: dequant(packed) * diag(col_scale) */
    float *d = malloc(sizeof(float) * (size_t)N);
    lb_format_dequantize(q.fmt, q.packed, q.tensor_scale, rows, n, d);
    int bad = 0;
    for (int64_t i = 0; i < N; i++) bad += d[i] * q.col_scale[i % n] != y[i];
    CHECK(!bad, "%d elements differ from dequant * col_scale", bad);
    const char *py = test_find_python();
    if (py) {
        const double *mats[2] = {st.H, st.abs};
        int64_t sz[2] = {n * n, n};
        double ref[2];
        REQUIRE(!run_ref(py, "awq_ref.py", w, rows, n, mats, sz, 2, ref, 2, d), "awq_ref.py failed");
        CHECK(ref[0] == q.awq_alpha, "alpha %g, NumPy reference %g", q.awq_alpha, ref[0]);
        CHECK(fabs(ref[1] - q.layer_loss) <= 1e-9 * ref[1], "loss %.12g, NumPy reference %.12g", q.layer_loss, ref[1]);
        bad = 0;
        for (int64_t i = 0; i < N; i++) bad += d[i] != y[i];
        CHECK(!bad, "%d of %lld dequantized weights differ from the NumPy reference", bad, (long long)N);
    } else
        printf("SKIP test_awq NumPy part: python3 with numpy not found (set LOWBIT_PYTHON)\n");
    lb_qmatrix_free(&q); lb_qmatrix_free(&r);
    /* A-SINQ: never above sinq, for sym and asym INT */
    const char *fmts[] = {"int4_g32_asym", "int3_g32", "nvfp4"};
    for (int k = 0; k < 3; k++) {
        REQUIRE(!quant("awq+sinq", fmts[k], &o, w, rows, n, &q, y), "%s", lb_errmsg());
        REQUIRE(!quant("sinq", fmts[k], NULL, w, rows, n, &r, yr), "%s", lb_errmsg());
        double a = hloss(st.H, w, y, rows, n), b = hloss(st.H, w, yr, rows, n);
        CHECK(a <= b * (1 + 1e-12), "%s: awq+sinq %g above sinq %g", fmts[k], a, b);
        CHECK(fabs(a - q.layer_loss) <= 1e-9 * a, "%s: loss %g vs %g", fmts[k], q.layer_loss, a);
        printf("%s: proxy loss sinq %.5g, awq+sinq %.5g (alpha %.2f)\n", fmts[k], b, a, q.awq_alpha);
        lb_qmatrix_free(&q); lb_qmatrix_free(&r);
        REQUIRE(!quant("awq", fmts[k], &o, w, rows, n, &q, y), "%s", lb_errmsg());
        REQUIRE(!quant("rtn", fmts[k], NULL, w, rows, n, &r, yr), "%s", lb_errmsg());
        a = hloss(st.H, w, y, rows, n); b = hloss(st.H, w, yr, rows, n);
        CHECK(a <= b, "%s: awq %g above rtn %g", fmts[k], a, b);
        printf("%s: proxy loss rtn %.5g, awq %.5g (alpha %.2f)\n", fmts[k], b, a, q.awq_alpha);
        lb_qmatrix_free(&q); lb_qmatrix_free(&r);
    }
    free(d); free(w); free(y); free(yr); free(X);
    stats_free(&st);
}

/* awq+gptq (a registry composition: the awq search with GPTQ as its inner
 * quantizer) equals doing it by hand: the chosen alpha's scales s (AWQ's
 * formula, computed here), W diag(s) quantized by the gptq method with the
 * statistics of the scaled input c .* x (c = float(1/s): H' = diag(c) H
 * diag(c)): the same packed bytes and column scale. Its loss is never above
 * plain GPTQ's (alpha = 0 is in the search). */
static void test_awq_gptq(void)
{
    int64_t rows = 32, n = 64, T = 300, N = rows * n;
    float *X = activations(T, n);
    stats st;
    stats_build(&st, X, NULL, T, n);
    float *w = random_w(rows, n), *y = malloc(sizeof(float) * (size_t)N), *yg = malloc(sizeof(float) * (size_t)N);
    const char *fmts[] = {"int4_g32", "int3_g32_asym"};
    for (int k = 0; k < 2; k++)
        for (int act = 0; act < 2; act++) {
            lb_quantize_opts o = {.calib = &st.c, .act_order = act};
            lb_qmatrix q, g, h;
            REQUIRE(!quant("awq+gptq", fmts[k], &o, w, rows, n, &q, y), "%s", lb_errmsg());
            REQUIRE(!quant("gptq", fmts[k], &o, w, rows, n, &g, yg), "%s", lb_errmsg());
            double la = hloss(st.H, w, y, rows, n), lg = hloss(st.H, w, yg, rows, n);
            CHECK(fabs(la - q.layer_loss) <= 1e-9 * la, "loss %.12g, recomputed %.12g", q.layer_loss, la);
            CHECK(la <= lg * (1 + 1e-12), "%s act %d: awq+gptq %g above gptq %g", fmts[k], act, la, lg);
            printf("%s act_order %d: proxy loss gptq %.5g, awq+gptq %.5g (alpha %.2f)\n", fmts[k], act, lg, la,
                   q.awq_alpha);
            /* by hand */
            double amax = 0, lo = INFINITY, hi = 0, *s = malloc(sizeof(double) * (size_t)n);
            for (int64_t j = 0; j < n; j++) amax = st.abs[j] > amax ? st.abs[j] : amax;
            for (int64_t j = 0; j < n; j++) {
                s[j] = pow(st.abs[j] > 1e-4 * amax ? st.abs[j] : 1e-4 * amax, q.awq_alpha);
                lo = fmin(lo, s[j]); hi = fmax(hi, s[j]);
            }
            float *c = malloc(sizeof(float) * (size_t)n), *ws = malloc(sizeof(float) * (size_t)N);
            double *Hs = malloc(sizeof(double) * (size_t)(n * n));
            for (int64_t j = 0; j < n; j++) { s[j] /= sqrt(hi * lo); c[j] = (float)(1.0 / s[j]); }
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < n; j++) ws[r * n + j] = w[r * n + j] * (float)s[j];
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) Hs[i * n + j] = (double)c[i] * st.H[i * n + j] * (double)c[j];
            lb_calib_stats cs = {.n = n, .n_tokens = T, .H = Hs};
            lb_quantize_opts ho = {.calib = &cs, .act_order = act};
            REQUIRE(!quant("gptq", fmts[k], &ho, ws, rows, n, &h, NULL), "%s", lb_errmsg());
            CHECK(!memcmp(h.packed, q.packed, q.row_bytes * (size_t)rows) && h.tensor_scale == q.tensor_scale,
                  "%s act %d: packed bytes differ from AWQ scaling then GPTQ by hand", fmts[k], act);
            bool ones = q.awq_alpha == 0;
            CHECK(ones ? !q.col_scale : q.col_scale && !memcmp(q.col_scale, c, sizeof(float) * (size_t)n),
                  "%s act %d: column scale is not float(1/s)", fmts[k], act);
            free(s); free(c); free(ws); free(Hs);
            lb_qmatrix_free(&q); lb_qmatrix_free(&g); lb_qmatrix_free(&h);
        }
    free(w); free(y); free(yg); free(X);
    stats_free(&st);
}

/* ---- qronos */

static void test_qronos(void)
{
    int64_t rows = 24, n = 64, T = 160, N = rows * n;
    float *X = activations(T, n), *Xq = malloc(sizeof(float) * (size_t)(T * n));
    for (int64_t i = 0; i < T * n; i++) Xq[i] = (float)(X[i] * (1 + 0.05 * lb_rng_normal(&rng)) + 0.2 * lb_rng_normal(&rng));
    for (int64_t t = 0; t < T; t++) Xq[t * n + 5] = 0;   /* a dead column on the quantized path */
    stats st;
    stats_build(&st, X, Xq, T, n);
    float *w = random_w(rows, n), *y = malloc(sizeof(float) * (size_t)N), *yr = malloc(sizeof(float) * (size_t)N);
    lb_qmatrix q, r;
    REQUIRE(!quant("qronos", "int4_g32", &(lb_quantize_opts){.calib = &st.c}, w, rows, n, &q, y), "%s", lb_errmsg());
    REQUIRE(!quant("rtn", "int4_g32", NULL, w, rows, n, &r, yr), "%s", lb_errmsg());
    double lq = xqloss(&st, w, y, rows, n), lr = xqloss(&st, w, yr, rows, n);
    CHECK(fabs(lq - q.layer_loss) <= 1e-8 * lq, "qronos loss %.12g, recomputed %.12g", q.layer_loss, lq);
    CHECK(lq < lr, "qronos loss %g not below rtn %g", lq, lr);
    printf("int4_g32 %lldx%lld: loss mean||Wx - Q xq||^2 rtn %.5g, qronos %.5g (%.1f%% lower)\n", (long long)rows,
           (long long)n, lr, lq, 100 * (1 - lq / lr));
    const char *py = test_find_python();
    if (py) {
        const double *mats[3] = {st.H, st.Hq, st.Hqx};
        int64_t sz[3] = {n * n, n * n, n * n};
        double ref;
        float *d = malloc(sizeof(float) * (size_t)N);
        REQUIRE(!run_ref(py, "qronos_ref.py", w, rows, n, mats, sz, 3, &ref, 1, d), "qronos_ref.py failed");
        int bad = 0;
        for (int64_t i = 0; i < N; i++) bad += d[i] != y[i];
        CHECK(!bad, "%d of %lld codes differ from the NumPy reference", bad, (long long)N);
        CHECK(fabs(ref - lq) <= 1e-8 * fabs(lq), "loss %.12g, NumPy reference %.12g", lq, ref);
        free(d);
    } else
        printf("SKIP test_qronos NumPy part: python3 with numpy not found (set LOWBIT_PYTHON)\n");
    lb_qmatrix_free(&q); lb_qmatrix_free(&r);
    /* float path = quantized path: qronos is GPTQ on H, still below rtn on tr(E H E^T) */
    stats s2;
    stats_build(&s2, X, X, T, n);
    REQUIRE(!quant("qronos", "int4_g32_asym", &(lb_quantize_opts){.calib = &s2.c}, w, rows, n, &q, y), "%s", lb_errmsg());
    REQUIRE(!quant("rtn", "int4_g32_asym", NULL, w, rows, n, &r, yr), "%s", lb_errmsg());
    double a = hloss(s2.H, w, y, rows, n), b = hloss(s2.H, w, yr, rows, n);
    CHECK(a < b, "Xq = X: qronos %g not below rtn %g", a, b);
    printf("int4_g32_asym, Xq = X: tr(E H E^T) rtn %.5g, qronos %.5g\n", b, a);
    lb_qmatrix_free(&q); lb_qmatrix_free(&r);
    stats_free(&s2);
    stats_free(&st);
    free(X); free(Xq); free(w); free(y); free(yr);
}

/* With a diagonal H (= Hq = Hqx) every correction of qronos vanishes (the
 * Cholesky factor is diagonal, the re-solve returns W up to one double
 * rounding), so it must round W onto the rtn grid exactly as rtn does: a
 * check of its private grid rounding for every format and scale rule (mse
 * with symmetric INT excepted: there qronos may use code -2^(k-1) on blocks
 * whose clipped floor candidate won, which rtn never does). */
static void test_qronos_grid(void)
{
    const lb_scale_rule rules[] = {LB_SCALE_FLOOR, LB_SCALE_CEIL, LB_SCALE_MSE, LB_SCALE_FULL};
    for (int fi = 0; fi < lb_format_count(); fi++) {
        const lb_format *f = lb_format_at(fi);
        int64_t B = lb_format_block(f), rows = 3, n = !B ? 72 : B < 64 ? 64 : B;   /* O(n^3): keep n small */
        double *H = calloc((size_t)(n * n), sizeof(double)), *v = calloc((size_t)n, sizeof(double));
        for (int64_t i = 0; i < n; i++) H[i * n + i] = v[i] = 0.5 + lb_rng_uniform(&rng);
        lb_calib_stats c = {.n = n, .n_tokens = 1, .H = H, .sq = v, .abs = v, .Hq = H, .Hqx = H};
        float *w = random_w(rows, n);
        for (int k = 0; k < 4; k++) {
            if (rules[k] == LB_SCALE_FULL && !lb__format_full_ok(f)) continue;
            if (rules[k] == LB_SCALE_MSE && lb__format_full_ok(f)) continue;
            lb_qmatrix a, b;
            lb_quantize_opts o = {.scale_rule = rules[k], .calib = &c};
            REQUIRE(!quant("qronos", lb_format_name(f), &o, w, rows, n, &a, NULL), "%s: %s", lb_format_name(f),
                    lb_errmsg());
            REQUIRE(!quant("rtn", lb_format_name(f), &(lb_quantize_opts){.scale_rule = rules[k]}, w, rows, n, &b, NULL),
                    "%s", lb_errmsg());
            CHECK(!memcmp(a.packed, b.packed, a.row_bytes * (size_t)rows) && a.tensor_scale == b.tensor_scale,
                  "%s rule %d: qronos with a diagonal H differs from rtn", lb_format_name(f), (int)rules[k]);
            lb_qmatrix_free(&a); lb_qmatrix_free(&b);
        }
        free(H); free(v); free(w);
    }
}

/* ---- bad input: one clear error, nothing left allocated */

static void test_bad_input(void)
{
    int64_t rows = 4, n = 32, T = 8;
    float *X = activations(T, n);
    stats st;
    stats_build(&st, X, NULL, T, n);
    float *w = random_w(rows, n);
    lb_qmatrix q;
    const char *need[] = {"awq", "awq+sinq", "awq+gptq", "qronos"};
    for (int k = 0; k < 4; k++) {
        CHECK(quant(need[k], "int4_g32", NULL, w, rows, n, &q, NULL) == LB_ERR_ARG && !q.packed, "%s without calib",
              need[k]);
        CHECK(strstr(lb_errmsg(), "calibration"), "message: %s", lb_errmsg());
    }
    CHECK(quant("qronos", "int4_g32", &(lb_quantize_opts){.calib = &st.c}, w, rows, n, &q, NULL) == LB_ERR_ARG &&
          strstr(lb_errmsg(), "sequential"), "qronos without Hq: %s", lb_errmsg());
    lb_calib_stats wrong = st.c;
    wrong.n = 64;
    CHECK(quant("awq", "int4_g32", &(lb_quantize_opts){.calib = &wrong}, w, rows, n, &q, NULL) == LB_ERR_ARG &&
          strstr(lb_errmsg(), "another model"), "shape mismatch: %s", lb_errmsg());
    CHECK(quant("rtn", "int4_g32", &(lb_quantize_opts){.calib = &st.c, .scale_rule = LB_SCALE_CEIL}, w, rows, n, &q,
                NULL) == LB_ERR_ARG, "rtn --calib with the ceil rule accepted");
    /* a rotation first: the registry hands rtn R H R^T (sq = its diagonal); awq needs mean |x|, unknown there */
    CHECK(quant("hadamard+rtn", "int4_g32", &(lb_quantize_opts){.calib = &st.c}, w, rows, n, &q, NULL) == LB_OK,
          "hadamard+rtn with calibration: %s", lb_errmsg());
    lb_qmatrix_free(&q);
    stats sq;
    stats_build(&sq, X, X, T, n);
    sq.Hqx[5 * n + 7] = INFINITY;
    CHECK(quant("qronos", "int4_g32", &(lb_quantize_opts){.calib = &sq.c}, w, rows, n, &q, NULL) == LB_ERR_ARG &&
          strstr(lb_errmsg(), "NaN or Inf"), "Inf in Hqx: %s", lb_errmsg());
    stats_free(&sq);
    st.H[2 * n + 9] = NAN;
    CHECK(quant("awq", "int4_g32", &(lb_quantize_opts){.calib = &st.c}, w, rows, n, &q, NULL) == LB_ERR_ARG &&
          strstr(lb_errmsg(), "NaN"), "NaN in H: %s", lb_errmsg());
    st.H[2 * n + 9] = 0;
    st.sq[3] = NAN;
    CHECK(quant("rtn", "int4_g32", &(lb_quantize_opts){.calib = &st.c}, w, rows, n, &q, NULL) == LB_ERR_ARG &&
          strstr(lb_errmsg(), "NaN"), "NaN statistics: %s", lb_errmsg());
    stats_free(&st);
    free(X); free(w);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_uniform_importance);
    RUN(test_weighted_argmin);
    RUN(test_awq);
    RUN(test_awq_gptq);
    RUN(test_qronos);
    RUN(test_qronos_grid);
    RUN(test_bad_input);
    return TEST_DONE();
}
