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
           "                        [--quantize-embeddings] [--seed S] [--sinq-iters N] [--act A] [--threads K] [--force]\n"
           "                        [--json]\n"
           "Quantizes the linear weights (q, k, v, o, gate, up, down) of a model; embeddings, lm_head and norms\n"
           "keep their precision. Writes a safetensors file that `lowbit run/eval/inspect` read (docs/file-format.md).\n"
           "  --format F        a format from `lowbit formats` (int4_g64_asym, mxfp4, nvfp4, nf4, ...), or an INT\n"
           "                    family with --group: int4, int4_asym, int8_bf16 ...\n"
           "                    (f32 with --method hadamard+rtn: the rotation alone, no quantization)\n"
           "  --method M        rtn (default), sinq, hadamard+rtn, hadamard+sinq\n"
           "  --group G         group size (a power of two) for the INT families\n"
           "  --hadamard BLOCK  rotate each linear's input space with blocks of at most BLOCK (0 = whole row);\n"
           "                    turns rtn/sinq into hadamard+rtn/hadamard+sinq\n"
           "  --scale-rule R    block scale rule: floor (default), ceil, mse (searched), full (symmetric INT:\n"
           "                    the block extreme maps to code -2^(k-1), all 2^k codes used)\n"
           "  --keep PATTERN    keep tensors whose Hugging Face name matches the glob at original precision\n"
           "                    (repeatable; e.g. 'model.layers.0.*', '*down_proj*')\n"
           "  --quantize-embeddings  quantize the token embedding (and an untied lm_head) too\n"
           "  --seed S          seed of the random Hadamard signs (default 1)\n"
           "  --act A           record activation format A for every linear's input (int8, int4, mxint8,\n"
           "                    mxfp8_e4m3, mxfp4, nvfp4, ... any block format); run/eval quantize the inputs\n"
           "                    per token with it (docs/activations.md)\n"
           "  --threads K       worker threads (0 = all cores, the default); the output does not depend on it\n"
           "  --force           replace an existing OUT (never the model's own files)\n"
           "  --json            print the summary as one JSON object\n"
           "Linears whose input size is not a multiple of the block are kept at original precision and\n"
           "reported as 'kept (shape)'.\n");
}

static void print_text(const lb_quant_report *r, const char *out)
{
    printf("%-44s %-11s %-20s %-14s %-18s %8s %10s %9s\n", "tensor", "shape", "format", "method", "status", "bits/w",
           "bytes", "rel.err");
    for (int64_t i = 0; i < r->n_tensors; i++) {
        const lb_quant_tensor_info *t = &r->tensors[i];
        char shape[32];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)t->rows, (long long)t->cols);
        printf("%-44s %-11s %-20s %-14s %-18s %8.3f %10zu %9.5f\n", t->name, shape, t->format,
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

int cmd_quantize(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *act = NULL;
    const char *keep[MAX_KEEP];
    lb_model_quant_opts o = {.method = "rtn", .q = {.seed = 1}};
    bool json = false, force = false, qemb = false;
    int n_keep = 0, n_had = 0, rule = 0;
    int64_t seed = 1, iters = 0, threads = 0;
    const cli_optdef defs[] = {
        CLI_O_PATH("--model", &in), CLI_O_PATH("--out", &out), CLI_O_STR("--format", &o.format),
        CLI_O_STR("--method", &o.method), CLI_O_INT("--group", &o.group, 1, 1 << 20),
        {.name = "--hadamard", .kind = CLI_INT, .dst = &o.q.hadamard_block, .ilo = 0, .ihi = 1 << 20, .seen = &n_had},
        CLI_O_CHOICE("--scale-rule", &rule, "floor|ceil|mse|full"), CLI_O_MULTI("--keep", keep, MAX_KEEP, &n_keep),
        CLI_O_STR("--act", &act), CLI_O_INT("--seed", &seed, 0, INT64_MAX), CLI_O_INT("--sinq-iters", &iters, 1, 1000), CLI_THREADS(&threads),
        CLI_O_FLAG("--quantize-embeddings", &qemb), CLI_O_FLAG("--force", &force), CLI_O_FLAG("--json", &json), {0}};
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
    bool rotate = n_had > 0;
    if (!in || !out || !o.format)
        return cli_fail("quantize", "--model, --out and --format are required (see lowbit quantize --help)");
    if (cli_input("quantize", "--model", in, true)) return 1;
    if (cli_output("quantize", "--out", out, force, &in, 1)) return 1;
    char mbuf[64];
    if (rotate) o.method = with_rotation(o.method, mbuf, sizeof mbuf);
    o.keep = keep;
    o.progress = cli_progress;
    o.progress_user = "quantize";
    lb_model *m = NULL, *q = NULL;
    lb_quant_report rep;
    lb_status s = lb_model_load(in, &m);
    if (!s && act) {   /* a bad name fails before any work */
        s = lb_model_set_act(m, act, NULL);
        if (!s) s = lb_model_set_act(m, NULL, NULL);
    }
    if (!s) s = lb_model_quantize(m, &o, &q, &rep);
    cli_progress_end();
    lb_model_free(m);
    if (!s && cli_set_act("quantize", q, act)) { lb_model_free(q); lb_quant_report_free(&rep); return 1; }
    if (!s) s = lb_model_save(q, out);
    lb_model_free(q);
    if (s) return cli_fail_status("quantize", s);
    if (json) print_json(&rep, out, o.format, o.method);
    else print_text(&rep, out);
    lb_quant_report_free(&rep);
    tokenizer_hint(in, out);
    return 0;
}
