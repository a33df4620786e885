/* generate.c: greedy generation through the public API only.
 *   cc generate.c $(pkg-config --cflags --libs lowbit) -o generate
 *   ./generate MODEL [N]
 * MODEL is anything lowbit loads (llama2.c .bin, a Hugging Face folder, a
 * quantized or losslessly packed file); its tokenizer is found beside it.
 * Prints the continuation of BOS, N tokens (default 40), then tokens/s. */
#include <lowbit.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what)
{
    fprintf(stderr, "generate: %s: %s\n", what, lb_errmsg());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: generate MODEL [N]\n"); return 2; }
    int n = argc > 2 ? atoi(argv[2]) : 40;
    char tok_path[4096];
    lb_model *m = NULL;
    lb_tokenizer *t = NULL;
    lb_session *s = NULL;
    lb_sampler *smp = NULL;
    if (lb_model_load(argv[1], &m)) return fail("loading the model");
    if (lb_tokenizer_find(argv[1], tok_path, sizeof tok_path) || lb_tokenizer_load(tok_path, &t))
        return fail("loading the tokenizer");
    lb_model_info info;
    lb_model_get_info(m, &info);
    lb_session_opts so = {.n_threads = 0, .max_ctx = 256};
    if (lb_session_create(m, &so, &s)) return fail("creating a session");
    lb_sampler_opts greedy = {.temperature = 0.0f, .top_p = 1.0f, .seed = 0};
    if (lb_sampler_create(info.vocab_size, &greedy, &smp)) return fail("creating a sampler");
    float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
    int32_t tok = lb_tokenizer_bos(t), prev = tok;
    double t0 = lb_time_now();
    for (int i = 0; i < n && logits; i++) {
        if (lb_forward(s, &tok, 1, logits)) return fail("forward");
        int32_t next = lb_sample(smp, logits);  /* temperature 0: argmax, lowest id on ties */
        if (next == lb_tokenizer_eos(t)) break;
        char buf[256];
        const char *piece;
        size_t len;
        if (!lb_tokenizer_piece(t, prev, next, buf, sizeof buf, &piece, &len)) fwrite(piece, 1, len, stdout);
        prev = tok = next;
    }
    printf("\n");
    fprintf(stderr, "%.1f tokens/s (%s)\n", n / (lb_time_now() - t0), lb_isa_name(lb_isa_active()));
    free(logits);
    lb_sampler_free(smp);
    lb_session_free(s);
    lb_tokenizer_free(t);
    lb_model_free(m);
    return 0;
}
