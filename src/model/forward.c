/* forward.c: the transformer forward pass (llama family: Llama, Mistral,
 * Qwen2, Qwen3) with FP32 activations and the KV cache of src/kv (the
 * session's SPEC: f32 by default, the exact cache).
 *
 * Per layer, for a batch of B tokens at positions pos .. pos+B-1:
 *   h   = RMSNorm(x) * attn_norm
 *   q,k,v = Wq h (+bq), Wk h (+bk), Wv h (+bv)      (matmul over the batch)
 *   Qwen3: q, k = per-head RMSNorm(q) * q_norm, RMSNorm(k) * k_norm
 *   q, k = RoPE(q, k, position)  (interleaved pairs or rotate-half)
 *   cache.append(k, v);  a = cache.attend(q): softmax(q K^T / sqrt(hd)) V  (causal, GQA)
 *   (XQuant: cache.append_x(h) instead, and the cache rematerializes every
 *   held token's k, v from its stored h through kv_remat before attending)
 *   x  += Wo a
 *   x  += Wdown (silu(Wgate h2) * Wup h2),  h2 = RMSNorm(x) * ffn_norm
 * logits = Wout RMSNorm(x) * final_norm.
 *
 * Determinism: every matrix product goes through the canonical-order kernels
 * (kernels.h), attention scores too (the dots kernel); everything else (norm
 * scales, softmax, the elementwise attention sums of the wsum kernel) is
 * plain sequential code executed identically for a token whether it comes in a
 * prefill batch or alone, and for any thread count (work is split by token x
 * head or by output row, never inside a sum). A cache whose stored form of
 * a token changes as later tokens arrive (a quantizing policy with a
 * residual window, KIVI's key groups) is filled and attended one token at a
 * time, so a batch still equals token-by-token decoding. */
#include "kv/kv.h"
#include "kv/evict.h"
#include "model/model.h"
#include <math.h>

typedef struct layer_f32 {     /* small per-layer vectors converted once */
    float *attn_norm, *ffn_norm;   /* (dim) */
    float *bq, *bk, *bv;           /* (q_dim), (kv_dim), (kv_dim) or NULL */
    float *q_norm, *k_norm;        /* (head_dim) or NULL */
} layer_f32;

struct lb_session {
    const lb_model *m;
    const lb_kernels *k;       /* the active ISA path, taken at each lb_forward */
    lb_pool *pool;
    int n_threads;
    int64_t max_ctx, max_batch, pos;
    int64_t dim, q_dim, kv_dim, hd, hidden, vocab;
    layer_f32 *lw;             /* (n_layers) */
    float *final_norm;         /* (dim) */
    float *rope_cos, *rope_sin;/* (max_ctx, hd/2) */
    float *x, *h;              /* (max_batch, dim) residual stream, normed input */
    float *q, *kk, *vv;        /* (max_batch, q_dim), (max_batch, kv_dim) x2 */
    float *att;                /* (max_batch, q_dim) attention output */
    float *gate, *up;          /* (max_batch, hidden) */
    float *qpre;               /* (q_dim) a query before RoPE, when the cache keeps queries */
    double *inv_freq;          /* (hd/2) RoPE inverse frequencies */
    lb_kv *kv;                 /* the KV cache (src/kv) */
    float *last;               /* (dim) final-normed last token */
    lb_wspace *ws;             /* the products' workspace (src/weights), sized for this model and batch */
    lb__tap_fn tap;            /* sees every linear input (calibration); NULL = off */
    void *tap_user;
};

/* ---- validation */

static lb_status check_weight(const lb_weight *w, const char *name, int64_t l, int64_t rows, int64_t cols,
                              bool optional)
{
    if (!w->rep && optional) return LB_OK;
    char nm[64];
    if (l >= 0) snprintf(nm, sizeof nm, "layer %lld: %s", (long long)l, name);
    else snprintf(nm, sizeof nm, "%s", name);
    return lb__weight_check(w, nm, rows, cols);
}

