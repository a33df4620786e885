/* sparse_int_avx512.c: the integer products of packed sparse rows
 * (kernels/sparse.h) with AVX512-VNNI: one 256-bit vpdpbusd per block and
 * row gives the 4 products of each lane, exactly the sums of the AVX2 pair
 * and of the reference (as igemm_avx512.c). */
#define SI_NAME lb__sparse_igemm_avx512
#define SI_DOT32(wu, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (wu), (s))
#include "kernels/sparse_int_simd.h"
