/* tokenizer.c: the public tokenizer API and the parts both tokenizer kinds
 * share: a string->id hash, a (id, id)->merge hash, the BPE merge engine and
 * decoding.
 *
 * Merge engine: symbols form a doubly linked list over the initial ids; every
 * adjacent pair that can merge sits in a binary min-heap keyed by
 * (key << 32 | left position). Popping the smallest entry and re-checking it
 * against the current list ("lazy deletion") gives exactly the greedy
 * algorithm "merge the best pair, leftmost on ties, repeat" in O(n log n):
 * every adjacent pair is pushed when it forms, and a stale entry can never
 * pass the check because a symbol only grows to the right. */
#include "model/tokenizer.h"
#include <dirent.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ string map */

uint64_t lb__tok_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;            /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_more(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Builds the map from t->piece; the first id of a duplicated string wins. */
lb_status lb__strmap_build(lb_tokenizer *t)
{
    uint64_t cap = 16;
    while (cap < (uint64_t)t->n_vocab * 2) cap <<= 1;
    t->map.slots = lb__alloc(cap * sizeof *t->map.slots);
    if (!t->map.slots) return LB_ERR_NOMEM;
    memset(t->map.slots, 0xff, cap * sizeof *t->map.slots);
    t->map.cap = cap;
    for (int64_t id = 0; id < t->n_vocab; id++) {
        if (!t->piece[id]) continue;
        if (lb__strmap_get(t, t->piece[id], t->piece_len[id]) >= 0) continue;
        uint64_t h = lb__tok_hash(t->piece[id], t->piece_len[id]) & (cap - 1);
        while (t->map.slots[h] >= 0) h = (h + 1) & (cap - 1);
        t->map.slots[h] = (int32_t)id;
    }
    return LB_OK;
}

/* Looks up the concatenation a + b without building it. */
static int32_t strmap_get2(const lb_tokenizer *t, const char *a, size_t na, const char *b, size_t nb)
{
    if (!t->map.cap) return -1;
    uint64_t h = hash_more(hash_more(1469598103934665603ull, a, na), b, nb) & (t->map.cap - 1);
    for (;;) {
        int32_t id = t->map.slots[h];
        if (id < 0) return -1;
        const char *p = t->piece[id];
        if (t->piece_len[id] == na + nb && !memcmp(p, a, na) && !memcmp(p + na, b, nb)) return id;
        h = (h + 1) & (t->map.cap - 1);
    }
}

int32_t lb__strmap_get(const lb_tokenizer *t, const char *s, size_t n)
{
    return strmap_get2(t, s, n, "", 0);
}

int32_t lb__strmap_get_pair(const lb_tokenizer *t, int32_t a, int32_t b)
{
    return strmap_get2(t, t->piece[a], t->piece_len[a], t->piece[b], t->piece_len[b]);
}

/* ------------------------------------------------------------ pair map */

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; }
static uint64_t pair_slot(uint64_t k, uint64_t cap) { return (k * 0x9E3779B97F4A7C15ull >> 17) & (cap - 1); }

static lb_status pairmap_grow(lb_pairmap *m)
{
    uint64_t cap = m->cap ? m->cap * 2 : 1024;
    lb_pairmap n = {lb__zalloc(cap * 8), lb__alloc(cap * 4), lb__alloc(cap * 4), cap, m->count};
    if (!n.keys || !n.rank || !n.merged) {
        LB_FREE(n.keys); LB_FREE(n.rank); LB_FREE(n.merged);
        return LB_ERR_NOMEM;
    }
    for (uint64_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        uint64_t h = pair_slot(m->keys[i], cap);
        while (n.keys[h]) h = (h + 1) & (cap - 1);
        n.keys[h] = m->keys[i]; n.rank[h] = m->rank[i]; n.merged[h] = m->merged[i];
    }
    LB_FREE(m->keys); LB_FREE(m->rank); LB_FREE(m->merged);
    *m = n;
    return LB_OK;
}

/* Inserts or overwrites (a later merge of the same pair wins, as in the
 * tokenizers library's hash map). The table stays at most half full. */
