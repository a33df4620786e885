/* linear.c: the linear step of the forward pass for every projection,
 * y = W x over a batch of nt tokens, whatever the weight holds:
 *
 *   1. rotated weight (hadamard_block > 0): x' = R x per token (block-diagonal
 *      Hadamard with the weight's signs; the same block as offline);
 *   2. SINQ column scale: x' = col_scale .* x';
 *   3. packed weight: for decode, the fused dequantize-and-dot of several
 *      rows at once (qdot_avx512.c / qdot_avx2.c, x reordered once per call
 *      when the kernel wants it), else per row lb_format_dot; for prefill
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
    /* q, k, v inputs + decode inputs in kernel order + row buffers */
    return any ? (size_t)(cols * (3 * max_batch + 3 * 2 + n_threads)) : 0;
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

bool lb__qdot_kernel(const lb_format *f, lb__qkern *k)
{
    *k = (lb__qkern){0};
    if (lb_isa_active() >= LB_ISA_AVX512) return lb__qdot_avx512(f, k);
    if (lb_isa_active() >= LB_ISA_AVX2) return lb__qdot_avx2(f, k);
    return false;
}

void lb__qdot_perm_x(const float *x, int64_t cols, float *xp)
{
    for (int64_t c = 0; c < cols; c += 16)
        for (int m = 0; m < 8; m++) {
            xp[c + 2 * m] = x[c + m];
            xp[c + 2 * m + 1] = x[c + 8 + m];
        }
}

#define LINEAR_MAX_N 3

typedef struct qmm_part {
    const lb_weight *w;
    const float *x;          /* transformed input (or the caller's) */
    int64_t xs, row0;        /* input row stride; first row in the joint row range */
    float *y;
    int64_t ys;
    lb__qkern kern;          /* multi-row kernel (kern.rows NULL: lb_format_dot) */
    const float *xk;         /* decode: x in the kernel's order (row stride xks) */
    int64_t xks;
    float nvd[128];          /* NV formats: ue4m3(code) / tensor_scale */
} qmm_part;

typedef struct qmm_job {
    const lb_kernels *k;
    qmm_part p[LINEAR_MAX_N];
    int n;
    int64_t nt, max_cols;
    float *rowbuf;           /* (threads, max_cols) */
} qmm_job;

/* Rows [r0, r1) of one packed weight. */
static void packed_rows(const qmm_job *j, const qmm_part *p, int64_t r0, int64_t r1, int thread)
{
    const lb_weight *w = p->w;
    if (j->nt <= 2 && p->kern.rows) {   /* multi-row kernel; 32 rows per step stay in cache for token 2 */
        for (int64_t r = r0; r < r1; r += 32) {
            int nr = (int)lb__min64(32, r1 - r);
            const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
            for (int64_t t = 0; t < j->nt; t++)
                p->kern.rows(w->fmt, w->tensor_scale, row, w->row_bytes, nr, p->xk + t * p->xks, w->cols, p->kern.tab,
                             p->nvd, p->y + t * p->ys + r);
        }
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        if (j->nt <= 2) {
            for (int64_t t = 0; t < j->nt; t++)
                p->y[t * p->ys + r] = lb_format_dot(w->fmt, row, w->tensor_scale, p->x + t * p->xs, w->cols);
            continue;
        }
        float *buf = j->rowbuf + (int64_t)thread * j->max_cols;
        lb_format_dequantize(w->fmt, row, w->tensor_scale, 1, w->cols, buf);
        for (int64_t t = 0; t < j->nt; t++) p->y[t * p->ys + r] = j->k->dot(buf, p->x + t * p->xs, w->cols);
    }
}

/* Rows [b, e) of the weights laid end to end. */
static void qmm_task(void *ctx, int64_t b, int64_t e, int thread)
{
    const qmm_job *j = ctx;
    for (int i = 0; i < j->n; i++) {
        const qmm_part *p = &j->p[i];
        int64_t lo = lb__max64(b, p->row0) - p->row0, hi = lb__min64(e, p->row0 + p->w->rows) - p->row0;
        if (lo >= hi) continue;
        if (p->w->fmt) packed_rows(j, p, lo, hi, thread);
        else j->k->matmul_rows(p->w, lo, hi, p->x, j->nt, p->xs, p->y, p->ys);
    }
}

