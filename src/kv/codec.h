/* codec.h: what the storage policies of src/kv share (private to src/kv):
 * the codec tables of the policies, and the dequantization kernels they
 * decode pages with (reference C is the specification; the AVX2 and AVX-512
 * paths give the same bits: a decoded element is code * scale + min, one
 * multiply then one add, or an exact F16/BF16 widening). */
#ifndef LB_KV_CODEC_H
#define LB_KV_CODEC_H

#include "kv/kv.h"

/* The page parameter every storage policy takes (tokens per page). */
#define LB_KV_PAGE_PARAM {"page", "tokens per page (a power of two)", 32, 1, 4096, true, false, NULL, NULL}
/* Hadamard rotation of keys and/or values (quantizing policies). */
#define LB_KV_ROT_PARAM {"rot", "Hadamard-rotate keys (k), values (v), both (kv) or none", 0, 0, 0, false, false, \
                         "none|k|v|kv", "none"}
int lb__kv_rot_code(const char *rot);

/* y[i] = code_i * s[i >> gsh] + m[i >> gsh] for i < n, code_i the i-th
 * bits-wide code of the little-endian bit stream at packed (bits 2, 3, 4 or
 * 8; element 2j of a 4-bit stream is the low nibble of byte j). n is a
 * multiple of 8. */
typedef void (*lb__kv_dq_fn)(const uint8_t *packed, int bits, int64_t n, const float *s, const float *m, int gsh,
                             float *y);
void lb__kv_dq_ref(const uint8_t *packed, int bits, int64_t n, const float *s, const float *m, int gsh, float *y);
void lb__kv_dq_avx2(const uint8_t *packed, int bits, int64_t n, const float *s, const float *m, int gsh, float *y);
void lb__kv_dq_avx512(const uint8_t *packed, int bits, int64_t n, const float *s, const float *m, int gsh,
                      float *y);
/* F16 / BF16 to F32 (exact), n elements. */
typedef void (*lb__kv_widen_fn)(const uint16_t *x, int64_t n, float *y);
void lb__kv_f16_ref(const uint16_t *x, int64_t n, float *y);
void lb__kv_f16_avx2(const uint16_t *x, int64_t n, float *y);
void lb__kv_f16_avx512(const uint16_t *x, int64_t n, float *y);
void lb__kv_bf16_ref(const uint16_t *x, int64_t n, float *y);
void lb__kv_bf16_avx2(const uint16_t *x, int64_t n, float *y);
void lb__kv_bf16_avx512(const uint16_t *x, int64_t n, float *y);

/* o[i] = o[i] + w[p] * v[p * hd + i] for p = 0 .. n-1 in order, i < hd (a
 * multiply then an add: the engine's axpy/wsum arithmetic, so an F32 page
 * summed here gives the bits of the former flat cache). */
typedef void (*lb__kv_acc_fn)(const float *w, const float *v, int64_t n, int64_t hd, float *o);
void lb__kv_acc_ref(const float *w, const float *v, int64_t n, int64_t hd, float *o);
void lb__kv_acc_avx2(const float *w, const float *v, int64_t n, int64_t hd, float *o);
void lb__kv_acc_avx512(const float *w, const float *v, int64_t n, int64_t hd, float *o);

/* Fused attention on KIVI pages (no F32 tile). FMA below is one fused
 * multiply-add (fmaf; one rounding); the reference is the specification and
 * the AVX2 / AVX-512 paths compute every output with the same operations in
 * the same order (lanes are tokens or channels, never partial sums), so they
 * give the same bits.
 *
 * kscore: scores of nq queries (rows of hd, hd a multiple of 8) against the
 * P tokens (P a multiple of 8) of one key page whose codes are channel-major
 * (code (t, c) at element c P + t of the bits-wide stream) with per-channel
 * F16 scale s16[c] and min m16[c] (x = code s + min):
 *   qs_c = q_c * s_c
 *   z    = lanes l < 8: a_l = FMA(q_c, m_c, a_l) over c = l, l + 8, ... (from 0);
 *          z = ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
 *   sc[j * scs + t] = (FMA chain over c = 0 .. hd-1 of qs_c * code(t, c), from 0) + z
 * for every t < P. */
typedef void (*lb__kv_kscore_fn)(const uint8_t *codes, int bits, int64_t P, int64_t hd, const uint16_t *s16,
                                 const uint16_t *m16, const float *q, int64_t nq, float *sc, int64_t scs);
void lb__kv_kscore_ref(const uint8_t *codes, int bits, int64_t P, int64_t hd, const uint16_t *s16, const uint16_t *m16,
                       const float *q, int64_t nq, float *sc, int64_t scs);
void lb__kv_kscore_avx2(const uint8_t *codes, int bits, int64_t P, int64_t hd, const uint16_t *s16,
                        const uint16_t *m16, const float *q, int64_t nq, float *sc, int64_t scs);
void lb__kv_kscore_avx512(const uint8_t *codes, int bits, int64_t P, int64_t hd, const uint16_t *s16,
                          const uint16_t *m16, const float *q, int64_t nq, float *sc, int64_t scs);
