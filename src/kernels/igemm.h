/* igemm.h: integer products of block-quantized weights with activations
 * quantized to 8-bit codes per block of 32 (private to liblowbit).
 *
 * Weights: rows packed in a symmetric registry format of block 32 whose
 * elements are integers: int8_g32 / int8_g32_bf16 (INT8 codes, FP16/BF16
 * scale), int4_g32 / int4_g32_bf16 (INT4 codes), mxint8 (INT8 codes, E8M0
 * scale; element value code / 64). Activations: per token, per block of 32,
 * int8 codes in [-127, 127] and one FP32 scale da (the activation module
 * turns int8_g32, int4_g32 and mxint8 activation rows into this).
 *
 * The definition (igemm_ref.c; every ISA path gives the same bits, the
 * integer sums are exact and the float steps are the same in the same order):
 *
 *   kernel order of a block: position p of 32. 8-bit weights: element p;
 *     4-bit weights: p < 16 -> element 2p (low nibble of code byte p),
 *     p >= 16 -> element 2(p-16)+1 (high nibble). The activation codes are
 *     stored in the kernel order of the weight they meet (lb__iact_order).
 *   dw = the block's decoded scale (lb__block_d; MXINT8: 2^(e-127) * 2^-6,
 *     one float multiply), s = dw * da (one float multiply)
 *   lane j (0..7): isum_j = sum of w(p) * a(p) over p = 4j .. 4j+3 (exact)
 *   acc_j = fmaf((float)isum_j, s, acc_j), blocks in order, acc_j from +0
 *   y = ((acc_0 + acc_4) + (acc_2 + acc_6)) + ((acc_1 + acc_5) + (acc_3 + acc_7))
 *     i.e. a[j] += a[j+4] (j < 4), a[j] += a[j+2] (j < 2), a[0] + a[1].
 *
 * The lanes are what vpmaddubsw + vpmaddwd (AVX2) and vpdpbusd (AVX512-VNNI)
 * produce from 32 bytes: 4 consecutive products per 32-bit lane. */
#ifndef LB_IGEMM_H
#define LB_IGEMM_H

#include "kernels/kernels.h"

#define LB_IG_BLOCK 32

/* A weight format the integer kernels read. */
typedef struct lb__iw {
    const lb_format *f;
    int bits;               /* 8 or 4 */
    int sb;                 /* scale bytes before the codes of a block */
    size_t bb;              /* bytes per block */
    bool mx;                /* MXINT8: E8M0 scale, value = code / 64 */
} lb__iw;
/* True (and *w filled) when weights of f pair with 8-bit activation codes. */
bool lb__iw_init(const lb_format *f, lb__iw *w);

/* nt quantized activation rows: codes q + t * qs (cols int8 in [-127, 127],
 * kernel order), scales d + t * ds (cols / 32 floats). */
typedef struct lb__iact {
    const int8_t *q;
    const float *d;
    int64_t qs, ds;
} lb__iact;

/* The scale dw of a weight block (see above). */
static inline float lb__iw_scale(const lb__iw *w, const uint8_t *blk)
{
    float z, d = lb__block_d(w->f, 1.0f, blk, &z);
    return w->mx ? d * 0x1p-6f : d;
}

/* y[t * ys + r] = row r of w (row stride rb) times activation row t, for
 * r in [r0, r1) and t in [0, nt). Single-threaded. cols % 32 == 0. */
typedef void (*lb__igemm_fn)(const lb__iw *w, const uint8_t *data, size_t rb, int64_t r0, int64_t r1, int64_t cols,
                             const lb__iact *a, int64_t nt, float *y, int64_t ys);
void lb__igemm_ref(const lb__iw *w, const uint8_t *data, size_t rb, int64_t r0, int64_t r1, int64_t cols,
                   const lb__iact *a, int64_t nt, float *y, int64_t ys);
void lb__igemm_avx2(const lb__iw *w, const uint8_t *data, size_t rb, int64_t r0, int64_t r1, int64_t cols,
                    const lb__iact *a, int64_t nt, float *y, int64_t ys);
void lb__igemm_avx512(const lb__iw *w, const uint8_t *data, size_t rb, int64_t r0, int64_t r1, int64_t cols,
                      const lb__iact *a, int64_t nt, float *y, int64_t ys);
/* The kernel of one ISA path (the reference where the CPU lacks it), and of
 * the active path. */
lb__igemm_fn lb__igemm_for(lb_isa isa);
lb__igemm_fn lb__igemm(void);

/* Codes of one activation block (32 values in element order) rearranged into
 * the kernel order of bits-bit weights, into out. */
void lb__iact_order(int bits, const int8_t *in, int8_t *out);

#endif
