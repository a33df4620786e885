/* f16.c: the "f16" storage policy (llama.cpp's default cache type): keys
 * and values as IEEE half (the shared code is in half.c). */
#include "kv/codec.h"

static lb_status setup(lb__kv_codec *c, const lb__kv_stage *st, const lb__kv_shape *sh, const char *opt)
{
    return lb__kv_half_setup(c, st, opt, LB_DTYPE_F16);
}

static const lb__kv_codec_ops codec = {setup, lb__kv_half_encode, lb__kv_half_decode};
static const lb__kv_param params[] = {LB_KV_PAGE_PARAM};
const lb__kv_policy lb__kv_policy_f16 = {
    .name = "f16", .summary = "IEEE half keys and values (llama.cpp's default cache)", .kind = LB_KV_STORE,
    .params = params, .n_params = 1, .codec = &codec, .check = lb__kv_check_page};
