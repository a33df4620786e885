/* kv.h: the KV cache of a session (private to liblowbit). docs/kv.md.
 *
 * One lb_kv holds, for every (layer, kv head), the tokens the cache keeps:
 * their post-RoPE keys and their values, in pages of P tokens taken from a
 * pool sized when the cache is created (nothing is allocated in the token
 * loop). A head's tokens are an ordered list of slots 0 .. n-1 (oldest
 * first) with their original positions; heads may hold different numbers of
 * tokens, and a head holds only the pages its tokens need, so the bytes held
 * follow the tokens held.
 *
 * A slot lives either in a "cold" page, in the storage policy's
 * representation (f32, f16, bf16, KIVI codes, a registry format), or in a
 * "hot" page of full-precision F32 tokens: the residual window of the R most
 * recent tokens that quantizing policies keep (KIVI). Slots are ordered cold
 * then hot.
 *
 * The cache is configured by a SPEC (docs/kv.md): stages separated by '+',
 * each a policy name with optional ':key=value,key=value' parameters, e.g.
 * "kivi:bits=4,group=32,residual=128" or "snapkv:ratio=0.5+kivi:bits=2".
 * At most one stage is a storage policy (default f32); the others are
 * eviction stages, run in order by lb__kv_compress. Every policy is one file
 * and one row of the registry (registry.c). */
#ifndef LB_KV_H
#define LB_KV_H

#include "kernels/kernels.h"

typedef struct lb_kv lb_kv;

#define LB_KV_MAX_STAGES 4
#define LB_KV_MAX_PARAMS 8
#define LB_KV_NAME_LEN 24

/* ---- policies and the SPEC */

typedef enum lb__kv_kind {
    LB_KV_STORE = 0,   /* how tokens are stored: f32, f16, kivi, ... (at most one per SPEC) */
    LB_KV_EVICT = 1,   /* which tokens are kept: a scorer or a wrapper, run by lb__kv_compress */
} lb__kv_kind;

/* One key=value parameter of a policy. A number must lie in [lo, hi] (and be
 * whole when integer); a name parameter (choices != NULL) must be one of the
 * '|'-separated choices, or any format of lowbit's registry when choices is
 * "@format". */
typedef struct lb__kv_param {
    const char *key, *help;
    double def, lo, hi;
    bool integer;
    bool hi_open;          /* the range is [lo, hi): ratio in [0, 1) */
    const char *choices;   /* NULL: a number */
    const char *def_name;  /* default of a name parameter */
} lb__kv_param;

struct lb__kv_policy;

/* One stage of a parsed SPEC: its policy and the value of every parameter
 * (defaults filled in), in the order of pol->params. */
typedef struct lb__kv_stage {
    const struct lb__kv_policy *pol;
    double val[LB_KV_MAX_PARAMS];
    char name[LB_KV_MAX_PARAMS][LB_KV_NAME_LEN];   /* name parameters ("" for numbers) */
    uint32_t given;                               /* bit i: parameter i was written in the SPEC */
} lb__kv_stage;

/* A parsed SPEC. store is the index of the storage stage (a "f32" stage is
 * appended when the text names none); text is the SPEC written back in full
 * form with every parameter (reports, JSON). */
typedef struct lb__kv_spec {
    int n;
    lb__kv_stage st[LB_KV_MAX_STAGES];
    int store;
    char text[256];
} lb__kv_spec;

/* Parse text (NULL or "": "f32") into out. opt names the option in errors
 * ("--kv", "lb_session_opts.kv"). Errors: unknown policy or parameter, a
 * value out of range, two storage stages, a repeated eviction stage. */
lb_status lb__kv_parse(const char *text, const char *opt, lb__kv_spec *out);
/* The value of parameter key of a stage (LB_ASSERT: the policy has it). */
double lb__kv_get(const lb__kv_stage *st, const char *key);
const char *lb__kv_get_name(const lb__kv_stage *st, const char *key);

/* What the cache is built for. rope_inv_freq (head_dim / 2) and
 * rope_interleaved let scorers undo or average RoPE (keys are cached after
 * RoPE). */
typedef struct lb__kv_shape {
    int64_t n_layers, n_heads, n_kv_heads, head_dim;
    int64_t max_ctx, max_batch;
    int n_threads;                 /* attend is called with thread < n_threads */
    const double *rope_inv_freq;   /* (head_dim / 2), borrowed for the cache's life */
    bool rope_interleaved;
} lb__kv_shape;

