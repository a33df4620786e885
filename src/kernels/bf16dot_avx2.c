/* bf16dot_avx2.c: the "bf16 x bf16" product of bf16dot.h with AVX2 + FMA,
 * bit-identical to the reference. The 16 lanes of a (row, token) pair live
 * in two 8-lane accumulators (lanes 0-7: columns 0-15 of a step, 8-15:
 * columns 16-31); a 256-bit load of 16 BF16 values holds lane j's pair in
 * dword j, so the odd element is (dword & 0xffff0000) and the even one
 * (dword << 16), both exact FP32. Each step is one vfmadd (the BF16 product
 * is exact, the FMA rounds the exact sum once: the definition's fma), odd
 * then even.
 *
 * Flushing. Without denormal inputs a step can still produce a denormal
 * (cancellation, tiny products), so the general path zeroes denormal weight
 * elements (vpcmpeqw on the exponent bits) and flushes every FMA result
 * whose exponent field is 0 (vpcmpeqd, then keep only the sign). That costs
 * more than the FMAs, and it never changes anything when every nonzero
 * input has |v| >= 2^-56: a BF16 value is then a multiple of 2^(-56-7), a
 * product a multiple of 2^-126, and by induction every accumulator is (a
 * sum of two multiples of 2^-126 below 2^-102 is exact, above it the
 * rounding grid is 2^-125 or coarser), so a nonzero accumulator is never
 * below 2^-126, i.e. never denormal. So the plain FMA path runs when
 * nothing is that small: the call's activations are checked when they are
 * converted (lb__bact.tiny); prefill checks each row pair once before its
 * tiles, decode checks the weights during the plain pass and redoes the
 * tile with flushing when one was tiny (rows are read once). Tiles: 4 rows
 * x 1 token or 2 x 2 (decode), 2 rows x 3 tokens (prefill). */
#include "kernels/bf16dot.h"
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

/* 16-bit elements with exponent field 0 become the zero of their sign. */
INLINE __m256i daz16(__m256i v)
{
    __m256i m = _mm256_cmpeq_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x7f80)), _mm256_setzero_si256());
    return _mm256_andnot_si256(_mm256_and_si256(m, _mm256_set1_epi16(0x7fff)), v);
}

/* FP32 lanes with exponent field 0 become the zero of their sign. */
INLINE __m256 ftz8(__m256 s)
{
    __m256i u = _mm256_castps_si256(s);
    __m256i m = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7f800000)), _mm256_setzero_si256());
    return _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_and_si256(m, _mm256_set1_epi32(0x7fffffff)), u));
}

INLINE __m256 odd8(__m256i v) { return _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xffff0000u))); }
INLINE __m256 even8(__m256i v) { return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)); }

/* |v| - 1 of 16 BF16 values as unsigned 16-bit (0 wraps to 0xffff): at
 * most (71 << 7) - 2 exactly for the tiny ones (lb__bf16_tiny). Checks keep
 * the running minimum of it (3 operations per 16 values). */
INLINE __m256i mag1(__m256i v)
{
    return _mm256_sub_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x7fff)), _mm256_set1_epi16(1));
}

INLINE bool any_tiny(__m256i m)
{
    __m256i t = _mm256_cmpeq_epi16(_mm256_min_epu16(m, _mm256_set1_epi16((71 << 7) - 2)), m);
    return !_mm256_testz_si256(t, t);
}

/* One 32-column step for RB rows (w + r * ws) x TB tokens (x + t * xs);
 * mn (when not NULL) keeps the minimum of the weights' mag1. */
INLINE void step(const uint16_t *w, int64_t ws, int RB, const uint16_t *x, int64_t xs, int TB, bool flush,
                 __m256i *mn, __m256 *acc)
{
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m256 wo[4], we[4];
#pragma GCC unroll 4
        for (int r = 0; r < RB; r++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(w + r * ws + 16 * h));
            if (flush) v = daz16(v);
            if (mn) *mn = _mm256_min_epu16(*mn, mag1(v));
            wo[r] = odd8(v);
            we[r] = even8(v);
        }
#pragma GCC unroll 4
        for (int t = 0; t < TB; t++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(x + t * xs + 16 * h));
            __m256 xo = odd8(v), xe = even8(v);
#pragma GCC unroll 4
            for (int r = 0; r < RB; r++) {
                __m256 a = acc[2 * (r * TB + t) + h];
                a = _mm256_fmadd_ps(wo[r], xo, a);
                if (flush) a = ftz8(a);
                a = _mm256_fmadd_ps(we[r], xe, a);
                if (flush) a = ftz8(a);
                acc[2 * (r * TB + t) + h] = a;
            }
        }
    }
}

