/* score.c: what the eviction scorers share (see evict.h): the method names
 * and defaults, norms and dots in double, the causal attention of logged
 * queries over a head's held tokens (SnapKV, TOVA, ObservedAttention), the
 * scratch each needs, and lb__evict_score, which refuses a query-based
 * method without logged queries and calls the method's scorer. The scorers
 * themselves are in the policy files evict_<name>.c, one per policy.
 *
 * Everything is double, sequential, in index order (no threads inside). */
#include "kv/evict.h"
#include <math.h>

static const char *const names[LB_EVICT_NMETHODS] = {
    "random", "streaming", "knorm", "snapkv", "tova", "observed", "keydiff", "paged", "expected"};

static lb__evict_score_fn *const scorers[LB_EVICT_NMETHODS] = {
    lb__score_random, lb__score_streaming, lb__score_knorm,  lb__score_snapkv, lb__score_tova,
    lb__score_observed, lb__score_keydiff, lb__score_paged, lb__score_expected};

const char *lb__evict_method_name(lb__evict_method m)
{
    return m >= 0 && m < LB_EVICT_NMETHODS ? names[m] : "?";
}

void lb__evict_defaults(lb__evict_params *p, lb__evict_method m)
{
    *p = (lb__evict_params){.method = m, .ratio = 0.5, .n_sink = 4, .window = 64, .kernel = 5, .page = 16,
                            .n_future = 512, .qbuf = 0, .eps = 0, .cov = true, .vnorm = true,
                            .ada_alpha = -1, .seed = 0};
}

double lb__evict_norm(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

double lb__evict_dot(const float *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static bool needs_queries(lb__evict_method m)
{
    return m == LB_EVICT_SNAPKV || m == LB_EVICT_TOVA || m == LB_EVICT_OBSERVED || m == LB_EVICT_EXPECTED;
}

int64_t lb__evict_scratch(const lb__evict_params *p, const lb__evict_head *h)
{
    int64_t d = h->hd;
    switch (p->method) {
    case LB_EVICT_KEYDIFF: return d;
    case LB_EVICT_SNAPKV: case LB_EVICT_TOVA: case LB_EVICT_OBSERVED: return 3 * h->T + d;
    case LB_EVICT_EXPECTED: return 2 * h->T + 4 * d + d * d;
    default: return 0;
    }
}

/* w[j] = softmax_j(q.k_j / sqrt(d)) over the tokens visible from qp
 * (pos_j <= qp), 0 for the others; q in double. */
static void attend_row(const lb__evict_head *h, const double *q, int64_t qp, double *w)
{
    double mx = -INFINITY, sum = 0, inv = 1.0 / sqrt((double)h->hd);
    for (int64_t j = 0; j < h->T; j++) {
        w[j] = h->pos[j] <= qp ? lb__evict_dot(h->k + j * h->hd, q, h->hd) * inv : -INFINITY;
        if (w[j] > mx) mx = w[j];
    }
    for (int64_t j = 0; j < h->T; j++) {
        w[j] = w[j] == -INFINITY ? 0 : exp(w[j] - mx);
        sum += w[j];
    }
    for (int64_t j = 0; j < h->T; j++) w[j] = sum > 0 ? w[j] / sum : 0;
}

void lb__evict_attend_sum(const lb__evict_head *h, int64_t i0, double *acc, double *cnt, double *scratch)
{
    double *w = scratch, *q = scratch + h->T;
    for (int64_t j = 0; j < h->T; j++) acc[j] = cnt[j] = 0;
    for (int64_t i = i0; i < h->nq; i++) {
        for (int64_t j = 0; j < h->T; j++) cnt[j] += h->pos[j] <= h->qpos[i];
        for (int64_t g = 0; g < h->group; g++) {
            const float *qf = h->q + i * h->qstride + g * h->hd;
            for (int64_t d = 0; d < h->hd; d++) q[d] = qf[d];
            attend_row(h, q, h->qpos[i], w);
            for (int64_t j = 0; j < h->T; j++) acc[j] += w[j];
        }
    }
}

lb_status lb__evict_score(const lb__evict_params *p, const lb__evict_head *h, float *score, double *scratch)
{
    if (h->T == 0) return LB_OK;
    if (needs_queries(p->method) && h->nq == 0)
        return lb__err(LB_ERR_ARG, "kv eviction '%s': no queries were logged to score with",
                       lb__evict_method_name(p->method));
    LB_ASSERT(p->method >= 0 && p->method < LB_EVICT_NMETHODS);
    return scorers[p->method](p, h, score, scratch);
}
