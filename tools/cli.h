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
bool cli_is_help(const char *arg);

/* ---- one option parser for every command (tools/cli.c)
 * A command lists its options in a table ended by {0}; cli_parse fills the
 * destinations and reports every problem as one line
 * "lowbit CMD: --opt VALUE: problem". Options take "--opt V" or "--opt=V";
 * "--" ends the options. Shared conventions: --threads K (0 = all cores, the
 * default, everywhere), --force (replace an existing output), --json. */
typedef enum cli_kind {
    CLI_FLAG,     /* bool *: set when given */
    CLI_STR,      /* const char **: any text */
    CLI_PATH,     /* const char **: a non-empty path */
    CLI_INT,      /* int64_t *: integer in [ilo, ihi] */
    CLI_FLOAT,    /* double *: finite number in [flo, fhi] */
    CLI_CHOICE,   /* int *: index of the value in choices "a|b|c" */
    CLI_MULTI,    /* const char **: an array of capacity ihi; repeatable; *seen counts */
} cli_kind;
typedef struct cli_optdef {
    const char *name;          /* "--ctx" or "-n" */
    cli_kind kind;
    void *dst;
    int64_t ilo, ihi;
    double flo, fhi;
    const char *choices;
    int *seen;                 /* optional: incremented each time the option is given */
} cli_optdef;
/* Parses argv[1..argc) (argv[0] names nothing; cmd is used in messages).
 * Arguments that are not options go to pos (at most max_pos, counted in
 * *n_pos; n_pos may be NULL when max_pos is 0). Returns 0, 1 after printing
 * an error, or -1 when --help / -h was given (the caller prints its help). */
int cli_parse(const char *cmd, int argc, char **argv, const cli_optdef *defs, const char **pos, int max_pos,
              int *n_pos);
/* Table rows (plain initializers; the option name stays greppable). */
#define CLI_O_FLAG(n, p) {.name = (n), .kind = CLI_FLAG, .dst = (p)}
#define CLI_O_STR(n, p) {.name = (n), .kind = CLI_STR, .dst = (p)}
#define CLI_O_PATH(n, p) {.name = (n), .kind = CLI_PATH, .dst = (p)}
#define CLI_O_INT(n, p, lo, hi) {.name = (n), .kind = CLI_INT, .dst = (p), .ilo = (lo), .ihi = (hi)}
#define CLI_O_FLOAT(n, p, lo, hi) {.name = (n), .kind = CLI_FLOAT, .dst = (p), .flo = (lo), .fhi = (hi)}
#define CLI_O_CHOICE(n, p, list) {.name = (n), .kind = CLI_CHOICE, .dst = (p), .choices = (list)}
#define CLI_O_MULTI(n, arr, cap, count) {.name = (n), .kind = CLI_MULTI, .dst = (arr), .ihi = (cap), .seen = (count)}
/* The --threads option every multithreaded command takes: 0 = all cores. */
#define CLI_THREADS(p) CLI_O_INT("--threads", (p), 0, 1024)

/* Progress line on stderr, only when stderr is a terminal. Pass as the
 * library's lb_progress_fn with user = command name. */
void cli_progress(int64_t done, int64_t total, const char *what, void *user);
void cli_progress_end(void);

/* ---- files (tools/cli_files.c)
 * Inputs must be regular files (a FIFO or a device is refused, never read),
 * or folders where dir_ok. Prints "lowbit CMD: OPT PATH: problem", returns 1. */
int cli_input(const char *cmd, const char *opt, const char *path, bool dir_ok);
/* Checks an output before any work: refused when it is (or resolves to,
 * through links) one of the inputs (NULL entries skipped) or an existing file
 * inside an input folder; refused when it exists unless force. Removes stale
 * temporaries of earlier killed runs and registers this run's temporary name
 * (lb_temp_path) so SIGINT/SIGTERM removes it. Prints and returns 1 when refused. */
int cli_output(const char *cmd, const char *opt, const char *path, bool force, const char *const *inputs,
               int n_inputs);
/* Registers one more temporary path for removal on SIGINT/SIGTERM. */
void cli_temp_register(const char *tmp);
/* Installs the SIGINT/SIGTERM handler (removes the registered temporaries,
 * then dies of the signal). Called once by main. */
void cli_signals_init(void);
/* Removes a file, or a folder and the files in it (async-signal-safe). */
void cli_remove_tree(const char *path);

/* Atomic write of head then body (temporary file + rename, so a failure
 * leaves no partial file); prints and returns 1 on error. */
int cli_write_atomic(const char *cmd, const char *path, const void *head, size_t hn, const void *body, size_t bn);

/* Read a whole regular file (raw float32 tensors, texts); returns NULL and
 * prints on error. The size comes from the file system, so a device or a
 * FIFO is refused rather than read without end. */
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
/* KV cache (cmd_kv.c): `lowbit kv`, `lowbit eval kv` */
int cmd_kv(int argc, char **argv);
int cmd_eval_kv(int argc, char **argv);
/* Load a model and its tokenizer (found beside the model when tok_path is
 * NULL) and check that the vocabularies agree; prints and returns 1 on error. */
