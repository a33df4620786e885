/* cli.h: helpers shared by the lowbit subcommands (tools/ only; uses just
 * the public header). Each command is `int cmd_x(int argc, char **argv)` with
 * argv[0] naming the command; it returns the process exit status. */
#ifndef LB_CLI_H
#define LB_CLI_H

#include "lowbit.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
} cli_command;

/* Print "lowbit <cmd>: <message>" to stderr and return 1 (use: return cli_fail(...)). */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Report a failed library call: "lowbit <cmd>: <lb_errmsg()>". Returns 1. */
int cli_fail_status(const char *cmd, lb_status s);

/* True when argv[*i] is `name`; stores the value of "--name V" or "--name=V"
 * in *val (advancing *i). A missing value prints an error and sets *err. */
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **val, bool *err);
bool cli_flag(const char *arg, const char *name);
bool cli_is_help(const char *arg);
/* Parse numbers within [lo, hi]; print a clear error naming the option. */
bool cli_int(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
bool cli_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

/* Progress line on stderr, only when stderr is a terminal. Pass as the
 * library's lb_progress_fn with user = command name. */
void cli_progress(int64_t done, int64_t total, const char *what, void *user);
void cli_progress_end(void);

/* Atomic write of head then body (temporary file + rename, so a failure
 * leaves no partial file); prints and returns 1 on error. */
int cli_write_atomic(const char *cmd, const char *path, const void *head, size_t hn, const void *body, size_t bn);

/* Read a whole file (for raw float32 tensors); returns NULL and prints on error. */
void *cli_read_all(const char *cmd, const char *path, size_t *size);

/* Directory with the shared models (LOWBIT_MODELS, else ../shared/models). */
const char *cli_models_dir(void);

/* model loaders (cmd_inspect.c, cmd_synth.c) */
int cmd_inspect(int argc, char **argv);
int cmd_synth(int argc, char **argv);
/* transforms (tools/cmd_hadamard.c) */
int cmd_hadamard(int argc, char **argv);
/* formats (tools/cmd_formats.c) */
int cmd_formats(int argc, char **argv);
int cmd_tensor(int argc, char **argv);
/* engine (cmd_run.c, cmd_eval.c) */
int cmd_run(int argc, char **argv);
int cmd_eval(int argc, char **argv);
/* Load a model and its tokenizer (found beside the model when tok_path is
 * NULL) and check that the vocabularies agree; prints and returns 1 on error. */
int cli_load_model_tok(const char *cmd, const char *model_path, const char *tok_path, lb_model **m, lb_tokenizer **t);
/* Offset of the first byte that is not strict UTF-8, or len when valid. */
size_t cli_utf8_check(const unsigned char *s, size_t len);
/* lossless (cmd_pack.c) */
int cmd_pack(int argc, char **argv);
int cmd_unpack(int argc, char **argv);
/* quant (cmd_quantize.c, cmd_bench_quant.c: `lowbit bench quant`) */
int cmd_quantize(int argc, char **argv);
int bench_quant(int argc, char **argv);

/* tools/tensor_hadamard.c: the --hadamard stage of `lowbit tensor`. */
/* 0 when block is a supported Hadamard order dividing cols, else prints and returns 1. */
int cli_hadamard_check(const char *cmd, int64_t block, int64_t cols);
/* cols random signs from seed (malloc'd), or NULL when !seeded (or out of memory). */
int8_t *cli_hadamard_signs(bool seeded, uint64_t seed, int64_t cols);
/* quantize --hadamard (records the transform in the header) and dequantize
 * (undoes a recorded transform; block != 0 must match it). */
int tensor_hadamard_quantize(const char *cmd, const lb_format *f, const lb_quant_opts *q, const char *in,
                             int64_t cols, int64_t block, bool seeded, uint64_t seed, const char *out);
int tensor_dequantize(const char *cmd, const lb_format *f, const char *in, int64_t block, bool seeded,
                      uint64_t seed, const char *out);
/* study (tools/cmd_bench.c): `lowbit bench <name>` dispatches to sub-benches
 * (argv[0] = the bench name): tools/study_formats.c (a thin caller of
 * lb_formats_study_run) */
int cmd_bench(int argc, char **argv);
int bench_formats(int argc, char **argv);

#endif
