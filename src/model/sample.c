/* sample.c: choosing the next token from logits.
 * temperature 0: argmax, the lowest id on ties (deterministic, no RNG use).
 * temperature T > 0: softmax(logits / T); with top_p < 1 only the smallest set
 * of most probable tokens whose mass reaches top_p is kept (nucleus), ties in
 * probability broken by lower id so the set never depends on sort stability.
 * One uniform draw from the seeded lb_rng per sampled token. */
#include "core/core.h"
#include <math.h>

struct lb_sampler {
    int64_t vocab;
    float temperature, top_p;
    lb_rng rng;
    int32_t *idx;     /* (vocab) candidate ids, sorted by probability */
};

lb_status lb_sampler_create(int64_t vocab, const lb_sampler_opts *opts, lb_sampler **out)
{
    LB_ARG(out, "lb_sampler_create: out is NULL");
    *out = NULL;
    LB_ARG(opts, "lb_sampler_create: opts is NULL");
    if (vocab <= 0 || vocab > INT32_MAX) return lb__err(LB_ERR_ARG, "sampler: vocabulary size %lld", (long long)vocab);
    if (!(opts->temperature >= 0) || !isfinite(opts->temperature))
        return lb__err(LB_ERR_ARG, "sampler: temperature must be >= 0, got %g", opts->temperature);
    if (!(opts->top_p > 0) || !isfinite(opts->top_p))
        return lb__err(LB_ERR_ARG, "sampler: top_p must be in (0, 1], got %g", opts->top_p);
    lb_sampler *s = lb__zalloc(sizeof *s);
    if (!s) return LB_ERR_NOMEM;
    s->idx = lb__alloc(sizeof(int32_t) * (size_t)vocab);
    if (!s->idx) { LB_FREE(s); return LB_ERR_NOMEM; }
    s->vocab = vocab;
    s->temperature = opts->temperature;
    s->top_p = opts->top_p;
    lb_rng_seed(&s->rng, opts->seed);
    *out = s;
    return LB_OK;
}

void lb_sampler_free(lb_sampler *s)
{
    if (!s) return;
    LB_FREE(s->idx);
    LB_FREE(s);
}

static int32_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

static _Thread_local const float *t_probs;

static int by_prob(const void *a, const void *b)
{
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (t_probs[i] != t_probs[j]) return t_probs[i] > t_probs[j] ? -1 : 1;
    return i < j ? -1 : (i > j);
}

/* Draw from probabilities p[0..vocab) (sum 1) restricted to the nucleus. */
static int32_t draw(lb_sampler *s, const float *p)
{
    double u = lb_rng_uniform(&s->rng);
    int64_t n = s->vocab;
    if (s->top_p < 1.0f) {
        /* Candidates below (1 - top_p) / (n - 1) can never be needed. */
        float cut = (1.0f - s->top_p) / (float)(n > 1 ? n - 1 : 1);
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (p[i] >= cut) s->idx[m++] = (int32_t)i;
        t_probs = p;
        qsort(s->idx, (size_t)m, sizeof *s->idx, by_prob);
        double mass = 0;
        int64_t k = 0;
        while (k < m) { mass += p[s->idx[k++]]; if (mass >= s->top_p) break; }
        double r = u * mass, acc = 0;
        for (int64_t i = 0; i < k; i++) { acc += p[s->idx[i]]; if (r < acc) return s->idx[i]; }
        return s->idx[k - 1];
    }
    double acc = 0;
    for (int64_t i = 0; i < n; i++) { acc += p[i]; if (u < acc) return (int32_t)i; }
    return argmax(p, n);
}

int32_t lb_sample(lb_sampler *s, float *logits)
{
    if (!s || !logits) return -1;
    int64_t n = s->vocab;
    if (s->temperature == 0.0f) return argmax(logits, n);
    float mx = logits[argmax(logits, n)];
    double sum = 0;
    for (int64_t i = 0; i < n; i++) { logits[i] = expf((logits[i] - mx) / s->temperature); sum += logits[i]; }
    for (int64_t i = 0; i < n; i++) logits[i] = (float)(logits[i] / sum);
    return draw(s, logits);
}
