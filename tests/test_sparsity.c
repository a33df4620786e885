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
#include "tmodel.h"

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
    lb_wstore st = {0};   /* the stored form accepts it (and its validator agrees) */
    lb_weight sw;
    CHECK(lb__weight_sparse(&st, w, k, rows, cols, LB_DTYPE_F32, p.kind == LB__PAT_VNM ? p.v : 0,
                            p.kind ? p.n : 0, p.kind ? p.m : 0, LB_SPARSE_AUTO, &sw) == LB_OK,
          "%s %s: not storable: %s", crit, pat, lb_errmsg());
    lb__wstore_free(&st);
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
 * agree exactly, the weights to 1e-5 relative. With fmt (int4_g32), SparseGPT's
 * joint mode: the same, and the packed kept values must decode to the C
 * result's kept weights exactly (a code off by one would differ by a whole
 * grid step, far above the tolerance). */
static void vs_numpy_fmt(const char *py, const char *crit, const char *pat, double ratio, const float *w0,
                         int64_t rows, int64_t cols, const lb_calib_stats *st, int64_t block, const char *fmt)
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
    snprintf(cmd, sizeof cmd, "%s tests/ref/prune_ref.py %s %s %s%s%s %s %.17g 0.01 %lld %lld %lld", py, in, out, crit,
             fmt ? "+" : "", fmt ? fmt : "", pat, ratio, (long long)block, (long long)rows, (long long)cols);
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
    bool rows_g = !strcmp(crit, "sparsegpt:rows");   /* row_groups: each row of a block prunes its own lowest */
    lb_prune_opts o = {.criterion = rows_g ? "sparsegpt" : crit, .pattern = pat, .ratio = ratio, .calib = st,
                       .block = block, .row_groups = rows_g};
    lb_qmatrix q = {0};
    if (fmt) {
        CHECK(lb_prune_quantize_matrix(&o, lb_format_find(fmt), w, rows, cols, kc, &q) == LB_OK, "%s", lb_errmsg());
        float *dq = malloc(sizeof(float) * (size_t)(rows * q.cols));
        int64_t bad = 0, at = 0;
        CHECK(q.packed && lb_qmatrix_dequantize(&q, dq) == LB_OK, "dequantize: %s", lb_errmsg());
        for (size_t i = 0; q.packed && i < n; i++)
            if (kc[i]) bad += at < rows * q.cols ? dq[at++] != w[i] : 1;
        CHECK(bad == 0 && at == rows * q.cols, "%s %s+%s: %lld packed values differ from the kept weights", crit, pat,
              fmt, (long long)bad);
        free(dq);
        lb_qmatrix_free(&q);
    } else
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

static void vs_numpy(const char *py, const char *crit, const char *pat, double ratio, const float *w0, int64_t rows,
                     int64_t cols, const lb_calib_stats *st, int64_t block)
{
    vs_numpy_fmt(py, crit, pat, ratio, w0, rows, cols, st, block, NULL);
}

static void test_numpy(void)
{
    const char *py = test_find_python();
    if (!py) SKIP("python3 with numpy not found (set LOWBIT_PYTHON): NumPy reference comparison not run");
    static const char *pats[] = {"unstructured", "2:4", "4:8", "8:2:8"};
    static const char *crits[] = {"magnitude", "wanda", "sparsegpt"};
    int64_t rows = 20, cols = 72;   /* sparsegpt blocks of 32: 32, 32, 8 */
    rstats st;
    rand_stats(&st, cols, 4 * cols);
    for (int k = 0; k < 2; k++) {   /* SparseGPT with per-row groups in each block, as packed values get */
        float *w0 = rand_w(rows, cols);
        vs_numpy(py, "sparsegpt:rows", "unstructured", k ? 0.6 : 0.5, w0, rows, cols, &st.s, 32);
        free(w0);
    }
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4; i++) {
            float *w0 = rand_w(rows, cols);
            vs_numpy(py, crits[c], pats[i], 0.5, w0, rows, cols, &st.s, 32);
            free(w0);
        }
    free_stats(&st);
}

/* SparseGPT's joint prune-and-quantize against NumPy (int4_g32): 2:4, 4:8,
 * V:N:M and a tail group that keeps nothing (1:4 over 130 inputs: 32 kept). */
static void test_joint_numpy(void)
{
    const char *py = test_find_python();
    if (!py) SKIP("python3 with numpy not found (set LOWBIT_PYTHON): NumPy reference comparison not run");
    static const struct { const char *pat; int64_t rows, cols; } cases[] = {
        {"2:4", 20, 128}, {"4:8", 12, 128}, {"8:2:8", 20, 128}, {"1:4", 9, 130}, {"2:4", 7, 64}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        rstats st;
        rand_stats(&st, cases[c].cols, 3 * cases[c].cols);
        float *w0 = rand_w(cases[c].rows, cases[c].cols);
        vs_numpy_fmt(py, "sparsegpt", cases[c].pat, 0, w0, cases[c].rows, cases[c].cols, &st.s, 128, "int4_g32");
        free(w0);
        free_stats(&st);
    }
}

