/* block.c: the block-quantized representation: each row is packed in a
 * registry format (formats.h: blocks of scale bytes interleaved with codes;
 * NV formats add one per-tensor scale). Decode (nt <= 2 tokens) uses the
 * fused multi-row dequantize-and-dot kernels of the active ISA
 * (kernels/qdot_*.c) or lb_format_dot; prefill dequantizes each row once
 * into a per-thread buffer and reuses it for every token with the engine's
 * canonical dot. Both sum in the canonical order of kernels.h, so prefill
 * and decode, every thread count and every ISA give the same bits.
 *
 * In a file (docs/file-format.md) a weight P.weight is stored split as
 *   P.weight_packed       U8  (rows, code bytes per row)
 *   P.weight_scale        U8 (E8M0 / UE4M3 codes), F16 or BF16 (rows, blocks)
 *   P.weight_zero_point   U8  (rows, blocks), asymmetric INT only
 *   P.weight_global_scale F32 (1), NV formats only
 * (the compressed-tensors convention); reading interleaves them again.
 *
 * A row whose length the block does not divide (stories260K's down_proj:
 * 172 columns) is stored padded to pcols = the next multiple of the block:
 * the padding columns hold zero weights, and the product (linear.c) pads the
 * input with zeros, so they never contribute. Files store the padded
 * shapes; the reader recognises them from the tensor shapes. */
#include "weights/weights.h"
#include <math.h>

enum { PART_CODES, PART_SCALES, PART_ZEROS, PART_GLOBAL };

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

static void block_row(const lb_weight *w, int64_t r, float *out)
{
    const lb_wblock *b = &w->u.block;
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * b->row_bytes;
    if (b->pcols == w->cols) { lb_format_dequantize(b->fmt, row, b->tensor_scale, 1, w->cols, out); return; }
    int64_t B = b->fmt->block, full = w->cols / B * B;   /* padded: the last block through a local buffer */
    float tail[LB_PAD_MAX_BLOCK];
    if (full) lb_format_dequantize(b->fmt, row, b->tensor_scale, 1, full, out);
    lb_format_dequantize(b->fmt, row + lb_format_row_bytes(b->fmt, full), b->tensor_scale, 1, B, tail);
    memcpy(out + full, tail, sizeof(float) * (size_t)(w->cols - full));
}

static size_t block_bytes(const lb_weight *w)
{
    const lb_wblock *b = &w->u.block;
    return (size_t)w->rows * b->row_bytes + (lb_format_uses_tensor_scale(b->fmt) ? sizeof(float) : 0);
}

static const char *block_describe(const lb_weight *w) { return lb_format_name(w->u.block.fmt); }

static void block_prepare(const lb_weight *w, int64_t nt, lb_wpart *p)
{
    const lb_wblock *b = &w->u.block;
    if (nt <= 2) lb__qdot_kernel(b->fmt, &p->kern);
    if (p->kern.rows && lb_format_uses_tensor_scale(b->fmt))
        for (int c = 0; c < 128; c++) p->nvd[c] = lb_elem_decode(LB_ELEM_UE4M3, (uint8_t)c) / b->tensor_scale;
}

/* Rows [r0, r1) of one packed weight. */
static void block_rows(const lb_wjob *j, const lb_wpart *p, int64_t r0, int64_t r1, int thread)
{
    const lb_weight *w = p->w;
    const lb_wblock *b = &w->u.block;
    if (j->nt <= 2 && p->kern.rows) {   /* multi-row kernel; 32 rows per step stay in cache for token 2 */
        for (int64_t r = r0; r < r1; r += 32) {
            int nr = (int)lb__min64(32, r1 - r);
            const uint8_t *row = (const uint8_t *)w->data + (size_t)r * b->row_bytes;
            for (int64_t t = 0; t < j->nt; t++)
                p->kern.rows(b->fmt, b->tensor_scale, row, b->row_bytes, nr, p->xk + t * p->xks, b->pcols, p->kern.tab,
                             p->nvd, p->y + t * p->ys + r);
        }
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * b->row_bytes;
        if (j->nt <= 2) {
            for (int64_t t = 0; t < j->nt; t++)
                p->y[t * p->ys + r] = lb_format_dot(b->fmt, row, b->tensor_scale, p->x + t * p->xs, b->pcols);
            continue;
        }
        float *buf = j->rowbuf + (int64_t)thread * j->max_cols;
        lb_format_dequantize(b->fmt, row, b->tensor_scale, 1, b->pcols, buf);
        for (int64_t t = 0; t < j->nt; t++) p->y[t * p->ys + r] = j->k->dot(buf, p->x + t * p->xs, b->pcols);
    }
}

