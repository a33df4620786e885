/* test_formats.c: element codecs and packed layouts.
 *  - every code of every 2..8-bit element type decodes to the value of an
 *    independent formula (double) and re-encodes to itself (NaN codes excepted)
 *  - encoding equals brute-force nearest-with-ties-to-even over all codes
 *  - golden bytes of each block format, worked out by hand in the comments
 *  - registry facts (bits/weight, row bytes) and argument errors */
#include "harness.h"

typedef struct ref_spec { int bits, ebits, mbits, bias, is_signed, kind; } ref_spec; /* kind 0 float 1 e8m0 2 int */

static ref_spec ref_of(lb_elem e)
{
    switch (e) {
    case LB_ELEM_E4M3: return (ref_spec){8, 4, 3, 7, 1, 0};
    case LB_ELEM_E5M2: return (ref_spec){8, 5, 2, 15, 1, 0};
    case LB_ELEM_E2M3: return (ref_spec){6, 2, 3, 1, 1, 0};
    case LB_ELEM_E3M2: return (ref_spec){6, 3, 2, 3, 1, 0};
    case LB_ELEM_E2M1: return (ref_spec){4, 2, 1, 1, 1, 0};
    case LB_ELEM_E8M0: return (ref_spec){8, 8, 0, 127, 0, 1};
    case LB_ELEM_UE4M3: return (ref_spec){7, 4, 3, 7, 0, 0};
    case LB_ELEM_INT2: return (ref_spec){2, 0, 0, 0, 1, 2};
    case LB_ELEM_INT3: return (ref_spec){3, 0, 0, 0, 1, 2};
    case LB_ELEM_INT4: return (ref_spec){4, 0, 0, 0, 1, 2};
    case LB_ELEM_INT8: return (ref_spec){8, 0, 0, 0, 1, 2};
    case LB_ELEM_UINT2: return (ref_spec){2, 0, 0, 0, 0, 2};
    case LB_ELEM_UINT3: return (ref_spec){3, 0, 0, 0, 0, 2};
    case LB_ELEM_UINT4: return (ref_spec){4, 0, 0, 0, 0, 2};
    default: return (ref_spec){8, 0, 0, 0, 0, 2};
    }
}

/* Independent decode: sign * 2^(e-bias) * (1 + m/2^M), subnormals
 * 2^(1-bias) * m/2^M; specials per the OCP spec. */
static double ref_decode(lb_elem el, unsigned c)
{
    ref_spec r = ref_of(el);
    if (r.kind == 2) return r.is_signed && (c >> (r.bits - 1)) ? (double)c - (1 << r.bits) : (double)c;
    if (r.kind == 1) return c == 0xff ? NAN : ldexp(1.0, (int)c - 127);
    unsigned mag = r.is_signed ? c & ((1u << (r.bits - 1)) - 1) : c;
    int neg = r.is_signed && (c >> (r.bits - 1));
    unsigned e = mag >> r.mbits, m = mag & ((1u << r.mbits) - 1);
    if ((el == LB_ELEM_E4M3 || el == LB_ELEM_UE4M3) && mag == 0x7f) return NAN;
    if (el == LB_ELEM_E5M2 && e == 31) return m ? NAN : (neg ? -INFINITY : INFINITY);
    double v = e ? ldexp(1.0 + ldexp(m, -r.mbits), (int)e - r.bias) : ldexp(ldexp(m, -r.mbits), 1 - r.bias);
    return neg ? -v : v;
}

