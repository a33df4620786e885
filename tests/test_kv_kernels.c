/* test_kv_kernels.c: the fused KIVI attention kernels of src/kv (codec.h).
 *  - kscore / vacc: every ISA path the CPU has gives the reference's bits,
 *    at awkward sizes (pages of 8, 24, 40 tokens, head_dim 8 .. 72, 1 .. 9
 *    queries, groups of 8 .. 64 channels, every code width);
 *  - the reference equals a double-precision evaluation written here from
 *    the page layout alone (codes unpacked bit by bit, x = code s + min):
 *    scores q.x_t and sums o + sum_t w_t x_t, to float rounding;
 *  - softmax (the engine's) and softmax2 (vectorized exp, KIVI): every ISA
 *    path gives the reference's bits (sizes 1 .. 100, ties, zeros of both
 *    signs, wide ranges), both within 1e-6 of a double softmax;
 *  - attention of a KIVI cache through the kernels gives the same bits at 1
 *    and 2 threads and on every ISA path, and equals a double softmax over
 *    the cache's own decoded keys and values. */
#include "harness.h"
#include "kv/codec.h"
#include <math.h>

static lb_rng rng;

static void randv(float *x, int64_t n, double scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(scale * lb_rng_normal(&rng));
}

/* Element i of a little-endian bit stream, bit by bit. */
static unsigned code_of(const uint8_t *p, int64_t i, int bits)
{
    unsigned v = 0;
    for (int b = 0; b < bits; b++) {
        int64_t bit = i * bits + b;
        v |= (unsigned)((p[bit / 8] >> (bit % 8)) & 1) << b;
    }
    return v;
}

static void rand_half(uint16_t *h, int64_t n, double scale, double offset)
{
    for (int64_t i = 0; i < n; i++) h[i] = lb_f32_to_f16((float)(offset + scale * lb_rng_normal(&rng)));
}

static void test_kscore(void)
{
    static const int bits_[] = {2, 3, 4, 8};
    static const int64_t P_[] = {8, 24, 32, 40}, hd_[] = {8, 24, 64, 72}, nq_[] = {1, 3, 4, 5, 9};
    uint8_t codes[72 * 40];
    uint16_t s16[72], m16[72];
    float q[9 * 72], want[9 * 48], got[9 * 48];
    int cases = 0;
    for (int bi = 0; bi < 4; bi++)
        for (int pi = 0; pi < 4; pi++)
            for (int hi = 0; hi < 4; hi++)
                for (int qi = 0; qi < 5; qi++) {
                    int bits = bits_[bi];
                    int64_t P = P_[pi], hd = hd_[hi], nq = nq_[qi], scs = 45;
                    for (size_t i = 0; i < sizeof codes; i++) codes[i] = (uint8_t)lb_rng_u64(&rng);
                    rand_half(s16, hd, 0.05, 0.1);
                    rand_half(m16, hd, 1, 0);
                    randv(q, nq * hd, 1);
                    memset(want, 0, sizeof want);
                    lb__kv_kscore_ref(codes, bits, P, hd, s16, m16, q, nq, want, scs);
                    double err = 0;
                    for (int64_t j = 0; j < nq; j++)
                        for (int64_t t = 0; t < P; t++) {
                            double d = 0, mag = 0;
                            for (int64_t c = 0; c < hd; c++) {
                                double x = code_of(codes, c * P + t, bits) * (double)lb_f16_to_f32(s16[c]) +
                                           lb_f16_to_f32(m16[c]);
                                d += q[j * hd + c] * x;
                                mag += fabs(q[j * hd + c] * x);
                            }
                            err = fmax(err, fabs(want[j * scs + t] - d) / (mag + 1e-30));
                        }
                    CHECK(err < 1e-5, "kscore ref bits %d P %lld hd %lld nq %lld: relative error %g", bits,
                          (long long)P, (long long)hd, (long long)nq, err);
                    for (int isa = LB_ISA_AVX2; isa <= (int)lb_isa_best(); isa++) {
                        for (int64_t i = 0; i < nq * scs; i++) got[i] = want[i];
                        for (int64_t j = 0; j < nq; j++)
                            for (int64_t t = 0; t < P; t++) got[j * scs + t] = NAN;
                        lb__kv_kernels_for((lb_isa)isa)->kscore(codes, bits, P, hd, s16, m16, q, nq, got, scs);
                        CHECK(!memcmp(got, want, sizeof(float) * (size_t)(nq * scs)),
                              "kscore isa %d bits %d P %lld hd %lld nq %lld", isa, bits, (long long)P, (long long)hd,
                              (long long)nq);
                    }
                    cases++;
                }
    CHECK(cases == 320, "cases %d", cases);
}

