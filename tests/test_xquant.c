/* test_xquant.c: the xquant KV-cache policy (src/kv/xquant.c).
 *  - engine: a reference forward pass written here (F32, the engine's
 *    documented arithmetic: canonical dots, its RMSNorm, RoPE table, softmax
 *    and weighted sums) that caches X quantized by a min-max quantizer
 *    written here (groups along dim, F16 scale and min; XQuant-CL chained
 *    on the reference's own decoded X) and recomputes K = X^ Wk (+ bk, RoPE)
 *    and V = X^ Wv for every attended token: the session's logits with
 *    xquant:bits=8/4/2 (and cl=1) equal it bit for bit; without quantization
 *    it is the f32 cache's forward pass, which the engine matches too;
 *  - xquant:bits=32 (lossless F32 rows) gives the f32 cache's logits bit for
 *    bit (GQA, biases, q/k norm, rotate-half, BF16/F16 weights, both real
 *    models): the rematerialized keys and values are computed with the
 *    engine's own per-row products and RoPE, so nothing is reordered;
 *  - a batch equals token-by-token decoding, at any thread count and ISA;
 *  - bytes held equal the formula of docs/kv.md for every row format;
 *  - rank=r: the Jacobi SVD finds the singular vectors of a matrix built
 *    from known ones; r = rank [Wk Wv] keeps the logits to float rounding,
 *    a smaller r changes them;
 *  - bad SPECs and compositions are refused with one message. */
#include "harness.h"
#include "kv/kv.h"
#include "model/model.h"

static lb_rng rng;
#include "tmodel.h"

static uint32_t below(uint32_t n) { return (uint32_t)(lb_rng_uniform(&rng) * n) % n; }

/* ---- the reference: min-max rows of X, written from the docs */

/* y = x quantized in groups of G along n at `bits` (asymmetric min-max,
 * F16 scale and min, codes from the F16 values, x^ = q s + m). */
static void qrow(const float *x, int64_t n, int64_t G, int bits, float *y)
{
    float levels = (float)((1 << bits) - 1);
    for (int64_t g = 0; g < n; g += G) {
        float lo = x[g], hi = x[g];
        for (int64_t i = g; i < g + G; i++) { lo = fminf(lo, x[i]); hi = fmaxf(hi, x[i]); }
        float s = lb_f16_to_f32(lb_f32_to_f16((hi - lo) / levels)), m = lb_f16_to_f32(lb_f32_to_f16(lo));
        for (int64_t i = g; i < g + G; i++) {
            float q = s > 0 ? nearbyintf((x[i] - m) / s) : 0;
            q = q < 0 ? 0 : q > levels ? levels : q;
            y[i] = q * s + m;
        }
    }
}

typedef struct refm {
    const lb_config *c;
    float *w[64][10];   /* per layer: attn_norm wq wk wv wo ffn_norm gate up down; [9] unused */
    float *bq[64], *bk[64], *bv[64];
    float *emb, *fnorm;
} refm;

static float *f32_of(const lb_weight *w)
{
    float *o = malloc(sizeof(float) * (size_t)(w->rows * w->cols));
    if (lb__weight_f32(w, o)) { free(o); return NULL; }
    return o;
}

static void rms(const lb_kernels *K, float *o, const float *x, const float *w, int64_t n, float eps)
{
    float scale = 1.0f / sqrtf(K->dot(x, x, n) / (float)n + eps);
    for (int64_t i = 0; i < n; i++) o[i] = w[i] * (scale * x[i]);
}

static void matv(const lb_kernels *K, const float *W, const float *x, int64_t rows, int64_t cols, float *y)
{
    for (int64_t r = 0; r < rows; r++) y[r] = K->dot(W + r * cols, x, cols);
}

static void rope(const lb_config *c, float *v, int64_t p)
{
    int64_t hd = c->head_dim, half = hd / 2;
    for (int64_t i = 0; i < half; i++) {
        double a = (double)p * pow((double)c->rope_theta, -2.0 * (double)i / (double)hd);
        float cs = (float)cos(a), sn = (float)sin(a);
        bool inter = c->rope_layout == LB_ROPE_INTERLEAVED;
        int64_t ia = inter ? 2 * i : i, ib = inter ? 2 * i + 1 : i + half;
        float x0 = v[ia], x1 = v[ib];
        v[ia] = x0 * cs - x1 * sn;
        v[ib] = x0 * sn + x1 * cs;
    }
}

