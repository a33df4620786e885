/* bench_lossless.c: lossless BF16 codec: size vs BF16 beside zstd -19 and
 * xz -9 on the same bytes, and decode throughput as a ratio to memcpy of the
 * decoded size, at 1 and 2 threads, measured in the same run.
 *
 * Data: stories260K and tinystories-656k (float32 rounded to BF16, RNE) and
 * a synthetic 110M-shape weight set: LOWBIT_BENCH_N values (default
 * 110,000,000) drawn N(0, 0.02^2), seed 1. The command-line compressors are
 * slow at these levels (~1-5 MB/s), so on the synthetic set they run on its
 * first 8M values (16 MB); the data are i.i.d., so the ratio carries over,
 * and our codec's ratio on the same 16 MB is printed beside them.
 * Generation: a stories110M-shape model written by `lowbit synth` (BF16,
 * Gaussian weights), packed, and decoded token by token in both forms; the
 * packed model decodes every weight block right before its product.
 * LOWBIT_BENCH_ONLY=gen runs only the generation rows, with
 * LOWBIT_BENCH_GEN_TOKENS steps (default 8).
 * Timings are noisy: the machine is shared. */
#include "lowbit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUBSET 8000000
#define GEN_TOKENS 8
static int gen_tokens = GEN_TOKENS;

static double status_mb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) kb = atof(line + strlen(key));
    if (f) fclose(f);
    return kb / 1024.0;
}

/* In a child process (so memory is its own): load, 4-token prompt, then
 * GEN_TOKENS greedy steps. Returns steps per second; *peak gets the peak
 * resident memory growth over the child's start (MiB). */
