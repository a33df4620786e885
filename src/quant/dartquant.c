/* dartquant.c: DartQuant (Shao et al. 2025, "DartQuant: Efficient
 * Rotational Distribution Calibration for LLM Quantization"): a learned
 * rotation of each linear's input space, trained on calibration
 * activations so that the rotated activations are near-uniform, then fused
 * like the Hadamard rotation (W R^T quantized offline, x <- R x online
 * before the activation format quantizes it).
 *
 * QR-Orth: R = Q of Z = Q Rz (Rz upper triangular, positive diagonal), Z
 * (n x n) the trained parameter, so R is orthogonal at every step without
 * a manifold optimizer. Here the QR is Cholesky QR (Rz = chol(Z^T Z)^T,
 * Q = Z Rz^-1): Z starts orthogonal (the randomized Hadamard of the
 * hadamard+* methods, same seed, or I where no Hadamard plan exists) and
 * moves slowly, so Z^T Z stays well conditioned; the returned R goes
 * through one more Cholesky QR pass (orthogonal to ~1e-15).
 *
 * Whip loss on the sample rows x_t (lb_calib_stats.rows, each scaled to
 * RMS 1, our choice: the loss is not scale invariant and per-block
 * quantization is), y_t = R x_t:
 *   L = (1/N) sum_t sum_i exp(-|y_ti|)
 * which pushes values away from 0; with ||y_t|| fixed by the rotation, mass
 * leaves the centre and the tails shrink toward a uniform shape.
 *
 * Gradient by hand: G_R = dL/dR = (1/N) sum_t g_t x_t^T, g = -sign(y)
 * exp(-|y|). Through Z = Q Rz (square, only Q used): dZ = dQ Rz + Q dRz
 * gives Q^T dZ Rz^-1 = C + dRz Rz^-1 with C = Q^T dQ antisymmetric, so C
 * is the strictly lower part of X = Q^T dZ Rz^-1 minus its transpose, and
 * dL = <Q^T G_R, C> = <tril(B - B^T, -1), X> with B = Q^T G_R:
 *   G_Z = Q tril(B - B^T, -1) Rz^-T.
 * Optimizer: SGD with momentum 0.9, each step normalized to a fixed
 * fraction of ||Z||_F (DART_LR, cosine schedule to 0), so the step does not
 * depend on the activations' scale; when Rz's diagonal spreads by more than
 * DART_REANCHOR, Z is replaced by Q (the same R: QR-Orth is invariant to
 * that) so the Cholesky QR stays accurate.
 *
 * Everything is double, products through lb__gemm_sub (fixed order), so
 * R does not depend on the thread count or the ISA. */
#include "quant/quant.h"
#include <math.h>

#define DART_ITERS 100
#define DART_LR 0.05                 /* step: this fraction of ||Z||_F (cosine to 0) */
#define DART_REANCHOR 4.0            /* Z <- Q when Rz's diagonal spreads wider (keeps Z^T Z well conditioned) */
#define DART_MOMENTUM 0.9

/* C (m x p) = A (m x k) B (k x p), all dense row-major. */
static void mm(double *C, const double *A, const double *B, int64_t m, int64_t k, int64_t p)
{
    memset(C, 0, sizeof(double) * (size_t)(m * p));
    lb__gemm_sub(C, p, A, k, B, p, m, k, p, false);
    for (int64_t i = 0; i < m * p; i++) C[i] = -C[i];
}

static void transpose(double *T, const double *A, int64_t m, int64_t n)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) T[j * m + i] = A[i * n + j];
}

/* Workspace of one training run (n = width, N = rows). */
typedef struct dart_ws {
    int64_t n, N;
    double *X, *Xt;              /* (N, n) normalized rows, (n, N) */
    double *Q, *Rinv, *Z, *V;    /* (n, n) each */
    double *a, *b, *c, *d;       /* (n, n) scratch */
    double *Y;                   /* (N, n) */
} dart_ws;

static void ws_free(dart_ws *w)
{
    double **p[] = {&w->X, &w->Xt, &w->Q, &w->Rinv, &w->Z, &w->V, &w->a, &w->b, &w->c, &w->d, &w->Y};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) LB_FREE(*p[i]);
}

static lb_status ws_alloc(dart_ws *w, int64_t n, int64_t N)
{
    memset(w, 0, sizeof *w);
    w->n = n; w->N = N;
    size_t nn = sizeof(double) * (size_t)(n * n), nN = sizeof(double) * (size_t)(n * N);
    double **p[] = {&w->Q, &w->Rinv, &w->Z, &w->V, &w->a, &w->b, &w->c, &w->d};
    bool ok = (w->X = lb__alloc(nN)) && (w->Xt = lb__alloc(nN)) && (w->Y = lb__alloc(nN));
    for (size_t i = 0; ok && i < sizeof p / sizeof *p; i++) ok = (*p[i] = lb__zalloc(nn)) != NULL;
    if (!ok) { ws_free(w); return LB_ERR_NOMEM; }
    return LB_OK;
}

