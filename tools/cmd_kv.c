/* cmd_kv.c: `lowbit kv` (the KV-cache policy registry, SPEC checking) and
 * `lowbit eval kv` (the KV-cache measurement: KL divergence, top-1 agreement,
 * perplexity and bytes per token of caches against the f32 cache; docs/kv.md). */
#include "cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int kv_help(void)
{
    printf("usage: lowbit kv --list [--json]\n"
           "       lowbit kv --check SPEC [--json]\n"
           "--list: every KV-cache policy (storage or eviction) with its parameters, defaults and ranges.\n"
           "--check: parse a SPEC and print its full form (every parameter written out).\n"
           "SPEC: policy[:key=value,...][+policy[:...]] (e.g. kivi:bits=4,residual=128), docs/kv.md.\n");
    return 0;
}

static void print_param(int i, int j, bool json)
{
    lb_kv_param_info p;
    if (lb_kv_policy_param(i, j, &p)) return;
    if (json) {
        printf("%s{\"key\": \"%s\", \"help\": \"%s\", ", j ? ", " : "", p.key, p.help);
        if (p.choices) printf("\"choices\": \"%s\", \"default\": \"%s\"}", p.choices, p.def_name);
        else printf("\"default\": %g, \"min\": %g, \"max\": %g, \"max_open\": %s, \"integer\": %s}", p.def, p.lo, p.hi,
                    p.hi_open ? "true" : "false", p.integer ? "true" : "false");
        return;
    }
    if (p.choices) printf("    %-10s %s (%s; default %s)\n", p.key, p.help, p.choices, p.def_name);
    else printf("    %-10s %s (default %.10g, in [%.10g, %.10g%s)\n", p.key, p.help, p.def, p.lo, p.hi, p.hi_open ? ")" : "]");
}

static int kv_list(bool json)
{
    if (json) printf("{\"policies\": [");
    for (int i = 0; i < lb_kv_policy_count(); i++) {
        if (json) printf("%s\n  {\"name\": \"%s\", \"kind\": \"%s\", \"summary\": \"%s\", \"params\": [", i ? "," : "",
                         lb_kv_policy_name(i), lb_kv_policy_kind(i), lb_kv_policy_summary(i));
        else printf("%-12s %-6s %s\n", lb_kv_policy_name(i), lb_kv_policy_kind(i), lb_kv_policy_summary(i));
        for (int j = 0; j < lb_kv_policy_param_count(i); j++) print_param(i, j, json);
        if (json) printf("]}");
    }
    if (json) printf("\n]}\n");
    return 0;
}

int cmd_kv(int argc, char **argv)
{
    bool list = false, json = false;
    const char *check = NULL;
    const cli_optdef defs[] = {CLI_O_FLAG("--list", &list), CLI_O_FLAG("--json", &json), CLI_O_STR("--check", &check),
                               {0}};
    int rc = cli_parse("kv", argc, argv, defs, NULL, 0, NULL);
    if (rc) return rc < 0 ? kv_help() : rc;
    if (list == !!check) return cli_fail("kv", "give --list or --check SPEC (see lowbit kv --help)");
    if (list) return kv_list(json);
    char full[256];
    if (lb_kv_spec_check(check, "--check", full, sizeof full)) return cli_fail("kv", "%s", lb_errmsg());
    if (json) printf("{\"spec\": \"%s\"}\n", full);
    else printf("%s\n", full);
    return 0;
}

/* ---- lowbit eval kv */

#define MAX_SPECS 64

typedef struct evkv_opts {
    const char *model, *tok, *text, *sweep, *svg;
    const char *kv[MAX_SPECS];
    int n_kv;
    int64_t ctx, cont, chunks, threads;
    bool json, force, decode;
} evkv_opts;

