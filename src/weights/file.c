/* file.c: weights in lowbit's safetensors files (docs/file-format.md).
 *
 * Reading: lb__weight_read takes one weight by its Hugging Face name from
 * the files a loader opened. An optional metadata entry "lowbit.tensor.P"
 * (P = the name without ".weight") says how it was stored: format, method,
 * group, transform, hadamard_block, col_scale, shape, and optionally act (the
 * activation format of its input, src/weights/act.c). Each representation of
 * the registry is asked in turn whether it stored the weight (block: a
 * P.weight_packed tensor; lossless: a U8 tensor of a packed file; dense: a
 * float tensor of the name); then the transforms the metadata lists are
 * read (P.hadamard_signs, or the signs of "hadamard_seed"; P.weight_col_scale;
 * P.weight_rotation). Every tensor and entry is
 * checked against the expected shape before use.
 *
 * Writing: lb__weight_save_plan lists a weight's tensors (its
 * representation's, then its transforms') and writes its metadata entry;
 * lb__weight_save_item writes one listed tensor. */
#include "weights/weights.h"
#include <errno.h>
#include <math.h>

enum { PART_SIGNS, PART_SCALE, PART_ROT, PART_ACT_SCALE };

/* "P.weight" -> "P", the prefix of a weight's stored tensors and metadata
 * entry (names not ending in ".weight" are kept whole). */
static void prefix_of(const char *name, char *pre, size_t cap)
{
    snprintf(pre, cap, "%s", name);
    size_t n = strlen(pre);
    if (n > 7 && !strcmp(pre + n - 7, ".weight")) pre[n - 7] = 0;
}

/* ---- sources */

const lb_st_tensor *lb__wsrc_find(const lb_wsrc *src, const char *name, int *file)
{
    for (int i = 0; i < src->n_files; i++) {
        const lb_st_tensor *t = lb__st_find(&src->files[i], name);
        if (t) { *file = i; return t; }
    }
    return NULL;
}

const lb_st_tensor *lb__wsrc_take(lb_wsrc *src, const char *name, int *file)
{
    const lb_st_tensor *t = lb__wsrc_find(src, name, file);
    if (t) src->used[*file][t - src->files[*file].tensors] = true;
    return t;
}

const void *lb__wsrc_view(lb_wsrc *src, const lb_st_tensor *t)
{
    if ((uintptr_t)t->data % lb_dtype_size(t->dtype) == 0) return t->data;
    return lb__wstore_copy(src->store, t->data, (size_t)(t->end - t->begin));
}

/* The metadata value `key` in any of the source's files, or NULL. */
static const char *src_meta(const lb_wsrc *src, const char *key)
{
    for (int i = 0; i < src->n_files; i++) {
        const char *v = lb__st_meta(&src->files[i], key);
        if (v) return v;
    }
    return NULL;
}

/* ---- the metadata entry */

/* A method name is a label (the producing quantizer); it must look like one. */
static bool method_name_ok(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n >= sizeof ((lb_wmeta *)0)->method) return false;
    for (size_t i = 0; i < n; i++)
        if (!((m[i] >= 'a' && m[i] <= 'z') || (m[i] >= '0' && m[i] <= '9') || strchr("+-_.", m[i]))) return false;
    return true;
}