static lb_status check_model(const lb_model *m)
{
    const lb_config *c = &m->cfg;
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
        c->head_dim % 2 || c->hidden_dim <= 0 || c->vocab_size <= 0 || c->n_heads % c->n_kv_heads)
        return lb__err(LB_ERR_FORMAT, "model: inconsistent configuration (dim %lld, heads %lld/%lld, head_dim %lld)",
                       (long long)c->dim, (long long)c->n_heads, (long long)c->n_kv_heads, (long long)c->head_dim);
    int64_t d = c->dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, hd = c->head_dim;
    lb_status s = check_weight(&m->tok_embed, "tok_embed", -1, c->vocab_size, d, false);
    if (!s) s = check_weight(&m->final_norm, "final_norm", -1, 1, d, false);
    if (!s) s = check_weight(m->lm_head.rep ? &m->lm_head : &m->tok_embed, "lm_head", -1, c->vocab_size, d, false);
    for (int64_t l = 0; l < c->n_layers && !s; l++) {
        const lb_layer_weights *L = &m->layers[l];
        s = check_weight(&L->attn_norm, "attn_norm", l, 1, d, false);
        if (!s) s = check_weight(&L->wq, "wq", l, qd, d, false);
        if (!s) s = check_weight(&L->wk, "wk", l, kvd, d, false);
        if (!s) s = check_weight(&L->wv, "wv", l, kvd, d, false);
        if (!s) s = check_weight(&L->wo, "wo", l, d, qd, false);
        if (!s) s = check_weight(&L->ffn_norm, "ffn_norm", l, 1, d, false);
        if (!s) s = check_weight(&L->w_gate, "w_gate", l, c->hidden_dim, d, false);
        if (!s) s = check_weight(&L->w_up, "w_up", l, c->hidden_dim, d, false);
        if (!s) s = check_weight(&L->w_down, "w_down", l, d, c->hidden_dim, false);
        if (!s) s = check_weight(&L->bq, "bq", l, 1, qd, !c->qkv_bias);
        if (!s) s = check_weight(&L->bk, "bk", l, 1, kvd, !c->qkv_bias);
        if (!s) s = check_weight(&L->bv, "bv", l, 1, kvd, !c->qkv_bias);
        if (!s) s = check_weight(&L->q_norm, "q_norm", l, 1, hd, !c->qk_norm);
        if (!s) s = check_weight(&L->k_norm, "k_norm", l, 1, hd, !c->qk_norm);
    }
    return s;
}

/* ---- creation */

/* A 1-D weight as a new F32 array (NULL when absent or on failure: *st set). */
static float *vec_f32(const lb_weight *w, lb_status *st)
{
    if (!w->rep || *st) return NULL;
    float *v = lb__alloc(sizeof(float) * (size_t)(w->rows * w->cols));
    if (!v) { *st = LB_ERR_NOMEM; return NULL; }
    if ((*st = lb__weight_f32(w, v))) LB_FREE(v);
    return v;
}

/* Inverse frequencies of the rotary pairs, with llama3 rope scaling when
 * rope_factor > 0 (as transformers' _compute_llama3_parameters). */
static double rope_inv_freq(const lb_config *c, int64_t i)
{
    double f = pow((double)c->rope_theta, -2.0 * (double)i / (double)c->head_dim);
    if (c->rope_factor <= 0) return f;
    double old = (double)c->rope_orig_max_pos, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
    double wavelen = 2 * M_PI / f, lo_wl = old / lo, hi_wl = old / hi;
    if (wavelen < hi_wl) return f;
    if (wavelen > lo_wl) return f / c->rope_factor;
    double smooth = (old / wavelen - lo) / (hi - lo);
    return (1 - smooth) * f / c->rope_factor + smooth * f;
}

static lb_status alloc_buffers(lb_session *s)
{
    const lb_config *c = &s->m->cfg;
    int64_t B = s->max_batch, half = s->hd / 2;
    float **bufs[] = {&s->rope_cos, &s->rope_sin, &s->x, &s->h, &s->q, &s->kk, &s->vv, &s->att, &s->gate,
                      &s->up, &s->qpre, &s->last};
    size_t sizes[] = {(size_t)(s->max_ctx * half), (size_t)(s->max_ctx * half), (size_t)(B * s->dim),
                      (size_t)(B * s->dim), (size_t)(B * s->q_dim), (size_t)(B * s->kv_dim),
                      (size_t)(B * s->kv_dim), (size_t)(B * s->q_dim), (size_t)(B * s->hidden),
                      (size_t)(B * s->hidden), (size_t)s->q_dim, (size_t)s->dim};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        if (!(*bufs[i] = lb__alloc_aligned(sizeof(float) * sizes[i]))) return LB_ERR_NOMEM;
    if (!(s->inv_freq = lb__alloc(sizeof(double) * (size_t)half))) return LB_ERR_NOMEM;
    for (int64_t i = 0; i < half; i++) s->inv_freq[i] = rope_inv_freq(c, i);
    for (int64_t p = 0; p < s->max_ctx; p++)
        for (int64_t i = 0; i < half; i++) {
            double a = (double)p * s->inv_freq[i];
            s->rope_cos[p * half + i] = (float)cos(a);
            s->rope_sin[p * half + i] = (float)sin(a);
        }
    return LB_OK;
}

