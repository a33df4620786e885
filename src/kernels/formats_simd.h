/* formats_simd.h: the part of the SIMD format kernels that does not depend
 * on the instruction set, included by formats_avx2.c and formats_avx512.c:
 * the element kinds, and the row entry points that pick one specialised
 * copy of each kernel per kind (the files define dequant_impl, dot_impl and
 * quant_impl with these signatures). */
#ifndef LB_FORMATS_SIMD_H
#define LB_FORMATS_SIMD_H

#include "formats/formats.h"

/* V_BITS_*: 2-, 3- and 6-bit codes read with a gather (dequantize/dot only):
 * signed INT, asymmetric UINT, or FP6 through its 64-entry table. */
typedef enum vkind {
    V_E2M1, V_NF4, V_INT4, V_UINT4, V_INT8, V_UINT8, V_MXINT8, V_LUT256, V_BITS_S, V_BITS_U, V_BITS_LUT
} vkind;

static inline vkind kind_of(const lb_format *f)
{
    int kb = lb_elem_bits(f->elem);
    if (kb != 4 && kb != 8) return f->fam == LB__FAM_MX ? V_BITS_LUT : f->asym ? V_BITS_U : V_BITS_S;
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
static inline bool is_bits(vkind k) { return k == V_BITS_S || k == V_BITS_U || k == V_BITS_LUT; }

/* The code bytes of block b of a row, or, for gathered codes in the last
 * block, a copy padded so that 4-byte reads never pass the row's end. */
static inline const uint8_t *block_codes(const uint8_t *codes, bool last, vkind k, size_t n, uint8_t *pad)
{
    if (!is_bits(k) || !last) return codes;
    memcpy(pad, codes, n);
    memset(pad + n, 0, 4);
    return pad;
}

static inline void dequant_impl(const lb_format *f, float ts, const uint8_t *in, int64_t cols, float *y, vkind k);
static inline float dot_impl(const lb_format *f, float ts, const uint8_t *in, const float *x, int64_t cols, vkind k);
/* Per-ISA pieces of the quantizer: the headers of cnt consecutive blocks
 * (ok[j] false for a block holding Inf/NaN; inv[j], zf[j] its element
 * inverse and zero point), the elements of one block, the NV inverse table. */
static inline void chunk_heads(const lb_format *f, lb_scale_rule rule, float g, const float *x, uint8_t *out,
                               int64_t cnt, vkind k, const float *ue4m3, const float *invtab, bool *ok, float *inv,
                               float *zf);
static inline void encode_block(const lb_format *f, const float *x, uint8_t *codes, float inv, float zf, vkind k);
static void nv_table(const float *ue4m3, float v, bool inverse, float *tab);

/* Two passes over chunks of blocks: all headers first, then all elements, so
 * the scalar scale arithmetic of neighbouring blocks overlaps instead of
 * forming one long dependency chain per block. */
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
        chunk_heads(f, rule, g, x + c0 * B, out + c0 * bb, cnt, k, ue4m3, invtab, ok, inv, zf);
        for (int64_t j = 0; j < cnt; j++) {
            if (ok[j]) encode_block(f, x + (c0 + j) * B, out + (c0 + j) * bb + sb, inv[j], zf[j], k);
            else lb__quant_block_ref(f, rule, g, x + (c0 + j) * B, B, out + (c0 + j) * bb);
        }
    }
}

static void dequant_row(const lb_format *f, float ts, const uint8_t *in, int64_t cols, float *y)
{
    switch (kind_of(f)) {
    case V_E2M1: dequant_impl(f, ts, in, cols, y, V_E2M1); return;
    case V_NF4: dequant_impl(f, ts, in, cols, y, V_NF4); return;
    case V_INT4: dequant_impl(f, ts, in, cols, y, V_INT4); return;
    case V_UINT4: dequant_impl(f, ts, in, cols, y, V_UINT4); return;
    case V_INT8: dequant_impl(f, ts, in, cols, y, V_INT8); return;
    case V_UINT8: dequant_impl(f, ts, in, cols, y, V_UINT8); return;
    case V_MXINT8: dequant_impl(f, ts, in, cols, y, V_MXINT8); return;
    case V_LUT256: dequant_impl(f, ts, in, cols, y, V_LUT256); return;
    case V_BITS_S: dequant_impl(f, ts, in, cols, y, V_BITS_S); return;
    case V_BITS_U: dequant_impl(f, ts, in, cols, y, V_BITS_U); return;
    case V_BITS_LUT: dequant_impl(f, ts, in, cols, y, V_BITS_LUT); return;
    }
}

static float dot_row(const lb_format *f, float ts, const uint8_t *in, const float *x, int64_t cols)
{
    switch (kind_of(f)) {
    case V_E2M1: return dot_impl(f, ts, in, x, cols, V_E2M1);
    case V_NF4: return dot_impl(f, ts, in, x, cols, V_NF4);
    case V_INT4: return dot_impl(f, ts, in, x, cols, V_INT4);
    case V_UINT4: return dot_impl(f, ts, in, x, cols, V_UINT4);
    case V_INT8: return dot_impl(f, ts, in, x, cols, V_INT8);
    case V_UINT8: return dot_impl(f, ts, in, x, cols, V_UINT8);
    case V_MXINT8: return dot_impl(f, ts, in, x, cols, V_MXINT8);
    case V_BITS_S: return dot_impl(f, ts, in, x, cols, V_BITS_S);
    case V_BITS_U: return dot_impl(f, ts, in, x, cols, V_BITS_U);
    case V_BITS_LUT: return dot_impl(f, ts, in, x, cols, V_BITS_LUT);
    default: return dot_impl(f, ts, in, x, cols, V_LUT256);
    }
}

/* FP8 and the V_BITS kinds have no SIMD quantizer: their kernel table has quant = NULL. */
static void quant_row(const lb_format *f, lb_scale_rule rule, float g, const float *x, int64_t cols, uint8_t *out)
{
    switch (kind_of(f)) {
    case V_E2M1: quant_impl(f, rule, g, x, cols, out, V_E2M1); return;
    case V_NF4: quant_impl(f, rule, g, x, cols, out, V_NF4); return;
    case V_INT4: quant_impl(f, rule, g, x, cols, out, V_INT4); return;
    case V_UINT4: quant_impl(f, rule, g, x, cols, out, V_UINT4); return;
    case V_INT8: quant_impl(f, rule, g, x, cols, out, V_INT8); return;
    case V_UINT8: quant_impl(f, rule, g, x, cols, out, V_UINT8); return;
    default: quant_impl(f, rule, g, x, cols, out, V_MXINT8); return;
    }
}

#endif