/* Logits (n, V) of tokens tok with the cached X rows quantized at `bits`
 * (0: X exact, the f32 cache) in groups of G, XQuant-CL when cl. */
static void ref_forward(const refm *R, const int32_t *tok, int64_t n, int bits, int64_t G, bool cl, float *logits)
{
    const lb_config *c = R->c;
    const lb_kernels *K = lb__kernels();
    int64_t d = c->dim, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads, qd = nh * hd, kvd = nkv * hd;
    int64_t L = c->n_layers, hid = c->hidden_dim, V = c->vocab_size, grp = nh / nkv;
    float *xs = malloc(sizeof(float) * (size_t)(n * d)), *h = malloc(sizeof(float) * (size_t)d);
    float *xq = malloc(sizeof(float) * (size_t)(L * n * d));   /* X^ of every layer and token */
    float *kc = malloc(sizeof(float) * (size_t)(n * kvd)), *vc = malloc(sizeof(float) * (size_t)(n * kvd));
    float *q = malloc(sizeof(float) * (size_t)qd), *att = malloc(sizeof(float) * (size_t)qd);
    float *sc = malloc(sizeof(float) * (size_t)n), *t1 = malloc(sizeof(float) * (size_t)(hid + d));
    float *t2 = malloc(sizeof(float) * (size_t)hid), *dx = malloc(sizeof(float) * (size_t)d);
    for (int64_t t = 0; t < n; t++) memcpy(xs + t * d, R->emb + (int64_t)tok[t] * d, sizeof(float) * (size_t)d);
    for (int64_t t = 0; t < n; t++) {   /* token by token, every layer */
        float *x = xs + t * d;
        for (int64_t l = 0; l < L; l++) {
            float *const *w = R->w[l];
            rms(K, h, x, w[0], d, c->norm_eps);
            float *xr = xq + (l * n + t) * d;   /* the row the cache holds */
            if (!bits) memcpy(xr, h, sizeof(float) * (size_t)d);
            else if (!cl || l == 0) qrow(h, d, G, bits, xr);
            else {
                const float *prev = xq + ((l - 1) * n + t) * d;
                for (int64_t i = 0; i < d; i++) dx[i] = h[i] - prev[i];
                qrow(dx, d, G, bits, xr);
                for (int64_t i = 0; i < d; i++) xr[i] = prev[i] + xr[i];
            }
            matv(K, w[1], h, qd, d, q);
            if (R->bq[l]) for (int64_t i = 0; i < qd; i++) q[i] += R->bq[l][i];
            for (int64_t hh = 0; hh < nh; hh++) rope(c, q + hh * hd, t);
            for (int64_t u = 0; u <= t; u++) {   /* K, V of every attended token, recomputed from its X^ */
                const float *xu = xq + (l * n + u) * d;
                matv(K, w[2], xu, kvd, d, kc + u * kvd);
                matv(K, w[3], xu, kvd, d, vc + u * kvd);
                if (R->bk[l])
                    for (int64_t i = 0; i < kvd; i++) { kc[u * kvd + i] += R->bk[l][i]; vc[u * kvd + i] += R->bv[l][i]; }
                for (int64_t g = 0; g < nkv; g++) rope(c, kc + u * kvd + g * hd, u);
            }
            for (int64_t hh = 0; hh < nh; hh++) {
                int64_t g = hh / grp;
                float mx = -INFINITY, sum = 0, inv = 1.0f / sqrtf((float)hd);
                for (int64_t u = 0; u <= t; u++) {
                    sc[u] = K->dot(q + hh * hd, kc + u * kvd + g * hd, hd) * inv;
                    mx = sc[u] > mx ? sc[u] : mx;
                }
                for (int64_t u = 0; u <= t; u++) { sc[u] = expf(sc[u] - mx); sum += sc[u]; }
                float *o = att + hh * hd;
                for (int64_t i = 0; i < hd; i++) o[i] = 0;
                for (int64_t u = 0; u <= t; u++) {
                    float wgt = sc[u] / sum;
                    for (int64_t i = 0; i < hd; i++) o[i] = o[i] + wgt * vc[u * kvd + g * hd + i];
                }
            }
            matv(K, w[4], att, d, qd, t1);
            for (int64_t i = 0; i < d; i++) x[i] += t1[i];
            rms(K, h, x, w[5], d, c->norm_eps);
            matv(K, w[6], h, hid, d, t1);
            matv(K, w[7], h, hid, d, t2);
            for (int64_t i = 0; i < hid; i++) t1[i] = t1[i] / (1.0f + expf(-t1[i])) * t2[i];
            matv(K, w[8], t1, d, hid, t2);
            for (int64_t i = 0; i < d; i++) x[i] += t2[i];
        }
        rms(K, h, x, R->fnorm, d, c->norm_eps);
        matv(K, R->emb, h, V, d, logits + t * V);
    }
    free(xs); free(h); free(xq); free(kc); free(vc); free(q); free(att); free(sc); free(t1); free(t2); free(dx);
}

