/* registry.c: the one table of weight quantizers and the entry points that
 * every method shares: format resolution (family + group), argument checks,
 * the optional Hadamard rotation before the method runs, dequantization back
 * into the original space.
 *
 * Adding a method = one file with its lb__quant_method_fn and one row below.
 * Names are lowercase and stable: they are written into model files. */
#include "quant/quant.h"
#include <math.h>

/* name, description, rotate first, needs calibration, needs sequential calibration, method, rotation block
 * defaults to the format's block */
static const lb_quantizer methods[] = {
    {.name = "rtn", .desc = "round to nearest with the format's scale rule (floor, ceil or MSE-searched); with "
                            "calibration statistics the MSE search is weighted by the input's mean x^2 per column",
     .quantize = lb__rtn_quantize},
    {.name = "sinq", .desc = "Sinkhorn-normalized: per (rows x group) tile, balance row/column std devs, fold the "
                             "column scale into the activations, then round to nearest",
     .quantize = lb__sinq_quantize},
    {.name = "hadamard+rtn", .desc = "block Hadamard rotation of the input space (W R^T offline, R x online), then rtn",
     .rotate = true, .quantize = lb__rtn_quantize},
    {.name = "hadamard+sinq", .desc = "block Hadamard rotation of the input space, then sinq", .rotate = true,
     .quantize = lb__sinq_quantize},
    {.name = "gptq", .desc = "GPTQ: columns rounded in turn, each one's error spread over the later columns through "
                             "the inverse Hessian of the calibration inputs (act_order: descending diag H, static grids)",
     .calib = true, .quantize = lb__gptq_quantize},
    {.name = "mr-gptq", .desc = "MR-GPTQ: block Hadamard of the format's block size, then GPTQ with static "
                                "MSE-searched grids and activation order",
     .rotate = true, .calib = true, .rotate_format_block = true, .quantize = lb__mrgptq_quantize},
    {.name = "awq", .desc = "activation-aware: column scale s = mean|x|^alpha, alpha searched (20 points) for the least "
                            "layer output error tr(E H E^T); W diag(s) rounded to nearest, 1/s kept as the column scale",
     .calib = true, .quantize = lb__awq_quantize},
    {.name = "awq+sinq", .desc = "A-SINQ: the awq scale search with sinq as the quantizer (column scale t/s)",
     .calib = true, .quantize = lb__awq_sinq_quantize},
    {.name = "awq+gptq", .desc = "the awq search with GPTQ as the quantizer of W diag(s) (statistics of the scaled "
                                 "input diag(1/s) x; act_order applies), each alpha scored by tr(E H E^T)",
     .calib = true, .quantize = lb__awq_quantize, .inner = lb__gptq_quantize},
    {.name = "qronos", .desc = "Qronos: fits Q xq to W x (float-path x, quantized-path xq from sequential calibration): "
                               "least-squares first column, re-solve, then GPTQ error diffusion on a fixed rtn grid",
     .calib = true, .sequential = true, .quantize = lb__qronos_quantize},
    {.name = "smoothquant", .desc = "SmoothQuant: column scale s = max|x|^0.5 / max|w|^0.5 migrates activation "
                                    "outliers into the weights (W diag(s) by rtn, x / s online); pair with --act",
     .calib = true, .quantize = lb__smoothquant_quantize},
    {.name = "dartquant", .desc = "DartQuant: a rotation per linear input learned on calibration activations "
                                  "(QR-Orth, Whip loss, from the Hadamard start), W R^T by rtn, R x online; pair "
                                  "with --act; needs --calib-text",
     .calib = true, .learned_rotation = true, .quantize = lb__rtn_quantize},
};
static const int n_methods = (int)(sizeof methods / sizeof *methods);

