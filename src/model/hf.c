/* hf.c: Hugging Face model folders: config.json plus model.safetensors, or
 * shards listed in model.safetensors.index.json ("weight_map": tensor name ->
 * file name). Supported architectures: LlamaForCausalLM, MistralForCausalLM,
 * Qwen2ForCausalLM (q/k/v biases), Qwen3ForCausalLM (per-head q/k RMSNorm).
 * F32, F16 and BF16 tensors are used in place as views into the mappings.
 * Every tensor of the files must be one the architecture expects (stale
 * rotary_emb.inv_freq buffers excepted), so a misread model never loads
 * silently. RoPE: Hugging Face checkpoints rotate halves (LB_ROPE_HALF).
 * The field mapping is written down in docs/models.md. */
#include "model/loader.h"
#include "core/safetensors.h"
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

/* ----------------------------------------------------------- config.json */

typedef struct cfg_ctx {
    const lb_json *j;
    const char *what;
} cfg_ctx;

/* An integer field in [lo, hi]; `def` when absent or null (required when def < lo). */
static lb_status get_int(const cfg_ctx *c, const char *key, int64_t lo, int64_t hi, int64_t def, int64_t *out)
{
    const lb_json *v = lb__json_get(c->j, key);
    if (!v || v->type == LB_JSON_NULL) {
        if (def < lo) return lb__err(LB_ERR_FORMAT, "%s: required field \"%s\" is missing", c->what, key);
        *out = def;
        return LB_OK;
    }
    if (v->type != LB_JSON_NUM || v->num != floor(v->num) || fabs(v->num) > 9e15)
        return lb__err(LB_ERR_FORMAT, "%s: \"%s\" must be an integer", c->what, key);
    int64_t x = (int64_t)v->num;
    if (x < lo || x > hi)
        return lb__err(LB_ERR_FORMAT, "%s: \"%s\" = %lld is out of range [%lld, %lld]", c->what, key, (long long)x,
                       (long long)lo, (long long)hi);
    *out = x;
    return LB_OK;
}

/* A number field in (lo, hi); `def` when absent or null. */
static lb_status get_num(const cfg_ctx *c, const lb_json *obj, const char *key, double lo, double hi, double def,
                         bool required, double *out)
{
    const lb_json *v = lb__json_get(obj, key);
    if (!v || v->type == LB_JSON_NULL) {
        if (required) return lb__err(LB_ERR_FORMAT, "%s: required field \"%s\" is missing", c->what, key);
        *out = def;
        return LB_OK;
    }
    if (v->type != LB_JSON_NUM) return lb__err(LB_ERR_FORMAT, "%s: \"%s\" must be a number", c->what, key);
    if (!(v->num > lo && v->num < hi))
        return lb__err(LB_ERR_FORMAT, "%s: \"%s\" = %g is out of range (%g, %g)", c->what, key, v->num, lo, hi);
    *out = v->num;
    return LB_OK;
}

static lb_status get_bool(const cfg_ctx *c, const char *key, bool def, bool *out)
{
    const lb_json *v = lb__json_get(c->j, key);
    if (!v || v->type == LB_JSON_NULL) { *out = def; return LB_OK; }
    if (v->type != LB_JSON_BOOL) return lb__err(LB_ERR_FORMAT, "%s: \"%s\" must be true or false", c->what, key);
    *out = v->b;
    return LB_OK;
}

/* bos/eos: an integer, a list of integers (the first is used) or null. */
static lb_status get_token(const cfg_ctx *c, const char *key, int64_t vocab, int32_t *out)
{
    const lb_json *v = lb__json_get(c->j, key);
    *out = -1;
    if (v && v->type == LB_JSON_ARR) v = v->len ? v->kids[0] : NULL;
    if (!v || v->type == LB_JSON_NULL) return LB_OK;
    if (v->type != LB_JSON_NUM || v->num != floor(v->num) || v->num < 0 || v->num >= (double)vocab)
        return lb__err(LB_ERR_FORMAT, "%s: \"%s\" must be a token id in [0, %lld)", c->what, key, (long long)vocab);
    *out = (int32_t)v->num;
    return LB_OK;
}

