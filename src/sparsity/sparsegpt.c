/* sparsegpt.c: SparseGPT (Frantar & Alistarh, IST-DASLab/sparsegpt): OBS
 * pruning with the GPTQ machinery. With H = mean x x^T (dead inputs: H_jj
 * = 1 and the column zeroed), damping lambda = damp * mean(diag H) and
 * U = chol(H^-1) upper (lb__chol_inv_upper), columns are visited left to
 * right; a pruned weight is set to 0, and its error err = w / U_ii is fed to
 * the columns to its right: W[:, j] -= err * U[i, j]. Masks are chosen from
 * the current (already updated) weights with the score w^2 / U_jj^2:
 *   - unstructured: per block of `block` columns (128), one threshold over
 *     all rows of the block: the floor(rows * width * ratio) lowest scores
 *     are pruned (the reference's `<=` threshold prunes one more); with
 *     row_groups each row of the block prunes its own floor(width * ratio)
 *     lowest (the unstructured pattern's rule on the block's scores);
 *   - N:M and V:N:M: at the first column of every group of M, the pattern's
 *     own selection on the M columns (the block is a multiple of M).
 * All in double; the kept weights are rounded to float at the end. The
 * reference's lazy batch update is the same sum reordered; this applies
 * each column's update at once.
 *
 * Joint prune-and-quantize (lb_prune_quantize_matrix; N:M and V:N:M): as
 * the reference's mode with a quantizer, inside the column loop, after the
 * mask decision, a kept weight is rounded onto its block's grid (fixed-grid
 * API, formats/grid.c) and the error of pruning or rounding, (w - q) / U_ii,
 * is fed to the columns on its right. The kept values of a row are stored
 * packed in the format's blocks (block g of the kept values: kept indices
 * [g B, g B + B)); with B a multiple of N, block g covers the columns of
 * groups [g B / N, (g + 1) B / N) (its span). Its grid is found, by the
 * format's own scale rule, when the span's first column is reached: from
 * the current (error-updated) weights the pattern would keep if the whole
 * span were selected then (score w^2 / U_jj^2), i.e. the B values the
 * block would hold without later updates; the masks themselves are still
 * chosen group by group. Per-row formats: one grid per row, found at
 * column 0 the same way over the whole row. */
#include "sparsity/sparsity.h"
#include "formats/formats.h"
#include <math.h>
#include <stdio.h>

/* H + damping, dead columns fixed, in place; W's dead columns zeroed. */
static void sgpt_damp(double *H, double *W, int64_t rows, int64_t n, double damp)
{
    double mean = 0;
    for (int64_t j = 0; j < n; j++) {
        if (H[j * n + j] == 0) {
            H[j * n + j] = 1;
            for (int64_t r = 0; r < rows; r++) W[r * n + j] = 0;
        }
        mean += H[j * n + j];
    }
    mean /= (double)n;
    for (int64_t j = 0; j < n; j++) H[j * n + j] += damp * mean;
}

/* Unstructured mask of columns [i1, i2): one threshold over the block, or
 * (row_groups) the unstructured pattern's per-row rule on its scores. */
static lb_status block_mask(const lb__pattern *p, bool row_groups, const double *W, const double *U, int64_t rows,
                            int64_t n, int64_t i1, int64_t i2, uint8_t *keep)
{
    int64_t g = i2 - i1, numel = rows * g, k = row_groups ? 0 : (int64_t)floor((double)numel * p->ratio);
    double *s = lb__alloc((size_t)numel * sizeof *s);
    int64_t *idx = lb__alloc((size_t)numel * sizeof *idx);
    if (!s || !idx) { LB_FREE(s); LB_FREE(idx); return lb__err(LB_ERR_NOMEM, "out of memory"); }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < g; j++) {
            double w = W[r * n + i1 + j], d = U[(i1 + j) * n + i1 + j];
            s[r * g + j] = w * w / (d * d);
        }
    if (row_groups)
        lb__pat_unstructured.select(p, s, rows, g, g, keep + i1, n);
    else {
        lb__order_asc(s, 1, numel, idx);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < g; j++) keep[r * n + i1 + j] = 1;
        for (int64_t i = 0; i < k; i++) keep[idx[i] / g * n + i1 + idx[i] % g] = 0;
    }
    LB_FREE(s);
    LB_FREE(idx);
    return LB_OK;
}

