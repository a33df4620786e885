/* igemm_ref.c: the reference integer product (the definition in igemm.h),
 * the choice of the ISA path, and the activation kernel order. */
#include "kernels/igemm.h"

bool lb__iw_init(const lb_format *f, lb__iw *w)
{
    *w = (lb__iw){0};
    if (!f || lb_format_block(f) != LB_IG_BLOCK || f->asym) return false;
    bool mx = f->fam == LB__FAM_MX && f->elem == LB_ELEM_INT8;
    bool in = f->fam == LB__FAM_INT && (f->elem == LB_ELEM_INT8 || f->elem == LB_ELEM_INT4);
    if (!mx && !in) return false;
    *w = (lb__iw){.f = f, .bits = lb_elem_bits(f->elem), .sb = lb__scale_bytes(f), .bb = lb__block_bytes(f, LB_IG_BLOCK),
                  .mx = mx};
    return true;
}

void lb__iact_order(int bits, const int8_t *in, int8_t *out)
{
    if (bits == 8) { memcpy(out, in, LB_IG_BLOCK); return; }
    for (int p = 0; p < 16; p++) {
        out[p] = in[2 * p];
        out[16 + p] = in[2 * p + 1];
    }
}

/* Weight value at kernel position p of a block's codes. */
static inline int wval(const lb__iw *w, const uint8_t *codes, int p)
{
    if (w->bits == 8) return (int8_t)codes[p];
    int c = p < 16 ? codes[p] & 15 : codes[p - 16] >> 4;
    return (c ^ 8) - 8;
}

static float row_dot(const lb__iw *w, const uint8_t *row, int64_t nb, const int8_t *aq, const float *ad)
{
    float acc[8] = {0};
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + (size_t)b * w->bb;
        float s = lb__iw_scale(w, blk) * ad[b];
        const int8_t *a = aq + b * LB_IG_BLOCK;
        for (int j = 0; j < 8; j++) {
            int32_t isum = 0;
            for (int p = 4 * j; p < 4 * j + 4; p++) isum += wval(w, blk + w->sb, p) * a[p];
            acc[j] = fmaf((float)isum, s, acc[j]);
        }
    }
    for (int j = 0; j < 4; j++) acc[j] += acc[j + 4];
    for (int j = 0; j < 2; j++) acc[j] += acc[j + 2];
    return acc[0] + acc[1];
}

void lb__igemm_ref(const lb__iw *w, const uint8_t *data, size_t rb, int64_t r0, int64_t r1, int64_t cols,
                   const lb__iact *a, int64_t nt, float *y, int64_t ys)
{
    int64_t nb = cols / LB_IG_BLOCK;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < nt; t++)
            y[t * ys + r] = row_dot(w, data + (size_t)r * rb, nb, a->q + t * a->qs, a->d + t * a->ds);
}

lb__igemm_fn lb__igemm_for(lb_isa isa)
{
    if (isa >= LB_ISA_AVX512 && lb__cpu_has_avx512()) return lb__igemm_avx512;
    if (isa >= LB_ISA_AVX2 && lb__cpu_has_avx2()) return lb__igemm_avx2;
    return lb__igemm_ref;
}

lb__igemm_fn lb__igemm(void) { return lb__igemm_for(lb_isa_active()); }
