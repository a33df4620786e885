/* qfile.c: writing lowbit model files (docs/file-format.md, "Quantized
 * models"). A file is one safetensors container any reader opens:
 *
 *   dense tensor     NAME                          its dtype, HF shape
 *   packed linear P  P.weight_packed               U8  (rows, code bytes per row)
 *                    P.weight_scale                U8 (E8M0 / UE4M3 codes), F16 or BF16 (rows, blocks)
 *                    P.weight_zero_point           U8  (rows, blocks), asymmetric INT only
 *                    P.weight_global_scale         F32 (1), NV formats only
 *                    P.weight_col_scale            F32 (cols), SINQ only
 *                    P.hadamard_signs              I8  (cols), rotated weights only
 *   (P = the Hugging Face name without ".weight"), and in __metadata__:
 *   "lowbit.version" "1", "lowbit.config" (the model config as JSON),
 *   "lowbit.tensor.P" (JSON: format, method, group, transform, shape, dtype)
 *   per packed or rotated weight, "format" "pt".
 *
 * In memory a packed row interleaves each block's scale bytes with its codes
 * (formats.h); the file splits them into separate tensors (the compressed-
 * tensors convention) and the loader interleaves them again. Tensors are
 * written in groups of equal element size (4-byte first), so every tensor
 * of the data section is aligned to its element size. */
#include "quant/quant.h"
#include "model/loader.h"
#include "model/safetensors.h"
#include "formats/formats.h"

void lb__qsplit_plan(const lb_format *f, int64_t cols, lb__qsplit *p)
{
    int64_t B = f->block ? f->block : cols;
    p->block = B;
    p->n_blocks = cols / B;
    p->scale_bytes = f->sd == LB__SD_E8M0 || f->sd == LB__SD_UE4M3 ? 1 : 2;
    p->scale_dtype = p->scale_bytes == 1 ? LB_DTYPE_U8 : f->sd == LB__SD_BF16 ? LB_DTYPE_BF16 : LB_DTYPE_F16;
    p->has_zero = f->asym;
    p->block_code_bytes = lb__block_bytes(f, B) - (size_t)lb__scale_bytes(f);
    p->code_bytes = p->block_code_bytes * (size_t)p->n_blocks;
}

void lb__qsplit_row(const lb__qsplit *p, const uint8_t *row, uint8_t *codes, uint8_t *scales, uint8_t *zeros)
{
    size_t hb = (size_t)p->scale_bytes + p->has_zero;
    for (int64_t b = 0; b < p->n_blocks; b++) {
        const uint8_t *blk = row + (size_t)b * (hb + p->block_code_bytes);
        if (scales) memcpy(scales + (size_t)b * p->scale_bytes, blk, (size_t)p->scale_bytes);
        if (zeros && p->has_zero) zeros[b] = blk[p->scale_bytes];
        if (codes) memcpy(codes + (size_t)b * p->block_code_bytes, blk + hb, p->block_code_bytes);
    }
}

void lb__qjoin_row(const lb__qsplit *p, const uint8_t *codes, const uint8_t *scales, const uint8_t *zeros,
                   uint8_t *row)
{
    size_t hb = (size_t)p->scale_bytes + p->has_zero;
    for (int64_t b = 0; b < p->n_blocks; b++) {
        uint8_t *blk = row + (size_t)b * (hb + p->block_code_bytes);
        memcpy(blk, scales + (size_t)b * p->scale_bytes, (size_t)p->scale_bytes);
        if (p->has_zero) blk[p->scale_bytes] = zeros[b];
        memcpy(blk + hb, codes + (size_t)b * p->block_code_bytes, p->block_code_bytes);
    }
}

/* ------------------------------------------------------------- writing */

typedef enum part { P_DENSE, P_CODES, P_SCALES, P_ZEROS, P_GLOBAL, P_COLS, P_SIGNS } part;

typedef struct item {
    char name[128];
    const lb_weight *w;
    part kind;
    lb_dtype dtype;
    int ndim;
    int64_t shape[2];
} item;

typedef struct items { item *v; int64_t n, cap; } items;

