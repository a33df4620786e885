/* test_eval.c: perplexity and KL divergence on small in-memory models.
 *  - lb_eval_ppl equals perplexity computed here from the model's logits
 *    (llama.cpp chunking: BOS at each chunk start, half or full scoring) and
 *    the llama.cpp error formula;
 *  - identical results for threads 1/2/3 and every ISA path;
 *  - a saved base compared with the same model gives KL ~ 0, agreement 1;
 *    with another model, KL and top-1 agreement equal values computed here;
 *  - bad inputs: short text, wrong vocabulary, other text, corrupt files,
 *    unwritable output (no file left behind), a model whose logits turn NaN
 *    (refused, naming chunk and position), base files with NaN values,
 *    overlapping tensors or trailing bytes (refused, naming the file);
 *  - the formats study (lb_formats_study_run) on a small configuration: its
 *    QSNR cells equal a QSNR computed here from data regenerated with lb_rng
 *    and the public quantize / dequantize / Hadamard calls; progress, a
 *    skipped model, the three reports, bad options, thread independence.
 * Real-model checks (stories260K, tinystories-656k) live in tests/cli_run.sh. */
#include "harness.h"
#include "model/model.h"
#include <math.h>
#include <unistd.h>

static lb_rng rng;
#include "tmodel.h"

static char tmpdir[64];

static void logsm(const float *x, int64_t n, double *out)
{
    double mx = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, x[i]);
    for (int64_t i = 0; i < n; i++) s += exp(x[i] - mx);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] - mx - log(s);
}

/* All logits of one chunk from a fresh session. */
static void chunk_logits(const lb_model *m, const int32_t *tk, int64_t ctx, float *out)
{
    lb_session *s;
    lb_session_create(m, &(lb_session_opts){1, ctx, 0, NULL}, &s);
    lb_forward_all(s, tk, ctx, out);
    lb_session_free(s);
}

static void own_ppl(const lb_model *m, const int32_t *tok, int64_t n, int64_t ctx, int64_t first, int32_t bos,
                    double *ppl, double *err)
{
    int64_t V = m->cfg.vocab_size, nc = n / ctx, cnt = 0;
    float *lg = malloc(sizeof(float) * (size_t)(ctx * V));
    double *lp = malloc(sizeof(double) * (size_t)V), s = 0, s2 = 0;
    int32_t *tk = malloc(sizeof(int32_t) * (size_t)ctx);
    for (int64_t c = 0; c < nc; c++) {
        memcpy(tk, tok + c * ctx, sizeof(int32_t) * (size_t)ctx);
        tk[0] = bos;
        chunk_logits(m, tk, ctx, lg);
        for (int64_t j = first; j + 1 < ctx; j++) {
            logsm(lg + j * V, V, lp);
            s += -lp[tk[j + 1]]; s2 += lp[tk[j + 1]] * lp[tk[j + 1]]; cnt++;
        }
    }
    double mean = s / cnt;
    *ppl = exp(mean);
    *err = *ppl * sqrt((s2 / cnt - mean * mean) / (cnt - 1));
    free(lg); free(lp); free(tk);
}

static int32_t *rand_tokens(int64_t n, int64_t V)
{
    int32_t *t = malloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) t[i] = (int32_t)(lb_rng_u64(&rng) % (uint64_t)V);
    return t;
}

