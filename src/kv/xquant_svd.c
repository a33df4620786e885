/* xquant_svd.c: the left singular vectors XQuant's GQA down-projection
 * needs (xquant rank=r): U_r of [Wk Wv] (dim x 2 kv_dim), computed once per
 * layer when the cache is created.
 *
 * One-sided Jacobi (Hestenes): the columns a_p, a_q of A (m x n, n <= m) are
 * rotated pairwise until every pair is orthogonal,
 *   alpha = |a_p|^2, beta = |a_q|^2, gamma = a_p . a_q,
 *   zeta = (beta - alpha) / (2 gamma), t = sign(zeta) / (|zeta| + sqrt(1 + zeta^2)),
 *   c = 1 / sqrt(1 + t^2), s = c t,  a_p <- c a_p - s a_q,  a_q <- s a_p + c a_q,
 * sweeping all pairs in order until a sweep rotates nothing (|gamma| <=
 * 1e-14 sqrt(alpha beta)). Then A V = U S: the singular values are the
 * column norms and U's columns the normalized columns, taken in decreasing
 * order of singular value (ties: the lower column). Sequential double
 * arithmetic in a fixed order: the same bits on every machine and thread. */
#include "kv/kv.h"
#include <math.h>

#define SVD_SWEEPS 80

/* One sweep over all column pairs of a (column j at a + j m); true when some
 * pair was rotated. */
static bool sweep(double *a, int64_t m, int64_t n)
{
    bool rotated = false;
    for (int64_t p = 0; p < n - 1; p++)
        for (int64_t q = p + 1; q < n; q++) {
            double *ap = a + p * m, *aq = a + q * m, al = 0, be = 0, ga = 0;
            for (int64_t i = 0; i < m; i++) { al += ap[i] * ap[i]; be += aq[i] * aq[i]; ga += ap[i] * aq[i]; }
            if (ga == 0 || fabs(ga) <= 1e-14 * sqrt(al * be)) continue;
            rotated = true;
            double zeta = (be - al) / (2 * ga), t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
            double c = 1 / sqrt(1 + t * t), s = c * t;
            for (int64_t i = 0; i < m; i++) {
                double x = ap[i], y = aq[i];
                ap[i] = c * x - s * y;
                aq[i] = s * x + c * y;
            }
        }
    return rotated;
}

lb_status lb__xq_svd_left(const double *A, int64_t m, int64_t n, int64_t r, float *U)
{
    if (n < 1 || n > m || r < 1 || r > n)
        return lb__err(LB_ERR_ARG, "svd: %lld singular vectors of a %lld x %lld matrix (need 1 <= r <= n <= m)",
                       (long long)r, (long long)m, (long long)n);
    double *a = lb__alloc(sizeof(double) * (size_t)(m * n)), *sv = lb__alloc(sizeof(double) * (size_t)n);
    int64_t *ord = lb__alloc(sizeof(int64_t) * (size_t)n);
    if (!a || !sv || !ord) { LB_FREE(a); LB_FREE(sv); LB_FREE(ord); return LB_ERR_NOMEM; }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) a[j * m + i] = A[i * n + j];
    int it = 0;
    while (it < SVD_SWEEPS && sweep(a, m, n)) it++;
    lb_status s = LB_OK;
    if (it == SVD_SWEEPS) {
        s = lb__err(LB_ERR_ARG, "svd: one-sided Jacobi did not converge in %d sweeps (%lld x %lld)", SVD_SWEEPS,
                    (long long)m, (long long)n);
    } else {
        for (int64_t j = 0; j < n; j++) {
            double t = 0;
            for (int64_t i = 0; i < m; i++) t += a[j * m + i] * a[j * m + i];
            sv[j] = sqrt(t);
            ord[j] = j;
        }
        for (int64_t k = 0; k < r; k++) {   /* selection of the r largest, ties to the lower column */
            int64_t b = k;
            for (int64_t j = k + 1; j < n; j++)
                if (sv[ord[j]] > sv[ord[b]] || (sv[ord[j]] == sv[ord[b]] && ord[j] < ord[b])) b = j;
            int64_t tmp = ord[k]; ord[k] = ord[b]; ord[b] = tmp;
            const double *col = a + ord[k] * m;
            double inv = sv[ord[k]] > 0 ? 1 / sv[ord[k]] : 0;
            for (int64_t i = 0; i < m; i++) U[i * r + k] = (float)(col[i] * inv);
        }
    }
    LB_FREE(a); LB_FREE(sv); LB_FREE(ord);
    return s;
}
