/* test_bf16dot.c: the "bf16 x bf16" products of kernels/bf16dot.h (dense
 * BF16 weights x activations rounded to BF16, VDPBF16PS arithmetic).
 *
 *   - the definition restated here independently (lanes over pairs,
 *     odd element first, denormals found with fpclassify instead of bit
 *     tests, padding written as a separate tail loop) against the
 *     reference on random, tiny and special inputs, plus spec examples: the
 *     odd-first order changes a result, a denormal input counts as zero, a
 *     denormal result is flushed (keeping its sign), Inf and NaN propagate,
 *     activation rounding ties go to even;
 *   - the reference against a double-precision dot of the same BF16 values
 *     within the derived bound (m + 4) u sum |w x| (m FMA steps per lane,
 *     4 tree additions);
 *   - every ISA path the CPU has bit for bit against the reference: rows
 *     1-37, cols 7-172 (multiples of 32 and not), tokens 1-7, 9, 67, row
 *     sub-ranges, random BF16 bytes (denormals, Inf, NaN), tiny values that
 *     cancel into denormals (the AVX2 flushing path), and inputs where only
 *     DAZ and FTZ make every product vanish (decode and prefill);
 *   - lb__linear with "bf16" activations at 1 and 2 threads on every ISA:
 *     dense BF16 weights give the kernel's bits, an F32 weight sharing the
 *     input gets the BF16-rounded input (simulation);
 *   - models: a synthetic BF16 model and tinystories-656k converted to BF16
 *     give identical logits at 1 and 2 threads and on every ISA, close to
 *     FP32 activations but not equal, and survive save/load. */
#include "harness.h"
#include "kernels/bf16dot.h"
#include "weights/weights.h"
#include <float.h>
#include <unistd.h>

static lb_rng rng;
#include "tmodel.h"

static int n_isas(void) { return (int)lb_isa_best() + 1; }
static bool same(float a, float b) { return (isnan(a) && isnan(b)) || !memcmp(&a, &b, 4); }

/* ---- the definition, restated */

static float as_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Denormal -> zero of the same sign (inputs and step results alike). */
static float flush(float v) { return fpclassify(v) == FP_SUBNORMAL ? copysignf(0.0f, v) : v; }

static float spec_dot(const uint16_t *w, const uint16_t *x, int64_t n)
{
    float lane[16];
    for (int j = 0; j < 16; j++) lane[j] = 0.0f;
    int64_t full = n / 32 * 32;
    for (int64_t s = 0; s < full; s += 32)
        for (int j = 0; j < 16; j++) {
            const uint16_t *wp = w + s + 2 * j, *xp = x + s + 2 * j;
            lane[j] = flush(fmaf(flush(as_float(wp[1])), flush(as_float(xp[1])), lane[j]));
            lane[j] = flush(fmaf(flush(as_float(wp[0])), flush(as_float(xp[0])), lane[j]));
        }
    if (full < n) {   /* the last step, zero-padded */
        uint16_t wt[32] = {0}, xt[32] = {0};
        memcpy(wt, w + full, sizeof(uint16_t) * (size_t)(n - full));
        memcpy(xt, x + full, sizeof(uint16_t) * (size_t)(n - full));
        for (int j = 0; j < 16; j++) {
            lane[j] = flush(fmaf(flush(as_float(wt[2 * j + 1])), flush(as_float(xt[2 * j + 1])), lane[j]));
            lane[j] = flush(fmaf(flush(as_float(wt[2 * j])), flush(as_float(xt[2 * j])), lane[j]));
        }
    }
    float l8[8], l4[4], l2[2];
    for (int j = 0; j < 8; j++) l8[j] = lane[j] + lane[j + 8];
    for (int j = 0; j < 4; j++) l4[j] = l8[j] + l8[j + 4];
    for (int j = 0; j < 2; j++) l2[j] = l4[j] + l4[j + 2];
    return l2[0] + l2[1];
}

/* ---- inputs */

static uint16_t bf(float v) { return lb_f32_to_bf16(v); }

