/* cmd_synth.c: `lowbit synth`: write a Hugging Face model folder with seeded
 * random weights at a chosen size (or a preset), for benchmarks. */
#include "cli.h"
#include <string.h>

static void help(void)
{
    printf("usage: lowbit synth --out DIR [--preset stories110m|llama-3.2-1b] [--arch llama|mistral|qwen2|qwen3]\n"
           "                    [--dim N] [--layers N] [--heads N] [--kv-heads N] [--head-dim N] [--hidden N]\n"
           "                    [--vocab N] [--max-seq N] [--rope-theta X] [--norm-eps X] [--tied|--untied]\n"
           "                    [--dtype f32|bf16|f16] [--seed S] [--std X] [--json]\n"
           "Writes DIR/config.json and DIR/model.safetensors with Gaussian weights (std 0.02 unless --std;\n"
           "norm weights 1), seeded so the same options give the same bytes. Options override the preset;\n"
           "without one the sizes are stories110m's (dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000).\n"
           "llama-3.2-1b: dim 2048, 16 layers, 32 heads / 8 kv, hidden 8192, vocab 128256, rope_theta 500000,\n"
           "llama3 rope scaling (factor 32, low 1, high 4, original 8192), tied embeddings.\n");
}

static bool parse_dtype(const char *s, lb_dtype *t)
{
    if (!strcmp(s, "f32")) *t = LB_DTYPE_F32;
    else if (!strcmp(s, "bf16")) *t = LB_DTYPE_BF16;
    else if (!strcmp(s, "f16")) *t = LB_DTYPE_F16;
    else return false;
    return true;
}

/* Integer options: name -> field. */
typedef struct { const char *opt; int64_t *field; int64_t lo, hi; } int_opt;

static int apply(int argc, char **argv, lb_synth_opts *o, const char **out, bool *json)
{
    int_opt ints[] = {
        {"--dim", &o->dim, 1, 1 << 20}, {"--layers", &o->n_layers, 1, 4096}, {"--heads", &o->n_heads, 1, 65536},
        {"--kv-heads", &o->n_kv_heads, 1, 65536}, {"--head-dim", &o->head_dim, 1, 1 << 20},
        {"--hidden", &o->hidden_dim, 1, 1 << 23}, {"--vocab", &o->vocab_size, 1, 1 << 24},
        {"--max-seq", &o->max_seq, 1, 1 << 26},
    };
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        bool err = false, done = false;
        int64_t seed;
        for (size_t k = 0; k < sizeof ints / sizeof *ints && !done; k++)
            if (cli_opt(argc, argv, &i, ints[k].opt, &v, &err)) {
                if (err || !cli_int("synth", ints[k].opt, v, ints[k].lo, ints[k].hi, ints[k].field)) return 1;
                done = true;
            }
        if (done) continue;
        if (cli_opt(argc, argv, &i, "--preset", &v, &err)) { if (err) return 1; continue; }  /* applied first */
        if (cli_opt(argc, argv, &i, "--out", &v, &err)) { if (err) return 1; *out = v; }
        else if (cli_opt(argc, argv, &i, "--arch", &v, &err)) { if (err) return 1; o->arch = v; }
        else if (cli_opt(argc, argv, &i, "--dtype", &v, &err)) {
            if (err) return 1;
            if (!parse_dtype(v, &o->dtype)) return cli_fail("synth", "--dtype must be f32, bf16 or f16, got '%s'", v);
        } else if (cli_opt(argc, argv, &i, "--seed", &v, &err)) {
            if (err || !cli_int("synth", "--seed", v, 0, INT64_MAX, &seed)) return 1;
            o->seed = (uint64_t)seed;
        } else if (cli_opt(argc, argv, &i, "--std", &v, &err)) {
            if (err || !cli_double("synth", "--std", v, 1e-9, 10, &o->std)) return 1;
        } else if (cli_opt(argc, argv, &i, "--rope-theta", &v, &err)) {
            if (err || !cli_double("synth", "--rope-theta", v, 1.0001, 1e11, &o->rope_theta)) return 1;
        } else if (cli_opt(argc, argv, &i, "--norm-eps", &v, &err)) {
            if (err || !cli_double("synth", "--norm-eps", v, 1e-12, 0.1, &o->norm_eps)) return 1;
        } else if (cli_flag(argv[i], "--tied")) o->tied_embeddings = 1;
        else if (cli_flag(argv[i], "--untied")) o->tied_embeddings = 0;
        else if (cli_flag(argv[i], "--json")) *json = true;
        else return cli_fail("synth", "unknown option '%s'", argv[i]);
    }
    return 0;
}

int cmd_synth(int argc, char **argv)
{
    const char *preset = NULL, *out = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) { help(); return 0; }
        if (!strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[i + 1];
        else if (!strncmp(argv[i], "--preset=", 9)) preset = argv[i] + 9;
    }
    lb_synth_opts o;
    lb_status s = lb_synth_preset(preset, &o);
    if (s) return cli_fail_status("synth", s);
    if (apply(argc, argv, &o, &out, &json)) return 1;
    if (!out) return cli_fail("synth", "--out DIR is required (see lowbit synth --help)");
    double t0 = lb_time_now();
    s = lb_synth_write(out, &o, cli_progress, "synth");
    cli_progress_end();
    if (s) return cli_fail_status("synth", s);
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
