/* kv_eval.c: the KV-cache measurement protocol (lb_eval_kv, docs/kv.md),
 * kvpress-style on small models. Chunk c is tokens [c L, (c + 1) L),
 * L = ctx + cont + 1, its first token replaced by BOS. For the f32 cache and
 * each SPEC, from an empty session: prefill tokens 0 .. ctx-1, compress, then
 * lb_forward_all over tokens ctx .. ctx+cont-1; the cont rows of logits
 * predict tokens ctx+1 .. ctx+cont. Per position:
 *   KL = sum_v p_f32(v) (log p_f32(v) - log p_spec(v)),  top-1 = same argmax,
 *   nll = -log p_spec(next token).
 * The f32 run of each chunk is made once and shared by every SPEC.
 * Quantization error: the f32 cache's keys and values of the context (the
 * model's own, unperturbed) are stored by each SPEC's storage stage alone in
 * a separate cache and read back; k_qsnr / v_qsnr = 10 log10(sum x^2 /
 * sum (x^ - x)^2) over all layers, heads and tokens of all chunks. A
 * storage stage that quantizes only when compressed (thinkv: every token
 * stays F32 until then, so the prefill is the f32 run's) is measured
 * instead on the tokens its run holds after the compression, each in the
 * format it was given, against the f32 run's keys and values at the same
 * positions (qsnr_held).
 *
 * Attention kept: the f32 run logs its queries (an observed:ratio=0 stage,
 * which evicts nothing and leaves the logits' bits alone); the cont
 * continuation queries' causal attention over the f32 cache gives, per
 * (layer, kv head), A_j = their attention to context token j, summed over
 * the group's query heads and the queries. A SPEC's run holding the
 * context positions S of a head after compression keeps
 * sum_{j in S} A_j / sum_j A_j; the oracle keeps the |S| largest A_j. Both
 * are averaged over kv heads (per layer) and layers, then over chunks.
 *
 * decode = 1 feeds the continuation one token at a time (the f32 run too),
 * so decode-time stages (every=N, paged:decode=1) compress between the
 * scored positions; the attention kept is still that of the held set right
 * after the prompt's compression. */
#include "eval/eval.h"
#include "kv/evict.h"
#include "kv/kv.h"
#include <math.h>
#include <stdlib.h>

typedef struct kv_acc {
    double kl, kl2, klmax, top1, nll, bytes, bytes_end, held;
    double kx, ke, vx, ve;   /* sum x^2 and sum err^2 of keys and values */
    double am, ao, aml[LB_KV_EVAL_LAYERS], aol[LB_KV_EVAL_LAYERS];   /* attention kept, oracle (sums over chunks) */
    int64_t n;
} kv_acc;

/* What the f32 run of a chunk leaves for the SPECs' runs. */
typedef struct ref_run {
    lb_session *s;      /* the f32 run, after its continuation (every position held) */
    double *A;          /* (layers, kv heads, ctx) attention of the continuation to the context */
} ref_run;

