/* evict_expected.c: Expected Attention (kvpress ExpectedAttentionPress).
 * For each query head of the group: the pre-RoPE queries of the logged
 * tokens at positions >= sink (the latest qbuf) give the mean mu and the
 * population covariance S; R = the mean of the RoPE rotations of positions
 * next_pos .. next_pos + future - 1; z_j = (R mu).k_j/sqrt(d) +
 * k_j^T R S R^T k_j / (2d) (log E[exp(q.k/sqrt(d))] for Gaussian q); softmax
 * over the non-sink tokens; mean over the group; (s + eps) ||v_j||; sinks
 * +inf. Without a logged query past the sinks, (0 + eps) ||v_j||. */
#include "kv/evict.h"
#include "kv/kv.h"
#include <math.h>

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
            const float *qf = h->qpre ? h->qpre + i * h->qstride + g * h->hd : h->q + i * h->qstride + g * h->hd;
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
        z[j] = lb__evict_dot(k, mu, d) * inv;
        if (!p->cov) continue;
        double qf = 0;
        for (int64_t e = 0; e < d; e++) qf += (double)k[e] * lb__evict_dot(k, S + e * d, d);
        z[j] += 0.5 * qf / (double)d;
    }
}

lb_status lb__score_expected(const lb__evict_params *p, const lb__evict_head *h, float *score, double *s)
{
    int64_t T = h->T, d = h->hd;
    double *acc = s, *z = s + T, *mu = s + 2 * T, *c = mu + d, *sn = c + d, *q = sn + d, *S = q + d;
    for (int64_t j = 0; j < T; j++) acc[j] = 0;
    for (int64_t g = 0; g < h->group; g++) {
        /* no query past the sinks (a prompt no longer than them): this head
         * adds nothing, and with none the scores are (0 + eps) ||v|| */
        if (query_stats(p, h, g, mu, S, q, c, sn) == 0) continue;
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
        if (p->vnorm) v *= lb__evict_norm(h->v + j * d, d);
        score[j] = h->pos[j] < p->n_sink ? INFINITY : (float)v;
    }
    return LB_OK;
}

static const lb__kv_param params[] = {
    LB_EVICT_P_RATIO, LB_EVICT_P_ADA, LB_EVICT_P_FLOOR, LB_EVICT_P_EVERY, LB_EVICT_P_TARGET, LB_EVICT_P_SINK,
    {"future", "future positions the RoPE rotation is averaged over", 512, 1, 1e6, true, false, NULL, NULL},
    {"eps", "score = (expected attention + eps) * ||v||", 0, 0, 1, false, false, NULL, NULL}};
const lb__kv_policy lb__kv_evict_expected = LB_EVICT_ROW(
    "expected", "Expected Attention: expected softmax under the query distribution, times ||v||", params,
    LB_EVICT_QLOG);
