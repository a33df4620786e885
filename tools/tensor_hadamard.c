/* tensor_hadamard.c: the `--hadamard N` stage of `lowbit tensor` (its
 * error measurement uses the library's rotated round trip, lb_format_roundtrip).
 *
 * With R = blockdiag(T_N) D (T_N the orthonormal Hadamard of order N, D the
 * +-1 signs of --hadamard-seed, or I), each row x becomes R x before it is
 * quantized, and dequantize returns R^T y. R is orthonormal, so the round
 * trip x -> R^T deq(q(R x)) approximates x itself; its error is measured
 * against x (the ORIGINAL domain).
 *
 * The packed file (docs/formats.md "file layout") has a 32-byte NUL-padded
 * format name at offset 32; names are at most 19 characters, so bytes 52..63
 * are zero in files without a transform. A rotated file records it there
 * (docs/formats-study.md "Hadamard in packed files"):
 *   52 u8 'H'   53 u8 flags (bit 0: random signs)   54 u16 block N   56 u64 seed
 * dequantize reads the tag and undoes the rotation by itself; a --hadamard
 * given to dequantize must match it. */
#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { HDR = 64, TAG_AT = 52, NAME_MAX_LEN = TAG_AT - 32 - 1 };

int cli_hadamard_check(const char *cmd, int64_t block, int64_t cols)
{
    if (!lb_hadamard_supported(block))
        return cli_fail(cmd, "--hadamard %lld is not a supported Hadamard order (2^k, or 2^k times 12, 20, 28, "
                        "... up to %d; see 'lowbit hadamard --help')", (long long)block, LB_HADAMARD_MAX_BLOCK);
    if (cols % block)
        return cli_fail(cmd, "--hadamard %lld does not divide the row length %lld", (long long)block, (long long)cols);
    return 0;
}

int8_t *cli_hadamard_signs(bool seeded, uint64_t seed, int64_t cols)
{
    if (!seeded) return NULL;
    int8_t *s = malloc((size_t)cols);
    if (s && lb_hadamard_signs(seed, cols, s)) { free(s); s = NULL; }
    return s;
}

int tensor_hadamard_quantize(const char *cmd, const lb_format *f, const lb_quant_opts *q, const char *in,
                             int64_t cols, int64_t block, bool seeded, uint64_t seed, const char *out)
{
    if (strlen(lb_format_name(f)) > NAME_MAX_LEN)
        return cli_fail(cmd, "format name '%s' leaves no room for the Hadamard tag in the file header",
                        lb_format_name(f));
    size_t size = 0;
    float *x = cli_read_all(cmd, in, &size);
    if (!x) return 1;
    int64_t n = (int64_t)(size / 4), rows;
    int rc = 0;
    uint8_t *p = NULL;
    int8_t *signs = NULL;
    if (!cols) cols = n;
    if (size % 4 || n == 0) {
        rc = cli_fail(cmd, "%s: size %zu bytes is not a positive multiple of 4 (raw float32 expected)", in, size);
        goto done;
    }
    if (n % cols) {
        rc = cli_fail(cmd, "%s: %lld values do not split into rows of %lld", in, (long long)n, (long long)cols);
        goto done;
    }
    if (lb_format_block(f) && cols % lb_format_block(f)) {
        rc = cli_fail(cmd, "%s: row length %lld is not a multiple of the %s block size %lld", in, (long long)cols,
                      lb_format_name(f), (long long)lb_format_block(f));
        goto done;
    }
    if ((rc = cli_hadamard_check(cmd, block, cols))) goto done;
    rows = n / cols;
    size_t rb = lb_format_row_bytes(f, cols);
    signs = cli_hadamard_signs(seeded, seed, cols);
    p = malloc(rb * (size_t)rows);
    if (!p || (seeded && !signs)) { rc = cli_fail(cmd, "out of memory"); goto done; }
    float g = 1.0f;
    lb_status s = lb_hadamard_rows(x, rows, cols, block, signs, 0);
    if (!s) s = lb_format_quantize(f, q, x, rows, cols, p, &g);
    if (s) { rc = cli_fail_status(cmd, s); goto done; }
    /* header: docs/formats.md "file layout", plus the tag (see the top) */
    uint8_t h[HDR] = {'L', 'B', 'F', 'Q', 1};
    uint64_t r64 = (uint64_t)rows, c64 = (uint64_t)cols;
    uint32_t rb32 = (uint32_t)rb;
    uint16_t b16 = (uint16_t)block;
    memcpy(h + 8, &r64, 8); memcpy(h + 16, &c64, 8); memcpy(h + 24, &g, 4); memcpy(h + 28, &rb32, 4);
    memcpy(h + 32, lb_format_name(f), strlen(lb_format_name(f)));
    h[TAG_AT] = 'H';
    h[TAG_AT + 1] = seeded ? 1 : 0;
    memcpy(h + 54, &b16, 2);
    memcpy(h + 56, &seed, 8);
    rc = cli_write_atomic(cmd, out, h, HDR, p, rb * (size_t)rows);
done:
    free(signs);
    free(p);
    free(x);
    return rc;
}

