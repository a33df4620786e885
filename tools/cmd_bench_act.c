/* cmd_bench_act.c: `lowbit bench act` (a row of tools/cmd_bench.c): the
 * weight format x activation format x rotation accuracy table of issue 10
 * (docs/activations.md#accuracy-kl-divergence-against-the-fp32-model).
 * For each rotation and each weight format of the cells, the FP32 model is
 * quantized once in memory; each cell W:A then gives that quantized model
 * the activation format A (lb_model_set_act) and scores it against the
 * unquantized model's log-probabilities, saved once (lb_eval_kld: what
 * `lowbit quantize` then `lowbit eval kld --act A` compute). Rotations:
 *   none        rtn weights; A per token
 *   smoothquant method smoothquant: calibrated column scales, x / s online, then A
 *   hadamard    method hadamard+rtn over the whole row (quantize --hadamard 0):
 *               the weight's input space rotated offline, each activation
 *               online, then A
 *   stamp       rtn weights, activations stamp-dct:A (DCT over each prefill
 *               batch's tokens, A's bits + 0.25 on average); A must be under 8 bits
 *   dartquant   method dartquant: a learned rotation per input (calibrated)
 *   quarot      residual-stream rotation (quantize --quarot, seed 2), then rtn
 * The calibrated rotations share one set of statistics from --calib-text's
 * tail. Cells that cannot run are reported as skipped with the reason.
 * Writes DIR/act.md, act.json, act.svg (KL divergence per cell, one bar per
 * rotation). */
#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAXCELLS 32
#define NAMEL 48

enum { ROT_NONE, ROT_SQ, ROT_HAD, ROT_STAMP, ROT_DART, ROT_QUAROT, N_ROT };
typedef struct rotation {
    const char *name, *method;
    bool calib;                 /* needs calibration: the shared statistics ... */
    bool on_the_fly;            /* ... or (dartquant: sampled input rows) the tokens, collected per quantization */
    bool quarot, stamp;
} rotation;
static const rotation rotations[N_ROT] = {
    [ROT_NONE] = {.name = "none", .method = "rtn"},
    [ROT_SQ] = {.name = "smoothquant", .method = "smoothquant", .calib = true},
    [ROT_HAD] = {.name = "hadamard", .method = "hadamard+rtn"},
    [ROT_STAMP] = {.name = "stamp", .method = "rtn", .stamp = true},
    [ROT_DART] = {.name = "dartquant", .method = "dartquant", .calib = true, .on_the_fly = true},
    [ROT_QUAROT] = {.name = "quarot", .method = "rtn", .quarot = true},
};
static const char *def_cells = "int8_g32:none,int8_g32:int8,int4_g32:int8,int4_g32:int4,mxfp4:mxfp4,nvfp4:nvfp4";
static const char *def_rots = "none,smoothquant,hadamard,stamp,dartquant";

typedef struct arow {
    int cell, rot;
    int state;                  /* 0 measured, 1 skipped (could not run: why), 2 failed (error: why) */
    char why[240];
    double bits, kld, kld_err, top1, ppl, ppl_ratio;
    int64_t kept;               /* linears that keep FP32 inputs (width not a multiple of the activation block) */
} arow;

typedef struct aopts {
    const char *model, *text, *tok, *out, *calib_text;
    int64_t ctx, chunks, calib_tokens, calib_ctx;
    int threads;
    bool json;
    char w[MAXCELLS][NAMEL], a[MAXCELLS][NAMEL];   /* cell i = weights w[i], activations a[i] */
    int n_cells, rots[N_ROT], n_rots;
    char command[2048];         /* the command line, for the report */
} aopts;

