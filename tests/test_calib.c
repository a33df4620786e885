/* test_calib.c: the calibration stage (src/calib) and its use by model-level
 * quantization. References:
 *   - statistics: every linear input captured by the forward pass's tap
 *     during plain lb_forward calls (one per sequence), then H, mean x^2,
 *     mean |x|, max |x| computed here with naive loops; the tap itself is
 *     checked against RMSNorm(embedding) * attn_norm computed from the
 *     weights for layer 0;
 *   - sequential mode: the model with layer 0 quantized by rtn (layer 1
 *     kept through --keep) run with lb_forward, its layer-1 inputs against
 *     the float model's, Hq / Hqx computed here;
 *   - mapping: a test-only quantizer records the statistics each matrix
 *     receives; they must be the ones of its (layer, site);
 *   - file: save -> load bit for bit; another model, another shape,
 *     truncated and corrupted files refused;
 *   - thread counts 1 vs 2 and the reference vs AVX2 accumulation: same bits.
 * Real models from ../shared/models (SKIP when absent), few tokens. */
#include "harness.h"
#include "calib/calib.h"
#include "quant/quant.h"
#include <sys/stat.h>
#include <unistd.h>

static lb_rng rng;
#include "tmodel.h"

static char *model_path(const char *rel)
{
    static char p[4][1024];
    static int k;
    char *s = p[k++ & 3];
    snprintf(s, 1024, "%s/%s", test_models_dir(), rel);
    return s;
}

static lb_model *load(const char *rel)
{
    struct stat st;
    lb_model *m = NULL;
    if (stat(model_path(rel), &st) != 0) return NULL;
    if (lb_model_load(model_path(rel), &m)) { fprintf(stderr, "load %s: %s\n", rel, lb_errmsg()); return NULL; }
    return m;
}

static const char *models[2] = {"stories260K/stories260K.bin", "tinystories-656k"};
static const char *site_lin[LB_SITE_COUNT] = {"self_attn.k_proj", "self_attn.o_proj", "mlp.up_proj", "mlp.down_proj"};

static int32_t *random_tokens(int64_t n, int64_t vocab)
{
    int32_t *t = malloc(sizeof *t * (size_t)n);
    for (int64_t i = 0; i < n; i++) t[i] = (int32_t)(lb_rng_u64(&rng) % (uint64_t)vocab);
    return t;
}

/* ---- raw inputs through the tap of plain forward passes */

typedef struct capture {
    int64_t n_layers, n_tok, width[LB_SITE_COUNT];
    float *x[64][LB_SITE_COUNT];   /* (n_tok, width) per layer and site */
    int64_t rows[64][LB_SITE_COUNT];
} capture;

static void cap_tap(void *user, int64_t l, lb_site k, const float *x, int64_t nt, int64_t cols)
{
    capture *c = user;
    memcpy(c->x[l][k] + c->rows[l][k] * cols, x, sizeof(float) * (size_t)(nt * cols));
    c->rows[l][k] += nt;
}

/* Inputs of every site for tokens cut into sequences of ctx, each from position 0. */
static int capture_inputs(const lb_model *m, const int32_t *tok, int64_t n, int64_t ctx, capture *c)
{
    memset(c, 0, sizeof *c);
    c->n_layers = m->cfg.n_layers;
    c->n_tok = n;
    lb__calib_site_dims(&m->cfg, c->width);
    for (int64_t l = 0; l < c->n_layers; l++)
        for (int k = 0; k < LB_SITE_COUNT; k++) c->x[l][k] = malloc(sizeof(float) * (size_t)(n * c->width[k]));
    lb_session *s;
    lb_session_opts so = {.n_threads = 1, .max_ctx = ctx, .max_batch = 16};
    if (lb_session_create(m, &so, &s)) return 1;
    lb__session_tap(s, cap_tap, c);
    int rc = 0;
    for (int64_t i = 0; i < n && !rc; i += ctx) {
        lb_session_reset(s);
        rc = lb_forward(s, tok + i, lb__min64(ctx, n - i), NULL) != LB_OK;
    }
    lb_session_free(s);
    return rc;
}

