/* tokenizer_hf.c: Hugging Face tokenizer.json (placeholder until step 2). */
#include "model/tokenizer.h"

lb_status lb__tokenizer_from_hf_json(const char *json, size_t n, const char *name, const char *config_json,
                                     size_t config_n, lb_tokenizer **out)
{
    *out = NULL;
    return lb__err(LB_ERR_UNSUPPORTED, "%s: tokenizer.json is not supported yet", name);
}

lb_status lb__hf_encode(const lb_tokenizer *t, const char *text, size_t len, int add_bos, lb_ids *out)
{
    return lb__err(LB_ERR_UNSUPPORTED, "%s: not supported", t->path);
}

size_t lb__utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    *cp = s[0];
    return 1;
}
