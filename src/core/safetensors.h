/* safetensors.h: private reader and streaming writer for safetensors files
 * (https://github.com/huggingface/safetensors), the container of every model
 * file lowbit reads or writes.
 *
 * Layout: u64 little-endian N, then N bytes of JSON header, then the data
 * section. The header maps each tensor name to {"dtype", "shape",
 * "data_offsets": [begin, end]} (byte offsets relative to the data section)
 * and may hold "__metadata__", a map of strings to strings. The reader checks
 * everything before handing out a view: header length within the file, valid
 * JSON, known dtype, shape product * element size == end - begin, tensors
 * tiling the data section exactly (no overlap, no holes, as the format
 * requires), unique names. */
#ifndef LB_SAFETENSORS_H
#define LB_SAFETENSORS_H

#include "core/core.h"

#define LB_ST_MAX_DIMS 8
#define LB_ST_MAX_HEADER ((uint64_t)100 << 20)   /* the reference library's limit */

typedef struct lb_st_tensor {
    const char *name;                 /* owned by the file's JSON header */
    lb_dtype dtype;
    int ndim;
    int64_t shape[LB_ST_MAX_DIMS];
    uint64_t begin, end;              /* bytes within the data section */
    const void *data;                 /* view: base + data_off + begin */
} lb_st_tensor;

typedef struct lb_st_file {
    lb_map map;                       /* set by lb__st_open; empty for lb__st_parse */
    const uint8_t *base;
    size_t size;
    size_t data_off;                  /* 8 + header length */
    lb_st_tensor *tensors;            /* sorted by data offset */
    int64_t n_tensors;
    int64_t *by_name;                 /* tensor indices sorted by name */
    const char **meta_keys, **meta_vals;
    int64_t n_meta;
    lb_json *header;
    char *what;                       /* name used in messages */
} lb_st_file;

/* Parse an in-memory file (not copied: it must outlive f). Free with lb__st_close. */
lb_status lb__st_parse(const uint8_t *data, size_t size, const char *what, lb_st_file *f);
/* Map and parse a file. */
lb_status lb__st_open(const char *path, lb_st_file *f);
void lb__st_close(lb_st_file *f);
/* Hand the mapping over to *dst (e.g. a model); views stay valid. */
void lb__st_take_map(lb_st_file *f, lb_map *dst);
const lb_st_tensor *lb__st_find(const lb_st_file *f, const char *name);  /* NULL if absent */
const char *lb__st_meta(const lb_st_file *f, const char *key);           /* NULL if absent */
/* Element count of a tensor (product of its shape; 1 for a scalar). */
int64_t lb__st_numel(const lb_st_tensor *t);
/* Parse a safetensors dtype spelling ("F32", "BF16", ...). */
bool lb__st_dtype_parse(const char *s, lb_dtype *out);

/* Streaming writer: declare every tensor (and metadata) first, then write
 * their bytes in declaration order; commit renames the finished file into
 * place. The header is padded with spaces so the data section starts 8-byte
 * aligned. Any failure leaves no output file behind. */
typedef struct lb_st_writer lb_st_writer;
lb_status lb__st_writer_open(const char *path, lb_st_writer **w);
lb_status lb__st_writer_meta(lb_st_writer *w, const char *key, const char *value);
lb_status lb__st_writer_add(lb_st_writer *w, const char *name, lb_dtype dtype, int ndim, const int64_t *shape);
/* Append n bytes of tensor data (the first call writes the header). */
lb_status lb__st_writer_write(lb_st_writer *w, const void *data, size_t n);
/* Check that exactly the declared bytes were written, then commit; frees w. */
lb_status lb__st_writer_commit(lb_st_writer *w);
void lb__st_writer_abort(lb_st_writer *w);   /* removes the temporary file; frees w; NULL ok */

#endif
