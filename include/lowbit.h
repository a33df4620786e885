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
 *
 * NULL arguments: a call returning lb_status that is given NULL for a
 * required pointer returns LB_ERR_ARG, and lb_errmsg() starts with the
 * function's name ("lb_forward: session is NULL"). Out-parameters that are
 * not NULL are cleared (NULL, 0) first. A pointer documented "may be NULL" is
 * optional; a buffer paired with a count of 0 may be NULL. The calls that
 * return a value or nothing never crash on NULL either: names and
 * descriptions give "", counts and sizes 0, lookups NULL, token ids -1,
 * lb_format_dot NaN, and void calls do nothing (each noted below).
 *
 * Threads: an lb_model is read-only once lb_model_load (or
 * lb_model_quantize) has returned, so any number of threads may use one
 * model at once through the calls that take a const lb_model * (sessions,
 * eval, quantize, save); it must outlive them all. An lb_session, its
 * lb_pool and an lb_sampler belong to one thread at a time (they hold
 * buffers, a KV cache, an RNG); two sessions on one model from two threads
 * give logits bit-identical to one thread. An lb_tokenizer is read-only
 * after loading: encode, decode and piece may run from several threads on
 * one tokenizer. lb_pool_for runs one job at a time: call it from one thread
 * at a time, never from inside a task of the same pool. Formats, quantizers
 * and other static tables are immutable (built once, thread-safely).
 * lb_errmsg() is per thread. lb_set_log and lb_isa_set are process-wide:
 * set them before starting threads that call lowbit (lb_isa_set is atomic
 * and results never depend on the path, but the log setting is not
 * synchronized); the log callback may be called from several threads at
 * once. tests/test_threads.c checks these rules under `make tsan`.
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
/* Output files and folders are written under a temporary name beside the
 * target, "DIR/.NAME.lowbit-tmp.PID", and renamed into place when complete.
 * lb_temp_path writes that name for `path` and process `pid` into buf
 * (LB_ERR_ARG when cap is too small), so a program can remove it when
 * interrupted. lb_temp_clean removes the stale temporaries of `path`, those
 * whose PID is no longer a running process (files, or folders and the files
 * in them), and stores how many it removed in *n_removed (may be NULL). */
lb_status lb_temp_path(const char *path, long pid, char *buf, size_t cap);
lb_status lb_temp_clean(const char *path, int *n_removed);

/* Install a log callback (NULL silences the library, the default).
 * Process-wide and not synchronized: call it before other threads use
 * lowbit; the callback itself may run on several threads at once. */
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
/* Force a path for this process (tests, benchmarks); atomic, affects the
 * calls that start afterwards on every thread. Returns the path in use. */
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
/* Row versions: y[i] = codec(x[i]) for i < n; nothing when x or y is NULL. */
void lb_f32_to_bf16_row(const float *x, uint16_t *y, int64_t n);
void lb_bf16_to_f32_row(const uint16_t *x, float *y, int64_t n);
void lb_f32_to_f16_row(const float *x, uint16_t *y, int64_t n);
void lb_f16_to_f32_row(const uint16_t *x, float *y, int64_t n);

/* Thread pool: one per process is enough; work is split by output rows in a
 * fixed order, so results never depend on the thread count. One job at a
 * time: lb_pool_for from one thread at a time, not from inside its tasks. */
typedef struct lb_pool lb_pool;
typedef void (*lb_task_fn)(void *ctx, int64_t begin, int64_t end, int thread);
/* n_threads <= 0 picks the number of online CPUs. */
lb_status lb_pool_create(int n_threads, lb_pool **out);
void lb_pool_free(lb_pool *p);
int lb_pool_threads(const lb_pool *p);   /* 1 for a NULL pool */
/* Run fn over [0, n) in contiguous chunks of at least `grain` items; blocks
 * until done. A NULL pool runs everything on the calling thread; a NULL fn
 * does nothing. */
void lb_pool_for(lb_pool *p, int64_t n, int64_t grain, lb_task_fn fn, void *ctx);

/* Deterministic RNG (xoshiro256**, seeded through splitmix64); a plain
 * value owned by its caller. A NULL r: seed does nothing, the draws give 0. */
typedef struct lb_rng { uint64_t s[4]; } lb_rng;
void lb_rng_seed(lb_rng *r, uint64_t seed);
uint64_t lb_rng_u64(lb_rng *r);
double lb_rng_uniform(lb_rng *r);            /* [0, 1) */
double lb_rng_normal(lb_rng *r);             /* standard normal */

/* Monotonic wall clock in seconds. */
double lb_time_now(void);

/* ================================================================== formats */
/* (src/formats: element codecs and block formats; see docs/formats.md) */

/* Element codecs: one value <-> one code (the low lb_elem_bits() bits of a
 * byte). Encoding rounds to nearest, ties to even; finite overflow saturates
 * to the largest finite value (OCP MX conversion rule); Inf saturates too,
 * except E5M2 which keeps +-Inf; NaN gives the NaN code where one exists
 * (E4M3 S.1111.111, E5M2, E8M0 0xFF, UE4M3 0x7F), else 0. Integers are
 * two's complement (signed) or plain binary (unsigned); E8M0 and UE4M3
 * encode x <= 0 as their smallest code. See docs/formats.md. */
typedef enum lb_elem {
    LB_ELEM_E4M3 = 0, LB_ELEM_E5M2 = 1, LB_ELEM_E2M3 = 2, LB_ELEM_E3M2 = 3, LB_ELEM_E2M1 = 4,
    LB_ELEM_E8M0 = 5, LB_ELEM_UE4M3 = 6,
    LB_ELEM_INT2 = 7, LB_ELEM_INT3 = 8, LB_ELEM_INT4 = 9, LB_ELEM_INT8 = 10,
    LB_ELEM_UINT2 = 11, LB_ELEM_UINT3 = 12, LB_ELEM_UINT4 = 13, LB_ELEM_UINT8 = 14,
    LB_ELEM_COUNT = 15
} lb_elem;
const char *lb_elem_name(lb_elem e);          /* "e4m3", "e2m1", "int4", ... */
int lb_elem_bits(lb_elem e);                  /* code width: 4, 6, 7 (ue4m3), 8, 2, 3 */
uint8_t lb_elem_encode(lb_elem e, float x);
float lb_elem_decode(lb_elem e, uint8_t code); /* bits above lb_elem_bits are ignored */
float lb_elem_max(lb_elem e);                 /* largest finite value */

/* Block formats. Each is one row of one registry table (src/formats/
 * registry.c). A tensor of rows x cols floats is packed row by row, each row
 * into lb_format_row_bytes(f, cols) bytes, so row r starts at r * row_bytes.
 * Block formats need cols % lb_format_block(f) == 0; per-row formats
 * (block 0: int*_ch, ternary) take any cols. Layouts: docs/formats.md. */
typedef struct lb_format lb_format;
typedef enum lb_scale_rule {
    LB_SCALE_FLOOR = 0, /* MX: 2^(floor(log2 amax) - emax_elem) (OCP; may clip); others: amax-based, nearest */
    LB_SCALE_CEIL = 1,  /* MX: smallest power of two that never clips; NV: block scale rounded up */
    LB_SCALE_MSE = 2,   /* per-block search over a few candidate scales, least squared error
                           (symmetric INT: the floor and the full candidates) */
    LB_SCALE_FULL = 3,  /* symmetric INT only: the block's signed extreme x_m maps to code -2^(k-1),
                           d = x_m / -2^(k-1) (may be negative); other formats: LB_ERR_ARG */
} lb_scale_rule;
typedef struct lb_quant_opts {
    lb_scale_rule scale_rule;
} lb_quant_opts;

