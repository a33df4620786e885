/* thinkv.c: the "thinkv" storage policy, ThinKV-style mixed precision: no
 * token is evicted, each is stored in one of two registry formats (hi for the
 * important tokens, lo for the rest) chosen by the per-token score of an
 * eviction scorer (score=snapkv, knorm, ...; higher = more important).
 *
 * A page of P tokens holds exactly Q = round(frac P) tokens in hi and P - Q
 * in lo (the P slots of the page ranked by score: the Q best are hi; ties to
 * the later slot, NaN last), so a page's bytes are fixed and the bytes held
 * follow the mix. The choice is made per page, not per head (a per-head top-k
 * would need pages of variable size). Page layout: key rows then value rows
 * of the Q hi slots (lb_format_row_bytes(hi, hd) each), the same of the P - Q
 * lo slots, the NV tensor scales (F32, key then value) of the hi and the lo
 * slots when a format has one, then a bitmap of P bits (bit s: slot s is hi);
 * slot s's row index inside its tier = how many slots before it share it.
 *
 * When: every token stays in the F32 window (codec->hold) until the first
 * compression (lb__kv_compress: after the prompt in `lowbit run` and
 * `lowbit eval kv`), which scores every held token and re-stores the head
 * from the exact F32 values with the chosen tiers (lb__kv_retier). Later
 * pages (decode) leave the R-token window (residual) as KIVI's do, a whole
 * page at once, tiered by the codec's own rule, Knorm within the page (the Q
 * keys of smallest norm hi), until the next lb__kv_compress re-decides them
 * from their stored values. docs/kv.md. */
#include "kv/codec.h"
#include "kv/evict.h"
#include <math.h>
#include <stdlib.h>

typedef struct tk_layout {
    const lb_format *f[2];   /* lo, hi (lo NULL when KIVI) */
    size_t rb[2];            /* row bytes */
    int64_t n[2];            /* slots per page: P - Q, Q */
    size_t rows[2], ts[2], map;
    int kb;                  /* lobits: lo tokens KIVI-style at kb bits (0: the lo format) */
    size_t kcodes;           /* KIVI: bytes of the key codes (= of the value codes) */
} tk_layout;

#define TK_MAX_HD 512
#define TK_MAX_P 1024

/* codec fields: fmt = hi format, bits = lo format's registry index (-1 with
 * KIVI lo), half = (lb_dtype)lobits, group = Q. */

static int64_t hi_slots(const lb__kv_codec *c) { return c->group; }   /* Q is kept in codec->group */

static void layout(const lb__kv_codec *c, tk_layout *L)
{
    L->kb = (int)c->half;
    const lb_format *f[2] = {L->kb ? NULL : lb_format_at(c->bits), c->fmt};
    size_t off = 0;
    L->n[1] = hi_slots(c);
    L->n[0] = c->P - L->n[1];
    L->kcodes = (size_t)(L->n[0] * c->hd * L->kb / 8);
    for (int t = 1; t >= 0; t--) {
        L->f[t] = f[t];
        L->rows[t] = off;
        if (!f[t]) {   /* KIVI lo: key codes, value codes, key scale/min (hd each), value scale/min (n each), F16 */
            L->rb[t] = 0;
            off += 2 * L->kcodes + sizeof(uint16_t) * (size_t)(2 * c->hd + 2 * L->n[0]);
            continue;
        }
        L->rb[t] = lb_format_row_bytes(f[t], c->hd);
        off += 2 * L->rb[t] * (size_t)L->n[t];
    }
    off = (off + 3) & ~(size_t)3;
    for (int t = 1; t >= 0; t--) {
        L->ts[t] = off;
        if (f[t] && lb_format_uses_tensor_scale(f[t])) off += sizeof(float) * 2 * (size_t)L->n[t];
    }
    L->map = off;
}

/* The hi format is codec->fmt, the lo format the registry's entry number
 * codec->bits (lb_format_at). */
static int format_index(const lb_format *f)
{
    for (int i = 0; i < lb_format_count(); i++)
        if (lb_format_at(i) == f) return i;
    return -1;
}

