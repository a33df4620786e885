/* bench_kv.c: decode attention over the KV cache (src/kv) on the
 * llama-3.2-1b attention shape: 32 query heads, 8 kv heads, head_dim 64, one
 * layer (attention time per token is per layer; a 16-layer model takes 16
 * times as long). For contexts of 4k, 16k and 32k tokens and the caches f32,
 * f16, int8 (KIVI 8-bit without a window), KIVI 4-bit and 2-bit (group 32,
 * window 128),
 * and the f32 cache after evicting 50% and 90% of the tokens (every head
 * keeping an evenly spread subset), one decode token attends with all 32
 * heads split over the threads. Prints the time per token, the ratio to
 * f32 at the same context in the same run (higher = faster), the cache bytes
 * held, and the fraction of the machine's read bandwidth the attention
 * reaches (bytes held / time, over a streaming read of 256 MiB measured in
 * the same run), and the growth of the process's resident memory from
 * creating and filling the cache (the pool is reserved for the whole
 * context, only touched pages are resident; evicted pages stay resident in
 * the pool for reuse). On a shared machine wall times are noisy, so each
 * row also gives the attention's CPU time on one thread (every kv head in
 * turn on the calling thread, CLOCK_THREAD_CPUTIME_ID, best of the runs) and
 * its ratio to f32: time other jobs held the core is left out. Usage:
 * bench_kv [threads (default 2)] [max context (32768)]. */
#include "bench_util.h"
#include "kv/kv.h"
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define HQ 32
#define HKV 8
#define HD 64

typedef struct job { lb_kv *c; const float *q; float *out; } job;

static void task(void *ctx, int64_t b, int64_t e, int thread)
{
    job *j = ctx;
    for (int64_t g = b; g < e; g++)
        lb__kv_attend_group(j->c, 0, g, j->q + g * (HQ / HKV) * HD, HQ / HKV, 0, thread, j->out + g * (HQ / HKV) * HD);
}

typedef struct run { lb_pool *pool; job j; } run;

static void attend_all(void *ctx)
{
    run *r = ctx;
    lb_pool_for(r->pool, HKV, 1, task, &r->j);
}

/* Best thread CPU time of `reps` single-thread attentions (all kv heads). */
static double cpu_time_1t(int reps, job *j)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        task(j, 0, HKV, 0);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        double t = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        if (t < best) best = t;
    }
    return best;
}

static lb_kv *fill(const char *spec, int64_t T, int threads, const float *kv, int evict_pct)
{
    lb__kv_spec sp;
    if (lb__kv_parse(spec, "bench", &sp)) { fprintf(stderr, "%s\n", lb_errmsg()); exit(1); }
    double inv[HD / 2];
    for (int i = 0; i < HD / 2; i++) inv[i] = 1;
    lb__kv_shape sh = {1, HQ, HKV, HD, T, 1, threads, inv, false};
    lb_kv *c;
    if (lb__kv_create(&sp, &sh, "bench", &c)) { fprintf(stderr, "%s\n", lb_errmsg()); exit(1); }
    for (int64_t t = 0; t < T; t++)
        lb__kv_append(c, 0, t, kv + (t % 4096) * 2 * HKV * HD, kv + (t % 4096) * 2 * HKV * HD + HKV * HD);
    if (evict_pct) {
        int64_t keep_every = evict_pct == 50 ? 2 : 10, n = 0;
        int64_t *keep = malloc(sizeof(int64_t) * (size_t)T);
        for (int64_t t = 0; t < T; t += keep_every) keep[n++] = t;
        for (int g = 0; g < HKV; g++) lb__kv_keep(c, 0, g, keep, n);
        free(keep);
    }
    return c;
}

int main(int argc, char **argv)
{
    /* a fixed mmap threshold: every pool is its own mapping, given back when
     * freed, so the RSS growth of one cache does not reuse the previous one's */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int64_t maxT = argc > 2 ? atoll(argv[2]) : 32768;
    lb_pool *pool;
    if (lb_pool_create(threads, &pool)) return 1;
    threads = lb_pool_threads(pool);
    lb_rng rng;
    lb_rng_seed(&rng, 7);
    float *kv = malloc(sizeof(float) * 4096 * 2 * HKV * HD), q[HQ * HD], out[HQ * HD];
    for (size_t i = 0; i < (size_t)4096 * 2 * HKV * HD; i++) kv[i] = (float)lb_rng_normal(&rng);
    for (int i = 0; i < HQ * HD; i++) q[i] = (float)lb_rng_normal(&rng);
    double bw = bench_read_bw();
    printf("# bench_kv: 1 layer, %d q heads, %d kv heads, head_dim %d, %d threads, %s; read bandwidth %.1f GB/s\n",
           HQ, HKV, HD, threads, lb_isa_name(lb_isa_active()), bw / 1e9);
    printf("context\tcache\tus/token\tspeed vs f32\tKV MiB\tbytes/token\tbandwidth fraction\tRSS MiB\t"
           "CPU us/token (1 thread)\tCPU speed vs f32\n");
    const char *specs[] = {"f32", "f16", "kivi:bits=8,residual=0", "kivi:bits=4", "kivi:bits=2", "f32", "f32"};
    const char *names[] = {"f32", "f16", "int8 (kivi 8-bit, no window)", "kivi4", "kivi2", "f32 evict 50%", "f32 evict 90%"};
    const int evict[] = {0, 0, 0, 0, 0, 50, 90};
    for (int64_t T = 4096; T <= maxT; T *= T == 4096 ? 4 : 2) {
        double base = 0, cbase = 0;
        for (int i = 0; i < 7; i++) {
            double r0 = bench_rss();
            lb_kv *c = fill(specs[i], T, threads, kv, evict[i]);
            double grown = bench_rss() - r0;
            run rr = {pool, {c, q, out}};
            double t = best_time(T >= 16384 ? 5 : 10, attend_all, &rr);
            double ct = cpu_time_1t(T >= 16384 ? 5 : 10, &rr.j);
            if (i == 0) { base = t; cbase = ct; }
            lb__kv_report rep;
            lb__kv_report_get(c, &rep);
            printf("%lld\t%s\t%.1f\t%.2f\t%.1f\t%.1f\t%.3f\t%.1f\t%.1f\t%.2f\n", (long long)T, names[i], t * 1e6,
                   base / t, (double)rep.bytes / 1048576.0, (double)rep.bytes / (double)T, (double)rep.bytes / t / bw,
                   grown / 1048576.0, ct * 1e6, cbase / ct);
            fflush(stdout);
            lb__kv_free(c);
        }
    }
    free(kv);
    lb_pool_free(pool);
    return 0;
}