lb_status lb__pairmap_put(lb_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
    if ((m->count + 1) * 2 > m->cap) {
        lb_status s = pairmap_grow(m);
        if (s) return s;
    }
    uint64_t k = pair_key(a, b), h = pair_slot(k, m->cap);
    while (m->keys[h] && m->keys[h] != k) h = (h + 1) & (m->cap - 1);
    if (!m->keys[h]) m->count++;
    m->keys[h] = k; m->rank[h] = rank; m->merged[h] = merged;
    return LB_OK;
}

bool lb__pairmap_get(const lb_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged)
{
    if (!m->cap) return false;
    uint64_t k = pair_key(a, b), h = pair_slot(k, m->cap);
    while (m->keys[h]) {
        if (m->keys[h] == k) { *rank = m->rank[h]; *merged = m->merged[h]; return true; }
        h = (h + 1) & (m->cap - 1);
    }
    return false;
}

/* ------------------------------------------------------------ merge engine */

typedef struct lb_bpe_entry {
    uint64_t order;          /* key << 32 | left position */
    int32_t left, right;     /* the two ids when pushed */
} lb_bpe_entry;

static void heap_push(lb_bpe_entry *h, size_t *n, lb_bpe_entry e)
{
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2].order > e.order) { h[i] = h[(i - 1) / 2]; i = (i - 1) / 2; }
    h[i] = e;
}

static lb_bpe_entry heap_pop(lb_bpe_entry *h, size_t *n)
{
    lb_bpe_entry top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1].order < h[c].order) c++;
        if (h[c].order >= last.order) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

static lb_status work_reserve(lb_bpe_work *w, size_t n)
{
    if (n > w->cap_sym) {
        int32_t *p = LB_REALLOC(w->prev, n * sizeof *p), *q = p ? LB_REALLOC(w->next, n * sizeof *q) : NULL;
        if (p) w->prev = p;
        if (q) w->next = q;
        if (!p || !q) return lb__err(LB_ERR_NOMEM, "tokenizer: out of memory for %zu symbols", n);
        w->cap_sym = n;
    }
    /* at most n - 1 initial pairs plus two per merge */
    size_t hn = 3 * n + 1;
    if (hn > w->cap_heap) {
        lb_bpe_entry *h = LB_REALLOC(w->heap, hn * sizeof *h);
        if (!h) return lb__err(LB_ERR_NOMEM, "tokenizer: out of memory for %zu merges", hn);
        w->heap = h;
        w->cap_heap = hn;
    }
    return LB_OK;
}

void lb__bpe_work_free(lb_bpe_work *w)
{
    LB_FREE(w->prev); LB_FREE(w->next); LB_FREE(w->heap);
    memset(w, 0, sizeof *w);
}

static void push_pair(const lb_tokenizer *t, lb_pair_fn pair, lb_bpe_work *w, size_t *hn, const int32_t *ids,
                      int32_t l, int32_t r)
{
    uint32_t key;
    int32_t merged;
    if (l < 0 || r < 0 || !pair(t, ids[l], ids[r], &key, &merged)) return;
    heap_push(w->heap, hn, (lb_bpe_entry){(uint64_t)key << 32 | (uint32_t)l, ids[l], ids[r]});
}

/* Merges within ids[lo, hi), which no merge can cross. */
static void merge_range(const lb_tokenizer *t, lb_pair_fn pair, lb_bpe_work *w, int32_t *ids, int32_t lo, int32_t hi)
{
    size_t hn = 0;
    for (int32_t i = lo; i < hi; i++) { w->prev[i] = i - 1; w->next[i] = i + 1 < hi ? i + 1 : -1; }
    w->prev[lo] = -1;
    for (int32_t i = lo; i + 1 < hi; i++) push_pair(t, pair, w, &hn, ids, i, i + 1);
    while (hn) {
        lb_bpe_entry e = heap_pop(w->heap, &hn);
        int32_t l = (int32_t)(uint32_t)e.order, r = w->next[l];
        uint32_t key;
        int32_t merged;
        /* A symbol's id changes whenever it grows and a symbol leaves the
         * list only by merging into its left neighbour, so unchanged ids
         * mean the pair is still there. */
        if (ids[l] != e.left || r < 0 || ids[r] != e.right || !pair(t, ids[l], ids[r], &key, &merged)) continue;
        ids[l] = merged;
        ids[r] = -1;
        w->next[l] = w->next[r];
        if (w->next[r] >= 0) w->prev[w->next[r]] = l;
        push_pair(t, pair, w, &hn, ids, w->prev[l], l);
        push_pair(t, pair, w, &hn, ids, l, w->next[l]);
    }
}