static lb_status meta_fields(const lb_json *j, const char *what, lb_wmeta *t)
{
    const char *fmt = lb__json_str(j, "format"), *meth = lb__json_str(j, "method"), *tr = lb__json_str(j, "transform");
    const lb_json *shape = lb__json_get(j, "shape"), *cs = lb__json_get(j, "col_scale");
    if (!fmt || !meth || !tr || !cs || cs->type != LB_JSON_BOOL || !shape || shape->type != LB_JSON_ARR ||
        shape->len != 2 || !lb__json_int(j, "group", &t->group) || !lb__json_int(j, "hadamard_block", &t->hblock))
        return lb__err(LB_ERR_FORMAT, "%s: needs format, method, group, transform, hadamard_block, col_scale and shape",
                       what);
    if (strcmp(tr, "none") && strcmp(tr, "hadamard") && strcmp(tr, "rotation"))
        return lb__err(LB_ERR_FORMAT, "%s: unknown transform '%s'", what, tr);
    if (!method_name_ok(meth)) return lb__err(LB_ERR_FORMAT, "%s: invalid method name '%s'", what, meth);
    snprintf(t->method, sizeof t->method, "%s", meth);
    t->hadamard = !strcmp(tr, "hadamard");
    t->rotation = !strcmp(tr, "rotation");
    t->col_scale = cs->b;
    if (lb__json_get(j, "hadamard_seed")) {   /* signs from the seed (decimal string: 64 bits exactly) */
        const char *sd = lb__json_str(j, "hadamard_seed");
        char *end = NULL;
        errno = 0;
        unsigned long long v = sd && *sd >= '0' && *sd <= '9' && strlen(sd) <= 20 ? strtoull(sd, &end, 10) : 0;
        if (!sd || !end || *end || errno)
            return lb__err(LB_ERR_FORMAT, "%s: hadamard_seed is not a decimal string of a 64-bit integer", what);
        if (!t->hadamard) return lb__err(LB_ERR_FORMAT, "%s: hadamard_seed given but transform is not hadamard", what);
        t->seeded = true;
        t->seed = (uint64_t)v;
    }
    const lb_json *r = lb__json_at(shape, 0), *c = lb__json_at(shape, 1);
    if (r->type != LB_JSON_NUM || c->type != LB_JSON_NUM || !(r->num >= 0 && r->num < 0x1p62) ||
        !(c->num >= 0 && c->num < 0x1p62))
        return lb__err(LB_ERR_FORMAT, "%s: bad shape", what);
    t->rows = (int64_t)r->num;
    t->cols = (int64_t)c->num;
    t->fmt = lb_format_find(fmt);
    if (!t->fmt && strcmp(fmt, "F32") && strcmp(fmt, "F16") && strcmp(fmt, "BF16"))
        return lb__err(LB_ERR_FORMAT, "%s: unknown format '%s'", what, fmt);
    const char *act = lb__json_str(j, "act");
    if (lb__json_get(j, "act") && !act) return lb__err(LB_ERR_FORMAT, "%s: \"act\" is not a string", what);
    if (act && !strncmp(act, "stamp-", 6)) {   /* STaMP (stamp.c) */
        if (lb__stamp_parse(act, &t->stamp, &t->act)) return lb__err(LB_ERR_FORMAT, "%s: %s", what, lb_errmsg());
    } else if (act && strcmp(act, "none") && !(t->act = lb__act_find(act)))
        return lb__err(LB_ERR_FORMAT, "%s: unknown activation format '%s'", what, act);
    const lb_json *st = lb__json_get(j, "act_static");
    if (st && st->type != LB_JSON_BOOL) return lb__err(LB_ERR_FORMAT, "%s: \"act_static\" is not a boolean", what);
    t->act_static = st && st->b;
    if (t->act_static && (!lb__act_static_ok(t->act) || t->stamp.kind))
        return lb__err(LB_ERR_FORMAT, "%s: static activation scales need a symmetric INT block activation format, "
                       "not '%s'", what, act ? act : "none");
    if (t->act_static && (t->hadamard || t->rotation || t->col_scale))
        return lb__err(LB_ERR_FORMAT, "%s: static activation scales on an input with transforms (they are of the "
                       "untransformed input)", what);
    if (t->fmt && t->group != lb_format_block(t->fmt))
        return lb__err(LB_ERR_FORMAT, "%s: group %lld does not match format %s (block %lld)", what,
                       (long long)t->group, fmt, (long long)lb_format_block(t->fmt));
    return LB_OK;
}

