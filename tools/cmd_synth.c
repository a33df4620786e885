/* cmd_synth.c: `lowbit synth`: write a Hugging Face model folder with seeded
 * random weights at a chosen size (or a preset), for benchmarks. */
#include "cli.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: lowbit synth --out DIR [--preset stories110m|llama-3.2-1b] [--arch llama|mistral|qwen2|qwen3]\n"
           "                    [--dim N] [--layers N] [--heads N] [--kv-heads N] [--head-dim N] [--hidden N]\n"
           "                    [--vocab N] [--max-seq N] [--rope-theta X] [--norm-eps X] [--tied|--untied]\n"
           "                    [--dtype f32|bf16|f16] [--seed S] [--std X] [--force] [--json]\n"
           "Writes DIR/config.json and DIR/model.safetensors with Gaussian weights (std 0.02 unless --std;\n"
           "norm weights 1), seeded so the same options give the same bytes. Options override the preset\n"
           "(--heads without --kv-heads sets both). A new DIR is written under a temporary name and renamed\n"
           "when complete; an existing DIR is refused unless --force, which replaces its two files. The free\n"
           "space is checked before writing;\n"
           "without one the sizes are stories110m's (dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000).\n"
           "llama-3.2-1b: dim 2048, 16 layers, 32 heads / 8 kv, hidden 8192, vocab 128256, rope_theta 500000,\n"
           "llama3 rope scaling (factor 32, low 1, high 4, original 8192), tied embeddings.\n");
}

/* Bytes of weights the options describe (norms and biases are a rounding error). */
static double weight_bytes(const lb_synth_opts *o)
{
    double hd = (double)(o->head_dim ? o->head_dim : o->dim / o->n_heads), d = (double)o->dim;
    double per_layer = d * hd * (double)(2 * o->n_heads + 2 * o->n_kv_heads) + 3 * d * (double)o->hidden_dim;
    double emb = (double)o->vocab_size * d * (o->tied_embeddings ? 1 : 2);
    return (per_layer * (double)o->n_layers + emb) * (o->dtype == LB_DTYPE_F32 ? 4 : 2);
}

/* Refuse before writing when the file system holding out cannot take the weights. */
static int check_space(const char *out, const lb_synth_opts *o)
{
    struct statvfs v;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) slash[slash == dir] = 0;
    else snprintf(dir, sizeof dir, ".");
    double need = weight_bytes(o);
    if (statvfs(dir, &v) == 0 && need > (double)v.f_bavail * (double)v.f_frsize)
        return cli_fail("synth", "--out %s: needs %.3g GB of weights but %.3g GB are free there (lower --dim, "
                        "--layers, --hidden or --vocab, or use --dtype bf16)", out, need / 1e9,
                        (double)v.f_bavail * (double)v.f_frsize / 1e9);
    return 0;
}

static int write_model(const char *out, bool force, const lb_synth_opts *o)
{
    struct stat st;
    bool exists = stat(out, &st) == 0;
    if (exists && !S_ISDIR(st.st_mode)) return cli_fail("synth", "--out %s: exists and is not a folder", out);
    if (cli_output("synth", "--out", out, force, NULL, 0) || check_space(out, o)) return 1;
    char tmp[4096], path[4096 + 32];
    lb_status s;
    if (exists) {   /* --force: the two files are replaced in place, each atomically */
        const char *names[] = {"model.safetensors", "config.json"};
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof path, "%s/%s", out, names[i]);
            if (!lb_temp_path(path, (long)getpid(), tmp, sizeof tmp)) cli_temp_register(tmp);
        }
        s = lb_synth_write(out, o, cli_progress, "synth");
        cli_progress_end();
        return s ? cli_fail_status("synth", s) : 0;
    }
    /* A new folder is made under its temporary name and renamed when whole. */
    if (lb_temp_path(out, (long)getpid(), tmp, sizeof tmp)) return cli_fail_status("synth", LB_ERR_ARG);
    s = lb_synth_write(tmp, o, cli_progress, "synth");
    cli_progress_end();
    if (!s && rename(tmp, out) != 0) {
        cli_remove_tree(tmp);
        return cli_fail("synth", "--out %s: cannot rename into place: %s", out, strerror(errno));
    }
    if (s) { cli_remove_tree(tmp); return cli_fail_status("synth", s); }
    return 0;
}

