/* weights.h: the runtime side of every weight (private to liblowbit).
 *
 * A weight is a matrix W [rows, cols] (a vector has rows = 1) that the
 * forward pass multiplies with activations: y = W x. It is stored as
 *
 *   W = S * T_k ... T_1    (y = S (T_k ( ... (T_1 x))))
 *
 * an ordered list of input transforms T_i (Hadamard rotation, column scale;
 * later activation quantization, learned rotations, AWQ scales), applied to
 * x before the product, and ONE stored representation S (dense F32/F16/BF16,
 * block-quantized in a registry format, losslessly packed BF16; later
 * sparse). Each representation is one file (dense.c, block.c, lossless.c)
 * filling one lb_wrep row of the registry in registry.c; each transform kind
 * one row of the transform table in xform.c.
 *
 * The model layer sees only this interface: lb__linear_n for products,
 * lb__weight_row for embedding rows, lb__weight_bytes for accounting,
 * lb__weight_read to take a weight out of a safetensors file, and
 * lb__weight_save_* to write one. See docs/design.md ("add a weight
 * representation") for the functions a new representation implements. */
#ifndef LB_WEIGHTS_H
#define LB_WEIGHTS_H

#include "kernels/kernels.h"
#include "kernels/igemm.h"
#include "kernels/bf16dot.h"
#include "transforms/hadamard.h"
#include "lossless/lossless.h"
#include "core/safetensors.h"

typedef struct lb_wrep lb_wrep;
/* Buffers a model owns on behalf of its weights; freed together. */
typedef struct lb_wstore {
    void **p;
    void (**free_fn)(void *);
    int n;
} lb_wstore;
typedef struct lb_wsrc lb_wsrc;     /* file.c: a loader's opened files */
typedef struct lb_wplan lb_wplan;   /* file.c: the tensors a save writes */

/* ---- input transforms */

typedef enum lb_xform_kind {
    LB_XFORM_HADAMARD = 0,  /* x <- blockdiag(H_block / sqrt(block)) diag(signs) x */
    LB_XFORM_COL_SCALE = 1, /* x <- scale .* x (SINQ column scale) */
    LB_XFORM_ROTATION = 2,  /* x <- R x, R (cols, cols) dense orthogonal (DartQuant, src/quant/dartquant.c) */
    LB_XFORM_COUNT
} lb_xform_kind;

typedef struct lb_xform {
    lb_xform_kind kind;
    int64_t block;          /* HADAMARD: block order */
    const int8_t *signs;    /* HADAMARD: (cols) +1/-1, or NULL (all +1) */
    bool seeded;            /* HADAMARD: signs = lb_hadamard_signs(seed, cols); files keep the seed, not the signs */
    uint64_t seed;
    const float *scale;     /* COL_SCALE: (cols), positive */
    const float *rot;       /* ROTATION: (cols, cols) row-major R */
} lb_xform;

/* The widest dense rotation (its apply keeps one row on the stack). */
#define LB_XFORM_ROT_MAX 16384

#define LB_WEIGHT_MAX_XFORMS 4

/* Parameters of the block-quantized representation (block.c). */
typedef struct lb_wblock {
    const lb_format *fmt;   /* block format of data: rows * row_bytes bytes */
    float tensor_scale;     /* NV per-tensor encode scale (1 otherwise) */
    size_t row_bytes;       /* bytes per packed row */
    int64_t pcols;          /* stored columns: cols, or cols rounded up to the block when the block does
                               not divide cols (the padding columns hold zeros and meet zero inputs) */
} lb_wblock;

/* Parameters of the sparse representation (sparse.c): the kept values are
 * w->data (nnz values of w->dtype, row by row in column order); which
 * inputs they belong to is a bitmask or an index list. */
