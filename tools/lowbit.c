/* lowbit.c: the command-line tool. `lowbit <command> [options]`; every
 * command answers --help. Commands live in cmd_*.c beside this file and are
 * listed once in the table below. */
#include "cli.h"
#include <string.h>

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_info(int argc, char **argv);
/* tokenizers (cmd_tokenize.c) */
extern int cmd_tokenize(int argc, char **argv);

static const cli_command commands[] = {
    {"help", "list commands, or show one command's help", cmd_help},
    {"version", "print the version", cmd_version},
    {"info", "show the CPU paths and thread count lowbit will use", cmd_info},
    {"inspect", "show what a model file or folder holds (format, config, tensors)", cmd_inspect},
    {"synth", "write a model folder with seeded random weights (benchmark sizes)", cmd_synth},
    {"hadamard", "Hadamard plans for dimensions; apply the transform to a raw float32 file", cmd_hadamard},
    {"tokenize", "text to token ids (or --decode ids to text) with a model's tokenizer", cmd_tokenize},
    {"formats", "list the number formats (bits/weight, block size)", cmd_formats},
    {"tensor", "quantize / dequantize a raw float32 tensor, or measure its error", cmd_tensor},
    {"run", "generate text with a model", cmd_run},
    {"eval", "perplexity and KL divergence against a saved baseline", cmd_eval},
    {"kv", "list the KV-cache policies (--list) or check a SPEC (docs/kv.md)", cmd_kv},
    {"pack", "pack a model losslessly (BF16 exponents Huffman-coded, ~0.67 of BF16)", cmd_pack},
    {"unpack", "restore a packed model to BF16 safetensors", cmd_unpack},
    {"calib", "collect a model's linear-input statistics (H = mean x x^T, mean x^2, ...) on a text", cmd_calib},
    {"quantize", "quantize a model's linear weights (rtn, sinq, hadamard+*) into a block format", cmd_quantize},
    {"prune", "prune a model's linear weights (magnitude, wanda, sparsegpt; unstructured, N:M, V:N:M), stored sparse", cmd_prune},
    {"bench", "studies with reports: 'bench formats' (QSNR of every format), 'bench quant' (methods x formats on a model), "
              "'bench act' (weight x activation formats x rotations)", cmd_bench},
};
static const int n_commands = (int)(sizeof commands / sizeof *commands);

static const cli_command *find(const char *name)
{
    for (int i = 0; i < n_commands; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "lowbit %s: smaller, faster transformer inference on CPUs\n\n"
               "usage: lowbit <command> [options]   (lowbit <command> --help for details; lowbit --version)\n\n"
               "Common options: --threads K (0 = all cores, the default), --force (replace an existing\n"
               "output; an output that is one of the inputs is always refused), --json.\n\ncommands:\n",
            lb_version());
    for (int i = 0; i < n_commands; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nenvironment: LOWBIT_ISA=ref|avx2|avx512 forces a kernel path; "
               "LOWBIT_MODELS / LOWBIT_DATA locate shared models and data.\n");
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) { usage(stdout); return 0; }
    const cli_command *c = find(argv[1]);
    if (!c) return cli_fail("help", "unknown command '%s' (see 'lowbit help')", argv[1]);
    char *args[] = {argv[1], "--help", NULL};
    return c->fn(2, args);
}

static int cmd_version(int argc, char **argv)
{
    int rc = cli_parse("version", argc, argv, (const cli_optdef[]){{0}}, NULL, 0, NULL);
    if (rc < 0) { printf("usage: lowbit version (or lowbit --version)\nPrints the lowbit version.\n"); return 0; }
    if (rc) return rc;
    printf("lowbit %s\n", lb_version());
    return 0;
}

static int cmd_info(int argc, char **argv)
{
    bool json = false;
    const cli_optdef defs[] = {CLI_O_FLAG("--json", &json), {0}};
    int rc = cli_parse("info", argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) {
        printf("usage: lowbit info [--json]\nShows the best instruction set of this CPU, the one in use "
               "(LOWBIT_ISA overrides) and the default thread count.\n");
        return 0;
    }
    if (rc) return rc;
    lb_pool *p = NULL;
    lb_status s = lb_pool_create(0, &p);
    if (s) return cli_fail_status("info", s);
    int nt = lb_pool_threads(p);
    lb_pool_free(p);
    if (json)
        printf("{\"version\": \"%s\", \"isa_best\": \"%s\", \"isa_active\": \"%s\", \"threads\": %d}\n",
               lb_version(), lb_isa_name(lb_isa_best()), lb_isa_name(lb_isa_active()), nt);
    else
        printf("lowbit %s\nisa best:   %s\nisa active: %s\nthreads:    %d\n", lb_version(),
               lb_isa_name(lb_isa_best()), lb_isa_name(lb_isa_active()), nt);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) { usage(argc < 2 ? stderr : stdout); return argc < 2 ? 2 : 0; }
    if (!strcmp(argv[1], "--version")) return cmd_version(1, argv + 1);
    cli_signals_init();
    const cli_command *c = find(argv[1]);
    if (!c) return cli_fail(argv[1], "unknown command (see 'lowbit help')");
    return c->fn(argc - 1, argv + 1);
}