/* The joint mode refuses what it cannot do, with one error each. */
static void test_joint_bad_input(void)
{
    rstats st, st8;
    rand_stats(&st, 64, 200);
    rand_stats(&st8, 72, 200);
    float *w = rand_w(4, 72);
    const lb_format *f = lb_format_find("int4_g32");
    struct { const char *crit, *pat; const lb_calib_stats *c; int64_t cols; lb_status want; const char *msg; } cases[] = {
        {"magnitude", "2:4", &st.s, 64, LB_ERR_UNSUPPORTED, "SparseGPT's mode"},
        {"wanda", "2:4", &st.s, 64, LB_ERR_UNSUPPORTED, "SparseGPT's mode"},
        {"sparsegpt", "unstructured", &st.s, 64, LB_ERR_UNSUPPORTED, "N:M or V:N:M"},
        {"sparsegpt", "2:4", &st8.s, 72, LB_ERR_UNSUPPORTED, "36 kept values per row"},
        {"sparsegpt", "3:4", &st.s, 64, LB_ERR_UNSUPPORTED, "48 kept values per row"},
        {"sparsegpt", "2:4", NULL, 64, LB_ERR_ARG, "needs calibration"},
        {"sparsegpt", "2:4", &st8.s, 64, LB_ERR_ARG, "statistics are for 72 inputs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lb_prune_opts o = {.criterion = cases[i].crit, .pattern = cases[i].pat, .calib = cases[i].c};
        lb_qmatrix q;
        lb_status s = lb_prune_quantize_matrix(&o, f, w, 4, cases[i].cols, NULL, &q);
        CHECK(s == cases[i].want && strstr(lb_errmsg(), cases[i].msg) && !q.packed, "joint case %zu (%s %s): %d '%s'",
              i, cases[i].crit, cases[i].pat, s, lb_errmsg());
    }
    lb_prune_opts o = {.criterion = "sparsegpt", .pattern = "2:4", .calib = &st.s};
    lb_qmatrix q;
    CHECK(lb_prune_quantize_matrix(&o, NULL, w, 4, 64, NULL, &q) == LB_ERR_ARG, "NULL format accepted");
    free(w);
    free_stats(&st);
    free_stats(&st8);
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

/* ---- kernels: gathers bit-exact across ISAs, products against references */

static void test_gather(void)
{
    for (int64_t cols = 0; cols <= 140; cols += cols < 40 ? 1 : 13)
        for (int d = 0; d < 4; d++) {
            double dens = d == 0 ? 0 : d == 1 ? 0.1 : d == 2 ? 0.5 : 1;
            uint8_t mask[32] = {0};
            float x[160], ref[176], got[176];
            for (int64_t c = 0; c < cols; c++) {
                x[c] = (float)lb_rng_normal(&rng);
                if (lb_rng_uniform(&rng) < dens) mask[c >> 3] |= (uint8_t)(1u << (c & 7));
            }
            int64_t kr = lb__sparse_gather_ref(mask, x, cols, ref);
            for (int isa = LB_ISA_AVX2; isa <= (int)lb_isa_best(); isa++) {
                for (int i = 0; i < 176; i++) got[i] = -7.0f;
                int64_t kg = lb__sparse_gather_for((lb_isa)isa)(mask, x, cols, got);
                CHECK(kg == kr && !memcmp(got, ref, sizeof(float) * (size_t)kr), "%s gather, cols %lld: %lld vs %lld kept",
                      lb_isa_name((lb_isa)isa), (long long)cols, (long long)kg, (long long)kr);
                for (int64_t i = cols; i < 176; i++) CHECK(got[i] == -7.0f, "%s gather wrote xk[%lld] past cols %lld",
                                                           lb_isa_name((lb_isa)isa), (long long)i, (long long)cols);
            }
        }
}

/* y = W x through lb__linear for a sparse W on every ISA, 1 and 2 threads,
 * 1, 2 and 5 tokens: bit-exact with the canonical dot of the kept values and
 * gathered inputs (lb__dot_ref), and within float rounding of the dense
 * reference dot of the masked matrix. */
static void check_products(const lb_weight *w, const float *wm, const char *what)
{
    int64_t rows = w->rows, cols = w->cols, nt = 5;
    float *x = malloc(sizeof(float) * (size_t)(nt * cols)), *want = malloc(sizeof(float) * (size_t)(nt * rows));
    float *y = malloc(sizeof(float) * (size_t)(nt * rows)), *row = malloc(sizeof(float) * (size_t)cols);
    float *vk = malloc(sizeof(float) * (size_t)cols), *xk = malloc(sizeof(float) * (size_t)cols);
    for (int64_t i = 0; i < nt * cols; i++) x[i] = (float)lb_rng_normal(&rng);
    const lb_wsparse *sp = &w->u.sparse;
    for (int64_t r = 0; r < rows; r++) {
        lb__weight_row(w, r, row);
        for (int64_t t = 0; t < nt; t++) {
            int64_t k = 0;
            double mag = 0, dense = 0;
            for (int64_t c = 0; c < cols; c++) {
                bool kept = sp->mask ? (sp->mask[r * sp->mask_bytes + c / 8] >> (c % 8) & 1) : false;
                for (int64_t i = sp->off[r]; !sp->mask && i < sp->off[r + 1]; i++) kept |= sp->idx[i] == c;
                CHECK(kept || row[c] == 0.0f, "%s: decoded row %lld has a value at pruned input %lld", what, (long long)r, (long long)c);
                CHECK(!kept || row[c] == wm[r * cols + c] || w->dtype != LB_DTYPE_F32, "%s: value changed", what);
                if (kept) { vk[k] = row[c]; xk[k++] = x[t * cols + c]; }
                mag += fabs((double)wm[r * cols + c] * x[t * cols + c]);
                dense += (double)row[c] * x[t * cols + c];
            }
            want[t * rows + r] = sp->fmt ? lb_format_dot(sp->fmt, (const uint8_t *)w->data + r * sp->row_bytes,
                                                         sp->tensor_scale, xk, k)
                                         : lb__dot_ref(vk, xk, k);
            CHECK(fabs(want[t * rows + r] - dense) <= (sp->fmt ? 1e-3 : 1e-5) * mag + 1e-30, "%s: row %lld: %g vs dense %g", what,
                  (long long)r, want[t * rows + r], dense);
        }
    }
    lb_isa saved = lb_isa_active();
    for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++)
        for (int th = 1; th <= 2; th++) {
            lb_isa_set((lb_isa)isa);
            lb_pool *pool = NULL;
            lb_wspace *ws = NULL;
            const lb_weight *wl[1] = {w};
            REQUIRE(lb_pool_create(th, &pool) == LB_OK && lb__wspace_create(wl, 1, nt, th, &ws) == LB_OK, "%s", lb_errmsg());
            for (int64_t n = 1; n <= nt; n += n == 2 ? 3 : 1) {
                for (int64_t i = 0; i < n * rows; i++) y[i] = NAN;
                lb__linear(ws, pool, w, x, n, cols, y, rows);
                CHECK(!memcmp(y, want, sizeof(float) * (size_t)(n * rows)), "%s: %s, %d threads, %lld tokens differ",
                      what, lb_isa_name((lb_isa)isa), th, (long long)n);
            }
            lb__wspace_free(ws);
            lb_pool_free(pool);
        }
    lb_isa_set(saved);
    free(x); free(want); free(y); free(row); free(vk); free(xk);
}

static void test_products(void)
{
    static const int64_t shapes[][2] = {{1, 1}, {3, 7}, {5, 16}, {7, 33}, {17, 130}, {40, 257}, {9, 264}, {4, 512}};
    static const struct { const char *pat; double ratio; lb_sparse_layout lay; } pats[] = {
        {"unstructured", 0.5, LB_SPARSE_BITMASK}, {"unstructured", 0.5, LB_SPARSE_INDEX},
        {"unstructured", 0.97, LB_SPARSE_AUTO}, {"2:4", 0, LB_SPARSE_AUTO}, {"1:4", 0, LB_SPARSE_AUTO},
        {"8:2:8", 0, LB_SPARSE_AUTO}};
    static const lb_dtype dts[] = {LB_DTYPE_F32, LB_DTYPE_BF16, LB_DTYPE_F16};
    for (int s = 0; s < 8; s++)
        for (int i = 0; i < 6; i++)
            for (int d = 0; d < 3; d++) {
                int64_t rows = shapes[s][0], cols = shapes[s][1];
                float *w = rand_w(rows, cols);
                uint8_t *k = malloc((size_t)(rows * cols));
                lb_prune_opts o = {.pattern = pats[i].pat, .ratio = pats[i].ratio};
                lb__pattern p;
                lb__pattern_parse(pats[i].pat, pats[i].ratio, &p);
                REQUIRE(lb_prune_matrix(&o, w, rows, cols, k) == LB_OK, "%s", lb_errmsg());
                lb_wstore st = {0};
                lb_weight sw;
                char what[96];
                snprintf(what, sizeof what, "%s %s [%lld, %lld]", pats[i].pat, lb_dtype_name(dts[d]), (long long)rows,
                         (long long)cols);
                REQUIRE(lb__weight_sparse(&st, w, k, rows, cols, dts[d], p.kind == LB__PAT_VNM ? p.v : 0,
                                          p.kind ? p.n : 0, p.kind ? p.m : 0, pats[i].lay, &sw) == LB_OK,
                        "%s: %s", what, lb_errmsg());
                if (pats[i].ratio > 0.9 && cols > 200) CHECK(sw.u.sparse.idx, "%s: auto layout should be the index list", what);
                if (pats[i].lay == LB_SPARSE_AUTO && pats[i].ratio < 0.9) CHECK(sw.u.sparse.mask, "%s: auto layout should be the bitmask", what);
                if (p.kind && cols % 8 == 0) CHECK(sw.u.sparse.p == p.n * 8 / p.m, "%s: fused kernel not chosen (p %d)", what, sw.u.sparse.p);
                check_products(&sw, w, what);
                lb__wstore_free(&st);
                free(w); free(k);
            }
}

/* Packed values (prune + quantize): products bit-exact with lb_format_dot
 * of the packed row and the gathered inputs on every ISA and thread count. */
static void test_products_packed(void)
{
    static const struct { int64_t rows, cols; const char *pat, *fmt; } cases[] = {
        {4, 512, "2:4", "int4_g32"}, {3, 256, "4:8", "int4_g32_asym"}, {5, 128, "1:4", "mxfp4"},
        {6, 64, "2:4", "nvfp4"}, {7, 128, "8:2:8", "int8_g32"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t rows = cases[i].rows, cols = cases[i].cols;
        float *w = rand_w(rows, cols);
        uint8_t *k = malloc((size_t)(rows * cols));
        lb_prune_opts o = {.pattern = cases[i].pat};
        lb__pattern p;
        lb__pattern_parse(cases[i].pat, 0, &p);
        REQUIRE(lb_prune_matrix(&o, w, rows, cols, k) == LB_OK, "%s", lb_errmsg());
        int64_t kk = cols * p.n / p.m;
        float *c = malloc(sizeof(float) * (size_t)(rows * kk));
        for (int64_t j = 0, n = 0; j < rows * cols; j++)
            if (k[j]) c[n++] = w[j];
        const lb_format *f = lb_format_find(cases[i].fmt);
        lb_qmatrix q;
        lb_quantize_opts qo = {0};
        REQUIRE(lb_quantize_matrix(lb_quantizer_find("rtn"), f, &qo, c, rows, kk, &q) == LB_OK, "%s", lb_errmsg());
        REQUIRE(lb_qmatrix_dequantize(&q, c) == LB_OK, "%s", lb_errmsg());
        for (int64_t j = 0, n = 0; j < rows * cols; j++)
            if (k[j]) w[j] = c[n++];
        lb_wstore st = {0};
        lb_weight sw;
        char what[96];
        snprintf(what, sizeof what, "%s %s [%lld, %lld]", cases[i].pat, cases[i].fmt, (long long)rows, (long long)cols);
        REQUIRE(lb__weight_sparse_packed(&st, k, rows, cols, f, q.tensor_scale, q.packed, p.kind == LB__PAT_VNM ? p.v : 0,
                                         p.n, p.m, &sw) == LB_OK, "%s: %s", what, lb_errmsg());
        float *row = malloc(sizeof(float) * (size_t)cols);
        for (int64_t r = 0; r < rows; r++) {   /* decoded rows = the quantized kept values in place */
            lb__weight_row(&sw, r, row);
            CHECK(!memcmp(row, w + r * cols, sizeof(float) * (size_t)cols), "%s: row %lld decodes differently", what, (long long)r);
        }
        check_products(&sw, w, what);
        free(row);
        lb__wstore_free(&st);
        lb_qmatrix_free(&q);
        free(w); free(k); free(c);
    }
    lb_wstore st = {0};   /* a kept count padded to whole blocks past the row's inputs is refused */
    uint8_t k[48];
    for (int i = 0; i < 48; i++) k[i] = i != 5;
    uint8_t packed[64] = {0};
    lb_weight sw;
    CHECK(lb__weight_sparse_packed(&st, k, 1, 48, lb_format_find("int4_g32"), 1, packed, 0, 0, 0, &sw) == LB_ERR_ARG &&
          strstr(lb_errmsg(), "more than its 48 inputs"), "47 kept into int4_g32: '%s'", lb_errmsg());
    lb__wstore_free(&st);
}

/* ---- files: save / load bit-exact, corrupt index data refused */

static char tmp_path[64];
static const char *tmpfile_path(void)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/lb_sparse_%d.safetensors", (int)getpid());
    return tmp_path;
}

static bool same_sparse(const lb_weight *a, const lb_weight *b)
{
    const lb_wsparse *x = &a->u.sparse, *y = &b->u.sparse;
    if (a->rep != &lb__wrep_sparse || b->rep != &lb__wrep_sparse || a->dtype != b->dtype || x->nnz != y->nnz ||
        x->v != y->v || x->n != y->n || x->m != y->m || !x->mask != !y->mask || x->fmt != y->fmt ||
        x->tensor_scale != y->tensor_scale)
        return false;
    size_t vb = x->fmt ? (size_t)a->rows * x->row_bytes : (size_t)x->nnz * lb_dtype_size(a->dtype);
    bool ok = !memcmp(a->data, b->data, vb) &&
              !memcmp(x->off, y->off, sizeof(int64_t) * (size_t)(a->rows + 1));
    if (x->mask) ok = ok && !memcmp(x->mask, y->mask, (size_t)a->rows * x->mask_bytes);
    else ok = ok && !memcmp(x->idx, y->idx, 2 * (size_t)x->nnz);
    return ok;
}

static void test_roundtrip(void)
{
    static const struct { const char *pat; double ratio; const char *dt, *fmt; } cases[] = {
        {"2:4", 0, "bf16", NULL}, {"unstructured", 0.95, "f32", NULL}, {"8:2:8", 0, "f16", NULL},
        {"unstructured", 0.5, NULL, NULL}, {"unstructured", 1.0 / 3, NULL, "int4_g32_asym"}, {"1:3", 0, NULL, "nvfp4"}};
    int32_t tok[12] = {1, 5, 9, 22, 3, 40, 7, 7, 60, 2, 11, 30};
    for (int c = 0; c < 6; c++) {
        tmodel t;
        lb_dtype dt;
        lb_config cfg = variant(c == 3 ? 1 : 0, &dt);   /* the last: Qwen2-like, BF16, biases, untied */
        build(&t, cfg, dt);
        lb_model *q = NULL, *back = NULL;
        lb_model_prune_opts o = {.p = {.pattern = cases[c].pat, .ratio = cases[c].ratio}, .dtype = cases[c].dt,
                                 .format = cases[c].fmt, .n_threads = 2};
        lb_prune_report rep;
        REQUIRE(lb_model_prune(&t.m, &o, &q, &rep) == LB_OK, "%s", lb_errmsg());
        CHECK(rep.n_pruned == 14, "%s: %lld linears pruned", cases[c].pat, (long long)rep.n_pruned);
        CHECK(lb_model_save(q, tmpfile_path()) == LB_OK, "%s", lb_errmsg());
        CHECK(lb_model_load(tmpfile_path(), &back) == LB_OK, "%s: %s", cases[c].pat, lb_errmsg());
        if (back) {
            lb__wname a[64], b[64];
            int64_t n = lb__model_names(q, a, 64);
            CHECK(lb__model_names(back, b, 64) == n, "names");
            for (int64_t i = 0; i < n; i++)
                if (a[i].linear) CHECK(same_sparse(a[i].w, b[i].w), "%s: %s differs after load", cases[c].pat, a[i].name);
            float *l1 = malloc(sizeof(float) * 12 * 67), *l2 = malloc(sizeof(float) * 12 * 67);
            if (c == 3) CHECK(a[1].w->dtype == LB_DTYPE_BF16, "values keep the model's BF16");
            if (c >= 4) {   /* packed where the 48 inputs allow it */
                CHECK(q->layers[0].wq.u.sparse.fmt == lb_format_find(cases[c].fmt), "%s: q_proj not packed", cases[c].fmt);
                const lb_weight *d = &q->layers[0].w_down;
                if (c == 4)   /* unstructured: down_proj's 100 inputs keep 67, padded to 3 blocks of 32 */
                    CHECK(d->u.sparse.fmt && d->u.sparse.nnz == d->rows * 67 && d->u.sparse.k == 96,
                          "down_proj: %lld kept, %lld packed", (long long)d->u.sparse.nnz, (long long)d->u.sparse.k);
                else          /* 1:3 keeps 34 of 100: no whole block, F32 values */
                    CHECK(!d->u.sparse.fmt && d->dtype == LB_DTYPE_F32, "down_proj packed");
            }
            lb_session *s1 = NULL, *s2 = NULL;
            lb_session_opts so = {.n_threads = 1, .max_ctx = 12};
            REQUIRE(!lb_session_create(q, &so, &s1) && !lb_session_create(back, &so, &s2), "%s", lb_errmsg());
            CHECK(!lb_forward_all(s1, tok, 12, l1) && !lb_forward_all(s2, tok, 12, l2), "%s", lb_errmsg());
            CHECK(!memcmp(l1, l2, sizeof(float) * 12 * 67), "%s: logits differ after save/load", cases[c].pat);
            lb_session_free(s1); lb_session_free(s2);
            free(l1); free(l2);
        }
        lb_prune_report_free(&rep);
        lb_model_free(back);
        lb_model_free(q);
        unbuild(&t);
        unlink(tmpfile_path());
    }
}

/* Damage one sparse weight's index data in memory, save, and expect the
 * load to refuse the file with a message naming the weight. */
static void expect_refused(lb_model *q, const char *why)
{
    CHECK(lb_model_save(q, tmpfile_path()) == LB_OK, "%s", lb_errmsg());
    lb_model *back = NULL;
    lb_status s = lb_model_load(tmpfile_path(), &back);
    CHECK(s == LB_ERR_FORMAT && strstr(lb_errmsg(), "sparse weight 'model.layers.0.self_attn.q_proj.weight'"),
          "%s: load gave %d '%s'", why, s, lb_errmsg());
    lb_model_free(back);
    unlink(tmpfile_path());
}

static void test_corrupt(void)
{
    for (int c = 0; c < 3; c++) {
        tmodel t;
        build(&t, base_cfg(), LB_DTYPE_F32);
        lb_model *q = NULL;
        lb_model_prune_opts o = {.p = {.pattern = c ? "unstructured" : "2:4", .ratio = c == 1 ? 0.97 : 1.0 / 3},
                                 .format = c == 2 ? "int4_g32" : NULL};
        REQUIRE(lb_model_prune(&t.m, &o, &q, NULL) == LB_OK, "%s", lb_errmsg());
        lb_weight *wq = &q->layers[0].wq;
        if (c == 2) {   /* packed values: a row keeping more than they hold, a format whose block does not fit */
            lb_wsparse *sp = &wq->u.sparse;
            REQUIRE(sp->fmt && sp->k == 32, "q_proj should be packed with 32 kept per row");
            uint8_t *m = (uint8_t *)sp->mask;
            int b = 0;
            while (m[b / 8] >> (b % 8) & 1) b++;   /* row 0's first pruned input (16 of 48 are) */
            m[b / 8] ^= (uint8_t)(1u << (b % 8));   /* row 0 keeps 33 */
            expect_refused(q, "packed row count");
            m[b / 8] ^= (uint8_t)(1u << (b % 8));
            sp->fmt = lb_format_find("int4_g64");
            expect_refused(q, "packed block");
            sp->fmt = lb_format_find("int4_g32");
            lb_model_free(q);
            unbuild(&t);
            continue;
        }
        if (c) {   /* the index layout (at this width the bitmask is smaller: built explicitly) */
            float *w = malloc(sizeof(float) * 48 * 48);
            uint8_t k[48 * 48];
            REQUIRE(lb__weight_f32(wq, w) == LB_OK, "%s", lb_errmsg());
            for (int i = 0; i < 48 * 48; i++) k[i] = w[i] != 0;
            REQUIRE(lb__weight_sparse(&q->store, w, k, 48, 48, LB_DTYPE_F32, 0, 0, 0, LB_SPARSE_INDEX, wq) == LB_OK,
                    "%s", lb_errmsg());
            free(w);
        }
        lb_wsparse *sp = &wq->u.sparse;
        if (!c) {
            uint8_t *m = (uint8_t *)sp->mask;
            m[3] ^= 0x01;                  /* a group of 4 now keeps 1 or 3: count and pattern break */
            expect_refused(q, "flipped bit");
            m[3] ^= 0x01;
            uint8_t save = m[1];
            m[1] = (uint8_t)((save & 0xf0) | ((save & 0x0f) == 0x3 ? 0x5 : 0x3)); /* same counts, other inputs */
            CHECK(lb_model_save(q, tmpfile_path()) == LB_OK, "%s", lb_errmsg());   /* still a valid 2:4 mask */
            lb_model *back = NULL;
            CHECK(lb_model_load(tmpfile_path(), &back) == LB_OK, "a valid changed mask refused: %s", lb_errmsg());
            lb_model_free(back);
            m[1] = save;
            sp->v = 4; sp->n = 2; sp->m = 8;   /* claim 4:2:8: a 2:4 mask keeps 4 of every 8 */
            expect_refused(q, "pattern claim");
        } else {
            REQUIRE(sp->idx, "index layout expected at 97%%");
            uint16_t *ix = (uint16_t *)sp->idx, save = ix[0];
            ix[0] = 60000;
            expect_refused(q, "index out of range");
            ix[0] = save;
            int64_t *off = (int64_t *)sp->off, o1 = off[1];
            off[1] = off[2] + 1;
            expect_refused(q, "offsets decreasing");
            off[1] = o1;
        }
        lb_model_free(q);
        unbuild(&t);
    }
}

/* ---- model level */

static void test_model_bad_input(void)
{
    tmodel t;
    build(&t, base_cfg(), LB_DTYPE_F32);
    lb_model *q = (lb_model *)1;
    lb_model_prune_opts o = {.p = {.criterion = "wanda", .pattern = "2:4"}};
    CHECK(lb_model_prune(&t.m, &o, &q, NULL) == LB_ERR_ARG && strstr(lb_errmsg(), "needs calibration") && !q,
          "wanda without statistics: '%s'", lb_errmsg());
    o = (lb_model_prune_opts){.p = {.pattern = "2:4"}, .dtype = "int4"};
    CHECK(lb_model_prune(&t.m, &o, &q, NULL) == LB_ERR_ARG && strstr(lb_errmsg(), "dtype"), "dtype: '%s'", lb_errmsg());
    o = (lb_model_prune_opts){.p = {.pattern = "5:4"}};
    CHECK(lb_model_prune(&t.m, &o, &q, NULL) == LB_ERR_ARG, "5:4 accepted");
    const char *keep[] = {"*mlp*"};
    o = (lb_model_prune_opts){.p = {.pattern = "2:4"}, .keep = keep, .n_keep = 1};
    lb_prune_report rep;
    REQUIRE(lb_model_prune(&t.m, &o, &q, &rep) == LB_OK, "%s", lb_errmsg());
    CHECK(rep.n_pruned == 8, "--keep *mlp*: %lld pruned", (long long)rep.n_pruned);
    CHECK(q->layers[0].w_up.rep == &lb__wrep_dense && q->layers[0].wq.rep == &lb__wrep_sparse, "keep ignored");
    lb_model *q2 = NULL;   /* pruning a pruned model is refused */
    o.n_keep = 0;
    CHECK(lb_model_prune(q, &o, &q2, NULL) == LB_ERR_UNSUPPORTED && !q2, "re-pruning: '%s'", lb_errmsg());
    lb_prune_report_free(&rep);
    lb_model_free(q);
    unbuild(&t);
}

/* lb_model_prune with joint: each linear whose kept count fits (4:6 keeps 32
 * of dim 48) is stored with exactly lb_prune_quantize_matrix's packed bytes
 * for the collector's statistics; down_proj (100 inputs: 66 kept) keeps F32
 * values; save/load gives the same logits; joint without sparsegpt or a
 * format is refused. */
static void test_model_joint(void)
{
    tmodel t;
    build(&t, base_cfg(), LB_DTYPE_F32);
    int32_t tok[64];
    for (int i = 0; i < 64; i++) tok[i] = (int32_t)((i * 37 + 5) % 67);
    lb_model *q = (lb_model *)1, *back = NULL;
    lb_model_prune_opts o = {.p = {.criterion = "magnitude", .pattern = "4:6"}, .format = "int4_g32", .joint = 1};
    CHECK(lb_model_prune(&t.m, &o, &q, NULL) == LB_ERR_ARG && strstr(lb_errmsg(), "criterion sparsegpt") && !q,
          "joint with magnitude: '%s'", lb_errmsg());
    o = (lb_model_prune_opts){.p = {.criterion = "sparsegpt", .pattern = "4:6"}, .joint = 1, .tokens = tok, .n_tokens = 64};
    CHECK(lb_model_prune(&t.m, &o, &q, NULL) == LB_ERR_ARG && strstr(lb_errmsg(), "a format") && !q,
          "joint without a format: '%s'", lb_errmsg());
    o.format = "int4_g32";
    o.p.pattern = "unstructured";
    o.p.ratio = 0.5;
    CHECK(lb_model_prune(&t.m, &o, &q, NULL) == LB_ERR_UNSUPPORTED && strstr(lb_errmsg(), "N:M or V:N:M") && !q,
          "joint unstructured: '%s'", lb_errmsg());
    o.p.pattern = "4:6";
    o.ctx = 32;
    o.n_threads = 2;
    REQUIRE(lb_model_prune(&t.m, &o, &q, NULL) == LB_OK, "%s", lb_errmsg());
    const lb_wsparse *sp = &q->layers[1].wk.u.sparse;
    CHECK(sp->fmt == lb_format_find("int4_g32") && sp->k == 32, "k_proj not packed with 32 kept per row");
    CHECK(!q->layers[1].w_down.u.sparse.fmt && q->layers[1].w_down.dtype == LB_DTYPE_F32, "down_proj packed");
    lb_calib *cal = NULL;
    REQUIRE(lb_calib_collect(&t.m, tok, 64, &(lb_calib_opts){.ctx = 32, .n_threads = 1}, &cal) == LB_OK, "%s",
            lb_errmsg());
    const char *name = "model.layers.1.self_attn.k_proj.weight";
    float *w = malloc(sizeof(float) * 48 * 48);
    int64_t rows, cols;
    lb_calib_stats st;
    REQUIRE(lb_calib_stats_for(cal, name, &st) == LB_OK && lb_model_weight_f32(&t.m, name, w, &rows, &cols) == LB_OK,
            "%s", lb_errmsg());
    lb_prune_opts po = {.criterion = "sparsegpt", .pattern = "4:6", .calib = &st};
    lb_qmatrix qm;
    REQUIRE(lb_prune_quantize_matrix(&po, lb_format_find("int4_g32"), w, rows, cols, NULL, &qm) == LB_OK, "%s",
            lb_errmsg());
    CHECK(sp->row_bytes == qm.row_bytes && !memcmp(q->layers[1].wk.data, qm.packed, qm.row_bytes * (size_t)rows),
          "the model's k_proj is not lb_prune_quantize_matrix's result");
    lb_qmatrix_free(&qm);
    CHECK(lb_model_save(q, tmpfile_path()) == LB_OK && lb_model_load(tmpfile_path(), &back) == LB_OK, "%s",
          lb_errmsg());
    if (back) {
        float *l1 = malloc(sizeof(float) * 12 * 67), *l2 = malloc(sizeof(float) * 12 * 67);
        lb_session *s1 = NULL, *s2 = NULL;
        lb_session_opts so = {.n_threads = 1, .max_ctx = 12};
        REQUIRE(!lb_session_create(q, &so, &s1) && !lb_session_create(back, &so, &s2), "%s", lb_errmsg());
        CHECK(!lb_forward_all(s1, tok, 12, l1) && !lb_forward_all(s2, tok, 12, l2), "%s", lb_errmsg());
        CHECK(!memcmp(l1, l2, sizeof(float) * 12 * 67), "joint: logits differ after save/load");
        lb_session_free(s1); lb_session_free(s2);
        free(l1); free(l2);
    }
    unlink(tmpfile_path());
    free(w);
    lb_calib_free(cal);
    lb_model_free(back);
    lb_model_free(q);
    unbuild(&t);
}

/* A real H: the inputs of a real model's linears through the forward tap
 * (lb_calib_collect), Wanda and SparseGPT on that model's own weights
 * against NumPy. */
static void test_real_h(void)
{
    const char *py = test_find_python();
    char path[512], text[512];
    snprintf(path, sizeof path, "%s/tinystories-656k", test_models_dir());
    snprintf(text, sizeof text, "%s/tinystories/tinystories_val.txt", test_data_dir());
    if (!py) SKIP("python3 with numpy not found: real-H reference comparison not run");
    if (!test_file_exists(text)) SKIP("%s not found (LOWBIT_DATA)", text);
    lb_model *m = NULL;
    if (lb_model_load(path, &m)) SKIP("%s not loadable (LOWBIT_MODELS): %s", path, lb_errmsg());
    lb_tokenizer *tk = NULL;
    REQUIRE(lb_tokenizer_load(path, &tk) == LB_OK, "%s", lb_errmsg());
    FILE *f = fopen(text, "rb");
    char buf[6000];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    int32_t *tok = NULL;
    int64_t nt = 0;
    REQUIRE(lb_tokenizer_encode(tk, buf, len, 1, &tok, &nt) == LB_OK, "%s", lb_errmsg());
    lb_calib *cal = NULL;
    REQUIRE(lb_calib_collect(m, tok, lb__min64(nt, 512), &(lb_calib_opts){.ctx = 128, .n_threads = 2}, &cal) == LB_OK,
            "%s", lb_errmsg());
    static const char *names[] = {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"};
    for (int i = 0; i < 2; i++) {
        int64_t full, cols;
        REQUIRE(lb_model_weight_f32(m, names[i], NULL, &full, &cols) == LB_OK, "%s", lb_errmsg());
        int64_t rows = lb__min64(full, 48);   /* the first rows keep the test fast */
        float *w = malloc(sizeof(float) * (size_t)(full * cols));
        REQUIRE(lb_model_weight_f32(m, names[i], w, NULL, NULL) == LB_OK, "%s", lb_errmsg());
        lb_calib_stats st;
        REQUIRE(lb_calib_stats_for(cal, names[i], &st) == LB_OK && st.n == cols, "%s", lb_errmsg());
        vs_numpy(py, "wanda", "unstructured", 0.5, w, rows, cols, &st, 128);
        vs_numpy(py, "sparsegpt", "unstructured", 0.5, w, rows, cols, &st, 128);
        vs_numpy(py, "sparsegpt", "2:4", 0, w, rows, cols, &st, 128);
        if (cols % 64 == 0) vs_numpy_fmt(py, "sparsegpt", "2:4", 0, w, rows, cols, &st, 128, "int4_g32");
        free(w);
    }
    lb_calib_free(cal);
    free(tok);
    lb_tokenizer_free(tk);
    lb_model_free(m);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_patterns);
    RUN(test_numpy);
    RUN(test_joint_numpy);
    RUN(test_joint_bad_input);
    RUN(test_wanda_uses_inputs);
    RUN(test_bad_input);
    RUN(test_gather);
    RUN(test_products);
    RUN(test_products_packed);
    RUN(test_roundtrip);
    RUN(test_corrupt);
    RUN(test_model_bad_input);
    RUN(test_model_joint);
    RUN(test_real_h);
    return TEST_DONE();
}