static void capture_free(capture *c)
{
    for (int64_t l = 0; l < c->n_layers; l++)
        for (int k = 0; k < LB_SITE_COUNT; k++) free(c->x[l][k]);
}

/* M[i][j] = sum_t a[t][i] b[t][j] / N, naive. */
static double *naive_gram(const float *a, const float *b, int64_t n, int64_t N)
{
    double *M = malloc(sizeof(double) * (size_t)(n * n));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t t = 0; t < N; t++) s += (double)a[t * n + i] * (double)b[t * n + j];
            M[i * n + j] = s / (double)N;
        }
    return M;
}

static int64_t count_diff(const double *a, const double *b, int64_t n)
{
    int64_t d = 0;
    for (int64_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], sizeof(double)) != 0;
    return d;
}

static void check_site(const char *what, const lb_calib_stats *st, const float *x, int64_t n, int64_t N)
{
    double *H = naive_gram(x, x, n, N), *sq = calloc((size_t)n, 8), *ab = calloc((size_t)n, 8), *mx = calloc((size_t)n, 8);
    for (int64_t t = 0; t < N; t++)
        for (int64_t j = 0; j < n; j++) {
            double v = x[t * n + j];
            sq[j] += v * v; ab[j] += fabs(v); if (fabs(v) > mx[j]) mx[j] = fabs(v);
        }
    for (int64_t j = 0; j < n; j++) { sq[j] /= (double)N; ab[j] /= (double)N; }
    CHECK(st->n == n && st->n_tokens == N, "%s: n %lld tokens %lld", what, (long long)st->n, (long long)st->n_tokens);
    CHECK(count_diff(st->H, H, n * n) == 0, "%s: H differs in %lld of %lld entries", what,
          (long long)count_diff(st->H, H, n * n), (long long)(n * n));
    CHECK(count_diff(st->sq, sq, n) == 0 && count_diff(st->abs, ab, n) == 0 && count_diff(st->amax, mx, n) == 0,
          "%s: column statistics differ", what);
    CHECK(!st->Hq && !st->Hqx, "%s: Hq/Hqx set without sequential mode", what);
    free(H); free(sq); free(ab); free(mx);
}

/* Layer 0's q/k/v input is RMSNorm(embedding) * attn_norm: recompute it from the weights. */
static void check_tap_layer0(const lb_model *m, const int32_t *tok, const capture *c)
{
    int64_t d = m->cfg.dim;
    float *e = malloc(sizeof(float) * (size_t)d), *g = malloc(sizeof(float) * (size_t)d);
    lb__weight_f32(&m->layers[0].attn_norm, g);
    double worst = 0;
    for (int64_t t = 0; t < c->n_tok; t++) {
        lb__weight_row(&m->tok_embed, tok[t], e);
        double ss = 0;
        for (int64_t j = 0; j < d; j++) ss += (double)e[j] * e[j];
        double r = 1.0 / sqrt(ss / (double)d + m->cfg.norm_eps);
        for (int64_t j = 0; j < d; j++) {
            double want = e[j] * r * g[j], got = c->x[0][LB_SITE_QKV][t * d + j];
            worst = fmax(worst, fabs(got - want) / (fabs(want) + 1e-3));
        }
    }
    CHECK(worst < 1e-5, "layer 0 q/k/v input differs from RMSNorm(embedding) * attn_norm by %.3g", worst);
    free(e); free(g);
}

