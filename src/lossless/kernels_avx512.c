/* kernels_avx512.c: AVX-512 version of the BF16 byte merge. */
#include "lossless/lossless.h"
#include <immintrin.h>

void lb__bf16_merge_avx512(const uint8_t *exp, const uint8_t *sm, uint16_t *out, int64_t n)
{
    const __m512i lo7 = _mm512_set1_epi16(0x7f), sign = _mm512_set1_epi16(0x80);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i e = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(exp + i)));
        __m512i s = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(sm + i)));
        __m512i v = _mm512_or_si512(_mm512_slli_epi16(e, 7), _mm512_and_si512(s, lo7));
        v = _mm512_or_si512(v, _mm512_slli_epi16(_mm512_and_si512(s, sign), 8));
        _mm512_storeu_si512((void *)(out + i), v);
    }
    lb__bf16_merge_ref(exp + i, sm + i, out + i, n - i);
}
