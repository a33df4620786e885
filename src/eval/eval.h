/* eval.h: private pieces shared by perplexity and KL divergence: the chunk
 * plan, log-softmax, and the base log-probability file (docs/eval.md). */
#ifndef LB_EVAL_H
#define LB_EVAL_H

#include "model/model.h"
#include "core/safetensors.h"

/* Chunk c covers tokens [c*ctx, (c+1)*ctx); positions first .. ctx-2 are
 * scored (each predicts the next token), rows = ctx - 1 - first per chunk. */
typedef struct lb_chunk_plan {
    int64_t ctx, n_chunks, first, rows;
    lb_scoring scoring;
} lb_chunk_plan;

/* out[i] = logits[i] - logsumexp(logits), in double. */
void lb__log_softmax(const float *logits, int64_t n, double *out);
/* LB_ERR_CORRUPT, naming `what`, the chunk and the position, when one of
 * the n logits is NaN or infinite (a perplexity of NaN is no answer). */
lb_status lb__check_logits(const float *logits, int64_t n, const char *what, int64_t chunk, int64_t pos);

/* ---- base files: a safetensors container with metadata and two tensors,
 * "tokens" (I32 [n_chunks, ctx], as run: BOS already in place) and
 * "logprobs" (F32 [n_chunks * rows, vocab]). */
typedef struct lb_base_writer {
    lb_outfile out;
    int64_t vocab;
} lb_base_writer;

typedef struct lb_base_info {
    lb_chunk_plan plan;
    int64_t vocab;
    uint64_t text_hash;
    char model[256];
} lb_base_info;

lb_status lb__base_begin(lb_base_writer *w, const char *path, const lb_base_info *info, const int32_t *chunk_tokens);
lb_status lb__base_put_row(lb_base_writer *w, const double *logprobs);
lb_status lb__base_commit(lb_base_writer *w);
void lb__base_abort(lb_base_writer *w);

typedef struct lb_base_file {
    lb_st_file st;             /* the container (tensors tile its data exactly) */
    lb_base_info info;
    const int32_t *tokens;     /* [n_chunks, ctx] (little-endian host assumed) */
    const float *logprobs;     /* [n_chunks * rows, vocab] */
} lb_base_file;

/* Open and check a base file: the container, the metadata, exactly the two
 * tensors with the shapes it states, and every log-probability finite
 * (errors name the file). */
lb_status lb__base_open(const char *path, lb_base_file *f);
void lb__base_close(lb_base_file *f);

#endif
