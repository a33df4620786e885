/* qronos.c: Qronos (Zhang et al., arXiv 2505.11695; Brevitas
 * src/brevitas/graph/qronos.py), sequential calibration only.
 *
 * Layer l's weights W should map the float-path inputs x to W x, but at run
 * time they see xq, the inputs the already-quantized earlier layers give.
 * Qronos fits Q xq to W x:  min_Q mean_t ||W x_t - Q xq_t||^2, whose
 * statistics are (lowbit.h lb_calib_stats, n = cols)
 *   Hq = mean xq xq^T,   G = mean x xq^T = Hqx^T   (Hqx = mean xq x^T),
 * loss(Q) = tr(W H W^T) - 2 tr(Q Hqx W^T) + tr(Q Hq Q^T).
 * With lambda > 0 the damped problem adds lambda ||W - Q||_F^2, i.e. Hq + lI
 * and G + lI. Steps (columns in natural order):
 *  0. V = W with the dead columns (Hq_jj = 0) set to zero.
 *  1. "Correct the past": the least-squares column 0 given the others at V,
 *       v0 = (W G[:,0] - sum_{j>0} V[:,j] Hq[0,j]) / Hq[0,0]   (0 if Hq00 = 0),
 *     q0 = Q(v0); then every later column re-solved given q0:
 *       V[:,1:] = (W (G + lI)[:,1:] - q0 Hq[0,1:]) M^-1,  M = (Hq + lI)[1:,1:].
 *  2. "Shape the future": GPTQ error diffusion over columns 1..n-1 with U
 *     the upper Cholesky factor of M^-1 (M^-1 = U^T U, lb__chol_inv_upper):
 *       q_j = Q(V[:,j]),  e = (V[:,j] - q_j) / U_jj,  V[:,k] -= e U_jk (k > j).
 *     (Once V[:,1:] is the least-squares optimum, correcting the past again
 *     changes nothing and re-solving the future is exactly this update.)
 * lambda = 1e-6 * sigma_max(Hq) (30 power iterations, as Brevitas) or, with
 * o->damp > 0, damp * mean(diag Hq) (GPTQ's convention); when M is not
 * positive definite lambda is multiplied by 10, up to 4 times.
 *
 * The grid: every block's scale (and zero point) is fixed before the column
 * loop, the one rtn chooses on the original W with the format's rule
 * (static groups, as MR-GPTQ); Q(v) rounds v onto it the way blocks.c
 * encodes an element: the fixed grids of src/formats/grid.c, shared with
 * GPTQ (symmetric INT: code -2^(k-1) only where the format's own
 * quantization of the block used it, i.e. the full rule or an MSE pick of a
 * full-rule candidate).
 * Costs: O(n^3 + rows n^2) time, 2 rows x n + n^2 doubles. */
#include "quant/quant.h"
#include "formats/formats.h"
#include <math.h>

/* The fixed grids (src/formats/grid.c): one per block of each row, found
 * up front on the original W; codes collected per element. */
typedef struct grid {
    const lb_format *f;
    lb__grid *g;                /* (rows, n / B) */
    uint8_t *codes;             /* (rows, n) */
    int64_t B, nb;
} grid;

/* Quantize column j of V (rows, stride n) onto the grid: codes kept,
 * q[r] = the decoded values. */
static void grid_column(const grid *gr, const double *V, int64_t rows, int64_t n, int64_t j, double *q)
{
    for (int64_t r = 0; r < rows; r++) {
        const lb__grid *g = &gr->g[r * gr->nb + j / gr->B];
        double v = V[r * n + j];      /* finite floats only reach the encoders (no NaN from inf * 0) */
        v = isnan(v) ? 0.0 : v > 0x1p127 ? 0x1p127 : v < -0x1p127 ? -0x1p127 : v;
        uint8_t c = lb__grid_code(gr->f, g, (float)v);
        gr->codes[r * n + j] = c;
        q[r] = lb__grid_value(gr->f, g, c);
    }
}

/* 30 power iterations from the all-ones vector: ~ the largest eigenvalue. */
static double sigma_max(const double *H, int64_t n, double *v, double *u)
{
    double sig = 0;
    for (int64_t i = 0; i < n; i++) v[i] = 1.0 / sqrt((double)n);
    for (int it = 0; it < 30; it++) {
        double nn = 0;
        for (int64_t i = 0; i < n; i++) {
            double t = 0;
            for (int64_t j = 0; j < n; j++) t += H[i * n + j] * v[j];
            u[i] = t;
            nn += t * t;
        }
        sig = sqrt(nn);
        if (!(sig > 0)) return 0;
        for (int64_t i = 0; i < n; i++) v[i] = u[i] / sig;
    }
    return sig;
}

