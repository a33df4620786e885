/* test_act.c: activation quantization in the linear input path
 * (src/weights/act.c, linear.c) and at model level (lb_model_set_act, the
 * "act" metadata of files, --act of the CLI in cli_act.sh).
 *   - integer pairs (int8_g32 / int4_g32 / mxint8 weights and activations):
 *     lb__linear equals the integer reference on codes built here from the
 *     registry's own quantizer, bit for bit, on every ISA at 1 and 2
 *     threads, decode and prefill, with and without a Hadamard transform;
 *     and it is close to the float product of the dequantized activations
 *     and weights (the simulation), within float rounding;
 *   - simulated pairs (dense or float-element weights, MX/NV activations):
 *     equal to the plain product of quantize-dequantized rows (NV: a tensor
 *     scale per token);
 *   - fused products (q, k, v sharing an input, mixed 4/8-bit weights) equal
 *     separate ones;
 *   - models: unknown names refused, the fallback for widths the block does
 *     not divide, save/load keeps the format and the logits, thread counts
 *     give the same logits, a bad "act" in a file is refused;
 *   - static (calibrated) scales: with a token's own scales as the static
 *     ones the codes equal the per-token quantizer's; with other scales
 *     they equal round-and-clamp computed here; lb__linear with static
 *     scales equals the integer reference on those codes (every ISA, 1 and
 *     2 threads) and the dense product of the rows quantized here; models:
 *     lb_model_set_act_static from statistics collected on the model, its
 *     refusals (no statistics, non-INT formats, input transforms);
 *   - SmoothQuant (src/quant/smoothquant.c) at matrix level with statistics
 *     built here: its column scale against the formula, the identity, and
 *     a lower W8A8 output error than rtn on inputs with outlier columns. */
#include "quant/quant.h"
#include "core/safetensors.h"
#include "harness.h"
#include <unistd.h>

static lb_rng rng;

static int n_isas(void) { return (int)lb_isa_best() + 1; }

static float *randv(int64_t n, double outlier)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)lb_rng_normal(&rng) * (i % 29 == 3 ? (float)outlier : 1.0f);
    return x;
}

/* A block weight of format f quantized from random values (owned by *buf). */
static lb_weight block_weight(const char *f, int64_t rows, int64_t cols, uint8_t **buf)
{
    const lb_format *fm = lb_format_find(f);
    float *w = randv(rows * cols, 1.0), g = 1.0f;
    *buf = malloc(lb_format_row_bytes(fm, cols) * (size_t)rows);
    lb_format_quantize(fm, NULL, w, rows, cols, *buf, &g);
    free(w);
    return lb__weight_block(fm, g, *buf, rows, cols);
}

/* Codes and scales of x's rows in activation format act, in the kernel
 * order of wbits-bit weights, built from the public quantizer. */
static void codes_of(const char *act, int wbits, const float *x, int64_t nt, int64_t cols, int8_t *q, float *d)
{
    const lb_format *a = lb_format_find(act);
    size_t rb = lb_format_row_bytes(a, cols), bb = rb / (size_t)(cols / 32);
    uint8_t *pk = malloc(rb);
    bool mx = !strcmp(act, "mxint8"), b16 = strstr(act, "bf16") != NULL, four = bb < 30;
    for (int64_t t = 0; t < nt; t++) {
        lb_format_quantize(a, NULL, x + t * cols, 1, cols, pk, NULL);
        for (int64_t b = 0; b < cols / 32; b++) {
            const uint8_t *blk = pk + (size_t)b * bb;
            int8_t v[32];
            for (int i = 0; i < 32; i++) {
                if (!four) v[i] = (int8_t)blk[(mx ? 1 : 2) + i];
                else { int c = (blk[2 + i / 2] >> (4 * (i & 1))) & 15; v[i] = (int8_t)(c >= 8 ? c - 16 : c); }
            }
            for (int p = 0; p < 32; p++)
                q[t * cols + b * 32 + p] = wbits == 8 ? v[p] : v[p < 16 ? 2 * p : 2 * (p - 16) + 1];
            uint16_t h = (uint16_t)(blk[0] | blk[1] << 8);
            d[t * (cols / 32) + b] = mx ? ldexpf(1.0f, blk[0] - 127) / 64.0f : b16 ? lb_bf16_to_f32(h) : lb_f16_to_f32(h);
        }
    }
    free(pk);
}

/* y (nt, rows) = w x through lb__linear on a workspace of that weight. */
static void linear(lb_pool *pool, const lb_weight *w, const float *x, int64_t nt, float *y)
{
    lb_wspace *ws;
    REQUIRE(!lb__wspace_create(&w, 1, nt, lb_pool_threads(pool), &ws), "wspace: %s", lb_errmsg());
    lb__linear(ws, pool, w, x, nt, w->cols, y, w->rows);
    lb__wspace_free(ws);
}

static int differ(const float *a, const float *b, int64_t n)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(&a[i], &b[i], 4) != 0;
    return bad;
}

