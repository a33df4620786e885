/* registry.c: the one table of weight quantizers and the entry points that
 * every method shares: format resolution (family + group), argument checks,
 * the optional Hadamard rotation before the method runs, dequantization back
 * into the original space.
 *
 * Adding a method = one file with its lb__quant_method_fn and one row below.
 * Names are lowercase and stable: they are written into model files. */
#include "quant/quant.h"
#include <math.h>

/* name, description, rotate first, needs calibration, needs sequential calibration, method */
static const lb_quantizer methods[] = {
    {"rtn", "round to nearest with the format's scale rule (floor, ceil or MSE-searched)", false, false, false, lb__rtn_quantize},
    {"sinq", "Sinkhorn-normalized: per (rows x group) tile, balance row/column std devs, fold the column scale "
             "into the activations, then round to nearest", false, false, false, lb__sinq_quantize},
    {"hadamard+rtn", "block Hadamard rotation of the input space (W R^T offline, R x online), then rtn", true, false, false,
     lb__rtn_quantize},
    {"hadamard+sinq", "block Hadamard rotation of the input space, then sinq", true, false, false, lb__sinq_quantize},
    {"awq", "activation-aware: column scale s = mean|x|^alpha, alpha searched (20 points) for the least layer "
            "output error tr(E H E^T); W diag(s) rounded to nearest, 1/s kept as the column scale", false, true, false,
     lb__awq_quantize},
    {"awq+sinq", "A-SINQ: the awq scale search with sinq as the quantizer (column scale t/s)", false, true, false,
     lb__awq_sinq_quantize},
    {"qronos", "Qronos: fits Q xq to W x (float-path x, quantized-path xq from sequential calibration): "
               "least-squares first column, re-solve, then GPTQ error diffusion on a fixed rtn grid", false, true, true,
     lb__qronos_quantize},
};
static const int n_methods = (int)(sizeof methods / sizeof *methods);

int lb_quantizer_count(void) { return n_methods; }
const lb_quantizer *lb_quantizer_at(int i) { return i >= 0 && i < n_methods ? &methods[i] : NULL; }
const char *lb_quantizer_name(const lb_quantizer *q) { return q ? q->name : ""; }
const char *lb_quantizer_describe(const lb_quantizer *q) { return q ? q->desc : ""; }

const lb_quantizer *lb_quantizer_find(const char *name)
{
    for (int i = 0; name && i < n_methods; i++)
        if (!strcmp(methods[i].name, name)) return &methods[i];
    return NULL;
}

/* "int4_asym_bf16" -> "int4_g<group>_asym_bf16": the family's group name. */
static bool family_name(const char *name, int64_t group, char *buf, size_t cap)
{
    if (strncmp(name, "int", 3) || !name[3] || !strchr("2348", name[3])) return false;
    const char *rest = name + 4;
    if (*rest && *rest != '_') return false;
    snprintf(buf, cap, "int%c_g%lld%s", name[3], (long long)group, rest);
    return true;
}

lb_status lb_quant_format_resolve(const char *name, int64_t group, const lb_format **out)
{
    LB_ARG(out, "lb_quant_format_resolve: out is NULL");
    *out = NULL;
    LB_ARG(name && *name, "lb_quant_format_resolve: name is NULL or empty (no format given)");
    if (group < 0 || (group && !lb__is_pow2(group)))
        return lb__err(LB_ERR_ARG, "group size %lld is not a power of two", (long long)group);
    const lb_format *f = lb_format_find(name);
    char buf[64];
    if (!f && group && family_name(name, group, buf, sizeof buf)) f = lb_format_find(buf);
    if (!f) {
        if (group && family_name(name, group, buf, sizeof buf))
            return lb__err(LB_ERR_NOTFOUND, "no format '%s' (group %lld): the INT families have groups 32, 64 "
                           "and 128 ('lowbit formats' lists them)", name, (long long)group);
        return lb__err(LB_ERR_NOTFOUND, "unknown format '%s' ('lowbit formats' lists them)", name);
    }
    if (group && lb_format_block(f) != group)
        return lb__err(LB_ERR_ARG, "format '%s' has block size %lld, not the group %lld asked for",
                       lb_format_name(f), (long long)lb_format_block(f), (long long)group);
    *out = f;
    return LB_OK;
}

