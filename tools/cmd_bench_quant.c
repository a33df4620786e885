/* cmd_bench_quant.c: `lowbit bench quant` (a row of tools/cmd_bench.c): the
 * methods x formats table.
 * For each (method, format) the model is quantized in memory (timed), saved
 * (file size), then scored against the unquantized model on the same text:
 * perplexity, mean KL divergence and top-1 agreement (the engine's KL
 * machinery, with the unquantized log-probabilities saved once as the
 * base), and greedy generation tokens/s. Writes markdown, JSON and an SVG
 * plot (KL divergence vs bits/weight) to --out. Without --text only sizes and
 * speeds are measured (the synthetic-model speed check). */
#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXL 64

static const char *def_methods[] = {"rtn", "sinq", "hadamard+rtn", "hadamard+sinq"};
static const char *def_formats[] = {"int4_g32", "int4_g32_asym", "int4_g64", "int4_g64_asym", "int4_g128",
                                    "int4_g128_asym", "mxfp4", "mxfp4:mse", "nvfp4", "nvint4", "nf4", "mxint8",
                                    "mxfp8_e4m3", "int8_g32", "int3_g32_asym", "int2_g32_asym"};

typedef struct row {
    char method[32], format[40];
    double bits_linear, bits_total, size_mb, ppl, dppl, kld, kld_err, top1, qsec, gen_tps, prompt_tps, layer_err;
    int64_t n_quant, n_kept;
    bool failed;
    char err[200];
} row;

typedef struct bopts {
    const char *model, *text, *tok, *out, *calib_text;
    int64_t ctx, chunks, gen, calib_tokens, calib_ctx;
    int threads;
    bool json, quant_emb, sequential;
    cli_calib_text ct;          /* calibration tokens (from the tail of --calib-text, default --text) */
    lb_calib *calib;            /* their statistics, collected once for the methods that are not sequential */
    const char *methods[MAXL], *formats[MAXL];
    int n_methods, n_formats;
    double bits_budget;         /* > 0: every row is mixed precision under this budget (budget.c) */
    const char *budget_formats[MAXL];
    int n_budget_formats;
    int64_t budget_metric;
} bopts;

static void help(void)
{
    printf("usage: lowbit bench quant --model M [--text FILE] [--ctx N] [--chunks K] [--out DIR]\n"
           "                          [--methods a,b,..] [--formats x,y,..] [--gen N] [--threads K]\n"
           "                          [--quantize-embeddings] [--tokenizer T] [--json]\n"
           "Quantizes M with every method x format and measures bits/weight, file size, perplexity and its\n"
           "change, mean KL divergence and top-1 agreement against the unquantized model on FILE (ctx N,\n"
           "default 256; K chunks, default 20), quantization time and greedy generation tokens/s (N tokens,\n"
           "default 64), and the mean output error of the quantized linears on the first N tokens' real\n"
           "activations (lb_quant_layer_errors; q, k, v, gate, up, down). Writes DIR/quant.md, DIR/quant.json and DIR/quant.svg (default DIR: bench-quant).\n"
           "  --methods  default rtn,sinq,hadamard+rtn,hadamard+sinq; METHOD:OPT,... options: act (activation\n"
           "             order), calib (give statistics to a method that does not need them: rtn:calib is the\n"
           "             importance-weighted scale search), seq (sequential calibration)\n"
           "  --calib-text FILE  calibration text for the methods that need statistics (default: --text); the\n"
           "             tokens come from its tail (as lowbit calib) and never overlap the scored chunks\n"
           "  --calib-tokens N (default 16384)  --calib-ctx C (default 128): statistics collected once and\n"
           "             shared by the methods; --sequential: every calibrated method runs sequentially instead\n"
           "             (layer l's inputs from the already-quantized layers < l, collected per method)\n"
           "  --formats  default int4_g32..g128 sym/asym, mxfp4, mxfp4:mse, nvfp4, nvint4, nf4, mxint8,\n"
           "             mxfp8_e4m3, int8_g32, int3_g32_asym, int2_g32_asym; FORMAT:RULE picks the scale rule\n"
           "             (floor, ceil, mse, full); 'f32' is the unquantized model itself\n"
           "  --bits-budget B  every row is mixed precision: each linear takes the row's format or one of\n"
           "             --budget-formats a,b,.. (greedy by proxy loss per bit, calibration statistics), mean\n"
           "             bits/weight of the linears <= B; --budget-metric 0 (output error, default), 1 (relative),\n"
           "             2 (the model's KL divergence with one linear quantized, on calibration tokens)\n"
           "Without --text only sizes and speeds are measured.\n");
}