typedef struct lb_wsparse {
    const uint8_t *mask;    /* bitmask layout: (rows, mask_bytes), bit c % 8 of byte c / 8 set: input c kept */
    const uint16_t *idx;    /* index layout: (nnz) the input of each kept value (cols <= 65536) */
    const int64_t *off;     /* (rows + 1) first value of each row */
    int64_t nnz;
    size_t mask_bytes;      /* ceil(cols / 8) */
    int32_t v, n, m;        /* pattern: n = 0 unstructured, v = 0 N:M (n of m), else V:N:M */
    int32_t p;              /* every mask byte holds p set bits (1, 2, 4, 8; cols % 8 == 0): the fused
                               kernel applies; 0 otherwise (not stored: derived from the mask) */
    const lb_format *fmt;   /* NULL: values of w->dtype; else each row's kept values, then zeros up to k,
                               packed in this block format (w->dtype U8, row_bytes per row; k % block == 0) */
    float tensor_scale;     /* fmt's per-tensor scale (NV formats), else 1 */
    size_t row_bytes;
    int64_t k;
    /* V:N:M shared gather (sparse.c; derived at load, never stored; NULL when it does not apply) */
    const uint8_t *vsel;    /* (ceil(rows / v), mask_bytes): the 4 inputs of each group of m a block gathers */
    const uint8_t *vmask;   /* (rows, vmask_bytes): each row's kept inputs among its block's gathered ones */
    size_t vmask_bytes;     /* cols / m * 4 / 8 */
    int32_t vp;             /* set bits of every vmask byte (2 n) */
} lb_wsparse;

/* One weight. Borrowed views into mapped files or buffers owned by the
 * model's lb_wstore. `rep` NULL: the tensor is absent (e.g. no bias). */
/* STaMP (stamp.c): an orthogonal transform along the tokens of one batch
 * before the activation format; kind LB__STAMP_NONE: plain per-token. */
enum { LB__STAMP_NONE, LB__STAMP_DCT, LB__STAMP_HAAR, LB__STAMP_ID };
typedef struct lb__stamp {
    int kind;
    double avg;             /* average element bits: the top rows at 8 (int8_g32), the rest in act */
    char name[48];          /* the spec as written: "stamp-dct:int4_g32:4.25" */
} lb__stamp;

typedef struct lb_weight {
    const lb_wrep *rep;     /* the stored representation */
    int64_t rows, cols;
    const void *data;       /* the representation's bytes (see its file) */
    lb_dtype dtype;         /* dense: F32, F16 or BF16; block: U8; lossless: BF16 */
    union {                 /* representation parameters */
        lb_wblock block;    /* block.c */
        lb_wsparse sparse;  /* sparse.c */
    } u;
    lb_xform in[LB_WEIGHT_MAX_XFORMS]; /* input transforms, applied in this order */
    int n_in;
    const char *method;     /* the quantizer that produced it (static string), NULL when none */
    const lb_format *act;   /* activation format of its input (act.c), NULL: FP32 inputs */
    lb__stamp stamp;        /* STaMP sequence transform before act (stamp.c); kind 0: none */
    const float *act_sd;    /* static activation scales (act.c): (cols / block of act) decoded FP32 block
                               scales from calibration, NULL: per-token scales */
} lb_weight;

/* ---- the registry of representations */

/* Scheduling state of one weight in one product (the generic row job of
 * linear.c): filled by the representation's prepare(), read by rows(). */
typedef struct lb_wpart {
    const lb_weight *w;
    const float *x;          /* input after the transforms (row stride xs) */
    int64_t xs, row0;        /* first row in the joint row range */
    float *y;
    int64_t ys;
    lb__qkern kern;          /* block: multi-row kernel (kern.rows NULL: lb_format_dot) */
    const float *xk;         /* block decode: x in the kernel's order (row stride xks) */
    int64_t xks;
    float nvd[128];          /* block NV formats: ue4m3(code) / tensor_scale */
    lb__iw iw;               /* integer product (iw.f set): weight format, quantized input ia */
    lb__iact ia;
    lb__bact ba;             /* bf16 x bf16 product (ba.x set): the input in BF16 (act.c) */
} lb_wpart;

