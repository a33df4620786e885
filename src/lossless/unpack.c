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

#define CHUNK LB_UNPACK_CHUNK

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
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            uint64_t e = tab[buf >> (64 - LB_HUFF_TABLE_BITS)], syms = e >> 8;
            memcpy(o, &syms, 8);
            o += (e >> 56) & 7;
            buf <<= e & 63;
            nb -= (int)(e & 63);
        }
    }
    br->pos = pos; br->buf = buf; br->nb = nb;
    while (o < end) {
        if (br->nb < LB_HUFF_TABLE_BITS) refill_safe(br);
        uint64_t e = tab[br->buf >> (64 - LB_HUFF_TABLE_BITS)];
        int l = (int)(e >> 59) & 15;
        *o++ = (uint8_t)(e >> 8);
        br->buf <<= l;
        br->nb -= l;
    }
}

/* Two independent streams at once: their lookups interleave, so one's
 * table load overlaps the other's (the single loop is latency-bound). */
static void decode_exps2(const uint64_t *tab, bitreader *ba, uint8_t *oa, bitreader *bb, uint8_t *ob, int64_t n)
{
    const uint8_t *base = ba->base;
    uint8_t *ea = oa + n, *eb = ob + n;
    size_t pa = ba->pos, pb = bb->pos, size = ba->size;
    uint64_t xa = ba->buf, xb = bb->buf;
    int na = ba->nb, nb = bb->nb;
    while (ea - oa >= 4 * LB_HUFF_MULTI && eb - ob >= 4 * LB_HUFF_MULTI && pa + 8 <= size && pb + 8 <= size) {
        xa |= load_be64(base + pa) >> na;
        pa += (size_t)((63 - na) >> 3);
        na |= 56;
        xb |= load_be64(base + pb) >> nb;
        pb += (size_t)((63 - nb) >> 3);
        nb |= 56;
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            uint64_t e = tab[xa >> (64 - LB_HUFF_TABLE_BITS)], f = tab[xb >> (64 - LB_HUFF_TABLE_BITS)];
            uint64_t se = e >> 8, sf = f >> 8;
            memcpy(oa, &se, 8);
            memcpy(ob, &sf, 8);
            oa += (e >> 56) & 7;
            ob += (f >> 56) & 7;
            xa <<= e & 63; na -= (int)(e & 63);
            xb <<= f & 63; nb -= (int)(f & 63);
        }
    }
    ba->pos = pa; ba->buf = xa; ba->nb = na;
    bb->pos = pb; bb->buf = xb; bb->nb = nb;
    decode_exps(tab, ba, oa, ea - oa);
    decode_exps(tab, bb, ob, eb - ob);
}

/* Four independent streams at once (more lookups in flight than two). */
static void decode_exps4(const uint64_t *tab, bitreader *const br[4], uint8_t *const out[4], int64_t n)
{
    const uint8_t *base = br[0]->base;
    size_t size = br[0]->size;
    uint8_t *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3], *const e0 = o0 + n;
    size_t p0 = br[0]->pos, p1 = br[1]->pos, p2 = br[2]->pos, p3 = br[3]->pos;
    uint64_t x0 = br[0]->buf, x1 = br[1]->buf, x2 = br[2]->buf, x3 = br[3]->buf;
    int n0 = br[0]->nb, n1 = br[1]->nb, n2 = br[2]->nb, n3 = br[3]->nb;
#define REFILL(x, nb, p) do { x |= load_be64(base + p) >> nb; p += (size_t)((63 - nb) >> 3); nb |= 56; } while (0)
#define STEP(x, nb, o) do { uint64_t e_ = tab[x >> (64 - LB_HUFF_TABLE_BITS)], s_ = e_ >> 8; memcpy(o, &s_, 8); \
        o += (e_ >> 56) & 7; x <<= e_ & 63; nb -= (int)(e_ & 63); } while (0)
    uint8_t *const e1 = out[1] + n, *const e2 = out[2] + n, *const e3 = out[3] + n;
    const ptrdiff_t room = 4 * LB_HUFF_MULTI;
    while (e0 - o0 >= room && e1 - o1 >= room && e2 - o2 >= room && e3 - o3 >= room && p0 + 8 <= size &&
           p1 + 8 <= size && p2 + 8 <= size && p3 + 8 <= size) {
        REFILL(x0, n0, p0); REFILL(x1, n1, p1); REFILL(x2, n2, p2); REFILL(x3, n3, p3);
        for (int k = 0; k < 4; k++) { STEP(x0, n0, o0); STEP(x1, n1, o1); STEP(x2, n2, o2); STEP(x3, n3, o3); }
    }
