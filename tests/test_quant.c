/* test_quant.c: weight quantizers (src/quant) and lowbit model files.
 * Real weights come from ../shared/models (SKIP when absent). References:
 * lb_format_quantize for rtn (bit-exact), an explicit Sylvester Hadamard
 * matrix for the rotation, planted column scales for SINQ, and a write ->
 * load round trip compared bit for bit. */
#include "harness.h"
#include "quant/quant.h"
#include "core/safetensors.h"
#include "model/loader.h"
#include <sys/stat.h>
#include <unistd.h>


static const char *models[2] = {"stories260K/stories260K.bin", "tinystories-656k"};

static lb_model *load(const char *rel)
{
    lb_model *m = NULL;
    if (!test_file_exists(test_model_path(rel)) && strchr(rel, '.')) return NULL;
    struct stat st;
    if (stat(test_model_path(rel), &st) != 0) return NULL;
    if (lb_model_load(test_model_path(rel), &m)) { fprintf(stderr, "load %s: %s\n", rel, lb_errmsg()); return NULL; }
    return m;
}

/* A linear weight of m as F32 (owned). */
static float *weight(lb_model *m, const char *name, int64_t *rows, int64_t *cols)
{
    if (lb_model_weight_f32(m, name, NULL, rows, cols)) return NULL;
    float *w = malloc((size_t)(*rows * *cols) * sizeof *w);
    if (w && lb_model_weight_f32(m, name, w, rows, cols)) { free(w); return NULL; }
    return w;
}

static double rel_err(const float *a, const float *b, int64_t n)
{
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) { e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); s += (double)a[i] * a[i]; }
    return sqrt(e / s);
}

static double qerr(const char *method, const char *fmt, const float *w, int64_t rows, int64_t cols, lb_qmatrix *keep)
{
    lb_qmatrix q;
    lb_quantize_opts o = {.seed = 7};
    const lb_format *f = lb_format_find(fmt);
    if (lb_quantize_matrix(lb_quantizer_find(method), f, &o, w, rows, cols, &q)) return -1;
    float *y = malloc((size_t)(rows * cols) * sizeof *y);
    double e = lb_qmatrix_dequantize(&q, y) ? -1 : rel_err(w, y, rows * cols);
    free(y);
    if (keep) *keep = q; else lb_qmatrix_free(&q);
    return e;
}

static void test_registry(void)
{
    const char *names[] = {"rtn", "sinq", "hadamard+rtn", "hadamard+sinq"};
    CHECK(lb_quantizer_count() >= 4, "count %d", lb_quantizer_count());
    for (int i = 0; i < 4; i++) {
        const lb_quantizer *q = lb_quantizer_find(names[i]);
        CHECK(q && !strcmp(lb_quantizer_name(q), names[i]) && *lb_quantizer_describe(q), "%s", names[i]);
    }
    CHECK(!lb_quantizer_find("no-such-method") && !lb_quantizer_find(NULL) &&
          !lb_quantizer_at(lb_quantizer_count()) && !lb_quantizer_at(-1), "unknown");
    const lb_format *f;
    CHECK(!lb_quant_format_resolve("int4_asym", 64, &f) && f == lb_format_find("int4_g64_asym"), "family+group");
    CHECK(!lb_quant_format_resolve("int8_bf16", 32, &f) && f == lb_format_find("int8_g32_bf16"), "bf16 family");
    CHECK(!lb_quant_format_resolve("mxfp4", 0, &f) && f == lb_format_find("mxfp4"), "plain name");
    CHECK(!lb_quant_format_resolve("mxfp4", 32, &f), "matching group");
    CHECK(lb_quant_format_resolve("mxfp4", 64, &f) == LB_ERR_ARG && !f, "conflicting group");
    CHECK(lb_quant_format_resolve("int4", 48, &f) == LB_ERR_ARG && strstr(lb_errmsg(), "power of two"), "%s",
          lb_errmsg());
    CHECK(lb_quant_format_resolve("int4", 256, &f) == LB_ERR_NOTFOUND, "no g256");
    CHECK(lb_quant_format_resolve("fp5", 0, &f) == LB_ERR_NOTFOUND && strstr(lb_errmsg(), "fp5"), "%s", lb_errmsg());
}

/* rtn is exactly the format's quantizer, for each scale rule (full: the
 * symmetric INT formats; the others refuse it). */
static void test_rtn_is_format(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED);
    int64_t rows = 7, cols = 128;
    float *w = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)lb_rng_normal(&r) * 0.02f;
    const char *fmts[] = {"mxfp4", "nvfp4", "int4_g32_asym", "nf4", "int3_g64", "ternary", "int8_ch"};
    for (size_t k = 0; k < sizeof fmts / sizeof *fmts; k++)
        for (int rule = 0; rule < 4; rule++) {
            const lb_format *f = lb_format_find(fmts[k]);
            lb_quantize_opts o = {.scale_rule = (lb_scale_rule)rule};
            lb_quant_opts fo = {(lb_scale_rule)rule};
            lb_qmatrix q;
            if (rule == LB_SCALE_FULL && (strncmp(fmts[k], "int", 3) || strstr(fmts[k], "asym"))) {
                CHECK(lb_quantize_matrix(lb_quantizer_find("rtn"), f, &o, w, rows, cols, &q) == LB_ERR_ARG &&
                      strstr(lb_errmsg(), "scale rule full applies to symmetric INT formats"), "%s full: %s", fmts[k],
                      lb_errmsg());
                continue;
            }
            REQUIRE(!lb_quantize_matrix(lb_quantizer_find("rtn"), f, &o, w, rows, cols, &q), "%s", lb_errmsg());
            size_t n = lb_format_row_bytes(f, cols) * (size_t)rows;
            uint8_t *ref = malloc(n);
            float g = 0;
            lb_format_quantize(f, &fo, w, rows, cols, ref, &g);
            CHECK(!memcmp(ref, q.packed, n) && g == q.tensor_scale && !q.col_scale && !q.hadamard_block, "%s rule %d",
                  fmts[k], rule);
            free(ref);
            lb_qmatrix_free(&q);
        }
    free(w);
}

