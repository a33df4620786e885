/* rng.c: xoshiro256** seeded by splitmix64 (Blackman & Vigna), and a
 * Box-Muller normal. Deterministic across platforms for a given seed. */
#include "core/core.h"
#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void lb_rng_seed(lb_rng *r, uint64_t seed)
{
    if (!r) return;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t lb_rng_u64(lb_rng *r)
{
    if (!r) return 0;
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return out;
}

double lb_rng_uniform(lb_rng *r) { return (double)(lb_rng_u64(r) >> 11) * 0x1.0p-53; }

double lb_rng_normal(lb_rng *r)
{
    if (!r) return 0;
    double u1 = lb_rng_uniform(r), u2 = lb_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
