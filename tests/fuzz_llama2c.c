/* fuzz_llama2c.c: the llama2.c checkpoint parser on mutated checkpoints. On
 * success every byte of every weight view is read, so a view reaching past
 * the buffer shows up under ASan. */
#include "model/loader.h"
#include <stdint.h>

static unsigned touch(const lb_weight *w)
{
    unsigned acc = 0;
    const uint8_t *p = w->data;
    size_t n = p ? (size_t)(w->rows * w->cols) * lb_dtype_size(w->dtype) : 0;
    for (size_t i = 0; i < n; i++) acc += p[i];
    return acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lb_model *m = lb__model_new();
    if (!m) return 0;
    volatile unsigned acc = 0;
    if (lb__llama2c_parse(data, size, "fuzz", m) == LB_OK) {
        acc += touch(&m->tok_embed) + touch(&m->final_norm) + touch(&m->lm_head);
        for (int64_t l = 0; l < m->cfg.n_layers; l++) {
            const lb_layer_weights *L = &m->layers[l];
            acc += touch(&L->attn_norm) + touch(&L->wq) + touch(&L->wk) + touch(&L->wv) + touch(&L->wo) +
                   touch(&L->ffn_norm) + touch(&L->w_gate) + touch(&L->w_up) + touch(&L->w_down);
        }
    }
    (void)acc;
    lb_model_free(m);
    return 0;
}

static const char *const fuzz_seeds[] = {
    "$MODELS/stories260K/stories260K.bin",
    "$MODELS/stories260K/stories260K_v1.bin",
};

#include "fuzz_main.h"
