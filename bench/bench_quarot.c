/* bench_quarot.c: layer-level evidence for why QuaRot's residual-stream
 * rotation (lb_model_quarot) is worse than the per-input Hadamard rotation
 * on the small real models (docs/activations.md#quarot-residual-stream-rotation).
 *
 * For each real model (LOWBIT_MODELS, default ../shared/models; SKIP when
 * absent) and the first 256 tokens of the TinyStories text (LOWBIT_DATA):
 * 1. the output error of every linear (lb_quant_layer_errors: ||X W^T -
 *    X Q^T|| / ||X W^T|| on the inputs the float model itself gives that
 *    linear) with FORMAT weights (default int4_g32) quantized by rtn, by
 *    hadamard+rtn (per-input rotation, `quantize --hadamard 0`), and by rtn
 *    and hadamard+rtn after lb_model_quarot; each with FP32 activations (W)
 *    and with ACT activations (default int4; W+A);
 * 2. per RMSNorm that QuaRot folds into the linears after it: the input
 *    channel with the largest share of the normalized residual's energy
 *    (mean (x/rms)^2, from the calibration statistics of the linears' inputs,
 *    which hold g^2 mean (x/rms)^2, divided by the norm weight g^2), that
 *    share, g there, and its share of the linears' actual (post-gain) input.
 *    Folding g into the weights leaves the linears' input without the gain:
 *    a channel the norm almost silences (g ~ 0) re-enters it at full energy,
 *    spread over every dimension by the rotation.
 * usage: bench_quarot [FORMAT [ACT]] */
#include "model/model.h"
#include "bench_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_TOK 256
enum { N_CASES = 4 };

static lb_model *quantize(const lb_model *m, const char *fmt, const char *method)
{
    lb_model_quant_opts o;
    memset(&o, 0, sizeof o);
    o.format = fmt;
    o.method = method;
    o.q.seed = 1;
    lb_model *q = NULL;
    lb_quant_report rep;
    if (lb_model_quantize(m, &o, &q, &rep)) {
        printf("quantize %s %s: %s\n", fmt, method, lb_errmsg());
        return NULL;
    }
    lb_quant_report_free(&rep);
    return q;
}

/* Relative output errors of q's linears against base, with activation act. */
static int layer_errors(const lb_model *base, lb_model *q, const char *act, const int32_t *tok, int64_t n,
                        lb_quant_layer_error **e, int64_t *ne)
{
    if (lb_model_set_act(q, act, NULL) || lb_quant_layer_errors(base, q, tok, n, e, ne)) {
        printf("layer errors: %s\n", lb_errmsg());
        return -1;
    }
    return 0;
}

/* Part 2: the channel a norm silences. */
static void silenced_channels(const lb_model *m, const int32_t *tok, int64_t n)
{
    lb_calib *c;
    lb_calib_opts co = {.ctx = n};
    if (lb_calib_collect(m, tok, n, &co, &c)) { printf("calib: %s\n", lb_errmsg()); return; }
    int64_t dim = m->cfg.dim;
    float *g = malloc(sizeof(float) * (size_t)dim);
    printf("\n| norm | folded into | top channel of mean (x/rms)^2 | its share | g there | its share after g | "
           "max / mean of (x/rms)^2 | max / mean after g |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int site = 0; site < 2; site++) {
            char norm[96], lin[96];
            snprintf(norm, sizeof norm, "model.layers.%d.%s.weight", l,
                     site ? "post_attention_layernorm" : "input_layernorm");
            snprintf(lin, sizeof lin, "model.layers.%d.%s.weight", l, site ? "mlp.gate_proj" : "self_attn.q_proj");
            lb_calib_stats st;
            if (lb_model_weight_f32(m, norm, g, NULL, NULL) || lb_calib_stats_for(c, lin, &st)) {
                printf("| %s | %s: %s |\n", norm, lin, lb_errmsg());
                continue;
            }
            double tot = 0, tot_g = 0, best = -1, mx_g = 0;
            int64_t arg = 0;
            for (int64_t j = 0; j < dim; j++) {
                double gg = (double)g[j] * g[j], e = gg > 0 ? st.sq[j] / gg : 0;
                tot += e;
                tot_g += st.sq[j];
                if (st.sq[j] > mx_g) mx_g = st.sq[j];
                if (e > best) { best = e; arg = j; }
            }
            printf("| %s | %s | %lld | %.3f | %.4f | %.4f | %.1f | %.1f |\n", norm + 13, site ? "gate/up" : "q/k/v",
                   (long long)arg, best / tot, g[arg], st.sq[arg] / tot_g, best / (tot / (double)dim),
                   mx_g / (tot_g / (double)dim));
        }
    free(g);
    lb_calib_free(c);
}

