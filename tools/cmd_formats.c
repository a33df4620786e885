/* cmd_formats.c: `lowbit formats` (the registry) and `lowbit tensor`
 * (quantize / dequantize / error of raw float32 tensors). */
#include "cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int formats_help(void)
{
    printf("usage: lowbit formats [--json]\n"
           "Lists every number format: name, storage bits per weight, block size (\"row\" = one scale\n"
           "per row) and whether it carries an FP32 per-tensor scale. See docs/formats.md.\n");
    return 0;
}

int cmd_formats(int argc, char **argv)
{
    bool json = false;
    const cli_optdef defs[] = {CLI_O_FLAG("--json", &json), {0}};
    int rc = cli_parse("formats", argc, argv, defs, NULL, 0, NULL);
    if (rc) return rc < 0 ? formats_help() : rc;
    if (json) printf("{\"formats\": [");
    else printf("%-20s %8s %6s %6s  %s\n", "name", "bits/w", "block", "tensor", "description");
    for (int i = 0; i < lb_format_count(); i++) {
        const lb_format *f = lb_format_at(i);
        int64_t b = lb_format_block(f);
        if (json)
            printf("%s\n  {\"name\": \"%s\", \"bits_per_weight\": %.6g, \"block\": %lld, \"tensor_scale\": %s, "
                   "\"description\": \"%s\"}", i ? "," : "", lb_format_name(f), lb_format_bits_per_weight(f),
                   (long long)b, lb_format_uses_tensor_scale(f) ? "true" : "false", lb_format_describe(f));
        else {
            char bs[24];
            if (b) snprintf(bs, sizeof bs, "%lld", (long long)b); else snprintf(bs, sizeof bs, "row");
            printf("%-20s %8.4g %6s %6s  %s\n", lb_format_name(f), lb_format_bits_per_weight(f), bs,
                   lb_format_uses_tensor_scale(f) ? "fp32" : "-", lb_format_describe(f));
        }
    }
    if (json) printf("\n]}\n");
    return 0;
}

/* Options of `lowbit tensor`. The --hadamard stage lives in
 * tools/tensor_hadamard.c. */
typedef struct tensor_opts {
    const char *format, *rule;
    int64_t cols;
    int64_t hadamard;        /* --hadamard N: rotation block, 0 = none (tools/tensor_hadamard.c) */
    int64_t hadamard_seed;
    bool hadamard_seeded;
    bool json, force;
    const char *pos[2];
    int n_pos;
} tensor_opts;

static int tensor_help(void)
{
    printf("usage: lowbit tensor quantize   --format F [--scale-rule floor|ceil|mse|full] [--cols N] [--hadamard B] [--force] IN OUT\n"
           "       lowbit tensor dequantize --format F [--hadamard B] [--force] IN OUT\n"
           "       lowbit tensor error      --format F [--scale-rule R] [--cols N] [--hadamard B] IN [--json]\n"
           "IN of quantize/error is raw little-endian float32; --cols N splits it into rows of N\n"
           "values (default: one row). quantize writes a packed tensor file (64-byte LBFQ header,\n"
           "then the packed rows, see docs/formats.md); dequantize writes float32 back. error\n"
           "prints the MSE, QSNR in dB and max |error| of quantize + dequantize.\n"
           "--hadamard B rotates each row's blocks of B values with an orthonormal Hadamard\n"
           "(B a supported order dividing the row length; --hadamard-seed S adds random signs)\n"
           "before quantizing; the file header records it and dequantize undoes it by itself\n"
           "(a --hadamard given there must match); error measures the whole round trip against\n"
           "the original values.\n"
           "OUT must not be IN; an existing OUT is replaced only with --force.\n"
           "       lowbit tensor sample [--cols N] [--hadamard-seed S] [--force] OUT\n"
           "sample writes N (default 4096) Gaussian float32 values, sigma 0.02, seeded (S, default 1): a\n"
           "test IN. From numpy: x.astype('<f4').tofile('w.f32').\n"
           "Formats: lowbit formats.\n");
    return 0;
}

