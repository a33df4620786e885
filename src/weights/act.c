/* act.c: activation quantization, the last step of a linear's input path
 * (after the input transforms, so a Hadamard-rotated input is quantized in
 * the rotated space).
 *
 * An activation format is any registry block format (int8_g32, int4_g32,
 * mxint8, mxfp8_e4m3, mxfp6_e2m3, mxfp4, nvfp4, ...), applied dynamically:
 * each token's row is quantized on its own (floor scale rule; NV formats
 * get the row's own tensor scale, i.e. per-token), blocks along the row.
 *
 *   - weights and activation pair up (both one of int8_g32[_bf16],
 *     int4_g32[_bf16], mxint8: integer elements, block 32): the row's codes
 *     become int8 in the weight's kernel order plus one FP32 scale per
 *     block (lb__iact), and the product is the integer kernel of
 *     kernels/igemm.h, which is the definition of that pair; packed
 *     sparse rows in such a format under a uniform mask pair up too, with
 *     the codes in column order (kernels/sparse.h, lb__sparse_igemm);
 *   - any other pair: quantize-dequantize simulation, x <- dequant(quant(x)),
 *     then the weight's own float product.
 *
 * BF16 ("bf16", lb__act_bf16): each value rounded to BF16 (nearest even).
 * With dense BF16 weights the product is kernels/bf16dot.h's (VDPBF16PS
 * arithmetic, linear.c's part_act_bf16); with other weights the rounded
 * row goes to the weight's own float product.
 *
 * Static scales (symmetric INT formats only): every token's block b uses one
 * fixed scale sd[b] from calibration instead of its own max |x|; values
 * beyond the calibrated range clip to +-qmax. */
#include "weights/weights.h"
#include "kernels/sparse.h"

lb_status lb__act_check(const lb_format *act, int64_t cols, const char *name)
{
    if (!act) return LB_OK;
    int64_t B = lb_format_block(act);
    if (B && cols % B)
        return lb__err(LB_ERR_ARG, "%s: activation format %s needs inputs of a multiple of %lld values, not %lld",
                       name, lb_format_name(act), (long long)B, (long long)cols);
    return LB_OK;
}

bool lb__act_pairs(const lb_weight *w, lb__iw *iw)
{
    lb__iw a;
    *iw = (lb__iw){0};
    if (!w->act || !lb__iw_init(w->act, &a)) return false;
    if (w->rep == &lb__wrep_block) return lb__iw_init(w->u.block.fmt, iw);
    /* spint: packed sparse rows under a uniform mask (kernels/sparse.h's
     * integer product; linear.c asks for the codes in column order) */
    const lb_wsparse *sp = &w->u.sparse;
    if (w->rep != &lb__wrep_sparse || !sp->fmt || !lb__iw_init(sp->fmt, iw)) return false;
    if (sp->k == w->cols / 8 * sp->p && lb__sparse_igemm_ok(iw, sp->p, w->cols)) return true;   /* not padded */
    *iw = (lb__iw){0};
    return false;
}

const lb_format lb__act_bf16 = {.name = "bf16", .desc = "BF16 activations (round to nearest even)",
                                .fam = LB__FAM_INT, .elem = LB_ELEM_INT8, .block = 0, .sd = LB__SD_BF16};

const lb_format *lb__act_find(const char *name)
{
    return name && !strcmp(name, lb__act_bf16.name) ? &lb__act_bf16 : lb_format_find(name);
}

bool lb__act_bf16_pairs(const lb_weight *w)
{
    return w->act == &lb__act_bf16 && w->rep == &lb__wrep_dense && w->dtype == LB_DTYPE_BF16;
}

size_t lb__act_row_bytes(int64_t cols) { return (size_t)cols * 2 + 64; }

void lb__act_qdq(const lb_format *act, float *x, int64_t nt, int64_t cols, uint8_t *buf)
{
    if (act == &lb__act_bf16) {
        for (int64_t i = 0; i < nt * cols; i++) x[i] = lb_bf16_to_f32(lb_f32_to_bf16(x[i]));
        return;
    }
    for (int64_t t = 0; t < nt; t++) {
        float g = 1.0f;
        lb_status s = lb_format_quantize(act, NULL, x + t * cols, 1, cols, buf, &g);
        if (!s) s = lb_format_dequantize(act, buf, g, 1, cols, x + t * cols);
        LB_ASSERT(!s);   /* shapes were checked when the format was set */
    }
}

