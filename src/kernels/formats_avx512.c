/* formats_avx512.c: AVX-512 row kernels (quantize with the floor/ceil rules,
 * dequantize, dot) for MXFP4, NVFP4, NVINT4, MXINT8, NF4 and the INT4/INT8
 * group formats. The same operations as formats_avx2.c on 16 lanes, so one
 * vector holds the dot product's 16 partial sums. Bit-exact with the
 * reference (src/formats/blocks.c): block headers come from the shared
 * scalar helpers, elements go through the same float operations.
 *
 * 4-bit codes: element 2j is the low nibble of byte j; 16 codes (8 bytes)
 * widen to 16 int32 lanes. 16-entry tables (E2M1, NF4) decode with one
 * vpermps. E2M1 encodes by counting the rounding thresholds |v| passes
 * (>0.25 >=0.75 >1.25 >=1.75 >2.5 >=3.5 >5, ties to the even code), NF4 by
 * counting the midpoints below v (ties to the lower entry). */
#include "formats/formats.h"
#include <immintrin.h>

typedef enum vkind { V_E2M1, V_NF4, V_INT4, V_UINT4, V_INT8, V_UINT8, V_MXINT8, V_LUT256 } vkind;

static vkind kind_of(const lb_format *f)
{
    if (f->elem == LB_ELEM_E2M1) return V_E2M1;
    if (f->fam == LB__FAM_NF4) return V_NF4;
    if (f->fam == LB__FAM_MX && f->elem == LB_ELEM_INT8) return V_MXINT8;
    if (f->elem == LB_ELEM_E4M3 || f->elem == LB_ELEM_E5M2) return V_LUT256;
    if (f->elem == LB_ELEM_INT8) return V_INT8;
    if (f->elem == LB_ELEM_UINT8) return V_UINT8;
    return f->asym ? V_UINT4 : V_INT4;
}
static inline bool is8(vkind k) { return k == V_INT8 || k == V_UINT8 || k == V_MXINT8 || k == V_LUT256; }
static inline bool is_asym(vkind k) { return k == V_UINT4 || k == V_UINT8; }

/* Codes i..i+15 of a block's element bytes as int32 lanes (INT8 sign-extended). */
static inline __m512i codes16(const uint8_t *p, int64_t i, vkind k)
{
    if (is8(k)) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
        return k == V_UINT8 || k == V_LUT256 ? _mm512_cvtepu8_epi32(v) : _mm512_cvtepi8_epi32(v);
    }
    __m128i v = _mm_loadl_epi64((const __m128i *)(p + i / 2)), m = _mm_set1_epi8(0x0f);
    return _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m)));
}

/* Decode tables: 16 entries in a register (E2M1, NF4) or 256 in memory (FP8). */
typedef struct tabs { __m512 t16; const float *lut; } tabs;

static inline __m512 value16(__m512i c, vkind k, __m512 z, tabs tab)
{
    switch (k) {
    case V_E2M1: case V_NF4: return _mm512_permutexvar_ps(c, tab.t16);
    case V_LUT256: return _mm512_i32gather_ps(c, tab.lut, 4);
    case V_INT4: return _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(c, 28), 28));
    case V_INT8: return _mm512_cvtepi32_ps(c);
    case V_MXINT8: return _mm512_mul_ps(_mm512_cvtepi32_ps(c), _mm512_set1_ps(0x1p-6f));
    default: return _mm512_sub_ps(_mm512_cvtepi32_ps(c), z);   /* asym */
    }
}

static inline tabs tables(const lb_format *f, vkind k)
{
    tabs t = {_mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                             -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f), NULL};
    if (k == V_NF4) t.t16 = _mm512_loadu_ps(lb__nf4_table);
    if (k == V_LUT256) t.lut = lb__elem_lut(f->elem);
    return t;
}

/* Per-row table of the NV block multipliers: the reference's divisions
 * lut / ts (decode) or g / lut (encode, 0 for a zero scale), 16 at a time. */
static void nv_table(const float *ue4m3, float v, bool inverse, float *tab)
{
    __m512 vv = _mm512_set1_ps(v), zero = _mm512_setzero_ps();
    for (int c = 0; c < 128; c += 16) {
        __m512 l = _mm512_loadu_ps(ue4m3 + c);
        __m512 t = inverse ? _mm512_maskz_div_ps(_mm512_cmp_ps_mask(l, zero, _CMP_GT_OQ), vv, l)
                           : _mm512_div_ps(l, vv);
        _mm512_storeu_ps(tab + c, t);
    }
}

/* Decode multiplier of block `in`: from the per-row NV table or the shared helper. */
static inline float block_mul(const lb_format *f, float ts, const uint8_t *in, const float *dtab, float *z)
{
    if (f->fam == LB__FAM_NV) { *z = 0.0f; return dtab[in[0] & 0x7f]; }
    return lb__block_d(f, ts, in, z);
}

