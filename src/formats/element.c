/* element.c: scalar codecs of the element types (FP8/FP6/FP4 minifloats,
 * E8M0 and UE4M3 scales, signed/unsigned small integers).
 *
 * A minifloat with E exponent bits, M mantissa bits and bias B holds, for
 * exponent field e and mantissa field m,
 *     e > 0: (1 + m/2^M) * 2^(e-B)        e = 0: (m/2^M) * 2^(1-B)
 * Encoding rounds |x| to nearest with ties to even on the code (the grid of
 * one binade is uniform, so the even code is the even mantissa), saturates
 * finite overflow to the largest finite value (OCP MX conversion) and keeps
 * the sign, so -0 exists and small negatives round to -0. Specials: E4M3
 * (OCP) has no Inf and one NaN magnitude S.1111.111; E5M2 is IEEE-like
 * (S.11111.00 = Inf, other S.11111.xx = NaN); FP6/FP4 have neither, so Inf
 * saturates and NaN encodes as 0 (block formats mark such blocks through
 * their scale instead). */
#include "formats/formats.h"
#include <math.h>

const lb_elem_spec lb__elem_specs[LB_ELEM_COUNT] = {
    [LB_ELEM_E4M3] = {"e4m3", 8, 4, 3, 7, LB__EK_FLOAT, true, false, 0x7f, 0x7e, 448.0f},
    [LB_ELEM_E5M2] = {"e5m2", 8, 5, 2, 15, LB__EK_FLOAT, true, true, 0x7e, 0x7b, 57344.0f},
    [LB_ELEM_E2M3] = {"e2m3", 6, 2, 3, 1, LB__EK_FLOAT, true, false, 0, 0x1f, 7.5f},
    [LB_ELEM_E3M2] = {"e3m2", 6, 3, 2, 3, LB__EK_FLOAT, true, false, 0, 0x1f, 28.0f},
    [LB_ELEM_E2M1] = {"e2m1", 4, 2, 1, 1, LB__EK_FLOAT, true, false, 0, 0x7, 6.0f},
    [LB_ELEM_E8M0] = {"e8m0", 8, 8, 0, 127, LB__EK_E8M0, false, false, 0xff, 0xfe, 0x1p127f},
    [LB_ELEM_UE4M3] = {"ue4m3", 7, 4, 3, 7, LB__EK_FLOAT, false, false, 0x7f, 0x7e, 448.0f},
    [LB_ELEM_INT2] = {"int2", 2, 0, 0, 0, LB__EK_INT, true, false, 0, 1, 1.0f},
    [LB_ELEM_INT3] = {"int3", 3, 0, 0, 0, LB__EK_INT, true, false, 0, 3, 3.0f},
    [LB_ELEM_INT4] = {"int4", 4, 0, 0, 0, LB__EK_INT, true, false, 0, 7, 7.0f},
    [LB_ELEM_INT8] = {"int8", 8, 0, 0, 0, LB__EK_INT, true, false, 0, 127, 127.0f},
    [LB_ELEM_UINT2] = {"uint2", 2, 0, 0, 0, LB__EK_INT, false, false, 0, 3, 3.0f},
    [LB_ELEM_UINT3] = {"uint3", 3, 0, 0, 0, LB__EK_INT, false, false, 0, 7, 7.0f},
    [LB_ELEM_UINT4] = {"uint4", 4, 0, 0, 0, LB__EK_INT, false, false, 0, 15, 15.0f},
    [LB_ELEM_UINT8] = {"uint8", 8, 0, 0, 0, LB__EK_INT, false, false, 0, 255, 255.0f},
};

static const lb_elem_spec *spec(lb_elem e)
{
    LB_ASSERT((unsigned)e < LB_ELEM_COUNT);
    return &lb__elem_specs[e];
}

const char *lb_elem_name(lb_elem e) { return (unsigned)e < LB_ELEM_COUNT ? lb__elem_specs[e].name : "?"; }
int lb_elem_bits(lb_elem e) { return spec(e)->bits; }
float lb_elem_max(lb_elem e) { return spec(e)->maxval; }

