/* dequant.c: reference page-decoding kernels of the storage policies (the
 * specification of codec.h) and the choice of the ISA path. */
#include "kv/codec.h"
#include <math.h>

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

/* Element i of a little-endian bits-wide code stream. */
static unsigned code_at(const uint8_t *p, int64_t i, int bits)
{
    int64_t bit = i * bits;
    unsigned w = p[bit >> 3];
    if ((bit & 7) + bits > 8) w |= (unsigned)p[(bit >> 3) + 1] << 8;
    return (w >> (bit & 7)) & ((1u << bits) - 1);
}

void lb__kv_kscore_ref(const uint8_t *codes, int bits, int64_t P, int64_t hd, const uint16_t *s16, const uint16_t *m16,
                       const float *q, int64_t nq, float *sc, int64_t scs)
{
    float qs[LB_KV_KIVI_MAX_HD];
    for (int64_t j = 0; j < nq; j++) {
        const float *qj = q + j * hd;
        float a[8] = {0};
        for (int64_t c = 0; c < hd; c++) {
            qs[c] = qj[c] * lb_f16_to_f32(s16[c]);
            a[c & 7] = fmaf(qj[c], lb_f16_to_f32(m16[c]), a[c & 7]);
        }
        float z = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
        for (int64_t t = 0; t < P; t++) {
            float acc = 0;
            for (int64_t c = 0; c < hd; c++) acc = fmaf(qs[c], (float)code_at(codes, c * P + t, bits), acc);
            sc[j * scs + t] = acc + z;
        }
    }
}

void lb__kv_vacc_ref(const uint8_t *codes, int bits, int64_t n, int64_t hd, int gsh, const uint16_t *s16,
                     const uint16_t *m16, int64_t sst, const float *w, int64_t ws, int64_t nq, float *o)
{
    int64_t ng = hd >> gsh;
    for (int64_t j = 0; j < nq; j++) {
        float *oj = o + j * hd;
        const float *wj = w + j * ws;
        for (int64_t t = 0; t < n; t++)
            for (int64_t c = 0; c < hd; c++) {
                float f = wj[t] * lb_f16_to_f32(s16[(c >> gsh) * sst + t]);
                oj[c] = fmaf(f, (float)code_at(codes, t * hd + c, bits), oj[c]);
            }
        for (int64_t g = 0; g < ng; g++) {
            float a[8] = {0};
            for (int64_t t = 0; t < n; t++) a[t & 7] = fmaf(wj[t], lb_f16_to_f32(m16[g * sst + t]), a[t & 7]);
            float z = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
            for (int64_t c = g << gsh; c < (g + 1) << gsh; c++) oj[c] = oj[c] + z;
        }
    }
}

void lb__kv_softmax_ref(float *sc, int64_t n, float inv)
{
    float mx = -INFINITY, sum = 0;
    for (int64_t p = 0; p < n; p++) {
        sc[p] = sc[p] * inv;
        if (sc[p] > mx) mx = sc[p];
    }
    for (int64_t p = 0; p < n; p++) { sc[p] = expf(sc[p] - mx); sum += sc[p]; }
    for (int64_t p = 0; p < n; p++) sc[p] = sc[p] / sum;
}

static float kv_exp(float x)
{
    static const float C[] = LB_KV_EXP_C;
    float y = x < -87.0f ? -87.0f : x, n = nearbyintf(y * LB_KV_EXP_LOG2E);
    float r = fmaf(n, -LB_KV_EXP_LN2_LO, fmaf(n, -LB_KV_EXP_LN2_HI, y)), p = C[0];
    for (int i = 1; i < 7; i++) p = fmaf(p, r, C[i]);
    int32_t ni = isnan(n) ? INT32_MIN : (int32_t)n;   /* what cvtps2dq gives a NaN */
    uint32_t e = ((uint32_t)ni + 127u) << 23;
    float two;
    memcpy(&two, &e, 4);
    return p * two;
}

void lb__kv_softmax2_ref(float *sc, int64_t n, float inv)
{
    float mx = -INFINITY, a[8] = {0};
    for (int64_t p = 0; p < n; p++) {
        sc[p] = sc[p] * inv;
        if (sc[p] > mx) mx = sc[p];
    }
    for (int64_t p = 0; p < n; p++) {
        sc[p] = kv_exp(sc[p] - mx);
        a[p & 7] = a[p & 7] + sc[p];
    }
    float sum = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
    for (int64_t p = 0; p < n; p++) sc[p] = sc[p] / sum;
}

static const lb__kv_kernels k_ref = {lb__kv_dq_ref, lb__kv_f16_ref, lb__kv_bf16_ref, lb__kv_acc_ref,
                                     lb__kv_kscore_ref, lb__kv_vacc_ref, lb__kv_softmax_ref, lb__kv_softmax2_ref};
static const lb__kv_kernels k_avx2 = {lb__kv_dq_avx2, lb__kv_f16_avx2, lb__kv_bf16_avx2, lb__kv_acc_avx2,
                                      lb__kv_kscore_avx2, lb__kv_vacc_avx2, lb__kv_softmax_avx2, lb__kv_softmax2_avx2};
static const lb__kv_kernels k_avx512 = {lb__kv_dq_avx512, lb__kv_f16_avx512, lb__kv_bf16_avx512, lb__kv_acc_avx512,
                                        lb__kv_kscore_avx512, lb__kv_vacc_avx512, lb__kv_softmax_avx2, lb__kv_softmax2_avx2};

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
