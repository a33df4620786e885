/* linalg.c: the dense symmetric linear algebra the calibrated methods share
 * (GPTQ, MR-GPTQ, Qronos, SparseGPT): Cholesky factorization and the upper
 * Cholesky factor of an inverse. Double precision, sequential loops in a
 * fixed order, so results never depend on threads or ISA. */
#include "core/core.h"
#include <math.h>

lb_status lb__chol(double *a, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double *aj = a + j * n;
        double d = aj[j];
        for (int64_t k = 0; k < j; k++) d -= aj[k] * aj[k];
        if (!(d > 0) || !isfinite(d))
            return lb__err(LB_ERR_ARG, "matrix is not positive definite (pivot %lld of %lld is %g)", (long long)j,
                           (long long)n, d);
        double r = sqrt(d);
        aj[j] = r;
        for (int64_t i = j + 1; i < n; i++) {
            double *ai = a + i * n;
            double s = ai[j];
            for (int64_t k = 0; k < j; k++) s -= ai[k] * aj[k];
            ai[j] = s / r;
        }
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) a[i * n + j] = 0;
    return LB_OK;
}

lb_status lb__chol_inv_upper(double *a, int64_t n)
{
    lb_status s = lb__chol(a, n);           /* a = L, A = L L^T */
    if (s) return s;
    /* L^-1 in place (lower triangular), row by row */
    for (int64_t i = 0; i < n; i++) {
        double *li = a + i * n;
        double dii = 1.0 / li[i];
        for (int64_t j = 0; j < i; j++) {
            double t = 0;
            for (int64_t k = j; k < i; k++) t += li[k] * a[k * n + j];
            li[j] = -t * dii;
        }
        li[i] = dii;
    }
    /* A^-1 = L^-T L^-1 = M; its lower Cholesky factor is needed transposed.
     * Form M (symmetric) into a scratch-free layout: M[i][j] = sum_k>=max(i,j) Li[k][i] Li[k][j],
     * computed into the upper triangle (i <= j) while L^-1 stays in the lower. */
    double *m = lb__alloc((size_t)(n * n) * sizeof *m);
    if (!m) return LB_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++) {
            double t = 0;
            for (int64_t k = j; k < n; k++) t += a[k * n + i] * a[k * n + j];
            m[i * n + j] = m[j * n + i] = t;
        }
    s = lb__chol(m, n);                      /* M = C C^T, C lower */
    if (!s)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) a[i * n + j] = j >= i ? m[j * n + i] : 0;   /* U = C^T */
    LB_FREE(m);
    return s;
}
