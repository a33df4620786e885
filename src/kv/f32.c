/* f32.c: the "f32" storage policy: keys and values as F32, the engine's
 * original cache (bit-identical logits). Page: keys (P, hd) then values
 * (P, hd), 8 * P * hd bytes. */
#include "kv/codec.h"

static lb_status setup(lb__kv_codec *c, const lb__kv_stage *st, const lb__kv_shape *sh, const char *opt)
{
    lb_status s = lb__kv_page_param(st, opt, &c->P);
    if (s) return s;
    c->per_token = true;
    c->k_off = 0;
    c->v_off = sizeof(float) * (size_t)(c->P * c->hd);
    c->page_bytes = 2 * c->v_off;
    return LB_OK;
}

static void encode(const lb__kv_codec *c, uint8_t *page, int64_t s0, int64_t n, const float *k, const float *v)
{
    size_t row = sizeof(float) * (size_t)c->hd;
    memcpy(page + c->k_off + (size_t)s0 * row, k, row * (size_t)n);
    memcpy(page + c->v_off + (size_t)s0 * row, v, row * (size_t)n);
}

static void decode(const lb__kv_codec *c, const uint8_t *page, int64_t s0, int64_t n, float *k, float *v)
{
    size_t row = sizeof(float) * (size_t)c->hd;
    if (k) memcpy(k, page + c->k_off + (size_t)s0 * row, row * (size_t)n);
    if (v) memcpy(v, page + c->v_off + (size_t)s0 * row, row * (size_t)n);
}

static const lb__kv_codec_ops codec = {setup, encode, decode};
static const lb__kv_param params[] = {LB_KV_PAGE_PARAM};
const lb__kv_policy lb__kv_policy_f32 = {
    .name = "f32", .summary = "F32 keys and values: the engine's exact cache", .kind = LB_KV_STORE, .params = params, .n_params = 1, .codec = &codec,
    .check = lb__kv_check_page};
