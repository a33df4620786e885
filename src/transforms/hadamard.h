/* hadamard.h: private interface of the Hadamard transforms (src/transforms).
 *
 * The orthonormal transform of order n = m * p (p = 2^k, m = 1 or the order
 * of a small Paley matrix H_m) is T = (H_m (x) H_p) / sqrt(n) with the
 * Sylvester matrix H_p[i][j] = (-1)^popcount(i & j). Element i = a*p + b of a
 * block sits at sub-block a, position b. The reference arithmetic, which every
 * ISA path reproduces bit for bit, is:
 *   1. the p-point unscaled FWHT on each of the m contiguous sub-blocks:
 *      stages h = 1, 2, 4, ... p/2; butterfly (x[j], x[j+h]) -> (a+b, a-b);
 *   2. when m > 1, for each b: y[a] = sum over c = 0..m-1 (left to right,
 *      starting from +-x[c=0]) of H_m[a][c] * x[c*p + b];
 *   3. one multiply of every element by s = (float)(1 / sqrt((double)n)).
 * Steps 2 and 3 may be fused (acc * s); the product is the same. */
#ifndef LB_TRANSFORMS_HADAMARD_H
#define LB_TRANSFORMS_HADAMARD_H

#include "core/core.h"

#define LB__HAD_MAX_M 148          /* largest small (Paley) order in the table */

typedef struct lb__fwht_kernels {
    /* count consecutive blocks of n = 2^k floats (n >= 2): unscaled FWHT of
     * each, then every element times scale (skipped when scale == 1). */
    void (*blocks)(float *x, int64_t n, int64_t count, float scale);
    /* FWHT along a strided dimension: for each lane l < lanes, the vector
     * x[i*stride + l], i < n (n = 2^k >= 2), then times scale as above. */
    void (*lanes)(float *x, int64_t n, int64_t stride, int64_t lanes, float scale);
    /* Dense small transform along a strided dimension: for each lane l,
     * x[a*stride + l] <- scale * sum_c H[a*m + c] * x[c*stride + l] (H holds
     * +-1.0f, summed left to right as in step 2, so acc + h*v, fused or not,
     * is exact up to the one rounding of acc +- v; scale == 1 skips the
     * multiply). */
    void (*small)(float *x, const float *H, int m, int64_t stride, int64_t lanes, float scale);
} lb__fwht_kernels;

extern const lb__fwht_kernels lb__fwht_ref;
extern const lb__fwht_kernels lb__fwht_avx2;
extern const lb__fwht_kernels lb__fwht_avx512;

/* Kernels for a path (ISA not compiled in or not supported: the reference). */
const lb__fwht_kernels *lb__fwht_for(lb_isa isa);

/* The m x m matrix (entries +-1.0f, row-major) of a small order m from the
 * table, or its transpose; NULL when m is not in the table (or when building
 * it ran out of memory). Built once per order, read-only afterwards. */
const float *lb__hadamard_small(int m, bool transpose);
/* How a small order is built: q and the Paley kind (1 or 2); false if absent. */
bool lb__hadamard_small_recipe(int m, int *q, int *kind);

#endif
