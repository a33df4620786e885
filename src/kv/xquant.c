/* xquant.c: the "xquant" storage policy (XQuant, Tomar et al. 2025, arXiv
 * 2508.10395). Instead of keys and values the cache holds, per layer, one
 * row per token: the post-norm layer input X (the input of Wq, Wk, Wv; dim
 * values) quantized per token. When a layer is attended (lb__xq_prepare,
 * after its appends) every held row is decoded once and K = X^ Wk (+ bk,
 * k_norm, RoPE at the token's position) and V = X^ Wv (+ bv) are
 * rematerialized by the forward pass's callback (lb__kv_remat: the engine's
 * own products and RoPE), one product over all the layer's tokens shared by
 * every kv head; attention then runs the f32 cache's arithmetic (canonical
 * dots, the engine's softmax, the weighted sum in slot order) on those rows.
 *
 * Row of X (bits):
 *   2, 3, 4, 8  asymmetric min-max in groups of G = min(group, dim) channels
 *               along dim, KIVI's value arithmetic (lb__kivi_quant_group:
 *               F16 scale and min, codes from the F16 values); row = codes
 *               (dim b / 8 bytes, a b-bit little-endian stream), scales
 *               (dim / G F16), mins (dim / G F16);
 *   32          F32: lossless, the rematerialized keys and values are the
 *               engine's own (logits bit-identical to the f32 cache);
 *   0           the registry format `format` (lb_format_quantize of one row
 *               of dim), then its F32 tensor scale for NV formats.
 * cl=1 (XQuant-CL): layer 0 stores X_0, layer l > 0 stores the difference
 * D_l = X_l - X^_(l-1) from the previous layer's decoded input of the same
 * token, and X^_l = X^_(l-1) + D^_l (the value the encoder subtracted, so
 * errors do not accumulate along the chain). The accumulator `acc` keeps X^
 * of the last layer decoded: in the forward pass's layer order each layer
 * decodes its own rows once; any other order restarts the chain at layer 0.
 *
 * Pages: P rows of one layer (row_bytes each), from a pool of n_layers
 * ceil(max_ctx / P) pages reserved at creation (nothing allocated in the
 * token loop, untouched pages never resident). Bytes of a layer holding T
 * tokens: ceil(T / P) P row_bytes + 4 T (positions). Working memory, rebuilt
 * at every prepare and not part of the cache: X^ and the accumulator
 * (max_ctx, dim) and one layer's K and V (max_ctx, kv_dim). All kv heads of
 * a layer hold the layer's tokens: eviction stages are refused (check). */
#include "kv/codec.h"

typedef struct xq_layer {
    int32_t *pos;      /* (max_ctx) positions of the rows, ascending */
    int32_t *pages;    /* (max_pages) page ids */
    int64_t n;         /* rows held */
    int32_t n_pages;
} xq_layer;

struct lb__xq {
    int64_t L, nkv, hd, kv_dim, dim, max_ctx, P, qgroup;
    int64_t w;                   /* values per stored row: dim, or the rank r */
    float *U, *Ut;               /* rank r: (n_layers, dim, r) U_r of [Wk Wv] and its transpose (n_layers, r, dim) */
    float *zb;                   /* rank r: (max_ctx, r) decoded latent rows */
    int bits, G, gsh;            /* min-max rows: code width, channels per group, log2 G */
    bool cl;
    const lb_format *fmt;        /* bits = 0 */
    bool ts;                     /* fmt keeps an F32 tensor scale per row */
    size_t rb, row_bytes, page_bytes;
    int64_t max_pages, cap, n_free;
    xq_layer *layers;
    int32_t *ids, *free_ids;
    uint8_t *pool;
    float *xh, *acc, *kb, *vb;   /* (max_ctx, dim) x2, (max_ctx, kv_dim) x2 */
    float *gs, *gm, *tmp;        /* (w / G) widened scales and mins, (dim) a difference or latent row */
    uint16_t *g16;               /* (2 w / G) scales and mins of one row, aligned copies */
    float *scratch;              /* per thread: scores (qgroup, max_ctx) */
    int64_t sc_stride;
    int64_t ready_l, ready_n;    /* kb, vb hold layer ready_l's ready_n rows (-1: none) */
    int64_t acc_l, acc_n;        /* acc holds X^ of layer acc_l, rows [0, acc_n) (-1: none) */
    lb__kv_remat_fn remat;
    void *user;
};

