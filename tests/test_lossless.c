/* test_lossless.c: the lossless BF16 codec (src/lossless).
 *
 * Independent references: a bitwise CRC-32C, a heap-free O(m^2) Huffman and
 * a brute-force search over length vectors for the length-limited optimum,
 * the exponent entropy computed here from a histogram. Round trips are
 * bit-exact on real weights (stories260K, tinystories-656k rounded to BF16)
 * and adversarial data, on every ISA path; every single-bit flip of a blob
 * and every truncation is detected. Folders: other files are copied with
 * bounded memory and counted; an incomplete packed table is refused. */
#include "harness.h"
#include "lossless/lossless.h"
#include "model/model.h"
#include "kernels/kernels.h"
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static uint32_t ref_crc32c(const void *data, size_t n)
{
    const uint8_t *p = data;
    uint32_t c = ~0u;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

static int n_isas(lb_isa *isas)
{
    int k = 0;
    for (int i = LB_ISA_REF; i <= (int)lb_isa_best(); i++) isas[k++] = (lb_isa)i;
    return k;
}

/* Pack, serialize, read back (copy and borrowed), unpack on every ISA with
 * 1 and 2 threads; everything must equal x. Returns the packed tensor (the
 * caller frees it) or NULL after a failed CHECK. */
static lb_bf16_packed *round_trip(const uint16_t *x, int64_t n, int64_t stream_len, const char *what, lb_pool *pool)
{
    lb_bf16_pack_opts o = {.stream_len = stream_len};
    lb_bf16_packed *p = NULL, *q = NULL, *b = NULL;
    lb_status st = lb_bf16_pack(x, n, what, &o, pool, &p);
    CHECK(st == LB_OK, "%s: pack: %s", what, lb_errmsg());
    if (st) return NULL;
    size_t sz = lb_bf16_packed_blob_size(p);
    uint8_t *blob = malloc(sz + 1);
    uint16_t *y = malloc(sizeof *y * (size_t)(n + 1));
    CHECK(lb_bf16_packed_write(p, blob, sz) == LB_OK, "%s: write: %s", what, lb_errmsg());
    st = lb_bf16_packed_read(blob, sz, what, 0, &q);
    CHECK(st == LB_OK, "%s: read: %s", what, lb_errmsg());
    st |= lb_bf16_packed_read(blob, sz, what, LB_PACKED_BORROW, &b);
    CHECK(st == LB_OK, "%s: read borrowed: %s", what, lb_errmsg());
    lb_isa isas[3], saved = lb_isa_active();
    int ni = n_isas(isas);
    for (int k = 0; k < ni && !st; k++) {
        lb_isa_set(isas[k]);
        const lb_bf16_packed *src[3] = {p, q, b};
        for (int j = 0; j < 3; j++) {
            memset(y, 0xA5, sizeof *y * (size_t)(n + 1));
            lb_status s2 = lb_bf16_unpack(src[j], y, j == 1 ? NULL : pool);
            CHECK(s2 == LB_OK, "%s: unpack (%s, copy %d): %s", what, lb_isa_name(isas[k]), j, lb_errmsg());
            CHECK(n == 0 || !memcmp(x, y, sizeof *y * (size_t)n), "%s: round trip differs (%s, copy %d)", what,
                  lb_isa_name(isas[k]), j);
            CHECK(y[n] == 0xA5A5, "%s: wrote past the end", what);
        }
    }
    lb_isa_set(saved);
    lb_bf16_packed_free(q);
    lb_bf16_packed_free(b);
    free(blob);
    free(y);
    if (st) { lb_bf16_packed_free(p); return NULL; }
    return p;
}

static double exp_entropy(const uint16_t *x, int64_t n, uint64_t *hist)
{
    memset(hist, 0, 256 * sizeof *hist);
    for (int64_t i = 0; i < n; i++) hist[(x[i] >> 7) & 0xff]++;
    double h = 0;
    for (int e = 0; e < 256; e++)
        if (hist[e]) h -= (double)hist[e] / (double)n * log2((double)hist[e] / (double)n);
    return h;
}

/* Optimal (unlimited) Huffman cost sum w*len by repeated merging of the two
 * smallest weights: each merge adds its weight to the total cost. */
static uint64_t ref_huffman_cost(const uint64_t *freq, int nsym)
{
    uint64_t w[512];
    int m = 0;
    for (int i = 0; i < nsym; i++) if (freq[i]) w[m++] = freq[i];
    uint64_t cost = 0;
    while (m > 1) {
        int a = 0, b = 1;
        if (w[b] < w[a]) { a = 1; b = 0; }
        for (int i = 2; i < m; i++) {
            if (w[i] < w[a]) { b = a; a = i; }
            else if (w[i] < w[b]) b = i;
        }
        uint64_t s = w[a] + w[b];
        cost += s;
        int lo = a < b ? a : b, hi = a < b ? b : a;
        w[lo] = s;
        w[hi] = w[--m];
    }
    return cost;
}

static uint64_t lens_cost(const uint64_t *freq, const uint8_t *len, int nsym)
{
    uint64_t c = 0;
    for (int i = 0; i < nsym; i++) c += freq[i] * len[i];
    return c;
}

static float *load_floats(const char *path, size_t skip_fixed, int safetensors, int64_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    size_t skip = skip_fixed;
    if (safetensors) {
        uint64_t hl = 0;
        fseek(f, 0, SEEK_SET);
        if (fread(&hl, 8, 1, f) != 1) { fclose(f); return NULL; }
        skip = 8 + (size_t)hl;
    }
    *n = (int64_t)(((size_t)size - skip) / 4);
    float *w = malloc((size_t)*n * 4 + 4);
    fseek(f, (long)skip, SEEK_SET);
    size_t got = fread(w, 4, (size_t)*n, f);
    fclose(f);
    if (got != (size_t)*n) { free(w); return NULL; }
    return w;
}

/* ------------------------------------------------------------------ tests */

static void test_crc32c(void)
{
    const char *s = "123456789";
    CHECK(ref_crc32c(s, 9) == 0xE3069283u, "reference check value %08x", ref_crc32c(s, 9));
    CHECK(lb__crc32c(s, 9) == 0xE3069283u, "check value %08x", lb__crc32c(s, 9));
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED);
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)lb_rng_u64(&r);
    for (size_t n = 0; n <= sizeof buf; n += 1 + n / 16) {
        uint32_t want = ref_crc32c(buf + 1, n - (n > 0));
        CHECK(~lb__crc32c_ref(~0u, buf + 1, n - (n > 0)) == want, "ref n=%zu", n);
        if (lb_isa_best() >= LB_ISA_AVX2) CHECK(~lb__crc32c_avx2(~0u, buf + 1, n - (n > 0)) == want, "avx2 n=%zu", n);
    }
}

/* split then merge every one of the 65536 BF16 codes, at an odd offset and
 * awkward lengths so the SIMD tails run. */
