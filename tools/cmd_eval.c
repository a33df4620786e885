/* cmd_eval.c: `lowbit eval ppl` (perplexity, optionally saving the base
 * log-probabilities) and `lowbit eval kld` (KL divergence against a saved
 * base). Methods and file layout: docs/eval.md. */
#include "cli.h"
#include <stdlib.h>
#include <string.h>

typedef struct eval_opts {
    const char *model, *tok, *text, *base, *save, *act, *act_calib, *kv;
    int64_t ctx, chunks, threads;
    lb_scoring scoring;
    bool json, force;
} eval_opts;

static int eval_usage(void)
{
    printf("usage: lowbit eval ppl --model M --text FILE [--tokenizer T] [--ctx N] [--chunks K]\n"
           "                       [--scoring half|full] [--threads K] [--save-logits F [--force]] [--act A] [--kv SPEC] [--json]\n"
           "       lowbit eval kld --model M --base F [--text FILE] [--threads K] [--act A] [--kv SPEC] [--json]\n"
           "       lowbit eval kv --model M --text FILE --kv SPEC... (see lowbit eval kv --help)\n"
           "ppl and kld take --kv SPEC: the sessions' KV cache (docs/kv.md; default f32).\n"
           "ppl: perplexity over non-overlapping chunks of N tokens (default 512, at most the model's context).\n"
           "  The whole file is tokenized once (with BOS); each chunk's first token is replaced by BOS and the\n"
           "  chunk runs from an empty cache. --scoring half (default, as llama.cpp) scores positions N/2..N-2,\n"
           "  full scores 0..N-2. Prints PPL +- its standard error and tokens/s. --save-logits F saves the\n"
           "  tokens and every scored position's log-probabilities as the base for `eval kld`; an existing F is\n"
           "  replaced only with --force, and never when it is the model, its tokenizer or the text.\n"
           "  --ctx is at most the model's context; the session holds one chunk. --threads 0 = all cores.\n"
           "kld: reruns the base's tokens with this model and reports the mean KL divergence (+- error), its\n"
           "  median/90/99/99.9 percentiles and maximum, top-1 agreement and PPL(model)/PPL(base). --text\n"
           "  checks that the base was computed on that text.\n"
           "--act A: activation format of every linear's input (int8, int4, mxint8, mxfp4, nvfp4, ... or none),\n"
           "  overriding the one the model file records, or stamp-dct|haar|id:FORMAT[:AVG] (STaMP; docs/activations.md).\n"
           "--act-calib F: static activation scales for --act FORMAT[:static] (a symmetric INT format: int8, int4,\n"
           "  int8_g32, ...): each input block's scale from the max |x| of the statistics file F (`lowbit calib`).\n");
    return 0;
}

static int parse_eval(const char *cmd, int argc, char **argv, eval_opts *o)
{
    *o = (eval_opts){0};
    int scoring = 0;
    const cli_optdef defs[] = {
        CLI_O_PATH("--model", &o->model), CLI_O_PATH("--tokenizer", &o->tok), CLI_O_PATH("--text", &o->text),
        CLI_O_PATH("--base", &o->base), CLI_O_PATH("--save-logits", &o->save),
        CLI_O_INT("--ctx", &o->ctx, 2, INT64_C(1) << 31), CLI_O_INT("--chunks", &o->chunks, 1, INT32_MAX),
        CLI_THREADS(&o->threads), CLI_O_CHOICE("--scoring", &scoring, "half|full"),
        CLI_O_STR("--act", &o->act), CLI_O_PATH("--act-calib", &o->act_calib), CLI_O_FLAG("--force", &o->force), CLI_O_FLAG("--json", &o->json), CLI_O_STR("--kv", &o->kv), {0}};
    int rc = cli_parse(cmd, argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) return eval_usage(), -1;
    if (rc) return rc;
    o->scoring = scoring ? LB_SCORE_FULL : LB_SCORE_HALF;
    if (!o->model) return cli_fail(cmd, "--model is required (see lowbit eval --help)");
    if (o->kv && lb_kv_spec_check(o->kv, "--kv", NULL, 0)) return cli_fail(cmd, "%s", lb_errmsg());
    if (o->act_calib && !o->act) return cli_fail(cmd, "--act-calib needs --act FORMAT (int8, int4, ...)");
    if (o->act_calib && cli_input(cmd, "--act-calib", o->act_calib, false)) return 1;
    if (cli_input(cmd, "--model", o->model, true) || (o->tok && cli_input(cmd, "--tokenizer", o->tok, true)) ||
        (o->text && cli_input(cmd, "--text", o->text, false)) || (o->base && cli_input(cmd, "--base", o->base, false)))
        return 1;
    return 0;
}