static uint8_t *row_at(const lb__xq *x, const xq_layer *y, int64_t i)
{
    return x->pool + (size_t)y->pages[i / x->P] * x->page_bytes + (size_t)(i % x->P) * x->row_bytes;
}

/* ---- one row */

static void encode_row(const lb__xq *x, const float *v, uint8_t *dst)
{
    if (x->bits == 32) { memcpy(dst, v, sizeof(float) * (size_t)x->w); return; }
    if (x->fmt) {
        float ts = 1;
        lb_status e = lb_format_quantize(x->fmt, NULL, v, 1, x->w, dst, &ts);
        LB_ASSERT(!e);
        if (x->ts) memcpy(dst + x->rb, &ts, sizeof ts);
        return;
    }
    int64_t ng = x->w / x->G;
    size_t codes = (size_t)(x->w * x->bits / 8);
    memset(dst, 0, codes);
    for (int64_t g = 0; g < ng; g++) {
        uint16_t s16, m16;
        lb__kivi_quant_group(v + g * x->G, x->G, 1, x->bits, &s16, &m16, dst, g * x->G, 1);
        memcpy(dst + codes + 2 * (size_t)g, &s16, 2);
        memcpy(dst + codes + 2 * (size_t)(ng + g), &m16, 2);
    }
}

static void decode_row(const lb__xq *x, const uint8_t *src, float *out)
{
    if (x->bits == 32) { memcpy(out, src, sizeof(float) * (size_t)x->w); return; }
    if (x->fmt) {
        float ts = 1;
        if (x->ts) memcpy(&ts, src + x->rb, sizeof ts);
        lb_status e = lb_format_dequantize(x->fmt, src, ts, 1, x->w, out);
        LB_ASSERT(!e);
        return;
    }
    const lb__kv_kernels *K = lb__kv_kernels_active();
    int64_t ng = x->w / x->G;
    size_t codes = (size_t)(x->w * x->bits / 8);
    memcpy(x->g16, src + codes, sizeof(uint16_t) * (size_t)(2 * ng));
    K->f16(x->g16, ng, x->gs);
    K->f16(x->g16 + ng, ng, x->gm);
    K->dq(src, x->bits, x->w, x->gs, x->gm, x->gsh, out);
}

/* Rows [0, n) of layer l as stored (X, a cl difference, a latent row) into out (n x w). */
static void decode_rows(const lb__xq *x, int64_t l, int64_t n, float *out)
{
    const xq_layer *y = &x->layers[l];
    LB_ASSERT(n <= y->n);
    for (int64_t i = 0; i < n; i++) decode_row(x, row_at(x, y, i), out + i * x->w);
}

/* XQuant-CL: acc rows [0, n) = X^ of layer l, continuing from layer l - 1
 * when acc holds it, else chaining from layer 0. */
static void ensure_acc(lb__xq *x, int64_t l, int64_t n)
{
    if (x->acc_l == l && x->acc_n >= n) return;
    int64_t l0 = l > 0 && x->acc_l == l - 1 && x->acc_n >= n ? l : 0, m = n * x->dim;
    for (int64_t j = l0; j <= l; j++) {
        LB_ASSERT(x->layers[j].n >= n);   /* cl: every layer holds the tokens of the layers after it */
        decode_rows(x, j, n, j ? x->xh : x->acc);
        if (j)
            for (int64_t i = 0; i < m; i++) x->acc[i] = x->acc[i] + x->xh[i];
    }
    x->acc_l = l;
    x->acc_n = n;
}

/* ---- creation */

