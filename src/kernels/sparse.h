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

/* The fused decode dot of a row whose mask bytes all hold exactly p set
 * bits (p = 1, 2, 4 or 8; cols a multiple of 8: 2:4, 1:4, 4:8, V:2:8 ...):
 * the kept inputs are permuted straight into the 16 canonical lanes (no
 * buffer); vals holds the row's cols / 8 * p kept values of dtype dt. The
 * same bits as the canonical dot of vals with the gathered inputs. */
typedef float (*lb__sparse_udot_fn)(const uint8_t *mask, int p, const void *vals, lb_dtype dt, const float *x,
                                    int64_t cols);
float lb__sparse_udot_avx2(const uint8_t *mask, int p, const void *vals, lb_dtype dt, const float *x, int64_t cols);
/* The fused kernel of an ISA path, or NULL (the reference: gather + dot). */
lb__sparse_udot_fn lb__sparse_udot_for(lb_isa isa);

/* Set bits of one mask byte. */
extern const uint8_t lb__popcount8[256];

#endif
