/* cmd_tokenize.c: `lowbit tokenize`: text to token ids, or ids to text. */
#include "cli.h"
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf("usage: lowbit tokenize --model M [--tokenizer T] [--bos] [--json] [--decode] [--file F] [TEXT...]\n"
           "Encodes TEXT (the arguments joined by spaces, or the bytes of file F) and prints the token ids,\n"
           "space separated. With --decode the input is token ids (spaces or commas between them) and the\n"
           "decoded text is printed.\n"
           "  --model M      a model folder (tokenizer.json, tokenizer.bin or tok*.bin inside) or a llama2.c\n"
           "                 model file (tok{vocab}.bin, tokenizer.bin, ... beside it)\n"
           "  --tokenizer T  use this tokenizer.bin / tokenizer.json instead of finding one\n"
           "  --bos          start with the BOS token (or the tokenizer's template prefix)\n"
           "  --json         print {\"tokenizer\", \"n_tokens\", \"ids\"} or {\"tokenizer\", \"text\"}\n"
           "  --file F       read the text (or ids) from F\n");
}

static void json_str(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

/* Parses ids separated by spaces, commas or brackets. */
static int parse_ids(const char *s, size_t n, int32_t **ids, int64_t *k)
{
    int64_t cap = 64;
    *ids = malloc((size_t)cap * sizeof **ids);
    *k = 0;
    for (size_t i = 0; *ids && i < n;) {
        if (strchr(" \t\r\n,[]", s[i])) { i++; continue; }
        char *end;
        long long v = strtoll(s + i, &end, 10);
        if (end == s + i || v < 0 || v > INT32_MAX || (end < s + n && !strchr(" \t\r\n,[]", *end)))
            return cli_fail("tokenize", "--decode: '%.20s' is not a token id", s + i);
        if (*k == cap) {
            int32_t *p = realloc(*ids, (size_t)(cap *= 2) * sizeof *p);
            if (!p) break;
            *ids = p;
        }
        (*ids)[(*k)++] = (int32_t)v;
        i = (size_t)(end - s);
    }
    return *ids ? 0 : cli_fail("tokenize", "out of memory");
}

static int run(const char *tok_path, const char *text, size_t n, bool bos, bool json, bool decode)
{
    lb_tokenizer *t;
    lb_status s = lb_tokenizer_load(tok_path, &t);
    if (s) return cli_fail_status("tokenize", s);
    int32_t *ids = NULL;
    int64_t k = 0;
    int rc = 0;
    if (decode) {
        char *out = NULL;
        size_t m = 0;
        rc = parse_ids(text, n, &ids, &k);
        if (!rc && (s = lb_tokenizer_decode(t, ids, k, &out, &m))) rc = cli_fail_status("tokenize", s);
        if (!rc && json) { printf("{\"tokenizer\": "); json_str(tok_path, strlen(tok_path)); printf(", \"text\": "); json_str(out, m); printf("}\n"); }
        else if (!rc) { fwrite(out, 1, m, stdout); putchar('\n'); }
        free(out);
    } else if ((s = lb_tokenizer_encode(t, text, n, bos, &ids, &k))) {
        rc = cli_fail_status("tokenize", s);
    } else {
        if (json) { printf("{\"tokenizer\": "); json_str(tok_path, strlen(tok_path)); printf(", \"n_tokens\": %lld, \"ids\": [", (long long)k); }
        for (int64_t i = 0; i < k; i++) printf(json ? "%s%d" : "%s%d", i ? (json ? ", " : " ") : "", ids[i]);
        printf(json ? "]}\n" : "\n");
    }
    free(ids);
    lb_tokenizer_free(t);
    return rc;
}

/* The text arguments joined by single spaces (malloc'd). */
static char *join(const char **pos, int n, size_t *len)
{
    size_t total = 1;
    for (int i = 0; i < n; i++) total += strlen(pos[i]) + 1;
    char *t = malloc(total);
    if (!t) return NULL;
    *len = 0;
    for (int i = 0; i < n; i++) {
        if (i) t[(*len)++] = ' ';
        memcpy(t + *len, pos[i], strlen(pos[i]));
        *len += strlen(pos[i]);
    }
    t[*len] = 0;
    return t;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *tok = NULL, *file = NULL;
    bool bos = false, json = false, decode = false;
    const char **pos = malloc(sizeof *pos * (size_t)argc);
    int n_pos = 0;
    const cli_optdef defs[] = {
        CLI_O_PATH("--model", &model), CLI_O_PATH("--tokenizer", &tok), CLI_O_PATH("--file", &file),
        CLI_O_FLAG("--bos", &bos), CLI_O_FLAG("--json", &json), CLI_O_FLAG("--decode", &decode), {0}};
    if (!pos) return cli_fail("tokenize", "out of memory");
    int rc = cli_parse("tokenize", argc, argv, defs, pos, argc, &n_pos);
    if (rc) { free(pos); if (rc < 0) usage(); return rc < 0 ? 0 : rc; }
    size_t n = 0;
    char *text = join(pos, n_pos, &n);
    free(pos);
    if (!text) return cli_fail("tokenize", "out of memory");
    if (!model && !tok) { free(text); return cli_fail("tokenize", "give --model or --tokenizer (see --help for usage)"); }
    if ((model && cli_input("tokenize", "--model", model, true)) || (tok && cli_input("tokenize", "--tokenizer", tok, true))) {
        free(text);
        return 1;
    }
    if (file) {
        if (n) { free(text); return cli_fail("tokenize", "give either --file or text arguments, not both"); }
        free(text);
        if (!(text = cli_read_all("tokenize", file, &n))) return 1;
    }
    size_t bad = cli_utf8_check((const unsigned char *)text, n);
    if (!decode && bad != n) {
        free(text);
        return cli_fail("tokenize", "%s: not valid UTF-8 at byte %zu", file ? file : "the text", bad);
    }
    char found[4096];
    if (!tok) {
        lb_status s = lb_tokenizer_find(model, found, sizeof found);
        if (s) { free(text); return cli_fail_status("tokenize", s); }
        tok = found;
    }
    rc = run(tok, text, n, bos, json, decode);
    free(text);
    return rc;
}
