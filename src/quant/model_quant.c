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
#include "calib/calib.h"
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
    const lb_format *fmt;        /* this matrix's format (the budget's choice, else the run's) */
    lb_status status;
    char err[256];
    lb_qmatrix q;
    lb_quantize_opts opts;       /* the run's options with this matrix's calib */
    lb_calib_stats stats;
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

/* Format "f32": the rotation alone (Hadamard, or dartquant's learned one
 * from o->calib), W R^T kept dense in F32 (q->packed holds the floats,
 * q->fmt is NULL). */
static lb_status rotate_only(const qctx *c, const lb_quantize_opts *o, const float *w, int64_t rows, int64_t cols,
                             lb_qmatrix *q)
{
    memset(q, 0, sizeof *q);
    *q = (lb_qmatrix){.method = c->method, .rows = rows, .cols = cols, .tensor_scale = 1.0f};
    float *r = lb__alloc((size_t)(rows * cols) * sizeof *r);
    if (!r) return LB_ERR_NOMEM;
    memcpy(r, w, (size_t)(rows * cols) * sizeof *r);
    lb_status s = c->method->learned_rotation ? lb__dart_rotate(o, r, rows, cols, q) : lb__quant_rotate(o, r, rows, cols, q);
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
        if (!s && !j->fmt) s = rotate_only(c, &j->opts, w, j->src->rows, j->src->cols, &j->q);
        else if (!s) s = lb_quantize_matrix(c->method, j->fmt, &j->opts, w, j->src->rows, j->src->cols, &j->q);
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
    void *bufs[4] = {q->packed, q->col_scale, q->hadamard_signs, q->rotation};
    memset(q, 0, sizeof *q);
    lb_status s = LB_OK;
    for (int k = 0; k < 4; k++)
        if (bufs[k]) { lb_status t = lb__wstore_keep(&m->store, bufs[k], NULL); s = s ? s : t; }
    return s;
}

bool lb__keep_match(const char *const *globs, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (globs[i] && fnmatch(globs[i], name, 0) == 0) return true;
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
    lb__calib_run *cr;           /* calibration on the fly, or NULL */
    lb__calib_site cur[LB_SITE_COUNT];  /* its statistics of the current layer */
    int64_t cur_layer;           /* layer of cur, -1 = none */
    lb_model hybrid;             /* sequential: the source with layers < l taken from dst */
    const lb_format **choice;    /* bits budget: each entry's format (NULL: the run's) */
} qrun;

/* Calibration (docs/calib.md): each linear gets the statistics of its input
 * site (q/k/v <- qkv, o <- o, gate/up <- gateup, down <- down) through its
 * lb_quantize_opts.calib, either from a loaded lb_calib or collected on the
 * fly, one layer at a time, by the calib runner just before the layer is
 * quantized. In sequential mode the runner's second residual stream goes
 * through the layers already quantized (a shallow copy of the source model
 * whose layers < l are replaced by the new model's), so layer l's Hq / Hqx
 * see the quantized model's inputs. All 7 linears of layer l use the
 * statistics of layer l's inputs with layer l itself still in float (no
 * re-collection between q/k/v, o, gate/up and down inside a layer). */

/* The statistics a linear gets (stats zeroed and false when none). */
static bool stats_of(const qrun *r, const char *name, lb_calib_stats *st)
{
    int64_t l;
    lb_site k;
    memset(st, 0, sizeof *st);
    if (!lb__calib_name_site(name, &l, &k)) return false;
    if (r->o->calib) return lb_calib_stats_for(r->o->calib, name, st) == LB_OK;
    if (!r->cr || l != r->cur_layer) return false;
    lb__calib_site_view(&r->cur[k], lb__calib_run_tokens(r->cr), st);
    return true;
}