static void help(void)
{
    printf("usage: lowbit bench act --model M --text FILE [--cells W:A,...] [--rotations R,...] [--ctx N]\n"
           "                        [--chunks K] [--out DIR] [--calib-text F] [--calib-tokens N] [--calib-ctx C]\n"
           "                        [--tokenizer T] [--threads K] [--json]\n"
           "Weight format x activation format x rotation: for each rotation and weight format W the model is\n"
           "quantized once; each cell W:A scores it with activation format A (as `lowbit eval kld --act A`)\n"
           "against the unquantized model on FILE (ctx N, default 256; K chunks, default 60): mean KL\n"
           "divergence, top-1 agreement, perplexity and its ratio. Writes DIR/act.md, DIR/act.json and\n"
           "DIR/act.svg (default DIR: bench-act) and prints the table (--json: the JSON).\n"
           "  --cells      W:A pairs: W a weight format, A an activation format (`lowbit formats`, int8, int4,\n"
           "               none = FP32); default %s\n"
           "  --rotations  default %s; one of\n"
           "               none        rtn weights, A per token\n"
           "               smoothquant method smoothquant (calibrated column scales, x / s online, then A)\n"
           "               hadamard    hadamard+rtn over the whole row (quantize --hadamard 0): activations\n"
           "                           rotated online, then A\n"
           "               stamp       rtn weights, activations stamp-dct:A (STaMP, A's bits + 0.25 on average);\n"
           "                           a cell whose A is none or 8-bit is skipped\n"
           "               dartquant   method dartquant (a learned rotation per input, calibrated)\n"
           "               quarot      the residual-stream rotation (quantize --quarot), then rtn\n"
           "  --calib-text F  calibration text of smoothquant and dartquant: --calib-tokens N (default 16384)\n"
           "               from its tail in sequences of --calib-ctx C (default 128), collected once; without\n"
           "               it those rotations are skipped. When F is FILE, the tail must not reach the scored chunks\n"
           "Cells that cannot run are listed as skipped with the reason; when none can, it is an error.\n",
           def_cells, def_rots);
}

/* "W:A,..." into o's cells; prints and returns 1 on a malformed pair or an unknown weight format. */
static int parse_cells(const char *list, aopts *o)
{
    const char *items[MAXCELLS + 1];
    char buf[2048];
    int n = bench_split_list(list, items, MAXCELLS + 1, buf, sizeof buf);
    if (n > MAXCELLS) return cli_fail("bench act", "--cells: at most %d cells", MAXCELLS);
    if (!n) return cli_fail("bench act", "--cells '%s': no cell (W:A,... e.g. int4_g32:int8)", list);
    for (int i = 0; i < n; i++) {
        const char *c = strchr(items[i], ':');
        if (!c || c == items[i] || !c[1] || (size_t)(c - items[i]) >= NAMEL || strlen(c + 1) >= NAMEL)
            return cli_fail("bench act", "--cells %s: a cell is WEIGHTS:ACTIVATIONS (e.g. int4_g32:int8)", items[i]);
        snprintf(o->w[i], NAMEL, "%.*s", (int)(c - items[i]), items[i]);
        snprintf(o->a[i], NAMEL, "%s", c + 1);
        if (!lb_format_find(o->w[i]))
            return cli_fail("bench act", "--cells %s: unknown weight format '%s' (see lowbit formats)", items[i], o->w[i]);
    }
    o->n_cells = n;
    return 0;
}

static int parse_rots(const char *list, aopts *o)
{
    const char *items[N_ROT + 1];
    char buf[512];
    int n = bench_split_list(list, items, N_ROT + 1, buf, sizeof buf);
    if (!n) return cli_fail("bench act", "--rotations '%s': no rotation", list);
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < N_ROT && strcmp(rotations[k].name, items[i])) k++;
        if (k == N_ROT)
            return cli_fail("bench act", "--rotations %s: unknown rotation (none, smoothquant, hadamard, stamp, "
                            "dartquant, quarot)", items[i]);
        for (int j = 0; j < o->n_rots; j++)
            if (o->rots[j] == k) return cli_fail("bench act", "--rotations %s: given twice", items[i]);
        if (o->n_rots == N_ROT) return cli_fail("bench act", "--rotations: at most %d", N_ROT);
        o->rots[o->n_rots++] = k;
    }
    return 0;
}