static void ref_build(refm *R, const lb_model *m)
{
    memset(R, 0, sizeof *R);
    R->c = &m->cfg;
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        const lb_layer_weights *L = &m->layers[l];
        const lb_weight *ws[9] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_norm, &L->w_gate, &L->w_up,
                                  &L->w_down};
        for (int i = 0; i < 9; i++) R->w[l][i] = f32_of(ws[i]);
        if (m->cfg.qkv_bias) { R->bq[l] = f32_of(&L->bq); R->bk[l] = f32_of(&L->bk); R->bv[l] = f32_of(&L->bv); }
    }
    R->emb = f32_of(&m->tok_embed);
    R->fnorm = f32_of(&m->final_norm);
}

static void ref_free(refm *R)
{
    for (int64_t l = 0; l < R->c->n_layers; l++) {
        for (int i = 0; i < 9; i++) free(R->w[l][i]);
        free(R->bq[l]); free(R->bk[l]); free(R->bv[l]);
    }
    free(R->emb);
    free(R->fnorm);
}

/* Logits of n tokens through a session with SPEC kv, batches of `batch`. */
static bool logits_of(const lb_model *m, const char *kv, int th, int64_t batch, int64_t n, const int32_t *tok,
                      float *lg)
{
    lb_session_opts o = {.n_threads = th, .max_ctx = n, .max_batch = batch, .kv = kv};
    lb_session *s;
    if (lb_session_create(m, &o, &s)) { CHECK(0, "%s: %s", kv, lb_errmsg()); return false; }
    int64_t V = m->cfg.vocab_size;
    bool ok = true;
    for (int64_t i = 0; i < n && ok; i += batch) {
        int64_t b = n - i < batch ? n - i : batch;
        ok = !lb_forward_all(s, tok + i, b, lg + i * V);
        CHECK(ok, "%s: %s", kv, lb_errmsg());
    }
    lb_session_free(s);
    return ok;
}

static int64_t ndiff(const float *a, const float *b, int64_t n, double *maxd)
{
    int64_t k = 0;
    *maxd = 0;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float))) { k++; *maxd = fmax(*maxd, fabs((double)a[i] - b[i])); }
    return k;
}

/* ---- engine = the reference, bit for bit */

static void test_reference(void)
{
    lb_rng_seed(&rng, TEST_SEED);
    tmodel t;
    lb_config c = base_cfg();
    c.dim = 64; c.n_heads = 6; c.n_kv_heads = 2; c.head_dim = 8; c.qkv_bias = true; c.rope_layout = LB_ROPE_HALF;
    c.n_layers = 3;
    build(&t, c, LB_DTYPE_F32);
    refm R;
    ref_build(&R, &t.m);
    int64_t n = 29, V = c.vocab_size;
    int32_t tok[29];
    for (int i = 0; i < n; i++) tok[i] = (int32_t)below((uint32_t)V);
    float *a = malloc(sizeof(float) * (size_t)(n * V)), *b = malloc(sizeof(float) * (size_t)(n * V));
    struct { const char *spec; int bits; int64_t G; bool cl; } cs[] = {
        {"f32", 0, 0, false},
        {"xquant:bits=32", 0, 0, false},
        {"xquant:bits=8", 8, 32, false},
        {"xquant:bits=4,group=16", 4, 16, false},
        {"xquant:bits=2,group=64", 2, 64, false},
        {"xquant:bits=3,group=8,cl=1", 3, 8, true},
        {"xquant:bits=4,cl=1,page=8", 4, 32, true},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        ref_forward(&R, tok, n, cs[i].bits, cs[i].G, cs[i].cl, a);
        if (!logits_of(&t.m, cs[i].spec, 2, 7, n, tok, b)) continue;
        double md;
        int64_t k = ndiff(a, b, n * V, &md);
        CHECK(k == 0, "%s: %lld of %lld logits differ from the reference (max %g)", cs[i].spec, (long long)k,
              (long long)(n * V), md);
    }
    ref_free(&R);
    free(a); free(b);
    unbuild(&t);
}

