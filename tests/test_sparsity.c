/* test_sparsity.c: pruning (src/sparsity), the sparse weight representation
 * (src/weights/sparse.c) and its kernels (src/kernels/sparse*.c).
 *
 * Masks are checked against each pattern's definition by counting here;
 * Wanda's and SparseGPT's choices against the independent NumPy reference
 * tests/ref/prune_ref.py on random matrices with a real H (from random
 * correlated inputs, and from a real model's linear inputs through the
 * forward pass's tap); sparse products against dense products of the
 * masked weights on every ISA the CPU has and 1 and 2 threads; files
 * round-trip bit-exact and corrupt index data is refused. */
#include "harness.h"
#include "sparsity/sparsity.h"
#include "kernels/sparse.h"
#include <unistd.h>

static lb_rng rng;

/* ---- helpers */

static float *rand_w(int64_t rows, int64_t cols)
{
    float *w = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)lb_rng_normal(&rng);
    return w;
}

/* Statistics from t random inputs with column scales spread over 2 decades
 * and correlated columns (x = z A with a random mixing A). */
typedef struct rstats { lb_calib_stats s; double *H, *sq; } rstats;
static void rand_stats(rstats *r, int64_t n, int64_t t)
{
    r->H = calloc((size_t)(n * n), sizeof(double));
    r->sq = calloc((size_t)n, sizeof(double));
    double *x = malloc(sizeof(double) * (size_t)n), *z = malloc(sizeof(double) * (size_t)n);
    double *scale = malloc(sizeof(double) * (size_t)n);
    for (int64_t j = 0; j < n; j++) scale[j] = pow(10.0, 2.0 * lb_rng_uniform(&rng) - 1.0);
    for (int64_t k = 0; k < t; k++) {
        for (int64_t j = 0; j < n; j++) z[j] = lb_rng_normal(&rng);
        for (int64_t j = 0; j < n; j++) x[j] = scale[j] * (z[j] + 0.5 * z[(j + 1) % n]);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) r->H[i * n + j] += x[i] * x[j] / (double)t;
    }
    for (int64_t j = 0; j < n; j++) r->sq[j] = r->H[j * n + j];
    r->s = (lb_calib_stats){.n = n, .n_tokens = t, .H = r->H, .sq = r->sq};
    free(x); free(z); free(scale);
}
static void free_stats(rstats *r) { free(r->H); free(r->sq); }

static const char *find_python(void)
{
    static int done;
    static const char *py;
    if (done) return py;
    done = 1;
    const char *cands[] = {getenv("LOWBIT_PYTHON"), "/usr/bin/python3", "python3"};
    for (int i = 0; i < 3; i++) {
        char cmd[512];
        if (!cands[i] || !*cands[i]) continue;
        snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) return py = cands[i];
    }
    return NULL;
}

/* ---- patterns: every mask satisfies its pattern, counted here */

/* Kept count of row r in columns [c, c + g). */
static int64_t kept(const uint8_t *k, int64_t cols, int64_t r, int64_t c, int64_t g)
{
    int64_t n = 0;
    for (int64_t i = c; i < c + g; i++) n += k[r * cols + i];
    return n;
}

static void check_mask(const char *crit, const char *pat, double ratio, int64_t rows, int64_t cols, int64_t block,
                       const uint8_t *k, const float *w0, const float *w)
{
    lb__pattern p;
    REQUIRE(lb__pattern_parse(pat, ratio, &p) == LB_OK, "%s", lb_errmsg());
    bool sgpt = !strcmp(crit, "sparsegpt");
    for (int64_t i = 0; i < rows * cols; i++) {
        CHECK(k[i] == 0 || k[i] == 1, "%s %s: keep byte %d", crit, pat, k[i]);
        if (!k[i]) CHECK(w[i] == 0.0f && !signbit(w[i]), "%s %s: pruned weight %lld is %g", crit, pat, (long long)i, w[i]);
        else if (!sgpt) CHECK(w[i] == w0[i], "%s %s: kept weight %lld changed", crit, pat, (long long)i);
        if (th_cur_fail) return;
    }
    if (p.kind == LB__PAT_UNSTRUCTURED && !sgpt) {
        int64_t want = cols - (int64_t)floor((double)cols * ratio);
        for (int64_t r = 0; r < rows; r++) CHECK(kept(k, cols, r, 0, cols) == want, "%s: row %lld", crit, (long long)r);
    } else if (p.kind == LB__PAT_UNSTRUCTURED) {   /* one count per block of columns over all rows */
        for (int64_t c = 0; c < cols; c += block) {
            int64_t g = lb__min64(block, cols - c), n = 0;
            for (int64_t r = 0; r < rows; r++) n += kept(k, cols, r, c, g);
            CHECK(n == rows * g - (int64_t)floor((double)(rows * g) * ratio), "sparsegpt block %lld keeps %lld",
                  (long long)c, (long long)n);
        }
    } else {   /* N of every M per row (tail: floor(N g / M)) */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c += p.m) {
                int64_t g = lb__min64(p.m, cols - c);
                CHECK(kept(k, cols, r, c, g) == (int64_t)p.n * g / p.m, "%s %s: row %lld group %lld keeps %lld", crit,
                      pat, (long long)r, (long long)c, (long long)kept(k, cols, r, c, g));
            }
    }
    if (p.kind == LB__PAT_VNM)   /* each V x M block uses at most 4 columns */
        for (int64_t r0 = 0; r0 < rows; r0 += p.v)
            for (int64_t c = 0; c + p.m <= cols; c += p.m) {
                int used = 0;
                for (int64_t j = c; j < c + p.m; j++) {
                    int any = 0;
                    for (int64_t r = r0; r < lb__min64(rows, r0 + p.v); r++) any |= k[r * cols + j];
                    used += any;
                }
                CHECK(used <= 4, "%s %s: block (%lld, %lld) uses %d columns", crit, pat, (long long)r0, (long long)c, used);
            }
    CHECK(lb__pattern_desc_of(&p)->check(&p, k, rows, cols, "mask") == LB_OK || (sgpt && p.kind == LB__PAT_UNSTRUCTURED),
          "%s %s: pattern check refused: %s", crit, pat, lb_errmsg());
}

