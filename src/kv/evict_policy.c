/* evict_policy.c: the eviction policies of the kv registry (kv.h) on top of
 * the scorers (score.c) and the selection rules (evict.c).
 *
 * One compress step, per layer: read every kv head's held tokens (keys,
 * values, positions) and the layer's logged queries, score each head, then
 * choose the kept slots and compact the head with lb__kv_keep, which gives
 * the freed pages back to the pool (the bytes held drop with the tokens).
 *
 *   prefill (lb__kv_compress, once after the prompt): each head keeps
 *     int(T_h (1 - ratio)) of its T_h tokens; with ada=1 the layer's budget
 *     sum_h int(T_h (1 - ratio)) is shared by one top-k over all its heads,
 *     each head keeping at least int(floor budget_h) (AdaKV).
 *   decode (lb__evict_decode, after each generated token): with every=N > 0,
 *     a layer whose largest head holds target + N tokens is compressed back
 *     to target per head (kvpress's DecodingPress; without a target,
 *     int(seen (1 - ratio)) of the positions seen, as
 *     CompressionRatioDecodingPress). Stateless: a head that was compressed
 *     to target reaches target + N after N tokens.
 *   paged: the prefill step is token-wise by ||v||/||k|| with the first and
 *     the last page kept; with decode=1, whenever a head's last page has just
 *     filled and the head holds more than its target, one whole page (the
 *     lowest mean score, never the first or last) is dropped.
 *
 * TOVA's score is the last query's attention averaged over every query head
 * of the layer (kvpress) when all kv heads hold the same positions;
 * otherwise over the head's own GQA group. Scratch is allocated per compress
 * call (compress is not on the per-token path; at decode it runs once every
 * N tokens). */
#include "kv/evict.h"
#include "kv/kv.h"

static bool has(const lb__kv_stage *st, const char *key)
{
    for (int i = 0; i < st->pol->n_params; i++)
        if (!strcmp(st->pol->params[i].key, key)) return true;
    return false;
}

static bool given(const lb__kv_stage *st, const char *key)
{
    for (int i = 0; i < st->pol->n_params; i++)
        if (!strcmp(st->pol->params[i].key, key)) return st->given >> i & 1;
    return false;
}

static double get_or(const lb__kv_stage *st, const char *key, double def)
{
    return has(st, key) ? lb__kv_get(st, key) : def;
}

static lb__evict_method method_of(const lb__kv_stage *st)
{
    for (int m = 0; m < LB_EVICT_NMETHODS; m++)
        if (!strcmp(st->pol->name, lb__evict_method_name((lb__evict_method)m))) return (lb__evict_method)m;
    LB_ASSERT(0);
    return LB_EVICT_RANDOM;
}

/* The scorer's parameters from a stage of c's SPEC. paged's page=0 means
 * the storage policy's page (so a dropped page is a freed page). */
static void params_of(const lb_kv *c, const lb__kv_stage *st, lb__evict_params *p)
{
    lb__evict_defaults(p, method_of(st));
    p->ratio = lb__kv_get(st, "ratio");
    p->n_sink = (int64_t)get_or(st, "sink", 4);
    p->window = (int64_t)get_or(st, "window", 64);
    p->kernel = (int64_t)get_or(st, "kernel", 5);
    p->page = (int64_t)get_or(st, "page", 16);
    const lb__kv_spec *spec = lb__kv_spec_of(c);
    const lb__kv_stage *store = &spec->st[spec->store];
    if (p->page == 0) p->page = has(store, "page") ? (int64_t)lb__kv_get(store, "page") : 16;
    p->n_future = (int64_t)get_or(st, "future", 512);
    p->eps = get_or(st, "eps", 0);
    p->seed = (uint64_t)get_or(st, "seed", 0);
    p->ada_alpha = get_or(st, "ada", 0) > 0 ? get_or(st, "floor", 0.2) : -1;
}

