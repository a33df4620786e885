/* safetensors.c: safetensors reader (validating, zero-copy views into a
 * mapping or buffer) and streaming writer (atomic, header padded to 8 bytes).
 * See safetensors.h for the layout and the checks. */
#include "core/safetensors.h"

static uint64_t rd_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

bool lb__st_dtype_parse(const char *s, lb_dtype *out)
{
    for (int t = LB_DTYPE_F32; t <= LB_DTYPE_U64; t++)
        if (!strcmp(s, lb_dtype_name((lb_dtype)t))) { *out = (lb_dtype)t; return true; }
    return false;
}

int64_t lb__st_numel(const lb_st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static lb_status terr(const lb_st_file *f, const char *name, const char *msg)
{
    return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': %s", f->what, name, msg);
}

/* A JSON number that is a whole number in [0, 9e15] (all exact in a double).
 * The range is checked before the conversion: converting a double outside
 * the integer type's range (1e300, NaN) is undefined behaviour in C. */
static bool json_count(const lb_json *d, uint64_t *out)
{
    if (d->type != LB_JSON_NUM || !(d->num >= 0 && d->num <= 9e15)) return false;
    *out = (uint64_t)d->num;
    return (double)*out == d->num;
}

/* One header entry {"dtype", "shape", "data_offsets"} -> t, checked against
 * the data section size. */
static lb_status parse_entry(const lb_st_file *f, const char *name, const lb_json *v, lb_st_tensor *t)
{
    if (v->type != LB_JSON_OBJ) return terr(f, name, "entry is not a JSON object");
    for (size_t i = 0; i < v->len; i++)
        if (strcmp(v->keys[i], "dtype") && strcmp(v->keys[i], "shape") && strcmp(v->keys[i], "data_offsets"))
            return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': unexpected field '%s'", f->what, name, v->keys[i]);
    const char *dt = lb__json_str(v, "dtype");
    const lb_json *shape = lb__json_get(v, "shape"), *offs = lb__json_get(v, "data_offsets");
    if (!dt) return terr(f, name, "missing or non-string \"dtype\"");
    if (!lb__st_dtype_parse(dt, &t->dtype))
        return lb__err(LB_ERR_UNSUPPORTED, "%s: tensor '%s': unsupported dtype '%s'", f->what, name, dt);
    if (!shape || shape->type != LB_JSON_ARR) return terr(f, name, "missing or non-array \"shape\"");
    if (shape->len > LB_ST_MAX_DIMS) return terr(f, name, "more than 8 dimensions");
    if (!offs || offs->type != LB_JSON_ARR || offs->len != 2)
        return terr(f, name, "\"data_offsets\" must be an array of two integers");
    uint64_t elems = 1;
    t->ndim = (int)shape->len;
    for (size_t i = 0; i < shape->len; i++) {
        uint64_t dim;
        if (!json_count(shape->kids[i], &dim)) return terr(f, name, "shape entries must be non-negative integers");
        t->shape[i] = (int64_t)dim;
        if (__builtin_mul_overflow(elems, (uint64_t)t->shape[i], &elems)) return terr(f, name, "shape overflows");
    }
    uint64_t bytes;
    if (__builtin_mul_overflow(elems, (uint64_t)lb_dtype_size(t->dtype), &bytes)) return terr(f, name, "shape overflows");
    if (!json_count(offs->kids[0], &t->begin) || !json_count(offs->kids[1], &t->end))
        return terr(f, name, "data_offsets must be non-negative integers");
    uint64_t data_size = f->size - f->data_off;
    if (t->begin > t->end || t->end > data_size)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] outside the data section "
                       "(%llu bytes; file truncated?)", f->what, name, (unsigned long long)t->begin,
                       (unsigned long long)t->end, (unsigned long long)data_size);
    if (t->end - t->begin != bytes)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': %s shape holds %llu bytes but data_offsets span %llu",
                       f->what, name, dt, (unsigned long long)bytes, (unsigned long long)(t->end - t->begin));
    t->name = name;
    t->data = f->base + f->data_off + t->begin;
    return LB_OK;
}