/* Q, Rz^-1 of Z = Q Rz (Cholesky QR; scratch a, b). LB_ERR_ARG when Z^T Z
 * is not positive definite (Z singular). */
static lb_status chol_qr(const double *Z, double *Q, double *Rinv, int64_t n, double *a, double *b)
{
    transpose(a, Z, n, n);
    mm(b, a, Z, n, n, n);                     /* b = Z^T Z */
    lb_status s = lb__chol(b, n);             /* b = L, Rz = L^T */
    if (s) return lb__err(LB_ERR_ARG, "dartquant: the rotation parameter became singular");
    /* Rinv = (L^T)^-1 upper: column j solves L^T r = e_j by back substitution */
    memset(Rinv, 0, sizeof(double) * (size_t)(n * n));
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = j; i >= 0; i--) {
            double v = i == j ? 1.0 : 0.0;
            for (int64_t k = i + 1; k <= j; k++) v -= b[k * n + i] * Rinv[k * n + j];
            Rinv[i * n + j] = v / b[i * n + i];
        }
    mm(Q, Z, Rinv, n, n, n);
    return LB_OK;
}

/* The Whip loss at w->Q and, when gz, its gradient with respect to Z
 * (w->Q, w->Rinv must be QR-Orth of Z). */
static double whip(dart_ws *w, double *gz)
{
    int64_t n = w->n, N = w->N;
    transpose(w->a, w->Q, n, n);
    mm(w->Y, w->X, w->a, N, n, n);            /* Y = X Q^T: row t is Q x_t */
    double L = 0;
    for (int64_t i = 0; i < N * n; i++) {
        double e = exp(-fabs(w->Y[i]));
        L += e;
        w->Y[i] = (w->Y[i] > 0 ? -e : w->Y[i] < 0 ? e : 0) / (double)N;   /* dL/dy */
    }
    L /= (double)N;
    if (!gz) return L;
    transpose(w->Xt, w->Y, N, n);             /* Xt <- G_Y^T (n, N) */
    mm(w->b, w->Xt, w->X, n, N, n);           /* G_R = G_Y^T X */
    mm(w->c, w->a, w->b, n, n, n);            /* B = Q^T G_R */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) w->d[i * n + j] = j < i ? w->c[i * n + j] - w->c[j * n + i] : 0;
    mm(w->b, w->Q, w->d, n, n, n);            /* Q K */
    transpose(w->a, w->Rinv, n, n);
    mm(gz, w->b, w->a, n, n, n);              /* Q K Rz^-T */
    return L;
}

/* Rows scaled to RMS 1 (zero rows stay zero). */
static void load_rows(dart_ws *w, const float *rows)
{
    for (int64_t t = 0; t < w->N; t++) {
        double s = 0;
        for (int64_t j = 0; j < w->n; j++) s += (double)rows[t * w->n + j] * rows[t * w->n + j];
        double k = s > 0 ? sqrt((double)w->n / s) : 0;
        for (int64_t j = 0; j < w->n; j++) w->X[t * w->n + j] = rows[t * w->n + j] * k;
    }
}

lb_status lb__dart_whip(const double *Z, const float *rows, int64_t N, int64_t n, double *loss, double *gz)
{
    dart_ws w;
    lb_status s = ws_alloc(&w, n, N);
    if (s) return s;
    load_rows(&w, rows);
    s = chol_qr(Z, w.Q, w.Rinv, n, w.a, w.b);
    if (!s) *loss = whip(&w, gz);
    ws_free(&w);
    return s;
}

/* Z0: the randomized Hadamard of lb__quant_rotate (x' = T x, T =
 * blockdiag(H_b) diag(signs)), or I where no plan exists. */
static lb_status init_z(double *Z, int64_t n, uint64_t seed, int64_t max_block)
{
    lb_hadamard_plan p;
    memset(Z, 0, sizeof(double) * (size_t)(n * n));
    if (lb_hadamard_plan_for(n, max_block, &p)) {
        lb__clear_err();
        for (int64_t i = 0; i < n; i++) Z[i * n + i] = 1;
        return LB_OK;
    }
    float *e = lb__zalloc(sizeof(float) * (size_t)(n * n));
    int8_t *sg = lb__alloc((size_t)n);
    lb_status s = e && sg ? lb_hadamard_signs(seed, n, sg) : LB_ERR_NOMEM;
    for (int64_t i = 0; !s && i < n; i++) e[i * n + i] = 1;
    if (!s) s = lb_hadamard_rows(e, n, n, p.block, sg, 0);   /* row j = T e_j = column j of T */
    for (int64_t i = 0; !s && i < n; i++)
        for (int64_t j = 0; j < n; j++) Z[i * n + j] = e[j * n + i];
    LB_FREE(e);
    LB_FREE(sg);
    return s;
}