/* Planted column scales: W = diag(r) Z diag(c). SINQ's t must follow c. */
static void test_sinq_planted(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 1);
    int64_t rows = 256, g = 32;
    float *w = malloc(sizeof(float) * (size_t)(rows * g)), t[32], c[32], rs[256];
    for (int64_t j = 0; j < g; j++) c[j] = (float)exp(1.5 * lb_rng_normal(&r));
    for (int64_t i = 0; i < rows; i++) rs[i] = (float)exp(0.5 * lb_rng_normal(&r));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < g; j++) w[i * g + j] = rs[i] * (float)lb_rng_normal(&r) * c[j];
    double ib, ia;
    lb__sinq_tile(w, rows, g, g, 16, t, &ib, &ia);
    CHECK(ia < ib && ia < 1.5, "imbalance %g -> %g", ib, ia);
    double m = 0, v = 0, gm = 0;
    for (int64_t j = 0; j < g; j++) { double l = log(t[j] / c[j]); m += l; v += l * l; gm += log(t[j]); }
    m /= (double)g;
    v = v / (double)g - m * m;
    CHECK(sqrt(v) < 0.15, "log(t/c) spread %g: t does not follow the planted column scales", sqrt(v));
    CHECK(fabs(gm / (double)g) < 1e-5, "t not normalized to geometric mean 1 (%g)", gm / (double)g);
    free(w);
}

/* On real weights: imbalance drops, SINQ's error <= RTN's on average (INT4
 * asym, equal group), int8 errors are tiny for every method. */
static void test_sinq_real(void)
{
    int tested = 0;
    for (int k = 0; k < 2; k++) {
        lb_model *m = load(models[k]);
        if (!m) continue;
        tested++;
        const char *ln[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                            "mlp.gate_proj", "mlp.up_proj"};
        double er[2][2] = {{0}}, n = 0;
        for (int64_t l = 0; l < m->cfg.n_layers; l++)
            for (int t = 0; t < 6; t++) {
                char name[96];
                int64_t rows, cols;
                snprintf(name, sizeof name, "model.layers.%lld.%s.weight", (long long)l, ln[t]);
                float *w = weight(m, name, &rows, &cols);
                REQUIRE(w, "%s", name);
                const char *fm[2] = {"int4_g32_asym", "int4_g64_asym"};
                for (int f = 0; f < 2; f++) {
                    lb_qmatrix q;
                    er[f][0] += qerr("rtn", fm[f], w, rows, cols, NULL);
                    er[f][1] += qerr("sinq", fm[f], w, rows, cols, &q);
                    CHECK(q.imbalance_after < q.imbalance_before, "%s %s imbalance %g -> %g", name, fm[f],
                          q.imbalance_before, q.imbalance_after);
                    lb_qmatrix_free(&q);
                }
                const char *all[] = {"rtn", "sinq", "hadamard+rtn", "hadamard+sinq"};
                for (int a = 0; a < 4; a++) {
                    double e = qerr(all[a], "int8_g32", w, rows, cols, NULL);
                    CHECK(e >= 0 && e < 0.01, "%s int8_g32 %s rel err %g", name, all[a], e);
                }
                n++;
                free(w);
            }
        for (int f = 0; f < 2; f++)
            CHECK(er[f][1] <= er[f][0], "%s g%d: mean rel err sinq %g > rtn %g", models[k], 32 << f, er[f][1] / n,
                  er[f][0] / n);
        lb_model_free(m);
    }
    if (!tested) SKIP("no models in %s", test_models_dir());
}

/* Explicit Sylvester Hadamard of order b (normalized), blocks along x. */
static void ref_rotate(const float *x, int64_t n, int64_t b, const int8_t *signs, double *out)
{
    for (int64_t k = 0; k < n / b; k++)
        for (int64_t i = 0; i < b; i++) {
            double s = 0;
            for (int64_t j = 0; j < b; j++)
                s += (__builtin_popcountll((unsigned long long)(i & j)) & 1 ? -1.0 : 1.0) * signs[k * b + j] * x[k * b + j];
            out[k * b + i] = s / sqrt((double)b);
        }
}

/* y = W x equals dequant(packed) (R x) with R built independently. */
static void test_rotation_identity(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 2);
    int64_t rows = 9, cols = 128;
    float *w = malloc(sizeof(float) * (size_t)(rows * cols)), x[128], y[128 * 9];
    double rx[128];
    for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)lb_rng_normal(&r);
    for (int64_t i = 0; i < cols; i++) x[i] = (float)lb_rng_normal(&r);
    const char *meth[2] = {"hadamard+rtn", "hadamard+sinq"};
    int64_t blocks[2] = {32, 0};
    for (int mi = 0; mi < 2; mi++)
        for (int bi = 0; bi < 2; bi++) {
            lb_qmatrix q;
            lb_quantize_opts o = {.hadamard_block = blocks[bi], .seed = TEST_SEED};
            REQUIRE(!lb_quantize_matrix(lb_quantizer_find(meth[mi]), lb_format_find("int8_g32"), &o, w, rows, cols, &q),
                    "%s", lb_errmsg());
            CHECK(q.hadamard_block == (blocks[bi] ? 32 : 128), "block %lld", (long long)q.hadamard_block);
            ref_rotate(x, cols, q.hadamard_block, q.hadamard_signs, rx);
            lb_qmatrix_dequantize(&q, y);
            float *p = malloc(sizeof(float) * (size_t)(rows * cols));
            lb_format_dequantize(q.fmt, q.packed, q.tensor_scale, rows, cols, p);
            for (int64_t i = 0; i < rows; i++) {
                double a = 0, b = 0, sc = 0;
                for (int64_t c = 0; c < cols; c++) {
                    a += (double)y[i * cols + c] * x[c];
                    b += (double)p[i * cols + c] * (q.col_scale ? q.col_scale[c] : 1.0f) * rx[c];
                    sc += fabs((double)w[i * cols + c] * x[c]);
                }
                CHECK(fabs(a - b) <= 1e-5 * sc, "%s row %lld: W x %g vs Q R x %g", meth[mi], (long long)i, a, b);
            }
            free(p);
            lb_qmatrix_free(&q);
        }
    free(w);
}

/* A row the block does not divide is quantized as the zero-padded row: the
 * packed bytes equal those of quantizing the padded matrix directly, for
 * every method (the rotation acts on the true columns only, so with
 * hadamard+rtn the check is against the rotated-then-padded matrix). */
