/* mrgptq.c: the statistics side of a rotating method. A method with
 * rotate = true quantizes W' = W R^T (R = blockdiag(T_b) D, hadamard.c) and
 * its input is x' = R x online, so its statistics are those of x':
 *     H' = R H R^T,   sq' = diag(H'),   Hq' = R Hq R^T,   Hqx' = R Hqx R^T.
 * mean |x'| and max |x'| do not follow from H and are left out (NULL).
 * R is applied to double vectors with the arithmetic of the float transform
 * (src/transforms/hadamard.h): signs, the p-point FWHT of each sub-block,
 * the small Paley factor H_m across sub-blocks, one scale by 1/sqrt(b). */
#include "quant/quant.h"
#include "transforms/hadamard.h"
#include <math.h>

/* v (n) <- R v. */
static void rot_vec(double *v, int64_t n, const lb_hadamard_plan *p, const int8_t *signs, const float *Hm,
                    double *tmp)
{
    int64_t b = p->block, m = p->m, pw = p->pow2;
    double sc = 1.0 / sqrt((double)b);
    for (int64_t i = 0; i < n; i++) v[i] *= signs[i];
    for (int64_t o = 0; o < n; o += b) {
        double *x = v + o;
        for (int64_t a = 0; a < m; a++) {
            double *s = x + a * pw;
            for (int64_t h = 1; h < pw; h *= 2)
                for (int64_t i = 0; i < pw; i += 2 * h)
                    for (int64_t k = i; k < i + h; k++) {
                        double u = s[k], w = s[k + h];
                        s[k] = u + w;
                        s[k + h] = u - w;
                    }
        }
        if (m > 1)
            for (int64_t q = 0; q < pw; q++) {
                for (int64_t a = 0; a < m; a++) {
                    double acc = 0;
                    for (int64_t c = 0; c < m; c++) acc += Hm[a * m + c] * x[c * pw + q];
                    tmp[a] = acc;
                }
                for (int64_t a = 0; a < m; a++) x[a * pw + q] = tmp[a];
            }
        for (int64_t i = 0; i < b; i++) x[i] *= sc;
    }
}

static void transpose(double *a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) { double t = a[i * n + j]; a[i * n + j] = a[j * n + i]; a[j * n + i] = t; }
}

/* out (n x n) <- R M R^T: rows rotated (M R^T), transposed, rows rotated again, transposed. */
static void rot_matrix(const double *M, int64_t n, const lb_hadamard_plan *p, const int8_t *signs, const float *Hm,
                       double *out, double *tmp)
{
    memcpy(out, M, (size_t)(n * n) * sizeof *out);
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t i = 0; i < n; i++) rot_vec(out + i * n, n, p, signs, Hm, tmp);
        transpose(out, n);
    }
}

lb_status lb__quant_rotate_calib(const lb_qmatrix *q, const lb_calib_stats *in, lb_calib_stats *out, double **buf)
{
    *buf = NULL;
    memset(out, 0, sizeof *out);
    int64_t n = in->n;
    if (!in->H || n != q->cols || !q->hadamard_signs)
        return lb__err(LB_ERR_ARG, "rotated statistics: H of %lld inputs for a rotation of %lld columns",
                       (long long)n, (long long)q->cols);
    lb_hadamard_plan p;
    lb_status s = lb_hadamard_plan_for(n, q->hadamard_block, &p);
    if (s) return s;
    const float *Hm = p.m > 1 ? lb__hadamard_small((int)p.m, false) : NULL;
    if (p.m > 1 && !Hm) return LB_ERR_NOMEM;
    int nm = 1 + (in->Hq != NULL) + (in->Hqx != NULL);
    double *b = lb__alloc(((size_t)(nm * n * n) + (size_t)n + (size_t)p.m) * sizeof *b);
    if (!b) return LB_ERR_NOMEM;
    double *tmp = b + nm * n * n + n, *next = b;
    *out = *in;
    out->abs = NULL;
    out->amax = NULL;
    rot_matrix(in->H, n, &p, q->hadamard_signs, Hm, next, tmp);
    out->H = next;
    next += n * n;
    if (in->Hq) { rot_matrix(in->Hq, n, &p, q->hadamard_signs, Hm, next, tmp); out->Hq = next; next += n * n; }
    if (in->Hqx) { rot_matrix(in->Hqx, n, &p, q->hadamard_signs, Hm, next, tmp); out->Hqx = next; next += n * n; }
    double *sq = b + nm * n * n;
    for (int64_t i = 0; i < n; i++) sq[i] = out->H[i * n + i];
    out->sq = in->sq ? sq : NULL;
    *buf = b;
    return LB_OK;
}