static int parse_tensor_opts(const char *cmd, int argc, char **argv, tensor_opts *o)
{
    memset(o, 0, sizeof *o);
    int seeded = 0;
    const cli_optdef defs[] = {
        CLI_O_STR("--format", &o->format), CLI_O_STR("--scale-rule", &o->rule),
        CLI_O_INT("--cols", &o->cols, 1, INT64_C(1) << 40), CLI_O_INT("--hadamard", &o->hadamard, 1, LB_HADAMARD_MAX_BLOCK),
        {.name = "--hadamard-seed", .kind = CLI_INT, .dst = &o->hadamard_seed, .ilo = 0, .ihi = INT64_MAX, .seen = &seeded},
        CLI_O_FLAG("--force", &o->force), CLI_O_FLAG("--json", &o->json), {0}};
    int rc = cli_parse(cmd, argc, argv, defs, o->pos, 2, &o->n_pos);
    if (rc < 0) return tensor_help(), -1;
    o->hadamard_seeded = seeded > 0;
    return rc;
}

static int pick(const tensor_opts *o, const lb_format **f, lb_quant_opts *q)
{
    if (!o->format) return cli_fail("tensor", "--format is required (see 'lowbit formats')");
    *f = lb_format_find(o->format);
    if (!*f) return cli_fail("tensor", "unknown format '%s' (see 'lowbit formats')", o->format);
    q->scale_rule = LB_SCALE_FLOOR;
    if (o->rule) {
        if (!strcmp(o->rule, "floor")) q->scale_rule = LB_SCALE_FLOOR;
        else if (!strcmp(o->rule, "ceil")) q->scale_rule = LB_SCALE_CEIL;
        else if (!strcmp(o->rule, "mse")) q->scale_rule = LB_SCALE_MSE;
        else if (!strcmp(o->rule, "full")) q->scale_rule = LB_SCALE_FULL;
        else return cli_fail("tensor", "unknown scale rule '%s' (floor, ceil, mse or full)", o->rule);
    }
    return 0;
}

static const char *json_num(char buf[32], double v)
{
    if (isfinite(v)) snprintf(buf, 32, "%.9g", v);
    else snprintf(buf, 32, "null");
    return buf;
}

/* error --hadamard: the round trip through the rotation, measured against x. */
static int tensor_hadamard_error(const tensor_opts *o, const lb_format *f, const lb_quant_opts *q, const float *x,
                                 int64_t rows, int64_t cols, lb_quant_error *e)
{
    if (cli_hadamard_check("tensor", o->hadamard, cols)) return 1;
    int8_t *signs = cli_hadamard_signs(o->hadamard_seeded, (uint64_t)o->hadamard_seed, cols);
    float *y = malloc((size_t)(rows * cols) * sizeof *y);
    lb_status s = y && (signs || !o->hadamard_seeded) ? lb_format_roundtrip(f, q, x, rows, cols, o->hadamard, signs, y)
                                                      : LB_ERR_NOMEM;
    if (!s) lb_quant_error_between(x, y, rows * cols, e);
    free(y);
    free(signs);
    return s ? cli_fail_status("tensor", s) : 0;
}

static int tensor_error(const tensor_opts *o, const lb_format *f, const lb_quant_opts *q)
{
    size_t size = 0;
    float *x = cli_read_all("tensor", o->pos[0], &size);
    if (!x) return 1;
    int64_t n = (int64_t)(size / 4), cols = o->cols ? o->cols : n;
    int rc = 0;
    if (size % 4 || n == 0) rc = cli_fail("tensor", "%s: size %zu bytes is not a positive multiple of 4 (raw float32 expected)",
                                          o->pos[0], size);
    else if (n % cols) rc = cli_fail("tensor", "%s: %lld values do not split into rows of %lld", o->pos[0], (long long)n,
                                     (long long)cols);
    else if (lb_format_block(f) && cols % lb_format_block(f))
        rc = cli_fail("tensor", "%s: row length %lld is not a multiple of the %s block size %lld", o->pos[0],
                      (long long)cols, lb_format_name(f), (long long)lb_format_block(f));
    lb_quant_error e;
    lb_status s = LB_OK;
    if (!rc && o->hadamard) rc = tensor_hadamard_error(o, f, q, x, n / cols, cols, &e);
    else if (!rc) s = lb_format_error(f, q, x, n / cols, cols, &e);
    free(x);
    if (rc) return rc;
    if (s) return cli_fail_status("tensor", s);
    if (o->json) {   /* JSON has no Inf/NaN: a lossless QSNR (+inf) or a NaN input prints null */
        char a[32], b[32], c[32];
        printf("{\"format\": \"%s\", \"values\": %lld, ", lb_format_name(f), (long long)n);
        if (o->hadamard) printf("\"hadamard\": %lld, ", (long long)o->hadamard);
        printf("\"mse\": %s, \"qsnr_db\": %s, \"max_abs_err\": %s}\n", json_num(a, e.mse), json_num(b, e.qsnr_db),
               json_num(c, e.max_abs));
    } else {
        printf("format:      %s\nvalues:      %lld\n", lb_format_name(f), (long long)n);
        if (o->hadamard) printf("hadamard:    %lld\n", (long long)o->hadamard);
        printf("mse:         %.6g\nqsnr:        %.3f dB\nmax abs err: %.6g\n", e.mse, e.qsnr_db, e.max_abs);
    }
    return 0;
}