static void test_padded(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 11);
    enum { R = 5, C = 44 };
    float w[R * C], wp[R * 64], wr[R * C], back[R * C];   /* padded widths are at most 64 */
    for (int i = 0; i < R * C; i++) w[i] = (float)lb_rng_normal(&r);
    const char *fmts[] = {"mxfp4", "int4_g32_asym", "nvfp4", "int4_g64"};
    const char *meth[] = {"rtn", "sinq", "hadamard+rtn"};
    for (int f = 0; f < 4; f++)
        for (int mi = 0; mi < 3; mi++) {
            const lb_format *fm = lb_format_find(fmts[f]);
            int64_t B = lb_format_block(fm), pc = (C + B - 1) / B * B;   /* 44 -> 48 or 64 */
            lb_quantize_opts o = {.seed = 7};
            lb_qmatrix q, qp;
            REQUIRE(!lb_quantize_matrix(lb_quantizer_find(meth[mi]), fm, &o, w, R, C, &q), "%s", lb_errmsg());
            CHECK(q.cols == C && q.row_bytes == lb_format_row_bytes(fm, pc), "%s: padded row bytes %zu", fmts[f],
                  q.row_bytes);
            memcpy(wr, w, sizeof w);
            if (q.hadamard_block) lb_hadamard_rows(wr, R, C, q.hadamard_block, q.hadamard_signs, 0);
            memset(wp, 0, sizeof wp);
            for (int i = 0; i < R; i++) memcpy(wp + i * pc, wr + i * C, C * sizeof(float));
            const char *base = mi == 1 ? "sinq" : "rtn";
            REQUIRE(!lb_quantize_matrix(lb_quantizer_find(base), fm, &o, wp, R, pc, &qp), "%s", lb_errmsg());
            CHECK(!memcmp(q.packed, qp.packed, q.row_bytes * R), "%s %s: padded codes differ from the padded matrix's",
                  fmts[f], meth[mi]);
            CHECK(!q.col_scale == !qp.col_scale && (!q.col_scale || !memcmp(q.col_scale, qp.col_scale, C * sizeof(float))),
                  "%s %s: column scales differ", fmts[f], meth[mi]);
            REQUIRE(!lb_qmatrix_dequantize(&q, back), "%s", lb_errmsg());
            double e = 0, n = 0;
            for (int i = 0; i < R * C; i++) { e += (back[i] - w[i]) * (back[i] - w[i]); n += w[i] * w[i]; }
            CHECK(sqrt(e / n) < 0.3, "%s %s: relative error %g", fmts[f], meth[mi], sqrt(e / n));
            lb_qmatrix_free(&q); lb_qmatrix_free(&qp);
        }
}

static void test_bad_shapes(void)
{
    float w[6 * 48] = {0};
    lb_qmatrix q;
    CHECK(lb_quantize_matrix(lb_quantizer_find("hadamard+rtn"), lb_format_find("int8_ch"), NULL, w, 6, 45, &q),
          "odd cols cannot rotate");
    CHECK(!q.packed && !q.col_scale && !q.hadamard_signs, "nothing left allocated");
    CHECK(lb_quantize_matrix(lb_quantizer_find("sinq"), lb_format_find("int4_ch_asym"), NULL, w, 6, 48, &q) == LB_OK,
          "per-row formats take any cols: %s", lb_errmsg());
    lb_qmatrix_free(&q);
}

/* ------------------------------------------------------------ model level */

static bool same_xform(const lb_xform *a, const lb_xform *b, int64_t cols)
{
    if (a->kind != b->kind || a->block != b->block || !a->signs != !b->signs || !a->scale != !b->scale ||
        a->seeded != b->seeded || a->seed != b->seed)
        return false;
    if (a->signs && memcmp(a->signs, b->signs, (size_t)cols)) return false;
    return !a->scale || !memcmp(a->scale, b->scale, (size_t)cols * 4);
}

static bool same_weight(const lb_weight *a, const lb_weight *b)
{
    if (a->rows != b->rows || a->cols != b->cols || a->rep != b->rep || a->n_in != b->n_in || a->dtype != b->dtype)
        return false;
    if (a->rep == &lb__wrep_block) {
        const lb_wblock *x = &a->u.block, *y = &b->u.block;
        if (x->fmt != y->fmt || x->tensor_scale != y->tensor_scale || x->row_bytes != y->row_bytes) return false;
        if (memcmp(a->data, b->data, x->row_bytes * (size_t)a->rows)) return false;
    } else if (memcmp(a->data, b->data, (size_t)(a->rows * a->cols) * lb_dtype_size(a->dtype)))
        return false;
    for (int i = 0; i < a->n_in; i++)
        if (!same_xform(&a->in[i], &b->in[i], a->cols)) return false;
    return true;
}

static char tmpdir[256];
static const char *tmp(const char *name)
{
    static char p[4][512];
    static int k;
    if (!*tmpdir) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/lowbit_tq.XXXXXX");
        if (!mkdtemp(tmpdir)) return "/nonexistent/x";
    }
    char *s = p[k++ & 3];
    snprintf(s, 512, "%s/%s", tmpdir, name);
    return s;
}

/* quantize -> save -> load: every weight identical (packed bytes, scales,
 * signs) and dequantized bit for bit equal. */
static void test_roundtrip(void)
{
    const char *fmts[] = {"int4_g32_asym", "mxfp4", "nvfp4", "nf4", "int3_g32", "int8_ch_bf16", "ternary", "mxfp6_e3m2",
                          "int4_g32", "int2_g64_bf16"};   /* the last two with the full rule (negative scales) */
    const char *meth[] = {"rtn", "sinq", "hadamard+rtn", "hadamard+sinq"};
    int tested = 0;
    for (int k = 0; k < 2; k++) {
        lb_model *m = load(models[k]);
        if (!m) continue;
        tested++;
        for (size_t fi = (size_t)k; fi < sizeof fmts / sizeof *fmts; fi += 1 + (size_t)k) {   /* 656k: every other */
            lb_model_quant_opts o = {.format = fmts[fi], .method = meth[fi % 4], .n_threads = 2,
                                     .q = {.scale_rule = fi >= 8 ? LB_SCALE_FULL : (lb_scale_rule)(fi % 3), .seed = 3}};
            lb_model *q = NULL, *b = NULL;
            lb_quant_report rep;
            REQUIRE(!lb_model_quantize(m, &o, &q, &rep), "%s", lb_errmsg());
            CHECK(rep.n_quantized > 0 || fi == 0, "%s: nothing quantized", fmts[fi]);
            const char *path = tmp("rt.safetensors");
            REQUIRE(!lb_model_save(q, path), "%s", lb_errmsg());
            REQUIRE(!lb_model_load(path, &b), "%s", lb_errmsg());
            CHECK(!memcmp(&q->cfg, &b->cfg, sizeof q->cfg), "config differs");
            int64_t n = lb__model_names(q, NULL, 0);
            lb__wname *na = calloc((size_t)n, sizeof *na), *nb = calloc((size_t)n, sizeof *nb);
            lb__model_names(q, na, n);
            lb__model_names(b, nb, n);
            for (int64_t i = 0; i < n; i++) {
                CHECK(same_weight(na[i].w, nb[i].w), "%s %s %s differs after the round trip", models[k], fmts[fi],
                      na[i].name);
                int64_t r, c;
                lb_model_weight_f32(q, na[i].name, NULL, &r, &c);
                float *x = malloc(sizeof(float) * (size_t)(r * c)), *y = malloc(sizeof(float) * (size_t)(r * c));
                CHECK(!lb_model_weight_f32(q, na[i].name, x, &r, &c) && !lb_model_weight_f32(b, na[i].name, y, &r, &c) &&
                      !memcmp(x, y, sizeof(float) * (size_t)(r * c)), "%s dequantized differs", na[i].name);
                free(x); free(y);
            }
            free(na); free(nb);
            lb_quant_report_free(&rep);
            lb_model_free(b);
            lb_model_free(q);
        }
        lb_model_free(m);
    }
    if (!tested) SKIP("no models in %s", test_models_dir());
}

