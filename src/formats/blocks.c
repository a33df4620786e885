/* blocks.c: the reference block codecs, "the" definition of every block
 * format (SIMD kernels must match them bit for bit).
 *
 * Decoded element = val(code) * d, where
 *   MX      d = 2^(scale-127) (E8M0; 0xFF = NaN), val = element value
 *           (MXINT8: code/64, two's complement, -128 never produced)
 *   NV      d = ue4m3(scale) / tensor_scale, val = E2M1 value or INT4 in [-7, 7]
 *   INT     d = FP16/BF16 scale, val = signed code, or code - zero (asym);
 *           symmetric codes are [-(2^(k-1)-1), 2^(k-1)-1] with d = amax/(2^(k-1)-1)
 *           (floor rule), or the full [-2^(k-1), 2^(k-1)-1] with
 *           d = x_m/-2^(k-1), x_m the block's signed extreme (full rule)
 *   NF4     d = FP16/BF16 absmax, val = NF4 table entry
 *   ternary d = FP16/BF16 absmean of the row, val in {-1, 0, 1}
 * Quantization multiplies x by a per-block float inverse (2^-e for MX,
 * tensor_scale / ue4m3(scale) for NV, 1/d otherwise) and rounds the product
 * to the element grid (nearest, ties to even; NF4: nearest, ties to the
 * lower entry), saturating at the element's range. */
#include "formats/formats.h"
#include <pthread.h>

/* QLoRA NormalFloat4 table (Dettmers et al. 2023, bitsandbytes). */
const float lb__nf4_table[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

static float elem_luts[LB_ELEM_COUNT][256];
static pthread_once_t lut_once = PTHREAD_ONCE_INIT;
static void lut_init(void)
{
    for (int e = 0; e < LB_ELEM_COUNT; e++)
        for (int c = 0; c < 256; c++) elem_luts[e][c] = lb_elem_decode((lb_elem)e, (uint8_t)c);
}
const float *lb__elem_lut(lb_elem e)
{
    pthread_once(&lut_once, lut_init);
    return elem_luts[e];
}

/* ---- layout */
int lb__scale_bytes(const lb_format *f)
{
    switch (f->sd) {
    case LB__SD_E8M0: case LB__SD_UE4M3: return 1;
    default: return f->asym ? 3 : 2;
    }
}

size_t lb__block_bytes(const lb_format *f, int64_t n)
{
    return (size_t)lb__scale_bytes(f) + (size_t)((n * lb_elem_bits(f->elem) + 7) / 8);
}

static inline void put_code(uint8_t *p, int64_t i, int k, uint32_t c)
{
    int64_t bit = i * k;
    int sh = (int)(bit & 7);
    p[bit >> 3] |= (uint8_t)(c << sh);
    if (sh + k > 8) p[(bit >> 3) + 1] |= (uint8_t)(c >> (8 - sh));
}
static inline uint32_t get_code(const uint8_t *p, int64_t i, int k)
{
    int64_t bit = i * k;
    int sh = (int)(bit & 7);
    uint32_t v = p[bit >> 3] >> sh;
    if (sh + k > 8) v |= (uint32_t)p[(bit >> 3) + 1] << (8 - sh);
    return v & ((1u << k) - 1);
}

uint16_t lb__scale16_encode(lb__sdtype sd, float s)
{
    if (sd == LB__SD_BF16) {
        uint16_t h = lb_f32_to_bf16(s);
        return (h & 0x7f80) == 0x7f80 && !isnan(s) ? (uint16_t)((h & 0x8000) | 0x7f7f) : h;
    }
    uint16_t h = lb_f32_to_f16(s);
    return (h & 0x7c00) == 0x7c00 && !isnan(s) ? (uint16_t)((h & 0x8000) | 0x7bff) : h;
}

float lb__absmax_setup(const lb_format *f, float s, uint8_t *hdr)
{
    uint16_t h = lb__scale16_encode(f->sd, s);
    float sd = lb__scale16_decode(f->sd, h);
    lb__wr16(hdr, h);
    return sd > 0.0f ? 1.0f / sd : 0.0f;
}

float lb__int_sym_setup(const lb_format *f, float amax, uint8_t *hdr)
{
    return lb__absmax_setup(f, amax / lb_elem_max(f->elem), hdr);
}

float lb__int_full_setup(const lb_format *f, float xm, uint8_t *hdr)
{
    uint16_t h = lb__scale16_encode(f->sd, xm / -(lb_elem_max(f->elem) + 1.0f));
    if (!(h & 0x7fff)) h = 0;                 /* a zero scale is +0, never -0 */
    float sd = lb__scale16_decode(f->sd, h);
    lb__wr16(hdr, h);
    return sd != 0.0f ? 1.0f / sd : 0.0f;
}

float lb__int_asym_setup(const lb_format *f, float mn, float mx, uint8_t *hdr, float *zero)
{
    float qmax = lb_elem_max(f->elem);
    uint16_t h = lb__scale16_encode(f->sd, (mx - mn) / qmax);
    float sd = lb__scale16_decode(f->sd, h), inv = sd > 0.0f ? 1.0f / sd : 0.0f;
    float z = rintf(-mn * inv);
    z = z < 0.0f ? 0.0f : z > qmax ? qmax : z;
    lb__wr16(hdr, h);
    hdr[2] = (uint8_t)z;
    *zero = z;
    return inv;
}

/* ---- per-family encoders for one block with a given parameter:
 * MX: exponent offset from the rule's exponent; NV: scale-code offset;
 * INT/NF4/ternary: multiplier of the statistic the scale comes from. */
static float int_qmax(const lb_format *f) { return lb_elem_max(f->elem); }

static void mx_encode(const lb_format *f, int e, const float *x, int64_t n, uint8_t *out)
{
    int k = lb_elem_bits(f->elem);
    float inv = lb__pow2f(-e);
    out[0] = (uint8_t)(e + 127);
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * inv;
        uint8_t c;
        if (f->elem == LB_ELEM_INT8) {
            c = lb_elem_encode(LB_ELEM_INT8, v * 64.0f);
            if (c == 0x80) c = 0x81;        /* symmetric: -128 is never produced */
        } else {
            c = lb_elem_encode(f->elem, v);
        }
        put_code(out + 1, i, k, c);
    }
}


