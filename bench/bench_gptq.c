/* bench_gptq.c: time of GPTQ on the matrix shapes of the 110M synthetic
 * model (dim 768, hidden 2048): 768 x 768 (q, k, v, o), 2048 x 768 (gate,
 * up), 768 x 2048 (down), format int4_g32 (rows x cols = out x in; the
 * Hessian is cols x cols). For each: RTN of the same matrix (the same-run
 * baseline, printed as a ratio), the factor U of H^-1 alone (O(cols^3)),
 * and the whole GPTQ (factor + the column loop, O(rows cols^2)). One
 * thread; then the per-layer sum (4 + 2 + 1 matrices) and the 12-layer
 * estimate on 1 and 2 threads (model_quant runs a layer's matrices in
 * parallel, one per thread). Times are CPU seconds of the one thread (the
 * machine is shared; note the load beside them).
 *   bench_gptq [reps] [format] [act_order 0|1]
 * Model mode: every linear of a model folder (e.g. `lowbit synth --out DIR`,
 * the 110M shape) quantized with GPTQ on THREADS threads, the matrices of a
 * layer in parallel as model_quant does, with H from TOKENS random tokens
 * (collected here through the forward pass's tap; calibration proper is
 * src/calib's). Prints the wall time of the quantization per layer and in all.
 *   bench_gptq model DIR [format] [tokens] [threads]
 * KL mode: KL divergence to the float model (lb_eval_kld, ctx 128, the first
 * CHUNKS chunks of TEXT) of rtn (the baseline), gptq, gptq with act order
 * and mr-gptq, per format, with H = mean x x^T of the float model's linear
 * inputs on CAL tokens of TEXT from byte 400000 on (sequences of 128; not
 * sequential: earlier layers are not quantized while H is collected).
 *   bench_gptq kld MODEL TOKENIZER TEXT [chunks] [cal] [formats,...] */
#include "bench_util.h"
#include "core/core.h"
#include "model/model.h"
#include "model/loader.h"
#include "quant/quant.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Fastest of reps runs in CPU seconds of this process (one thread, so this
 * is the work itself, less sensitive than wall time to a loaded machine). */
static double best_cpu(int reps, void (*fn)(void *), void *ctx)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        clock_t c0 = clock();
        fn(ctx);
        double t = (double)(clock() - c0) / CLOCKS_PER_SEC;
        if (t < best) best = t;
    }
    return best;
}

typedef struct job {
    const lb_format *f;
    const lb_quantizer *q;
    lb_quantize_opts o;
    const float *w;
    double *H, *scratch;
    int64_t rows, cols;
} job;

static void run_method(void *c)
{
    job *j = c;
    lb_qmatrix m;
    if (lb_quantize_matrix(j->q, j->f, &j->o, j->w, j->rows, j->cols, &m)) {
        fprintf(stderr, "bench_gptq: %s\n", lb_errmsg());
        exit(1);
    }
    lb_qmatrix_free(&m);
}

static void run_factor(void *c)
{
    job *j = c;
    int64_t n = j->cols;
    memcpy(j->scratch, j->H, (size_t)(n * n) * sizeof *j->H);
    for (int64_t i = 0; i < n; i++) j->scratch[i * n + i] += 0.01;
    if (lb__chol_inv_upper(j->scratch, n)) { fprintf(stderr, "bench_gptq: %s\n", lb_errmsg()); exit(1); }
}

/* H = B B^T / k + 0.1 I, B (n x k) normal with columns of varied scale. */
static double *make_h(lb_rng *r, int64_t n, int64_t k)
{
    double *B = malloc(sizeof(double) * (size_t)(n * k)), *H = calloc((size_t)(n * n), sizeof *H);
    for (int64_t i = 0; i < n * k; i++) B[i] = lb_rng_normal(r) * (1 + (i / k) % 5);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0;
            for (int64_t t = 0; t < k; t++) s += B[i * k + t] * B[j * k + t];
            H[i * n + j] = H[j * n + i] = s / (double)k + (i == j ? 0.1 : 0);
        }
    free(B);
    return H;
}

/* ---- model mode */
typedef struct mctx {
    int64_t n[64][LB_SITE_COUNT], tok[64][LB_SITE_COUNT];
    double *H[64][LB_SITE_COUNT], *neg;
} mctx;

