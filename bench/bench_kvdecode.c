/* bench_kvdecode.c: end-to-end decode speed with each KV cache on the
 * llama-3.2-1b shape (16 layers, dim 2048, 32 query heads, 8 kv heads,
 * head_dim 64, MLP 8192, vocab 128256): the `lowbit synth --preset
 * llama-3.2-1b` model (seeded Gaussian weights, BF16 by default) written to a
 * temp folder and loaded as users load it.
 *
 * For contexts of 4k, 16k and 32k tokens and the caches f32, f16, int8 (KIVI
 * 8-bit without a window), KIVI 4-bit and 2-bit, and f32 after evicting 50%
 * and 90% of the tokens: a fresh session (max_ctx = context + 8) whose cache
 * is filled directly through the cache API (lb__kv_append of seeded
 * Gaussian post-RoPE keys and values, 4096 distinct rows repeated; every
 * layer; a real prefill of 32k tokens would take hours on 2 cores), then
 * `decode` tokens decoded with lb_forward at positions T, T+1, ... Prints,
 * per row: decode tokens/s (wall, best token), the attention time per token
 * (all 16 layers: lb__kv_attend_group over every kv head on a pool of the
 * same threads, best of 3), its share of the token, the speed ratio to f32
 * at the same context in the same run (decode and attention), the KV bytes
 * held, the fraction of the read bandwidth (measured in the same run) that
 * the bytes a token must read (weights + KV held) over the token's time
 * reach, and the growth of the process's resident memory from creating the
 * session and filling its cache (the process's resident memory with the
 * model loaded is printed in the header).
 *
 * Weights: bf16 (default) or f32 as written; w4a8: the BF16 model quantized
 * to int4_g32 by RTN in memory (lb_model_quantize) with INT8 activations
 * (lb_model_set_act "int8", the integer kernels), the fastest decode lowbit
 * has, where attention's share of a token is largest.
 *
 * usage: bench_kvdecode [threads (2)] [max context (32768)] [bf16|f32|w4a8 (bf16)] [decode tokens (3)] */
#include "bench_util.h"
#include "kv/kv.h"
#include "model/model.h"
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NROWS 4096   /* distinct synthetic K/V rows */

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct att { lb_kv *c; lb_pool *pool; const float *q; float *out; int64_t L, l, nkv, grp, hd; } att;

static void att_task(void *ctx, int64_t b, int64_t e, int thread)
{
    att *a = ctx;
    for (int64_t g = b; g < e; g++) {
        int64_t off = g * a->grp * a->hd;
        lb__kv_attend_group(a->c, a->l, g, a->q + off, a->grp, 0, thread, a->out + off);
    }
}

/* One decode token's attention in every layer: a layer's kv heads split
 * over the threads (as the engine does), the layers one after the other. */
static void attend_all(void *ctx)
{
    att *a = ctx;
    for (a->l = 0; a->l < a->L; a->l++) lb_pool_for(a->pool, a->nkv, 1, att_task, a);
}

static double weight_bytes(const lb_model *m)
{
    double b = (double)lb__weight_bytes(m->lm_head.rep ? &m->lm_head : &m->tok_embed);
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        const lb_layer_weights *L = &m->layers[l];
        const lb_weight *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) b += (double)lb__weight_bytes(w[i]);
    }
    return b;
}

