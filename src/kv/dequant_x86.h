/* dequant_x86.h: helpers of the fused KIVI attention kernels that the AVX2
 * and AVX-512 files share (included by both, compiled with at least AVX2,
 * FMA and F16C). Every helper computes what the reference of codec.h
 * computes, in its order. */
#ifndef LB_KV_DEQUANT_X86_H
#define LB_KV_DEQUANT_X86_H

#include "kv/codec.h"
#include <immintrin.h>

#define LB_KV_INLINE static inline __attribute__((always_inline))

/* 8 consecutive codes of a bits-wide stream whose first one starts byte p
 * (8 codes are `bits` whole bytes), as int32 lanes. */
LB_KV_INLINE __m256i lb__kv_load8(const uint8_t *p, const int bits)
{
    if (bits == 8) return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    uint32_t w = 0;
    memcpy(&w, p, (size_t)bits);
    __m256i sh = _mm256_setr_epi32(0, bits, 2 * bits, 3 * bits, 4 * bits, 5 * bits, 6 * bits, 7 * bits);
    return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)w), sh), _mm256_set1_epi32((1 << bits) - 1));
}

/* ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)) */
LB_KV_INLINE float lb__kv_hsum8(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* Key page setup for queries j < nj (rows of hd): qs (rows of
 * LB_KV_KIVI_MAX_HD) = q * s, z[j] = the 8-lane FMA sum of q * m. */
LB_KV_INLINE void lb__kv_kscore_setup(int64_t hd, const uint16_t *s16, const uint16_t *m16, const float *q, int64_t nj,
                                      float *qs, float *z)
{
    for (int64_t j = 0; j < nj; j++) {
        __m256 a = _mm256_setzero_ps();
        for (int64_t c = 0; c < hd; c += 8) {
            __m256 qv = _mm256_loadu_ps(q + j * hd + c);
            __m256 sv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s16 + c)));
            __m256 mv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(m16 + c)));
            _mm256_storeu_ps(qs + j * LB_KV_KIVI_MAX_HD + c, _mm256_mul_ps(qv, sv));
            a = _mm256_fmadd_ps(qv, mv, a);
        }
        z[j] = lb__kv_hsum8(a);
    }
}

/* Value page setup: f[j * 512 + g n + t] = w_jt * s_tg and mg[g n + t] = m_tg
 * (per group, along the tokens). */
LB_KV_INLINE void lb__kv_vacc_setup(int64_t n, int64_t ng, const uint16_t *s16, const uint16_t *m16, int64_t sst,
                                    const float *w, int64_t ws, int64_t nj, float *f, float *mg)
{
    float sg[LB_KV_KIVI_MAX_HD];
    for (int64_t g = 0; g < ng; g++) {
        lb__kv_f16_avx2(s16 + g * sst, n, sg + g * n);
        lb__kv_f16_avx2(m16 + g * sst, n, mg + g * n);
    }
    for (int64_t j = 0; j < nj; j++)
        for (int64_t g = 0; g < ng; g++) {
            const float *wj = w + j * ws, *sv = sg + g * n;
            float *fj = f + j * LB_KV_KIVI_MAX_HD + g * n;
            int64_t t = 0;
            for (; t + 8 <= n; t += 8) _mm256_storeu_ps(fj + t, _mm256_mul_ps(_mm256_loadu_ps(wj + t), _mm256_loadu_ps(sv + t)));
            for (; t < n; t++) fj[t] = wj[t] * sv[t];
        }
}

/* The min terms of a value page: o_jc += z_jg, z_jg the 8-lane FMA sum
 * over the tokens of w_jt * m_tg (lanes past n keep their value). */
LB_KV_INLINE void lb__kv_vacc_mins(int64_t n, int64_t hd, int gsh, const float *mg, const float *w, int64_t ws,
                                   int64_t nj, float *o)
{
    int64_t ng = hd >> gsh, nt = n & ~(int64_t)7;
    __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - nt)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int64_t j = 0; j < nj; j++)
        for (int64_t g = 0; g < ng; g++) {
            const float *wj = w + j * ws, *mv = mg + g * n;
            __m256 a = _mm256_setzero_ps();
            for (int64_t t = 0; t < nt; t += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(wj + t), _mm256_loadu_ps(mv + t), a);
            if (nt < n) {
                __m256 x = _mm256_fmadd_ps(_mm256_maskload_ps(wj + nt, tail), _mm256_maskload_ps(mv + nt, tail), a);
                a = _mm256_blendv_ps(a, x, _mm256_castsi256_ps(tail));
            }
            __m256 zv = _mm256_set1_ps(lb__kv_hsum8(a));
            for (int64_t c = g << gsh; c < (g + 1) << gsh; c += 8)
                _mm256_storeu_ps(o + j * hd + c, _mm256_add_ps(_mm256_loadu_ps(o + j * hd + c), zv));
        }
}

#endif
