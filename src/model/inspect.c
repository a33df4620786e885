/* inspect.c: lb_inspect describes a model file or folder without loading it
 * for inference: format, config, tensors (name, dtype, shape, bytes, offset
 * within the file) and metadata, as text or JSON. llama2.c tensors are listed
 * under the names of llama2.c's model.py (tok_embeddings.weight,
 * layers.N.attention.wq.weight, ...). */
#include "model/loader.h"
#include "core/safetensors.h"
#include <sys/stat.h>

typedef struct insp_tensor {
    char name[128];
    lb_dtype dtype;
    int ndim;
    int64_t shape[LB_ST_MAX_DIMS];
    uint64_t bytes, offset;      /* offset from the start of the file */
} insp_tensor;

typedef struct insp_file {
    const char *path;
    size_t size, header;
    const char **mk, **mv;
    int64_t n_meta;
    insp_tensor *t;
    int64_t n;
} insp_file;

typedef struct insp {
    const char *path, *format;
    const lb_config *cfg;        /* NULL for a bare safetensors file */
    insp_file *files;
    int n_files;
    char warning[256];           /* what loading the model found (non-finite weights), or "" */
} insp;

static const char *arch_str(lb_arch a)
{
    static const char *n[] = {"llama", "mistral", "qwen2", "qwen3"};
    return (unsigned)a < 4 ? n[a] : "?";
}

/* The config as one JSON object (also lowbit model files' "lowbit.config"). */
void lb__config_json(lb_buf *b, const lb_config *c)
{
    lb__buf_printf(b, "{\"arch\": \"%s\", \"dim\": %lld, \"hidden_dim\": %lld, \"n_layers\": %lld, \"n_heads\": %lld, "
                   "\"n_kv_heads\": %lld, \"head_dim\": %lld, \"vocab_size\": %lld, \"max_seq\": %lld, ",
                   arch_str(c->arch), (long long)c->dim, (long long)c->hidden_dim, (long long)c->n_layers,
                   (long long)c->n_heads, (long long)c->n_kv_heads, (long long)c->head_dim, (long long)c->vocab_size,
                   (long long)c->max_seq);
    lb__buf_printf(b, "\"norm_eps\": %.9g, \"rope_theta\": %.9g, \"rope_layout\": \"%s\", ", (double)c->norm_eps,
                   (double)c->rope_theta, c->rope_layout == LB_ROPE_HALF ? "half" : "interleaved");
    if (c->rope_factor > 0)
        lb__buf_printf(b, "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": %.9g, \"low_freq_factor\": %.9g, "
                       "\"high_freq_factor\": %.9g, \"original_max_position_embeddings\": %lld}, ",
                       (double)c->rope_factor, (double)c->rope_low_freq_factor, (double)c->rope_high_freq_factor,
                       (long long)c->rope_orig_max_pos);
    else lb__buf_printf(b, "\"rope_scaling\": null, ");
    lb__buf_printf(b, "\"tied_embeddings\": %s, \"qkv_bias\": %s, \"qk_norm\": %s, \"bos_id\": %d, \"eos_id\": %d}",
                   c->tied_embeddings ? "true" : "false", c->qkv_bias ? "true" : "false", c->qk_norm ? "true" : "false",
                   c->bos_id, c->eos_id);
}

static void text_config(lb_buf *b, const lb_config *c)
{
    lb__buf_printf(b, "config:  %s, dim %lld, hidden %lld, layers %lld, heads %lld (kv %lld, head_dim %lld), vocab %lld, "
                   "max_seq %lld\n", arch_str(c->arch), (long long)c->dim, (long long)c->hidden_dim,
                   (long long)c->n_layers, (long long)c->n_heads, (long long)c->n_kv_heads, (long long)c->head_dim,
                   (long long)c->vocab_size, (long long)c->max_seq);
    lb__buf_printf(b, "         rope %s theta %g", c->rope_layout == LB_ROPE_HALF ? "half" : "interleaved",
                   (double)c->rope_theta);
    if (c->rope_factor > 0)
        lb__buf_printf(b, " (llama3 scaling: factor %g, low %g, high %g, original %lld)", (double)c->rope_factor,
                       (double)c->rope_low_freq_factor, (double)c->rope_high_freq_factor, (long long)c->rope_orig_max_pos);
    lb__buf_printf(b, ", norm_eps %g, %s embeddings%s%s, bos %d, eos %d\n", (double)c->norm_eps,
                   c->tied_embeddings ? "tied" : "separate", c->qkv_bias ? ", q/k/v biases" : "",
                   c->qk_norm ? ", q/k norms" : "", c->bos_id, c->eos_id);
}

