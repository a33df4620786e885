/* formats_avx512.c: AVX-512 row kernels (quantize with the floor/ceil rules,
 * dequantize, dot) for MXFP4, NVFP4, NVINT4, MXINT8, NF4 and the INT4/INT8
 * group formats; dequantize and dot for MXFP8, MXFP6 and the INT2/INT3
 * groups (codes read with gathers). The same operations as formats_avx2.c
 * on 16 lanes, so one vector holds the dot product's 16 partial sums. Bit-exact with the
 * reference (src/formats/blocks.c): block headers go through the operations of the
 * shared scalar helpers (16 blocks per vector), elements through the same
 * float operations.
 *
 * 4-bit codes: element 2j is the low nibble of byte j; 16 codes (8 bytes)
 * widen to 16 int32 lanes. 16-entry tables (E2M1, NF4) decode with one
 * vpermps. NF4 encodes by counting the midpoints below v (ties to the
 * lower entry). E2M1 rounding (nearest, ties to even, saturating at 6) of
 * a = |v| without compares: s = round(2a) by adding 1.5*2^22 (whose ulp is
 * 0.5) and subtracting its bits, exact below 1 where the grid step is 0.5;
 * n = a rounded to 1 mantissa bit on the bit pattern (add 2^21 - 1 plus
 * the kept bit, shift by 22), minus 252 = the code of 1.0's exponent,
 * exact from 1 up; n <= s everywhere, so code = max(min(s, 2), min(n, 7)),
 * then the sign bit as bit 3. */
#include "kernels/formats_simd.h"
#include <immintrin.h>

/* Codes i..i+15 of a block's element bytes as int32 lanes (INT8 sign-extended).
 * V_BITS: lane l reads 4 bytes at bit kb*(i+l) (bitbase = kb*l) and shifts. */
static inline __m512i codes16(const uint8_t *p, int64_t i, vkind k, int kb, __m512i bitbase)
{
    if (is_bits(k)) {
        __m512i bit = _mm512_add_epi32(bitbase, _mm512_set1_epi32(kb * (int)i));
        __m512i w = _mm512_i32gather_epi32(_mm512_srli_epi32(bit, 3), p, 1);
        return _mm512_and_si512(_mm512_srlv_epi32(w, _mm512_and_si512(bit, _mm512_set1_epi32(7))),
                                _mm512_set1_epi32((1 << kb) - 1));
    }
    if (is8(k)) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
        return k == V_UINT8 || k == V_LUT256 ? _mm512_cvtepu8_epi32(v) : _mm512_cvtepi8_epi32(v);
    }
    __m128i v = _mm_loadl_epi64((const __m128i *)(p + i / 2)), m = _mm_set1_epi8(0x0f);
    return _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m)));
}

/* Decode tables: 16 entries in a register (E2M1, NF4) or 256 in memory (FP8). */
typedef struct tabs { __m512 t16; const float *lut; } tabs;

static inline __m512 value16(__m512i c, vkind k, __m512 z, tabs tab, int kb)
{
    switch (k) {
    case V_BITS_S: {
        __m128i sh = _mm_cvtsi32_si128(32 - kb);
        return _mm512_cvtepi32_ps(_mm512_sra_epi32(_mm512_sll_epi32(c, sh), sh));
    }
    case V_BITS_LUT: return _mm512_i32gather_ps(c, tab.lut, 4);
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
    if (k == V_LUT256 || k == V_BITS_LUT) t.lut = lb__elem_lut(f->elem);
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
    int kb = lb_elem_bits(f->elem);
    __m512i bitbase = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(kb));
    uint8_t pad[136];
    for (int64_t b = 0; b < cols / B; b++, in += bb, y += B) {
        float z, d = block_mul(f, ts, in, dtab, &z);
        __m512 vd = _mm512_set1_ps(d), vz = _mm512_set1_ps(z);
        const uint8_t *cp = block_codes(in + sb, b == cols / B - 1, k, bb - (size_t)sb, pad);
        for (int64_t i = 0; i < B; i += 16)
            _mm512_storeu_ps(y + i, _mm512_mul_ps(value16(codes16(cp, i, k, kb, bitbase), k, vz, tab, kb), vd));
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
    int kb = lb_elem_bits(f->elem);
    __m512i bitbase = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(kb));
    uint8_t pad[136];
    for (int64_t b = 0; b < cols / B; b++, in += bb, x += B) {
        float z, d = block_mul(f, ts, in, dtab, &z);
        __m512 vd = _mm512_set1_ps(d), vz = _mm512_set1_ps(z);
        const uint8_t *cp = block_codes(in + sb, b == cols / B - 1, k, bb - (size_t)sb, pad);
        for (int64_t i = 0; i < B; i += 16)
            acc = _mm512_fmadd_ps(_mm512_mul_ps(value16(codes16(cp, i, k, kb, bitbase), k, vz, tab, kb), vd),
                                  _mm512_loadu_ps(x + i), acc);
    }
    _mm512_storeu_ps(a, acc);
    return lb__reduce16(a);
}