static lb_status parse_arch(const cfg_ctx *c, lb_config *cfg)
{
    static const struct { const char *cls, *type; lb_arch arch; } known[] = {
        {"LlamaForCausalLM", "llama", LB_ARCH_LLAMA}, {"MistralForCausalLM", "mistral", LB_ARCH_MISTRAL},
        {"Qwen2ForCausalLM", "qwen2", LB_ARCH_QWEN2}, {"Qwen3ForCausalLM", "qwen3", LB_ARCH_QWEN3},
    };
    const lb_json *a = lb__json_get(c->j, "architectures");
    const char *name = NULL;
    bool by_class = false;
    if (a && a->type == LB_JSON_ARR && a->len >= 1 && a->kids[0]->type == LB_JSON_STR) { name = a->kids[0]->str; by_class = true; }
    else if (a && a->type != LB_JSON_NULL)
        return lb__err(LB_ERR_FORMAT, "%s: \"architectures\" must be a list of class names", c->what);
    else name = lb__json_str(c->j, "model_type");
    if (!name) return lb__err(LB_ERR_FORMAT, "%s: neither \"architectures\" nor \"model_type\" is given", c->what);
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(name, by_class ? known[i].cls : known[i].type)) { cfg->arch = known[i].arch; return LB_OK; }
    return lb__err(LB_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (supported: LlamaForCausalLM, "
                   "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)", c->what, name);
}

/* Features these architectures may switch on that lowbit does not implement. */
static lb_status check_features(const cfg_ctx *c, const lb_config *cfg)
{
    const lb_json *act = lb__json_get(c->j, "hidden_act");
    if (act && (act->type != LB_JSON_STR || strcmp(act->str, "silu")))
        return lb__err(LB_ERR_UNSUPPORTED, "%s: \"hidden_act\" must be \"silu\"", c->what);
    bool attn_bias = false, mlp_bias = false;
    lb_status s;
    if ((s = get_bool(c, "attention_bias", false, &attn_bias)) || (s = get_bool(c, "mlp_bias", false, &mlp_bias)))
        return s;
    if (attn_bias && cfg->arch != LB_ARCH_QWEN2)
        return lb__err(LB_ERR_UNSUPPORTED, "%s: \"attention_bias\": true is not supported for this architecture", c->what);
    if (mlp_bias) return lb__err(LB_ERR_UNSUPPORTED, "%s: \"mlp_bias\": true is not supported", c->what);
    return LB_OK;
}

static lb_status parse_rope_scaling(const cfg_ctx *c, lb_config *cfg)
{
    const lb_json *r = lb__json_get(c->j, "rope_scaling");
    if (!r || r->type == LB_JSON_NULL) return LB_OK;
    if (r->type != LB_JSON_OBJ) return lb__err(LB_ERR_FORMAT, "%s: \"rope_scaling\" must be an object or null", c->what);
    const char *type = lb__json_str(r, "rope_type");
    if (!type) type = lb__json_str(r, "type");
    if (!type) return lb__err(LB_ERR_FORMAT, "%s: \"rope_scaling\" has no \"rope_type\"", c->what);
    if (!strcmp(type, "default")) return LB_OK;
    if (strcmp(type, "llama3"))
        return lb__err(LB_ERR_UNSUPPORTED, "%s: rope_scaling type '%s' is not supported (only \"llama3\")", c->what, type);
    double f, lo, hi, orig;
    lb_status s;
    cfg_ctx rc = {r, c->what};
    if ((s = get_num(&rc, r, "factor", 0, 1e6, 0, true, &f)) || (s = get_num(&rc, r, "low_freq_factor", 0, 1e6, 0, true, &lo)) ||
        (s = get_num(&rc, r, "high_freq_factor", 0, 1e6, 0, true, &hi)) ||
        (s = get_num(&rc, r, "original_max_position_embeddings", 0, (double)LB_MAX_SEQ + 1, 0, true, &orig)))
        return s;
    if (!(hi > lo) || orig != floor(orig))
        return lb__err(LB_ERR_FORMAT, "%s: rope_scaling needs high_freq_factor > low_freq_factor and an integer "
                       "original_max_position_embeddings", c->what);
    cfg->rope_factor = (float)f; cfg->rope_low_freq_factor = (float)lo; cfg->rope_high_freq_factor = (float)hi;
    cfg->rope_orig_max_pos = (int64_t)orig;
    return LB_OK;
}

