/* awq.c: activation-aware weight quantization (AWQ, Lin et al. 2023,
 * arXiv 2306.00978) and its combination with SINQ (A-SINQ, the SINQ
 * paper's calibrated variant, huawei-csl/SINQ sinq/awq.py).
 *
 * Input column j gets a scale s_j = a_j^alpha, a_j = mean |x_j| over the
 * calibration tokens (floored at 1e-4 max_j a_j so dead columns stay
 * finite), normalised as AWQ's reference does, s <- s / sqrt(max s * min s).
 *   awq:      W diag(s) is rounded to nearest (rtn, the format's rule);
 *   awq+sinq: SINQ's column factor t is found first on W (Sinkhorn, as the
 *             sinq method, independent of alpha), then W diag(1/t) diag(s)
 *             is rounded to nearest: the order of the SINQ authors' code.
 * Either way
 *   W ~= dequant(packed) * diag(c),   c_j = t_j / s_j   (t = 1 for awq)
 * is kept as the column scale every quantized file already stores (applied
 * to the activation online: y = dequant(packed) (c .* x)).
 *
 * alpha runs over the AWQ grid k/20, k = 0..19, and the one with the least
 * layer output error on the calibration inputs is kept:
 *   err(alpha) = tr(E H E^T) = mean_t ||E x_t||^2,   E = W - dequant * diag(c),
 * E built from the exact floats the file will hold (first alpha wins ties).
 * alpha = 0 gives s = 1, i.e. exactly rtn / sinq, so the result's error is
 * never above theirs. The column scale is dropped when it is all ones.
 *
 *   awq+gptq: the registry row's inner quantizer (GPTQ) replaces rtn for
 *             W diag(s), with the statistics of its input c .* x
 *             (H' = diag(c) H diag(c)); alpha = 0 is plain GPTQ.
 *
 * Differs from the paper: the error is each matrix's own output error
 * computed from H (no forward pass of the block), alpha is chosen per
 * matrix (q, k, v each their own), AWQ's optional weight-magnitude factor
 * (auto-awq's s / mean|w|^(1-alpha)) is not used, and the scale stays a
 * column scale instead of being folded into the preceding RMSNorm / linear
 * (docs/quant.md). */
#include "quant/quant.h"
#include <math.h>

#define AWQ_GRID 20

/* tr(E H E^T) for E = w - y (rows x n), H (n x n) double, 8 rows at a
 * time: e holds the block transposed (n x 8) so that each H_ij multiplies 8
 * independent sums (each one summed in j order, whatever the compiler
 * vectorizes), and H is read rows / 8 times instead of rows times. H is
 * symmetric (a mean of x x^T), so only its upper triangle is read. */
double lb__layer_loss(const double *H, const float *w, const float *y, int64_t rows, int64_t n, double *e)
{
    double tot = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += 8) {
        int64_t nb = rows - r0 < 8 ? rows - r0 : 8;
        for (int64_t j = 0; j < n; j++)
            for (int64_t k = 0; k < 8; k++)
                e[j * 8 + k] = k < nb ? (double)w[(r0 + k) * n + j] - y[(r0 + k) * n + j] : 0.0;
        double part[8] = {0};
        for (int64_t i = 0; i < n; i++) {     /* e_i (H_ii e_i + 2 sum_{j>i} H_ij e_j): H symmetric */
            const double *h = H + i * n;
            double t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0, t5 = 0, t6 = 0, t7 = 0;   /* in registers */
            for (int64_t j = i + 1; j < n; j++) {
                const double hj = h[j], *ej = e + j * 8;
                t0 += hj * ej[0]; t1 += hj * ej[1]; t2 += hj * ej[2]; t3 += hj * ej[3];
                t4 += hj * ej[4]; t5 += hj * ej[5]; t6 += hj * ej[6]; t7 += hj * ej[7];
            }
            const double t[8] = {t0, t1, t2, t3, t4, t5, t6, t7};
            for (int k = 0; k < 8; k++) part[k] += e[i * 8 + k] * (h[i] * e[i * 8 + k] + 2 * t[k]);
        }
        for (int k = 0; k < 8; k++) tot += part[k];
    }
    return tot;
}

