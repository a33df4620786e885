/* fwht_ref.c: the reference fast Walsh-Hadamard kernels, the specification
 * that the AVX2 and AVX-512 paths reproduce bit for bit (see hadamard.h for
 * the order of operations). Plain radix-2 loops, written for clarity. */
#include "transforms/hadamard.h"

static void ref_blocks(float *x, int64_t n, int64_t count, float scale)
{
    for (int64_t blk = 0; blk < count; blk++, x += n) {
        for (int64_t h = 1; h < n; h *= 2)
            for (int64_t i = 0; i < n; i += 2 * h)
                for (int64_t j = i; j < i + h; j++) {
                    float a = x[j], b = x[j + h];
                    x[j] = a + b;
                    x[j + h] = a - b;
                }
        if (scale != 1.0f)
            for (int64_t j = 0; j < n; j++) x[j] *= scale;
    }
}

/* Lanes are processed in tiles so that one tile's n vectors stay in cache;
 * the tiling does not change any element's arithmetic. */
static void ref_lanes(float *x, int64_t n, int64_t stride, int64_t lanes, float scale)
{
    int64_t tile = lb__max64(16, (int64_t)(256 * 1024 / 4) / n);
    for (int64_t l0 = 0; l0 < lanes; l0 += tile) {
        int64_t l1 = lb__min64(lanes, l0 + tile);
        for (int64_t h = 1; h < n; h *= 2)
            for (int64_t i = 0; i < n; i += 2 * h)
                for (int64_t j = i; j < i + h; j++) {
                    float *p = x + j * stride, *q = x + (j + h) * stride;
                    for (int64_t l = l0; l < l1; l++) {
                        float a = p[l], b = q[l];
                        p[l] = a + b;
                        q[l] = a - b;
                    }
                }
        if (scale != 1.0f)
            for (int64_t i = 0; i < n; i++)
                for (int64_t l = l0; l < l1; l++) x[i * stride + l] *= scale;
    }
}

static void ref_small(float *x, const float *H, int m, int64_t stride, int64_t lanes, float scale)
{
    float col[LB__HAD_MAX_M], out[LB__HAD_MAX_M];
    LB_ASSERT(m <= LB__HAD_MAX_M);
    for (int64_t l = 0; l < lanes; l++) {
        for (int c = 0; c < m; c++) col[c] = x[c * stride + l];
        for (int a = 0; a < m; a++) {
            const float *h = H + (int64_t)a * m;
            float acc = h[0] < 0 ? -col[0] : col[0];
            for (int c = 1; c < m; c++) acc = h[c] < 0 ? acc - col[c] : acc + col[c];
            out[a] = scale != 1.0f ? acc * scale : acc;
        }
        for (int a = 0; a < m; a++) x[a * stride + l] = out[a];
    }
}

const lb__fwht_kernels lb__fwht_ref = {ref_blocks, ref_lanes, ref_small};
