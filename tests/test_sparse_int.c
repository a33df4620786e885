/* test_sparse_int.c: the integer products of packed sparse rows
 * (kernels/sparse.h lb__sparse_igemm_*: kept values in int8_g32[_bf16],
 * int4_g32[_bf16] or mxint8 under masks whose bytes all hold p set bits, x
 * 8-bit activation codes with a scale per 32 inputs).
 *
 *   - the reference against the definition restated here by walking the
 *     mask bit by bit over the whole row (kept value j -> lane (j % 32) / 4
 *     of weight block j / 32, its input's activation block c / 32, which
 *     must be the (8 b + l) / p of the definition): the same bits; and
 *     against a double-precision dot of the dequantized kept values with the
 *     dequantized activation codes, within the bound of its float steps;
 *   - with every scale 1 the float steps are exact: the reference equals
 *     the exact integer dot (the int32 lane sums, checked exactly);
 *   - every ISA path the CPU has, bit-identical with the reference: p = 1,
 *     2, 4, 8, rows 1-37, several widths, random masks and codes (INT4's -8,
 *     INT8's -128), 1-3 tokens (decode tiles), 7 (prefill tiles + tail) and
 *     67 (two chunks of 64 tokens);
 *   - through lb__linear with an activation format (the weights module's
 *     dispatch, codes in column order): equal to the reference fed with
 *     lb__act_codes, every ISA, 1 and 2 threads, 1-3 tokens; a dense int4
 *     weight in the same call (codes in nibble order) keeps its own result;
 *   - a 2:4 + int4_g32 tinystories-656k with --act int8: every linear takes
 *     the integer product, logits identical at 1 and 2 threads and close to
 *     the FP32-activation logits. */
#include "harness.h"
#include "kernels/sparse.h"
#include "weights/weights.h"
#include "model/loader.h"
#include "model/model.h"
#include "quant/quant.h"

static lb_rng rng;
static const char *wfmts[] = {"int8_g32", "int8_g32_bf16", "int4_g32", "int4_g32_bf16", "mxint8"};

static uint8_t rand_byte(int p)
{
    uint8_t b = 0;
    for (int n = 0; n < p;) {
        int i = (int)(lb_rng_u64(&rng) % 8);
        if (!(b >> i & 1)) { b |= (uint8_t)(1u << i); n++; }
    }
    return b;
}

static bool is_mx(const lb_format *f) { return !strcmp(lb_format_name(f), "mxint8"); }
static int fbits(const lb_format *f) { return lb_format_row_bytes(f, 32) < 30 ? 4 : 8; }

/* Value of element e of a block's codes (written from the format's layout). */
static int elem_value(const lb_format *f, const uint8_t *codes, int e)
{
    if (fbits(f) == 8) return (int8_t)codes[e];
    int c = (codes[e / 2] >> (4 * (e & 1))) & 15;
    return c >= 8 ? c - 16 : c;
}

static float block_scale(const lb_format *f, const uint8_t *blk)
{
    if (is_mx(f)) return blk[0] == 0xff ? NAN : ldexpf(1.0f, blk[0] - 127) / 64.0f;
    uint16_t h = (uint16_t)(blk[0] | blk[1] << 8);
    return strstr(lb_format_name(f), "bf16") ? lb_bf16_to_f32(h) : lb_f16_to_f32(h);
}

/* rows x k packed kept values: quantized from random floats, then half the
 * code bytes random (every code); unit: every scale exactly 1. */
static uint8_t *make_packed(const lb_format *f, int64_t rows, int64_t k, bool unit)
{
    size_t rb = lb_format_row_bytes(f, k), bb = lb_format_row_bytes(f, 32);
    int sb = is_mx(f) ? 1 : 2;
    uint8_t *w = malloc(rb * (size_t)rows);
    float *v = malloc(sizeof(float) * (size_t)(rows * k));
    for (int64_t i = 0; i < rows * k; i++) v[i] = (float)lb_rng_normal(&rng) * (i % 13 == 2 ? 8.0f : 1.0f);
    LB_ASSERT(!lb_format_quantize(f, NULL, v, rows, k, w, NULL));
    free(v);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < k / 32; b++) {
            uint8_t *blk = w + (size_t)r * rb + (size_t)b * bb;
            for (size_t i = (size_t)sb; i < bb; i++)
                if (lb_rng_u64(&rng) & 1) blk[i] = (uint8_t)lb_rng_u64(&rng);
            if (!unit) continue;
            if (is_mx(f)) blk[0] = 127 + 6;
            else if (strstr(lb_format_name(f), "bf16")) { blk[0] = 0x80; blk[1] = 0x3f; }
            else { blk[0] = 0x00; blk[1] = 0x3c; }
        }
    return w;
}

