/* registry.c: the one table of block formats and the public entry points
 * (validation, NV per-tensor scale, ISA dispatch of the row kernels, error
 * statistics, packed tensor files).
 *
 * Adding a format = adding one row below (and, for a new family, its codec
 * in blocks.c). Names are lowercase and stable: they are written into files. */
#include "formats/formats.h"

#define NO_SIMD {NULL, NULL}
#define SIMD {&lb__simd_avx2, &lb__simd_avx512}
#define SIMD_FP8 {&lb__simd_fp8_avx2, &lb__simd_fp8_avx512}
#define SIMD_BITS {&lb__simd_bits_avx2, &lb__simd_bits_avx512}

/* name, description, family, element, block (0 = per row), asym, scale storage, emax, SIMD kernels */
static const lb_format formats[] = {
    {"mxfp8_e4m3", "OCP MXFP8: 32 x E4M3, E8M0 scale", LB__FAM_MX, LB_ELEM_E4M3, 32, false, LB__SD_E8M0, 8, SIMD_FP8},
    {"mxfp8_e5m2", "OCP MXFP8: 32 x E5M2, E8M0 scale", LB__FAM_MX, LB_ELEM_E5M2, 32, false, LB__SD_E8M0, 15, SIMD_FP8},
    {"mxfp6_e2m3", "OCP MXFP6: 32 x E2M3, E8M0 scale", LB__FAM_MX, LB_ELEM_E2M3, 32, false, LB__SD_E8M0, 2, SIMD_BITS},
    {"mxfp6_e3m2", "OCP MXFP6: 32 x E3M2, E8M0 scale", LB__FAM_MX, LB_ELEM_E3M2, 32, false, LB__SD_E8M0, 4, SIMD_BITS},
    {"mxfp4", "OCP MXFP4: 32 x E2M1, E8M0 scale", LB__FAM_MX, LB_ELEM_E2M1, 32, false, LB__SD_E8M0, 2, SIMD},
    {"mxint8", "OCP MXINT8: 32 x INT8 (value = code/64), E8M0 scale", LB__FAM_MX, LB_ELEM_INT8, 32, false, LB__SD_E8M0, 0, SIMD},
    {"nvfp4", "NVFP4: 16 x E2M1, UE4M3 scale, FP32 tensor scale", LB__FAM_NV, LB_ELEM_E2M1, 16, false, LB__SD_UE4M3, 0, SIMD},
    {"nvint4", "NVFP4 scaling with INT4 [-7, 7] elements", LB__FAM_NV, LB_ELEM_INT4, 16, false, LB__SD_UE4M3, 0, SIMD},
    {"int2_g32", "INT2 symmetric, group 32, FP16 scale", LB__FAM_INT, LB_ELEM_INT2, 32, false, LB__SD_F16, 0, SIMD_BITS},
    {"int2_g32_bf16", "INT2 symmetric, group 32, BF16 scale", LB__FAM_INT, LB_ELEM_INT2, 32, false, LB__SD_BF16, 0, SIMD_BITS},
    {"int2_g32_asym", "INT2 asymmetric (zero point), group 32, FP16 scale", LB__FAM_INT, LB_ELEM_UINT2, 32, true, LB__SD_F16, 0, SIMD_BITS},
    {"int2_g32_asym_bf16", "INT2 asymmetric (zero point), group 32, BF16 scale", LB__FAM_INT, LB_ELEM_UINT2, 32, true, LB__SD_BF16, 0, SIMD_BITS},
    {"int2_g64", "INT2 symmetric, group 64, FP16 scale", LB__FAM_INT, LB_ELEM_INT2, 64, false, LB__SD_F16, 0, SIMD_BITS},
    {"int2_g64_bf16", "INT2 symmetric, group 64, BF16 scale", LB__FAM_INT, LB_ELEM_INT2, 64, false, LB__SD_BF16, 0, SIMD_BITS},
    {"int2_g64_asym", "INT2 asymmetric (zero point), group 64, FP16 scale", LB__FAM_INT, LB_ELEM_UINT2, 64, true, LB__SD_F16, 0, SIMD_BITS},
    {"int2_g64_asym_bf16", "INT2 asymmetric (zero point), group 64, BF16 scale", LB__FAM_INT, LB_ELEM_UINT2, 64, true, LB__SD_BF16, 0, SIMD_BITS},
    {"int2_g128", "INT2 symmetric, group 128, FP16 scale", LB__FAM_INT, LB_ELEM_INT2, 128, false, LB__SD_F16, 0, SIMD_BITS},
    {"int2_g128_bf16", "INT2 symmetric, group 128, BF16 scale", LB__FAM_INT, LB_ELEM_INT2, 128, false, LB__SD_BF16, 0, SIMD_BITS},
    {"int2_g128_asym", "INT2 asymmetric (zero point), group 128, FP16 scale", LB__FAM_INT, LB_ELEM_UINT2, 128, true, LB__SD_F16, 0, SIMD_BITS},
    {"int2_g128_asym_bf16", "INT2 asymmetric (zero point), group 128, BF16 scale", LB__FAM_INT, LB_ELEM_UINT2, 128, true, LB__SD_BF16, 0, SIMD_BITS},
    {"int2_ch", "INT2 symmetric, one scale per row, FP16 scale", LB__FAM_INT, LB_ELEM_INT2, 0, false, LB__SD_F16, 0, NO_SIMD},
    {"int2_ch_bf16", "INT2 symmetric, one scale per row, BF16 scale", LB__FAM_INT, LB_ELEM_INT2, 0, false, LB__SD_BF16, 0, NO_SIMD},
    {"int2_ch_asym", "INT2 asymmetric (zero point), one scale per row, FP16 scale", LB__FAM_INT, LB_ELEM_UINT2, 0, true, LB__SD_F16, 0, NO_SIMD},
    {"int2_ch_asym_bf16", "INT2 asymmetric (zero point), one scale per row, BF16 scale", LB__FAM_INT, LB_ELEM_UINT2, 0, true, LB__SD_BF16, 0, NO_SIMD},
    {"int3_g32", "INT3 symmetric, group 32, FP16 scale", LB__FAM_INT, LB_ELEM_INT3, 32, false, LB__SD_F16, 0, SIMD_BITS},
    {"int3_g32_bf16", "INT3 symmetric, group 32, BF16 scale", LB__FAM_INT, LB_ELEM_INT3, 32, false, LB__SD_BF16, 0, SIMD_BITS},
    {"int3_g32_asym", "INT3 asymmetric (zero point), group 32, FP16 scale", LB__FAM_INT, LB_ELEM_UINT3, 32, true, LB__SD_F16, 0, SIMD_BITS},
    {"int3_g32_asym_bf16", "INT3 asymmetric (zero point), group 32, BF16 scale", LB__FAM_INT, LB_ELEM_UINT3, 32, true, LB__SD_BF16, 0, SIMD_BITS},
    {"int3_g64", "INT3 symmetric, group 64, FP16 scale", LB__FAM_INT, LB_ELEM_INT3, 64, false, LB__SD_F16, 0, SIMD_BITS},
    {"int3_g64_bf16", "INT3 symmetric, group 64, BF16 scale", LB__FAM_INT, LB_ELEM_INT3, 64, false, LB__SD_BF16, 0, SIMD_BITS},
    {"int3_g64_asym", "INT3 asymmetric (zero point), group 64, FP16 scale", LB__FAM_INT, LB_ELEM_UINT3, 64, true, LB__SD_F16, 0, SIMD_BITS},
    {"int3_g64_asym_bf16", "INT3 asymmetric (zero point), group 64, BF16 scale", LB__FAM_INT, LB_ELEM_UINT3, 64, true, LB__SD_BF16, 0, SIMD_BITS},
    {"int3_g128", "INT3 symmetric, group 128, FP16 scale", LB__FAM_INT, LB_ELEM_INT3, 128, false, LB__SD_F16, 0, SIMD_BITS},
    {"int3_g128_bf16", "INT3 symmetric, group 128, BF16 scale", LB__FAM_INT, LB_ELEM_INT3, 128, false, LB__SD_BF16, 0, SIMD_BITS},
    {"int3_g128_asym", "INT3 asymmetric (zero point), group 128, FP16 scale", LB__FAM_INT, LB_ELEM_UINT3, 128, true, LB__SD_F16, 0, SIMD_BITS},
    {"int3_g128_asym_bf16", "INT3 asymmetric (zero point), group 128, BF16 scale", LB__FAM_INT, LB_ELEM_UINT3, 128, true, LB__SD_BF16, 0, SIMD_BITS},
    {"int3_ch", "INT3 symmetric, one scale per row, FP16 scale", LB__FAM_INT, LB_ELEM_INT3, 0, false, LB__SD_F16, 0, NO_SIMD},
    {"int3_ch_bf16", "INT3 symmetric, one scale per row, BF16 scale", LB__FAM_INT, LB_ELEM_INT3, 0, false, LB__SD_BF16, 0, NO_SIMD},
    {"int3_ch_asym", "INT3 asymmetric (zero point), one scale per row, FP16 scale", LB__FAM_INT, LB_ELEM_UINT3, 0, true, LB__SD_F16, 0, NO_SIMD},
    {"int3_ch_asym_bf16", "INT3 asymmetric (zero point), one scale per row, BF16 scale", LB__FAM_INT, LB_ELEM_UINT3, 0, true, LB__SD_BF16, 0, NO_SIMD},
    {"int4_g32", "INT4 symmetric, group 32, FP16 scale", LB__FAM_INT, LB_ELEM_INT4, 32, false, LB__SD_F16, 0, SIMD},
    {"int4_g32_bf16", "INT4 symmetric, group 32, BF16 scale", LB__FAM_INT, LB_ELEM_INT4, 32, false, LB__SD_BF16, 0, SIMD},
    {"int4_g32_asym", "INT4 asymmetric (zero point), group 32, FP16 scale", LB__FAM_INT, LB_ELEM_UINT4, 32, true, LB__SD_F16, 0, SIMD},
    {"int4_g32_asym_bf16", "INT4 asymmetric (zero point), group 32, BF16 scale", LB__FAM_INT, LB_ELEM_UINT4, 32, true, LB__SD_BF16, 0, SIMD},
    {"int4_g64", "INT4 symmetric, group 64, FP16 scale", LB__FAM_INT, LB_ELEM_INT4, 64, false, LB__SD_F16, 0, SIMD},
    {"int4_g64_bf16", "INT4 symmetric, group 64, BF16 scale", LB__FAM_INT, LB_ELEM_INT4, 64, false, LB__SD_BF16, 0, SIMD},
    {"int4_g64_asym", "INT4 asymmetric (zero point), group 64, FP16 scale", LB__FAM_INT, LB_ELEM_UINT4, 64, true, LB__SD_F16, 0, SIMD},
    {"int4_g64_asym_bf16", "INT4 asymmetric (zero point), group 64, BF16 scale", LB__FAM_INT, LB_ELEM_UINT4, 64, true, LB__SD_BF16, 0, SIMD},
    {"int4_g128", "INT4 symmetric, group 128, FP16 scale", LB__FAM_INT, LB_ELEM_INT4, 128, false, LB__SD_F16, 0, SIMD},
    {"int4_g128_bf16", "INT4 symmetric, group 128, BF16 scale", LB__FAM_INT, LB_ELEM_INT4, 128, false, LB__SD_BF16, 0, SIMD},
    {"int4_g128_asym", "INT4 asymmetric (zero point), group 128, FP16 scale", LB__FAM_INT, LB_ELEM_UINT4, 128, true, LB__SD_F16, 0, SIMD},
    {"int4_g128_asym_bf16", "INT4 asymmetric (zero point), group 128, BF16 scale", LB__FAM_INT, LB_ELEM_UINT4, 128, true, LB__SD_BF16, 0, SIMD},
    {"int4_ch", "INT4 symmetric, one scale per row, FP16 scale", LB__FAM_INT, LB_ELEM_INT4, 0, false, LB__SD_F16, 0, NO_SIMD},
    {"int4_ch_bf16", "INT4 symmetric, one scale per row, BF16 scale", LB__FAM_INT, LB_ELEM_INT4, 0, false, LB__SD_BF16, 0, NO_SIMD},
    {"int4_ch_asym", "INT4 asymmetric (zero point), one scale per row, FP16 scale", LB__FAM_INT, LB_ELEM_UINT4, 0, true, LB__SD_F16, 0, NO_SIMD},
    {"int4_ch_asym_bf16", "INT4 asymmetric (zero point), one scale per row, BF16 scale", LB__FAM_INT, LB_ELEM_UINT4, 0, true, LB__SD_BF16, 0, NO_SIMD},
    {"int8_g32", "INT8 symmetric, group 32, FP16 scale", LB__FAM_INT, LB_ELEM_INT8, 32, false, LB__SD_F16, 0, SIMD},
    {"int8_g32_bf16", "INT8 symmetric, group 32, BF16 scale", LB__FAM_INT, LB_ELEM_INT8, 32, false, LB__SD_BF16, 0, SIMD},
    {"int8_g32_asym", "INT8 asymmetric (zero point), group 32, FP16 scale", LB__FAM_INT, LB_ELEM_UINT8, 32, true, LB__SD_F16, 0, SIMD},
    {"int8_g32_asym_bf16", "INT8 asymmetric (zero point), group 32, BF16 scale", LB__FAM_INT, LB_ELEM_UINT8, 32, true, LB__SD_BF16, 0, SIMD},
    {"int8_g64", "INT8 symmetric, group 64, FP16 scale", LB__FAM_INT, LB_ELEM_INT8, 64, false, LB__SD_F16, 0, SIMD},
    {"int8_g64_bf16", "INT8 symmetric, group 64, BF16 scale", LB__FAM_INT, LB_ELEM_INT8, 64, false, LB__SD_BF16, 0, SIMD},
    {"int8_g64_asym", "INT8 asymmetric (zero point), group 64, FP16 scale", LB__FAM_INT, LB_ELEM_UINT8, 64, true, LB__SD_F16, 0, SIMD},
    {"int8_g64_asym_bf16", "INT8 asymmetric (zero point), group 64, BF16 scale", LB__FAM_INT, LB_ELEM_UINT8, 64, true, LB__SD_BF16, 0, SIMD},
    {"int8_g128", "INT8 symmetric, group 128, FP16 scale", LB__FAM_INT, LB_ELEM_INT8, 128, false, LB__SD_F16, 0, SIMD},
    {"int8_g128_bf16", "INT8 symmetric, group 128, BF16 scale", LB__FAM_INT, LB_ELEM_INT8, 128, false, LB__SD_BF16, 0, SIMD},
    {"int8_g128_asym", "INT8 asymmetric (zero point), group 128, FP16 scale", LB__FAM_INT, LB_ELEM_UINT8, 128, true, LB__SD_F16, 0, SIMD},
    {"int8_g128_asym_bf16", "INT8 asymmetric (zero point), group 128, BF16 scale", LB__FAM_INT, LB_ELEM_UINT8, 128, true, LB__SD_BF16, 0, SIMD},
    {"int8_ch", "INT8 symmetric, one scale per row, FP16 scale", LB__FAM_INT, LB_ELEM_INT8, 0, false, LB__SD_F16, 0, NO_SIMD},
    {"int8_ch_bf16", "INT8 symmetric, one scale per row, BF16 scale", LB__FAM_INT, LB_ELEM_INT8, 0, false, LB__SD_BF16, 0, NO_SIMD},
    {"int8_ch_asym", "INT8 asymmetric (zero point), one scale per row, FP16 scale", LB__FAM_INT, LB_ELEM_UINT8, 0, true, LB__SD_F16, 0, NO_SIMD},
    {"int8_ch_asym_bf16", "INT8 asymmetric (zero point), one scale per row, BF16 scale", LB__FAM_INT, LB_ELEM_UINT8, 0, true, LB__SD_BF16, 0, NO_SIMD},
    {"nf4", "NF4 (QLoRA table), group 64, FP16 absmax scale", LB__FAM_NF4, LB_ELEM_UINT4, 64, false, LB__SD_F16, 0, SIMD},
    {"ternary", "ternary {-1,0,1} (BitNet b1.58), FP16 absmean scale per row", LB__FAM_TERNARY, LB_ELEM_INT2, 0, false, LB__SD_F16, 0, NO_SIMD},
};
static const int n_formats = (int)(sizeof formats / sizeof *formats);