static int parse(int argc, char **argv, aopts *o)
{
    const char *cells = def_cells, *rots = def_rots;
    int64_t threads = 0;
    const cli_optdef defs[] = {
        CLI_O_PATH("--model", &o->model), CLI_O_PATH("--text", &o->text), CLI_O_PATH("--tokenizer", &o->tok),
        CLI_O_PATH("--out", &o->out), CLI_O_STR("--cells", &cells), CLI_O_STR("--rotations", &rots),
        CLI_O_INT("--ctx", &o->ctx, 8, 1 << 20), CLI_O_INT("--chunks", &o->chunks, 1, 1 << 20), CLI_THREADS(&threads),
        CLI_O_PATH("--calib-text", &o->calib_text), CLI_O_INT("--calib-tokens", &o->calib_tokens, 1, INT64_C(1) << 32),
        CLI_O_INT("--calib-ctx", &o->calib_ctx, 8, 1 << 20), CLI_O_FLAG("--json", &o->json), {0}};
    int rc = cli_parse("bench act", argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) { help(); return -1; }
    if (rc) return rc;
    o->threads = (int)threads;
    if (parse_cells(cells, o) || parse_rots(rots, o)) return 1;
    if (!o->model || !o->text) return cli_fail("bench act", "--model and --text are required (see lowbit bench act --help)");
    if (cli_input("bench act", "--model", o->model, true) || cli_input("bench act", "--text", o->text, false) ||
        (o->tok && cli_input("bench act", "--tokenizer", o->tok, false)) ||
        (o->calib_text && cli_input("bench act", "--calib-text", o->calib_text, false)))
        return 1;
    size_t k = (size_t)snprintf(o->command, sizeof o->command, "lowbit bench act");
    for (int i = 1; i < argc && k < sizeof o->command; i++)
        k += (size_t)snprintf(o->command + k, sizeof o->command - k, " %s", argv[i]);
    return 0;
}

/* The activation spec of a cell under a rotation: A, or stamp-dct:A. */
static void act_spec(const aopts *o, const arow *r, char *buf, size_t cap)
{
    if (rotations[r->rot].stamp) snprintf(buf, cap, "stamp-dct:%s", o->a[r->cell]);
    else snprintf(buf, cap, "%s", o->a[r->cell]);
}

/* Before any work: an unknown activation format is an error; a cell that
 * cannot run is skipped with the reason (checked on the FP32 model m, whose
 * activation format is reset afterwards). Returns 1 after printing. */
static int plan(const aopts *o, lb_model *m, arow *rows, int n)
{
    for (int c = 0; c < o->n_cells; c++)
        if (lb_model_set_act(m, o->a[c], NULL))
            return cli_fail("bench act", "--cells %s:%s: %s", o->w[c], o->a[c], lb_errmsg());
    int runnable = 0;
    for (int i = 0; i < n; i++) {
        arow *r = &rows[i];
        const rotation *rt = &rotations[r->rot];
        char spec[2 * NAMEL];
        act_spec(o, r, spec, sizeof spec);
        if (rt->calib && !o->calib_text)
            snprintf(r->why, sizeof r->why, "%s needs calibration statistics: give --calib-text FILE", rt->name);
        else if (rt->stamp && !strcmp(o->a[r->cell], "none"))
            snprintf(r->why, sizeof r->why, "STaMP transforms quantized activations; FP32 (none) has nothing to quantize");
        else if (rt->stamp && lb_model_set_act(m, spec, NULL))
            snprintf(r->why, sizeof r->why, "%s", lb_errmsg());
        r->state = *r->why ? 1 : 0;
        runnable += !r->state;
    }
    lb_model_set_act(m, NULL, NULL);
    if (!runnable) return cli_fail("bench act", "nothing to measure: %s", rows[0].why);
    return 0;
}

