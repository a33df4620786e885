/* bf16dot_ref.c: the reference "bf16 x bf16" product (the definition in
 * bf16dot.h, written plainly: denormal inputs and outputs handled by bit
 * tests, not by MXCSR), the activation conversion, and the choice of the
 * ISA path. */
#include "kernels/bf16dot.h"
#include <math.h>

static inline float in_f32(uint16_t h) { return lb_bf16_to_f32(lb__bf16_daz(h)); }

static inline float ftz(float s)
{
    uint32_t u = lb__f32_bits(s);
    return (u & 0x7f800000u) ? s : lb__bits_f32(u & 0x80000000u);
}

/* Element k of a row of n, zero past the end (the padded step). */
static inline uint16_t at(const uint16_t *v, int64_t k, int64_t n) { return k < n ? v[k] : 0; }

static float row_dot(const uint16_t *w, const uint16_t *x, int64_t n)
{
    float s[LB_DOT_LANES] = {0};
    for (int64_t i = 0; i < n; i += LB_BD_STEP)
        for (int j = 0; j < LB_DOT_LANES; j++) {
            int64_t k = i + 2 * j;
            s[j] = ftz(fmaf(in_f32(at(w, k + 1, n)), in_f32(at(x, k + 1, n)), s[j]));
            s[j] = ftz(fmaf(in_f32(at(w, k, n)), in_f32(at(x, k, n)), s[j]));
        }
    for (int h = LB_DOT_LANES / 2; h >= 1; h /= 2)
        for (int j = 0; j < h; j++) s[j] += s[j + h];
    return s[0];
}

void lb__bdot_ref(const lb_mat *w, int64_t r0, int64_t r1, const lb__bact *a, int64_t nt, float *y, int64_t ys)
{
    LB_ASSERT(w->dtype == LB_DTYPE_BF16);
    const uint16_t *base = w->data;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < nt; t++) y[t * ys + r] = row_dot(base + r * w->cols, a->x + t * a->xs, w->cols);
}

bool lb__bf16_act_rows(const float *x, int64_t xs, int64_t cols, int64_t t0, int64_t t1, uint16_t *out, int64_t os)
{
    bool tiny = false;
    for (int64_t t = t0; t < t1; t++)
        for (int64_t c = 0; c < cols; c++) {
            uint16_t h = lb__bf16_daz(lb_f32_to_bf16(x[t * xs + c]));
            tiny |= lb__bf16_tiny(h);
            out[t * os + c] = h;
        }
    return tiny;
}

lb__bdot_fn lb__bdot_for(lb_isa isa)
{
    if (isa >= LB_ISA_AVX512 && lb__cpu_has_avx512()) return lb__bdot_avx512;
    if (isa >= LB_ISA_AVX2 && lb__cpu_has_avx2()) return lb__bdot_avx2;
    return lb__bdot_ref;
}

lb__bdot_fn lb__bdot(void) { return lb__bdot_for(lb_isa_active()); }
