/* sparse_avx2.c: AVX2 kernels of bitmask rows.
 *
 * Gather: per 8 inputs, one permute moves the kept ones to the front
 * (positions from a 256-entry table indexed by the mask byte) and one store
 * appends them to xk; the store of a full chunk ends before the chunk's own
 * columns do, so nothing is written past xk[cols]. The tail is the
 * reference loop.
 *
 * Fused dot of uniform rows (every mask byte holds p set bits): kept value
 * j belongs to canonical lane j % 16, held in two 8-lane accumulators. The
 * 8 kept inputs of one accumulator come from 8 / p mask bytes: each byte's
 * chunk of x is permuted with a table whose lanes repeat the byte's
 * positions with period p, so the chunk lands in its lanes [i p, i p + p)
 * and immediate blends join the chunks. The tail block is zero-padded
 * (fma(0, 0, s) as in the reference), and the lanes are reduced by the
 * canonical tree. */
#include "kernels/sparse.h"
#include <immintrin.h>


/* Lane i of entry b: the position of bit number (i mod popcount(b)) of b
 * (all 0 for b = 0). */
static const int32_t cyclic[257][8] __attribute__((aligned(32))) = {   /* entry 256: the padding of an offset load */
    {0,0,0,0,0,0,0,0}, {0,0,0,0,0,0,0,0}, {1,1,1,1,1,1,1,1}, {0,1,0,1,0,1,0,1}, {2,2,2,2,2,2,2,2}, {0,2,0,2,0,2,0,2},
    {1,2,1,2,1,2,1,2}, {0,1,2,0,1,2,0,1}, {3,3,3,3,3,3,3,3}, {0,3,0,3,0,3,0,3}, {1,3,1,3,1,3,1,3}, {0,1,3,0,1,3,0,1},
    {2,3,2,3,2,3,2,3}, {0,2,3,0,2,3,0,2}, {1,2,3,1,2,3,1,2}, {0,1,2,3,0,1,2,3}, {4,4,4,4,4,4,4,4}, {0,4,0,4,0,4,0,4},
    {1,4,1,4,1,4,1,4}, {0,1,4,0,1,4,0,1}, {2,4,2,4,2,4,2,4}, {0,2,4,0,2,4,0,2}, {1,2,4,1,2,4,1,2}, {0,1,2,4,0,1,2,4},
    {3,4,3,4,3,4,3,4}, {0,3,4,0,3,4,0,3}, {1,3,4,1,3,4,1,3}, {0,1,3,4,0,1,3,4}, {2,3,4,2,3,4,2,3}, {0,2,3,4,0,2,3,4},
    {1,2,3,4,1,2,3,4}, {0,1,2,3,4,0,1,2}, {5,5,5,5,5,5,5,5}, {0,5,0,5,0,5,0,5}, {1,5,1,5,1,5,1,5}, {0,1,5,0,1,5,0,1},
    {2,5,2,5,2,5,2,5}, {0,2,5,0,2,5,0,2}, {1,2,5,1,2,5,1,2}, {0,1,2,5,0,1,2,5}, {3,5,3,5,3,5,3,5}, {0,3,5,0,3,5,0,3},
    {1,3,5,1,3,5,1,3}, {0,1,3,5,0,1,3,5}, {2,3,5,2,3,5,2,3}, {0,2,3,5,0,2,3,5}, {1,2,3,5,1,2,3,5}, {0,1,2,3,5,0,1,2},
    {4,5,4,5,4,5,4,5}, {0,4,5,0,4,5,0,4}, {1,4,5,1,4,5,1,4}, {0,1,4,5,0,1,4,5}, {2,4,5,2,4,5,2,4}, {0,2,4,5,0,2,4,5},
    {1,2,4,5,1,2,4,5}, {0,1,2,4,5,0,1,2}, {3,4,5,3,4,5,3,4}, {0,3,4,5,0,3,4,5}, {1,3,4,5,1,3,4,5}, {0,1,3,4,5,0,1,3},
    {2,3,4,5,2,3,4,5}, {0,2,3,4,5,0,2,3}, {1,2,3,4,5,1,2,3}, {0,1,2,3,4,5,0,1}, {6,6,6,6,6,6,6,6}, {0,6,0,6,0,6,0,6},
    {1,6,1,6,1,6,1,6}, {0,1,6,0,1,6,0,1}, {2,6,2,6,2,6,2,6}, {0,2,6,0,2,6,0,2}, {1,2,6,1,2,6,1,2}, {0,1,2,6,0,1,2,6},
    {3,6,3,6,3,6,3,6}, {0,3,6,0,3,6,0,3}, {1,3,6,1,3,6,1,3}, {0,1,3,6,0,1,3,6}, {2,3,6,2,3,6,2,3}, {0,2,3,6,0,2,3,6},
    {1,2,3,6,1,2,3,6}, {0,1,2,3,6,0,1,2}, {4,6,4,6,4,6,4,6}, {0,4,6,0,4,6,0,4}, {1,4,6,1,4,6,1,4}, {0,1,4,6,0,1,4,6},
    {2,4,6,2,4,6,2,4}, {0,2,4,6,0,2,4,6}, {1,2,4,6,1,2,4,6}, {0,1,2,4,6,0,1,2}, {3,4,6,3,4,6,3,4}, {0,3,4,6,0,3,4,6},
    {1,3,4,6,1,3,4,6}, {0,1,3,4,6,0,1,3}, {2,3,4,6,2,3,4,6}, {0,2,3,4,6,0,2,3}, {1,2,3,4,6,1,2,3}, {0,1,2,3,4,6,0,1},
    {5,6,5,6,5,6,5,6}, {0,5,6,0,5,6,0,5}, {1,5,6,1,5,6,1,5}, {0,1,5,6,0,1,5,6}, {2,5,6,2,5,6,2,5}, {0,2,5,6,0,2,5,6},
    {1,2,5,6,1,2,5,6}, {0,1,2,5,6,0,1,2}, {3,5,6,3,5,6,3,5}, {0,3,5,6,0,3,5,6}, {1,3,5,6,1,3,5,6}, {0,1,3,5,6,0,1,3},
    {2,3,5,6,2,3,5,6}, {0,2,3,5,6,0,2,3}, {1,2,3,5,6,1,2,3}, {0,1,2,3,5,6,0,1}, {4,5,6,4,5,6,4,5}, {0,4,5,6,0,4,5,6},
    {1,4,5,6,1,4,5,6}, {0,1,4,5,6,0,1,4}, {2,4,5,6,2,4,5,6}, {0,2,4,5,6,0,2,4}, {1,2,4,5,6,1,2,4}, {0,1,2,4,5,6,0,1},
    {3,4,5,6,3,4,5,6}, {0,3,4,5,6,0,3,4}, {1,3,4,5,6,1,3,4}, {0,1,3,4,5,6,0,1}, {2,3,4,5,6,2,3,4}, {0,2,3,4,5,6,0,2},
    {1,2,3,4,5,6,1,2}, {0,1,2,3,4,5,6,0}, {7,7,7,7,7,7,7,7}, {0,7,0,7,0,7,0,7}, {1,7,1,7,1,7,1,7}, {0,1,7,0,1,7,0,1},
    {2,7,2,7,2,7,2,7}, {0,2,7,0,2,7,0,2}, {1,2,7,1,2,7,1,2}, {0,1,2,7,0,1,2,7}, {3,7,3,7,3,7,3,7}, {0,3,7,0,3,7,0,3},
    {1,3,7,1,3,7,1,3}, {0,1,3,7,0,1,3,7}, {2,3,7,2,3,7,2,3}, {0,2,3,7,0,2,3,7}, {1,2,3,7,1,2,3,7}, {0,1,2,3,7,0,1,2},
    {4,7,4,7,4,7,4,7}, {0,4,7,0,4,7,0,4}, {1,4,7,1,4,7,1,4}, {0,1,4,7,0,1,4,7}, {2,4,7,2,4,7,2,4}, {0,2,4,7,0,2,4,7},
    {1,2,4,7,1,2,4,7}, {0,1,2,4,7,0,1,2}, {3,4,7,3,4,7,3,4}, {0,3,4,7,0,3,4,7}, {1,3,4,7,1,3,4,7}, {0,1,3,4,7,0,1,3},
    {2,3,4,7,2,3,4,7}, {0,2,3,4,7,0,2,3}, {1,2,3,4,7,1,2,3}, {0,1,2,3,4,7,0,1}, {5,7,5,7,5,7,5,7}, {0,5,7,0,5,7,0,5},
    {1,5,7,1,5,7,1,5}, {0,1,5,7,0,1,5,7}, {2,5,7,2,5,7,2,5}, {0,2,5,7,0,2,5,7}, {1,2,5,7,1,2,5,7}, {0,1,2,5,7,0,1,2},
    {3,5,7,3,5,7,3,5}, {0,3,5,7,0,3,5,7}, {1,3,5,7,1,3,5,7}, {0,1,3,5,7,0,1,3}, {2,3,5,7,2,3,5,7}, {0,2,3,5,7,0,2,3},
    {1,2,3,5,7,1,2,3}, {0,1,2,3,5,7,0,1}, {4,5,7,4,5,7,4,5}, {0,4,5,7,0,4,5,7}, {1,4,5,7,1,4,5,7}, {0,1,4,5,7,0,1,4},
    {2,4,5,7,2,4,5,7}, {0,2,4,5,7,0,2,4}, {1,2,4,5,7,1,2,4}, {0,1,2,4,5,7,0,1}, {3,4,5,7,3,4,5,7}, {0,3,4,5,7,0,3,4},
    {1,3,4,5,7,1,3,4}, {0,1,3,4,5,7,0,1}, {2,3,4,5,7,2,3,4}, {0,2,3,4,5,7,0,2}, {1,2,3,4,5,7,1,2}, {0,1,2,3,4,5,7,0},
    {6,7,6,7,6,7,6,7}, {0,6,7,0,6,7,0,6}, {1,6,7,1,6,7,1,6}, {0,1,6,7,0,1,6,7}, {2,6,7,2,6,7,2,6}, {0,2,6,7,0,2,6,7},
    {1,2,6,7,1,2,6,7}, {0,1,2,6,7,0,1,2}, {3,6,7,3,6,7,3,6}, {0,3,6,7,0,3,6,7}, {1,3,6,7,1,3,6,7}, {0,1,3,6,7,0,1,3},
    {2,3,6,7,2,3,6,7}, {0,2,3,6,7,0,2,3}, {1,2,3,6,7,1,2,3}, {0,1,2,3,6,7,0,1}, {4,6,7,4,6,7,4,6}, {0,4,6,7,0,4,6,7},
    {1,4,6,7,1,4,6,7}, {0,1,4,6,7,0,1,4}, {2,4,6,7,2,4,6,7}, {0,2,4,6,7,0,2,4}, {1,2,4,6,7,1,2,4}, {0,1,2,4,6,7,0,1},
    {3,4,6,7,3,4,6,7}, {0,3,4,6,7,0,3,4}, {1,3,4,6,7,1,3,4}, {0,1,3,4,6,7,0,1}, {2,3,4,6,7,2,3,4}, {0,2,3,4,6,7,0,2},
    {1,2,3,4,6,7,1,2}, {0,1,2,3,4,6,7,0}, {5,6,7,5,6,7,5,6}, {0,5,6,7,0,5,6,7}, {1,5,6,7,1,5,6,7}, {0,1,5,6,7,0,1,5},
    {2,5,6,7,2,5,6,7}, {0,2,5,6,7,0,2,5}, {1,2,5,6,7,1,2,5}, {0,1,2,5,6,7,0,1}, {3,5,6,7,3,5,6,7}, {0,3,5,6,7,0,3,5},
    {1,3,5,6,7,1,3,5}, {0,1,3,5,6,7,0,1}, {2,3,5,6,7,2,3,5}, {0,2,3,5,6,7,0,2}, {1,2,3,5,6,7,1,2}, {0,1,2,3,5,6,7,0},
    {4,5,6,7,4,5,6,7}, {0,4,5,6,7,0,4,5}, {1,4,5,6,7,1,4,5}, {0,1,4,5,6,7,0,1}, {2,4,5,6,7,2,4,5}, {0,2,4,5,6,7,0,2},
    {1,2,4,5,6,7,1,2}, {0,1,2,4,5,6,7,0}, {3,4,5,6,7,3,4,5}, {0,3,4,5,6,7,0,3}, {1,3,4,5,6,7,1,3}, {0,1,3,4,5,6,7,0},
    {2,3,4,5,6,7,2,3}, {0,2,3,4,5,6,7,0}, {1,2,3,4,5,6,7,1}, {0,1,2,3,4,5,6,7},
};