static void shape_str(char *s, size_t cap, const insp_tensor *t, const char *sep)
{
    s[0] = 0;
    for (int i = 0; i < t->ndim; i++)
        snprintf(s + strlen(s), cap - strlen(s), "%s%lld", i ? sep : "", (long long)t->shape[i]);
}

static void totals(const insp *x, int64_t *n, int64_t *params, uint64_t *bytes)
{
    *n = 0; *params = 0; *bytes = 0;
    for (int f = 0; f < x->n_files; f++)
        for (int64_t i = 0; i < x->files[f].n; i++) {
            const insp_tensor *t = &x->files[f].t[i];
            int64_t e = 1;
            for (int k = 0; k < t->ndim; k++) e *= t->shape[k];
            (*n)++; *params += e; *bytes += t->bytes;
        }
}

static void emit_json(lb_buf *b, const insp *x)
{
    int64_t n, params;
    uint64_t bytes;
    totals(x, &n, &params, &bytes);
    lb__buf_printf(b, "{\"path\": ");
    lb__buf_json_str(b, x->path);
    lb__buf_printf(b, ", \"format\": \"%s\", \"config\": ", x->format);
    if (x->cfg) lb__config_json(b, x->cfg); else lb__buf_printf(b, "null");
    lb__buf_printf(b, ", \"n_tensors\": %lld, \"n_params\": %lld, \"tensor_bytes\": %llu, \"files\": [", (long long)n,
                   (long long)params, (unsigned long long)bytes);
    for (int f = 0; f < x->n_files; f++) {
        const insp_file *F = &x->files[f];
        lb__buf_printf(b, "%s{\"path\": ", f ? ", " : "");
        lb__buf_json_str(b, F->path);
        lb__buf_printf(b, ", \"bytes\": %zu, \"header_bytes\": %zu, \"metadata\": {", F->size, F->header);
        for (int64_t i = 0; i < F->n_meta; i++) {
            if (i) lb__buf_printf(b, ", ");
            lb__buf_json_str(b, F->mk[i]);
            lb__buf_printf(b, ": ");
            lb__buf_json_str(b, F->mv[i]);
        }
        lb__buf_printf(b, "}, \"tensors\": [");
        for (int64_t i = 0; i < F->n; i++) {
            char sh[160];
            shape_str(sh, sizeof sh, &F->t[i], ", ");
            lb__buf_printf(b, "%s\n  {\"name\": ", i ? "," : "");
            lb__buf_json_str(b, F->t[i].name);
            lb__buf_printf(b, ", \"dtype\": \"%s\", \"shape\": [%s], \"bytes\": %llu, \"offset\": %llu}",
                           lb_dtype_name(F->t[i].dtype), sh, (unsigned long long)F->t[i].bytes,
                           (unsigned long long)F->t[i].offset);
        }
        lb__buf_printf(b, "]}");
    }
    lb__buf_printf(b, "], \"warning\": ");
    if (x->warning[0]) lb__buf_json_str(b, x->warning); else lb__buf_printf(b, "null");
    lb__buf_printf(b, "}\n");
}

