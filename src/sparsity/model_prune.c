/* model_prune.c: pruning a whole model. Every linear (q, k, v, o, gate, up,
 * down) not matched by a keep glob is pruned with one criterion and one
 * pattern and stored sparse (weights/sparse.c); everything else is copied.
 * With a format, each row's kept values are then quantized with RTN into
 * that block format (prune, then quantize; unstructured masks, whose rows
 * may keep different counts, are padded with zeros to whole blocks of the
 * longest row: weights/sparse.c), or, with joint and sparsegpt, quantized
 * inside SparseGPT's loop (lb_prune_quantize_matrix).
 * The linears of a layer are pruned in parallel, one matrix per task, each
 * independently, so the result does not depend on the thread count.
 * Statistics: the caller's lb_calib, or one collected here from calibration
 * tokens by the calib module (lb_calib_collect, a pass of the dense model);
 * or, sequential, layer by layer as the Wanda and SparseGPT reference code
 * does: layer l's statistics come from the model whose layers < l are
 * already pruned (the calib runner's second stream through a shallow copy of
 * the source whose first l layers are the new model's; layer l itself still
 * dense), and the criterion reads that path's H (Hq) and its diagonal as the
 * mean x^2. The new model owns every buffer. */
#include "sparsity/sparsity.h"
#include "calib/calib.h"
#include "model/model.h"
#include <math.h>
#include <stdio.h>
#include <strings.h>

typedef struct pjob {
    const lb_weight *src;
    lb_weight *dst;
    lb_prune_tensor_info *info;
    lb_calib_stats st;          /* views into the run's lb_calib */
    float *w;                   /* pruned values */
    uint8_t *keep;
    lb_qmatrix q;               /* with a format: the kept values packed (q.packed NULL: kept at dtype) */
    lb_status status;
    char err[256];
} pjob;

typedef struct prun {
    const lb_model *src;
    lb_model *dst;
    const lb_model_prune_opts *o;
    const lb__criterion *crit;
    lb__pattern pat;
    lb_dtype vdt;               /* values dtype (own_dtype: each weight's own) */
    bool own_dtype;
    const lb_format *fmt;       /* quantize the kept values into it, or NULL */
    bool joint;                 /* in SparseGPT's loop (else RTN after pruning) */
    const lb_calib *calib;      /* the caller's, or own_calib */
    lb_calib *own_calib;        /* collected here from opts.tokens */
    lb_calib_stats_fn stats_for;
    lb__wname *sn, *dn;
    int64_t n;
    lb_prune_tensor_info *info;
    pjob *jobs;
    lb_pool *pool;
    lb__calib_run *cr;          /* sequential: the calib runner, else NULL */
    lb__calib_site cur[LB_SITE_COUNT];  /* its statistics of layer cur_layer */
    double *diag[LB_SITE_COUNT];        /* diag(Hq) of each site: the pruned path's mean x^2 */
    int64_t cur_layer;
    lb_model hybrid;            /* the source with layers < l taken from dst */
} prun;

static void job_free(pjob *j)
{
    lb_qmatrix_free(&j->q);
    memset(&j->q, 0, sizeof j->q);
    LB_FREE(j->w); LB_FREE(j->keep);
    j->w = NULL; j->keep = NULL;
}

/* The kept count of every row, or -1 when rows differ. */
static int64_t uniform_keep(const uint8_t *keep, int64_t rows, int64_t cols)
{
    int64_t k0 = -1;
    for (int64_t r = 0; r < rows; r++) {
        int64_t k = 0;
        for (int64_t c = 0; c < cols; c++) k += keep[r * cols + c] != 0;
        if (k0 >= 0 && k != k0) return -1;
        k0 = k;
    }
    return k0;
}

/* Values per packed row of j's mask, or 0 when it cannot be packed (then
 * the values stay at dtype): unstructured masks are padded to whole blocks
 * of the longest row (at most the row's width); N:M and V:N:M need the same
 * count in every row, a multiple of the block. */
static int64_t packed_k(const prun *r, const pjob *j)
{
    int64_t rows = j->src->rows, cols = j->src->cols, B = lb_format_block(r->fmt);
    if (r->pat.kind == LB__PAT_UNSTRUCTURED) {
        int64_t k = lb__sparse_padded_k(j->keep, rows, cols, r->fmt);
        return k <= cols ? k : 0;
    }
    int64_t k = uniform_keep(j->keep, rows, cols);
    return k < 1 || (B && k % B) ? 0 : k;
}

