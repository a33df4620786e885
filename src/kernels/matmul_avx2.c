/* matmul_avx2.c: AVX2 matmul/matvec following the canonical order of
 * kernels.h exactly: the 16 lane partial sums of one (row, token) pair live in
 * two 8-lane accumulators (lanes 0-7 and 8-15); the tail block is copied into
 * zero-padded buffers, so padded lanes execute fma(0, 0, s) as in the
 * reference; the horizontal sum adds the two halves (lane j + j+8), then
 * j + j+4, j + j+2, j + j+1. Register tiles: 2 rows x 3 tokens (prefill) or
 * 4 rows x 1 token (decode). */
#include "kernels/kernels.h"
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

INLINE __m256 load_w8(const uint8_t *row, int64_t k, lb_dtype dt)
{
    if (dt == LB_DTYPE_F32) return _mm256_loadu_ps((const float *)row + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + k));
    if (dt == LB_DTYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

INLINE float hsum16(__m256 lo, __m256 hi)
{
    __m256 a = _mm256_add_ps(lo, hi);
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

/* One 16-element block for RB rows x TB tokens; wrow[r] / xrow[t] point at
 * the block (k already applied). */
INLINE void block(const uint8_t *const *wrow, int RB, const float *const *xrow, int TB, lb_dtype dt, __m256 *lo,
                  __m256 *hi)
{
    __m256 wl[4], wh[4];
#pragma GCC unroll 4
    for (int r = 0; r < RB; r++) {
        wl[r] = load_w8(wrow[r], 0, dt);
        wh[r] = load_w8(wrow[r], 8, dt);
    }
#pragma GCC unroll 4
    for (int t = 0; t < TB; t++) {
        __m256 xl = _mm256_loadu_ps(xrow[t]), xh = _mm256_loadu_ps(xrow[t] + 8);
#pragma GCC unroll 4
        for (int r = 0; r < RB; r++) {
            lo[r * TB + t] = _mm256_fmadd_ps(wl[r], xl, lo[r * TB + t]);
            hi[r * TB + t] = _mm256_fmadd_ps(wh[r], xh, hi[r * TB + t]);
        }
    }
}

INLINE void tile(const uint8_t *w0, size_t rb, int RB, const float *x, int64_t xs, int TB, int64_t n, lb_dtype dt,
                 float *y, int64_t ys)
{
    __m256 lo[6], hi[6];
    const uint8_t *wrow[4];
    const float *xrow[4];
    size_t es = lb_dtype_size(dt);
#pragma GCC unroll 6
    for (int i = 0; i < RB * TB; i++) lo[i] = hi[i] = _mm256_setzero_ps();
    int64_t nf = n & ~(int64_t)15, k = 0;
    for (; k < nf; k += 16) {
#pragma GCC unroll 4
        for (int r = 0; r < RB; r++) wrow[r] = w0 + (size_t)r * rb + (size_t)k * es;
#pragma GCC unroll 4
        for (int t = 0; t < TB; t++) xrow[t] = x + t * xs + k;
        block(wrow, RB, xrow, TB, dt, lo, hi);
    }
    if (k < n) {
        _Alignas(32) uint8_t wpad[4][64];
        _Alignas(32) float xpad[4][16];
        size_t m = (size_t)(n - k);
        memset(wpad, 0, sizeof wpad);
        memset(xpad, 0, sizeof xpad);
        for (int r = 0; r < RB; r++) {
            memcpy(wpad[r], w0 + (size_t)r * rb + (size_t)k * es, m * es);
            wrow[r] = wpad[r];
        }
        for (int t = 0; t < TB; t++) {
            memcpy(xpad[t], x + t * xs + k, m * sizeof(float));
            xrow[t] = xpad[t];
        }
        block(wrow, RB, xrow, TB, dt, lo, hi);
    }
#pragma GCC unroll 4
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 4
        for (int t = 0; t < TB; t++) y[t * ys + r] = hsum16(lo[r * TB + t], hi[r * TB + t]);
}

INLINE void rows_dt(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                    float *y, int64_t ys, lb_dtype dt)
{
    size_t rb = (size_t)w->cols * lb_dtype_size(dt);
    const uint8_t *base = w->data;
    int64_t n = w->cols, r = r0;
    if (nt == 1) {
        for (; r + 4 <= r1; r += 4) tile(base + (size_t)r * rb, rb, 4, x, xs, 1, n, dt, y + r, ys);
        for (; r < r1; r++) tile(base + (size_t)r * rb, rb, 1, x, xs, 1, n, dt, y + r, ys);
        return;
    }
    for (; r + 2 <= r1; r += 2) {
        int64_t t = 0;
        for (; t + 3 <= nt; t += 3) tile(base + (size_t)r * rb, rb, 2, x + t * xs, xs, 3, n, dt, y + t * ys + r, ys);
        for (; t < nt; t++) tile(base + (size_t)r * rb, rb, 2, x + t * xs, xs, 1, n, dt, y + t * ys + r, ys);
    }
    for (; r < r1; r++) {
        int64_t t = 0;
        for (; t + 3 <= nt; t += 3) tile(base + (size_t)r * rb, rb, 1, x + t * xs, xs, 3, n, dt, y + t * ys + r, ys);
        for (; t < nt; t++) tile(base + (size_t)r * rb, rb, 1, x + t * xs, xs, 1, n, dt, y + t * ys + r, ys);
    }
}

static void rows_f32(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs, float *y,
                     int64_t ys)
{
    rows_dt(w, r0, r1, x, nt, xs, y, ys, LB_DTYPE_F32);
}
static void rows_f16(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs, float *y,
                     int64_t ys)
{
    rows_dt(w, r0, r1, x, nt, xs, y, ys, LB_DTYPE_F16);
}
static void rows_bf16(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                      float *y, int64_t ys)
{
    rows_dt(w, r0, r1, x, nt, xs, y, ys, LB_DTYPE_BF16);
}

void lb__matmul_rows_avx2(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                          float *y, int64_t ys)
{
    switch (w->dtype) {
    case LB_DTYPE_F16: rows_f16(w, r0, r1, x, nt, xs, y, ys); break;
    case LB_DTYPE_BF16: rows_bf16(w, r0, r1, x, nt, xs, y, ys); break;
    default: rows_f32(w, r0, r1, x, nt, xs, y, ys); break;
    }
}

float lb__dot_avx2(const float *a, const float *b, int64_t n)
{
    float y;
    tile((const uint8_t *)a, 0, 1, b, 0, 1, n, LB_DTYPE_F32, &y, 0);
    return y;
}

void lb__axpy_avx2(float a, const float *x, float *y, int64_t n)
{
    __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, _mm256_loadu_ps(x + i))));
    for (; i < n; i++) {
        float p = a * x[i];
        y[i] = y[i] + p;
    }
}

