/* test_sparse_pad.c: padded storage of packed sparse values (weights/sparse.c,
 * docs/file-format.md "Sparse weights"): rows that keep different counts k_r
 * store their kept values then zeros up to k = ceil(max_r k_r / B) B, and
 * row r's product is lb_format_dot over all k values with the k_r gathered
 * inputs padded by zeros.
 *
 * Matrices with ragged masks (rows keeping 0 .. k values, awkward widths,
 * 8-bit, 4-bit, asymmetric, NV and per-row formats), packed here from the
 * test's own walk over the mask:
 *   - the padding decodes to exactly 0, lb__weight_row puts the decoded kept
 *     values at the kept inputs;
 *   - the product through lb__linear (every ISA the CPU has, 1 and 2
 *     threads, 1-3 tokens) equals the definition computed here (mask walked
 *     bit by bit, zeros appended, lb_format_dot on the reference ISA) bit
 *     for bit, and a double dot of the masked dequantized row within float
 *     rounding.
 * Models (tmodel.h): magnitude and Wanda keep exactly cols - floor(cols R)
 * in every row with --format, SparseGPT's unstructured masks (different
 * counts per row) are packed; each weight's bytes are the derived rows x
 * (row bytes of k + ceil(cols / 8)) + 12; save/load bit-exact with the same
 * logits; a row keeping more than the scale tensor's blocks hold, a scale
 * tensor short of blocks and a truncated file are refused with an error
 * naming the file and weight. */
#include "harness.h"
#include "kernels/sparse.h"
#include "sparsity/sparsity.h"
#include <unistd.h>

static lb_rng rng;
#include "tmodel.h"

/* Row r keeps cnt random inputs (row 0: kmax; row 1 of 3 or more: none). */
static void ragged_mask(int64_t rows, int64_t cols, int64_t kmax, bool uniform, uint8_t *keep)
{
    int64_t *ix = malloc(sizeof(int64_t) * (size_t)cols);
    memset(keep, 0, (size_t)(rows * cols));
    for (int64_t r = 0; r < rows; r++) {
        int64_t k = uniform || r == 0 ? kmax : rows > 2 && r == 1 ? 0 : (int64_t)(lb_rng_u64(&rng) % (uint64_t)(kmax + 1));
        for (int64_t c = 0; c < cols; c++) ix[c] = c;
        for (int64_t i = 0; i < k; i++) {   /* partial Fisher-Yates: k distinct inputs */
            int64_t j = i + (int64_t)(lb_rng_u64(&rng) % (uint64_t)(cols - i)), t = ix[i];
            ix[i] = ix[j]; ix[j] = t;
            keep[r * cols + ix[i]] = 1;
        }
    }
    free(ix);
}

static bool bit(const uint8_t *mask, size_t mb, int64_t r, int64_t c) { return mask[(size_t)r * mb + (size_t)(c / 8)] >> (c % 8) & 1; }

/* dirty: the blocks of a row past its kept values (all padding) are
 * overwritten with the row's first block, so the padding decodes to nonzero
 * weights; the product must not see them (the inputs are padded by zeros). */
