/* smoothquant.c: SmoothQuant (Xiao et al. 2023, arXiv 2211.10438) as a
 * weight method: migrate the activations' outlier columns into the weights
 * with a per-column scale before both are quantized (W8A8's standard
 * baseline; pair it with an activation format, docs/activations.md).
 *
 *   s_j = max|X_j|^alpha / max|W_j|^(1 - alpha),   alpha = 0.5 (the paper's default)
 *   W' = W diag(s) (quantized by rtn), x' = x / s (online)
 *
 * max|X_j| is the calibration statistic lb_calib_stats.amax of this matrix's
 * input; max|W_j| the column's largest weight magnitude. A column with a
 * zero statistic on either side keeps s_j = 1. The identity of lowbit.h
 * holds with col_scale = 1 / s: W ~= dequant(packed) diag(col_scale), and
 * the column-scale transform multiplies the activation by 1 / s online,
 * before the activation format quantizes it. */
#include "quant/smoothquant.h"

#define SQ_ALPHA 0.5

lb_status lb__smoothquant_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out)
{
    const lb_calib_stats *c = o->calib;
    int64_t rows = out->rows, cols = out->cols;
    if (!c || !c->amax)
        return lb__err(LB_ERR_ARG, "smoothquant: needs calibration statistics with amax (max |x| per input column)");
    if (c->n != cols)
        return lb__err(LB_ERR_ARG, "smoothquant: statistics of %lld columns for a matrix of %lld", (long long)c->n,
                       (long long)cols);
    float *cs = lb__alloc(sizeof(float) * (size_t)cols), *ws = lb__alloc(sizeof(float) * (size_t)(rows * cols));
    if (!cs || !ws) { LB_FREE(cs); LB_FREE(ws); return LB_ERR_NOMEM; }
    for (int64_t j = 0; j < cols; j++) {
        double wm = 0;
        for (int64_t r = 0; r < rows; r++) wm = fmax(wm, fabs((double)w[r * cols + j]));
        double s = c->amax[j] > 0 && wm > 0 && isfinite(c->amax[j]) ? pow(c->amax[j], SQ_ALPHA) / pow(wm, 1 - SQ_ALPHA) : 1;
        cs[j] = (float)(1.0 / s);
        if (!(cs[j] > 0 && cs[j] < INFINITY)) cs[j] = 1.0f;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) ws[r * cols + j] = w[r * cols + j] / cs[j];
    lb_status s = lb__rtn_quantize(o, ws, out);
    LB_FREE(ws);
    if (s) { LB_FREE(cs); return s; }
    out->col_scale = cs;
    return LB_OK;
}
