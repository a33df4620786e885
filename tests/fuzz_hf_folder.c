/* fuzz_hf_folder.c: whole Hugging Face model folders (config.json,
 * model.safetensors plain or packed, shards with their index, tokenizer.json
 * or tokenizer.bin) through the public API only. The input is a container of
 * files (fuzz_files.h) written out as a folder, then: lb_model_load and two
 * tokens of forward pass when it loads, lb_inspect, and lb_tokenizer_load
 * with an encode/decode round. Seeds: build/fuzz-corpus/fuzz_hf_folder. */
#include "fuzz_files.h"

static void use_tokenizer(const char *dir)
{
    lb_tokenizer *t = NULL;
    if (lb_tokenizer_load(dir, &t) != LB_OK) return;
    static const char text[] = "Once upon a time, \xc3\xa9t\xc3\xa9 <s> 123\n";
    int32_t *ids = NULL;
    int64_t n = 0;
    if (lb_tokenizer_encode(t, text, sizeof text - 1, 1, &ids, &n) == LB_OK) {
        char *back = NULL;
        if (lb_tokenizer_decode(t, ids, n, &back, NULL) == LB_OK) free(back);
    }
    free(ids);
    lb_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[256];
    fuzz_write_folder(dir, sizeof dir, "m", data, size);
    lb_model *m = NULL;
    if (lb_model_load(dir, &m) == LB_OK) fuzz_use_model(m, 4u << 20);
    lb_model_free(m);
    fuzz_inspect(dir, (int)(size & 1));
    use_tokenizer(dir);
    return 0;
}

static const char *const fuzz_seeds[] = {"$CORPUS/fuzz_hf_folder"};
#define FUZZ_DEFAULT_ITERS 600
#include "fuzz_main.h"