static lb_status parse_meta(lb_st_file *f, const lb_json *v)
{
    if (v->type != LB_JSON_OBJ) return lb__err(LB_ERR_FORMAT, "%s: __metadata__ is not a JSON object", f->what);
    f->meta_keys = lb__zalloc((v->len + 1) * sizeof *f->meta_keys);
    f->meta_vals = lb__zalloc((v->len + 1) * sizeof *f->meta_vals);
    if (!f->meta_keys || !f->meta_vals) return LB_ERR_NOMEM;
    for (size_t i = 0; i < v->len; i++) {
        if (v->kids[i]->type != LB_JSON_STR)
            return lb__err(LB_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", f->what, v->keys[i]);
        f->meta_keys[i] = v->keys[i];
        f->meta_vals[i] = v->kids[i]->str;
    }
    f->n_meta = (int64_t)v->len;
    return LB_OK;
}

static int cmp_offset(const void *a, const void *b)
{
    const lb_st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b, void *ctx)
{
    const lb_st_tensor *t = ctx;
    return strcmp(t[*(const int64_t *)a].name, t[*(const int64_t *)b].name);
}

/* Tensors must tile [0, data size) exactly and carry distinct names. */
static lb_status check_layout(lb_st_file *f)
{
    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_offset);
    uint64_t at = 0;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const lb_st_tensor *t = &f->tensors[i];
        if (t->begin < at)
            return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' overlaps the previous tensor (offset %llu < %llu)",
                           f->what, t->name, (unsigned long long)t->begin, (unsigned long long)at);
        if (t->begin > at)
            return lb__err(LB_ERR_FORMAT, "%s: hole in the data section before tensor '%s' (bytes %llu..%llu)",
                           f->what, t->name, (unsigned long long)at, (unsigned long long)t->begin);
        at = t->end;
    }
    if (at != f->size - f->data_off)
        return lb__err(LB_ERR_FORMAT, "%s: tensors cover %llu bytes but the data section holds %llu", f->what,
                       (unsigned long long)at, (unsigned long long)(f->size - f->data_off));
    f->by_name = lb__alloc(((size_t)f->n_tensors + 1) * sizeof *f->by_name);
    if (!f->by_name) return LB_ERR_NOMEM;
    for (int64_t i = 0; i < f->n_tensors; i++) f->by_name[i] = i;
    qsort_r(f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, cmp_name, f->tensors);
    for (int64_t i = 1; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[f->by_name[i]].name, f->tensors[f->by_name[i - 1]].name))
            return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' appears twice", f->what, f->tensors[f->by_name[i]].name);
    return LB_OK;
}

static lb_status parse_header(lb_st_file *f)
{
    if (f->size < 8) return lb__err(LB_ERR_FORMAT, "%s: truncated safetensors file: %zu bytes, need at least 8", f->what, f->size);
    uint64_t n = rd_u64(f->base);
    if (n < 2 || n > LB_ST_MAX_HEADER)
        return lb__err(LB_ERR_FORMAT, "%s: safetensors header length %llu is not plausible (not a safetensors file?)",
                       f->what, (unsigned long long)n);
    if (n > f->size - 8)
        return lb__err(LB_ERR_FORMAT, "%s: truncated safetensors file: header needs %llu bytes, file has %zu",
                       f->what, (unsigned long long)(n + 8), f->size);
    f->data_off = 8 + (size_t)n;
    if (f->base[8] != '{') return lb__err(LB_ERR_FORMAT, "%s: safetensors header does not start with '{'", f->what);
    lb_status s = lb__json_parse((const char *)f->base + 8, (size_t)n, f->what, &f->header);
    if (s) return s;
    const lb_json *h = f->header;
    if (h->type != LB_JSON_OBJ) return lb__err(LB_ERR_FORMAT, "%s: safetensors header is not a JSON object", f->what);
    f->tensors = lb__zalloc((h->len + 1) * sizeof *f->tensors);
    if (!f->tensors) return LB_ERR_NOMEM;
    for (size_t i = 0; i < h->len; i++) {
        if (!strcmp(h->keys[i], "__metadata__")) {
            if (f->meta_keys) return lb__err(LB_ERR_FORMAT, "%s: __metadata__ appears twice", f->what);
            if ((s = parse_meta(f, h->kids[i]))) return s;
            continue;
        }
        if ((s = parse_entry(f, h->keys[i], h->kids[i], &f->tensors[f->n_tensors]))) return s;
        f->n_tensors++;
    }
    return check_layout(f);
}

