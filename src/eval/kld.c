/* kld.c: KL divergence of a model against a saved base (llama.cpp's
 * --kl-divergence statistics). For every scored position i, with base
 * log-probabilities b and this model's q (both log-softmax over the vocab):
 *   KL_i = sum_v exp(b_v) (b_v - q_v)
 * reported as mean +- standard error, the median / 90 / 99 / 99.9 percentiles
 * (linear interpolation between order statistics) and the maximum; top-1
 * agreement = fraction of positions where argmax b == argmax q (lowest id on
 * ties) +- sqrt(p(1-p)/(N-1)); the perplexity ratio from the mean per-token
 * difference d_i = nll_i - nll_base_i: ratio = exp(mean d) +- ratio * se(d). */
#include "eval/eval.h"
#include <math.h>

static int64_t argmax_d(const double *x, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static int64_t argmax_f(const float *x, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, int64_t n, double q)
{
    double pos = q * (double)(n - 1);
    int64_t i = (int64_t)pos;
    if (i >= n - 1) return sorted[n - 1];
    return sorted[i] + (pos - (double)i) * (sorted[i + 1] - sorted[i]);
}

static lb_status check_base(const lb_model *m, const char *path, const lb_base_file *f, const lb_kld_opts *o)
{
    const lb_base_info *in = &f->info;
    if (in->vocab != m->cfg.vocab_size)
        return lb__err(LB_ERR_ARG, "%s: base made with a %lld-token vocabulary (model %s); this model has %lld",
                       path, (long long)in->vocab, in->model, (long long)m->cfg.vocab_size);
    if (in->plan.ctx > m->cfg.max_seq)
        return lb__err(LB_ERR_ARG, "%s: base context %lld exceeds this model's %lld positions", path,
                       (long long)in->plan.ctx, (long long)m->cfg.max_seq);
    if (o->text_hash && o->text_hash != in->text_hash)
        return lb__err(LB_ERR_ARG, "%s: base was computed on another text (hash %016llx, this text %016llx)", path,
                       (unsigned long long)in->text_hash, (unsigned long long)o->text_hash);
    for (int64_t i = 0; i < in->plan.n_chunks * in->plan.ctx; i++)
        if (f->tokens[i] < 0 || f->tokens[i] >= in->vocab)
            return lb__err(LB_ERR_CORRUPT, "%s: token %lld out of range", path, (long long)i);
    return LB_OK;
}

typedef struct kld_acc {
    double *kl;                 /* (N) per-position KL */
    double sum, sum2, dsum, dsum2, nll, nll_b;
    int64_t n, same;
} kld_acc;

static void compare_row(kld_acc *a, const double *q, const float *b, int64_t V, int32_t next)
{
    double kl = 0;
    for (int64_t v = 0; v < V; v++) kl += exp((double)b[v]) * ((double)b[v] - q[v]);
    double d = -q[next] + (double)b[next];
    a->kl[a->n++] = kl;
    a->sum += kl; a->sum2 += kl * kl;
    a->dsum += d; a->dsum2 += d * d;
    a->nll += -q[next]; a->nll_b += -(double)b[next];
    a->same += argmax_d(q, V) == argmax_f(b, V);
}

static double sterr(double sum, double sum2, double n)
{
    double m = sum / n, var = sum2 / n - m * m;
    return var > 0 && n > 1 ? sqrt(var / (n - 1)) : 0;
}

static void finish(kld_acc *a, lb_kld_result *r)
{
    double N = (double)a->n;
    r->n = a->n;
    r->kld = a->sum / N;
    r->kld_err = sterr(a->sum, a->sum2, N);
    qsort(a->kl, (size_t)a->n, sizeof(double), cmp_double);
    r->kld_p50 = percentile(a->kl, a->n, 0.5);
    r->kld_p90 = percentile(a->kl, a->n, 0.9);
    r->kld_p99 = percentile(a->kl, a->n, 0.99);
    r->kld_p999 = percentile(a->kl, a->n, 0.999);
    r->kld_max = a->kl[a->n - 1];
    r->top1 = (double)a->same / N;
    r->top1_err = N > 1 ? sqrt(r->top1 * (1 - r->top1) / (N - 1)) : 0;
    r->ppl = exp(a->nll / N);
    r->ppl_base = exp(a->nll_b / N);
    r->ln_ppl_ratio = a->dsum / N;
    r->ln_ppl_ratio_err = sterr(a->dsum, a->dsum2, N);
    r->ppl_ratio = exp(r->ln_ppl_ratio);
    r->ppl_ratio_err = r->ppl_ratio * r->ln_ppl_ratio_err;
}

lb_status lb_eval_kld(const lb_model *m, const char *path, const lb_kld_opts *o, lb_kld_result *r)
{
    static const lb_kld_opts none = {0};
    if (r) memset(r, 0, sizeof *r);
    LB_ARG(m, "lb_eval_kld: m is NULL");
    LB_ARG(path, "lb_eval_kld: base_path is NULL");
    LB_ARG(r, "lb_eval_kld: res is NULL");
    if (!o) o = &none;
    lb_base_file f;
    lb_status s = lb__base_open(path, &f);
    if (s) return s;
    s = check_base(m, path, &f, o);
    const lb_chunk_plan *p = &f.info.plan;
    int64_t V = f.info.vocab;
    lb_session *ses = NULL;
    lb_session_opts so = {o->n_threads, p->ctx, lb__min64(p->ctx, 128), o->kv};
    if (!s) s = lb_session_create(m, &so, &ses);
    kld_acc a = {0};
    float *logits = s ? NULL : lb__alloc(sizeof(float) * (size_t)(p->ctx * V));
    double *q = s ? NULL : lb__alloc(sizeof(double) * (size_t)V);
    a.kl = s ? NULL : lb__alloc(sizeof(double) * (size_t)(p->n_chunks * p->rows));
    if (!s && (!logits || !q || !a.kl)) s = LB_ERR_NOMEM;
    double t0 = lb_time_now();
    for (int64_t c = 0; c < p->n_chunks && !s; c++) {
        const int32_t *tk = f.tokens + c * p->ctx;
        lb_session_reset(ses);
        s = lb_forward_all(ses, tk, p->ctx, logits);
        for (int64_t j = p->first; j < p->ctx - 1 && !s; j++) {
            if ((s = lb__check_logits(logits + j * V, V, "kld", c, j))) break;
            lb__log_softmax(logits + j * V, V, q);
            compare_row(&a, q, f.logprobs + (c * p->rows + j - p->first) * V, V, tk[j + 1]);
        }
        if (o->progress && !s) o->progress(c + 1, p->n_chunks, "chunks", o->progress_user);
    }
    if (!s) {
        finish(&a, r);
        r->n_chunks = p->n_chunks;
        r->seconds = lb_time_now() - t0;
        r->tokens_per_s = r->seconds > 0 ? (double)(p->n_chunks * p->ctx) / r->seconds : 0;
    }
    lb_session_free(ses);
    LB_FREE(logits); LB_FREE(q); LB_FREE(a.kl);
    lb__base_close(&f);
    return s;
}