static void test_vacc(void)
{
    static const int bits_[] = {2, 3, 4, 8};
    static const int64_t n_[] = {1, 7, 8, 24, 33}, hd_[] = {8, 16, 48, 64, 72}, nq_[] = {1, 4, 6};
    enum { MAXN = 40, MAXHD = 72, MAXQ = 6, WS = 41, SST = 37 };
    uint8_t codes[MAXN * MAXHD];
    uint16_t s16[SST * MAXHD / 8], m16[SST * MAXHD / 8];
    float w[MAXQ * WS], o0[MAXQ * MAXHD], want[MAXQ * MAXHD], got[MAXQ * MAXHD];
    for (int bi = 0; bi < 4; bi++)
        for (int ni = 0; ni < 5; ni++)
            for (int hi = 0; hi < 5; hi++)
                for (int gsh = 3; gsh <= 6; gsh++)
                    for (int qi = 0; qi < 3; qi++) {
                        int bits = bits_[bi];
                        int64_t n = n_[ni], hd = hd_[hi], nq = nq_[qi], ng = hd >> gsh;
                        if (hd % (1 << gsh)) continue;
                        for (size_t i = 0; i < sizeof codes; i++) codes[i] = (uint8_t)lb_rng_u64(&rng);
                        rand_half(s16, SST * ng, 0.05, 0.1);
                        rand_half(m16, SST * ng, 1, 0);
                        for (int64_t i = 0; i < nq * WS; i++) w[i] = (float)lb_rng_uniform(&rng) / (float)n;
                        randv(o0, nq * hd, 1);
                        memcpy(want, o0, sizeof(float) * (size_t)(nq * hd));
                        lb__kv_vacc_ref(codes, bits, n, hd, gsh, s16, m16, SST, w, WS, nq, want);
                        double err = 0;
                        for (int64_t j = 0; j < nq; j++)
                            for (int64_t c = 0; c < hd; c++) {
                                double d = o0[j * hd + c], mag = fabs(d);
                                for (int64_t t = 0; t < n; t++) {
                                    int64_t g = (c >> gsh) * SST + t;
                                    double cs = code_of(codes, t * hd + c, bits) * (double)lb_f16_to_f32(s16[g]),
                                           m = lb_f16_to_f32(m16[g]);
                                    d += w[j * WS + t] * (cs + m);
                                    /* x = code s + m is rounded before the cancellation of its two terms:
                                       the error scale is |w| (|code s| + |m|), not |w x| */
                                    mag += fabs(w[j * WS + t]) * (fabs(cs) + fabs(m));
                                }
                                err = fmax(err, fabs(want[j * hd + c] - d) / (mag + 1e-30));
                            }
                        CHECK(err < 1e-5, "vacc ref bits %d n %lld hd %lld gsh %d nq %lld: relative error %g", bits,
                              (long long)n, (long long)hd, gsh, (long long)nq, err);
                        for (int isa = LB_ISA_AVX2; isa <= (int)lb_isa_best(); isa++) {
                            memcpy(got, o0, sizeof(float) * (size_t)(nq * hd));
                            lb__kv_kernels_for((lb_isa)isa)->vacc(codes, bits, n, hd, gsh, s16, m16, SST, w, WS, nq, got);
                            CHECK(!memcmp(got, want, sizeof(float) * (size_t)(nq * hd)),
                                  "vacc isa %d bits %d n %lld hd %lld gsh %d nq %lld", isa, bits, (long long)n,
                                  (long long)hd, gsh, (long long)nq);
                        }
                    }
}

static void test_softmax(void)
{
    static const int64_t n_[] = {1, 7, 8, 9, 31, 100};
    float x[100], want[100], got[100];
    for (int ni = 0; ni < 6; ni++)
        for (int kind = 0; kind < 3; kind++) {
            int64_t n = n_[ni];
            randv(x, n, kind == 2 ? 30 : 3);
            if (kind == 1)
                for (int64_t i = 0; i < n; i++) x[i] = i % 3 == 0 ? 0.0f : i % 3 == 1 ? -0.0f : 2.5f;
            for (int which = 0; which < 2; which++) {
                memcpy(want, x, sizeof(float) * (size_t)n);
                (which ? lb__kv_softmax2_ref : lb__kv_softmax_ref)(want, n, 0.125f);
                double sum = 0, mx = -INFINITY, dsum = 0, err = 0;
                for (int64_t i = 0; i < n; i++) { sum += want[i]; mx = fmax(mx, x[i] * 0.125); }
                for (int64_t i = 0; i < n; i++) dsum += exp(x[i] * 0.125 - mx);
                for (int64_t i = 0; i < n; i++) err = fmax(err, fabs(want[i] - exp(x[i] * 0.125 - mx) / dsum));
                CHECK(fabs(sum - 1) < 1e-5 && err < 1e-6, "softmax%d n %lld: sum %g, error %g against double", which,
                      (long long)n, sum, err);
                for (int isa = LB_ISA_AVX2; isa <= (int)lb_isa_best(); isa++) {
                    memcpy(got, x, sizeof(float) * (size_t)n);
                    const lb__kv_kernels *K = lb__kv_kernels_for((lb_isa)isa);
                    (which ? K->softmax2 : K->softmax)(got, n, 0.125f);
                    CHECK(!memcmp(got, want, sizeof(float) * (size_t)n), "softmax%d isa %d n %lld kind %d", which,
                          isa, (long long)n, kind);
                }
            }
        }
}