#define INLINE static inline __attribute__((always_inline))

INLINE __m256 chunk(const uint8_t *m, const float *x, int i)
{
    return _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + 8 * i), _mm256_load_si256((const __m256i *)cyclic[m[i]]));
}

/* The 8 kept inputs of 8 / P mask bytes m (x at their first column). */
INLINE __m256 gather8(const uint8_t *m, const float *x, int P)
{
    __m256 r = chunk(m, x, 0);
    if (P == 4) return _mm256_blend_ps(r, chunk(m, x, 1), 0xf0);
    if (P == 2) {
        r = _mm256_blend_ps(r, chunk(m, x, 1), 0x0c);
        r = _mm256_blend_ps(r, chunk(m, x, 2), 0x30);
        return _mm256_blend_ps(r, chunk(m, x, 3), 0xc0);
    }
    if (P == 1) {
        r = _mm256_blend_ps(r, chunk(m, x, 1), 0x02);
        r = _mm256_blend_ps(r, chunk(m, x, 2), 0x04);
        r = _mm256_blend_ps(r, chunk(m, x, 3), 0x08);
        r = _mm256_blend_ps(r, chunk(m, x, 4), 0x10);
        r = _mm256_blend_ps(r, chunk(m, x, 5), 0x20);
        r = _mm256_blend_ps(r, chunk(m, x, 6), 0x40);
        return _mm256_blend_ps(r, chunk(m, x, 7), 0x80);
    }
    return r;
}

