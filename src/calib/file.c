/* file.c: calibration statistics files, and the lookups the quantizers use.
 *
 * A statistics file is a safetensors file (docs/calib.md): one F64 tensor
 * per (layer, site, statistic), named "layers.L.SITE.STAT" with SITE in
 * qkv, o, gateup, down and STAT in H (n x n), sq, abs, amax (n), and for
 * sequential statistics Hq, Hqx (n x n); the metadata names the format
 * ("lowbit.format": "calib", "lowbit.calib_version": "1"), the model (path,
 * weight fingerprint, n_layers, dim, q_dim, hidden_dim, vocab_size), the
 * text and its byte range, n_tokens and ctx. Written through the atomic
 * safetensors writer; read back with every tensor checked (name, dtype,
 * shape, finite values) and nothing else allowed in the file. */
#include "calib/calib.h"
#include "core/safetensors.h"
#include <inttypes.h>
#include <math.h>

#define CALIB_VERSION "1"

static const char *stat_names[] = {"H", "sq", "abs", "amax", "Hq", "Hqx"};
enum { ST_H, ST_SQ, ST_ABS, ST_AMAX, ST_HQ, ST_HQX, ST_COUNT };

static double **stat_ptr(lb__calib_site *s, int k)
{
    double **p[ST_COUNT] = {&s->H, &s->sq, &s->abs, &s->amax, &s->Hq, &s->Hqx};
    return p[k];
}

static int stat_ndim(int k) { return k == ST_H || k == ST_HQ || k == ST_HQX ? 2 : 1; }

void lb_calib_free(lb_calib *c)
{
    if (!c) return;
    for (int64_t i = 0; c->sites && i < c->n_layers * LB_SITE_COUNT; i++) lb__calib_site_free(&c->sites[i]);
    LB_FREE(c->sites);
    LB_FREE(c->model);
    LB_FREE(c->text);
    LB_FREE(c);
}

void lb__calib_site_view(const lb__calib_site *s, int64_t n_tokens, lb_calib_stats *o)
{
    *o = (lb_calib_stats){.n = s->n, .n_tokens = n_tokens, .H = s->H, .sq = s->sq, .abs = s->abs,
                          .amax = s->amax, .Hq = s->Hq, .Hqx = s->Hqx, .rows = s->rows, .n_rows = s->n_rows};
}

void lb_calib_get_info(const lb_calib *c, lb_calib_info *info)
{
    if (!info) return;
    memset(info, 0, sizeof *info);
    if (!c) return;
    info->n_layers = c->n_layers; info->n_tokens = c->n_tokens; info->ctx = c->ctx;
    info->sequential = c->sequential; info->seconds = c->seconds;
    for (int64_t i = 0; i < c->n_layers * LB_SITE_COUNT; i++) {
        int64_t n = c->sites[i].n;
        info->bytes += sizeof(double) * (size_t)((c->sequential ? 3 : 1) * n * n + 3 * n);
    }
    snprintf(info->model, sizeof info->model, "%s", c->model ? c->model : "");
    snprintf(info->text, sizeof info->text, "%s", c->text ? c->text : "");
    info->text_begin = c->text_begin; info->text_end = c->text_end;
}

/* ---- names */

bool lb__calib_name_site(const char *name, int64_t *layer, lb_site *site)
{
    static const struct { const char *suffix; lb_site site; } map[] = {
        {"self_attn.q_proj.weight", LB_SITE_QKV}, {"self_attn.k_proj.weight", LB_SITE_QKV},
        {"self_attn.v_proj.weight", LB_SITE_QKV}, {"self_attn.o_proj.weight", LB_SITE_O},
        {"mlp.gate_proj.weight", LB_SITE_GATEUP}, {"mlp.up_proj.weight", LB_SITE_GATEUP},
        {"mlp.down_proj.weight", LB_SITE_DOWN},
    };
    if (!name || strncmp(name, "model.layers.", 13) || name[13] < '0' || name[13] > '9') return false;
    char *end;
    long long l = strtoll(name + 13, &end, 10);
    if (*end != '.' || l < 0) return false;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(end + 1, map[i].suffix)) {
            *layer = l;
            *site = map[i].site;
            return true;
        }
    return false;
}