/* A storage representation (the cold pages). A page of P tokens of one
 * (layer, kv head) is page_bytes bytes: keys, values and per-page metadata,
 * at offsets the codec chooses (Quest's per-channel key min/max would be one
 * more section). Tokens are encoded either one at a time (per_token: slot by
 * slot, as they leave the residual window) or a whole page of P tokens at
 * once (page codecs: KIVI's per-channel key groups). The codec state is
 * built by setup from the stage and the shape. */
typedef struct lb__kv_codec lb__kv_codec;
typedef struct lb__kv_codec_ops {
    /* fill c (codec-private fields) for the stage and shape; LB_ERR_ARG with a
     * message naming opt when the stage cannot hold this shape */
    lb_status (*setup)(lb__kv_codec *c, const lb__kv_stage *st, const lb__kv_shape *sh, const char *opt);
    /* encode tokens [s0, s0 + n) of a page from F32 rows k, v (n x head_dim) */
    void (*encode)(const lb__kv_codec *c, uint8_t *page, int64_t s0, int64_t n, const float *k, const float *v);
    /* decode tokens [s0, s0 + n) of a page into F32 rows (either may be NULL);
     * every ISA path gives the same bits (the reference is the spec) */
    void (*decode)(const lb__kv_codec *c, const uint8_t *page, int64_t s0, int64_t n, float *k, float *v);
} lb__kv_codec_ops;

struct lb__kv_codec {
    const lb__kv_codec_ops *ops;
    int64_t hd, P;              /* head_dim, tokens per page */
    size_t page_bytes;          /* keys + values + metadata of one page */
    size_t k_off, v_off, m_off; /* section offsets inside a page */
    bool per_token;             /* false: encode whole pages only */
    int64_t residual;           /* R: full-precision recent tokens (0: none) */
    int bits, group;            /* quantizing codecs: code width, group size along the channel/token axis */
    int rot;                    /* bit 0: keys Hadamard-rotated, bit 1: values */
    const void *fmt;            /* registry format (lb_format *) of the fmt policy */
    lb_dtype half;              /* f16 / bf16 policies: LB_DTYPE_F16 or LB_DTYPE_BF16 */
    /* thinkv (mixed precision): hold = keep every token in the F32 window
     * until the first lb__kv_compress (page codecs only); tier = per-slot
     * hint of the page being encoded (1: high format), set by the cache
     * during lb__kv_retier, NULL otherwise (the codec's own rule). */
    bool hold;
    const uint8_t *tier;
    /* optional fused attention on a cold page, set by setup (attention calls
     * these instead of decoding): score = the nq query rows' scores against
     * all P slots of the page into sc + j * scs (the caller has room for P);
     * accum = o (nq rows) += sum over slots [0, n) of w[j * ws + slot] v_slot.
     * Every ISA path gives the same bits. */
    void (*score)(const lb__kv_codec *c, const uint8_t *page, const float *q, int64_t nq, float *sc, int64_t scs);
    void (*accum)(const lb__kv_codec *c, const uint8_t *page, int64_t n, const float *w, int64_t ws, int64_t nq,
                  float *o);
};

/* One row of the policy registry. */
typedef struct lb__kv_policy {
    const char *name, *summary;
    lb__kv_kind kind;
    const lb__kv_param *params;
    int n_params;
    const lb__kv_codec_ops *codec;     /* storage policies */
    /* eviction policies: queries to keep per layer (the last q_window
     * tokens' queries, before and after RoPE; 0: none) */
    int64_t q_window;
    /* eviction: scores of head (l, kvh)'s n slots (lb__kv_tokens), higher =
     * keep. Used by the default compress (keep int(n (1 - ratio)) per head)
     * when compress is NULL. */
    lb_status (*score)(const lb_kv *c, const lb__kv_stage *st, int64_t l, int64_t kvh, float *score);
    /* eviction: the whole compress step, when the policy needs more than
     * per-head top-k (per-head budgets, page-wise eviction); storage: run by
     * lb__kv_compress after the eviction stages (thinkv chooses its tiers) */
    lb_status (*compress)(lb_kv *c, const lb__kv_stage *st);
    /* extra checks of a stage against the shape and the other stages */
    lb_status (*check)(const lb__kv_stage *st, const lb__kv_spec *spec, const lb__kv_shape *sh, const char *opt);
} lb__kv_policy;

int lb__kv_policy_count(void);
const lb__kv_policy *lb__kv_policy_at(int i);
const lb__kv_policy *lb__kv_policy_find(const char *name);

/* ---- the cache */

/* Build a cache for spec (parsed) and shape; opt names the option in errors. */
lb_status lb__kv_create(const lb__kv_spec *spec, const lb__kv_shape *sh, const char *opt, lb_kv **out);
void lb__kv_free(lb_kv *c);
void lb__kv_reset(lb_kv *c);                       /* every head empty */
const lb__kv_spec *lb__kv_spec_of(const lb_kv *c);
const lb__kv_shape *lb__kv_shape_of(const lb_kv *c);

