/* test_loaders.c: model loaders on the real shared checkpoints and on broken
 * copies of them written to /tmp. Checks the config against the facts
 * published with the models, that the two llama2.c layouts (which order the
 * tensors differently) give byte-identical weights, that weights are views
 * into the mapping (no copies), and that every truncation or lying header
 * gives one clear error naming the file. */
#include "harness.h"
#include "model/loader.h"
#include "core/safetensors.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char buf[8][256];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) == 0 && w == n;
}

static uint8_t *read_all(const char *path, size_t *n)
{
    uint8_t *d;
    if (lb__read_file(path, &d, n)) return NULL;
    return d;
}

static const char *models_file(const char *rel)
{
    static char buf[4][1024];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 1024, "%s/%s", test_models_dir(), rel);
    return p;
}

/* Loading must fail with `want`, and the message must name the file. */
static void expect_fail(const char *path, lb_status want, const char *needle)
{
    lb_model *m = (lb_model *)1;
    lb_status s = lb_model_load(path, &m);
    CHECK(s == want, "%s: status %d (%s), want %d", path, s, lb_errmsg(), want);
    CHECK(m == NULL, "%s: out not cleared on failure", path);
    CHECK(strstr(lb_errmsg(), path) != NULL, "message does not name the file: '%s'", lb_errmsg());
    if (needle) CHECK(strstr(lb_errmsg(), needle) != NULL, "message lacks '%s': '%s'", needle, lb_errmsg());
}

static bool in_map(const lb_model *m, const lb_weight *w)
{
    size_t bytes = (size_t)(w->rows * w->cols) * lb_dtype_size(w->dtype);
    for (int i = 0; i < m->n_maps; i++) {
        const uint8_t *lo = m->maps[i].data, *p = w->data;
        if (p >= lo && p + bytes <= lo + m->maps[i].size) return true;
    }
    return false;
}

static bool same_weight(const lb_weight *a, const lb_weight *b)
{
    if (a->dtype != b->dtype || a->rows != b->rows || a->cols != b->cols) return false;
    if (!a->data || !b->data) return a->data == b->data;
    return !memcmp(a->data, b->data, (size_t)(a->rows * a->cols) * lb_dtype_size(a->dtype));
}

/* Every weight of a model, in a fixed order (NULL-data entries included). */
static int all_weights(const lb_model *m, const lb_weight **out, int cap)
{
    int n = 0;
    out[n++] = &m->tok_embed; out[n++] = &m->final_norm; out[n++] = &m->lm_head;
    for (int64_t l = 0; l < m->cfg.n_layers && n + 14 <= cap; l++) {
        const lb_layer_weights *L = &m->layers[l];
        const lb_weight *w[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->bq, &L->bk, &L->bv, &L->q_norm,
                                &L->k_norm, &L->wo, &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down};
        for (int k = 0; k < 14; k++) out[n++] = w[k];
    }
    return n;
}

/* ------------------------------------------------------------- llama2.c */

#define S260_LEGACY "stories260K/stories260K.bin"
#define S260_V1 "stories260K/stories260K_v1.bin"

/* Facts from the models README: dim 64, hidden 172, 5 layers, 8 heads,
 * 4 kv heads, vocab 512 (shared classifier), seq_len 512. */
static void check_stories260k_config(const lb_model *m)
{
    const lb_config *c = &m->cfg;
    CHECK(c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 5, "dims %lld %lld %lld", (long long)c->dim,
          (long long)c->hidden_dim, (long long)c->n_layers);
    CHECK(c->n_heads == 8 && c->n_kv_heads == 4 && c->head_dim == 8, "heads %lld/%lld hd %lld",
          (long long)c->n_heads, (long long)c->n_kv_heads, (long long)c->head_dim);
    CHECK(c->vocab_size == 512 && c->max_seq == 512, "vocab %lld seq %lld", (long long)c->vocab_size,
          (long long)c->max_seq);
    CHECK(c->rope_layout == LB_ROPE_INTERLEAVED && c->norm_eps == 1e-5f && c->rope_theta == 10000.0f,
          "rope/eps/theta");
    CHECK(c->tied_embeddings && m->lm_head.data == m->tok_embed.data, "classifier must be shared");
    CHECK(c->arch == LB_ARCH_LLAMA && !c->qkv_bias && !c->qk_norm, "arch");
    lb_model_info info;
    lb_model_get_info(m, &info);
    /* parameter count by formula: embed + per layer (2 norms, q, k, v, o, 3 ffn) + final norm */
    int64_t d = 64, h = 172, kv = 32, L = 5, V = 512;
    int64_t want = V * d + L * (2 * d + d * d + 2 * kv * d + d * d + 3 * h * d) + d;
    CHECK(info.n_params == want, "n_params %lld want %lld", (long long)info.n_params, (long long)want);
    CHECK(info.weight_bytes == (size_t)want * 4, "weight_bytes %zu", info.weight_bytes);
    CHECK(!strcmp(info.arch, "llama"), "arch %s", info.arch);
}

static void test_llama2c_both_layouts(void)
{
    const char *a = models_file(S260_LEGACY), *b = models_file(S260_V1);
    if (!test_file_exists(a) || !test_file_exists(b)) SKIP("stories260K not found in %s", test_models_dir());
    lb_model *ma = NULL, *mb = NULL;
    lb_status s = lb_model_load(a, &ma);
    REQUIRE(s == LB_OK, "load %s: %s", a, lb_errmsg());
    s = lb_model_load(b, &mb);
    if (s != LB_OK) { lb_model_free(ma); REQUIRE(0, "load %s: %s", b, lb_errmsg()); }
    check_stories260k_config(ma);
    check_stories260k_config(mb);
    CHECK(!strcmp(ma->source_format, "llama2c") && !strcmp(mb->source_format, "llama2c-v1"), "sources %s %s",
          ma->source_format, mb->source_format);
    const lb_weight *wa[128], *wb[128];
    int na = all_weights(ma, wa, 128), nb = all_weights(mb, wb, 128);
    CHECK(na == nb, "weight counts %d %d", na, nb);
    int present = 0;
    for (int i = 0; i < na && i < nb; i++) {
        CHECK(same_weight(wa[i], wb[i]), "weight %d differs between the two layouts", i);
        if (wa[i]->data) {
            present++;
            CHECK(wa[i]->dtype == LB_DTYPE_F32, "dtype");
            CHECK(in_map(ma, wa[i]) && in_map(mb, wb[i]), "weight %d is not a view into the mapping", i);
        }
    }
    CHECK(present == 3 + 5 * 9, "present weights %d", present);
    CHECK(ma->store.n == 0 && mb->store.n == 0, "weights were copied instead of mapped");
    /* the legacy file's first embedding float sits right after the 28-byte header */
    CHECK((const uint8_t *)ma->tok_embed.data == ma->maps[0].data + 28, "legacy embedding offset");
    CHECK((const uint8_t *)mb->layers[0].attn_norm.data == mb->maps[0].data + 256, "v1 first tensor offset");
    lb_model_free(ma);
    lb_model_free(mb);
}

static void put_i32(uint8_t *p, int32_t v) { memcpy(p, &v, 4); }

/* An unshared classifier: negative vocab (legacy) or flag 0 (v1), with a
 * distinct classifier appended; lm_head must point at the appended bytes. */