static void test_split_merge_exhaustive(void)
{
    uint16_t *x = malloc(65537 * 2), *y = malloc(65537 * 2);
    uint8_t *e = malloc(65537), *sm = malloc(65537);
    for (uint32_t i = 0; i < 65536; i++) x[i] = (uint16_t)i;
    lb__bf16_split_ref(x, e, sm, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        int ee = (int)(i >> 7) & 0xff, ss = (int)(i >> 15), mm = (int)(i & 0x7f);
        if (e[i] != ee || sm[i] != (ss << 7 | mm)) { CHECK(0, "split %04x", i); break; }
    }
    void (*fns[3])(const uint8_t *, const uint8_t *, uint16_t *, int64_t) = {lb__bf16_merge_ref, lb__bf16_merge_avx2,
                                                                               lb__bf16_merge_avx512};
    for (int k = 0; k <= (int)lb_isa_best(); k++) {
        for (int64_t n = 0; n < 70; n++) {
            memset(y, 0, 140 + 2);
            fns[k](e + 1, sm + 1, y, n);
            CHECK(!memcmp(y, x + 1, (size_t)n * 2) && y[n] == 0, "merge isa %d n=%lld", k, (long long)n);
        }
        fns[k](e, sm, y, 65536);
        CHECK(!memcmp(x, y, 65536 * 2), "merge isa %d all codes", k);
    }
    free(x); free(y); free(e); free(sm);
}

/* Brute force: lengths non-increasing in weight (an optimal code has this
 * form), every non-decreasing length vector in 1..cap with Kraft <= 1. */
static uint64_t brute_cost(const uint64_t *w_desc, int m, int cap, uint8_t *l, int i, int min_l, double kraft)
{
    if (i == m) return 0;
    uint64_t best = UINT64_MAX;
    for (int len = min_l; len <= cap; len++) {
        if (kraft + ldexp(1, -len) > 1.0 + 1e-12) continue;
        l[i] = (uint8_t)len;
        uint64_t rest = brute_cost(w_desc, m, cap, l, i + 1, len, kraft + ldexp(1, -len));
        if (rest != UINT64_MAX && rest + w_desc[i] * (uint64_t)len < best) best = rest + w_desc[i] * (uint64_t)len;
    }
    return best;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void test_package_merge_vs_brute_force(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 1);
    for (int trial = 0; trial < 300; trial++) {
        int m = 2 + (int)(lb_rng_u64(&r) % 7);
        uint64_t freq[9] = {0}, w[9];
        for (int i = 0; i < m; i++) {
            int skew = (int)(lb_rng_u64(&r) % 3);
            freq[i] = skew == 0 ? 1 + lb_rng_u64(&r) % 10 : skew == 1 ? 1 + lb_rng_u64(&r) % 1000 : (uint64_t)1 << (lb_rng_u64(&r) % 20);
            w[i] = freq[i];
        }
        qsort(w, (size_t)m, sizeof *w, cmp_desc);
        int min_cap = 1;
        while ((1 << min_cap) < m) min_cap++;
        for (int cap = min_cap; cap <= 8; cap++) {
            uint8_t len[9], l[9];
            lb__huff_lengths(freq, m, cap, len);
            double kr = 0;
            int longest = 0;
            for (int i = 0; i < m; i++) { kr += ldexp(1, -len[i]); if (len[i] > longest) longest = len[i]; }
            CHECK(fabs(kr - 1.0) < 1e-12, "m=%d cap=%d: Kraft sum %g, want exactly 1", m, cap, kr);
            CHECK(longest <= cap, "m=%d cap=%d: longest %d", m, cap, longest);
            uint64_t want = brute_cost(w, m, cap, l, 0, 1, 0.0), got = lens_cost(freq, len, m);
            CHECK(got == want, "m=%d cap=%d: package-merge cost %llu, optimum %llu", m, cap, (unsigned long long)got,
                  (unsigned long long)want);
            if (cap >= m - 1) CHECK(got == ref_huffman_cost(freq, m), "m=%d: unlimited cap should equal Huffman", m);
        }
    }
}

/* Large alphabets: with a generous cap package-merge equals Huffman; with a
 * binding cap the cost is >= Huffman and the lengths respect the cap. */
static void test_package_merge_large(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 2);
    for (int trial = 0; trial < 40; trial++) {
        uint64_t freq[256] = {0};
        int m = 2 + (int)(lb_rng_u64(&r) % 255);
        for (int i = 0; i < m; i++) freq[lb_rng_u64(&r) % 256] = 1 + (lb_rng_u64(&r) % 100000) * (trial % 2 ? 1 : (uint64_t)(lb_rng_u64(&r) % 1000));
        uint8_t len[256];
        uint64_t huff = ref_huffman_cost(freq, 256);
        lb__huff_lengths(freq, 256, 32, len);
        CHECK(lens_cost(freq, len, 256) == huff, "trial %d: cap 32 cost %llu vs Huffman %llu", trial,
              (unsigned long long)lens_cost(freq, len, 256), (unsigned long long)huff);
        lb__huff_lengths(freq, 256, 9, len);
        CHECK(lb__huff_kraft12(len, 256) == 4096, "trial %d: cap 9 not complete", trial);
        CHECK(lens_cost(freq, len, 256) >= huff, "trial %d: capped beats Huffman?", trial);
    }
}

/* Canonical codes are prefix-free and decode back through the table. */
static void test_decode_table(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 3);
    uint64_t freq[256] = {0};
    for (int i = 0; i < 256; i++) freq[i] = 1 + lb_rng_u64(&r) % 5000;
    uint8_t len[256];
    uint32_t code[256];
    lb__huff_lengths(freq, 256, 12, len);
    lb__huff_codes(len, 256, code);
    uint64_t *tab = malloc(sizeof *tab * LB_HUFF_TABLE_SIZE);
    lb__huff_build_table(len, tab);
    int bad = 0;
    for (int s = 0; s < 256; s++) {
        for (int t = 0; t < 256; t++) {
            if (s == t || len[t] < len[s]) continue;
            if ((code[t] >> (len[t] - len[s])) == code[s]) bad++;  /* code s is a prefix of code t */
        }
        uint64_t e = tab[code[s] << (12 - len[s])];
        CHECK((int)(e >> 8 & 0xff) == s && (int)(e >> 59 & 15) == len[s] && (int)(e & 0xff) >= len[s] && (e >> 56 & 7) >= 1, "table entry of %d", s);
    }
    CHECK(bad == 0, "%d prefix collisions", bad);
    free(tab);
}

static uint16_t gauss_bf16(lb_rng *r, double std)
{
    return lb_f32_to_bf16((float)(lb_rng_normal(r) * std));
}

/* Every length 0..1000 with several stream lengths. */
static void test_every_length(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 4);
    uint16_t *x = malloc(1001 * 2);
    for (int i = 0; i < 1001; i++) x[i] = gauss_bf16(&r, 0.02);
    lb_pool *pool;
    lb_pool_create(2, &pool);
    const int64_t sls[] = {1, 7, 64, 333, LB_LOSSLESS_STREAM_LEN};
    for (int64_t n = 0; n <= 1000; n++) {
        int64_t sl = sls[n % 5];
        lb_bf16_packed *p = round_trip(x, n, sl, "lengths", n % 3 ? pool : NULL);
        if (!p) { CHECK(0, "n=%lld stream_len=%lld", (long long)n, (long long)sl); break; }
        lb_bf16_packed_free(p);
    }
    lb_pool_free(pool);
    free(x);
}

