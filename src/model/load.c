/* load.c: lb_model_load picks the loader from what the path holds, by
 * content (the file name is never trusted): a folder -> Hugging Face; a
 * safetensors file (u64 header length, then a JSON header) -> a lowbit model
 * file when its metadata has lowbit.version, else that one Hugging Face
 * weight file with the config.json of its folder; a JSON file -> the
 * Hugging Face folder it configures; a llama2.c v1 magic -> llama2.c v1;
 * anything else is tried as a legacy llama2.c checkpoint (which has no
 * magic), and the error then lists every format tried. Also the model's
 * lifetime: the model owns its maps, converted buffers and layer array, and
 * lb_model_free releases them all. */
#include "model/loader.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

lb_model *lb__model_new(void)
{
    lb_model *m = lb__zalloc(sizeof *m);
    if (m) { m->cfg.bos_id = -1; m->cfg.eos_id = -1; }
    return m;
}

lb_status lb__model_alloc_layers(lb_model *m)
{
    LB_ASSERT(!m->layers && m->cfg.n_layers > 0 && m->cfg.n_layers <= LB_MAX_LAYERS);
    m->layers = lb__zalloc((size_t)m->cfg.n_layers * sizeof *m->layers);
    return m->layers ? LB_OK : LB_ERR_NOMEM;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = lb__alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

lb_status lb__model_set_names(lb_model *m, const char *path, const char *source)
{
    LB_FREE(m->path); LB_FREE(m->source_format);
    m->path = dup_str(path);
    m->source_format = dup_str(source);
    return m->path && m->source_format ? LB_OK : LB_ERR_NOMEM;
}

static lb_status bad(const char *what, const char *field, int64_t v, const char *why)
{
    return lb__err(LB_ERR_FORMAT, "%s: %s = %lld: %s", what, field, (long long)v, why);
}

static lb_status check_range(const char *what, const char *field, int64_t v, int64_t hi)
{
    if (v <= 0) return bad(what, field, v, "must be positive");
    if (v > hi) return lb__err(LB_ERR_FORMAT, "%s: %s = %lld: too large (limit %lld)", what, field,
                               (long long)v, (long long)hi);
    return LB_OK;
}

lb_status lb__config_validate(const lb_config *c, const char *what)
{
    lb_status s;
    if ((s = check_range(what, "dim", c->dim, LB_MAX_DIM)) ||
        (s = check_range(what, "hidden_dim", c->hidden_dim, LB_MAX_DIM * 8)) ||
        (s = check_range(what, "n_layers", c->n_layers, LB_MAX_LAYERS)) ||
        (s = check_range(what, "n_heads", c->n_heads, LB_MAX_HEADS)) ||
        (s = check_range(what, "n_kv_heads", c->n_kv_heads, LB_MAX_HEADS)) ||
        (s = check_range(what, "head_dim", c->head_dim, LB_MAX_DIM)) ||
        (s = check_range(what, "vocab_size", c->vocab_size, LB_MAX_VOCAB)) ||
        (s = check_range(what, "max_seq", c->max_seq, LB_MAX_SEQ)))
        return s;
    if (c->n_heads % c->n_kv_heads)
        return lb__err(LB_ERR_FORMAT, "%s: n_heads = %lld is not a multiple of n_kv_heads = %lld", what,
                       (long long)c->n_heads, (long long)c->n_kv_heads);
    if (c->head_dim % 2) return bad(what, "head_dim", c->head_dim, "must be even (RoPE rotates pairs)");
    if (c->n_heads * c->head_dim > LB_MAX_DIM * 8)
        return lb__err(LB_ERR_FORMAT, "%s: n_heads * head_dim = %lld: too large", what,
                       (long long)(c->n_heads * c->head_dim));
    if (!(c->norm_eps > 0 && c->norm_eps < 1)) return lb__err(LB_ERR_FORMAT, "%s: norm_eps = %g: must be in (0, 1)", what, (double)c->norm_eps);
    if (!(c->rope_theta > 1 && c->rope_theta < 1e12f))
        return lb__err(LB_ERR_FORMAT, "%s: rope_theta = %g: must be in (1, 1e12)", what, (double)c->rope_theta);
    if (c->bos_id >= c->vocab_size || c->eos_id >= c->vocab_size)
        return lb__err(LB_ERR_FORMAT, "%s: bos/eos token id (%d/%d) outside the vocabulary (%lld)", what,
                       c->bos_id, c->eos_id, (long long)c->vocab_size);
    return LB_OK;
}

/* The folder holding `path` (a config.json inside it). */
static char *parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return dup_str(".");
    size_t n = (size_t)(slash - path);
    char *d = lb__alloc(n + 2);
    if (!d) return NULL;
    if (n == 0) { d[0] = '/'; d[1] = 0; }
    else { memcpy(d, path, n); d[n] = 0; }
    return d;
}