static double file_mb(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0;
}

/* Greedy decode speed: prompt of 1 token, then gen tokens one at a time. */
static lb_status gen_speed(const lb_model *m, int64_t gen, int threads, double *tps, double *ptps)
{
    lb_model_info info;
    lb_model_get_info(m, &info);
    lb_session *s = NULL;
    lb_session_opts so = {.n_threads = threads, .max_ctx = gen + 2, .max_batch = 64};
    lb_status st = lb_session_create(m, &so, &s);
    float *lg = st ? NULL : malloc(sizeof(float) * (size_t)info.vocab_size);
    if (!st && !lg) st = LB_ERR_NOMEM;
    int32_t tok = 1;
    double t0 = lb_time_now();
    if (!st) st = lb_forward(s, &tok, 1, lg);
    double t1 = lb_time_now();
    for (int64_t i = 0; !st && i < gen; i++) {
        int32_t best = 0;
        for (int64_t v = 1; v < info.vocab_size; v++) if (lg[v] > lg[best]) best = (int32_t)v;
        st = lb_forward(s, &best, 1, lg);
    }
    double t2 = lb_time_now();
    *ptps = 1.0 / (t1 - t0);
    *tps = (double)gen / (t2 - t1);
    free(lg);
    lb_session_free(s);
    return st;
}

/* Memory read bandwidth (GB/s): best of 3 parallel passes over 512 MB,
 * summing 64-bit words in 8 independent lanes (vectorizable, not latency-bound). */
typedef struct bw_job { const uint64_t *a; int64_t n; uint64_t part[256]; } bw_job;
static void bw_task(void *ctx, int64_t b, int64_t e, int thread)
{
    bw_job *j = ctx;
    int64_t per = j->n / 256;
    for (int64_t c = b; c < e; c++) {
        uint64_t s[8] = {0};
        const uint64_t *p = j->a + c * per;
        for (int64_t i = 0; i < per; i += 8)
            for (int k = 0; k < 8; k++) s[k] += p[i + k];
        j->part[c] = s[0] ^ s[1] ^ s[2] ^ s[3] ^ s[4] ^ s[5] ^ s[6] ^ s[7];
    }
}

static double read_bandwidth(int threads)
{
    int64_t n = (int64_t)1 << 26;
    bw_job *j = calloc(1, sizeof *j);
    uint64_t *a = malloc(sizeof(uint64_t) * (size_t)n);
    lb_pool *p = NULL;
    if (!j || !a || lb_pool_create(threads, &p)) { free(j); free(a); return 0; }
    for (int64_t i = 0; i < n; i++) a[i] = (uint64_t)i;
    j->a = a; j->n = n;
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = lb_time_now();
        lb_pool_for(p, 256, 1, bw_task, j);
        double gbs = (double)n * 8 / (lb_time_now() - t0) / 1e9;
        best = gbs > best ? gbs : best;
    }
    lb_pool_free(p);
    free(a); free(j);
    return best;
}

static void parse_format(const char *spec, char *name, size_t cap, lb_scale_rule *rule)
{
    snprintf(name, cap, "%s", spec);
    *rule = LB_SCALE_FLOOR;
    char *c = strchr(name, ':');
    if (!c) return;
    *c = 0;
    if (!strcmp(c + 1, "mse")) *rule = LB_SCALE_MSE;
    else if (!strcmp(c + 1, "ceil")) *rule = LB_SCALE_CEIL;
    else if (!strcmp(c + 1, "full")) *rule = LB_SCALE_FULL;
}

/* "gptq:act,seq" -> name "gptq" and its options; methods that need
 * statistics always get them. */
