/* sparse.c: the sparse representation: only the kept weights of a pruned
 * matrix, as values (F32, F16 or BF16, row by row in column order) plus
 * which inputs they belong to, in one of two layouts:
 *   bitmask     one bit per weight, (rows, ceil(cols / 8)) bytes, bit c % 8
 *               of byte c / 8 set when input c is kept (compressed-tensors'
 *               bitmask compressors use the same bits); row offsets are
 *               counted at load;
 *   index list  one U16 input index per kept value and (rows + 1) I64 row
 *               offsets: fewer bytes below 1/16 density.
 * With prune + quantize the values are instead packed per row in a block
 * format of the registry: padded storage, every row its own kept values
 * followed by zeros up to k = ceil(max_r k_r / B) B (B the block; per-row
 * formats: k = max_r k_r), k <= cols. The product of row r is lb_format_dot
 * of the packed row, over all k values, with the k_r gathered inputs padded
 * by k - k_r zeros (the formats module's definition); with every k_r = k
 * this is the plain gathered dot, so uniform masks lose nothing.
 * The pattern it was pruned to (unstructured, N:M, V:N:M) is recorded and
 * checked at load, so corrupt index data is refused before any product.
 *
 * A product row is the canonical dot (kernels.h) of the kept values with
 * the kept inputs gathered in column order (kernels/sparse.h): the same
 * bits on every ISA, thread count, and in prefill and decode. V:N:M values
 * also get, at load, the inputs each block of V rows gathers and each row's
 * mask relative to them (vnm_derive; not in the file): one gather per
 * block, then a fused 2:4-like dot per row, the same bits. With an
 * activation format that pairs (act.c lb__act_pairs: packed int4/int8
 * block-32 values, uniform mask), it is the integer product of
 * kernels/sparse.h (lb__sparse_igemm) with the int8 activation codes.
 *
 * In a file (docs/file-format.md) a weight P.weight is stored as
 *   P.weight_values       F32/F16/BF16 (nnz)
 *   P.weight_bitmask      U8 (rows, ceil(cols / 8))            bitmask layout
 *   P.weight_indices      U16 (nnz)                             index layout
 *   P.weight_row_offsets  I64 (rows + 1)                        index layout
 *   P.weight_sparsity     I32 (3): V, N, M (0, 0, 0: unstructured; V 0: N:M)
 * and, for packed values instead of P.weight_values (block.c's split):
 *   P.weight_values_packed / _scale / _zero_point / _global_scale, and
 *   P.weight_values_format U8 (name length): the registry name of the format */
#include "weights/weights.h"
#include "kernels/sparse.h"
#include <math.h>
#include <stdio.h>

enum { PART_VALUES, PART_MASK, PART_IDX, PART_OFF, PART_PAT, PART_QCODES, PART_QSCALES, PART_QZEROS, PART_QGLOBAL,
       PART_QNAME };

static size_t vsize(const lb_weight *w) { return lb_dtype_size(w->dtype); }

static bool kept_bit(const lb_wsparse *sp, int64_t r, int64_t c) { return sp->mask[(size_t)r * sp->mask_bytes + (size_t)(c >> 3)] >> (c & 7) & 1; }

/* Kept value i as F32 (the conversions are exact). */
static float value_at(const lb_weight *w, int64_t i)
{
    if (w->dtype == LB_DTYPE_F32) return ((const float *)w->data)[i];
    uint16_t h = ((const uint16_t *)w->data)[i];
    return w->dtype == LB_DTYPE_BF16 ? lb_bf16_to_f32(h) : lb_f16_to_f32(h);
}

/* Row r of packed values: its k padded values dequantized into the end of
 * out (k <= cols), the k_r kept ones moved to the last k_r floats, then
 * forward to the kept inputs (input of kept value j <= cols - k_r + j, so
 * nothing is overwritten before it is read). */
static void packed_row(const lb_weight *w, int64_t r, float *out)
{
    const lb_wsparse *sp = &w->u.sparse;
    int64_t kr = sp->off[r + 1] - sp->off[r];
    float *tmp = out + (w->cols - kr);
    lb_format_dequantize(sp->fmt, (const uint8_t *)w->data + (size_t)r * sp->row_bytes, sp->tensor_scale, 1, sp->k,
                         out + (w->cols - sp->k));
    memmove(tmp, out + (w->cols - sp->k), sizeof(float) * (size_t)kr);
    int64_t j = 0, c = 0;
    for (; c < w->cols && j < kr; c++) {
        if (!kept_bit(sp, r, c)) { out[c] = 0.0f; continue; }
        float v = tmp[j++];
        out[c] = v;
    }
    for (; c < w->cols; c++) out[c] = 0.0f;
}

static void sparse_row(const lb_weight *w, int64_t r, float *out)
{
    const lb_wsparse *sp = &w->u.sparse;
    if (sp->fmt) { packed_row(w, r, out); return; }
    memset(out, 0, sizeof(float) * (size_t)w->cols);
    int64_t i = sp->off[r];
    if (sp->idx)
        for (; i < sp->off[r + 1]; i++) out[sp->idx[i]] = value_at(w, i);
    else
        for (int64_t c = 0; c < w->cols; c++)
            if (kept_bit(sp, r, c)) out[c] = value_at(w, i++);
}

static size_t index_bytes(const lb_weight *w)
{
    const lb_wsparse *sp = &w->u.sparse;
    return sp->mask ? (size_t)w->rows * sp->mask_bytes : (size_t)sp->nnz * 2 + (size_t)(w->rows + 1) * 8;
}

