/* fuzz_logits.c: saved log-probability files (`lowbit eval ppl
 * --save-logits`, read by `eval kld`; src/eval/basefile.c) through the
 * public API only: the input is written to a file and compared with
 * lb_eval_kld against a tiny synthetic model (vocab 512 like stories260K,
 * whose saved logits seed the corpus; dim 8, one layer, 64 positions), made
 * once with lb_synth_write. A file that passes the checks is run in full
 * (forward pass of its tokens, KL divergence of every saved row).
 * Seeds: build/fuzz-corpus/fuzz_logits (tests/fuzz_corpus.sh). */
#include "fuzz_files.h"

static lb_model *tiny_model(void)
{
    static lb_model *m;
    if (m) return m;
    lb_synth_opts o;
    char dir[256];
    if (lb_synth_preset(NULL, &o) != LB_OK) abort();
    o.dim = 8; o.hidden_dim = 16; o.n_layers = 1; o.n_heads = 2; o.n_kv_heads = 2;
    o.vocab_size = 512; o.max_seq = 64; o.std = 0.5;
    fuzz_path(dir, sizeof dir, "tiny");
    if (lb_synth_write(dir, &o, NULL, NULL) != LB_OK || lb_model_load(dir, &m) != LB_OK) {
        fprintf(stderr, "fuzz_logits: cannot make the model: %s\n", lb_errmsg());
        abort();
    }
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_model *m = tiny_model();
    char p[256];
    fuzz_path(p, sizeof p, "base.lp");
    fuzz_write(p, data, size);
    lb_kld_opts o = {.n_threads = 1};
    lb_kld_result r;
    lb_eval_kld(m, p, &o, &r);
    return 0;
}

static const char *const fuzz_seeds[] = {"$CORPUS/fuzz_logits"};
#define FUZZ_DEFAULT_ITERS 600
#include "fuzz_main.h"