typedef struct lb_wjob {
    const lb_kernels *k;
    int64_t nt, max_cols;
    float *rowbuf;           /* (threads, max_cols) per-thread row buffers */
} lb_wjob;

typedef struct lb_wspace lb_wspace;

/* What a representation implements. Optional entries may be NULL. */
struct lb_wrep {
    const char *name;
    /* row r of S (before the input transforms are undone) as F32 */
    void (*row)(const lb_weight *w, int64_t r, float *out);
    /* bytes of S (codes, scales, ...; not the transforms') */
    size_t (*bytes)(const lb_weight *w);
    /* short text for reports: "BF16", "int4_g32", "BF16 lossless" */
    const char *(*describe)(const lb_weight *w);
    /* extra checks before a forward pass uses w (optional) */
    lb_status (*check)(const lb_weight *w, const char *name);
    /* products through the generic row job: per-call set-up (optional),
     * then rows [r0, r1) of y for all nt tokens on one thread */
    void (*prepare)(const lb_weight *w, int64_t nt, lb_wpart *p);
    void (*rows)(const lb_wjob *j, const lb_wpart *p, int64_t r0, int64_t r1, int thread);
    /* or the whole product by the representation itself (optional; used
     * instead of rows): y = S x, x already transformed */
    void (*matmul)(void *state, lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *y,
                   int64_t ys);
    /* per-session state for matmul, sized from the weights it will see (optional) */
    lb_status (*state_create)(const lb_weight *const *w, int n, void **state);
    void (*state_free)(void *state);
    /* files: take tensor `name` (prefix: name without ".weight") from the
     * source as this representation into w, whose rows and cols are preset
     * (vector: stored 1-D). LB_ERR_NOTFOUND without a message: not stored
     * this way. */
    lb_status (*read)(lb_wsrc *src, const char *name, const char *prefix, bool vector, lb_weight *w);
    /* files: the tensors S is saved as (lb__weight_save_plan), and one of them */
    lb_status (*plan)(const lb_weight *w, const char *name, const char *prefix, bool vector, lb_wplan *p);
    lb_status (*write)(const lb_weight *w, int part, lb_st_writer *wr, uint8_t *tmp);
    /* stored values that are not finite (dense: elements; block: block and
     * tensor scales); optional: NULL = not checked (lossless: CRC-verified
     * BF16, counted when unpacked) */
    int64_t (*nonfinite)(const lb_weight *w);
    /* replace w->data by a copy owned by s (optional: NULL = not copyable) */
    lb_status (*copy)(lb_wstore *s, lb_weight *w);
};

extern const lb_wrep lb__wrep_dense, lb__wrep_block, lb__wrep_lossless, lb__wrep_sparse;
/* Registry: the representations in the order the file reader tries them. */
int lb__wrep_count(void);
const lb_wrep *lb__wrep_at(int i);

/* ---- constructors */

/* A dense weight over data (rows x cols of dt). */
lb_weight lb__weight_dense(const void *data, lb_dtype dt, int64_t rows, int64_t cols);
/* A block-quantized weight over packed rows of format f. */
lb_weight lb__weight_block(const lb_format *f, float tensor_scale, const uint8_t *data, int64_t rows, int64_t cols);
/* block.c: cols rounded up to f's block (cols when the block divides it or
 * f has one block per row); blocks are at most LB_PAD_MAX_BLOCK. */
#define LB_PAD_MAX_BLOCK 256
int64_t lb__pad_cols(const lb_format *f, int64_t cols);
/* Columns the stored representation multiplies: w->cols, or the padded
 * width of a block weight whose block does not divide cols (the product
 * zero-pads the input to it). */
