/* test_forward.c: the forward pass and sampling on small in-memory models
 * with seeded random weights (every architecture switch: MHA/GQA, RoPE
 * interleaved/half, llama3 rope scaling, Qwen2 biases, Qwen3 q/k norm and
 * head_dim != dim/heads, tied/untied output, F32/F16/BF16 weights).
 *  - logits match a straightforward double-precision forward pass written
 *    here independently (|a - b| <= 1e-4 * max(1, max_j |b_j|));
 *  - logits are bit-identical for prefill in one call, token by token, in
 *    uneven chunks, at 1/2/3 threads and on every ISA path;
 *  - sampling: argmax ties, temperature frequencies, nucleus membership. */
#include "harness.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include <unistd.h>

static lb_rng rng;
#include "tmodel.h"

/* ---- independent double-precision reference */

static double wat(const lb_weight *w, int64_t i)
{
    if (w->dtype == LB_DTYPE_F32) return ((const float *)w->data)[i];
    if (w->dtype == LB_DTYPE_F16) return lb_f16_to_f32(((const uint16_t *)w->data)[i]);
    return lb_bf16_to_f32(((const uint16_t *)w->data)[i]);
}

static void dmatvec(const lb_weight *w, const double *x, double *y)
{
    for (int64_t r = 0; r < w->rows; r++) {
        double s = 0;
        for (int64_t c = 0; c < w->cols; c++) s += wat(w, r * w->cols + c) * x[c];
        y[r] = s;
    }
}

static void dnorm(double *x, const lb_weight *w, int64_t n, double eps)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    double sc = 1.0 / sqrt(ss / (double)n + eps);
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * sc * wat(w, i);
}

static double dfreq(const lb_config *c, int64_t i)
{
    double inv = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)c->head_dim);
    if (c->rope_factor <= 0) return inv;
    double wl = 2 * M_PI / inv, lowwl = c->rope_orig_max_pos / c->rope_low_freq_factor;
    double highwl = c->rope_orig_max_pos / c->rope_high_freq_factor;
    if (wl > lowwl) return inv / c->rope_factor;
    if (wl < highwl) return inv;
    double sm = (c->rope_orig_max_pos / wl - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
    return (1 - sm) * inv / c->rope_factor + sm * inv;
}

static void drope(const lb_config *c, double *v, int64_t pos)
{
    int64_t h = c->head_dim / 2;
    for (int64_t i = 0; i < h; i++) {
        double a = pos * dfreq(c, i), cs = cos(a), sn = sin(a);
        int64_t i0 = c->rope_layout == LB_ROPE_HALF ? i : 2 * i, i1 = c->rope_layout == LB_ROPE_HALF ? i + h : 2 * i + 1;
        double x0 = v[i0], x1 = v[i1];
        v[i0] = x0 * cs - x1 * sn;
        v[i1] = x0 * sn + x1 * cs;
    }
}