static void check_int(lb_pool **pools, const char *wf, const char *af, int64_t rows, int64_t cols, int64_t nt,
                      bool had)
{
    uint8_t *buf;
    lb_weight w = block_weight(wf, rows, cols, &buf);
    w.act = lb_format_find(af);
    int8_t signs[1024];
    float *x = randv(nt * cols, 30.0), *xt = malloc(sizeof(float) * (size_t)(nt * cols));
    memcpy(xt, x, sizeof(float) * (size_t)(nt * cols));
    if (had) {
        lb_hadamard_signs(7, cols, signs);
        lb__weight_push(&w, (lb_xform){.kind = LB_XFORM_HADAMARD, .block = 32, .signs = signs});
        lb_hadamard_rows(xt, nt, cols, 32, signs, 0);
    }
    lb__iw iw;
    REQUIRE(lb__act_pairs(&w, &iw), "%s x %s does not pair", wf, af);
    int8_t *q = malloc((size_t)(nt * cols));
    float *d = malloc(sizeof(float) * (size_t)(nt * cols / 32));
    codes_of(af, iw.bits, xt, nt, cols, q, d);
    float *want = malloc(sizeof(float) * (size_t)(nt * rows)), *got = malloc(sizeof(float) * (size_t)(nt * rows));
    lb__iact ia = {.q = q, .d = d, .qs = cols, .ds = cols / 32};
    lb__igemm_ref(&iw, buf, w.u.block.row_bytes, 0, rows, cols, &ia, nt, want, rows);
    /* the simulation: dequantized activations times dequantized weights, in double */
    float *xa = malloc(sizeof(float) * (size_t)(nt * cols)), *wr = malloc(sizeof(float) * (size_t)cols);
    const lb_format *a = lb_format_find(af);
    uint8_t *pk = malloc(lb_format_row_bytes(a, cols));
    for (int64_t t = 0; t < nt; t++) {
        lb_format_quantize(a, NULL, xt + t * cols, 1, cols, pk, NULL);
        lb_format_dequantize(a, pk, 1.0f, 1, cols, xa + t * cols);
    }
    double worst = 0;
    for (int64_t r = 0; r < rows; r++) {
        lb_format_dequantize(w.u.block.fmt, buf + (size_t)r * w.u.block.row_bytes, 1.0f, 1, cols, wr);
        for (int64_t t = 0; t < nt; t++) {
            double s = 0, mag = 0;
            for (int64_t c = 0; c < cols; c++) { s += (double)wr[c] * xa[t * cols + c]; mag += fabs((double)wr[c] * xa[t * cols + c]); }
            double e = fabs(s - want[t * rows + r]) / (mag + 1e-30);
            worst = e > worst ? e : worst;
        }
    }
    CHECK(worst < 1e-5, "%s x %s: integer product vs simulation rel %g", wf, af, worst);
    for (int isa = 0; isa < n_isas(); isa++) {
        lb_isa_set((lb_isa)isa);
        for (int p = 0; p < 2; p++) {
            memset(got, 0, sizeof(float) * (size_t)(nt * rows));
            linear(pools[p], &w, x, nt, got);
            int bad = differ(got, want, nt * rows);
            CHECK(!bad, "%s x %s had %d %s threads %d rows %lld cols %lld nt %lld: %d differ", wf, af, had,
                  lb_isa_name((lb_isa)isa), p + 1, (long long)rows, (long long)cols, (long long)nt, bad);
        }
    }
    lb_isa_set(lb_isa_best());
    free(buf); free(x); free(xt); free(q); free(d); free(want); free(got); free(xa); free(wr); free(pk);
}

