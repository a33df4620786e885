/* test_formats_blocks.c: block formats end to end.
 *  - randomized round trips (seed printed): every element of dequant(quant(x))
 *    is within half a grid step of x at its block's decoded scale, plus the
 *    clipping distance, with the scale read back from the documented layout
 *  - the MX floor/ceil exponents against an independent frexp computation
 *  - idempotence of quantize on dequantized data (MX floor, INT symmetric)
 *  - rows pack independently; dot = the fixed 16-lane fmaf order
 *  - zero blocks, Inf/NaN blocks, amax at the E8M0 and E4M3 limits
 *  - every ISA path bit-exact with the reference at awkward sizes, and on
 *    E2M1 rounding midpoints +- a few ulps
 *  - the full-range symmetric INT rule against a direct computation written
 *    here: scale, every code, the extreme at -2^(k-1) */
#include "harness.h"
#include "formats/formats.h"
#include <sys/mman.h>
#include <unistd.h>

static float h16(const uint8_t *p) { uint16_t h = (uint16_t)(p[0] | p[1] << 8); return lb_f16_to_f32(h); }
static float hb16(const uint8_t *p) { uint16_t h = (uint16_t)(p[0] | p[1] << 8); return lb_bf16_to_f32(h); }
static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* Layout facts of a format read from docs/formats.md (not from the library). */
typedef struct lay { int scale_bytes, nv, mx, asym, nf4, ternary; lb_elem el; float maxval, step; } lay;

static float max_gap(lb_elem e)
{
    float g = 0, prev = 0;
    for (int c = 1; c < (1 << lb_elem_bits(e)); c++) {
        float v = lb_elem_decode(e, (uint8_t)c);
        if (isnan(v) || isinf(v) || v <= 0 || signbit(v)) continue;
        if (v > prev) { if (v - prev > g) g = v - prev; prev = v; }
    }
    return g;
}

static lay layout(const char *name)
{
    lay l = {0};
    l.mx = !strncmp(name, "mx", 2);
    l.nv = !strncmp(name, "nv", 2);
    l.nf4 = !strcmp(name, "nf4");
    l.ternary = !strcmp(name, "ternary");
    l.asym = has(name, "asym");
    l.scale_bytes = l.mx || l.nv ? 1 : l.asym ? 3 : 2;
    if (l.mx) {
        l.el = has(name, "e4m3") ? LB_ELEM_E4M3 : has(name, "e5m2") ? LB_ELEM_E5M2 : has(name, "e2m3") ? LB_ELEM_E2M3
             : has(name, "e3m2") ? LB_ELEM_E3M2 : has(name, "int8") ? LB_ELEM_INT8 : LB_ELEM_E2M1;
        l.maxval = l.el == LB_ELEM_INT8 ? 127.0f / 64 : lb_elem_max(l.el);
        l.step = l.el == LB_ELEM_INT8 ? 1.0f / 64 : max_gap(l.el);
    } else if (l.nv) {
        l.el = has(name, "fp4") ? LB_ELEM_E2M1 : LB_ELEM_INT4;
        l.maxval = l.el == LB_ELEM_E2M1 ? 6 : 7;
        l.step = l.el == LB_ELEM_E2M1 ? 2 : 1;
    } else if (l.nf4) {
        l.maxval = 1; l.step = 1.0f - 0.6961928009986877f;   /* widest gap: -1 .. -0.696 */
    } else if (l.ternary) {
        l.maxval = 1; l.step = 1;
    } else {
        int k = name[3] - '0';
        l.maxval = l.asym ? (float)((1 << k) - 1) : (float)((1 << (k - 1)) - 1);
        l.step = 1;
    }
    return l;
}

static void fill(lb_rng *r, float *x, int64_t n, int mode)
{
    double sc = ldexp(1.0, (int)(lb_rng_u64(r) % 20) - 10);
    for (int64_t i = 0; i < n; i++) {
        double v = lb_rng_normal(r) * sc;
        if (mode == 1 && lb_rng_uniform(r) < 0.02) v *= 30;        /* outliers */
        if (mode == 2) v = fabs(v) + 0.1 * sc;                      /* one-signed */
        x[i] = (float)v;
    }
}

