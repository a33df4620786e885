/* embed.c: the smallest program using an installed liblowbit.
 *   make install PREFIX=$HOME/.local
 *   cc embed.c $(pkg-config --cflags --libs lowbit) -o embed && ./embed
 * Quantizes one 32-value block to MXFP4, decodes it back and prints the
 * error; exits non-zero with lowbit's message on failure. */
#include <lowbit.h>
#include <math.h>
#include <stdio.h>

int main(void)
{
    const lb_format *f = lb_format_find("mxfp4");
    if (!f) { fprintf(stderr, "embed: mxfp4 missing\n"); return 1; }
    float x[32], y[32];
    unsigned char packed[64];
    for (int i = 0; i < 32; i++) x[i] = sinf((float)i);
    if (lb_format_row_bytes(f, 32) > sizeof packed) return 1;
    lb_status s = lb_format_quantize(f, NULL, x, 1, 32, packed, NULL);
    if (!s) s = lb_format_dequantize(f, packed, 1.0f, 1, 32, y);
    if (s) { fprintf(stderr, "embed: %s\n", lb_errmsg()); return 1; }
    double err = 0;
    for (int i = 0; i < 32; i++) err = fmax(err, fabs((double)x[i] - y[i]));
    printf("lowbit %s: %s, %.2f bits/weight, max error %.4f\n", lb_version(), lb_format_name(f),
           lb_format_bits_per_weight(f), err);
    return err < 0.5 ? 0 : 1;
}