static void test_integer_pairs(void)
{
    lb_pool *pools[2] = {NULL, NULL};
    REQUIRE(!lb_pool_create(2, &pools[1]), "pool");
    static const char *pairs[][2] = {{"int8_g32", "int8_g32"}, {"int4_g32", "int8_g32"}, {"int4_g32", "int4_g32"},
                                     {"mxint8", "mxint8"}, {"int8_g32_bf16", "mxint8"}, {"int4_g32_bf16", "int8_g32_bf16"},
                                     {"mxint8", "int4_g32"}};
    static const int64_t shapes[][3] = {{37, 96, 1}, {5, 64, 2}, {19, 160, 3}, {8, 32, 17}, {67, 128, 70}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
        for (size_t j = 0; j < sizeof shapes / sizeof *shapes; j++)
            for (int had = 0; had < 2; had++)
                if (!had || j % 2 == 0) check_int(pools, pairs[i][0], pairs[i][1], shapes[j][0], shapes[j][1], shapes[j][2], had);
    lb_pool_free(pools[1]);
}

/* Simulated pairs: the plain product of quantize-dequantized rows. */
static void check_sim(lb_pool *pool, lb_weight w, const char *af, int64_t nt)
{
    const lb_format *a = lb_format_find(af);
    int64_t rows = w.rows, cols = w.cols;
    float *x = randv(nt * cols, 30.0), *xq = malloc(sizeof(float) * (size_t)(nt * cols));
    uint8_t *pk = malloc(lb_format_row_bytes(a, cols));
    for (int64_t t = 0; t < nt; t++) {
        float g = 1.0f;
        lb_format_quantize(a, NULL, x + t * cols, 1, cols, pk, &g);   /* NV: this token's tensor scale */
        lb_format_dequantize(a, pk, g, 1, cols, xq + t * cols);
    }
    float *want = malloc(sizeof(float) * (size_t)(nt * rows)), *got = malloc(sizeof(float) * (size_t)(nt * rows));
    linear(NULL, &w, xq, nt, want);
    w.act = a;
    linear(pool, &w, x, nt, got);
    int bad = differ(got, want, nt * rows);
    CHECK(!bad, "%s x %s nt %lld: %d differ from the product of the simulated rows", w.rep->describe(&w), af,
          (long long)nt, bad);
    free(x); free(xq); free(pk); free(want); free(got);
}

static void test_simulated_pairs(void)
{
    lb_pool *pool;
    REQUIRE(!lb_pool_create(2, &pool), "pool");
    static const char *acts[] = {"mxfp4", "nvfp4", "mxfp8_e4m3", "mxfp6_e2m3", "int8_g32", "int4_g32", "mxint8", "int8_ch"};
    float *wd = randv(29 * 64, 1.0);
    uint8_t *b1, *b2;
    lb_weight dense = lb__weight_dense(wd, LB_DTYPE_F32, 29, 64);
    lb_weight mx = block_weight("mxfp4", 29, 64, &b1), g64 = block_weight("int4_g64", 29, 64, &b2);
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
        for (int64_t nt = 1; nt <= 5; nt += 2) {
            check_sim(pool, dense, acts[i], nt);
            check_sim(pool, mx, acts[i], nt);
            check_sim(pool, g64, acts[i], nt);
        }
    free(wd); free(b1); free(b2);
    lb_pool_free(pool);
}

/* q, k, v sharing one input in one call = three separate calls. */
static void test_fused(void)
{
    lb_pool *pool;
    REQUIRE(!lb_pool_create(2, &pool), "pool");
    uint8_t *b[3];
    lb_weight w[3] = {block_weight("int4_g32", 40, 96, &b[0]), block_weight("int8_g32", 24, 96, &b[1]),
                      block_weight("mxfp4", 24, 96, &b[2])};
    const char *acts[3] = {"int8_g32", "int8_g32", "int8_g32"};
    for (int i = 0; i < 3; i++) w[i].act = lb_format_find(acts[i]);
    const lb_weight *wp[3] = {&w[0], &w[1], &w[2]};
    for (int64_t nt = 1; nt <= 9; nt += 4) {
        float *x = randv(nt * 96, 10.0), *y[3], *z[3];
        int64_t ys[3];
        for (int i = 0; i < 3; i++) {
            y[i] = malloc(sizeof(float) * (size_t)(nt * w[i].rows));
            z[i] = malloc(sizeof(float) * (size_t)(nt * w[i].rows));
            ys[i] = w[i].rows;
            linear(NULL, &w[i], x, nt, z[i]);
        }
        lb_wspace *ws;
        REQUIRE(!lb__wspace_create(wp, 3, nt, 2, &ws), "wspace");
        lb__linear_n(ws, pool, 3, wp, x, nt, 96, y, ys);
        lb__wspace_free(ws);
        for (int i = 0; i < 3; i++) {
            CHECK(!differ(y[i], z[i], nt * w[i].rows), "fused part %d nt %lld differs", i, (long long)nt);
            free(y[i]); free(z[i]);
        }
        free(x);
    }
    for (int i = 0; i < 3; i++) free(b[i]);
    lb_pool_free(pool);
}

static bool model_path(char *p, size_t cap, const char *rel)
{
    snprintf(p, cap, "%s/%s", test_models_dir(), rel);
    return test_file_exists(p);
}

static void test_model(void)
{
    char path[1024];
    if (!model_path(path, sizeof path, "tinystories-656k/model.safetensors")) SKIP("no tinystories-656k");
    snprintf(path, sizeof path, "%s/tinystories-656k", test_models_dir());
    lb_model *m, *q, *r;
    REQUIRE(!lb_model_load(path, &m), "load: %s", lb_errmsg());
    CHECK(lb_model_set_act(m, "int7_g32", NULL) == LB_ERR_ARG && strstr(lb_errmsg(), "int7_g32"), "unknown name: %s",
          lb_errmsg());
    CHECK(!strcmp(lb_model_act(m), "none"), "act %s", lb_model_act(m));
    lb_model_quant_opts o = {.format = "int8_g32", .n_threads = 1};
    REQUIRE(!lb_model_quantize(m, &o, &q, NULL), "quantize: %s", lb_errmsg());
    int32_t tok[12] = {1, 400, 62, 9, 77, 310, 5, 98, 1022, 3, 14, 15};
    lb_model_info info;
    lb_model_get_info(q, &info);
    float *a = malloc(sizeof(float) * (size_t)info.vocab_size), *b = malloc(sizeof(float) * (size_t)info.vocab_size);
    float *c = malloc(sizeof(float) * (size_t)info.vocab_size);
    REQUIRE(!test_decode_logits(q, 1, tok, 12, c), "forward");
    int64_t kept = -1;
    REQUIRE(!lb_model_set_act(q, "int8", &kept), "set: %s", lb_errmsg());
    CHECK(kept == 0 && !strcmp(lb_model_act(q), "int8_g32"), "kept %lld act %s", (long long)kept, lb_model_act(q));
    REQUIRE(!test_decode_logits(q, 1, tok, 12, a), "forward");
    REQUIRE(!test_decode_logits(q, 2, tok, 12, b), "forward");
    CHECK(!differ(a, b, info.vocab_size), "1 and 2 threads differ");
    double md = 0;
    for (int64_t i = 0; i < info.vocab_size; i++) md = fmax(md, fabs((double)a[i] - c[i]));
    CHECK(md > 0 && md < 0.5, "W8A8 vs W8A16 logits: max diff %g", md);
    char dir[] = "/tmp/lowbit_tact.XXXXXX", f[256];
    REQUIRE(mkdtemp(dir), "mkdtemp");
    snprintf(f, sizeof f, "%s/q.safetensors", dir);
    REQUIRE(!lb_model_save(q, f), "save: %s", lb_errmsg());
    REQUIRE(!lb_model_load(f, &r), "load: %s", lb_errmsg());
    CHECK(!strcmp(lb_model_act(r), "int8_g32"), "loaded act %s", lb_model_act(r));
    REQUIRE(!test_decode_logits(r, 2, tok, 12, b), "forward");
    CHECK(!differ(a, b, info.vocab_size), "saved and loaded logits differ");
    REQUIRE(!lb_model_set_act(r, "none", NULL), "none");
    REQUIRE(!test_decode_logits(r, 1, tok, 12, b), "forward");
    CHECK(!differ(c, b, info.vocab_size), "--act none differs from the model without activation format");
    lb_model_free(r);
    /* a file whose "act" names no format: one clear error */
    FILE *fp = fopen(f, "r+b");
    REQUIRE(fp, "open");
    uint64_t hl;
    REQUIRE(fread(&hl, 8, 1, fp) == 1, "read");
    char *h = malloc(hl);
    REQUIRE(fread(h, 1, hl, fp) == hl, "read");
    char *at = strstr(h, "\\\"act\\\": \\\"int8_g32");
    REQUIRE(at, "no act in the header");
    memcpy(at + strlen("\\\"act\\\": \\\""), "int9", 4);
    fseek(fp, 8, SEEK_SET);
    fwrite(h, 1, hl, fp);
    fclose(fp);
    free(h);
    CHECK(lb_model_load(f, &r) == LB_ERR_FORMAT && strstr(lb_errmsg(), "unknown activation format 'int9_g32'"),
          "bad act: %s", lb_errmsg());
    unlink(f);
    rmdir(dir);
    free(a); free(b); free(c);
    lb_model_free(q);
    lb_model_free(m);
}

/* stories260K: hidden 172 is not a multiple of 32, so down_proj keeps FP32 inputs. */
static void test_fallback(void)
{
    char path[1024];
    if (!model_path(path, sizeof path, "stories260K/stories260K.bin")) SKIP("no stories260K");
    lb_model *m;
    REQUIRE(!lb_model_load(path, &m), "load: %s", lb_errmsg());
    int64_t kept = 0;
    REQUIRE(!lb_model_set_act(m, "mxfp4", &kept), "set: %s", lb_errmsg());
    lb_model_info info;
    lb_model_get_info(m, &info);
    CHECK(kept == info.n_layers, "kept %lld of %lld layers' down_proj", (long long)kept, (long long)info.n_layers);
    float *a = malloc(sizeof(float) * (size_t)info.vocab_size);
    int32_t tok[5] = {1, 30, 40, 50, 60};
    CHECK(!test_decode_logits(m, 2, tok, 5, a), "forward: %s", lb_errmsg());
    free(a);
    lb_model_free(m);
}

/* Static codes computed here: round(x * (1/sd)) (ties to even), clamped. */
static void static_codes_of(int wbits, float qmax, const float *x, int64_t nt, int64_t cols, const float *sd,
                            int8_t *q, float *d)
{
    for (int64_t t = 0; t < nt; t++)
        for (int64_t b = 0; b < cols / 32; b++) {
            int8_t v[32];
            for (int i = 0; i < 32; i++) {
                float inv = sd[b] > 0 ? 1.0f / sd[b] : 0.0f, r = nearbyintf(x[t * cols + b * 32 + i] * inv);
                v[i] = (int8_t)fmaxf(-qmax, fminf(qmax, r));
            }
            for (int p = 0; p < 32; p++)
                q[t * cols + b * 32 + p] = wbits == 8 ? v[p] : v[p < 16 ? 2 * p : 2 * (p - 16) + 1];
            d[t * (cols / 32) + b] = sd[b];
        }
}

static void test_static_codes(void)
{
    enum { NT = 5, C = 96, NB = C / 32 };
    static const char *acts[] = {"int8_g32", "int4_g32", "int8_g32_bf16"};
    float *x = randv(NT * C, 30.0);
    int8_t qd[NT * C], qs[NT * C], qw[NT * C];
    float dd[NT * NB], ds[NT * NB], dw[NT * NB];
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
        const lb_format *f = lb_format_find(acts[a]);
        CHECK(lb__act_static_ok(f), "%s takes no static scales", acts[a]);
        for (int wbits = 4; wbits <= 8; wbits += 4) {
            codes_of(acts[a], wbits, x, NT, C, qd, dd);
            int bad = 0;
            for (int t = 0; t < NT; t++) {   /* each token's own scales as static ones: the dynamic codes */
                lb__act_codes_static(f, dd + t * NB, wbits, x + t * C, 1, C, C, qs + t * C, C, ds + t * NB, NB);
                bad += memcmp(qs + t * C, qd + t * C, C) != 0 || differ(ds + t * NB, dd + t * NB, NB);
            }
            CHECK(!bad, "%s w%d: static codes with the token's own scales differ from the dynamic ones in %d tokens",
                  acts[a], wbits, bad);
            /* fixed scales: half of token 0's (clipping), token 1's, and a zero */
            float sd[NB] = {dd[0] * 0.5f, dd[NB + 1], 0.0f};
            lb__act_codes_static(f, sd, wbits, x, NT, C, C, qs, C, ds, NB);
            static_codes_of(wbits, lb_elem_max(f->elem), x, NT, C, sd, qw, dw);
            CHECK(!memcmp(qs, qw, sizeof qs) && !differ(ds, dw, NT * NB), "%s w%d: static codes differ", acts[a], wbits);
        }
        /* the scale of a calibrated max |x|: the dynamic scale of a block whose max |x| it is */
        float blk[32] = {0}, y[32];
        blk[7] = -3.7f;
        uint8_t pk[64];
        lb_format_quantize(f, NULL, blk, 1, 32, pk, NULL);
        lb_format_dequantize(f, pk, 1.0f, 1, 32, y);
        float sc = lb__act_static_scale(f, 3.7f);
        CHECK(y[7] == -lb_elem_max(f->elem) * sc, "%s: static scale %g vs dynamic %g", acts[a], sc, y[7]);
    }
    /* quantize-dequantize: codes times scale; a block holding NaN becomes NaN */
    const lb_format *f8 = lb_format_find("int8_g32");
    float sd[NB] = {0.05f, 0.2f, 0.1f}, *xq = malloc(sizeof(float) * NT * C);
    memcpy(xq, x, sizeof(float) * NT * C);
    xq[C + 40] = NAN;
    float keep = x[C + 40];
    x[C + 40] = 0;
    lb__act_qdq_static(f8, sd, xq, NT, C);
    static_codes_of(8, 127.0f, x, NT, C, sd, qw, dw);
    int bad = 0;
    for (int i = 0; i < NT * C; i++) {
        bool nanblk = i / 32 == (C + 40) / 32;
        bad += nanblk ? !isnan(xq[i]) : xq[i] != (float)qw[i] * sd[(i % C) / 32];
    }
    CHECK(!bad, "static quantize-dequantize: %d values differ", bad);
    x[C + 40] = keep;
    free(x); free(xq);
}