typedef struct method_opts { bool act, calib, seq; } method_opts;
static bool parse_method(const char *spec, char *name, size_t cap, method_opts *mo)
{
    snprintf(name, cap, "%s", spec);
    *mo = (method_opts){0};
    char *c = strchr(name, ':');
    bool ok = true;
    if (c) {
        *c = 0;
        for (char *t = strtok(c + 1, ","); t; t = strtok(NULL, ",")) {
            if (!strcmp(t, "act")) mo->act = true;
            else if (!strcmp(t, "calib")) mo->calib = true;
            else if (!strcmp(t, "seq")) mo->seq = mo->calib = true;
            else ok = false;
        }
    }
    const lb_quantizer *q = lb_quantizer_find(name);
    if (lb_quantizer_needs_calib(q)) mo->calib = true;
    if (lb_quantizer_needs_sequential(q)) mo->seq = true;
    return ok;
}

static void run_one(const bopts *o, const lb_model *m, const bench_base *b, const char *method, const char *fspec, row *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->format, sizeof r->format, "%s", fspec);
    char fname[40], path[1100], mname[32];
    lb_scale_rule rule;
    parse_format(fspec, fname, sizeof fname, &rule);
    method_opts mo;
    parse_method(method, mname, sizeof mname, &mo);
    lb_model_quant_opts qo = {.format = fname, .method = mname, .quantize_embeddings = o->quant_emb,
                              .n_threads = o->threads, .q = {.scale_rule = rule, .seed = 1, .act_order = mo.act}};
    bool dense = !strcmp(fname, "f32");
    if (o->bits_budget > 0 && !dense) {   /* mixed precision: needs the statistics */
        qo.bits_budget = o->bits_budget;
        qo.budget_formats = o->budget_formats;
        qo.n_budget_formats = o->n_budget_formats;
        qo.budget_metric = (int)o->budget_metric;
        qo.budget_tokens = o->ct.tokens;
        qo.n_budget_tokens = o->ct.n_tokens;
        mo.calib = true;
        snprintf(r->format, sizeof r->format, "%s@%g", fspec, o->bits_budget);
    }
    if (mo.calib && (mo.seq || o->sequential)) {   /* collected layer by layer during the quantization */
        qo.calib_tokens = o->ct.tokens;
        qo.n_calib_tokens = o->ct.n_tokens;
        qo.calib_ctx = o->calib_ctx;
        qo.sequential = 1;
    } else if (mo.calib)
        qo.calib = o->calib;
    lb_model *q = NULL;
    lb_quant_report rep;
    lb_status s = dense ? LB_OK : lb_model_quantize(m, &qo, &q, &rep);
    const lb_model *use = dense ? m : q;
    snprintf(path, sizeof path, "%s/tmp_model.safetensors", o->out);
    if (!s && !dense) {
        r->bits_linear = rep.linear_bits_per_weight; r->bits_total = rep.total_bits_per_weight;
        r->qsec = rep.seconds; r->n_quant = rep.n_quantized; r->n_kept = rep.n_kept_linear;
        lb_quant_report_free(&rep);
    } else if (!s) { r->bits_linear = r->bits_total = 32; }
    if (!s) s = lb_model_save(use, path);
    if (!s) { r->size_mb = file_mb(path); remove(path); }
    if (!s && o->text) {
        lb_kld_opts ko = {.n_threads = o->threads};
        lb_kld_result kr;
        s = lb_eval_kld(use, b->path, &ko, &kr);
        if (!s) { r->kld = kr.kld; r->kld_err = kr.kld_err; r->top1 = kr.top1; r->ppl = kr.ppl; r->dppl = kr.ppl - kr.ppl_base; }
    }
    if (!s && o->text && !dense) {   /* per-layer output error on the first ctx tokens */
        lb_quant_layer_error *e = NULL;
        int64_t ne = 0, cnt = 0;
        s = lb_quant_layer_errors(m, q, b->tok, b->n < o->ctx ? b->n : o->ctx, &e, &ne);
        for (int64_t i = 0; !s && i < ne; i++) if (e[i].quantized) { r->layer_err += e[i].rel_err; cnt++; }
        if (cnt) r->layer_err /= (double)cnt;
        free(e);
    }
    for (int rep_i = 0; !s && o->gen > 0 && rep_i < 3; rep_i++) {   /* best of 3: the machine is shared */
        double tps, ptps;
        s = gen_speed(use, o->gen, o->threads, &tps, &ptps);
        if (!s && tps > r->gen_tps) { r->gen_tps = tps; r->prompt_tps = ptps; }
    }
    if (s) { r->failed = true; snprintf(r->err, sizeof r->err, "%s", lb_errmsg()); }
    lb_model_free(q);
}

