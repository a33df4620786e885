/* basefile.c: the base log-probability file written by `eval ppl
 * --save-logits` and read by `eval kld`. A safetensors container (8-byte
 * little-endian header length, JSON header padded with spaces to a multiple
 * of 8, then the data):
 *   __metadata__: format "lowbit-logprobs", version "1", model, vocab, ctx,
 *                 chunks, first, scoring, text_hash (16 hex digits)
 *   tokens   I32 [chunks, ctx]          the tokens as run (BOS in place)
 *   logprobs F32 [chunks * rows, vocab] log-softmax of the scored positions,
 *            rows = ctx - 1 - first per chunk, in position order.
 * Written through lb__out_* (temporary file + rename), so a failed run never
 * leaves a partial file. Read through the safetensors reader (the two
 * tensors must tile the data section exactly: no overlap, no trailing
 * bytes), and every stored value must be finite. */
#include "eval/eval.h"
#include <inttypes.h>
#include <math.h>

void lb__log_softmax(const float *logits, int64_t n, double *out)
{
    double mx = logits[0], sum = 0;
    for (int64_t i = 1; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int64_t i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    for (int64_t i = 0; i < n; i++) out[i] = (double)logits[i] - lse;
}

lb_status lb__check_logits(const float *logits, int64_t n, const char *what, int64_t chunk, int64_t pos)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(logits[i]))
            return lb__err(LB_ERR_CORRUPT, "%s: the logit of token %lld at chunk %lld, position %lld is %s (non-finite "
                           "weights or an overflow in the model; lowbit inspect reports non-finite weights)", what,
                           (long long)i, (long long)chunk, (long long)pos, isnan(logits[i]) ? "NaN" : "infinite");
    return LB_OK;
}

uint64_t lb_eval_text_hash(const void *text, size_t len)
{
    const uint8_t *p = text;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; p && i < len; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void header_json(lb_buf *b, const lb_base_info *in)
{
    const lb_chunk_plan *p = &in->plan;
    size_t tok_bytes = (size_t)(p->n_chunks * p->ctx) * 4;
    size_t lp_bytes = (size_t)(p->n_chunks * p->rows * in->vocab) * 4;
    lb__buf_printf(b, "{\"__metadata__\":{\"format\":\"lowbit-logprobs\",\"version\":\"1\",\"model\":");
    lb__buf_json_str(b, in->model);
    lb__buf_printf(b, ",\"vocab\":\"%lld\",\"ctx\":\"%lld\",\"chunks\":\"%lld\",\"first\":\"%lld\",\"scoring\":\"%s\","
                      "\"text_hash\":\"%016" PRIx64 "\"},",
                   (long long)in->vocab, (long long)p->ctx, (long long)p->n_chunks, (long long)p->first,
                   p->scoring == LB_SCORE_FULL ? "full" : "half", in->text_hash);
    lb__buf_printf(b, "\"tokens\":{\"dtype\":\"I32\",\"shape\":[%lld,%lld],\"data_offsets\":[0,%zu]},",
                   (long long)p->n_chunks, (long long)p->ctx, tok_bytes);
    lb__buf_printf(b, "\"logprobs\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}}",
                   (long long)(p->n_chunks * p->rows), (long long)in->vocab, tok_bytes, tok_bytes + lp_bytes);
    while (b->len % 8) lb__buf_put(b, " ", 1);
}

lb_status lb__base_begin(lb_base_writer *w, const char *path, const lb_base_info *info, const int32_t *tokens)
{
    memset(w, 0, sizeof *w);
    w->vocab = info->vocab;
    lb_buf b = {0};
    header_json(&b, info);
    if (b.failed) { lb__buf_free(&b); return lb__err(LB_ERR_NOMEM, "%s: out of memory", path); }
    lb_status s = lb__out_open(path, &w->out);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)b.len >> (8 * i));
    if (!s) s = lb__out_write(&w->out, len, 8);
    if (!s) s = lb__out_write(&w->out, b.data, b.len);
    if (!s) s = lb__out_write(&w->out, tokens, (size_t)(info->plan.n_chunks * info->plan.ctx) * 4);
    lb__buf_free(&b);
    if (s && w->out.f) lb__out_abort(&w->out);
    return s;
}

lb_status lb__base_put_row(lb_base_writer *w, const double *lp)
{
    float buf[1024];
    for (int64_t i = 0; i < w->vocab; i += 1024) {
        int64_t k = lb__min64(1024, w->vocab - i);
        for (int64_t j = 0; j < k; j++) buf[j] = (float)lp[i + j];
        lb_status s = lb__out_write(&w->out, buf, (size_t)k * 4);
        if (s) return s;
    }
    return LB_OK;
}

lb_status lb__base_commit(lb_base_writer *w) { return lb__out_commit(&w->out); }
void lb__base_abort(lb_base_writer *w) { if (w->out.f) lb__out_abort(&w->out); }

