/* test_stamp.c: STaMP activations (src/weights/stamp.c; docs/activations.md).
 *   - the DCT-II and Haar matrices against a NumPy reference (DCT-II through
 *     the FFT of the symmetric extension, Haar by its own recursion), and
 *     orthonormal (T T^T = I);
 *   - T^T Q(T x): the identity transform with no 8-bit rows equals plain
 *     per-token int4 bit for bit, with all rows at 8 bits plain int8; the
 *     rows chosen for 8 bits are those of most energy; DCT and Haar with all
 *     rows at 8 bits stay within int8 error of x (the inverse is right);
 *   - on token-correlated inputs DCT at 4.25 bits has less error than the
 *     identity at 4.25 bits and than plain int4;
 *   - lb__linear: 1 and 2 threads give the same bits, batches longer than a
 *     segment work, one token (decode) is plain int4;
 *   - bad specs refused with one message; at model level the spec survives
 *     save/load and a one-token forward equals plain int4 activations. */
#include "weights/weights.h"
#include "harness.h"
#include "tstats.h"
#include <unistd.h>

static lb_rng rng;

static const char *ref_py =
    "import sys, numpy as np\n"
    "def dct(n):\n"
    "    T = np.zeros((n, n))\n"
    "    for t in range(n):\n"
    "        x = np.zeros(n); x[t] = 1\n"
    "        Y = np.fft.fft(np.concatenate([x, x[::-1]]))[:n]\n"
    "        k = np.arange(n)\n"
    "        X = np.real(Y * np.exp(-1j * np.pi * k / (2 * n))) / 2\n"
    "        X *= np.where(k == 0, np.sqrt(1.0 / n), np.sqrt(2.0 / n))\n"
    "        T[:, t] = X\n"
    "    return T\n"
    "def haar_vec(x):\n"
    "    x = x.copy(); n = len(x)\n"
    "    if n <= 1: return x\n"
    "    h = n // 2\n"
    "    a = (x[0:2*h:2] + x[1:2*h:2]) / np.sqrt(2); d = (x[0:2*h:2] - x[1:2*h:2]) / np.sqrt(2)\n"
    "    if n % 2: a = np.append(a, x[-1])\n"
    "    return np.concatenate([haar_vec(a), d])\n"
    "def haar(n):\n"
    "    return np.stack([haar_vec(np.eye(n)[t]) for t in range(n)], axis=1)\n"
    "for n in map(int, sys.argv[1:]):\n"
    "    for T in (dct(n), haar(n)):\n"
    "        print(' '.join('%.17g' % v for v in T.ravel()))\n";

static const int64_t sizes[] = {1, 2, 3, 5, 8, 13, 64, 100};
#define NSIZES 8

static void test_matrices(void)
{
    for (int i = 0; i < NSIZES; i++) {
        int64_t n = sizes[i];
        float *T = malloc(sizeof(float) * (size_t)(n * n));
        for (int kind = LB__STAMP_DCT; kind <= LB__STAMP_HAAR; kind++) {
            lb__stamp_matrix(kind, n, T);
            double e = 0;
            for (int64_t a = 0; a < n; a++)
                for (int64_t b = 0; b < n; b++) {
                    double s = 0;
                    for (int64_t t = 0; t < n; t++) s += (double)T[a * n + t] * T[b * n + t];
                    e = fmax(e, fabs(s - (a == b)));
                }
            CHECK(e < 1e-5, "kind %d n %lld: |T T^T - I| = %g", kind, (long long)n, e);
        }
        free(T);
    }
    const char *py = test_find_python();
    if (!py) { printf("SKIP test_stamp NumPy part: python3 with numpy not found (set LOWBIT_PYTHON)\n"); return; }
    char dir[] = "/tmp/lowbit_tstamp.XXXXXX", f[256], cmd[1024];
    REQUIRE(mkdtemp(dir), "mkdtemp");
    snprintf(f, sizeof f, "%s/ref.py", dir);
    FILE *fp = fopen(f, "w");
    REQUIRE(fp, "write %s", f);
    fputs(ref_py, fp);
    fclose(fp);
    int len = snprintf(cmd, sizeof cmd, "%s %s", py, f);
    for (int i = 0; i < NSIZES; i++) len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %lld", (long long)sizes[i]);
    FILE *p = popen(cmd, "r");
    REQUIRE(p, "popen");
    for (int i = 0; i < NSIZES; i++) {
        int64_t n = sizes[i];
        float *T = malloc(sizeof(float) * (size_t)(n * n));
        for (int kind = LB__STAMP_DCT; kind <= LB__STAMP_HAAR; kind++) {
            lb__stamp_matrix(kind, n, T);
            double e = 0, v;
            for (int64_t k = 0; k < n * n; k++) {
                REQUIRE(fscanf(p, "%lf", &v) == 1, "NumPy output short");
                e = fmax(e, fabs(v - T[k]));
            }
            CHECK(e < 1e-6, "%s n %lld: max diff %g against NumPy", kind == LB__STAMP_DCT ? "dct" : "haar",
                  (long long)n, e);
        }
        free(T);
    }
    CHECK(pclose(p) == 0, "reference script failed");
    unlink(f);
    rmdir(dir);
}