static void check_matrix(const char *fname, int64_t rows, int64_t cols, int64_t kmax, bool uniform, bool dirty)
{
    const lb_format *f = lb_format_find(fname);
    REQUIRE(f, "%s missing", fname);
    int64_t B = lb_format_block(f), kp = B ? (kmax + B - 1) / B * B : kmax;
    char what[96];
    snprintf(what, sizeof what, "%s [%lld, %lld] kmax %lld%s", fname, (long long)rows, (long long)cols,
             (long long)kmax, uniform ? " uniform" : "");
    float *w = malloc(sizeof(float) * (size_t)(rows * cols)), *c = calloc((size_t)(rows * kp), sizeof(float));
    uint8_t *keep = malloc((size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)lb_rng_normal(&rng) * (i % 5 == 0 ? 3.0f : 0.4f);
    ragged_mask(rows, cols, kmax, uniform, keep);
    for (int64_t r = 0; r < rows; r++)   /* kept values then zeros: the padded rows */
        for (int64_t i = 0, j = 0; i < cols; i++)
            if (keep[r * cols + i]) c[r * kp + j++] = w[r * cols + i];
    lb_qmatrix q;
    lb_quantize_opts qo = {0};
    REQUIRE(lb_quantize_matrix(lb_quantizer_find("rtn"), f, &qo, c, rows, kp, &q) == LB_OK, "%s", lb_errmsg());
    lb_wstore st = {0};
    lb_weight sw;
    REQUIRE(lb__weight_sparse_packed(&st, keep, rows, cols, f, q.tensor_scale, q.packed, 0, 0, 0, &sw) == LB_OK,
            "%s: %s", what, lb_errmsg());
    const lb_wsparse *sp = &sw.u.sparse;
    size_t mb = sp->mask_bytes, rb = lb_format_row_bytes(f, kp), bb = B ? lb_format_row_bytes(f, B) : rb;
    int64_t dirtied = 0;
    for (int64_t r = 0; dirty && r < rows; r++) {
        int64_t kr = 0;
        for (int64_t i = 0; i < cols; i++) kr += keep[r * cols + i];
        uint8_t *pr = (uint8_t *)sw.data + (size_t)r * rb;
        for (int64_t b = (kr + B - 1) / B; b < kp / B; b++, dirtied++) memcpy(pr + (size_t)b * bb, (const uint8_t *)sw.data, bb);
    }
    CHECK(!dirty || dirtied > 0, "%s: no padding block to dirty", what);
    CHECK(sp->k == kp && sp->row_bytes == rb && lb__weight_bytes(&sw) == (size_t)rows * (rb + mb) + 12 +
          (lb_format_uses_tensor_scale(f) ? 4 : 0), "%s: k %lld, %zu bytes", what, (long long)sp->k, lb__weight_bytes(&sw));
    float *x = malloc(sizeof(float) * (size_t)(3 * cols)), *xk = malloc(sizeof(float) * (size_t)kp);
    float *wk = malloc(sizeof(float) * (size_t)kp), *row = malloc(sizeof(float) * (size_t)cols);
    float *want = malloc(sizeof(float) * (size_t)(3 * rows)), *got = malloc(sizeof(float) * (size_t)(3 * rows));
    for (int64_t i = 0; i < 3 * cols; i++) x[i] = i % 13 == 4 ? 0.0f : (float)lb_rng_normal(&rng);
    lb_isa saved = lb_isa_active();
    lb_isa_set(LB_ISA_REF);
    int64_t bad_pad = 0, bad_row = 0, bad_dense = 0;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *pr = (const uint8_t *)sw.data + (size_t)r * rb;
        REQUIRE(!lb_format_dequantize(f, pr, sp->tensor_scale, 1, kp, wk), "%s", lb_errmsg());
        int64_t kr = 0;
        for (int64_t i = 0; i < cols; i++) kr += bit(sp->mask, mb, r, i);
        for (int64_t j = kr; j < kp && !dirty; j++) bad_pad += wk[j] != 0.0f;
        lb__weight_row(&sw, r, row);
        for (int64_t i = 0, j = 0; i < cols; i++) bad_row += row[i] != (bit(sp->mask, mb, r, i) ? wk[j++] : 0.0f);
        for (int t = 0; t < 3; t++) {
            double d = 0, mag = 0;
            for (int64_t i = 0, j = 0; i < cols; i++)
                if (bit(sp->mask, mb, r, i)) {
                    xk[j] = x[t * cols + i];
                    d += (double)wk[j] * xk[j];
                    mag += fabs((double)wk[j] * xk[j]);
                    j++;
                }
            for (int64_t j = kr; j < kp; j++) xk[j] = 0.0f;
            want[t * rows + r] = lb_format_dot(f, pr, sp->tensor_scale, xk, kp);
            bad_dense += !(fabs(want[t * rows + r] - d) <= 1e-5 * mag + 1e-30);
        }
    }
    CHECK(bad_pad == 0, "%s: %lld padded values decode to nonzero", what, (long long)bad_pad);
    CHECK(bad_row == 0, "%s: %lld decoded weights misplaced", what, (long long)bad_row);
    CHECK(bad_dense == 0, "%s: %lld products off the double dot of the masked matrix", what, (long long)bad_dense);
    for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++)
        for (int th = 1; th <= 2; th++) {
            lb_isa_set((lb_isa)isa);
            lb_pool *pool = NULL;
            lb_wspace *ws = NULL;
            const lb_weight *wl[1] = {&sw};
            REQUIRE(lb_pool_create(th, &pool) == LB_OK && lb__wspace_create(wl, 1, 3, th, &ws) == LB_OK, "%s", lb_errmsg());
            for (int64_t n = 1; n <= 3; n++) {
                for (int64_t i = 0; i < n * rows; i++) got[i] = NAN;
                lb__linear(ws, pool, &sw, x, n, cols, got, rows);
                CHECK(!memcmp(got, want, sizeof(float) * (size_t)(n * rows)), "%s: lb__linear on %s, %d threads, %lld "
                      "tokens differs from the definition", what, lb_isa_name((lb_isa)isa), th, (long long)n);
            }
            lb__wspace_free(ws);
            lb_pool_free(pool);
        }
    lb_isa_set(saved);
    lb__wstore_free(&st);
    lb_qmatrix_free(&q);
    free(w); free(c); free(keep); free(x); free(xk); free(wk); free(row); free(want); free(got);
}