typedef struct acts { int8_t *q; float *d; } acts;

/* nt rows of cols codes in [-127, 127] (column order) and their scales. */
static acts make_acts(int64_t nt, int64_t cols, bool unit)
{
    acts a = {malloc((size_t)(nt * cols)), malloc(sizeof(float) * (size_t)(nt * cols / 32))};
    for (int64_t i = 0; i < nt * cols; i++) a.q[i] = (int8_t)((int)(lb_rng_u64(&rng) % 255) - 127);
    for (int64_t i = 0; i < nt * cols / 32; i++)
        a.d[i] = unit ? 1.0f : lb_rng_u64(&rng) % 17 == 0 ? 0.0f : (float)(0.001 + 0.02 * lb_rng_uniform(&rng));
    return a;
}

/* The definition, restated by walking the row's mask bit by bit; *dd the
 * double dot of the dequantized values and *mag its sum of |products|. */
static float spec_dot(const lb_format *f, int p, const uint8_t *mask, const uint8_t *row, int64_t cols, const int8_t *q,
                      const float *d, double *dd, double *mag, bool *lanes_ok)
{
    size_t bb = lb_format_row_bytes(f, 32);
    int sb = is_mx(f) ? 1 : 2;
    int64_t k = cols / 8 * p, nb = k / 32;
    int32_t *isum = calloc((size_t)nb * 8, sizeof(int32_t));
    int64_t *ablk = malloc(sizeof(int64_t) * (size_t)nb * 8);
    for (int64_t i = 0; i < nb * 8; i++) ablk[i] = -1;
    int64_t j = 0;
    *dd = *mag = 0;
    for (int64_t c = 0; c < cols; c++) {
        if (!(mask[c / 8] >> (c % 8) & 1)) continue;
        const uint8_t *blk = row + (size_t)(j / 32) * bb;
        int wv = elem_value(f, blk + sb, (int)(j % 32));
        int64_t lane = j / 4;   /* block j / 32, lane (j % 32) / 4 */
        isum[lane] += wv * q[c];
        if (ablk[lane] < 0) ablk[lane] = c / 32;
        if (ablk[lane] != c / 32) *lanes_ok = false;
        double t = (double)wv * block_scale(f, blk) * (double)q[c] * d[c / 32];
        *dd += t;
        *mag += fabs(t);
        j++;
    }
    if (j != k) *lanes_ok = false;
    float acc[8] = {0};
    for (int64_t b = 0; b < nb; b++)
        for (int l = 0; l < 8; l++) {
            if (ablk[b * 8 + l] != (8 * b + l) / p) *lanes_ok = false;
            float s = block_scale(f, row + (size_t)b * bb) * d[ablk[b * 8 + l]];
            acc[l] = fmaf((float)isum[b * 8 + l], s, acc[l]);
        }
    free(isum);
    free(ablk);
    float a4[4], a2[2];
    for (int i = 0; i < 4; i++) a4[i] = acc[i] + acc[i + 4];
    for (int i = 0; i < 2; i++) a2[i] = a4[i] + a4[i + 2];
    return a2[0] + a2[1];
}

static bool same(float a, float b) { return (isnan(a) && isnan(b)) || !memcmp(&a, &b, 4); }

