/* dequant_avx512.c: AVX-512 page-decoding kernels (codec.h); the same bits
 * as the reference: codes widened exactly, then one multiply and one add per
 * element (no FMA). 3-bit streams take the reference. */
#include "kv/codec.h"
#include <immintrin.h>

/* 16 codes starting at element i (i a multiple of 16) as int32 lanes. */
static inline __m512i codes16(const uint8_t *p, int bits, int64_t i)
{
    if (bits == 8) return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + i)));
    __m512i sh, mask;
    uint32_t lo, hi;
    if (bits == 4) {
        memcpy(&lo, p + i / 2, 4);
        memcpy(&hi, p + i / 2 + 4, 4);
        sh = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
        mask = _mm512_set1_epi32(15);
    } else {
        memcpy(&lo, p + i / 4, 4);
        hi = lo;
        sh = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        mask = _mm512_set1_epi32(3);
    }
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32((int)lo)), _mm256_set1_epi32((int)hi), 1);
    return _mm512_and_si512(_mm512_srlv_epi32(w, sh), mask);
}

void lb__kv_dq_avx512(const uint8_t *packed, int bits, int64_t n, const float *s, const float *m, int gsh, float *y)
{
    if (bits == 3 || n % 16 || (gsh > 0 && gsh < 3)) { lb__kv_dq_avx2(packed, bits, n, s, m, gsh, y); return; }
    for (int64_t i = 0; i < n; i += 16) {
        __m512 sv, mv;
        if (gsh == 0) { sv = _mm512_loadu_ps(s + i); mv = _mm512_loadu_ps(m + i); }
        else if (gsh >= 4) { sv = _mm512_set1_ps(s[i >> gsh]); mv = _mm512_set1_ps(m[i >> gsh]); }
        else {
            sv = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(s[i >> 3])), _mm256_set1_ps(s[(i >> 3) + 1]), 1);
            mv = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(m[i >> 3])), _mm256_set1_ps(m[(i >> 3) + 1]), 1);
        }
        __m512 c = _mm512_cvtepi32_ps(codes16(packed, bits, i));
        _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_mul_ps(c, sv), mv));
    }
}

void lb__kv_f16_avx512(const uint16_t *x, int64_t n, float *y)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
    lb__kv_f16_avx2(x + i, n - i, y + i);
}

void lb__kv_bf16_avx512(const uint16_t *x, int64_t n, float *y)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + i)));
        _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
    lb__kv_bf16_avx2(x + i, n - i, y + i);
}

/* o in registers, 64 channels at a time; the rest by the AVX2 kernel. */
void lb__kv_acc_avx512(const float *w, const float *v, int64_t n, int64_t hd, float *o)
{
    int64_t i = 0;
    for (; i + 64 <= hd; i += 64) {
        __m512 o0 = _mm512_loadu_ps(o + i), o1 = _mm512_loadu_ps(o + i + 16);
        __m512 o2 = _mm512_loadu_ps(o + i + 32), o3 = _mm512_loadu_ps(o + i + 48);
        for (int64_t p = 0; p < n; p++) {
            __m512 wp = _mm512_set1_ps(w[p]);
            const float *r = v + p * hd + i;
            o0 = _mm512_add_ps(o0, _mm512_mul_ps(wp, _mm512_loadu_ps(r)));
            o1 = _mm512_add_ps(o1, _mm512_mul_ps(wp, _mm512_loadu_ps(r + 16)));
            o2 = _mm512_add_ps(o2, _mm512_mul_ps(wp, _mm512_loadu_ps(r + 32)));
            o3 = _mm512_add_ps(o3, _mm512_mul_ps(wp, _mm512_loadu_ps(r + 48)));
        }
        _mm512_storeu_ps(o + i, o0); _mm512_storeu_ps(o + i + 16, o1);
        _mm512_storeu_ps(o + i + 32, o2); _mm512_storeu_ps(o + i + 48, o3);
    }
    if (i < hd) {   /* the remaining channels, each row's slice at stride hd */
        for (int64_t p = 0; p < n; p++)
            for (int64_t j = i; j < hd; j++) {
                float t = w[p] * v[p * hd + j];
                o[j] = o[j] + t;
            }
    }
}
