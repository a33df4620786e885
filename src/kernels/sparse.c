/* sparse.c: the reference gathers of sparse rows (the specification the
 * SIMD paths reproduce: they only move values) and the choice of path. */
#include "kernels/sparse.h"

const uint8_t lb__popcount8[256] = {
    0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 1, 2, 2, 3, 2, 3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5, 1, 2, 2, 3, 2,
    3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6, 1, 2, 2, 3, 2, 3, 3, 4, 2, 3,
    3, 4, 3, 4, 4, 5, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5,
    6, 3, 4, 4, 5, 4, 5, 5, 6, 4, 5, 5, 6, 5, 6, 6, 7, 1, 2, 2, 3, 2, 3, 3, 4, 2, 3, 3, 4, 3, 4, 4, 5, 2, 3, 3, 4,
    3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6, 3, 4, 4, 5, 4, 5, 5, 6, 4,
    5, 5, 6, 5, 6, 6, 7, 2, 3, 3, 4, 3, 4, 4, 5, 3, 4, 4, 5, 4, 5, 5, 6, 3, 4, 4, 5, 4, 5, 5, 6, 4, 5, 5, 6, 5, 6,
    6, 7, 3, 4, 4, 5, 4, 5, 5, 6, 4, 5, 5, 6, 5, 6, 6, 7, 4, 5, 5, 6, 5, 6, 6, 7, 5, 6, 6, 7, 6, 7, 7, 8
};

int64_t lb__sparse_gather_ref(const uint8_t *mask, const float *x, int64_t cols, float *xk)
{
    int64_t k = 0;
    for (int64_t c = 0; c < cols; c++)
        if (mask[c >> 3] >> (c & 7) & 1) xk[k++] = x[c];
    return k;
}

void lb__sparse_gather_idx(const uint16_t *idx, int64_t k, const float *x, float *xk)
{
    for (int64_t i = 0; i < k; i++) xk[i] = x[idx[i]];
}

lb__sparse_gather_fn lb__sparse_gather_for(lb_isa isa)
{
    lb_isa best = lb_isa_best();
    if (isa > best) isa = best;
    if (isa >= LB_ISA_AVX512) return lb__sparse_gather_avx512;
    if (isa >= LB_ISA_AVX2) return lb__sparse_gather_avx2;
    return lb__sparse_gather_ref;
}

lb__sparse_udot_fn lb__sparse_udot_for(lb_isa isa)
{
    lb_isa best = lb_isa_best();
    if (isa > best) isa = best;
    return isa >= LB_ISA_AVX512 ? lb__sparse_udot_avx512 : isa >= LB_ISA_AVX2 ? lb__sparse_udot_avx2 : NULL;
}

lb__sparse_udot24_fn lb__sparse_udot24_for(lb_isa isa)
{
    lb_isa best = lb_isa_best();
    return (isa > best ? best : isa) == LB_ISA_AVX2 ? lb__sparse_udot24_avx2 : NULL;
}

bool lb__sparse_qrows_ok(const lb_format *f, int p, int64_t cols)
{
    if ((p != 1 && p != 2 && p != 4 && p != 8) || cols % 8 || !f->block || f->block % 16 || cols / 8 * p % f->block)
        return false;
    if (f->fam == LB__FAM_TERNARY) return false;
    return f->fam == LB__FAM_NF4 || f->elem == LB_ELEM_INT4 || f->elem == LB_ELEM_UINT4 || f->elem == LB_ELEM_E2M1;
}

void lb__sparse_qrows_ref(const lb_format *f, float ts, const uint8_t *mask, size_t mb, const uint8_t *in, size_t rb,
                          int nr, const float *x, int64_t cols, float *xk, float *out)
{
    for (int r = 0; r < nr; r++) {
        int64_t k = lb__sparse_gather_ref(mask + (size_t)r * mb, x, cols, xk);
        out[r] = k ? lb_format_dot(f, in + (size_t)r * rb, ts, xk, k) : 0.0f;
    }
}

lb__sparse_qrows_fn lb__sparse_qrows_for(lb_isa isa)
{
    lb_isa best = lb_isa_best();
    return (isa > best ? best : isa) >= LB_ISA_AVX2 ? lb__sparse_qrows_avx2 : NULL;
}
