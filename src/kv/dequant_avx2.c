/* dequant_avx2.c: AVX2 page-decoding kernels (codec.h); the same bits as the
 * reference: codes widened exactly, then one multiply and one add per element
 * (no FMA). 3-bit streams take the reference. */
#include "kv/codec.h"
#include <immintrin.h>

/* 8 codes starting at element i (i a multiple of 8) as int32 lanes. */
static inline __m256i codes8(const uint8_t *p, int bits, int64_t i)
{
    if (bits == 8) return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + i)));
    if (bits == 4) {
        uint32_t w;
        memcpy(&w, p + i / 2, 4);
        __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32((int)w), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
        return _mm256_and_si256(v, _mm256_set1_epi32(15));
    }
    uint16_t w;
    memcpy(&w, p + i / 4, 2);
    __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32(w), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
    return _mm256_and_si256(v, _mm256_set1_epi32(3));
}

void lb__kv_dq_avx2(const uint8_t *packed, int bits, int64_t n, const float *s, const float *m, int gsh, float *y)
{
    if (bits == 3 || (gsh > 0 && gsh < 3)) { lb__kv_dq_ref(packed, bits, n, s, m, gsh, y); return; }
    for (int64_t i = 0; i < n; i += 8) {
        __m256 sv, mv;
        if (gsh == 0) { sv = _mm256_loadu_ps(s + i); mv = _mm256_loadu_ps(m + i); }
        else { sv = _mm256_set1_ps(s[i >> gsh]); mv = _mm256_set1_ps(m[i >> gsh]); }
        __m256 c = _mm256_cvtepi32_ps(codes8(packed, bits, i));
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_mul_ps(c, sv), mv));
    }
}

void lb__kv_f16_avx2(const uint16_t *x, int64_t n, float *y)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    lb__kv_f16_ref(x + i, n - i, y + i);
}

void lb__kv_bf16_avx2(const uint16_t *x, int64_t n, float *y)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    lb__kv_bf16_ref(x + i, n - i, y + i);
}

/* o in registers, 32 channels at a time; tail channels by the reference. */
void lb__kv_acc_avx2(const float *w, const float *v, int64_t n, int64_t hd, float *o)
{
    int64_t i = 0;
    for (; i + 32 <= hd; i += 32) {
        __m256 o0 = _mm256_loadu_ps(o + i), o1 = _mm256_loadu_ps(o + i + 8);
        __m256 o2 = _mm256_loadu_ps(o + i + 16), o3 = _mm256_loadu_ps(o + i + 24);
        for (int64_t p = 0; p < n; p++) {
            __m256 wp = _mm256_set1_ps(w[p]);
            const float *r = v + p * hd + i;
            o0 = _mm256_add_ps(o0, _mm256_mul_ps(wp, _mm256_loadu_ps(r)));
            o1 = _mm256_add_ps(o1, _mm256_mul_ps(wp, _mm256_loadu_ps(r + 8)));
            o2 = _mm256_add_ps(o2, _mm256_mul_ps(wp, _mm256_loadu_ps(r + 16)));
            o3 = _mm256_add_ps(o3, _mm256_mul_ps(wp, _mm256_loadu_ps(r + 24)));
        }
        _mm256_storeu_ps(o + i, o0); _mm256_storeu_ps(o + i + 8, o1);
        _mm256_storeu_ps(o + i + 16, o2); _mm256_storeu_ps(o + i + 24, o3);
    }
    for (; i + 8 <= hd; i += 8) {
        __m256 o0 = _mm256_loadu_ps(o + i);
        for (int64_t p = 0; p < n; p++)
            o0 = _mm256_add_ps(o0, _mm256_mul_ps(_mm256_set1_ps(w[p]), _mm256_loadu_ps(v + p * hd + i)));
        _mm256_storeu_ps(o + i, o0);
    }
    for (; i < hd; i++)
        for (int64_t p = 0; p < n; p++) {
            float t = w[p] * v[p * hd + i];
            o[i] = o[i] + t;
        }
}