enum { GAUSS, BYTES, TINY, MIXED };

/* n BF16 values of one kind: Gaussian; random bytes (every code: denormals,
 * Inf, NaN); tiny (|v| ~ 2^-60..2^-70, both signs: sums cancel to denormals);
 * mixed (Gaussian with a few tiny elements). */
static void fill(uint16_t *v, int64_t n, int kind)
{
    for (int64_t i = 0; i < n; i++) {
        if (kind == BYTES) v[i] = (uint16_t)lb_rng_u64(&rng);
        else if (kind == TINY) v[i] = bf(ldexpf((float)lb_rng_normal(&rng), -60 - (int)(lb_rng_u64(&rng) % 10)));
        else v[i] = bf((float)lb_rng_normal(&rng));
        if (kind == MIXED && lb_rng_u64(&rng) % 16 == 0) v[i] = bf(ldexpf((float)lb_rng_normal(&rng), -64));
    }
}

/* Activations as the kernels take them (rounded, denormals zeroed). */
static void act_of(const uint16_t *raw, int64_t n, uint16_t *out, bool *tiny)
{
    for (int64_t i = 0; i < n; i++) {
        out[i] = lb__bf16_daz(raw[i]);
        *tiny = *tiny || lb__bf16_tiny(out[i]);
    }
}

static float ref1(const uint16_t *w, const uint16_t *x, int64_t n)
{
    lb_mat m = {.data = w, .dtype = LB_DTYPE_BF16, .rows = 1, .cols = n};
    lb__bact a = {.x = x, .xs = n};
    float y;
    lb__bdot_ref(&m, 0, 1, &a, 1, &y, 1);
    return y;
}

/* ---- tests */

static void test_spec(void)
{
    static const int64_t ns[] = {1, 2, 31, 32, 33, 64, 100, 160, 172};
    uint16_t w[172], x[172], xa[172];
    int bad = 0;
    for (int rep = 0; rep < 200; rep++)
        for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
            int64_t n = ns[k];
            fill(w, n, rep % 4);
            fill(x, n, (rep / 4) % 4);
            bool tiny = false;
            act_of(x, n, xa, &tiny);
            float a = spec_dot(w, xa, n), b = ref1(w, xa, n);
            if (!same(a, b) && bad++ < 5) CHECK(0, "n %lld kind %d/%d: spec %a ref %a", (long long)n, rep % 4, (rep / 4) % 4, a, b);
        }
    CHECK(!bad, "%d differ", bad);
}