static lb_status convert_vectors(lb_session *s)
{
    const lb_model *m = s->m;
    lb_status st = LB_OK;
    s->lw = lb__zalloc(sizeof(layer_f32) * (size_t)m->cfg.n_layers);
    if (!s->lw) return LB_ERR_NOMEM;
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        const lb_layer_weights *L = &m->layers[l];
        layer_f32 *o = &s->lw[l];
        o->attn_norm = vec_f32(&L->attn_norm, &st);
        o->ffn_norm = vec_f32(&L->ffn_norm, &st);
        if (m->cfg.qkv_bias) {
            o->bq = vec_f32(&L->bq, &st); o->bk = vec_f32(&L->bk, &st); o->bv = vec_f32(&L->bv, &st);
        }
        if (m->cfg.qk_norm) { o->q_norm = vec_f32(&L->q_norm, &st); o->k_norm = vec_f32(&L->k_norm, &st); }
    }
    s->final_norm = vec_f32(&m->final_norm, &st);
    return st;
}

static const lb_weight *out_weight(const lb_model *m) { return m->lm_head.rep ? &m->lm_head : &m->tok_embed; }

/* The workspace of every product the pass makes. */
static lb_status create_wspace(lb_session *s)
{
    const lb_model *m = s->m;
    int n = 0;
    const lb_weight **w = lb__alloc(sizeof *w * (size_t)(7 * m->cfg.n_layers + 2));
    if (!w) return LB_ERR_NOMEM;
    w[n++] = &m->tok_embed;
    w[n++] = out_weight(m);
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        const lb_layer_weights *L = &m->layers[l];
        const lb_weight *lw[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) w[n++] = lw[i];
    }
    lb_status st = lb__wspace_create(w, n, s->max_batch, s->n_threads, &s->ws);
    LB_FREE(w);
    return st;
}

static void kv_remat(void *user, int64_t l, const float *x, int64_t n, const int32_t *pos, float *k, float *v);

/* XQuant rank=r: layer l's Wk rows then Wv rows as F32 (2 kv_dim x dim). */
static lb_status kv_weights(void *user, int64_t l, float *wkv)
{
    const lb_session *s = user;
    lb_status st = lb__weight_f32(&s->m->layers[l].wk, wkv);
    return st ? st : lb__weight_f32(&s->m->layers[l].wv, wkv + s->kv_dim * s->dim);
}

/* The cache for the SPEC (NULL or "": f32); errors name the option "kv". */
static lb_status create_kv(lb_session *s, const char *spec)
{
    const lb_config *c = &s->m->cfg;
    lb__kv_spec sp;
    lb_status st = lb__kv_parse(spec, "kv", &sp);
    if (st) return st;
    lb__kv_shape sh = {c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, s->max_ctx, s->max_batch,
                       s->n_threads, s->inv_freq, c->rope_layout == LB_ROPE_INTERLEAVED};
    lb__kv_remat rm = {c->dim, kv_remat, s, kv_weights};
    return lb__kv_create_remat(&sp, &sh, &rm, "kv", &s->kv);
}

