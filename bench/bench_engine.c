/* bench_engine.c: forward-pass speed on a 110M-shape llama (dim 768, 12
 * layers, 12 heads, 12 KV heads, MLP 2048, vocab 32000) with synthetic
 * weights (seeded Gaussian, std 0.02), in F32 and BF16, against two ceilings
 * measured in the same run:
 *  - peak FP32 FMA throughput: a register-only FMA loop on every thread
 *    (AVX-512 or AVX2 as the CPU allows), 2 flops per lane per FMA;
 *  - copy bandwidth: memcpy of a buffer larger than the last-level cache,
 *    split over every thread, counting bytes read + written (STREAM "copy");
 *  - read bandwidth: a read-only stream over the same size (what generation
 *    does with the weights), reported beside the copy bound.
 * The model is the stories110m preset written by lb_synth_write (what
 * `lowbit synth` makes) into a temp folder and loaded with lb_model_load.
 * Prompt processing (prefill of 128 and 512 tokens) is reported as achieved
 * FLOP/s (matmuls + attention) / peak; generation as tokens/s / (bandwidth /
 * weight bytes read per token). The machine is shared, so numbers are noisy;
 * each ratio is also given in process CPU time (work per core-second against
 * the ceiling's), which leaves out the time other jobs held the cores.
 * usage: bench_engine [threads [f32|bf16]]   (default: online CPUs, both) */
#include "kernels/kernels.h"
#include "model/model.h"
#include <immintrin.h>
#include "bench_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define N_ACC 12

/* ---- clocks: wall time, and CPU time of the whole process (all threads;
 * on a shared machine it leaves out the time other jobs held the cores, so
 * the CPU-time ratios compare this code's work per core-second with the
 * ceiling's and are far less noisy than the wall-time ones) */

typedef struct { double wall, cpu; } clk;

static clk clk_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (clk){lb_time_now(), (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec};
}

static clk clk_since(clk a)
{
    clk b = clk_now();
    return (clk){b.wall - a.wall, b.cpu - a.cpu};
}

/* ---- ceilings */

__attribute__((target("avx512f"))) static double fma_loop_512(int64_t iters)
{
    __m512 a[N_ACC], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < N_ACC; i++) a[i] = _mm512_set1_ps((float)i);
    for (int64_t k = 0; k < iters; k++)
#pragma GCC unroll 16
        for (int i = 0; i < N_ACC; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    float s = 0;
    for (int i = 0; i < N_ACC; i++) s += _mm512_reduce_add_ps(a[i]);
    return s;   /* keeps the loop live */
}

typedef struct { int64_t iters; int lanes; volatile double sink; } fma_job;

static void fma_task(void *ctx, int64_t b, int64_t e, int th)
{
    fma_job *j = ctx;
    for (int64_t i = b; i < e; i++) j->sink = j->lanes == 16 ? fma_loop_512(j->iters) : bench_fma_loop_avx2(j->iters);
}

/* FLOP/s per wall second and per CPU second (best of 3 each). */
static clk peak_flops(lb_pool *pool, int nt)
{
    fma_job j = {20000000, lb_isa_best() == LB_ISA_AVX512 ? 16 : 8, 0};
    clk best = {0, 0};
    if (lb_isa_best() == LB_ISA_REF) return best;
    for (int rep = 0; rep < 3; rep++) {
        clk t0 = clk_now();
        lb_pool_for(pool, nt, 1, fma_task, &j);
        clk d = clk_since(t0);
        double f = (double)nt * (double)j.iters * N_ACC * j.lanes * 2;
        best.wall = fmax(best.wall, f / d.wall);
        best.cpu = fmax(best.cpu, f / d.cpu);
    }
    return best;
}

typedef struct { char *dst; const char *src; size_t n; } copy_job;

static void copy_task(void *ctx, int64_t b, int64_t e, int th)
{
    copy_job *j = ctx;
    memcpy(j->dst + b, j->src + b, (size_t)(e - b));
}

/* Read-only stream: generation only reads weights, and on many machines a
 * pure read stream moves fewer bytes per second than a copy's read + write,
 * so both ceilings are reported. The sum keeps the loads from being elided. */
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