static size_t values_bytes(const lb_weight *w)
{
    const lb_wsparse *sp = &w->u.sparse;
    if (!sp->fmt) return (size_t)sp->nnz * vsize(w);
    return (size_t)w->rows * sp->row_bytes + (lb_format_uses_tensor_scale(sp->fmt) ? sizeof(float) : 0);
}

static size_t sparse_bytes(const lb_weight *w) { return values_bytes(w) + index_bytes(w) + 3 * sizeof(int32_t); }

/* The dtype the values decode to (the file metadata's "format"; packed
 * values: F32, their block format is in P.weight_values_format). */
static const char *sparse_describe(const lb_weight *w) { return w->u.sparse.fmt ? "F32" : lb_dtype_name(w->dtype); }

void lb__sparse_pattern_text(const lb_wsparse *sp, char *out, size_t cap)
{
    if (!sp->n) snprintf(out, cap, "unstructured");
    else if (!sp->v) snprintf(out, cap, "%d:%d", sp->n, sp->m);
    else snprintf(out, cap, "%d:%d:%d", sp->v, sp->n, sp->m);
}

const char *lb__sparse_layout_name(const lb_wsparse *sp) { return sp->mask ? "bitmask" : "index list"; }

/* The p of lb_wsparse: the set bits every mask byte holds, or 0. */
static int32_t uniform_p(const lb_weight *w)
{
    const lb_wsparse *sp = &w->u.sparse;
    if (!sp->mask || w->cols % 8 || !w->rows) return 0;
    int p = lb__popcount8[sp->mask[0]];
    if (p != 1 && p != 2 && p != 4 && p != 8) return 0;
    for (size_t i = 0; i < (size_t)w->rows * sp->mask_bytes; i++)
        if (lb__popcount8[sp->mask[i]] != p) return 0;
    return p;
}

/* The V:N:M shared gather (lb_wsparse.vsel / vmask), for values (not
 * packed) of a bitmask with n in {1, 2, 4}, m > 4 and cols a multiple of
 * 2 m: per block of v rows and group of m inputs, the inputs its rows keep
 * (at most 4: validated) padded to 4 with the group's first unused ones,
 * in column order; per row, which of its block's gathered inputs it keeps
 * (n in each 4, so every byte holds 2 n bits: the fused kernel's uniform
 * masks). The kept inputs of a row are a subset of its block's, both in
 * column order, so the row's kept values meet the same inputs in the same
 * order through either mask. Nothing (NULL) when it does not apply. */
static lb_status vnm_derive(lb_wstore *s, lb_weight *w)
{
    lb_wsparse *sp = &w->u.sparse;
    sp->vsel = sp->vmask = NULL;
    if (!sp->mask || sp->fmt || sp->v < 1 || (sp->n != 1 && sp->n != 2 && sp->n != 4) || sp->m <= 4 || !w->rows ||
        w->cols % (2 * sp->m))
        return LB_OK;
    int64_t nb = (w->rows + sp->v - 1) / sp->v, groups = w->cols / sp->m;
    size_t vb = (size_t)groups / 2;
    uint8_t *sel = lb__wstore_alloc(s, (size_t)nb * sp->mask_bytes), *rel = lb__wstore_alloc(s, (size_t)w->rows * vb);
    int64_t *col = malloc(sizeof(int64_t) * (size_t)groups * 4);
    if (!sel || !rel || !col) { free(col); return LB_ERR_NOMEM; }
    memset(sel, 0, (size_t)nb * sp->mask_bytes);
    memset(rel, 0, (size_t)w->rows * vb);
    for (int64_t b = 0; b < nb; b++) {
        int64_t r0 = b * sp->v, r1 = lb__min64(w->rows, r0 + sp->v);
        uint8_t *bs = sel + (size_t)b * sp->mask_bytes;
        for (int64_t g = 0; g < groups; g++) {
            int used = 0;
            for (int64_t c = g * sp->m; c < (g + 1) * sp->m; c++)
                for (int64_t r = r0; r < r1; r++)
                    if (kept_bit(sp, r, c)) { bs[c >> 3] |= (uint8_t)(1u << (c & 7)); used++; break; }
            for (int64_t c = g * sp->m; c < (g + 1) * sp->m && used < 4; c++)
                if (!(bs[c >> 3] >> (c & 7) & 1)) { bs[c >> 3] |= (uint8_t)(1u << (c & 7)); used++; }
            if (used != 4) { free(col); return LB_OK; }   /* more than 4 (not a valid block): no shared gather */
            for (int64_t c = g * sp->m, i = 0; c < (g + 1) * sp->m; c++)
                if (bs[c >> 3] >> (c & 7) & 1) col[g * 4 + i++] = c;
        }
        for (int64_t r = r0; r < r1; r++)
            for (int64_t i = 0; i < groups * 4; i++)
                if (kept_bit(sp, r, col[i])) rel[(size_t)r * vb + (size_t)(i >> 3)] |= (uint8_t)(1u << (i & 7));
    }
    free(col);
    sp->vsel = sel;
    sp->vmask = rel;
    sp->vmask_bytes = vb;
    sp->vp = 2 * sp->n;
    return LB_OK;
}

/* Rows [r0, r1) for every token: the fused kernel for uniform masks, else
 * gather the kept inputs and take the canonical dot (the same bits). */
