/* cmd_prune.c: `lowbit prune`: prune every linear weight of a model with
 * one criterion to one pattern and write it stored sparse (only the kept
 * values plus index bits) as a self-contained lowbit safetensors file;
 * prints a per-tensor summary (text or JSON). */
#include "cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEEP 64

static void help(void)
{
    printf("usage: lowbit prune --model IN --out OUT.safetensors [--criterion C] [--pattern P] [--ratio R]\n"
           "                     [--calib STATS | --calib-text FILE [--calib-tokens N] [--sequential]] [--ctx N] [--dtype f32|f16|bf16] [--format F]\n"
           "                     [--joint] [--damp D] [--block B] [--groups block|row] [--keep GLOB ...] [--threads K] [--force] [--json]\n"
           "Prunes the linear weights (q, k, v, o, gate, up, down) of a model and stores them sparse: the kept\n"
           "values plus a bitmask (or an index list when that is smaller); see docs/sparsity.md.\n"
           "  --criterion C     magnitude (default), wanda (|W| x ||X_j||), sparsegpt (OBS with error feedback);\n"
           "                    wanda and sparsegpt need --calib or --calib-text\n"
           "  --pattern P       unstructured (default, with --ratio), N:M (keep N of every M inputs: 2:4, 4:8,\n"
           "                    1:4), V:N:M (V x M blocks keep 4 columns, N of them per row: 64:2:8 = 75%%)\n"
           "  --ratio R         unstructured: fraction pruned, in [0, 1) (default 0.5)\n"
           "  --calib STATS     input statistics of this model from `lowbit calib` (docs/calib.md)\n"
           "  --calib-text FILE or: UTF-8 text run through the model for them (lb_calib_collect, dense model)\n"
           "  --calib-tokens N  tokens of that text used (default 4096)\n"
           "  --sequential      with --calib-text: layer l's statistics from the model whose layers < l are\n"
           "                    already pruned (as the Wanda and SparseGPT reference code), not the dense model\n"
           "  --ctx N           tokens per calibration sequence (default 128)\n"
           "  --dtype D         kept values' dtype (default: each weight's own)\n"
           "  --format F        then quantize each row's kept values (RTN) into block format F (int4_g32, mxfp4,\n"
           "                    ...); unstructured rows keep exactly the asked ratio and are padded by zeros\n"
           "                    to whole blocks of the longest row; N:M and V:N:M need a kept count per row\n"
           "                    that is a multiple of the block (other matrices keep their values at --dtype)\n"
           "  --joint           with sparsegpt, N:M or V:N:M and --format: SparseGPT's joint mode, the kept\n"
           "                    weights are rounded onto their block grid inside the pruning loop and the\n"
           "                    rounding error fed forward too (instead of pruning, then RTN)\n"
           "  --damp D          sparsegpt damping, fraction of mean(diag H) (default 0.01)\n"
           "  --block B         sparsegpt columns per mask block (default 128)\n"
           "  --groups G        sparsegpt, unstructured: 'block' = one threshold over all rows of a mask block\n"
           "                    (the reference; rows keep different counts), 'row' = each row of a block\n"
           "                    prunes its own lowest scores (default: row with --format, so packed rows need\n"
           "                    no padding; block without)\n"
           "  --keep GLOB       leave linears whose Hugging Face name matches dense (repeatable)\n"
           "  --threads K       worker threads (0 = all cores, the default); the output does not depend on it\n"
           "  --force           replace an existing OUT (never the model's own files)\n"
           "  --json            print the summary as one JSON object\n");
}

static void print_text(const lb_prune_report *r, const char *out)
{
    printf("%-44s %-11s %-18s %-24s %8s %10s %9s\n", "tensor", "shape", "status", "stored", "sparsity", "bytes",
           "rel.err");
    for (int64_t i = 0; i < r->n_tensors; i++) {
        const lb_prune_tensor_info *t = &r->tensors[i];
        char shape[32];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)t->rows, (long long)t->cols);
        printf("%-44s %-11s %-18s %-24s %8.4f %10zu %9.5f\n", t->name, shape, t->status, t->stored, t->sparsity,
               t->bytes, t->rel_err);
    }
    printf("linears: %lld pruned, sparsity %.4f; %zu bytes (dense at the same dtypes: %zu, ratio %.4f); %.2f s -> %s\n",
           (long long)r->n_pruned, r->linear_sparsity, r->total_bytes, r->dense_bytes,
           r->dense_bytes ? (double)r->total_bytes / (double)r->dense_bytes : 0.0, r->seconds, out);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