/* Quantize each row's kept values (RTN; padded rows: followed by zeros up to
 * k) into r->fmt, and put the decoded values back into j->w; leaves j->q
 * empty when the mask cannot be packed (then the values stay at dtype). */
static lb_status quantize_kept(const prun *r, pjob *j)
{
    int64_t rows = j->src->rows, cols = j->src->cols, k = packed_k(r, j);
    if (k < 1) return LB_OK;
    float *c = lb__zalloc(sizeof(float) * (size_t)(rows * k));
    if (!c) return lb__err(LB_ERR_NOMEM, "out of memory");
    for (int64_t i = 0, n = 0; i < rows * cols; i++) {
        if (i % cols == 0) n = i / cols * k;
        if (j->keep[i]) c[n++] = j->w[i];
    }
    lb_quantize_opts qo = {0};
    lb_status s = lb_quantize_matrix(lb_quantizer_find("rtn"), r->fmt, &qo, c, rows, k, &j->q);
    if (!s) s = lb_qmatrix_dequantize(&j->q, c);
    for (int64_t i = 0, n = 0; !s && i < rows * cols; i++) {
        if (i % cols == 0) n = i / cols * k;
        if (j->keep[i]) j->w[i] = c[n++];
    }
    LB_FREE(c);
    return s;
}

static void prune_task(void *ctx, int64_t b, int64_t e, int thread)
{
    prun *r = ctx;
    for (int64_t i = b; i < e; i++) {
        pjob *j = &r->jobs[i];
        int64_t n = j->src->rows * j->src->cols;
        float *orig = lb__alloc((size_t)n * sizeof *orig);
        j->w = lb__alloc((size_t)n * sizeof *j->w);
        j->keep = lb__alloc((size_t)n);
        lb_status s = orig && j->w && j->keep ? lb__weight_f32(j->src, orig) : LB_ERR_NOMEM;
        lb_prune_opts po = r->o->p;
        po.calib = r->crit->calib ? &j->st : NULL;
        if (r->fmt && !po.row_groups) po.row_groups = 1;   /* packed values: SparseGPT keeps one count per row */
        bool joint = r->joint && !lb__sparsegpt_joint_fits(&r->pat, r->fmt, j->src->cols);
        if (!s) {
            memcpy(j->w, orig, (size_t)n * sizeof *orig);
            s = joint ? lb_prune_quantize_matrix(&po, r->fmt, j->w, j->src->rows, j->src->cols, j->keep, &j->q)
                      : lb_prune_matrix(&po, j->w, j->src->rows, j->src->cols, j->keep);
        }
        if (!s && r->fmt && !r->joint) s = quantize_kept(r, j);
        if (!s) {
            double se = 0, sw = 0;
            for (int64_t k = 0; k < n; k++) { double d = (double)orig[k] - j->w[k]; se += d * d; sw += (double)orig[k] * orig[k]; }
            j->info->rel_err = sw > 0 ? sqrt(se / sw) : 0;
        }
        j->status = s;
        if (s) snprintf(j->err, sizeof j->err, "%s: %s", j->info->name, lb_errmsg());
        LB_FREE(orig);
    }
}

static void set_info(lb_prune_tensor_info *t, const char *name, const lb_weight *w, const char *status)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = w->rows; t->cols = w->cols;
    snprintf(t->status, sizeof t->status, "%s", status);
    t->bytes = lb__weight_bytes(w);
    t->dense_bytes = w->rep == &lb__wrep_dense ? t->bytes : (size_t)(w->rows * w->cols) * lb_dtype_size(w->dtype);
    snprintf(t->stored, sizeof t->stored, "%s", w->rep->describe(w));
}