/* Parse and check "lowbit.tensor.P" against the expected shape. */
static lb_status meta_parse(const lb_wsrc *src, const char *pre, const char *text, int64_t rows, int64_t cols,
                            lb_wmeta *t)
{
    char what[256];
    snprintf(what, sizeof what, "%s: lowbit.tensor.%s", src->what, pre);
    lb_json *j = NULL;
    lb_status s = lb__json_parse(text, strlen(text), what, &j);
    memset(t, 0, sizeof *t);
    if (!s) s = meta_fields(j, what, t);
    lb__json_free(j);
    if (s) return s;
    if (t->rows != rows || t->cols != cols)
        return lb__err(LB_ERR_FORMAT, "%s: shape [%lld, %lld] does not match the config's [%lld, %lld]", what,
                       (long long)t->rows, (long long)t->cols, (long long)rows, (long long)cols);
    if (lb__stamp_check(&t->stamp, t->act, cols, what)) return LB_ERR_FORMAT;
    if (t->hadamard && (t->hblock < 2 || cols % t->hblock || !lb_hadamard_supported(t->hblock)))
        return lb__err(LB_ERR_FORMAT, "%s: hadamard_block %lld is not a supported order dividing %lld", what,
                       (long long)t->hblock, (long long)cols);
    return LB_OK;
}

/* ---- transforms */

/* Tensor `name` (dtype dt, shape (cols)) when `want`; refused when present but not wanted. */
static lb_status xform_tensor(lb_wsrc *src, const char *name, lb_dtype dt, int64_t cols, bool want, const char *flag,
                              const lb_st_tensor **out)
{
    int fi;
    const lb_st_tensor *t = *out = lb__wsrc_take(src, name, &fi);
    if (!t) return want ? lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is missing", src->what, name) : LB_OK;
    if (!want) return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' present but the metadata says %s", src->what, name, flag);
    if (t->dtype != dt)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected %s", src->what, name,
                       lb_dtype_name(t->dtype), lb_dtype_name(dt));
    if (t->ndim != 1 || t->shape[0] != cols)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld]", src->what, name, (long long)cols);
    return LB_OK;
}

static lb_status read_signs(lb_wsrc *src, const char *pre, const lb_wmeta *m, lb_weight *w)
{
    char name[160];
    snprintf(name, sizeof name, "%s.hadamard_signs", pre);
    const lb_st_tensor *x;
    if (m->seeded) {   /* the signs are the seed's: no tensor */
        lb_status s = xform_tensor(src, name, LB_DTYPE_I8, w->cols, false, "hadamard_seed", &x);
        int8_t *g = s ? NULL : lb__wstore_alloc(src->store, (size_t)w->cols);
        if (!s && !g) s = LB_ERR_NOMEM;
        if (!s) s = lb_hadamard_signs(m->seed, w->cols, g);
        if (s) return s;
        return lb__weight_push(w, (lb_xform){.kind = LB_XFORM_HADAMARD, .block = m->hblock, .signs = g,
                                             .seeded = true, .seed = m->seed});
    }
    lb_status s = xform_tensor(src, name, LB_DTYPE_I8, w->cols, m->hadamard, "transform: none", &x);
    if (s || !x) return s;
    const int8_t *g = x->data;
    for (int64_t c = 0; c < w->cols; c++)
        if (g[c] != 1 && g[c] != -1)
            return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': entry %lld is %d, not +1 or -1", src->what, name,
                           (long long)c, g[c]);
    return lb__weight_push(w, (lb_xform){.kind = LB_XFORM_HADAMARD, .block = m->hblock, .signs = g});
}

static lb_status read_col_scale(lb_wsrc *src, const char *pre, const lb_wmeta *m, lb_weight *w)
{
    char name[160];
    snprintf(name, sizeof name, "%s.weight_col_scale", pre);
    const lb_st_tensor *x;
    lb_status s = xform_tensor(src, name, LB_DTYPE_F32, w->cols, m->col_scale, "col_scale: false", &x);
    if (s || !x) return s;
    const float *v = lb__wsrc_view(src, x);
    if (!v) return LB_ERR_NOMEM;
    for (int64_t c = 0; c < w->cols; c++)
        if (!(v[c] > 0 && v[c] < INFINITY))
            return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': entry %lld is not a positive finite number", src->what,
                           name, (long long)c);
    return lb__weight_push(w, (lb_xform){.kind = LB_XFORM_COL_SCALE, .scale = v});
}

/* P.weight_rotation: F32 (cols, cols), finite (orthogonality is the
 * producer's promise: checking it would cost cols^3 at every load). */