/* Check each element against the bound from its block's decoded scale. */
static void check_bound(const lb_format *f, const float *x, const float *y, const uint8_t *p, int64_t cols, float ts,
                        lb_scale_rule rule)
{
    const char *name = lb_format_name(f);
    lay l = layout(name);
    int64_t B = lb_format_block(f) ? lb_format_block(f) : cols;
    size_t bb = lb_format_row_bytes(f, cols) / (size_t)(cols / B);
    int bf = has(name, "bf16");
    for (int64_t b = 0; b < cols / B; b++) {
        const uint8_t *blk = p + b * bb;
        double d, z = 0;
        if (l.mx) d = ldexp(1.0, blk[0] - 127);
        else if (l.nv) d = (double)lb_elem_decode(LB_ELEM_UE4M3, blk[0]) / ts;
        else d = bf ? hb16(blk) : h16(blk);
        if (l.asym) z = blk[2];
        double lo = l.asym ? -z * d : -l.maxval * d, hi = l.asym ? (l.maxval - z) * d : l.maxval * d;
        int full = 0;       /* a full-range scale (full rule, or MSE's full candidates) uses -2^(k-1) */
        for (int64_t i = 0; i < B && !l.asym && !l.mx && !l.nv && !l.nf4 && !l.ternary && rule >= LB_SCALE_MSE; i++)
            full |= d != 0 && y[b * B + i] == (float)(-(l.maxval + 1) * d);
        if (full) {         /* codes -2^(k-1) .. 2^(k-1)-1, d of either sign */
            double a = -(l.maxval + 1) * d, c = l.maxval * d;
            lo = a < c ? a : c;
            hi = a < c ? c : a;
        }
        uint32_t amax = 0;
        for (int64_t i = 0; i < B; i++) {
            double xi = x[b * B + i], yi = y[b * B + i];
            double clip = xi > hi ? xi - hi : xi < lo ? lo - xi : 0;
            /* half a step, plus the float rounding of the documented arithmetic:
             * x * inv (inv = 1/d rounded to float) and (q - z) * d, each within
             * 2^-24 relative, can put a value a few ulps past a midpoint */
            double bound = 0.5 * l.step * fabs(d) * (1 + 1e-6) + (fabs(xi) + fabs(yi)) * 0x1p-22 + clip + 1e-30;
            CHECK(fabs(xi - yi) <= bound, "%s rule %d block %lld el %lld: x %g y %g d %g bound %g", name, rule,
                  (long long)b, (long long)i, xi, yi, d, bound);
            uint32_t ab; float xf = fabsf(x[b * B + i]); memcpy(&ab, &xf, 4); if (ab > amax) amax = ab;
        }
        if (l.mx && rule != LB_SCALE_MSE && amax) {          /* the OCP exponent, independently */
            float a; memcpy(&a, &amax, 4);
            int e2; frexp((double)a, &e2);
            int emax = l.el == LB_ELEM_E4M3 ? 8 : l.el == LB_ELEM_E5M2 ? 15 : l.el == LB_ELEM_E3M2 ? 4
                     : l.el == LB_ELEM_INT8 ? 0 : 2;
            int e = (e2 - 1) - emax;
            if (e < -127) e = -127;
            if (rule == LB_SCALE_CEIL) while ((double)a / ldexp(1.0, e) > l.maxval && e < 127) e++;
            CHECK(blk[0] == e + 127, "%s rule %d: scale byte %d, want %d (amax %g)", name, rule, blk[0], e + 127, a);
        }
    }
}

/* The documented summation order of lb_format_dot. */
static float canon_dot(const float *w, const float *x, int64_t n)
{
    float a[16] = {0}, b[8], c[4];
    for (int64_t i = 0; i < n; i++) a[i & 15] = fmaf(w[i], x[i], a[i & 15]);
    for (int i = 0; i < 8; i++) b[i] = a[i] + a[i + 8];
    for (int i = 0; i < 4; i++) c[i] = b[i] + b[i + 4];
    return (c[0] + c[2]) + (c[1] + c[3]);
}

