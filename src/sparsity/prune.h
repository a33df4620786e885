/* prune.h: model-level pruning's private pieces (model_prune.c, stats.c). */
#ifndef LB_SPARSITY_PRUNE_H
#define LB_SPARSITY_PRUNE_H

#include "sparsity/sparsity.h"
#include "model/model.h"

/* Interim statistics from calibration tokens (stats.c). */
typedef struct lb__pstats lb__pstats;
lb_status lb__pstats_collect(const lb_model *m, const int32_t *tokens, int64_t n, int64_t ctx, bool want_h,
                             int n_threads, lb__pstats **out);
void lb__pstats_free(lb__pstats *p);
/* H (cols x cols, may be NULL) and sq (cols) of the linear `name` (means). */
lb_status lb__pstats_for(const lb__pstats *p, const char *name, double *H, double *sq, int64_t cols);

#endif
