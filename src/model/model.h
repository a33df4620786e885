/* model.h: the in-memory model shared by the loaders (which fill it) and the
 * forward pass (which reads it). Weights are borrowed views into mmap'd files
 * whenever the file's layout allows; anything converted is owned by the model
 * and freed with it.
 *
 * Weight matrices are row-major [out_features, in_features] (the PyTorch
 * nn.Linear layout, also llama2.c's): y[r] = sum_c W[r, c] * x[c]. How a
 * weight is stored (dense, block-quantized, packed, with input transforms)
 * is the weights module's business (src/weights/weights.h); the model only
 * holds lb_weight values and calls that module's entry points. */
#ifndef LB_MODEL_H
#define LB_MODEL_H

#include "weights/weights.h"   /* lb_weight: how each weight is stored and multiplied */

typedef enum lb_arch {
    LB_ARCH_LLAMA = 0,   /* llama2.c checkpoints and LlamaForCausalLM */
    LB_ARCH_MISTRAL = 1, /* MistralForCausalLM (llama + sliding window, ignored at our lengths) */
    LB_ARCH_QWEN2 = 2,   /* Qwen2ForCausalLM: q/k/v projections carry biases */
    LB_ARCH_QWEN3 = 3,   /* Qwen3ForCausalLM: per-head RMSNorm on q and k before RoPE */
} lb_arch;

typedef enum lb_rope_layout {
    LB_ROPE_INTERLEAVED = 0, /* llama2.c / Meta: rotate pairs (2i, 2i+1) of each head */
    LB_ROPE_HALF = 1,        /* Hugging Face: rotate (i, i + head_dim/2) */
} lb_rope_layout;

typedef struct lb_config {
    lb_arch arch;
    int64_t dim;          /* hidden size */
    int64_t hidden_dim;   /* MLP intermediate size */
    int64_t n_layers;
    int64_t n_heads;
    int64_t n_kv_heads;   /* grouped-query attention: n_heads % n_kv_heads == 0 */
    int64_t head_dim;     /* usually dim / n_heads; Qwen3 may differ */
    int64_t vocab_size;
    int64_t max_seq;      /* max positions (llama2.c seq_len / max_position_embeddings) */
    float norm_eps;       /* RMSNorm epsilon (llama2.c: 1e-5) */
    float rope_theta;     /* 10000 unless given */
    lb_rope_layout rope_layout;
    /* llama3 rope_scaling ("rope_type": "llama3"); off when rope_factor == 0 */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int64_t rope_orig_max_pos;
    bool tied_embeddings; /* lm_head shares tok_embed */
    bool qkv_bias;        /* Qwen2 */
    bool qk_norm;         /* Qwen3 */
    int32_t bos_id, eos_id; /* -1 when unknown */
} lb_config;

typedef struct lb_layer_weights {
    lb_weight attn_norm;          /* (dim) */
    lb_weight wq;                 /* (n_heads * head_dim, dim) */
    lb_weight wk, wv;             /* (n_kv_heads * head_dim, dim) */
    lb_weight bq, bk, bv;         /* biases, Qwen2 only */
    lb_weight q_norm, k_norm;     /* (head_dim), Qwen3 only */
    lb_weight wo;                 /* (dim, n_heads * head_dim) */
    lb_weight ffn_norm;           /* (dim) */
    lb_weight w_gate, w_up;       /* (hidden_dim, dim)  SwiGLU: down(silu(gate x) * up x) */
    lb_weight w_down;             /* (dim, hidden_dim) */
} lb_layer_weights;

struct lb_model {
    lb_config cfg;
    lb_weight tok_embed;          /* (vocab_size, dim) */
    lb_weight final_norm;         /* (dim) */
    lb_weight lm_head;            /* (vocab_size, dim); same data as tok_embed when tied */
    lb_layer_weights *layers;     /* (n_layers) */
    lb_map *maps;                 /* mapped files the views point into */
    int n_maps;
    lb_wstore store;              /* buffers the model owns for its weights (converted, packed, copied) */
    char *path;                   /* what was loaded */
    char *source_format;          /* "llama2c", "llama2c-v1", "safetensors", ... */
    int64_t n_nonfinite;          /* NaN/Inf values in dense weight matrices (a warning, found at load) */
    char nonfinite_tensor[96];    /* the first tensor holding one */
};

/* ---- layer-by-layer forward (forward.c), for the calibration stage */
/* The inputs of the linear layers: the normed input of q/k/v (dim), the
 * attention output entering o (n_heads * head_dim), the normed input of
 * gate/up (dim), the SwiGLU product entering down (hidden_dim). */
typedef enum lb_site { LB_SITE_QKV, LB_SITE_O, LB_SITE_GATEUP, LB_SITE_DOWN, LB_SITE_COUNT } lb_site;
/* Called from the calling thread with the n_tok x cols input (row stride
 * cols) of every linear site, before the product, in layer order. */
typedef void (*lb__tap_fn)(void *user, int64_t layer, lb_site site, const float *x, int64_t n_tok, int64_t cols);
void lb__session_tap(lb_session *s, lb__tap_fn fn, void *user);   /* fn NULL: off */
/* x (n, dim) <- the token embeddings. */
lb_status lb__session_embed(lb_session *s, const int32_t *tokens, int64_t n, float *x);
/* Run layer l alone on the residual stream x (n, dim, in place) of tokens at
 * positions pos .. pos+n-1 of one sequence (the layer's KV cache entries at
 * those positions are written, earlier ones read): the same arithmetic as
 * lb_forward, so running every layer in turn reproduces it bit for bit. */
lb_status lb__session_layer(lb_session *s, int64_t l, float *x, int64_t n, int64_t pos);
/* The session's KV cache (src/kv/kv.h), for measurements (src/eval/kv_eval.c). */
struct lb_kv *lb__session_kv(lb_session *s);

#endif
