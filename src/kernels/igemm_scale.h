/* igemm_scale.h: the weight block scale of the SIMD integer products
 * (igemm_simd.h, sparse_int_simd.h): lb__iw_scale's arithmetic with the
 * scale's storage a compile-time constant, so the loops carry no format
 * branches. Include from files compiled for AVX2 (F16C) or better. */
#ifndef LB_IGEMM_SCALE_H
#define LB_IGEMM_SCALE_H

#include "kernels/igemm.h"
#include <immintrin.h>

enum { SK_F16, SK_BF16, SK_E8M0 };

static inline __attribute__((always_inline)) float ig_wscale(int sk, const uint8_t *blk)
{
    if (sk == SK_E8M0) return blk[0] == 0xff ? NAN : lb__pow2f((int)blk[0] - 127) * 0x1p-6f;
    uint16_t h = lb__rd16(blk);
    return sk == SK_BF16 ? lb__bits_f32((uint32_t)h << 16) : _cvtsh_ss(h);
}

#endif
