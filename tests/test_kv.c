/* test_kv.c: the KV-cache module (src/kv).
 *  - f32 policy: logits of both real models bit-identical to the engine
 *    before the cache module (FNV-1a hashes taken with the flat F32 cache of
 *    commit 326ccf9), at 1 and 2 threads, on every ISA path;
 *  - SPEC parser: full forms, defaults, every error class;
 *  - decode kernels: every ISA path equals the reference, and the reference
 *    equals codes packed and decoded independently here;
 *  - KIVI: stored tokens equal an independent KIVI quantizer written here
 *    (min-max per channel over groups of G tokens for keys, per token and
 *    group for values, F16 scale/min), the window holds exact tokens, bytes
 *    equal the derivation of docs/kv.md; f16/bf16/fmt round trips;
 *  - attention from the cache equals a double-precision softmax over the
 *    cache's own decoded keys/values (any rotation), and after eviction
 *    over the kept tokens only; bytes follow the tokens held;
 *  - a batch equals token-by-token decoding for every policy, thread
 *    counts and ISA paths give the same logits. */
#include "harness.h"
#include "kv/codec.h"
#include "model/model.h"

static lb_rng rng;
#include "tmodel.h"

static uint32_t below(uint32_t n) { return (uint32_t)(lb_rng_uniform(&rng) * n) % n; }

static void randv(float *x, int64_t n, double scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(scale * lb_rng_normal(&rng));
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 1099511628211ull; }
    return h;
}

/* ---- f32 = the engine before src/kv, bit for bit */

static void test_f32_baseline(void)
{
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s/stories260K/stories260K.bin", test_models_dir());
    snprintf(p2, sizeof p2, "%s/tinystories-656k", test_models_dir());
    if (!test_file_exists(p1)) SKIP("no %s", p1);
    const char *paths[2] = {p1, p2};
    const uint64_t want[2] = {0x369f3b5241a3cde8ull, 0x49d6b48914ca84e7ull};
    for (int mi = 0; mi < 2; mi++) {
        lb_model *m;
        if (lb_model_load(paths[mi], &m)) { CHECK(0, "load %s: %s", paths[mi], lb_errmsg()); continue; }
        lb_model_info info;
        lb_model_get_info(m, &info);
        int64_t V = info.vocab_size, n = 300;
        int32_t *tok = malloc(sizeof(int32_t) * (size_t)n);
        float *lg = malloc(sizeof(float) * (size_t)(n * V));
        for (int64_t i = 0; i < n; i++) tok[i] = (int32_t)((i * 7919 + 13) % V);
        for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++)
            for (int th = 1; th <= 2; th++) {
                lb_isa_set((lb_isa)isa);
                lb_session_opts o = {.n_threads = th, .max_ctx = 320, .max_batch = 48, .kv = "f32"};
                lb_session *s;
                REQUIRE(!lb_session_create(m, &o, &s), "%s", lb_errmsg());
                CHECK(!lb_forward_all(s, tok, 200, lg) && !lb_forward_all(s, tok + 200, 100, lg + 200 * V), "fwd");
                uint64_t h = fnv(lg, sizeof(float) * (size_t)(n * V), 1469598103934665603ull);
                CHECK(h == want[mi], "%s isa %d threads %d: hash %016llx, want %016llx", paths[mi], isa, th,
                      (unsigned long long)h, (unsigned long long)want[mi]);
                lb_session_free(s);
            }
        lb_isa_set(lb_isa_best());
        free(tok);
        free(lg);
        lb_model_free(m);
    }
}

/* ---- SPEC */

