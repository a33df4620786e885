/* fuzz_lossless.c: the lossless blob reader and decoder.
 * An input starting with the blob magic is read and decoded as is. Any other
 * input (its first 4 KB) is taken as BF16 values, packed with a stream
 * length picked from its first byte, round-tripped (a mismatch aborts), and
 * then the blob is damaged in 8 ways derived from the input (bit flips,
 * byte sets, truncation) and read + decoded again: errors are fine,
 * crashes and sanitizer reports are not. */
#include "lowbit.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void read_and_decode(const uint8_t *b, size_t n)
{
    lb_bf16_packed *p = NULL;
    if (lb_bf16_packed_read(b, n, "fuzz", LB_PACKED_BORROW, &p) == LB_OK) {
        lb_bf16_packed_info info;
        lb_bf16_packed_get_info(p, &info);
        uint16_t *out = malloc(sizeof *out * (size_t)(info.n + 1));
        if (out) lb_bf16_unpack(p, out, NULL);
        free(out);
    }
    lb_bf16_packed_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4 && !memcmp(data, "LBEX", 4)) { read_and_decode(data, size); return 0; }
    int64_t n = (int64_t)(size < 4096 ? size : 4096) / 2;
    uint16_t *x = malloc(sizeof *x * (size_t)(n + 1)), *y = malloc(sizeof *y * (size_t)(n + 1));
    if (n) memcpy(x, data, (size_t)n * 2);
    lb_bf16_pack_opts o = {.stream_len = size ? 1 + data[0] % 300 : 0};
    lb_bf16_packed *p = NULL;
    if (lb_bf16_pack(x, n, "fuzz", &o, NULL, &p) != LB_OK) abort();
    size_t bs = lb_bf16_packed_blob_size(p);
    uint8_t *b = malloc(bs), *c = malloc(bs);
    lb_bf16_packed_write(p, b, bs);
    lb_bf16_packed *q = NULL;
    if (lb_bf16_packed_read(b, bs, "fuzz", 0, &q) != LB_OK || lb_bf16_unpack(q, y, NULL) != LB_OK ||
        (n && memcmp(x, y, (size_t)n * 2)))
        abort();
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ull;
    for (int k = 0; k < 8; k++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        memcpy(c, b, bs);
        size_t at = (size_t)(h >> 20) % bs, m = bs;
        if (k % 3 == 0) c[at] ^= (uint8_t)(1u << (h >> 8) % 8);
        else if (k % 3 == 1) c[at] = (uint8_t)(h >> 40);
        else m = at;
        read_and_decode(c, m);
    }
    lb_bf16_packed_free(p);
    lb_bf16_packed_free(q);
    free(b); free(c); free(x); free(y);
    return 0;
}

static const char *const fuzz_seeds[] = {"$MODELS/stories260K/tok512.bin", "$MODELS/tinystories-656k/config.json"};
#include "fuzz_main.h"