static void test_products(void)
{
    static const struct { const char *f; int64_t rows, cols, kmax; bool uniform, dirty; } cases[] = {
        {"int4_g32", 1, 40, 17, false, false},        {"int4_g32", 3, 100, 67, false, false},
        {"int4_g32", 37, 264, 100, false, false},     {"int4_g32_asym", 5, 257, 200, false, false},
        {"mxfp4", 9, 64, 64, false, false},           {"nvfp4", 13, 130, 33, false, false},
        {"int8_g32", 7, 96, 90, false, false},        {"nf4", 4, 160, 70, false, false},
        {"int4_g64", 6, 200, 65, false, false},       {"int4_ch", 5, 77, 40, false, false},
        {"int4_g32", 6, 256, 96, true, false},        {"int4_g32", 2, 33, 0, false, false},
        {"int4_g32", 11, 300, 130, false, true},      {"mxfp4", 5, 128, 100, false, true}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (!cases[i].kmax) {   /* nothing kept anywhere: refused, as a row padded past its inputs */
            uint8_t keep[66] = {0}, packed[64] = {0};
            lb_wstore st = {0};
            lb_weight sw;
            CHECK(lb__weight_sparse_packed(&st, keep, 2, 33, lb_format_find("int4_g32"), 1, packed, 0, 0, 0, &sw) ==
                  LB_ERR_ARG && strstr(lb_errmsg(), "none kept"), "nothing kept: '%s'", lb_errmsg());
            for (int c = 0; c < 33; c++) keep[c] = c != 7;   /* 32 of 33: fits; 33: would need 64 > 33 */
            CHECK(lb__weight_sparse_packed(&st, keep, 2, 33, lb_format_find("int4_g32"), 1, packed, 0, 0, 0, &sw) ==
                  LB_OK, "32 of 33 kept: '%s'", lb_errmsg());
            keep[7] = 1;
            CHECK(lb__weight_sparse_packed(&st, keep, 2, 33, lb_format_find("int4_g32"), 1, packed, 0, 0, 0, &sw) ==
                  LB_ERR_ARG && strstr(lb_errmsg(), "more than its 33 inputs"), "33 of 33 kept: '%s'", lb_errmsg());
            lb__wstore_free(&st);
            continue;
        }
        check_matrix(cases[i].f, cases[i].rows, cases[i].cols, cases[i].kmax, cases[i].uniform, cases[i].dirty);
    }
}

/* ---- models */

static char tmp_path[64];
static const char *tmpfile_path(void)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/lb_sparse_pad_%d.safetensors", (int)getpid());
    return tmp_path;
}

static int64_t row_kept(const lb_weight *w, int64_t r)
{
    int64_t k = 0;
    for (int64_t c = 0; c < w->cols; c++) k += bit(w->u.sparse.mask, w->u.sparse.mask_bytes, r, c);
    return k;
}

/* Every linear of q packed in int4_g32 with k = its longest row rounded up
 * to 32, at the derived bytes; magnitude and wanda: every row keeps exactly
 * cols - floor(cols R), and so does sparsegpt with per-row groups (its mask
 * block is the whole row here, cols <= 128); block_wide (the reference's
 * rule): each block prunes floor(rows cols R) over all rows. Returns the number
 * of linears whose rows keep different counts. */
