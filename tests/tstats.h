/* tstats.h: calibration statistics built directly from captured
 * activations for the tests of the calibrated methods (test_awq*.c), and
 * the NumPy finder for their reference scripts. */
#ifndef LB_TEST_TSTATS_H
#define LB_TEST_TSTATS_H
#include "harness.h"

/* Statistics of X (T x n) and, when Xq is not NULL, of the quantized-path
 * Xq (T x n), as lb_calib_stats defines them; st owns every buffer. */
typedef struct stats {
    lb_calib_stats c;
    double *H, *sq, *abs, *Hq, *Hqx;
} stats;

static inline void stats_build(stats *s, const float *X, const float *Xq, int64_t T, int64_t n)
{
    memset(s, 0, sizeof *s);
    s->H = calloc((size_t)(n * n), sizeof(double));
    s->sq = calloc((size_t)n, sizeof(double));
    s->abs = calloc((size_t)n, sizeof(double));
    if (Xq) { s->Hq = calloc((size_t)(n * n), sizeof(double)); s->Hqx = calloc((size_t)(n * n), sizeof(double)); }
    for (int64_t t = 0; t < T; t++) {
        const float *x = X + t * n, *xq = Xq ? Xq + t * n : NULL;
        for (int64_t i = 0; i < n; i++) {
            s->sq[i] += (double)x[i] * x[i] / (double)T;
            s->abs[i] += fabs((double)x[i]) / (double)T;
            for (int64_t j = i; j < n; j++) s->H[i * n + j] += (double)x[i] * x[j] / (double)T;
            for (int64_t j = i; xq && j < n; j++) s->Hq[i * n + j] += (double)xq[i] * xq[j] / (double)T;
            for (int64_t j = 0; xq && j < n; j++) s->Hqx[i * n + j] += (double)xq[i] * x[j] / (double)T;
        }
    }
    for (int64_t i = 0; i < n; i++)      /* the symmetric lower halves */
        for (int64_t j = 0; j < i; j++) {
            s->H[i * n + j] = s->H[j * n + i];
            if (Xq) s->Hq[i * n + j] = s->Hq[j * n + i];
        }
    s->c = (lb_calib_stats){.n = n, .n_tokens = T, .H = s->H, .sq = s->sq, .abs = s->abs, .Hq = s->Hq, .Hqx = s->Hqx};
}

static inline void stats_free(stats *s) { free(s->H); free(s->sq); free(s->abs); free(s->Hq); free(s->Hqx); }


#endif
