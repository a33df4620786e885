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
 * leaves a partial file. */
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

uint64_t lb_eval_text_hash(const void *text, size_t len)
{
    const uint8_t *p = text;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ull;
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

static bool meta_int(const lb_json *md, const char *key, int64_t *v)
{
    const char *s = lb__json_str(md, key);
    char *end;
    if (!s || !*s) return false;
    long long x = strtoll(s, &end, 10);
    if (*end || x < 0) return false;
    *v = x;
    return true;
}

/* Tensor `name`: dtype, 2-D shape and data range inside [0, data_size). */
static lb_status tensor(const char *path, const lb_json *h, const char *name, const char *dtype, int64_t d0,
                        int64_t d1, size_t data_size, size_t *off)
{
    const lb_json *t = lb__json_get(h, name), *sh = t ? lb__json_get(t, "shape") : NULL;
    const lb_json *of = t ? lb__json_get(t, "data_offsets") : NULL;
    const char *dt = t ? lb__json_str(t, "dtype") : NULL;
    if (!t || !dt || strcmp(dt, dtype) || !sh || sh->type != LB_JSON_ARR || sh->len != 2 || !of ||
        of->type != LB_JSON_ARR || of->len != 2)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' missing or not %s 2-D", path, name, dtype);
    double a = lb__json_at(of, 0)->num, b = lb__json_at(of, 1)->num;
    if (lb__json_at(sh, 0)->num != (double)d0 || lb__json_at(sh, 1)->num != (double)d1 || a < 0 || b < a ||
        b > (double)data_size || b - a != (double)d0 * (double)d1 * 4.0 || fmod(a, 4) != 0)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' has an inconsistent shape or data range", path, name);
    *off = (size_t)a;
    return LB_OK;
}

static lb_status parse_meta(const char *path, const lb_json *md, lb_base_info *in)
{
    const char *fmt = lb__json_str(md, "format"), *ver = lb__json_str(md, "version");
    const char *sc = lb__json_str(md, "scoring"), *th = lb__json_str(md, "text_hash"), *model = lb__json_str(md, "model");
    lb_chunk_plan *p = &in->plan;
    if (!fmt || strcmp(fmt, "lowbit-logprobs"))
        return lb__err(LB_ERR_FORMAT, "%s: not a lowbit base log-probability file (see eval ppl --save-logits)", path);
    if (!ver || strcmp(ver, "1")) return lb__err(LB_ERR_UNSUPPORTED, "%s: version %s not supported", path, ver ? ver : "?");
    if (!meta_int(md, "vocab", &in->vocab) || !meta_int(md, "ctx", &p->ctx) || !meta_int(md, "chunks", &p->n_chunks) ||
        !meta_int(md, "first", &p->first) || !sc || !th || strlen(th) != 16 || in->vocab < 1 || p->ctx < 2 ||
        p->n_chunks < 1 || p->first > p->ctx - 2 || p->ctx > ((int64_t)1 << 24) || in->vocab > ((int64_t)1 << 24))
        return lb__err(LB_ERR_FORMAT, "%s: metadata incomplete or out of range", path);
    p->scoring = strcmp(sc, "full") ? LB_SCORE_HALF : LB_SCORE_FULL;
    p->rows = p->ctx - 1 - p->first;
    in->text_hash = strtoull(th, NULL, 16);
    snprintf(in->model, sizeof in->model, "%s", model ? model : "");
    return LB_OK;
}

lb_status lb__base_open(const char *path, lb_base_file *f)
{
    memset(f, 0, sizeof *f);
    lb_status s = lb__map_file(path, &f->map);
    if (s) return s;
    const uint8_t *d = f->map.data;
    uint64_t n = 0;
    if (f->map.size >= 8)
        for (int i = 0; i < 8; i++) n |= (uint64_t)d[i] << (8 * i);
    if (f->map.size < 8 || n > f->map.size - 8 || n > (1u << 24) || (8 + n) % 4) {
        lb__base_close(f);
        return lb__err(LB_ERR_FORMAT, "%s: not a safetensors file (bad header length)", path);
    }
    lb_json *h = NULL;
    s = lb__json_parse((const char *)d + 8, (size_t)n, path, &h);
    const lb_json *md = h ? lb__json_get(h, "__metadata__") : NULL;
    if (!s && !md) s = lb__err(LB_ERR_FORMAT, "%s: no __metadata__: not a lowbit base file", path);
    if (!s) s = parse_meta(path, md, &f->info);
    size_t data_size = f->map.size - 8 - (size_t)n, to = 0, lo = 0;
    const lb_chunk_plan *p = &f->info.plan;
    if (!s) s = tensor(path, h, "tokens", "I32", p->n_chunks, p->ctx, data_size, &to);
    if (!s) s = tensor(path, h, "logprobs", "F32", p->n_chunks * p->rows, f->info.vocab, data_size, &lo);
    lb__json_free(h);
    if (s) { lb__base_close(f); return s; }
    f->tokens = (const int32_t *)(d + 8 + n + to);
    f->logprobs = (const float *)(d + 8 + n + lo);
    return LB_OK;
}

void lb__base_close(lb_base_file *f)
{
    lb__unmap(&f->map);
    memset(f, 0, sizeof *f);
}