static double gen_tps(const char *dir, int threads, double *peak)
{
    int fd[2];
    double res[2] = {0, 0};
    if (pipe(fd)) return 0;
    malloc_trim(0); /* freed heap back to the OS, so the child's growth is all its own */
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        double r0 = status_mb("VmRSS:");
        lb_model *m;
        if (lb_model_load(dir, &m)) { fprintf(stderr, "load %s: %s\n", dir, lb_errmsg()); _exit(1); }
        lb_model_info info;
        lb_model_get_info(m, &info);
        lb_session_opts o = {.n_threads = threads, .max_ctx = 64};
        lb_session *s;
        if (lb_session_create(m, &o, &s)) { fprintf(stderr, "session: %s\n", lb_errmsg()); _exit(1); }
        float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
        int32_t tok[4] = {1, 400, 500, 600};
        lb_forward(s, tok, 4, logits);
        double t = lb_time_now();
        for (int i = 0; i < gen_tokens; i++) {
            int32_t best = 0;
            for (int64_t v = 1; v < info.vocab_size; v++) if (logits[v] > logits[best]) best = (int32_t)v;
            lb_forward(s, &best, 1, logits);
        }
        double out[2] = {gen_tokens / (lb_time_now() - t), status_mb("VmHWM:") - r0};
        if (write(fd[1], out, sizeof out) != (ssize_t)sizeof out) _exit(1);
        _exit(0);
    }
    close(fd[1]);
    if (pid < 0 || read(fd[0], res, sizeof res) != (ssize_t)sizeof res) res[0] = 0;
    close(fd[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
    *peak = res[1];
    return res[0];
}

/* A stories110M-shape BF16 model from `lowbit synth`, packed, then token
 * generation speed of both forms. */
static void gen_rows(lb_pool *pool)
{
    char dir[64], pdir[80], cmd[256];
    snprintf(dir, sizeof dir, "/tmp/lowbit_bench_110m_%d", (int)getpid());
    snprintf(pdir, sizeof pdir, "%s_packed", dir);
    const char *cli = getenv("LOWBIT_CLI");
    snprintf(cmd, sizeof cmd, "%s synth --out %s --preset stories110m --dtype bf16 >/dev/null", cli && *cli ? cli : "build/lowbit", dir);
    if (system(cmd) != 0) { printf("SKIP generation: '%s' failed\n", cmd); return; }
    lb_lossless_report rep;
    if (lb_lossless_pack_model(dir, pdir, NULL, pool, NULL, NULL, &rep)) { fprintf(stderr, "pack: %s\n", lb_errmsg()); exit(1); }
    printf("\ngeneration, stories110M shape (synthetic BF16 weights, %lld values; %d greedy steps after a 4-token prompt)\n\n",
           (long long)rep.values, gen_tokens);
    printf("weights: BF16 %llu bytes, packed %llu bytes (%.4f)\n\n", (unsigned long long)rep.bf16_bytes,
           (unsigned long long)rep.packed_bytes, (double)rep.packed_bytes / (double)rep.bf16_bytes);
    printf("| threads | BF16 tok/s | packed tok/s | packed / BF16 | peak RSS growth BF16 MiB | packed MiB |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int th = 1; th <= 2; th++) {
        double rp, rb;
        double tp = gen_tps(pdir, th, &rp), tb = gen_tps(dir, th, &rb);
        printf("| %d | %.2f | %.2f | %.3f | %.0f | %.0f |\n", th, tb, tp, tb > 0 ? tp / tb : 0, rb, rp);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, pdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static uint16_t *load_model(const char *path, int safetensors, int64_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    uint64_t skip = 28;
    fseek(f, 0, SEEK_SET);
    if (safetensors && fread(&skip, 8, 1, f) == 1) skip += 8;
    *n = (int64_t)(((uint64_t)size - skip) / 4);
    float *w = malloc((size_t)*n * 4);
    uint16_t *x = malloc((size_t)*n * 2);
    fseek(f, (long)skip, SEEK_SET);
    if (fread(w, 4, (size_t)*n, f) != (size_t)*n) { free(w); free(x); fclose(f); return NULL; }
    fclose(f);
    lb_f32_to_bf16_row(w, x, *n);
    free(w);
    return x;
}

/* Compressed size of `bytes` by a command-line tool, or 0 (SKIP). */
static size_t external_size(const char *tool, const char *args, const void *data, size_t bytes)
{
    char path[] = "/tmp/lowbit_bench_XXXXXX", cmd[512];
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    FILE *f = fdopen(fd, "wb");
    size_t ok = fwrite(data, 1, bytes, f);
    fclose(f);
    size_t out = 0;
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1 && %s %s -c '%s' | wc -c", tool, tool, args, path);
    FILE *pp = ok == bytes ? popen(cmd, "r") : NULL;
    if (pp) {
        unsigned long long v = 0;
        if (fscanf(pp, "%llu", &v) == 1) out = (size_t)v;
        pclose(pp);
    }
    unlink(path);
    return out;
}

static double packed_ratio(const uint16_t *x, int64_t n, lb_pool *pool, double *pack_s)
{
    lb_bf16_packed *p;
    double t = lb_time_now();
    if (lb_bf16_pack(x, n, "bench", NULL, pool, &p)) { fprintf(stderr, "pack: %s\n", lb_errmsg()); exit(1); }
    if (pack_s) *pack_s = lb_time_now() - t;
    double r = (double)lb_bf16_packed_blob_size(p) / (2.0 * (double)n);
    lb_bf16_packed_free(p);
    return r;
}

static void size_row(const char *name, const uint16_t *x, int64_t n, int64_t ext_n, lb_pool *pool)
{
    double pack_s;
    double ours = packed_ratio(x, n, pool, &pack_s);
    double ours_sub = ext_n < n ? packed_ratio(x, ext_n, pool, NULL) : ours;
    size_t zs = external_size("zstd", "-19 -q", x, (size_t)ext_n * 2);
    size_t xs = external_size("xz", "-9", x, (size_t)ext_n * 2);
    char zb[32] = "SKIP", xb[32] = "SKIP";
    if (zs) snprintf(zb, sizeof zb, "%.4f", (double)zs / (2.0 * (double)ext_n));
    if (xs) snprintf(xb, sizeof xb, "%.4f", (double)xs / (2.0 * (double)ext_n));
    printf("| %-22s | %11lld | %.4f | %.4f | %-8s | %-8s | %6.3f |\n", name, (long long)n, ours, ours_sub, zb, xb, pack_s);
}

static void speed_rows(const char *name, const uint16_t *x, int64_t n, lb_pool *pool2)
{
    lb_bf16_packed *p;
    if (lb_bf16_pack(x, n, name, NULL, pool2, &p)) { fprintf(stderr, "pack: %s\n", lb_errmsg()); exit(1); }
    lb_bf16_packed_info info;
    lb_bf16_packed_get_info(p, &info);
    uint16_t *out = malloc((size_t)n * 2), *src = malloc((size_t)n * 2);
    memcpy(src, x, (size_t)n * 2);
    int reps = n > 50000000 ? 3 : 10;
    lb_isa best = lb_isa_best();
    for (int threads = 1; threads <= 2; threads++) {
        lb_pool *pool = threads == 1 ? NULL : pool2;
        double mc = 1e30;
        for (int r = 0; r < reps; r++) {
            double t = lb_time_now();
            memcpy(out, src, (size_t)n * 2); /* the baseline is one thread's memcpy */
            t = lb_time_now() - t;
            if (t < mc) mc = t;
        }
        for (int isa = (int)best; isa >= 0; isa -= (int)best ? (int)best : 1) {
            lb_isa_set((lb_isa)isa);
            for (int v = 0; v < 2; v++) {
                double t = 1e30;
                for (int r = 0; r < reps; r++) {
                    double t0 = lb_time_now();
                    lb_status s = lb_bf16_unpack_streams(p, 0, info.n_streams, out, v ? LB_UNPACK_NOVERIFY : 0, pool);
                    double dt = lb_time_now() - t0;
                    if (s) { fprintf(stderr, "unpack: %s\n", lb_errmsg()); exit(1); }
                    if (dt < t) t = dt;
                }
                double gbs = 2.0 * (double)n / t / 1e9;
                printf("| %-22s | %7s | %d | %-8s | %7.3f | %8.2f | %7.2f |\n", name, lb_isa_name((lb_isa)isa), threads,
                       v ? "no CRC" : "CRC", gbs, t / mc, gbs / threads);
            }
            if (isa == 0) break;
        }
        lb_isa_set(best);
    }
    if (memcmp(out, x, (size_t)n * 2)) { fprintf(stderr, "bench: decode differs!\n"); exit(1); }
    free(out);
    free(src);
    lb_bf16_packed_free(p);
}

int main(void)
{
    const char *md = getenv("LOWBIT_MODELS");
    if (!md || !*md) md = "../shared/models";
    int64_t nsyn = 110000000;
    const char *envn = getenv("LOWBIT_BENCH_N");
    if (envn && *envn) nsyn = atoll(envn);
    const char *envg = getenv("LOWBIT_BENCH_GEN_TOKENS");
    if (envg && atoi(envg) > 0) gen_tokens = atoi(envg);
    const char *only = getenv("LOWBIT_BENCH_ONLY");
    if (only && !strcmp(only, "gen")) {   /* generation rows alone */
        lb_pool *pool2;
        lb_pool_create(2, &pool2);
        gen_rows(pool2);
        lb_pool_free(pool2);
        return 0;
    }
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/stories260K/stories260K.bin", md);
    snprintf(p2, sizeof p2, "%s/tinystories-656k/model.safetensors", md);
    int64_t n1 = 0, n2 = 0;
    uint16_t *x1 = load_model(p1, 0, &n1), *x2 = load_model(p2, 1, &n2);
    uint16_t *xs = malloc((size_t)nsyn * 2);
    lb_rng r;
    lb_rng_seed(&r, 1);
    for (int64_t i = 0; i < nsyn; i++) xs[i] = lb_f32_to_bf16((float)(lb_rng_normal(&r) * 0.02));
    lb_pool *pool2;
    lb_pool_create(2, &pool2);

    printf("lossless BF16 codec (isa %s; shared 2-core machine: timings are noisy)\n\n", lb_isa_name(lb_isa_best()));
    printf("size as a fraction of BF16 (lower is better; 'ext set' = the bytes given to zstd/xz)\n\n");
    printf("| data                   |      values | lowbit | lowbit ext set | zstd -19 | xz -9    | pack s |\n");
    printf("|------------------------|-------------|--------|----------------|----------|----------|--------|\n");
    if (x1) size_row("stories260K", x1, n1, n1, pool2); else printf("| stories260K | SKIP (no %s) |\n", p1);
    if (x2) size_row("tinystories-656k", x2, n2, n2, pool2); else printf("| tinystories-656k | SKIP (no %s) |\n", p2);
    char sname[64];
    snprintf(sname, sizeof sname, "gauss0.02 %lldM", (long long)(nsyn / 1000000));
    size_row(sname, xs, nsyn, nsyn < SUBSET ? nsyn : SUBSET, pool2);

    printf("\ndecode throughput (GB/s of BF16 output; 'x memcpy' = decode time / memcpy time of the output, best of runs)\n\n");
    printf("| data                   |     isa | T | checks   |    GB/s | x memcpy | GB/s/thr |\n");
    printf("|------------------------|---------|---|----------|---------|----------|---------|\n");
    if (x2) speed_rows("tinystories-656k", x2, n2, pool2);
    speed_rows(sname, xs, nsyn, pool2);
    free(xs);
    xs = NULL;
    gen_rows(pool2);
    lb_pool_free(pool2);
    free(x1); free(x2); free(xs);
    return 0;
}
