/* evict_knorm.c: Knorm (kvpress KnormPress): score -||k||, so the keys of
 * smallest norm stay. */
#include "kv/evict.h"
#include "kv/kv.h"
#include <math.h>

lb_status lb__score_knorm(const lb__evict_params *p, const lb__evict_head *h, float *score, double *scratch)
{
    for (int64_t j = 0; j < h->T; j++) score[j] = (float)-lb__evict_norm(h->k + j * h->hd, h->hd);
    return LB_OK;
}

static const lb__kv_param params[] = {LB_EVICT_P_RATIO, LB_EVICT_P_ADA, LB_EVICT_P_FLOOR, LB_EVICT_P_EVERY,
                                      LB_EVICT_P_TARGET};
const lb__kv_policy lb__kv_evict_knorm =
    LB_EVICT_ROW("knorm", "Knorm: keep the keys of smallest norm (score -||k||)", params, 0);
