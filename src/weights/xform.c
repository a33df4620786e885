/* xform.c: the input transforms of a weight, one row each in the table
 * below. A transform T acts on the activation before the product; the
 * stored matrix S was built for the transformed space, so W = S T:
 *
 *   hadamard   T = blockdiag(H_b / sqrt(b)) diag(signs)   (src/transforms)
 *              stored as P.hadamard_signs  I8 (cols), or, when the signs
 *              come from a seed (every quantizer's rotation), as the seed
 *              alone in the metadata (0 bytes); block in the metadata
 *   col_scale  T = diag(scale)                            (SINQ)
 *              stored as P.weight_col_scale F32 (cols)
 *   rotation   T = R, dense orthogonal (cols, cols)       (DartQuant)
 *              stored as P.weight_rotation F32 (cols, cols); cols^2 floats
 *              per weight, the activation costs cols^2 multiply-adds per
 *              token (summed in double, in index order: no ISA or thread
 *              dependence)
 *
 * Undoing a transform on a matrix in the transformed space (w <- w T) gives
 * the original space back: the inverse rotation of each row, or the scale
 * multiplied into each column. */
#include "weights/weights.h"
#include <math.h>

typedef struct xform_ops {
    const char *name;
    void (*apply)(const lb_xform *t, float *x, int64_t nt, int64_t cols);
    lb_status (*undo)(const lb_xform *t, float *w, int64_t rows, int64_t cols);
    bool (*same)(const lb_xform *a, const lb_xform *b, int64_t cols);
    size_t (*bytes)(const lb_xform *t, int64_t cols);
} xform_ops;

static void hadamard_apply(const lb_xform *t, float *x, int64_t nt, int64_t cols)
{
    lb_hadamard_rows(x, nt, cols, t->block, t->signs, 0);
}

static lb_status hadamard_undo(const lb_xform *t, float *w, int64_t rows, int64_t cols)
{
    return lb_hadamard_rows(w, rows, cols, t->block, t->signs, 1);
}

static bool hadamard_same(const lb_xform *a, const lb_xform *b, int64_t cols)
{
    return a->block == b->block &&
           (a->signs == b->signs || (a->signs && b->signs && !memcmp(a->signs, b->signs, (size_t)cols)));
}

static size_t hadamard_bytes(const lb_xform *t, int64_t cols) { return t->signs && !t->seeded ? (size_t)cols : 0; }

static void scale_apply(const lb_xform *t, float *x, int64_t nt, int64_t cols)
{
    for (int64_t i = 0; i < nt; i++)
        for (int64_t c = 0; c < cols; c++) x[i * cols + c] *= t->scale[c];
}

static lb_status scale_undo(const lb_xform *t, float *w, int64_t rows, int64_t cols)
{
    scale_apply(t, w, rows, cols);
    return LB_OK;
}

static bool scale_same(const lb_xform *a, const lb_xform *b, int64_t cols) { return a->scale == b->scale; }

static size_t scale_bytes(const lb_xform *t, int64_t cols) { return (size_t)cols * sizeof(float); }

/* w <- w R on a weight row (w^T <- R^T w^T): the undo, offline. Each output
 * is a double sum over j in order, rounded once to float. */
static void rot_row_undo(const float *R, float *w, int64_t n)
{
    float y[LB_XFORM_ROT_MAX];
    for (int64_t i = 0; i < n; i++) {
        double a = 0;
        for (int64_t j = 0; j < n; j++) a += (double)R[j * n + i] * w[j];
        y[i] = (float)a;
    }
    memcpy(w, y, sizeof(float) * (size_t)n);
}

/* x <- R x for one token: the undo's arithmetic (each output a double sum
 * over j in order, rounded once to float), 8 outputs per pass over x so the
 * 8 sums run as independent chains instead of one latency-bound chain: the
 * same bits, 1.5-2.2x the tokens/s of one chain (eval of a dartquant
 * tinystories-656k file, load 14). */
static void rot_row8(const float *R, float *x, int64_t n)
{
    float y[LB_XFORM_ROT_MAX];
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        double a[8] = {0};
        const float *r = R + i * n;
        for (int64_t j = 0; j < n; j++) {
            double xj = x[j];
            for (int k = 0; k < 8; k++) a[k] += (double)r[k * n + j] * xj;
        }
        for (int k = 0; k < 8; k++) y[i + k] = (float)a[k];
    }
    for (; i < n; i++) {
        double a = 0;
        for (int64_t j = 0; j < n; j++) a += (double)R[i * n + j] * x[j];
        y[i] = (float)a;
    }
    memcpy(x, y, sizeof(float) * (size_t)n);
}

static void rot_apply(const lb_xform *t, float *x, int64_t nt, int64_t cols)
{
    LB_ASSERT(cols <= LB_XFORM_ROT_MAX);
    for (int64_t i = 0; i < nt; i++) rot_row8(t->rot, x + i * cols, cols);
}

static lb_status rot_undo(const lb_xform *t, float *w, int64_t rows, int64_t cols)
{
    if (cols > LB_XFORM_ROT_MAX)
        return lb__err(LB_ERR_ARG, "rotation of %lld columns: at most %d", (long long)cols, LB_XFORM_ROT_MAX);
    for (int64_t r = 0; r < rows; r++) rot_row_undo(t->rot, w + r * cols, cols);
    return LB_OK;
}

static bool rot_same(const lb_xform *a, const lb_xform *b, int64_t cols)
{
    return a->rot == b->rot || !memcmp(a->rot, b->rot, sizeof(float) * (size_t)(cols * cols));
}

static size_t rot_bytes(const lb_xform *t, int64_t cols) { return sizeof(float) * (size_t)(cols * cols); }

static const xform_ops ops[LB_XFORM_COUNT] = {
    [LB_XFORM_HADAMARD] = {"hadamard", hadamard_apply, hadamard_undo, hadamard_same, hadamard_bytes},
    [LB_XFORM_COL_SCALE] = {"col_scale", scale_apply, scale_undo, scale_same, scale_bytes},
    [LB_XFORM_ROTATION] = {"rotation", rot_apply, rot_undo, rot_same, rot_bytes},
};

void lb__xform_apply(const lb_xform *t, float *x, int64_t nt, int64_t cols) { ops[t->kind].apply(t, x, nt, cols); }

lb_status lb__xform_undo(const lb_xform *t, float *w, int64_t rows, int64_t cols)
{
    return ops[t->kind].undo(t, w, rows, cols);
}

bool lb__xform_same(const lb_xform *a, const lb_xform *b, int64_t cols)
{
    return a->kind == b->kind && ops[a->kind].same(a, b, cols);
}

size_t lb__xform_bytes(const lb_xform *t, int64_t cols) { return ops[t->kind].bytes(t, cols); }
