/* packfile.c: packed model files (lowbit pack / unpack).
 *
 * A packed file is a safetensors container in the source's tensor order:
 * every F32 or BF16 tensor becomes a 1-D U8 tensor of the same name holding
 * its lossless blob (blob.c), other tensors are copied as they are, the
 * source metadata is kept, and two metadata entries are added:
 *   "lowbit.format":   "lossless-bf16"
 *   "lowbit.lossless": {"version":1,"tensors":{NAME:{"dtype":"BF16",
 *                       "shape":[...],"source_dtype":"F32"|"BF16"},...}}
 * A folder is packed file by file into a temporary folder renamed into place
 * at the end, so a failure leaves nothing behind; its other files are copied
 * through a fixed 1 MiB buffer (never read whole) and counted in the report.
 * Unpack refuses an incomplete table (a U8 tensor holding a blob that the
 * table does not list), then re-opens what it wrote and checks it against
 * the packed file (every tensor present with its shape, each stream's CRC
 * over the written bytes, copied tensors byte for byte) before the output
 * is renamed into place. */
#include "lossless/lossless.h"
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT_KEY "lowbit.format"
#define FORMAT_VAL "lossless-bf16"
#define TABLE_KEY "lowbit.lossless"

typedef struct {
    const lb_bf16_pack_opts *opts;
    lb_pool *pool;
    lb_progress_fn progress;
    void *user;
    lb_lossless_report *rep;
    bool unpack;          /* outputs are verified before their rename */
} job;

#define COPY_BUF ((size_t)1 << 20)

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* A tensor's values as BF16: BF16 as is (copied when misaligned), F32
 * rounded to nearest even. *tmp receives any allocation to free. */
static lb_status source_bf16(const lb_st_file *f, const lb_st_tensor *t, int64_t n, const uint16_t **x, void **tmp)
{
    *tmp = NULL;
    if (t->dtype == LB_DTYPE_BF16 && (uintptr_t)t->data % 2 == 0) { *x = t->data; return LB_OK; }
    uint16_t *b = lb__alloc(sizeof *b * (size_t)(n + 1));
    if (!b) return LB_ERR_NOMEM;
    if (t->dtype == LB_DTYPE_BF16) memcpy(b, t->data, (size_t)n * 2);
    else {
        const uint8_t *src = t->data;
        for (int64_t i = 0; i < n; i++) {
            float v;
            memcpy(&v, src + 4 * i, 4);
            b[i] = lb_f32_to_bf16(v);
        }
    }
    *tmp = b;
    *x = b;
    return LB_OK;
}

static void json_shape(lb_buf *b, const lb_st_tensor *t)
{
    lb__buf_put(b, "[", 1);
    for (int k = 0; k < t->ndim; k++) lb__buf_printf(b, "%s%lld", k ? "," : "", (long long)t->shape[k]);
    lb__buf_put(b, "]", 1);
}

/* Pack every float tensor of f; pk[i] stays NULL for copied ones. */
static lb_status pack_tensors(const lb_st_file *f, const job *j, lb_bf16_packed **pk, lb_buf *table)
{
    lb__buf_printf(table, "{\"version\":%d,\"tensors\":{", LB_BLOB_VERSION);
    int listed = 0;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const lb_st_tensor *t = &f->tensors[i];
        if (t->dtype == LB_DTYPE_F16)
            return lb__err(LB_ERR_UNSUPPORTED, "%s: tensor '%s' is F16: packing F16 is not supported (the codec "
                           "codes BF16's 8-bit exponent, and F16 -> BF16 would lose bits); convert it first", f->what, t->name);
        j->rep->n_tensors++;
        if (t->dtype != LB_DTYPE_F32 && t->dtype != LB_DTYPE_BF16) { j->rep->n_copied++; continue; }
        int64_t n = lb__st_numel(t);
        const uint16_t *x;
        void *tmp;
        lb_status s = source_bf16(f, t, n, &x, &tmp);
        if (!s) s = lb_bf16_pack(x, n, t->name, j->opts, j->pool, &pk[i]);
        LB_FREE(tmp);
        if (s) return lb__err_prefix(s, "%s: ", f->what);
        j->rep->n_packed++;
        j->rep->n_rounded += t->dtype == LB_DTYPE_F32;
        j->rep->values += n;
        j->rep->bf16_bytes += 2 * (uint64_t)n;
        j->rep->packed_bytes += lb_bf16_packed_blob_size(pk[i]);
        if (listed++) lb__buf_put(table, ",", 1);
        lb__buf_json_str(table, t->name);
        lb__buf_printf(table, ":{\"dtype\":\"BF16\",\"shape\":");
        json_shape(table, t);
        lb__buf_printf(table, ",\"source_dtype\":\"%s\"}", lb_dtype_name(t->dtype));
        if (j->progress) j->progress(i + 1, f->n_tensors, t->name, j->user);
    }
    lb__buf_put(table, "}}", 3); /* with the NUL */
    return table->failed ? lb__err(LB_ERR_NOMEM, "out of memory") : LB_OK;
}