static void check_case(const lb_format *f, int p, int64_t rows, int64_t cols, bool unit, int64_t NT)
{
    int64_t k = cols / 8 * p, mb = cols / 8;
    size_t rb = lb_format_row_bytes(f, k);
    uint8_t *mask = malloc((size_t)(rows * mb));
    for (int64_t i = 0; i < rows * mb; i++) mask[i] = rand_byte(p);
    uint8_t *w = make_packed(f, rows, k, unit);
    acts a = make_acts(NT, cols, unit);
    lb__iw iw;
    REQUIRE(lb__iw_init(f, &iw) && lb__sparse_igemm_ok(&iw, p, cols), "%s p %d cols %lld refused", lb_format_name(f), p,
            (long long)cols);
    lb__iact ia = {.q = a.q, .d = a.d, .qs = cols, .ds = cols / 32};
    float *want = malloc(sizeof(float) * (size_t)(NT * rows)), *got = malloc(sizeof(float) * (size_t)(NT * rows));
    lb__sparse_igemm_ref(&iw, p, mask, (size_t)mb, w, rb, 0, rows, cols, &ia, NT, want, rows);
    char what[128];
    snprintf(what, sizeof what, "%s p %d [%lld x %lld]%s", lb_format_name(f), p, (long long)rows, (long long)cols,
             unit ? " unit scales" : "");
    int bad = 0, far = 0;
    bool lanes_ok = true;
    for (int64_t t = 0; t < NT; t++)
        for (int64_t r = 0; r < rows; r++) {
            double dd, mag;
            float s = spec_dot(f, p, mask + r * mb, w + (size_t)r * rb, cols, a.q + t * cols, a.d + t * cols / 32, &dd,
                               &mag, &lanes_ok);
            float y = want[t * rows + r];
            bad += !same(s, y);
            /* float steps: s = dw * da, one FMA per block and lane, 3 tree adds: gamma(nb + 4) of sum |terms| */
            double u = 0x1p-24, n = (double)(k / 32 + 4), bound = n * u / (1 - n * u) * mag * 1.0001 + 1e-37;
            if (isfinite(dd)) far += !(fabs((double)y - dd) <= bound);
            if (unit) far += (double)y != dd;   /* exact: every int32 lane sum and every float step */
        }
    CHECK(lanes_ok, "%s: a lane's 4 kept values straddle activation blocks", what);
    CHECK(!bad, "%s: %d results differ from the restated definition", what, bad);
    CHECK(!far, "%s: %d results outside the double-precision bound", what, far);
    for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++)
        for (int64_t nt = 1; nt <= NT; nt = nt < 3 ? nt + 1 : nt < 7 ? 7 : NT > nt ? NT : nt + 1) {
            lb__sparse_igemm_fn fn = lb__sparse_igemm_for((lb_isa)isa);
            for (int64_t i = 0; i < NT * rows; i++) got[i] = NAN;
            int64_t r0 = rows > 2 ? 1 : 0;   /* a range not starting at row 0 */
            fn(&iw, p, mask, (size_t)mb, w, rb, r0, rows, cols, &ia, nt, got, rows);
            int diff = 0;
            for (int64_t t = 0; t < nt; t++)
                for (int64_t r = r0; r < rows; r++) diff += !same(got[t * rows + r], want[t * rows + r]);
            for (int64_t r = 0; r < r0; r++) diff += !isnan(got[r]);
            CHECK(!diff, "%s: %s, %lld tokens: %d results differ from the reference", what, lb_isa_name((lb_isa)isa),
                  (long long)nt, diff);
        }
    free(mask); free(w); free(a.q); free(a.d); free(want); free(got);
}

static void test_kernels(void)
{
    static const int ps[] = {1, 2, 4, 8};
    for (size_t i = 0; i < sizeof wfmts / sizeof *wfmts; i++)
        for (int j = 0; j < 4; j++) {
            const lb_format *f = lb_format_find(wfmts[i]);
            REQUIRE(f, "%s missing", wfmts[i]);
            int64_t span = 256 / ps[j];   /* inputs per weight block */
            for (int rep = 0; rep < 2; rep++) {
                int64_t rows = 1 + (int64_t)(lb_rng_u64(&rng) % 37), w = span * (1 + (int64_t)(lb_rng_u64(&rng) % 3));
                check_case(f, ps[j], rows, w, rep == 1, 7);
            }
        }
    check_case(lb_format_find("int4_g32"), 4, 37, 192, false, 67);   /* 2:4 at 37 rows: every tile and tail, 2 token chunks */
    check_case(lb_format_find("int4_g32"), 2, 13, 384, false, 7);
}

static void test_refused(void)
{
    lb__iw iw;
    REQUIRE(lb__iw_init(lb_format_find("int4_g32"), &iw), "int4_g32");
    CHECK(!lb__sparse_igemm_ok(&iw, 3, 256), "p 3");
    CHECK(!lb__sparse_igemm_ok(&iw, 0, 256), "p 0");
    CHECK(!lb__sparse_igemm_ok(&iw, 4, 100), "cols not a multiple of 8");
    CHECK(!lb__sparse_igemm_ok(&iw, 4, 72), "36 kept: not a multiple of 32");
    CHECK(!lb__sparse_igemm_ok(&iw, 1, 128), "16 kept");
    CHECK(lb__sparse_igemm_ok(&iw, 1, 256) && lb__sparse_igemm_ok(&iw, 4, 64), "taken");
    CHECK(!lb__iw_init(lb_format_find("int4_g64"), &iw) && !lb__iw_init(lb_format_find("int4_g32_asym"), &iw),
          "block 64 / asymmetric weights pair with codes");
}

