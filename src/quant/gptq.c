/* gptq.c: GPTQ (Frantar et al. 2022) and MR-GPTQ (Egiazarian et al. 2025)
 * on one matrix W (rows x n) with the statistics H = mean x x^T of its input.
 *
 * Columns are quantized one at a time; the rounding error of column i is
 * spread over the columns not yet quantized through the upper Cholesky
 * factor U of H^-1 (H^-1 = U^T U):
 *     q_i = Q(w_i),  e = (w_i - q_i) / U_ii,  w_j -= e U_ij  for j > i.
 * Every weight w_j receives these updates from columns 0, 1, ..., j-1 in
 * ascending order, each a double multiply then a subtract; the lazy batches
 * of o->gptq_block columns only change when the far columns receive them,
 * not the order, so the result is bit for bit independent of the batch size
 * and of how rows are split (rows never interact given U).
 *
 * Preparation, as the reference (IST-DASLab/gptq): dead columns (H_ii = 0)
 * get H_ii = 1 and a zero weight column; H += damp * mean(diag H) * I;
 * activation order permutes columns by descending diag H (stable: equal
 * diagonals keep ascending column order); a singular H is retried with ten
 * times the damping, three times. Grids (the block scales of the format):
 *   dynamic (gptq without act_order): the scale of each block of a row is
 *     found when its first column is reached, from the row's current
 *     (error-updated) values of that block, by the format's scale rule;
 *   static (act_order, mr-gptq): every block's scale is found up front from
 *     the original W in the original column order.
 * With sequential calibration (o->calib->Hq set) H is Hq, the statistics of
 * the inputs that the already-quantized earlier layers produce, as in the
 * reference's layer-by-layer loop; otherwise the float model's H.
 * MR-GPTQ = the same loop on W R^T and R H R^T (the block Hadamard R applied
 * by the registry), with static grids found by the format's MSE search and
 * activation order. The packed output keeps the original column order. */
#include "quant/quant.h"
#include "formats/formats.h"
#include <math.h>

typedef struct gptq_job {
    const lb_format *f;
    lb_scale_rule rule;
    float tscale;
    int64_t rows, n, g, ng, bs; /* g: elements per block (n for per-row formats), ng = n / g, bs: lazy batch */
    bool dynamic;               /* grids found during the loop (else all up front) */
    const int64_t *perm;        /* (n) position -> original column; NULL = identity */
    const double *U;            /* (n, n) upper factor of H^-1 in position order */
    double *W;                  /* (rows, n) working weights in position order */
    lb__grid *grids;            /* (rows, ng) */
    uint8_t *codes;             /* (rows, n) in original column order */
    lb_status status;
} gptq_job;

/* Grid of block b of row r from the row's current values (dynamic grids:
 * positions = original columns). */
static lb_status grid_now(gptq_job *j, int64_t r, int64_t b, float *tmp)
{
    const double *w = j->W + r * j->n + b * j->g;
    for (int64_t i = 0; i < j->g; i++) tmp[i] = (float)w[i];
    return lb__grid_find(j->f, j->rule, j->tscale, tmp, j->g, &j->grids[r * j->ng + b]);
}

/* Columns [i1, i2) of rows [r0, r1): quantize, update inside the batch, and
 * keep the scaled errors in E (rows r0.., bs columns). */
static lb_status batch(gptq_job *j, int64_t r0, int64_t r1, int64_t i1, int64_t i2, double *E, float *tmp)
{
    int64_t n = j->n;
    for (int64_t r = r0; r < r1; r++) {
        double *w = j->W + r * n, *e = E + (r - r0) * j->bs;
        for (int64_t i = i1; i < i2; i++) {
            int64_t col = j->perm ? j->perm[i] : i;
            if (j->dynamic && col % j->g == 0) {
                lb_status s = grid_now(j, r, col / j->g, tmp);
                if (s) return s;
            }
            const lb__grid *gr = &j->grids[r * j->ng + col / j->g];
            uint8_t c = lb__grid_code(j->f, gr, (float)w[i]);
            j->codes[r * n + col] = c;
            const double *u = j->U + i * n;
            double err = (w[i] - (double)lb__grid_value(j->f, gr, c)) / u[i];
            for (int64_t k = i + 1; k < i2; k++) w[k] -= err * u[k];
            e[i - i1] = err;
        }
    }
    return LB_OK;
}