/* Thread count, --keep and shape handling. */
static void test_model_opts(void)
{
    lb_model *m = load(models[1]);
    if (!m) SKIP("no tinystories-656k");
    const char *keep[] = {"*down_proj*", "model.layers.1.self_attn.q_proj.weight"};
    lb_model_quant_opts o = {.format = "int4_asym", .group = 64, .method = "sinq", .keep = keep, .n_keep = 2};
    lb_model *a = NULL, *b = NULL;
    lb_quant_report ra, rb;
    o.q.scale_rule = LB_SCALE_FULL;              /* refused before any work: int4_asym has a zero point */
    CHECK(lb_model_quantize(m, &o, &a, &ra) == LB_ERR_ARG && !a &&
          strstr(lb_errmsg(), "int4_g64_asym: scale rule full applies to symmetric INT formats"), "%s", lb_errmsg());
    o.q.scale_rule = LB_SCALE_FLOOR;
    o.n_threads = 1;
    REQUIRE(!lb_model_quantize(m, &o, &a, &ra), "%s", lb_errmsg());
    o.n_threads = 3;
    REQUIRE(!lb_model_quantize(m, &o, &b, &rb), "%s", lb_errmsg());
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        CHECK(same_weight(&a->layers[l].w_up, &b->layers[l].w_up), "threads change the result");
        CHECK(a->layers[l].w_down.rep == &lb__wrep_dense && a->layers[l].w_down.dtype == LB_DTYPE_F32, "down_proj kept");
    }
    CHECK(a->layers[1].wq.rep == &lb__wrep_dense && a->layers[0].wq.rep == &lb__wrep_block, "exact-name keep");
    int kept = 0;
    for (int64_t i = 0; i < ra.n_tensors; i++) kept += !strcmp(ra.tensors[i].status, "kept (--keep)");
    CHECK(kept == 3 && ra.n_kept_linear == 3 && ra.n_quantized == 11, "kept %d, report %lld/%lld", kept,
          (long long)ra.n_kept_linear, (long long)ra.n_quantized);
    CHECK(ra.linear_bits_per_weight > 4.5 && ra.linear_bits_per_weight < 32, "bits %g", ra.linear_bits_per_weight);
    lb_quant_report_free(&ra); lb_quant_report_free(&rb);
    lb_model_free(a); lb_model_free(b);
    /* unknown names: clear errors */
    lb_model *q = NULL;
    lb_model_quant_opts bad = {.format = "int4_g32", .method = "no-such-method"};
    CHECK(lb_model_quantize(m, &bad, &q, NULL) == LB_ERR_NOTFOUND && strstr(lb_errmsg(), "no-such-method") && !q, "%s",
          lb_errmsg());
    bad = (lb_model_quant_opts){.format = "int5_g32"};
    CHECK(lb_model_quantize(m, &bad, &q, NULL) == LB_ERR_NOTFOUND && !q, "%s", lb_errmsg());
    lb_model_free(m);
}

/* Copy a safetensors file, dropping one tensor and/or replacing one metadata value. */
static bool rewrite(const char *src, const char *dst, const char *drop, const char *key, const char *val)
{
    lb_st_file f;
    if (lb__st_open(src, &f)) return false;
    lb_st_writer *w = NULL;
    lb_status s = lb__st_writer_open(dst, &w);
    for (int64_t i = 0; !s && i < f.n_meta; i++)
        s = lb__st_writer_meta(w, f.meta_keys[i], key && !strcmp(key, f.meta_keys[i]) ? val : f.meta_vals[i]);
    for (int64_t i = 0; !s && i < f.n_tensors; i++)
        if (!drop || strcmp(drop, f.tensors[i].name))
            s = lb__st_writer_add(w, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].ndim, f.tensors[i].shape);
    for (int64_t i = 0; !s && i < f.n_tensors; i++)
        if (!drop || strcmp(drop, f.tensors[i].name))
            s = lb__st_writer_write(w, f.tensors[i].data, (size_t)(f.tensors[i].end - f.tensors[i].begin));
    if (!s) s = lb__st_writer_commit(w);
    else lb__st_writer_abort(w);
    lb__st_close(&f);
    return s == LB_OK;
}

static void expect_bad(const char *path, const char *needle)
{
    lb_model *m = NULL;
    lb_status s = lb_model_load(path, &m);
    CHECK(s == LB_ERR_FORMAT && !m && strstr(lb_errmsg(), needle), "want '%s', got %d: %s", needle, s, lb_errmsg());
    lb_model_free(m);
}

