/* test_core.c: status/errors, RNG, BF16/FP16 codecs (exhaustive over all
 * 16-bit codes against an independent double-precision reference), thread
 * pool determinism, JSON reader, atomic output files, ISA switch. */
#include "harness.h"
#include "core/core.h"
#include <unistd.h>

/* Independent references: decode by the IEEE formula in double. */
static double ref_f16(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void test_f16_decode_exhaustive(void)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lb_f16_to_f32((uint16_t)h);
        double r = ref_f16((uint16_t)h);
        if (isnan(r)) CHECK(isnan(f), "code %04x", h);
        else CHECK((double)f == r, "code %04x: %g vs %g", h, f, r);
        if (!isnan(r)) CHECK(lb_f32_to_f16(f) == h, "re-encode %04x -> %04x", h, lb_f32_to_f16(f));
    }
}

/* Round-to-nearest-even by brute force: pick the nearest representable f16
 * (finite codes sorted by value), ties to the even code. */
static uint16_t ref_to_f16(float x)
{
    if (isnan(x)) return 0x7e00;
    double ax = fabs((double)x);
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    if (ax >= 65520.0) return sign | 0x7c00;
    uint16_t best = 0;
    double bd = INFINITY;
    /* positive finite codes are monotonic in value: binary search */
    int lo = 0, hi = 0x7bff;
    while (lo < hi) { int mid = (lo + hi + 1) / 2; if (ref_f16((uint16_t)mid) <= ax) lo = mid; else hi = mid - 1; }
    for (int c = lo; c <= lo + 1 && c <= 0x7bff; c++) {
        double d = fabs(ref_f16((uint16_t)c) - ax);
        if (d < bd || (d == bd && (c & 1) == 0)) { bd = d; best = (uint16_t)c; }
    }
    if (lo == 0x7bff && ax > 65504.0) best = ax >= 65520.0 ? 0x7c00 : 0x7bff;
    return sign | best;
}

static void test_f16_encode_random(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED);
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)lb_rng_u64(&r);
        if (i % 2) u = (u & 0x8fffffffu) | 0x30000000u; /* bias toward f16 range */
        float x = lb__bits_f32(u);
        if (isnan(x)) continue;
        uint16_t a = lb_f32_to_f16(x), b = ref_to_f16(x);
        CHECK(a == b, "x=%a got %04x want %04x", x, a, b);
    }
    /* ties: halfway between 1 and 1+2^-10 goes to even (1.0) */
    CHECK(lb_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "tie down");
    CHECK(lb_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "tie up");
    CHECK(lb_f32_to_f16(65519.0f) == 0x7bff && lb_f32_to_f16(65520.0f) == 0x7c00, "overflow edge");
    CHECK(lb_f32_to_f16(0x1p-25f) == 0 && lb_f32_to_f16(0x1.0001p-25f) == 1, "subnormal edge");
}

static void test_bf16(void)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lb_bf16_to_f32((uint16_t)h);
        CHECK(lb__f32_bits(f) == h << 16, "decode %04x", h);
        if (!isnan(f)) CHECK(lb_f32_to_bf16(f) == h, "re-encode %04x", h);
        else CHECK(isnan(lb_bf16_to_f32(lb_f32_to_bf16(f))), "NaN stays NaN %04x", h);
    }
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 1);
    for (int i = 0; i < 100000; i++) {
        float x = lb__bits_f32((uint32_t)lb_rng_u64(&r));
        if (isnan(x) || isinf(x)) continue;
        uint16_t h = lb_f32_to_bf16(x);
        /* nearest of the two neighbours, ties to even */
        uint16_t lo = (uint16_t)(lb__f32_bits(x) >> 16), hi = (uint16_t)(lo + 1);
        /* the code after the largest finite one stands for 2^128 when rounding */
        double vhi = (hi & 0x7fff) == 0x7f80 ? copysign(ldexp(1.0, 128), x) : (double)lb_bf16_to_f32(hi);
        double dl = fabs((double)lb_bf16_to_f32(lo) - x), dh = fabs(vhi - x);
        uint16_t want = dl < dh ? lo : dh < dl ? hi : (lo & 1 ? hi : lo);
        CHECK(h == want, "x=%a got %04x want %04x", x, h, want);
    }
    CHECK(lb_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80, "tie to even down");
    CHECK(lb_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82, "tie to even up");
}

typedef struct { int64_t *owner; } pool_ctx;
static void mark(void *ctx, int64_t b, int64_t e, int t)
{
    pool_ctx *c = ctx;
    for (int64_t i = b; i < e; i++) c->owner[i] += 1 + 0 * t;
}

static void test_pool(void)
{
    for (int nt = 1; nt <= 4; nt++) {
        lb_pool *p;
        REQUIRE(lb_pool_create(nt, &p) == LB_OK, "create %d", nt);
        CHECK(lb_pool_threads(p) == nt, "threads");
        for (int64_t n = 0; n < 200; n += 7) {
            int64_t owner[200] = {0};
            pool_ctx c = {owner};
            for (int rep = 0; rep < 3; rep++) lb_pool_for(p, n, 4, mark, &c);
            for (int64_t i = 0; i < n; i++) CHECK(owner[i] == 3, "n=%lld i=%lld covered %lld", (long long)n, (long long)i, (long long)owner[i]);
        }
        lb_pool_free(p);
    }
    lb_pool_free(NULL);
    lb_pool *p;
    CHECK(lb_pool_create(100000, &p) == LB_ERR_ARG && strstr(lb_errmsg(), "absurd"), "absurd threads");
}

