/* formats.h: private side of the number-format library: element specs, the
 * format descriptor (one row of the registry table in registry.c), the
 * per-row kernel signatures and the scale helpers that the reference code
 * and the SIMD kernels share, so both compute scales the same way.
 *
 * Packed row = blocks one after another; block = scale bytes, then the
 * element codes as a little-endian bit stream (element i at bits
 * [i*k, i*k+k) of the block's element bytes; for k = 4 element 2j is the low
 * nibble of byte j). Per-row formats (block 0) have one block per row whose
 * element bytes are ceil(cols*k/8). */
#ifndef LB_FORMATS_H
#define LB_FORMATS_H

#include "core/core.h"
#include <math.h>

typedef enum lb__elem_kind { LB__EK_FLOAT, LB__EK_E8M0, LB__EK_INT } lb__elem_kind;
typedef struct lb_elem_spec {
    const char *name;
    int bits, ebits, mbits, bias;
    lb__elem_kind kind;
    bool is_signed, has_inf;
    uint8_t nan_code, max_code;   /* magnitude codes (sign bit excluded) */
    float maxval;
} lb_elem_spec;
extern const lb_elem_spec lb__elem_specs[LB_ELEM_COUNT];
/* Decoded value of every code of e (256 floats, filled once, read-only). */
const float *lb__elem_lut(lb_elem e);

typedef enum lb__family { LB__FAM_MX, LB__FAM_NV, LB__FAM_INT, LB__FAM_NF4, LB__FAM_TERNARY } lb__family;
typedef enum lb__sdtype { LB__SD_E8M0, LB__SD_UE4M3, LB__SD_F16, LB__SD_BF16 } lb__sdtype;

/* Row kernels. tscale is the NV per-tensor encode scale (1 elsewhere). */
typedef void (*lb__quant_fn)(const lb_format *f, lb_scale_rule rule, float tscale, const float *x, int64_t cols,
                             uint8_t *out);
typedef void (*lb__dequant_fn)(const lb_format *f, float tscale, const uint8_t *in, int64_t cols, float *y);
typedef float (*lb__dot_fn)(const lb_format *f, float tscale, const uint8_t *in, const float *x, int64_t cols);
typedef struct lb__fmt_kernels {
    lb__quant_fn quant;           /* floor/ceil rules only; MSE always runs the reference */
    lb__dequant_fn dequant;
    lb__dot_fn dot;
} lb__fmt_kernels;

struct lb_format {
    const char *name;
    const char *desc;
    lb__family fam;
    lb_elem elem;                 /* element codes (INT asym: the unsigned type) */
    int64_t block;                /* elements per block, 0 = whole row */
    bool asym;                    /* INT: zero point byte after the scale */
    lb__sdtype sd;                /* how the block scale is stored */
    int emax;                     /* MX: exponent of the largest power of two of the element */
    const lb__fmt_kernels *simd[2]; /* AVX2, AVX-512 row kernels; NULL = use the reference */
};

extern const lb__fmt_kernels lb__ref_kernels;
extern const lb__fmt_kernels lb__mxfp4_avx2, lb__mxfp4_avx512;
extern const lb__fmt_kernels lb__nv4_avx2, lb__nv4_avx512;
extern const lb__fmt_kernels lb__int4_avx2, lb__int4_avx512;

/* ---- layout */
int lb__scale_bytes(const lb_format *f);
size_t lb__block_bytes(const lb_format *f, int64_t n);   /* one block of n elements */
void lb__pack_codes(const uint8_t *codes, int64_t n, int k, uint8_t *out);
void lb__unpack_codes(const uint8_t *in, int64_t n, int k, uint8_t *codes);

/* ---- shared scale arithmetic (reference and SIMD must agree bit for bit) */
/* max |x| as raw FP32 bits (>= 0x7f800000 means the block holds Inf/NaN). */
static inline uint32_t lb__amax_bits(const float *x, int64_t n)
{
    uint32_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t b = lb__f32_bits(x[i]) & 0x7fffffffu;
        m = b > m ? b : m;
    }
    return m;
}
static inline float lb__pow2f(int e) { return ldexpf(1.0f, e); }  /* exact for e in [-149, 127] */

/* MX shared exponent for a finite amax (bits): OCP floor(log2 amax) - emax,
 * or the smallest exponent that never clips (ceil); clamped to E8M0's range
 * [-127, 127]. amax = 0 gives -127. */
static inline int lb__mx_exp(uint32_t amax_bits, int emax, float maxval, bool ceil_rule)
{
    if (amax_bits == 0) return -127;
    int fl = (int)(amax_bits >> 23) - 127;
    if ((amax_bits >> 23) == 0) fl = (31 - __builtin_clz(amax_bits)) - 149;  /* subnormal */
    int e = fl - emax;
    if (e < -127) e = -127;
    if (ceil_rule && e < 127 && lb__bits_f32(amax_bits) * lb__pow2f(-e) > maxval) e++;
    return e > 127 ? 127 : e;
}

/* NV block scale code (UE4M3) for block amax a and tensor encode scale g. */
uint8_t lb__nv_scale_code(float a, float g, float elmax, bool ceil_rule);
/* FP16/BF16 scale storage: encode saturates to the largest finite value. */
uint16_t lb__scale16_encode(lb__sdtype sd, float s);
static inline float lb__scale16_decode(lb__sdtype sd, uint16_t h)
{
    return sd == LB__SD_BF16 ? lb_bf16_to_f32(h) : lb_f16_to_f32(h);
}
static inline uint16_t lb__rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline void lb__wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* The fixed dot-product reduction: lanes i and i+8, then i+4, i+2, i+1. */
static inline float lb__reduce16(const float a[16])
{
    float b[8], c[4], d[2];
    for (int i = 0; i < 8; i++) b[i] = a[i] + a[i + 8];
    for (int i = 0; i < 4; i++) c[i] = b[i] + b[i + 4];
    for (int i = 0; i < 2; i++) d[i] = c[i] + c[i + 2];
    return d[0] + d[1];
}

/* Reference block codecs (blocks.c), used by the SIMD files for blocks they
 * do not vectorize (non-finite inputs). n = elements in the block. */
void lb__quant_block_ref(const lb_format *f, lb_scale_rule rule, float tscale, const float *x, int64_t n,
                         uint8_t *out);

#endif
