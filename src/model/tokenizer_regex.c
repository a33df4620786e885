/* tokenizer_regex.c: the pre-tokenizer split patterns of GPT-2 and Llama 3
 * (also Qwen2's, which is Llama 3's with single digits), matched by hand
 * instead of by a regex engine. At each position the alternatives are tried
 * in the pattern's order, with the backtracking the patterns imply worked out
 * (see docs/tokenizers.md). \p{L} and \p{N} come from generated Unicode
 * tables, \s is the Unicode White_Space property. Bytes that are not valid
 * UTF-8 count as U+FFFD (neither letter, number nor space). */
#include "model/tokenizer.h"
#include "model/tokenizer_unicode.h"

size_t lb__utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    *cp = 0xFFFD;
    if (c < 0x80) { *cp = c; return 1; }
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) k = 2;
    else if (c >= 0xE0 && c <= 0xEF) { k = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 1;
    if (n < k || s[1] < lo || s[1] > hi) return 1;
    uint32_t v = c & (0x7F >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 1;
        v = v << 6 | (s[i] & 0x3F);
    }
    *cp = v;
    return k;
}

static bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid][0]) hi = mid;
        else if (c > r[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

bool lb__uni_is_letter(uint32_t c)
{
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return in_ranges(lb_uni_letter, sizeof lb_uni_letter / sizeof *lb_uni_letter, c);
}

bool lb__uni_is_number(uint32_t c)
{
    if (c < 0x80) return c >= '0' && c <= '9';
    return in_ranges(lb_uni_number, sizeof lb_uni_number / sizeof *lb_uni_number, c);
}

bool lb__uni_is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

enum { C_END, C_L, C_N, C_S, C_O };

typedef struct { const unsigned char *s; size_t n; } text;

/* Class and byte length of the code point at i (C_END past the end). */
static int cls_at(text t, size_t i, size_t *len)
{
    *len = 0;
    if (i >= t.n) return C_END;
    uint32_t c;
    *len = lb__utf8_decode(t.s + i, t.n - i, &c);
    if (lb__uni_is_letter(c)) return C_L;
    if (lb__uni_is_number(c)) return C_N;
    if (lb__uni_is_space(c)) return C_S;
    return C_O;
}

/* End of the run of class k starting at i, at most max code points (0: any). */
static size_t run_end(text t, size_t i, int k, int max)
{
    size_t len;
    for (int count = 0; (!max || count < max) && cls_at(t, i, &len) == k; count++) i += len;
    return i;
}

static size_t contraction(text t, size_t i, bool fold)
{
    static const char *const forms[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    if (t.s[i] != '\'') return 0;
    for (int f = 0; f < 7; f++) {
        size_t k = strlen(forms[f]), j = 0;
        while (j < k && i + 1 + j < t.n &&
               (fold ? (t.s[i + 1 + j] | 0x20) : t.s[i + 1 + j]) == (unsigned char)forms[f][j]) j++;
        if (j == k) return 1 + k;
    }
    return 0;
}

/* Whitespace alternatives shared by both patterns: \s+(?!\S) | \s+ , and
 * for Llama 3 first \s*[\r\n]+ . */
static size_t match_space(text t, size_t i, bool newline_alt)
{
    size_t j = i, last = i, len, last_nl = 0;
    bool nl = false;
    int count = 0;
    while (cls_at(t, j, &len) == C_S) {
        if (t.s[j] == '\r' || t.s[j] == '\n') { nl = true; last_nl = j; }
        last = j;
        j += len;
        count++;
    }
    if (newline_alt && nl) return last_nl + 1 - i;
    if (j >= t.n || count == 1) return j - i;
    return last - i;   /* leave the last space to the next token */
}

static size_t match_gpt2(text t, size_t i)
{
    size_t l0, l1, k = contraction(t, i, false);
    if (k) return k;
    int c0 = cls_at(t, i, &l0);
    if (t.s[i] == ' ') {
        int c1 = cls_at(t, i + 1, &l1);
        if (c1 == C_L || c1 == C_N || c1 == C_O) return run_end(t, i + 1, c1, 0) - i;
    }
    if (c0 == C_L || c0 == C_N || c0 == C_O) return run_end(t, i, c0, 0) - i;
    return match_space(t, i, false);
}

static size_t match_llama3(text t, size_t i, int max_digits)
{
    size_t l0, l1, k = contraction(t, i, true);
    if (k) return k;
    int c0 = cls_at(t, i, &l0), c1 = cls_at(t, i + l0, &l1);
    bool crlf = t.s[i] == '\r' || t.s[i] == '\n';
    if (c0 != C_L && c0 != C_N && !crlf && c1 == C_L) return run_end(t, i + l0, C_L, 0) - i;
    if (c0 == C_L) return run_end(t, i, C_L, 0) - i;
    if (c0 == C_N) return run_end(t, i, C_N, max_digits) - i;
    size_t start = t.s[i] == ' ' && c1 == C_O ? i + 1 : i;
    if (start > i || c0 == C_O) {
        size_t e = run_end(t, start, C_O, 0);
        while (e < t.n && (t.s[e] == '\r' || t.s[e] == '\n')) e++;
        return e - i;
    }
    return match_space(t, i, true);
}

static size_t metaspace_end(const char *s, size_t n, size_t i, const char *rep)
{
    size_t rl = strlen(rep), j = i + 1;
    while (j < n && !(j + rl <= n && !memcmp(s + j, rep, rl))) j++;
    return j;
}

void lb__pretok_split(const lb_pretok *p, const char *s, size_t n, lb_emit_fn emit, void *ctx)
{
    text t = {(const unsigned char *)s, n};
    for (size_t i = 0; i < n;) {
        size_t k, len;
        switch (p->type) {
        case LB_PRE_SPLIT_REGEX:
        case LB_PRE_BYTELEVEL:
            k = p->type == LB_PRE_BYTELEVEL || p->re == LB_RE_GPT2 ? match_gpt2(t, i)
                                                                   : match_llama3(t, i, p->max_digits);
            break;
        case LB_PRE_DIGITS: {
            int c = cls_at(t, i, &len);
            k = c == C_N ? (p->individual ? len : run_end(t, i, C_N, 0) - i) : 0;
            if (!k) {
                size_t j = i;
                while (j < n && cls_at(t, j, &len) != C_N) j += len;
                k = j - i;
            }
            break;
        }
        default:
            k = metaspace_end(s, n, i, p->metaspace_char) - i;
            break;
        }
        if (!k) k = 1;   /* cannot happen; guards against an endless loop */
        emit(ctx, i, k);
        i += k;
    }
}