int lb_quantizer_count(void) { return n_methods; }
const lb_quantizer *lb_quantizer_at(int i) { return i >= 0 && i < n_methods ? &methods[i] : NULL; }
const char *lb_quantizer_name(const lb_quantizer *q) { return q ? q->name : ""; }
const char *lb_quantizer_describe(const lb_quantizer *q) { return q ? q->desc : ""; }
int lb_quantizer_needs_calib(const lb_quantizer *q) { return q && (q->calib || q->sequential); }
int lb_quantizer_needs_sequential(const lb_quantizer *q) { return q && q->sequential; }

const lb_quantizer *lb_quantizer_find(const char *name)
{
    for (int i = 0; name && i < n_methods; i++)
        if (!strcmp(methods[i].name, name)) return &methods[i];
    return NULL;
}

/* "int4_asym_bf16" -> "int4_g<group>_asym_bf16": the family's group name. */
static bool family_name(const char *name, int64_t group, char *buf, size_t cap)
{
    if (strncmp(name, "int", 3) || !name[3] || !strchr("2348", name[3])) return false;
    const char *rest = name + 4;
    if (*rest && *rest != '_') return false;
    snprintf(buf, cap, "int%c_g%lld%s", name[3], (long long)group, rest);
    return true;
}

lb_status lb_quant_format_resolve(const char *name, int64_t group, const lb_format **out)
{
    LB_ARG(out, "lb_quant_format_resolve: out is NULL");
    *out = NULL;
    LB_ARG(name && *name, "lb_quant_format_resolve: name is NULL or empty (no format given)");
    if (group < 0 || (group && !lb__is_pow2(group)))
        return lb__err(LB_ERR_ARG, "group size %lld is not a power of two", (long long)group);
    const lb_format *f = lb_format_find(name);
    char buf[64];
    if (!f && group && family_name(name, group, buf, sizeof buf)) f = lb_format_find(buf);
    if (!f) {
        if (group && family_name(name, group, buf, sizeof buf))
            return lb__err(LB_ERR_NOTFOUND, "no format '%s' (group %lld): the INT families have groups 32, 64 "
                           "and 128 ('lowbit formats' lists them)", name, (long long)group);
        return lb__err(LB_ERR_NOTFOUND, "unknown format '%s' ('lowbit formats' lists them)", name);
    }
    if (group && lb_format_block(f) != group)
        return lb__err(LB_ERR_ARG, "format '%s' has block size %lld, not the group %lld asked for",
                       lb_format_name(f), (long long)lb_format_block(f), (long long)group);
    *out = f;
    return LB_OK;
}

void lb_qmatrix_free(lb_qmatrix *m)
{
    if (!m) return;
    LB_FREE(m->packed);
    LB_FREE(m->col_scale);
    LB_FREE(m->hadamard_signs);
    LB_FREE(m->rotation);
    m->packed = NULL; m->col_scale = NULL; m->hadamard_signs = NULL; m->rotation = NULL;
}

/* Calibration statistics of a padded matrix: zero inputs in the padding
 * columns (H rows and columns 0: GPTQ's dead columns), their per-column
 * statistics set to the mean of the true columns so that column-wise
 * scalings stay neutral there. */
typedef struct pad_stats {
    lb_calib_stats st;
    double *buf;
} pad_stats;

static lb_status pad_stats_make(const lb_calib_stats *c, int64_t pc, pad_stats *p)
{
    int64_t n = c->n;
    const double *src[6] = {c->H, c->Hq, c->Hqx, c->sq, c->abs, c->amax};
    size_t total = 0;
    for (int k = 0; k < 6; k++) total += src[k] ? (size_t)(k < 3 ? pc * pc : pc) : 0;
    if (!(p->buf = lb__zalloc(total * sizeof *p->buf))) return LB_ERR_NOMEM;
    p->st = (lb_calib_stats){.n = pc, .n_tokens = c->n_tokens};
    const double **dst[6] = {&p->st.H, &p->st.Hq, &p->st.Hqx, &p->st.sq, &p->st.abs, &p->st.amax};
    double *at = p->buf;
    for (int k = 0; k < 6; k++) {
        if (!src[k]) continue;
        if (k < 3) {
            for (int64_t i = 0; i < n; i++) memcpy(at + i * pc, src[k] + i * n, (size_t)n * sizeof *at);
            *dst[k] = at; at += pc * pc;
        } else {
            double mean = 0;
            for (int64_t i = 0; i < n; i++) mean += src[k][i];
            mean /= (double)n;
            memcpy(at, src[k], (size_t)n * sizeof *at);
            for (int64_t i = n; i < pc; i++) at[i] = mean;
            *dst[k] = at; at += pc;
        }
    }
    return LB_OK;
}

