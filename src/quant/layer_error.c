/* layer_error.c: output error of each quantized linear on real activations,
 * ||X W^T - X Q(W)^T||_F / ||X W^T||_F, X = the inputs the unquantized model
 * feeds that linear while it reads a text. The quantized product goes through
 * the inference path (lb__linear of src/weights: transforms, packed kernels).
 *
 * The inputs are read out of the engine's own forward pass without hooks: a
 * shallow copy of the model truncated after layer l, whose last layer has its
 * attention output (wo) and/or MLP output (w_down) zeroed so the residual
 * stream stops at the point wanted, whose final norm is the norm that feeds
 * the linear (attn_norm_l or ffn_norm_l) and whose lm_head is a probe matrix
 * (identity on the first dim rows), so the logits' first dim columns are
 * exactly the normed activations. down_proj's input is then
 * silu(gate x) * up x with the original weights. o_proj is not measured (its
 * input, the attention output, is not reachable this way). */
#include "quant/quant.h"
#include "model/loader.h"
#include <math.h>

typedef struct probe {
    lb_model t;
    lb_layer_weights *layers;
    float *zeros_o, *zeros_d, *eye, *logits;
} probe;

/* X (n x dim) = the input of layer l's attention (ffn = false) or MLP (true). */
static lb_status activations(const lb_model *m, probe *p, int64_t l, bool ffn, const int32_t *tok, int64_t n, float *x)
{
    const lb_config *c = &m->cfg;
    p->t = *m;
    p->t.cfg.n_layers = l + 1;
    p->t.cfg.tied_embeddings = false;
    memcpy(p->layers, m->layers, (size_t)(l + 1) * sizeof *p->layers);
    p->t.layers = p->layers;
    lb_layer_weights *L = &p->layers[l];
    L->w_down = lb__weight_dense(p->zeros_d, LB_DTYPE_F32, c->dim, c->hidden_dim);
    if (!ffn) L->wo = lb__weight_dense(p->zeros_o, LB_DTYPE_F32, c->dim, c->n_heads * c->head_dim);
    p->t.final_norm = ffn ? m->layers[l].ffn_norm : m->layers[l].attn_norm;
    p->t.lm_head = lb__weight_dense(p->eye, LB_DTYPE_F32, c->vocab_size, c->dim);
    lb_session *s = NULL;
    lb_session_opts so = {.n_threads = 0, .max_ctx = n, .max_batch = 64};
    lb_status st = lb_session_create(&p->t, &so, &s);
    if (!st) st = lb_forward_all(s, tok, n, p->logits);
    lb_session_free(s);
    for (int64_t t = 0; !st && t < n; t++) memcpy(x + t * c->dim, p->logits + t * c->vocab_size, sizeof(float) * (size_t)c->dim);
    return st;
}

/* rel error of one linear: reference X W^T (dense original) vs the quantized weight's inference path. */
static double output_error(lb_wspace *ws, lb_pool *pool, const lb_weight *orig, const lb_weight *q, const float *x,
                           int64_t n, float *y0, float *y1)
{
    lb__linear(ws, pool, orig, x, n, orig->cols, y0, orig->rows);
    lb__linear(ws, pool, q, x, n, q->cols, y1, q->rows);
    double e = 0, s = 0;
    for (int64_t i = 0; i < n * orig->rows; i++) { double d = (double)y0[i] - y1[i]; e += d * d; s += (double)y0[i] * y0[i]; }
    return s > 0 ? sqrt(e / s) : 0;
}

static lb_status probe_alloc(const lb_model *m, int64_t n, probe *p)
{
    const lb_config *c = &m->cfg;
    if (c->vocab_size < c->dim)
        return lb__err(LB_ERR_UNSUPPORTED, "layer errors need vocab_size >= dim (%lld < %lld)", (long long)c->vocab_size,
                       (long long)c->dim);
    p->layers = lb__zalloc((size_t)c->n_layers * sizeof *p->layers);
    p->zeros_o = lb__zalloc(sizeof(float) * (size_t)(c->dim * c->n_heads * c->head_dim));
    p->zeros_d = lb__zalloc(sizeof(float) * (size_t)(c->dim * c->hidden_dim));
    p->eye = lb__zalloc(sizeof(float) * (size_t)(c->vocab_size * c->dim));
    p->logits = lb__alloc(sizeof(float) * (size_t)(n * c->vocab_size));
    if (!p->layers || !p->zeros_o || !p->zeros_d || !p->eye || !p->logits) return LB_ERR_NOMEM;
    for (int64_t i = 0; i < c->dim; i++) p->eye[i * c->dim + i] = 1.0f;
    return LB_OK;
}

static void probe_free(probe *p)
{
    LB_FREE(p->layers); LB_FREE(p->zeros_o); LB_FREE(p->zeros_d); LB_FREE(p->eye); LB_FREE(p->logits);
}