lb_file_kind lb__model_file_kind(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return LB_FILE_NONE;
    if (S_ISDIR(st.st_mode)) return LB_FILE_DIR;
    if (!S_ISREG(st.st_mode)) return LB_FILE_OTHER;
    uint8_t h[16] = {0};
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, h, sizeof h) : -1;
    if (fd >= 0) close(fd);
    if (n < 0) return LB_FILE_OTHER;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | h[i];
    if (n >= 9 && h[8] == '{' && hl >= 2 && hl <= (uint64_t)st.st_size - 8) return LB_FILE_SAFETENSORS;
    int k = 0;
    while (k < n && (h[k] == ' ' || h[k] == '\n' || h[k] == '\r' || h[k] == '\t')) k++;
    if (k < n && h[k] == '{') return LB_FILE_JSON;
    if (lb__llama2c_is_v1(h, (size_t)n)) return LB_FILE_LLAMA2C_V1;
    return LB_FILE_OTHER;
}

static lb_status load_llama2c(const char *path, lb_model *m)
{
    m->maps = lb__zalloc(sizeof *m->maps);
    if (!m->maps) return LB_ERR_NOMEM;
    lb_status s = lb__map_file(path, &m->maps[0]);
    if (s) return s;
    m->n_maps = 1;
    return lb__llama2c_parse(m->maps[0].data, m->maps[0].size, path, m);
}

/* A safetensors file: lowbit's own model file, or one Hugging Face weight file. */
static lb_status load_safetensors(const char *path, lb_model *m)
{
    lb_st_file f;
    lb_status s = lb__st_open(path, &f);
    if (s) return s;
    if (!lb__st_meta(&f, "lowbit.version")) {
        bool weights = lb__st_find(&f, "model.embed_tokens.weight") || lb__st_find(&f, "lm_head.weight") ||
                       lb__st_find(&f, "model.norm.weight");
        const char *fmt = lb__st_meta(&f, "format");
        if (!weights)
            s = lb__err(LB_ERR_FORMAT, "%s: a safetensors file but not a model's weights (no lowbit.version "
                        "metadata, no model.embed_tokens / lm_head / model.norm tensor%s%s%s)", path,
                        fmt ? "; its metadata says format '" : "", fmt ? fmt : "", fmt ? "'" : "");
        lb__st_close(&f);
        if (s) return s;
        char *dir = parent_dir(path);
        const char *slash = strrchr(path, '/');
        s = dir ? lb__hf_load_file(dir, slash ? slash + 1 : path, path, m) : LB_ERR_NOMEM;
        LB_FREE(dir);
        return s;
    }
    s = lb__lbfile_load(&f, path, m);
    if (!s && !(m->maps = lb__zalloc(sizeof *m->maps))) s = LB_ERR_NOMEM;
    if (!s) { lb__st_take_map(&f, &m->maps[0]); m->n_maps = 1; }
    lb__st_close(&f);
    return s;
}

/* No magic matched: a legacy llama2.c checkpoint, or nothing lowbit reads. */
static lb_status load_other(const char *path, lb_model *m)
{
    lb_status s = load_llama2c(path, m);
    if (s == LB_ERR_FORMAT || s == LB_ERR_CORRUPT)
        return lb__err_prefix(s, "%s: not a model file lowbit reads (tried safetensors, a Hugging Face config.json "
                              "and llama2.c v1 by their headers, then a legacy llama2.c checkpoint): ", path);
    return s;
}

/* Non-finite values: in norms, biases and block scales an error (the pass
 * would turn every logit into NaN); in weight matrices a warning, counted in
 * the model (lb_model_info, `lowbit inspect`). */
static lb_status validate(lb_model *m, const char *path)
{
    int64_t n = lb__model_names(m, NULL, 0);
    lb__wname *names = lb__alloc((size_t)n * sizeof *names);
    if (!names) return LB_ERR_NOMEM;
    lb__model_names(m, names, n);
    lb_status s = LB_OK;
    for (int64_t i = 0; i < n && !s; i++) {
        const lb_weight *w = names[i].w;
        int64_t bad = lb__weight_nonfinite(w);
        if (!bad) continue;
        if (names[i].vector || w->rep != &lb__wrep_dense)
            s = lb__err(LB_ERR_FORMAT, "%s: tensor '%s' holds %lld NaN or infinite %s", path, names[i].name,
                        (long long)bad, names[i].vector ? "values" : "block scales");
        else {
            if (!m->n_nonfinite) snprintf(m->nonfinite_tensor, sizeof m->nonfinite_tensor, "%s", names[i].name);
            m->n_nonfinite += bad;
        }
    }
    if (!s && m->n_nonfinite)
        lb__log(LB_LOG_WARN, "%s: %lld NaN or infinite weight values (first in '%s')", path,
                (long long)m->n_nonfinite, m->nonfinite_tensor);
    LB_FREE(names);
    return s;
}

