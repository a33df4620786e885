/* qdot_avx512.c: AVX-512 fused dequantize-and-dot of up to 8 packed rows at
 * once for the formats the decode path uses most: 4-bit codes (MXFP4,
 * NVFP4, NVINT4, INT4 groups sym/asym, NF4) and 8-bit codes (INT8 groups
 * sym/asym, MXINT8, MXFP8). Bit-identical with the reference lb_format_dot:
 * every element is decoded to the same float w = (v - z) * d (v from the
 * element's value table, z the zero point, d the block's scale as
 * formats/blocks.c computes it, one rounding), and canonical lane j takes
 * elements j, j+16, ... with an FMA, reduced by lb__reduce16.
 *
 * Work per block and row is kept small:
 *   - scales: the headers of 16 consecutive blocks of a row are read with
 *     one gather and decoded in one vector (F16 by vcvtph2ps, E8M0 by an
 *     exponent shift, UE4M3 through the per-call table nvd);
 *   - 4-bit codes: the block's 16 possible weights (v_c - z) * d are
 *     computed once per block (a 16-float table, the same operations as the
 *     reference per element), then each 16 codes are one qword broadcast,
 *     one variable shift and one vpermps, straight to the dequantized
 *     weights. The shift puts code m (m < 8) in lane 2m and code 8 + m in
 *     lane 2m + 1, so x comes in that order too (lb__qdot_perm_x): lane 2m
 *     is canonical lane m, lane 2m + 1 canonical lane 8 + m, unpermuted
 *     before the reduction, which changes nothing in the arithmetic.
 * Blocks are multiples of 16 elements. */
#include "kernels/kernels.h"
#include <immintrin.h>
#include <pthread.h>

static float tab_e2m1[16], tab_int4[16], tab_uint4[16], tab_nf4[16], tab_e4m3[256], tab_e5m2[256];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void)
{
    for (int c = 0; c < 16; c++) {
        tab_e2m1[c] = lb__elem_lut(LB_ELEM_E2M1)[c];
        tab_int4[c] = lb__elem_lut(LB_ELEM_INT4)[c];
        tab_uint4[c] = lb__elem_lut(LB_ELEM_UINT4)[c];
    }
    for (int c = 0; c < 256; c++) {
        tab_e4m3[c] = lb__elem_lut(LB_ELEM_E4M3)[c];
        tab_e5m2[c] = lb__elem_lut(LB_ELEM_E5M2)[c];
    }
    /* NF4 values: one block with scale 1 and codes 0..15, decoded by the reference. */
    const lb_format *nf4 = lb_format_find("nf4");
    uint8_t blk[34] = {0x00, 0x3c};
    for (int i = 0; i < 32; i++) blk[2 + i] = (uint8_t)((2 * i) & 15) | (uint8_t)(((2 * i + 1) & 15) << 4);
    float y[64];
    if (nf4 && lb_format_row_bytes(nf4, 64) == sizeof blk && !lb_format_dequantize(nf4, blk, 1.0f, 1, 64, y))
        for (int c = 0; c < 16; c++) tab_nf4[c] = y[c];
}

#ifndef PF_GROUPS
#define PF_GROUPS 3
#endif

typedef enum kind { K_TAB4, K_INT8, K_UINT8, K_MXINT8, K_TAB8 } kind;

/* d and z of blocks b0 .. b0+cnt-1 (cnt <= 16) of one row, as lb__block_d
 * computes them; MXINT8 folds its exact element factor 2^-6 into d
 * (v * 2^-6 * 2^e rounds once, like v * 2^(e-6), for every E8M0 e). */