static inline __attribute__((always_inline)) void dequant_impl(const lb_format *f, float ts, const uint8_t *in,
                                                               int64_t cols, float *y, vkind k)
{
    int64_t B = f->block;
    size_t bb = lb__block_bytes(f, B);
    int sb = lb__scale_bytes(f);
    float dtab[128];
    if (f->fam == LB__FAM_NV) nv_table(lb__elem_lut(LB_ELEM_UE4M3), ts, false, dtab);
    tabs tab = tables(f, k);
    for (int64_t b = 0; b < cols / B; b++, in += bb, y += B) {
        float z, d = block_mul(f, ts, in, dtab, &z);
        __m512 vd = _mm512_set1_ps(d), vz = _mm512_set1_ps(z);
        for (int64_t i = 0; i < B; i += 16)
            _mm512_storeu_ps(y + i, _mm512_mul_ps(value16(codes16(in + sb, i, k), k, vz, tab), vd));
    }
}

static inline __attribute__((always_inline)) float dot_impl(const lb_format *f, float ts, const uint8_t *in,
                                                            const float *x, int64_t cols, vkind k)
{
    int64_t B = f->block;
    size_t bb = lb__block_bytes(f, B);
    int sb = lb__scale_bytes(f);
    float dtab[128], a[16];
    if (f->fam == LB__FAM_NV) nv_table(lb__elem_lut(LB_ELEM_UE4M3), ts, false, dtab);
    tabs tab = tables(f, k);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < cols / B; b++, in += bb, x += B) {
        float z, d = block_mul(f, ts, in, dtab, &z);
        __m512 vd = _mm512_set1_ps(d), vz = _mm512_set1_ps(z);
        for (int64_t i = 0; i < B; i += 16)
            acc = _mm512_fmadd_ps(_mm512_mul_ps(value16(codes16(in + sb, i, k), k, vz, tab), vd),
                                  _mm512_loadu_ps(x + i), acc);
    }
    _mm512_storeu_ps(a, acc);
    return lb__reduce16(a);
}

/* ---- quantize */
static inline __m512i encode16(__m512 v, vkind k, __m512 z)
{
    __m512i c = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    if (k == V_E2M1) {
        __m512 a = _mm512_abs_ps(v);
#define STEP(t, op) c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(t), op), c, one)
        STEP(0.25f, _CMP_GT_OQ); STEP(0.75f, _CMP_GE_OQ); STEP(1.25f, _CMP_GT_OQ); STEP(1.75f, _CMP_GE_OQ);
        STEP(2.5f, _CMP_GT_OQ); STEP(3.5f, _CMP_GE_OQ); STEP(5.0f, _CMP_GT_OQ);
#undef STEP
        return _mm512_or_si512(c, _mm512_slli_epi32(_mm512_srli_epi32(_mm512_castps_si512(v), 31), 3));
    }
    if (k == V_NF4) {
        for (int j = 0; j < 15; j++) {
            __m512 mid = _mm512_set1_ps(0.5f * (lb__nf4_table[j] + lb__nf4_table[j + 1]));
            c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(v, mid, _CMP_GT_OQ), c, one);
        }
        return c;
    }
    if (k == V_MXINT8) v = _mm512_mul_ps(v, _mm512_set1_ps(64.0f));
    __m512 q = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (is_asym(k)) {
        q = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(q, z), _mm512_setzero_ps()),
                          _mm512_set1_ps(k == V_UINT8 ? 255.0f : 15.0f));
        return _mm512_cvtps_epi32(q);
    }
    float qm = is8(k) ? 127.0f : 7.0f;
    q = _mm512_min_ps(_mm512_max_ps(q, _mm512_set1_ps(-qm)), _mm512_set1_ps(qm));
    return _mm512_and_si512(_mm512_cvtps_epi32(q), _mm512_set1_epi32(is8(k) ? 255 : 15));
}

/* 16 codes (int32) -> 8 bytes (4-bit pairs, one per 64-bit lane) or 16 bytes. */
static inline void pack16(__m512i c, uint8_t *p, int64_t i, vkind k)
{
    if (is8(k)) { _mm_storeu_si128((__m128i *)(p + i), _mm512_cvtepi32_epi8(c)); return; }
    __m512i t = _mm512_or_si512(c, _mm512_srli_epi64(c, 28));
    _mm_storel_epi64((__m128i *)(p + i / 2), _mm512_cvtepi64_epi8(t));
}

/* Header of one block; false for a block holding Inf/NaN. */
static inline __attribute__((always_inline)) bool block_head(const lb_format *f, lb_scale_rule rule, float g,
                                                             const float *x, uint8_t *out, vkind k, const float *ue4m3,
                                                             const float *invtab, float *inv, float *zf)
{
    const __m512i absm = _mm512_set1_epi32(0x7fffffff);
    __m512i am = _mm512_setzero_si512();
    __m512 mn = _mm512_setzero_ps(), mx = _mm512_setzero_ps();
    for (int64_t i = 0; i < f->block; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        am = _mm512_max_epu32(am, _mm512_and_si512(_mm512_castps_si512(v), absm));
        if (is_asym(k)) { mn = _mm512_min_ps(v, mn); mx = _mm512_max_ps(v, mx); }
    }
    uint32_t ab = (uint32_t)_mm512_reduce_max_epu32(am);
    *zf = 0.0f;
    if (ab >= 0x7f800000u) return false;
    float lo = 0.0f, hi = 0.0f;
    if (is_asym(k)) { lo = _mm512_reduce_min_ps(mn); hi = _mm512_reduce_max_ps(mx); }
    *inv = lb__head_simd(f, rule, g, ab, lo, hi, out, ue4m3, invtab, zf);
    return true;
}

