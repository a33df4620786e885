/* formats_avx2.c: AVX2 row kernels for the 4-bit formats MXFP4, NVFP4,
 * NVINT4 and INT4 groups (symmetric and asymmetric). Bit-exact with the
 * reference in src/formats/blocks.c: the same scalar block headers (shared
 * helpers in formats.h), the same float operations per element, and the dot
 * product's 16 lanes (two vectors of 8) reduced by lb__reduce16.
 *
 * 4-bit codes: element 2j is the low nibble of byte j. 16 codes (8 bytes)
 * are widened to two vectors of 8 int32. E2M1 decodes through a magnitude
 * table (vpermps) and the sign bit; it encodes by counting the rounding
 * thresholds |v| passes (ties go to the even code):
 *   >0.25 >=0.75 >1.25 >=1.75 >2.5 >=3.5 >5  -> codes 1..7 = 0.5 1 1.5 2 3 4 6 */
#include "formats/formats.h"
#include <immintrin.h>

typedef enum vkind { V_E2M1, V_INT4, V_UINT4 } vkind;

static vkind kind_of(const lb_format *f)
{
    return f->elem == LB_ELEM_E2M1 ? V_E2M1 : f->asym ? V_UINT4 : V_INT4;
}

static inline void load16(const uint8_t *p, __m256i *a, __m256i *b)
{
    __m128i v = _mm_loadl_epi64((const __m128i *)p), m = _mm_set1_epi8(0x0f);
    __m128i e = _mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
    *a = _mm256_cvtepu8_epi32(e);
    *b = _mm256_cvtepu8_epi32(_mm_srli_si128(e, 8));
}

static inline __m256 value8(__m256i c, vkind k, __m256 z)
{
    if (k == V_E2M1) {
        const __m256 mag = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
        __m256i s = _mm256_slli_epi32(_mm256_srli_epi32(c, 3), 31);
        return _mm256_xor_ps(_mm256_permutevar8x32_ps(mag, c), _mm256_castsi256_ps(s));
    }
    if (k == V_INT4) return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(c, 28), 28));
    return _mm256_sub_ps(_mm256_cvtepi32_ps(c), z);
}

static inline __attribute__((always_inline)) void dequant_impl(const lb_format *f, float ts, const uint8_t *in,
                                                               int64_t cols, float *y, vkind k)
{
    int64_t B = f->block;
    size_t bb = lb__block_bytes(f, B);
    int sb = lb__scale_bytes(f);
    for (int64_t b = 0; b < cols / B; b++, in += bb, y += B) {
        float z, d = lb__block_d(f, ts, in, &z);
        __m256 vd = _mm256_set1_ps(d), vz = _mm256_set1_ps(z);
        for (int64_t i = 0; i < B; i += 16) {
            __m256i c0, c1;
            load16(in + sb + i / 2, &c0, &c1);
            _mm256_storeu_ps(y + i, _mm256_mul_ps(value8(c0, k, vz), vd));
            _mm256_storeu_ps(y + i + 8, _mm256_mul_ps(value8(c1, k, vz), vd));
        }
    }
}

static void dequant_row(const lb_format *f, float ts, const uint8_t *in, int64_t cols, float *y)
{
    switch (kind_of(f)) {
    case V_E2M1: dequant_impl(f, ts, in, cols, y, V_E2M1); break;
    case V_INT4: dequant_impl(f, ts, in, cols, y, V_INT4); break;
    case V_UINT4: dequant_impl(f, ts, in, cols, y, V_UINT4); break;
    }
}

static inline __attribute__((always_inline)) float dot_impl(const lb_format *f, float ts, const uint8_t *in,
                                                            const float *x, int64_t cols, vkind k)
{
    int64_t B = f->block;
    size_t bb = lb__block_bytes(f, B);
    int sb = lb__scale_bytes(f);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int64_t b = 0; b < cols / B; b++, in += bb, x += B) {
        float z, d = lb__block_d(f, ts, in, &z);
        __m256 vd = _mm256_set1_ps(d), vz = _mm256_set1_ps(z);
        for (int64_t i = 0; i < B; i += 16) {
            __m256i c0, c1;
            load16(in + sb + i / 2, &c0, &c1);
            a0 = _mm256_fmadd_ps(_mm256_mul_ps(value8(c0, k, vz), vd), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_mul_ps(value8(c1, k, vz), vd), _mm256_loadu_ps(x + i + 8), a1);
        }
    }
    float acc[16];
    _mm256_storeu_ps(acc, a0);
    _mm256_storeu_ps(acc + 8, a1);
    return lb__reduce16(acc);
}

