/* kernels.h: matrix-vector and matrix-matrix products y = W x for weights in
 * F32, F16 or BF16 (row-major [rows, cols], converted to F32 on the fly) and
 * F32 activations. Private to liblowbit.
 *
 * Canonical summation order (the specification every ISA path follows, so
 * results are bit-identical across ISAs, thread counts, and between prefill
 * and decode): a dot product of n elements keeps 16 lane partial sums, all
 * starting at +0. Lane j accumulates the products of elements j, j+16,
 * j+32, ... in that order with a fused multiply-add (one rounding per step).
 * The last block is zero-padded to 16 (a padded lane still executes
 * fma(0, 0, s)). The 16 lanes are then reduced by a fixed pairwise tree:
 * s[j] += s[j+8] (j < 8), s[j] += s[j+4] (j < 4), s[j] += s[j+2] (j < 2),
 * s[0] += s[1]. BF16/F16 -> F32 conversion is exact, so the order alone fixes
 * the result. See docs/engine.md. */
#ifndef LB_KERNELS_H
#define LB_KERNELS_H

#include "model/model.h"

#define LB_DOT_LANES 16

/* Y[t, r] = sum_c W[r, c] * X[t, c] for rows r in [r0, r1) and tokens
 * t in [0, nt). X has row stride xs floats, Y row stride ys floats
 * (y[t * ys + r]). Single-threaded; one such function per ISA. */
typedef void (*lb_matmul_rows_fn)(const lb_weight *w, int64_t r0, int64_t r1, const float *x, int64_t nt,
                                  int64_t xs, float *y, int64_t ys);
/* Canonical dot product of two F32 vectors of n elements. */
typedef float (*lb_dot_fn)(const float *a, const float *b, int64_t n);

/* y[i] = y[i] + a * x[i]: a multiply then an add (two roundings, no FMA),
 * elementwise, so every ISA path gives the same bits. */
typedef void (*lb_axpy_fn)(float a, const float *x, float *y, int64_t n);

/* Attention scores: out[p] = dot(q, k + p * ks, n) for p in [0, np), each
 * the canonical dot of n elements (bit-identical to lb_dot_fn). */
typedef void (*lb_dots_fn)(const float *q, const float *k, int64_t ks, int64_t n, int64_t np, float *out);

/* Weighted sum of rows: o[i] = +0, then for p = 0 .. np-1 in order
 * o[i] = o[i] + w[p] * v[p * vs + i] (a multiply then an add, as lb_axpy_fn:
 * elementwise, the same bits on every path), for i in [0, n). */
typedef void (*lb_wsum_fn)(const float *w, const float *v, int64_t vs, int64_t np, int64_t n, float *o);

typedef struct lb_kernels {
    lb_matmul_rows_fn matmul_rows;
    lb_dot_fn dot;
    lb_axpy_fn axpy;
    lb_dots_fn dots;
    lb_wsum_fn wsum;
} lb_kernels;

/* The kernels of one ISA path (falls back to the reference where the CPU
 * lacks the path), and those of the active path (lb_isa_active()). */
const lb_kernels *lb__kernels_for(lb_isa isa);
const lb_kernels *lb__kernels(void);

void lb__matmul_rows_ref(const lb_weight *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                         float *y, int64_t ys);
float lb__dot_ref(const float *a, const float *b, int64_t n);
void lb__axpy_ref(float a, const float *x, float *y, int64_t n);
void lb__dots_ref(const float *q, const float *k, int64_t ks, int64_t n, int64_t np, float *out);
void lb__dots_avx2(const float *q, const float *k, int64_t ks, int64_t n, int64_t np, float *out);
void lb__dots_avx512(const float *q, const float *k, int64_t ks, int64_t n, int64_t np, float *out);
void lb__wsum_ref(const float *w, const float *v, int64_t vs, int64_t np, int64_t n, float *o);
void lb__wsum_avx2(const float *w, const float *v, int64_t vs, int64_t np, int64_t n, float *o);
void lb__wsum_avx512(const float *w, const float *v, int64_t vs, int64_t np, int64_t n, float *o);
void lb__axpy_avx2(float a, const float *x, float *y, int64_t n);
void lb__axpy_avx512(float a, const float *x, float *y, int64_t n);
void lb__matmul_rows_avx2(const lb_weight *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                          float *y, int64_t ys);
float lb__dot_avx2(const float *a, const float *b, int64_t n);
void lb__matmul_rows_avx512(const lb_weight *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                            float *y, int64_t ys);
float lb__dot_avx512(const float *a, const float *b, int64_t n);
/* Prefill inputs (F32 weights) at least this wide use the AVX-512 4x6 tile
 * (default 1280; tests set 0 to run it at every width). */
extern int lb__avx512_wide_cols;

/* Multithreaded Y = X W^T over all rows of w (split by output rows on the
 * pool, NULL = calling thread), with the active ISA. */
void lb__matmul(lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *y, int64_t ys);

/* Several products sharing one input, in one parallel pass (fewer thread
 * wake-ups): y[i] = X w[i]^T with row stride ys[i], for i < n. */
void lb__matmul_n(lb_pool *pool, int n, const lb_weight *const *w, const float *x, int64_t nt, int64_t xs,
                  float *const *y, const int64_t *ys);

/* Row r of w converted to F32 (embedding lookup, norm weights). */
void lb__weight_row(const lb_weight *w, int64_t r, float *out);

/* Bytes of weight data w occupies (for bandwidth accounting). */
size_t lb__weight_bytes(const lb_weight *w);

#endif