static void test_ppl(void)
{
    lb_dtype dt;
    lb_config c = variant(1, &dt);
    tmodel t;
    build(&t, c, dt);
    int64_t n = 3 * 16 + 5;
    int32_t *tok = rand_tokens(n, c.vocab_size);
    for (int sc = 0; sc < 2; sc++) {
        lb_ppl_opts o = {.ctx = 16, .scoring = (lb_scoring)sc, .n_threads = 1, .bos = 1};
        lb_ppl_result r, r2;
        REQUIRE(lb_eval_ppl(&t.m, tok, n, &o, &r) == LB_OK, "%s", lb_errmsg());
        double ppl, err;
        own_ppl(&t.m, tok, n, 16, sc ? 0 : 8, 1, &ppl, &err);
        CHECK(r.n_chunks == 3 && r.n_scored == 3 * (sc ? 15 : 7), "chunks %lld scored %lld", (long long)r.n_chunks,
              (long long)r.n_scored);
        CHECK(fabs(r.ppl - ppl) <= 1e-9 * ppl && fabs(r.ppl_err - err) <= 1e-7 * err,
              "scoring %d: ppl %.10g +- %.6g, expected %.10g +- %.6g", sc, r.ppl, r.ppl_err, ppl, err);
        for (int isa = 0; isa <= (int)lb_isa_best(); isa++)
            for (int th = 1; th <= 3; th++) {
                lb_isa_set((lb_isa)isa);
                o.n_threads = th;
                REQUIRE(lb_eval_ppl(&t.m, tok, n, &o, &r2) == LB_OK, "%s", lb_errmsg());
                CHECK(r2.ppl == r.ppl && r2.ppl_err == r.ppl_err, "isa %s threads %d: ppl %.17g vs %.17g",
                      lb_isa_name((lb_isa)isa), th, r2.ppl, r.ppl);
            }
        lb_isa_set(lb_isa_best());
    }
    lb_ppl_opts o = {.ctx = 16, .n_threads = 1, .bos = 1, .max_chunks = 2};
    lb_ppl_result r;
    CHECK(lb_eval_ppl(&t.m, tok, n, &o, &r) == LB_OK && r.n_chunks == 2, "max_chunks ignored");
    CHECK(lb_eval_ppl(&t.m, tok, 15, &o, &r) == LB_ERR_ARG, "text shorter than ctx accepted");
    o.ctx = c.max_seq + 1;
    CHECK(lb_eval_ppl(&t.m, tok, n, &o, &r) == LB_ERR_ARG, "ctx beyond max_seq accepted");
    free(tok);
    unbuild(&t);
}