static void test_llama2c_unshared(void)
{
    const char *paths[2] = {models_file(S260_LEGACY), models_file(S260_V1)};
    if (!test_file_exists(paths[0]) || !test_file_exists(paths[1])) SKIP("stories260K not found");
    for (int v = 0; v < 2; v++) {
        size_t n;
        uint8_t *d = read_all(paths[v], &n);
        REQUIRE(d, "read %s", paths[v]);
        size_t cls = 512 * 64 * 4;
        uint8_t *e = malloc(n + cls);
        REQUIRE(e, "malloc");
        memcpy(e, d, n);
        for (size_t i = 0; i < cls / 4; i++) { float f = (float)i * 0.25f; memcpy(e + n + 4 * i, &f, 4); }
        if (v == 0) put_i32(e + 20, -512); else e[36] = 0;
        const char *p = tmp_path(v ? "unshared_v1.bin" : "unshared.bin");
        REQUIRE(write_file(p, e, n + cls), "write");
        lb_model *m = NULL;
        lb_status s = lb_model_load(p, &m);
        CHECK(s == LB_OK, "%s: %s", p, lb_errmsg());
        if (m) {
            CHECK(!m->cfg.tied_embeddings && m->cfg.vocab_size == 512, "unshared, vocab 512");
            CHECK((const uint8_t *)m->lm_head.data == m->maps[0].data + n, "classifier follows the rest");
            CHECK(((const float *)m->lm_head.data)[7] == 1.75f, "classifier contents");
            lb_model_info info;
            lb_model_get_info(m, &info);
            CHECK(info.n_params == 260032 + 512 * 64, "n_params counts the classifier: %lld", (long long)info.n_params);
        }
        lb_model_free(m);
        /* the unshared header on a file without the classifier is truncated */
        REQUIRE(write_file(p, e, n), "write");
        expect_fail(p, LB_ERR_FORMAT, "truncated");
        free(e);
        free(d);
    }
}

/* Cut the file at every header boundary and at, just before and inside every
 * tensor: each cut must be reported as truncated, naming the file. */
static void test_llama2c_truncated(void)
{
    const char *paths[2] = {models_file(S260_LEGACY), models_file(S260_V1)};
    if (!test_file_exists(paths[0])) SKIP("stories260K not found");
    /* tensor starts in floats after the header, computed from the layout */
    int64_t d = 64, h = 172, kv = 32, L = 5, V = 512;
    int64_t leg[] = {V * d, L * d, L * d * d, L * kv * d, L * kv * d, L * d * d, L * d, L * h * d, L * d * h,
                     L * h * d, d, 512 * 4, 512 * 4};
    int64_t v1s[] = {L * d, L * d, d, V * d, L * d * d, L * kv * d, L * kv * d, L * d * d, L * h * d,
                     L * d * h, L * h * d};
    for (int v = 0; v < 2; v++) {
        size_t n;
        uint8_t *data = read_all(paths[v], &n);
        if (!data) continue;
        size_t hdr = v ? 256 : 28;
        size_t cuts[128];
        int nc = 0;
        size_t heads[] = {0, 1, 3, 4, 7, 8, 12, 20, 27, 28, 36, 37, 255};
        for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) if (heads[i] < hdr) cuts[nc++] = heads[i];
        size_t off = hdr;
        int nt = v ? 11 : 13;
        for (int t = 0; t < nt; t++) {
            const int64_t *sz = v ? v1s : leg;
            cuts[nc++] = off; cuts[nc++] = off + 1; cuts[nc++] = off + (size_t)sz[t] * 2 + 3;
            off += (size_t)sz[t] * 4;
        }
        CHECK(off == n, "layout sums to %zu, file is %zu", off, n);
        cuts[nc++] = n - 1;
        for (int i = 0; i < nc; i++) {
            if (cuts[i] >= n) continue;
            const char *p = tmp_path("cut.bin");
            REQUIRE(write_file(p, data, cuts[i]), "write");
            expect_fail(p, LB_ERR_FORMAT, "truncated");
        }
        /* one byte too many is also refused */
        uint8_t *big = malloc(n + 1);
        REQUIRE(big, "malloc");
        memcpy(big, data, n); big[n] = 0;
        const char *p = tmp_path("long.bin");
        REQUIRE(write_file(p, big, n + 1), "write");
        expect_fail(p, LB_ERR_FORMAT, "trailing");
        free(big);
        free(data);
    }
}

/* Header fields that lie: each gets a clear error naming the field. */
static void test_llama2c_bad_header(void)
{
    const char *path = models_file(S260_V1);
    if (!test_file_exists(path)) SKIP("stories260K not found");
    size_t n;
    uint8_t *d = read_all(path, &n);
    REQUIRE(d, "read");
    struct { int field; int32_t v; lb_status st; const char *needle; } cases[] = {
        {0, 0, LB_ERR_FORMAT, "dim"}, {0, -64, LB_ERR_FORMAT, "dim"}, {0, 0x7fffffff, LB_ERR_FORMAT, "dim"},
        {0, 60, LB_ERR_FORMAT, "multiple of n_heads"}, {1, 0, LB_ERR_FORMAT, "hidden_dim"},
        {1, -5, LB_ERR_FORMAT, "hidden_dim"}, {2, 0, LB_ERR_FORMAT, "n_layers"},
        {2, 1000000, LB_ERR_FORMAT, "n_layers"}, {3, 0, LB_ERR_FORMAT, "n_heads"},
        {3, 7, LB_ERR_FORMAT, "multiple of n_heads"}, {4, 3, LB_ERR_FORMAT, "n_kv_heads"},
        {4, 0, LB_ERR_FORMAT, "n_kv_heads"}, {5, 0, LB_ERR_FORMAT, "vocab_size"},
        {5, -512, LB_ERR_FORMAT, "vocab_size"}, {5, 0x7fffffff, LB_ERR_FORMAT, "vocab_size"},
        {6, 0, LB_ERR_FORMAT, "max_seq"}, {3, 64, LB_ERR_FORMAT, "head_dim"},
        {-1, 2, LB_ERR_UNSUPPORTED, "version 2"},
    };
    uint8_t *e = malloc(n);
    REQUIRE(e, "malloc");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        memcpy(e, d, n);
        if (cases[i].field < 0) put_i32(e + 4, cases[i].v);
        else put_i32(e + 8 + 4 * cases[i].field, cases[i].v);
        if (cases[i].field == 3 && cases[i].v == 64) put_i32(e + 8 + 16, 64);  /* head_dim 1: odd */
        const char *p = tmp_path("bad.bin");
        REQUIRE(write_file(p, e, n), "write");
        expect_fail(p, cases[i].st, cases[i].needle);
    }
    memcpy(e, d, n);
    e[36] = 7;
    const char *p = tmp_path("flag.bin");
    REQUIRE(write_file(p, e, n), "write");
    expect_fail(p, LB_ERR_FORMAT, "shared_classifier");
    free(e);
    free(d);
}


/* ------------------------------------------------------------ safetensors */