static void test_bad_files(void)
{
    lb_model *m = load(models[1]);
    if (!m) SKIP("no tinystories-656k");
    lb_model_quant_opts o = {.format = "int4_g32_asym", .method = "hadamard+sinq", .q = {.seed = 3}};
    lb_model *q = NULL;
    REQUIRE(!lb_model_quantize(m, &o, &q, NULL), "%s", lb_errmsg());
    const char *good = tmp("good.safetensors"), *bad = tmp("bad.safetensors");
    REQUIRE(!lb_model_save(q, good), "%s", lb_errmsg());
    const char *P = "model.layers.0.mlp.up_proj";
    char n[128], key[128];
    snprintf(key, sizeof key, "lowbit.tensor.%s", P);
    const char *drops[] = {"weight_scale", "weight_zero_point", "weight_packed", "weight_col_scale"};
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s.%s", P, drops[i]);
        REQUIRE(rewrite(good, bad, n, NULL, NULL), "rewrite");
        expect_bad(bad, i == 2 ? "model.layers.0.mlp.up_proj.weight" : n);
    }
    lb_st_file f;
    REQUIRE(!lb__st_open(good, &f), "%s", lb_errmsg());
    char meta[1024];
    snprintf(meta, sizeof meta, "%s", lb__st_meta(&f, key));
    lb__st_close(&f);
    struct { const char *from, *to, *needle; } edits[] = {
        {"\"group\": 32", "\"group\": 64", "group 64"},
        {"int4_g32_asym", "int4_g99_asym", "unknown format"},
        {"\"method\": \"hadamard+sinq\"", "\"method\": \"Magic!\"", "invalid method name"},
        {"\"shape\": [384, 128]", "\"shape\": [384, 64]", "does not match"},
        {"\"col_scale\": true", "\"col_scale\": false", "col_scale"},
        {"\"transform\": \"hadamard\"", "\"transform\": \"none\"", "transform"},
        {"\"transform\": \"hadamard\"", "\"transform\": \"fourier\"", "unknown transform"},
        {"\"hadamard_seed\": \"3\"", "\"hadamard_seed\": \"-3\"", "hadamard_seed is not"},
        {"\"hadamard_seed\": \"3\"", "\"hadamard_seed\": \"18446744073709551616\"", "hadamard_seed is not"},
        {"\"hadamard_seed\": \"3\"", "\"hadamard_seed\": 3", "hadamard_seed is not"},
        {", \"hadamard_seed\": \"3\"", "", "hadamard_signs' is missing"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        char *at = strstr(meta, edits[i].from), v[1024];
        REQUIRE(at, "metadata lacks %s: %s", edits[i].from, meta);
        snprintf(v, sizeof v, "%.*s%s%s", (int)(at - meta), meta, edits[i].to, at + strlen(edits[i].from));
        REQUIRE(rewrite(good, bad, NULL, key, v), "rewrite");
        expect_bad(bad, edits[i].needle);
    }
    REQUIRE(rewrite(good, bad, NULL, "lowbit.config", "{\"arch\": \"llama\"}"), "rewrite");
    expect_bad(bad, "lowbit.config");
    /* a failed save leaves nothing behind */
    CHECK(lb_model_save(q, tmp("no/such/dir.safetensors")) != LB_OK, "save into a missing folder");
    lb_model_free(q);
    lb_model_free(m);
}

/* Every linear's rotation of m (NULL when it has none). */
static lb_xform *rotation_of(lb_weight *w)
{
    for (int i = 0; i < w->n_in; i++)
        if (w->in[i].kind == LB_XFORM_HADAMARD) return &w->in[i];
    return NULL;
}

/* Rotated methods keep the seed of their signs, not a byte per column: no
 * hadamard_signs tensor, int4_g32 stays at 4.5 bits/weight, the loaded
 * signs are lb_hadamard_signs(seed, cols); files of the older layout (a
 * signs tensor) still load to the same weights; both at once are refused. */
static void test_seeded_signs(void)
{
    lb_model *m = load(models[1]);
    if (!m) SKIP("no tinystories-656k");
    lb_model_quant_opts o = {.format = "int4_g32", .method = "hadamard+rtn", .q = {.seed = 12345678901234567ull}};
    lb_model *q = NULL, *b = NULL;
    lb_quant_report rep;
    REQUIRE(!lb_model_quantize(m, &o, &q, &rep), "%s", lb_errmsg());
    CHECK(rep.linear_bits_per_weight == 4.5, "int4_g32 hadamard+rtn: %.6f bits/weight, want 4.5", rep.linear_bits_per_weight);
    lb_quant_report_free(&rep);
    const char *path = tmp("seeded.safetensors"), *old = tmp("old.safetensors"), *bad = tmp("both.safetensors");
    REQUIRE(!lb_model_save(q, path), "%s", lb_errmsg());
    lb_st_file f;
    REQUIRE(!lb__st_open(path, &f), "%s", lb_errmsg());
    int signs_tensors = 0;
    for (int64_t i = 0; i < f.n_tensors; i++) signs_tensors += strstr(f.tensors[i].name, "hadamard_signs") != NULL;
    const char *meta = lb__st_meta(&f, "lowbit.tensor.model.layers.0.self_attn.q_proj");
    CHECK(!signs_tensors, "%d hadamard_signs tensors in a seeded file", signs_tensors);
    CHECK(meta && strstr(meta, "\"hadamard_seed\": \"12345678901234567\"") && strstr(meta, "\"bits_per_weight\": 4.5,"),
          "metadata: %s", meta ? meta : "(none)");
    lb__st_close(&f);
    REQUIRE(!lb_model_load(path, &b), "%s", lb_errmsg());
    int64_t L = m->cfg.n_layers;
    for (int64_t l = 0; l < L; l++) {
        lb_weight *wa = &q->layers[l].w_down, *wb = &b->layers[l].w_down;
        CHECK(same_weight(wa, wb), "layer %lld down_proj differs after the round trip", (long long)l);
        lb_xform *t = rotation_of(wb);
        REQUIRE(t && t->seeded && t->seed == 12345678901234567ull, "loaded rotation keeps its seed");
        int8_t *g = malloc((size_t)wb->cols);
        lb_hadamard_signs(12345678901234567ull, wb->cols, g);
        CHECK(!memcmp(g, t->signs, (size_t)wb->cols), "loaded signs are the seed's");
        free(g);
    }
    lb_model_free(b);
    /* the older layout: signs stored as an I8 tensor */
    int64_t n = lb__model_names(q, NULL, 0);
    lb__wname *na = calloc((size_t)n, sizeof *na);
    lb__model_names(q, na, n);
    for (int64_t i = 0; i < n; i++) {
        lb_xform *t = na[i].w->rep ? rotation_of(na[i].w) : NULL;
        if (t) t->seeded = false, t->seed = 0;
    }
    free(na);
    REQUIRE(!lb_model_save(q, old), "%s", lb_errmsg());
    REQUIRE(!lb__st_open(old, &f), "%s", lb_errmsg());
    signs_tensors = 0;
    for (int64_t i = 0; i < f.n_tensors; i++) signs_tensors += strstr(f.tensors[i].name, "hadamard_signs") != NULL;
    CHECK(signs_tensors == 7 * L, "%d hadamard_signs tensors in the old layout", signs_tensors);
    char key[] = "lowbit.tensor.model.layers.0.mlp.up_proj", v[1024];
    const char *om = lb__st_meta(&f, key);
    snprintf(v, sizeof v, "%s", om ? om : "");
    lb__st_close(&f);
    REQUIRE(!lb_model_load(old, &b), "%s", lb_errmsg());
    for (int64_t l = 0; l < L; l++)
        CHECK(same_weight(&q->layers[l].w_up, &b->layers[l].w_up), "old layout: layer %lld up_proj differs", (long long)l);
    lb_model_free(b);
    /* a signs tensor and a seed at once: refused */
    char *end = strrchr(v, '}');
    REQUIRE(end, "metadata %s", v);
    snprintf(end, sizeof v - (size_t)(end - v), ", \"hadamard_seed\": \"5\"}");
    REQUIRE(rewrite(old, bad, NULL, key, v), "rewrite");
    expect_bad(bad, "present but the metadata says hadamard_seed");
    lb_model_free(q);
    lb_model_free(m);
}