/* The lazy update of columns [i2, n) from the batch [i1, i2): for each row,
 * w_k -= E_c U[i1 + c][k] for c ascending (lb__gemm_sub). */
static void lazy_update(gptq_job *j, int64_t r0, int64_t r1, int64_t i1, int64_t i2, const double *E)
{
    int64_t n = j->n;
    if (i2 < n) lb__gemm_sub(j->W + r0 * n + i2, n, E, j->bs, j->U + i1 * n + i2, n, r1 - r0, i2 - i1, n - i2, false);
}

static lb_status run_rows(gptq_job *j, int64_t r0, int64_t r1)
{
    double *E = lb__alloc((size_t)((r1 - r0) * j->bs) * sizeof *E);
    float *tmp = lb__alloc((size_t)j->g * sizeof *tmp);
    lb_status s = E && tmp ? LB_OK : LB_ERR_NOMEM;
    for (int64_t i1 = 0; !s && i1 < j->n; i1 += j->bs) {
        int64_t i2 = lb__min64(i1 + j->bs, j->n);
        s = batch(j, r0, r1, i1, i2, E, tmp);
        if (!s) lazy_update(j, r0, r1, i1, i2, E);
    }
    LB_FREE(E);
    LB_FREE(tmp);
    return s;
}

static void rows_task(void *ctx, int64_t b, int64_t e, int thread)
{
    (void)thread;
    gptq_job *j = ctx;
    const int64_t tile = 16;
    for (int64_t r = b; r < e && !j->status; r += tile) {
        lb_status s = run_rows(j, r, lb__min64(r + tile, e));
        if (s) j->status = s;
    }
}

/* ---------------------------------------------------------- preparation */

typedef struct gptq_cfg {
    bool act_order, static_grids;
    lb_scale_rule rule;
    const char *name;
} gptq_cfg;

static lb_status check_inputs(const gptq_cfg *c, const lb_quantize_opts *o, const lb_format *f, const float *w,
                             int64_t rows, int64_t n)
{
    const lb_calib_stats *st = o->calib;
    if (!st || !st->H)
        return lb__err(LB_ERR_ARG, "%s needs calibration statistics (H = mean x x^T of the layer's inputs): "
                       "give --calib STATS or --calib-text FILE", c->name);
    if (st->n != n)
        return lb__err(LB_ERR_ARG, "%s: calibration statistics are for %lld inputs, the matrix has %lld columns",
                       c->name, (long long)st->n, (long long)n);
    if (!(o->damp >= 0 && o->damp <= 10))
        return lb__err(LB_ERR_ARG, "%s: damping %g is out of range [0, 10] (a fraction of mean(diag H); 0 = 0.01)",
                       c->name, o->damp);
    if (o->gptq_block < 0 || o->gptq_block > ((int64_t)1 << 20))
        return lb__err(LB_ERR_ARG, "%s: lazy batch of %lld columns is out of range [1, 2^20] (0 = 128)", c->name,
                       (long long)o->gptq_block);
    if (o->shared_amax < 0 || !isfinite(o->shared_amax))
        return lb__err(LB_ERR_ARG, "%s: shared amax %g is not a finite value >= 0", c->name, (double)o->shared_amax);
    if ((unsigned)c->rule > LB_SCALE_FULL || (c->rule == LB_SCALE_FULL && !lb__format_full_ok(f)))
        return lb__err(LB_ERR_ARG, "%s/%s: scale rule %d does not apply (full: symmetric INT formats only)", c->name,
                       f->name, (int)c->rule);
    for (int64_t i = 0; i < n * n; i++)
        if (!isfinite(st->H[i])) return lb__err(LB_ERR_ARG, "%s: calibration H holds NaN or Inf", c->name);
    for (int64_t i = 0; i < n; i++)
        if (st->H[i * n + i] < 0)
            return lb__err(LB_ERR_ARG, "%s: calibration H has a negative diagonal entry (column %lld)", c->name,
                           (long long)i);
    if (lb__amax_bits(w, rows * n) >= 0x7f800000u)
        return lb__err(LB_ERR_ARG, "%s: the weights hold NaN or Inf", c->name);
    return LB_OK;
}

