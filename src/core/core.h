/* core.h: private helpers shared by every module of liblowbit (never
 * installed). Errors, allocation, files, a growable byte buffer, a small JSON
 * reader/writer and the run-time ISA switch. */
#ifndef LB_CORE_H
#define LB_CORE_H

#include "lowbit.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replaceable allocator (stb style). */
#ifndef LB_MALLOC
#define LB_MALLOC(n) malloc(n)
#define LB_CALLOC(n, s) calloc((n), (s))
#define LB_REALLOC(p, n) realloc((p), (n))
#define LB_FREE(p) free(p)
#endif

/* Programmer errors only, never bad input. */
#define LB_ASSERT(c) do { if (!(c)) lb__assert_fail(#c, __FILE__, __LINE__); } while (0)
void lb__assert_fail(const char *cond, const char *file, int line);

/* Record an error message for lb_errmsg() and return the status, so callers
 * write `return lb__err(LB_ERR_FORMAT, "%s: truncated at %zu", path, off);`. */
lb_status lb__err(lb_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with more context ("loading X: " + old). */
lb_status lb__err_prefix(lb_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lb__clear_err(void);
/* Public entry points refuse a NULL required pointer before anything else:
 * LB_ARG(s, "lb_forward: session is NULL") returns LB_ERR_ARG with that
 * message (the function's name first, so a caller can tell who refused). */
#define LB_ARG(ok, msg) do { if (!(ok)) return lb__err(LB_ERR_ARG, "%s", msg); } while (0)
void lb__log(lb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation that records LB_ERR_NOMEM with the size asked for. */
void *lb__alloc(size_t n);          /* uninitialised, NULL + error on failure */
void *lb__zalloc(size_t n);         /* zeroed */
void *lb__alloc_aligned(size_t n);  /* 64-byte aligned; free with lb__free_aligned */
void lb__free_aligned(void *p);

/* ---- files */
typedef struct lb_map {            /* a read-only memory-mapped file */
    const uint8_t *data;
    size_t size;
    char *path;
} lb_map;
lb_status lb__map_file(const char *path, lb_map *m);
void lb__unmap(lb_map *m);
lb_status lb__read_file(const char *path, uint8_t **data, size_t *size);
/* Open path for reading without blocking (a FIFO with no writer would hang
 * open()) and refuse anything but a regular file; returns the fd or -1 with
 * the error recorded; *size (unless NULL) gets its size. */
int lb__open_regular(const char *path, size_t *size);

/* Atomic output: write to lb_temp_path(path, pid) ("DIR/.NAME.lowbit-tmp.PID"), then rename over path on
 * commit; abort (or a failed commit) removes the temporary file, so no
 * half-written output is ever left behind. */
typedef struct lb_outfile {
    FILE *f;
    char *path;
    char *tmp;
} lb_outfile;
lb_status lb__out_open(const char *path, lb_outfile *o);
lb_status lb__out_write(lb_outfile *o, const void *data, size_t n);
lb_status lb__out_commit(lb_outfile *o);
void lb__out_abort(lb_outfile *o);

/* ---- growable byte buffer */
typedef struct lb_buf {
    char *data;
    size_t len, cap;
    bool failed;                  /* an allocation failed; contents incomplete */
} lb_buf;
void lb__buf_put(lb_buf *b, const void *data, size_t n);
void lb__buf_printf(lb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lb__buf_json_str(lb_buf *b, const char *s);   /* quoted, escaped JSON string */
void lb__buf_free(lb_buf *b);

/* ---- JSON (RFC 8259) DOM reader: one allocation pool per document. */
typedef enum lb_json_type {
    LB_JSON_NULL, LB_JSON_BOOL, LB_JSON_NUM, LB_JSON_STR, LB_JSON_ARR, LB_JSON_OBJ
} lb_json_type;
typedef struct lb_json lb_json;
struct lb_json {
    lb_json_type type;
    bool b;
    double num;
    char *str;          /* STR: NUL-terminated UTF-8 (may contain \0 via len) */
    size_t len;         /* STR: byte length; ARR/OBJ: number of children */
    char **keys;        /* OBJ: keys[i] names kids[i] */
    lb_json **kids;     /* ARR/OBJ children */
};
/* Parse text[0..n). On failure the message names `what` (a file name) and
 * the byte offset. Free with lb__json_free. Depth is limited to 256. */
lb_status lb__json_parse(const char *text, size_t n, const char *what, lb_json **out);
void lb__json_free(lb_json *j);
const lb_json *lb__json_get(const lb_json *obj, const char *key);  /* NULL if absent */
const lb_json *lb__json_at(const lb_json *arr, size_t i);
/* Typed getters returning false when absent or of another type. */
bool lb__json_num(const lb_json *obj, const char *key, double *v);
bool lb__json_int(const lb_json *obj, const char *key, int64_t *v); /* integral only */
const char *lb__json_str(const lb_json *obj, const char *key);

/* ---- ISA dispatch internals */
bool lb__cpu_has_avx2(void);     /* AVX2 + FMA + F16C */
bool lb__cpu_has_avx512(void);   /* F, BW, VL, DQ, VNNI, BF16 */

/* ---- dense linear algebra (linalg.c), double, row-major n x n, fixed loop order */
/* a <- L, the lower Cholesky factor of the symmetric positive definite a
 * (upper triangle zeroed). LB_ERR_ARG naming the failing pivot otherwise. */
lb_status lb__chol(double *a, int64_t n);
/* a (SPD) <- U, upper triangular with a^-1 = U^T U (GPTQ's "Hinv"). */
lb_status lb__chol_inv_upper(double *a, int64_t n);
/* C (m x len, row stride ldc) -= A (m x K, stride lda) B (K x len, stride
 * ldb): each element gets c - a_k b_k for k ascending, unfused; upper: B is
 * zero where column < row (those k are skipped, which changes nothing). */
void lb__gemm_sub(double *C, int64_t ldc, const double *A, int64_t lda, const double *B, int64_t ldb, int64_t m,
                  int64_t K, int64_t len, bool upper);

/* ---- misc */
static inline int64_t lb__min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t lb__max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline bool lb__is_pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }
static inline uint32_t lb__f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float lb__bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

#endif /* LB_CORE_H */
