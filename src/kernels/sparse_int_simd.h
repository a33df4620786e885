/* sparse_int_simd.h: the body of the AVX2 and AVX-512 integer products of
 * packed sparse rows (the definition is in kernels/sparse.h), included by
 * sparse_int_avx2.c and sparse_int_avx512.c, which define SI_DOT32(wu, s)
 * (the 8 lanes of 4 products of 32 unsigned bytes wu with 32 signed bytes
 * s, exact int32) and SI_NAME.
 *
 * Per weight block (32 kept values) and row: the 32 weights decoded in
 * column order (4-bit: byte i widened to word i, its nibbles split into the
 * word's two bytes by a shift, OR and mask, then sign-extended
 * through vpshufb), the scale, and the shuffle controls of the row's mask
 * bytes; then per token the 32 kept activation codes are gathered and met
 * as igemm_simd.h does (vpsignb, |w| unsigned). The gather: 16 inputs (2
 * mask bytes) hold 2p kept codes; their control is the 2p bit positions of
 * the two bytes (the second's + 8) from lb__sparse_bitpos. The controls of
 * the block's 16 / p pairs, laid end to end, fill 32 bytes C (pair c at
 * byte 2p c: lane c / (8 / p), slot c % (8 / p)); shuffle s takes the pairs
 * s (low lane) and s + 8 / p (high lane) of the activation codes with C
 * outside slot s set to 0x80 (zero), and the 8 / p shuffles are ORed: the
 * kept codes in column order. The lane scales dw * da are one vector
 * multiply (lane l: da of activation block l / p of the weight block). */
#ifndef LB_SPARSE_INT_SIMD_H
#define LB_SPARSE_INT_SIMD_H

#include "kernels/sparse.h"
#include "kernels/igemm_scale.h"
#include <immintrin.h>

#define SI_INLINE static inline __attribute__((always_inline))

/* The 32 kept weights of a block in column order, as signed bytes. */
SI_INLINE __m256i si_wcodes(const uint8_t *codes, int bits)
{
    if (bits == 8) return _mm256_loadu_si256((const __m256i *)codes);
    const __m256i lut = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1,
                                         0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
    __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)codes));   /* byte i in word i */
    __m256i v = _mm256_and_si256(_mm256_or_si256(w, _mm256_slli_epi16(w, 4)), _mm256_set1_epi8(15));
    return _mm256_shuffle_epi8(lut, v);
}

/* Bytes 8 i .. 8 i + 7 of C (below): the controls of mask bytes m[8 i / P ..). */
SI_INLINE uint64_t si_ctrl8(const uint8_t *m, int P, int i)
{
    const uint64_t *pos = lb__sparse_bitpos, *hi = lb__sparse_bitpos_hi[P == 4 ? 0 : P == 2 ? 1 : 2];
    if (P == 4) return pos[m[2 * i]] | hi[m[2 * i + 1]];
    if (P == 2) {
        const uint8_t *mm = m + 4 * i;
        return (pos[mm[0]] | hi[mm[1]]) | (pos[mm[2]] | hi[mm[3]]) << 32;
    }
    const uint8_t *mm = m + 8 * i;
    return (pos[mm[0]] | hi[mm[1]]) | (pos[mm[2]] | hi[mm[3]]) << 16 | (pos[mm[4]] | hi[mm[5]]) << 32 |
           (pos[mm[6]] | hi[mm[7]]) << 48;
}

/* C: the controls of the 16 / P mask-byte pairs of m (pair c at byte 2 P c),
 * put together in registers (vmovq / vpinsrq: no store and wide reload).
 * Measured slower here (Zen 3): vpgatherdd of the table entries, and for
 * 2:4 a table-free vpshufb of the nibbles (the vector pipes are the busier). */
SI_INLINE __m256i si_ctrl(const uint8_t *m, int P)
{
    __m128i lo = _mm_insert_epi64(_mm_cvtsi64_si128((long long)si_ctrl8(m, P, 0)), (long long)si_ctrl8(m, P, 1), 1);
    __m128i hi = _mm_insert_epi64(_mm_cvtsi64_si128((long long)si_ctrl8(m, P, 2)), (long long)si_ctrl8(m, P, 3), 1);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

/* 0x80 in every byte of a lane outside slot s (2 P bytes wide). */
SI_INLINE __m256i si_slot(int P, int s)
{
    const __m256i idx = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                         0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int k = P == 4 ? 3 : P == 2 ? 2 : 1;
    __m256i sid = _mm256_and_si256(_mm256_srli_epi16(idx, k), _mm256_set1_epi8((char)(15 >> k)));
    return _mm256_andnot_si256(_mm256_cmpeq_epi8(sid, _mm256_set1_epi8((char)s)), _mm256_set1_epi8((char)0x80));
}

/* The 32 kept activation codes of a block (aq: its first input). */
SI_INLINE __m256i si_gather(const int8_t *aq, const __m256i *ct, int P)
{
    if (P == 8) return _mm256_loadu_si256((const __m256i *)aq);
    const int S = 8 / P;
    __m256i r = _mm256_setzero_si256();
    for (int s = 0; s < S; s++) {
        __m256i src = _mm256_loadu2_m128i((const __m128i *)(aq + 16 * (s + S)), (const __m128i *)(aq + 16 * s));
        r = _mm256_or_si256(r, _mm256_shuffle_epi8(src, ct[s]));
    }
    return r;
}

/* Lane l: the scale of activation block l / P of a weight block (ad: its first). */
SI_INLINE __m256 si_da(const float *ad, int P)
{
    if (P == 8) return _mm256_broadcast_ss(ad);
    if (P == 4)
        return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_castpd_ps(_mm_load_sd((const double *)ad))),
                                        _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
    if (P == 2)
        return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(ad)), _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
    return _mm256_loadu_ps(ad);
}

