/* evict_random.c: the "random" eviction policy, the baseline: every token
 * scores uniform(0, 1) from lb_rng seeded with seed, the layer and the kv
 * head (so a SPEC gives the same choice on every run and thread count). */
#include "kv/evict.h"
#include "kv/kv.h"
#include <math.h>

lb_status lb__score_random(const lb__evict_params *p, const lb__evict_head *h, float *score, double *scratch)
{
    lb_rng r;
    lb_rng_seed(&r, p->seed);
    for (int64_t j = 0; j < h->T; j++) score[j] = (float)lb_rng_uniform(&r);
    return LB_OK;
}

static const lb__kv_param params[] = {LB_EVICT_P_RATIO, LB_EVICT_P_ADA, LB_EVICT_P_FLOOR, LB_EVICT_P_EVERY,
                                      LB_EVICT_P_TARGET,
                                      {"seed", "random scores' seed", 0, 0, 4294967295.0, true, false, NULL, NULL}};
const lb__kv_policy lb__kv_evict_random = LB_EVICT_ROW("random", "evict at random (seeded baseline)", params, 0);