static lb_status add_item(items *L, const char *base, const char *suffix, const lb_weight *w, part kind,
                          lb_dtype dt, int ndim, int64_t d0, int64_t d1)
{
    if (L->n == L->cap) {
        int64_t c = L->cap ? 2 * L->cap : 64;
        item *v = LB_REALLOC(L->v, (size_t)c * sizeof *v);
        if (!v) return lb__err(LB_ERR_NOMEM, "out of memory");
        L->v = v; L->cap = c;
    }
    item *it = &L->v[L->n++];
    snprintf(it->name, sizeof it->name, "%s%s", base, suffix);
    it->w = w; it->kind = kind; it->dtype = dt; it->ndim = ndim;
    it->shape[0] = d0; it->shape[1] = d1;
    return LB_OK;
}

/* "P.weight" -> "P" (names not ending in .weight are kept whole). */
static void prefix_of(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s", name);
    if (lb__ends_with(out, ".weight")) out[strlen(out) - 7] = 0;
}

static lb_status tensor_meta(lb_st_writer *wr, const char *pre, const lb_weight *w)
{
    lb_buf b = {0};
    int64_t grp = w->fmt ? lb_format_block(w->fmt) : 0;
    lb__buf_printf(&b, "{\"format\": \"%s\", \"method\": \"%s\", \"group\": %lld, \"transform\": \"%s\", "
                   "\"hadamard_block\": %lld, \"col_scale\": %s, \"shape\": [%lld, %lld], \"dtype\": \"F32\", "
                   "\"bits_per_weight\": %.6g}",
                   w->fmt ? lb_format_name(w->fmt) : lb_dtype_name(w->dtype), w->method ? w->method : "none",
                   (long long)grp, w->hadamard_block ? "hadamard" : "none", (long long)w->hadamard_block,
                   w->col_scale ? "true" : "false", (long long)w->rows, (long long)w->cols,
                   8.0 * (double)lb__qweight_bytes(w) / (double)(w->rows * w->cols));
    char key[160];
    snprintf(key, sizeof key, "lowbit.tensor.%s", pre);
    lb_status s = b.failed ? LB_ERR_NOMEM : lb__st_writer_meta(wr, key, b.data);
    lb__buf_free(&b);
    return s;
}

/* The tensors (and metadata) of one weight. */
static lb_status plan_weight(lb_st_writer *wr, items *L, const lb__qname *q)
{
    const lb_weight *w = q->w;
    char pre[112];
    prefix_of(q->name, pre, sizeof pre);
    lb_status s = LB_OK;
    if (!w->fmt) {
        s = q->vector ? add_item(L, q->name, "", w, P_DENSE, w->dtype, 1, w->rows * w->cols, 0)
                      : add_item(L, q->name, "", w, P_DENSE, w->dtype, 2, w->rows, w->cols);
    } else {
        lb__qsplit p;
        lb__qsplit_plan(w->fmt, w->cols, &p);
        s = add_item(L, pre, ".weight_packed", w, P_CODES, LB_DTYPE_U8, 2, w->rows, (int64_t)p.code_bytes);
        if (!s) s = add_item(L, pre, ".weight_scale", w, P_SCALES, p.scale_dtype, 2, w->rows, p.n_blocks);
        if (!s && p.has_zero) s = add_item(L, pre, ".weight_zero_point", w, P_ZEROS, LB_DTYPE_U8, 2, w->rows, p.n_blocks);
        if (!s && lb_format_uses_tensor_scale(w->fmt))
            s = add_item(L, pre, ".weight_global_scale", w, P_GLOBAL, LB_DTYPE_F32, 1, 1, 0);
    }
    if (!s && w->col_scale) s = add_item(L, pre, ".weight_col_scale", w, P_COLS, LB_DTYPE_F32, 1, w->cols, 0);
    if (!s && w->hadamard_block) s = add_item(L, pre, ".hadamard_signs", w, P_SIGNS, LB_DTYPE_I8, 1, w->cols, 0);
    if (!s && (w->fmt || w->col_scale || w->hadamard_block)) s = tensor_meta(wr, pre, w);
    return s;
}