static void test_elem_exhaustive(void)
{
    for (int el = 0; el < LB_ELEM_COUNT; el++) {
        int bits = lb_elem_bits((lb_elem)el);
        CHECK(bits == ref_of((lb_elem)el).bits, "%s bits", lb_elem_name((lb_elem)el));
        int nan_codes = 0;
        for (unsigned c = 0; c < (1u << bits); c++) {
            double r = ref_decode((lb_elem)el, c);
            float f = lb_elem_decode((lb_elem)el, (uint8_t)c);
            if (isnan(r)) { CHECK(isnan(f), "%s %02x: %g", lb_elem_name((lb_elem)el), c, f); nan_codes++; continue; }
            CHECK((double)f == r && !!signbit(f) == !!signbit(r), "%s code %02x: %g vs %g", lb_elem_name((lb_elem)el), c, f, r);
            CHECK(lb_elem_encode((lb_elem)el, f) == c, "%s code %02x re-encodes to %02x", lb_elem_name((lb_elem)el), c,
                  lb_elem_encode((lb_elem)el, f));
        }
        /* NaN codes: E4M3 2, E5M2 6, E8M0 1, UE4M3 1, none elsewhere */
        int want = el == LB_ELEM_E4M3 ? 2 : el == LB_ELEM_E5M2 ? 6 : (el == LB_ELEM_E8M0 || el == LB_ELEM_UE4M3) ? 1 : 0;
        CHECK(nan_codes == want, "%s has %d NaN codes", lb_elem_name((lb_elem)el), nan_codes);
    }
    /* the documented maxima */
    CHECK(lb_elem_max(LB_ELEM_E4M3) == 448.0f && lb_elem_max(LB_ELEM_E5M2) == 57344.0f, "fp8 max");
    CHECK(lb_elem_max(LB_ELEM_E2M3) == 7.5f && lb_elem_max(LB_ELEM_E3M2) == 28.0f && lb_elem_max(LB_ELEM_E2M1) == 6.0f,
          "fp6/fp4 max");
}

/* Brute force: nearest finite code of the same sign, ties to the even code;
 * Inf keeps Inf in E5M2 only, else saturates (NaN is checked separately). */
static uint8_t brute_encode(lb_elem el, float x)
{
    ref_spec r = ref_of(el);
    unsigned n = 1u << r.bits, best = 0;
    if (el == LB_ELEM_E5M2 && isinf(x)) return x > 0 ? 0x7c : 0xfc;
    double bd = INFINITY;
    for (unsigned c = 0; c < n; c++) {
        double v = ref_decode(el, c);
        if (isnan(v) || isinf(v)) continue;
        if (r.kind == 0 && r.is_signed && (!!signbit(v) != !!signbit(x))) continue;
        double d = fabs(v - (double)x);
        if (isinf(x)) d = x > 0 ? -v : v;              /* saturate: the extreme value on that side */
        if (d < bd || (d == bd && (c & 1) == 0 && r.kind != 2) || (d == bd && r.kind == 2 && ((int)v & 1) == 0)) {
            bd = d;
            best = c;
        }
    }
    return (uint8_t)best;
}