/* s (double, n) for exponent alpha from the column means a. */
static void awq_scales(const double *a, int64_t n, double alpha, double *s)
{
    double amax = 0;
    for (int64_t j = 0; j < n; j++) amax = a[j] > amax ? a[j] : amax;
    double lo = INFINITY, hi = 0;
    for (int64_t j = 0; j < n; j++) {
        double v = amax > 0 ? (a[j] > 1e-4 * amax ? a[j] : 1e-4 * amax) : 1.0;
        s[j] = pow(v, alpha);
        lo = s[j] < lo ? s[j] : lo;
        hi = s[j] > hi ? s[j] : hi;
    }
    double norm = sqrt(hi * lo);
    for (int64_t j = 0; j < n; j++) s[j] /= norm;
}

typedef struct awq_buf {
    double *s, *e;
    double *sbuf;             /* the scaled statistics' buffers (an inner quantizer, "awq+gptq") */
    lb_calib_stats sst;
    float *base, *t;          /* W diag(1/t) and t (awq+sinq), else W and NULL */
    float *ws, *y, *c;
    lb_qmatrix q;             /* the candidate's packed rows */
} awq_buf;

/* b->sst <- the statistics of x' = c .* x: H'_ij = c_i H_ij c_j (Hq, Hqx
 * alike), sq' = c^2 sq, abs' = c abs, amax' = c amax. */
static void scale_stats(const lb_calib_stats *in, const float *c, awq_buf *b)
{
    int64_t n = in->n;
    double *at = b->sbuf;
    const double *src[3] = {in->H, in->Hq, in->Hqx}, *vsrc[3] = {in->sq, in->abs, in->amax};
    const double **dst[3] = {&b->sst.H, &b->sst.Hq, &b->sst.Hqx}, **vdst[3] = {&b->sst.sq, &b->sst.abs, &b->sst.amax};
    b->sst = (lb_calib_stats){.n = n, .n_tokens = in->n_tokens};
    for (int k = 0; k < 3; k++, at += n * n) {
        if (!src[k]) continue;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) at[i * n + j] = (double)c[i] * src[k][i * n + j] * (double)c[j];
        *dst[k] = at;
    }
    for (int k = 0; k < 3; k++, at += n) {
        if (!vsrc[k]) continue;
        for (int64_t j = 0; j < n; j++) at[j] = vsrc[k][j] * (double)c[j] * (k == 0 ? (double)c[j] : 1.0);
        *vdst[k] = at;
    }
}

/* Round base diag(s) to nearest into b->q and set b->c, b->y (the
 * reconstruction dequant * diag(c)). */
static lb_status awq_candidate(const lb_quantize_opts *o, const lb_qmatrix *out, awq_buf *b)
{
    int64_t rows = out->rows, n = out->cols;
    for (int64_t j = 0; j < n; j++) {
        float sf = (float)b->s[j];
        for (int64_t r = 0; r < rows; r++) b->ws[r * n + j] = b->base[r * n + j] * sf;
    }
    for (int64_t j = 0; j < n; j++) b->c[j] = (float)((b->t ? (double)b->t[j] : 1.0) / b->s[j]);
    const lb_quantizer *m = out->method;
    lb_status s;
    if (m && m->inner) {   /* the input of W diag(s) is c .* x: its statistics scale by c */
        lb_quantize_opts io = *o;
        scale_stats(o->calib, b->c, b);
        io.calib = &b->sst;
        s = m->inner(&io, b->ws, &b->q);
    } else
        s = lb__rtn_quantize(&(lb_quantize_opts){.scale_rule = o->scale_rule}, b->ws, &b->q);
    if (s) return s;
    s = lb_format_dequantize(out->fmt, b->q.packed, b->q.tensor_scale, rows, n, b->y);
    for (int64_t r = 0; !s && r < rows; r++)
        for (int64_t j = 0; j < n; j++) b->y[r * n + j] *= b->c[j];
    return s;
}

