/* test_sparse_vnm.c: the V:N:M shared gather (weights/sparse.c vnm_derive,
 * lb_wsparse.vsel / vmask): a block's gathered inputs once per V rows, then
 * each row's fused dot over them with its mask relative to them.
 *
 * Masks are made here, not by the pruner: per block of V rows and group of
 * M inputs, a random set of 4 columns (or only N, so that the derivation
 * must pad the block to 4 with unused columns), each row keeping N of
 * them. For awkward V (1, 3, 5, 64 with row counts it does not divide), M
 * (6, 8, 12, 16), N (1, 2, 4), F32/F16/BF16 values:
 *   - the derived arrays: every group gathers exactly 4 columns, among them
 *     every column a row of the block keeps, and each row's relative bit i
 *     is set exactly when it keeps the block's i-th gathered column;
 *   - y = W x through lb__linear on every ISA, 1 and 2 threads, 1-3
 *     tokens, bit-identical with lb__dot_ref of the row's kept values and
 *     the kept inputs found by walking the keep matrix (the definition);
 *   - the same after lb__wrep_sparse.copy with the source store freed;
 *   - patterns the shared gather does not take (N = 3, M = 4, cols not a
 *     multiple of 2 M, a partial last group) have no derived arrays and
 *     give the same bits through the other paths. */
#include "harness.h"
#include "kernels/sparse.h"
#include "weights/weights.h"

static lb_rng rng;

static int64_t rnd(int64_t n) { return (int64_t)(lb_rng_u64(&rng) % (uint64_t)n); }

/* keep (rows x cols) of a V:N:M pattern; narrow: blocks whose rows all keep
 * the same N columns (fewer than 4 used). A partial last group keeps N per
 * row of its own columns when it holds at least N. */
static void make_keep(uint8_t *keep, int64_t rows, int64_t cols, int V, int N, int M, bool narrow)
{
    memset(keep, 0, (size_t)(rows * cols));
    for (int64_t r0 = 0; r0 < rows; r0 += V)
        for (int64_t c0 = 0; c0 < cols; c0 += M) {
            int64_t g = lb__min64(M, cols - c0), nc = g < M ? g : narrow ? N : 4, sel[256];
            for (int64_t i = 0; i < g; i++) sel[i] = c0 + i;
            for (int64_t i = 0; i < nc; i++) {   /* the block's columns: a random nc of the group */
                int64_t j = i + rnd(g - i), t = sel[i];
                sel[i] = sel[j]; sel[j] = t;
            }
            int64_t want = (int64_t)N * g / M;
            for (int64_t r = r0; r < lb__min64(rows, r0 + V); r++) {
                int64_t s[256];
                memcpy(s, sel, sizeof(int64_t) * (size_t)nc);
                for (int64_t i = 0; i < want; i++) {
                    int64_t j = i + rnd(nc - i), t = s[i];
                    s[i] = s[j]; s[j] = t;
                    keep[r * cols + s[i]] = 1;
                }
            }
        }
}

static bool bit(const uint8_t *m, int64_t i) { return m[i >> 3] >> (i & 7) & 1; }

/* The derived arrays against keep. */
static void check_derived(const lb_weight *w, const uint8_t *keep, const char *what)
{
    const lb_wsparse *sp = &w->u.sparse;
    int64_t cols = w->cols, groups = cols / sp->m;
    CHECK(sp->vp == 2 * sp->n && sp->vmask_bytes == (size_t)(groups * 4 / 8), "%s: vp %d, %zu bytes", what, sp->vp,
          sp->vmask_bytes);
    for (int64_t r0 = 0; r0 < w->rows; r0 += sp->v) {
        const uint8_t *sel = sp->vsel + (size_t)(r0 / sp->v) * sp->mask_bytes;
        for (int64_t g = 0; g < groups; g++) {
            int n = 0;
            for (int64_t c = g * sp->m; c < (g + 1) * sp->m; c++) n += bit(sel, c);
            CHECK(n == 4, "%s: block %lld, group %lld gathers %d columns", what, (long long)r0, (long long)g, n);
        }
        for (int64_t r = r0; r < lb__min64(w->rows, r0 + sp->v); r++) {
            int64_t i = 0;
            for (int64_t c = 0; c < cols; c++) {
                CHECK(!keep[r * cols + c] || bit(sel, c), "%s: row %lld keeps input %lld, not gathered", what,
                      (long long)r, (long long)c);
                if (!bit(sel, c)) continue;
                CHECK(bit(sp->vmask + (size_t)r * sp->vmask_bytes, i) == (keep[r * cols + c] != 0),
                      "%s: row %lld, gathered input %lld (column %lld): relative bit wrong", what, (long long)r,
                      (long long)i, (long long)c);
                i++;
            }
        }
    }
}

/* lb__linear on every ISA, 1 and 2 threads, 1-3 tokens against the
 * canonical dot of the kept values (lb__weight_row, at the kept inputs)
 * with the inputs the keep matrix names. */
