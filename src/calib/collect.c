/* collect.c: running calibration tokens through a model layer by layer and
 * accumulating the statistics of every linear input (calib.h).
 *
 * The tokens are cut into sequences of ctx (the last may be shorter), each
 * run from position 0. The runner stores the residual stream of every token
 * (n_tokens x dim floats, a second one for the quantized path) and moves it
 * through one layer per call with lb__session_layer; the forward pass's tap
 * copies each site's input for one sequence (ctx x width floats) into a
 * capture buffer, from which the statistics are accumulated:
 *   H[i][j] += x_t[i] * x_t[j]   for t in token order, in double
 * (each product of two floats is exact in double; accum_avx2.c is the same
 * chain of additions per element, bit for bit). One parallel-for per
 * sequence covers every matrix: the pool's slices take groups of 4 rows
 * (group g together with its mirror, so the upper-triangle work is
 * balanced); every element is summed by one thread in token order, so the
 * result does not depend on the thread count. Symmetric matrices are
 * summed for j >= the group's first row and mirrored at the end. Sums become means (/ n_tokens) and H is
 * mirrored when the layer is done. The runner also keeps a sample of each
 * site's float-path rows (token g when g % stride == 0, stride =
 * ceil(n_tokens / LB_CALIB_ROWS)) for methods that need the activations
 * themselves (DartQuant's Whip loss); an lb_calib keeps only the statistics. */
#include "calib/calib.h"
#include <math.h>

struct lb__calib_run {
    const lb_model *m;
    lb_session *s;               /* the float model, one sequence at a time */
    lb_pool *pool;               /* accumulation */
    lb_session_opts so;
    int64_t n_tok, ctx, n_seq, dim, next;
    int64_t nd[LB_SITE_COUNT];   /* site widths */
    float *x, *xq;               /* (n_tok, dim) residual streams (float path, quantized path or NULL) */
    float *tmp;                  /* (ctx, dim) */
    int64_t lq;                  /* layers the quantized stream went through */
    float *cap[2][LB_SITE_COUNT];/* (ctx, width) one sequence's inputs: float path, quantized path */
    double *capd[2][LB_SITE_COUNT]; /* the same widened to double (exact) */
    int64_t cap_rows[LB_SITE_COUNT];
    int cap_which;
    lb__calib_site st[LB_SITE_COUNT];  /* the current layer's sums */
    float *rows[LB_SITE_COUNT];  /* (LB_CALIB_ROWS, width) the current layer's sampled rows */
    int64_t stride;
};

static const char *site_names[LB_SITE_COUNT] = {"qkv", "o", "gateup", "down"};
const char *lb__calib_site_name(lb_site s) { return (unsigned)s < LB_SITE_COUNT ? site_names[s] : "?"; }

void lb__calib_site_dims(const lb_config *c, int64_t n[LB_SITE_COUNT])
{
    n[LB_SITE_QKV] = c->dim;
    n[LB_SITE_O] = c->n_heads * c->head_dim;
    n[LB_SITE_GATEUP] = c->dim;
    n[LB_SITE_DOWN] = c->hidden_dim;
}

lb_status lb__calib_site_alloc(lb__calib_site *s, int64_t n, bool seq)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    size_t nn = sizeof(double) * (size_t)(n * n), n1 = sizeof(double) * (size_t)n;
    s->H = lb__zalloc(nn);
    s->sq = lb__zalloc(n1);
    s->abs = lb__zalloc(n1);
    s->amax = lb__zalloc(n1);
    bool ok = s->H && s->sq && s->abs && s->amax;
    if (seq) {
        s->Hq = lb__zalloc(nn);
        s->Hqx = lb__zalloc(nn);
        ok = ok && s->Hq && s->Hqx;
    }
    if (!ok) { lb__calib_site_free(s); return LB_ERR_NOMEM; }
    return LB_OK;
}

void lb__calib_site_free(lb__calib_site *s)
{
    if (!s) return;
    LB_FREE(s->H); LB_FREE(s->sq); LB_FREE(s->abs); LB_FREE(s->amax); LB_FREE(s->Hq); LB_FREE(s->Hqx);
    memset(s, 0, sizeof *s);
}

static void site_zero(lb__calib_site *s)
{
    size_t nn = sizeof(double) * (size_t)(s->n * s->n), n1 = sizeof(double) * (size_t)s->n;
    memset(s->H, 0, nn);
    memset(s->sq, 0, n1); memset(s->abs, 0, n1); memset(s->amax, 0, n1);
    if (s->Hq) { memset(s->Hq, 0, nn); memset(s->Hqx, 0, nn); }
}

