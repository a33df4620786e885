/* sparse_avx512.c: the AVX-512 gather of a bitmask row: per 16 inputs,
 * vcompressps packs the kept ones (two mask bytes) and one store appends
 * them to xk (it ends before the chunk's own columns do, so nothing is
 * written past xk[cols]). The tail is the reference loop. */
#include "kernels/sparse.h"
#include <immintrin.h>

int64_t lb__sparse_gather_avx512(const uint8_t *mask, const float *x, int64_t cols, float *xk)
{
    int64_t k = 0, c = 0;
    for (; c + 16 <= cols; c += 16) {
        unsigned lo = mask[c >> 3], hi = mask[(c >> 3) + 1];
        __mmask16 m = (__mmask16)(lo | hi << 8);
        _mm512_storeu_ps(xk + k, _mm512_maskz_compress_ps(m, _mm512_loadu_ps(x + c)));
        k += lb__popcount8[lo] + lb__popcount8[hi];
    }
    for (; c < cols; c++)
        if (mask[c >> 3] >> (c & 7) & 1) xk[k++] = x[c];
    return k;
}