/* Score q (quantized with rotation r->rot) with the cell's activations. */
static void score(const aopts *o, lb_model *q, const bench_base *b, double bits, arow *r)
{
    char spec[2 * NAMEL];
    act_spec(o, r, spec, sizeof spec);
    lb_kld_opts ko = {.n_threads = o->threads};
    lb_kld_result kr;
    lb_status s = lb_model_set_act(q, spec, &r->kept);
    if (!s) s = lb_eval_kld(q, b->path, &ko, &kr);
    if (s) { r->state = 2; snprintf(r->why, sizeof r->why, "%s", lb_errmsg()); return; }
    r->bits = bits;
    r->kld = kr.kld; r->kld_err = kr.kld_err; r->top1 = kr.top1; r->ppl = kr.ppl; r->ppl_ratio = kr.ppl_ratio;
}

/* Every cell of rotation rot whose weights are the format of cell c0, on one quantization. */
typedef struct calib_set { const lb_calib *stats; const cli_calib_text *ct; int64_t ctx; } calib_set;

static void run_weights(const aopts *o, const lb_model *src, const calib_set *cs, const bench_base *b, arow *rows,
                        int n, int rot, int c0)
{
    const rotation *rt = &rotations[rot];
    lb_model_quant_opts qo = {.format = o->w[c0], .method = rt->method, .n_threads = o->threads,
                              .q = {.scale_rule = LB_SCALE_FLOOR, .seed = 1}};
    if (rt->on_the_fly) {   /* as lowbit quantize --calib-text: layer by layer during the quantization */
        qo.calib_tokens = cs->ct->tokens;
        qo.n_calib_tokens = cs->ct->n_tokens;
        qo.calib_ctx = cs->ctx;
    } else if (rt->calib)
        qo.calib = cs->stats;
    lb_model *q = NULL;
    lb_quant_report rep;
    lb_status s = lb_model_quantize(src, &qo, &q, &rep);
    double bits = s ? 0 : rep.linear_bits_per_weight;
    if (!s) lb_quant_report_free(&rep);
    for (int i = 0; i < n; i++) {
        arow *r = &rows[i];
        if (r->rot != rot || r->state || strcmp(o->w[r->cell], o->w[c0])) continue;
        if (s) { r->state = 2; snprintf(r->why, sizeof r->why, "%s", lb_errmsg()); continue; }
        score(o, q, b, bits, r);
    }
    lb_model_free(q);
}

/* ------------------------------------------------------------- outputs */

typedef struct report { const aopts *o; const bench_base *b; const arow *rows; int n; } report;

/* Per rotation other than none: in how many cells it lowers the KL divergence against none. */
static void compare(const report *rp, int rot, int *lower, int *both)
{
    *lower = *both = 0;
    for (int i = 0; i < rp->n; i++) {
        const arow *r = &rp->rows[i];
        if (r->rot != rot || r->state) continue;
        for (int j = 0; j < rp->n; j++) {
            const arow *z = &rp->rows[j];
            if (z->cell != r->cell || z->rot != ROT_NONE || z->state) continue;
            ++*both;
            *lower += r->kld < z->kld;
        }
    }
}

static const char *act_label(const char *a) { return strcmp(a, "none") ? a : "FP32"; }