static void test_json(void)
{
    const char *doc = "{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {\"c\": 7}, \"\": \"\"}";
    lb_json *j;
    REQUIRE(lb__json_parse(doc, strlen(doc), "doc", &j) == LB_OK, "%s", lb_errmsg());
    const lb_json *a = lb__json_get(j, "a");
    REQUIRE(a && a->type == LB_JSON_ARR && a->len == 5, "array");
    CHECK(lb__json_at(a, 1)->num == -2500.0, "number");
    CHECK(lb__json_at(a, 2)->b && lb__json_at(a, 3)->type == LB_JSON_NULL, "literals");
    CHECK(!strcmp(lb__json_at(a, 4)->str, "x\xc3\xa9\xf0\x9f\x98\x80\n"), "utf8 %s", lb__json_at(a, 4)->str);
    int64_t c;
    CHECK(lb__json_int(lb__json_get(j, "b"), "c", &c) && c == 7, "nested int");
    CHECK(lb__json_str(j, "") && !strcmp(lb__json_str(j, ""), ""), "empty key and string");
    lb__json_free(j);
    const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "\"\\ud800\"", "01", "[1] x", "\"a\x01\"", "nul", "-", "1.", "1e"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(lb__json_parse(bad[i], strlen(bad[i]), "bad.json", &j) == LB_ERR_FORMAT, "accepted '%s'", bad[i]);
        CHECK(strstr(lb_errmsg(), "bad.json") != NULL, "message names file: %s", lb_errmsg());
    }
    char deep[2000];
    memset(deep, '[', sizeof deep);
    CHECK(lb__json_parse(deep, sizeof deep, "deep", &j) == LB_ERR_FORMAT, "depth limit");
}

static void test_outfile(void)
{
    char path[] = "/tmp/lowbit_test_outXXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "mkstemp");
    close(fd);
    remove(path);
    lb_outfile o;
    REQUIRE(lb__out_open(path, &o) == LB_OK, "%s", lb_errmsg());
    lb__out_write(&o, "abc", 3);
    CHECK(!test_file_exists(path), "target absent before commit");
    lb__out_abort(&o);
    CHECK(!test_file_exists(path), "target absent after abort");
    REQUIRE(lb__out_open(path, &o) == LB_OK, "%s", lb_errmsg());
    lb__out_write(&o, "abc", 3);
    CHECK(lb__out_commit(&o) == LB_OK, "commit");
    uint8_t *d; size_t n;
    CHECK(lb__read_file(path, &d, &n) == LB_OK && n == 3 && !memcmp(d, "abc", 3), "read back");
    free(d);
    remove(path);
    CHECK(lb__out_open("/nonexistent-dir/x", &o) == LB_ERR_IO && strstr(lb_errmsg(), "/nonexistent-dir/x"), "missing folder");
    CHECK(lb__read_file("/nonexistent-file", &d, &n) == LB_ERR_IO, "missing file");
}

static void test_rng(void)
{
    lb_rng a, b;
    lb_rng_seed(&a, 42); lb_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK(lb_rng_u64(&a) == lb_rng_u64(&b), "determinism");
    double s = 0, s2 = 0;
    int n = 200000;
    lb_rng_seed(&a, TEST_SEED);
    for (int i = 0; i < n; i++) { double x = lb_rng_normal(&a); s += x; s2 += x * x; }
    CHECK(fabs(s / n) < 0.02 && fabs(s2 / n - 1) < 0.03, "normal moments %g %g", s / n, s2 / n);
}

static void test_status_isa(void)
{
    CHECK(lb__err(LB_ERR_FORMAT, "file %s bad", "x") == LB_ERR_FORMAT, "status");
    CHECK(!strcmp(lb_errmsg(), "file x bad"), "message");
    lb__err_prefix(LB_ERR_FORMAT, "loading: ");
    CHECK(!strcmp(lb_errmsg(), "loading: file x bad"), "prefix %s", lb_errmsg());
    CHECK(strcmp(lb_status_str(LB_ERR_IO), "i/o error") == 0, "status str");
    lb_isa best = lb_isa_best();
    CHECK(lb_isa_set(LB_ISA_REF) == LB_ISA_REF && lb_isa_active() == LB_ISA_REF, "force ref");
    CHECK(lb_isa_set(LB_ISA_AVX512) <= best, "cannot exceed cpu");
    lb_isa_set(best);
    CHECK(lb_dtype_size(LB_DTYPE_BF16) == 2 && !strcmp(lb_dtype_name(LB_DTYPE_BF16), "BF16"), "dtype");
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    RUN(test_status_isa);
    RUN(test_rng);
    RUN(test_f16_decode_exhaustive);
    RUN(test_f16_encode_random);
    RUN(test_bf16);
    RUN(test_pool);
    RUN(test_json);
    RUN(test_outfile);
    return TEST_DONE();
}
