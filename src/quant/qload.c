/* qload.c: reading lowbit model files (written by lb_model_save, layout in
 * qfile.c and docs/file-format.md) into an lb_model. Dense tensors stay
 * views into the mapping; a packed weight gets one model-owned buffer of
 * rows * row_bytes (the format's packed size, so resident memory reflects the
 * bits) into which its codes, scales and zero points are interleaved again.
 * Every tensor and metadata entry is checked against the config before use;
 * any mismatch is an LB_ERR_FORMAT naming the file and the tensor. */
#include "quant/quant.h"
#include "model/loader.h"
#include "model/safetensors.h"
#include <math.h>

bool lb__qfile_is_lowbit(const char *path)
{
    lb_st_file f;
    if (lb__st_open(path, &f)) { lb__clear_err(); return false; }
    bool yes = lb__st_meta(&f, "lowbit.version") != NULL;
    lb__st_close(&f);
    return yes;
}

/* ---------------------------------------------------------------- config */

static lb_status cfg_int(const lb_json *j, const char *k, const char *what, int64_t *v)
{
    if (!lb__json_int(j, k, v)) return lb__err(LB_ERR_FORMAT, "%s: lowbit.config: \"%s\" missing or not an integer", what, k);
    return LB_OK;
}

static lb_status cfg_bool(const lb_json *j, const char *k, const char *what, bool *v)
{
    const lb_json *x = lb__json_get(j, k);
    if (!x || x->type != LB_JSON_BOOL) return lb__err(LB_ERR_FORMAT, "%s: lowbit.config: \"%s\" missing or not a boolean", what, k);
    *v = x->b;
    return LB_OK;
}

static lb_status cfg_num(const lb_json *j, const char *k, const char *what, float *v)
{
    double d;
    if (!lb__json_num(j, k, &d)) return lb__err(LB_ERR_FORMAT, "%s: lowbit.config: \"%s\" missing or not a number", what, k);
    *v = (float)d;
    return LB_OK;
}

static lb_status parse_rope_scaling(const lb_json *j, const char *what, lb_config *c)
{
    const lb_json *r = lb__json_get(j, "rope_scaling");
    if (!r || r->type == LB_JSON_NULL) return LB_OK;
    double lo, hi;
    lb_status s = cfg_num(r, "factor", what, &c->rope_factor);
    if (!s) s = cfg_num(r, "low_freq_factor", what, &c->rope_low_freq_factor);
    if (!s) s = cfg_num(r, "high_freq_factor", what, &c->rope_high_freq_factor);
    if (!s) s = cfg_int(r, "original_max_position_embeddings", what, &c->rope_orig_max_pos);
    lo = c->rope_low_freq_factor; hi = c->rope_high_freq_factor;
    if (!s && !(c->rope_factor > 0 && hi > lo && c->rope_orig_max_pos > 0))
        s = lb__err(LB_ERR_FORMAT, "%s: lowbit.config: bad rope_scaling", what);
    return s;
}