static void test_roundtrip_random(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED);
    for (int fi = 0; fi < lb_format_count(); fi++) {
        const lb_format *f = lb_format_at(fi);
        const char *name = lb_format_name(f);
        int64_t B = lb_format_block(f), rows = 3, cols = B ? B * (1 + (int64_t)(lb_rng_u64(&r) % 3)) : 37;
        size_t rb = lb_format_row_bytes(f, cols);
        float *x = malloc(sizeof(float) * rows * cols), *y = malloc(sizeof(float) * rows * cols);
        float *y2 = malloc(sizeof(float) * rows * cols);
        uint8_t *p = malloc(rb * rows), *p2 = malloc(rb * rows);
        for (int mode = 0; mode < 3; mode++) {
            fill(&r, x, rows * cols, mode);
            for (int rule = 0; rule < 4; rule++) {
                lb_quant_opts o = {(lb_scale_rule)rule};
                float ts = 0;
                int sym_int = !strncmp(name, "int", 3) && !has(name, "asym");
                if (rule == LB_SCALE_FULL && !sym_int) {
                    CHECK(lb_format_quantize(f, &o, x, rows, cols, p, &ts) == LB_ERR_ARG &&
                          has(lb_errmsg(), "scale rule full applies to symmetric INT formats"), "%s full: %s", name,
                          lb_errmsg());
                    continue;
                }
                REQUIRE(lb_format_quantize(f, &o, x, rows, cols, p, &ts) == LB_OK, "%s: %s", name, lb_errmsg());
                REQUIRE(lb_format_dequantize(f, p, ts, rows, cols, y) == LB_OK, "%s", name);
                for (int64_t row = 0; row < rows; row++) {
                    check_bound(f, x + row * cols, y + row * cols, p + row * rb, cols, ts, (lb_scale_rule)rule);
                    float d = lb_format_dot(f, p + row * rb, ts, x + row * cols, cols);
                    float want = canon_dot(y + row * cols, x + row * cols, cols);
                    CHECK(memcmp(&d, &want, 4) == 0, "%s dot %.9g vs canonical %.9g", name, d, want);
                }
                if (!lb_format_uses_tensor_scale(f)) {      /* rows pack independently */
                    float t2;
                    lb_format_quantize(f, &o, x + cols, 1, cols, p2, &t2);
                    CHECK(memcmp(p2, p + rb, rb) == 0, "%s row 1 alone differs", name);
                }
                int idem = (!strncmp(name, "mx", 2) && rule == LB_SCALE_FLOOR) ||
                           (!strncmp(name, "int", 3) && !has(name, "asym") && rule != LB_SCALE_MSE);
                if (idem) {
                    float t2;
                    lb_format_quantize(f, &o, y, rows, cols, p2, &t2);
                    CHECK(memcmp(p2, p, rb * rows) == 0, "%s rule %d: quantize not idempotent", name, rule);
                    lb_format_dequantize(f, p2, t2, rows, cols, y2);
                    CHECK(memcmp(y2, y, sizeof(float) * rows * cols) == 0, "%s: dequant differs", name);
                }
            }
            /* MSE never does worse than the floor rule (floor's scale is a candidate) */
            lb_quant_error e0, e2;
            lb_quant_opts of = {LB_SCALE_FLOOR}, om = {LB_SCALE_MSE};
            lb_format_error(f, &of, x, rows, cols, &e0);
            lb_format_error(f, &om, x, rows, cols, &e2);
            if (!strncmp(name, "mx", 2) || !lb_format_block(f) || !strncmp(name, "nf4", 3))
                CHECK(e2.mse <= e0.mse * (1 + 1e-12), "%s: mse rule %g > floor %g", name, e2.mse, e0.mse);
        }
        free(x); free(y); free(y2); free(p); free(p2);
    }
}