static inline void scales16(const lb_format *f, const uint8_t *row, __m512i offs, int cnt,
                            const float *nvd, kind k, float *d, float *z)
{
    __mmask16 m = (__mmask16)(cnt >= 16 ? 0xffff : (1u << cnt) - 1);
    __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, offs, row, 1);
    __m512 dv;
    switch (f->sd) {
    case LB__SD_E8M0: {
        __m512i e = _mm512_and_si512(g, _mm512_set1_epi32(0xff));
        dv = _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
        dv = _mm512_mask_mov_ps(dv, _mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512()), _mm512_set1_ps(lb__pow2f(-127)));
        dv = _mm512_mask_mov_ps(dv, _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(0xff)), _mm512_set1_ps(NAN));
        break;
    }
    case LB__SD_UE4M3:
        dv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, _mm512_and_si512(g, _mm512_set1_epi32(0x7f)), nvd, 4);
        break;
    case LB__SD_F16: dv = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g)); break;
    default: dv = _mm512_castsi512_ps(_mm512_slli_epi32(g, 16)); break;
    }
    if (k == K_MXINT8) dv = _mm512_maskz_mul_ps(m, dv, _mm512_set1_ps(0x1p-6f));   /* unused lanes: no subnormal */
    _mm512_storeu_ps(d, dv);
    if (f->asym)
        _mm512_storeu_ps(z, _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(g, 16), _mm512_set1_epi32(0xff))));
}

/* Reduce one accumulator; perm: lanes in the lb__qdot_perm_x order. */
static inline float finish(__m512 acc, bool perm)
{
    float a[16], c[16];
    _mm512_storeu_ps(a, acc);
    if (!perm) return lb__reduce16(a);
    for (int m = 0; m < 8; m++) { c[m] = a[2 * m]; c[8 + m] = a[2 * m + 1]; }
    return lb__reduce16(c);
}

/* 16 elements (before the zero point and scale) of an 8-bit block at i. */
static inline __m512 values8(const uint8_t *codes, int64_t i, kind k, const float *tab)
{
    __m128i c = _mm_loadu_si128((const __m128i *)(codes + i));
    if (k == K_UINT8) return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c));
    if (k == K_TAB8) return _mm512_i32gather_ps(_mm512_cvtepu8_epi32(c), tab, 4);
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c));
}

/* NR rows at once (independent FMA chains; x loads shared); each row's
 * own chain is exactly the single-row canonical order. With a zero point of
 * 0, v - 0 == v bit for bit, so symmetric formats skip the subtraction. */
static inline __attribute__((always_inline)) void rows_impl(const lb_format *f, const uint8_t *in, size_t rb,
                                                            const float *x, int64_t cols, const float *tab,
                                                            const float *nvd, float *out, int NR, kind k)
{
    enum { CH = 16 };
    int64_t B = f->block, nb = cols / B;
    size_t bb = lb__block_bytes(f, B);
    int sb = lb__scale_bytes(f);
    bool asym = f->asym;
    float d[8][CH], z[8][CH];
    __m512 t4 = k == K_TAB4 ? _mm512_loadu_ps(tab) : _mm512_setzero_ps(), acc[8];
    const __m512i sh = _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
    const __m512i offs = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32((int)bb));
