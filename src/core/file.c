/* file.c: memory-mapped input, whole-file reads, atomic output files and a
 * growable byte buffer. Output goes to a temporary file beside the target,
 * "DIR/.NAME.lowbit-tmp.PID" (hidden, recognisable, owned by one process),
 * and is renamed into place only when complete; lb_temp_clean removes the
 * ones a killed process left. Inputs must be regular files: they are opened
 * without blocking, so a FIFO with no writer or a device is refused instead
 * of hanging or being read forever. */
#include "core/core.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

int lb__open_regular(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) { lb__err(LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno)); return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        lb__err(LB_ERR_IO, "%s: not a regular file", path);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (size) *size = (size_t)st.st_size;
    return fd;
}

lb_status lb__map_file(const char *path, lb_map *m)
{
    memset(m, 0, sizeof *m);
    int fd = lb__open_regular(path, &m->size);
    if (fd < 0) return LB_ERR_IO;
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
    int fd = lb__open_regular(path, NULL);
    if (fd < 0) return LB_ERR_IO;
    FILE *f = fdopen(fd, "rb");
    if (!f) { close(fd); return lb__err(LB_ERR_IO, "%s: cannot open: %s", path, strerror(errno)); }
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
    size_t n = strlen(path) + 48;
    o->path = dup_str(path);
    o->tmp = lb__alloc(n);
    if (!o->path || !o->tmp) { lb__out_abort(o); return LB_ERR_NOMEM; }
    lb_temp_path(path, (long)getpid(), o->tmp, n);
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

/* Splits path at its last '/' (trailing slashes ignored): dir length (0 for
 * none, keeping the '/'), name start and name length. */
static void split_path(const char *path, size_t *dir_len, size_t *name_len)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t d = n;
    while (d > 0 && path[d - 1] != '/') d--;
    *dir_len = d;
    *name_len = n - d;
}

lb_status lb_temp_path(const char *path, long pid, char *buf, size_t cap)
{
    LB_ARG(path && *path, "lb_temp_path: path is NULL or empty");
    LB_ARG(buf, "lb_temp_path: buf is NULL");
    size_t d, n;
    split_path(path, &d, &n);
    int k = snprintf(buf, cap, "%.*s.%.*s.lowbit-tmp.%ld", (int)d, path, (int)n, path + d, pid);
    if (k < 0 || (size_t)k >= cap) return lb__err(LB_ERR_ARG, "%s: path too long for a temporary name", path);
    return LB_OK;
}

/* Remove a file, or a folder with the files (and empty folders) inside it. */
static int remove_entry(const char *path)
{
    if (unlink(path) == 0) return 0;
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[4096];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub && unlink(sub) != 0)
            rmdir(sub);
    if (d) closedir(d);
    return rmdir(path);
}

/* The PID of a temporary name "<prefix>PID", or 0 when name is not one. */
static long temp_pid(const char *name, const char *prefix)
{
    size_t k = strlen(prefix);
    if (strncmp(name, prefix, k) || !name[k]) return 0;
    long pid = 0;
    for (const char *p = name + k; *p; p++) {
        if (*p < '0' || *p > '9' || pid > 100000000) return 0;
        pid = pid * 10 + (*p - '0');
    }
    return pid;
}

lb_status lb_temp_clean(const char *path, int *n_removed)
{
    if (n_removed) *n_removed = 0;
    char prefix[1024], dir[4096], full[4096 + 1024];
    size_t d, n;
    LB_ARG(path && *path, "lb_temp_clean: path is NULL or empty");
    split_path(path, &d, &n);
    if (d >= sizeof dir || n + 16 >= sizeof prefix) return lb__err(LB_ERR_ARG, "%s: path too long", path);
    snprintf(dir, sizeof dir, "%.*s", (int)d, d ? path : "./");
    snprintf(prefix, sizeof prefix, ".%.*s.lowbit-tmp.", (int)n, path + d);
    DIR *dh = opendir(dir);
    if (!dh) return LB_OK;                  /* no folder: nothing stale in it */
    struct dirent *e;
    while ((e = readdir(dh))) {
        long pid = temp_pid(e->d_name, prefix);
        if (!pid || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        snprintf(full, sizeof full, "%s%s", dir, e->d_name);
        if (remove_entry(full) == 0 && n_removed) (*n_removed)++;
    }
    closedir(dh);
    return LB_OK;
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