static void test_adversarial(void)
{
    enum { N = 20000 };
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 5);
    uint16_t *x = malloc(N * 2);
    lb_bf16_packed_info info;
    lb_pool *pool;
    lb_pool_create(2, &pool);

    /* one exponent value: no bits at all */
    for (int i = 0; i < N; i++) x[i] = (uint16_t)(0x3f80 | (lb_rng_u64(&r) & 0x807f));
    lb_bf16_packed *p = round_trip(x, N, 1000, "one-exponent", pool);
    if (p) {
        lb_bf16_packed_get_info(p, &info);
        CHECK(info.exp_bits == 0 && info.n_symbols == 1, "constant exponent: %llu bits", (unsigned long long)info.exp_bits);
        CHECK(info.blob_size == (size_t)(LB_BLOB_TABLES + 8 * 20 + N), "constant exponent blob %zu", info.blob_size);
    }
    lb_bf16_packed_free(p);

    /* all 65536 codes (all 256 exponents, NaN, Inf, subnormals, +-0), shuffled */
    uint16_t *all = malloc(65536 * 2);
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    for (int i = 65535; i > 0; i--) { int j = (int)(lb_rng_u64(&r) % (uint64_t)(i + 1)); uint16_t t = all[i]; all[i] = all[j]; all[j] = t; }
    p = round_trip(all, 65536, 4096, "all-codes", pool);
    if (p) { lb_bf16_packed_get_info(p, &info); CHECK(info.n_symbols == 256 && info.longest_code == 8, "uniform: %d symbols, longest %d", info.n_symbols, info.longest_code); }
    lb_bf16_packed_free(p);
    free(all);

    /* special values only */
    const uint16_t spec[] = {0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0xffc1, 0x7f81, 0x0001, 0x807f, 0x0040, 0x3f80};
    for (int i = 0; i < N; i++) x[i] = spec[lb_rng_u64(&r) % 11];
    lb_bf16_packed_free(round_trip(x, N, 777, "specials", pool));

    /* Fibonacci-like frequencies over 30 exponents: the unlimited Huffman code
     * would be ~29 bits deep, so the cap of 12 binds */
    {
        int64_t n = 0;
        uint64_t f1 = 1, f2 = 1;
        uint16_t *fx = malloc(sizeof *fx * 3000000);
        for (int e = 0; e < 30 && n < 2900000; e++) {
            for (uint64_t k = 0; k < f1 && n < 2900000; k++) fx[n++] = (uint16_t)((e + 100) << 7 | (k & 0x7f));
            uint64_t t = f1 + f2; f1 = f2; f2 = t;
        }
        for (int64_t i = n - 1; i > 0; i--) { int64_t j = (int64_t)(lb_rng_u64(&r) % (uint64_t)(i + 1)); uint16_t t = fx[i]; fx[i] = fx[j]; fx[j] = t; }
        p = round_trip(fx, n, LB_LOSSLESS_STREAM_LEN, "fibonacci", pool);
        if (p) {
            lb_bf16_packed_get_info(p, &info);
            uint64_t hist[256];
            double h = exp_entropy(fx, n, hist);
            uint8_t len[256];
            lb__huff_lengths(hist, 256, 32, len);
            CHECK(len[100] > 12 || len[101] > 12, "test data should need codes longer than 12 (%d)", len[100]);
            CHECK(info.longest_code == 12, "cap: longest code %d", info.longest_code);
            CHECK(info.exp_bits >= lens_cost(hist, len, 256), "capped code beats Huffman");
            CHECK((double)info.exp_bits / (double)n >= h - 1e-9, "below entropy");
            CHECK(info.exp_bits == lens_cost(hist, info.code_len, 256), "exp_bits disagrees with the code table");
        }
        lb_bf16_packed_free(p);
        free(fx);
    }
    lb_pool_free(pool);
    free(x);
}

/* Real weights: bit-exact, Huffman bound, deterministic across threads. */
static void check_real(const char *path, size_t skip, int st)
{
    int64_t n;
    float *w = load_floats(path, skip, st, &n);
    if (!w) { printf("SKIP (no %s)\n", path); th_cur_skip = 1; return; }
    uint16_t *x = malloc(sizeof *x * (size_t)n);
    lb_f32_to_bf16_row(w, x, n);
    lb_pool *pool;
    lb_pool_create(2, &pool);
    lb_bf16_packed *p = round_trip(x, n, LB_LOSSLESS_STREAM_LEN, path, pool);
    lb_bf16_packed *p1 = NULL;
    if (p) {
        lb_bf16_packed_info info;
        lb_bf16_packed_get_info(p, &info);
        uint64_t hist[256];
        double h = exp_entropy(x, n, hist), avg = (double)info.exp_bits / (double)n;
        CHECK(avg >= h - 1e-9 && avg < h + 1, "%s: avg %.4f bits, entropy %.4f", path, avg, h);
        uint64_t bound = LB_BLOB_TABLES + 9 * (uint64_t)info.n_streams + (uint64_t)n + (uint64_t)ceil((double)n * (h + 1) / 8);
        CHECK(info.blob_size <= bound, "%s: blob %zu over the Huffman bound %llu", path, info.blob_size, (unsigned long long)bound);
        printf("  %s: %lld values, exponent entropy %.3f bits, coded %.3f bits, %.4f of BF16\n", path, (long long)n, h, avg,
               (double)info.blob_size / (2.0 * (double)n));
        /* single-threaded pack gives the same blob */
        lb_bf16_pack(x, n, path, NULL, NULL, &p1);
        size_t sz = info.blob_size;
        uint8_t *a = malloc(sz), *b = malloc(sz);
        CHECK(p1 && lb_bf16_packed_blob_size(p1) == sz, "blob size depends on threads");
        if (p1 && lb_bf16_packed_blob_size(p1) == sz) {
            lb_bf16_packed_write(p, a, sz);
            lb_bf16_packed_write(p1, b, sz);
            CHECK(!memcmp(a, b, sz), "blob depends on thread count");
        }
        free(a); free(b);
    }
    lb_bf16_packed_free(p);
    lb_bf16_packed_free(p1);
    lb_pool_free(pool);
    free(x);
    free(w);
}

static void test_real_stories260k(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", test_models_dir());
    check_real(path, 28, 0);
}

static void test_real_tinystories656k(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tinystories-656k/model.safetensors", test_models_dir());
    check_real(path, 0, 1);
}

/* Decoding a range of streams gives that slice. */
static void test_unpack_streams(void)
{
    enum { N = 10007 };
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 6);
    uint16_t *x = malloc(N * 2), *y = malloc(N * 2 + 2);
    for (int i = 0; i < N; i++) x[i] = gauss_bf16(&r, 1.0);
    lb_bf16_pack_opts o = {.stream_len = 1000};
    lb_bf16_packed *p;
    REQUIRE(lb_bf16_pack(x, N, "slices", &o, NULL, &p) == LB_OK, "%s", lb_errmsg());
    for (int64_t f = 0; f <= 11; f++)
        for (int64_t c = 0; f + c <= 11; c++) {
            CHECK(lb_bf16_unpack_streams(p, f, c, y, c % 2 ? LB_UNPACK_NOVERIFY : 0, NULL) == LB_OK, "%s", lb_errmsg());
            int64_t a = f * 1000, b = lb__min64((f + c) * 1000, N);
            CHECK(b <= a || !memcmp(y, x + a, (size_t)(b - a) * 2), "streams [%lld,+%lld)", (long long)f, (long long)c);
        }
    lb_pool *pool;
    lb_pool_create(2, &pool);
    for (int k = 0; k < 300; k++) {
        int64_t a = (int64_t)(lb_rng_u64(&r) % (N + 1)), c = (int64_t)(lb_rng_u64(&r) % (uint64_t)(N - a + 1));
        if (k < 4) { a = k * 1000; c = k == 3 ? N - a : 1000 * k; }
        y[c] = 0x5a5a;
        CHECK(lb_bf16_unpack_range(p, a, c, y, k % 2 ? LB_UNPACK_NOVERIFY : 0, k % 3 ? pool : NULL) == LB_OK, "%s", lb_errmsg());
        CHECK(!memcmp(y, x + a, (size_t)c * 2) && y[c] == 0x5a5a, "range [%lld, +%lld)", (long long)a, (long long)c);
    }
    lb_pool_free(pool);
    CHECK(lb_bf16_unpack_range(p, N - 5, 6, y, 0, NULL) == LB_ERR_ARG, "range past the end accepted");
    CHECK(lb_bf16_unpack_streams(p, 5, 7, y, 0, NULL) == LB_ERR_ARG, "range past the end accepted");
    CHECK(lb_bf16_unpack_streams(p, -1, 1, y, 0, NULL) == LB_ERR_ARG, "negative first accepted");
    lb_bf16_packed_free(p);
    free(x); free(y);
}

