/* formats_avx2.c: AVX2 row kernels (quantize with the floor/ceil rules,
 * dequantize, dot) for MXFP4, NVFP4, NVINT4, MXINT8, NF4 and the INT4/INT8
 * group formats; dequantize and dot for MXFP8, MXFP6 and the INT2/INT3
 * groups (codes read with gathers). Bit-exact with the reference in
 * src/formats/blocks.c: the block headers come from the shared scalar
 * helpers in formats.h, elements go through the same float operations, and
 * the dot product keeps the 16 lanes of the reference order in two vectors
 * of 8, reduced by lb__reduce16.
 *
 * 4-bit codes: element 2j is the low nibble of byte j; 16 codes (8 bytes)
 * widen to two vectors of 8 int32. 16-entry tables (E2M1, NF4) decode with
 * two vpermps and a blend on code bit 3. NF4 encodes by counting the
 * midpoints below v (ties to the lower entry). E2M1 rounds a = |v|
 * (nearest, ties to even, saturating at 6) without compares, as in
 * formats_avx512.c: s = round(2a) from the bits of a + 1.5*2^22 (exact
 * below 1), n = a rounded to 1 mantissa bit on its bit pattern, minus 252
 * (exact from 1 up); code = max(min(s, 2), min(n, 7)), sign as bit 3. */
#include "kernels/formats_simd.h"
#include <immintrin.h>

/* Codes i..i+15 of a block's element bytes as two vectors of 8 int32. */
static inline void codes16(const uint8_t *p, int64_t i, vkind k, int kb, __m256i bitbase, __m256i *a, __m256i *b)
{
    __m128i e;
    if (is_bits(k)) {   /* lane l reads 4 bytes at bit kb*(i+l) (bitbase = kb*l) and shifts */
        __m256i m = _mm256_set1_epi32((1 << kb) - 1), seven = _mm256_set1_epi32(7);
        __m256i b0 = _mm256_add_epi32(bitbase, _mm256_set1_epi32(kb * (int)i));
        __m256i b1 = _mm256_add_epi32(b0, _mm256_set1_epi32(kb * 8));
        __m256i w0 = _mm256_i32gather_epi32((const int *)p, _mm256_srli_epi32(b0, 3), 1);
        __m256i w1 = _mm256_i32gather_epi32((const int *)p, _mm256_srli_epi32(b1, 3), 1);
        *a = _mm256_and_si256(_mm256_srlv_epi32(w0, _mm256_and_si256(b0, seven)), m);
        *b = _mm256_and_si256(_mm256_srlv_epi32(w1, _mm256_and_si256(b1, seven)), m);
        return;
    }
    if (is8(k)) {
        e = _mm_loadu_si128((const __m128i *)(p + i));
        if (k != V_UINT8 && k != V_LUT256) {
            *a = _mm256_cvtepi8_epi32(e);
            *b = _mm256_cvtepi8_epi32(_mm_srli_si128(e, 8));
            return;
        }
    } else {
        __m128i v = _mm_loadl_epi64((const __m128i *)(p + i / 2)), m = _mm_set1_epi8(0x0f);
        e = _mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
    }
    *a = _mm256_cvtepu8_epi32(e);
    *b = _mm256_cvtepu8_epi32(_mm_srli_si128(e, 8));
}

/* Decode tables: 16 entries in two registers (E2M1, NF4) or 256 in memory (FP8). */
typedef struct tab16 { __m256 lo, hi; const float *lut; } tab16;

static inline tab16 table16(const lb_format *f, vkind k)
{
    tab16 t;
    t.lut = k == V_LUT256 || k == V_BITS_LUT ? lb__elem_lut(f->elem) : NULL;
    if (k == V_NF4) {
        t.lo = _mm256_loadu_ps(lb__nf4_table);
        t.hi = _mm256_loadu_ps(lb__nf4_table + 8);
    } else {
        t.lo = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
        t.hi = _mm256_setr_ps(-0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f);
    }
    return t;
}

static inline __m256 value8(__m256i c, vkind k, __m256 z, tab16 t, int kb)
{
    switch (k) {
    case V_BITS_S: {
        __m128i sh = _mm_cvtsi32_si128(32 - kb);
        return _mm256_cvtepi32_ps(_mm256_sra_epi32(_mm256_sll_epi32(c, sh), sh));
    }
    case V_BITS_LUT: return _mm256_i32gather_ps(t.lut, c, 4);
    case V_E2M1: case V_NF4:
        return _mm256_blendv_ps(_mm256_permutevar8x32_ps(t.lo, c), _mm256_permutevar8x32_ps(t.hi, c),
                                _mm256_castsi256_ps(_mm256_slli_epi32(c, 28)));
    case V_LUT256: return _mm256_i32gather_ps(t.lut, c, 4);
    case V_INT4: return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(c, 28), 28));
    case V_INT8: return _mm256_cvtepi32_ps(c);
    case V_MXINT8: return _mm256_mul_ps(_mm256_cvtepi32_ps(c), _mm256_set1_ps(0x1p-6f));
    default: return _mm256_sub_ps(_mm256_cvtepi32_ps(c), z);   /* asym */
    }
}

