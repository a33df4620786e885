/* test_dart.c: DartQuant (src/quant/dartquant.c): the Whip loss and its
 * gradient through QR-Orth against an independent Gram-Schmidt loss and
 * central finite differences, training (orthogonality, loss decrease, the
 * Hadamard start, determinism), the method at matrix level, the fused
 * float model against the original, save/load, and refused inputs. */
#include "quant/quant.h"
#include "harness.h"
#include <unistd.h>
static lb_rng rng;
#include "tmodel.h"

/* N rows of n: Laplacian entries, columns 0 and 3 scaled x8 (outlier channels). */
static float *rows_of(int64_t N, int64_t n)
{
    float *x = malloc(sizeof(float) * (size_t)(N * n));
    for (int64_t i = 0; i < N * n; i++) {
        double u = lb_rng_uniform(&rng) - 0.5;
        x[i] = (float)((u < 0 ? 1 : -1) * log(1 - 2 * fabs(u)) * ((i % n == 0 || i % n == 3) ? 8 : 1));
    }
    return x;
}

/* The Whip loss of rows scaled to RMS 1 under Q = Gram-Schmidt of Z's
 * columns (the QR factor with positive diagonal), straight from the
 * definition: (1/N) sum_t sum_i exp(-|(Q x_t)_i|). */
static double whip_ref(const double *Z, const float *x, int64_t N, int64_t n)
{
    double *Q = malloc(sizeof(double) * (size_t)(n * n));
    for (int64_t j = 0; j < n; j++) {
        for (int64_t i = 0; i < n; i++) Q[i * n + j] = Z[i * n + j];
        for (int pass = 0; pass < 2; pass++)
            for (int64_t k = 0; k < j; k++) {
                double d = 0;
                for (int64_t i = 0; i < n; i++) d += Q[i * n + k] * Q[i * n + j];
                for (int64_t i = 0; i < n; i++) Q[i * n + j] -= d * Q[i * n + k];
            }
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += Q[i * n + j] * Q[i * n + j];
        for (int64_t i = 0; i < n; i++) Q[i * n + j] /= sqrt(s);
    }
    double L = 0;
    for (int64_t t = 0; t < N; t++) {
        double ss = 0;
        for (int64_t j = 0; j < n; j++) ss += (double)x[t * n + j] * x[t * n + j];
        double k = sqrt((double)n / ss);
        for (int64_t i = 0; i < n; i++) {
            double y = 0;
            for (int64_t j = 0; j < n; j++) y += Q[i * n + j] * x[t * n + j] * k;
            L += exp(-fabs(y));
        }
    }
    free(Q);
    return L / (double)N;
}

static void test_gradient(void)
{
    const int64_t n = 7, N = 11;
    float *x = rows_of(N, n);
    double Z[49], g[49], L;
    for (int64_t i = 0; i < n * n; i++) Z[i] = (i % (n + 1) == 0) + 0.3 * lb_rng_normal(&rng);
    REQUIRE(!lb__dart_whip(Z, x, N, n, &L, g), "whip: %s", lb_errmsg());
    double ref = whip_ref(Z, x, N, n);
    CHECK(fabs(L - ref) < 1e-12 * ref, "loss %.17g, Gram-Schmidt reference %.17g", L, ref);
    double gmax = 0, emax = 0;
    for (int64_t i = 0; i < n * n; i++) gmax = fmax(gmax, fabs(g[i]));
    for (int64_t i = 0; i < n * n; i++) {
        const double h = 1e-6;
        double z = Z[i], lp, lm;
        Z[i] = z + h;
        lb__dart_whip(Z, x, N, n, &lp, NULL);
        Z[i] = z - h;
        lb__dart_whip(Z, x, N, n, &lm, NULL);
        Z[i] = z;
        emax = fmax(emax, fabs((lp - lm) / (2 * h) - g[i]));
    }
    printf("gradient through QR-Orth vs central differences: max error %.2e (max |g| %.2e)\n", emax, gmax);
    CHECK(gmax > 1e-3 && emax < 1e-6 * gmax, "gradient vs central differences: max error %.3g, max |g| %.3g", emax,
          gmax);
    free(x);
}

static double orth_err(const double *R, int64_t n)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double a = 0, b = 0;
            for (int64_t k = 0; k < n; k++) { a += R[k * n + i] * R[k * n + j]; b += R[i * n + k] * R[j * n + k]; }
            e = fmax(e, fmax(fabs(a - (i == j)), fabs(b - (i == j))));
        }
    return e;
}