static lb_status alloc_all(lb__xq *x, int n_threads)
{
    int64_t L = x->L, mc = x->max_ctx, ng = x->w / x->G;
    x->cap = L * x->max_pages;
    x->layers = lb__zalloc(sizeof(xq_layer) * (size_t)L);
    x->ids = lb__alloc(sizeof(int32_t) * (size_t)(L * (mc + x->max_pages)));
    x->free_ids = lb__alloc(sizeof(int32_t) * (size_t)x->cap);
    x->pool = lb__alloc(x->page_bytes * (size_t)x->cap);
    x->xh = lb__alloc_aligned(sizeof(float) * (size_t)(mc * x->dim));
    x->acc = lb__alloc_aligned(sizeof(float) * (size_t)(mc * x->dim));
    x->kb = lb__alloc_aligned(sizeof(float) * (size_t)(mc * x->kv_dim));
    x->vb = lb__alloc_aligned(sizeof(float) * (size_t)(mc * x->kv_dim));
    x->gs = lb__alloc(sizeof(float) * (size_t)ng);
    x->gm = lb__alloc(sizeof(float) * (size_t)ng);
    x->tmp = lb__alloc(sizeof(float) * (size_t)x->dim);
    x->g16 = lb__alloc(sizeof(uint16_t) * (size_t)(2 * ng));
    if (x->w < x->dim) {
        x->U = lb__alloc(sizeof(float) * (size_t)(L * x->dim * x->w));
        x->Ut = lb__alloc(sizeof(float) * (size_t)(L * x->dim * x->w));
        x->zb = lb__alloc_aligned(sizeof(float) * (size_t)(mc * x->w));
        if (!x->U || !x->Ut || !x->zb) return LB_ERR_NOMEM;
    }
    x->sc_stride = (x->qgroup * mc + 15) & ~(int64_t)15;
    x->scratch = lb__alloc_aligned(sizeof(float) * (size_t)(x->sc_stride * n_threads));
    if (!x->layers || !x->ids || !x->free_ids || !x->pool || !x->xh || !x->acc || !x->kb || !x->vb || !x->gs ||
        !x->gm || !x->tmp || !x->g16 || !x->scratch)
        return LB_ERR_NOMEM;
    for (int64_t l = 0; l < L; l++) {
        x->layers[l].pos = x->ids + l * (mc + x->max_pages);
        x->layers[l].pages = x->layers[l].pos + mc;
    }
    lb__xq_reset(x);
    return LB_OK;
}

/* What the model must offer: the callback (and the weights for rank); the
 * stored row width w (dim, or the rank) a multiple of 8 and of the group for
 * min-max rows, of the block of a registry format. */
static lb_status check_model(const lb__kv_stage *st, const lb__kv_remat *rm, const char *opt)
{
    int64_t r = (int64_t)lb__kv_get(st, "rank"), b = (int64_t)lb__kv_get(st, "bits");
    if (!rm || !rm->fn || rm->dim <= 0 || (r && !rm->weights))
        return lb__err(LB_ERR_ARG, "%s: xquant rematerializes K and V from the layer input with the model's Wk and "
                       "Wv: this cache has no model behind it", opt);
    if (r > rm->dim)
        return lb__err(LB_ERR_ARG, "%s: xquant rank=%lld exceeds dim %lld", opt, (long long)r, (long long)rm->dim);
    int64_t w = r ? r : rm->dim, G = lb__min64((int64_t)lb__kv_get(st, "group"), w);
    const char *what = r ? "rank" : "dim";
    if (b > 0 && b < 32 && (w % 8 || w % G))
        return lb__err(LB_ERR_ARG, "%s: xquant: %s %lld must be a multiple of 8 and of the group %lld", opt, what,
                       (long long)w, (long long)G);
    const char *fname = lb__kv_get_name(st, "format");
    int64_t blk = lb_format_block(lb_format_find(fname));
    if (b == 0 && blk > 0 && w % blk)
        return lb__err(LB_ERR_ARG, "%s: xquant format=%s: %s %lld is not a multiple of its block %lld", opt, fname,
                       what, (long long)w, (long long)blk);
    return LB_OK;
}

/* rank r: U_r of every layer's [Wk; Wv]^T (dim x 2 kv_dim), from the
 * model's weights (xquant_svd.c), and its transpose. */
