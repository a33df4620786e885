/* json.c: a strict RFC 8259 reader building a small DOM. Strings are decoded
 * to UTF-8 (\uXXXX with surrogate pairs; lone surrogates are an error).
 * Errors name the source (a file name) and the byte offset. Nesting is capped
 * so hostile input cannot exhaust the stack. */
#include "core/core.h"
#include <math.h>

#define MAX_DEPTH 256

typedef struct {
    const char *s;
    size_t n, i;
    const char *what;
    lb_status st;
} parser;

static lb_json *fail(parser *p, const char *msg)
{
    if (p->st == LB_OK)
        p->st = lb__err(LB_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s", p->what, p->i, msg);
    return NULL;
}

static void skip_ws(parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static lb_json *node(parser *p, lb_json_type t)
{
    lb_json *j = LB_CALLOC(1, sizeof *j);
    if (!j) {
        if (p->st == LB_OK) p->st = lb__err(LB_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
        return NULL;
    }
    j->type = t;
    return j;
}

static int hex4(parser *p, uint32_t *out)
{
    if (p->i + 4 > p->n) return 0;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i + k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    p->i += 4;
    *out = v;
    return 1;
}

static void put_utf8(lb_buf *b, uint32_t c)
{
    unsigned char u[4];
    size_t k;
    if (c < 0x80) { u[0] = (unsigned char)c; k = 1; }
    else if (c < 0x800) { u[0] = (unsigned char)(0xc0 | (c >> 6)); u[1] = (unsigned char)(0x80 | (c & 0x3f)); k = 2; }
    else if (c < 0x10000) {
        u[0] = (unsigned char)(0xe0 | (c >> 12)); u[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (c & 0x3f)); k = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | (c >> 18)); u[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f)); u[3] = (unsigned char)(0x80 | (c & 0x3f)); k = 4;
    }
    lb__buf_put(b, u, k);
}

/* Parses a string starting at the opening quote; returns malloc'd text. */
static char *parse_str(parser *p, size_t *len)
{
    p->i++; /* opening quote */
    lb_buf b = {0};
    lb__buf_put(&b, "", 0); /* allocates, so an empty string is "" not NULL */
    while (p->i < p->n) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            if (b.failed) { lb__buf_free(&b); fail(p, "out of memory"); return NULL; }
            *len = b.len;
            return b.data;
        }
        if (c < 0x20) { lb__buf_free(&b); fail(p, "control character in string"); return NULL; }
        if (c != '\\') { lb__buf_put(&b, &c, 1); p->i++; continue; }
        if (++p->i >= p->n) break;
        char e = p->s[p->i++];
        uint32_t cp;
        switch (e) {
        case '"': lb__buf_put(&b, "\"", 1); break;
        case '\\': lb__buf_put(&b, "\\", 1); break;
        case '/': lb__buf_put(&b, "/", 1); break;
        case 'b': lb__buf_put(&b, "\b", 1); break;
        case 'f': lb__buf_put(&b, "\f", 1); break;
        case 'n': lb__buf_put(&b, "\n", 1); break;
        case 'r': lb__buf_put(&b, "\r", 1); break;
        case 't': lb__buf_put(&b, "\t", 1); break;
        case 'u':
            if (!hex4(p, &cp)) { lb__buf_free(&b); fail(p, "bad \\u escape"); return NULL; }
            if (cp >= 0xd800 && cp < 0xdc00) {
                uint32_t lo;
                if (p->i + 2 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                    lb__buf_free(&b); fail(p, "lone high surrogate"); return NULL;
                }
                p->i += 2;
                if (!hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                    lb__buf_free(&b); fail(p, "bad low surrogate"); return NULL;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                lb__buf_free(&b); fail(p, "lone low surrogate"); return NULL;
            }
            put_utf8(&b, cp);
            break;
        default: lb__buf_free(&b); fail(p, "bad escape"); return NULL;
        }
    }
    lb__buf_free(&b);
    fail(p, "unterminated string");
    return NULL;
}

static lb_json *parse_value(parser *p, int depth);

