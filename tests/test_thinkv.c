/* test_thinkv.c: the thinkv storage policy (src/kv/thinkv.c, docs/kv.md).
 *  - every token stays exact until the first compression; after it, each
 *    cold page holds exactly round(frac P) tokens in the hi format, namely
 *    the best of the page by the scorer's own scores (the registry scorer
 *    run directly on the held tokens, ranked here independently), and each
 *    token's stored value equals an independent quantizer of its original:
 *    the hi registry format (lb_format_quantize / dequantize of that row),
 *    or KIVI min-max written here (keys per channel over the page's lo
 *    tokens, values per token, F16 scale and min), or the lo format;
 *  - attention over the mixed cache equals a double softmax over that
 *    reference (each token dequantized by its chosen format);
 *  - bytes held equal the formula of docs/kv.md, written out here;
 *  - bad SPEC parameters: one clear error each;
 *  - the engine: logits after a compression are identical at 1 and 2
 *    threads and on every ISA path, and differ from f32. */
#include "harness.h"
#include "kv/codec.h"
#include "model/model.h"

static lb_rng rng;
#include "tmodel.h"

static void randv(float *x, int64_t n, double scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(scale * lb_rng_normal(&rng));
}

static lb_kv *mkcache(const char *spec, int64_t layers, int64_t heads, int64_t kvh, int64_t hd, int64_t ctx)
{
    lb__kv_spec sp;
    if (lb__kv_parse(spec, "--kv", &sp)) return NULL;
    static double inv[256];
    for (int i = 0; i < 256; i++) inv[i] = 1.0 / (i + 1);
    lb__kv_shape sh = {layers, heads, kvh, hd, ctx, 16, 2, inv, false};
    lb_kv *c;
    return lb__kv_create(&sp, &sh, "--kv", &c) ? NULL : c;
}

/* KIVI min-max of x[i * stride], i < n, into y (F16 s and min). */
static void kivi_ref(const float *x, int64_t n, int64_t stride, int bits, float *y)
{
    float lo = x[0], hi = x[0];
    for (int64_t i = 1; i < n; i++) {
        lo = fminf(lo, x[i * stride]);
        hi = fmaxf(hi, x[i * stride]);
    }
    float L = (float)((1 << bits) - 1);
    float s = lb_f16_to_f32(lb_f32_to_f16((hi - lo) / L)), m = lb_f16_to_f32(lb_f32_to_f16(lo));
    for (int64_t i = 0; i < n; i++) {
        float q = s > 0 ? nearbyintf((x[i * stride] - m) / s) : 0;
        q = q < 0 ? 0 : q > L ? L : q;
        volatile float t = q * s;
        y[i * stride] = t + m;
    }
}

/* A row through a registry format and back. */
static void fmt_ref(const char *name, const float *x, int64_t hd, float *y)
{
    const lb_format *f = lb_format_find(name);
    uint8_t buf[1024];
    float ts = 1;
    LB_ASSERT(!lb_format_quantize(f, NULL, x, 1, hd, buf, &ts));
    LB_ASSERT(!lb_format_dequantize(f, buf, ts, 1, hd, y));
}

static void dattend(const float *q, const float *K, const float *Vv, int64_t n, int64_t hd, double *out)
{
    double mx = -1e300, *w = malloc(sizeof(double) * (size_t)n), sum = 0;
    for (int64_t p = 0; p < n; p++) {
        double d = 0;
        for (int64_t i = 0; i < hd; i++) d += (double)q[i] * K[p * hd + i];
        w[p] = d / sqrt((double)hd);
        mx = fmax(mx, w[p]);
    }
    for (int64_t p = 0; p < n; p++) sum += (w[p] = exp(w[p] - mx));
    for (int64_t i = 0; i < hd; i++) out[i] = 0;
    for (int64_t p = 0; p < n; p++)
        for (int64_t i = 0; i < hd; i++) out[i] += w[p] / sum * Vv[p * hd + i];
    free(w);
}

typedef struct tcase {
    const char *spec, *score, *hi, *lo;   /* lo NULL: KIVI lo at lobits */
    int lobits;
    int64_t P, Q, R, hd;
} tcase;

/* Page bytes of docs/kv.md, written out: hi rows (key and value) of the Q hi
 * slots, the lo section, alignment to 4, NV tensor scales, the P-bit map. */