/* One layer's worth of scratch. */
typedef struct ev_work {
    float *k, *v, *score;        /* (sum_h T_h, hd), (sum_h T_h) */
    int64_t *idx, *T, *keep, *nk;
    double *dscr;
    void *rank;
    float **sc;
    int64_t **ix;
} ev_work;

static void work_free(ev_work *w)
{
    free(w->k); free(w->v); free(w->score); free(w->idx); free(w->T); free(w->keep); free(w->nk);
    free(w->dscr); free(w->rank); free(w->sc); free(w->ix);
    memset(w, 0, sizeof *w);
}

/* Scratch for a layer of H heads holding tot tokens, the largest head Tmax. */
static lb_status work_alloc(ev_work *w, const lb__evict_params *p, const lb__kv_shape *sh, int64_t tot, int64_t Tmax)
{
    int64_t H = sh->n_kv_heads, hd = sh->head_dim;
    lb__evict_head probe = {.T = Tmax, .hd = hd};
    memset(w, 0, sizeof *w);
    w->k = lb__alloc(sizeof(float) * (size_t)(tot * hd + 1));
    w->v = lb__alloc(sizeof(float) * (size_t)(tot * hd + 1));
    w->score = lb__alloc(sizeof(float) * (size_t)(tot + 1));
    w->idx = lb__alloc(sizeof(int64_t) * (size_t)(tot + 1));
    w->T = lb__alloc(sizeof(int64_t) * (size_t)H);
    w->keep = lb__alloc(sizeof(int64_t) * (size_t)H);
    w->nk = lb__alloc(sizeof(int64_t) * (size_t)H);
    w->dscr = lb__alloc(sizeof(double) * (size_t)(lb__evict_scratch(p, &probe) + 1));
    w->rank = lb__alloc((size_t)lb__evict_rank_bytes(tot + 1));
    w->sc = lb__alloc(sizeof(float *) * (size_t)H);
    w->ix = lb__alloc(sizeof(int64_t *) * (size_t)H);
    if (!w->k || !w->v || !w->score || !w->idx || !w->T || !w->keep || !w->nk || !w->dscr || !w->rank || !w->sc || !w->ix) {
        work_free(w);
        return LB_ERR_NOMEM;
    }
    return LB_OK;
}

/* Score every head of layer l into w->sc[h] (keys/values read into w). */
static lb_status score_layer(const lb_kv *c, const lb__evict_params *p, int64_t l, ev_work *w)
{
    const lb__kv_shape *sh = lb__kv_shape_of(c);
    int64_t H = sh->n_kv_heads, hd = sh->head_dim, group = sh->n_heads / H, off = 0;
    const float *qpost = NULL, *qpre = NULL;
    const int32_t *qpos = NULL;
    int64_t nq = lb__kv_wants_q(c) ? lb__kv_queries(c, l, &qpost, &qpre, &qpos) : 0;
    for (int64_t h = 0; h < H; h++) {
        int64_t T = w->T[h];
        float *k = w->k + off * hd, *v = w->v + off * hd;
        w->sc[h] = w->score + off;
        w->ix[h] = w->idx + off;
        lb__kv_read(c, l, h, 0, T, k, v);
        lb__evict_head in = {T, hd, k, v, lb__kv_positions(c, l, h), nq, group, sh->n_heads * hd,
                             qpost ? qpost + h * group * hd : NULL, qpos, sh->rope_inv_freq,
                             sh->rope_interleaved, 0, qpre ? qpre + h * group * hd : NULL};
        in.next_pos = T > 0 ? (int64_t)in.pos[T - 1] + 1 : 0;
        lb__evict_params hp = *p;
        hp.seed = p->seed ^ (uint64_t)(l * 1000003 + h) * 0x9E3779B97F4A7C15ull;
        lb_status st = lb__evict_score(&hp, &in, w->sc[h], w->dscr);
        if (st) return st;
        off += T;
    }
    return LB_OK;
}