/* Per-row table of the NV block multipliers: the reference's divisions
 * lut / ts (decode) or g / lut (encode, 0 for a zero scale), 8 at a time. */
static void nv_table(const float *ue4m3, float v, bool inverse, float *tab)
{
    __m256 vv = _mm256_set1_ps(v), zero = _mm256_setzero_ps();
    for (int c = 0; c < 128; c += 8) {
        __m256 l = _mm256_loadu_ps(ue4m3 + c);
        __m256 t = inverse ? _mm256_and_ps(_mm256_div_ps(vv, l), _mm256_cmp_ps(l, zero, _CMP_GT_OQ))
                           : _mm256_div_ps(l, vv);
        _mm256_storeu_ps(tab + c, t);
    }
}

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
    tab16 t = table16(f, k);
    int kb = lb_elem_bits(f->elem);
    __m256i bitbase = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(kb));
    uint8_t pad[136];
    for (int64_t b = 0; b < cols / B; b++, in += bb, y += B) {
        float z, d = block_mul(f, ts, in, dtab, &z);
        __m256 vd = _mm256_set1_ps(d), vz = _mm256_set1_ps(z);
        const uint8_t *cp = block_codes(in + sb, b == cols / B - 1, k, bb - (size_t)sb, pad);
        for (int64_t i = 0; i < B; i += 16) {
            __m256i c0, c1;
            codes16(cp, i, k, kb, bitbase, &c0, &c1);
            _mm256_storeu_ps(y + i, _mm256_mul_ps(value8(c0, k, vz, t, kb), vd));
            _mm256_storeu_ps(y + i + 8, _mm256_mul_ps(value8(c1, k, vz, t, kb), vd));
        }
    }
}

static inline __attribute__((always_inline)) float dot_impl(const lb_format *f, float ts, const uint8_t *in,
                                                            const float *x, int64_t cols, vkind k)
{
    int64_t B = f->block;
    size_t bb = lb__block_bytes(f, B);
    int sb = lb__scale_bytes(f);
    float dtab[128], acc[16];
    if (f->fam == LB__FAM_NV) nv_table(lb__elem_lut(LB_ELEM_UE4M3), ts, false, dtab);
    tab16 t = table16(f, k);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int kb = lb_elem_bits(f->elem);
    __m256i bitbase = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(kb));
    uint8_t pad[136];
    for (int64_t b = 0; b < cols / B; b++, in += bb, x += B) {
        float z, d = block_mul(f, ts, in, dtab, &z);
        __m256 vd = _mm256_set1_ps(d), vz = _mm256_set1_ps(z);
        const uint8_t *cp = block_codes(in + sb, b == cols / B - 1, k, bb - (size_t)sb, pad);
        for (int64_t i = 0; i < B; i += 16) {
            __m256i c0, c1;
            codes16(cp, i, k, kb, bitbase, &c0, &c1);
            a0 = _mm256_fmadd_ps(_mm256_mul_ps(value8(c0, k, vz, t, kb), vd), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_mul_ps(value8(c1, k, vz, t, kb), vd), _mm256_loadu_ps(x + i + 8), a1);
        }
    }
    _mm256_storeu_ps(acc, a0);
    _mm256_storeu_ps(acc + 8, a1);
    return lb__reduce16(acc);
}

/* ---- quantize */
static inline uint32_t hmax_u32(__m256i v)
{
    __m128i m = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4e));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(m);
}
static inline float hmin_ps(__m256 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_shuffle_ps(m, m, 0x4e));
    m = _mm_min_ps(m, _mm_shuffle_ps(m, m, 0xb1));
    return _mm_cvtss_f32(m);
}
static inline float hmax_ps(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_shuffle_ps(m, m, 0x4e));
    m = _mm_max_ps(m, _mm_shuffle_ps(m, m, 0xb1));
    return _mm_cvtss_f32(m);
}

static inline __m256i encode8(__m256 v, vkind k, __m256 z)
{
    __m256i c = _mm256_setzero_si256();
#define COUNT(x, t, op) c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(x, _mm256_set1_ps(t), op)))
    if (k == V_E2M1) {   /* see the header comment */
        __m256i u = _mm256_castps_si256(v), b = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
        __m256i s = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(_mm256_castsi256_ps(b), _mm256_set1_ps(0x1.8p22f))),
                                     _mm256_set1_epi32(0x4ac00000));
        __m256i n = _mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x1fffff - 0x3f000000)),
                                     _mm256_and_si256(_mm256_srli_epi32(b, 22), _mm256_set1_epi32(1)));
        n = _mm256_min_epi32(_mm256_srai_epi32(n, 22), _mm256_set1_epi32(7));
        c = _mm256_max_epi32(_mm256_min_epi32(s, _mm256_set1_epi32(2)), n);
        return _mm256_or_si256(c, _mm256_and_si256(_mm256_srli_epi32(u, 28), _mm256_set1_epi32(8)));
    }
    if (k == V_NF4) {
        for (int j = 0; j < 15; j++) COUNT(v, 0.5f * (lb__nf4_table[j] + lb__nf4_table[j + 1]), _CMP_GT_OQ);
        return c;
    }