/* Magnitude code of finite a >= 0 for a minifloat (sign handled by caller). */
static uint8_t mini_encode_mag(const lb_elem_spec *s, float a)
{
    if (a == 0.0f) return 0;
    if (!(a < s->maxval)) return s->max_code;
    int M = s->mbits, emin = 1 - s->bias, e;
    frexpf(a, &e);
    e -= 1;                                   /* a in [2^e, 2^(e+1)) */
    if (e < emin) e = emin;                   /* subnormal range: fixed quantum */
    uint32_t q = (uint32_t)rintf(ldexpf(a, M - e)); /* exact scaling, RNE */
    if (q >= (2u << M)) { e++; q >>= 1; }     /* rounded up into the next binade */
    if (q < (1u << M)) return (uint8_t)q;     /* subnormal (e == emin) */
    return (uint8_t)(((uint32_t)(e + s->bias) << M) | (q - (1u << M)));
}

static float mini_decode_mag(const lb_elem_spec *s, uint32_t c)
{
    int M = s->mbits;
    uint32_t e = c >> M, m = c & ((1u << M) - 1);
    if (s->has_inf && e == (1u << s->ebits) - 1) return m ? NAN : INFINITY;
    if (s->nan_code && c == s->nan_code) return NAN;
    if (e == 0) return ldexpf((float)m, 1 - s->bias - M);
    return ldexpf((float)((1u << M) | m), (int)e - s->bias - M);
}

static uint8_t e8m0_encode(float x)
{
    if (isnan(x)) return 0xff;
    if (!(x >= 0x1p-127f)) return 0;          /* x <= 0 and tiny: smallest code */
    if (x >= 0x1p127f) return 0xfe;
    int e;
    float f = frexpf(x, &e);                  /* x = f * 2^e, f in [0.5, 1) */
    int code = e - 1 + 127;                   /* 2^(e-1) <= x < 2^e */
    if (f > 0.75f || (f == 0.75f && (code & 1))) code++;  /* midpoint 1.5 * 2^(e-1) */
    return (uint8_t)(code > 0xfe ? 0xfe : code);
}

uint8_t lb_elem_encode(lb_elem el, float x)
{
    const lb_elem_spec *s = spec(el);
    if (s->kind == LB__EK_E8M0) return e8m0_encode(x);
    if (s->kind == LB__EK_INT) {
        if (isnan(x)) return 0;
        float lo = s->is_signed ? -s->maxval - 1.0f : 0.0f;
        float r = rintf(x);
        r = r < lo ? lo : r > s->maxval ? s->maxval : r;
        return (uint8_t)((uint32_t)(int32_t)r & ((1u << s->bits) - 1));
    }
    uint8_t sign = s->is_signed && signbit(x) ? (uint8_t)(1u << (s->bits - 1)) : 0;
    if (!s->is_signed && !(x > 0.0f)) return isnan(x) ? s->nan_code : 0;
    if (isnan(x)) return s->nan_code ? (uint8_t)(sign | s->nan_code) : 0;
    float a = fabsf(x);
    if (isinf(a) && s->has_inf) return (uint8_t)(sign | (((1u << s->ebits) - 1) << s->mbits));
    return (uint8_t)(sign | mini_encode_mag(s, a));
}

float lb_elem_decode(lb_elem el, uint8_t code)
{
    const lb_elem_spec *s = spec(el);
    uint32_t c = code & ((1u << s->bits) - 1);
    if (s->kind == LB__EK_E8M0) return c == 0xff ? NAN : ldexpf(1.0f, (int)c - 127);
    if (s->kind == LB__EK_INT) {
        if (s->is_signed && (c >> (s->bits - 1))) return (float)((int32_t)c - (1 << s->bits));
        return (float)c;
    }
    if (!s->is_signed) return mini_decode_mag(s, c);
    uint32_t sb = 1u << (s->bits - 1);
    float v = mini_decode_mag(s, c & (sb - 1));
    return (c & sb) ? -v : v;
}
