/* lossless.c: the losslessly packed representation (src/lossless's BF16
 * entropy codec, docs/lossless.md): `data` is the lb_bf16_packed blob of a
 * BF16 matrix, borrowed from the mapped file and verified (every stream's
 * CRC) once at load. Products decode the matrix block by block into one
 * reusable workspace (the per-session state) right before multiplying, or,
 * with the engine's matmul, fused per thread while the decoded rows are in
 * L2; every output element is the canonical dot of the BF16 weight, so the
 * logits equal those of the unpacked model bit for bit. Resident weight
 * memory is the packed size plus the workspace (at most LB_UNPACK_WS values).
 * Vectors (norms) are decoded once at load into a dense BF16 weight. */
#include "weights/weights.h"
#include <stdatomic.h>

static const lb_bf16_packed *blob_of(const lb_weight *w) { return w->data; }

/* Values a fused sub-block aims at: 32K BF16 values (64 KiB), NSEG per
 * thread, so decoded rows are still in L2 when the kernel reads them. */
#define FUSED_SUB ((int64_t)1 << 15)
/* Segments (cursors read side by side) per thread. */
#define NSEG 4

struct lb_unpacker {
    uint16_t *ws;         /* (cap) decoded BF16 rows of one block (other matmuls) */
    int64_t cap, cols;    /* cols: the widest packed matrix */
    uint16_t *fws;        /* (fthreads * NSEG * fsub) the fused path's sub-blocks */
    int64_t *cut;         /* (fthreads * NSEG + 1) segment boundaries of one product */
    int64_t fsub;
    int fthreads;
};

lb_status lb__unpacker_create(const lb_weight *const *w, int n, int64_t cap, lb_unpacker **out)
{
    *out = NULL;
    int64_t big = 0, cols = 0;
    for (int i = 0; i < n; i++)
        if (w[i]->rep == &lb__wrep_lossless) {
            big = lb__max64(big, w[i]->rows * w[i]->cols);
            cols = lb__max64(cols, w[i]->cols);
        }
    if (!big) return LB_OK;
    lb_unpacker *u = lb__zalloc(sizeof *u);
    if (!u) return LB_ERR_NOMEM;
    u->cap = lb__max64(cap > 0 ? cap : lb__min64(big, LB_UNPACK_WS), cols);
    u->cols = cols;
    u->fsub = lb__max64(lb__min64(u->cap, FUSED_SUB), cols);
    u->ws = lb__alloc_aligned(sizeof *u->ws * (size_t)u->cap);
    if (!u->ws) { LB_FREE(u); return LB_ERR_NOMEM; }
    *out = u;
    return LB_OK;
}

void lb__unpacker_free(lb_unpacker *u)
{
    if (!u) return;
    lb__free_aligned(u->ws);
    lb__free_aligned(u->fws);
    LB_FREE(u->cut);
    LB_FREE(u);
}

/* Decode a block of rows into the workspace, multiply it with mm (any
 * matmul with lb__matmul's contract), next block. */
static void blockwise_matmul(lb_unpacker *u, lb_matmul_fn mm, lb_pool *pool, const lb_weight *w, const float *x,
                             int64_t nt, int64_t xs, float *y, int64_t ys)
{
    int64_t block = u->cap / w->cols;
    LB_ASSERT(block >= 1);
    for (int64_t r0 = 0; r0 < w->rows; r0 += block) {
        int64_t nr = lb__min64(block, w->rows - r0);
        lb_status s = lb_bf16_unpack_range(blob_of(w), r0 * w->cols, nr * w->cols, u->ws, LB_UNPACK_NOVERIFY, pool);
        LB_ASSERT(s == LB_OK); /* the whole tensor was verified at load */
        lb_mat sub = {.data = u->ws, .dtype = LB_DTYPE_BF16, .rows = nr, .cols = w->cols};
        mm(pool, &sub, x, nt, xs, y + r0, ys);
    }
}