/* TOVA over the whole layer when every head holds the same positions. */
static void tova_layer_mean(const lb_kv *c, int64_t l, ev_work *w, int64_t H)
{
    const int32_t *p0 = lb__kv_positions(c, l, 0);
    for (int64_t h = 1; h < H; h++)
        if (w->T[h] != w->T[0] || memcmp(lb__kv_positions(c, l, h), p0, sizeof(int32_t) * (size_t)w->T[0])) return;
    for (int64_t j = 0; j < w->T[0]; j++) {
        double s = 0;
        for (int64_t h = 0; h < H; h++) s += w->sc[h][j];
        for (int64_t h = 0; h < H; h++) w->sc[h][j] = (float)(s / (double)H);
    }
}

/* Compress layer l so that head h keeps keep[h] (or, with AdaKV, the layer
 * keeps their sum). */
static lb_status compress_layer(lb_kv *c, const lb__evict_params *p, int64_t l, ev_work *w)
{
    int64_t H = lb__kv_shape_of(c)->n_kv_heads;
    lb_status st = score_layer(c, p, l, w);
    if (st) return st;
    if (p->method == LB_EVICT_TOVA) tova_layer_mean(c, l, w, H);
    if (p->ada_alpha >= 0)
        lb__evict_adakv(H, w->T, (const float *const *)w->sc, w->keep, p->ada_alpha, w->nk, w->ix, w->rank);
    else
        for (int64_t h = 0; h < H; h++) {
            lb__evict_topk(w->sc[h], w->T[h], w->keep[h], w->ix[h], w->rank);
            w->nk[h] = w->keep[h];
        }
    for (int64_t h = 0; h < H && !st; h++)
        if (w->nk[h] < w->T[h]) st = lb__kv_keep(c, l, h, w->ix[h], w->nk[h]);
    return st;
}

/* Run one compress over the layers for which budget() says so: budget fills
 * keep[h] from the heads' token counts T[h] and returns false to leave the
 * layer alone (checked before any scratch is allocated, so a decode step
 * that triggers nothing allocates nothing for up to 256 kv heads); step then
 * compresses the layer. */
typedef bool (*budget_fn)(const lb_kv *c, const lb__evict_params *p, const lb__kv_stage *st, int64_t l,
                          const int64_t *T, int64_t *keep);

#define STACK_HEADS 256

typedef lb_status (*layer_fn)(lb_kv *c, const lb__evict_params *p, int64_t l, ev_work *w);

static lb_status run(lb_kv *c, const lb__kv_stage *stage, budget_fn budget, layer_fn step)
{
    const lb__kv_shape *sh = lb__kv_shape_of(c);
    int64_t H = sh->n_kv_heads, Tb[STACK_HEADS], Kb[STACK_HEADS];
    int64_t *T = H <= STACK_HEADS ? Tb : lb__alloc(sizeof(int64_t) * (size_t)H);
    int64_t *K = H <= STACK_HEADS ? Kb : lb__alloc(sizeof(int64_t) * (size_t)H);
    lb__evict_params p;
    params_of(c, stage, &p);
    lb_status st = T && K ? LB_OK : LB_ERR_NOMEM;
    for (int64_t l = 0; l < sh->n_layers && !st; l++) {
        int64_t tot = 0, Tmax = 0;
        for (int64_t h = 0; h < H; h++) {
            T[h] = lb__kv_tokens(c, l, h);
            tot += T[h];
            Tmax = lb__max64(Tmax, T[h]);
        }
        if (!budget(c, &p, stage, l, T, K)) continue;
        ev_work w;
        if ((st = work_alloc(&w, &p, sh, tot, Tmax))) break;
        memcpy(w.T, T, sizeof(int64_t) * (size_t)H);
        memcpy(w.keep, K, sizeof(int64_t) * (size_t)H);
        st = step(c, &p, l, &w);
        work_free(&w);
    }
    if (T != Tb) free(T);
    if (K != Kb) free(K);
    return st;
}