/* ---- accumulation */

#define ACC_ROWS 4               /* rows per kernel call */

typedef struct acc_mat {
    double *M;                   /* (n, n) sums */
    const double *a, *b;         /* (T, n): M[i][j] += a[t][i] * b[t][j] */
    int64_t n, T;
    bool sym;                    /* a == b: only j >= the group's first row (mirrored at the end) */
    lb__calib_acc_fn rows;
} acc_mat;

void lb__calib_acc_rows_ref(double *M, const double *a, const double *b, int64_t n, int64_t T, int64_t i0,
                            int64_t nr, int64_t j0)
{
    for (int64_t i = i0; i < i0 + nr; i++) {
        double *h = M + i * n;
        for (int64_t t = 0; t < T; t++) {
            double ai = a[t * n + i];
            const double *bt = b + t * n;
            for (int64_t j = j0; j < n; j++) h[j] += ai * bt[j];
        }
    }
}

lb__calib_acc_fn lb__calib_acc_rows(void)
{
    return lb_isa_active() >= LB_ISA_AVX2 && lb__cpu_has_avx2() ? lb__calib_acc_rows_avx2 : lb__calib_acc_rows_ref;
}

static void acc_group(const acc_mat *m, int64_t g, int64_t t0, int64_t T)
{
    int64_t i0 = g * ACC_ROWS, nr = lb__min64(ACC_ROWS, m->n - i0);
    m->rows(m->M, m->a + t0 * m->n, m->b + t0 * m->n, m->n, T, i0, nr, m->sym ? i0 : 0);
}

/* All the matrices of one sequence in one parallel-for: slice s of S takes
 * the units u = s, s + S, ... of every matrix, a unit being row group u and
 * its mirror G-1-u (equal work under symmetry), tokens in chunks. Every
 * element is still summed by one call chain in token order, so the slicing
 * (the thread count) does not change a bit. */
typedef struct acc_job {
    acc_mat m[3 * LB_SITE_COUNT];
    int n_m;
    int64_t S;
} acc_job;

static void acc_slices(void *ctx, int64_t b, int64_t e, int thread)
{
    const acc_job *j = ctx;
    for (int64_t sl = b; sl < e; sl++)
        for (int k = 0; k < j->n_m; k++) {
            const acc_mat *m = &j->m[k];
            int64_t G = (m->n + ACC_ROWS - 1) / ACC_ROWS, U = (G + 1) / 2;
            for (int64_t t0 = 0; t0 < m->T; t0 += LB__CALIB_ACC_TOKENS) {
                int64_t T = lb__min64(LB__CALIB_ACC_TOKENS, m->T - t0);
                for (int64_t u = sl; u < U; u += j->S) {
                    acc_group(m, u, t0, T);
                    if (G - 1 - u != u) acc_group(m, G - 1 - u, t0, T);
                }
            }
        }
}

static void acc_add(acc_job *j, double *M, const double *a, const double *b, int64_t n, int64_t T)
{
    j->m[j->n_m++] = (acc_mat){M, a, b, n, T, a == b, lb__calib_acc_rows()};
}

static void column_stats(lb__calib_site *s, const float *x, int64_t T)
{
    int64_t n = s->n;
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < n; j++) {
            double v = (double)x[t * n + j];
            s->sq[j] += v * v;
            s->abs[j] += fabs(v);
            if (fabs(v) > s->amax[j]) s->amax[j] = fabs(v);
        }
}

/* Sums -> means; the symmetric matrices mirrored. */
static void finish_site(lb__calib_site *s, int64_t N)
{
    int64_t n = s->n;
    double d = (double)N;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = i; j < n; j++) {
            s->H[i * n + j] /= d;
            s->H[j * n + i] = s->H[i * n + j];
            if (s->Hq) { s->Hq[i * n + j] /= d; s->Hq[j * n + i] = s->Hq[i * n + j]; }
        }
        s->sq[i] /= d;
        s->abs[i] /= d;
    }
    for (int64_t i = 0; s->Hqx && i < n * n; i++) s->Hqx[i] /= d;
}

/* ---- the runner */