static void test_special_blocks(void)
{
    for (int fi = 0; fi < lb_format_count(); fi++) {
        const lb_format *f = lb_format_at(fi);
        const char *name = lb_format_name(f);
        int64_t B = lb_format_block(f) ? lb_format_block(f) : 64, cols = lb_format_block(f) ? 3 * B : 64;
        float x[3 * 128], y[3 * 128], ts;
        uint8_t p[3 * 200];
        for (int64_t i = 0; i < cols; i++) x[i] = (float)(i % 7) - 3.0f;
        if (lb_format_block(f)) for (int64_t i = 0; i < B; i++) x[i] = 0;     /* block 0: all zero */
        REQUIRE(lb_format_quantize(f, NULL, x, 1, cols, p, &ts) == LB_OK, "%s", name);
        lb_format_dequantize(f, p, ts, 1, cols, y);
        for (int64_t i = 0; i < B; i++) CHECK(y[i] == 0 || !lb_format_block(f), "%s zero block -> %g", name, y[i]);
        /* an Inf and a NaN block decode to NaN; the other blocks are as if alone */
        float yref[3 * 128];
        memcpy(yref, y, sizeof y);
        x[cols - 1] = INFINITY;
        if (lb_format_block(f)) x[0] = NAN;
        lb_format_quantize(f, NULL, x, 1, cols, p, &ts);
        lb_format_dequantize(f, p, ts, 1, cols, y);
        for (int64_t i = 0; i < cols; i++) {
            int bad_block = lb_format_block(f) ? (i < B || i >= cols - B) : 1;
            if (bad_block) CHECK(isnan(y[i]), "%s el %lld of a non-finite block: %g", name, (long long)i, y[i]);
            else CHECK(y[i] == yref[i], "%s el %lld changed by another block: %g vs %g", name, (long long)i, y[i], yref[i]);
        }
    }
}

static void test_scale_limits(void)
{
    float x[32] = {0}, y[32], ts;
    uint8_t p[64];
    const lb_format *m4 = lb_format_find("mxfp4"), *m5 = lb_format_find("mxfp8_e5m2"), *nv = lb_format_find("nvfp4");
    /* E8M0 top: amax near FLT_MAX -> exponent 127 - 2 = 125; 3e38/2^125 = 7.05 saturates to 6 */
    x[0] = 3e38f; x[1] = -1.3e38f;   /* -1.3e38/2^125 = -3.06 -> -3 */
    lb_format_quantize(m4, NULL, x, 1, 32, p, NULL);
    CHECK(p[0] == 125 + 127, "top scale %d", p[0]);
    lb_format_dequantize(m4, p, 1, 1, 32, y);
    CHECK(y[0] == 6 * 0x1p125f && y[1] == -3 * 0x1p125f, "top values %g %g", y[0], y[1]);
    /* E8M0 bottom: amax 2^-140 -> floor gives -155, clamped to -127 (byte 0);
     * E5M2 then holds 2^-140 * 2^127 = 2^-13 exactly (its subnormals reach 2^-16) */
    memset(x, 0, sizeof x); x[0] = 0x1p-140f; x[5] = -0x1.8p-142f;
    lb_format_quantize(m5, NULL, x, 1, 32, p, NULL);
    CHECK(p[0] == 0, "bottom scale %d", p[0]);
    lb_format_dequantize(m5, p, 1, 1, 32, y);
    CHECK(y[0] == x[0] && y[5] == x[5], "bottom values %a %a", y[0], y[5]);
    /* mxfp4 with subnormal amax 2^-149: scaled to 2^-22, below E2M1's 0.5/2 -> 0 */
    memset(x, 0, sizeof x); x[3] = 0x1p-149f;
    lb_format_quantize(m4, NULL, x, 1, 32, p, NULL);
    lb_format_dequantize(m4, p, 1, 1, 32, y);
    CHECK(p[0] == 0 && y[3] == 0, "subnormal amax: %d %g", p[0], y[3]);
    /* NV: block amax far below the tensor amax: scale amax_b/6*g under E4M3's smallest subnormal 2^-9
     * encodes as 0 and the block decodes to 0; the big block keeps 448 (0x7e) */
    memset(x, 0, sizeof x); x[0] = 1000; x[16] = 1e-3f; x[17] = -5e-4f;
    lb_format_quantize(nv, NULL, x, 1, 32, p, &ts);
    CHECK(ts == 2688.0f / 1000.0f, "tensor scale %g", ts);
    CHECK(p[0] == 0x7e && p[9] == 0, "nv scales %02x %02x", p[0], p[9]);
    lb_format_dequantize(nv, p, ts, 1, 32, y);
    CHECK(y[16] == 0 && y[17] == 0 && y[0] == 1000.0f * (448.0f / 448.0f), "nv values %g %g %g", y[0], y[16], y[17]);
    /* block scale in E4M3's subnormal range: amax_b = 0.01 -> 0.01/6*2.688 = 0.00448 ~ 2.29 * 2^-9 -> code 2 */
    x[16] = 0.01f; x[17] = 0;
    lb_format_quantize(nv, NULL, x, 1, 32, p, &ts);
    CHECK(p[9] == 2, "subnormal block scale %02x", p[9]);
}

