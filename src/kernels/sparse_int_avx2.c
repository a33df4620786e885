/* sparse_int_avx2.c: the integer products of packed sparse rows
 * (kernels/sparse.h) with AVX2: 4 products per 32-bit lane by vpmaddubsw
 * then vpmaddwd with ones, as igemm_avx2.c. */
#define SI_NAME lb__sparse_igemm_avx2
#define SI_DOT32(wu, s) _mm256_madd_epi16(_mm256_maddubs_epi16((wu), (s)), _mm256_set1_epi16(1))
#include "kernels/sparse_int_simd.h"
