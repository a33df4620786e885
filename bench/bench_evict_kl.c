/* bench_evict_kl.c: what KV eviction costs in quality, kvpress-style, through
 * the public API only (a driver until `lowbit eval kv` exists; docs/results.md).
 *
 * The text is tokenized and cut into chunks of C + M + 1 tokens (BOS first).
 * Per chunk and per SPEC: prefill the C context tokens, run the SPEC's
 * eviction (lb_session_kv_compress), then feed the next M tokens
 * teacher-forced in one batch and compare their M next-token distributions
 * with those of the uncompressed f32 cache: mean KL(base || compressed),
 * top-1 agreement, the continuation's perplexity, and the KV bytes per
 * position from the cache's own accounting (after the continuation).
 *
 * usage: bench_evict_kl [MODEL TEXT [C M CHUNKS [SPEC...]]]
 * Without arguments: stories260K on TinyStories, C 256, M 32, 2 chunks, a few
 * SPECs (a smoke run for `make bench`). Prints a markdown table. */
#include "lowbit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { double kl, top1, nll, bpt, held; int64_t n; } acc;

/* log-softmax of x (n) into y. */
static void log_softmax(const float *x, int64_t n, double *y)
{
    double mx = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, x[i]);
    for (int64_t i = 0; i < n; i++) s += exp(x[i] - mx);
    double l = mx + log(s);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] - l;
}

static int64_t argmax(const float *x, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

/* One chunk with one SPEC: logits of the M continuation tokens into lg. */
static lb_status run_chunk(lb_session *s, const int32_t *tok, int64_t C, int64_t M, float *lg, lb_kv_stats *st)
{
    lb_session_reset(s);
    lb_status rc = lb_forward(s, tok, C, NULL);
    if (!rc) rc = lb_session_kv_compress(s);
    if (!rc) rc = lb_forward_all(s, tok + C, M, lg);
    if (!rc) rc = lb_session_kv_stats(s, st);
    return rc;
}

static char *read_text(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    *n = b ? fread(b, 1, (size_t)sz, f) : 0;
    fclose(f);
    if (b) b[*n] = 0;
    return b;
}

int main(int argc, char **argv)
{
    const char *model = argc > 2 ? argv[1] : "../shared/models/stories260K/stories260K.bin";
    const char *text = argc > 2 ? argv[2] : "../shared/data/tinystories/tinystories_val.txt";
    int64_t C = argc > 5 ? atoll(argv[3]) : 256, M = argc > 5 ? atoll(argv[4]) : 32;
    int64_t chunks = argc > 5 ? atoll(argv[5]) : 2;
    static const char *def_specs[] = {"snapkv:ratio=0.5", "expected:ratio=0.5", "streaming:ratio=0.5",
                                      "random:ratio=0.5"};
    const char *const *specs = argc > 6 ? (const char *const *)argv + 6 : def_specs;
    int n_specs = argc > 6 ? argc - 6 : 4;
    lb_model *m = NULL;
    lb_tokenizer *t = NULL;
    char tp[1024];
    size_t tn = 0;
    char *txt = read_text(text, &tn);
    if (!txt || lb_model_load(model, &m) || lb_tokenizer_find(model, tp, sizeof tp) || lb_tokenizer_load(tp, &t)) {
        printf("SKIP bench_evict_kl: %s / %s: %s\n", model, text, txt ? lb_errmsg() : "cannot read the text");
        return 0;
    }
    int32_t *ids = NULL;
    int64_t nid = 0;
    if (lb_tokenizer_encode(t, txt, tn, 0, &ids, &nid)) { fprintf(stderr, "%s\n", lb_errmsg()); return 1; }
    lb_model_info mi;
    lb_model_get_info(m, &mi);
    int64_t V = mi.vocab_size, L = C + M + 1;
    if (chunks * (L - 1) > nid) chunks = nid / (L - 1);
    int32_t bos = lb_tokenizer_bos(t);
    float *base = malloc(sizeof(float) * (size_t)(M * V)), *lg = malloc(sizeof(float) * (size_t)(M * V));
    double *lp = malloc(sizeof(double) * (size_t)V), *lq = malloc(sizeof(double) * (size_t)V);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)L);
    acc *a = calloc((size_t)n_specs + 1, sizeof(acc));
    lb_session *sb = NULL, **ss = calloc((size_t)n_specs, sizeof *ss);
    lb_session_opts so = {2, C + M, 0, "f32"};
    if (lb_session_create(m, &so, &sb)) { fprintf(stderr, "%s\n", lb_errmsg()); return 1; }
    for (int i = 0; i < n_specs; i++) {
        so.kv = specs[i];
        if (lb_session_create(m, &so, &ss[i])) { fprintf(stderr, "%s: %s\n", specs[i], lb_errmsg()); return 1; }
    }
    for (int64_t k = 0; k < chunks; k++) {
        tok[0] = bos >= 0 ? bos : ids[k * (L - 1)];
        memcpy(tok + 1, ids + k * (L - 1), sizeof(int32_t) * (size_t)(L - 1));
        lb_kv_stats st;
        if (run_chunk(sb, tok, C, M, base, &st)) { fprintf(stderr, "%s\n", lb_errmsg()); return 1; }
        a[n_specs].bpt += st.bytes_per_token;
        a[n_specs].held += (double)st.tokens;
        for (int64_t j = 0; j < M; j++) {
            log_softmax(base + j * V, V, lp);
            a[n_specs].nll -= lp[tok[C + 1 + j]];
        }
        a[n_specs].n++;
        for (int i = 0; i < n_specs; i++) {
            if (run_chunk(ss[i], tok, C, M, lg, &st)) { fprintf(stderr, "%s: %s\n", specs[i], lb_errmsg()); return 1; }
            for (int64_t j = 0; j < M; j++) {
                log_softmax(base + j * V, V, lp);
                log_softmax(lg + j * V, V, lq);
                double kl = 0;
                for (int64_t v = 0; v < V; v++) kl += exp(lp[v]) * (lp[v] - lq[v]);
                a[i].kl += kl;
                a[i].top1 += argmax(base + j * V, V) == argmax(lg + j * V, V);
                a[i].nll -= lq[tok[C + 1 + j]];
            }
            a[i].bpt += st.bytes_per_token;
            a[i].held += (double)st.tokens;
            a[i].n++;
        }
    }
    printf("%s, %s: %lld chunks of C %lld + M %lld tokens\n\n", model, text, (long long)chunks, (long long)C,
           (long long)M);
    printf("| SPEC | KL | top-1 | PPL | KV bytes/token | entries held |\n|---|---:|---:|---:|---:|---:|\n");
    double nM = (double)chunks * (double)M;
    printf("| f32 (base) | 0 | 1 | %.3f | %.1f | %.0f |\n", exp(a[n_specs].nll / nM), a[n_specs].bpt / (double)chunks,
           a[n_specs].held / (double)chunks);
    for (int i = 0; i < n_specs; i++)
        printf("| %s | %.5f | %.4f | %.3f | %.1f | %.0f |\n", specs[i], a[i].kl / nM, a[i].top1 / nM,
               exp(a[i].nll / nM), a[i].bpt / (double)chunks, a[i].held / (double)chunks);
    for (int i = 0; i < n_specs; i++) lb_session_free(ss[i]);
    lb_session_free(sb);
    free(ss); free(a); free(tok); free(lp); free(lq); free(base); free(lg); free(ids); free(txt);
    lb_tokenizer_free(t);
    lb_model_free(m);
    return 0;
}