/* lb__linear with static scales: the integer kernel on the codes of
 * static_codes_of, and the dense product of rows quantized the same way. */
static void test_static_linear(void)
{
    enum { R = 37, C = 128, NT = 9, NB = C / 32 };
    lb_pool *pools[2];
    REQUIRE(!lb_pool_create(1, &pools[0]) && !lb_pool_create(2, &pools[1]), "pools");
    float *x = randv(NT * C, 30.0), sd[NB];
    for (int b = 0; b < NB; b++) {   /* calibrated on the first 3 tokens: the others clip now and then */
        float a = 0;
        for (int t = 0; t < 3; t++)
            for (int i = 0; i < 32; i++) a = fmaxf(a, fabsf(x[t * C + b * 32 + i]));
        sd[b] = lb__act_static_scale(lb_format_find("int8_g32"), a);
    }
    static const char *wf[] = {"int8_g32", "int4_g32"};
    for (int k = 0; k < 2; k++) {
        uint8_t *buf;
        lb_weight w = block_weight(wf[k], R, C, &buf);
        w.act = lb_format_find("int8_g32");
        w.act_sd = sd;
        int8_t q[NT * C];
        float d[NT * NB], want[NT * R], got[NT * R];
        lb__iw iw;
        REQUIRE(lb__iw_init(w.u.block.fmt, &iw), "pairs");
        static_codes_of(iw.bits, 127.0f, x, NT, C, sd, q, d);
        lb__igemm_ref(&iw, buf, w.u.block.row_bytes, 0, R, C, &(lb__iact){.q = q, .d = d, .qs = C, .ds = NB}, NT, want, R);
        for (int isa = 0; isa < n_isas(); isa++)
            for (int p = 0; p < 2; p++)
                for (int64_t nt = 1; nt <= NT; nt += NT - 1) {
                    lb_isa_set((lb_isa)isa);
                    linear(pools[p], &w, x, nt, got);
                    lb_isa_set(lb_isa_best());
                    CHECK(!differ(got, want, nt * R), "%s static isa %s threads %d nt %lld differ", wf[k],
                          lb_isa_name((lb_isa)isa), p + 1, (long long)nt);
                }
        free(buf);
    }
    /* dense weights: the simulated path */
    float *wd = randv(R * C, 1.0), *xq = malloc(sizeof(float) * NT * C), want[NT * R], got[NT * R];
    lb_weight w = lb__weight_dense(wd, LB_DTYPE_F32, R, C);
    int8_t q[NT * C];
    float d[NT * NB];
    static_codes_of(8, 127.0f, x, NT, C, sd, q, d);
    for (int i = 0; i < NT * C; i++) xq[i] = (float)q[i] * sd[(i % C) / 32];
    linear(pools[1], &w, xq, NT, want);
    w.act = lb_format_find("int8_g32");
    w.act_sd = sd;
    linear(pools[1], &w, x, NT, got);
    CHECK(!differ(got, want, NT * R), "dense weights, static activations: differ from the product of quantized rows");
    free(x); free(wd); free(xq);
    lb_pool_free(pools[0]);
    lb_pool_free(pools[1]);
}