lb_status lb_calib_stats_for(const lb_calib *c, const char *name, lb_calib_stats *out)
{
    LB_ARG(out, "lb_calib_stats_for: out is NULL");
    memset(out, 0, sizeof *out);
    LB_ARG(c, "lb_calib_stats_for: c is NULL");
    LB_ARG(name, "lb_calib_stats_for: name is NULL");
    int64_t l;
    lb_site k;
    if (!lb__calib_name_site(name, &l, &k) || l >= c->n_layers)
        return lb__err(LB_ERR_NOTFOUND, "calibration statistics: no linear named '%s' (the statistics cover %lld "
                       "layers)", name, (long long)c->n_layers);
    lb__calib_site_view(&c->sites[l * LB_SITE_COUNT + k], c->n_tokens, out);
    return LB_OK;
}

/* ---- fingerprint */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= UINT64_C(0x100000001b3); }
    return h;
}

static uint64_t hash_rows(uint64_t h, const lb_weight *w, float *row)
{
    if (!w->rep || w->rows <= 0) return h;
    int64_t rs[2] = {0, w->rows - 1};
    for (int i = 0; i < 2; i++) {
        lb__weight_row(w, rs[i], row);
        h = fnv(h, row, sizeof(float) * (size_t)w->cols);
    }
    return h;
}

uint64_t lb__calib_fingerprint(const lb_model *m)
{
    const lb_config *c = &m->cfg;
    int64_t w = lb__max64(lb__max64(c->dim, c->hidden_dim), c->n_heads * c->head_dim);
    float *row = lb__alloc(sizeof(float) * (size_t)w);
    if (!row) return 0;
    uint64_t h = fnv(UINT64_C(0xcbf29ce484222325), "lowbit-calib", 12);
    h = hash_rows(h, &m->tok_embed, row);
    for (int64_t l = 0; l < c->n_layers; l++) {
        const lb_layer_weights *L = &m->layers[l];
        const lb_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) h = hash_rows(h, ws[i], row);
    }
    LB_FREE(row);
    return h;
}

/* ---- save */

static lb_status meta_int(lb_st_writer *w, const char *key, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return lb__st_writer_meta(w, key, b);
}

static lb_status write_meta(lb_st_writer *w, const lb_calib *c)
{
    char fp[32];
    snprintf(fp, sizeof fp, "%016" PRIx64, c->fingerprint);
    lb_status s = lb__st_writer_meta(w, "lowbit.format", "calib");
    if (!s) s = lb__st_writer_meta(w, "lowbit.calib_version", CALIB_VERSION);
    if (!s) s = lb__st_writer_meta(w, "model", c->model ? c->model : "");
    if (!s) s = lb__st_writer_meta(w, "model_fingerprint", fp);
    if (!s) s = lb__st_writer_meta(w, "text", c->text ? c->text : "");
    const char *keys[] = {"n_layers", "dim", "q_dim", "hidden_dim", "vocab_size", "n_tokens", "ctx", "sequential",
                          "text_begin", "text_end"};
    int64_t vals[] = {c->n_layers, c->dim, c->q_dim, c->hidden, c->vocab, c->n_tokens, c->ctx, c->sequential,
                      c->text_begin, c->text_end};
    for (size_t i = 0; !s && i < sizeof keys / sizeof *keys; i++) s = meta_int(w, keys[i], vals[i]);
    return s;
}

/* Declare (write = false) or write every tensor in one fixed order. */
static lb_status each_tensor(lb_st_writer *w, const lb_calib *c, bool write)
{
    lb_status s = LB_OK;
    for (int64_t l = 0; !s && l < c->n_layers; l++)
        for (int k = 0; !s && k < LB_SITE_COUNT; k++) {
            lb__calib_site *site = &c->sites[l * LB_SITE_COUNT + k];
            for (int t = 0; !s && t < (c->sequential ? ST_COUNT : ST_HQ); t++) {
                int64_t shape[2] = {site->n, site->n};
                int nd = stat_ndim(t);
                const double *p = *stat_ptr(site, t);
                if (!p) return lb__err(LB_ERR_ARG, "lb_calib_save: layer %lld, site %s has no %s", (long long)l,
                                       lb__calib_site_name(k), stat_names[t]);
                if (write) s = lb__st_writer_write(w, p, sizeof(double) * (size_t)(nd == 2 ? site->n * site->n : site->n));
                else {
                    char name[64];
                    snprintf(name, sizeof name, "layers.%lld.%s.%s", (long long)l, lb__calib_site_name(k), stat_names[t]);
                    s = lb__st_writer_add(w, name, LB_DTYPE_F64, nd, shape);
                }
            }
        }
    return s;
}