/* awq+sinq: t from the Sinkhorn tiles of w (as sinq.c) and base = w / t. */
static void sinq_base(const lb_quantize_opts *o, const float *w, lb_qmatrix *out, awq_buf *b)
{
    int64_t rows = out->rows, n = out->cols, B = lb_format_block(out->fmt), g = B ? B : n;
    double sb = 0, sa = 0;
    for (int64_t j = 0; j < n / g; j++) {
        double ib, ia;
        lb__sinq_tile(w + j * g, rows, g, n, o->sinq_iters > 0 ? o->sinq_iters : 16, b->t + j * g, &ib, &ia);
        sb += ib; sa += ia;
    }
    out->imbalance_before = sb / (double)(n / g);
    out->imbalance_after = sa / (double)(n / g);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < n; c++) b->base[r * n + c] = w[r * n + c] / b->t[c];
}

static lb_status awq_search(const lb_quantize_opts *o, const float *w, lb_qmatrix *out, bool sinq)
{
    lb_status st = lb__calib_check(o, out, true, false);
    if (st) return st;
    int64_t rows = out->rows, n = out->cols;
    size_t mn = (size_t)(rows * n), pb = out->row_bytes * (size_t)rows;
    awq_buf b = {.s = lb__alloc((size_t)n * sizeof(double)), .e = lb__alloc((size_t)(8 * n) * sizeof(double)),
                 .ws = lb__alloc(mn * sizeof(float)), .y = lb__alloc(mn * sizeof(float)),
                 .c = lb__alloc((size_t)n * sizeof(float)), .base = (float *)w};
    b.q = *out;
    b.q.packed = lb__alloc(pb);
    float *best_c = lb__alloc((size_t)n * sizeof(float)), *own = NULL;
    if (sinq) {
        b.t = lb__alloc((size_t)n * sizeof(float));
        b.base = own = lb__alloc(mn * sizeof(float));
    }
    bool inner = out->method && out->method->inner;
    if (inner) b.sbuf = lb__alloc((size_t)(3 * n * n + 3 * n) * sizeof(double));
    if (!b.s || !b.e || !b.ws || !b.y || !b.c || !b.q.packed || !best_c || !b.base || (sinq && !b.t) ||
        (inner && !b.sbuf))
        st = LB_ERR_NOMEM;
    if (!st && sinq) sinq_base(o, w, out, &b);
    double best = INFINITY;
    for (int k = 0; !st && k < AWQ_GRID; k++) {
        double alpha = (double)k / AWQ_GRID;
        awq_scales(o->calib->abs, n, alpha, b.s);
        st = awq_candidate(o, out, &b);
        if (st) break;
        double err = lb__layer_loss(o->calib->H, w, b.y, rows, n, b.e);
        if (!(err < best)) continue;
        best = err;
        memcpy(out->packed, b.q.packed, pb);
        memcpy(best_c, b.c, (size_t)n * sizeof *best_c);
        out->tensor_scale = b.q.tensor_scale;
        out->awq_alpha = alpha;
        out->layer_loss = err;
    }
    if (!st && !(best < INFINITY))
        st = lb__err(LB_ERR_ARG, "%s: the layer output error is not finite for any alpha (NaN in the weights or "
                     "statistics?)", out->method ? out->method->name : "awq");
    bool ones = true;
    for (int64_t j = 0; !st && j < n; j++) ones = ones && best_c[j] == 1.0f;
    if (!st && !ones) { out->col_scale = best_c; best_c = NULL; }
    LB_FREE(best_c); LB_FREE(own); LB_FREE(b.t);
    LB_FREE(b.s); LB_FREE(b.e); LB_FREE(b.ws); LB_FREE(b.y); LB_FREE(b.c);
    LB_FREE(b.q.packed);
    LB_FREE(b.sbuf);
    return st;
}

lb_status lb__awq_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out)
{
    return awq_search(o, w, out, false);
}

lb_status lb__awq_sinq_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out)
{
    return awq_search(o, w, out, true);
}