/* lb_weight of packed sparse rows (mask bytes p bits each) in format f. */
static lb_weight sparse_weight(lb_wstore *st, const lb_format *f, int p, int64_t rows, int64_t cols, uint8_t **mask_out,
                               uint8_t **packed_out)
{
    int64_t mb = cols / 8, k = cols / 8 * p;
    uint8_t *mask = malloc((size_t)(rows * mb)), *keep = malloc((size_t)(rows * cols));
    for (int64_t i = 0; i < rows * mb; i++) mask[i] = rand_byte(p);
    for (int64_t i = 0; i < rows * cols; i++) keep[i] = mask[(i / cols) * mb + (i % cols) / 8] >> (i % cols % 8) & 1;
    uint8_t *packed = make_packed(f, rows, k, false);
    lb_weight w = {0};
    lb_status s = lb__weight_sparse_packed(st, keep, rows, cols, f, 1.0f, packed, 0, 0, 0, &w);
    LB_ASSERT(!s);
    free(keep);
    *mask_out = mask;
    *packed_out = packed;
    return w;
}

static void test_linear(void)
{
    static const struct { const char *wf, *af; int p; int64_t rows, cols; } cases[] = {
        {"int4_g32", "int8_g32", 4, 37, 192}, {"int4_g32_bf16", "int4_g32", 2, 9, 256}, {"int8_g32", "mxint8", 8, 5, 96},
        {"int4_g32", "int8_g32", 1, 3, 512},
    };
    lb_isa saved = lb_isa_active();
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const lb_format *f = lb_format_find(cases[ci].wf), *af = lb_format_find(cases[ci].af);
        int64_t rows = cases[ci].rows, cols = cases[ci].cols;
        lb_wstore st = {0};
        uint8_t *mask, *packed;
        lb_weight w = sparse_weight(&st, f, cases[ci].p, rows, cols, &mask, &packed);
        w.act = af;
        lb__iw iw;
        REQUIRE(lb__act_pairs(&w, &iw) && iw.f == f, "%s x %s: not paired", cases[ci].wf, cases[ci].af);
        /* a dense int4_g32 weight of the same input: codes in nibble order, its own integer product */
        lb_qmatrix qm = {0};
        float *dv = malloc(sizeof(float) * (size_t)(rows * cols)), *x = malloc(sizeof(float) * (size_t)(3 * cols));
        for (int64_t i = 0; i < rows * cols; i++) dv[i] = (float)lb_rng_normal(&rng);
        for (int64_t i = 0; i < 3 * cols; i++) x[i] = (float)lb_rng_normal(&rng) * (i % 29 == 4 ? 10.0f : 1.0f);
        REQUIRE(!lb_quantize_matrix(lb_quantizer_find("rtn"), lb_format_find("int4_g32"), &(lb_quantize_opts){0}, dv, rows,
                                    cols, &qm), "%s", lb_errmsg());
        lb_weight dw = lb__qmatrix_weight(&qm);
        dw.act = af;
        /* the reference: lb__act_codes in column order, then lb__sparse_igemm_ref */
        int8_t *q = malloc((size_t)(3 * cols));
        float *d = malloc(sizeof(float) * (size_t)(3 * cols / 32));
        uint8_t *buf = malloc(lb__act_row_bytes(cols));
        lb__act_codes(af, 8, x, 3, cols, cols, buf, q, cols, d, cols / 32);
        lb__iact ia = {.q = q, .d = d, .qs = cols, .ds = cols / 32};
        float *want = malloc(sizeof(float) * (size_t)(3 * rows)), *wantd = malloc(sizeof(float) * (size_t)(3 * rows));
        float *got = malloc(sizeof(float) * (size_t)(3 * rows)), *gotd = malloc(sizeof(float) * (size_t)(3 * rows));
        lb__sparse_igemm_ref(&iw, cases[ci].p, mask, (size_t)cols / 8, packed, w.u.sparse.row_bytes, 0, rows, cols, &ia, 3,
                             want, rows);
        for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++)
            for (int th = 1; th <= 2; th++) {
                lb_isa_set((lb_isa)isa);
                lb_pool *pool = NULL;
                lb_wspace *ws = NULL;
                const lb_weight *wl[2] = {&w, &dw};
                REQUIRE(lb_pool_create(th, &pool) == LB_OK && lb__wspace_create(wl, 2, 3, th, &ws) == LB_OK, "%s",
                        lb_errmsg());
                for (int64_t n = 1; n <= 3; n++) {
                    for (int64_t i = 0; i < n * rows; i++) got[i] = gotd[i] = NAN;
                    lb__linear(ws, pool, &dw, x, n, cols, wantd, rows);
                    lb__linear(ws, pool, &w, x, n, cols, got, rows);
                    CHECK(!memcmp(got, want, sizeof(float) * (size_t)(n * rows)), "%s x %s: lb__linear on %s, %d threads, "
                          "%lld tokens differs from the reference", cases[ci].wf, cases[ci].af, lb_isa_name((lb_isa)isa), th,
                          (long long)n);
                    float *ys[2] = {got, gotd};
                    int64_t yss[2] = {rows, rows};
                    for (int64_t i = 0; i < n * rows; i++) got[i] = NAN;
                    lb__linear_n(ws, pool, 2, wl, x, n, cols, ys, yss);
                    CHECK(!memcmp(got, want, sizeof(float) * (size_t)(n * rows)) &&
                          !memcmp(gotd, wantd, sizeof(float) * (size_t)(n * rows)),
                          "%s x %s: sparse and dense weights in one call (%s, %d threads, %lld tokens) differ from their "
                          "own products", cases[ci].wf, cases[ci].af, lb_isa_name((lb_isa)isa), th, (long long)n);
                }
                lb__wspace_free(ws);
                lb_pool_free(pool);
            }
        lb_isa_set(saved);
        lb_qmatrix_free(&qm);
        lb__wstore_free(&st);
        free(mask); free(packed); free(dv); free(x); free(q); free(d); free(buf);
        free(want); free(wantd); free(got); free(gotd);
    }
}