static void test_train(void)
{
    const int64_t n = 32, N = 96;
    float *x = rows_of(N, n);
    double *R = malloc(sizeof(double) * n * n), *R2 = malloc(sizeof(double) * n * n), l0, l1, l2, l3;
    lb__dart_opts o = {.iters = 60, .seed = 5};
    REQUIRE(!lb__dart_train(x, N, n, &o, R, &l0, &l1), "train: %s", lb_errmsg());
    CHECK(orth_err(R, n) < 1e-10, "R^T R - I: %.3g", orth_err(R, n));
    CHECK(l1 < 0.97 * l0, "Whip loss %.6f -> %.6f", l0, l1);
    printf("training n=%d N=%d: Whip loss %.4f -> %.4f, |R^T R - I| %.2e\n", (int)n, (int)N, l0, l1, orth_err(R, n));
    /* the start is the randomized Hadamard of hadamard+rtn (seed 5): its loss from the float transform */
    float *y = malloc(sizeof(float) * N * n);
    int8_t sg[32];
    lb_hadamard_plan p;
    REQUIRE(!lb_hadamard_plan_for(n, 0, &p) && !lb_hadamard_signs(5, n, sg), "plan");
    double Lh = 0;
    for (int64_t t = 0; t < N; t++) {
        double ss = 0;
        for (int64_t j = 0; j < n; j++) ss += (double)x[t * n + j] * x[t * n + j];
        for (int64_t j = 0; j < n; j++) y[t * n + j] = (float)(x[t * n + j] * sqrt(n / ss));
    }
    lb_hadamard_rows(y, N, n, p.block, sg, 0);
    for (int64_t i = 0; i < N * n; i++) Lh += exp(-fabs((double)y[i]));
    Lh /= (double)N;
    CHECK(fabs(l0 - Lh) < 1e-5 * Lh, "start loss %.8f, Hadamard's %.8f", l0, Lh);
    REQUIRE(!lb__dart_train(x, N, n, &o, R2, &l2, &l3), "train: %s", lb_errmsg());
    CHECK(!memcmp(R, R2, sizeof(double) * n * n) && l3 == l1, "two runs differ");
    free(x); free(y); free(R); free(R2);
}

static void test_matrix(void)
{
    const int64_t rows = 24, cols = 64, N = 80;
    float *x = rows_of(N, cols), *w = malloc(sizeof(float) * rows * cols), *d = malloc(sizeof(float) * rows * cols);
    for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)lb_rng_normal(&rng);
    lb_calib_stats st = {.n = cols, .n_tokens = N, .rows = x, .n_rows = N};
    lb_quantize_opts o = {.calib = &st, .seed = 3};
    const lb_quantizer *q = lb_quantizer_find("dartquant");
    lb_qmatrix m;
    REQUIRE(q && lb_quantizer_needs_calib(q), "registry row");
    REQUIRE(!lb_quantize_matrix(q, lb_format_find("int8_g32"), &o, w, rows, cols, &m), "quantize: %s", lb_errmsg());
    CHECK(m.rotation && m.whip_after < m.whip_before, "rotation %p, whip %.4f -> %.4f", (void *)m.rotation,
          m.whip_before, m.whip_after);
    REQUIRE(!lb_qmatrix_dequantize(&m, d), "dequantize: %s", lb_errmsg());
    double se = 0, sw = 0;
    for (int64_t i = 0; i < rows * cols; i++) { se += (d[i] - w[i]) * (d[i] - w[i]); sw += w[i] * w[i]; }
    CHECK(sqrt(se / sw) < 0.01, "int8 relative error %.4g after undoing the rotation", sqrt(se / sw));
    lb_qmatrix_free(&m);
    st.rows = NULL; st.n_rows = 0;
    CHECK(lb_quantize_matrix(q, lb_format_find("int8_g32"), &o, w, rows, cols, &m) == LB_ERR_ARG &&
          strstr(lb_errmsg(), "--calib-text"), "no rows: %s", lb_errmsg());
    CHECK(lb_quantize_matrix(q, lb_format_find("int8_g32"), NULL, w, rows, cols, &m) == LB_ERR_ARG &&
          strstr(lb_errmsg(), "calibration"), "no calibration: %s", lb_errmsg());
    free(x); free(w); free(d);
}