int lb_format_count(void) { return n_formats; }
const lb_format *lb_format_at(int i) { return i >= 0 && i < n_formats ? &formats[i] : NULL; }

const lb_format *lb_format_find(const char *name)
{
    for (int i = 0; name && i < n_formats; i++)
        if (!strcmp(formats[i].name, name)) return &formats[i];
    return NULL;
}

const char *lb_format_name(const lb_format *f) { return f ? f->name : ""; }
const char *lb_format_describe(const lb_format *f) { return f ? f->desc : ""; }
int64_t lb_format_block(const lb_format *f) { return f ? f->block : 0; }
int lb_format_uses_tensor_scale(const lb_format *f) { return f && f->fam == LB__FAM_NV; }

double lb_format_bits_per_weight(const lb_format *f)
{
    if (!f) return 0;
    double k = lb_elem_bits(f->elem);
    return f->block ? k + 8.0 * lb__scale_bytes(f) / (double)f->block : k;
}

size_t lb_format_row_bytes(const lb_format *f, int64_t cols)
{
    if (!f || cols <= 0) return 0;
    if (!f->block) return lb__block_bytes(f, cols);
    return (size_t)(cols / f->block) * lb__block_bytes(f, f->block);
}

/* The kernels of the active ISA, falling back member by member (a NULL
 * member of an ISA's table means "use the next lower path"). */
