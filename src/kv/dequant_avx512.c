/* dequant_avx512.c: AVX-512 kernels of the storage policies (codec.h); the
 * same bits as the reference. Page decoding: codes widened exactly, then one
 * multiply and one add per element (no FMA; 3-bit streams take the
 * reference). Fused KIVI attention: the reference's FMA chains, one per lane
 * of 16 tokens or channels (shapes that do not fill 16 lanes take AVX2). */
#include "kv/dequant_x86.h"

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

/* ---- fused KIVI attention (codec.h) */

/* 16 consecutive codes of a bits-wide stream from byte p (2 bits bytes). */
LB_KV_INLINE __m512i load16(const uint8_t *p, const int bits)
{
    if (bits == 8) return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lb__kv_load8(p, bits)), lb__kv_load8(p + bits, bits), 1);
}

/* Tokens [t0, t0 + 16 NB) of a key page for NJ queries. */
LB_KV_INLINE void kblock(const uint8_t *codes, const int bits, int64_t P, int64_t hd, const float *qs, const float *z,
                         const int NJ, const int NB, int64_t t0, float *sc, int64_t scs)
{
    __m512 a[4][2];
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) a[j][0] = a[j][1] = _mm512_setzero_ps();
    const uint8_t *p = codes + t0 * bits / 8;
    int64_t step = P * bits / 8;
    for (int64_t c = 0; c < hd; c++, p += step) {
        __m512 x0 = _mm512_cvtepi32_ps(load16(p, bits)), x1 = x0;
        if (NB == 2) x1 = _mm512_cvtepi32_ps(load16(p + 2 * bits, bits));
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            __m512 qv = _mm512_set1_ps(qs[j * LB_KV_KIVI_MAX_HD + c]);
            a[j][0] = _mm512_fmadd_ps(qv, x0, a[j][0]);
            if (NB == 2) a[j][1] = _mm512_fmadd_ps(qv, x1, a[j][1]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) {
        __m512 zv = _mm512_set1_ps(z[j]);
        _mm512_storeu_ps(sc + j * scs + t0, _mm512_add_ps(a[j][0], zv));
        if (NB == 2) _mm512_storeu_ps(sc + j * scs + t0 + 16, _mm512_add_ps(a[j][1], zv));
    }
}

LB_KV_INLINE void kpage(const uint8_t *codes, const int bits, int64_t P, int64_t hd, const float *qs, const float *z,
                        const int NJ, float *sc, int64_t scs)
{
    int64_t t0 = 0;
    for (; t0 + 32 <= P; t0 += 32) kblock(codes, bits, P, hd, qs, z, NJ, 2, t0, sc, scs);
    if (t0 < P) kblock(codes, bits, P, hd, qs, z, NJ, 1, t0, sc, scs);
}

#define KPAGE_BITS(B)                                                                                                  \
    static void kpage_##B(const uint8_t *codes, int64_t P, int64_t hd, const float *qs, const float *z, int64_t nj,  \
                          float *sc, int64_t scs)                                                                      \
    {                                                                                                                  \
        switch (nj) {                                                                                                  \
        case 1: kpage(codes, B, P, hd, qs, z, 1, sc, scs); break;                                                      \
        case 2: kpage(codes, B, P, hd, qs, z, 2, sc, scs); break;                                                      \
        case 3: kpage(codes, B, P, hd, qs, z, 3, sc, scs); break;                                                      \
        default: kpage(codes, B, P, hd, qs, z, 4, sc, scs); break;                                                     \
        }                                                                                                              \
    }
KPAGE_BITS(2)
KPAGE_BITS(3)
KPAGE_BITS(4)
KPAGE_BITS(8)

/* P a multiple of 16 (else AVX2: the same chains on 8 lanes). */
void lb__kv_kscore_avx512(const uint8_t *codes, int bits, int64_t P, int64_t hd, const uint16_t *s16,
                          const uint16_t *m16, const float *q, int64_t nq, float *sc, int64_t scs)
{
    if (P % 16) { lb__kv_kscore_avx2(codes, bits, P, hd, s16, m16, q, nq, sc, scs); return; }
    float qs[4 * LB_KV_KIVI_MAX_HD], z[4];
    for (int64_t j0 = 0; j0 < nq; j0 += 4) {
        int64_t nj = lb__min64(4, nq - j0);
        lb__kv_kscore_setup(hd, s16, m16, q + j0 * hd, nj, qs, z);
        float *o = sc + j0 * scs;
        switch (bits) {
        case 2: kpage_2(codes, P, hd, qs, z, nj, o, scs); break;
        case 3: kpage_3(codes, P, hd, qs, z, nj, o, scs); break;
        case 4: kpage_4(codes, P, hd, qs, z, nj, o, scs); break;
        default: kpage_8(codes, P, hd, qs, z, nj, o, scs); break;
        }
    }
}

