/* quant.h: private side of the weight quantizers: the method descriptor (one
 * row of the registry table in registry.c), the entry points of each method
 * file, and the model-file helpers shared by the saver and the loader.
 *
 * A method fills an lb_qmatrix from a float matrix; the identity every
 * method keeps is written at the quant section of lowbit.h:
 *   W ~= dequant(packed) * diag(col_scale) * R. */
#ifndef LB_QUANT_H
#define LB_QUANT_H

#include "model/model.h"

/* Quantize w (rows x cols, float, already rotated when the method rotates)
 * into out->packed (and out->col_scale); out->fmt/rows/cols/row_bytes are set. */
typedef lb_status (*lb__quant_method_fn)(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);

struct lb_quantizer {
    const char *name;
    const char *desc;
    bool rotate;                 /* Hadamard-rotate the input space first */
    lb__quant_method_fn quantize;
};

/* The weight view of a quantized matrix (buffers stay the matrix's; a NULL
 * format means rotation only, dense F32 in packed). */
static inline lb_weight lb__qmatrix_weight(const lb_qmatrix *q)
{
    return (lb_weight){.data = q->packed, .dtype = q->fmt ? LB_DTYPE_U8 : LB_DTYPE_F32, .rows = q->rows,
                       .cols = q->cols, .fmt = q->fmt, .tensor_scale = q->tensor_scale, .row_bytes = q->row_bytes,
                       .col_scale = q->col_scale, .hadamard_block = q->hadamard_block,
                       .hadamard_signs = q->hadamard_signs, .method = q->method ? q->method->name : NULL};
}

/* rtn.c, sinq.c: the base methods. */
lb_status lb__rtn_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);
lb_status lb__sinq_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);

/* sinq.c: the Sinkhorn column scale of one tile (rows x g columns of w with
 * row stride ld): t[g] (> 0) and the imbalance (max std / min std over the
 * tile's rows and columns) before and after. */
void lb__sinq_tile(const float *w, int64_t rows, int64_t g, int64_t ld, int iters, float *t, double *imb_before,
                   double *imb_after);

/* hadamard.c: the rotation of a method with rotate = true: w (rows x cols)
 * <- w R^T in place; sets out->hadamard_block / seed / signs (owned). */
lb_status lb__quant_rotate(const lb_quantize_opts *o, float *w, int64_t rows, int64_t cols, lb_qmatrix *out);
/* x (n) <- R x for the rotation of a weight (block, signs). */
lb_status lb__quant_rotate_vec(float *x, int64_t n, int64_t block, const int8_t *signs);
/* y (rows x cols) <- y R, undoing the rotation of a dequantized matrix. */
lb_status lb__quant_unrotate(float *w, int64_t rows, int64_t cols, int64_t block, const int8_t *signs);

/* Storage of a packed matrix split into the safetensors tensors of
 * docs/file-format.md: codes (rows, code_bytes), scales (rows, n_blocks) of
 * scale_dtype, zero points (rows, n_blocks) U8 for asymmetric INT formats. */
typedef struct lb__qsplit {
    int64_t n_blocks, block;     /* blocks per row, elements per block */
    size_t code_bytes;           /* per row */
    size_t block_code_bytes;     /* per block */
    int scale_bytes;             /* 1 (E8M0 / UE4M3) or 2 (F16 / BF16) */
    lb_dtype scale_dtype;        /* U8, F16 or BF16 */
    bool has_zero;
} lb__qsplit;
void lb__qsplit_plan(const lb_format *f, int64_t cols, lb__qsplit *p);
/* One packed row <-> its codes, scales and zero points. */
void lb__qsplit_row(const lb__qsplit *p, const uint8_t *row, uint8_t *codes, uint8_t *scales, uint8_t *zeros);
void lb__qjoin_row(const lb__qsplit *p, const uint8_t *codes, const uint8_t *scales, const uint8_t *zeros,
                   uint8_t *row);