static void tap(void *user, int64_t layer, lb_site site, const float *x, int64_t n_tok, int64_t cols)
{
    mctx *c = user;
    if (layer >= 64) return;
    if (!c->H[layer][site]) { c->H[layer][site] = calloc((size_t)(cols * cols), sizeof(double)); c->n[layer][site] = cols; }
    double *xt = malloc(sizeof(double) * (size_t)(n_tok * cols)), *xx = malloc(sizeof(double) * (size_t)(n_tok * cols));
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < cols; i++) { xt[i * n_tok + t] = -(double)x[t * cols + i]; xx[t * cols + i] = x[t * cols + i]; }
    lb__gemm_sub(c->H[layer][site], cols, xt, n_tok, xx, cols, cols, n_tok, cols, false);   /* H += x^T x */
    c->tok[layer][site] += n_tok;
    free(xt); free(xx);
}

static const char *site_names[LB_SITE_COUNT][3] = {
    {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}, {"self_attn.o_proj"},
    {"mlp.gate_proj", "mlp.up_proj"}, {"mlp.down_proj"}};

typedef struct mjob { const lb_model *m; const lb_format *f; char name[128]; lb_calib_stats st; lb_status s; } mjob;

static void quant_one(void *ctx, int64_t b, int64_t e, int thread)
{
    (void)thread;
    mjob *j = ctx;
    for (int64_t i = b; i < e; i++) {
        int64_t rows, cols;
        lb_model_weight_f32(j[i].m, j[i].name, NULL, &rows, &cols);
        float *w = malloc(sizeof(float) * (size_t)(rows * cols));
        lb_model_weight_f32(j[i].m, j[i].name, w, &rows, &cols);
        lb_quantize_opts o = {.calib = &j[i].st};
        lb_qmatrix q;
        j[i].s = lb_quantize_matrix(lb_quantizer_find("gptq"), j[i].f, &o, w, rows, cols, &q);
        lb_qmatrix_free(&q);
        free(w);
    }
}

static int model_mode(int argc, char **argv)
{
    const char *dir = argv[2], *fname = argc > 3 ? argv[3] : "int4_g32";
    int64_t ntok = argc > 4 ? atoll(argv[4]) : 128;
    int threads = argc > 5 ? atoi(argv[5]) : 2;
    lb_model *m;
    const lb_format *f = lb_format_find(fname);
    if (!f || lb_model_load(dir, &m)) { fprintf(stderr, "bench_gptq: %s\n", f ? lb_errmsg() : "unknown format"); return 1; }
    mctx *c = calloc(1, sizeof *c);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)ntok);
    lb_rng r;
    lb_rng_seed(&r, 2);
    for (int64_t i = 0; i < ntok; i++) ids[i] = (int32_t)(lb_rng_u64(&r) % (uint64_t)m->cfg.vocab_size);
    lb_session *s;
    lb_session_opts so = {.n_threads = threads, .max_ctx = ntok};
    float *lg = malloc(sizeof(float) * (size_t)(ntok * m->cfg.vocab_size));
    double t0 = lb_time_now();
    if (lb_session_create(m, &so, &s)) { fprintf(stderr, "bench_gptq: %s\n", lb_errmsg()); return 1; }
    lb__session_tap(s, tap, c);
    lb_forward_all(s, ids, ntok, lg);
    lb_session_free(s);
    double t_cal = lb_time_now() - t0;
    lb_pool *pool;
    lb_pool_create(threads, &pool);
    printf("GPTQ of every linear of %s, %s, %d threads, H from %lld random tokens (collected in %.1f s, not "
           "counted)\n\n| layer | wall s |\n|---|---:|\n", dir, fname, threads, (long long)ntok, t_cal);
    double total = 0;
    for (int64_t l = 0; l < m->cfg.n_layers && l < 64; l++) {
        mjob jobs[8];
        int nj = 0;
        /* the down projection first: the longest job starts first */
        for (int site = LB_SITE_COUNT - 1; site >= 0; site--)
            for (int k = 0; k < 3 && site_names[site][k]; k++) {
                mjob *j = &jobs[nj++];
                *j = (mjob){.m = m, .f = f, .st = {.n = c->n[l][site], .n_tokens = c->tok[l][site], .H = c->H[l][site]}};
                snprintf(j->name, sizeof j->name, "model.layers.%lld.%s.weight", (long long)l, site_names[site][k]);
            }
        for (int site = 0; site < LB_SITE_COUNT; site++)
            for (int64_t i = 0; i < c->n[l][site] * c->n[l][site]; i++) c->H[l][site][i] /= (double)c->tok[l][site];
        double t1 = lb_time_now();
        lb_pool_for(pool, nj, 1, quant_one, jobs);
        double t = lb_time_now() - t1;
        for (int i = 0; i < nj; i++)
            if (jobs[i].s) { fprintf(stderr, "bench_gptq: %s failed\n", jobs[i].name); return 1; }
        printf("| %lld | %.2f |\n", (long long)l, t);
        total += t;
    }
    printf("\nall %lld layers: %.1f s wall on %d threads\n", (long long)m->cfg.n_layers, total, threads);
    return 0;
}

