/* dense.c: the dense representation: rows x cols values of F32, F16 or BF16,
 * row-major, usually a view into a mapped file. Products go through the
 * engine's matmul kernels (kernels.h), whose canonical summation order makes
 * them bit-identical on every ISA and thread count. Stored as one tensor
 * under the weight's own name. */
#include "weights/weights.h"

static lb_mat mat_of(const lb_weight *w)
{
    return (lb_mat){.data = w->data, .dtype = w->dtype, .rows = w->rows, .cols = w->cols};
}

static void dense_row(const lb_weight *w, int64_t r, float *out)
{
    lb_mat m = mat_of(w);
    lb__mat_row(&m, r, out);
}

static size_t dense_bytes(const lb_weight *w)
{
    return (size_t)(w->rows * w->cols) * lb_dtype_size(w->dtype);
}

static const char *dense_describe(const lb_weight *w) { return lb_dtype_name(w->dtype); }

/* Values whose exponent bits are all ones (Inf, NaN), by dtype. */
static int64_t dense_nonfinite(const lb_weight *w)
{
    int64_t n = w->rows * w->cols, bad = 0;
    if (w->dtype == LB_DTYPE_F32) {
        const uint32_t *v = w->data;
        for (int64_t i = 0; i < n; i++) bad += (v[i] & 0x7f800000u) == 0x7f800000u;
    } else {
        const uint16_t *v = w->data;
        uint16_t e = w->dtype == LB_DTYPE_BF16 ? 0x7f80 : 0x7c00;
        for (int64_t i = 0; i < n; i++) bad += (v[i] & e) == e;
    }
    return bad;
}

static bool float_dtype(lb_dtype t) { return t == LB_DTYPE_F32 || t == LB_DTYPE_F16 || t == LB_DTYPE_BF16; }

static lb_status dense_check(const lb_weight *w, const char *name)
{
    if (float_dtype(w->dtype)) return LB_OK;
    return lb__err(LB_ERR_UNSUPPORTED, "model: %s has dtype %s; the forward pass takes F32, F16, BF16", name,
                   lb_dtype_name(w->dtype));
}

static void dense_rows(const lb_wjob *j, const lb_wpart *p, int64_t r0, int64_t r1, int thread)
{
    lb_mat m = mat_of(p->w);
    j->k->matmul_rows(&m, r0, r1, p->x, j->nt, p->xs, p->y, p->ys);
}

/* "[a, b]" of a tensor's shape. */
static void shape_text(const lb_st_tensor *t, char *got, size_t cap)
{
    got[0] = 0;
    for (int i = 0; i < t->ndim; i++)
        snprintf(got + strlen(got), cap - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
}

static lb_status dense_read(lb_wsrc *src, const char *name, const char *prefix, bool vector, lb_weight *w)
{
    int fi;
    const lb_st_tensor *t = lb__wsrc_find(src, name, &fi);
    if (!t) return LB_ERR_NOTFOUND;
    const char *file = src->files[fi].what;
    if (!float_dtype(t->dtype))
        return lb__err(LB_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (supported: F32, F16, BF16)", file, name,
                       lb_dtype_name(t->dtype));
    bool ok = vector ? t->ndim == 1 && t->shape[0] == w->rows * w->cols
                     : t->ndim == 2 && t->shape[0] == w->rows && t->shape[1] == w->cols;
    if (!ok) {
        char got[128];
        shape_text(t, got, sizeof got);
        if (!vector)
            return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%lld, %lld]", file, name, got,
                           (long long)w->rows, (long long)w->cols);
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%lld]", file, name, got,
                       (long long)(w->rows * w->cols));
    }
    lb__wsrc_take(src, name, &fi);
    const void *data = lb__wsrc_view(src, t);
    if (!data) return LB_ERR_NOMEM;
    *w = lb__weight_dense(data, t->dtype, w->rows, w->cols);
    return LB_OK;
}

static lb_status dense_plan(const lb_weight *w, const char *name, const char *prefix, bool vector, lb_wplan *p)
{
    if (vector) return lb__wplan_add(p, w, name, "", 0, w->dtype, 1, w->rows * w->cols, 0);
    return lb__wplan_add(p, w, name, "", 0, w->dtype, 2, w->rows, w->cols);
}

static lb_status dense_write(const lb_weight *w, int part, lb_st_writer *wr, uint8_t *tmp)
{
    return lb__st_writer_write(wr, w->data, dense_bytes(w));
}

static lb_status dense_copy(lb_wstore *s, lb_weight *w)
{
    return (w->data = lb__wstore_copy(s, w->data, dense_bytes(w))) ? LB_OK : LB_ERR_NOMEM;
}

lb_weight lb__weight_dense(const void *data, lb_dtype dt, int64_t rows, int64_t cols)
{
    return (lb_weight){.rep = &lb__wrep_dense, .rows = rows, .cols = cols, .data = data, .dtype = dt};
}

const lb_wrep lb__wrep_dense = {
    .name = "dense",
    .row = dense_row,
    .bytes = dense_bytes,
    .describe = dense_describe,
    .check = dense_check,
    .rows = dense_rows,
    .read = dense_read,
    .plan = dense_plan,
    .write = dense_write,
    .copy = dense_copy,
    .nonfinite = dense_nonfinite,
};