/* Channels [c0, c0 + 16 NB) of a value page for NJ queries (groups >= 16). */
LB_KV_INLINE void vblock(const uint8_t *codes, const int bits, int64_t n, int64_t hd, int gsh, const float *f,
                         const int NJ, const int NB, int64_t c0, float *o)
{
    int64_t g0 = (c0 >> gsh) * n, g1 = ((c0 + 16) >> gsh) * n;
    __m512 a[4][2];
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) {
        a[j][0] = _mm512_loadu_ps(o + j * hd + c0);
        if (NB == 2) a[j][1] = _mm512_loadu_ps(o + j * hd + c0 + 16);
    }
    for (int64_t t = 0; t < n; t++) {
        const uint8_t *p = codes + (t * hd + c0) * bits / 8;
        __m512 x0 = _mm512_cvtepi32_ps(load16(p, bits)), x1 = x0;
        if (NB == 2) x1 = _mm512_cvtepi32_ps(load16(p + 2 * bits, bits));
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            const float *fj = f + j * LB_KV_KIVI_MAX_HD + t;
            __m512 f0 = _mm512_set1_ps(fj[g0]);
            a[j][0] = _mm512_fmadd_ps(f0, x0, a[j][0]);
            if (NB == 2) a[j][1] = _mm512_fmadd_ps(g1 == g0 ? f0 : _mm512_set1_ps(fj[g1]), x1, a[j][1]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) {
        _mm512_storeu_ps(o + j * hd + c0, a[j][0]);
        if (NB == 2) _mm512_storeu_ps(o + j * hd + c0 + 16, a[j][1]);
    }
}

LB_KV_INLINE void vpage(const uint8_t *codes, const int bits, int64_t n, int64_t hd, int gsh, const float *f,
                        const int NJ, float *o)
{
    int64_t c0 = 0;
    for (; c0 + 32 <= hd; c0 += 32) vblock(codes, bits, n, hd, gsh, f, NJ, 2, c0, o);
    if (c0 < hd) vblock(codes, bits, n, hd, gsh, f, NJ, 1, c0, o);
}

#define VPAGE_BITS(B)                                                                                                  \
    static void vpage_##B(const uint8_t *codes, int64_t n, int64_t hd, int gsh, const float *f, int64_t nj, float *o)  \
    {                                                                                                                  \
        switch (nj) {                                                                                                  \
        case 1: vpage(codes, B, n, hd, gsh, f, 1, o); break;                                                           \
        case 2: vpage(codes, B, n, hd, gsh, f, 2, o); break;                                                           \
        case 3: vpage(codes, B, n, hd, gsh, f, 3, o); break;                                                           \
        default: vpage(codes, B, n, hd, gsh, f, 4, o); break;                                                          \
        }                                                                                                              \
    }
VPAGE_BITS(2)
VPAGE_BITS(3)
VPAGE_BITS(4)
VPAGE_BITS(8)

/* hd a multiple of 16 and value groups of >= 16 channels (else AVX2). */
void lb__kv_vacc_avx512(const uint8_t *codes, int bits, int64_t n, int64_t hd, int gsh, const uint16_t *s16,
                        const uint16_t *m16, int64_t sst, const float *w, int64_t ws, int64_t nq, float *o)
{
    if (hd % 16 || gsh < 4) { lb__kv_vacc_avx2(codes, bits, n, hd, gsh, s16, m16, sst, w, ws, nq, o); return; }
    float f[4 * LB_KV_KIVI_MAX_HD], m[LB_KV_KIVI_MAX_HD];
    int64_t ng = hd >> gsh;
    for (int64_t j0 = 0; j0 < nq; j0 += 4) {
        int64_t nj = lb__min64(4, nq - j0);
        lb__kv_vacc_setup(n, ng, s16, m16, sst, w + j0 * ws, ws, nj, f, m);
        float *oj = o + j0 * hd;
        switch (bits) {
        case 2: vpage_2(codes, n, hd, gsh, f, nj, oj); break;
        case 3: vpage_3(codes, n, hd, gsh, f, nj, oj); break;
        case 4: vpage_4(codes, n, hd, gsh, f, nj, oj); break;
        default: vpage_8(codes, n, hd, gsh, f, nj, oj); break;
        }
        lb__kv_vacc_mins(n, hd, gsh, m, w + j0 * ws, ws, nj, oj);
    }
}