/* Patch n bytes at absolute offset off of file f. */
static void patch(const char *f, long off, const void *bytes, size_t n)
{
    FILE *fp = fopen(f, "r+b");
    REQUIRE(fp && !fseek(fp, off, SEEK_SET) && fwrite(bytes, 1, n, fp) == n, "patch %s", f);
    fclose(fp);
}

/* Static scales in a file: q (with static scales, logits `want` on tok[0..12))
 * saved and loaded gives the same logits, the same scales, q/k/v and gate/up
 * sharing one array; corrupt scale entries are refused. */
static void static_file(const lb_model *q, const int32_t *tok, const float *want, int64_t vocab)
{
    char dir[] = "/tmp/lowbit_tstat.XXXXXX", f[256];
    REQUIRE(mkdtemp(dir), "mkdtemp");
    snprintf(f, sizeof f, "%s/s.safetensors", dir);
    REQUIRE(!lb_model_save(q, f), "save: %s", lb_errmsg());
    lb_model *r;
    REQUIRE(!lb_model_load(f, &r), "load: %s", lb_errmsg());
    float *got = malloc(sizeof(float) * (size_t)vocab);
    REQUIRE(!test_decode_logits(r, 1, tok, 12, got), "forward");
    CHECK(!differ(got, want, vocab), "static scales: saved and loaded logits differ");
    for (int64_t l = 0; l < r->cfg.n_layers; l++) {
        const lb_layer_weights *A = &q->layers[l], *B = &r->layers[l];
        const lb_weight *wa[7] = {&A->wq, &A->wk, &A->wv, &A->wo, &A->w_gate, &A->w_up, &A->w_down};
        const lb_weight *wb[7] = {&B->wq, &B->wk, &B->wv, &B->wo, &B->w_gate, &B->w_up, &B->w_down};
        for (int i = 0; i < 7; i++)
            CHECK(wb[i]->act_sd && !memcmp(wa[i]->act_sd, wb[i]->act_sd, sizeof(float) * (size_t)(wa[i]->cols / 32)),
                  "layer %lld linear %d: static scales differ after the round trip", (long long)l, i);
        CHECK(B->wk.act_sd == B->wq.act_sd && B->wv.act_sd == B->wq.act_sd && B->w_up.act_sd == B->w_gate.act_sd,
              "layer %lld: q/k/v or gate/up do not share their loaded scales", (long long)l);
    }
    lb_model_free(r);
    lb_st_file sf;
    REQUIRE(!lb__st_open(f, &sf), "%s", lb_errmsg());
    long data = -1, hdr = 8;
    for (int64_t i = 0; i < sf.n_tensors; i++)
        if (!strcmp(sf.tensors[i].name, "model.layers.1.mlp.up_proj.act_scale"))
            data = (long)(sf.data_off + sf.tensors[i].begin);
    const char *meta = lb__st_meta(&sf, "lowbit.tensor.model.layers.1.mlp.up_proj");
    CHECK(meta && strstr(meta, "\"act_static\": true"), "metadata: %s", meta ? meta : "(none)");
    lb__st_close(&sf);
    REQUIRE(data > 0, "no act_scale tensor");
    /* a negative scale, a NaN: refused, naming the tensor */
    float bad[2] = {-1.0f, NAN}, keep;
    FILE *fp = fopen(f, "rb");
    REQUIRE(fp && !fseek(fp, data + 4, SEEK_SET) && fread(&keep, 4, 1, fp) == 1, "read");
    fclose(fp);
    for (int k = 0; k < 2; k++) {
        patch(f, data + 4, &bad[k], 4);
        CHECK(lb_model_load(f, &r) == LB_ERR_FORMAT && strstr(lb_errmsg(), "up_proj.act_scale") &&
              strstr(lb_errmsg(), "entry 1"), "bad scale %g: %s", bad[k], lb_errmsg());
    }
    patch(f, data + 4, &keep, 4);
    /* "act_static" not a boolean */
    fp = fopen(f, "rb");
    uint64_t hl = 0;
    REQUIRE(fp && fread(&hl, 8, 1, fp) == 1, "read");
    char *h = malloc(hl + 1);
    REQUIRE(fread(h, 1, hl, fp) == hl, "read");
    fclose(fp);
    h[hl] = 0;
    char *at = strstr(h, "\\\"act_static\\\": true");
    REQUIRE(at, "no act_static in the header");
    patch(f, hdr + (long)(at - h) + (long)strlen("\\\"act_static\\\": "), "1234", 4);
    CHECK(lb_model_load(f, &r) == LB_ERR_FORMAT && strstr(lb_errmsg(), "\"act_static\" is not a boolean"),
          "act_static 1234: %s", lb_errmsg());
    free(h);
    free(got);
    unlink(f);
    rmdir(dir);
}

