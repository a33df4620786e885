/* evict_observed.c: ObservedAttention, H2O-like (kvpress
 * ObservedAttentionPress): the attention each token received from the
 * logged queries, divided by how many of them can see it (sum_i A_ij /
 * (T - j) after a prefill), averaged over the GQA group. */
#include "kv/evict.h"
#include "kv/kv.h"
#include <math.h>

lb_status lb__score_observed(const lb__evict_params *p, const lb__evict_head *h, float *score, double *s)
{
    int64_t T = h->T;
    double *acc = s, *cnt = s + T;
    lb__evict_attend_sum(h, 0, acc, cnt, s + 2 * T);
    for (int64_t j = 0; j < T; j++) score[j] = (float)(cnt[j] > 0 ? acc[j] / cnt[j] / (double)h->group : 0);
    return LB_OK;
}

static const lb__kv_param params[] = {LB_EVICT_P_RATIO, LB_EVICT_P_ADA, LB_EVICT_P_FLOOR, LB_EVICT_P_EVERY,
                                      LB_EVICT_P_TARGET};
const lb__kv_policy lb__kv_evict_observed = LB_EVICT_ROW(
    "observed", "ObservedAttention (H2O-like): mean attention each token received", params, LB_EVICT_QLOG);
