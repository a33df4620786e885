/* score.c: eviction scorers, one (layer, kv-head) at a time (see evict.h).
 *
 *   random        uniform(0,1) from lb_rng(seed)
 *   streaming     sinks (position < n_sink) +inf, else the cache index: the
 *                 most recent tokens win (StreamingLLM)
 *   knorm         -||k||
 *   keydiff       -cos(k, a), a = mean_t k_t/||k_t|| over the held tokens
 *   paged         ||v|| / ||k||; the first page and the last (partial) page
 *                 +inf (PagedEviction's prefill; whole pages at decode are
 *                 lb__evict_paged_pick)
 *   snapkv        the last w = min(window, nq, T) logged queries attend
 *                 causally (pos_j <= qpos_i, softmax over all held tokens);
 *                 the mean over those w queries of the first T-w tokens is
 *                 avg-pooled (kernel k, zero padded, divided by k), averaged
 *                 over the GQA group; the last w tokens +inf
 *   tova          attention of the last logged query, mean over the group
 *                 (evict.c averages over the layer when heads hold the same
 *                 tokens, as kvpress); the last token +inf
 *   observed      sum over logged queries of the attention to token j,
 *                 divided by the number of them that see j, mean over group
 *   expected      pre-RoPE query mean mu and population covariance S over the
 *                 logged queries (positions >= n_sink, latest qbuf); R = mean
 *                 of the RoPE rotations of positions next_pos..+n_future;
 *                 z_j = (R mu).k_j/sqrt(d) + k_j^T R S R^T k_j/(2d); softmax
 *                 over the non-sink j, mean over group, (s + eps) ||v_j||;
 *                 sinks +inf
 *
 * Everything is double, sequential, in index order. */
#include "kv/evict.h"
#include <math.h>

static const char *const names[LB_EVICT_NMETHODS] = {
    "random", "streaming", "knorm", "snapkv", "tova", "observed", "keydiff", "paged", "expected"};

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

static double norm2(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

static double dot(const float *a, const double *b, int64_t n)
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
        w[j] = h->pos[j] <= qp ? dot(h->k + j * h->hd, q, h->hd) * inv : -INFINITY;
        if (w[j] > mx) mx = w[j];
    }
    for (int64_t j = 0; j < h->T; j++) {
        w[j] = w[j] == -INFINITY ? 0 : exp(w[j] - mx);
        sum += w[j];
    }
    for (int64_t j = 0; j < h->T; j++) w[j] = sum > 0 ? w[j] / sum : 0;
}

static const float *qrow(const lb__evict_head *h, int64_t i, int64_t g)
{
    return h->q + i * h->qstride + g * h->hd;
}

/* acc[j] = sum over query heads g and logged queries i in [i0, nq) of the
 * attention of (i, g) to j; cnt[j] = how many of those queries i see j. */
static void attend_sum(const lb__evict_head *h, int64_t i0, double *acc, double *cnt, double *w, double *q)
{
    for (int64_t j = 0; j < h->T; j++) acc[j] = cnt[j] = 0;
    for (int64_t i = i0; i < h->nq; i++) {
        for (int64_t j = 0; j < h->T; j++) cnt[j] += h->pos[j] <= h->qpos[i];
        for (int64_t g = 0; g < h->group; g++) {
            const float *qf = qrow(h, i, g);
            for (int64_t d = 0; d < h->hd; d++) q[d] = qf[d];
            attend_row(h, q, h->qpos[i], w);
            for (int64_t j = 0; j < h->T; j++) acc[j] += w[j];
        }
    }
}

static void score_snapkv(const lb__evict_params *p, const lb__evict_head *h, float *score, double *s)
{
    int64_t T = h->T, w = lb__min64(lb__min64(p->window, h->nq), T), n = T - w, r = p->kernel / 2;
    double *acc = s, *cnt = s + T, *row = s + 2 * T, *q = s + 3 * T;
    attend_sum(h, h->nq - w, acc, cnt, row, q);
    for (int64_t j = 0; j < n; j++) {
        double t = 0;
        for (int64_t i = j - r; i <= j + r; i++)
            if (i >= 0 && i < n) t += acc[i];
        score[j] = (float)(t / (double)p->kernel / (double)w / (double)h->group);
    }
    for (int64_t j = n; j < T; j++) score[j] = INFINITY;
}

