/* synth.c: synthetic Hugging Face model folders with seeded random weights.
 *
 * Weights are N(0, std^2) (std 0.02 by default, the usual initializer and
 * close to trained weights' scale); RMSNorm weights are 1. Tensor t draws
 * from its own xoshiro stream seeded by (seed, t), so the bytes depend only
 * on the options. The config text is run through the same config.json parser
 * the loader uses before anything is written, so whatever synth writes, the
 * loader accepts. Data is generated and written in small chunks: memory use
 * does not grow with the model. Before anything is created, the file's size
 * is computed from the options (overflow-checked) and refused above
 * LB_SYNTH_MAX_BYTES or above the free space of the target filesystem, with
 * a message naming the options that make it large. */
#include "model/loader.h"
#include "core/safetensors.h"
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define CHUNK 65536
/* Largest model.safetensors synth writes (4 TiB; Llama 3.1 405B in BF16 is
 * ~0.8 TiB): anything larger is a typo in a dimension. */
#define LB_SYNTH_MAX_BYTES ((uint64_t)1 << 42)

typedef struct synth_tensor {
    char name[96];
    int64_t rows, cols;       /* rows 0: 1-D of cols */
    bool ones;                /* norm weights */
} synth_tensor;

static const struct { const char *arch, *cls; } arch_names[] = {
    {"llama", "LlamaForCausalLM"}, {"mistral", "MistralForCausalLM"},
    {"qwen2", "Qwen2ForCausalLM"}, {"qwen3", "Qwen3ForCausalLM"},
};

lb_status lb_synth_preset(const char *name, lb_synth_opts *o)
{
    lb_synth_opts d = {"llama", 768, 2048, 12, 12, 12, 0, 32000, 1024, 10000.0, 1e-5, 0, 0, 0, 0, 1, 1, 2,
                       LB_DTYPE_F32, 1, 0.02};
    LB_ARG(o, "lb_synth_preset: opts is NULL");
    *o = d;
    if (!name || !strcmp(name, "stories110m")) return LB_OK;
    if (!strcmp(name, "llama-3.2-1b")) {
        o->dim = 2048; o->hidden_dim = 8192; o->n_layers = 16; o->n_heads = 32; o->n_kv_heads = 8;
        o->vocab_size = 128256; o->max_seq = 131072; o->rope_theta = 500000.0;
        o->rope_factor = 32; o->rope_low_freq_factor = 1; o->rope_high_freq_factor = 4; o->rope_orig_max_pos = 8192;
        o->bos_id = 128000; o->eos_id = 128001;
        return LB_OK;
    }
    return lb__err(LB_ERR_NOTFOUND, "unknown synth preset '%s' (known: stories110m, llama-3.2-1b)", name);
}

static const char *dtype_torch(lb_dtype t)
{
    return t == LB_DTYPE_BF16 ? "bfloat16" : t == LB_DTYPE_F16 ? "float16" : "float32";
}