int64_t lb__weight_in_cols(const lb_weight *w);
/* Append an input transform (LB_ERR_ARG when the list is full). */
lb_status lb__weight_push(lb_weight *w, lb_xform t);
/* The Hadamard transform / column scale of w, or NULL. */
const lb_xform *lb__weight_xform(const lb_weight *w, lb_xform_kind kind);

/* ---- using a weight */

/* Row r of W as F32 in the original space (transforms undone). */
void lb__weight_row(const lb_weight *w, int64_t r, float *out);
/* All of W as F32 in the original space (rows x cols). */
lb_status lb__weight_f32(const lb_weight *w, float *out);
/* Stored values of w that are NaN or infinite (0 when its representation
 * does not check). */
int64_t lb__weight_nonfinite(const lb_weight *w);
/* Bytes w holds: its representation and its transforms' parameters. */
size_t lb__weight_bytes(const lb_weight *w);
/* LB_OK when w has shape (rows, cols) (a vector: rows*cols elements) and a
 * representation the forward pass can run; else an error naming `name`. */
lb_status lb__weight_check(const lb_weight *w, const char *name, int64_t rows, int64_t cols);

/* The workspace of products over a set of weights (per session): scratch
 * for transformed inputs and row buffers, and each representation's state.
 * Sized once for batches of up to max_batch tokens and n_threads threads;
 * nothing is allocated per product. */
lb_status lb__wspace_create(const lb_weight *const *w, int n, int64_t max_batch, int n_threads, lb_wspace **out);
void lb__wspace_free(lb_wspace *ws);

/* y (nt tokens, row stride ys) = W x (row stride xs) for any weight, on the
 * pool (NULL: calling thread). Bit-identical across threads and ISAs. */
void lb__linear(lb_wspace *ws, lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *y,
                int64_t ys);
/* Several weights sharing one input, in one parallel pass where their
 * representations allow (n <= 3 fused): y[i] = W_i x. Inputs with the same
 * transforms are transformed once. */
void lb__linear_n(lb_wspace *ws, lb_pool *pool, int n, const lb_weight *const *w, const float *x, int64_t nt,
                  int64_t xs, float *const *y, const int64_t *ys);

/* ---- input transforms (xform.c) */

/* x (nt rows of cols, contiguous) <- T x, in place. */
void lb__xform_apply(const lb_xform *t, float *x, int64_t nt, int64_t cols);
/* w (rows x cols) <- w T: a matrix in the transformed space back to the original. */
lb_status lb__xform_undo(const lb_xform *t, float *w, int64_t rows, int64_t cols);
/* True when a and b (both of cols columns) are the same transform. */
bool lb__xform_same(const lb_xform *a, const lb_xform *b, int64_t cols);
/* Bytes of the transform's parameters. */
size_t lb__xform_bytes(const lb_xform *t, int64_t cols);

/* ---- activation quantization (act.c) */

/* LB_OK when act (NULL: none) can quantize inputs of cols values (its block
 * divides cols); else LB_ERR_ARG naming `name`. */
lb_status lb__act_check(const lb_format *act, int64_t cols, const char *name);
/* True when w's weights and activation format pair up for the integer
 * kernels (*iw: the weight side). */
bool lb__act_pairs(const lb_weight *w, lb__iw *iw);
/* Bytes of the packed-row buffer one token's quantization needs. */
size_t lb__act_row_bytes(int64_t cols);
/* BF16 activations ("bf16"): not a registry format (its elements are 16-bit
 * floats, no blocks), an activation format of its own. With dense BF16
 * weights the product is the "bf16 x bf16" kernel (kernels/bf16dot.h);
 * with any other weight the input is rounded to BF16 and back (simulated). */
extern const lb_format lb__act_bf16;
/* The activation format named name: a registry format or "bf16" (NULL: none). */
const lb_format *lb__act_find(const char *name);
/* Whether w's product is the bf16 x bf16 kernel (act bf16, dense BF16). */
bool lb__act_bf16_pairs(const lb_weight *w);
/* x (nt rows of cols, contiguous) <- dequant(quant(x)) per row; buf holds
 * lb__act_row_bytes(cols). */
