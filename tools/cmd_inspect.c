/* cmd_inspect.c: `lowbit inspect FILE|DIR [--json]`: what a model file or
 * folder holds (format, config, tensors, metadata). */
#include "cli.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    int n = 0;
    const cli_optdef defs[] = {CLI_O_FLAG("--json", &json), {0}};
    int rc = cli_parse("inspect", argc, argv, defs, &path, 1, &n);
    if (rc < 0) { help(); return 0; }
    if (rc) return rc;
    if (!path) return cli_fail("inspect", "no model path (usage: lowbit inspect FILE|DIR [--json])");
    if (cli_input("inspect", "path", path, true)) return 1;
    char *text = NULL;
    lb_status s = lb_inspect(path, json, &text);
    if (s) return cli_fail_status("inspect", s);
    fputs(text, stdout);
    free(text);
    /* A folder or a llama2.c file is meant as a model: exit non-zero (after
     * showing what it holds) when it would not load. A lone .safetensors
     * file may be any tensor file, so it is only shown. */
    struct stat st;
    size_t n_len = strlen(path);
    bool meant = (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) || (n_len > 4 && !strcmp(path + n_len - 4, ".bin"));
    lb_model *m = NULL;
    if (meant && (s = lb_model_load(path, &m)))
        return cli_fail("inspect", "%s: shown above, but it does not load as a model: %s", path, lb_errmsg());
    lb_model_free(m);
    return 0;
}
