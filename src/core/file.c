/* file.c: memory-mapped input, whole-file reads, atomic output files and a
 * growable byte buffer. Output goes to a temporary file beside the target
 * and is renamed into place only when complete. */
#include "core/core.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = lb__alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

lb_status lb__map_file(const char *path, lb_map *m)
{
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return lb__err(LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lb__err(LB_ERR_IO, "%s: not a regular file", path);
    }
    m->size = (size_t)st.st_size;
    if (m->size > 0) {
        void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return lb__err(LB_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        }
        m->data = p;
    }
    close(fd);
    m->path = dup_str(path);
    if (!m->path) { lb__unmap(m); return LB_ERR_NOMEM; }
    return LB_OK;
}

void lb__unmap(lb_map *m)
{
    if (m->data && m->size) munmap((void *)m->data, m->size);
    LB_FREE(m->path);
    memset(m, 0, sizeof *m);
}

lb_status lb__read_file(const char *path, uint8_t **data, size_t *size)
{
    *data = NULL; *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return lb__err(LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    lb_buf b = {0};
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) lb__buf_put(&b, chunk, k);
    bool err = ferror(f);
    fclose(f);
    if (err) { lb__buf_free(&b); return lb__err(LB_ERR_IO, "%s: read error", path); }
    if (b.failed) { lb__buf_free(&b); return lb__err(LB_ERR_NOMEM, "%s: out of memory reading", path); }
    lb__buf_put(&b, "", 1);           /* NUL guard for text parsers, not counted */
    if (b.failed) { lb__buf_free(&b); return lb__err(LB_ERR_NOMEM, "%s: out of memory reading", path); }
    *data = (uint8_t *)b.data;
    *size = b.len - 1;
    return LB_OK;
}

lb_status lb__out_open(const char *path, lb_outfile *o)
{
    memset(o, 0, sizeof *o);
    size_t n = strlen(path) + 32;
    o->path = dup_str(path);
    o->tmp = lb__alloc(n);
    if (!o->path || !o->tmp) { lb__out_abort(o); return LB_ERR_NOMEM; }
    snprintf(o->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    o->f = fopen(o->tmp, "wb");
    if (!o->f) {
        lb_status s = lb__err(LB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        LB_FREE(o->path); LB_FREE(o->tmp);
        memset(o, 0, sizeof *o);
        return s;
    }
    return LB_OK;
}

lb_status lb__out_write(lb_outfile *o, const void *data, size_t n)
{
    if (n && fwrite(data, 1, n, o->f) != n)
        return lb__err(LB_ERR_IO, "%s: write failed: %s", o->path, strerror(errno));
    return LB_OK;
}

lb_status lb__out_commit(lb_outfile *o)
{
    lb_status s = LB_OK;
    if (fflush(o->f) != 0 || ferror(o->f))
        s = lb__err(LB_ERR_IO, "%s: write failed: %s", o->path, strerror(errno));
    if (fclose(o->f) != 0 && s == LB_OK)
        s = lb__err(LB_ERR_IO, "%s: close failed: %s", o->path, strerror(errno));
    o->f = NULL;
    if (s == LB_OK && rename(o->tmp, o->path) != 0)
        s = lb__err(LB_ERR_IO, "%s: cannot rename into place: %s", o->path, strerror(errno));
    if (s != LB_OK) remove(o->tmp);
    LB_FREE(o->path); LB_FREE(o->tmp);
    memset(o, 0, sizeof *o);
    return s;
}

void lb__out_abort(lb_outfile *o)
{
    if (o->f) fclose(o->f);
    if (o->tmp) remove(o->tmp);
    LB_FREE(o->path); LB_FREE(o->tmp);
    memset(o, 0, sizeof *o);
}

void lb__buf_put(lb_buf *b, const void *data, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = LB_REALLOC(b->data, cap);
        if (!d) { b->failed = true; return; }
        b->data = d; b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
}

void lb__buf_printf(lb_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) { b->failed = true; return; }
    if ((size_t)k < sizeof small) { lb__buf_put(b, small, (size_t)k); return; }
    char *big = LB_MALLOC((size_t)k + 1);
    if (!big) { b->failed = true; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    lb__buf_put(b, big, (size_t)k);
    LB_FREE(big);
}

void lb__buf_json_str(lb_buf *b, const char *s)
{
    lb__buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { char e[2] = {'\\', (char)*p}; lb__buf_put(b, e, 2); }
        else if (*p == '\n') lb__buf_put(b, "\\n", 2);
        else if (*p == '\t') lb__buf_put(b, "\\t", 2);
        else if (*p == '\r') lb__buf_put(b, "\\r", 2);
        else if (*p < 0x20) lb__buf_printf(b, "\\u%04x", *p);
        else lb__buf_put(b, p, 1);
    }
    lb__buf_put(b, "\"", 1);
}

void lb__buf_free(lb_buf *b)
{
    LB_FREE(b->data);
    memset(b, 0, sizeof *b);
}