/* ---- attention of a cache: threads, ISA paths, a double reference */

typedef struct job { lb_kv *c; const float *q; float *out; int64_t group, hd; } job;

static void task(void *ctx, int64_t b, int64_t e, int thread)
{
    job *j = ctx;
    for (int64_t g = b; g < e; g++)
        lb__kv_attend_group(j->c, 0, g, j->q + g * j->group * j->hd, j->group, 0, thread,
                            j->out + g * j->group * j->hd);
}

static void test_attend(void)
{
    const char *specs[] = {"kivi:bits=4,residual=32", "kivi:bits=2,group=16,residual=0", "kivi:bits=3,group=64",
                           "kivi:bits=8,residual=0,rot=kv"};
    const int64_t hds[] = {64, 48, 16, 8};
    int64_t H = 12, KVH = 3, T = 300, group = H / KVH;
    lb_pool *p1, *p2;
    REQUIRE(!lb_pool_create(1, &p1) && !lb_pool_create(2, &p2), "%s", lb_errmsg());
    for (int si = 0; si < 4; si++) {
        int64_t hd = hds[si];
        lb__kv_spec sp;
        REQUIRE(!lb__kv_parse(specs[si], "--kv", &sp), "%s", lb_errmsg());
        double inv[64];
        for (int i = 0; i < 64; i++) inv[i] = 1;
        lb__kv_shape sh = {1, H, KVH, hd, 320, 1, 2, inv, false};
        lb_kv *c;
        REQUIRE(!lb__kv_create(&sp, &sh, "--kv", &c), "%s: %s", specs[si], lb_errmsg());
        float *kv = malloc(sizeof(float) * (size_t)(T * 2 * KVH * hd)), *q = malloc(sizeof(float) * (size_t)(H * hd));
        float *a = malloc(sizeof(float) * (size_t)(H * hd)), *b = malloc(sizeof(float) * (size_t)(H * hd));
        randv(kv, T * 2 * KVH * hd, 1);
        randv(q, H * hd, 0.5);
        for (int64_t t = 0; t < T; t++) lb__kv_append(c, 0, t, kv + t * 2 * KVH * hd, kv + t * 2 * KVH * hd + KVH * hd);
        job j = {c, q, a, group, hd};
        lb_isa_set(LB_ISA_REF);
        lb_pool_for(p1, KVH, 1, task, &j);
        for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++)
            for (int th = 1; th <= 2; th++) {
                lb_isa_set((lb_isa)isa);
                j.out = b;
                lb_pool_for(th == 1 ? p1 : p2, KVH, 1, task, &j);
                CHECK(!memcmp(a, b, sizeof(float) * (size_t)(H * hd)), "%s: isa %d threads %d differ from reference",
                      specs[si], isa, th);
            }
        lb_isa_set(lb_isa_best());
        /* double softmax over the decoded cache */
        float *K = malloc(sizeof(float) * (size_t)(T * hd)), *V = malloc(sizeof(float) * (size_t)(T * hd));
        double *w = malloc(sizeof(double) * (size_t)T), err = 0;
        for (int64_t g = 0; g < KVH; g++) {
            lb__kv_read(c, 0, g, 0, T, K, V);
            for (int64_t h = g * group; h < (g + 1) * group; h++) {
                double mx = -1e300, sum = 0;
                for (int64_t t = 0; t < T; t++) {
                    double d = 0;
                    for (int64_t i = 0; i < hd; i++) d += (double)q[h * hd + i] * K[t * hd + i];
                    w[t] = d / sqrt((double)hd);
                    mx = fmax(mx, w[t]);
                }
                for (int64_t t = 0; t < T; t++) sum += (w[t] = exp(w[t] - mx));
                for (int64_t i = 0; i < hd; i++) {
                    double o = 0;
                    for (int64_t t = 0; t < T; t++) o += w[t] / sum * V[t * hd + i];
                    err = fmax(err, fabs(o - a[h * hd + i]));
                }
            }
        }
        CHECK(err < 2e-5, "%s: attention error %g against a double softmax over the decoded cache", specs[si], err);
        free(K); free(V); free(w); free(kv); free(q); free(a); free(b);
        lb__kv_free(c);
    }
    lb_pool_free(p1);
    lb_pool_free(p2);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_kscore);
    RUN(test_vacc);
    RUN(test_softmax);
    RUN(test_attend);
    return TEST_DONE();
}
