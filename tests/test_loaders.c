/* test_loaders.c: model loaders on the real shared checkpoints and on broken
 * copies of them written to /tmp. Checks the config against the facts
 * published with the models, that the two llama2.c layouts (which order the
 * tensors differently) give byte-identical weights, that weights are views
 * into the mapping (no copies), and that every truncation or lying header
 * gives one clear error naming the file. */
#include "harness.h"
#include "model/loader.h"
#include <sys/stat.h>
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

static void test_load_missing(void)
{
    expect_fail(tmp_path("does-not-exist.bin"), LB_ERR_IO, NULL);
    const char *p = tmp_path("empty.bin");
    REQUIRE(write_file(p, "", 0), "write");
    expect_fail(p, LB_ERR_FORMAT, "truncated");
    lb_model_free(NULL);
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
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_DONE();
}