void lb__act_qdq(const lb_format *act, float *x, int64_t nt, int64_t cols, uint8_t *buf);
/* Rows of x (stride xs) quantized in act (lb__iw_init(act) true) into 8-bit
 * codes in the kernel order of wbits-bit weights (q, row stride qs) and
 * block scales (d, row stride ds). */
void lb__act_codes(const lb_format *act, int wbits, const float *x, int64_t nt, int64_t xs, int64_t cols,
                   uint8_t *buf, int8_t *q, int64_t qs, float *d, int64_t ds);
/* Static scales (sd: one decoded scale per block of act, a symmetric INT
 * format): the same two steps with sd instead of each token's own block
 * scales. codes = clamp(rint(x / sd), -qmax, qmax) (1/sd as the format's
 * quantizer takes it; sd 0: codes 0); a block holding Inf/NaN gets scale NaN. */
void lb__act_qdq_static(const lb_format *act, const float *sd, float *x, int64_t nt, int64_t cols);
void lb__act_codes_static(const lb_format *act, const float *sd, int wbits, const float *x, int64_t nt, int64_t xs,
                          int64_t cols, int8_t *q, int64_t qs, float *d, int64_t ds);
/* The static scale of one block of act from the largest |x| the block's
 * columns took in calibration: the format's own scale of a block whose
 * max |x| is amax (amax / qmax in the format's scale type, decoded). */
float lb__act_static_scale(const lb_format *act, float amax);
/* True when act takes static scales (symmetric INT elements in blocks). */
bool lb__act_static_ok(const lb_format *act);

/* ---- STaMP sequence transforms (stamp.c) */

/* Tokens transformed together at most (a longer batch: consecutive segments). */
#define LB__STAMP_SEG 512
/* Parse "stamp-KIND:LOW[:AVG]" (KIND dct, haar or id; LOW an activation
 * format with elements under 8 bits, int4 naming int4_g32; AVG in [bits of
 * LOW, 8], default bits + 0.25) into *st and its low format. */
lb_status lb__stamp_parse(const char *spec, lb__stamp *st, const lb_format **low);
/* LB_OK when inputs of cols values suit st's formats (low act and int8_g32). */
lb_status lb__stamp_check(const lb__stamp *st, const lb_format *low, int64_t cols, const char *name);
/* The n x n orthonormal matrix T of kind (z = T x over tokens), row-major. */
void lb__stamp_matrix(int kind, int64_t n, float *T);
/* Rows at 8 bits among n transformed tokens (0 for one token: decode). */
int64_t lb__stamp_rows8(const lb__stamp *st, const lb_format *low, int64_t n);
/* x (nt rows of cols, contiguous) <- T^T Q(T x) per segment of at most
 * LB__STAMP_SEG tokens: Q quantizes the rows with the most energy in
 * int8_g32, the others in low. z: LB__STAMP_SEG * cols floats; T:
 * LB__STAMP_SEG^2 floats (*tn, *tkind: what T holds, reused when equal);
 * buf: nt rows of lb__act_row_bytes(cols). Independent of the pool's threads. */
void lb__stamp_qdq(const lb__stamp *st, const lb_format *low, float *x, int64_t nt, int64_t cols, float *z, float *T,
                   int64_t *tn, int *tkind, uint8_t *buf, size_t bufs, lb_pool *pool);

/* ---- ownership (lb_wstore is defined at the top) */
/* A new owned buffer of n bytes (NULL + message on failure). */
void *lb__wstore_alloc(lb_wstore *s, size_t n);
/* Take ownership of p, released with free_fn (on failure p is released now). */
lb_status lb__wstore_keep(lb_wstore *s, void *p, void (*free_fn)(void *));
void lb__wstore_free(lb_wstore *s);
/* An owned copy of n bytes at p (NULL + message on failure). */
void *lb__wstore_copy(lb_wstore *s, const void *p, size_t n);
/* A copy of w whose buffers (data, transforms' parameters) are owned by s. */
lb_status lb__weight_copy(lb_wstore *s, const lb_weight *src, lb_weight *dst);