/* Hand-made cases whose answers follow from the SDM text alone. */
static void test_examples(void)
{
    uint16_t w[64] = {0}, x[64] = {0};
    for (int i = 0; i < 64; i++) x[i] = bf(1.0f);
    /* lane 0: step 1 gives 1 + 2^-23; step 2 adds 2^-24 (odd, a tie: rounds
     * to even 1 + 2^-22) then -2^-24 (1 + 3 * 2^-24, a tie: 1 + 2^-22). Even
     * first would give 1 + 2^-24 -> 1, then 1 + 2^-24 -> 1. */
    w[1] = bf(1.0f); w[0] = bf(0x1p-23f); w[33] = bf(0x1p-24f); w[32] = bf(-0x1p-24f);
    float y = ref1(w, x, 64);
    CHECK(y == 1.0f + 0x1p-22f, "odd first: %a, want %a (even first would give 1)", y, 1.0f + 0x1p-22f);
    CHECK(same(spec_dot(w, x, 64), y), "spec %a", spec_dot(w, x, 64));
    /* a denormal weight counts as zero: 2^-133 * 2^100 would be 2^-33 */
    memset(w, 0, sizeof w);
    w[5] = 0x0001; x[5] = bf(0x1p100f);
    CHECK(ref1(w, x, 64) == 0.0f, "DAZ: %a", ref1(w, x, 64));
    /* a denormal product is flushed: 2^-70 * 2^-70 = 2^-140 -> 0 */
    w[5] = bf(0x1p-70f); x[5] = bf(0x1p-70f);
    y = ref1(w, x, 64);
    CHECK(y == 0.0f, "FTZ: %a", y);
    /* ... keeping its sign: one step where every lane's odd product flushes
     * to -0 and its even product is 0 * -1 = -0 (-0 + -0 = -0; a +0 would
     * make it +0), so the tree's sum is -0 */
    for (int j = 0; j < 16; j++) {
        w[2 * j + 1] = bf(-0x1p-70f); x[2 * j + 1] = bf(0x1p-70f);
        w[2 * j] = 0; x[2 * j] = bf(-1.0f);
    }
    y = ref1(w, x, 32);
    CHECK(y == 0.0f && signbit(y), "FTZ sign: %a (want -0)", y);
    CHECK(same(spec_dot(w, x, 32), y), "spec %a", spec_dot(w, x, 32));
    for (int i = 0; i < 64; i++) x[i] = bf(1.0f);
    /* a denormal sum is flushed, then later steps start from zero:
     * 2^-125 - 1.5 * 2^-126 = 2^-127 -> 0, then + 2^-126 = 2^-126 */
    memset(w, 0, sizeof w);
    w[1] = bf(0x1p-125f); w[0] = bf(-0x1.8p-126f); w[33] = bf(0x1p-126f);
    y = ref1(w, x, 64);
    CHECK(y == 0x1p-126f, "flushed step: %a, want 2^-126 (unflushed: 2^-126 + 2^-127)", y);
    /* Inf and NaN */
    memset(w, 0, sizeof w);
    w[3] = bf(INFINITY);
    CHECK(isinf(ref1(w, x, 64)) && ref1(w, x, 64) > 0, "Inf: %a", ref1(w, x, 64));
    w[4] = bf(-INFINITY);
    CHECK(isnan(ref1(w, x, 64)), "Inf - Inf: %a", ref1(w, x, 64));
    w[4] = 0; x[3] = 0;
    CHECK(isnan(ref1(w, x, 64)), "Inf * 0: %a", ref1(w, x, 64));
    x[3] = bf(1.0f); w[3] = 0; w[40] = 0x7fc1;
    CHECK(isnan(ref1(w, x, 64)), "NaN: %a", ref1(w, x, 64));
    /* activation rounding: ties to even, NaN stays NaN, denormals to zero */
    float in[6] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -(1.0f + 0x1p-8f), NAN, 0x1p-130f, -0x1p-140f};
    uint16_t out[6];
    bool tiny = lb__bf16_act_rows(in, 6, 6, 0, 1, out, 6);
    CHECK(out[0] == 0x3f80 && out[1] == 0x3f82 && out[2] == 0xbf80, "ties: %04x %04x %04x", out[0], out[1], out[2]);
    CHECK((out[3] & 0x7f80) == 0x7f80 && (out[3] & 0x7f), "NaN: %04x", out[3]);
    CHECK(out[4] == 0x0000 && out[5] == 0x8000, "denormals: %04x %04x", out[4], out[5]);
    CHECK(!tiny, "no tiny value left");
    float in2[2] = {0x1p-60f, 1.0f};
    CHECK(lb__bf16_act_rows(in2, 2, 2, 0, 1, out, 2), "2^-60 is tiny");
}

/* The reference within (m + 4) u sum |w x| of the exact dot (no denormals). */
static void test_bound(void)
{
    uint16_t w[1000], x[1000];
    double worst = 0;
    for (int rep = 0; rep < 50; rep++) {
        int64_t n = 1 + (int64_t)(lb_rng_u64(&rng) % 1000);
        fill(w, n, GAUSS);
        fill(x, n, GAUSS);
        double exact = 0, mag = 0;
        for (int64_t i = 0; i < n; i++) {
            exact += (double)as_float(w[i]) * as_float(x[i]);   /* products exact, sum nearly */
            mag += fabs((double)as_float(w[i]) * as_float(x[i]));
        }
        double m = 2.0 * (double)((n + 31) / 32), bound = (m + 4) * 0x1p-24 * mag * 1.0001 + 1e-300;
        double e = fabs(ref1(w, x, n) - exact);
        CHECK(e <= bound, "n %lld: error %g > bound %g", (long long)n, e, bound);
        worst = fmax(worst, e / bound);
    }
    printf("  reference vs double: worst error %.3f of the bound\n", worst);
}