INLINE __m256 load_v8(const void *v, int64_t j, lb_dtype dt)
{
    if (dt == LB_DTYPE_F32) return _mm256_loadu_ps((const float *)v + j);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)v + j));
    if (dt == LB_DTYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static float value_f32(const void *v, int64_t j, lb_dtype dt)
{
    if (dt == LB_DTYPE_F32) return ((const float *)v)[j];
    uint16_t h = ((const uint16_t *)v)[j];
    return dt == LB_DTYPE_F16 ? lb_f16_to_f32(h) : lb_bf16_to_f32(h);
}

/* The kept inputs of lanes 0-3 from the 4 / P mask bytes at m[a] and of
 * lanes 4-7 from those at m[b] (x at the first column of m[0]; P | 4). */
INLINE __m256 gather44(const uint8_t *m, const float *x, int a, int b, int P)
{
    if (P == 4) return _mm256_blend_ps(chunk(m, x, a), chunk(m, x, b), 0xf0);
    if (P == 2) {
        __m256 r = _mm256_blend_ps(chunk(m, x, a), chunk(m, x, a + 1), 0x0c);
        r = _mm256_blend_ps(r, chunk(m, x, b), 0x30);
        return _mm256_blend_ps(r, chunk(m, x, b + 1), 0xc0);
    }
    __m256 r = _mm256_blend_ps(chunk(m, x, a), chunk(m, x, a + 1), 0x02);
    r = _mm256_blend_ps(r, chunk(m, x, a + 2), 0x04);
    r = _mm256_blend_ps(r, chunk(m, x, a + 3), 0x08);
    r = _mm256_blend_ps(r, chunk(m, x, b), 0x10);
    r = _mm256_blend_ps(r, chunk(m, x, b + 1), 0x20);
    r = _mm256_blend_ps(r, chunk(m, x, b + 2), 0x40);
    return _mm256_blend_ps(r, chunk(m, x, b + 3), 0x80);
}

/* The zero-padded tail block (kept values j .. k), as the reference. */
INLINE void udot_tail(const uint8_t *mask, const void *vals, lb_dtype dt, const float *x, int64_t j, int64_t k,
                      __m256 *lo, __m256 *hi)
{
    float xv[16] = {0}, vv[16] = {0};
    int64_t n = 0;
    for (int64_t c = 0; n < k - j; c++)
        if (mask[c >> 3] >> (c & 7) & 1) { xv[n] = x[c]; vv[n] = value_f32(vals, j + n, dt); n++; }
    *lo = _mm256_fmadd_ps(_mm256_loadu_ps(vv), _mm256_loadu_ps(xv), *lo);
    *hi = _mm256_fmadd_ps(_mm256_loadu_ps(vv + 8), _mm256_loadu_ps(xv + 8), *hi);
}

INLINE float hsum16(__m256 lo, __m256 hi)
{
    __m256 a = _mm256_add_ps(lo, hi);
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)));
}