/* 1: q/k/v (one input), 2: gate/up (one input), 0: other. */
static int input_group(const char *name)
{
    if (strstr(name, ".q_proj.") || strstr(name, ".k_proj.") || strstr(name, ".v_proj.")) return 1;
    if (strstr(name, ".gate_proj.") || strstr(name, ".up_proj.")) return 2;
    return 0;
}

/* NV formats: the matrices that share an input (q/k/v, gate/up) share one
 * per-tensor scale, from the largest amax of the group after the method's
 * rotation (lb_quantize_amax), as FP-Quant's fused global scale; the gptq
 * family reads it from opts.shared_amax, the other methods keep their own. */
static lb_status share_amax(qrun *r, qjob *jobs, int64_t nj)
{
    bool any = false;
    for (int64_t k = 0; k < nj; k++) any = any || (jobs[k].fmt && lb_format_uses_tensor_scale(jobs[k].fmt));
    if (!any) return LB_OK;
    float gmax[3] = {0, 0, 0}, *a = lb__zalloc((size_t)nj * sizeof *a);
    if (!a) return LB_ERR_NOMEM;
    lb_status s = LB_OK;
    for (int64_t k = 0; !s && k < nj; k++) {
        if (!jobs[k].fmt || !lb_format_uses_tensor_scale(jobs[k].fmt)) continue;   /* mixed precision */
        const lb_weight *w = jobs[k].src;
        float *f = lb__alloc((size_t)(w->rows * w->cols) * sizeof *f);
        s = f ? lb__weight_f32(w, f) : LB_ERR_NOMEM;
        if (!s) s = lb_quantize_amax(r->ctx.method, jobs[k].fmt, &jobs[k].opts, f, w->rows, w->cols, &a[k]);
        LB_FREE(f);
        int g = input_group(jobs[k].info->name);
        if (!s && a[k] > gmax[g]) gmax[g] = a[k];
    }
    for (int64_t k = 0; !s && k < nj; k++) {
        int g = input_group(jobs[k].info->name);
        if (g && jobs[k].fmt && lb_format_uses_tensor_scale(jobs[k].fmt)) jobs[k].opts.shared_amax = gmax[g];
    }
    LB_FREE(a);
    return s;
}

/* Entries [i0, i1) of one layer (or the top-level tensors): copy what is
 * kept, quantize the linears in parallel, install them. */
static lb_status run_range(qrun *r, int64_t i0, int64_t i1)
{
    int64_t nj = 0;
    qjob *jobs = r->ctx.jobs;
    for (int64_t i = i0; i < i1; i++) {
        const lb_weight *w = r->sn[i].w;
        const lb_format *fmt = r->choice && r->choice[i] ? r->choice[i] : r->ctx.fmt;
        int64_t B = fmt ? lb_format_block(fmt) : 2;
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
        const char *why = !lin ? "kept (not linear)" : lb__keep_match(r->o->keep, r->o->n_keep, r->sn[i].name) ? "kept (--keep)"
                         : !fmt && w->cols % B ? "kept (shape)" : NULL;
        set_info(&r->info[i], r->sn[i].name, w, why ? why : "quantized");
        if (!why && fmt && lb__pad_cols(fmt, w->cols) != w->cols)
            snprintf(r->info[i].status, sizeof r->info[i].status, "quantized (padded to %lld)",
                     (long long)lb__pad_cols(fmt, w->cols));
        if (why) {
            if ((s = lb__weight_copy(&r->dst->store, w, r->dn[i].w))) return s;
            finish_info(&r->info[i], r->dn[i].w, NULL);
            continue;
        }
        qjob *j = &jobs[nj++];
        *j = (qjob){.src = w, .dst = r->dn[i].w, .info = &r->info[i], .fmt = fmt, .opts = *r->ctx.opts};
        j->opts.calib = stats_of(r, r->sn[i].name, &j->stats) ? &j->stats : NULL;
    }
    lb_status s = share_amax(r, jobs, nj);
    if (s) return s;
    lb_pool_for(r->pool, nj, 1, quant_task, &r->ctx);
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
        if (strcmp(lb_quantizer_name(*q), "hadamard+rtn") && !(*q)->learned_rotation)
            return lb__err(LB_ERR_ARG, "format f32 (no quantization) goes only with method hadamard+rtn or "
                           "dartquant, the rotation alone");
        return LB_OK;
    }
    lb_status s = lb_quant_format_resolve(o->format, o->group, f);
    if (!s && o->q.scale_rule == LB_SCALE_FULL && !lb__format_full_ok(*f))
        s = lb__err(LB_ERR_ARG, "%s: scale rule full applies to symmetric INT formats", lb_format_name(*f));
    return s;
}