static int evkv_help(void)
{
    printf("usage: lowbit eval kv --model M --text FILE [--tokenizer T] (--kv SPEC)... [--sweep 'SPEC;SPEC;...']\n"
           "                      [--ctx C] [--cont N] [--chunks K] [--decode] [--threads K] [--json] [--svg F [--force]]\n"
           "For each chunk of C + N + 1 tokens of the text (first token replaced by BOS): prefill C tokens,\n"
           "compress the cache (the SPEC's eviction stages), then run the next N tokens teacher-forced; the N\n"
           "positions are compared with the same run on the f32 cache. Reports per SPEC: mean KL divergence\n"
           "(+- its standard error) and maximum, top-1 agreement, the continuation's perplexity (and f32's), KV\n"
           "bytes per token after compression (the cache's own accounting over the C positions; f32 for\n"
           "comparison), at the chunk's end, the fraction of entries kept, and the QSNR (dB) of keys and values:\n"
           "the f32 cache's context stored by the SPEC's storage stage alone (999 in JSON: exact; a storage that\n"
           "quantizes when compressed, thinkv: the tokens its run holds after compression, each in its format,\n"
           "marked *), and the attention kept: the fraction of the f32 continuation queries' attention to the\n"
           "context that falls on the tokens held after compression, beside the oracle's (the best as many\n"
           "tokens per head; per layer in --json). Markdown, or --json.\n"
           "  --decode: feed the N tokens one at a time (the f32 run too), so decode-time compression (every=N,\n"
           "  paged:decode=1) acts between the scored positions; without it they are one batch.\n"
           "  Defaults: C 384, N 64 (fit 512-token models), 8 chunks (--chunks 0: all). --kv repeats; --sweep\n"
           "  takes a ';'-separated list. SPEC syntax: docs/kv.md, lowbit kv --list.\n"
           "  --svg F: KL divergence (log scale) vs bytes per token, one curve per SPEC family (the SPEC without\n"
           "  its bits), written atomically; an existing F only with --force.\n");
    return 0;
}

static int evkv_parse(int argc, char **argv, evkv_opts *o)
{
    *o = (evkv_opts){.chunks = 8};
    const cli_optdef defs[] = {
        CLI_O_PATH("--model", &o->model), CLI_O_PATH("--tokenizer", &o->tok), CLI_O_PATH("--text", &o->text),
        CLI_O_MULTI("--kv", o->kv, MAX_SPECS, &o->n_kv), CLI_O_STR("--sweep", &o->sweep),
        CLI_O_INT("--ctx", &o->ctx, 1, INT64_C(1) << 24), CLI_O_INT("--cont", &o->cont, 1, INT64_C(1) << 24),
        CLI_O_INT("--chunks", &o->chunks, 0, INT32_MAX), CLI_THREADS(&o->threads), CLI_O_FLAG("--json", &o->json),
        CLI_O_FLAG("--decode", &o->decode), CLI_O_PATH("--svg", &o->svg), CLI_O_FLAG("--force", &o->force), {0}};
    int rc = cli_parse("eval kv", argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) return evkv_help(), -1;
    if (rc) return rc;
    if (!o->model) return cli_fail("eval kv", "--model is required (see lowbit eval kv --help)");
    if (!o->text) return cli_fail("eval kv", "--text FILE is required");
    if (cli_input("eval kv", "--model", o->model, true) || (o->tok && cli_input("eval kv", "--tokenizer", o->tok, true)) ||
        cli_input("eval kv", "--text", o->text, false))
        return 1;
    const char *inputs[] = {o->model, o->tok, o->text};
    if (o->svg && cli_output("eval kv", "--svg", o->svg, o->force, inputs, 3)) return 1;
    return 0;
}

/* --kv and --sweep into one list; every SPEC checked before any work. */
static int collect_specs(evkv_opts *o, char **sweep_copy)
{
    *sweep_copy = NULL;
    if (o->sweep) {
        char *d = *sweep_copy = strdup(o->sweep);
        for (char *p = strtok(d, ";"); p; p = strtok(NULL, ";")) {
            if (o->n_kv == MAX_SPECS) return cli_fail("eval kv", "--sweep: more than %d SPECs", MAX_SPECS);
            o->kv[o->n_kv++] = p;
        }
    }
    if (!o->n_kv) return cli_fail("eval kv", "no cache to evaluate: give --kv SPEC or --sweep 'SPEC;...'");
    for (int i = 0; i < o->n_kv; i++)
        if (lb_kv_spec_check(o->kv[i], "--kv", NULL, 0)) return cli_fail("eval kv", "%s", lb_errmsg());
    return 0;
}