/* ------------------------------------------------------------- outputs */

/* What the report writers print: the options, the base and the rows. */
typedef struct report { const bopts *o; const bench_base *b; const row *rows; int n; } report;

static void write_md(FILE *f, const void *ctx)
{
    const report *rp = ctx;
    const bopts *o = rp->o;
    const row *rows = rp->rows;
    int n = rp->n;
    fprintf(f, "model `%s`", o->model);
    if (o->text) fprintf(f, ", text `%s` (ctx %lld, %lld chunks), unquantized PPL %.4f", o->text, (long long)o->ctx,
                         (long long)o->chunks, rp->b->ppl);
    fprintf(f, "\n\n| method | format | linears q/kept | bits/w (linears) | bits/w (all) | file MB | PPL | dPPL | mean KLD | "
               "top-1 %% | layer err | quant s | gen tok/s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        if (r->failed) { fprintf(f, "| %s | %s | failed: %s |||||||||||\n", r->method, r->format, r->err); continue; }
        fprintf(f, "| %s | %s | %lld/%lld | %.3f | %.3f | %.3f |", r->method, r->format, (long long)r->n_quant,
                (long long)r->n_kept, r->bits_linear, r->bits_total, r->size_mb);
        if (o->text) fprintf(f, " %.4f | %+.4f | %.5f ± %.5f | %.2f | %.5f |", r->ppl, r->dppl, r->kld, r->kld_err,
                             100 * r->top1, r->layer_err);
        else fprintf(f, " - | - | - | - | - |");
        fprintf(f, " %.3f | %.1f |\n", r->qsec, r->gen_tps);
    }
}

static void write_json(FILE *f, const void *ctx)
{
    const report *rp = ctx;
    const bopts *o = rp->o;
    const row *rows = rp->rows;
    int n = rp->n;
    fprintf(f, "{\"model\": \"%s\", \"text\": \"%s\", \"ctx\": %lld, \"chunks\": %lld, \"ppl_base\": %.6g, \"rows\": [",
            o->model, o->text ? o->text : "", (long long)o->ctx, (long long)o->chunks, rp->b->ppl);
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        fprintf(f, "%s\n {\"method\": \"%s\", \"format\": \"%s\", \"failed\": %s, \"bits_linear\": %.6g, "
                   "\"bits_total\": %.6g, \"file_mb\": %.6g, \"ppl\": %.6g, \"dppl\": %.6g, \"kld\": %.6g, "
                   "\"kld_err\": %.6g, \"top1\": %.6g, \"layer_err\": %.6g, \"quant_s\": %.6g, \"gen_tps\": %.6g, \"n_quantized\": %lld, "
                   "\"n_kept\": %lld}", i ? "," : "", r->method, r->format, r->failed ? "true" : "false", r->bits_linear,
                r->bits_total, r->size_mb, r->ppl, r->dppl, r->kld, r->kld_err, r->top1, r->layer_err, r->qsec, r->gen_tps,
                (long long)r->n_quant, (long long)r->n_kept);
    }
    fprintf(f, "\n]}\n");
}

/* A row on the plot: one of the methods, something quantized, a measurable KLD. */
static bool drawn(const bopts *o, const row *r)
{
    bool m = false;
    for (int i = 0; i < o->n_methods; i++) m = m || !strcmp(o->methods[i], r->method);
    return m && !r->failed && r->n_quant > 0 && r->kld > 1e-7;
}

