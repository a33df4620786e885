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

#include "formats/formats.h"

/* A dense row-major matrix [rows, cols] of F32, F16 or BF16 values: what the
 * matmul kernels read (the weights module's dense representation hands its
 * bytes over as one of these). */
typedef struct lb_mat {
    const void *data;
    lb_dtype dtype;
    int64_t rows, cols;
} lb_mat;

#define LB_DOT_LANES 16

/* Y[t, r] = sum_c W[r, c] * X[t, c] for rows r in [r0, r1) and tokens
 * t in [0, nt). X has row stride xs floats, Y row stride ys floats
 * (y[t * ys + r]). Single-threaded; one such function per ISA. */
typedef void (*lb_matmul_rows_fn)(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt,
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

void lb__matmul_rows_ref(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
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
void lb__matmul_rows_avx2(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                          float *y, int64_t ys);
float lb__dot_avx2(const float *a, const float *b, int64_t n);
void lb__matmul_rows_avx512(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                            float *y, int64_t ys);
float lb__dot_avx512(const float *a, const float *b, int64_t n);
/* Prefill inputs (F32 weights) at least this wide use the AVX-512 4x6 tile
 * (default 1280; tests set 0 to run it at every width). */
extern int lb__avx512_wide_cols;

/* Multithreaded Y = X W^T over all rows of w (split by output rows on the
 * pool, NULL = calling thread), with the active ISA. */
void lb__matmul(lb_pool *pool, const lb_mat *w, const float *x, int64_t nt, int64_t xs, float *y, int64_t ys);

/* Several products sharing one input, in one parallel pass (fewer thread
 * wake-ups): y[i] = X w[i]^T with row stride ys[i], for i < n. */
void lb__matmul_n(lb_pool *pool, int n, const lb_mat *const *w, const float *x, int64_t nt, int64_t xs,
                  float *const *y, const int64_t *ys);

/* Row r of w converted to F32 (embedding lookup, norm weights). */
void lb__mat_row(const lb_mat *w, int64_t r, float *out);

/* ---- fused dequantize-and-dot of block-format rows (qdot_avx512.c, qdot_avx2.c) */

/* Fused dequantize-and-dot of nr consecutive packed rows (row stride rb)
 * with x into out[nr]; each result is bit-identical with lb_format_dot; tab
 * is the value table of the kernel, nvd (NV formats) the 128 block
 * multipliers ue4m3(c) / ts. x is in the order lb__qdot_perm_x gives when
 * the kernel's perm_x is set. */
typedef void (*lb__qdot_fn)(const lb_format *f, float ts, const uint8_t *rows, size_t rb, int nr, const float *x,
                            int64_t cols, const float *tab, const float *nvd, float *out);
typedef struct lb__qkern {
    lb__qdot_fn rows;
    const float *tab;
    bool perm_x;                 /* x interleaved per 16: x[0], x[8], x[1], x[9], ... x[7], x[15] */
} lb__qkern;
/* The multi-row kernel for f on the active ISA (false: none, use
 * lb_format_dot). The _avx512 / _avx2 ones: call only when that ISA is active. */
bool lb__qdot_kernel(const lb_format *f, lb__qkern *k);
bool lb__qdot_avx512(const lb_format *f, lb__qkern *k);
bool lb__qdot_avx2(const lb_format *f, lb__qkern *k);
/* xp (cols, a multiple of 16) = x in the perm_x order. */
void lb__qdot_perm_x(const float *x, int64_t cols, float *xp);

#endif
