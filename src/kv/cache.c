/* cache.c: paged KV storage per (layer, kv head), attention from the stored
 * representation, eviction by compaction, and the byte accounting.
 *
 * Pools: every cold page (the storage policy's representation of P tokens:
 * keys, values, metadata; codec->page_bytes bytes) comes from one pool of
 * n_layers * n_kv_heads * ceil(max_ctx / P) pages, every hot page (P
 * full-precision tokens: keys (P, hd) then values (P, hd), F32) from a pool
 * sized for the residual window; both are reserved at creation and handed out
 * from free lists (stacks of page ids), so the token loop never allocates and
 * pages never touched are never resident.
 *
 * A head's slots are its cold pages' tokens (slot s in cold page s / P) then
 * its hot tokens (hot page i holds hot tokens from index hot0). Appending
 * puts a token in the hot window, or straight into a cold page when the
 * codec stores token by token and there is no window (f32, f16, bf16, fmt).
 * The window spills to cold pages: per-token codecs its oldest token as soon
 * as it holds more than R, page codecs (KIVI) its oldest full page once it
 * holds R + P tokens, so a KIVI window holds R .. R + P - 1 tokens.
 *
 * Hadamard rotation (codec->rot): keys and/or values are rotated by the
 * orthonormal T_hd before they are stored (cold and hot alike); attention
 * rotates the query (q.k = Tq.Tk) and un-rotates the output once
 * (sum_p w_p T v_p = T sum_p w_p v_p). lb__kv_read un-rotates.
 *
 * Attention: per page, codecs with fused kernels (codec score / accum:
 * KIVI) score and sum on the stored codes; otherwise the keys are decoded
 * into an L1-resident tile (or read in place when stored F32) and scored
 * with the canonical dots kernel;
 * softmax as the engine always did (fused codecs: softmax2 of codec.h);
 * values decoded the same way and summed in slot order (o = o + w v, a
 * multiply then an add, per element; the acc kernel of codec.h): with the
 * f32 policy exactly the arithmetic of the former flat cache, so logits are
 * bit-identical to it. */
#include "kv/codec.h"
#include <math.h>
#include <stdlib.h>

typedef struct kv_head {
    int32_t *pos;          /* (max_ctx) original positions of the slots */
    int32_t *cold, *hot;   /* page ids: (max cold pages), (max hot pages) */
    int64_t n_cold, n_hot, hot0;
    int32_t n_cold_pages, n_hot_pages;
} kv_head;

struct lb_kv {
    lb__kv_spec spec;
    lb__kv_shape sh;
    lb__kv_codec codec;
    int64_t P, hd, kv_dim, n_heads_all, max_cold, max_hot;
    int64_t group;            /* query heads per kv head */
    bool direct;              /* no window: tokens go straight to cold pages */
    bool plain;               /* cold pages hold F32 rows: attend in place */
    bool holding;             /* codec.hold and not compressed yet: nothing spills */
    const uint8_t *tier_hint; /* lb__kv_retier: per-slot hint of the head being re-stored */
    kv_head *heads;           /* (n_layers * n_kv_heads) */
    int32_t *ids;             /* every head's pos / cold / hot arrays, one allocation */
    uint8_t *cold_pool;       /* (cold_cap, page_bytes) */
    float *hot_pool;          /* (hot_cap, 2 * P * hd) */
    int32_t *cold_free, *hot_free;
    int64_t cold_cap, hot_cap, n_cold_free, n_hot_free;
    float *scratch;           /* per thread: scores (group, max_ctx), ktile, vtile (P, hd), q, o (group, hd) */
    int64_t scratch_stride;
    float *tk, *tv, *tscore;  /* rebuild and compress: (max_ctx * hd) x2, (max_ctx) */
    int64_t *tidx;            /* (max_ctx) */
    int32_t *tpos;            /* (max_ctx) */
    int64_t q_window;         /* queries kept per layer (0: none) */
    float *q_post, *q_pre;    /* (n_layers, 2 * q_window, q_dim) */
    int32_t *q_pos;           /* (n_layers, 2 * q_window) */
    int64_t *q_n;             /* (n_layers) rows recorded */
    lb__xq *xq;               /* the xquant policy: every call goes to xquant.c (no heads, no pools here) */
};

static kv_head *head_of(const lb_kv *c, int64_t l, int64_t kvh) { return &c->heads[l * c->sh.n_kv_heads + kvh]; }
static uint8_t *cold_page(const lb_kv *c, int32_t id) { return c->cold_pool + (size_t)id * c->codec.page_bytes; }
static float *hot_page(const lb_kv *c, int32_t id) { return c->hot_pool + (size_t)id * (size_t)(2 * c->P * c->hd); }
static int64_t tokens_of(const kv_head *h) { return h->n_cold + h->n_hot; }

