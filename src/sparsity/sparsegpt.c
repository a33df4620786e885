/* sparsegpt.c: SparseGPT (Frantar & Alistarh, IST-DASLab/sparsegpt): OBS
 * pruning with the GPTQ machinery. With H = mean x x^T (dead inputs: H_jj
 * = 1 and the column zeroed), damping lambda = damp * mean(diag H) and
 * U = chol(H^-1) upper (lb__chol_inv_upper), columns are visited left to
 * right; a pruned weight is set to 0, and its error err = w / U_ii is fed to
 * the columns to its right: W[:, j] -= err * U[i, j]. Masks are chosen from
 * the current (already updated) weights with the score w^2 / U_jj^2:
 *   - unstructured: per block of `block` columns (128), one threshold over
 *     all rows of the block: the floor(rows * width * ratio) lowest scores
 *     are pruned (the reference's `<=` threshold prunes one more);
 *   - N:M and V:N:M: at the first column of every group of M, the pattern's
 *     own selection on the M columns (the block is a multiple of M).
 * All in double; the kept weights are rounded to float at the end. The
 * reference's lazy batch update is the same sum reordered; this applies
 * each column's update at once. */
#include "sparsity/sparsity.h"
#include <math.h>
#include <stdio.h>

/* H + damping, dead columns fixed, in place; W's dead columns zeroed. */
static void sgpt_damp(double *H, double *W, int64_t rows, int64_t n, double damp)
{
    double mean = 0;
    for (int64_t j = 0; j < n; j++) {
        if (H[j * n + j] == 0) {
            H[j * n + j] = 1;
            for (int64_t r = 0; r < rows; r++) W[r * n + j] = 0;
        }
        mean += H[j * n + j];
    }
    mean /= (double)n;
    for (int64_t j = 0; j < n; j++) H[j * n + j] += damp * mean;
}

/* Unstructured mask of columns [i1, i2): one threshold over the block. */
static lb_status block_mask(const lb__pattern *p, const double *W, const double *U, int64_t rows, int64_t n,
                            int64_t i1, int64_t i2, uint8_t *keep)
{
    int64_t g = i2 - i1, numel = rows * g, k = (int64_t)floor((double)numel * p->ratio);
    double *s = lb__alloc((size_t)numel * sizeof *s);
    int64_t *idx = lb__alloc((size_t)numel * sizeof *idx);
    if (!s || !idx) { LB_FREE(s); LB_FREE(idx); return lb__err(LB_ERR_NOMEM, "out of memory"); }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < g; j++) {
            double w = W[r * n + i1 + j], d = U[(i1 + j) * n + i1 + j];
            s[r * g + j] = w * w / (d * d);
        }
    lb__order_asc(s, 1, numel, idx);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < g; j++) keep[r * n + i1 + j] = 1;
    for (int64_t i = 0; i < k; i++) keep[idx[i] / g * n + i1 + idx[i] % g] = 0;
    LB_FREE(s);
    LB_FREE(idx);
    return LB_OK;
}

/* N:M or V:N:M mask of the group of columns [i, i + g). */
static void group_mask(const lb__pattern *p, const double *W, const double *U, int64_t rows, int64_t n, int64_t i,
                       int64_t g, double *s, uint8_t *keep)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < g; j++) {
            double w = W[r * n + i + j], d = U[(i + j) * n + i + j];
            s[r * g + j] = w * w / (d * d);
        }
    lb__pattern_desc_of(p)->select(p, s, rows, g, g, keep + i, n);
}

/* Prune column i of every row and feed the error to the columns after it. */
static void prune_column(double *W, const double *U, int64_t rows, int64_t n, int64_t i, const uint8_t *keep)
{
    double d = U[i * n + i];
    const double *ui = U + i * n;
    for (int64_t r = 0; r < rows; r++) {
        double *wr = W + r * n;
        if (keep[r * n + i]) continue;
        double err = wr[i] / d;
        wr[i] = 0;
        for (int64_t j = i + 1; j < n; j++) wr[j] -= err * ui[j];
    }
}

static lb_status sgpt_run(const lb_prune_opts *o, const lb__pattern *p, double *W, double *H, int64_t rows,
                          int64_t n, uint8_t *keep)
{
    sgpt_damp(H, W, rows, n, o->damp > 0 ? o->damp : 0.01);
    lb_status s = lb__chol_inv_upper(H, n);
    if (s) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", lb_errmsg());
        return lb__err(s, "sparsegpt: the damped Hessian: %s", msg);
    }
    int64_t B = o->block > 0 ? o->block : 128, m = p->kind == LB__PAT_UNSTRUCTURED ? 1 : p->m;
    B = lb__max64(m, B / m * m);
    double *gs = lb__alloc((size_t)(rows * m) * sizeof *gs);
    if (!gs) return lb__err(LB_ERR_NOMEM, "out of memory");
    for (int64_t i1 = 0; i1 < n && !s; i1 += B) {
        int64_t i2 = lb__min64(n, i1 + B);
        if (p->kind == LB__PAT_UNSTRUCTURED) s = block_mask(p, W, H, rows, n, i1, i2, keep);
        for (int64_t i = i1; i < i2 && !s; i++) {
            if (p->kind != LB__PAT_UNSTRUCTURED && (i - i1) % m == 0)
                group_mask(p, W, H, rows, n, i, lb__min64(m, i2 - i), gs, keep);
            prune_column(W, H, rows, n, i, keep);
        }
    }
    LB_FREE(gs);
    return s;
}

static lb_status sparsegpt_prune(const lb_prune_opts *o, const lb__pattern *p, float *w, int64_t rows, int64_t cols,
                                 uint8_t *keep)
{
    if (!o->calib->H) return lb__err(LB_ERR_ARG, "criterion sparsegpt needs the statistics' H = mean x x^T (H is NULL)");
    size_t nw = (size_t)(rows * cols), nh = (size_t)(cols * cols);
    double *W = lb__alloc(nw * sizeof *W), *H = lb__alloc(nh * sizeof *H);
    lb_status s = W && H ? LB_OK : lb__err(LB_ERR_NOMEM, "out of memory");
    if (!s) {
        for (size_t i = 0; i < nw; i++) W[i] = w[i];
        memcpy(H, o->calib->H, nh * sizeof *H);
        s = sgpt_run(o, p, W, H, rows, cols, keep);
    }
    if (!s)
        for (size_t i = 0; i < nw; i++) w[i] = keep[i] ? (float)W[i] : 0.0f;
    LB_FREE(W);
    LB_FREE(H);
    return s;
}

const lb__criterion lb__crit_sparsegpt = {
    .name = "sparsegpt",
    .desc = "OBS pruning with error feedback (needs calibration: H = mean x x^T)",
    .calib = true,
    .prune = sparsegpt_prune,
};