/* ------------------------------------------------------------- inference */

static lb_weight as_weight(const lb_qmatrix *q) { return lb__qmatrix_weight(q); }

/* y[i] = W_i x through the inference path (src/weights), with a workspace
 * sized for these weights alone. */
static void lin_n(lb_pool *pool, int n, const lb_weight *const *w, const float *x, int64_t nt, int64_t xs,
                  float *const *y, const int64_t *ys)
{
    lb_wspace *ws = NULL;
    if (lb__wspace_create(w, n, nt, pool ? lb_pool_threads(pool) : 1, &ws)) return;
    lb__linear_n(ws, pool, n, w, x, nt, xs, y, ys);
    lb__wspace_free(ws);
}

static void lin(lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *y, int64_t ys)
{
    lin_n(pool, 1, &w, x, nt, xs, &y, &ys);
}

/* lb__linear against dequantize-then-multiply (double), and bit-identical
 * across token counts (decode vs prefill), threads and ISA paths. */
static void test_linear(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 3);
    int64_t rows = 37, nt = 5;
    float *w = malloc(sizeof(float) * (size_t)(rows * 256)), *wd = malloc(sizeof(float) * (size_t)(rows * 256));
    float x[5 * 256], y1[5 * 37], y2[5 * 37], y3[5 * 37], y4[5 * 37];
    for (int64_t i = 0; i < rows * 256; i++) w[i] = (float)lb_rng_normal(&r) * 0.05f;
    for (int64_t i = 0; i < nt * 256; i++) x[i] = (float)lb_rng_normal(&r);
    lb_pool *pool = NULL;
    REQUIRE(!lb_pool_create(3, &pool), "pool");
    const char *fmts[] = {"mxfp4", "nvfp4", "nvint4", "int4_g32_asym", "int4_g128", "int8_g32", "mxint8", "nf4",
                          "int3_g64_asym", "mxfp8_e4m3", "ternary", "int2_ch"};
    const char *meth[] = {"rtn", "sinq", "hadamard+rtn", "hadamard+sinq"};
    lb_isa best = lb_isa_best();
    for (int64_t cols = 256; cols >= 172; cols -= 84)   /* 172: padded rows (blocks of 16..128 do not divide it) */
    for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++)
        for (int mi = 0; mi < 4; mi++) {
            lb_qmatrix q;
            lb_quantize_opts o = {.seed = 5, .hadamard_block = 64};
            REQUIRE(!lb_quantize_matrix(lb_quantizer_find(meth[mi]), lb_format_find(fmts[f]), &o, w, rows, cols, &q),
                    "%s", lb_errmsg());
            lb_weight W = as_weight(&q);
            lb_qmatrix_dequantize(&q, wd);
            lb_isa_set(LB_ISA_REF);
            lin(NULL, &W, x, nt, cols, y1, rows);
            lb_isa_set(best);
            lin(pool, &W, x, nt, cols, y2, rows);
            for (int64_t t = 0; t < nt; t++) lin(pool, &W, x + t * cols, 1, cols, y3 + t * rows, rows);
            lin(NULL, &W, x, 2, cols, y4, rows);
            CHECK(!memcmp(y1, y2, sizeof y1) && !memcmp(y2, y3, sizeof y2) && !memcmp(y2, y4, 2 * rows * sizeof(float)),
                  "%s %s: results differ across ISA / threads / batch", fmts[f], meth[mi]);
            {   /* three weights in one pass (the second one dense) give the same bits */
                lb_weight D = lb__weight_dense(w, LB_DTYPE_F32, rows, cols);
                const lb_weight *ws[3] = {&W, &D, &W};
                float z[3][5 * 37], zd[5 * 37];
                float *ys[3] = {z[0], z[1], z[2]};
                int64_t yst[3] = {rows, rows, rows};
                lin_n(pool, 3, ws, x, nt, cols, ys, yst);
                lin(pool, &D, x, nt, cols, zd, rows);
                CHECK(!memcmp(z[0], y2, sizeof y2) && !memcmp(z[2], y2, sizeof y2) && !memcmp(z[1], zd, sizeof zd),
                      "%s %s: lb__linear_n differs from single products", fmts[f], meth[mi]);
            }
            for (int64_t t = 0; t < nt; t++)
                for (int64_t i = 0; i < rows; i++) {
                    double ref = 0, mag = 0;
                    for (int64_t c = 0; c < cols; c++) {
                        ref += (double)wd[i * cols + c] * x[t * cols + c];
                        mag += fabs((double)wd[i * cols + c] * x[t * cols + c]);
                    }
                    CHECK(fabs(y2[t * rows + i] - ref) <= 2e-6 * mag + 1e-30, "%s %s t%lld r%lld: %g vs %g", fmts[f],
                          meth[mi], (long long)t, (long long)i, y2[t * rows + i], ref);
                }
            lb_qmatrix_free(&q);
        }
    lb_pool_free(pool);
    free(w); free(wd);
}