/* ---- creation */

static lb_status alloc_pools(lb_kv *c)
{
    int64_t H = c->n_heads_all, per = c->sh.max_ctx + c->max_cold + c->max_hot;
    c->heads = lb__zalloc(sizeof(kv_head) * (size_t)H);
    c->ids = lb__alloc(sizeof(int32_t) * (size_t)(H * per));
    c->cold_cap = H * c->max_cold;
    c->hot_cap = H * c->max_hot;
    c->cold_pool = lb__alloc(c->codec.page_bytes * (size_t)c->cold_cap);
    c->hot_pool = c->hot_cap ? lb__alloc_aligned(sizeof(float) * (size_t)(c->hot_cap * 2 * c->P * c->hd)) : NULL;
    c->cold_free = lb__alloc(sizeof(int32_t) * (size_t)c->cold_cap);
    c->hot_free = lb__alloc(sizeof(int32_t) * (size_t)lb__max64(1, c->hot_cap));
    int64_t hd = c->hd, mc = c->sh.max_ctx;
    c->scratch_stride = (c->group * mc + 2 * c->P * hd + 2 * c->group * hd + 15) & ~(int64_t)15;
    c->scratch = lb__alloc_aligned(sizeof(float) * (size_t)(c->scratch_stride * c->sh.n_threads));
    c->tk = lb__alloc(sizeof(float) * (size_t)(mc * hd));
    c->tv = lb__alloc(sizeof(float) * (size_t)(mc * hd));
    c->tscore = lb__alloc(sizeof(float) * (size_t)mc);
    c->tidx = lb__alloc(sizeof(int64_t) * (size_t)mc);
    c->tpos = lb__alloc(sizeof(int32_t) * (size_t)mc);
    if (!c->heads || !c->ids || !c->cold_pool || (c->hot_cap && !c->hot_pool) || !c->cold_free || !c->hot_free ||
        !c->scratch || !c->tk || !c->tv || !c->tscore || !c->tidx || !c->tpos)
        return LB_ERR_NOMEM;
    for (int64_t i = 0; i < H; i++) {
        kv_head *h = &c->heads[i];
        h->pos = c->ids + i * per;
        h->cold = h->pos + mc;
        h->hot = h->cold + c->max_cold;
    }
    if (c->q_window) {
        int64_t L = c->sh.n_layers, rows = 2 * c->q_window, qd = c->sh.n_heads * hd;
        c->q_post = lb__alloc(sizeof(float) * (size_t)(L * rows * qd));
        c->q_pre = lb__alloc(sizeof(float) * (size_t)(L * rows * qd));
        c->q_pos = lb__alloc(sizeof(int32_t) * (size_t)(L * rows));
        c->q_n = lb__zalloc(sizeof(int64_t) * (size_t)L);
        if (!c->q_post || !c->q_pre || !c->q_pos || !c->q_n) return LB_ERR_NOMEM;
    }
    lb__kv_reset(c);
    return LB_OK;
}

static lb_status check_shape(const lb__kv_shape *sh, const char *opt)
{
    if (sh->n_layers <= 0 || sh->n_kv_heads <= 0 || sh->n_heads <= 0 || sh->n_heads % sh->n_kv_heads ||
        sh->head_dim <= 0 || sh->max_ctx <= 0 || sh->max_ctx > INT32_MAX || sh->n_threads <= 0)
        return lb__err(LB_ERR_ARG, "%s: bad cache shape", opt);
    return LB_OK;
}

lb_status lb__kv_create(const lb__kv_spec *spec, const lb__kv_shape *sh, const char *opt, lb_kv **out)
{
    return lb__kv_create_remat(spec, sh, NULL, opt, out);
}

