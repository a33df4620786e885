/* llama2c.c: Karpathy's llama2.c checkpoints, float32 little-endian.
 *
 * Legacy (version 0): 7 int32 {dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len}; a negative vocab_size means the
 * classifier is stored separately (unshared). Then, each a stack over layers:
 *   tok_embed (V, dim), attn_norm (L, dim), wq (L, dim, dim), wk (L, kv, dim),
 *   wv (L, kv, dim), wo (L, dim, dim), ffn_norm (L, dim), w1 (L, hid, dim),
 *   w2 (L, dim, hid), w3 (L, hid, dim), final_norm (dim),
 *   freq_cis_real (seq, hs/2), freq_cis_imag (seq, hs/2)   <- skipped
 *   [wcls (V, dim) when unshared]
 * with hs = dim / n_heads and kv = n_kv_heads * hs.
 *
 * Version 1 (export.py version1_export): a 256-byte header: uint32 magic
 * 0x616b3432 ("ak42"), int32 version = 1, the same 7 int32, uint8
 * shared_classifier, zero padding. Then attn_norm (L, dim), ffn_norm (L, dim),
 * final_norm (dim), tok_embed (V, dim), wq, wk, wv, wo, w1, w2, w3 (shapes as
 * above), [wcls (V, dim) when not shared]. No RoPE tables.
 *
 * w1 is the SwiGLU gate, w3 the up projection, w2 the down projection. RoPE
 * rotates interleaved pairs; norm eps 1e-5, theta 10000 (run.c constants).
 * The file must be exactly as long as the header says: a different length
 * means the header is being misread, so it is an error, not a guess. */
#include "model/loader.h"

#define LLAMA2C_MAGIC 0x616b3432u
#define V1_HEADER 256

static int32_t rd_i32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

bool lb__llama2c_is_v1(const uint8_t *data, size_t size)
{
    return size >= 4 && (uint32_t)rd_i32(data) == LLAMA2C_MAGIC;
}

/* Header -> config; *shared tells whether the classifier is the embedding. */
static lb_status read_header(const uint8_t *d, size_t n, const char *what, lb_config *c, bool *shared,
                             bool *v1)
{
    *v1 = lb__llama2c_is_v1(d, n);
    size_t hdr = *v1 ? V1_HEADER : 28;
    if (n < hdr)
        return lb__err(LB_ERR_FORMAT, "%s: truncated llama2.c header: %zu bytes, need %zu", what, n, hdr);
    const uint8_t *h = d;
    if (*v1) {
        int32_t version = rd_i32(d + 4);
        if (version != 1)
            return lb__err(LB_ERR_UNSUPPORTED, "%s: llama2.c export version %d is not supported (only float32 "
                           "version 1 and the legacy layout)", what, version);
        h = d + 8;
    }
    int64_t vocab = rd_i32(h + 20);
    memset(c, 0, sizeof *c);
    c->arch = LB_ARCH_LLAMA;
    c->dim = rd_i32(h); c->hidden_dim = rd_i32(h + 4); c->n_layers = rd_i32(h + 8);
    c->n_heads = rd_i32(h + 12); c->n_kv_heads = rd_i32(h + 16); c->max_seq = rd_i32(h + 24);
    if (*v1) {
        if (d[36] > 1) return lb__err(LB_ERR_FORMAT, "%s: shared_classifier flag is %u, expected 0 or 1", what, d[36]);
        *shared = d[36] == 1;
        c->vocab_size = vocab;
    } else {
        *shared = vocab > 0;
        c->vocab_size = vocab < 0 ? -vocab : vocab;
    }
    if (c->dim > 0 && c->n_heads > 0 && c->dim % c->n_heads)
        return lb__err(LB_ERR_FORMAT, "%s: dim = %lld is not a multiple of n_heads = %lld", what,
                       (long long)c->dim, (long long)c->n_heads);
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_layout = LB_ROPE_INTERLEAVED;
    c->tied_embeddings = *shared;
    c->bos_id = 1; c->eos_id = 2;   /* llama2.c's sentencepiece ids */
    return lb__config_validate(c, what);
}

/* Stacked tensor sizes in floats (all < 2^60 after validation). */
typedef struct { uint64_t emb, norm, wq, wkv, ffn, rope; } sizes;

