/* linear.c: y = W x over a batch of nt tokens for every weight, whatever
 * its representation and input transforms:
 *
 *   1. the input transforms, in order, into scratch (x' = T_k ... T_1 x;
 *      shared by weights of one call whose transforms are the same);
 *   1b. the activation format, when the weight has one (act.c): 8-bit
 *      codes for the integer kernels when weight and activation pair up
 *      (shared by the weights of one call with the same input, format,
 *      static scales and kernel order), else quantize-dequantize of x' per
 *      token (per-token or static calibrated block scales), or over
 *      the batch's tokens for a STaMP format (stamp.c);
 *   2. the product with the stored representation S: plain dense weights
 *      go to the engine's multi-matrix matmul; a representation with its
 *      own product (lossless) runs it; every other one is a row job on the
 *      pool: the rows of up to three weights laid end to end, split by
 *      output rows, each range computed by its representation's rows().
 *
 * Every representation sums in the canonical order of kernels.h, so prefill
 * and decode, every thread count and every ISA give the same bits. */
#include "weights/weights.h"
#include <stdatomic.h>

#define LINEAR_MAX_N 3

struct lb_wspace {
    float *scratch;          /* transformed inputs, kernel-order inputs, row buffers */
    void *state[8];          /* per representation (registry index), from state_create */
    /* activation quantization (only when a weight has an activation format) */
    float *ax;               /* (3, max_batch, cols) quantized-dequantized inputs */
    int8_t *aq;              /* (3, max_batch, cols) integer-kernel codes */
    float *ad;               /* (3, max_batch, cols / 32) their block scales */
    uint8_t *apk;            /* (max_batch, lb__act_row_bytes(cols)) packed rows */
    int64_t acols, abatch;
    /* STaMP (stamp.c), only when a weight has one */
    float *sz, *sT;          /* (LB__STAMP_SEG, cols) transformed rows, (LB__STAMP_SEG^2) transform */
    int64_t stn;             /* size of the transform sT holds (0: none yet) */
    int stkind;
};

static int rep_index(const lb_wrep *r)
{
    for (int i = 0; i < lb__wrep_count(); i++)
        if (lb__wrep_at(i) == r) return i;
    return -1;
}

/* Floats of scratch the products of these weights need (0 when all are plain dense). */
static size_t scratch_floats(const lb_weight *const *w, int n, int64_t max_batch, int n_threads)
{
    int64_t cols = 0;
    bool any = false;
    for (int i = 0; i < n; i++) {
        if (!w[i]->rep) continue;
        if (w[i]->rep != &lb__wrep_dense || w[i]->n_in || w[i]->act) any = true;
        cols = lb__max64(cols, lb__weight_in_cols(w[i]));
    }
    /* q, k, v inputs + decode inputs in kernel order + row buffers */
    return any ? (size_t)(cols * (3 * max_batch + 3 * 2 + n_threads)) : 0;
}

/* Buffers of the activation formats, when any weight has one. */
static lb_status act_buffers(lb_wspace *ws, const lb_weight *const *w, int n, int64_t max_batch)
{
    int64_t cols = 0;
    bool stamp = false;
    for (int i = 0; i < n; i++)
        if (w[i]->rep && w[i]->act) {
            cols = lb__max64(cols, w[i]->cols);
            stamp = stamp || w[i]->stamp.kind;
        }
    if (!cols) return LB_OK;
    if (stamp) {
        int64_t seg = lb__min64(max_batch, LB__STAMP_SEG);
        ws->sz = lb__alloc_aligned(sizeof(float) * (size_t)(seg * cols));
        ws->sT = lb__alloc_aligned(sizeof(float) * (size_t)(seg * seg));
        if (!ws->sz || !ws->sT) return LB_ERR_NOMEM;
    }
    size_t m = (size_t)(3 * max_batch * cols);
    ws->acols = cols;
    ws->abatch = max_batch;
    ws->ax = lb__alloc_aligned(m * sizeof(float));
    ws->aq = lb__alloc_aligned(m);
    ws->ad = lb__alloc_aligned((m / LB_IG_BLOCK + 1) * sizeof(float));
    ws->apk = lb__alloc_aligned((size_t)max_batch * lb__act_row_bytes(cols));
    return ws->ax && ws->aq && ws->ad && ws->apk ? LB_OK : LB_ERR_NOMEM;
}