/* The Hugging Face names of the weights of a model, in file order. */
typedef struct lb__qname {
    char name[96];
    lb_weight *w;
    bool vector;                 /* stored 1-D (norms, biases) */
    bool linear;                 /* a projection the quantizers act on */
} lb__qname;
/* Fill up to cap entries (NULL weights skipped); returns the count. Tied
 * lm_head is not listed. */
int64_t lb__qnames(lb_model *m, lb__qname *out, int64_t cap);

/* qload.c: true when the safetensors file at path carries lowbit metadata. */
bool lb__qfile_is_lowbit(const char *path);
/* Load a lowbit model file (written by lb_model_save) into m. */
lb_status lb__qfile_load(const char *path, lb_model *m);
/* For `lowbit inspect`: when the metadata is a lowbit model file's, append
 * a table of its packed / rotated weights (format, method, group, transform,
 * bits/weight) to b and return true. */
bool lb__qfile_describe(lb_buf *b, const char **keys, const char **vals, int64_t n);
/* Model-owned buffer (NULL + error on failure). */
void *lb__model_own(lb_model *m, size_t n);

/* Any weight (dense, packed, rotated) as F32 in the original space (rows x cols). */
lb_status lb__weight_f32(const lb_weight *w, float *out);
/* linear.c: y (nt tokens, row stride ys) = W x (row stride xs) for any
 * weight (dense, rotated, SINQ-scaled, packed); scratch holds at least
 * lb__linear_scratch(model, nt, threads of pool) floats (unused for plain
 * dense weights, may then be NULL). Bit-identical across threads and ISAs. */
void lb__linear(lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *y, int64_t ys,
                float *scratch);
/* Several weights sharing one input in one parallel pass (n <= 3 fused):
 * y[i] (row stride ys[i]) = W_i x. Inputs with the same rotation are
 * transformed once. */
void lb__linear_n(lb_pool *pool, int n, const lb_weight *const *w, const float *x, int64_t nt, int64_t xs,
                  float *const *y, const int64_t *ys, float *scratch);
/* Fused dequantize-and-dot of nr consecutive packed rows (row stride rb)
 * with x into out[nr] (qdot_avx512.c, qdot_avx2.c); each result is
 * bit-identical with lb_format_dot; tab is the value table of the kernel,
 * nvd (NV formats) the 128 block multipliers ue4m3(c) / ts. x is in the
 * order lb__qdot_perm_x gives when the kernel's perm_x is set. */
typedef void (*lb__qdot_fn)(const lb_format *f, float ts, const uint8_t *rows, size_t rb, int nr, const float *x,
                            int64_t cols, const float *tab, const float *nvd, float *out);
typedef struct lb__qkern {
    lb__qdot_fn rows;
    const float *tab;
    bool perm_x;                 /* x interleaved per 16: x[0], x[8], x[1], x[9], ... x[7], x[15] */
} lb__qkern;
/* The multi-row kernel for f on the active ISA (false: none, use
 * lb_format_dot). The _avx512 / _avx2 ones: call only when that ISA is active. */
bool lb__qdot_kernel(const lb_format *f, lb__qkern *k);
bool lb__qdot_avx512(const lb_format *f, lb__qkern *k);
bool lb__qdot_avx2(const lb_format *f, lb__qkern *k);
/* xp (cols, a multiple of 16) = x in the perm_x order. */
void lb__qdot_perm_x(const float *x, int64_t cols, float *xp);
/* Floats of scratch lb__linear needs for any weight of m (0 when all dense). */
size_t lb__linear_scratch(const lb_model *m, int64_t max_batch, int n_threads);
/* Row r of any weight as F32 in the original space (embedding lookup). */
void lb__qweight_row(const lb_weight *w, int64_t r, float *out);

/* Bytes a weight occupies (data, scales, column scales, signs). */
size_t lb__qweight_bytes(const lb_weight *w);

#endif