/* ---- quantize */
static inline __m512i encode16(__m512 v, vkind k, __m512 z)
{
    __m512i c = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    if (k == V_E2M1) {   /* see e2m1 rounding in the header comment */
        __m512i b = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff));
        __m512i s = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(_mm512_castsi512_ps(b), _mm512_set1_ps(0x1.8p22f))),
                                     _mm512_set1_epi32(0x4ac00000));
        __m512i n = _mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x1fffff - 0x3f000000)),
                                     _mm512_and_si512(_mm512_srli_epi32(b, 22), one));
        n = _mm512_min_epi32(_mm512_srai_epi32(n, 22), _mm512_set1_epi32(7));
        c = _mm512_max_epi32(_mm512_min_epi32(s, _mm512_set1_epi32(2)), n);
        return _mm512_ternarylogic_epi32(c, _mm512_srli_epi32(_mm512_castps_si512(v), 28), _mm512_set1_epi32(8), 0xf8);
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

/* UE4M3 code of 16 finite s >= 0 (lb__ue4m3_encode_fast on each lane). */
static inline __m512i ue4m3_encode16(__m512 s)
{
    __m512i sub = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(s, _mm512_set1_ps(512.0f)),
                                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m512i b = _mm512_castps_si512(s);
    b = _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7ffff),
                                             _mm512_and_si512(_mm512_srli_epi32(b, 20), _mm512_set1_epi32(1))));
    __m512i c = _mm512_min_epi32(_mm512_sub_epi32(_mm512_srli_epi32(b, 20), _mm512_set1_epi32(120 << 3)),
                                 _mm512_set1_epi32(0x7e));
    c = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(s, _mm512_set1_ps(0x1p-6f), _CMP_LT_OQ), c, sub);
    return _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(s, _mm512_setzero_ps(), _CMP_GT_OQ), c);
}

/* FP16/BF16 encoding of 16 finite scales, saturating like lb__scale16_encode;
 * *sd receives the decoded values. Returns the codes in int32 lanes. */
static inline __m512i scale16_encode16(lb__sdtype sd_type, __m512 s, __m512 *sd)
{
    __m512i h, sat;
    if (sd_type == LB__SD_BF16) {
        __m512i u = _mm512_castps_si512(s);
        u = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                 _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
        h = _mm512_srli_epi32(u, 16);
        __mmask16 inf = _mm512_cmpeq_epi32_mask(_mm512_and_si512(h, _mm512_set1_epi32(0x7f80)), _mm512_set1_epi32(0x7f80));
        sat = _mm512_or_si512(_mm512_and_si512(h, _mm512_set1_epi32(0x8000)), _mm512_set1_epi32(0x7f7f));
        h = _mm512_mask_mov_epi32(h, inf, sat);
        *sd = _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
        return h;
    }
    h = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(s, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __mmask16 inf = _mm512_cmpeq_epi32_mask(_mm512_and_si512(h, _mm512_set1_epi32(0x7c00)), _mm512_set1_epi32(0x7c00));
    sat = _mm512_or_si512(_mm512_and_si512(h, _mm512_set1_epi32(0x8000)), _mm512_set1_epi32(0x7bff));
    h = _mm512_mask_mov_epi32(h, inf, sat);
    *sd = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h));
    return h;
}

/* 2^-e for 16 exponents e in [-127, 127] (lb__pow2f(-e)). */
static inline __m512 pow2_neg16(__m512i e)
{
    __m512i b = _mm512_slli_epi32(_mm512_sub_epi32(_mm512_set1_epi32(127), e), 23);
    return _mm512_castsi512_ps(_mm512_mask_mov_epi32(b, _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(127)),
                                                     _mm512_set1_epi32(1 << 22)));
}

