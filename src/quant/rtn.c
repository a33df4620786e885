/* rtn.c: round to nearest. Each block of the format gets its scale from the
 * format's rule (floor / ceil / MSE search over candidate scales, see
 * formats/blocks.c) and every element is rounded to the nearest grid value.
 * This is the baseline every other method is measured against. */
#include "quant/quant.h"

lb_status lb__rtn_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out)
{
    lb_quant_opts fo = {o->scale_rule};
    return lb_format_quantize(out->fmt, &fo, w, out->rows, out->cols, out->packed, &out->tensor_scale);
}