lb_status lb__kv_create_remat(const lb__kv_spec *spec, const lb__kv_shape *sh, const lb__kv_remat *rm,
                              const char *opt, lb_kv **out)
{
    *out = NULL;
    if (!opt) opt = "kv";
    lb_status st = check_shape(sh, opt);
    if (st) return st;
    for (int i = 0; i < spec->n; i++) {
        const lb__kv_stage *sg = &spec->st[i];
        if (sg->pol->check && (st = sg->pol->check(sg, spec, sh, opt))) return st;
    }
    lb_kv *c = lb__zalloc(sizeof *c);
    if (!c) return LB_ERR_NOMEM;
    c->spec = *spec;
    c->sh = *sh;
    c->hd = sh->head_dim;
    c->kv_dim = sh->n_kv_heads * sh->head_dim;
    c->n_heads_all = sh->n_layers * sh->n_kv_heads;
    c->group = sh->n_heads / sh->n_kv_heads;
    const lb__kv_stage *store = &c->spec.st[c->spec.store];
    if (!store->pol->codec) {   /* xquant: rows of X per layer (xquant.c) */
        if ((st = lb__xq_create(store, sh, rm, opt, &c->xq))) { LB_FREE(c); return st; }
        *out = c;
        return LB_OK;
    }
    c->codec.hd = c->hd;
    st = store->pol->codec->setup(&c->codec, store, sh, opt);
    if (!st && c->codec.residual >= sh->max_ctx)
        st = lb__err(LB_ERR_ARG, "%s: %s residual=%lld is not shorter than the context (%lld tokens)", opt,
                     store->pol->name, (long long)c->codec.residual, (long long)sh->max_ctx);
    if (!st && (c->codec.rot & 3) && !lb_hadamard_supported(c->hd))
        st = lb__err(LB_ERR_ARG, "%s: %s rot: head_dim %lld is not a Hadamard order", opt, store->pol->name,
                     (long long)c->hd);
    if (st) { LB_FREE(c); return st; }
    c->codec.ops = store->pol->codec;
    c->P = c->codec.P;
    c->direct = c->codec.per_token && c->codec.residual == 0;
    c->plain = !strcmp(store->pol->name, "f32") && !c->codec.rot;
    c->max_cold = (sh->max_ctx + c->P - 1) / c->P;
    c->max_hot = c->direct ? 0 : (c->codec.residual + c->P) / c->P + 2;
    if (c->codec.hold) c->max_hot = c->max_cold + 2;
    for (int i = 0; i < spec->n; i++) c->q_window = lb__max64(c->q_window, spec->st[i].pol->q_window);
    c->q_window = lb__min64(c->q_window, sh->max_ctx);
    if ((st = alloc_pools(c))) {
        lb__kv_free(c);
        return lb__err_prefix(st, "%s: ", opt);
    }
    *out = c;
    return LB_OK;
}

void lb__kv_free(lb_kv *c)
{
    if (!c) return;
    lb__xq_free(c->xq);
    LB_FREE(c->heads); LB_FREE(c->ids); LB_FREE(c->cold_pool); lb__free_aligned(c->hot_pool);
    LB_FREE(c->cold_free); LB_FREE(c->hot_free); lb__free_aligned(c->scratch);
    LB_FREE(c->tk); LB_FREE(c->tv); LB_FREE(c->tscore); LB_FREE(c->tidx); LB_FREE(c->tpos);
    LB_FREE(c->q_post); LB_FREE(c->q_pre); LB_FREE(c->q_pos); LB_FREE(c->q_n);
    LB_FREE(c);
}

/* Free lists are stacks: page 0 first, a freed page reused first. */
void lb__kv_reset(lb_kv *c)
{
    if (c->xq) { lb__xq_reset(c->xq); return; }
    for (int64_t i = 0; i < c->cold_cap; i++) c->cold_free[i] = (int32_t)(c->cold_cap - 1 - i);
    for (int64_t i = 0; i < c->hot_cap; i++) c->hot_free[i] = (int32_t)(c->hot_cap - 1 - i);
    c->n_cold_free = c->cold_cap;
    c->n_hot_free = c->hot_cap;
    for (int64_t i = 0; i < c->n_heads_all; i++) {
        kv_head *h = &c->heads[i];
        h->n_cold = h->n_hot = h->hot0 = 0;
        h->n_cold_pages = h->n_hot_pages = 0;
    }
    if (c->q_n) memset(c->q_n, 0, sizeof(int64_t) * (size_t)c->sh.n_layers);
    c->holding = c->codec.hold;
}

const lb__kv_spec *lb__kv_spec_of(const lb_kv *c) { return &c->spec; }
const lb__kv_shape *lb__kv_shape_of(const lb_kv *c) { return &c->sh; }
bool lb__kv_batch_exact(const lb_kv *c) { return c->direct || c->xq; }
bool lb__kv_wants_x(const lb_kv *c) { return c->xq != NULL; }
void lb__kv_append_x(lb_kv *c, int64_t l, int64_t pos, const float *x) { lb__xq_append(c->xq, l, pos, x); }
void lb__kv_prepare(lb_kv *c, int64_t l)
{
    if (c->xq) lb__xq_prepare(c->xq, l);
}