static const lb__fmt_kernels *kern_at(const lb_format *f, int level)
{
    lb_isa isa = lb_isa_active();
    if (level >= 2 && isa >= LB_ISA_AVX512 && f->simd[1]) return f->simd[1];
    if (level >= 1 && isa >= LB_ISA_AVX2 && f->simd[0]) return f->simd[0];
    return &lb__ref_kernels;
}
#define PICK(f, member) (kern_at(f, 2)->member ? kern_at(f, 2)->member \
                         : kern_at(f, 1)->member ? kern_at(f, 1)->member : lb__ref_kernels.member)

static lb_status check_shape(const lb_format *f, int64_t rows, int64_t cols)
{
    if (rows < 0 || cols <= 0) return lb__err(LB_ERR_ARG, "%s: bad shape %lld x %lld", f->name, (long long)rows,
                                               (long long)cols);
    if (f->block && cols % f->block)
        return lb__err(LB_ERR_ARG, "%s: row length %lld is not a multiple of the block size %lld", f->name,
                       (long long)cols, (long long)f->block);
    return LB_OK;
}

/* NV per-tensor encode scale: elmax * 448 / amax over the finite values,
 * capped at 2^100 so block inverses stay finite; 1 for an all-zero tensor. */
static float nv_tensor_scale(const lb_format *f, const float *x, int64_t n)
{
    uint32_t m = PICK(f, finite_amax)(x, n);
    if (!m) return 1.0f;
    float g = (f->elem == LB_ELEM_E2M1 ? 6.0f : 7.0f) * 448.0f / lb__bits_f32(m);
    return g < 0x1p100f ? g : 0x1p100f;
}

