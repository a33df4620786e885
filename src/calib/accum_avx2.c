/* accum_avx2.c: the AVX2 path of the statistics accumulation (collect.c):
 * rows i0 .. i0+nr-1 (nr <= 4) of M += sum over t < T of a[t][i] * b[t][j],
 * j in [j0, n), inputs already in double.
 *
 * Each element is one chain of additions in token order, as in the
 * reference (lb__calib_acc_rows_ref); the inputs are floats widened to
 * double, so every product is exact and FMA rounds like multiply-then-add:
 * the result is bit-identical to the reference. Four rows x eight columns
 * stay in registers across the T tokens, so each load of b feeds four FMAs
 * (the caller cuts the tokens into chunks that keep b in cache). */
#include "calib/calib.h"
#include <immintrin.h>

/* One row, columns [j, n). */
static void row_rest(double *h, const double *a, const double *b, int64_t n, int64_t T, int64_t i, int64_t j)
{
    for (; j + 4 <= n; j += 4) {
        __m256d c = _mm256_loadu_pd(h + j);
        for (int64_t t = 0; t < T; t++)
            c = _mm256_fmadd_pd(_mm256_broadcast_sd(a + t * n + i), _mm256_loadu_pd(b + t * n + j), c);
        _mm256_storeu_pd(h + j, c);
    }
    for (; j < n; j++) {
        double s = h[j];
        for (int64_t t = 0; t < T; t++) s = fma(a[t * n + i], b[t * n + j], s);
        h[j] = s;
    }
}

void lb__calib_acc_rows_avx2(double *M, const double *a, const double *b, int64_t n, int64_t T, int64_t i0,
                             int64_t nr, int64_t j0)
{
    int64_t j = j0;
    if (nr == 4) {
        double *m0 = M + i0 * n, *m1 = m0 + n, *m2 = m1 + n, *m3 = m2 + n;
        for (; j + 8 <= n; j += 8) {
            __m256d c00 = _mm256_loadu_pd(m0 + j), c01 = _mm256_loadu_pd(m0 + j + 4);
            __m256d c10 = _mm256_loadu_pd(m1 + j), c11 = _mm256_loadu_pd(m1 + j + 4);
            __m256d c20 = _mm256_loadu_pd(m2 + j), c21 = _mm256_loadu_pd(m2 + j + 4);
            __m256d c30 = _mm256_loadu_pd(m3 + j), c31 = _mm256_loadu_pd(m3 + j + 4);
            for (int64_t t = 0; t < T; t++) {
                const double *bt = b + t * n + j, *at = a + t * n + i0;
                __m256d b0 = _mm256_loadu_pd(bt), b1 = _mm256_loadu_pd(bt + 4);
                __m256d v = _mm256_broadcast_sd(at);
                c00 = _mm256_fmadd_pd(v, b0, c00); c01 = _mm256_fmadd_pd(v, b1, c01);
                v = _mm256_broadcast_sd(at + 1);
                c10 = _mm256_fmadd_pd(v, b0, c10); c11 = _mm256_fmadd_pd(v, b1, c11);
                v = _mm256_broadcast_sd(at + 2);
                c20 = _mm256_fmadd_pd(v, b0, c20); c21 = _mm256_fmadd_pd(v, b1, c21);
                v = _mm256_broadcast_sd(at + 3);
                c30 = _mm256_fmadd_pd(v, b0, c30); c31 = _mm256_fmadd_pd(v, b1, c31);
            }
            _mm256_storeu_pd(m0 + j, c00); _mm256_storeu_pd(m0 + j + 4, c01);
            _mm256_storeu_pd(m1 + j, c10); _mm256_storeu_pd(m1 + j + 4, c11);
            _mm256_storeu_pd(m2 + j, c20); _mm256_storeu_pd(m2 + j + 4, c21);
            _mm256_storeu_pd(m3 + j, c30); _mm256_storeu_pd(m3 + j + 4, c31);
        }
    }
    for (int64_t r = 0; r < nr; r++) row_rest(M + (i0 + r) * n, a, b, n, T, i0 + r, j);
}
