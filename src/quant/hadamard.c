/* hadamard.c: the rotation step of the hadamard+* methods.
 *
 * R = blockdiag(T_b) D acts on the input space of a linear layer (T_b the
 * orthonormal Hadamard of order b from src/transforms, D = diag(signs) with
 * random +-1 from the seed). Offline W' = W R^T is quantized; online the
 * activation is rotated, x' = R x, so W' x' = W R^T R x = W x. b is the
 * largest supported order that divides cols and is <= the asked block
 * (lb_hadamard_plan_for), so odd sizes like 172 = 4 * 43 still rotate, with
 * a smaller block. */
#include "quant/quant.h"

lb_status lb__quant_rotate(const lb_quantize_opts *o, float *w, int64_t rows, int64_t cols, lb_qmatrix *out)
{
    lb_hadamard_plan p;
    lb_status s = lb_hadamard_plan_for(cols, o->hadamard_block, &p);
    if (s) return lb__err_prefix(s, "Hadamard rotation of %lld columns: ", (long long)cols);
    int8_t *signs = lb__alloc((size_t)cols);
    if (!signs) return LB_ERR_NOMEM;
    s = lb_hadamard_signs(o->seed, cols, signs);
    if (!s) s = lb_hadamard_rows(w, rows, cols, p.block, signs, 0);
    if (s) { LB_FREE(signs); return s; }
    out->hadamard_block = p.block;
    out->hadamard_seed = o->seed;
    out->hadamard_signs = signs;
    return LB_OK;
}
