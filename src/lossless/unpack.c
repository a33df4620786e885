/* unpack.c: the decoder. Each stream is decoded on its own (streams run in
 * parallel over the pool) in chunks of CHUNK exponents: a table-driven
 * Huffman loop fills a small exponent buffer, then the merge kernel
 * (AVX2/AVX-512 when available) interleaves it with the raw sign+mantissa
 * bytes into BF16 and the CRC-32C runs over the chunk while it is in L1.
 *
 * Bit reader: `buf` holds the next bits MSB-first; `nb` of them are valid
 * and the byte at `pos` goes right below them. The fast refill loads 8 bytes
 * at once (Giesen's branchless "variant 4"), which leaves nb in 56..63, enough
 * for four 12-bit lookups; each lookup yields up to 6 symbols. Near the end
 * of the payload a byte-wise refill reads zeros past the end, so no read
 * ever leaves the payload; the exact bit count of every stream is checked
 * afterwards. */
#include "lossless/lossless.h"
#include <stdatomic.h>

#define CHUNK 4096

typedef struct {
    const uint8_t *base;
    size_t pos, size;
    uint64_t buf;
    int nb;
} bitreader;

static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static inline void refill_safe(bitreader *br)
{
    while (br->nb <= 56) {
        uint64_t byte = br->pos < br->size ? br->base[br->pos] : 0;
        br->buf |= byte << (56 - br->nb);
        br->pos++;
        br->nb += 8;
    }
}

/* Decode exactly n exponents into o (which has 8 bytes of slack). */
static void decode_exps(const uint64_t *tab, bitreader *br, uint8_t *o, int64_t n)
{
    const uint8_t *base = br->base;
    uint8_t *end = o + n;
    size_t pos = br->pos, size = br->size;
    uint64_t buf = br->buf;
    int nb = br->nb;
    while (end - o >= 4 * LB_HUFF_MULTI && pos + 8 <= size) {
        buf |= load_be64(base + pos) >> nb;
        pos += (size_t)((63 - nb) >> 3);
        nb |= 56;
        for (int k = 0; k < 4; k++) {
            uint64_t e = tab[buf >> (64 - LB_HUFF_TABLE_BITS)];
            int used = (int)(e >> 48) & 0xff;
            memcpy(o, &e, 8);
            o += (e >> 56) & 7;
            buf <<= used;
            nb -= used;
        }
    }
    br->pos = pos; br->buf = buf; br->nb = nb;
    while (o < end) {
        if (br->nb < LB_HUFF_TABLE_BITS) refill_safe(br);
        uint64_t e = tab[br->buf >> (64 - LB_HUFF_TABLE_BITS)];
        int l = (int)(e >> 59) & 15;
        *o++ = (uint8_t)e;
        br->buf <<= l;
        br->nb -= l;
    }
}

typedef void (*merge_fn)(const uint8_t *, const uint8_t *, uint16_t *, int64_t);

static merge_fn pick_merge(void)
{
    lb_isa isa = lb_isa_active();
    return isa >= LB_ISA_AVX512 ? lb__bf16_merge_avx512 : isa >= LB_ISA_AVX2 ? lb__bf16_merge_avx2 : lb__bf16_merge_ref;
}

enum { OK = 0, BAD_BITS = 1, BAD_PAD = 2, BAD_CRC = 3 };

typedef struct {
    uint64_t bits_used;
    uint32_t crc;
} stream_result;

/* Decode elements [lo, hi) of stream s into out[0 .. hi-lo). Exponents are
 * decoded from the stream's start; only the window is merged. The bit count
 * and padding are checked when the window reaches the stream's end, the CRC
 * when it is the whole stream and verify is set. */
static int decode_window(const lb_bf16_packed *p, int64_t s, int64_t lo, int64_t hi, uint16_t *out, bool verify,
                         merge_fn merge, stream_result *r)
{
    int64_t cnt = lb__stream_count(p, s);
    const uint8_t *sm = p->sm + s * p->stream_len;
    uint8_t exp[CHUNK + 16];
    bitreader br = {p->payload, (size_t)p->off[s], (size_t)p->off[p->n_streams], 0, 0};
    uint32_t crc = ~0u;
    verify = verify && lo == 0 && hi == cnt;
    for (int64_t done = 0; done < hi; done += CHUNK) {
        int64_t k = lb__min64(CHUNK, cnt - done), a = lb__max64(lo, done), b = lb__min64(hi, done + k);
        if (p->kind == LB_KIND_CONSTANT) memset(exp, p->const_exp, (size_t)k);
        else decode_exps(p->table, &br, exp, k);
        if (a >= b) continue;
        merge(exp + (a - done), sm + a, out + (a - lo), b - a);
        if (verify) crc = lb__crc32c_update(crc, out + (a - lo), (size_t)(b - a) * 2);
    }
    r->bits_used = (uint64_t)(br.pos - p->off[s]) * 8 - (uint64_t)br.nb;
    r->crc = ~crc;
    if (hi < cnt) return OK;
    if (r->bits_used != p->nbits[s]) return BAD_BITS;
    if (p->nbits[s] % 8 && p->payload[p->off[s + 1] - 1] & ((1u << (8 - p->nbits[s] % 8)) - 1)) return BAD_PAD;
    if (verify && r->crc != p->crc[s]) return BAD_CRC;
    return OK;
}

static int decode_stream(const lb_bf16_packed *p, int64_t s, uint16_t *out, bool verify, merge_fn merge,
                         stream_result *r)
{
    return decode_window(p, s, 0, lb__stream_count(p, s), out, verify, merge, r);
}