static void print_rows(const evkv_opts *o, const lb_kv_eval_row *r, int n, int64_t ctx, int64_t cont, int64_t n_layers)
{
    if (o->json) {
        printf("{\"model\": \"%s\", \"text\": \"%s\", \"ctx\": %lld, \"cont\": %lld, \"decode\": %s, \"results\": [",
               o->model, o->text, (long long)ctx, (long long)cont, o->decode ? "true" : "false");
        for (int i = 0; i < n; i++) {
            printf("%s\n  {\"spec\": \"%s\", \"chunks\": %lld, \"n\": %lld, \"kld\": %.8g, \"kld_err\": %.4g, "
                   "\"kld_max\": %.6g, \"top1\": %.6f, \"ppl\": %.6f, \"ppl_f32\": %.6f, \"bytes_per_token\": %.3f, "
                   "\"bytes_per_token_end\": %.3f, \"f32_bytes_per_token\": %.3f, \"tokens_held\": %.6f, ",
                   i ? "," : "", r[i].spec, (long long)r[i].n_chunks, (long long)r[i].n, r[i].kld, r[i].kld_err,
                   r[i].kld_max, r[i].top1, r[i].ppl, r[i].ppl_f32, r[i].bytes_per_token, r[i].bytes_per_token_end,
                   r[i].f32_bytes_per_token, r[i].tokens_held);
            printf("\"attn_kept\": %.6f, \"attn_oracle\": %.6f, \"attn_kept_layer\": [", r[i].attn_kept,
                   r[i].attn_oracle);
            for (int l = 0; l < LB_KV_EVAL_LAYERS && l < n_layers; l++)
                printf("%s%.6f", l ? ", " : "", r[i].attn_kept_layer[l]);
            printf("], \"attn_oracle_layer\": [");
            for (int l = 0; l < LB_KV_EVAL_LAYERS && l < n_layers; l++)
                printf("%s%.6f", l ? ", " : "", r[i].attn_oracle_layer[l]);
            printf("], \"qsnr_held\": %s, \"k_qsnr_db\": %.3f, \"v_qsnr_db\": %.3f}", r[i].qsnr_held ? "true" : "false",
                   isinf(r[i].k_qsnr) ? 999.0 : r[i].k_qsnr, isinf(r[i].v_qsnr) ? 999.0 : r[i].v_qsnr);
        }
        printf("\n]}\n");
        return;
    }
    printf("model %s, text %s: %lld chunks, ctx %lld, cont %lld%s (%lld positions per SPEC)\n\n", o->model,
           o->text, n ? (long long)r[0].n_chunks : 0, (long long)ctx, (long long)cont,
           o->decode ? " fed one token at a time" : "", n ? (long long)r[0].n : 0);
    printf("| SPEC | KL div | +- | max KL | top-1 | PPL | PPL f32 | bytes/token | vs f32 | bytes/token end | held "
           "| K QSNR dB | V QSNR dB | attn kept | oracle |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++)
        printf("| `%s` | %.5f | %.5f | %.4f | %.2f%% | %.4f | %.4f | %.1f | %.3f | %.1f | %.3f | %.1f%s | %.1f%s "
               "| %.4f | %.4f |\n",
               r[i].spec, r[i].kld, r[i].kld_err, r[i].kld_max, 100 * r[i].top1, r[i].ppl, r[i].ppl_f32,
               r[i].bytes_per_token, r[i].bytes_per_token / r[i].f32_bytes_per_token, r[i].bytes_per_token_end,
               r[i].tokens_held, r[i].k_qsnr, r[i].qsnr_held ? "*" : "", r[i].v_qsnr, r[i].qsnr_held ? "*" : "",
               r[i].attn_kept, r[i].attn_oracle);
    for (int i = 0; i < n; i++)
        if (r[i].qsnr_held) {
            printf("\n* QSNR over the tokens held after compression, each in its format, vs the f32 run's.\n");
            break;
        }
}

/* The family of a SPEC: its full form without the bits parameter. */
static void family(const char *spec, char *out, size_t cap)
{
    const char *b = strstr(spec, "bits=");
    if (!b) { snprintf(out, cap, "%s", spec); return; }
    const char *e = strchr(b, ',');
    snprintf(out, cap, "%.*s%s", (int)(b - spec), spec, e ? e + 1 : "");
}

static int write_svg(const evkv_opts *o, const lb_kv_eval_row *r, int n)
{
    static const char *col[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
    double W = 760, H = 460, L = 70, R = 330, T = 30, B = 50, xmax = 0;
    for (int i = 0; i < n; i++) xmax = fmax(xmax, fmax(r[i].bytes_per_token, r[i].f32_bytes_per_token));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cli_fail("eval kv", "--svg: out of memory");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
               "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"18\">KL divergence vs KV bytes per token: %s</text>\n", L, o->model);
    double pw = W - L - R, ph = H - T - B;
    for (int e = -6; e <= 0; e++) {   /* y: log10 KL from 1e-6 to 1 */
        double y = T + ph * (double)-e / 6;
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.0f\" y=\"%.1f\" "
                   "text-anchor=\"end\">1e%d</text>\n", L, L + pw, y, y, L - 4, y + 4, e);
    }
    for (int k = 0; k <= 4; k++)
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.0f</text>\n", L + pw * k / 4, T + ph + 16,
                xmax * k / 4);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">bytes per token (all layers)</text>\n", L + pw / 2,
            H - 12);
    char fams[MAX_SPECS][256];
    int nf = 0;
    for (int i = 0; i < n; i++) {
        char fm[256];
        family(r[i].spec, fm, sizeof fm);
        int j = 0;
        while (j < nf && strcmp(fams[j], fm)) j++;
        if (j == nf) snprintf(fams[nf++], 256, "%s", fm);
    }
    for (int j = 0; j < nf; j++) {
        const char *c = col[j % 8];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" points=\"", c);
        double last = -1;
        for (;;) {   /* the family's points by increasing bytes */
            int best = -1;
            for (int i = 0; i < n; i++) {
                char fm[256];
                family(r[i].spec, fm, sizeof fm);
                if (strcmp(fm, fams[j]) || r[i].bytes_per_token <= last) continue;
                if (best < 0 || r[i].bytes_per_token < r[best].bytes_per_token) best = i;
            }
            if (best < 0) break;
            last = r[best].bytes_per_token;
            double kl = fmax(r[best].kld, 1e-6), x = L + pw * r[best].bytes_per_token / xmax;
            fprintf(f, "%.1f,%.1f ", x, T + ph * -log10(kl) / 6);
        }
        fprintf(f, "\"/>\n");
        for (int i = 0; i < n; i++) {
            char fm[256];
            family(r[i].spec, fm, sizeof fm);
            if (strcmp(fm, fams[j])) continue;
            double x = L + pw * r[i].bytes_per_token / xmax, y = T + ph * -log10(fmax(r[i].kld, 1e-6)) / 6;
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%s</title></circle>\n", x, y, c,
                    r[i].spec);
        }
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                W - R + 10, T + 16.0 * j, c, W - R + 24, T + 16.0 * j + 9, fams[j]);
    }
    fprintf(f, "</svg>\n");
    fclose(f);
    int rc = cli_write_atomic("eval kv", o->svg, buf, len, NULL, 0);
    free(buf);
    return rc;
}