static lb_status read_rotation(lb_wsrc *src, const char *pre, const lb_wmeta *m, lb_weight *w)
{
    char name[160];
    snprintf(name, sizeof name, "%s.weight_rotation", pre);
    int fi;
    const lb_st_tensor *x = lb__wsrc_take(src, name, &fi);
    if (!x) return m->rotation ? lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is missing", src->what, name) : LB_OK;
    if (!m->rotation)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' present but the metadata says transform %s", src->what, name,
                       m->hadamard ? "hadamard" : "none");
    int64_t n = w->cols;
    if (x->dtype != LB_DTYPE_F32 || x->ndim != 2 || x->shape[0] != n || x->shape[1] != n)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': expected F32 [%lld, %lld]", src->what, name, (long long)n,
                       (long long)n);
    if (n > LB_XFORM_ROT_MAX)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': a rotation of %lld columns (at most %d)", src->what, name,
                       (long long)n, LB_XFORM_ROT_MAX);
    const float *v = lb__wsrc_view(src, x);
    if (!v) return LB_ERR_NOMEM;
    for (int64_t i = 0; i < n * n; i++)
        if (!isfinite(v[i]))
            return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': entry %lld is not finite", src->what, name, (long long)i);
    return lb__weight_push(w, (lb_xform){.kind = LB_XFORM_ROTATION, .rot = v});
}

/* P.act_scale: F32 (cols / block of the activation format), finite, >= 0
 * (a zero scale gives zero codes: a block that was zero in calibration). */
static lb_status read_act_scale(lb_wsrc *src, const char *pre, const lb_wmeta *m, lb_weight *w)
{
    char name[160];
    snprintf(name, sizeof name, "%s.act_scale", pre);
    int64_t nb = m->act_static ? w->cols / lb_format_block(m->act) : 0;
    if (m->act_static && w->cols % lb_format_block(m->act))
        return lb__err(LB_ERR_FORMAT, "%s: lowbit.tensor.%s: %lld inputs are not a multiple of the activation "
                       "format's block", src->what, pre, (long long)w->cols);
    const lb_st_tensor *x;
    lb_status s = xform_tensor(src, name, LB_DTYPE_F32, nb, m->act_static, "act_static: false", &x);
    if (s || !x) return s;
    const float *v = lb__wsrc_view(src, x);
    if (!v) return LB_ERR_NOMEM;
    for (int64_t b = 0; b < nb; b++)
        if (!(v[b] >= 0 && v[b] < INFINITY))
            return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': entry %lld is not a finite number >= 0", src->what, name,
                           (long long)b);
    w->act_sd = v;
    return LB_OK;
}

/* The method label, owned by the store (NULL for "none"). */
static lb_status set_method(lb_wsrc *src, const lb_wmeta *m, lb_weight *w)
{
    if (!strcmp(m->method, "none")) return LB_OK;
    char *p = lb__wstore_copy(src->store, m->method, strlen(m->method) + 1);
    w->method = p;
    return p ? LB_OK : LB_ERR_NOMEM;
}

/* ---- reading */

static lb_status read_rep(lb_wsrc *src, const char *name, const char *pre, bool vector, lb_weight *w)
{
    for (int i = 0; i < lb__wrep_count(); i++) {
        const lb_wrep *r = lb__wrep_at(i);
        lb_status s = r->read(src, name, pre, vector, w);
        if (s != LB_ERR_NOTFOUND) return s;
    }
    return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is missing", src->what, name);
}

lb_status lb__weight_read(lb_wsrc *src, const char *name, int64_t rows, int64_t cols, lb_weight *w)
{
    char pre[128], key[160];
    prefix_of(name, pre, sizeof pre);
    snprintf(key, sizeof key, "lowbit.tensor.%s", pre);
    bool vector = rows == 0;
    const char *text = src_meta(src, key);
    lb_wmeta m;
    lb_status s = text ? meta_parse(src, pre, text, vector ? 1 : rows, cols, &m) : LB_OK;
    if (s) return s;
    *w = (lb_weight){.rows = vector ? 1 : rows, .cols = cols};
    src->meta = text ? &m : NULL;
    s = read_rep(src, name, pre, vector, w);
    src->meta = NULL;
    if (s || !text) return s;
    if ((w->rep == &lb__wrep_block) != (m.fmt != NULL))
        return lb__err(LB_ERR_FORMAT, "%s: lowbit.tensor.%s: format does not match the tensors stored", src->what, pre);
    if (!(s = read_rotation(src, pre, &m, w)) && !(s = read_signs(src, pre, &m, w)) &&
        !(s = read_col_scale(src, pre, &m, w)) && !(s = read_act_scale(src, pre, &m, w)))
        s = set_method(src, &m, w);
    w->act = m.act;
    w->stamp = m.stamp;
    return s;
}