/* Append the token at position pos to layer l: k and v are kv_dim =
 * n_kv_heads * head_dim floats (post-RoPE keys). Entries of layer l at
 * positions >= pos are dropped first (a rewind: lb__session_layer runs a
 * layer again from pos; exact truncation for per-token policies without a
 * window, otherwise the earlier tokens are re-stored from their decoded
 * values as lb__kv_keep does). Never allocates. */
void lb__kv_append(lb_kv *c, int64_t l, int64_t pos, const float *k, const float *v);

/* True when a token attending with `skip` later tokens of its batch already
 * appended gets the same result as if it had been appended alone (per-token
 * storage without a residual window). Otherwise the forward pass appends and
 * attends one token at a time. */
bool lb__kv_batch_exact(const lb_kv *c);

/* out (head_dim) = softmax(q K^T / sqrt(hd)) V over the slots of head
 * (l, h / group) except the last `skip` ones; q is query head h's vector
 * (head_dim). Computed from the stored representation page by page; the same
 * bits on every ISA path and thread. thread < n_threads picks the scratch. */
void lb__kv_attend(lb_kv *c, int64_t l, int64_t h, const float *q, int64_t skip, int thread, float *out);
/* The same for nq <= n_heads / n_kv_heads query heads of kv head kvh at
 * once (q and out: nq rows of head_dim; each page is decoded once for all):
 * every row's bits equal lb__kv_attend's for that head. */
void lb__kv_attend_group(lb_kv *c, int64_t l, int64_t kvh, const float *q, int64_t nq, int64_t skip, int thread,
                         float *out);

/* Record the queries of the token at position pos for layer l (q_dim floats
 * before and after RoPE), when some stage asked for them (q_window > 0). */
bool lb__kv_wants_q(const lb_kv *c);
void lb__kv_observe_q(lb_kv *c, int64_t l, int64_t pos, const float *q_pre, const float *q_post);
/* The last n <= q_window recorded queries of layer l, oldest first, with
 * their positions: rows of q_dim floats (post-RoPE and pre-RoPE). Returns n. */
int64_t lb__kv_queries(const lb_kv *c, int64_t l, const float **q_post, const float **q_pre,
                       const int32_t **pos);

/* ---- per-head access for scorers and eviction */

int64_t lb__kv_tokens(const lb_kv *c, int64_t l, int64_t kvh);          /* slots held */
const int32_t *lb__kv_positions(const lb_kv *c, int64_t l, int64_t kvh); /* (tokens) original positions */
/* The key and value (F32, un-rotated, as the cache would attend with them)
 * of slots [s0, s0 + n) of head (l, kvh); k or v may be NULL. */
void lb__kv_read(const lb_kv *c, int64_t l, int64_t kvh, int64_t s0, int64_t n, float *k, float *v);
/* Keep only slots keep[0 .. n) (strictly increasing) of head (l, kvh) and
 * compact: freed pages go back to the pool. Kept tokens are re-stored from
 * their decoded values (exact for f32/f16/bf16; a quantized page is
 * re-quantized). */
lb_status lb__kv_keep(lb_kv *c, int64_t l, int64_t kvh, const int64_t *keep, int64_t n);
/* Keep the n_keep highest-scoring slots of head (l, kvh) (ties: the later
 * slot), in their original order. */
lb_status lb__kv_keep_top(lb_kv *c, int64_t l, int64_t kvh, const float *score, int64_t n_keep);
/* Re-store every slot of head (l, kvh) from its current values (the F32
 * window exact), encoding each cold page with the per-slot hint hi[slot]
 * (codec->tier); ends the hold of a hold codec. For the thinkv policy. */
lb_status lb__kv_retier(lb_kv *c, int64_t l, int64_t kvh, const uint8_t *hi);
/* Run every eviction stage of the SPEC in order, then the storage stage's
 * compress when it has one (thinkv), and end the hold (the compress hook). */
lb_status lb__kv_compress(lb_kv *c);

/* ---- XQuant (xquant.c; docs/kv.md "XQuant"): the storage policy "xquant"
 * (a registry row without a codec) keeps, per layer, one row per token: the
 * quantized post-norm layer input X (or, with cl=1, X minus the previous
 * layer's decoded X), and rematerializes keys and values through
 * the lb__kv_remat callback when a layer is attended. All kv heads of a layer share its
 * tokens; per-head eviction is refused. cache.c hands every call on an
 * xquant cache to the lb__xq_* functions below. */

