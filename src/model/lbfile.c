/* lbfile.c: reading lowbit model files (written by lb_model_save in
 * save.c; layout in docs/file-format.md) into an lb_model: the config from
 * the "lowbit.config" metadata, then every weight of the model's layout by
 * its Hugging Face name through the weights module, which knows how each
 * was stored (dense views into the mapping; a packed weight gets one
 * model-owned buffer of rows * row_bytes, so resident memory reflects the
 * bits). Every tensor and metadata entry is checked against the config
 * before use; any mismatch is an LB_ERR_FORMAT naming the file and the
 * tensor, and a tensor the layout does not use is refused. */
#include "model/loader.h"
#include <math.h>

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

/* ---------------------------------------------------------------- weights */

static lb_status check_all_used(const lb_st_file *f, const bool *used)
{
    for (int64_t i = 0; i < f->n_tensors; i++)
        if (!used[i])
            return lb__err(LB_ERR_FORMAT, "%s: unexpected tensor '%s' (not part of this model's layout)", f->what,
                           f->tensors[i].name);
    return LB_OK;
}

/* Every weight of the layout the config implies, then nothing else. */
static lb_status take_weights(const lb_st_file *f, const char *path, lb_model *m)
{
    bool *used = lb__zalloc((size_t)f->n_tensors + 1);
    int64_t n = lb__model_names(m, NULL, 0);
    lb__wname *names = lb__alloc((size_t)n * sizeof *names);
    lb_status s = used && names ? LB_OK : LB_ERR_NOMEM;
    lb_wsrc src = {.files = f, .n_files = 1, .used = &used, .store = &m->store, .what = path};
    if (!s) lb__model_names(m, names, n);
    for (int64_t i = 0; !s && i < n; i++) {
        int64_t rows, cols;
        lb__model_name_shape(&m->cfg, names[i].name, &rows, &cols);
        s = lb__weight_read(&src, names[i].name, names[i].vector ? 0 : rows, cols, names[i].w);
    }
    if (!s) s = check_all_used(f, used);
    LB_FREE(names);
    LB_FREE(used);
    return s;
}

lb_status lb__lbfile_load(const lb_st_file *f, const char *path, lb_model *m)
{
    const char *cfg = lb__st_meta(f, "lowbit.config"), *ver = lb__st_meta(f, "lowbit.version");
    lb_status s = LB_OK;
    if (!ver || strcmp(ver, "1"))
        s = lb__err(LB_ERR_FORMAT, "%s: lowbit.version '%s' is not supported (1 expected)", path, ver ? ver : "");
    else if (!cfg) s = lb__err(LB_ERR_FORMAT, "%s: no lowbit.config in the metadata", path);
    if (!s) s = parse_config(cfg, path, &m->cfg);
    if (!s) s = lb__model_alloc_layers(m);
    if (!s) s = take_weights(f, path, m);
    if (!s && m->cfg.tied_embeddings) m->lm_head = m->tok_embed;
    if (!s) lb__model_share_act_scales(m);
    if (!s) s = lb__model_set_names(m, path, "lowbit");
    return s;
}
