/* cli.c: the one option parser of the CLI, error printing and progress.
 * Every command describes its options in a cli_optdef table, so values are
 * checked the same way everywhere and every problem reads
 * "lowbit CMD: --opt VALUE: problem". */
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

bool cli_is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

static const cli_optdef *find_opt(const cli_optdef *defs, const char *arg, const char **inline_val)
{
    *inline_val = NULL;
    for (const cli_optdef *d = defs; d->name; d++) {
        size_t n = strlen(d->name);
        if (strncmp(arg, d->name, n)) continue;
        if (arg[n] == 0) return d;
        if (arg[n] == '=' && d->kind != CLI_FLAG) { *inline_val = arg + n + 1; return d; }
    }
    return NULL;
}

/* "a|b|c": the index of v, or -1. */
static int choice_index(const char *choices, const char *v)
{
    size_t n = strlen(v);
    int k = 0;
    for (const char *p = choices; *p; k++) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return k;
        p += len + (e != NULL);
    }
    return -1;
}

/* Store v into d's destination; prints the problem and returns 1 when v is not valid. */
static int store(const char *cmd, const cli_optdef *d, const char *v)
{
    char *end;
    errno = 0;
    switch (d->kind) {
    case CLI_FLAG: *(bool *)d->dst = true; return 0;
    case CLI_STR: *(const char **)d->dst = v; return 0;
    case CLI_PATH:
        if (!*v) return cli_fail(cmd, "%s '': needs a path", d->name);
        *(const char **)d->dst = v;
        return 0;
    case CLI_INT: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < d->ilo || x > d->ihi)
            return cli_fail(cmd, "%s %s: must be an integer in [%lld, %lld]", d->name, v, (long long)d->ilo,
                            (long long)d->ihi);
        *(int64_t *)d->dst = x;
        return 0;
    }
    case CLI_FLOAT: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !(x >= d->flo && x <= d->fhi))
            return cli_fail(cmd, "%s %s: must be a number in [%g, %g]", d->name, v, d->flo, d->fhi);
        *(double *)d->dst = x;
        return 0;
    }
    case CLI_CHOICE: {
        int k = choice_index(d->choices, v);
        if (k < 0) return cli_fail(cmd, "%s %s: must be one of %s", d->name, v, d->choices);
        *(int *)d->dst = k;
        return 0;
    }
    case CLI_MULTI:
        if (*d->seen > d->ihi) return cli_fail(cmd, "%s %s: at most %lld are allowed", d->name, v, (long long)d->ihi);
        ((const char **)d->dst)[*d->seen - 1] = v;
        return 0;
    }
    return 1;
}

int cli_parse(const char *cmd, int argc, char **argv, const cli_optdef *defs, const char **pos, int max_pos,
              int *n_pos)
{
    int np = 0;
    bool opts_done = false;
    if (n_pos) *n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!opts_done && cli_is_help(a)) return -1;
        if (!opts_done && !strcmp(a, "--")) { opts_done = true; continue; }
        const cli_optdef *d = opts_done || a[0] != '-' || !a[1] ? NULL : find_opt(defs, a, &v);
        if (!d) {
            if (!opts_done && a[0] == '-' && a[1])
                return cli_fail(cmd, "%s: unknown option (see lowbit %s --help)", a, cmd);
            if (np >= max_pos) return cli_fail(cmd, "'%s': unexpected argument (see lowbit %s --help)", a, cmd);
            pos[np++] = a;
            if (n_pos) *n_pos = np;
            continue;
        }
        if (d->kind != CLI_FLAG && !v) {
            if (i + 1 >= argc) return cli_fail(cmd, "%s: needs a value", d->name);
            v = argv[++i];
        }
        if (d->seen) ++*d->seen;
        if (store(cmd, d, v)) return 1;
    }
    return 0;
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

const char *cli_models_dir(void)
{
    const char *d = getenv("LOWBIT_MODELS");
    return d && *d ? d : "../shared/models";
}