static void score_attn(const lb__evict_params *p, const lb__evict_head *h, float *score, double *s)
{
    int64_t T = h->T;
    double *acc = s, *cnt = s + T, *row = s + 2 * T, *q = s + 3 * T;
    attend_sum(h, p->method == LB_EVICT_TOVA ? h->nq - 1 : 0, acc, cnt, row, q);
    for (int64_t j = 0; j < T; j++)
        score[j] = (float)(cnt[j] > 0 ? acc[j] / cnt[j] / (double)h->group : 0);
    if (p->method == LB_EVICT_TOVA && T > 0) score[T - 1] = INFINITY;
}

/* Pair i of the RoPE layout: coordinates a(i), b(i). */
static void pair(const lb__evict_head *h, int64_t i, int64_t *a, int64_t *b)
{
    *a = h->rope_interleaved ? 2 * i : i;
    *b = h->rope_interleaved ? 2 * i + 1 : i + h->hd / 2;
}

/* x <- the 2x2 rotation (c, s) of every pair: x_a' = c x_a - s x_b,
 * x_b' = s x_a + c x_b (forward.c's rope_head); c, s per pair. Stride st
 * between the coordinates of x (1 for a vector, d for a matrix column). */
static void rotate(const lb__evict_head *h, double *x, int64_t st, const double *c, const double *sn)
{
    for (int64_t i = 0; i < h->hd / 2; i++) {
        int64_t a, b;
        pair(h, i, &a, &b);
        double x0 = x[a * st], x1 = x[b * st];
        x[a * st] = c[i] * x0 - sn[i] * x1;
        x[b * st] = sn[i] * x0 + c[i] * x1;
    }
}

/* mu (d), S (d x d) of the pre-RoPE queries of head g: each logged query
 * (position >= n_sink, the latest qbuf) rotated back by its position; the
 * population covariance. Returns how many queries were used. */
static int64_t query_stats(const lb__evict_params *p, const lb__evict_head *h, int64_t g, double *mu, double *S,
                           double *q, double *c, double *sn)
{
    int64_t d = h->hd, n = 0, i0 = p->qbuf > 0 ? lb__max64(0, h->nq - p->qbuf) : 0;
    for (int64_t e = 0; e < d; e++) mu[e] = 0;
    for (int64_t e = 0; e < d * d; e++) S[e] = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t i = i0; i < h->nq; i++) {
            if (h->qpos[i] < p->n_sink) continue;
            const float *qf = h->qpre ? h->qpre + i * h->qstride + g * h->hd : qrow(h, i, g);
            for (int64_t e = 0; e < d; e++) q[e] = qf[e];
            if (!h->qpre) {
                for (int64_t k = 0; k < d / 2; k++) {
                    double a = (double)h->qpos[i] * h->inv_freq[k];
                    c[k] = cos(a);
                    sn[k] = -sin(a);
                }
                rotate(h, q, 1, c, sn);
            }
            if (pass == 0) {
                for (int64_t e = 0; e < d; e++) mu[e] += q[e];
                n++;
            } else {
                for (int64_t e = 0; e < d; e++)
                    for (int64_t f = 0; f < d; f++) S[e * d + f] += (q[e] - mu[e]) * (q[f] - mu[f]);
            }
        }
        for (int64_t e = 0; e < (pass ? d * d : d) && n > 0; e++) (pass ? S : mu)[e] /= (double)n;
    }
    return n;
}

/* c[k], sn[k] = mean over t in [next_pos, next_pos + n_future) of
 * cos, sin (t inv_freq[k]). */
static void mean_rotation(const lb__evict_params *p, const lb__evict_head *h, double *c, double *sn)
{
    for (int64_t k = 0; k < h->hd / 2; k++) {
        double cs = 0, ss = 0;
        for (int64_t t = 0; t < p->n_future; t++) {
            double a = (double)(h->next_pos + t) * h->inv_freq[k];
            cs += cos(a);
            ss += sin(a);
        }
        c[k] = cs / (double)p->n_future;
        sn[k] = ss / (double)p->n_future;
    }
}

/* z[j] = mu.k_j/sqrt(d) + k_j^T S k_j/(2d) (the covariance term when cov). */
static void expected_logits(const lb__evict_params *p, const lb__evict_head *h, const double *mu,
                            const double *S, double *z)
{
    int64_t d = h->hd;
    double inv = 1.0 / sqrt((double)d);
    for (int64_t j = 0; j < h->T; j++) {
        const float *k = h->k + j * d;
        z[j] = dot(k, mu, d) * inv;
        if (!p->cov) continue;
        double qf = 0;
        for (int64_t e = 0; e < d; e++) qf += (double)k[e] * dot(k, S + e * d, d);
        z[j] += 0.5 * qf / (double)d;
    }
}

