/* tokenizer_llama2c.c: llama2.c's tokenizer.bin and its encoder.
 *
 * File layout (little-endian): int32 max_token_length, then for every token
 * until end of file: float32 score, int32 len, len bytes of piece text. The
 * vocabulary size is not stored; it is the number of records. Ids 0, 1, 2
 * are <unk>, BOS, EOS; "<0xNN>" pieces stand for raw bytes.
 *
 * Encoding (as llama2.c run.c): optional BOS, the dummy prefix " " when the
 * text is not empty, then each UTF-8 unit (a byte plus up to 3 following
 * continuation bytes) as its token, or its bytes as <0xNN> tokens; then merge
 * the adjacent pair whose concatenation is a token with the highest score
 * (leftmost on ties, only scores above -1e10) until none is left. */
#include "model/tokenizer.h"

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Counts records and checks every length lies inside the file. */
static lb_status scan(const uint8_t *d, size_t size, const char *name, int64_t *n, size_t *text_bytes)
{
    size_t off = 4;
    *n = 0; *text_bytes = 0;
    while (off < size) {
        if (size - off < 8)
            return lb__err(LB_ERR_FORMAT, "%s: token %lld: record header truncated at byte %zu of %zu", name,
                           (long long)*n, off, size);
        int32_t len = (int32_t)rd32(d + off + 4);
        if (len < 0 || (size_t)len > size - off - 8)
            return lb__err(LB_ERR_FORMAT, "%s: token %lld at byte %zu: length %d runs past the end (%zu bytes)",
                           name, (long long)*n, off, len, size);
        off += 8 + (size_t)len;
        *text_bytes += (size_t)len + 1;
        if (++*n > INT32_MAX / 2) return lb__err(LB_ERR_FORMAT, "%s: too many tokens", name);
    }
    return LB_OK;
}

static void find_byte_tokens(lb_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        t->byte_id[b] = lb__strmap_get(t, s, 6);
    }
}

lb_status lb__tokenizer_from_llama2c(const uint8_t *d, size_t size, const char *name, lb_tokenizer **out)
{
    *out = NULL;
    if (size < 4) return lb__err(LB_ERR_FORMAT, "%s: %zu bytes is too short for a llama2.c tokenizer", name, size);
    int32_t max_len = (int32_t)rd32(d);
    int64_t n;
    size_t text_bytes;
    lb_status s = scan(d, size, name, &n, &text_bytes);
    if (s) return s;
    if (n < 3) return lb__err(LB_ERR_FORMAT, "%s: only %lld tokens (need <unk>, BOS, EOS at least)", name, (long long)n);
    lb_tokenizer *t = lb__zalloc(sizeof *t);
    if (!t) return LB_ERR_NOMEM;
    t->kind = LB_TOK_LLAMA2C;
    t->n_vocab = n;
    t->path = strdup(name);
    t->piece = lb__zalloc((size_t)n * sizeof *t->piece);
    t->piece_len = lb__alloc((size_t)n * sizeof *t->piece_len);
    t->score = lb__alloc((size_t)n * sizeof *t->score);
    t->owned_strings = lb__alloc(text_bytes + 1);
    if (!t->path || !t->piece || !t->piece_len || !t->score || !t->owned_strings) {
        lb_tokenizer_free(t);
        return lb__err(LB_ERR_NOMEM, "%s: out of memory for %lld tokens", name, (long long)n);
    }
    size_t off = 4, at = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits = rd32(d + off), len = rd32(d + off + 4);
        float sc = lb__bits_f32(bits);
        t->score[i] = sc == 0.0f ? 0.0f : sc;   /* -0 ties with +0, as a float compare does */
        t->piece[i] = t->owned_strings + at;
        t->piece_len[i] = len;
        memcpy(t->piece[i], d + off + 8, len);
        t->piece[i][len] = 0;
        at += len + 1;
        off += 8 + len;
        if ((int)len > t->max_piece_len) t->max_piece_len = (int)len;
    }
    (void)max_len;   /* advisory only: the real lengths were validated above */
    s = lb__strmap_build(t);
    if (s) { lb_tokenizer_free(t); return lb__err(s, "%s: out of memory for the token map", name); }
    t->bos = 1; t->eos = 2; t->unk = 0;
    t->space_id = lb__strmap_get(t, " ", 1);
    find_byte_tokens(t);
    lb__tok_build_bigrams(t);
    *out = t;
    return LB_OK;
}

/* Scores map to keys where smaller is better: the order-preserving bit
 * pattern of the float, inverted. */
static bool llama2c_pair(const lb_tokenizer *t, int32_t a, int32_t b, uint32_t *key, int32_t *merged)
{
    int32_t id = lb__strmap_get_pair(t, a, b);
    if (id < 0 || !(t->score[id] > -1e10f)) return false;
    uint32_t u = lb__f32_bits(t->score[id]);
    u = (u & 0x80000000u) ? ~u : u | 0x80000000u;
    *key = ~u;
    *merged = id;
    return true;
}

/* Appends the tokens of one UTF-8 unit: its own token, or its bytes. */
static void push_unit(const lb_tokenizer *t, const char *s, size_t n, lb_ids *out)
{
    int32_t id = lb__strmap_get(t, s, n);
    if (id >= 0) { lb__ids_push(out, id); return; }
    for (size_t i = 0; i < n; i++) {
        int b = (unsigned char)s[i];
        int32_t bid = t->byte_id[b] >= 0 ? t->byte_id[b] : b + 3;   /* run.c: id = byte + 3 */
        lb__ids_push(out, bid < t->n_vocab ? bid : t->unk);
    }
}

lb_status lb__llama2c_encode(const lb_tokenizer *t, const char *text, size_t len, int add_bos, lb_ids *out)
{
    if (add_bos) lb__ids_push(out, t->bos);
    int64_t start = out->n;
    if (len) push_unit(t, " ", 1, out);
    for (size_t i = 0; i < len;) {
        size_t k = lb__utf8_group((const unsigned char *)text + i, len - i);
        push_unit(t, text + i, k, out);
        i += k;
    }
    if (out->failed || out->n == start) return LB_OK;   /* nothing to merge (also: no array yet) */
    int64_t n = out->n - start;
    lb_bpe_work w = {0};
    lb_status s = lb__bpe_merge(t, llama2c_pair, &w, out->v + start, &n);
    lb__bpe_work_free(&w);
    out->n = start + n;
    return s;
}