typedef struct {
    const lb_bf16_packed *p;
    int64_t first;
    uint16_t *out;
    bool verify;
    merge_fn merge;
    _Atomic int64_t bad;      /* lowest failing stream, INT64_MAX when none */
} unpack_ctx;

static void unpack_task(void *vctx, int64_t b, int64_t e, int thread)
{
    unpack_ctx *c = vctx;
    for (int64_t i = b; i < e; i++) {
        stream_result r;
        if (decode_stream(c->p, c->first + i, c->out + i * c->p->stream_len, c->verify, c->merge, &r) == OK) continue;
        int64_t cur = atomic_load(&c->bad);
        while (i < cur && !atomic_compare_exchange_weak(&c->bad, &cur, i)) {}
    }
}

/* Decode the failing stream again on this thread to word the message. */
static lb_status stream_error(const lb_bf16_packed *p, int64_t s, uint16_t *out, merge_fn merge)
{
    stream_result r;
    int why = decode_stream(p, s, out, true, merge, &r);
    const char *nm = lb__packed_name(p);
    if (why == BAD_BITS)
        return lb__err(LB_ERR_CORRUPT, "tensor '%s': stream %lld of %lld: decoding used %llu bits, the stream table says %u: data corrupt",
                       nm, (long long)s, (long long)p->n_streams, (unsigned long long)r.bits_used, p->nbits[s]);
    if (why == BAD_PAD)
        return lb__err(LB_ERR_CORRUPT, "tensor '%s': stream %lld of %lld: nonzero padding bits after the last code: data corrupt",
                       nm, (long long)s, (long long)p->n_streams);
    return lb__err(LB_ERR_CORRUPT, "tensor '%s': stream %lld of %lld: CRC-32C mismatch (stored %08x, decoded data gives %08x): data corrupt",
                   nm, (long long)s, (long long)p->n_streams, p->crc[s], r.crc);
}

lb_status lb_bf16_unpack_streams(const lb_bf16_packed *p, int64_t first, int64_t count, uint16_t *out,
                                 unsigned flags, lb_pool *pool)
{
    if (!p || (!out && count > 0)) return lb__err(LB_ERR_ARG, "lb_bf16_unpack_streams: NULL argument");
    if (first < 0 || count < 0 || first > p->n_streams || count > p->n_streams - first)
        return lb__err(LB_ERR_ARG, "tensor '%s': streams [%lld, +%lld) outside 0..%lld", lb__packed_name(p),
                       (long long)first, (long long)count, (long long)p->n_streams);
    unpack_ctx c = {.p = p, .first = first, .out = out, .verify = !(flags & LB_UNPACK_NOVERIFY), .merge = pick_merge()};
    atomic_init(&c.bad, INT64_MAX);
    lb_pool_for(pool, count, 1, unpack_task, &c);
    int64_t bad = atomic_load(&c.bad);
    if (bad != INT64_MAX) return stream_error(p, first + bad, out + bad * p->stream_len, c.merge);
    return LB_OK;
}

typedef struct {
    const lb_bf16_packed *p;
    int64_t begin, end;       /* elements */
    uint16_t *out;            /* element begin goes to out[0] */
    bool verify;
    merge_fn merge;
    _Atomic int64_t bad;
} range_ctx;

static void range_task(void *vctx, int64_t b, int64_t e, int thread)
{
    range_ctx *c = vctx;
    int64_t sl = c->p->stream_len, s0 = c->begin / sl;
    for (int64_t i = b; i < e; i++) {
        int64_t s = s0 + i, lo = lb__max64(c->begin - s * sl, 0), hi = lb__min64(c->end - s * sl, lb__stream_count(c->p, s));
        stream_result r;
        if (decode_window(c->p, s, lo, hi, c->out + (s * sl + lo - c->begin), c->verify, c->merge, &r) == OK) continue;
        int64_t cur = atomic_load(&c->bad);
        while (s < cur && !atomic_compare_exchange_weak(&c->bad, &cur, s)) {}
    }
}

lb_status lb_bf16_unpack_range(const lb_bf16_packed *p, int64_t begin, int64_t count, uint16_t *out, unsigned flags,
                               lb_pool *pool)
{
    if (!p || (!out && count > 0)) return lb__err(LB_ERR_ARG, "lb_bf16_unpack_range: NULL argument");
    if (begin < 0 || count < 0 || begin > p->n || count > p->n - begin)
        return lb__err(LB_ERR_ARG, "tensor '%s': elements [%lld, +%lld) outside 0..%lld", lb__packed_name(p),
                       (long long)begin, (long long)count, (long long)p->n);
    if (!count) return LB_OK;
    range_ctx c = {.p = p, .begin = begin, .end = begin + count, .out = out, .verify = !(flags & LB_UNPACK_NOVERIFY),
                   .merge = pick_merge()};
    atomic_init(&c.bad, INT64_MAX);
    int64_t s0 = begin / p->stream_len, s1 = (begin + count - 1) / p->stream_len + 1;
    lb_pool_for(s1 - s0 > 1 ? pool : NULL, s1 - s0, 1, range_task, &c);
    int64_t bad = atomic_load(&c.bad);
    if (bad == INT64_MAX) return LB_OK;
    uint16_t *tmp = lb__alloc(sizeof *tmp * (size_t)p->stream_len);
    if (!tmp) return LB_ERR_NOMEM;
    lb_status st = stream_error(p, bad, tmp, c.merge);
    LB_FREE(tmp);
    return st;
}

lb_status lb_bf16_unpack(const lb_bf16_packed *p, uint16_t *out, lb_pool *pool)
{
    if (!p) return lb__err(LB_ERR_ARG, "lb_bf16_unpack: NULL packed tensor");
    return lb_bf16_unpack_streams(p, 0, p->n_streams, out, 0, pool);
}