/* ---- storing */

static void rotate(const lb_kv *c, float *x, bool inverse)
{
    lb_status s = inverse ? lb_hadamard_inverse(x, c->hd) : lb_hadamard(x, c->hd);
    LB_ASSERT(!s);
}

/* Move the oldest n hot tokens (n = 1, or a whole first page) to cold. */
static void spill(lb_kv *c, kv_head *h, int64_t n)
{
    int64_t P = c->P, hd = c->hd, s = h->n_cold % P;
    if (s == 0) {
        LB_ASSERT(c->n_cold_free > 0);
        h->cold[h->n_cold_pages++] = c->cold_free[--c->n_cold_free];
    }
    const float *hp = hot_page(c, h->hot[0]);
    if (c->tier_hint || c->codec.tier) c->codec.tier = c->tier_hint ? c->tier_hint + h->n_cold : NULL;
    c->codec.ops->encode(&c->codec, cold_page(c, h->cold[h->n_cold_pages - 1]), s, n, hp + h->hot0 * hd,
                         hp + P * hd + h->hot0 * hd);
    h->n_cold += n;
    h->n_hot -= n;
    h->hot0 += n;
    if (h->hot0 == P) {
        c->hot_free[c->n_hot_free++] = h->hot[0];
        memmove(h->hot, h->hot + 1, sizeof(int32_t) * (size_t)--h->n_hot_pages);
        h->hot0 = 0;
    }
}

/* Append one token (k, v already in the stored, possibly rotated, space). */
static void push(lb_kv *c, kv_head *h, int32_t pos, const float *k, const float *v)
{
    int64_t P = c->P, hd = c->hd;
    h->pos[tokens_of(h)] = pos;
    if (c->direct) {
        int64_t s = h->n_cold % P;
        if (s == 0) {
            LB_ASSERT(c->n_cold_free > 0);
            h->cold[h->n_cold_pages++] = c->cold_free[--c->n_cold_free];
        }
        c->codec.ops->encode(&c->codec, cold_page(c, h->cold[h->n_cold_pages - 1]), s, 1, k, v);
        h->n_cold++;
        return;
    }
    int64_t at = h->hot0 + h->n_hot;
    if (at == (int64_t)h->n_hot_pages * P) {
        LB_ASSERT(c->n_hot_free > 0);
        h->hot[h->n_hot_pages++] = c->hot_free[--c->n_hot_free];
    }
    float *hp = hot_page(c, h->hot[at / P]);
    memcpy(hp + (at % P) * hd, k, sizeof(float) * (size_t)hd);
    memcpy(hp + P * hd + (at % P) * hd, v, sizeof(float) * (size_t)hd);
    h->n_hot++;
    if (c->codec.per_token) {
        while (h->n_hot > c->codec.residual) spill(c, h, 1);
    } else if (!c->holding && h->n_hot >= c->codec.residual + P) {
        LB_ASSERT(h->hot0 == 0);
        spill(c, h, P);
    }
}

static void free_pages(lb_kv *c, kv_head *h)
{
    for (int32_t i = 0; i < h->n_cold_pages; i++) c->cold_free[c->n_cold_free++] = h->cold[i];
    for (int32_t i = 0; i < h->n_hot_pages; i++) c->hot_free[c->n_hot_free++] = h->hot[i];
    h->n_cold = h->n_hot = h->hot0 = 0;
    h->n_cold_pages = h->n_hot_pages = 0;
}

/* Slots [s0, s0 + n) in the stored space (rotated where the codec rotates). */
static void read_raw(const lb_kv *c, const kv_head *h, int64_t s0, int64_t n, float *k, float *v)
{
    int64_t P = c->P, hd = c->hd;
    for (int64_t s = s0; s < s0 + n;) {
        if (s < h->n_cold) {
            int64_t off = s % P, m = lb__min64(lb__min64(P - off, h->n_cold - s), s0 + n - s);
            c->codec.ops->decode(&c->codec, cold_page(c, h->cold[s / P]), off, m, k ? k + (s - s0) * hd : NULL,
                                 v ? v + (s - s0) * hd : NULL);
            s += m;
        } else {
            int64_t at = h->hot0 + s - h->n_cold;
            const float *hp = hot_page(c, h->hot[at / P]);
            if (k) memcpy(k + (s - s0) * hd, hp + (at % P) * hd, sizeof(float) * (size_t)hd);
            if (v) memcpy(v + (s - s0) * hd, hp + P * hd + (at % P) * hd, sizeof(float) * (size_t)hd);
            s++;
        }
    }
}

