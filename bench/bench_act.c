/* bench_act.c: the products of a transformer layer (q/k/v fused, o,
 * gate/up fused, down: what the forward pass calls) with INT8 and INT4
 * group-32 weights and INT8 activations (the integer kernels of
 * kernels/igemm.h) against, in the same run:
 *   (a) the same weights with FP32 activations (dequantize-and-dot path),
 *   (b) FP32 weights (the engine's dense matmul),
 * for two shapes: 110M (dim 768, MLP 2048, 12 heads, 12 KV heads) and 1B
 * (llama-3.2-1b: dim 2048, MLP 8192, q 2048, k/v 512), prompt processing
 * of 128 and 512 tokens and decode (one token), at 1 and 2 threads.
 * Ceilings measured in the same run: the AVX2 integer peak (register-only
 * vpmaddubsw + vpmaddwd pairs, 32 8-bit multiply-adds each, every thread),
 * the FP32 FMA peak (as bench_engine), and the read bandwidth (a read-only
 * stream of 1 GiB). Prefill: tokens/s over the layer's products and the
 * fraction of the integer (or FP32) peak reached; decode: tokens/s over
 * all layers (weights streamed from memory: more bytes than the LLC) and
 * the fraction of the read bound (weight bytes per token / read bandwidth).
 * Synthetic weights (seeded Gaussian, std 0.02); activations N(0, 1) with
 * a few outliers. The modes run in turn, twice for 110M (best of the two
 * rounds, so slow phases of a shared machine do not fall on one mode), once
 * for 1B; within a round, best of 2 prompt runs (110M) and of 3 decodes.
 *
 * BF16 section (third argument bf16 or all): dense BF16 weights with FP32
 * activations (the engine's BF16 matmul, the baseline) against the same
 * weights with "bf16" activations (kernels/bf16dot.h: VDPBF16PS arithmetic;
 * on a CPU without AVX512-BF16 its AVX2 emulation), same shapes, tokens and
 * threads, CPU-time ratios against the baseline measured in the same run.
 * usage: bench_act [110m|1b|both] [threads: 1, 2 or 0 = both] [int|bf16|all]
 *        (default both, both, int) */
#include "weights/weights.h"
#include <immintrin.h>
#include "bench_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define N_ACC 12

/* Process CPU time: on a shared machine it leaves out the time other jobs
 * held the cores, so speeds per CPU-second are far less noisy than wall ones. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape {
    const char *name;
    int64_t dim, hidden, qd, kvd;
    int layers_decode, layers_prefill;
} shape;

static const shape shapes[] = {
    {"110M", 768, 2048, 768, 768, 12, 2},
    {"1B", 2048, 8192, 2048, 512, 4, 1},
};

/* ---- ceilings */

__attribute__((target("avx2"))) static double int_loop(int64_t iters)
{
    __m256i a[N_ACC], c = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    for (int i = 0; i < N_ACC; i++) a[i] = _mm256_set1_epi8((char)i);
    for (int64_t k = 0; k < iters; k++)
#pragma GCC unroll 16
        for (int i = 0; i < N_ACC; i++) a[i] = _mm256_madd_epi16(_mm256_maddubs_epi16(a[i], c), ones);
    int32_t t[8], s = 0;
    for (int i = 0; i < N_ACC; i++) {
        _mm256_storeu_si256((__m256i *)t, a[i]);
        for (int j = 0; j < 8; j++) s += t[j];
    }
    return s;
}

typedef struct { int64_t iters; bool integer; volatile double sink; } peak_job;

static void peak_task(void *ctx, int64_t b, int64_t e, int th)
{
    peak_job *j = ctx;
    for (int64_t i = b; i < e; i++) j->sink = j->integer ? int_loop(j->iters) : bench_fma_loop_avx2(j->iters);
}