lb_status lb_calib_save(const lb_calib *c, const char *path)
{
    LB_ARG(c, "lb_calib_save: c is NULL");
    LB_ARG(path && *path, "lb_calib_save: path is NULL or empty");
    lb_st_writer *w;
    lb_status s = lb__st_writer_open(path, &w);
    if (s) return s;
    s = write_meta(w, c);
    if (!s) s = each_tensor(w, c, false);
    if (!s) s = each_tensor(w, c, true);
    if (s) { lb__st_writer_abort(w); return s; }
    return lb__st_writer_commit(w);
}

/* ---- load */

static lb_status get_int(const lb_st_file *f, const char *path, const char *key, int64_t lo, int64_t hi, int64_t *v)
{
    const char *s = lb__st_meta(f, key);
    char *end;
    long long x = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || x < lo || x > hi)
        return lb__err(LB_ERR_FORMAT, "%s: metadata '%s' is %s (an integer in [%lld, %lld] expected)", path, key,
                       s ? "out of range" : "missing", (long long)lo, (long long)hi);
    *v = x;
    return LB_OK;
}

typedef struct calib_hdr {
    int64_t n_layers, dim, q_dim, hidden, vocab, n_tokens, ctx, seq, tb, te;
    uint64_t fp;
} calib_hdr;

static lb_status read_header(const lb_st_file *f, const char *path, calib_hdr *h)
{
    const char *fmt = lb__st_meta(f, "lowbit.format"), *ver = lb__st_meta(f, "lowbit.calib_version");
    if (!fmt || strcmp(fmt, "calib"))
        return lb__err(LB_ERR_FORMAT, "%s: not a lowbit calibration statistics file (its metadata has no "
                       "lowbit.format = calib; make one with lowbit calib)", path);
    if (!ver || strcmp(ver, CALIB_VERSION))
        return lb__err(LB_ERR_UNSUPPORTED, "%s: calibration file version %s (this lowbit reads %s)", path,
                       ver ? ver : "(none)", CALIB_VERSION);
    const int64_t big = (int64_t)1 << 20;
    struct { const char *k; int64_t lo, hi; int64_t *v; } ints[] = {
        {"n_layers", 1, 4096, &h->n_layers}, {"dim", 1, big, &h->dim}, {"q_dim", 1, big, &h->q_dim},
        {"hidden_dim", 1, big, &h->hidden}, {"vocab_size", 1, (int64_t)1 << 30, &h->vocab},
        {"n_tokens", 1, INT64_MAX / 2, &h->n_tokens}, {"ctx", 1, (int64_t)1 << 30, &h->ctx}, {"sequential", 0, 1, &h->seq},
        {"text_begin", 0, INT64_MAX / 2, &h->tb}, {"text_end", 0, INT64_MAX / 2, &h->te}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        lb_status s = get_int(f, path, ints[i].k, ints[i].lo, ints[i].hi, ints[i].v);
        if (s) return s;
    }
    const char *fp = lb__st_meta(f, "model_fingerprint");
    char *end;
    h->fp = fp ? strtoull(fp, &end, 16) : 0;
    if (!fp || strlen(fp) != 16 || *end) return lb__err(LB_ERR_FORMAT, "%s: metadata 'model_fingerprint' is missing or malformed", path);
    int64_t n_stats = h->seq ? ST_COUNT : ST_HQ;
    if (f->n_tensors != h->n_layers * LB_SITE_COUNT * n_stats)
        return lb__err(LB_ERR_FORMAT, "%s: %lld tensors, %lld expected for %lld layers", path, (long long)f->n_tensors,
                       (long long)(h->n_layers * LB_SITE_COUNT * n_stats), (long long)h->n_layers);
    return LB_OK;
}

static lb_status check_model(const calib_hdr *h, const char *path, const lb_st_file *f, const lb_model *m)
{
    const lb_config *c = &m->cfg;
    int64_t qd = c->n_heads * c->head_dim;
    if (h->n_layers != c->n_layers || h->dim != c->dim || h->q_dim != qd || h->hidden != c->hidden_dim ||
        h->vocab != c->vocab_size)
        return lb__err(LB_ERR_ARG, "%s: statistics of another model shape (%s: %lld layers, dim %lld, q_dim %lld, "
                       "hidden %lld, vocab %lld) than %s (%lld layers, dim %lld, q_dim %lld, hidden %lld, vocab %lld); "
                       "collect them on this model with lowbit calib", path, lb__st_meta(f, "model"),
                       (long long)h->n_layers, (long long)h->dim, (long long)h->q_dim, (long long)h->hidden,
                       (long long)h->vocab, m->path ? m->path : "the model", (long long)c->n_layers,
                       (long long)c->dim, (long long)qd, (long long)c->hidden_dim, (long long)c->vocab_size);
    if (h->fp != lb__calib_fingerprint(m))
        return lb__err(LB_ERR_ARG, "%s: statistics of another model (%s, same shape, other weights) than %s; "
                       "collect them on this model with lowbit calib", path, lb__st_meta(f, "model"),
                       m->path ? m->path : "the model");
    return LB_OK;
}