/* Rebuild head h from the slots keep[0 .. n) (increasing). */
static void rebuild(lb_kv *c, kv_head *h, const int64_t *keep, int64_t n)
{
    int64_t hd = c->hd;
    for (int64_t i = 0; i < n; i++) {
        read_raw(c, h, keep[i], 1, c->tk + i * hd, c->tv + i * hd);
        c->tpos[i] = h->pos[keep[i]];
    }
    free_pages(c, h);
    for (int64_t i = 0; i < n; i++) push(c, h, c->tpos[i], c->tk + i * hd, c->tv + i * hd);
}

/* Drop every slot at a position >= pos (lb__session_layer running a layer again). */
static void rewind_head(lb_kv *c, kv_head *h, int64_t pos)
{
    int64_t n = tokens_of(h), m = 0;
    if (n == 0 || h->pos[n - 1] < pos) return;
    for (int64_t i = 0; i < n; i++)
        if (h->pos[i] < pos) c->tidx[m++] = i;
    if (m == 0) { free_pages(c, h); return; }
    if (c->direct) {   /* positions only grow: truncate in place */
        int64_t keep = m, pages = (keep + c->P - 1) / c->P;
        for (int32_t i = (int32_t)pages; i < h->n_cold_pages; i++) c->cold_free[c->n_cold_free++] = h->cold[i];
        h->n_cold_pages = (int32_t)pages;
        h->n_cold = keep;
        return;
    }
    rebuild(c, h, c->tidx, m);
}

void lb__kv_append(lb_kv *c, int64_t l, int64_t pos, const float *k, const float *v)
{
    int64_t hd = c->hd;
    float *tmp = c->tk;   /* free outside rebuild, which ends before this use */
    LB_ASSERT(!c->xq);    /* xquant stores X: lb__kv_append_x */
    for (int64_t g = 0; g < c->sh.n_kv_heads; g++) {
        kv_head *h = head_of(c, l, g);
        rewind_head(c, h, pos);
        const float *kk = k + g * hd, *vv = v + g * hd;
        if (c->codec.rot & 1) { memcpy(tmp, kk, sizeof(float) * (size_t)hd); rotate(c, tmp, false); kk = tmp; }
        if (c->codec.rot & 2) { memcpy(tmp + hd, vv, sizeof(float) * (size_t)hd); rotate(c, tmp + hd, false); vv = tmp + hd; }
        push(c, h, (int32_t)pos, kk, vv);
    }
}

/* ---- attention */

/* The fused kernels are compute-bound once a page is in cache: fetch the
 * next page's bytes [a, b) while this one is scored (pages of a head are not
 * adjacent): keys and metadata for the scores, values and metadata for the
 * sums. */
static void prefetch(const uint8_t *pg, size_t a, size_t b)
{
    for (; a < b; a += 64) __builtin_prefetch(pg + a);
}

/* Scores of the nq queries (rows of hd) against slots [0, n) of head h into
 * sc + j * max_ctx: each page decoded once for the whole GQA group. */
static void scores(const lb_kv *c, const kv_head *h, const float *q, int64_t nq, int64_t n, float *kt, float *sc)
{
    const lb_kernels *K = lb__kernels();
    int64_t P = c->P, hd = c->hd, mc = c->sh.max_ctx, nc = lb__min64(n, h->n_cold);
    for (int64_t s = 0; s < nc; s += P) {
        int64_t m = lb__min64(P, nc - s);
        const uint8_t *pg = cold_page(c, h->cold[s / P]);
        if (c->codec.score) {   /* fused: scores on the stored codes */
            if (s + P < nc) {
                const uint8_t *nx = cold_page(c, h->cold[s / P + 1]);
                prefetch(nx, c->codec.k_off, c->codec.v_off);
                prefetch(nx, c->codec.m_off, c->codec.page_bytes);
            }
            c->codec.score(&c->codec, pg, q, nq, sc + s, mc);
            continue;
        }
        const float *kr = kt;
        if (c->plain) kr = (const float *)pg;
        else c->codec.ops->decode(&c->codec, pg, 0, m, kt, NULL);
        for (int64_t j = 0; j < nq; j++) K->dots(q + j * hd, kr, hd, hd, m, sc + j * mc + s);
    }
    for (int64_t s = nc; s < n;) {
        int64_t at = h->hot0 + s - h->n_cold, m = lb__min64(P - at % P, n - s);
        const float *kr = hot_page(c, h->hot[at / P]) + (at % P) * hd;
        for (int64_t j = 0; j < nq; j++) K->dots(q + j * hd, kr, hd, hd, m, sc + j * mc + s);
        s += m;
    }
}