#undef REFILL
#undef STEP
    uint8_t *o[4] = {o0, o1, o2, o3};
    size_t ps[4] = {p0, p1, p2, p3};
    uint64_t xs[4] = {x0, x1, x2, x3};
    int ns[4] = {n0, n1, n2, n3};
    for (int i = 0; i < 4; i++) {
        br[i]->pos = ps[i]; br[i]->buf = xs[i]; br[i]->nb = ns[i];
        decode_exps(tab, br[i], o[i], out[i] + n - o[i]);
    }
}

typedef lb__merge_fn merge_fn;

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

/* One stream being decoded: elements [lo, hi) of stream s go to out[0 ..
 * hi-lo). Exponents are decoded from the stream's start in chunks; only the
 * window is merged. The bit count and padding are checked when the window
 * reaches the stream's end, the CRC when it is the whole stream and verify
 * is set. */
typedef struct {
    const lb_bf16_packed *p;
    int64_t s, cnt, lo, hi, done;
    uint16_t *out;
    bool verify;
    uint32_t crc;
    bitreader br;
    uint8_t exp[CHUNK + 16];
} sdec;

static void sdec_init(sdec *d, const lb_bf16_packed *p, int64_t s, int64_t lo, int64_t hi, uint16_t *out, bool verify)
{
    d->p = p; d->s = s; d->cnt = lb__stream_count(p, s); d->lo = lo; d->hi = hi; d->done = 0; d->out = out;
    d->verify = verify && lo == 0 && hi == d->cnt;
    d->crc = ~0u;
    d->br = (bitreader){p->payload, (size_t)p->off[s], (size_t)p->off[p->n_streams], 0, 0};
}

static int64_t sdec_next(const sdec *d) { return lb__min64(CHUNK, d->cnt - d->done); }

/* Merge the decoded chunk's part inside the window; advance. */
static void sdec_emit(sdec *d, merge_fn merge)
{
    int64_t k = sdec_next(d), a = lb__max64(d->lo, d->done), b = lb__min64(d->hi, d->done + k);
    if (a < b) {
        merge(d->exp + (a - d->done), d->p->sm + d->s * d->p->stream_len + a, d->out + (a - d->lo), b - a);
        if (d->verify) d->crc = lb__crc32c_update(d->crc, d->out + (a - d->lo), (size_t)(b - a) * 2);
    }
    d->done += k;
}

static void sdec_chunk(sdec *d, merge_fn merge)
{
    if (d->p->kind == LB_KIND_CONSTANT) memset(d->exp, d->p->const_exp, (size_t)sdec_next(d));
    else decode_exps(d->p->table, &d->br, d->exp, sdec_next(d));
    sdec_emit(d, merge);
}

static int sdec_finish(sdec *d, merge_fn merge, stream_result *r)
{
    const lb_bf16_packed *p = d->p;
    while (d->done < d->hi) sdec_chunk(d, merge);
    r->bits_used = (uint64_t)(d->br.pos - p->off[d->s]) * 8 - (uint64_t)d->br.nb;
    r->crc = ~d->crc;
    if (d->hi < d->cnt) return OK;
    if (r->bits_used != p->nbits[d->s]) return BAD_BITS;
    uint32_t tail = p->nbits[d->s] % 8;
    if (tail && p->payload[p->off[d->s + 1] - 1] & ((1u << (8 - tail)) - 1)) return BAD_PAD;
    if (d->verify && r->crc != p->crc[d->s]) return BAD_CRC;
    return OK;
}

/* Two streams side by side while both have whole Huffman chunks left. */
static void sdec_pair(sdec *a, sdec *b, merge_fn merge)
{
    if (a->p->kind != LB_KIND_HUFFMAN) return;
    while (a->done < a->hi && b->done < b->hi && sdec_next(a) == CHUNK && sdec_next(b) == CHUNK) {
        decode_exps2(a->p->table, &a->br, a->exp, &b->br, b->exp, CHUNK);
        sdec_emit(a, merge);
        sdec_emit(b, merge);
    }
}