/* M = (Hq + lam I)[1:,1:] <- U, the upper Cholesky factor of M^-1; lam
 * grows tenfold (up to 4 times) while M is not positive definite. */
static lb_status damped_inverse(const double *Hq, int64_t n, double *lam, double *M)
{
    int64_t m = n - 1;
    for (int tries = 0; tries < 5; tries++, *lam *= 10) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < m; j++) M[i * m + j] = Hq[(i + 1) * n + j + 1] + (i == j ? *lam : 0.0);
        if (!m || !lb__chol_inv_upper(M, m)) return LB_OK;
    }
    return lb__err(LB_ERR_ARG, "qronos: Hq + lambda I is singular even with lambda = %g (more calibration tokens?)",
                   *lam / 10);
}

/* Steps 0 and 1: V <- the corrected columns, q0 quantized onto the grid.
 * U (m x m, m = n - 1) is the upper factor of M^-1, T scratch rows x m. */
static void correct_past(const grid *gr, const lb_calib_stats *c, const float *w, int64_t rows, int64_t n, double lam,
                         const double *U, double *V, double *T, double *q, double *bt)
{
    const double *Hq = c->Hq, *Hqx = c->Hqx;
    int64_t m = n - 1;
    double h0 = Hq[0] != 0 ? 1.0 / Hq[0] : 0.0;
    for (int64_t r = 0; r < rows; r++) {
        double gw = 0, uv = 0;
        for (int64_t i = 0; i < n; i++) gw += (double)w[r * n + i] * Hqx[i];
        for (int64_t j = 1; j < n; j++) uv += V[r * n + j] * Hq[j];
        V[r * n] = (gw - uv) * h0;
    }
    grid_column(gr, V, rows, n, 0, q);
    /* 4 rows at a time, the block transposed into bt (n x 4): each matrix
     * row is read rows / 4 times and the 4 sums are independent. */
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
        int64_t nb = rows - r0 < 4 ? rows - r0 : 4;
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < 4; k++) bt[i * 4 + k] = k < nb ? w[(r0 + k) * n + i] : 0.0;
        for (int64_t j = 1; j < n; j++) {     /* R = W (G + lI)[:,1:] - q0 Hq[0,1:] */
            const double *hx = Hqx + j * n;
            double a[4];
            for (int k = 0; k < 4; k++) a[k] = lam * bt[j * 4 + k];
            for (int64_t i = 0; i < n; i++)
                for (int k = 0; k < 4; k++) a[k] += bt[i * 4 + k] * hx[i];
            for (int64_t k = 0; k < nb; k++) V[(r0 + k) * n + j] = a[k] - q[r0 + k] * Hq[j];
        }
        for (int64_t j = 0; j < m; j++)       /* bt <- R transposed */
            for (int64_t k = 0; k < 4; k++) bt[j * 4 + k] = k < nb ? V[(r0 + k) * n + 1 + j] : 0.0;
        for (int64_t k = 0; k < m; k++) {     /* T = R U^T */
            const double *u = U + k * m;
            double a[4] = {0};
            for (int64_t j = k; j < m; j++)
                for (int kk = 0; kk < 4; kk++) a[kk] += bt[j * 4 + kk] * u[j];
            for (int64_t kk = 0; kk < nb; kk++) T[(r0 + kk) * m + k] = a[kk];
        }
    }
    for (int64_t r = 0; r < rows; r++) {      /* V[:,1:] = T U, row by row of U (each sum in k order) */
        double *v = V + r * n + 1;
        const double *t = T + r * m;
        for (int64_t j = 0; j < m; j++) v[j] = 0;
        for (int64_t k = 0; k < m; k++) {
            const double tk = t[k], *u = U + k * m;
            for (int64_t j = k; j < m; j++) v[j] += tk * u[j];
        }
        V[r * n] = q[r];
    }
}

/* Step 2: GPTQ error diffusion over columns 1..n-1. */
static void shape_future(const grid *gr, int64_t rows, int64_t n, const double *U, double *V, double *q)
{
    int64_t m = n - 1;
    for (int64_t j = 1; j < n; j++) {
        grid_column(gr, V, rows, n, j, q);
        const double *u = U + (j - 1) * m;
        for (int64_t r = 0; r < rows; r++) {
            double e = (V[r * n + j] - q[r]) / u[j - 1];
            double *v = V + r * n;
            for (int64_t k = j + 1; k < n; k++) v[k] -= e * u[k - 1];
            v[j] = q[r];
        }
    }
}

/* mean ||W x - Q xq||^2 = sum_r w H w - 2 q Hqx w + q Hq q (Q = V after the
 * loop), 4 rows at a time: wt, qt (n x 4, scratch) hold the block
 * transposed, so each matrix row is read rows / 4 times. */