int main(int argc, char **argv)
{
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);   /* pools are their own mappings, given back when freed */
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int64_t maxT = argc > 2 ? atoll(argv[2]) : 32768;
    const char *dts = argc > 3 ? argv[3] : "bf16";
    int n_dec = argc > 4 ? atoi(argv[4]) : 3;
    if (threads < 1 || maxT < 4096 || n_dec < 1 || (strcmp(dts, "bf16") && strcmp(dts, "f32") && strcmp(dts, "w4a8"))) {
        fprintf(stderr, "usage: bench_kvdecode [threads] [max context >= 4096] [bf16|f32|w4a8] [decode tokens >= 1]\n");
        return 2;
    }
    char dir[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/lowbit-kvdecode-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) { fprintf(stderr, "bench_kvdecode: cannot create a temp folder\n"); return 1; }
    lb_synth_opts so;
    lb_model *m = NULL;
    lb_status st = lb_synth_preset("llama-3.2-1b", &so);
    so.dtype = strcmp(dts, "f32") ? LB_DTYPE_BF16 : LB_DTYPE_F32;
    so.seed = 1;
    double t_synth = lb_time_now();
    if (!st) st = lb_synth_write(dir, &so, NULL, NULL);
    if (!st) st = lb_model_load(dir, &m);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);   /* mapped: the data stays until the model is freed */
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
    if (!st && !strcmp(dts, "w4a8")) {
        lb_model *q4 = NULL;
        lb_model_quant_opts qo = {.format = "int4_g32", .method = "rtn", .n_threads = threads};
        st = lb_model_quantize(m, &qo, &q4, NULL);
        lb_model_free(m);
        m = q4;
        if (!st) st = lb_model_set_act(m, "int8", NULL);
    }
    if (st) { fprintf(stderr, "bench_kvdecode: %s\n", lb_errmsg()); return 1; }
    t_synth = lb_time_now() - t_synth;
    const lb_config *cf = &m->cfg;
    int64_t L = cf->n_layers, nkv = cf->n_kv_heads, hd = cf->head_dim, grp = cf->n_heads / nkv, kvd = nkv * hd;
    lb_pool *pool;
    if (lb_pool_create(threads, &pool)) { fprintf(stderr, "%s\n", lb_errmsg()); return 1; }
    threads = lb_pool_threads(pool);

    lb_rng rng;
    lb_rng_seed(&rng, 7);
    float *kv = malloc(sizeof(float) * (size_t)(NROWS * 2 * kvd)), *q = malloc(sizeof(float) * (size_t)(cf->n_heads * hd));
    float *out = malloc(sizeof(float) * (size_t)(cf->n_heads * hd));
    float *logits = malloc(sizeof(float) * (size_t)cf->vocab_size);
    for (int64_t i = 0; i < NROWS * 2 * kvd; i++) kv[i] = (float)lb_rng_normal(&rng);
    for (int64_t i = 0; i < cf->n_heads * hd; i++) q[i] = (float)lb_rng_normal(&rng);
    double bw = bench_read_bw();
    double wb = weight_bytes(m);
    printf("# bench_kvdecode: llama-3.2-1b shape (%lld layers, %lld q heads, %lld kv heads, head_dim %lld), %s "
           "weights %.0f MiB read per token, %d threads, %s; read bandwidth %.1f GB/s; model ready (written, loaded, quantized) in %.0f s; "
           "process RSS %.0f MiB\n",
           (long long)L, (long long)cf->n_heads, (long long)nkv, (long long)hd, dts, wb / 1048576.0, threads,
           lb_isa_name(lb_isa_active()), bw / 1e9, t_synth, bench_rss() / 1048576.0);
    printf("context\tcache\tdecode tok/s\tdecode CPU s/token\tattention ms/token\tattention share\tdecode vs f32\t"
           "attention vs f32\tKV MiB\tbandwidth fraction\tRSS MiB\n");
    const char *specs[] = {"f32", "f16", "kivi:bits=8,residual=0", "kivi:bits=4", "kivi:bits=2", "f32", "f32"};
    const char *names[] = {"f32", "f16", "int8 (kivi 8-bit, no window)", "kivi4", "kivi2", "f32 evict 50%",
                           "f32 evict 90%"};
    const int evict[] = {0, 0, 0, 0, 0, 50, 90};
    for (int64_t T = 4096; T <= maxT; T *= T == 4096 ? 4 : 2) {
        double base_dec = 0, base_att = 0;
        for (int i = 0; i < 7; i++) {
            double r0 = bench_rss();
            lb_session *s;
            lb_session_opts o = {threads, T + 8, 64, specs[i]};
            if (lb_session_create(m, &o, &s)) { fprintf(stderr, "%s\n", lb_errmsg()); return 1; }
            lb_kv *c = lb__session_kv(s);
            for (int64_t l = 0; l < L; l++)
                for (int64_t t = 0; t < T; t++) {
                    const float *row = kv + ((t * 7 + l * 131) % NROWS) * 2 * kvd;
                    lb__kv_append(c, l, t, row, row + kvd);
                }
            if (evict[i]) {
                int64_t every = evict[i] == 50 ? 2 : 10, n = 0, *keep = malloc(sizeof(int64_t) * (size_t)T);
                for (int64_t t = 0; t < T; t += every) keep[n++] = t;
                for (int64_t l = 0; l < L; l++)
                    for (int64_t g = 0; g < nkv; g++) lb__kv_keep(c, l, g, keep, n);
                free(keep);
            }
            double grown = bench_rss() - r0;
            lb__kv_report rep;
            lb__kv_report_get(c, &rep);
            att a = {c, pool, q, out, L, 0, nkv, grp, hd};
            double ta = best_time(3, attend_all, &a);
            /* decode: the session continues at position T */
            lb__session_layer(s, 0, NULL, 0, T);
            double td = 1e30, tc = 1e30;
            for (int k = 0; k < n_dec; k++) {
                int32_t tok = (int32_t)((T + k) * 7919 % cf->vocab_size);
                double t0 = lb_time_now(), c0 = cpu_now();
                if (lb_forward(s, &tok, 1, logits)) { fprintf(stderr, "%s\n", lb_errmsg()); return 1; }
                td = fmin(td, lb_time_now() - t0);
                tc = fmin(tc, cpu_now() - c0);
            }
            if (i == 0) { base_dec = td; base_att = ta; }
            printf("%lld\t%s\t%.2f\t%.3f\t%.1f\t%.2f\t%.2f\t%.2f\t%.1f\t%.3f\t%.1f\n", (long long)T, names[i], 1 / td, tc,
                   ta * 1e3, ta / td, base_dec / td, base_att / ta, (double)rep.bytes / 1048576.0,
                   (wb + (double)rep.bytes) / td / bw, grown / 1048576.0);
            fflush(stdout);
            lb_session_free(s);
        }
    }
    free(kv); free(q); free(out); free(logits);
    lb_pool_free(pool);
    lb_model_free(m);
    return 0;
}
