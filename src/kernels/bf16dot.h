/* bf16dot.h: "bf16 x bf16" products: dense BF16 weights times activations
 * rounded to BF16, with the arithmetic of the AVX512-BF16 instruction
 * VDPBF16PS as the definition (private to liblowbit).
 *
 * VDPBF16PS (Intel SDM / ISA extensions reference, "Operation"): for each
 * fp32 lane i of the accumulator, with make_fp32(h) = h << 16,
 *     acc[i] += make_fp32(a.bf16[2i+1]) * make_fp32(b.bf16[2i+1])
 *     acc[i] += make_fp32(a.bf16[2i])   * make_fp32(b.bf16[2i])
 * each step an FP32 FMA with round to nearest even, "input denormals are
 * always treated as zero, output denormals always flushed to zero, MXCSR
 * neither consulted nor updated" (odd element first, then even).
 *
 * The definition (bf16dot_ref.c; every ISA path gives the same bits):
 *   x is rounded to BF16 once per call (lb_f32_to_bf16: round to nearest
 *     even, NaN quieted), then a denormal BF16 (exponent field 0) becomes
 *     the zero of its sign (lb__bf16_daz);
 *   16 fp32 lanes s[0..15] from +0; the row is cut into steps of 32
 *     consecutive columns, the last one zero-padded to 32 (padded pairs
 *     still run both FMA steps on zeros);
 *   per step, lane j takes columns 2j (even) and 2j+1 (odd) of the step:
 *     s[j] = ftz(fma(daz(w[2j+1]), daz(x[2j+1]), s[j]))
 *     s[j] = ftz(fma(daz(w[2j]),   daz(x[2j]),   s[j]))
 *   (a BF16 product is exact in the FMA, so fma = one rounding of the exact
 *   sum; daz = a denormal input is its signed zero; ftz = a result whose
 *   exponent field is 0 becomes the zero of its sign, tested on the bits
 *   after rounding);
 *   then the canonical tree of kernels.h: s[j] += s[j+8], s[j+4], s[j+2],
 *   s[j+1], plain IEEE additions (no flushing).
 * NaN results are NaN on every path; their payload bits are not specified. */
#ifndef LB_BF16DOT_H
#define LB_BF16DOT_H

#include "kernels/kernels.h"

#define LB_BD_STEP 32

/* nt activation rows in BF16 (rounded and denormals zeroed by
 * lb__bf16_act_rows), row t at x + t * xs. tiny: some nonzero element has
 * |v| < 2^-56 (see bf16dot_avx2.c: without such elements and weights no
 * step can produce a denormal, so the AVX2 path skips the flushing). */
typedef struct lb__bact {
    const uint16_t *x;
    int64_t xs;
    bool tiny;
} lb__bact;

/* y[t * ys + r] = the defined product of BF16 row r of w (dtype BF16) and
 * activation row t, for r in [r0, r1), t in [0, nt). Single-threaded. */
typedef void (*lb__bdot_fn)(const lb_mat *w, int64_t r0, int64_t r1, const lb__bact *a, int64_t nt, float *y,
                            int64_t ys);
void lb__bdot_ref(const lb_mat *w, int64_t r0, int64_t r1, const lb__bact *a, int64_t nt, float *y, int64_t ys);
void lb__bdot_avx2(const lb_mat *w, int64_t r0, int64_t r1, const lb__bact *a, int64_t nt, float *y, int64_t ys);
void lb__bdot_avx512(const lb_mat *w, int64_t r0, int64_t r1, const lb__bact *a, int64_t nt, float *y, int64_t ys);
/* The kernel of one ISA path (the reference where the CPU lacks it), and of
 * the active path. The avx512 level includes AVX512_BF16 (core/cpu.c). */
lb__bdot_fn lb__bdot_for(lb_isa isa);
lb__bdot_fn lb__bdot(void);

/* A BF16 value with a denormal replaced by the zero of its sign. */
static inline uint16_t lb__bf16_daz(uint16_t h) { return (h & 0x7f80u) ? h : (uint16_t)(h & 0x8000u); }
/* Whether h is nonzero with |h| < 2^-56 (exponent field below 71). */
static inline bool lb__bf16_tiny(uint16_t h) { return (h & 0x7fffu) && (h & 0x7fffu) < (71u << 7); }

/* Rows [t0, t1) of x (row stride xs floats, cols values) to BF16 at
 * out + t * os: round to nearest even, then lb__bf16_daz. Returns whether
 * any element is tiny (lb__bf16_tiny). */
bool lb__bf16_act_rows(const float *x, int64_t xs, int64_t cols, int64_t t0, int64_t t1, uint16_t *out, int64_t os);

#endif