static void emit_text(lb_buf *b, const insp *x)
{
    int64_t n, params;
    uint64_t bytes;
    totals(x, &n, &params, &bytes);
    lb__buf_printf(b, "path:    %s\nformat:  %s\n", x->path, x->format);
    if (x->cfg) text_config(b, x->cfg);
    lb__buf_printf(b, "tensors: %lld, %lld parameters, %llu bytes\n", (long long)n, (long long)params,
                   (unsigned long long)bytes);
    if (x->warning[0]) lb__buf_printf(b, "warning: %s\n", x->warning);
    for (int f = 0; f < x->n_files; f++) {
        const insp_file *F = &x->files[f];
        lb__buf_printf(b, "\nfile:    %s (%zu bytes, header %zu bytes)\n", F->path, F->size, F->header);
        bool q = false;   /* a lowbit model file: its stored weights as a table (src/weights) */
        for (int64_t i = 0; i < F->n_meta; i++) q = q || !strcmp(F->mk[i], "lowbit.version");
        if (q) lb__weight_describe_meta(b, F->mk, F->mv, F->n_meta);
        for (int64_t i = 0; i < F->n_meta; i++)
            if (!q || strncmp(F->mk[i], "lowbit.tensor.", 14)) lb__buf_printf(b, "  metadata %s = %s\n", F->mk[i], F->mv[i]);
        lb__buf_printf(b, "  %-48s %-5s %-16s %12s %12s\n", "name", "dtype", "shape", "bytes", "offset");
        for (int64_t i = 0; i < F->n; i++) {
            char sh[160];
            shape_str(sh, sizeof sh, &F->t[i], " x ");
            lb__buf_printf(b, "  %-48s %-5s %-16s %12llu %12llu\n", F->t[i].name, lb_dtype_name(F->t[i].dtype), sh,
                           (unsigned long long)F->t[i].bytes, (unsigned long long)F->t[i].offset);
        }
    }
}

/* Describe opened safetensors files (tensors in data order). */
static lb_status from_st(insp *x, const lb_st_file *st, int n)
{
    x->files = lb__zalloc((size_t)n * sizeof *x->files);
    if (!x->files) return LB_ERR_NOMEM;
    x->n_files = n;
    for (int f = 0; f < n; f++) {
        insp_file *F = &x->files[f];
        F->path = st[f].what; F->size = st[f].size; F->header = st[f].data_off - 8;
        F->mk = st[f].meta_keys; F->mv = st[f].meta_vals; F->n_meta = st[f].n_meta;
        F->t = lb__zalloc(((size_t)st[f].n_tensors + 1) * sizeof *F->t);
        if (!F->t) return LB_ERR_NOMEM;
        F->n = st[f].n_tensors;
        for (int64_t i = 0; i < F->n; i++) {
            const lb_st_tensor *s = &st[f].tensors[i];
            insp_tensor *t = &F->t[i];
            snprintf(t->name, sizeof t->name, "%s", s->name);
            t->dtype = s->dtype; t->ndim = s->ndim;
            memcpy(t->shape, s->shape, sizeof t->shape);
            t->bytes = s->end - s->begin;
            t->offset = st[f].data_off + s->begin;
        }
    }
    return LB_OK;
}

static void add_w(insp_file *F, const lb_model *m, const lb_weight *w, const char *name)
{
    insp_tensor *t = &F->t[F->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = w->dtype;
    t->ndim = w->rows == 1 ? 1 : 2;
    t->shape[0] = w->rows == 1 ? w->cols : w->rows;
    t->shape[1] = w->cols;
    t->bytes = (uint64_t)(w->rows * w->cols) * lb_dtype_size(w->dtype);
    t->offset = (uint64_t)((const uint8_t *)w->data - m->maps[0].data);
}

/* llama2.c tensors in file order, named as in llama2.c's model.py. */
static lb_status from_llama2c(insp *x, const lb_model *m)
{
    x->files = lb__zalloc(sizeof *x->files);
    if (!x->files) return LB_ERR_NOMEM;
    x->n_files = 1;
    insp_file *F = &x->files[0];
    F->path = m->path; F->size = m->maps[0].size;
    F->header = !strcmp(m->source_format, "llama2c-v1") ? 256 : 28;
    F->t = lb__zalloc((size_t)(m->cfg.n_layers * 9 + 3) * sizeof *F->t);
    if (!F->t) return LB_ERR_NOMEM;
    add_w(F, m, &m->tok_embed, "tok_embeddings.weight");
    char nm[96];
    static const char *ln[] = {"attention_norm", "attention.wq", "attention.wk", "attention.wv", "attention.wo",
                               "ffn_norm", "feed_forward.w1", "feed_forward.w2", "feed_forward.w3"};
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        const lb_layer_weights *L = &m->layers[l];
        const lb_weight *w[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_norm, &L->w_gate,
                                &L->w_down, &L->w_up};
        for (int k = 0; k < 9; k++) {
            snprintf(nm, sizeof nm, "layers.%lld.%s.weight", (long long)l, ln[k]);
            add_w(F, m, w[k], nm);
        }
    }
    add_w(F, m, &m->final_norm, "norm.weight");
    if (!m->cfg.tied_embeddings) add_w(F, m, &m->lm_head, "output.weight");
    return LB_OK;
}

