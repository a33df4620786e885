/* fwht_avx512.c: AVX-512 Hadamard kernels, bit-identical to fwht_ref.c.
 *
 * Every element goes through the same butterflies as the reference, only in
 * another order: stages h = 1..8 inside one 16-float register, h = 16..128
 * between the registers of a 256-float chunk, larger h in radix-4 passes
 * (two stages per sweep), then the one multiply by the scale. Inside a
 * register the pair (a, b) becomes (b + a, a + (-b)): a swap permute plus
 * the input with the sign bit flipped in the upper half of each pair; IEEE
 * addition is commutative and a - b is a + (-b), so this is exact. */
#include "transforms/hadamard.h"

#ifdef __AVX512F__
#include <immintrin.h>

#define W 16

typedef struct masks { __m512 m1, m2, m4, m8; } masks;

/* Sign bit in lanes whose index has bit `bit` set. */
static __m512 lane_mask(int bit)
{
    float f[W];
    for (int i = 0; i < W; i++) f[i] = (i >> bit) & 1 ? -0.0f : 0.0f;
    return _mm512_loadu_ps(f);
}

static masks make_masks(void) { return (masks){lane_mask(0), lane_mask(1), lane_mask(2), lane_mask(3)}; }

static inline __m512 in_register(__m512 v, const masks *k)
{
    v = _mm512_add_ps(_mm512_permute_ps(v, 0xB1), _mm512_xor_ps(v, k->m1));
    v = _mm512_add_ps(_mm512_permute_ps(v, 0x4E), _mm512_xor_ps(v, k->m2));
    v = _mm512_add_ps(_mm512_shuffle_f32x4(v, v, 0xB1), _mm512_xor_ps(v, k->m4));
    v = _mm512_add_ps(_mm512_shuffle_f32x4(v, v, 0x4E), _mm512_xor_ps(v, k->m8));
    return v;
}

/* All stages of a chunk of R registers (R*16 floats), optionally scaled. */
static inline __attribute__((always_inline)) void chunk(float *x, int R, const masks *k, bool scaled, float scale)
{
    __m512 v[16];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) v[r] = in_register(_mm512_loadu_ps(x + r * W), k);
#pragma GCC unroll 4
    for (int h = 1; h < R; h *= 2)
#pragma GCC unroll 16
        for (int r = 0; r < R; r++)
            if (!(r & h)) {
                __m512 a = v[r], b = v[r + h];
                v[r] = _mm512_add_ps(a, b);
                v[r + h] = _mm512_sub_ps(a, b);
            }
    __m512 s = _mm512_set1_ps(scale);
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) _mm512_storeu_ps(x + r * W, scaled ? _mm512_mul_ps(v[r], s) : v[r]);
}

static inline void bfly(__m512 *a, __m512 *b)
{
    __m512 t = *a;
    *a = _mm512_add_ps(t, *b);
    *b = _mm512_sub_ps(t, *b);
}

/* Stages h0, 2*h0, ... n/2 of a block whose smaller stages are done. */
static void passes(float *x, int64_t n, int64_t h, float scale)
{
    __m512 s = _mm512_set1_ps(scale);
    bool scaled = scale != 1.0f;
    for (; h < n; h *= 4) {
        bool two = 4 * h <= n, last = (two ? 4 * h : 2 * h) == n;
        for (int64_t i = 0; i < n; i += two ? 4 * h : 2 * h)
            for (int64_t j = i; j < i + h; j += W) {
                __m512 a0 = _mm512_loadu_ps(x + j), a1 = _mm512_loadu_ps(x + j + h), a2, a3;
                bfly(&a0, &a1);
                if (two) {
                    a2 = _mm512_loadu_ps(x + j + 2 * h), a3 = _mm512_loadu_ps(x + j + 3 * h);
                    bfly(&a2, &a3);
                    bfly(&a0, &a2);
                    bfly(&a1, &a3);
                    if (last && scaled) a2 = _mm512_mul_ps(a2, s), a3 = _mm512_mul_ps(a3, s);
                    _mm512_storeu_ps(x + j + 2 * h, a2);
                    _mm512_storeu_ps(x + j + 3 * h, a3);
                }
                if (last && scaled) a0 = _mm512_mul_ps(a0, s), a1 = _mm512_mul_ps(a1, s);
                _mm512_storeu_ps(x + j, a0);
                _mm512_storeu_ps(x + j + h, a1);
            }
        if (!two) break;
    }
}

