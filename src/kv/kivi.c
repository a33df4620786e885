/* kivi.c: the "kivi" storage policy (KIVI, Liu et al. 2024): keys quantized
 * per channel in groups of G tokens along the sequence, values per token in
 * groups of Gv = min(G, head_dim) channels, both asymmetric min-max at b bits:
 *   s = (max - min) / (2^b - 1),  q = clamp(round((x - min) / s), 0, 2^b - 1),
 *   x^ = q * s + min   (s and min stored as F16, quantized with their F16 values)
 * plus a full-precision window of the R most recent tokens (defaults G = 32,
 * R = 128, R a multiple of G). A page is one key group: P = G tokens. The
 * window holds R .. R + G - 1 tokens: the oldest G leave it together once it
 * holds R + G (keys need a whole group). Tiny heads: stories260K (head_dim 8)
 * and tinystories-656k (16) get value groups of head_dim (one scale per token
 * and head); key groups run along tokens and fit any head_dim.
 *
 * Page: key codes channel-major (hd, P) as one b-bit stream (a channel's
 * group of P codes is contiguous), value codes token-major (P, hd) likewise,
 * key scale and min (hd each, F16), value scale and min (hd / Gv, P each, F16;
 * group-major so a group's scales along the tokens are contiguous).
 * rot=k|v|kv stores Hadamard-rotated keys and/or values (cache.c).
 *
 * Attention scores and sums on the codes (the fused kernels of codec.h): a
 * key group shares its per-channel scale s and min m, so
 * q.k_t = sum_c (q_c s_c) code_tc + sum_c q_c m_c, and a value row
 * w_t v_t = (w_t s_t) code_t + w_t m_t; no page is decoded to attend. */
#include "kv/codec.h"
#include <math.h>

#define KIVI_MAX_HD LB_KV_KIVI_MAX_HD

static void score(const lb__kv_codec *c, const uint8_t *page, const float *q, int64_t nq, float *sc, int64_t scs);
static void accum(const lb__kv_codec *c, const uint8_t *page, int64_t n, const float *w, int64_t ws, int64_t nq,
                  float *o);

static lb_status setup(lb__kv_codec *c, const lb__kv_stage *st, const lb__kv_shape *sh, const char *opt)
{
    int64_t hd = c->hd, G = (int64_t)lb__kv_get(st, "group");
    c->bits = (int)lb__kv_get(st, "bits");
    c->group = (int)lb__min64(G, hd);
    c->P = G;
    c->residual = (int64_t)lb__kv_get(st, "residual");
    c->rot = lb__kv_rot_code(lb__kv_get_name(st, "rot"));
    if (hd % 8 || hd > KIVI_MAX_HD || hd % c->group || G * (hd / c->group) > KIVI_MAX_HD)
        return lb__err(LB_ERR_ARG, "%s: kivi: head_dim %lld must be a multiple of 8, at most %d, and of the value group %d",
                       opt, (long long)hd, KIVI_MAX_HD, c->group);
    size_t codes = (size_t)(c->P * hd * c->bits / 8);
    c->per_token = false;
    c->k_off = 0;
    c->v_off = codes;
    c->m_off = 2 * codes;
    c->page_bytes = 2 * codes + sizeof(uint16_t) * (size_t)(2 * hd + 2 * c->P * (hd / c->group));
    c->score = score;
    c->accum = accum;
    return LB_OK;
}

static void put_code(uint8_t *p, int64_t i, int bits, unsigned q)
{
    int64_t bit = i * bits;
    p[bit >> 3] |= (uint8_t)(q << (bit & 7));
    if ((bit & 7) + bits > 8) p[(bit >> 3) + 1] |= (uint8_t)(q >> (8 - (bit & 7)));
}

void lb__kivi_quant_group(const float *x, int64_t n, int64_t stride, int bits, uint16_t *s16, uint16_t *m16,
                          uint8_t *codes, int64_t first, int64_t cstride)
{
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i * stride];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    float levels = (float)((1 << bits) - 1);
    *s16 = lb_f32_to_f16((hi - lo) / levels);
    *m16 = lb_f32_to_f16(lo);
    float s = lb_f16_to_f32(*s16), m = lb_f16_to_f32(*m16);
    for (int64_t i = 0; i < n; i++) {
        float q = s > 0 ? nearbyintf((x[i * stride] - m) / s) : 0;
        q = q < 0 ? 0 : q > levels ? levels : q;
        put_code(codes, first + i * cstride, bits, (unsigned)q);
    }
}

static uint16_t *meta(const lb__kv_codec *c, const uint8_t *page) { return (uint16_t *)(page + c->m_off); }

static void encode(const lb__kv_codec *c, uint8_t *page, int64_t s0, int64_t n, const float *k, const float *v)
{
    int64_t hd = c->hd, P = c->P, ng = hd / c->group;
    LB_ASSERT(s0 == 0 && n == P);
    memset(page, 0, c->m_off);
    uint16_t *ks = meta(c, page), *km = ks + hd, *vs = km + hd, *vm = vs + P * ng;
    for (int64_t ch = 0; ch < hd; ch++)   /* keys: channel ch over the P tokens; code (t, ch) at ch * P + t */
        lb__kivi_quant_group(k + ch, P, hd, c->bits, &ks[ch], &km[ch], page + c->k_off, ch * P, 1);
    for (int64_t t = 0; t < P; t++)
        for (int64_t g = 0; g < ng; g++)
            lb__kivi_quant_group(v + t * hd + g * c->group, c->group, 1, c->bits, &vs[g * P + t],
                                 &vm[g * P + t], page + c->v_off, t * hd + g * c->group, 1);
}

