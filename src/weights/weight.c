/* weight.c: the registry of representations and what every weight offers
 * whatever its representation: rows and whole matrices in the original
 * space (transforms undone), bytes, checks, copies, and the store that owns
 * a model's converted buffers. Adding a representation: one file filling an
 * lb_wrep (see dense.c, the smallest) and one row in `reps` below. */
#include "weights/weights.h"

/* The order the file reader tries them in: the first that recognises a
 * stored tensor takes it (dense last: any float tensor of the name). */
static const lb_wrep *const reps[] = {&lb__wrep_block, &lb__wrep_lossless, &lb__wrep_sparse, &lb__wrep_dense};

int lb__wrep_count(void) { return (int)(sizeof reps / sizeof *reps); }
const lb_wrep *lb__wrep_at(int i) { return i >= 0 && i < lb__wrep_count() ? reps[i] : NULL; }

int64_t lb__weight_in_cols(const lb_weight *w)
{
    return w->rep == &lb__wrep_block ? w->u.block.pcols : w->cols;
}

lb_status lb__weight_push(lb_weight *w, lb_xform t)
{
    if (w->n_in >= LB_WEIGHT_MAX_XFORMS)
        return lb__err(LB_ERR_ARG, "weight: more than %d input transforms", LB_WEIGHT_MAX_XFORMS);
    w->in[w->n_in++] = t;
    return LB_OK;
}

const lb_xform *lb__weight_xform(const lb_weight *w, lb_xform_kind kind)
{
    for (int i = 0; i < w->n_in; i++)
        if (w->in[i].kind == kind) return &w->in[i];
    return NULL;
}

void lb__weight_row(const lb_weight *w, int64_t r, float *out)
{
    w->rep->row(w, r, out);
    for (int i = w->n_in - 1; i >= 0; i--) lb__xform_undo(&w->in[i], out, 1, w->cols);
}

lb_status lb__weight_f32(const lb_weight *w, float *out)
{
    for (int64_t r = 0; r < w->rows; r++) w->rep->row(w, r, out + r * w->cols);
    lb_status s = LB_OK;
    for (int i = w->n_in - 1; i >= 0 && !s; i--) s = lb__xform_undo(&w->in[i], out, w->rows, w->cols);
    return s;
}

int64_t lb__weight_nonfinite(const lb_weight *w)
{
    return w->rep && w->rep->nonfinite ? w->rep->nonfinite(w) : 0;
}

size_t lb__weight_bytes(const lb_weight *w)
{
    if (!w->rep) return 0;
    size_t n = w->rep->bytes(w);
    for (int i = 0; i < w->n_in; i++) n += lb__xform_bytes(&w->in[i], w->cols);
    return n;
}

lb_status lb__weight_check(const lb_weight *w, const char *name, int64_t rows, int64_t cols)
{
    if (!w->rep) return lb__err(LB_ERR_FORMAT, "model: weight %s is missing", name);
    lb_status s = w->rep->check ? w->rep->check(w, name) : LB_OK;
    if (s) return s;
    if (w->rows * w->cols != rows * cols || (rows > 1 && (w->rows != rows || w->cols != cols)))
        return lb__err(LB_ERR_FORMAT, "model: %s is [%lld, %lld], expected [%lld, %lld]", name, (long long)w->rows,
                       (long long)w->cols, (long long)rows, (long long)cols);
    return LB_OK;
}

/* ---- ownership */

lb_status lb__wstore_keep(lb_wstore *s, void *p, void (*free_fn)(void *))
{
    void **np = LB_REALLOC(s->p, sizeof *np * (size_t)(s->n + 1));
    if (np) s->p = np;
    void (**nf)(void *) = np ? LB_REALLOC(s->free_fn, sizeof *nf * (size_t)(s->n + 1)) : NULL;
    if (nf) s->free_fn = nf;
    if (!np || !nf) {
        free_fn ? free_fn(p) : LB_FREE(p);
        return lb__err(LB_ERR_NOMEM, "out of memory");
    }
    s->p[s->n] = p;
    s->free_fn[s->n++] = free_fn;
    return LB_OK;
}

void *lb__wstore_alloc(lb_wstore *s, size_t n)
{
    void *p = lb__alloc(n ? n : 1);
    if (!p) { lb__err(LB_ERR_NOMEM, "out of memory"); return NULL; }
    return lb__wstore_keep(s, p, NULL) ? NULL : p;
}

void lb__wstore_free(lb_wstore *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->free_fn[i]) s->free_fn[i](s->p[i]);
        else LB_FREE(s->p[i]);
    }
    LB_FREE(s->p);
    LB_FREE(s->free_fn);
    *s = (lb_wstore){0};
}

void *lb__wstore_copy(lb_wstore *s, const void *p, size_t n)
{
    void *q = lb__wstore_alloc(s, n);
    if (q) memcpy(q, p, n);
    return q;
}

lb_status lb__weight_copy(lb_wstore *s, const lb_weight *src, lb_weight *dst)
{
    *dst = *src;
    if (!src->rep) return LB_OK;
    if (!src->rep->copy)
        return lb__err(LB_ERR_UNSUPPORTED, "weight: a %s weight cannot be copied", src->rep->name);
    lb_status st = src->rep->copy(s, dst);
    if (st) return st;
    if (src->act_sd && !(dst->act_sd = lb__wstore_copy(s, src->act_sd, sizeof(float) * (size_t)(src->cols / lb_format_block(src->act)))))
        return LB_ERR_NOMEM;
    for (int i = 0; i < src->n_in; i++) {
        lb_xform *t = &dst->in[i];
        if (t->signs && !(t->signs = lb__wstore_copy(s, t->signs, (size_t)src->cols))) return LB_ERR_NOMEM;
        if (t->scale && !(t->scale = lb__wstore_copy(s, t->scale, sizeof(float) * (size_t)src->cols))) return LB_ERR_NOMEM;
        if (t->rot && !(t->rot = lb__wstore_copy(s, t->rot, sizeof(float) * (size_t)(src->cols * src->cols))))
            return LB_ERR_NOMEM;
    }
    return LB_OK;
}
