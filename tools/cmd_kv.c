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
    const char *model, *tok, *text, *sweep;
    const char *kv[MAX_SPECS];
    int n_kv;
    int64_t ctx, cont, chunks, threads;
    bool json;
} evkv_opts;

static int evkv_help(void)
{
    printf("usage: lowbit eval kv --model M --text FILE [--tokenizer T] (--kv SPEC)... [--sweep 'SPEC;SPEC;...']\n"
           "                      [--ctx C] [--cont N] [--chunks K] [--threads K] [--json]\n"
           "For each chunk of C + N + 1 tokens of the text (first token replaced by BOS): prefill C tokens,\n"
           "compress the cache (the SPEC's eviction stages), then run the next N tokens teacher-forced; the N\n"
           "positions are compared with the same run on the f32 cache. Reports per SPEC: mean KL divergence\n"
           "(+- its standard error) and maximum, top-1 agreement, the continuation's perplexity (and f32's), KV\n"
           "bytes per token after compression (the cache's own accounting over the C positions; f32 for\n"
           "comparison), at the chunk's end, and the fraction of entries kept. Markdown table, or --json.\n"
           "  Defaults: C 384, N 64 (fit 512-token models), 8 chunks (--chunks 0: all). --kv repeats; --sweep\n"
           "  takes a ';'-separated list. SPEC syntax: docs/kv.md, lowbit kv --list.\n");
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
        {0}};
    int rc = cli_parse("eval kv", argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) return evkv_help(), -1;
    if (rc) return rc;
    if (!o->model) return cli_fail("eval kv", "--model is required (see lowbit eval kv --help)");
    if (!o->text) return cli_fail("eval kv", "--text FILE is required");
    if (cli_input("eval kv", "--model", o->model, true) || (o->tok && cli_input("eval kv", "--tokenizer", o->tok, true)) ||
        cli_input("eval kv", "--text", o->text, false))
        return 1;
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

static void print_rows(const evkv_opts *o, const lb_kv_eval_row *r, int n, int64_t ctx, int64_t cont)
{
    if (o->json) {
        printf("{\"model\": \"%s\", \"text\": \"%s\", \"ctx\": %lld, \"cont\": %lld, \"results\": [", o->model, o->text,
               (long long)ctx, (long long)cont);
        for (int i = 0; i < n; i++)
            printf("%s\n  {\"spec\": \"%s\", \"chunks\": %lld, \"n\": %lld, \"kld\": %.8g, \"kld_err\": %.4g, "
                   "\"kld_max\": %.6g, \"top1\": %.6f, \"ppl\": %.6f, \"ppl_f32\": %.6f, \"bytes_per_token\": %.3f, "
                   "\"bytes_per_token_end\": %.3f, \"f32_bytes_per_token\": %.3f, \"tokens_held\": %.6f}",
                   i ? "," : "", r[i].spec, (long long)r[i].n_chunks, (long long)r[i].n, r[i].kld, r[i].kld_err,
                   r[i].kld_max, r[i].top1, r[i].ppl, r[i].ppl_f32, r[i].bytes_per_token, r[i].bytes_per_token_end,
                   r[i].f32_bytes_per_token, r[i].tokens_held);
        printf("\n]}\n");
        return;
    }
    printf("model %s, text %s: %lld chunks, ctx %lld, cont %lld (%lld positions per SPEC)\n\n", o->model, o->text,
           n ? (long long)r[0].n_chunks : 0, (long long)ctx, (long long)cont, n ? (long long)r[0].n : 0);
    printf("| SPEC | KL div | +- | max KL | top-1 | PPL | PPL f32 | bytes/token | vs f32 | bytes/token end | held |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++)
        printf("| `%s` | %.5f | %.5f | %.4f | %.2f%% | %.4f | %.4f | %.1f | %.3f | %.1f | %.3f |\n", r[i].spec, r[i].kld,
               r[i].kld_err, r[i].kld_max, 100 * r[i].top1, r[i].ppl, r[i].ppl_f32, r[i].bytes_per_token,
               r[i].bytes_per_token / r[i].f32_bytes_per_token, r[i].bytes_per_token_end, r[i].tokens_held);
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
                          "eval kv"};
    if (!s) s = lb_eval_kv(m, ids, n, &eo, rows);
    cli_progress_end();
    if (s) rc = cli_fail_status("eval kv", s);
    else print_rows(&o, rows, o.n_kv, o.ctx > 0 ? o.ctx : 384, o.cont > 0 ? o.cont : 64);
    free(rows);
    free(ids);
    free(text);
    free(sweep);
    lb_tokenizer_free(t);
    lb_model_free(m);
    return rc;
}
