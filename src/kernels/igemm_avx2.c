/* igemm_avx2.c: the integer products of igemm.h with AVX2: 4 products per
 * 32-bit lane by vpmaddubsw (pairs into int16; |w| * a <= 128 * 127, so a
 * pair never saturates) then vpmaddwd with ones (pairs into int32). */
#define IG_NAME lb__igemm_avx2
#define IG_DOT32(wu, s) _mm256_madd_epi16(_mm256_maddubs_epi16((wu), (s)), _mm256_set1_epi16(1))
#include "kernels/igemm_simd.h"