static void check_model_stats(const lb_model *m, const char *label)
{
    int64_t n = 150, ctx = lb__min64(64, m->cfg.max_seq);   /* sequences of 64, 64 and 22 */
    int32_t *tok = random_tokens(n, m->cfg.vocab_size);
    lb_calib *c = NULL;
    lb_calib_opts o = {.ctx = ctx, .n_threads = 2};
    lb_status s = lb_calib_collect(m, tok, n, &o, &c);
    capture cap;
    int rc = capture_inputs(m, tok, n, ctx, &cap);
    CHECK(s == LB_OK && rc == 0, "%s: collect %d (%s), capture %d", label, s, lb_errmsg(), rc);
    if (s == LB_OK && rc == 0) {
        check_tap_layer0(m, tok, &cap);
        for (int64_t l = 0; l < m->cfg.n_layers; l++)
            for (int k = 0; k < LB_SITE_COUNT; k++) {
                char name[96], what[160];
                snprintf(name, sizeof name, "model.layers.%lld.%s.weight", (long long)l, site_lin[k]);
                snprintf(what, sizeof what, "%s %s", label, name);
                lb_calib_stats st;
                CHECK(cap.rows[l][k] == n, "%s: captured %lld rows", what, (long long)cap.rows[l][k]);
                CHECK(lb_calib_stats_for(c, name, &st) == LB_OK, "%s: %s", what, lb_errmsg());
                check_site(what, &st, cap.x[l][k], cap.width[k], n);
            }
        lb_calib_stats st;
        CHECK(lb_calib_stats_for(c, "model.layers.0.input_layernorm.weight", &st) == LB_ERR_NOTFOUND, "norm has no stats");
        CHECK(lb_calib_stats_for(c, "model.layers.99.mlp.up_proj.weight", &st) == LB_ERR_NOTFOUND, "layer 99");
    }
    capture_free(&cap);
    lb_calib_free(c);
    free(tok);
}

static void test_stats_direct(void)
{
    /* seeded models first: GQA + biases (Qwen2-like), q/k norms with q_dim 48 != dim 33 (Qwen3-like) */
    for (int v = 1; v <= 2; v++) {
        lb_dtype dt;
        tmodel t;
        lb_config cfg = variant(v, &dt);
        build(&t, cfg, dt);
        t.m.cfg.max_seq = 64;
        char label[32];
        snprintf(label, sizeof label, "seeded variant %d", v);
        check_model_stats(&t.m, label);
        unbuild(&t);
    }
    int tested = 0;
    for (int mi = 0; mi < 2; mi++) {
        lb_model *m = load(models[mi]);
        if (!m) continue;
        tested++;
        check_model_stats(m, models[mi]);
        lb_model_free(m);
    }
    if (!tested) SKIP("no models in %s (the seeded models passed)", test_models_dir());
}

/* ---- thread counts and ISA paths */

static bool same_calib(const lb_calib *a, const lb_calib *b)
{
    if (a->n_layers != b->n_layers || a->n_tokens != b->n_tokens || a->sequential != b->sequential) return false;
    for (int64_t i = 0; i < a->n_layers * LB_SITE_COUNT; i++) {
        const lb__calib_site *x = &a->sites[i], *y = &b->sites[i];
        int64_t n = x->n;
        if (x->n != y->n || count_diff(x->H, y->H, n * n) || count_diff(x->sq, y->sq, n) ||
            count_diff(x->abs, y->abs, n) || count_diff(x->amax, y->amax, n))
            return false;
        if (!x->Hq != !y->Hq || (x->Hq && (count_diff(x->Hq, y->Hq, n * n) || count_diff(x->Hqx, y->Hqx, n * n))))
            return false;
    }
    return true;
}