lb_status lb_session_create(const lb_model *m, const lb_session_opts *opts, lb_session **out)
{
    LB_ARG(out, "lb_session_create: out is NULL");
    *out = NULL;
    LB_ARG(m, "lb_session_create: m is NULL");
    lb_session_opts o = opts ? *opts : (lb_session_opts){0};
    lb_status st = check_model(m);
    if (st) return st;
    const lb_config *c = &m->cfg;
    int64_t max_ctx = o.max_ctx > 0 ? o.max_ctx : c->max_seq;
    if (max_ctx <= 0 || max_ctx > (int64_t)1 << 24)
        return lb__err(LB_ERR_ARG, "session: context length %lld out of range", (long long)max_ctx);
    lb_session *s = lb__zalloc(sizeof *s);
    if (!s) return LB_ERR_NOMEM;
    s->m = m;
    s->k = lb__kernels();
    s->max_ctx = max_ctx;
    s->max_batch = o.max_batch > 0 ? lb__min64(o.max_batch, 4096) : 64;
    s->dim = c->dim; s->hd = c->head_dim; s->hidden = c->hidden_dim; s->vocab = c->vocab_size;
    s->q_dim = c->n_heads * c->head_dim; s->kv_dim = c->n_kv_heads * c->head_dim;
    st = lb_pool_create(o.n_threads, &s->pool);
    if (!st) {
        s->n_threads = lb_pool_threads(s->pool);
        st = convert_vectors(s);
    }
    if (!st) st = alloc_buffers(s);
    if (!st) st = create_wspace(s);
    if (!st) st = create_kv(s, o.kv);
    if (st) {
        lb_session_free(s);
        return st == LB_ERR_NOMEM ? lb__err_prefix(st, "session: ") : st;
    }
    *out = s;
    return LB_OK;
}

void lb_session_free(lb_session *s)
{
    if (!s) return;
    lb_pool_free(s->pool);
    for (int64_t l = 0; s->lw && l < s->m->cfg.n_layers; l++) {
        layer_f32 *o = &s->lw[l];
        LB_FREE(o->attn_norm); LB_FREE(o->ffn_norm); LB_FREE(o->bq); LB_FREE(o->bk); LB_FREE(o->bv);
        LB_FREE(o->q_norm); LB_FREE(o->k_norm);
    }
    LB_FREE(s->lw);
    LB_FREE(s->final_norm);
    float *bufs[] = {s->rope_cos, s->rope_sin, s->x, s->h, s->q, s->kk, s->vv, s->att, s->gate, s->up,
                     s->qpre, s->last};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) lb__free_aligned(bufs[i]);
    LB_FREE(s->inv_freq);
    lb__kv_free(s->kv);
    lb__wspace_free(s->ws);
    LB_FREE(s);
}

void lb_session_reset(lb_session *s)
{
    if (!s) return;
    s->pos = 0;
    lb__kv_reset(s->kv);
}
int64_t lb_session_pos(const lb_session *s) { return s ? s->pos : 0; }
int64_t lb_session_max_ctx(const lb_session *s) { return s ? s->max_ctx : 0; }

/* ---- building blocks */

/* out = x / sqrt(mean(x^2) + eps) * w, the sum of squares in canonical order. */
static void rmsnorm(const lb_kernels *k, float *out, const float *x, const float *w, int64_t n, float eps)
{
    float ss = k->dot(x, x, n);
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int64_t i = 0; i < n; i++) out[i] = w[i] * (scale * x[i]);
}

/* Rotate the pairs of one head by the angles of position p. */
static void rope_head(const lb_session *s, float *v, int64_t p)
{
    int64_t half = s->hd / 2;
    const float *cs = s->rope_cos + p * half, *sn = s->rope_sin + p * half;
    bool inter = s->m->cfg.rope_layout == LB_ROPE_INTERLEAVED;
    for (int64_t i = 0; i < half; i++) {
        int64_t a = inter ? 2 * i : i, b = inter ? 2 * i + 1 : i + half;
        float x0 = v[a], x1 = v[b];
        v[a] = x0 * cs[i] - x1 * sn[i];
        v[b] = x0 * sn[i] + x1 * cs[i];
    }
}

/* Biases, per-head k norm and RoPE at position p of one token's k, v
 * (kv_dim each), as they are appended to the cache. */
static void kv_finish(const lb_session *s, int64_t l, float *k, float *v, int64_t p)
{
    const lb_config *c = &s->m->cfg;
    const layer_f32 *w = &s->lw[l];
    if (w->bk)
        for (int64_t i = 0; i < s->kv_dim; i++) { k[i] += w->bk[i]; v[i] += w->bv[i]; }
    for (int64_t h = 0; h < c->n_kv_heads; h++) {
        float *kh = k + h * s->hd;
        if (w->k_norm) rmsnorm(s->k, kh, kh, w->k_norm, s->hd, c->norm_eps);
        rope_head(s, kh, p);
    }
}

/* XQuant (src/kv/xquant.c): keys and values of n rows of layer l's input x
 * at positions pos, by the products and RoPE the engine appends with (each
 * row's product is the canonical one whatever the batch: the same bits). */
