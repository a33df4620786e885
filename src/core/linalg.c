/* linalg.c: the dense symmetric linear algebra the calibrated methods share
 * (GPTQ, MR-GPTQ, Qronos, SparseGPT): Cholesky factorization and the upper
 * Cholesky factor of an inverse. Double precision, sequential loops in a
 * fixed order, so results never depend on threads or ISA.
 *
 * The fast paths are built on one kernel, lb__gemm_sub: C -= A B with every
 * element of C receiving c = c - a_k * b_k for k ascending, one rounding for
 * the product and one for the difference (never fused: C11 mode keeps
 * -ffp-contract=off). The kernel works on 4 rows x 4 columns at a time with
 * GCC vector extensions (SSE2 on any x86-64), which changes where values sit,
 * never the arithmetic, so it equals the scalar loop bit for bit. */
#include "core/core.h"
#include <math.h>

#define LB__GEMM_NAME gemm_sub_base
#include "core/linalg_gemm.h"
void lb__gemm_sub_avx2(double *C, int64_t ldc, const double *A, int64_t lda, const double *B, int64_t ldb, int64_t m,
                       int64_t K, int64_t len, bool upper);

void lb__gemm_sub(double *C, int64_t ldc, const double *A, int64_t lda, const double *B, int64_t ldb, int64_t m,
                  int64_t K, int64_t len, bool upper)
{
    if (lb_isa_active() >= LB_ISA_AVX2) lb__gemm_sub_avx2(C, ldc, A, lda, B, ldb, m, K, len, upper);
    else gemm_sub_base(C, ldc, A, lda, B, ldb, m, K, len, upper);
}

/* y[0..n) -= a x[0..n), the same arithmetic as the kernel. */
static void axpy_sub(double *y, double a, const double *x, int64_t n)
{
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        v4d u, v;
        LD4(u, y + j);
        LD4(v, x + j);
        u -= a * v;
        ST4(y + j, u);
    }
    for (; j < n; j++) y[j] -= a * x[j];
}

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

/* Upper Cholesky factor R of a (a = R^T R) in place, by tiles of T rows:
 * the contributions of the rows above a tile come from the kernel, those
 * inside it row by row; every R[j][i] sees k = 0, 1, ..., j-1 in order. The
 * lower triangle is zeroed. at (T x n) is scratch for the tile's column of R. */
#define LB__TILE 32
static lb_status chol_upper(double *a, int64_t n, double *at)
{
    for (int64_t j0 = 0; j0 < n; j0 += LB__TILE) {
        int64_t j1 = lb__min64(j0 + LB__TILE, n), t = j1 - j0;
        for (int64_t r = 0; r < t; r++)
            for (int64_t k = 0; k < j0; k++) at[r * j0 + k] = a[k * n + j0 + r];
        if (j0) lb__gemm_sub(a + j0 * n + j0, n, at, j0, a + j0, n, t, j0, n - j0, false);
        for (int64_t j = j0; j < j1; j++) {
            double *aj = a + j * n;
            for (int64_t k = j0; k < j; k++) axpy_sub(aj + j, a[k * n + j], a + k * n + j, n - j);
            double d = aj[j];
            if (!(d > 0) || !isfinite(d))
                return lb__err(LB_ERR_ARG, "matrix is not positive definite (pivot %lld of %lld is %g)", (long long)j,
                               (long long)n, d);
            double rd = sqrt(d);
            aj[j] = rd;
            for (int64_t i = j + 1; i < n; i++) aj[i] /= rd;
        }
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) a[i * n + j] = 0;
    return LB_OK;
}

/* y <- R^-1 (R upper, y upper; the two do not overlap), bottom tile first:
 * row i of y is (e_i - sum_{k>i} R[i][k] y_k) / R[i][i], the rows below the
 * tile through the kernel (k ascending), those inside it from the nearest. */
static void inv_upper(const double *R, double *y, int64_t n)
{
    memset(y, 0, (size_t)(n * n) * sizeof *y);
    for (int64_t i1 = n; i1 > 0; i1 -= LB__TILE) {
        int64_t i0 = lb__max64(i1 - LB__TILE, 0);
        for (int64_t i = i0; i < i1; i++) y[i * n + i] = 1;
        if (i1 < n) lb__gemm_sub(y + i0 * n + i1, n, R + i0 * n + i1, n, y + i1 * n + i1, n, i1 - i0, n - i1, n - i1,
                                 true);
        for (int64_t i = i1 - 1; i >= i0; i--) {
            double *yi = y + i * n;
            for (int64_t k = i + 1; k < i1; k++) axpy_sub(yi + k, R[i * n + k], y + k * n + k, n - k);
            double rd = R[i * n + i];
            for (int64_t j = i; j < n; j++) yi[j] /= rd;
        }
    }
}

/* With J the order reversal: J a J = R^T R, so a = (J R^T J)(J R J) = Ubar
 * Ubar^T with Ubar = J R^T J upper, and a^-1 = U^T U for U = Ubar^-1 =
 * J (R^-1)^T J: U[i][j] = R^-1[n-1-j][n-1-i]. One Cholesky and one
 * triangular inverse (n^3/3 multiply-adds), no second factorization. */
lb_status lb__chol_inv_upper(double *a, int64_t n)
{
    double *r = lb__alloc((size_t)(n * n) * sizeof *r), *at = lb__alloc((size_t)(LB__TILE * n) * sizeof *at);
    lb_status s = r && at ? LB_OK : LB_ERR_NOMEM;
    if (!s) {
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) r[i * n + j] = a[(n - 1 - i) * n + (n - 1 - j)];
        s = chol_upper(r, n, at);
    }
    if (!s) {
        inv_upper(r, a, n);              /* a <- R^-1 */
        for (int64_t i = 0; i < n; i++)  /* r <- U */
            for (int64_t j = 0; j < n; j++) r[i * n + j] = a[(n - 1 - j) * n + (n - 1 - i)];
        memcpy(a, r, (size_t)(n * n) * sizeof *a);
    }
    LB_FREE(r);
    LB_FREE(at);
    return s;
}