/* a[j] += a[j+4], a[j] += a[j+2], a[0] + a[1]. */
SI_INLINE float si_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* R rows (from r) x T tokens (from t0). */
SI_INLINE void si_tile(const uint8_t *mask, size_t mb, const uint8_t *data, size_t rb, size_t bb, int64_t nb,
                       const lb__iact *a, int64_t t0, float *y, int64_t ys, int64_t r, int R, int T, int P, int bits,
                       int sk)
{
    const int S = P == 8 ? 1 : 8 / P, sb = sk == SK_E8M0 ? 1 : 2;
    const int64_t mpb = LB_IG_BLOCK / P, ipb = 8 * LB_IG_BLOCK / P, apb = 8 / P;   /* mask bytes, inputs, act blocks per block */
    __m256 acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[i][t] = _mm256_setzero_ps();
    const uint8_t *row = data + (size_t)r * rb, *mrow = mask + (size_t)r * mb;
    for (int64_t b = 0; b < nb; b++) {
        __m256i wv[4], wu[4], ct[4][8];
        float dw[4];
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = row + (size_t)i * rb + (size_t)b * bb;
            dw[i] = ig_wscale(sk, blk);
            wv[i] = si_wcodes(blk + sb, bits);
            wu[i] = _mm256_abs_epi8(wv[i]);
            if (T <= 2) {   /* decode: the rows 3 tiles ahead */
                _mm_prefetch((const char *)(blk + 3 * (size_t)R * rb), _MM_HINT_T0);
                _mm_prefetch((const char *)(mrow + (size_t)(i + 3 * R) * mb + (size_t)(b * mpb)), _MM_HINT_T0);
            }
            if (P < 8) {
                __m256i C = si_ctrl(mrow + (size_t)i * mb + (size_t)(b * mpb), P);
#pragma GCC unroll 8
                for (int s = 0; s < S; s++) ct[i][s] = _mm256_or_si256(C, si_slot(P, s));
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const int8_t *aq = a->q + (t0 + t) * a->qs + b * ipb;
            __m256 da = si_da(a->d + (t0 + t) * a->ds + b * apb, P);
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                __m256i av = si_gather(aq, ct[i], P);
                __m256i p = SI_DOT32(wu[i], _mm256_sign_epi8(av, wv[i]));
                acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(_mm256_set1_ps(dw[i]), da), acc[i][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) y[(t0 + t) * ys + r + i] = si_hsum(acc[i][t]);
}

#ifndef SI_DECODE_ROWS
#define SI_DECODE_ROWS 2   /* rows per decode tile */
#endif

/* Rows [r0, r1) for tokens [0, nt): decode (1 or 2 tokens) SI_DECODE_ROWS
 * rows per tile; more tokens 4 per tile, 64 at a time so their codes stay
 * in cache across the rows. */
SI_INLINE void si_rows(const uint8_t *mask, size_t mb, const uint8_t *data, size_t rb, size_t bb, int64_t r0,
                       int64_t r1, int64_t nb, const lb__iact *a, int64_t nt, float *y, int64_t ys, int P, int bits,
                       int sk)
{
#define SI_TILE(R, T, t) si_tile(mask, mb, data, rb, bb, nb, a, t, y, ys, r, R, T, P, bits, sk)
    int64_t r = r0;
    if (nt <= 2) {
        for (; r + SI_DECODE_ROWS <= r1; r += SI_DECODE_ROWS) { if (nt == 1) SI_TILE(SI_DECODE_ROWS, 1, 0); else SI_TILE(SI_DECODE_ROWS, 2, 0); }
        for (; r < r1; r++) { if (nt == 1) SI_TILE(1, 1, 0); else SI_TILE(1, 2, 0); }
        return;
    }
    for (int64_t t0 = 0; t0 < nt; t0 += 64) {
        int64_t te = lb__min64(nt, t0 + 64);
        for (r = r0; r < r1; r++) {
            int64_t t = t0;
            for (; t + 4 <= te; t += 4) SI_TILE(1, 4, t);
            for (; t < te; t++) SI_TILE(1, 1, t);
        }
    }
#undef SI_TILE
}

void SI_NAME(const lb__iw *w, int p, const uint8_t *mask, size_t mb, const uint8_t *data, size_t rb, int64_t r0,
             int64_t r1, int64_t cols, const lb__iact *a, int64_t nt, float *y, int64_t ys)
{
    int64_t nb = cols / 8 * p / LB_IG_BLOCK;
    int sk = w->mx ? SK_E8M0 : w->f->sd == LB__SD_BF16 ? SK_BF16 : SK_F16;
    size_t bb = w->bb;
#define SI_ROWS(P, bits, sk) si_rows(mask, mb, data, rb, bb, r0, r1, nb, a, nt, y, ys, P, bits, sk)
/* P and the code width are compile-time constants of the loops; the scale
 * storage is one too for int4_g32 (FP16 scales: the common case, ~10 %
 * faster so), a run-time value for the rest (one decode per row and block),
 * which keeps the variants at 12 (compile time under the sanitizers: 20
 * variants took 4-5 minutes per file there). */
#define SI_P(P)                                                                                                   \
    do {                                                                                                          \
        if (w->bits == 4 && sk == SK_F16) SI_ROWS(P, 4, SK_F16);                                                  \
        else if (w->bits == 4) SI_ROWS(P, 4, sk);                                                                 \
        else SI_ROWS(P, 8, sk);                                                                                   \
    } while (0)
    switch (p) {
    case 1: SI_P(1); break;
    case 2: SI_P(2); break;
    case 4: SI_P(4); break;
    default: SI_P(8); break;
    }
#undef SI_P
#undef SI_ROWS
}

#endif
