/* hadamard.c: the rotation step of the hadamard+* methods (placeholder until
 * the transforms module is on main). */
#include "quant/quant.h"

lb_status lb__quant_rotate(const lb_quantize_opts *o, float *w, int64_t rows, int64_t cols, lb_qmatrix *out)
{
    return lb__err(LB_ERR_UNSUPPORTED, "Hadamard rotation needs the transforms module");
}
lb_status lb__quant_rotate_vec(float *x, int64_t n, int64_t block, const int8_t *signs)
{
    return lb__err(LB_ERR_UNSUPPORTED, "Hadamard rotation needs the transforms module");
}
lb_status lb__quant_unrotate(float *w, int64_t rows, int64_t cols, int64_t block, const int8_t *signs)
{
    return lb__err(LB_ERR_UNSUPPORTED, "Hadamard rotation needs the transforms module");
}
