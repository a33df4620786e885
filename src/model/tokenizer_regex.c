/* tokenizer_regex.c: pre-tokenizer splitting. Split patterns (any Regex or
 * String pattern of a tokenizer.json) run on PCRE2 in UTF mode. Before
 * compiling, every \p{..}/\P{..} general-category class and \s, \S, \d, \D
 * is rewritten as explicit code point ranges from the generated tables of
 * tokenizer_unicode.h (Unicode 16), so the classes follow the version current
 * tokenizer references use rather than the older one built into the PCRE2
 * library (Debian 12: Unicode 14). Invalid UTF-8 in the text never matches
 * anything (PCRE2_MATCH_INVALID_UTF): it ends up between matches.
 *
 * A Split step lists the matches left to right (after an empty match the
 * search moves on one character), the text between them as non-matches,
 * flips the two with `invert`, then applies the behavior (see
 * lb_split_behavior) and drops empty pieces, as Hugging Face tokenizers do. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "model/tokenizer.h"
#include "model/tokenizer_unicode.h"

#define N_CATS (sizeof lb_uni_cats / sizeof *lb_uni_cats)
#define N_SPACE (sizeof lb_uni_space / sizeof *lb_uni_space)
#define CN_BIT 29           /* mask bit for unassigned code points (Cn) */
#define MAX_CP 0x10FFFFu

const char lb__re_gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* One code point; an invalid byte is U+FFFD of length 1 (overlongs,
 * surrogates and cut sequences are invalid). */
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

/* ------------------------------------------------------------ Unicode classes */

/* Binary search of the generated ranges; -1 for unassigned. */
int lb__uni_category(uint32_t c)
{
    size_t lo = 0, hi = N_CATS;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < lb_uni_cats[mid].lo) hi = mid;
        else if (c > lb_uni_cats[mid].hi) lo = mid + 1;
        else return lb_uni_cats[mid].cat;
    }
    return -1;
}

/* The Unicode version of the generated tables. */
const char *lb__uni_version(void) { return LB_UNI_VERSION; }

/* Category mask of a \p{name}: one letter (L, M, N, P, S, Z, C: the group),
 * two letters (Lu, ..., Cn), LC / L& (cased letters) or a group's long name;
 * 0 for anything else (scripts, binary properties: left to PCRE2). */
static uint64_t cat_mask(const char *name, size_t n)
{
    static const char *const groups[][2] = {{"Letter", "L"}, {"Mark", "M"}, {"Number", "N"}, {"Punctuation", "P"},
                                            {"Symbol", "S"}, {"Separator", "Z"}, {"Other", "C"}};
    for (int g = 0; g < 7; g++)
        if (n == strlen(groups[g][0]) && !memcmp(name, groups[g][0], n)) { name = groups[g][1]; n = 1; }
    if ((n == 2 && !memcmp(name, "LC", 2)) || (n == 2 && !memcmp(name, "L&", 2))) return 7;   /* Lu Ll Lt */
    if (n == 2 && !memcmp(name, "Cn", 2)) return 1ull << CN_BIT;
    uint64_t m = 0;
    for (int k = 0; k < (int)(sizeof lb_uni_cat_names / sizeof *lb_uni_cat_names); k++)
        if ((n == 1 && lb_uni_cat_names[k][0] == name[0]) || (n == 2 && !memcmp(lb_uni_cat_names[k], name, 2)))
            m |= 1ull << k;
    if (n == 1 && name[0] == 'C') m |= 1ull << CN_BIT;
    return n <= 2 ? m : 0;
}

/* Appends one range as PCRE2 class items, leaving out the surrogates (not
 * allowed in a UTF-mode pattern). */