static void check_isa_case(int64_t rows, int64_t cols, int64_t nt, int wk, int xk)
{
    uint16_t *w = malloc(sizeof(uint16_t) * (size_t)(rows * cols)), *xr = malloc(sizeof(uint16_t) * (size_t)(nt * cols));
    uint16_t *xa = malloc(sizeof(uint16_t) * (size_t)(nt * cols));
    float *want = malloc(sizeof(float) * (size_t)(rows * nt)), *got = malloc(sizeof(float) * (size_t)(rows * nt));
    fill(w, rows * cols, wk);
    fill(xr, nt * cols, xk);
    bool tiny = false;
    act_of(xr, nt * cols, xa, &tiny);
    lb_mat m = {.data = w, .dtype = LB_DTYPE_BF16, .rows = rows, .cols = cols};
    lb__bact a = {.x = xa, .xs = cols, .tiny = tiny};
    lb__bdot_ref(&m, 0, rows, &a, nt, want, rows);
    for (int isa = 1; isa < n_isas(); isa++) {
        for (int split = 0; split < 2; split++) {
            for (int64_t i = 0; i < rows * nt; i++) got[i] = -1.0f;
            int64_t mid = split ? rows / 3 : 0;
            if (mid) lb__bdot_for((lb_isa)isa)(&m, 0, mid, &a, nt, got, rows);
            lb__bdot_for((lb_isa)isa)(&m, mid, rows, &a, nt, got, rows);
            int bad = 0;
            for (int64_t i = 0; i < rows * nt; i++) bad += !same(got[i], want[i]);
            CHECK(!bad, "%s rows %lld cols %lld nt %lld kinds %d/%d split %lld: %d of %lld differ (e.g. %a vs %a)",
                  lb_isa_name((lb_isa)isa), (long long)rows, (long long)cols, (long long)nt, wk, xk, (long long)mid,
                  bad, (long long)(rows * nt), got[0], want[0]);
        }
    }
    free(w); free(xr); free(xa); free(want); free(got);
}

/* Where flushing decides everything: activations 2^100 at even columns and
 * 2^-50 at odd ones (neither is tiny, so nothing tells the kernel up front),
 * weights denormal or zero at even columns (DAZ: 0; without it ~2^-30) and
 * 2^-80 * m or zero at odd ones (products ~2^-130: FTZ gives 0). Every
 * product vanishes, so every path must give 0 exactly. */
static void test_flush_needed(void)
{
    static const int64_t shapes[][3] = {{1, 32, 1}, {4, 64, 1}, {5, 100, 1}, {9, 96, 2}, {3, 64, 2}, {2, 160, 3}, {7, 33, 5}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        int64_t rows = shapes[k][0], cols = shapes[k][1], nt = shapes[k][2];
        uint16_t *w = malloc(sizeof(uint16_t) * (size_t)(rows * cols)), *x = malloc(sizeof(uint16_t) * (size_t)(nt * cols));
        float *y = malloc(sizeof(float) * (size_t)(rows * nt));
        for (int64_t i = 0; i < rows * cols; i++) {
            uint16_t sign = (uint16_t)(lb_rng_u64(&rng) & 0x8000u);
            bool zero = lb_rng_u64(&rng) % 3 == 0;
            if (i % cols % 2 == 0) w[i] = zero ? 0 : (uint16_t)(sign | (1 + lb_rng_u64(&rng) % 127));
            else w[i] = zero ? 0 : (uint16_t)(sign | bf(ldexpf(1.0f + (float)lb_rng_uniform(&rng), -80)));
        }
        for (int64_t i = 0; i < nt * cols; i++) x[i] = bf(ldexpf(lb_rng_u64(&rng) & 1 ? -1.5f : 1.25f, i % cols % 2 ? -50 : 100));
        lb_mat m = {.data = w, .dtype = LB_DTYPE_BF16, .rows = rows, .cols = cols};
        lb__bact a = {.x = x, .xs = cols, .tiny = false};
        for (int isa = 0; isa < n_isas(); isa++) {
            for (int64_t i = 0; i < rows * nt; i++) y[i] = -1.0f;
            lb__bdot_for((lb_isa)isa)(&m, 0, rows, &a, nt, y, rows);
            int bad = 0;
            for (int64_t i = 0; i < rows * nt; i++) bad += y[i] != 0.0f;
            CHECK(!bad, "%s rows %lld cols %lld nt %lld: %d results not 0 (e.g. %a)", lb_isa_name((lb_isa)isa),
                  (long long)rows, (long long)cols, (long long)nt, bad, y[0]);
        }
        free(w); free(x); free(y);
    }
}

