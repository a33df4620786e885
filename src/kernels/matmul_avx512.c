/* matmul_avx512.c: AVX-512 matmul/matvec following the canonical order of
 * kernels.h exactly: one 16-lane accumulator per (row, token) pair holds the
 * 16 lane partial sums; the tail block uses masked (zeroing) loads, so padded
 * lanes execute fma(0, 0, s) as in the reference; the horizontal sum adds
 * lanes j + j+8, then j + j+4, j + j+2, j + j+1 (reduce8 does it for 8 rows at
 * once with the same additions). The hot tile is 8 rows x 3 tokens (24
 * accumulators): each weight vector is loaded once and used by 3 tokens
 * (prefill), and decode keeps 8 independent FMA chains in flight. */
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

/* The 8 canonical sums of accumulators a0..a7 (8 rows of one token), in row
 * order, with the same additions as hsum16 on each, done for all 8 at once:
 * level 1 pairs 256-bit halves (lane j + j+8), level 2 128-bit blocks
 * (j + j+4), level 3 element pairs inside blocks (j + j+2), level 4 adjacent
 * elements (j + j+1; a + b and b + a are the same IEEE sum). */
INLINE __m256 reduce8(__m512 a0, __m512 a1, __m512 a2, __m512 a3, __m512 a4, __m512 a5, __m512 a6, __m512 a7)
{
#define LVL1(x, y) _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xEE))
#define LVL2(x, y) _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xDD))
    __m512 s01 = LVL1(a0, a1), s23 = LVL1(a2, a3), s45 = LVL1(a4, a5), s67 = LVL1(a6, a7);
    __m512 q0 = LVL2(s01, s23), q4 = LVL2(s45, s67);   /* block i: row i / row 4+i, 4 values */
#undef LVL1
#undef LVL2
    __m512 v = _mm512_add_ps(_mm512_shuffle_ps(q0, q4, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(q0, q4, _MM_SHUFFLE(3, 2, 3, 2)));   /* [r_i 2, r_4+i 2] */
    v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
    /* row i < 4 sits in element 4i, row 4+i in element 4i+2 */
    const __m512i idx = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 14, 10, 6, 2, 12, 8, 4, 0);
    return _mm512_castps512_ps256(_mm512_permutexvar_ps(idx, v));
}

/* The 16 canonical sums of a[0..15] (lane L of the result = a[L]): reduce8's
 * first three levels on each half, then the last level pairs the two. */
