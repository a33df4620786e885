/* study_formats.c: `lowbit bench formats`, the formats study. The study
 * itself (data sets, QSNR cells, findings, reports) is the library's
 * lb_formats_study_run (src/eval/formats_study*.c, docs/formats-study.md);
 * this file parses the options, runs it and prints the markdown on stdout
 * (or JSON with --json); with --out DIR it also writes the files
 * DIR/formats-study.{md,json,svg}, each atomically. */
#include "cli.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *CMD = "bench formats";

/* --help: what the study measures and the options. */
static int help(void)
{
    printf("usage: lowbit bench formats [--out DIR] [--json] [--quick] [--seed S]\n"
           "QSNR (dB) of every format of 'lowbit formats' (floor scale rule; MX formats also with the\n"
           "MSE rule) on Gaussian, Laplace and Student-t (nu = 3) data, on data with 2 outlier\n"
           "columns at crest factors (max|x| / rms) 2, 5, 10, 20, 50, 100, and on the linear\n"
           "weights of the models in LOWBIT_MODELS (stories260K, tinystories-656k; skipped when\n"
           "absent), each without rotation and with a randomized Hadamard of block 16, 32, 128.\n"
           "Prints markdown (JSON with --json) with findings on the published claims;\n"
           "--out DIR also writes DIR/formats-study.md, .json and .svg. Synthetic data: 256 x 4096\n"
           "(--quick: 32 x 4096, 17 formats, crest 2, 10, 100, only stories260K). Seed S (default 1) seeds the data.\n");
    return 0;
}

/* The library's warnings (a skipped model) go to stderr under the command's name. */
static void log_warn(lb_log_level level, const char *msg, void *user)
{
    if (level >= LB_LOG_WARN) fprintf(stderr, "lowbit %s: %s\n", CMD, msg);
}

/* Print the markdown (or the JSON) and write all three reports into dir. */
static int write_outputs(const lb_formats_study *s, const char *dir, bool json)
{
    static const char *ext[] = {"md", "json", "svg"};
    static const lb_report_kind kinds[] = {LB_REPORT_MARKDOWN, LB_REPORT_JSON, LB_REPORT_SVG};
    if (dir && mkdir(dir, 0777) != 0 && errno != EEXIST)
        return cli_fail(CMD, "%s: cannot create: %s", dir, strerror(errno));
    int rc = 0;
    for (int k = 0; k < 3 && !rc; k++) {
        char *buf = NULL;
        size_t len = 0;
        lb_status st = lb_formats_study_report(s, kinds[k], &buf, &len);
        if (st) return cli_fail_status(CMD, st);
        if (k == (json ? 1 : 0)) fputs(buf, stdout);
        if (dir) {
            char path[4096];
            snprintf(path, sizeof path, "%s/formats-study.%s", dir, ext[k]);
            rc = cli_write_atomic(CMD, path, NULL, 0, buf, len);
        }
        free(buf);
    }
    return rc;
}

/* `lowbit bench formats [--out DIR] [--json] [--quick] [--seed S]` */
int bench_formats(int argc, char **argv)
{
    const char *out = NULL;
    bool json = false, quick = false;
    int64_t seed = 1;
    const cli_optdef defs[] = {CLI_O_FLAG("--json", &json), CLI_O_FLAG("--quick", &quick), CLI_O_PATH("--out", &out),
                               CLI_O_INT("--seed", &seed, 0, INT64_C(1) << 40), {0}};
    int prc = cli_parse(CMD, argc, argv, defs, NULL, 0, NULL);
    if (prc < 0) return help();
    if (prc) return prc;
    char command[256];
    snprintf(command, sizeof command, "lowbit bench formats%s --seed %llu", quick ? " --quick" : "",
             (unsigned long long)seed);
    lb_formats_study_opts o = {.rows = quick ? 32 : 256, .cols = 4096, .seed = (uint64_t)seed, .quick = quick,
                               .models_dir = cli_models_dir(), .command = command, .progress = cli_progress,
                               .progress_user = (void *)"lowbit bench formats"};
    fprintf(stderr, "lowbit %s: seed %llu, synthetic %lld x %lld, Hadamard sign seed %d\n", CMD,
            (unsigned long long)o.seed, (long long)o.rows, (long long)o.cols, LB_FORMATS_STUDY_SIGN_SEED);
    lb_formats_study *s = NULL;
    lb_set_log(log_warn, NULL);
    lb_status st = lb_formats_study_run(&o, &s);
    lb_set_log(NULL, NULL);
    cli_progress_end();
    int rc = st ? cli_fail_status(CMD, st) : write_outputs(s, out, json);
    lb_formats_study_free(s);
    return rc;
}
