/* registry.c: the table of KV-cache policies (one row per policy, each
 * defined in its own file) and the public listing (lowbit kv --list). */
#include "kv/kv.h"

extern const lb__kv_policy lb__kv_policy_f32, lb__kv_policy_f16, lb__kv_policy_bf16, lb__kv_policy_kivi,
    lb__kv_policy_fmt, lb__kv_policy_thinkv, lb__kv_policy_xquant;
/* eviction policies (src/kv/evict_<name>.c, docs/kv-eviction.md) */
extern const lb__kv_policy lb__kv_evict_random, lb__kv_evict_streaming, lb__kv_evict_knorm, lb__kv_evict_snapkv,
    lb__kv_evict_tova, lb__kv_evict_observed, lb__kv_evict_keydiff, lb__kv_evict_paged, lb__kv_evict_expected;

static const lb__kv_policy *const policies[] = {
    &lb__kv_policy_f32,
    &lb__kv_policy_f16,
    &lb__kv_policy_bf16,
    &lb__kv_policy_kivi,
    &lb__kv_policy_fmt,
    &lb__kv_policy_thinkv,
    &lb__kv_policy_xquant,
    &lb__kv_evict_random,
    &lb__kv_evict_streaming,
    &lb__kv_evict_knorm,
    &lb__kv_evict_snapkv,
    &lb__kv_evict_tova,
    &lb__kv_evict_observed,
    &lb__kv_evict_keydiff,
    &lb__kv_evict_paged,
    &lb__kv_evict_expected,
};

int lb__kv_policy_count(void) { return (int)(sizeof policies / sizeof *policies); }

const lb__kv_policy *lb__kv_policy_at(int i) { return i >= 0 && i < lb__kv_policy_count() ? policies[i] : NULL; }

const lb__kv_policy *lb__kv_policy_find(const char *name)
{
    for (int i = 0; name && i < lb__kv_policy_count(); i++)
        if (!strcmp(policies[i]->name, name)) return policies[i];
    return NULL;
}

int lb_kv_policy_count(void) { return lb__kv_policy_count(); }

const char *lb_kv_policy_name(int i)
{
    const lb__kv_policy *p = lb__kv_policy_at(i);
    return p ? p->name : NULL;
}

const char *lb_kv_policy_kind(int i)
{
    const lb__kv_policy *p = lb__kv_policy_at(i);
    return p ? (p->kind == LB_KV_STORE ? "store" : "evict") : NULL;
}

const char *lb_kv_policy_summary(int i)
{
    const lb__kv_policy *p = lb__kv_policy_at(i);
    return p ? p->summary : NULL;
}

int lb_kv_policy_param_count(int i)
{
    const lb__kv_policy *p = lb__kv_policy_at(i);
    return p ? p->n_params : 0;
}

lb_status lb_kv_policy_param(int i, int j, lb_kv_param_info *out)
{
    LB_ARG(out, "lb_kv_policy_param: out is NULL");
    const lb__kv_policy *p = lb__kv_policy_at(i);
    if (!p || j < 0 || j >= p->n_params)
        return lb__err(LB_ERR_ARG, "lb_kv_policy_param: no parameter %d of policy %d", j, i);
    const lb__kv_param *d = &p->params[j];
    *out = (lb_kv_param_info){d->key, d->help, d->choices, d->def_name, d->def, d->lo, d->hi, d->integer, d->hi_open};
    return LB_OK;
}

lb_status lb_kv_spec_check(const char *spec, const char *opt, char *full, size_t cap)
{
    lb__kv_spec sp;
    lb_status s = lb__kv_parse(spec, opt ? opt : "kv", &sp);
    if (!s && full && cap) snprintf(full, cap, "%s", sp.text);
    return s;
}
