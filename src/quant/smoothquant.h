/* smoothquant.h: the SmoothQuant weight method (smoothquant.c), with the
 * signature of a quantizer registry entry (lb__quant_method_fn, quant.h).
 * Not yet a row of methods[] in registry.c: registering it is the
 * integrator's step (tests/test_quant.c counts the methods). */
#ifndef LB_SMOOTHQUANT_H
#define LB_SMOOTHQUANT_H

#include "quant/quant.h"

/* SmoothQuant (alpha 0.5) from o->calib->amax, then rtn into out (whose fmt,
 * rows, cols, row_bytes and packed are set, as lb_quantize_matrix does). */
lb_status lb__smoothquant_quantize(const lb_quantize_opts *o, const float *w, lb_qmatrix *out);

#endif
