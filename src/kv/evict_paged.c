/* evict_paged.c: PagedEviction (arXiv 2509.04377): token score ||v||/||k||
 * (a zero key scores +inf). At the prefill, token-wise with the first page
 * and the last (partial) page kept (+inf), as the public code does; at
 * decode (decode=1) whole pages (lb__evict_paged_pick, evict_policy.c). */
#include "kv/evict.h"
#include "kv/kv.h"
#include <math.h>

lb_status lb__score_paged(const lb__evict_params *p, const lb__evict_head *h, float *score, double *scratch)
{
    int64_t T = h->T, d = h->hd, P = p->page;
    for (int64_t j = 0; j < T; j++) {
        double kn = lb__evict_norm(h->k + j * d, d), vn = lb__evict_norm(h->v + j * d, d);
        bool edge = j < P || j >= (T - 1) / P * P;
        score[j] = edge || kn == 0 ? INFINITY : (float)(vn / kn);
    }
    return LB_OK;
}

static const lb__kv_param params[] = {
    LB_EVICT_P_RATIO, LB_EVICT_P_TARGET,
    {"page", "tokens per page (0: the storage policy's page)", 0, 0, 4096, true, false, NULL, NULL},
    {"decode", "1: drop one whole page each time a head's last page fills past its target", 0, 0, 1, true, false,
     NULL, NULL}};
const lb__kv_policy lb__kv_evict_paged =
    LB_EVICT_ROW("paged", "PagedEviction: ||v||/||k||, whole pages at decode, never the first or last", params, 0);