lb_status lb__dart_train(const float *rows, int64_t N, int64_t n, const lb__dart_opts *o, double *R, double *loss0,
                         double *loss1)
{
    dart_ws w;
    lb_status s = ws_alloc(&w, n, N);
    if (s) return s;
    load_rows(&w, rows);
    int iters = o->iters > 0 ? o->iters : DART_ITERS;
    double lr = o->lr > 0 ? o->lr : DART_LR, mu = DART_MOMENTUM;
    double *g = lb__alloc(sizeof(double) * (size_t)(n * n));
    if (!g) s = LB_ERR_NOMEM;
    if (!s) s = init_z(w.Z, n, o->seed, o->max_block);
    if (!s) s = chol_qr(w.Z, w.Q, w.Rinv, n, w.a, w.b);
    for (int it = 0; !s && it < iters; it++) {
        double L = whip(&w, g);
        if (it == 0 && loss0) *loss0 = L;
        double vv = 0, zz = 0;
        for (int64_t i = 0; i < n * n; i++) {
            w.V[i] = mu * w.V[i] + g[i];
            vv += w.V[i] * w.V[i];
            zz += w.Z[i] * w.Z[i];
        }
        if (!(vv > 0)) break;
        double eta = lr * 0.5 * (1 + cos(M_PI * it / iters)) * sqrt(zz / vv);
        for (int64_t i = 0; i < n * n; i++) w.Z[i] -= eta * w.V[i];
        s = chol_qr(w.Z, w.Q, w.Rinv, n, w.a, w.b);
        double dmin = INFINITY, dmax = 0;   /* Rz's diagonal is 1 / Rinv's */
        for (int64_t i = 0; !s && i < n; i++) {
            double d = 1 / w.Rinv[i * n + i];
            dmin = fmin(dmin, d); dmax = fmax(dmax, d);
        }
        if (!s && dmax > DART_REANCHOR * dmin) memcpy(w.Z, w.Q, sizeof(double) * (size_t)(n * n));
    }
    if (!s) {
        double L = whip(&w, NULL);
        if (loss1) *loss1 = L;
        if (iters == 0 && loss0) *loss0 = L;
        memcpy(w.Z, w.Q, sizeof(double) * (size_t)(n * n));   /* one more pass: orthogonal to rounding */
        s = chol_qr(w.Z, R, w.Rinv, n, w.a, w.b);
    }
    LB_FREE(g);
    ws_free(&w);
    return s;
}

lb_status lb__dart_rotate(const lb_quantize_opts *o, float *w, int64_t rows, int64_t cols, lb_qmatrix *out)
{
    const lb_calib_stats *c = o->calib;
    if (!c || !c->rows || c->n_rows < 1)
        return lb__err(LB_ERR_ARG, "dartquant: needs calibration activations (sample rows of each linear's input), "
                       "which only calibration on the fly keeps: give --calib-text FILE (a statistics file from "
                       "lowbit calib has none)");
    if (c->n != cols)
        return lb__err(LB_ERR_ARG, "dartquant: activations of %lld columns for a matrix of %lld", (long long)c->n,
                       (long long)cols);
    if (cols > LB_XFORM_ROT_MAX)
        return lb__err(LB_ERR_ARG, "dartquant: %lld columns (a dense rotation takes at most %d)", (long long)cols,
                       LB_XFORM_ROT_MAX);
    for (int64_t i = 0; i < c->n_rows * cols; i++)
        if (!isfinite(c->rows[i])) return lb__err(LB_ERR_ARG, "dartquant: a calibration activation is not finite");
    double *R = lb__alloc(sizeof(double) * (size_t)(cols * cols));
    float *Rf = lb__alloc(sizeof(float) * (size_t)(cols * cols)), *tmp = lb__alloc(sizeof(float) * (size_t)cols);
    lb__dart_opts d = {.seed = o->seed, .max_block = o->hadamard_block};
    lb_status s = R && Rf && tmp ? lb__dart_train(c->rows, c->n_rows, cols, &d, R, &out->whip_before, &out->whip_after)
                                 : LB_ERR_NOMEM;
    for (int64_t i = 0; !s && i < cols * cols; i++) Rf[i] = (float)R[i];
    for (int64_t r = 0; !s && r < rows; r++) {   /* w <- w R^T (the stored float R): w'_i = sum_j w_j R[i][j] */
        const float *x = w + r * cols;
        for (int64_t i = 0; i < cols; i++) {
            double a = 0;
            for (int64_t j = 0; j < cols; j++) a += (double)Rf[i * cols + j] * x[j];
            tmp[i] = (float)a;
        }
        memcpy(w + r * cols, tmp, sizeof(float) * (size_t)cols);
    }
    LB_FREE(R);
    LB_FREE(tmp);
    if (s) { LB_FREE(Rf); return s; }
    out->rotation = Rf;
    return LB_OK;
}
