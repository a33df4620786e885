/* fuzz_calib.c: lb_calib_load (calibration statistics files, src/calib/file.c)
 * on mutated files. The seed is a tiny statistics file (tests/fuzz_calib.seed:
 * one layer, dim 8, hidden 12, made by lb_calib_collect + lb_calib_save on a
 * seeded model). On success every statistic of every site is read through
 * lb_calib_stats_for, so a view past a buffer shows up under ASan, and must
 * be finite (a loaded file holds no NaN or Inf). */
#define FUZZ_DEFAULT_ITERS 1500
#include "lowbit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/lowbit_fuzz_calib.%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    lb_calib *c = NULL;
    if (lb_calib_load(path, NULL, &c) == LB_OK) {
        lb_calib_info info;
        lb_calib_get_info(c, &info);
        static const char *lin[] = {"self_attn.q_proj", "self_attn.o_proj", "mlp.up_proj", "mlp.down_proj"};
        volatile double acc = 0;
        for (int64_t l = 0; l < info.n_layers; l++)
            for (int k = 0; k < 4; k++) {
                char name[96];
                snprintf(name, sizeof name, "model.layers.%lld.%s.weight", (long long)l, lin[k]);
                lb_calib_stats st;
                if (lb_calib_stats_for(c, name, &st) != LB_OK) abort();
                const double *v[] = {st.H, st.sq, st.abs, st.amax, st.Hq, st.Hqx};
                for (int s = 0; s < 6; s++) {
                    int64_t cnt = s == 0 || s >= 4 ? st.n * st.n : st.n;
                    for (int64_t i = 0; v[s] && i < cnt; i++) {
                        if (!isfinite(v[s][i])) abort();   /* a non-finite value got through the checks */
                        acc += v[s][i];
                    }
                }
            }
        lb_calib_free(c);
    }
    unlink(path);
    return 0;
}

static const char *const fuzz_seeds[] = {"tests/fuzz_calib.seed"};

#include "fuzz_main.h"