/* MX headers of cnt <= 16 blocks: lb__mx_exp on 16 lanes. */
static inline void mx_heads16(const lb_format *f, lb_scale_rule rule, const float *x, uint8_t *out, size_t bb,
                              int64_t cnt, bool *ok, float *inv)
{
    uint32_t ab[16] = {0};
    for (int64_t j = 0; j < cnt; j++) {   /* per-block reductions beat a 16-vector transpose here */
        __m512i am = _mm512_setzero_si512();
        for (int64_t i = 0; i < f->block; i += 16)
            am = _mm512_max_epu32(am, _mm512_and_si512(_mm512_loadu_si512(x + j * f->block + i),
                                                       _mm512_set1_epi32(0x7fffffff)));
        ab[j] = (uint32_t)_mm512_reduce_max_epu32(am);
    }
    __m512i A = _mm512_loadu_si512(ab);
    __mmask16 fin = _mm512_cmplt_epu32_mask(A, _mm512_set1_epi32(0x7f800000));
    A = _mm512_maskz_mov_epi32(fin, A);
    /* floor(log2 amax): exponent field, or for subnormals that of (float)bits (exact below 2^24) - 149 */
    __m512i fl = _mm512_sub_epi32(_mm512_srli_epi32(A, 23), _mm512_set1_epi32(127));
    __m512i fs = _mm512_sub_epi32(_mm512_srli_epi32(_mm512_castps_si512(_mm512_cvtepi32_ps(A)), 23),
                                  _mm512_set1_epi32(127 + 149));
    fl = _mm512_mask_mov_epi32(fl, _mm512_cmplt_epu32_mask(A, _mm512_set1_epi32(0x00800000)), fs);
    __m512i e = _mm512_max_epi32(_mm512_sub_epi32(fl, _mm512_set1_epi32(f->emax)), _mm512_set1_epi32(-127));
    e = _mm512_mask_mov_epi32(e, _mm512_cmpeq_epi32_mask(A, _mm512_setzero_si512()), _mm512_set1_epi32(-127));
    if (rule == LB_SCALE_CEIL) {
        __mmask16 up = _mm512_cmplt_epi32_mask(e, _mm512_set1_epi32(127)) &
                       _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_castsi512_ps(A), pow2_neg16(e)),
                                          _mm512_set1_ps(lb__mx_maxval(f)), _CMP_GT_OQ);
        e = _mm512_mask_add_epi32(e, up, e, _mm512_set1_epi32(1));
    }
    e = _mm512_min_epi32(e, _mm512_set1_epi32(127));
    _mm512_mask_storeu_ps(inv, (__mmask16)((1u << cnt) - 1), pow2_neg16(e));
    uint32_t h[16];
    _mm512_storeu_si512(h, _mm512_add_epi32(e, _mm512_set1_epi32(127)));
    for (int64_t j = 0; j < cnt; j++) {
        out[j * bb] = (uint8_t)h[j];
        ok[j] = (fin >> j) & 1;
    }
}

/* Headers of up to 64 blocks. MX headers are integer work per block; NV,
 * INT and NF4 headers (divisions, FP16/BF16/UE4M3 rounding) run 16 blocks
 * per vector with the same operations as the scalar helpers. */