static void sparse_rows(const lb_wjob *j, const lb_wpart *p, int64_t r0, int64_t r1, int thread)
{
    const lb_weight *w = p->w;
    const lb_wsparse *sp = &w->u.sparse;
    if (p->iw.f) {   /* spint: packed rows x int8 activation codes (linear.c made them when lb__act_pairs) */
        lb__sparse_igemm()(&p->iw, sp->p, sp->mask, sp->mask_bytes, w->data, sp->row_bytes, r0, r1, w->cols, &p->ia,
                           j->nt, p->y, p->ys);
        return;
    }
    lb__sparse_gather_fn gather = lb__sparse_gather_for(lb_isa_active());
    lb__sparse_udot_fn udot = sp->p && !sp->fmt ? lb__sparse_udot_for(lb_isa_active()) : NULL;
    /* BF16 values with 2 kept in every mask nibble: the 2:4 kernel (V:2:M: on the relative masks) */
    lb__sparse_udot24_fn u24 = udot && w->dtype == LB_DTYPE_BF16 && sp->n == 2 ? lb__sparse_udot24_for(lb_isa_active()) : NULL;
    bool full = sp->fmt && sp->p && sp->k == w->cols / 8 * sp->p;   /* uniform rows, no padding */
    lb__sparse_qrows_fn qrows = full && lb__sparse_qrows_ok(sp->fmt, sp->p, w->cols) ? lb__sparse_qrows_for(lb_isa_active()) : NULL;
    float *xk = j->rowbuf + (int64_t)thread * j->max_cols;
    for (int64_t r = r0; qrows && r < r1; r += 32) {   /* packed uniform rows: 32 rows stay in cache across tokens */
        int nr = (int)lb__min64(32, r1 - r);
        for (int64_t t = 0; t < j->nt; t++)
            qrows(sp->fmt, sp->p, sp->tensor_scale, sp->mask + (size_t)r * sp->mask_bytes, sp->mask_bytes,
                  (const uint8_t *)w->data + (size_t)r * sp->row_bytes, sp->row_bytes, nr, p->x + t * p->xs, w->cols,
                  p->y + t * p->ys + r);
    }
    if (qrows) return;
    if (sp->vmask && udot) {   /* V:N:M: one gather per block and token, then each row over it */
        int64_t vk = (int64_t)sp->vmask_bytes * 8;
        for (int64_t a = r0, b; a < r1; a = b) {
            int64_t blk = a / sp->v;
            b = lb__min64(r1, (blk + 1) * sp->v);
            for (int64_t t = 0; t < j->nt; t++) {
                gather(sp->vsel + (size_t)blk * sp->mask_bytes, p->x + t * p->xs, w->cols, xk);
                for (int64_t r = a; r < b; r++) {
                    const uint8_t *rm = sp->vmask + (size_t)r * sp->vmask_bytes;
                    const void *v = (const uint8_t *)w->data + (size_t)sp->off[r] * vsize(w);
                    p->y[t * p->ys + r] = u24 ? u24(rm, v, xk, vk) : udot(rm, sp->vp, v, w->dtype, xk, vk);
                }
            }
        }
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        int64_t k = sp->off[r + 1] - sp->off[r];
        lb_mat m = {.data = (const uint8_t *)w->data + (size_t)sp->off[r] * vsize(w), .dtype = w->dtype, .rows = 1,
                    .cols = k};
        for (int64_t t = 0; t < j->nt; t++) {
            const float *x = p->x + t * p->xs;
            if (sp->fmt) {   /* padded storage: k - k_r zero inputs after the gathered ones */
                gather(sp->mask + (size_t)r * sp->mask_bytes, x, w->cols, xk);
                memset(xk + k, 0, sizeof(float) * (size_t)(sp->k - k));
                p->y[t * p->ys + r] = lb_format_dot(sp->fmt, (const uint8_t *)w->data + (size_t)r * sp->row_bytes,
                                                    sp->tensor_scale, xk, sp->k);
                continue;
            }
            if (udot) {
                const uint8_t *rm = sp->mask + (size_t)r * sp->mask_bytes;
                p->y[t * p->ys + r] = u24 && sp->m == 4 ? u24(rm, m.data, x, w->cols)
                                                        : udot(rm, sp->p, m.data, w->dtype, x, w->cols);
                continue;
            }
            if (sp->mask) gather(sp->mask + (size_t)r * sp->mask_bytes, x, w->cols, xk);
            else lb__sparse_gather_idx(sp->idx + sp->off[r], k, x, xk);
            if (k) j->k->matmul_rows(&m, 0, 1, xk, 1, k, p->y + t * p->ys + r, 1);
            else p->y[t * p->ys + r] = 0.0f;
        }
    }
}

/* ---- validation */

/* Kept inputs of row r in [c, c + g). */
static int64_t kept_in(const lb_wsparse *sp, int64_t r, int64_t c, int64_t g)
{
    int64_t n = 0;
    for (int64_t i = c; i < c + g; i++) n += kept_bit(sp, r, i);
    return n;
}

