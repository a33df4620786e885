/* fuzz_files.h: helpers for the fuzz targets that reach a parser only
 * through the public API (lowbit.h), which reads paths: the input is written
 * to a file or a folder under one private temporary folder per process (in
 * /dev/shm when it exists, so the writes stay in memory), then loaded.
 *
 * A whole folder travels as one input in a small container: sections that
 * each start with the 6-byte marker "%LBFZ" + one digit naming the file
 * (fuzz_folder_names), the content running up to the next marker or the end.
 * Bytes before the first marker are ignored. Byte mutations seldom hit a
 * marker, so a mutated folder keeps its files. */
#ifndef LB_FUZZ_FILES_H
#define LB_FUZZ_FILES_H
#include "lowbit.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_MARK "%LBFZ"
#define FUZZ_MARK_LEN 5

static const char *const fuzz_folder_names[] = {
    "config.json", "model.safetensors", "tokenizer.json", "model.safetensors.index.json",
    "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "tokenizer.bin",
    "generation_config.json",
};
enum { FUZZ_N_NAMES = (int)(sizeof fuzz_folder_names / sizeof *fuzz_folder_names) };

static inline void fuzz_rmdir(void);

/* The process's temporary folder, made on first use and removed at exit. */
static inline const char *fuzz_tmpdir(void)
{
    static char dir[64];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s/lowbit_fuzz.XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir)) { perror("fuzz: mkdtemp"); abort(); }
    atexit(fuzz_rmdir);
    return dir;
}

/* buf = dir/rel (our paths are short: a longer one is a bug here). */
static inline const char *fuzz_join(char *buf, size_t cap, const char *dir, const char *rel)
{
    int n = snprintf(buf, cap, "%s/%s", dir, rel);
    if (n < 0 || (size_t)n >= cap) abort();
    return buf;
}

/* path = tmpdir/rel. */
static inline const char *fuzz_path(char *buf, size_t cap, const char *rel)
{
    return fuzz_join(buf, cap, fuzz_tmpdir(), rel);
}

static inline void fuzz_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) { perror(path); abort(); }
}

/* At exit: remove the temporary folder (its name is ours: no quotes). */
static inline void fuzz_rmdir(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_tmpdir());
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_tmpdir());
}

/* Write the container `data` out as the folder tmpdir/rel (emptied first:
 * files of the previous input must not leak into this one). */
static inline const char *fuzz_write_folder(char *buf, size_t cap, const char *rel, const uint8_t *data, size_t size)
{
    const char *dir = fuzz_path(buf, cap, rel);
    char p[256];
    for (int i = 0; i < FUZZ_N_NAMES; i++) {
        unlink(fuzz_join(p, sizeof p, dir, fuzz_folder_names[i]));
    }
    mkdir(dir, 0700);
    const uint8_t *end = data + size, *at = size ? memmem(data, size, FUZZ_MARK, FUZZ_MARK_LEN) : NULL;
    while (at && end - at > FUZZ_MARK_LEN) {
        int k = at[FUZZ_MARK_LEN] - '0';
        const uint8_t *body = at + FUZZ_MARK_LEN + 1;
        const uint8_t *next = memmem(body, (size_t)(end - body), FUZZ_MARK, FUZZ_MARK_LEN);
        size_t len = (size_t)((next ? next : end) - body);
        if (k >= 0 && k < FUZZ_N_NAMES) {
            fuzz_write(fuzz_join(p, sizeof p, dir, fuzz_folder_names[k]), body, len);
        }
        at = next;
    }
    return dir;
}

/* What a successful load must survive: the info, the description, and a
 * one-token forward pass that reads every weight (a view past its mapping
 * faults; garbage values go through every kernel and conversion). Models
 * larger than `max_bytes` of weights are only inspected, to keep the
 * executions fast. */
static inline void fuzz_use_model(lb_model *m, size_t max_bytes)
{
    lb_model_info info;
    lb_model_get_info(m, &info);
    if (info.weight_bytes > max_bytes || info.vocab_size < 1) return;
    lb_session_opts so = {.n_threads = 1, .max_ctx = 2, .max_batch = 2};
    lb_session *s = NULL;
    if (lb_session_create(m, &so, &s) != LB_OK) return;
    float *logits = malloc(sizeof *logits * (size_t)info.vocab_size);
    int32_t tok[2] = {0, (int32_t)(info.vocab_size - 1)};
    if (logits) lb_forward(s, tok, 2, logits);
    free(logits);
    lb_session_free(s);
}

/* lb_inspect as text or JSON (one per input, to keep executions fast);
 * the text is only freed. */
static inline void fuzz_inspect(const char *path, int json)
{
    char *out = NULL;
    if (lb_inspect(path, json, &out) == LB_OK) free(out);
}
#endif