/* Tensor `name` of dtype dt and shape (d0) or (d0, d1); required or not. */
static lb_status get(lb_wsrc *src, const char *name, lb_dtype dt, int nd, int64_t d0, int64_t d1, bool required,
                     const lb_st_tensor **out)
{
    int fi;
    const lb_st_tensor *t = *out = lb__wsrc_take(src, name, &fi);
    if (!t) return required ? lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is missing", src->what, name) : LB_OK;
    if (t->dtype != dt)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected %s", src->what, name,
                       lb_dtype_name(t->dtype), lb_dtype_name(dt));
    if (t->ndim == nd && t->shape[0] == d0 && (nd == 1 || t->shape[1] == d1)) return LB_OK;
    if (nd == 1) return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld]", src->what, name, (long long)d0);
    return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld, %lld]", src->what, name, (long long)d0,
                   (long long)d1);
}

/* The per-tensor scale of an NV format: positive and finite. */
static lb_status global_scale(lb_wsrc *src, const char *name, const lb_st_tensor *glob, float *ts)
{
    *ts = 1.0f;
    if (!glob) return LB_OK;
    memcpy(ts, glob->data, sizeof(float));
    if (*ts > 0 && *ts < INFINITY) return LB_OK;
    return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is not a positive finite number", src->what, name);
}

/* Codes, scales, zero points (and global scale) -> one interleaved buffer. */
static lb_status block_read(lb_wsrc *src, const char *name, const char *pre, bool vector, lb_weight *w)
{
    char n1[160], n2[160], n3[160], n4[160];
    snprintf(n1, sizeof n1, "%s.weight_packed", pre);
    int fi;
    if (!lb__wsrc_find(src, n1, &fi)) return LB_ERR_NOTFOUND;
    if (!src->meta) return lb__err(LB_ERR_FORMAT, "%s: '%s' has no metadata entry 'lowbit.tensor.%s'", src->what, n1, pre);
    const lb_format *f = src->meta->fmt;
    if (!f) return lb__err(LB_ERR_FORMAT, "%s: lowbit.tensor.%s: format does not match the tensors stored", src->what, pre);
    int64_t pcols = lb__pad_cols(f, w->cols);
    lb__qsplit p;
    lb__qsplit_plan(f, pcols, &p);
    snprintf(n2, sizeof n2, "%s.weight_scale", pre);
    snprintf(n3, sizeof n3, "%s.weight_zero_point", pre);
    snprintf(n4, sizeof n4, "%s.weight_global_scale", pre);
    const lb_st_tensor *codes, *scales, *zeros = NULL, *glob = NULL;
    bool nv = lb_format_uses_tensor_scale(f);
    lb_status s = get(src, n1, LB_DTYPE_U8, 2, w->rows, (int64_t)p.code_bytes, true, &codes);
    if (!s) s = get(src, n2, p.scale_dtype, 2, w->rows, p.n_blocks, true, &scales);
    if (!s) s = get(src, n3, LB_DTYPE_U8, 2, w->rows, p.n_blocks, p.has_zero, &zeros);
    if (!s && zeros && !p.has_zero) s = lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is not used by format %s", src->what, n3, lb_format_name(f));
    if (!s) s = get(src, n4, LB_DTYPE_F32, 1, 1, 0, nv, &glob);
    if (!s && glob && !nv) s = lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is not used by format %s", src->what, n4, lb_format_name(f));
    float ts;
    if (!s) s = global_scale(src, n4, glob, &ts);
    if (s) return s;
    size_t rb = lb_format_row_bytes(f, pcols), sb = (size_t)(p.n_blocks * p.scale_bytes);
    uint8_t *buf = lb__wstore_alloc(src->store, rb * (size_t)w->rows);
    if (!buf) return LB_ERR_NOMEM;
    for (int64_t r = 0; r < w->rows; r++)
        lb__qjoin_row(&p, (const uint8_t *)codes->data + (size_t)r * p.code_bytes,
                      (const uint8_t *)scales->data + (size_t)r * sb,
                      zeros ? (const uint8_t *)zeros->data + (size_t)r * (size_t)p.n_blocks : NULL, buf + (size_t)r * rb);
    *w = lb__weight_block(f, ts, buf, w->rows, w->cols);
    return LB_OK;
}