static lb_status check_pattern(const lb_weight *w, const char *what)
{
    const lb_wsparse *sp = &w->u.sparse;
    for (int64_t r = 0; r < w->rows; r++)
        for (int64_t c = 0; c < w->cols; c += sp->m) {
            int64_t g = lb__min64(sp->m, w->cols - c), want = (int64_t)sp->n * g / sp->m, k = kept_in(sp, r, c, g);
            if (k != want)
                return lb__err(LB_ERR_FORMAT, "%s: row %lld, inputs %lld..%lld keep %lld weights; pattern %d:%d "
                               "allows %lld", what, (long long)r, (long long)c, (long long)(c + g - 1), (long long)k,
                               sp->n, sp->m, (long long)want);
        }
    for (int64_t r0 = 0; sp->v && r0 < w->rows; r0 += sp->v)
        for (int64_t c = 0; c + sp->m <= w->cols; c += sp->m) {
            int used = 0;
            for (int64_t i = c; i < c + sp->m; i++) {
                bool any = false;
                for (int64_t r = r0; r < lb__min64(w->rows, r0 + sp->v) && !any; r++) any = kept_bit(sp, r, i);
                used += any;
            }
            if (used > 4)
                return lb__err(LB_ERR_FORMAT, "%s: the block at row %lld, input %lld keeps %d columns; pattern "
                               "%d:%d:%d allows 4", what, (long long)r0, (long long)c, used, sp->v, sp->n, sp->m);
        }
    return LB_OK;
}

static lb_status check_indices(const lb_weight *w, const char *what)
{
    const lb_wsparse *sp = &w->u.sparse;
    if (sp->off[0] != 0 || sp->off[w->rows] != sp->nnz)
        return lb__err(LB_ERR_FORMAT, "%s: row offsets run from %lld to %lld, expected 0 to %lld", what,
                       (long long)sp->off[0], (long long)sp->off[w->rows], (long long)sp->nnz);
    for (int64_t r = 0; r < w->rows; r++) {
        if (sp->off[r + 1] < sp->off[r] || sp->off[r + 1] - sp->off[r] > w->cols)
            return lb__err(LB_ERR_FORMAT, "%s: row offsets of row %lld (%lld, %lld) are not increasing within %lld", what,
                           (long long)r, (long long)sp->off[r], (long long)sp->off[r + 1], (long long)w->cols);
        for (int64_t i = sp->off[r]; i < sp->off[r + 1]; i++)
            if (sp->idx[i] >= w->cols || (i > sp->off[r] && sp->idx[i] <= sp->idx[i - 1]))
                return lb__err(LB_ERR_FORMAT, "%s: row %lld: index %u at entry %lld is out of range or not increasing",
                               what, (long long)r, sp->idx[i], (long long)i);
    }
    return LB_OK;
}

static lb_status check_mask(const lb_weight *w, const char *what)
{
    const lb_wsparse *sp = &w->u.sparse;
    int64_t total = 0, tail = w->cols & 7;
    for (int64_t r = 0; r < w->rows; r++) {
        const uint8_t *row = sp->mask + (size_t)r * sp->mask_bytes;
        if (tail && row[sp->mask_bytes - 1] >> tail)
            return lb__err(LB_ERR_FORMAT, "%s: row %lld sets mask bits past input %lld", what, (long long)r,
                           (long long)w->cols);
        for (size_t b = 0; b < sp->mask_bytes; b++) total += lb__popcount8[row[b]];
    }
    if (total != sp->nnz)
        return lb__err(LB_ERR_FORMAT, "%s: the bitmask keeps %lld weights, %lld values are stored", what,
                       (long long)total, (long long)sp->nnz);
    for (int64_t r = 0; r < w->rows; r++)
        if (sp->off[r + 1] - sp->off[r] != kept_in(sp, r, 0, w->cols))
            return lb__err(LB_ERR_FORMAT, "%s: row offsets do not match the bitmask at row %lld", what, (long long)r);
    return LB_OK;
}

lb_status lb__sparse_validate(const lb_weight *w, const char *what)
{
    const lb_wsparse *sp = &w->u.sparse;
    if (sp->n < 0 || sp->m < 0 || sp->v < 0 || (sp->n && (sp->m < 1 || sp->m > 256 || sp->n > sp->m)) ||
        (sp->v && (sp->m < 4 || sp->n > 4)) || (!sp->n && (sp->m || sp->v)))
        return lb__err(LB_ERR_FORMAT, "%s: pattern (%d, %d, %d) is not unstructured, N:M or V:N:M", what, sp->v,
                       sp->n, sp->m);
    lb_status s = sp->mask ? check_mask(w, what) : check_indices(w, what);
    if (!s && sp->fmt && !sp->mask) s = lb__err(LB_ERR_FORMAT, "%s: packed values go with a bitmask", what);
    if (!s && sp->fmt && (sp->k < 1 || sp->k > w->cols))
        s = lb__err(LB_ERR_FORMAT, "%s: packed values hold %lld per row; 1 to %lld (the inputs) allowed", what,
                    (long long)sp->k, (long long)w->cols);
    for (int64_t r = 0; !s && sp->fmt && r < w->rows; r++)
        if (sp->off[r + 1] - sp->off[r] > sp->k)
            s = lb__err(LB_ERR_FORMAT, "%s: row %lld keeps %lld weights; its packed values hold %lld", what,
                        (long long)r, (long long)(sp->off[r + 1] - sp->off[r]), (long long)sp->k);
    if (s || !sp->n) return s;
    if (!sp->mask) return lb__err(LB_ERR_FORMAT, "%s: an N:M or V:N:M pattern is stored as a bitmask", what);
    return check_pattern(w, what);
}

/* ---- building */

static lb_status store_values(lb_wstore *s, const float *w, const uint8_t *keep, int64_t n, lb_dtype vdt, int64_t nnz,
                              void **out)
{
    uint8_t *v = lb__wstore_alloc(s, (size_t)nnz * lb_dtype_size(vdt));
    if (!v) return LB_ERR_NOMEM;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!keep[i]) continue;
        if (vdt == LB_DTYPE_F32) ((float *)v)[k++] = w[i];
        else if (vdt == LB_DTYPE_BF16) ((uint16_t *)v)[k++] = lb_f32_to_bf16(w[i]);
        else ((uint16_t *)v)[k++] = lb_f32_to_f16(w[i]);
    }
    *out = v;
    return LB_OK;
}

