/* test_transforms.c: Hadamard transforms (src/transforms).
 *
 * Independent references: the Sylvester matrix from popcount parity, Paley
 * matrices rebuilt here from the set of squares mod q (the library uses
 * Euler's criterion), dense products in double, and a recursive double FWHT
 * for sizes too large for a dense product. Every ISA path is compared bit
 * for bit with the reference. */
#include "harness.h"
#include "transforms/hadamard.h"

/* ---- independent references */

static int sylvester(int64_t i, int64_t j) { return __builtin_popcountll((uint64_t)(i & j)) & 1 ? -1 : 1; }

/* Paley matrix of order m from prime q and kind (1: q = 3 mod 4, m = q+1;
 * 2: q = 1 mod 4, m = 2(q+1)), into H (m*m ints). */
static void paley(int q, int kind, int *H)
{
    int sq[200] = {0};
    for (int i = 1; i < q; i++) sq[i * i % q] = 1;
    int n = q + 1, m = kind == 1 ? n : 2 * n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int s;
            if (i == 0 && j == 0) s = 0;
            else if (i == 0) s = 1;
            else if (j == 0) s = kind == 1 ? -1 : 1;
            else {
                int d = ((j - i) % q + q) % q;
                s = d == 0 ? 0 : sq[d] ? 1 : -1;
            }
            if (kind == 1) { H[i * m + j] = s + (i == j); continue; }
            /* 0 -> [1 -1; -1 -1], +-1 -> +-[1 1; 1 -1] */
            int blk[4] = {1, -1, -1, -1}, one[4] = {1, 1, 1, -1};
            for (int u = 0; u < 2; u++)
                for (int v = 0; v < 2; v++)
                    H[(2 * i + u) * m + 2 * j + v] = s == 0 ? blk[2 * u + v] : s * one[2 * u + v];
        }
}

static const struct { int m, q, kind; } expected_orders[] = {
    {12, 11, 1}, {20, 19, 1}, {28, 13, 2}, {36, 17, 2}, {44, 43, 1}, {60, 59, 1},
    {68, 67, 1}, {76, 37, 2}, {84, 83, 1}, {108, 107, 1}, {124, 61, 2}, {132, 131, 1},
    {140, 139, 1}, {148, 73, 2},
};
#define N_EXPECTED ((int)(sizeof expected_orders / sizeof *expected_orders))

/* Entry (i, j) of the unnormalized H_m (x) H_p (Hm: m*m ints; NULL = m 1). */
static int kron(const int *Hm, int64_t m, int64_t p, int64_t i, int64_t j)
{
    int s = sylvester(i % p, j % p);
    return Hm ? s * Hm[(i / p) * m + j / p] : s;
}

static int *paley_for(int64_t m)
{
    for (int k = 0; k < N_EXPECTED; k++)
        if (expected_orders[k].m == m) {
            int *H = malloc(sizeof(int) * m * m);
            paley(expected_orders[k].q, expected_orders[k].kind, H);
            return H;
        }
    return NULL;
}

/* Recursive Sylvester product in double: y = H_p x (unnormalized). */
static void fwht_rec(double *x, int64_t p)
{
    if (p == 1) return;
    int64_t h = p / 2;
    fwht_rec(x, h);
    fwht_rec(x + h, h);
    for (int64_t i = 0; i < h; i++) {
        double a = x[i], b = x[i + h];
        x[i] = a + b;
        x[i + h] = a - b;
    }
}

/* y = T_n x (or T_n^T x) in double, n = m * p, via the Kronecker structure
 * for big n and a dense product for small n. */