static lb_status parse_sizes(const cfg_ctx *c, lb_config *cfg)
{
    lb_status s;
    if ((s = get_int(c, "hidden_size", 1, LB_MAX_DIM, 0, &cfg->dim)) ||
        (s = get_int(c, "intermediate_size", 1, LB_MAX_DIM * 8, 0, &cfg->hidden_dim)) ||
        (s = get_int(c, "num_hidden_layers", 1, LB_MAX_LAYERS, 0, &cfg->n_layers)) ||
        (s = get_int(c, "num_attention_heads", 1, LB_MAX_HEADS, 0, &cfg->n_heads)) ||
        (s = get_int(c, "num_key_value_heads", 1, LB_MAX_HEADS, cfg->n_heads, &cfg->n_kv_heads)) ||
        (s = get_int(c, "vocab_size", 1, LB_MAX_VOCAB, 0, &cfg->vocab_size)) ||
        (s = get_int(c, "max_position_embeddings", 1, LB_MAX_SEQ, 2048, &cfg->max_seq)))
        return s;
    if (cfg->n_heads % cfg->n_kv_heads)
        return lb__err(LB_ERR_FORMAT, "%s: num_attention_heads = %lld is not a multiple of num_key_value_heads = %lld",
                       c->what, (long long)cfg->n_heads, (long long)cfg->n_kv_heads);
    const lb_json *hd = lb__json_get(c->j, "head_dim");
    if ((!hd || hd->type == LB_JSON_NULL) && cfg->dim % cfg->n_heads)
        return lb__err(LB_ERR_FORMAT, "%s: hidden_size = %lld is not a multiple of num_attention_heads = %lld",
                       c->what, (long long)cfg->dim, (long long)cfg->n_heads);
    return get_int(c, "head_dim", 1, LB_MAX_DIM, cfg->dim / cfg->n_heads, &cfg->head_dim);
}

lb_status lb__hf_config_parse(const char *text, size_t n, const char *what, lb_config *cfg)
{
    lb_json *j = NULL;
    lb_status s = lb__json_parse(text, n, what, &j);
    if (s) return s;
    memset(cfg, 0, sizeof *cfg);
    cfg_ctx c = {j, what};
    double eps, theta;
    if (j->type != LB_JSON_OBJ) s = lb__err(LB_ERR_FORMAT, "%s: not a JSON object", what);
    if (!s) s = parse_arch(&c, cfg);
    if (!s) s = check_features(&c, cfg);
    if (!s) s = parse_sizes(&c, cfg);
    if (!s) s = get_num(&c, j, "rms_norm_eps", 0, 1, 1e-6, false, &eps);
    if (!s) s = get_num(&c, j, "rope_theta", 1, 1e12, 10000.0, false, &theta);
    if (!s) s = get_bool(&c, "tie_word_embeddings", false, &cfg->tied_embeddings);
    if (!s) s = parse_rope_scaling(&c, cfg);
    if (!s) s = get_token(&c, "bos_token_id", cfg->vocab_size, &cfg->bos_id);
    if (!s) s = get_token(&c, "eos_token_id", cfg->vocab_size, &cfg->eos_id);
    lb__json_free(j);
    if (s) return s;
    cfg->norm_eps = (float)eps;
    cfg->rope_theta = (float)theta;
    cfg->rope_layout = LB_ROPE_HALF;
    cfg->qkv_bias = cfg->arch == LB_ARCH_QWEN2;
    cfg->qk_norm = cfg->arch == LB_ARCH_QWEN3;
    return lb__config_validate(cfg, what);
}

/* ---------------------------------------------------------- weight files */

typedef struct hf_ctx {
    const char *dir;
    const char *only;     /* the one weight file to read (a file name in dir), or NULL: the folder's */
    lb_st_file *files;
    bool **used;          /* used[f][t]: tensor t of file f was taken */
    int n_files;
    lb_model *m;
} hf_ctx;

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = lb__alloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static lb_status open_file(hf_ctx *h, const char *name)
{
    for (int i = 0; i < h->n_files; i++)
        if (!strcmp(strrchr(h->files[i].what, '/') + 1, name)) return LB_OK;
    if (!*name || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, "."))
        return lb__err(LB_ERR_FORMAT, "%s/model.safetensors.index.json: shard name '%s' is not a file name in the "
                       "model folder", h->dir, name);
    char *path = join(h->dir, name);
    if (!path) return LB_ERR_NOMEM;
    lb_status s = lb__st_open(path, &h->files[h->n_files]);
    LB_FREE(path);
    if (s) return s;
    lb_st_file *f = &h->files[h->n_files++];
    h->used[h->n_files - 1] = lb__zalloc((size_t)f->n_tensors + 1);
    return h->used[h->n_files - 1] ? LB_OK : LB_ERR_NOMEM;
}