/* The fused path (mm == lb__matmul): the rows are cut into NSEG segments
 * per thread at rows starting right after a stream boundary (so a segment
 * decodes at most one row's worth of exponents it does not use). Each
 * thread reads its segments with NSEG cursors side by side (their chunks
 * decode interleaved: more table lookups in flight), a sub-block of whole
 * rows of each at a time into its own small buffers, and runs the
 * single-threaded BF16 row kernel on each sub-block while it is in L2: one
 * pool job per matrix, decoded values never leave the core's caches, and
 * every output is the same canonical dot product lb__matmul computes. */
typedef struct {
    const lb_unpacker *u;
    const lb_kernels *k;
    lb__merge_fn merge;
    const lb_weight *w;
    const float *x;
    float *y;
    int64_t nt, xs, ys;
    const int64_t *cut;   /* (NSEG * jobs + 1) segment boundaries, in rows */
    _Atomic int bad;
} fused_job;

static void fused_task(void *ctx, int64_t b, int64_t e, int thread)
{
    fused_job *j = ctx;
    const lb_weight *w = j->w;
    int64_t cols = w->cols, rsub = j->u->fsub / cols;
    for (int64_t i = b; i < e; i++) {
        lb__cursor cur[NSEG], *c[NSEG];
        uint16_t *buf[NSEG];
        int64_t row[NSEG], end[NSEG], cnt[NSEG];
        for (int h = 0; h < NSEG; h++) {
            c[h] = &cur[h];
            buf[h] = j->u->fws + ((size_t)thread * NSEG + (size_t)h) * (size_t)j->u->fsub;
            row[h] = j->cut[NSEG * i + h];
            end[h] = j->cut[NSEG * i + h + 1];
            lb__cursor_init(c[h], blob_of(w), row[h] * cols, end[h] * cols, j->merge);
        }
        for (;;) {
            bool more = false;
            for (int h = 0; h < NSEG; h++) {
                cnt[h] = lb__min64(rsub, end[h] - row[h]) * cols;
                more |= cnt[h] > 0;
            }
            if (!more) break;
            lb__cursor_read(NSEG, c, buf, cnt);
            for (int h = 0; h < NSEG; h++) {
                int64_t n = cnt[h] / cols;
                if (!n) continue;
                lb_mat sub = {.data = buf[h], .dtype = LB_DTYPE_BF16, .rows = n, .cols = cols};
                j->k->matmul_rows(&sub, 0, n, j->x, j->nt, j->xs, j->y + row[h], j->ys);
                row[h] += n;
            }
        }
        for (int h = 0; h < NSEG; h++) if (!lb__cursor_finish(c[h])) atomic_store(&j->bad, 1);
    }
}

/* Per-thread sub-block buffers for `threads` threads; false when they
 * cannot be had (the caller then goes block by block). */
static bool fused_buffers(lb_unpacker *u, int threads)
{
    if (u->fthreads >= threads) return true;
    uint16_t *f = lb__alloc_aligned(sizeof *f * NSEG * (size_t)u->fsub * (size_t)threads);
    int64_t *cut = lb__alloc(sizeof *cut * (NSEG * (size_t)threads + 1));
    if (!f || !cut) {
        lb__free_aligned(f);
        LB_FREE(cut);
        return false;
    }
    lb__free_aligned(u->fws);
    LB_FREE(u->cut);
    u->fws = f;
    u->cut = cut;
    u->fthreads = threads;
    return true;
}

/* Row where segment boundary k of nseg falls: the first row that starts at
 * or after the stream boundary nearest to k/nseg of the elements. */
static int64_t cut_row(const lb_weight *w, int64_t k, int64_t nseg)
{
    const lb_bf16_packed *p = blob_of(w);
    int64_t n = w->rows * w->cols, target = (int64_t)((double)n * (double)k / (double)nseg);
    int64_t s = (target + p->stream_len / 2) / p->stream_len;
    int64_t e = lb__min64(s * p->stream_len, n);
    return lb__min64((e + w->cols - 1) / w->cols, w->rows);
}

