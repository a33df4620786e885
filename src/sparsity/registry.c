/* registry.c: the tables of patterns and criteria, parsing a pattern, and
 * lb_prune_matrix, the one entry point for one matrix. */
#include "sparsity/sparsity.h"
#include <math.h>
#include <stdio.h>

static const lb__pattern_desc *const patterns[] = {&lb__pat_unstructured, &lb__pat_nm, &lb__pat_vnm};
static const lb__criterion *const criteria[] = {&lb__crit_magnitude, &lb__crit_wanda, &lb__crit_sparsegpt};
#define N_PATTERNS ((int)(sizeof patterns / sizeof *patterns))
#define N_CRITERIA ((int)(sizeof criteria / sizeof *criteria))

lb_status lb__pattern_parse(const char *text, double ratio, lb__pattern *p)
{
    if (!text) text = "unstructured";
    for (int i = 0; i < N_PATTERNS; i++) {
        lb_status s = LB_OK;
        if (patterns[i]->parse(text, ratio, p, &s)) return s;
    }
    lb_buf b = {0};
    for (int i = 0; i < N_PATTERNS; i++) lb__buf_printf(&b, "%s%s", i ? "; " : "", patterns[i]->syntax);
    lb_status s = lb__err(LB_ERR_ARG, "unknown pattern '%s' (known: %s)", text, b.data ? b.data : "");
    lb__buf_free(&b);
    return s;
}

const lb__pattern_desc *lb__pattern_desc_of(const lb__pattern *p)
{
    return p->kind == LB__PAT_NM ? &lb__pat_nm : p->kind == LB__PAT_VNM ? &lb__pat_vnm : &lb__pat_unstructured;
}

void lb__pattern_text(const lb__pattern *p, char *out, size_t cap)
{
    if (p->kind == LB__PAT_NM) snprintf(out, cap, "%d:%d", p->n, p->m);
    else if (p->kind == LB__PAT_VNM) snprintf(out, cap, "%d:%d:%d", p->v, p->n, p->m);
    else snprintf(out, cap, "unstructured %.4g%%", 100 * p->ratio);
}

double lb__pattern_sparsity(const lb__pattern *p, int64_t cols)
{
    if (cols <= 0) return 0;
    if (p->kind == LB__PAT_UNSTRUCTURED) return floor((double)cols * p->ratio) / (double)cols;
    int64_t kept = cols / p->m * p->n + lb__nm_keep(p->n, p->m, cols % p->m);
    return (double)(cols - kept) / (double)cols;
}

typedef struct scored { double s; int64_t i; } scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->s < y->s) return -1;
    if (x->s > y->s) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

void lb__order_asc(const double *score, int64_t stride, int64_t n, int64_t *idx)
{
    scored small[256], *v = n <= 256 ? small : lb__alloc((size_t)n * sizeof *v);
    LB_ASSERT(v);
    for (int64_t i = 0; i < n; i++) v[i] = (scored){isnan(score[i * stride]) ? -INFINITY : score[i * stride], i};
    qsort(v, (size_t)n, sizeof *v, cmp_scored);
    for (int64_t i = 0; i < n; i++) idx[i] = v[i].i;
    if (v != small) LB_FREE(v);
}

lb_status lb__prune_by_score(const lb__pattern *p, double *score, float *w, int64_t rows, int64_t cols, uint8_t *keep)
{
    lb__pattern_desc_of(p)->select(p, score, rows, cols, cols, keep, cols);
    for (int64_t i = 0; i < rows * cols; i++)
        if (!keep[i]) w[i] = 0.0f;
    return LB_OK;
}

const lb__criterion *lb__criterion_find(const char *name)
{
    for (int i = 0; i < N_CRITERIA; i++)
        if (!strcmp(criteria[i]->name, name)) return criteria[i];
    return NULL;
}

