/* linalg_gemm.h: the body of lb__gemm_sub, included by linalg.c (baseline
 * x86-64: SSE2) and linalg_avx2.c (the same code built with AVX2, chosen at
 * run time). Elementwise multiply and subtract on GCC vector extensions,
 * never fused (C11 mode: -ffp-contract=off, also forced below), so both
 * builds give the scalar loop's results bit for bit. LB__GEMM_NAME names
 * the function. */
#include "core/core.h"
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

typedef double v4d __attribute__((vector_size(32)));
/* unaligned load / store (macros: a vector argument or return value would
 * change the ABI without AVX) */
#define LD4(v, p) memcpy(&(v), (p), sizeof(v4d))
#define ST4(p, v) memcpy((p), &(v), sizeof(v4d))

/* Columns [j, j + 4) of 4 rows: c[r][j..] -= sum_k a[r][k] b[k][j..], k in [k0, k1). */
static void gemm_sub_4x4(double *C, int64_t ldc, const double *A, int64_t lda, const double *B, int64_t ldb,
                         int64_t k0, int64_t k1, int64_t j)
{
    v4d c0, c1, c2, c3, b;
    LD4(c0, C + j); LD4(c1, C + ldc + j); LD4(c2, C + 2 * ldc + j); LD4(c3, C + 3 * ldc + j);
    for (int64_t k = k0; k < k1; k++) {
        LD4(b, B + k * ldb + j);
        c0 -= A[k] * b;
        c1 -= A[lda + k] * b;
        c2 -= A[2 * lda + k] * b;
        c3 -= A[3 * lda + k] * b;
    }
    ST4(C + j, c0); ST4(C + ldc + j, c1); ST4(C + 2 * ldc + j, c2); ST4(C + 3 * ldc + j, c3);
}

#ifdef LB__GEMM_WIDE
/* Columns [j, j + 8) of 4 rows (8 accumulators: enough independent
 * subtractions in flight to hide their latency; 16 vector registers). */
static void gemm_sub_4x8(double *C, int64_t ldc, const double *A, int64_t lda, const double *B, int64_t ldb,
                         int64_t k0, int64_t k1, int64_t j)
{
    v4d c0, c1, c2, c3, d0, d1, d2, d3, b, e;
    LD4(c0, C + j); LD4(c1, C + ldc + j); LD4(c2, C + 2 * ldc + j); LD4(c3, C + 3 * ldc + j);
    LD4(d0, C + j + 4); LD4(d1, C + ldc + j + 4); LD4(d2, C + 2 * ldc + j + 4); LD4(d3, C + 3 * ldc + j + 4);
    for (int64_t k = k0; k < k1; k++) {
        LD4(b, B + k * ldb + j);
        LD4(e, B + k * ldb + j + 4);
        double a0 = A[k], a1 = A[lda + k], a2 = A[2 * lda + k], a3 = A[3 * lda + k];
        c0 -= a0 * b; d0 -= a0 * e;
        c1 -= a1 * b; d1 -= a1 * e;
        c2 -= a2 * b; d2 -= a2 * e;
        c3 -= a3 * b; d3 -= a3 * e;
    }
    ST4(C + j, c0); ST4(C + ldc + j, c1); ST4(C + 2 * ldc + j, c2); ST4(C + 3 * ldc + j, c3);
    ST4(C + j + 4, d0); ST4(C + ldc + j + 4, d1); ST4(C + 2 * ldc + j + 4, d2); ST4(C + 3 * ldc + j + 4, d3);
}
#endif

/* One row, columns [j0, j1), k in [k0, k1) (upper: k <= j). */
static void gemm_sub_row(double *c, const double *a, const double *B, int64_t ldb, int64_t k0, int64_t k1,
                         int64_t j0, int64_t j1, bool upper)
{
    for (int64_t j = j0; j < j1; j++) {
        double v = c[j];
        int64_t kmax = upper && j + 1 < k1 ? j + 1 : k1;
        for (int64_t k = k0; k < kmax; k++) v -= a[k] * B[k * ldb + j];
        c[j] = v;
    }
}

/* Blocked over columns (LB__GJ) and k (LB__GK) so that the slice of B in use
 * stays in cache while every row of C passes over it; each element still
 * sees k in ascending order. (See lb__gemm_sub in core.h.) */
#define LB__GJ 256
#define LB__GK 64
void LB__GEMM_NAME(double *C, int64_t ldc, const double *A, int64_t lda, const double *B, int64_t ldb, int64_t m,
                  int64_t K, int64_t len, bool upper)
{
    for (int64_t jb = 0; jb < len; jb += LB__GJ) {
        int64_t je = lb__min64(jb + LB__GJ, len), je4 = jb + (je - jb) / 4 * 4;
        for (int64_t kb = 0; kb < K; kb += LB__GK) {
            int64_t ke = lb__min64(kb + LB__GK, K);
            if (upper && kb > je - 1) break;            /* B is zero there */
            int64_t r = 0;
            for (; r + 4 <= m; r += 4) {
                double *c = C + r * ldc;
                const double *a = A + r * lda;
                int64_t j = jb;
#ifdef LB__GEMM_WIDE
                for (; j + 8 <= je4; j += 8) {
                    if (upper && j + 4 < ke) {          /* in the triangle: 4 columns at a time */
                        for (int64_t h = j; h < j + 8; h += 4) {
                            int64_t k1 = h + 4 < ke ? h + 4 : ke;
                            if (k1 > kb) gemm_sub_4x4(c, ldc, a, lda, B, ldb, kb, k1, h);
                        }
                    } else
                        gemm_sub_4x8(c, ldc, a, lda, B, ldb, kb, ke, j);
                }
#endif
                for (; j < je4; j += 4) {
                    int64_t k1 = upper && j + 4 < ke ? j + 4 : ke;
                    if (k1 > kb) gemm_sub_4x4(c, ldc, a, lda, B, ldb, kb, k1, j);
                }
                for (int64_t t = 0; t < 4; t++) gemm_sub_row(c + t * ldc, a + t * lda, B, ldb, kb, ke, je4, je, upper);
            }
            for (; r < m; r++) gemm_sub_row(C + r * ldc, A + r * lda, B, ldb, kb, ke, jb, je, upper);
        }
    }
}