/* Multiply-adds per second on nt threads (best of 3): 32 per integer pair, 8 per FMA. */
static double peak_macs(lb_pool *pool, int nt, bool integer)
{
    peak_job j = {10000000, integer, 0};
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = lb_time_now();
        lb_pool_for(pool, nt, 1, peak_task, &j);
        double d = lb_time_now() - t0;
        best = fmax(best, (double)nt * (double)j.iters * N_ACC * (integer ? 32 : 8) / d);
    }
    return best;
}

typedef struct read_job { const uint64_t *src; uint64_t sink[64]; } read_job;

static void read_task(void *ctx, int64_t b, int64_t e, int th)
{
    read_job *j = ctx;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = b; i + 4 <= e; i += 4) {
        s0 += j->src[i]; s1 += j->src[i + 1]; s2 += j->src[i + 2]; s3 += j->src[i + 3];
    }
    j->sink[th & 63] += s0 + s1 + s2 + s3;
}

static double read_bandwidth(lb_pool *pool)
{
    size_t n = (size_t)1 << 30;
    uint64_t *a = malloc(n);
    double best = 0;
    if (!a) return 0;
    memset(a, 1, n);
    read_job j = {a, {0}};
    for (int rep = 0; rep < 3; rep++) {
        double t0 = lb_time_now();
        lb_pool_for(pool, (int64_t)(n / 8), 1 << 17, read_task, &j);
        best = fmax(best, (double)n / (lb_time_now() - t0));
    }
    if (j.sink[0] == 42) printf(" ");
    free(a);
    return best;
}

/* ---- one layer's weights in one representation */

enum { W_F32, W_INT8, W_INT4, W_COUNT, W_BF16 = W_COUNT };   /* W_BF16: the BF16 section only */
static const char *wnames[W_COUNT + 1] = {"F32", "int8_g32", "int4_g32", "BF16"};

typedef struct layer { lb_weight w[7]; void *buf[7]; } layer;   /* q k v o gate up down */

static void layer_make(const shape *s, int kind, uint64_t seed, layer *L)
{
    int64_t rc[7][2] = {{s->qd, s->dim}, {s->kvd, s->dim}, {s->kvd, s->dim}, {s->dim, s->qd},
                        {s->hidden, s->dim}, {s->hidden, s->dim}, {s->dim, s->hidden}};
    lb_rng r;
    lb_rng_seed(&r, seed);
    for (int i = 0; i < 7; i++) {
        int64_t n = rc[i][0] * rc[i][1];
        float *f = malloc(sizeof(float) * (size_t)n);
        for (int64_t k = 0; k < n; k++) f[k] = (float)(0.02 * lb_rng_normal(&r));
        if (kind == W_F32) {
            L->buf[i] = f;
            L->w[i] = lb__weight_dense(f, LB_DTYPE_F32, rc[i][0], rc[i][1]);
            continue;
        }
        if (kind == W_BF16) {
            L->buf[i] = malloc(sizeof(uint16_t) * (size_t)n);
            lb_f32_to_bf16_row(f, L->buf[i], n);
            L->w[i] = lb__weight_dense(L->buf[i], LB_DTYPE_BF16, rc[i][0], rc[i][1]);
            free(f);
            continue;
        }
        const lb_format *fm = lb_format_find(wnames[kind]);
        L->buf[i] = malloc(lb_format_row_bytes(fm, rc[i][1]) * (size_t)rc[i][0]);
        lb_format_quantize(fm, NULL, f, rc[i][0], rc[i][1], L->buf[i], NULL);
        L->w[i] = lb__weight_block(fm, 1.0f, L->buf[i], rc[i][0], rc[i][1]);
        free(f);
    }
}

static void layer_free(layer *L)
{
    for (int i = 0; i < 7; i++) free(L->buf[i]);
}

static void layer_act(layer *L, const lb_format *act)
{
    for (int i = 0; i < 7; i++) L->w[i].act = act;
}

