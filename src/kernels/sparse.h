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
float lb__sparse_udot_avx512(const uint8_t *mask, int p, const void *vals, lb_dtype dt, const float *x, int64_t cols);
/* The fused kernel of an ISA path, or NULL (the reference: gather + dot). */
lb__sparse_udot_fn lb__sparse_udot_for(lb_isa isa);
/* The same for BF16 values of a mask whose every nibble holds 2 set bits
 * (2:4; the V:2:M masks relative to a block's gathered inputs), cols a
 * multiple of 8: the same bits as lb__sparse_udot_* with p = 4. */
typedef float (*lb__sparse_udot24_fn)(const uint8_t *mask, const uint16_t *vals, const float *x, int64_t cols);
float lb__sparse_udot24_avx2(const uint8_t *mask, const uint16_t *vals, const float *x, int64_t cols);
/* The 2:4 kernel of an ISA path, or NULL (then lb__sparse_udot_for's; the
 * AVX-512 path has none: its udot packs 2:4 inputs with vcompressps). */
lb__sparse_udot24_fn lb__sparse_udot24_for(lb_isa isa);

/* Packed values (prune + quantize: each row's k = cols / 8 * p kept values
 * in block format f, rows of rb bytes) of rows whose mask bytes all hold p
 * set bits (mask rows of mb bytes): out[r] = lb_format_dot(f, row r, ts,
 * the kept inputs of row r, k) for nr rows. The reference gathers each row
 * (xk: cols floats of scratch) and calls lb_format_dot; the fused kernels
 * decode each 4-bit code to the same weight (v - z) * d and put kept value
 * j in canonical lane j % 16 with its gathered input: the same bits. */
bool lb__sparse_qrows_ok(const lb_format *f, int p, int64_t cols);
void lb__sparse_qrows_ref(const lb_format *f, float ts, const uint8_t *mask, size_t mb, const uint8_t *in, size_t rb,
                          int nr, const float *x, int64_t cols, float *xk, float *out);
/* Fused: several rows per pass (x loads shared), no buffer; false (nothing
 * computed) when !lb__sparse_qrows_ok(f, p, cols). */
typedef bool (*lb__sparse_qrows_fn)(const lb_format *f, int p, float ts, const uint8_t *mask, size_t mb,
                                    const uint8_t *in, size_t rb, int nr, const float *x, int64_t cols, float *out);
bool lb__sparse_qrows_avx2(const lb_format *f, int p, float ts, const uint8_t *mask, size_t mb, const uint8_t *in,
                           size_t rb, int nr, const float *x, int64_t cols, float *out);
/* The fused kernel of an ISA path, or NULL (the reference). */
lb__sparse_qrows_fn lb__sparse_qrows_for(lb_isa isa);

/* Set bits of one mask byte. */
extern const uint8_t lb__popcount8[256];

#endif