/* False when no token has the last byte of piece a followed by the first
 * byte of piece b: then no merge ever crosses between them, and the text
 * can be merged in independent ranges (same result, smaller heaps). */
static bool can_join(const lb_tokenizer *t, int32_t a, int32_t b)
{
    uint32_t la = t->piece_len[a], lbn = t->piece_len[b];
    if (!la || !lbn) return true;
    unsigned x = (unsigned char)t->piece[a][la - 1], y = (unsigned char)t->piece[b][0];
    return t->bigram[x << 5 | y >> 3] >> (y & 7) & 1;
}

void lb__tok_build_bigrams(lb_tokenizer *t)
{
    memset(t->bigram, 0, sizeof t->bigram);
    for (int64_t id = 0; id < t->n_vocab; id++)
        for (uint32_t i = 0; t->piece[id] && i + 1 < t->piece_len[id]; i++) {
            unsigned x = (unsigned char)t->piece[id][i], y = (unsigned char)t->piece[id][i + 1];
            t->bigram[x << 5 | y >> 3] |= (uint8_t)(1u << (y & 7));
        }
}

lb_status lb__bpe_merge(const lb_tokenizer *t, lb_pair_fn pair, lb_bpe_work *w, int32_t *ids, int64_t *n_ids)
{
    int64_t n = *n_ids;
    if (n < 2) return LB_OK;
    if (n > INT32_MAX / 4) return lb__err(LB_ERR_ARG, "tokenizer: text too long (%lld symbols)", (long long)n);
    lb_status s = work_reserve(w, (size_t)n);
    if (s) return s;
    int32_t lo = 0;
    for (int32_t i = 1; i <= n; i++)
        if (i == n || !can_join(t, ids[i - 1], ids[i])) { merge_range(t, pair, w, ids, lo, i); lo = i; }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] >= 0) ids[k++] = ids[i];
    *n_ids = k;
    return LB_OK;
}

/* ------------------------------------------------------------ helpers */

void lb__ids_push(lb_ids *a, int32_t id)
{
    if (a->failed) return;
    if (a->n == a->cap) {
        int64_t cap = a->cap ? a->cap * 2 : 256;
        int32_t *v = LB_REALLOC(a->v, (size_t)cap * sizeof *v);
        if (!v) { a->failed = true; return; }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
}

size_t lb__utf8_group(const unsigned char *s, size_t n)
{
    size_t k = 1;
    while (k < n && k < 4 && (s[k] & 0xC0) == 0x80) k++;
    return k;
}

void lb__tok_free_fields(lb_tokenizer *t)
{
    if (t->owned_strings) LB_FREE(t->owned_strings);
    else if (t->piece)
        for (int64_t i = 0; i < t->n_vocab; i++) LB_FREE(t->piece[i]);
    LB_FREE(t->piece); LB_FREE(t->piece_len); LB_FREE(t->score); LB_FREE(t->map.slots);
    LB_FREE(t->merges.keys); LB_FREE(t->merges.rank); LB_FREE(t->merges.merged);
    for (int i = 0; i < t->n_norm; i++) { LB_FREE(t->norm[i].from); LB_FREE(t->norm[i].to); }
    for (int i = 0; i < t->n_pretok; i++) lb__pretok_free(&t->pretok[i]);
    for (int i = 0; i < t->n_added; i++) LB_FREE(t->added[i].content);
    LB_FREE(t->added); LB_FREE(t->prefix_ids); LB_FREE(t->suffix_ids);
    LB_FREE(t->dec_replace_from); LB_FREE(t->dec_replace_to); LB_FREE(t->is_special);
    LB_FREE(t->path);
}

/* ------------------------------------------------------------ public API */

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads tokenizer_config.json beside a tokenizer.json, when there is one. */
static void read_sibling_config(const char *path, uint8_t **data, size_t *size)
{
    *data = NULL; *size = 0;
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path + 1) : 0;
    char *p = lb__alloc(dl + 32);
    if (!p) return;
    memcpy(p, path, dl);
    strcpy(p + dl, "tokenizer_config.json");
    if (is_file(p) && lb__read_file(p, data, size) != LB_OK) { *data = NULL; *size = 0; lb__clear_err(); }
    LB_FREE(p);
}