/* fn: k, v (n rows of kv_dim each) = the post-RoPE keys and the values of
 * the n rows of x (n x dim, layer l's post-norm input) at positions pos:
 * x Wk (+ bk, k_norm, RoPE at pos) and x Wv (+ bv), computed by the forward
 * pass with its own weights and RoPE, so a rematerialized key carries the
 * bits of the key the engine would append. Called only on the thread that
 * drives the forward pass (it runs products on the pool). */
typedef void (*lb__kv_remat_fn)(void *user, int64_t l, const float *x, int64_t n, const int32_t *pos, float *k,
                                float *v);
typedef struct lb__kv_remat {
    int64_t dim;          /* width of the layer input X */
    lb__kv_remat_fn fn;
    void *user;
    /* wkv (2 kv_dim x dim) = layer l's Wk rows then Wv rows as F32 (xquant
     * rank=r computes its basis from them at creation) */
    lb_status (*weights)(void *user, int64_t l, float *wkv);
} lb__kv_remat;
/* lb__kv_create for a cache with a model behind it (rm: what xquant needs;
 * lb__kv_create passes NULL, and an xquant SPEC is then refused). */
lb_status lb__kv_create_remat(const lb__kv_spec *spec, const lb__kv_shape *sh, const lb__kv_remat *rm,
                              const char *opt, lb_kv **out);

/* True when the cache stores layer inputs: the forward pass appends X with
 * lb__kv_append_x instead of lb__kv_append. */
bool lb__kv_wants_x(const lb_kv *c);
/* Append x (dim floats), layer l's input for the token at position pos
 * (entries of layer l at positions >= pos are dropped first, as
 * lb__kv_append does). Never allocates. */
void lb__kv_append_x(lb_kv *c, int64_t l, int64_t pos, const float *x);
/* Make layer l ready to attend after its appends: XQuant decodes every held
 * row of X once and rematerializes K and V of the whole layer (one product
 * per page of tokens, shared by all kv heads); a no-op for other policies.
 * Call from the thread that drives the forward pass, before the attends. */
void lb__kv_prepare(lb_kv *c, int64_t l);
/* sc (n) <- softmax(sc / sqrt(hd)) in the engine's order (cache.c). */
void lb__kv_softmax(float *sc, int64_t n, int64_t hd);

typedef struct lb__xq lb__xq;
lb_status lb__xq_create(const lb__kv_stage *st, const lb__kv_shape *sh, const lb__kv_remat *rm, const char *opt,
                        lb__xq **out);
void lb__xq_free(lb__xq *x);
void lb__xq_reset(lb__xq *x);
void lb__xq_append(lb__xq *x, int64_t l, int64_t pos, const float *row);
void lb__xq_prepare(lb__xq *x, int64_t l);
/* lb__kv_attend_group on a prepared layer (the same arithmetic as the f32
 * cache: dots, softmax, weighted sum in slot order) */
void lb__xq_attend_group(lb__xq *x, int64_t l, int64_t kvh, const float *q, int64_t nq, int64_t skip, int thread,
                         float *out);
int64_t lb__xq_tokens(const lb__xq *x, int64_t l);
const int32_t *lb__xq_positions(const lb__xq *x, int64_t l);
/* keys and values of slots [s0, s0 + n) of kv head kvh (prepares layer l) */
void lb__xq_read(lb__xq *x, int64_t l, int64_t kvh, int64_t s0, int64_t n, float *k, float *v);
size_t lb__xq_layer_bytes(const lb__xq *x, int64_t l);   /* pages held + 4 bytes of position per token */
size_t lb__xq_pool_bytes(const lb__xq *x);
/* xquant_svd.c: U (m x r, row-major) = the left singular vectors of the r
 * largest singular values of A (m x n, row-major, double), by one-sided
 * Jacobi rotations of A's columns (n <= m; sequential double arithmetic in a
 * fixed order: the same bits everywhere). Columns for zero singular values
 * are zero. LB_ERR_NOMEM, or LB_ERR_ARG when r > min(m, n) or no convergence. */
lb_status lb__xq_svd_left(const double *A, int64_t m, int64_t n, int64_t r, float *U);

/* ---- report */

size_t lb__kv_head_bytes(const lb_kv *c, int64_t l, int64_t kvh);   /* pages held + position metadata */
typedef struct lb__kv_report {
    int64_t tokens;       /* slots held, summed over layers and kv heads */
    int64_t hot_tokens;   /* of which in the full-precision window */
    size_t bytes;         /* pages held (cold + hot) + positions */
    size_t pool_bytes;    /* the pool reserved at creation (untouched pages are not resident) */
} lb__kv_report;
void lb__kv_report_get(const lb_kv *c, lb__kv_report *r);

#endif
