/* qdot.c: choice of the fused dequantize-and-dot kernel of a block format on
 * the active ISA, and the input order the kernels want (see kernels.h). */
#include "kernels/kernels.h"

bool lb__qdot_kernel(const lb_format *f, lb__qkern *k)
{
    *k = (lb__qkern){0};
    if (lb_isa_active() >= LB_ISA_AVX512) return lb__qdot_avx512(f, k);
    if (lb_isa_active() >= LB_ISA_AVX2) return lb__qdot_avx2(f, k);
    return false;
}

void lb__qdot_perm_x(const float *x, int64_t cols, float *xp)
{
    for (int64_t c = 0; c < cols; c += 16)
        for (int m = 0; m < 8; m++) {
            xp[c + 2 * m] = x[c + m];
            xp[c + 2 * m + 1] = x[c + 8 + m];
        }
}
