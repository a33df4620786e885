/* test_prune_model.c: model-level pruning (lb_model_prune).
 *
 * Unstructured ratios with a block format: every pruned row keeps exactly
 * cols - floor(cols R) (magnitude, Wanda) or what SparseGPT's masks keep,
 * and the values are packed with padding to whole blocks of the longest
 * row (checked from the weights' masks against the rule computed here).
 *
 * Sequential pruning (lb_model_prune_opts.sequential) against a slow
 * reference built from public calls only. The reference
 * prunes layer 0 with the dense model's statistics (layer 1 kept dense),
 * collects new statistics from that partly pruned model (lb_calib_collect),
 * and prunes layer 1 with them (layer 0 kept as it is). Sequential pruning
 * must give the same weights, bit for bit, for Wanda and SparseGPT; and
 * layer 1 must differ from pruning with the dense model's statistics (else
 * the test could not tell the modes apart). The sequential mode reads the
 * mean x^2 as the diagonal of its H, so the reference's statistics do too
 * (a stats_for hook; the separately summed mean x^2 differs from it in the
 * last bits and could flip a tie). */
#include "harness.h"
#include "model/loader.h"
#include "model/model.h"
#include <sys/stat.h>

static lb_rng rng;

static lb_model *load(const char *rel)
{
    struct stat st;
    lb_model *m = NULL;
    if (stat(test_model_path(rel), &st) != 0) return NULL;
    if (lb_model_load(test_model_path(rel), &m)) { fprintf(stderr, "load %s: %s\n", rel, lb_errmsg()); return NULL; }
    return m;
}

/* lb_calib_stats_for with sq replaced by diag(H); the pruner keeps the views
 * of a layer's matrices at once, so each call gets its own buffer. */
#define MAX_DIAG 64
static double *diags[MAX_DIAG];
static int n_diags;

static lb_status stats_diag(const lb_calib *c, const char *name, lb_calib_stats *out)
{
    lb_status s = lb_calib_stats_for(c, name, out);
    if (s || !out->H) return s;
    if (n_diags == MAX_DIAG) return LB_ERR_NOMEM;
    double *d = diags[n_diags++] = malloc(sizeof *d * (size_t)out->n);
    for (int64_t i = 0; i < out->n; i++) d[i] = out->H[i * out->n + i];
    out->sq = d;
    return LB_OK;
}

static void diags_free(void)
{
    for (int i = 0; i < n_diags; i++) free(diags[i]);
    n_diags = 0;
}

/* Number of layer-l linear weights whose values differ between a and b (-1: shapes differ). */
static int64_t layer_diff(lb_model *a, lb_model *b, int64_t l)
{
    lb__wname na[256], nb[256];
    int64_t n = lb__model_names(a, na, 256), m = lb__model_names(b, nb, 256), bad = 0;
    char pre[32];
    snprintf(pre, sizeof pre, "model.layers.%lld.", (long long)l);
    if (n != m) return -1;
    for (int64_t i = 0; i < n; i++) {
        if (!na[i].linear || strncmp(na[i].name, pre, strlen(pre))) continue;
        const lb_weight *x = na[i].w, *y = nb[i].w;
        if (x->rows != y->rows || x->cols != y->cols) return -1;
        size_t k = (size_t)(x->rows * x->cols);
        float *fx = malloc(k * sizeof *fx), *fy = malloc(k * sizeof *fy);
        if (lb__weight_f32(x, fx) || lb__weight_f32(y, fy)) bad = -1;
        else if (memcmp(fx, fy, k * sizeof *fx)) bad++;
        free(fx);
        free(fy);
        if (bad < 0) return -1;
    }
    return bad;
}