int cmd_synth(int argc, char **argv)
{
    const char *preset = NULL, *out = NULL, *arch = NULL;
    bool json = false, force = false, tied = false, untied = false;
    int dtype = -1, n_kv = 0;
    lb_synth_opts p, o;
    int64_t seed = -1, ints[8] = {0};
    double std = 0, theta = 0, eps = 0;
    const cli_optdef defs[] = {
        CLI_O_STR("--preset", &preset), CLI_O_PATH("--out", &out), CLI_O_STR("--arch", &arch),
        CLI_O_INT("--dim", &ints[0], 1, 1 << 20), CLI_O_INT("--layers", &ints[1], 1, 4096),
        CLI_O_INT("--heads", &ints[2], 1, 65536),
        {.name = "--kv-heads", .kind = CLI_INT, .dst = &ints[3], .ilo = 1, .ihi = 65536, .seen = &n_kv},
        CLI_O_INT("--head-dim", &ints[4], 1, 1 << 20), CLI_O_INT("--hidden", &ints[5], 1, 1 << 23),
        CLI_O_INT("--vocab", &ints[6], 1, 1 << 24), CLI_O_INT("--max-seq", &ints[7], 1, 1 << 26),
        CLI_O_CHOICE("--dtype", &dtype, "f32|bf16|f16"), CLI_O_INT("--seed", &seed, 0, INT64_MAX),
        CLI_O_FLOAT("--std", &std, 1e-9, 10), CLI_O_FLOAT("--rope-theta", &theta, 1.0001, 1e11),
        CLI_O_FLOAT("--norm-eps", &eps, 1e-12, 0.1), CLI_O_FLAG("--tied", &tied), CLI_O_FLAG("--untied", &untied),
        CLI_O_FLAG("--force", &force), CLI_O_FLAG("--json", &json), {0}};
    int rc = cli_parse("synth", argc, argv, defs, NULL, 0, NULL);
    if (rc < 0) { help(); return 0; }
    if (rc) return rc;
    lb_status s = lb_synth_preset(preset, &p);
    if (s) return cli_fail("synth", "--preset %s: %s", preset, lb_errmsg());
    o = p;
    int64_t *fields[8] = {&o.dim, &o.n_layers, &o.n_heads, &o.n_kv_heads, &o.head_dim, &o.hidden_dim,
                          &o.vocab_size, &o.max_seq};
    for (int k = 0; k < 8; k++) if (ints[k]) *fields[k] = ints[k];
    if (ints[2] && !n_kv) o.n_kv_heads = ints[2];   /* --heads alone: no grouped KV, not the preset's grouping */
    static const lb_dtype dtypes[] = {LB_DTYPE_F32, LB_DTYPE_BF16, LB_DTYPE_F16};
    if (dtype >= 0) o.dtype = dtypes[dtype];
    if (arch) o.arch = arch;
    if (seed >= 0) o.seed = (uint64_t)seed;
    if (std > 0) o.std = std;
    if (theta > 0) o.rope_theta = theta;
    if (eps > 0) o.norm_eps = eps;
    if (tied && untied) return cli_fail("synth", "--tied and --untied: give one");
    if (tied || untied) o.tied_embeddings = tied;
    if (!out) return cli_fail("synth", "--out DIR is required (see lowbit synth --help)");
    if (o.n_heads % o.n_kv_heads)
        return cli_fail("synth", "--kv-heads %lld: must divide --heads %lld", (long long)o.n_kv_heads, (long long)o.n_heads);
    double t0 = lb_time_now();
    if (write_model(out, force, &o)) return 1;
    double secs = lb_time_now() - t0;
    lb_model *m = NULL;   /* totals as the loader sees them (and proof it loads) */
    if ((s = lb_model_load(out, &m))) return cli_fail_status("synth", s);
    lb_model_info info;
    lb_model_get_info(m, &info);
    lb_model_free(m);
    long long params = (long long)info.n_params, bytes = (long long)info.weight_bytes;
    if (json)
        printf("{\"out\": \"%s\", \"n_params\": %lld, \"bytes\": %lld, \"dtype\": \"%s\", \"seed\": %llu, \"seconds\": %.3f}\n",
               out, params, bytes, lb_dtype_name(o.dtype), (unsigned long long)o.seed, secs);
    else
        printf("wrote %s: %lld parameters, %lld bytes of %s weights in %.2f s\n", out, params, bytes,
               lb_dtype_name(o.dtype), secs);
    return 0;
}
