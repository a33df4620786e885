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

/* The two hot tiles written out with named registers (gcc keeps the
 * generic tile's accumulator array partly on the stack). Same order: each
 * accumulator is one (row, token) pair's 16 lane partial sums. */
INLINE void tile8x1(const uint8_t *w0, size_t rb, const float *x, int64_t n, lb_dtype dt, float *y)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    const uint8_t *w1 = w0 + rb, *w2 = w1 + rb, *w3 = w2 + rb, *w4 = w3 + rb, *w5 = w4 + rb, *w6 = w5 + rb,
                  *w7 = w6 + rb;
    int64_t nf = n & ~(int64_t)15, k = 0;
    for (; k < nf; k += 16) {
        __m512 xv = _mm512_loadu_ps(x + k);
        a0 = _mm512_fmadd_ps(load_w(w0, k, dt), xv, a0);
        a1 = _mm512_fmadd_ps(load_w(w1, k, dt), xv, a1);
        a2 = _mm512_fmadd_ps(load_w(w2, k, dt), xv, a2);
        a3 = _mm512_fmadd_ps(load_w(w3, k, dt), xv, a3);
        a4 = _mm512_fmadd_ps(load_w(w4, k, dt), xv, a4);
        a5 = _mm512_fmadd_ps(load_w(w5, k, dt), xv, a5);
        a6 = _mm512_fmadd_ps(load_w(w6, k, dt), xv, a6);
        a7 = _mm512_fmadd_ps(load_w(w7, k, dt), xv, a7);
    }
    if (k < n) {
        __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + k);
        a0 = _mm512_fmadd_ps(load_w_mask(w0, k, m, dt), xv, a0);
        a1 = _mm512_fmadd_ps(load_w_mask(w1, k, m, dt), xv, a1);
        a2 = _mm512_fmadd_ps(load_w_mask(w2, k, m, dt), xv, a2);
        a3 = _mm512_fmadd_ps(load_w_mask(w3, k, m, dt), xv, a3);
        a4 = _mm512_fmadd_ps(load_w_mask(w4, k, m, dt), xv, a4);
        a5 = _mm512_fmadd_ps(load_w_mask(w5, k, m, dt), xv, a5);
        a6 = _mm512_fmadd_ps(load_w_mask(w6, k, m, dt), xv, a6);
        a7 = _mm512_fmadd_ps(load_w_mask(w7, k, m, dt), xv, a7);
    }
    y[0] = hsum16(a0); y[1] = hsum16(a1); y[2] = hsum16(a2); y[3] = hsum16(a3);
    y[4] = hsum16(a4); y[5] = hsum16(a5); y[6] = hsum16(a6); y[7] = hsum16(a7);
}

/* 4 rows of F32 weights (row stride rb bytes) x 4 tokens. */
INLINE void tile4x4_f32(const float *w0, size_t rb, const float *x, int64_t xs, int64_t n, float *y, int64_t ys)
{
    const float *w1 = (const float *)((const uint8_t *)w0 + rb), *w2 = (const float *)((const uint8_t *)w1 + rb),
                *w3 = (const float *)((const uint8_t *)w2 + rb);
    const float *x0 = x, *x1 = x + xs, *x2 = x1 + xs, *x3 = x2 + xs;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    __m512 c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    int64_t k = 0;
    for (; k < n; k += 16) {
        __mmask16 m = n - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - k)) - 1);
        __m512 v0 = _mm512_maskz_loadu_ps(m, w0 + k), v1 = _mm512_maskz_loadu_ps(m, w1 + k);
        __m512 v2 = _mm512_maskz_loadu_ps(m, w2 + k), v3 = _mm512_maskz_loadu_ps(m, w3 + k);
        __m512 xv = _mm512_maskz_loadu_ps(m, x0 + k);
        c00 = _mm512_fmadd_ps(v0, xv, c00); c10 = _mm512_fmadd_ps(v1, xv, c10);
        c20 = _mm512_fmadd_ps(v2, xv, c20); c30 = _mm512_fmadd_ps(v3, xv, c30);
        xv = _mm512_maskz_loadu_ps(m, x1 + k);
        c01 = _mm512_fmadd_ps(v0, xv, c01); c11 = _mm512_fmadd_ps(v1, xv, c11);
        c21 = _mm512_fmadd_ps(v2, xv, c21); c31 = _mm512_fmadd_ps(v3, xv, c31);
        xv = _mm512_maskz_loadu_ps(m, x2 + k);
        c02 = _mm512_fmadd_ps(v0, xv, c02); c12 = _mm512_fmadd_ps(v1, xv, c12);
        c22 = _mm512_fmadd_ps(v2, xv, c22); c32 = _mm512_fmadd_ps(v3, xv, c32);
        xv = _mm512_maskz_loadu_ps(m, x3 + k);
        c03 = _mm512_fmadd_ps(v0, xv, c03); c13 = _mm512_fmadd_ps(v1, xv, c13);
        c23 = _mm512_fmadd_ps(v2, xv, c23); c33 = _mm512_fmadd_ps(v3, xv, c33);
    }
    y[0] = hsum16(c00); y[1] = hsum16(c10); y[2] = hsum16(c20); y[3] = hsum16(c30);
    y += ys;
    y[0] = hsum16(c01); y[1] = hsum16(c11); y[2] = hsum16(c21); y[3] = hsum16(c31);
    y += ys;
    y[0] = hsum16(c02); y[1] = hsum16(c12); y[2] = hsum16(c22); y[3] = hsum16(c32);
    y += ys;
    y[0] = hsum16(c03); y[1] = hsum16(c13); y[2] = hsum16(c23); y[3] = hsum16(c33);
}