static void write_md(FILE *f, const void *ctx)
{
    const report *rp = ctx;
    const aopts *o = rp->o;
    fprintf(f, "model `%s`, text `%s` (ctx %lld, %lld chunks), unquantized PPL %.4f", o->model, o->text,
            (long long)o->ctx, (long long)o->chunks, rp->b->ppl);
    if (o->calib_text) fprintf(f, "; calibration `%s` (tail, %lld tokens)", o->calib_text, (long long)o->calib_tokens);
    fprintf(f, "\n\n`%s`\n\n| weights | activations | rotation | bits/w | KLD | top-1 %% | PPL | PPL ratio |\n"
               "|---|---|---|---:|---:|---:|---:|---:|\n", o->command);
    for (int i = 0; i < rp->n; i++) {
        const arow *r = &rp->rows[i];
        fprintf(f, "| %s | %s | %s |", o->w[r->cell], act_label(o->a[r->cell]), rotations[r->rot].name);
        if (r->state) fprintf(f, " %s: %s | | | | |\n", r->state == 1 ? "skipped" : "failed", r->why);
        else fprintf(f, " %.3f | %.5f | %.2f | %.4f | %.4f |\n", r->bits, r->kld, 100 * r->top1, r->ppl, r->ppl_ratio);
    }
    for (int i = 0; i < rp->n; i++) {   /* the FP32 fallback, once per activation format */
        const arow *r = &rp->rows[i];
        bool first = r->kept > 0;
        for (int j = 0; j < i && first; j++) first = !(rp->rows[j].kept > 0 && !strcmp(o->a[rp->rows[j].cell], o->a[r->cell]));
        if (first)
            fprintf(f, "\nActivations %s: %lld linears keep FP32 inputs (input width not a multiple of the format's "
                       "block).\n", o->a[r->cell], (long long)r->kept);
    }
    fprintf(f, "\nAgainst rotation none on the same weight:activation cell (lower KL divergence is better):\n\n");
    for (int k = 0; k < o->n_rots; k++) {
        if (o->rots[k] == ROT_NONE) continue;
        int lower, both;
        compare(rp, o->rots[k], &lower, &both);
        if (both) fprintf(f, "- %s lowers KLD vs none in %d of %d cells\n", rotations[o->rots[k]].name, lower, both);
        else fprintf(f, "- %s: no cell measured with both it and none\n", rotations[o->rots[k]].name);
    }
}

static void write_json(FILE *f, const void *ctx)
{
    const report *rp = ctx;
    const aopts *o = rp->o;
    fprintf(f, "{\"model\": ");
    bench_json_str(f, o->model);
    fprintf(f, ", \"text\": ");
    bench_json_str(f, o->text);
    fprintf(f, ", \"calib_text\": ");
    if (o->calib_text) bench_json_str(f, o->calib_text);
    else fprintf(f, "null");
    fprintf(f, ", \"ctx\": %lld, \"chunks\": %lld, \"ppl_base\": %.8g, \"command\": ", (long long)o->ctx,
            (long long)o->chunks, rp->b->ppl);
    bench_json_str(f, o->command);
    fprintf(f, ", \"rows\": [");
    for (int i = 0; i < rp->n; i++) {
        const arow *r = &rp->rows[i];
        static const char *state[] = {"measured", "skipped", "failed"};
        fprintf(f, "%s\n {\"weights\": \"%s\", \"act\": ", i ? "," : "", o->w[r->cell]);
        bench_json_str(f, o->a[r->cell]);
        fprintf(f, ", \"rotation\": \"%s\", \"status\": \"%s\"", rotations[r->rot].name, state[r->state]);
        if (r->state) { fprintf(f, ", \"reason\": "); bench_json_str(f, r->why); fprintf(f, "}"); continue; }
        fprintf(f, ", \"bits\": %.6g, \"kld\": %.8g, \"kld_err\": %.4g, \"top1\": %.6f, \"ppl\": %.6f, "
                   "\"ppl_ratio\": %.6f, \"fp32_input_linears\": %lld}", r->bits, r->kld, r->kld_err, r->top1, r->ppl,
                r->ppl_ratio, (long long)r->kept);
    }
    fprintf(f, "\n], \"vs_none\": [");
    for (int k = 0, first = 1; k < o->n_rots; k++) {
        if (o->rots[k] == ROT_NONE) continue;
        int lower, both;
        compare(rp, o->rots[k], &lower, &both);
        fprintf(f, "%s{\"rotation\": \"%s\", \"lower\": %d, \"cells\": %d}", first ? "" : ", ",
                rotations[o->rots[k]].name, lower, both);
        first = 0;
    }
    fprintf(f, "]}\n");
}

static const char *base_name(const char *path) { return strrchr(path, '/') ? strrchr(path, '/') + 1 : path; }

/* Bars of KL divergence, grouped by cell, one colour per rotation; a log
 * axis when the values spread over more than a decade, else linear from 0. */