static float dot_row(const lb_format *f, float ts, const uint8_t *in, const float *x, int64_t cols)
{
    switch (kind_of(f)) {
    case V_E2M1: return dot_impl(f, ts, in, x, cols, V_E2M1);
    case V_INT4: return dot_impl(f, ts, in, x, cols, V_INT4);
    default: return dot_impl(f, ts, in, x, cols, V_UINT4);
    }
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
    if (k == V_E2M1) {
        __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
        __m256i c = _mm256_setzero_si256();
#define GT(t) c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(t), _CMP_GT_OQ)))
#define GE(t) c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(t), _CMP_GE_OQ)))
        GT(0.25f); GE(0.75f); GT(1.25f); GE(1.75f); GT(2.5f); GE(3.5f); GT(5.0f);
#undef GT
#undef GE
        return _mm256_or_si256(c, _mm256_slli_epi32(_mm256_srli_epi32(_mm256_castps_si256(v), 31), 3));
    }
    __m256 q = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (k == V_INT4) {
        q = _mm256_min_ps(_mm256_max_ps(q, _mm256_set1_ps(-7.0f)), _mm256_set1_ps(7.0f));
        return _mm256_and_si256(_mm256_cvtps_epi32(q), _mm256_set1_epi32(15));
    }
    q = _mm256_add_ps(q, z);
    q = _mm256_min_ps(_mm256_max_ps(q, _mm256_setzero_ps()), _mm256_set1_ps(15.0f));
    return _mm256_cvtps_epi32(q);
}

/* 16 codes (two vectors of 8 int32 < 16) -> 8 bytes, element 2j in the low nibble. */
static inline void pack16(__m256i c0, __m256i c1, uint8_t *out)
{
    __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(c0, c1), 0xd8);  /* 16-bit, in order */
    w = _mm256_and_si256(_mm256_or_si256(w, _mm256_srli_epi32(w, 12)), _mm256_set1_epi32(0xff));
    __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storel_epi64((__m128i *)out, _mm_packus_epi16(p, p));
}

static inline __attribute__((always_inline)) void quant_impl(const lb_format *f, lb_scale_rule rule, float g,
                                                             const float *x, int64_t cols, uint8_t *out, vkind k)
{
    int64_t B = f->block;
    size_t bb = lb__block_bytes(f, B);
    int sb = lb__scale_bytes(f);
    const __m256i absm = _mm256_set1_epi32(0x7fffffff);
    for (int64_t b = 0; b < cols / B; b++, x += B, out += bb) {
        __m256i am = _mm256_setzero_si256();
        __m256 mn = _mm256_setzero_ps(), mx = _mm256_setzero_ps();
        for (int64_t i = 0; i < B; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            am = _mm256_max_epu32(am, _mm256_and_si256(_mm256_castps_si256(v), absm));
            if (k == V_UINT4) { mn = _mm256_min_ps(v, mn); mx = _mm256_max_ps(v, mx); }
        }
        uint32_t ab = hmax_u32(am);
        if (ab >= 0x7f800000u) { lb__quant_block_ref(f, rule, g, x, B, out); continue; }
        float inv, zf = 0.0f;
        if (f->fam == LB__FAM_MX) {
            int e = lb__mx_exp(ab, f->emax, lb_elem_max(f->elem), rule == LB_SCALE_CEIL);
            out[0] = (uint8_t)(e + 127);
            inv = lb__pow2f(-e);
        } else if (f->fam == LB__FAM_NV) {
            out[0] = lb__nv_scale_code(lb__bits_f32(ab), g, k == V_E2M1 ? 6.0f : 7.0f, rule == LB_SCALE_CEIL);
            inv = lb__nv_inv(out[0], g);
        } else if (k == V_UINT4) {
            inv = lb__int_asym_setup(f, hmin_ps(mn), hmax_ps(mx), out, &zf);
        } else {
            inv = lb__int_sym_setup(f, lb__bits_f32(ab), out);
        }
        __m256 vi = _mm256_set1_ps(inv), vz = _mm256_set1_ps(zf);
        for (int64_t i = 0; i < B; i += 16) {
            __m256i c0 = encode8(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), k, vz);
            __m256i c1 = encode8(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vi), k, vz);
            pack16(c0, c1, out + sb + i / 2);
        }
    }
}

static void quant_row(const lb_format *f, lb_scale_rule rule, float g, const float *x, int64_t cols, uint8_t *out)
{
    switch (kind_of(f)) {
    case V_E2M1: quant_impl(f, rule, g, x, cols, out, V_E2M1); break;
    case V_INT4: quant_impl(f, rule, g, x, cols, out, V_INT4); break;
    case V_UINT4: quant_impl(f, rule, g, x, cols, out, V_UINT4); break;
    }
}

const lb__fmt_kernels lb__mxfp4_avx2 = {quant_row, dequant_row, dot_row};
const lb__fmt_kernels lb__nv4_avx2 = {quant_row, dequant_row, dot_row};
const lb__fmt_kernels lb__int4_avx2 = {quant_row, dequant_row, dot_row};