lb_status lb__wspace_create(const lb_weight *const *w, int n, int64_t max_batch, int n_threads, lb_wspace **out)
{
    *out = NULL;
    lb_wspace *ws = lb__zalloc(sizeof *ws);
    if (!ws) return LB_ERR_NOMEM;
    size_t fl = scratch_floats(w, n, max_batch, n_threads);
    lb_status s = LB_OK;
    if (fl && !(ws->scratch = lb__alloc_aligned(sizeof(float) * fl))) s = LB_ERR_NOMEM;
    if (!s) s = act_buffers(ws, w, n, max_batch);
    LB_ASSERT(lb__wrep_count() <= (int)(sizeof ws->state / sizeof *ws->state));
    for (int i = 0; i < lb__wrep_count() && !s; i++)
        if (lb__wrep_at(i)->state_create) s = lb__wrep_at(i)->state_create(w, n, &ws->state[i]);
    if (s) { lb__wspace_free(ws); return s; }
    *out = ws;
    return LB_OK;
}

void lb__wspace_free(lb_wspace *ws)
{
    if (!ws) return;
    for (int i = 0; i < lb__wrep_count(); i++)
        if (ws->state[i]) lb__wrep_at(i)->state_free(ws->state[i]);
    lb__free_aligned(ws->scratch);
    lb__free_aligned(ws->ax);
    lb__free_aligned(ws->aq);
    lb__free_aligned(ws->ad);
    lb__free_aligned(ws->apk);
    lb__free_aligned(ws->sz);
    lb__free_aligned(ws->sT);
    LB_FREE(ws);
}

typedef struct row_job {
    lb_wjob j;
    lb_wpart p[LINEAR_MAX_N];
    int n;
} row_job;

/* Rows [b, e) of the weights laid end to end. */
static void row_task(void *ctx, int64_t b, int64_t e, int thread)
{
    const row_job *rj = ctx;
    for (int i = 0; i < rj->n; i++) {
        const lb_wpart *p = &rj->p[i];
        int64_t lo = lb__max64(b, p->row0) - p->row0, hi = lb__min64(e, p->row0 + p->w->rows) - p->row0;
        if (lo >= hi) continue;
        if (p->ba.x) {
            lb_mat m = {.data = p->w->data, .dtype = p->w->dtype, .rows = p->w->rows, .cols = p->w->cols};
            lb__bdot()(&m, lo, hi, &p->ba, rj->j.nt, p->y, p->ys);
        } else if (p->iw.f && p->w->rep == &lb__wrep_block)
            lb__igemm()(&p->iw, p->w->data, p->w->u.block.row_bytes, lo, hi, p->w->cols, &p->ia, rj->j.nt, p->y,
                        p->ys);
        else
            p->w->rep->rows(&rj->j, p, lo, hi, thread);
    }
}

/* x' = T_k ... T_1 x for each token, into dst (row stride = the stored
 * columns; the padding of a padded block weight is zeros). */
static void transform_input(const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *dst)
{
    int64_t n = w->cols, ni = lb__weight_in_cols(w);
    for (int64_t t = 0; t < nt; t++) {
        float *d = dst + t * ni;
        memcpy(d, x + t * xs, sizeof(float) * (size_t)n);
        memset(d + n, 0, sizeof(float) * (size_t)(ni - n));
        if (ni != n)
            for (int i = 0; i < w->n_in; i++) lb__xform_apply(&w->in[i], d, 1, n);
    }
    if (ni == n)
        for (int i = 0; i < w->n_in; i++) lb__xform_apply(&w->in[i], dst, nt, n);
}

static bool same_transforms(const lb_weight *a, const lb_weight *b)
{
    if (a->cols != b->cols || a->n_in != b->n_in) return false;
    for (int i = 0; i < a->n_in; i++)
        if (!lb__xform_same(&a->in[i], &b->in[i], a->cols)) return false;
    return true;
}