/* Any dtype and P: lanes 0-7 in lo, 8-15 in hi. */
INLINE float udot(const uint8_t *mask, const void *vals, lb_dtype dt, const float *x, int64_t cols, int P)
{
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    int64_t k = cols / 8 * P, kf = k & ~(int64_t)15, j = 0;
    const int bpb = 16 / P;                   /* mask bytes per 16 kept values */
    for (; j < kf; j += 16, mask += bpb, x += 8 * bpb) {
        lo = _mm256_fmadd_ps(load_v8(vals, j, dt), gather8(mask, x, P), lo);
        hi = _mm256_fmadd_ps(load_v8(vals, j + 8, dt), gather8(mask + bpb / 2, x + 4 * bpb, P), hi);
    }
    if (j < k) udot_tail(mask, vals, dt, x, j, k, &lo, &hi);
    return hsum16(lo, hi);
}

/* BF16 values, P | 4: one 32-byte load of 16 values; interleaving them
 * with zeros (vpunpcklwd / vpunpckhwd) is the BF16 -> FP32 conversion, and
 * leaves canonical lanes 0-3 and 8-11 in one register (a), 4-7 and 12-15
 * in the other (b): the inputs are gathered in that order, and the lanes
 * are put back in order (lo = 0-7, hi = 8-15) before the tail and the
 * canonical tree. The same products and sums as udot, per lane. */
