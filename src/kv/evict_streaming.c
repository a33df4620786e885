/* evict_streaming.c: StreamingLLM (kvpress StreamingLLMPress): keep the
 * sink tokens (positions < sink) and the most recent ones. Score: +inf for
 * a sink, else the cache index (later = higher). No AdaKV: every head would
 * make the same choice. */
#include "kv/evict.h"
#include "kv/kv.h"
#include <math.h>

lb_status lb__score_streaming(const lb__evict_params *p, const lb__evict_head *h, float *score, double *scratch)
{
    for (int64_t j = 0; j < h->T; j++) score[j] = h->pos[j] < p->n_sink ? INFINITY : (float)j;
    return LB_OK;
}

static const lb__kv_param params[] = {LB_EVICT_P_RATIO, LB_EVICT_P_EVERY, LB_EVICT_P_TARGET, LB_EVICT_P_SINK};
const lb__kv_policy lb__kv_evict_streaming =
    LB_EVICT_ROW("streaming", "StreamingLLM: keep the sink tokens and the most recent", params, 0);