/* The input of part i: the caller's x, an earlier part's transformed x, or
 * x transformed into scratch at *used. */
static void part_input(row_job *rj, int i, const float *x, int64_t nt, int64_t xs, float *scratch, int64_t *used)
{
    lb_wpart *p = &rj->p[i];
    const lb_weight *w = p->w;
    int64_t ni = lb__weight_in_cols(w);
    if (!w->n_in && ni == w->cols) return;
    for (int k = 0; k < i; k++)
        if (rj->p[k].x != x && same_transforms(rj->p[k].w, w) && lb__weight_in_cols(rj->p[k].w) == ni) {
            p->x = rj->p[k].x; p->xs = rj->p[k].xs; return;
        }
    transform_input(w, x, nt, xs, scratch + *used);
    p->x = scratch + *used;
    p->xs = ni;
    *used += nt * ni;
}

/* One activation job: rows of x quantized (integer codes or simulated). */
typedef struct act_job {
    const lb_format *act;
    const float *sd;        /* static block scales (NULL: per token) */
    const float *x;
    int64_t xs, cols;
    int wbits;              /* integer codes for wbits-bit weights; 0: quantize-dequantize */
    float *ax;              /* simulated rows (row stride cols) */
    int8_t *q;
    float *d;
    uint8_t *pk;
    size_t pkb;
} act_job;

static void act_task(void *ctx, int64_t b, int64_t e, int thread)
{
    const act_job *a = ctx;
    for (int64_t t = b; t < e; t++) {
        uint8_t *pk = a->pk + (size_t)t * a->pkb;
        int8_t *q = a->q + t * a->cols;
        float *d = a->d + t * (a->cols / LB_IG_BLOCK);
        if (a->wbits && a->sd) {
            lb__act_codes_static(a->act, a->sd, a->wbits, a->x + t * a->xs, 1, a->xs, a->cols, q, a->cols, d, 0);
            continue;
        }
        if (a->wbits) {
            lb__act_codes(a->act, a->wbits, a->x + t * a->xs, 1, a->xs, a->cols, pk, a->q + t * a->cols, a->cols,
                          a->d + t * (a->cols / LB_IG_BLOCK), a->cols / LB_IG_BLOCK);
            continue;
        }
        float *y = a->ax + t * a->cols;
        if (y != a->x + t * a->xs) memcpy(y, a->x + t * a->xs, sizeof(float) * (size_t)a->cols);
        if (a->sd) lb__act_qdq_static(a->act, a->sd, y, 1, a->cols);
        else lb__act_qdq(a->act, y, 1, a->cols, pk);
    }
}

/* Whether w's activation format applies in this workspace (a workspace made
 * before the format was set has no buffers for it: FP32 inputs). */
static bool act_on(const lb_wspace *ws, const lb_weight *w)
{
    return w->act && ws->ax && w->cols <= ws->acols && (!w->stamp.kind || ws->sz);
}

static void act_run(lb_wspace *ws, lb_pool *pool, act_job *a, int64_t nt, const lb__stamp *st)
{
    LB_ASSERT(nt <= ws->abatch);
    a->pk = ws->apk;
    a->pkb = lb__act_row_bytes(ws->acols);
    if (!st->kind) {
        lb_pool_for(pool, nt, lb__max64(1, 4096 / a->cols), act_task, a);
        return;
    }
    /* STaMP: the rows copied, then transformed over tokens, quantized, transformed back */
    for (int64_t t = 0; t < nt; t++) memcpy(a->ax + t * a->cols, a->x + t * a->xs, sizeof(float) * (size_t)a->cols);
    lb__stamp_qdq(st, a->act, a->ax, nt, a->cols, ws->sz, ws->sT, &ws->stn, &ws->stkind, a->pk, a->pkb, pool);
}

/* The kernel order of the activation codes of an integer product: the
 * weight's bits for block weights, column order (8) for packed sparse rows
 * (spint: kernels/sparse.h). */
