/* model_quant.c: quantizing a whole model. Every linear weight (q, k, v, o,
 * gate, up, down) goes through one method into one format; everything else
 * (embeddings, lm_head, norms, biases) is copied at its precision. A linear
 * is also kept when a --keep glob matches its Hugging Face name; a linear
 * whose cols the format's block does not divide is quantized padded to the
 * next multiple of the block ("quantized (padded to N)", weights/block.c),
 * which costs fewer bits than any dense fallback for every block format in
 * the registry (docs/quant.md); the report says which and why. The linears
 * of a layer are quantized in parallel (one tensor per task), each
 * independently, so the result does not depend on the thread count. The new model owns every buffer. */
#include "quant/quant.h"
#include "formats/formats.h"
#include <fnmatch.h>
#include <math.h>

/* ------------------------------------------------------------ ownership */

/* ------------------------------------------------------- dequantization */

lb_status lb_model_weight_f32(const lb_model *m, const char *name, float *w, int64_t *rows, int64_t *cols)
{
    if (rows) *rows = 0;
    if (cols) *cols = 0;
    LB_ARG(m, "lb_model_weight_f32: m is NULL");
    LB_ARG(name, "lb_model_weight_f32: name is NULL");
    int64_t n = lb__model_names((lb_model *)m, NULL, 0);
    lb__wname *names = lb__alloc((size_t)n * sizeof *names);
    if (!names) return LB_ERR_NOMEM;
    lb__model_names((lb_model *)m, names, n);
    lb_status s = lb__err(LB_ERR_NOTFOUND, "%s: no weight named '%s'", m->path ? m->path : "model", name);
    for (int64_t i = 0; i < n; i++) {
        if (strcmp(names[i].name, name) || !names[i].w->rep) continue;
        const lb_weight *x = names[i].w;
        if (rows) *rows = x->rows;
        if (cols) *cols = x->cols;
        s = w ? lb__weight_f32(x, w) : LB_OK;
        break;
    }
    LB_FREE(names);
    return s;
}

/* ---------------------------------------------------------- quantizing */

typedef struct qjob {
    const lb_weight *src;
    lb_weight *dst;
    lb_quant_tensor_info *info;
    lb_status status;
    char err[256];
    lb_qmatrix q;
} qjob;

typedef struct qctx {
    const lb_quantizer *method;
    const lb_format *fmt;
    const lb_quantize_opts *opts;
    qjob *jobs;
} qctx;

static double rel_error(const float *w, const float *y, int64_t n)
{
    double se = 0, sw = 0;
    for (int64_t i = 0; i < n; i++) { double e = (double)w[i] - y[i]; se += e * e; sw += (double)w[i] * w[i]; }
    return sw > 0 ? sqrt(se / sw) : (se > 0 ? INFINITY : 0);
}

/* Format "f32": the rotation alone, W R^T kept dense in F32 (q->packed
 * holds the floats, q->fmt is NULL). */
static lb_status rotate_only(const qctx *c, const float *w, int64_t rows, int64_t cols, lb_qmatrix *q)
{
    memset(q, 0, sizeof *q);
    *q = (lb_qmatrix){.method = c->method, .rows = rows, .cols = cols, .tensor_scale = 1.0f};
    float *r = lb__alloc((size_t)(rows * cols) * sizeof *r);
    if (!r) return LB_ERR_NOMEM;
    memcpy(r, w, (size_t)(rows * cols) * sizeof *r);
    lb_status s = lb__quant_rotate(c->opts, r, rows, cols, q);
    if (s) { LB_FREE(r); return s; }
    q->packed = (uint8_t *)r;
    return LB_OK;
}

static void quant_task(void *vctx, int64_t b, int64_t e, int thread)
{
    qctx *c = vctx;
    for (int64_t i = b; i < e; i++) {
        qjob *j = &c->jobs[i];
        int64_t n = j->src->rows * j->src->cols;
        float *w = lb__alloc((size_t)n * sizeof *w), *y = lb__alloc((size_t)n * sizeof *y);
        lb_status s = w && y ? lb__weight_f32(j->src, w) : LB_ERR_NOMEM;
        if (!s && !c->fmt) s = rotate_only(c, w, j->src->rows, j->src->cols, &j->q);
        else if (!s) s = lb_quantize_matrix(c->method, c->fmt, c->opts, w, j->src->rows, j->src->cols, &j->q);
        if (!s) { lb_weight v = lb__qmatrix_weight(&j->q); s = lb__weight_f32(&v, y); }
        if (!s) j->info->rel_err = rel_error(w, y, n);
        j->status = s;
        if (s) snprintf(j->err, sizeof j->err, "%s: %s", j->info->name, lb_errmsg());
        LB_FREE(w);
        LB_FREE(y);
    }
}

/* Move a finished job's buffers into the new model. */
static lb_status install(lb_model *m, qjob *j)
{
    lb_qmatrix *q = &j->q;
    *j->dst = lb__qmatrix_weight(q);
    void *bufs[3] = {q->packed, q->col_scale, q->hadamard_signs};
    memset(q, 0, sizeof *q);
    lb_status s = LB_OK;
    for (int k = 0; k < 3; k++)
        if (bufs[k]) { lb_status t = lb__wstore_keep(&m->store, bufs[k], NULL); s = s ? s : t; }
    return s;
}