static void put_range(lb_buf *b, uint32_t lo, uint32_t hi)
{
    if (lo <= 0xDFFF && hi >= 0xD800) {
        if (lo < 0xD800) put_range(b, lo, 0xD7FF);
        if (hi > 0xDFFF) put_range(b, 0xE000, hi);
        return;
    }
    char t[40];
    int k = lo == hi ? snprintf(t, sizeof t, "\\x{%X}", lo) : snprintf(t, sizeof t, "\\x{%X}-\\x{%X}", lo, hi);
    lb__buf_put(b, t, (size_t)k);
}

/* Appends the code points of a class (the categories in mask, or White_Space
 * when mask is 0), complemented with neg, as class items. */
static void put_set(lb_buf *b, uint64_t mask, bool neg)
{
    uint32_t c = 0, run = 0;
    bool in_run = false;
    size_t i = 0, j = 0;
    while (c <= MAX_CP) {
        uint32_t hi;
        bool member;
        if (!mask) {
            bool inside = j < N_SPACE && lb_uni_space[j][0] == c;
            hi = inside ? lb_uni_space[j++][1] : j < N_SPACE ? lb_uni_space[j][0] - 1 : MAX_CP;
            member = inside != neg;
        } else {
            bool inside = i < N_CATS && lb_uni_cats[i].lo == c;
            int cat = inside ? lb_uni_cats[i].cat : CN_BIT;
            hi = inside ? lb_uni_cats[i++].hi : i < N_CATS ? lb_uni_cats[i].lo - 1 : MAX_CP;
            member = ((mask >> cat) & 1) != neg;
        }
        if (member && !in_run) { run = c; in_run = true; }
        if (!member && in_run) { put_range(b, run, c - 1); in_run = false; }
        c = hi + 1;
    }
    if (in_run) put_range(b, run, MAX_CP);
}

/* If pat[i] starts \p{..}, \P{..}, \pX, \s, \S, \d or \D with a class we
 * rewrite, appends it (bracketed unless inside a class) and returns its
 * length; else 0. */
static size_t rewrite_escape(lb_buf *b, const char *pat, size_t n, size_t i, bool in_class)
{
    if (i + 1 >= n) return 0;
    char e = pat[i + 1];
    uint64_t mask;
    bool neg = e == 'P' || e == 'S' || e == 'D';
    size_t len = 2;
    if (e == 's' || e == 'S') mask = 0;
    else if (e == 'd' || e == 'D') mask = cat_mask("Nd", 2);
    else if (e == 'p' || e == 'P') {
        const char *name = pat + i + 2;
        size_t k = 1;
        if (i + 2 < n && pat[i + 2] == '{') {
            const char *close = memchr(pat + i + 3, '}', n - i - 3);
            if (!close) return 0;
            name = pat + i + 3;
            k = (size_t)(close - name);
            if (k && name[0] == '^') { neg = !neg; name++; k--; }
            len = (size_t)(close + 1 - (pat + i));
        } else if (i + 2 >= n) {
            return 0;
        } else {
            len = 3;
        }
        if (!k || !(mask = cat_mask(name, k))) return 0;
    } else {
        return 0;
    }
    if (!in_class) lb__buf_put(b, "[", 1);
    put_set(b, mask, neg);
    if (!in_class) lb__buf_put(b, "]", 1);
    return len;
}

/* Length of the class opening at pat[i] ("[", "[^", and a leading "]" that
 * is a literal). */
static size_t class_open(const char *pat, size_t n, size_t i)
{
    size_t j = i + 1;
    if (j < n && pat[j] == '^') j++;
    if (j < n && pat[j] == ']') j++;
    return j - i;
}

