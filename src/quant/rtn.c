/* rtn.c: round to nearest. Each block of the format gets its scale from the
 * format's rule (floor / ceil / MSE search over candidate scales, see
 * formats/blocks.c) and every element is rounded to the nearest grid value.
 * This is the baseline every other method is measured against.
 *
 * With calibration statistics (o->calib, "rtn --calib", llama.cpp's
 * importance matrix) the MSE scale search of every block minimises
 *   sum_i w_i (x_i - q_i)^2,   w_i = mean x_i^2 of input column i,
 * which is the block's share of the layer output error E[(e . x)^2] when
 * the cross terms of H are dropped (diag H = mean x^2). llama.cpp multiplies
 * w_i by sqrt(sigma^2 + x_i^2) of the weight itself; we keep the plain
 * statistic (docs/quant.md). The floor rule (the default) is promoted to
 * the search; ceil and full have no search and are refused with calibration.
 * Without calibration the result is bit-identical to the plain rule. */
#include "quant/quant.h"
#include "formats/formats.h"

lb_status lb__calib_check(const lb_quantize_opts *o, const lb_qmatrix *out, bool need_abs, bool sequential)
{
    const char *m = out->method ? out->method->name : "method";
    const lb_calib_stats *c = o->calib;
    if (!c) return lb__err(LB_ERR_ARG, "%s needs calibration statistics (--calib STATS or --calib-text FILE)", m);
    if (c->n != out->cols)
        return lb__err(LB_ERR_ARG, "%s: calibration statistics are for an input of size %lld, the matrix has %lld "
                       "columns (statistics from another model?)", m, (long long)c->n, (long long)out->cols);
    if (!c->H || !c->sq || (need_abs && !c->abs))
        return lb__err(LB_ERR_ARG, "%s: calibration statistics lack H, sq%s%s", m, need_abs ? " or abs" : "",
                       need_abs && out->hadamard_block ? " (mean |x| is unknown after a Hadamard rotation)" : "");
    if (sequential && (!c->Hq || !c->Hqx))
        return lb__err(LB_ERR_ARG, "%s needs sequential calibration (the quantized-path statistics Hq, Hqx)", m);
    const double *mats[3] = {c->H, sequential ? c->Hq : NULL, sequential ? c->Hqx : NULL};
    for (int64_t i = 0; i < c->n; i++) {
        bool ok = isfinite(c->sq[i]) && (!c->abs || isfinite(c->abs[i]));
        for (int k = 0; k < 3; k++)
            for (int64_t j = 0; mats[k] && j < c->n; j++) ok = ok && isfinite(mats[k][i * c->n + j]);
        if (!ok)
            return lb__err(LB_ERR_ARG, "%s: calibration statistics hold NaN or Inf (input column %lld)", m,
                           (long long)i);
    }
    return LB_OK;
}

lb_status lb__rtn_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out)
{
    lb_quant_opts fo = {o->scale_rule};
    if (!o->calib) return lb_format_quantize(out->fmt, &fo, w, out->rows, out->cols, out->packed, &out->tensor_scale);
    if (o->scale_rule != LB_SCALE_FLOOR && o->scale_rule != LB_SCALE_MSE)
        return lb__err(LB_ERR_ARG, "rtn with calibration: the importance weights act through the MSE scale "
                       "search; scale rule %s has none (use mse)", o->scale_rule == LB_SCALE_CEIL ? "ceil" : "full");
    lb_status s = lb__calib_check(o, out, false, false);
    if (s) return s;
    float *imp = lb__alloc((size_t)out->cols * sizeof *imp);
    if (!imp) return LB_ERR_NOMEM;
    for (int64_t i = 0; i < out->cols; i++) imp[i] = (float)o->calib->sq[i];
    s = lb__format_quantize_w(out->fmt, imp, w, out->rows, out->cols, out->packed, &out->tensor_scale);
    LB_FREE(imp);
    return s;
}