INLINE float udot_bf16(const uint8_t *mask, const uint16_t *vals, const float *x, int64_t cols, int P)
{
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    const __m256i zero = _mm256_setzero_si256();
    int64_t k = cols / 8 * P, kf = k & ~(int64_t)15, j = 0;
    const int q = 4 / P, bpb = 16 / P;        /* mask bytes per 4 and per 16 kept values */
    for (; j < kf; j += 16, mask += bpb, x += 8 * bpb) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(vals + j));
        a = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, v)), gather44(mask, x, 0, 2 * q, P), a);
        b = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, v)), gather44(mask, x, q, 3 * q, P), b);
    }
    __m256 lo = _mm256_permute2f128_ps(a, b, 0x20), hi = _mm256_permute2f128_ps(a, b, 0x31);
    if (j < k) udot_tail(mask, vals, LB_DTYPE_BF16, x, j, k, &lo, &hi);
    return hsum16(lo, hi);
}

/* 2:4 nibbles (every mask nibble holds 2 set bits), BF16 values: the inputs
 * move inside 128-bit halves only (vpermilps, half the cost of vpermps
 * here): one x load of 8 inputs keeps the 2 of its low nibble in lanes 0-1
 * and the 2 of its high nibble in lanes 6-7 (the index: the byte's cyclic
 * entry, whose lanes mod 4 repeat p0 p1 q0 q1), the next 8 inputs theirs
 * in lanes 2-3 and 4-5 (the same entry read 2 lanes on), and a blend joins
 * them: kept values 0-7 of a group of 8 sit in lanes 0 1 6 7 | 2 3 4 5,
 * i.e. lane l holds value (0 1 4 5 6 7 2 3)[l]. The values are put in that
 * order by vpshufb from a broadcast of 8 BF16 values (the shuffle writes
 * each into the high half of a zeroed lane: the FP32 conversion). After
 * the loop one vpermps per register puts the canonical lanes back. */