lb_status lb__st_parse(const uint8_t *data, size_t size, const char *what, lb_st_file *f)
{
    memset(f, 0, sizeof *f);
    size_t wn = strlen(what) + 1;
    f->what = lb__alloc(wn);
    if (!f->what) return LB_ERR_NOMEM;
    memcpy(f->what, what, wn);
    f->base = data;
    f->size = size;
    lb_status s = parse_header(f);
    if (s) lb__st_close(f);
    return s;
}

lb_status lb__st_open(const char *path, lb_st_file *f)
{
    lb_map m;
    memset(f, 0, sizeof *f);
    lb_status s = lb__map_file(path, &m);
    if (s) return s;
    s = lb__st_parse(m.data, m.size, path, f);
    if (s) { lb__unmap(&m); memset(f, 0, sizeof *f); return s; }
    f->map = m;
    return LB_OK;
}

void lb__st_close(lb_st_file *f)
{
    if (!f) return;
    lb__unmap(&f->map);
    LB_FREE(f->tensors);
    LB_FREE(f->by_name);
    LB_FREE(f->meta_keys);
    LB_FREE(f->meta_vals);
    lb__json_free(f->header);
    LB_FREE(f->what);
    memset(f, 0, sizeof *f);
}

void lb__st_take_map(lb_st_file *f, lb_map *dst)
{
    *dst = f->map;
    memset(&f->map, 0, sizeof f->map);
}

const lb_st_tensor *lb__st_find(const lb_st_file *f, const char *name)
{
    int64_t lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const lb_st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(t->name, name);
        if (!c) return t;
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

const char *lb__st_meta(const lb_st_file *f, const char *key)
{
    for (int64_t i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_vals[i];
    return NULL;
}

/* ------------------------------------------------------------------ writer */

typedef struct st_decl {
    char *name;
    lb_dtype dtype;
    int ndim;
    int64_t shape[LB_ST_MAX_DIMS];
    uint64_t bytes;
} st_decl;

struct lb_st_writer {
    lb_outfile out;
    st_decl *t;
    int64_t n, cap;
    struct { char *key, *val; } *meta;
    int64_t n_meta, cap_meta;
    uint64_t total, written;
    bool started;
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = lb__alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

lb_status lb__st_writer_open(const char *path, lb_st_writer **w)
{
    *w = lb__zalloc(sizeof **w);
    if (!*w) return LB_ERR_NOMEM;
    lb_status s = lb__out_open(path, &(*w)->out);
    if (s) { LB_FREE(*w); *w = NULL; }
    return s;
}

static bool grow(void **p, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap) return true;
    int64_t c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    void *q = LB_REALLOC(*p, (size_t)c * elem);
    if (!q) { lb__err(LB_ERR_NOMEM, "out of memory"); return false; }
    *p = q; *cap = c;
    return true;
}

lb_status lb__st_writer_meta(lb_st_writer *w, const char *key, const char *value)
{
    LB_ASSERT(!w->started);
    char *v = dup_str(value);
    if (!v) return LB_ERR_NOMEM;
    for (int64_t i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta[i].key, key)) { LB_FREE(w->meta[i].val); w->meta[i].val = v; return LB_OK; }
    if (!grow((void **)&w->meta, &w->cap_meta, w->n_meta + 1, sizeof *w->meta)) { LB_FREE(v); return LB_ERR_NOMEM; }
    char *k = dup_str(key);
    if (!k) { LB_FREE(v); return LB_ERR_NOMEM; }
    w->meta[w->n_meta].key = k;
    w->meta[w->n_meta].val = v;
    w->n_meta++;
    return LB_OK;
}

lb_status lb__st_writer_add(lb_st_writer *w, const char *name, lb_dtype dtype, int ndim, const int64_t *shape)
{
    LB_ASSERT(!w->started && ndim >= 0 && ndim <= LB_ST_MAX_DIMS);
    if (!strcmp(name, "__metadata__") || !*name)
        return lb__err(LB_ERR_ARG, "%s: '%s' cannot name a tensor", w->out.path, name);
    for (int64_t i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name)) return lb__err(LB_ERR_ARG, "%s: tensor '%s' added twice", w->out.path, name);
    if (!grow((void **)&w->t, &w->cap, w->n + 1, sizeof *w->t)) return LB_ERR_NOMEM;
    st_decl *d = &w->t[w->n];
    memset(d, 0, sizeof *d);
    d->dtype = dtype; d->ndim = ndim;
    uint64_t bytes = lb_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(bytes, (uint64_t)shape[i], &bytes))
            return lb__err(LB_ERR_ARG, "%s: tensor '%s': bad shape", w->out.path, name);
        d->shape[i] = shape[i];
    }
    d->bytes = bytes;
    if (!(d->name = dup_str(name))) return LB_ERR_NOMEM;
    w->n++;
    w->total += bytes;
    return LB_OK;
}

