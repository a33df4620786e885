/* status.c: status strings, the per-thread error message, logging and the
 * checked allocators. The message lives in thread-local storage so that
 * concurrent callers never see each other's errors. */
#include "core/core.h"
#include <errno.h>
#include <time.h>

static _Thread_local char err_msg[1024];
static lb_log_fn log_fn;
static void *log_user;

const char *lb_status_str(lb_status s)
{
    switch (s) {
    case LB_OK: return "ok";
    case LB_ERR_ARG: return "invalid argument";
    case LB_ERR_IO: return "i/o error";
    case LB_ERR_FORMAT: return "malformed input";
    case LB_ERR_NOMEM: return "out of memory";
    case LB_ERR_UNSUPPORTED: return "unsupported";
    case LB_ERR_NOTFOUND: return "not found";
    case LB_ERR_CORRUPT: return "corrupt data";
    }
    return "unknown status";
}

const char *lb_errmsg(void) { return err_msg; }
const char *lb_version(void) { return LB_VERSION_STRING; }
void lb__clear_err(void) { err_msg[0] = 0; }

lb_status lb__err(lb_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return s;
}

lb_status lb__err_prefix(lb_status s, const char *fmt, ...)
{
    char old[sizeof err_msg], pre[sizeof err_msg];
    memcpy(old, err_msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    snprintf(err_msg, sizeof err_msg, "%s%s", pre, old);
    return s;
}

void lb__assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "lowbit: internal error: %s:%d: assertion '%s' failed\n", file, line, cond);
    abort();
}

void lb_set_log(lb_log_fn fn, void *user) { log_fn = fn; log_user = user; }

void lb__log(lb_log_level level, const char *fmt, ...)
{
    if (!log_fn) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(level, msg, log_user);
}

void *lb__alloc(size_t n)
{
    void *p = LB_MALLOC(n ? n : 1);
    if (!p) lb__err(LB_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *lb__zalloc(size_t n)
{
    void *p = LB_CALLOC(1, n ? n : 1);
    if (!p) lb__err(LB_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *lb__alloc_aligned(size_t n)
{
    void *p = NULL;
    size_t sz = (n + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, sz ? sz : 64) != 0) {
        lb__err(LB_ERR_NOMEM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    return p;
}

void lb__free_aligned(void *p) { free(p); }

double lb_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t lb_dtype_size(lb_dtype t)
{
    switch (t) {
    case LB_DTYPE_F32: case LB_DTYPE_I32: case LB_DTYPE_U32: return 4;
    case LB_DTYPE_F16: case LB_DTYPE_BF16: case LB_DTYPE_I16: case LB_DTYPE_U16: return 2;
    case LB_DTYPE_U8: case LB_DTYPE_I8: return 1;
    case LB_DTYPE_I64: case LB_DTYPE_U64: case LB_DTYPE_F64: return 8;
    }
    return 0;
}

const char *lb_dtype_name(lb_dtype t)
{
    static const char *names[] = {"F32", "F16", "BF16", "U8", "I8", "I32",
                                  "I64", "U32", "F64", "I16", "U16", "U64"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}
