/* names.c: the Hugging Face names of a model's weights in the order lowbit
 * writes them (docs/file-format.md): embedding, per layer its norms,
 * projections, biases, q/k norms, then the final norm and an untied lm_head.
 * Shared by the lowbit-file reader and writer and by the quantizers. */
#include "model/loader.h"

static void put_name(lb__wname *out, int64_t *n, int64_t cap, lb_weight *w, bool vector, bool linear,
                     const char *name)
{
    if (*n < cap) {
        snprintf(out[*n].name, sizeof out[*n].name, "%s", name);
        out[*n].w = w; out[*n].vector = vector; out[*n].linear = linear;
    }
    (*n)++;
}

int64_t lb__model_names(lb_model *m, lb__wname *out, int64_t cap)
{
    const lb_config *c = &m->cfg;
    int64_t n = 0;
    put_name(out, &n, cap, &m->tok_embed, false, false, "model.embed_tokens.weight");
    for (int64_t l = 0; m->layers && l < c->n_layers; l++) {
        lb_layer_weights *L = &m->layers[l];
        struct { const char *s; lb_weight *w; bool vec, lin, on; } t[] = {
            {"input_layernorm.weight", &L->attn_norm, true, false, true},
            {"self_attn.q_proj.weight", &L->wq, false, true, true},
            {"self_attn.k_proj.weight", &L->wk, false, true, true},
            {"self_attn.v_proj.weight", &L->wv, false, true, true},
            {"self_attn.q_proj.bias", &L->bq, true, false, c->qkv_bias},
            {"self_attn.k_proj.bias", &L->bk, true, false, c->qkv_bias},
            {"self_attn.v_proj.bias", &L->bv, true, false, c->qkv_bias},
            {"self_attn.q_norm.weight", &L->q_norm, true, false, c->qk_norm},
            {"self_attn.k_norm.weight", &L->k_norm, true, false, c->qk_norm},
            {"self_attn.o_proj.weight", &L->wo, false, true, true},
            {"post_attention_layernorm.weight", &L->ffn_norm, true, false, true},
            {"mlp.gate_proj.weight", &L->w_gate, false, true, true},
            {"mlp.up_proj.weight", &L->w_up, false, true, true},
            {"mlp.down_proj.weight", &L->w_down, false, true, true},
        };
        for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
            if (!t[i].on) continue;
            char name[96];
            snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)l, t[i].s);
            put_name(out, &n, cap, t[i].w, t[i].vec, t[i].lin, name);
        }
    }
    put_name(out, &n, cap, &m->final_norm, true, false, "model.norm.weight");
    if (!c->tied_embeddings) put_name(out, &n, cap, &m->lm_head, false, false, "lm_head.weight");
    return n;
}

void lb__model_name_shape(const lb_config *c, const char *s, int64_t *rows, int64_t *cols)
{
    int64_t d = c->dim, qd = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim, f = c->hidden_dim;
    int64_t r = 0, k = d;
    if (strstr(s, "embed_tokens") || strstr(s, "lm_head")) r = c->vocab_size;
    else if (strstr(s, "q_proj.weight")) r = qd;
    else if (strstr(s, "k_proj.weight") || strstr(s, "v_proj.weight")) r = kv;
    else if (strstr(s, "q_proj.bias")) k = qd;
    else if (strstr(s, "k_proj.bias") || strstr(s, "v_proj.bias")) k = kv;
    else if (strstr(s, "q_norm") || strstr(s, "k_norm")) k = c->head_dim;
    else if (strstr(s, "o_proj")) { r = d; k = qd; }
    else if (strstr(s, "gate_proj") || strstr(s, "up_proj")) r = f;
    else if (strstr(s, "down_proj")) { r = d; k = f; }
    *rows = r;
    *cols = k;
}
