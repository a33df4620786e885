/* test_kernels.c: matmul/matvec kernels. Each ISA path, at 1-3 threads, for
 * one token (decode) and many (prefill), must reproduce bit for bit a
 * canonical dot product written independently here (16 lane FMA partial sums,
 * zero-padded tail, pairwise tree), which itself must be close to a double
 * precision dot product. Awkward sizes throughout. */
#include "harness.h"
#include "kernels/kernels.h"

static lb_rng rng;

/* Independent statement of the canonical order (see kernels.h). */
static float canon_dot(const float *a, const float *b, int64_t n)
{
    int64_t nb = (n + 15) / 16;
    float lane[16];
    for (int j = 0; j < 16; j++) {
        float s = 0.0f;
        for (int64_t i = 0; i < nb; i++) {
            int64_t k = i * 16 + j;
            s = fmaf(k < n ? a[k] : 0.0f, k < n ? b[k] : 0.0f, s);
        }
        lane[j] = s;
    }
    for (int j = 0; j < 8; j++) lane[j] = lane[j] + lane[j + 8];
    for (int j = 0; j < 4; j++) lane[j] = lane[j] + lane[j + 4];
    for (int j = 0; j < 2; j++) lane[j] = lane[j] + lane[j + 2];
    return lane[0] + lane[1];
}

/* Random weights stored in dtype, plus their exact F32 values. */
static void *make_weights(lb_dtype dt, int64_t n, float *wf)
{
    void *w = malloc((size_t)n * lb_dtype_size(dt));
    for (int64_t i = 0; i < n; i++) {
        float v = (float)lb_rng_normal(&rng);
        if (i % 97 == 5) v *= 1e-6f;   /* F16 subnormals */
        if (i % 89 == 3) v = -0.0f;
        if (dt == LB_DTYPE_F32) { ((float *)w)[i] = v; wf[i] = v; }
        else if (dt == LB_DTYPE_F16) { uint16_t h = lb_f32_to_f16(v); ((uint16_t *)w)[i] = h; wf[i] = lb_f16_to_f32(h); }
        else { uint16_t h = lb_f32_to_bf16(v); ((uint16_t *)w)[i] = h; wf[i] = lb_bf16_to_f32(h); }
    }
    return w;
}

static int n_isas(void) { return (int)lb_isa_best() + 1; }

static void check_shape(lb_pool **pools, lb_dtype dt, int64_t rows, int64_t cols, int64_t nt)
{
    int64_t xs = cols + 3, ys = rows + 2;
    float *wf = malloc(sizeof(float) * (size_t)(rows * cols));
    void *wd = make_weights(dt, rows * cols, wf);
    float *x = malloc(sizeof(float) * (size_t)(nt * xs));
    for (int64_t i = 0; i < nt * xs; i++) x[i] = (float)lb_rng_normal(&rng);
    float *want = calloc((size_t)(nt * ys), sizeof(float)), *got = calloc((size_t)(nt * ys), sizeof(float));
    double maxrel = 0;
    for (int64_t t = 0; t < nt; t++)
        for (int64_t r = 0; r < rows; r++) {
            want[t * ys + r] = canon_dot(wf + r * cols, x + t * xs, cols);
            double d = 0, mag = 0;
            for (int64_t c = 0; c < cols; c++) {
                d += (double)wf[r * cols + c] * x[t * xs + c];
                mag += fabs((double)wf[r * cols + c] * x[t * xs + c]);
            }
            double e = fabs(d - want[t * ys + r]) / (mag + 1e-30);
            if (e > maxrel) maxrel = e;
        }
    CHECK(maxrel < 1e-5, "canonical dot far from double: rel %g (%s %lldx%lld)", maxrel, lb_dtype_name(dt),
          (long long)rows, (long long)cols);
    lb_mat w = {.data = wd, .dtype = dt, .rows = rows, .cols = cols};
    for (int isa = 0; isa < n_isas(); isa++) {
        lb_isa_set((lb_isa)isa);
        for (int th = 0; th < 3; th++) {
            memset(got, 0, sizeof(float) * (size_t)(nt * ys));
            lb__matmul(pools[th], &w, x, nt, xs, got, ys);
            int bad = 0;
            for (int64_t t = 0; t < nt; t++)
                for (int64_t r = 0; r < rows; r++) bad += memcmp(&got[t * ys + r], &want[t * ys + r], 4) != 0;
            CHECK(!bad, "%s %s rows %lld cols %lld nt %lld threads %d: %d elements differ", lb_isa_name((lb_isa)isa),
                  lb_dtype_name(dt), (long long)rows, (long long)cols, (long long)nt, th + 1, bad);
        }
        /* decode: token by token */
        for (int64_t t = 0; t < nt; t++) {
            float *y1 = calloc((size_t)rows, sizeof(float));
            lb__matmul(pools[1], &w, x + t * xs, 1, xs, y1, rows);
            CHECK(!memcmp(y1, want + t * ys, sizeof(float) * (size_t)rows), "%s %s decode differs from prefill",
                  lb_isa_name((lb_isa)isa), lb_dtype_name(dt));
            free(y1);
        }
    }
    lb_isa_set(lb_isa_best());
    free(wf); free(wd); free(x); free(want); free(got);
}

static lb_pool *pools[3];

static void test_matmul_awkward(void)
{
    static const int64_t cols[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 1023, 4096};
    static const int64_t rows[] = {1, 3, 5, 9, 17};
    lb_dtype dts[] = {LB_DTYPE_F32, LB_DTYPE_F16, LB_DTYPE_BF16};
    for (int d = 0; d < 3; d++)
        for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
            for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
                if (cols[c] >= 1023 && rows[r] > 9) continue;
                int64_t nt = 1 + (int64_t)((c + r) % 7);
                check_shape(pools, dts[d], rows[r], cols[c], nt);
            }
}