INLINE __m256 x24(const uint8_t *m, const float *x)
{
    __m256 a = _mm256_permutevar_ps(_mm256_loadu_ps(x), _mm256_load_si256((const __m256i *)cyclic[m[0]]));
    __m256 b = _mm256_permutevar_ps(_mm256_loadu_ps(x + 8), _mm256_loadu_si256((const __m256i *)(cyclic[m[1]] + 2)));
    return _mm256_blend_ps(a, b, 0x3c);
}

INLINE __m256 v24(const uint16_t *v, __m256i shuf)
{
    return _mm256_castsi256_ps(_mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)v)), shuf));
}

float lb__sparse_udot24_avx2(const uint8_t *mask, const uint16_t *vals, const float *x, int64_t cols)
{
    const __m256i shuf = _mm256_setr_epi8(-1, -1, 0, 1, -1, -1, 2, 3, -1, -1, 8, 9, -1, -1, 10, 11,
                                          -1, -1, 12, 13, -1, -1, 14, 15, -1, -1, 4, 5, -1, -1, 6, 7);
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    int64_t k = cols / 2, kf = k & ~(int64_t)15, j = 0;
    for (; j < kf; j += 16, mask += 4, x += 32) {
        a = _mm256_fmadd_ps(v24(vals + j, shuf), x24(mask, x), a);
        b = _mm256_fmadd_ps(v24(vals + j + 8, shuf), x24(mask + 2, x + 16), b);
    }
    const __m256i back = _mm256_setr_epi32(0, 1, 6, 7, 2, 3, 4, 5);
    __m256 lo = _mm256_permutevar8x32_ps(a, back), hi = _mm256_permutevar8x32_ps(b, back);
    if (j < k) udot_tail(mask, vals, LB_DTYPE_BF16, x, j, k, &lo, &hi);
    return hsum16(lo, hi);
}

#define UDOT_FN(name, DT, P)                                                                                    \
    static float name(const uint8_t *mask, const void *vals, const float *x, int64_t cols)                   \
    {                                                                                                          \
        return DT == LB_DTYPE_BF16 && P < 8 ? udot_bf16(mask, vals, x, cols, P) : udot(mask, vals, DT, x, cols, P); \
    }
UDOT_FN(u_f32_1, LB_DTYPE_F32, 1) UDOT_FN(u_f32_2, LB_DTYPE_F32, 2) UDOT_FN(u_f32_4, LB_DTYPE_F32, 4) UDOT_FN(u_f32_8, LB_DTYPE_F32, 8)
UDOT_FN(u_f16_1, LB_DTYPE_F16, 1) UDOT_FN(u_f16_2, LB_DTYPE_F16, 2) UDOT_FN(u_f16_4, LB_DTYPE_F16, 4) UDOT_FN(u_f16_8, LB_DTYPE_F16, 8)
UDOT_FN(u_bf16_1, LB_DTYPE_BF16, 1) UDOT_FN(u_bf16_2, LB_DTYPE_BF16, 2) UDOT_FN(u_bf16_4, LB_DTYPE_BF16, 4)
UDOT_FN(u_bf16_8, LB_DTYPE_BF16, 8)

float lb__sparse_udot_avx2(const uint8_t *mask, int p, const void *vals, lb_dtype dt, const float *x, int64_t cols)
{
    static float (*const fns[3][4])(const uint8_t *, const void *, const float *, int64_t) = {
        {u_f32_1, u_f32_2, u_f32_4, u_f32_8}, {u_f16_1, u_f16_2, u_f16_4, u_f16_8}, {u_bf16_1, u_bf16_2, u_bf16_4, u_bf16_8}};
    int d = dt == LB_DTYPE_F32 ? 0 : dt == LB_DTYPE_F16 ? 1 : 2, pi = p == 1 ? 0 : p == 2 ? 1 : p == 4 ? 2 : 3;
    return fns[d][pi](mask, vals, x, cols);
}

