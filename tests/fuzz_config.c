/* fuzz_config.c: the Hugging Face config.json parser on mutated configs.
 * Whatever it accepts must pass the config checks the loaders rely on. */
#include "model/loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_config c;
    if (lb__hf_config_parse((const char *)data, size, "fuzz", &c) != LB_OK) return 0;
    if (c.n_heads % c.n_kv_heads || c.dim <= 0 || c.head_dim <= 0 || c.vocab_size <= 0) abort();
    return 0;
}

static const char *const fuzz_seeds[] = {
    "$MODELS/tinystories-656k/config.json",
    "$MODELS/tinystories-656k/tokenizer_config.json",
};

#include "fuzz_main.h"