static lb_status build_basis(lb__xq *x, const lb__kv_remat *rm)
{
    int64_t d = x->dim, n = 2 * x->kv_dim, r = x->w;
    float *wkv = lb__alloc(sizeof(float) * (size_t)(n * d));
    double *a = lb__alloc(sizeof(double) * (size_t)(n * d));
    lb_status s = !wkv || !a ? LB_ERR_NOMEM : LB_OK;
    for (int64_t l = 0; l < x->L && !s; l++) {
        if ((s = rm->weights(rm->user, l, wkv))) break;
        for (int64_t i = 0; i < d; i++)   /* A = W^T: column j is output feature j */
            for (int64_t j = 0; j < n; j++) a[i * n + j] = wkv[j * d + i];
        float *U = x->U + l * d * r, *Ut = x->Ut + l * d * r;
        if ((s = lb__xq_svd_left(a, d, n, r, U))) break;
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < r; j++) Ut[j * d + i] = U[i * r + j];
    }
    LB_FREE(wkv);
    LB_FREE(a);
    return s;
}

lb_status lb__xq_create(const lb__kv_stage *st, const lb__kv_shape *sh, const lb__kv_remat *rm, const char *opt,
                        lb__xq **out)
{
    *out = NULL;
    lb_status s = check_model(st, rm, opt);
    if (s) return s;
    lb__xq *x = lb__zalloc(sizeof *x);
    if (!x) return LB_ERR_NOMEM;
    if ((s = lb__kv_page_param(st, opt, &x->P))) { LB_FREE(x); return s; }
    x->L = sh->n_layers; x->nkv = sh->n_kv_heads; x->hd = sh->head_dim; x->kv_dim = x->nkv * x->hd;
    x->dim = rm->dim; x->max_ctx = sh->max_ctx; x->qgroup = sh->n_heads / sh->n_kv_heads;
    x->w = lb__kv_get(st, "rank") > 0 ? (int64_t)lb__kv_get(st, "rank") : x->dim;
    if (x->w < x->dim && x->w > 2 * x->kv_dim) {
        LB_FREE(x);
        return lb__err(LB_ERR_ARG, "%s: xquant rank=%lld exceeds the rank bound 2 kv_dim = %lld of [Wk Wv] (rank=%lld "
                       "is already exact)", opt, (long long)lb__kv_get(st, "rank"), (long long)(2 * sh->n_kv_heads *
                       sh->head_dim), (long long)(2 * sh->n_kv_heads * sh->head_dim));
    }
    x->bits = (int)lb__kv_get(st, "bits");
    x->G = (int)lb__min64((int64_t)lb__kv_get(st, "group"), x->w);
    while ((1 << x->gsh) < x->G) x->gsh++;
    x->cl = lb__kv_get(st, "cl") != 0;
    x->remat = rm->fn;
    x->user = rm->user;
    if (x->bits == 0) {
        x->fmt = lb_format_find(lb__kv_get_name(st, "format"));
        x->ts = lb_format_uses_tensor_scale(x->fmt) != 0;
        x->rb = lb_format_row_bytes(x->fmt, x->w);
        x->row_bytes = x->rb + (x->ts ? sizeof(float) : 0);
    } else if (x->bits == 32) {
        x->row_bytes = sizeof(float) * (size_t)x->w;
    } else {
        x->row_bytes = (size_t)(x->w * x->bits / 8) + sizeof(uint16_t) * (size_t)(2 * (x->w / x->G));
    }
    x->page_bytes = x->row_bytes * (size_t)x->P;
    x->max_pages = (x->max_ctx + x->P - 1) / x->P;
    if (!(s = alloc_all(x, sh->n_threads)) && x->w < x->dim) s = build_basis(x, rm);
    if (s) {
        lb__xq_free(x);
        return lb__err_prefix(s, "%s: xquant: ", opt);
    }
    *out = x;
    return LB_OK;
}

void lb__xq_free(lb__xq *x)
{
    if (!x) return;
    LB_FREE(x->layers); LB_FREE(x->ids); LB_FREE(x->free_ids); LB_FREE(x->pool);
    lb__free_aligned(x->xh); lb__free_aligned(x->acc); lb__free_aligned(x->kb); lb__free_aligned(x->vb);
    LB_FREE(x->gs); LB_FREE(x->gm); LB_FREE(x->tmp); LB_FREE(x->g16);
    LB_FREE(x->U); LB_FREE(x->Ut); lb__free_aligned(x->zb);
    lb__free_aligned(x->scratch);
    LB_FREE(x);
}