static void test_kld(void)
{
    lb_dtype dt;
    lb_config c = variant(0, &dt);
    tmodel a, b;
    build(&a, c, dt);
    build(&b, c, dt);
    /* b: same embedding as a, other random layers */
    memcpy((void *)b.m.tok_embed.data, a.m.tok_embed.data, (size_t)(c.vocab_size * c.dim) * 4);
    int64_t n = 4 * 12, ctx = 12, V = c.vocab_size;
    int32_t *tok = rand_tokens(n, V);
    char path[128];
    snprintf(path, sizeof path, "%s/base.st", tmpdir);
    uint64_t h = lb_eval_text_hash("some text", 9);
    lb_ppl_opts o = {.ctx = ctx, .n_threads = 2, .bos = 1, .save_path = path, .text_hash = h, .model_name = "a"};
    lb_ppl_result pr;
    REQUIRE(lb_eval_ppl(&a.m, tok, n, &o, &pr) == LB_OK, "%s", lb_errmsg());
    lb_kld_result k;
    REQUIRE(lb_eval_kld(&a.m, path, &(lb_kld_opts){.n_threads = 1, .text_hash = h}, &k) == LB_OK, "%s", lb_errmsg());
    CHECK(k.n == 4 * 5 && k.kld < 1e-7 && k.kld_max < 1e-6 && k.top1 == 1.0, "self: n %lld kld %g max %g top1 %g",
          (long long)k.n, k.kld, k.kld_max, k.top1);
    CHECK(fabs(k.ppl_base - pr.ppl) < 1e-6 * pr.ppl && fabs(k.ppl_ratio - 1) < 1e-6, "self: ppl %g base %g ratio %g",
          pr.ppl, k.ppl_base, k.ppl_ratio);
    REQUIRE(lb_eval_kld(&b.m, path, &(lb_kld_opts){.n_threads = 2}, &k) == LB_OK, "%s", lb_errmsg());
    /* expected from the two models' logits */
    float *la = malloc(sizeof(float) * (size_t)(ctx * V)), *lb = malloc(sizeof(float) * (size_t)(ctx * V));
    double *pa = malloc(sizeof(double) * (size_t)V), *pb = malloc(sizeof(double) * (size_t)V);
    double sum = 0, mx = 0, same = 0, d = 0;
    int32_t tk[12];
    for (int64_t ch = 0; ch < 4; ch++) {
        memcpy(tk, tok + ch * ctx, sizeof tk);
        tk[0] = 1;
        chunk_logits(&a.m, tk, ctx, la);
        chunk_logits(&b.m, tk, ctx, lb);
        for (int64_t j = ctx / 2; j + 1 < ctx; j++) {
            logsm(la + j * V, V, pa);
            logsm(lb + j * V, V, pb);
            double kl = 0;
            int64_t ia = 0, ib = 0;
            for (int64_t v = 0; v < V; v++) {
                kl += exp(pa[v]) * (pa[v] - pb[v]);
                if (pa[v] > pa[ia]) ia = v;
                if (pb[v] > pb[ib]) ib = v;
            }
            sum += kl; mx = fmax(mx, kl); same += ia == ib; d += pa[tk[j + 1]] - pb[tk[j + 1]];
        }
    }
    CHECK(fabs(k.kld - sum / 20) < 1e-5 * sum / 20 + 1e-7, "kld %.8g expected %.8g", k.kld, sum / 20);
    CHECK(fabs(k.kld_max - mx) < 1e-5 * mx + 1e-7, "max %.8g expected %.8g", k.kld_max, mx);
    CHECK(k.top1 == same / 20, "top1 %g expected %g", k.top1, same / 20);
    CHECK(fabs(k.ln_ppl_ratio - d / 20) < 1e-5, "ln ratio %g expected %g", k.ln_ppl_ratio, d / 20);
    CHECK(k.kld_p50 <= k.kld_p90 && k.kld_p90 <= k.kld_p99 && k.kld_p99 <= k.kld_p999 && k.kld_p999 <= k.kld_max,
          "percentiles out of order");
    CHECK(lb_eval_kld(&a.m, path, &(lb_kld_opts){.text_hash = h + 1}, &k) == LB_ERR_ARG, "other text accepted");
    free(la); free(lb); free(pa); free(pb);
    /* another vocabulary */
    lb_config c2 = c;
    c2.vocab_size = 50;
    tmodel e;
    build(&e, c2, dt);
    CHECK(lb_eval_kld(&e.m, path, &(lb_kld_opts){0}, &k) == LB_ERR_ARG && strstr(lb_errmsg(), "vocabulary"),
          "vocab mismatch: %s", lb_errmsg());
    unbuild(&e);
    /* truncated copy */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/trunc.st", tmpdir);
    FILE *in = fopen(path, "rb"), *out = fopen(bad, "wb");
    char buf[300];
    size_t got = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, got, out);
    fclose(in); fclose(out);
    CHECK(lb_eval_kld(&a.m, bad, &(lb_kld_opts){0}, &k) == LB_ERR_FORMAT, "truncated base: %s", lb_errmsg());
    CHECK(lb_eval_kld(&a.m, "/nonexistent/x", &(lb_kld_opts){0}, &k) == LB_ERR_IO, "missing base");
    /* unwritable output: error, nothing left */
    o.save_path = "/nonexistent-dir/base.st";
    CHECK(lb_eval_ppl(&a.m, tok, n, &o, &pr) != LB_OK, "unwritable save path accepted");
    remove(bad);
    remove(path);
    free(tok);
    unbuild(&a);
    unbuild(&b);
}

/* Token x's embedding row set to NaN (F32 or BF16 weights). */
static void poison_row(tmodel *t, int32_t x)
{
    lb_weight *w = &t->m.tok_embed;
    int64_t d = t->m.cfg.dim;
    for (int64_t i = 0; i < d; i++) {
        if (w->dtype == LB_DTYPE_BF16) ((uint16_t *)w->data)[x * d + i] = 0x7fc0;
        else ((float *)w->data)[x * d + i] = NAN;
    }
}