/* The bit-trick UE4M3 encoder used for NV block scales equals the generic codec
 * on every code's value, the midpoints and their neighbours, and a dense sweep. */
static void test_ue4m3_fast(void)
{
    for (int c = 0; c < 0x7e; c++) {
        float v = lb_elem_decode(LB_ELEM_UE4M3, (uint8_t)c), w = lb_elem_decode(LB_ELEM_UE4M3, (uint8_t)(c + 1));
        float m = 0.5f * (v + w), t[] = {v, m, nextafterf(m, 0), nextafterf(m, 1e9f), w};
        for (int i = 0; i < 5; i++)
            CHECK(lb__ue4m3_encode_fast(t[i]) == lb_elem_encode(LB_ELEM_UE4M3, t[i]), "%a: %02x vs %02x", t[i],
                  lb__ue4m3_encode_fast(t[i]), lb_elem_encode(LB_ELEM_UE4M3, t[i]));
    }
    for (uint32_t b = 0x30000000u; b < 0x44800000u; b += 997) {
        float s; memcpy(&s, &b, 4);
        CHECK(lb__ue4m3_encode_fast(s) == lb_elem_encode(LB_ELEM_UE4M3, s), "%a", s);
    }
    CHECK(lb__ue4m3_encode_fast(0) == 0 && lb__ue4m3_encode_fast(-1) == 0 && lb__ue4m3_encode_fast(1e30f) == 0x7e, "ends");
}

static const int64_t sizes[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 1023, 4096};

