/* magnitude.c: the magnitude criterion, score |W_ij|; no statistics, no
 * weight update. The baseline Wanda and SparseGPT must beat. */
#include "sparsity/sparsity.h"
#include <math.h>

static lb_status magnitude_prune(const lb_prune_opts *o, const lb__pattern *p, float *w, int64_t rows, int64_t cols,
                                 uint8_t *keep)
{
    double *s = lb__alloc((size_t)(rows * cols) * sizeof *s);
    if (!s) return lb__err(LB_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < rows * cols; i++) s[i] = fabs((double)w[i]);
    lb_status st = lb__prune_by_score(p, s, w, rows, cols, keep);
    LB_FREE(s);
    return st;
}

const lb__criterion lb__crit_magnitude = {
    .name = "magnitude",
    .desc = "|W|: the largest weights stay",
    .prune = magnitude_prune,
};