static lb_json *parse_container(parser *p, int depth, bool obj)
{
    lb_json *j = node(p, obj ? LB_JSON_OBJ : LB_JSON_ARR);
    if (!j) return NULL;
    size_t cap = 0;
    char close = obj ? '}' : ']';
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; return j; }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (obj) {
            size_t kl;
            if (p->i >= p->n || p->s[p->i] != '"') { lb__json_free(j); return fail(p, "expected a string key"); }
            key = parse_str(p, &kl);
            if (!key) { lb__json_free(j); return NULL; }
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') { LB_FREE(key); lb__json_free(j); return fail(p, "expected ':'"); }
            p->i++;
        }
        lb_json *v = parse_value(p, depth + 1);
        if (!v) { LB_FREE(key); lb__json_free(j); return NULL; }
        if (j->len == cap) {
            cap = cap ? cap * 2 : 8;
            lb_json **k = LB_REALLOC(j->kids, cap * sizeof *k);
            char **ks = obj ? LB_REALLOC(j->keys, cap * sizeof *ks) : NULL;
            if (k) j->kids = k;
            if (ks) j->keys = ks;
            if (!k || (obj && !ks)) {
                LB_FREE(key); lb__json_free(v); lb__json_free(j);
                return fail(p, "out of memory");
            }
        }
        if (obj) j->keys[j->len] = key;
        j->kids[j->len++] = v;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
        if (p->i < p->n && p->s[p->i] == close) { p->i++; return j; }
        lb__json_free(j);
        return fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static lb_json *parse_number(parser *p)
{
    size_t st = p->i;
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (p->i >= p->n) return fail(p, "bad number");
    if (p->s[p->i] == '0') p->i++;
    else if (p->s[p->i] >= '1' && p->s[p->i] <= '9') while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    else return fail(p, "bad number");
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return fail(p, "bad fraction");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return fail(p, "bad exponent");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    char tmp[64];
    size_t len = p->i - st;
    if (len >= sizeof tmp) len = sizeof tmp - 1; /* absurdly long numbers lose digits, never memory */
    memcpy(tmp, p->s + st, len);
    tmp[len] = 0;
    lb_json *j = node(p, LB_JSON_NUM);
    if (j) j->num = strtod(tmp, NULL);
    return j;
}

static bool literal(parser *p, const char *w)
{
    size_t k = strlen(w);
    if (p->i + k > p->n || memcmp(p->s + p->i, w, k) != 0) return false;
    p->i += k;
    return true;
}

static lb_json *parse_value(parser *p, int depth)
{
    if (depth > MAX_DEPTH) return fail(p, "nesting too deep");
    skip_ws(p);
    if (p->i >= p->n) return fail(p, "unexpected end of input");
    char c = p->s[p->i];
    if (c == '{' || c == '[') return parse_container(p, depth, c == '{');
    if (c == '"') {
        size_t len;
        char *s = parse_str(p, &len);
        if (!s) return NULL;
        lb_json *j = node(p, LB_JSON_STR);
        if (!j) { LB_FREE(s); return NULL; }
        j->str = s; j->len = len;
        return j;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
    lb_json *j = NULL;
    if (literal(p, "true")) { if ((j = node(p, LB_JSON_BOOL))) j->b = true; }
    else if (literal(p, "false")) j = node(p, LB_JSON_BOOL);
    else if (literal(p, "null")) j = node(p, LB_JSON_NULL);
    else return fail(p, "unexpected character");
    return j;
}

lb_status lb__json_parse(const char *text, size_t n, const char *what, lb_json **out)
{
    parser p = {text, n, 0, what ? what : "JSON", LB_OK};
    *out = NULL;
    lb_json *j = parse_value(&p, 0);
    if (!j) return p.st;
    skip_ws(&p);
    if (p.i != n) { lb__json_free(j); fail(&p, "trailing characters"); return p.st; }
    *out = j;
    return LB_OK;
}

void lb__json_free(lb_json *j)
{
    if (!j) return;
    for (size_t i = 0; i < j->len && j->kids; i++) {
        lb__json_free(j->kids[i]);
        if (j->keys) LB_FREE(j->keys[i]);
    }
    LB_FREE(j->kids);
    LB_FREE(j->keys);
    LB_FREE(j->str);
    LB_FREE(j);
}

const lb_json *lb__json_get(const lb_json *obj, const char *key)
{
    if (!obj || obj->type != LB_JSON_OBJ) return NULL;
    for (size_t i = 0; i < obj->len; i++)
        if (!strcmp(obj->keys[i], key)) return obj->kids[i];
    return NULL;
}

const lb_json *lb__json_at(const lb_json *arr, size_t i)
{
    if (!arr || (arr->type != LB_JSON_ARR && arr->type != LB_JSON_OBJ) || i >= arr->len) return NULL;
    return arr->kids[i];
}

bool lb__json_num(const lb_json *obj, const char *key, double *v)
{
    const lb_json *j = lb__json_get(obj, key);
    if (!j || j->type != LB_JSON_NUM) return false;
    *v = j->num;
    return true;
}

bool lb__json_int(const lb_json *obj, const char *key, int64_t *v)
{
    double d;
    if (!lb__json_num(obj, key, &d) || d != floor(d) || fabs(d) > 9.0e15) return false;
    *v = (int64_t)d;
    return true;
}

const char *lb__json_str(const lb_json *obj, const char *key)
{
    const lb_json *j = lb__json_get(obj, key);
    return j && j->type == LB_JSON_STR ? j->str : NULL;
}