/* The index data of keep (bitmask or index list) into sp, owned by s. */
static lb_status build_index(lb_wstore *s, const uint8_t *keep, int64_t rows, int64_t cols, bool idx, lb_wsparse *sp)
{
    int64_t nnz = 0;
    for (int64_t i = 0; i < rows * cols; i++) nnz += keep[i] != 0;
    size_t mb = (size_t)(cols + 7) / 8;
    int64_t *off = lb__wstore_alloc(s, sizeof(int64_t) * (size_t)(rows + 1));
    uint8_t *mask = idx ? NULL : lb__wstore_alloc(s, (size_t)rows * mb);
    uint16_t *ix = idx ? lb__wstore_alloc(s, 2 * (size_t)lb__max64(nnz, 1)) : NULL;
    if (!off || (!idx && !mask) || (idx && !ix)) return LB_ERR_NOMEM;
    if (mask) memset(mask, 0, (size_t)rows * mb);
    off[0] = 0;
    for (int64_t r = 0, k = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) {
            if (!keep[r * cols + c]) continue;
            if (mask) mask[(size_t)r * mb + (size_t)(c >> 3)] |= (uint8_t)(1u << (c & 7));
            else ix[k] = (uint16_t)c;
            k++;
        }
        off[r + 1] = k;
    }
    *sp = (lb_wsparse){.mask = mask, .idx = ix, .off = off, .nnz = nnz, .mask_bytes = mb};
    return LB_OK;
}

/* Validate a freshly built weight; a failure is the caller's (LB_ERR_ARG). */
static lb_status built(lb_weight *out)
{
    if (!lb__sparse_validate(out, "sparse weight")) return LB_OK;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", lb_errmsg());
    return lb__err(LB_ERR_ARG, "%s", msg);
}

lb_status lb__weight_sparse(lb_wstore *s, const float *w, const uint8_t *keep, int64_t rows, int64_t cols, lb_dtype vdt,
                            int32_t v, int32_t n, int32_t m, lb_sparse_layout layout, lb_weight *out)
{
    if (vdt != LB_DTYPE_F32 && vdt != LB_DTYPE_F16 && vdt != LB_DTYPE_BF16)
        return lb__err(LB_ERR_ARG, "sparse weight: values must be F32, F16 or BF16, not %s", lb_dtype_name(vdt));
    int64_t nnz = 0;
    for (int64_t i = 0; i < rows * cols; i++) nnz += keep[i] != 0;
    size_t mb = (size_t)(cols + 7) / 8;
    bool idx = layout == LB_SPARSE_INDEX ||
               (layout == LB_SPARSE_AUTO && !n && cols <= 65536 && (size_t)nnz * 2 + (size_t)(rows + 1) * 8 < (size_t)rows * mb);
    if (idx && cols > 65536) return lb__err(LB_ERR_ARG, "sparse weight: index lists hold at most 65536 inputs");
    lb_wsparse sp;
    void *vals = NULL;
    lb_status st = build_index(s, keep, rows, cols, idx, &sp);
    if (!st) st = store_values(s, w, keep, rows * cols, vdt, nnz, &vals);
    if (st) return st;
    sp.v = v; sp.n = n; sp.m = m;
    *out = (lb_weight){.rep = &lb__wrep_sparse, .rows = rows, .cols = cols, .data = vals, .dtype = vdt, .u.sparse = sp};
    out->u.sparse.p = uniform_p(out);
    st = built(out);
    return st ? st : vnm_derive(s, out);
}

/* The packed values per row of keep in format f: the largest kept count of
 * a row, rounded up to whole blocks (f NULL or per-row: not rounded). */
int64_t lb__sparse_padded_k(const uint8_t *keep, int64_t rows, int64_t cols, const lb_format *f)
{
    int64_t kmax = 0, B = lb_format_block(f);
    for (int64_t r = 0; r < rows; r++) {
        int64_t k = 0;
        for (int64_t c = 0; c < cols; c++) k += keep[r * cols + c] != 0;
        kmax = lb__max64(kmax, k);
    }
    return B ? (kmax + B - 1) / B * B : kmax;
}

lb_status lb__weight_sparse_packed(lb_wstore *s, const uint8_t *keep, int64_t rows, int64_t cols, const lb_format *f,
                                   float tensor_scale, const uint8_t *packed, int32_t v, int32_t n, int32_t m,
                                   lb_weight *out)
{
    int64_t k = lb__sparse_padded_k(keep, rows, cols, f);
    if (k < 1) return lb__err(LB_ERR_ARG, "sparse weight: none kept in any row (packed values need one)");
    if (k > cols)
        return lb__err(LB_ERR_ARG, "sparse weight: %lld kept in a row, padded to whole %s blocks, would be %lld, "
                       "more than its %lld inputs", (long long)lb__sparse_padded_k(keep, rows, cols, NULL),
                       lb_format_name(f), (long long)k, (long long)cols);
    lb_wsparse sp;
    lb_status st = build_index(s, keep, rows, cols, false, &sp);
    if (st) return st;
    size_t rb = lb_format_row_bytes(f, k);
    void *data = lb__wstore_copy(s, packed, rb * (size_t)rows);
    if (!data) return LB_ERR_NOMEM;
    sp.v = v; sp.n = n; sp.m = m;
    sp.fmt = f; sp.tensor_scale = tensor_scale; sp.row_bytes = rb; sp.k = k;
    *out = (lb_weight){.rep = &lb__wrep_sparse, .rows = rows, .cols = cols, .data = data, .dtype = LB_DTYPE_U8, .u.sparse = sp};
    out->u.sparse.p = uniform_p(out);
    return built(out);
}

