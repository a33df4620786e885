/* pack.c: the encoder. Three passes over the tensor, each parallel over
 * streams: (1) per-stream exponent histograms, sign+mantissa bytes and
 * CRC-32C of the input bytes; (2) one code for the whole tensor from the
 * summed histogram (package-merge, lengths <= cap), whose per-stream bit
 * counts give every stream's exact size and offset before any bit is
 * written; (3) each stream's exponents coded MSB-first into its own
 * byte-aligned slot. A tensor with a single exponent value needs no bits. */
#include "lossless/lossless.h"

lb_status lb__packed_alloc(const char *name, int64_t n, int64_t stream_len, lb_bf16_packed **out)
{
    *out = NULL;
    lb_bf16_packed *p = lb__zalloc(sizeof *p);
    if (!p) return LB_ERR_NOMEM;
    p->n = n;
    p->stream_len = stream_len;
    p->n_streams = n ? (n - 1) / stream_len + 1 : 0;
    size_t ns = (size_t)p->n_streams;
    p->name = lb__alloc(strlen(name ? name : "") + 1);
    p->nbits = lb__zalloc(sizeof(uint32_t) * (ns + 1));
    p->crc = lb__zalloc(sizeof(uint32_t) * (ns + 1));
    p->off = lb__zalloc(sizeof(uint64_t) * (ns + 1));
    if (!p->name || !p->nbits || !p->crc || !p->off) { lb_bf16_packed_free(p); return LB_ERR_NOMEM; }
    strcpy(p->name, name ? name : "");
    *out = p;
    return LB_OK;
}

void lb_bf16_packed_free(lb_bf16_packed *p)
{
    if (!p) return;
    LB_FREE(p->name);
    LB_FREE(p->nbits);
    LB_FREE(p->crc);
    LB_FREE(p->off);
    lb__free_aligned(p->table);
    LB_FREE(p->owned);
    LB_FREE(p);
}

lb_status lb__packed_finish_codes(lb_bf16_packed *p)
{
    p->n_symbols = p->longest = 0;
    p->shortest = 255;
    for (int e = 0; e < 256; e++) {
        if (!p->code_len[e]) continue;
        p->n_symbols++;
        if (p->code_len[e] > p->longest) p->longest = p->code_len[e];
        if (p->code_len[e] < p->shortest) p->shortest = p->code_len[e];
    }
    if (p->kind == LB_KIND_CONSTANT) { p->n_symbols = p->n ? 1 : 0; p->shortest = 0; return LB_OK; }
    p->table = lb__alloc_aligned(sizeof(uint64_t) * LB_HUFF_TABLE_SIZE);
    if (!p->table) return LB_ERR_NOMEM;
    lb__huff_build_table(p->code_len, p->table);
    return LB_OK;
}

void lb_bf16_packed_get_info(const lb_bf16_packed *p, lb_bf16_packed_info *info)
{
    if (!info) return;
    memset(info, 0, sizeof *info);
    info->name = "";
    if (!p) return;
    info->name = lb__packed_name(p);
    info->n = p->n;
    info->stream_len = p->stream_len;
    info->n_streams = p->n_streams;
    info->n_symbols = p->n_symbols;
    info->longest_code = p->longest;
    memcpy(info->code_len, p->code_len, 256);
    for (int64_t s = 0; s < p->n_streams; s++) info->exp_bits += p->nbits[s];
    info->blob_size = lb_bf16_packed_blob_size(p);
}

/* ---- pass 1: histograms, sign+mantissa bytes, CRCs */

typedef struct {
    lb_bf16_packed *p;
    const uint16_t *x;
    uint8_t *sm;
    uint32_t (*hist)[256];   /* (n_streams, 256) */
    const uint32_t *code;
} pack_ctx;

static void scan_task(void *vctx, int64_t b, int64_t e, int thread)
{
    pack_ctx *c = vctx;
    for (int64_t s = b; s < e; s++) {
        int64_t at = s * c->p->stream_len, cnt = lb__stream_count(c->p, s);
        const uint16_t *x = c->x + at;
        uint32_t *h = c->hist[s];
        for (int64_t i = 0; i < cnt; i++) {
            h[(x[i] >> 7) & 0xff]++;
            c->sm[at + i] = (uint8_t)((x[i] >> 8 & 0x80) | (x[i] & 0x7f));
        }
        c->p->crc[s] = lb__crc32c(x, (size_t)cnt * 2);
    }
}

/* ---- pass 3: the bits */

static void put_be32(uint8_t *d, uint32_t w)
{
    d[0] = (uint8_t)(w >> 24); d[1] = (uint8_t)(w >> 16); d[2] = (uint8_t)(w >> 8); d[3] = (uint8_t)w;
}