#undef COUNT
    if (k == V_MXINT8) v = _mm256_mul_ps(v, _mm256_set1_ps(64.0f));
    __m256 q = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (is_asym(k)) {
        q = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(q, z), _mm256_setzero_ps()),
                          _mm256_set1_ps(k == V_UINT8 ? 255.0f : 15.0f));
        return _mm256_cvtps_epi32(q);
    }
    float qm = is8(k) ? 127.0f : 7.0f;
    q = _mm256_min_ps(_mm256_max_ps(q, _mm256_set1_ps(-qm)), _mm256_set1_ps(qm));
    return is8(k) ? _mm256_cvtps_epi32(q) : _mm256_and_si256(_mm256_cvtps_epi32(q), _mm256_set1_epi32(15));
}

/* 16 codes (two vectors of 8 int32) -> 8 bytes of 4-bit pairs or 16 bytes. */
static inline void pack16(__m256i c0, __m256i c1, uint8_t *p, int64_t i, vkind k)
{
    if (is8(k)) {   /* signed codes saturate-pack exactly in [-127, 127]; unsigned in [0, 255] */
        __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(c0, c1), 0xd8);
        __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
        _mm_storeu_si128((__m128i *)(p + i), k == V_UINT8 ? _mm_packus_epi16(lo, hi) : _mm_packs_epi16(lo, hi));
        return;
    }
    __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(c0, c1), 0xd8);  /* 16-bit, in order */
    w = _mm256_and_si256(_mm256_or_si256(w, _mm256_srli_epi32(w, 12)), _mm256_set1_epi32(0xff));
    __m128i q = _mm_packus_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storel_epi64((__m128i *)(p + i / 2), _mm_packus_epi16(q, q));
}

static inline __attribute__((always_inline)) bool block_head(const lb_format *f, lb_scale_rule rule, float g,
                                                             const float *x, uint8_t *out, vkind k, const float *ue4m3,
                                                             const float *invtab, float *inv, float *zf)
{
    const __m256i absm = _mm256_set1_epi32(0x7fffffff);
    __m256i am = _mm256_setzero_si256();
    __m256 mn = _mm256_setzero_ps(), mx = _mm256_setzero_ps();
    for (int64_t i = 0; i < f->block; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        am = _mm256_max_epu32(am, _mm256_and_si256(_mm256_castps_si256(v), absm));
        if (is_asym(k)) { mn = _mm256_min_ps(v, mn); mx = _mm256_max_ps(v, mx); }
    }
    uint32_t ab = hmax_u32(am);
    *zf = 0.0f;
    if (ab >= 0x7f800000u) return false;
    float lo = 0.0f, hi = 0.0f;
    if (is_asym(k)) { lo = hmin_ps(mn); hi = hmax_ps(mx); }
    *inv = lb__head_simd(f, rule, g, ab, lo, hi, out, ue4m3, invtab, zf);
    return true;
}

static inline __attribute__((always_inline)) void chunk_heads(const lb_format *f, lb_scale_rule rule, float g,
                                                              const float *x, uint8_t *out, int64_t cnt, vkind k,
                                                              const float *ue4m3, const float *invtab, bool *ok,
                                                              float *inv, float *zf)
{
    size_t bb = lb__block_bytes(f, f->block);
    for (int64_t j = 0; j < cnt; j++)
        ok[j] = block_head(f, rule, g, x + j * f->block, out + j * bb, k, ue4m3, invtab, &inv[j], &zf[j]);
}

/* Elements of one finite block: codes = encode(x * inv). */
static inline __attribute__((always_inline)) void encode_block(const lb_format *f, const float *x, uint8_t *codes,
                                                               float inv, float zf, vkind k)
{
    __m256 vi = _mm256_set1_ps(inv), vz = _mm256_set1_ps(zf);
    for (int64_t i = 0; i < f->block; i += 16) {
        __m256i e0 = encode8(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), k, vz);
        __m256i e1 = encode8(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vi), k, vz);
        pack16(e0, e1, codes, i, k);
    }
}

static uint32_t finite_amax(const float *x, int64_t n)
{
    const __m256i absm = _mm256_set1_epi32(0x7fffffff), lim = _mm256_set1_epi32(0x7f7fffff);
    __m256i m = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i b = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + i)), absm);
        m = _mm256_max_epu32(m, _mm256_andnot_si256(_mm256_cmpgt_epi32(b, lim), b));   /* drop Inf/NaN */
    }
    uint32_t r = hmax_u32(m);
    for (; i < n; i++) {
        uint32_t b = lb__f32_bits(x[i]) & 0x7fffffffu;
        if (b < 0x7f800000u && b > r) r = b;
    }
    return r;
}

const lb__fmt_kernels lb__simd_avx2 = {quant_row, dequant_row, dot_row, finite_amax};
const lb__fmt_kernels lb__simd_fp8_avx2 = {NULL, dequant_row, dot_row, NULL};
const lb__fmt_kernels lb__simd_bits_avx2 = {NULL, dequant_row, dot_row, NULL};