static lb_status setup(lb__kv_codec *c, const lb__kv_stage *st, const lb__kv_shape *sh, const char *opt)
{
    lb_status s = lb__kv_page_param(st, opt, &c->P);
    if (s) return s;
    int kb = (int)lb__kv_get(st, "lobits");
    const lb_format *f[2] = {kb ? NULL : lb_format_find(lb__kv_get_name(st, "lo")),
                             lb_format_find(lb__kv_get_name(st, "hi"))};
    if (kb && (c->hd % 8 || c->hd > TK_MAX_HD))
        return lb__err(LB_ERR_ARG, "%s: thinkv lobits=%d: head_dim %lld must be a multiple of 8 and at most %d", opt,
                       kb, (long long)c->hd, TK_MAX_HD);
    for (int t = 0; t < 2; t++) {
        if (!f[t]) continue;
        int64_t blk = lb_format_block(f[t]);
        if (blk > 0 && c->hd % blk)
            return lb__err(LB_ERR_ARG, "%s: thinkv %s=%s: head_dim %lld is not a multiple of its block %lld (use a "
                           "per-row format such as int8_ch or int2_ch_asym)", opt, t ? "hi" : "lo",
                           lb_format_name(f[t]), (long long)c->hd, (long long)blk);
    }
    c->fmt = f[1];
    c->bits = kb ? -1 : format_index(f[0]);
    c->half = (lb_dtype)kb;
    LB_ASSERT(kb || c->bits >= 0);
    c->group = (int)lround(lb__kv_get(st, "frac") * (double)c->P);
    c->per_token = false;
    c->hold = true;
    c->residual = (int64_t)lb__kv_get(st, "residual");
    tk_layout L;
    layout(c, &L);
    c->k_off = 0;
    c->v_off = 0;
    c->m_off = L.map;
    c->page_bytes = (L.map + (size_t)(c->P + 7) / 8 + 3) & ~(size_t)3;
    (void)sh;
    return LB_OK;
}


static int by_rank(const float *score, int64_t i, int64_t j)   /* i before j */
{
    float x = score[i], y = score[j];
    bool nx = isnan(x), ny = isnan(y);
    if (nx != ny) return !nx;
    if (!nx && x != y) return x > y;
    return i > j;
}

/* hi[i] = 1 for the q best of n scores (ties: the later slot; NaN last). */
static void top_q(const float *score, int64_t n, int64_t q, uint8_t *hi)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t better = 0;
        for (int64_t j = 0; j < n; j++) better += j != i && by_rank(score, j, i);
        hi[i] = better < q;
    }
}

static void encode(const lb__kv_codec *c, uint8_t *page, int64_t s0, int64_t n, const float *k, const float *v)
{
    LB_ASSERT(s0 == 0 && n == c->P);
    tk_layout L;
    layout(c, &L);
    uint8_t hi[TK_MAX_P];
    if (c->tier) memcpy(hi, c->tier, (size_t)n);
    else {   /* decode-time pages: Knorm within the page */
        float sc[TK_MAX_P];
        for (int64_t s = 0; s < n; s++) sc[s] = (float)-lb__evict_norm(k + s * c->hd, c->hd);
        top_q(sc, n, L.n[1], hi);
    }
    uint8_t *map = page + L.map;
    memset(map, 0, (size_t)(c->P + 7) / 8);
    int64_t idx[2] = {0, 0};
    for (int64_t s = 0; s < n; s++) {
        int t = hi[s] ? 1 : 0;
        LB_ASSERT(idx[t] < L.n[t]);
        int64_t i = idx[t]++;
        if (t) map[s >> 3] |= (uint8_t)(1u << (s & 7));
        if (!L.f[t]) continue;   /* KIVI lo: below, over all the page's lo tokens */
        bool ts = lb_format_uses_tensor_scale(L.f[t]);
        float *tsc = (float *)(void *)(page + L.ts[t]), one;
        uint8_t *rows = page + L.rows[t];
        lb_status e = lb_format_quantize(L.f[t], NULL, k + s * c->hd, 1, c->hd, rows + (size_t)i * L.rb[t],
                                         ts ? &tsc[2 * i] : &one);
        if (!e) e = lb_format_quantize(L.f[t], NULL, v + s * c->hd, 1, c->hd,
                                       rows + (size_t)(L.n[t] + i) * L.rb[t], ts ? &tsc[2 * i + 1] : &one);
        LB_ASSERT(!e);
    }
    LB_ASSERT(idx[1] == L.n[1]);
    if (L.kb && L.n[0]) {
        int64_t hd = c->hd, N = L.n[0];
        uint8_t *kc = page + L.rows[0], *vc = kc + L.kcodes;
        uint16_t *ks = (uint16_t *)(void *)(vc + L.kcodes), *km = ks + hd, *vs = km + hd, *vm = vs + N;
        memset(kc, 0, 2 * L.kcodes);
        int64_t lo[TK_MAX_P], i = 0;   /* the lo slots, in order */
        float col[TK_MAX_P];
        for (int64_t s = 0; s < n; s++)
            if (!hi[s]) lo[i++] = s;
        for (int64_t ch = 0; ch < hd; ch++) {
            for (int64_t j = 0; j < N; j++) col[j] = k[lo[j] * hd + ch];
            lb__kivi_quant_group(col, N, 1, L.kb, &ks[ch], &km[ch], kc, ch, hd);
        }
        for (int64_t j = 0; j < N; j++)
            lb__kivi_quant_group(v + lo[j] * hd, hd, 1, L.kb, &vs[j], &vm[j], vc, j * hd, 1);
    }
}