int cmd_eval_kv(int argc, char **argv)
{
    evkv_opts o;
    int rc = evkv_parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    char *sweep = NULL;
    if ((rc = collect_specs(&o, &sweep))) { free(sweep); return rc; }
    size_t len;
    char *text = cli_read_all("eval kv", o.text, &len);
    lb_model *m = NULL;
    lb_tokenizer *t = NULL;
    if (!text || cli_load_model_tok("eval kv", o.model, o.tok, &m, &t)) { free(text); free(sweep); return 1; }
    int32_t *ids = NULL;
    int64_t n = 0;
    lb_kv_eval_row *rows = calloc((size_t)o.n_kv, sizeof *rows);
    lb_status s = lb_tokenizer_encode(t, text, len, 1, &ids, &n);
    if (!s && !rows) s = LB_ERR_NOMEM;
    lb_kv_eval_opts eo = {o.ctx, o.cont, o.chunks, (int)o.threads, lb_tokenizer_bos(t), o.kv, o.n_kv, cli_progress,
                          "eval kv", o.decode};
    if (!s) s = lb_eval_kv(m, ids, n, &eo, rows);
    cli_progress_end();
    if (s) rc = cli_fail_status("eval kv", s);
    else {
        lb_model_info mi;
        lb_model_get_info(m, &mi);
        print_rows(&o, rows, o.n_kv, o.ctx > 0 ? o.ctx : 384, o.cont > 0 ? o.cont : 64, mi.n_layers);
        if (o.svg) rc = write_svg(&o, rows, o.n_kv);
    }
    free(rows);
    free(ids);
    free(text);
    free(sweep);
    lb_tokenizer_free(t);
    lb_model_free(m);
    return rc;
}