/* The Hadamard tag of a packed file: 0 and *block = 0 when there is none;
 * -1 when the file cannot be read as a packed tensor (the library then says why). */
static int read_tag(const char *path, int64_t *block, bool *seeded, uint64_t *seed)
{
    uint8_t h[HDR];
    FILE *fp = fopen(path, "rb");
    size_t got = fp ? fread(h, 1, HDR, fp) : 0;
    if (fp) fclose(fp);
    *block = 0;
    if (got != HDR || memcmp(h, "LBFQ", 4)) return -1;
    if (h[TAG_AT] != 'H') return 0;
    uint16_t b16;
    memcpy(&b16, h + 54, 2);
    memcpy(seed, h + 56, 8);
    *block = b16;
    *seeded = h[TAG_AT + 1] & 1;
    return 0;
}

int tensor_dequantize(const char *cmd, const lb_format *f, const char *in, int64_t block, bool seeded,
                      uint64_t seed, const char *out)
{
    int64_t fb = 0;
    bool fseeded = false;
    uint64_t fseed = 0;
    if (read_tag(in, &fb, &fseeded, &fseed) < 0 || !fb) {
        if (block) return cli_fail(cmd, "%s: holds no Hadamard transform, so --hadamard %lld does not apply", in,
                                   (long long)block);
        lb_status s = lb_format_dequantize_file(f, in, out);
        return s ? cli_fail_status(cmd, s) : 0;
    }
    if (block && block != fb)
        return cli_fail(cmd, "%s: was quantized with --hadamard %lld, not %lld", in, (long long)fb, (long long)block);
    if (block && (seeded != fseeded || (seeded && seed != fseed)))
        return cli_fail(cmd, "%s: --hadamard-seed does not match the file's (%s)", in, fseeded ? "seeded" : "no seed");
    size_t size = 0;
    uint8_t *d = cli_read_all(cmd, in, &size);
    if (!d) return 1;
    uint64_t rows, cols;
    uint32_t rb;
    float g;
    char name[33] = {0};
    memcpy(&rows, d + 8, 8); memcpy(&cols, d + 16, 8); memcpy(&g, d + 24, 4); memcpy(&rb, d + 28, 4);
    memcpy(name, d + 32, TAG_AT - 32);
    int rc = 0;
    float *y = NULL;
    int8_t *signs = NULL;
    if (strcmp(name, lb_format_name(f))) {
        rc = cli_fail(cmd, "%s: holds format '%s', not '%s'", in, name, lb_format_name(f));
        goto done;
    }
    if (size < HDR || cols == 0 || cols > ((uint64_t)1 << 40) || rows > ((uint64_t)1 << 40) ||
        rb != lb_format_row_bytes(f, (int64_t)cols) || (size - HDR) % rb || (size - HDR) / rb != rows ||
        (lb_format_block(f) && cols % (uint64_t)lb_format_block(f))) {
        rc = cli_fail(cmd, "%s: header (%llu x %llu, %u bytes/row) does not match the file size %zu", in,
                      (unsigned long long)rows, (unsigned long long)cols, rb, size);
        goto done;
    }
    if ((rc = cli_hadamard_check(cmd, fb, (int64_t)cols))) goto done;
    y = malloc((size_t)(rows * cols) * sizeof *y + 1);
    signs = cli_hadamard_signs(fseeded, fseed, (int64_t)cols);
    if (!y || (fseeded && !signs)) { rc = cli_fail(cmd, "out of memory"); goto done; }
    lb_status s = lb_format_dequantize(f, d + HDR, g, (int64_t)rows, (int64_t)cols, y);
    if (!s) s = lb_hadamard_rows(y, (int64_t)rows, (int64_t)cols, fb, signs, 1);
    if (s) { rc = cli_fail_status(cmd, s); goto done; }
    rc = cli_write_atomic(cmd, out, NULL, 0, y, (size_t)(rows * cols) * sizeof *y);
done:
    free(signs);
    free(y);
    free(d);
    return rc;
}
