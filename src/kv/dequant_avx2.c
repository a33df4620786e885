/* dequant_avx2.c: AVX2 kernels of the storage policies (codec.h); the same
 * bits as the reference. Page decoding: codes widened exactly, then one
 * multiply and one add per element (no FMA; 3-bit streams take the
 * reference). Fused KIVI attention: the reference's FMA chains, one per lane. */
#include "kv/dequant_x86.h"
#include <math.h>

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

/* ---- fused KIVI attention (codec.h): lanes are 8 tokens (kscore) or 8
 * channels (vacc); each lane runs the reference's FMA chain. */

/* The 8 NB codes at p as floats: x0 the first 8 and x1 the next 8 (NB 2);
 * nib (4 bits, 16 codes): x0 the even codes and x1 the odd ones, as bytes
 * hold them. */
LB_KV_INLINE void codes16(const uint8_t *p, const int bits, const bool nib, const int NB, __m256 *x0, __m256 *x1)
{
    if (nib) {
        __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
        *x0 = _mm256_cvtepi32_ps(_mm256_and_si256(b, _mm256_set1_epi32(15)));
        *x1 = _mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4));
    } else {
        *x0 = *x1 = _mm256_cvtepi32_ps(lb__kv_load8(p, bits));
        if (NB == 2) *x1 = _mm256_cvtepi32_ps(lb__kv_load8(p + bits, bits));
    }
}

/* Tokens [t0, t0 + 8 NB) of a key page for NJ queries. */
LB_KV_INLINE void kblock(const uint8_t *codes, const int bits, int64_t P, int64_t hd, const float *qs, const float *z,
                         const int NJ, const int NB, int64_t t0, float *sc, int64_t scs)
{
    __m256 a[4][2];
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) a[j][0] = a[j][1] = _mm256_setzero_ps();
    const uint8_t *p = codes + t0 * bits / 8;
    int64_t step = P * bits / 8;
    /* 4 bits, 16 tokens: byte i holds tokens 2i and 2i + 1, so lanes of
     * a[j][0] are the even tokens and of a[j][1] the odd ones until the store */
    const bool nib = bits == 4 && NB == 2;
    for (int64_t c = 0; c < hd; c++, p += step) {
        __m256 x0, x1;
        codes16(p, bits, nib, NB, &x0, &x1);
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            __m256 qv = _mm256_broadcast_ss(qs + j * LB_KV_KIVI_MAX_HD + c);
            a[j][0] = _mm256_fmadd_ps(qv, x0, a[j][0]);
            if (NB == 2) a[j][1] = _mm256_fmadd_ps(qv, x1, a[j][1]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) {
        __m256 zv = _mm256_set1_ps(z[j]), r0 = a[j][0], r1 = a[j][1];
        if (nib) {   /* even/odd lanes back to token order */
            __m256 lo = _mm256_unpacklo_ps(a[j][0], a[j][1]), hi = _mm256_unpackhi_ps(a[j][0], a[j][1]);
            r0 = _mm256_permute2f128_ps(lo, hi, 0x20);
            r1 = _mm256_permute2f128_ps(lo, hi, 0x31);
        }
        _mm256_storeu_ps(sc + j * scs + t0, _mm256_add_ps(r0, zv));
        if (NB == 2) _mm256_storeu_ps(sc + j * scs + t0 + 8, _mm256_add_ps(r1, zv));
    }
}

LB_KV_INLINE void kpage(const uint8_t *codes, const int bits, int64_t P, int64_t hd, const float *qs, const float *z,
                        const int NJ, float *sc, int64_t scs)
{
    int64_t t0 = 0;
    for (; t0 + 16 <= P; t0 += 16) kblock(codes, bits, P, hd, qs, z, NJ, 2, t0, sc, scs);
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

void lb__kv_kscore_avx2(const uint8_t *codes, int bits, int64_t P, int64_t hd, const uint16_t *s16,
                        const uint16_t *m16, const float *q, int64_t nq, float *sc, int64_t scs)
{
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

/* Channels [c0, c0 + 8 NB) of a value page for NJ queries. */
LB_KV_INLINE void vblock(const uint8_t *codes, const int bits, int64_t n, int64_t hd, int gsh, const float *f,
                         const int NJ, const int NB, int64_t c0, float *o)
{
    int64_t g0 = (c0 >> gsh) * n, g1 = ((c0 + 8) >> gsh) * n;
    /* 4 bits, 16 channels of one group: byte i holds channels 2i and 2i + 1,
     * so a[j][0] holds the even channels and a[j][1] the odd ones */
    const bool nib = bits == 4 && NB == 2 && gsh >= 4;
    __m256 a[4][2];
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) {
        a[j][0] = _mm256_loadu_ps(o + j * hd + c0);
        if (NB == 2) a[j][1] = _mm256_loadu_ps(o + j * hd + c0 + 8);
        if (nib) {
            __m256 e = _mm256_shuffle_ps(a[j][0], a[j][1], 0x88), d = _mm256_shuffle_ps(a[j][0], a[j][1], 0xdd);
            a[j][0] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xd8));
            a[j][1] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(d), 0xd8));
        }
    }
    for (int64_t t = 0; t < n; t++) {
        const uint8_t *p = codes + (t * hd + c0) * bits / 8;
        __m256 x0, x1;
        codes16(p, bits, nib, NB, &x0, &x1);
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            const float *fj = f + j * LB_KV_KIVI_MAX_HD + t;
            __m256 f0 = _mm256_broadcast_ss(fj + g0);
            a[j][0] = _mm256_fmadd_ps(f0, x0, a[j][0]);
            if (NB == 2) a[j][1] = _mm256_fmadd_ps(g1 == g0 ? f0 : _mm256_broadcast_ss(fj + g1), x1, a[j][1]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < NJ; j++) {
        if (nib) {   /* even/odd lanes back to channel order */
            __m256 lo = _mm256_unpacklo_ps(a[j][0], a[j][1]), hi = _mm256_unpackhi_ps(a[j][0], a[j][1]);
            a[j][0] = _mm256_permute2f128_ps(lo, hi, 0x20);
            a[j][1] = _mm256_permute2f128_ps(lo, hi, 0x31);
        }
        _mm256_storeu_ps(o + j * hd + c0, a[j][0]);
        if (NB == 2) _mm256_storeu_ps(o + j * hd + c0 + 8, a[j][1]);
    }
}