/* The products of one layer on nt tokens, as the forward pass calls them. */
static void layer_run(lb_wspace *ws, lb_pool *pool, const layer *L, const shape *s, const float *x, int64_t nt,
                      float *y)
{
    const lb_weight *qkv[3] = {&L->w[0], &L->w[1], &L->w[2]}, *gu[2] = {&L->w[4], &L->w[5]};
    float *yq[3] = {y, y + nt * s->qd, y + nt * (s->qd + s->kvd)}, *yg[2] = {y, y + nt * s->hidden};
    int64_t ysq[3] = {s->qd, s->kvd, s->kvd}, ysg[2] = {s->hidden, s->hidden};
    lb__linear_n(ws, pool, 3, qkv, x, nt, s->dim, yq, ysq);
    lb__linear(ws, pool, &L->w[3], x, nt, s->qd, y, s->dim);
    lb__linear_n(ws, pool, 2, gu, x, nt, s->dim, yg, ysg);
    lb__linear(ws, pool, &L->w[6], x, nt, s->hidden, y, s->dim);
}

static double layer_macs(const shape *s) { return (double)(s->dim * (s->qd + 2 * s->kvd) + s->qd * s->dim + 3 * s->dim * s->hidden); }

static double layer_bytes(const layer *L)
{
    double b = 0;
    for (int i = 0; i < 7; i++) b += (double)lb__weight_bytes(&L->w[i]);
    return b;
}

typedef struct result { double pre[2], dec, cpre[2], cdec; } result;   /* tokens/s (c: per CPU-second) */

static result run_mode(const shape *s, layer *Ls, const lb_format *act, lb_pool *pool, int nt_threads, float *x,
                       float *y)
{
    result r = {{0, 0}, 0, {0, 0}, 0};
    for (int l = 0; l < s->layers_decode; l++) layer_act(&Ls[l], act);
    const lb_weight *all[7];
    for (int i = 0; i < 7; i++) all[i] = &Ls[0].w[i];
    lb_wspace *ws;
    if (lb__wspace_create(all, 7, 512, nt_threads, &ws)) { printf("wspace: %s\n", lb_errmsg()); return r; }
    static const int64_t ctx[2] = {128, 512};
    for (int k = 0; k < 2; k++) {
        double best = 1e30, cbest = 1e30;
        for (int rep = 0; rep < (s->dim > 1000 ? 1 : 2); rep++) {
            double t0 = lb_time_now(), c0 = cpu_now();
            for (int l = 0; l < s->layers_prefill; l++) layer_run(ws, pool, &Ls[l], s, x, ctx[k], y);
            best = fmin(best, lb_time_now() - t0);
            cbest = fmin(cbest, cpu_now() - c0);
        }
        r.pre[k] = (double)ctx[k] / (best / s->layers_prefill);   /* tokens/s through one layer */
        r.cpre[k] = (double)ctx[k] / (cbest / s->layers_prefill);
    }
    double best = 1e30, cbest = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = lb_time_now(), c0 = cpu_now();
        for (int l = 0; l < s->layers_decode; l++) layer_run(ws, pool, &Ls[l], s, x, 1, y);
        best = fmin(best, lb_time_now() - t0);
        cbest = fmin(cbest, cpu_now() - c0);
    }
    r.dec = 1.0 / (best / s->layers_decode);
    r.cdec = 1.0 / (cbest / s->layers_decode);
    lb__wspace_free(ws);
    return r;
}

/* Inputs of one layer's products: N(0, 1) with a few outliers (x: 512 x hidden). */
static float *bench_inputs(const shape *s)
{
    float *x = malloc(sizeof(float) * (size_t)(512 * s->hidden));
    lb_rng r;
    lb_rng_seed(&r, 5);
    for (int64_t i = 0; i < 512 * s->hidden; i++) x[i] = (float)lb_rng_normal(&r) * (i % 97 == 1 ? 20.0f : 1.0f);
    return x;
}