static void test_bad_args(void)
{
    uint16_t x[4] = {1, 2, 3, 4};
    lb_bf16_packed *p = (lb_bf16_packed *)1;
    lb_bf16_pack_opts o = {.stream_len = -3};
    CHECK(lb_bf16_pack(x, 4, "t", &o, NULL, &p) == LB_ERR_ARG && !p, "negative stream length");
    o = (lb_bf16_pack_opts){.max_code_len = 13};
    CHECK(lb_bf16_pack(x, 4, "t", &o, NULL, &p) == LB_ERR_ARG, "cap 13");
    CHECK(strstr(lb_errmsg(), "'t'") != NULL, "message names the tensor: %s", lb_errmsg());
    CHECK(lb_bf16_pack(NULL, 4, "t", NULL, NULL, &p) == LB_ERR_ARG, "NULL data");
    CHECK(lb_bf16_pack(x, -1, "t", NULL, NULL, &p) == LB_ERR_ARG, "negative n");
    CHECK(lb_bf16_pack(x, 4, "t", NULL, NULL, &p) == LB_OK, "%s", lb_errmsg());
    uint8_t small[16];
    CHECK(lb_bf16_packed_write(p, small, sizeof small) == LB_ERR_ARG, "small buffer");
    lb_bf16_packed_free(p);
    lb_bf16_packed_free(NULL);
}

/* ---- corruption */

static void fix_header_crc(uint8_t *b, int64_t n_streams)
{
    size_t end = LB_BLOB_TABLES + 8 * (size_t)n_streams;
    uint8_t *tmp = malloc(end);
    memcpy(tmp, b, 28);
    memcpy(tmp + 28, b + 32, end - 32);
    uint32_t c = ref_crc32c(tmp, end - 4);
    for (int i = 0; i < 4; i++) b[28 + i] = (uint8_t)(c >> (8 * i));
    free(tmp);
}

/* read + unpack; returns the first failing status */
static lb_status try_blob(const uint8_t *b, size_t sz, uint16_t *y)
{
    lb_bf16_packed *q = NULL;
    lb_status st = lb_bf16_packed_read(b, sz, "wq", LB_PACKED_BORROW, &q);
    if (!st) st = lb_bf16_unpack(q, y, NULL);
    lb_bf16_packed_free(q);
    return st;
}

static void test_corruption(void)
{
    enum { N = 700 };
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 7);
    uint16_t x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = gauss_bf16(&r, 0.05);
    lb_bf16_pack_opts o = {.stream_len = 256};
    lb_bf16_packed *p;
    REQUIRE(lb_bf16_pack(x, N, "wq", &o, NULL, &p) == LB_OK, "%s", lb_errmsg());
    size_t sz = lb_bf16_packed_blob_size(p);
    uint8_t *b = malloc(sz), *c = malloc(sz);
    lb_bf16_packed_write(p, b, sz);
    REQUIRE(try_blob(b, sz, y) == LB_OK, "clean blob: %s", lb_errmsg());

    /* every truncation */
    int missed = 0;
    for (size_t k = 0; k < sz; k++) {
        lb_status st = try_blob(b, k, y);
        if (st != LB_ERR_FORMAT) missed++;
    }
    CHECK(missed == 0, "%d truncations not reported as LB_ERR_FORMAT", missed);
    memcpy(c, b, sz);
    CHECK(try_blob(b, sz - 1, y) == LB_ERR_FORMAT && strstr(lb_errmsg(), "'wq'") && strstr(lb_errmsg(), "truncated"),
          "message: %s", lb_errmsg());

    /* every single-bit flip */
    missed = 0;
    for (size_t bit = 0; bit < sz * 8; bit++) {
        memcpy(c, b, sz);
        c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        lb_status st = try_blob(c, sz, y);
        if (st != LB_ERR_FORMAT && st != LB_ERR_CORRUPT && st != LB_ERR_UNSUPPORTED) {
            if (missed++ < 5) fprintf(stderr, "  undetected flip at byte %zu bit %zu (status %d)\n", bit / 8, bit % 8, st);
        }
    }
    CHECK(missed == 0, "%d of %zu bit flips undetected", missed, sz * 8);

    /* a flipped sign+mantissa byte: the message names tensor and stream */
    memcpy(c, b, sz);
    size_t tables_end = LB_BLOB_TABLES + 8 * 3;
    c[tables_end + 300] ^= 0x10;
    CHECK(try_blob(c, sz, y) == LB_ERR_CORRUPT && strstr(lb_errmsg(), "'wq'") && strstr(lb_errmsg(), "stream 1 of 3"),
          "message: %s", lb_errmsg());
    {   /* a range covering stream 1 fully sees it; one covering part of it does not check the CRC */
        lb_bf16_packed *q;
        REQUIRE(lb_bf16_packed_read(c, sz, "wq", LB_PACKED_BORROW, &q) == LB_OK, "%s", lb_errmsg());
        CHECK(lb_bf16_unpack_range(q, 200, 400, y, 0, NULL) == LB_ERR_CORRUPT && strstr(lb_errmsg(), "stream 1 of 3"),
              "range: %s", lb_errmsg());
        CHECK(lb_bf16_unpack_range(q, 0, 256, y, 0, NULL) == LB_OK && !memcmp(y, x, 512), "stream 0 alone");
        lb_bf16_packed_free(q);
    }

    /* bad code table with a valid header CRC: incomplete code, too long code */
    memcpy(c, b, sz);
    int e0 = -1;
    for (int e = 0; e < 256 && e0 < 0; e++) if (c[32 + e]) e0 = e;
    c[32 + e0]++;
    fix_header_crc(c, 3);
    CHECK(try_blob(c, sz, y) == LB_ERR_FORMAT && strstr(lb_errmsg(), "bad code table") && strstr(lb_errmsg(), "'wq'"),
          "incomplete code: %s", lb_errmsg());
    memcpy(c, b, sz);
    c[32 + e0] = 13;
    fix_header_crc(c, 3);
    CHECK(try_blob(c, sz, y) == LB_ERR_FORMAT, "13-bit code accepted");

    /* lying stream table: sizes that do not add up, and two streams' bit
     * counts swapped (sum kept) */
    memcpy(c, b, sz);
    c[LB_BLOB_TABLES] += 8;   /* stream 0: one byte longer */
    fix_header_crc(c, 3);
    CHECK(try_blob(c, sz, y) == LB_ERR_FORMAT, "longer stream 0 accepted");
    memcpy(c, b, sz);
    uint32_t b0, b1;
    memcpy(&b0, c + LB_BLOB_TABLES, 4);
    memcpy(&b1, c + LB_BLOB_TABLES + 8, 4);
    if (b0 != b1) {
        memcpy(c + LB_BLOB_TABLES, &b1, 4);
        memcpy(c + LB_BLOB_TABLES + 8, &b0, 4);
        fix_header_crc(c, 3);
        lb_status st = try_blob(c, sz, y);
        CHECK(st == LB_ERR_CORRUPT || st == LB_ERR_FORMAT, "swapped stream sizes accepted");
    }
    /* element count that disagrees with the stream count */
    memcpy(c, b, sz);
    c[8] = (uint8_t)(N - 300);
    c[9] = (uint8_t)((N - 300) >> 8);
    fix_header_crc(c, 3);
    CHECK(try_blob(c, sz, y) == LB_ERR_FORMAT && strstr(lb_errmsg(), "streams"), "n: %s", lb_errmsg());
    /* a huge element count must not overflow anything */
    memcpy(c, b, sz);
    memset(c + 8, 0xff, 8);
    fix_header_crc(c, 3);
    CHECK(try_blob(c, sz, y) == LB_ERR_FORMAT, "huge n");
    CHECK(try_blob(b, 0, y) == LB_ERR_FORMAT, "empty blob");
    lb_bf16_packed_free(p);
    free(b);
    free(c);
}

