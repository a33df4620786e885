/* evict.h: KV-cache eviction, private to the kv module.
 *
 * Two layers, both pure functions over plain arrays (no cache, no session):
 *
 *   scorers (score.c): one (layer, kv-head) in, one float per cached token
 *   out, higher = kept. Protected tokens (sinks, SnapKV's window, the first
 *   and last page of PagedEviction, TOVA's last token) score +INFINITY.
 *
 *   selection (evict.c): keep = int(T (1 - ratio)) tokens per head by score,
 *   or AdaKV-style budgets over the heads of a layer (one global top-k with
 *   a floor per head). Order: higher score first; NaN below everything; ties
 *   go to the later token (higher cache index), across heads to the lower
 *   head. Kept indices come back ascending, so compaction keeps cache order.
 *
 * Inputs of one head (lb__evict_head): cached keys after RoPE and values,
 * (T, hd) rows, their absolute positions (ascending), and a log of recent
 * post-RoPE queries of the head's GQA group: q + i*qstride + g*hd is query
 * head g (0..group-1) of logged token i (oldest first), at position qpos[i].
 * Expected Attention needs pre-RoPE queries: the cache's log has them (qpre);
 * without it the scorer undoes RoPE with the same frequencies (inv_freq, pair
 * layout). Both paths are tested (NumPy: undone; cache test: logged).
 * Arithmetic is double throughout, in a fixed order (no threads inside). */
#ifndef LB_KV_EVICT_H
#define LB_KV_EVICT_H

#include "core/core.h"
#include <stdbool.h>
#include <stdint.h>

typedef enum lb__evict_method {
    LB_EVICT_RANDOM, LB_EVICT_STREAMING, LB_EVICT_KNORM, LB_EVICT_SNAPKV, LB_EVICT_TOVA,
    LB_EVICT_OBSERVED, LB_EVICT_KEYDIFF, LB_EVICT_PAGED, LB_EVICT_EXPECTED, LB_EVICT_NMETHODS
} lb__evict_method;

/* Parameters of every scorer; defaults from lb__evict_defaults (kvpress's). */
typedef struct lb__evict_params {
    lb__evict_method method;
    double ratio;          /* fraction removed, [0, 1) */
    int64_t n_sink;        /* StreamingLLM, Expected Attention: 4 */
    int64_t window;        /* SnapKV observation window: 64 */
    int64_t kernel;        /* SnapKV pooling kernel (odd): 5 */
    int64_t page;          /* PagedEviction page: 16 tokens */
    int64_t n_future;      /* Expected Attention future positions: 512 */
    int64_t qbuf;          /* Expected Attention: latest queries used, 0 = all logged */
    double eps;            /* Expected Attention: (score + eps) ||v||, 0 */
    bool cov, vnorm;       /* Expected Attention: covariance term, value norms: true */
    double ada_alpha;      /* AdaKV floor fraction: 0.2; < 0 = per-head budgets off */
    uint64_t seed;         /* random */
} lb__evict_params;

void lb__evict_defaults(lb__evict_params *p, lb__evict_method m);
const char *lb__evict_method_name(lb__evict_method m);

typedef struct lb__evict_head {
    int64_t T, hd;
    const float *k, *v;       /* (T, hd) post-RoPE keys, values */
    const int32_t *pos;       /* (T) positions, ascending */
    int64_t nq, group, qstride;
    const float *q;           /* (nq, group, hd) post-RoPE queries, rows qstride apart */
    const int32_t *qpos;      /* (nq) */
    const double *inv_freq;   /* (hd/2) RoPE frequency of each pair */
    bool rope_interleaved;    /* pairs (2i, 2i+1) instead of (i, i+hd/2) */
    int64_t next_pos;         /* position of the next token (Expected Attention) */
    const float *qpre;        /* optional: the same queries before RoPE (rows as q) */
} lb__evict_head;

/* Scratch doubles a scorer needs for head h (see lb__evict_score). */
int64_t lb__evict_scratch(const lb__evict_params *p, const lb__evict_head *h);
/* score[T] for head h; scratch holds lb__evict_scratch(p, h) doubles.
 * LB_ERR_ARG when the method needs queries (SnapKV, TOVA, ObservedAttention,
 * Expected Attention) and none are logged. */
lb_status lb__evict_score(const lb__evict_params *p, const lb__evict_head *h, float *score, double *scratch);

/* Tokens kept out of T at ratio r: int(T (1 - r)), as Python computes it. */
int64_t lb__evict_nkeep(int64_t T, double ratio);
/* Scratch bytes the rankings below need for n tokens in all. */
int64_t lb__evict_rank_bytes(int64_t n);
/* The keep best tokens of score[T] (rule above) into idx[keep], ascending;
 * scratch of lb__evict_rank_bytes(T). */