/* x' = col_scale .* (R x) for each token, into dst (row stride = cols). */
static void transform_input(const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *dst)
{
    int64_t n = w->cols;
    for (int64_t t = 0; t < nt; t++) memcpy(dst + t * n, x + t * xs, sizeof(float) * (size_t)n);
    if (w->hadamard_block) lb_hadamard_rows(dst, nt, n, w->hadamard_block, w->hadamard_signs, 0);
    if (w->col_scale)
        for (int64_t t = 0; t < nt; t++)
            for (int64_t c = 0; c < n; c++) dst[t * n + c] *= w->col_scale[c];
}

/* Same rotation and scale as an earlier weight: its transformed input can be shared. */
static int same_transform(const qmm_job *j, int i)
{
    const lb_weight *a = j->p[i].w;
    for (int k = 0; k < i; k++) {
        const lb_weight *b = j->p[k].w;
        if (b->cols == a->cols && b->hadamard_block == a->hadamard_block && b->col_scale == a->col_scale &&
            (b->hadamard_signs == a->hadamard_signs ||
             (b->hadamard_signs && a->hadamard_signs && !memcmp(a->hadamard_signs, b->hadamard_signs, (size_t)a->cols))))
            return k;
    }
    return -1;
}

void lb__linear_n(lb_pool *pool, int n, const lb_weight *const *w, const float *x, int64_t nt, int64_t xs,
                  float *const *y, const int64_t *ys, float *scratch)
{
    bool plain = true;
    for (int i = 0; i < n; i++) plain = plain && !w[i]->fmt && !transformed(w[i]);
    if (plain || n > LINEAR_MAX_N) {
        if (plain) { lb__matmul_n(pool, n, w, x, nt, xs, y, ys); return; }
        for (int i = 0; i < n; i++) lb__linear_n(pool, 1, &w[i], x, nt, xs, &y[i], &ys[i], scratch);
        return;
    }
    qmm_job j = {.k = lb__kernels(), .n = n, .nt = nt};
    int64_t rows = 0, used = 0;
    for (int i = 0; i < n; i++) j.max_cols = lb__max64(j.max_cols, w[i]->cols);
    for (int i = 0; i < n; i++) {
        qmm_part *p = &j.p[i];
        *p = (qmm_part){.w = w[i], .x = x, .xs = xs, .row0 = rows, .y = y[i], .ys = ys[i]};
        rows += w[i]->rows;
        if (w[i]->fmt && nt <= 2) lb__qdot_kernel(w[i]->fmt, &p->kern);
        if (p->kern.rows && lb_format_uses_tensor_scale(w[i]->fmt))
            for (int c = 0; c < 128; c++) p->nvd[c] = lb_elem_decode(LB_ELEM_UE4M3, (uint8_t)c) / w[i]->tensor_scale;
        if (!transformed(w[i])) continue;
        int k = same_transform(&j, i);
        if (k >= 0 && j.p[k].x != x) { p->x = j.p[k].x; p->xs = j.p[k].xs; continue; }
        transform_input(w[i], x, nt, xs, scratch + used);
        p->x = scratch + used;
        p->xs = w[i]->cols;
        used += nt * w[i]->cols;
    }
    for (int i = 0; i < n; i++) {   /* decode: inputs in the kernel's order, once per distinct input */
        qmm_part *p = &j.p[i];
        p->xk = p->x;
        p->xks = p->xs;
        if (!p->kern.perm_x) continue;
        int k = 0;
        while (k < i && !(j.p[k].kern.perm_x && j.p[k].x == p->x)) k++;
        if (k < i) { p->xk = j.p[k].xk; p->xks = j.p[k].xks; continue; }
        for (int64_t t = 0; t < nt; t++) lb__qdot_perm_x(p->x + t * p->xs, p->w->cols, scratch + used + t * p->w->cols);
        p->xk = scratch + used;
        p->xks = p->w->cols;
        used += nt * p->w->cols;
    }
    j.rowbuf = scratch + used;
    int64_t grain = (lb__max64(8, ((int64_t)1 << 16) / lb__max64(1, j.max_cols * nt)) + 7) / 8 * 8;   /* whole 8-row groups */
    lb_pool_for(pool, rows, grain, qmm_task, &j);
}

void lb__linear(lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *y, int64_t ys,
                float *scratch)
{
    lb__linear_n(pool, 1, &w, x, nt, xs, &y, &ys, scratch);
}