static void write_svg(FILE *f, const void *ctx)
{
    const report *rp = ctx;
    const aopts *o = rp->o;
    double bw = 12, gap = 18, L = 70, R = 130, T = 30, B = 70, H = 420;
    double W = L + R + o->n_cells * (o->n_rots * bw + gap);
    double ymin = INFINITY, ymax = 0;
    for (int i = 0; i < rp->n; i++)
        if (!rp->rows[i].state && rp->rows[i].kld > 0) {
            ymin = fmin(ymin, rp->rows[i].kld);
            ymax = fmax(ymax, rp->rows[i].kld);
        }
    if (!(ymax > 0)) { ymin = 1e-4; ymax = 1; }
    bool logy = ymax > 10 * ymin;
    bench_svg_axis ax = {.x0 = L, .x1 = W - R, .ytop = T, .ybot = H - B, .e0 = floor(log10(ymin)),
                         .e1 = ceil(log10(ymax))};
    if (ax.e1 <= ax.e0) ax.e1 = ax.e0 + 1;
    double ylin = ymax * 1.1;
#define PY(v) (logy ? bench_svg_logy(&ax, (v)) : ax.ybot - (v) / ylin * (ax.ybot - ax.ytop))
    bench_svg_begin(f, W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"18\" font-size=\"13\">mean KL divergence per weight:activation cell and rotation: "
               "%s, %s</text>\n", L, base_name(o->model), base_name(o->text));
    if (logy) bench_svg_log_grid(f, &ax);
    else
        for (int k = 0; k <= 4; k++)
            fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.1f\" "
                       "y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", ax.x0, ax.x1, PY(ylin * k / 4), PY(ylin * k / 4),
                    ax.x0 - 4, PY(ylin * k / 4) + 4, ylin * k / 4);
    bench_svg_ylabel(f, &ax, logy ? "mean KLD (nats, log scale)" : "mean KLD (nats)");
    for (int c = 0; c < o->n_cells; c++) {
        double x0 = L + gap / 2 + c * (o->n_rots * bw + gap);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text><text x=\"%.1f\" y=\"%.1f\" "
                   "text-anchor=\"middle\">%s</text>\n", x0 + o->n_rots * bw / 2, ax.ybot + 14, o->w[c],
                x0 + o->n_rots * bw / 2, ax.ybot + 27, act_label(o->a[c]));
        for (int i = 0; i < rp->n; i++) {
            const arow *r = &rp->rows[i];
            int k = 0;
            while (o->rots[k] != r->rot) k++;
            if (r->cell != c) continue;
            double x = x0 + k * bw;
            if (r->state || !(r->kld > 0)) {
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" fill=\"#999\" text-anchor=\"middle\">x"
                           "<title>%s %s:%s: %s</title></text>\n", x + bw / 2, ax.ybot - 3, rotations[r->rot].name,
                        o->w[c], o->a[c], r->state ? r->why : "KLD 0");
                continue;
            }
            double y = PY(r->kld);
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s %s:%s: KLD "
                       "%.5f</title></rect>\n", x, y, bw - 1, ax.ybot - y, bench_svg_colors[k % 10],
                    rotations[r->rot].name, o->w[c], o->a[c], r->kld);
        }
    }
#undef PY
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">weights / activations (x: skipped)</text>\n",
            (L + W - R) / 2, H - 16);
    for (int k = 0; k < o->n_rots; k++)
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">%s"
                   "</text>\n", W - R + 16, T + 16.0 * k, bench_svg_colors[k % 10], W - R + 30, T + 9 + 16.0 * k,
                rotations[o->rots[k]].name);
    fprintf(f, "</svg>\n");
}

/* ------------------------------------------------------------- the run */

/* Whether cell c is the first with its weight format. */
static bool first_weights(const aopts *o, int c)
{
    for (int p = 0; p < c; p++)
        if (!strcmp(o->w[p], o->w[c])) return false;
    return true;
}