static void test_model(void)
{
    tmodel t;
    lb_dtype dt;
    lb_config c = variant(0, &dt);   /* the F32 llama */
    c.dim = 64; c.hidden_dim = 96; c.n_heads = 8; c.n_kv_heads = 4; c.head_dim = 8; c.max_seq = 64;
    build(&t, c, dt);
    int32_t tok[256];
    for (int i = 0; i < 256; i++) tok[i] = (int32_t)((uint64_t)(lb_rng_uniform(&rng) * c.vocab_size));
    lb_model_quant_opts o = {.format = "f32", .method = "dartquant", .n_threads = 2, .calib_tokens = tok,
                             .n_calib_tokens = 256, .calib_ctx = 32, .q = {.seed = 7}};
    lb_model *f = NULL, *q = NULL, *r = NULL;
    REQUIRE(!lb_model_quantize(&t.m, &o, &f, NULL), "quantize f32: %s", lb_errmsg());
    const lb_weight *wq = &f->layers[1].wq, *wd = &f->layers[1].w_down;
    CHECK(wq->n_in == 1 && wq->in[0].kind == LB_XFORM_ROTATION && wd->n_in == 1 && wd->in[0].rot != NULL,
          "transforms %d %d", wq->n_in, wd->n_in);
    float a[67], b[67], e[67];
    REQUIRE(!test_decode_logits(&t.m, 1, tok, 9, a) && !test_decode_logits(f, 1, tok, 9, b), "forward: %s", lb_errmsg());
    double dmax = 0, amax = 0;
    for (int i = 0; i < c.vocab_size; i++) { dmax = fmax(dmax, fabs(a[i] - b[i])); amax = fmax(amax, fabs(a[i])); }
    printf("fused float model vs original: max |dlogit| %.2e (max |logit| %.2e)\n", dmax, amax);
    CHECK(dmax <= 2e-5 * amax, "fused float model vs original: max |dlogit| %.3g (max |logit| %.3g)", dmax, amax);
    /* W4A4 with the learned rotation: save/load bit-exact, threads do not matter */
    o.format = "int4_g32";
    REQUIRE(!lb_model_quantize(&t.m, &o, &q, NULL), "quantize int4: %s", lb_errmsg());
    REQUIRE(!lb_model_set_act(q, "int4", NULL), "act: %s", lb_errmsg());
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_dart_%d.safetensors", (int)getpid());
    REQUIRE(!lb_model_save(q, path), "save: %s", lb_errmsg());
    lb_status ls = lb_model_load(path, &r);
    unlink(path);
    REQUIRE(!ls, "load: %s", lb_errmsg());
    CHECK(!strcmp(lb_model_act(r), "int4_g32"), "act %s", lb_model_act(r));
    CHECK(r->layers[0].w_up.n_in == 1 && !memcmp(r->layers[0].w_up.in[0].rot, q->layers[0].w_up.in[0].rot,
                                                 sizeof(float) * 64 * 64), "rotation read back differs");
    REQUIRE(!test_decode_logits(q, 1, tok, 9, a) && !test_decode_logits(r, 1, tok, 9, b) && !test_decode_logits(r, 2, tok, 9, e), "forward");
    CHECK(!memcmp(a, b, sizeof a) && !memcmp(a, e, sizeof a), "logits after save/load or at 2 threads differ");
    /* refused: no calibration, statistics without activation rows */
    lb_model *x = NULL;
    o.calib_tokens = NULL; o.n_calib_tokens = 0;
    CHECK(lb_model_quantize(&t.m, &o, &x, NULL) == LB_ERR_ARG && !x && strstr(lb_errmsg(), "dartquant"),
          "no calibration: %s", lb_errmsg());
    lb_calib *k = NULL;
    REQUIRE(!lb_calib_collect(&t.m, tok, 64, &(lb_calib_opts){.ctx = 32}, &k), "collect: %s", lb_errmsg());
    o.calib = k;
    CHECK(lb_model_quantize(&t.m, &o, &x, NULL) == LB_ERR_ARG && !x && strstr(lb_errmsg(), "--calib-text"),
          "statistics file: %s", lb_errmsg());
    lb_calib_free(k);
    lb_model_free(f); lb_model_free(q); lb_model_free(r);
    unbuild(&t);
}

/* QuaRot: the rotated float model computes the same logits (F32 llama and
 * the Qwen2-like variant with biases, untied, BF16 weights), survives
 * save/load, quantizes; a dim without a Hadamard plan and a quantized
 * model are refused. */
