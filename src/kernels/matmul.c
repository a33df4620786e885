/* matmul.c: the reference matmul/matvec (the specification of the canonical
 * summation order described in kernels.h), run-time dispatch between the
 * reference, AVX2 and AVX-512 paths, and the multithreaded driver that splits
 * work by output rows. Every output element is one canonical dot product, so
 * tiling, threading and ISA never change a bit of the result. */
#include "kernels/kernels.h"
#include <math.h>

static inline float weight_elem(const lb_mat *w, const void *row, int64_t c)
{
    switch (w->dtype) {
    case LB_DTYPE_F16: return lb_f16_to_f32(((const uint16_t *)row)[c]);
    case LB_DTYPE_BF16: return lb_bf16_to_f32(((const uint16_t *)row)[c]);
    default: return ((const float *)row)[c];
    }
}

/* One canonical dot: row of w (any dtype, as F32) with x. */
static float dot_row_ref(const lb_mat *w, const void *row, const float *x, int64_t n)
{
    float s[LB_DOT_LANES] = {0};
    for (int64_t i = 0; i < n; i += LB_DOT_LANES)
        for (int j = 0; j < LB_DOT_LANES; j++) {
            int64_t k = i + j;
            float a = k < n ? weight_elem(w, row, k) : 0.0f, b = k < n ? x[k] : 0.0f;
            s[j] = fmaf(a, b, s[j]);
        }
    for (int h = LB_DOT_LANES / 2; h >= 1; h /= 2)
        for (int j = 0; j < h; j++) s[j] += s[j + h];
    return s[0];
}

void lb__matmul_rows_ref(const lb_mat *w, int64_t r0, int64_t r1, const float *x, int64_t nt, int64_t xs,
                         float *y, int64_t ys)
{
    size_t rb = (size_t)w->cols * lb_dtype_size(w->dtype);
    for (int64_t r = r0; r < r1; r++) {
        const void *row = (const uint8_t *)w->data + (size_t)r * rb;
        for (int64_t t = 0; t < nt; t++) y[t * ys + r] = dot_row_ref(w, row, x + t * xs, w->cols);
    }
}

float lb__dot_ref(const float *a, const float *b, int64_t n)
{
    lb_mat w = {.data = a, .dtype = LB_DTYPE_F32, .rows = 1, .cols = n};
    return dot_row_ref(&w, a, b, n);
}

void lb__axpy_ref(float a, const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float p = a * x[i];
        y[i] = y[i] + p;
    }
}

void lb__dots_ref(const float *q, const float *k, int64_t ks, int64_t n, int64_t np, float *out)
{
    for (int64_t p = 0; p < np; p++) out[p] = lb__dot_ref(q, k + p * ks, n);
}

void lb__wsum_ref(const float *w, const float *v, int64_t vs, int64_t np, int64_t n, float *o)
{
    for (int64_t i = 0; i < n; i++) o[i] = 0.0f;
    for (int64_t p = 0; p < np; p++) lb__axpy_ref(w[p], v + p * vs, o, n);
}

static const lb_kernels k_ref = {lb__matmul_rows_ref, lb__dot_ref, lb__axpy_ref, lb__dots_ref, lb__wsum_ref};
static const lb_kernels k_avx2 = {lb__matmul_rows_avx2, lb__dot_avx2, lb__axpy_avx2, lb__dots_avx2, lb__wsum_avx2};
static const lb_kernels k_avx512 = {lb__matmul_rows_avx512, lb__dot_avx512, lb__axpy_avx512, lb__dots_avx512,
                                    lb__wsum_avx512};

const lb_kernels *lb__kernels_for(lb_isa isa)
{
    if (isa > lb_isa_best()) isa = lb_isa_best();
    switch (isa) {
    case LB_ISA_AVX512: return &k_avx512;
    case LB_ISA_AVX2: return &k_avx2;
    default: return &k_ref;
    }
}

/* lb_isa_active() is already clamped to what the CPU has. */
const lb_kernels *lb__kernels(void)
{
    switch (lb_isa_active()) {
    case LB_ISA_AVX512: return &k_avx512;
    case LB_ISA_AVX2: return &k_avx2;
    default: return &k_ref;
    }
}

typedef struct {
    const lb_kernels *k;
    const lb_mat *w;
    const float *x;
    float *y;
    int64_t nt, xs, ys;
} matmul_job;

static void matmul_task(void *ctx, int64_t b, int64_t e, int thread)
{
    const matmul_job *j = ctx;
    j->k->matmul_rows(j->w, b, e, j->x, j->nt, j->xs, j->y, j->ys);
}

void lb__matmul(lb_pool *pool, const lb_mat *w, const float *x, int64_t nt, int64_t xs, float *y, int64_t ys)
{
    matmul_job j = {lb__kernels(), w, x, y, nt, xs, ys};
    /* at least ~64K multiply-adds per thread, or waking threads costs more */
    int64_t grain = lb__max64(16, ((int64_t)1 << 16) / lb__max64(1, w->cols * nt));
    lb_pool_for(pool, w->rows, grain, matmul_task, &j);
}

typedef struct {
    const lb_kernels *k;
    int n;
    const lb_mat *const *w;
    const float *x;
    float *const *y;
    const int64_t *ys;
    int64_t nt, xs;
} matmul_n_job;

/* [b, e) indexes the concatenated rows of all the weights. */
static void matmul_n_task(void *ctx, int64_t b, int64_t e, int thread)
{
    const matmul_n_job *j = ctx;
    int64_t off = 0;
    for (int i = 0; i < j->n && off < e; i++) {
        int64_t lo = lb__max64(b, off), hi = lb__min64(e, off + j->w[i]->rows);
        if (lo < hi) j->k->matmul_rows(j->w[i], lo - off, hi - off, j->x, j->nt, j->xs, j->y[i], j->ys[i]);
        off += j->w[i]->rows;
    }
}

void lb__matmul_n(lb_pool *pool, int n, const lb_mat *const *w, const float *x, int64_t nt, int64_t xs,
                  float *const *y, const int64_t *ys)
{
    matmul_n_job j = {lb__kernels(), n, w, x, y, ys, nt, xs};
    int64_t rows = 0;
    for (int i = 0; i < n; i++) rows += w[i]->rows;
    int64_t grain = lb__max64(16, ((int64_t)1 << 16) / lb__max64(1, w[0]->cols * nt));
    lb_pool_for(pool, rows, grain, matmul_n_task, &j);
}

void lb__mat_row(const lb_mat *w, int64_t r, float *out)
{
    size_t rb = (size_t)w->cols * lb_dtype_size(w->dtype);
    const void *row = (const uint8_t *)w->data + (size_t)r * rb;
    switch (w->dtype) {
    case LB_DTYPE_F16: lb_f16_to_f32_row(row, out, w->cols); break;
    case LB_DTYPE_BF16: lb_bf16_to_f32_row(row, out, w->cols); break;
    default: memcpy(out, row, (size_t)w->cols * sizeof(float)); break;
    }
}