/* ---- files (file.c): lowbit's safetensors layout, docs/file-format.md */

/* Where a loader's tensors come from: the opened files, which tensors were
 * taken (used[f][t]), who owns converted buffers, and the source's name. */
/* A "lowbit.tensor.P" metadata entry (docs/file-format.md). */
typedef struct lb_wmeta {
    const lb_format *fmt;    /* block format, or NULL (a dense dtype) */
    char method[32];         /* the producing method's name ("none" when none) */
    int64_t group, hblock, rows, cols;
    bool hadamard, col_scale;
    bool seeded;             /* "hadamard_seed": the signs are lb_hadamard_signs(seed, cols), no tensor */
    uint64_t seed;
    bool rotation;           /* "transform": "rotation" (P.weight_rotation, DartQuant) */
    const lb_format *act;    /* "act": activation format (absent or "none": NULL) */
    lb__stamp stamp;         /* "act": "stamp-..." (stamp.c) */
    bool act_static;         /* "act_static": true: P.act_scale holds static activation scales */
} lb_wmeta;

struct lb_wsrc {
    const lb_st_file *files;
    int n_files;
    bool **used;
    lb_wstore *store;
    const char *what;        /* folder or file, for messages */
    const lb_wmeta *meta;    /* the entry of the weight being read, or NULL */
};

/* Take the weight `name` (a Hugging Face name such as
 * "model.layers.0.mlp.down_proj.weight") of shape (rows, cols) (rows == 0:
 * a vector of cols) from src, whatever representation and transforms it was
 * stored with. LB_ERR_FORMAT (with a message) when no tensor holds it. */
lb_status lb__weight_read(lb_wsrc *src, const char *name, int64_t rows, int64_t cols, lb_weight *w);
/* The tensor `name` in src, marking it used (NULL when absent; *file set). */
const lb_st_tensor *lb__wsrc_take(lb_wsrc *src, const char *name, int *file);
/* The same without marking it used. */
const lb_st_tensor *lb__wsrc_find(const lb_wsrc *src, const char *name, int *file);
/* A view of t's data, or an owned copy when it is not aligned for its dtype. */
const void *lb__wsrc_view(lb_wsrc *src, const lb_st_tensor *t);

/* Saving: the plan lists every tensor of the weights to write (name, dtype,
 * shape, who writes it); the caller declares them, then writes them in the
 * same order. */
typedef struct lb_wplan_item {
    char name[128];
    const lb_weight *w;
    const lb_wrep *rep;      /* NULL: written by transform `xf` */
    int part;                /* the representation's or transform's part number */
    int xf;
    lb_dtype dtype;
    int ndim;
    int64_t shape[2];
} lb_wplan_item;
struct lb_wplan {
    lb_wplan_item *v;
    int64_t n, cap;
    size_t max_row;          /* the largest temporary row a write needs */
};
lb_status lb__wplan_add(lb_wplan *p, const lb_weight *w, const char *base, const char *suffix, int part, lb_dtype dt,
                        int ndim, int64_t d0, int64_t d1);
/* Add w's tensors (and its lowbit.tensor.* metadata entry to wr). */
lb_status lb__weight_save_plan(lb_st_writer *wr, lb_wplan *p, const lb_weight *w, const char *name, bool vector);
/* Write the data of one planned tensor (tmp holds at least p->max_row bytes). */
lb_status lb__weight_save_item(lb_st_writer *wr, const lb_wplan_item *it, uint8_t *tmp);
/* For `lowbit inspect`: a table of the lowbit.tensor.* metadata entries
 * (format, method, group, transform, bits/weight) appended to b. */
