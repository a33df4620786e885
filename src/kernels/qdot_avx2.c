/* qdot_avx2.c: AVX2 version of the multi-row decode kernels of
 * qdot_avx512.c (same formats, same arithmetic, same bits): up to 4 rows
 * at a time (16 ymm registers), the 16 canonical lanes of a row in two
 * accumulators of 8. MXINT8 is left to the formats module's per-row AVX2
 * kernel, which bench_qdot measured faster than this one.
 *   - scales: lb__block_d's arithmetic per block (F16 by F16C), 16 blocks
 *     of a row at a time into a small array;
 *   - 4-bit codes: the block's 16 possible weights (v_c - z) * d in two
 *     registers, then per 8 codes one qword broadcast, one variable shift,
 *     two vpermps and a blend on code bit 3. The shift gives the lane order
 *     of lb__qdot_perm_x (codes 0, 8, 1, 9, ... 7, 15 over the two halves),
 *     as in the AVX-512 kernel;
 *   - 8-bit codes: widened, converted, (v - z) * d, FMA. */
#include "kernels/kernels.h"
#include <immintrin.h>
#include <pthread.h>

typedef enum kind { K_TAB4, K_INT8, K_UINT8 } kind;

static float tab_e2m1[16], tab_int4[16], tab_uint4[16];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_init(void)
{
    for (int c = 0; c < 16; c++) {
        tab_int4[c] = lb__elem_lut(LB_ELEM_INT4)[c];
        tab_uint4[c] = lb__elem_lut(LB_ELEM_UINT4)[c];
        tab_e2m1[c] = lb__elem_lut(LB_ELEM_E2M1)[c];
    }
}

static inline float scale_d(const lb_format *f, const uint8_t *blk, const float *nvd, kind k, float *z)
{
    *z = f->asym ? (float)blk[2] : 0.0f;
    switch (f->sd) {
    case LB__SD_E8M0: return blk[0] == 0xff ? NAN : lb__pow2f((int)blk[0] - 127);
    case LB__SD_UE4M3: return nvd[blk[0] & 0x7f];
    case LB__SD_F16: return _cvtsh_ss(lb__rd16(blk));
    default: return lb__bits_f32((uint32_t)lb__rd16(blk) << 16);
    }
}

static inline float finish(__m256 a0, __m256 a1, bool perm)
{
    float a[16], c[16];
    _mm256_storeu_ps(a, a0);
    _mm256_storeu_ps(a + 8, a1);
    if (!perm) return lb__reduce16(a);
    for (int m = 0; m < 8; m++) { c[m] = a[2 * m]; c[8 + m] = a[2 * m + 1]; }
    return lb__reduce16(c);
}

static inline __m256 values8(const uint8_t *p, kind k)
{
    __m128i c = _mm_loadl_epi64((const __m128i *)p);
    if (k == K_UINT8) return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c));
}

/* T[c] for the 8 codes whose low nibble is taken by shifting q by sh. */
static inline __m256 lookup(__m256i q, __m256i sh, __m256 tlo, __m256 thi)
{
    __m256i c = _mm256_srlv_epi32(q, sh);
    __m256 lo = _mm256_permutevar8x32_ps(tlo, c), hi = _mm256_permutevar8x32_ps(thi, c);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(c, 28)));
}