/* ---- files */

static lb_status get(lb_wsrc *src, const char *pre, const char *suffix, lb_dtype dt, int64_t d0, int64_t d1,
                     const void **data)
{
    char name[192];
    snprintf(name, sizeof name, "%s%s", pre, suffix);
    int fi;
    const lb_st_tensor *t = lb__wsrc_take(src, name, &fi);
    if (!t) return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is missing", src->what, name);
    if (t->dtype != dt)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected %s", src->what, name,
                       lb_dtype_name(t->dtype), lb_dtype_name(dt));
    bool ok = d1 ? t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1 : t->ndim == 1 && t->shape[0] == d0;
    if (!ok) return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld%s%lld]", src->what, name,
                            (long long)d0, d1 ? ", " : "", (long long)d1);
    return (*data = lb__wsrc_view(src, t)) ? LB_OK : LB_ERR_NOMEM;
}

/* Row offsets of a bitmask, into the store. */
static lb_status mask_offsets(lb_wsrc *src, lb_weight *w)
{
    lb_wsparse *sp = &w->u.sparse;
    int64_t *off = lb__wstore_alloc(src->store, sizeof(int64_t) * (size_t)(w->rows + 1));
    if (!off) return LB_ERR_NOMEM;
    off[0] = 0;
    for (int64_t r = 0; r < w->rows; r++) {
        int64_t k = 0;
        for (size_t b = 0; b < sp->mask_bytes; b++) k += lb__popcount8[sp->mask[(size_t)r * sp->mask_bytes + b]];
        off[r + 1] = off[r] + k;
    }
    sp->off = off;
    return LB_OK;
}

/* The packed values per row of a file: from the scale tensor's shape
 * (blocks per row x B); per-row formats: the largest kept count. Every
 * row's kept count must fit. */
static lb_status packed_k(lb_wsrc *src, const char *pre, const char *what, const lb_format *f, lb_weight *w)
{
    lb_wsparse *sp = &w->u.sparse;
    int64_t kmax = 0, rmax = 0, B = lb_format_block(f);
    for (int64_t r = 0; r < w->rows; r++)
        if (sp->off[r + 1] - sp->off[r] > kmax) { kmax = sp->off[r + 1] - sp->off[r]; rmax = r; }
    sp->k = kmax;
    if (!B) return kmax >= 1 ? LB_OK : lb__err(LB_ERR_FORMAT, "%s: no row keeps a weight", what);
    char name[192];
    snprintf(name, sizeof name, "%s.weight_values_scale", pre);
    int fi;
    const lb_st_tensor *t = lb__wsrc_find(src, name, &fi);
    if (!t || t->ndim != 2 || t->shape[0] != w->rows || t->shape[1] < 1 || t->shape[1] > w->cols / B)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is missing or not [%lld, 1..%lld] (blocks of %lld per row)",
                       what, name, (long long)w->rows, (long long)(w->cols / B), (long long)B);
    sp->k = t->shape[1] * B;
    if (kmax > sp->k)
        return lb__err(LB_ERR_FORMAT, "%s: row %lld keeps %lld weights (bitmask) but '%s' holds %lld blocks of %lld "
                       "= %lld values per row", what, (long long)rmax, (long long)kmax, name,
                       (long long)t->shape[1], (long long)B, (long long)sp->k);
    return LB_OK;
}

/* Packed values (prune + quantize): the format named by
 * P.weight_values_format, block.c's split tensors, joined into one owned
 * buffer. w's index data is read; every row holds sp->k values (padded). */
static lb_status read_packed(lb_wsrc *src, const char *pre, const char *what, lb_weight *w)
{
    lb_wsparse *sp = &w->u.sparse;
    char fname[192];
    snprintf(fname, sizeof fname, "%s.weight_values_format", pre);
    int fi;
    const lb_st_tensor *ft = lb__wsrc_take(src, fname, &fi);
    char name[64] = "";
    if (!ft || ft->dtype != LB_DTYPE_U8 || ft->ndim != 1 || ft->shape[0] < 1 || ft->shape[0] >= (int64_t)sizeof name)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' (U8, the format's name) is missing or malformed", what, fname);
    memcpy(name, ft->data, (size_t)ft->shape[0]);
    const lb_format *f = lb_format_find(name);
    if (!f) return lb__err(LB_ERR_FORMAT, "%s: unknown values format '%s'", what, name);
    lb_status s = packed_k(src, pre, what, f, w);
    if (s) return s;
    lb__qsplit q;
    lb__qsplit_plan(f, sp->k, &q);
    bool nv = lb_format_uses_tensor_scale(f);
    const void *codes, *scales, *zeros = NULL, *glob = NULL;
    s = get(src, pre, ".weight_values_packed", LB_DTYPE_U8, w->rows, (int64_t)q.code_bytes, &codes);
    if (!s) s = get(src, pre, ".weight_values_scale", q.scale_dtype, w->rows, q.n_blocks, &scales);
    if (!s && q.has_zero) s = get(src, pre, ".weight_values_zero_point", LB_DTYPE_U8, w->rows, q.n_blocks, &zeros);
    if (!s && nv) s = get(src, pre, ".weight_values_global_scale", LB_DTYPE_F32, 1, 0, &glob);
    if (s) return s;
    float ts = 1.0f;
    if (glob) memcpy(&ts, glob, sizeof ts);
    if (!(ts > 0 && ts < INFINITY)) return lb__err(LB_ERR_FORMAT, "%s: global scale is not positive and finite", what);
    size_t rb = lb_format_row_bytes(f, sp->k), sb = (size_t)q.n_blocks * (size_t)q.scale_bytes;
    uint8_t *buf = lb__wstore_alloc(src->store, rb * (size_t)w->rows);
    if (!buf) return LB_ERR_NOMEM;
    for (int64_t r = 0; r < w->rows; r++)
        lb__qjoin_row(&q, (const uint8_t *)codes + (size_t)r * q.code_bytes, (const uint8_t *)scales + (size_t)r * sb,
                      zeros ? (const uint8_t *)zeros + (size_t)r * (size_t)q.n_blocks : NULL, buf + (size_t)r * rb);
    w->data = buf;
    w->dtype = LB_DTYPE_U8;
    sp->fmt = f; sp->tensor_scale = ts; sp->row_bytes = rb;
    return LB_OK;
}