static lb_status load_file(const char *path, lb_tokenizer **out)
{
    uint8_t *data;
    size_t size;
    lb_status s = lb__read_file(path, &data, &size);
    if (s) return s;
    size_t i = 0;
    if (size >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) i = 3;
    while (i < size && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t')) i++;
    if (i < size && data[i] == '{') {
        uint8_t *cfg;
        size_t cfg_n;
        read_sibling_config(path, &cfg, &cfg_n);
        s = lb__tokenizer_from_hf_json((const char *)data, size, path, (const char *)cfg, cfg_n, out);
        LB_FREE(cfg);
    } else if (strlen(path) >= 5 && !strcmp(path + strlen(path) - 5, ".json")) {
        s = lb__err(LB_ERR_FORMAT, "%s: not a tokenizer.json (the file does not start with a JSON object)", path);
    } else {
        s = lb__tokenizer_from_llama2c(data, size, path, out);
        if (s == LB_ERR_FORMAT || s == LB_ERR_CORRUPT) {   /* say both formats were tried */
            char why[512];
            size_t n = strlen(path);
            const char *m = lb_errmsg();
            snprintf(why, sizeof why, "%s", !strncmp(m, path, n) && !strncmp(m + n, ": ", 2) ? m + n + 2 : m);
            s = lb__err(s, "%s: neither a tokenizer.json (no JSON object) nor a llama2.c tokenizer.bin (%s)", path, why);
        }
    }
    LB_FREE(data);
    return s;
}

lb_status lb_tokenizer_load(const char *path, lb_tokenizer **out)
{
    LB_ARG(out, "lb_tokenizer_load: out is NULL");
    *out = NULL;
    LB_ARG(path, "lb_tokenizer_load: path is NULL");
    if (!is_dir(path)) {
        if (!is_file(path)) return lb__err(LB_ERR_IO, "%s: no such tokenizer file or folder", path);
        return load_file(path, out);
    }
    char buf[4096];
    if (lb_tokenizer_find(path, buf, sizeof buf) != LB_OK) return LB_ERR_NOTFOUND;
    return load_file(buf, out);
}

void lb_tokenizer_free(lb_tokenizer *t)
{
    if (!t) return;
    lb__tok_free_fields(t);
    LB_FREE(t);
}

int64_t lb_tokenizer_vocab_size(const lb_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t lb_tokenizer_bos(const lb_tokenizer *t) { return t ? t->bos : -1; }
int32_t lb_tokenizer_eos(const lb_tokenizer *t) { return t ? t->eos : -1; }

lb_status lb_tokenizer_encode(const lb_tokenizer *t, const char *text, size_t len, int add_bos, int32_t **ids,
                              int64_t *n_ids)
{
    if (ids) *ids = NULL;
    if (n_ids) *n_ids = 0;
    if (!t || (!text && len) || !ids || !n_ids) return lb__err(LB_ERR_ARG, "lb_tokenizer_encode: NULL argument");
    if (!text) text = "";
    lb_ids a = {0};
    lb_status s = t->kind == LB_TOK_LLAMA2C ? lb__llama2c_encode(t, text, len, add_bos, &a)
                                            : lb__hf_encode(t, text, len, add_bos, &a);
    if (!s && a.failed) s = lb__err(LB_ERR_NOMEM, "%s: out of memory encoding %zu bytes", t->path, len);
    if (s) { LB_FREE(a.v); return s; }
    if (!a.v) a.v = lb__alloc(sizeof *a.v);   /* a valid pointer even for zero ids */
    if (!a.v) return LB_ERR_NOMEM;
    *ids = a.v;
    *n_ids = a.n;
    return LB_OK;
}

/* ------------------------------------------------------------ decoding */

static const unsigned char all_bytes[256] = {
#define B4(i) i, i + 1, i + 2, i + 3
#define B16(i) B4(i), B4(i + 4), B4(i + 8), B4(i + 12)
#define B64(i) B16(i), B16(i + 16), B16(i + 32), B16(i + 48)
    B64(0), B64(64), B64(128), B64(192)
#undef B4
#undef B16
#undef B64
};

/* Inverse of the GPT-2 byte-to-unicode map: code point -> byte, or -1. */
static int byte_of_char(uint32_t c)
{
    if ((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)) return (int)c;
    if (c < 0x100 || c >= 0x100 + 68) return -1;
    int k = (int)(c - 0x100);   /* the k-th byte that is not printable, in byte order */
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (!printable && k-- == 0) return b;
    }
    return -1;
}

/* The bytes of one piece for decoding. Simple cases point into the
 * tokenizer; rewritten ones (byte-level, replacements) go to buf. `first`:
 * the id opens the sequence, where a BOS (as encode adds it) decodes to
 * nothing; anywhere else BOS keeps its text, which matters where one token
 * is both BOS and EOS (cl100k's <|endoftext|>). `at_start`: the leading-space
 * rule applies (start of the sequence or right after BOS). */
static lb_status render(const lb_tokenizer *t, int32_t id, bool first, bool at_start, char *buf, size_t cap,
                        const char **out, size_t *len)
{
    if (id < 0 || id >= t->n_vocab || !t->piece[id])
        return lb__err(LB_ERR_ARG, "%s: token id %d is outside the vocabulary (%lld)", t->path, id,
                       (long long)t->n_vocab);
    const char *p = t->piece[id];
    size_t n = t->piece_len[id];
    *out = ""; *len = 0;
    if (id == t->bos && first) return LB_OK;
    if ((t->is_special && t->is_special[id]) || id == t->bos) { *out = p; *len = n; return LB_OK; }
    if (t->kind == LB_TOK_LLAMA2C) {
        if (at_start && n && p[0] == ' ') { p++; n--; }
        for (int b = 0; b < 256 && n == 6 && p[0] == '<'; b++)
            if (t->byte_id[b] == id) { *out = (const char *)&all_bytes[b]; *len = 1; return LB_OK; }
        *out = p; *len = n;
        return LB_OK;
    }
    size_t k = 0;
    if (t->dec_byte_fallback && n == 6 && p[0] == '<')
        for (int b = 0; b < 256; b++)
            if (t->byte_id[b] == id) { *out = (const char *)&all_bytes[b]; *len = 1; return LB_OK; }
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t m = lb__utf8_decode((const unsigned char *)p + i, n - i, &c);
        const char *src = p + i;
        size_t sn = m;
        int byte = t->dec_byte_level ? byte_of_char(c) : -1;
        if (byte >= 0) { src = (const char *)&all_bytes[byte]; sn = 1; }
        else if (t->dec_replace_from && strlen(t->dec_replace_from) <= n - i &&
                 !memcmp(p + i, t->dec_replace_from, strlen(t->dec_replace_from))) {
            m = strlen(t->dec_replace_from);
            src = t->dec_replace_to; sn = strlen(t->dec_replace_to);
        }
        if (k + sn > cap) return lb__err(LB_ERR_ARG, "%s: piece of token %d needs more than %zu bytes", t->path, id, cap);
        memcpy(buf + k, src, sn);
        k += sn;
        i += m;
    }
    size_t skip = 0;
    while (at_start && skip < k && skip < (size_t)t->dec_strip_start && buf[skip] == ' ') skip++;
    *out = buf + skip;
    *len = k - skip;
    return LB_OK;
}