/* A model whose logits turn NaN at chunk 1, position 10 (where a token with
 * a NaN embedding sits) is refused by ppl and kld, naming that place, not
 * reported as PPL = nan. */
static void test_nonfinite_logits(void)
{
    lb_dtype dt;
    lb_config c = variant(1, &dt);   /* untied: the NaN row is not also an lm_head row */
    tmodel a, b;
    build(&a, c, dt);
    build(&b, c, dt);
    const int32_t X = 5;
    int64_t ctx = 16, n = 3 * ctx;
    int32_t *tok = rand_tokens(n, c.vocab_size);
    for (int64_t i = 0; i < n; i++)
        if (tok[i] == X) tok[i] = X + 1;
    tok[ctx + 10] = X;
    char path[128];
    snprintf(path, sizeof path, "%s/base_nf.st", tmpdir);
    lb_ppl_opts o = {.ctx = ctx, .n_threads = 1, .bos = 1, .save_path = path};
    lb_ppl_result pr;
    REQUIRE(lb_eval_ppl(&a.m, tok, n, &o, &pr) == LB_OK, "%s", lb_errmsg());
    poison_row(&b, X);
    lb_kld_result k;
    lb_status st = lb_eval_kld(&b.m, path, &(lb_kld_opts){.n_threads = 1}, &k);
    CHECK(st == LB_ERR_CORRUPT && strstr(lb_errmsg(), "kld") && strstr(lb_errmsg(), "chunk 1, position 10") &&
          strstr(lb_errmsg(), "NaN"), "kld: status %d, %s", st, lb_errmsg());
    o.save_path = NULL;
    st = lb_eval_ppl(&b.m, tok, n, &o, &pr);
    CHECK(st == LB_ERR_CORRUPT && strstr(lb_errmsg(), "ppl") && strstr(lb_errmsg(), "chunk 1, position 10"),
          "ppl: status %d, ppl %g, %s", st, pr.ppl, lb_errmsg());
    /* saving: the failed run leaves no base file */
    snprintf(path, sizeof path, "%s/base_nf2.st", tmpdir);
    o.save_path = path;
    CHECK(lb_eval_ppl(&b.m, tok, n, &o, &pr) == LB_ERR_CORRUPT && !test_file_exists(path), "base file left behind");
    remove(path);
    snprintf(path, sizeof path, "%s/base_nf.st", tmpdir);
    remove(path);
    free(tok);
    unbuild(&a);
    unbuild(&b);
}

/* A hand-made base file: ctx 4, one chunk, first 2 (one scored row).
 * lp_off: the logprobs' data offset (16 = right after the tokens); extra:
 * bytes appended after the data; nan_at >= 0 puts a NaN there. */
static void write_base(const char *path, int64_t V, uint64_t lp_off, size_t extra, int64_t nan_at)
{
    char h[1024];
    uint64_t lp_end = lp_off + 4 * (uint64_t)V, data = lp_end > 16 ? lp_end : 16;
    int k = snprintf(h, sizeof h,
                     "{\"__metadata__\":{\"format\":\"lowbit-logprobs\",\"version\":\"1\",\"model\":\"t\",\"vocab\":\"%lld\","
                     "\"ctx\":\"4\",\"chunks\":\"1\",\"first\":\"2\",\"scoring\":\"half\",\"text_hash\":\"0000000000000001\"},"
                     "\"tokens\":{\"dtype\":\"I32\",\"shape\":[1,4],\"data_offsets\":[0,16]},"
                     "\"logprobs\":{\"dtype\":\"F32\",\"shape\":[1,%lld],\"data_offsets\":[%llu,%llu]}}",
                     (long long)V, (long long)V, (unsigned long long)lp_off, (unsigned long long)lp_end);
    while (k % 8) h[k++] = ' ';
    uint8_t *d = calloc(data + extra + 1, 1);
    int32_t tk[4] = {1, 2, 3, 4};
    memcpy(d, tk, 16);
    for (int64_t v = 0; v < V; v++) {
        float x = v == nan_at ? NAN : -logf((float)V);
        memcpy(d + lp_off + 4 * v, &x, 4);
    }
    FILE *f = fopen(path, "wb");
    uint64_t len = (uint64_t)k;
    fwrite(&len, 8, 1, f);
    fwrite(h, 1, (size_t)k, f);
    fwrite(d, 1, data + extra, f);
    fclose(f);
    free(d);
}

