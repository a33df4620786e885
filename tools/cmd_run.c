/* cmd_run.c: `lowbit run`: generate text with a model (prefill the prompt in
 * one batch, then decode token by token), streaming it to stdout; speeds on
 * stderr. Also the model + tokenizer loading shared with `lowbit eval`. */
#include "cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A tokenizer fits a model when the vocabularies are equal, or when the
 * model's embedding is padded (a multiple of 64, at most 1024 rows more),
 * as Hugging Face models often are. */
static bool vocab_fits(int64_t tok, int64_t model)
{
    return tok == model || (tok < model && model % 64 == 0 && model - tok <= 1024);
}

int cli_load_model_tok(const char *cmd, const char *model_path, const char *tok_path, lb_model **m,
                       lb_tokenizer **t)
{
    *m = NULL;
    *t = NULL;
    lb_status s = lb_model_load(model_path, m);
    if (s) return cli_fail_status(cmd, s);
    char found[4096];
    if (!tok_path) {
        s = lb_tokenizer_find(model_path, found, sizeof found);
        if (s) { lb_model_free(*m); *m = NULL; return cli_fail(cmd, "%s (use --tokenizer)", lb_errmsg()); }
        tok_path = found;
    }
    s = lb_tokenizer_load(tok_path, t);
    if (s) { lb_model_free(*m); *m = NULL; return cli_fail_status(cmd, s); }
    lb_model_info info;
    lb_model_get_info(*m, &info);
    int64_t tv = lb_tokenizer_vocab_size(*t);
    if (!vocab_fits(tv, info.vocab_size)) {
        lb_tokenizer_free(*t);
        lb_model_free(*m);
        *t = NULL; *m = NULL;
        return cli_fail(cmd, "tokenizer %s has %lld tokens but model %s has a %lld-token vocabulary", tok_path,
                        (long long)tv, model_path, (long long)info.vocab_size);
    }
    return 0;
}

void cli_act_kept_note(const char *cmd, const char *act, int64_t kept)
{
    if (kept)
        fprintf(stderr, "lowbit %s: --act %s: %lld linears keep FP32 inputs (input width not a multiple of the "
                        "format's block)\n", cmd, act, (long long)kept);
}

int cli_set_act(const char *cmd, lb_model *m, const char *act)
{
    if (!act) return 0;
    int64_t kept = 0;
    lb_status s = lb_model_set_act(m, act, &kept);
    if (s) return cli_fail(cmd, "--act %s: %s", act, lb_errmsg());
    cli_act_kept_note(cmd, act, kept);
    return 0;
}

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
 * Returns the offset of the first bad byte, or len when valid. */
size_t cli_utf8_check(const unsigned char *s, size_t len)
{
    static const unsigned minv[4] = {0, 0x80, 0x800, 0x10000}, lead[4] = {0x7f, 0x1f, 0x0f, 0x07};
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i], n;
        if (c < 0x80) n = 0;
        else if ((c >> 5) == 6) n = 1;
        else if ((c >> 4) == 14) n = 2;
        else if ((c >> 3) == 30) n = 3;
        else return i;
        if (n > len - i - 1) return i;
        unsigned cp = c & lead[n];
        for (unsigned k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < minv[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += n + 1;
    }
    return len;
}

typedef struct run_opts {
    const char *model, *tok, *prompt, *act, *kv;
    int64_t n, threads, ctx, seed;
    double temp, top_p;
    bool json;
} run_opts;

static int run_usage(void)
{
    printf("usage: lowbit run --model M [--tokenizer T] [-p PROMPT] [-n N] [--temp T] [--top-p P] [--seed S]\n"
           "                  [--threads K] [--ctx C] [--act FORMAT|none] [--kv SPEC] [--json]\n"
           "Generates text: the prompt (with BOS) is processed in one batch, then up to N tokens (default 256)\n"
           "are sampled one at a time and streamed to stdout after the prompt itself; generation stops at EOS/BOS\n"
           "or the context end.\n"
           "  --temp 0 is greedy (argmax); --top-p < 1 keeps the smallest nucleus of that mass (default 1).\n"
           "  --seed S (default 42) fixes sampling; --threads K (0 = all cores, the default).\n"
           "  --ctx C caps the context; the session holds the prompt + N tokens, at most C (default: the\n"
           "  model's context), so a model declaring a huge context costs only what this run uses.\n"
           "  --act FORMAT quantizes the inputs of every linear (q/k/v, o, gate/up, down) per token: int8, int4,\n"
           "  mxint8, mxfp8_e4m3, mxfp4, nvfp4, ... (any block format); none: FP32 inputs. It overrides the\n"
           "  format a quantized file records (docs/activations.md). stamp-dct|haar|id:FORMAT[:AVG]: STaMP,\n"
           "  a sequence transform over a prefill batch's tokens, the highest-energy rows at 8 bits.\n"
           "  --kv SPEC: the KV cache (docs/kv.md; lowbit kv --list), e.g. f16, kivi:bits=4; eviction stages\n"
           "  run once after the prompt (and every N steps with every=N). The cache's bytes per token are\n"
           "  printed with the speeds.\n"
           "  Ids of a padded vocabulary (rows beyond the tokenizer's) are never sampled.\n"
           "  Prompt and generation speeds (tokens/s) are printed on stderr; --json prints one JSON object\n"
           "  with the text and the speeds instead of streaming.\n");
    return 0;
}

