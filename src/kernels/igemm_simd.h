/* igemm_simd.h: the body of the AVX2 and AVX-512 integer products (the
 * definition is in igemm.h), included by igemm_avx2.c and igemm_avx512.c.
 * The including file defines IG_DOT32(wu, s): the 8 lanes of 4 products of
 * 32 unsigned bytes wu with 32 signed bytes s (exact int32), and IG_NAME.
 *
 * Products: w * a = |w| * (a with w's sign) (vpsignb; a in [-127, 127] so
 * the negation never overflows, |w| <= 128 as an unsigned byte), 4 per
 * 32-bit lane. Tiles of R weight rows x T tokens; the weight block is
 * decoded once per tile (4-bit: low nibbles then high nibbles, sign-extended
 * through vpshufb, which is the kernel order), its scale once. Tokens are
 * taken 64 at a time so their codes stay in cache across the rows. */
#ifndef LB_IGEMM_SIMD_H
#define LB_IGEMM_SIMD_H

#include "kernels/igemm_scale.h"
#include <immintrin.h>

#define IG_INLINE static inline __attribute__((always_inline))


/* The 32 weight values of a block in kernel order, as signed bytes. */
IG_INLINE __m256i ig_wcodes(const uint8_t *codes, int bits)
{
    if (bits == 8) return _mm256_loadu_si256((const __m256i *)codes);
    const __m256i lut = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1,
                                         0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
    __m128i x = _mm_loadu_si128((const __m128i *)codes);
    __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(15));
    return _mm256_shuffle_epi8(lut, v);
}

/* a[j] += a[j+4], a[j] += a[j+2], a[0] + a[1]. */
IG_INLINE float ig_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

IG_INLINE void ig_tile(const uint8_t *row, size_t rb, size_t bb, int64_t nb, const lb__iact *a, int64_t t0,
                       float *y, int64_t ys, int64_t r, int R, int T, int bits, int sk)
{
    __m256 acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[i][t] = _mm256_setzero_ps();
    const int8_t *aq = a->q + t0 * a->qs;
    const float *ad = a->d + t0 * a->ds;
    for (int64_t b = 0; b < nb; b++) {
        __m256i wv[4], wu[4];
        float dw[4];
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = row + (size_t)i * rb + (size_t)b * bb;
            dw[i] = ig_wscale(sk, blk);
            wv[i] = ig_wcodes(blk + (sk == SK_E8M0 ? 1 : 2), bits);
            if (T <= 2) _mm_prefetch((const char *)(blk + 3 * (size_t)R * rb), _MM_HINT_T0);   /* decode: 3 tiles ahead */
            wu[i] = _mm256_abs_epi8(wv[i]);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256i av = _mm256_loadu_si256((const __m256i *)(aq + t * a->qs + b * LB_IG_BLOCK));
            float da = ad[t * a->ds + b];
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                __m256i p = IG_DOT32(wu[i], _mm256_sign_epi8(av, wv[i]));
                acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw[i] * da), acc[i][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) y[(t0 + t) * ys + r + i] = ig_hsum(acc[i][t]);
}

/* Rows [r0, r1) for tokens [t0, t0 + nt): R rows x T tokens per tile. */
IG_INLINE void ig_rows(const uint8_t *data, size_t rb, size_t bb, int64_t r0, int64_t r1, int64_t nb,
                       const lb__iact *a, int64_t t0, int64_t nt, float *y, int64_t ys, int bits, int sk)
{
    int64_t r = r0;
#define IG_TILE(R, T, t) ig_tile(data + (size_t)r * rb, rb, bb, nb, a, t, y, ys, r, R, T, bits, sk)
    if (nt <= 2) {
        for (; r + 4 <= r1; r += 4) { if (nt == 1) IG_TILE(4, 1, t0); else IG_TILE(4, 2, t0); }
        for (; r < r1; r++) { if (nt == 1) IG_TILE(1, 1, t0); else IG_TILE(1, 2, t0); }
        return;
    }
    for (; r < r1; r += 2) {
        bool two = r + 2 <= r1;
        int64_t t = t0;
        for (; t + 4 <= t0 + nt; t += 4) { if (two) IG_TILE(2, 4, t); else IG_TILE(1, 4, t); }
        for (; t < t0 + nt; t++) { if (two) IG_TILE(2, 1, t); else IG_TILE(1, 1, t); }
    }
#undef IG_TILE
}

/* ---- prefill: strips of weight rows decoded once for all tokens */

/* Rows of a strip decoded per call (fewer when a strip would pass IG_STRIP_BYTES). */
#define IG_STRIP_ROWS 16
#define IG_STRIP_BYTES (96 * 1024)

/* Rows [r, r + n) decoded into sw (row i, block b: 32 signed codes in kernel
 * order at sw + (i * nb + b) * 32) and sd (their scales at sd + i * nb + b). */
IG_INLINE void ig_strip(const uint8_t *data, size_t rb, size_t bb, int64_t r, int64_t n, int64_t nb, int8_t *sw,
                        float *sd, int bits, int sk)
{
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *row = data + (size_t)(r + i) * rb;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * bb;
            sd[i * nb + b] = ig_wscale(sk, blk);
            _mm256_store_si256((__m256i *)(sw + (i * nb + b) * LB_IG_BLOCK), ig_wcodes(blk + (sk == SK_E8M0 ? 1 : 2), bits));
        }
    }
}

/* R decoded rows x T tokens: the lanes of the definition, the scale
 * s = dw * da as one vector multiply of two broadcasts. */