static lb_status score_expected(const lb__evict_params *p, const lb__evict_head *h, float *score, double *s)
{
    int64_t T = h->T, d = h->hd;
    double *acc = s, *z = s + T, *mu = s + 2 * T, *c = mu + d, *sn = c + d, *q = sn + d, *S = q + d;
    for (int64_t j = 0; j < T; j++) acc[j] = 0;
    for (int64_t g = 0; g < h->group; g++) {
        if (query_stats(p, h, g, mu, S, q, c, sn) == 0)
            return lb__err(LB_ERR_ARG, "kv eviction 'expected': no logged query past the %lld sink tokens",
                           (long long)p->n_sink);
        mean_rotation(p, h, c, sn);
        rotate(h, mu, 1, c, sn);
        for (int64_t col = 0; col < d; col++) rotate(h, S + col, d, c, sn);     /* R S */
        for (int64_t row = 0; row < d; row++) rotate(h, S + row * d, 1, c, sn); /* (R S) R^T */
        expected_logits(p, h, mu, S, z);
        /* softmax over the tokens past the sinks (kvpress drops the sinks first) */
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < T; j++) if (h->pos[j] >= p->n_sink) mx = z[j] > mx ? z[j] : mx;
        for (int64_t j = 0; j < T; j++) {
            z[j] = h->pos[j] >= p->n_sink ? exp(z[j] - mx) : 0;
            sum += z[j];
        }
        for (int64_t j = 0; j < T; j++) acc[j] += sum > 0 ? z[j] / sum : 0;
    }
    for (int64_t j = 0; j < T; j++) {
        double v = acc[j] / (double)h->group + p->eps;
        if (p->vnorm) v *= norm2(h->v + j * d, d);
        score[j] = h->pos[j] < p->n_sink ? INFINITY : (float)v;
    }
    return LB_OK;
}

static void score_keydiff(const lb__evict_head *h, float *score, double *a)
{
    int64_t d = h->hd;
    for (int64_t e = 0; e < d; e++) a[e] = 0;
    for (int64_t j = 0; j < h->T; j++) {
        double n = norm2(h->k + j * d, d);
        for (int64_t e = 0; e < d && n > 0; e++) a[e] += h->k[j * d + e] / n;
    }
    for (int64_t e = 0; e < d; e++) a[e] /= (double)h->T;
    double an = 0;
    for (int64_t e = 0; e < d; e++) an += a[e] * a[e];
    an = sqrt(an);
    for (int64_t j = 0; j < h->T; j++) {
        double kn = norm2(h->k + j * d, d);
        score[j] = kn > 0 && an > 0 ? (float)(-dot(h->k + j * d, a, d) / (kn * an)) : 0.0f;
    }
}

static void score_plain(const lb__evict_params *p, const lb__evict_head *h, float *score)
{
    int64_t T = h->T, d = h->hd, P = p->page;
    lb_rng r;
    if (p->method == LB_EVICT_RANDOM) lb_rng_seed(&r, p->seed);
    for (int64_t j = 0; j < T; j++) {
        switch (p->method) {
        case LB_EVICT_RANDOM: score[j] = (float)lb_rng_uniform(&r); break;
        case LB_EVICT_STREAMING: score[j] = h->pos[j] < p->n_sink ? INFINITY : (float)j; break;
        case LB_EVICT_KNORM: score[j] = (float)-norm2(h->k + j * d, d); break;
        default: {   /* paged */
            double kn = norm2(h->k + j * d, d), vn = norm2(h->v + j * d, d);
            bool edge = j < P || j >= (T - 1) / P * P;
            score[j] = edge ? INFINITY : (float)(kn > 0 ? vn / kn : INFINITY);
        }
        }
    }
}

lb_status lb__evict_score(const lb__evict_params *p, const lb__evict_head *h, float *score, double *scratch)
{
    if (h->T == 0) return LB_OK;
    if (needs_queries(p->method) && h->nq == 0)
        return lb__err(LB_ERR_ARG, "kv eviction '%s': no queries were logged to score with",
                       lb__evict_method_name(p->method));
    switch (p->method) {
    case LB_EVICT_SNAPKV: score_snapkv(p, h, score, scratch); return LB_OK;
    case LB_EVICT_TOVA: case LB_EVICT_OBSERVED: score_attn(p, h, score, scratch); return LB_OK;
    case LB_EVICT_EXPECTED: return score_expected(p, h, score, scratch);
    case LB_EVICT_KEYDIFF: score_keydiff(h, score, scratch); return LB_OK;
    default: score_plain(p, h, score); return LB_OK;
    }
}