/* N:M or V:N:M mask of the group of columns [i, i + g). */
static void group_mask(const lb__pattern *p, const double *W, const double *U, int64_t rows, int64_t n, int64_t i,
                       int64_t g, double *s, uint8_t *keep)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < g; j++) {
            double w = W[r * n + i + j], d = U[(i + j) * n + i + j];
            s[r * g + j] = w * w / (d * d);
        }
    lb__pattern_desc_of(p)->select(p, s, rows, g, g, keep + i, n);
}

/* Prune column i of every row and feed the error to the columns after it. */
static void prune_column(double *W, const double *U, int64_t rows, int64_t n, int64_t i, const uint8_t *keep)
{
    double d = U[i * n + i];
    const double *ui = U + i * n;
    for (int64_t r = 0; r < rows; r++) {
        double *wr = W + r * n;
        if (keep[r * n + i]) continue;
        double err = wr[i] / d;
        wr[i] = 0;
        for (int64_t j = i + 1; j < n; j++) wr[j] -= err * ui[j];
    }
}

static lb_status sgpt_run(const lb_prune_opts *o, const lb__pattern *p, double *W, double *H, int64_t rows,
                          int64_t n, uint8_t *keep)
{
    sgpt_damp(H, W, rows, n, o->damp > 0 ? o->damp : 0.01);
    lb_status s = lb__chol_inv_upper(H, n);
    if (s) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", lb_errmsg());
        return lb__err(s, "sparsegpt: the damped Hessian: %s", msg);
    }
    int64_t B = o->block > 0 ? o->block : 128, m = p->kind == LB__PAT_UNSTRUCTURED ? 1 : p->m;
    B = lb__max64(m, B / m * m);
    double *gs = lb__alloc((size_t)(rows * m) * sizeof *gs);
    if (!gs) return lb__err(LB_ERR_NOMEM, "out of memory");
    for (int64_t i1 = 0; i1 < n && !s; i1 += B) {
        int64_t i2 = lb__min64(n, i1 + B);
        if (p->kind == LB__PAT_UNSTRUCTURED) s = block_mask(p, o->row_groups > 0, W, H, rows, n, i1, i2, keep);
        for (int64_t i = i1; i < i2 && !s; i++) {
            if (p->kind != LB__PAT_UNSTRUCTURED && (i - i1) % m == 0)
                group_mask(p, W, H, rows, n, i, lb__min64(m, i2 - i), gs, keep);
            prune_column(W, H, rows, n, i, keep);
        }
    }
    LB_FREE(gs);
    return s;
}

static lb_status sparsegpt_prune(const lb_prune_opts *o, const lb__pattern *p, float *w, int64_t rows, int64_t cols,
                                 uint8_t *keep)
{
    if (!o->calib->H) return lb__err(LB_ERR_ARG, "criterion sparsegpt needs the statistics' H = mean x x^T (H is NULL)");
    size_t nw = (size_t)(rows * cols), nh = (size_t)(cols * cols);
    double *W = lb__alloc(nw * sizeof *W), *H = lb__alloc(nh * sizeof *H);
    lb_status s = W && H ? LB_OK : lb__err(LB_ERR_NOMEM, "out of memory");
    if (!s) {
        for (size_t i = 0; i < nw; i++) W[i] = w[i];
        memcpy(H, o->calib->H, nh * sizeof *H);
        s = sgpt_run(o, p, W, H, rows, cols, keep);
    }
    if (!s)
        for (size_t i = 0; i < nw; i++) w[i] = keep[i] ? (float)W[i] : 0.0f;
    LB_FREE(W);
    LB_FREE(H);
    return s;
}

/* ---------------------------------------------------- joint mode */

/* Kept values per row (N:M and V:N:M: every row keeps the same count). */
static int64_t kept_per_row(const lb__pattern *p, int64_t cols)
{
    return cols / p->m * p->n + lb__nm_keep(p->n, p->m, cols % p->m);
}

