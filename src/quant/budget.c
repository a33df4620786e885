/* budget.c: mixed precision under a bits budget (lb_model_quant_opts.bits_budget).
 *
 * Each linear i to be quantized may take any of the candidate formats
 * (--format and --budget-formats). For every (linear, candidate) the
 * method quantizes the matrix as it would in the real run (same options, the
 * float-path statistics of its input) and the proxy loss is measured:
 *     loss = tr(E H E^T),  E = W - Q,   (the layer output error, awq.c)
 * or, with budget_metric 1, that loss over tr(W H W^T) (relative output
 * error), or, with budget_metric 2, the mean KL divergence of the model's
 * next-token distribution on the first LB__BUDGET_TOKENS calibration tokens
 * when this linear alone is replaced by the candidate (every other weight
 * float; sequences of the calibration ctx from position 0), together with
 * the bits/weight the candidate really stores. The KL of several replaced
 * linears is taken as the sum of theirs (first-order additivity).
 * Allocation (a greedy multiple-choice knapsack): every linear starts at its
 * cheapest candidate; then, while the budget allows, the one upgrade (a
 * linear moving to a more expensive candidate with a lower loss) with the
 * largest loss decrease per added bit of the whole model is taken; an
 * upgrade that does not fit is skipped, a cheaper one of another linear may
 * still fit. The budget is the mean bits/weight over the quantized linears
 * (element-weighted), so sum_i size_i bits_i <= B sum_i size_i.
 *
 * Every number is computed per (linear, candidate) independently (one pool
 * task each), so the choice does not depend on the thread count. NV
 * formats: the pre-pass uses each matrix's own tensor scale (the real run
 * then shares it across q/k/v and gate/up, model_quant.c). */
#include "quant/quant.h"
#include <math.h>

typedef struct bjob {
    const lb_weight *src;
    const lb_format *f;
    lb_calib_stats st;
    double bits, loss;
    lb_status s;
    char err[256];
    const char *name;
} bjob;

typedef struct bctx {
    const lb_quantizer *method;
    const lb_quantize_opts *q;
    int metric;
    bjob *jobs;
    const lb__budget_in *in;
    const float *base_lp;       /* metric 2: the float model's log-probabilities (n_tok, vocab) */
    int64_t n_tok;
} bctx;

/* Every token's logits of m on the first n tokens, cut into sequences of
 * ctx (each from position 0), as log-probabilities (double sums, float out). */