int lb_format_count(void);
const lb_format *lb_format_at(int i);                 /* NULL when out of range */
const lb_format *lb_format_find(const char *name);    /* NULL when unknown */
/* The getters below give "" (names) or 0 (numbers) for a NULL f. */
const char *lb_format_name(const lb_format *f);
const char *lb_format_describe(const lb_format *f);   /* one line for people */
int64_t lb_format_block(const lb_format *f);          /* elements per block; 0 = one scale per row */
double lb_format_bits_per_weight(const lb_format *f); /* storage bits per element (per-row: without the row scale) */
size_t lb_format_row_bytes(const lb_format *f, int64_t cols);
int lb_format_uses_tensor_scale(const lb_format *f);  /* 1 for nvfp4/nvint4 */
/* Quantize x (rows x cols, row-major) into packed (rows * row_bytes bytes).
 * opts may be NULL (floor rule). *tensor_scale receives the FP32 per-tensor
 * encode scale of NV formats, 1 for the others (tensor_scale may be NULL for
 * those, not for NV formats: LB_ERR_ARG). A block holding Inf or NaN gets a NaN scale and decodes to NaN. */
lb_status lb_format_quantize(const lb_format *f, const lb_quant_opts *opts, const float *x, int64_t rows,
                             int64_t cols, void *packed, float *tensor_scale);
lb_status lb_format_dequantize(const lb_format *f, const void *packed, float tensor_scale, int64_t rows,
                               int64_t cols, float *y);
/* sum_i dequant(row)[i] * x[i] over one packed row; the summation order is
 * fixed (16 lane partial sums, then a fixed tree), so every ISA path returns
 * the same float. NaN when f, packed_row or x is NULL. */
float lb_format_dot(const lb_format *f, const void *packed_row, float tensor_scale, const float *x, int64_t cols);

/* Error of quantize + dequantize over x: mean squared error, QSNR in dB
 * (10 log10(sum x^2 / sum err^2); +inf when exact) and max |error|. */
typedef struct lb_quant_error { double mse, qsnr_db, max_abs; } lb_quant_error;
/* The same three measures between an original x and its reconstruction y
 * (all NaN when x or y is NULL and n > 0; nothing when err is NULL). */
void lb_quant_error_between(const float *x, const float *y, int64_t n, lb_quant_error *err);
lb_status lb_format_error(const lb_format *f, const lb_quant_opts *opts, const float *x, int64_t rows,
                          int64_t cols, lb_quant_error *err);

/* Packed tensor files (docs/formats.md "file layout"): a 64-byte header
 * (magic "LBFQ", version, rows, cols, tensor scale, format name) then the
 * packed rows. in_path holds raw little-endian float32; cols <= 0 means one
 * row holding the whole file. Outputs appear only when complete. */
lb_status lb_format_quantize_file(const lb_format *f, const lb_quant_opts *opts, const char *in_path,
                                  int64_t cols, const char *out_path);
lb_status lb_format_dequantize_file(const lb_format *f, const char *in_path, const char *out_path);

/* =============================================================== transforms */
/* (src/transforms: Hadamard and other orthogonal transforms; docs/transforms.md)
 *
 * The orthonormal Hadamard transform of order n = m * 2^k is
 *   T_n = (H_m (x) H_{2^k}) / sqrt(n),
 * H_{2^k} the Sylvester matrix (H[i][j] = (-1)^popcount(i & j)), m = 1 or
 * the order of a Paley matrix (lb_hadamard_small_orders: 12, 20, 28, 36, 44,
 * 60, 68, 76, 84, 108, 124, 132, 140, 148). T T^T = I; T = T^T only when m = 1. Such an
 * n (2 <= n <= LB_HADAMARD_MAX_BLOCK) is a "supported order". Larger or other
 * even dimensions use a block-diagonal T (lb_hadamard_plan_for). Results are
 * bit-identical on every ISA path. */
#define LB_HADAMARD_MAX_BLOCK 32768

typedef struct lb_hadamard_plan {
    int64_t n;         /* the dimension asked about */
    int64_t block;     /* order of each diagonal block; divides n */
    int64_t m;         /* non-power-of-two factor of block: 1 or a small order */
    int64_t pow2;      /* power-of-two factor: block = m * pow2 */
    int64_t n_blocks;  /* n / block */
    int exact;         /* 1 when block == n: one full-size Hadamard */
} lb_hadamard_plan;

/* The largest supported order dividing n and <= max_block (<= 0: no limit
 * beyond LB_HADAMARD_MAX_BLOCK). LB_ERR_ARG for odd n or n < 2. */
lb_status lb_hadamard_plan_for(int64_t n, int64_t max_block, lb_hadamard_plan *out);
/* 1 when n is a supported order (one full-size transform), else 0. */
int lb_hadamard_supported(int64_t n);
/* The small (Paley) orders m, ascending: fills up to cap (nothing when out
 * is NULL), returns how many there are. */
int lb_hadamard_small_orders(int64_t *out, int cap);

/* x (n) <- T_n x in place; n must be a supported order. */
lb_status lb_hadamard(float *x, int64_t n);
/* x (n) <- T_n^T x: undoes lb_hadamard. */
lb_status lb_hadamard_inverse(float *x, int64_t n);
/* n random signs (+1 / -1) from lb_rng seeded with seed: the diagonal D of a
 * randomized Hadamard R = T D. The caller keeps the seed to rebuild them. */
lb_status lb_hadamard_signs(uint64_t seed, int64_t n, int8_t *signs);

/* Row-major a (rows, cols): each row r <- R r with R = blockdiag(T_block) D,
 * D = diag(signs) (signs: cols entries, < 0 flips; NULL = identity), i.e.
 * a <- a R^T. inverse != 0 applies R^T (= D blockdiag(T_block^T)), undoing
 * it. block must divide cols and be a supported order; 0 picks the plan's
 * block for cols. For W (out, in) and x (in): rows(W, out, in, b, D, 0) and
 * rows(x, 1, in, b, D, 0) give (W R^T)(R x) = W x. */
lb_status lb_hadamard_rows(float *a, int64_t rows, int64_t cols, int64_t block, const int8_t *signs, int inverse);
/* The same along the column dimension (mixing rows): a <- R a with
 * R = blockdiag(T_block) D over the rows (signs: rows entries); block must
 * divide rows. */
lb_status lb_hadamard_cols(float *a, int64_t rows, int64_t cols, int64_t block, const int8_t *signs, int inverse);

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
    int64_t n_nonfinite;      /* NaN/Inf values in the weight matrices (load warns; eval then refuses
                                 non-finite logits). NaN/Inf in norms, biases or block scales fails the load. */
    char nonfinite_tensor[96];/* the first tensor holding one, "" when none */
} lb_model_info;

/* Load a model: a llama2.c checkpoint (.bin, legacy or version 1) or a
 * Hugging Face folder (config.json + model.safetensors or sharded
 * model-*.safetensors with model.safetensors.index.json). Weights are mmap'd. */