static lb_status block_plan(const lb_weight *w, const char *name, const char *pre, bool vector, lb_wplan *L)
{
    const lb_format *f = w->u.block.fmt;
    lb__qsplit p;
    lb__qsplit_plan(f, w->u.block.pcols, &p);
    lb_status s = lb__wplan_add(L, w, pre, ".weight_packed", PART_CODES, LB_DTYPE_U8, 2, w->rows, (int64_t)p.code_bytes);
    if (!s) s = lb__wplan_add(L, w, pre, ".weight_scale", PART_SCALES, p.scale_dtype, 2, w->rows, p.n_blocks);
    if (!s && p.has_zero) s = lb__wplan_add(L, w, pre, ".weight_zero_point", PART_ZEROS, LB_DTYPE_U8, 2, w->rows, p.n_blocks);
    if (!s && lb_format_uses_tensor_scale(f)) s = lb__wplan_add(L, w, pre, ".weight_global_scale", PART_GLOBAL, LB_DTYPE_F32, 1, 1, 0);
    if (L->max_row < w->u.block.row_bytes) L->max_row = w->u.block.row_bytes;
    return s;
}

/* One part, streamed row by row. */
static lb_status block_write(const lb_weight *w, int part, lb_st_writer *wr, uint8_t *tmp)
{
    const lb_wblock *b = &w->u.block;
    if (part == PART_GLOBAL) return lb__st_writer_write(wr, &b->tensor_scale, sizeof(float));
    lb__qsplit p;
    lb__qsplit_plan(b->fmt, b->pcols, &p);
    size_t n = part == PART_CODES ? p.code_bytes : part == PART_SCALES ? (size_t)(p.n_blocks * p.scale_bytes)
                                                                      : (size_t)p.n_blocks;
    for (int64_t r = 0; r < w->rows; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * b->row_bytes;
        lb__qsplit_row(&p, row, part == PART_CODES ? tmp : NULL, part == PART_SCALES ? tmp : NULL,
                       part == PART_ZEROS ? tmp : NULL);
        lb_status s = lb__st_writer_write(wr, tmp, n);
        if (s) return s;
    }
    return LB_OK;
}

/* Block scales that decode to NaN or Inf (E8M0 0xff, UE4M3 0x7f, F16/BF16
 * with an all-ones exponent), plus a non-finite tensor scale. */
static int64_t block_nonfinite(const lb_weight *w)
{
    const lb_wblock *b = &w->u.block;
    lb__qsplit p;
    lb__qsplit_plan(b->fmt, b->pcols, &p);
    size_t hb = (size_t)p.scale_bytes + p.has_zero, bb = hb + p.block_code_bytes;
    int64_t bad = !(b->tensor_scale > -INFINITY && b->tensor_scale < INFINITY);
    for (int64_t r = 0; r < w->rows; r++)
        for (int64_t k = 0; k < p.n_blocks; k++) {
            const uint8_t *s = (const uint8_t *)w->data + (size_t)r * b->row_bytes + (size_t)k * bb;
            uint16_t h = p.scale_bytes == 2 ? lb__rd16(s) : s[0];
            if (b->fmt->sd == LB__SD_E8M0) bad += h == 0xff;
            else if (b->fmt->sd == LB__SD_UE4M3) bad += (h & 0x7f) == 0x7f;
            else if (b->fmt->sd == LB__SD_BF16) bad += (h & 0x7f80) == 0x7f80;
            else bad += (h & 0x7c00) == 0x7c00;
        }
    return bad;
}

static lb_status block_copy(lb_wstore *s, lb_weight *w)
{
    size_t n = (size_t)w->rows * w->u.block.row_bytes;
    return (w->data = lb__wstore_copy(s, w->data, n)) ? LB_OK : LB_ERR_NOMEM;
}

int64_t lb__pad_cols(const lb_format *f, int64_t cols)
{
    int64_t B = f->block;
    return B && cols % B ? (cols / B + 1) * B : cols;
}

lb_weight lb__weight_block(const lb_format *f, float tensor_scale, const uint8_t *data, int64_t rows, int64_t cols)
{
    int64_t pc = lb__pad_cols(f, cols);
    return (lb_weight){.rep = &lb__wrep_block, .rows = rows, .cols = cols, .data = data, .dtype = LB_DTYPE_U8,
                       .u.block = {.fmt = f, .tensor_scale = tensor_scale, .row_bytes = lb_format_row_bytes(f, pc),
                                   .pcols = pc}};
}

const lb_wrep lb__wrep_block = {
    .name = "block",
    .row = block_row,
    .bytes = block_bytes,
    .describe = block_describe,
    .prepare = block_prepare,
    .rows = block_rows,
    .read = block_read,
    .plan = block_plan,
    .write = block_write,
    .copy = block_copy,
    .nonfinite = block_nonfinite,
};