lb_status lb_model_load(const char *path, lb_model **out)
{
    if (!out) return lb__err(LB_ERR_ARG, "lb_model_load: no output pointer");
    *out = NULL;
    if (!path || !*path) return lb__err(LB_ERR_ARG, "lb_model_load: no path given");
    lb_file_kind kind = lb__model_file_kind(path);
    if (kind == LB_FILE_NONE) return lb__err(LB_ERR_IO, "%s: no such file or folder", path);
    lb_model *m = lb__model_new();
    if (!m) return LB_ERR_NOMEM;
    lb_status s;
    char *dir;
    switch (kind) {
    case LB_FILE_DIR: s = lb__hf_load(path, m); break;
    case LB_FILE_SAFETENSORS: s = load_safetensors(path, m); break;
    case LB_FILE_JSON:
        dir = parent_dir(path);
        s = dir ? lb__hf_load(dir, m) : LB_ERR_NOMEM;
        LB_FREE(dir);
        break;
    case LB_FILE_LLAMA2C_V1: s = load_llama2c(path, m); break;
    default: s = load_other(path, m); break;
    }
    if (!s) s = validate(m, path);
    if (s) { lb_model_free(m); return s; }
    *out = m;
    return LB_OK;
}

void lb_model_free(lb_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_maps; i++) lb__unmap(&m->maps[i]);
    LB_FREE(m->maps);
    lb__wstore_free(&m->store);
    LB_FREE(m->layers);
    LB_FREE(m->path);
    LB_FREE(m->source_format);
    LB_FREE(m);
}

static int64_t numel(const lb_weight *w) { return w->rep ? w->rows * w->cols : 0; }
static size_t nbytes(const lb_weight *w) { return w->rep ? w->rep->bytes(w) : 0; }

/* Sum over every distinct weight of the model (a tied lm_head counts once). */
static void count(const lb_model *m, int64_t *params, size_t *bytes)
{
    const lb_weight *top[3] = {&m->tok_embed, &m->final_norm, &m->lm_head};
    *params = 0; *bytes = 0;
    for (int i = 0; i < 3; i++) {
        if (i == 2 && m->lm_head.data == m->tok_embed.data) continue;
        *params += numel(top[i]); *bytes += nbytes(top[i]);
    }
    for (int64_t l = 0; m->layers && l < m->cfg.n_layers; l++) {
        const lb_layer_weights *L = &m->layers[l];
        const lb_weight *w[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->bq, &L->bk, &L->bv, &L->q_norm,
                                &L->k_norm, &L->wo, &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t k = 0; k < sizeof w / sizeof *w; k++) { *params += numel(w[k]); *bytes += nbytes(w[k]); }
    }
}

static const char *arch_name(lb_arch a)
{
    switch (a) {
    case LB_ARCH_LLAMA: return "llama";
    case LB_ARCH_MISTRAL: return "mistral";
    case LB_ARCH_QWEN2: return "qwen2";
    case LB_ARCH_QWEN3: return "qwen3";
    }
    return "unknown";
}

void lb_model_get_info(const lb_model *m, lb_model_info *info)
{
    if (!info) return;
    memset(info, 0, sizeof *info);
    if (!m) return;
    const lb_config *c = &m->cfg;
    snprintf(info->arch, sizeof info->arch, "%s", arch_name(c->arch));
    snprintf(info->source, sizeof info->source, "%s", m->source_format ? m->source_format : "");
    info->dim = c->dim; info->hidden_dim = c->hidden_dim; info->n_layers = c->n_layers;
    info->n_heads = c->n_heads; info->n_kv_heads = c->n_kv_heads; info->head_dim = c->head_dim;
    info->vocab_size = c->vocab_size; info->max_seq = c->max_seq;
    info->rope_theta = c->rope_theta; info->norm_eps = c->norm_eps;
    info->tied_embeddings = c->tied_embeddings;
    count(m, &info->n_params, &info->weight_bytes);
    info->n_nonfinite = m->n_nonfinite;
    snprintf(info->nonfinite_tensor, sizeof info->nonfinite_tensor, "%s", m->nonfinite_tensor);
}