static void test_quarot(void)
{
    for (int v = 0; v < 3; v++) {
        tmodel t;
        lb_dtype dt;
        lb_config c = variant(v, &dt);
        build(&t, c, dt);
        int32_t tok[9] = {1, 5, 9, 22, 3, 40, 7, 61, 13};
        lb_model *r = NULL, *q = NULL, *x = NULL;
        lb_status s = lb_model_quarot(&t.m, 11, &r);
        if (v == 2) {   /* dim 33: no Hadamard plan */
            CHECK(s == LB_ERR_ARG && !r && strstr(lb_errmsg(), "quarot"), "dim 33: %s", lb_errmsg());
            unbuild(&t);
            continue;
        }
        REQUIRE(!s, "quarot: %s", lb_errmsg());
        CHECK(!r->cfg.tied_embeddings && r->final_norm.rep && r->layers[0].attn_norm.rep, "untied, norms set");
        float a[67], b[67], e[67];
        REQUIRE(!test_decode_logits(&t.m, 1, tok, 9, a) && !test_decode_logits(r, 1, tok, 9, b), "forward: %s", lb_errmsg());
        double dmax = 0, amax = 0;
        for (int i = 0; i < c.vocab_size; i++) { dmax = fmax(dmax, fabs(a[i] - b[i])); amax = fmax(amax, fabs(a[i])); }
        printf("quarot variant %d: max |dlogit| %.2e (max |logit| %.2e)\n", v, dmax, amax);
        CHECK(dmax <= 2e-5 * amax, "variant %d: rotated model vs original: %.3g (max %.3g)", v, dmax, amax);
        float w0[48 * 48];
        REQUIRE(!lb_model_weight_f32(r, "model.layers.0.self_attn.o_proj.weight", w0, NULL, NULL), "o_proj");
        float w1[48 * 48];
        lb_model_weight_f32(&t.m, "model.layers.0.self_attn.o_proj.weight", w1, NULL, NULL);
        CHECK(memcmp(w0, w1, sizeof w0) != 0, "o_proj unchanged: the stream was not rotated");
        char path[64];
        snprintf(path, sizeof path, "/tmp/test_quarot_%d.safetensors", (int)getpid());
        REQUIRE(!lb_model_save(r, path), "save: %s", lb_errmsg());
        s = lb_model_load(path, &q);
        unlink(path);
        REQUIRE(!s, "load: %s", lb_errmsg());
        REQUIRE(!test_decode_logits(q, 1, tok, 9, e), "forward");
        CHECK(!memcmp(b, e, sizeof b), "variant %d: logits after save/load differ", v);
        lb_model_quant_opts o = {.format = "int8_g32", .n_threads = 1};
        lb_model_free(q);
        REQUIRE(!lb_model_quantize(r, &o, &q, NULL), "quantize: %s", lb_errmsg());
        CHECK(lb_model_quarot(q, 1, &x) == LB_ERR_UNSUPPORTED && !x, "quantized input: %s", lb_errmsg());
        lb_model_free(q); lb_model_free(r);
        unbuild(&t);
    }
}

/* The online rotation x <- R x (lb__xform_apply): each output the double sum
 * over j in order of R[i][j] x[j], rounded once to float, restated here; bit
 * for bit at sizes with and without a tail of rows (8 per pass), several tokens. */
static void test_rotation_apply(void)
{
    static const int64_t sizes[] = {1, 7, 8, 37, 64, 129};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        int64_t n = sizes[si], nt = 3;
        float *R = rows_of(n, n), *x = rows_of(nt, n), *want = malloc(sizeof(float) * (size_t)(nt * n));
        for (int64_t t = 0; t < nt; t++)
            for (int64_t i = 0; i < n; i++) {
                double a = 0;
                for (int64_t j = 0; j < n; j++) a = a + (double)R[i * n + j] * (double)x[t * n + j];
                want[t * n + i] = (float)a;
            }
        lb_xform r = {.kind = LB_XFORM_ROTATION, .rot = R};
        lb__xform_apply(&r, x, nt, n);
        CHECK(!memcmp(x, want, sizeof(float) * (size_t)(nt * n)), "rotation of %lld inputs differs from the double "
              "sums", (long long)n);
        free(R); free(x); free(want);
    }
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_gradient);
    RUN(test_train);
    RUN(test_matrix);
    RUN(test_model);
    RUN(test_quarot);
    RUN(test_rotation_apply);
    return TEST_DONE();
}
