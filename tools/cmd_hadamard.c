/* cmd_hadamard.c: `lowbit hadamard`: show the Hadamard plan for dimensions,
 * or apply the (randomized, block-diagonal) transform to a raw float32 file
 * so that results can be checked from outside (numpy, od). */
#include "cli.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *CMD = "hadamard";

static void help(void)
{
    printf("usage: lowbit hadamard --plan N[,N...] [--max-block B] [--json]\n"
           "       lowbit hadamard IN OUT --cols C [--block B] [--seed S] [--inverse] [--along rows|cols] [--force] [--json]\n\n"
           "--plan: for each dimension N, the block-diagonal Hadamard lowbit uses: the largest supported\n"
           "  order dividing N (and <= B): 2^k, or 2^k*m with m a Paley order (12, 20, 28, 36, 44, 60, 68,\n"
           "  76, 84, 108, 124, 132, 140, 148); 'exact' when one block covers N.\n"
           "IN OUT: IN is raw float32 (native byte order), rows of C values; OUT gets each row's blocks\n"
           "  transformed by R = blockdiag(T_B) D (orthonormal, T_B = H_m (x) H_2^k / sqrt(B)), D the\n"
           "  +-1 signs from --seed (none without it). --inverse applies R^T. --along cols transforms\n"
           "  along the column dimension instead (mixing rows; B must divide the row count).\n"
           "  --block 0 or none: the plan's block for C (or for the row count with --along cols).\n");
}

static int print_plans(const char *list, int64_t max_block, bool json)
{
    char *dup = strdup(list), *save = NULL;
    int rc = 0, k = 0;
    if (!dup) return cli_fail(CMD, "out of memory");
    if (json) printf("[");
    else printf("| n | block | m | 2^k | blocks | exact |\n|---:|---:|---:|---:|---:|:---|\n");
    for (char *tok = strtok_r(dup, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        int64_t n;
        lb_hadamard_plan p;
        char *end;
        errno = 0;
        long long v = strtoll(tok, &end, 10);
        if (errno || end == tok || *end || v < 1 || v > INT64_MAX / 2) {
            rc = cli_fail(CMD, "--plan %s: '%s' must be an integer in [1, %lld]", list, tok, (long long)(INT64_MAX / 2));
            break;
        }
        n = v;
        lb_status s = lb_hadamard_plan_for(n, max_block, &p);
        if (s) { rc = cli_fail_status(CMD, s); break; }
        if (json)
            printf("%s{\"n\": %lld, \"block\": %lld, \"m\": %lld, \"pow2\": %lld, \"n_blocks\": %lld, \"exact\": %s}",
                   k++ ? ", " : "", (long long)p.n, (long long)p.block, (long long)p.m, (long long)p.pow2,
                   (long long)p.n_blocks, p.exact ? "true" : "false");
        else
            printf("| %lld | %lld | %lld | %lld | %lld | %s |\n", (long long)p.n, (long long)p.block, (long long)p.m,
                   (long long)p.pow2, (long long)p.n_blocks, p.exact ? "yes" : "no");
    }
    if (json) printf("]\n");
    free(dup);
    return rc;
}

typedef struct apply_opts {
    const char *in, *out;
    int64_t cols, block;
    uint64_t seed;
    bool seeded, inverse, along_cols, json;
} apply_opts;

static int apply(const apply_opts *o)
{
    size_t size = 0;
    float *x = cli_read_all(CMD, o->in, &size);
    if (!x) return 1;
    int rc = 0;
    int64_t rows = (int64_t)(size / sizeof(float) / (size_t)o->cols);
    int64_t dim = o->along_cols ? rows : o->cols, block = o->block;
    int8_t *signs = NULL;
    if (size == 0 || size % (sizeof(float) * (size_t)o->cols)) {
        rc = cli_fail(CMD, "%s: %zu bytes is not a whole number of rows of %lld float32 values", o->in, size,
                      (long long)o->cols);
        goto done;
    }
    if (block == 0) {
        lb_hadamard_plan p;
        lb_status s = lb_hadamard_plan_for(dim, 0, &p);
        if (s) { rc = cli_fail_status(CMD, s); goto done; }
        block = p.block;
    }
    if (o->seeded) {
        signs = malloc((size_t)dim);
        if (!signs) { rc = cli_fail(CMD, "out of memory"); goto done; }
        lb_hadamard_signs(o->seed, dim, signs);
    }
    lb_status s = o->along_cols ? lb_hadamard_cols(x, rows, o->cols, block, signs, o->inverse)
                                : lb_hadamard_rows(x, rows, o->cols, block, signs, o->inverse);
    if (s) { rc = cli_fail_status(CMD, s); goto done; }
    if ((rc = cli_write_atomic(CMD, o->out, NULL, 0, x, size))) goto done;
    if (o->json) {
        char seed[32] = "null";
        if (o->seeded) snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
        printf("{\"rows\": %lld, \"cols\": %lld, \"along\": \"%s\", \"block\": %lld, \"inverse\": %s, \"seed\": %s}\n",
               (long long)rows, (long long)o->cols, o->along_cols ? "cols" : "rows", (long long)block,
               o->inverse ? "true" : "false", seed);
    } else
        printf("%s: %lld x %lld float32, %s along %s, block %lld%s -> %s\n", o->in, (long long)rows, (long long)o->cols,
               o->inverse ? "inverse Hadamard" : "Hadamard", o->along_cols ? "cols" : "rows", (long long)block,
               o->seeded ? " with random signs" : "", o->out);
done:
    free(signs);
    free(x);
    return rc;
}

int cmd_hadamard(int argc, char **argv)
{
    apply_opts o = {0};
    const char *plan = NULL, *pos[2] = {0};
    int64_t max_block = 0, seed = 0;
    int npos = 0, n_seed = 0, along = 0;
    bool force = false;
    const cli_optdef defs[] = {
        CLI_O_FLAG("--json", &o.json), CLI_O_FLAG("--inverse", &o.inverse), CLI_O_STR("--plan", &plan),
        CLI_O_INT("--max-block", &max_block, 0, LB_HADAMARD_MAX_BLOCK), CLI_O_INT("--cols", &o.cols, 1, INT64_MAX / 8),
        CLI_O_INT("--block", &o.block, 0, LB_HADAMARD_MAX_BLOCK),
        {.name = "--seed", .kind = CLI_INT, .dst = &seed, .ilo = 0, .ihi = INT64_MAX, .seen = &n_seed},
        CLI_O_CHOICE("--along", &along, "rows|cols"), CLI_O_FLAG("--force", &force), {0}};
    int rc = cli_parse(CMD, argc, argv, defs, pos, 2, &npos);
    if (rc < 0) { help(); return 0; }
    if (rc) return rc;
    o.seeded = n_seed > 0;
    o.along_cols = along == 1;
    if (plan) {
        if (npos) return cli_fail(CMD, "--plan takes no files");
        return print_plans(plan, max_block, o.json);
    }
    if (npos != 2) return cli_fail(CMD, "need IN and OUT files, or --plan N (usage: lowbit hadamard --help)");
    if (!o.cols) return cli_fail(CMD, "--cols C is required (values per row of IN)");
    o.in = pos[0], o.out = pos[1], o.seed = (uint64_t)seed;
    if (cli_input(CMD, "IN", o.in, false) || cli_output(CMD, "OUT", o.out, force, &o.in, 1)) return 1;
    return apply(&o);
}