static lb_status parse_config(const char *text, const char *what, lb_config *c)
{
    lb_json *j = NULL;
    lb_status s = lb__json_parse(text, strlen(text), what, &j);
    if (s) return s;
    memset(c, 0, sizeof *c);
    static const char *archs[] = {"llama", "mistral", "qwen2", "qwen3"};
    const char *a = lb__json_str(j, "arch"), *rl = lb__json_str(j, "rope_layout");
    int64_t bos = -1, eos = -1;
    s = LB_ERR_FORMAT;
    for (int i = 0; a && i < 4; i++) if (!strcmp(a, archs[i])) { c->arch = (lb_arch)i; s = LB_OK; }
    if (s) s = lb__err(LB_ERR_FORMAT, "%s: lowbit.config: unknown \"arch\"", what);
    if (!s && (!rl || (strcmp(rl, "half") && strcmp(rl, "interleaved"))))
        s = lb__err(LB_ERR_FORMAT, "%s: lowbit.config: \"rope_layout\" must be \"half\" or \"interleaved\"", what);
    if (!s) c->rope_layout = !strcmp(rl, "half") ? LB_ROPE_HALF : LB_ROPE_INTERLEAVED;
    if (!s) s = cfg_int(j, "dim", what, &c->dim);
    if (!s) s = cfg_int(j, "hidden_dim", what, &c->hidden_dim);
    if (!s) s = cfg_int(j, "n_layers", what, &c->n_layers);
    if (!s) s = cfg_int(j, "n_heads", what, &c->n_heads);
    if (!s) s = cfg_int(j, "n_kv_heads", what, &c->n_kv_heads);
    if (!s) s = cfg_int(j, "head_dim", what, &c->head_dim);
    if (!s) s = cfg_int(j, "vocab_size", what, &c->vocab_size);
    if (!s) s = cfg_int(j, "max_seq", what, &c->max_seq);
    if (!s) s = cfg_num(j, "norm_eps", what, &c->norm_eps);
    if (!s) s = cfg_num(j, "rope_theta", what, &c->rope_theta);
    if (!s) s = cfg_bool(j, "tied_embeddings", what, &c->tied_embeddings);
    if (!s) s = cfg_bool(j, "qkv_bias", what, &c->qkv_bias);
    if (!s) s = cfg_bool(j, "qk_norm", what, &c->qk_norm);
    if (!s) s = cfg_int(j, "bos_id", what, &bos);
    if (!s) s = cfg_int(j, "eos_id", what, &eos);
    if (!s) s = parse_rope_scaling(j, what, c);
    lb__json_free(j);
    if (s) return s;
    if (bos < -1 || eos < -1 || bos > INT32_MAX || eos > INT32_MAX)
        return lb__err(LB_ERR_FORMAT, "%s: lowbit.config: bad bos_id/eos_id", what);
    c->bos_id = (int32_t)bos; c->eos_id = (int32_t)eos;
    return lb__config_validate(c, what);
}

/* --------------------------------------------------------------- tensors */

typedef struct qctx {
    lb_st_file f;
    bool *used;
    lb_model *m;
    const char *what;
} qctx;

static const lb_st_tensor *take(qctx *q, const char *name)
{
    const lb_st_tensor *t = lb__st_find(&q->f, name);
    if (t) q->used[t - q->f.tensors] = true;
    return t;
}

static lb_status shape_err(qctx *q, const char *name, int64_t d0, int64_t d1, int nd)
{
    if (nd == 1) return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld]", q->what, name, (long long)d0);
    return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld, %lld]", q->what, name, (long long)d0,
                   (long long)d1);
}

/* Tensor `name` of dtype dt and shape (d0) or (d0, d1); required or not. */
static lb_status get(qctx *q, const char *name, lb_dtype dt, int nd, int64_t d0, int64_t d1, bool required,
                     const lb_st_tensor **out)
{
    const lb_st_tensor *t = *out = take(q, name);
    if (!t) return required ? lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is missing", q->what, name) : LB_OK;
    if (t->dtype != dt)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected %s", q->what, name,
                       lb_dtype_name(t->dtype), lb_dtype_name(dt));
    if (t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1)) return shape_err(q, name, d0, d1, nd);
    return LB_OK;
}

/* A view, or a model-owned copy when the data is not aligned for its dtype. */
static const void *view(qctx *q, const lb_st_tensor *t)
{
    size_t es = lb_dtype_size(t->dtype);
    if ((uintptr_t)t->data % es == 0) return t->data;
    void *p = lb__model_own(q->m, (size_t)(t->end - t->begin));
    if (p) memcpy(p, t->data, (size_t)(t->end - t->begin));
    return p;
}

typedef struct tmeta {
    const lb_format *fmt;
    const lb_quantizer *method;
    int64_t group, hblock, rows, cols;
    bool hadamard, col_scale;
} tmeta;