static void test_elem_encode_bruteforce(void)
{
    lb_rng rng;
    lb_rng_seed(&rng, TEST_SEED);
    for (int el = 0; el < LB_ELEM_COUNT; el++) {
        lb_elem e = (lb_elem)el;
        float mx = lb_elem_max(e);
        int bits = lb_elem_bits(e);
        /* edge inputs: every code's value, the midpoints between neighbours, just beside them, and specials */
        float edge[1200];
        int ne = 0;
        for (unsigned c = 0; c < (1u << bits) && ne < 1100; c++) {
            float v = lb_elem_decode(e, (uint8_t)c), w = lb_elem_decode(e, (uint8_t)(c + 1));
            if (isnan(v)) continue;
            edge[ne++] = v;
            if (c + 1 < (1u << bits) && !isnan(w) && !isinf(w) && !isinf(v)) {
                float mid = (float)(0.5 * ((double)v + w));
                edge[ne++] = mid;
                edge[ne++] = nextafterf(mid, INFINITY);
                edge[ne++] = nextafterf(mid, -INFINITY);
            }
        }
        float specials[] = {0.0f, -0.0f, mx, -mx, mx * 1.01f, -mx * 1.01f, mx * 1e10f, INFINITY, -INFINITY, 1e-30f,
                            -1e-30f, 0x1p-149f, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, -5.0f, 0.5f};
        for (size_t i = 0; i < sizeof specials / sizeof *specials; i++) edge[ne++] = specials[i];
        for (int i = 0; i < ne; i++) {
            uint8_t got = lb_elem_encode(e, edge[i]), want = brute_encode(e, edge[i]);
            if (ref_of(e).kind == 1 && !(edge[i] > 0)) want = 0;              /* E8M0: x <= 0 -> smallest */
            CHECK(got == want, "%s encode(%a) = %02x, brute force %02x", lb_elem_name(e), edge[i], got, want);
        }
        for (int i = 0; i < 3000; i++) {
            double mag = ref_of(e).kind == 1 ? ldexp(1.0, (int)(lb_rng_u64(&rng) % 250) - 125) : mx * 1.2;
            float x = (float)((lb_rng_uniform(&rng) * 2 - 1) * mag * (i % 3 == 0 ? 1e-3 : 1));
            if (ref_of(e).kind == 1) x = fabsf(x);
            uint8_t got = lb_elem_encode(e, x), want = brute_encode(e, x);
            CHECK(got == want, "%s encode(%a) = %02x, brute force %02x", lb_elem_name(e), x, got, want);
        }
    }
    /* NaN: codes with NaN keep NaN, others 0 */
    CHECK(isnan(lb_elem_decode(LB_ELEM_E4M3, lb_elem_encode(LB_ELEM_E4M3, NAN))), "e4m3 nan");
    CHECK(isnan(lb_elem_decode(LB_ELEM_E5M2, lb_elem_encode(LB_ELEM_E5M2, NAN))), "e5m2 nan");
    CHECK(lb_elem_encode(LB_ELEM_E8M0, NAN) == 0xff && lb_elem_encode(LB_ELEM_UE4M3, NAN) == 0x7f, "scale nan");
    CHECK(lb_elem_encode(LB_ELEM_E2M1, NAN) == 0 && lb_elem_encode(LB_ELEM_INT4, NAN) == 0, "no-nan types");
    /* saturation: E4M3 has no Inf, 480 (the next step) must not produce the NaN code */
    CHECK(lb_elem_encode(LB_ELEM_E4M3, 470.0f) == 0x7e && lb_elem_encode(LB_ELEM_E4M3, INFINITY) == 0x7e, "e4m3 sat");
    CHECK(lb_elem_encode(LB_ELEM_E5M2, 1e6f) == 0x7b && lb_elem_encode(LB_ELEM_E5M2, -INFINITY) == 0xfc, "e5m2 sat");
    CHECK(lb_elem_encode(LB_ELEM_E2M1, 100.0f) == 0x7 && lb_elem_encode(LB_ELEM_E2M1, -INFINITY) == 0xf, "e2m1 sat");
    CHECK(lb_elem_encode(LB_ELEM_INT4, 9.0f) == 0x7 && lb_elem_encode(LB_ELEM_INT4, -9.0f) == 0x8, "int4 sat");
}

/* ---- golden bytes */
static void golden(const char *name, const float *x, int64_t rows, int64_t cols, const uint8_t *want, size_t nwant,
                   float want_ts, lb_scale_rule rule)
{
    const lb_format *f = lb_format_find(name);
    REQUIRE(f, "format %s missing", name);
    size_t rb = lb_format_row_bytes(f, cols) * (size_t)rows;
    REQUIRE(rb >= nwant, "%s: %zu bytes < %zu", name, rb, nwant);
    uint8_t *p = malloc(rb);
    float ts = 0;
    lb_quant_opts o = {rule};
    REQUIRE(lb_format_quantize(f, &o, x, rows, cols, p, &ts) == LB_OK, "%s: %s", name, lb_errmsg());
    for (size_t i = 0; i < rb; i++) {
        uint8_t w = i < nwant ? want[i] : 0;
        CHECK(p[i] == w, "%s byte %zu: %02x, want %02x", name, i, p[i], w);
    }
    CHECK(ts == want_ts, "%s tensor scale %g want %g", name, ts, want_ts);
    free(p);
}

