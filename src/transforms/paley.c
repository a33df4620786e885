/* paley.c: the small Hadamard matrices H_m (m not a power of two) that the
 * Kronecker products H_m (x) H_{2^k} use, built from Paley's constructions
 * over a prime field GF(q), with chi the quadratic character (chi(0) = 0)
 * and the Jacobsthal matrix Q[i][j] = chi(j - i):
 *   Paley I  (q = 3 mod 4, m = q + 1):  H = I + S,  S = [0  1^T; -1  Q]
 *   Paley II (q = 1 mod 4, m = 2(q+1)): S = [0  1^T; 1  Q] with every 0
 *            replaced by [1 -1; -1 -1] and every +-1 by +-[1 1; 1 -1].
 * Both give H H^T = m I (tests/test_transforms.c checks it in integers).
 * Each order's tables (H and H^T as +-1.0f, what the kernels multiply by)
 * are built on first use under a mutex and read-only afterwards. */
#include "transforms/hadamard.h"
#include <pthread.h>
#include <stdatomic.h>

typedef struct small_order {
    int m, q, kind;
} small_order;

/* Every order m = 4*o (o odd, o > 1) up to 148 that a prime q gives; 52,
 * 92, 100 and 116 need GF(p^2) or Williamson constructions (not built). */
static const small_order orders[] = {
    {12, 11, 1}, {20, 19, 1}, {28, 13, 2}, {36, 17, 2}, {44, 43, 1}, {60, 59, 1},
    {68, 67, 1}, {76, 37, 2}, {84, 83, 1}, {108, 107, 1}, {124, 61, 2}, {132, 131, 1},
    {140, 139, 1}, {148, 73, 2},
};
#define N_ORDERS ((int)(sizeof orders / sizeof *orders))

static float *_Atomic tables[N_ORDERS][2];   /* [k][0] = H, [k][1] = H^T */
static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;

/* chi(a) by Euler's criterion a^((q-1)/2) mod q. */
static int chi(int64_t a, int q)
{
    a %= q;
    if (a < 0) a += q;
    if (a == 0) return 0;
    int64_t r = 1, b = a;
    for (int e = (q - 1) / 2; e; e >>= 1) {
        if (e & 1) r = r * b % q;
        b = b * b % q;
    }
    return r == 1 ? 1 : -1;
}

/* S[i][j] for the (q+1) x (q+1) core: index 0 is the point at infinity. */
static int core_entry(int i, int j, int q, int kind)
{
    if (i == 0) return j == 0 ? 0 : 1;
    if (j == 0) return kind == 1 ? -1 : 1;
    return chi((int64_t)j - i, q);
}

static void build(const small_order *o, int8_t *H)
{
    int m = o->m, q = o->q;
    if (o->kind == 1) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) H[i * m + j] = (int8_t)(core_entry(i, j, q, 1) + (i == j));
        return;
    }
    static const int8_t zero_blk[4] = {1, -1, -1, -1}, one_blk[4] = {1, 1, 1, -1};
    for (int i = 0; i <= q; i++)
        for (int j = 0; j <= q; j++) {
            int s = core_entry(i, j, q, 2);
            for (int u = 0; u < 2; u++)
                for (int v = 0; v < 2; v++)
                    H[(2 * i + u) * m + 2 * j + v] = (int8_t)(s == 0 ? zero_blk[2 * u + v] : s * one_blk[2 * u + v]);
        }
}

/* Fill tables[k] (under tables_lock); false when out of memory. */
static bool build_tables(int k)
{
    int m = orders[k].m;
    int8_t *s = malloc((size_t)m * m);
    float *h = malloc(sizeof(float) * m * m), *t = malloc(sizeof(float) * m * m);
    if (!s || !h || !t) { free(s); free(h); free(t); return false; }
    build(&orders[k], s);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) h[i * m + j] = t[j * m + i] = (float)s[i * m + j];
    free(s);
    atomic_store(&tables[k][1], t);
    atomic_store(&tables[k][0], h);
    return true;
}

static int find_order(int m)
{
    for (int k = 0; k < N_ORDERS; k++)
        if (orders[k].m == m) return k;
    return -1;
}

const float *lb__hadamard_small(int m, bool transpose)
{
    int k = find_order(m);
    if (k < 0) return NULL;
    if (!atomic_load(&tables[k][0])) {
        pthread_mutex_lock(&tables_lock);
        bool ok = atomic_load(&tables[k][0]) || build_tables(k);
        pthread_mutex_unlock(&tables_lock);
        if (!ok) { lb__err(LB_ERR_NOMEM, "out of memory building the Hadamard matrix of order %d", m); return NULL; }
    }
    return atomic_load(&tables[k][transpose ? 1 : 0]);
}

bool lb__hadamard_small_recipe(int m, int *q, int *kind)
{
    int k = find_order(m);
    if (k < 0) return false;
    *q = orders[k].q;
    *kind = orders[k].kind;
    return true;
}

int lb_hadamard_small_orders(int64_t *out, int cap)
{
    for (int k = 0; out && k < N_ORDERS && k < cap; k++) out[k] = orders[k].m;
    return N_ORDERS;
}