/* Declare the tensors and metadata of the packed file, then write them. */
static lb_status write_packed(const lb_st_file *f, lb_bf16_packed **pk, const char *table, const char *out)
{
    lb_st_writer *w;
    lb_status s = lb__st_writer_open(out, &w);
    if (s) return s;
    for (int64_t i = 0; !s && i < f->n_meta; i++)
        if (strncmp(f->meta_keys[i], "lowbit.", 7)) s = lb__st_writer_meta(w, f->meta_keys[i], f->meta_vals[i]);
    if (!s) s = lb__st_writer_meta(w, FORMAT_KEY, FORMAT_VAL);
    if (!s) s = lb__st_writer_meta(w, TABLE_KEY, table);
    for (int64_t i = 0; !s && i < f->n_tensors; i++) {
        const lb_st_tensor *t = &f->tensors[i];
        int64_t bytes = pk[i] ? (int64_t)lb_bf16_packed_blob_size(pk[i]) : 0;
        s = pk[i] ? lb__st_writer_add(w, t->name, LB_DTYPE_U8, 1, &bytes) : lb__st_writer_add(w, t->name, t->dtype, t->ndim, t->shape);
    }
    for (int64_t i = 0; !s && i < f->n_tensors; i++) {
        if (!pk[i]) { s = lb__st_writer_write(w, f->tensors[i].data, (size_t)(f->tensors[i].end - f->tensors[i].begin)); continue; }
        size_t bytes = lb_bf16_packed_blob_size(pk[i]);
        uint8_t *blob = lb__alloc(bytes + 1);
        if (!blob) { s = LB_ERR_NOMEM; break; }
        s = lb_bf16_packed_write(pk[i], blob, bytes);
        if (!s) s = lb__st_writer_write(w, blob, bytes);
        LB_FREE(blob);
    }
    if (s) { lb__st_writer_abort(w); return s; }
    return lb__st_writer_commit(w);
}

static lb_status pack_file(const char *in, const char *out, const job *j)
{
    lb_st_file f;
    lb_status s = lb__st_open(in, &f);
    if (s == LB_ERR_FORMAT) return lb__err_prefix(s, "pack reads safetensors files and model folders only: ");
    if (s) return s;
    if (lb__st_meta(&f, FORMAT_KEY)) {
        s = lb__err(LB_ERR_ARG, "%s: already packed (metadata %s = %s)", in, FORMAT_KEY, lb__st_meta(&f, FORMAT_KEY));
        lb__st_close(&f);
        return s;
    }
    lb_bf16_packed **pk = lb__zalloc(sizeof *pk * (size_t)(f.n_tensors + 1));
    lb_buf table = {0};
    s = pk ? pack_tensors(&f, j, pk, &table) : LB_ERR_NOMEM;
    if (!s) s = write_packed(&f, pk, table.data, out);
    for (int64_t i = 0; pk && i < f.n_tensors; i++) lb_bf16_packed_free(pk[i]);
    LB_FREE(pk);
    lb__buf_free(&table);
    lb__st_close(&f);
    if (!s) { j->rep->n_files++; j->rep->in_bytes += file_size(in); j->rep->out_bytes += file_size(out); }
    return s;
}

/* ---- unpack */

/* The entry of tensor t in the packed table: shape into shape/ndim, checked
 * against the blob's own element count later. */