/* Bytes of one item, streamed row by row for the split parts. */
static lb_status write_item(lb_st_writer *wr, const item *it, uint8_t *tmp)
{
    const lb_weight *w = it->w;
    switch (it->kind) {
    case P_DENSE:
        return lb__st_writer_write(wr, w->data, (size_t)(w->rows * w->cols) * lb_dtype_size(w->dtype));
    case P_GLOBAL: return lb__st_writer_write(wr, &w->tensor_scale, sizeof(float));
    case P_COLS: return lb__st_writer_write(wr, w->col_scale, (size_t)w->cols * sizeof(float));
    case P_SIGNS: {
        for (int64_t c = 0; c < w->cols; c++) tmp[c] = w->hadamard_signs ? (uint8_t)w->hadamard_signs[c] : 1;
        return lb__st_writer_write(wr, tmp, (size_t)w->cols);
    }
    default: break;
    }
    lb__qsplit p;
    lb__qsplit_plan(w->fmt, w->cols, &p);
    size_t n = it->kind == P_CODES ? p.code_bytes : it->kind == P_SCALES ? (size_t)(p.n_blocks * p.scale_bytes)
                                                                          : (size_t)p.n_blocks;
    for (int64_t r = 0; r < w->rows; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        lb__qsplit_row(&p, row, it->kind == P_CODES ? tmp : NULL, it->kind == P_SCALES ? tmp : NULL,
                       it->kind == P_ZEROS ? tmp : NULL);
        lb_status s = lb__st_writer_write(wr, tmp, n);
        if (s) return s;
    }
    return LB_OK;
}

static lb_status write_meta(lb_st_writer *wr, const lb_model *m)
{
    lb_buf b = {0};
    lb__config_json(&b, &m->cfg);
    lb_status s = b.failed ? LB_ERR_NOMEM : lb__st_writer_meta(wr, "lowbit.config", b.data);
    lb__buf_free(&b);
    if (!s) s = lb__st_writer_meta(wr, "lowbit.version", "1");
    if (!s) s = lb__st_writer_meta(wr, "format", "pt");
    if (!s && m->source_format) s = lb__st_writer_meta(wr, "lowbit.source", m->source_format);
    return s;
}

static lb_status save_items(lb_st_writer *wr, const lb_model *m, lb__qname *names, int64_t n, items *L)
{
    lb_status s = write_meta(wr, m);
    for (int64_t i = 0; !s && i < n; i++) {
        if (names[i].w->packed)
            return lb__err(LB_ERR_UNSUPPORTED, "model: '%s' is losslessly packed (lowbit pack writes such files)",
                           names[i].name);
        if (!names[i].w->data) return lb__err(LB_ERR_ARG, "model: weight '%s' is missing", names[i].name);
        s = plan_weight(wr, L, &names[i]);
    }
    size_t maxrow = 16;
    for (int64_t i = 0; i < L->n; i++) {
        size_t r = L->v[i].w->fmt ? L->v[i].w->row_bytes : 0;
        maxrow = lb__max64((int64_t)maxrow, (int64_t)lb__max64((int64_t)r, L->v[i].w->cols));
    }
    for (int es = 8; !s && es >= 1; es /= 2)   /* declare by element size: alignment */
        for (int64_t i = 0; !s && i < L->n; i++)
            if (lb_dtype_size(L->v[i].dtype) == (size_t)es)
                s = lb__st_writer_add(wr, L->v[i].name, L->v[i].dtype, L->v[i].ndim, L->v[i].shape);
    uint8_t *tmp = s ? NULL : lb__alloc(maxrow);
    if (!s && !tmp) s = LB_ERR_NOMEM;
    for (int es = 8; !s && es >= 1; es /= 2)
        for (int64_t i = 0; !s && i < L->n; i++)
            if (lb_dtype_size(L->v[i].dtype) == (size_t)es) s = write_item(wr, &L->v[i], tmp);
    LB_FREE(tmp);
    return s;
}

lb_status lb_model_save(const lb_model *m, const char *path)
{
    if (!m || !path || !*path) return lb__err(LB_ERR_ARG, "lb_model_save: no model or path");
    int64_t n = lb__qnames((lb_model *)m, NULL, 0);
    lb__qname *names = lb__alloc((size_t)n * sizeof *names);
    if (!names) return LB_ERR_NOMEM;
    lb__qnames((lb_model *)m, names, n);
    lb_st_writer *wr = NULL;
    items L = {0};
    lb_status s = lb__st_writer_open(path, &wr);
    if (!s) s = save_items(wr, m, names, n, &L);
    if (!s) { s = lb__st_writer_commit(wr); wr = NULL; }
    lb__st_writer_abort(wr);
    LB_FREE(L.v);
    LB_FREE(names);
    return s;
}