INLINE __m512 reduce16(const __m512 *a)
{
#define LVL1(x, y) _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xEE))
#define LVL2(x, y) _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xDD))
#define LVL3(x, y) _mm512_add_ps(_mm512_shuffle_ps(x, y, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(x, y, _MM_SHUFFLE(3, 2, 3, 2)))
    __m512 q0 = LVL2(LVL1(a[0], a[1]), LVL1(a[2], a[3])), q4 = LVL2(LVL1(a[4], a[5]), LVL1(a[6], a[7]));
    __m512 q8 = LVL2(LVL1(a[8], a[9]), LVL1(a[10], a[11])), q12 = LVL2(LVL1(a[12], a[13]), LVL1(a[14], a[15]));
    __m512 v = LVL3(q0, q4), u = LVL3(q8, q12);   /* block i: [a_i, a_4+i] / [a_8+i, a_12+i], 2 values each */
#undef LVL1
#undef LVL2
#undef LVL3
    __m512 r = _mm512_add_ps(_mm512_shuffle_ps(v, u, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(v, u, _MM_SHUFFLE(3, 1, 3, 1)));   /* element 4i+c: a_4c+i */
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(idx, r);
}

/* Decode with 16-bit weights prefetches this many 8-row tiles ahead into L2
 * (rows are short: the hardware prefetchers alone leave a BF16 matvec
 * latency-bound, slower in GB/s than F32; into L2 rather than L1 keeps more
 * misses in flight). F32 decode gained nothing measurable from it. */
#define PF_TILES 16
#define PF_HINT _MM_HINT_T1

/* 8 rows (row stride rb bytes) x TB tokens (1, 2 or 3; a compile-time
 * constant after inlining), named accumulators so nothing spills: per block
 * of 16 columns the TB activation vectors are loaded once and each weight
 * vector once, used TB times. */
INLINE void tile8(const uint8_t *w0, size_t rb, const float *x, int64_t xs, const int TB, int64_t n, lb_dtype dt,
                  float *y, int64_t ys, const uint8_t *pf)
{
    __m512 z = _mm512_setzero_ps();
    __m512 a00 = z, a10 = z, a20 = z, a30 = z, a40 = z, a50 = z, a60 = z, a70 = z;
    __m512 a01 = z, a11 = z, a21 = z, a31 = z, a41 = z, a51 = z, a61 = z, a71 = z;
    __m512 a02 = z, a12 = z, a22 = z, a32 = z, a42 = z, a52 = z, a62 = z, a72 = z;
    const float *x1 = x + xs, *x2 = x1 + xs;
    int64_t nf = n & ~(int64_t)15, k = 0;
#define ROW(i, LOAD)                                                              \
    do {                                                                          \
        __m512 wv = LOAD;                                                         \
        if (TB > 1) __asm__("" : "+v"(wv)); /* one load, not one per token */     \
        a##i##0 = _mm512_fmadd_ps(wv, xv0, a##i##0);                              \
        if (TB > 1) a##i##1 = _mm512_fmadd_ps(wv, xv1, a##i##1);                  \
        if (TB > 2) a##i##2 = _mm512_fmadd_ps(wv, xv2, a##i##2);                  \
    } while (0)
#define ROWS(LOAD1)                                                               \
    ROW(0, LOAD1(0)); ROW(1, LOAD1(1)); ROW(2, LOAD1(2)); ROW(3, LOAD1(3));       \
    ROW(4, LOAD1(4)); ROW(5, LOAD1(5)); ROW(6, LOAD1(6)); ROW(7, LOAD1(7))
#define LD(i) load_w(w0 + (size_t)(i) * rb, k, dt)
#define LDM(i) load_w_mask(w0 + (size_t)(i) * rb, k, m, dt)
    for (; k < nf; k += 16) {
        if (pf) {   /* decode: fetch the next tile's rows (contiguous) while this one computes */
            const int es = dt == LB_DTYPE_F32 ? 4 : 2;
            const uint8_t *p = pf + (size_t)k * 8 * es;
#pragma GCC unroll 8
            for (int o = 0; o < 8 * 16 * es; o += 64) _mm_prefetch((const char *)p + o, PF_HINT);
        }
        __m512 xv0 = _mm512_loadu_ps(x + k), xv1 = z, xv2 = z;
        if (TB > 1) xv1 = _mm512_loadu_ps(x1 + k);
        if (TB > 2) xv2 = _mm512_loadu_ps(x2 + k);
        ROWS(LD);
    }
    if (k < n) {
        __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        __m512 xv0 = _mm512_maskz_loadu_ps(m, x + k), xv1 = z, xv2 = z;
        if (TB > 1) xv1 = _mm512_maskz_loadu_ps(m, x1 + k);
        if (TB > 2) xv2 = _mm512_maskz_loadu_ps(m, x2 + k);
        ROWS(LDM);
    }
#undef ROW
#undef ROWS
#undef LD
#undef LDM
    _mm256_storeu_ps(y, reduce8(a00, a10, a20, a30, a40, a50, a60, a70));
    if (TB > 1) _mm256_storeu_ps(y + ys, reduce8(a01, a11, a21, a31, a41, a51, a61, a71));
    if (TB > 2) _mm256_storeu_ps(y + 2 * ys, reduce8(a02, a12, a22, a32, a42, a52, a62, a72));
}

/* 4 rows (row stride rb bytes) x TB tokens (1..6, a compile-time constant
 * after inlining): 4 weight vectors and TB activation vectors per block of 16
 * columns feed 4 * TB FMAs. For wide inputs an 8-row tile's weights (8 x
 * 2048 x 4 bytes = 64 KB) do not fit a 48 KB L1 and stream from L2 for every
 * token triple; 4 rows (32 KB) stay in L1 across all tokens. Each sum is
 * still one accumulator over the full column range, reduced by reduce8 (two
 * tokens' 4 rows at once; the additions per accumulator are hsum16's). */
INLINE void tile4(const uint8_t *w0, size_t rb, const float *x, int64_t xs, const int TB, int64_t n, lb_dtype dt,
                  float *y, int64_t ys)
{
    __m512 z = _mm512_setzero_ps();
    __m512 a00 = z, a10 = z, a20 = z, a30 = z, a01 = z, a11 = z, a21 = z, a31 = z;
    __m512 a02 = z, a12 = z, a22 = z, a32 = z, a03 = z, a13 = z, a23 = z, a33 = z;
    __m512 a04 = z, a14 = z, a24 = z, a34 = z, a05 = z, a15 = z, a25 = z, a35 = z;
    const uint8_t *w1 = w0 + rb, *w2 = w1 + rb, *w3 = w2 + rb;
    int64_t nf = n & ~(int64_t)15, k = 0;
#define TOK(t, XV)                                                                \
    do {                                                                          \
        __m512 xv = XV;                                                           \
        a0##t = _mm512_fmadd_ps(wv0, xv, a0##t);                                  \
        a1##t = _mm512_fmadd_ps(wv1, xv, a1##t);                                  \
        a2##t = _mm512_fmadd_ps(wv2, xv, a2##t);                                  \
        a3##t = _mm512_fmadd_ps(wv3, xv, a3##t);                                  \
    } while (0)
#define TOKS(XL)                                                                  \
    TOK(0, XL(0));                                                                \
    if (TB > 1) TOK(1, XL(1));                                                    \
    if (TB > 2) TOK(2, XL(2));                                                    \
    if (TB > 3) TOK(3, XL(3));                                                    \
    if (TB > 4) TOK(4, XL(4));                                                    \
    if (TB > 5) TOK(5, XL(5))
#define XL(t) _mm512_loadu_ps(x + (t) * xs + k)
#define XLM(t) _mm512_maskz_loadu_ps(m, x + (t) * xs + k)
    for (; k < nf; k += 16) {
        __m512 wv0 = load_w(w0, k, dt), wv1 = load_w(w1, k, dt), wv2 = load_w(w2, k, dt), wv3 = load_w(w3, k, dt);
        TOKS(XL);
    }
    if (k < n) {
        __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        __m512 wv0 = load_w_mask(w0, k, m, dt), wv1 = load_w_mask(w1, k, m, dt);
        __m512 wv2 = load_w_mask(w2, k, m, dt), wv3 = load_w_mask(w3, k, m, dt);
        TOKS(XLM);
    }
#undef TOK
#undef TOKS
#undef XL
#undef XLM
#define OUT2(t, u)                                                                \
    do {                                                                          \
        __m256 s = reduce8(a0##t, a1##t, a2##t, a3##t, a0##u, a1##u, a2##u, a3##u); \
        _mm_storeu_ps(y + (t) * ys, _mm256_castps256_ps128(s));                   \
        if (TB > (u)) _mm_storeu_ps(y + (u) * ys, _mm256_extractf128_ps(s, 1));   \
    } while (0)
    OUT2(0, 1);
    if (TB > 2) OUT2(2, 3);
    if (TB > 4) OUT2(4, 5);
#undef OUT2
}

/* Inputs at least this wide take the 4-row tile in prefill (8 rows x cols x
 * 4 bytes no longer fit L1); tests lower it to reach the tile at every size. */
int lb__avx512_wide_cols = 1280;

/* All tokens against 4 rows at w. */
INLINE void rows4_tokens(const uint8_t *w, size_t rb, const float *x, int64_t nt, int64_t xs, int64_t n, lb_dtype dt,
                         float *y, int64_t ys)
{
    int64_t t = 0;
    for (; t + 6 <= nt; t += 6) tile4(w, rb, x + t * xs, xs, 6, n, dt, y + t * ys, ys);
    switch (nt - t) {
    case 5: tile4(w, rb, x + t * xs, xs, 5, n, dt, y + t * ys, ys); break;
    case 4: tile4(w, rb, x + t * xs, xs, 4, n, dt, y + t * ys, ys); break;
    case 3: tile4(w, rb, x + t * xs, xs, 3, n, dt, y + t * ys, ys); break;
    case 2: tile4(w, rb, x + t * xs, xs, 2, n, dt, y + t * ys, ys); break;
    case 1: tile4(w, rb, x + t * xs, xs, 1, n, dt, y + t * ys, ys); break;
    default: break;
    }
}

/* Prefill with F16/BF16 weights: each tile of 8 rows is converted once into
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
        if (k < n) {
            __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
            _mm512_mask_storeu_ps(out + r * n + k, m, load_w_mask(row, k, m, dt));
        }
    }
}


/* All tokens against 8 rows at w (row stride rb, dtype dt). */
INLINE void rows8_tokens(const uint8_t *w, size_t rb, const float *x, int64_t nt, int64_t xs, int64_t n, lb_dtype dt,
                         float *y, int64_t ys)
{
    int64_t t = 0;
    for (; t + 3 <= nt; t += 3) tile8(w, rb, x + t * xs, xs, 3, n, dt, y + t * ys, ys, NULL);
    if (nt - t == 2) tile8(w, rb, x + t * xs, xs, 2, n, dt, y + t * ys, ys, NULL);
    else if (nt - t == 1) tile8(w, rb, x + t * xs, xs, 1, n, dt, y + t * ys, ys, NULL);
}

INLINE void rows_dt(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                    float *y, int64_t ys, lb_dtype dt)
{
    size_t rb = (size_t)w->cols * lb_dtype_size(dt);
    const uint8_t *base = w->data;
    int64_t n = w->cols, r = r0;
    if (nt == 1) {
        for (; r + 8 <= r1; r += 8)
            tile8(base + (size_t)r * rb, rb, x, xs, 1, n, dt, y + r, ys,
                  dt == LB_DTYPE_F32 ? NULL : base + (size_t)(r + PF_TILES * 8) * rb);
        for (; r < r1; r++) tile(base + (size_t)r * rb, rb, 1, x, xs, 1, n, dt, y + r, ys);
        return;
    }
    bool conv = dt != LB_DTYPE_F32 && nt >= 3 && 8 * n <= SCRATCH_FLOATS;
    /* F32 only: on BF16 weights (through the F32 scratch) the 4-row tile
     * measured ~3 % slower than 8 rows, on F32 0-4 % faster. */
    if (dt == LB_DTYPE_F32 && n >= lb__avx512_wide_cols && nt >= 2)
        for (; r + 4 <= r1; r += 4) rows4_tokens(base + (size_t)r * rb, rb, x, nt, xs, n, dt, y + r, ys);
    for (; r + 8 <= r1; r += 8) {
        const uint8_t *wt = base + (size_t)r * rb;
        if (conv) {
            convert_rows(wt, rb, 8, n, dt, scratch);
            rows8_tokens((const uint8_t *)scratch, (size_t)n * 4, x, nt, xs, n, LB_DTYPE_F32, y + r, ys);
        } else rows8_tokens(wt, rb, x, nt, xs, n, dt, y + r, ys);
    }
    for (; r < r1; r++) {
        int64_t t = 0;
        for (; t + 4 <= nt; t += 4) tile(base + (size_t)r * rb, rb, 1, x + t * xs, xs, 4, n, dt, y + t * ys + r, ys);
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

void lb__matmul_rows_avx512(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
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

/* 16 positions at a time: 16 accumulators, each the canonical lanes of one
 * dot, reduced together by reduce16. */
void lb__dots_avx512(const float *q, const float *k, int64_t ks, int64_t n, int64_t np, float *out)
{
    int64_t p = 0, nf = n & ~(int64_t)15;
    __mmask16 m = (__mmask16)((1u << (n - nf)) - 1);
    for (; p + 16 <= np; p += 16) {
        __m512 acc[16];
        const float *kp = k + p * ks;
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++) acc[j] = _mm512_setzero_ps();
        int64_t c = 0;
        for (; c < nf; c += 16) {
            __m512 qv = _mm512_loadu_ps(q + c);
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++) acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(kp + j * ks + c), qv, acc[j]);
        }
        if (c < n) {
            __m512 qv = _mm512_maskz_loadu_ps(m, q + c);
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++)
                acc[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, kp + j * ks + c), qv, acc[j]);
        }
        _mm512_storeu_ps(out + p, reduce16(acc));
    }
    for (; p < np; p++) tile((const uint8_t *)q, 0, 1, k + p * ks, 0, 1, n, LB_DTYPE_F32, out + p, 0);
}