/* Base files with NaN values, overlapping tensors or trailing bytes are
 * refused at open with a message naming the file; the same file without the
 * defect is accepted. */
static void test_base_file_checks(void)
{
    lb_dtype dt;
    lb_config c = variant(0, &dt);
    tmodel a;
    build(&a, c, dt);
    int64_t V = c.vocab_size;
    char path[128];
    snprintf(path, sizeof path, "%s/hand.st", tmpdir);
    lb_kld_result k;
    write_base(path, V, 16, 0, -1);
    CHECK(lb_eval_kld(&a.m, path, &(lb_kld_opts){.n_threads = 1}, &k) == LB_OK && k.n == 1, "valid: %s", lb_errmsg());
    write_base(path, V, 16, 0, 7);
    lb_status st = lb_eval_kld(&a.m, path, &(lb_kld_opts){.n_threads = 1}, &k);
    CHECK(st == LB_ERR_CORRUPT && strstr(lb_errmsg(), path) && strstr(lb_errmsg(), "NaN") && strstr(lb_errmsg(), "token 7"),
          "NaN: status %d, %s", st, lb_errmsg());
    write_base(path, V, 8, 0, -1);   /* logprobs start inside the tokens */
    st = lb_eval_kld(&a.m, path, &(lb_kld_opts){.n_threads = 1}, &k);
    CHECK(st == LB_ERR_FORMAT && strstr(lb_errmsg(), path) && strstr(lb_errmsg(), "overlap"), "overlap: status %d, %s",
          st, lb_errmsg());
    write_base(path, V, 16, 24, -1);
    st = lb_eval_kld(&a.m, path, &(lb_kld_opts){.n_threads = 1}, &k);
    CHECK(st == LB_ERR_FORMAT && strstr(lb_errmsg(), path), "trailing: status %d, %s", st, lb_errmsg());
    remove(path);
    unbuild(&a);
}

/* ---- formats study */

/* QSNR of the round trip x -> R^T deq(q(R x)) computed here, R = I (block 0)
 * or blockdiag(T_block) diag(signs of seed 42). */
static double own_qsnr(const char *fmt, const float *x, int64_t rows, int64_t cols, int64_t block)
{
    const lb_format *f = lb_format_find(fmt);
    size_t n = (size_t)(rows * cols);
    float *xr = malloc(n * sizeof *xr), *y = malloc(n * sizeof *y), g = 1;
    uint8_t *p = malloc(lb_format_row_bytes(f, cols) * (size_t)rows);
    int8_t *signs = malloc((size_t)cols);
    memcpy(xr, x, n * sizeof *xr);
    if (block) {
        lb_hadamard_signs(LB_FORMATS_STUDY_SIGN_SEED, cols, signs);
        lb_hadamard_rows(xr, rows, cols, block, signs, 0);
    }
    lb_format_quantize(f, NULL, xr, rows, cols, p, &g);
    lb_format_dequantize(f, p, g, rows, cols, y);
    if (block) lb_hadamard_rows(y, rows, cols, block, signs, 1);
    double sx = 0, se = 0;
    for (size_t i = 0; i < n; i++) sx += (double)x[i] * x[i], se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
    free(xr); free(y); free(p); free(signs);
    return 10 * log10(sx / se);
}

/* The documented data: value i of "gauss" / "laplace" is the i-th draw of
 * lb_rng seeded with seed * 1000 + 0 / 1. */