/* Descending diag, ties in ascending column order (a stable merge sort). */
static void order_by_diag(const double *d, int64_t n, int64_t *perm, int64_t *tmp)
{
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t w = 1; w < n; w *= 2)
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lb__min64(lo + w, n), hi = lb__min64(lo + 2 * w, n), a = lo, b = mid, k = lo;
            while (a < mid && b < hi) tmp[k++] = d[perm[b]] > d[perm[a]] ? perm[b++] : perm[a++];
            while (a < mid) tmp[k++] = perm[a++];
            while (b < hi) tmp[k++] = perm[b++];
            for (k = lo; k < hi; k++) perm[k] = tmp[k];
        }
}

/* U (n x n, position order) <- the upper Cholesky factor of (P H P^T + damp I)^-1,
 * retrying with 10x the damping when the factorization fails. */
static lb_status hinv_factor(const gptq_cfg *c, const double *H, const int64_t *perm, int64_t n, double frac,
                             double *U)
{
    double mean = 0;
    for (int64_t i = 0; i < n; i++) mean += H[i * n + i];
    mean /= (double)n;
    lb_status s = LB_OK;
    for (int t = 0; t < 4; t++, frac *= 10) {
        for (int64_t a = 0; a < n; a++) {
            int64_t pa = perm ? perm[a] : a;
            for (int64_t b = 0; b < n; b++) U[a * n + b] = H[pa * n + (perm ? perm[b] : b)];
            U[a * n + a] += frac * mean;
        }
        if (!(s = lb__chol_inv_upper(U, n))) return LB_OK;
        if (s == LB_ERR_NOMEM) return s;
    }
    char why[160];
    snprintf(why, sizeof why, "%s", lb_errmsg());
    return lb__err(LB_ERR_ARG, "%s: H is singular even with damping %g x mean(diag H) (4 tries, 10x more "
                   "damping each): %s", c->name, frac / 10, why);
}

/* Working copies: H with dead columns fixed (H_ii = 1) and W (double) with
 * their weights zeroed. */
static void fix_dead(const double *H0, const float *w, int64_t rows, int64_t n, double *H, double *W)
{
    memcpy(H, H0, (size_t)(n * n) * sizeof *H);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) W[r * n + i] = H0[i * n + i] == 0 ? 0.0 : (double)w[r * n + i];
    for (int64_t i = 0; i < n; i++)
        if (H[i * n + i] == 0) H[i * n + i] = 1;
}

/* Grids of every block from W (double, original order; static grids). */
static lb_status grids_upfront(gptq_job *j)
{
    float *tmp = lb__alloc((size_t)j->g * sizeof *tmp);
    if (!tmp) return LB_ERR_NOMEM;
    lb_status s = LB_OK;
    for (int64_t r = 0; !s && r < j->rows; r++)
        for (int64_t b = 0; !s && b < j->ng; b++) s = grid_now(j, r, b, tmp);
    LB_FREE(tmp);
    return s;
}

/* Permute the columns of every row of W (rows x n) to position order. */
static lb_status permute_rows(double *W, int64_t rows, int64_t n, const int64_t *perm)
{
    double *t = lb__alloc((size_t)n * sizeof *t);
    if (!t) return LB_ERR_NOMEM;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < n; i++) t[i] = W[r * n + perm[i]];
        memcpy(W + r * n, t, (size_t)n * sizeof *t);
    }
    LB_FREE(t);
    return LB_OK;
}