/* Free list: a stack, page 0 first, a freed page reused first. */
void lb__xq_reset(lb__xq *x)
{
    for (int64_t i = 0; i < x->cap; i++) x->free_ids[i] = (int32_t)(x->cap - 1 - i);
    x->n_free = x->cap;
    for (int64_t l = 0; l < x->L; l++) x->layers[l].n = x->layers[l].n_pages = 0;
    x->ready_l = x->acc_l = -1;
    x->ready_n = x->acc_n = 0;
}

/* ---- storing */

/* Drop the rows at positions >= pos (a layer run again from pos). */
static void truncate_layer(lb__xq *x, xq_layer *y, int64_t pos)
{
    int64_t n = y->n;
    while (n > 0 && y->pos[n - 1] >= pos) n--;
    if (n == y->n) return;
    int32_t pages = (int32_t)((n + x->P - 1) / x->P);
    for (int32_t i = pages; i < y->n_pages; i++) x->free_ids[x->n_free++] = y->pages[i];
    y->n_pages = pages;
    y->n = n;
}

void lb__xq_append(lb__xq *x, int64_t l, int64_t pos, const float *row)
{
    xq_layer *y = &x->layers[l];
    truncate_layer(x, y, pos);
    int64_t i = y->n;
    LB_ASSERT(i < x->max_ctx);
    x->ready_l = -1;
    if (x->acc_l >= l) x->acc_n = lb__min64(x->acc_n, i);   /* rows >= i of layer l change */
    if (i % x->P == 0) {
        LB_ASSERT(x->n_free > 0);
        y->pages[y->n_pages++] = x->free_ids[--x->n_free];
    }
    const float *v = row;
    if (x->w < x->dim) {   /* rank r: the latent row X U_r, canonical dots */
        const lb_kernels *K = lb__kernels();
        const float *Ut = x->Ut + l * x->dim * x->w;
        for (int64_t j = 0; j < x->w; j++) x->tmp[j] = K->dot(Ut + j * x->dim, row, x->dim);
        v = x->tmp;
    } else if (x->cl && l > 0) {
        ensure_acc(x, l - 1, i + 1);
        const float *prev = x->acc + i * x->dim;
        for (int64_t j = 0; j < x->dim; j++) x->tmp[j] = row[j] - prev[j];
        v = x->tmp;
    }
    encode_row(x, v, row_at(x, y, i));
    y->pos[i] = (int32_t)pos;
    y->n++;
}

/* ---- attention */

void lb__xq_prepare(lb__xq *x, int64_t l)
{
    const xq_layer *y = &x->layers[l];
    if ((x->ready_l == l && x->ready_n == y->n) || y->n == 0) return;
    const float *xh = x->xh;
    if (x->cl) {
        ensure_acc(x, l, y->n);
        xh = x->acc;
    } else if (x->w < x->dim) {   /* X~ = Z U_r^T, canonical dots */
        const lb_kernels *K = lb__kernels();
        const float *U = x->U + l * x->dim * x->w;
        decode_rows(x, l, y->n, x->zb);
        for (int64_t t = 0; t < y->n; t++)
            for (int64_t i = 0; i < x->dim; i++) x->xh[t * x->dim + i] = K->dot(U + i * x->w, x->zb + t * x->w, x->w);
    } else {
        decode_rows(x, l, y->n, x->xh);
    }
    x->remat(x->user, l, xh, y->n, y->pos, x->kb, x->vb);
    x->ready_l = l;
    x->ready_n = y->n;
}

void lb__xq_attend_group(lb__xq *x, int64_t l, int64_t kvh, const float *q, int64_t nq, int64_t skip, int thread,
                         float *out)
{
    const lb_kernels *K = lb__kernels();
    int64_t hd = x->hd, mc = x->max_ctx, n = x->layers[l].n - skip;
    LB_ASSERT(x->ready_l == l && x->ready_n == x->layers[l].n && nq <= x->qgroup && n > 0);
    float *sc = x->scratch + (int64_t)thread * x->sc_stride;
    const float *kr = x->kb + kvh * hd, *vr = x->vb + kvh * hd;
    for (int64_t j = 0; j < nq; j++) {
        K->dots(q + j * hd, kr, x->kv_dim, hd, n, sc + j * mc);
        lb__kv_softmax(sc + j * mc, n, hd);
        K->wsum(sc + j * mc, vr, x->kv_dim, n, hd, out + j * hd);
    }
}