/* config.json text for the options; NULL class when the arch is unknown. */
static lb_status config_text(const lb_synth_opts *o, lb_buf *b)
{
    const char *cls = NULL, *arch = o->arch ? o->arch : "llama";
    for (size_t i = 0; i < sizeof arch_names / sizeof *arch_names; i++)
        if (!strcmp(arch, arch_names[i].arch)) cls = arch_names[i].cls;
    if (!cls) return lb__err(LB_ERR_ARG, "synth: unknown architecture '%s' (llama, mistral, qwen2, qwen3)", arch);
    lb__buf_printf(b, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n  \"hidden_act\": \"silu\",\n", cls, arch);
    lb__buf_printf(b, "  \"hidden_size\": %lld,\n  \"intermediate_size\": %lld,\n  \"num_hidden_layers\": %lld,\n",
                   (long long)o->dim, (long long)o->hidden_dim, (long long)o->n_layers);
    lb__buf_printf(b, "  \"num_attention_heads\": %lld,\n  \"num_key_value_heads\": %lld,\n", (long long)o->n_heads,
                   (long long)o->n_kv_heads);
    if (o->head_dim) lb__buf_printf(b, "  \"head_dim\": %lld,\n", (long long)o->head_dim);
    lb__buf_printf(b, "  \"vocab_size\": %lld,\n  \"max_position_embeddings\": %lld,\n", (long long)o->vocab_size,
                   (long long)o->max_seq);
    lb__buf_printf(b, "  \"rms_norm_eps\": %.9g,\n  \"rope_theta\": %.9g,\n", o->norm_eps, o->rope_theta);
    if (o->rope_factor > 0)
        lb__buf_printf(b, "  \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": %.9g, \"low_freq_factor\": %.9g, "
                       "\"high_freq_factor\": %.9g, \"original_max_position_embeddings\": %lld},\n", o->rope_factor,
                       o->rope_low_freq_factor, o->rope_high_freq_factor, (long long)o->rope_orig_max_pos);
    else lb__buf_printf(b, "  \"rope_scaling\": null,\n");
    if (o->bos_id >= 0) lb__buf_printf(b, "  \"bos_token_id\": %d,\n", o->bos_id);
    if (o->eos_id >= 0) lb__buf_printf(b, "  \"eos_token_id\": %d,\n", o->eos_id);
    lb__buf_printf(b, "  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"%s\"\n}\n",
                   o->tied_embeddings ? "true" : "false", dtype_torch(o->dtype));
    return b->failed ? lb__err(LB_ERR_NOMEM, "synth: out of memory") : LB_OK;
}

static void add(synth_tensor *t, int *n, const char *name, int64_t rows, int64_t cols, bool ones)
{
    snprintf(t[*n].name, sizeof t[*n].name, "%s", name);
    t[*n].rows = rows; t[*n].cols = cols; t[*n].ones = ones;
    (*n)++;
}

/* The tensor list of the architecture (the names the HF loader expects). */
static int tensor_list(const lb_config *c, synth_tensor *t)
{
    int n = 0;
    int64_t d = c->dim, q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim, f = c->hidden_dim;
    add(t, &n, "model.embed_tokens.weight", c->vocab_size, d, false);
    char p[96];
    for (int64_t l = 0; l < c->n_layers; l++) {
#define L(s) (snprintf(p, sizeof p, "model.layers.%lld.%s", (long long)l, s), p)
        add(t, &n, L("input_layernorm.weight"), 0, d, true);
        add(t, &n, L("self_attn.q_proj.weight"), q, d, false);
        add(t, &n, L("self_attn.k_proj.weight"), kv, d, false);
        add(t, &n, L("self_attn.v_proj.weight"), kv, d, false);
        if (c->qkv_bias) {
            add(t, &n, L("self_attn.q_proj.bias"), 0, q, false);
            add(t, &n, L("self_attn.k_proj.bias"), 0, kv, false);
            add(t, &n, L("self_attn.v_proj.bias"), 0, kv, false);
        }
        if (c->qk_norm) {
            add(t, &n, L("self_attn.q_norm.weight"), 0, c->head_dim, true);
            add(t, &n, L("self_attn.k_norm.weight"), 0, c->head_dim, true);
        }
        add(t, &n, L("self_attn.o_proj.weight"), d, q, false);
        add(t, &n, L("post_attention_layernorm.weight"), 0, d, true);
        add(t, &n, L("mlp.gate_proj.weight"), f, d, false);
        add(t, &n, L("mlp.up_proj.weight"), f, d, false);
        add(t, &n, L("mlp.down_proj.weight"), d, f, false);
#undef L
    }
    add(t, &n, "model.norm.weight", 0, d, true);
    if (!c->tied_embeddings) add(t, &n, "lm_head.weight", c->vocab_size, d, false);
    return n;
}

/* n values of N(0, std^2) by Box-Muller (both outputs used), float math. */
static void fill_normal(lb_rng *r, float *x, int64_t n, float std)
{
    for (int64_t i = 0; i < n; i += 2) {
        float u1 = ((float)(lb_rng_u64(r) >> 40) + 0.5f) * 0x1.0p-24f;   /* (0, 1) */
        float u2 = (float)(lb_rng_u64(r) >> 40) * 0x1.0p-24f;
        float rad = std * sqrtf(-2.0f * logf(u1)), s, c;
        sincosf(6.2831853f * u2, &s, &c);
        x[i] = rad * c;
        if (i + 1 < n) x[i + 1] = rad * s;
    }
}