void lb__dots_avx2(const float *q, const float *k, int64_t ks, int64_t n, int64_t np, float *out)
{
    for (int64_t p = 0; p < np; p++) tile((const uint8_t *)q, 0, 1, k + p * ks, 0, 1, n, LB_DTYPE_F32, out + p, 0);
}

/* o stays in registers over all positions, 32 columns at a time. */
void lb__wsum_avx2(const float *w, const float *v, int64_t vs, int64_t np, int64_t n, float *o)
{
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        for (int64_t p = 0; p < np; p++) {
            const float *vp = v + p * vs + i;
            __m256 a = _mm256_set1_ps(w[p]);
            o0 = _mm256_add_ps(o0, _mm256_mul_ps(a, _mm256_loadu_ps(vp)));
            o1 = _mm256_add_ps(o1, _mm256_mul_ps(a, _mm256_loadu_ps(vp + 8)));
            o2 = _mm256_add_ps(o2, _mm256_mul_ps(a, _mm256_loadu_ps(vp + 16)));
            o3 = _mm256_add_ps(o3, _mm256_mul_ps(a, _mm256_loadu_ps(vp + 24)));
        }
        _mm256_storeu_ps(o + i, o0); _mm256_storeu_ps(o + i + 8, o1);
        _mm256_storeu_ps(o + i + 16, o2); _mm256_storeu_ps(o + i + 24, o3);
    }
    if (i < n) {
        for (int64_t c = i; c < n; c++) o[c] = 0.0f;
        for (int64_t p = 0; p < np; p++) lb__axpy_avx2(w[p], v + p * vs + i, o + i, n - i);
    }
}