lb_status lb_tokenizer_piece(const lb_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap,
                             const char **piece, size_t *len)
{
    if (piece) *piece = "";
    if (len) *len = 0;
    if (!t || !piece || !len || (!buf && cap)) return lb__err(LB_ERR_ARG, "lb_tokenizer_piece: NULL argument");
    return render(t, id, prev < 0, prev < 0 || prev == t->bos, buf, cap, piece, len);
}

lb_status lb_tokenizer_decode(const lb_tokenizer *t, const int32_t *ids, int64_t n_ids, char **text, size_t *len)
{
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!t || (!ids && n_ids) || n_ids < 0 || !text) return lb__err(LB_ERR_ARG, "lb_tokenizer_decode: bad argument");
    size_t cap = 4 * (size_t)t->max_piece_len + 64;
    char *tmp = lb__alloc(cap);
    if (!tmp) return LB_ERR_NOMEM;
    lb_buf b = {0};
    lb_status s = LB_OK;
    for (int64_t i = 0; i < n_ids && !s; i++) {
        const char *p;
        size_t n;
        s = render(t, ids[i], i == 0, i == 0 || ids[i - 1] == t->bos, tmp, cap, &p, &n);
        if (!s) lb__buf_put(&b, p, n);
    }
    LB_FREE(tmp);
    lb__buf_put(&b, "", 1);
    if (!s && b.failed) s = lb__err(LB_ERR_NOMEM, "%s: out of memory decoding", t->path);
    if (s) { lb__buf_free(&b); return s; }
    *text = b.data;
    if (len) *len = b.len - 1;
    return LB_OK;
}

