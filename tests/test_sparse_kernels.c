/* test_sparse_kernels.c: the fused decode kernels of packed sparse rows
 * (prune + quantize into a 4-bit block format, masks whose bytes all hold
 * p set bits: kernels/sparse.h lb__sparse_qrows_*).
 *
 * For every 4-bit format family (INT4 sym/asym, F16/BF16 scales, groups
 * 32/64/128, MXFP4, NVFP4, NVINT4, NF4) and p = 1, 2, 4, 8, on random masks
 * and random code bytes (every code, INT4's -8 included) under real scales:
 *   - the reference (gather + lb_format_dot) against a double-precision dot
 *     of the registry's dequantized kept values with the kept inputs, found
 *     here by walking the mask bit by bit (independent of the gathers);
 *   - every ISA path the CPU has, bit-identical with the reference, at row
 *     counts that the kernels' row groups do not divide;
 *   - through lb__linear (the weights module's dispatch): 1 and 2 threads,
 *     1, 2 and 3 tokens, every ISA, bit-identical with the reference;
 *   - formats and masks the kernels do not take are refused by
 *     lb__sparse_qrows_ok (and then computed by the gather path). */
#include "harness.h"
#include "kernels/sparse.h"
#include "weights/weights.h"

static lb_rng rng;

/* A random mask byte with exactly p set bits. */
static uint8_t rand_byte(int p)
{
    uint8_t b = 0;
    for (int n = 0; n < p;) {
        int i = (int)(lb_rng_u64(&rng) % 8);
        if (!(b >> i & 1)) { b |= (uint8_t)(1u << i); n++; }
    }
    return b;
}

/* rows x cols mask (p bits per byte), rows x k packed values of f with real
 * scales and random codes; *ts the tensor scale. */
static uint8_t *make_rows(const lb_format *f, int p, int64_t rows, int64_t cols, uint8_t *mask, float *ts)
{
    int64_t k = cols / 8 * p, B = f->block;
    size_t mb = (size_t)cols / 8, rb = lb_format_row_bytes(f, k), bb = lb__block_bytes(f, B);
    for (size_t i = 0; i < (size_t)rows * mb; i++) mask[i] = rand_byte(p);
    float *v = malloc(sizeof(float) * (size_t)(rows * k));
    for (int64_t i = 0; i < rows * k; i++) v[i] = (float)lb_rng_normal(&rng) * (i % 7 == 0 ? 4.0f : 0.5f);
    uint8_t *packed = malloc(rb * (size_t)rows);
    *ts = 1.0f;
    LB_ASSERT(!lb_format_quantize(f, NULL, v, rows, k, packed, ts));
    int sb = lb__scale_bytes(f);
    for (int64_t r = 0; r < rows; r++)   /* random codes: every weight value of the element type */
        for (int64_t b = 0; b < k / B; b++)
            for (int64_t i = 0; i < B / 2; i++)
                if (lb_rng_u64(&rng) % 2) packed[(size_t)r * rb + (size_t)b * bb + (size_t)sb + (size_t)i] = (uint8_t)lb_rng_u64(&rng);
    free(v);
    return packed;
}

