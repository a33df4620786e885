/* linalg_avx2.c: lb__gemm_sub's kernel built with AVX2 (linalg_gemm.h);
 * bit-identical to the baseline build (no fused multiply-add). */
#define LB__GEMM_NAME lb__gemm_sub_avx2
#define LB__GEMM_WIDE 1        /* 4 x 8 tiles: 16 ymm registers */
#include "core/linalg_gemm.h"