static void ref_transform(const float *x, double *y, int64_t n, int transpose)
{
    int64_t pw = n & -n, m = n / pw == 1 ? 1 : 4 * (n / pw), p = n / m;
    int *Hm = m > 1 ? paley_for(m) : NULL;
    double s = 1.0 / sqrt((double)n);
    if (n <= 2048) {
        for (int64_t i = 0; i < n; i++) {
            double acc = 0;
            for (int64_t j = 0; j < n; j++) acc += (transpose ? kron(Hm, m, p, j, i) : kron(Hm, m, p, i, j)) * (double)x[j];
            y[i] = acc * s;
        }
    } else {
        double *t = malloc(sizeof(double) * n);
        for (int64_t i = 0; i < n; i++) t[i] = x[i];
        for (int64_t a = 0; a < m; a++) fwht_rec(t + a * p, p);
        for (int64_t a = 0; a < m; a++)
            for (int64_t b = 0; b < p; b++) {
                double acc = 0;
                for (int64_t c = 0; c < m; c++) acc += (Hm ? (transpose ? Hm[c * m + a] : Hm[a * m + c]) : 1) * t[c * p + b];
                y[a * p + b] = acc * s;
            }
        free(t);
    }
    free(Hm);
}

static void fill_normal(float *x, int64_t n, lb_rng *r)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)lb_rng_normal(r);
}

/* Orders covering every power of two and products with every small order. */
static const int64_t orders_small[] = {2, 4, 8, 16, 32, 64, 128, 12, 24, 48, 96, 20, 40, 80, 28, 56, 112, 36, 72,
                                       44, 88, 60, 68, 76, 84, 108, 124, 132, 140, 148, 296};
static const int64_t orders_big[] = {256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 384, 768, 1536, 3072, 2560,
                                     5120, 14336, 28672, 5632, 6912, 13824, 8960, 18944, 4864, 1152, 3840};
#define COUNT(a) ((int)(sizeof a / sizeof *a))

/* ---- the small tables */

static void test_small_tables(void)
{
    int64_t got[64];
    int n = lb_hadamard_small_orders(got, 64);
    REQUIRE(n == N_EXPECTED, "%d small orders, expected %d", n, N_EXPECTED);
    for (int k = 0; k < n; k++) {
        int m = expected_orders[k].m;
        CHECK(got[k] == m, "order %d: %lld", k, (long long)got[k]);
        const float *H = lb__hadamard_small(m, false), *Ht = lb__hadamard_small(m, true);
        REQUIRE(H && Ht, "no table for m=%d", m);
        int *ref = paley_for(m), bad = 0, bad_t = 0, bad_ref = 0;
        for (int i = 0; i < m * m; i++) {
            bad += H[i] != 1.0f && H[i] != -1.0f;
            bad_t += Ht[i] != H[(i % m) * m + i / m];
            bad_ref += (int)H[i] != ref[i];
        }
        CHECK(!bad && !bad_t && !bad_ref, "m=%d: %d entries not +-1, %d transpose errors, %d differ from Paley", m, bad,
              bad_t, bad_ref);
        /* H H^T = m I exactly, in integers. */
        int64_t off = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) {
                int64_t dot = 0;
                for (int c = 0; c < m; c++) dot += (int64_t)H[i * m + c] * (int64_t)H[j * m + c];
                if (dot != (i == j ? m : 0)) off++;
            }
        CHECK(off == 0, "m=%d: H H^T != m I in %lld entries", m, (long long)off);
        free(ref);
    }
    CHECK(lb__hadamard_small(24, false) == NULL && lb__hadamard_small(52, false) == NULL, "orders not in the table");
}

/* ---- dense checks: T built from unit vectors */