static void test_patterns(void)
{
    static const char *pats[] = {"unstructured", "unstructured", "2:4", "4:8", "1:4", "3:4", "8:2:8", "5:3:8", "4:2:6"};
    static const double ratios[] = {0.5, 0.7, 0, 0, 0, 0, 0, 0, 0};
    static const char *crits[] = {"magnitude", "wanda", "sparsegpt"};
    static const int64_t shapes[][2] = {{13, 48}, {9, 42}, {1, 7}};   /* 42 and 7: tail groups */
    for (int s = 0; s < 3; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1];
        rstats st;
        rand_stats(&st, cols, 3 * cols);
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
                float *w0 = rand_w(rows, cols), *w = malloc(sizeof(float) * (size_t)(rows * cols));
                uint8_t *k = malloc((size_t)(rows * cols));
                memcpy(w, w0, sizeof(float) * (size_t)(rows * cols));
                lb_prune_opts o = {.criterion = crits[c], .pattern = pats[i], .ratio = ratios[i], .calib = &st.s,
                                   .block = 16};
                lb_status r = lb_prune_matrix(&o, w, rows, cols, k);
                CHECK(r == LB_OK, "%s %s [%lld, %lld]: %s", crits[c], pats[i], (long long)rows, (long long)cols, lb_errmsg());
                if (r == LB_OK) check_mask(crits[c], pats[i], ratios[i], rows, cols, 16, k, w0, w);
                free(w0); free(w); free(k);
            }
        free_stats(&st);
    }
}

/* ---- criteria against the NumPy reference */

/* Prune w (rows x cols) in C and in tests/ref/prune_ref.py; the masks must
 * agree exactly, the weights to 1e-9 relative (both in double). */
static void vs_numpy(const char *py, const char *crit, const char *pat, double ratio, const float *w0, int64_t rows,
                     int64_t cols, const lb_calib_stats *st, int64_t block)
{
    char in[] = "/tmp/lb_prune_in.XXXXXX", out[] = "/tmp/lb_prune_out.XXXXXX";
    int fi = mkstemp(in), fo = mkstemp(out);
    REQUIRE(fi >= 0 && fo >= 0, "mkstemp");
    close(fo);
    FILE *f = fdopen(fi, "wb");
    fwrite(w0, sizeof(float), (size_t)(rows * cols), f);
    fwrite(st->sq, sizeof(double), (size_t)cols, f);
    fwrite(st->H, sizeof(double), (size_t)(cols * cols), f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s tests/ref/prune_ref.py %s %s %s %s %.17g 0.01 %lld %lld %lld", py, in, out, crit, pat,
             ratio, (long long)block, (long long)rows, (long long)cols);
    int rc = system(cmd);
    size_t n = (size_t)(rows * cols);
    uint8_t *kr = malloc(n), *kc = malloc(n);
    double *wr = malloc(n * sizeof(double));
    float *w = malloc(n * sizeof(float));
    f = fopen(out, "rb");
    bool ok = rc == 0 && f && fread(kr, 1, n, f) == n && fread(wr, sizeof(double), n, f) == n;
    if (f) fclose(f);
    unlink(in);
    unlink(out);
    CHECK(ok, "%s failed", cmd);
    memcpy(w, w0, n * sizeof(float));
    lb_prune_opts o = {.criterion = crit, .pattern = pat, .ratio = ratio, .calib = st, .block = block};
    CHECK(lb_prune_matrix(&o, w, rows, cols, kc) == LB_OK, "%s", lb_errmsg());
    int64_t diff = 0, first = -1;
    double err = 0, ref = 0;
    for (size_t i = 0; ok && i < n; i++) {
        if (kr[i] != kc[i]) { diff++; if (first < 0) first = (int64_t)i; }
        err = fmax(err, fabs(wr[i] - w[i]));
        ref = fmax(ref, fabs(wr[i]));
    }
    CHECK(diff == 0, "%s %s: %lld mask entries differ from NumPy (first %lld)", crit, pat, (long long)diff, (long long)first);
    CHECK(err <= 1e-5 * ref, "%s %s: weights differ from NumPy by %g (max %g)", crit, pat, err, ref);
    free(kr); free(kc); free(wr); free(w);
}