typedef struct qbuf {
    float *z, *T;
    uint8_t *buf;
    size_t bufs;
    int64_t tn;
    int tk;
} qbuf;

static void qdq(lb_pool *pool, const char *spec, float *x, int64_t nt, int64_t cols)
{
    lb__stamp st;
    const lb_format *low;
    REQUIRE(!lb__stamp_parse(spec, &st, &low), "%s: %s", spec, lb_errmsg());
    int64_t seg = nt < LB__STAMP_SEG ? nt : LB__STAMP_SEG;
    qbuf b = {.z = malloc(sizeof(float) * (size_t)(seg * cols)), .T = malloc(sizeof(float) * (size_t)(seg * seg)),
              .bufs = lb__act_row_bytes(cols)};
    b.buf = malloc(b.bufs * (size_t)nt);
    lb__stamp_qdq(&st, low, x, nt, cols, b.z, b.T, &b.tn, &b.tk, b.buf, b.bufs, pool);
    free(b.z); free(b.T); free(b.buf);
}

/* Plain per-token quantize-dequantize of row x in format f (public API). */
static void plain_row(const char *f, const float *x, int64_t cols, float *y)
{
    const lb_format *fm = lb_format_find(f);
    uint8_t *pk = malloc(lb_format_row_bytes(fm, cols));
    float g = 1;
    lb_format_quantize(fm, NULL, x, 1, cols, pk, &g);
    lb_format_dequantize(fm, pk, g, 1, cols, y);
    free(pk);
}

static float *randm(int64_t n) {
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)lb_rng_normal(&rng);
    return x;
}

static double err2(const float *a, const float *b, int64_t n)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return e;
}

static void test_qdq(void)
{
    int64_t nt = 16, cols = 64, N = nt * cols;
    float *x = randm(N), *y = malloc(sizeof(float) * (size_t)N), *r = malloc(sizeof(float) * (size_t)N);
    for (int64_t i = 0; i < cols; i++) { x[3 * cols + i] *= 9; x[11 * cols + i] *= 5; }   /* two loud tokens */
    /* identity, no 8-bit rows = plain int4; all rows 8-bit = plain int8 */
    const char *cases[][2] = {{"stamp-id:int4:4", "int4_g32"}, {"stamp-id:int4:8", "int8_g32"}};
    for (int c = 0; c < 2; c++) {
        memcpy(y, x, sizeof(float) * (size_t)N);
        qdq(NULL, cases[c][0], y, nt, cols);
        for (int64_t t = 0; t < nt; t++) plain_row(cases[c][1], x + t * cols, cols, r + t * cols);
        CHECK(!memcmp(y, r, sizeof(float) * (size_t)N), "%s differs from plain %s", cases[c][0], cases[c][1]);
    }
    /* 4.5 bits over 16 tokens: floor(16 * 0.5 / 4) = 2 rows at 8 bits, the two loud ones */
    memcpy(y, x, sizeof(float) * (size_t)N);
    qdq(NULL, "stamp-id:int4:4.5", y, nt, cols);
    for (int64_t t = 0; t < nt; t++)
        plain_row(t == 3 || t == 11 ? "int8_g32" : "int4_g32", x + t * cols, cols, r + t * cols);
    CHECK(!memcmp(y, r, sizeof(float) * (size_t)N), "8-bit rows are not the two of most energy");
    /* the inverse: all rows at 8 bits stay within int8 error of x */
    for (int64_t t = 0; t < nt; t++) plain_row("int8_g32", x + t * cols, cols, r + t * cols);
    double e8 = err2(r, x, N);
    const char *k8[] = {"stamp-dct:int4:8", "stamp-haar:int4:8"};
    for (int c = 0; c < 2; c++) {
        memcpy(y, x, sizeof(float) * (size_t)N);
        qdq(NULL, k8[c], y, nt, cols);
        double e = err2(y, x, N), xx = 0;
        for (int64_t i = 0; i < N; i++) xx += (double)x[i] * x[i];
        CHECK(e < 4 * e8 && e < 1e-3 * xx, "%s: error %g (plain int8 %g, |x|^2 %g)", k8[c], e, e8, xx);
    }
    free(x); free(y); free(r);
}

