/* evict_keydiff.c: KeyDiff (kvpress KeyDiffPress): anchor a = mean over the
 * held tokens of k/||k||, score -cos(k, a): the keys least like the mean
 * direction stay (maximum key diversity). A zero key scores 0. */
#include "kv/evict.h"
#include "kv/kv.h"
#include <math.h>

lb_status lb__score_keydiff(const lb__evict_params *p, const lb__evict_head *h, float *score, double *a)
{
    int64_t d = h->hd;
    for (int64_t e = 0; e < d; e++) a[e] = 0;
    for (int64_t j = 0; j < h->T; j++) {
        double n = lb__evict_norm(h->k + j * d, d);
        for (int64_t e = 0; e < d && n > 0; e++) a[e] += h->k[j * d + e] / n;
    }
    for (int64_t e = 0; e < d; e++) a[e] /= (double)h->T;
    double an = 0;
    for (int64_t e = 0; e < d; e++) an += a[e] * a[e];
    an = sqrt(an);
    for (int64_t j = 0; j < h->T; j++) {
        double kn = lb__evict_norm(h->k + j * d, d);
        score[j] = kn > 0 && an > 0 ? (float)(-lb__evict_dot(h->k + j * d, a, d) / (kn * an)) : 0.0f;
    }
    return LB_OK;
}

static const lb__kv_param params[] = {LB_EVICT_P_RATIO, LB_EVICT_P_ADA, LB_EVICT_P_FLOOR, LB_EVICT_P_EVERY,
                                      LB_EVICT_P_TARGET};
const lb__kv_policy lb__kv_evict_keydiff =
    LB_EVICT_ROW("keydiff", "KeyDiff: keep the keys least similar to the mean key direction", params, 0);