/* The better of two rounds' figures, each on its own. */
static result result_best(result a, result b)
{
    for (int k = 0; k < 2; k++) {
        a.pre[k] = fmax(a.pre[k], b.pre[k]);
        a.cpre[k] = fmax(a.cpre[k], b.cpre[k]);
    }
    a.dec = fmax(a.dec, b.dec);
    a.cdec = fmax(a.cdec, b.cdec);
    return a;
}

static void bench_shape(const shape *s, int nt_threads)
{
    lb_pool *pool;
    if (lb_pool_create(nt_threads, &pool)) return;
    double ipeak = peak_macs(pool, nt_threads, true), fpeak = peak_macs(pool, nt_threads, false);
    double rbw = read_bandwidth(pool);
    int64_t maxc = lb__max64(2 * s->hidden, s->qd + 2 * s->kvd);
    float *x = bench_inputs(s), *y = malloc(sizeof(float) * (size_t)(512 * maxc));
    printf("\n### %s shape, %d thread%s: integer peak %.1f GMAC/s, FP32 peak %.1f GMAC/s, read %.1f GB/s\n\n",
           s->name, nt_threads, nt_threads > 1 ? "s" : "", ipeak * 1e-9, fpeak * 1e-9, rbw * 1e-9);
    printf("| weights | activations | prompt 128 tok/s | prompt 512 tok/s | decode tok/s | decode %% of read bound | "
           "prefill 512 %% of peak | CPU-time ratios p128 / p512 / decode vs F32 weights | vs FP32 activations |\n"
           "|---|---|---|---|---|---|---|---|---|\n");
    /* every mode in turn, then again (110M): the best of the rounds, so slow
     * phases of the shared machine do not fall on one mode only */
    enum { N_MODES = 5 };
    static const int mkind[N_MODES] = {W_F32, W_INT8, W_INT8, W_INT4, W_INT4}, mact[N_MODES] = {0, 0, 1, 0, 1};
    layer *Ls[W_COUNT];
    for (int kind = 0; kind < W_COUNT; kind++) {
        Ls[kind] = calloc((size_t)s->layers_decode, sizeof *Ls[kind]);
        for (int l = 0; l < s->layers_decode; l++) layer_make(s, kind, 100 + (uint64_t)l, &Ls[kind][l]);
    }
    result res[N_MODES];
    for (int round = 0; round < (s->dim > 1000 ? 1 : 2); round++)
        for (int m = 0; m < N_MODES; m++) {
            result q = run_mode(s, Ls[mkind[m]], mact[m] ? lb_format_find("int8_g32") : NULL, pool, nt_threads, x, y);
            res[m] = round ? result_best(res[m], q) : q;
        }
    const result base = res[0];
    for (int m = 0; m < N_MODES; m++) {
        const result q = res[m], fpa = res[mact[m] ? m - 1 : m];
        double macs = layer_macs(s) * q.pre[1], bytes = layer_bytes(&Ls[mkind[m]][0]);
        char vs[96] = "-";
        if (mact[m])
            snprintf(vs, sizeof vs, "%.2fx / %.2fx / %.2fx", q.cpre[0] / fpa.cpre[0], q.cpre[1] / fpa.cpre[1],
                     q.cdec / fpa.cdec);
        printf("| %s | %s | %.1f (%.2fx) | %.1f (%.2fx) | %.1f (%.2fx) | %.1f%% | %.1f%% of %s | %.2fx / %.2fx / %.2fx "
               "| %s |\n", wnames[mkind[m]], mact[m] ? "int8_g32" : "FP32", q.pre[0], q.pre[0] / base.pre[0], q.pre[1],
               q.pre[1] / base.pre[1], q.dec, q.dec / base.dec, 100 * q.dec * bytes / rbw,
               100 * macs / (mact[m] ? ipeak : fpeak), mact[m] ? "int" : "FP32", q.cpre[0] / base.cpre[0],
               q.cpre[1] / base.cpre[1], q.cdec / base.cdec, vs);
    }
    for (int kind = 0; kind < W_COUNT; kind++) {
        for (int l = 0; l < s->layers_decode; l++) layer_free(&Ls[kind][l]);
        free(Ls[kind]);
    }
    printf("(ratios in brackets: wall time, against FP32 weights in this run; speeds are per layer of products;\n"
           " CPU-time ratios: tokens per process CPU-second, the same comparisons with other jobs' time left out)\n");
    free(x);
    free(y);
    lb_pool_free(pool);
}