static int parse_run(int argc, char **argv, run_opts *o)
{
    *o = (run_opts){.prompt = "", .n = 256, .threads = 0, .temp = 1.0, .top_p = 1.0, .seed = 42};
    const cli_optdef defs[] = {
        CLI_O_PATH("--model", &o->model), CLI_O_PATH("--tokenizer", &o->tok), CLI_O_STR("-p", &o->prompt),
        CLI_O_STR("--prompt", &o->prompt), CLI_O_INT("-n", &o->n, 0, 1000000), CLI_THREADS(&o->threads),
        CLI_O_INT("--ctx", &o->ctx, 1, INT64_C(1) << 31), CLI_O_FLOAT("--temp", &o->temp, 0, 100),
        CLI_O_FLOAT("--top-p", &o->top_p, 1e-6, 1), CLI_O_INT("--seed", &o->seed, 0, INT64_MAX),
        CLI_O_STR("--act", &o->act), CLI_O_FLAG("--json", &o->json), CLI_O_STR("--kv", &o->kv), {0}};
    int rc = cli_parse("run", argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) return run_usage(), -1;
    if (rc) return rc;
    if (!o->model) return cli_fail("run", "--model is required (see lowbit run --help)");
    if (o->kv && lb_kv_spec_check(o->kv, "--kv", NULL, 0)) return cli_fail("run", "%s", lb_errmsg());
    size_t pl = strlen(o->prompt), bad = cli_utf8_check((const unsigned char *)o->prompt, pl);
    if (bad != pl) return cli_fail("run", "-p: the prompt is not valid UTF-8 (byte %zu)", bad);
    if (cli_input("run", "--model", o->model, true) || (o->tok && cli_input("run", "--tokenizer", o->tok, true)))
        return 1;
    return 0;
}

typedef struct gen_state {
    lb_session *s;
    lb_sampler *smp;
    float *logits;
    struct { char *data; size_t len, cap; } text;   /* --json: the generated text */
} gen_state;

static void text_put(gen_state *g, const char *p, size_t n)
{
    if (g->text.len + n + 1 > g->text.cap) {
        size_t cap = (g->text.cap + n + 1) * 2;
        char *d = realloc(g->text.data, cap);
        if (!d) return;
        g->text.data = d;
        g->text.cap = cap;
    }
    memcpy(g->text.data + g->text.len, p, n);
    g->text.len += n;
    g->text.data[g->text.len] = 0;
}

