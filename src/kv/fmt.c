/* fmt.c: the "fmt" storage policy: keys and values quantized per token (and
 * head) with a format of lowbit's registry (int8_ch, nvfp4, mxfp4, mxint8,
 * mxfp8_e4m3, ...), each head's row of head_dim values packed as
 * lb_format_quantize packs one row; NV formats keep their per-row tensor
 * scale (F32) in the page. Block formats need head_dim to be a multiple of
 * their block (nvfp4: 16, MX: 32): tiny heads take the per-row formats
 * (int8_ch, int4_ch, ...). Optional full-precision window of R tokens and
 * Hadamard rotation (rot). Page: key rows (P, row_bytes), value rows, then
 * the tensor scales (P, 2) when the format has one. */
#include "kv/codec.h"

static const lb_format *fmt_of(const lb__kv_codec *c) { return c->fmt; }

static lb_status setup(lb__kv_codec *c, const lb__kv_stage *st, const lb__kv_shape *sh, const char *opt)
{
    lb_status s = lb__kv_page_param(st, opt, &c->P);
    if (s) return s;
    const lb_format *f = lb_format_find(lb__kv_get_name(st, "format"));
    int64_t blk = lb_format_block(f);
    if (blk > 0 && c->hd % blk)
        return lb__err(LB_ERR_ARG, "%s: fmt format=%s: head_dim %lld is not a multiple of its block %lld (use a "
                       "per-row format such as int8_ch)", opt, lb_format_name(f), (long long)c->hd, (long long)blk);
    c->fmt = f;
    c->per_token = true;
    c->residual = (int64_t)lb__kv_get(st, "residual");
    c->rot = lb__kv_rot_code(lb__kv_get_name(st, "rot"));
    size_t rb = lb_format_row_bytes(f, c->hd);
    c->k_off = 0;
    c->v_off = rb * (size_t)c->P;
    c->m_off = 2 * c->v_off;
    c->page_bytes = c->m_off + (lb_format_uses_tensor_scale(f) ? sizeof(float) * (size_t)(2 * c->P) : 0);
    c->page_bytes = (c->page_bytes + 3) & ~(size_t)3;
    return LB_OK;
}

static void encode(const lb__kv_codec *c, uint8_t *page, int64_t s0, int64_t n, const float *k, const float *v)
{
    const lb_format *f = fmt_of(c);
    size_t rb = lb_format_row_bytes(f, c->hd);
    bool ts = lb_format_uses_tensor_scale(f);
    float *tsc = (float *)(void *)(page + c->m_off), one;
    for (int64_t t = 0; t < n; t++) {
        int64_t s = s0 + t;
        lb_status e = lb_format_quantize(f, NULL, k + t * c->hd, 1, c->hd, page + c->k_off + (size_t)s * rb,
                                         ts ? &tsc[2 * s] : &one);
        if (!e) e = lb_format_quantize(f, NULL, v + t * c->hd, 1, c->hd, page + c->v_off + (size_t)s * rb,
                                       ts ? &tsc[2 * s + 1] : &one);
        LB_ASSERT(!e);
    }
}

static void decode(const lb__kv_codec *c, const uint8_t *page, int64_t s0, int64_t n, float *k, float *v)
{
    const lb_format *f = fmt_of(c);
    size_t rb = lb_format_row_bytes(f, c->hd);
    bool ts = lb_format_uses_tensor_scale(f);
    const float *tsc = (const float *)(const void *)(page + c->m_off);
    if (!ts) {   /* one call for the n rows: they are contiguous */
        lb_status e = LB_OK;
        if (k) e = lb_format_dequantize(f, page + c->k_off + (size_t)s0 * rb, 1, n, c->hd, k);
        if (v && !e) e = lb_format_dequantize(f, page + c->v_off + (size_t)s0 * rb, 1, n, c->hd, v);
        LB_ASSERT(!e);
        return;
    }
    for (int64_t t = 0; t < n; t++) {
        int64_t s = s0 + t;
        lb_status e = LB_OK;
        if (k) e = lb_format_dequantize(f, page + c->k_off + (size_t)s * rb, ts ? tsc[2 * s] : 1, 1, c->hd, k + t * c->hd);
        if (v && !e)
            e = lb_format_dequantize(f, page + c->v_off + (size_t)s * rb, ts ? tsc[2 * s + 1] : 1, 1, c->hd, v + t * c->hd);
        LB_ASSERT(!e);
    }
}

static lb_status check(const lb__kv_stage *st, const lb__kv_spec *spec, const lb__kv_shape *sh, const char *opt)
{
    const char *name = lb__kv_get_name(st, "format");
    lb_status s = lb__kv_check_page(st, spec, sh, opt);
    if (s) return s;
    if (!strcmp(name, "ternary"))
        return lb__err(LB_ERR_ARG, "%s: fmt format=%s cannot be a cache format (a weight format without a fitting "
                       "scale per token; use int8_ch, int4_ch, nvfp4, mxfp4, mxint8, mxfp8_e4m3, int*_g*)", opt, name);
    return LB_OK;
}

static const lb__kv_codec_ops codec = {setup, encode, decode};
static const lb__kv_param params[] = {
    {"format", "registry format of each token's key and value row", 0, 0, 0, false, false, "@format", "int8_ch"},
    {"residual", "full-precision window of recent tokens", 0, 0, 1 << 20, true, false, NULL, NULL},
    LB_KV_ROT_PARAM,
    LB_KV_PAGE_PARAM,
};
const lb__kv_policy lb__kv_policy_fmt = {
    .name = "fmt", .summary = "keys and values per token in a registry format (int8_ch, nvfp4, mxfp4, mxint8, ...)",
    .kind = LB_KV_STORE, .params = params, .n_params = 4, .codec = &codec, .check = check};