/* Tokens that share a slowly varying direction (as neighbouring tokens'
 * activations do): DCT puts the energy in a few rows. */
static void test_correlated(void)
{
    int64_t nt = 64, cols = 128, N = nt * cols;
    float *base = randm(cols), *x = malloc(sizeof(float) * (size_t)N), *y = malloc(sizeof(float) * (size_t)N);
    for (int64_t t = 0; t < nt; t++)
        for (int64_t i = 0; i < cols; i++)
            x[t * cols + i] = base[i] * (float)(1 + 0.3 * sin(0.05 * (double)t)) * (i % 17 == 2 ? 20.0f : 1.0f) +
                              0.2f * (float)lb_rng_normal(&rng);
    const char *specs[] = {"stamp-id:int4:4", "stamp-id:int4:4.25", "stamp-haar:int4:4.25", "stamp-dct:int4:4.25"};
    double e[4];
    for (int c = 0; c < 4; c++) {
        memcpy(y, x, sizeof(float) * (size_t)N);
        qdq(NULL, specs[c], y, nt, cols);
        e[c] = err2(y, x, N);
        printf("%-22s squared error %.4g\n", specs[c], e[c]);
    }
    CHECK(e[3] < 0.5 * e[1] && e[1] <= e[0], "dct %g, identity at 4.25 %g, plain int4 %g", e[3], e[1], e[0]);
    CHECK(e[2] < e[1], "haar %g not below identity %g", e[2], e[1]);
    free(base); free(x); free(y);
}

static void test_linear(void)
{
    int64_t rows = 24, cols = 64;
    float *wd = randm(rows * cols);
    lb_weight w = lb__weight_dense(wd, LB_DTYPE_F32, rows, cols);
    REQUIRE(!lb__stamp_parse("stamp-dct:int4", &w.stamp, &w.act), "parse");
    CHECK(!strcmp(w.stamp.name, "stamp-dct:int4_g32:4.25"), "name %s", w.stamp.name);
    lb_pool *p2;
    REQUIRE(!lb_pool_create(2, &p2), "pool");
    int64_t nts[] = {1, 7, 600};
    for (int k = 0; k < 3; k++) {
        int64_t nt = nts[k];
        float *x = randm(nt * cols), *y1 = malloc(sizeof(float) * (size_t)(nt * rows)),
              *y2 = malloc(sizeof(float) * (size_t)(nt * rows)), *xr = malloc(sizeof(float) * (size_t)(nt * cols));
        lb_pool *pools[2] = {NULL, p2};
        float *ys[2] = {y1, y2};
        for (int p = 0; p < 2; p++) {
            lb_wspace *ws;
            const lb_weight *wp = &w;
            REQUIRE(!lb__wspace_create(&wp, 1, nt, lb_pool_threads(pools[p]), &ws), "wspace: %s", lb_errmsg());
            lb__linear(ws, pools[p], &w, x, nt, cols, ys[p], rows);
            lb__wspace_free(ws);
        }
        CHECK(!memcmp(y1, y2, sizeof(float) * (size_t)(nt * rows)), "nt %lld: 1 and 2 threads differ", (long long)nt);
        /* against the float product of the transformed-quantized-inverted input */
        memcpy(xr, x, sizeof(float) * (size_t)(nt * cols));
        if (nt == 1) plain_row("int4_g32", x, cols, xr);   /* decode: plain per-token int4 */
        else qdq(p2, "stamp-dct:int4", xr, nt, cols);
        double md = 0;
        for (int64_t t = 0; t < nt; t++)
            for (int64_t r = 0; r < rows; r++) {
                double s = 0, a = 0;
                for (int64_t i = 0; i < cols; i++) { s += (double)wd[r * cols + i] * xr[t * cols + i]; a += fabs(wd[r * cols + i] * xr[t * cols + i]); }
                md = fmax(md, fabs(s - y1[t * rows + r]) / (a + 1e-30));
            }
        CHECK(md < 1e-5, "nt %lld: product differs from the reference by %g (relative)", (long long)nt, md);
        free(x); free(y1); free(y2); free(xr);
    }
    lb_pool_free(p2);
    free(wd);
}