static bool keep_match(const lb_model_quant_opts *o, const char *name)
{
    for (int i = 0; i < o->n_keep; i++)
        if (o->keep[i] && fnmatch(o->keep[i], name, 0) == 0) return true;
    return false;
}

static void set_info(lb_quant_tensor_info *t, const char *name, const lb_weight *w, const char *status)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = w->rows; t->cols = w->cols;
    snprintf(t->status, sizeof t->status, "%s", status);
    snprintf(t->format, sizeof t->format, "%s", w->rep->describe(w));
}

static void finish_info(lb_quant_tensor_info *t, const lb_weight *w, const lb_qmatrix *q)
{
    t->bytes = lb__weight_bytes(w);
    t->bits_per_weight = 8.0 * (double)t->bytes / (double)(w->rows * w->cols);
    snprintf(t->format, sizeof t->format, "%s", w->rep->describe(w));
    if (w->method) snprintf(t->method, sizeof t->method, "%s", w->method);
    if (q) { t->imbalance_before = q->imbalance_before; t->imbalance_after = q->imbalance_after; }
}

typedef struct qrun {
    const lb_model *src;
    lb_model *dst;
    const lb_model_quant_opts *o;
    qctx ctx;
    lb__wname *sn, *dn;
    int64_t n;
    lb_quant_tensor_info *info;
    lb_pool *pool;
} qrun;

/* Entries [i0, i1) of one layer (or the top-level tensors): copy what is
 * kept, quantize the linears in parallel, install them. */
static lb_status run_range(qrun *r, int64_t i0, int64_t i1)
{
    int64_t nj = 0;
    qjob *jobs = r->ctx.jobs;
    int64_t B = r->ctx.fmt ? lb_format_block(r->ctx.fmt) : 2;
    for (int64_t i = i0; i < i1; i++) {
        const lb_weight *w = r->sn[i].w;
        lb_status s;
        if (w->rep == &lb__wrep_lossless)
            return lb__err(LB_ERR_UNSUPPORTED, "%s: '%s' is losslessly packed; unpack the model first (lowbit unpack)",
                           r->src->path ? r->src->path : "model", r->sn[i].name);
        if (!w->rep) return lb__err(LB_ERR_FORMAT, "model: weight '%s' is missing", r->sn[i].name);
        if ((w->rep != &lb__wrep_dense || w->n_in) && (r->sn[i].linear || r->o->quantize_embeddings))
            return lb__err(LB_ERR_UNSUPPORTED, "%s: '%s' is already quantized or rotated; quantize the original "
                           "model", r->src->path ? r->src->path : "model", r->sn[i].name);
        bool emb = r->o->quantize_embeddings && (!strcmp(r->sn[i].name, "model.embed_tokens.weight") ||
                                                 !strcmp(r->sn[i].name, "lm_head.weight"));
        bool lin = r->sn[i].linear || emb;
        const char *why = !lin ? "kept (not linear)" : keep_match(r->o, r->sn[i].name) ? "kept (--keep)"
                         : !r->ctx.fmt && w->cols % B ? "kept (shape)" : NULL;
        set_info(&r->info[i], r->sn[i].name, w, why ? why : "quantized");
        if (!why && r->ctx.fmt && lb__pad_cols(r->ctx.fmt, w->cols) != w->cols)
            snprintf(r->info[i].status, sizeof r->info[i].status, "quantized (padded to %lld)",
                     (long long)lb__pad_cols(r->ctx.fmt, w->cols));
        if (why) {
            if ((s = lb__weight_copy(&r->dst->store, w, r->dn[i].w))) return s;
            finish_info(&r->info[i], r->dn[i].w, NULL);
            continue;
        }
        jobs[nj++] = (qjob){.src = w, .dst = r->dn[i].w, .info = &r->info[i]};
    }
    lb_pool_for(r->pool, nj, 1, quant_task, &r->ctx);
    lb_status s = LB_OK;
    for (int64_t k = 0; k < nj; k++) {
        if (!s && jobs[k].status) s = lb__err(jobs[k].status, "%s", jobs[k].err);
        if (!s) {
            lb_qmatrix q = jobs[k].q;
            s = install(r->dst, &jobs[k]);
            finish_info(jobs[k].info, jobs[k].dst, &q);
        }
        lb_qmatrix_free(&jobs[k].q);
    }
    return s;
}

static void summarize(lb_quant_report *rep, lb_quant_tensor_info *info, int64_t n)
{
    double lb = 0, le = 0, tb = 0, te = 0;
    rep->tensors = info; rep->n_tensors = n;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)(info[i].rows * info[i].cols);
        bool lin = strcmp(info[i].status, "kept (not linear)") != 0;
        tb += (double)info[i].bytes; te += e;
        if (lin) { lb += (double)info[i].bytes; le += e; }
        if (!strncmp(info[i].status, "quantized", 9)) rep->n_quantized++;
        else if (lin) rep->n_kept_linear++;
        rep->total_bytes += info[i].bytes;
    }
    rep->linear_bits_per_weight = le > 0 ? 8.0 * lb / le : 0;
    rep->total_bits_per_weight = te > 0 ? 8.0 * tb / te : 0;
}