static void kv_remat(void *user, int64_t l, const float *x, int64_t n, const int32_t *pos, float *k, float *v)
{
    lb_session *s = user;
    const lb_layer_weights *L = &s->m->layers[l];
    const lb_weight *w[2] = {&L->wk, &L->wv};
    int64_t ys[2] = {s->kv_dim, s->kv_dim};
    for (int64_t i = 0; i < n; i += s->max_batch) {
        int64_t B = lb__min64(s->max_batch, n - i);
        float *y[2] = {k + i * s->kv_dim, v + i * s->kv_dim};
        lb__linear_n(s->ws, s->pool, 2, w, x + i * s->dim, B, s->dim, y, ys);
    }
    for (int64_t t = 0; t < n; t++) kv_finish(s, l, k + t * s->kv_dim, v + t * s->kv_dim, pos[t]);
}

/* Biases, per-head q/k norm, RoPE for token t of the batch, then append k, v
 * to the cache of layer l (XQuant: the layer input instead; and the queries,
 * when the cache keeps them). */
static void qk_prepare(lb_session *s, int64_t l, int64_t t)
{
    const lb_config *c = &s->m->cfg;
    const layer_f32 *w = &s->lw[l];
    float *q = s->q + t * s->q_dim, *k = s->kk + t * s->kv_dim, *v = s->vv + t * s->kv_dim;
    int64_t p = s->pos + t;
    if (w->bq)
        for (int64_t i = 0; i < s->q_dim; i++) q[i] += w->bq[i];
    bool keep_q = lb__kv_wants_q(s->kv);
    for (int64_t h = 0; h < c->n_heads; h++) {
        float *qh = q + h * s->hd;
        if (w->q_norm) rmsnorm(s->k, qh, qh, w->q_norm, s->hd, c->norm_eps);
        if (keep_q) memcpy(s->qpre + h * s->hd, qh, sizeof(float) * (size_t)s->hd);
        rope_head(s, qh, p);
    }
    if (lb__kv_wants_x(s->kv)) {
        lb__kv_append_x(s->kv, l, p, s->h + t * s->dim);
    } else {
        kv_finish(s, l, k, v, p);
        lb__kv_append(s->kv, l, p, k, v);
    }
    if (keep_q) lb__kv_observe_q(s->kv, l, p, s->qpre, q);
}

typedef struct { lb_session *s; int64_t l, B, t; } attn_job;

/* Causal attention of (token t, kv head g) pairs over the cache (src/kv),
 * all query heads of g's group at once: token t of the batch skips the
 * B-1-t tokens appended after it. Item i covers token order[i / n_kv_heads]:
 * tokens alternate from both ends of the batch (0, B-1, 1, B-2, ...), so the
 * contiguous per-thread chunks get about equal causal work. j->t >= 0: one
 * token alone (nothing to skip). The cache computes every (t, h) in a fixed
 * order: the same bits for any split or batch. */
static void attn_task(void *ctx, int64_t b, int64_t e, int thread)
{
    attn_job *j = ctx;
    lb_session *s = j->s;
    int64_t nkv = s->m->cfg.n_kv_heads, grp = s->m->cfg.n_heads / nkv, hd = s->hd;
    for (int64_t i = b; i < e; i++) {
        int64_t o_ = i / nkv, t = j->t >= 0 ? j->t : o_ % 2 ? j->B - 1 - o_ / 2 : o_ / 2, g = i % nkv;
        int64_t skip = j->t >= 0 ? 0 : j->B - 1 - t, off = t * s->q_dim + g * grp * hd;
        lb__kv_attend_group(s->kv, j->l, g, s->q + off, grp, skip, thread, s->att + off);
    }
}

/* Append the batch's keys and values to layer l and attend. */
static void attention(lb_session *s, int64_t l, int64_t B)
{
    int64_t nh = s->m->cfg.n_kv_heads, grp = s->m->cfg.n_heads / nh;
    if (lb__kv_batch_exact(s->kv)) {
        for (int64_t t = 0; t < B; t++) qk_prepare(s, l, t);
        lb__kv_prepare(s->kv, l);   /* XQuant: K, V of the layer rematerialized once */
        attn_job j = {s, l, B, -1};
        /* ~32K multiply-adds per chunk at least: short decode steps stay on
         * the calling thread (no wake-up) */
        int64_t work = (s->pos + (B + 1) / 2) * s->hd * 2 * grp;
        lb_pool_for(s->pool, B * nh, lb__max64(1, ((int64_t)1 << 15) / lb__max64(1, work)), attn_task, &j);
        return;
    }
    for (int64_t t = 0; t < B; t++) {
        qk_prepare(s, l, t);
        lb__kv_prepare(s->kv, l);
        attn_job j = {s, l, B, t};
        int64_t work = (s->pos + t + 1) * s->hd * 2 * grp;
        lb_pool_for(s->pool, nh, lb__max64(1, ((int64_t)1 << 15) / lb__max64(1, work)), attn_task, &j);
    }
}