static void encode_stream(const uint16_t *x, int64_t cnt, const uint8_t *len, const uint32_t *code, uint8_t *dst)
{
    uint64_t acc = 0; /* bits above nacc are stale and never written */
    int nacc = 0;
    for (int64_t i = 0; i < cnt; i++) {
        int e = (x[i] >> 7) & 0xff;
        acc = acc << len[e] | code[e];
        nacc += len[e];
        if (nacc >= 32) { nacc -= 32; put_be32(dst, (uint32_t)(acc >> nacc)); dst += 4; }
    }
    while (nacc >= 8) { nacc -= 8; *dst++ = (uint8_t)(acc >> nacc); }
    if (nacc) *dst = (uint8_t)(acc << (8 - nacc));
}

static void encode_task(void *vctx, int64_t b, int64_t e, int thread)
{
    pack_ctx *c = vctx;
    lb_bf16_packed *p = c->p;
    for (int64_t s = b; s < e; s++)
        encode_stream(c->x + s * p->stream_len, lb__stream_count(p, s), p->code_len, c->code,
                      (uint8_t *)p->owned + p->n + p->off[s]);
}

/* Pass 2: the code, then sizes and offsets. Returns payload bytes. */
static uint64_t choose_code(lb_bf16_packed *p, uint32_t (*hist)[256], int cap)
{
    uint64_t total[256] = {0};
    for (int64_t s = 0; s < p->n_streams; s++)
        for (int e = 0; e < 256; e++) total[e] += hist[s][e];
    int m = lb__huff_lengths(total, 256, cap, p->code_len);
    if (m <= 1) {
        p->kind = LB_KIND_CONSTANT;
        for (int e = 0; e < 256; e++) if (total[e]) p->const_exp = (uint8_t)e;
        memset(p->code_len, 0, 256);
    }
    for (int64_t s = 0; s < p->n_streams; s++) {
        uint64_t bits = 0;
        for (int e = 0; e < 256; e++) bits += (uint64_t)hist[s][e] * p->code_len[e];
        p->nbits[s] = (uint32_t)bits;
        p->off[s + 1] = p->off[s] + (bits + 7) / 8;
    }
    return p->off[p->n_streams];
}

lb_status lb_bf16_pack(const uint16_t *x, int64_t n, const char *name, const lb_bf16_pack_opts *opts,
                       lb_pool *pool, lb_bf16_packed **out)
{
    if (!out) return lb__err(LB_ERR_ARG, "lb_bf16_pack: out is NULL");
    *out = NULL;
    LB_ARG(x || n <= 0, "lb_bf16_pack: x is NULL");
    const char *nm = name ? name : "";
    int64_t sl = opts && opts->stream_len ? opts->stream_len : LB_LOSSLESS_STREAM_LEN;
    int cap = opts && opts->max_code_len ? opts->max_code_len : LB_LOSSLESS_MAX_CODE_LEN;
    if (n < 0 || (n > 0 && !x)) return lb__err(LB_ERR_ARG, "tensor '%s': bad element count %lld or NULL data", nm, (long long)n);
    if (sl < 1 || sl > LB_MAX_STREAM_LEN)
        return lb__err(LB_ERR_ARG, "tensor '%s': stream length %lld outside 1..%lld", nm, (long long)sl, (long long)LB_MAX_STREAM_LEN);
    if (cap < 8 || cap > LB_LOSSLESS_MAX_CODE_LEN)
        return lb__err(LB_ERR_ARG, "tensor '%s': code length cap %d outside 8..%d", nm, cap, LB_LOSSLESS_MAX_CODE_LEN);
    lb_bf16_packed *p;
    lb_status st = lb__packed_alloc(name, n, sl, &p);
    if (st) return st;
    pack_ctx c = {.p = p, .x = x};
    c.hist = lb__zalloc(sizeof(*c.hist) * (size_t)(p->n_streams + 1));
    c.sm = lb__alloc((size_t)n + 1);
    if (!c.hist || !c.sm) { st = LB_ERR_NOMEM; goto fail; }
    lb_pool_for(pool, p->n_streams, 1, scan_task, &c);
    uint64_t bytes = choose_code(p, c.hist, cap);
    p->owned = LB_REALLOC(c.sm, (size_t)n + (size_t)bytes + 1);
    if (!p->owned) { st = lb__err(LB_ERR_NOMEM, "tensor '%s': out of memory for %llu packed bytes", nm, (unsigned long long)bytes); goto fail; }
    c.sm = NULL;
    p->sm = p->owned;
    p->payload = (const uint8_t *)p->owned + n;
    if (p->kind == LB_KIND_HUFFMAN) {
        uint32_t code[256];
        lb__huff_codes(p->code_len, 256, code);
        c.code = code;
        memset((uint8_t *)p->owned + n, 0, (size_t)bytes);
        lb_pool_for(pool, p->n_streams, 1, encode_task, &c);
    }
    if ((st = lb__packed_finish_codes(p))) goto fail;
    LB_FREE(c.hist);
    *out = p;
    return LB_OK;
fail:
    LB_FREE(c.hist);
    LB_FREE(c.sm);
    lb_bf16_packed_free(p);
    return st;
}