static lb_status parse_tmeta(qctx *q, const char *pre, const char *text, tmeta *t)
{
    lb_json *j = NULL;
    char what[256];
    snprintf(what, sizeof what, "%s: lowbit.tensor.%s", q->what, pre);
    lb_status s = lb__json_parse(text, strlen(text), what, &j);
    if (s) return s;
    const char *fmt = lb__json_str(j, "format"), *meth = lb__json_str(j, "method"), *tr = lb__json_str(j, "transform");
    const lb_json *shape = lb__json_get(j, "shape"), *cs = lb__json_get(j, "col_scale");
    memset(t, 0, sizeof *t);
    t->fmt = fmt ? lb_format_find(fmt) : NULL;
    t->method = meth ? lb_quantizer_find(meth) : NULL;
    if (!fmt || !meth || !tr || !cs || cs->type != LB_JSON_BOOL || !shape || shape->type != LB_JSON_ARR ||
        shape->len != 2 || !lb__json_int(j, "group", &t->group) || !lb__json_int(j, "hadamard_block", &t->hblock))
        s = lb__err(LB_ERR_FORMAT, "%s: needs format, method, group, transform, hadamard_block, col_scale and shape",
                    what);
    else if (strcmp(tr, "none") && strcmp(tr, "hadamard"))
        s = lb__err(LB_ERR_FORMAT, "%s: unknown transform '%s'", what, tr);
    else if (!t->method && strcmp(meth, "none")) s = lb__err(LB_ERR_FORMAT, "%s: unknown method '%s'", what, meth);
    if (!s) {
        t->hadamard = !strcmp(tr, "hadamard");
        t->col_scale = cs->b;
        const lb_json *r = lb__json_at(shape, 0), *c = lb__json_at(shape, 1);
        if (r->type != LB_JSON_NUM || c->type != LB_JSON_NUM)
            s = lb__err(LB_ERR_FORMAT, "%s: bad shape", what);
        else { t->rows = (int64_t)r->num; t->cols = (int64_t)c->num; }
        if (!s && !t->fmt && strcmp(fmt, "F32") && strcmp(fmt, "F16") && strcmp(fmt, "BF16"))
            s = lb__err(LB_ERR_FORMAT, "%s: unknown format '%s'", what, fmt);
        if (!s && t->fmt && t->group != lb_format_block(t->fmt))
            s = lb__err(LB_ERR_FORMAT, "%s: group %lld does not match format %s (block %lld)", what,
                        (long long)t->group, fmt, (long long)lb_format_block(t->fmt));
    }
    lb__json_free(j);
    return s;
}

static lb_status check_tmeta(qctx *q, const char *pre, const tmeta *t, const lb_weight *w, bool packed)
{
    if (t->rows != w->rows || t->cols != w->cols)
        return lb__err(LB_ERR_FORMAT, "%s: lowbit.tensor.%s: shape [%lld, %lld] does not match the config's "
                       "[%lld, %lld]", q->what, pre, (long long)t->rows, (long long)t->cols, (long long)w->rows,
                       (long long)w->cols);
    if (packed != (t->fmt != NULL))
        return lb__err(LB_ERR_FORMAT, "%s: lowbit.tensor.%s: format does not match the tensors stored", q->what, pre);
    if (t->fmt && lb_format_block(t->fmt) && w->cols % lb_format_block(t->fmt))
        return lb__err(LB_ERR_FORMAT, "%s: lowbit.tensor.%s: %lld columns do not divide into blocks of %lld",
                       q->what, pre, (long long)w->cols, (long long)lb_format_block(t->fmt));
    if (t->hadamard && (t->hblock < 2 || w->cols % t->hblock || !lb_hadamard_supported(t->hblock)))
        return lb__err(LB_ERR_FORMAT, "%s: lowbit.tensor.%s: hadamard_block %lld is not a supported order "
                       "dividing %lld", q->what, pre, (long long)t->hblock, (long long)w->cols);
    return LB_OK;
}