IG_INLINE void ig_ptile(const int8_t *sw, const float *sd, int64_t nb, const int8_t *aq, int64_t qs, const float *ad,
                        int64_t ds, float *y, int64_t ys, int R, int T)
{
    __m256 acc[2][4];
#pragma GCC unroll 2
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[i][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i wv[2], wu[2];
#pragma GCC unroll 2
        for (int i = 0; i < R; i++) {
            wv[i] = _mm256_load_si256((const __m256i *)(sw + (i * nb + b) * LB_IG_BLOCK));
            wu[i] = _mm256_abs_epi8(wv[i]);
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256i av = _mm256_loadu_si256((const __m256i *)(aq + t * qs + b * LB_IG_BLOCK));
            __m256 da = _mm256_broadcast_ss(ad + t * ds + b);
#pragma GCC unroll 2
            for (int i = 0; i < R; i++) {
                __m256i p = IG_DOT32(wu[i], _mm256_sign_epi8(av, wv[i]));
                __m256 s = _mm256_mul_ps(_mm256_broadcast_ss(sd + i * nb + b), da);
                acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[i][t]);
            }
        }
    }
#pragma GCC unroll 2
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) y[t * ys + i] = ig_hsum(acc[i][t]);
}

/* Tokens [0, nt) against n decoded rows: 4 tokens at a time over the strip's
 * row pairs, so the 4 tokens' codes stay in L1 while the strip is read. */
IG_INLINE void ig_pstrip(const int8_t *sw, const float *sd, int64_t n, int64_t nb, const lb__iact *a, int64_t nt,
                         float *y, int64_t ys)
{
#define IG_PT(R, T) ig_ptile(sw + i * nb * LB_IG_BLOCK, sd + i * nb, nb, aq, a->qs, ad, a->ds, y + t * ys + i, ys, R, T)
    for (int64_t t = 0; t < nt; t += 4) {
        const int8_t *aq = a->q + t * a->qs;
        const float *ad = a->d + t * a->ds;
        int64_t left = nt - t, i = 0;
        for (; i + 2 <= n; i += 2) {
            if (left >= 4) IG_PT(2, 4);
            else if (left == 3) IG_PT(2, 3);
            else if (left == 2) IG_PT(2, 2);
            else IG_PT(2, 1);
        }
        if (i < n) {
            if (left >= 4) IG_PT(1, 4);
            else if (left == 3) IG_PT(1, 3);
            else if (left == 2) IG_PT(1, 2);
            else IG_PT(1, 1);
        }
    }
#undef IG_PT
}

/* Prefill of rows [r0, r1): false when the strip buffer cannot be had. */
static bool ig_prefill(const lb__iw *w, const uint8_t *data, size_t rb, int64_t r0, int64_t r1, int64_t nb,
                       const lb__iact *a, int64_t nt, float *y, int64_t ys, int sk)
{
    size_t per_row = (size_t)nb * (LB_IG_BLOCK + sizeof(float));
    int64_t S = lb__max64(1, lb__min64(IG_STRIP_ROWS, (int64_t)(IG_STRIP_BYTES / per_row)));
    S = lb__min64(S, r1 - r0);
    int8_t *sw = lb__alloc_aligned(per_row * (size_t)S);
    if (!sw) return false;
    float *sd = (float *)(sw + (size_t)(S * nb) * LB_IG_BLOCK);
    for (int64_t r = r0; r < r1; r += S) {
        int64_t n = lb__min64(S, r1 - r);
        if (w->bits == 8) {
            if (sk == SK_F16) ig_strip(data, rb, w->bb, r, n, nb, sw, sd, 8, SK_F16);
            else if (sk == SK_BF16) ig_strip(data, rb, w->bb, r, n, nb, sw, sd, 8, SK_BF16);
            else ig_strip(data, rb, w->bb, r, n, nb, sw, sd, 8, SK_E8M0);
        } else if (sk == SK_F16) ig_strip(data, rb, w->bb, r, n, nb, sw, sd, 4, SK_F16);
        else ig_strip(data, rb, w->bb, r, n, nb, sw, sd, 4, SK_BF16);
        ig_pstrip(sw, sd, n, nb, a, nt, y + r, ys);
    }
    lb__free_aligned(sw);
    return true;
}

void IG_NAME(const lb__iw *w, const uint8_t *data, size_t rb, int64_t r0, int64_t r1, int64_t cols,
             const lb__iact *a, int64_t nt, float *y, int64_t ys)
{
    int64_t nb = cols / LB_IG_BLOCK;
    int sk = w->mx ? SK_E8M0 : w->f->sd == LB__SD_BF16 ? SK_BF16 : SK_F16;
    size_t bb = w->bb;
    if (nt > 2 && ig_prefill(w, data, rb, r0, r1, nb, a, nt, y, ys, sk)) return;
    for (int64_t t0 = 0; t0 < nt; t0 += 64) {
        int64_t n = lb__min64(64, nt - t0);
#define IG_ROWS(bits, sk) ig_rows(data, rb, bb, r0, r1, nb, a, t0, n, y, ys, bits, sk)
        if (w->bits == 8) {
            if (sk == SK_F16) IG_ROWS(8, SK_F16);
            else if (sk == SK_BF16) IG_ROWS(8, SK_BF16);
            else IG_ROWS(8, SK_E8M0);
        } else {
            if (sk == SK_F16) IG_ROWS(4, SK_F16);
            else IG_ROWS(4, SK_BF16);
        }
#undef IG_ROWS
    }
}

#endif
