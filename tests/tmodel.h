/* tmodel.h: small in-memory models with seeded random weights for the
 * forward/eval tests (the including file defines `static lb_rng rng;`). */
#ifndef LB_TEST_TMODEL_H
#define LB_TEST_TMODEL_H
#include "model/model.h"


typedef struct tmodel {
    lb_model m;
    void *blobs[64 * 16];
    int n_blobs;
} tmodel;

static lb_weight mkw(tmodel *t, lb_dtype dt, int64_t rows, int64_t cols, double std, double mean)
{
    size_t n = (size_t)(rows * cols);
    void *p = malloc(n * lb_dtype_size(dt));
    for (size_t i = 0; i < n; i++) {
        float v = (float)(mean + std * lb_rng_normal(&rng));
        if (dt == LB_DTYPE_F32) ((float *)p)[i] = v;
        else if (dt == LB_DTYPE_F16) ((uint16_t *)p)[i] = lb_f32_to_f16(v);
        else ((uint16_t *)p)[i] = lb_f32_to_bf16(v);
    }
    t->blobs[t->n_blobs++] = p;
    return lb__weight_dense(p, dt, rows, cols);
}

static void build(tmodel *t, lb_config c, lb_dtype dt)
{
    memset(t, 0, sizeof *t);
    t->m.cfg = c;
    int64_t d = c.dim, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    t->m.tok_embed = mkw(t, dt, c.vocab_size, d, 1.0, 0);
    t->m.final_norm = mkw(t, dt, 1, d, 0.1, 1.0);
    if (!c.tied_embeddings) t->m.lm_head = mkw(t, dt, c.vocab_size, d, 0.3, 0);
    else t->m.lm_head = t->m.tok_embed;
    t->m.layers = calloc((size_t)c.n_layers, sizeof(lb_layer_weights));
    t->blobs[t->n_blobs++] = t->m.layers;
    for (int64_t l = 0; l < c.n_layers; l++) {
        lb_layer_weights *L = &t->m.layers[l];
        double s = 1.0 / sqrt((double)d);
        L->attn_norm = mkw(t, dt, 1, d, 0.1, 1.0);
        L->wq = mkw(t, dt, qd, d, s, 0); L->wk = mkw(t, dt, kvd, d, s, 0); L->wv = mkw(t, dt, kvd, d, s, 0);
        L->wo = mkw(t, dt, d, qd, 1.0 / sqrt((double)qd), 0);
        L->ffn_norm = mkw(t, dt, 1, d, 0.1, 1.0);
        L->w_gate = mkw(t, dt, c.hidden_dim, d, s, 0); L->w_up = mkw(t, dt, c.hidden_dim, d, s, 0);
        L->w_down = mkw(t, dt, d, c.hidden_dim, 1.0 / sqrt((double)c.hidden_dim), 0);
        if (c.qkv_bias) { L->bq = mkw(t, dt, 1, qd, 0.2, 0); L->bk = mkw(t, dt, 1, kvd, 0.2, 0); L->bv = mkw(t, dt, 1, kvd, 0.2, 0); }
        if (c.qk_norm) { L->q_norm = mkw(t, dt, 1, c.head_dim, 0.1, 1.0); L->k_norm = mkw(t, dt, 1, c.head_dim, 0.1, 1.0); }
    }
}

static void unbuild(tmodel *t)
{
    for (int i = 0; i < t->n_blobs; i++) free(t->blobs[i]);
}

static lb_config base_cfg(void)
{
    lb_config c = {0};
    c.arch = LB_ARCH_LLAMA; c.dim = 48; c.hidden_dim = 100; c.n_layers = 2; c.n_heads = 6; c.n_kv_heads = 6;
    c.head_dim = 8; c.vocab_size = 67; c.max_seq = 40; c.norm_eps = 1e-5f; c.rope_theta = 10000;
    c.rope_layout = LB_ROPE_INTERLEAVED; c.tied_embeddings = true; c.bos_id = 1; c.eos_id = 2;
    return c;
}

static lb_config variant(int v, lb_dtype *dt)
{
    lb_config c = base_cfg();
    *dt = LB_DTYPE_F32;
    if (v == 1) {   /* Qwen2-like: GQA, rotate-half, biases, untied, BF16 */
        c.arch = LB_ARCH_QWEN2; c.n_kv_heads = 2; c.rope_layout = LB_ROPE_HALF; c.qkv_bias = true;
        c.tied_embeddings = false; c.rope_theta = 1e6f; *dt = LB_DTYPE_BF16;
    } else if (v == 2) {   /* Qwen3-like: q/k norm, head_dim 16 != 48/6, F16, llama3 scaling */
        c.arch = LB_ARCH_QWEN3; c.n_kv_heads = 3; c.head_dim = 16; c.rope_layout = LB_ROPE_HALF; c.qk_norm = true;
        c.rope_factor = 8; c.rope_low_freq_factor = 1; c.rope_high_freq_factor = 4; c.rope_orig_max_pos = 16;
        c.rope_theta = 500; c.dim = 33; c.hidden_dim = 65; *dt = LB_DTYPE_F16;
    }
    return c;
}

#endif