static void test_golden_mx(void)
{
    float x[32] = {0};
    /* mxfp4: amax 6 -> floor(log2 6) - emax(2) = 0 -> scale 127 = 0x7f.
     * 6 -> 0.111 = 7; -3 -> 1.101 = 0xd; 0.5 -> subnormal 0.001 = 1; 0.25 is the tie
     * between 0 and 0.5 -> even code 0; 1.75 ties 1.5 (3) and 2 (4) -> 4.
     * Elements two per byte, first in the low nibble: d7 01 04 then zeros. */
    x[0] = 6; x[1] = -3; x[2] = 0.5f; x[3] = 0.25f; x[4] = 1.75f;
    golden("mxfp4", x, 1, 32, (const uint8_t[]){0x7f, 0xd7, 0x01, 0x04}, 4, 1, LB_SCALE_FLOOR);
    /* ceil rule with amax 7: floor gives 0 and 7 would clip to 6; ceil takes e = 1 (0x80),
     * 7/2 = 3.5 ties 3 (code 5) and 4 (code 6) -> 6; 6/2 = 3 -> 5; -3/2 = -1.5 -> 0xb */
    memset(x, 0, sizeof x); x[0] = 7; x[1] = 6; x[2] = -3;
    golden("mxfp4", x, 1, 32, (const uint8_t[]){0x80, 0x56, 0x0b}, 3, 1, LB_SCALE_CEIL);
    golden("mxfp4", x, 1, 32, (const uint8_t[]){0x7f, 0x77, 0x0d}, 3, 1, LB_SCALE_FLOOR); /* 7 -> sat 6, 6, -3 */
    /* mxfp8_e4m3: amax 1792 = 2^10 * 1.75 -> 10 - 8 = 2 -> 0x81; 1792/4 = 448 = 0x7e;
     * -1/4 = -2^-2 -> exp 5, mant 0 -> 0xa8; 2^-7/4 = 2^-9 = smallest subnormal 0x01 */
    memset(x, 0, sizeof x); x[0] = 1792; x[1] = -1; x[2] = 0x1p-7f;
    golden("mxfp8_e4m3", x, 1, 32, (const uint8_t[]){0x81, 0x7e, 0xa8, 0x01}, 4, 1, LB_SCALE_FLOOR);
    /* mxfp8_e5m2: amax 2 * 57344 = 2^16 * 1.75 -> 16 - 15 = 1 -> 0x80; 57344 = 0x7b;
     * -2^-15 / 2 = -2^-16 = smallest subnormal -> 0x81 */
    memset(x, 0, sizeof x); x[0] = 114688; x[1] = -0x1p-15f;
    golden("mxfp8_e5m2", x, 1, 32, (const uint8_t[]){0x80, 0x7b, 0x81}, 3, 1, LB_SCALE_FLOOR);
    /* mxfp6_e2m3: amax 7.5 = 2^2 * 1.875 -> 2 - 2 = 0 -> 0x7f; 7.5 -> 0.11.111 = 0x1f;
     * -0.125 = subnormal m=1 -> 0x21; 1.0 -> 0.01.000 = 0x08. 6-bit stream:
     * byte0 = 0x1f | (0x21 << 6) & 0xff = 0x5f, byte1 = 0x21 >> 2 | (0x08 << 4) = 0x88, byte2 = 0x08 >> 4 = 0 */
    memset(x, 0, sizeof x); x[0] = 7.5f; x[1] = -0.125f; x[2] = 1.0f;
    golden("mxfp6_e2m3", x, 1, 32, (const uint8_t[]){0x7f, 0x5f, 0x88, 0x00}, 4, 1, LB_SCALE_FLOOR);
    /* mxfp6_e3m2: amax 28 = 2^4 * 1.75 -> 4 - 4 = 0; 28 -> 0.111.11 = 0x1f; -2^-4 = subnormal m=1 -> 0x21 */
    memset(x, 0, sizeof x); x[0] = 28; x[1] = -0.0625f;
    golden("mxfp6_e3m2", x, 1, 32, (const uint8_t[]){0x7f, 0x5f, 0x08}, 3, 1, LB_SCALE_FLOOR);
    /* mxint8: amax 1.99 -> floor(log2) = 0, emax 0 -> 0x7f; codes x*64: 64 = 0x40, -32 = 0xe0,
     * 3/128*64 = 1.5 ties -> 2, 1.99*64 = 127.36 -> 127 = 0x7f; -2 would clip to -127 = 0x81 */
    memset(x, 0, sizeof x); x[0] = 1; x[1] = -0.5f; x[2] = 3.0f / 128; x[3] = 1.99f;
    golden("mxint8", x, 1, 32, (const uint8_t[]){0x7f, 0x40, 0xe0, 0x02, 0x7f}, 5, 1, LB_SCALE_FLOOR);
    x[4] = -1.999f;   /* -127.94 -> -128 -> symmetric clamp -127 */
    golden("mxint8", x, 1, 32, (const uint8_t[]){0x7f, 0x40, 0xe0, 0x02, 0x7f, 0x81}, 6, 1, LB_SCALE_FLOOR);
}