void lb__unpacker_matmul(lb_unpacker *u, lb_matmul_fn mm, lb_pool *pool, const lb_weight *w, const float *x,
                         int64_t nt, int64_t xs, float *y, int64_t ys)
{
    int threads = pool ? lb_pool_threads(pool) : 1;
    if (mm != lb__matmul || w->cols > u->fsub || !fused_buffers(u, threads)) {
        blockwise_matmul(u, mm, pool, w, x, nt, xs, y, ys);
        return;
    }
    /* as many jobs as threads, but (like lb__matmul) not fewer than ~64K
     * multiply-adds each, or waking threads costs more than it saves */
    int64_t grain = lb__max64(16, ((int64_t)1 << 16) / lb__max64(1, w->cols * nt));
    int64_t jobs = lb__max64(1, lb__min64(threads, w->rows / grain));
    int64_t *cut = u->cut;
    for (int64_t k = 0; k <= NSEG * jobs; k++) cut[k] = k == NSEG * jobs ? w->rows : cut_row(w, k, NSEG * jobs);
    for (int64_t k = 1; k <= NSEG * jobs; k++) cut[k] = lb__max64(cut[k], cut[k - 1]);
    fused_job j = {u, lb__kernels(), lb__merge_pick(), w, x, y, nt, xs, ys, cut, 0};
    lb_pool_for(jobs > 1 ? pool : NULL, jobs, 1, fused_task, &j);
    LB_ASSERT(!atomic_load(&j.bad)); /* the whole tensor was verified at load */
}

/* ---- the representation */

void lb__lossless_row(const lb_weight *w, int64_t r, float *out)
{
    uint16_t buf[4096];
    for (int64_t c = 0; c < w->cols; c += 4096) {
        int64_t k = lb__min64(4096, w->cols - c);
        lb_status s = lb_bf16_unpack_range(blob_of(w), r * w->cols + c, k, buf, LB_UNPACK_NOVERIFY, NULL);
        LB_ASSERT(s == LB_OK); /* the whole tensor was verified at load */
        lb_bf16_to_f32_row(buf, out + c, k);
    }
}

static size_t lossless_bytes(const lb_weight *w) { return lb_bf16_packed_blob_size(blob_of(w)); }

static const char *lossless_describe(const lb_weight *w) { return "BF16 lossless"; }

static void lossless_matmul(void *state, lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, int64_t xs,
                            float *y, int64_t ys)
{
    lb__unpacker_matmul(state, lb__matmul, pool, w, x, nt, xs, y, ys);
}

static lb_status lossless_state(const lb_weight *const *w, int n, void **state)
{
    return lb__unpacker_create(w, n, 0, (lb_unpacker **)state);
}

static void lossless_state_free(void *state) { lb__unpacker_free(state); }

/* Decode every stream once (CRC checked) through a buffer of at most
 * 16 streams, so checking a big tensor never holds it decoded whole. */
static lb_status verify_streams(const lb_st_file *f, const lb_bf16_packed *p)
{
    int64_t group = 16, n = lb__min64(group * p->stream_len, p->n);
    uint16_t *buf = lb__alloc(sizeof *buf * (size_t)(n + 1));
    if (!buf) return LB_ERR_NOMEM;
    lb_status s = LB_OK;
    for (int64_t first = 0; !s && first < p->n_streams; first += group)
        s = lb_bf16_unpack_streams(p, first, lb__min64(group, p->n_streams - first), buf, 0, NULL);
    LB_FREE(buf);
    return s ? lb__err_prefix(s, "%s: ", f->what) : LB_OK;
}