static void test_dense_matrix(void)
{
    for (int t = 0; t < COUNT(orders_small); t++) {
        int64_t n = orders_small[t];
        float *T = calloc((size_t)(n * n), sizeof(float));
        for (int64_t j = 0; j < n; j++) {          /* column j = T e_j, stored as row j of T^T */
            T[j * n + j] = 1.0f;
            REQUIRE(lb_hadamard(T + j * n, n) == LB_OK, "n=%lld: %s", (long long)n, lb_errmsg());
        }
        int64_t pw = n & -n, m = n / pw == 1 ? 1 : 4 * (n / pw), p = n / m;
        int *Hm = m > 1 ? paley_for(m) : NULL;
        double worst = 0, worst_orth = 0, s = 1.0 / sqrt((double)n);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                worst = fmax(worst, fabs(T[j * n + i] - kron(Hm, m, p, i, j) * s));
                double dot = 0;   /* (T^T T)[i][j] = <T e_i, T e_j> */
                for (int64_t k = 0; k < n; k++) dot += (double)T[i * n + k] * T[j * n + k];
                worst_orth = fmax(worst_orth, fabs(dot - (i == j)));
            }
        CHECK(worst < 1e-6, "n=%lld: entry error %g vs the Kronecker matrix", (long long)n, worst);
        CHECK(worst_orth < 1e-5, "n=%lld: |T^T T - I| = %g", (long long)n, worst_orth);
        free(Hm);
        free(T);
    }
}

/* ---- random vectors against the double reference, and round trips */

static void check_against_ref(int64_t n, lb_rng *r)
{
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    double *ref = malloc(sizeof(double) * n);
    fill_normal(x, n, r);
    memcpy(y, x, sizeof(float) * n);
    REQUIRE(lb_hadamard(y, n) == LB_OK, "n=%lld: %s", (long long)n, lb_errmsg());
    ref_transform(x, ref, n, 0);
    double err = 0, rt = 0;
    for (int64_t i = 0; i < n; i++) err = fmax(err, fabs(y[i] - ref[i]));
    CHECK(err < 2e-5, "n=%lld: forward error %g vs double reference", (long long)n, err);
    /* the inverse is the transpose */
    memcpy(y, x, sizeof(float) * n);
    REQUIRE(lb_hadamard_inverse(y, n) == LB_OK, "n=%lld inverse: %s", (long long)n, lb_errmsg());
    ref_transform(x, ref, n, 1);
    err = 0;
    for (int64_t i = 0; i < n; i++) err = fmax(err, fabs(y[i] - ref[i]));
    CHECK(err < 2e-5, "n=%lld: inverse error %g vs double reference", (long long)n, err);
    /* round trip */
    memcpy(y, x, sizeof(float) * n);
    lb_hadamard(y, n);
    lb_hadamard_inverse(y, n);
    for (int64_t i = 0; i < n; i++) rt = fmax(rt, test_rel_err(y[i], x[i], 1.0));
    CHECK(rt < 1e-5, "n=%lld: round trip error %g", (long long)n, rt);
    free(x);
    free(y);
    free(ref);
}

static void test_against_reference(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED);
    for (int t = 0; t < COUNT(orders_small); t++) check_against_ref(orders_small[t], &r);
    for (int t = 0; t < COUNT(orders_big); t++) check_against_ref(orders_big[t], &r);
}

/* ---- every ISA path bit-identical with the reference */

typedef lb_status (*op_fn)(float *a, int64_t rows, int64_t cols, int64_t block, const int8_t *signs, int inverse);

/* Run op on a copy of x under each ISA path; compare bits with the ref path. */
static void check_paths(const char *what, op_fn op, const float *x, int64_t rows, int64_t cols, int64_t block,
                        const int8_t *signs, int inverse)
{
    size_t bytes = sizeof(float) * rows * cols;
    float *want = malloc(bytes), *got = malloc(bytes);
    lb_isa saved = lb_isa_active();
    memcpy(want, x, bytes);
    lb_isa_set(LB_ISA_REF);
    lb_status s = op(want, rows, cols, block, signs, inverse);
    CHECK(s == LB_OK, "%s ref: %s", what, lb_errmsg());
    for (int isa = LB_ISA_AVX2; isa <= (int)lb_isa_best() && s == LB_OK; isa++) {
        memcpy(got, x, bytes);
        lb_isa_set((lb_isa)isa);
        CHECK(op(got, rows, cols, block, signs, inverse) == LB_OK, "%s %s: %s", what, lb_isa_name(isa), lb_errmsg());
        int64_t diff = -1;
        for (int64_t i = 0; i < rows * cols && diff < 0; i++)
            if (lb__f32_bits(got[i]) != lb__f32_bits(want[i])) diff = i;
        CHECK(diff < 0, "%s rows=%lld cols=%lld block=%lld inv=%d: %s differs from ref at %lld (%a vs %a)", what,
              (long long)rows, (long long)cols, (long long)block, inverse, lb_isa_name(isa), (long long)diff,
              diff >= 0 ? got[diff] : 0, diff >= 0 ? want[diff] : 0);
    }
    lb_isa_set(saved);
    free(want);
    free(got);
}