static void test_golden_nv(void)
{
    float x[32] = {0};
    /* nvfp4, one row of two 16-blocks. Tensor amax 6 -> global g = 448*6/6 = 448.
     * Block 0 amax 6: 6/6*448 = 448 -> E4M3 0x7e; inverse g/448 = 1: 6 -> 7, -1 -> 0xa, 0.5 -> 1.
     * Block 1 amax 1.5: 1.5/6*448 = 112 = 2^6 * 1.75 -> exp 13, mant 6 -> 0x6e; inverse 448/112 = 4:
     * 1.5*4 = 6 -> 7, -0.375*4 = -1.5 -> 0xb. */
    x[0] = 6; x[1] = -1; x[2] = 0.5f; x[16] = 1.5f; x[17] = -0.375f;
    golden("nvfp4", x, 1, 32,
           (const uint8_t[]){0x7e, 0xa7, 0x01, 0, 0, 0, 0, 0, 0, 0x6e, 0xb7}, 11, 448, LB_SCALE_FLOOR);
    /* nvint4: amax 7 -> g = 448*7/7 = 448; block scale 7/7*448 = 448 = 0x7e; inverse 1:
     * 7 -> 7, -3.5 ties -> -4 = 0xc */
    memset(x, 0, sizeof x); x[0] = 7; x[1] = -3.5f;
    golden("nvint4", x, 1, 16, (const uint8_t[]){0x7e, 0xc7}, 2, 448, LB_SCALE_FLOOR);
}