/* Layer l's statistics from the runner (before its linears are quantized). */
static lb_status calib_layer(qrun *r, int64_t l)
{
    if (!r->cr) return LB_OK;
    lb_status s = lb__calib_run_layer(r->cr, l, r->o->sequential ? &r->hybrid : NULL, r->cur);
    r->cur_layer = s ? -1 : l;
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
            int64_t l = strtoll(nm + 13, NULL, 10);
            while (j < r->n && !strncmp(r->sn[j].name, nm, pre)) j++;
            s = calib_layer(r, l);
            if (!s) s = run_range(r, i, j);
            if (!s && r->o->sequential) r->hybrid.layers[l] = r->dst->layers[l];
            if (r->o->progress) r->o->progress(++done, layers, "layers", r->o->progress_user);
        } else
            s = run_range(r, i, j);
        i = j;
    }
    return s;
}

/* What the method needs against what the options give; one message, before any work. */
static lb_status check_calib(const lb_model *src, const lb_model_quant_opts *o, const lb_quantizer *q)
{
    const char *name = lb_quantizer_name(q);
    if (o->calib && o->calib_tokens)
        return lb__err(LB_ERR_ARG, "calibration: give statistics (--calib) or a text (--calib-text), not both");
    if (o->sequential && !o->calib_tokens)
        return lb__err(LB_ERR_ARG, "calibration: sequential mode collects statistics on the fly; it needs "
                       "calibration tokens (--calib-text), not a statistics file");
    if ((q->calib || q->sequential) && !o->calib && !o->calib_tokens)
        return lb__err(LB_ERR_ARG, "method '%s' needs calibration statistics: give --calib STATS (from lowbit "
                       "calib) or --calib-text FILE", name);
    if (q->sequential && !o->sequential)
        return lb__err(LB_ERR_ARG, "method '%s' needs sequential calibration: give --calib-text FILE --sequential",
                       name);
    if ((q->calib || q->sequential) && o->quantize_embeddings)
        return lb__err(LB_ERR_ARG, "method '%s' needs calibration statistics, which the embedding has none of; "
                       "leave out --quantize-embeddings", name);
    if (o->calib_tokens && o->n_calib_tokens <= 0) return lb__err(LB_ERR_ARG, "calibration: no tokens");
    if (o->calib) {
        lb_calib_info ci;
        lb_calib_get_info(o->calib, &ci);
        const lb_config *c = &src->cfg;
        const lb_calib *k = o->calib;
        if (k->n_layers != c->n_layers || k->dim != c->dim || k->q_dim != c->n_heads * c->head_dim ||
            k->hidden != c->hidden_dim)
            return lb__err(LB_ERR_ARG, "calibration statistics of %s (%lld layers, dim %lld, hidden %lld) do not fit "
                           "this model (%lld layers, dim %lld, hidden %lld)", *ci.model ? ci.model : "another model",
                           (long long)k->n_layers, (long long)k->dim, (long long)k->hidden, (long long)c->n_layers,
                           (long long)c->dim, (long long)c->hidden_dim);
    }
    return LB_OK;
}