/* ---- bits=32 = f32; batch = token by token; threads; ISA */

static void test_lossless_and_batches(void)
{
    lb_rng_seed(&rng, TEST_SEED ^ 1);
    for (int v = 0; v < 3; v++) {
        tmodel t;
        lb_dtype dt;
        lb_config c = variant(v, &dt);
        if (c.dim % 8) c.dim = 40;   /* xquant rows: dim a multiple of 8 */
        build(&t, c, dt);
        int64_t n = 33, V = c.vocab_size;
        int32_t tok[33];
        for (int i = 0; i < n; i++) tok[i] = (int32_t)below((uint32_t)V);
        float *f = malloc(sizeof(float) * (size_t)(n * V)), *a = malloc(sizeof(float) * (size_t)(n * V));
        float *b = malloc(sizeof(float) * (size_t)(n * V));
        logits_of(&t.m, "f32", 1, 64, n, tok, f);
        logits_of(&t.m, "xquant:bits=32,page=4", 2, 5, n, tok, a);
        double md;
        int64_t k = ndiff(f, a, n * V, &md);
        CHECK(k == 0, "variant %d: xquant:bits=32 != f32 in %lld logits (max %g)", v, (long long)k, md);
        const char *specs[] = {"xquant:bits=4,group=8", "xquant:bits=2,group=8,cl=1", "xquant:bits=0,format=int8_ch",
                               "xquant:bits=0,format=nvfp4,cl=1"};
        for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
            if (si == 3 && c.dim % 16) continue;
            logits_of(&t.m, specs[si], 1, 1, n, tok, a);
            for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++) {
                lb_isa_set((lb_isa)isa);
                logits_of(&t.m, specs[si], 1 + isa % 2 + 1, isa ? 64 : 6, n, tok, b);
                k = ndiff(a, b, n * V, &md);
                CHECK(k == 0, "variant %d %s isa %d: batch != token by token in %lld logits", v, specs[si], isa,
                      (long long)k);
            }
            lb_isa_set(lb_isa_best());
            k = ndiff(f, a, n * V, &md);
            bool finite = true;
            for (int64_t i = 0; i < n * V; i++) finite &= isfinite(a[i]) != 0;
            CHECK(k > 0 && finite, "variant %d %s: lossy X changes the logits (%lld) and keeps them finite (%d)", v,
                  specs[si], (long long)k, finite);
        }
        free(f); free(a); free(b);
        unbuild(&t);
    }
}

/* ---- bytes = docs/kv.md's formula; stats; eviction refused */

static void test_bytes(void)
{
    lb_rng_seed(&rng, TEST_SEED ^ 2);
    tmodel t;
    lb_config c = base_cfg();
    c.dim = 64; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 8; c.max_seq = 80;
    build(&t, c, LB_DTYPE_F32);
    struct { const char *spec; size_t row; int64_t P; } cs[] = {
        {"xquant:bits=2", 64 * 2 / 8 + 4 * 64 / 32, 32},
        {"xquant:bits=3,group=16", 64 * 3 / 8 + 4 * 64 / 16, 32},
        {"xquant:bits=4,group=128", 64 * 4 / 8 + 4, 32},   /* group capped at dim */
        {"xquant:bits=8,page=16", 64 + 4 * 64 / 32, 16},
        {"xquant:bits=32,page=8", 4 * 64, 8},
        {"xquant:bits=0,format=int8_ch", 64 + 2, 32},          /* codes + F16 row scale */
        {"xquant:bits=0,format=nvfp4", 32 + 4 + 4, 32},        /* 4 blocks of 16: 32 code bytes, 4 E4M3 scales; F32 tensor scale */
    };
    int64_t Ts[] = {1, 31, 33, 70};
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        for (size_t j = 0; j < sizeof Ts / sizeof *Ts; j++) {
            int64_t T = Ts[j];
            lb_session_opts o = {.n_threads = 1, .max_ctx = 80, .max_batch = 16, .kv = cs[i].spec};
            lb_session *s;
            REQUIRE(!lb_session_create(&t.m, &o, &s), "%s: %s", cs[i].spec, lb_errmsg());
            int32_t tok[70];
            for (int64_t k = 0; k < T; k++) tok[k] = (int32_t)below((uint32_t)c.vocab_size);
            CHECK(!lb_forward(s, tok, T, NULL), "%s", lb_errmsg());
            lb_kv_stats st;
            CHECK(!lb_session_kv_stats(s, &st), "stats");
            size_t want = (size_t)c.n_layers * ((size_t)((T + cs[i].P - 1) / cs[i].P * cs[i].P) * cs[i].row + 4 * (size_t)T);
            CHECK(st.bytes == want && st.tokens == T * c.n_layers * c.n_kv_heads, "%s T %lld: bytes %zu, formula %zu; "
                  "tokens %lld", cs[i].spec, (long long)T, st.bytes, want, (long long)st.tokens);
            lb_session_free(s);
        }
    unbuild(&t);
}