static void print_json_str(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

/* The text of token `next` after `prev`, into a buffer grown as needed (a
 * piece has no length limit). Prints and returns 1 on error. */
static int piece_of(lb_tokenizer *t, int32_t prev, int32_t next, char **buf, size_t *cap, const char **piece,
                    size_t *len)
{
    for (;;) {
        if (lb_tokenizer_piece(t, prev, next, *buf, *cap, piece, len) == LB_OK) return 0;
        if (*cap >= ((size_t)1 << 24)) return cli_fail_status("run", LB_ERR_ARG);
        char *b = realloc(*buf, *cap * 4);
        if (!b) return cli_fail("run", "out of memory");
        *buf = b;
        *cap *= 4;
    }
}

/* Positions the session needs: the prompt and the tokens to generate, at most ctx. */
static int64_t session_len(int64_t np, int64_t n, int64_t ctx) { return np + n < ctx ? np + n : ctx; }

static int generate(const run_opts *o, lb_model *m, lb_tokenizer *t)
{
    lb_model_info info;
    lb_model_get_info(m, &info);
    if (o->ctx > info.max_seq)
        return cli_fail("run", "--ctx %lld: exceeds the model's %lld positions", (long long)o->ctx,
                        (long long)info.max_seq);
    int32_t *ids = NULL;
    int64_t np = 0;
    lb_status s = lb_tokenizer_encode(t, o->prompt, strlen(o->prompt), 1, &ids, &np);
    if (s) return cli_fail_status("run", s);
    int64_t ctx = o->ctx ? o->ctx : info.max_seq;
    if (np == 0) { free(ids); return cli_fail("run", "empty prompt and the tokenizer has no BOS token"); }
    if (np >= ctx) {
        free(ids);
        return cli_fail("run", "-p: the prompt has %lld tokens; the context holds %lld (raise --ctx up to %lld)",
                        (long long)np, (long long)ctx, (long long)info.max_seq);
    }
    gen_state g = {0};
    int64_t slen = session_len(np, o->n, ctx), tv = lb_tokenizer_vocab_size(t);
    s = lb_session_create(m, &(lb_session_opts){(int)o->threads, slen, 0, o->kv}, &g.s);
    if (s) {
        int rc = s == LB_ERR_ARG && o->kv ? cli_fail("run", "--kv: %s", lb_errmsg())
                 : cli_fail("run", "%s: cannot make a session of %lld positions: %s (lower -n or --ctx)", o->model,
                            (long long)slen, lb_errmsg());
        free(ids);
        return rc;
    }
    s = lb_sampler_create(info.vocab_size, &(lb_sampler_opts){(float)o->temp, (float)o->top_p, (uint64_t)o->seed}, &g.smp);
    g.logits = malloc(sizeof(float) * (size_t)info.vocab_size);
    size_t cap = 256;
    char *buf = malloc(cap);
    if (!s && (!g.logits || !buf)) s = LB_ERR_NOMEM;
    int rc = 0;
    double t0 = lb_time_now(), t1 = t0;
    if (!s) s = lb_forward(g.s, ids, np, g.logits);
    if (!s) s = lb_session_kv_compress(g.s);
    t1 = lb_time_now();
    int64_t gen = 0, n_dec = 0;
    int32_t prev = ids[np - 1], eos = lb_tokenizer_eos(t), bos = lb_tokenizer_bos(t);
    if (!s && !o->json) { fputs(o->prompt, stdout); fflush(stdout); }   /* echo, then continue it */
    while (!s && !rc && gen < o->n) {
        for (int64_t v = tv; v < info.vocab_size; v++) g.logits[v] = -INFINITY;   /* padding rows: no text */
        int32_t next = lb_sample(g.smp, g.logits);
        if (next == eos || next == bos) break;
        const char *piece;
        size_t len;
        if ((rc = piece_of(t, prev, next, &buf, &cap, &piece, &len))) break;
        if (o->json) text_put(&g, piece, len);
        else { fwrite(piece, 1, len, stdout); fflush(stdout); }
        gen++;
        prev = next;
        if (lb_session_pos(g.s) >= slen) break;
        s = lb_forward(g.s, &next, 1, g.logits);
        n_dec++;
    }
    double t2 = lb_time_now();
    lb_kv_stats kv;
    if (!s) s = lb_session_kv_stats(g.s, &kv);
    if (s) rc = cli_fail_status("run", s);
    else if (!rc) {
        double pps = (double)np / (t1 - t0), gps = n_dec > 0 ? (double)n_dec / (t2 - t1) : 0;
        if (o->json) {
            printf("{\"text\": ");
            print_json_str(g.text.data ? g.text.data : "", g.text.len);
            printf(", \"prompt_tokens\": %lld, \"generated_tokens\": %lld, \"prompt_tokens_per_s\": %.2f, "
                   "\"gen_tokens_per_s\": %.2f, \"threads\": %lld, \"isa\": \"%s\", \"kv\": \"%s\", "
                   "\"kv_bytes\": %zu, \"kv_bytes_per_token\": %.2f}\n",
                   (long long)np, (long long)gen, pps, gps, (long long)o->threads, lb_isa_name(lb_isa_active()),
                   kv.spec, kv.bytes, kv.bytes_per_token);
        } else {
            printf("\n");
            fflush(stdout);
            fprintf(stderr, "prompt: %lld tokens, %.1f tokens/s; generation: %lld tokens, %.1f tokens/s (%s)\n",
                    (long long)np, pps, (long long)gen, gps, lb_isa_name(lb_isa_active()));
            fprintf(stderr, "kv cache %s: %zu bytes, %.1f bytes per token\n", kv.spec, kv.bytes, kv.bytes_per_token);
        }
    }
    free(buf);
    free(g.text.data);
    free(g.logits);
    free(ids);
    lb_sampler_free(g.smp);
    lb_session_free(g.s);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    run_opts o;
    int rc = parse_run(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    lb_model *m;
    lb_tokenizer *t;
    if (cli_load_model_tok("run", o.model, o.tok, &m, &t)) return 1;
    if (cli_set_act("run", m, o.act)) { lb_tokenizer_free(t); lb_model_free(m); return 1; }
    rc = generate(&o, m, t);
    lb_tokenizer_free(t);
    lb_model_free(m);
    return rc;
}