static size_t page_bytes(const tcase *tc)
{
    const lb_format *hi = lb_format_find(tc->hi);
    size_t b = 2 * (size_t)tc->Q * lb_format_row_bytes(hi, tc->hd);
    int64_t N = tc->P - tc->Q;
    const lb_format *lo = tc->lo ? lb_format_find(tc->lo) : NULL;
    if (lo) b += 2 * (size_t)N * lb_format_row_bytes(lo, tc->hd);
    else b += 2 * (size_t)(N * tc->hd * tc->lobits / 8) + 2 * (size_t)(2 * tc->hd + 2 * N);
    b = (b + 3) / 4 * 4;
    if (lb_format_uses_tensor_scale(hi)) b += 8 * (size_t)tc->Q;
    if (lo && lb_format_uses_tensor_scale(lo)) b += 8 * (size_t)N;
    return (b + (size_t)(tc->P + 7) / 8 + 3) / 4 * 4;
}

static void run_case(const tcase *tc)
{
    int64_t hd = tc->hd, T = 150, kvh = 2, nh = 4, qd = nh * hd;
    lb_kv *c = mkcache(tc->spec, 1, nh, kvh, hd, 256);
    REQUIRE(c, "%s: %s", tc->spec, lb_errmsg());
    float *k = malloc(sizeof(float) * (size_t)(T * kvh * hd)), *v = malloc(sizeof(float) * (size_t)(T * kvh * hd));
    float *q = malloc(sizeof(float) * (size_t)(T * qd));
    randv(k, T * kvh * hd, 1.5);
    randv(v, T * kvh * hd, 1);
    randv(q, T * qd, 1);
    for (int64_t i = 0; i < T * kvh * hd; i += 37) k[i] *= 6;   /* outliers: scores that differ */
    for (int64_t t = 0; t < T; t++) {
        lb__kv_observe_q(c, 0, t, q + t * qd, q + t * qd);
        lb__kv_append(c, 0, t, k + t * kvh * hd, v + t * kvh * hd);
    }
    /* held exactly until compression; the scorer run directly on those tokens */
    float *K = malloc(sizeof(float) * (size_t)(T * hd)), *Vv = malloc(sizeof(float) * (size_t)(T * hd));
    float *score[2];
    const lb__kv_policy *sp = lb__kv_policy_find(tc->score);
    lb__kv_spec sspec;
    REQUIRE(sp && !lb__kv_parse(tc->score, "t", &sspec), "scorer %s", tc->score);
    for (int64_t g = 0; g < kvh; g++) {
        lb__kv_read(c, 0, g, 0, T, K, Vv);
        bool exact = true;
        for (int64_t t = 0; t < T; t++)
            exact &= !memcmp(K + t * hd, k + (t * kvh + g) * hd, sizeof(float) * (size_t)hd) &&
                     !memcmp(Vv + t * hd, v + (t * kvh + g) * hd, sizeof(float) * (size_t)hd);
        CHECK(exact, "%s: head %lld not exact before compression", tc->spec, (long long)g);
        score[g] = malloc(sizeof(float) * (size_t)T);
        REQUIRE(!sp->score(c, &sspec.st[0], 0, g, score[g]), "%s", lb_errmsg());
    }
    REQUIRE(!lb__kv_compress(c), "%s: %s", tc->spec, lb_errmsg());
    int64_t cold = T >= tc->R ? tc->P * ((T - tc->R) / tc->P) : 0;
    for (int64_t g = 0; g < kvh; g++) {
        /* expected tiers: in each page the Q best scores (higher first, ties to the later slot) */
        uint8_t hi[150] = {0};
        for (int64_t p0 = 0; p0 < cold; p0 += tc->P)
            for (int64_t i = p0; i < p0 + tc->P; i++) {
                int64_t better = 0;
                for (int64_t j = p0; j < p0 + tc->P; j++)
                    better += score[g][j] > score[g][i] || (score[g][j] == score[g][i] && j > i);
                hi[i] = better < tc->Q;
            }
        /* reference values: each token by its tier */
        float *RK = malloc(sizeof(float) * (size_t)(T * hd)), *RV = malloc(sizeof(float) * (size_t)(T * hd));
        float *col = malloc(sizeof(float) * (size_t)(T * hd));
        for (int64_t t = 0; t < T; t++) {
            const float *ko = k + (t * kvh + g) * hd, *vo = v + (t * kvh + g) * hd;
            if (t >= cold) {
                memcpy(RK + t * hd, ko, sizeof(float) * (size_t)hd);
                memcpy(RV + t * hd, vo, sizeof(float) * (size_t)hd);
            } else if (hi[t] || tc->lo) {
                fmt_ref(hi[t] ? tc->hi : tc->lo, ko, hd, RK + t * hd);
                fmt_ref(hi[t] ? tc->hi : tc->lo, vo, hd, RV + t * hd);
            } else kivi_ref(vo, hd, 1, tc->lobits, RV + t * hd);
        }
        if (!tc->lo)   /* KIVI keys: per channel over each page's lo tokens */
            for (int64_t p0 = 0; p0 < cold; p0 += tc->P) {
                int64_t n = 0, idx[256];
                for (int64_t t = p0; t < p0 + tc->P; t++)
                    if (!hi[t]) {
                        memcpy(col + n * hd, k + (t * kvh + g) * hd, sizeof(float) * (size_t)hd);
                        idx[n++] = t;
                    }
                for (int64_t ch = 0; ch < hd && n; ch++) kivi_ref(col + ch, n, hd, tc->lobits, col + ch);
                for (int64_t i = 0; i < n; i++) memcpy(RK + idx[i] * hd, col + i * hd, sizeof(float) * (size_t)hd);
            }
        lb__kv_read(c, 0, g, 0, T, K, Vv);
        int64_t bad = 0, nhi = 0;
        for (int64_t t = 0; t < T; t++) {
            bad += memcmp(K + t * hd, RK + t * hd, sizeof(float) * (size_t)hd) != 0 ||
                   memcmp(Vv + t * hd, RV + t * hd, sizeof(float) * (size_t)hd) != 0;
            nhi += hi[t];
        }
        CHECK(bad == 0, "%s head %lld: %lld of %lld tokens differ from their tier's reference", tc->spec,
              (long long)g, (long long)bad, (long long)T);
        CHECK(nhi == tc->Q * (cold / tc->P), "hi count %lld", (long long)nhi);
        /* attention over the mixed cache = softmax over the reference */
        for (int64_t qh = 2 * g; qh < 2 * g + 2; qh++) {
            float qq[64], out[64];
            double ref[64], err = 0, mag = 0;
            randv(qq, hd, 1);
            lb__kv_attend(c, 0, qh, qq, 0, 1, out);
            dattend(qq, RK, RV, T, hd, ref);
            for (int64_t i = 0; i < hd; i++) { err = fmax(err, fabs(out[i] - ref[i])); mag = fmax(mag, fabs(ref[i])); }
            CHECK(err < 2e-5 * fmax(1, mag), "%s: attention error %g", tc->spec, err);
        }
        /* bytes: cold pages + the window's F32 pages + 4 per token */
        int64_t hot = T - cold;
        size_t want = (size_t)(cold / tc->P) * page_bytes(tc) + (size_t)((hot + tc->P - 1) / tc->P) * 8 * tc->P * hd +
                      4 * (size_t)T;
        CHECK(lb__kv_head_bytes(c, 0, g) == want, "%s: bytes %zu, formula %zu", tc->spec, lb__kv_head_bytes(c, 0, g),
              want);
        free(RK); free(RV); free(col); free(score[g]);
    }
    free(k); free(v); free(q); free(K); free(Vv);
    lb__kv_free(c);
}