INLINE float hsum16(__m256 lo, __m256 hi)
{
    __m256 a = _mm256_add_ps(lo, hi);
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

/* Returns false (nothing stored) when mn was given and a weight turned out tiny. */
INLINE bool tile_f(const uint16_t *w, int64_t ws, int RB, const uint16_t *x, int64_t xs, int TB, int64_t n,
                   bool flush, __m256i *mn, float *y, int64_t ys)
{
    __m256 acc[2 * 6];
#pragma GCC unroll 12
    for (int i = 0; i < 2 * RB * TB; i++) acc[i] = _mm256_setzero_ps();
    int64_t nf = n & ~(int64_t)(LB_BD_STEP - 1), k = 0;
    for (; k < nf; k += LB_BD_STEP) step(w + k, ws, RB, x + k, xs, TB, flush, mn, acc);
    if (k < n) {
        _Alignas(32) uint16_t wpad[4][LB_BD_STEP], xpad[3][LB_BD_STEP];
        size_t m = (size_t)(n - k) * sizeof(uint16_t);
        memset(wpad, 0, sizeof wpad);
        memset(xpad, 0, sizeof xpad);
        for (int r = 0; r < RB; r++) memcpy(wpad[r], w + r * ws + k, m);
        for (int t = 0; t < TB; t++) memcpy(xpad[t], x + t * xs + k, m);
        step(wpad[0], LB_BD_STEP, RB, xpad[0], LB_BD_STEP, TB, flush, mn, acc);
    }
    if (mn && any_tiny(*mn)) return false;
#pragma GCC unroll 4
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 3
        for (int t = 0; t < TB; t++) y[t * ys + r] = hsum16(acc[2 * (r * TB + t)], acc[2 * (r * TB + t) + 1]);
    return true;
}

INLINE void tile(const uint16_t *w, int64_t ws, int RB, const uint16_t *x, int64_t xs, int TB, int64_t n,
                 bool flush, float *y, int64_t ys)
{
    if (flush) tile_f(w, ws, RB, x, xs, TB, n, true, NULL, y, ys);
    else tile_f(w, ws, RB, x, xs, TB, n, false, NULL, y, ys);
}

/* Decode: the plain path checking the weights on the way, redone with
 * flushing when one was tiny (x tiny: flushing at once). */
INLINE void tile_dec(const uint16_t *w, int64_t ws, int RB, const uint16_t *x, int64_t xs, int TB, int64_t n,
                     bool xtiny, float *y, int64_t ys)
{
    __m256i mn = _mm256_set1_epi16(-1);
    if (xtiny || !tile_f(w, ws, RB, x, xs, TB, n, false, &mn, y, ys)) tile_f(w, ws, RB, x, xs, TB, n, true, NULL, y, ys);
}

/* Whether rows [0, nr) of w (stride ws) hold a tiny element. */
static bool rows_tiny(const uint16_t *w, int64_t ws, int nr, int64_t n)
{
    __m256i mn = _mm256_set1_epi16(-1);
    for (int r = 0; r < nr; r++) {
        const uint16_t *row = w + r * ws;
        int64_t c = 0;
        for (; c + 16 <= n; c += 16) mn = _mm256_min_epu16(mn, mag1(_mm256_loadu_si256((const __m256i *)(row + c))));
        for (; c < n; c++)
            if (lb__bf16_tiny(row[c])) return true;
    }
    return any_tiny(mn);
}

void lb__bdot_avx2(const lb_mat *w, int64_t r0, int64_t r1, const lb__bact *a, int64_t nt, float *y, int64_t ys)
{
    LB_ASSERT(w->dtype == LB_DTYPE_BF16);
    const uint16_t *base = w->data, *x = a->x;
    int64_t n = w->cols, ws = w->cols, xs = a->xs, r = r0;
    if (nt == 1) {
        for (; r + 4 <= r1; r += 4) tile_dec(base + r * ws, ws, 4, x, xs, 1, n, a->tiny, y + r, ys);
        for (; r < r1; r++) tile_dec(base + r * ws, ws, 1, x, xs, 1, n, a->tiny, y + r, ys);
        return;
    }
    if (nt == 2) {
        for (; r + 2 <= r1; r += 2) tile_dec(base + r * ws, ws, 2, x, xs, 2, n, a->tiny, y + r, ys);
        for (; r < r1; r++) tile_dec(base + r * ws, ws, 1, x, xs, 2, n, a->tiny, y + r, ys);
        return;
    }
    for (; r < r1; r += 2) {
        int RB = r + 2 <= r1 ? 2 : 1;
        const uint16_t *w0 = base + r * ws;
        bool fl = a->tiny || rows_tiny(w0, ws, RB, n);
        int64_t t = 0;
        if (RB == 2) {
            for (; t + 3 <= nt; t += 3) tile(w0, ws, 2, x + t * xs, xs, 3, n, fl, y + t * ys + r, ys);
            for (; t + 2 <= nt; t += 2) tile(w0, ws, 2, x + t * xs, xs, 2, n, fl, y + t * ys + r, ys);
            for (; t < nt; t++) tile(w0, ws, 2, x + t * xs, xs, 1, n, fl, y + t * ys + r, ys);
        } else {
            for (; t + 3 <= nt; t += 3) tile(w0, ws, 1, x + t * xs, xs, 3, n, fl, y + t * ys + r, ys);
            for (; t < nt; t++) tile(w0, ws, 1, x + t * xs, xs, 1, n, fl, y + t * ys + r, ys);
        }
    }
}