static void decode(const lb__kv_codec *c, const uint8_t *page, int64_t s0, int64_t n, float *k, float *v)
{
    tk_layout L;
    layout(c, &L);
    const uint8_t *map = page + L.map;
    int64_t idx[2] = {0, 0};
    for (int64_t s = 0; s < s0 + n; s++) {
        int t = (map[s >> 3] >> (s & 7)) & 1;
        int64_t i = idx[t]++;
        if (s < s0) continue;
        if (!L.f[t]) {   /* KIVI lo */
            const lb__kv_kernels *K = lb__kv_kernels_active();
            int64_t hd = c->hd, N = L.n[0];
            const uint8_t *kc = page + L.rows[0], *vc = kc + L.kcodes;
            const uint16_t *ks = (const uint16_t *)(const void *)(vc + L.kcodes), *km = ks + hd, *vs = km + hd,
                           *vm = vs + N;
            size_t row = (size_t)(hd * L.kb / 8);
            float sc[TK_MAX_HD], mn[TK_MAX_HD];
            int gsh = 0;
            while ((1 << gsh) < hd) gsh++;
            if (k) {
                K->f16(ks, hd, sc);
                K->f16(km, hd, mn);
                K->dq(kc + (size_t)i * row, L.kb, hd, sc, mn, 0, k + (s - s0) * hd);
            }
            if (v) {
                K->f16(vs + i, 1, sc);
                K->f16(vm + i, 1, mn);
                K->dq(vc + (size_t)i * row, L.kb, hd, sc, mn, gsh, v + (s - s0) * hd);
            }
            continue;
        }
        bool ts = lb_format_uses_tensor_scale(L.f[t]);
        const float *tsc = (const float *)(const void *)(page + L.ts[t]);
        const uint8_t *rows = page + L.rows[t];
        lb_status e = LB_OK;
        if (k) e = lb_format_dequantize(L.f[t], rows + (size_t)i * L.rb[t], ts ? tsc[2 * i] : 1, 1, c->hd,
                                        k + (s - s0) * c->hd);
        if (v && !e) e = lb_format_dequantize(L.f[t], rows + (size_t)(L.n[t] + i) * L.rb[t], ts ? tsc[2 * i + 1] : 1,
                                              1, c->hd, v + (s - s0) * c->hd);
        LB_ASSERT(!e);
    }
}

/* The scorer's stage (its defaults) for the name in score=. */
static lb_status scorer_stage(const lb__kv_stage *st, lb__kv_spec *sp)
{
    return lb__kv_parse(lb__kv_get_name(st, "score"), "thinkv score", sp);
}

/* Score every token of every head, choose the Q best of each page to be
 * stored, and re-store the head from its F32 values with those tiers. */