/* --act, with static scales from --act-calib when given. */
static int eval_set_act(const char *cmd, const eval_opts *o, lb_model *m)
{
    if (!o->act_calib) return cli_set_act(cmd, m, o->act);
    lb_calib *c;
    lb_status s = lb_calib_load(o->act_calib, NULL, &c);   /* statistics of the FP32 model: no fingerprint match */
    if (s) return cli_fail(cmd, "--act-calib %s: %s", o->act_calib, lb_errmsg());
    int64_t kept = 0;
    s = lb_model_set_act_static(m, o->act, c, &kept);
    lb_calib_free(c);
    if (s) return cli_fail(cmd, "--act %s --act-calib %s: %s", o->act, o->act_calib, lb_errmsg());
    cli_act_kept_note(cmd, o->act, kept);
    return 0;
}

/* Read and check the text: non-empty, UTF-8. */
static char *read_text(const char *cmd, const char *path, size_t *len)
{
    char *t = cli_read_all(cmd, path, len);
    if (!t) return NULL;
    if (*len == 0) { free(t); cli_fail(cmd, "%s: the text is empty", path); return NULL; }
    size_t bad = cli_utf8_check((const unsigned char *)t, *len);
    if (bad != *len) { free(t); cli_fail(cmd, "%s: not valid UTF-8 at byte %zu", path, bad); return NULL; }
    return t;
}

static void print_ppl(const eval_opts *o, const lb_ppl_result *r, int64_t ctx, int64_t n_tokens)
{
    const char *sc = o->scoring == LB_SCORE_FULL ? "full" : "half";
    if (o->json) {
        printf("{\"model\": \"%s\", \"text\": \"%s\", \"ctx\": %lld, \"chunks\": %lld, \"scoring\": \"%s\", "
               "\"text_tokens\": %lld, \"scored\": %lld, \"nll\": %.8f, \"ppl\": %.6f, \"ppl_err\": %.6f, "
               "\"seconds\": %.3f, \"tokens_per_s\": %.1f, \"isa\": \"%s\"}\n",
               o->model, o->text, (long long)ctx, (long long)r->n_chunks, sc, (long long)n_tokens,
               (long long)r->n_scored, r->nll, r->ppl, r->ppl_err, r->seconds, r->tokens_per_s,
               lb_isa_name(lb_isa_active()));
        return;
    }
    printf("model %s, text %s (%lld tokens)\nctx %lld, %lld chunks, scoring %s, %lld tokens scored\n", o->model,
           o->text, (long long)n_tokens, (long long)ctx, (long long)r->n_chunks, sc, (long long)r->n_scored);
    printf("PPL = %.4f +/- %.5f\n", r->ppl, r->ppl_err);
    printf("speed: %.1f tokens/s (%.2f s, %s)\n", r->tokens_per_s, r->seconds, lb_isa_name(lb_isa_active()));
}

/* --save-logits must not replace the model, its tokenizer or the text. */
static int check_save(const eval_opts *o)
{
    char found[4096];
    const char *tok = o->tok;
    if (!tok && lb_tokenizer_find(o->model, found, sizeof found) == LB_OK) tok = found;
    const char *inputs[] = {o->model, tok, o->text};
    return cli_output("eval ppl", "--save-logits", o->save, o->force, inputs, 3);
}

static int eval_ppl(const eval_opts *o)
{
    if (!o->text) return cli_fail("eval ppl", "--text FILE is required");
    if (o->save && check_save(o)) return 1;
    size_t len;
    char *text = read_text("eval ppl", o->text, &len);
    if (!text) return 1;
    lb_model *m;
    lb_tokenizer *t;
    if (cli_load_model_tok("eval ppl", o->model, o->tok, &m, &t)) { free(text); return 1; }
    if (eval_set_act("eval ppl", o, m)) { free(text); lb_tokenizer_free(t); lb_model_free(m); return 1; }
    lb_model_info info;
    lb_model_get_info(m, &info);
    int32_t *ids = NULL;
    int64_t n = 0;
    int rc = 0;
    lb_status s = lb_tokenizer_encode(t, text, len, 1, &ids, &n);
    int64_t ctx = o->ctx ? o->ctx : (info.max_seq < 512 ? info.max_seq : 512);
    if (s) rc = cli_fail_status("eval ppl", s);
    else if (ctx > info.max_seq)
        rc = cli_fail("eval ppl", "--ctx %lld: exceeds the model's %lld positions", (long long)ctx, (long long)info.max_seq);
    else if (n < ctx)
        rc = cli_fail("eval ppl", "--text %s: has %lld tokens; one chunk of --ctx %lld needs more (lower --ctx)",
                      o->text, (long long)n, (long long)ctx);
    if (!rc) {
        lb_ppl_opts po = {.ctx = ctx, .max_chunks = o->chunks, .scoring = o->scoring, .n_threads = (int)o->threads,
                          .bos = lb_tokenizer_bos(t), .text_hash = lb_eval_text_hash(text, len),
                          .save_path = o->save, .model_name = o->model, .progress = cli_progress,
                          .progress_user = "eval ppl", .kv = o->kv};
        lb_ppl_result r;
        s = lb_eval_ppl(m, ids, n, &po, &r);
        cli_progress_end();
        if (s) rc = cli_fail_status("eval ppl", s);
        else print_ppl(o, &r, ctx, n);
    }
    free(ids);
    free(text);
    lb_tokenizer_free(t);
    lb_model_free(m);
    return rc;
}