static float *regen(int kind, uint64_t seed, int64_t n)
{
    float *x = malloc((size_t)n * sizeof *x);
    lb_rng g;
    lb_rng_seed(&g, seed * 1000 + (uint64_t)kind);
    for (int64_t i = 0; i < n; i++) {
        double u = kind ? lb_rng_uniform(&g) - 0.5 : 0;
        x[i] = kind ? (float)((u < 0 ? 1 : -1) * log(1 - 2 * fabs(u)) / sqrt(2.0)) : (float)lb_rng_normal(&g);
    }
    return x;
}

typedef struct study_log { int progress, warns; int64_t last_done, total; char warn[256]; } study_log;

static void study_progress(int64_t done, int64_t total, const char *what, void *user)
{
    study_log *l = user;
    l->progress++, l->last_done = done, l->total = total;
}

static void study_warn(lb_log_level level, const char *msg, void *user)
{
    study_log *l = user;
    if (level == LB_LOG_WARN) l->warns++, snprintf(l->warn, sizeof l->warn, "%s", msg);
}

enum { S_ROWS = 8, S_COLS = 8192 };

/* The JSON report with its "seconds" value blanked (the only timing in it). */
static char *json_untimed(const lb_formats_study *s)
{
    char *t = NULL, *p;
    lb_formats_study_report(s, LB_REPORT_JSON, &t, NULL);
    if (t && (p = strstr(t, "\"seconds\": ")))
        for (p += 11; *p && *p != ','; p++) *p = '#';
    return t;
}

static void test_study_cells(void)
{
    uint64_t seed = TEST_SEED % 100000;
    study_log l = {0};
    lb_formats_study_opts o = {.rows = S_ROWS, .cols = S_COLS, .seed = seed, .quick = 1,
                               .models_dir = "/nonexistent-models", .n_threads = 2,
                               .progress = study_progress, .progress_user = &l};
    lb_formats_study *s = NULL;
    lb_set_log(study_warn, &l);
    lb_status st = lb_formats_study_run(&o, &s);
    lb_set_log(NULL, NULL);
    REQUIRE(st == LB_OK && s, "run: %s", lb_errmsg());
    /* 3 distributions + crest 2, 10, 100 + the skipped stories260K, 4 rotations each */
    CHECK(l.progress == 28 && l.total == 28 && l.last_done == 27, "progress %d calls, last %lld/%lld", l.progress,
          (long long)l.last_done, (long long)l.total);
    CHECK(l.warns == 1 && strstr(l.warn, "SKIP: /nonexistent-models/stories260K/stories260K.bin not found"),
          "warn %d '%s'", l.warns, l.warn);
    static const char *fmts[] = {"int4_g32", "mxfp4", "nvfp4", "int8_ch", "nf4"};
    static const int64_t blocks[] = {0, 32, 128};
    for (int kind = 0; kind < 2; kind++) {
        float *x = regen(kind, seed, S_ROWS * S_COLS);
        for (int k = 0; k < 5; k++)
            for (int b = 0; b < 3; b++) {
                double q = NAN, cov = -1, want = own_qsnr(fmts[k], x, S_ROWS, S_COLS, blocks[b]);
                st = lb_formats_study_qsnr(s, kind ? "laplace" : "gauss", fmts[k], blocks[b], &q, &cov);
                CHECK(st == LB_OK && fabs(q - want) < 1e-9 && cov == 1, "%s %s H%lld: %.12f want %.12f (cov %g)",
                      kind ? "laplace" : "gauss", fmts[k], (long long)blocks[b], q, want, cov);
            }
        free(x);
    }
    double q8 = 0, q4 = 0, qm = 0;
    lb_formats_study_qsnr(s, "gauss", "int8_g32", 0, &q8, NULL);
    lb_formats_study_qsnr(s, "gauss", "int4_g32", 0, &q4, NULL);
    CHECK(q8 > q4 + 15, "int8_g32 %.2f vs int4_g32 %.2f dB", q8, q4);
    CHECK(lb_formats_study_qsnr(s, "stories260K", "mxfp4", 0, &qm, NULL) == LB_OK && isnan(qm), "skipped: %g", qm);
    CHECK(lb_formats_study_qsnr(s, "nope", "mxfp4", 0, NULL, NULL) == LB_ERR_NOTFOUND, "unknown set");
    CHECK(lb_formats_study_qsnr(s, "gauss", "mxfp4/mse", 0, NULL, NULL) == LB_ERR_NOTFOUND, "no /mse when quick");
    CHECK(lb_formats_study_qsnr(s, "gauss", "mxfp4", 64, NULL, NULL) == LB_ERR_NOTFOUND, "unmeasured block");
    lb_formats_study_free(s);
}

