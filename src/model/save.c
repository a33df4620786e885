/* save.c: lb_model_save writes a model as a lowbit model file
 * (docs/file-format.md, "Quantized models"): one safetensors container any
 * reader opens, with "lowbit.version" "1", "lowbit.config" (the config as
 * JSON), "lowbit.source" and "format" "pt" in its metadata, and every weight
 * under its Hugging Face name in whatever tensors its representation and
 * transforms are stored as (src/weights/file.c; e.g. a packed linear P as
 * P.weight_packed / P.weight_scale / ..., with a "lowbit.tensor.P" entry).
 * Tensors are written in groups of equal element size (8-byte first), so
 * every tensor of the data section is aligned to its element size; the
 * file appears whole or not at all (the writer's temp + rename). */
#include "model/loader.h"

static lb_status write_meta(lb_st_writer *wr, const lb_model *m)
{
    lb_buf b = {0};
    lb__config_json(&b, &m->cfg);
    lb_status s = b.failed ? LB_ERR_NOMEM : lb__st_writer_meta(wr, "lowbit.config", b.data);
    lb__buf_free(&b);
    if (!s) s = lb__st_writer_meta(wr, "lowbit.version", "1");
    if (!s) s = lb__st_writer_meta(wr, "format", "pt");
    if (!s && m->source_format) s = lb__st_writer_meta(wr, "lowbit.source", m->source_format);
    return s;
}

static lb_status save_items(lb_st_writer *wr, const lb_model *m, lb__wname *names, int64_t n, lb_wplan *L)
{
    lb_status s = write_meta(wr, m);
    for (int64_t i = 0; !s && i < n; i++) {
        if (!names[i].w->rep) return lb__err(LB_ERR_ARG, "model: weight '%s' is missing", names[i].name);
        s = lb__weight_save_plan(wr, L, names[i].w, names[i].name, names[i].vector);
    }
    for (int es = 8; !s && es >= 1; es /= 2)   /* declare by element size: alignment */
        for (int64_t i = 0; !s && i < L->n; i++)
            if (lb_dtype_size(L->v[i].dtype) == (size_t)es)
                s = lb__st_writer_add(wr, L->v[i].name, L->v[i].dtype, L->v[i].ndim, L->v[i].shape);
    uint8_t *tmp = s ? NULL : lb__alloc(L->max_row + 16);
    if (!s && !tmp) s = LB_ERR_NOMEM;
    for (int es = 8; !s && es >= 1; es /= 2)
        for (int64_t i = 0; !s && i < L->n; i++)
            if (lb_dtype_size(L->v[i].dtype) == (size_t)es) s = lb__weight_save_item(wr, &L->v[i], tmp);
    LB_FREE(tmp);
    return s;
}

lb_status lb_model_save(const lb_model *m, const char *path)
{
    if (!m || !path || !*path) return lb__err(LB_ERR_ARG, "lb_model_save: no model or path");
    int64_t n = lb__model_names((lb_model *)m, NULL, 0);
    lb__wname *names = lb__alloc((size_t)n * sizeof *names);
    if (!names) return LB_ERR_NOMEM;
    lb__model_names((lb_model *)m, names, n);
    lb_st_writer *wr = NULL;
    lb_wplan L = {0};
    lb_status s = lb__st_writer_open(path, &wr);
    if (!s) s = save_items(wr, m, names, n, &L);
    if (!s) { s = lb__st_writer_commit(wr); wr = NULL; }
    lb__st_writer_abort(wr);
    LB_FREE(L.v);
    LB_FREE(names);
    return s;
}