/* ---- KL mode */
static int32_t *read_tokens(const char *tok, const char *text, long off, size_t len, int64_t *n)
{
    lb_tokenizer *t;
    FILE *f = fopen(text, "rb");
    if (!f || lb_tokenizer_load(tok, &t)) { if (f) fclose(f); return NULL; }
    char *buf = malloc(len + 1);
    size_t got = fseek(f, off, SEEK_SET) ? 0 : fread(buf, 1, len, f);
    fclose(f);
    int32_t *ids = NULL;
    if (lb_tokenizer_encode(t, buf, got, 1, &ids, n)) ids = NULL;
    lb_tokenizer_free(t);
    free(buf);
    return ids;
}

static int kld_mode(int argc, char **argv)
{
    const char *mpath = argv[2], *tok = argv[3], *text = argv[4];
    int64_t chunks = argc > 5 ? atoll(argv[5]) : 100, ncal = argc > 6 ? atoll(argv[6]) : 2048;
    char fl[512];
    snprintf(fl, sizeof fl, "%s", argc > 7 ? argv[7] : "int4_g32_asym,int4_g64_asym,int3_g32_asym,mxfp4,nvfp4");
    lb_model *m;
    if (lb_model_load(mpath, &m)) { fprintf(stderr, "bench_gptq: %s\n", lb_errmsg()); return 1; }
    int64_t ne = 0, nc = 0;
    int32_t *ev = read_tokens(tok, text, 0, 400000, &ne), *cal = read_tokens(tok, text, 400000, 200000, &nc);
    if (!ev || !cal || nc < ncal) { fprintf(stderr, "bench_gptq: tokens: %s\n", lb_errmsg()); return 1; }
    char base[] = "/tmp/lb_bench_gptq_base.XXXXXX";
    int fd = mkstemp(base);
    if (fd < 0) return 1;
    close(fd);
    lb_ppl_opts po = {.ctx = 128, .max_chunks = chunks, .bos = -1, .save_path = base, .n_threads = 2};
    lb_ppl_result pr;
    if (lb_eval_ppl(m, ev, ne, &po, &pr)) { fprintf(stderr, "bench_gptq: %s\n", lb_errmsg()); return 1; }
    mctx *c = calloc(1, sizeof *c);
    lb_session *s;
    lb_session_opts so = {.n_threads = 2, .max_ctx = 128};
    float *lg = malloc(sizeof(float) * (size_t)(128 * m->cfg.vocab_size));
    lb_session_create(m, &so, &s);
    lb__session_tap(s, tap, c);
    for (int64_t i = 0; i + 128 <= ncal; i += 128) { lb_session_reset(s); lb_forward_all(s, cal + i, 128, lg); }
    lb_session_free(s);
    for (int64_t l = 0; l < m->cfg.n_layers && l < 64; l++)
        for (int site = 0; site < LB_SITE_COUNT; site++)
            for (int64_t i = 0; i < c->n[l][site] * c->n[l][site]; i++) c->H[l][site][i] /= (double)c->tok[l][site];
    printf("KL divergence to the float model, %s, %lld chunks of 128 (ppl %.3f), H from %lld tokens\n\n"
           "| format | method | KL | top-1 | KL / rtn |\n|---|---|---:|---:|---:|\n", mpath, (long long)pr.n_chunks,
           pr.ppl, (long long)ncal);
    for (char *fmt = strtok(fl, ","); fmt; fmt = strtok(NULL, ",")) {
        double k_rtn = 0;
        for (int mth = 0; mth < 4; mth++) {
            static const char *mn[4] = {"rtn", "gptq", "gptq", "mr-gptq"}, *label[4] = {"rtn", "gptq", "gptq act-order", "mr-gptq"};
            lb_model_quant_opts qo = {.format = fmt, .method = "rtn", .n_threads = 2};
            lb_model *q;
            if (lb_model_quantize(m, &qo, &q, NULL)) { fprintf(stderr, "bench_gptq: %s\n", lb_errmsg()); return 1; }
            lb__wname names[1024];
            int64_t nn = lb__model_names(q, names, 1024);
            lb_qmatrix *mats = calloc((size_t)nn, sizeof *mats);
            const lb_format *f = lb_format_find(fmt);
            for (int64_t i = 0; mth && i < nn; i++) {
                int64_t layer = -1, rows, cols;
                int site = -1;
                for (int st = 0; names[i].linear && st < LB_SITE_COUNT && site < 0; st++)
                    for (int k = 0; k < 3 && site_names[st][k]; k++)
                        if (strstr(names[i].name, site_names[st][k])) site = st;
                if (site < 0 || sscanf(names[i].name, "model.layers.%lld.", (long long *)&layer) != 1) continue;
                lb_model_weight_f32(m, names[i].name, NULL, &rows, &cols);
                if (lb_format_block(f) && cols % lb_format_block(f)) continue;      /* kept by the rtn model too */
                float *w = malloc(sizeof(float) * (size_t)(rows * cols));
                lb_model_weight_f32(m, names[i].name, w, &rows, &cols);
                lb_calib_stats st = {.n = cols, .n_tokens = ncal, .H = c->H[layer][site]};
                lb_quantize_opts o = {.calib = &st, .act_order = mth == 2, .seed = 1};
                if (lb_quantize_matrix(lb_quantizer_find(mn[mth]), f, &o, w, rows, cols, &mats[i])) {
                    fprintf(stderr, "bench_gptq: %s: %s\n", names[i].name, lb_errmsg());
                    return 1;
                }
                *names[i].w = lb__qmatrix_weight(&mats[i]);
                free(w);
            }
            lb_kld_opts ko = {.n_threads = 2};
            lb_kld_result kr;
            if (lb_eval_kld(q, base, &ko, &kr)) { fprintf(stderr, "bench_gptq: %s\n", lb_errmsg()); return 1; }
            if (!mth) k_rtn = kr.kld;
            printf("| %s | %s | %.5f ± %.5f | %.4f | %.3f |\n", fmt, label[mth], kr.kld, kr.kld_err, kr.top1, kr.kld / k_rtn);
            fflush(stdout);
            lb_model_free(q);
            for (int64_t i = 0; i < nn; i++) lb_qmatrix_free(&mats[i]);
            free(mats);
        }
    }
    unlink(base);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 4 && !strcmp(argv[1], "kld")) return kld_mode(argc, argv);
    if (argc > 2 && !strcmp(argv[1], "model")) return model_mode(argc, argv);
    int reps = argc > 1 ? atoi(argv[1]) : 2;
    const char *fname = argc > 2 ? argv[2] : "int4_g32";
    int act = argc > 3 ? atoi(argv[3]) : 0;
    if (reps < 1) reps = 1;
    const lb_format *f = lb_format_find(fname);
    if (!f) { fprintf(stderr, "bench_gptq: unknown format %s\n", fname); return 1; }
    int64_t shapes[3][3] = {{768, 768, 4}, {2048, 768, 2}, {768, 2048, 1}};   /* rows, cols, per layer */
    lb_rng r;
    lb_rng_seed(&r, 1);
    printf("GPTQ timing (CPU seconds), %s, act_order %d, one thread, best of %d\n\n", fname, act, reps);
    printf("| matrix | rtn s | factor s | gptq s | gptq / rtn | factor share |\n|---|---:|---:|---:|---:|---:|\n");
    double layer = 0, layer_factor = 0;
    for (int s = 0; s < 3; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1];
        float *w = malloc(sizeof(float) * (size_t)(rows * cols));
        for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)(0.02 * lb_rng_normal(&r));
        double *H = make_h(&r, cols, 128);
        lb_calib_stats st = {.n = cols, .n_tokens = 128, .H = H};
        job j = {.f = f, .q = lb_quantizer_find("rtn"), .w = w, .H = H, .rows = rows, .cols = cols,
                 .o = {.calib = &st, .act_order = act}};
        j.scratch = malloc(sizeof(double) * (size_t)(cols * cols));
        double t_rtn = best_cpu(reps, run_method, &j);
        double t_fac = best_cpu(reps, run_factor, &j);
        j.q = lb_quantizer_find("gptq");
        double t_gptq = best_cpu(reps, run_method, &j);
        printf("| %lld x %lld | %.3f | %.3f | %.3f | %.0f | %.0f%% |\n", (long long)rows, (long long)cols, t_rtn,
               t_fac, t_gptq, t_gptq / t_rtn, 100 * t_fac / t_gptq);
        layer += shapes[s][2] * t_gptq;
        layer_factor += shapes[s][2] * t_fac;
        free(w); free(H); free(j.scratch);
    }
    printf("\nper layer (4 x 768x768 + 2 x 2048x768 + 768x2048): %.2f s on one thread, of which factors %.2f s\n",
           layer, layer_factor);
    printf("12 layers: %.1f s on one thread, about %.1f s on two (matrices of a layer in parallel)\n", 12 * layer,
           6 * layer);
    return 0;
}