/* The lazy batch: o->gptq_block (0 = 128), lowered so that a dynamic grid's
 * block never starts inside a batch it does not end in (its first column
 * must see every earlier update). */
static int64_t batch_size(const lb_quantize_opts *o, int64_t g, int64_t n, bool dynamic)
{
    int64_t bs = o->gptq_block ? o->gptq_block : 128;
    if (!dynamic || g == n) return bs;      /* static grids, or one grid per row found at column 0 */
    if (g <= bs) return bs - bs % g;
    while (g % bs) bs--;
    return bs;
}

static lb_status gptq_run(const gptq_cfg *c, const lb_quantize_opts *o, const float *w, lb_qmatrix *out)
{
    const lb_format *f = out->fmt;
    int64_t rows = out->rows, n = out->cols;
    lb_status s = check_inputs(c, o, f, w, rows, n);
    if (s) return s;
    gptq_job j = {.f = f, .rule = c->rule, .rows = rows, .n = n, .g = f->block ? f->block : n,
                  .dynamic = !c->static_grids};
    j.ng = n / j.g;
    j.bs = batch_size(o, j.g, n, j.dynamic);
    float amax = lb__bits_f32(lb__amax_bits(w, rows * n));
    j.tscale = lb__grid_tensor_scale(f, o->shared_amax > amax ? o->shared_amax : amax);
    double *H = lb__alloc((size_t)(n * n) * sizeof *H), *U = lb__alloc((size_t)(n * n) * sizeof *U);
    int64_t *perm = c->act_order ? lb__alloc((size_t)(2 * n) * sizeof *perm) : NULL;
    j.W = lb__alloc((size_t)(rows * n) * sizeof *j.W);
    j.grids = lb__alloc((size_t)(rows * j.ng) * sizeof *j.grids);
    j.codes = lb__alloc((size_t)(rows * n));
    if (!H || !U || !j.W || !j.grids || !j.codes || (c->act_order && !perm)) s = LB_ERR_NOMEM;
    if (!s) {
        /* sequential calibration: the inputs the quantized earlier layers produce (the reference's H) */
        fix_dead(o->calib->Hq ? o->calib->Hq : o->calib->H, w, rows, n, H, j.W);
        if (!j.dynamic) s = grids_upfront(&j);
    }
    if (!s && perm) {
        double *d = U;                       /* U is free scratch until hinv_factor */
        for (int64_t i = 0; i < n; i++) d[i] = H[i * n + i];
        order_by_diag(d, n, perm, perm + n);
        s = permute_rows(j.W, rows, n, perm);
        j.perm = perm;
    }
    if (!s) s = hinv_factor(c, H, perm, n, o->damp > 0 ? o->damp : 0.01, U);
    if (!s) {
        j.U = U;
        rows_task(&j, 0, rows, 0);
        s = j.status;
    }
    size_t bb = lb__block_bytes(f, j.g);
    for (int64_t r = 0; !s && r < rows; r++)
        for (int64_t b = 0; b < j.ng; b++)
            lb__grid_pack(f, &j.grids[r * j.ng + b], j.codes + r * n + b * j.g, j.g,
                          out->packed + (size_t)r * out->row_bytes + (size_t)b * bb);
    if (!s) out->tensor_scale = j.tscale;
    LB_FREE(H); LB_FREE(U); LB_FREE(perm);
    LB_FREE(j.W); LB_FREE(j.grids); LB_FREE(j.codes);
    return s;
}

lb_status lb__gptq_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out)
{
    gptq_cfg c = {.act_order = o->act_order != 0, .static_grids = o->act_order != 0, .rule = o->scale_rule,
                  .name = "gptq"};
    return gptq_run(&c, o, w, out);
}

lb_status lb__mrgptq_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out)
{
    gptq_cfg c = {.act_order = true, .static_grids = true, .rule = LB_SCALE_MSE, .name = "mr-gptq"};
    return gptq_run(&c, o, w, out);
}