static clk read_bandwidth(lb_pool *pool)
{
    size_t n = (size_t)1 << 30;
    uint64_t *a = malloc(n);
    clk best = {0, 0};
    if (!a) return best;
    memset(a, 1, n);
    read_job j = {a, {0}};
    for (int rep = 0; rep < 3; rep++) {
        clk t0 = clk_now();
        lb_pool_for(pool, (int64_t)(n / 8), 1 << 17, read_task, &j);
        clk d = clk_since(t0);
        best.wall = fmax(best.wall, (double)n / d.wall);
        best.cpu = fmax(best.cpu, (double)n / d.cpu);
    }
    if (j.sink[0] == 42) printf(" ");   /* keeps the sums alive */
    free(a);
    return best;
}

/* Bytes/s per wall second and per CPU second (best of 3 each). */
static clk copy_bandwidth(lb_pool *pool)
{
    size_t n = (size_t)1 << 30;   /* larger than the (reported) last-level cache */
    char *a = malloc(n), *b = malloc(n);
    clk best = {0, 0};
    if (!a || !b) { free(a); free(b); return best; }
    memset(a, 1, n);
    memset(b, 2, n);
    copy_job j = {b, a, n};
    for (int rep = 0; rep < 3; rep++) {
        clk t0 = clk_now();
        lb_pool_for(pool, (int64_t)n, 1 << 20, copy_task, &j);
        clk d = clk_since(t0);
        best.wall = fmax(best.wall, 2.0 * (double)n / d.wall);
        best.cpu = fmax(best.cpu, 2.0 * (double)n / d.cpu);
    }
    free(a);
    free(b);
    return best;
}

/* ---- synthetic model: the same files `lowbit synth` writes */

/* Write the stories110m preset in dtype dt into a fresh temp folder and load
 * it (mmap'd, as users run it). *dir receives the folder to remove. */
static lb_model *synth_load(lb_dtype dt, char *dir, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/lowbit-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) { printf("bench: cannot create a temp folder in %s\n", tmp && *tmp ? tmp : "/tmp"); return NULL; }
    lb_synth_opts o;
    lb_model *m = NULL;
    lb_status st = lb_synth_preset("stories110m", &o);
    o.dtype = dt;
    o.seed = 110;
    if (!st) st = lb_synth_write(dir, &o, NULL, NULL);
    if (!st) st = lb_model_load(dir, &m);
    if (st) printf("bench: %s\n", lb_errmsg());
    return m;
}

static void synth_remove(const char *dir)
{
    char p[4200];
    const char *files[] = {"model.safetensors", "config.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Weight bytes read per decoded token: every matrix once (the embedding
 * lookup reads one row; tied lm_head reads the whole table). */
static const lb_weight *out_weight(const lb_model *m)
{
    return m->lm_head.rep ? &m->lm_head : &m->tok_embed;
}

static double bytes_per_token(const lb_model *m)
{
    double b = (double)lb__weight_bytes(out_weight(m));
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        const lb_layer_weights *L = &m->layers[l];
        const lb_weight *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) b += (double)lb__weight_bytes(w[i]);
    }
    return b;
}

/* FLOPs of a prefill of n tokens from position 0 (lb_forward: logits of the
 * last token only): 2 per layer weight per token, 2 per lm_head weight once,
 * attention q.k and p.v: 4 * n_heads * head_dim per (query, key) pair. */
static double prefill_flops(const lb_model *m, int64_t n)
{
    const lb_config *c = &m->cfg;
    double es = (double)lb_dtype_size(out_weight(m)->dtype), head = (double)lb__weight_bytes(out_weight(m)) / es;
    double w = bytes_per_token(m) / es - head;
    double pairs = (double)n * (double)(n + 1) / 2;
    return 2 * w * (double)n + 2 * head + 4.0 * (double)(c->n_heads * c->head_dim) * pairs * (double)c->n_layers;
}