static lb_status write_tensor(lb_st_writer *w, const synth_tensor *t, int idx, const lb_synth_opts *o, float *buf,
                              uint16_t *half)
{
    lb_rng r;
    lb_rng_seed(&r, o->seed * 0x9e3779b97f4a7c15ull + (uint64_t)idx);
    int64_t total = (t->rows ? t->rows : 1) * t->cols;
    for (int64_t at = 0; at < total; at += CHUNK) {
        int64_t n = lb__min64(CHUNK, total - at);
        if (t->ones) for (int64_t i = 0; i < n; i++) buf[i] = 1.0f;
        else fill_normal(&r, buf, n, (float)o->std);
        lb_status s;
        if (o->dtype == LB_DTYPE_F32) s = lb__st_writer_write(w, buf, (size_t)n * 4);
        else {
            if (o->dtype == LB_DTYPE_BF16) lb_f32_to_bf16_row(buf, half, n);
            else lb_f32_to_f16_row(buf, half, n);
            s = lb__st_writer_write(w, half, (size_t)n * 2);
        }
        if (s) return s;
    }
    return LB_OK;
}

/* Bytes of model.safetensors for tensors t[0..n): data plus a bound on the
 * header; false on uint64 overflow. *embed gets the embedding and lm_head
 * part (the rest is the layers'). */
static bool weights_bytes(const synth_tensor *t, int n, size_t elem, uint64_t *total, uint64_t *embed)
{
    uint64_t sum = 4096, emb = 0, e;
    for (int i = 0; i < n; i++) {
        if (__builtin_mul_overflow((uint64_t)(t[i].rows ? t[i].rows : 1), (uint64_t)t[i].cols, &e) ||
            __builtin_mul_overflow(e, (uint64_t)elem, &e) || __builtin_add_overflow(sum, e + 160, &sum))
            return false;
        if (!strncmp(t[i].name, "model.embed", 11) || !strncmp(t[i].name, "lm_head", 7)) emb += e;
    }
    *total = sum;
    *embed = emb;
    return true;
}

/* Free bytes for an unprivileged writer on the filesystem holding dir (or
 * its parent folder when dir does not exist yet); UINT64_MAX if unknown. */
static uint64_t free_bytes(const char *dir)
{
    struct statvfs v;
    if (statvfs(dir, &v) == 0) return (uint64_t)v.f_bavail * v.f_frsize;
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    size_t k = strlen(parent);
    while (k > 1 && parent[k - 1] == '/') parent[--k] = 0;
    char *slash = strrchr(parent, '/');
    if (!slash) snprintf(parent, sizeof parent, ".");
    else slash[slash == parent] = 0;
    return statvfs(parent, &v) == 0 ? (uint64_t)v.f_bavail * v.f_frsize : UINT64_MAX;
}

/* Refuse sizes that overflow, exceed LB_SYNTH_MAX_BYTES or the free space,
 * before anything is created. */
static lb_status check_size(const char *dir, const lb_config *c, const synth_tensor *t, int n, lb_dtype dtype)
{
    uint64_t total, embed;
    const char *fix = "lower vocab_size, dim, n_layers or hidden_dim (lowbit synth --vocab, --dim, --layers, --hidden)";
    if (!weights_bytes(t, n, lb_dtype_size(dtype), &total, &embed))
        return lb__err(LB_ERR_ARG, "synth: the weights' size overflows 64 bits (vocab_size %lld, dim %lld, n_layers %lld, "
                       "hidden_dim %lld); %s", (long long)c->vocab_size, (long long)c->dim, (long long)c->n_layers,
                       (long long)c->hidden_dim, fix);
    uint64_t avail = free_bytes(dir), cap = avail < LB_SYNTH_MAX_BYTES ? avail : LB_SYNTH_MAX_BYTES;
    if (total <= cap) return LB_OK;
    return lb__err(LB_ERR_ARG, "synth: %s/model.safetensors would take %.4g GB (embeddings and lm_head %.4g GB: vocab_size "
                   "%lld x dim %lld; %lld layers %.4g GB: dim %lld, hidden_dim %lld; %s), more than %s (%.4g GB); %s%s",
                   dir, (double)total / 1e9, (double)embed / 1e9, (long long)c->vocab_size, (long long)c->dim,
                   (long long)c->n_layers, (double)(total - embed) / 1e9, (long long)c->dim, (long long)c->hidden_dim,
                   lb_dtype_name(dtype), cap == avail ? "the free space there" : "synth's limit",
                   (double)cap / 1e9, fix, dtype == LB_DTYPE_F32 ? ", or use dtype bf16 (--dtype bf16)" : "");
}

