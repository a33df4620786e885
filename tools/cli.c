/* cli.c: argument parsing, error printing and progress for the CLI. */
#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lowbit %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_fail_status(const char *cmd, lb_status s)
{
    const char *m = lb_errmsg();
    return cli_fail(cmd, "%s", m && *m ? m : lb_status_str(s));
}

bool cli_flag(const char *arg, const char *name) { return strcmp(arg, name) == 0; }
bool cli_is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **val, bool *err)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return false;
    if (a[n] == '=') { *val = a + n + 1; return true; }
    if (a[n] != 0) return false;
    if (*i + 1 >= argc) {
        fprintf(stderr, "lowbit %s: option %s needs a value\n", argv[0], name);
        *err = true;
        return true;
    }
    *val = argv[++*i];
    return true;
}

bool cli_int(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        cli_fail(cmd, "%s must be an integer in [%lld, %lld], got '%s'", opt, (long long)lo, (long long)hi, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        cli_fail(cmd, "%s must be a number in [%g, %g], got '%s'", opt, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

static bool progress_shown;

void cli_progress(int64_t done, int64_t total, const char *what, void *user)
{
    static int tty = -1;
    if (tty < 0) tty = isatty(2);
    if (!tty) return;
    fprintf(stderr, "\r%s: %s %lld/%lld (%3.0f%%)\033[K", user ? (const char *)user : "lowbit",
            what ? what : "", (long long)done, (long long)total, total ? 100.0 * (double)done / (double)total : 100.0);
    fflush(stderr);
    progress_shown = true;
}

void cli_progress_end(void)
{
    if (progress_shown) fputs("\r\033[K", stderr);
    progress_shown = false;
}

void *cli_read_all(const char *cmd, const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) { cli_fail(cmd, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) { char *b = realloc(buf, cap *= 2); if (!b) { free(buf); buf = NULL; } else buf = b; }
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf) { cli_fail(cmd, "%s: out of memory", path); return NULL; }
    if (bad) { free(buf); cli_fail(cmd, "%s: read error", path); return NULL; }
    *size = n;
    return buf;
}

const char *cli_models_dir(void)
{
    const char *d = getenv("LOWBIT_MODELS");
    return d && *d ? d : "../shared/models";
}

/* Write head (hn bytes) then body (bn bytes) to path through a temporary file
 * renamed on success: a failure never leaves a partial file behind. */
int cli_write_atomic(const char *cmd, const char *path, const void *head, size_t hn, const void *body, size_t bn)
{
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp) return cli_fail(cmd, "out of memory");
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) { int rc = cli_fail(cmd, "%s: cannot create: %s", path, strerror(errno)); free(tmp); return rc; }
    bool ok = (!hn || fwrite(head, 1, hn, f) == hn) && (!bn || fwrite(body, 1, bn, f) == bn);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        free(tmp);
        return cli_fail(cmd, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return 0;
}