static void nv_encode(const lb_format *f, uint8_t sc, float g, const float *x, int64_t n, uint8_t *out)
{
    float inv = lb__nv_inv(sc, g, lb__elem_lut(LB_ELEM_UE4M3));
    out[0] = sc;
    for (int64_t i = 0; i < n; i++) {
        uint8_t c = lb_elem_encode(f->elem, x[i] * inv);
        if (f->elem == LB_ELEM_INT4 && c == 0x8) c = 0x9;   /* [-7, 7] */
        put_code(out + 1, i, 4, c);
    }
}

/* The first element of largest |x| (0 for an empty or all-zero block). */
static float signed_extreme(const float *x, int64_t n)
{
    uint32_t m = 0;
    float xm = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        uint32_t b = lb__f32_bits(x[i]) & 0x7fffffffu;
        if (b > m) { m = b; xm = x[i]; }
    }
    return xm;
}

static void int_encode(const lb_format *f, bool full, float mul, const float *x, int64_t n, uint8_t *out)
{
    int k = lb_elem_bits(f->elem);
    uint32_t mask = (1u << k) - 1;
    float qmax = int_qmax(f);
    if (!f->asym) {
        float inv = full ? lb__int_full_setup(f, signed_extreme(x, n) * mul, out)
                         : lb__int_sym_setup(f, lb__bits_f32(lb__amax_bits(x, n)) * mul, out);
        float qmin = full ? -qmax - 1.0f : -qmax;
        for (int64_t i = 0; i < n; i++) {
            float q = rintf(x[i] * inv);
            q = q < qmin ? qmin : q > qmax ? qmax : q;
            put_code(out + 2, i, k, (uint32_t)(int32_t)q & mask);
        }
        return;
    }
    float mn = 0.0f, mx = 0.0f, z;
    for (int64_t i = 0; i < n; i++) { mn = x[i] < mn ? x[i] : mn; mx = x[i] > mx ? x[i] : mx; }
    float inv = lb__int_asym_setup(f, mn * mul, mx * mul, out, &z);
    for (int64_t i = 0; i < n; i++) {
        float q = rintf(x[i] * inv) + z;
        q = q < 0.0f ? 0.0f : q > qmax ? qmax : q;
        put_code(out + 3, i, k, (uint32_t)q);
    }
}

static uint8_t nf4_code(float v)
{
    uint8_t c = 0;
    for (int j = 0; j < 15; j++) c += v > 0.5f * (lb__nf4_table[j] + lb__nf4_table[j + 1]);
    return c;
}

static void nf4_encode(const lb_format *f, float mul, const float *x, int64_t n, uint8_t *out)
{
    float inv = lb__absmax_setup(f, lb__bits_f32(lb__amax_bits(x, n)) * mul, out);
    for (int64_t i = 0; i < n; i++) put_code(out + 2, i, 4, nf4_code(x[i] * inv));
}

static void ternary_encode(const lb_format *f, float mul, const float *x, int64_t n, uint8_t *out)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += fabsf(x[i]);
    uint16_t h = lb__scale16_encode(f->sd, sum / (float)n * mul);
    float sd = lb__scale16_decode(f->sd, h), inv = sd > 0.0f ? 1.0f / sd : 0.0f;
    lb__wr16(out, h);
    for (int64_t i = 0; i < n; i++) {
        float q = rintf(x[i] * inv);
        q = q < -1.0f ? -1.0f : q > 1.0f ? 1.0f : q;
        put_code(out + 2, i, 2, (uint32_t)(int32_t)q & 3u);
    }
}