static void test_model(void)
{
    const char *dir = test_model_path("tinystories-656k");
    if (!test_file_exists(test_model_path("tinystories-656k/model.safetensors")))
        SKIP("tinystories-656k absent (LOWBIT_MODELS)");
    lb_model *m, *q;
    REQUIRE(!lb_model_load(dir, &m), "load: %s", lb_errmsg());
    lb_model_prune_opts o = {.p = {.criterion = "magnitude", .pattern = "2:4"}, .format = "int4_g32", .n_threads = 2};
    REQUIRE(!lb_model_prune(m, &o, &q, NULL), "prune: %s", lb_errmsg());
    lb_model_info info;
    lb_model_get_info(q, &info);
    int64_t V = info.vocab_size;
    float *c = malloc(sizeof(float) * (size_t)V), *a = malloc(sizeof(float) * (size_t)V), *b = malloc(sizeof(float) * (size_t)V);
    int32_t tok[12] = {1, 400, 62, 9, 77, 310, 5, 98, 1022, 3, 14, 15};
    REQUIRE(!test_decode_logits(q, 1, tok, 12, c), "forward: %s", lb_errmsg());
    REQUIRE(!lb_model_set_act(q, "int8", NULL), "set: %s", lb_errmsg());
    lb__wname wn[256];
    int64_t n = lb__model_names(q, wn, 256), paired = 0, linears = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!wn[i].linear) continue;
        lb__iw iw;
        linears++;
        paired += wn[i].w->rep == &lb__wrep_sparse && lb__act_pairs(wn[i].w, &iw) && iw.bits == 4;
    }
    CHECK(linears == 14 && paired == linears, "%lld of %lld linears take the sparse integer product", (long long)paired,
          (long long)linears);
    REQUIRE(!test_decode_logits(q, 1, tok, 12, a), "forward: %s", lb_errmsg());
    REQUIRE(!test_decode_logits(q, 2, tok, 12, b), "forward: %s", lb_errmsg());
    CHECK(!memcmp(a, b, sizeof(float) * (size_t)V), "1 and 2 threads give different logits");
    double md = 0, range = 0;
    for (int64_t i = 0; i < V; i++) {
        md = fmax(md, fabs((double)a[i] - c[i]));
        range = fmax(range, fabs((double)c[i]));
    }
    CHECK(md > 0 && md < 0.05 * range, "int8 vs FP32 activations: max logit diff %g (largest |logit| %g)", md, range);
    free(a); free(b); free(c);
    lb_model_free(q);
    lb_model_free(m);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_kernels);
    RUN(test_refused);
    RUN(test_linear);
    RUN(test_model);
    return TEST_DONE();
}
