/* cmd_bench.c: `lowbit bench <name>`: a small dispatcher over the sub-benches
 * (studies that measure and write reports). Adding one is one row in the
 * table below and its function in tools/study_<name>.c, declared in cli.h. */
#include "cli.h"
#include <string.h>

static const cli_command benches[] = {
    {"formats", "QSNR of every number format on synthetic data and real weights, with and without Hadamard",
     bench_formats},
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