/* down_proj input: silu(X Wg^T) * (X Wu^T) with the original weights. */
static void mlp_input(lb_wspace *ws, lb_pool *pool, const lb_layer_weights *L, const float *x, int64_t n, float *g,
                      float *u)
{
    lb__linear(ws, pool, &L->w_gate, x, n, L->w_gate.cols, g, L->w_gate.rows);
    lb__linear(ws, pool, &L->w_up, x, n, L->w_up.cols, u, L->w_up.rows);
    for (int64_t i = 0; i < n * L->w_gate.rows; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* The workspace of products over every linear of both models. */
static lb_status workspace(const lb_model *m, const lb_model *q, int64_t n, lb_pool *pool, lb_wspace **ws)
{
    int64_t k = 0, L = m->cfg.n_layers;
    const lb_weight **w = lb__alloc(sizeof *w * (size_t)(12 * L + 1));
    if (!w) return LB_ERR_NOMEM;
    for (int64_t l = 0; l < L; l++) {
        const lb_layer_weights *A = &m->layers[l], *Q = &q->layers[l];
        const lb_weight *all[12] = {&A->wq, &A->wk, &A->wv, &A->w_gate, &A->w_up, &A->w_down,
                                    &Q->wq, &Q->wk, &Q->wv, &Q->w_gate, &Q->w_up, &Q->w_down};
        for (int i = 0; i < 12; i++) w[k++] = all[i];
    }
    lb_status s = lb__wspace_create(w, (int)k, n, lb_pool_threads(pool), ws);
    LB_FREE(w);
    return s;
}

lb_status lb_quant_layer_errors(const lb_model *m, const lb_model *q, const int32_t *tokens, int64_t n,
                                lb_quant_layer_error **out, int64_t *n_out)
{
    if (out) *out = NULL;
    if (n_out) *n_out = 0;
    LB_ARG(m, "lb_quant_layer_errors: m is NULL");
    LB_ARG(q, "lb_quant_layer_errors: q is NULL");
    LB_ARG(tokens, "lb_quant_layer_errors: tokens is NULL");
    LB_ARG(out, "lb_quant_layer_errors: out is NULL");
    LB_ARG(n_out, "lb_quant_layer_errors: n_out is NULL");
    const lb_config *c = &m->cfg;
    if (n <= 0 || n > c->max_seq) return lb__err(LB_ERR_ARG, "layer errors: %lld tokens (1..%lld)", (long long)n, (long long)c->max_seq);
    if (memcmp(&m->cfg, &q->cfg, sizeof m->cfg)) return lb__err(LB_ERR_ARG, "layer errors: the models differ in config");
    probe p = {0};
    lb_pool *pool = NULL;
    int64_t wide = lb__max64(c->hidden_dim, lb__max64(c->dim, c->n_heads * c->head_dim));
    float *x = lb__alloc(sizeof(float) * (size_t)(n * c->dim)), *d = lb__alloc(sizeof(float) * (size_t)(n * c->hidden_dim));
    float *y0 = lb__alloc(sizeof(float) * (size_t)(n * wide)), *y1 = lb__alloc(sizeof(float) * (size_t)(n * wide));
    lb_wspace *ws = NULL;
    lb_quant_layer_error *res = lb__zalloc(sizeof *res * (size_t)(6 * c->n_layers));
    lb_status st = x && d && y0 && y1 && res ? probe_alloc(m, n, &p) : LB_ERR_NOMEM;
    if (!st) st = lb_pool_create(0, &pool);
    if (!st) st = workspace(m, q, n, pool, &ws);
    int64_t k = 0;
    static const char *nm[6] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj",
                                "mlp.up_proj", "mlp.down_proj"};
    for (int64_t l = 0; !st && l < c->n_layers; l++) {
        const lb_layer_weights *A = &m->layers[l], *Q = &q->layers[l];
        const lb_weight *wa[6] = {&A->wq, &A->wk, &A->wv, &A->w_gate, &A->w_up, &A->w_down};
        const lb_weight *wq[6] = {&Q->wq, &Q->wk, &Q->wv, &Q->w_gate, &Q->w_up, &Q->w_down};
        for (int half = 0; !st && half < 2; half++) {
            st = activations(m, &p, l, half == 1, tokens, n, x);
            if (!st && half == 1) mlp_input(ws, pool, A, x, n, d, y0);
            for (int i = half * 3; !st && i < half * 3 + 3; i++) {
                const float *in = i == 5 ? d : x;
                snprintf(res[k].name, sizeof res[k].name, "model.layers.%lld.%s.weight", (long long)l, nm[i]);
                res[k].quantized = wq[i]->rep != &lb__wrep_dense || wq[i]->n_in > 0;
                res[k].rel_err = output_error(ws, pool, wa[i], wq[i], in, n, y0, y1);
                k++;
            }
        }
    }
    lb__wspace_free(ws);
    lb_pool_free(pool);
    probe_free(&p);
    LB_FREE(x); LB_FREE(d); LB_FREE(y0); LB_FREE(y1);
    if (st) { LB_FREE(res); return st; }
    *out = res; *n_out = k;
    return LB_OK;
}
