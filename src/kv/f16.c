/* f16.c: the "f16" storage policy (llama.cpp's default cache type): keys
 * and values rounded to IEEE half (nearest even) and widened exactly when
 * attended. Page: keys (P, hd) then values (P, hd), 4 * P * hd bytes. */
#include "kv/codec.h"

static lb_status setup(lb__kv_codec *c, const lb__kv_stage *st, const lb__kv_shape *sh, const char *opt)
{
    lb_status s = lb__kv_page_param(st, opt, &c->P);
    if (s) return s;
    c->per_token = true;
    c->k_off = 0;
    c->v_off = sizeof(uint16_t) * (size_t)(c->P * c->hd);
    c->page_bytes = 2 * c->v_off;
    return LB_OK;
}

static void encode(const lb__kv_codec *c, uint8_t *page, int64_t s0, int64_t n, const float *k, const float *v)
{
    uint16_t *kp = (uint16_t *)(page + c->k_off) + s0 * c->hd, *vp = (uint16_t *)(page + c->v_off) + s0 * c->hd;
    lb_f32_to_f16_row(k, kp, n * c->hd);
    lb_f32_to_f16_row(v, vp, n * c->hd);
}

static void decode(const lb__kv_codec *c, const uint8_t *page, int64_t s0, int64_t n, float *k, float *v)
{
    const lb__kv_kernels *K = lb__kv_kernels_active();
    if (k) K->f16((const uint16_t *)(page + c->k_off) + s0 * c->hd, n * c->hd, k);
    if (v) K->f16((const uint16_t *)(page + c->v_off) + s0 * c->hd, n * c->hd, v);
}

static const lb__kv_codec_ops codec = {setup, encode, decode};
static const lb__kv_param params[] = {LB_KV_PAGE_PARAM};
const lb__kv_policy lb__kv_policy_f16 = {
    .name = "f16", .summary = "IEEE half keys and values (llama.cpp's default cache)", .kind = LB_KV_STORE, .params = params, .n_params = 1, .codec = &codec,
    .check = lb__kv_check_page};
