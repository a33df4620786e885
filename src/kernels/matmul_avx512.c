/* matmul_avx512.c: AVX-512 matmul/matvec following the canonical order of
 * kernels.h exactly: one 16-lane accumulator per (row, token) pair holds the
 * 16 lane partial sums; the tail block uses masked (zeroing) loads, so padded
 * lanes execute fma(0, 0, s) as in the reference; the horizontal sum adds
 * lanes j + j+8, then j + j+4, j + j+2, j + j+1. Register tiles of RB rows x
 * TB tokens reuse each loaded weight vector TB times (prefill) and keep RB
 * independent FMA chains in flight (decode). */
#include "kernels/kernels.h"
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

INLINE __m512 load_w(const uint8_t *row, int64_t k, lb_dtype dt)
{
    if (dt == LB_DTYPE_F32) return _mm512_loadu_ps((const float *)row + k);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + k));
    if (dt == LB_DTYPE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

INLINE __m512 load_w_mask(const uint8_t *row, int64_t k, __mmask16 m, lb_dtype dt)
{
    if (dt == LB_DTYPE_F32) return _mm512_maskz_loadu_ps(m, (const float *)row + k);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + k);
    if (dt == LB_DTYPE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Pairwise tree: (j, j+8), (j, j+4), (j, j+2), (j, j+1). */
INLINE float hsum16(__m512 s)
{
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

/* RB rows starting at w0 (row stride rb bytes) times TB tokens. */
INLINE void tile(const uint8_t *w0, size_t rb, int RB, const float *x, int64_t xs, int TB, int64_t n,
                 lb_dtype dt, float *y, int64_t ys)
{
    __m512 acc[16], wv[8];
#pragma GCC unroll 16
    for (int i = 0; i < RB * TB; i++) acc[i] = _mm512_setzero_ps();
    int64_t nf = n & ~(int64_t)15, k = 0;
    for (; k < nf; k += 16) {
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++) wv[r] = load_w(w0 + (size_t)r * rb, k, dt);
#pragma GCC unroll 4
        for (int t = 0; t < TB; t++) {
            __m512 xv = _mm512_loadu_ps(x + t * xs + k);
#pragma GCC unroll 8
            for (int r = 0; r < RB; r++) acc[r * TB + t] = _mm512_fmadd_ps(wv[r], xv, acc[r * TB + t]);
        }
    }
    if (k < n) {
        __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++) wv[r] = load_w_mask(w0 + (size_t)r * rb, k, m, dt);
#pragma GCC unroll 4
        for (int t = 0; t < TB; t++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + t * xs + k);
#pragma GCC unroll 8
            for (int r = 0; r < RB; r++) acc[r * TB + t] = _mm512_fmadd_ps(wv[r], xv, acc[r * TB + t]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 4
        for (int t = 0; t < TB; t++) y[t * ys + r] = hsum16(acc[r * TB + t]);
}

INLINE void rows_dt(const lb_weight *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                    float *y, int64_t ys, lb_dtype dt)
{
    size_t rb = (size_t)w->cols * lb_dtype_size(dt);
    const uint8_t *base = w->data;
    int64_t n = w->cols, r = r0;
    if (nt == 1) {
        for (; r + 8 <= r1; r += 8) tile(base + (size_t)r * rb, rb, 8, x, xs, 1, n, dt, y + r, ys);
        for (; r < r1; r++) tile(base + (size_t)r * rb, rb, 1, x, xs, 1, n, dt, y + r, ys);
        return;
    }
    for (; r + 4 <= r1; r += 4) {
        int64_t t = 0;
        for (; t + 4 <= nt; t += 4) tile(base + (size_t)r * rb, rb, 4, x + t * xs, xs, 4, n, dt, y + t * ys + r, ys);
        for (; t < nt; t++) tile(base + (size_t)r * rb, rb, 4, x + t * xs, xs, 1, n, dt, y + t * ys + r, ys);
    }
    for (; r < r1; r++) {
        int64_t t = 0;
        for (; t + 4 <= nt; t += 4) tile(base + (size_t)r * rb, rb, 1, x + t * xs, xs, 4, n, dt, y + t * ys + r, ys);
        for (; t < nt; t++) tile(base + (size_t)r * rb, rb, 1, x + t * xs, xs, 1, n, dt, y + t * ys + r, ys);
    }
}

static void rows_f32(const lb_weight *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs, float *y,
                     int64_t ys)
{
    rows_dt(w, r0, r1, x, nt, xs, y, ys, LB_DTYPE_F32);
}
static void rows_f16(const lb_weight *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs, float *y,
                     int64_t ys)
{
    rows_dt(w, r0, r1, x, nt, xs, y, ys, LB_DTYPE_F16);
}
static void rows_bf16(const lb_weight *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                      float *y, int64_t ys)
{
    rows_dt(w, r0, r1, x, nt, xs, y, ys, LB_DTYPE_BF16);
}

void lb__matmul_rows_avx512(const lb_weight *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                            float *y, int64_t ys)
{
    switch (w->dtype) {
    case LB_DTYPE_F16: rows_f16(w, r0, r1, x, nt, xs, y, ys); break;
    case LB_DTYPE_BF16: rows_bf16(w, r0, r1, x, nt, xs, y, ys); break;
    default: rows_f32(w, r0, r1, x, nt, xs, y, ys); break;
    }
}

float lb__dot_avx512(const float *a, const float *b, int64_t n)
{
    float y;
    tile((const uint8_t *)a, 0, 1, b, 0, 1, n, LB_DTYPE_F32, &y, 0);
    return y;
}