static void pad_stats_free(pad_stats *p) { LB_FREE(p->buf); }

lb_status lb_quantize_matrix(const lb_quantizer *q, const lb_format *f, const lb_quantize_opts *opts,
                             const float *w, int64_t rows, int64_t cols, lb_qmatrix *out)
{
    LB_ARG(out, "lb_quantize_matrix: out is NULL");
    memset(out, 0, sizeof *out);
    LB_ARG(q, "lb_quantize_matrix: q is NULL");
    LB_ARG(f, "lb_quantize_matrix: f is NULL");
    LB_ARG(w, "lb_quantize_matrix: w is NULL");
    if (rows <= 0 || cols <= 0 || rows > ((int64_t)1 << 40) / cols)
        return lb__err(LB_ERR_ARG, "%s: bad matrix shape %lld x %lld", q->name, (long long)rows, (long long)cols);
    int64_t B = lb_format_block(f);
    lb_quantize_opts o = opts ? *opts : (lb_quantize_opts){0};
    if (q->calib && !o.calib)
        return lb__err(LB_ERR_ARG, "%s needs calibration statistics of the layer's inputs (--calib STATS or "
                       "--calib-text FILE)", q->name);
    if (o.calib && o.calib->n != cols)
        return lb__err(LB_ERR_ARG, "%s: calibration statistics are for %lld inputs, the matrix has %lld columns "
                       "(statistics from another model?)",
                       q->name, (long long)o.calib->n, (long long)cols);
    if (q->rotate_format_block && !o.hadamard_block) o.hadamard_block = B ? B : 128;
    int64_t pc = lb__pad_cols(f, cols);
    *out = (lb_qmatrix){.fmt = f, .method = q, .rows = rows, .cols = cols,
                        .row_bytes = lb_format_row_bytes(f, pc), .tensor_scale = 1.0f};
    float *tmp = NULL, *padded = NULL;
    double *hbuf = NULL;
    lb_calib_stats rot;
    lb_status s = LB_OK;
    if (!(out->packed = lb__alloc(out->row_bytes * (size_t)rows))) s = LB_ERR_NOMEM;
    if (!s && q->rotate) {   /* on the true columns (the rotation block divides cols) */
        tmp = lb__alloc((size_t)(rows * cols) * sizeof *tmp);
        if (!tmp) s = LB_ERR_NOMEM;
        else {
            memcpy(tmp, w, (size_t)(rows * cols) * sizeof *tmp);
            s = lb__quant_rotate(&o, tmp, rows, cols, out);
            w = tmp;
        }
        if (!s && o.calib && !(s = lb__quant_rotate_calib(out, o.calib, &rot, &hbuf))) o.calib = &rot;
    }
    if (!s && q->learned_rotation) {   /* on the true columns; the weight method then runs without statistics */
        if (!(tmp = lb__alloc((size_t)(rows * cols) * sizeof *tmp))) s = LB_ERR_NOMEM;
        else {
            memcpy(tmp, w, (size_t)(rows * cols) * sizeof *tmp);
            s = lb__dart_rotate(&o, tmp, rows, cols, out);
            w = tmp;
            o.calib = NULL;
        }
    }
    if (!s && pc != cols) {   /* zero columns up to the block */
        if (!(padded = lb__zalloc((size_t)(rows * pc) * sizeof *padded))) s = LB_ERR_NOMEM;
        for (int64_t r = 0; !s && r < rows; r++) memcpy(padded + r * pc, w + r * cols, (size_t)cols * sizeof *w);
        w = padded;
    }
    pad_stats ps = {0};
    if (!s && pc != cols && o.calib && !(s = pad_stats_make(o.calib, pc, &ps))) o.calib = &ps.st;
    out->cols = pc;                      /* the method sees the padded matrix */
    if (!s) s = q->quantize(&o, w, out);
    out->cols = cols;
    pad_stats_free(&ps);
    LB_FREE(padded);
    LB_FREE(tmp);
    LB_FREE(hbuf);
    if (s) lb_qmatrix_free(out);
    return s;
}

