/* quarot.c: QuaRot's residual-stream rotation (Ashkboos et al. 2024), as a
 * float model transform to run before quantization (lb_model_quarot).
 *
 * 1. RMSNorm weights are folded into the linears that read the norm's
 *    output: W <- W diag(g) for q/k/v (attn norm), gate/up (ffn norm) and
 *    lm_head (final norm); the norm weights become 1. RMSNorm without a
 *    weight commutes with any orthogonal T: rms(T x) = rms(x).
 * 2. The residual stream is rotated, h' = T h, T = blockdiag(H_b / sqrt(b))
 *    diag(signs) (the randomized Hadamard of the hadamard+* methods, over
 *    dim): the embedding rows e' = T e; every linear that reads the stream
 *    (through a norm) W' = W T^T: q/k/v, gate/up, lm_head; every linear that
 *    writes it W' = T W: o, down.
 * Then every q/k/v and gate/up input is the rotated one with no online
 * cost; o's and down's inputs are not rotated by this (the hadamard+*
 * methods rotate them online). The embedding stays F32 and lm_head becomes
 * its own F32 matrix (untied: the final norm is folded into it, not into
 * the embedding). Biases and q/k norms act after the q/k/v products and are
 * unchanged. In exact arithmetic the model computes the same function. */
#include "quant/quant.h"

/* A dense F32 copy of w owned by m's store, or NULL (LB_ERR_NOMEM). */
static float *f32_copy(lb_model *m, const lb_weight *w, lb_weight *out)
{
    float *p = lb__wstore_alloc(&m->store, sizeof(float) * (size_t)(w->rows * w->cols));
    if (!p || lb__weight_f32(w, p)) return NULL;
    *out = lb__weight_dense(p, LB_DTYPE_F32, w->rows, w->cols);
    return p;
}

/* Readers: W <- W diag(g) T^T (each row w <- T (g .* w)); g NULL: no fold. */
static lb_status reader(lb_model *m, const lb_weight *w, const float *g, const lb_hadamard_plan *p, const int8_t *sg,
                        lb_weight *out)
{
    float *x = f32_copy(m, w, out);
    if (!x) return LB_ERR_NOMEM;
    for (int64_t r = 0; g && r < w->rows; r++)
        for (int64_t c = 0; c < w->cols; c++) x[r * w->cols + c] *= g[c];
    return lb_hadamard_rows(x, w->rows, w->cols, p->block, sg, 0);
}

/* Writers: W <- T W (each column c <- T c), through the transpose. */
static lb_status writer(lb_model *m, const lb_weight *w, const lb_hadamard_plan *p, const int8_t *sg, lb_weight *out)
{
    float *x = f32_copy(m, w, out), *t = lb__alloc(sizeof(float) * (size_t)(w->rows * w->cols));
    lb_status s = x && t ? LB_OK : LB_ERR_NOMEM;
    int64_t R = w->rows, C = w->cols;
    for (int64_t i = 0; !s && i < R * C; i++) t[(i % C) * R + i / C] = x[i];
    if (!s) s = lb_hadamard_rows(t, C, R, p->block, sg, 0);
    for (int64_t i = 0; !s && i < R * C; i++) x[i] = t[(i % C) * R + i / C];
    LB_FREE(t);
    return s;
}

/* A norm vector of ones (F32) owned by m. */
static lb_status ones(lb_model *m, int64_t n, lb_weight *out)
{
    float *p = lb__wstore_alloc(&m->store, sizeof(float) * (size_t)n);
    if (!p) return LB_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) p[i] = 1.0f;
    *out = lb__weight_dense(p, LB_DTYPE_F32, 1, n);
    return LB_OK;
}

static lb_status layer(lb_model *d, const lb_layer_weights *S, lb_layer_weights *D, const lb_hadamard_plan *p,
                       const int8_t *sg, float *g, int64_t dim)
{
    lb_status s = lb__weight_f32(&S->attn_norm, g);
    if (!s) s = reader(d, &S->wq, g, p, sg, &D->wq);
    if (!s) s = reader(d, &S->wk, g, p, sg, &D->wk);
    if (!s) s = reader(d, &S->wv, g, p, sg, &D->wv);
    if (!s) s = ones(d, dim, &D->attn_norm);
    if (!s) s = writer(d, &S->wo, p, sg, &D->wo);
    if (!s) s = lb__weight_f32(&S->ffn_norm, g);
    if (!s) s = reader(d, &S->w_gate, g, p, sg, &D->w_gate);
    if (!s) s = reader(d, &S->w_up, g, p, sg, &D->w_up);
    if (!s) s = ones(d, dim, &D->ffn_norm);
    if (!s) s = writer(d, &S->w_down, p, sg, &D->w_down);
    const lb_weight *keep[] = {&S->bq, &S->bk, &S->bv, &S->q_norm, &S->k_norm};
    lb_weight *to[] = {&D->bq, &D->bk, &D->bv, &D->q_norm, &D->k_norm};
    for (int k = 0; !s && k < 5; k++)
        if (keep[k]->rep && !f32_copy(d, keep[k], to[k])) s = LB_ERR_NOMEM;
    return s;
}

lb_status lb_model_quarot(const lb_model *src, uint64_t seed, lb_model **out)
{
    LB_ARG(out, "lb_model_quarot: out is NULL");
    *out = NULL;
    LB_ARG(src, "lb_model_quarot: src is NULL");
    const lb_config *c = &src->cfg;
    lb_hadamard_plan p;
    lb_status s = lb_hadamard_plan_for(c->dim, 0, &p);
    if (s) return lb__err_prefix(s, "quarot: the residual stream (dim %lld): ", (long long)c->dim);
    const lb_weight *all[] = {&src->tok_embed, &src->final_norm, &src->lm_head};
    for (int k = 0; k < 3; k++)
        if (all[k]->rep != &lb__wrep_dense || all[k]->n_in)
            return lb__err(LB_ERR_UNSUPPORTED, "quarot: the model is already quantized or rotated; start from the "
                           "original");
    for (int64_t l = 0; l < c->n_layers; l++) {
        const lb_layer_weights *L = &src->layers[l];
        const lb_weight *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int k = 0; k < 7; k++)
            if (w[k]->rep != &lb__wrep_dense || w[k]->n_in)
                return lb__err(LB_ERR_UNSUPPORTED, "quarot: the model is already quantized or rotated; start from "
                               "the original");
    }
    lb_model *d = lb__model_new();
    int8_t *sg = lb__alloc((size_t)c->dim);
    float *g = lb__alloc(sizeof(float) * (size_t)c->dim);
    s = d && sg && g ? LB_OK : LB_ERR_NOMEM;
    if (!s) {
        d->cfg = *c;
        d->cfg.tied_embeddings = false;
        s = lb__model_alloc_layers(d);
    }
    if (!s) s = lb__model_set_names(d, src->path ? src->path : "", src->source_format ? src->source_format : "");
    if (!s) s = lb_hadamard_signs(seed, c->dim, sg);
    if (!s) s = reader(d, &src->tok_embed, NULL, &p, sg, &d->tok_embed);   /* e <- T e */
    for (int64_t l = 0; !s && l < c->n_layers; l++) s = layer(d, &src->layers[l], &d->layers[l], &p, sg, g, c->dim);
    if (!s) s = lb__weight_f32(&src->final_norm, g);
    if (!s) s = reader(d, &src->lm_head, g, &p, sg, &d->lm_head);
    if (!s) s = ones(d, c->dim, &d->final_norm);
    LB_FREE(sg);
    LB_FREE(g);
    if (s) { lb_model_free(d); return s; }
    *out = d;
    return LB_OK;
}