static void add_into(float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

/* Y = X W^T for any weight (src/weights). */
static void mm(lb_session *s, const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *y, int64_t ys)
{
    lb__linear(s->ws, s->pool, w, x, nt, xs, y, ys);
}

/* Several products sharing x, fused where the weights allow. */
static void mm_n(lb_session *s, int n, const lb_weight *const *w, const float *x, int64_t nt, int64_t xs,
                 float *const *y, const int64_t *ys)
{
    lb__linear_n(s->ws, s->pool, n, w, x, nt, xs, y, ys);
}

static void tap(lb_session *s, int64_t l, lb_site site, const float *x, int64_t B, int64_t cols)
{
    if (s->tap) s->tap(s->tap_user, l, site, x, B, cols);
}

static void layer(lb_session *s, int64_t l, int64_t B)
{
    const lb_config *c = &s->m->cfg;
    const lb_layer_weights *L = &s->m->layers[l];
    int64_t d = s->dim;
    for (int64_t t = 0; t < B; t++) rmsnorm(s->k, s->h + t * d, s->x + t * d, s->lw[l].attn_norm, d, c->norm_eps);
    tap(s, l, LB_SITE_QKV, s->h, B, d);
    const lb_weight *qkv[3] = {&L->wq, &L->wk, &L->wv};
    float *qkv_out[3] = {s->q, s->kk, s->vv};
    int64_t qkv_ys[3] = {s->q_dim, s->kv_dim, s->kv_dim};
    mm_n(s, lb__kv_wants_x(s->kv) ? 1 : 3, qkv, s->h, B, d, qkv_out, qkv_ys);   /* XQuant: K, V come from X */
    attention(s, l, B);
    tap(s, l, LB_SITE_O, s->att, B, s->q_dim);
    mm(s, &L->wo, s->att, B, s->q_dim, s->h, d);
    add_into(s->x, s->h, B * d);
    for (int64_t t = 0; t < B; t++) rmsnorm(s->k, s->h + t * d, s->x + t * d, s->lw[l].ffn_norm, d, c->norm_eps);
    tap(s, l, LB_SITE_GATEUP, s->h, B, d);
    const lb_weight *gu[2] = {&L->w_gate, &L->w_up};
    float *gu_out[2] = {s->gate, s->up};
    int64_t gu_ys[2] = {s->hidden, s->hidden};
    mm_n(s, 2, gu, s->h, B, d, gu_out, gu_ys);
    for (int64_t i = 0; i < B * s->hidden; i++) {
        float g = s->gate[i];
        s->gate[i] = g / (1.0f + expf(-g)) * s->up[i];
    }
    tap(s, l, LB_SITE_DOWN, s->gate, B, s->hidden);
    mm(s, &L->w_down, s->gate, B, s->hidden, s->h, d);
    add_into(s->x, s->h, B * d);
}

/* One batch of B <= max_batch tokens. logits: NULL, the last token's row
 * (all = false) or B rows (all = true). */
static void run_batch(lb_session *s, const int32_t *tok, int64_t B, float *logits, bool all)
{
    const lb_model *m = s->m;
    int64_t d = s->dim;
    for (int64_t t = 0; t < B; t++)
        lb__weight_row(&m->tok_embed, tok[t], s->x + t * d);
    for (int64_t l = 0; l < m->cfg.n_layers; l++) layer(s, l, B);
    s->pos += B;
    if (!logits) return;
    if (all) {
        for (int64_t t = 0; t < B; t++) rmsnorm(s->k, s->h + t * d, s->x + t * d, s->final_norm, d, m->cfg.norm_eps);
        mm(s, out_weight(m), s->h, B, d, logits, s->vocab);
    } else {
        rmsnorm(s->k, s->last, s->x + (B - 1) * d, s->final_norm, d, m->cfg.norm_eps);
        mm(s, out_weight(m), s->last, 1, d, logits, s->vocab);
    }
}

static lb_status forward(lb_session *s, const int32_t *tokens, int64_t n, float *logits, bool all)
{
    if (n < 0 || (n > 0 && !tokens)) return lb__err(LB_ERR_ARG, "forward: bad token array");
    if (n > s->max_ctx - s->pos)
        return lb__err(LB_ERR_ARG, "forward: %lld tokens at position %lld exceed the context of %lld", (long long)n,
                       (long long)s->pos, (long long)s->max_ctx);
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->vocab)
            return lb__err(LB_ERR_ARG, "forward: token %d at index %lld is outside the vocabulary (%lld)", tokens[i],
                           (long long)i, (long long)s->vocab);
    s->k = lb__kernels();
    for (int64_t i = 0; i < n; i += s->max_batch) {
        int64_t B = lb__min64(s->max_batch, n - i);
        bool last = i + B == n;
        float *lg = all ? logits + i * s->vocab : (last ? logits : NULL);
        run_batch(s, tokens + i, B, lg, all);
        lb_status st = lb__evict_decode(s->kv);   /* decode-time eviction stages (every=N) */
        if (st) return st;
    }
    return LB_OK;
}