static void test_isa_bitexact(void)
{
    lb_isa best = lb_isa_best();
    if (best == LB_ISA_REF) SKIP("no SIMD path on this CPU");
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED ^ 0x15a);
    const char *names[] = {"mxfp4", "nvfp4", "nvint4", "int4_g32", "int4_g64", "int4_g128", "int4_g32_asym",
                           "int4_g128_asym", "int4_g64_bf16", "int4_g32_asym_bf16", "mxint8", "nf4", "int8_g32",
                           "int8_g128", "int8_g64_asym", "int8_g32_asym_bf16", "int8_g128_bf16", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2",
                           "int2_g32", "int2_g128_asym", "int3_g32", "int3_g64_asym", "int3_g128_bf16"};
    for (size_t ni = 0; ni < sizeof names / sizeof *names; ni++) {
        const lb_format *f = lb_format_find(names[ni]);
        REQUIRE(f, "%s", names[ni]);
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            int64_t cols = sizes[si] * lb_format_block(f), rows = sizes[si] > 100 ? 1 : 3;
            size_t rb = lb_format_row_bytes(f, cols), n = (size_t)(rows * cols);
            float *x = malloc(n * 4), *y0 = malloc(n * 4), *y1 = malloc(n * 4);
            uint8_t *p0 = malloc(rb * rows), *p1 = malloc(rb * rows);
            fill(&r, x, (int64_t)n, (int)(si % 3));
            if (sizes[si] > 2) {                 /* a zero block and, sometimes, a non-finite one */
                memset(x + lb_format_block(f), 0, sizeof(float) * lb_format_block(f));
                if (si % 2) x[2 * lb_format_block(f) + 1] = si % 4 == 1 ? NAN : -INFINITY;
            }
            if (sizes[si] > 4 && !strcmp(names[ni], "nf4"))   /* block 4: scale 1, every NF4 midpoint (a tie) */
                for (int64_t i = 0; i < lb_format_block(f); i++)
                    x[4 * lb_format_block(f) + i] = i == 0 ? 1.0f : 0.5f * (lb__nf4_table[i % 15] + lb__nf4_table[i % 15 + 1]);
            if (sizes[si] > 3)                   /* block 3: E2M1 grid points and ties, amax 6 */
                for (int64_t i = 0; i < lb_format_block(f); i++)
                    x[3 * lb_format_block(f) + i] = (float)(i % 25) * 0.25f * (i & 1 ? -1.0f : 1.0f);
            int sym_int = !strncmp(names[ni], "int", 3) && !has(names[ni], "asym");
            for (int rule = 0; rule < (sym_int ? 4 : 2); rule++) {
                if (rule == LB_SCALE_MSE) continue;
                lb_quant_opts o = {(lb_scale_rule)rule};   /* full: quantized by the reference; SIMD decodes */
                float t0, t1;
                lb_isa_set(LB_ISA_REF);
                lb_format_quantize(f, &o, x, rows, cols, p0, &t0);
                lb_format_dequantize(f, p0, t0, rows, cols, y0);
                float d0 = lb_format_dot(f, p0, t0, x, cols);
                for (int isa = LB_ISA_AVX2; isa <= (int)best; isa++) {
                    lb_isa_set((lb_isa)isa);
                    lb_format_quantize(f, &o, x, rows, cols, p1, &t1);
                    CHECK(memcmp(p0, p1, rb * rows) == 0 && t0 == t1, "%s %s quantize n=%lld rule %d differs", names[ni],
                          lb_isa_name((lb_isa)isa), (long long)cols, rule);
                    lb_format_dequantize(f, p0, t0, rows, cols, y1);
                    CHECK(memcmp(y0, y1, n * 4) == 0, "%s %s dequantize n=%lld differs", names[ni],
                          lb_isa_name((lb_isa)isa), (long long)cols);
                    float d1 = lb_format_dot(f, p0, t0, x, cols);
                    CHECK(memcmp(&d0, &d1, 4) == 0, "%s %s dot n=%lld: %.9g vs %.9g", names[ni],
                          lb_isa_name((lb_isa)isa), (long long)cols, d1, d0);
                }
            }
            free(x); free(y0); free(y1); free(p0); free(p1);
        }
    }
    lb_isa_set(best);
}

/* E2M1 rounding in the SIMD quantizers: MXFP4 blocks whose first element is
 * 6 (shared exponent 0, so x * 2^-e = x) and whose others sit on or within a
 * few ulps of a rounding midpoint or grid point, random sign; some blocks
 * scaled by 2^-140 (subnormal amax); all paths against the reference. */
static void test_e2m1_ties(void)
{
    lb_isa best = lb_isa_best();
    if (best == LB_ISA_REF) SKIP("no SIMD path on this CPU");
    static const float pts[] = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f, 1.75f, 2.0f, 2.5f, 3.0f, 3.5f,
                                4.0f, 5.0f, 6.0f, 7.0f};
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED ^ 0xe2);
    const char *names[] = {"mxfp4", "nvfp4"};
    int64_t cols = 4096, rows = 8, n = cols * rows;
    float *x = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) {
        float v = pts[lb_rng_u64(&r) % 16];
        int k = (int)(lb_rng_u64(&r) % 7) - 3;
        for (; k > 0; k--) v = nextafterf(v, INFINITY);
        for (; k < 0; k++) v = nextafterf(v, 0.0f);
        if (lb_rng_u64(&r) % 8 == 0) v = (float)(lb_rng_u64(&r) % 8000) / 1000.0f;
        x[i] = lb_rng_u64(&r) & 1 ? -v : v;
    }
    for (int64_t b = 0; b < n / 32; b++) {
        x[b * 32] = 6.0f;
        if (b % 5 == 4)
            for (int64_t i = 0; i < 32; i++) x[b * 32 + i] *= 0x1p-140f;
    }
    for (size_t ni = 0; ni < 2; ni++) {
        const lb_format *f = lb_format_find(names[ni]);
        REQUIRE(f, "%s", names[ni]);
        size_t rb = lb_format_row_bytes(f, cols);
        uint8_t *p0 = malloc(rb * rows), *p1 = malloc(rb * rows);
        for (int rule = 0; rule < 2; rule++) {
            lb_quant_opts o = {(lb_scale_rule)rule};
            float t0, t1;
            lb_isa_set(LB_ISA_REF);
            lb_format_quantize(f, &o, x, rows, cols, p0, &t0);
            for (int isa = LB_ISA_AVX2; isa <= (int)best; isa++) {
                lb_isa_set((lb_isa)isa);
                lb_format_quantize(f, &o, x, rows, cols, p1, &t1);
                size_t d = 0;
                while (d < rb * rows && p0[d] == p1[d]) d++;
                CHECK(d == rb * rows && t0 == t1, "%s %s rule %d: first differing byte %zu", names[ni],
                      lb_isa_name((lb_isa)isa), rule, d);
            }
        }
        free(p0); free(p1);
    }
    free(x);
    lb_isa_set(best);
}

