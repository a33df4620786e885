/* cmd_quantize.c: `lowbit quantize`: quantize every linear weight of a model
 * with one method into one format and write a self-contained lowbit
 * safetensors file; prints a per-tensor summary (text or JSON). */
#include "cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEEP 64

static void help(void)
{
    printf("usage: lowbit quantize --model IN --out OUT.safetensors --format F [--method M] [--group G]\n"
           "                        [--hadamard BLOCK] [--scale-rule floor|ceil|mse|full] [--keep PATTERN ...]\n"
           "                        [--quantize-embeddings] [--seed S] [--sinq-iters N] [--act A] [--quarot] [--threads K]\n"
           "                        [--force] [--json]\n"
           "                        [--calib STATS | --calib-text FILE [--calib-tokens N] [--calib-ctx C]\n"
           "                         [--calib-from-byte B] [--sequential] [--tokenizer T]] [--prune C:P[:R]]\n"
           "                        [--bits-budget B [--budget-formats F,..] [--budget-metric 0|1|2]]\n"
           "Quantizes the linear weights (q, k, v, o, gate, up, down) of a model; embeddings, lm_head and norms\n"
           "keep their precision. Writes a safetensors file that `lowbit run/eval/inspect` read (docs/file-format.md).\n"
           "  --format F        a format from `lowbit formats` (int4_g64_asym, mxfp4, nvfp4, nf4, ...), or an INT\n"
           "                    family with --group: int4, int4_asym, int8_bf16 ...\n"
           "                    (f32 with --method hadamard+rtn or dartquant: the rotation alone, no quantization)\n"
           "  --method M        rtn (default), sinq, hadamard+rtn, hadamard+sinq, gptq, awq, smoothquant, dartquant, ...\n"
           "                    dartquant learns each input's rotation, needs --calib-text (docs/activations.md)\n"
           "  --group G         group size (a power of two) for the INT families\n"
           "  --hadamard BLOCK  rotate each linear's input space with blocks of at most BLOCK (0 = whole row);\n"
           "                    turns rtn/sinq into hadamard+rtn/hadamard+sinq\n"
           "  --scale-rule R    block scale rule: floor (default), ceil, mse (searched), full (symmetric INT:\n"
           "                    the block extreme maps to code -2^(k-1), all 2^k codes used)\n"
           "  --keep PATTERN    keep tensors whose Hugging Face name matches the glob at original precision\n"
           "                    (repeatable; e.g. 'model.layers.0.*', '*down_proj*')\n"
           "  --quantize-embeddings  quantize the token embedding (and an untied lm_head) too\n"
           "  --seed S          seed of the random Hadamard signs (default 1)\n"
           "  --quarot          first rotate the residual stream (QuaRot: RMSNorm weights folded into the linears,\n"
           "                    a Hadamard over dim, signs from seed S+1, fused into embeddings, q/k/v, o, gate/up,\n"
           "                    down, lm_head)\n"
           "  --calib STATS     input statistics from `lowbit calib` for the methods that use them\n"
           "  --calib-text FILE collect them on the fly, layer by layer, from FILE's tail (as lowbit calib;\n"
           "                    the byte range is printed on stderr); --calib-tokens N (default 16384),\n"
           "                    --calib-ctx C (default 128), --calib-from-byte B as calib's --tokens/--ctx/--from-byte\n"
           "  --sequential      with --calib-text: layer l's inputs also come from the model whose layers < l are\n"
           "                    already quantized (GPTQ's sequential mode; needed by qronos); with --prune,\n"
           "                    already pruned\n"
           "  --tokenizer T     tokenizer for --calib-text (default: the one beside the model)\n"
           "  --act A           record activation format A for every linear's input (int8, int4, mxint8,\n"
           "                    mxfp8_e4m3, mxfp4, nvfp4, ... any block format); run/eval quantize the inputs\n"
           "                    per token with it (docs/activations.md); stamp-dct|haar|id:FORMAT[:AVG]: STaMP\n"
           "  --act-calib STATS static activation scales for --act FORMAT[:static] (symmetric INT: int8, int4,\n"
           "                    ...) from STATS (lowbit calib of this model), stored in OUT: every token's\n"
           "                    input block gets the scale of the block's calibrated max |x|; not with rotations\n"
           "                    or SmoothQuant (their inputs are transformed) nor --quarot\n"
           "  --threads K       worker threads (0 = all cores, the default); the output does not depend on it\n"
           "  --force           replace an existing OUT (never the model's own files)\n"
           "  --json            print the summary as one JSON object\n"
           "  --prune C:P[:R]   prune first and store sparse with the kept values in --format (as lowbit prune\n"
           "                    --format; docs/sparsity.md): criterion C (magnitude, wanda, sparsegpt), pattern P\n"
           "                    (unstructured, N:M, V:N:M), ratio R for unstructured (default 0.5), e.g.\n"
           "                    sparsegpt:2:4, wanda:unstructured:0.6. --method rtn: prune, then RTN; --method\n"
           "                    gptq with sparsegpt: SparseGPT's joint prune-and-quantize. Takes --calib or\n"
           "                    --calib-text (wanda, sparsegpt), --keep, --threads; not the other options\n"
           "  --bits-budget B   mixed precision: each linear takes --format or one of --budget-formats (comma\n"
           "                    list), chosen greedily by the largest drop of its proxy loss per added bit (the\n"
           "                    method's own result on the calibration statistics), mean bits/weight of the\n"
           "                    quantized linears <= B; needs --calib or --calib-text; the table shows each choice\n"
           "  --budget-metric M 0: output error tr(E H E^T) (default); 1: relative, over tr(W H W^T); 2: the\n"
           "                    model's mean KL divergence with that linear alone quantized, on the first 2048\n"
           "                    calibration tokens (needs --calib-text)\n"
           "A linear whose input size the block does not divide is stored padded to the next multiple of\n"
           "the block (zero weights meeting zero inputs) and reported as 'quantized (padded to N)'.\n");
}

