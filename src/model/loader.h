/* loader.h: private entry points of the model loaders (src/model only, plus
 * tests and fuzz targets). The parsers take in-memory buffers so they can be
 * fuzzed without files; `what` names the source in error messages. Every
 * view they set points into the buffer they were given, which must outlive
 * the model. */
#ifndef LB_MODEL_LOADER_H
#define LB_MODEL_LOADER_H

#include "model/model.h"

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
/* Check a filled config for impossible values (sizes, divisibility). */
lb_status lb__config_validate(const lb_config *c, const char *what);

/* llama2.c checkpoint (legacy 7-int header or version-1 256-byte header). */
lb_status lb__llama2c_parse(const uint8_t *data, size_t size, const char *what, lb_model *m);
/* True when the first bytes look like a llama2.c checkpoint (v1 magic). */
bool lb__llama2c_is_v1(const uint8_t *data, size_t size);

/* Hugging Face config.json text -> cfg. */
lb_status lb__hf_config_parse(const char *text, size_t n, const char *what, lb_config *cfg);
/* DIR/config.json -> cfg. */
lb_status lb__hf_read_config(const char *dir, lb_config *cfg);
/* Open the weight files of a folder (model.safetensors or the shards its
 * index names); *files is an array of *n opened files (lb__st_close each,
 * then free the array). Needs safetensors.h for lb_st_file. */
struct lb_st_file;
lb_status lb__hf_open_files(const char *dir, struct lb_st_file **files, int *n);
/* Hugging Face model folder (config.json + safetensors). */
lb_status lb__hf_load(const char *dir, lb_model *m);

#endif
