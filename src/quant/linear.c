/* linear.c: the linear step of the forward pass for every projection,
 * y = W x over a batch of nt tokens, whatever the weight holds:
 *
 *   1. rotated weight (hadamard_block > 0): x' = R x per token (block-diagonal
 *      Hadamard with the weight's signs; the same block as offline);
 *   2. SINQ column scale: x' = col_scale .* x';
 *   3. packed weight: per output row, the format's fused dequantize-and-dot
 *      (lb_format_dot, SIMD where formats has it) for decode; for prefill
 *      (nt > 2) the row is dequantized once into a per-thread buffer and
 *      reused for every token with the engine's canonical dot. Dense weight:
 *      the engine's matmul.
 *
 * Both packed paths sum in the canonical order of kernels.h (16 lanes, FMA
 * in column order, fixed tree), so prefill and decode, every thread count and
 * every ISA give the same bits. Work is split by output rows on the pool. */
#include "quant/quant.h"
#include "kernels/kernels.h"

static bool transformed(const lb_weight *w) { return w->hadamard_block > 0 || w->col_scale; }

static void max_cols(const lb_weight *w, int64_t *cols, bool *any)
{
    if (!w->data) return;
    if (w->fmt || transformed(w)) *any = true;
    if (w->cols > *cols) *cols = w->cols;
}

size_t lb__linear_scratch(const lb_model *m, int64_t max_batch, int n_threads)
{
    int64_t cols = 0;
    bool any = false;
    max_cols(&m->tok_embed, &cols, &any);
    max_cols(&m->lm_head, &cols, &any);
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        const lb_layer_weights *L = &m->layers[l];
        const lb_weight *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) max_cols(w[i], &cols, &any);
    }
    return any ? (size_t)(cols * (max_batch + n_threads)) : 0;
}

void lb__qweight_row(const lb_weight *w, int64_t r, float *out)
{
    if (w->fmt) lb_format_dequantize(w->fmt, (const uint8_t *)w->data + (size_t)r * w->row_bytes, w->tensor_scale, 1,
                                     w->cols, out);
    else lb__weight_row(w, r, out);
    if (w->col_scale)
        for (int64_t c = 0; c < w->cols; c++) out[c] *= w->col_scale[c];
    if (w->hadamard_block) lb__quant_unrotate(out, 1, w->cols, w->hadamard_block, w->hadamard_signs);
}

typedef struct qmm_job {
    const lb_kernels *k;
    const lb_weight *w;
    const float *x;
    float *y, *rowbuf;
    int64_t nt, xs, ys;
} qmm_job;

static void qmm_task(void *ctx, int64_t b, int64_t e, int thread)
{
    const qmm_job *j = ctx;
    const lb_weight *w = j->w;
    for (int64_t r = b; r < e; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        if (j->nt <= 2) {
            for (int64_t t = 0; t < j->nt; t++)
                j->y[t * j->ys + r] = lb_format_dot(w->fmt, row, w->tensor_scale, j->x + t * j->xs, w->cols);
            continue;
        }
        float *buf = j->rowbuf + (int64_t)thread * w->cols;
        lb_format_dequantize(w->fmt, row, w->tensor_scale, 1, w->cols, buf);
        for (int64_t t = 0; t < j->nt; t++) j->y[t * j->ys + r] = j->k->dot(buf, j->x + t * j->xs, w->cols);
    }
}

void lb__linear(lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *y, int64_t ys,
                float *scratch)
{
    if (!w->fmt && !transformed(w)) { lb__matmul(pool, w, x, nt, xs, y, ys); return; }
    const float *in = x;
    int64_t n = w->cols, is = xs;
    if (transformed(w)) {
        for (int64_t t = 0; t < nt; t++) memcpy(scratch + t * n, x + t * xs, sizeof(float) * (size_t)n);
        if (w->hadamard_block) lb_hadamard_rows(scratch, nt, n, w->hadamard_block, w->hadamard_signs, 0);
        if (w->col_scale)
            for (int64_t t = 0; t < nt; t++)
                for (int64_t c = 0; c < n; c++) scratch[t * n + c] *= w->col_scale[c];
        in = scratch;
        is = n;
    }
    if (!w->fmt) { lb__matmul(pool, w, in, nt, is, y, ys); return; }
    qmm_job j = {lb__kernels(), w, in, y, scratch + nt * n, nt, is, ys};
    int64_t grain = lb__max64(4, ((int64_t)1 << 16) / lb__max64(1, n * nt));
    lb_pool_for(pool, w->rows, grain, qmm_task, &j);
}