static void test_spec(void)
{
    lb__kv_spec sp;
    REQUIRE(!lb__kv_parse(NULL, "--kv", &sp), "%s", lb_errmsg());
    CHECK(sp.n == 1 && !strcmp(sp.text, "f32:page=32"), "%s", sp.text);
    REQUIRE(!lb__kv_parse(" kivi : bits=2, residual=64 ", "--kv", &sp), "%s", lb_errmsg());
    CHECK(!strcmp(sp.text, "kivi:bits=2,group=32,residual=64,rot=none"), "%s", sp.text);
    CHECK(lb__kv_get(&sp.st[0], "bits") == 2 && lb__kv_get(&sp.st[0], "group") == 32, "values");
    REQUIRE(!lb__kv_parse("fmt:format=nvfp4,rot=kv", "--kv", &sp), "%s", lb_errmsg());
    CHECK(!strcmp(lb__kv_get_name(&sp.st[0], "format"), "nvfp4") && !strcmp(lb__kv_get_name(&sp.st[0], "rot"), "kv"),
          "names");
    char full[256];
    CHECK(!lb_kv_spec_check("bf16", "--kv", full, sizeof full) && !strcmp(full, "bf16:page=32"), "%s", full);
    const char *bad[][2] = {
        {"foo", "unknown policy 'foo'"},
        {"kivi:bitz=4", "has no parameter 'bitz'"},
        {"kivi:bits=5", "2, 3, 4 or 8"},
        {"kivi:bits=4.5", "whole numbers"},
        {"kivi:bits=x", "not a number"},
        {"kivi:bits=4,bits=2", "given twice"},
        {"kivi:residual=100", "multiple of group"},
        {"kivi:group=48", "power of two"},
        {"kivi+f16", "two storage policies"},
        {"f16+", "empty policy name"},
        {"kivi:bits", "not key=value"},
        {"fmt:format=nope", "not one of"},
        {"fmt:format=ternary", "cannot be a cache format"},
        {"kivi:rot=q", "not one of"},
        {"f32:page=3", "power of two"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lb_status s = lb__kv_parse(bad[i][0], "--kv", &sp);
        CHECK(s == LB_ERR_ARG && strstr(lb_errmsg(), bad[i][1]) && strstr(lb_errmsg(), "--kv"),
              "'%s': status %d, message '%s', want '%s'", bad[i][0], s, lb_errmsg(), bad[i][1]);
    }
    CHECK(lb_kv_policy_count() >= 5 && lb__kv_policy_find("kivi") && !lb__kv_policy_find("nope"), "registry");
    for (int i = 0; i < lb__kv_policy_count(); i++) {   /* every row is usable as the cache drives it */
        const lb__kv_policy *p = lb__kv_policy_at(i);
        bool ratio = false;
        for (int j = 0; j < p->n_params; j++) ratio |= !strcmp(p->params[j].key, "ratio");
        CHECK(p->n_params <= LB_KV_MAX_PARAMS && p->summary && *p->summary, "%s: params/summary", p->name);
        /* a storage row may have a compress step (thinkv re-tiers its pages) */
        if (p->kind == LB_KV_STORE)   /* xquant stores layer inputs X, not pages of K and V (src/kv/xquant.c) */
            CHECK((p->codec || !strcmp(p->name, "xquant")) && !p->score, "%s: a storage row needs a codec", p->name);
        else CHECK(p->compress || (p->score && ratio), "%s: an eviction row needs compress, or score and a ratio", p->name);
        CHECK(lb__kv_policy_find(p->name) == p, "%s: name not unique", p->name);
        lb__kv_spec one;
        CHECK(!lb__kv_parse(p->name, "--kv", &one), "%s: defaults do not parse: %s", p->name, lb_errmsg());
    }
}

/* Random SPECs from SPEC-like pieces: parsed or refused with a message
 * naming the option, never a crash; an accepted SPEC's full form parses to
 * itself. */
static void test_spec_random(void)
{
    static const char *pieces[] = {"kivi", "f16", "f32", "bf16", "fmt", ":", ",", "+", "=", "bits", "group",
                                   "residual", "rot", "format", "page", "4", "2", "32", "128", "0", "-1", "1e9",
                                   "v", "kv", "nvfp4", "int8_ch", "x", " ", "", "0.5", "ratio", "nan"};
    int np = (int)(sizeof pieces / sizeof *pieces), ok = 0;
    for (int it = 0; it < 3000; it++) {
        char spec[200] = "";
        int n = 1 + (int)below(12);
        for (int i = 0; i < n; i++) strncat(spec, pieces[below((uint32_t)np)], sizeof spec - strlen(spec) - 1);
        lb__kv_spec sp, sp2;
        lb_status s = lb__kv_parse(spec, "--kv", &sp);
        if (s) {
            CHECK(s == LB_ERR_ARG && strstr(lb_errmsg(), "--kv"), "'%s': %d %s", spec, s, lb_errmsg());
            continue;
        }
        ok++;
        CHECK(!lb__kv_parse(sp.text, "--kv", &sp2) && !strcmp(sp.text, sp2.text), "'%s' -> '%s' -> '%s'", spec,
              sp.text, sp2.text);
    }
    CHECK(ok > 10, "only %d random SPECs parsed", ok);
    lb_session *s;   /* through the public API: the session is refused, the message names the cache */
    tmodel t;
    build(&t, base_cfg(), LB_DTYPE_F32);
    lb_session_opts o = {.n_threads = 1, .max_ctx = 16, .kv = "kivi:residual=32"};
    CHECK(lb_session_create(&t.m, &o, &s) == LB_ERR_ARG && strstr(lb_errmsg(), "kv: kivi residual=32"), "%s",
          lb_errmsg());
    o.kv = "kivi:bits=3,group=8,residual=8";
    CHECK(!lb_session_create(&t.m, &o, &s), "%s", lb_errmsg());
    lb_kv_stats st;
    int32_t tok[12] = {1, 5, 9, 3, 4, 7, 8, 2, 6, 1, 0, 3};
    CHECK(!lb_forward(s, tok, 12, NULL) && !lb_session_kv_stats(s, &st), "%s", lb_errmsg());
    CHECK(st.positions == 12 && st.tokens == 12 * 2 * 6 && st.hot_tokens == 12 * 2 * 6 &&
          !strcmp(st.spec, "kivi:bits=3,group=8,residual=8,rot=none"), "stats %lld %lld %s", (long long)st.positions,
          (long long)st.tokens, st.spec);
    CHECK(!lb_forward(s, tok, 4, NULL) && !lb_session_kv_stats(s, &st) && st.hot_tokens == 8 * 2 * 6,
          "window after 16 tokens: %lld", (long long)st.hot_tokens);
    lb_session_free(s);
    unbuild(&t);
}

/* ---- decode kernels */

static void pack_codes(const unsigned *q, int64_t n, int bits, uint8_t *out)
{
    memset(out, 0, (size_t)(n * bits / 8));
    for (int64_t i = 0; i < n; i++)
        for (int b = 0; b < bits; b++)
            if (q[i] >> b & 1) out[(i * bits + b) / 8] |= (uint8_t)(1u << ((i * bits + b) % 8));
}

static void test_dequant_kernels(void)
{
    static const int bitss[] = {2, 3, 4, 8};
    unsigned q[256];
    uint8_t packed[256];
    float s[256], m[256], want[256], got[256];
    for (int bi = 0; bi < 4; bi++)
        for (int gsh = 0; gsh <= 5; gsh += (gsh == 0 ? 3 : 1)) {
            int bits = bitss[bi];
            int64_t n = 8 * (1 + (int64_t)below(32));
            for (int64_t i = 0; i < n; i++) {
                q[i] = (unsigned)below(1u << bits);
                s[i] = (float)lb_rng_normal(&rng);
                m[i] = (float)lb_rng_normal(&rng);
            }
            pack_codes(q, n, bits, packed);
            for (int64_t i = 0; i < n; i++) {
                volatile float t = (float)q[i] * s[i >> gsh];
                want[i] = t + m[i >> gsh];
            }
            for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++) {
                lb__kv_kernels_for((lb_isa)isa)->dq(packed, bits, n, s, m, gsh, got);
                CHECK(!memcmp(got, want, sizeof(float) * (size_t)n), "dq isa %d bits %d gsh %d n %lld", isa, bits,
                      gsh, (long long)n);
            }
        }
    static const int64_t hds[] = {8, 16, 24, 64, 72, 100};   /* the page sum: every path = the reference */
    float w[40], v[40 * 100], o0[100], o1[100];
    for (int hi = 0; hi < 6; hi++) {
        int64_t hd = hds[hi], n = 1 + (int64_t)below(40);
        randv(w, n, 1);
        randv(v, n * hd, 1);
        randv(o0, hd, 1);
        memcpy(o1, o0, sizeof(float) * (size_t)hd);
        lb__kv_acc_ref(w, v, n, hd, o0);
        for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++) {
            float o2[100];
            memcpy(o2, o1, sizeof(float) * (size_t)hd);
            lb__kv_kernels_for((lb_isa)isa)->acc(w, v, n, hd, o2);
            CHECK(!memcmp(o2, o0, sizeof(float) * (size_t)hd), "acc isa %d hd %lld n %lld", isa, (long long)hd,
                  (long long)n);
        }
        for (int64_t p = 0; p < n; p++) lb__axpy_ref(w[p], v + p * hd, o1, hd);   /* the engine's arithmetic */
        CHECK(!memcmp(o1, o0, sizeof(float) * (size_t)hd), "acc != axpy per token, hd %lld", (long long)hd);
    }
    uint16_t h[77];
    float a[77], b[77];
    for (int i = 0; i < 77; i++) h[i] = (uint16_t)below(0x7c00) | (uint16_t)(i % 2 ? 0x8000 : 0);
    lb__kv_f16_ref(h, 77, a);
    for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++) {
        lb__kv_kernels_for((lb_isa)isa)->f16(h, 77, b);
        CHECK(!memcmp(a, b, sizeof a), "f16 isa %d", isa);
    }
    lb__kv_bf16_ref(h, 77, a);
    for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++) {
        lb__kv_kernels_for((lb_isa)isa)->bf16(h, 77, b);
        CHECK(!memcmp(a, b, sizeof a), "bf16 isa %d", isa);
    }
}