/* The multi-row decode kernels (qdot_avx512.c, qdot_avx2.c) through
 * lb__linear at awkward sizes: 1..9 rows (every tail of the 8- and 4-row
 * groups), cols = k blocks for k = 1, 2, 3, 5, 24 (partial chunks of 16
 * block scales), one and two tokens, with and without threads, on every
 * ISA path this machine has, against the reference lb_format_dot row by
 * row. Rows are either quantized weights or random bytes (any code, any
 * scale byte: NaN / Inf / subnormal scales included); equal means the same
 * bits, or both NaN. */
static bool same_float(float a, float b) { return (isnan(a) && isnan(b)) || !memcmp(&a, &b, sizeof a); }

static void test_qdot_kernels(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 11);
    const char *fmts[] = {"int4_g32", "int4_g32_asym", "int4_g64_bf16", "int4_g128_asym", "mxfp4", "nvfp4", "nvint4",
                          "nf4", "int8_g32", "int8_g64_asym", "int8_g32_bf16", "mxint8", "mxfp8_e4m3", "mxfp8_e5m2"};
    const int ks[] = {1, 2, 3, 5, 24};
    lb_isa best = lb_isa_best(), isas[] = {LB_ISA_AVX2, LB_ISA_AVX512};
    lb_pool *pool = NULL;
    REQUIRE(!lb_pool_create(2, &pool), "pool");
    int64_t checked = 0;
    for (size_t fi = 0; fi < sizeof fmts / sizeof *fmts; fi++) {
        const lb_format *f = lb_format_find(fmts[fi]);
        REQUIRE(f, "%s", fmts[fi]);
        for (int ki = 0; ki < 5; ki++)
            for (int mode = 0; mode < 2; mode++) {
                int64_t rows = 9, cols = ks[ki] * lb_format_block(f);
                size_t rb = lb_format_row_bytes(f, cols);
                float *w = malloc(sizeof(float) * (size_t)(rows * cols)), *x = malloc(sizeof(float) * (size_t)(2 * cols));
                float ref[2][9], y[9], yp[18];
                uint8_t *packed = malloc(rb * (size_t)rows);
                float ts = 1.0f;
                for (int64_t i = 0; i < 2 * cols; i++) x[i] = (float)lb_rng_normal(&r);
                if (mode == 0) {
                    for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)lb_rng_normal(&r) * 0.05f;
                    REQUIRE(!lb_format_quantize(f, NULL, w, rows, cols, packed, &ts), "%s", lb_errmsg());
                } else {
                    for (size_t i = 0; i < rb * (size_t)rows; i++) packed[i] = (uint8_t)lb_rng_u64(&r);
                    ts = 0.75f;
                }
                lb_isa_set(LB_ISA_REF);
                for (int t = 0; t < 2; t++)
                    for (int64_t i = 0; i < rows; i++) ref[t][i] = lb_format_dot(f, packed + (size_t)i * rb, ts, x + t * cols, cols);
                for (int ii = 0; ii < 2; ii++) {
                    if (isas[ii] > best) continue;
                    lb_isa_set(isas[ii]);
                    for (int64_t nr = 1; nr <= rows; nr++) {
                        lb_weight W = lb__weight_block(f, ts, packed, nr, cols);
                        lin(NULL, &W, x, 1, cols, y, nr);
                        lin(pool, &W, x, 2, cols, yp, nr);
                        bool ok = true;
                        for (int64_t i = 0; i < nr; i++)
                            ok = ok && same_float(y[i], ref[0][i]) && same_float(yp[i], ref[0][i]) &&
                                 same_float(yp[nr + i], ref[1][i]);
                        CHECK(ok, "%s %s, %lld rows x %lld cols, %s: differs from lb_format_dot", fmts[fi],
                              mode ? "random bytes" : "quantized", (long long)nr, (long long)cols, lb_isa_name(isas[ii]));
                        checked++;
                    }
                }
                lb_isa_set(best);
                free(w); free(x); free(packed);
            }
    }
    CHECK(checked > 0 || best < LB_ISA_AVX2, "no SIMD path checked");
    lb_pool_free(pool);
}

static float *logits_of(const lb_model *m, const int32_t *tok, int64_t n, int threads, int64_t batch)
{
    lb_session *s = NULL;
    lb_session_opts so = {.n_threads = threads, .max_ctx = n, .max_batch = batch};
    float *lg = malloc(sizeof(float) * (size_t)(n * m->cfg.vocab_size));
    if (lb_session_create(m, &so, &s) || lb_forward_all(s, tok, n, lg)) {
        fprintf(stderr, "forward: %s\n", lb_errmsg());
        free(lg);
        lg = NULL;
    }
    lb_session_free(s);
    return lg;
}

static double max_rel(const float *a, const float *b, int64_t n)
{
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) { d = fmax(d, fabs((double)a[i] - b[i])); m = fmax(m, fabs((double)b[i])); }
    return d / m;
}

/* The same model with every weight dequantized to dense F32 (original space). */
static lb_model *densify(lb_model *q)
{
    lb_model *d = lb__model_new();
    d->cfg = q->cfg;
    lb__model_alloc_layers(d);
    int64_t n = lb__model_names(q, NULL, 0);
    lb__wname *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
    lb__model_names(q, a, n);
    lb__model_names(d, b, n);
    for (int64_t i = 0; i < n; i++) {
        float *w = lb__wstore_alloc(&d->store, sizeof(float) * (size_t)(a[i].w->rows * a[i].w->cols));
        lb__weight_f32(a[i].w, w);
        *b[i].w = lb__weight_dense(w, LB_DTYPE_F32, a[i].w->rows, a[i].w->cols);
    }
    if (d->cfg.tied_embeddings) d->lm_head = d->tok_embed;
    free(a); free(b);
    return d;
}

/* Rotation alone keeps the logits (1e-4 relative); packed inference equals
 * the dense model of the dequantized weights and does not depend on
 * threads, batch size (prefill vs decode) or ISA. */