static void test_errors(void)
{
    static const struct { const char *spec, *msg; } bad[] = {
        {"xquant:bits=5", "xquant bits=5"},
        {"xquant:bits=1", "xquant bits=1"},
        {"xquant:group=24", "not a power of two"},
        {"xquant:cl=2", "outside"},
        {"xquant:bits=0,format=ternary", "cannot hold X"},
        {"snapkv:ratio=0.5+xquant:bits=4", "eviction stage 'snapkv'"},
        {"xquant+kivi", "two storage policies"},
        {"xquant:rank=16,cl=1", "cl=1 and rank"},
        {"xquant:ranks=3", "has no parameter 'ranks'"},
    };
    lb__kv_spec sp;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(lb__kv_parse(bad[i].spec, "--kv", &sp) != LB_OK, "%s accepted", bad[i].spec);
        CHECK(strstr(lb_errmsg(), bad[i].msg) && strstr(lb_errmsg(), "--kv"), "%s: message '%s'", bad[i].spec,
              lb_errmsg());
    }
    REQUIRE(!lb__kv_parse("xquant", "kv", &sp), "%s", lb_errmsg());
    CHECK(!strcmp(sp.text, "xquant:bits=4,group=32,format=int8_ch,cl=0,rank=0,page=32"), "full form %s", sp.text);
    /* a cache without a model behind it (no remat callback) is refused */
    double inv[4] = {1, 0.1, 0.01, 0.001};
    lb__kv_shape sh = {1, 2, 2, 8, 16, 4, 1, inv, false};
    lb_kv *c = NULL;
    CHECK(lb__kv_create(&sp, &sh, "kv", &c) != LB_OK && strstr(lb_errmsg(), "no model behind it"), "no model: %s",
          lb_errmsg());
    lb__kv_free(c);
    /* shapes the model cannot take: dim 36 (not a multiple of 8), group 32 or nvfp4 on dim 40 */
    lb_rng_seed(&rng, TEST_SEED ^ 3);
    tmodel t;
    lb_config cf = base_cfg();
    cf.dim = 36; cf.n_heads = 2; cf.n_kv_heads = 2; cf.head_dim = 8;
    build(&t, cf, LB_DTYPE_F32);
    lb_session_opts o = {.n_threads = 1, .max_ctx = 16, .kv = "xquant:bits=4"};
    lb_session *s = NULL;
    CHECK(lb_session_create(&t.m, &o, &s) != LB_OK && strstr(lb_errmsg(), "dim 36"), "dim 36: %s", lb_errmsg());
    lb_session_free(s);
    unbuild(&t);
    cf.dim = 40;
    build(&t, cf, LB_DTYPE_F32);
    o.kv = "xquant:bits=4";
    s = NULL;
    CHECK(lb_session_create(&t.m, &o, &s) != LB_OK && strstr(lb_errmsg(), "group 32"), "group 32 on dim 40: %s",
          lb_errmsg());
    lb_session_free(s);
    o.kv = "xquant:bits=0,format=nvfp4";
    s = NULL;
    CHECK(lb_session_create(&t.m, &o, &s) != LB_OK && strstr(lb_errmsg(), "block"), "nvfp4 dim 40: %s", lb_errmsg());
    lb_session_free(s);
    /* per-head eviction through the cache interface: refused, nothing changed */
    o.kv = "xquant:bits=8,group=8";
    REQUIRE(!lb_session_create(&t.m, &o, &s), "%s", lb_errmsg());
    int32_t tok[5] = {1, 5, 9, 3, 4};
    CHECK(!lb_forward(s, tok, 5, NULL), "%s", lb_errmsg());
    int64_t keep[2] = {0, 4};
    CHECK(lb__kv_keep(lb__session_kv(s), 0, 1, keep, 2) != LB_OK && strstr(lb_errmsg(), "per-head eviction"), "%s",
          lb_errmsg());
    CHECK(lb__kv_tokens(lb__session_kv(s), 0, 1) == 5, "tokens after a refused keep");
    lb_session_free(s);
    unbuild(&t);
}