lb_status lb_model_load(const char *path, lb_model **out);
void lb_model_free(lb_model *m);
void lb_model_get_info(const lb_model *m, lb_model_info *info);   /* all zero for a NULL m */

/* Synthetic models: a Hugging Face folder (config.json + model.safetensors)
 * with seeded random weights (Gaussian, std `std`, like trained weights;
 * norm weights 1), for benchmarks at real sizes without downloads. */
typedef struct lb_synth_opts {
    const char *arch;         /* "llama" (default), "mistral", "qwen2", "qwen3" */
    int64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads;
    int64_t head_dim;         /* 0: dim / n_heads */
    int64_t vocab_size, max_seq;
    double rope_theta, norm_eps;
    double rope_factor;       /* llama3 rope scaling; 0 = off */
    double rope_low_freq_factor, rope_high_freq_factor;
    int64_t rope_orig_max_pos;
    int tied_embeddings;
    int32_t bos_id, eos_id;
    lb_dtype dtype;           /* LB_DTYPE_F32, F16 or BF16 */
    uint64_t seed;
    double std;               /* weight standard deviation */
} lb_synth_opts;

/* Defaults (llama, stories110m sizes, f32, seed 1, std 0.02), or a named
 * preset: "stories110m", "llama-3.2-1b". */
lb_status lb_synth_preset(const char *name, lb_synth_opts *opts);
/* Write the folder `dir` (created if missing; files replaced atomically).
 * Streams: memory use is one small chunk, not the model. A size above the
 * free space of dir's filesystem or above 4 TiB is refused (LB_ERR_ARG,
 * naming the options to lower) before anything is created. */
lb_status lb_synth_write(const char *dir, const lb_synth_opts *opts, lb_progress_fn progress, void *user);

/* What a model file or folder holds: its format, config, every tensor
 * (name, dtype, shape, bytes, file offset) and the files' metadata, as
 * readable text or, when json != 0, one JSON object. Accepts llama2.c .bin
 * files, any .safetensors file, and Hugging Face folders (or their
 * config.json). *out is malloc'd (free with free()). */
lb_status lb_inspect(const char *path, int json, char **out);

typedef struct lb_tokenizer lb_tokenizer;
/* Load a tokenizer: llama2.c tokenizer.bin, Hugging Face tokenizer.json, or
 * a model folder holding tokenizer.json. */
lb_status lb_tokenizer_load(const char *path, lb_tokenizer **out);
void lb_tokenizer_free(lb_tokenizer *t);
int64_t lb_tokenizer_vocab_size(const lb_tokenizer *t);   /* 0 for a NULL t */
int32_t lb_tokenizer_bos(const lb_tokenizer *t);   /* -1 when none (or t is NULL) */
int32_t lb_tokenizer_eos(const lb_tokenizer *t);   /* -1 when none (or t is NULL) */
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
    const char *kv;     /* KV-cache SPEC (docs/kv.md), e.g. "kivi:bits=4"; NULL or "": "f32" */
} lb_session_opts;
/* The model must outlive the session. */
lb_status lb_session_create(const lb_model *m, const lb_session_opts *opts, lb_session **out);
void lb_session_free(lb_session *s);
void lb_session_reset(lb_session *s);          /* back to position 0 */
int64_t lb_session_pos(const lb_session *s);   /* tokens processed so far (0 for NULL) */
int64_t lb_session_max_ctx(const lb_session *s);   /* 0 for NULL */
/* Process n tokens at the current position (prefill when n > 1, decode when
 * n == 1). lb_forward writes the last token's logits [vocab] (logits may be
 * NULL); lb_forward_all writes every token's logits [n, vocab]. */
lb_status lb_forward(lb_session *s, const int32_t *tokens, int64_t n, float *logits);
lb_status lb_forward_all(lb_session *s, const int32_t *tokens, int64_t n, float *logits);

/* ---- KV cache (src/kv; docs/kv.md) */
/* What the session's cache holds now: tokens summed over layers and kv
 * heads, and bytes of pages (codes, scales, residual window) and metadata,
 * from the cache's own accounting. bytes_per_token = bytes / positions. */
typedef struct lb_kv_stats {
    int64_t positions;     /* tokens processed (lb_session_pos) */
    int64_t tokens;        /* (layer, kv head, token) entries held */
    int64_t hot_tokens;    /* of which in a full-precision residual window */
    size_t bytes;
    double bytes_per_token;
    const char *spec;      /* the SPEC in full form, every parameter written out (owned by the session) */
} lb_kv_stats;
lb_status lb_session_kv_stats(const lb_session *s, lb_kv_stats *out);
/* Run the SPEC's eviction stages now (after a prompt; nothing for a SPEC
 * without eviction). */
lb_status lb_session_kv_compress(lb_session *s);
/* Check a SPEC without a model; full (may be NULL) receives its full form. */
lb_status lb_kv_spec_check(const char *spec, const char *opt, char *full, size_t cap);
/* The policy registry: name, kind ("store" or "evict"), one-line summary,
 * and its parameters (key, help, default, range or choices). */
typedef struct lb_kv_param_info {
    const char *key, *help, *choices, *def_name;   /* choices NULL: a number in [lo, hi] (hi excluded when hi_open) */
    double def, lo, hi;
    int integer, hi_open;
} lb_kv_param_info;
int lb_kv_policy_count(void);
const char *lb_kv_policy_name(int i);      /* NULL when out of range */
const char *lb_kv_policy_kind(int i);
const char *lb_kv_policy_summary(int i);
int lb_kv_policy_param_count(int i);
lb_status lb_kv_policy_param(int i, int j, lb_kv_param_info *out);

/* lb_eval_kv (src/eval/kv_eval.c; docs/kv.md): for each chunk of ctx + cont
 * + 1 tokens (first token replaced by bos when bos >= 0), prefill ctx tokens,
 * compress (the SPEC's eviction stages), then run the next cont tokens
 * teacher-forced; their cont positions are compared with the same run on
 * the uncompressed f32 cache: mean KL(f32 || spec), top-1 agreement, and the
 * continuation's perplexity. KV bytes per token are the cache's own
 * accounting after compression (over ctx positions) and at the chunk's end. */
