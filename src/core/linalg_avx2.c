/* linalg_avx2.c: lb__gemm_sub's kernel built with AVX2 (linalg_gemm.h);
 * bit-identical to the baseline build (no fused multiply-add). */
#define LB__GEMM_NAME lb__gemm_sub_avx2
#include "core/linalg_gemm.h"