static void test_isa_bit_exact(void)
{
    if (lb_isa_best() == LB_ISA_REF) SKIP("this CPU has only the reference path");
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 1);
    float *x = malloc(sizeof(float) * 4 * 32768);
    fill_normal(x, 4 * 32768, &r);
    /* awkward values: zeros of both signs, tiny and huge magnitudes */
    x[3] = 0.0f, x[5] = -0.0f, x[7] = 1e-40f, x[11] = -3e30f, x[13] = 1e-30f;
    static int8_t signs[65536];
    lb_hadamard_signs(TEST_SEED, 65536, signs);
    for (int64_t n = 2; n <= 32768; n *= 2) {
        int64_t rows = n <= 4096 ? 3 : 1;
        for (int inv = 0; inv < 2; inv++) {
            check_paths("rows pow2", lb_hadamard_rows, x, rows, n, n, NULL, inv);
            check_paths("rows pow2 signs", lb_hadamard_rows, x, rows, 2 * n, n, signs, inv);
        }
    }
    for (int t = 0; t < COUNT(orders_small); t++)
        for (int inv = 0; inv < 2; inv++) check_paths("rows small", lb_hadamard_rows, x, 5, orders_small[t] * 2, orders_small[t], signs, inv);
    for (int t = 0; t < COUNT(orders_big); t++)
        check_paths("rows big", lb_hadamard_rows, x, 1, orders_big[t], orders_big[t], NULL, t & 1);
    /* columns: awkward widths exercise the vector tails */
    static const int64_t widths[] = {1, 3, 8, 17, 33, 64, 100};
    static const int64_t blocks[] = {2, 4, 16, 64, 256, 12, 24, 28, 112, 20, 148};
    for (int w = 0; w < COUNT(widths); w++)
        for (int b = 0; b < COUNT(blocks); b++)
            for (int inv = 0; inv < 2; inv++)
                check_paths("cols", lb_hadamard_cols, x, 2 * blocks[b], widths[w], blocks[b], inv ? signs : NULL, inv);
    check_paths("cols 4096", lb_hadamard_cols, x, 4096, 20, 4096, signs, 0);
    free(x);
}

/* Column transform == transpose, row transform, transpose back (bit-exact:
 * both follow the same reference arithmetic per element). */
static void test_cols_match_rows(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 2);
    static const int64_t blocks[] = {2, 8, 64, 12, 96, 28, 140};
    for (int b = 0; b < COUNT(blocks); b++) {
        int64_t rows = 2 * blocks[b], cols = 19;
        float *a = malloc(sizeof(float) * rows * cols), *t = malloc(sizeof(float) * rows * cols);
        int8_t *signs = malloc(rows);
        fill_normal(a, rows * cols, &r);
        lb_hadamard_signs(TEST_SEED + (uint64_t)b, rows, signs);
        for (int inv = 0; inv < 2; inv++) {
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
            float *c = malloc(sizeof(float) * rows * cols);
            memcpy(c, a, sizeof(float) * rows * cols);
            CHECK(lb_hadamard_cols(c, rows, cols, blocks[b], signs, inv) == LB_OK, "%s", lb_errmsg());
            CHECK(lb_hadamard_rows(t, cols, rows, blocks[b], signs, inv) == LB_OK, "%s", lb_errmsg());
            int64_t diff = 0;
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < cols; j++) diff += lb__f32_bits(c[i * cols + j]) != lb__f32_bits(t[j * rows + i]);
            CHECK(diff == 0, "block %lld inv=%d: %lld elements differ", (long long)blocks[b], inv, (long long)diff);
            free(c);
        }
        free(a);
        free(t);
        free(signs);
    }
}