bool lb__lossless_file(const lb_st_file *f)
{
    const char *v = lb__st_meta(f, FORMAT_KEY);
    return v && !strcmp(v, FORMAT_VAL);
}

static lb_status table_entry(const lb_st_file *f, const lb_json *tensors, const lb_st_tensor *t, int *ndim,
                             int64_t *shape, int64_t *n)
{
    const lb_json *e = lb__json_get(tensors, t->name), *sh = e ? lb__json_get(e, "shape") : NULL;
    const char *dt = e ? lb__json_str(e, "dtype") : NULL;
    if (!e) return LB_ERR_NOTFOUND;
    if (t->dtype != LB_DTYPE_U8 || t->ndim != 1 || !dt || strcmp(dt, "BF16") || !sh || sh->type != LB_JSON_ARR ||
        sh->len > LB_ST_MAX_DIMS)
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': bad entry in %s (want a U8 blob, dtype BF16, a shape)", f->what,
                       t->name, TABLE_KEY);
    *ndim = (int)sh->len;
    *n = 1;
    for (size_t k = 0; k < sh->len; k++) {
        const lb_json *d = sh->kids[k];
        if (d->type != LB_JSON_NUM || d->num < 0 || d->num > 9e15 || d->num != (double)(int64_t)d->num ||
            __builtin_mul_overflow(*n, (int64_t)d->num, n))
            return lb__err(LB_ERR_FORMAT, "%s: tensor '%s': bad shape in %s", f->what, t->name, TABLE_KEY);
        shape[k] = (int64_t)d->num;
    }
    return LB_OK;
}

static lb_status open_table(const lb_st_file *f, lb_json **doc, const lb_json **tensors);

lb_status lb__lossless_entry(const lb_st_file *f, const lb_st_tensor *t, int *ndim, int64_t *shape, int64_t *n)
{
    lb_json *doc = NULL;
    const lb_json *tensors;
    lb_status s = open_table(f, &doc, &tensors);
    if (!s) s = table_entry(f, tensors, t, ndim, shape, n);
    lb__json_free(doc);
    return s;
}

static lb_status open_table(const lb_st_file *f, lb_json **doc, const lb_json **tensors)
{
    const char *fmt = lb__st_meta(f, FORMAT_KEY), *tab = lb__st_meta(f, TABLE_KEY);
    if (!fmt || strcmp(fmt, FORMAT_VAL) || !tab)
        return lb__err(LB_ERR_FORMAT, "%s: not a packed model (no %s = %s metadata)", f->what, FORMAT_KEY, FORMAT_VAL);
    lb_status s = lb__json_parse(tab, strlen(tab), f->what, doc);
    if (s) return s;
    int64_t ver = 0;
    *tensors = lb__json_get(*doc, "tensors");
    if (!lb__json_int(*doc, "version", &ver) || ver != LB_BLOB_VERSION || !*tensors || (*tensors)->type != LB_JSON_OBJ)
        return lb__err(LB_ERR_FORMAT, "%s: %s metadata: want version %d and a \"tensors\" object", f->what, TABLE_KEY,
                       LB_BLOB_VERSION);
    for (size_t i = 0; i < (*tensors)->len; i++)
        if (!lb__st_find(f, (*tensors)->keys[i]))
            return lb__err(LB_ERR_FORMAT, "%s: %s lists tensor '%s', which the file lacks", f->what, TABLE_KEY,
                           (*tensors)->keys[i]);
    return LB_OK;
}

static lb_status write_unpacked_tensor(const lb_st_file *f, const lb_st_tensor *t, int64_t n, lb_st_writer *w,
                                       const job *j)
{
    lb_bf16_packed *p;
    lb_status s = lb_bf16_packed_read(t->data, (size_t)(t->end - t->begin), t->name, LB_PACKED_BORROW, &p);
    if (s) return lb__err_prefix(s, "%s: ", f->what);
    lb_bf16_packed_info info;
    lb_bf16_packed_get_info(p, &info);
    uint16_t *y = NULL;
    if (info.n != n) s = lb__err(LB_ERR_FORMAT, "%s: tensor '%s': blob holds %lld values, its shape %lld", f->what,
                                 t->name, (long long)info.n, (long long)n);
    else if (!(y = lb__alloc(sizeof *y * (size_t)(n + 1)))) s = LB_ERR_NOMEM;
    else if ((s = lb_bf16_unpack(p, y, j->pool))) s = lb__err_prefix(s, "%s: ", f->what);
    else s = lb__st_writer_write(w, y, (size_t)n * 2);
    j->rep->values += s ? 0 : n;
    j->rep->bf16_bytes += s ? 0 : 2 * (uint64_t)n;
    j->rep->packed_bytes += s ? 0 : info.blob_size;
    LB_FREE(y);
    lb_bf16_packed_free(p);
    return s;
}