static void check_criterion(lb_model *m, const char *crit, const char *pattern, double ratio)
{
    int64_t n = 240, ctx = 48;
    int32_t *tok = malloc(sizeof *tok * (size_t)n);
    for (int64_t i = 0; i < n; i++) tok[i] = (int32_t)(lb_rng_u64(&rng) % (uint64_t)m->cfg.vocab_size);
    lb_prune_opts p = {.criterion = crit, .pattern = pattern, .ratio = ratio};
    lb_model *seq = NULL, *dense = NULL, *p0 = NULL, *ref = NULL;
    lb_model_prune_opts so = {.p = p, .tokens = tok, .n_tokens = n, .ctx = ctx, .sequential = 1, .n_threads = 2};
    REQUIRE(lb_model_prune(m, &so, &seq, NULL) == LB_OK, "%s sequential: %s", crit, lb_errmsg());
    /* reference, step 1: layer 0 with the dense model's statistics */
    lb_calib *c0 = NULL, *c1 = NULL;
    lb_calib_opts co = {.ctx = ctx, .n_threads = 1};
    REQUIRE(lb_calib_collect(m, tok, n, &co, &c0) == LB_OK, "%s", lb_errmsg());
    const char *keep1[] = {"model.layers.1.*"}, *keep0[] = {"model.layers.0.*"};
    lb_model_prune_opts r0 = {.p = p, .calib = c0, .stats_for = stats_diag, .keep = keep1, .n_keep = 1, .n_threads = 1};
    REQUIRE(lb_model_prune(m, &r0, &p0, NULL) == LB_OK, "%s", lb_errmsg());
    /* step 2: statistics of the model with layer 0 pruned, then layer 1 */
    REQUIRE(lb_calib_collect(p0, tok, n, &co, &c1) == LB_OK, "%s", lb_errmsg());
    lb_model_prune_opts r1 = {.p = p, .calib = c1, .stats_for = stats_diag, .keep = keep0, .n_keep = 1, .n_threads = 1};
    REQUIRE(lb_model_prune(p0, &r1, &ref, NULL) == LB_OK, "%s", lb_errmsg());
    /* the same criterion with the dense model's statistics for every layer */
    lb_model_prune_opts d = {.p = p, .calib = c0, .stats_for = stats_diag, .n_threads = 1};
    REQUIRE(lb_model_prune(m, &d, &dense, NULL) == LB_OK, "%s", lb_errmsg());
    CHECK(layer_diff(seq, ref, 0) == 0, "%s %s: layer 0 differs from the reference (%lld)", crit, pattern,
          (long long)layer_diff(seq, ref, 0));
    CHECK(layer_diff(seq, ref, 1) == 0, "%s %s: layer 1 differs from the reference (%lld)", crit, pattern,
          (long long)layer_diff(seq, ref, 1));
    CHECK(layer_diff(seq, dense, 0) == 0, "%s %s: layer 0 should equal the dense-statistics result", crit, pattern);
    CHECK(layer_diff(seq, dense, 1) > 0, "%s %s: layer 1 equals the dense-statistics result: the mode did nothing",
          crit, pattern);
    lb_model_free(seq); lb_model_free(dense); lb_model_free(p0); lb_model_free(ref);
    lb_calib_free(c0); lb_calib_free(c1);
    diags_free();
    free(tok);
}

static void test_sequential(void)
{
    lb_model *m = load("tinystories-656k");
    if (!m) SKIP("tinystories-656k absent (LOWBIT_MODELS)");
    REQUIRE(m->cfg.n_layers == 2, "tinystories-656k has 2 layers");
    check_criterion(m, "wanda", "unstructured", 0.5);
    check_criterion(m, "wanda", "2:4", 0);
    check_criterion(m, "sparsegpt", "2:4", 0);
    lb_model_free(m);
}