static void test_threads_isa(void)
{
    lb_model *m = load("tinystories-656k");
    if (!m) SKIP("no tinystories-656k");
    int64_t n = 200;
    int32_t *tok = random_tokens(n, m->cfg.vocab_size);
    lb_calib *c1 = NULL, *c2 = NULL, *cr = NULL;
    lb_calib_opts o1 = {.ctx = 100, .n_threads = 1}, o2 = {.ctx = 100, .n_threads = 2};
    CHECK(lb_calib_collect(m, tok, n, &o1, &c1) == LB_OK, "%s", lb_errmsg());
    CHECK(lb_calib_collect(m, tok, n, &o2, &c2) == LB_OK, "%s", lb_errmsg());
    lb_isa was = lb_isa_set(LB_ISA_REF);
    CHECK(lb_calib_collect(m, tok, n, &o2, &cr) == LB_OK, "%s", lb_errmsg());
    lb_isa_set(was);
    if (c1 && c2 && cr) {
        CHECK(same_calib(c1, c2), "1 and 2 threads give different statistics");
        /* the reference path runs the whole forward pass on reference kernels, whose
         * products are bit-identical by the kernels' contract: same statistics */
        CHECK(same_calib(c1, cr), "reference ISA gives different statistics");
    }
    lb_calib_free(c1); lb_calib_free(c2); lb_calib_free(cr);
    free(tok);
    lb_model_free(m);
    /* the accumulation kernels directly, at awkward widths */
    if (lb_isa_best() < LB_ISA_AVX2) return;
    int64_t ns[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 33, 100};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        int64_t w = ns[k], T = 1 + (int64_t)(lb_rng_u64(&rng) % 40);
        double *a = malloc(sizeof(double) * (size_t)(T * w)), *b = malloc(sizeof(double) * (size_t)(T * w));
        for (int64_t i = 0; i < T * w; i++) { a[i] = (float)lb_rng_normal(&rng) * 3; b[i] = (float)lb_rng_normal(&rng); }
        double *M1 = malloc(sizeof(double) * (size_t)(w * w)), *M2 = malloc(sizeof(double) * (size_t)(w * w));
        for (int64_t i = 0; i < w * w; i++) M1[i] = M2[i] = lb_rng_normal(&rng);
        for (int64_t i0 = 0; i0 < w; i0 += 4) {
            int64_t nr = w - i0 < 4 ? w - i0 : 4, j0 = (i0 / 4) % 2 ? i0 : 0;
            lb__calib_acc_rows_ref(M1, a, b, w, T, i0, nr, j0);
            lb__calib_acc_rows_avx2(M2, a, b, w, T, i0, nr, j0);
        }
        CHECK(count_diff(M1, M2, w * w) == 0, "AVX2 accumulation differs from the reference at n %lld T %lld",
              (long long)w, (long long)T);
        free(a); free(b); free(M1); free(M2);
    }
}

/* ---- the file */

static char tmpdir[256];

static void test_file(void)
{
    lb_model *m = load("tinystories-656k"), *other = load("stories260K/stories260K.bin");
    if (!m) { lb_model_free(other); SKIP("no tinystories-656k"); }
    int64_t n = 96;
    int32_t *tok = random_tokens(n, m->cfg.vocab_size);
    lb_calib *c = NULL, *back = NULL;
    lb_calib_opts o = {.ctx = 48, .n_threads = 2, .text = "some.txt", .text_begin = 10, .text_end = 999};
    REQUIRE(lb_calib_collect(m, tok, n, &o, &c) == LB_OK, "%s", lb_errmsg());
    char path[512];
    snprintf(path, sizeof path, "%s/stats.safetensors", tmpdir);
    CHECK(lb_calib_save(c, path) == LB_OK, "save: %s", lb_errmsg());
    CHECK(lb_calib_load(path, m, &back) == LB_OK, "load: %s", lb_errmsg());
    if (back) {
        CHECK(same_calib(c, back), "save -> load changed the statistics");
        lb_calib_info a, b;
        lb_calib_get_info(c, &a);
        lb_calib_get_info(back, &b);
        CHECK(b.text_begin == 10 && b.text_end == 999 && !strcmp(b.text, "some.txt") && b.ctx == 48 &&
              b.n_tokens == n && !strcmp(a.model, b.model) && a.bytes == b.bytes, "metadata: %s %lld %lld", b.text,
              (long long)b.text_begin, (long long)b.text_end);
    }
    lb_calib_free(back); back = NULL;
    if (other) {
        lb_status s = lb_calib_load(path, other, &back);
        CHECK(s == LB_ERR_ARG && strstr(lb_errmsg(), path) && strstr(lb_errmsg(), "shape"), "other shape: %d %s", s,
              lb_errmsg());
        CHECK(!back, "a refused load returns nothing");
    }
    /* same shape, other weights */
    tmodel ta, tb;
    lb_config cfg = base_cfg();
    build(&ta, cfg, LB_DTYPE_F32);
    build(&tb, cfg, LB_DTYPE_F32);
    lb_calib *ca = NULL;
    lb_calib_opts ot = {.ctx = 20, .n_threads = 1};
    int32_t *tt = random_tokens(30, cfg.vocab_size);
    char p2[512];
    snprintf(p2, sizeof p2, "%s/tiny.safetensors", tmpdir);
    CHECK(lb_calib_collect(&ta.m, tt, 30, &ot, &ca) == LB_OK && lb_calib_save(ca, p2) == LB_OK, "%s", lb_errmsg());
    CHECK(lb_calib_load(p2, &ta.m, &back) == LB_OK, "same model: %s", lb_errmsg());
    lb_calib_free(back); back = NULL;
    lb_status s = lb_calib_load(p2, &tb.m, &back);
    CHECK(s == LB_ERR_ARG && strstr(lb_errmsg(), "another model"), "other weights: %d %s", s, lb_errmsg());
    lb_calib_free(ca);
    free(tt);
    unbuild(&ta); unbuild(&tb);
    /* truncated, corrupted, not a statistics file */
    uint8_t *buf = NULL;
    size_t size = 0;
    FILE *f = fopen(path, "rb");
    if (f) { fseek(f, 0, SEEK_END); size = (size_t)ftell(f); fseek(f, 0, SEEK_SET); buf = malloc(size); size = fread(buf, 1, size, f); fclose(f); }
    REQUIRE(buf && size > 1000, "read back %s", path);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.safetensors", tmpdir);
    size_t cuts[] = {0, 7, 100, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        f = fopen(bad, "wb"); fwrite(buf, 1, cuts[i], f); fclose(f);
        s = lb_calib_load(bad, m, &back);
        CHECK(s != LB_OK && !back && strstr(lb_errmsg(), bad), "truncated at %zu: %d %s", cuts[i], s, lb_errmsg());
    }
    /* a NaN in the last tensor's data (the last 8 bytes) */
    uint64_t nan_bits = UINT64_C(0x7ff8000000000000);
    memcpy(buf + size - 8, &nan_bits, 8);
    f = fopen(bad, "wb"); fwrite(buf, 1, size, f); fclose(f);
    s = lb_calib_load(bad, m, &back);
    CHECK(s == LB_ERR_FORMAT && strstr(lb_errmsg(), "non-finite"), "NaN in a tensor: %d %s", s, lb_errmsg());
    s = lb_calib_load(model_path("tinystories-656k/model.safetensors"), m, &back);
    CHECK(s == LB_ERR_FORMAT && strstr(lb_errmsg(), "not a lowbit calibration"), "a model file: %d %s", s, lb_errmsg());
    free(buf);
    unlink(bad); unlink(path); unlink(p2);
    lb_calib_free(c);
    free(tok);
    lb_model_free(m);
    lb_model_free(other);
}