static inline __attribute__((always_inline)) void chunk_heads(const lb_format *f, lb_scale_rule rule, float g,
                                                              const float *x, uint8_t *out, int64_t cnt, vkind k,
                                                              const float *ue4m3, const float *invtab, bool *ok,
                                                              float *inv, float *zf)
{
    size_t bb = lb__block_bytes(f, f->block);
    if (f->fam == LB__FAM_MX) {
        memset(zf, 0, (size_t)cnt * sizeof *zf);
        for (int64_t j0 = 0; j0 < cnt; j0 += 16)
            mx_heads16(f, rule, x + j0 * f->block, out + j0 * bb, bb, lb__min64(16, cnt - j0), ok + j0, inv + j0);
        return;
    }
    uint32_t ab[64];
    float lo[64], hi[64];
    const __m512i absm = _mm512_set1_epi32(0x7fffffff);
    for (int64_t j = 0; j < cnt; j++) {
        const float *xb = x + j * f->block;
        __m512i am = _mm512_setzero_si512();
        __m512 mn = _mm512_setzero_ps(), mx = _mm512_setzero_ps();
        for (int64_t i = 0; i < f->block; i += 16) {
            __m512 v = _mm512_loadu_ps(xb + i);
            am = _mm512_max_epu32(am, _mm512_and_si512(_mm512_castps_si512(v), absm));
            if (is_asym(k)) { mn = _mm512_min_ps(v, mn); mx = _mm512_max_ps(v, mx); }
        }
        ab[j] = (uint32_t)_mm512_reduce_max_epu32(am);
        if (is_asym(k)) { lo[j] = _mm512_reduce_min_ps(mn); hi[j] = _mm512_reduce_max_ps(mx); }
    }
    float qmax = lb_elem_max(f->elem);
    for (int64_t j0 = 0; j0 < cnt; j0 += 16) {
        __mmask16 live = cnt - j0 >= 16 ? 0xffff : (__mmask16)((1u << (cnt - j0)) - 1);
        __m512i A = _mm512_maskz_loadu_epi32(live, ab + j0);
        __mmask16 fin = _mm512_mask_cmplt_epu32_mask(live, A, _mm512_set1_epi32(0x7f800000));
        __m512 a = _mm512_castsi512_ps(_mm512_maskz_mov_epi32(fin, A)), vinv, vz = _mm512_setzero_ps();
        __m512i hdr;
        if (f->fam == LB__FAM_NV) {
            __m512 s = _mm512_mul_ps(_mm512_div_ps(a, _mm512_set1_ps(k == V_E2M1 ? 6.0f : 7.0f)), _mm512_set1_ps(g));
            hdr = ue4m3_encode16(s);
            if (rule == LB_SCALE_CEIL) {
                __mmask16 up = _mm512_cmplt_epi32_mask(hdr, _mm512_set1_epi32(0x7e)) &
                               _mm512_cmp_ps_mask(_mm512_i32gather_ps(hdr, ue4m3, 4), s, _CMP_LT_OQ);
                hdr = _mm512_mask_add_epi32(hdr, up, hdr, _mm512_set1_epi32(1));
            }
            vinv = _mm512_i32gather_ps(hdr, invtab, 4);
        } else {
            __m512 s, sd, lov = _mm512_maskz_loadu_ps(fin, lo + j0);
            if (f->fam == LB__FAM_NF4) s = a;
            else if (is_asym(k)) s = _mm512_div_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(fin, hi + j0), lov),
                                                   _mm512_set1_ps(qmax));
            else s = _mm512_div_ps(a, _mm512_set1_ps(qmax));
            hdr = scale16_encode16(f->sd, s, &sd);
            vinv = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(sd, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_set1_ps(1.0f), sd);
            if (is_asym(k)) {
                vz = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), lov), vinv),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                vz = _mm512_min_ps(_mm512_max_ps(vz, _mm512_setzero_ps()), _mm512_set1_ps(qmax));
            }
        }
        uint32_t h[16];
        _mm512_storeu_si512(h, hdr);
        _mm512_mask_storeu_ps(inv + j0, live, vinv);
        _mm512_mask_storeu_ps(zf + j0, live, vz);
        for (int i = 0; i < 16 && j0 + i < cnt; i++) {
            uint8_t *o = out + (j0 + i) * bb;
            ok[j0 + i] = (fin >> i) & 1;
            if (f->fam == LB__FAM_NV) o[0] = (uint8_t)h[i];
            else lb__wr16(o, (uint16_t)h[i]);
            if (is_asym(k)) o[2] = (uint8_t)zf[j0 + i];
        }
    }
}

/* Elements of one finite block: codes = encode(x * inv). */
static inline __attribute__((always_inline)) void encode_block(const lb_format *f, const float *x, uint8_t *codes,
                                                               float inv, float zf, vkind k)
{
    __m512 vi = _mm512_set1_ps(inv), vz = _mm512_set1_ps(zf);
    int64_t B = f->block, i = 0;
    if (!is8(k)) {
        /* 32 4-bit codes -> 16 bytes: packus gives words ordered, per 128-bit
         * lane l, elements 4l..4l+3 then 16+4l..16+4l+3; madd joins word pairs
         * into bytes (lo + 16 * hi); vpmovdb, then pshufb restores byte order. */
        const __m128i order = _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
        for (; i + 32 <= B; i += 32) {
            __m512i c0 = encode16(_mm512_mul_ps(_mm512_loadu_ps(x + i), vi), k, vz);
            __m512i c1 = encode16(_mm512_mul_ps(_mm512_loadu_ps(x + i + 16), vi), k, vz);
            __m512i w = _mm512_madd_epi16(_mm512_packus_epi32(c0, c1), _mm512_set1_epi32(0x00100001));
            _mm_storeu_si128((__m128i *)(codes + i / 2), _mm_shuffle_epi8(_mm512_cvtepi32_epi8(w), order));
        }
    }
    for (; i < B; i += 16) pack16(encode16(_mm512_mul_ps(_mm512_loadu_ps(x + i), vi), k, vz), codes, i, k);
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
const lb__fmt_kernels lb__simd_bits_avx512 = {NULL, dequant_row, dot_row, NULL};