/* Start calibration on the fly (and the sequential model copy). */
static lb_status calib_start(qrun *r)
{
    const lb_model_quant_opts *o = r->o;
    r->cur_layer = -1;
    if (!o->calib_tokens) return LB_OK;
    if (o->sequential) {
        r->hybrid = *r->src;
        r->hybrid.layers = lb__alloc(sizeof *r->hybrid.layers * (size_t)r->src->cfg.n_layers);
        if (!r->hybrid.layers) return LB_ERR_NOMEM;
        memcpy(r->hybrid.layers, r->src->layers, sizeof *r->hybrid.layers * (size_t)r->src->cfg.n_layers);
    }
    lb_calib_opts co = {.ctx = o->calib_ctx, .n_threads = o->n_threads};
    return lb__calib_run_create(r->src, o->calib_tokens, o->n_calib_tokens, &co, o->sequential != 0, &r->cr);
}

/* Mixed precision (budget.c): the candidates (the run's format first, then
 * budget_formats), the statistics of every layer (loaded, or collected here
 * from the calibration tokens on the float path: a non-sequential run then
 * uses them too instead of collecting again), the choice per linear. */
static lb_status budget_start(qrun *r, lb_model_quant_opts *oc, lb_calib **own)
{
    const lb_model_quant_opts *o = r->o;
    if (!(o->bits_budget > 0 && o->bits_budget < 64))
        return lb__err(LB_ERR_ARG, "--bits-budget %g is out of range (0, 64) bits/weight", o->bits_budget);
    if (!r->ctx.fmt) return lb__err(LB_ERR_ARG, "--bits-budget needs a quantized format, not f32");
    if (o->quantize_embeddings)
        return lb__err(LB_ERR_ARG, "--bits-budget allocates the linears only; leave out --quantize-embeddings");
    if (!o->calib && !o->calib_tokens)
        return lb__err(LB_ERR_ARG, "--bits-budget ranks the linears by their output error on calibration inputs: "
                       "give --calib STATS or --calib-text FILE");
    if (o->n_budget_formats < 0 || o->n_budget_formats > 32 || (o->n_budget_formats && !o->budget_formats))
        return lb__err(LB_ERR_ARG, "--budget-formats: %d formats (at most 32)", o->n_budget_formats);
    const lb_format *cands[33] = {r->ctx.fmt};
    int nc = 1;
    for (int i = 0; i < o->n_budget_formats; i++) {
        const lb_format *f;
        lb_status s = lb_quant_format_resolve(o->budget_formats[i], 0, &f);
        if (s) return lb__err_prefix(s, "--budget-formats: ");
        if (o->q.scale_rule == LB_SCALE_FULL && !lb__format_full_ok(f))
            return lb__err(LB_ERR_ARG, "--budget-formats: %s: scale rule full applies to symmetric INT formats",
                           lb_format_name(f));
        bool dup = false;
        for (int k = 0; k < nc; k++) dup = dup || cands[k] == f;
        if (!dup) cands[nc++] = f;
    }
    *oc = *o;
    const lb_calib *calib = o->calib;
    if (!calib) {
        lb_calib_opts co = {.ctx = o->calib_ctx, .n_threads = o->n_threads};
        lb_status s = lb_calib_collect(r->src, o->calib_tokens, o->n_calib_tokens, &co, own);
        if (s) return lb__err_prefix(s, "--bits-budget statistics: ");
        calib = *own;
        if (!o->sequential) { oc->calib = *own; oc->calib_tokens = NULL; oc->n_calib_tokens = 0; r->o = oc; }
    }
    const lb_weight **w = lb__alloc((size_t)r->n * sizeof *w);
    const char **names = lb__alloc((size_t)r->n * sizeof *names);
    int64_t *idx = lb__alloc((size_t)r->n * sizeof *idx);
    int *choice = lb__alloc((size_t)r->n * sizeof *choice);
    r->choice = lb__zalloc((size_t)r->n * sizeof *r->choice);
    lb_status s = w && names && idx && choice && r->choice ? LB_OK : LB_ERR_NOMEM;
    int64_t n = 0;
    for (int64_t i = 0; !s && i < r->n; i++)
        if (r->sn[i].linear && !lb__keep_match(o->keep, o->n_keep, r->sn[i].name)) {
            w[n] = r->sn[i].w; names[n] = r->sn[i].name; idx[n++] = i;
        }
    lb__budget_in in = {.method = r->ctx.method, .q = &o->q, .calib = calib, .cands = cands, .n_cands = nc,
                        .budget = o->bits_budget, .metric = o->budget_metric, .w = w, .names = names, .n = n,
                        .pool = r->pool, .src = r->src,
                        .tokens = o->budget_tokens ? o->budget_tokens : o->calib_tokens,
                        .n_tokens = o->budget_tokens ? o->n_budget_tokens : o->n_calib_tokens,
                        .ctx = o->calib_ctx > 0 ? o->calib_ctx : 128};
    if (in.ctx > r->src->cfg.max_seq && r->src->cfg.max_seq > 0) in.ctx = r->src->cfg.max_seq;
    if (!s && n) s = lb__budget_assign(&in, choice, NULL);
    for (int64_t k = 0; !s && k < n; k++) r->choice[idx[k]] = cands[choice[k]];
    LB_FREE(w); LB_FREE(names); LB_FREE(idx); LB_FREE(choice);
    return s;
}