/* Every path reads and writes only inside its row: the packed row, the input
 * and the output each end exactly at a page followed by an inaccessible one
 * (a read past the end faults, which sanitizers do not see inside SIMD gathers). */
/* Signed code i of a k-bit little-endian code stream (docs/formats.md). */
static int code_at(const uint8_t *c, int64_t i, int k)
{
    int64_t bit = i * k;
    uint32_t v = c[bit >> 3] >> (bit & 7);
    if ((bit & 7) + k > 8) v |= (uint32_t)c[(bit >> 3) + 1] << (8 - (bit & 7));
    v &= (1u << k) - 1;
    return v >> (k - 1) ? (int)v - (1 << k) : (int)v;
}

/* The full-range rule computed here from its definition (docs/formats.md):
 * x_m = the first element of largest |x|; d = FP16/BF16(x_m / -2^(k-1)), a
 * zero d stored as +0; code = clamp(rint(x * (1/d)), -2^(k-1), 2^(k-1)-1).
 * Every symmetric INT format, random blocks (normal, outliers, one-signed of
 * either sign, magnitude ties of opposite sign, all zero); decoded values are exactly
 * code * d on the active ISA, the extreme decodes to -2^(k-1) * d, elements
 * in range are within |d|/2. The floor rule on the same blocks never stores
 * a negative scale or the code -2^(k-1). */