/* ---- bad activations */

static void test_nonfinite(void)
{
    tmodel t;
    lb_config cfg = base_cfg();
    build(&t, cfg, LB_DTYPE_F32);
    ((float *)t.m.layers[1].w_up.data)[5] = NAN;   /* row 0, col 5: up output 0 NaN -> layer 1's down input */
    int32_t *tok = random_tokens(30, cfg.vocab_size);
    lb_calib *c = NULL;
    lb_calib_opts o = {.ctx = 30, .n_threads = 1};
    lb_status s = lb_calib_collect(&t.m, tok, 30, &o, &c);
    CHECK(s == LB_ERR_ARG && strstr(lb_errmsg(), "layer 1, site down") && strstr(lb_errmsg(), "NaN") && !c,
          "NaN activation: %d %s", s, lb_errmsg());
    free(tok);
    unbuild(&t);
}

/* ---- what model_quant hands each matrix */

#define MAX_REC 64
typedef struct rec {
    int64_t rows, cols;
    float w[4];
    lb_calib_stats st;           /* pointers as received */
    double *H, *Hq, *Hqx, *sq;   /* copies (the runner reuses its buffers) */
} rec;
static rec recs[MAX_REC];
static int n_recs;

static double *dup_d(const double *p, int64_t n)
{
    if (!p) return NULL;
    double *d = malloc(sizeof(double) * (size_t)n);
    memcpy(d, p, sizeof(double) * (size_t)n);
    return d;
}

static lb_status probe_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out)
{
    if (n_recs < MAX_REC && o->calib) {
        rec *r = &recs[n_recs++];
        int64_t n = o->calib->n;
        *r = (rec){.rows = out->rows, .cols = out->cols, .st = *o->calib};
        memcpy(r->w, w, sizeof r->w);
        r->H = dup_d(o->calib->H, n * n); r->Hq = dup_d(o->calib->Hq, n * n);
        r->Hqx = dup_d(o->calib->Hqx, n * n); r->sq = dup_d(o->calib->sq, n);
    }
    return lb__rtn_quantize(o, w, out);
}