typedef struct lb_kv_eval_opts {
    int64_t ctx, cont;         /* <= 0: 384 and 64 (fit 512-token models) */
    int64_t max_chunks;        /* <= 0: every whole chunk */
    int n_threads;
    int32_t bos;
    const char *const *specs;  /* n_specs SPECs, each evaluated on the same chunks */
    int n_specs;
    lb_progress_fn progress;
    void *progress_user;
    /* issue 11 (kvq): 1 feeds the continuation one token at a time, so
     * decode-time stages (every=N, paged:decode=1) act between the scored
     * positions; 0: one teacher-forced batch (decode stages act after it) */
    int decode;
} lb_kv_eval_opts;
#define LB_KV_EVAL_LAYERS 16   /* layers with their own attn_kept_layer entry */
typedef struct lb_kv_eval_row {
    char spec[256];            /* full form */
    int64_t n_chunks, n;       /* positions compared */
    double kld, kld_err, kld_max, top1;
    double ppl, ppl_f32;       /* the continuation's perplexity with this cache and with f32 */
    double bytes_per_token;    /* after compression, over the ctx positions */
    double bytes_per_token_end;/* after the continuation, over ctx + cont */
    double f32_bytes_per_token;/* the f32 cache over ctx positions, for the ratio */
    double tokens_held;        /* fraction of (layer, head, token) entries kept after compression */
    double k_qsnr, v_qsnr;     /* dB, 10 log10(sum x^2 / sum (x^ - x)^2) over the f32 cache's keys / values
                                  of the context stored by this SPEC's storage stage alone (+inf: exact) */
    /* issue 11 (kvq) */
    int qsnr_held;             /* 1: the storage quantizes at compression (thinkv): the QSNR is over the tokens
                                  the SPEC holds after it, each in its format, against the f32 run's */
    double attn_kept;          /* the f32 run's continuation queries: fraction of their attention to the context
                                  that falls on the tokens held after compression (mean over layers, kv heads) */
    double attn_oracle;        /* the same for the best tokens, as many per head as held (the oracle top set) */
    double attn_kept_layer[LB_KV_EVAL_LAYERS], attn_oracle_layer[LB_KV_EVAL_LAYERS]; /* per layer (< 16) */
} lb_kv_eval_row;
/* rows: n_specs entries, filled in the order of specs. */
lb_status lb_eval_kv(const lb_model *m, const int32_t *tokens, int64_t n, const lb_kv_eval_opts *o,
                     lb_kv_eval_row *rows);

/* ---- sampling (src/model/sample.c) */
typedef struct lb_sampler lb_sampler;
typedef struct lb_sampler_opts {
    float temperature;  /* 0: argmax (lowest id on ties) */
    float top_p;        /* nucleus in (0, 1]; 1 (or >= 1) disables */
    uint64_t seed;
} lb_sampler_opts;
lb_status lb_sampler_create(int64_t vocab, const lb_sampler_opts *opts, lb_sampler **out);
void lb_sampler_free(lb_sampler *s);
/* Pick the next token from logits [vocab] (the array is overwritten); -1
 * when s or logits is NULL. */
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
    const char *kv;         /* KV-cache SPEC of the sessions (docs/kv.md); NULL: f32 */
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
    const char *kv;         /* KV-cache SPEC of the session (docs/kv.md); NULL: f32 */
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
 * log-probabilities. opts may be NULL (all defaults). */
lb_status lb_eval_kld(const lb_model *m, const char *base_path, const lb_kld_opts *opts, lb_kld_result *res);

/* 64-bit FNV-1a of the text bytes (the text hash recorded in base files); a
 * NULL text hashes as empty. */
uint64_t lb_eval_text_hash(const void *text, size_t len);

/* ---- formats study (src/eval/formats_study*.c; docs/formats-study.md)
 * The QSNR = 10 log10(sum x^2 / sum (x - x')^2), x' = R^T deq(q(R x)), of
 * every registry format (floor scale rule; MX formats also with the MSE rule,
 * labelled "<name>/mse") on synthetic data sets ("gauss", "laplace", "t3":
 * Student-t nu = 3, and "c2" .. "c100": 2 outlier columns at crest factor
 * max|x| / rms = 2 .. 100) and on the linear weights of the models under
 * models_dir ("stories260K", "tinystories-656k"), with R = I or
 * blockdiag(T_B) diag(signs), B = 16, 32, 128, signs from
 * lb_hadamard_signs(LB_FORMATS_STUDY_SIGN_SEED, cols). Four published claims
 * are then judged from the numbers. `lowbit bench formats` is a thin caller. */
#define LB_FORMATS_STUDY_SIGN_SEED 42

/* y (rows x cols) = R^T deq(q(R x)) with R = blockdiag(T_block) diag(signs)
 * (signs: cols entries, NULL = identity); block 0 = no rotation. The round
 * trip the study measures. q may be NULL (floor rule). */
lb_status lb_format_roundtrip(const lb_format *f, const lb_quant_opts *q, const float *x, int64_t rows, int64_t cols,
                              int64_t block, const int8_t *signs, float *y);

typedef struct lb_formats_study lb_formats_study;
typedef struct lb_formats_study_opts {
    int64_t rows, cols;      /* each synthetic matrix; <= 0: 256 (quick: 32) x 4096 */
    uint64_t seed;           /* seeds the synthetic data (data set k: seed * 1000 + k) */
    int quick;               /* 17 formats, no /mse, crest 2, 10, 100 only, stories260K only */
    const char *models_dir;  /* holds stories260K/ and tinystories-656k/; NULL: synthetic sets only. A model
                                that is absent becomes a skipped set, with a LB_LOG_WARN "SKIP: ..." message */
    const char *command;     /* recorded in the reports; NULL: "lb_formats_study_run" */
    int n_threads;           /* <= 0: online CPUs; the numbers never depend on it */
    lb_progress_fn progress; /* before each (data set, rotation), from the calling thread; may be NULL */
    void *progress_user;
} lb_formats_study_opts;

/* Build the data sets and measure every cell (opts may be NULL: all defaults,
 * seed 0). LB_ERR_ARG for a size outside cols >= 32, rows and cols <= 2^20,
 * rows * cols <= 2^28, or one too small for the crest-100 set. Free *out
 * with lb_formats_study_free. */
lb_status lb_formats_study_run(const lb_formats_study_opts *opts, lb_formats_study **out);
void lb_formats_study_free(lb_formats_study *s);
/* The QSNR (dB; NAN when no matrix of the set fits the format and rotation
 * blocks, or the set was skipped; +INFINITY when exact) and the fraction of
 * the set's values measured, of one cell: set and format labels as above,
 * hadamard 0, 16, 32 or 128. LB_ERR_NOTFOUND for an unknown cell. Either
 * output may be NULL. */
lb_status lb_formats_study_qsnr(const lb_formats_study *s, const char *set, const char *format, int64_t hadamard,
                                double *qsnr_db, double *coverage);

typedef enum lb_report_kind { LB_REPORT_MARKDOWN = 0, LB_REPORT_JSON = 1, LB_REPORT_SVG = 2 } lb_report_kind;
/* A report as one NUL-terminated string: markdown (data sets, findings,
 * tables), JSON (every cell) or an SVG chart. *text is malloc'd (free with
 * free()); len may be NULL. */
lb_status lb_formats_study_report(const lb_formats_study *s, lb_report_kind kind, char **text, size_t *len);

/* ================================================================= lossless */
/* (src/lossless: entropy-coded BF16, DFloat11-style; see docs/lossless.md)
 * A BF16 tensor keeps its sign+mantissa bytes raw and Huffman-codes its
 * exponent bytes (code lengths <= 12). It is cut into independent streams of
 * stream_len elements, each with its exact bit length and a CRC-32C of its
 * decoded BF16 bytes, so decoding is bit-exact, runs streams in parallel and
 * can start at any stream. Typical weights pack to ~0.67 of their BF16 size. */

typedef struct lb_bf16_packed lb_bf16_packed;

#define LB_LOSSLESS_MAX_CODE_LEN 12     /* longest Huffman code allowed */
#define LB_LOSSLESS_STREAM_LEN 16384    /* default elements per stream (older files used 65536; any length reads) */

