/* cmd_calib.c: `lowbit calib`: run text through a model and save the
 * statistics of every linear input (docs/calib.md), and the text-to-tokens
 * step `lowbit quantize --calib-text` shares with it.
 *
 * Calibration and evaluation text never overlap by default: `eval ppl/kld`
 * read chunks from the start of a file, so the calibration tokens come from
 * its tail: the shortest region [begin, end of file), begin at a line start,
 * whose tokens number at least --tokens. The tokens of bytes [0, begin) are
 * counted too and printed: an evaluation of at most that many tokens (ctx x
 * chunks) never reaches the calibration region. --from-byte B takes the
 * tokens from the first line start at or after byte B instead. */
#include "cli.h"
#include <stdlib.h>
#include <string.h>

#define CALIB_TOKENS 16384
#define CALIB_CTX 128

static int64_t line_start(const char *t, int64_t len, int64_t p)
{
    if (p <= 0) return 0;
    int64_t q = p;
    while (q < len && q - p < 65536 && t[q - 1] != '\n') q++;
    if (q < len && t[q - 1] == '\n') return q;
    while (p < len && ((unsigned char)t[p] & 0xC0) == 0x80) p++;   /* no newline near: a UTF-8 boundary */
    return p;
}

static int encode(const char *cmd, const lb_tokenizer *t, const char *s, int64_t n, int32_t **ids, int64_t *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    if (n <= 0) return 0;
    lb_status st = lb_tokenizer_encode(t, s, (size_t)n, 1, ids, n_ids);
    return st ? cli_fail_status(cmd, st) : 0;
}

/* The region [begin, len) of the tail with at least want tokens. */
static int tail_region(const char *cmd, const char *opt, const char *path, const lb_tokenizer *t, const char *text,
                       int64_t len, int64_t want, cli_calib_text *out)
{
    int64_t est = want * 4 + 1024;
    int32_t *ids = NULL;
    int64_t n = 0, begin = 0;
    for (int it = 0; it < 40; it++) {
        begin = est < len ? line_start(text, len, len - est) : 0;
        free(ids);
        if (encode(cmd, t, text + begin, len - begin, &ids, &n)) return 1;
        if (n >= want) break;
        if (begin == 0)
            return free(ids), cli_fail(cmd, "%s %s: has %lld tokens in all; --tokens %lld needs more (lower it or "
                                       "give a longer text)", opt, path, (long long)n, (long long)want);
        est = est * 2;
    }
    /* shrink towards the proportional size when the last step overshot */
    for (int it = 0; it < 4 && n > want + want / 8 && begin < len; it++) {
        int64_t e2 = (int64_t)((double)(len - begin) * ((double)want * 1.03 + 64) / (double)n);
        int64_t b2 = line_start(text, len, len - e2);
        if (b2 <= begin) break;
        int32_t *ids2;
        int64_t n2;
        if (encode(cmd, t, text + b2, len - b2, &ids2, &n2)) return free(ids), 1;
        if (n2 < want) { free(ids2); break; }
        free(ids); ids = ids2; n = n2; begin = b2;
    }
    out->tokens = ids;
    out->begin = begin;
    return 0;
}

/* The region [begin, end) from out->begin on, end at a line start, with at least want tokens. */
static int head_region(const char *cmd, const char *opt, const char *path, const lb_tokenizer *t, const char *text,
                       int64_t len, int64_t want, cli_calib_text *out)
{
    int64_t est = want * 4 + 1024, n = 0, end = len;
    int32_t *ids = NULL;
    for (int it = 0; it < 40; it++) {
        end = out->begin + est < len ? line_start(text, len, out->begin + est) : len;
        free(ids);
        if (encode(cmd, t, text + out->begin, end - out->begin, &ids, &n)) return 1;
        if (n >= want) break;
        if (end == len)
            return free(ids), cli_fail(cmd, "%s %s: has %lld tokens from byte %lld on; --tokens %lld needs more (lower "
                                       "it or give an earlier --from-byte)", opt, path, (long long)n,
                                       (long long)out->begin, (long long)want);
        est *= 2;
    }
    out->tokens = ids;
    out->end = end;
    return 0;
}