static int64_t argmax(const double *x, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* ref->A from the f32 run's logged queries (the last cont are the
 * continuation's) and its keys. */
static lb_status context_attention(const lb_kv *c, int64_t ctx, int64_t cont, double *A)
{
    const lb__kv_shape *sh = lb__kv_shape_of(c);
    int64_t H = sh->n_kv_heads, hd = sh->head_dim, G = sh->n_heads / H, T = ctx + cont;
    float *k = lb__alloc(sizeof(float) * (size_t)(T * hd)), *v = lb__alloc(sizeof(float) * (size_t)(T * hd));
    double *acc = lb__alloc(sizeof(double) * (size_t)(3 * T + hd));
    lb_status s = k && v && acc ? LB_OK : LB_ERR_NOMEM;
    for (int64_t l = 0; l < sh->n_layers && !s; l++) {
        const float *qpost = NULL, *qpre = NULL;
        const int32_t *qpos = NULL;
        int64_t nq = lb__kv_queries(c, l, &qpost, &qpre, &qpos);
        if (nq < cont || qpos[nq - cont] != ctx)
            s = lb__err(LB_ERR_ARG, "eval kv: layer %lld logged %lld queries, not the %lld of the continuation",
                        (long long)l, (long long)nq, (long long)cont);
        for (int64_t h = 0; h < H && !s; h++) {
            LB_ASSERT(lb__kv_tokens(c, l, h) == T);
            lb__kv_read(c, l, h, 0, T, k, v);
            lb__evict_head in = {T, hd, k, v, lb__kv_positions(c, l, h), nq, G, sh->n_heads * hd,
                                 qpost + h * G * hd, qpos, sh->rope_inv_freq, sh->rope_interleaved, 0, NULL};
            lb__evict_attend_sum(&in, nq - cont, acc, acc + T, acc + 2 * T);
            memcpy(A + (l * H + h) * ctx, acc, sizeof(double) * (size_t)ctx);
        }
    }
    LB_FREE(k); LB_FREE(v); LB_FREE(acc);
    return s;
}

/* After a SPEC's compression: the attention its held context keeps (and
 * the oracle's), and with qsnr the error of its held keys and values
 * against the f32 run's at the same positions. */
static lb_status held_stats(lb_session *sess, const ref_run *ref, int64_t ctx, bool qsnr, kv_acc *a)
{
    const lb_kv *c = lb__session_kv(sess), *rc = lb__session_kv(ref->s);
    const lb__kv_shape *sh = lb__kv_shape_of(c);
    int64_t L = sh->n_layers, H = sh->n_kv_heads, hd = sh->head_dim, Tr = lb__kv_tokens(rc, 0, 0);
    double *top = lb__alloc(sizeof(double) * (size_t)ctx);
    float *k = lb__alloc(sizeof(float) * (size_t)(Tr * hd)), *v = lb__alloc(sizeof(float) * (size_t)(Tr * hd));
    float *kr = lb__alloc(sizeof(float) * (size_t)(Tr * hd)), *vr = lb__alloc(sizeof(float) * (size_t)(Tr * hd));
    if (!top || !k || !v || !kr || !vr) {
        LB_FREE(top); LB_FREE(k); LB_FREE(v); LB_FREE(kr); LB_FREE(vr);
        return LB_ERR_NOMEM;
    }
    for (int64_t l = 0; l < L; l++)
        for (int64_t h = 0; h < H; h++) {
            const double *A = ref->A + (l * H + h) * ctx;
            const int32_t *pos = lb__kv_positions(c, l, h);
            int64_t T = lb__kv_tokens(c, l, h), n = 0;
            double tot = 0, kept = 0, best = 0;
            for (int64_t j = 0; j < ctx; j++) tot += A[j];
            for (int64_t t = 0; t < T; t++)
                if (pos[t] < ctx) kept += A[pos[t]], n++;
            memcpy(top, A, sizeof(double) * (size_t)ctx);
            qsort(top, (size_t)ctx, sizeof(double), cmp_desc);
            for (int64_t j = 0; j < n; j++) best += top[j];
            double fk = tot > 0 ? kept / tot : 1, fo = tot > 0 ? best / tot : 1;
            a->am += fk / (double)(L * H);
            a->ao += fo / (double)(L * H);
            if (l < LB_KV_EVAL_LAYERS) a->aml[l] += fk / (double)H, a->aol[l] += fo / (double)H;
            if (!qsnr) continue;
            LB_ASSERT(T <= Tr && lb__kv_tokens(rc, l, h) == Tr);
            lb__kv_read(c, l, h, 0, T, k, v);
            lb__kv_read(rc, l, h, 0, Tr, kr, vr);   /* the f32 run holds slot p = position p */
            for (int64_t t = 0; t < T; t++)
                for (int64_t i = 0; i < hd; i++) {
                    double x = kr[pos[t] * hd + i], y = vr[pos[t] * hd + i];
                    a->kx += x * x;
                    a->ke += (k[t * hd + i] - x) * (k[t * hd + i] - x);
                    a->vx += y * y;
                    a->ve += (v[t * hd + i] - y) * (v[t * hd + i] - y);
                }
        }
    LB_FREE(top); LB_FREE(k); LB_FREE(v); LB_FREE(kr); LB_FREE(vr);
    return LB_OK;
}

/* One chunk with one SPEC: logits (cont, V) of the continuation, stats.
 * keep: the session is returned after the run (the caller frees it). ref
 * (NULL for the f32 run itself): held_stats after the compression. */
static lb_status run_chunk(const lb_model *m, const lb_kv_eval_opts *o, const char *spec, const int32_t *tk,
                           int64_t ctx, int64_t cont, float *logits, lb_kv_stats *after, lb_kv_stats *end,
                           lb_session **keep, const ref_run *ref, bool qsnr, kv_acc *a)
{
    lb_session_opts so = {o->n_threads, ctx + cont, lb__min64(ctx, 128), spec};
    int64_t V = m->cfg.vocab_size;
    lb_session *s;
    lb_status st = lb_session_create(m, &so, &s);
    if (st) return st;
    st = lb_forward(s, tk, ctx, NULL);
    if (!st) st = lb_session_kv_compress(s);
    if (!st) st = lb_session_kv_stats(s, after);
    if (!st && ref) st = held_stats(s, ref, ctx, qsnr, a);
    if (!st && !o->decode) st = lb_forward_all(s, tk + ctx, cont, logits);
    for (int64_t j = 0; j < cont && o->decode && !st; j++) st = lb_forward(s, tk + ctx + j, 1, logits + j * V);
    if (!st) st = lb_session_kv_stats(s, end);
    if (keep && !st) *keep = s;
    else lb_session_free(s);
    return st;
}

/* The SPEC's storage stage quantizes only when compressed (thinkv). */
static bool quantizes_at_compress(const char *spec)
{
    lb__kv_spec sp;
    return !lb__kv_parse(spec, "kv", &sp) && sp.st[sp.store].pol->compress != NULL;
}

/* Store the first ctx tokens of the f32 cache `ref` with spec's storage
 * stage alone, read them back, add to the error sums of a. */
static lb_status quant_error(const lb_kv *ref, const char *spec, int64_t ctx, kv_acc *a)
{
    lb__kv_spec sp, one = {0};
    lb_status s = lb__kv_parse(spec, "kv", &sp);
    if (s) return s;
    if (!sp.st[sp.store].pol->codec) return LB_OK;   /* xquant stores X, not K and V: no error to measure here */
    one.n = 1;
    one.st[0] = sp.st[sp.store];
    const lb__kv_shape *sh = lb__kv_shape_of(ref);
    lb__kv_shape sh1 = *sh;
    sh1.n_threads = 1;
    lb_kv *c;
    if ((s = lb__kv_create(&one, &sh1, "kv", &c))) return s;
    int64_t hd = sh->head_dim, nh = sh->n_kv_heads, kvd = nh * hd;
    float *k = lb__alloc(sizeof(float) * (size_t)(ctx * kvd)), *v = lb__alloc(sizeof(float) * (size_t)(ctx * kvd));
    float *kr = lb__alloc(sizeof(float) * (size_t)(ctx * hd)), *vr = lb__alloc(sizeof(float) * (size_t)(ctx * hd));
    float *kt = lb__alloc(sizeof(float) * (size_t)kvd), *vt = lb__alloc(sizeof(float) * (size_t)kvd);
    if (!k || !v || !kr || !vr || !kt || !vt) s = LB_ERR_NOMEM;
    for (int64_t l = 0; l < sh->n_layers && !s; l++) {
        for (int64_t g = 0; g < nh; g++) {   /* (ctx, kv_dim) rows of layer l, as the forward pass appends them */
            lb__kv_read(ref, l, g, 0, ctx, kr, vr);
            for (int64_t t = 0; t < ctx; t++) {
                memcpy(k + t * kvd + g * hd, kr + t * hd, sizeof(float) * (size_t)hd);
                memcpy(v + t * kvd + g * hd, vr + t * hd, sizeof(float) * (size_t)hd);
            }
        }
        for (int64_t t = 0; t < ctx; t++) lb__kv_append(c, l, t, k + t * kvd, v + t * kvd);
        for (int64_t g = 0; g < nh; g++) {
            lb__kv_read(c, l, g, 0, ctx, kr, vr);
            for (int64_t t = 0; t < ctx; t++)
                for (int64_t i = 0; i < hd; i++) {
                    double x = k[t * kvd + g * hd + i], y = v[t * kvd + g * hd + i];
                    a->kx += x * x;
                    a->ke += (kr[t * hd + i] - x) * (kr[t * hd + i] - x);
                    a->vx += y * y;
                    a->ve += (vr[t * hd + i] - y) * (vr[t * hd + i] - y);
                }
        }
    }
    LB_FREE(k); LB_FREE(v); LB_FREE(kr); LB_FREE(vr); LB_FREE(kt); LB_FREE(vt);
    lb__kv_free(c);
    return s;
}

static lb_status check_opts(const lb_model *m, int64_t n, const lb_kv_eval_opts *o, int64_t *ctx, int64_t *cont)
{
    *ctx = o->ctx > 0 ? o->ctx : 384;
    *cont = o->cont > 0 ? o->cont : 64;
    if (*ctx + *cont > m->cfg.max_seq)
        return lb__err(LB_ERR_ARG, "eval kv: ctx %lld + cont %lld exceed the model's %lld positions", (long long)*ctx,
                       (long long)*cont, (long long)m->cfg.max_seq);
    if (n < *ctx + *cont + 1)
        return lb__err(LB_ERR_ARG, "eval kv: the text has %lld tokens; one chunk needs ctx + cont + 1 = %lld",
                       (long long)n, (long long)(*ctx + *cont + 1));
    if (o->n_specs <= 0 || !o->specs) return lb__err(LB_ERR_ARG, "eval kv: no SPEC to evaluate");
    for (int i = 0; i < o->n_specs; i++) {
        char full[256];
        lb_status s = lb_kv_spec_check(o->specs[i], "kv", full, sizeof full);
        if (s) return s;
    }
    return LB_OK;
}

static void score(const float *lb, const float *lt, const int32_t *next, int64_t cont, int64_t V, double *pb,
                  double *pt, kv_acc *a)
{
    for (int64_t j = 0; j < cont; j++) {
        lb__log_softmax(lb + j * V, V, pb);
        lb__log_softmax(lt + j * V, V, pt);
        double kl = 0;
        for (int64_t v = 0; v < V; v++) kl += exp(pb[v]) * (pb[v] - pt[v]);
        a->kl += kl;
        a->kl2 += kl * kl;
        a->klmax = fmax(a->klmax, kl);
        a->top1 += argmax(pb, V) == argmax(pt, V);
        a->nll += -pt[next[j]];
        a->n++;
    }
}

lb_status lb_eval_kv(const lb_model *m, const int32_t *tokens, int64_t n, const lb_kv_eval_opts *o,
                     lb_kv_eval_row *rows)
{
    LB_ARG(m && o && rows, "lb_eval_kv: model, opts or rows is NULL");
    LB_ARG(tokens || n <= 0, "lb_eval_kv: tokens is NULL");
    int64_t ctx, cont, V = m->cfg.vocab_size;
    lb_status s = check_opts(m, n, o, &ctx, &cont);
    if (s) return s;
    int64_t L = ctx + cont + 1, nc = n / L;
    if (o->max_chunks > 0) nc = lb__min64(nc, o->max_chunks);
    int ns = o->n_specs;
    float *lb = lb__alloc(sizeof(float) * (size_t)(cont * V)), *lt = lb__alloc(sizeof(float) * (size_t)(cont * V));
    double *pb = lb__alloc(sizeof(double) * (size_t)V), *pt = lb__alloc(sizeof(double) * (size_t)V);
    int32_t *tk = lb__alloc(sizeof(int32_t) * (size_t)L);
    kv_acc *acc = lb__zalloc(sizeof(kv_acc) * (size_t)(ns + 1));   /* acc[ns]: f32 */
    double *A = lb__alloc(sizeof(double) * (size_t)(m->cfg.n_layers * m->cfg.n_kv_heads * ctx));
    if (!lb || !lt || !pb || !pt || !tk || !acc || !A) s = LB_ERR_NOMEM;
    for (int64_t c = 0; c < nc && !s; c++) {
        memcpy(tk, tokens + c * L, sizeof(int32_t) * (size_t)L);
        if (o->bos >= 0) tk[0] = o->bos;
        lb_kv_stats a, e;
        ref_run ref = {NULL, A};
        /* f32 storage; the stage evicts nothing and only logs the queries */
        s = run_chunk(m, o, "observed:ratio=0", tk, ctx, cont, lb, &a, &e, &ref.s, NULL, false, NULL);
        if (!s) {
            score(lb, lb, tk + ctx + 1, cont, V, pb, pt, &acc[ns]);
            acc[ns].bytes += a.bytes_per_token;
            s = context_attention(lb__session_kv(ref.s), ctx, cont, A);
        }
        for (int i = 0; i < ns && !s; i++)
            if (!quantizes_at_compress(o->specs[i])) s = quant_error(lb__session_kv(ref.s), o->specs[i], ctx, &acc[i]);
        for (int i = 0; i < ns && !s; i++) {
            lb_kv_stats a2, e2;
            if (!(s = run_chunk(m, o, o->specs[i], tk, ctx, cont, lt, &a2, &e2, NULL, &ref,
                                quantizes_at_compress(o->specs[i]), &acc[i]))) {
                score(lb, lt, tk + ctx + 1, cont, V, pb, pt, &acc[i]);
                acc[i].bytes += a2.bytes_per_token;
                acc[i].bytes_end += e2.bytes_per_token;
                acc[i].held += (double)a2.tokens / (double)a.tokens;
            }
        }
        lb_session_free(ref.s);
        if (o->progress && !s) o->progress(c + 1, nc, "chunks", o->progress_user);
    }
    for (int i = 0; i < ns && !s; i++) {
        kv_acc *a = &acc[i];
        double N = (double)a->n, mean = a->kl / N, var = a->kl2 / N - mean * mean;
        lb_kv_eval_row *r = &rows[i];
        memset(r, 0, sizeof *r);
        lb_kv_spec_check(o->specs[i], "kv", r->spec, sizeof r->spec);
        r->n_chunks = nc;
        r->n = a->n;
        r->kld = mean;
        r->kld_err = var > 0 && N > 1 ? sqrt(var / (N - 1)) : 0;
        r->kld_max = a->klmax;
        r->top1 = a->top1 / N;
        r->ppl = exp(a->nll / N);
        r->ppl_f32 = exp(acc[ns].nll / N);
        r->bytes_per_token = a->bytes / (double)nc;
        r->bytes_per_token_end = a->bytes_end / (double)nc;
        r->f32_bytes_per_token = acc[ns].bytes / (double)nc;
        r->tokens_held = a->held / (double)nc;
        r->k_qsnr = a->ke > 0 ? 10 * log10(a->kx / a->ke) : INFINITY;
        r->v_qsnr = a->ve > 0 ? 10 * log10(a->vx / a->ve) : INFINITY;
        r->qsnr_held = quantizes_at_compress(o->specs[i]);
        r->attn_kept = a->am / (double)nc;
        r->attn_oracle = a->ao / (double)nc;
        for (int64_t l = 0; l < LB_KV_EVAL_LAYERS && l < m->cfg.n_layers; l++) {
            r->attn_kept_layer[l] = a->aml[l] / (double)nc;
            r->attn_oracle_layer[l] = a->aol[l] / (double)nc;
        }
    }
    LB_FREE(lb); LB_FREE(lt); LB_FREE(pb); LB_FREE(pt); LB_FREE(tk); LB_FREE(acc); LB_FREE(A);
    return s;
}