/* ---- rank=r: the SVD, and the down-projection in the engine */

/* Columns of q (m x n, row-major) orthonormalized in place (Gram-Schmidt, twice). */
static void orthonormalize(double *q, int64_t m, int64_t n)
{
    for (int pass = 0; pass < 2; pass++)
        for (int64_t j = 0; j < n; j++) {
            for (int64_t k = 0; k < j; k++) {
                double d = 0;
                for (int64_t i = 0; i < m; i++) d += q[i * n + j] * q[i * n + k];
                for (int64_t i = 0; i < m; i++) q[i * n + j] -= d * q[i * n + k];
            }
            double nn = 0;
            for (int64_t i = 0; i < m; i++) nn += q[i * n + j] * q[i * n + j];
            for (int64_t i = 0; i < m; i++) q[i * n + j] /= sqrt(nn);
        }
}

static void test_svd(void)
{
    lb_rng_seed(&rng, TEST_SEED ^ 4);
    enum { M = 40, N = 24, R = 10 };
    static double q1[M * N], q2[N * N], a[M * N];
    double sig[N];
    for (int64_t i = 0; i < M * N; i++) q1[i] = lb_rng_normal(&rng);
    for (int64_t i = 0; i < N * N; i++) q2[i] = lb_rng_normal(&rng);
    orthonormalize(q1, M, N);
    orthonormalize(q2, N, N);
    for (int j = 0; j < N; j++) sig[j] = 1 + (j * 7) % N;   /* 1 .. 24, shuffled: column j of q1 has sig[j] */
    for (int64_t i = 0; i < M; i++)   /* A = Q1 diag(sig) Q2^T */
        for (int64_t j = 0; j < N; j++) {
            double t = 0;
            for (int64_t k = 0; k < N; k++) t += q1[i * N + k] * sig[k] * q2[j * N + k];
            a[i * N + j] = t;
        }
    float U[M * R];
    REQUIRE(!lb__xq_svd_left(a, M, N, R, U), "%s", lb_errmsg());
    for (int k = 0; k < R; k++) {   /* column k = +-(the column of q1 with the (k+1)-th largest sig = 24 - k) */
        int src = 0;
        while (sig[src] != N - k) src++;
        double d = 0;
        for (int64_t i = 0; i < M; i++) d += U[i * R + k] * q1[i * N + src];
        CHECK(fabs(fabs(d) - 1) < 1e-5, "singular vector %d: |<u, q>| = %.8f", k, fabs(d));
        for (int k2 = 0; k2 < k; k2++) {
            double o = 0;
            for (int64_t i = 0; i < M; i++) o += (double)U[i * R + k] * U[i * R + k2];
            CHECK(fabs(o) < 1e-5, "u%d . u%d = %g", k, k2, o);
        }
    }
    CHECK(lb__xq_svd_left(a, M, N, N + 1, U) == LB_ERR_ARG, "r > n accepted");
}