lb_status lb_format_quantize(const lb_format *f, const lb_quant_opts *opts, const float *x, int64_t rows,
                             int64_t cols, void *packed, float *tensor_scale)
{
    LB_ARG(f, "lb_format_quantize: f is NULL");
    LB_ARG(x || !rows, "lb_format_quantize: x is NULL");
    LB_ARG(packed || !rows, "lb_format_quantize: packed is NULL");
    LB_ARG(tensor_scale || f->fam != LB__FAM_NV, "lb_format_quantize: tensor_scale is NULL (needed by NV formats)");
    lb_status s = check_shape(f, rows, cols);
    if (s) return s;
    lb_scale_rule rule = opts ? opts->scale_rule : LB_SCALE_FLOOR;
    if ((unsigned)rule > LB_SCALE_FULL) return lb__err(LB_ERR_ARG, "%s: unknown scale rule %d", f->name, (int)rule);
    if (rule == LB_SCALE_FULL && !lb__format_full_ok(f))
        return lb__err(LB_ERR_ARG, "%s: scale rule full applies to symmetric INT formats", f->name);
    float g = f->fam == LB__FAM_NV ? nv_tensor_scale(f, x, rows * cols) : 1.0f;
    if (tensor_scale) *tensor_scale = g;
    /* the SIMD quantizers implement floor and ceil; MSE and full run the reference */
    lb__quant_fn q = rule == LB_SCALE_MSE || rule == LB_SCALE_FULL ? lb__ref_kernels.quant : PICK(f, quant);
    size_t rb = lb_format_row_bytes(f, cols);
    for (int64_t r = 0; r < rows; r++) q(f, rule, g, x + r * cols, cols, (uint8_t *)packed + (size_t)r * rb);
    return LB_OK;
}