/* ---- packed model files */

static uint8_t *slurp(const char *path, size_t *n)
{
    uint8_t *d = NULL;
    if (lb__read_file(path, &d, n)) return NULL;
    return d;
}

/* Copy file src to dst with the byte `back` bytes before the end xor'd with
 * mask (src == dst allowed). False when src cannot be read. */
static bool copy_flipped(const char *src, const char *dst, size_t back, uint8_t mask)
{
    size_t n;
    uint8_t *d = slurp(src, &n);
    if (!d || n < back) { free(d); return false; }
    d[n - back] ^= mask;
    FILE *f = fopen(dst, "wb");
    bool ok = f && fwrite(d, 1, n, f) == n;
    if (f) fclose(f);
    free(d);
    return ok;
}

/* F32 model -> pack -> unpack gives the RNE BF16 rounding of every tensor,
 * computed here elementwise; BF16 -> pack -> unpack is the same file. */
static void test_model_file(void)
{
    char src[512], a[64], b[64], c[64], d[64];
    snprintf(src, sizeof src, "%s/tinystories-656k/model.safetensors", test_models_dir());
    if (!test_file_exists(src)) SKIP("no %s", src);
    snprintf(a, sizeof a, "/tmp/lb_ll_%d_a", (int)getpid());
    snprintf(b, sizeof b, "/tmp/lb_ll_%d_b", (int)getpid());
    snprintf(c, sizeof c, "/tmp/lb_ll_%d_c", (int)getpid());
    snprintf(d, sizeof d, "/tmp/lb_ll_%d_d", (int)getpid());
    lb_pool *pool;
    lb_pool_create(2, &pool);
    lb_lossless_report r;
    lb_bf16_pack_opts o = {.stream_len = 5000};
    REQUIRE(lb_lossless_pack_model(src, a, &o, pool, NULL, NULL, &r) == LB_OK, "pack: %s", lb_errmsg());
    CHECK(r.n_packed == r.n_tensors && r.n_rounded == r.n_tensors && r.n_tensors > 0, "report %lld/%lld",
          (long long)r.n_packed, (long long)r.n_tensors);
    REQUIRE(lb_lossless_unpack_model(a, b, pool, NULL, NULL, &r) == LB_OK, "unpack: %s", lb_errmsg());
    lb_st_file fs, fb;
    REQUIRE(lb__st_open(src, &fs) == LB_OK, "%s", lb_errmsg());
    REQUIRE(lb__st_open(b, &fb) == LB_OK, "%s", lb_errmsg());
    CHECK(fs.n_tensors == fb.n_tensors, "tensor count %lld vs %lld", (long long)fs.n_tensors, (long long)fb.n_tensors);
    for (int64_t i = 0; i < fs.n_tensors && i < fb.n_tensors; i++) {
        const lb_st_tensor *t = &fs.tensors[i], *u = &fb.tensors[i];
        CHECK(!strcmp(t->name, u->name) && u->dtype == LB_DTYPE_BF16 && t->ndim == u->ndim &&
              !memcmp(t->shape, u->shape, sizeof(int64_t) * (size_t)t->ndim), "tensor %lld: %s", (long long)i, t->name);
        int64_t n = lb__st_numel(t), bad = 0;
        for (int64_t k = 0; k < n && u->dtype == LB_DTYPE_BF16; k++) {
            float f;
            uint16_t h;
            memcpy(&f, (const uint8_t *)t->data + 4 * k, 4);
            memcpy(&h, (const uint8_t *)u->data + 2 * k, 2);
            uint32_t bits = lb__f32_bits(f), rne = (bits + 0x7fff + ((bits >> 16) & 1)) >> 16;
            bad += h != (uint16_t)rne;
        }
        CHECK(bad == 0, "%s: %lld values differ from the RNE rounding", t->name, (long long)bad);
    }
    CHECK(lb__st_meta(&fb, "lowbit.format") == NULL, "unpacked file still says it is packed");
    CHECK(lb__st_meta(&fs, "format") && lb__st_meta(&fb, "format") && !strcmp(lb__st_meta(&fs, "format"), lb__st_meta(&fb, "format")),
          "source metadata not kept");
    lb__st_close(&fs);
    lb__st_close(&fb);
    /* BF16 source: a second round trip is byte-identical, tensor CRCs too */
    REQUIRE(lb_lossless_pack_model(b, c, NULL, NULL, NULL, NULL, &r) == LB_OK, "pack bf16: %s", lb_errmsg());
    CHECK(r.n_rounded == 0, "BF16 source reported as rounded");
    REQUIRE(lb_lossless_unpack_model(c, d, pool, NULL, NULL, &r) == LB_OK, "unpack: %s", lb_errmsg());
    size_t nb, nd;
    uint8_t *xb = slurp(b, &nb), *xd = slurp(d, &nd);
    CHECK(xb && xd && nb == nd && !memcmp(xb, xd, nb), "BF16 file not restored byte for byte");
    if (!lb__st_open(b, &fb)) {
        if (!lb__st_open(d, &fs)) {
            for (int64_t i = 0; i < fb.n_tensors; i++)
                CHECK(ref_crc32c(fb.tensors[i].data, fb.tensors[i].end - fb.tensors[i].begin) ==
                      ref_crc32c(fs.tensors[i].data, fs.tensors[i].end - fs.tensors[i].begin), "crc of %s", fb.tensors[i].name);
            lb__st_close(&fs);
        }
        lb__st_close(&fb);
    }
    free(xb);
    free(xd);
    /* packing a packed file, unpacking a plain one, a damaged packed file */
    CHECK(lb_lossless_pack_model(a, d, NULL, NULL, NULL, NULL, NULL) == LB_ERR_ARG && strstr(lb_errmsg(), "already packed"),
          "%s", lb_errmsg());
    CHECK(lb_lossless_unpack_model(src, d, NULL, NULL, NULL, NULL) == LB_ERR_FORMAT && strstr(lb_errmsg(), "not a packed"),
          "%s", lb_errmsg());
    if (copy_flipped(a, c, 100, 4)) {
        unlink(d);
        CHECK(lb_lossless_unpack_model(c, d, NULL, NULL, NULL, NULL) == LB_ERR_CORRUPT && strstr(lb_errmsg(), "tensor '"),
              "damaged: %s", lb_errmsg());
        CHECK(!test_file_exists(d), "failed unpack left %s behind", d);
    }
    unlink(a); unlink(b); unlink(c); unlink(d);
    lb_pool_free(pool);
}

/* ---- folders: other files, incomplete tables */

