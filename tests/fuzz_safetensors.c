/* fuzz_safetensors.c: the safetensors header parser on mutated files. On
 * success every byte of every tensor view is read and every name looked up,
 * so a view reaching past the buffer shows up under ASan. */
#include "core/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_st_file f;
    if (lb__st_parse(data, size, "fuzz", &f) != LB_OK) return 0;
    volatile unsigned acc = 0;
    for (int64_t i = 0; i < f.n_tensors; i++) {
        const lb_st_tensor *t = &f.tensors[i];
        const uint8_t *p = t->data;
        for (uint64_t k = 0; k < t->end - t->begin; k++) acc += p[k];
        if (lb__st_find(&f, t->name) != t) abort();
    }
    for (int64_t i = 0; i < f.n_meta; i++) acc += (unsigned)strlen(f.meta_vals[i]);
    (void)acc;
    lb__st_close(&f);
    return 0;
}

static const char *const fuzz_seeds[] = {
    "$MODELS/tinystories-656k/model.safetensors",
};

#include "fuzz_main.h"