/* KL divergence (log scale) against bits/weight of the linears, one colour per method. */
static void write_svg(FILE *f, const void *ctx)
{
    const report *rp = ctx;
    const bopts *o = rp->o;
    const row *rows = rp->rows;
    int n = rp->n;
    double W = 720, H = 460, L = 70, R = 170, T = 30, B = 50;
    double xmin = 1e9, xmax = 0, ymin = 1e9, ymax = 0;
    for (int i = 0; i < n; i++) {
        if (!drawn(o, &rows[i])) continue;
        xmin = fmin(xmin, rows[i].bits_linear); xmax = fmax(xmax, rows[i].bits_linear);
        ymin = fmin(ymin, rows[i].kld); ymax = fmax(ymax, rows[i].kld);
    }
    if (xmax <= xmin) { xmin = 0; xmax = 32; }
    if (ymax <= ymin) { ymin = 1e-4; ymax = 1; }
    double lx0 = floor(log10(ymin)), lx1 = ceil(log10(ymax));
    if (lx1 <= lx0) lx1 = lx0 + 1;
    xmin = floor(xmin) - 0.5; xmax = ceil(xmax) + 0.5;
    bench_svg_axis ax = {.x0 = L, .x1 = W - R, .ytop = T, .ybot = H - B, .e0 = lx0, .e1 = lx1};
#define PX(x) (L + ((x) - xmin) / (xmax - xmin) * (W - L - R))
#define PY(y) bench_svg_logy(&ax, (y))
    bench_svg_begin(f, W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"18\" font-size=\"13\">mean KL divergence vs bits/weight: %s</text>\n", L,
            strrchr(o->model, '/') ? strrchr(o->model, '/') + 1 : o->model);
    bench_svg_log_grid(f, &ax);
    for (double x = ceil(xmin); x <= xmax; x++) {
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", PX(x), PX(x), T, H - B);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(x), H - B + 14, x);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">bits per weight (linear layers)</text>\n",
            (L + W - R) / 2, H - 12);
    bench_svg_ylabel(f, &ax, "mean KLD (nats)");
    for (int mi = 0; mi < o->n_methods; mi++) {
        const char *c = bench_svg_colors[mi % 10];
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                W - R + 16, T + 10 + 16.0 * mi, c, W - R + 26, T + 14 + 16.0 * mi, o->methods[mi]);
        for (int i = 0; i < n; i++) {
            if (!drawn(o, &rows[i]) || strcmp(rows[i].method, o->methods[mi])) continue;
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\" fill-opacity=\"0.8\"><title>%s %s: "
                       "%.3f bits, KLD %.5f</title></circle>\n", PX(rows[i].bits_linear), PY(rows[i].kld), c,
                    rows[i].method, rows[i].format, rows[i].bits_linear, rows[i].kld);
            if (mi == 0)
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" fill=\"#555\">%s</text>\n",
                        PX(rows[i].bits_linear) + 5, PY(rows[i].kld) - 4, rows[i].format);
        }
    }
#undef PX
#undef PY
    fprintf(f, "</svg>\n");
}

static int write_outputs(const report *rp)
{
    return bench_write("bench", rp->o->out, "quant.md", write_md, rp) ||
           bench_write("bench", rp->o->out, "quant.json", write_json, rp) ||
           (rp->o->text && bench_write("bench", rp->o->out, "quant.svg", write_svg, rp));
}

/* Calibration tokens from the tail of --calib-text (default --text), when a
 * method needs them; refused when they would overlap the scored chunks. */
static int calib_tokens(bopts *o, const lb_model *m, const lb_tokenizer *t, const bench_base *b)
{
    bool need = false;
    for (int i = 0; i < o->n_methods; i++) {
        char name[32];
        method_opts mo;
        parse_method(o->methods[i], name, sizeof name, &mo);
        need = need || mo.calib || o->bits_budget > 0;
    }
    if (!need) return 0;
    bench_calib_opts co = {.path = o->calib_text ? o->calib_text : o->text, .tokens = o->calib_tokens,
                           .ctx = o->calib_ctx, .threads = o->threads, .scored_text = !o->calib_text,
                           .scored = o->ctx * o->chunks};
    (void)b;
    return bench_calib("bench quant", m, t, &co, &o->ct, &o->calib);
}