/* The rotation signs and the column scale of a weight, as the metadata says. */
static lb_status take_extras(qctx *q, const char *pre, const tmeta *t, lb_weight *w)
{
    char name[160];
    const lb_st_tensor *x;
    lb_status s = LB_OK;
    snprintf(name, sizeof name, "%s.weight_col_scale", pre);
    if ((s = get(q, name, LB_DTYPE_F32, 1, w->cols, 0, t->col_scale, &x))) return s;
    if (x && !t->col_scale)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' present but the metadata says col_scale: false", q->what, name);
    if (x) {
        if (!(w->col_scale = view(q, x))) return LB_ERR_NOMEM;
        for (int64_t c = 0; c < w->cols; c++)
            if (!(w->col_scale[c] > 0 && w->col_scale[c] < INFINITY))
                return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': entry %lld is not a positive finite number", q->what,
                               name, (long long)c);
    }
    snprintf(name, sizeof name, "%s.hadamard_signs", pre);
    if ((s = get(q, name, LB_DTYPE_I8, 1, w->cols, 0, t->hadamard, &x))) return s;
    if (x && !t->hadamard)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' present but the metadata says transform: none", q->what, name);
    if (x) {
        const int8_t *g = x->data;
        for (int64_t c = 0; c < w->cols; c++)
            if (g[c] != 1 && g[c] != -1)
                return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': entry %lld is %d, not +1 or -1", q->what, name,
                               (long long)c, g[c]);
        w->hadamard_signs = g;
        w->hadamard_block = t->hblock;
    }
    w->method = t->method ? lb_quantizer_name(t->method) : NULL;
    return LB_OK;
}

/* Codes, scales, zero points (and global scale) -> one interleaved buffer. */
static lb_status take_packed(qctx *q, const char *pre, const lb_format *f, lb_weight *w)
{
    lb__qsplit p;
    lb__qsplit_plan(f, w->cols, &p);
    char n1[160], n2[160], n3[160], n4[160];
    snprintf(n1, sizeof n1, "%s.weight_packed", pre);
    snprintf(n2, sizeof n2, "%s.weight_scale", pre);
    snprintf(n3, sizeof n3, "%s.weight_zero_point", pre);
    snprintf(n4, sizeof n4, "%s.weight_global_scale", pre);
    const lb_st_tensor *codes, *scales, *zeros = NULL, *glob = NULL;
    bool nv = lb_format_uses_tensor_scale(f);
    lb_status s = get(q, n1, LB_DTYPE_U8, 2, w->rows, (int64_t)p.code_bytes, true, &codes);
    if (!s) s = get(q, n2, p.scale_dtype, 2, w->rows, p.n_blocks, true, &scales);
    if (!s) s = get(q, n3, LB_DTYPE_U8, 2, w->rows, p.n_blocks, p.has_zero, &zeros);
    if (!s && zeros && !p.has_zero) s = lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is not used by format %s", q->what, n3, lb_format_name(f));
    if (!s) s = get(q, n4, LB_DTYPE_F32, 1, 1, 0, nv, &glob);
    if (!s && glob && !nv) s = lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is not used by format %s", q->what, n4, lb_format_name(f));
    if (s) return s;
    w->tensor_scale = 1.0f;
    if (glob) {
        memcpy(&w->tensor_scale, glob->data, sizeof(float));
        if (!(w->tensor_scale > 0 && w->tensor_scale < INFINITY))
            return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is not a positive finite number", q->what, n4);
    }
    w->fmt = f;
    w->dtype = LB_DTYPE_U8;
    w->row_bytes = lb_format_row_bytes(f, w->cols);
    uint8_t *buf = lb__model_own(q->m, w->row_bytes * (size_t)w->rows);
    if (!buf) return LB_ERR_NOMEM;
    size_t sb = (size_t)(p.n_blocks * p.scale_bytes);
    for (int64_t r = 0; r < w->rows; r++)
        lb__qjoin_row(&p, (const uint8_t *)codes->data + (size_t)r * p.code_bytes,
                      (const uint8_t *)scales->data + (size_t)r * sb,
                      zeros ? (const uint8_t *)zeros->data + (size_t)r * (size_t)p.n_blocks : NULL,
                      buf + (size_t)r * w->row_bytes);
    w->data = buf;
    return LB_OK;
}