static void run_all(const aopts *o, const lb_model *m, const calib_set *cs, const bench_base *b, arow *rows, int n)
{
    lb_model *qr = NULL;
    lb_status qs = LB_OK;
    int done = 0, n_w = 0;
    for (int c = 0; c < o->n_cells; c++) n_w += first_weights(o, c);
    for (int k = 0; k < o->n_rots; k++) {
        int rot = o->rots[k];
        const lb_model *src = m;
        if (rotations[rot].quarot) {
            qs = lb_model_quarot(m, 2, &qr);   /* quantize --quarot: the seed of the per-input rotations + 1 */
            src = qr;
        }
        for (int c = 0; c < o->n_cells; c++) {
            if (!first_weights(o, c)) continue;   /* each weight format once per rotation */
            cli_progress(done++, (int64_t)o->n_rots * n_w, rotations[rot].name, "bench act");
            if (qs) {
                for (int i = 0; i < n; i++)
                    if (rows[i].rot == rot && !rows[i].state) {
                        rows[i].state = 2;
                        snprintf(rows[i].why, sizeof rows[i].why, "%s", lb_errmsg());
                    }
                break;
            }
            run_weights(o, src, cs, b, rows, n, rot, c);
        }
        lb_model_free(qr);
        qr = NULL;
        qs = LB_OK;
    }
    cli_progress_end();
}

/* The calibration text is the scored text (same file): its tail must stay clear of the scored chunks. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Calibration (refusals write nothing), then the base and every cell, then the reports. */
static int measure(const aopts *o, lb_model *m, const lb_tokenizer *t, arow *rows, int n)
{
    bench_base b = {0};
    bench_base_opts bo = {.model = o->model, .text = o->text, .dir = o->out, .ctx = o->ctx, .chunks = o->chunks,
                          .threads = o->threads};
    cli_calib_text ct = {0};
    lb_calib *calib = NULL;
    bool need = false;
    for (int i = 0; i < n; i++) need = need || (!rows[i].state && rotations[rows[i].rot].calib);
    bench_calib_opts co = {.path = o->calib_text, .tokens = o->calib_tokens, .ctx = o->calib_ctx,
                           .threads = o->threads, .scored = o->ctx * o->chunks,
                           .scored_text = o->calib_text && same_file(o->calib_text, o->text)};
    int rc = need && bench_calib("bench act", m, t, &co, &ct, &calib);
    if (!rc && mkdir(o->out, 0777) != 0 && errno != EEXIST)
        rc = cli_fail("bench act", "--out %s: cannot create: %s", o->out, strerror(errno));
    if (!rc) rc = bench_make_base("bench act", m, t, &bo, &b);
    calib_set cs = {calib, &ct, o->calib_ctx};
    if (!rc) run_all(o, m, &cs, &b, rows, n);
    report rp = {o, &b, rows, n};
    if (!rc) rc = bench_write("bench act", o->out, "act.md", write_md, &rp) ||
                  bench_write("bench act", o->out, "act.json", write_json, &rp) ||
                  bench_write("bench act", o->out, "act.svg", write_svg, &rp);
    if (!rc) { if (o->json) write_json(stdout, &rp); else write_md(stdout, &rp); }
    if (*b.path) remove(b.path);
    free(b.tok);
    free(ct.tokens);
    lb_calib_free(calib);
    return rc;
}

int bench_act(int argc, char **argv)
{
    aopts o = {.out = "bench-act", .ctx = 256, .chunks = 60, .calib_tokens = 16384, .calib_ctx = 128};
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    lb_model *m = NULL;
    lb_tokenizer *t = NULL;
    if (cli_load_model_tok("bench act", o.model, o.tok, &m, &t)) return 1;
    int n = o.n_cells * o.n_rots;
    arow *rows = calloc((size_t)n, sizeof *rows);
    if (!rows) rc = cli_fail("bench act", "out of memory");
    for (int i = 0; rows && i < n; i++) { rows[i].cell = i / o.n_rots; rows[i].rot = o.rots[i % o.n_rots]; }
    if (!rc) rc = plan(&o, m, rows, n);
    if (!rc) rc = measure(&o, m, t, rows, n);
    free(rows);
    lb_tokenizer_free(t);
    lb_model_free(m);
    return rc;
}