static lb_status unpack_tensors(const lb_st_file *f, const lb_json *tensors, lb_st_writer *w, const job *j)
{
    int64_t shape[LB_ST_MAX_DIMS], n;
    int ndim;
    lb_status s = LB_OK;
    for (int64_t i = 0; !s && i < f->n_tensors; i++) {
        const lb_st_tensor *t = &f->tensors[i];
        s = table_entry(f, tensors, t, &ndim, shape, &n);
        if (s == LB_ERR_NOTFOUND) s = lb__st_writer_add(w, t->name, t->dtype, t->ndim, t->shape);
        else if (!s) s = lb__st_writer_add(w, t->name, LB_DTYPE_BF16, ndim, shape);
    }
    for (int64_t i = 0; !s && i < f->n_tensors; i++) {
        const lb_st_tensor *t = &f->tensors[i];
        j->rep->n_tensors++;
        if (table_entry(f, tensors, t, &ndim, shape, &n) == LB_ERR_NOTFOUND) {
            j->rep->n_copied++;
            s = lb__st_writer_write(w, t->data, (size_t)(t->end - t->begin));
        } else {
            j->rep->n_packed++;
            s = write_unpacked_tensor(f, t, n, w, j);
        }
        if (j->progress) j->progress(i + 1, f->n_tensors, t->name, j->user);
    }
    return s;
}

/* A U8 tensor the table does not list but whose bytes are a blob: the table
 * is incomplete, and copying the blob as is would give a model that does
 * not load. */
static lb_status check_complete(const lb_st_file *f, const lb_json *tensors)
{
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const lb_st_tensor *t = &f->tensors[i];
        if (lb__json_get(tensors, t->name) || t->dtype != LB_DTYPE_U8 || t->end - t->begin < LB_BLOB_HEADER ||
            memcmp(t->data, LB_BLOB_MAGIC, 4))
            continue;
        return lb__err(LB_ERR_FORMAT, "%s: tensor '%s' holds a packed blob but the %s table does not list it "
                       "(incomplete table); not unpacked", f->what, t->name, TABLE_KEY);
    }
    return LB_OK;
}

/* Each stream's CRC-32C over the BF16 bytes written for tensor u equals the
 * one recorded in the blob of t. */
static lb_status verify_crcs(const lb_st_file *f, const lb_st_tensor *t, const lb_st_tensor *u, const char *out)
{
    lb_bf16_packed *p;
    lb_status s = lb_bf16_packed_read(t->data, (size_t)(t->end - t->begin), t->name, LB_PACKED_BORROW, &p);
    if (s) return lb__err_prefix(s, "%s: ", f->what);
    if ((uint64_t)p->n * 2 != u->end - u->begin)
        s = lb__err(LB_ERR_CORRUPT, "%s: tensor '%s' has %llu bytes, want %lld BF16 values", out, u->name,
                    (unsigned long long)(u->end - u->begin), (long long)p->n);
    for (int64_t k = 0; !s && k < p->n_streams; k++) {
        const uint8_t *x = (const uint8_t *)u->data + 2 * k * p->stream_len;
        if (lb__crc32c(x, (size_t)lb__stream_count(p, k) * 2) != p->crc[k])
            s = lb__err(LB_ERR_CORRUPT, "%s: tensor '%s': stream %lld as written does not match its CRC", out, u->name,
                        (long long)k);
    }
    lb_bf16_packed_free(p);
    return s;
}

/* Re-open the unpacked file `out` and check it against the packed file f:
 * the same tensors in number and names, packed ones as BF16 of the table's
 * shape with every stream's CRC matching, copied ones identical. */