static void test_bad(void)
{
    const char *bad[][2] = {{"stamp-foo:int4", "unknown STaMP transform 'foo'"},
                            {"stamp-dct", "stamp-KIND:FORMAT"},
                            {"stamp-dct:int9", "'int9' is unknown"},
                            {"stamp-dct:int8", "under 8 bits"},
                            {"stamp-dct:int4:9", "[4, 8]"},
                            {"stamp-dct:int4:3.5", "[4, 8]"},
                            {"stamp-dct:int4:x", "average bits 'x'"}};
    for (int i = 0; i < 7; i++) {
        lb__stamp st;
        const lb_format *f;
        CHECK(lb__stamp_parse(bad[i][0], &st, &f) == LB_ERR_ARG && strstr(lb_errmsg(), bad[i][1]), "%s: %s",
              bad[i][0], lb_errmsg());
    }
}

static lb_status logits1(const lb_model *m, const int32_t *tok, int64_t n, float *out)
{
    lb_session *s;
    lb_status st = lb_session_create(m, &(lb_session_opts){.n_threads = 1, .max_ctx = 64, .max_batch = 16}, &s);
    if (st) return st;
    st = lb_forward(s, tok, n, out);
    lb_session_free(s);
    return st;
}

static void test_model(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tinystories-656k/model.safetensors", test_models_dir());
    if (!test_file_exists(path)) SKIP("no tinystories-656k");
    snprintf(path, sizeof path, "%s/tinystories-656k", test_models_dir());
    lb_model *m, *r;
    REQUIRE(!lb_model_load(path, &m), "load: %s", lb_errmsg());
    CHECK(lb_model_set_act(m, "stamp-dtc:int4", NULL) == LB_ERR_ARG && strstr(lb_errmsg(), "'dtc'"), "bad: %s",
          lb_errmsg());
    lb_model_info info;
    lb_model_get_info(m, &info);
    int64_t V = info.vocab_size;
    float *a = malloc(sizeof(float) * (size_t)V), *b = malloc(sizeof(float) * (size_t)V);
    int32_t tok[12] = {1, 400, 62, 9, 77, 310, 5, 98, 1022, 3, 14, 15};
    REQUIRE(!lb_model_set_act(m, "int4", NULL), "int4");
    REQUIRE(!logits1(m, tok, 1, a), "forward");
    REQUIRE(!lb_model_set_act(m, "stamp-haar:int4:4.5", NULL), "stamp: %s", lb_errmsg());
    CHECK(!strcmp(lb_model_act(m), "stamp-haar:int4_g32:4.5"), "act %s", lb_model_act(m));
    REQUIRE(!logits1(m, tok, 1, b), "forward");
    CHECK(!memcmp(a, b, sizeof(float) * (size_t)V), "one token: STaMP differs from plain int4");
    REQUIRE(!logits1(m, tok, 12, a), "forward");
    char dir[] = "/tmp/lowbit_tstamp.XXXXXX", f[256];
    REQUIRE(mkdtemp(dir), "mkdtemp");
    snprintf(f, sizeof f, "%s/s.safetensors", dir);
    REQUIRE(!lb_model_save(m, f), "save: %s", lb_errmsg());
    REQUIRE(!lb_model_load(f, &r), "load: %s", lb_errmsg());
    CHECK(!strcmp(lb_model_act(r), "stamp-haar:int4_g32:4.5"), "loaded act %s", lb_model_act(r));
    REQUIRE(!logits1(r, tok, 12, b), "forward");
    CHECK(!memcmp(a, b, sizeof(float) * (size_t)V), "saved and loaded logits differ");
    lb_model_free(r);
    unlink(f);
    rmdir(dir);
    free(a); free(b);
    lb_model_free(m);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_matrices);
    RUN(test_qdq);
    RUN(test_correlated);
    RUN(test_linear);
    RUN(test_bad);
    RUN(test_model);
    return TEST_DONE();
}