static void on_tap(void *user, int64_t layer, lb_site site, const float *x, int64_t n_tok, int64_t cols)
{
    lb__calib_run *r = user;
    if ((unsigned)site >= LB_SITE_COUNT || cols != r->nd[site] || r->cap_rows[site] + n_tok > r->ctx) return;
    memcpy(r->cap[r->cap_which][site] + r->cap_rows[site] * cols, x, sizeof(float) * (size_t)(n_tok * cols));
    r->cap_rows[site] += n_tok;
}

void lb__calib_run_free(lb__calib_run *r)
{
    if (!r) return;
    lb_session_free(r->s);
    lb_pool_free(r->pool);
    LB_FREE(r->x); LB_FREE(r->xq); LB_FREE(r->tmp);
    for (int k = 0; k < LB_SITE_COUNT; k++) {
        LB_FREE(r->cap[0][k]); LB_FREE(r->cap[1][k]); LB_FREE(r->capd[0][k]); LB_FREE(r->capd[1][k]);
        LB_FREE(r->rows[k]);
        lb__calib_site_free(&r->st[k]);
    }
    LB_FREE(r);
}

int64_t lb__calib_run_tokens(const lb__calib_run *r) { return r ? r->n_tok : 0; }
int64_t lb__calib_run_ctx(const lb__calib_run *r) { return r ? r->ctx : 0; }

static lb_status run_alloc(lb__calib_run *r, bool seq)
{
    size_t stream = sizeof(float) * (size_t)(r->n_tok * r->dim);
    if (!(r->x = lb__alloc(stream)) || (seq && !(r->xq = lb__alloc(stream))) ||
        !(r->tmp = lb__alloc(sizeof(float) * (size_t)(r->ctx * r->dim))))
        return LB_ERR_NOMEM;
    for (int k = 0; k < LB_SITE_COUNT; k++) {
        size_t cb = sizeof(float) * (size_t)(r->ctx * r->nd[k]);
        if (!(r->cap[0][k] = lb__alloc(cb)) || (seq && !(r->cap[1][k] = lb__alloc(cb))) ||
            !(r->capd[0][k] = lb__alloc(2 * cb)) || (seq && !(r->capd[1][k] = lb__alloc(2 * cb))) ||
            !(r->rows[k] = lb__alloc(sizeof(float) * (size_t)(LB_CALIB_ROWS * r->nd[k]))))
            return LB_ERR_NOMEM;
        lb_status s = lb__calib_site_alloc(&r->st[k], r->nd[k], seq);
        if (s) return s;
    }
    return LB_OK;
}

lb_status lb__calib_run_create(const lb_model *m, const int32_t *tokens, int64_t n_tokens, const lb_calib_opts *o,
                               bool seq, lb__calib_run **out)
{
    *out = NULL;
    lb_calib_opts def = {0};
    if (!o) o = &def;
    if (n_tokens <= 0 || !tokens) return lb__err(LB_ERR_ARG, "calibration: no tokens");
    int64_t ctx = o->ctx > 0 ? o->ctx : lb__min64(128, m->cfg.max_seq);
    if (ctx > m->cfg.max_seq)
        return lb__err(LB_ERR_ARG, "calibration: ctx %lld exceeds the model's %lld positions", (long long)ctx,
                       (long long)m->cfg.max_seq);
    if (n_tokens > ((int64_t)1 << 40) / lb__max64(1, m->cfg.dim))
        return lb__err(LB_ERR_ARG, "calibration: %lld tokens is too many", (long long)n_tokens);
    lb__calib_run *r = lb__zalloc(sizeof *r);
    if (!r) return LB_ERR_NOMEM;
    r->m = m;
    r->n_tok = n_tokens;
    r->ctx = lb__min64(ctx, n_tokens);
    r->n_seq = (n_tokens + r->ctx - 1) / r->ctx;
    r->stride = (n_tokens + LB_CALIB_ROWS - 1) / LB_CALIB_ROWS;
    r->dim = m->cfg.dim;
    lb__calib_site_dims(&m->cfg, r->nd);
    r->so = (lb_session_opts){.n_threads = o->n_threads, .max_ctx = r->ctx, .max_batch = r->ctx};
    lb_status s = lb_session_create(m, &r->so, &r->s);
    if (!s) s = lb_pool_create(o->n_threads, &r->pool);
    if (!s) s = run_alloc(r, seq);
    if (!s) s = lb__session_embed(r->s, tokens, n_tokens, r->x);
    if (!s && seq) memcpy(r->xq, r->x, sizeof(float) * (size_t)(n_tokens * r->dim));
    if (s) { lb__calib_run_free(r); return lb__err_prefix(s, "calibration: "); }
    lb__session_tap(r->s, on_tap, r);
    *out = r;
    return LB_OK;
}