/* Every method and format must be known before hours of measuring start. */
static int check_lists(const bopts *o)
{
    for (int i = 0; i < o->n_methods; i++) {
        char name[32];
        method_opts mo;
        if (!parse_method(o->methods[i], name, sizeof name, &mo))
            return cli_fail("bench quant", "--methods %s: unknown option (act, calib, seq)", o->methods[i]);
        if (!lb_quantizer_find(name))
            return cli_fail("bench quant", "--methods %s: unknown method (see lowbit quantize --help)", o->methods[i]);
        if (mo.calib && !o->text && !o->calib_text)
            return cli_fail("bench quant", "--methods %s needs calibration text: give --text or --calib-text",
                            o->methods[i]);
    }
    for (int i = 0; i < o->n_budget_formats; i++)
        if (!lb_format_find(o->budget_formats[i]))
            return cli_fail("bench quant", "--budget-formats %s: unknown format (see lowbit formats)", o->budget_formats[i]);
    for (int i = 0; i < o->n_formats; i++) {
        char fname[40];
        lb_scale_rule rule;
        parse_format(o->formats[i], fname, sizeof fname, &rule);
        const char *c = strchr(o->formats[i], ':');
        if (c && strcmp(c + 1, "mse") && strcmp(c + 1, "ceil") && strcmp(c + 1, "floor") && strcmp(c + 1, "full"))
            return cli_fail("bench quant", "--formats %s: unknown scale rule (floor, ceil, mse, full)", o->formats[i]);
        if (strcmp(fname, "f32") && !lb_format_find(fname))
            return cli_fail("bench quant", "--formats %s: unknown format (see lowbit formats)", o->formats[i]);
    }
    return 0;
}

static int parse(int argc, char **argv, bopts *o, char *mb, char *fb)
{
    const char *methods = NULL, *formats = NULL, *bformats = NULL;
    static char bb[1024];
    int64_t threads = 0;
    const cli_optdef defs[] = {
        CLI_O_FLAG("--json", &o->json), CLI_O_FLAG("--quantize-embeddings", &o->quant_emb),
        CLI_O_PATH("--model", &o->model), CLI_O_PATH("--text", &o->text), CLI_O_PATH("--tokenizer", &o->tok),
        CLI_O_PATH("--out", &o->out), CLI_O_STR("--methods", &methods), CLI_O_STR("--formats", &formats),
        CLI_O_INT("--ctx", &o->ctx, 8, 1 << 20), CLI_O_INT("--chunks", &o->chunks, 1, 1 << 20),
        CLI_O_INT("--gen", &o->gen, 0, 1 << 16), CLI_THREADS(&threads), CLI_O_PATH("--calib-text", &o->calib_text),
        CLI_O_INT("--calib-tokens", &o->calib_tokens, 1, INT64_C(1) << 32), CLI_O_INT("--calib-ctx", &o->calib_ctx, 8, 1 << 20),
        CLI_O_FLAG("--sequential", &o->sequential), CLI_O_FLOAT("--bits-budget", &o->bits_budget, 0.5, 32),
        CLI_O_STR("--budget-formats", &bformats), CLI_O_INT("--budget-metric", &o->budget_metric, 0, 2), {0}};
    int rc = cli_parse("bench quant", argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) { help(); return -1; }
    if (rc) return rc;
    o->threads = (int)threads;
    if (methods) o->n_methods = bench_split_list(methods, o->methods, MAXL, mb, 1024);
    if (formats) o->n_formats = bench_split_list(formats, o->formats, MAXL, fb, 2048);
    if (bformats) o->n_budget_formats = bench_split_list(bformats, o->budget_formats, MAXL, bb, sizeof bb);
    if ((bformats || o->budget_metric) && !(o->bits_budget > 0))
        return cli_fail("bench quant", "--budget-formats and --budget-metric need --bits-budget B");
    if (!o->model) return cli_fail("bench quant", "--model is required (see lowbit bench quant --help)");
    if (cli_input("bench quant", "--model", o->model, true) || (o->text && cli_input("bench quant", "--text", o->text, false)) ||
        (o->calib_text && cli_input("bench quant", "--calib-text", o->calib_text, false)))
        return 1;
    return 0;
}