static void test_tiers(void)
{
    lb_rng_seed(&rng, TEST_SEED);
    const tcase cases[] = {
        {"thinkv:score=knorm,page=16,frac=0.25", "knorm", "int8_ch", NULL, 2, 16, 4, 0, 16},
        {"thinkv:score=snapkv,hi=nvfp4,lobits=4,page=32,frac=0.2", "snapkv", "nvfp4", NULL, 4, 32, 6, 0, 16},
        {"thinkv:score=keydiff,hi=int8_ch,lobits=0,lo=int2_ch_asym,page=8,frac=0.5,residual=20", "keydiff", "int8_ch",
         "int2_ch_asym", 0, 8, 4, 20, 8},
        {"thinkv:score=observed,hi=int4_ch,lobits=0,lo=nvfp4,page=16,frac=0.1", "observed", "int4_ch", "nvfp4", 0, 16,
         2, 0, 16},
        {"thinkv:score=expected,hi=int8_ch,lobits=3,page=8,frac=1", "expected", "int8_ch", NULL, 3, 8, 8, 0, 8},
        {"thinkv:score=random,hi=int8_ch,lobits=2,page=8,frac=0", "random", "int8_ch", NULL, 2, 8, 0, 0, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
}

static void test_bad_spec(void)
{
    static const struct { const char *spec, *want; } bad[] = {
        {"thinkv:frac=1.5", "frac"},
        {"thinkv:frac=-0.1", "frac"},
        {"thinkv:score=paged", "score"},
        {"thinkv:score=f16", "score"},
        {"thinkv:hi=nosuch", "hi"},
        {"thinkv:hi=ternary", "ternary"},
        {"thinkv:lobits=0,lo=int8_ch", "same format"},
        {"thinkv:lo=int4_ch", "lobits=0"},
        {"thinkv:lobits=5", "lobits"},
        {"thinkv:page=3", "page"},
        {"thinkv:page=2048", "page"},
        {"thinkv:bits=2", "bits"},
        {"thinkv+fmt", "storage"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lb_kv *c = mkcache(bad[i].spec, 1, 2, 1, 16, 64);
        CHECK(!c && strstr(lb_errmsg(), bad[i].want), "%s: %s", bad[i].spec, c ? "accepted" : lb_errmsg());
        lb__kv_free(c);
    }
    lb_kv *c = mkcache("thinkv:hi=nvfp4", 1, 2, 1, 8, 64);   /* nvfp4 blocks of 16 do not fit head_dim 8 */
    CHECK(!c && strstr(lb_errmsg(), "block"), "%s", c ? "accepted" : lb_errmsg());
    lb__kv_free(c);
    c = mkcache("thinkv:residual=64", 1, 2, 1, 16, 64);
    CHECK(!c && strstr(lb_errmsg(), "residual"), "%s", c ? "accepted" : lb_errmsg());
    lb__kv_free(c);
}

/* logits of n tokens: the first n1 in batches, compress, the rest one by one */
static void logits_of(const lb_model *m, const char *kv, int th, int64_t n1, int64_t n, const int32_t *tok, float *lg)
{
    lb_session_opts o = {.n_threads = th, .max_ctx = 64, .max_batch = 8, .kv = kv};
    lb_session *s;
    if (lb_session_create(m, &o, &s)) { CHECK(0, "%s: %s", kv, lb_errmsg()); return; }
    int64_t V = m->cfg.vocab_size;
    for (int64_t i = 0; i < n1; i += 8)
        CHECK(!lb_forward_all(s, tok + i, n1 - i < 8 ? n1 - i : 8, lg + i * V), "%s", lb_errmsg());
    CHECK(!lb_session_kv_compress(s), "%s", lb_errmsg());
    for (int64_t i = n1; i < n; i++) CHECK(!lb_forward_all(s, tok + i, 1, lg + i * V), "%s", lb_errmsg());
    lb_session_free(s);
}

static void test_engine(void)
{
    lb_rng_seed(&rng, TEST_SEED);
    tmodel t;
    lb_dtype dt;
    lb_config c = variant(0, &dt);
    c.n_kv_heads = 3;
    c.head_dim = 16;
    c.dim = 48;
    build(&t, c, LB_DTYPE_F32);
    const char *specs[] = {"thinkv:page=8", "thinkv:score=knorm,hi=nvfp4,lobits=0,lo=int2_ch_asym,page=8,residual=8"};
    int64_t n = 45, n1 = 29, V = c.vocab_size;
    int32_t tok[45];
    for (int i = 0; i < n; i++) tok[i] = (int32_t)(lb_rng_uniform(&rng) * (double)V) % (int32_t)V;
    float *a = malloc(sizeof(float) * (size_t)(n * V)), *b = malloc(sizeof(float) * (size_t)(n * V));
    float *f = malloc(sizeof(float) * (size_t)(n * V));
    logits_of(&t.m, "f32", 1, n1, n, tok, f);
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
        logits_of(&t.m, specs[si], 1, n1, n, tok, a);
        CHECK(!memcmp(a, f, sizeof(float) * (size_t)(n1 * V)), "%s: the prompt is held exactly (= f32)", specs[si]);
        for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++)
            for (int th = 1; th <= 2; th++) {
                lb_isa_set((lb_isa)isa);
                logits_of(&t.m, specs[si], th, n1, n, tok, b);
                CHECK(!memcmp(a, b, sizeof(float) * (size_t)(n * V)), "%s: isa %d, %d threads", specs[si], isa, th);
            }
        lb_isa_set(lb_isa_best());
        double md = 0;
        bool finite = true;
        for (int64_t i = n1 * V; i < n * V; i++) {
            md = fmax(md, fabs(a[i] - f[i]));
            finite &= isfinite(a[i]) != 0;
        }
        CHECK(md > 0 && finite, "%s: after compression max logit change vs f32 %g, finite %d", specs[si], md, finite);
    }
    free(a); free(b); free(f);
    unbuild(&t);
}

/* lowbit eval kv's QSNR of a thinkv cache: over the tokens it holds after
 * the compression, each in its format (it read +inf before). With frac=1
 * every held token is an int8_ch row, so the K and V QSNR must equal those
 * of fmt:format=int8_ch, measured by the other path (the f32 cache's keys
 * stored by the storage stage alone): the same rows through the same
 * quantizer. frac=0 (all low tier) must be worse than the default, which
 * must be worse than frac=1. */
static void test_eval_qsnr(void)
{
    lb_rng_seed(&rng, TEST_SEED + 1);
    tmodel t;
    lb_dtype dt;
    lb_config c = variant(0, &dt);
    c.n_kv_heads = 2;
    c.head_dim = 16;
    c.dim = 32;
    c.max_seq = 64;
    build(&t, c, LB_DTYPE_F32);
    int64_t ctx = 40, cont = 8, n = 2 * (ctx + cont + 1);
    int32_t tok[98];
    for (int64_t i = 0; i < n; i++) tok[i] = (int32_t)(lb_rng_u64(&rng) % (uint64_t)c.vocab_size);
    const char *specs[] = {"thinkv:page=8,frac=1", "fmt:format=int8_ch,page=8", "thinkv:page=8,frac=0",
                           "thinkv:page=8", "snapkv:ratio=0.5+thinkv:page=8"};
    lb_kv_eval_row r[5];
    lb_kv_eval_opts o = {.ctx = ctx, .cont = cont, .n_threads = 1, .bos = 1, .specs = specs, .n_specs = 5};
    REQUIRE(lb_eval_kv(&t.m, tok, n, &o, r) == LB_OK, "%s", lb_errmsg());
    for (int i = 0; i < 5; i++) {
        CHECK(r[i].qsnr_held == (i != 1), "%s: qsnr_held %d", specs[i], r[i].qsnr_held);
        CHECK(isfinite(r[i].k_qsnr) && isfinite(r[i].v_qsnr) && r[i].k_qsnr > 0 && r[i].v_qsnr > 0,
              "%s: QSNR %g / %g dB", specs[i], r[i].k_qsnr, r[i].v_qsnr);
    }
    CHECK(fabs(r[0].k_qsnr - r[1].k_qsnr) < 1e-6 && fabs(r[0].v_qsnr - r[1].v_qsnr) < 1e-6,
          "thinkv frac=1 QSNR %.6f / %.6f dB, fmt int8_ch %.6f / %.6f", r[0].k_qsnr, r[0].v_qsnr, r[1].k_qsnr,
          r[1].v_qsnr);
    CHECK(r[2].k_qsnr < r[3].k_qsnr && r[3].k_qsnr < r[0].k_qsnr && r[2].v_qsnr < r[3].v_qsnr &&
          r[3].v_qsnr < r[0].v_qsnr, "QSNR not ordered by frac: K %g %g %g, V %g %g %g", r[2].k_qsnr, r[3].k_qsnr,
          r[0].k_qsnr, r[2].v_qsnr, r[3].v_qsnr, r[0].v_qsnr);
    CHECK(fabs(r[4].tokens_held - 0.5) < 0.05, "snapkv+thinkv holds %g", r[4].tokens_held);
    unbuild(&t);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_tiers);
    RUN(test_bad_spec);
    RUN(test_engine);
    RUN(test_eval_qsnr);
    return TEST_DONE();
}
