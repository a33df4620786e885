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
/* max |x| over the finite values of x[0..n) as raw FP32 bits (NV tensor scale). */
typedef uint32_t (*lb__amax_fn)(const float *x, int64_t n);
typedef struct lb__fmt_kernels {
    lb__quant_fn quant;           /* floor/ceil rules only; MSE and full always run the reference */
    lb__dequant_fn dequant;
    lb__dot_fn dot;
    lb__amax_fn finite_amax;
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
/* SIMD row kernels (src/kernels/formats_avx2.c, formats_avx512.c) for the
 * formats whose elements are E2M1, NF4, INT4/UINT4 or INT8/UINT8 in blocks
 * of a multiple of 16: mxfp4, mxint8, nvfp4, nvint4, nf4, int4_g*, int8_g*. */
extern const lb__fmt_kernels lb__simd_avx2, lb__simd_avx512;
/* Dequantize and dot only (FP8 elements through a 256-entry table): mxfp8_*. */
extern const lb__fmt_kernels lb__simd_fp8_avx2, lb__simd_fp8_avx512;
/* Dequantize and dot only (2-, 3-, 6-bit codes gathered): int2/int3 groups, mxfp6_*. */
extern const lb__fmt_kernels lb__simd_bits_avx2, lb__simd_bits_avx512;

/* ---- layout */
int lb__scale_bytes(const lb_format *f);
size_t lb__block_bytes(const lb_format *f, int64_t n);   /* one block of n elements */

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
/* 2^e, exact for e in [-149, 127] (subnormal below -126). */
static inline float lb__pow2f(int e)
{
    return e >= -126 ? lb__bits_f32((uint32_t)(e + 127) << 23) : lb__bits_f32(1u << (e + 149));
}

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

/* UE4M3 encode of a finite s by bit arithmetic (nearest, ties to even,
 * saturating at 448, s <= 0 -> 0); equals lb_elem_encode(LB_ELEM_UE4M3, s). */
static inline uint8_t lb__ue4m3_encode_fast(float s)
{
    if (!(s > 0.0f)) return 0;
    if (s < 0x1p-6f) return (uint8_t)rintf(s * 512.0f);        /* subnormal grid 2^-9 (8 = 2^-6) */
    uint32_t b = lb__f32_bits(s);
    b += 0x7ffffu + ((b >> 20) & 1);                           /* round to 3 mantissa bits */
    uint32_t c = (b >> 20) - ((127u - 7u) << 3);
    return (uint8_t)(c > 0x7e ? 0x7e : c);
}
/* NV block scale code (UE4M3) for block amax a and tensor encode scale g:
 * a / elmax * g rounded to nearest (ceil rule: up). lut = UE4M3 values. */
static inline uint8_t lb__nv_scale_code(float a, float g, float elmax, bool ceil_rule, const float *lut)
{
    float s = a / elmax * g;
    uint8_t c = lb__ue4m3_encode_fast(s);
    if (ceil_rule && c < 0x7e && lut[c] < s) c++;
    return c;
}
/* Element inverse of an NV block: g / ue4m3(sc), 0 for a zero scale. */
static inline float lb__nv_inv(uint8_t sc, float g, const float *lut)
{
    float sd = lut[sc];
    return sd > 0.0f ? g / sd : 0.0f;
}
/* INT block headers: write the scale (and zero point) of a block, return
 * the element inverse 1/d (0 when d is 0). Symmetric from amax, asymmetric
 * from min(x, 0) and max(x, 0); *zero receives the zero point as a float. */
float lb__int_sym_setup(const lb_format *f, float amax, uint8_t *hdr);
/* Full-range symmetric INT: d = xm / -2^(k-1) (a zero d is stored as +0);
 * returns 1/d, 0 when d is 0. */
float lb__int_full_setup(const lb_format *f, float xm, uint8_t *hdr);
/* Whether LB_SCALE_FULL applies to f (symmetric INT formats). */
static inline bool lb__format_full_ok(const lb_format *f) { return f->fam == LB__FAM_INT && !f->asym; }
/* FP16/BF16 scale s (NF4: the absmax) written to hdr; returns 1/d (0 if d is 0). */
float lb__absmax_setup(const lb_format *f, float s, uint8_t *hdr);
/* QLoRA NormalFloat4 values (blocks.c); codes round to the nearest entry,
 * ties to the lower one: code = number of midpoints 0.5f*(t[j]+t[j+1]) < v. */
extern const float lb__nf4_table[16];
/* Largest element value of an MX format (MXINT8: 127/64). */
static inline float lb__mx_maxval(const lb_format *f)
{
    return f->elem == LB_ELEM_INT8 ? 127.0f / 64.0f : lb_elem_max(f->elem);
}
float lb__int_asym_setup(const lb_format *f, float mn, float mx, uint8_t *hdr, float *zero);
/* FP16/BF16 scale storage: encode saturates to the largest finite value. */
uint16_t lb__scale16_encode(lb__sdtype sd, float s);
static inline float lb__scale16_decode(lb__sdtype sd, uint16_t h)
{
    return sd == LB__SD_BF16 ? lb_bf16_to_f32(h) : lb_f16_to_f32(h);
}
static inline uint16_t lb__rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline void lb__wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
/* Decode multiplier d of a block and its zero point (see blocks.c). */
static inline float lb__block_d(const lb_format *f, float tscale, const uint8_t *blk, float *zero)
{
    *zero = 0.0f;
    switch (f->sd) {
    case LB__SD_E8M0: return blk[0] == 0xff ? NAN : lb__pow2f((int)blk[0] - 127);
    case LB__SD_UE4M3: return lb__elem_lut(LB_ELEM_UE4M3)[blk[0] & 0x7f] / tscale;
    default:
        if (f->asym) *zero = (float)blk[2];
        return lb__scale16_decode(f->sd, lb__rd16(blk));
    }
}

/* Header of a finite block for the SIMD quantizers (MX, NV, INT sym/asym,
 * NF4), from its amax bits and its min(x, 0) / max(x, 0) (asym): writes the
 * scale bytes, returns the element inverse, sets *zero. nv_inv_tab[c] =
 * lb__nv_inv(c, g, ue4m3) for the 128 UE4M3 codes (NV only). */
static inline float lb__head_simd(const lb_format *f, lb_scale_rule rule, float g, uint32_t ab, float mn, float mx,
                                  uint8_t *out, const float *ue4m3, const float *nv_inv_tab, float *zero)
{
    *zero = 0.0f;
    switch (f->fam) {
    case LB__FAM_MX: {
        int e = lb__mx_exp(ab, f->emax, lb__mx_maxval(f), rule == LB_SCALE_CEIL);
        out[0] = (uint8_t)(e + 127);
        return lb__pow2f(-e);
    }
    case LB__FAM_NV: {
        float elmax = f->elem == LB_ELEM_E2M1 ? 6.0f : 7.0f;
        out[0] = lb__nv_scale_code(lb__bits_f32(ab), g, elmax, rule == LB_SCALE_CEIL, ue4m3);
        return nv_inv_tab[out[0]];
    }
    case LB__FAM_NF4: return lb__absmax_setup(f, lb__bits_f32(ab), out);
    default:
        if (f->asym) return lb__int_asym_setup(f, mn, mx, out, zero);
        return lb__int_sym_setup(f, lb__bits_f32(ab), out);
    }
}

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

/* ---- fixed grids (grid.c): a block's scale chosen once, values rounded to
 * it one at a time later (GPTQ). A grid is the block's scale bytes plus what
 * decoding and encoding need; see grid.c for the exact rules. */
typedef struct lb__grid {
    float d, zero;               /* value(code) = (val(code) - zero) * d, as lb__block_d */
    float inv;                   /* the encoder's element inverse */
    float qmin, qmax;            /* INT/ternary code range (asym: [0, qmax]) */
    uint8_t hdr[4];              /* the block's scale bytes (lb__scale_bytes of them) */
} lb__grid;
/* NV per-tensor encode scale from an amax (the rule of lb_format_quantize:
 * elmax * 448 / amax, capped at 2^100; 1 for amax 0 and for other families). */
float lb__grid_tensor_scale(const lb_format *f, float amax);
/* The grid the format's own quantizer (rule, tensor scale) picks for the n
 * finite values x (n = the format's block, or cols for per-row formats);
 * LB_ERR_ARG when x holds Inf/NaN. */
lb_status lb__grid_find(const lb_format *f, lb_scale_rule rule, float tscale, const float *x, int64_t n,
                        lb__grid *g);
uint8_t lb__grid_code(const lb_format *f, const lb__grid *g, float x);     /* the encoder's code of x */
float lb__grid_value(const lb_format *f, const lb__grid *g, uint8_t code); /* what decoding gives */
float lb__grid_round(const lb_format *f, const lb__grid *g, float x);      /* value(code(x)) */
/* One packed block: the grid's scale bytes, then codes[0..n) / the codes of
 * the values v[0..n) (on-grid values keep their exact code). */
void lb__grid_pack(const lb_format *f, const lb__grid *g, const uint8_t *codes, int64_t n, uint8_t *out);
void lb__grid_encode(const lb_format *f, const lb__grid *g, const float *v, int64_t n, uint8_t *out);
/* The MSE scale search (blocks.c): number of candidates of f, and block j
 * of them (0 <= j < lb__mse_ncand(f)) encoded from x[0..n) into out. */
int lb__mse_ncand(const lb_format *f);
void lb__mse_candidate(const lb_format *f, float g, int j, const float *x, int64_t n, uint8_t *out);
/* One row quantized by the importance-weighted MSE search: each block keeps
 * the candidate with the least sum_i w[i] (x[i] - q[i])^2 (w per element
 * of the row, >= 0); a block with no positive weight, or holding Inf/NaN,
 * is encoded as without weights. */
void lb__quant_row_mse_w(const lb_format *f, float tscale, const float *x, const float *w, int64_t cols,
                         uint8_t *out);
/* lb_format_quantize with the MSE rule weighted by imp (cols, finite,
 * >= 0; else LB_ERR_ARG) (registry.c); tensor_scale is always written. */
lb_status lb__format_quantize_w(const lb_format *f, const float *imp, const float *x, int64_t rows, int64_t cols,
                               void *packed, float *tensor_scale);

/* Check a packed tensor file image (registry.c): *f NULL takes the format
 * named in the header. On success data + 64 holds rows packed rows. */
lb_status lb__fq_parse(const lb_format **f, const uint8_t *data, size_t size, const char *what, int64_t *rows,
                       int64_t *cols, float *tscale);

#endif