/* ------------------------------------------------------------ finding */

static bool try_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int k = snprintf(buf, cap, "%s/%s", dir, name);
    return k > 0 && (size_t)k < cap && is_file(buf);
}

/* First "tok*.bin" in dir by name order, into buf. */
static bool find_tok_bin(char *buf, size_t cap, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return false;
    char best[256] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 8 || n >= sizeof best || strncmp(e->d_name, "tok", 3) || strcmp(e->d_name + n - 4, ".bin")) continue;
        if (!best[0] || strcmp(e->d_name, best) < 0) strcpy(best, e->d_name);
    }
    closedir(d);
    return best[0] && try_path(buf, cap, dir, best);
}

/* Vocabulary size from a llama2.c checkpoint header (legacy or version 1), or 0. */
static int64_t llama2c_vocab(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int32_t h[9] = {0};
    size_t got = fread(h, 4, 9, f);
    fclose(f);
    if (got < 7) return 0;
    int32_t v = (uint32_t)h[0] == 0x616b3432u ? (got == 9 ? h[7] : 0) : h[5];
    if (v == INT32_MIN) return 0;
    return v < 0 ? -(int64_t)v : v;
}

lb_status lb_tokenizer_find(const char *model_path, char *buf, size_t cap)
{
    if (!model_path || !buf || !cap) return lb__err(LB_ERR_ARG, "lb_tokenizer_find: bad argument");
    if (is_dir(model_path)) {
        if (try_path(buf, cap, model_path, "tokenizer.json") || try_path(buf, cap, model_path, "tokenizer.bin") ||
            find_tok_bin(buf, cap, model_path))
            return LB_OK;
        return lb__err(LB_ERR_NOTFOUND, "%s: no tokenizer.json, tokenizer.bin or tok*.bin in this folder",
                       model_path);
    }
    if (!is_file(model_path)) return lb__err(LB_ERR_IO, "%s: no such model file or folder", model_path);
    size_t n = strlen(model_path);
    if (n >= 5 && !strcmp(model_path + n - 5, ".json")) {
        if (n >= cap) return lb__err(LB_ERR_ARG, "%s: path too long", model_path);
        memcpy(buf, model_path, n + 1);
        return LB_OK;
    }
    char dir[4096];
    const char *slash = strrchr(model_path, '/');
    size_t dl = slash ? (size_t)(slash - model_path) : 1;
    if (dl >= sizeof dir) return lb__err(LB_ERR_ARG, "%s: path too long", model_path);
    memcpy(dir, slash ? model_path : ".", dl);
    dir[dl] = 0;
    if (!dl) strcpy(dir, "/");
    /* a safetensors file (lowbit's quantized or packed single-file models)
     * has no llama2.c header to take the vocabulary size from, and its
     * tokenizer is most likely a Hugging Face tokenizer.json */
    bool st = n >= 12 && !strcmp(model_path + n - 12, ".safetensors");
    int64_t v = st ? 0 : llama2c_vocab(model_path);
    const char *first = st ? "tokenizer.json" : "tokenizer.bin", *second = st ? "tokenizer.bin" : "tokenizer.json";
    char name[64] = "", tried[80] = "";
    if (v > 0) {
        snprintf(name, sizeof name, "tok%lld.bin", (long long)v);
        snprintf(tried, sizeof tried, "%s, ", name);
    }
    if ((v > 0 && try_path(buf, cap, dir, name)) || try_path(buf, cap, dir, first) ||
        try_path(buf, cap, dir, second) || find_tok_bin(buf, cap, dir))
        return LB_OK;
    return lb__err(LB_ERR_NOTFOUND, "%s: no tokenizer beside this model (looked for %s%s, %s, tok*.bin in %s)",
                   model_path, tried, first, second, dir);
}