static void run_model(const char *path, const char *text, const char *fmt, const char *act)
{
    lb_model *m, *r;
    char tpath[1024];
    if (lb_model_load(path, &m)) { printf("SKIP %s: %s\n", path, lb_errmsg()); return; }
    lb_tokenizer *tk;
    if (lb_tokenizer_find(path, tpath, sizeof tpath) || lb_tokenizer_load(tpath, &tk)) {
        printf("SKIP %s: %s\n", path, lb_errmsg());
        lb_model_free(m);
        return;
    }
    size_t len = 0;
    uint8_t *buf = NULL;
    int32_t *tok = NULL;
    int64_t n = 0;
    if (lb__read_file(text, &buf, &len) ||
        lb_tokenizer_encode(tk, (const char *)buf, len < 40000 ? len : 40000, 1, &tok, &n) || n < N_TOK) {
        printf("SKIP %s: %s\n", text, n ? "too few tokens" : lb_errmsg());
        goto done;
    }
    n = N_TOK;
    if (lb_model_quarot(m, 2, &r)) { printf("quarot: %s\n", lb_errmsg()); goto done; }
    const lb_model *base[N_CASES] = {m, m, r, r};
    const char *method[N_CASES] = {"rtn", "hadamard+rtn", "rtn", "hadamard+rtn"};
    lb_quant_layer_error *e[2 * N_CASES] = {0};
    int64_t ne = 0;
    int ok = 1;
    for (int k = 0; k < N_CASES && ok; k++) {
        lb_model *q = quantize(base[k], fmt, method[k]);
        ok = q && !layer_errors(base[k], q, "none", tok, n, &e[2 * k], &ne) &&
             !layer_errors(base[k], q, act, tok, n, &e[2 * k + 1], &ne);
        lb_model_free(q);
    }
    if (ok) {
        printf("\n%s: %s weights, W = FP32 activations, W+A = %s activations; relative output error on %d tokens\n\n",
               path, fmt, act, N_TOK);
        printf("| linear | rtn W | rtn W+A | hadamard W | hadamard W+A | quarot W | quarot W+A | quarot+hadamard W | "
               "quarot+hadamard W+A |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        double sum[2 * N_CASES] = {0};
        for (int64_t i = 0; i < ne; i++) {
            printf("| %s |", e[0][i].name);
            for (int k = 0; k < 2 * N_CASES; k++) {
                printf(" %.4f |", e[k][i].rel_err);
                sum[k] += e[k][i].rel_err;
            }
            printf("\n");
        }
        printf("| mean |");
        for (int k = 0; k < 2 * N_CASES; k++) printf(" %.4f |", sum[k] / (double)ne);
        printf("\n");
        silenced_channels(m, tok, n);
    }
    for (int k = 0; k < 2 * N_CASES; k++) free(e[k]);
    lb_model_free(r);
done:
    free(tok);
    free(buf);
    lb_tokenizer_free(tk);
    lb_model_free(m);
}

int main(int argc, char **argv)
{
    const char *fmt = argc > 1 ? argv[1] : "int4_g32", *act = argc > 2 ? argv[2] : "int4";
    const char *dir = getenv("LOWBIT_MODELS") ? getenv("LOWBIT_MODELS") : "../shared/models";
    const char *data = getenv("LOWBIT_DATA") ? getenv("LOWBIT_DATA") : "../shared/data";
    const char *names[2] = {"stories260K/stories260K.bin", "tinystories-656k"};
    char text[1024];
    snprintf(text, sizeof text, "%s/tinystories/tinystories_val.txt", data);
    for (int i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        run_model(path, text, fmt, act);
    }
    return 0;
}
