/* hadamard.c: the public Hadamard API: plans for any dimension, the
 * orthonormal transform of one vector, its randomized version (T D, with a
 * seeded +-1 diagonal D) and block-diagonal application along the rows or
 * the columns of a row-major matrix. The arithmetic lives in the kernels
 * (fwht_ref.c is the specification; see hadamard.h for its order).
 *
 * Rotating a linear layer: with W (out, in) and the activation x (in),
 * lb_hadamard_rows(W, out, in, b, D, 0) makes W' = W R^T and
 * lb_hadamard_rows(x, 1, in, b, D, 0) makes x' = R x for the same
 * R = blockdiag(T_b) D, so W' x' = W R^T R x = W x. */
#include "transforms/hadamard.h"
#include <math.h>

const lb__fwht_kernels *lb__fwht_for(lb_isa isa)
{
    if (isa == LB_ISA_AVX512 && lb__cpu_has_avx512()) return &lb__fwht_avx512;
    if (isa >= LB_ISA_AVX2 && lb__cpu_has_avx2()) return &lb__fwht_avx2;
    return &lb__fwht_ref;
}

/* Split a supported block order n = m * p (p a power of two, m = 1 or a
 * small order of the table); false when n is not one. */
static bool split_order(int64_t n, int64_t *m, int64_t *p)
{
    if (n < 2 || n > LB_HADAMARD_MAX_BLOCK) return false;
    int64_t pw = n & -n, odd = n / pw;
    int q, kind;
    if (odd == 1) { *m = 1; *p = n; return true; }
    /* Hadamard orders above 2 are multiples of 4, so m = 4 * odd part. */
    if (pw < 4 || 4 * odd > LB__HAD_MAX_M || !lb__hadamard_small_recipe((int)(4 * odd), &q, &kind)) return false;
    *m = 4 * odd;
    *p = n / *m;
    return true;
}

int lb_hadamard_supported(int64_t n)
{
    int64_t m, p;
    return split_order(n, &m, &p);
}

lb_status lb_hadamard_plan_for(int64_t n, int64_t max_block, lb_hadamard_plan *out)
{
    LB_ARG(out, "lb_hadamard_plan_for: out is NULL");
    if (max_block <= 0) max_block = LB_HADAMARD_MAX_BLOCK;
    if (n < 2) return lb__err(LB_ERR_ARG, "lb_hadamard_plan_for: n=%lld must be >= 2", (long long)n);
    if (max_block < 2) return lb__err(LB_ERR_ARG, "lb_hadamard_plan_for: max_block=%lld must be >= 2 (or 0 for no limit)", (long long)max_block);
    for (int64_t b = lb__min64(n, lb__min64(max_block, LB_HADAMARD_MAX_BLOCK)); b >= 2; b--) {
        int64_t m, p;
        if (n % b || !split_order(b, &m, &p)) continue;
        *out = (lb_hadamard_plan){n, b, m, p, n / b, b == n};
        return LB_OK;
    }
    return lb__err(LB_ERR_ARG, "lb_hadamard_plan_for: n=%lld is odd: no Hadamard block (order 2, 4, 8, ... or 2^k*m) divides it",
                   (long long)n);
}

/* Describe the supported orders for error messages. */
static const char *supported_text(void)
{
    return "supported block orders: 2^k (2..32768) and 2^k*m for m = 12, 20, 28, 36, 44, 60, 68, 76, 84, 108, 124, "
           "132, 140, 148 (up to 32768); lb_hadamard_plan_for() picks one for any even n";
}

/* Validate `block` against a dimension `dim` named `what`; 0 picks the
 * largest supported block dividing dim. */
static lb_status check_block(const char *fn, const char *what, int64_t dim, int64_t *block, int64_t *m, int64_t *p)
{
    if (*block == 0) {
        lb_hadamard_plan plan;
        lb_status s = lb_hadamard_plan_for(dim, 0, &plan);
        if (s) return lb__err_prefix(s, "%s: %s: ", fn, what);
        *block = plan.block;
    }
    if (*block < 0 || dim % *block)
        return lb__err(LB_ERR_ARG, "%s: block %lld does not divide %s=%lld", fn, (long long)*block, what, (long long)dim);
    if (!split_order(*block, m, p))
        return lb__err(LB_ERR_ARG, "%s: block %lld is not a supported Hadamard order (%s)", fn, (long long)*block,
                       supported_text());
    return LB_OK;
}

static void flip_signs(float *x, const int8_t *signs, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (signs[i] < 0) x[i] = -x[i];
}

/* Negate the rows i of the b x cols matrix x whose signs[i] < 0. */
static void flip_rows(float *x, const int8_t *signs, int64_t b, int64_t cols)
{
    for (int64_t i = 0; i < b; i++)
        if (signs[i] < 0)
            for (int64_t j = 0; j < cols; j++) x[i * cols + j] = -x[i * cols + j];
}