static void print_text(const lb_quant_report *r, const char *out)
{
    printf("%-44s %-11s %-20s %-14s %-25s %8s %10s %9s\n", "tensor", "shape", "format", "method", "status", "bits/w",
           "bytes", "rel.err");
    for (int64_t i = 0; i < r->n_tensors; i++) {
        const lb_quant_tensor_info *t = &r->tensors[i];
        char shape[32];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)t->rows, (long long)t->cols);
        printf("%-44s %-11s %-20s %-14s %-25s %8.3f %10zu %9.5f\n", t->name, shape, t->format,
               *t->method ? t->method : "-", t->status, t->bits_per_weight, t->bytes, t->rel_err);
    }
    printf("linears: %lld quantized, %lld kept; linear bits/weight %.3f; all weights %.3f bits/weight, %zu bytes; "
           "%.2f s -> %s\n", (long long)r->n_quantized, (long long)r->n_kept_linear, r->linear_bits_per_weight,
           r->total_bits_per_weight, r->total_bytes, r->seconds, out);
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

static void print_json(const lb_quant_report *r, const char *out, const char *fmt, const char *method)
{
    printf("{\"out\": "); json_str(out);
    printf(", \"format\": "); json_str(fmt);
    printf(", \"method\": "); json_str(method);
    printf(", \"n_quantized\": %lld, \"n_kept_linear\": %lld, \"linear_bits_per_weight\": %.6g, "
           "\"total_bits_per_weight\": %.6g, \"total_bytes\": %zu, \"seconds\": %.6g, \"tensors\": [",
           (long long)r->n_quantized, (long long)r->n_kept_linear, r->linear_bits_per_weight,
           r->total_bits_per_weight, r->total_bytes, r->seconds);
    for (int64_t i = 0; i < r->n_tensors; i++) {
        const lb_quant_tensor_info *t = &r->tensors[i];
        printf("%s{\"name\": ", i ? ", " : "");
        json_str(t->name);
        printf(", \"shape\": [%lld, %lld], \"format\": ", (long long)t->rows, (long long)t->cols);
        json_str(t->format);
        printf(", \"method\": "); json_str(t->method);
        printf(", \"status\": "); json_str(t->status);
        printf(", \"bits_per_weight\": %.6g, \"bytes\": %zu, \"rel_err\": %.6g", t->bits_per_weight, t->bytes,
               isfinite(t->rel_err) ? t->rel_err : -1.0);
        if (t->imbalance_before > 0)
            printf(", \"imbalance_before\": %.6g, \"imbalance_after\": %.6g", t->imbalance_before, t->imbalance_after);
        printf("}");
    }
    printf("]}\n");
}