/* Two passes over chunks of blocks (headers, then elements); see formats_avx2.c. */
static inline __attribute__((always_inline)) void quant_impl(const lb_format *f, lb_scale_rule rule, float g,
                                                             const float *x, int64_t cols, uint8_t *out, vkind k)
{
    enum { CH = 64 };
    int64_t B = f->block, nb = cols / B;
    size_t bb = lb__block_bytes(f, B);
    int sb = lb__scale_bytes(f);
    const float *ue4m3 = lb__elem_lut(LB_ELEM_UE4M3);
    float inv[CH], zf[CH], invtab[128];
    bool ok[CH];
    if (f->fam == LB__FAM_NV) nv_table(ue4m3, g, true, invtab);
    for (int64_t c0 = 0; c0 < nb; c0 += CH) {
        int64_t cnt = lb__min64(CH, nb - c0);
        for (int64_t j = 0; j < cnt; j++)
            ok[j] = block_head(f, rule, g, x + (c0 + j) * B, out + (c0 + j) * bb, k, ue4m3, invtab, &inv[j], &zf[j]);
        for (int64_t j = 0; j < cnt; j++) {
            const float *xb = x + (c0 + j) * B;
            uint8_t *ob = out + (c0 + j) * bb;
            if (!ok[j]) { lb__quant_block_ref(f, rule, g, xb, B, ob); continue; }
            __m512 vi = _mm512_set1_ps(inv[j]), vz = _mm512_set1_ps(zf[j]);
            for (int64_t i = 0; i < B; i += 16)
                pack16(encode16(_mm512_mul_ps(_mm512_loadu_ps(xb + i), vi), k, vz), ob + sb, i, k);
        }
    }
}

/* One specialised copy of each kernel per element kind. */
#define KIND_SWITCH(call) \
    switch (kind_of(f)) { \
    case V_E2M1: call(V_E2M1); case V_NF4: call(V_NF4); case V_INT4: call(V_INT4); case V_UINT4: call(V_UINT4); \
    case V_INT8: call(V_INT8); case V_UINT8: call(V_UINT8); case V_LUT256: call(V_LUT256); default: call(V_MXINT8); }

static void dequant_row(const lb_format *f, float ts, const uint8_t *in, int64_t cols, float *y)
{
#define CALL(K) dequant_impl(f, ts, in, cols, y, K); return;
    KIND_SWITCH(CALL)
#undef CALL
}
static float dot_row(const lb_format *f, float ts, const uint8_t *in, const float *x, int64_t cols)
{
#define CALL(K) return dot_impl(f, ts, in, x, cols, K);
    KIND_SWITCH(CALL)
#undef CALL
}
static void quant_row(const lb_format *f, lb_scale_rule rule, float g, const float *x, int64_t cols, uint8_t *out)
{
    switch (kind_of(f)) {   /* FP8 (V_LUT256) has no SIMD quantizer: its table has quant = NULL */
    case V_E2M1: quant_impl(f, rule, g, x, cols, out, V_E2M1); return;
    case V_NF4: quant_impl(f, rule, g, x, cols, out, V_NF4); return;
    case V_INT4: quant_impl(f, rule, g, x, cols, out, V_INT4); return;
    case V_UINT4: quant_impl(f, rule, g, x, cols, out, V_UINT4); return;
    case V_INT8: quant_impl(f, rule, g, x, cols, out, V_INT8); return;
    case V_UINT8: quant_impl(f, rule, g, x, cols, out, V_UINT8); return;
    default: quant_impl(f, rule, g, x, cols, out, V_MXINT8); return;
    }
}

static uint32_t finite_amax(const float *x, int64_t n)
{
    const __m512i absm = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    __m512i m = _mm512_setzero_si512();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i b = _mm512_and_si512(_mm512_loadu_si512(x + i), absm);
        m = _mm512_mask_max_epu32(m, _mm512_cmplt_epu32_mask(b, inf), m, b);
    }
    uint32_t r = (uint32_t)_mm512_reduce_max_epu32(m);
    for (; i < n; i++) {
        uint32_t b = lb__f32_bits(x[i]) & 0x7fffffffu;
        if (b < 0x7f800000u && b > r) r = b;
    }
    return r;
}

const lb__fmt_kernels lb__simd_avx512 = {quant_row, dequant_row, dot_row, finite_amax};
const lb__fmt_kernels lb__simd_fp8_avx512 = {NULL, dequant_row, dot_row, NULL};