void lb__act_codes(const lb_format *act, int wbits, const float *x, int64_t nt, int64_t xs, int64_t cols,
                   uint8_t *buf, int8_t *q, int64_t qs, float *d, int64_t ds)
{
    lb__iw a;
    LB_ASSERT(lb__iw_init(act, &a));
    const float *lut = lb__elem_lut(act->elem);
    for (int64_t t = 0; t < nt; t++) {
        float g = 1.0f;
        lb_status s = lb_format_quantize(act, NULL, x + t * xs, 1, cols, buf, &g);
        LB_ASSERT(!s);
        for (int64_t b = 0; b < cols / LB_IG_BLOCK; b++) {
            const uint8_t *blk = buf + (size_t)b * a.bb, *c = blk + a.sb;
            int8_t v[LB_IG_BLOCK];
            for (int i = 0; i < LB_IG_BLOCK; i++)
                v[i] = a.bits == 8 ? (int8_t)c[i] : (int8_t)lut[(c[i / 2] >> (4 * (i & 1))) & 15];
            lb__iact_order(wbits, v, q + t * qs + b * LB_IG_BLOCK);
            d[t * ds + b] = lb__iw_scale(&a, blk);
        }
    }
}

bool lb__act_static_ok(const lb_format *act)
{
    return act && act->fam == LB__FAM_INT && !act->asym && lb_format_block(act) > 0;
}

float lb__act_static_scale(const lb_format *act, float amax)
{
    uint8_t hdr[4];
    float z;
    LB_ASSERT(lb__act_static_ok(act));
    lb__int_sym_setup(act, amax, hdr);
    return lb__block_d(act, 1.0f, hdr, &z);
}

/* Code of x with inverse scale inv (the format's rounding and clamp). */
static inline int8_t static_code(float x, float inv, float qmax)
{
    float q = rintf(x * inv);
    return (int8_t)(q < -qmax ? -qmax : q > qmax ? qmax : q);
}

void lb__act_qdq_static(const lb_format *act, const float *sd, float *x, int64_t nt, int64_t cols)
{
    int64_t B = lb_format_block(act);
    float qmax = lb_elem_max(act->elem);
    LB_ASSERT(lb__act_static_ok(act));
    for (int64_t t = 0; t < nt; t++)
        for (int64_t b = 0; b < cols / B; b++) {
            float *xb = x + t * cols + b * B, inv = sd[b] > 0.0f ? 1.0f / sd[b] : 0.0f;
            bool fin = lb__amax_bits(xb, B) < 0x7f800000u;
            for (int64_t i = 0; i < B; i++) xb[i] = fin ? (float)static_code(xb[i], inv, qmax) * sd[b] : NAN;
        }
}

void lb__act_codes_static(const lb_format *act, const float *sd, int wbits, const float *x, int64_t nt, int64_t xs,
                          int64_t cols, int8_t *q, int64_t qs, float *d, int64_t ds)
{
    float qmax = lb_elem_max(act->elem);
    LB_ASSERT(lb__act_static_ok(act) && lb_format_block(act) == LB_IG_BLOCK);
    for (int64_t t = 0; t < nt; t++)
        for (int64_t b = 0; b < cols / LB_IG_BLOCK; b++) {
            const float *xb = x + t * xs + b * LB_IG_BLOCK;
            float inv = sd[b] > 0.0f ? 1.0f / sd[b] : 0.0f;
            bool fin = lb__amax_bits(xb, LB_IG_BLOCK) < 0x7f800000u;
            int8_t v[LB_IG_BLOCK];
            for (int i = 0; i < LB_IG_BLOCK; i++) v[i] = fin ? static_code(xb[i], inv, qmax) : 0;
            lb__iact_order(wbits, v, q + t * qs + b * LB_IG_BLOCK);
            d[t * ds + b] = fin ? sd[b] : NAN;
        }
}