/* "rtn" + --hadamard -> "hadamard+rtn". */
static const char *with_rotation(const char *m, char *buf, size_t cap)
{
    if (!strncmp(m, "hadamard+", 9)) return m;
    snprintf(buf, cap, "hadamard+%s", m);
    return buf;
}

/* The quantized file carries no tokenizer: when none sits beside it, say
 * which one `run`/`eval` will need (on stderr, so stdout stays the report). */
static void tokenizer_hint(const char *in, const char *out)
{
    char src[4096], near[4096];
    if (lb_tokenizer_find(out, near, sizeof near) == LB_OK) return;
    if (lb_tokenizer_find(in, src, sizeof src) == LB_OK)
        fprintf(stderr, "lowbit quantize: no tokenizer beside %s; run it with --tokenizer %s (or copy that file "
                        "beside it)\n", out, src);
}

/* Statistics for the run: loaded (--calib) or tokens to collect them from
 * (--calib-text); prints and returns 1 on error. */
typedef struct calib_args {
    const char *stats, *text, *tok;
    int64_t tokens, ctx, from;
    int n_tokens_given, n_ctx_given, n_from_given;
    bool sequential;
} calib_args;

static int calib_check(const calib_args *a)
{
    if (a->stats && a->text) return cli_fail("quantize", "--calib and --calib-text exclude each other");
    if (!a->text && (a->n_tokens_given || a->n_ctx_given || a->n_from_given || a->tok))
        return cli_fail("quantize", "--calib-tokens, --calib-ctx, --calib-from-byte and --tokenizer go with --calib-text");
    if (a->sequential && !a->text)
        return cli_fail("quantize", "--sequential collects statistics on the fly: it needs --calib-text FILE");
    return (a->stats && cli_input("quantize", "--calib", a->stats, false)) ||
           (a->text && cli_input("quantize", "--calib-text", a->text, false)) ||
           (a->tok && cli_input("quantize", "--tokenizer", a->tok, false));
}

static int calib_setup(const char *in, const calib_args *a, lb_model **m, lb_calib **c, cli_calib_text *ct,
                       lb_model_quant_opts *o)
{
    if (!a->text) {
        lb_status s = lb_model_load(in, m);
        if (!s && a->stats) s = lb_calib_load(a->stats, *m, c);
        o->calib = *c;
        return s ? cli_fail_status("quantize", s) : 0;
    }
    lb_tokenizer *t;
    if (cli_load_model_tok("quantize", in, a->tok, m, &t)) return 1;
    lb_model_info mi;
    lb_model_get_info(*m, &mi);
    int64_t ctx = a->ctx ? a->ctx : (mi.max_seq < 128 ? mi.max_seq : 128);
    int rc = ctx > mi.max_seq ? cli_fail("quantize", "--calib-ctx %lld: exceeds the model's %lld positions",
                                         (long long)ctx, (long long)mi.max_seq)
                              : cli_calib_text_tokens("quantize", "--calib-text", a->text, t, a->tokens, ctx, a->from, ct);
    lb_tokenizer_free(t);
    if (rc) return 1;
    cli_calib_text_print(stderr, a->text, ct, ctx);
    o->calib_tokens = ct->tokens;
    o->n_calib_tokens = ct->n_tokens;
    o->calib_ctx = ctx;
    o->sequential = a->sequential;
    return 0;
}

/* --prune: lb_model_prune with the kept values in o->format; prints and
 * returns 1 on error. */
static int quantize_pruned(const char *spec, lb_model *m, const lb_calib *cal, const cli_calib_text *ct,
                           const lb_model_quant_opts *o, const char *out, bool json)
{
    char buf[128];
    lb_model_prune_opts po = {.format = o->format, .keep = o->keep, .n_keep = o->n_keep, .n_threads = o->n_threads,
                              .calib = cal, .tokens = ct->tokens, .n_tokens = ct->n_tokens, .ctx = o->calib_ctx,
                              .sequential = o->sequential,
                              .progress = cli_progress, .progress_user = "quantize"};
    if (cli_prune_spec("quantize", spec, buf, sizeof buf, &po.p)) return 1;
    if (strcmp(o->method, "rtn") && strcmp(o->method, "gptq"))
        return cli_fail("quantize", "--prune composes with --method rtn (prune, then RTN) or gptq (with sparsegpt: "
                        "the joint mode), not %s", o->method);
    if (!strcmp(o->method, "gptq") && strcmp(po.p.criterion, "sparsegpt"))
        return cli_fail("quantize", "--prune %s with --method gptq: only sparsegpt has a joint prune-and-quantize "
                        "mode (use --method rtn)", spec);
    po.joint = !strcmp(o->method, "gptq");
    lb_model *q = NULL;
    lb_prune_report rep = {0};
    lb_status s = lb_model_prune(m, &po, &q, &rep);
    cli_progress_end();
    if (!s) s = lb_model_save(q, out);
    lb_model_free(q);
    if (s) { lb_prune_report_free(&rep); return cli_fail_status("quantize", s); }
    cli_prune_print(&rep, out, &po.p, json);
    lb_prune_report_free(&rep);
    return 0;
}

