/* lossless.h: private pieces of the lossless BF16 codec (src/lossless).
 *
 * A BF16 value h = s:1 | e:8 | m:7 is split into its exponent byte e
 * (Huffman-coded) and a sign+mantissa byte (s << 7) | m (stored raw).
 * See docs/lossless.md for the blob layout. */
#ifndef LB_LOSSLESS_H
#define LB_LOSSLESS_H

#include "core/core.h"
#include "core/safetensors.h"

/* Decode tables always index 12 bits; code lengths never exceed this. */
#define LB_HUFF_TABLE_BITS 12
#define LB_HUFF_TABLE_SIZE (1 << LB_HUFF_TABLE_BITS)
/* At most this many symbols come out of one table lookup. */
#define LB_HUFF_MULTI 6

/* Length-limited optimal prefix code lengths by package-merge.
 * freq[0..nsym) counts; symbols with freq 0 get len 0. When exactly one
 * symbol is present it gets length 1. Requires 2^cap >= number of present
 * symbols and cap <= 32. Returns the number of present symbols. */
int lb__huff_lengths(const uint64_t *freq, int nsym, int cap, uint8_t *len);

/* Canonical codes from lengths (shorter codes first, ties by symbol value):
 * code[i] holds the len[i] low bits, to be sent most significant bit first. */
void lb__huff_codes(const uint8_t *len, int nsym, uint32_t *code);

/* Sum over symbols of 2^(12 - len) for present symbols: 4096 for a complete
 * code with all lengths <= 12; any length > 12 returns UINT64_MAX. */
uint64_t lb__huff_kraft12(const uint8_t *len, int nsym);

/* Multi-symbol decode table for a complete code with lengths <= 12, indexed
 * by the next 12 bits of the stream. Entry layout (little-endian u64):
 *   byte 0      bits consumed by those symbols (so `buf <<= e & 63` needs no
 *               extraction on x86, where shifts use the count's low 6 bits)
 *   bytes 1..6  up to 6 decoded symbols, in order
 *   byte 7      bits 0..2: symbol count (>= 1), bits 3..6: length of the first symbol */
void lb__huff_build_table(const uint8_t *len, uint64_t *table);

/* Blob layout constants (docs/lossless.md). */
#define LB_BLOB_MAGIC "LBEX"
#define LB_BLOB_VERSION 1
#define LB_BLOB_HEADER 32
#define LB_BLOB_TABLES (LB_BLOB_HEADER + 256)   /* stream table starts here */
#define LB_BLOB_STREAM_ENTRY 8
#define LB_MAX_STREAM_LEN ((int64_t)1 << 24)

enum { LB_KIND_HUFFMAN = 0, LB_KIND_CONSTANT = 1 };

struct lb_bf16_packed {
    char *name;
    int64_t n, stream_len, n_streams;
    int kind;                 /* LB_KIND_* */
    uint8_t const_exp;        /* the exponent of every element (LB_KIND_CONSTANT) */
    uint8_t code_len[256];
    int n_symbols, longest, shortest;
    uint32_t *nbits, *crc;    /* (n_streams) exact exponent bits; CRC-32C of decoded bytes */
    uint64_t *off;            /* (n_streams + 1) byte offset of each stream in payload */
    const uint8_t *sm;        /* (n) sign+mantissa bytes */
    const uint8_t *payload;   /* (off[n_streams]) exponent bits, streams byte-aligned */
    uint64_t *table;          /* (4096) decode table, LB_KIND_HUFFMAN only */
    void *owned;              /* sm and payload when not borrowed */
};

/* Elements in stream s. */
static inline int64_t lb__stream_count(const lb_bf16_packed *p, int64_t s)
{
    return lb__min64(p->stream_len, p->n - s * p->stream_len);
}

/* Allocate the per-stream arrays and copy the name; sets the rest to zero. */
lb_status lb__packed_alloc(const char *name, int64_t n, int64_t stream_len, lb_bf16_packed **out);
/* Fill n_symbols/longest/shortest from code_len and build the decode table. */
lb_status lb__packed_finish_codes(lb_bf16_packed *p);
static inline const char *lb__packed_name(const lb_bf16_packed *p) { return p->name ? p->name : ""; }

