/* wanda.c: Wanda (Sun et al., locuslab/wanda): score S_ij = |W_ij| ||X_j||,
 * the weight times the norm of its input column over the calibration
 * tokens, from the statistics' mean x^2 (sqrt(sq_j) = ||X_j|| / sqrt(T), a
 * per-column constant that changes no comparison). Compared within each
 * output row (unstructured) or group (N:M, V:N:M) as the reference does; no
 * weight update. */
#include "sparsity/sparsity.h"
#include <math.h>

static lb_status wanda_prune(const lb_prune_opts *o, const lb__pattern *p, float *w, int64_t rows, int64_t cols,
                             uint8_t *keep)
{
    if (!o->calib->sq) return lb__err(LB_ERR_ARG, "criterion wanda needs the statistics' mean x^2 (sq is NULL)");
    double *s = lb__alloc((size_t)(rows * cols) * sizeof *s);
    if (!s) return lb__err(LB_ERR_NOMEM, "out of memory");
    for (int64_t c = 0; c < cols; c++) {
        double nj = sqrt(o->calib->sq[c] > 0 ? o->calib->sq[c] : 0);
        for (int64_t r = 0; r < rows; r++) s[r * cols + c] = fabs((double)w[r * cols + c]) * nj;
    }
    lb_status st = lb__prune_by_score(p, s, w, rows, cols, keep);
    LB_FREE(s);
    return st;
}

const lb__criterion lb__crit_wanda = {
    .name = "wanda",
    .desc = "|W| x ||X_j|| (needs calibration: mean x^2 per input)",
    .calib = true,
    .prune = wanda_prune,
};
