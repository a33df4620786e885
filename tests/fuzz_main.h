/* fuzz_main.h: a fuzz target is tests/fuzz_<parser>.c that defines
 *   int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
 *   static const char *const fuzz_seeds[] = {...};   (paths, may be missing)
 * and then includes this header. Built with clang -fsanitize=fuzzer it is a
 * libFuzzer target (define LB_LIBFUZZER). Otherwise this driver gives it a
 * main(): it loads the seed files (resolving "$MODELS/...", "$DATA/..." and
 * "$CORPUS/..."; a folder stands for every file in it) plus a few built-in
 * inputs, and runs LOWBIT_FUZZ_ITERS (default FUZZ_DEFAULT_ITERS, 3000
 * unless the target defines it) deterministic mutations
 * (bit flips, byte sets, truncations, splices, inserted digits) from
 * TEST_SEED. A crash or sanitizer report is the failure signal; under
 * `make test`/`make asan` it runs briefly in CI.
 * $CORPUS is LOWBIT_FUZZ_CORPUS, else the fuzz-corpus folder of the build
 * folder holding this program (build/tests/fuzz_x -> build/fuzz-corpus,
 * written by tests/fuzz_corpus.sh).
 * A target with a structure-aware mutator defines FUZZ_STRUCTURED_MUTATE
 * before including this header: a function
 *   size_t fuzz_structured_mutate(uint8_t *d, size_t n, size_t cap, uint64_t seed)
 * that rewrites d[0..n) in place (up to cap bytes) and returns the new size;
 * the driver then applies it to every other mutation. */
#ifndef LB_FUZZ_MAIN_H
#define LB_FUZZ_MAIN_H
#ifdef LB_LIBFUZZER
/* libFuzzer reads its seeds from folders that make fuzz fills from the list
 * the built-in driver prints (tests/fuzz_run.sh). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)fuzz_seeds;
    return 0;
}
#else
#include "harness.h"

#include <dirent.h>

/* Mutations per run unless LOWBIT_FUZZ_ITERS says; targets that write files
 * and load whole models lower it (their long runs are libFuzzer's). */
#ifndef FUZZ_DEFAULT_ITERS
#define FUZZ_DEFAULT_ITERS 3000
#endif

static char fuzz_corpus_dir[4096];

/* "$CORPUS" for a program at .../tests/fuzz_x: .../fuzz-corpus. */
static void fuzz_set_corpus(const char *argv0)
{
    const char *e = getenv("LOWBIT_FUZZ_CORPUS");
    if (e && *e) { snprintf(fuzz_corpus_dir, sizeof fuzz_corpus_dir, "%s", e); return; }
    snprintf(fuzz_corpus_dir, sizeof fuzz_corpus_dir, "%s", argv0);
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(fuzz_corpus_dir, '/');
        if (slash) *slash = 0;
        else snprintf(fuzz_corpus_dir, sizeof fuzz_corpus_dir, "%s", up ? "." : "..");
    }
    strncat(fuzz_corpus_dir, "/fuzz-corpus", sizeof fuzz_corpus_dir - strlen(fuzz_corpus_dir) - 1);
}

/* A path too long for cap comes out empty (a missing seed). */
static void fuzz_resolve(const char *spec, char *path, size_t cap)
{
    int n;
    if (!strncmp(spec, "$MODELS/", 8)) n = snprintf(path, cap, "%s/%s", test_models_dir(), spec + 8);
    else if (!strncmp(spec, "$DATA/", 6)) n = snprintf(path, cap, "%s/%s", test_data_dir(), spec + 6);
    else if (!strncmp(spec, "$CORPUS/", 8)) n = snprintf(path, cap, "%s/%s", fuzz_corpus_dir, spec + 8);
    else n = snprintf(path, cap, "%s", spec);
    if (n < 0 || (size_t)n >= cap) path[0] = 0;
}

/* The seed files: each spec resolved; a folder gives its files in name order. */
static char **fuzz_seed_files(size_t *count)
{
    size_t nspec = sizeof fuzz_seeds / sizeof *fuzz_seeds, n = 0, cap = 16;
    char **out = malloc(cap * sizeof *out), path[4096];
    for (size_t i = 0; out && i < nspec; i++) {
        fuzz_resolve(fuzz_seeds[i], path, sizeof path);
        struct dirent **ents = NULL;
        int ne = scandir(path, &ents, NULL, alphasort);
        for (int k = -1; k < (ne < 0 ? 0 : ne); k++) {
            if (ne >= 0 && (k < 0 || ents[k]->d_name[0] == '.')) continue;
            if (n == cap) out = realloc(out, (cap *= 2) * sizeof *out);
            if (!out) break;
            size_t len = strlen(path) + (k >= 0 ? strlen(ents[k]->d_name) : 0) + 2;
            out[n] = malloc(len);
            if (k >= 0) snprintf(out[n++], len, "%s/%s", path, ents[k]->d_name);
            else snprintf(out[n++], len, "%s", path);
        }
        for (int k = 0; k < ne; k++) free(ents[k]);
        free(ents);
    }
    *count = out ? n : 0;
    return out;
}