/* sc (n) <- softmax(sc / sqrt(hd)) with the engine's softmax kernel (the
 * f32 cache's bits; xquant.c attends through it). */
void lb__kv_softmax(float *sc, int64_t n, int64_t hd)
{
    lb__kv_kernels_active()->softmax(sc, n, 1.0f / sqrtf((float)hd));
}

/* o (nq rows of hd) = sum over slots [0, n) of w_j[p] v_p, slot order. */
static void values(const lb_kv *c, const kv_head *h, const float *sc, int64_t nq, int64_t n, float *vt, float *o)
{
    const lb__kv_kernels *KK = lb__kv_kernels_active();
    int64_t P = c->P, hd = c->hd, mc = c->sh.max_ctx, nc = lb__min64(n, h->n_cold);
    memset(o, 0, sizeof(float) * (size_t)(nq * hd));
    for (int64_t s = 0; s < nc; s += P) {
        int64_t m = lb__min64(P, nc - s);
        const uint8_t *pg = cold_page(c, h->cold[s / P]);
        if (c->codec.accum) {
            if (s + P < nc) prefetch(cold_page(c, h->cold[s / P + 1]), c->codec.v_off, c->codec.page_bytes);
            c->codec.accum(&c->codec, pg, m, sc + s, mc, nq, o);
            continue;
        }
        const float *vr = vt;
        if (c->plain) vr = (const float *)pg + P * hd;
        else c->codec.ops->decode(&c->codec, pg, 0, m, NULL, vt);
        for (int64_t j = 0; j < nq; j++) KK->acc(sc + j * mc + s, vr, m, hd, o + j * hd);
    }
    for (int64_t s = nc; s < n;) {   /* hot tokens: runs within one hot page */
        int64_t at = h->hot0 + s - h->n_cold, m = lb__min64(P - at % P, n - s);
        const float *vr = hot_page(c, h->hot[at / P]) + P * hd + (at % P) * hd;
        for (int64_t j = 0; j < nq; j++) KK->acc(sc + j * mc + s, vr, m, hd, o + j * hd);
        s += m;
    }
}

void lb__kv_attend_group(lb_kv *c, int64_t l, int64_t kvh, const float *q, int64_t nq, int64_t skip, int thread,
                         float *out)
{
    if (c->xq) { lb__xq_attend_group(c->xq, l, kvh, q, nq, skip, thread, out); return; }
    const kv_head *h = head_of(c, l, kvh);
    int64_t P = c->P, hd = c->hd, n = tokens_of(h) - skip, mc = c->sh.max_ctx;
    float *sc = c->scratch + (int64_t)thread * c->scratch_stride, *kt = sc + c->group * mc, *vt = kt + P * hd;
    float *qq = vt + P * hd, *o = qq + c->group * hd;
    LB_ASSERT(nq <= c->group);
    if (c->codec.rot & 1) {
        memcpy(qq, q, sizeof(float) * (size_t)(nq * hd));
        for (int64_t j = 0; j < nq; j++) rotate(c, qq + j * hd, false);
        q = qq;
    }
    scores(c, h, q, nq, n, kt, sc);
    /* the engine's softmax (f32: its logits bit for bit); with fused kernels
     * the fully vectorized softmax2 (codec.h) */
    const lb__kv_kernels *KK = lb__kv_kernels_active();
    lb__kv_softmax_fn sm = c->codec.score ? KK->softmax2 : KK->softmax;
    for (int64_t j = 0; j < nq; j++) sm(sc + j * mc, n, 1.0f / sqrtf((float)hd));
    float *acc = (c->codec.rot & 2) ? o : out;
    values(c, h, sc, nq, n, vt, acc);
    if (c->codec.rot & 2) {
        for (int64_t j = 0; j < nq; j++) rotate(c, o + j * hd, true);
        memcpy(out, o, sizeof(float) * (size_t)(nq * hd));
    }
}

void lb__kv_attend(lb_kv *c, int64_t l, int64_t h, const float *q, int64_t skip, int thread, float *out)
{
    lb__kv_attend_group(c, l, h / (c->sh.n_heads / c->sh.n_kv_heads), q, 1, skip, thread, out);
}

/* ---- queries kept for scorers */

bool lb__kv_wants_q(const lb_kv *c) { return c->q_window > 0; }