static void test_isa_paths(void)
{
    if (n_isas() < 2) printf("  only the reference path on this CPU\n");
    static const int64_t rows[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 37};
    static const int64_t cols[] = {7, 32, 33, 64, 96, 100, 160, 172};
    static const int64_t nts[] = {1, 2, 3, 4, 5, 6, 7, 9, 67};
    int i = 0;
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
        for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
            for (size_t t = 0; t < sizeof nts / sizeof *nts; t++, i++) {
                if (nts[t] == 67 && rows[r] > 9) continue;   /* time */
                check_isa_case(rows[r], cols[c], nts[t], i % 4, (i / 4) % 4);
            }
    /* a longer row, both flushing choices */
    check_isa_case(3, 2048 + 32, 5, GAUSS, GAUSS);
    check_isa_case(3, 2048 + 32, 5, MIXED, GAUSS);
}

/* lb__linear: a BF16 weight gets the kernel, an F32 weight sharing the input
 * the BF16-rounded input times its own float product. */
static void test_linear(void)
{
    lb_pool *pools[2] = {NULL, NULL};
    REQUIRE(!lb_pool_create(2, &pools[1]), "pool");
    static const int64_t shapes[][3] = {{37, 96, 1}, {19, 160, 2}, {40, 100, 9}, {64, 64, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1], nt = shapes[s][2];
        uint16_t *wb = malloc(sizeof(uint16_t) * (size_t)(rows * cols)), *xa = malloc(sizeof(uint16_t) * (size_t)(nt * cols));
        float *wf = malloc(sizeof(float) * (size_t)(rows * cols)), *x = malloc(sizeof(float) * (size_t)(nt * cols));
        float *xr = malloc(sizeof(float) * (size_t)(nt * cols));
        fill(wb, rows * cols, s == 2 ? MIXED : GAUSS);
        for (int64_t i = 0; i < rows * cols; i++) wf[i] = (float)lb_rng_normal(&rng);
        for (int64_t i = 0; i < nt * cols; i++) x[i] = (float)lb_rng_normal(&rng) * 3.0f;
        bool tiny = lb__bf16_act_rows(x, cols, cols, 0, nt, xa, cols);
        for (int64_t i = 0; i < nt * cols; i++) xr[i] = lb_bf16_to_f32(lb_f32_to_bf16(x[i]));
        lb_weight w[2] = {lb__weight_dense(wb, LB_DTYPE_BF16, rows, cols), lb__weight_dense(wf, LB_DTYPE_F32, rows, cols)};
        w[0].act = w[1].act = &lb__act_bf16;
        CHECK(lb__act_bf16_pairs(&w[0]) && !lb__act_bf16_pairs(&w[1]), "pairing");
        float *want0 = malloc(sizeof(float) * (size_t)(nt * rows)), *want1 = malloc(sizeof(float) * (size_t)(nt * rows));
        float *y0 = malloc(sizeof(float) * (size_t)(nt * rows)), *y1 = malloc(sizeof(float) * (size_t)(nt * rows));
        lb_mat mb = {.data = wb, .dtype = LB_DTYPE_BF16, .rows = rows, .cols = cols};
        lb_mat mf = {.data = wf, .dtype = LB_DTYPE_F32, .rows = rows, .cols = cols};
        lb__bact a = {.x = xa, .xs = cols, .tiny = tiny};
        lb__bdot_ref(&mb, 0, rows, &a, nt, want0, rows);
        lb__matmul_rows_ref(&mf, 0, rows, xr, nt, cols, want1, rows);
        const lb_weight *wp[2] = {&w[0], &w[1]};
        for (int isa = 0; isa < n_isas(); isa++) {
            lb_isa_set((lb_isa)isa);
            for (int p = 0; p < 2; p++) {
                lb_wspace *ws;
                REQUIRE(!lb__wspace_create(wp, 2, nt, p + 1, &ws), "wspace: %s", lb_errmsg());
                float *ys[2] = {y0, y1};
                int64_t yst[2] = {rows, rows};
                memset(y0, 0, sizeof(float) * (size_t)(nt * rows));
                memset(y1, 0, sizeof(float) * (size_t)(nt * rows));
                lb__linear_n(ws, pools[p], 2, wp, x, nt, cols, ys, yst);
                int b0 = 0, b1 = 0;
                for (int64_t i = 0; i < nt * rows; i++) { b0 += !same(y0[i], want0[i]); b1 += !same(y1[i], want1[i]); }
                CHECK(!b0 && !b1, "%s %d threads %lldx%lld nt %lld: bf16 weight %d differ, f32 weight %d differ",
                      lb_isa_name((lb_isa)isa), p + 1, (long long)rows, (long long)cols, (long long)nt, b0, b1);
                lb__wspace_free(ws);
            }
        }
        lb_isa_set(lb_isa_best());
        free(wb); free(xa); free(wf); free(x); free(xr); free(want0); free(want1); free(y0); free(y1);
    }
    lb_pool_free(pools[1]);
}

