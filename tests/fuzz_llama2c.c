/* fuzz_llama2c.c: the llama2.c checkpoint parser on mutated checkpoints. On
 * success every byte of every weight view is read, so a view reaching past
 * the buffer shows up under ASan.
 *
 * The parser rejects any file whose length is not the one its header implies
 * (src/model/llama2c.c), so plain byte mutations never get past that check:
 * a structure-aware mutator changes the header fields (to small, boundary or
 * neighbouring values, or a whole new small header) and then resizes the
 * body to the implied length, in 15 of 16 cases; the 16th keeps a wrong
 * length to test the check itself. */
#include "model/loader.h"
#include <math.h>
#include <stdint.h>

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

/* Bytes a checkpoint with this header must have (llama2c.c's layout); 0 when
 * the header is invalid or the size absurd (> 256 MB). */
static size_t l2c_size(const uint8_t *d, size_t n)
{
    bool v1 = n >= 4 && rd32(d) == 0x616b3432u;
    size_t hdr = v1 ? 256 : 28;
    if (n < hdr) return 0;
    const uint8_t *h = d + (v1 ? 8 : 0);
    double dim = (int32_t)rd32(h), hid = (int32_t)rd32(h + 4), L = (int32_t)rd32(h + 8);
    double heads = (int32_t)rd32(h + 12), kvh = (int32_t)rd32(h + 16), V = (int32_t)rd32(h + 20);
    double seq = (int32_t)rd32(h + 24);
    bool shared = v1 ? d[36] == 1 : V > 0;
    V = V < 0 ? -V : V;
    if (dim <= 0 || heads <= 0 || fmod(dim, heads) != 0) return 0;
    double hs = dim / heads, kv = kvh * hs;
    double floats = V * dim + 2 * L * dim + 2 * L * dim * dim + 2 * L * kv * dim + 3 * L * hid * dim + dim +
                    (v1 ? 0 : 2 * seq * floor(hs / 2)) + (shared ? 0 : V * dim);
    double bytes = (double)hdr + 4 * floats;
    return bytes > 0 && bytes <= (double)(256 << 20) ? (size_t)bytes : 0;
}

/* One header field of a checkpoint -> a value likely to matter. */
static uint32_t l2c_value(uint32_t old, uint64_t r)
{
    switch (r % 8) {
    case 0: return (uint32_t)(r >> 8) % 17;                    /* small, 0 included */
    case 1: return old + 1;
    case 2: return old - 1;
    case 3: return old * 2;
    case 4: return old / 2;
    case 5: return 0u - old;                                   /* flips shared/unshared for vocab */
    case 6: return (uint32_t)((r >> 8) % 2 ? 0x7fffffff : 0x80000000u);
    default: return 1u << ((r >> 8) % 31);
    }
}

static uint64_t l2c_next(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

/* A whole new small header (a model of a few KB at most): fast to parse,
 * and every field near the small boundaries at once. */
static void l2c_small(uint8_t *h, uint64_t r)
{
    uint32_t heads = 1 + (uint32_t)(r % 4), kv = 1 + (uint32_t)(r >> 2) % 4;
    uint32_t f[7] = {heads * (1 + (uint32_t)(r >> 4) % 8), 1 + (uint32_t)(r >> 8) % 32, (uint32_t)(r >> 13) % 3,
                     heads, kv, 1 + (uint32_t)(r >> 15) % 64, 1 + (uint32_t)(r >> 21) % 16};
    if ((r >> 25) % 2) f[5] = 0u - f[5];                        /* unshared classifier (legacy) */
    for (int i = 0; i < 7; i++) wr32(h + 4 * i, f[i]);
}

/* Mutate d[0..n): 1 time in 4 a whole small header, else 1-3 header
 * fields; then resize to the implied length (zero-filling what grows) when
 * it fits in cap. Returns the new size. */
static size_t fuzz_structured_mutate(uint8_t *d, size_t n, size_t cap, uint64_t seed)
{
    uint64_t s = seed | 1;
    bool v1 = n >= 4 && rd32(d) == 0x616b3432u;
    size_t hdr = v1 ? 256 : 28;
    if (n < hdr) return n;
    if (l2c_next(&s) % 4 == 0) l2c_small(d + (v1 ? 8 : 0), l2c_next(&s));
    else for (int k = 0, nk = 1 + (int)(l2c_next(&s) % 3); k < nk; k++) {
        uint64_t r = l2c_next(&s);
        int field = (int)(r % (v1 ? 9 : 7));
        if (field == 7) wr32(d + 4, l2c_value(rd32(d + 4), r >> 4));      /* version */
        else if (field == 8) d[36] = (uint8_t)(r >> 4) % 3;                /* shared_classifier */
        else wr32(d + (v1 ? 8 : 0) + 4 * field, l2c_value(rd32(d + (v1 ? 8 : 0) + 4 * field), r >> 4));
    }
    size_t want = l2c_size(d, n);
    if (!want || want > cap || l2c_next(&s) % 16 == 0) return n;
    if (want > n) memset(d + n, 0, want - n);
    return want;
}
#define FUZZ_STRUCTURED_MUTATE 1

#ifdef LB_LIBFUZZER
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
/* Half the time libFuzzer's own mutation of the header bytes (its dictionary
 * and comparison tracing find the magic and version), then the resize. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    if (seed % 2) {
        size_t h = size < 256 ? size : 256, m = LLVMFuzzerMutate(data, h, h);
        if (m < h) memmove(data + m, data + h, size - h), size -= h - m;
        return fuzz_structured_mutate(data, size, max_size, (uint64_t)seed << 1);
    }
    return fuzz_structured_mutate(data, size, max_size, seed);
}
#endif

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