static lb_status take_dense(qctx *q, const lb__qname *nm, const lb_st_tensor *t, lb_weight *w)
{
    if (t->dtype != LB_DTYPE_F32 && t->dtype != LB_DTYPE_F16 && t->dtype != LB_DTYPE_BF16)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' has dtype %s (dense weights are F32, F16 or BF16)", q->what,
                       nm->name, lb_dtype_name(t->dtype));
    bool ok = nm->vector ? t->ndim == 1 && t->shape[0] == w->cols
                         : t->ndim == 2 && t->shape[0] == w->rows && t->shape[1] == w->cols;
    if (!ok) return shape_err(q, nm->name, nm->vector ? w->cols : w->rows, w->cols, nm->vector ? 1 : 2);
    w->dtype = t->dtype;
    return (w->data = view(q, t)) ? LB_OK : LB_ERR_NOMEM;
}

/* Expected shapes of every weight slot, from the config. */
static void expected_shapes(lb_model *m, lb__qname *names, int64_t n)
{
    const lb_config *c = &m->cfg;
    int64_t d = c->dim, qd = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim, f = c->hidden_dim;
    for (int64_t i = 0; i < n; i++) {
        const char *s = names[i].name;
        int64_t rows = 1, cols = d;
        if (strstr(s, "embed_tokens") || strstr(s, "lm_head")) { rows = c->vocab_size; cols = d; }
        else if (strstr(s, "q_proj.weight")) { rows = qd; cols = d; }
        else if (strstr(s, "k_proj.weight") || strstr(s, "v_proj.weight")) { rows = kv; cols = d; }
        else if (strstr(s, "q_proj.bias")) cols = qd;
        else if (strstr(s, "k_proj.bias") || strstr(s, "v_proj.bias")) cols = kv;
        else if (strstr(s, "q_norm") || strstr(s, "k_norm")) cols = c->head_dim;
        else if (strstr(s, "o_proj")) { rows = d; cols = qd; }
        else if (strstr(s, "gate_proj") || strstr(s, "up_proj")) { rows = f; cols = d; }
        else if (strstr(s, "down_proj")) { rows = d; cols = f; }
        names[i].w->rows = rows;
        names[i].w->cols = cols;
    }
}

static lb_status take_weight(qctx *q, const lb__qname *nm)
{
    lb_weight *w = nm->w;
    char pre[112], key[160];
    snprintf(pre, sizeof pre, "%s", nm->name);
    if (lb__ends_with(pre, ".weight")) pre[strlen(pre) - 7] = 0;
    snprintf(key, sizeof key, "lowbit.tensor.%s", pre);
    const char *meta = lb__st_meta(&q->f, key);
    const lb_st_tensor *dense = take(q, nm->name);
    char pk[160];
    snprintf(pk, sizeof pk, "%s.weight_packed", pre);
    bool packed = lb__st_find(&q->f, pk) != NULL;
    tmeta t = {0};
    lb_status s = LB_OK;
    if (meta && (s = parse_tmeta(q, pre, meta, &t))) return s;
    if (dense && packed) return lb__err(LB_ERR_FORMAT, "%s: both '%s' and '%s' are present", q->what, nm->name, pk);
    if (!dense && !packed)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is missing (neither dense nor packed as '%s')", q->what,
                       nm->name, pk);
    if (packed && !meta)
        return lb__err(LB_ERR_FORMAT, "%s: '%s' has no metadata entry '%s'", q->what, pk, key);
    if (meta && (s = check_tmeta(q, pre, &t, w, packed))) return s;
    s = packed ? take_packed(q, pre, t.fmt, w) : take_dense(q, nm, dense, w);
    if (!s && meta) s = take_extras(q, pre, &t, w);
    return s;
}