static int code_bits(const lb_wpart *p) { return p->w->rep == &lb__wrep_sparse ? 8 : p->iw.bits; }

/* ---- bf16 x bf16 (dense BF16 weights, BF16 activations): the input rows
 * rounded to BF16 once per call, in parallel over tokens, shared by the
 * parts of the same input; the rows of each part then go to lb__bdot(). */
typedef struct bf16_job {
    const float *x;
    int64_t xs, cols;
    uint16_t *out;
    _Atomic int tiny;
} bf16_job;

static void bf16_task(void *ctx, int64_t b, int64_t e, int thread)
{
    bf16_job *j = ctx;
    if (lb__bf16_act_rows(j->x, j->xs, j->cols, b, e, j->out, j->cols)) atomic_store(&j->tiny, 1);
}

static bool part_act_bf16(lb_wspace *ws, lb_pool *pool, row_job *rj, int i, int64_t nt, const float **src,
                          int64_t *aused)
{
    lb_wpart *p = &rj->p[i];
    if (!lb__act_bf16_pairs(p->w)) return false;
    for (int k = 0; k < i; k++)
        if (rj->p[k].ba.x && src[k] == p->x && rj->p[k].w->cols == p->w->cols) { p->ba = rj->p[k].ba; return true; }
    bf16_job j = {.x = p->x, .xs = p->xs, .cols = p->w->cols, .out = (uint16_t *)(ws->ax + *aused)};
    lb_pool_for(pool, nt, lb__max64(1, 4096 / p->w->cols), bf16_task, &j);
    *aused += nt * p->w->cols;   /* floats: the BF16 rows take half */
    p->ba = (lb__bact){.x = j.out, .xs = p->w->cols, .tiny = atomic_load(&j.tiny)};
    return true;
}

/* The activation step of part i (its input p->x is final for the
 * transforms): integer codes or a simulated copy, shared with an earlier
 * part of the same input, format and kernel order. src[i] keeps p->x
 * before this step. */
static void part_act(lb_wspace *ws, lb_pool *pool, row_job *rj, int i, int64_t nt, const float **src, int64_t *aused)
{
    lb_wpart *p = &rj->p[i];
    const lb_weight *w = p->w;
    src[i] = p->x;
    if (!act_on(ws, w) || part_act_bf16(ws, pool, rj, i, nt, src, aused)) return;
    bool in = !w->stamp.kind && lb__act_pairs(w, &p->iw);   /* STaMP: simulated */
    for (int k = 0; k < i; k++) {
        const lb_wpart *o = &rj->p[k];
        if (src[k] != p->x || o->ba.x || o->w->act != w->act || o->w->act_sd != w->act_sd || strcmp(o->w->stamp.name, w->stamp.name) || (o->iw.f != NULL) != in || (in && code_bits(o) != code_bits(p))) continue;
        p->ia = o->ia;
        p->x = o->x;
        p->xs = o->xs;
        return;
    }
    int64_t off = *aused;
    act_job a = {.act = w->act, .sd = w->act_sd, .x = p->x, .xs = p->xs, .cols = w->cols, .wbits = in ? code_bits(p) : 0,
                 .ax = ws->ax + off, .q = ws->aq + off, .d = ws->ad + off / LB_IG_BLOCK};
    act_run(ws, pool, &a, nt, &w->stamp);
    *aused += nt * w->cols;
    if (in) {
        p->ia = (lb__iact){.q = a.q, .d = a.d, .qs = w->cols, .ds = w->cols / LB_IG_BLOCK};
        p->kern = (lb__qkern){0};
    } else {
        p->x = a.ax;
        p->xs = w->cols;
    }
}

/* Decode inputs in the order a block kernel wants, once per distinct input. */
static void kernel_input(row_job *rj, int i, int64_t nt, float *scratch, int64_t *used)
{
    lb_wpart *p = &rj->p[i];
    p->xk = p->x;
    p->xks = p->xs;
    if (!p->kern.perm_x) return;
    for (int k = 0; k < i; k++)
        if (rj->p[k].kern.perm_x && rj->p[k].x == p->x) { p->xk = rj->p[k].xk; p->xks = rj->p[k].xks; return; }
    int64_t ni = lb__weight_in_cols(p->w);
    for (int64_t t = 0; t < nt; t++) lb__qdot_perm_x(p->x + t * p->xs, ni, scratch + *used + t * ni);
    p->xk = scratch + *used;
    p->xks = ni;
    *used += nt * ni;
}