static bool budget_prefill(const lb_kv *c, const lb__evict_params *p, const lb__kv_stage *st, int64_t l,
                           const int64_t *T, int64_t *keep)
{
    bool any = false;
    for (int64_t h = 0; h < lb__kv_shape_of(c)->n_kv_heads; h++) {
        keep[h] = lb__evict_nkeep(T[h], p->ratio);
        any |= keep[h] < T[h];
    }
    return any;
}

/* The decode target of layer l: the target parameter, or int(seen (1 - r))
 * of the positions seen so far. */
static int64_t decode_target(const lb_kv *c, const lb__evict_params *p, const lb__kv_stage *st, int64_t l,
                             const int64_t *T)
{
    int64_t tgt = (int64_t)lb__kv_get(st, "target"), seen = 0;
    if (tgt > 0) return tgt;
    for (int64_t h = 0; h < lb__kv_shape_of(c)->n_kv_heads; h++)
        if (T[h] > 0) seen = lb__max64(seen, (int64_t)lb__kv_positions(c, l, h)[T[h] - 1] + 1);
    return lb__evict_nkeep(seen, p->ratio);
}

static bool budget_decode(const lb_kv *c, const lb__evict_params *p, const lb__kv_stage *st, int64_t l,
                          const int64_t *T, int64_t *keep)
{
    int64_t every = (int64_t)lb__kv_get(st, "every"), H = lb__kv_shape_of(c)->n_kv_heads, mx = 0;
    int64_t tgt = decode_target(c, p, st, l, T);
    for (int64_t h = 0; h < H; h++) mx = lb__max64(mx, T[h]);
    if (every <= 0 || mx < tgt + every) return false;
    for (int64_t h = 0; h < H; h++) keep[h] = lb__min64(tgt, T[h]);
    return true;
}

/* The prefill call of a decoding stage (every > 0): back to the target now
 * when above it. */
static bool budget_target(const lb_kv *c, const lb__evict_params *p, const lb__kv_stage *st, int64_t l,
                          const int64_t *T, int64_t *keep)
{
    int64_t H = lb__kv_shape_of(c)->n_kv_heads, tgt = decode_target(c, p, st, l, T);
    bool any = false;
    for (int64_t h = 0; h < H; h++) {
        keep[h] = lb__min64(tgt, T[h]);
        any |= keep[h] < T[h];
    }
    return any;
}

lb_status lb__evict_stage_compress(lb_kv *c, const lb__kv_stage *st)
{
    return run(c, st, has(st, "every") && lb__kv_get(st, "every") > 0 ? budget_target : budget_prefill,
               compress_layer);
}

/* PagedEviction at decode, on layer l whose heads hold T[h]: each head whose
 * last page has just filled and which holds more than its target drops its
 * lowest page (evict.h). */
static bool budget_paged(const lb_kv *c, const lb__evict_params *p, const lb__kv_stage *st, int64_t l,
                         const int64_t *T, int64_t *due)
{
    int64_t tgt = decode_target(c, p, st, l, T);
    bool any = false;
    for (int64_t h = 0; h < lb__kv_shape_of(c)->n_kv_heads; h++) {
        due[h] = T[h] > tgt && T[h] % p->page == 0;
        any |= due[h] != 0;
    }
    return any;
}

static lb_status drop_pages(lb_kv *c, const lb__evict_params *p, int64_t l, ev_work *w)
{
    lb_status st = score_layer(c, p, l, w);
    for (int64_t h = 0; h < lb__kv_shape_of(c)->n_kv_heads && !st; h++) {
        int64_t pg = w->keep[h] ? lb__evict_paged_pick(w->sc[h], w->T[h], p->page) : -1, n = 0;
        if (pg < 0) continue;
        for (int64_t i = 0; i < w->T[h]; i++)
            if (i / p->page != pg) w->ix[h][n++] = i;
        st = lb__kv_keep(c, l, h, w->ix[h], n);
    }
    return st;
}