static int64_t check_model(const lb_model *q, const char *crit, double R, bool block_wide)
{
    lb__wname wn[64];
    int64_t n = lb__model_names((lb_model *)q, wn, 64), ragged = 0, lin = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!wn[i].linear) continue;
        const lb_weight *w = wn[i].w;
        const lb_wsparse *sp = &w->u.sparse;
        lin++;
        int64_t want = w->cols - (int64_t)floor((double)w->cols * R), kmax = 0, total = 0, off = 0;
        for (int64_t r = 0; w->rep == &lb__wrep_sparse && r < w->rows; r++) kmax = lb__max64(kmax, row_kept(w, r));
        if (w->rep != &lb__wrep_sparse || sp->fmt != lb_format_find("int4_g32")) {   /* only a row past the width */
            CHECK(w->rep == &lb__wrep_sparse && (kmax + 31) / 32 * 32 > w->cols && w->dtype == LB_DTYPE_F32,
                  "%s %s: not packed in int4_g32 (longest row %lld of %lld)", crit, wn[i].name, (long long)kmax,
                  (long long)w->cols);
            continue;
        }
        kmax = 0;
        for (int64_t r = 0; r < w->rows; r++) {
            int64_t k = row_kept(w, r);
            off += !block_wide && k != want;
            kmax = k > kmax ? k : kmax;
            total += k;
            ragged += r && k != row_kept(w, 0);
        }
        if (block_wide)
            CHECK(total == w->rows * w->cols - (int64_t)floor((double)(w->rows * w->cols) * R), "%s: %lld kept in all",
                  wn[i].name, (long long)total);
        CHECK(off == 0, "%s %s R %g: %lld rows do not keep %lld", crit, wn[i].name, R, (long long)off, (long long)want);
        CHECK(sp->k == (kmax + 31) / 32 * 32, "%s %s: %lld packed, longest row %lld", crit, wn[i].name,
              (long long)sp->k, (long long)kmax);
        size_t derived = (size_t)w->rows * ((size_t)sp->k / 32 * 18 + (size_t)(w->cols + 7) / 8) + 12;
        CHECK(lb__weight_bytes(w) == derived, "%s: %zu bytes, derived %zu", wn[i].name, lb__weight_bytes(w), derived);
    }
    CHECK(lin == 14, "%lld linears", (long long)lin);
    return ragged;
}

static bool same_packed(const lb_weight *a, const lb_weight *b)
{
    const lb_wsparse *x = &a->u.sparse, *y = &b->u.sparse;
    return b->rep == &lb__wrep_sparse && x->fmt == y->fmt && x->k == y->k && x->row_bytes == y->row_bytes &&
           x->nnz == y->nnz && x->tensor_scale == y->tensor_scale &&
           !memcmp(a->data, b->data, (size_t)a->rows * x->row_bytes) &&
           !memcmp(x->mask, y->mask, (size_t)a->rows * x->mask_bytes) &&
           !memcmp(x->off, y->off, sizeof(int64_t) * (size_t)(a->rows + 1));
}

/* Save q, expect the load to fail naming the file and weight (and `also`). */
static void expect_refused(const lb_model *q, const char *weight, const char *also, const char *why)
{
    CHECK(lb_model_save(q, tmpfile_path()) == LB_OK, "%s", lb_errmsg());
    lb_model *back = NULL;
    lb_status s = lb_model_load(tmpfile_path(), &back);
    char name[128];
    snprintf(name, sizeof name, "sparse weight '%s'", weight);
    CHECK(s == LB_ERR_FORMAT && !back && strstr(lb_errmsg(), tmpfile_path()) && strstr(lb_errmsg(), name) &&
          strstr(lb_errmsg(), also), "%s: load gave %d '%s'", why, s, lb_errmsg());
    lb_model_free(back);
    unlink(tmpfile_path());
}