int cli_calib_text_tokens(const char *cmd, const char *opt, const char *path, const lb_tokenizer *t, int64_t want,
                          int64_t ctx, int64_t from_byte, cli_calib_text *out)
{
    memset(out, 0, sizeof *out);
    size_t len;
    char *text = cli_read_all(cmd, path, &len);
    if (!text) return 1;
    size_t bad = cli_utf8_check((const unsigned char *)text, len);
    int rc = 0;
    if (len == 0) rc = cli_fail(cmd, "%s %s: the text is empty", opt, path);
    else if (bad != len) rc = cli_fail(cmd, "%s %s: not valid UTF-8 at byte %zu", opt, path, bad);
    else if (from_byte >= (int64_t)len)
        rc = cli_fail(cmd, "--from-byte %lld: %s has %zu bytes", (long long)from_byte, path, len);
    out->end = (int64_t)len;
    if (!rc && from_byte >= 0) {
        out->begin = line_start(text, (int64_t)len, from_byte);
        rc = head_region(cmd, opt, path, t, text, (int64_t)len, want, out);
    } else if (!rc)
        rc = tail_region(cmd, opt, path, t, text, (int64_t)len, want, out);
    int32_t *pre = NULL;
    if (!rc) rc = encode(cmd, t, text, out->begin, &pre, &out->tokens_before);
    free(pre);
    free(text);
    if (rc) { free(out->tokens); memset(out, 0, sizeof *out); return 1; }
    out->n_tokens = want;
    out->file_bytes = (int64_t)len;
    int32_t bos = lb_tokenizer_bos(t);   /* each sequence starts with BOS, as eval's chunks do */
    for (int64_t i = 0; bos >= 0 && i < want; i += ctx) out->tokens[i] = bos;
    return 0;
}

void cli_calib_text_print(FILE *f, const char *path, const cli_calib_text *c, int64_t ctx)
{
    fprintf(f, "calibration text %s: %lld tokens from bytes [%lld, %lld) of %lld%s, in %lld sequences of %lld; "
               "the %lld tokens before byte %lld are left to evaluation (eval ppl/kld with ctx x chunks <= %lld "
               "never reach the calibration bytes)\n", path, (long long)c->n_tokens, (long long)c->begin,
            (long long)c->end, (long long)c->file_bytes, c->end == c->file_bytes ? " (its tail)" : "",
            (long long)((c->n_tokens + ctx - 1) / ctx), (long long)ctx, (long long)c->tokens_before,
            (long long)c->begin, (long long)c->tokens_before);
}

static void help(void)
{
    printf("usage: lowbit calib --model M --text FILE --out STATS.safetensors [--tokens N] [--ctx C]\n"
           "                    [--from-byte B] [--tokenizer T] [--threads K] [--force] [--json]\n"
           "Runs N tokens of FILE through the model (sequences of C tokens, each from position 0 and starting\n"
           "with BOS) and saves, for every layer's linear inputs (q/k/v, o, gate/up, down), H = mean x x^T,\n"
           "mean x^2, mean |x| and max |x| per column, in double (docs/calib.md). `lowbit quantize --calib STATS`\n"
           "uses them.\n"
           "  --tokens N     calibration tokens (default %d)\n"
           "  --ctx C        tokens per sequence (default %d, at most the model's context)\n"
           "  --from-byte B  take the tokens from the first line start at or after byte B; by default they come\n"
           "                 from the end of the file (the shortest tail holding N tokens), because eval ppl/kld\n"
           "                 read from its start. The byte range used is printed.\n"
           "  --tokenizer T  tokenizer (default: the one beside the model)\n"
           "  --threads K    worker threads (0 = all cores); the statistics do not depend on it\n"
           "  --force        replace an existing STATS\n"
           "  --json         print the summary as one JSON object\n", CALIB_TOKENS, CALIB_CTX);
}