static lb_status write_weights(const char *path, const lb_config *c, const lb_synth_opts *o, synth_tensor *t, int n,
                               lb_progress_fn progress, void *user)
{
    float *buf = lb__alloc(CHUNK * sizeof *buf);
    uint16_t *half = lb__alloc(CHUNK * sizeof *half);
    lb_st_writer *w = NULL;
    lb_status s = buf && half ? lb__st_writer_open(path, &w) : LB_ERR_NOMEM;
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    if (!s) s = lb__st_writer_meta(w, "format", "pt");
    if (!s) s = lb__st_writer_meta(w, "lowbit.synth_seed", seed);
    for (int i = 0; !s && i < n; i++) {
        int64_t shape[2] = {t[i].rows, t[i].cols};
        s = t[i].rows ? lb__st_writer_add(w, t[i].name, o->dtype, 2, shape)
                      : lb__st_writer_add(w, t[i].name, o->dtype, 1, shape + 1);
    }
    for (int i = 0; !s && i < n; i++) {
        s = write_tensor(w, &t[i], i, o, buf, half);
        if (progress) progress(i + 1, n, "tensors", user);
    }
    if (s) lb__st_writer_abort(w);
    else s = lb__st_writer_commit(w);
    LB_FREE(buf); LB_FREE(half);
    return s;
}

static lb_status write_text(const char *path, const lb_buf *b)
{
    lb_outfile f;
    lb_status s = lb__out_open(path, &f);
    if (s) return s;
    if ((s = lb__out_write(&f, b->data, b->len))) { lb__out_abort(&f); return s; }
    return lb__out_commit(&f);
}

lb_status lb_synth_write(const char *dir, const lb_synth_opts *o, lb_progress_fn progress, void *user)
{
    LB_ARG(dir && *dir, "lb_synth_write: dir is NULL or empty");
    LB_ARG(o, "lb_synth_write: opts is NULL");
    if (o->dtype != LB_DTYPE_F32 && o->dtype != LB_DTYPE_F16 && o->dtype != LB_DTYPE_BF16)
        return lb__err(LB_ERR_ARG, "synth: dtype must be F32, F16 or BF16, not %s", lb_dtype_name(o->dtype));
    if (!(o->std > 0 && o->std < 100)) return lb__err(LB_ERR_ARG, "synth: std = %g must be in (0, 100)", o->std);
    lb_buf cfg = {0};
    lb_config c;
    lb_status s = config_text(o, &cfg);
    if (!s) s = lb__hf_config_parse(cfg.data, cfg.len, "synth options", &c);
    synth_tensor *t = s ? NULL : lb__alloc((size_t)(c.n_layers * 14 + 4) * sizeof *t);   /* n_layers <= 4096 */
    int n_t = t ? tensor_list(&c, t) : 0;
    if (!s && !t) s = LB_ERR_NOMEM;
    if (!s) s = check_size(dir, &c, t, n_t, o->dtype);
    if (!s && mkdir(dir, 0755) != 0 && errno != EEXIST) s = lb__err(LB_ERR_IO, "%s: cannot create folder: %s", dir, strerror(errno));
    struct stat st;
    if (!s && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) s = lb__err(LB_ERR_IO, "%s: not a folder", dir);
    size_t n = strlen(dir) + 32;
    char *path = s ? NULL : lb__alloc(n);
    if (!s && !path) s = LB_ERR_NOMEM;
    if (!s) { snprintf(path, n, "%s/model.safetensors", dir); s = write_weights(path, &c, o, t, n_t, progress, user); }
    if (!s) { snprintf(path, n, "%s/config.json", dir); s = write_text(path, &cfg); }
    LB_FREE(path);
    LB_FREE(t);
    lb__buf_free(&cfg);
    return s;
}
