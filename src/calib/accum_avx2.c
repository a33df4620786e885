/* accum_avx2.c: the AVX2 path of the statistics accumulation (collect.c):
 * row i of M += sum_t a[t][i] * b[t][j..n) over the T tokens of a sequence.
 * Each element is one chain of additions in token order, as in the
 * reference (acc_row in collect.c); the products of two floats are exact in
 * double, so FMA and multiply-then-add round alike and the result is
 * bit-identical to the reference. Sixteen columns are held in four
 * registers across all T tokens, so H is read and written once per
 * sequence, not once per token. */
#include "calib/calib.h"
#include <immintrin.h>

void lb__calib_acc_row_avx2(double *M, const float *a, const float *b, int64_t n, int64_t T, int64_t i, int64_t j0)
{
    double *h = M + i * n;
    int64_t j = j0;
    for (; j + 16 <= n; j += 16) {
        __m256d c0 = _mm256_loadu_pd(h + j), c1 = _mm256_loadu_pd(h + j + 4);
        __m256d c2 = _mm256_loadu_pd(h + j + 8), c3 = _mm256_loadu_pd(h + j + 12);
        for (int64_t t = 0; t < T; t++) {
            __m256d av = _mm256_set1_pd((double)a[t * n + i]);
            const float *bt = b + t * n + j;
            c0 = _mm256_fmadd_pd(av, _mm256_cvtps_pd(_mm_loadu_ps(bt)), c0);
            c1 = _mm256_fmadd_pd(av, _mm256_cvtps_pd(_mm_loadu_ps(bt + 4)), c1);
            c2 = _mm256_fmadd_pd(av, _mm256_cvtps_pd(_mm_loadu_ps(bt + 8)), c2);
            c3 = _mm256_fmadd_pd(av, _mm256_cvtps_pd(_mm_loadu_ps(bt + 12)), c3);
        }
        _mm256_storeu_pd(h + j, c0); _mm256_storeu_pd(h + j + 4, c1);
        _mm256_storeu_pd(h + j + 8, c2); _mm256_storeu_pd(h + j + 12, c3);
    }
    for (; j + 4 <= n; j += 4) {
        __m256d c0 = _mm256_loadu_pd(h + j);
        for (int64_t t = 0; t < T; t++)
            c0 = _mm256_fmadd_pd(_mm256_set1_pd((double)a[t * n + i]), _mm256_cvtps_pd(_mm_loadu_ps(b + t * n + j)), c0);
        _mm256_storeu_pd(h + j, c0);
    }
    for (; j < n; j++) {
        double s = h[j];
        for (int64_t t = 0; t < T; t++) s = fma((double)a[t * n + i], (double)b[t * n + j], s);
        h[j] = s;
    }
}
