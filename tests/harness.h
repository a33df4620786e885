/* harness.h: lowbit's tiny test harness (header only).
 *
 *   static void test_x(void) { CHECK(a == b, "a=%d b=%d", a, b); }
 *   int main(int argc, char **argv) { TEST_INIT(argc, argv); RUN(test_x); return TEST_DONE(); }
 *
 * A test passes when none of its CHECKs fail. Every failure prints file:line,
 * the message and the seed; TEST_SEED is random per run unless LOWBIT_SEED
 * (or argv[1]) fixes it, so any failure can be replayed. The program ends with
 * "<name>: N passed, N failed[, N skipped]" and exits non-zero on failure. */
#ifndef LB_TEST_HARNESS_H
#define LB_TEST_HARNESS_H

#include "lowbit.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int th_pass, th_fail, th_skip, th_cur_fail, th_cur_skip;
static const char *th_name = "test";
static uint64_t TEST_SEED;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            if (th_cur_fail < 20) {                                                   \
                fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
                fprintf(stderr, __VA_ARGS__);                                         \
                fprintf(stderr, " (seed %llu)\n", (unsigned long long)TEST_SEED);     \
            }                                                                         \
            th_cur_fail++;                                                            \
        }                                                                             \
    } while (0)

/* CHECK that returns from the test on failure (for preconditions). */
#define REQUIRE(cond, ...) do { int f_ = th_cur_fail; CHECK(cond, __VA_ARGS__); if (th_cur_fail != f_) return; } while (0)

/* Mark the running test skipped (prints a visible SKIP line). */
#define SKIP(...) do { printf("SKIP %s: ", th_name); printf(__VA_ARGS__); printf("\n"); th_cur_skip = 1; return; } while (0)

#define TEST_INIT(argc, argv)                                                         \
    do {                                                                              \
        th_name = strrchr((argv)[0], '/') ? strrchr((argv)[0], '/') + 1 : (argv)[0];  \
        const char *s_ = getenv("LOWBIT_SEED");                                       \
        if ((argc) > 1) s_ = (argv)[1];                                               \
        TEST_SEED = s_ ? strtoull(s_, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20); \
        printf("%s: seed %llu\n", th_name, (unsigned long long)TEST_SEED);            \
    } while (0)

#define RUN(fn)                                                                       \
    do {                                                                              \
        th_cur_fail = 0; th_cur_skip = 0;                                             \
        fn();                                                                         \
        if (th_cur_fail) { th_fail++; fprintf(stderr, "FAILED %s\n", #fn); }          \
        else if (th_cur_skip) th_skip++;                                              \
        else th_pass++;                                                               \
    } while (0)

#define TEST_DONE()                                                                   \
    (printf("%s: %d passed, %d failed, %d skipped\n", th_name, th_pass, th_fail, th_skip), \
     th_fail ? 1 : 0)

/* Paths to shared test data (LOWBIT_MODELS / LOWBIT_DATA, else ../shared/...). */
static inline const char *test_models_dir(void)
{
    const char *d = getenv("LOWBIT_MODELS");
    return d && *d ? d : "../shared/models";
}
static inline const char *test_data_dir(void)
{
    const char *d = getenv("LOWBIT_DATA");
    return d && *d ? d : "../shared/data";
}
static inline int test_file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* models_dir/rel in one of four rotating static buffers (several may be
 * live in one expression). */
static inline char *test_model_path(const char *rel)
{
    static char p[4][1024];
    static int k;
    char *s = p[k++ & 3];
    snprintf(s, 1024, "%s/%s", test_models_dir(), rel);
    return s;
}

/* A Python with NumPy for the independent references in tests/ref
 * ($LOWBIT_PYTHON, /usr/bin/python3, python3), or NULL (tests then SKIP). */
static inline const char *test_find_python(void)
{
    static const char *cands[] = {NULL, "/usr/bin/python3", "python3"};
    cands[0] = getenv("LOWBIT_PYTHON");
    for (int i = 0; i < 3; i++) {
        char cmd[512];
        if (!cands[i] || !*cands[i]) continue;
        snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) return cands[i];
    }
    return NULL;
}

/* Relative error helper: |a-b| / max(|a|,|b|,floor). */
/* Logits of one decode step of m after a prefill of tok[0..n) (threads
 * workers; the decode step feeds tok[0] again), into out (vocab floats). */
static inline lb_status test_decode_logits(const lb_model *m, int threads, const int32_t *tok, int64_t n, float *out)
{
    lb_session *s;
    lb_status st = lb_session_create(m, &(lb_session_opts){.n_threads = threads, .max_ctx = 64, .max_batch = 16}, &s);
    if (st) return st;
    st = lb_forward(s, tok, n, NULL);
    if (!st) st = lb_forward(s, tok, 1, out);
    lb_session_free(s);
    return st;
}

static inline double test_rel_err(double a, double b, double floor_)
{
    double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    if (m < floor_) m = floor_;
    return fabs(a - b) / m;
}

#endif