static lb_status compress(lb_kv *c, const lb__kv_stage *st)
{
    lb__kv_spec sp;
    lb_status s = scorer_stage(st, &sp);
    if (s) return s;
    const lb__kv_stage *sc = &sp.st[0];
    const lb__kv_shape *sh = lb__kv_shape_of(c);
    int64_t P = (int64_t)lb__kv_get(st, "page"), R = (int64_t)lb__kv_get(st, "residual");
    int64_t Q = (int64_t)lround(lb__kv_get(st, "frac") * (double)P);
    float *score = lb__alloc(sizeof(float) * (size_t)sh->max_ctx);
    uint8_t *hi = lb__alloc((size_t)sh->max_ctx);
    if (!score || !hi) { LB_FREE(score); LB_FREE(hi); return LB_ERR_NOMEM; }
    for (int64_t l = 0; l < sh->n_layers && !s; l++)
        for (int64_t g = 0; g < sh->n_kv_heads && !s; g++) {
            int64_t T = lb__kv_tokens(c, l, g);
            if (T == 0) continue;
            if ((s = sc->pol->score(c, sc, l, g, score))) break;
            memset(hi, 0, (size_t)T);
            int64_t cold = T >= R ? P * ((T - R) / P) : 0;
            for (int64_t p0 = 0; p0 < cold; p0 += P) top_q(score + p0, P, Q, hi + p0);
            s = lb__kv_retier(c, l, g, hi);
        }
    LB_FREE(score);
    LB_FREE(hi);
    return s;
}

static lb_status check(const lb__kv_stage *st, const lb__kv_spec *spec, const lb__kv_shape *sh, const char *opt)
{
    lb_status s = lb__kv_check_page(st, spec, sh, opt);
    if (s) return s;
    if (lb__kv_get(st, "page") > TK_MAX_P)
        return lb__err(LB_ERR_ARG, "%s: thinkv page=%g: at most %d tokens", opt, lb__kv_get(st, "page"), TK_MAX_P);
    int kb = (int)lb__kv_get(st, "lobits");
    if (kb != 0 && kb != 2 && kb != 3 && kb != 4 && kb != 8)
        return lb__err(LB_ERR_ARG, "%s: thinkv lobits=%d: 0 (the lo format) or KIVI's 2, 3, 4, 8 bits", opt, kb);
    for (int i = 0; i < st->pol->n_params; i++)
        if (kb && (st->given >> i & 1) && !strcmp(st->pol->params[i].key, "lo"))
            return lb__err(LB_ERR_ARG, "%s: thinkv lo=%s applies only with lobits=0 (lobits=%d stores the lo tokens "
                           "KIVI-style)", opt, lb__kv_get_name(st, "lo"), kb);
    const lb_format *f[2] = {NULL, NULL};
    for (int t = kb ? 1 : 0; t < 2; t++) {
        const char *name = lb__kv_get_name(st, t ? "hi" : "lo");
        if (!strcmp(name, "ternary"))
            return lb__err(LB_ERR_ARG, "%s: thinkv %s=%s cannot be a cache format (use int8_ch, int4_ch, "
                           "int2_ch_asym, nvfp4, mxfp4, ...)", opt, t ? "hi" : "lo", name);
        f[t] = lb_format_find(name);
    }
    if (!kb && f[0] == f[1])
        return lb__err(LB_ERR_ARG, "%s: thinkv hi and lo are the same format (%s): use fmt:format=%s", opt,
                       lb_format_name(f[0]), lb_format_name(f[0]));
    lb__kv_spec sp;
    if ((s = scorer_stage(st, &sp))) return s;
    return LB_OK;
}

static const lb__kv_codec_ops codec = {setup, encode, decode};
static const lb__kv_param params[] = {
    {"score", "eviction scorer ranking the tokens (higher = hi format)", 0, 0, 0, false, false,
     "random|streaming|knorm|snapkv|tova|observed|keydiff|expected", "snapkv"},
    {"hi", "registry format of the important tokens", 0, 0, 0, false, false, "@format", "int8_ch"},
    {"lo", "registry format of the other tokens", 0, 0, 0, false, false, "@format", "int2_ch_asym"},
    {"lobits", "lo tokens KIVI-style at 2, 3, 4 or 8 bits (keys per channel over the page's lo tokens, values per "
     "token; 0: the lo format)", 2, 0, 8, true, false, NULL, NULL},
    {"frac", "fraction of each page's tokens in hi (round(frac page) slots)", 0.25, 0, 1, false, false, NULL, NULL},
    {"residual", "full-precision window of recent tokens after the first compression", 0, 0, 1 << 20, true, false,
     NULL, NULL},
    LB_KV_PAGE_PARAM,
};
const lb__kv_policy lb__kv_policy_thinkv = {
    .name = "thinkv",
    .summary = "ThinKV mixed precision: each page's top-scored tokens in hi, the rest in lo (no eviction)",
    .kind = LB_KV_STORE, .params = params, .n_params = 7, .codec = &codec, .q_window = LB_EVICT_QLOG,
    .compress = compress, .check = check};
