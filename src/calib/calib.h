/* calib.h: private side of the calibration stage. An lb_calib holds, for
 * every layer and every linear-input site (lb_site: q/k/v's shared input,
 * o's, gate/up's shared input, down's), the statistics of that input over
 * the calibration tokens, all in double:
 *   H    (n, n)  mean x x^T        sq (n) mean x^2     abs (n) mean |x|
 *   amax (n)     max |x|
 *   Hq   (n, n)  mean xq xq^T      Hqx (n, n) mean xq x^T   (sequential only)
 * where x is the input the float model gives the site and xq the input the
 * model whose earlier layers are quantized gives it.
 *
 * The runner (collect.c) produces them one layer at a time from stored
 * residual streams, so a caller that quantizes layer by layer (model_quant.c)
 * holds one layer's statistics at a time. */
#ifndef LB_CALIB_H
#define LB_CALIB_H

#include "model/model.h"

typedef struct lb__calib_site {
    int64_t n;                   /* the site's width (cols of its linears) */
    double *H, *sq, *abs, *amax; /* (n, n), (n), (n), (n) */
    double *Hq, *Hqx;            /* (n, n) each, or NULL */
    const float *rows;           /* (n_rows, n) sampled float-path inputs (the runner's; NULL in an lb_calib) */
    int64_t n_rows;
} lb__calib_site;

struct lb_calib {
    int64_t n_layers, dim, q_dim, hidden, vocab;
    int64_t n_tokens, ctx;
    uint64_t fingerprint;        /* of the model's weights (lb__calib_fingerprint) */
    int sequential;
    char *model, *text;          /* where it came from (may be NULL) */
    int64_t text_begin, text_end;
    double seconds;
    lb__calib_site *sites;       /* (n_layers, LB_SITE_COUNT) */
};

/* An empty calib (sites unallocated) for a model of this shape; NULL when out of memory. */
lb_calib *lb__calib_new(int64_t n_layers, int64_t dim, int64_t q_dim, int64_t hidden, int64_t vocab);
char *lb__calib_strdup(const char *s);    /* NULL for NULL (and out of memory) */
/* "qkv", "o", "gateup", "down" (file tensor names and messages). */
const char *lb__calib_site_name(lb_site s);
/* Site widths of a model: {dim, n_heads * head_dim, dim, hidden_dim}. */
void lb__calib_site_dims(const lb_config *c, int64_t n[LB_SITE_COUNT]);
/* Allocate one site's buffers (zeroed), with Hq/Hqx when seq. */
lb_status lb__calib_site_alloc(lb__calib_site *s, int64_t n, bool seq);
void lb__calib_site_free(lb__calib_site *s);
/* The public view of a site. */
void lb__calib_site_view(const lb__calib_site *s, int64_t n_tokens, lb_calib_stats *out);
/* A 64-bit hash of row 0 and the last row of every weight matrix of m (the
 * float values as the model stores them): tells a model from another of the
 * same shape. */
uint64_t lb__calib_fingerprint(const lb_model *m);
/* The (layer, site) a linear's Hugging Face name reads; false for any other name. */
bool lb__calib_name_site(const char *name, int64_t *layer, lb_site *site);

/* Rows i0 .. i0+nr-1 (nr <= 4) of M (n x n) += sum over t < T, in order, of
 * a[t][i] * b[t][j] for j in [j0, n) (a, b: T x n, floats widened to
 * double). The reference and the AVX2 path give the same bits;
 * lb__calib_acc_rows picks the active ISA's. */
typedef void (*lb__calib_acc_fn)(double *M, const double *a, const double *b, int64_t n, int64_t T, int64_t i0,
                                 int64_t nr, int64_t j0);
void lb__calib_acc_rows_ref(double *M, const double *a, const double *b, int64_t n, int64_t T, int64_t i0,
                            int64_t nr, int64_t j0);
void lb__calib_acc_rows_avx2(double *M, const double *a, const double *b, int64_t n, int64_t T, int64_t i0,
                             int64_t nr, int64_t j0);
lb__calib_acc_fn lb__calib_acc_rows(void);
/* Tokens per kernel call in the runner: b's chunk (8 x n doubles) stays in
 * L1/L2 across a row group's columns (bench/bench_calib.c compares sizes). */
#define LB__CALIB_ACC_TOKENS 8

/* ---- the layer-by-layer runner (collect.c) */
typedef struct lb__calib_run lb__calib_run;
/* Embed the tokens (sequences of o->ctx) into the stored residual stream(s);
 * seq: keep a second stream for the quantized path. */
lb_status lb__calib_run_create(const lb_model *m, const int32_t *tokens, int64_t n_tokens, const lb_calib_opts *o,
                               bool seq, lb__calib_run **out);
/* Statistics of layer l's sites into out[LB_SITE_COUNT] (filled with
 * runner-owned buffers, valid until the next call), for l = 0, 1, ... in
 * turn; advances the float stream through layer l. With seq, qm is a model
 * whose layers < l are the quantized ones (its other weights may be
 * anything): the quantized stream is first advanced through them, then
 * layer l of the float model gives the xq inputs. */
lb_status lb__calib_run_layer(lb__calib_run *r, int64_t l, const lb_model *qm, lb__calib_site *out);
int64_t lb__calib_run_tokens(const lb__calib_run *r);
int64_t lb__calib_run_ctx(const lb__calib_run *r);
void lb__calib_run_free(lb__calib_run *r);

#endif
