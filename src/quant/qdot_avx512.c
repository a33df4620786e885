/* qdot_avx512.c: AVX-512 fused dequantize-and-dot rows for the packed
 * formats the decode path uses most: 4-bit codes (MXFP4, NVFP4, NVINT4,
 * INT4 groups sym/asym, NF4) and 8-bit codes (INT8 groups sym/asym, MXINT8,
 * MXFP8). Bit-identical with the reference lb_format_dot: every element is
 * decoded to the same float w = (v - z) * d (v from the element's value
 * table, z the zero point, d the block's scale as formats/blocks.c computes
 * it), and lane j of one 16-lane accumulator takes elements j, j+16, ... with
 * an FMA, reduced by lb__reduce16: the canonical order. Blocks are multiples
 * of 16 elements, so one zmm covers 16 consecutive elements of one block. */
#include "quant/quant.h"
#include "formats/formats.h"
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

/* The block multiplier d and zero point z, exactly as lb__block_d (F16 by F16C). */
static inline float blk_d(const lb_format *f, float ts, const uint8_t *blk, const float *nvd, float *z)
{
    *z = 0.0f;
    switch (f->sd) {
    case LB__SD_E8M0: return blk[0] == 0xff ? NAN : lb__pow2f((int)blk[0] - 127);
    case LB__SD_UE4M3: return nvd[blk[0] & 0x7f];   /* ue4m3(code) / ts, divided once per call */
    case LB__SD_F16:
        if (f->asym) *z = (float)blk[2];
        return _cvtsh_ss(lb__rd16(blk));
    default:
        if (f->asym) *z = (float)blk[2];
        return lb__bits_f32((uint32_t)lb__rd16(blk) << 16);
    }
}

static inline __m512i nibbles16(const uint8_t *p)
{
    __m128i v = _mm_loadl_epi64((const __m128i *)p), m = _mm_set1_epi8(0x0f);
    __m128i e = _mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
    return _mm512_cvtepu8_epi32(e);
}

static inline float finish(__m512 acc)
{
    float a[16];
    _mm512_storeu_ps(a, acc);
    return lb__reduce16(a);
}

typedef enum kind { K_TAB4, K_INT8, K_UINT8, K_MXINT8, K_TAB8 } kind;

/* 16 decoded values (before the zero point and scale) at element i of a block's codes. */
static inline __m512 values16(const uint8_t *codes, int64_t i, kind k, __m512 t4, const float *tab)
{
    if (k == K_TAB4) return _mm512_permutexvar_ps(nibbles16(codes + i / 2), t4);
    __m128i c = _mm_loadu_si128((const __m128i *)(codes + i));
    if (k == K_UINT8) return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c));
    if (k == K_TAB8) return _mm512_i32gather_ps(_mm512_cvtepu8_epi32(c), tab, 4);
    __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c));
    return k == K_MXINT8 ? _mm512_mul_ps(v, _mm512_set1_ps(0x1p-6f)) : v;
}

/* NR rows at once (independent FMA chains hide the latency); each row's
 * own chain is exactly the single-row canonical order. With a zero point of
 * 0, v - 0 == v bit for bit, so symmetric formats skip the subtraction. */