static void test_numpy(void)
{
    const char *py = find_python();
    if (!py) SKIP("python3 with numpy not found (set LOWBIT_PYTHON): NumPy reference comparison not run");
    static const char *pats[] = {"unstructured", "2:4", "4:8", "8:2:8"};
    static const char *crits[] = {"magnitude", "wanda", "sparsegpt"};
    int64_t rows = 20, cols = 72;   /* sparsegpt blocks of 32: 32, 32, 8 */
    rstats st;
    rand_stats(&st, cols, 4 * cols);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4; i++) {
            float *w0 = rand_w(rows, cols);
            vs_numpy(py, crits[c], pats[i], 0.5, w0, rows, cols, &st.s, 32);
            free(w0);
        }
    free_stats(&st);
}

/* Wanda differs from magnitude when the inputs' scales differ: a tiny
 * weight on a loud input must outrank a large one on a quiet input. */
static void test_wanda_uses_inputs(void)
{
    float w[4] = {0.1f, 1.0f, 0.2f, 0.9f};
    double sq[4] = {1e4, 1e-4, 1e4, 1e-4}, H[16] = {0};
    lb_calib_stats st = {.n = 4, .n_tokens = 1, .H = H, .sq = sq};
    uint8_t k[4];
    lb_prune_opts o = {.criterion = "wanda", .pattern = "2:4", .calib = &st};
    REQUIRE(lb_prune_matrix(&o, w, 1, 4, k) == LB_OK, "%s", lb_errmsg());
    CHECK(k[0] && !k[1] && k[2] && !k[3], "wanda kept %d%d%d%d", k[0], k[1], k[2], k[3]);
}

/* ---- bad input */

static void test_bad_input(void)
{
    float w[64];
    for (int i = 0; i < 64; i++) w[i] = (float)i;
    double H[64] = {0}, Hn[64] = {0}, sq[8] = {0};
    for (int i = 0; i < 8; i++) Hn[i * 9] = 1;
    Hn[9] = NAN;
    lb_calib_stats st_nan = {.n = 8, .H = Hn, .sq = sq}, st_wrong = {.n = 4, .H = H, .sq = sq};
    struct { const char *crit, *pat; double ratio; const lb_calib_stats *c; lb_status want; const char *msg; } cases[] = {
        {"magnitude", "unstructured", -0.1, NULL, LB_ERR_ARG, "ratio"},
        {"magnitude", "unstructured", 1.0, NULL, LB_ERR_ARG, "ratio"},
        {"magnitude", "unstructured", NAN, NULL, LB_ERR_ARG, "ratio"},
        {"magnitude", "3:2", 0, NULL, LB_ERR_ARG, "N (kept per group)"},
        {"magnitude", "0:4", 0, NULL, LB_ERR_ARG, "N (kept per group)"},
        {"magnitude", "2:0", 0, NULL, LB_ERR_ARG, "M must"},
        {"magnitude", "4:2:3", 0, NULL, LB_ERR_ARG, "M must"},
        {"magnitude", "4:5:8", 0, NULL, LB_ERR_ARG, "N (kept of the 4"},
        {"magnitude", "0:2:8", 0, NULL, LB_ERR_ARG, "V (rows"},
        {"magnitude", "2:4:", 0, NULL, LB_ERR_ARG, "unknown pattern"},
        {"magnitude", "dense", 0, NULL, LB_ERR_ARG, "unknown pattern"},
        {"obs", "2:4", 0, NULL, LB_ERR_NOTFOUND, "unknown criterion"},
        {"wanda", "2:4", 0, NULL, LB_ERR_ARG, "needs calibration"},
        {"sparsegpt", "unstructured", 0.5, NULL, LB_ERR_ARG, "needs calibration"},
        {"wanda", "2:4", 0, &st_wrong, LB_ERR_ARG, "statistics are for 4 inputs"},
        {"sparsegpt", "2:4", 0, &st_nan, LB_ERR_ARG, "not positive definite"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lb_prune_opts o = {.criterion = cases[i].crit, .pattern = cases[i].pat, .ratio = cases[i].ratio,
                           .calib = cases[i].c};
        lb_status s = lb_prune_matrix(&o, w, 8, 8, NULL);
        CHECK(s == cases[i].want && strstr(lb_errmsg(), cases[i].msg), "case %zu (%s %s): status %d, '%s'", i,
              cases[i].crit, cases[i].pat, s, lb_errmsg());
    }
    lb_prune_opts o = {0};
    CHECK(lb_prune_matrix(&o, w, 0, 8, NULL) == LB_ERR_ARG, "empty shape accepted");
    CHECK(lb_prune_matrix(NULL, w, 8, 8, NULL) == LB_ERR_ARG, "NULL opts accepted");
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_patterns);
    RUN(test_numpy);
    RUN(test_wanda_uses_inputs);
    RUN(test_bad_input);
    return TEST_DONE();
}
