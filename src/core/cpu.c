/* cpu.c: run-time instruction-set detection (cpuid + xgetbv) and the
 * process-wide ISA choice, fixed at first use and overridable with
 * LOWBIT_ISA=ref|avx2|avx512 or lb_isa_set(). */
#include "core/core.h"
#include <stdatomic.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static bool probe_avx2(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!(fma && osxsave && avx && f16c)) return false;
    if ((xgetbv0() & 6) != 6) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return b & (1u << 5);
#else
    return false;
#endif
}

static bool probe_avx512(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!probe_avx2()) return false;
    if ((xgetbv0() & 0xe6) != 0xe6) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    bool vnni = c & (1u << 11);
    if (!(f && dq && bw && vl && vnni)) return false;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    return a & (1u << 5); /* AVX512_BF16 */
#else
    return false;
#endif
}

/* cpuid is a VM exit under virtualization and these are asked per call by
 * some kernels (e.g. the FWHT dispatch): probe once. */
bool lb__cpu_has_avx2(void)
{
    static _Atomic int has = -1;
    int h = atomic_load(&has);
    if (h < 0) atomic_store(&has, h = probe_avx2());
    return h;
}

bool lb__cpu_has_avx512(void)
{
    static _Atomic int has = -1;
    int h = atomic_load(&has);
    if (h < 0) atomic_store(&has, h = probe_avx512());
    return h;
}

static _Atomic int isa_active = -1;

/* The probes above are cached, so this is cheap on every call. */
lb_isa lb_isa_best(void)
{
    return lb__cpu_has_avx512() ? LB_ISA_AVX512 : lb__cpu_has_avx2() ? LB_ISA_AVX2 : LB_ISA_REF;
}

const char *lb_isa_name(lb_isa isa)
{
    switch (isa) {
    case LB_ISA_REF: return "ref";
    case LB_ISA_AVX2: return "avx2";
    case LB_ISA_AVX512: return "avx512";
    }
    return "?";
}

lb_isa lb_isa_set(lb_isa isa)
{
    lb_isa best = lb_isa_best();
    if (isa > best) isa = best;
    atomic_store(&isa_active, (int)isa);
    return isa;
}

lb_isa lb_isa_active(void)
{
    int v = atomic_load(&isa_active);
    if (v >= 0) return (lb_isa)v;
    lb_isa want = lb_isa_best();
    const char *env = getenv("LOWBIT_ISA");
    if (env && *env) {
        if (!strcmp(env, "ref")) want = LB_ISA_REF;
        else if (!strcmp(env, "avx2")) want = LB_ISA_AVX2;
        else if (!strcmp(env, "avx512")) want = LB_ISA_AVX512;
        else lb__log(LB_LOG_WARN, "LOWBIT_ISA=%s not understood (ref|avx2|avx512); using best", env);
    }
    return lb_isa_set(want);
}