static sizes tensor_sizes(const lb_config *c)
{
    uint64_t d = (uint64_t)c->dim, L = (uint64_t)c->n_layers, kv = (uint64_t)(c->n_kv_heads * c->head_dim);
    sizes z = {(uint64_t)c->vocab_size * d, L * d, L * d * d, L * kv * d, L * (uint64_t)c->hidden_dim * d,
               (uint64_t)c->max_seq * (uint64_t)c->head_dim / 2};
    return z;
}

static lb_weight fview(const float *p, int64_t rows, int64_t cols)
{
    lb_weight w = lb__weight_dense(p, LB_DTYPE_F32, rows, cols);
    return w;
}

/* Point the layer views at stacked arrays (each stack is L consecutive blocks). */
static void set_layers(lb_model *m, const float *att, const float *ffn, const float *wq, const float *wk,
                       const float *wv, const float *wo, const float *w1, const float *w2, const float *w3)
{
    const lb_config *c = &m->cfg;
    int64_t d = c->dim, h = c->hidden_dim, q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    for (int64_t l = 0; l < c->n_layers; l++) {
        lb_layer_weights *L = &m->layers[l];
        L->attn_norm = fview(att + l * d, 1, d);
        L->ffn_norm = fview(ffn + l * d, 1, d);
        L->wq = fview(wq + l * q * d, q, d);
        L->wk = fview(wk + l * kv * d, kv, d);
        L->wv = fview(wv + l * kv * d, kv, d);
        L->wo = fview(wo + l * d * q, d, q);
        L->w_gate = fview(w1 + l * h * d, h, d);
        L->w_down = fview(w2 + l * d * h, d, h);
        L->w_up = fview(w3 + l * h * d, h, d);
    }
}

lb_status lb__llama2c_parse(const uint8_t *data, size_t size, const char *what, lb_model *m)
{
    bool shared = false, v1 = false;
    lb_status s = read_header(data, size, what, &m->cfg, &shared, &v1);
    if (s) return s;
    const lb_config *c = &m->cfg;
    sizes z = tensor_sizes(c);
    uint64_t floats = z.emb + 2 * z.norm + 2 * z.wq + 2 * z.wkv + 3 * z.ffn + (uint64_t)c->dim +
                      (v1 ? 0 : 2 * z.rope) + (shared ? 0 : z.emb);
    uint64_t need = (v1 ? V1_HEADER : 28) + floats * 4;
    if ((uint64_t)size != need)
        return lb__err(LB_ERR_FORMAT, "%s: llama2.c checkpoint (%s, dim %lld, %lld layers, vocab %lld) needs %llu "
                       "bytes, file has %zu (%s)", what, v1 ? "version 1" : "legacy", (long long)c->dim,
                       (long long)c->n_layers, (long long)c->vocab_size, (unsigned long long)need, size,
                       (uint64_t)size < need ? "truncated" : "trailing data");
    if ((s = lb__model_alloc_layers(m))) return s;
    const float *p = (const float *)(const void *)(data + (v1 ? V1_HEADER : 28));
    const float *emb, *att, *ffn, *fin, *wq, *wk, *wv, *wo, *w1, *w2, *w3;
    if (v1) {
        att = p; ffn = att + z.norm; fin = ffn + z.norm; emb = fin + c->dim; wq = emb + z.emb;
    } else {
        emb = p; att = emb + z.emb; wq = att + z.norm;
    }
    wk = wq + z.wq; wv = wk + z.wkv; wo = wv + z.wkv;
    if (v1) { w1 = wo + z.wq; }
    else { ffn = wo + z.wq; w1 = ffn + z.norm; }
    w2 = w1 + z.ffn; w3 = w2 + z.ffn;
    const float *end = w3 + z.ffn;
    if (!v1) { fin = end; end = fin + c->dim + 2 * z.rope; }
    m->tok_embed = fview(emb, c->vocab_size, c->dim);
    m->final_norm = fview(fin, 1, c->dim);
    m->lm_head = shared ? m->tok_embed : fview(end, c->vocab_size, c->dim);
    set_layers(m, att, ffn, wq, wk, wv, wo, w1, w2, w3);
    return lb__model_set_names(m, what, v1 ? "llama2c-v1" : "llama2c");
}