/* Move the quantized stream through layers lq .. l-1 of qm. */
static lb_status advance_quantized(lb__calib_run *r, int64_t l, const lb_model *qm)
{
    if (r->lq == l) return LB_OK;
    lb_session *s;
    lb_status st = lb_session_create(qm, &r->so, &s);
    for (; !st && r->lq < l; r->lq++)
        for (int64_t q = 0; q < r->n_seq && !st; q++) {
            int64_t t0 = q * r->ctx, T = lb__min64(r->ctx, r->n_tok - t0);
            st = lb__session_layer(s, r->lq, r->xq + t0 * r->dim, T, 0);
        }
    lb_session_free(s);
    return st ? lb__err_prefix(st, "calibration (quantized path): ") : LB_OK;
}

static lb_status check_finite(const lb__calib_run *r, int which, int64_t l, int64_t seq, int64_t T)
{
    for (int k = 0; k < LB_SITE_COUNT; k++) {
        if (r->cap_rows[k] != T)
            return lb__err(LB_ERR_ARG, "calibration: layer %lld, site %s: the forward pass gave %lld of %lld tokens",
                           (long long)l, site_names[k], (long long)r->cap_rows[k], (long long)T);
        const float *x = r->cap[which][k];
        for (int64_t i = 0; i < T * r->nd[k]; i++)
            if (!isfinite(x[i]))
                return lb__err(LB_ERR_ARG, "calibration: layer %lld, site %s (input of %s): %s activation at token "
                               "%lld of sequence %lld%s", (long long)l, site_names[k],
                               k == LB_SITE_QKV ? "q/k/v" : k == LB_SITE_O ? "o" : k == LB_SITE_GATEUP ? "gate/up" : "down",
                               isnan(x[i]) ? "NaN" : "infinite", (long long)(i / r->nd[k]), (long long)seq,
                               which ? " (quantized path)" : "");
    }
    return LB_OK;
}

/* Run one sequence of layer l on stream (in place), capturing into cap[which]. */
static lb_status capture(lb__calib_run *r, int which, int64_t l, int64_t q, float *stream, int64_t T)
{
    r->cap_which = which;
    memset(r->cap_rows, 0, sizeof r->cap_rows);
    lb_status s = lb__session_layer(r->s, l, stream, T, 0);
    return s ? s : check_finite(r, which, l, q, T);
}

/* The sampled rows among tokens t0 .. t0+T-1 of the float-path capture. */
static void keep_rows(lb__calib_run *r, int64_t t0, int64_t T)
{
    for (int k = 0; k < LB_SITE_COUNT; k++) {
        lb__calib_site *st = &r->st[k];
        for (int64_t g = (t0 + r->stride - 1) / r->stride * r->stride; g < t0 + T && st->n_rows < LB_CALIB_ROWS;
             g += r->stride) {
            memcpy(r->rows[k] + st->n_rows * st->n, r->cap[0][k] + (g - t0) * st->n, sizeof(float) * (size_t)st->n);
            st->n_rows++;
        }
        st->rows = r->rows[k];
    }
}

lb_status lb__calib_run_layer(lb__calib_run *r, int64_t l, const lb_model *qm, lb__calib_site *out)
{
    if (l != r->next) return lb__err(LB_ERR_ARG, "calibration: layer %lld asked for, %lld expected", (long long)l,
                                     (long long)r->next);
    bool seq = r->xq != NULL;
    if (seq && !qm) return lb__err(LB_ERR_ARG, "calibration: sequential mode needs the quantized model");
    lb_status s = seq ? advance_quantized(r, l, qm) : LB_OK;
    for (int k = 0; k < LB_SITE_COUNT; k++) { site_zero(&r->st[k]); r->st[k].n_rows = 0; }
    for (int64_t q = 0; q < r->n_seq && !s; q++) {
        int64_t t0 = q * r->ctx, T = lb__min64(r->ctx, r->n_tok - t0);
        if ((s = capture(r, 0, l, q, r->x + t0 * r->dim, T))) break;
        keep_rows(r, t0, T);
        if (seq) {
            memcpy(r->tmp, r->xq + t0 * r->dim, sizeof(float) * (size_t)(T * r->dim));
            if ((s = capture(r, 1, l, q, r->tmp, T))) break;
        }
        acc_job job = {.S = lb_pool_threads(r->pool)};
        for (int k = 0; k < LB_SITE_COUNT; k++) {
            lb__calib_site *st = &r->st[k];
            const float *x = r->cap[0][k], *xq = r->cap[1][k];
            double *xd = r->capd[0][k], *xqd = r->capd[1][k];
            for (int64_t i = 0; i < T * st->n; i++) xd[i] = x[i];
            acc_add(&job, st->H, xd, xd, st->n, T);
            column_stats(st, x, T);
            if (seq) {
                for (int64_t i = 0; i < T * st->n; i++) xqd[i] = xq[i];
                acc_add(&job, st->Hq, xqd, xqd, st->n, T);
                acc_add(&job, st->Hqx, xqd, xd, st->n, T);
            }
        }
        lb_pool_for(r->pool, job.S, 1, acc_slices, &job);
    }
    if (s) return s;
    for (int k = 0; k < LB_SITE_COUNT; k++) {
        finish_site(&r->st[k], r->n_tok);
        out[k] = r->st[k];
    }
    r->next++;
    return LB_OK;
}