typedef struct lb_bf16_pack_opts {
    int64_t stream_len;   /* elements per stream, 1 .. 2^24 (0: 65536) */
    int max_code_len;     /* Huffman length cap, 8 .. 12 (0: 12) */
} lb_bf16_pack_opts;

typedef struct lb_bf16_packed_info {
    const char *name;     /* tensor name used in messages ("" when none) */
    int64_t n;            /* elements */
    int64_t stream_len, n_streams;
    int n_symbols;        /* distinct exponent values (1: no Huffman bits at all) */
    int longest_code;     /* longest code length in use (0 when n_symbols <= 1) */
    uint8_t code_len[256];/* code length per exponent value, 0 = absent */
    uint64_t exp_bits;    /* Huffman bits of all exponents (without padding) */
    size_t blob_size;     /* bytes of the serialized form (lb_bf16_packed_write) */
} lb_bf16_packed_info;

/* Pack x[0..n) (BF16 bit patterns; any value incl. NaN, Inf, subnormals).
 * `name` (may be NULL) is copied and used in error messages. opts may be
 * NULL; pool may be NULL (one thread). */
lb_status lb_bf16_pack(const uint16_t *x, int64_t n, const char *name, const lb_bf16_pack_opts *opts,
                       lb_pool *pool, lb_bf16_packed **out);
void lb_bf16_packed_free(lb_bf16_packed *p);
void lb_bf16_packed_get_info(const lb_bf16_packed *p, lb_bf16_packed_info *info);   /* zeros, name "", for NULL p */

/* Decode all n elements into out (n uint16), streams in parallel over pool,
 * checking every stream's bit length and CRC. Bit-exact with the input. */
lb_status lb_bf16_unpack(const lb_bf16_packed *p, uint16_t *out, lb_pool *pool);

#define LB_UNPACK_NOVERIFY 1u   /* skip the CRC (bit lengths are still checked) */
/* Decode streams [first, first + count): out receives elements
 * first*stream_len .. min((first+count)*stream_len, n). */
lb_status lb_bf16_unpack_streams(const lb_bf16_packed *p, int64_t first, int64_t count, uint16_t *out,
                                 unsigned flags, lb_pool *pool);

/* Decode elements [begin, begin + count) into out[0 .. count): only the
 * streams holding them are decoded (each from its start); a stream's CRC is
 * checked only when the range covers all of it. */
lb_status lb_bf16_unpack_range(const lb_bf16_packed *p, int64_t begin, int64_t count, uint16_t *out, unsigned flags,
                               lb_pool *pool);

/* Serialized form: one self-contained byte blob (layout in docs/lossless.md);
 * its size is 0 for a NULL p. */
size_t lb_bf16_packed_blob_size(const lb_bf16_packed *p);
/* Write the blob into buf[0..cap); cap must be >= lb_bf16_packed_blob_size. */
lb_status lb_bf16_packed_write(const lb_bf16_packed *p, void *buf, size_t cap);

#define LB_PACKED_BORROW 1u     /* keep pointers into blob instead of copying it */
/* Read and fully validate a blob (header, code table, stream table, sizes;
 * the CRCs are checked when decoding). Errors (LB_ERR_FORMAT for malformed
 * or truncated, LB_ERR_CORRUPT for checksum mismatches) name `name`. With
 * LB_PACKED_BORROW the blob must outlive *out (e.g. an mmap'd file). */
lb_status lb_bf16_packed_read(const void *blob, size_t size, const char *name, unsigned flags,
                              lb_bf16_packed **out);

/* Packed model files: safetensors containers where every F32/BF16 tensor is
 * replaced by a U8 tensor of the same name holding its blob, listed in the
 * metadata ("lowbit.format": "lossless-bf16", "lowbit.lossless": JSON with
 * each tensor's dtype and shape); other tensors are copied unchanged. See
 * docs/file-format.md, section "lossless". */
typedef struct lb_lossless_report {
    int64_t n_files;          /* safetensors files processed */
    int64_t n_tensors, n_packed, n_rounded, n_copied;  /* n_rounded: F32 tensors rounded to BF16 */
    int64_t values;           /* values in packed tensors */
    uint64_t bf16_bytes;      /* those values as BF16 */
    uint64_t packed_bytes;    /* their blobs */
    uint64_t in_bytes, out_bytes;  /* safetensors files read / written */
    int64_t n_other_files;    /* a folder's other files (config, tokenizer, ...), copied as they are */
    uint64_t other_bytes;     /* their bytes (read = written; not in in_bytes / out_bytes) */
} lb_lossless_report;

/* Pack a safetensors file into a packed one, or a model folder into a new
 * folder (each *.safetensors packed under its name, other regular files
 * copied through a 1 MiB buffer and counted in n_other_files/other_bytes).
 * F32 tensors are rounded to BF16 (round-to-nearest-even) first; BF16 is
 * kept bit for bit; F16 tensors are refused (LB_ERR_UNSUPPORTED). Writes are
 * atomic: on failure no output is left. rep may be NULL. */
lb_status lb_lossless_pack_model(const char *in, const char *out, const lb_bf16_pack_opts *opts, lb_pool *pool,
                                 lb_progress_fn progress, void *user, lb_lossless_report *rep);
/* The inverse: packed tensors come back as BF16 with their shapes, other
 * tensors and metadata unchanged; for a BF16 source the tensor bytes are
 * identical. A table that misses a blob tensor is refused (LB_ERR_FORMAT);
 * the output is re-opened and checked (every tensor, each stream's CRC over
 * the written bytes) before it is renamed into place (LB_ERR_CORRUPT). */
lb_status lb_lossless_unpack_model(const char *in, const char *out, lb_pool *pool, lb_progress_fn progress,
                                   void *user, lb_lossless_report *rep);

/* ==================================================================== quant */
/* (src/quant: weight quantizers and quantized model files; docs/quant.md,
 * docs/file-format.md)
 *
 * A quantizer (method) turns a float matrix W (rows x cols, row-major, the
 * nn.Linear layout) into a packed matrix of one block format. Every method
 * keeps the identity
 *     W ~= dequant(packed) * diag(col_scale) * R,   R = blockdiag(T_b) diag(signs)
 * (col_scale: SINQ, else absent = 1; R: the Hadamard rotation of the
 * hadamard+* methods, else absent = I), so y = W x is computed online as
 * dequant(packed) (col_scale .* (R x)). Methods are rows of one registry
 * table (src/quant/registry.c); names are stable (written into files). */
typedef struct lb_quantizer lb_quantizer;
int lb_quantizer_count(void);
const lb_quantizer *lb_quantizer_at(int i);             /* NULL when out of range */
const lb_quantizer *lb_quantizer_find(const char *name); /* NULL when unknown */
const char *lb_quantizer_name(const lb_quantizer *q);     /* "" for NULL, as describe */
const char *lb_quantizer_describe(const lb_quantizer *q);
/* Whether q needs calibration statistics (gptq, awq, ...) / sequential
 * calibration (qronos): 1 or 0 (0 for NULL). */
int lb_quantizer_needs_calib(const lb_quantizer *q);
int lb_quantizer_needs_sequential(const lb_quantizer *q);

/* The format named `name` with group size `group` (0 = as named). Accepts a
 * registry name ("int4_g64_asym", "mxfp4") or, with a group, a family name
 * "intK[_asym][_bf16]" ("int4_asym" + 64 -> "int4_g64_asym"). LB_ERR_ARG for a
 * group that is not a power of two or that conflicts with the format's own
 * block; LB_ERR_NOTFOUND for an unknown name. */