void lb__evict_topk(const float *score, int64_t T, int64_t keep, int64_t *idx, void *scratch);
/* AdaKV: H heads, head h with T[h] tokens and budget keep[h]. Each head
 * first keeps its own best int(alpha keep[h]); the rest of sum(keep) is one
 * global top-k over the remaining tokens of all heads. On return nkept[h]
 * and idx[h][0..nkept[h]) (ascending; idx[h] has room for T[h]); scratch of
 * lb__evict_rank_bytes(sum T). */
void lb__evict_adakv(int64_t H, const int64_t *T, const float *const *score, const int64_t *keep, double alpha,
                     int64_t *nkept, int64_t *const *idx, void *scratch);
/* PagedEviction at decode: with T tokens in pages of `page`, the page to
 * drop (lowest mean score, never the first or the last; ties to the earlier
 * page), or -1 when there are fewer than three pages. score = the paged
 * scorer's output (its +inf first and last pages are never candidates). */
int64_t lb__evict_paged_pick(const float *score, int64_t T, int64_t page);

/* ---- shared by the scorers (score.c) */
double lb__evict_norm(const float *x, int64_t n);                 /* ||x||, double */
double lb__evict_dot(const float *a, const double *b, int64_t n);
/* acc[j] = sum over query heads g and logged queries i in [i0, nq) of the
 * causal attention of (i, g) to token j; cnt[j] = how many of those queries
 * see j; scratch: T + hd doubles. */
void lb__evict_attend_sum(const lb__evict_head *h, int64_t i0, double *acc, double *cnt, double *scratch);

/* One scorer per policy file (evict_<name>.c), as lb__evict_score calls them. */
typedef lb_status lb__evict_score_fn(const lb__evict_params *p, const lb__evict_head *h, float *score,
                                     double *scratch);
lb__evict_score_fn lb__score_random, lb__score_streaming, lb__score_knorm, lb__score_snapkv, lb__score_tova,
    lb__score_observed, lb__score_keydiff, lb__score_paged, lb__score_expected;

/* ---- the policies: one registry row (kv.h) per file evict_<name>.c, all
 * sharing the compress / score / check steps of evict_policy.c */
typedef struct lb_kv lb_kv;
struct lb__kv_stage;
struct lb__kv_spec;
struct lb__kv_shape;
lb_status lb__evict_stage_compress(lb_kv *c, const struct lb__kv_stage *st);
lb_status lb__evict_stage_score(const lb_kv *c, const struct lb__kv_stage *st, int64_t l, int64_t kvh, float *score);
lb_status lb__evict_stage_check(const struct lb__kv_stage *st, const struct lb__kv_spec *spec,
                                const struct lb__kv_shape *sh, const char *opt);

/* Parameters the policies share (lb__kv_param rows) and a row of the table. */
#define LB_EVICT_P_RATIO {"ratio", "fraction of each head's tokens removed", 0.5, 0, 1, false, true, NULL, NULL}
#define LB_EVICT_P_ADA {"ada", "1: AdaKV budgets, one top-k over the kv heads of a layer", 0, 0, 1, true, false, NULL, NULL}
#define LB_EVICT_P_FLOOR \
    {"floor", "AdaKV: each head keeps at least this fraction of its budget", 0.2, 0, 1, false, false, NULL, NULL}
#define LB_EVICT_P_EVERY \
    {"every", "decode: compress every N generated tokens (0: after the prompt only)", 0, 0, 1e9, true, false, NULL, NULL}
#define LB_EVICT_P_TARGET                                                                                         \
    {"target", "decode: tokens per head after a decode compression (0: int(seen (1 - ratio)))", 0, 0, 1e9, true, \
     false, NULL, NULL}
#define LB_EVICT_P_SINK {"sink", "first positions always kept", 4, 0, 1e6, true, false, NULL, NULL}
/* Queries logged per layer by snapkv, observed and expected: every prompt
 * token of the shared models (context 512). */
#define LB_EVICT_QLOG 512
#define LB_EVICT_ROW(nm, sum, ps, qwin)                                                                          \
    {.name = nm, .summary = sum, .kind = LB_KV_EVICT, .params = ps, .n_params = (int)(sizeof ps / sizeof *ps), \
     .q_window = qwin, .score = lb__evict_stage_score, .compress = lb__evict_stage_compress,                   \
     .check = lb__evict_stage_check}

/* ---- the policies (evict_<name>.c): registry rows of kv.h */
struct lb__kv_policy;
extern const struct lb__kv_policy lb__kv_evict_random, lb__kv_evict_streaming, lb__kv_evict_knorm,
    lb__kv_evict_snapkv, lb__kv_evict_tova, lb__kv_evict_observed, lb__kv_evict_keydiff, lb__kv_evict_paged,
    lb__kv_evict_expected;
/* Decode-time compression: call after each generated token has been
 * appended to every layer. Runs the stages with every > 0 (and paged with
 * decode=1) whose trigger is reached; nothing otherwise. */
lb_status lb__evict_decode(lb_kv *c);

#endif /* LB_KV_EVICT_H */