static void avx512_blocks(float *x, int64_t n, int64_t count, float scale)
{
    if (n < W) { lb__fwht_ref.blocks(x, n, count, scale); return; }
    masks k = make_masks();
    bool sc = scale != 1.0f;
    for (int64_t b = 0; b < count; b++, x += n) {
        switch (n) {
        case 16: chunk(x, 1, &k, sc, scale); break;
        case 32: chunk(x, 2, &k, sc, scale); break;
        case 64: chunk(x, 4, &k, sc, scale); break;
        case 128: chunk(x, 8, &k, sc, scale); break;
        case 256: chunk(x, 16, &k, sc, scale); break;
        default:
            for (int64_t c = 0; c < n; c += 256) chunk(x + c, 16, &k, false, 1.0f);
            passes(x, n, 256, scale);
        }
    }
}

static void avx512_lanes(float *x, int64_t n, int64_t stride, int64_t lanes, float scale)
{
    int64_t lv = lanes / W * W;
    if (lv < lanes) lb__fwht_ref.lanes(x + lv, n, stride, lanes - lv, scale);
    int64_t tile = lb__max64(W, (int64_t)(256 * 1024 / 4) / n / W * W);
    __m512 s = _mm512_set1_ps(scale);
    for (int64_t l0 = 0; l0 < lv; l0 += tile) {
        int64_t l1 = lb__min64(lv, l0 + tile);
        for (int64_t h = 1; h < n; h *= 2) {
            bool last = 2 * h == n && scale != 1.0f;
            for (int64_t i = 0; i < n; i += 2 * h)
                for (int64_t j = i; j < i + h; j++) {
                    float *p = x + j * stride, *q = x + (j + h) * stride;
                    for (int64_t l = l0; l < l1; l += W) {
                        __m512 a = _mm512_loadu_ps(p + l), b = _mm512_loadu_ps(q + l);
                        bfly(&a, &b);
                        if (last) a = _mm512_mul_ps(a, s), b = _mm512_mul_ps(b, s);
                        _mm512_storeu_ps(p + l, a);
                        _mm512_storeu_ps(q + l, b);
                    }
                }
        }
    }
}

/* Four outputs at a time share each load; acc + h*v with h = +-1 is exact
 * up to the single rounding, as the reference's acc +- v. */
static void avx512_small(float *x, const float *H, int m, int64_t stride, int64_t lanes, float scale)
{
    int64_t lv = lanes / W * W;
    if (lv < lanes) lb__fwht_ref.small(x + lv, H, m, stride, lanes - lv, scale);
    __m512 out[LB__HAD_MAX_M], s = _mm512_set1_ps(scale);
    bool sc = scale != 1.0f;
    for (int64_t l = 0; l < lv; l += W) {
        for (int a = 0; a < m; a += 4) {
            const float *h0 = H + (int64_t)a * m, *h1 = h0 + m, *h2 = h1 + m, *h3 = h2 + m;
            __m512 v = _mm512_loadu_ps(x + l);
            __m512 c0 = _mm512_mul_ps(_mm512_set1_ps(h0[0]), v), c1 = _mm512_mul_ps(_mm512_set1_ps(h1[0]), v);
            __m512 c2 = _mm512_mul_ps(_mm512_set1_ps(h2[0]), v), c3 = _mm512_mul_ps(_mm512_set1_ps(h3[0]), v);
            for (int c = 1; c < m; c++) {
                v = _mm512_loadu_ps(x + c * stride + l);
                c0 = _mm512_fmadd_ps(_mm512_set1_ps(h0[c]), v, c0);
                c1 = _mm512_fmadd_ps(_mm512_set1_ps(h1[c]), v, c1);
                c2 = _mm512_fmadd_ps(_mm512_set1_ps(h2[c]), v, c2);
                c3 = _mm512_fmadd_ps(_mm512_set1_ps(h3[c]), v, c3);
            }
            out[a] = sc ? _mm512_mul_ps(c0, s) : c0;
            out[a + 1] = sc ? _mm512_mul_ps(c1, s) : c1;
            out[a + 2] = sc ? _mm512_mul_ps(c2, s) : c2;
            out[a + 3] = sc ? _mm512_mul_ps(c3, s) : c3;
        }
        for (int a = 0; a < m; a++) _mm512_storeu_ps(x + a * stride + l, out[a]);
    }
}

const lb__fwht_kernels lb__fwht_avx512 = {avx512_blocks, avx512_lanes, avx512_small};
#else
const lb__fwht_kernels lb__fwht_avx512 = {0};
#endif
