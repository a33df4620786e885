/* ppl.c: perplexity over non-overlapping chunks, llama.cpp's convention by
 * default (docs/eval.md): the token stream is cut into chunks of ctx tokens
 * (a trailing partial chunk is dropped), each chunk's first token is replaced
 * by BOS and the chunk is run from an empty KV cache; with LB_SCORE_HALF the
 * positions ctx/2 .. ctx-2 are scored (each against the next token), with
 * LB_SCORE_FULL the positions 0 .. ctx-2.
 *   nll = mean(-log p), PPL = exp(nll),
 *   err(PPL) = PPL * sqrt((mean(nll_i^2) - nll^2) / (N - 1))   (llama.cpp). */
#include "eval/eval.h"
#include <math.h>

static lb_status plan_chunks(const lb_model *m, int64_t n, const lb_ppl_opts *o, lb_chunk_plan *p)
{
    if (o->ctx < 2 || o->ctx > m->cfg.max_seq)
        return lb__err(LB_ERR_ARG, "ppl: context %lld must be in [2, %lld] (the model's max positions)",
                       (long long)o->ctx, (long long)m->cfg.max_seq);
    if (n < o->ctx)
        return lb__err(LB_ERR_ARG, "ppl: the text has %lld tokens; one chunk needs ctx = %lld", (long long)n,
                       (long long)o->ctx);
    p->ctx = o->ctx;
    p->n_chunks = n / o->ctx;
    if (o->max_chunks > 0) p->n_chunks = lb__min64(p->n_chunks, o->max_chunks);
    p->scoring = o->scoring;
    p->first = o->scoring == LB_SCORE_FULL ? 0 : o->ctx / 2;
    p->rows = p->ctx - 1 - p->first;
    return LB_OK;
}

typedef struct ppl_state {
    lb_session *s;
    float *logits;      /* (ctx, vocab) */
    double *lp;         /* (vocab) */
    int32_t *run;       /* (n_chunks, ctx) tokens as run */
} ppl_state;

static void state_free(ppl_state *st)
{
    lb_session_free(st->s);
    LB_FREE(st->logits); LB_FREE(st->lp); LB_FREE(st->run);
}

static lb_status state_init(ppl_state *st, const lb_model *m, const lb_chunk_plan *p, int n_threads, const char *kv)
{
    memset(st, 0, sizeof *st);
    int64_t V = m->cfg.vocab_size;
    lb_session_opts so = {n_threads, p->ctx, lb__min64(p->ctx, 128), kv};
    lb_status s = lb_session_create(m, &so, &st->s);
    if (s) return s;
    st->logits = lb__alloc(sizeof(float) * (size_t)(p->ctx * V));
    st->lp = lb__alloc(sizeof(double) * (size_t)V);
    st->run = lb__alloc(sizeof(int32_t) * (size_t)(p->n_chunks * p->ctx));
    if (!st->logits || !st->lp || !st->run) { state_free(st); return LB_ERR_NOMEM; }
    return LB_OK;
}

lb_status lb_eval_ppl(const lb_model *m, const int32_t *tokens, int64_t n, const lb_ppl_opts *o, lb_ppl_result *r)
{
    if (r) memset(r, 0, sizeof *r);
    LB_ARG(m, "lb_eval_ppl: m is NULL");
    LB_ARG(tokens || n <= 0, "lb_eval_ppl: tokens is NULL");
    LB_ARG(o, "lb_eval_ppl: opts is NULL");
    LB_ARG(r, "lb_eval_ppl: res is NULL");
    lb_chunk_plan p;
    lb_status s = plan_chunks(m, n, o, &p);
    ppl_state st;
    if (!s) s = state_init(&st, m, &p, o->n_threads, o->kv);
    if (s) return s;
    int64_t V = m->cfg.vocab_size;
    memcpy(st.run, tokens, sizeof(int32_t) * (size_t)(p.n_chunks * p.ctx));
    if (o->bos >= 0)
        for (int64_t c = 0; c < p.n_chunks; c++) st.run[c * p.ctx] = o->bos;
    lb_base_writer w;
    bool saving = o->save_path && *o->save_path;
    if (saving) {
        lb_base_info info = {p, V, o->text_hash, {0}};
        snprintf(info.model, sizeof info.model, "%s", o->model_name ? o->model_name : "");
        s = lb__base_begin(&w, o->save_path, &info, st.run);
    }
    double nll = 0, nll2 = 0, t0 = lb_time_now();
    for (int64_t c = 0; c < p.n_chunks && !s; c++) {
        const int32_t *tk = st.run + c * p.ctx;
        lb_session_reset(st.s);
        s = lb_forward_all(st.s, tk, p.ctx, st.logits);
        for (int64_t j = p.first; j < p.ctx - 1 && !s; j++) {
            if ((s = lb__check_logits(st.logits + j * V, V, "ppl", c, j))) break;
            lb__log_softmax(st.logits + j * V, V, st.lp);
            double v = -st.lp[tk[j + 1]];
            nll += v;
            nll2 += v * v;
            if (saving) s = lb__base_put_row(&w, st.lp);
        }
        if (o->progress && !s) o->progress(c + 1, p.n_chunks, "chunks", o->progress_user);
    }
    if (saving) s = s ? (lb__base_abort(&w), s) : lb__base_commit(&w);
    state_free(&st);
    if (s) return s;
    double N = (double)(p.n_chunks * p.rows);
    r->n_chunks = p.n_chunks;
    r->n_scored = p.n_chunks * p.rows;
    r->nll = nll / N;
    r->ppl = exp(r->nll);
    double var = nll2 / N - r->nll * r->nll;
    r->ppl_err = var > 0 && N > 1 ? r->ppl * sqrt(var / (N - 1)) : 0;
    r->seconds = lb_time_now() - t0;
    r->tokens_per_s = r->seconds > 0 ? (double)(p.n_chunks * p.ctx) / r->seconds : 0;
    return LB_OK;
}
