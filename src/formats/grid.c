/* grid.c: a block's quantization grid held fixed, for quantizers that round
 * values one at a time after the block's scale was chosen (GPTQ, MR-GPTQ).
 *
 * lb__grid_find quantizes the block with the format's own reference codec
 * (blocks.c, any scale rule) and keeps its scale bytes; the grid is then
 *     value(code) = (val(code) - zero) * d,   d, zero = lb__block_d(header)
 * and a value x gets the code the format's encoder would give it with that
 * header: code = round(x * inv) on the element grid, inv the encoder's
 * element inverse (2^-e for MX, tensor_scale / ue4m3(scale) for NV, 1 / d
 * otherwise). So grid_find + grid_code on the same values reproduces the
 * format's quantizer byte for byte, and the packed block of any codes
 * decodes (lb_format_dequantize) to exactly grid_value of those codes.
 *
 * Symmetric INT code range: [-(2^(k-1)-1), 2^(k-1)-1] for the floor and
 * ceil rules; the full rule's range [-2^(k-1), 2^(k-1)-1] when the format's
 * own quantization of the block used code -2^(k-1) (always the case for a
 * full-rule scale of a non-zero block, never for a floor-rule one, so under
 * the MSE search the range follows the candidate the search picked). */
#include "formats/formats.h"

static uint32_t code_at(const uint8_t *p, int64_t i, int k)
{
    int64_t bit = i * k;
    int sh = (int)(bit & 7);
    uint32_t v = p[bit >> 3] >> sh;
    if (sh + k > 8) v |= (uint32_t)p[(bit >> 3) + 1] << (8 - sh);
    return v & ((1u << k) - 1);
}

static void code_put(uint8_t *p, int64_t i, int k, uint32_t c)
{
    int64_t bit = i * k;
    int sh = (int)(bit & 7);
    p[bit >> 3] |= (uint8_t)(c << sh);
    if (sh + k > 8) p[(bit >> 3) + 1] |= (uint8_t)(c >> (8 - sh));
}

float lb__grid_tensor_scale(const lb_format *f, float amax)
{
    if (f->fam != LB__FAM_NV || !(amax > 0.0f) || !isfinite(amax)) return 1.0f;
    float g = (f->elem == LB_ELEM_E2M1 ? 6.0f : 7.0f) * 448.0f / amax;
    return g < 0x1p100f ? g : 0x1p100f;
}

/* The element inverse the block's encoder multiplies x by (see blocks.c). */
static float grid_inv(const lb_format *f, float tscale, const uint8_t *hdr)
{
    switch (f->sd) {
    case LB__SD_E8M0: return lb__pow2f(127 - (int)hdr[0]);
    case LB__SD_UE4M3: return lb__nv_inv(hdr[0], tscale, lb__elem_lut(LB_ELEM_UE4M3));
    default: {
        float sd = lb__scale16_decode(f->sd, lb__rd16(hdr));
        return sd != 0.0f ? 1.0f / sd : 0.0f;
    }
    }
}

lb_status lb__grid_find(const lb_format *f, lb_scale_rule rule, float tscale, const float *x, int64_t n,
                        lb__grid *g)
{
    memset(g, 0, sizeof *g);
    if (lb__amax_bits(x, n) >= 0x7f800000u)
        return lb__err(LB_ERR_ARG, "%s: a block holds Inf or NaN, it has no grid", f->name);
    size_t bb = lb__block_bytes(f, n);
    uint8_t stack[512], *buf = bb <= sizeof stack ? stack : lb__alloc(bb);
    if (!buf) return LB_ERR_NOMEM;
    lb__quant_block_ref(f, rule, tscale, x, n, buf);
    int sb = lb__scale_bytes(f);
    memcpy(g->hdr, buf, (size_t)sb);
    g->d = lb__block_d(f, tscale, buf, &g->zero);
    g->inv = grid_inv(f, tscale, buf);
    g->qmax = f->fam == LB__FAM_TERNARY ? 1.0f : lb_elem_max(f->elem);
    g->qmin = f->asym ? 0.0f : -g->qmax;
    if (f->fam == LB__FAM_INT && !f->asym) {
        int k = lb_elem_bits(f->elem);
        uint32_t lowest = 1u << (k - 1);          /* two's complement code of -2^(k-1) */
        for (int64_t i = 0; i < n; i++)
            if (code_at(buf + sb, i, k) == lowest) { g->qmin = -g->qmax - 1.0f; break; }
    }
    if (buf != stack) LB_FREE(buf);
    return LB_OK;
}

static uint8_t nf4_nearest(float v)
{
    uint8_t c = 0;
    for (int j = 0; j < 15; j++) c += v > 0.5f * (lb__nf4_table[j] + lb__nf4_table[j + 1]);
    return c;
}

uint8_t lb__grid_code(const lb_format *f, const lb__grid *g, float x)
{
    float v = x * g->inv;
    switch (f->fam) {
    case LB__FAM_MX:
        if (f->elem == LB_ELEM_INT8) {
            uint8_t c = lb_elem_encode(LB_ELEM_INT8, v * 64.0f);
            return c == 0x80 ? 0x81 : c;
        }
        return lb_elem_encode(f->elem, v);
    case LB__FAM_NV: {
        uint8_t c = lb_elem_encode(f->elem, v);
        return f->elem == LB_ELEM_INT4 && c == 0x8 ? 0x9 : c;
    }
    case LB__FAM_NF4: return nf4_nearest(v);
    default: {
        float q = rintf(v) + g->zero;
        q = q < g->qmin ? g->qmin : q > g->qmax ? g->qmax : q;
        int k = lb_elem_bits(f->elem);
        return (uint8_t)((uint32_t)(int32_t)q & ((1u << k) - 1));
    }
    }
}

float lb__grid_value(const lb_format *f, const lb__grid *g, uint8_t code)
{
    const float *lut = f->fam == LB__FAM_NF4 ? lb__nf4_table : lb__elem_lut(f->elem);
    float vmul = f->fam == LB__FAM_MX && f->elem == LB_ELEM_INT8 ? 0x1p-6f : 1.0f;
    return (lut[code] * vmul - g->zero) * g->d;
}

float lb__grid_round(const lb_format *f, const lb__grid *g, float x)
{
    return lb__grid_value(f, g, lb__grid_code(f, g, x));
}

void lb__grid_pack(const lb_format *f, const lb__grid *g, const uint8_t *codes, int64_t n, uint8_t *out)
{
    int sb = lb__scale_bytes(f), k = lb_elem_bits(f->elem);
    memset(out, 0, lb__block_bytes(f, n));
    memcpy(out, g->hdr, (size_t)sb);
    for (int64_t i = 0; i < n; i++) code_put(out + sb, i, k, codes[i]);
}

void lb__grid_encode(const lb_format *f, const lb__grid *g, const float *v, int64_t n, uint8_t *out)
{
    int sb = lb__scale_bytes(f), k = lb_elem_bits(f->elem);
    memset(out, 0, lb__block_bytes(f, n));
    memcpy(out, g->hdr, (size_t)sb);
    for (int64_t i = 0; i < n; i++) code_put(out + sb, i, k, lb__grid_code(f, g, v[i]));
}