static lb_status verify_unpacked(const lb_st_file *f, const lb_json *tensors, const char *out)
{
    lb_st_file o;
    lb_status s = lb__st_open(out, &o);
    if (s) return lb__err_prefix(s, "unpacked output does not re-open: ");
    int64_t shape[LB_ST_MAX_DIMS], n, n_packed = 0;
    int ndim;
    if (o.n_tensors != f->n_tensors)
        s = lb__err(LB_ERR_CORRUPT, "%s: %lld tensors written for %lld", out, (long long)o.n_tensors,
                    (long long)f->n_tensors);
    else if (lb__st_meta(&o, FORMAT_KEY)) s = lb__err(LB_ERR_CORRUPT, "%s: still marked as packed", out);
    for (int64_t i = 0; !s && i < f->n_tensors; i++) {
        const lb_st_tensor *t = &f->tensors[i], *u = lb__st_find(&o, t->name);
        lb_status e = table_entry(f, tensors, t, &ndim, shape, &n);
        if (!u) s = lb__err(LB_ERR_CORRUPT, "%s: tensor '%s' missing from the output", out, t->name);
        else if (e == LB_ERR_NOTFOUND) {
            if (u->dtype != t->dtype || u->ndim != t->ndim || u->end - u->begin != t->end - t->begin ||
                memcmp(u->data, t->data, (size_t)(t->end - t->begin)))
                s = lb__err(LB_ERR_CORRUPT, "%s: copied tensor '%s' differs from the input", out, t->name);
        } else if (e) s = e;
        else if (u->dtype != LB_DTYPE_BF16 || u->ndim != ndim || memcmp(u->shape, shape, sizeof *shape * (size_t)ndim))
            s = lb__err(LB_ERR_CORRUPT, "%s: tensor '%s' written with the wrong dtype or shape", out, t->name);
        else if (!(s = verify_crcs(f, t, u, out))) n_packed++;
    }
    if (!s && n_packed != (int64_t)tensors->len)
        s = lb__err(LB_ERR_CORRUPT, "%s: %lld of the %zu tensors of the %s table unpacked", out, (long long)n_packed,
                    tensors->len, TABLE_KEY);
    lb__st_close(&o);
    return s;
}

static lb_status unpack_file(const char *in, const char *out, const job *j)
{
    lb_st_file f;
    lb_status s = lb__st_open(in, &f);
    if (s) return s;
    lb_json *doc = NULL;
    const lb_json *tensors = NULL;
    lb_st_writer *w = NULL;
    s = open_table(&f, &doc, &tensors);
    if (!s) s = check_complete(&f, tensors);
    if (!s) s = lb__st_writer_open(out, &w);
    for (int64_t i = 0; !s && i < f.n_meta; i++)
        if (strncmp(f.meta_keys[i], "lowbit.", 7)) s = lb__st_writer_meta(w, f.meta_keys[i], f.meta_vals[i]);
    if (!s) s = unpack_tensors(&f, tensors, w, j);
    if (w) {
        if (s) lb__st_writer_abort(w);
        else if (!(s = lb__st_writer_commit(w)) && (s = verify_unpacked(&f, tensors, out))) unlink(out);
    }
    lb__json_free(doc);
    lb__st_close(&f);
    if (!s) { j->rep->n_files++; j->rep->in_bytes += file_size(in); j->rep->out_bytes += file_size(out); }
    return s;
}

/* ---- folders */

typedef lb_status (*file_fn)(const char *in, const char *out, const job *j);

/* Copy a regular file through a COPY_BUF buffer (any size, bounded memory);
 * counted as one of the report's other files. */
static lb_status copy_file(const char *in, const char *out, const job *j)
{
    struct stat st;
    if (stat(in, &st) != 0 || !S_ISREG(st.st_mode))
        return lb__err(LB_ERR_IO, "%s: not a regular file (a model folder's other files are copied as files)", in);
    FILE *f = fopen(in, "rb");
    if (!f) return lb__err(LB_ERR_IO, "%s: cannot open: %s", in, strerror(errno));
    uint8_t *buf = lb__alloc(COPY_BUF);
    lb_outfile o = {0};
    lb_status s = buf ? lb__out_open(out, &o) : LB_ERR_NOMEM;
    uint64_t total = 0;
    size_t k;
    while (!s && (k = fread(buf, 1, COPY_BUF, f)) > 0) {
        s = lb__out_write(&o, buf, k);
        total += k;
    }
    if (!s && ferror(f)) s = lb__err(LB_ERR_IO, "%s: read error", in);
    fclose(f);
    LB_FREE(buf);
    if (o.f) s = s ? (lb__out_abort(&o), s) : lb__out_commit(&o);
    if (!s) { j->rep->n_other_files++; j->rep->other_bytes += total; }
    return s;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Remove the files of a temporary folder we made, then the folder. */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096 + 512];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(dir);
}

