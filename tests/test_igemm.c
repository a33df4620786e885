/* test_igemm.c: the integer products of kernels/igemm.h (INT8 / INT4 group
 * 32 and MXINT8 weights x 8-bit activation codes with a float scale per 32).
 * The definition is restated independently here (lane sums of 4 products
 * in the kernel order, s = dw * da, FMA per block, fixed 8-lane tree); the
 * reference must equal it bit for bit and be close to a double-precision
 * dot of the registry's dequantized weights; every ISA path the CPU has
 * must equal the reference bit for bit, for one token (decode), two, and
 * many (prefill tiles and their tails), awkward row counts, quantized and
 * random bytes. */
#include "harness.h"
#include "kernels/igemm.h"

static lb_rng rng;
static const char *wfmts[] = {"int8_g32", "int8_g32_bf16", "int4_g32", "int4_g32_bf16", "mxint8"};

static int n_isas(void) { return (int)lb_isa_best() + 1; }

/* Weight value of element e of a block's codes. */
static int elem_value(const lb_format *f, const uint8_t *codes, int e)
{
    if (lb_format_row_bytes(f, 32) > 30) return (int8_t)codes[e];
    int c = (codes[e / 2] >> (4 * (e & 1))) & 15;
    return c >= 8 ? c - 16 : c;
}

static float block_scale(const lb_format *f, const uint8_t *blk)
{
    if (!strcmp(lb_format_name(f), "mxint8")) return blk[0] == 0xff ? NAN : ldexpf(1.0f, blk[0] - 127) / 64.0f;
    uint16_t h = (uint16_t)(blk[0] | blk[1] << 8);
    return strstr(lb_format_name(f), "bf16") ? lb_bf16_to_f32(h) : lb_f16_to_f32(h);
}

/* The definition: q holds the activation codes in ELEMENT order here. */
static float spec_dot(const lb_format *f, const uint8_t *row, int64_t cols, const int8_t *q, const float *d)
{
    size_t bb = lb_format_row_bytes(f, 32);
    int sb = strcmp(lb_format_name(f), "mxint8") ? 2 : 1, four = bb < 30;
    float acc[8] = {0};
    for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t *blk = row + (size_t)b * bb;
        float s = block_scale(f, blk) * d[b];
        for (int j = 0; j < 8; j++) {
            int32_t isum = 0;
            for (int p = 4 * j; p < 4 * j + 4; p++) {
                int e = four ? (p < 16 ? 2 * p : 2 * (p - 16) + 1) : p;
                isum += elem_value(f, blk + sb, e) * q[b * 32 + e];
            }
            acc[j] = fmaf((float)isum, s, acc[j]);
        }
    }
    float a4[4], a2[2];
    for (int j = 0; j < 4; j++) a4[j] = acc[j] + acc[j + 4];
    for (int j = 0; j < 2; j++) a2[j] = a4[j] + a4[j + 2];
    return a2[0] + a2[1];
}

static bool same(float a, float b) { return (isnan(a) && isnan(b)) || !memcmp(&a, &b, 4); }

/* Weights: quantized from random floats, or random code bytes with random
 * (finite, sometimes zero or negative) scales. */
static uint8_t *make_weights(const lb_format *f, int64_t rows, int64_t cols, bool raw)
{
    size_t rb = lb_format_row_bytes(f, cols);
    uint8_t *w = malloc(rb * (size_t)rows);
    if (!raw) {
        float *x = malloc(sizeof(float) * (size_t)(rows * cols));
        for (int64_t i = 0; i < rows * cols; i++) x[i] = (float)lb_rng_normal(&rng) * (i % 37 == 1 ? 20.0f : 1.0f);
        lb_quant_opts o = {.scale_rule = lb_rng_u64(&rng) & 1 && strcmp(lb_format_name(f), "mxint8") ? LB_SCALE_FULL : LB_SCALE_FLOOR};
        lb_status s = lb_format_quantize(f, &o, x, rows, cols, w, NULL);
        CHECK(!s, "quantize %s: %s", lb_format_name(f), lb_errmsg());
        free(x);
        return w;
    }
    for (size_t i = 0; i < rb * (size_t)rows; i++) w[i] = (uint8_t)lb_rng_u64(&rng);
    size_t bb = lb_format_row_bytes(f, 32);
    bool mx = !strcmp(lb_format_name(f), "mxint8");
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < cols / 32; b++) {
            uint8_t *blk = w + (size_t)r * rb + (size_t)b * bb;
            if (mx) { blk[0] = (uint8_t)(100 + lb_rng_u64(&rng) % 50); if (lb_rng_u64(&rng) % 50 == 0) blk[0] = 0xff; continue; }
            float v = (float)lb_rng_normal(&rng) * 0.01f;
            uint16_t h = strstr(lb_format_name(f), "bf16") ? lb_f32_to_bf16(v) : lb_f32_to_f16(v);
            if (lb_rng_u64(&rng) % 40 == 0) h = 0;
            blk[0] = (uint8_t)h;
            blk[1] = (uint8_t)(h >> 8);
        }
    return w;
}