/* ---- reading */

static bool meta_int(const lb_st_file *f, const char *key, int64_t *v)
{
    const char *s = lb__st_meta(f, key);
    char *end;
    if (!s || !*s) return false;
    long long x = strtoll(s, &end, 10);
    if (*end || x < 0) return false;
    *v = x;
    return true;
}

/* Tensor `name` with its dtype and 2-D shape; the container reader has
 * already checked that the tensors tile the data section exactly. */
static lb_status tensor(const lb_st_file *f, const char *name, lb_dtype dtype, int64_t d0, int64_t d1,
                        const void **data)
{
    const lb_st_tensor *t = lb__st_find(f, name);
    if (!t || t->dtype != dtype || t->ndim != 2)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' missing or not %s 2-D", f->what, name, lb_dtype_name(dtype));
    if (t->shape[0] != d0 || t->shape[1] != d1)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is [%lld, %lld], the metadata says [%lld, %lld]", f->what, name,
                       (long long)t->shape[0], (long long)t->shape[1], (long long)d0, (long long)d1);
    if ((uintptr_t)t->data % 4)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is not 4-byte aligned in the file", f->what, name);
    *data = t->data;
    return LB_OK;
}

static lb_status parse_meta(const lb_st_file *f, lb_base_info *in)
{
    const char *path = f->what, *fmt = lb__st_meta(f, "format"), *ver = lb__st_meta(f, "version");
    const char *sc = lb__st_meta(f, "scoring"), *th = lb__st_meta(f, "text_hash"), *model = lb__st_meta(f, "model");
    lb_chunk_plan *p = &in->plan;
    if (!fmt || strcmp(fmt, "lowbit-logprobs"))
        return lb__err(LB_ERR_FORMAT, "%s: not a lowbit base log-probability file (see eval ppl --save-logits)", path);
    if (!ver || strcmp(ver, "1")) return lb__err(LB_ERR_UNSUPPORTED, "%s: version %s not supported", path, ver ? ver : "?");
    if (!meta_int(f, "vocab", &in->vocab) || !meta_int(f, "ctx", &p->ctx) || !meta_int(f, "chunks", &p->n_chunks) ||
        !meta_int(f, "first", &p->first) || !sc || !th || strlen(th) != 16 || in->vocab < 1 || p->ctx < 2 ||
        p->n_chunks < 1 || p->first > p->ctx - 2 || p->ctx > ((int64_t)1 << 24) || in->vocab > ((int64_t)1 << 24) ||
        p->n_chunks > ((int64_t)1 << 40) / p->ctx)
        return lb__err(LB_ERR_FORMAT, "%s: metadata incomplete or out of range", path);
    p->scoring = strcmp(sc, "full") ? LB_SCORE_HALF : LB_SCORE_FULL;
    p->rows = p->ctx - 1 - p->first;
    in->text_hash = strtoull(th, NULL, 16);
    snprintf(in->model, sizeof in->model, "%s", model ? model : "");
    return LB_OK;
}

/* Every stored log-probability must be finite: one NaN would make every
 * statistic of eval kld NaN. */
static lb_status check_finite(const lb_base_file *f)
{
    const lb_chunk_plan *p = &f->info.plan;
    int64_t V = f->info.vocab;
    for (int64_t r = 0; r < p->n_chunks * p->rows; r++)
        for (int64_t v = 0; v < V; v++) {
            float x = f->logprobs[r * V + v];
            if (!isfinite(x))
                return lb__err(LB_ERR_CORRUPT, "%s: log-probability %s at chunk %lld, position %lld, token %lld",
                               f->st.what, isnan(x) ? "NaN" : "infinite", (long long)(r / p->rows),
                               (long long)(p->first + r % p->rows), (long long)v);
        }
    return LB_OK;
}

lb_status lb__base_open(const char *path, lb_base_file *f)
{
    memset(f, 0, sizeof *f);
    lb_status s = lb__st_open(path, &f->st);
    if (s) return s;
    const void *tok = NULL, *lp = NULL;
    const lb_chunk_plan *p = &f->info.plan;
    s = parse_meta(&f->st, &f->info);
    if (!s && f->st.n_tensors != 2)
        s = lb__err(LB_ERR_FORMAT, "%s: %lld tensors; a base file holds exactly 'tokens' and 'logprobs'", path,
                    (long long)f->st.n_tensors);
    if (!s) s = tensor(&f->st, "tokens", LB_DTYPE_I32, p->n_chunks, p->ctx, &tok);
    if (!s) s = tensor(&f->st, "logprobs", LB_DTYPE_F32, p->n_chunks * p->rows, f->info.vocab, &lp);
    f->tokens = tok;
    f->logprobs = lp;
    if (!s) s = check_finite(f);
    if (s) lb__base_close(f);
    return s;
}

void lb__base_close(lb_base_file *f)
{
    lb__st_close(&f->st);
    memset(f, 0, sizeof *f);
}