static void test_golden_int(void)
{
    float x[32] = {0};
    /* int4_g32: amax 7 -> scale 7/7 = 1 = FP16 0x3c00 (little-endian 00 3c); 7 -> 7, -2 -> 0xe,
     * 0.5 ties -> 0, 1.5 ties -> 2: bytes e7 20 */
    x[0] = 7; x[1] = -2; x[2] = 0.5f; x[3] = 1.5f;
    golden("int4_g32", x, 1, 32, (const uint8_t[]){0x00, 0x3c, 0xe7, 0x20}, 4, 1, LB_SCALE_FLOOR);
    golden("int4_g32_bf16", x, 1, 32, (const uint8_t[]){0x80, 0x3f, 0xe7, 0x20}, 4, 1, LB_SCALE_FLOOR); /* bf16 1.0 = 3f80 */
    /* int4_g32_asym: min -2, max 13 -> scale 15/15 = 1, zero round(2/1) = 2 (byte 02);
     * 13 -> 15, -2 -> 0, 0 -> 2, 4.5 ties -> 4 + 2 = 6: bytes 0f 62, then 0 -> 2 twice = 0x22 */
    memset(x, 0, sizeof x); x[0] = 13; x[1] = -2; x[3] = 4.5f;
    uint8_t asym[3 + 16] = {0x00, 0x3c, 0x02, 0x0f, 0x62};
    for (int i = 5; i < 19; i++) asym[i] = 0x22;
    golden("int4_g32_asym", x, 1, 32, asym, sizeof asym, 1, LB_SCALE_FLOOR);
    /* int3_g32: amax 3 -> scale 3/3 = 1; codes 3 = 011, -3 = 101, 1 = 001, -1 = 111 in a 3-bit stream:
     * byte0 = 011 | 101<<3 | (001 & 3)<<6 = 0x6b; byte1 = 001>>2 | 111<<1 = 0x0e */
    memset(x, 0, sizeof x); x[0] = 3; x[1] = -3; x[2] = 1; x[3] = -1;
    golden("int3_g32", x, 1, 32, (const uint8_t[]){0x00, 0x3c, 0x6b, 0x0e}, 4, 1, LB_SCALE_FLOOR);
    /* int2_g32 (levels -1, 0, 1): amax 2 -> scale 2 = FP16 0x4000; 2 -> 01, -2 -> 11, 0.9/2 -> 0: byte 0x0d */
    memset(x, 0, sizeof x); x[0] = 2; x[1] = -2; x[2] = 0.9f;
    golden("int2_g32", x, 1, 32, (const uint8_t[]){0x00, 0x40, 0x0d}, 3, 1, LB_SCALE_FLOOR);
    /* int8_ch, rows of 3: row 0 amax 127 -> scale 1: 127 = 7f, -64 = c0, 0.5 -> 0;
     * row 1 amax 254 -> scale 2 = 0x4000: 254 -> 127, 3 -> 1.5 ties -> 2, -1 -> -0.5 ties -> 0 */
    float y[6] = {127, -64, 0.5f, 254, 3, -1};
    golden("int8_ch", y, 2, 3, (const uint8_t[]){0x00, 0x3c, 0x7f, 0xc0, 0x00, 0x00, 0x40, 0x7f, 0x02, 0x00}, 10, 1,
           LB_SCALE_FLOOR);
    /* full rule: the first element of largest |x| maps to -2^(k-1). int4_g32: x_m = 1 -> d = 1/-8 =
     * -0.125 = FP16 0xb000; 1 -> -8 = 0x8, -0.875 -> 7; 0.0625 -> -0.5 ties -> 0; -1 (|x| ties x_m,
     * later) -> 8 clamps to 7: bytes 78 70. BF16 -0.125 = 0xbe00. */
    memset(x, 0, sizeof x); x[0] = 1; x[1] = -0.875f; x[2] = 0.0625f; x[3] = -1;
    golden("int4_g32", x, 1, 32, (const uint8_t[]){0x00, 0xb0, 0x78, 0x70}, 4, 1, LB_SCALE_FULL);
    golden("int4_g32_bf16", x, 1, 32, (const uint8_t[]){0x00, 0xbe, 0x78, 0x70}, 4, 1, LB_SCALE_FULL);
    /* int3_g32: x_m = -4 -> d = 1; -4 = 100, 3 = 011, 3.6 -> 4 clamps to 011, -1 = 111:
     * byte0 = 100 | 011<<3 | (011 & 3)<<6 = 0xdc; byte1 = 011>>2 | 111<<1 = 0x0e */
    memset(x, 0, sizeof x); x[0] = -4; x[1] = 3; x[2] = 3.6f; x[3] = -1;
    golden("int3_g32", x, 1, 32, (const uint8_t[]){0x00, 0x3c, 0xdc, 0x0e}, 4, 1, LB_SCALE_FULL);
    /* int2_g32 (levels -2..1): x_m = -2 -> d = 1; -2 = 10, 1 = 01, 1.5 ties -> 2 clamps to 01: 0x16 */
    memset(x, 0, sizeof x); x[0] = -2; x[1] = 1; x[2] = 1.5f;
    golden("int2_g32", x, 1, 32, (const uint8_t[]){0x00, 0x3c, 0x16}, 3, 1, LB_SCALE_FULL);
    /* int8_ch full: row 0 x_m = -128 -> d = 1: 80 40 7f; row 1 x_m = 3 -> d = 3/-128 = FP16 0xa600:
     * 3 -> -128 = 80, 1 -> -42.67 -> -43 = d5, -2 -> 85.33 -> 85 = 55 */
    float z[6] = {-128, 64, 127, 3, 1, -2};
    golden("int8_ch", z, 2, 3, (const uint8_t[]){0x00, 0x3c, 0x80, 0x40, 0x7f, 0x00, 0xa6, 0x80, 0xd5, 0x55}, 10, 1,
           LB_SCALE_FULL);
}

