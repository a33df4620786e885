/* tokenizer_hf.c: Hugging Face tokenizer.json with a BPE model, both the
 * byte-level kind (GPT-2, Llama 3, Qwen) and the SentencePiece kind (Llama 2
 * exports: Prepend/Replace normalizer or Metaspace, <0xNN> byte fallback).
 *
 * Encoding: (1) added tokens are matched literally in the raw text (longest
 * at the leftmost position) and never split; (2) each text segment between
 * them goes through the normalizer steps, then the pre-tokenizer steps, each
 * of which may rewrite and split every piece; (3) with a ByteLevel
 * pre-tokenizer each final piece's bytes become GPT-2 "byte-to-unicode"
 * characters; (4) each piece starts as one symbol per character (missing
 * characters: <0xNN> byte tokens with byte_fallback, else <unk>, fused) and
 * BPE merges the adjacent pair with the lowest merge rank, leftmost on
 * ties, until none applies. */
#include "model/tokenizer.h"

#define MAX_ID (1 << 24)

static bool jbool(const lb_json *o, const char *k, bool def)
{
    const lb_json *v = lb__json_get(o, k);
    return v && v->type == LB_JSON_BOOL ? v->b : def;
}

static char *dupn(const char *s, size_t n)
{
    char *d = lb__alloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

/* ------------------------------------------------------------ vocabulary */

static lb_status set_piece(lb_tokenizer *t, int64_t id, const char *s, size_t n, const char *name)
{
    if (t->piece[id]) {
        if (t->piece_len[id] == n && !memcmp(t->piece[id], s, n)) return LB_OK;
        return lb__err(LB_ERR_FORMAT, "%s: id %lld is given to two different tokens (\"%.40s\" and \"%.40s\")", name,
                       (long long)id, t->piece[id], s);
    }
    if (!(t->piece[id] = dupn(s, n))) return LB_ERR_NOMEM;
    t->piece_len[id] = (uint32_t)n;
    if ((int)n > t->max_piece_len) t->max_piece_len = (int)n;
    return LB_OK;
}

/* An id: an integer in [0, MAX_ID). The range is checked on the double
 * before any conversion (converting an out-of-range double is undefined). */
static lb_status read_id(const lb_json *v, const char *name, const char *what, int64_t *id)
{
    if (!v || v->type != LB_JSON_NUM || !(v->num >= 0 && v->num < MAX_ID) || v->num != (double)(int64_t)v->num)
        return lb__err(LB_ERR_FORMAT, "%s: %s has no valid id (an integer in [0, %d))", name, what, MAX_ID);
    *id = (int64_t)v->num;
    return LB_OK;
}

/* Sizes the id space over the model vocabulary and the added tokens, then
 * fills the pieces. */
static lb_status read_vocab(lb_tokenizer *t, const lb_json *vocab, const lb_json *added, const char *name)
{
    int64_t max = -1, id;
    lb_status s;
    for (size_t i = 0; i < vocab->len; i++) {
        if ((s = read_id(vocab->kids[i], name, "a vocabulary entry", &id))) return s;
        max = id > max ? id : max;
    }
    for (size_t i = 0; added && i < added->len; i++) {
        if ((s = read_id(lb__json_get(added->kids[i], "id"), name, "an added token", &id))) return s;
        max = id > max ? id : max;
    }
    if (max < 0) return lb__err(LB_ERR_FORMAT, "%s: the vocabulary is empty", name);
    t->n_vocab = max + 1;
    t->piece = lb__zalloc((size_t)t->n_vocab * sizeof *t->piece);
    t->piece_len = lb__zalloc((size_t)t->n_vocab * sizeof *t->piece_len);
    t->is_special = lb__zalloc((size_t)t->n_vocab);
    if (!t->piece || !t->piece_len || !t->is_special) return LB_ERR_NOMEM;
    for (size_t i = 0; i < vocab->len; i++) {
        read_id(vocab->kids[i], name, "", &id);
        if ((s = set_piece(t, id, vocab->keys[i], strlen(vocab->keys[i]), name))) return s;
    }
    return LB_OK;
}

static int cmp_added(const void *a, const void *b)
{
    const lb_added_token *x = a, *y = b;
    if ((unsigned char)x->content[0] != (unsigned char)y->content[0])
        return (unsigned char)x->content[0] - (unsigned char)y->content[0];
    return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

static lb_status read_added(lb_tokenizer *t, const lb_json *added, const char *name)
{
    if (!added || !added->len) { for (int b = 0; b < 257; b++) t->added_first[b] = 0; return LB_OK; }
    t->added = lb__zalloc(added->len * sizeof *t->added);
    if (!t->added) return LB_ERR_NOMEM;
    for (size_t i = 0; i < added->len; i++) {
        const lb_json *a = added->kids[i], *c = lb__json_get(a, "content");
        int64_t id;
        lb_status s = read_id(lb__json_get(a, "id"), name, "an added token", &id);
        if (s) return s;
        if (!c || c->type != LB_JSON_STR || !c->len)
            return lb__err(LB_ERR_FORMAT, "%s: added token %lld has no content", name, (long long)id);
        if ((s = set_piece(t, id, c->str, c->len, name))) return s;
        lb_added_token *d = &t->added[t->n_added++];
        if (!(d->content = dupn(c->str, c->len))) return LB_ERR_NOMEM;
        d->len = c->len;
        d->id = (int32_t)id;
        d->special = jbool(a, "special", false);
        d->lstrip = jbool(a, "lstrip", false);
        d->rstrip = jbool(a, "rstrip", false);
        t->is_special[id] = d->special;
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
    int k = 0;
    for (int b = 0; b < 257; b++) {
        while (k < t->n_added && (unsigned char)t->added[k].content[0] < b) k++;
        t->added_first[b] = k;
    }
    return LB_OK;
}

/* A merge given as "a b" or ["a", "b"]. */
static bool merge_parts(const lb_json *m, const char **a, size_t *na, const char **b, size_t *nb)
{
    if (m->type == LB_JSON_ARR && m->len == 2 && m->kids[0]->type == LB_JSON_STR && m->kids[1]->type == LB_JSON_STR) {
        *a = m->kids[0]->str; *na = m->kids[0]->len;
        *b = m->kids[1]->str; *nb = m->kids[1]->len;
        return true;
    }
    if (m->type != LB_JSON_STR) return false;
    const char *sp = memchr(m->str, ' ', m->len);
    if (!sp || memchr(sp + 1, ' ', m->len - (size_t)(sp + 1 - m->str))) return false;
    *a = m->str; *na = (size_t)(sp - m->str);
    *b = sp + 1; *nb = m->len - *na - 1;
    return true;
}

static lb_status read_merges(lb_tokenizer *t, const lb_json *merges, const char *name)
{
    lb_status s = LB_OK;
    for (size_t i = 0; i < merges->len && !s; i++) {
        const char *a, *b;
        size_t na, nb;
        if (!merge_parts(merges->kids[i], &a, &na, &b, &nb)) {
            s = lb__err(LB_ERR_FORMAT, "%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", name, i);
            break;
        }
        int32_t ia = lb__strmap_get(t, a, na), ib = lb__strmap_get(t, b, nb);
        if (ia < 0 || ib < 0) {
            s = lb__err(LB_ERR_FORMAT, "%s: merge %zu names a token not in the vocabulary: \"%.*s\"", name, i,
                        (int)(ia < 0 ? (na > 40 ? 40 : na) : (nb > 40 ? 40 : nb)), ia < 0 ? a : b);
            break;
        }
        int32_t m = lb__strmap_get_pair(t, ia, ib);
        if (m < 0) {
            s = lb__err(LB_ERR_FORMAT, "%s: merge %zu (\"%.*s\" + \"%.*s\") makes a token not in the vocabulary",
                        name, i, (int)(na > 40 ? 40 : na), a, (int)(nb > 40 ? 40 : nb), b);
            break;
        }
        s = lb__pairmap_put(&t->merges, ia, ib, (int32_t)i, m);
    }
    return s;
}

static lb_status read_model(lb_tokenizer *t, const lb_json *root, const char *name)
{
    const lb_json *model = lb__json_get(root, "model");
    if (!model || model->type != LB_JSON_OBJ) return lb__err(LB_ERR_FORMAT, "%s: no \"model\" object", name);
    const char *type = lb__json_str(model, "type");
    if (type && strcmp(type, "BPE"))
        return lb__err(LB_ERR_UNSUPPORTED, "%s: model type \"%s\" is not supported (only BPE)", name, type);
    const lb_json *vocab = lb__json_get(model, "vocab"), *merges = lb__json_get(model, "merges");
    if (!vocab || vocab->type != LB_JSON_OBJ) return lb__err(LB_ERR_FORMAT, "%s: model has no \"vocab\" object", name);
    if (!merges || merges->type != LB_JSON_ARR)
        return lb__err(LB_ERR_FORMAT, "%s: model has no \"merges\" array", name);
    const lb_json *p = lb__json_get(model, "continuing_subword_prefix"), *q = lb__json_get(model, "end_of_word_suffix");
    if ((p && p->type == LB_JSON_STR && p->len) || (q && q->type == LB_JSON_STR && q->len))
        return lb__err(LB_ERR_UNSUPPORTED, "%s: BPE with continuing_subword_prefix/end_of_word_suffix is not supported",
                       name);
    const lb_json *added = lb__json_get(root, "added_tokens");
    if (added && added->type != LB_JSON_ARR) added = NULL;
    lb_status s = read_vocab(t, vocab, added, name);
    if (!s) s = read_added(t, added, name);
    if (!s) s = lb__strmap_build(t);
    if (!s) s = read_merges(t, merges, name);
    if (s) return s;
    t->byte_fallback = jbool(model, "byte_fallback", false);
    t->fuse_unk = jbool(model, "fuse_unk", false);
    t->ignore_merges = jbool(model, "ignore_merges", false);
    const char *unk = lb__json_str(model, "unk_token");
    t->unk = unk ? lb__strmap_get(t, unk, strlen(unk)) : -1;
    return LB_OK;
}

/* ------------------------------------------------------------ pipeline */

static const char *pattern_str(const lb_json *o, const char *key, const char **kind)
{
    const lb_json *p = lb__json_get(o, key);
    if (!p || p->type != LB_JSON_OBJ) return NULL;
    if ((*kind = "String", lb__json_str(p, "String"))) return lb__json_str(p, "String");
    *kind = "Regex";
    return lb__json_str(p, "Regex");
}

static lb_status read_normalizer(lb_tokenizer *t, const lb_json *n, const char *name, int depth)
{
    if (!n || n->type == LB_JSON_NULL) return LB_OK;
    const char *type = lb__json_str(n, "type");
    if (!type) return lb__err(LB_ERR_FORMAT, "%s: normalizer without a type", name);
    if (!strcmp(type, "Sequence")) {
        const lb_json *list = lb__json_get(n, "normalizers");
        if (!list || list->type != LB_JSON_ARR || depth > 4)
            return lb__err(LB_ERR_FORMAT, "%s: bad normalizer Sequence", name);
        for (size_t i = 0; i < list->len; i++) {
            lb_status s = read_normalizer(t, list->kids[i], name, depth + 1);
            if (s) return s;
        }
        return LB_OK;
    }
    static const char *const forms[] = {"NFC", "NFD", "NFKC", "NFKD"};
    int form = -1;
    for (int k = 0; k < 4; k++) if (!strcmp(type, forms[k])) form = k;
    if (form < 0 && strcmp(type, "Prepend") && strcmp(type, "Replace"))
        return lb__err(LB_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported", name, type);
    if (t->n_norm == LB_TOK_MAX_NORM) return lb__err(LB_ERR_UNSUPPORTED, "%s: too many normalizer steps", name);
    lb_norm *m = &t->norm[t->n_norm];
    if (form >= 0) { m->kind = (lb_norm_kind)(LB_NORM_NFC + form); t->n_norm++; return LB_OK; }
    const char *kind = "", *from = "", *to;
    if (!strcmp(type, "Prepend")) {
        m->kind = LB_NORM_PREPEND;
        to = lb__json_str(n, "prepend");
    } else {
        m->kind = LB_NORM_REPLACE;
        from = pattern_str(n, "pattern", &kind);
        to = lb__json_str(n, "content");
        if (!from || strcmp(kind, "String") || !*from)
            return lb__err(LB_ERR_UNSUPPORTED, "%s: Replace normalizer needs a non-empty String pattern", name);
    }
    if (!to) return lb__err(LB_ERR_FORMAT, "%s: %s normalizer without its text", name, type);
    if (!(m->from = strdup(from)) || !(m->to = strdup(to))) return LB_ERR_NOMEM;
    t->n_norm++;
    return LB_OK;
}

/* Metaspace's prepend_scheme (or the older add_prefix_space). */
static int metaspace_prepend(const lb_json *o)
{
    const char *ps = lb__json_str(o, "prepend_scheme");
    if (ps) return !strcmp(ps, "never") ? 0 : !strcmp(ps, "first") ? 2 : 1;
    return jbool(o, "add_prefix_space", true) ? 1 : 0;
}

/* Split: a Regex or String pattern, one of Hugging Face's five behaviors
 * (named as in tokenizer.json), invert. */
static lb_status read_split(lb_pretok *p, const lb_json *n, const char *name)
{
    static const char *const behaviors[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    const char *kind = "", *re = pattern_str(n, "pattern", &kind), *beh = lb__json_str(n, "behavior");
    if (!re) return lb__err(LB_ERR_FORMAT, "%s: Split pre-tokenizer needs a Regex or String pattern", name);
    p->type = LB_PRE_SPLIT_REGEX;
    p->behavior = LB_SPLIT_ISOLATED;
    int b = beh ? -1 : (int)LB_SPLIT_ISOLATED;
    for (int k = 0; beh && k < 5; k++) if (!strcmp(beh, behaviors[k])) b = k;
    if (b < 0) return lb__err(LB_ERR_UNSUPPORTED, "%s: Split behavior \"%s\" is not supported", name, beh);
    p->behavior = (lb_split_behavior)b;
    p->invert = jbool(n, "invert", false);
    return lb__pretok_compile(p, re, !strcmp(kind, "String"), name);
}

static lb_status read_pretok(lb_tokenizer *t, const lb_json *n, const char *name, int depth)
{
    if (!n || n->type == LB_JSON_NULL) return LB_OK;
    const char *type = lb__json_str(n, "type");
    if (!type) return lb__err(LB_ERR_FORMAT, "%s: pre_tokenizer without a type", name);
    if (!strcmp(type, "Sequence")) {
        const lb_json *list = lb__json_get(n, "pretokenizers");
        if (!list || list->type != LB_JSON_ARR || depth > 4)
            return lb__err(LB_ERR_FORMAT, "%s: bad pre_tokenizer Sequence", name);
        for (size_t i = 0; i < list->len; i++) {
            lb_status s = read_pretok(t, list->kids[i], name, depth + 1);
            if (s) return s;
        }
        return LB_OK;
    }
    if (t->n_pretok == LB_TOK_MAX_PRETOK) return lb__err(LB_ERR_UNSUPPORTED, "%s: too many pre-tokenizer steps", name);
    lb_pretok *p = &t->pretok[t->n_pretok];
    memset(p, 0, sizeof *p);
    if (!strcmp(type, "ByteLevel")) {
        p->type = LB_PRE_BYTELEVEL;
        p->add_prefix = jbool(n, "add_prefix_space", true);
        p->split = jbool(n, "use_regex", true);
        t->byte_level = true;
        lb_status s = p->split ? lb__pretok_compile(p, lb__re_gpt2, false, name) : LB_OK;
        if (s) return s;
    } else if (!strcmp(type, "Digits")) {
        p->type = LB_PRE_DIGITS;
        p->individual = jbool(n, "individual_digits", false);
    } else if (!strcmp(type, "Metaspace")) {
        const char *r = lb__json_str(n, "replacement");
        if (!r || !*r || strlen(r) >= sizeof p->metaspace_char)
            return lb__err(LB_ERR_FORMAT, "%s: Metaspace needs a one-character replacement", name);
        p->type = LB_PRE_METASPACE;
        strcpy(p->metaspace_char, r);
        p->prepend = metaspace_prepend(n);
        p->split = jbool(n, "split", true);
    } else if (!strcmp(type, "Split")) {
        lb_status s = read_split(p, n, name);
        if (s) return s;
    } else {
        return lb__err(LB_ERR_UNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported", name, type);
    }
    t->n_pretok++;
    return LB_OK;
}

static lb_status read_decoder(lb_tokenizer *t, const lb_json *n, const char *name, int depth)
{
    if (!n || n->type == LB_JSON_NULL) return LB_OK;
    const char *type = lb__json_str(n, "type");
    if (!type) return lb__err(LB_ERR_FORMAT, "%s: decoder without a type", name);
    if (!strcmp(type, "Sequence")) {
        const lb_json *list = lb__json_get(n, "decoders");
        if (!list || list->type != LB_JSON_ARR || depth > 4) return lb__err(LB_ERR_FORMAT, "%s: bad decoder Sequence", name);
        for (size_t i = 0; i < list->len; i++) {
            lb_status s = read_decoder(t, list->kids[i], name, depth + 1);
            if (s) return s;
        }
        return LB_OK;
    }
    if (!strcmp(type, "ByteLevel")) { t->dec_byte_level = true; return LB_OK; }
    if (!strcmp(type, "ByteFallback")) { t->dec_byte_fallback = true; return LB_OK; }
    if (!strcmp(type, "Fuse")) return LB_OK;
    if (!strcmp(type, "Strip")) {
        int64_t start = 0;
        const char *c = lb__json_str(n, "content");
        lb__json_int(n, "start", &start);
        if (!c || strcmp(c, " ") || start < 0 || start > 8)
            return lb__err(LB_ERR_UNSUPPORTED, "%s: Strip decoder: only content \" \" and start <= 8", name);
        t->dec_strip_start = (int)start;
        return LB_OK;
    }
    const char *from = NULL, *to = NULL, *kind = "";
    if (!strcmp(type, "Replace")) {
        from = pattern_str(n, "pattern", &kind);
        to = lb__json_str(n, "content");
        if (!from || !*from || strcmp(kind, "String") || !to)
            return lb__err(LB_ERR_UNSUPPORTED, "%s: Replace decoder needs a non-empty String pattern", name);
    } else if (!strcmp(type, "Metaspace")) {
        from = lb__json_str(n, "replacement");
        to = " ";
        if (!from || !*from) return lb__err(LB_ERR_FORMAT, "%s: Metaspace decoder needs a replacement", name);
        if (metaspace_prepend(n)) t->dec_strip_start = 1;
    } else {
        return lb__err(LB_ERR_UNSUPPORTED, "%s: decoder \"%s\" is not supported", name, type);
    }
    if (t->dec_replace_from) return lb__err(LB_ERR_UNSUPPORTED, "%s: only one Replace decoder is supported", name);
    if (!(t->dec_replace_from = strdup(from)) || !(t->dec_replace_to = strdup(to))) return LB_ERR_NOMEM;
    return LB_OK;
}

/* TemplateProcessing: the special tokens before "A" become the prefix
 * (BOS), those after it the suffix. */
static lb_status read_template(lb_tokenizer *t, const lb_json *n, const char *name)
{
    const lb_json *single = lb__json_get(n, "single"), *specials = lb__json_get(n, "special_tokens");
    if (!single || single->type != LB_JSON_ARR) return LB_OK;
    bool after = false;
    for (size_t i = 0; i < single->len; i++) {
        const lb_json *it = single->kids[i], *st = lb__json_get(it, "SpecialToken");
        if (lb__json_get(it, "Sequence")) { after = true; continue; }
        const char *tok = st ? lb__json_str(st, "id") : NULL;
        if (!tok) continue;
        const lb_json *spec = specials ? lb__json_get(specials, tok) : NULL, *ids = spec ? lb__json_get(spec, "ids") : NULL;
        for (size_t k = 0; ids && ids->type == LB_JSON_ARR && k < ids->len; k++) {
            int64_t id;
            lb_status s = read_id(ids->kids[k], name, "a post_processor special token", &id);
            if (s) return s;
            if (id >= t->n_vocab || !t->piece[id])
                return lb__err(LB_ERR_FORMAT, "%s: post_processor token %lld is not in the vocabulary", name, (long long)id);
            int32_t **v = after ? &t->suffix_ids : &t->prefix_ids;
            int *cnt = after ? &t->n_suffix : &t->n_prefix;
            int32_t *nv = LB_REALLOC(*v, (size_t)(*cnt + 1) * sizeof *nv);
            if (!nv) return LB_ERR_NOMEM;
            nv[(*cnt)++] = (int32_t)id;
            *v = nv;
        }
    }
    return LB_OK;
}

static lb_status read_post(lb_tokenizer *t, const lb_json *n, const char *name, int depth)
{
    if (!n || n->type == LB_JSON_NULL || depth > 4) return LB_OK;
    const char *type = lb__json_str(n, "type");
    if (type && !strcmp(type, "TemplateProcessing")) return read_template(t, n, name);
    const lb_json *list = type && !strcmp(type, "Sequence") ? lb__json_get(n, "processors") : NULL;
    for (size_t i = 0; list && list->type == LB_JSON_ARR && i < list->len; i++) {
        lb_status s = read_post(t, list->kids[i], name, depth + 1);
        if (s) return s;
    }
    return LB_OK;   /* other post-processors (ByteLevel, ...) add nothing we use */
}

/* bos/eos: the template's single prefix token, else tokenizer_config.json
 * ("bos_token": "..." or {"content": "..."}), else common names. */
static int32_t named_token(const lb_tokenizer *t, const lb_json *cfg, const char *key, const char *const *names)
{
    const lb_json *v = cfg ? lb__json_get(cfg, key) : NULL;
    const char *s = v && v->type == LB_JSON_STR ? v->str : v && v->type == LB_JSON_OBJ ? lb__json_str(v, "content") : NULL;
    if (s) return lb__strmap_get(t, s, strlen(s));
    for (int i = 0; names[i]; i++) {
        int32_t id = lb__strmap_get(t, names[i], strlen(names[i]));
        if (id >= 0 && t->is_special[id]) return id;
    }
    return -1;
}

static void byte_map(lb_tokenizer *t)
{
    int k = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        t->byte_cp[b] = printable ? (uint32_t)b : 256u + (uint32_t)k++;
    }
}

static lb_status read_all(lb_tokenizer *t, const lb_json *root, const lb_json *cfg, const char *name)
{
    lb_status s = read_model(t, root, name);
    if (!s) s = read_normalizer(t, lb__json_get(root, "normalizer"), name, 0);
    if (!s) s = read_pretok(t, lb__json_get(root, "pre_tokenizer"), name, 0);
    if (!s) s = read_decoder(t, lb__json_get(root, "decoder"), name, 0);
    if (!s) s = read_post(t, lb__json_get(root, "post_processor"), name, 0);
    if (s) return s;
    static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<|startoftext|>", NULL};
    static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>", NULL};
    t->bos = t->n_prefix == 1 ? t->prefix_ids[0] : named_token(t, cfg, "bos_token", bos_names);
    t->eos = named_token(t, cfg, "eos_token", eos_names);
    if (t->eos < 0 && t->n_suffix == 1) t->eos = t->suffix_ids[0];
    for (int b = 0; b < 256; b++) {
        char s8[8];
        snprintf(s8, sizeof s8, "<0x%02X>", b);
        t->byte_id[b] = lb__strmap_get(t, s8, 6);
    }
    byte_map(t);
    lb__tok_build_bigrams(t);
    return LB_OK;
}

lb_status lb__tokenizer_from_hf_json(const char *json, size_t n, const char *name, const char *config_json,
                                     size_t config_n, lb_tokenizer **out)
{
    *out = NULL;
    lb_json *root = NULL, *cfg = NULL;
    lb_status s = lb__json_parse(json, n, name, &root);
    if (s) return s;
    if (root->type != LB_JSON_OBJ) { lb__json_free(root); return lb__err(LB_ERR_FORMAT, "%s: not a JSON object", name); }
    if (config_json && lb__json_parse(config_json, config_n, "tokenizer_config.json", &cfg) != LB_OK) {
        cfg = NULL;
        lb__clear_err();
    }
    lb_tokenizer *t = lb__zalloc(sizeof *t);
    if (!t || !(t->path = strdup(name))) {
        LB_FREE(t); lb__json_free(root); lb__json_free(cfg);
        return lb__err(LB_ERR_NOMEM, "%s: out of memory", name);
    }
    t->kind = LB_TOK_HF_BPE;
    t->bos = t->eos = t->unk = t->space_id = -1;
    s = read_all(t, root, cfg, name);
    lb__json_free(root);
    lb__json_free(cfg);
    if (s == LB_ERR_NOMEM && !*lb_errmsg()) s = lb__err(s, "%s: out of memory", name);
    if (s) { lb_tokenizer_free(t); return s; }
    *out = t;
    return LB_OK;
}

/* ------------------------------------------------------------ encoding */

typedef struct enc {
    const lb_tokenizer *t;
    lb_ids *out;
    lb_bpe_work w;
    lb_buf lvl[LB_TOK_MAX_PRETOK + 2];   /* per pre-tokenizer step; the last two: normalizer */
    lb_buf word;
    lb_ids syms;
    lb_status st;
} enc;

static bool hf_pair(const lb_tokenizer *t, int32_t a, int32_t b, uint32_t *key, int32_t *merged)
{
    int32_t rank;
    if (!lb__pairmap_get(&t->merges, a, b, &rank, merged)) return false;
    *key = (uint32_t)rank;
    return true;
}

static void put_utf8(lb_buf *b, uint32_t c)
{
    unsigned char u[4];
    size_t k;
    if (c < 0x80) { u[0] = (unsigned char)c; k = 1; }
    else if (c < 0x800) { u[0] = (unsigned char)(0xC0 | c >> 6); u[1] = (unsigned char)(0x80 | (c & 0x3F)); k = 2; }
    else { u[0] = (unsigned char)(0xE0 | c >> 12); u[1] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
           u[2] = (unsigned char)(0x80 | (c & 0x3F)); k = 3; }
    lb__buf_put(b, u, k);
}

/* One pre-token: initial symbols, then merges. */
static void bpe_word(enc *e, const char *s, size_t n)
{
    const lb_tokenizer *t = e->t;
    if (t->byte_level) {
        e->word.len = 0;
        for (size_t i = 0; i < n; i++) put_utf8(&e->word, t->byte_cp[(unsigned char)s[i]]);
        if (e->word.failed) { e->st = LB_ERR_NOMEM; return; }
        s = e->word.data; n = e->word.len;
    }
    int32_t id;
    if (t->ignore_merges && (id = lb__strmap_get(t, s, n)) >= 0) { lb__ids_push(e->out, id); return; }
    e->syms.n = 0;
    bool in_unk = false;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = lb__utf8_decode((const unsigned char *)s + i, n - i, &c);
        id = lb__strmap_get(t, s + i, k);
        bool bytes_ok = t->byte_fallback;
        for (size_t j = 0; id < 0 && bytes_ok && j < k; j++) bytes_ok = t->byte_id[(unsigned char)s[i + j]] >= 0;
        if (id >= 0) lb__ids_push(&e->syms, id);
        else if (bytes_ok) for (size_t j = 0; j < k; j++) lb__ids_push(&e->syms, t->byte_id[(unsigned char)s[i + j]]);
        else if (t->unk >= 0 && !(in_unk && t->fuse_unk)) lb__ids_push(&e->syms, t->unk);
        else if (t->unk < 0) { e->st = lb__err(LB_ERR_FORMAT, "%s: a character is not in the vocabulary and there "
                                               "is no unk_token or byte fallback", t->path); return; }
        in_unk = id < 0 && !bytes_ok;
        i += k;
    }
    if (e->syms.failed) { e->st = LB_ERR_NOMEM; return; }
    int64_t m = e->syms.n;
    if ((e->st = lb__bpe_merge(t, hf_pair, &e->w, e->syms.v, &m))) return;
    for (int64_t i = 0; i < m; i++) lb__ids_push(e->out, e->syms.v[i]);
}

static void run_steps(enc *e, int step, const char *s, size_t n, bool at0);

typedef struct split_ctx { enc *e; int step; const char *s; bool at0; } split_ctx;

static void on_piece(void *ctx, size_t off, size_t len)
{
    split_ctx *c = ctx;
    if (!c->e->st) run_steps(c->e, c->step + 1, c->s + off, len, c->at0 && off == 0);
}

static bool starts_with(const char *s, size_t n, const char *p)
{
    size_t k = strlen(p);
    return n >= k && !memcmp(s, p, k);
}

/* Applies pre-tokenizer step `step` to one piece and recurses on the results. */
static void run_steps(enc *e, int step, const char *s, size_t n, bool at0)
{
    const lb_tokenizer *t = e->t;
    if (!n || e->st) return;
    if (step == t->n_pretok) { bpe_word(e, s, n); return; }
    const lb_pretok *p = &t->pretok[step];
    lb_buf *b = &e->lvl[step];
    bool split = true;
    if (p->type == LB_PRE_METASPACE) {
        b->len = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ') lb__buf_put(b, p->metaspace_char, strlen(p->metaspace_char));
            else lb__buf_put(b, s + i, 1);
        }
        if ((p->prepend == 1 || (p->prepend == 2 && at0)) && !starts_with(b->data, b->len, p->metaspace_char)) {
            lb__buf_put(b, p->metaspace_char, strlen(p->metaspace_char));
            memmove(b->data + strlen(p->metaspace_char), b->data, b->len - strlen(p->metaspace_char));
            memcpy(b->data, p->metaspace_char, strlen(p->metaspace_char));
        }
        split = p->split;
    } else if (p->type == LB_PRE_BYTELEVEL) {
        b->len = 0;
        if (p->add_prefix && s[0] != ' ') lb__buf_put(b, " ", 1);
        lb__buf_put(b, s, n);
        split = p->split;
    }
    if (p->type == LB_PRE_METASPACE || p->type == LB_PRE_BYTELEVEL) {
        if (b->failed) { e->st = LB_ERR_NOMEM; return; }
        s = b->data; n = b->len;
    }
    if (!split) { run_steps(e, step + 1, s, n, at0); return; }
    split_ctx c = {e, step, s, at0};
    lb_status st = lb__pretok_split(p, s, n, on_piece, &c);
    if (st && !e->st) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", lb_errmsg());
        e->st = st == LB_ERR_NOMEM ? st : lb__err(st, "%s: %s", t->path, msg);
    }
}

/* Normalizer steps into the two spare buffers; returns the result. */
static const char *normalize(enc *e, const char *s, size_t *n)
{
    const lb_tokenizer *t = e->t;
    for (int k = 0; k < t->n_norm; k++) {
        const lb_norm *m = &t->norm[k];
        lb_buf *b = &e->lvl[LB_TOK_MAX_PRETOK + (k & 1)];
        b->len = 0;
        if (m->kind >= LB_NORM_NFC) {
            lb__normalize_form(m->kind, s, *n, b);
        } else if (m->kind == LB_NORM_PREPEND) {
            if (*n) lb__buf_put(b, m->to, strlen(m->to));
            lb__buf_put(b, s, *n);
        } else {
            size_t fl = strlen(m->from), tl = strlen(m->to);
            for (size_t i = 0; i < *n;) {
                if (*n - i >= fl && !memcmp(s + i, m->from, fl)) { lb__buf_put(b, m->to, tl); i += fl; }
                else lb__buf_put(b, s + i++, 1);
            }
        }
        if (b->failed) { e->st = LB_ERR_NOMEM; return s; }
        lb__buf_put(b, "", 0);
        s = b->data ? b->data : "";
        *n = b->len;
    }
    return s;
}

static void segment(enc *e, const char *s, size_t n, bool at0)
{
    if (!n) return;
    s = normalize(e, s, &n);
    run_steps(e, 0, s, n, at0);
}

/* The longest added token starting at text[i], or NULL. */
static const lb_added_token *added_at(const lb_tokenizer *t, const char *text, size_t len, size_t i)
{
    unsigned char c = (unsigned char)text[i];
    for (int k = t->added_first[c]; k < t->added_first[c + 1]; k++) {
        const lb_added_token *a = &t->added[k];
        if (a->len <= len - i && !memcmp(text + i, a->content, a->len)) return a;
    }
    return NULL;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

lb_status lb__hf_encode(const lb_tokenizer *t, const char *text, size_t len, int add_bos, lb_ids *out)
{
    enc e = {.t = t, .out = out};
    if (add_bos && t->n_prefix) for (int i = 0; i < t->n_prefix; i++) lb__ids_push(out, t->prefix_ids[i]);
    else if (add_bos && t->bos >= 0) lb__ids_push(out, t->bos);
    size_t seg = 0;
    for (size_t i = 0; i < len && !e.st;) {
        const lb_added_token *a = t->n_added ? added_at(t, text, len, i) : NULL;
        if (!a) { i++; continue; }
        size_t end = i;
        while (a->lstrip && end > seg && is_ws(text[end - 1])) end--;
        segment(&e, text + seg, end - seg, seg == 0);
        lb__ids_push(out, a->id);
        i += a->len;
        while (a->rstrip && i < len && is_ws(text[i])) i++;
        seg = i;
    }
    if (!e.st) segment(&e, text + seg, len - seg, seg == 0);
    lb__bpe_work_free(&e.w);
    for (int k = 0; k < LB_TOK_MAX_PRETOK + 2; k++) lb__buf_free(&e.lvl[k]);
    lb__buf_free(&e.word);
    LB_FREE(e.syms.v);
    if (e.st == LB_ERR_NOMEM) return lb__err(LB_ERR_NOMEM, "%s: out of memory encoding", t->path);
    return e.st;
}