static lb_status quantize_model(const lb_model *src, const lb_model_quant_opts *o, const lb_quantizer *method,
                                lb_model **out, lb_quant_report *rep)
{
    if (rep) memset(rep, 0, sizeof *rep);
    LB_ARG(out, "lb_model_quantize: out is NULL");
    *out = NULL;
    LB_ARG(src, "lb_model_quantize: src is NULL");
    LB_ARG(o, "lb_model_quantize: opts is NULL");
    double t0 = lb_time_now();
    qrun r = {.src = src, .o = o};
    lb_status s = resolve(o, &r.ctx.method, &r.ctx.fmt);
    if (!s && method) r.ctx.method = method;
    if (!s) s = check_calib(src, o, r.ctx.method);
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
    }
    lb_model_quant_opts oc;      /* the run's options once the budget's statistics are collected */
    lb_calib *own = NULL;
    if (!s && o->bits_budget != 0) s = budget_start(&r, &oc, &own);
    if (!s) s = calib_start(&r);
    if (!s) s = quantize_all(&r);
    if (!s && r.dst->cfg.tied_embeddings) r.dst->lm_head = r.dst->tok_embed;
    lb_calib_free(own);
    LB_FREE(r.choice);
    lb_pool_free(r.pool);
    lb__calib_run_free(r.cr);
    LB_FREE(r.hybrid.layers);
    LB_FREE(r.sn); LB_FREE(r.dn); LB_FREE(r.ctx.jobs);
    if (s) { LB_FREE(r.info); lb_model_free(r.dst); return s; }
    if (rep) { summarize(rep, r.info, r.n); rep->seconds = lb_time_now() - t0; }
    else LB_FREE(r.info);
    *out = r.dst;
    return LB_OK;
}

lb_status lb_model_quantize(const lb_model *src, const lb_model_quant_opts *o, lb_model **out, lb_quant_report *rep)
{
    return quantize_model(src, o, NULL, out, rep);
}

lb_status lb__model_quantize_with(const lb_model *src, const lb_model_quant_opts *o, const lb_quantizer *method,
                                  lb_model **out, lb_quant_report *rep)
{
    LB_ARG(method, "lb__model_quantize_with: method is NULL");
    return quantize_model(src, o, method, out, rep);
}

void lb_quant_report_free(lb_quant_report *r)
{
    if (!r) return;
    LB_FREE(r->tensors);
    memset(r, 0, sizeof *r);
}