/* A safetensors buffer from a header text and `data` zero bytes. */
static uint8_t *mk_st(const char *hdr, size_t data, size_t *n)
{
    size_t h = strlen(hdr);
    *n = 8 + h + data;
    uint8_t *b = calloc(1, *n + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    return b;
}

static void st_expect(const char *hdr, size_t data, lb_status want, const char *needle)
{
    size_t n;
    uint8_t *b = mk_st(hdr, data, &n);
    lb_st_file f;
    lb_status s = lb__st_parse(b, n, "hdr.safetensors", &f);
    CHECK(s == want, "header %s: status %d want %d (%s)", hdr, s, want, lb_errmsg());
    if (s == LB_OK) lb__st_close(&f);
    else {
        CHECK(strstr(lb_errmsg(), "hdr.safetensors") != NULL, "message lacks file name: %s", lb_errmsg());
        if (needle) CHECK(strstr(lb_errmsg(), needle) != NULL, "message lacks '%s': %s", needle, lb_errmsg());
    }
    free(b);
}

/* Hand-written headers: the valid ones parse, each lie is caught. */
static void test_st_headers(void)
{
    const char *A = "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}";
    char h[512];
    snprintf(h, sizeof h, "{%s}", A);
    st_expect(h, 24, LB_OK, NULL);
    snprintf(h, sizeof h, "{\"__metadata__\":{\"format\":\"pt\"},%s,\"b\":{\"dtype\":\"BF16\",\"shape\":[],"
             "\"data_offsets\":[24,26]},\"z\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[26,26]}}   ", A);
    st_expect(h, 26, LB_OK, NULL);
    st_expect("{}", 0, LB_OK, NULL);
    snprintf(h, sizeof h, "{%s}", A);
    st_expect(h, 23, LB_ERR_FORMAT, "outside the data section");       /* file shorter than offsets */
    st_expect(h, 25, LB_ERR_FORMAT, "data section holds");             /* trailing bytes */
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20, LB_ERR_FORMAT, "span");
    st_expect("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, LB_ERR_FORMAT, "span");
    st_expect("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, LB_ERR_UNSUPPORTED, "F8_E4M3");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, LB_ERR_FORMAT, "outside");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, LB_ERR_FORMAT, "shape");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, LB_ERR_FORMAT, "shape");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
              LB_ERR_FORMAT, "overflow");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, LB_ERR_FORMAT, "data_offsets");
    st_expect("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, LB_ERR_FORMAT, "dtype");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, LB_ERR_FORMAT, "'x'");
    st_expect("{\"a\":[1]}", 0, LB_ERR_FORMAT, "not a JSON object");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, LB_ERR_FORMAT, "overlaps");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, LB_ERR_FORMAT, "hole");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, LB_ERR_FORMAT, "twice");
    st_expect("{\"__metadata__\":{\"k\":3}}", 0, LB_ERR_FORMAT, "__metadata__");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, LB_ERR_FORMAT, "JSON");
    st_expect("[]", 0, LB_ERR_FORMAT, "'{'");
    /* header length fields that lie */
    size_t n;
    uint8_t *b = mk_st("{}", 0, &n);
    lb_st_file f;
    b[0] = 200;  /* longer than the file */
    CHECK(lb__st_parse(b, n, "len.safetensors", &f) == LB_ERR_FORMAT && strstr(lb_errmsg(), "truncated"), "%s", lb_errmsg());
    memset(b, 0xff, 8);
    CHECK(lb__st_parse(b, n, "len.safetensors", &f) == LB_ERR_FORMAT && strstr(lb_errmsg(), "plausible"), "%s", lb_errmsg());
    for (size_t k = 0; k < 8; k++)
        CHECK(lb__st_parse(b, k, "short.safetensors", &f) == LB_ERR_FORMAT, "%zu-byte file accepted", k);
    free(b);
}

/* Shape and offset numbers far outside any integer type (and NaN-like
 * spellings the JSON reader may take) are rejected before any float-to-int
 * conversion; clang's UBSan (make ubsan-clang) reported the old order. */
static void test_st_huge_numbers(void)
{
    static const char *const nums[] = {"1e300", "-1e300", "9.3e18", "1.8446744073709552e19", "9e15.5", "1e16",
                                       "-0.5", "NaN", "Infinity"};
    char h[256];
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[0,8]}}", nums[i]);
        st_expect(h, 8, LB_ERR_FORMAT, NULL);
        snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[%s,8]}}", nums[i]);
        st_expect(h, 8, LB_ERR_FORMAT, NULL);
        snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,%s]}}", nums[i]);
        st_expect(h, 8, LB_ERR_FORMAT, NULL);
    }
    st_expect("{\"a\":{\"dtype\":\"U8\",\"shape\":[8.0],\"data_offsets\":[0,8e0]}}", 8, LB_OK, NULL);
}

/* Writer -> reader round trip with random tensors and metadata. */
static void test_st_roundtrip(void)
{
    lb_rng r;
    lb_rng_seed(&r, TEST_SEED);
    const char *p = tmp_path("rt.safetensors");
    lb_st_writer *w;
    REQUIRE(lb__st_writer_open(p, &w) == LB_OK, "%s", lb_errmsg());
    enum { NT = 7 };
    lb_dtype dts[NT];
    int64_t shapes[NT][3];
    int nd[NT];
    uint8_t *data[NT];
    size_t bytes[NT];
    char name[NT][32];
    const lb_dtype pool[] = {LB_DTYPE_F32, LB_DTYPE_BF16, LB_DTYPE_F16, LB_DTYPE_U8, LB_DTYPE_I32, LB_DTYPE_I64};
    CHECK(lb__st_writer_meta(w, "format", "lowbit \"test\"\n") == LB_OK, "meta");
    CHECK(lb__st_writer_meta(w, "k2", "v") == LB_OK && lb__st_writer_meta(w, "k2", "v2") == LB_OK, "meta");
    for (int i = 0; i < NT; i++) {
        dts[i] = pool[lb_rng_u64(&r) % 6];
        nd[i] = (int)(lb_rng_u64(&r) % 4);
        size_t cnt = 1;
        for (int k = 0; k < nd[i]; k++) { shapes[i][k] = (int64_t)(lb_rng_u64(&r) % 5); cnt *= (size_t)shapes[i][k]; }
        bytes[i] = cnt * lb_dtype_size(dts[i]);
        data[i] = malloc(bytes[i] + 1);
        for (size_t k = 0; k < bytes[i]; k++) data[i][k] = (uint8_t)lb_rng_u64(&r);
        snprintf(name[i], sizeof name[i], "t.%d/\"q\"", 6 - i);
        CHECK(lb__st_writer_add(w, name[i], dts[i], nd[i], shapes[i]) == LB_OK, "add");
    }
    CHECK(lb__st_writer_add(w, name[0], LB_DTYPE_F32, 0, NULL) == LB_ERR_ARG, "duplicate name accepted");
    for (int i = 0; i < NT; i++)  /* split each tensor's bytes over two writes */
        CHECK(lb__st_writer_write(w, data[i], bytes[i] / 2) == LB_OK &&
              lb__st_writer_write(w, data[i] + bytes[i] / 2, bytes[i] - bytes[i] / 2) == LB_OK, "write");
    REQUIRE(lb__st_writer_commit(w) == LB_OK, "commit: %s", lb_errmsg());
    lb_st_file f;
    REQUIRE(lb__st_open(p, &f) == LB_OK, "reopen: %s", lb_errmsg());
    CHECK(f.data_off % 8 == 0, "data section at %zu is not 8-byte aligned", f.data_off);
    CHECK(f.n_tensors == NT && f.n_meta == 2, "counts %lld %lld", (long long)f.n_tensors, (long long)f.n_meta);
    const char *fm = lb__st_meta(&f, "format");
    CHECK(fm && !strcmp(fm, "lowbit \"test\"\n"), "metadata 'format'");
    CHECK(lb__st_meta(&f, "k2") && !strcmp(lb__st_meta(&f, "k2"), "v2"), "metadata overwrite");
    for (int i = 0; i < NT; i++) {
        const lb_st_tensor *t = lb__st_find(&f, name[i]);
        if (!t) { CHECK(0, "tensor %s missing", name[i]); continue; }
        CHECK(t->dtype == dts[i] && t->ndim == nd[i], "dtype/ndim of %s", name[i]);
        for (int k = 0; k < nd[i]; k++) CHECK(t->shape[k] == shapes[i][k], "shape");
        CHECK(t->end - t->begin == bytes[i] && !memcmp(t->data, data[i], bytes[i]), "data of %s", name[i]);
        free(data[i]);
    }
    CHECK(lb__st_find(&f, "nope") == NULL, "found a missing name");
    lb__st_close(&f);
    /* a writer that gets too few bytes leaves no file behind */
    const char *q = tmp_path("short.safetensors");
    REQUIRE(lb__st_writer_open(q, &w) == LB_OK, "open");
    int64_t four = 4;
    CHECK(lb__st_writer_add(w, "x", LB_DTYPE_F32, 1, &four) == LB_OK, "add");
    CHECK(lb__st_writer_write(w, "abcdefgh", 8) == LB_OK, "write");
    CHECK(lb__st_writer_write(w, "abcdefghijklmnop", 16) == LB_ERR_ARG, "overlong write accepted");
    CHECK(lb__st_writer_commit(w) == LB_ERR_ARG, "short commit accepted");
    CHECK(!test_file_exists(q), "half-written file left behind");
}

