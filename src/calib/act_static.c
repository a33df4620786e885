/* act_static.c: static (calibrated) activation scales (issue 10). Each
 * linear input block b of 32 (or the format's block) gets one scale for
 * every token: the format's scale of a block whose max |x| is the largest
 * calibrated max |x| of its columns (lb_calib_stats.amax), i.e.
 * sd_b = scale(max_{c in b} amax_c / qmax). The quantization itself is the
 * weights module's (lb__act_codes_static, lb__act_qdq_static). The scales
 * are computed in the linear's input space, so a linear whose input has
 * transforms (a rotation, SmoothQuant's column scales) is refused. */
#include "calib/calib.h"

/* One array of block scales per site input, shared by the linears reading it
 * (so the integer codes of q/k/v, of gate/up, are computed once). */
static lb_status site_scales(lb_model *m, const lb_format *f, const lb_calib_stats *st, const float **out)
{
    int64_t B = lb_format_block(f), nb = st->n / B;
    float *sd = lb__wstore_alloc(&m->store, sizeof(float) * (size_t)nb);
    if (!sd) return LB_ERR_NOMEM;
    for (int64_t b = 0; b < nb; b++) {
        double a = 0;
        for (int64_t c = b * B; c < (b + 1) * B; c++) a = fmax(a, st->amax[c]);
        sd[b] = lb__act_static_scale(f, (float)a);
    }
    *out = sd;
    return LB_OK;
}

static lb_status layer_static(lb_model *m, const lb_calib *c, int64_t l, const lb_format *f)
{
    lb_layer_weights *L = &m->layers[l];
    lb_weight *w[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    static const lb_site site[7] = {LB_SITE_QKV, LB_SITE_QKV, LB_SITE_QKV, LB_SITE_O, LB_SITE_GATEUP, LB_SITE_GATEUP,
                                    LB_SITE_DOWN};
    const float *sd[LB_SITE_COUNT] = {0};
    for (int i = 0; i < 7; i++) {
        if (!w[i]->act) continue;   /* kept FP32 inputs (width not a multiple of the block) */
        if (w[i]->n_in)
            return lb__err(LB_ERR_UNSUPPORTED, "static activation scales: layer %lld %s has input transforms (a "
                           "rotation or column scales); the calibrated max |x| is of the untransformed input",
                           (long long)l, lb__calib_site_name(site[i]));
        if (!sd[site[i]]) {
            lb_calib_stats st;
            lb__calib_site_view(&c->sites[l * LB_SITE_COUNT + site[i]], c->n_tokens, &st);
            if (st.n != w[i]->cols || !st.amax)
                return lb__err(LB_ERR_ARG, "static activation scales: the statistics of layer %lld %s have %lld "
                               "inputs, the linear %lld", (long long)l, lb__calib_site_name(site[i]), (long long)st.n,
                               (long long)w[i]->cols);
            lb_status s = site_scales(m, f, &st, &sd[site[i]]);
            if (s) return s;
        }
        w[i]->act_sd = sd[site[i]];
    }
    return LB_OK;
}

lb_status lb_model_set_act_static(lb_model *m, const char *act, const lb_calib *c, int64_t *n_kept)
{
    LB_ARG(m, "lb_model_set_act_static: m is NULL");
    LB_ARG(act, "lb_model_set_act_static: act is NULL");
    LB_ARG(c, "lb_model_set_act_static: c is NULL");
    char name[64];
    size_t n = strlen(act);
    if (n > 7 && !strcmp(act + n - 7, ":static")) n -= 7;
    if (n >= sizeof name) return lb__err(LB_ERR_ARG, "static activation scales: format name '%s' is too long", act);
    memcpy(name, act, n);
    name[n] = 0;
    const lb_format *f = lb_format_find(!strcmp(name, "int8") ? "int8_g32" : !strcmp(name, "int4") ? "int4_g32" : name);
    if (!lb__act_static_ok(f))
        return lb__err(LB_ERR_ARG, "static activation scales: '%s' is no symmetric INT block format (int8, int4, "
                       "int8_g32, int4_g32_bf16, ...)", name);
    if (c->n_layers != m->cfg.n_layers)
        return lb__err(LB_ERR_ARG, "static activation scales: the statistics cover %lld layers, the model has %lld",
                       (long long)c->n_layers, (long long)m->cfg.n_layers);
    lb_status s = lb_model_set_act(m, lb_format_name(f), n_kept);
    for (int64_t l = 0; l < m->cfg.n_layers && !s; l++) s = layer_static(m, c, l, f);
    if (s) {
        lb_status e = s;
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lb_errmsg());
        lb_model_set_act(m, NULL, NULL);   /* nothing half-set */
        return lb__err(e, "%s", msg);
    }
    return LB_OK;
}