/* Four streams side by side while all have whole Huffman chunks left. */
static void sdec_quad(sdec *d, merge_fn merge)
{
    if (d[0].p->kind != LB_KIND_HUFFMAN) return;
    for (;;) {
        for (int k = 0; k < 4; k++)
            if (d[k].done >= d[k].hi || sdec_next(&d[k]) != CHUNK) return;
        bitreader *br[4] = {&d[0].br, &d[1].br, &d[2].br, &d[3].br};
        uint8_t *o[4] = {d[0].exp, d[1].exp, d[2].exp, d[3].exp};
        decode_exps4(d[0].p->table, br, o, CHUNK);
        for (int k = 0; k < 4; k++) sdec_emit(&d[k], merge);
    }
}

static int decode_window(const lb_bf16_packed *p, int64_t s, int64_t lo, int64_t hi, uint16_t *out, bool verify,
                         merge_fn merge, stream_result *r)
{
    sdec d;
    sdec_init(&d, p, s, lo, hi, out, verify);
    return sdec_finish(&d, merge, r);
}

static int decode_stream(const lb_bf16_packed *p, int64_t s, uint16_t *out, bool verify, merge_fn merge,
                         stream_result *r)
{
    return decode_window(p, s, 0, lb__stream_count(p, s), out, verify, merge, r);
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

typedef struct {
    const lb_bf16_packed *p;
    int64_t begin, end;       /* elements */
    uint16_t *out;            /* element begin goes to out[0] */
    bool verify;
    merge_fn merge;
    _Atomic int64_t bad;
} range_ctx;

static void range_init(const range_ctx *c, sdec *d, int64_t s)
{
    int64_t sl = c->p->stream_len, lo = lb__max64(c->begin - s * sl, 0);
    int64_t hi = lb__min64(c->end - s * sl, lb__stream_count(c->p, s));
    sdec_init(d, c->p, s, lo, hi, c->out + (s * sl + lo - c->begin), c->verify);
}

static void range_done(range_ctx *c, sdec *d)
{
    stream_result r;
    if (sdec_finish(d, c->merge, &r) == OK) return;
    int64_t cur = atomic_load(&c->bad);
    while (d->s < cur && !atomic_compare_exchange_weak(&c->bad, &cur, d->s)) {}
}

/* Streams two at a time (interleaved decoding), then any odd one alone. */
static void range_task(void *vctx, int64_t b, int64_t e, int thread)
{
    range_ctx *c = vctx;
    int64_t s0 = c->begin / c->p->stream_len;
    sdec d[4];
    for (; b + 4 <= e; b += 4) {
        for (int k = 0; k < 4; k++) range_init(c, &d[k], s0 + b + k);
        sdec_quad(d, c->merge);
        for (int k = 3; k >= 0; k--) range_done(c, &d[k]);
    }
    for (int64_t i = b; i < e; i += 2) {
        range_init(c, &d[0], s0 + i);
        if (i + 1 < e) {
            range_init(c, &d[1], s0 + i + 1);
            sdec_pair(&d[0], &d[1], c->merge);
            range_done(c, &d[1]);
        }
        range_done(c, &d[0]);
    }
}

lb_status lb_bf16_unpack_range(const lb_bf16_packed *p, int64_t begin, int64_t count, uint16_t *out, unsigned flags,
                               lb_pool *pool)
{
    LB_ARG(p, "lb_bf16_unpack_range: p is NULL");
    LB_ARG(out || count <= 0, "lb_bf16_unpack_range: out is NULL");
    if (begin < 0 || count < 0 || begin > p->n || count > p->n - begin)
        return lb__err(LB_ERR_ARG, "tensor '%s': elements [%lld, +%lld) outside 0..%lld", lb__packed_name(p),
                       (long long)begin, (long long)count, (long long)p->n);
    if (!count) return LB_OK;
    range_ctx c = {.p = p, .begin = begin, .end = begin + count, .out = out, .verify = !(flags & LB_UNPACK_NOVERIFY),
                   .merge = pick_merge()};
    atomic_init(&c.bad, INT64_MAX);
    int64_t s0 = begin / p->stream_len, s1 = (begin + count - 1) / p->stream_len + 1;
    lb_pool_for(s1 - s0 > 2 ? pool : NULL, s1 - s0, 2, range_task, &c);
    int64_t bad = atomic_load(&c.bad);
    if (bad == INT64_MAX) return LB_OK;
    uint16_t *tmp = lb__alloc(sizeof *tmp * (size_t)p->stream_len);
    if (!tmp) return LB_ERR_NOMEM;
    lb_status st = stream_error(p, bad, tmp, c.merge);
    LB_FREE(tmp);
    return st;
}

lb_status lb_bf16_unpack_streams(const lb_bf16_packed *p, int64_t first, int64_t count, uint16_t *out,
                                 unsigned flags, lb_pool *pool)
{
    LB_ARG(p, "lb_bf16_unpack_streams: p is NULL");
    LB_ARG(out || count <= 0, "lb_bf16_unpack_streams: out is NULL");
    if (first < 0 || count < 0 || first > p->n_streams || count > p->n_streams - first)
        return lb__err(LB_ERR_ARG, "tensor '%s': streams [%lld, +%lld) outside 0..%lld", lb__packed_name(p),
                       (long long)first, (long long)count, (long long)p->n_streams);
    int64_t a = lb__min64(first * p->stream_len, p->n), b = lb__min64((first + count) * p->stream_len, p->n);
    return lb_bf16_unpack_range(p, a, b - a, out, flags, pool);
}

lb_status lb_bf16_unpack(const lb_bf16_packed *p, uint16_t *out, lb_pool *pool)
{
    LB_ARG(p, "lb_bf16_unpack: p is NULL");
    LB_ARG(out || !p->n, "lb_bf16_unpack: out is NULL");
    return lb_bf16_unpack_streams(p, 0, p->n_streams, out, 0, pool);
}

/* ---- Sequential reading (the forward pass's fused decode + matmul) ----
 * A cursor walks elements [begin, end) of a tensor in order across stream
 * boundaries, decoding CHUNK exponents at a time and merging only what the
 * caller asks for, so no part of a stream is decoded twice. Starting inside
 * a stream decodes (but does not merge) that stream's elements before
 * `begin`. Two cursors read side by side decode their chunks interleaved
 * (decode_exps2) whenever both need a whole chunk. */

static int64_t cur_stream_count(const lb__cursor *c) { return lb__stream_count(c->p, c->s); }

static void cur_start_stream(lb__cursor *c)
{
    const lb_bf16_packed *p = c->p;
    c->cbase = 0;
    c->clen = 0;
    c->used = 0;
    c->pos = (size_t)p->off[c->s];
    c->buf = 0;
    c->nb = 0;
}

void lb__cursor_init(lb__cursor *c, const lb_bf16_packed *p, int64_t begin, int64_t end, lb__merge_fn merge)
{
    c->p = p;
    c->left = end - begin;
    c->s = p->stream_len ? begin / p->stream_len : 0;
    c->skip = begin - c->s * p->stream_len;
    c->merge = merge;
    c->bad = false;
    cur_start_stream(c);
}

/* Stream c->s fully decoded: check its bit count and padding, go to the next. */
static void cur_next_stream(lb__cursor *c)
{
    const lb_bf16_packed *p = c->p;
    uint64_t used = (uint64_t)(c->pos - p->off[c->s]) * 8 - (uint64_t)c->nb;
    if (p->kind == LB_KIND_HUFFMAN && used != p->nbits[c->s]) c->bad = true;
    c->s++;
    cur_start_stream(c);
}

static void cur_load(lb__cursor *c, bitreader *br)
{
    *br = (bitreader){c->p->payload, c->pos, (size_t)c->p->off[c->p->n_streams], c->buf, c->nb};
}

static void cur_save(lb__cursor *c, const bitreader *br)
{
    c->pos = br->pos;
    c->buf = br->buf;
    c->nb = br->nb;
}

/* Exponents left undecoded in the current stream, capped at CHUNK. */
static int64_t cur_next_len(const lb__cursor *c) { return lb__min64(CHUNK, cur_stream_count(c) - c->cbase - c->clen); }

/* The chunk buffer is used up: decode the next chunk of this stream. */
static void cur_decode(lb__cursor *c)
{
    if (c->cbase + c->clen == cur_stream_count(c)) cur_next_stream(c);
    int64_t k = cur_next_len(c);
    c->cbase += c->clen;
    c->clen = k;
    c->used = 0;
    if (c->p->kind == LB_KIND_CONSTANT) {
        memset(c->exp, c->p->const_exp, (size_t)c->clen);
        return;
    }
    bitreader br;
    cur_load(c, &br);
    decode_exps(c->p->table, &br, c->exp, c->clen);
    cur_save(c, &br);
}

/* Start the next chunk of c, of CHUNK values (false when the stream has
 * fewer left or the tensor has no Huffman bits: cur_decode then). */
static bool cur_whole_chunk(lb__cursor *c)
{
    if (c->p->kind != LB_KIND_HUFFMAN) return false;
    if (c->cbase + c->clen == cur_stream_count(c)) cur_next_stream(c);
    return cur_next_len(c) == CHUNK;
}

static void cur_begin_chunk(lb__cursor *c, bitreader *br)
{
    c->cbase += c->clen;
    c->clen = CHUNK;
    c->used = 0;
    cur_load(c, br);
}

/* The next whole chunks of n cursors (2 or 4), interleaved; false (and
 * nothing decoded) when one of them has no whole chunk next. */
static bool cur_decode_n(int n, lb__cursor *const *c)
{
    for (int i = 0; i < n; i++) if (!cur_whole_chunk(c[i])) return false;
    bitreader br[4];
    for (int i = 0; i < n; i++) cur_begin_chunk(c[i], &br[i]);
    if (n == 4) {
        bitreader *b[4] = {&br[0], &br[1], &br[2], &br[3]};
        uint8_t *o[4] = {c[0]->exp, c[1]->exp, c[2]->exp, c[3]->exp};
        decode_exps4(c[0]->p->table, b, o, CHUNK);
    } else {
        decode_exps2(c[0]->p->table, &br[0], c[0]->exp, &br[1], c[1]->exp, CHUNK);
    }
    for (int i = 0; i < n; i++) cur_save(c[i], &br[i]);
    return true;
}

/* Take what the chunk buffer holds (skipping first), up to *want values. */
static void cur_take(lb__cursor *c, uint16_t **out, int64_t *want)
{
    int64_t k = lb__min64(c->skip, c->clen - c->used);
    c->used += k;
    c->skip -= k;
    k = lb__min64(*want, c->clen - c->used);
    if (k <= 0) return;
    const uint8_t *sm = c->p->sm + c->s * c->p->stream_len + c->cbase + c->used;
    c->merge(c->exp + c->used, sm, *out, k);
    c->used += k;
    *out += k;
    *want -= k;
    c->left -= k;
}

static bool cur_empty(const lb__cursor *c) { return c->used == c->clen; }

void lb__cursor_read(int n, lb__cursor *const *c, uint16_t *const *out, const int64_t *count)
{
    LB_ASSERT(n >= 1 && n <= 4);
    uint16_t *o[4];
    int64_t want[4];
    for (int i = 0; i < n; i++) {
        LB_ASSERT(count[i] <= c[i]->left);
        o[i] = out[i];
        want[i] = count[i];
    }
    for (;;) {
        lb__cursor *need[4];   /* cursors that want more and hold nothing */
        int m = 0;
        for (int i = 0; i < n; i++) {
            if (want[i] > 0) cur_take(c[i], &o[i], &want[i]);
            if (want[i] > 0 && cur_empty(c[i])) need[m++] = c[i];
        }
        bool any = false;
        for (int i = 0; i < n; i++) any |= want[i] > 0;
        if (!any) return;
        if (m == 4 && cur_decode_n(4, need)) continue;
        for (int i = 0; i < m; i += 2)
            if (i + 1 >= m || !cur_decode_n(2, need + i)) {
                cur_decode(need[i]);
                if (i + 1 < m) cur_decode(need[i + 1]);
            }
    }
}

bool lb__cursor_finish(lb__cursor *c)
{
    /* a cursor that ended exactly at its stream's end checks that stream too */
    if (!c->bad && c->left == 0 && c->skip == 0 && cur_empty(c) && c->cbase + c->clen == cur_stream_count(c) &&
        c->clen > 0) {
        const lb_bf16_packed *p = c->p;
        uint64_t used = (uint64_t)(c->pos - p->off[c->s]) * 8 - (uint64_t)c->nb;
        if (p->kind == LB_KIND_HUFFMAN && used != p->nbits[c->s]) c->bad = true;
    }
    return !c->bad;
}

lb__merge_fn lb__merge_pick(void) { return pick_merge(); }