/* Open every shard the index names, checking each listed tensor is in its file. */
static lb_status open_sharded(hf_ctx *h, const char *index_path)
{
    uint8_t *text;
    size_t n;
    lb_status s = lb__read_file(index_path, &text, &n);
    if (s) return s;
    lb_json *j = NULL;
    s = lb__json_parse((const char *)text, n, index_path, &j);
    LB_FREE(text);
    if (s) return s;
    const lb_json *map = lb__json_get(j, "weight_map");
    if (!map || map->type != LB_JSON_OBJ || map->len == 0)
        s = lb__err(LB_ERR_FORMAT, "%s: missing or empty \"weight_map\" object", index_path);
    if (!s) {
        h->files = lb__zalloc(map->len * sizeof *h->files);
        h->used = lb__zalloc(map->len * sizeof *h->used);
        if (!h->files || !h->used) s = LB_ERR_NOMEM;
    }
    for (size_t i = 0; !s && i < map->len; i++) {
        if (map->kids[i]->type != LB_JSON_STR)
            s = lb__err(LB_ERR_FORMAT, "%s: weight_map entry '%s' is not a file name", index_path, map->keys[i]);
        else s = open_file(h, map->kids[i]->str);
    }
    for (size_t i = 0; !s && i < map->len; i++) {
        for (int k = 0; k < h->n_files; k++) {
            if (strcmp(strrchr(h->files[k].what, '/') + 1, map->kids[i]->str)) continue;
            if (!lb__st_find(&h->files[k], map->keys[i]))
                s = lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is not in %s as the index says", index_path,
                            map->keys[i], h->files[k].what);
        }
    }
    lb__json_free(j);
    return s;
}

static lb_status open_weights(hf_ctx *h)
{
    if (h->only) {
        h->files = lb__zalloc(sizeof *h->files);
        h->used = lb__zalloc(sizeof *h->used);
        return h->files && h->used ? open_file(h, h->only) : LB_ERR_NOMEM;
    }
    char *index = join(h->dir, "model.safetensors.index.json"), *single = join(h->dir, "model.safetensors");
    lb_status s = LB_OK;
    if (!index || !single) s = LB_ERR_NOMEM;
    else if (file_exists(index)) s = open_sharded(h, index);
    else if (file_exists(single)) {
        h->files = lb__zalloc(sizeof *h->files);
        h->used = lb__zalloc(sizeof *h->used);
        s = h->files && h->used ? open_file(h, "model.safetensors") : LB_ERR_NOMEM;
    } else
        s = lb__err(LB_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json in the folder", h->dir);
    LB_FREE(index);
    LB_FREE(single);
    return s;
}

lb_status lb__hf_open_files(const char *dir, lb_st_file **files, int *n)
{
    hf_ctx h = {dir, NULL, NULL, NULL, 0, NULL};
    lb_status s = open_weights(&h);
    for (int i = 0; i < h.n_files; i++) LB_FREE(h.used[i]);
    LB_FREE(h.used);
    if (s) {
        for (int i = 0; i < h.n_files; i++) lb__st_close(&h.files[i]);
        LB_FREE(h.files);
        h.files = NULL; h.n_files = 0;
    }
    *files = h.files;
    *n = h.n_files;
    return s;
}

static const lb_st_tensor *find(hf_ctx *h, const char *name, int *file)
{
    for (int i = 0; i < h->n_files; i++) {
        const lb_st_tensor *t = lb__st_find(&h->files[i], name);
        if (t) { *file = i; return t; }
    }
    return NULL;
}

/* Weight `name` of shape (rows, cols), or (cols) when rows == 0, in
 * whatever representation the files hold it (src/weights). */
static lb_status take(hf_ctx *h, const char *name, int64_t rows, int64_t cols, lb_weight *w)
{
    lb_wsrc src = {.files = h->files, .n_files = h->n_files, .used = h->used, .store = &h->m->store, .what = h->dir};
    return lb__weight_read(&src, name, rows, cols, w);
}

static lb_status take_layer(hf_ctx *h, int64_t l)
{
    const lb_config *c = &h->m->cfg;
    lb_layer_weights *L = &h->m->layers[l];
    int64_t d = c->dim, q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim, f = c->hidden_dim;
    struct { const char *name; int64_t rows, cols; lb_weight *w; bool on; } t[] = {
        {"input_layernorm.weight", 0, d, &L->attn_norm, true},
        {"self_attn.q_proj.weight", q, d, &L->wq, true},
        {"self_attn.k_proj.weight", kv, d, &L->wk, true},
        {"self_attn.v_proj.weight", kv, d, &L->wv, true},
        {"self_attn.q_proj.bias", 0, q, &L->bq, c->qkv_bias},
        {"self_attn.k_proj.bias", 0, kv, &L->bk, c->qkv_bias},
        {"self_attn.v_proj.bias", 0, kv, &L->bv, c->qkv_bias},
        {"self_attn.q_norm.weight", 0, c->head_dim, &L->q_norm, c->qk_norm},
        {"self_attn.k_norm.weight", 0, c->head_dim, &L->k_norm, c->qk_norm},
        {"self_attn.o_proj.weight", d, q, &L->wo, true},
        {"post_attention_layernorm.weight", 0, d, &L->ffn_norm, true},
        {"mlp.gate_proj.weight", f, d, &L->w_gate, true},
        {"mlp.up_proj.weight", f, d, &L->w_up, true},
        {"mlp.down_proj.weight", d, f, &L->w_down, true},
    };
    char name[160];
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        if (!t[i].on) continue;
        snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)l, t[i].name);
        lb_status s = take(h, name, t[i].rows, t[i].cols, t[i].w);
        if (s) return s;
    }
    return LB_OK;
}