int cmd_quantize(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *act = NULL, *prune = NULL, *act_calib = NULL;
    calib_args ca = {.tokens = 16384, .from = -1};
    const char *keep[MAX_KEEP];
    lb_model_quant_opts o = {.method = "rtn", .q = {.seed = 1}};
    bool json = false, force = false, qemb = false, quarot = false;
    int n_keep = 0, n_had = 0, rule = 0;
    int64_t seed = 1, iters = 0, threads = 0, bmetric = 0;
    const char *bformats = NULL, *blist[32];
    char bbuf[1024];
    const cli_optdef defs[] = {
        CLI_O_PATH("--model", &in), CLI_O_PATH("--out", &out), CLI_O_STR("--format", &o.format),
        CLI_O_STR("--method", &o.method), CLI_O_INT("--group", &o.group, 1, 1 << 20),
        {.name = "--hadamard", .kind = CLI_INT, .dst = &o.q.hadamard_block, .ilo = 0, .ihi = 1 << 20, .seen = &n_had},
        CLI_O_CHOICE("--scale-rule", &rule, "floor|ceil|mse|full"), CLI_O_MULTI("--keep", keep, MAX_KEEP, &n_keep),
        CLI_O_STR("--act", &act), CLI_O_PATH("--act-calib", &act_calib), CLI_O_INT("--seed", &seed, 0, INT64_MAX), CLI_O_INT("--sinq-iters", &iters, 1, 1000), CLI_THREADS(&threads),
        CLI_O_FLAG("--quantize-embeddings", &qemb), CLI_O_FLAG("--force", &force), CLI_O_FLAG("--json", &json),
        CLI_O_PATH("--calib", &ca.stats), CLI_O_PATH("--calib-text", &ca.text), CLI_O_PATH("--tokenizer", &ca.tok),
        {.name = "--calib-tokens", .kind = CLI_INT, .dst = &ca.tokens, .ilo = 1, .ihi = INT64_C(1) << 32,
         .seen = &ca.n_tokens_given},
        {.name = "--calib-ctx", .kind = CLI_INT, .dst = &ca.ctx, .ilo = 1, .ihi = INT64_C(1) << 24, .seen = &ca.n_ctx_given},
        {.name = "--calib-from-byte", .kind = CLI_INT, .dst = &ca.from, .ilo = 0, .ihi = INT64_MAX,
         .seen = &ca.n_from_given},
        CLI_O_FLAG("--sequential", &ca.sequential), CLI_O_STR("--prune", &prune), CLI_O_FLAG("--quarot", &quarot),
        CLI_O_FLOAT("--bits-budget", &o.bits_budget, 0.5, 32), CLI_O_STR("--budget-formats", &bformats),
        CLI_O_INT("--budget-metric", &bmetric, 0, 2), {0}};
    int rc = cli_parse("quantize", argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) { help(); return 0; }
    if (rc) return rc;
    static const lb_scale_rule rules[] = {LB_SCALE_FLOOR, LB_SCALE_CEIL, LB_SCALE_MSE, LB_SCALE_FULL};
    o.q.scale_rule = rules[rule];
    o.q.seed = (uint64_t)seed;
    o.q.sinq_iters = (int)iters;
    o.n_threads = (int)threads;
    o.n_keep = n_keep;
    o.quantize_embeddings = qemb;
    o.budget_metric = (int)bmetric;
    if ((bformats || bmetric) && !(o.bits_budget > 0))
        return cli_fail("quantize", "--budget-formats and --budget-metric need --bits-budget B");
    if (bformats) {
        snprintf(bbuf, sizeof bbuf, "%s", bformats);
        for (char *t = strtok(bbuf, ","); t; t = strtok(NULL, ",")) {
            if (o.n_budget_formats == 32) return cli_fail("quantize", "--budget-formats: at most 32 formats");
            blist[o.n_budget_formats++] = t;
        }
        o.budget_formats = blist;
    }
    bool rotate = n_had > 0;
    if (!in || !out || !o.format)
        return cli_fail("quantize", "--model, --out and --format are required (see lowbit quantize --help)");
    if (cli_input("quantize", "--model", in, true) || calib_check(&ca)) return 1;
    if (act_calib && !act) return cli_fail("quantize", "--act-calib needs --act FORMAT (int8, int4, ...)");
    if (act_calib && quarot)
        return cli_fail("quantize", "--act-calib: static scales are of the unrotated model's inputs, not --quarot's");
    if (act_calib && cli_input("quantize", "--act-calib", act_calib, false)) return 1;
    if (prune && (rotate || rule || o.group || qemb || act || iters || o.bits_budget > 0 || quarot))
        return cli_fail("quantize", "--prune takes --format, --method rtn|gptq, --calib/--calib-text [--sequential], "
                        "--keep and --threads only (not --hadamard, --scale-rule, --group, --quantize-embeddings, "
                        "--act, --sinq-iters, --bits-budget, --quarot)");
    const char *inputs[] = {in, ca.stats, ca.text, ca.tok, act_calib};
    if (cli_output("quantize", "--out", out, force, inputs, 5)) return 1;
    char mbuf[64];
    if (rotate) o.method = with_rotation(o.method, mbuf, sizeof mbuf);
    o.keep = keep;
    o.progress = cli_progress;
    o.progress_user = "quantize";
    lb_model *m = NULL, *q = NULL;
    lb_calib *cal = NULL;
    cli_calib_text ct = {0};
    lb_quant_report rep;
    if (calib_setup(in, &ca, &m, &cal, &ct, &o)) { lb_model_free(m); return 1; }
    if (prune) {
        rc = quantize_pruned(prune, m, cal, &ct, &o, out, json);
        lb_model_free(m);
        lb_calib_free(cal);
        free(ct.tokens);
        return rc;
    }
    lb_status s = LB_OK;
    if (quarot) {   /* the residual-stream rotation first (docs/activations.md#quarot-residual-stream-rotation) */
        lb_model *r = NULL;
        s = lb_model_quarot(m, o.q.seed + 1, &r);   /* signs independent of the per-input rotations' */
        lb_model_free(m);
        m = r;
    }
    lb_calib *acal = NULL;
    if (!s && act_calib && (s = lb_calib_load(act_calib, m, &acal))) {
        lb_model_free(m);
        lb_calib_free(cal);
        free(ct.tokens);
        return cli_fail("quantize", "--act-calib %s: %s", act_calib, lb_errmsg());
    }
    if (!s && act) {   /* a bad name (or statistics that do not fit) fails before any work */
        s = acal ? lb_model_set_act_static(m, act, acal, NULL) : lb_model_set_act(m, act, NULL);
        if (!s) s = lb_model_set_act(m, NULL, NULL);
    }
    if (!s) s = lb_model_quantize(m, &o, &q, &rep);
    cli_progress_end();
    lb_model_free(m);
    lb_calib_free(cal);
    free(ct.tokens);
    if (!s && acal) {   /* the static scales: the quantized linears must have no input transforms */
        int64_t kept = 0;
        s = lb_model_set_act_static(q, act, acal, &kept);
        if (s) {
            lb_calib_free(acal);
            lb_model_free(q);
            lb_quant_report_free(&rep);
            return cli_fail("quantize", "--act %s --act-calib %s: %s", act, act_calib, lb_errmsg());
        }
        cli_act_kept_note("quantize", act, kept);
    } else if (!s && cli_set_act("quantize", q, act)) {
        lb_calib_free(acal);
        lb_model_free(q);
        lb_quant_report_free(&rep);
        return 1;
    }
    lb_calib_free(acal);
    if (!s) s = lb_model_save(q, out);
    lb_model_free(q);
    if (s) return cli_fail_status("quantize", s);
    if (json) print_json(&rep, out, o.format, o.method);
    else print_text(&rep, out);
    lb_quant_report_free(&rep);
    tokenizer_hint(in, out);
    return 0;
}