static lb_status resolve(const lb_model_quant_opts *o, const lb_quantizer **q, const lb_format **f)
{
    const char *mname = o->method && *o->method ? o->method : "rtn";
    *q = lb_quantizer_find(mname);
    if (!*q) {
        lb_buf b = {0};
        for (int i = 0; i < lb_quantizer_count(); i++)
            lb__buf_printf(&b, "%s%s", i ? ", " : "", lb_quantizer_name(lb_quantizer_at(i)));
        lb_status s = lb__err(LB_ERR_NOTFOUND, "unknown method '%s' (known: %s)", mname, b.data ? b.data : "");
        lb__buf_free(&b);
        return s;
    }
    if ((unsigned)o->q.scale_rule > LB_SCALE_FULL)
        return lb__err(LB_ERR_ARG, "unknown scale rule %d", (int)o->q.scale_rule);
    if (o->format && !strcmp(o->format, "f32")) {   /* rotation only */
        *f = NULL;
        if (strcmp(lb_quantizer_name(*q), "hadamard+rtn"))
            return lb__err(LB_ERR_ARG, "format f32 (no quantization) goes only with method hadamard+rtn, "
                           "the rotation alone");
        return LB_OK;
    }
    lb_status s = lb_quant_format_resolve(o->format, o->group, f);
    if (!s && o->q.scale_rule == LB_SCALE_FULL && !lb__format_full_ok(*f))
        s = lb__err(LB_ERR_ARG, "%s: scale rule full applies to symmetric INT formats", lb_format_name(*f));
    return s;
}

static lb_status quantize_all(qrun *r)
{
    lb_status s = LB_OK;
    int64_t i = 0, layers = r->src->cfg.n_layers, done = 0;
    while (!s && i < r->n) {
        const char *nm = r->sn[i].name;
        int64_t j = i + 1;
        if (!strncmp(nm, "model.layers.", 13)) {
            size_t pre = (size_t)(strchr(nm + 13, '.') - nm) + 1;
            while (j < r->n && !strncmp(r->sn[j].name, nm, pre)) j++;
            s = run_range(r, i, j);
            if (r->o->progress) r->o->progress(++done, layers, "layers", r->o->progress_user);
        } else
            s = run_range(r, i, j);
        i = j;
    }
    return s;
}

lb_status lb_model_quantize(const lb_model *src, const lb_model_quant_opts *o, lb_model **out, lb_quant_report *rep)
{
    if (rep) memset(rep, 0, sizeof *rep);
    LB_ARG(out, "lb_model_quantize: out is NULL");
    *out = NULL;
    LB_ARG(src, "lb_model_quantize: src is NULL");
    LB_ARG(o, "lb_model_quantize: opts is NULL");
    double t0 = lb_time_now();
    qrun r = {.src = src, .o = o};
    lb_status s = resolve(o, &r.ctx.method, &r.ctx.fmt);
    if (s) return s;
    r.ctx.opts = &o->q;
    if (!(r.dst = lb__model_new())) return LB_ERR_NOMEM;
    r.dst->cfg = src->cfg;
    s = lb__model_alloc_layers(r.dst);
    if (!s) s = lb__model_set_names(r.dst, src->path ? src->path : "", src->source_format ? src->source_format : "");
    r.n = lb__model_names((lb_model *)src, NULL, 0);
    r.sn = lb__zalloc((size_t)r.n * sizeof *r.sn);
    r.dn = lb__zalloc((size_t)r.n * sizeof *r.dn);
    r.info = lb__zalloc((size_t)r.n * sizeof *r.info);
    r.ctx.jobs = lb__zalloc((size_t)r.n * sizeof *r.ctx.jobs);
    if (!s && (!r.sn || !r.dn || !r.info || !r.ctx.jobs)) s = LB_ERR_NOMEM;
    if (!s) s = lb_pool_create(o->n_threads, &r.pool);
    if (!s) {
        lb__model_names((lb_model *)src, r.sn, r.n);
        lb__model_names(r.dst, r.dn, r.n);
        s = quantize_all(&r);
    }
    if (!s && r.dst->cfg.tied_embeddings) r.dst->lm_head = r.dst->tok_embed;
    lb_pool_free(r.pool);
    LB_FREE(r.sn); LB_FREE(r.dn); LB_FREE(r.ctx.jobs);
    if (s) { LB_FREE(r.info); lb_model_free(r.dst); return s; }
    if (rep) { summarize(rep, r.info, r.n); rep->seconds = lb_time_now() - t0; }
    else LB_FREE(r.info);
    *out = r.dst;
    return LB_OK;
}

void lb_quant_report_free(lb_quant_report *r)
{
    if (!r) return;
    LB_FREE(r->tensors);
    memset(r, 0, sizeof *r);
}