/* A small synthetic model folder (F32, two layers) at dir. */
static bool small_model(const char *dir)
{
    lb_synth_opts o;
    lb_synth_preset(NULL, &o);
    o.dim = 64; o.hidden_dim = 96; o.n_layers = 2; o.n_heads = 4; o.n_kv_heads = 2; o.vocab_size = 100;
    o.max_seq = 64; o.seed = TEST_SEED;
    return lb_synth_write(dir, &o, NULL, NULL) == LB_OK;
}

/* Stream-compare two files. */
static bool same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    static uint8_t x[65536], y[65536];
    bool same = fa && fb;
    size_t na, nb;
    while (same && (na = fread(x, 1, sizeof x, fa)) | (nb = fread(y, 1, sizeof y, fb)))
        same = na == nb && !memcmp(x, y, na);
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

enum { EXTRA_MB = 48 };

typedef struct child_result {
    int status;
    long rss_growth_kb;
    lb_lossless_report rep;
    char msg[256];
} child_result;

/* In a child process (so the peak resident size is this call's alone):
 * pack or unpack in -> out; the resident growth in KiB and the report come
 * back through a pipe. */
static child_result in_child(bool unpack, const char *in, const char *out)
{
    child_result r = {.status = -1};
    int fd[2];
    if (pipe(fd)) return r;
    pid_t pid = fork();
    if (pid == 0) {
        struct rusage a, b;
        getrusage(RUSAGE_SELF, &a);
        r.status = unpack ? lb_lossless_unpack_model(in, out, NULL, NULL, NULL, &r.rep)
                          : lb_lossless_pack_model(in, out, NULL, NULL, NULL, NULL, &r.rep);
        getrusage(RUSAGE_SELF, &b);
        r.rss_growth_kb = b.ru_maxrss - a.ru_maxrss;
        snprintf(r.msg, sizeof r.msg, "%s", lb_errmsg());
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fd[1]);
    if (pid < 0 || read(fd[0], &r, sizeof r) != (ssize_t)sizeof r) r.status = -1;
    close(fd[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
    return r;
}

/* A 48 MB file beside the model (a pytorch_model.bin) is copied by pack and
 * unpack byte for byte, with a resident growth far below its size (it was
 * read whole), and counted in the report. */
static void test_folder_other_files(void)
{
    char src[64], pk[64], up[64], big[96], path[128];
    snprintf(src, sizeof src, "/tmp/lb_llo_%d_src", (int)getpid());
    snprintf(pk, sizeof pk, "/tmp/lb_llo_%d_pk", (int)getpid());
    snprintf(up, sizeof up, "/tmp/lb_llo_%d_up", (int)getpid());
    REQUIRE(small_model(src), "synth: %s", lb_errmsg());
    snprintf(big, sizeof big, "%s/pytorch_model.bin", src);
    FILE *f = fopen(big, "wb");
    REQUIRE(f, "create %s", big);
    uint64_t size = (uint64_t)EXTRA_MB << 20;
    for (uint64_t at = 0; at < size; at += 4096) {  /* one nonzero word per page, sparse in between */
        fseek(f, (long)at, SEEK_SET);
        fwrite(&at, sizeof at, 1, f);
    }
    fclose(f);
    REQUIRE(truncate(big, (off_t)size) == 0, "truncate");
    snprintf(path, sizeof path, "%s/config.json", src);
    struct stat st;
    REQUIRE(stat(path, &st) == 0, "config");
    uint64_t other = size + (uint64_t)st.st_size;
    child_result r = in_child(false, src, pk);
    CHECK(r.status == LB_OK, "pack: %s", r.msg);
    CHECK(r.rss_growth_kb < 16 * 1024, "pack: resident size grew by %ld KiB copying a %d MiB file", r.rss_growth_kb,
          EXTRA_MB);
    CHECK(r.rep.n_other_files == 2 && r.rep.other_bytes == other, "pack: %lld other files, %llu bytes (want 2, %llu)",
          (long long)r.rep.n_other_files, (unsigned long long)r.rep.other_bytes, (unsigned long long)other);
    snprintf(path, sizeof path, "%s/pytorch_model.bin", pk);
    CHECK(same_file(big, path), "pack: %s not copied byte for byte", path);
    r = in_child(true, pk, up);
    CHECK(r.status == LB_OK, "unpack: %s", r.msg);
    CHECK(r.rss_growth_kb < 16 * 1024, "unpack: resident size grew by %ld KiB", r.rss_growth_kb);
    CHECK(r.rep.n_other_files == 2 && r.rep.other_bytes == other, "unpack: %lld other files, %llu bytes",
          (long long)r.rep.n_other_files, (unsigned long long)r.rep.other_bytes);
    snprintf(path, sizeof path, "%s/pytorch_model.bin", up);
    CHECK(same_file(big, path), "unpack: %s not copied byte for byte", path);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", src, pk, up);
    CHECK(system(cmd) == 0, "cleanup");
}

/* Copy packed file `in` to `out` with the entry of tensor `name` removed
 * from the lowbit.lossless table. */
static bool drop_table_entry(const char *in, const char *out, const char *name)
{
    lb_st_file f;
    if (lb__st_open(in, &f)) return false;
    const char *tab = lb__st_meta(&f, "lowbit.lossless");
    char key[256], *t = tab ? strdup(tab) : NULL;
    snprintf(key, sizeof key, "\"%s\":{", name);
    char *a = t ? strstr(t, key) : NULL, *b = a ? strchr(a, '}') + 1 : NULL;
    if (b && *b == ',') b++;
    else if (a && a[-1] == ',') a--;
    if (a) memmove(a, b, strlen(b) + 1);
    lb_st_writer *w = NULL;
    lb_status s = a ? lb__st_writer_open(out, &w) : LB_ERR_ARG;
    for (int64_t i = 0; !s && i < f.n_meta; i++)
        s = lb__st_writer_meta(w, f.meta_keys[i], strcmp(f.meta_keys[i], "lowbit.lossless") ? f.meta_vals[i] : t);
    for (int64_t i = 0; !s && i < f.n_tensors; i++)
        s = lb__st_writer_add(w, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].ndim, f.tensors[i].shape);
    for (int64_t i = 0; !s && i < f.n_tensors; i++)
        s = lb__st_writer_write(w, f.tensors[i].data, (size_t)(f.tensors[i].end - f.tensors[i].begin));
    if (w) s = s ? (lb__st_writer_abort(w), s) : lb__st_writer_commit(w);
    free(t);
    lb__st_close(&f);
    return s == LB_OK;
}

/* A packed file whose table misses one blob tensor is refused by unpack,
 * naming the tensor, with no output left (it wrote a U8 tensor the loader
 * refuses); the complete file unpacks and its output loads. */
static void test_unpack_incomplete_table(void)
{
    char src[64], pk[96], bad[96], out[96], one[96];
    snprintf(src, sizeof src, "/tmp/lb_lli_%d_src", (int)getpid());
    REQUIRE(small_model(src), "synth: %s", lb_errmsg());
    snprintf(pk, sizeof pk, "%s_pk.st", src);
    snprintf(bad, sizeof bad, "%s_bad.st", src);
    snprintf(out, sizeof out, "%s_out.st", src);
    snprintf(one, sizeof one, "%s/model.safetensors", src);
    REQUIRE(lb_lossless_pack_model(one, pk, NULL, NULL, NULL, NULL, NULL) == LB_OK, "pack: %s", lb_errmsg());
    REQUIRE(drop_table_entry(pk, bad, "model.layers.1.mlp.up_proj.weight"), "rewrite table");
    lb_status s = lb_lossless_unpack_model(bad, out, NULL, NULL, NULL, NULL);
    CHECK(s == LB_ERR_FORMAT && strstr(lb_errmsg(), "model.layers.1.mlp.up_proj.weight") &&
          strstr(lb_errmsg(), "incomplete"), "status %d: %s", s, lb_errmsg());
    CHECK(!test_file_exists(out), "refused unpack left %s", out);
    lb_lossless_report r;
    REQUIRE(lb_lossless_unpack_model(pk, out, NULL, NULL, NULL, &r) == LB_OK, "unpack: %s", lb_errmsg());
    CHECK(r.n_packed == r.n_tensors && r.n_tensors == 2 + 2 * 9, "report %lld of %lld", (long long)r.n_packed,
          (long long)r.n_tensors);
    /* the unpacked file replaces the model's weights: the folder loads */
    rename(out, one);
    lb_model *m = NULL;
    CHECK(lb_model_load(src, &m) == LB_OK, "unpacked model does not load: %s", lb_errmsg());
    lb_model_free(m);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s' '%s'", src, pk, bad, out);
    CHECK(system(cmd) == 0, "cleanup");
}

/* Naive Y = X W^T with BF16/F32 weights, any row order: the stand-in for the
 * forward pass's matmul (the unpacker must feed it the same values). */
static void naive_mm(lb_pool *pool, const lb_mat *w, const float *x, int64_t nt, int64_t xs, float *y, int64_t ys)
{
    float *row = malloc(sizeof *row * (size_t)w->cols);
    for (int64_t r = 0; r < w->rows; r++) {
        for (int64_t c = 0; c < w->cols; c++)
            row[c] = w->dtype == LB_DTYPE_BF16 ? lb_bf16_to_f32(((const uint16_t *)w->data)[r * w->cols + c])
                                               : ((const float *)w->data)[r * w->cols + c];
        for (int64_t t = 0; t < nt; t++) {
            float acc = 0;
            for (int64_t c = 0; c < w->cols; c++) acc += row[c] * x[t * xs + c];
            y[t * ys + r] = acc;
        }
    }
    free(row);
}

static void compare_weight(lb_unpacker *u, const lb_weight *a, const lb_weight *b, const char *what)
{
    CHECK(a->rows == b->rows && a->cols == b->cols && a->dtype == LB_DTYPE_BF16 && b->dtype == LB_DTYPE_BF16 && a->data,
          "%s: shape/dtype", what);
    if (!a->data || a->rows != b->rows || a->cols != b->cols) return;
    int64_t n = a->rows * a->cols;
    if (b->rep != &lb__wrep_lossless) {
        CHECK(b->rep == &lb__wrep_dense && b->data && !memcmp(a->data, b->data, (size_t)n * 2), "%s: vector differs", what);
        return;
    }
    float *ra = malloc(sizeof(float) * (size_t)a->cols), *rb = malloc(sizeof(float) * (size_t)a->cols);
    for (int64_t r = 0; r < a->rows; r += 1 + a->rows / 7) {
        lb_bf16_to_f32_row((const uint16_t *)a->data + r * a->cols, ra, a->cols);
        lb__lossless_row(b, r, rb);
        CHECK(!memcmp(ra, rb, sizeof(float) * (size_t)a->cols), "%s: row %lld", what, (long long)r);
    }
    enum { NT = 3 };
    float *x = malloc(sizeof(float) * (size_t)(NT * a->cols)), *ya = calloc((size_t)(NT * (a->rows + 2)), 4), *yb = calloc((size_t)(NT * (a->rows + 2)), 4);
    for (int64_t i = 0; i < NT * a->cols; i++) x[i] = (float)sin((double)i);
    lb_mat am = {.data = a->data, .dtype = a->dtype, .rows = a->rows, .cols = a->cols};
    naive_mm(NULL, &am, x, NT, a->cols, ya, a->rows + 2);
    lb__unpacker_matmul(u, naive_mm, NULL, b, x, NT, a->cols, yb, a->rows + 2);
    CHECK(!memcmp(ya, yb, sizeof(float) * (size_t)(NT * (a->rows + 2))), "%s: matmul differs", what);
    free(ra); free(rb); free(x); free(ya); free(yb);
}

/* A packed model folder loads with packed matrices (borrowed, verified) and
 * decoded vectors; rows, block-wise products and sizes match the BF16 model. */
static void test_packed_model_load(void)
{
    char src[512], a[64], b[64], c[64];
    snprintf(src, sizeof src, "%s/tinystories-656k", test_models_dir());
    if (!test_file_exists(src)) SKIP("no %s", src);
    snprintf(a, sizeof a, "/tmp/lb_llm_%d_a", (int)getpid());
    snprintf(b, sizeof b, "/tmp/lb_llm_%d_b", (int)getpid());
    snprintf(c, sizeof c, "/tmp/lb_llm_%d_c", (int)getpid());
    lb_bf16_pack_opts o = {.stream_len = 3000};
    REQUIRE(lb_lossless_pack_model(src, a, &o, NULL, NULL, NULL, NULL) == LB_OK, "%s", lb_errmsg());
    REQUIRE(lb_lossless_unpack_model(a, b, NULL, NULL, NULL, NULL) == LB_OK, "%s", lb_errmsg());  /* BF16 folder */
    REQUIRE(lb_lossless_pack_model(b, c, &o, NULL, NULL, NULL, NULL) == LB_OK, "%s", lb_errmsg()); /* packed BF16 */
    lb_model *ma = NULL, *mb = NULL;
    REQUIRE(lb_model_load(b, &ma) == LB_OK, "load bf16: %s", lb_errmsg());
    lb_status st = lb_model_load(c, &mb);
    CHECK(st == LB_OK, "load packed: %s", lb_errmsg());
    if (!st) {
        CHECK(mb->tok_embed.rep == &lb__wrep_lossless && mb->layers[0].wq.rep == &lb__wrep_lossless, "no packed weights");
        lb_unpacker *u = NULL;  /* a small workspace: several blocks per matrix, cut inside streams */
        const lb_weight *all[] = {&mb->tok_embed, &mb->layers[0].wq, &mb->layers[0].w_gate, &mb->layers[0].w_down};
        REQUIRE(lb__unpacker_create(all, 4, 1000, &u) == LB_OK && u, "unpacker");
        compare_weight(u, &ma->tok_embed, &mb->tok_embed, "tok_embed");
        compare_weight(u, &ma->lm_head, &mb->lm_head, "lm_head");
        compare_weight(u, &ma->final_norm, &mb->final_norm, "final_norm");
        for (int64_t l = 0; l < ma->cfg.n_layers; l++) {
            const lb_layer_weights *A = &ma->layers[l], *B = &mb->layers[l];
            const lb_weight *wa[] = {&A->wq, &A->wk, &A->wv, &A->wo, &A->w_gate, &A->w_up, &A->w_down, &A->attn_norm, &A->ffn_norm};
            const lb_weight *wb[] = {&B->wq, &B->wk, &B->wv, &B->wo, &B->w_gate, &B->w_up, &B->w_down, &B->attn_norm, &B->ffn_norm};
            for (int k = 0; k < 9; k++) compare_weight(u, wa[k], wb[k], "layer weight");
        }
        lb_model_info ia, ib;
        lb_model_get_info(ma, &ia);
        lb_model_get_info(mb, &ib);
        CHECK(ia.n_params == ib.n_params, "params %lld vs %lld", (long long)ia.n_params, (long long)ib.n_params);
        CHECK(ib.weight_bytes < ia.weight_bytes * 0.70, "packed weight bytes %zu vs %zu", ib.weight_bytes, ia.weight_bytes);
        lb__unpacker_free(u);
        /* the forward pass on the packed model gives the BF16 model's logits bit for bit */
        enum { NTOK = 40 };
        int32_t tok[NTOK];
        lb_rng r;
        lb_rng_seed(&r, TEST_SEED + 8);
        for (int i = 0; i < NTOK; i++) tok[i] = (int32_t)(lb_rng_u64(&r) % (uint64_t)ma->cfg.vocab_size);
        size_t nl = (size_t)NTOK * (size_t)ma->cfg.vocab_size;
        float *la = malloc(nl * 4), *lbuf = malloc(nl * 4);
        for (int threads = 1; threads <= 2; threads++) {
            lb_session_opts so = {.n_threads = threads, .max_ctx = NTOK, .max_batch = 16};
            lb_session *sa = NULL, *sb = NULL;
            CHECK(lb_session_create(ma, &so, &sa) == LB_OK && lb_session_create(mb, &so, &sb) == LB_OK, "%s", lb_errmsg());
            if (sa && sb) {
                CHECK(lb_forward_all(sa, tok, NTOK, la) == LB_OK && lb_forward_all(sb, tok, NTOK, lbuf) == LB_OK, "%s", lb_errmsg());
                CHECK(!memcmp(la, lbuf, nl * 4), "%d threads: packed logits differ from BF16", threads);
                lb_session_reset(sb);   /* one token at a time (the decode path) */
                float *one = malloc((size_t)ma->cfg.vocab_size * 4);
                for (int i = 0; i < NTOK; i++) lb_forward(sb, tok + i, 1, one);
                CHECK(!memcmp(la + (size_t)(NTOK - 1) * (size_t)ma->cfg.vocab_size, one, (size_t)ma->cfg.vocab_size * 4),
                      "%d threads: token-by-token logits differ", threads);
                free(one);
            }
            lb_session_free(sa);
            lb_session_free(sb);
        }
        free(la);
        free(lbuf);
    }
    lb_model_free(ma);
    lb_model_free(mb);
    /* a damaged packed model is refused at load, naming the tensor */
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", c);
    if (copy_flipped(path, path, 7, 0x20)) {
        mb = NULL;
        CHECK(lb_model_load(c, &mb) == LB_ERR_CORRUPT && strstr(lb_errmsg(), "tensor '"), "damaged: %s", lb_errmsg());
        lb_model_free(mb);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", a, b, c);
    CHECK(system(cmd) == 0, "cleanup");
}


/* The fused decode + matmul (lb__unpacker_matmul with lb__matmul) equals
 * lb__matmul on the BF16 matrix bit for bit: awkward shapes (1 row, 1
 * column, rows and columns that cut streams anywhere), stream lengths
 * shorter than a row, a chunk, or longer than the matrix, a constant
 * exponent, 1/2/3 threads (the last two shapes are big enough to be split
 * across threads), 1 and 5 tokens, every ISA path, and a small workspace
 * (many sub-blocks per segment). */
static void test_fused_matmul(void)
{
    static const int64_t shapes[][2] = {{1, 1}, {1, 300}, {7, 1}, {33, 17}, {300, 257}, {129, 1000}, {2, 4100}, {250, 768}, {2000, 300}, {1001, 700}};
    static const int64_t lens[] = {1, 7, 1000, 4096, 5000, 65536};
    lb_pool *pools[3] = {NULL, NULL, NULL};
    REQUIRE(lb_pool_create(2, &pools[1]) == LB_OK && lb_pool_create(3, &pools[2]) == LB_OK, "pools");
    lb_isa isas[4];
    int ni = n_isas(isas);
    lb_isa keep = lb_isa_active();
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED + 11);
    int cases = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int64_t rows = shapes[si][0], cols = shapes[si][1], n = rows * cols;
        uint16_t *wv = malloc(sizeof *wv * (size_t)n);
        bool constant = si == 4;    /* one exponent only: the no-bits kind */
        for (int64_t i = 0; i < n; i++)
            wv[i] = constant ? (uint16_t)(0x3c00 | (lb_rng_u64(&r) & 0x807f))
                             : lb_f32_to_bf16((float)(lb_rng_normal(&r) * 0.02));
        enum { NT = 5 };
        float *x = malloc(sizeof *x * (size_t)(NT * cols));
        for (int64_t i = 0; i < NT * cols; i++) x[i] = (float)lb_rng_normal(&r);
        int64_t ys = rows + 3;
        float *ya = malloc(sizeof *ya * (size_t)(NT * ys)), *yb = malloc(sizeof *yb * (size_t)(NT * ys));
        lb_mat wa = {.data = wv, .dtype = LB_DTYPE_BF16, .rows = rows, .cols = cols};
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            if (lens[li] < 100 && n > 5000) continue;   /* one value per stream: slow, and covered by smaller shapes */
            lb_bf16_pack_opts o = {.stream_len = lens[li]};
            lb_bf16_packed *p = NULL;
            REQUIRE(lb_bf16_pack(wv, n, "fused", &o, NULL, &p) == LB_OK, "%s", lb_errmsg());
            CHECK(!constant || p->kind == LB_KIND_CONSTANT, "kind %d", p->kind);
            lb_weight wb = lb__weight_lossless(p, rows, cols);
            const lb_weight *list[1] = {&wb};
            for (int ci = 0; ci < 2; ci++) {
                lb_unpacker *u = NULL;
                REQUIRE(lb__unpacker_create(list, 1, ci ? 0 : 2 * cols + 5, &u) == LB_OK && u, "unpacker");
                for (int ii = 0; ii < ni; ii++) {
                    lb_isa_set(isas[ii]);
                    for (int th = 0; th < 3; th++)
                        for (int nt = 1; nt <= NT; nt += NT - 1) {
                            for (int64_t i = 0; i < NT * ys; i++) ya[i] = yb[i] = -1.0f;
                            lb__matmul(NULL, &wa, x, nt, cols, ya, ys);
                            lb__unpacker_matmul(u, lb__matmul, pools[th], &wb, x, nt, cols, yb, ys);
                            CHECK(!memcmp(ya, yb, sizeof *ya * (size_t)(NT * ys)),
                                  "%lldx%lld stream_len %lld cap %d isa %s threads %d tokens %d: differs",
                                  (long long)rows, (long long)cols, (long long)lens[li], ci, lb_isa_name(isas[ii]),
                                  th + 1, nt);
                            cases++;
                        }
                }
                lb__unpacker_free(u);
            }
            lb_bf16_packed_free(p);
        }
        free(wv); free(x); free(ya); free(yb);
    }
    lb_isa_set(keep);
    printf("  %d fused products compared\n", cases);
    lb_pool_free(pools[1]);
    lb_pool_free(pools[2]);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    RUN(test_crc32c);
    RUN(test_split_merge_exhaustive);
    RUN(test_package_merge_vs_brute_force);
    RUN(test_package_merge_large);
    RUN(test_decode_table);
    RUN(test_every_length);
    RUN(test_adversarial);
    RUN(test_real_stories260k);
    RUN(test_real_tinystories656k);
    RUN(test_unpack_streams);
    RUN(test_bad_args);
    RUN(test_corruption);
    RUN(test_model_file);
    RUN(test_packed_model_load);
    RUN(test_folder_other_files);
    RUN(test_unpack_incomplete_table);
    RUN(test_fused_matmul);
    return TEST_DONE();
}