/* ---- packed 4-bit rows (prune + quantize) */

/* How a block's 8 codes become weights: INT4 by a shift pair and a convert
 * (sign-extended), UINT4 by a shift and a mask, other 4-bit elements (E2M1,
 * NF4) through the block's 16-weight table. Either way w = (v - z) * d,
 * one rounding, as the reference decodes it. */
typedef enum qkind { Q_SINT, Q_UINT, Q_TAB } qkind;

typedef struct qblk { __m256 d, z, tlo, thi; } qblk;

INLINE float scale_of(const lb_format *f, float ts, const uint8_t *blk, float *z)
{
    if (f->sd == LB__SD_F16) { *z = f->asym ? (float)blk[2] : 0.0f; return _cvtsh_ss(lb__rd16(blk)); }
    return lb__block_d(f, ts, blk, z);
}

INLINE qblk qsetup(const lb_format *f, float ts, const uint8_t *blk, const float *lut, qkind K)
{
    float z, d = scale_of(f, ts, blk, &z);
    qblk q = {.d = _mm256_set1_ps(d), .z = _mm256_set1_ps(z)};
    if (K == Q_TAB) {
        __m256 l = _mm256_loadu_ps(lut), h = _mm256_loadu_ps(lut + 8);
        if (f->asym) { l = _mm256_sub_ps(l, q.z); h = _mm256_sub_ps(h, q.z); }
        q.tlo = _mm256_mul_ps(l, q.d);
        q.thi = _mm256_mul_ps(h, q.d);
    }
    return q;
}

/* The weights of the 8 codes in c (code i in bits 4i .. 4i + 3). */
INLINE __m256 qdec8(uint32_t c, const qblk *q, bool asym, qkind K)
{
    __m256i b = _mm256_set1_epi32((int)c);
    if (K == Q_SINT) {
        __m256i s = _mm256_srai_epi32(_mm256_sllv_epi32(b, _mm256_setr_epi32(28, 24, 20, 16, 12, 8, 4, 0)), 28);
        __m256 v = _mm256_cvtepi32_ps(s);
        if (asym) v = _mm256_sub_ps(v, q->z);
        return _mm256_mul_ps(v, q->d);
    }
    __m256i s = _mm256_srlv_epi32(b, _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
    if (K == Q_UINT) {
        __m256 v = _mm256_cvtepi32_ps(_mm256_and_si256(s, _mm256_set1_epi32(15)));
        if (asym) v = _mm256_sub_ps(v, q->z);
        return _mm256_mul_ps(v, q->d);
    }
    __m256 lo = _mm256_permutevar8x32_ps(q->tlo, s), hi = _mm256_permutevar8x32_ps(q->thi, s);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(s, 28)));
}

/* NR rows at once: kept value j of a row in canonical lane j % 16 (lanes
 * 0-7 in lo, 8-15 in hi), its weight decoded from the packed block, its
 * input gathered by gather8; blocks of B kept values span 8 B / P inputs. */