static void test_forward(void)
{
    int tested = 0;
    int32_t tok[32];
    for (int k = 0; k < 2; k++) {
        lb_model *m = load(models[k]);
        if (!m) continue;
        tested++;
        lb_rng r;
        lb_rng_seed(&r, TEST_SEED + 4);
        for (int i = 0; i < 32; i++) tok[i] = (int32_t)(lb_rng_u64(&r) % (uint64_t)m->cfg.vocab_size);
        int64_t nl = 32 * m->cfg.vocab_size;
        float *base = logits_of(m, tok, 32, 2, 16);
        REQUIRE(base, "base logits");
        int64_t blocks[2] = {0, 16};
        for (int b = 0; b < 2; b++) {
            lb_model_quant_opts o = {.format = "f32", .method = "hadamard+rtn", .q = {.hadamard_block = blocks[b], .seed = 9}};
            lb_model *rot = NULL;
            REQUIRE(!lb_model_quantize(m, &o, &rot, NULL), "%s", lb_errmsg());
            CHECK(lb__weight_xform(&rot->layers[0].wq, LB_XFORM_HADAMARD), "rotated");
            float *lr = logits_of(rot, tok, 32, 2, 16);
            REQUIRE(lr, "rotated logits");
            double e = max_rel(lr, base, nl);
            CHECK(e <= 1e-4, "%s: rotated model logits differ by %g relative", models[k], e);
            free(lr);
            lb_model_free(rot);
        }
        const char *fm[] = {"int4_g32_asym", "mxfp4", "nvfp4", "int8_g32"};
        const char *me[] = {"hadamard+sinq", "rtn", "hadamard+rtn", "sinq"};
        for (int f = 0; f < 4; f++) {
            lb_model_quant_opts o = {.format = fm[f], .method = me[f], .quantize_embeddings = f == 1, .q = {.seed = 2}};
            lb_model *q = NULL;
            REQUIRE(!lb_model_quantize(m, &o, &q, NULL), "%s", lb_errmsg());
            lb_model *d = densify(q);
            float *l1 = logits_of(q, tok, 32, 1, 32), *l2 = logits_of(q, tok, 32, 3, 1), *l3 = logits_of(d, tok, 32, 2, 16);
            lb_isa best = lb_isa_best();
            lb_isa_set(LB_ISA_REF);
            float *l4 = logits_of(q, tok, 32, 2, 7);
            lb_isa_set(best);
            REQUIRE(l1 && l2 && l3 && l4, "logits");
            CHECK(!memcmp(l1, l2, sizeof(float) * (size_t)nl) && !memcmp(l1, l4, sizeof(float) * (size_t)nl),
                  "%s %s: packed logits depend on threads / batch / ISA", models[k], fm[f]);
            double e = max_rel(l1, l3, nl);
            CHECK(e <= 1e-4, "%s %s %s: packed vs dequantized-dense logits differ by %g", models[k], fm[f], me[f], e);
            free(l1); free(l2); free(l3); free(l4);
            lb_model_free(d);
            lb_model_free(q);
        }
        free(base);
        lb_model_free(m);
    }
    if (!tested) SKIP("no models in %s", test_models_dir());
}

/* Per-layer output errors: ~0 for the rotation alone; layer 0's q_proj
 * against an independent computation of its real input
 * (attn_norm .* rmsnorm(embedding)) and the dequantized weight. */
static void test_layer_errors(void)
{
    lb_model *m = load(models[1]);
    if (!m) SKIP("no tinystories-656k");
    int32_t tok[40];
    for (int i = 0; i < 40; i++) tok[i] = (int32_t)((i * 37 + 5) % m->cfg.vocab_size);
    lb_model_quant_opts ro = {.format = "f32", .method = "hadamard+rtn"}, qo = {.format = "int4_g32_asym", .method = "sinq"};
    lb_model *rot = NULL, *q = NULL;
    REQUIRE(!lb_model_quantize(m, &ro, &rot, NULL) && !lb_model_quantize(m, &qo, &q, NULL), "%s", lb_errmsg());
    lb_quant_layer_error *e = NULL;
    int64_t n = 0;
    REQUIRE(!lb_quant_layer_errors(m, rot, tok, 40, &e, &n), "%s", lb_errmsg());
    CHECK(n == 6 * m->cfg.n_layers, "%lld entries", (long long)n);
    for (int64_t i = 0; i < n; i++) CHECK(e[i].quantized && e[i].rel_err < 1e-5, "%s: %g", e[i].name, e[i].rel_err);
    free(e);
    REQUIRE(!lb_quant_layer_errors(m, q, tok, 40, &e, &n), "%s", lb_errmsg());
    CHECK(!strcmp(e[0].name, "model.layers.0.self_attn.q_proj.weight"), "%s", e[0].name);
    int64_t d = m->cfg.dim, rows, cols;
    float *w = weight(m, e[0].name, &rows, &cols), *wq = weight(q, e[0].name, &rows, &cols);
    float *emb = malloc(sizeof(float) * (size_t)d), *g = malloc(sizeof(float) * (size_t)d);
    lb_model_weight_f32(m, "model.layers.0.input_layernorm.weight", g, NULL, NULL);
    double se = 0, sy = 0;
    for (int t = 0; t < 40; t++) {
        const float *E = (const float *)m->tok_embed.data + (int64_t)tok[t] * d;
        double ss = 0;
        for (int64_t i = 0; i < d; i++) ss += (double)E[i] * E[i];
        double sc = 1.0 / sqrt(ss / (double)d + m->cfg.norm_eps);
        for (int64_t i = 0; i < d; i++) emb[i] = (float)(E[i] * sc * g[i]);
        for (int64_t r = 0; r < rows; r++) {
            double a = 0, b = 0;
            for (int64_t c = 0; c < cols; c++) { a += (double)w[r * cols + c] * emb[c]; b += (double)wq[r * cols + c] * emb[c]; }
            se += (a - b) * (a - b); sy += a * a;
        }
    }
    double ref = sqrt(se / sy);
    CHECK(fabs(e[0].rel_err - ref) <= 0.01 * ref, "q_proj output error %g, independent %g", e[0].rel_err, ref);
    CHECK(e[0].rel_err > 0.01 && e[0].rel_err < 0.3, "%g", e[0].rel_err);
    free(e); free(w); free(wq); free(emb); free(g);
    lb_model_free(rot); lb_model_free(q); lb_model_free(m);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    RUN(test_registry);
    RUN(test_rtn_is_format);
    RUN(test_sinq_planted);
    RUN(test_sinq_real);
    RUN(test_rotation_identity);
    RUN(test_padded);
    RUN(test_bad_shapes);
    RUN(test_roundtrip);
    RUN(test_model_opts);
    RUN(test_bad_files);
    RUN(test_seeded_signs);
    RUN(test_linear);
    RUN(test_qdot_kernels);
    RUN(test_forward);
    RUN(test_layer_errors);
    if (*tmpdir) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return TEST_DONE();
}