static void test_rank(void)
{
    lb_rng_seed(&rng, TEST_SEED ^ 5);
    tmodel t;
    lb_config c = base_cfg();
    c.dim = 64; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 8; c.n_layers = 2;   /* 2 kv_dim = 32 < dim */
    build(&t, c, LB_DTYPE_F32);
    int64_t n = 30, V = c.vocab_size;
    int32_t tok[30];
    for (int i = 0; i < n; i++) tok[i] = (int32_t)below((uint32_t)V);
    float *f = malloc(sizeof(float) * (size_t)(n * V)), *a = malloc(sizeof(float) * (size_t)(n * V));
    logits_of(&t.m, "f32", 1, 64, n, tok, f);
    double scale = 0, d32 = 0, d16 = 0;
    for (int64_t i = 0; i < n * V; i++) scale = fmax(scale, fabs(f[i]));
    /* r = 2 kv_dim: X U_r U_r^T [Wk Wv] = X [Wk Wv] exactly; in F32 the two extra products of dim terms each
     * round at ~dim 2^-24 relative, so the logits agree to ~1e-5 of their scale (1e-3 allowed) */
    logits_of(&t.m, "xquant:bits=32,rank=32", 2, 7, n, tok, a);
    for (int64_t i = 0; i < n * V; i++) d32 = fmax(d32, fabs(a[i] - f[i]));
    CHECK(d32 < 1e-3 * scale, "rank 32 = [Wk Wv]'s rank: max logit change %g of %g", d32, scale);
    logits_of(&t.m, "xquant:bits=32,rank=16", 2, 7, n, tok, a);   /* truncated: K, V lose half their rank */
    for (int64_t i = 0; i < n * V; i++) d16 = fmax(d16, fabs(a[i] - f[i]));
    CHECK(d16 > 10 * d32 && d16 > 1e-3 * scale, "rank 16 changes the logits: %g (rank 32: %g)", d16, d32);
    /* bytes: rows of r values */
    lb_session_opts o = {.n_threads = 1, .max_ctx = 40, .max_batch = 8, .kv = "xquant:bits=4,rank=16,group=8"};
    lb_session *s;
    REQUIRE(!lb_session_create(&t.m, &o, &s), "%s", lb_errmsg());
    CHECK(!lb_forward(s, tok, 20, NULL), "%s", lb_errmsg());
    lb_kv_stats st;
    lb_session_kv_stats(s, &st);
    size_t want = 2 * (32 * (16 * 4 / 8 + 4 * 16 / 8) + 4 * 20);
    CHECK(st.bytes == want, "rank 16 bytes %zu, formula %zu", st.bytes, want);
    lb_session_free(s);
    o.kv = "xquant:rank=40,group=8";
    s = NULL;
    CHECK(lb_session_create(&t.m, &o, &s) != LB_OK && strstr(lb_errmsg(), "rank bound"), "rank 40: %s", lb_errmsg());
    lb_session_free(s);
    o.kv = "xquant:rank=80";
    s = NULL;
    CHECK(lb_session_create(&t.m, &o, &s) != LB_OK && strstr(lb_errmsg(), "exceeds dim"), "rank 80: %s", lb_errmsg());
    lb_session_free(s);
    free(f); free(a);
    unbuild(&t);
}

/* ---- the real models: bits=32 = f32 bit for bit, 8-bit close */

static void test_real_models(void)
{
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s/stories260K/stories260K.bin", test_models_dir());
    snprintf(p2, sizeof p2, "%s/tinystories-656k", test_models_dir());
    if (!test_file_exists(p1)) SKIP("no %s", p1);
    const char *paths[2] = {p1, p2};
    for (int mi = 0; mi < 2; mi++) {
        lb_model *m;
        if (lb_model_load(paths[mi], &m)) { CHECK(0, "load %s: %s", paths[mi], lb_errmsg()); continue; }
        int64_t V = m->cfg.vocab_size, n = 96;
        int32_t *tok = malloc(sizeof(int32_t) * (size_t)n);
        float *f = malloc(sizeof(float) * (size_t)(n * V)), *a = malloc(sizeof(float) * (size_t)(n * V));
        for (int64_t i = 0; i < n; i++) tok[i] = (int32_t)((i * 7919 + 13) % V);
        logits_of(m, "f32", 2, 32, n, tok, f);
        logits_of(m, "xquant:bits=32", 2, 17, n, tok, a);
        double md;
        int64_t k = ndiff(f, a, n * V, &md);
        CHECK(k == 0, "%s: xquant:bits=32 differs from f32 in %lld logits (max %g)", paths[mi], (long long)k, md);
        free(tok); free(f); free(a);
        lb_model_free(m);
    }
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_errors);
    RUN(test_bytes);
    RUN(test_reference);
    RUN(test_lossless_and_batches);
    RUN(test_svd);
    RUN(test_rank);
    RUN(test_real_models);
    return TEST_DONE();
}