void lb_qmatrix_free(lb_qmatrix *m)
{
    if (!m) return;
    LB_FREE(m->packed);
    LB_FREE(m->col_scale);
    LB_FREE(m->hadamard_signs);
    m->packed = NULL; m->col_scale = NULL; m->hadamard_signs = NULL;
}

lb_status lb_quantize_matrix(const lb_quantizer *q, const lb_format *f, const lb_quantize_opts *opts,
                             const float *w, int64_t rows, int64_t cols, lb_qmatrix *out)
{
    LB_ARG(out, "lb_quantize_matrix: out is NULL");
    memset(out, 0, sizeof *out);
    LB_ARG(q, "lb_quantize_matrix: q is NULL");
    LB_ARG(f, "lb_quantize_matrix: f is NULL");
    LB_ARG(w, "lb_quantize_matrix: w is NULL");
    if (rows <= 0 || cols <= 0 || rows > ((int64_t)1 << 40) / cols)
        return lb__err(LB_ERR_ARG, "%s: bad matrix shape %lld x %lld", q->name, (long long)rows, (long long)cols);
    int64_t B = lb_format_block(f);
    if (B && cols % B)
        return lb__err(LB_ERR_ARG, "%s/%s: %lld columns are not a multiple of the block size %lld", q->name,
                       lb_format_name(f), (long long)cols, (long long)B);
    lb_quantize_opts def = {0};
    if (!opts) opts = &def;
    *out = (lb_qmatrix){.fmt = f, .method = q, .rows = rows, .cols = cols,
                        .row_bytes = lb_format_row_bytes(f, cols), .tensor_scale = 1.0f};
    float *tmp = NULL;
    lb_status s = LB_OK;
    if (!(out->packed = lb__alloc(out->row_bytes * (size_t)rows))) s = LB_ERR_NOMEM;
    if (!s && q->rotate) {
        tmp = lb__alloc((size_t)(rows * cols) * sizeof *tmp);
        if (!tmp) s = LB_ERR_NOMEM;
        else {
            memcpy(tmp, w, (size_t)(rows * cols) * sizeof *tmp);
            s = lb__quant_rotate(opts, tmp, rows, cols, out);
            w = tmp;
        }
    }
    if (!s) s = q->quantize(opts, w, out);
    LB_FREE(tmp);
    if (s) lb_qmatrix_free(out);
    return s;
}

lb_weight lb__qmatrix_weight(const lb_qmatrix *q)
{
    lb_weight w = q->fmt ? lb__weight_block(q->fmt, q->tensor_scale, q->packed, q->rows, q->cols)
                         : lb__weight_dense(q->packed, LB_DTYPE_F32, q->rows, q->cols);
    if (q->hadamard_block)
        lb__weight_push(&w, (lb_xform){.kind = LB_XFORM_HADAMARD, .block = q->hadamard_block, .signs = q->hadamard_signs});
    if (q->col_scale) lb__weight_push(&w, (lb_xform){.kind = LB_XFORM_COL_SCALE, .scale = q->col_scale});
    w.method = q->method ? q->method->name : NULL;
    return w;
}

lb_status lb_qmatrix_dequantize(const lb_qmatrix *m, float *w)
{
    LB_ARG(m, "lb_qmatrix_dequantize: m is NULL");
    LB_ARG(w, "lb_qmatrix_dequantize: w is NULL");
    lb_weight v = lb__qmatrix_weight(m);
    return lb__weight_f32(&v, w);
}
