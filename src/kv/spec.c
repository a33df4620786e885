/* spec.c: the KV-cache SPEC parser (docs/kv.md).
 *
 *   spec  := stage ('+' stage)*
 *   stage := policy [':' param (',' param)*]
 *   param := key '=' value
 *
 * Every parameter gets its default unless given; a number must be in its
 * range, a name one of its choices (or a registry format for "@format").
 * At most one stage stores (f32 when none does), each eviction policy
 * appears once. Errors name the option and the offending piece of text. */
#include "kv/kv.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>

static int param_index(const lb__kv_policy *p, const char *key)
{
    for (int i = 0; i < p->n_params; i++)
        if (!strcmp(p->params[i].key, key)) return i;
    return -1;
}

double lb__kv_get(const lb__kv_stage *st, const char *key)
{
    int i = param_index(st->pol, key);
    LB_ASSERT(i >= 0);
    return st->val[i];
}

const char *lb__kv_get_name(const lb__kv_stage *st, const char *key)
{
    int i = param_index(st->pol, key);
    LB_ASSERT(i >= 0);
    return st->name[i];
}

static bool in_choices(const char *choices, const char *v)
{
    if (!strcmp(choices, "@format")) return lb_format_find(v) != NULL;
    size_t n = strlen(v);
    for (const char *c = choices; *c;) {
        const char *e = strchr(c, '|');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (len == n && !strncmp(c, v, n)) return true;
        if (!e) break;
        c = e + 1;
    }
    return false;
}

static lb_status set_param(lb__kv_stage *st, const char *key, const char *val, const char *opt)
{
    const lb__kv_policy *p = st->pol;
    int i = param_index(p, key);
    if (i < 0) {
        char keys[160] = "";
        for (int j = 0; j < p->n_params; j++)
            snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", j ? ", " : "", p->params[j].key);
        return lb__err(LB_ERR_ARG, "%s: policy '%s' has no parameter '%s' (it takes: %s)", opt, p->name, key,
                       p->n_params ? keys : "none");
    }
    if (st->given & (1u << i)) return lb__err(LB_ERR_ARG, "%s: %s: parameter '%s' given twice", opt, p->name, key);
    st->given |= 1u << i;
    const lb__kv_param *d = &p->params[i];
    if (d->choices) {
        if (!in_choices(d->choices, val) || strlen(val) >= LB_KV_NAME_LEN)
            return lb__err(LB_ERR_ARG, "%s: %s %s='%s' is not one of %s", opt, p->name, key, val,
                           strcmp(d->choices, "@format") ? d->choices : "the registry formats (lowbit formats)");
        snprintf(st->name[i], LB_KV_NAME_LEN, "%s", val);
        return LB_OK;
    }
    char *end;
    double x = strtod(val, &end);
    if (!*val || *end || !isfinite(x))
        return lb__err(LB_ERR_ARG, "%s: %s %s='%s' is not a number", opt, p->name, key, val);
    bool bad = x < d->lo || x > d->hi || (d->hi_open && x >= d->hi) || (d->integer && x != floor(x));
    if (bad)
        return lb__err(LB_ERR_ARG, "%s: %s %s=%s is outside %s[%g, %g%s", opt, p->name, key, val,
                       d->integer ? "the whole numbers in " : "", d->lo, d->hi, d->hi_open ? ")" : "]");
    st->val[i] = x;
    return LB_OK;
}

static void stage_defaults(lb__kv_stage *st, const lb__kv_policy *p)
{
    memset(st, 0, sizeof *st);
    st->pol = p;
    for (int i = 0; i < p->n_params; i++) {
        st->val[i] = p->params[i].def;
        if (p->params[i].choices) snprintf(st->name[i], LB_KV_NAME_LEN, "%s", p->params[i].def_name);
    }
}

