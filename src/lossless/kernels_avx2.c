/* kernels_avx2.c: AVX2 (and SSE4.2 crc32) versions of kernels.c. */
#include "lossless/lossless.h"
#include <immintrin.h>

uint32_t lb__crc32c_avx2(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}

void lb__bf16_merge_avx2(const uint8_t *exp, const uint8_t *sm, uint16_t *out, int64_t n)
{
    const __m256i lo7 = _mm256_set1_epi16(0x7f), sign = _mm256_set1_epi16(0x80);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i e = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(exp + i)));
        __m256i s = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(sm + i)));
        __m256i v = _mm256_or_si256(_mm256_slli_epi16(e, 7), _mm256_and_si256(s, lo7));
        v = _mm256_or_si256(v, _mm256_slli_epi16(_mm256_and_si256(s, sign), 8));
        _mm256_storeu_si256((__m256i *)(out + i), v);
    }
    lb__bf16_merge_ref(exp + i, sm + i, out + i, n - i);
}