static const lb_quantizer probe = {.name = "probe", .desc = "records its calibration statistics, then rtn",
                                   .calib = true, .quantize = probe_quantize};
static const lb_quantizer probe_seq = {.name = "probe-seq", .desc = "as probe, sequential", .calib = true,
                                       .sequential = true, .quantize = probe_quantize};

static void recs_free(void)
{
    for (int i = 0; i < n_recs; i++) { free(recs[i].H); free(recs[i].Hq); free(recs[i].Hqx); free(recs[i].sq); }
    n_recs = 0;
}

/* The record of the matrix `name` of m (matched by shape and first values). */
static const rec *find_rec(const lb_model *m, const char *name)
{
    int64_t r, c;
    if (lb_model_weight_f32(m, name, NULL, &r, &c)) return NULL;
    float *w = malloc(sizeof(float) * (size_t)(r * c));
    lb_model_weight_f32(m, name, w, NULL, NULL);
    const rec *hit = NULL;
    for (int i = 0; i < n_recs; i++)
        if (recs[i].rows == r && recs[i].cols == c && !memcmp(recs[i].w, w, sizeof recs[i].w)) hit = &recs[i];
    free(w);
    return hit;
}

static const char *all_lin[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                 "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

static void test_mapping(void)
{
    lb_model *m = load("tinystories-656k");
    if (!m) SKIP("no tinystories-656k");
    int64_t n = 120;
    int32_t *tok = random_tokens(n, m->cfg.vocab_size);
    lb_calib *c = NULL;
    lb_calib_opts co = {.ctx = 64, .n_threads = 2};
    REQUIRE(lb_calib_collect(m, tok, n, &co, &c) == LB_OK, "%s", lb_errmsg());
    lb_model_quant_opts o = {.format = "int4_g32", .method = "rtn", .n_threads = 1};
    lb_model *q = NULL;
    /* a method that needs statistics, without any: one error, no model */
    lb_status s = lb__model_quantize_with(m, &o, &probe, &q, NULL);
    CHECK(s == LB_ERR_ARG && !q && strstr(lb_errmsg(), "needs calibration statistics"), "%d %s", s, lb_errmsg());
    for (int pass = 0; pass < 2; pass++) {   /* 0: loaded statistics, 1: collected on the fly */
        o.calib = pass ? NULL : c;
        o.calib_tokens = pass ? tok : NULL;
        o.n_calib_tokens = pass ? n : 0;
        o.calib_ctx = 64;
        s = lb__model_quantize_with(m, &o, &probe, &q, NULL);
        CHECK(s == LB_OK, "pass %d: %s", pass, lb_errmsg());
        CHECK(n_recs == 7 * m->cfg.n_layers, "pass %d: %d matrices got statistics", pass, n_recs);
        for (int64_t l = 0; l < m->cfg.n_layers; l++)
            for (int k = 0; k < 7; k++) {
                char name[96];
                snprintf(name, sizeof name, "model.layers.%lld.%s.weight", (long long)l, all_lin[k]);
                const rec *r = find_rec(m, name);
                lb_calib_stats want;
                lb_calib_stats_for(c, name, &want);
                CHECK(r, "pass %d: %s not seen", pass, name);
                if (!r) continue;
                if (!pass) CHECK(r->st.H == want.H && r->st.sq == want.sq && r->st.abs == want.abs,
                                 "%s: not its own site's statistics", name);
                CHECK(r->st.n == want.n && r->st.n_tokens == n && !count_diff(r->H, want.H, want.n * want.n) &&
                      !count_diff(r->sq, want.sq, want.n), "pass %d: %s: statistics differ from lb_calib_collect's",
                      pass, name);
            }
        recs_free();
        lb_model_free(q);
        q = NULL;
    }
    /* a sequential method needs sequential mode */
    o.calib = c;
    o.calib_tokens = NULL;
    s = lb__model_quantize_with(m, &o, &probe_seq, &q, NULL);
    CHECK(s == LB_ERR_ARG && !q && strstr(lb_errmsg(), "sequential"), "%d %s", s, lb_errmsg());
    o.calib_tokens = tok; o.n_calib_tokens = n;
    s = lb__model_quantize_with(m, &o, &probe, &q, NULL);
    CHECK(s == LB_ERR_ARG && !q && strstr(lb_errmsg(), "not both"), "%d %s", s, lb_errmsg());
    recs_free();
    lb_calib_free(c);
    free(tok);
    lb_model_free(m);
}

/* ---- sequential mode against a slow reference */

static void test_sequential(void)
{
    lb_model *m = load("tinystories-656k");
    if (!m) SKIP("no tinystories-656k");
    REQUIRE(m->cfg.n_layers == 2, "tinystories-656k has 2 layers");
    int64_t n = 100, ctx = 40;
    int32_t *tok = random_tokens(n, m->cfg.vocab_size);
    lb_model_quant_opts o = {.format = "int4_g32", .method = "rtn", .n_threads = 2, .calib_tokens = tok,
                             .n_calib_tokens = n, .calib_ctx = ctx, .sequential = 1};
    lb_model *q = NULL, *p = NULL;
    lb_status s = lb__model_quantize_with(m, &o, &probe_seq, &q, NULL);
    REQUIRE(s == LB_OK, "sequential: %s", lb_errmsg());
    /* reference: layer 0 quantized by rtn, layer 1 kept, run whole */
    const char *keep[] = {"model.layers.1.*"};
    lb_model_quant_opts ro = {.format = "int4_g32", .method = "rtn", .n_threads = 1, .keep = keep, .n_keep = 1};
    REQUIRE(lb_model_quantize(m, &ro, &p, NULL) == LB_OK, "%s", lb_errmsg());
    capture cx, cq;
    REQUIRE(capture_inputs(m, tok, n, ctx, &cx) == 0 && capture_inputs(p, tok, n, ctx, &cq) == 0, "%s", lb_errmsg());
    for (int64_t l = 0; l < 2; l++)
        for (int k = 0; k < 7; k++) {
            char name[96];
            snprintf(name, sizeof name, "model.layers.%lld.%s.weight", (long long)l, all_lin[k]);
            const rec *r = find_rec(m, name);
            REQUIRE(r && r->Hq && r->Hqx, "%s: no sequential statistics", name);
            int site = k < 3 ? LB_SITE_QKV : k == 3 ? LB_SITE_O : k < 6 ? LB_SITE_GATEUP : LB_SITE_DOWN;
            int64_t w = cx.width[site];
            double *H = naive_gram(cx.x[l][site], cx.x[l][site], w, n);
            /* layer l's quantized-path inputs come from layers < l quantized and layer l
             * itself in float: for layer 0 that is the float model, for layer 1 the model p */
            const float *xq = l == 0 ? cx.x[l][site] : cq.x[l][site];
            double *Hq = naive_gram(xq, xq, w, n);
            double *Hqx = naive_gram(xq, cx.x[l][site], w, n);
            CHECK(!count_diff(r->H, H, w * w), "%s: H differs from the float model's", name);
            CHECK(!count_diff(r->Hq, Hq, w * w), "%s: Hq differs in %lld entries from the partly quantized model's",
                  name, (long long)count_diff(r->Hq, Hq, w * w));
            CHECK(!count_diff(r->Hqx, Hqx, w * w), "%s: Hqx differs in %lld entries", name,
                  (long long)count_diff(r->Hqx, Hqx, w * w));
            if (l == 1) CHECK(count_diff(Hq, H, w * w) > 0, "%s: quantizing layer 0 changed nothing?", name);
            free(H); free(Hq); free(Hqx);
        }
    capture_free(&cx);
    capture_free(&cq);
    recs_free();
    lb_model_free(q);
    lb_model_free(p);
    free(tok);
    lb_model_free(m);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lowbit_test_calib.%d", (int)getpid());
    mkdir(tmpdir, 0700);
    RUN(test_stats_direct);
    RUN(test_threads_isa);
    RUN(test_file);
    RUN(test_nonfinite);
    RUN(test_mapping);
    RUN(test_sequential);
    rmdir(tmpdir);
    return TEST_DONE();
}