/* The JSON header, padded with spaces so 8 + length is a multiple of 8. */
static lb_status write_header(lb_st_writer *w)
{
    lb_buf b = {0};
    lb__buf_put(&b, "{", 1);
    if (w->n_meta) {
        lb__buf_put(&b, "\"__metadata__\":{", 16);
        for (int64_t i = 0; i < w->n_meta; i++) {
            if (i) lb__buf_put(&b, ",", 1);
            lb__buf_json_str(&b, w->meta[i].key);
            lb__buf_put(&b, ":", 1);
            lb__buf_json_str(&b, w->meta[i].val);
        }
        lb__buf_put(&b, "}", 1);
    }
    uint64_t off = 0;
    for (int64_t i = 0; i < w->n; i++) {
        const st_decl *d = &w->t[i];
        if (i || w->n_meta) lb__buf_put(&b, ",", 1);
        lb__buf_json_str(&b, d->name);
        lb__buf_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", lb_dtype_name(d->dtype));
        for (int k = 0; k < d->ndim; k++) lb__buf_printf(&b, "%s%lld", k ? "," : "", (long long)d->shape[k]);
        lb__buf_printf(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                       (unsigned long long)(off + d->bytes));
        off += d->bytes;
    }
    lb__buf_put(&b, "}", 1);
    while (b.len % 8) lb__buf_put(&b, " ", 1);
    if (b.failed) { lb__buf_free(&b); return lb__err(LB_ERR_NOMEM, "%s: out of memory building the header", w->out.path); }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)b.len >> (8 * i));
    lb_status s = lb__out_write(&w->out, len, 8);
    if (!s) s = lb__out_write(&w->out, b.data, b.len);
    lb__buf_free(&b);
    w->started = true;
    return s;
}

lb_status lb__st_writer_write(lb_st_writer *w, const void *data, size_t n)
{
    lb_status s;
    if (!w->started && (s = write_header(w))) return s;
    if (w->written + n > w->total)
        return lb__err(LB_ERR_ARG, "%s: more tensor data written than declared (%llu bytes)", w->out.path,
                       (unsigned long long)w->total);
    w->written += n;
    return lb__out_write(&w->out, data, n);
}

static void writer_free(lb_st_writer *w)
{
    for (int64_t i = 0; i < w->n; i++) LB_FREE(w->t[i].name);
    for (int64_t i = 0; i < w->n_meta; i++) { LB_FREE(w->meta[i].key); LB_FREE(w->meta[i].val); }
    LB_FREE(w->t); LB_FREE(w->meta);
    LB_FREE(w);
}

lb_status lb__st_writer_commit(lb_st_writer *w)
{
    lb_status s = LB_OK;
    if (!w->started) s = write_header(w);
    if (!s && w->written != w->total)
        s = lb__err(LB_ERR_ARG, "%s: %llu bytes of tensor data written, %llu declared", w->out.path,
                    (unsigned long long)w->written, (unsigned long long)w->total);
    if (s) lb__out_abort(&w->out);
    else s = lb__out_commit(&w->out);
    writer_free(w);
    return s;
}

void lb__st_writer_abort(lb_st_writer *w)
{
    if (!w) return;
    lb__out_abort(&w->out);
    writer_free(w);
}
