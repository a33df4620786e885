/* bf16.c: the "bf16" storage policy: keys and values as BF16 (the shared
 * code is in half.c). */
#include "kv/codec.h"

static lb_status setup(lb__kv_codec *c, const lb__kv_stage *st, const lb__kv_shape *sh, const char *opt)
{
    return lb__kv_half_setup(c, st, opt, LB_DTYPE_BF16);
}

static const lb__kv_codec_ops codec = {setup, lb__kv_half_encode, lb__kv_half_decode};
static const lb__kv_param params[] = {LB_KV_PAGE_PARAM};
const lb__kv_policy lb__kv_policy_bf16 = {
    .name = "bf16", .summary = "BF16 keys and values", .kind = LB_KV_STORE, .params = params, .n_params = 1,
    .codec = &codec, .check = lb__kv_check_page};