/* Encode one finite block with rule parameter p (see above); rule is floor,
 * ceil or full (symmetric INT only). */
static void encode_param(const lb_format *f, lb_scale_rule rule, float g, int p_int, float p_mul, const float *x,
                         int64_t n, uint8_t *out)
{
    memset(out, 0, lb__block_bytes(f, n));
    uint32_t ab = lb__amax_bits(x, n);
    bool ceil_rule = rule == LB_SCALE_CEIL;
    switch (f->fam) {
    case LB__FAM_MX: {
        int e = lb__mx_exp(ab, f->emax, lb__mx_maxval(f), ceil_rule) + p_int;
        mx_encode(f, e < -127 ? -127 : e > 127 ? 127 : e, x, n, out);
        break;
    }
    case LB__FAM_NV: {
        float elmax = f->elem == LB_ELEM_E2M1 ? 6.0f : 7.0f;
        int c = lb__nv_scale_code(lb__bits_f32(ab), g, elmax, ceil_rule, lb__elem_lut(LB_ELEM_UE4M3)) + p_int;
        nv_encode(f, (uint8_t)(c < 0 ? 0 : c > 0x7e ? 0x7e : c), g, x, n, out);
        break;
    }
    case LB__FAM_INT: int_encode(f, rule == LB_SCALE_FULL, p_mul, x, n, out); break;
    case LB__FAM_NF4: nf4_encode(f, p_mul, x, n, out); break;
    case LB__FAM_TERNARY: ternary_encode(f, p_mul, x, n, out); break;
    }
}

static void decode_block(const lb_format *f, float tscale, const uint8_t *blk, int64_t i0, int64_t cnt, int64_t n,
                         float *y);

/* A block holding Inf or NaN: NaN scale, zero codes (decodes to all NaN). */
static void encode_nonfinite(const lb_format *f, int64_t n, uint8_t *out)
{
    memset(out, 0, lb__block_bytes(f, n));
    if (f->sd == LB__SD_E8M0) out[0] = 0xff;
    else if (f->sd == LB__SD_UE4M3) out[0] = 0x7f;
    else lb__wr16(out, f->sd == LB__SD_BF16 ? 0x7fc0 : 0x7e00);
}

static const int mse_int_params[] = {0, 1, -1};
static const float mse_clip_params[] = {1.0f, 0.95f, 0.9f, 0.85f, 0.8f, 0.75f, 0.7f, 0.65f};
static const float mse_ternary_params[] = {1.0f, 0.7f, 0.8f, 0.9f, 1.1f, 1.2f, 1.35f, 1.5f};
enum { MSE_NC = (int)(sizeof mse_clip_params / sizeof *mse_clip_params) };

int lb__mse_ncand(const lb_format *f)
{
    bool fl = f->fam == LB__FAM_MX || f->fam == LB__FAM_NV;
    return fl ? 3 : lb__format_full_ok(f) ? 2 * MSE_NC : MSE_NC;
}

/* Candidate j of the search: MX/NV the exponent / scale-code offsets
 * 0, +1, -1 of the floor rule; INT/NF4 the clip multipliers with the floor
 * rule, then (symmetric INT) with the full rule; ternary its multipliers. */
void lb__mse_candidate(const lb_format *f, float g, int j, const float *x, int64_t n, uint8_t *out)
{
    bool fl = f->fam == LB__FAM_MX || f->fam == LB__FAM_NV;
    int pi = fl ? mse_int_params[j] : 0;
    float pm = fl ? 1.0f : f->fam == LB__FAM_TERNARY ? mse_ternary_params[j] : mse_clip_params[j % MSE_NC];
    encode_param(f, j < MSE_NC ? LB_SCALE_FLOOR : LB_SCALE_FULL, g, pi, pm, x, n, out);
}

/* Least (importance-weighted when w is not NULL) squared error over the
 * family's candidates, first wins ties. Unweighted: sum (x - y)^2;
 * weighted: sum w_i (x - y)^2, both accumulated in double in element order. */
static void encode_mse(const lb_format *f, float g, const float *x, const float *w, int64_t n, uint8_t *out)
{
    size_t bb = lb__block_bytes(f, n);
    uint8_t *tmp = LB_MALLOC(bb);
    float *y = LB_MALLOC((size_t)n * sizeof *y);
    int np = lb__mse_ncand(f);
    double best = INFINITY;
    for (int j = 0; j < np && tmp && y; j++) {
        lb__mse_candidate(f, g, j, x, n, tmp);
        decode_block(f, g, tmp, 0, n, n, y);
        double err = 0;
        if (w)
            for (int64_t i = 0; i < n; i++) err += (double)w[i] * (((double)x[i] - y[i]) * ((double)x[i] - y[i]));
        else
            for (int64_t i = 0; i < n; i++) err += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        if (err < best) { best = err; memcpy(out, tmp, bb); }
    }
    if (!(best < INFINITY)) encode_param(f, LB_SCALE_FLOOR, g, 0, 1.0f, x, n, out);  /* no memory: floor rule */
    LB_FREE(tmp);
    LB_FREE(y);
}

