/* stats.c: an interim collector of the statistics Wanda and SparseGPT need
 * (H = mean x x^T, sq = mean x^2 per input) for lb_model_prune when it is
 * given calibration tokens instead of an lb_calib: one pass of the dense
 * model over the tokens (sequences of ctx), reading every linear input
 * through the forward pass's tap. The calib module (src/calib) collects the
 * same statistics layer by layer; once merged, lb_model_prune takes an
 * lb_calib and this file goes. Sums run in double in token order on the
 * calling thread, so the result does not depend on the thread count. */
#include "sparsity/prune.h"
#include <stdio.h>

struct lb__pstats {
    int64_t n_layers, T;
    int64_t cols[LB_SITE_COUNT];
    double *H[64][LB_SITE_COUNT];   /* (cols, cols) sums; NULL when only sq is wanted */
    double *sq[64][LB_SITE_COUNT];  /* (cols) sums */
    bool want_h;
};

static void tap(void *user, int64_t layer, lb_site site, const float *x, int64_t n_tok, int64_t cols)
{
    lb__pstats *p = user;
    double *H = p->H[layer][site], *sq = p->sq[layer][site];
    for (int64_t t = 0; t < n_tok; t++) {
        const float *xt = x + t * cols;
        for (int64_t i = 0; i < cols; i++) {
            sq[i] += (double)xt[i] * xt[i];
            if (!H) continue;
            double xi = xt[i];
            double *hi = H + i * cols;
            for (int64_t j = 0; j < cols; j++) hi[j] += xi * xt[j];
        }
    }
    if (layer == 0 && site == LB_SITE_QKV) p->T += n_tok;
}

void lb__pstats_free(lb__pstats *p)
{
    if (!p) return;
    for (int64_t l = 0; l < p->n_layers; l++)
        for (int s = 0; s < LB_SITE_COUNT; s++) { LB_FREE(p->H[l][s]); LB_FREE(p->sq[l][s]); }
    LB_FREE(p);
}

static lb_status alloc_sites(lb__pstats *p, const lb_config *c)
{
    p->cols[LB_SITE_QKV] = c->dim;
    p->cols[LB_SITE_O] = c->n_heads * c->head_dim;
    p->cols[LB_SITE_GATEUP] = c->dim;
    p->cols[LB_SITE_DOWN] = c->hidden_dim;
    for (int64_t l = 0; l < p->n_layers; l++)
        for (int s = 0; s < LB_SITE_COUNT; s++) {
            int64_t n = p->cols[s];
            p->sq[l][s] = lb__zalloc(sizeof(double) * (size_t)n);
            if (p->want_h) p->H[l][s] = lb__zalloc(sizeof(double) * (size_t)(n * n));
            if (!p->sq[l][s] || (p->want_h && !p->H[l][s])) return lb__err(LB_ERR_NOMEM, "out of memory (statistics)");
        }
    return LB_OK;
}

lb_status lb__pstats_collect(const lb_model *m, const int32_t *tokens, int64_t n, int64_t ctx, bool want_h,
                             int n_threads, lb__pstats **out)
{
    *out = NULL;
    if (n < 1) return lb__err(LB_ERR_ARG, "calibration: no tokens");
    if (m->cfg.n_layers > 64) return lb__err(LB_ERR_UNSUPPORTED, "calibration: more than 64 layers");
    lb__pstats *p = lb__zalloc(sizeof *p);
    if (!p) return lb__err(LB_ERR_NOMEM, "out of memory");
    p->n_layers = m->cfg.n_layers;
    p->want_h = want_h;
    ctx = ctx > 0 ? ctx : 128;
    if (ctx > m->cfg.max_seq) ctx = m->cfg.max_seq;
    lb_session *s = NULL;
    lb_status st = alloc_sites(p, &m->cfg);
    if (!st) st = lb_session_create(m, &(lb_session_opts){.n_threads = n_threads, .max_ctx = ctx}, &s);
    if (!st) lb__session_tap(s, tap, p);
    for (int64_t i = 0; i < n && !st; i += ctx) {
        lb_session_reset(s);
        st = lb_forward(s, tokens + i, lb__min64(ctx, n - i), NULL);
    }
    lb_session_free(s);
    if (st) { lb__pstats_free(p); return st; }
    *out = p;
    return LB_OK;
}

/* The site of a linear's Hugging Face name, or -1. */
static int site_of(const char *name, int64_t *layer)
{
    static const struct { const char *part; int site; } map[] = {
        {".self_attn.q_proj.", LB_SITE_QKV}, {".self_attn.k_proj.", LB_SITE_QKV}, {".self_attn.v_proj.", LB_SITE_QKV},
        {".self_attn.o_proj.", LB_SITE_O},   {".mlp.gate_proj.", LB_SITE_GATEUP}, {".mlp.up_proj.", LB_SITE_GATEUP},
        {".mlp.down_proj.", LB_SITE_DOWN}};
    long long l;
    if (sscanf(name, "model.layers.%lld.", &l) != 1) return -1;
    *layer = l;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strstr(name, map[i].part)) return map[i].site;
    return -1;
}

lb_status lb__pstats_for(const lb__pstats *p, const char *name, double *H, double *sq, int64_t cols)
{
    int64_t l = 0;
    int s = site_of(name, &l);
    if (s < 0 || l < 0 || l >= p->n_layers || p->cols[s] != cols)
        return lb__err(LB_ERR_NOTFOUND, "calibration: no statistics for '%s'", name);
    double inv = 1.0 / (double)p->T;
    for (int64_t i = 0; i < cols; i++) sq[i] = p->sq[l][s][i] * inv;
    for (int64_t i = 0; H && i < cols * cols; i++) H[i] = p->H[l][s][i] * inv;
    return LB_OK;
}