static lb_status check_all_used(const qctx *q)
{
    for (int64_t i = 0; i < q->f.n_tensors; i++)
        if (!q->used[i])
            return lb__err(LB_ERR_FORMAT, "%s: unexpected tensor '%s' (not part of this model's layout)", q->what,
                           q->f.tensors[i].name);
    return LB_OK;
}

lb_status lb__qfile_load(const char *path, lb_model *m)
{
    qctx q = {.m = m, .what = path};
    lb_status s = lb__st_open(path, &q.f);
    if (s) return s;
    const char *cfg = lb__st_meta(&q.f, "lowbit.config"), *ver = lb__st_meta(&q.f, "lowbit.version");
    if (!ver || strcmp(ver, "1")) s = lb__err(LB_ERR_FORMAT, "%s: lowbit.version '%s' is not supported (1 expected)",
                                              path, ver ? ver : "");
    else if (!cfg) s = lb__err(LB_ERR_FORMAT, "%s: no lowbit.config in the metadata", path);
    if (!s) s = parse_config(cfg, path, &m->cfg);
    if (!s) s = lb__model_alloc_layers(m);
    if (!s && !(q.used = lb__zalloc((size_t)q.f.n_tensors + 1))) s = LB_ERR_NOMEM;
    int64_t n = s ? 0 : lb__qnames(m, NULL, 0);
    lb__qname *names = s ? NULL : lb__alloc((size_t)n * sizeof *names);
    if (!s && !names) s = LB_ERR_NOMEM;
    if (!s) { lb__qnames(m, names, n); expected_shapes(m, names, n); }
    for (int64_t i = 0; !s && i < n; i++) s = take_weight(&q, &names[i]);
    if (!s) s = check_all_used(&q);
    if (!s && m->cfg.tied_embeddings) m->lm_head = m->tok_embed;
    if (!s && !(m->maps = lb__zalloc(sizeof *m->maps))) s = LB_ERR_NOMEM;
    if (!s) { lb__st_take_map(&q.f, &m->maps[0]); m->n_maps = 1; }
    if (!s) s = lb__model_set_names(m, path, "lowbit");
    LB_FREE(names);
    LB_FREE(q.used);
    lb__st_close(&q.f);
    return s;
}

bool lb__qfile_describe(lb_buf *b, const char **keys, const char **vals, int64_t n)
{
    bool lowbit = false;
    for (int64_t i = 0; i < n; i++) lowbit = lowbit || !strcmp(keys[i], "lowbit.version");
    if (!lowbit) return false;
    lb__buf_printf(b, "  quantized weights:\n  %-40s %-20s %-14s %6s %-9s %8s\n", "weight", "format", "method", "group",
                   "transform", "bits/w");
    for (int64_t i = 0; i < n; i++) {
        if (strncmp(keys[i], "lowbit.tensor.", 14)) continue;
        lb_json *j = NULL;
        if (lb__json_parse(vals[i], strlen(vals[i]), keys[i], &j)) { lb__clear_err(); continue; }
        const char *f = lb__json_str(j, "format"), *m = lb__json_str(j, "method"), *t = lb__json_str(j, "transform");
        int64_t g = 0, hb = 0;
        double bits = 0;
        lb__json_int(j, "group", &g);
        lb__json_int(j, "hadamard_block", &hb);
        lb__json_num(j, "bits_per_weight", &bits);
        char tr[32];
        snprintf(tr, sizeof tr, t && !strcmp(t, "hadamard") ? "H%lld" : "none", (long long)hb);
        lb__buf_printf(b, "  %-40s %-20s %-14s %6lld %-9s %8.3f\n", keys[i] + 14, f ? f : "?", m ? m : "?",
                       (long long)g, tr, bits);
        lb__json_free(j);
    }
    return true;
}
