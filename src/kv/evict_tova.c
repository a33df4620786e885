/* evict_tova.c: TOVA (kvpress TOVAPress): the attention of the last logged
 * query, averaged over the GQA group here and over the whole layer by the
 * compress step when every kv head holds the same positions (kvpress); the
 * last token is kept (+inf). */
#include "kv/evict.h"
#include "kv/kv.h"
#include <math.h>

lb_status lb__score_tova(const lb__evict_params *p, const lb__evict_head *h, float *score, double *s)
{
    int64_t T = h->T;
    double *acc = s, *cnt = s + T;
    lb__evict_attend_sum(h, h->nq - 1, acc, cnt, s + 2 * T);
    for (int64_t j = 0; j < T; j++) score[j] = (float)(acc[j] / (double)h->group);
    score[T - 1] = INFINITY;
    return LB_OK;
}

static const lb__kv_param params[] = {LB_EVICT_P_RATIO, LB_EVICT_P_ADA, LB_EVICT_P_FLOOR, LB_EVICT_P_EVERY,
                                      LB_EVICT_P_TARGET};
const lb__kv_policy lb__kv_evict_tova =
    LB_EVICT_ROW("tova", "TOVA: attention of the last query, mean over the heads", params, 1);
