/* blob.c: the serialized form of a packed tensor and its validation.
 *
 *   0   4  magic "LBEX"
 *   4   2  version (1), little-endian like every integer here
 *   6   1  kind: 0 Huffman, 1 constant exponent (no bits at all)
 *   7   1  the constant exponent (kind 1), else 0
 *   8   8  n, elements
 *   16  4  stream_len, elements per stream
 *   20  4  n_streams = ceil(n / stream_len)
 *   24  1  longest code length in use (0 for kind 1)
 *   25  3  zero
 *   28  4  CRC-32C of bytes [0, 28) followed by [32, 288 + 8 * n_streams)
 *   32  256 code length of each exponent value (0 = absent)
 *   288 8*n_streams  per stream: u32 exact exponent bits, u32 CRC-32C of the
 *                    stream's decoded BF16 values as little-endian bytes
 *   ..  n  sign+mantissa bytes, (s << 7) | m
 *   ..  exponent bits: stream s starts at byte sum_{t<s} ceil(bits_t / 8),
 *       MSB-first, canonical codes, zero padding to a byte
 *
 * Reading checks everything that can be checked without decoding; decoding
 * then checks each stream's exact bit count and CRC. */
#include "lossless/lossless.h"

static void put_le(uint8_t *d, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) d[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *d, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)d[i] << (8 * i);
    return v;
}

size_t lb_bf16_packed_blob_size(const lb_bf16_packed *p)
{
    if (!p) return 0;
    return LB_BLOB_TABLES + LB_BLOB_STREAM_ENTRY * (size_t)p->n_streams + (size_t)p->n +
           (size_t)p->off[p->n_streams];
}

static uint32_t header_crc(const uint8_t *b, size_t tables_end)
{
    uint32_t c = lb__crc32c_update(~0u, b, 28);
    return ~lb__crc32c_update(c, b + LB_BLOB_HEADER, tables_end - LB_BLOB_HEADER);
}

lb_status lb_bf16_packed_write(const lb_bf16_packed *p, void *buf, size_t cap)
{
    LB_ARG(p, "lb_bf16_packed_write: p is NULL");
    LB_ARG(buf, "lb_bf16_packed_write: buf is NULL");
    size_t need = lb_bf16_packed_blob_size(p);
    if (cap < need)
        return lb__err(LB_ERR_ARG, "tensor '%s': blob needs %zu bytes, buffer has %zu", lb__packed_name(p), need, cap);
    uint8_t *b = buf;
    memset(b, 0, LB_BLOB_TABLES);
    memcpy(b, LB_BLOB_MAGIC, 4);
    put_le(b + 4, LB_BLOB_VERSION, 2);
    b[6] = (uint8_t)p->kind;
    b[7] = p->kind == LB_KIND_CONSTANT ? p->const_exp : 0;
    put_le(b + 8, (uint64_t)p->n, 8);
    put_le(b + 16, (uint64_t)p->stream_len, 4);
    put_le(b + 20, (uint64_t)p->n_streams, 4);
    b[24] = (uint8_t)p->longest;
    memcpy(b + LB_BLOB_HEADER, p->code_len, 256);
    uint8_t *st = b + LB_BLOB_TABLES;
    for (int64_t s = 0; s < p->n_streams; s++) {
        put_le(st + 8 * s, p->nbits[s], 4);
        put_le(st + 8 * s + 4, p->crc[s], 4);
    }
    size_t tables_end = LB_BLOB_TABLES + LB_BLOB_STREAM_ENTRY * (size_t)p->n_streams;
    put_le(b + 28, header_crc(b, tables_end), 4);
    memcpy(b + tables_end, p->sm, (size_t)p->n);
    memcpy(b + tables_end + p->n, p->payload, (size_t)p->off[p->n_streams]);
    return LB_OK;
}

/* Header fields into h; *tables_end is where the stream table ends. */
static lb_status read_header(const uint8_t *b, size_t size, const char *nm, lb_bf16_packed *h, size_t *tables_end)
{
    if (size < LB_BLOB_TABLES)
        return lb__err(LB_ERR_FORMAT, "tensor '%s': blob truncated: %zu bytes, the header alone needs %d", nm, size, LB_BLOB_TABLES);
    if (memcmp(b, LB_BLOB_MAGIC, 4))
        return lb__err(LB_ERR_FORMAT, "tensor '%s': not a lossless BF16 blob (bad magic)", nm);
    if (get_le(b + 4, 2) != LB_BLOB_VERSION)
        return lb__err(LB_ERR_UNSUPPORTED, "tensor '%s': blob version %u not supported (this build reads %d)", nm,
                       (unsigned)get_le(b + 4, 2), LB_BLOB_VERSION);
    h->kind = b[6];
    h->const_exp = b[7];
    uint64_t n = get_le(b + 8, 8), sl = get_le(b + 16, 4), ns = get_le(b + 20, 4);
    if (h->kind > LB_KIND_CONSTANT || (h->kind == LB_KIND_HUFFMAN && b[7]) || b[25] || b[26] || b[27])
        return lb__err(LB_ERR_FORMAT, "tensor '%s': bad header (kind %d, reserved bytes)", nm, h->kind);
    if (sl < 1 || sl > (uint64_t)LB_MAX_STREAM_LEN)
        return lb__err(LB_ERR_FORMAT, "tensor '%s': stream length %llu outside 1..%lld", nm, (unsigned long long)sl,
                       (long long)LB_MAX_STREAM_LEN);
    if (n > size)
        return lb__err(LB_ERR_FORMAT, "tensor '%s': blob truncated: %llu elements need more than its %zu bytes", nm,
                       (unsigned long long)n, size);
    if (ns != (n ? (n - 1) / sl + 1 : 0))
        return lb__err(LB_ERR_FORMAT, "tensor '%s': %llu streams listed, %llu elements in streams of %llu need %llu", nm,
                       (unsigned long long)ns, (unsigned long long)n, (unsigned long long)sl,
                       (unsigned long long)(n ? (n - 1) / sl + 1 : 0));
    size_t te = LB_BLOB_TABLES + LB_BLOB_STREAM_ENTRY * (size_t)ns;
    if (te > size)
        return lb__err(LB_ERR_FORMAT, "tensor '%s': blob truncated: stream table needs %zu bytes, blob has %zu", nm,
                       te, size);
    uint32_t want = (uint32_t)get_le(b + 28, 4), got = header_crc(b, te);
    if (want != got)
        return lb__err(LB_ERR_CORRUPT, "tensor '%s': header checksum mismatch (stored %08x, computed %08x)", nm, want, got);
    h->n = (int64_t)n;
    h->stream_len = (int64_t)sl;
    h->n_streams = (int64_t)ns;
    h->longest = b[24];
    *tables_end = te;
    return LB_OK;
}