void lb__kv_observe_q(lb_kv *c, int64_t l, int64_t pos, const float *q_pre, const float *q_post)
{
    if (!c->q_window) return;
    int64_t qd = c->sh.n_heads * c->hd, rows = 2 * c->q_window, *n = &c->q_n[l];
    float *qp = c->q_post + l * rows * qd, *qr = c->q_pre + l * rows * qd;
    int32_t *pp = c->q_pos + l * rows;
    while (*n > 0 && pp[*n - 1] >= pos) (*n)--;
    if (*n == rows) {   /* keep the newest q_window rows, contiguous */
        int64_t w = c->q_window;
        memmove(qp, qp + w * qd, sizeof(float) * (size_t)(w * qd));
        memmove(qr, qr + w * qd, sizeof(float) * (size_t)(w * qd));
        memmove(pp, pp + w, sizeof(int32_t) * (size_t)w);
        *n = w;
    }
    memcpy(qp + *n * qd, q_post, sizeof(float) * (size_t)qd);
    memcpy(qr + *n * qd, q_pre, sizeof(float) * (size_t)qd);
    pp[(*n)++] = (int32_t)pos;
}

int64_t lb__kv_queries(const lb_kv *c, int64_t l, const float **q_post, const float **q_pre, const int32_t **pos)
{
    if (!c->q_window) { *q_post = *q_pre = NULL; *pos = NULL; return 0; }
    int64_t qd = c->sh.n_heads * c->hd, rows = 2 * c->q_window, n = c->q_n[l], k = lb__min64(n, c->q_window);
    *q_post = c->q_post + (l * rows + n - k) * qd;
    *q_pre = c->q_pre + (l * rows + n - k) * qd;
    *pos = c->q_pos + l * rows + n - k;
    return k;
}

/* ---- per-head access, eviction */

int64_t lb__kv_tokens(const lb_kv *c, int64_t l, int64_t kvh)
{
    return c->xq ? lb__xq_tokens(c->xq, l) : tokens_of(head_of(c, l, kvh));
}
const int32_t *lb__kv_positions(const lb_kv *c, int64_t l, int64_t kvh)
{
    return c->xq ? lb__xq_positions(c->xq, l) : head_of(c, l, kvh)->pos;
}

void lb__kv_read(const lb_kv *c, int64_t l, int64_t kvh, int64_t s0, int64_t n, float *k, float *v)
{
    if (c->xq) { lb__xq_read(c->xq, l, kvh, s0, n, k, v); return; }
    read_raw(c, head_of(c, l, kvh), s0, n, k, v);
    for (int64_t i = 0; i < n; i++) {
        if (k && (c->codec.rot & 1)) rotate(c, k + i * c->hd, true);
        if (v && (c->codec.rot & 2)) rotate(c, v + i * c->hd, true);
    }
}

lb_status lb__kv_keep(lb_kv *c, int64_t l, int64_t kvh, const int64_t *keep, int64_t n)
{
    if (l < 0 || l >= c->sh.n_layers || kvh < 0 || kvh >= c->sh.n_kv_heads)
        return lb__err(LB_ERR_ARG, "kv keep: head (%lld, %lld) out of range", (long long)l, (long long)kvh);
    if (c->xq)
        return lb__err(LB_ERR_ARG, "kv keep: xquant holds one row of X per token and layer, shared by the kv heads: "
                       "per-head eviction is not supported");
    kv_head *h = head_of(c, l, kvh);
    int64_t nt = tokens_of(h);
    for (int64_t i = 0; i < n; i++)
        if (keep[i] < 0 || keep[i] >= nt || (i && keep[i] <= keep[i - 1]))
            return lb__err(LB_ERR_ARG, "kv keep: slot list not strictly increasing within %lld slots", (long long)nt);
    if (n == nt) return LB_OK;
    if (keep != c->tidx) memcpy(c->tidx, keep, sizeof(int64_t) * (size_t)n);
    rebuild(c, h, c->tidx, n);
    return LB_OK;
}

lb_status lb__kv_retier(lb_kv *c, int64_t l, int64_t kvh, const uint8_t *hi)
{
    if (l < 0 || l >= c->sh.n_layers || kvh < 0 || kvh >= c->sh.n_kv_heads)
        return lb__err(LB_ERR_ARG, "kv retier: head (%lld, %lld) out of range", (long long)l, (long long)kvh);
    if (c->xq) return lb__err(LB_ERR_ARG, "kv retier: not an xquant operation");
    kv_head *h = head_of(c, l, kvh);
    int64_t n = tokens_of(h);
    for (int64_t i = 0; i < n; i++) c->tidx[i] = i;
    c->holding = false;
    c->tier_hint = hi;
    rebuild(c, h, c->tidx, n);
    c->tier_hint = NULL;
    c->codec.tier = NULL;
    return LB_OK;
}