static void insp_free(insp *x)
{
    for (int f = 0; x->files && f < x->n_files; f++) LB_FREE(x->files[f].t);
    LB_FREE(x->files);
    x->files = NULL;
    x->n_files = 0;
}

/* Load the model the path holds (when it loads) to report what only the
 * values show: NaN or infinite weights. Errors here are not inspect's. */
static void check_values(insp *x)
{
    lb_model *m = NULL;
    if (lb_model_load(x->path, &m)) { lb__clear_err(); return; }
    if (m->n_nonfinite)
        snprintf(x->warning, sizeof x->warning, "%lld NaN or infinite weight values (first in '%s')",
                 (long long)m->n_nonfinite, m->nonfinite_tensor);
    lb_model_free(m);
}

static lb_status finish(insp *x, int json, char **out)
{
    check_values(x);
    lb_buf b = {0};
    if (json) emit_json(&b, x); else emit_text(&b, x);
    insp_free(x);
    if (b.failed) { lb__buf_free(&b); return lb__err(LB_ERR_NOMEM, "%s: out of memory describing", x->path); }
    *out = b.data;
    return LB_OK;
}

lb_status lb_inspect(const char *path, int json, char **out)
{
    if (!out) return lb__err(LB_ERR_ARG, "lb_inspect: no output pointer");
    *out = NULL;
    if (!path) return lb__err(LB_ERR_ARG, "lb_inspect: no path given");
    lb_file_kind kind = lb__model_file_kind(path);
    if (kind == LB_FILE_NONE) return lb__err(LB_ERR_IO, "%s: no such file or folder", path);
    insp x = {.path = path};
    lb_status s;
    if (kind == LB_FILE_DIR) {
        lb_config cfg;
        lb_st_file *files = NULL;
        int n = 0;
        s = lb__hf_read_config(path, &cfg);
        if (!s) s = lb__hf_open_files(path, &files, &n);
        x.format = "hf-safetensors"; x.cfg = &cfg;
        if (!s) s = from_st(&x, files, n);
        if (!s) s = finish(&x, json, out);
        for (int i = 0; i < n; i++) lb__st_close(&files[i]);
        LB_FREE(files);
        insp_free(&x);
        return s;
    }
    if (kind == LB_FILE_SAFETENSORS) {
        lb_st_file f;
        if ((s = lb__st_open(path, &f))) return s;
        x.format = "safetensors";
        s = from_st(&x, &f, 1);
        if (!s) s = finish(&x, json, out);
        insp_free(&x);
        lb__st_close(&f);
        return s;
    }
    lb_model *m = NULL;
    if (kind == LB_FILE_JSON) return lb__err(LB_ERR_ARG, "%s: inspect the model folder instead", path);
    if ((s = lb_model_load(path, &m))) return s;
    x.format = m->source_format; x.cfg = &m->cfg;
    s = from_llama2c(&x, m);
    if (!s) s = finish(&x, json, out);
    insp_free(&x);
    lb_model_free(m);
    return s;
}