static void row_products(lb_wspace *ws, lb_pool *pool, int n, const lb_weight *const *w, const float *x, int64_t nt,
                         int64_t xs, float *const *y, const int64_t *ys)
{
    row_job rj = {.j = {.k = lb__kernels(), .nt = nt}, .n = n};
    int64_t rows = 0, used = 0, aused = 0;
    const float *src[LINEAR_MAX_N];
    for (int i = 0; i < n; i++) rj.j.max_cols = lb__max64(rj.j.max_cols, lb__weight_in_cols(w[i]));
    for (int i = 0; i < n; i++) {
        rj.p[i] = (lb_wpart){.w = w[i], .x = x, .xs = xs, .row0 = rows, .y = y[i], .ys = ys[i]};
        rows += w[i]->rows;
        if (w[i]->rep->prepare) w[i]->rep->prepare(w[i], nt, &rj.p[i]);
        part_input(&rj, i, x, nt, xs, ws->scratch, &used);
        part_act(ws, pool, &rj, i, nt, src, &aused);
    }
    for (int i = 0; i < n; i++) kernel_input(&rj, i, nt, ws->scratch, &used);
    rj.j.rowbuf = ws->scratch + used;
    int64_t grain = (lb__max64(8, ((int64_t)1 << 16) / lb__max64(1, rj.j.max_cols * nt)) + 7) / 8 * 8;   /* whole 8-row groups */
    lb_pool_for(pool, rows, grain, row_task, &rj);
}

/* A representation with its own product: transforms into scratch first. */
static void own_product(lb_wspace *ws, lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, int64_t xs,
                        float *y, int64_t ys)
{
    if (w->n_in) {
        transform_input(w, x, nt, xs, ws->scratch);
        x = ws->scratch;
        xs = w->cols;
    }
    if (act_on(ws, w)) {
        act_job a = {.act = w->act, .sd = w->act_sd, .x = x, .xs = xs, .cols = w->cols, .ax = ws->ax};
        act_run(ws, pool, &a, nt, &w->stamp);
        x = ws->ax;
        xs = w->cols;
    }
    w->rep->matmul(ws->state[rep_index(w->rep)], pool, w, x, nt, xs, y, ys);
}

void lb__linear_n(lb_wspace *ws, lb_pool *pool, int n, const lb_weight *const *w, const float *x, int64_t nt,
                  int64_t xs, float *const *y, const int64_t *ys)
{
    bool plain = n <= LINEAR_MAX_N, own = false;
    for (int i = 0; i < n; i++) {
        plain = plain && w[i]->rep == &lb__wrep_dense && !w[i]->n_in && !w[i]->act;
        own = own || w[i]->rep->matmul;
    }
    if (plain) {
        lb_mat m[LINEAR_MAX_N];
        const lb_mat *mp[LINEAR_MAX_N];
        for (int i = 0; i < n; i++) {
            m[i] = (lb_mat){.data = w[i]->data, .dtype = w[i]->dtype, .rows = w[i]->rows, .cols = w[i]->cols};
            mp[i] = &m[i];
        }
        lb__matmul_n(pool, n, mp, x, nt, xs, y, ys);
    } else if (own || n > LINEAR_MAX_N) {
        for (int i = 0; i < n; i++) lb__linear(ws, pool, w[i], x, nt, xs, y[i], ys[i]);
    } else
        row_products(ws, pool, n, w, x, nt, xs, y, ys);
}

void lb__linear(lb_wspace *ws, lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, int64_t xs, float *y,
                int64_t ys)
{
    if (w->rep->matmul) own_product(ws, pool, w, x, nt, xs, y, ys);
    else lb__linear_n(ws, pool, 1, &w, x, nt, xs, &y, &ys);
}
