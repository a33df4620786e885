/* unstructured.c: the unstructured pattern: each row prunes its
 * floor(cols * ratio) lowest scores, so every row keeps the same count
 * (SparseGPT's own unstructured rule, one threshold per block of columns
 * over all rows, lives in sparsegpt.c). Any kept set is a valid
 * unstructured mask, so check accepts every mask. */
#include "sparsity/sparsity.h"
#include <math.h>

static int un_parse(const char *text, double ratio, lb__pattern *p, lb_status *s)
{
    if (strcmp(text, "unstructured")) return 0;
    *p = (lb__pattern){.kind = LB__PAT_UNSTRUCTURED, .ratio = ratio};
    *s = ratio >= 0 && ratio < 1 ? LB_OK
                                 : lb__err(LB_ERR_ARG, "ratio %g: the fraction pruned must lie in [0, 1)", ratio);
    return 1;
}

static void un_select(const lb__pattern *p, const double *score, int64_t rows, int64_t cols, int64_t ld,
                      uint8_t *keep, int64_t kld)
{
    int64_t k = (int64_t)floor((double)cols * p->ratio);
    int64_t *idx = lb__alloc((size_t)cols * sizeof *idx);
    LB_ASSERT(idx);
    for (int64_t r = 0; r < rows; r++) {
        lb__order_asc(score + r * ld, 1, cols, idx);
        uint8_t *kr = keep + r * kld;
        for (int64_t c = 0; c < cols; c++) kr[c] = 1;
        for (int64_t i = 0; i < k; i++) kr[idx[i]] = 0;
    }
    LB_FREE(idx);
}


const lb__pattern_desc lb__pat_unstructured = {
    .name = "unstructured",
    .syntax = "unstructured (with --ratio R: R of every row pruned)",
    .parse = un_parse,
    .select = un_select,
};