lb_status lb__evict_decode(lb_kv *c)
{
    const lb__kv_spec *spec = lb__kv_spec_of(c);
    lb_status st = LB_OK;
    for (int i = 0; i < spec->n && !st; i++) {
        const lb__kv_stage *s = &spec->st[i];
        if (s->pol->kind != LB_KV_EVICT || s->pol->compress != lb__evict_stage_compress) continue;
        if (!strcmp(s->pol->name, "paged")) {
            if (lb__kv_get(s, "decode") > 0) st = run(c, s, budget_paged, drop_pages);
        } else if (lb__kv_get(s, "every") > 0) {
            st = run(c, s, budget_decode, compress_layer);
        }
    }
    return st;
}

/* The per-head scorer alone (the registry's score hook: e.g. ThinKV-style
 * mixed precision ranks tokens with it). */
lb_status lb__evict_stage_score(const lb_kv *c, const lb__kv_stage *stage, int64_t l, int64_t kvh, float *score)
{
    const lb__kv_shape *sh = lb__kv_shape_of(c);
    lb__evict_params p;
    params_of(c, stage, &p);
    int64_t T = lb__kv_tokens(c, l, kvh), hd = sh->head_dim, group = sh->n_heads / sh->n_kv_heads;
    lb__evict_head probe = {.T = T, .hd = hd};
    float *k = lb__alloc(sizeof(float) * (size_t)(T * hd + 1)), *v = lb__alloc(sizeof(float) * (size_t)(T * hd + 1));
    double *scr = lb__alloc(sizeof(double) * (size_t)(lb__evict_scratch(&p, &probe) + 1));
    lb_status st = k && v && scr ? LB_OK : LB_ERR_NOMEM;
    if (!st) {
        const float *qpost = NULL, *qpre = NULL;
        const int32_t *qpos = NULL;
        int64_t nq = lb__kv_wants_q(c) ? lb__kv_queries(c, l, &qpost, &qpre, &qpos) : 0;
        lb__kv_read(c, l, kvh, 0, T, k, v);
        lb__evict_head in = {T, hd, k, v, lb__kv_positions(c, l, kvh), nq, group, sh->n_heads * hd,
                             qpost ? qpost + kvh * group * hd : NULL, qpos, sh->rope_inv_freq, sh->rope_interleaved, 0,
                             qpre ? qpre + kvh * group * hd : NULL};
        in.next_pos = T > 0 ? (int64_t)in.pos[T - 1] + 1 : 0;
        p.seed ^= (uint64_t)(l * 1000003 + kvh) * 0x9E3779B97F4A7C15ull;
        st = lb__evict_score(&p, &in, score, scr);
    }
    free(k); free(v); free(scr);
    return st;
}

lb_status lb__evict_stage_check(const lb__kv_stage *st, const lb__kv_spec *spec, const lb__kv_shape *sh, const char *opt)
{
    if (has(st, "kernel") && (int64_t)lb__kv_get(st, "kernel") % 2 == 0)
        return lb__err(LB_ERR_ARG, "%s: %s: kernel=%lld must be odd", opt, st->pol->name,
                       (long long)lb__kv_get(st, "kernel"));
    if (has(st, "window") && lb__kv_get(st, "window") > LB_EVICT_QLOG)
        return lb__err(LB_ERR_ARG, "%s: %s: window=%g is longer than the %d queries logged", opt, st->pol->name,
                       lb__kv_get(st, "window"), LB_EVICT_QLOG);
    if (given(st, "target") && !given(st, "every") && !given(st, "decode"))
        return lb__err(LB_ERR_ARG, "%s: %s: target applies at decode only; add every=N", opt, st->pol->name);
    if (sh && has(st, "target") && lb__kv_get(st, "target") > (double)sh->max_ctx)
        return lb__err(LB_ERR_ARG, "%s: %s: target=%g exceeds the context (%lld)", opt, st->pol->name,
                       lb__kv_get(st, "target"), (long long)sh->max_ctx);
    if (given(st, "floor") && !(lb__kv_get(st, "ada") > 0))
        return lb__err(LB_ERR_ARG, "%s: %s: floor is an AdaKV parameter; add ada=1", opt, st->pol->name);
    return LB_OK;
}