/* What one call needs: the kernels, the block split and the scale. */
typedef struct had_job {
    const lb__fwht_kernels *K;
    const float *Hm;           /* H_m or H_m^T when m > 1 */
    int64_t block, m, p;
    float scale;
} had_job;

/* Validate a (rows, cols) call transforming along `dim` (named `what`). */
static lb_status prepare(const char *fn, const char *what, const float *a, int64_t rows, int64_t cols, int64_t dim,
                         int64_t block, int inverse, had_job *j)
{
    if (!a || rows < 0 || cols < 1)
        return lb__err(LB_ERR_ARG, "%s: bad matrix (data %s, rows=%lld, cols=%lld)", fn, a ? "set" : "NULL",
                       (long long)rows, (long long)cols);
    lb_status s = check_block(fn, what, dim, &block, &j->m, &j->p);
    if (s) return s;
    j->Hm = j->m > 1 ? lb__hadamard_small((int)j->m, inverse != 0) : NULL;
    if (j->m > 1 && !j->Hm) return LB_ERR_NOMEM;
    j->K = lb__fwht_for(lb_isa_active());
    j->block = block;
    j->scale = (float)(1.0 / sqrt((double)block));
    return LB_OK;
}

/* Transform the contiguous blocks of x (n floats, a multiple of the block). */
static void contiguous_blocks(const had_job *j, float *x, int64_t n)
{
    int64_t nb = n / j->block;
    if (j->m == 1) { j->K->blocks(x, j->p, nb, j->scale); return; }
    if (j->p > 1) j->K->blocks(x, j->p, nb * j->m, 1.0f);
    for (int64_t b = 0; b < nb; b++) j->K->small(x + b * j->block, j->Hm, (int)j->m, j->p, j->p, j->scale);
}

lb_status lb_hadamard_rows(float *a, int64_t rows, int64_t cols, int64_t block, const int8_t *signs, int inverse)
{
    had_job j;
    lb_status s = prepare("lb_hadamard_rows", "cols", a, rows, cols, cols, block, inverse, &j);
    if (s) return s;
    if (!signs) {   /* blocks are contiguous across rows: one sweep */
        contiguous_blocks(&j, a, rows * cols);
        return LB_OK;
    }
    for (int64_t r = 0; r < rows; r++) {
        float *x = a + r * cols;
        if (!inverse) flip_signs(x, signs, cols);
        contiguous_blocks(&j, x, cols);
        if (inverse) flip_signs(x, signs, cols);
    }
    return LB_OK;
}

lb_status lb_hadamard_cols(float *a, int64_t rows, int64_t cols, int64_t block, const int8_t *signs, int inverse)
{
    had_job j;
    lb_status s = prepare("lb_hadamard_cols", "rows", a, rows, cols, rows, block, inverse, &j);
    if (s) return s;
    int64_t m = j.m, p = j.p;
    for (int64_t r0 = 0; r0 < rows; r0 += j.block) {
        float *x = a + r0 * cols;
        if (signs && !inverse) flip_rows(x, signs + r0, j.block, cols);
        if (m == 1) j.K->lanes(x, p, cols, cols, j.scale);
        else {
            if (p > 1)
                for (int64_t k = 0; k < m; k++) j.K->lanes(x + k * p * cols, p, cols, cols, 1.0f);
            j.K->small(x, j.Hm, (int)m, p * cols, p * cols, j.scale);
        }
        if (signs && inverse) flip_rows(x, signs + r0, j.block, cols);
    }
    return LB_OK;
}

static lb_status one_vector(const char *fn, float *x, int64_t n, int inverse)
{
    int64_t m, p;
    if (!x) return lb__err(LB_ERR_ARG, "%s: x is NULL", fn);
    if (!split_order(n, &m, &p))
        return lb__err(LB_ERR_ARG, "%s: n=%lld is not a supported Hadamard order (%s)", fn, (long long)n, supported_text());
    return lb_hadamard_rows(x, 1, n, n, NULL, inverse);
}

lb_status lb_hadamard(float *x, int64_t n) { return one_vector("lb_hadamard", x, n, 0); }
lb_status lb_hadamard_inverse(float *x, int64_t n) { return one_vector("lb_hadamard_inverse", x, n, 1); }

/* signs[i] = -1 when bit (i % 64) of the (i / 64)-th lb_rng_u64 draw is set. */
lb_status lb_hadamard_signs(uint64_t seed, int64_t n, int8_t *signs)
{
    if (!signs || n < 0) return lb__err(LB_ERR_ARG, "lb_hadamard_signs: bad arguments (signs %s, n=%lld)", signs ? "set" : "NULL", (long long)n);
    lb_rng r;
    lb_rng_seed(&r, seed);
    uint64_t bits = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i % 64 == 0) bits = lb_rng_u64(&r);
        signs[i] = (bits >> (i % 64)) & 1 ? -1 : 1;
    }
    return LB_OK;
}