/* Embedding and classifier. A tied checkpoint may store either name (or
 * both); the embedding is used for both roles. */
static lb_status take_embeddings(hf_ctx *h)
{
    lb_model *m = h->m;
    int64_t V = m->cfg.vocab_size, d = m->cfg.dim;
    int fi;
    bool has_emb = find(h, "model.embed_tokens.weight", &fi) != NULL;
    bool has_head = find(h, "lm_head.weight", &fi) != NULL;
    lb_status s;
    if (m->cfg.tied_embeddings) {
        s = take(h, has_emb || !has_head ? "model.embed_tokens.weight" : "lm_head.weight", V, d, &m->tok_embed);
        if (!s && has_emb && has_head) s = take(h, "lm_head.weight", V, d, &m->lm_head);
        m->lm_head = m->tok_embed;
        return s;
    }
    if (!has_head)
        return lb__err(LB_ERR_FORMAT, "%s: tensor 'lm_head.weight' is missing (config.json says "
                       "tie_word_embeddings is false)", h->dir);
    if ((s = take(h, "model.embed_tokens.weight", V, d, &m->tok_embed))) return s;
    return take(h, "lm_head.weight", V, d, &m->lm_head);
}

static lb_status check_all_used(const hf_ctx *h)
{
    for (int i = 0; i < h->n_files; i++)
        for (int64_t t = 0; t < h->files[i].n_tensors; t++)
            if (!h->used[i][t] && !lb__ends_with(h->files[i].tensors[t].name, "rotary_emb.inv_freq"))
                return lb__err(LB_ERR_FORMAT, "%s: unexpected tensor '%s' (not part of this architecture's layout)",
                               h->files[i].what, h->files[i].tensors[t].name);
    return LB_OK;
}

lb_status lb__hf_read_config(const char *dir, lb_config *cfg)
{
    char *path = join(dir, "config.json");
    if (!path) return LB_ERR_NOMEM;
    uint8_t *text = NULL;
    size_t n;
    lb_status s = lb__read_file(path, &text, &n);
    if (!s) s = lb__hf_config_parse((const char *)text, n, path, cfg);
    LB_FREE(text);
    LB_FREE(path);
    return s;
}

static lb_status load(const char *dir, const char *only, lb_model *m)
{
    hf_ctx h = {dir, only, NULL, NULL, 0, m};
    lb_status s = lb__hf_read_config(dir, &m->cfg);
    if (!s) s = open_weights(&h);
    if (!s) s = lb__model_alloc_layers(m);
    if (!s) s = take_embeddings(&h);
    if (!s) s = take(&h, "model.norm.weight", 0, m->cfg.dim, &m->final_norm);
    for (int64_t l = 0; !s && l < m->cfg.n_layers; l++) s = take_layer(&h, l);
    if (!s) s = check_all_used(&h);
    if (!s && !(m->maps = lb__zalloc((size_t)h.n_files * sizeof *m->maps))) s = LB_ERR_NOMEM;
    for (int i = 0; !s && i < h.n_files; i++) lb__st_take_map(&h.files[i], &m->maps[m->n_maps++]);
    for (int i = 0; i < h.n_files; i++) { lb__st_close(&h.files[i]); LB_FREE(h.used[i]); }
    LB_FREE(h.files);
    LB_FREE(h.used);
    return s;
}

lb_status lb__hf_load(const char *dir, lb_model *m)
{
    lb_status s = load(dir, NULL, m);
    return s ? s : lb__model_set_names(m, dir, "safetensors");
}

lb_status lb__hf_load_file(const char *dir, const char *name, const char *path, lb_model *m)
{
    lb_status s = load(dir, name, m);
    return s ? s : lb__model_set_names(m, path, "safetensors");
}