/* The pattern with its Unicode classes spelled out (see the top of the file). */
static void translate(const char *pat, size_t n, lb_buf *b)
{
    bool in_class = false;
    for (size_t i = 0; i < n;) {
        size_t k;
        if (pat[i] == '\\' && i + 1 < n && pat[i + 1] == 'Q') {
            const char *end = NULL;
            for (size_t j = i + 2; j + 1 < n && !end; j++) if (pat[j] == '\\' && pat[j + 1] == 'E') end = pat + j + 2;
            k = end ? (size_t)(end - (pat + i)) : n - i;
            lb__buf_put(b, pat + i, k);
        } else if (pat[i] == '\\') {
            if (!(k = rewrite_escape(b, pat, n, i, in_class))) {
                k = i + 1 < n ? 2 : 1;   /* other escapes go to PCRE2 as they are */
                lb__buf_put(b, pat + i, k);
            }
        } else if (pat[i] == '[' && !in_class) {
            k = class_open(pat, n, i);
            in_class = true;
            lb__buf_put(b, pat + i, k);
        } else if (pat[i] == '[' && i + 1 < n && pat[i + 1] == ':') {   /* POSIX [:name:] */
            const char *end = NULL;
            for (size_t j = i + 2; j + 1 < n && !end; j++) if (pat[j] == ':' && pat[j + 1] == ']') end = pat + j + 2;
            k = end ? (size_t)(end - (pat + i)) : 1;
            lb__buf_put(b, pat + i, k);
        } else {
            if (pat[i] == ']') in_class = false;
            k = 1;
            lb__buf_put(b, pat + i, k);
        }
        i += k;
    }
}

/* Translates (or, for a String pattern, takes literally) and compiles the
 * pattern into p->re, JIT-compiled when PCRE2 can; p owns it afterwards. */
lb_status lb__pretok_compile(lb_pretok *p, const char *pattern, bool literal, const char *name)
{
    lb_buf b = {0};
    if (literal) lb__buf_put(&b, pattern, strlen(pattern));
    else translate(pattern, strlen(pattern), &b);
    if (b.failed) { lb__buf_free(&b); return LB_ERR_NOMEM; }
    int err;
    PCRE2_SIZE off;
    uint32_t opt = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    p->re = pcre2_compile((PCRE2_SPTR)(b.data ? b.data : ""), b.len, opt, &err, &off, NULL);
    lb__buf_free(&b);
    if (!p->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return lb__err(LB_ERR_UNSUPPORTED, "%s: Split pattern does not compile with PCRE2 (%s): %.80s", name,
                       (const char *)msg, pattern);
    }
    pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);   /* without JIT the interpreter gives the same matches */
    return LB_OK;
}

/* Frees the compiled pattern (none: a no-op). */
void lb__pretok_free(lb_pretok *p)
{
    pcre2_code_free(p->re);
    p->re = NULL;
}

/* ------------------------------------------------------------ Split */

typedef struct seg { size_t a, b; bool m; } seg;
typedef struct segs { seg *v; size_t n, cap; bool failed; } segs;

/* Appends one segment; a failed allocation marks the list. */
static void seg_push(segs *l, size_t a, size_t b, bool m)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        seg *v = LB_REALLOC(l->v, cap * sizeof *v);
        if (!v) { l->failed = true; return; }
        l->v = v; l->cap = cap;
    }
    l->v[l->n++] = (seg){a, b, m};
}

/* Matches and the text between them, covering s[0..n) in order. */
static lb_status find_matches(const pcre2_code *re, const char *s, size_t n, segs *out)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return LB_ERR_NOMEM;
    size_t prev = 0, pos = 0;
    int rc = 0;
    while (pos <= n) {
        rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_JIT, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1] > ov[0] ? ov[1] : ov[0];   /* \K can put the start after the end */
        if (a > prev) seg_push(out, prev, a, false);
        seg_push(out, a, b, true);
        prev = b;
        if (b > a) { pos = b; continue; }
        if (b >= n) break;
        uint32_t c;
        pos = b + lb__utf8_decode((const unsigned char *)s + b, n - b, &c);
    }
    pcre2_match_data_free(md);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return lb__err(LB_ERR_UNSUPPORTED, "Split pattern failed on a piece of %zu bytes (PCRE2: %s)", n,
                       (const char *)msg);
    }
    if (prev < n) seg_push(out, prev, n, false);
    return out->failed ? LB_ERR_NOMEM : LB_OK;
}