static lb_status sparse_read(lb_wsrc *src, const char *name, const char *pre, bool vector, lb_weight *w)
{
    char vname[192], pname[192], what[256];
    snprintf(vname, sizeof vname, "%s.weight_values", pre);
    snprintf(pname, sizeof pname, "%s.weight_values_packed", pre);
    int fi;
    const lb_st_tensor *vt = lb__wsrc_find(src, vname, &fi);
    bool packed = !vt && lb__wsrc_find(src, pname, &fi);
    if (!vt && !packed) return LB_ERR_NOTFOUND;
    snprintf(what, sizeof what, "%s: sparse weight '%s'", src->what, name);
    if (vt && vt->dtype != LB_DTYPE_F32 && vt->dtype != LB_DTYPE_F16 && vt->dtype != LB_DTYPE_BF16)
        return lb__err(LB_ERR_FORMAT, "%s: values have dtype %s (F32, F16 or BF16 expected)", what, lb_dtype_name(vt->dtype));
    if (vt && (vt->ndim != 1 || vt->shape[0] > w->rows * w->cols))
        return lb__err(LB_ERR_FORMAT, "%s: values must be 1-D with at most %lld entries", what, (long long)(w->rows * w->cols));
    lb_wsparse sp = {.nnz = vt ? vt->shape[0] : 0, .mask_bytes = (size_t)(w->cols + 7) / 8};
    const void *vals = NULL, *pat, *mask = NULL, *ix = NULL, *off = NULL;
    lb_status s = vt ? get(src, pre, ".weight_values", vt->dtype, sp.nnz, 0, &vals) : LB_OK;
    if (!s) s = get(src, pre, ".weight_sparsity", LB_DTYPE_I32, 3, 0, &pat);
    char iname[192];
    snprintf(iname, sizeof iname, "%s.weight_indices", pre);
    bool idx = !packed && lb__wsrc_find(src, iname, &fi) != NULL;
    if (!s && !idx) s = get(src, pre, ".weight_bitmask", LB_DTYPE_U8, w->rows, (int64_t)sp.mask_bytes, &mask);
    if (!s && idx) s = get(src, pre, ".weight_indices", LB_DTYPE_U16, sp.nnz, 0, &ix);
    if (!s && idx) s = get(src, pre, ".weight_row_offsets", LB_DTYPE_I64, w->rows + 1, 0, &off);
    if (s) return s;
    const int32_t *pv = pat;
    sp.v = pv[0]; sp.n = pv[1]; sp.m = pv[2];
    sp.mask = mask; sp.idx = ix; sp.off = off;
    int64_t rows = w->rows, cols = w->cols;
    *w = (lb_weight){.rep = &lb__wrep_sparse, .rows = rows, .cols = cols, .data = vals, .dtype = vt ? vt->dtype : LB_DTYPE_U8,
                     .u.sparse = sp};
    if (mask && (s = mask_offsets(src, w))) return s;
    if (packed) {
        w->u.sparse.nnz = w->u.sparse.off[rows];
        if ((s = read_packed(src, pre, what, w))) return s;
    }
    w->u.sparse.p = uniform_p(w);
    s = lb__sparse_validate(w, what);
    return s ? s : vnm_derive(src->store, w);
}