#pragma GCC unroll 8
    for (int r = 0; r < NR; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t c0 = 0; c0 < nb; c0 += CH) {
        int cnt = (int)lb__min64(CH, nb - c0);
        const uint8_t *base = in + (size_t)c0 * bb;
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) scales16(f, base + (size_t)r * rb, offs, cnt, nvd, k, d[r], z[r]);
        for (int j = 0; j < cnt; j++) {
            const uint8_t *blk = base + (size_t)j * bb + sb;
            const float *xb = x + (c0 + j) * B;
            /* The NR rows are one contiguous stream: fetch the group PF_GROUPS
             * ahead, a block's share of it per block. */
            for (size_t o = (size_t)(c0 + j) * NR * bb; o < (size_t)(c0 + j + 1) * NR * bb; o += 64)
                _mm_prefetch((const char *)(in + PF_GROUPS * NR * rb + o), _MM_HINT_T0);
            if (k == K_TAB4) {
                __m512 T[8];
#pragma GCC unroll 8
                for (int r = 0; r < NR; r++) {
                    __m512 v = asym ? _mm512_sub_ps(t4, _mm512_set1_ps(z[r][j])) : t4;
                    T[r] = _mm512_mul_ps(v, _mm512_set1_ps(d[r][j]));
                }
                for (int64_t i = 0; i < B; i += 16) {
                    __m512 xv = _mm512_loadu_ps(xb + i);
#pragma GCC unroll 8
                    for (int r = 0; r < NR; r++) {
                        int64_t q;
                        memcpy(&q, blk + (size_t)r * rb + i / 2, 8);
                        __m512i c = _mm512_srlv_epi32(_mm512_set1_epi64(q), sh);
                        acc[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(c, T[r]), xv, acc[r]);
                    }
                }
            } else {
                __m512 vd[8], vz[8];
#pragma GCC unroll 8
                for (int r = 0; r < NR; r++) {
                    vd[r] = _mm512_set1_ps(d[r][j]);
                    vz[r] = asym ? _mm512_set1_ps(z[r][j]) : _mm512_setzero_ps();
                }
                for (int64_t i = 0; i < B; i += 16) {
                    __m512 xv = _mm512_loadu_ps(xb + i);
#pragma GCC unroll 8
                    for (int r = 0; r < NR; r++) {
                        __m512 v = values8(blk + (size_t)r * rb, i, k, tab);
                        if (asym) v = _mm512_sub_ps(v, vz[r]);
                        acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(v, vd[r]), xv, acc[r]);
                    }
                }
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < NR; r++) out[r] = finish(acc[r], k == K_TAB4);
}

#define ROWS_FN(name, k)                                                                                            \
    static void name(const lb_format *f, float ts, const uint8_t *in, size_t rb, int nr, const float *x,            \
                     int64_t cols, const float *tab, const float *nvd, float *out)                                 \
    {                                                                                                               \
        (void)ts;                                                                                                   \
        for (; nr >= 8; nr -= 8, in += 8 * rb, out += 8) rows_impl(f, in, rb, x, cols, tab, nvd, out, 8, k);      \
        if (nr >= 4) { rows_impl(f, in, rb, x, cols, tab, nvd, out, 4, k); nr -= 4; in += 4 * rb; out += 4; }    \
        if (nr >= 2) { rows_impl(f, in, rb, x, cols, tab, nvd, out, 2, k); nr -= 2; in += 2 * rb; out += 2; }    \
        if (nr >= 1) rows_impl(f, in, rb, x, cols, tab, nvd, out, 1, k);                                           \
    }
ROWS_FN(rows_tab4, K_TAB4)
ROWS_FN(rows_int8, K_INT8)
ROWS_FN(rows_uint8, K_UINT8)
ROWS_FN(rows_mxint8, K_MXINT8)
ROWS_FN(rows_tab8, K_TAB8)

bool lb__qdot_avx512(const lb_format *f, lb__qkern *k)
{
    pthread_once(&tab_once, tab_init);
    *k = (lb__qkern){0};
    if (!f->block || f->block % 16) return false;
    if (f->fam == LB__FAM_NF4) *k = (lb__qkern){rows_tab4, tab_nf4, true};
    else if (f->fam == LB__FAM_TERNARY) return false;
    else switch (f->elem) {
    case LB_ELEM_E2M1: *k = (lb__qkern){rows_tab4, tab_e2m1, true}; break;
    case LB_ELEM_INT4: *k = (lb__qkern){rows_tab4, tab_int4, true}; break;
    case LB_ELEM_UINT4: *k = (lb__qkern){rows_tab4, tab_uint4, true}; break;
    case LB_ELEM_INT8: *k = (lb__qkern){f->fam == LB__FAM_MX ? rows_mxint8 : rows_int8, NULL, false}; break;
    case LB_ELEM_UINT8: *k = (lb__qkern){rows_uint8, NULL, false}; break;
    case LB_ELEM_E4M3: *k = (lb__qkern){rows_tab8, tab_e4m3, false}; break;
    case LB_ELEM_E5M2: *k = (lb__qkern){rows_tab8, tab_e5m2, false}; break;
    default: return false;
    }
    return true;
}