/* Statistics of job j's matrix (views into the run's lb_calib). */
static lb_status job_stats(prun *r, pjob *j, const char *name)
{
    if (!r->crit->calib) return LB_OK;
    lb_status s = LB_OK;
    if (r->cr) {
        int64_t l;
        lb_site k;
        if (!lb__calib_name_site(name, &l, &k) || l != r->cur_layer)
            return lb__err(LB_ERR_ARG, "sequential calibration has no statistics for '%s'", name);
        lb__calib_site_view(&r->cur[k], lb__calib_run_tokens(r->cr), &j->st);
        j->st.H = j->st.Hq;
        j->st.sq = r->diag[k];
        j->st.Hq = j->st.Hqx = NULL;
    } else
        s = r->stats_for(r->calib, name, &j->st);
    if (!s && j->st.n != j->src->cols)
        s = lb__err(LB_ERR_ARG, "calibration statistics of '%s' are for %lld inputs, it has %lld", name,
                    (long long)j->st.n, (long long)j->src->cols);
    if (!s && (!j->st.sq || (r->crit == &lb__crit_sparsegpt && !j->st.H)))
        s = lb__err(LB_ERR_ARG, "calibration statistics of '%s' lack %s", name, j->st.sq ? "H" : "sq");
    return s;
}

/* Install job j's result as a sparse weight of the new model. */
static lb_status install(prun *r, pjob *j)
{
    const lb__pattern *p = &r->pat;
    lb_dtype vdt = r->own_dtype ? j->src->dtype : r->vdt;
    int32_t v = p->kind == LB__PAT_VNM ? p->v : 0, n = p->kind ? p->n : 0, m = p->kind ? p->m : 0;
    lb_status s = j->q.packed ? lb__weight_sparse_packed(&r->dst->store, j->keep, j->src->rows, j->src->cols, r->fmt,
                                                         j->q.tensor_scale, j->q.packed, v, n, m, j->dst)
                              : lb__weight_sparse(&r->dst->store, j->w, j->keep, j->src->rows, j->src->cols, vdt, v, n,
                                                  m, LB_SPARSE_AUTO, j->dst);
    if (s) return s;
    lb_prune_tensor_info *t = j->info;
    const lb_wsparse *sp = &j->dst->u.sparse;
    char pt[32];
    lb__sparse_pattern_text(sp, pt, sizeof pt);
    t->bytes = lb__weight_bytes(j->dst);
    t->dense_bytes = (size_t)(j->dst->rows * j->dst->cols) * lb_dtype_size(vdt);
    t->sparsity = 1.0 - (double)sp->nnz / (double)(j->dst->rows * j->dst->cols);
    t->dense_bytes = sp->fmt ? (size_t)j->dst->rows * lb_format_row_bytes(sp->fmt, j->dst->cols) : t->dense_bytes;
    snprintf(t->stored, sizeof t->stored, "%s %s %s", sp->fmt ? lb_format_name(sp->fmt) : lb_dtype_name(vdt), pt,
             sp->mask ? "bitmask" : "index");
    return LB_OK;
}

/* Entries [i0, i1) (one layer or one top-level tensor). */
static lb_status run_range(prun *r, int64_t i0, int64_t i1)
{
    int64_t nj = 0;
    lb_status s = LB_OK;
    for (int64_t i = i0; i < i1 && !s; i++) {
        const lb_weight *w = r->sn[i].w;
        const char *nm = r->sn[i].name;
        if (!w->rep) return lb__err(LB_ERR_FORMAT, "model: weight '%s' is missing", nm);
        bool lin = r->sn[i].linear, kept = !lin || lb__keep_match(r->o->keep, r->o->n_keep, nm);
        if (lin && !kept && (w->rep != &lb__wrep_dense || w->n_in))
            return lb__err(LB_ERR_UNSUPPORTED, "%s: '%s' is already %s (%s); prune the dense model",
                           r->src->path ? r->src->path : "model", nm, w->rep->name, w->rep->describe(w));
        set_info(&r->info[i], nm, w, !lin ? "kept (not linear)" : kept ? "kept (--keep)" : "pruned");
        if (kept) { s = lb__weight_copy(&r->dst->store, w, r->dn[i].w); continue; }
        pjob *j = &r->jobs[nj++];
        *j = (pjob){.src = w, .dst = r->dn[i].w, .info = &r->info[i]};
        s = job_stats(r, j, nm);
    }
    if (!s) lb_pool_for(r->pool, nj, 1, prune_task, r);
    for (int64_t k = 0; k < nj; k++) {
        if (!s && r->jobs[k].status) s = lb__err(r->jobs[k].status, "%s", r->jobs[k].err);
        if (!s) s = install(r, &r->jobs[k]);
        job_free(&r->jobs[k]);
    }
    return s;
}

/* Sequential: layer l's statistics along the partly pruned path, and the
 * diagonal of each site's Hq. */