/* ---- randomized Hadamard and block-diagonal application */

static void test_signs(void)
{
    int8_t a[1000], b[1000], c[1000];
    CHECK(lb_hadamard_signs(TEST_SEED, 1000, a) == LB_OK, "%s", lb_errmsg());
    lb_hadamard_signs(TEST_SEED, 1000, b);
    lb_hadamard_signs(TEST_SEED + 1, 1000, c);
    int neg = 0, same = 0, other = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK(a[i] == 1 || a[i] == -1, "sign %d = %d", i, a[i]);
        neg += a[i] < 0, same += a[i] == b[i], other += a[i] == c[i];
    }
    CHECK(same == 1000, "same seed gives the same signs");
    CHECK(other < 600, "another seed gives other signs (%d of 1000 equal)", other);
    CHECK(neg > 400 && neg < 600, "%d of 1000 negative", neg);   /* binomial sd ~16: 6 sd */
    /* the documented rule: bit i%64 of the (i/64)-th draw */
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED);
    uint64_t u = lb_rng_u64(&r);
    for (int i = 0; i < 64; i++) CHECK(a[i] == ((u >> i) & 1 ? -1 : 1), "sign %d against the rule", i);
}

/* Block-diagonal randomized rows against a double reference built here:
 * y = blockdiag(T_b) (D x), and the inverse restores x. */
static void test_randomized_rows(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 3);
    static const struct { int64_t cols, block; } cases[] = {{512, 128}, {384, 384}, {384, 96}, {1024, 0}, {172, 4},
                                                            {5632, 5632}, {300, 12}, {2560, 2560}};
    for (int t = 0; t < COUNT(cases); t++) {
        int64_t cols = cases[t].cols, rows = 3, block = cases[t].block;
        if (block == 0) block = 1024;   /* 0 picks the plan's block: 1024 here */
        float *a = malloc(sizeof(float) * rows * cols), *y = malloc(sizeof(float) * rows * cols), *dx = malloc(sizeof(float) * block);
        double *ref = malloc(sizeof(double) * block);
        int8_t *signs = malloc(cols);
        fill_normal(a, rows * cols, &r);
        lb_hadamard_signs(TEST_SEED ^ (uint64_t)t, cols, signs);
        memcpy(y, a, sizeof(float) * rows * cols);
        REQUIRE(lb_hadamard_rows(y, rows, cols, cases[t].block, signs, 0) == LB_OK, "%s", lb_errmsg());
        double err = 0;
        for (int64_t i = 0; i < rows; i++)
            for (int64_t b0 = 0; b0 < cols; b0 += block) {
                for (int64_t j = 0; j < block; j++) dx[j] = a[i * cols + b0 + j] * signs[b0 + j];
                ref_transform(dx, ref, block, 0);
                for (int64_t j = 0; j < block; j++) err = fmax(err, fabs(y[i * cols + b0 + j] - ref[j]));
            }
        CHECK(err < 2e-5, "cols=%lld block=%lld: error %g vs reference", (long long)cols, (long long)block, err);
        REQUIRE(lb_hadamard_rows(y, rows, cols, cases[t].block, signs, 1) == LB_OK, "%s", lb_errmsg());
        double rt = 0;
        for (int64_t i = 0; i < rows * cols; i++) rt = fmax(rt, test_rel_err(y[i], a[i], 1.0));
        CHECK(rt < 1e-5, "cols=%lld block=%lld: round trip %g", (long long)cols, (long long)block, rt);
        free(a), free(y), free(dx), free(ref), free(signs);
    }
}

/* (W R^T)(R x) == W x for rotated weights and activations, and
 * (A R^T)(R B) == A B with the column transform. */
