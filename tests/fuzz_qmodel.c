/* fuzz_qmodel.c: lowbit model files (the .safetensors `lowbit quantize`
 * writes: packed block formats, column scales, Hadamard signs, the config in
 * the metadata; src/quant/qload.c) through the public API only: the input is
 * written to a file, loaded with lb_model_load, run for two tokens when it
 * loads (every packed weight goes through its kernel), and described with
 * lb_inspect. Seeds: build/fuzz-corpus/fuzz_qmodel (tests/fuzz_corpus.sh). */
#include "fuzz_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char p[256];
    fuzz_path(p, sizeof p, "q.safetensors");
    fuzz_write(p, data, size);
    lb_model *m = NULL;
    if (lb_model_load(p, &m) == LB_OK) fuzz_use_model(m, 4u << 20);
    lb_model_free(m);
    fuzz_inspect(p, (int)(size & 1));
    return 0;
}

static const char *const fuzz_seeds[] = {"$CORPUS/fuzz_qmodel"};
#define FUZZ_DEFAULT_ITERS 600
#include "fuzz_main.h"