static inline __attribute__((always_inline)) void rows_impl(const lb_format *f, float ts, const uint8_t *in, size_t rb,
                                                            const float *x, int64_t cols, const float *tab,
                                                            const float *nvd, float *out, int NR, kind k)
{
    int64_t B = f->block;
    size_t bb = lb__block_bytes(f, B);
    int sb = lb__scale_bytes(f);
    bool asym = f->asym;
    __m512 t4 = k == K_TAB4 ? _mm512_loadu_ps(tab) : _mm512_setzero_ps(), acc[8], vd[8], vz[8];
#pragma GCC unroll 8
    for (int r = 0; r < NR; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < cols / B; b++) {
        const uint8_t *blk = in + (size_t)b * bb;
#pragma GCC unroll 8
        for (int r = 0; r < NR; r++) {   /* the rows are streams from memory: fetch ahead */
            _mm_prefetch((const char *)(blk + (size_t)r * rb + 2048), _MM_HINT_T0);
            float z, d = blk_d(f, ts, blk + (size_t)r * rb, nvd, &z);
            vd[r] = _mm512_set1_ps(d);
            vz[r] = _mm512_set1_ps(z);
        }
        int64_t i = 0;
        for (; k == K_TAB4 && i + 32 <= B; i += 32) {   /* 32 codes per 16-byte load */
            __m512 x0 = _mm512_loadu_ps(x + b * B + i), x1 = _mm512_loadu_ps(x + b * B + i + 16);
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) {
                __m128i c = _mm_loadu_si128((const __m128i *)(blk + (size_t)r * rb + sb + i / 2)), m = _mm_set1_epi8(0x0f);
                __m128i lo = _mm_and_si128(c, m), hi = _mm_and_si128(_mm_srli_epi16(c, 4), m);
                __m512 v0 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)), t4);
                __m512 v1 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(lo, hi)), t4);
                if (asym) { v0 = _mm512_sub_ps(v0, vz[r]); v1 = _mm512_sub_ps(v1, vz[r]); }
                acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(v0, vd[r]), x0, acc[r]);
                acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(v1, vd[r]), x1, acc[r]);
            }
        }
        for (; i < B; i += 16) {
            __m512 xv = _mm512_loadu_ps(x + b * B + i);
#pragma GCC unroll 8
            for (int r = 0; r < NR; r++) {
                __m512 v = values16(blk + (size_t)r * rb + sb, i, k, t4, tab);
                if (asym) v = _mm512_sub_ps(v, vz[r]);
                acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(v, vd[r]), xv, acc[r]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < NR; r++) out[r] = finish(acc[r]);
}

#define ROWS_FN(name, k)                                                                                             \
    static void name(const lb_format *f, float ts, const uint8_t *in, size_t rb, int nr, const float *x,             \
                     int64_t cols, const float *tab, const float *nvd, float *out)                                  \
    {                                                                                                                \
        if (nr == 8) rows_impl(f, ts, in, rb, x, cols, tab, nvd, out, 8, k);                                         \
        else if (nr == 4) rows_impl(f, ts, in, rb, x, cols, tab, nvd, out, 4, k);                                    \
        else for (int r = 0; r < nr; r++) rows_impl(f, ts, in + (size_t)r * rb, rb, x, cols, tab, nvd, out + r, 1, k); \
    }
ROWS_FN(rows_tab4, K_TAB4)
ROWS_FN(rows_int8, K_INT8)
ROWS_FN(rows_uint8, K_UINT8)
ROWS_FN(rows_mxint8, K_MXINT8)
ROWS_FN(rows_tab8, K_TAB8)

lb__qdot_fn lb__qdot_avx512(const lb_format *f, const float **tab)
{
    pthread_once(&tab_once, tab_init);
    if (!f->block || f->block % 16) return NULL;
    if (f->fam == LB__FAM_NF4) { *tab = tab_nf4; return rows_tab4; }
    if (f->fam == LB__FAM_TERNARY) return NULL;
    switch (f->elem) {
    case LB_ELEM_E2M1: *tab = tab_e2m1; return rows_tab4;
    case LB_ELEM_INT4: *tab = tab_int4; return rows_tab4;
    case LB_ELEM_UINT4: *tab = tab_uint4; return rows_tab4;
    case LB_ELEM_INT8: *tab = NULL; return f->fam == LB__FAM_MX ? rows_mxint8 : rows_int8;
    case LB_ELEM_UINT8: *tab = NULL; return rows_uint8;
    case LB_ELEM_E4M3: *tab = tab_e4m3; return rows_tab8;
    case LB_ELEM_E5M2: *tab = tab_e5m2; return rows_tab8;
    default: return NULL;
    }
}