/* The code table must be a complete prefix code (Kraft sum exactly 1) with
 * lengths <= 12, or all zero for kind 1. */
static lb_status check_codes(const uint8_t *lens, const lb_bf16_packed *h, const char *nm)
{
    int nsym = 0, longest = 0;
    for (int e = 0; e < 256; e++) {
        if (lens[e]) nsym++;
        if (lens[e] > longest) longest = lens[e];
    }
    if (h->kind == LB_KIND_CONSTANT) {
        if (nsym || h->longest)
            return lb__err(LB_ERR_FORMAT, "tensor '%s': bad code table: constant-exponent blob lists %d codes", nm, nsym);
        return LB_OK;
    }
    if (nsym < 2 || longest != h->longest || lb__huff_kraft12(lens, 256) != LB_HUFF_TABLE_SIZE)
        return lb__err(LB_ERR_FORMAT, "tensor '%s': bad code table (%d codes, longest %d of max %d, not a complete prefix code)",
                       nm, nsym, longest, LB_LOSSLESS_MAX_CODE_LEN);
    return LB_OK;
}

/* Each stream's bit count must lie within count * [shortest, longest]; the
 * byte sizes must add up to the rest of the blob exactly. */
static lb_status check_streams(lb_bf16_packed *p, const uint8_t *st, size_t avail, const char *nm)
{
    for (int64_t s = 0; s < p->n_streams; s++) {
        uint64_t bits = get_le(st + 8 * s, 4), cnt = (uint64_t)lb__stream_count(p, s);
        if (bits < cnt * (uint64_t)p->shortest || bits > cnt * (uint64_t)p->longest)
            return lb__err(LB_ERR_FORMAT, "tensor '%s': stream %lld of %lld: %llu bits cannot hold %llu codes of %d..%d bits",
                           nm, (long long)s, (long long)p->n_streams, (unsigned long long)bits,
                           (unsigned long long)cnt, p->shortest, p->longest);
        p->nbits[s] = (uint32_t)bits;
        p->crc[s] = (uint32_t)get_le(st + 8 * s + 4, 4);
        p->off[s + 1] = p->off[s] + (bits + 7) / 8;
    }
    uint64_t need = p->off[p->n_streams];
    if (need != avail)
        return lb__err(LB_ERR_FORMAT, "tensor '%s': stream table says %llu bytes of exponent bits, blob has %zu%s", nm,
                       (unsigned long long)need, avail, need > avail ? " (truncated)" : " (trailing bytes)");
    return LB_OK;
}

lb_status lb_bf16_packed_read(const void *blob, size_t size, const char *name, unsigned flags, lb_bf16_packed **out)
{
    if (!out) return lb__err(LB_ERR_ARG, "lb_bf16_packed_read: out is NULL");
    *out = NULL;
    const char *nm = name ? name : "";
    const uint8_t *b = blob;
    LB_ARG(b || !size, "lb_bf16_packed_read: blob is NULL");
    lb_bf16_packed h = {0};
    size_t tables_end = 0;
    lb_status st = read_header(b, size, nm, &h, &tables_end);
    if (st || (st = check_codes(b + LB_BLOB_HEADER, &h, nm))) return st;
    if (size - tables_end < (size_t)h.n)
        return lb__err(LB_ERR_FORMAT, "tensor '%s': blob truncated: %lld sign+mantissa bytes expected, %zu left", nm,
                       (long long)h.n, size - tables_end);
    lb_bf16_packed *p;
    if ((st = lb__packed_alloc(name, h.n, h.stream_len, &p))) return st;
    p->kind = h.kind;
    p->const_exp = h.const_exp;
    memcpy(p->code_len, b + LB_BLOB_HEADER, 256);
    if ((st = lb__packed_finish_codes(p))) goto fail;
    size_t rest = size - tables_end;
    if ((st = check_streams(p, b + LB_BLOB_TABLES, rest - (size_t)p->n, nm))) goto fail;
    if (flags & LB_PACKED_BORROW) {
        p->sm = b + tables_end;
    } else {
        p->owned = lb__alloc(rest + 1);
        if (!p->owned) { st = LB_ERR_NOMEM; goto fail; }
        memcpy(p->owned, b + tables_end, rest);
        p->sm = p->owned;
    }
    p->payload = p->sm + p->n;
    *out = p;
    return LB_OK;
fail:
    lb_bf16_packed_free(p);
    return st;
}