static double xq_loss(const lb_calib_stats *c, const float *w, const double *Q, int64_t rows, int64_t n, double *wt,
                      double *qt)
{
    double tot = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
        int64_t nb = rows - r0 < 4 ? rows - r0 : 4;
        for (int64_t j = 0; j < n; j++)
            for (int64_t k = 0; k < 4; k++) {
                wt[j * 4 + k] = k < nb ? w[(r0 + k) * n + j] : 0.0;
                qt[j * 4 + k] = k < nb ? Q[(r0 + k) * n + j] : 0.0;
            }
        for (int64_t i = 0; i < n; i++) {
            const double *h = c->H + i * n, *hx = c->Hqx + i * n, *hq = c->Hq + i * n;
            double a[4] = {0}, b[4] = {0}, d[4] = {0};
            for (int64_t j = 0; j < n; j++) {
                const double *wj = wt + j * 4, *qj = qt + j * 4;
                for (int k = 0; k < 4; k++) {
                    a[k] += h[j] * wj[k];
                    b[k] += hx[j] * wj[k];
                    d[k] += hq[j] * qj[k];
                }
            }
            for (int k = 0; k < 4; k++) tot += wt[i * 4 + k] * a[k] - 2 * qt[i * 4 + k] * b[k] + qt[i * 4 + k] * d[k];
        }
    }
    return tot;
}

lb_status lb__qronos_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out)
{
    lb_status s = lb__calib_check(o, out, false, true);
    if (s) return s;
    if (o->act_order) return lb__err(LB_ERR_UNSUPPORTED, "qronos: activation order is not supported");
    int64_t rows = out->rows, n = out->cols, m = n - 1;
    for (int64_t i = 0; i < rows * n; i++)
        if (!isfinite(w[i])) return lb__err(LB_ERR_ARG, "qronos: the weight holds NaN or Inf (element %lld)", (long long)i);
    const lb_calib_stats *c = o->calib;
    const lb_format *f = out->fmt;
    int64_t B = lb_format_block(f) ? lb_format_block(f) : n;
    grid gr = {f, lb__alloc((size_t)(rows * (n / B)) * sizeof(lb__grid)), lb__alloc((size_t)(rows * n)), B, n / B};
    out->tensor_scale = lb__grid_tensor_scale(f, lb__bits_f32(lb__amax_bits(w, rows * n)));
    if (!gr.g || !gr.codes) s = LB_ERR_NOMEM;
    for (int64_t r = 0; !s && r < rows; r++)   /* the grids: the format's own choice on W (static groups) */
        for (int64_t b = 0; !s && b < gr.nb; b++)
            s = lb__grid_find(f, o->scale_rule, out->tensor_scale, w + r * n + b * B, B, &gr.g[r * gr.nb + b]);
    double *V = lb__alloc((size_t)(rows * n) * sizeof *V), *M = lb__alloc((size_t)(m * m + 1) * sizeof *M);
    size_t nt = (size_t)(rows * m) > (size_t)(8 * n) ? (size_t)(rows * m) : (size_t)(8 * n);  /* T, then xq_loss's scratch */
    double *T = lb__alloc((nt + 1) * sizeof *T), *q = lb__alloc((size_t)(rows + 4 * n) * sizeof *q);
    if (!V || !M || !T || !q) s = LB_ERR_NOMEM;
    double mean = 0, lam = 0;
    for (int64_t i = 0; i < n; i++) mean += c->Hq[i * n + i] / (double)n;
    if (!s) lam = o->damp > 0 ? o->damp * mean : 1e-6 * sigma_max(c->Hq, n, q + rows, q + rows + n);
    if (!s && !(lam > 0))
        s = lb__err(LB_ERR_ARG, "qronos: the quantized-path statistics Hq are zero (no calibration tokens?)");
    if (!s) s = damped_inverse(c->Hq, n, &lam, M);
    if (!s) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < n; j++) V[r * n + j] = c->Hq[j * n + j] == 0 ? 0.0 : w[r * n + j];
        correct_past(&gr, c, w, rows, n, lam, M, V, T, q, q + rows);
        shape_future(&gr, rows, n, M, V, q);
        out->layer_loss = xq_loss(c, w, V, rows, n, T, T + 4 * n);
        size_t bb = lb__block_bytes(f, B);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t b = 0; b < gr.nb; b++)
                lb__grid_pack(f, &gr.g[r * gr.nb + b], gr.codes + r * n + b * B, B,
                              out->packed + (size_t)r * out->row_bytes + (size_t)b * bb);
    }
    LB_FREE(gr.g); LB_FREE(gr.codes);
    LB_FREE(V); LB_FREE(M); LB_FREE(T); LB_FREE(q);
    return s;
}