static void test_golden_lut(void)
{
    float x[64] = {0};
    /* nf4: absmax 2 -> FP16 0x4000; normalized 1 -> 15, -1 -> 0, 0.08 -> nearest 0.0796 = 8,
     * 0.5 lies below the 0.4407/0.5626 midpoint 0.5017 -> 12; zeros -> index 7 (0.0):
     * bytes 0f c8 then 0x77 */
    x[0] = 2; x[1] = -2; x[2] = 0.16f; x[3] = 1.0f;
    uint8_t want[2 + 32] = {0x00, 0x40, 0x0f, 0xc8};
    for (int i = 4; i < 34; i++) want[i] = 0x77;
    golden("nf4", x, 1, 64, want, sizeof want, 1, LB_SCALE_FLOOR);
    /* ternary, a row of 4: absmean (1 + 2 + 0.2 + 0.8)/4 = 1 -> 0x3c00; 1 -> 01, -2 -> -1 = 11,
     * 0.2 -> 00, 0.8 -> 01: byte 01 | 11<<2 | 00<<4 | 01<<6 = 0x4d */
    float t[4] = {1, -2, 0.2f, 0.8f};
    golden("ternary", t, 1, 4, (const uint8_t[]){0x00, 0x3c, 0x4d}, 3, 1, LB_SCALE_FLOOR);
}

static void test_registry(void)
{
    struct { const char *name; double bpw; int64_t block; size_t rb4096; } want[] = {
        {"mxfp4", 4.25, 32, 128 * 17}, {"mxfp6_e2m3", 6.25, 32, 128 * 25}, {"mxfp8_e4m3", 8.25, 32, 128 * 33},
        {"mxint8", 8.25, 32, 128 * 33}, {"nvfp4", 4.5, 16, 256 * 9}, {"nvint4", 4.5, 16, 256 * 9},
        {"int4_g32", 4.5, 32, 128 * 18}, {"int4_g32_asym", 4.75, 32, 128 * 19}, {"int3_g128", 3.125, 128, 32 * 50},
        {"int8_ch", 8, 0, 4098}, {"nf4", 4.25, 64, 64 * 34}, {"ternary", 2, 0, 1026}, {"int2_g64_bf16", 2.25, 64, 64 * 18},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const lb_format *f = lb_format_find(want[i].name);
        REQUIRE(f, "%s missing", want[i].name);
        CHECK(lb_format_bits_per_weight(f) == want[i].bpw, "%s bpw %g", want[i].name, lb_format_bits_per_weight(f));
        CHECK(lb_format_block(f) == want[i].block, "%s block", want[i].name);
        CHECK(lb_format_row_bytes(f, 4096) == want[i].rb4096, "%s row bytes %zu", want[i].name,
              lb_format_row_bytes(f, 4096));
    }
    CHECK(lb_format_find("bogus") == NULL && lb_format_find(NULL) == NULL, "unknown");
    for (int i = 0; i < lb_format_count(); i++) {
        const lb_format *f = lb_format_at(i);
        CHECK(lb_format_find(lb_format_name(f)) == f, "%s unique", lb_format_name(f));
        for (const char *c = lb_format_name(f); *c; c++) CHECK(!(*c >= 'A' && *c <= 'Z'), "lowercase");
    }
    CHECK(lb_format_at(lb_format_count()) == NULL, "at end");
    const lb_format *f = lb_format_find("mxfp4");
    float x[40] = {0};
    uint8_t p[64];
    CHECK(lb_format_quantize(f, NULL, x, 1, 40, p, NULL) == LB_ERR_ARG, "cols %% block");
    CHECK(strstr(lb_errmsg(), "multiple") != NULL, "message: %s", lb_errmsg());
    CHECK(lb_format_dequantize(f, p, 1, 1, 33, x) == LB_ERR_ARG, "dequant cols %% block");
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    RUN(test_elem_exhaustive);
    RUN(test_elem_encode_bruteforce);
    RUN(test_golden_mx);
    RUN(test_golden_nv);
    RUN(test_golden_int);
    RUN(test_golden_lut);
    RUN(test_registry);
    return TEST_DONE();
}
