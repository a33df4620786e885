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

/* ---- integer products of packed sparse rows (spint; sparse_int*.c)
 *
 * Weights: each row's k = cols / 8 * p kept values packed in a symmetric
 * integer block format of block 32 (lb__iw: int8_g32[_bf16], int4_g32[_bf16],
 * mxint8) under a uniform bitmask (every mask byte holds p set bits, p = 1,
 * 2, 4 or 8). Activations: igemm.h's codes (int8 in [-127, 127], one FP32
 * scale da per block of 32 INPUTS) in COLUMN order (lb__iact_order(8, ...):
 * the order the mask walks, whatever the weight's bits).
 *
 * The definition (sparse_int.c; every ISA path gives the same bits):
 *   kept value j of a row (column order) is element j of the packed row
 *     (4-bit: the low nibble of byte j / 2 for even j, the high for odd j);
 *     a(j) = the activation code at the input of kept value j.
 *   weight block b holds kept values [32 b, 32 b + 32); it spans mask bytes
 *     [32 b / p, 32 (b + 1) / p), i.e. 8 / p activation blocks of 32 inputs,
 *     each holding 4 p kept values (4 mask bytes), so the 4 values of a lane
 *     never straddle two activation blocks:
 *   lane l (0..7): isum_l = sum of w(j) * a(j), j = 32 b + 4 l .. + 3 (exact)
 *     it meets activation block ab = (8 b + l) / p, s_l = dw * da[ab] (one
 *     float multiply; dw = lb__iw_scale of weight block b)
 *   acc_l = fmaf((float)isum_l, s_l, acc_l), blocks in order, acc_l from +0
 *   y = ((acc_0 + acc_4) + (acc_2 + acc_6)) + ((acc_1 + acc_5) + (acc_3 + acc_7))
 * p = 8 (nothing pruned) is igemm.h's definition for 8-bit weights.
 *
 * The SIMD paths gather a block's 32 kept activation codes with vpshufb:
 * per 16 inputs (2 mask bytes) a control of 2p bytes from the table of bit
 * positions (lb__sparse_bitpos), 8 / p shuffles per block, then the lanes
 * by vpsignb / vpmaddubsw / vpmaddwd (AVX2) or vpdpbusd (AVX512-VNNI), the
 * 8 lane scales as one vector dw * da. */
#include "kernels/igemm.h"

/* Byte i of entry b: the position of the i-th set bit of b (0 past them). */
extern const uint64_t lb__sparse_bitpos[256];
/* Entry [i][b], P = 4 >> i: the first P positions of b's set bits, each + 8,
 * in bytes P .. 2P - 1 (OR it onto entry lb__sparse_bitpos[a]: the 2P
 * shuffle-control bytes of the 16 inputs of mask bytes a, b). */
extern const uint64_t lb__sparse_bitpos_hi[3][256];

/* Whether rows of w's format under uniform masks of p set bits per byte and
 * cols inputs have the integer product (k = cols / 8 * p a multiple of 32). */
bool lb__sparse_igemm_ok(const lb__iw *w, int p, int64_t cols);
/* y[t * ys + r] = row r times activation row t, r in [r0, r1), t in [0, nt);
 * mask rows of mb bytes, packed rows of rb bytes (both from row 0).
 * Single-threaded; requires lb__sparse_igemm_ok. */
typedef void (*lb__sparse_igemm_fn)(const lb__iw *w, int p, const uint8_t *mask, size_t mb, const uint8_t *data,
                                    size_t rb, int64_t r0, int64_t r1, int64_t cols, const lb__iact *a, int64_t nt,
                                    float *y, int64_t ys);
void lb__sparse_igemm_ref(const lb__iw *w, int p, const uint8_t *mask, size_t mb, const uint8_t *data, size_t rb,
                          int64_t r0, int64_t r1, int64_t cols, const lb__iact *a, int64_t nt, float *y, int64_t ys);
void lb__sparse_igemm_avx2(const lb__iw *w, int p, const uint8_t *mask, size_t mb, const uint8_t *data, size_t rb,
                           int64_t r0, int64_t r1, int64_t cols, const lb__iact *a, int64_t nt, float *y, int64_t ys);
void lb__sparse_igemm_avx512(const lb__iw *w, int p, const uint8_t *mask, size_t mb, const uint8_t *data, size_t rb,
                             int64_t r0, int64_t r1, int64_t cols, const lb__iact *a, int64_t nt, float *y, int64_t ys);
/* The kernel of one ISA path (the reference where the CPU lacks it), and of
 * the active path. */
lb__sparse_igemm_fn lb__sparse_igemm_for(lb_isa isa);
lb__sparse_igemm_fn lb__sparse_igemm(void);
/* ---- end spint */

#endif