static lb_status log_probs(const lb_model *m, const int32_t *tok, int64_t n, int64_t ctx, float *lp)
{
    lb_session *ss = NULL;
    lb_status s = lb_session_create(m, &(lb_session_opts){.n_threads = 1, .max_ctx = ctx}, &ss);
    int64_t V = m->cfg.vocab_size;
    for (int64_t off = 0; !s && off < n; off += ctx) {
        int64_t len = n - off < ctx ? n - off : ctx;
        lb_session_reset(ss);
        s = lb_forward_all(ss, tok + off, len, lp + off * V);
    }
    for (int64_t t = 0; !s && t < n; t++) {
        float *x = lp + t * V, mx = x[0];
        for (int64_t v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
        double z = 0;
        for (int64_t v = 0; v < V; v++) z += exp((double)x[v] - mx);
        float lz = (float)(log(z) + mx);
        for (int64_t v = 0; v < V; v++) x[v] -= lz;
    }
    lb_session_free(ss);
    return s;
}

/* Mean KL(float || m) over the tokens: the model with one linear replaced. */
static lb_status model_kl(const bctx *c, const lb_model *m, double *kl)
{
    int64_t V = m->cfg.vocab_size, n = c->n_tok;
    float *lp = lb__alloc((size_t)(n * V) * sizeof *lp);
    lb_status s = lp ? log_probs(m, c->in->tokens, n, c->in->ctx, lp) : LB_ERR_NOMEM;
    double tot = 0;
    for (int64_t t = 0; !s && t < n; t++) {
        const float *p = c->base_lp + t * V, *q = lp + t * V;
        double k = 0;
        for (int64_t v = 0; v < V; v++) k += exp((double)p[v]) * ((double)p[v] - q[v]);
        tot += k;
    }
    *kl = tot / (double)n;
    LB_FREE(lp);
    return s;
}

/* metric 2: the source model with linear `w` replaced by q's view (a
 * shallow copy: its own layer table, the source's buffers). */
static lb_status replaced_kl(const bctx *c, const lb_weight *w, const lb_qmatrix *q, double *kl)
{
    const lb_model *src = c->in->src;
    lb_model m = *src;
    size_t lb = (size_t)src->cfg.n_layers * sizeof *m.layers;
    if (!(m.layers = lb__alloc(lb))) return LB_ERR_NOMEM;
    memcpy(m.layers, src->layers, lb);
    lb_status s = LB_OK;
    bool found = false;
    for (int64_t l = 0; l < src->cfg.n_layers && !found; l++) {   /* the same field in the copy's table */
        const char *a = (const char *)&src->layers[l], *p = (const char *)w;
        if (p >= a && p < a + sizeof *m.layers) {
            *(lb_weight *)((char *)&m.layers[l] + (p - a)) = lb__qmatrix_weight(q);
            found = true;
        }
    }
    if (!found) s = lb__err(LB_ERR_ARG, "--bits-budget: weight is not a layer linear");
    if (!s) s = model_kl(c, &m, kl);
    LB_FREE(m.layers);
    return s;
}

static void cand_task(void *vctx, int64_t b, int64_t e, int thread)
{
    bctx *c = vctx;
    for (int64_t k = b; k < e; k++) {
        bjob *j = &c->jobs[k];
        int64_t rows = j->src->rows, n = j->src->cols;
        float *w = lb__alloc((size_t)(rows * n) * sizeof *w), *y = lb__alloc((size_t)(rows * n) * sizeof *y);
        double *ebuf = lb__alloc((size_t)(8 * n) * sizeof *ebuf);
        lb_qmatrix q = {0};
        lb_quantize_opts o = *c->q;
        o.calib = &j->st;
        lb_status s = w && y && ebuf ? lb__weight_f32(j->src, w) : LB_ERR_NOMEM;
        if (!s) s = lb_quantize_matrix(c->method, j->f, &o, w, rows, n, &q);
        if (!s) s = lb_qmatrix_dequantize(&q, y);
        if (!s) {
            lb_weight v = lb__qmatrix_weight(&q);
            j->bits = 8.0 * (double)lb__weight_bytes(&v) / (double)(rows * n);
            j->loss = c->metric == 2 ? 0 : lb__layer_loss(j->st.H, w, y, rows, n, ebuf);
            if (c->metric == 2) s = replaced_kl(c, j->src, &q, &j->loss);
            if (c->metric == 1) {
                memset(y, 0, (size_t)(rows * n) * sizeof *y);
                double ref = lb__layer_loss(j->st.H, w, y, rows, n, ebuf);   /* tr(W H W^T) */
                j->loss = ref > 0 ? j->loss / ref : 0;
            }
            if (!s && !isfinite(j->loss))
                s = lb__err(LB_ERR_ARG, "proxy loss of %s is not finite", lb_format_name(j->f));
        }
        if (s) snprintf(j->err, sizeof j->err, "%s (%s): %s", j->name, lb_format_name(j->f), lb_errmsg());
        j->s = s;
        lb_qmatrix_free(&q);
        LB_FREE(w); LB_FREE(y); LB_FREE(ebuf);
    }
}

lb_status lb__budget_assign(const lb__budget_in *in, int *choice, double *bits_out)
{
    int64_t n = in->n, nc = in->n_cands;
    if (!(in->budget > 0 && in->budget < 64))
        return lb__err(LB_ERR_ARG, "bits budget %g is out of range (0, 64) bits/weight", in->budget);
    if (in->metric < 0 || in->metric > 2)
        return lb__err(LB_ERR_ARG, "budget metric %d is not 0 (output error), 1 (relative output error) or 2 (KL "
                       "divergence of the model's output)", in->metric);
    if (in->metric == 2 && (!in->src || !in->tokens || in->n_tokens <= 0))
        return lb__err(LB_ERR_ARG, "--budget-metric 2 runs the model on calibration tokens: give --calib-text FILE");
    bjob *jobs = lb__zalloc((size_t)(n * nc) * sizeof *jobs);
    if (!jobs) return LB_ERR_NOMEM;
    lb_status s = LB_OK;
    bctx ctx = {.method = in->method, .q = in->q, .metric = in->metric, .jobs = jobs, .in = in};
    float *base_lp = NULL;
    if (in->metric == 2) {   /* the float model's log-probabilities on at most LB__BUDGET_TOKENS tokens */
        int64_t V = in->src->cfg.vocab_size;
        ctx.n_tok = in->n_tokens < LB__BUDGET_TOKENS ? in->n_tokens : LB__BUDGET_TOKENS;
        base_lp = lb__alloc((size_t)(ctx.n_tok * V) * sizeof *base_lp);
        s = base_lp ? log_probs(in->src, in->tokens, ctx.n_tok, in->ctx, base_lp) : LB_ERR_NOMEM;
        ctx.base_lp = base_lp;
    }
    for (int64_t i = 0; !s && i < n; i++) {
        lb_calib_stats st;
        s = lb_calib_stats_for(in->calib, in->names[i], &st);
        if (s) s = lb__err_prefix(s, "--bits-budget: %s: ", in->names[i]);
        for (int64_t c = 0; !s && c < nc; c++)
            jobs[i * nc + c] = (bjob){.src = in->w[i], .f = in->cands[c], .st = st, .name = in->names[i]};
    }
    if (!s) lb_pool_for(in->pool, n * nc, 1, cand_task, &ctx);
    for (int64_t k = 0; !s && k < n * nc; k++)
        if (jobs[k].s) s = lb__err(jobs[k].s, "--bits-budget: %s", jobs[k].err);
    double total = 0, used = 0;
    for (int64_t i = 0; !s && i < n; i++) {   /* start: the cheapest candidate (ties: the lower loss) */
        const bjob *r = jobs + i * nc;
        int best = 0;
        for (int c = 1; c < nc; c++)
            if (r[c].bits < r[best].bits || (r[c].bits == r[best].bits && r[c].loss < r[best].loss)) best = c;
        choice[i] = best;
        double size = (double)(in->w[i]->rows * in->w[i]->cols);
        total += size;
        used += size * r[best].bits;
    }
    if (!s && used > in->budget * total)
        s = lb__err(LB_ERR_ARG, "--bits-budget %g is below the cheapest candidates' %.4f bits/weight", in->budget,
                    used / total);
    while (!s) {   /* greedy upgrades */
        double best_gain = 0, best_cost = 0;
        int64_t bi = -1;
        int bc = -1;
        for (int64_t i = 0; i < n; i++) {
            const bjob *r = jobs + i * nc, *cur = r + choice[i];
            double size = (double)(in->w[i]->rows * in->w[i]->cols);
            for (int c = 0; c < nc; c++) {
                double cost = (r[c].bits - cur->bits) * size, gain = cur->loss - r[c].loss;
                if (!(cost > 0) || !(gain > 0) || used + cost > in->budget * total) continue;
                if (bi < 0 || gain * best_cost > best_gain * cost) { best_gain = gain; best_cost = cost; bi = i; bc = c; }
            }
        }
        if (bi < 0) break;
        choice[bi] = bc;
        used += best_cost;
    }
    if (!s && bits_out) *bits_out = used / total;
    LB_FREE(jobs);
    LB_FREE(base_lp);
    return s;
}