void lb__quant_block_ref(const lb_format *f, lb_scale_rule rule, float tscale, const float *x, int64_t n,
                         uint8_t *out)
{
    if (lb__amax_bits(x, n) >= 0x7f800000u) encode_nonfinite(f, n, out);
    else if (rule == LB_SCALE_MSE) encode_mse(f, tscale, x, NULL, n, out);
    else encode_param(f, rule, tscale, 0, 1.0f, x, n, out);
}

/* A block whose weights are all zero (or not finite) has no preference:
 * the unweighted search decides it. */
static void quant_block_mse_w(const lb_format *f, float tscale, const float *x, const float *w, int64_t n,
                              uint8_t *out)
{
    double sw = 0;
    for (int64_t i = 0; i < n; i++) sw += w[i];
    if (lb__amax_bits(x, n) >= 0x7f800000u) encode_nonfinite(f, n, out);
    else encode_mse(f, tscale, x, sw > 0 && isfinite(sw) ? w : NULL, n, out);
}

/* Decode elements [i0, i0+cnt) of a block of n elements into y. */
static void decode_block(const lb_format *f, float tscale, const uint8_t *blk, int64_t i0, int64_t cnt, int64_t n,
                         float *y)
{
    (void)n;
    float z, d = lb__block_d(f, tscale, blk, &z);
    const uint8_t *codes = blk + lb__scale_bytes(f);
    const float *lut = f->fam == LB__FAM_NF4 ? lb__nf4_table : lb__elem_lut(f->elem);
    int k = lb_elem_bits(f->elem);
    float vmul = f->fam == LB__FAM_MX && f->elem == LB_ELEM_INT8 ? 0x1p-6f : 1.0f;
    for (int64_t i = 0; i < cnt; i++) {
        float v = lut[get_code(codes, i0 + i, k)] * vmul;
        y[i] = (v - z) * d;
    }
}

/* ---- reference row kernels */
static int64_t row_block(const lb_format *f, int64_t cols) { return f->block ? f->block : cols; }

static void quant_row_ref(const lb_format *f, lb_scale_rule rule, float tscale, const float *x, int64_t cols,
                          uint8_t *out)
{
    int64_t B = row_block(f, cols);
    size_t bb = lb__block_bytes(f, B);
    for (int64_t b = 0; b < cols / B; b++) lb__quant_block_ref(f, rule, tscale, x + b * B, B, out + b * bb);
}

void lb__quant_row_mse_w(const lb_format *f, float tscale, const float *x, const float *w, int64_t cols,
                         uint8_t *out)
{
    int64_t B = row_block(f, cols);
    size_t bb = lb__block_bytes(f, B);
    for (int64_t b = 0; b < cols / B; b++) quant_block_mse_w(f, tscale, x + b * B, w + b * B, B, out + b * bb);
}

static void dequant_row_ref(const lb_format *f, float tscale, const uint8_t *in, int64_t cols, float *y)
{
    int64_t B = row_block(f, cols);
    size_t bb = lb__block_bytes(f, B);
    for (int64_t b = 0; b < cols / B; b++) decode_block(f, tscale, in + b * bb, 0, B, B, y + b * B);
}

static float dot_row_ref(const lb_format *f, float tscale, const uint8_t *in, const float *x, int64_t cols)
{
    int64_t B = row_block(f, cols);
    size_t bb = lb__block_bytes(f, B);
    float acc[16] = {0}, w[64];
    for (int64_t b = 0; b < cols / B; b++) {
        for (int64_t i0 = 0; i0 < B; i0 += 64) {
            int64_t cnt = lb__min64(64, B - i0);
            decode_block(f, tscale, in + b * bb, i0, cnt, B, w);
            for (int64_t i = 0; i < cnt; i++) {
                int64_t col = b * B + i0 + i;
                acc[col & 15] = fmaf(w[i], x[col], acc[col & 15]);
            }
        }
    }
    return lb__reduce16(acc);
}

static uint32_t finite_amax_ref(const float *x, int64_t n)
{
    uint32_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t b = lb__f32_bits(x[i]) & 0x7fffffffu;
        if (b < 0x7f800000u && b > m) m = b;
    }
    return m;
}

const lb__fmt_kernels lb__ref_kernels = {quant_row_ref, dequant_row_ref, dot_row_ref, finite_amax_ref};