int cli_load_model_tok(const char *cmd, const char *model_path, const char *tok_path, lb_model **m, lb_tokenizer **t);
/* Offset of the first byte that is not strict UTF-8, or len when valid. */
size_t cli_utf8_check(const unsigned char *s, size_t len);
/* --act FORMAT of quantize/run/eval (NULL: leave the model's own): sets the
 * activation format of m (lb_model_set_act) and notes on stderr how many
 * linears keep FP32 inputs. Prints and returns 1 on a bad name. */
int cli_set_act(const char *cmd, lb_model *m, const char *act);
/* The stderr note for linears that keep FP32 inputs under --act (none when kept is 0). */
void cli_act_kept_note(const char *cmd, const char *act, int64_t kept);
/* lossless (cmd_pack.c) */
int cmd_pack(int argc, char **argv);
int cmd_unpack(int argc, char **argv);
/* sparsity (cmd_prune.c) */
int cmd_prune(int argc, char **argv);
/* The summary of a pruning run (text or JSON), as lowbit prune prints it. */
void cli_prune_print(const lb_prune_report *r, const char *out, const lb_prune_opts *p, bool json);
/* "CRITERION:PATTERN[:RATIO]" (lowbit quantize --prune) into p's criterion,
 * pattern (pointing into buf) and ratio; prints and returns 1 on error. */
int cli_prune_spec(const char *cmd, const char *spec, char *buf, size_t cap, lb_prune_opts *p);
/* quant (cmd_quantize.c, cmd_bench_quant.c: `lowbit bench quant`) */
int cmd_quantize(int argc, char **argv);
int bench_quant(int argc, char **argv);

/* calibration (cmd_calib.c): `lowbit calib`, and the calibration tokens of
 * a text that `lowbit quantize --calib-text` takes the same way */
int cmd_calib(int argc, char **argv);
typedef struct cli_calib_text {
    int32_t *tokens;            /* (n_tokens), malloc'd; each ctx-th token (from 0) replaced by BOS */
    int64_t n_tokens;
    int64_t begin, end;         /* the bytes [begin, end) of the file the tokens were taken from */
    int64_t file_bytes;
    int64_t tokens_before;      /* tokens of bytes [0, begin) (with BOS): evaluation up to this many stays clear */
} cli_calib_text;
/* want tokens from the file's tail (from_byte < 0) or from the first line
 * start at or after from_byte; prints ("lowbit CMD: OPT PATH: ...") and
 * returns 1 when the text is unreadable, not UTF-8 or too short. */
int cli_calib_text_tokens(const char *cmd, const char *opt, const char *path, const lb_tokenizer *t, int64_t want,
                          int64_t ctx, int64_t from_byte, cli_calib_text *out);
void cli_calib_text_print(FILE *f, const char *path, const cli_calib_text *c, int64_t ctx);

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
/* tools/cmd_bench_act.c: `lowbit bench act`, weight x activation x rotation */
int bench_act(int argc, char **argv);

/* ---- shared by the model benches (tools/cmd_bench.c; bench quant, bench act) */
/* "a,b,c" copied into buf and split in place: up to cap pointers into buf. */
int bench_split_list(const char *s, const char **out, int cap, char *buf, size_t bufcap);
typedef struct bench_base_opts {
    const char *model, *text, *dir;   /* model name for the file, the text scored, the output folder */
    int64_t ctx, chunks;
    int threads;
} bench_base_opts;
typedef struct bench_base {
    int32_t *tok;               /* (n) the text's tokens with BOS, malloc'd */
    int64_t n;
    double ppl;                 /* the unquantized model's perplexity on ctx x chunks */
    char path[1024];            /* DIR/base.logprobs: its log-probabilities, lb_eval_kld's base (caller removes it) */
} bench_base;
/* Tokenize the text, score m and save its log-probabilities (the path and
 * its temporary registered for removal when interrupted); prints, returns 1. */
int bench_make_base(const char *cmd, const lb_model *m, const lb_tokenizer *t, const bench_base_opts *o,
                    bench_base *b);
typedef struct bench_calib_opts {
    const char *path;           /* calibration text: tokens from its tail */
    int64_t tokens, ctx;
    int threads;
    bool scored_text;           /* path is also the scored text: refuse when the tail reaches its first `scored` tokens */
    int64_t scored;
} bench_calib_opts;
/* Calibration tokens (ct, printed on stderr) and their statistics (*out),
 * collected once for every method of a bench; prints and returns 1. */
int bench_calib(const char *cmd, const lb_model *m, const lb_tokenizer *t, const bench_calib_opts *o,
                cli_calib_text *ct, lb_calib **out);
/* DIR/NAME written atomically (cli_write_atomic) with what fn prints. */
typedef void (*bench_writer)(FILE *f, const void *ctx);
int bench_write(const char *cmd, const char *dir, const char *name, bench_writer fn, const void *ctx);
/* s as a JSON string (quoted, escaped). */
void bench_json_str(FILE *f, const char *s);
/* SVG plots: the header and white background, a palette, and a log10 y axis
 * from 10^e0 (at ybot) to 10^e1 (at ytop) with a grid line per decade over [x0, x1]. */
extern const char *const bench_svg_colors[10];
void bench_svg_begin(FILE *f, double w, double h);
typedef struct bench_svg_axis { double x0, x1, ytop, ybot, e0, e1; } bench_svg_axis;
double bench_svg_logy(const bench_svg_axis *a, double v);
void bench_svg_log_grid(FILE *f, const bench_svg_axis *a);
void bench_svg_ylabel(FILE *f, const bench_svg_axis *a, const char *label);

#endif