static lb_status read_stat(const lb_st_file *f, const char *path, int64_t l, int k, int t, lb__calib_site *site)
{
    char name[64];
    snprintf(name, sizeof name, "layers.%lld.%s.%s", (long long)l, lb__calib_site_name(k), stat_names[t]);
    const lb_st_tensor *x = lb__st_find(f, name);
    int nd = stat_ndim(t);
    int64_t n = site->n, cnt = nd == 2 ? n * n : n;
    if (!x) return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
    if (x->dtype != LB_DTYPE_F64 || x->ndim != nd || x->shape[0] != n || (nd == 2 && x->shape[1] != n))
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is not F64 of shape [%lld%s]", path, name, (long long)n,
                       nd == 2 ? " x n" : "");
    double *d = *stat_ptr(site, t);
    memcpy(d, x->data, sizeof(double) * (size_t)cnt);
    for (int64_t i = 0; i < cnt; i++)
        if (!isfinite(d[i]) || ((t == ST_SQ || t == ST_ABS || t == ST_AMAX) && d[i] < 0))
            return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' holds %s at %lld", path, name,
                           isfinite(d[i]) ? "a negative value" : "a non-finite value", (long long)i);
    return LB_OK;
}

static lb_status read_sites(const lb_st_file *f, const char *path, lb_calib *c)
{
    int64_t nd[LB_SITE_COUNT] = {c->dim, c->q_dim, c->dim, c->hidden};
    for (int64_t l = 0; l < c->n_layers; l++)
        for (int k = 0; k < LB_SITE_COUNT; k++) {
            lb__calib_site *site = &c->sites[l * LB_SITE_COUNT + k];
            /* check the largest tensor exists before allocating, so a forged header cannot make us allocate */
            char name[64];
            snprintf(name, sizeof name, "layers.%lld.%s.H", (long long)l, lb__calib_site_name(k));
            const lb_st_tensor *x = lb__st_find(f, name);
            if (!x || x->ndim != 2 || x->shape[0] != nd[k] || x->shape[1] != nd[k] || x->dtype != LB_DTYPE_F64)
                return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' is missing or not F64 of shape [%lld x %lld]", path,
                               name, (long long)nd[k], (long long)nd[k]);
            lb_status s = lb__calib_site_alloc(site, nd[k], c->sequential);
            for (int t = 0; !s && t < (c->sequential ? ST_COUNT : ST_HQ); t++) s = read_stat(f, path, l, k, t, site);
            if (s) return s;
        }
    return LB_OK;
}

lb_status lb_calib_load(const char *path, const lb_model *m, lb_calib **out)
{
    LB_ARG(out, "lb_calib_load: out is NULL");
    *out = NULL;
    LB_ARG(path && *path, "lb_calib_load: path is NULL or empty");
    lb_st_file f;
    lb_status s = lb__st_open(path, &f);
    if (s) return s;
    calib_hdr h = {0};
    s = read_header(&f, path, &h);
    if (!s && m) s = check_model(&h, path, &f, m);
    lb_calib *c = NULL;
    if (!s && !(c = lb__calib_new(h.n_layers, h.dim, h.q_dim, h.hidden, h.vocab))) s = LB_ERR_NOMEM;
    if (!s) {
        c->n_tokens = h.n_tokens; c->ctx = h.ctx; c->sequential = (int)h.seq; c->fingerprint = h.fp;
        c->text_begin = h.tb; c->text_end = h.te;
        const char *mp = lb__st_meta(&f, "model"), *tp = lb__st_meta(&f, "text");
        c->model = lb__calib_strdup(mp && *mp ? mp : NULL);
        c->text = lb__calib_strdup(tp && *tp ? tp : NULL);
        s = read_sites(&f, path, c);
    }
    lb__st_close(&f);
    if (s) { lb_calib_free(c); return s; }
    *out = c;
    return LB_OK;
}
