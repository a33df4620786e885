/* cmd_bench.c: `lowbit bench <name>`: a small dispatcher over the sub-benches
 * (studies that measure and write reports). Adding one is one row in the
 * table below and its function in tools/study_<name>.c or
 * tools/cmd_bench_<name>.c, declared in cli.h.
 * Below the table: the pieces the model benches (bench quant, bench act)
 * share: the unquantized model's saved log-probabilities (the KL divergence
 * base), calibration statistics collected once, report files written
 * atomically, and the SVG frame with a log10 axis. */
#include "cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_command benches[] = {
    {"formats", "QSNR of every number format on synthetic data and real weights, with and without Hadamard",
     bench_formats},
    {"quant", "quantization methods x formats on a model: bits, size, PPL, KL divergence, layer error, speed",
     bench_quant},
    {"act", "weight format x activation format x rotation (none, smoothquant, hadamard, stamp, dartquant, quarot): "
            "KL divergence, top-1, PPL", bench_act},
};
static const int n_benches = (int)(sizeof benches / sizeof *benches);

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: lowbit bench <name> [options]   (lowbit bench <name> --help for details)\n\nbenches:\n");
    for (int i = 0; i < n_benches; i++) fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].summary);
}

int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) { bench_usage(argc < 2 ? stderr : stdout); return argc < 2 ? 1 : 0; }
    for (int i = 0; i < n_benches; i++)
        if (!strcmp(benches[i].name, argv[1])) return benches[i].fn(argc - 1, argv + 1);
    return cli_fail("bench", "unknown bench '%s' (see 'lowbit bench --help')", argv[1]);
}

/* ------------------------------------------------ shared by the model benches */

int bench_split_list(const char *s, const char **out, int cap, char *buf, size_t bufcap)
{
    snprintf(buf, bufcap, "%s", s);
    int n = 0;
    for (char *t = strtok(buf, ","); t && n < cap; t = strtok(NULL, ",")) out[n++] = t;
    return n;
}

int bench_make_base(const char *cmd, const lb_model *m, const lb_tokenizer *t, const bench_base_opts *o,
                    bench_base *b)
{
    char tmp[1200];
    snprintf(b->path, sizeof b->path, "%s/base.logprobs", o->dir);
    cli_temp_register(b->path);
    if (!lb_temp_path(b->path, (long)getpid(), tmp, sizeof tmp)) cli_temp_register(tmp);
    size_t len;
    char *text = cli_read_all(cmd, o->text, &len);
    if (!text) return 1;
    lb_status s = lb_tokenizer_encode(t, text, len, 1, &b->tok, &b->n);
    free(text);
    if (s) return cli_fail_status(cmd, s);
    lb_ppl_opts po = {.ctx = o->ctx, .max_chunks = o->chunks, .n_threads = o->threads, .bos = lb_tokenizer_bos(t),
                      .save_path = b->path, .model_name = o->model};
    lb_ppl_result pr;
    s = lb_eval_ppl(m, b->tok, b->n, &po, &pr);
    if (s) return cli_fail_status(cmd, s);
    b->ppl = pr.ppl;
    return 0;
}

int bench_calib(const char *cmd, const lb_model *m, const lb_tokenizer *t, const bench_calib_opts *o,
                cli_calib_text *ct, lb_calib **out)
{
    if (cli_calib_text_tokens(cmd, "--calib-text", o->path, t, o->tokens, o->ctx, -1, ct)) return 1;
    cli_calib_text_print(stderr, o->path, ct, o->ctx);
    if (o->scored_text && ct->tokens_before < o->scored)
        return cli_fail(cmd, "--text %s: the calibration tokens (the last %lld) overlap the %lld scored ones; "
                        "use fewer --chunks or --calib-tokens, or another --calib-text", o->path,
                        (long long)ct->n_tokens, (long long)o->scored);
    lb_calib_opts co = {.ctx = o->ctx, .n_threads = o->threads, .text = o->path, .text_begin = ct->begin,
                        .text_end = ct->end};
    lb_status s = lb_calib_collect(m, ct->tokens, ct->n_tokens, &co, out);
    return s ? cli_fail_status(cmd, s) : 0;
}

int bench_write(const char *cmd, const char *dir, const char *name, bench_writer fn, const void *ctx)
{
    char path[1100], *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cli_fail(cmd, "%s: out of memory", path);
    fn(f, ctx);
    int rc = fclose(f) ? cli_fail(cmd, "%s: out of memory", path) : cli_write_atomic(cmd, path, buf, len, NULL, 0);
    free(buf);
    return rc;
}

void bench_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

const char *const bench_svg_colors[10] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
                                          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

void bench_svg_begin(FILE *f, double w, double h)
{
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
               "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", w, h);
}

double bench_svg_logy(const bench_svg_axis *a, double v)
{
    return a->ybot - (log10(v) - a->e0) / (a->e1 - a->e0) * (a->ybot - a->ytop);
}

void bench_svg_log_grid(FILE *f, const bench_svg_axis *a)
{
    for (double e = a->e0; e <= a->e1; e++) {
        double y = bench_svg_logy(a, pow(10, e));
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", a->x0, a->x1, y, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%g</text>\n", a->x0 - 4, y + 4, e);
    }
}

void bench_svg_ylabel(FILE *f, const bench_svg_axis *a, const char *label)
{
    fprintf(f, "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
            (a->ytop + a->ybot) / 2, label);
}