static lb_status do_folder(const char *in, const char *out, const job *j, file_fn fn)
{
    char tmp[4096], a[4096 + 512], b[4096 + 512];
    if (strlen(in) > 3000 || strlen(out) > 3000) return lb__err(LB_ERR_ARG, "lossless: path too long");
    if (is_dir(out)) return lb__err(LB_ERR_ARG, "%s: output folder exists already", out);
    if (lb_temp_path(out, (long)getpid(), tmp, sizeof tmp)) return LB_ERR_ARG;
    if (mkdir(tmp, 0777)) return lb__err(LB_ERR_IO, "%s: cannot create a temporary folder beside it: %s", out, strerror(errno));
    DIR *d = opendir(in);
    if (!d) { rmdir(tmp); return lb__err(LB_ERR_IO, "%s: cannot open folder: %s", in, strerror(errno)); }
    lb_status s = LB_OK;
    int n_st = 0;
    struct dirent *e;
    while (!s && (e = readdir(d))) {
        snprintf(a, sizeof a, "%s/%s", in, e->d_name);
        snprintf(b, sizeof b, "%s/%s", tmp, e->d_name);
        if (e->d_name[0] == '.' || is_dir(a)) continue;
        if (ends_with(e->d_name, ".safetensors")) { s = fn(a, b, j); n_st++; }
        else s = copy_file(a, b, j);
    }
    closedir(d);
    if (!s && !n_st) s = lb__err(LB_ERR_NOTFOUND, "%s: no .safetensors file in the folder", in);
    if (!s && rename(tmp, out)) s = lb__err(LB_ERR_IO, "%s: cannot rename into place: %s", out, strerror(errno));
    if (s) remove_tree(tmp);
    return s;
}

static lb_status run(const char *in, const char *out, job *j, file_fn fn)
{
    lb_lossless_report local;
    if (!j->rep) j->rep = &local;
    memset(j->rep, 0, sizeof *j->rep);
    if (is_dir(in)) return do_folder(in, out, j, fn);
    if (is_dir(out)) return lb__err(LB_ERR_ARG, "%s: is a folder; the input %s is a file", out, in);
    if (!j->unpack) return fn(in, out, j);
    /* unpack verifies what it wrote under a temporary name, then renames */
    char tmp[4096];
    if (strlen(out) > 4000) return lb__err(LB_ERR_ARG, "lossless: path too long");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    lb_status s = fn(in, tmp, j);
    if (!s && rename(tmp, out)) s = lb__err(LB_ERR_IO, "%s: cannot rename into place: %s", out, strerror(errno));
    if (s) unlink(tmp);
    return s;
}

lb_status lb_lossless_pack_model(const char *in, const char *out, const lb_bf16_pack_opts *opts, lb_pool *pool,
                                 lb_progress_fn progress, void *user, lb_lossless_report *rep)
{
    if (rep) memset(rep, 0, sizeof *rep);
    LB_ARG(in, "lb_lossless_pack_model: in is NULL");
    LB_ARG(out, "lb_lossless_pack_model: out is NULL");
    job j = {opts, pool, progress, user, rep, false};
    return run(in, out, &j, pack_file);
}

lb_status lb_lossless_unpack_model(const char *in, const char *out, lb_pool *pool, lb_progress_fn progress,
                                   void *user, lb_lossless_report *rep)
{
    if (rep) memset(rep, 0, sizeof *rep);
    LB_ARG(in, "lb_lossless_unpack_model: in is NULL");
    LB_ARG(out, "lb_lossless_unpack_model: out is NULL");
    job j = {NULL, pool, progress, user, rep, true};
    return run(in, out, &j, unpack_file);
}
