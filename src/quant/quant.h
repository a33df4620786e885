/* quant.h: private side of the weight quantizers: the method descriptor (one
 * row of the registry table in registry.c), the entry points of each method
 * file, and the model-file helpers shared by the saver and the loader.
 *
 * A method fills an lb_qmatrix from a float matrix; the identity every
 * method keeps is written at the quant section of lowbit.h:
 *   W ~= dequant(packed) * diag(col_scale) * R. */
#ifndef LB_QUANT_H
#define LB_QUANT_H

#include "model/loader.h"

/* Quantize w (rows x cols, float, already rotated when the method rotates)
 * into out->packed (and out->col_scale); out->fmt/rows/cols/row_bytes are set. */
typedef lb_status (*lb__quant_method_fn)(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);

struct lb_quantizer {
    const char *name;
    const char *desc;
    bool rotate;                 /* Hadamard-rotate the input space first */
    bool calib;                  /* needs o->calib (H and column statistics) */
    bool sequential;             /* needs sequential calibration (o->calib->Hq, Hqx) */
    lb__quant_method_fn quantize;
    bool rotate_format_block;    /* rotation block = the format's block when o->hadamard_block is 0 */
    /* awq rows: the quantizer of the scaled matrix W diag(s) inside the alpha search ("awq+gptq"),
       given the statistics of the scaled input; NULL = plain rtn (the format's scale rule) */
    lb__quant_method_fn inner;
    bool learned_rotation;       /* dartquant: learn a dense rotation from o->calib->rows first */
};

/* model_quant.c: lb_model_quantize with a method that need not be in the
 * registry (o->method still names the format's partner for messages only);
 * the tests use it to see what each matrix receives (its calib statistics). */
lb_status lb__model_quantize_with(const lb_model *src, const lb_model_quant_opts *o, const lb_quantizer *method,
                                  lb_model **out, lb_quant_report *rep);

/* The weight view of a quantized matrix (buffers stay the matrix's; a NULL
 * format means rotation only, dense F32 in packed): its representation plus
 * the Hadamard rotation and the SINQ column scale as input transforms. */
lb_weight lb__qmatrix_weight(const lb_qmatrix *q);

/* rtn.c, sinq.c: the base methods. */
lb_status lb__rtn_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);
lb_status lb__sinq_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);

/* model_quant.c: whether name matches one of the n fnmatch globs (the
 * --keep patterns of model-level quantization and pruning; NULL entries
 * are skipped). */
bool lb__keep_match(const char *const *globs, int n, const char *name);

/* smoothquant.c: SmoothQuant (alpha 0.5) from o->calib->amax, then rtn. */
lb_status lb__smoothquant_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);

/* rtn.c: the checks every calibrated method makes on o->calib (present,
 * sized for out->cols, finite, abs when need_abs (unknown after a rotation:
 * the registry rotates H only), Hq/Hqx when sequential). */
lb_status lb__calib_check(const lb_quantize_opts *o, const lb_qmatrix *out, bool need_abs, bool sequential);

/* awq.c: awq and awq+sinq (A-SINQ); qronos.c: qronos. */
lb_status lb__awq_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);
lb_status lb__awq_sinq_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);
lb_status lb__qronos_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);
/* awq.c: tr(E H E^T) for E = w - y (rows x n floats), H (n x n); e is
 * scratch of 8 n doubles. */
double lb__layer_loss(const double *H, const float *w, const float *y, int64_t rows, int64_t n, double *e);

/* sinq.c: the Sinkhorn column scale of one tile (rows x g columns of w with
 * row stride ld): t[g] (> 0) and the imbalance (max std / min std over the
 * tile's rows and columns) before and after. */
void lb__sinq_tile(const float *w, int64_t rows, int64_t g, int64_t ld, int iters, float *t, double *imb_before,
                   double *imb_after);

/* hadamard.c: the rotation of a method with rotate = true: w (rows x cols)
 * <- w R^T in place; sets out->hadamard_block / seed / signs (owned). */
lb_status lb__quant_rotate(const lb_quantize_opts *o, float *w, int64_t rows, int64_t cols, lb_qmatrix *out);

/* mrgptq.c: the statistics of a rotated input x' = R x for a matrix q that
 * lb__quant_rotate rotated: H' = R H R^T (and Hq, Hqx), sq' = diag H',
 * abs/amax NULL. out's buffers live in *buf (free with LB_FREE). */
lb_status lb__quant_rotate_calib(const lb_qmatrix *q, const lb_calib_stats *in, lb_calib_stats *out, double **buf);

/* dartquant.c: the learned rotation (DartQuant: QR-Orth + Whip loss).
 * lb__dart_train: R (n x n, double, orthogonal) from N sample rows (n
 * wide); loss0/loss1 (may be NULL) the Whip loss at the start and the end.
 * lb__dart_whip: the Whip loss of the rows at R = QR-Orth(Z) and, when gz
 * is not NULL, its gradient with respect to Z (n x n). lb__dart_rotate:
 * the rotation step of the dartquant method: trains R on o->calib->rows,
 * w (rows x cols) <- w R^T in place, out->rotation = R (float, owned). */
typedef struct lb__dart_opts {
    int iters;                   /* 0 = 100 */
    double lr;                   /* 0 = the default (dartquant.c) */
    uint64_t seed;               /* the Hadamard start's signs */
    int64_t max_block;           /* the Hadamard start's largest block (0 = no limit) */
} lb__dart_opts;
lb_status lb__dart_train(const float *rows, int64_t N, int64_t n, const lb__dart_opts *o, double *R, double *loss0,
                         double *loss1);
lb_status lb__dart_whip(const double *Z, const float *rows, int64_t N, int64_t n, double *loss, double *gz);
lb_status lb__dart_rotate(const lb_quantize_opts *o, float *w, int64_t rows, int64_t cols, lb_qmatrix *out);

/* gptq.c: GPTQ (dynamic grids, or static with act_order) and MR-GPTQ
 * (static MSE grids, activation order; the registry rotates first). */
lb_status lb__gptq_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);
lb_status lb__mrgptq_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);

/* budget.c: mixed precision under a bits budget. For each of the n linears
 * (weights w, Hugging Face names) and each candidate format, the method's
 * result and its proxy loss (metric 0: tr(E H E^T); 1: over tr(W H W^T))
 * from calib's float-path statistics (metric 2: the model's KL divergence
 * with that linear alone replaced, on the calibration tokens); then the greedy allocation: choice[i]
 * = index into cands, mean bits/weight (element-weighted) <= budget, the
 * mean reached in *bits_out. LB_ERR_ARG when even the cheapest choice
 * exceeds the budget, or statistics are missing. */
typedef struct lb__budget_in {
    const lb_quantizer *method;
    const lb_quantize_opts *q;
    const lb_calib *calib;
    const lb_format *const *cands;
    int n_cands;
    double budget;
    int metric;
    const lb_weight *const *w;
    const char *const *names;
    int64_t n;
    lb_pool *pool;
    /* metric 2 (KL of the model's output): the source model and calibration tokens */
    const lb_model *src;
    const int32_t *tokens;
    int64_t n_tokens, ctx;
} lb__budget_in;
#define LB__BUDGET_TOKENS 2048
lb_status lb__budget_assign(const lb__budget_in *in, int *choice, double *bits_out);

#endif