static void test_models(void)
{
    tmodel t;
    lb_dtype dt;
    lb_config cfg = variant(0, &dt);   /* base_cfg: dim 48, hidden 100, F32 */
    build(&t, cfg, dt);
    int32_t tok[96];
    for (int i = 0; i < 96; i++) tok[i] = (int32_t)(lb_rng_u64(&rng) % 67);
    /* sparsegpt with packed values: per-row groups by default (every row keeps
     * cols - floor(cols R) in each block), row_groups -1: the reference's one
     * threshold over the block's rows (ragged rows, padded) */
    static const struct { const char *crit; double R; int rg; } cases[] = {
        {"magnitude", 0.6, 0}, {"wanda", 0.7, 0}, {"sparsegpt", 0.5, 0}, {"sparsegpt", 0.5, -1}};
    lb_model *q = NULL;
    for (int c = 0; c < 4; c++) {
        bool cal = strcmp(cases[c].crit, "magnitude") != 0;
        lb_model_prune_opts o = {.p = {.criterion = cases[c].crit, .pattern = "unstructured", .ratio = cases[c].R,
                                       .row_groups = cases[c].rg},
                                 .format = "int4_g32", .n_threads = 2, .tokens = cal ? tok : NULL,
                                 .n_tokens = cal ? 96 : 0, .ctx = 32};
        lb_model_free(q);
        q = NULL;
        REQUIRE(lb_model_prune(&t.m, &o, &q, NULL) == LB_OK, "%s: %s", cases[c].crit, lb_errmsg());
        int64_t ragged = check_model(q, cases[c].crit, cases[c].R, cases[c].rg < 0);
        CHECK(cases[c].rg < 0 ? ragged > 0 : ragged == 0, "%s row_groups %d: %lld ragged linears", cases[c].crit,
              cases[c].rg, (long long)ragged);
    }
    /* q: sparsegpt, ragged rows. Save / load bit-exact, same logits. */
    lb_model *back = NULL;
    REQUIRE(lb_model_save(q, tmpfile_path()) == LB_OK && lb_model_load(tmpfile_path(), &back) == LB_OK, "%s",
            lb_errmsg());
    lb__wname a[64], b[64];
    int64_t n = lb__model_names(q, a, 64);
    REQUIRE(lb__model_names(back, b, 64) == n, "names");
    for (int64_t i = 0; i < n; i++)
        if (a[i].linear && a[i].w->u.sparse.fmt) CHECK(same_packed(a[i].w, b[i].w), "%s differs after load", a[i].name);
    float *l1 = malloc(sizeof(float) * 12 * 67), *l2 = malloc(sizeof(float) * 12 * 67);
    lb_session *s1 = NULL, *s2 = NULL;
    lb_session_opts so = {.n_threads = 1, .max_ctx = 12};
    REQUIRE(!lb_session_create(q, &so, &s1) && !lb_session_create(back, &so, &s2), "%s", lb_errmsg());
    CHECK(!lb_forward_all(s1, tok, 12, l1) && !lb_forward_all(s2, tok, 12, l2), "%s", lb_errmsg());
    CHECK(!memcmp(l1, l2, sizeof(float) * 12 * 67), "logits differ after save/load");
    lb_session_free(s1); lb_session_free(s2);
    free(l1); free(l2);
    lb_model_free(back);
    unlink(tmpfile_path());

    /* corrupt: row 0 of a 48-input linear packed at 32 keeps 33 */
    lb__wname *wc = NULL;
    for (int64_t i = 0; i < n && !wc; i++)
        if (a[i].linear && a[i].w->cols == 48 && a[i].w->u.sparse.fmt) wc = &a[i];
    REQUIRE(wc && wc->w->u.sparse.k == 32, "no packed 48-input linear");
    lb_weight *wq = wc->w;
    uint8_t *m = (uint8_t *)wq->u.sparse.mask, saved[6];
    memcpy(saved, m, 6);
    for (int i = 0; i < 48 && row_kept(wq, 0) <= 32; i++) m[i / 8] |= (uint8_t)(1u << (i % 8));
    expect_refused(q, wc->name, "weight_values_scale", "row over the packed count");
    memcpy(m, saved, 6);
    /* the scale tensor one block short: down_proj (100 inputs, about 50 kept, 64 or 96 packed) */
    lb_weight *wd = &q->layers[1].w_down;
    int64_t kd = wd->u.sparse.k;
    REQUIRE(wd->u.sparse.fmt && kd >= 64, "down_proj: %lld packed", (long long)kd);
    char holds[48];
    snprintf(holds, sizeof holds, "holds %lld blocks", (long long)(kd / 32 - 1));
    wd->u.sparse.k = kd - 32;
    expect_refused(q, "model.layers.1.mlp.down_proj.weight", holds, "scale tensor short");
    wd->u.sparse.k = kd;
    /* a truncated file */
    REQUIRE(lb_model_save(q, tmpfile_path()) == LB_OK, "%s", lb_errmsg());
    FILE *fp = fopen(tmpfile_path(), "rb");
    REQUIRE(fp && !fseek(fp, 0, SEEK_END), "open");
    long size = ftell(fp);
    fclose(fp);
    REQUIRE(truncate(tmpfile_path(), size - 300) == 0, "truncate");
    back = NULL;
    lb_status s = lb_model_load(tmpfile_path(), &back);
    CHECK(s != LB_OK && !back && strstr(lb_errmsg(), tmpfile_path()), "truncated: %d '%s'", s, lb_errmsg());
    unlink(tmpfile_path());
    lb_model_free(q);
    unbuild(&t);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_products);
    RUN(test_models);
    return TEST_DONE();
}