/* ---- models */

/* Logits with bf16 activations: the same at 1 and 2 threads and on every
 * ISA; returns max |logit(bf16) - logit(FP32 act)| / max |logit|. */
static double check_model(lb_model *m, int64_t vocab, const int32_t *tok, int64_t n, float *act)
{
    float *a = malloc(sizeof(float) * (size_t)vocab), *b = malloc(sizeof(float) * (size_t)vocab);
    double md = -1, mx = 0;
    do {
        if (lb_model_set_act(m, "none", NULL) || test_decode_logits(m, 1, tok, n, a)) { CHECK(0, "fp32: %s", lb_errmsg()); break; }
        if (lb_model_set_act(m, "bf16", NULL) || test_decode_logits(m, 1, tok, n, act)) { CHECK(0, "bf16: %s", lb_errmsg()); break; }
        CHECK(!strcmp(lb_model_act(m), "bf16"), "act %s", lb_model_act(m));
        md = 0;
        for (int64_t i = 0; i < vocab; i++) { md = fmax(md, fabs((double)act[i] - a[i])); mx = fmax(mx, fabs((double)a[i])); }
        for (int isa = 0; isa < n_isas(); isa++) {
            lb_isa_set((lb_isa)isa);
            for (int th = 1; th <= 2; th++) {
                if (test_decode_logits(m, th, tok, n, b)) { CHECK(0, "forward: %s", lb_errmsg()); break; }
                int bad = 0;
                for (int64_t i = 0; i < vocab; i++) bad += !same(b[i], act[i]);
                CHECK(!bad, "%s, %d threads: %d logits differ", lb_isa_name((lb_isa)isa), th, bad);
            }
        }
        lb_isa_set(lb_isa_best());
    } while (0);
    free(a); free(b);
    return md < 0 ? -1 : md / fmax(mx, 1e-30);
}