/* ---------------------------------------------------------- Hugging Face */

#define TS656 "tinystories-656k"

/* Facts from the models README: 2 layers, hidden 128, 8 heads / 4 KV heads,
 * MLP 384, vocab 2048, 512 positions, theta 1e4, eps 1e-6, 656,000 params. */
static void test_hf_tinystories(void)
{
    const char *dir = models_file(TS656);
    if (!test_file_exists(models_file(TS656 "/model.safetensors"))) SKIP("%s not found", dir);
    lb_model *m = NULL;
    REQUIRE(lb_model_load(dir, &m) == LB_OK, "%s", lb_errmsg());
    const lb_config *c = &m->cfg;
    CHECK(c->arch == LB_ARCH_LLAMA && c->dim == 128 && c->hidden_dim == 384 && c->n_layers == 2, "dims");
    CHECK(c->n_heads == 8 && c->n_kv_heads == 4 && c->head_dim == 16 && c->vocab_size == 2048 && c->max_seq == 512, "heads");
    CHECK(c->rope_theta == 10000.0f && c->norm_eps == 1e-6f && c->rope_layout == LB_ROPE_HALF && c->rope_factor == 0, "rope");
    CHECK(c->tied_embeddings && m->lm_head.data == m->tok_embed.data, "tied");
    CHECK(c->bos_id == 1 && c->eos_id == 2, "bos %d eos %d", c->bos_id, c->eos_id);
    lb_model_info info;
    lb_model_get_info(m, &info);
    CHECK(info.n_params == 656000, "n_params %lld", (long long)info.n_params);
    CHECK(!strcmp(info.source, "safetensors"), "source %s", info.source);
    /* lm_head.weight is the first tensor: right after the 2160-byte header */
    REQUIRE(m->n_maps == 1, "maps %d", m->n_maps);
    CHECK((const uint8_t *)m->tok_embed.data == m->maps[0].data + 8 + 2160, "embedding view offset");
    CHECK(info.weight_bytes == m->maps[0].size - 8 - 2160, "every data byte is a weight: %zu", info.weight_bytes);
    const lb_weight *ws[64];
    int nw = all_weights(m, ws, 64), present = 0;
    for (int i = 0; i < nw; i++)
        if (ws[i]->data) { present++; CHECK(in_map(m, ws[i]) && ws[i]->dtype == LB_DTYPE_F32, "weight %d not a view", i); }
    CHECK(present == 3 + 2 * 9, "present %d", present);
    CHECK(m->store.n == 0, "weights were copied instead of mapped");
    CHECK(m->layers[1].wk.rows == 64 && m->layers[1].wk.cols == 128 && m->layers[0].w_down.cols == 384, "shapes");
    lb_model *m2 = NULL;   /* config.json and model.safetensors paths load the folder */
    CHECK(lb_model_load(models_file(TS656 "/config.json"), &m2) == LB_OK, "%s", lb_errmsg());
    if (m2) CHECK(m2->final_norm.rows == 1 && !memcmp(m2->final_norm.data, m->final_norm.data, 512), "same model");
    lb_model_free(m2);
    lb_model_free(m);
}

static uint8_t *ts_config(size_t *n) { return read_all(models_file(TS656 "/config.json"), n); }

/* A folder in /tmp holding `config` and a copy of `st` (n bytes). */
static const char *mk_folder(const char *name, const char *config, const uint8_t *st, size_t n)
{
    const char *dir = tmp_path(name);
    mkdir(dir, 0755);
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (!write_file(p, config, strlen(config))) return NULL;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (st && !write_file(p, st, n)) return NULL;
    return dir;
}

static void expect_dir_fail(const char *dir, lb_status want, const char *file, const char *needle)
{
    lb_model *m = (lb_model *)1;
    lb_status s = lb_model_load(dir, &m);
    CHECK(s == want, "%s: status %d want %d (%s)", dir, s, want, lb_errmsg());
    CHECK(m == NULL, "out not cleared");
    CHECK(strstr(lb_errmsg(), file) != NULL, "message does not name %s: '%s'", file, lb_errmsg());
    if (needle) CHECK(strstr(lb_errmsg(), needle) != NULL, "message lacks '%s': '%s'", needle, lb_errmsg());
}

/* The real model.safetensors cut at every header boundary, inside the
 * header, at every tensor boundary and inside every tensor. */
static void test_hf_truncated(void)
{
    size_t nc, n;
    uint8_t *cfg = ts_config(&nc), *st = read_all(models_file(TS656 "/model.safetensors"), &n);
    if (!cfg || !st) { free(cfg); free(st); SKIP("tinystories-656k not found"); }
    char *config = calloc(1, nc + 1);
    memcpy(config, cfg, nc);
    lb_st_file f;
    REQUIRE(lb__st_parse(st, n, "x", &f) == LB_OK, "parse");
    size_t cuts[256];
    int k = 0;
    size_t fixed[] = {0, 1, 4, 7, 8, 9, 100, f.data_off - 1, f.data_off};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) cuts[k++] = fixed[i];
    for (int64_t t = 0; t < f.n_tensors && k < 250; t++) {
        cuts[k++] = f.data_off + f.tensors[t].begin + 1;
        cuts[k++] = f.data_off + (f.tensors[t].begin + f.tensors[t].end) / 2;
        cuts[k++] = f.data_off + f.tensors[t].end - 1;
    }
    lb__st_close(&f);
    for (int i = 0; i < k; i++) {
        const char *dir = mk_folder("cut", config, st, cuts[i]);
        REQUIRE(dir, "folder");
        expect_dir_fail(dir, LB_ERR_FORMAT, "model.safetensors", NULL);
    }
    free(config); free(cfg); free(st);
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at) return NULL;
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *r = malloc(n);
    snprintf(r, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return r;
}