void lb__weight_describe_meta(lb_buf *b, const char **keys, const char **vals, int64_t n);

/* ---- block.c: the split of packed rows into the stored tensors */

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

/* ---- sparse.c */

typedef enum lb_sparse_layout { LB_SPARSE_AUTO = -1, LB_SPARSE_BITMASK = 0, LB_SPARSE_INDEX = 1 } lb_sparse_layout;
/* A sparse weight holding w's entries where keep (rows x cols bytes) is
 * nonzero, as values of vdt (F32, F16 or BF16), recording pattern (v, n, m)
 * (see lb_wsparse); buffers owned by s. LB_SPARSE_AUTO picks the layout with
 * fewer bytes. The kept set must satisfy the pattern (LB_ERR_ARG if not). */
lb_status lb__weight_sparse(lb_wstore *s, const float *w, const uint8_t *keep, int64_t rows, int64_t cols, lb_dtype vdt,
                            int32_t v, int32_t n, int32_t m, lb_sparse_layout layout, lb_weight *out);
/* The same with the kept values packed per row in block format f: packed
 * holds rows x lb_format_row_bytes(f, k) bytes (copied into s), k =
 * lb__sparse_padded_k(keep, rows, cols, f): each row's kept values, then
 * zeros up to k (LB_ERR_ARG if k > cols or nothing is kept). */
int64_t lb__sparse_padded_k(const uint8_t *keep, int64_t rows, int64_t cols, const lb_format *f);
lb_status lb__weight_sparse_packed(lb_wstore *s, const uint8_t *keep, int64_t rows, int64_t cols, const lb_format *f,
                                   float tensor_scale, const uint8_t *packed, int32_t v, int32_t n, int32_t m,
                                   lb_weight *out);
/* LB_OK when w's index data is consistent: offsets, indices in range and
 * increasing, mask bits within cols, counts matching nnz and the pattern;
 * else LB_ERR_FORMAT with a message naming `what`. */
lb_status lb__sparse_validate(const lb_weight *w, const char *what);
/* "2:4", "64:2:8", "unstructured"; and "bitmask" / "index list". */
void lb__sparse_pattern_text(const lb_wsparse *sp, char *out, size_t cap);
const char *lb__sparse_layout_name(const lb_wsparse *sp);

/* ---- lossless.c */

#define LB_UNPACK_WS ((int64_t)4 << 20)   /* decode workspace cap: 4M values (8 MB) */

/* A packed weight over blob p (borrowed) of shape (rows, cols). */
lb_weight lb__weight_lossless(const lb_bf16_packed *p, int64_t rows, int64_t cols);
/* Row r of a packed weight as F32; decodes only the streams that hold it. */
void lb__lossless_row(const lb_weight *w, int64_t r, float *out);

/* The decode workspace of the packed weights among w[0..n) (NULL and LB_OK
 * when none is packed). cap: values it holds (0: min(largest tensor,
 * LB_UNPACK_WS)); never less than one row. */
typedef struct lb_unpacker lb_unpacker;
lb_status lb__unpacker_create(const lb_weight *const *w, int n, int64_t cap, lb_unpacker **out);
void lb__unpacker_free(lb_unpacker *u);
/* Y = X W^T for a packed W through any dense matmul with lb__matmul's
 * contract: W is decoded (without CRC: checked at load) in blocks of whole
 * rows into the workspace (fused per thread when mm is lb__matmul). */
typedef void (*lb_matmul_fn)(lb_pool *pool, const lb_mat *w, const float *x, int64_t nt, int64_t xs, float *y,
                             int64_t ys);
void lb__unpacker_matmul(lb_unpacker *u, lb_matmul_fn mm, lb_pool *pool, const lb_weight *w, const float *x,
                         int64_t nt, int64_t xs, float *y, int64_t ys);

#endif