/* BF16 weights: FP32 activations (baseline) vs "bf16" activations. */
static void bench_bf16(const shape *s, int nt_threads)
{
    lb_pool *pool;
    if (lb_pool_create(nt_threads, &pool)) return;
    int64_t maxc = lb__max64(2 * s->hidden, s->qd + 2 * s->kvd);
    float *x = bench_inputs(s), *y = malloc(sizeof(float) * (size_t)(512 * maxc));
    layer *Ls = calloc((size_t)s->layers_decode, sizeof *Ls);
    for (int l = 0; l < s->layers_decode; l++) layer_make(s, W_BF16, 100 + (uint64_t)l, &Ls[l]);
    const lb_format *acts[2] = {NULL, &lb__act_bf16};
    result res[2];
    for (int round = 0; round < (s->dim > 1000 ? 1 : 2); round++)
        for (int m = 0; m < 2; m++) {
            result q = run_mode(s, Ls, acts[m], pool, nt_threads, x, y);
            res[m] = round ? result_best(res[m], q) : q;
        }
    printf("\n### BF16 weights, %s shape, %d thread%s (bf16 x bf16 kernel: %s)\n\n", s->name, nt_threads,
           nt_threads > 1 ? "s" : "", lb_isa_active() >= LB_ISA_AVX512 ? "AVX512-BF16 vdpbf16ps" : "AVX2 emulation");
    printf("| weights | activations | prompt 128 tok/s | prompt 512 tok/s | decode tok/s | "
           "CPU-time ratios p128 / p512 / decode vs FP32 activations |\n|---|---|---|---|---|---|\n");
    for (int m = 0; m < 2; m++)
        printf("| BF16 | %s | %.1f | %.1f | %.1f | %.2fx / %.2fx / %.2fx |\n", m ? "bf16" : "FP32", res[m].pre[0],
               res[m].pre[1], res[m].dec, res[m].cpre[0] / res[0].cpre[0], res[m].cpre[1] / res[0].cpre[1],
               res[m].cdec / res[0].cdec);
    for (int l = 0; l < s->layers_decode; l++) layer_free(&Ls[l]);
    free(Ls);
    free(x);
    free(y);
    lb_pool_free(pool);
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "both", *sect = argc > 3 ? argv[3] : "int";
    int th = argc > 2 ? atoi(argv[2]) : 0;
    bool do_int = !strcmp(sect, "int") || !strcmp(sect, "all"), do_bf16 = !strcmp(sect, "bf16") || !strcmp(sect, "all");
    if (!do_int && !do_bf16) { printf("bench_act: section '%s' is not int, bf16 or all\n", sect); return 1; }
    if (lb_isa_best() < LB_ISA_AVX2) { printf("bench_act: needs AVX2\n"); return 0; }
    printf("bench_act: products of one layer, isa %s (integer kernels: %s)\n", lb_isa_name(lb_isa_active()),
           lb_isa_active() >= LB_ISA_AVX512 ? "AVX512-VNNI" : "AVX2 vpmaddubsw+vpmaddwd");
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        if (strcmp(which, "both") && strcasecmp(which, shapes[i].name)) continue;
        for (int t = 1; t <= 2; t++)
            if (!th || th == t) {
                if (do_int) bench_shape(&shapes[i], t);
                if (do_bf16) bench_bf16(&shapes[i], t);
            }
    }
    return 0;
}