/* ---- access and accounting */

int64_t lb__xq_tokens(const lb__xq *x, int64_t l) { return x->layers[l].n; }
const int32_t *lb__xq_positions(const lb__xq *x, int64_t l) { return x->layers[l].pos; }

void lb__xq_read(lb__xq *x, int64_t l, int64_t kvh, int64_t s0, int64_t n, float *k, float *v)
{
    lb__xq_prepare(x, l);
    size_t row = sizeof(float) * (size_t)x->hd;
    for (int64_t i = 0; i < n; i++) {
        if (k) memcpy(k + i * x->hd, x->kb + (s0 + i) * x->kv_dim + kvh * x->hd, row);
        if (v) memcpy(v + i * x->hd, x->vb + (s0 + i) * x->kv_dim + kvh * x->hd, row);
    }
}

size_t lb__xq_layer_bytes(const lb__xq *x, int64_t l)
{
    const xq_layer *y = &x->layers[l];
    return (size_t)y->n_pages * x->page_bytes + sizeof(int32_t) * (size_t)y->n;
}

size_t lb__xq_pool_bytes(const lb__xq *x) { return x->page_bytes * (size_t)x->cap; }

/* ---- the registry row */

static lb_status check(const lb__kv_stage *st, const lb__kv_spec *spec, const lb__kv_shape *sh, const char *opt)
{
    int64_t b = (int64_t)lb__kv_get(st, "bits"), G = (int64_t)lb__kv_get(st, "group");
    const char *fname = lb__kv_get_name(st, "format");
    lb_status s = lb__kv_check_page(st, spec, sh, opt);
    if (s) return s;
    if (b != 0 && b != 2 && b != 3 && b != 4 && b != 8 && b != 32)
        return lb__err(LB_ERR_ARG, "%s: xquant bits=%lld: X rows take 2, 3, 4 or 8 (min-max codes), 32 (F32) or 0 "
                       "(the registry format format=)", opt, (long long)b);
    if (!lb__is_pow2(G)) return lb__err(LB_ERR_ARG, "%s: xquant group=%lld is not a power of two", opt, (long long)G);
    if (b == 0 && !strcmp(fname, "ternary"))
        return lb__err(LB_ERR_ARG, "%s: xquant format=%s cannot hold X (a weight format without a fitting scale per "
                       "row)", opt, fname);
    if (lb__kv_get(st, "rank") > 0 && lb__kv_get(st, "cl") > 0)
        return lb__err(LB_ERR_ARG, "%s: xquant: cl=1 and rank: each layer's latent space has its own basis, so a "
                       "difference across layers means nothing", opt);
    for (int i = 0; i < spec->n; i++)
        if (spec->st[i].pol->kind == LB_KV_EVICT)
            return lb__err(LB_ERR_ARG, "%s: xquant cannot run with the eviction stage '%s': it keeps one row of X per "
                           "token and layer, shared by all kv heads (docs/kv.md)", opt, spec->st[i].pol->name);
    return LB_OK;
}

static const lb__kv_param params[] = {
    {"bits", "X codes: 2, 3, 4 or 8 (min-max per group along dim), 32 (F32, lossless) or 0 (format=)", 4, 0, 32,
     true, false, NULL, NULL},
    {"group", "channels of X per min-max group (a power of two, capped at dim)", 32, 8, 1 << 16, true, false, NULL,
     NULL},
    {"format", "registry format of each X row when bits=0", 0, 0, 0, false, false, "@format", "int8_ch"},
    {"cl", "1: XQuant-CL, layer l > 0 stores X minus the previous layer's decoded X", 0, 0, 1, true, false, NULL,
     NULL},
    {"rank", "GQA down-projection: store X U_r, r values (U_r: top left singular vectors of [Wk Wv]; 0: off)", 0, 0,
     1 << 16, true, false, NULL, NULL},
    LB_KV_PAGE_PARAM,
};
const lb__kv_policy lb__kv_policy_xquant = {
    .name = "xquant",
    .summary = "XQuant: the quantized layer input X per token and layer; K, V rematerialized (X Wk + RoPE, X Wv)",
    .kind = LB_KV_STORE, .params = params, .n_params = 6, .codec = NULL, .check = check};