static void check_products(const lb_weight *w, const uint8_t *keep, const char *what)
{
    int64_t rows = w->rows, cols = w->cols, nt = 3;
    float *x = malloc(sizeof(float) * (size_t)(nt * cols)), *want = malloc(sizeof(float) * (size_t)(nt * rows));
    float *y = malloc(sizeof(float) * (size_t)(nt * rows)), *row = malloc(sizeof(float) * (size_t)cols);
    float *vk = malloc(sizeof(float) * (size_t)cols), *xk = malloc(sizeof(float) * (size_t)cols);
    for (int64_t i = 0; i < nt * cols; i++) x[i] = (float)lb_rng_normal(&rng);
    for (int64_t r = 0; r < rows; r++) {
        lb__weight_row(w, r, row);
        for (int64_t t = 0; t < nt; t++) {
            int64_t k = 0;
            for (int64_t c = 0; c < cols; c++)
                if (keep[r * cols + c]) { vk[k] = row[c]; xk[k++] = x[t * cols + c]; }
            want[t * rows + r] = lb__dot_ref(vk, xk, k);
        }
    }
    lb_isa saved = lb_isa_active();
    for (int isa = LB_ISA_REF; isa <= (int)lb_isa_best(); isa++)
        for (int th = 1; th <= 2; th++) {
            lb_isa_set((lb_isa)isa);
            lb_pool *pool = NULL;
            lb_wspace *ws = NULL;
            const lb_weight *wl[1] = {w};
            REQUIRE(lb_pool_create(th, &pool) == LB_OK && lb__wspace_create(wl, 1, nt, th, &ws) == LB_OK, "%s",
                    lb_errmsg());
            for (int64_t n = 1; n <= nt; n++) {
                for (int64_t i = 0; i < n * rows; i++) y[i] = NAN;
                lb__linear(ws, pool, w, x, n, cols, y, rows);
                CHECK(!memcmp(y, want, sizeof(float) * (size_t)(n * rows)), "%s: %s, %d threads, %lld tokens differ",
                      what, lb_isa_name((lb_isa)isa), th, (long long)n);
            }
            lb__wspace_free(ws);
            lb_pool_free(pool);
        }
    lb_isa_set(saved);
    free(x); free(want); free(y); free(row); free(vk); free(xk);
}

static void one(int64_t rows, int64_t cols, int V, int N, int M, lb_dtype dt, bool narrow, lb_sparse_layout lay)
{
    float *w = malloc(sizeof(float) * (size_t)(rows * cols));
    uint8_t *keep = malloc((size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)lb_rng_normal(&rng);
    make_keep(keep, rows, cols, V, N, M, narrow);
    char what[128];
    snprintf(what, sizeof what, "%d:%d:%d %s [%lld, %lld]%s%s", V, N, M, lb_dtype_name(dt), (long long)rows,
             (long long)cols, narrow ? " narrow" : "", lay == LB_SPARSE_INDEX ? " index" : "");
    lb_wstore st = {0}, st2 = {0};
    lb_weight sw;
    REQUIRE(lb__weight_sparse(&st, w, keep, rows, cols, dt, V, N, M, lay, &sw) == LB_OK, "%s: %s", what, lb_errmsg());
    bool shared = lay != LB_SPARSE_INDEX && (N == 1 || N == 2 || N == 4) && M > 4 && cols % (2 * M) == 0;
    CHECK(!sw.u.sparse.vmask == !shared && !sw.u.sparse.vsel == !shared, "%s: shared gather %s", what,
          shared ? "missing" : "derived where it does not apply");
    if (sw.u.sparse.vmask) check_derived(&sw, keep, what);
    check_products(&sw, keep, what);
    lb_weight cp = sw;   /* a copy owns its derived arrays */
    REQUIRE(lb__wrep_sparse.copy(&st2, &cp) == LB_OK, "%s: copy: %s", what, lb_errmsg());
    lb__wstore_free(&st);
    CHECK(!cp.u.sparse.vmask == !shared, "%s: copy lost the shared gather", what);
    strncat(what, " (copy)", sizeof what - strlen(what) - 1);
    check_products(&cp, keep, what);
    lb__wstore_free(&st2);
    free(w);
    free(keep);
}

static void test_shared(void)
{
    static const struct { int v, n, m; int64_t rows, cols; } cases[] = {
        {64, 2, 8, 130, 64}, {3, 2, 8, 10, 48}, {5, 1, 8, 11, 80}, {1, 2, 8, 4, 32}, {7, 4, 8, 9, 16},
        {4, 2, 6, 9, 36}, {6, 2, 12, 13, 72}, {2, 1, 16, 7, 96}, {5, 4, 16, 6, 64}, {64, 2, 8, 70, 768}};
    static const lb_dtype dts[] = {LB_DTYPE_BF16, LB_DTYPE_F32, LB_DTYPE_F16};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int d = 0; d < 3; d++)
            one(cases[i].rows, cases[i].cols, cases[i].v, cases[i].n, cases[i].m, dts[d], d == 1, LB_SPARSE_AUTO);
}

static void test_not_shared(void)
{
    one(9, 48, 4, 3, 8, LB_DTYPE_BF16, false, LB_SPARSE_AUTO);    /* N = 3: no uniform relative mask */
    one(9, 32, 4, 2, 4, LB_DTYPE_BF16, false, LB_SPARSE_AUTO);    /* M = 4: nothing to share */
    one(9, 40, 4, 2, 8, LB_DTYPE_BF16, false, LB_SPARSE_AUTO);    /* 5 groups: half a relative byte */
    one(9, 52, 4, 2, 8, LB_DTYPE_F32, true, LB_SPARSE_AUTO);      /* a partial last group */
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_shared);
    RUN(test_not_shared);
    return TEST_DONE();
}
