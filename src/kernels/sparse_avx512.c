/* sparse_avx512.c: AVX-512 kernels of bitmask rows.
 *
 * Gather: per 16 inputs, vcompressps packs the kept ones (two mask bytes)
 * and one store appends them to xk (it ends before the chunk's own columns
 * do, so nothing is written past xk[cols]). The tail is the reference loop.
 *
 * Fused dot of uniform rows (every mask byte holds p = 2, 4 or 8 set bits;
 * p = 1 runs the AVX2 kernel): the 16 canonical lanes are one register, so
 * kept value j is in lane j % 16 as it loads; its 16 inputs come from
 * 128 / p columns: per 16 columns one vcompressps packs the 2p kept ones
 * into the low lanes, and the pieces are inserted in order (p = 4: two
 * halves; p = 2: four quarters; p = 8: the columns themselves). The tail
 * block is zero-padded (masked loads: fma(0, 0, s) as in the reference) and
 * the lanes are reduced by the canonical tree (j + j+8, j + j+4, j + j+2,
 * j + j+1). Only data movement differs from the reference, so the same
 * bits; not run on the development machine (no AVX-512 there): the tests
 * check it where the CPU has it. */
#include "kernels/sparse.h"
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

int64_t lb__sparse_gather_avx512(const uint8_t *mask, const float *x, int64_t cols, float *xk)
{
    int64_t k = 0, c = 0;
    for (; c + 16 <= cols; c += 16) {
        unsigned lo = mask[c >> 3], hi = mask[(c >> 3) + 1];
        __mmask16 m = (__mmask16)(lo | hi << 8);
        _mm512_storeu_ps(xk + k, _mm512_maskz_compress_ps(m, _mm512_loadu_ps(x + c)));
        k += lb__popcount8[lo] + lb__popcount8[hi];
    }
    for (; c < cols; c++)
        if (mask[c >> 3] >> (c & 7) & 1) xk[k++] = x[c];
    return k;
}

/* The kept inputs of the 16 columns at x (mask bytes m[0], m[1]) in the low lanes. */
INLINE __m512 packed16(const uint8_t *m, const float *x)
{
    return _mm512_maskz_compress_ps((__mmask16)(m[0] | m[1] << 8), _mm512_loadu_ps(x));
}

/* The 16 kept inputs of 128 / P columns (16 / P mask bytes at m). */
INLINE __m512 xk16(const uint8_t *m, const float *x, int P)
{
    if (P == 8) return _mm512_loadu_ps(x);
    if (P == 4)
        return _mm512_insertf32x8(packed16(m, x), _mm512_castps512_ps256(packed16(m + 2, x + 16)), 1);
    __m512 r = packed16(m, x);
    r = _mm512_insertf32x4(r, _mm512_castps512_ps128(packed16(m + 2, x + 16)), 1);
    r = _mm512_insertf32x4(r, _mm512_castps512_ps128(packed16(m + 4, x + 32)), 2);
    return _mm512_insertf32x4(r, _mm512_castps512_ps128(packed16(m + 6, x + 48)), 3);
}

INLINE __m512 vals16(const void *v, int64_t j, __mmask16 m, lb_dtype dt)
{
    if (dt == LB_DTYPE_F32) return _mm512_maskz_loadu_ps(m, (const float *)v + j);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)v + j);
    if (dt == LB_DTYPE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

INLINE float udot(const uint8_t *mask, const void *vals, lb_dtype dt, const float *x, int64_t cols, int P)
{
    __m512 acc = _mm512_setzero_ps();
    int64_t k = cols / 8 * P, kf = k & ~(int64_t)15, j = 0;
    const int bpb = 16 / P;                   /* mask bytes per 16 kept values */
    for (; j < kf; j += 16, mask += bpb, x += 8 * bpb)
        acc = _mm512_fmadd_ps(vals16(vals, j, 0xffff, dt), xk16(mask, x, P), acc);
    if (j < k) {                               /* zero-padded tail block: its inputs by the mask's bits */
        float xv[16] = {0};
        int64_t n = 0;
        for (int64_t c = 0; n < k - j; c++)
            if (mask[c >> 3] >> (c & 7) & 1) xv[n++] = x[c];
        acc = _mm512_fmadd_ps(vals16(vals, j, (__mmask16)((1u << n) - 1), dt), _mm512_loadu_ps(xv), acc);
    }
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

#define UDOT_FN(name, DT, P)                                                                                    \
    static float name(const uint8_t *mask, const void *vals, const float *x, int64_t cols)                   \
    {                                                                                                          \
        return udot(mask, vals, DT, x, cols, P);                                                               \
    }
UDOT_FN(u_f32_2, LB_DTYPE_F32, 2) UDOT_FN(u_f32_4, LB_DTYPE_F32, 4) UDOT_FN(u_f32_8, LB_DTYPE_F32, 8)
UDOT_FN(u_f16_2, LB_DTYPE_F16, 2) UDOT_FN(u_f16_4, LB_DTYPE_F16, 4) UDOT_FN(u_f16_8, LB_DTYPE_F16, 8)
UDOT_FN(u_bf16_2, LB_DTYPE_BF16, 2) UDOT_FN(u_bf16_4, LB_DTYPE_BF16, 4) UDOT_FN(u_bf16_8, LB_DTYPE_BF16, 8)

float lb__sparse_udot_avx512(const uint8_t *mask, int p, const void *vals, lb_dtype dt, const float *x, int64_t cols)
{
    static float (*const fns[3][3])(const uint8_t *, const void *, const float *, int64_t) = {
        {u_f32_2, u_f32_4, u_f32_8}, {u_f16_2, u_f16_4, u_f16_8}, {u_bf16_2, u_bf16_4, u_bf16_8}};
    if (p == 1) return lb__sparse_udot_avx2(mask, p, vals, dt, x, cols);
    int d = dt == LB_DTYPE_F32 ? 0 : dt == LB_DTYPE_F16 ? 1 : 2, pi = p == 2 ? 0 : p == 4 ? 1 : 2;
    return fns[d][pi](mask, vals, x, cols);
}
