/* evict.c: which tokens stay, given scores (see evict.h for the rule).
 *
 * Order of two tokens: the higher score first; NaN after every number;
 * equal scores: the higher cache index first (the later token stays: when a
 * budget is smaller than a protected set, e.g. SnapKV's window at ratio 0.9,
 * the most recent protected tokens stay), and across heads (AdaKV) the lower
 * head first. The kept indices of a head are
 * returned ascending so that compaction keeps the cache order. */
#include "kv/evict.h"
#include <math.h>

int64_t lb__evict_nkeep(int64_t T, double ratio)
{
    double k = (double)T * (1.0 - ratio);   /* int(T * (1 - ratio)) in Python */
    return k <= 0 ? 0 : k >= (double)T ? T : (int64_t)k;
}

/* One token in a ranking: score, head, cache index. */
typedef struct { float s; int32_t h; int64_t i; } item;

/* The rule as a strict total order (qsort's result is then unique). */
static int cmp_item(const void *pa, const void *pb)
{
    const item *a = pa, *b = pb;
    bool na = isnan(a->s), nb = isnan(b->s);
    if (na != nb) return na ? 1 : -1;
    if (!na && a->s != b->s) return a->s > b->s ? -1 : 1;
    if (a->h != b->h) return a->h < b->h ? -1 : 1;
    return a->i > b->i ? -1 : a->i < b->i;
}

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

int64_t lb__evict_rank_bytes(int64_t n)
{
    return n * (int64_t)sizeof(item);
}

void lb__evict_topk(const float *score, int64_t T, int64_t keep, int64_t *idx, void *scratch)
{
    LB_ASSERT(keep >= 0 && keep <= T);
    item *it = scratch;
    for (int64_t i = 0; i < T; i++) it[i] = (item){score[i], 0, i};
    qsort(it, (size_t)T, sizeof(item), cmp_item);
    for (int64_t i = 0; i < keep; i++) idx[i] = it[i].i;
    qsort(idx, (size_t)keep, sizeof(int64_t), cmp_i64);
}

void lb__evict_adakv(int64_t H, const int64_t *T, const float *const *score, const int64_t *keep, double alpha,
                     int64_t *nkept, int64_t *const *idx, void *scratch)
{
    item *it = scratch;
    int64_t n = 0, total = 0;
    for (int64_t h = 0; h < H; h++) {
        /* the head's own floor: its best int(alpha keep[h]) */
        int64_t fl = (int64_t)(alpha * (double)keep[h]);
        lb__evict_topk(score[h], T[h], fl, idx[h], it + n);
        nkept[h] = fl;
        total += keep[h] - fl;
        int64_t f = 0;
        for (int64_t i = 0; i < T[h]; i++) {
            if (f < fl && idx[h][f] == i) { f++; continue; }
            it[n++] = (item){score[h][i], (int32_t)h, i};
        }
    }
    qsort(it, (size_t)n, sizeof(item), cmp_item);
    for (int64_t r = 0; r < total && r < n; r++) idx[it[r].h][nkept[it[r].h]++] = it[r].i;
    for (int64_t h = 0; h < H; h++) qsort(idx[h], (size_t)nkept[h], sizeof(int64_t), cmp_i64);
}

int64_t lb__evict_paged_pick(const float *score, int64_t T, int64_t page)
{
    int64_t np = (T + page - 1) / page, best = -1;
    double bm = 0;
    for (int64_t p = 1; p < np - 1; p++) {
        double m = 0;
        for (int64_t i = p * page; i < (p + 1) * page; i++) m += score[i];
        m /= (double)page;
        if (best < 0 || m < bm) { best = p; bm = m; }
    }
    return best;
}