lb_status lb__format_quantize_w(const lb_format *f, const float *imp, const float *x, int64_t rows, int64_t cols,
                               void *packed, float *tensor_scale)
{
    lb_status s = check_shape(f, rows, cols);
    if (s) return s;
    for (int64_t c = 0; c < cols; c++)
        if (!(imp[c] >= 0.0f) || !isfinite(imp[c]))
            return lb__err(LB_ERR_ARG, "%s: importance weight of column %lld is %g (needs finite and >= 0)", f->name,
                           (long long)c, (double)imp[c]);
    float g = f->fam == LB__FAM_NV ? nv_tensor_scale(f, x, rows * cols) : 1.0f;
    *tensor_scale = g;
    size_t rb = lb_format_row_bytes(f, cols);
    for (int64_t r = 0; r < rows; r++)
        lb__quant_row_mse_w(f, g, x + r * cols, imp, cols, (uint8_t *)packed + (size_t)r * rb);
    return LB_OK;
}

lb_status lb_format_dequantize(const lb_format *f, const void *packed, float tensor_scale, int64_t rows,
                               int64_t cols, float *y)
{
    LB_ARG(f, "lb_format_dequantize: f is NULL");
    LB_ARG(packed || !rows, "lb_format_dequantize: packed is NULL");
    LB_ARG(y || !rows, "lb_format_dequantize: y is NULL");
    lb_status s = check_shape(f, rows, cols);
    if (s) return s;
    lb__dequant_fn d = PICK(f, dequant);
    size_t rb = lb_format_row_bytes(f, cols);
    for (int64_t r = 0; r < rows; r++) d(f, tensor_scale, (const uint8_t *)packed + (size_t)r * rb, cols, y + r * cols);
    return LB_OK;
}

