/* cmd_pack.c: `lowbit pack` and `lowbit unpack`, lossless BF16 model files
 * (src/lossless, docs/lossless.md, docs/file-format.md "lossless"). */
#include "cli.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void report(const char *cmd, const char *in, const char *out, const lb_lossless_report *r, double secs,
                   bool json)
{
    double ratio = r->bf16_bytes ? (double)r->packed_bytes / (double)r->bf16_bytes : 0;
    if (json) {
        printf("{\"command\": \"%s\", \"in\": ", cmd);
        json_str(in);
        printf(", \"out\": ");
        json_str(out);
        printf(", \"files\": %lld, \"tensors\": %lld, \"packed_tensors\": %lld, \"rounded_f32_tensors\": %lld, "
               "\"copied_tensors\": %lld, \"values\": %lld, \"bf16_bytes\": %llu, \"packed_bytes\": %llu, "
               "\"ratio_vs_bf16\": %.6f, \"in_bytes\": %llu, \"out_bytes\": %llu, \"seconds\": %.3f}\n",
               (long long)r->n_files, (long long)r->n_tensors, (long long)r->n_packed, (long long)r->n_rounded,
               (long long)r->n_copied, (long long)r->values, (unsigned long long)r->bf16_bytes,
               (unsigned long long)r->packed_bytes, ratio, (unsigned long long)r->in_bytes,
               (unsigned long long)r->out_bytes, secs);
        return;
    }
    printf("%s -> %s\n", in, out);
    printf("  tensors: %lld (%lld %s, %lld copied as they were)\n", (long long)r->n_tensors, (long long)r->n_packed,
           !strcmp(cmd, "pack") ? "packed" : "unpacked to BF16", (long long)r->n_copied);
    if (r->n_rounded)
        printf("  note: %lld F32 tensors were rounded to BF16 (round-to-nearest-even) before packing; "
               "unpack gives those BF16 values\n", (long long)r->n_rounded);
    printf("  values: %lld, as BF16 %llu bytes, packed %llu bytes (%.4f of BF16)\n", (long long)r->values,
           (unsigned long long)r->bf16_bytes, (unsigned long long)r->packed_bytes, ratio);
    printf("  files: %lld safetensors, %llu -> %llu bytes, %.2f s\n", (long long)r->n_files,
           (unsigned long long)r->in_bytes, (unsigned long long)r->out_bytes, secs);
}

static const char *usage_pack =
    "usage: lowbit pack --model IN --out OUT [--threads N] [--stream-len N] [--force] [--json]\n"
    "Packs a safetensors file (or a model folder: every *.safetensors packed, other files copied) losslessly:\n"
    "each BF16 tensor's exponents are Huffman-coded, sign and mantissa kept, ~0.67 of the BF16 size, bit-exact.\n"
    "F32 tensors are first rounded to BF16 (round-to-nearest-even; this is the only lossy step, and it is\n"
    "reported). F16 tensors are refused. Other dtypes are copied. 'lowbit unpack' restores BF16 safetensors.\n"
    "An existing OUT file is replaced only with --force; an existing OUT folder is always refused (a folder\n"
    "is written whole under a temporary name and renamed, which cannot replace a folder: remove it first).\n"
    "--threads 0 (the default) uses all cores.\n";
static const char *usage_unpack =
    "usage: lowbit unpack --model IN --out OUT [--threads N] [--force] [--json]\n"
    "Restores a file or folder written by 'lowbit pack' to plain BF16 safetensors (tensor bytes identical to a\n"
    "BF16 source; F32 sources come back as their BF16 rounding). Every stream's CRC-32C is checked.\n"
    "Existing outputs: as for pack (--force replaces a file, never a folder).\n";

static int run_cmd(int argc, char **argv, bool pack)
{
    const char *cmd = argv[0], *in = NULL, *out = NULL;
    bool json = false, force = false;
    int64_t threads = 0, sl = 0;
    cli_optdef defs[] = {
        CLI_O_PATH("--model", &in), CLI_O_PATH("--out", &out), CLI_THREADS(&threads), CLI_O_FLAG("--force", &force),
        CLI_O_FLAG("--json", &json), CLI_O_INT("--stream-len", &sl, 1, 1 << 24), {0}};
    if (!pack) defs[5] = (cli_optdef){0};   /* --stream-len is pack's */
    int rc = cli_parse(cmd, argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) { fputs(pack ? usage_pack : usage_unpack, stdout); return 0; }
    if (rc) return rc;
    if (!in || !out) return cli_fail(cmd, "--model and --out are required (see --help)");
    if (cli_input(cmd, "--model", in, true)) return 1;
    struct stat st;
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode) && force)
        return cli_fail(cmd, "--out %s: is a folder; --force replaces files only (remove the folder first)", out);
    if (cli_output(cmd, "--out", out, force, &in, 1)) return 1;
    lb_pool *pool = NULL;
    lb_status s = lb_pool_create((int)threads, &pool);
    if (s) return cli_fail_status(cmd, s);
    lb_lossless_report r;
    lb_bf16_pack_opts o = {.stream_len = sl};
    double t = lb_time_now();
    s = pack ? lb_lossless_pack_model(in, out, &o, pool, cli_progress, (void *)cmd, &r)
             : lb_lossless_unpack_model(in, out, pool, cli_progress, (void *)cmd, &r);
    cli_progress_end();
    lb_pool_free(pool);
    if (s) return cli_fail_status(cmd, s);
    report(cmd, in, out, &r, lb_time_now() - t, json);
    return 0;
}

int cmd_pack(int argc, char **argv) { return run_cmd(argc, argv, true); }
int cmd_unpack(int argc, char **argv) { return run_cmd(argc, argv, false); }