/* `tensor sample`: seeded Gaussian values (sigma 0.02, splitmix64 + Box-Muller), a test input. */
static int tensor_sample(const tensor_opts *o)
{
    if (o->n_pos != 1 || o->format || o->rule || o->hadamard)
        return cli_fail("tensor sample", "takes OUT, --cols N and --hadamard-seed S only (see lowbit tensor --help)");
    if (cli_output("tensor sample", "OUT", o->pos[0], o->force, NULL, 0)) return 1;
    int64_t n = o->cols ? o->cols : 4096;
    if (n > (INT64_C(1) << 30)) return cli_fail("tensor sample", "--cols %lld: at most 2^30 values", (long long)n);
    float *x = malloc((size_t)n * sizeof *x);
    if (!x) return cli_fail("tensor sample", "out of memory");
    uint64_t st = o->hadamard_seeded ? (uint64_t)o->hadamard_seed : 1;
    for (int64_t i = 0; i < n; i++) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            uint64_t z = (st += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            u[k] = ((double)((z ^ (z >> 31)) >> 11) + 0.5) / 9007199254740992.0;
        }
        x[i] = (float)(0.02 * sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]));
    }
    int rc = cli_write_atomic("tensor sample", o->pos[0], NULL, 0, x, (size_t)n * sizeof *x);
    free(x);
    return rc;
}

int cmd_tensor(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) { tensor_help(); return argc < 2 ? 1 : 0; }
    const char *sub = argv[1];
    tensor_opts o;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "tensor %.16s", sub);
    int rc = parse_tensor_opts(cmd, argc - 1, argv + 1, &o);
    if (rc) return rc < 0 ? 0 : rc;
    if (!strcmp(sub, "sample")) return tensor_sample(&o);
    const lb_format *f = NULL;
    lb_quant_opts q;
    bool is_q = !strcmp(sub, "quantize"), is_d = !strcmp(sub, "dequantize"), is_e = !strcmp(sub, "error");
    if (!is_q && !is_d && !is_e) return cli_fail("tensor", "'%s': unknown tensor command (quantize, dequantize, error, sample)", sub);
    if ((rc = pick(&o, &f, &q))) return rc;
    int want = is_e ? 1 : 2;
    if (o.n_pos != want) return cli_fail("tensor", "%s needs %s (see 'lowbit tensor --help')", sub, is_e ? "IN" : "IN and OUT");
    if (o.hadamard_seeded && !o.hadamard) return cli_fail("tensor", "--hadamard-seed needs --hadamard N");
    if (cli_input("tensor", "IN", o.pos[0], false)) return 1;
    if (is_e) return tensor_error(&o, f, &q);
    if (cli_output("tensor", "OUT", o.pos[1], o.force, o.pos, 1)) return 1;
    if (is_d && (o.rule || o.cols)) return cli_fail("tensor", "dequantize takes no --scale-rule or --cols (the file has them)");
    if (is_d) return tensor_dequantize("tensor", f, o.pos[0], o.hadamard, o.hadamard_seeded,
                                       (uint64_t)o.hadamard_seed, o.pos[1]);
    if (o.hadamard) return tensor_hadamard_quantize("tensor", f, &q, o.pos[0], o.cols, o.hadamard, o.hadamard_seeded,
                                                    (uint64_t)o.hadamard_seed, o.pos[1]);
    lb_status s = lb_format_quantize_file(f, &q, o.pos[0], o.cols, o.pos[1]);
    return s ? cli_fail_status("tensor", s) : 0;
}
