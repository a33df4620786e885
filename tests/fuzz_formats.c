/* fuzz_formats.c: the packed tensor file parser (lb__fq_parse) and the
 * dequantizer behind it. The input is a file image without its 4-byte magic
 * (the target puts "LBFQ" in front), so mutations reach the header fields. */
#include "harness.h"
#include "formats/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *img = malloc(size + 4);
    if (!img) return 0;
    memcpy(img, "LBFQ", 4);
    if (size) memcpy(img + 4, data, size);
    const lb_format *f = NULL;
    int64_t rows, cols;
    float ts;
    if (lb__fq_parse(&f, img, size + 4, "fuzz", &rows, &cols, &ts) == LB_OK && rows * cols <= (1 << 22)) {
        float *y = malloc((size_t)(rows * cols) * sizeof *y + 1);
        if (y) lb_format_dequantize(f, img + 64, ts, rows, cols, y);
        if (y && rows) lb_format_dot(f, img + 64, ts, y, cols);
        free(y);
    }
    free(img);
    return 0;
}

/* Seed: a valid nvfp4 file of 2 rows x 32 values without its magic (header
 * fields, then 2 x 18 packed bytes), mutated by the driver. */
static const char *const fuzz_seeds[] = {"tests/fuzz_formats.seed"};
#include "fuzz_main.h"
