/* loader.h: private entry points of the model loaders (src/model only, plus
 * tests and fuzz targets). The parsers take in-memory buffers so they can be
 * fuzzed without files; `what` names the source in error messages. Every
 * view they set points into the buffer they were given, which must outlive
 * the model. */
#ifndef LB_MODEL_LOADER_H
#define LB_MODEL_LOADER_H

#include "model/model.h"
#include "core/safetensors.h"

/* Upper bounds on config values: far above any real model, low enough that
 * products of them cannot overflow int64 or size_t. */
#define LB_MAX_DIM ((int64_t)1 << 20)
#define LB_MAX_LAYERS ((int64_t)4096)
#define LB_MAX_HEADS ((int64_t)65536)
#define LB_MAX_VOCAB ((int64_t)1 << 24)
#define LB_MAX_SEQ ((int64_t)1 << 26)

static inline bool lb__ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* A fresh zeroed model (NULL + LB_ERR_NOMEM message on failure). */
lb_model *lb__model_new(void);
/* Allocate m->layers for m->cfg.n_layers (zeroed). */
lb_status lb__model_alloc_layers(lb_model *m);
/* Set m->path and m->source_format (copies). */
lb_status lb__model_set_names(lb_model *m, const char *path, const char *source);
/* Linears of one input with equal static activation scales share one array (act.c). */
void lb__model_share_act_scales(lb_model *m);
/* Check a filled config for impossible values (sizes, divisibility). */
lb_status lb__config_validate(const lb_config *c, const char *what);

/* What a path holds, by content (load.c). */
typedef enum lb_file_kind {
    LB_FILE_NONE, LB_FILE_DIR, LB_FILE_SAFETENSORS, LB_FILE_JSON, LB_FILE_LLAMA2C_V1, LB_FILE_OTHER
} lb_file_kind;
lb_file_kind lb__model_file_kind(const char *path);

/* llama2.c checkpoint (legacy 7-int header or version-1 256-byte header). */
lb_status lb__llama2c_parse(const uint8_t *data, size_t size, const char *what, lb_model *m);
/* True when the first bytes look like a llama2.c checkpoint (v1 magic). */
bool lb__llama2c_is_v1(const uint8_t *data, size_t size);

/* cfg as a JSON object (inspect.c; read back by lb__config_from_json). */
void lb__config_json(lb_buf *b, const lb_config *c);

/* Hugging Face config.json text -> cfg. */
lb_status lb__hf_config_parse(const char *text, size_t n, const char *what, lb_config *cfg);
/* DIR/config.json -> cfg. */
lb_status lb__hf_read_config(const char *dir, lb_config *cfg);
/* Open the weight files of a folder (model.safetensors or the shards its
 * index names); *files is an array of *n opened files (lb__st_close each,
 * then free the array). Needs safetensors.h for lb_st_file. */
lb_status lb__hf_open_files(const char *dir, lb_st_file **files, int *n);
/* Hugging Face model folder (config.json + safetensors). */
lb_status lb__hf_load(const char *dir, lb_model *m);
/* One Hugging Face safetensors file, `name` in folder `dir` (path = both,
 * for messages), with the config.json of that folder; the weights are read
 * from that file only. */
lb_status lb__hf_load_file(const char *dir, const char *name, const char *path, lb_model *m);

/* lbfile.c: a lowbit model file (lb_model_save's output: a safetensors file
 * with lowbit.version and lowbit.config metadata). */
lb_status lb__lbfile_load(const lb_st_file *f, const char *path, lb_model *m);

/* The Hugging Face names of the weights of a model, in file order. */
typedef struct lb__wname {
    char name[96];
    lb_weight *w;
    bool vector;                 /* stored 1-D (norms, biases) */
    bool linear;                 /* a projection the quantizers act on */
} lb__wname;
/* Fill up to cap entries; returns the count. A tied lm_head is not listed. */
int64_t lb__model_names(lb_model *m, lb__wname *out, int64_t cap);
/* Expected (rows, cols) of every listed weight from the config (rows 0: a vector). */
void lb__model_name_shape(const lb_config *c, const char *name, int64_t *rows, int64_t *cols);

#endif