static void test_static_model(void)
{
    char path[1024];
    if (!model_path(path, sizeof path, "tinystories-656k/model.safetensors")) SKIP("no tinystories-656k");
    snprintf(path, sizeof path, "%s/tinystories-656k", test_models_dir());
    lb_model *m, *q, *h;
    REQUIRE(!lb_model_load(path, &m), "load: %s", lb_errmsg());
    int32_t tok[96];
    for (int i = 0; i < 96; i++) tok[i] = i ? (int32_t)(7 + (i * 37) % 2000) : 1;
    lb_calib *c;
    REQUIRE(!lb_calib_collect(m, tok, 96, &(lb_calib_opts){.ctx = 48, .n_threads = 1}, &c), "calib: %s", lb_errmsg());
    lb_model_quant_opts o = {.format = "int8_g32", .n_threads = 1};
    REQUIRE(!lb_model_quantize(m, &o, &q, NULL), "quantize: %s", lb_errmsg());
    CHECK(lb_model_set_act(q, "int8:static", NULL) == LB_ERR_ARG && strstr(lb_errmsg(), "calibration"),
          "static without statistics: %s", lb_errmsg());
    CHECK(lb_model_set_act_static(q, "mxfp4", c, NULL) == LB_ERR_ARG && strstr(lb_errmsg(), "mxfp4"), "mxfp4: %s",
          lb_errmsg());
    lb_model_info info;
    lb_model_get_info(q, &info);
    size_t vb = sizeof(float) * (size_t)info.vocab_size;
    float *a = malloc(vb), *b = malloc(vb), *dyn = malloc(vb);
    REQUIRE(!lb_model_set_act(q, "int8", NULL), "set");
    REQUIRE(!test_decode_logits(q, 1, tok + 1, 12, dyn), "forward");
    int64_t kept = -1;
    REQUIRE(!lb_model_set_act_static(q, "int8:static", c, &kept), "static: %s", lb_errmsg());
    CHECK(kept == 0 && !strcmp(lb_model_act(q), "int8_g32"), "kept %lld act %s", (long long)kept, lb_model_act(q));
    REQUIRE(!test_decode_logits(q, 1, tok + 1, 12, a), "forward");
    REQUIRE(!test_decode_logits(q, 2, tok + 1, 12, b), "forward");
    CHECK(!differ(a, b, info.vocab_size), "static: 1 and 2 threads differ");
    double md = 0;
    for (int64_t i = 0; i < info.vocab_size; i++) md = fmax(md, fabs((double)a[i] - dyn[i]));
    CHECK(md > 0 && md < 1.0, "static vs per-token scales: max logit diff %g", md);
    static_file(q, tok + 1, a, info.vocab_size);
    /* a weight with an input rotation: refused, and no activation format is left half-set */
    lb_model_quant_opts oh = {.format = "int8_g32", .n_threads = 1, .method = "hadamard+rtn"};
    if (!lb_model_quantize(m, &oh, &h, NULL)) {
        CHECK(lb_model_set_act_static(h, "int8", c, NULL) == LB_ERR_UNSUPPORTED && strstr(lb_errmsg(), "transforms"),
              "rotated: %s", lb_errmsg());
        CHECK(!strcmp(lb_model_act(h), "none"), "act %s after a refusal", lb_model_act(h));
        lb_model_free(h);
    } else
        CHECK(0, "hadamard quantize: %s", lb_errmsg());
    free(a); free(b); free(dyn);
    lb_calib_free(c);
    lb_model_free(q);
    lb_model_free(m);
}