float lb_format_dot(const lb_format *f, const void *packed_row, float tensor_scale, const float *x, int64_t cols)
{
    if (!f || !packed_row || !x) return NAN;
    LB_ASSERT(cols > 0 && (!f->block || cols % f->block == 0));
    return PICK(f, dot)(f, tensor_scale, packed_row, x, cols);
}

void lb_quant_error_between(const float *x, const float *y, int64_t n, lb_quant_error *err)
{
    if (!err) return;
    if ((!x || !y) && n > 0) { err->mse = err->qsnr_db = err->max_abs = NAN; return; }
    double se = 0, sx = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)x[i] - y[i];
        se += e * e;
        sx += (double)x[i] * x[i];
        mx = fabs(e) > mx || isnan(e) ? fabs(e) : mx;
    }
    err->mse = n > 0 ? se / (double)n : 0;
    err->qsnr_db = se > 0 ? 10.0 * log10(sx / se) : INFINITY;
    err->max_abs = mx;
}

lb_status lb_format_error(const lb_format *f, const lb_quant_opts *opts, const float *x, int64_t rows,
                          int64_t cols, lb_quant_error *err)
{
    LB_ARG(f, "lb_format_error: f is NULL");
    LB_ARG(x || !rows, "lb_format_error: x is NULL");
    LB_ARG(err, "lb_format_error: err is NULL");
    lb_status s = check_shape(f, rows, cols);
    if (s) return s;
    size_t n = (size_t)(rows * cols);
    uint8_t *p = lb__alloc(lb_format_row_bytes(f, cols) * (size_t)rows + 1);
    float *y = lb__alloc(n * sizeof *y + 1), g = 1.0f;
    if (!p || !y) { LB_FREE(p); LB_FREE(y); return LB_ERR_NOMEM; }
    s = lb_format_quantize(f, opts, x, rows, cols, p, &g);
    if (!s) s = lb_format_dequantize(f, p, g, rows, cols, y);
    if (!s) lb_quant_error_between(x, y, (int64_t)n, err);
    LB_FREE(p);
    LB_FREE(y);
    return s;
}