/* ---- one-head caches filled with random tokens */

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


/* Independent KIVI: x^ of the values x[i * stride], i < n (min-max, F16 s/m). */
static void kivi_ref(const float *x, int64_t n, int64_t stride, int bits, float *y)
{
    float lo = x[0], hi = x[0];
    for (int64_t i = 1; i < n; i++) {
        if (x[i * stride] < lo) lo = x[i * stride];
        if (x[i * stride] > hi) hi = x[i * stride];
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

static void test_kivi_store(void)
{
    static const int64_t hds[] = {8, 16, 64};
    static const int bitss[] = {2, 3, 4, 8};
    for (int hi = 0; hi < 3; hi++)
        for (int bi = 0; bi < 4; bi++) {
            int64_t hd = hds[hi], G = 32, R = bi % 2 ? 64 : 0, T = 150 + (int64_t)below(40);
            int bits = bitss[bi];
            char spec[96];
            snprintf(spec, sizeof spec, "kivi:bits=%d,residual=%lld", bits, (long long)R);
            lb_kv *c = mkcache(spec, 1, 2, 1, hd, 256);
            REQUIRE(c, "%s: %s", spec, lb_errmsg());
            float *k = malloc(sizeof(float) * (size_t)(T * hd)), *v = malloc(sizeof(float) * (size_t)(T * hd));
            float *rk = malloc(sizeof(float) * (size_t)(T * hd)), *rv = malloc(sizeof(float) * (size_t)(T * hd));
            float *gk = malloc(sizeof(float) * (size_t)(T * hd)), *gv = malloc(sizeof(float) * (size_t)(T * hd));
            randv(k, T * hd, 2);
            randv(v, T * hd, 1);
            for (int64_t t = 0; t < T; t++) lb__kv_append(c, 0, t, k + t * hd, v + t * hd);
            int64_t cold = R + G > T ? 0 : (T - R) / G * G, gv_ = hd < G ? hd : G;
            memcpy(rk, k, sizeof(float) * (size_t)(T * hd));
            memcpy(rv, v, sizeof(float) * (size_t)(T * hd));
            for (int64_t g0 = 0; g0 < cold; g0 += G)
                for (int64_t ch = 0; ch < hd; ch++) kivi_ref(k + g0 * hd + ch, G, hd, bits, rk + g0 * hd + ch);
            for (int64_t t = 0; t < cold; t++)
                for (int64_t g = 0; g < hd; g += gv_) kivi_ref(v + t * hd + g, gv_, 1, bits, rv + t * hd + g);
            CHECK(lb__kv_tokens(c, 0, 0) == T, "tokens %lld", (long long)lb__kv_tokens(c, 0, 0));
            lb__kv_read(c, 0, 0, 0, T, gk, gv);
            CHECK(!memcmp(gk, rk, sizeof(float) * (size_t)(T * hd)), "%s hd %lld: keys differ from the reference", spec,
                  (long long)hd);
            CHECK(!memcmp(gv, rv, sizeof(float) * (size_t)(T * hd)), "%s hd %lld: values differ", spec, (long long)hd);
            /* docs/kv.md: cold pages of G tokens (codes, F16 scale/min per key channel and per value group),
             * the window in F32 pages of G tokens, 4 bytes of position per token */
            int64_t hot = T - cold;
            size_t page = (size_t)(2 * G * hd * bits / 8 + 2 * (2 * hd + 2 * G * (hd / gv_)));
            size_t want = (size_t)(cold / G) * page + (size_t)((hot + G - 1) / G * G * hd * 8) + (size_t)(4 * T);
            CHECK(lb__kv_head_bytes(c, 0, 0) == want, "%s hd %lld T %lld: bytes %zu, derived %zu", spec, (long long)hd,
                  (long long)T, lb__kv_head_bytes(c, 0, 0), want);
            lb__kv_free(c);
            free(k); free(v); free(rk); free(rv); free(gk); free(gv);
        }
}

static void test_plain_store(void)
{
    const char *specs[] = {"f32", "f16", "bf16", "fmt:format=int8_ch", "fmt:format=nvfp4", "fmt:format=int4_ch,residual=8"};
    int64_t hd = 16, T = 70;
    float k[70 * 16], v[70 * 16], gk[70 * 16], gv[70 * 16], want[16];
    randv(k, T * hd, 1);
    randv(v, T * hd, 1);
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
        lb_kv *c = mkcache(specs[si], 1, 1, 1, hd, 128);
        REQUIRE(c, "%s: %s", specs[si], lb_errmsg());
        for (int64_t t = 0; t < T; t++) lb__kv_append(c, 0, t, k + t * hd, v + t * hd);
        lb__kv_read(c, 0, 0, 0, T, gk, gv);
        const lb_format *f = si >= 3 ? lb_format_find(si == 3 ? "int8_ch" : si == 4 ? "nvfp4" : "int4_ch") : NULL;
        int64_t window = si == 5 ? 8 : 0;
        for (int64_t t = 0; t < T; t++)
            for (int kvs = 0; kvs < 2; kvs++) {
                const float *x = (kvs ? v : k) + t * hd, *g = (kvs ? gv : gk) + t * hd;
                for (int64_t i = 0; i < hd; i++)
                    want[i] = si == 1 ? lb_f16_to_f32(lb_f32_to_f16(x[i])) : si == 2 ? lb_bf16_to_f32(lb_f32_to_bf16(x[i])) : x[i];
                if (f && t < T - window) {
                    uint8_t buf[64];
                    float ts = 1;
                    lb_format_quantize(f, NULL, x, 1, hd, buf, &ts);
                    lb_format_dequantize(f, buf, ts, 1, hd, want);
                }
                CHECK(!memcmp(g, want, sizeof want), "%s token %lld %s differs", specs[si], (long long)t, kvs ? "v" : "k");
            }
        lb__kv_free(c);
    }
    CHECK(!mkcache("fmt:format=mxfp4", 1, 1, 1, 16, 64) && strstr(lb_errmsg(), "block"), "mxfp4 at hd 16: %s",
          lb_errmsg());
    CHECK(!mkcache("kivi:residual=64", 1, 1, 1, 16, 64) && strstr(lb_errmsg(), "not shorter than the context"), "%s",
          lb_errmsg());
}

/* ---- attention and eviction */

/* out = softmax(q K^T / sqrt(hd)) V in double over the n rows given. */
static void dattend(const float *q, const float *K, const float *Vv, int64_t n, int64_t hd, double *out)
{
    double mx = -1e300, *w = malloc(sizeof(double) * (size_t)n), sum = 0;
    for (int64_t p = 0; p < n; p++) {
        double d = 0;
        for (int64_t i = 0; i < hd; i++) d += (double)q[i] * K[p * hd + i];
        w[p] = d / sqrt((double)hd);
        if (w[p] > mx) mx = w[p];
    }
    for (int64_t p = 0; p < n; p++) sum += (w[p] = exp(w[p] - mx));
    for (int64_t i = 0; i < hd; i++) out[i] = 0;
    for (int64_t p = 0; p < n; p++)
        for (int64_t i = 0; i < hd; i++) out[i] += w[p] / sum * Vv[p * hd + i];
    free(w);
}

static void check_attend(lb_kv *c, int64_t kvh, int64_t hd, int64_t skip, const char *what)
{
    int64_t n = lb__kv_tokens(c, 0, kvh) - skip;
    float *K = malloc(sizeof(float) * (size_t)(n * hd)), *Vv = malloc(sizeof(float) * (size_t)(n * hd));
    float q[64], out[64];
    double ref[64];
    randv(q, hd, 1);
    lb__kv_read(c, 0, kvh, 0, n, K, Vv);
    dattend(q, K, Vv, n, hd, ref);
    lb__kv_attend(c, 0, kvh * 2 + 1, q, skip, 1, out);   /* query head 2 kvh + 1 of a GQA pair */
    double err = 0;
    for (int64_t i = 0; i < hd; i++) err = fmax(err, fabs(out[i] - ref[i]));
    CHECK(err < 2e-5, "%s: attention error %g", what, err);
    free(K);
    free(Vv);
}

static void test_attend_evict(void)
{
    const char *specs[] = {"f32", "f16", "kivi:bits=4,residual=32", "kivi:bits=2,residual=0,rot=kv",
                           "fmt:format=int8_ch,rot=v", "kivi:bits=3,rot=k,residual=64"};
    int64_t hd = 16, T = 200;
    float *k = malloc(sizeof(float) * (size_t)(T * 2 * hd)), *v = malloc(sizeof(float) * (size_t)(T * 2 * hd));
    randv(k, T * 2 * hd, 1.5);
    randv(v, T * 2 * hd, 1);
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
        lb_kv *c = mkcache(specs[si], 1, 4, 2, hd, 256);
        REQUIRE(c, "%s: %s", specs[si], lb_errmsg());
        for (int64_t t = 0; t < T; t++) lb__kv_append(c, 0, t, k + t * 2 * hd, v + t * 2 * hd);
        check_attend(c, 0, hd, 0, specs[si]);
        check_attend(c, 1, hd, 3, specs[si]);
        size_t b0 = lb__kv_head_bytes(c, 0, 1);
        /* keep every third slot of head 1 (and all of head 0) */
        int64_t keep[200], nk = 0;
        for (int64_t i = 0; i < T; i += 3) keep[nk++] = i;
        float *K0 = malloc(sizeof(float) * (size_t)(T * hd)), *K1 = malloc(sizeof(float) * (size_t)(nk * hd));
        lb__kv_read(c, 0, 1, 0, T, K0, NULL);
        REQUIRE(!lb__kv_keep(c, 0, 1, keep, nk), "%s", lb_errmsg());
        CHECK(lb__kv_tokens(c, 0, 1) == nk && lb__kv_tokens(c, 0, 0) == T, "tokens after keep");
        const int32_t *pos = lb__kv_positions(c, 0, 1);
        bool ok = true;
        for (int64_t i = 0; i < nk; i++) ok &= pos[i] == keep[i];
        CHECK(ok, "%s: positions after keep", specs[si]);
        lb__kv_read(c, 0, 1, 0, nk, K1, NULL);
        /* exact where tokens are stored exactly; re-quantized in new groups otherwise: at most one step of
         * the whole range at that width */
        static const int bits[] = {32, 16, 4, 2, 8, 3};
        double err = 0, lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < T * hd; i++) { lo = fmin(lo, K0[i]); hi = fmax(hi, K0[i]); }
        for (int64_t i = 0; i < nk; i++)
            for (int64_t j = 0; j < hd; j++) err = fmax(err, fabs(K1[i * hd + j] - K0[keep[i] * hd + j]));
        CHECK(si < 2 ? err == 0 : err <= (hi - lo) / ((1 << bits[si]) - 1), "%s: kept keys moved by %g", specs[si], err);
        size_t b1 = lb__kv_head_bytes(c, 0, 1);   /* a window stays F32: smaller, not by 2/3 */
        CHECK((si < 2 ? b1 < b0 * 2 / 3 + 64 * hd : b1 < b0) && lb__kv_head_bytes(c, 0, 0) == b0, "%s: bytes %zu of %zu",
              specs[si], b1, b0);
        check_attend(c, 1, hd, 0, specs[si]);
        check_attend(c, 0, hd, 0, specs[si]);
        /* keep_top: the highest scores win, ties to the later slot */
        float sc[200];
        for (int64_t i = 0; i < nk; i++) sc[i] = (float)(i % 5);
        REQUIRE(!lb__kv_keep_top(c, 0, 1, sc, 10), "%s", lb_errmsg());
        pos = lb__kv_positions(c, 0, 1);
        ok = lb__kv_tokens(c, 0, 1) == 10;
        for (int64_t i = 0, j = 0; i < nk && ok; i++) {
            int64_t above = 0;   /* slots ranked before i: higher score, or equal and later */
            for (int64_t x = 0; x < nk; x++) above += sc[x] > sc[i] || (sc[x] == sc[i] && x > i);
            if (above < 10) ok &= pos[j++] == keep[i];
        }
        CHECK(ok, "%s: keep_top picked other slots", specs[si]);
        free(K0);
        free(K1);
        lb__kv_free(c);
    }
    free(k);
    free(v);
}