static lb_status check_shape(const lb_st_file *f, const lb_st_tensor *t, int ndim, const int64_t *shape, bool vector,
                             int64_t rows, int64_t cols)
{
    bool ok = !vector ? ndim == 2 && shape[0] == rows && shape[1] == cols : ndim == 1 && shape[0] == rows * cols;
    if (ok) return LB_OK;
    if (vector) { cols *= rows; rows = 0; }
    return lb__err(LB_ERR_FORMAT, "%s: packed tensor '%s' has shape [%lld%s%lld] (%d dims), expected [%lld%s%lld] from config.json",
                   f->what, t->name, (long long)shape[0], ndim > 1 ? ", " : "", ndim > 1 ? (long long)shape[1] : 0LL,
                   ndim, (long long)(rows ? rows : cols), rows ? ", " : "", rows ? (long long)cols : 0LL);
}

/* A packed vector, decoded once into an owned BF16 buffer: a dense weight. */
static lb_status take_vector(lb_wsrc *src, const lb_st_file *f, lb_bf16_packed *p, lb_weight *w)
{
    uint16_t *buf = lb__wstore_alloc(src->store, sizeof *buf * (size_t)(p->n + 1));
    if (!buf) return LB_ERR_NOMEM;
    lb_status s = lb_bf16_unpack(p, buf, NULL);
    if (s) return lb__err_prefix(s, "%s: ", f->what);
    *w = lb__weight_dense(buf, LB_DTYPE_BF16, w->rows, w->cols);
    return LB_OK;
}

static void free_blob(void *p) { lb_bf16_packed_free(p); }

/* A U8 tensor of a file written by lowbit pack, listed in lowbit.lossless. */
static lb_status lossless_read(lb_wsrc *src, const char *name, const char *pre, bool vector, lb_weight *w)
{
    int fi;
    const lb_st_tensor *t = lb__wsrc_find(src, name, &fi);
    const lb_st_file *f = t ? &src->files[fi] : NULL;
    if (!t || t->dtype != LB_DTYPE_U8 || !lb__lossless_file(f)) return LB_ERR_NOTFOUND;
    lb__wsrc_take(src, name, &fi);
    int ndim;
    int64_t shape[LB_ST_MAX_DIMS] = {0}, n;
    lb_status s = lb__lossless_entry(f, t, &ndim, shape, &n);
    if (s == LB_ERR_NOTFOUND)
        return lb__err(LB_ERR_FORMAT, "%s: U8 tensor '%s' is not listed as packed in lowbit.lossless", f->what, t->name);
    if (s || (s = check_shape(f, t, ndim, shape, vector, w->rows, w->cols))) return s;
    lb_bf16_packed *p;
    if ((s = lb_bf16_packed_read(t->data, (size_t)(t->end - t->begin), t->name, LB_PACKED_BORROW, &p)))
        return lb__err_prefix(s, "%s: ", f->what);
    if (p->n != n)
        s = lb__err(LB_ERR_FORMAT, "%s: tensor '%s': blob holds %lld values, its shape %lld", f->what, t->name,
                    (long long)p->n, (long long)n);
    else if (vector) s = take_vector(src, f, p, w);
    else if (!(s = verify_streams(f, p))) {
        s = lb__wstore_keep(src->store, p, free_blob);   /* releases p on failure */
        if (!s) *w = lb__weight_lossless(p, w->rows, w->cols);
        return s;
    }
    lb_bf16_packed_free(p);
    return s;
}

static lb_status lossless_plan(const lb_weight *w, const char *name, const char *pre, bool vector, lb_wplan *p)
{
    return lb__err(LB_ERR_UNSUPPORTED, "model: '%s' is losslessly packed (lowbit pack writes such files)", name);
}

lb_weight lb__weight_lossless(const lb_bf16_packed *p, int64_t rows, int64_t cols)
{
    return (lb_weight){.rep = &lb__wrep_lossless, .rows = rows, .cols = cols, .data = p, .dtype = LB_DTYPE_BF16};
}

const lb_wrep lb__wrep_lossless = {
    .name = "lossless",
    .row = lb__lossless_row,
    .bytes = lossless_bytes,
    .describe = lossless_describe,
    .matmul = lossless_matmul,
    .state_create = lossless_state,
    .state_free = lossless_state_free,
    .read = lossless_read,
    .plan = lossless_plan,
};