/* ---- packed tensor files: 64-byte header, then rows * row_bytes.
 *   0 "LBFQ"  4 u32 version (1)  8 u64 rows  16 u64 cols  24 f32 tensor scale
 *  28 u32 row bytes  32 format name, NUL-padded to 32 bytes. Little-endian. */
enum { HDR = 64 };

lb_status lb_format_quantize_file(const lb_format *f, const lb_quant_opts *opts, const char *in_path,
                                  int64_t cols, const char *out_path)
{
    LB_ARG(f, "lb_format_quantize_file: f is NULL");
    LB_ARG(in_path, "lb_format_quantize_file: in_path is NULL");
    LB_ARG(out_path, "lb_format_quantize_file: out_path is NULL");
    lb_map m;
    lb_status s = lb__map_file(in_path, &m);
    if (s) return s;
    int64_t n = (int64_t)(m.size / 4), rows;
    if (m.size % 4 || n == 0) {
        s = lb__err(LB_ERR_FORMAT, "%s: size %zu bytes is not a positive multiple of 4 (raw float32 expected)",
                    in_path, m.size);
        goto out;
    }
    if (cols <= 0) cols = n;
    if (n % cols) {
        s = lb__err(LB_ERR_FORMAT, "%s: %lld values do not split into rows of %lld", in_path, (long long)n,
                    (long long)cols);
        goto out;
    }
    if (f->block && cols % f->block) {
        s = lb__err(LB_ERR_FORMAT, "%s: row length %lld is not a multiple of the %s block size %lld", in_path,
                    (long long)cols, f->name, (long long)f->block);
        goto out;
    }
    rows = n / cols;
    size_t rb = lb_format_row_bytes(f, cols), total = rb * (size_t)rows;
    if (rb > UINT32_MAX) {
        s = lb__err(LB_ERR_UNSUPPORTED, "%s: a packed row of %zu bytes does not fit the file header", in_path, rb);
        goto out;
    }
    uint8_t *p = lb__alloc(total);
    if (!p) { s = LB_ERR_NOMEM; goto out; }
    float g = 1.0f;
    s = lb_format_quantize(f, opts, (const float *)m.data, rows, cols, p, &g);
    if (!s) {
        uint8_t h[HDR] = {'L', 'B', 'F', 'Q', 1};
        uint64_t r64 = (uint64_t)rows, c64 = (uint64_t)cols;
        uint32_t rb32 = (uint32_t)rb;
        memcpy(h + 8, &r64, 8); memcpy(h + 16, &c64, 8); memcpy(h + 24, &g, 4); memcpy(h + 28, &rb32, 4);
        memcpy(h + 32, f->name, strlen(f->name));
        lb_outfile o;
        s = lb__out_open(out_path, &o);
        if (!s) s = lb__out_write(&o, h, HDR);
        if (!s) s = lb__out_write(&o, p, total);
        if (!s) s = lb__out_commit(&o);
        else if (o.f) lb__out_abort(&o);
    }
    LB_FREE(p);
out:
    lb__unmap(&m);
    return s;
}