/* ---- writing */

lb_status lb__wplan_add(lb_wplan *p, const lb_weight *w, const char *base, const char *suffix, int part, lb_dtype dt,
                        int ndim, int64_t d0, int64_t d1)
{
    if (p->n == p->cap) {
        int64_t c = p->cap ? 2 * p->cap : 64;
        lb_wplan_item *v = LB_REALLOC(p->v, (size_t)c * sizeof *v);
        if (!v) return lb__err(LB_ERR_NOMEM, "out of memory");
        p->v = v;
        p->cap = c;
    }
    lb_wplan_item *it = &p->v[p->n++];
    *it = (lb_wplan_item){.w = w, .rep = w->rep, .part = part, .xf = -1, .dtype = dt, .ndim = ndim, .shape = {d0, d1}};
    snprintf(it->name, sizeof it->name, "%s%s", base, suffix);
    if (p->max_row < (size_t)w->cols) p->max_row = (size_t)w->cols;
    return LB_OK;
}

/* A transform's tensor: rep NULL, xf = its index in w->in. */
static lb_status plan_xform(lb_wplan *p, const lb_weight *w, const char *pre, const char *suffix, lb_xform_kind k,
                            lb_dtype dt)
{
    for (int i = 0; i < w->n_in; i++) {
        if (w->in[i].kind != k || w->in[i].seeded) continue;   /* seeded signs: the metadata's seed only */
        lb_status s = k == LB_XFORM_ROTATION ? lb__wplan_add(p, w, pre, suffix, PART_ROT, dt, 2, w->cols, w->cols)
                      : lb__wplan_add(p, w, pre, suffix, k == LB_XFORM_HADAMARD ? PART_SIGNS : PART_SCALE, dt, 1,
                                      w->cols, 0);
        if (s) return s;
        p->v[p->n - 1].rep = NULL;
        p->v[p->n - 1].xf = i;
    }
    return LB_OK;
}

/* "lowbit.tensor.P" for a weight that is not plain dense. */
static lb_status write_meta(lb_st_writer *wr, const char *pre, const lb_weight *w)
{
    const lb_xform *h = lb__weight_xform(w, LB_XFORM_HADAMARD), *rt = lb__weight_xform(w, LB_XFORM_ROTATION);
    if (h && rt) return lb__err(LB_ERR_UNSUPPORTED, "%s: a Hadamard and a dense rotation together cannot be stored", pre);
    const lb_format *f = w->rep == &lb__wrep_block ? w->u.block.fmt : NULL;
    char seed[48] = "";
    if (h && h->seeded) snprintf(seed, sizeof seed, ", \"hadamard_seed\": \"%llu\"", (unsigned long long)h->seed);
    lb_buf b = {0};
    lb__buf_printf(&b, "{\"format\": \"%s\", \"method\": \"%s\", \"group\": %lld, \"transform\": \"%s\", "
                   "\"hadamard_block\": %lld, \"col_scale\": %s, \"shape\": [%lld, %lld], \"dtype\": \"F32\", "
                   "\"bits_per_weight\": %.6g%s%s%s%s%s}",
                   w->rep->describe(w), w->method ? w->method : "none", (long long)(f ? lb_format_block(f) : 0),
                   h ? "hadamard" : rt ? "rotation" : "none", (long long)(h ? h->block : 0),
                   lb__weight_xform(w, LB_XFORM_COL_SCALE) ? "true" : "false", (long long)w->rows, (long long)w->cols,
                   8.0 * (double)lb__weight_bytes(w) / (double)(w->rows * w->cols), w->act ? ", \"act\": \"" : "",
                   w->act ? (w->stamp.kind ? w->stamp.name : lb_format_name(w->act)) : "", w->act ? "\"" : "",
                   w->act_sd ? ", \"act_static\": true" : "", seed);
    char key[160];
    snprintf(key, sizeof key, "lowbit.tensor.%s", pre);
    lb_status s = b.failed ? LB_ERR_NOMEM : lb__st_writer_meta(wr, key, b.data);
    lb__buf_free(&b);
    return s;
}

