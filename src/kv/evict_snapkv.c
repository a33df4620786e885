/* evict_snapkv.c: SnapKV (kvpress SnapKVPress). The last w = min(window,
 * logged, T) queries attend causally (softmax over every held token visible
 * from the query's position); their mean attention to the first T - w tokens
 * is average-pooled (width kernel, zero padded, divided by kernel: torch's
 * avg_pool1d) and averaged over the GQA group; the last w tokens (the
 * window) are kept (+inf). */
#include "kv/evict.h"
#include "kv/kv.h"
#include <math.h>

lb_status lb__score_snapkv(const lb__evict_params *p, const lb__evict_head *h, float *score, double *s)
{
    int64_t T = h->T, w = lb__min64(lb__min64(p->window, h->nq), T), n = T - w, r = p->kernel / 2;
    double *acc = s, *cnt = s + T;
    lb__evict_attend_sum(h, h->nq - w, acc, cnt, s + 2 * T);
    for (int64_t j = 0; j < n; j++) {
        double t = 0;
        for (int64_t i = j - r; i <= j + r; i++)
            if (i >= 0 && i < n) t += acc[i];
        score[j] = (float)(t / (double)p->kernel / (double)w / (double)h->group);
    }
    for (int64_t j = n; j < T; j++) score[j] = INFINITY;
    return LB_OK;
}


static const lb__kv_param params[] = {
    LB_EVICT_P_RATIO, LB_EVICT_P_ADA, LB_EVICT_P_FLOOR, LB_EVICT_P_EVERY, LB_EVICT_P_TARGET,
    {"window", "observation window: the last N queries (their tokens are kept)", 64, 1, 512, true, false, NULL, NULL},
    {"kernel", "pooling kernel (odd)", 5, 1, 63, true, false, NULL, NULL}};
const lb__kv_policy lb__kv_evict_snapkv = LB_EVICT_ROW(
    "snapkv", "SnapKV: attention of the last window queries, pooled, mean over the GQA group", params, LB_EVICT_QLOG);