/* CRC-32C (Castagnoli, reflected 0x82F63B78), init/xorout ~0 applied by the
 * caller: crc = ~lb__crc32c_x(~0u, p, n). */
uint32_t lb__crc32c_ref(uint32_t crc, const void *p, size_t n);
uint32_t lb__crc32c_avx2(uint32_t crc, const void *p, size_t n);   /* SSE4.2 crc32 instruction */
uint32_t lb__crc32c(const void *p, size_t n);                      /* dispatching, with ~ applied */
uint32_t lb__crc32c_update(uint32_t state, const void *p, size_t n); /* dispatching, no ~ */

/* out[i] = (sm[i] & 0x80) << 8 | exp[i] << 7 | (sm[i] & 0x7f). */
void lb__bf16_merge_ref(const uint8_t *exp, const uint8_t *sm, uint16_t *out, int64_t n);
void lb__bf16_merge_avx2(const uint8_t *exp, const uint8_t *sm, uint16_t *out, int64_t n);
void lb__bf16_merge_avx512(const uint8_t *exp, const uint8_t *sm, uint16_t *out, int64_t n);

/* The inverse: exp[i] = x[i] >> 7 & 0xff, sm[i] = x[i] >> 8 & 0x80 | x[i] & 0x7f. */
void lb__bf16_split_ref(const uint16_t *x, uint8_t *exp, uint8_t *sm, int64_t n);

/* Exponents decoded per step (the decoder's chunk). */
#define LB_UNPACK_CHUNK 4096

typedef void (*lb__merge_fn)(const uint8_t *exp, const uint8_t *sm, uint16_t *out, int64_t n);
/* The merge kernel of the active ISA path. */
lb__merge_fn lb__merge_pick(void);

/* Sequential reader of elements [begin, end) of a packed tensor, in order,
 * across stream boundaries, without CRC (each stream's bit count is still
 * checked when it has been decoded to its end). Starting inside a stream
 * decodes, without merging, that stream's elements before `begin`; nothing
 * is decoded twice after that. Lives on the stack (~4 KiB). */
typedef struct lb__cursor {
    const lb_bf16_packed *p;
    int64_t left;           /* elements still to be read */
    int64_t s;              /* current stream */
    int64_t skip;           /* elements of stream s to decode but not return */
    int64_t cbase, clen, used;  /* chunk in exp: stream elements [cbase, cbase + clen), `used` consumed */
    size_t pos;             /* bit reader: next payload byte, bit buffer, valid bits */
    uint64_t buf;
    int nb;
    bool bad;               /* a stream's bit count did not match */
    lb__merge_fn merge;
    uint8_t exp[LB_UNPACK_CHUNK + 16];
} lb__cursor;

void lb__cursor_init(lb__cursor *c, const lb_bf16_packed *p, int64_t begin, int64_t end, lb__merge_fn merge);
/* The next count[i] values of cursor c[i] into out[i], for n (1..4)
 * cursors read side by side: chunks of two or four of them are decoded
 * interleaved when they need one at the same time (more table lookups in
 * flight). count[i] must not exceed what c[i] has left. */
void lb__cursor_read(int n, lb__cursor *const *c, uint16_t *const *out, const int64_t *count);
/* False when a stream read to its end had the wrong bit count. */
bool lb__cursor_finish(lb__cursor *c);

/* ---- packed files (packfile.c) */

/* True when f was written by lowbit pack. */
bool lb__lossless_file(const lb_st_file *f);
/* The lowbit.lossless entry of tensor t: the shape it unpacks to and its
 * element count. LB_ERR_NOTFOUND (no message) when t is not listed. */
lb_status lb__lossless_entry(const lb_st_file *f, const lb_st_tensor *t, int *ndim, int64_t *shape, int64_t *n);

#endif