static void test_matmul_tokens(void)
{
    for (int64_t nt = 1; nt <= 13; nt++) check_shape(pools, LB_DTYPE_BF16, 37, 80, nt);
    check_shape(pools, LB_DTYPE_F32, 70, 129, 9);
}

/* The AVX-512 4-row x 6-token prefill tile (normally only for inputs >= 1280
 * wide, F32 weights) forced on at every width: rows 1..17 cover whole 4-row
 * tiles plus 1..3 leftover rows, tokens 1..13 every token remainder 0..5.
 * BF16/F16 at width 2048 keep the 8-row tile; checked beside it. */
static void test_matmul_wide_tile(void)
{
    int saved = lb__avx512_wide_cols;
    lb__avx512_wide_cols = 0;
    static const int64_t cols[] = {1, 15, 16, 17};
    for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
        for (int64_t rows = 1; rows <= 17; rows++)
            for (int64_t nt = 1; nt <= 13; nt++)
                check_shape(pools, LB_DTYPE_F32, rows, cols[c], nt);
    lb__avx512_wide_cols = saved;   /* 2048 reaches the tile at the default threshold */
    for (int64_t rows = 1; rows <= 17; rows++) check_shape(pools, LB_DTYPE_F32, rows, 2048, 1 + (rows * 5) % 13);
    for (int64_t nt = 1; nt <= 13; nt++) {
        check_shape(pools, LB_DTYPE_F32, 7, 2048, nt);
        check_shape(pools, LB_DTYPE_BF16, 9, 2048, nt);
    }
    check_shape(pools, LB_DTYPE_F16, 6, 2048, 8);
}

static void test_dot(void)
{
    for (int64_t n = 0; n < 70; n++) {
        float a[70], b[70];
        for (int64_t i = 0; i < n; i++) { a[i] = (float)lb_rng_normal(&rng); b[i] = (float)lb_rng_normal(&rng); }
        float want = canon_dot(a, b, n);
        for (int isa = 0; isa < n_isas(); isa++) {
            float got = lb__kernels_for((lb_isa)isa)->dot(a, b, n);
            CHECK(!memcmp(&got, &want, 4), "dot %s n %lld: %.9g vs %.9g", lb_isa_name((lb_isa)isa), (long long)n,
                  got, want);
        }
    }
}

/* Attention kernels: scores of np cached keys (row stride ks) must be the
 * canonical dot of each, and the weighted sum of value rows must be the
 * sequential o = o + w[p] * v (multiply, then add) from +0, bit for bit. */
static void test_attention_kernels(void)
{
    static const int64_t ns[] = {1, 7, 15, 16, 17, 33, 48, 64, 65, 100, 128, 129};
    static const int64_t nps[] = {0, 1, 5, 15, 16, 17, 31, 32, 47, 70};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof nps / sizeof *nps; b++) {
            int64_t n = ns[a], np = nps[b], ks = n + (int64_t)(a % 3) * 5;
            float *q = malloc(sizeof(float) * (size_t)n), *k = malloc(sizeof(float) * (size_t)(np * ks + 1));
            float *w = malloc(sizeof(float) * (size_t)(np + 1)), *want = malloc(sizeof(float) * (size_t)(np * ks + n + 1));
            float *got = malloc(sizeof(float) * (size_t)(np * ks + n + 1));
            for (int64_t i = 0; i < n; i++) q[i] = (float)lb_rng_normal(&rng);
            for (int64_t i = 0; i < np * ks; i++) k[i] = i % 53 == 7 ? -0.0f : (float)lb_rng_normal(&rng);
            for (int64_t p = 0; p < np; p++) w[p] = (float)lb_rng_uniform(&rng) * (p % 11 == 4 ? 0.0f : 1.0f);
            for (int isa = 0; isa < n_isas(); isa++) {
                const lb_kernels *kr = lb__kernels_for((lb_isa)isa);
                kr->dots(q, k, ks, n, np, got);
                int bad = 0;
                for (int64_t p = 0; p < np; p++) {
                    float e = canon_dot(q, k + p * ks, n);
                    bad += memcmp(&e, &got[p], 4) != 0;
                }
                CHECK(!bad, "dots %s n %lld np %lld: %d scores differ", lb_isa_name((lb_isa)isa), (long long)n,
                      (long long)np, bad);
                for (int64_t i = 0; i < n; i++) {
                    float o = 0.0f;
                    for (int64_t p = 0; p < np; p++) {
                        float prod = w[p] * k[p * ks + i];
                        o = o + prod;
                    }
                    want[i] = o;
                }
                got[n] = 12345.0f;
                kr->wsum(w, k, ks, np, n, got);
                CHECK(!memcmp(got, want, sizeof(float) * (size_t)n) && got[n] == 12345.0f,
                      "wsum %s n %lld np %lld differs", lb_isa_name((lb_isa)isa), (long long)n, (long long)np);
            }
            free(q); free(k); free(w); free(want); free(got);
        }
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    printf("isa best: %s\n", lb_isa_name(lb_isa_best()));
    for (int i = 0; i < 3; i++) lb_pool_create(i + 1, &pools[i]);
    RUN(test_dot);
    RUN(test_attention_kernels);
    RUN(test_matmul_awkward);
    RUN(test_matmul_tokens);
    RUN(test_matmul_wide_tile);
    for (int i = 0; i < 3; i++) lb_pool_free(pools[i]);
    return TEST_DONE();
}
