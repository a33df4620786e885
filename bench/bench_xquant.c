/* bench_xquant.c: what XQuant's rematerialization costs a CPU decode. For
 * each real model (LOWBIT_MODELS, default ../shared/models; SKIP when absent)
 * and each context T: prefill T tokens, then decode 32 tokens one at a time
 * (lb_forward of one token), with the f32 cache, KIVI 4-bit and XQuant 4-bit
 * (plain and CL). Reported per decoded token: wall time and process CPU time
 * (the machine is shared: CPU time leaves out the time other jobs held the
 * cores), each as a ratio to the f32 cache measured in the same run, the
 * cache's bytes per token, and the FLOPs XQuant adds per token, 4 n_layers T
 * dim kv_dim (docs/kv.md), beside the model's own per-token FLOPs (2 x the
 * linear weights' multiply-adds + attention's 4 n_layers n_heads head_dim T).
 * usage: bench_xquant [threads]   (default 1) */
#include "model/model.h"
#include "bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define N_DEC 32

/* Decode N_DEC tokens after a prefill of T; wall and CPU seconds per token. */
static int run(const lb_model *m, const char *kv, int th, int64_t T, double *wall, double *cpu, double *bpt)
{
    lb_session_opts o = {.n_threads = th, .max_ctx = T + N_DEC, .max_batch = 64, .kv = kv};
    lb_session *s;
    if (lb_session_create(m, &o, &s)) { fprintf(stderr, "%s: %s\n", kv, lb_errmsg()); return 1; }
    int64_t V = m->cfg.vocab_size;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(T + N_DEC));
    float *lg = malloc(sizeof(float) * (size_t)V);
    for (int64_t i = 0; i < T + N_DEC; i++) tok[i] = (int32_t)((i * 7919 + 13) % V);
    int bad = lb_forward(s, tok, T, lg) != LB_OK;
    double w0 = lb_time_now(), c0 = cpu_now();
    for (int64_t i = 0; i < N_DEC && !bad; i++) bad = lb_forward(s, tok + T + i, 1, lg) != LB_OK;
    *wall = (lb_time_now() - w0) / N_DEC;
    *cpu = (cpu_now() - c0) / N_DEC;
    lb_kv_stats st;
    lb_session_kv_stats(s, &st);
    *bpt = st.bytes_per_token;
    free(tok);
    free(lg);
    lb_session_free(s);
    return bad;
}

int main(int argc, char **argv)
{
    int th = argc > 1 ? atoi(argv[1]) : 1;
    const char *dir = getenv("LOWBIT_MODELS") ? getenv("LOWBIT_MODELS") : "../shared/models";
    const char *names[2] = {"stories260K/stories260K.bin", "tinystories-656k"};
    const char *specs[] = {"f32", "kivi:bits=4,residual=0", "xquant:bits=4", "xquant:bits=4,cl=1"};
    const int64_t ctxs[] = {128, 448};
    printf("bench_xquant: %d thread(s), %d decoded tokens after a prefill of T\n\n", th, N_DEC);
    printf("| model | T | SPEC | bytes/token | ms/token wall | vs f32 | ms/token CPU | vs f32 | XQuant MFLOP/token | model MFLOP/token |\n");
    printf("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int mi = 0; mi < 2; mi++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[mi]);
        lb_model *m;
        if (lb_model_load(path, &m)) { printf("SKIP %s: %s\n", path, lb_errmsg()); continue; }
        const lb_config *c = &m->cfg;
        int64_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
        double macs = (double)c->n_layers * (double)(c->dim * (2 * qd + 2 * kvd) + 3 * c->dim * c->hidden_dim) +
                      (double)(c->vocab_size * c->dim);
        for (size_t ci = 0; ci < sizeof ctxs / sizeof *ctxs; ci++) {
            int64_t T = ctxs[ci];
            if (T + N_DEC > c->max_seq) continue;
            double w32 = 0, c32 = 0;
            for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
                double w, cp, bpt;
                if (run(m, specs[si], th, T, &w, &cp, &bpt)) { lb_model_free(m); return 1; }
                if (si == 0) { w32 = w; c32 = cp; }
                bool xq = !strncmp(specs[si], "xquant", 6);
                double Tm = (double)T + N_DEC / 2.0;
                double fx = xq ? 4.0 * (double)c->n_layers * Tm * (double)(c->dim * kvd) / 1e6 : 0;
                double fm = (2 * macs + 4.0 * (double)(c->n_layers * qd) * Tm) / 1e6;
                printf("| %s | %lld | `%s` | %.1f | %.3f | %.2f | %.3f | %.2f | %.1f | %.2f |\n", names[mi],
                       (long long)T, specs[si], bpt, 1e3 * w, w / w32, 1e3 * cp, cp / c32, fx, fm);
            }
        }
        lb_model_free(m);
    }
    return 0;
}