static lb_status calib_layer(prun *r, int64_t l)
{
    lb_status s = lb__calib_run_layer(r->cr, l, &r->hybrid, r->cur);
    r->cur_layer = s ? -1 : l;
    for (int k = 0; !s && k < LB_SITE_COUNT; k++) {
        int64_t n = r->cur[k].n;
        LB_FREE(r->diag[k]);
        if (!(r->diag[k] = lb__alloc(sizeof(double) * (size_t)n))) return LB_ERR_NOMEM;
        for (int64_t c = 0; c < n; c++) r->diag[k][c] = r->cur[k].Hq[c * n + c];
    }
    return s;
}

static lb_status prune_all(prun *r)
{
    lb_status s = LB_OK;
    int64_t i = 0, done = 0;
    while (!s && i < r->n) {
        const char *nm = r->sn[i].name;
        int64_t j = i + 1, l = -1;
        if (!strncmp(nm, "model.layers.", 13)) {
            size_t pre = (size_t)(strchr(nm + 13, '.') - nm) + 1;
            l = strtoll(nm + 13, NULL, 10);
            while (j < r->n && !strncmp(r->sn[j].name, nm, pre)) j++;
        }
        if (r->cr && l >= 0) s = calib_layer(r, l);
        if (!s) s = run_range(r, i, j);
        if (!s && r->cr && l >= 0) r->hybrid.layers[l] = r->dst->layers[l];
        if (!s && j - i > 1 && r->o->progress) r->o->progress(++done, r->src->cfg.n_layers, "layers", r->o->progress_user);
        i = j;
    }
    return s;
}

/* Criterion, pattern, dtype and statistics source, checked before any work. */
static lb_status resolve(prun *r)
{
    const lb_model_prune_opts *o = r->o;
    const char *cn = o->p.criterion ? o->p.criterion : "magnitude";
    if (!(r->crit = lb__criterion_find(cn)))
        return lb__err(LB_ERR_NOTFOUND, "unknown criterion '%s' (known: magnitude, wanda, sparsegpt)", cn);
    lb_status s = lb__pattern_parse(o->p.pattern, o->p.ratio, &r->pat);
    if (s) return s;
    r->own_dtype = !o->dtype;
    if (o->dtype) {
        if (!strcasecmp(o->dtype, "f32")) r->vdt = LB_DTYPE_F32;
        else if (!strcasecmp(o->dtype, "f16")) r->vdt = LB_DTYPE_F16;
        else if (!strcasecmp(o->dtype, "bf16")) r->vdt = LB_DTYPE_BF16;
        else return lb__err(LB_ERR_ARG, "unknown values dtype '%s' (known: f32, f16, bf16)", o->dtype);
    }
    if (o->format && (s = lb_quant_format_resolve(o->format, 0, &r->fmt))) return s;
    if (o->joint && (!r->fmt || r->crit != &lb__crit_sparsegpt))
        return lb__err(LB_ERR_ARG, "joint prune-and-quantize needs criterion sparsegpt and a format (--format)");
    if (o->joint && r->pat.kind == LB__PAT_UNSTRUCTURED)
        return lb__err(LB_ERR_UNSUPPORTED, "joint prune-and-quantize needs an N:M or V:N:M pattern (unstructured "
                       "sparsegpt masks keep different counts per row)");
    r->joint = o->joint;
    if (o->sequential && !r->crit->calib)
        return lb__err(LB_ERR_ARG, "sequential calibration goes with a criterion that reads statistics (wanda, "
                       "sparsegpt), not %s", r->crit->name);
    if (!r->crit->calib) return LB_OK;
    if (o->sequential && (o->calib || !o->tokens))
        return lb__err(LB_ERR_ARG, "sequential calibration collects statistics while pruning: give calibration "
                       "tokens (--calib-text), not a statistics file");
    if (o->calib && o->tokens)
        return lb__err(LB_ERR_ARG, "lb_model_prune: give calibration statistics or calibration tokens, not both");
    r->stats_for = o->stats_for ? o->stats_for : lb_calib_stats_for;
    if (!o->calib && (!o->tokens || o->n_tokens < 1))
        return lb__err(LB_ERR_ARG, "criterion %s needs calibration statistics: give calibration text (--calib-text) "
                       "or statistics", r->crit->name);
    return LB_OK;
}