static void test_rotation_identity(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 4);
    static const struct { int64_t in, block; } cases[] = {{256, 64}, {384, 0}, {768, 192}, {172, 0}, {5632, 0},
                                                          {1120, 28}, {11008, 0}};
    for (int t = 0; t < COUNT(cases); t++) {
        int64_t in = cases[t].in, out = 6, k = 3;
        float *W = malloc(sizeof(float) * out * in), *Wr = malloc(sizeof(float) * out * in);
        float *x = malloc(sizeof(float) * in * k), *xr = malloc(sizeof(float) * in * k), *xc = malloc(sizeof(float) * in * k);
        int8_t *signs = malloc(in);
        fill_normal(W, out * in, &r);
        fill_normal(x, in * k, &r);   /* x as a (in, k) matrix: k activations in columns */
        lb_hadamard_signs(TEST_SEED + 7 * (uint64_t)t, in, signs);
        memcpy(Wr, W, sizeof(float) * out * in);
        memcpy(xc, x, sizeof(float) * in * k);
        REQUIRE(lb_hadamard_rows(Wr, out, in, cases[t].block, signs, 0) == LB_OK, "%s", lb_errmsg());
        REQUIRE(lb_hadamard_cols(xc, in, k, cases[t].block, signs, 0) == LB_OK, "%s", lb_errmsg());
        /* one activation as a vector through rows(x, 1, in): column 0 of x */
        for (int64_t i = 0; i < in; i++) xr[i] = x[i * k];
        REQUIRE(lb_hadamard_rows(xr, 1, in, cases[t].block, signs, 0) == LB_OK, "%s", lb_errmsg());
        double err = 0, err1 = 0, norm = 0;
        for (int64_t o = 0; o < out; o++)
            for (int64_t c = 0; c < k; c++) {
                double want = 0, got = 0, got1 = 0;
                for (int64_t i = 0; i < in; i++) {
                    want += (double)W[o * in + i] * x[i * k + c];
                    got += (double)Wr[o * in + i] * xc[i * k + c];
                    if (c == 0) got1 += (double)Wr[o * in + i] * xr[i];
                }
                err = fmax(err, fabs(got - want));
                if (c == 0) err1 = fmax(err1, fabs(got1 - want));
                norm = fmax(norm, sqrt((double)in));
            }
        CHECK(err < 1e-5 * norm && err1 < 1e-5 * norm, "in=%lld block=%lld: |W'x' - Wx| = %g, %g (scale %g)",
              (long long)in, (long long)cases[t].block, err, err1, norm);
        free(W), free(Wr), free(x), free(xr), free(xc), free(signs);
    }
}

/* ---- plans for model dimensions (expected blocks worked out by hand) */

static void test_plan(void)
{
    static const struct { int64_t n, max_block, block, m, pow2; } cases[] = {
        {64, 0, 64, 1, 64},         {128, 0, 128, 1, 128},   {172, 0, 4, 1, 4},          /* 172 = 4 * 43 */
        {384, 0, 384, 12, 32},      {768, 0, 768, 12, 64},   {2048, 0, 2048, 1, 2048},
        {5632, 0, 5632, 44, 128},   {11008, 0, 256, 1, 256}, {14336, 0, 14336, 28, 512},  /* 11008 = 256 * 43 */
        {5632, 128, 128, 1, 128},   {384, 128, 128, 1, 128}, {768, 200, 192, 12, 16},
        {516, 0, 12, 12, 1},        {86, 0, 2, 1, 2},        {65536, 0, 32768, 1, 32768},
        {4864, 0, 4864, 76, 64},    {6912, 0, 6912, 108, 64}, {18944, 0, 18944, 148, 128},
        {8960, 0, 8960, 140, 64},   {3072, 60, 48, 12, 4},   {2, 0, 2, 1, 2},
    };
    for (int t = 0; t < COUNT(cases); t++) {
        lb_hadamard_plan p;
        lb_status s = lb_hadamard_plan_for(cases[t].n, cases[t].max_block, &p);
        REQUIRE(s == LB_OK, "n=%lld: %s", (long long)cases[t].n, lb_errmsg());
        CHECK(p.block == cases[t].block && p.m == cases[t].m && p.pow2 == cases[t].pow2 && p.n == cases[t].n &&
                  p.n_blocks * p.block == p.n && p.exact == (p.block == p.n),
              "n=%lld max=%lld: block %lld = %lld * %lld, want %lld = %lld * %lld", (long long)cases[t].n,
              (long long)cases[t].max_block, (long long)p.block, (long long)p.m, (long long)p.pow2,
              (long long)cases[t].block, (long long)cases[t].m, (long long)cases[t].pow2);
        CHECK(lb_hadamard_supported(cases[t].block), "plan block %lld supported", (long long)cases[t].block);
    }
    CHECK(!lb_hadamard_supported(172) && !lb_hadamard_supported(6) && !lb_hadamard_supported(65536) &&
              !lb_hadamard_supported(1) && !lb_hadamard_supported(52) && !lb_hadamard_supported(92 * 4),
          "unsupported orders");
}

