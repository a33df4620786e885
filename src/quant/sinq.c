/* sinq.c: Sinkhorn-normalized quantization (SINQ, Mueller et al. 2025,
 * arXiv 2509.22944), calibration-free.
 *
 * The matrix is cut into tiles of all rows x one group of g columns (g = the
 * format's block, or all columns for per-row formats). In each tile, W is
 * written as diag(s) W^ diag(t) and s (rows) and t (columns) are found by a
 * Sinkhorn-style iteration in the log domain: alternately divide every column
 * and then every row by its standard deviation (relative to the geometric
 * mean of those deviations), each log update clamped to [-1, 1], for
 * `iters` rounds (16). The imbalance of an iterate is max std / min std over
 * the tile's rows and columns; the most balanced iterate (the unscaled one
 * included) is kept, so the imbalance never grows.
 *
 * Storage: the row factor s[r] of a tile multiplies a whole group of row r,
 * exactly what the per-group scale of the format already carries, so it is
 * folded into that scale: quantizing W^ with s folded back is quantizing
 * W diag(1/t) directly, which is what we do (up to the rounding of the stored
 * scale, the two are the same computation). The column factor t goes into
 * lb_qmatrix.col_scale (FP32, normalized to geometric mean 1 per tile) and
 * is applied to the activations online: y = Q (t .* x).
 *
 * Formats: with INT groups (sym or asym: scale + zero point per group) this
 * is the paper's setting. NF4 (absmax per 64) works the same way. For MX and
 * NV the block scale is a power of two (E8M0) or a UE4M3 code, and the
 * column scale still reshapes each block's distribution; whether that helps
 * is measured, not assumed (docs/quant.md). */
#include "quant/quant.h"
#include <math.h>

#define SINQ_STEP 1.0     /* largest |log update| per half-iteration */
#define SINQ_RANGE 6.9    /* |log t| <= ln 1000 */

/* Row and column standard deviations of the scaled tile w[r][c] e^-(a_r + b_c). */
static void tile_stds(const float *w, int64_t rows, int64_t g, int64_t ld, const double *a, const double *b,
                      double *rs, double *cs, double *csum, double *csq, double *eb)
{
    for (int64_t c = 0; c < g; c++) { csum[c] = 0; csq[c] = 0; eb[c] = exp(-b[c]); }
    for (int64_t r = 0; r < rows; r++) {
        double sum = 0, sq = 0, ea = exp(-a[r]);
        for (int64_t c = 0; c < g; c++) {
            double v = w[r * ld + c] * ea * eb[c];
            sum += v; sq += v * v;
            csum[c] += v; csq[c] += v * v;
        }
        double m = sum / (double)g, var = sq / (double)g - m * m;
        rs[r] = var > 0 ? sqrt(var) : 0;
    }
    for (int64_t c = 0; c < g; c++) {
        double m = csum[c] / (double)rows, var = csq[c] / (double)rows - m * m;
        cs[c] = var > 0 ? sqrt(var) : 0;
    }
}

/* max / min over the positive entries of x and y (1 when none). */
static double imbalance(const double *x, int64_t nx, const double *y, int64_t ny)
{
    double lo = INFINITY, hi = 0;
    for (int64_t i = 0; i < nx + ny; i++) {
        double v = i < nx ? x[i] : y[i - nx];
        if (v > 0) { lo = v < lo ? v : lo; hi = v > hi ? v : hi; }
    }
    return hi > 0 ? hi / lo : 1.0;
}

/* One Sinkhorn half-step: move each log scale toward its std over the
 * geometric mean of the positive stds. */
static void balance(double *logs, const double *std, int64_t n, double lim)
{
    double lsum = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) if (std[i] > 0) { lsum += log(std[i]); k++; }
    if (!k) return;
    double tgt = lsum / (double)k;
    for (int64_t i = 0; i < n; i++) {
        if (!(std[i] > 0)) continue;
        double d = log(std[i]) - tgt;
        d = d > SINQ_STEP ? SINQ_STEP : d < -SINQ_STEP ? -SINQ_STEP : d;
        double v = logs[i] + d;
        logs[i] = v > lim ? lim : v < -lim ? -lim : v;
    }
}

void lb__sinq_tile(const float *w, int64_t rows, int64_t g, int64_t ld, int iters, float *t, double *imb_before,
                   double *imb_after)
{
    size_t n = (size_t)(2 * rows + 6 * g);
    double *buf = LB_CALLOC(n, sizeof *buf);
    if (!buf) {   /* no memory: no scaling (plain RTN), still a valid result */
        for (int64_t c = 0; c < g; c++) t[c] = 1.0f;
        *imb_before = *imb_after = 1.0;
        return;
    }
    double *a = buf, *rs = a + rows, *b = rs + rows, *cs = b + g, *csum = cs + g, *csq = csum + g, *best = csq + g,
           *eb = best + g;
    tile_stds(w, rows, g, ld, a, b, rs, cs, csum, csq, eb);
    double ib = imbalance(rs, rows, cs, g);
    *imb_before = ib;
    for (int it = 0; it < iters; it++) {
        balance(b, cs, g, SINQ_RANGE);
        tile_stds(w, rows, g, ld, a, b, rs, cs, csum, csq, eb);
        balance(a, rs, rows, 1e300);
        tile_stds(w, rows, g, ld, a, b, rs, cs, csum, csq, eb);
        double cur = imbalance(rs, rows, cs, g);
        if (cur < ib) { ib = cur; memcpy(best, b, (size_t)g * sizeof *b); }
    }
    *imb_after = ib;
    double mean = 0;
    for (int64_t c = 0; c < g; c++) mean += best[c];
    mean /= (double)g;
    for (int64_t c = 0; c < g; c++) t[c] = (float)exp(best[c] - mean);
    LB_FREE(buf);
}

lb_status lb__sinq_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out)
{
    int64_t rows = out->rows, cols = out->cols, B = lb_format_block(out->fmt);
    int64_t g = B ? B : cols;
    int iters = o->sinq_iters > 0 ? o->sinq_iters : 16;
    float *t = lb__alloc((size_t)cols * sizeof *t), *ws = lb__alloc((size_t)(rows * cols) * sizeof *ws);
    if (!t || !ws) { LB_FREE(t); LB_FREE(ws); return LB_ERR_NOMEM; }
    double sb = 0, sa = 0;
    for (int64_t j = 0; j < cols / g; j++) {
        double ib, ia;
        lb__sinq_tile(w + j * g, rows, g, cols, iters, t + j * g, &ib, &ia);
        sb += ib; sa += ia;
    }
    out->imbalance_before = sb / (double)(cols / g);
    out->imbalance_after = sa / (double)(cols / g);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) ws[r * cols + c] = w[r * cols + c] / t[c];
    lb_quant_opts fo = {o->scale_rule};
    lb_status s = lb_format_quantize(out->fmt, &fo, ws, rows, cols, out->packed, &out->tensor_scale);
    LB_FREE(ws);
    if (s) { LB_FREE(t); return s; }
    out->col_scale = t;
    return LB_OK;
}