static void summarize(lb_prune_report *rep, lb_prune_tensor_info *info, int64_t n)
{
    double zeros = 0, elems = 0;
    rep->tensors = info;
    rep->n_tensors = n;
    for (int64_t i = 0; i < n; i++) {
        rep->total_bytes += info[i].bytes;
        rep->dense_bytes += info[i].dense_bytes;
        if (strcmp(info[i].status, "pruned")) continue;
        rep->n_pruned++;
        zeros += info[i].sparsity * (double)(info[i].rows * info[i].cols);
        elems += (double)(info[i].rows * info[i].cols);
    }
    rep->linear_sparsity = elems > 0 ? zeros / elems : 0;
}

static void prun_free(prun *r)
{
    LB_FREE(r->sn); LB_FREE(r->dn); LB_FREE(r->jobs);
    lb_pool_free(r->pool);
    lb_calib_free(r->own_calib);
    lb__calib_run_free(r->cr);
    LB_FREE(r->hybrid.layers);
    for (int k = 0; k < LB_SITE_COUNT; k++) LB_FREE(r->diag[k]);
}

lb_status lb_model_prune(const lb_model *src, const lb_model_prune_opts *o, lb_model **out, lb_prune_report *rep)
{
    if (rep) memset(rep, 0, sizeof *rep);
    LB_ARG(out, "lb_model_prune: out is NULL");
    *out = NULL;
    LB_ARG(src, "lb_model_prune: src is NULL");
    LB_ARG(o, "lb_model_prune: opts is NULL");
    double t0 = lb_time_now();
    prun r = {.src = src, .o = o};
    lb_status s = resolve(&r);
    if (s) return s;
    r.calib = o->calib;
    r.cur_layer = -1;
    if (r.crit->calib && !o->calib) {
        int64_t ctx = o->ctx > 0 ? o->ctx : 128;
        lb_calib_opts co = {.ctx = lb__min64(ctx, src->cfg.max_seq), .n_threads = o->n_threads};
        if (o->sequential) {
            r.hybrid = *src;
            r.hybrid.layers = lb__alloc(sizeof *r.hybrid.layers * (size_t)src->cfg.n_layers);
            s = r.hybrid.layers ? lb__calib_run_create(src, o->tokens, o->n_tokens, &co, true, &r.cr) : LB_ERR_NOMEM;
            if (!s) memcpy(r.hybrid.layers, src->layers, sizeof *r.hybrid.layers * (size_t)src->cfg.n_layers);
        } else if (!(s = lb_calib_collect(src, o->tokens, o->n_tokens, &co, &r.own_calib)))
            r.calib = r.own_calib;
    }
    if (!s && !(r.dst = lb__model_new())) s = LB_ERR_NOMEM;
    if (!s) {
        r.dst->cfg = src->cfg;
        s = lb__model_alloc_layers(r.dst);
    }
    if (!s) s = lb__model_set_names(r.dst, src->path ? src->path : "", src->source_format ? src->source_format : "");
    r.n = lb__model_names((lb_model *)src, NULL, 0);
    r.sn = lb__zalloc((size_t)r.n * sizeof *r.sn);
    r.dn = lb__zalloc((size_t)r.n * sizeof *r.dn);
    r.info = lb__zalloc((size_t)r.n * sizeof *r.info);
    r.jobs = lb__zalloc((size_t)r.n * sizeof *r.jobs);
    if (!s && (!r.sn || !r.dn || !r.info || !r.jobs)) s = LB_ERR_NOMEM;
    if (!s) s = lb_pool_create(o->n_threads, &r.pool);
    if (!s) {
        lb__model_names((lb_model *)src, r.sn, r.n);
        lb__model_names(r.dst, r.dn, r.n);
        s = prune_all(&r);
    }
    if (!s && r.dst->cfg.tied_embeddings) r.dst->lm_head = r.dst->tok_embed;
    prun_free(&r);
    if (s) { LB_FREE(r.info); lb_model_free(r.dst); return s; }
    if (rep) { summarize(rep, r.info, r.n); rep->seconds = lb_time_now() - t0; }
    else LB_FREE(r.info);
    *out = r.dst;
    return LB_OK;
}

void lb_prune_report_free(lb_prune_report *r)
{
    if (!r) return;
    LB_FREE(r->tensors);
    memset(r, 0, sizeof *r);
}