static int by_score(const void *a, const void *b, void *score)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    float x = ((const float *)score)[i], y = ((const float *)score)[j];
    bool nx = isnan(x), ny = isnan(y);
    if (nx != ny) return nx ? 1 : -1;
    if (!nx && x != y) return x > y ? -1 : 1;
    return i > j ? -1 : 1;   /* ties: the later slot first */
}

static int by_index(const void *a, const void *b)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    return (i > j) - (i < j);
}

lb_status lb__kv_keep_top(lb_kv *c, int64_t l, int64_t kvh, const float *score, int64_t n_keep)
{
    int64_t n = lb__kv_tokens(c, l, kvh);
    if (n_keep >= n) return LB_OK;
    if (c->xq) return lb__kv_keep(c, l, kvh, NULL, 0);   /* refused: lb__kv_keep's error */
    if (n_keep < 0) n_keep = 0;
    int64_t *idx = c->tidx;
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, (size_t)n, sizeof *idx, by_score, (void *)score);
    qsort(idx, (size_t)n_keep, sizeof *idx, by_index);
    return lb__kv_keep(c, l, kvh, idx, n_keep);
}

lb_status lb__kv_compress(lb_kv *c)
{
    for (int i = 0; i < c->spec.n; i++) {
        const lb__kv_stage *st = &c->spec.st[i];
        if (st->pol->kind != LB_KV_EVICT) continue;
        lb_status s = LB_OK;
        if (st->pol->compress) s = st->pol->compress(c, st);
        else if (st->pol->score) {
            double ratio = lb__kv_get(st, "ratio");
            for (int64_t l = 0; l < c->sh.n_layers && !s; l++)
                for (int64_t g = 0; g < c->sh.n_kv_heads && !s; g++) {
                    int64_t n = lb__kv_tokens(c, l, g);
                    if (!(s = st->pol->score(c, st, l, g, c->tscore)))
                        s = lb__kv_keep_top(c, l, g, c->tscore, (int64_t)((double)n * (1.0 - ratio)));
                }
        }
        if (s) return lb__err_prefix(s, "kv %s: ", st->pol->name);
    }
    const lb__kv_stage *store = &c->spec.st[c->spec.store];
    if (store->pol->compress) {
        lb_status s = store->pol->compress(c, store);
        if (s) return lb__err_prefix(s, "kv %s: ", store->pol->name);
    }
    c->holding = false;
    return LB_OK;
}

/* ---- report */

size_t lb__kv_head_bytes(const lb_kv *c, int64_t l, int64_t kvh)
{
    if (c->xq) {   /* a layer's rows are shared: each kv head is charged its share, the remainder to head 0 */
        size_t b = lb__xq_layer_bytes(c->xq, l), nkv = (size_t)c->sh.n_kv_heads;
        return b / nkv + (kvh == 0 ? b % nkv : 0);
    }
    const kv_head *h = head_of(c, l, kvh);
    return (size_t)h->n_cold_pages * c->codec.page_bytes +
           (size_t)h->n_hot_pages * sizeof(float) * (size_t)(2 * c->P * c->hd) + sizeof(int32_t) * (size_t)tokens_of(h);
}

void lb__kv_report_get(const lb_kv *c, lb__kv_report *r)
{
    memset(r, 0, sizeof *r);
    if (c->xq) {   /* every kv head of a layer holds the layer's tokens */
        for (int64_t l = 0; l < c->sh.n_layers; l++) {
            r->tokens += lb__xq_tokens(c->xq, l) * c->sh.n_kv_heads;
            r->bytes += lb__xq_layer_bytes(c->xq, l);
        }
        r->pool_bytes = lb__xq_pool_bytes(c->xq);
        return;
    }
    for (int64_t i = 0; i < c->n_heads_all; i++) {
        const kv_head *h = &c->heads[i];
        r->tokens += tokens_of(h);
        r->hot_tokens += h->n_hot;
        r->bytes += lb__kv_head_bytes(c, i / c->sh.n_kv_heads, i % c->sh.n_kv_heads);
    }
    r->pool_bytes = c->codec.page_bytes * (size_t)c->cold_cap + sizeof(float) * (size_t)(c->hot_cap * 2 * c->P * c->hd);
}