/* ---- lb_calib_collect */

static lb_status copy_site(lb__calib_site *d, const lb__calib_site *s)
{
    lb_status st = lb__calib_site_alloc(d, s->n, s->Hq != NULL);
    if (st) return st;
    size_t nn = sizeof(double) * (size_t)(s->n * s->n), n1 = sizeof(double) * (size_t)s->n;
    memcpy(d->H, s->H, nn);
    memcpy(d->sq, s->sq, n1); memcpy(d->abs, s->abs, n1); memcpy(d->amax, s->amax, n1);
    if (s->Hq) { memcpy(d->Hq, s->Hq, nn); memcpy(d->Hqx, s->Hqx, nn); }
    return LB_OK;
}

char *lb__calib_strdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = lb__alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

lb_calib *lb__calib_new(int64_t n_layers, int64_t dim, int64_t q_dim, int64_t hidden, int64_t vocab)
{
    lb_calib *k = lb__zalloc(sizeof *k);
    if (!k) return NULL;
    k->n_layers = n_layers; k->dim = dim; k->q_dim = q_dim; k->hidden = hidden; k->vocab = vocab;
    if (!(k->sites = lb__zalloc(sizeof *k->sites * (size_t)(n_layers * LB_SITE_COUNT)))) { LB_FREE(k); return NULL; }
    return k;
}

lb_status lb_calib_collect(const lb_model *m, const int32_t *tokens, int64_t n_tokens, const lb_calib_opts *opts,
                           lb_calib **out)
{
    LB_ARG(out, "lb_calib_collect: out is NULL");
    *out = NULL;
    LB_ARG(m, "lb_calib_collect: m is NULL");
    LB_ARG(tokens && n_tokens > 0, "lb_calib_collect: no tokens");
    lb_calib_opts def = {0};
    if (!opts) opts = &def;
    double t0 = lb_time_now();
    lb__calib_run *r;
    lb_status s = lb__calib_run_create(m, tokens, n_tokens, opts, false, &r);
    if (s) return s;
    const lb_config *g = &m->cfg;
    lb_calib *c = lb__calib_new(g->n_layers, g->dim, g->n_heads * g->head_dim, g->hidden_dim, g->vocab_size);
    if (!c) s = LB_ERR_NOMEM;
    for (int64_t l = 0; !s && l < m->cfg.n_layers; l++) {
        lb__calib_site st[LB_SITE_COUNT];
        s = lb__calib_run_layer(r, l, NULL, st);
        for (int k = 0; !s && k < LB_SITE_COUNT; k++) s = copy_site(&c->sites[l * LB_SITE_COUNT + k], &st[k]);
        if (!s && opts->progress) opts->progress(l + 1, m->cfg.n_layers, "layers", opts->progress_user);
    }
    if (!s) {
        c->n_tokens = n_tokens;
        c->ctx = lb__calib_run_ctx(r);
        c->fingerprint = lb__calib_fingerprint(m);
        c->model = lb__calib_strdup(m->path);
        c->text = lb__calib_strdup(opts->text);
        c->text_begin = opts->text_begin;
        c->text_end = opts->text_end;
        if ((m->path && !c->model) || (opts->text && !c->text)) s = LB_ERR_NOMEM;
    }
    lb__calib_run_free(r);
    if (s) { lb_calib_free(c); return s; }
    c->seconds = lb_time_now() - t0;
    *out = c;
    return LB_OK;
}
