/* dequant.c: reference page-decoding kernels of the storage policies (the
 * specification of codec.h) and the choice of the ISA path. */
#include "kv/codec.h"

void lb__kv_dq_ref(const uint8_t *packed, int bits, int64_t n, const float *s, const float *m, int gsh, float *y)
{
    unsigned mask = (1u << bits) - 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t bit = i * bits;
        unsigned w = packed[bit >> 3] | (unsigned)((bit >> 3) + 1 < (n * bits + 7) / 8 ? packed[(bit >> 3) + 1] : 0) << 8;
        float code = (float)((w >> (bit & 7)) & mask);
        float t = code * s[i >> gsh];
        y[i] = t + m[i >> gsh];
    }
}

void lb__kv_f16_ref(const uint16_t *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++) y[i] = lb_f16_to_f32(x[i]);
}

void lb__kv_bf16_ref(const uint16_t *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++) y[i] = lb_bf16_to_f32(x[i]);
}

void lb__kv_acc_ref(const float *w, const float *v, int64_t n, int64_t hd, float *o)
{
    for (int64_t p = 0; p < n; p++)
        for (int64_t i = 0; i < hd; i++) {
            float t = w[p] * v[p * hd + i];
            o[i] = o[i] + t;
        }
}

static const lb__kv_kernels k_ref = {lb__kv_dq_ref, lb__kv_f16_ref, lb__kv_bf16_ref, lb__kv_acc_ref};
static const lb__kv_kernels k_avx2 = {lb__kv_dq_avx2, lb__kv_f16_avx2, lb__kv_bf16_avx2, lb__kv_acc_avx2};
static const lb__kv_kernels k_avx512 = {lb__kv_dq_avx512, lb__kv_f16_avx512, lb__kv_bf16_avx512, lb__kv_acc_avx512};

const lb__kv_kernels *lb__kv_kernels_for(lb_isa isa)
{
    if (isa == LB_ISA_AVX512 && lb__cpu_has_avx512()) return &k_avx512;
    if (isa >= LB_ISA_AVX2 && lb__cpu_has_avx2()) return &k_avx2;
    return &k_ref;
}

const lb__kv_kernels *lb__kv_kernels_active(void) { return lb__kv_kernels_for(lb_isa_active()); }

lb_status lb__kv_page_param(const lb__kv_stage *st, const char *opt, int64_t *P)
{
    *P = (int64_t)lb__kv_get(st, "page");
    if (!lb__is_pow2(*P))
        return lb__err(LB_ERR_ARG, "%s: %s page=%lld is not a power of two", opt, st->pol->name, (long long)*P);
    return LB_OK;
}

lb_status lb__kv_check_page(const lb__kv_stage *st, const lb__kv_spec *spec, const lb__kv_shape *sh, const char *opt)
{
    int64_t P;
    return lb__kv_page_param(st, opt, &P);
}

int lb__kv_rot_code(const char *r) { return !strcmp(r, "k") ? 1 : !strcmp(r, "v") ? 2 : !strcmp(r, "kv") ? 3 : 0; }
