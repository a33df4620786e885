/* half.c: what the "f16" and "bf16" storage policies share (each policy
 * is its own file and registry row): keys and values rounded to 16 bits
 * (nearest even) and widened exactly when attended. Page: keys (P, hd) then
 * values (P, hd), 4 * P * hd bytes. */
#include "kv/codec.h"

lb_status lb__kv_half_setup(lb__kv_codec *c, const lb__kv_stage *st, const char *opt, lb_dtype dt)
{
    lb_status s = lb__kv_page_param(st, opt, &c->P);
    if (s) return s;
    c->half = dt;
    c->per_token = true;
    c->k_off = 0;
    c->v_off = sizeof(uint16_t) * (size_t)(c->P * c->hd);
    c->page_bytes = 2 * c->v_off;
    return LB_OK;
}

void lb__kv_half_encode(const lb__kv_codec *c, uint8_t *page, int64_t s0, int64_t n, const float *k, const float *v)
{
    uint16_t *kp = (uint16_t *)(page + c->k_off) + s0 * c->hd, *vp = (uint16_t *)(page + c->v_off) + s0 * c->hd;
    void (*to)(const float *, uint16_t *, int64_t) = c->half == LB_DTYPE_BF16 ? lb_f32_to_bf16_row : lb_f32_to_f16_row;
    to(k, kp, n * c->hd);
    to(v, vp, n * c->hd);
}

void lb__kv_half_decode(const lb__kv_codec *c, const uint8_t *page, int64_t s0, int64_t n, float *k, float *v)
{
    const lb__kv_kernels *K = lb__kv_kernels_active();
    lb__kv_widen_fn from = c->half == LB_DTYPE_BF16 ? K->bf16 : K->f16;
    if (k) from((const uint16_t *)(page + c->k_off) + s0 * c->hd, n * c->hd, k);
    if (v) from((const uint16_t *)(page + c->v_off) + s0 * c->hd, n * c->hd, v);
}