lb_status lb__sparsegpt_joint_fits(const lb__pattern *p, const lb_format *f, int64_t cols)
{
    if (p->kind == LB__PAT_UNSTRUCTURED)
        return lb__err(LB_ERR_UNSUPPORTED, "joint prune-and-quantize needs an N:M or V:N:M pattern (unstructured "
                       "sparsegpt masks keep different counts per row, which packed kept values cannot hold)");
    int64_t k = kept_per_row(p, cols), B = lb_format_block(f);
    if (k < 1 || (B && (k % B || B % p->n)))
        return lb__err(LB_ERR_UNSUPPORTED, "joint prune-and-quantize: %lld kept values per row do not fill whole "
                       "%s blocks of %lld (with the block a multiple of N = %d)", (long long)k, lb_format_name(f),
                       (long long)B, p->n);
    return LB_OK;
}

typedef struct joint {
    const lb_format *f;
    float tscale;
    int64_t rows, n, k, g, span;   /* g: kept values per block; span: columns per block */
    lb__grid *grids;               /* (rows, k / g) */
    uint8_t *codes;                /* (rows, k) */
    int64_t *at;                   /* (rows) kept values so far */
} joint;

/* Grids of block b of every row from the provisional selection of its span. */
static lb_status span_grids(const lb__pattern *p, joint *jt, const double *W, const double *U, int64_t b,
                            double *s, uint8_t *pk, float *tmp)
{
    int64_t n = jt->n, c0 = b * jt->span, w = lb__min64(jt->span, n - c0), nb = jt->k / jt->g;
    for (int64_t r = 0; r < jt->rows; r++)
        for (int64_t j = 0; j < w; j++) {
            double x = W[r * n + c0 + j], d = U[(c0 + j) * n + c0 + j];
            s[r * w + j] = x * x / (d * d);
        }
    lb__pattern_desc_of(p)->select(p, s, jt->rows, w, w, pk, w);
    for (int64_t r = 0; r < jt->rows; r++) {
        int64_t c = 0;
        for (int64_t j = 0; j < w; j++)
            if (pk[r * w + j] && c < jt->g) tmp[c++] = (float)W[r * n + c0 + j];
        if (c != jt->g) return lb__err(LB_ERR_UNSUPPORTED, "sparsegpt joint: block %lld keeps %lld of %lld", (long long)b,
                                       (long long)c, (long long)jt->g);
        lb_status st = lb__grid_find(jt->f, 0, jt->tscale, tmp, jt->g, &jt->grids[r * nb + b]);
        if (st) return st;
    }
    return LB_OK;
}

/* Column i: pruned weights -> 0, kept ones -> their grid value; the error
 * (w - q) / U_ii goes to the columns on the right. */
static void joint_column(joint *jt, double *W, const double *U, int64_t i, const uint8_t *keep)
{
    int64_t n = jt->n, nb = jt->k / jt->g;
    double d = U[i * n + i];
    const double *ui = U + i * n;
    for (int64_t r = 0; r < jt->rows; r++) {
        double *wr = W + r * n, q = 0;
        if (keep[r * n + i]) {
            int64_t a = jt->at[r]++;
            const lb__grid *gr = &jt->grids[r * nb + a / jt->g];
            uint8_t c = lb__grid_code(jt->f, gr, (float)wr[i]);
            jt->codes[r * jt->k + a] = c;
            q = (double)lb__grid_value(jt->f, gr, c);
        }
        double err = (wr[i] - q) / d;
        wr[i] = q;
        for (int64_t j = i + 1; j < n; j++) wr[j] -= err * ui[j];
    }
}