static void test_full_rule(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED ^ 0xf011);
    int n_formats = 0;
    for (int fi = 0; fi < lb_format_count(); fi++) {
        const lb_format *f = lb_format_at(fi);
        const char *name = lb_format_name(f);
        if (strncmp(name, "int", 3) || has(name, "asym")) continue;
        n_formats++;
        int k = name[3] - '0', bf = has(name, "bf16"), lo = -(1 << (k - 1)), hi = (1 << (k - 1)) - 1;
        int64_t B = lb_format_block(f) ? lb_format_block(f) : 37, cols = lb_format_block(f) ? 2 * B : B;
        size_t bb = lb_format_row_bytes(f, cols) / (size_t)(cols / B);
        float x[256], y[256];
        uint8_t p[300], pf[300];
        lb_quant_opts full = {LB_SCALE_FULL}, floor_rule = {LB_SCALE_FLOOR};
        for (int trial = 0; trial < 300; trial++) {
            fill(&r, x, cols, trial % 3);
            if (trial % 4 == 3) for (int64_t i = 0; i < cols; i++) x[i] = -x[i];
            if (trial % 5 == 4) {                  /* a later element with the extreme's magnitude, other sign */
                int64_t m = 0;
                for (int64_t i = 0; i < B; i++) m = fabsf(x[i]) > fabsf(x[m]) ? i : m;
                x[B - 1 - (m == B - 1)] = -x[m];
            }
            if (trial % 7 == 6) memset(x, 0, sizeof(float) * (size_t)B);   /* d = 0, stored as +0 */
            float ts;
            REQUIRE(lb_format_quantize(f, &full, x, 1, cols, p, &ts) == LB_OK, "%s: %s", name, lb_errmsg());
            REQUIRE(lb_format_dequantize(f, p, ts, 1, cols, y) == LB_OK, "%s", name);
            lb_format_quantize(f, &floor_rule, x, 1, cols, pf, &ts);
            for (int64_t b = 0; b < cols / B; b++) {
                const float *xb = x + b * B, *yb = y + b * B;
                const uint8_t *blk = p + b * bb, *blf = pf + b * bb;
                int64_t m = 0;
                for (int64_t i = 0; i < B; i++) m = fabsf(xb[i]) > fabsf(xb[m]) ? i : m;
                float s = xb[m] / (float)lo;
                uint16_t h = bf ? lb_f32_to_bf16(s) : lb_f32_to_f16(s);
                if (!(h & 0x7fff)) h = 0;
                float d = bf ? lb_bf16_to_f32(h) : lb_f16_to_f32(h), inv = d != 0.0f ? 1.0f / d : 0.0f;
                CHECK(blk[0] == (h & 0xff) && blk[1] == h >> 8, "%s trial %d block %lld: scale %02x%02x, want %04x",
                      name, trial, (long long)b, blk[1], blk[0], h);
                CHECK(d == 0.0f || code_at(blk + 2, m, k) == lo, "%s trial %d: extreme %g has code %d, want %d",
                      name, trial, xb[m], code_at(blk + 2, m, k), lo);
                for (int64_t i = 0; i < B; i++) {
                    float q = rintf(xb[i] * inv);
                    q = q < lo ? lo : q > hi ? hi : q;
                    int c = code_at(blk + 2, i, k);
                    CHECK(c == (int)q, "%s trial %d el %lld: x %g code %d, want %d", name, trial, (long long)i, xb[i],
                          c, (int)q);
                    CHECK(yb[i] == (float)c * d, "%s trial %d el %lld: decoded %g, want %d * %g", name, trial,
                          (long long)i, yb[i], c, d);
                    double t = (double)xb[i] * inv;
                    if (t >= lo - 0.5 && t <= hi + 0.5)
                        CHECK(fabs((double)xb[i] - yb[i]) <= 0.5 * fabs(d) * (1 + 1e-6) + fabs(xb[i]) * 0x1p-22,
                              "%s trial %d el %lld: x %g y %g d %g", name, trial, (long long)i, xb[i], yb[i], d);
                    CHECK(code_at(blf + 2, i, k) != lo, "%s floor rule used code %d", name, lo);
                }
                CHECK(!(blf[1] & 0x80), "%s floor rule stored a negative scale", name);
            }
        }
    }
    CHECK(n_formats == 32, "%d symmetric INT formats, want 32", n_formats);
}

static void test_row_end_guard(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint8_t *m = mmap(NULL, (size_t)pg * 6, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED, "mmap");
    uint8_t *page[3] = {m, m + 2 * pg, m + 4 * pg};
    for (int i = 0; i < 3; i++) REQUIRE(mprotect(page[i] + pg, (size_t)pg, PROT_NONE) == 0, "mprotect");
    lb_isa best = lb_isa_best();
    for (int fi = 0; fi < lb_format_count(); fi++) {
        const lb_format *f = lb_format_at(fi);
        int64_t cols = lb_format_block(f) ? 2 * lb_format_block(f) : 37;
        size_t rb = lb_format_row_bytes(f, cols);
        uint8_t *p = page[0] + pg - rb;
        float *x = (float *)(page[1] + pg) - cols, *y = (float *)(page[2] + pg) - cols;
        for (int64_t i = 0; i < cols; i++) x[i] = (float)((i * 37) % 11) - 5.0f;
        for (int isa = 0; isa <= (int)best; isa++) {
            lb_isa_set((lb_isa)isa);
            float ts;
            CHECK(lb_format_quantize(f, NULL, x, 1, cols, p, &ts) == LB_OK, "%s", lb_format_name(f));
            lb_format_dequantize(f, p, ts, 1, cols, y);
            float d = lb_format_dot(f, p, ts, x, cols);
            CHECK(d == d, "%s dot is NaN", lb_format_name(f));
        }
    }
    lb_isa_set(best);
    munmap(m, (size_t)pg * 6);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    RUN(test_roundtrip_random);
    RUN(test_special_blocks);
    RUN(test_scale_limits);
    RUN(test_ue4m3_fast);
    RUN(test_isa_bitexact);
    RUN(test_e2m1_ties);
    RUN(test_full_rule);
    RUN(test_row_end_guard);
    return TEST_DONE();
}