static void test_study_reports(void)
{
    lb_formats_study_opts o = {.rows = S_ROWS, .cols = S_COLS, .seed = 5, .quick = 1, .models_dir = "/nonexistent",
                               .n_threads = 1};
    lb_formats_study *s1 = NULL, *s3 = NULL;
    REQUIRE(lb_formats_study_run(&o, &s1) == LB_OK, "run: %s", lb_errmsg());
    char *md = NULL, *js = NULL, *svg = NULL;
    size_t len = 0;
    CHECK(lb_formats_study_report(s1, LB_REPORT_MARKDOWN, &md, &len) == LB_OK && md && len == strlen(md), "md");
    CHECK(md && !strncmp(md, "# Formats study", 15) && strstr(md, "Produced by `lb_formats_study_run`") &&
          strstr(md, "| stories260K | - | - | - | SKIP: /nonexistent/"), "md content");
    int claims = 0;
    for (const char *p = md; p && (p = strstr(p, "\n- **")); p++) claims++;
    CHECK(claims == 4, "%d findings", claims);
    CHECK(lb_formats_study_report(s1, LB_REPORT_SVG, &svg, NULL) == LB_OK && svg && !strncmp(svg, "<svg ", 5) &&
          strstr(svg, "</svg>\n") == svg + strlen(svg) - 7, "svg");
    js = json_untimed(s1);
    CHECK(js && strstr(js, "\"seed\": 5, \"sign_seed\": 42, \"rows\": 8, \"cols\": 8192"), "json head");
    char *bad = (char *)1;
    CHECK(lb_formats_study_report(s1, (lb_report_kind)7, &bad, NULL) == LB_ERR_ARG && !bad, "bad kind");
    /* the same numbers with 3 threads */
    o.n_threads = 3;
    REQUIRE(lb_formats_study_run(&o, &s3) == LB_OK, "run 3 threads: %s", lb_errmsg());
    char *js3 = json_untimed(s3);
    CHECK(js && js3 && !strcmp(js, js3), "JSON differs between 1 and 3 threads");
    free(md); free(js); free(svg); free(js3);
    lb_formats_study_free(s1);
    lb_formats_study_free(s3);
    lb_formats_study_free(NULL);
}

static void test_study_bad(void)
{
    lb_formats_study *s = (lb_formats_study *)1;
    lb_formats_study_opts o = {.rows = 8, .cols = 16, .quick = 1};
    CHECK(lb_formats_study_run(&o, &s) == LB_ERR_ARG && !s, "cols 16 accepted");
    o.cols = 64; /* 512 values: crest 100 cannot be reached with 2 outlier columns */
    CHECK(lb_formats_study_run(&o, &s) == LB_ERR_ARG && !s && strstr(lb_errmsg(), "out of reach"), "tiny: %s",
          lb_errmsg());
    o.rows = INT64_C(1) << 21;
    CHECK(lb_formats_study_run(&o, &s) == LB_ERR_ARG, "huge rows accepted");
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lb_test_eval.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(test_ppl);
    RUN(test_kld);
    RUN(test_nonfinite_logits);
    RUN(test_base_file_checks);
    RUN(test_study_cells);
    RUN(test_study_reports);
    RUN(test_study_bad);
    rmdir(tmpdir);
    return TEST_DONE();
}
