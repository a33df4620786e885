/* lowbit.h: the one public header of liblowbit.
 *
 * Conventions (see docs/api.md):
 *  - every call that can fail returns lb_status (0 = LB_OK) and fills
 *    out-parameters; lb_errmsg() then holds a message a person can act on
 *    (file name, offset, what was expected). The message is per thread.
 *  - the library never prints and never exits; logging goes through
 *    lb_set_log().
 *  - constructors are _load/_create, destructors _free accept NULL.
 *  - enum values and on-disk ids are append-only.
 */
#ifndef LOWBIT_H
#define LOWBIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LB_VERSION_STRING "0.1.0"

/* ===================================================================== core */

typedef enum lb_status {
    LB_OK = 0,
    LB_ERR_ARG = 1,         /* invalid argument or option */
    LB_ERR_IO = 2,          /* a file could not be opened, read or written */
    LB_ERR_FORMAT = 3,      /* a file's contents are malformed or truncated */
    LB_ERR_NOMEM = 4,       /* allocation failed */
    LB_ERR_UNSUPPORTED = 5, /* valid but not supported (architecture, dtype) */
    LB_ERR_NOTFOUND = 6,    /* unknown name (format, method, tensor) */
    LB_ERR_CORRUPT = 7,     /* checksum mismatch or inconsistent data */
} lb_status;

const char *lb_status_str(lb_status s);
/* The message of the last failing call on this thread ("" when none). */
const char *lb_errmsg(void);
const char *lb_version(void);

typedef enum lb_log_level { LB_LOG_DEBUG, LB_LOG_INFO, LB_LOG_WARN } lb_log_level;
typedef void (*lb_log_fn)(lb_log_level level, const char *msg, void *user);
/* Install a log callback (NULL silences the library, the default). */
void lb_set_log(lb_log_fn fn, void *user);

/* Progress callback used by long operations: done of total units. */
typedef void (*lb_progress_fn)(int64_t done, int64_t total, const char *what, void *user);

/* Instruction-set paths. Chosen once from cpuid; LOWBIT_ISA=ref|avx2|avx512
 * in the environment forces one (a path the CPU lacks falls back to the best
 * one it has). Results never depend on this choice. */
typedef enum lb_isa { LB_ISA_REF = 0, LB_ISA_AVX2 = 1, LB_ISA_AVX512 = 2 } lb_isa;
lb_isa lb_isa_active(void);
lb_isa lb_isa_best(void);           /* best the CPU supports */
const char *lb_isa_name(lb_isa isa);
/* Force a path for this process (tests, benchmarks). Returns the path in use. */
lb_isa lb_isa_set(lb_isa isa);

/* Element types of tensors held in memory and in files. */
typedef enum lb_dtype {
    LB_DTYPE_F32 = 0, LB_DTYPE_F16 = 1, LB_DTYPE_BF16 = 2, LB_DTYPE_U8 = 3,
    LB_DTYPE_I8 = 4, LB_DTYPE_I32 = 5, LB_DTYPE_I64 = 6, LB_DTYPE_U32 = 7,
    LB_DTYPE_F64 = 8, LB_DTYPE_I16 = 9, LB_DTYPE_U16 = 10, LB_DTYPE_U64 = 11,
} lb_dtype;
size_t lb_dtype_size(lb_dtype t);
const char *lb_dtype_name(lb_dtype t);   /* safetensors spelling: "F32", "BF16" ... */

/* Scalar codecs: round-to-nearest-even; NaN stays NaN, overflow gives Inf. */
uint16_t lb_f32_to_bf16(float x);
float lb_bf16_to_f32(uint16_t h);
uint16_t lb_f32_to_f16(float x);
float lb_f16_to_f32(uint16_t h);
void lb_f32_to_bf16_row(const float *x, uint16_t *y, int64_t n);
void lb_bf16_to_f32_row(const uint16_t *x, float *y, int64_t n);
void lb_f32_to_f16_row(const float *x, uint16_t *y, int64_t n);
void lb_f16_to_f32_row(const uint16_t *x, float *y, int64_t n);

/* Thread pool: one per process is enough; work is split by output rows in a
 * fixed order, so results never depend on the thread count. */
typedef struct lb_pool lb_pool;
typedef void (*lb_task_fn)(void *ctx, int64_t begin, int64_t end, int thread);
/* n_threads <= 0 picks the number of online CPUs. */
lb_status lb_pool_create(int n_threads, lb_pool **out);
void lb_pool_free(lb_pool *p);
int lb_pool_threads(const lb_pool *p);
/* Run fn over [0, n) in contiguous chunks of at least `grain` items; blocks
 * until done. A NULL pool runs everything on the calling thread. */