INLINE void qrows(const lb_format *f, float ts, const uint8_t *mask, size_t mb, const uint8_t *in, size_t rb,
                  const float *x, int64_t cols, const float *lut, float *out, int NR, int P, qkind K)
{
    int64_t B = f->block, nb = cols / 8 * P / B;
    size_t bb = lb__block_bytes(f, B);
    int sb = lb__scale_bytes(f);
    bool asym = f->asym;
    const int bpb = 16 / P;
    __m256 lo[4], hi[4];
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) lo[r] = hi[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = in + (size_t)b * bb, *mk = mask + (size_t)(b * B / P);
        const float *xb = x + b * B / P * 8;
        qblk q[4];
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            q[r] = qsetup(f, ts, blk + (size_t)r * rb, lut, K);
            _mm_prefetch((const char *)(blk + (size_t)(r + NR) * rb), _MM_HINT_T0);
        }
        for (int64_t i = 0; i < B; i += 16, mk += bpb, xb += 8 * bpb) {
#pragma GCC unroll 4
            for (int r = 0; r < NR; r++) {
                uint64_t c;
                memcpy(&c, blk + (size_t)r * rb + (size_t)sb + (size_t)(i / 2), 8);
                const uint8_t *m = mk + (size_t)r * mb;
                lo[r] = _mm256_fmadd_ps(qdec8((uint32_t)c, &q[r], asym, K), gather8(m, xb, P), lo[r]);
                hi[r] = _mm256_fmadd_ps(qdec8((uint32_t)(c >> 32), &q[r], asym, K), gather8(m + bpb / 2, xb + 4 * bpb, P),
                                        hi[r]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        __m256 a = _mm256_add_ps(lo[r], hi[r]);
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
        out[r] = _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
    }
}

#ifndef QROWS_NR
#define QROWS_NR 2   /* rows per pass (4 measured no faster on AVX2: 16 registers) */
#endif
#define QROWS_FN(name, P, K)                                                                                         \
    static void name(const lb_format *f, float ts, const uint8_t *mask, size_t mb, const uint8_t *in, size_t rb,   \
                     int nr, const float *x, int64_t cols, const float *lut, float *out)                           \
    {                                                                                                               \
        for (; nr >= QROWS_NR; nr -= QROWS_NR, mask += QROWS_NR * mb, in += QROWS_NR * rb, out += QROWS_NR)         \
            qrows(f, ts, mask, mb, in, rb, x, cols, lut, out, QROWS_NR, P, K);                                       \
        for (; nr > 0; nr--, mask += mb, in += rb, out++) qrows(f, ts, mask, mb, in, rb, x, cols, lut, out, 1, P, K); \
    }
QROWS_FN(q_sint1, 1, Q_SINT) QROWS_FN(q_sint2, 2, Q_SINT) QROWS_FN(q_sint4, 4, Q_SINT) QROWS_FN(q_sint8, 8, Q_SINT)
QROWS_FN(q_uint1, 1, Q_UINT) QROWS_FN(q_uint2, 2, Q_UINT) QROWS_FN(q_uint4, 4, Q_UINT) QROWS_FN(q_uint8, 8, Q_UINT)
QROWS_FN(q_tab1, 1, Q_TAB) QROWS_FN(q_tab2, 2, Q_TAB) QROWS_FN(q_tab4, 4, Q_TAB) QROWS_FN(q_tab8, 8, Q_TAB)

typedef void (*qrows_fn)(const lb_format *, float, const uint8_t *, size_t, const uint8_t *, size_t, int, const float *,
                         int64_t, const float *, float *);

bool lb__sparse_qrows_avx2(const lb_format *f, int p, float ts, const uint8_t *mask, size_t mb, const uint8_t *in,
                           size_t rb, int nr, const float *x, int64_t cols, float *out)
{
    static const qrows_fn fns[3][4] = {{q_sint1, q_sint2, q_sint4, q_sint8}, {q_uint1, q_uint2, q_uint4, q_uint8},
                                       {q_tab1, q_tab2, q_tab4, q_tab8}};
    if (!lb__sparse_qrows_ok(f, p, cols)) return false;
    int K = f->fam == LB__FAM_NF4 || f->elem == LB_ELEM_E2M1 ? Q_TAB : f->elem == LB_ELEM_INT4 ? Q_SINT : Q_UINT;
    const float *lut = f->fam == LB__FAM_NF4 ? lb__nf4_table : lb__elem_lut(f->elem);
    int pi = p == 1 ? 0 : p == 2 ? 1 : p == 4 ? 2 : 3;
    if (nr > 0) fns[K][pi](f, ts, mask, mb, in, rb, nr, x, cols, lut, out);
    return true;
}

int64_t lb__sparse_gather_avx2(const uint8_t *mask, const float *x, int64_t cols, float *xk)
{
    int64_t k = 0, c = 0;
    for (; c + 8 <= cols; c += 8) {
        unsigned b = mask[c >> 3];
        __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)&lb__sparse_bitpos[b]));
        _mm256_storeu_ps(xk + k, _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + c), idx));
        k += lb__popcount8[b];
    }
    for (; c < cols; c++)
        if (mask[c >> 3] >> (c & 7) & 1) xk[k++] = x[c];
    return k;
}