static void report(bool json, const char *model, const char *text, const char *out, const cli_calib_text *ct,
                   const lb_calib_info *ci)
{
    double per = ci->n_layers ? ci->seconds / (double)ci->n_layers : 0;
    if (json) {
        printf("{\"model\": \"%s\", \"text\": \"%s\", \"out\": \"%s\", \"tokens\": %lld, \"ctx\": %lld, "
               "\"text_begin\": %lld, \"text_end\": %lld, \"text_bytes\": %lld, \"tokens_before\": %lld, "
               "\"layers\": %lld, \"bytes\": %zu, \"seconds\": %.4f, \"seconds_per_layer\": %.4f}\n", model, text,
               out, (long long)ci->n_tokens, (long long)ci->ctx, (long long)ct->begin, (long long)ct->end,
               (long long)ct->file_bytes, (long long)ct->tokens_before, (long long)ci->n_layers, ci->bytes,
               ci->seconds, per);
        return;
    }
    cli_calib_text_print(stdout, text, ct, ci->ctx);
    printf("model %s: %lld layers; statistics %.2f MB -> %s\n", model, (long long)ci->n_layers,
           (double)ci->bytes / 1e6, out);
    printf("time %.3f s (%.3f s per layer)\n", ci->seconds, per);
}

int cmd_calib(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *out = NULL, *tok = NULL;
    int64_t tokens = CALIB_TOKENS, ctx = 0, threads = 0, from = -1;
    bool json = false, force = false;
    const cli_optdef defs[] = {
        CLI_O_PATH("--model", &model), CLI_O_PATH("--text", &text), CLI_O_PATH("--out", &out),
        CLI_O_PATH("--tokenizer", &tok), CLI_O_INT("--tokens", &tokens, 1, INT64_C(1) << 32),
        CLI_O_INT("--ctx", &ctx, 1, INT64_C(1) << 24), CLI_O_INT("--from-byte", &from, 0, INT64_MAX),
        CLI_THREADS(&threads), CLI_O_FLAG("--force", &force), CLI_O_FLAG("--json", &json), {0}};
    int rc = cli_parse("calib", argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) { help(); return 0; }
    if (rc) return rc;
    if (!model || !text || !out) return cli_fail("calib", "--model, --text and --out are required (see lowbit calib --help)");
    if (cli_input("calib", "--model", model, true) || cli_input("calib", "--text", text, false) ||
        (tok && cli_input("calib", "--tokenizer", tok, false)))
        return 1;
    const char *inputs[] = {model, text, tok};
    if (cli_output("calib", "--out", out, force, inputs, 3)) return 1;
    lb_model *m;
    lb_tokenizer *t;
    if (cli_load_model_tok("calib", model, tok, &m, &t)) return 1;
    lb_model_info mi;
    lb_model_get_info(m, &mi);
    if (!ctx) ctx = mi.max_seq < CALIB_CTX ? mi.max_seq : CALIB_CTX;
    cli_calib_text ct;
    if (ctx > mi.max_seq)
        rc = cli_fail("calib", "--ctx %lld: exceeds the model's %lld positions", (long long)ctx, (long long)mi.max_seq);
    else rc = cli_calib_text_tokens("calib", "--text", text, t, tokens, ctx, from, &ct);
    lb_tokenizer_free(t);
    lb_calib *c = NULL;
    if (!rc) {
        lb_calib_opts co = {.ctx = ctx, .n_threads = (int)threads, .progress = cli_progress, .progress_user = "calib",
                            .text = text, .text_begin = ct.begin, .text_end = ct.end};
        lb_status s = lb_calib_collect(m, ct.tokens, ct.n_tokens, &co, &c);
        cli_progress_end();
        if (!s) s = lb_calib_save(c, out);
        if (s) rc = cli_fail_status("calib", s);
        else {
            lb_calib_info ci;
            lb_calib_get_info(c, &ci);
            report(json, model, text, out, &ct, &ci);
        }
        free(ct.tokens);
    }
    lb_calib_free(c);
    lb_model_free(m);
    return rc;
}
