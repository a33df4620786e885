/* bf16dot_avx512.c: the "bf16 x bf16" product of bf16dot.h with
 * AVX512-BF16: one vdpbf16ps per 32 columns of a (row, token) pair; its 16
 * lanes take columns 2j and 2j+1 exactly as the definition (which is this
 * instruction's "Operation" text, flushing included: no MXCSR, no bit
 * tests). The last step uses zeroing masked loads, so padded pairs execute
 * on zeros as in the reference. Tiles: 8 rows x 1 token, 4 x 2 (decode),
 * 4 rows x 4 tokens (prefill: 16 accumulators, each weight vector used 4
 * times). The 16 lanes are reduced with the canonical tree. Compiled and
 * selected only with lowbit's avx512 level, which requires AVX512_BF16. */
#include "kernels/bf16dot.h"
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

/* Pairwise tree: (j, j+8), (j, j+4), (j, j+2), (j, j+1). */
INLINE float hsum16(__m512 s)
{
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

INLINE __m512i load32(const uint16_t *p, __mmask32 m, bool masked)
{
    return masked ? _mm512_maskz_loadu_epi16(m, p) : _mm512_loadu_si512((const void *)p);
}

INLINE void step(const uint16_t *w, int64_t ws, int RB, const uint16_t *x, int64_t xs, int TB, __mmask32 m,
                 bool masked, __m512 *acc)
{
    __m512i wv[8];
#pragma GCC unroll 8
    for (int r = 0; r < RB; r++) wv[r] = load32(w + r * ws, m, masked);
#pragma GCC unroll 4
    for (int t = 0; t < TB; t++) {
        __m512i xv = load32(x + t * xs, m, masked);
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++)
            acc[r * TB + t] = _mm512_dpbf16_ps(acc[r * TB + t], (__m512bh)wv[r], (__m512bh)xv);
    }
}

INLINE void tile(const uint16_t *w, int64_t ws, int RB, const uint16_t *x, int64_t xs, int TB, int64_t n, float *y,
                 int64_t ys)
{
    __m512 acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < RB * TB; i++) acc[i] = _mm512_setzero_ps();
    int64_t nf = n & ~(int64_t)(LB_BD_STEP - 1), k = 0;
    for (; k < nf; k += LB_BD_STEP) step(w + k, ws, RB, x + k, xs, TB, 0, false, acc);
    if (k < n) step(w + k, ws, RB, x + k, xs, TB, (__mmask32)((1u << (n - k)) - 1), true, acc);
#pragma GCC unroll 8
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 4
        for (int t = 0; t < TB; t++) y[t * ys + r] = hsum16(acc[r * TB + t]);
}

void lb__bdot_avx512(const lb_mat *w, int64_t r0, int64_t r1, const lb__bact *a, int64_t nt, float *y, int64_t ys)
{
    LB_ASSERT(w->dtype == LB_DTYPE_BF16);
    const uint16_t *base = w->data, *x = a->x;
    int64_t n = w->cols, ws = w->cols, xs = a->xs, r = r0;
    if (nt == 1) {
        for (; r + 8 <= r1; r += 8) tile(base + r * ws, ws, 8, x, xs, 1, n, y + r, ys);
        for (; r < r1; r++) tile(base + r * ws, ws, 1, x, xs, 1, n, y + r, ys);
        return;
    }
    for (; r < r1; r += 4) {
        const uint16_t *w0 = base + r * ws;
        int RB = (int)lb__min64(4, r1 - r);
        int64_t t = 0;
#define ROWS(R)                                                                                       \
    do {                                                                                              \
        for (; t + 4 <= nt; t += 4) tile(w0, ws, R, x + t * xs, xs, 4, n, y + t * ys + r, ys);      \
        for (; t + 2 <= nt; t += 2) tile(w0, ws, R, x + t * xs, xs, 2, n, y + t * ys + r, ys);      \
        for (; t < nt; t++) tile(w0, ws, R, x + t * xs, xs, 1, n, y + t * ys + r, ys);              \
    } while (0)
        switch (RB) {
        case 4: ROWS(4); break;
        case 3: ROWS(3); break;
        case 2: ROWS(2); break;
        default: ROWS(1); break;
        }
#undef ROWS
    }
}
