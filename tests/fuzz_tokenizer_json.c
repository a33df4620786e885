/* fuzz_tokenizer_json.c: the tokenizer.json parser, then encode and decode
 * of bytes taken from the input itself (the start of the mutated file). */
#include "model/tokenizer.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static const char *const fuzz_seeds[] = {"$MODELS/tinystories-656k/tokenizer.json", "tests/ref/fuzz_seed_bytelevel.json",
                                         "tests/ref/fuzz_seed_split.json"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_tokenizer *t = NULL;
    if (lb__tokenizer_from_hf_json((const char *)data, size, "fuzz.json", NULL, 0, &t) != LB_OK) return 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    size_t k = size < 200 ? size : 200;
    if (lb_tokenizer_encode(t, (const char *)data, k, 1, &ids, &n) == LB_OK) {
        char *text = NULL;
        if (lb_tokenizer_decode(t, ids, n, &text, NULL) == LB_OK) free(text);
    }
    free(ids);
    lb_tokenizer_free(t);
    return 0;
}

#include "fuzz_main.h"
