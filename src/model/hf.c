/* hf.c: Hugging Face model folders (filled in by the safetensors loader). */
#include "model/loader.h"

lb_status lb__hf_config_parse(const char *text, size_t n, const char *what, lb_config *cfg)
{
    (void)text; (void)n; (void)cfg;
    return lb__err(LB_ERR_UNSUPPORTED, "%s: Hugging Face configs are not supported yet", what);
}

lb_status lb__hf_load(const char *dir, lb_model *m)
{
    (void)m;
    return lb__err(LB_ERR_UNSUPPORTED, "%s: Hugging Face model folders are not supported yet", dir);
}
