/* cli_files.c: what the CLI checks about files before any work, and the
 * clean-up of temporaries when interrupted.
 * Inputs must be regular files (or folders where a model folder is meant):
 * a FIFO with no writer would block open(), /dev/zero would be read without
 * end. An output must not be an input, and an existing output is replaced
 * only with --force. The library writes every output under
 * lb_temp_path(out) and renames it when complete; the CLI registers those
 * names so that SIGINT/SIGTERM removes them, and removes the stale ones that
 * a killed run left (lb_temp_clean). */
#include "cli.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_TEMPS 16
#define TEMP_LEN 4096

/* Written before the work starts, read by the signal handler. */
static char temps[MAX_TEMPS][TEMP_LEN];
static volatile sig_atomic_t n_temps;

int cli_input(const char *cmd, const char *opt, const char *path, bool dir_ok)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return cli_fail(cmd, "%s %s: cannot open: %s", opt, path, errno == ENOENT ? "no such file or folder" : strerror(errno));
    if (S_ISREG(st.st_mode) || (dir_ok && S_ISDIR(st.st_mode))) return 0;
    if (S_ISDIR(st.st_mode)) return cli_fail(cmd, "%s %s: is a folder, not a regular file", opt, path);
    return cli_fail(cmd, "%s %s: not a regular file%s", opt, path, dir_ok ? " or folder" : "");
}

/* stat of the folder holding path (its parent, "." when none). */
static int stat_parent(const char *path, struct stat *st)
{
    size_t n = strlen(path);
    char *d = malloc(n + 2);
    if (!d) return -1;
    memcpy(d, path, n + 1);
    while (n > 1 && d[n - 1] == '/') d[--n] = 0;
    while (n > 0 && d[n - 1] != '/') n--;
    if (n == 0) strcpy(d, ".");
    else d[n > 1 ? n - 1 : 1] = 0;
    int rc = stat(d, st);
    free(d);
    return rc;
}

int cli_output(const char *cmd, const char *opt, const char *path, bool force, const char *const *inputs,
               int n_inputs)
{
    struct stat so, si, sp;
    bool exists = stat(path, &so) == 0;
    for (int i = 0; i < n_inputs && exists; i++) {
        if (!inputs[i] || stat(inputs[i], &si) != 0) continue;
        if (so.st_dev == si.st_dev && so.st_ino == si.st_ino)
            return cli_fail(cmd, "%s %s: is the input %s; write the output elsewhere", opt, path, inputs[i]);
        if (S_ISDIR(si.st_mode) && stat_parent(path, &sp) == 0 && sp.st_dev == si.st_dev && sp.st_ino == si.st_ino)
            return cli_fail(cmd, "%s %s: is a file of the input folder %s; write the output elsewhere", opt, path,
                            inputs[i]);
    }
    if (exists && !force) return cli_fail(cmd, "%s %s: exists (use --force to replace it)", opt, path);
    int n_old = 0;
    lb_temp_clean(path, &n_old);
    if (n_old)
        fprintf(stderr, "lowbit %s: removed %d stale temporary file%s of %s left by an interrupted run\n", cmd, n_old,
                n_old > 1 ? "s" : "", path);
    char tmp[TEMP_LEN];
    if (lb_temp_path(path, (long)getpid(), tmp, sizeof tmp)) return cli_fail(cmd, "%s %s: path too long", opt, path);
    cli_temp_register(tmp);
    return 0;
}

void cli_temp_register(const char *tmp)
{
    if (n_temps >= MAX_TEMPS || strlen(tmp) >= TEMP_LEN) return;
    for (int i = 0; i < n_temps; i++)
        if (!strcmp(temps[i], tmp)) return;
    strcpy(temps[n_temps], tmp);
    n_temps = n_temps + 1;
}

/* Linux getdents64 record; readdir is not async-signal-safe, the system call is. */
struct dirent64_rec { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; };

void cli_remove_tree(const char *path)
{
    if (unlink(path) == 0 || errno == ENOENT) return;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[4096] __attribute__((aligned(8)));
    long n;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
        for (long off = 0; off < n;) {
            struct dirent64_rec *e = (struct dirent64_rec *)(buf + off);
            if (strcmp(e->name, ".") && strcmp(e->name, "..") && unlinkat(fd, e->name, 0) != 0)
                unlinkat(fd, e->name, AT_REMOVEDIR);
            off += e->reclen;
        }
    close(fd);
    rmdir(path);
}

static void on_signal(int sig)
{
    for (int i = 0; i < n_temps; i++) cli_remove_tree(temps[i]);
    static const char msg[] = "lowbit: interrupted; temporary files removed\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_signals_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void *cli_read_all(const char *cmd, const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) { cli_fail(cmd, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        cli_fail(cmd, "%s: not a regular file", path);
        return NULL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = malloc(n + 1);
    if (!buf) { close(fd); cli_fail(cmd, "%s: out of memory for %zu bytes", path, n); return NULL; }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (got != n) { free(buf); cli_fail(cmd, "%s: read error (file changed while reading?)", path); return NULL; }
    buf[n] = 0;
    *size = n;
    return buf;
}

/* Write head (hn bytes) then body (bn bytes) to path through its temporary
 * name renamed on success: a failure never leaves a partial file behind. */
int cli_write_atomic(const char *cmd, const char *path, const void *head, size_t hn, const void *body, size_t bn)
{
    char tmp[TEMP_LEN];
    if (lb_temp_path(path, (long)getpid(), tmp, sizeof tmp)) return cli_fail(cmd, "%s: path too long", path);
    cli_temp_register(tmp);
    FILE *f = fopen(tmp, "wb");
    if (!f) return cli_fail(cmd, "%s: cannot create: %s", path, strerror(errno));
    bool ok = (!hn || fwrite(head, 1, hn, f) == hn) && (!bn || fwrite(body, 1, bn, f) == bn);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return cli_fail(cmd, "%s: write failed: %s", path, strerror(e));
    }
    return 0;
}