/* logits [n, vocab] for tokens[0..n) from position 0. */
static void dforward(const lb_model *m, const int32_t *tok, int64_t n, double *logits)
{
    const lb_config *c = &m->cfg;
    int64_t d = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, H = c->hidden_dim;
    double *K = calloc((size_t)(c->n_layers * n * kvd), 8), *V = calloc((size_t)(c->n_layers * n * kvd), 8);
    double *x = calloc((size_t)d, 8), *h = calloc((size_t)d, 8), *q = calloc((size_t)qd, 8), *a = calloc((size_t)qd, 8);
    double *o = calloc((size_t)d, 8), *g = calloc((size_t)H, 8), *u = calloc((size_t)H, 8), *sc = calloc((size_t)n, 8);
    for (int64_t p = 0; p < n; p++) {
        for (int64_t i = 0; i < d; i++) x[i] = wat(&m->tok_embed, tok[p] * d + i);
        for (int64_t l = 0; l < c->n_layers; l++) {
            const lb_layer_weights *L = &m->layers[l];
            double *k = K + (l * n + p) * kvd, *v = V + (l * n + p) * kvd;
            memcpy(h, x, sizeof(double) * (size_t)d);
            dnorm(h, &L->attn_norm, d, c->norm_eps);
            dmatvec(&L->wq, h, q); dmatvec(&L->wk, h, k); dmatvec(&L->wv, h, v);
            if (c->qkv_bias) {
                for (int64_t i = 0; i < qd; i++) q[i] += wat(&L->bq, i);
                for (int64_t i = 0; i < kvd; i++) { k[i] += wat(&L->bk, i); v[i] += wat(&L->bv, i); }
            }
            for (int64_t hh = 0; hh < c->n_heads; hh++) {
                if (c->qk_norm) dnorm(q + hh * hd, &L->q_norm, hd, c->norm_eps);
                drope(c, q + hh * hd, p);
            }
            for (int64_t hh = 0; hh < c->n_kv_heads; hh++) {
                if (c->qk_norm) dnorm(k + hh * hd, &L->k_norm, hd, c->norm_eps);
                drope(c, k + hh * hd, p);
            }
            for (int64_t hh = 0; hh < c->n_heads; hh++) {
                int64_t kh = hh / (c->n_heads / c->n_kv_heads);
                double mx = -1e300, sum = 0;
                for (int64_t t = 0; t <= p; t++) {
                    double s = 0;
                    for (int64_t i = 0; i < hd; i++) s += q[hh * hd + i] * K[(l * n + t) * kvd + kh * hd + i];
                    sc[t] = s / sqrt((double)hd);
                    if (sc[t] > mx) mx = sc[t];
                }
                for (int64_t t = 0; t <= p; t++) sum += (sc[t] = exp(sc[t] - mx));
                for (int64_t i = 0; i < hd; i++) {
                    double s = 0;
                    for (int64_t t = 0; t <= p; t++) s += sc[t] / sum * V[(l * n + t) * kvd + kh * hd + i];
                    a[hh * hd + i] = s;
                }
            }
            dmatvec(&L->wo, a, o);
            for (int64_t i = 0; i < d; i++) x[i] += o[i];
            memcpy(h, x, sizeof(double) * (size_t)d);
            dnorm(h, &L->ffn_norm, d, c->norm_eps);
            dmatvec(&L->w_gate, h, g); dmatvec(&L->w_up, h, u);
            for (int64_t i = 0; i < H; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            dmatvec(&L->w_down, g, o);
            for (int64_t i = 0; i < d; i++) x[i] += o[i];
        }
        memcpy(h, x, sizeof(double) * (size_t)d);
        dnorm(h, &m->final_norm, d, c->norm_eps);
        dmatvec(m->lm_head.data ? &m->lm_head : &m->tok_embed, h, logits + p * c->vocab_size);
    }
    free(K); free(V); free(x); free(h); free(q); free(a); free(o); free(g); free(u); free(sc);
}

/* ---- configurations */

static int64_t ISA_N(void) { return (int64_t)lb_isa_best() + 1; }

/* Run tokens through a fresh session in chunks of `step`; all logits. */
static int run_chunks(const lb_model *m, int th, int64_t max_batch, const int32_t *tok, int64_t n, int64_t step,
                      float *out)
{
    lb_session *s;
    lb_session_opts o = {th, 0, max_batch, NULL};
    if (lb_session_create(m, &o, &s)) return -1;
    int rc = 0;
    for (int64_t i = 0; i < n && !rc; i += step) {
        int64_t k = lb__min64(step, n - i);
        rc = lb_forward_all(s, tok + i, k, out + i * m->cfg.vocab_size) ? -1 : 0;
    }
    lb_session_free(s);
    return rc;
}

static void test_vs_reference_and_identity(void)
{
    for (int v = 0; v < 3; v++) {
        lb_dtype dt;
        lb_config c = variant(v, &dt);
        tmodel t;
        build(&t, c, dt);
        int64_t n = 23, V = c.vocab_size;
        int32_t tok[23];
        for (int i = 0; i < n; i++) tok[i] = (int32_t)(lb_rng_u64(&rng) % (uint64_t)V);
        double *ref = malloc(sizeof(double) * (size_t)(n * V));
        dforward(&t.m, tok, n, ref);
        float *base = malloc(sizeof(float) * (size_t)(n * V)), *got = malloc(sizeof(float) * (size_t)(n * V));
        lb_isa_set(LB_ISA_REF);
        REQUIRE(run_chunks(&t.m, 1, 64, tok, n, n, base) == 0, "session: %s", lb_errmsg());
        double worst = 0;
        for (int64_t p = 0; p < n; p++) {
            double mx = 1;
            for (int64_t i = 0; i < V; i++) mx = fmax(mx, fabs(ref[p * V + i]));
            for (int64_t i = 0; i < V; i++) worst = fmax(worst, fabs(base[p * V + i] - ref[p * V + i]) / mx);
        }
        CHECK(worst <= 1e-4, "variant %d: logits differ from the double reference by %g (relative to max)", v, worst);
        printf("variant %d (%s): max error vs double reference %.2e\n", v, lb_dtype_name(dt), worst);
        for (int isa = 0; isa < ISA_N(); isa++) {
            lb_isa_set((lb_isa)isa);
            static const int64_t steps[] = {23, 1, 5, 7};
            for (int th = 1; th <= 3; th++)
                for (int k = 0; k < 4; k++) {
                    REQUIRE(run_chunks(&t.m, th, k == 3 ? 3 : 64, tok, n, steps[k], got) == 0, "%s", lb_errmsg());
                    CHECK(!memcmp(got, base, sizeof(float) * (size_t)(n * V)),
                          "variant %d isa %s threads %d step %lld: logits not bit-identical", v,
                          lb_isa_name((lb_isa)isa), th, (long long)steps[k]);
                }
        }
        lb_isa_set(lb_isa_best());
        free(ref); free(base); free(got);
        unbuild(&t);
    }
}

static void test_last_logits_and_reset(void)
{
    lb_dtype dt;
    tmodel t;
    lb_config c = variant(1, &dt);
    build(&t, c, dt);
    int64_t V = t.m.cfg.vocab_size;
    int32_t tok[9] = {1, 5, 9, 3, 60, 2, 0, 7, 7};
    float *all = malloc(sizeof(float) * (size_t)(9 * V)), *last = malloc(sizeof(float) * (size_t)V);
    lb_session *s;
    REQUIRE(lb_session_create(&t.m, &(lb_session_opts){2, 12, 4, NULL}, &s) == LB_OK, "%s", lb_errmsg());
    CHECK(lb_forward_all(s, tok, 9, all) == LB_OK, "%s", lb_errmsg());
    CHECK(lb_session_pos(s) == 9, "pos %lld", (long long)lb_session_pos(s));
    lb_session_reset(s);
    CHECK(lb_forward(s, tok, 9, last) == LB_OK, "%s", lb_errmsg());
    CHECK(!memcmp(last, all + 8 * V, sizeof(float) * (size_t)V), "last-token logits differ from all-logits row");
    CHECK(lb_forward(s, tok, 4, last) == LB_ERR_ARG, "context overflow not rejected");
    CHECK(lb_session_pos(s) == 9, "failed call moved the position");
    int32_t badtok = (int32_t)V;
    lb_session_reset(s);
    CHECK(lb_forward(s, &badtok, 1, last) == LB_ERR_ARG, "token outside vocab not rejected");
    lb_session_free(s);
    t.m.layers[1].wk.rows = 3;
    CHECK(lb_session_create(&t.m, NULL, &s) == LB_ERR_FORMAT && !s, "mis-shaped weight not rejected");
    free(all); free(last);
    unbuild(&t);
}

static void test_sampler(void)
{
    lb_sampler *sm;
    float lg[6] = {1, 3, 0.5f, 3, -1, 2};
    REQUIRE(lb_sampler_create(6, &(lb_sampler_opts){0, 1, 1}, &sm) == LB_OK, "%s", lb_errmsg());
    CHECK(lb_sample(sm, lg) == 1, "argmax tie must pick the lowest id");
    lb_sampler_free(sm);
    /* temperature 1: empirical frequencies follow softmax */
    REQUIRE(lb_sampler_create(6, &(lb_sampler_opts){1, 1, TEST_SEED}, &sm) == LB_OK, "%s", lb_errmsg());
    const float src[6] = {1, 3, 0.5f, 3, -1, 2};
    double p[6], z = 0;
    for (int i = 0; i < 6; i++) z += (p[i] = exp(src[i]));
    int cnt[6] = {0}, N = 20000;
    for (int k = 0; k < N; k++) { memcpy(lg, src, sizeof lg); cnt[lb_sample(sm, lg)]++; }
    for (int i = 0; i < 6; i++) {
        double e = N * p[i] / z, sd = sqrt(e * (1 - p[i] / z));
        CHECK(fabs(cnt[i] - e) < 5 * sd + 1, "token %d drawn %d times, expected %.0f", i, cnt[i], e);
    }
    lb_sampler_free(sm);
    /* top-p 0.6: probabilities p1 = p3 = 0.36 → nucleus {1, 3} only */
    REQUIRE(lb_sampler_create(6, &(lb_sampler_opts){1, 0.6f, TEST_SEED}, &sm) == LB_OK, "%s", lb_errmsg());
    int seen1 = 0, seen3 = 0, other = 0;
    for (int k = 0; k < 2000; k++) {
        memcpy(lg, src, sizeof lg);
        int r = lb_sample(sm, lg);
        seen1 += r == 1; seen3 += r == 3; other += r != 1 && r != 3;
    }
    CHECK(!other && seen1 > 800 && seen3 > 800, "nucleus: 1:%d 3:%d other:%d", seen1, seen3, other);
    lb_sampler_free(sm);
    CHECK(lb_sampler_create(6, &(lb_sampler_opts){-1, 1, 0}, &sm) == LB_ERR_ARG, "negative temperature accepted");
    CHECK(lb_sampler_create(6, &(lb_sampler_opts){1, 0, 0}, &sm) == LB_ERR_ARG, "top_p 0 accepted");
}

/* ---- real models against the independent NumPy reference (tests/ref/model_ref.py) */


static void check_real_model(const char *py, const char *path)
{
    lb_model *m;
    REQUIRE(lb_model_load(path, &m) == LB_OK, "%s", lb_errmsg());
    int64_t V = m->cfg.vocab_size, n = 40;
    int32_t tok[40];
    char cmd[4096], out[] = "/tmp/lb_model_ref.XXXXXX";
    int fd = mkstemp(out);
    REQUIRE(fd >= 0, "mkstemp");
    close(fd);
    int k = snprintf(cmd, sizeof cmd, "%s tests/ref/model_ref.py '%s' %s", py, path, out);
    for (int i = 0; i < n; i++) {
        tok[i] = i == 0 ? 1 : (int32_t)(lb_rng_u64(&rng) % (uint64_t)V);
        k += snprintf(cmd + k, sizeof cmd - (size_t)k, " %d", tok[i]);
    }
    float *ref = malloc(sizeof(float) * (size_t)(n * V)), *got = malloc(sizeof(float) * (size_t)(n * V));
    FILE *f = NULL;
    int rc = system(cmd);
    if (rc == 0) f = fopen(out, "rb");
    size_t rd = f ? fread(ref, sizeof(float), (size_t)(n * V), f) : 0;
    if (f) fclose(f);
    remove(out);
    CHECK(rd == (size_t)(n * V), "%s: reference failed (rc %d, %zu values)", path, rc, rd);
    for (int isa = 0; isa < ISA_N() && rd == (size_t)(n * V); isa++)
        for (int th = 1; th <= 2; th++) {
            lb_isa_set((lb_isa)isa);
            REQUIRE(run_chunks(m, th, 16, tok, n, th == 1 ? n : 7, got) == 0, "%s", lb_errmsg());
            double worst = 0;
            for (int64_t p = 0; p < n; p++) {
                double mx = 1;
                for (int64_t i = 0; i < V; i++) mx = fmax(mx, fabs(ref[p * V + i]));
                for (int64_t i = 0; i < V; i++) worst = fmax(worst, fabs(got[p * V + i] - ref[p * V + i]) / mx);
            }
            CHECK(worst <= 1e-4, "%s isa %s threads %d: max error %.3g", path, lb_isa_name((lb_isa)isa), th, worst);
            if (isa == 0 && th == 1) printf("%s: max error vs NumPy reference %.2e\n", path, worst);
        }
    lb_isa_set(lb_isa_best());
    free(ref); free(got);
    lb_model_free(m);
}

static void test_numpy_reference(void)
{
    const char *py = test_find_python();
    if (!py) SKIP("python3 with numpy not found (set LOWBIT_PYTHON); real-model reference check not run");
    char a[1100], b[1024];
    snprintf(a, sizeof a, "%s/stories260K/stories260K.bin", test_models_dir());
    snprintf(b, sizeof b, "%s/tinystories-656k", test_models_dir());
    if (!test_file_exists(a)) SKIP("%s absent", a);
    check_real_model(py, a);
    snprintf(a, sizeof a, "%s/config.json", b);
    if (!test_file_exists(a)) SKIP("%s absent", a);
    check_real_model(py, b);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_vs_reference_and_identity);
    RUN(test_last_logits_and_reset);
    RUN(test_sampler);
    RUN(test_numpy_reference);
    return TEST_DONE();
}