lb_status lb_quant_format_resolve(const char *name, int64_t group, const lb_format **out);

/* ---- calibration (src/calib): statistics of every linear input of a model,
 * collected by running real text through it (docs/calib.md) */
typedef struct lb_calib lb_calib;
typedef struct lb_calib_opts {
    int64_t ctx;                /* tokens per sequence (<= 0: 128, or the model's max_seq when smaller;
                                   more than max_seq is refused) */
    int n_threads;              /* <= 0: all CPUs; results never depend on it */
    lb_progress_fn progress;    /* per layer, from the calling thread; may be NULL */
    void *progress_user;
    /* where the tokens came from, recorded in the file's metadata (may be NULL / 0) */
    const char *text;           /* the text file */
    int64_t text_begin, text_end;   /* its byte range [begin, end) the tokens were taken from */
} lb_calib_opts;
/* Run n_tokens tokens (split into sequences of ctx, each from position 0)
 * through m and collect the statistics of every linear input, layer by layer
 * on a stored residual stream (docs/calib.md). LB_ERR_ARG names the layer and
 * site of a NaN or Inf activation. */
lb_status lb_calib_collect(const lb_model *m, const int32_t *tokens, int64_t n_tokens, const lb_calib_opts *opts,
                           lb_calib **out);
lb_status lb_calib_save(const lb_calib *c, const char *path);          /* safetensors, atomic */
/* Load a statistics file (every tensor checked: shape, dtype, finite). m
 * may be NULL; otherwise LB_ERR_ARG, naming the file, when it was made for
 * another shape or another model (weight fingerprint) than m. */
lb_status lb_calib_load(const char *path, const lb_model *m, lb_calib **out);
void lb_calib_free(lb_calib *c);
typedef struct lb_calib_info {
    int64_t n_layers, n_tokens, ctx;
    int sequential;             /* holds Hq / Hqx too */
    size_t bytes;               /* statistics held (double) */
    double seconds;             /* collection time (0 when loaded) */
    char model[256], text[256];
    int64_t text_begin, text_end;
} lb_calib_info;
void lb_calib_get_info(const lb_calib *c, lb_calib_info *info);

/* Calibration statistics of one matrix's input x (n = the matrix's cols),
 * averaged over the calibration tokens (src/calib). Buffers are borrowed. */
typedef struct lb_calib_stats {
    int64_t n;                  /* input size */
    int64_t n_tokens;           /* tokens averaged */
    const double *H;            /* (n, n) mean of x x^T (float-path inputs) */
    const double *sq;           /* (n) mean of x^2 per column (llama.cpp's importance matrix) */
    const double *abs;          /* (n) mean of |x| per column (AWQ) */
    const double *amax;         /* (n) max of |x| per column (SmoothQuant, static activation scales) */
    /* sequential calibration only (NULL otherwise): xq = the same input computed
     * by the model whose earlier layers are already quantized (Qronos) */
    const double *Hq;           /* (n, n) mean of xq xq^T */
    const double *Hqx;          /* (n, n) mean of xq x^T */
    /* dartquant (issue 10): a sample of the float-path input rows, every
     * stride-th calibration token, at most LB_CALIB_ROWS; NULL / 0 for
     * statistics loaded from a file (only calibration on the fly keeps them) */
    const float *rows;          /* (n_rows, n) */
    int64_t n_rows;
} lb_calib_stats;
#define LB_CALIB_ROWS 512
/* The statistics of the input of the linear with Hugging Face name `name`
 * ("model.layers.3.self_attn.k_proj.weight": q/k/v share one input, so do
 * gate/up); views into c. LB_ERR_NOTFOUND for a name that is no linear of
 * a layer c holds. */
lb_status lb_calib_stats_for(const lb_calib *c, const char *name, lb_calib_stats *out);

typedef struct lb_quantize_opts {
    lb_scale_rule scale_rule;   /* the format's scale rule (LB_SCALE_MSE: searched scales) */
    int64_t hadamard_block;     /* hadamard+*: largest rotation block (0 = no limit); the block used is
                                   the largest supported order dividing cols and <= this */
    uint64_t seed;              /* hadamard+*: seed of the random signs */
    int sinq_iters;             /* sinq: Sinkhorn iterations (0 = 16) */
    const lb_calib_stats *calib;/* this matrix's input statistics; NULL = none (methods that need them
                                   fail with LB_ERR_ARG) */
    double damp;                /* gptq family: damping as a fraction of mean(diag H) (0 = 0.01) */
    int act_order;              /* gptq family: columns in descending diag H, with static groups */
    int64_t gptq_block;         /* gptq family: columns per lazy batch update (0 = 128) */
    /* gptq family, NV formats: the tensor scale comes from max(this, the matrix's own amax after the
       method's rotation), so matrices sharing an input (q/k/v, gate/up) can share it; 0 = own amax
       (lb_quantize_amax gives each matrix's) */
    float shared_amax;
} lb_quantize_opts;

/* A quantized matrix; every buffer is owned (free with lb_qmatrix_free). */
typedef struct lb_qmatrix {
    const lb_format *fmt;
    const lb_quantizer *method;
    int64_t rows, cols;
    size_t row_bytes;           /* lb_format_row_bytes(fmt, cols) */
    float tensor_scale;         /* NV per-tensor encode scale, else 1 */
    uint8_t *packed;            /* (rows, row_bytes) */
    float *col_scale;           /* (cols) or NULL */
    int64_t hadamard_block;     /* 0 = no rotation */
    uint64_t hadamard_seed;
    int8_t *hadamard_signs;     /* (cols) or NULL */
    double imbalance_before, imbalance_after;  /* sinq: mean over tiles of max std / min std */
    /* awq, awq+sinq, qronos (src/quant/awq.c, qronos.c) */
    double awq_alpha;           /* awq: the exponent chosen, s = mean|x|^alpha */
    double layer_loss;          /* awq: tr(E H E^T) of the result; qronos: mean ||W x - Q xq||^2 */
    /* dartquant (src/quant/dartquant.c): the learned rotation R (cols, cols) row-major, the input
       transform x <- R x; the stored matrix approximates W R^T. NULL = none */
    float *rotation;
    double whip_before, whip_after;  /* dartquant: Whip loss of the sample rows at the start and end */
} lb_qmatrix;

/* Quantize w (rows x cols) with method q into format f (opts may be NULL).
 * LB_ERR_ARG when cols is not a multiple of the format's block (or of 2 for
 * a rotation), when q needs calibration statistics and opts->calib is NULL,
 * or when they are for another input size. A rotating method receives the
 * statistics of the rotated input (H' = R H R^T, sq' = diag H'). */
lb_status lb_quantize_matrix(const lb_quantizer *q, const lb_format *f, const lb_quantize_opts *opts,
                             const float *w, int64_t rows, int64_t cols, lb_qmatrix *out);
/* w (rows x cols) <- the approximation of the original matrix (rotation and
 * column scale undone). */
lb_status lb_qmatrix_dequantize(const lb_qmatrix *m, float *w);
void lb_qmatrix_free(lb_qmatrix *m);          /* frees the buffers, not m; NULL ok */
/* gptq family: max |W'| of the matrix the method would quantize (W' = W R^T
 * for rotating methods, with the rotation opts asks for), for shared_amax. */