lb_status lb__fq_parse(const lb_format **fp, const uint8_t *data, size_t size, const char *what, int64_t *rows_out,
                       int64_t *cols_out, float *ts_out)
{
    uint64_t rows, cols;
    uint32_t ver, rb32;
    float g;
    char name[33] = {0};
    if (size < HDR || memcmp(data, "LBFQ", 4))
        return lb__err(LB_ERR_FORMAT, "%s: not a lowbit packed tensor (no LBFQ header)", what);
    memcpy(&ver, data + 4, 4); memcpy(&rows, data + 8, 8); memcpy(&cols, data + 16, 8);
    memcpy(&g, data + 24, 4); memcpy(&rb32, data + 28, 4); memcpy(name, data + 32, 32);
    if (ver != 1) return lb__err(LB_ERR_FORMAT, "%s: header version %u not supported", what, ver);
    const lb_format *f = *fp ? *fp : lb_format_find(name);
    if (!f) return lb__err(LB_ERR_FORMAT, "%s: unknown format '%s'", what, name);
    if (strcmp(name, f->name)) return lb__err(LB_ERR_FORMAT, "%s: holds format '%s', not '%s'", what, name, f->name);
    if (cols == 0 || cols > ((uint64_t)1 << 40) || rows > ((uint64_t)1 << 40) || (f->block && cols % f->block) ||
        rb32 == 0 || rb32 != lb_format_row_bytes(f, (int64_t)cols) || (size - HDR) / rb32 != rows ||
        (size - HDR) % rb32)
        return lb__err(LB_ERR_FORMAT, "%s: header (%llu x %llu, %u bytes/row) does not match the file size %zu", what,
                       (unsigned long long)rows, (unsigned long long)cols, rb32, size);
    *fp = f;
    *rows_out = (int64_t)rows;
    *cols_out = (int64_t)cols;
    *ts_out = g;
    return LB_OK;
}

lb_status lb_format_dequantize_file(const lb_format *f, const char *in_path, const char *out_path)
{
    LB_ARG(f, "lb_format_dequantize_file: f is NULL");
    LB_ARG(in_path, "lb_format_dequantize_file: in_path is NULL");
    LB_ARG(out_path, "lb_format_dequantize_file: out_path is NULL");
    lb_map m;
    lb_status s = lb__map_file(in_path, &m);
    if (s) return s;
    int64_t rows, cols;
    float g;
    s = lb__fq_parse(&f, m.data, m.size, in_path, &rows, &cols, &g);
    float *y = s ? NULL : lb__alloc((size_t)(rows * cols) * sizeof *y + 1);
    if (!s && !y) s = LB_ERR_NOMEM;
    if (!s) s = lb_format_dequantize(f, m.data + HDR, g, rows, cols, y);
    lb_outfile o;
    if (!s) s = lb__out_open(out_path, &o);
    if (!s) {
        s = lb__out_write(&o, y, (size_t)(rows * cols) * sizeof *y);
        if (!s) s = lb__out_commit(&o);
        else lb__out_abort(&o);
    }
    LB_FREE(y);
    lb__unmap(&m);
    return s;
}