/* o stays in registers over all positions, 64 columns at a time. */
void lb__wsum_avx512(const float *w, const float *v, int64_t vs, int64_t np, int64_t n, float *o)
{
    int64_t i = 0;
    for (; i < n; i += 64) {
        __m512 o0 = _mm512_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        int64_t left = n - i;
        __mmask16 m0 = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
        __mmask16 m1 = left >= 32 ? 0xffff : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
        __mmask16 m2 = left >= 48 ? 0xffff : left <= 32 ? 0 : (__mmask16)((1u << (left - 32)) - 1);
        __mmask16 m3 = left >= 64 ? 0xffff : left <= 48 ? 0 : (__mmask16)((1u << (left - 48)) - 1);
        for (int64_t p = 0; p < np; p++) {
            const float *vp = v + p * vs + i;
            __m512 a = _mm512_set1_ps(w[p]);
            o0 = _mm512_add_ps(o0, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(m0, vp)));
            o1 = _mm512_add_ps(o1, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(m1, vp + 16)));
            o2 = _mm512_add_ps(o2, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(m2, vp + 32)));
            o3 = _mm512_add_ps(o3, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(m3, vp + 48)));
        }
        _mm512_mask_storeu_ps(o + i, m0, o0);
        _mm512_mask_storeu_ps(o + i + 16, m1, o1);
        _mm512_mask_storeu_ps(o + i + 32, m2, o2);
        _mm512_mask_storeu_ps(o + i + 48, m3, o3);
    }
}
