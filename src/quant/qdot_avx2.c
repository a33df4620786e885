/* qdot_avx2.c: AVX2 multi-row decode kernels (placeholder until written). */
#include "quant/quant.h"

bool lb__qdot_avx2(const lb_format *f, lb__qkern *k)
{
    (void)f;
    *k = (lb__qkern){0};
    return false;
}