/* Rewrites the segments into pieces by the behavior; returns their count.
 * Each case is the fold of Hugging Face's SplitDelimiterBehavior. */
static size_t apply_behavior(seg *v, size_t n, lb_split_behavior beh)
{
    size_t k = 0;
    bool prev = false;
    if (beh == LB_SPLIT_ISOLATED) return n;
    if (beh == LB_SPLIT_MERGED_NEXT) {   /* the mirror image of MERGED_PREV, written from the back */
        for (size_t i = n; i-- > 0; prev = v[i].m) {
            if (v[i].m && !prev && k) v[n - k].a = v[i].a;
            else { v[n - 1 - k] = v[i]; k++; }
        }
        memmove(v, v + n - k, k * sizeof *v);
        return k;
    }
    for (size_t i = 0; i < n; prev = v[i].m, i++) {
        if (beh == LB_SPLIT_REMOVED) { if (!v[i].m) v[k++] = v[i]; }
        else if (beh == LB_SPLIT_MERGED_PREV && v[i].m && !prev && k) v[k - 1].b = v[i].b;
        else if (beh == LB_SPLIT_CONTIGUOUS && v[i].m == prev && k) v[k - 1].b = v[i].b;
        else if (beh != LB_SPLIT_REMOVED) v[k++] = v[i];
    }
    return k;
}

/* A Split (or ByteLevel) step: matches, invert, behavior, non-empty pieces. */
static lb_status split_pattern(const lb_pretok *p, const char *s, size_t n, lb_emit_fn emit, void *ctx)
{
    segs l = {0};
    lb_status st = find_matches(p->re, s, n, &l);
    if (!st) {
        bool inv = p->type == LB_PRE_SPLIT_REGEX && p->invert;
        for (size_t i = 0; inv && i < l.n; i++) l.v[i].m = !l.v[i].m;
        size_t k = apply_behavior(l.v, l.n, p->type == LB_PRE_SPLIT_REGEX ? p->behavior : LB_SPLIT_ISOLATED);
        for (size_t i = 0; i < k; i++)
            if (l.v[i].b > l.v[i].a) emit(ctx, l.v[i].a, l.v[i].b - l.v[i].a);
    }
    LB_FREE(l.v);
    return st;
}

/* Whether the code point at s[i] is \p{N}; its length in *len. */
static bool is_number(const char *s, size_t n, size_t i, size_t *len)
{
    uint32_t c;
    *len = lb__utf8_decode((const unsigned char *)s + i, n - i, &c);
    int cat = lb__uni_category(c);
    return cat >= 0 && lb_uni_cat_names[cat][0] == 'N';
}

/* Digits: runs of \p{N} (each one alone with individual) and the runs between. */
static size_t digits_end(const lb_pretok *p, const char *s, size_t n, size_t i)
{
    size_t len, j = i;
    bool num = is_number(s, n, i, &len);
    if (num && p->individual) return i + len;
    while (j < n && is_number(s, n, j, &len) == num) j += len;
    return j;
}

/* Metaspace split: a piece runs until the next replacement character. */
static size_t metaspace_end(const char *s, size_t n, size_t i, const char *rep)
{
    size_t rl = strlen(rep), j = i + 1;
    while (j < n && !(j + rl <= n && !memcmp(s + j, rep, rl))) j++;
    return j;
}

/* Pattern steps go to PCRE2; Digits and Metaspace are cut by hand. */
lb_status lb__pretok_split(const lb_pretok *p, const char *s, size_t n, lb_emit_fn emit, void *ctx)
{
    if (p->re) return split_pattern(p, s, n, emit, ctx);
    for (size_t i = 0; i < n;) {
        size_t e = p->type == LB_PRE_DIGITS ? digits_end(p, s, n, i) : metaspace_end(s, n, i, p->metaspace_char);
        emit(ctx, i, e - i);
        i = e;
    }
    return LB_OK;
}
