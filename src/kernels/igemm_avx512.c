/* igemm_avx512.c: the integer products of igemm.h with AVX512-VNNI: one
 * vpdpbusd (256-bit, AVX512VL) gives the 4 products of each 32-bit lane,
 * exactly the sums the AVX2 pair of instructions and the reference form. */
#define IG_NAME lb__igemm_avx512
#define IG_DOT32(wu, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (wu), (s))
#include "kernels/igemm_simd.h"
