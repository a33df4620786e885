/* sparsity.h: private side of pruning (docs/sparsity.md). A pruning run is
 * one criterion (how important each weight is: magnitude, Wanda, SparseGPT)
 * and one pattern (which sets of weights may be kept: unstructured at a
 * ratio per row, N:M over consecutive inputs, V:N:M blocks). Each is one
 * file filling one row of the tables in registry.c.
 *
 * Masks are bytes, keep[r * ld + c] = 1 for a kept weight. Every selection
 * prunes the lowest scores first; equal scores prune the lower column index
 * first (so a NumPy argsort(kind="stable") reproduces it). */
#ifndef LB_SPARSITY_H
#define LB_SPARSITY_H

#include "quant/quant.h"

typedef enum lb__pat_kind { LB__PAT_UNSTRUCTURED, LB__PAT_NM, LB__PAT_VNM } lb__pat_kind;

/* A parsed pattern. N:M keeps n of every m consecutive inputs; V:N:M keeps
 * 4 of every m columns in each block of v rows, then n of those 4 per row. */
typedef struct lb__pattern {
    lb__pat_kind kind;
    double ratio;             /* unstructured: fraction pruned per row, [0, 1) */
    int v, n, m;
} lb__pattern;

typedef struct lb__pattern_desc {
    const char *name;
    const char *syntax;
    /* 1 when text has this pattern's form (then *p is filled or an error
     * set in *s), 0 when not this pattern. */
    int (*parse)(const char *text, double ratio, lb__pattern *p, lb_status *s);
    /* keep (rows x cols, row stride kld) from score (row stride ld): the
     * kept set the pattern allows with the highest scores */
    void (*select)(const lb__pattern *p, const double *score, int64_t rows, int64_t cols, int64_t ld, uint8_t *keep,
                   int64_t kld);
} lb__pattern_desc;

extern const lb__pattern_desc lb__pat_unstructured, lb__pat_nm, lb__pat_vnm;

/* Parse "unstructured", "N:M" or "V:N:M" (ratio: unstructured only). */
lb_status lb__pattern_parse(const char *text, double ratio, lb__pattern *p);
const lb__pattern_desc *lb__pattern_desc_of(const lb__pattern *p);
/* "unstructured 50%", "2:4", "64:2:8" */
void lb__pattern_text(const lb__pattern *p, char *out, size_t cap);
/* The fraction of weights the pattern prunes for a width of cols (group tails included). */
double lb__pattern_sparsity(const lb__pattern *p, int64_t cols);
/* Weights kept of a group of g <= m consecutive inputs (N:M tails: floor(n g / m)). */
int64_t lb__nm_keep(int n, int m, int64_t g);

/* Sort helper: idx[0..n) = 0..n-1 ordered by (score ascending, index ascending). */
void lb__order_asc(const double *score, int64_t stride, int64_t n, int64_t *idx);

/* A criterion: w (rows x cols) is pruned in place (pruned entries 0; SparseGPT
 * also updates kept ones) and keep filled (row stride cols). */
typedef struct lb__criterion {
    const char *name;
    const char *desc;
    bool calib;               /* needs calibration statistics */
    lb_status (*prune)(const lb_prune_opts *o, const lb__pattern *p, float *w, int64_t rows, int64_t cols,
                       uint8_t *keep);
} lb__criterion;

extern const lb__criterion lb__crit_magnitude, lb__crit_wanda, lb__crit_sparsegpt;
const lb__criterion *lb__criterion_find(const char *name);
/* Score-based criteria share this: select by score, zero the pruned. */
lb_status lb__prune_by_score(const lb__pattern *p, double *score, float *w, int64_t rows, int64_t cols,
                             uint8_t *keep);

/* SparseGPT's joint prune-and-quantize (sparsegpt.c): N:M / V:N:M masks,
 * kept values rounded onto format f's grids inside the OBS loop; out gets
 * the kept values packed (rows x kept per row), w the decoded values.
 * _fits: LB_ERR_UNSUPPORTED (error set) when the pattern, width and format
 * cannot be stored that way. */
lb_status lb__sparsegpt_joint_fits(const lb__pattern *p, const lb_format *f, int64_t cols);
lb_status lb__sparsegpt_joint(const lb_prune_opts *o, const lb__pattern *p, const lb_format *f, float *w,
                              int64_t rows, int64_t cols, uint8_t *keep, lb_qmatrix *out);

#endif