static inline __attribute__((always_inline)) void rows_impl(const lb_format *f, const uint8_t *in, size_t rb,
                                                            const float *x, int64_t cols, const float *tab,
                                                            const float *nvd, float *out, int NR, kind k)
{
    enum { CH = 16 };
    int64_t B = f->block, nb = cols / B;
    size_t bb = lb__block_bytes(f, B);
    int sb = lb__scale_bytes(f);
    bool asym = f->asym;
    float d[4][CH], z[4][CH];
    __m256 a0[4], a1[4];
    const __m256i sh0 = _mm256_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12), sh1 = _mm256_setr_epi32(16, 16, 20, 20, 24, 24, 28, 28);
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) a0[r] = a1[r] = _mm256_setzero_ps();
    for (int64_t c0 = 0; c0 < nb; c0 += CH) {
        int cnt = (int)lb__min64(CH, nb - c0);
        const uint8_t *base = in + (size_t)c0 * bb;
    #pragma GCC unroll 4
    for (int r = 0; r < NR; r++)
            for (int j = 0; j < cnt; j++) d[r][j] = scale_d(f, base + (size_t)r * rb + (size_t)j * bb, nvd, k, &z[r][j]);
        for (int j = 0; j < cnt; j++) {
            const uint8_t *blk = base + (size_t)j * bb + sb;
            const float *xb = x + (c0 + j) * B;
            for (size_t o = (size_t)(c0 + j) * NR * bb; o < (size_t)(c0 + j + 1) * NR * bb; o += 64)
                _mm_prefetch((const char *)(in + 3 * NR * rb + o), _MM_HINT_T0);   /* 3 groups ahead */
            if (k == K_TAB4) {
                __m256 tlo[4], thi[4];
            #pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
                    __m256 vd = _mm256_set1_ps(d[r][j]), vz = _mm256_set1_ps(z[r][j]);
                    __m256 l = _mm256_loadu_ps(tab), h = _mm256_loadu_ps(tab + 8);
                    if (asym) { l = _mm256_sub_ps(l, vz); h = _mm256_sub_ps(h, vz); }
                    tlo[r] = _mm256_mul_ps(l, vd);
                    thi[r] = _mm256_mul_ps(h, vd);
                }
                for (int64_t i = 0; i < B; i += 16) {
                    __m256 x0 = _mm256_loadu_ps(xb + i), x1 = _mm256_loadu_ps(xb + i + 8);
                #pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
                        int64_t qq;
                        memcpy(&qq, blk + (size_t)r * rb + i / 2, 8);
                        __m256i q = _mm256_set1_epi64x(qq);
                        a0[r] = _mm256_fmadd_ps(lookup(q, sh0, tlo[r], thi[r]), x0, a0[r]);
                        a1[r] = _mm256_fmadd_ps(lookup(q, sh1, tlo[r], thi[r]), x1, a1[r]);
                    }
                }
            } else {
            #pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
                    __m256 vd = _mm256_set1_ps(d[r][j]), vz = _mm256_set1_ps(z[r][j]);
                    const uint8_t *p = blk + (size_t)r * rb;
                    for (int64_t i = 0; i < B; i += 16) {
                        __m256 v0 = values8(p + i, k), v1 = values8(p + i + 8, k);
                        if (asym) { v0 = _mm256_sub_ps(v0, vz); v1 = _mm256_sub_ps(v1, vz); }
                        a0[r] = _mm256_fmadd_ps(_mm256_mul_ps(v0, vd), _mm256_loadu_ps(xb + i), a0[r]);
                        a1[r] = _mm256_fmadd_ps(_mm256_mul_ps(v1, vd), _mm256_loadu_ps(xb + i + 8), a1[r]);
                    }
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) out[r] = finish(a0[r], a1[r], k == K_TAB4);
}

#ifndef TOP4
#define TOP4 2
#endif
#define ROWS_FN(name, k, TOP)                                                                                            \
    static void name(const lb_format *f, float ts, const uint8_t *in, size_t rb, int nr, const float *x,            \
                     int64_t cols, const float *tab, const float *nvd, float *out)                                 \
    {                                                                                                               \
        (void)ts;                                                                                                   \
        for (; nr >= TOP; nr -= TOP, in += TOP * rb, out += TOP) rows_impl(f, in, rb, x, cols, tab, nvd, out, TOP, k); \
        if (TOP == 4 && nr >= 2) { rows_impl(f, in, rb, x, cols, tab, nvd, out, 2, k); nr -= 2; in += 2 * rb; out += 2; }    \
        if (nr >= 1) rows_impl(f, in, rb, x, cols, tab, nvd, out, 1, k);                                           \
    }
ROWS_FN(rows_tab4, K_TAB4, TOP4)
ROWS_FN(rows_int8, K_INT8, 4)
ROWS_FN(rows_uint8, K_UINT8, 4)

bool lb__qdot_avx2(const lb_format *f, lb__qkern *k)
{
    *k = (lb__qkern){0};
    if (!f->block || f->block % 16 || f->fam == LB__FAM_TERNARY) return false;
    pthread_once(&tab_once, tab_init);
    if (f->fam == LB__FAM_NF4) { *k = (lb__qkern){rows_tab4, lb__nf4_table, true}; return true; }
    switch (f->elem) {
    case LB_ELEM_E2M1: *k = (lb__qkern){rows_tab4, tab_e2m1, true}; return true;
    case LB_ELEM_INT4: *k = (lb__qkern){rows_tab4, tab_int4, true}; return true;
    case LB_ELEM_UINT4: *k = (lb__qkern){rows_tab4, tab_uint4, true}; return true;
    case LB_ELEM_INT8:   /* MXINT8: the formats module's per-row kernel measured faster (bench_qdot) */
        if (f->fam == LB__FAM_MX) return false;
        *k = (lb__qkern){rows_int8, NULL, false};
        return true;
    case LB_ELEM_UINT8: *k = (lb__qkern){rows_uint8, NULL, false}; return true;
    default: return false;
    }
}