/* Prefill with F16/BF16 weights: each tile of 4 rows is converted once into
 * this per-thread F32 scratch and reused for every token (the conversion is
 * exact, so the result is the same as converting on the fly). */
#define SCRATCH_FLOATS 16384
static _Thread_local _Alignas(64) float scratch[SCRATCH_FLOATS];

INLINE void convert_rows(const uint8_t *w0, size_t rb, int64_t rows, int64_t n, lb_dtype dt, float *out)
{
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = w0 + (size_t)r * rb;
        int64_t k = 0;
        for (; k + 16 <= n; k += 16) _mm512_storeu_ps(out + r * n + k, load_w(row, k, dt));
        if (k < n) _mm512_mask_storeu_ps(out + r * n + k, (__mmask16)((1u << (n - k)) - 1), load_w_mask(row, k, (__mmask16)((1u << (n - k)) - 1), dt));
    }
}

INLINE void rows_dt(const lb_weight *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                    float *y, int64_t ys, lb_dtype dt)
{
    size_t rb = (size_t)w->cols * lb_dtype_size(dt);
    const uint8_t *base = w->data;
    int64_t n = w->cols, r = r0;
    if (nt == 1) {
        for (; r + 8 <= r1; r += 8) tile8x1(base + (size_t)r * rb, rb, x, n, dt, y + r);
        for (; r < r1; r++) tile(base + (size_t)r * rb, rb, 1, x, xs, 1, n, dt, y + r, ys);
        return;
    }
    bool conv = dt != LB_DTYPE_F32 && nt >= 4 && 4 * n <= SCRATCH_FLOATS;
    for (; r + 4 <= r1; r += 4) {
        const uint8_t *wt = base + (size_t)r * rb;
        if (conv) {
            convert_rows(wt, rb, 4, n, dt, scratch);
            int64_t t = 0;
            for (; t + 4 <= nt; t += 4) tile4x4_f32(scratch, (size_t)n * 4, x + t * xs, xs, n, y + t * ys + r, ys);
            for (; t < nt; t++)
                tile((const uint8_t *)scratch, (size_t)n * 4, 4, x + t * xs, xs, 1, n, LB_DTYPE_F32, y + t * ys + r, ys);
            continue;
        }
        int64_t t = 0;
        for (; t + 4 <= nt; t += 4) {
            if (dt == LB_DTYPE_F32) tile4x4_f32((const float *)wt, rb, x + t * xs, xs, n, y + t * ys + r, ys);
            else tile(wt, rb, 4, x + t * xs, xs, 4, n, dt, y + t * ys + r, ys);
        }
        for (; t < nt; t++) tile(wt, rb, 4, x + t * xs, xs, 1, n, dt, y + t * ys + r, ys);
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

void lb__axpy_avx512(float a, const float *x, float *y, int64_t n)
{
    __m512 av = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_mul_ps(av, _mm512_loadu_ps(x + i))));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 p = _mm512_mul_ps(av, _mm512_maskz_loadu_ps(m, x + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), p));
    }
}