lb_status lb_quantize_amax(const lb_quantizer *q, const lb_format *f, const lb_quantize_opts *opts,
                           const float *w, int64_t rows, int64_t cols, float *amax);

/* Model-level quantization: every linear weight (q, k, v, o, gate, up,
 * down) is quantized; embeddings, lm_head and norms keep their precision.
 * Tensors matching a `keep` glob (fnmatch, on the Hugging Face name, e.g.
 * "model.layers.0.*" or "*down_proj*") are kept too, and so is a linear
 * whose cols do not divide the format's block (reported as such). */
typedef struct lb_model_quant_opts {
    const char *format;         /* see lb_quant_format_resolve; "f32" with hadamard+rtn: rotation only */
    int64_t group;              /* 0 = the format's own */
    const char *method;         /* NULL = "rtn" */
    lb_quantize_opts q;
    const char *const *keep;    /* glob patterns */
    int n_keep;
    int quantize_embeddings;    /* 1: the token embedding (and an untied lm_head) are quantized too */
    int n_threads;              /* <= 0: all CPUs; results never depend on it */
    lb_progress_fn progress;    /* per layer, from the calling thread; may be NULL */
    void *progress_user;
    const lb_calib *calib;      /* statistics for methods that need them (NULL = none) */
    /* calibration on the fly instead of `calib`: these tokens (sequences of
     * calib_ctx, <= 0: 128) run through the model layer by layer; each layer's
     * linears get the statistics of their inputs, then the layer is quantized.
     * sequential: layer l's inputs also come from the model whose layers < l
     * are already quantized (Hq, Hqx; needed by methods flagged sequential). */
    const int32_t *calib_tokens;
    int64_t n_calib_tokens;
    int64_t calib_ctx;
    int sequential;
    /* ---- mixed precision under a bits budget (src/quant/budget.c, docs/quant.md) */
    double bits_budget;         /* > 0: each linear takes one of the candidate formats (format and
                                   budget_formats), chosen greedily by proxy loss per bit from the
                                   calibration statistics; mean bits/weight of the linears <= this */
    const char *const *budget_formats;  /* more candidates (format names, the group is their own) */
    int n_budget_formats;
    int budget_metric;          /* 0: output error tr(E H E^T); 1: that over tr(W H W^T); 2: the model's
                                   mean KL divergence with that linear alone quantized (calibration tokens) */
    const int32_t *budget_tokens;   /* metric 2's tokens when calib_tokens is not set (NULL: calib_tokens) */
    int64_t n_budget_tokens;
} lb_model_quant_opts;

typedef struct lb_quant_tensor_info {
    char name[96];              /* Hugging Face name ("model.layers.0.mlp.up_proj.weight") */
    int64_t rows, cols;
    char format[32];            /* block format, or the dtype ("F32") when kept */
    char method[24];            /* "" when kept */
    char status[32];            /* "quantized", "kept (--keep)", "kept (shape)", "kept (not linear)" */
    double bits_per_weight;     /* everything stored for it, scales and column scales included */
    size_t bytes;
    double rel_err;             /* ||W - Q(W)||_F / ||W||_F (0 when kept) */
    double imbalance_before, imbalance_after; /* sinq only */
} lb_quant_tensor_info;

typedef struct lb_quant_report {
    lb_quant_tensor_info *tensors;
    int64_t n_tensors, n_quantized, n_kept_linear;
    double linear_bits_per_weight;  /* over all linear weights (kept ones at their dtype) */
    double total_bits_per_weight;   /* over every weight of the model */
    size_t total_bytes;
    double seconds;
} lb_quant_report;

/* Quantize src into a new model *out (independent of src). rep may be NULL;
 * free it with lb_quant_report_free. */
lb_status lb_model_quantize(const lb_model *src, const lb_model_quant_opts *opts, lb_model **out,
                            lb_quant_report *rep);
void lb_quant_report_free(lb_quant_report *r);
/* Write a model (dense, rotated or packed) as a self-contained lowbit
 * safetensors file (docs/file-format.md). lb_model_load reads it back. No
 * partial file is left on failure. */
lb_status lb_model_save(const lb_model *m, const char *path);
/* Output error of each linear of q (a quantized copy of m) on real
 * activations: rel_err = ||X W^T - X Q^T||_F / ||X W^T||_F where X holds the
 * inputs m itself gives that linear on tokens[0..n) (one sequence, with the
 * quantized product computed by the inference path). q, k, v, gate, up and
 * down of every layer are measured (o_proj is not). *out is malloc'd. */
typedef struct lb_quant_layer_error {
    char name[96];
    int quantized;              /* 0: kept at original precision (error 0 up to rounding) */
    double rel_err;
} lb_quant_layer_error;
lb_status lb_quant_layer_errors(const lb_model *m, const lb_model *q, const int32_t *tokens, int64_t n,
                                lb_quant_layer_error **out, int64_t *n_out);
/* W (rows x cols floats) of a weight of m by Hugging Face name, dequantized
 * into the original space; LB_ERR_NOTFOUND for an unknown name. w may be
 * NULL to learn only rows and cols; rows and cols may be NULL. */
lb_status lb_model_weight_f32(const lb_model *m, const char *name, float *w, int64_t *rows, int64_t *cols);

/* ================================================================ sparsity */
/* (src/sparsity: pruning criteria and patterns, stored compressed; see
 * docs/sparsity.md. Block added for issue 12.) */

/* Pruning one matrix. Patterns: "unstructured" (a ratio per row), "N:M"
 * (keep N of every M consecutive inputs: "2:4", "4:8", "1:4"), "V:N:M"
 * (each V x M block keeps 4 of its M columns, then N of those 4 per row:
 * "64:2:8" is 75% sparse). Criteria: "magnitude" |W|, "wanda" |W| sqrt(sq)
 * (calib->sq), "sparsegpt" (OBS pruning with error feedback, calib->H). */
typedef struct lb_prune_opts {
    const char *criterion;      /* NULL = "magnitude" */
    const char *pattern;        /* NULL = "unstructured" */
    double ratio;               /* unstructured: fraction pruned, [0, 1) (per row; sparsegpt: per block) */
    const lb_calib_stats *calib;/* this matrix's input statistics (wanda, sparsegpt) */
    double damp;                /* sparsegpt: damping, fraction of mean(diag H) (0 = 0.01) */
    int64_t block;              /* sparsegpt: columns per mask block (0 = 128; rounded down to a multiple of M) */
    int row_groups;             /* sparsegpt, unstructured: 1 = each row of a block prunes its own floor(width *
                                   ratio) lowest scores (every row keeps the same count, so packed values need
                                   no padding); 0 = one threshold over all rows of the block (the reference);
                                   lb_model_prune turns 0 into 1 when the kept values are packed (a format),
                                   -1 keeps the reference there too (ragged rows, padded) */
} lb_prune_opts;
/* w (rows x cols) is pruned in place (sparsegpt also updates the kept
 * weights); keep (rows x cols bytes, may be NULL) gets 1 for kept weights. */
