/* fuzz_tokenizer_bin.c: the llama2.c tokenizer.bin parser, then encode and
 * decode of bytes taken from the input itself. */
#include "model/tokenizer.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static const char *const fuzz_seeds[] = {"$MODELS/stories260K/tok512.bin"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_tokenizer *t = NULL;
    if (lb__tokenizer_from_llama2c(data, size, "fuzz.bin", &t) != LB_OK) return 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    size_t k = size < 300 ? size : 300;
    if (lb_tokenizer_encode(t, (const char *)data + size - k, k, 1, &ids, &n) == LB_OK) {
        char *text = NULL;
        if (lb_tokenizer_decode(t, ids, n, &text, NULL) == LB_OK) free(text);
    }
    free(ids);
    lb_tokenizer_free(t);
    return 0;
}

#include "fuzz_main.h"