/* config.json edits that must fail with a message naming config.json. */
static void test_hf_bad_config(void)
{
    size_t nc, n;
    uint8_t *cfg = ts_config(&nc), *st = read_all(models_file(TS656 "/model.safetensors"), &n);
    if (!cfg || !st) { free(cfg); free(st); SKIP("tinystories-656k not found"); }
    char *config = calloc(1, nc + 1);
    memcpy(config, cfg, nc);
    struct { const char *from, *to, *needle; lb_status st; } cases[] = {
        {"\"hidden_size\": 128", "\"hidden_size\": 0", "hidden_size", LB_ERR_FORMAT},
        {"\"hidden_size\": 128", "\"hidden_size\": -128", "hidden_size", LB_ERR_FORMAT},
        {"\"hidden_size\": 128", "\"hidden_size\": 1e15", "hidden_size", LB_ERR_FORMAT},
        {"\"hidden_size\": 128", "\"hidden_size\": 130", "multiple of num_attention_heads", LB_ERR_FORMAT},
        {"\"hidden_size\": 128", "\"hidden_size\": \"128\"", "integer", LB_ERR_FORMAT},
        {"\"hidden_size\": 128,", "", "\"hidden_size\" is missing", LB_ERR_FORMAT},
        {"\"num_key_value_heads\": 4", "\"num_key_value_heads\": 3", "num_key_value_heads", LB_ERR_FORMAT},
        {"\"num_key_value_heads\": 4", "\"num_key_value_heads\": 0", "num_key_value_heads", LB_ERR_FORMAT},
        {"\"num_attention_heads\": 8", "\"num_attention_heads\": 7", "num_attention_heads", LB_ERR_FORMAT},
        {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 100000", "num_hidden_layers", LB_ERR_FORMAT},
        {"\"num_hidden_layers\": 2,", "", "num_hidden_layers", LB_ERR_FORMAT},
        {"\"intermediate_size\": 384", "\"intermediate_size\": 2.5", "intermediate_size", LB_ERR_FORMAT},
        {"\"vocab_size\": 2048", "\"vocab_size\": 99999999999", "vocab_size", LB_ERR_FORMAT},
        {"\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": 0", "rms_norm_eps", LB_ERR_FORMAT},
        {"\"rope_theta\": 10000.0", "\"rope_theta\": -1", "rope_theta", LB_ERR_FORMAT},
        {"\"bos_token_id\": 1", "\"bos_token_id\": 5000", "bos_token_id", LB_ERR_FORMAT},
        {"LlamaForCausalLM", "GPT2LMHeadModel", "GPT2LMHeadModel", LB_ERR_UNSUPPORTED},
        {"\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "hidden_act", LB_ERR_UNSUPPORTED},
        {"\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}", "yarn", LB_ERR_UNSUPPORTED},
        {"\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 4}", "low_freq_factor", LB_ERR_FORMAT},
        {"\"mlp_bias\": false", "\"mlp_bias\": true", "mlp_bias", LB_ERR_UNSUPPORTED},
        {"{", "[", "JSON", LB_ERR_FORMAT},
        {"\"vocab_size\": 2048\n}", "\"vocab_size\": 2048\n", "JSON", LB_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *c = replace(config, cases[i].from, cases[i].to);
        if (!c) { CHECK(0, "case %zu: '%s' not in config.json", i, cases[i].from); continue; }
        const char *dir = mk_folder("badcfg", c, st, n);
        REQUIRE(dir, "folder");
        expect_dir_fail(dir, cases[i].st, "config.json", cases[i].needle);
        free(c);
    }
    /* a valid config whose sizes disagree with the tensors names the tensor */
    char *c = replace(config, "\"intermediate_size\": 384", "\"intermediate_size\": 256");
    expect_dir_fail(mk_folder("badcfg", c, st, n), LB_ERR_FORMAT, "model.safetensors", "gate_proj");
    free(c);
    /* untied: this checkpoint stores no separate embedding */
    c = replace(config, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false");
    expect_dir_fail(mk_folder("badcfg", c, st, n), LB_ERR_FORMAT, "embed_tokens", "missing");
    free(c);
    /* a folder without weights, and one without config.json */
    const char *dir = mk_folder("noweights", config, NULL, 0);
    expect_dir_fail(dir, LB_ERR_IO, "noweights", "model.safetensors");
    free(config); free(cfg); free(st);
}

/* Copy tinystories' tensors into new files through the writer: dropping one,
 * adding one, and splitting across two shards with an index. */
static lb_status copy_tensors(const lb_st_file *src, const char *path, int64_t from, int64_t to, const char *skip,
                              bool extra)
{
    lb_st_writer *w;
    lb_status s = lb__st_writer_open(path, &w);
    if (s) return s;
    for (int64_t i = from; i < to; i++)
        if (!skip || strcmp(src->tensors[i].name, skip))
            lb__st_writer_add(w, src->tensors[i].name, src->tensors[i].dtype, src->tensors[i].ndim, src->tensors[i].shape);
    int64_t one = 128;
    if (extra) lb__st_writer_add(w, "model.layers.0.self_attn.o_proj.bias", LB_DTYPE_F32, 1, &one);
    for (int64_t i = from; i < to; i++)
        if (!skip || strcmp(src->tensors[i].name, skip))
            lb__st_writer_write(w, src->tensors[i].data, (size_t)(src->tensors[i].end - src->tensors[i].begin));
    if (extra) lb__st_writer_write(w, src->tensors[0].data, 512);
    return lb__st_writer_commit(w);
}

static void test_hf_tensor_sets(void)
{
    size_t nc;
    uint8_t *cfg = ts_config(&nc);
    lb_st_file src;
    if (!cfg || lb__st_open(models_file(TS656 "/model.safetensors"), &src)) { free(cfg); SKIP("tinystories-656k not found"); }
    char *config = calloc(1, nc + 1);
    memcpy(config, cfg, nc);
    char p[512];
    const char *dir = mk_folder("missing", config, NULL, 0);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    REQUIRE(copy_tensors(&src, p, 0, src.n_tensors, "model.layers.1.mlp.up_proj.weight", false) == LB_OK, "%s", lb_errmsg());
    expect_dir_fail(dir, LB_ERR_FORMAT, "model.layers.1.mlp.up_proj.weight", "missing");
    dir = mk_folder("extra", config, NULL, 0);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    REQUIRE(copy_tensors(&src, p, 0, src.n_tensors, NULL, true) == LB_OK, "%s", lb_errmsg());
    expect_dir_fail(dir, LB_ERR_FORMAT, "o_proj.bias", "unexpected tensor");
    /* two shards + index: same weights as the single file */
    dir = mk_folder("sharded", config, NULL, 0);
    lb_buf idx = {0};
    lb__buf_printf(&idx, "{\"metadata\": {}, \"weight_map\": {");
    for (int64_t i = 0; i < src.n_tensors; i++)
        lb__buf_printf(&idx, "%s\"%s\": \"model-%05d-of-00002.safetensors\"", i ? ", " : "", src.tensors[i].name,
                       i < 7 ? 1 : 2);
    lb__buf_printf(&idx, "}}");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    REQUIRE(write_file(p, idx.data, idx.len), "index");
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    REQUIRE(copy_tensors(&src, p, 0, 7, NULL, false) == LB_OK, "shard 1");
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    REQUIRE(copy_tensors(&src, p, 7, src.n_tensors, NULL, false) == LB_OK, "shard 2");
    lb_model *a = NULL, *b = NULL;
    CHECK(lb_model_load(dir, &b) == LB_OK, "sharded: %s", lb_errmsg());
    CHECK(lb_model_load(models_file(TS656), &a) == LB_OK, "single: %s", lb_errmsg());
    if (a && b) {
        const lb_weight *wa[64], *wb[64];
        int na = all_weights(a, wa, 64), nb = all_weights(b, wb, 64);
        CHECK(na == nb, "counts");
        for (int i = 0; i < na && i < nb; i++) CHECK(same_weight(wa[i], wb[i]), "weight %d differs", i);
        CHECK(b->n_maps == 2, "maps %d", b->n_maps);
        for (int i = 0; i < nb; i++) if (wb[i]->data) CHECK(in_map(b, wb[i]), "weight %d not a view", i);
    }
    lb_model_free(a); lb_model_free(b);
    /* an index pointing a tensor at the wrong shard, or outside the folder */
    char *bad = replace(idx.data, "\"model.norm.weight\": \"model-00002", "\"model.norm.weight\": \"model-00001");
    REQUIRE(bad, "index edit");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    REQUIRE(write_file(p, bad, strlen(bad)), "index");
    expect_dir_fail(dir, LB_ERR_FORMAT, "index.json", "model.norm.weight");
    free(bad);
    bad = replace(idx.data, "\"model.norm.weight\": \"model-00002", "\"model.norm.weight\": \"../x/model-00002");
    REQUIRE(write_file(p, bad, strlen(bad)), "index");
    expect_dir_fail(dir, LB_ERR_FORMAT, "index.json", "not a file name");
    free(bad);
    lb__buf_free(&idx);
    lb__st_close(&src);
    free(config); free(cfg);
}

/* ------------------------------------------------------------------ synth */

static lb_synth_opts tiny_opts(const char *arch)
{
    lb_synth_opts o;
    lb_synth_preset(NULL, &o);
    o.arch = arch; o.dim = 48; o.hidden_dim = 80; o.n_layers = 2; o.n_heads = 6; o.n_kv_heads = 2;
    o.vocab_size = 97; o.max_seq = 64; o.seed = TEST_SEED;
    return o;
}

/* Load a synthesized folder and check every weight against the options. */
static void check_synth(const char *dir, const lb_synth_opts *o, lb_arch arch)
{
    lb_model *m = NULL;
    lb_status s = lb_model_load(dir, &m);
    REQUIRE(s == LB_OK, "%s: %s", dir, lb_errmsg());
    const lb_config *c = &m->cfg;
    int64_t hd = o->head_dim ? o->head_dim : o->dim / o->n_heads, q = o->n_heads * hd, kv = o->n_kv_heads * hd;
    CHECK(c->arch == arch && c->dim == o->dim && c->hidden_dim == o->hidden_dim && c->n_layers == o->n_layers, "dims");
    CHECK(c->n_heads == o->n_heads && c->n_kv_heads == o->n_kv_heads && c->head_dim == hd, "heads");
    CHECK(c->vocab_size == o->vocab_size && c->max_seq == o->max_seq && c->tied_embeddings == (bool)o->tied_embeddings, "vocab");
    CHECK(c->rope_theta == (float)o->rope_theta && c->norm_eps == (float)o->norm_eps, "theta/eps");
    CHECK(c->qkv_bias == (arch == LB_ARCH_QWEN2) && c->qk_norm == (arch == LB_ARCH_QWEN3), "bias/norm flags");
    CHECK(o->tied_embeddings ? m->lm_head.data == m->tok_embed.data : m->lm_head.data != m->tok_embed.data, "tying");
    for (int64_t l = 0; l < c->n_layers; l++) {
        const lb_layer_weights *L = &m->layers[l];
        struct { const lb_weight *w; int64_t r, cl; bool on; } e[] = {
            {&L->attn_norm, 1, o->dim, true}, {&L->wq, q, o->dim, true}, {&L->wk, kv, o->dim, true},
            {&L->wv, kv, o->dim, true}, {&L->wo, o->dim, q, true}, {&L->ffn_norm, 1, o->dim, true},
            {&L->w_gate, o->hidden_dim, o->dim, true}, {&L->w_up, o->hidden_dim, o->dim, true},
            {&L->w_down, o->dim, o->hidden_dim, true}, {&L->bq, 1, q, arch == LB_ARCH_QWEN2},
            {&L->bk, 1, kv, arch == LB_ARCH_QWEN2}, {&L->bv, 1, kv, arch == LB_ARCH_QWEN2},
            {&L->q_norm, 1, hd, arch == LB_ARCH_QWEN3}, {&L->k_norm, 1, hd, arch == LB_ARCH_QWEN3},
        };
        for (size_t k = 0; k < sizeof e / sizeof *e; k++) {
            if (!e[k].on) { CHECK(e[k].w->data == NULL, "layer %lld weight %zu should be absent", (long long)l, k); continue; }
            CHECK(e[k].w->data && e[k].w->rows == e[k].r && e[k].w->cols == e[k].cl && e[k].w->dtype == o->dtype,
                  "layer %lld weight %zu: %lld x %lld dtype %d", (long long)l, k, (long long)e[k].w->rows,
                  (long long)e[k].w->cols, e[k].w->dtype);
            if (e[k].w->data) CHECK(in_map(m, e[k].w), "not a view");
        }
    }
    lb_model_free(m);
}

static double weight_at(const lb_weight *w, int64_t i)
{
    if (w->dtype == LB_DTYPE_F32) return ((const float *)w->data)[i];
    uint16_t h = ((const uint16_t *)w->data)[i];
    return w->dtype == LB_DTYPE_BF16 ? lb_bf16_to_f32(h) : lb_f16_to_f32(h);
}

static void test_synth_archs(void)
{
    const char *archs[] = {"llama", "mistral", "qwen2", "qwen3"};
    lb_arch ids[] = {LB_ARCH_LLAMA, LB_ARCH_MISTRAL, LB_ARCH_QWEN2, LB_ARCH_QWEN3};
    lb_dtype dts[] = {LB_DTYPE_F32, LB_DTYPE_BF16, LB_DTYPE_F16, LB_DTYPE_BF16};
    for (int a = 0; a < 4; a++) {
        lb_synth_opts o = tiny_opts(archs[a]);
        o.dtype = dts[a];
        o.tied_embeddings = a % 2;
        if (ids[a] == LB_ARCH_QWEN3) o.head_dim = 16;   /* n_heads * head_dim != dim, as in Qwen3 */
        const char *dir = tmp_path(archs[a]);
        REQUIRE(lb_synth_write(dir, &o, NULL, NULL) == LB_OK, "%s: %s", archs[a], lb_errmsg());
        check_synth(dir, &o, ids[a]);
    }
}

/* Weights are N(0, 0.02^2), norms exactly 1, bytes fixed by the seed. */
static void test_synth_values(void)
{
    lb_synth_opts o = tiny_opts("llama");
    o.dim = 256; o.hidden_dim = 512; o.n_heads = 8; o.n_kv_heads = 8; o.n_layers = 1; o.vocab_size = 1000;
    const char *a = tmp_path("sv_a"), *b = tmp_path("sv_b"), *c = tmp_path("sv_c");
    REQUIRE(lb_synth_write(a, &o, NULL, NULL) == LB_OK, "%s", lb_errmsg());
    REQUIRE(lb_synth_write(b, &o, NULL, NULL) == LB_OK, "%s", lb_errmsg());
    o.seed ^= 1;
    REQUIRE(lb_synth_write(c, &o, NULL, NULL) == LB_OK, "%s", lb_errmsg());
    char p[3][512];
    size_t n[3];
    uint8_t *d[3];
    const char *dirs[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        snprintf(p[i], sizeof p[i], "%s/model.safetensors", dirs[i]);
        d[i] = read_all(p[i], &n[i]);
    }
    REQUIRE(d[0] && d[1] && d[2], "read");
    CHECK(n[0] == n[1] && !memcmp(d[0], d[1], n[0]), "same seed, different bytes");
    CHECK(n[0] == n[2] && memcmp(d[0], d[2], n[0]), "different seed, same bytes");
    for (int i = 0; i < 3; i++) free(d[i]);
    lb_model *m = NULL;
    REQUIRE(lb_model_load(a, &m) == LB_OK, "%s", lb_errmsg());
    const lb_weight *ws[] = {&m->tok_embed, &m->layers[0].wq, &m->layers[0].w_down};
    for (int k = 0; k < 3; k++) {
        int64_t cnt = ws[k]->rows * ws[k]->cols;
        double s1 = 0, s2 = 0, s4 = 0;
        for (int64_t i = 0; i < cnt; i++) { double v = weight_at(ws[k], i); s1 += v; s2 += v * v; s4 += v * v * v * v; }
        double mean = s1 / (double)cnt, var = s2 / (double)cnt - mean * mean, kurt = s4 / (double)cnt / (var * var);
        /* sampling error of the std is ~ 0.02 / sqrt(2 n) (< 1% here); kurtosis of a Gaussian is 3 */
        CHECK(fabs(mean) < 4 * 0.02 / sqrt((double)cnt), "weight %d mean %g", k, mean);
        CHECK(fabs(sqrt(var) - 0.02) < 0.0006, "weight %d std %g", k, sqrt(var));
        CHECK(fabs(kurt - 3) < 0.2, "weight %d kurtosis %g (not Gaussian)", k, kurt);
    }
    for (int64_t i = 0; i < 256; i++)
        CHECK(weight_at(&m->final_norm, i) == 1.0 && weight_at(&m->layers[0].attn_norm, i) == 1.0, "norm %lld", (long long)i);
    lb_model_free(m);
}

static void test_synth_presets(void)
{
    lb_synth_opts o;
    REQUIRE(lb_synth_preset("llama-3.2-1b", &o) == LB_OK, "preset");
    CHECK(o.dim == 2048 && o.n_layers == 16 && o.n_heads == 32 && o.n_kv_heads == 8 && o.hidden_dim == 8192 &&
          o.vocab_size == 128256 && o.rope_theta == 500000 && o.tied_embeddings, "llama-3.2-1b sizes");
    /* shrunk copy (same rope settings) through the writer and loader */
    o.dim = 64; o.hidden_dim = 96; o.n_layers = 1; o.n_heads = 4; o.n_kv_heads = 1; o.vocab_size = 300;
    o.bos_id = 1; o.eos_id = 2;
    const char *dir = tmp_path("l32");
    REQUIRE(lb_synth_write(dir, &o, NULL, NULL) == LB_OK, "%s", lb_errmsg());
    lb_model *m = NULL;
    REQUIRE(lb_model_load(dir, &m) == LB_OK, "%s", lb_errmsg());
    CHECK(m->cfg.rope_factor == 32 && m->cfg.rope_low_freq_factor == 1 && m->cfg.rope_high_freq_factor == 4 &&
          m->cfg.rope_orig_max_pos == 8192 && m->cfg.rope_theta == 500000 && m->cfg.max_seq == 131072, "llama3 rope");
    lb_model_free(m);
    REQUIRE(lb_synth_preset("stories110m", &o) == LB_OK, "preset");
    CHECK(o.dim == 768 && o.n_layers == 12 && o.n_heads == 12 && o.hidden_dim == 2048 && o.vocab_size == 32000, "110m");
    CHECK(lb_synth_preset("gpt-5", &o) == LB_ERR_NOTFOUND && strstr(lb_errmsg(), "gpt-5"), "unknown preset");
    lb_synth_opts bad = tiny_opts("llama");
    bad.n_heads = 5;
    CHECK(lb_synth_write(tmp_path("bad1"), &bad, NULL, NULL) == LB_ERR_FORMAT, "heads not dividing dim accepted");
    bad = tiny_opts("gpt2");
    CHECK(lb_synth_write(tmp_path("bad2"), &bad, NULL, NULL) == LB_ERR_ARG && strstr(lb_errmsg(), "gpt2"), "arch");
    bad = tiny_opts("llama");
    bad.dtype = LB_DTYPE_I8;
    CHECK(lb_synth_write(tmp_path("bad3"), &bad, NULL, NULL) == LB_ERR_ARG, "dtype");
    CHECK(!test_file_exists(tmp_path("bad1/config.json")) && !test_file_exists(tmp_path("bad1/model.safetensors")),
          "files left behind after a refused synth");
}

/* Dimensions whose product is exabytes (every one within the loader's
 * limits) are refused before anything is created, naming the options to
 * lower; so is a model larger than the free space. A file-size limit guards
 * the disk should the check be missing. */
static void test_synth_too_big(void)
{
    struct rlimit keep, lim;
    getrlimit(RLIMIT_FSIZE, &keep);
    lim = keep;
    lim.rlim_cur = 64 << 20;
    if (keep.rlim_max != RLIM_INFINITY && keep.rlim_max < lim.rlim_cur) lim.rlim_cur = keep.rlim_max;
    void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    lb_synth_opts o = tiny_opts("llama");
    o.dim = 1 << 20; o.n_heads = 16; o.n_kv_heads = 16; o.hidden_dim = 1 << 23; o.n_layers = 4096; o.vocab_size = 1 << 24;
    const char *dir = tmp_path("huge");
    lb_status s = lb_synth_write(dir, &o, NULL, NULL);
    CHECK(s == LB_ERR_ARG && strstr(lb_errmsg(), "n_layers") && strstr(lb_errmsg(), "--layers") &&
          strstr(lb_errmsg(), "GB"), "exabytes: status %d: %s", s, lb_errmsg());
    struct stat st;
    CHECK(stat(dir, &st) != 0, "%s created for a refused synth", dir);
    /* a size that fits the limit but not the free space of this filesystem */
    struct statvfs v;
    if (statvfs("/tmp", &v) == 0 && (double)v.f_bavail * v.f_frsize < 2e12) {
        o = tiny_opts("llama");
        o.dim = 16384; o.n_heads = 128; o.n_kv_heads = 8; o.hidden_dim = 53248; o.n_layers = 126; o.vocab_size = 128256;
        o.dtype = LB_DTYPE_BF16;   /* ~0.8 TB, Llama 3.1 405B's shape */
        s = lb_synth_write(dir, &o, NULL, NULL);
        CHECK(s == LB_ERR_ARG && strstr(lb_errmsg(), "free space") && strstr(lb_errmsg(), "--vocab"),
              "405B: status %d: %s", s, lb_errmsg());
        CHECK(stat(dir, &st) != 0, "%s created for a refused synth", dir);
    }
    setrlimit(RLIMIT_FSIZE, &keep);
    signal(SIGXFSZ, old);
}

/* ---------------------------------------------------------------- inspect */

static void test_inspect(void)
{
    lb_synth_opts o = tiny_opts("qwen3");
    o.head_dim = 16;
    const char *dir = tmp_path("insp");
    REQUIRE(lb_synth_write(dir, &o, NULL, NULL) == LB_OK, "%s", lb_errmsg());
    char *t = NULL;
    REQUIRE(lb_inspect(dir, 1, &t) == LB_OK, "%s", lb_errmsg());
    lb_json *j = NULL;
    REQUIRE(lb__json_parse(t, strlen(t), "inspect", &j) == LB_OK, "inspect --json is not JSON: %s", lb_errmsg());
    /* expected tensor count: embed + norm + lm_head(tied: no) + per layer 9 + 2 q/k norms */
    int64_t nt = 0, np = 0;
    CHECK(lb__json_int(j, "n_tensors", &nt) && nt == 2 + 2 * 11, "n_tensors %lld", (long long)nt);
    int64_t hd = 16, q = 6 * hd, kv = 2 * hd;
    int64_t want = 97 * 48 + 48 + 2 * (2 * 48 + q * 48 + 2 * kv * 48 + 48 * q + 3 * 80 * 48 + 2 * hd);
    CHECK(lb__json_int(j, "n_params", &np) && np == want, "n_params %lld want %lld", (long long)np, (long long)want);
    const lb_json *cfg = lb__json_get(j, "config");
    int64_t v;
    CHECK(cfg && lb__json_int(cfg, "head_dim", &v) && v == 16, "config head_dim");
    CHECK(lb__json_str(j, "format") && !strcmp(lb__json_str(j, "format"), "hf-safetensors"), "format");
    lb__json_free(j);
    free(t);
    REQUIRE(lb_inspect(dir, 0, &t) == LB_OK, "%s", lb_errmsg());
    CHECK(strstr(t, "model.layers.1.self_attn.k_norm.weight") && strstr(t, "qwen3"), "text lists tensors: %s", t);
    free(t);
    const char *bin = models_file(S260_LEGACY);
    if (test_file_exists(bin)) {
        REQUIRE(lb_inspect(bin, 1, &t) == LB_OK, "%s", lb_errmsg());
        CHECK(lb__json_parse(t, strlen(t), "inspect", &j) == LB_OK, "json");
        CHECK(lb__json_int(j, "n_params", &np) && np == 260032, "llama2c n_params %lld", (long long)np);
        CHECK(strstr(t, "\"layers.4.feed_forward.w3.weight\"") && strstr(t, "\"offset\": 28}"), "llama2c names/offsets");
        lb__json_free(j);
        free(t);
    }
    CHECK(lb_inspect(tmp_path("nothing"), 0, &t) == LB_ERR_IO && t == NULL, "missing path");
}

static void test_load_missing(void)
{
    expect_fail(tmp_path("does-not-exist.bin"), LB_ERR_IO, NULL);
    const char *p = tmp_path("empty.bin");
    REQUIRE(write_file(p, "", 0), "write");
    expect_fail(p, LB_ERR_FORMAT, "truncated");
    lb_model_free(NULL);
}

/* Overwrite n bytes of tensor `name` of a safetensors file at byte `at`. */
static bool poke(const char *file, const char *name, size_t at, const void *bytes, size_t n)
{
    lb_st_file f;
    if (lb__st_open(file, &f)) return false;
    const lb_st_tensor *t = lb__st_find(&f, name);
    long off = t ? (long)((const uint8_t *)t->data - (const uint8_t *)f.map.data) + (long)at : -1;
    lb__st_close(&f);
    FILE *fp = off >= 0 ? fopen(file, "r+b") : NULL;
    bool ok = fp && fseek(fp, off, SEEK_SET) == 0 && fwrite(bytes, 1, n, fp) == n;
    if (fp) fclose(fp);
    return ok;
}

/* NaN/Inf (issue 13, defect 11): in a norm or a block scale the load fails
 * naming the tensor; in a weight matrix the model loads, counts them, and
 * inspect shows a warning. */
static void test_nonfinite_at_load(void)
{
    lb_synth_opts o = tiny_opts("llama");
    o.dim = 64; o.hidden_dim = 96; o.n_heads = 4;   /* every linear divides into MXFP4 blocks of 32 */
    const char *dir = tmp_path("nan"), *q = tmp_path("nan_q.safetensors");
    char file[300];
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    REQUIRE(lb_synth_write(dir, &o, NULL, NULL) == LB_OK, "%s", lb_errmsg());
    lb_model *m = NULL, *qm = NULL;
    REQUIRE(lb_model_load(dir, &m) == LB_OK, "%s", lb_errmsg());
    lb_model_quant_opts qo = {.format = "mxfp4", .n_threads = 1};
    REQUIRE(lb_model_quantize(m, &qo, &qm, NULL) == LB_OK && lb_model_save(qm, q) == LB_OK, "%s", lb_errmsg());
    lb_model_info info;
    lb_model_get_info(m, &info);
    CHECK(info.n_nonfinite == 0 && !info.nonfinite_tensor[0], "clean model counts %lld", (long long)info.n_nonfinite);
    lb_model_free(m); lb_model_free(qm); m = NULL;
    float inf = INFINITY, nan = NAN;
    REQUIRE(poke(file, "model.layers.0.mlp.up_proj.weight", 12, &inf, 4) &&
            poke(file, "model.layers.1.self_attn.q_proj.weight", 0, &nan, 4), "poke");
    REQUIRE(lb_model_load(dir, &m) == LB_OK, "matrix NaN must load: %s", lb_errmsg());
    lb_model_get_info(m, &info);
    CHECK(info.n_nonfinite == 2 && !strcmp(info.nonfinite_tensor, "model.layers.0.mlp.up_proj.weight"),
          "counted %lld, first '%s'", (long long)info.n_nonfinite, info.nonfinite_tensor);
    lb_model_free(m); m = NULL;
    char *text = NULL;
    CHECK(lb_inspect(dir, 0, &text) == LB_OK && text && strstr(text, "warning: 2 NaN or infinite weight values"),
          "inspect: %s", text ? text : lb_errmsg());
    free(text);
    REQUIRE(poke(file, "model.layers.1.post_attention_layernorm.weight", 8, &nan, 4), "poke norm");
    CHECK(lb_model_load(dir, &m) == LB_ERR_FORMAT && strstr(lb_errmsg(), "post_attention_layernorm") &&
          strstr(lb_errmsg(), "NaN or infinite values"), "norm NaN: %s", lb_errmsg());
    lb_model_free(m); m = NULL;
    uint8_t ff = 0xff;   /* E8M0 0xff is NaN: the first block scale of one packed weight */
    REQUIRE(poke(q, "model.layers.0.self_attn.k_proj.weight_scale", 0, &ff, 1), "poke scale");
    CHECK(lb_model_load(q, &m) == LB_ERR_FORMAT && strstr(lb_errmsg(), "k_proj") && strstr(lb_errmsg(), "block scales"),
          "scale NaN: %s", lb_errmsg());
    lb_model_free(m);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lowbit_loaders.XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(test_load_missing);
    RUN(test_llama2c_both_layouts);
    RUN(test_llama2c_unshared);
    RUN(test_llama2c_truncated);
    RUN(test_llama2c_bad_header);
    RUN(test_st_headers);
    RUN(test_st_huge_numbers);
    RUN(test_st_roundtrip);
    RUN(test_hf_tinystories);
    RUN(test_hf_truncated);
    RUN(test_hf_bad_config);
    RUN(test_hf_tensor_sets);
    RUN(test_synth_archs);
    RUN(test_synth_values);
    RUN(test_synth_presets);
    RUN(test_synth_too_big);
    RUN(test_inspect);
    RUN(test_nonfinite_at_load);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_DONE();
}