static void test_smoothquant(void)
{
    enum { T = 64, R = 48, C = 128 };
    float *x = randv(T * C, 1.0), *w = randv(R * C, 0.05);
    for (int t = 0; t < T; t++)
        for (int j = 5; j < C; j += 41) x[t * C + j] *= 100.0f;   /* outlier input columns 5, 46, 87 */
    double amax[C] = {0};
    for (int t = 0; t < T; t++)
        for (int j = 0; j < C; j++) amax[j] = fmax(amax[j], fabs((double)x[t * C + j]));
    lb_calib_stats st = {.n = C, .n_tokens = T, .amax = amax};
    const lb_quantizer *rtn = lb_quantizer_find("rtn");
    const lb_format *f = lb_format_find("int8_g32");
    lb_qmatrix q, b;
    lb_quantize_opts o = {.calib = &st}, none = {0};
    /* the matrix as lb_quantize_matrix hands it to a method */
    #define SQ_INIT(m) ((m) = (lb_qmatrix){.fmt = f, .rows = R, .cols = C, .row_bytes = lb_format_row_bytes(f, C), \
                                           .tensor_scale = 1.0f, .packed = malloc(lb_format_row_bytes(f, C) * R)})
    SQ_INIT(q);
    CHECK(lb__smoothquant_quantize(&none, w, &q) == LB_ERR_ARG && strstr(lb_errmsg(), "amax"), "no stats: %s",
          lb_errmsg());
    lb_calib_stats bad = st;
    bad.n = 64;
    CHECK(lb__smoothquant_quantize(&(lb_quantize_opts){.calib = &bad}, w, &q) == LB_ERR_ARG, "wrong n");
    REQUIRE(!lb__smoothquant_quantize(&o, w, &q), "smoothquant: %s", lb_errmsg());
    REQUIRE(!lb_quantize_matrix(rtn, f, NULL, w, R, C, &b), "rtn: %s", lb_errmsg());
    REQUIRE(q.col_scale, "no column scale");
    int bad_s = 0;
    for (int j = 0; j < C; j++) {
        double wm = 0;
        for (int r = 0; r < R; r++) wm = fmax(wm, fabs((double)w[r * C + j]));
        float want = (float)(1.0 / (sqrt(amax[j]) / sqrt(wm)));
        bad_s += q.col_scale[j] != want;
    }
    CHECK(!bad_s, "%d column scales differ from 1 / (sqrt(amax_x) / sqrt(amax_w))", bad_s);
    float *wd = malloc(sizeof(float) * R * C);
    REQUIRE(!lb_qmatrix_dequantize(&q, wd), "dequantize");
    double e = 0, n = 0;
    for (int i = 0; i < R * C; i++) { e += ((double)wd[i] - w[i]) * ((double)wd[i] - w[i]); n += (double)w[i] * w[i]; }
    /* up to quantization error (rtn int8_g32 alone: ~0.004; the migrated outlier columns make the blocks
     * holding them coarser, ~0.02 here); a misapplied column scale is O(1) */
    CHECK(sqrt(e / n) < 0.1, "identity W ~= dequant diag(col_scale): rel %g", sqrt(e / n));
    /* W8A8 through lb__linear: output error against the exact product */
    lb_weight ws = lb__qmatrix_weight(&q), wb = lb__qmatrix_weight(&b);
    ws.act = wb.act = f;
    float *ys = malloc(sizeof(float) * T * R), *yb = malloc(sizeof(float) * T * R);
    linear(NULL, &ws, x, T, ys);
    linear(NULL, &wb, x, T, yb);
    double es = 0, eb = 0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            double y = 0;
            for (int j = 0; j < C; j++) y += (double)w[r * C + j] * x[t * C + j];
            es += (ys[t * R + r] - y) * (ys[t * R + r] - y);
            eb += (yb[t * R + r] - y) * (yb[t * R + r] - y);
        }
    CHECK(es < 0.5 * eb, "W8A8 output error: smoothquant %g vs rtn %g", es, eb);
    free(x); free(w); free(wd); free(ys); free(yb);
    lb_qmatrix_free(&q);
    lb_qmatrix_free(&b);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_integer_pairs);
    RUN(test_simulated_pairs);
    RUN(test_fused);
    RUN(test_model);
    RUN(test_fallback);
    RUN(test_static_codes);
    RUN(test_static_linear);
    RUN(test_static_model);
    RUN(test_smoothquant);
    return TEST_DONE();
}