lb_status lb_forward(lb_session *s, const int32_t *tokens, int64_t n, float *logits)
{
    LB_ARG(s, "lb_forward: session is NULL");
    LB_ARG(tokens || n <= 0, "lb_forward: tokens is NULL");
    return forward(s, tokens, n, logits, false);
}

lb_status lb_forward_all(lb_session *s, const int32_t *tokens, int64_t n, float *logits)
{
    LB_ARG(s, "lb_forward_all: session is NULL");
    LB_ARG(tokens || n <= 0, "lb_forward_all: tokens is NULL");
    LB_ARG(logits, "lb_forward_all: logits is NULL (lb_forward_all needs a logits buffer)");
    return forward(s, tokens, n, logits, true);
}

/* ---- layer by layer (the calibration stage, src/calib) */

void lb__session_tap(lb_session *s, lb__tap_fn fn, void *user)
{
    s->tap = fn;
    s->tap_user = user;
}

lb_status lb__session_embed(lb_session *s, const int32_t *tokens, int64_t n, float *x)
{
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->vocab)
            return lb__err(LB_ERR_ARG, "token %d at index %lld is outside the vocabulary (%lld)", tokens[i],
                           (long long)i, (long long)s->vocab);
    for (int64_t i = 0; i < n; i++) lb__weight_row(&s->m->tok_embed, tokens[i], x + i * s->dim);
    return LB_OK;
}

lb_status lb__session_layer(lb_session *s, int64_t l, float *x, int64_t n, int64_t pos)
{
    if (l < 0 || l >= s->m->cfg.n_layers) return lb__err(LB_ERR_ARG, "layer %lld out of range", (long long)l);
    if (pos < 0 || n < 0 || n > s->max_ctx - pos)
        return lb__err(LB_ERR_ARG, "%lld tokens at position %lld exceed the context of %lld", (long long)n,
                       (long long)pos, (long long)s->max_ctx);
    s->k = lb__kernels();
    for (int64_t i = 0; i < n; i += s->max_batch) {
        int64_t B = lb__min64(s->max_batch, n - i);
        s->pos = pos + i;
        memcpy(s->x, x + i * s->dim, sizeof(float) * (size_t)(B * s->dim));
        layer(s, l, B);
        memcpy(x + i * s->dim, s->x, sizeof(float) * (size_t)(B * s->dim));
    }
    s->pos = pos + n;
    return LB_OK;
}

/* ---- the KV cache, seen from the public API */

lb_status lb_session_kv_stats(const lb_session *s, lb_kv_stats *out)
{
    LB_ARG(s && out, "lb_session_kv_stats: session or out is NULL");
    lb__kv_report r;
    lb__kv_report_get(s->kv, &r);
    *out = (lb_kv_stats){s->pos, r.tokens, r.hot_tokens, r.bytes, s->pos ? (double)r.bytes / (double)s->pos : 0,
                         lb__kv_spec_of(s->kv)->text};
    return LB_OK;
}

struct lb_kv *lb__session_kv(lb_session *s) { return s->kv; }

lb_status lb_session_kv_compress(lb_session *s)
{
    LB_ARG(s, "lb_session_kv_compress: session is NULL");
    return lb__kv_compress(s->kv);
}