static void print_json(const lb_prune_report *r, const char *out, const lb_prune_opts *p)
{
    printf("{\"out\": "); json_str(out);
    printf(", \"criterion\": "); json_str(p->criterion);
    printf(", \"pattern\": "); json_str(p->pattern);
    printf(", \"ratio\": %.6g, \"n_pruned\": %lld, \"linear_sparsity\": %.6g, \"total_bytes\": %zu, "
           "\"dense_bytes\": %zu, \"seconds\": %.6g, \"tensors\": [", p->ratio, (long long)r->n_pruned,
           r->linear_sparsity, r->total_bytes, r->dense_bytes, r->seconds);
    for (int64_t i = 0; i < r->n_tensors; i++) {
        const lb_prune_tensor_info *t = &r->tensors[i];
        printf("%s{\"name\": ", i ? ", " : "");
        json_str(t->name);
        printf(", \"shape\": [%lld, %lld], \"status\": ", (long long)t->rows, (long long)t->cols);
        json_str(t->status);
        printf(", \"stored\": "); json_str(t->stored);
        printf(", \"sparsity\": %.6g, \"bytes\": %zu, \"dense_bytes\": %zu, \"rel_err\": %.6g}", t->sparsity, t->bytes,
               t->dense_bytes, isfinite(t->rel_err) ? t->rel_err : -1.0);
    }
    printf("]}\n");
}

void cli_prune_print(const lb_prune_report *r, const char *out, const lb_prune_opts *p, bool json)
{
    if (json) print_json(r, out, p);
    else print_text(r, out);
}

int cli_prune_spec(const char *cmd, const char *spec, char *buf, size_t cap, lb_prune_opts *p)
{
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec || !colon[1] || strlen(spec) >= cap)
        return cli_fail(cmd, "--prune %s: expected CRITERION:PATTERN[:RATIO] (sparsegpt:2:4, wanda:unstructured:0.5, "
                        "magnitude:64:2:8)", spec);
    memcpy(buf, spec, strlen(spec) + 1);
    buf[colon - spec] = 0;
    char *pat = buf + (colon - spec) + 1;
    p->criterion = buf;
    p->pattern = pat;
    p->ratio = 0.5;
    if (!strncmp(pat, "unstructured", 12) && pat[12] == ':') {
        char *end;
        pat[12] = 0;
        p->ratio = strtod(pat + 13, &end);
        if (end == pat + 13 || *end || !(p->ratio >= 0 && p->ratio < 1))
            return cli_fail(cmd, "--prune %s: the ratio must be a number in [0, 1)", spec);
    }
    return 0;
}

/* The first n_max tokens of a text file, with the model's tokenizer. */
static int calib_tokens(const char *in, const char *path, int64_t n_max, int32_t **tok, int64_t *n)
{
    lb_model *m = NULL;
    lb_tokenizer *t = NULL;
    if (cli_input("prune", "--calib-text", path, false)) return 1;
    if (cli_load_model_tok("prune", in, NULL, &m, &t)) return 1;
    lb_model_free(m);
    size_t len = 0;
    char *text = cli_read_all("prune", path, &len);
    if (!text) { lb_tokenizer_free(t); return 1; }
    size_t bad = cli_utf8_check((const unsigned char *)text, len);
    lb_status s = bad < len ? LB_ERR_ARG : lb_tokenizer_encode(t, text, len, 1, tok, n);
    free(text);
    lb_tokenizer_free(t);
    if (bad < len) return cli_fail("prune", "--calib-text %s: not UTF-8 at byte %zu", path, bad);
    if (s) return cli_fail_status("prune", s);
    if (*n > n_max) *n = n_max;
    if (*n < 2) return cli_fail("prune", "--calib-text %s: fewer than 2 tokens", path);
    return 0;
}

