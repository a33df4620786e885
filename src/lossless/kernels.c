/* kernels.c: reference C for the codec's inner loops (CRC-32C, BF16 byte
 * split/merge) and their run-time dispatch. The ISA variants live in
 * kernels_avx2.c / kernels_avx512.c and must agree bit for bit. */
#include "lossless/lossless.h"
#include <pthread.h>

static uint32_t crc_tab[8][256]; /* slicing-by-8, filled once */
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++) crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

uint32_t lb__crc32c_ref(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
              crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
              crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
    return crc;
}

uint32_t lb__crc32c_update(uint32_t state, const void *p, size_t n)
{
    if (lb_isa_active() >= LB_ISA_AVX2) return lb__crc32c_avx2(state, p, n);
    return lb__crc32c_ref(state, p, n);
}

uint32_t lb__crc32c(const void *p, size_t n) { return ~lb__crc32c_update(~0u, p, n); }

void lb__bf16_merge_ref(const uint8_t *exp, const uint8_t *sm, uint16_t *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (uint16_t)((sm[i] & 0x80) << 8 | exp[i] << 7 | (sm[i] & 0x7f));
}

void lb__bf16_split_ref(const uint16_t *x, uint8_t *exp, uint8_t *sm, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        exp[i] = (uint8_t)(x[i] >> 7);
        sm[i] = (uint8_t)((x[i] >> 8 & 0x80) | (x[i] & 0x7f));
    }
}