lb_status lb_quantize_amax(const lb_quantizer *q, const lb_format *f, const lb_quantize_opts *opts,
                           const float *w, int64_t rows, int64_t cols, float *amax)
{
    LB_ARG(amax, "lb_quantize_amax: amax is NULL");
    *amax = 0;
    LB_ARG(q && f && w, "lb_quantize_amax: q, f or w is NULL");
    if (rows <= 0 || cols <= 0 || rows > ((int64_t)1 << 40) / cols)
        return lb__err(LB_ERR_ARG, "%s: bad matrix shape %lld x %lld", q->name, (long long)rows, (long long)cols);
    lb_quantize_opts o = opts ? *opts : (lb_quantize_opts){0};
    int64_t B = lb_format_block(f);
    if (q->rotate_format_block && !o.hadamard_block) o.hadamard_block = B ? B : 128;
    float *tmp = NULL;
    lb_qmatrix r = {.cols = cols};
    if (q->rotate) {
        if (!(tmp = lb__alloc((size_t)(rows * cols) * sizeof *tmp))) return LB_ERR_NOMEM;
        memcpy(tmp, w, (size_t)(rows * cols) * sizeof *tmp);
        lb_status s = lb__quant_rotate(&o, tmp, rows, cols, &r);
        if (s) { LB_FREE(tmp); return s; }
        w = tmp;
    }
    float m = 0;
    for (int64_t i = 0; i < rows * cols; i++) m = fabsf(w[i]) > m ? fabsf(w[i]) : m;
    *amax = m;
    LB_FREE(tmp);
    LB_FREE(r.hadamard_signs);
    return LB_OK;
}

/* Whether q's rotation signs are those of its seed (every rotation of
 * hadamard.c): the file then keeps the seed alone, not a byte per column. */
static bool signs_from_seed(const lb_qmatrix *q)
{
    int8_t *g = q->hadamard_signs ? lb__alloc((size_t)q->cols) : NULL;
    bool same = g && !lb_hadamard_signs(q->hadamard_seed, q->cols, g) && !memcmp(g, q->hadamard_signs, (size_t)q->cols);
    LB_FREE(g);
    return same;
}

lb_weight lb__qmatrix_weight(const lb_qmatrix *q)
{
    lb_weight w = q->fmt ? lb__weight_block(q->fmt, q->tensor_scale, q->packed, q->rows, q->cols)
                         : lb__weight_dense(q->packed, LB_DTYPE_F32, q->rows, q->cols);
    if (q->hadamard_block)
        lb__weight_push(&w, (lb_xform){.kind = LB_XFORM_HADAMARD, .block = q->hadamard_block, .signs = q->hadamard_signs,
                                           .seeded = signs_from_seed(q), .seed = q->hadamard_seed});
    if (q->col_scale) lb__weight_push(&w, (lb_xform){.kind = LB_XFORM_COL_SCALE, .scale = q->col_scale});
    if (q->rotation) lb__weight_push(&w, (lb_xform){.kind = LB_XFORM_ROTATION, .rot = q->rotation});
    w.method = q->method ? q->method->name : NULL;
    return w;
}

lb_status lb_qmatrix_dequantize(const lb_qmatrix *m, float *w)
{
    LB_ARG(m, "lb_qmatrix_dequantize: m is NULL");
    LB_ARG(w, "lb_qmatrix_dequantize: w is NULL");
    lb_weight v = lb__qmatrix_weight(m);
    return lb__weight_f32(&v, w);
}