int lb_prune_criterion_count(void) { return N_CRITERIA; }
const char *lb_prune_criterion_name(int i) { return i >= 0 && i < N_CRITERIA ? criteria[i]->name : NULL; }
const char *lb_prune_criterion_desc(int i) { return i >= 0 && i < N_CRITERIA ? criteria[i]->desc : NULL; }

/* The criterion named in o, with an error listing the known ones. */
static lb_status criterion_of(const lb_prune_opts *o, const lb__criterion **c)
{
    const char *name = o->criterion ? o->criterion : "magnitude";
    if ((*c = lb__criterion_find(name))) return LB_OK;
    return lb__err(LB_ERR_NOTFOUND, "unknown criterion '%s' (known: magnitude, wanda, sparsegpt)", name);
}

lb_status lb_prune_matrix(const lb_prune_opts *o, float *w, int64_t rows, int64_t cols, uint8_t *keep)
{
    LB_ARG(o, "lb_prune_matrix: opts is NULL");
    LB_ARG(w, "lb_prune_matrix: w is NULL");
    if (rows <= 0 || cols <= 0) return lb__err(LB_ERR_ARG, "lb_prune_matrix: shape [%lld, %lld] is empty",
                                               (long long)rows, (long long)cols);
    const lb__criterion *c;
    lb__pattern p;
    lb_status s = criterion_of(o, &c);
    if (!s) s = lb__pattern_parse(o->pattern, o->ratio, &p);
    if (s) return s;
    if (c->calib && !o->calib)
        return lb__err(LB_ERR_ARG, "criterion %s needs calibration statistics (none given)", c->name);
    if (c->calib && o->calib->n != cols)
        return lb__err(LB_ERR_ARG, "criterion %s: statistics are for %lld inputs, the matrix has %lld", c->name,
                       (long long)o->calib->n, (long long)cols);
    uint8_t *k = keep ? keep : lb__alloc((size_t)(rows * cols));
    if (!k) return lb__err(LB_ERR_NOMEM, "out of memory");
    s = c->prune(o, &p, w, rows, cols, k);
    if (k != keep) LB_FREE(k);
    return s;
}

lb_status lb_prune_quantize_matrix(const lb_prune_opts *o, const lb_format *f, float *w, int64_t rows, int64_t cols,
                                   uint8_t *keep, lb_qmatrix *out)
{
    LB_ARG(out, "lb_prune_quantize_matrix: out is NULL");
    memset(out, 0, sizeof *out);
    LB_ARG(o, "lb_prune_quantize_matrix: opts is NULL");
    LB_ARG(f, "lb_prune_quantize_matrix: format is NULL");
    LB_ARG(w, "lb_prune_quantize_matrix: w is NULL");
    if (rows <= 0 || cols <= 0) return lb__err(LB_ERR_ARG, "lb_prune_quantize_matrix: shape [%lld, %lld] is empty",
                                               (long long)rows, (long long)cols);
    const lb__criterion *c;
    lb__pattern p;
    lb_status s = criterion_of(o, &c);
    if (!s) s = lb__pattern_parse(o->pattern, o->ratio, &p);
    if (s) return s;
    if (c != &lb__crit_sparsegpt)
        return lb__err(LB_ERR_UNSUPPORTED, "joint prune-and-quantize is SparseGPT's mode: criterion %s has no error "
                       "feedback (prune, then quantize instead)", c->name);
    if (!o->calib) return lb__err(LB_ERR_ARG, "criterion sparsegpt needs calibration statistics (none given)");
    if (o->calib->n != cols)
        return lb__err(LB_ERR_ARG, "criterion sparsegpt: statistics are for %lld inputs, the matrix has %lld",
                       (long long)o->calib->n, (long long)cols);
    uint8_t *k = keep ? keep : lb__alloc((size_t)(rows * cols));
    if (!k) return lb__err(LB_ERR_NOMEM, "out of memory");
    s = lb__sparsegpt_joint(o, &p, f, w, rows, cols, k, out);
    if (k != keep) LB_FREE(k);
    return s;
}