/* One stage from text [b, e). */
static lb_status parse_stage(const char *b, const char *e, const char *opt, lb__kv_stage *st)
{
    char buf[256];
    if ((size_t)(e - b) >= sizeof buf) return lb__err(LB_ERR_ARG, "%s: stage too long", opt);
    memcpy(buf, b, (size_t)(e - b));
    buf[e - b] = 0;
    char *colon = strchr(buf, ':');
    if (colon) *colon = 0;
    if (!buf[0]) return lb__err(LB_ERR_ARG, "%s: empty policy name in '%.*s'", opt, (int)(e - b), b);
    const lb__kv_policy *p = lb__kv_policy_find(buf);
    if (!p) return lb__err(LB_ERR_ARG, "%s: unknown policy '%s' (lowbit kv --list)", opt, buf);
    stage_defaults(st, p);
    if (!colon) return LB_OK;
    for (char *kv = colon + 1; kv;) {
        char *next = strchr(kv, ',');
        if (next) *next++ = 0;
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv || !eq[1])
            return lb__err(LB_ERR_ARG, "%s: %s: '%s' is not key=value", opt, p->name, kv);
        *eq = 0;
        lb_status s = set_param(st, kv, eq + 1, opt);
        if (s) return s;
        kv = next;
    }
    return LB_OK;
}

static void write_text(lb__kv_spec *sp)
{
    size_t n = 0, cap = sizeof sp->text;
    sp->text[0] = 0;
    for (int i = 0; i < sp->n && n < cap; i++) {
        const lb__kv_stage *st = &sp->st[i];
        n += (size_t)snprintf(sp->text + n, cap - n, "%s%s", i ? "+" : "", st->pol->name);
        for (int j = 0; j < st->pol->n_params && n < cap; j++) {
            const lb__kv_param *d = &st->pol->params[j];
            if (d->choices) n += (size_t)snprintf(sp->text + n, cap - n, "%c%s=%s", j ? ',' : ':', d->key, st->name[j]);
            else n += (size_t)snprintf(sp->text + n, cap - n, "%c%s=%g", j ? ',' : ':', d->key, st->val[j]);
        }
    }
}

lb_status lb__kv_parse(const char *text, const char *opt, lb__kv_spec *out)
{
    memset(out, 0, sizeof *out);
    out->store = -1;
    if (!opt) opt = "kv";
    char buf[512];
    size_t m = 0;
    for (const char *t = text ? text : ""; *t; t++) {   /* spaces carry no meaning */
        if (isspace((unsigned char)*t)) continue;
        if (m + 1 >= sizeof buf) return lb__err(LB_ERR_ARG, "%s: SPEC longer than %zu characters", opt, sizeof buf - 1);
        buf[m++] = *t;
    }
    buf[m] = 0;
    for (const char *b = buf; m && b;) {
        const char *e = strchr(b, '+');
        const char *end = e ? e : b + strlen(b);
        if (out->n == LB_KV_MAX_STAGES) return lb__err(LB_ERR_ARG, "%s: more than %d stages", opt, LB_KV_MAX_STAGES);
        lb__kv_stage *st = &out->st[out->n];
        lb_status s = parse_stage(b, end, opt, st);
        if (s) return s;
        for (int i = 0; i < out->n; i++) {
            if (st->pol->kind == LB_KV_STORE && out->st[i].pol->kind == LB_KV_STORE)
                return lb__err(LB_ERR_ARG, "%s: two storage policies ('%s' and '%s'): a cache stores tokens one way",
                               opt, out->st[i].pol->name, st->pol->name);
            if (out->st[i].pol == st->pol)
                return lb__err(LB_ERR_ARG, "%s: policy '%s' appears twice", opt, st->pol->name);
        }
        if (st->pol->kind == LB_KV_STORE) out->store = out->n;
        out->n++;
        b = e ? e + 1 : NULL;
    }
    if (out->store < 0) {
        if (out->n == LB_KV_MAX_STAGES) return lb__err(LB_ERR_ARG, "%s: more than %d stages", opt, LB_KV_MAX_STAGES);
        stage_defaults(&out->st[out->n], lb__kv_policy_find("f32"));
        out->store = out->n++;
    }
    for (int i = 0; i < out->n; i++) {
        const lb__kv_stage *st = &out->st[i];
        lb_status s = st->pol->check ? st->pol->check(st, out, NULL, opt) : LB_OK;
        if (s) return s;
    }
    write_text(out);
    return LB_OK;
}