static void check_case(const lb_format *f, int p, int64_t rows, int64_t cols)
{
    int64_t k = cols / 8 * p;
    size_t mb = (size_t)cols / 8, rb = lb_format_row_bytes(f, k);
    uint8_t *mask = malloc((size_t)rows * mb);
    float ts, *x = malloc(sizeof(float) * (size_t)(3 * cols)), *xk = malloc(sizeof(float) * (size_t)cols);
    float *want = malloc(sizeof(float) * (size_t)(3 * rows)), *got = malloc(sizeof(float) * (size_t)(3 * rows));
    float *wk = malloc(sizeof(float) * (size_t)k);
    uint8_t *packed = make_rows(f, p, rows, cols, mask, &ts);
    for (int64_t i = 0; i < 3 * cols; i++) x[i] = i % 11 == 3 ? 0.0f : (float)lb_rng_normal(&rng);
    char what[96];
    snprintf(what, sizeof what, "%s p %d [%lld, %lld]", lb_format_name(f), p, (long long)rows, (long long)cols);
    REQUIRE(lb__sparse_qrows_ok(f, p, cols), "%s: not taken by the fused kernels", what);
    for (int t = 0; t < 3; t++) {
        lb__sparse_qrows_ref(f, ts, mask, mb, packed, rb, (int)rows, x + t * cols, cols, xk, want + t * rows);
        for (int64_t r = 0; r < rows; r++) {   /* the definition, independently */
            REQUIRE(!lb_format_dequantize(f, packed + (size_t)r * rb, ts, 1, k, wk), "%s", lb_errmsg());
            double d = 0, mag = 0;
            int64_t j = 0;
            for (int64_t c = 0; c < cols; c++)
                if (mask[(size_t)r * mb + (size_t)c / 8] >> (c % 8) & 1) {
                    d += (double)wk[j] * x[t * cols + c];
                    mag += fabs((double)wk[j] * x[t * cols + c]);
                    j++;
                }
            CHECK(j == k, "%s: row %lld keeps %lld", what, (long long)r, (long long)j);
            CHECK(fabs(want[t * rows + r] - d) <= 1e-5 * mag + 1e-30, "%s: row %lld: reference %g, double %g", what,
                  (long long)r, want[t * rows + r], d);
        }
        for (int isa = LB_ISA_AVX2; isa <= (int)lb_isa_best(); isa++) {
            lb__sparse_qrows_fn fn = lb__sparse_qrows_for((lb_isa)isa);
            REQUIRE(fn, "%s: no kernel on %s", what, lb_isa_name((lb_isa)isa));
            for (int64_t i = 0; i < rows; i++) got[i] = NAN;
            CHECK(fn(f, p, ts, mask, mb, packed, rb, (int)rows, x + t * cols, cols, got), "%s: refused", what);
            CHECK(!memcmp(got, want + t * rows, sizeof(float) * (size_t)rows), "%s: %s, token %d differs from the reference",
                  what, lb_isa_name((lb_isa)isa), t);
        }
    }
    /* the weights module's dispatch: every ISA, 1 and 2 threads, 1-3 tokens */
    uint8_t *keep = malloc((size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) keep[i] = mask[(size_t)(i / cols) * mb + (size_t)(i % cols) / 8] >> (i % cols % 8) & 1;
    lb_wstore st = {0};
    lb_weight w;
    REQUIRE(lb__weight_sparse_packed(&st, keep, rows, cols, f, ts, packed, 0, 0, 0, &w) == LB_OK, "%s: %s", what, lb_errmsg());
    CHECK(w.u.sparse.p == p, "%s: p %d", what, w.u.sparse.p);
    lb_isa saved = lb_isa_active();
    for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++)
        for (int th = 1; th <= 2; th++) {
            lb_isa_set((lb_isa)isa);
            lb_pool *pool = NULL;
            lb_wspace *ws = NULL;
            const lb_weight *wl[1] = {&w};
            REQUIRE(lb_pool_create(th, &pool) == LB_OK && lb__wspace_create(wl, 1, 3, th, &ws) == LB_OK, "%s", lb_errmsg());
            for (int64_t n = 1; n <= 3; n++) {
                for (int64_t i = 0; i < n * rows; i++) got[i] = NAN;
                lb__linear(ws, pool, &w, x, n, cols, got, rows);
                CHECK(!memcmp(got, want, sizeof(float) * (size_t)(n * rows)), "%s: lb__linear on %s, %d threads, %lld tokens",
                      what, lb_isa_name((lb_isa)isa), th, (long long)n);
            }
            lb__wspace_free(ws);
            lb_pool_free(pool);
        }
    lb_isa_set(saved);
    lb__wstore_free(&st);
    free(keep); free(mask); free(x); free(xk); free(want); free(got); free(wk); free(packed);
}

static void test_qrows(void)
{
    static const char *fmts[] = {"int4_g32", "int4_g32_bf16", "int4_g32_asym", "int4_g64", "int4_g128_asym_bf16",
                                 "mxfp4", "nvfp4", "nvint4", "nf4"};
    static const int ps[] = {1, 2, 4, 8};
    for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++)
        for (int j = 0; j < 4; j++) {
            const lb_format *f = lb_format_find(fmts[i]);
            REQUIRE(f, "%s missing", fmts[i]);
            int64_t span = 8 * f->block / ps[j];   /* inputs per block of kept values */
            int64_t rows = 1 + (int64_t)(lb_rng_u64(&rng) % 7);
            check_case(f, ps[j], rows, span * (1 + (int64_t)(lb_rng_u64(&rng) % 3)));
        }
    check_case(lb_format_find("int4_g32"), 4, 37, 192);   /* 2:4 at 37 rows: row groups and thread splits */
    check_case(lb_format_find("int4_g32"), 2, 13, 384);
}

static void test_refused(void)
{
    const lb_format *i4 = lb_format_find("int4_g32");
    CHECK(!lb__sparse_qrows_ok(i4, 3, 256), "p 3");
    CHECK(!lb__sparse_qrows_ok(i4, 4, 100), "cols not a multiple of 8");
    CHECK(!lb__sparse_qrows_ok(i4, 4, 72), "36 kept: not a multiple of the block");
    CHECK(!lb__sparse_qrows_ok(lb_format_find("int8_g32"), 4, 64), "8-bit codes");
    CHECK(!lb__sparse_qrows_ok(lb_format_find("int4_ch"), 4, 64), "per-row format");
    CHECK(!lb__sparse_qrows_ok(lb_format_find("ternary"), 4, 64), "ternary");
    CHECK(!lb__sparse_qrows_ok(lb_format_find("mxfp6_e2m3"), 4, 64), "6-bit codes");
    float out = 1.0f, x[64] = {0};
    uint8_t mask[8] = {0}, row[64] = {0};
    for (int isa = LB_ISA_AVX2; isa <= (int)lb_isa_best(); isa++)
        CHECK(!lb__sparse_qrows_for((lb_isa)isa)(lb_format_find("int8_g32"), 4, 1.0f, mask, 8, row, 34, 1, x, 64, &out) &&
              out == 1.0f, "%s: an 8-bit format computed", lb_isa_name((lb_isa)isa));
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_qrows);
    RUN(test_refused);
    return TEST_DONE();
}