static void check_shape(const lb_format *f, int64_t rows, int64_t cols, int64_t nt, bool raw)
{
    lb__iw iw;
    REQUIRE(lb__iw_init(f, &iw), "%s does not pair", lb_format_name(f));
    size_t rb = lb_format_row_bytes(f, cols);
    uint8_t *w = make_weights(f, rows, cols, raw);
    int64_t nb = cols / 32, qs = cols + 32, ds = nb + 1, ys = rows + 3;
    int8_t *qe = malloc((size_t)(nt * qs)), *qk = malloc((size_t)(nt * qs));
    float *d = malloc(sizeof(float) * (size_t)(nt * ds));
    for (int64_t t = 0; t < nt; t++) {
        for (int64_t c = 0; c < cols; c++) qe[t * qs + c] = (int8_t)((int)(lb_rng_u64(&rng) % 255) - 127);
        if (t % 3 == 1) for (int64_t c = 0; c < cols; c++) qe[t * qs + c] = (int8_t)(qe[t * qs + c] % 8);  /* INT4 range */
        for (int64_t b = 0; b < nb; b++) {
            d[t * ds + b] = (float)lb_rng_uniform(&rng) * 0.05f;
            lb__iact_order(iw.bits, qe + t * qs + b * 32, qk + t * qs + b * 32);
        }
    }
    float *want = calloc((size_t)(nt * ys), sizeof(float)), *got = calloc((size_t)(nt * ys), sizeof(float));
    float *wf = malloc(sizeof(float) * (size_t)cols);
    int bad = 0;
    double maxrel = 0;
    for (int64_t r = 0; r < rows; r++) {
        lb_format_dequantize(f, w + (size_t)r * rb, 1.0f, 1, cols, wf);
        for (int64_t t = 0; t < nt; t++) {
            float sp = spec_dot(f, w + (size_t)r * rb, cols, qe + t * qs, d + t * ds);
            want[t * ys + r] = sp;
            double e = 0, mag = 0;
            for (int64_t c = 0; c < cols; c++) {
                double v = (double)wf[c] * qe[t * qs + c] * d[t * ds + c / 32];
                e += v;
                mag += fabs(v);
            }
            if (!isnan(sp) && mag > 0 && fabs(e - sp) / mag > maxrel) maxrel = fabs(e - sp) / mag;
        }
    }
    CHECK(maxrel < 1e-5, "%s: definition far from a double dot: rel %g", lb_format_name(f), maxrel);
    lb__iact a = {.q = qk, .d = d, .qs = qs, .ds = ds};
    lb__igemm_ref(&iw, w, rb, 0, rows, cols, &a, nt, got, ys);
    for (int64_t i = 0; i < nt * ys; i++) bad += !same(got[i], want[i]);
    CHECK(!bad, "ref %s rows %lld cols %lld nt %lld raw %d: %d differ from the definition", lb_format_name(f),
          (long long)rows, (long long)cols, (long long)nt, raw, bad);
    for (int isa = 1; isa < n_isas(); isa++) {
        memset(got, 0, sizeof(float) * (size_t)(nt * ys));
        lb__igemm_fn fn = lb__igemm_for((lb_isa)isa);
        int64_t mid = rows / 3;   /* two calls over split row ranges, as two threads do */
        fn(&iw, w, rb, 0, mid, cols, &a, nt, got, ys);
        fn(&iw, w, rb, mid, rows, cols, &a, nt, got, ys);
        bad = 0;
        for (int64_t i = 0; i < nt * ys; i++) bad += !same(got[i], want[i]);
        CHECK(!bad, "%s %s rows %lld cols %lld nt %lld raw %d: %d differ", lb_isa_name((lb_isa)isa), lb_format_name(f),
              (long long)rows, (long long)cols, (long long)nt, raw, bad);
    }
    free(w); free(qe); free(qk); free(d); free(want); free(got); free(wf);
}

static void test_shapes(void)
{
    static const int64_t rows[] = {1, 2, 3, 5, 7, 13, 37};
    static const int64_t cols[] = {32, 64, 96, 160};
    static const int64_t nts[] = {1, 2, 3, 4, 5, 6, 7, 9, 67};
    for (size_t fi = 0; fi < sizeof wfmts / sizeof *wfmts; fi++)
        for (int raw = 0; raw < 2; raw++)
            for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
                for (size_t j = 0; j < sizeof cols / sizeof *cols; j++)
                    for (size_t k = 0; k < sizeof nts / sizeof *nts; k++)
                        if (rows[i] * cols[j] * nts[k] < 60000)
                            check_shape(lb_format_find(wfmts[fi]), rows[i], cols[j], nts[k], raw);
    /* long rows: the SIMD prefill decodes fewer rows per strip (3 here, then 2) */
    for (size_t fi = 0; fi < sizeof wfmts / sizeof *wfmts; fi++) check_shape(lb_format_find(wfmts[fi]), 5, 22400, 3, false);
}

/* Formats that must not pair: other blocks, asymmetric, float elements. */
static void test_pairing(void)
{
    static const char *no[] = {"int8_g64", "int4_g128", "int8_g32_asym", "int4_g32_asym", "mxfp4", "nvfp4",
                               "mxfp8_e4m3", "int3_g32", "int8_ch", "nf4"};
    lb__iw iw;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        CHECK(!lb__iw_init(lb_format_find(no[i]), &iw), "%s pairs", no[i]);
    for (size_t i = 0; i < sizeof wfmts / sizeof *wfmts; i++)
        CHECK(lb__iw_init(lb_format_find(wfmts[i]), &iw), "%s does not pair", wfmts[i]);
    CHECK(!lb__iw_init(NULL, &iw), "NULL pairs");
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    printf("isa best: %s\n", lb_isa_name(lb_isa_best()));
    RUN(test_pairing);
    RUN(test_shapes);
    return TEST_DONE();
}