static uint8_t *fuzz_load(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (sz < 0 || sz > (64 << 20)) { fclose(f); return NULL; }
    uint8_t *d = malloc((size_t)sz + 1);
    if (d && fread(d, 1, (size_t)sz, f) != (size_t)sz) { free(d); d = NULL; }
    fclose(f);
    *n = (size_t)sz;
    return d;
}

static uint64_t fuzz_next(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

static void fuzz_mutate(uint8_t *d, size_t *n, size_t cap, uint64_t *s)
{
    int k = 1 + (int)(fuzz_next(s) % 4);
    for (int j = 0; j < k && *n; j++) {
        size_t at = (size_t)(fuzz_next(s) % *n);
        switch (fuzz_next(s) % 6) {
        case 0: d[at] ^= (uint8_t)(1u << (fuzz_next(s) % 8)); break;
        case 1: d[at] = (uint8_t)fuzz_next(s); break;
        case 2: *n = at; break;                                   /* truncate */
        case 3: d[at] = "0123456789{}[]\":,-e.\\"[fuzz_next(s) % 21]; break;
        case 4: if (*n < cap) { memmove(d + at + 1, d + at, *n - at); d[at] = (uint8_t)fuzz_next(s); (*n)++; } break;
        case 5: { static const uint8_t big[] = {0xff, 0xff, 0xff, 0x7f};
                  size_t m = *n - at < 4 ? *n - at : 4; memcpy(d + at, big, m); } break;
        }
    }
}

static void fuzz_all(void)
{
    size_t nseeds, loaded = 0;
    char **files = fuzz_seed_files(&nseeds);
    const char *it = getenv("LOWBIT_FUZZ_ITERS");
    long iters = it ? atol(it) : FUZZ_DEFAULT_ITERS;
    uint64_t s = TEST_SEED | 1;
    for (size_t i = 0; i < nseeds; i++) {
        size_t n = 0;
        uint8_t *seed = fuzz_load(files[i], &n);
        free(files[i]);
        if (!seed) continue;
        loaded++;
        LLVMFuzzerTestOneInput(seed, n);
        size_t cap = 2 * n + 64;
        uint8_t *buf = malloc(cap);
        for (long k = 0; buf && k < iters / (long)nseeds + 1; k++) {
            size_t m = n;
            memcpy(buf, seed, n);
            fuzz_mutate(buf, &m, cap, &s);
#ifdef FUZZ_STRUCTURED_MUTATE
            if (k % 2) m = fuzz_structured_mutate(buf, m, cap, fuzz_next(&s));
#endif
            LLVMFuzzerTestOneInput(buf, m);
        }
        free(buf);
        free(seed);
    }
    free(files);
    uint8_t tiny[64];
    for (size_t n = 0; n < sizeof tiny; n++) {
        for (size_t i = 0; i < n; i++) tiny[i] = (uint8_t)fuzz_next(&s);
        LLVMFuzzerTestOneInput(tiny, n);
    }
    if (!loaded) printf("SKIP %s: no seed files found; fuzzed random bytes only\n", th_name);
    CHECK(1, "reached the end without a crash");
}

/* `fuzz_x --seeds` lists the seed files that exist, one per line (make fuzz
 * copies them into the libFuzzer seed corpus). */
static int fuzz_list_seeds(void)
{
    size_t n;
    char **files = fuzz_seed_files(&n);
    for (size_t i = 0; i < n; i++) {
        FILE *f = fopen(files[i], "rb");
        if (f) { printf("%s\n", files[i]); fclose(f); }
        free(files[i]);
    }
    free(files);
    return 0;
}

int main(int argc, char **argv)
{
    fuzz_set_corpus(argv[0]);
    if (argc > 1 && !strcmp(argv[1], "--seeds")) return fuzz_list_seeds();
    TEST_INIT(argc, argv);
    RUN(fuzz_all);
    return TEST_DONE();
}
#endif
#endif