LB_KV_INLINE void vpage(const uint8_t *codes, const int bits, int64_t n, int64_t hd, int gsh, const float *f,
                        const int NJ, float *o)
{
    int64_t c0 = 0;
    for (; c0 + 16 <= hd; c0 += 16) vblock(codes, bits, n, hd, gsh, f, NJ, 2, c0, o);
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

void lb__kv_vacc_avx2(const uint8_t *codes, int bits, int64_t n, int64_t hd, int gsh, const uint16_t *s16,
                      const uint16_t *m16, int64_t sst, const float *w, int64_t ws, int64_t nq, float *o)
{
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

/* Scale and maximum, 8 lanes; returns the maximum (the reference's). */
static float scale_max(float *sc, int64_t n, float inv)
{
    int64_t n8 = n & ~(int64_t)7, p = 0;
    __m256 iv = _mm256_set1_ps(inv), mv = _mm256_set1_ps(-INFINITY);
    for (; p < n8; p += 8) {
        __m256 x = _mm256_mul_ps(_mm256_loadu_ps(sc + p), iv);
        _mm256_storeu_ps(sc + p, x);
        mv = _mm256_max_ps(x, mv);
    }
    float lanes[8], mx = -INFINITY;
    _mm256_storeu_ps(lanes, mv);
    for (int l = 0; l < 8; l++)
        if (lanes[l] > mx) mx = lanes[l];
    for (; p < n; p++) {
        sc[p] = sc[p] * inv;
        if (sc[p] > mx) mx = sc[p];
    }
    return mx;
}

static void divide(float *sc, int64_t n, float sum)
{
    int64_t p = 0;
    __m256 sv = _mm256_set1_ps(sum);
    for (; p + 8 <= n; p += 8) _mm256_storeu_ps(sc + p, _mm256_div_ps(_mm256_loadu_ps(sc + p), sv));
    for (; p < n; p++) sc[p] = sc[p] / sum;
}

/* lb_kv_exp of codec.h on 8 lanes (the reference's operations). */
static inline __m256 exp8(__m256 x)
{
    static const float C[] = LB_KV_EXP_C;
    __m256 lo = _mm256_set1_ps(-87.0f);
    __m256 y = _mm256_blendv_ps(x, lo, _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(y, _mm256_set1_ps(LB_KV_EXP_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LB_KV_EXP_LN2_HI), y);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LB_KV_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(C[0]);
    for (int i = 1; i < 7; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C[i]));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

void lb__kv_softmax2_avx2(float *sc, int64_t n, float inv)
{
    float mx = scale_max(sc, n, inv), a[8];
    int64_t p = 0;
    __m256 mv = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    for (; p + 8 <= n; p += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + p), mv));
        _mm256_storeu_ps(sc + p, e);
        acc = _mm256_add_ps(acc, e);
    }
    _mm256_storeu_ps(a, acc);
    if (p < n) {   /* the last lanes: the same exp on a padded vector */
        float t[8] = {0};
        memcpy(t, sc + p, sizeof(float) * (size_t)(n - p));
        _mm256_storeu_ps(t, exp8(_mm256_sub_ps(_mm256_loadu_ps(t), mv)));
        for (int64_t i = 0; p + i < n; i++) {
            sc[p + i] = t[i];
            a[i] = a[i] + t[i];
        }
    }
    float sum = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
    divide(sc, n, sum);
}

/* Scaling, maximum and division 8 lanes at a time (a NaN never becomes the
 * maximum, as in the reference; a zero maximum's sign cannot change
 * sc - max for any sc). */
void lb__kv_softmax_avx2(float *sc, int64_t n, float inv)
{
    float mx = scale_max(sc, n, inv), sum = 0;
    for (int64_t p = 0; p < n; p++) { sc[p] = expf(sc[p] - mx); sum += sc[p]; }
    divide(sc, n, sum);
}
