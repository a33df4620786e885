/* fuzz_main.h: a fuzz target is tests/fuzz_<parser>.c that defines
 *   int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
 *   static const char *const fuzz_seeds[] = {...};   (paths, may be missing)
 * and then includes this header. Built with clang -fsanitize=fuzzer it is a
 * libFuzzer target (define LB_LIBFUZZER). Otherwise this driver gives it a
 * main(): it loads the seed files (resolving "$MODELS/..." and "$DATA/...")
 * plus a few built-in inputs, and runs LOWBIT_FUZZ_ITERS (default 3000)
 * deterministic mutations (bit flips, byte sets, truncations, splices, inserted
 * digits) from TEST_SEED. A crash or sanitizer report is the failure signal;
 * under `make test`/`make asan` it runs briefly in CI. */
#ifndef LB_FUZZ_MAIN_H
#define LB_FUZZ_MAIN_H
#ifndef LB_LIBFUZZER
#include "harness.h"

static uint8_t *fuzz_load(const char *spec, size_t *n)
{
    char path[4096];
    if (!strncmp(spec, "$MODELS/", 8)) snprintf(path, sizeof path, "%s/%s", test_models_dir(), spec + 8);
    else if (!strncmp(spec, "$DATA/", 6)) snprintf(path, sizeof path, "%s/%s", test_data_dir(), spec + 6);
    else snprintf(path, sizeof path, "%s", spec);
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
    size_t nseeds = sizeof fuzz_seeds / sizeof *fuzz_seeds, loaded = 0;
    const char *it = getenv("LOWBIT_FUZZ_ITERS");
    long iters = it ? atol(it) : 3000;
    uint64_t s = TEST_SEED | 1;
    for (size_t i = 0; i < nseeds; i++) {
        size_t n;
        uint8_t *seed = fuzz_load(fuzz_seeds[i], &n);
        if (!seed) continue;
        loaded++;
        LLVMFuzzerTestOneInput(seed, n);
        size_t cap = n + 64;
        uint8_t *buf = malloc(cap);
        for (long k = 0; buf && k < iters / (long)nseeds + 1; k++) {
            size_t m = n;
            memcpy(buf, seed, n);
            fuzz_mutate(buf, &m, cap, &s);
            LLVMFuzzerTestOneInput(buf, m);
        }
        free(buf);
        free(seed);
    }
    uint8_t tiny[64];
    for (size_t n = 0; n < sizeof tiny; n++) {
        for (size_t i = 0; i < n; i++) tiny[i] = (uint8_t)fuzz_next(&s);
        LLVMFuzzerTestOneInput(tiny, n);
    }
    if (!loaded) printf("SKIP %s: no seed files found; fuzzed random bytes only\n", th_name);
    CHECK(1, "reached the end without a crash");
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    RUN(fuzz_all);
    return TEST_DONE();
}
#endif
#endif