int bench_quant(int argc, char **argv)
{
    bopts o = {.out = "bench-quant", .ctx = 256, .chunks = 20, .gen = 64, .calib_tokens = 16384, .calib_ctx = 128};
    char mb[1024], fb[2048];
    int rc = parse(argc, argv, &o, mb, fb);
    if (rc) return rc < 0 ? 0 : rc;
    if (!o.n_methods) { o.n_methods = 4; for (int i = 0; i < 4; i++) o.methods[i] = def_methods[i]; }
    if (!o.n_formats) {
        o.n_formats = (int)(sizeof def_formats / sizeof *def_formats);
        for (int i = 0; i < o.n_formats; i++) o.formats[i] = def_formats[i];
    }
    if (check_lists(&o)) return 1;
    if (mkdir(o.out, 0777) != 0 && errno != EEXIST) return cli_fail("bench", "%s: cannot create: %s", o.out, strerror(errno));
    char tmp[1100], tmp2[1200];   /* the scratch model file and its temporary: removed if interrupted */
    snprintf(tmp, sizeof tmp, "%s/tmp_model.safetensors", o.out);
    cli_temp_register(tmp);
    if (!lb_temp_path(tmp, (long)getpid(), tmp2, sizeof tmp2)) cli_temp_register(tmp2);
    lb_model *m = NULL;
    lb_tokenizer *t = NULL;
    bench_base b = {0};
    bench_base_opts bo = {.model = o.model, .text = o.text, .dir = o.out, .ctx = o.ctx, .chunks = o.chunks,
                          .threads = o.threads};
    if (o.text) { if (cli_load_model_tok("bench", o.model, o.tok, &m, &t)) return 1; }
    else { lb_status s = lb_model_load(o.model, &m); if (s) return cli_fail_status("bench", s); }
    if (o.text && bench_make_base("bench", m, t, &bo, &b)) { lb_model_free(m); lb_tokenizer_free(t); return 1; }
    if (o.text && calib_tokens(&o, m, t, &b)) { free(b.tok); lb_model_free(m); lb_tokenizer_free(t); return 1; }
    int n = 0;
    row *rows = calloc((size_t)(o.n_methods * o.n_formats + 1), sizeof *rows);
    run_one(&o, m, &b, "none", "f32", &rows[n++]);
    double bw = !o.text && o.gen > 0 ? read_bandwidth(o.threads) : 0;
    for (int fi = 0; rows && fi < o.n_formats; fi++)
        for (int mi = 0; mi < o.n_methods; mi++) {
            cli_progress(n, o.n_methods * o.n_formats + 1, o.formats[fi], "bench quant");
            run_one(&o, m, &b, o.methods[mi], o.formats[fi], &rows[n++]);
        }
    cli_progress_end();
    report rp = {&o, &b, rows, n};
    rc = rows ? write_outputs(&rp) : cli_fail("bench", "out of memory");
    if (!rc) { if (o.json) write_json(stdout, &rp); else write_md(stdout, &rp); }
    if (!rc && bw > 0 && !o.json) {   /* speed mode: ratios to FP32 and the bandwidth bound */
        double f32_gbs = rows[0].size_mb * rows[0].gen_tps / 1e3;
        printf("\nmemory read bandwidth: %.1f GB/s by a %d-thread sum test, %.1f GB/s reached by the FP32 decode; "
               "the bound below is the larger\n", bw, o.threads, f32_gbs);
        bw = bw > f32_gbs ? bw : f32_gbs;
        printf("\n| method | format | file / f32 | gen tok/s "
               "| speed-up vs f32 | GB/s of weights | fraction of bound |\n|---|---|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < n; i++)
            if (!rows[i].failed)
                printf("| %s | %s | %.3f | %.1f | %.2fx | %.1f | %.2f |\n", rows[i].method, rows[i].format,
                       rows[i].size_mb / rows[0].size_mb, rows[i].gen_tps, rows[i].gen_tps / rows[0].gen_tps,
                       rows[i].size_mb * rows[i].gen_tps / 1e3, rows[i].size_mb * rows[i].gen_tps / 1e3 / bw);
    }
    if (o.text) remove(b.path);
    free(o.ct.tokens);
    lb_calib_free(o.calib);
    free(rows);
    free(b.tok);
    lb_tokenizer_free(t);
    lb_model_free(m);
    return rc;
}