static int log2_of(int64_t x)
{
    int e = 0;
    while (((int64_t)1 << e) < x) e++;
    return e;
}

static void decode(const lb__kv_codec *c, const uint8_t *page, int64_t s0, int64_t n, float *k, float *v)
{
    const lb__kv_kernels *K = lb__kv_kernels_active();
    int64_t hd = c->hd, P = c->P, ng = hd / c->group, row = hd * c->bits / 8;
    const uint16_t *ks = meta(c, page), *km = ks + hd, *vs = km + hd, *vm = vs + P * ng;
    float s[KIVI_MAX_HD], m[KIVI_MAX_HD];
    if (k) {   /* channel by channel (P codes, one scale and min), then transposed */
        float col[KIVI_MAX_HD];
        int psh = log2_of(P);
        K->f16(ks, hd, s);
        K->f16(km, hd, m);
        for (int64_t ch = 0; ch < hd; ch++) {
            K->dq(page + c->k_off + ch * P * c->bits / 8, c->bits, P, s + ch, m + ch, psh, col);
            for (int64_t t = 0; t < n; t++) k[t * hd + ch] = col[s0 + t];
        }
    }
    if (v) {
        int gsh = log2_of(c->group);
        float vsf[KIVI_MAX_HD], vmf[KIVI_MAX_HD];   /* the tokens' value scales and mins, token by token */
        for (int64_t t = 0; t < n; t++)
            for (int64_t g = 0; g < ng; g++) {
                vsf[t * ng + g] = lb_f16_to_f32(vs[g * P + s0 + t]);
                vmf[t * ng + g] = lb_f16_to_f32(vm[g * P + s0 + t]);
            }
        for (int64_t t = 0; t < n; t++)
            K->dq(page + c->v_off + (s0 + t) * row, c->bits, hd, vsf + t * ng, vmf + t * ng, gsh, v + t * hd);
    }
}

static void score(const lb__kv_codec *c, const uint8_t *page, const float *q, int64_t nq, float *sc, int64_t scs)
{
    const uint16_t *ks = meta(c, page);
    lb__kv_kernels_active()->kscore(page + c->k_off, c->bits, c->P, c->hd, ks, ks + c->hd, q, nq, sc, scs);
}

static void accum(const lb__kv_codec *c, const uint8_t *page, int64_t n, const float *w, int64_t ws, int64_t nq,
                  float *o)
{
    const uint16_t *vs = meta(c, page) + 2 * c->hd, *vm = vs + c->P * (c->hd / c->group);
    lb__kv_kernels_active()->vacc(page + c->v_off, c->bits, n, c->hd, log2_of(c->group), vs, vm, c->P, w, ws, nq, o);
}

static lb_status check(const lb__kv_stage *st, const lb__kv_spec *spec, const lb__kv_shape *sh, const char *opt)
{
    int64_t G = (int64_t)lb__kv_get(st, "group"), R = (int64_t)lb__kv_get(st, "residual"), b = (int64_t)lb__kv_get(st, "bits");
    if (b != 2 && b != 3 && b != 4 && b != 8)
        return lb__err(LB_ERR_ARG, "%s: kivi bits=%lld: KIVI stores 2, 3, 4 or 8 bits", opt, (long long)b);
    if (!lb__is_pow2(G)) return lb__err(LB_ERR_ARG, "%s: kivi group=%lld is not a power of two", opt, (long long)G);
    if (R % G)
        return lb__err(LB_ERR_ARG, "%s: kivi residual=%lld is not a multiple of group=%lld (keys leave the window a "
                       "group at a time)", opt, (long long)R, (long long)G);
    if (sh && !lb__is_pow2(lb__min64(G, sh->head_dim)))
        return lb__err(LB_ERR_ARG, "%s: kivi: value group min(group, head_dim %lld) is not a power of two", opt,
                       (long long)sh->head_dim);
    return LB_OK;
}

static const lb__kv_codec_ops codec = {setup, encode, decode};
static const lb__kv_param params[] = {
    {"bits", "code width: 2, 3, 4 or 8", 4, 2, 8, true, false, NULL, NULL},
    {"group", "tokens per key group (per channel) and channels per value group (capped at head_dim)", 32, 8, 256,
     true, false, NULL, NULL},
    {"residual", "full-precision window of recent tokens (a multiple of group)", 128, 0, 1 << 20, true, false, NULL,
     NULL},
    LB_KV_ROT_PARAM,
};
const lb__kv_policy lb__kv_policy_kivi = {
    .name = "kivi", .summary = "KIVI: keys per channel, values per token, asymmetric min-max, full-precision window",
    .kind = LB_KV_STORE, .params = params, .n_params = 4, .codec = &codec, .check = check};
