/* cmd_inspect.c: `lowbit inspect FILE|DIR [--json]`: what a model file or
 * folder holds (format, config, tensors, metadata). */
#include "cli.h"
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: lowbit inspect FILE|DIR [--json]\n"
           "Shows what a model holds: its format, config and every tensor (name, dtype, shape, bytes, offset)\n"
           "with the files' metadata. FILE is a llama2.c .bin or any .safetensors file; DIR a Hugging Face\n"
           "model folder (config.json + model.safetensors or shards).\n"
           "  --json   one JSON object instead of text\n");
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) { help(); return 0; }
        if (cli_flag(argv[i], "--json")) json = true;
        else if (argv[i][0] == '-' && argv[i][1]) return cli_fail("inspect", "unknown option '%s'", argv[i]);
        else if (path) return cli_fail("inspect", "more than one path given ('%s')", argv[i]);
        else path = argv[i];
    }
    if (!path) return cli_fail("inspect", "no model path (usage: lowbit inspect FILE|DIR [--json])");
    char *text = NULL;
    lb_status s = lb_inspect(path, json, &text);
    if (s) return cli_fail_status("inspect", s);
    fputs(text, stdout);
    free(text);
    return 0;
}