/* ---- bad arguments give LB_ERR_ARG with a clear message */

static void expect_arg_error(lb_status s, const char *needle, const char *what)
{
    CHECK(s == LB_ERR_ARG, "%s: status %d", what, s);
    CHECK(strstr(lb_errmsg(), needle) != NULL, "%s: message '%s' lacks '%s'", what, lb_errmsg(), needle);
}

static void test_bad_args(void)
{
    float x[256] = {0};
    lb_hadamard_plan p;
    expect_arg_error(lb_hadamard(x, 43), "n=43 is not a supported Hadamard order", "odd n");
    expect_arg_error(lb_hadamard(x, 172), "not a supported", "172");
    expect_arg_error(lb_hadamard(x, 0), "n=0", "n=0");
    expect_arg_error(lb_hadamard(x, 65536), "not a supported", "too large");
    expect_arg_error(lb_hadamard(NULL, 8), "NULL", "NULL x");
    expect_arg_error(lb_hadamard_inverse(x, 6), "not a supported", "inverse 6");
    expect_arg_error(lb_hadamard_rows(x, 2, 100, 64, NULL, 0), "block 64 does not divide cols=100", "rows block");
    expect_arg_error(lb_hadamard_rows(x, 2, 120, 6, NULL, 0), "block 6 is not a supported", "rows block 6");
    expect_arg_error(lb_hadamard_cols(x, 100, 2, 8, NULL, 0), "block 8 does not divide rows=100", "cols block");
    expect_arg_error(lb_hadamard_rows(x, 1, 43, 0, NULL, 0), "odd", "auto block for odd cols");
    expect_arg_error(lb_hadamard_rows(x, -1, 8, 8, NULL, 0), "rows=-1", "negative rows");
    expect_arg_error(lb_hadamard_plan_for(45, 0, &p), "n=45 is odd", "plan odd");
    expect_arg_error(lb_hadamard_plan_for(64, 1, &p), "max_block=1", "plan max_block");
    expect_arg_error(lb_hadamard_signs(1, -3, (int8_t *)x), "n=-3", "signs n");
    /* nothing was touched by the failing calls */
    for (int i = 0; i < 256; i++) CHECK(x[i] == 0.0f, "x[%d] changed", i);
    CHECK(lb_hadamard_rows(x, 0, 8, 8, NULL, 0) == LB_OK, "zero rows is a no-op");
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    RUN(test_small_tables);
    RUN(test_dense_matrix);
    RUN(test_against_reference);
    RUN(test_isa_bit_exact);
    RUN(test_cols_match_rows);
    RUN(test_signs);
    RUN(test_randomized_rows);
    RUN(test_rotation_identity);
    RUN(test_plan);
    RUN(test_bad_args);
    return TEST_DONE();
}