/* ---- the whole engine: batch = token by token, threads and ISA */

static void logits_of(const lb_model *m, const char *kv, int th, int64_t batch, int64_t n, const int32_t *tok,
                      float *lg)
{
    lb_session_opts o = {.n_threads = th, .max_ctx = 40, .max_batch = batch, .kv = kv};
    lb_session *s;
    if (lb_session_create(m, &o, &s)) { CHECK(0, "%s: %s", kv, lb_errmsg()); return; }
    int64_t V = m->cfg.vocab_size;
    for (int64_t i = 0; i < n; i += batch) {
        int64_t b = n - i < batch ? n - i : batch;
        CHECK(!lb_forward_all(s, tok + i, b, lg + i * V), "%s", lb_errmsg());
    }
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
    const char *specs[] = {"f16", "bf16", "kivi:bits=2,group=8,residual=8", "kivi:bits=4,group=8,residual=0,rot=kv",
                           "fmt:format=nvfp4,residual=4", "fmt:format=int8_ch"};
    int64_t n = 37, V = c.vocab_size;
    int32_t tok[37];
    for (int i = 0; i < n; i++) tok[i] = (int32_t)below((uint32_t)V);
    float *a = malloc(sizeof(float) * (size_t)(n * V)), *b = malloc(sizeof(float) * (size_t)(n * V));
    float *f = malloc(sizeof(float) * (size_t)(n * V));
    logits_of(&t.m, "f32", 1, 64, n, tok, f);
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
        logits_of(&t.m, specs[si], 1, 1, n, tok, a);
        logits_of(&t.m, specs[si], 2, 64, n, tok, b);
        CHECK(!memcmp(a, b, sizeof(float) * (size_t)(n * V)), "%s: batch of 37 at 2 threads != token by token",
              specs[si]);
        for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++) {
            lb_isa_set((lb_isa)isa);
            logits_of(&t.m, specs[si], 3, 5, n, tok, b);
            CHECK(!memcmp(a, b, sizeof(float) * (size_t)(n * V)), "%s: isa %d, batches of 5", specs[si], isa);
        }
        lb_isa_set(lb_isa_best());
        double md = 0;   /* a lossy cache changes the logits and keeps them finite */
        bool finite = true;
        for (int64_t i = 0; i < n * V; i++) {
            md = fmax(md, fabs(a[i] - f[i]));
            finite &= isfinite(a[i]) != 0;
        }
        CHECK(md > 0 && finite, "%s: max logit change vs f32 %g, all finite %d", specs[si], md, finite);
    }
    free(a); free(b); free(f);
    unbuild(&t);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_spec);
    RUN(test_spec_random);
    RUN(test_dequant_kernels);
    RUN(test_kivi_store);
    RUN(test_plain_store);
    RUN(test_attend_evict);
    RUN(test_engine);
    RUN(test_f32_baseline);
    return TEST_DONE();
}