int cmd_prune(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *text = NULL, *stats = NULL;
    const char *keep[MAX_KEEP];
    lb_model_prune_opts o = {.p = {.criterion = "magnitude", .pattern = "unstructured", .ratio = 0.5}};
    bool json = false, force = false, joint = false, seq = false;
    int n_keep = 0, groups = 0, n_groups = 0;
    int64_t threads = 0, n_calib = 4096, ctx = 128, block = 0;
    const cli_optdef defs[] = {
        CLI_O_PATH("--model", &in), CLI_O_PATH("--out", &out), CLI_O_STR("--criterion", &o.p.criterion),
        CLI_O_STR("--pattern", &o.p.pattern), CLI_O_FLOAT("--ratio", &o.p.ratio, -1e9, 1e9),
        CLI_O_PATH("--calib", &stats), CLI_O_PATH("--calib-text", &text), CLI_O_INT("--calib-tokens", &n_calib, 2, INT64_MAX),
        CLI_O_INT("--ctx", &ctx, 2, 1 << 20), CLI_O_STR("--dtype", &o.dtype), CLI_O_STR("--format", &o.format), CLI_O_FLOAT("--damp", &o.p.damp, 0, 1e6),
        CLI_O_INT("--block", &block, 1, 1 << 20), CLI_O_MULTI("--keep", keep, MAX_KEEP, &n_keep), CLI_THREADS(&threads),
        CLI_O_FLAG("--joint", &joint), CLI_O_FLAG("--sequential", &seq), CLI_O_FLAG("--force", &force), CLI_O_FLAG("--json", &json),
        {.name = "--groups", .kind = CLI_CHOICE, .dst = &groups, .choices = "block|row", .seen = &n_groups}, {0}};
    int rc = cli_parse("prune", argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) { help(); return 0; }
    if (rc) return rc;
    if (!in || !out) return cli_fail("prune", "--model and --out are required (see lowbit prune --help)");
    if (n_groups && (strcmp(o.p.criterion, "sparsegpt") || strcmp(o.p.pattern, "unstructured")))
        return cli_fail("prune", "--groups applies to --criterion sparsegpt with --pattern unstructured");
    if (n_groups) o.p.row_groups = groups ? 1 : -1;
    if (!(o.p.ratio >= 0 && o.p.ratio < 1)) return cli_fail("prune", "--ratio %g: must lie in [0, 1)", o.p.ratio);
    bool calib = !strcmp(o.p.criterion, "wanda") || !strcmp(o.p.criterion, "sparsegpt");
    if (stats && text) return cli_fail("prune", "--calib and --calib-text exclude each other");
    if (calib && !text && !stats)
        return cli_fail("prune", "--criterion %s needs calibration data: give --calib STATS or --calib-text FILE",
                        o.p.criterion);
    if (!calib && (text || stats))
        return cli_fail("prune", "--criterion %s uses no calibration statistics: drop %s", o.p.criterion,
                        stats ? "--calib" : "--calib-text");
    if (seq && !text) return cli_fail("prune", "--sequential collects statistics while pruning: it needs --calib-text");
    if (stats && cli_input("prune", "--calib", stats, false)) return 1;
    if (cli_input("prune", "--model", in, true)) return 1;
    if (cli_output("prune", "--out", out, force, &in, 1)) return 1;
    int32_t *tok = NULL;
    int64_t nt = 0;
    if (text && calib_tokens(in, text, n_calib, &tok, &nt)) return 1;
    o.p.block = block;
    o.joint = joint;
    o.sequential = seq;
    o.tokens = tok;
    o.n_tokens = nt;
    o.ctx = ctx;
    o.keep = keep;
    o.n_keep = n_keep;
    o.n_threads = (int)threads;
    o.progress = cli_progress;
    o.progress_user = "prune";
    lb_model *m = NULL, *q = NULL;
    lb_prune_report rep = {0};
    lb_calib *cal = NULL;
    lb_status s = lb_model_load(in, &m);
    if (!s && stats && !(s = lb_calib_load(stats, m, &cal))) {
        o.calib = cal;
        o.stats_for = lb_calib_stats_for;
    }
    if (!s) s = lb_model_prune(m, &o, &q, &rep);
    cli_progress_end();
    lb_calib_free(cal);
    lb_model_free(m);
    free(tok);
    if (!s) s = lb_model_save(q, out);
    lb_model_free(q);
    if (s) { lb_prune_report_free(&rep); return cli_fail_status("prune", s); }
    if (json) print_json(&rep, out, &o.p);
    else print_text(&rep, out);
    lb_prune_report_free(&rep);
    return 0;
}