void lb_pool_for(lb_pool *p, int64_t n, int64_t grain, lb_task_fn fn, void *ctx);

/* Deterministic RNG (xoshiro256**, seeded through splitmix64). */
typedef struct lb_rng { uint64_t s[4]; } lb_rng;
void lb_rng_seed(lb_rng *r, uint64_t seed);
uint64_t lb_rng_u64(lb_rng *r);
double lb_rng_uniform(lb_rng *r);            /* [0, 1) */
double lb_rng_normal(lb_rng *r);             /* standard normal */

/* Monotonic wall clock in seconds. */
double lb_time_now(void);

/* ================================================================== formats */
/* (src/formats: element codecs and block formats; see docs/formats.md) */

/* =============================================================== transforms */
/* (src/transforms: Hadamard and other orthogonal transforms) */

/* ==================================================================== model */
/* (src/model: loaders, tokenizers, forward pass) */

typedef struct lb_model lb_model;

/* Summary of a loaded model. */
typedef struct lb_model_info {
    char arch[32];            /* "llama", "mistral", "qwen2", "qwen3" */
    char source[32];          /* "llama2c", "llama2c-v1", "safetensors", ... */
    int64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size, max_seq;
    double rope_theta, norm_eps;
    int tied_embeddings;
    int64_t n_params;
    size_t weight_bytes;      /* bytes of weight data as stored */
} lb_model_info;

/* Load a model: a llama2.c checkpoint (.bin, legacy or version 1) or a
 * Hugging Face folder (config.json + model.safetensors or sharded
 * model-*.safetensors with model.safetensors.index.json). Weights are mmap'd. */
lb_status lb_model_load(const char *path, lb_model **out);
void lb_model_free(lb_model *m);
void lb_model_get_info(const lb_model *m, lb_model_info *info);

typedef struct lb_tokenizer lb_tokenizer;
/* Load a tokenizer: llama2.c tokenizer.bin, Hugging Face tokenizer.json, or
 * a model folder holding tokenizer.json. */
lb_status lb_tokenizer_load(const char *path, lb_tokenizer **out);
void lb_tokenizer_free(lb_tokenizer *t);
int64_t lb_tokenizer_vocab_size(const lb_tokenizer *t);
int32_t lb_tokenizer_bos(const lb_tokenizer *t);   /* -1 when none */
int32_t lb_tokenizer_eos(const lb_tokenizer *t);   /* -1 when none */
/* Encode UTF-8 text (len bytes); *ids is malloc'd (free with free()). */
lb_status lb_tokenizer_encode(const lb_tokenizer *t, const char *text, size_t len, int add_bos,
                              int32_t **ids, int64_t *n_ids);
/* Decode a whole sequence; *text is malloc'd and NUL-terminated. */
lb_status lb_tokenizer_decode(const lb_tokenizer *t, const int32_t *ids, int64_t n_ids, char **text,
                              size_t *len);
/* The bytes token `id` contributes after token `prev` (streaming output):
 * points *piece at tokenizer-owned or buf-held bytes, valid until the next call. */
lb_status lb_tokenizer_piece(const lb_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap,
                             const char **piece, size_t *len);
/* Find the tokenizer that goes with a model path and write its path to buf:
 * a folder's tokenizer.json (else tokenizer.bin, else the first tok*.bin);
 * beside a llama2.c model file with vocabulary V: tok{V}.bin, tokenizer.bin,
 * tokenizer.json, then the first tok*.bin. A .json path is returned as is.
 * LB_ERR_NOTFOUND names the places searched. */
lb_status lb_tokenizer_find(const char *model_path, char *buf, size_t cap);

/* ---- forward pass (src/model/forward.c; docs/engine.md) */

/* A session runs the model on a growing token sequence: it owns the thread
 * pool, the activation buffers and the KV cache, all sized at creation (no
 * allocation per token). Logits are bit-identical whatever the thread count,
 * the ISA path and how the sequence is cut into lb_forward calls. */
typedef struct lb_session lb_session;
typedef struct lb_session_opts {
    int n_threads;      /* <= 0: the number of online CPUs */
    int64_t max_ctx;    /* KV cache length in positions; <= 0: the model's max_seq */
    int64_t max_batch;  /* tokens per prefill step; <= 0: 64 */
} lb_session_opts;
/* The model must outlive the session. */
lb_status lb_session_create(const lb_model *m, const lb_session_opts *opts, lb_session **out);
void lb_session_free(lb_session *s);
void lb_session_reset(lb_session *s);          /* back to position 0 */
int64_t lb_session_pos(const lb_session *s);   /* tokens processed so far */
int64_t lb_session_max_ctx(const lb_session *s);
/* Process n tokens at the current position (prefill when n > 1, decode when
 * n == 1). lb_forward writes the last token's logits [vocab] (logits may be
 * NULL); lb_forward_all writes every token's logits [n, vocab]. */
