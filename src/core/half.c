/* half.c: BF16 and FP16 <-> FP32 scalar and row codecs (reference C).
 * BF16 is the top 16 bits of an FP32; rounding is to nearest, ties to even,
 * NaN stays a quiet NaN with its sign. FP16 is IEEE binary16: overflow rounds
 * to +-Inf, values below half the smallest subnormal flush to signed zero. */
#include "core/core.h"

uint16_t lb_f32_to_bf16(float x)
{
    uint32_t u = lb__f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float lb_bf16_to_f32(uint16_t h) { return lb__bits_f32((uint32_t)h << 16); }

uint16_t lb_f32_to_f16(float x)
{
    uint32_t u = lb__f32_bits(x), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  /* >= 65520: Inf */
    if (a < 0x38800000u) {                                    /* < 2^-14: subnormal */
        if (a < 0x33000000u) return (uint16_t)sign;           /* <= 2^-25: zero */
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(a >> 23);                     /* 14 + 113 - exp - 1 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = a - 0x38000000u;                             /* rebias 127 -> 15 */
    r += 0xfffu + ((r >> 13) & 1);
    return (uint16_t)(sign | (r >> 13));
}

float lb_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu;
    if (e == 0x1f) return lb__bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        float f = (float)m * 0x1.0p-24f;
        return sign ? -f : f;
    }
    return lb__bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

void lb_f32_to_bf16_row(const float *x, uint16_t *y, int64_t n)
{
    if (!x || !y) return;
    for (int64_t i = 0; i < n; i++) y[i] = lb_f32_to_bf16(x[i]);
}
void lb_bf16_to_f32_row(const uint16_t *x, float *y, int64_t n)
{
    if (!x || !y) return;
    for (int64_t i = 0; i < n; i++) y[i] = lb_bf16_to_f32(x[i]);
}
void lb_f32_to_f16_row(const float *x, uint16_t *y, int64_t n)
{
    if (!x || !y) return;
    for (int64_t i = 0; i < n; i++) y[i] = lb_f32_to_f16(x[i]);
}
void lb_f16_to_f32_row(const uint16_t *x, float *y, int64_t n)
{
    if (!x || !y) return;
    for (int64_t i = 0; i < n; i++) y[i] = lb_f16_to_f32(x[i]);
}