lb_status lb_prune_matrix(const lb_prune_opts *o, float *w, int64_t rows, int64_t cols, uint8_t *keep);
/* SparseGPT's joint prune-and-quantize (criterion "sparsegpt", an N:M or
 * V:N:M pattern): inside the OBS column loop each kept weight is rounded
 * onto its block grid in format f and the pruning/rounding error fed
 * forward. out gets each row's kept values packed in f (rows x kept per
 * row, which must be a multiple of f's block, the block a multiple of N:
 * else LB_ERR_UNSUPPORTED); w the decoded values (0 where pruned). */
lb_status lb_prune_quantize_matrix(const lb_prune_opts *o, const lb_format *f, float *w, int64_t rows, int64_t cols,
                                   uint8_t *keep, lb_qmatrix *out);
int lb_prune_criterion_count(void);
const char *lb_prune_criterion_name(int i);   /* NULL out of range */
const char *lb_prune_criterion_desc(int i);

/* One matrix's statistics from a calibration set, by Hugging Face name
 * (lb_calib_stats_for, or a caller's own lookup). */
typedef lb_status (*lb_calib_stats_fn)(const lb_calib *c, const char *name, lb_calib_stats *out);

/* Model-level pruning: every linear (q, k, v, o, gate, up, down) not matched
 * by a keep glob is pruned and stored sparse (docs/file-format.md); the
 * rest is copied. */
typedef struct lb_model_prune_opts {
    lb_prune_opts p;            /* p.calib is ignored: set per matrix */
    const char *dtype;          /* kept values: "f32", "f16", "bf16"; NULL = each weight's own dtype */
    const char *format;         /* or: prune, then quantize the kept values (RTN) into this block format
                                   (lb_quant_format_resolve name); unstructured rows (any counts) padded by
                                   zeros to whole blocks of the longest row (at most cols); N:M and V:N:M
                                   need the same count in every row, a multiple of the block; a matrix
                                   where it does not fit keeps its values at dtype */
    int joint;                  /* with format and sparsegpt: SparseGPT's joint mode (quantize inside the
                                   OBS loop, lb_prune_quantize_matrix) instead of prune-then-RTN; a matrix
                                   it cannot store (kept count vs block) is pruned alone, values at dtype */
    const char *const *keep;    /* fnmatch globs of linears left dense */
    int n_keep;
    const lb_calib *calib;      /* statistics (lb_calib_load / lb_calib_collect), read through stats_for */
    lb_calib_stats_fn stats_for;/* NULL = lb_calib_stats_for */
    const int32_t *tokens;      /* or: calibration tokens; statistics collected here by lb_calib_collect
                                   (dense model); giving both calib and tokens is an error */
    int64_t n_tokens, ctx;      /* ctx: tokens per sequence (<= 0: 128, capped at max_seq) */
    int sequential;             /* with tokens: layer l's statistics from the model whose layers < l are
                                   already pruned (as the Wanda and SparseGPT reference code), collected
                                   layer by layer while pruning; else from the dense model */
    int n_threads;              /* <= 0: all CPUs; results never depend on it */
    lb_progress_fn progress;    /* per layer; may be NULL */
    void *progress_user;
} lb_model_prune_opts;

typedef struct lb_prune_tensor_info {
    char name[96];
    int64_t rows, cols;
    char status[32];            /* "pruned", "kept (--keep)", "kept (not linear)" */
    char stored[48];            /* "BF16 2:4 bitmask", "F32" */
    double sparsity;            /* fraction of zeros kept out */
    size_t bytes, dense_bytes;  /* as stored; dense at the same dtype */
    double rel_err;             /* ||W - W'||_F / ||W||_F */
} lb_prune_tensor_info;
typedef struct lb_prune_report {
    lb_prune_tensor_info *tensors;
    int64_t n_tensors, n_pruned;
    double linear_sparsity;     /* over the pruned linears */
    size_t total_bytes, dense_bytes;
    double seconds;
} lb_prune_report;
lb_status lb_model_prune(const lb_model *src, const lb_model_prune_opts *opts, lb_model **out, lb_prune_report *rep);
void lb_prune_report_free(lb_prune_report *r);

/* ---- activation quantization (issue 10; src/weights/act.c, src/model/act.c,
 * docs/activations.md)
 * From now on quantize the inputs of every q/k/v, o, gate/up and down product
 * of m with format `act`, dynamically per token in blocks along the row
 * (after the weight's input transforms, e.g. after its Hadamard rotation):
 * a registry block format name (int8_g32, int4_g32, mxint8, mxfp8_e4m3,
 * mxfp6_e2m3, mxfp4, nvfp4, ...), "int8" / "int4" for int8_g32 / int4_g32,
 * or "none" / NULL for FP32 inputs. Weights in int8_g32[_bf16],
 * int4_g32[_bf16] or mxint8 with activations in one of those formats are
 * multiplied by the integer kernels (which define that product); every other
 * pair simulates the activation format (quantize, dequantize, float product).
 * "bf16" (issue 10, bf16dot): inputs rounded to BF16; with dense BF16 weights
 * the product follows AVX512-BF16 vdpbf16ps exactly (docs/activations.md),
 * with other weights it is simulated.
 * A linear whose input width the format's block does not divide keeps FP32
 * inputs (counted in *n_kept; may be NULL). Norms, attention, the residual
 * stream, the embedding and lm_head stay FP32. lb_model_save records the
 * format; lb_model_load restores it. Call it before creating sessions on m
 * (a session made while m had no activation format keeps FP32 inputs) and
 * never while a session of m runs. LB_ERR_ARG for an unknown name. */
lb_status lb_model_set_act(lb_model *m, const char *act, int64_t *n_kept);

/* ---- QuaRot residual-stream rotation (issue 10, src/quant/quarot.c) ----
 * A float copy of src (every weight dense F32, lm_head untied) computing the
 * same function: RMSNorm weights folded into the linears reading each norm,
 * the residual stream rotated by the randomized Hadamard over dim (signs
 * from seed: use another seed than the per-input rotations', whose
 * Hadamard over the same dim would otherwise compose with it into a
 * structured product) and the rotation fused into the embedding and every linear
 * that reads or writes the stream (docs/activations.md). LB_ERR_UNSUPPORTED
 * for a quantized or rotated src; LB_ERR_ARG when dim has no Hadamard plan. */
lb_status lb_model_quarot(const lb_model *src, uint64_t seed, lb_model **out);
/* The activation format of m's first linear that has one, or "none". */
const char *lb_model_act(const lb_model *m);

/* ---- static activation scales (issue 10, igemm) */
/* Like lb_model_set_act(m, act) for a symmetric INT block format (int8,
 * int4, int8_g32, int4_g32_bf16, ...; an optional ":static" suffix is
 * accepted), but each block of a linear's input gets one fixed scale for
 * every token instead of the token's own: the format's scale of a block
 * whose max |x| is the largest calibrated max |x| (lb_calib_stats.amax) of
 * its columns; larger values clip. c: statistics of m (lb_calib_load with
 * m). LB_ERR_UNSUPPORTED when a linear has input transforms (the statistics
 * are of the untransformed input); on any error m has no activation format.
 * The scales live in memory only: lb_model_save records the format alone. */
lb_status lb_model_set_act_static(lb_model *m, const char *act, const lb_calib *c, int64_t *n_kept);

#ifdef __cplusplus
}
#endif
#endif /* LOWBIT_H */
