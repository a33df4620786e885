/* act.c (model): the activation format of a model's linear products
 * (issue 10). The inputs of q/k/v, o, gate/up and down get the format; the
 * norms, attention (scores, softmax, weighted sums), the residual stream,
 * the embedding and lm_head stay FP32 (docs/activations.md says why). The
 * quantization itself is the weights module's (src/weights/act.c). */
#include "model/loader.h"

/* "int8" / "int4" name int8_g32 / int4_g32; "none" (or NULL) is no format;
 * "stamp-KIND:FORMAT[:AVG]" a STaMP transform over the batch's tokens. */
static lb_status act_resolve(const char *name, const lb_format **out, lb__stamp *st)
{
    *out = NULL;
    memset(st, 0, sizeof *st);
    if (!name || !strcmp(name, "none")) return LB_OK;
    if (!strncmp(name, "stamp-", 6)) return lb__stamp_parse(name, st, out);
    const char *colon = strchr(name, ':');
    if (colon && !strcmp(colon, ":static"))
        return lb__err(LB_ERR_ARG, "activation format '%s': static scales need calibration statistics "
                                   "(lb_model_set_act_static; CLI: --act-calib FILE)", name);
    const char *n = !strcmp(name, "int8") ? "int8_g32" : !strcmp(name, "int4") ? "int4_g32" : name;
    *out = lb__act_find(n);
    if (!*out)
        return lb__err(LB_ERR_ARG, "activation format '%s' is unknown (a format of `lowbit formats`, int8, int4, bf16 or none)",
                       name);
    return LB_OK;
}

static int layer_linears(lb_layer_weights *L, lb_weight **w)
{
    lb_weight *v[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    memcpy(w, v, sizeof v);
    return 7;
}

lb_status lb_model_set_act(lb_model *m, const char *act, int64_t *n_kept)
{
    LB_ARG(m, "lb_model_set_act: m is NULL");
    const lb_format *f;
    lb__stamp st;
    lb_status s = act_resolve(act, &f, &st);
    if (s) return s;
    int64_t kept = 0;
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        lb_weight *w[7];
        int n = layer_linears(&m->layers[l], w);
        for (int i = 0; i < n; i++) {
            bool fits = !lb__stamp_check(&st, f, w[i]->cols, "");
            if (!fits) lb__clear_err();
            kept += f && !fits;
            w[i]->act = fits ? f : NULL;
            memset(&w[i]->stamp, 0, sizeof w[i]->stamp);
            w[i]->act_sd = NULL;
            if (fits) w[i]->stamp = st;
        }
    }
    if (n_kept) *n_kept = kept;
    return LB_OK;
}

const char *lb_model_act(const lb_model *m)
{
    if (!m) return "none";
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        lb_weight *w[7];
        int n = layer_linears(&m->layers[l], w);
        for (int i = 0; i < n; i++)
            if (w[i]->act) return w[i]->stamp.kind ? w[i]->stamp.name : lb_format_name(w[i]->act);
    }
    return "none";
}

/* Linears reading one input (q/k/v; gate/up) with equal static scales share
 * one array, so the forward pass quantizes that input once (linear.c shares
 * codes only between equal act_sd pointers). A file stores each linear's
 * copy. */
void lb__model_share_act_scales(lb_model *m)
{
    for (int64_t l = 0; l < m->cfg.n_layers; l++) {
        lb_layer_weights *L = &m->layers[l];
        lb_weight *grp[2][3] = {{&L->wq, &L->wk, &L->wv}, {&L->w_gate, &L->w_up, NULL}};
        for (int g = 0; g < 2; g++)
            for (int i = 1; i < 3 && grp[g][i]; i++) {
                lb_weight *a = grp[g][0], *b = grp[g][i];
                if (a->act_sd && b->act_sd && a->act == b->act && a->cols == b->cols &&
                    !memcmp(a->act_sd, b->act_sd, sizeof(float) * (size_t)(a->cols / lb_format_block(a->act))))
                    b->act_sd = a->act_sd;
            }
    }
}