lb_status lb_forward(lb_session *s, const int32_t *tokens, int64_t n, float *logits);
lb_status lb_forward_all(lb_session *s, const int32_t *tokens, int64_t n, float *logits);

/* ---- sampling (src/model/sample.c) */
typedef struct lb_sampler lb_sampler;
typedef struct lb_sampler_opts {
    float temperature;  /* 0: argmax (lowest id on ties) */
    float top_p;        /* nucleus in (0, 1]; 1 (or >= 1) disables */
    uint64_t seed;
} lb_sampler_opts;
lb_status lb_sampler_create(int64_t vocab, const lb_sampler_opts *opts, lb_sampler **out);
void lb_sampler_free(lb_sampler *s);
/* Pick the next token from logits [vocab] (the array is overwritten). */
int32_t lb_sample(lb_sampler *s, float *logits);

/* ===================================================================== eval */
/* (src/eval: perplexity, KL divergence, reports; see docs/eval.md) */

typedef enum lb_scoring {
    LB_SCORE_HALF = 0,   /* llama.cpp: score positions ctx/2 .. ctx-2 of each chunk */
    LB_SCORE_FULL = 1,   /* score every position 0 .. ctx-2 */
} lb_scoring;

typedef struct lb_ppl_opts {
    int64_t ctx;            /* tokens per chunk (the first one replaced by bos) */
    int64_t max_chunks;     /* <= 0: every whole chunk of the text */
    lb_scoring scoring;
    int n_threads;          /* <= 0: online CPUs */
    int32_t bos;            /* replaces each chunk's first token; -1 keeps it */
    uint64_t text_hash;     /* recorded in a saved base file (lb_eval_text_hash) */
    const char *save_path;  /* when set, the log-probabilities are saved there (atomically) */
    const char *model_name; /* recorded in a saved base file */
    lb_progress_fn progress;
    void *progress_user;
} lb_ppl_opts;

typedef struct lb_ppl_result {
    int64_t n_chunks, n_scored;   /* chunks run, tokens scored */
    double nll;                   /* mean negative log-likelihood (nats) */
    double ppl, ppl_err;          /* exp(nll) and its standard error (llama.cpp's formula) */
    double seconds, tokens_per_s; /* forward-pass tokens (all ctx of each chunk) per second */
} lb_ppl_result;

/* Perplexity of tokens[0..n) cut into non-overlapping chunks of opts->ctx. */
lb_status lb_eval_ppl(const lb_model *m, const int32_t *tokens, int64_t n, const lb_ppl_opts *opts,
                      lb_ppl_result *res);

typedef struct lb_kld_opts {
    int n_threads;
    uint64_t text_hash;     /* nonzero: must equal the base file's text hash */
    lb_progress_fn progress;
    void *progress_user;
} lb_kld_opts;

typedef struct lb_kld_result {
    int64_t n_chunks, n;          /* tokens compared */
    double kld, kld_err;          /* mean KL(base || model) in nats and its standard error */
    double kld_p50, kld_p90, kld_p99, kld_p999, kld_max;
    double top1, top1_err;        /* fraction of positions with the same argmax */
    double ppl, ppl_base;         /* this model's and the base's perplexity on the same tokens */
    double ln_ppl_ratio, ln_ppl_ratio_err;   /* mean(nll - nll_base) and its standard error */
    double ppl_ratio, ppl_ratio_err;         /* exp(ln_ppl_ratio) */
    double seconds, tokens_per_s;
} lb_kld_result;

/* Rerun the base file's tokens (saved by lb_eval_ppl) and compare with its
 * log-probabilities. */
lb_status lb_eval_kld(const lb_model *m, const char *base_path, const lb_kld_opts *opts, lb_kld_result *res);

/* 64-bit FNV-1a of the text bytes (the text hash recorded in base files). */
uint64_t lb_eval_text_hash(const void *text, size_t len);

/* ================================================================= lossless */
/* (src/lossless: entropy-coded BF16) */

/* ==================================================================== quant */
/* (src/quant: weight quantizers) */

#ifdef __cplusplus
}
#endif
#endif /* LOWBIT_H */