static void test_synth_model(void)
{
    tmodel t;
    lb_config c = base_cfg();
    c.dim = 64; c.hidden_dim = 96; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 16; c.vocab_size = 80;
    build(&t, c, LB_DTYPE_BF16);
    int32_t tok[9] = {1, 5, 17, 44, 3, 60, 79, 2, 8};
    float *act = malloc(sizeof(float) * 80);
    double rel = check_model(&t.m, 80, tok, 9, act);
    CHECK(rel > 0 && rel < 0.05, "bf16 vs FP32 activations: max |dlogit| / max |logit| = %g", rel);
    printf("  synthetic BF16 model: max |dlogit| = %.4f of max |logit|\n", rel);
    free(act);
    unbuild(&t);
}

/* tinystories-656k with its seven linears per layer converted to BF16 here. */
static void test_real_model(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tinystories-656k/model.safetensors", test_models_dir());
    if (!test_file_exists(path)) SKIP("no tinystories-656k");
    snprintf(path, sizeof path, "%s/tinystories-656k", test_models_dir());
    lb_model *m, *r = NULL;
    REQUIRE(!lb_model_load(path, &m), "load: %s", lb_errmsg());
    void *blobs[64];
    int nb = 0;
    for (int64_t l = 0; l < m->cfg.n_layers && nb + 7 <= 64; l++) {
        lb_layer_weights *L = &m->layers[l];
        lb_weight *v[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) {
            uint16_t *h = malloc(sizeof(uint16_t) * (size_t)(v[i]->rows * v[i]->cols));
            float *row = malloc(sizeof(float) * (size_t)v[i]->cols);
            for (int64_t k = 0; k < v[i]->rows; k++) {
                v[i]->rep->row(v[i], k, row);
                lb_f32_to_bf16_row(row, h + k * v[i]->cols, v[i]->cols);
            }
            free(row);
            *v[i] = lb__weight_dense(h, LB_DTYPE_BF16, v[i]->rows, v[i]->cols);
            blobs[nb++] = h;
        }
    }
    int32_t tok[12] = {1, 400, 62, 9, 77, 310, 5, 98, 1022, 3, 14, 15};
    int64_t vocab = m->cfg.vocab_size;
    float *act = malloc(sizeof(float) * (size_t)vocab), *b = malloc(sizeof(float) * (size_t)vocab);
    double rel = check_model(m, vocab, tok, 12, act);
    CHECK(rel > 0 && rel < 0.05, "bf16 vs FP32 activations: max |dlogit| / max |logit| = %g", rel);
    printf("  tinystories-656k in BF16: max |dlogit| = %.4f of max |logit|\n", rel);
    /* the format survives save/load and gives the same logits */
    char dir[] = "/tmp/lowbit_tbf16.XXXXXX", f[256];
    REQUIRE(mkdtemp(dir), "mkdtemp");
    snprintf(f, sizeof f, "%s/m.safetensors", dir);
    CHECK(!lb_model_save(m, f), "save: %s", lb_errmsg());
    if (!lb_model_load(f, &r)) {
        CHECK(!strcmp(lb_model_act(r), "bf16"), "loaded act %s", lb_model_act(r));
        CHECK(!test_decode_logits(r, 2, tok, 12, b), "forward");
        int bad = 0;
        for (int64_t i = 0; i < vocab; i++) bad += !same(b[i], act[i]);
        CHECK(!bad, "saved and loaded: %d logits differ", bad);
        lb_model_free(r);
    } else CHECK(0, "load: %s", lb_errmsg());
    remove(f);
    rmdir(dir);
    CHECK(lb_model_set_act(m, "bf16:static", NULL) == LB_ERR_ARG, "bf16:static accepted");
    free(act); free(b);
    lb_model_free(m);
    for (int i = 0; i < nb; i++) free(blobs[i]);
}

int main(int argc, char **argv)
{
    (void)variant;
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_spec);
    RUN(test_examples);
    RUN(test_bound);
    RUN(test_flush_needed);
    RUN(test_isa_paths);
    RUN(test_linear);
    RUN(test_synth_model);
    RUN(test_real_model);
    return TEST_DONE();
}