static lb_status joint_run(const lb_prune_opts *o, const lb__pattern *p, joint *jt, double *W, double *H,
                           uint8_t *keep)
{
    int64_t rows = jt->rows, n = jt->n, m = p->m;
    sgpt_damp(H, W, rows, n, o->damp > 0 ? o->damp : 0.01);
    lb_status s = lb__chol_inv_upper(H, n);
    if (s) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", lb_errmsg());
        return lb__err(s, "sparsegpt: the damped Hessian: %s", msg);
    }
    double *gs = lb__alloc((size_t)(rows * jt->span) * sizeof *gs);
    uint8_t *pk = lb__alloc((size_t)(rows * jt->span));
    float *tmp = lb__alloc((size_t)jt->g * sizeof *tmp);
    if (!gs || !pk || !tmp) s = lb__err(LB_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n && !s; i++) {
        if (i % jt->span == 0 && i / jt->span < jt->k / jt->g) s = span_grids(p, jt, W, H, i / jt->span, gs, pk, tmp);
        if (!s && i % m == 0) group_mask(p, W, H, rows, n, i, lb__min64(m, n - i), gs, keep);
        if (!s) joint_column(jt, W, H, i, keep);
    }
    LB_FREE(gs); LB_FREE(pk); LB_FREE(tmp);
    return s;
}

lb_status lb__sparsegpt_joint(const lb_prune_opts *o, const lb__pattern *p, const lb_format *f, float *w,
                              int64_t rows, int64_t cols, uint8_t *keep, lb_qmatrix *out)
{
    lb_status s = lb__sparsegpt_joint_fits(p, f, cols);
    if (s) return s;
    if (!o->calib || !o->calib->H)
        return lb__err(LB_ERR_ARG, "criterion sparsegpt needs the statistics' H = mean x x^T (H is NULL)");
    if (lb__amax_bits(w, rows * cols) >= 0x7f800000u)
        return lb__err(LB_ERR_ARG, "sparsegpt joint: the weights hold NaN or Inf");
    joint jt = {.f = f, .rows = rows, .n = cols, .k = kept_per_row(p, cols)};
    jt.g = lb_format_block(f) ? lb_format_block(f) : jt.k;
    jt.span = jt.g == jt.k ? cols : jt.g / p->n * p->m;
    jt.tscale = lb__grid_tensor_scale(f, lb__bits_f32(lb__amax_bits(w, rows * cols)));
    size_t nw = (size_t)(rows * cols), nh = (size_t)(cols * cols);
    double *W = lb__alloc(nw * sizeof *W), *H = lb__alloc(nh * sizeof *H);
    jt.grids = lb__alloc((size_t)(rows * (jt.k / jt.g)) * sizeof *jt.grids);
    jt.codes = lb__zalloc((size_t)(rows * jt.k));
    jt.at = lb__zalloc((size_t)rows * sizeof *jt.at);
    *out = (lb_qmatrix){.fmt = f, .rows = rows, .cols = jt.k, .row_bytes = lb_format_row_bytes(f, jt.k),
                        .tensor_scale = jt.tscale};
    out->packed = lb__alloc(out->row_bytes * (size_t)rows);
    s = W && H && jt.grids && jt.codes && jt.at && out->packed ? LB_OK : lb__err(LB_ERR_NOMEM, "out of memory");
    if (!s) {
        for (size_t i = 0; i < nw; i++) W[i] = w[i];
        memcpy(H, o->calib->H, nh * sizeof *H);
        s = joint_run(o, p, &jt, W, H, keep);
    }
    size_t bb = lb__block_bytes(f, jt.g);
    for (int64_t r = 0; !s && r < rows; r++)
        for (int64_t b = 0; b < jt.k / jt.g; b++)
            lb__grid_pack(f, &jt.grids[r * (jt.k / jt.g) + b], jt.codes + r * jt.k + b * jt.g, jt.g,
                          out->packed + (size_t)r * out->row_bytes + (size_t)b * bb);
    if (!s)
        for (size_t i = 0; i < nw; i++) w[i] = keep[i] ? (float)W[i] : 0.0f;
    if (s) lb_qmatrix_free(out);
    LB_FREE(W); LB_FREE(H); LB_FREE(jt.grids); LB_FREE(jt.codes); LB_FREE(jt.at);
    return s;
}

const lb__criterion lb__crit_sparsegpt = {
    .name = "sparsegpt",
    .desc = "OBS pruning with error feedback (needs calibration: H = mean x x^T)",
    .calib = true,
    .prune = sparsegpt_prune,
};