/* Each row's kept count and the padded width of one packed weight. */
static void check_exact(const lb_weight *w, const char *name, const char *crit, double ratio)
{
    const lb_wsparse *sp = &w->u.sparse;
    int64_t cols = w->cols, want = cols - (int64_t)floor((double)cols * ratio), kmax = 0, bad = 0;
    for (int64_t r = 0; r < w->rows; r++) {
        int64_t k = 0;
        for (int64_t c = 0; c < cols; c++) k += sp->mask[r * (int64_t)sp->mask_bytes + c / 8] >> (c % 8) & 1;
        bad += strcmp(crit, "sparsegpt") && k != want;
        kmax = k > kmax ? k : kmax;
    }
    CHECK(bad == 0, "%s %s ratio %g: %lld rows do not keep %lld", crit, name, ratio, (long long)bad, (long long)want);
    CHECK(sp->k == (kmax + 31) / 32 * 32, "%s %s ratio %g: %lld packed per row, longest row %lld", crit, name, ratio,
          (long long)sp->k, (long long)kmax);
}

static void test_exact_ratio(void)
{
    lb_model *m = load("tinystories-656k");
    if (!m) SKIP("tinystories-656k absent (LOWBIT_MODELS)");
    int32_t tok[256];
    for (int i = 0; i < 256; i++) tok[i] = (int32_t)(lb_rng_u64(&rng) % (uint64_t)m->cfg.vocab_size);
    static const struct { const char *crit; double ratio; } cases[] = {
        {"magnitude", 0.6}, {"magnitude", 0.7}, {"wanda", 0.1}, {"sparsegpt", 0.6}};
    for (int t = 0; t < 4; t++) {
        lb_model *q = NULL;
        bool calib = strcmp(cases[t].crit, "magnitude") != 0;
        lb_model_prune_opts o = {.p = {.criterion = cases[t].crit, .pattern = "unstructured", .ratio = cases[t].ratio},
                                 .format = "int4_g32", .n_threads = 2, .tokens = calib ? tok : NULL,
                                 .n_tokens = calib ? 256 : 0, .ctx = 64};
        REQUIRE(lb_model_prune(m, &o, &q, NULL) == LB_OK, "%s", lb_errmsg());
        lb__wname wn[256];
        int64_t n = lb__model_names(q, wn, 256), checked = 0, ragged = 0;
        for (int64_t i = 0; i < n; i++) {
            if (!wn[i].linear) continue;
            const lb_weight *w = wn[i].w;
            REQUIRE(w->rep == &lb__wrep_sparse && w->u.sparse.fmt, "%s: not packed sparse", wn[i].name);
            check_exact(w, wn[i].name, cases[t].crit, cases[t].ratio);
            ragged += w->u.sparse.nnz != w->rows * w->u.sparse.k;
            checked++;
        }
        CHECK(checked == 14, "%lld linears checked", (long long)checked);
        CHECK(ragged > 0, "%s %g: no linear needed padding (the test would not see it)", cases[t].crit, cases[t].ratio);
        lb_model_free(q);
    }
    lb_model_free(m);
}

static void test_bad(void)
{
    lb_model *m = load("tinystories-656k");
    if (!m) SKIP("tinystories-656k absent (LOWBIT_MODELS)");
    int32_t tok[64] = {0};
    lb_model *q = NULL;
    lb_model_prune_opts o = {.p = {.criterion = "magnitude", .pattern = "2:4"}, .tokens = tok, .n_tokens = 64,
                             .sequential = 1};
    CHECK(lb_model_prune(m, &o, &q, NULL) == LB_ERR_ARG && !q && strstr(lb_errmsg(), "sequential"),
          "magnitude + sequential: %s", lb_errmsg());
    lb_calib *c = NULL;
    lb_calib_opts co = {.ctx = 32, .n_threads = 1};
    REQUIRE(lb_calib_collect(m, tok, 64, &co, &c) == LB_OK, "%s", lb_errmsg());
    lb_model_prune_opts o2 = {.p = {.criterion = "wanda", .pattern = "2:4"}, .calib = c, .sequential = 1};
    CHECK(lb_model_prune(m, &o2, &q, NULL) == LB_ERR_ARG && !q && strstr(lb_errmsg(), "tokens"),
          "statistics file + sequential: %s", lb_errmsg());
    lb_calib_free(c);
    lb_model_free(m);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_exact_ratio);
    RUN(test_sequential);
    RUN(test_bad);
    return TEST_DONE();
}