/* vacc: o (nq rows of hd) += the weighted values of tokens t < n of one value
 * page, codes token-major (code (t, c) at element t hd + c), per token and
 * group of 2^gsh >= 8 channels an F16 scale s16[g sst + t] and min m16[..]
 * (group-major, sst >= n), ng = hd >> gsh, weights w[j * ws + t]:
 *   for t = 0 .. n-1: o_jc = FMA(w_jt * s_tg, code(t, c), o_jc)      (g = c >> gsh)
 *   z_jg = lanes l < 8: a_l = FMA(w_jt, m_tg, a_l) over t = l, l + 8, ... < n (from 0),
 *          reduced as kscore's z;   o_jc = o_jc + z_jg */
typedef void (*lb__kv_vacc_fn)(const uint8_t *codes, int bits, int64_t n, int64_t hd, int gsh, const uint16_t *s16,
                               const uint16_t *m16, int64_t sst, const float *w, int64_t ws, int64_t nq, float *o);
void lb__kv_vacc_ref(const uint8_t *codes, int bits, int64_t n, int64_t hd, int gsh, const uint16_t *s16,
                     const uint16_t *m16, int64_t sst, const float *w, int64_t ws, int64_t nq, float *o);
void lb__kv_vacc_avx2(const uint8_t *codes, int bits, int64_t n, int64_t hd, int gsh, const uint16_t *s16,
                      const uint16_t *m16, int64_t sst, const float *w, int64_t ws, int64_t nq, float *o);
void lb__kv_vacc_avx512(const uint8_t *codes, int bits, int64_t n, int64_t hd, int gsh, const uint16_t *s16,
                        const uint16_t *m16, int64_t sst, const float *w, int64_t ws, int64_t nq, float *o);
/* sc (n) <- softmax(sc * inv) in the engine's order: scale, the maximum,
 * e_p = expf(sc_p - max) summed in slot order, e_p / sum. The vector paths
 * scale, take the maximum and divide element by element (exact operations,
 * the same bits); the exponentials and their sum stay in order. */
typedef void (*lb__kv_softmax_fn)(float *sc, int64_t n, float inv);
void lb__kv_softmax_ref(float *sc, int64_t n, float inv);
void lb__kv_softmax_avx2(float *sc, int64_t n, float inv);
/* softmax2: the softmax of the caches attended with fused kernels (KIVI),
 * vectorized whole and the same bits on every path: scale and maximum as
 * softmax; e_p = lb_kv_exp(sc_p - max) (below); sum = 8 lanes
 * a_l = a_l + e_p over p = l, l + 8, ... (from 0), reduced as kscore's z;
 * e_p / sum. lb_kv_exp(x), x <= 0 (a softmax argument):
 *   y = x < -87 ? -87 : x;  n = nearbyint(y * log2 e);
 *   r = FMA(n, -ln2_lo, FMA(n, -ln2_hi, y));
 *   p = Horner in FMA over the Taylor coefficients 1/6! .. 1/0! of e^r;
 *   result = p * 2^n   (degree-6 Taylor on |r| <= ln2 / 2: a few ulp; NaN stays NaN) */
void lb__kv_softmax2_ref(float *sc, int64_t n, float inv);
void lb__kv_softmax2_avx2(float *sc, int64_t n, float inv);
/* Largest head_dim and value groups per page (P hd / Gv) the KIVI kernels take. */
#define LB_KV_KIVI_MAX_HD 512

#define LB_KV_EXP_LOG2E 1.44269504088896341f
#define LB_KV_EXP_LN2_HI 0.693359375f
#define LB_KV_EXP_LN2_LO (-2.12194440e-4f)
#define LB_KV_EXP_C {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}

/* The kernels of one ISA path (the reference where the CPU lacks it), and of
 * the active path. */
typedef struct lb__kv_kernels {
    lb__kv_dq_fn dq;
    lb__kv_widen_fn f16, bf16;
    lb__kv_acc_fn acc;
    lb__kv_kscore_fn kscore;
    lb__kv_vacc_fn vacc;
    lb__kv_softmax_fn softmax, softmax2;
} lb__kv_kernels;
const lb__kv_kernels *lb__kv_kernels_for(lb_isa isa);
const lb__kv_kernels *lb__kv_kernels_active(void);

/* Tokens per page of the policies that take a page parameter (default 32). */
lb_status lb__kv_page_param(const lb__kv_stage *st, const char *opt, int64_t *P);
/* The f16 and bf16 codecs (half.c): dt is LB_DTYPE_F16 or LB_DTYPE_BF16. */
lb_status lb__kv_half_setup(lb__kv_codec *c, const lb__kv_stage *st, const char *opt, lb_dtype dt);
void lb__kv_half_encode(const lb__kv_codec *c, uint8_t *page, int64_t s0, int64_t n, const float *k, const float *v);
void lb__kv_half_decode(const lb__kv_codec *c, const uint8_t *page, int64_t s0, int64_t n, float *k, float *v);
/* kivi.c: asymmetric min-max of x[i * stride], i < n, at `bits` bits (KIVI):
 * scale (max - min) / (2^bits - 1) and min stored as F16 in *s16, *m16, the
 * codes computed from the F16 values, code i at bit position
 * (first + i * cstride) * bits of codes (OR-ed into zeroed bytes). */
void lb__kivi_quant_group(const float *x, int64_t n, int64_t stride, int bits, uint16_t *s16, uint16_t *m16,
                          uint8_t *codes, int64_t first, int64_t cstride);
/* The check hook of policies whose only constraint is the page parameter. */
lb_status lb__kv_check_page(const lb__kv_stage *st, const lb__kv_spec *spec, const lb__kv_shape *sh, const char *opt);

#endif