lb_status lb__weight_save_plan(lb_st_writer *wr, lb_wplan *p, const lb_weight *w, const char *name, bool vector)
{
    char pre[128];
    prefix_of(name, pre, sizeof pre);
    lb_status s = w->rep->plan(w, name, pre, vector, p);
    if (!s) s = plan_xform(p, w, pre, ".weight_col_scale", LB_XFORM_COL_SCALE, LB_DTYPE_F32);
    if (!s) s = plan_xform(p, w, pre, ".hadamard_signs", LB_XFORM_HADAMARD, LB_DTYPE_I8);
    if (!s) s = plan_xform(p, w, pre, ".weight_rotation", LB_XFORM_ROTATION, LB_DTYPE_F32);
    if (!s && w->act_sd)
        s = lb__wplan_add(p, w, pre, ".act_scale", PART_ACT_SCALE, LB_DTYPE_F32, 1, w->cols / lb_format_block(w->act), 0);
    if (!s && w->act_sd) p->v[p->n - 1].rep = NULL;
    if (!s && (w->rep != &lb__wrep_dense || w->n_in || w->act)) s = write_meta(wr, pre, w);
    return s;
}

lb_status lb__weight_save_item(lb_st_writer *wr, const lb_wplan_item *it, uint8_t *tmp)
{
    const lb_weight *w = it->w;
    if (it->rep) return it->rep->write(w, it->part, wr, tmp);
    if (it->part == PART_ACT_SCALE)
        return lb__st_writer_write(wr, w->act_sd, (size_t)(w->cols / lb_format_block(w->act)) * sizeof(float));
    const lb_xform *t = &w->in[it->xf];
    if (it->part == PART_SCALE) return lb__st_writer_write(wr, t->scale, (size_t)w->cols * sizeof(float));
    if (it->part == PART_ROT) return lb__st_writer_write(wr, t->rot, (size_t)(w->cols * w->cols) * sizeof(float));
    for (int64_t c = 0; c < w->cols; c++) tmp[c] = t->signs ? (uint8_t)t->signs[c] : 1;
    return lb__st_writer_write(wr, tmp, (size_t)w->cols);
}

/* ---- inspect */

void lb__weight_describe_meta(lb_buf *b, const char **keys, const char **vals, int64_t n)
{
    lb__buf_printf(b, "  quantized weights:\n  %-40s %-20s %-14s %6s %-9s %8s  %s\n", "weight", "format", "method", "group",
                   "transform", "bits/w", "act");
    for (int64_t i = 0; i < n; i++) {
        if (strncmp(keys[i], "lowbit.tensor.", 14)) continue;
        lb_json *j = NULL;
        if (lb__json_parse(vals[i], strlen(vals[i]), keys[i], &j)) { lb__clear_err(); continue; }
        const char *f = lb__json_str(j, "format"), *m = lb__json_str(j, "method"), *t = lb__json_str(j, "transform");
        const char *act = lb__json_str(j, "act");
        const lb_json *ast = lb__json_get(j, "act_static");
        int64_t g = 0, hb = 0;
        double bits = 0;
        lb__json_int(j, "group", &g);
        lb__json_int(j, "hadamard_block", &hb);
        lb__json_num(j, "bits_per_weight", &bits);
        char tr[32];
        snprintf(tr, sizeof tr, t && !strcmp(t, "hadamard") ? "H%lld" : t && !strcmp(t, "rotation") ? "R" : "none",
                 (long long)hb);
        lb__buf_printf(b, "  %-40s %-20s %-14s %6lld %-9s %8.3f  %s%s\n", keys[i] + 14, f ? f : "?", m ? m : "?",
                       (long long)g, tr, bits, act ? act : "-",
                       ast && ast->type == LB_JSON_BOOL && ast->b ? ":static" : "");
        lb__json_free(j);
    }
}