static void bench_dtype(lb_dtype dt, lb_pool *pool, int nt)
{
    char dir[4096];
    lb_model *m = synth_load(dt, dir, sizeof dir);
    lb_session *ses = NULL;
    if (m && lb_session_create(m, &(lb_session_opts){nt, 600, 128, NULL}, &ses)) printf("session: %s\n", lb_errmsg());
    if (!ses) {
        lb_model_free(m);
        synth_remove(dir);
        return;
    }
    float *logits = malloc(sizeof(float) * 32000);
    int32_t tok[512];
    for (int i = 0; i < 512; i++) tok[i] = (int32_t)((i * 7919 + 13) % 32000);
    static const int64_t ctxs[] = {128, 512};
    for (int k = 0; k < 2; k++) {
        clk best = {1e30, 1e30}, peak = peak_flops(pool, nt);   /* ceiling measured next to the phase */
        for (int rep = 0; rep < 2; rep++) {
            lb_session_reset(ses);
            clk t0 = clk_now();
            lb_forward(ses, tok, ctxs[k], logits);
            clk d = clk_since(t0);
            best.wall = fmin(best.wall, d.wall);
            best.cpu = fmin(best.cpu, d.cpu);
        }
        double fl = prefill_flops(m, ctxs[k]);
        printf("| %s | prompt %lld | %.1f tokens/s | %.1f of %.1f GFLOP/s | %.1f%% of peak | %.1f%% |\n",
               lb_dtype_name(dt), (long long)ctxs[k], (double)ctxs[k] / best.wall, fl / best.wall * 1e-9,
               peak.wall * 1e-9, peak.wall > 0 ? 100 * fl / best.wall / peak.wall : 0,
               peak.cpu > 0 ? 100 * fl / best.cpu / peak.cpu : 0);
    }
    int32_t t = 1;
    int64_t n_gen = 12;
    clk bw = copy_bandwidth(pool), rbw = read_bandwidth(pool), best = {1e30, 1e30};
    for (int rep = 0; rep < 3; rep++) {
        lb_session_reset(ses);
        lb_forward(ses, tok, 16, logits);
        clk t0 = clk_now();
        for (int64_t i = 0; i < n_gen; i++) {
            lb_forward(ses, &t, 1, logits);
            t = (int32_t)((t * 31 + 7) % 32000);
        }
        clk d = clk_since(t0);
        best.wall = fmin(best.wall, d.wall);
        best.cpu = fmin(best.cpu, d.cpu);
    }
    double bpt = bytes_per_token(m), tps = (double)n_gen / best.wall, bound = bw.wall / bpt;
    printf("| %s | generation | %.2f tokens/s | bound %.2f tokens/s (%.0f MB/token, copy %.1f GB/s) | %.1f%% of bound "
           "| %.1f%% |\n", lb_dtype_name(dt), tps, bound, bpt * 1e-6, bw.wall * 1e-9, 100 * tps / bound,
           100 * ((double)n_gen / best.cpu) / (bw.cpu / bpt));
    printf("| %s | generation | (same run) | read-only bound %.2f tokens/s (read stream %.1f GB/s) | %.1f%% of read bound "
           "| %.1f%% |\n", lb_dtype_name(dt), rbw.wall / bpt, rbw.wall * 1e-9, 100 * tps / (rbw.wall / bpt),
           100 * ((double)n_gen / best.cpu) / (rbw.cpu / bpt));
    free(logits);
    lb_session_free(ses);
    lb_model_free(m);
    synth_remove(dir);
}

int main(int argc, char **argv)
{
    int nt = argc > 1 ? atoi(argv[1]) : 0;
    lb_pool *pool;
    if (lb_pool_create(nt, &pool)) return 1;
    nt = lb_pool_threads(pool);
    printf("engine bench: 110M-shape llama, synthetic weights, %d threads, isa %s (noisy: shared machine)\n", nt,
           lb_isa_name(lb_isa_active()));
    printf("ceilings measured right before each phase: peak = register-only FMA loop on every thread;\n"
           "bound = copy bandwidth (read + write bytes, 1 GiB buffers) / weight bytes per token;\n"
           "best of 2 prompt runs, of 3 runs of 12 generated tokens, of 3 ceiling runs;\n"
           "last column: the same ratio with process CPU time instead of wall time (less noisy when shared)\n\n");
    printf("| weights | phase | speed | measure | ratio | ratio in CPU time |\n|---|---|---|---|---|---|\n");
    const char *only = argc > 2 ? argv[2] : "";
    if (strcmp(only, "bf16")) bench_dtype(LB_DTYPE_F32, pool, nt);
    if (strcmp(only, "f32")) bench_dtype(LB_DTYPE_BF16, pool, nt);
    lb_pool_free(pool);
    return 0;
}
