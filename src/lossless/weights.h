/* weights.h: packed (lossless) weights inside a loaded model, for the loader
 * and the forward pass. A packed matrix is an lb_weight with data == NULL,
 * dtype BF16 and `packed` set; its blob is borrowed from the mmap'd file.
 * The forward pass decodes it block by block into one reusable workspace
 * right before each product, so resident weight memory is the packed size
 * plus the workspace (at most LB_UNPACK_WS values). */
#ifndef LB_LOSSLESS_WEIGHTS_H
#define LB_LOSSLESS_WEIGHTS_H

#include "lossless/lossless.h"
#include "model/model.h"
#include "model/safetensors.h"

#define LB_UNPACK_WS ((int64_t)4 << 20)   /* workspace cap: 4M values (8 MB) */

/* True when f was written by lowbit pack. */
bool lb__lossless_file(const lb_st_file *f);

/* The lowbit.lossless entry of tensor t: the shape it unpacks to and its
 * element count. LB_ERR_NOTFOUND (no message) when t is not listed. */
lb_status lb__lossless_entry(const lb_st_file *f, const lb_st_tensor *t, int *ndim, int64_t *shape, int64_t *n);

/* Tensor t of packed file f as weight w of shape (rows, cols), rows == 0 for
 * a vector. Every stream's CRC is checked here, once. Vectors are decoded
 * into a model-owned BF16 buffer; matrices stay packed (owned by m, freed by
 * lb__lossless_model_free). */
lb_status lb__lossless_take(const lb_st_file *f, const lb_st_tensor *t, int64_t rows, int64_t cols, lb_model *m,
                            lb_weight *w);
void lb__lossless_model_free(lb_model *m);
/* Bytes of the packed weights of m (0 when none). */
size_t lb__lossless_model_bytes(const lb_model *m);

/* Row r of a packed weight as F32 (embedding lookup); decodes only the
 * streams that hold it, through a small stack buffer. */
void lb__lossless_row(const lb_weight *w, int64_t r, float *out);

/* The forward pass's decode workspace: NULL (and LB_OK) when m has no
 * packed weights. cap: values it holds (0: min(largest tensor,
 * LB_UNPACK_WS)); never less than one row. */
typedef struct lb_unpacker lb_unpacker;
lb_status lb__unpacker_create(const lb_model *m, int64_t cap, lb_unpacker **out);
void lb__unpacker_free(lb_unpacker *u);

/* Y = X W^T for a packed W through any matmul with lb__matmul's contract:
 * W is decoded (without CRC: checked at load) in blocks of whole rows into
 * the workspace and each block's rows are computed into their columns of Y.
 * Every output element is computed exactly as from the BF16 weight. */
typedef void (*lb_matmul_fn)(lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *y,
                             int64_t ys);
void lb__unpacker_matmul(lb_unpacker *u, lb_matmul_fn mm, lb_pool *pool, const lb_weight *w, const float *x,
                         int64_t nt, int64_t xs, float *y, int64_t ys);

#endif
