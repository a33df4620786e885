/* sparse.h: the decode kernels of sparse weights (src/weights/sparse.c),
 * private to liblowbit.
 *
 * A sparse row stores only its kept values v[0..k) (in column order) and
 * which inputs they belong to: a bitmask of cols bits (bit c % 8 of byte
 * c / 8 set = input c kept) or a list of column indices. Its product with x
 * is defined as the canonical dot (kernels.h) of v with the kept inputs
 * x[c_0], x[c_1], ... x[c_{k-1}] in column order. The kernels below gather
 * those inputs; gathering only moves values, so every ISA gives the same
 * bits, and the dot then follows the canonical order of every ISA. */
#ifndef LB_KERNELS_SPARSE_H
#define LB_KERNELS_SPARSE_H

#include "kernels/kernels.h"

/* xk[0..k) = x at the inputs whose mask bit is set, in column order; returns
 * k. Writes nothing at or past xk[cols]. */
typedef int64_t (*lb__sparse_gather_fn)(const uint8_t *mask, const float *x, int64_t cols, float *xk);
int64_t lb__sparse_gather_ref(const uint8_t *mask, const float *x, int64_t cols, float *xk);
int64_t lb__sparse_gather_avx2(const uint8_t *mask, const float *x, int64_t cols, float *xk);
int64_t lb__sparse_gather_avx512(const uint8_t *mask, const float *x, int64_t cols, float *xk);
/* The gather of one ISA path (the reference where the CPU lacks it). */
lb__sparse_gather_fn lb__sparse_gather_for(lb_isa isa);

/* xk[i] = x[idx[i]] for i < k (index lists; the same code on every ISA). */
void lb__sparse_gather_idx(const uint16_t *idx, int64_t k, const float *x, float *xk);

/* Set bits of one mask byte. */
extern const uint8_t lb__popcount8[256];

#endif