static lb_status sparse_plan(const lb_weight *w, const char *name, const char *pre, bool vector, lb_wplan *p)
{
    const lb_wsparse *sp = &w->u.sparse;
    lb_status s = LB_OK;
    if (!sp->fmt) s = lb__wplan_add(p, w, pre, ".weight_values", PART_VALUES, w->dtype, 1, sp->nnz, 0);
    else {
        lb__qsplit q;
        lb__qsplit_plan(sp->fmt, sp->k, &q);
        s = lb__wplan_add(p, w, pre, ".weight_values_packed", PART_QCODES, LB_DTYPE_U8, 2, w->rows, (int64_t)q.code_bytes);
        if (!s) s = lb__wplan_add(p, w, pre, ".weight_values_scale", PART_QSCALES, q.scale_dtype, 2, w->rows, q.n_blocks);
        if (!s && q.has_zero) s = lb__wplan_add(p, w, pre, ".weight_values_zero_point", PART_QZEROS, LB_DTYPE_U8, 2, w->rows, q.n_blocks);
        if (!s && lb_format_uses_tensor_scale(sp->fmt))
            s = lb__wplan_add(p, w, pre, ".weight_values_global_scale", PART_QGLOBAL, LB_DTYPE_F32, 1, 1, 0);
        if (!s) s = lb__wplan_add(p, w, pre, ".weight_values_format", PART_QNAME, LB_DTYPE_U8, 1,
                                  (int64_t)strlen(lb_format_name(sp->fmt)), 0);
        if (p->max_row < sp->row_bytes) p->max_row = sp->row_bytes;
    }
    if (!s && sp->mask) s = lb__wplan_add(p, w, pre, ".weight_bitmask", PART_MASK, LB_DTYPE_U8, 2, w->rows, (int64_t)sp->mask_bytes);
    if (!s && sp->idx) s = lb__wplan_add(p, w, pre, ".weight_indices", PART_IDX, LB_DTYPE_U16, 1, sp->nnz, 0);
    if (!s && sp->idx) s = lb__wplan_add(p, w, pre, ".weight_row_offsets", PART_OFF, LB_DTYPE_I64, 1, w->rows + 1, 0);
    if (!s) s = lb__wplan_add(p, w, pre, ".weight_sparsity", PART_PAT, LB_DTYPE_I32, 1, 3, 0);
    return s;
}

/* One split part of packed values, row by row (block.c's layout). */
static lb_status write_packed(const lb_weight *w, int part, lb_st_writer *wr, uint8_t *tmp)
{
    const lb_wsparse *sp = &w->u.sparse;
    lb__qsplit q;
    lb__qsplit_plan(sp->fmt, sp->k, &q);
    size_t n = part == PART_QCODES ? q.code_bytes : part == PART_QSCALES ? (size_t)(q.n_blocks * q.scale_bytes)
                                                                        : (size_t)q.n_blocks;
    for (int64_t r = 0; r < w->rows; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * sp->row_bytes;
        lb__qsplit_row(&q, row, part == PART_QCODES ? tmp : NULL, part == PART_QSCALES ? tmp : NULL,
                       part == PART_QZEROS ? tmp : NULL);
        lb_status s = lb__st_writer_write(wr, tmp, n);
        if (s) return s;
    }
    return LB_OK;
}

static lb_status sparse_write(const lb_weight *w, int part, lb_st_writer *wr, uint8_t *tmp)
{
    const lb_wsparse *sp = &w->u.sparse;
    int32_t pat[3] = {sp->v, sp->n, sp->m};
    switch (part) {
    case PART_VALUES: return lb__st_writer_write(wr, w->data, (size_t)sp->nnz * vsize(w));
    case PART_MASK: return lb__st_writer_write(wr, sp->mask, (size_t)w->rows * sp->mask_bytes);
    case PART_IDX: return lb__st_writer_write(wr, sp->idx, (size_t)sp->nnz * 2);
    case PART_OFF: return lb__st_writer_write(wr, sp->off, (size_t)(w->rows + 1) * 8);
    case PART_QCODES: case PART_QSCALES: case PART_QZEROS: return write_packed(w, part, wr, tmp);
    case PART_QGLOBAL: return lb__st_writer_write(wr, &sp->tensor_scale, sizeof(float));
    case PART_QNAME: return lb__st_writer_write(wr, lb_format_name(sp->fmt), strlen(lb_format_name(sp->fmt)));
    default: return lb__st_writer_write(wr, pat, sizeof pat);
    }
}

/* Non-finite stored values (packed values: not checked here, 0). */
static int64_t sparse_nonfinite(const lb_weight *w)
{
    int64_t bad = 0;
    for (int64_t i = 0; !w->u.sparse.fmt && i < w->u.sparse.nnz; i++) bad += !isfinite(value_at(w, i));
    return bad;
}

static lb_status sparse_copy(lb_wstore *s, lb_weight *w)
{
    lb_wsparse *sp = &w->u.sparse;
    size_t vb = sp->fmt ? (size_t)w->rows * sp->row_bytes : (size_t)sp->nnz * vsize(w);
    if (!(w->data = lb__wstore_copy(s, w->data, vb))) return LB_ERR_NOMEM;
    if (!(sp->off = lb__wstore_copy(s, sp->off, (size_t)(w->rows + 1) * 8))) return LB_ERR_NOMEM;
    if (sp->mask && !(sp->mask = lb__wstore_copy(s, sp->mask, (size_t)w->rows * sp->mask_bytes))) return LB_ERR_NOMEM;
    if (sp->idx && !(sp->idx = lb__wstore_copy(s, sp->idx, (size_t)sp->nnz * 2))) return LB_ERR_NOMEM;
    if (sp->vsel && !(sp->vsel = lb__wstore_copy(s, sp->vsel, (size_t)((w->rows + sp->v - 1) / sp->v) * sp->mask_bytes)))
        return LB_ERR_NOMEM;
    if (sp->vmask && !(sp->vmask = lb__wstore_copy(s, sp->vmask, (size_t)w->rows * sp->vmask_bytes))) return LB_ERR_NOMEM;
    return LB_OK;
}

const lb_wrep lb__wrep_sparse = {
    .name = "sparse",
    .row = sparse_row,
    .bytes = sparse_bytes,
    .describe = sparse_describe,
    .rows = sparse_rows,
    .read = sparse_read,
    .plan = sparse_plan,
    .write = sparse_write,
    .copy = sparse_copy,
    .nonfinite = sparse_nonfinite,
};