static void print_kld(const eval_opts *o, const lb_kld_result *r)
{
    if (o->json) {
        printf("{\"model\": \"%s\", \"base\": \"%s\", \"chunks\": %lld, \"n\": %lld, \"kld\": %.8g, \"kld_err\": %.4g, "
               "\"kld_p50\": %.8g, \"kld_p90\": %.8g, \"kld_p99\": %.8g, \"kld_p999\": %.8g, \"kld_max\": %.8g, "
               "\"top1\": %.6f, \"top1_err\": %.6f, \"ppl\": %.6f, \"ppl_base\": %.6f, \"ppl_ratio\": %.6f, "
               "\"ppl_ratio_err\": %.6f, \"ln_ppl_ratio\": %.8f, \"ln_ppl_ratio_err\": %.8f, \"tokens_per_s\": %.1f}\n",
               o->model, o->base, (long long)r->n_chunks, (long long)r->n, r->kld, r->kld_err, r->kld_p50, r->kld_p90,
               r->kld_p99, r->kld_p999, r->kld_max, r->top1, r->top1_err, r->ppl, r->ppl_base, r->ppl_ratio,
               r->ppl_ratio_err, r->ln_ppl_ratio, r->ln_ppl_ratio_err, r->tokens_per_s);
        return;
    }
    printf("model %s vs base %s: %lld chunks, %lld positions\n", o->model, o->base, (long long)r->n_chunks,
           (long long)r->n);
    printf("mean KLD:   %.6f +/- %.6f\n", r->kld, r->kld_err);
    printf("KLD median %.6f  90%% %.6f  99%% %.6f  99.9%% %.6f  max %.6f\n", r->kld_p50, r->kld_p90, r->kld_p99,
           r->kld_p999, r->kld_max);
    printf("same top-1: %.3f +/- %.3f %%\n", 100 * r->top1, 100 * r->top1_err);
    printf("PPL %.4f vs base %.4f: ratio %.5f +/- %.5f (ln ratio %.6f +/- %.6f)\n", r->ppl, r->ppl_base, r->ppl_ratio,
           r->ppl_ratio_err, r->ln_ppl_ratio, r->ln_ppl_ratio_err);
    printf("speed: %.1f tokens/s\n", r->tokens_per_s);
}

static int eval_kld(const eval_opts *o)
{
    if (!o->base) return cli_fail("eval kld", "--base FILE is required (made by eval ppl --save-logits)");
    if (o->tok) return cli_fail("eval kld", "--tokenizer: not used by kld (the base file holds the token ids)");
    uint64_t hash = 0;
    if (o->text) {
        size_t len;
        char *text = read_text("eval kld", o->text, &len);
        if (!text) return 1;
        hash = lb_eval_text_hash(text, len);
        free(text);
    }
    lb_model *m;
    lb_status s = lb_model_load(o->model, &m);
    if (s) return cli_fail_status("eval kld", s);
    if (eval_set_act("eval kld", o, m)) { lb_model_free(m); return 1; }
    lb_kld_opts ko = {.n_threads = (int)o->threads, .text_hash = hash, .progress = cli_progress,
                      .progress_user = "eval kld", .kv = o->kv};
    lb_kld_result r;
    s = lb_eval_kld(m, o->base, &ko, &r);
    cli_progress_end();
    int rc = s ? cli_fail_status("eval kld", s) : 0;
    if (!s) print_kld(o, &r);
    lb_model_free(m);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        eval_usage();
        return argc < 2 ? 1 : 0;
    }
    eval_opts o;
    bool ppl = !strcmp(argv[1], "ppl"), kld = !strcmp(argv[1], "kld");
    if (!strcmp(argv[1], "kv")) return cmd_eval_kv(argc - 1, argv + 1);
    if (!ppl && !kld) return cli_fail("eval", "'%s': unknown subcommand (ppl, kld or kv)", argv[1]);
    const char *cmd = ppl ? "eval ppl" : "eval kld";
    int rc = parse_eval(cmd, argc - 1, argv + 1, &o);
    if (rc) return rc < 0 ? 0 : rc;
    if (ppl) {
        if (o.base) return cli_fail(cmd, "--base: belongs to eval kld");
        return eval_ppl(&o);
    }
    if (o.save || o.ctx || o.chunks || o.force) return cli_fail(cmd, "kld takes its ctx and chunks from the base file and writes nothing");
    return eval_kld(&o);
}
