/* study_formats.c: `lowbit bench formats`, the formats study. The QSNR
 *   QSNR = 10 log10(sum x^2 / sum (x - x')^2),  x' = R^T deq(q(R x))
 * of every registry format (floor scale rule; MX formats also with the MSE
 * rule) on synthetic data sets and on the linear weights of real models,
 * with R = I or a block-diagonal randomized Hadamard of block 16, 32, 128.
 * The published claims it checks are evaluated from the numbers ("findings").
 * Output: markdown on stdout (or JSON with --json); with --out DIR the files
 * DIR/formats-study.{md,json,svg}, each written atomically. */
#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *CMD = "bench formats";
#define N_ROTS 4
static const int64_t ROTS[N_ROTS] = {0, 16, 32, 128};
static const double CRESTS[] = {2, 5, 10, 20, 50, 100};
#define N_CRESTS ((int)(sizeof CRESTS / sizeof *CRESTS))
enum { SIGN_SEED = 42, N_OUTLIER_COLS = 2 };
#define OUTLIER_PEAK 3.5 /* largest |g| in each outlier column: makes every target crest reachable */

typedef struct mat { const float *x; int64_t rows, cols; } mat;

typedef struct dataset {
    char name[32];       /* column label */
    char desc[1280];
    float *own;          /* all values, owned */
    mat *mats;
    int n_mats;
    int64_t values;
    double crest;        /* max |x| / rms over all values */
    double block_crest;  /* mean over 32-blocks of rows of max |x| / rms */
    double target;       /* outlier sets: the crest asked for; else 0 */
    char skipped[1100];  /* why the set was not measured; "" when it was */
} dataset;

typedef struct variant { const lb_format *f; lb_scale_rule rule; char label[40]; } variant;
typedef struct cell { double qsnr, coverage; } cell; /* qsnr NAN: no tensor fits (n/a) */

typedef struct study {
    int64_t rows, cols;
    uint64_t seed;
    bool quick;
    dataset *sets;
    int n_sets;
    variant *vars;
    int n_vars;
    cell *cells;          /* [set][var][rot] */
    double seconds;
    char command[256];
} study;

static cell *at(const study *s, int d, int v, int r) { return &s->cells[((size_t)d * s->n_vars + v) * N_ROTS + r]; }

/* ---- data sets */

static void stats(dataset *d)
{
    double sx = 0, mx = 0, bc = 0;
    int64_t nb = 0;
    for (int k = 0; k < d->n_mats; k++) {
        const mat *m = &d->mats[k];
        for (int64_t r = 0; r < m->rows; r++)
            for (int64_t c0 = 0; c0 + 32 <= m->cols; c0 += 32) {
                double bs = 0, bm = 0;
                for (int64_t c = c0; c < c0 + 32; c++) {
                    double v = fabs(m->x[r * m->cols + c]);
                    bs += v * v;
                    bm = v > bm ? v : bm;
                }
                if (bs > 0) bc += bm / sqrt(bs / 32), nb++;
            }
        for (int64_t i = 0; i < m->rows * m->cols; i++) {
            double v = fabs(m->x[i]);
            sx += v * v;
            mx = v > mx ? v : mx;
        }
    }
    d->crest = sx > 0 ? mx / sqrt(sx / (double)d->values) : 0;
    d->block_crest = nb ? bc / (double)nb : 0;
}

static int one_matrix(dataset *d, int64_t rows, int64_t cols)
{
    d->own = malloc((size_t)(rows * cols) * sizeof *d->own);
    d->mats = malloc(sizeof *d->mats);
    if (!d->own || !d->mats) return cli_fail(CMD, "out of memory");
    d->mats[0] = (mat){d->own, rows, cols};
    d->n_mats = 1;
    d->values = rows * cols;
    return 0;
}

/* kind 0 Gaussian, 1 Laplace (unit variance), 2 Student-t with nu = 3 */
static int make_dist(dataset *d, int kind, const study *s, uint64_t seed)
{
    static const char *names[] = {"gauss", "laplace", "t3"};
    static const char *descs[] = {"Gaussian N(0, 1)", "Laplace, unit variance: -sign(u) ln(1 - 2|u|) / sqrt(2)",
                                  "Student-t, nu = 3: z / sqrt(chi2_3 / 3)"};
    snprintf(d->name, sizeof d->name, "%s", names[kind]);
    snprintf(d->desc, sizeof d->desc, "%s", descs[kind]);
    if (one_matrix(d, s->rows, s->cols)) return 1;
    lb_rng g;
    lb_rng_seed(&g, seed);
    for (int64_t i = 0; i < d->values; i++) {
        double v;
        if (kind == 0) v = lb_rng_normal(&g);
        else if (kind == 1) {
            double u = lb_rng_uniform(&g) - 0.5;
            v = (u < 0 ? 1 : -1) * log(1 - 2 * fabs(u)) / sqrt(2.0);
        } else {
            double z = lb_rng_normal(&g), a = lb_rng_normal(&g), b = lb_rng_normal(&g), c = lb_rng_normal(&g);
            v = z / sqrt((a * a + b * b + c * c) / 3);
        }
        d->own[i] = (float)v;
    }
    stats(d);
    return 0;
}

/* Outlier channels at a target crest factor C = max|x| / rms. Every value is
 * uniform in [-sqrt 3, sqrt 3] (rms 1, crest 1.73) except N_OUTLIER_COLS
 * seeded columns holding s * g, g standard normal with the largest |g| of
 * each column set to OUTLIER_PEAK. crest(s) = max(m0, s P) / sqrt((S0 + s^2
 * S1) / N) rises with s once s P > m0, so s is found by bisection. */
static int make_outlier(dataset *d, double target, const study *s, uint64_t seed)
{
    snprintf(d->name, sizeof d->name, "c%g", target);
    snprintf(d->desc, sizeof d->desc, "uniform base, %d outlier columns scaled to crest %g", N_OUTLIER_COLS, target);
    d->target = target;
    if (one_matrix(d, s->rows, s->cols)) return 1;
    lb_rng g;
    lb_rng_seed(&g, seed);
    int64_t oc[N_OUTLIER_COLS];
    for (int k = 0; k < N_OUTLIER_COLS; k++) {
        bool dup;
        do {
            oc[k] = (int64_t)(lb_rng_u64(&g) % (uint64_t)s->cols);
            dup = false;
            for (int j = 0; j < k; j++) dup |= oc[j] == oc[k];
        } while (dup);
    }
    double s0 = 0, s1 = 0, m0 = 0;
    for (int64_t r = 0; r < s->rows; r++)
        for (int64_t c = 0; c < s->cols; c++) {
            double u = (2 * lb_rng_uniform(&g) - 1) * sqrt(3.0);
            d->own[r * s->cols + c] = (float)u;
        }
    for (int k = 0; k < N_OUTLIER_COLS; k++) {
        int64_t peak = 0;
        double pm = 0;
        for (int64_t r = 0; r < s->rows; r++) {
            double v = lb_rng_normal(&g);
            d->own[r * s->cols + oc[k]] = (float)v;
            if (fabs(v) > pm) pm = fabs(v), peak = r;
        }
        float *p = &d->own[peak * s->cols + oc[k]];
        *p = *p < 0 ? (float)-OUTLIER_PEAK : (float)OUTLIER_PEAK;
    }
    for (int64_t r = 0; r < s->rows; r++)
        for (int64_t c = 0; c < s->cols; c++) {
            double v = d->own[r * s->cols + c];
            bool out = false;
            for (int k = 0; k < N_OUTLIER_COLS; k++) out |= c == oc[k];
            if (out) s1 += v * v;
            else s0 += v * v, m0 = fabs(v) > m0 ? fabs(v) : m0;
        }
    double n = (double)d->values, lo = m0 / OUTLIER_PEAK, hi = 1e6;
    if (OUTLIER_PEAK / sqrt(s1 / n) <= target) return cli_fail(CMD, "crest %g is out of reach at this size", target);
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi), c = fmax(m0, mid * OUTLIER_PEAK) / sqrt((s0 + mid * mid * s1) / n);
        if (c < target) lo = mid; else hi = mid;
    }
    for (int64_t r = 0; r < s->rows; r++)
        for (int k = 0; k < N_OUTLIER_COLS; k++) d->own[r * s->cols + oc[k]] *= (float)lo;
    stats(d);
    snprintf(d->desc, sizeof d->desc, "uniform base; columns %lld and %lld are %.4g * N(0,1) (peak %.1f): crest %g",
             (long long)oc[0], (long long)oc[1], lo, OUTLIER_PEAK, target);
    return 0;
}

/* The model's linear weights (q, k, v, o, gate, up, down of every layer, and
 * lm_head when it is not the tied embedding) converted to float32. */
static int make_model(dataset *d, const char *dir, const char *name, const char *file)
{
    char path[1024];
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(path, sizeof path, "%s/%s%s%s", dir, name, file ? "/" : "", file ? file : "");
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(d->skipped, sizeof d->skipped, "SKIP: %s not found (set LOWBIT_MODELS)", path);
        fprintf(stderr, "lowbit %s: %s\n", CMD, d->skipped);
        return 0;
    }
    lb_model *m = NULL;
    lb_status st2 = lb_model_load(path, &m);
    if (st2) return cli_fail_status(CMD, st2);
    lb_model_info info;
    lb_model_get_info(m, &info);
    static const char *const lin[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    int nl = (int)info.n_layers, cap = nl * 7 + 1, n = 0, rc = 0;
    char (*names)[96] = malloc((size_t)cap * sizeof *names);
    int64_t (*shape)[2] = malloc((size_t)cap * sizeof *shape);
    if (!names || !shape) rc = cli_fail(CMD, "out of memory");
    for (int l = 0; l < nl && !rc; l++)
        for (int k = 0; k < 7; k++) snprintf(names[n++], sizeof *names, "model.layers.%d.%s.weight", l, lin[k]);
    if (!rc && !info.tied_embeddings) snprintf(names[n++], sizeof *names, "lm_head.weight");
    int64_t total = 0;
    for (int k = 0; k < n && !rc; k++) {
        lb_status ws = lb_model_weight_f32(m, names[k], NULL, &shape[k][0], &shape[k][1]);
        if (ws) rc = cli_fail_status(CMD, ws);
        total += shape[k][0] * shape[k][1];
    }
    if (!rc) {
        d->own = malloc((size_t)total * sizeof *d->own);
        d->mats = malloc((size_t)n * sizeof *d->mats);
        if (!d->own || !d->mats) rc = cli_fail(CMD, "out of memory");
    }
    for (int64_t k = 0, off = 0; k < n && !rc; k++) {
        float *y = d->own + off;
        lb_status ws = lb_model_weight_f32(m, names[k], y, NULL, NULL);
        if (ws) rc = cli_fail_status(CMD, ws);
        d->mats[k] = (mat){y, shape[k][0], shape[k][1]};
        off += shape[k][0] * shape[k][1];
    }
    d->n_mats = n;
    d->values = total;
    snprintf(d->desc, sizeof d->desc, "%s: %d linear weights (%s), dim %lld, hidden %lld", path, n,
             info.tied_embeddings ? "lm_head tied to the embedding, not counted" : "with lm_head",
             (long long)info.dim, (long long)info.hidden_dim);
    free(names);
    free(shape);
    lb_model_free(m);
    if (!rc) stats(d);
    return rc;
}

/* ---- measurement */

typedef struct job {
    const study *s;
    const dataset *d;
    int di, ri;
    int8_t **signs;      /* per matrix, or NULL */
    lb_status status;
} job;

static void run_vars(void *ctx, int64_t begin, int64_t end, int thread)
{
    job *j = ctx;
    const dataset *d = j->d;
    int64_t hb = ROTS[j->ri];
    for (int64_t v = begin; v < end; v++) {
        const variant *va = &j->s->vars[v];
        lb_quant_opts q = {va->rule};
        int64_t blk = lb_format_block(va->f), incl = 0;
        double sx = 0, se = 0;
        for (int k = 0; k < d->n_mats; k++) {
            const mat *m = &d->mats[k];
            if ((blk && m->cols % blk) || (hb && m->cols % hb)) continue;
            int64_t n = m->rows * m->cols;
            float *y = malloc((size_t)n * sizeof *y);
            lb_status st = y ? cli_hadamard_roundtrip(va->f, &q, m->x, m->rows, m->cols, hb, j->signs[k], y)
                             : LB_ERR_NOMEM;
            if (st) { j->status = st; free(y); return; }
            for (int64_t i = 0; i < n; i++) {
                double e = (double)y[i] - m->x[i];
                se += e * e;
                sx += (double)m->x[i] * m->x[i];
            }
            incl += n;
            free(y);
        }
        cell *c = at(j->s, j->di, (int)v, j->ri);
        c->coverage = (double)incl / (double)d->values;
        c->qsnr = !incl ? NAN : se > 0 ? 10 * log10(sx / se) : INFINITY;
    }
}

static int measure(study *s, lb_pool *pool)
{
    int64_t done = 0, total = (int64_t)s->n_sets * N_ROTS;
    for (int di = 0; di < s->n_sets; di++) {
        dataset *d = &s->sets[di];
        for (int ri = 0; ri < N_ROTS; ri++, done++) {
            cli_progress(done, total, d->name, (void *)"lowbit bench formats");
            if (d->skipped[0]) continue;
            int8_t **signs = calloc((size_t)d->n_mats, sizeof *signs);
            if (!signs) return cli_fail(CMD, "out of memory");
            for (int k = 0; k < d->n_mats && ROTS[ri]; k++)
                if (d->mats[k].cols % ROTS[ri] == 0) signs[k] = cli_hadamard_signs(true, SIGN_SEED, d->mats[k].cols);
            job j = {s, d, di, ri, signs, LB_OK};
            lb_pool_for(pool, s->n_vars, 1, run_vars, &j);
            for (int k = 0; k < d->n_mats; k++) free(signs[k]);
            free(signs);
            if (j.status) { cli_progress_end(); return cli_fail_status(CMD, j.status); }
        }
    }
    cli_progress_end();
    return 0;
}

/* ---- findings, computed from the cells */

static int var_index(const study *s, const char *label)
{
    for (int v = 0; v < s->n_vars; v++)
        if (!strcmp(s->vars[v].label, label)) return v;
    return -1;
}

static double q_of(const study *s, int d, const char *label, int r)
{
    int v = var_index(s, label);
    return v < 0 ? NAN : at(s, d, v, r)->qsnr;
}

static const char *verdict(int yes, int n)
{
    if (n == 0) return "not measured";
    if (yes == n) return "reproduced";
    if (4 * yes >= 3 * n) return "mostly reproduced";
    if (yes > 0) return "partly reproduced";
    return "not reproduced";
}

typedef struct finding { char claim[96], verdict[64], detail[2000]; } finding;
#define DETAIL(f, ...) snprintf((f)->detail + strlen((f)->detail), sizeof (f)->detail - strlen((f)->detail), __VA_ARGS__)

static void claim_int8(const study *s, finding *f)
{
    int yes = 0, n = 0;
    double lo = INFINITY, hi = -INFINITY;
    snprintf(f->claim, sizeof f->claim, "MXINT8 beats MXFP8");
    for (int d = 0; d < s->n_sets; d++)
        for (int r = 0; r < N_ROTS; r++) {
            double i8 = q_of(s, d, "mxint8", r), e4 = q_of(s, d, "mxfp8_e4m3", r), e5 = q_of(s, d, "mxfp8_e5m2", r);
            if (isnan(i8) || isnan(e4) || isnan(e5)) continue;
            n++;
            if (i8 > e4 && i8 > e5) yes++;
            else DETAIL(f, "%sexception: %s H%lld (mxint8 %.2f, e4m3 %.2f, e5m2 %.2f)", f->detail[0] ? "; " : "",
                        s->sets[d].name, (long long)ROTS[r], i8, e4, e5);
            lo = fmin(lo, i8 - e4), hi = fmax(hi, i8 - e4);
        }
    snprintf(f->verdict, sizeof f->verdict, "%s", verdict(yes, n));
    DETAIL(f, "%smxint8 > both mxfp8 variants on %d of %d (data set, rotation) cases; mxint8 - mxfp8_e4m3 "
           "ranges from %+.2f to %+.2f dB", f->detail[0] ? ". " : "", yes, n, lo, hi);
}

static void claim_nv(const study *s, finding *f)
{
    int yes = 0, n = 0, yes0 = 0, n0 = 0;
    snprintf(f->claim, sizeof f->claim, "NVINT4 matches or beats NVFP4 once rotated");
    for (int d = 0; d < s->n_sets; d++)
        for (int r = 0; r < N_ROTS; r++) {
            double a = q_of(s, d, "nvint4", r), b = q_of(s, d, "nvfp4", r);
            if (isnan(a) || isnan(b)) continue;
            bool ok = a >= b - 0.1;
            if (r == 0) { n0++; yes0 += ok; continue; }
            n++;
            yes += ok;
            if (!ok) DETAIL(f, "%sexception: %s H%lld (nvint4 %.2f, nvfp4 %.2f)", f->detail[0] ? "; " : "",
                            s->sets[d].name, (long long)ROTS[r], a, b);
        }
    snprintf(f->verdict, sizeof f->verdict, "%s", verdict(yes, n));
    DETAIL(f, "%srotated (H16/H32/H128): nvint4 >= nvfp4 - 0.1 dB on %d of %d cases; unrotated: %d of %d",
           f->detail[0] ? ". " : "", yes, n, yes0, n0);
}

static void claim_hadamard(const study *s, finding *f)
{
    static const char *fm[] = {"mxfp4", "int4_g32", "nvfp4"};
    int up[3] = {0}, down[3] = {0}, n[3] = {0};
    snprintf(f->claim, sizeof f->claim, "Hadamard helps MXFP4 and INT4 but can hurt NVFP4");
    for (int k = 0; k < 3; k++)
        for (int d = 0; d < s->n_sets; d++)
            for (int r = 1; r < N_ROTS; r++) {
                double a = q_of(s, d, fm[k], 0), b = q_of(s, d, fm[k], r);
                if (isnan(a) || isnan(b)) continue;
                n[k]++;
                up[k] += b > a + 0.05, down[k] += b < a - 0.05;
            }
    int yes = (4 * up[0] >= 3 * n[0]) + (4 * up[1] >= 3 * n[1]) + (down[2] > 0);
    snprintf(f->verdict, sizeof f->verdict, "%s", verdict(yes, 3));
    for (int k = 0; k < 3; k++) {
        DETAIL(f, "%s%s: rotation raises QSNR by > 0.05 dB in %d, lowers it in %d of %d (data set, block) cases",
               k ? "; " : "", fm[k], up[k], down[k], n[k]);
        int w = 0;
        for (int d = 0; d < s->n_sets; d++) {
            double a = q_of(s, d, fm[k], 0), best = -INFINITY;
            for (int r = 1; r < N_ROTS; r++) best = fmax(best, q_of(s, d, fm[k], r));
            if (!isnan(a) && isfinite(best) && best < a - 0.05)
                DETAIL(f, "%s%s", w++ ? ", " : ", every block lowers it on ", s->sets[d].name);
        }
    }
    DETAIL(f, " (helps = raises in >= 3/4 of cases; can hurt = lowers in at least one)");
}

static const char *PAIRS[][2] = {{"mxint8", "mxfp8_e4m3"}, {"nvint4", "nvfp4"}, {"int4_g32", "mxfp4"}};
#define N_PAIRS 3

/* INT - FP of pair p along the sets idx[0..n) (ascending crest cr[]):
 * the first and last difference, and the crest where INT stops winning. */
static void series(const study *s, int p, const int *idx, const double *cr, int n, int r, double *first,
                   double *last, double *cross)
{
    double prev = NAN, pc = 0;
    *first = *last = *cross = NAN;
    for (int k = 0; k < n; k++) {
        double diff = q_of(s, idx[k], PAIRS[p][0], r) - q_of(s, idx[k], PAIRS[p][1], r);
        if (isnan(diff)) continue;
        if (isnan(*first)) *first = diff;
        if (!isnan(prev) && prev > 0 && diff <= 0 && isnan(*cross))
            *cross = pc + (cr[k] - pc) * prev / (prev - diff);
        prev = diff, pc = cr[k], *last = diff;
    }
}

/* Along (a) the tensor crest of the outlier-column sets and (b) the mean
 * block-32 crest of every synthetic set, for each INT/FP pair. */
static void claim_crossover(const study *s, finding *f, int r)
{
    int idx[2][32], n[2] = {0, 0}, yes[2] = {0, 0}, tot[2] = {0, 0};
    double cr[2][32];
    snprintf(f->claim, sizeof f->claim, "the INT/FP crossover moves with crest factor");
    for (int d = 0; d < s->n_sets && d < 32; d++) {
        const dataset *x = &s->sets[d];
        if (x->skipped[0] || !x->mats || x->n_mats != 1) continue; /* synthetic sets only */
        if (x->target) idx[0][n[0]] = d, cr[0][n[0]++] = x->crest;
        int k = n[1]++;
        while (k > 0 && cr[1][k - 1] > x->block_crest) idx[1][k] = idx[1][k - 1], cr[1][k] = cr[1][k - 1], k--;
        idx[1][k] = d, cr[1][k] = x->block_crest;
    }
    static const char *axis[] = {"tensor crest of the outlier-column sets", "mean block-32 crest of all synthetic sets"};
    for (int a = 0; a < 2; a++) {
        DETAIL(f, "%sAlong the %s (%.3g to %.3g): ", a ? ". " : "", axis[a], n[a] ? cr[a][0] : 0,
               n[a] ? cr[a][n[a] - 1] : 0);
        for (int p = 0; p < N_PAIRS; p++) {
            double first, last, cross;
            series(s, p, idx[a], cr[a], n[a], r, &first, &last, &cross);
            if (isnan(first)) continue;
            bool ok = first > 0 && last < 0;
            if (p < 2) tot[a]++, yes[a] += ok;
            DETAIL(f, "%s%s - %s %+.2f dB -> %+.2f dB", p ? "; " : "", PAIRS[p][0], PAIRS[p][1], first, last);
            if (!isnan(cross)) DETAIL(f, " (FP wins from crest ~%.2f)", cross);
            else DETAIL(f, " (%s wins throughout)", first > 0 ? "INT" : "FP");
        }
    }
    int y = (yes[0] > 0) + (yes[1] > 0);
    snprintf(f->verdict, sizeof f->verdict, "%s",
             y == 2 ? "reproduced" : yes[1] ? "reproduced along the block crest only"
                                   : yes[0] ? "reproduced along the tensor crest only" : "not reproduced");
    DETAIL(f, " (a crossover = INT wins at the lowest crest and FP at the highest, for mxint8/mxfp8_e4m3 or "
              "nvint4/nvfp4; int4_g32/mxfp4 also differ in scale type)");
    (void)tot;
}

/* ---- reports */

static void fmt_q(FILE *o, const cell *c)
{
    if (isnan(c->qsnr)) fprintf(o, " n/a |");
    else if (isinf(c->qsnr)) fprintf(o, " inf |");
    else fprintf(o, " %.2f%s |", c->qsnr, c->coverage < 1 ? "*" : "");
}

static void write_md(FILE *o, const study *s, const finding *fs, int nf)
{
    fprintf(o, "# Formats study: QSNR of every lowbit number format\n\n"
               "Produced by `%s` (lowbit %s, %.0f s on this machine). QSNR = 10 log10(sum x^2 / sum (x - x')^2) "
               "in dB, x' the round trip x -> R^T deq(q(R x)); higher is better. Synthetic data: %lld x %lld, "
               "seed %llu. R = I, or blockdiag(H_B) D with B = 16, 32, 128 and random signs D from seed %d "
               "(per row of each matrix). Formats use the floor scale rule; `/mse` rows are the MX formats "
               "with the per-block MSE scale search.\n\n",
            s->command, lb_version(), s->seconds, (long long)s->rows, (long long)s->cols,
            (unsigned long long)s->seed, SIGN_SEED);
    fprintf(o, "## Data sets\n\n| set | values | crest max/rms | mean block-32 crest | built as |\n|---|---:|---:|---:|---|\n");
    for (int d = 0; d < s->n_sets; d++) {
        const dataset *x = &s->sets[d];
        if (x->skipped[0]) fprintf(o, "| %s | - | - | - | %s |\n", x->name, x->skipped);
        else fprintf(o, "| %s | %lld | %.2f | %.2f | %s |\n", x->name, (long long)x->values, x->crest, x->block_crest,
                     x->desc);
    }
    fprintf(o, "\n## Findings (computed from the tables below)\n\n");
    for (int i = 0; i < nf; i++) fprintf(o, "- **%s**: %s. %s.\n", fs[i].claim, fs[i].verdict, fs[i].detail);
    fprintf(o, "\n### INT minus FP (dB) along the crest factor, no rotation\n\n| pair |");
    for (int d = 0; d < s->n_sets; d++)
        if (s->sets[d].target) fprintf(o, " crest %.3g |", s->sets[d].crest);
    fprintf(o, "\n|---|");
    for (int d = 0; d < s->n_sets; d++)
        if (s->sets[d].target) fprintf(o, "---:|");
    fprintf(o, "\n");
    for (int p = 0; p < N_PAIRS; p++) {
        fprintf(o, "| %s - %s |", PAIRS[p][0], PAIRS[p][1]);
        for (int d = 0; d < s->n_sets; d++)
            if (s->sets[d].target) fprintf(o, " %+.2f |", q_of(s, d, PAIRS[p][0], 0) - q_of(s, d, PAIRS[p][1], 0));
        fprintf(o, "\n");
    }
    fprintf(o, "\n![QSNR per format and data set](formats-study.svg)\n");
    for (int r = 0; r < N_ROTS; r++) {
        if (ROTS[r]) fprintf(o, "\n## QSNR (dB), Hadamard block %lld with random signs\n\n", (long long)ROTS[r]);
        else fprintf(o, "\n## QSNR (dB), no rotation\n\n");
        fprintf(o, "| format | bits/w |");
        for (int d = 0; d < s->n_sets; d++) fprintf(o, " %s |", s->sets[d].name);
        fprintf(o, "\n|---|---:|");
        for (int d = 0; d < s->n_sets; d++) fprintf(o, "---:|");
        fprintf(o, "\n");
        for (int v = 0; v < s->n_vars; v++) {
            fprintf(o, "| %s | %.4g |", s->vars[v].label, lb_format_bits_per_weight(s->vars[v].f));
            for (int d = 0; d < s->n_sets; d++) {
                if (s->sets[d].skipped[0]) fprintf(o, " skip |");
                else fmt_q(o, at(s, d, v, r));
            }
            fprintf(o, "\n");
        }
    }
    fprintf(o, "\n`*`: only the weights whose row length both the format block and the rotation block divide "
               "(coverage in the JSON); `n/a`: no weight matrix fits.\n");
}

static void json_num(FILE *o, double v)
{
    if (isnan(v)) fprintf(o, "null");
    else if (isinf(v)) fprintf(o, "999");
    else fprintf(o, "%.4f", v);
}

static void json_str(FILE *o, const char *t)
{
    fputc('"', o);
    for (; *t; t++) {
        if (*t == '"' || *t == '\\') fputc('\\', o);
        if ((unsigned char)*t >= 0x20) fputc(*t, o);
    }
    fputc('"', o);
}

static void write_json(FILE *o, const study *s, const finding *fs, int nf)
{
    fprintf(o, "{\n\"command\": ");
    json_str(o, s->command);
    fprintf(o, ",\n\"version\": \"%s\", \"seed\": %llu, \"sign_seed\": %d, \"rows\": %lld, \"cols\": %lld, "
               "\"quick\": %s, \"seconds\": %.1f,\n\"rotations\": [0, 16, 32, 128],\n\"datasets\": [",
            lb_version(), (unsigned long long)s->seed, SIGN_SEED, (long long)s->rows, (long long)s->cols,
            s->quick ? "true" : "false", s->seconds);
    for (int d = 0; d < s->n_sets; d++) {
        const dataset *x = &s->sets[d];
        fprintf(o, "%s\n  {\"name\": \"%s\", \"values\": %lld, \"crest\": ", d ? "," : "", x->name, (long long)x->values);
        json_num(o, x->skipped[0] ? NAN : x->crest);
        fprintf(o, ", \"block_crest\": ");
        json_num(o, x->skipped[0] ? NAN : x->block_crest);
        fprintf(o, ", \"target_crest\": ");
        json_num(o, x->target ? x->target : NAN);
        fprintf(o, ", \"skipped\": %s, \"description\": ", x->skipped[0] ? "true" : "false");
        json_str(o, x->skipped[0] ? x->skipped : x->desc);
        fprintf(o, "}");
    }
    fprintf(o, "\n],\n\"results\": [");
    int k = 0;
    for (int d = 0; d < s->n_sets; d++)
        for (int v = 0; v < s->n_vars; v++)
            for (int r = 0; r < N_ROTS && !s->sets[d].skipped[0]; r++) {
                const cell *c = at(s, d, v, r);
                fprintf(o, "%s\n  {\"dataset\": \"%s\", \"format\": \"%s\", \"scale_rule\": \"%s\", \"hadamard\": %lld, "
                           "\"bits_per_weight\": %.4f, \"qsnr_db\": ", k++ ? "," : "", s->sets[d].name,
                        lb_format_name(s->vars[v].f), s->vars[v].rule == LB_SCALE_MSE ? "mse" : "floor",
                        (long long)ROTS[r], lb_format_bits_per_weight(s->vars[v].f));
                json_num(o, c->qsnr);
                fprintf(o, ", \"coverage\": %.4f}", c->coverage);
            }
    fprintf(o, "\n],\n\"findings\": [");
    for (int i = 0; i < nf; i++) {
        fprintf(o, "%s\n  {\"claim\": ", i ? "," : "");
        json_str(o, fs[i].claim);
        fprintf(o, ", \"verdict\": ");
        json_str(o, fs[i].verdict);
        fprintf(o, ", \"detail\": ");
        json_str(o, fs[i].detail);
        fprintf(o, "}");
    }
    fprintf(o, "\n]\n}\n");
}

/* Dot chart: one panel per rotation; x = every format variant, one dot per
 * data set (colour), y = QSNR in dB. */
static void write_svg(FILE *o, const study *s)
{
    static const char *col[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aec7e8"};
    const int ncol = (int)(sizeof col / sizeof *col);
    double lo = 0, hi = 10;
    for (size_t i = 0; i < (size_t)s->n_sets * s->n_vars * N_ROTS; i++) {
        double q = s->cells[i].qsnr;
        if (isfinite(q)) lo = fmin(lo, q), hi = fmax(hi, q);
    }
    lo = floor(lo / 10) * 10, hi = ceil(hi / 10) * 10;
    const double L = 60, step = 13, ph = 240, lab = 120, top = 50;
    double pw = step * s->n_vars, W = L + pw + 190, H = top + N_ROTS * (ph + lab + 30);
    fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
               "font-size=\"10\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(o, "<text x=\"%.0f\" y=\"22\" font-size=\"15\">QSNR (dB) of every lowbit format per data set "
               "(%s)</text>\n", L, s->command);
    for (int r = 0; r < N_ROTS; r++) {
        double y0 = top + r * (ph + lab + 30) + 14, yb = y0 + ph;
        if (ROTS[r]) fprintf(o, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">Hadamard block %lld, random signs</text>\n",
                             L, y0 - 4, (long long)ROTS[r]);
        else fprintf(o, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">no rotation</text>\n", L, y0 - 4);
        for (double g = lo; g <= hi + 1e-9; g += 10) {
            double y = yb - (g - lo) / (hi - lo) * ph;
            fprintf(o, "<line x1=\"%.0f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                       "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n", L, L + pw, y, y, L - 4, y + 3, g);
        }
        fprintf(o, "<text transform=\"translate(%.0f,%.0f) rotate(-90)\" text-anchor=\"middle\">QSNR (dB)</text>\n",
                L - 34, y0 + ph / 2);
        for (int v = 0; v < s->n_vars; v++) {
            double x = L + step * (v + 0.5);
            fprintf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#f2f2f2\"/>"
                       "<text transform=\"translate(%.1f,%.1f) rotate(-70)\" text-anchor=\"end\" font-size=\"9\">%s</text>\n",
                    x, x, y0, yb, x + 3, yb + 6, s->vars[v].label);
            for (int d = 0; d < s->n_sets; d++) {
                double q = at(s, d, v, r)->qsnr;
                if (s->sets[d].skipped[0] || !isfinite(q)) continue;
                fprintf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\" fill-opacity=\"0.8\"/>\n", x,
                        yb - (q - lo) / (hi - lo) * ph, col[d % ncol]);
            }
        }
        fprintf(o, "<line x1=\"%.0f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", L, L + pw, yb, yb);
    }
    for (int d = 0; d < s->n_sets; d++)
        fprintf(o, "<circle cx=\"%.0f\" cy=\"%d\" r=\"4\" fill=\"%s\"/><text x=\"%.0f\" y=\"%d\">%s%s</text>\n",
                L + pw + 20, 64 + 16 * d, col[d % ncol], L + pw + 30, 68 + 16 * d, s->sets[d].name,
                s->sets[d].skipped[0] ? " (skipped)" : "");
    fprintf(o, "</svg>\n");
}

/* ---- command */

static int help(void)
{
    printf("usage: lowbit bench formats [--out DIR] [--json] [--quick] [--seed S]\n"
           "QSNR (dB) of every format of 'lowbit formats' (floor scale rule; MX formats also with the\n"
           "MSE rule) on Gaussian, Laplace and Student-t (nu = 3) data, on data with 2 outlier\n"
           "columns at crest factors (max|x| / rms) 2, 5, 10, 20, 50, 100, and on the linear\n"
           "weights of the models in LOWBIT_MODELS (stories260K, tinystories-656k; skipped when\n"
           "absent), each without rotation and with a randomized Hadamard of block 16, 32, 128.\n"
           "Prints markdown (JSON with --json) with findings on the published claims;\n"
           "--out DIR also writes DIR/formats-study.md, .json and .svg. Synthetic data: 256 x 4096\n"
           "(--quick: 32 x 4096, 17 formats, crest 2, 10, 100, only stories260K). Seed S (default 1) seeds the data.\n");
    return 0;
}

static int emit(const study *s, const finding *fs, int nf, int which, char **buf)
{
    size_t len = 0;
    FILE *o = open_memstream(buf, &len);
    if (!o) return cli_fail(CMD, "out of memory");
    if (which == 0) write_md(o, s, fs, nf);
    else if (which == 1) write_json(o, s, fs, nf);
    else write_svg(o, s);
    return fclose(o) ? cli_fail(CMD, "out of memory") : 0;
}

static int write_outputs(const study *s, const finding *fs, int nf, const char *dir, bool json)
{
    static const char *ext[] = {"md", "json", "svg"};
    if (dir && mkdir(dir, 0777) != 0 && errno != EEXIST) return cli_fail(CMD, "%s: cannot create: %s", dir, strerror(errno));
    int rc = 0;
    for (int k = 0; k < 3 && !rc; k++) {
        char *buf = NULL;
        if ((rc = emit(s, fs, nf, k, &buf))) break;
        if (k == (json ? 1 : 0)) fputs(buf, stdout);
        if (dir) {
            char path[4096];
            snprintf(path, sizeof path, "%s/formats-study.%s", dir, ext[k]);
            rc = cli_write_atomic(CMD, path, NULL, 0, buf, strlen(buf));
        }
        free(buf);
    }
    return rc;
}

static int build_sets(study *s)
{
    const char *dir = cli_models_dir();
    int nd = 3 + N_CRESTS + 2, rc = 0;
    s->sets = calloc((size_t)nd, sizeof *s->sets);
    if (!s->sets) return cli_fail(CMD, "out of memory");
    for (int k = 0; k < 3 && !rc; k++) rc = make_dist(&s->sets[s->n_sets++], k, s, s->seed * 1000 + (uint64_t)k);
    for (int k = 0; k < N_CRESTS && !rc; k++)
        if (!s->quick || CRESTS[k] == 2 || CRESTS[k] == 10 || CRESTS[k] == 100) rc = make_outlier(&s->sets[s->n_sets++], CRESTS[k], s, s->seed * 1000 + 10 + (uint64_t)k);
    if (!rc) rc = make_model(&s->sets[s->n_sets++], dir, "stories260K", "stories260K.bin");
    if (!rc && !s->quick) rc = make_model(&s->sets[s->n_sets++], dir, "tinystories-656k", NULL);
    return rc;
}

/* --quick measures these only (the claims' formats and one of each family). */
static const char *QUICK[] = {"mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4", "mxint8", "nvfp4",
                              "nvint4", "int2_g32", "int3_g32", "int4_g32", "int4_g128", "int8_g32", "int4_ch",
                              "int8_ch", "nf4", "ternary"};

static bool in_quick(const char *name)
{
    for (size_t i = 0; i < sizeof QUICK / sizeof *QUICK; i++)
        if (!strcmp(QUICK[i], name)) return true;
    return false;
}

static int build_vars(study *s)
{
    int nf = lb_format_count();
    s->vars = calloc((size_t)nf * 2, sizeof *s->vars);
    if (!s->vars) return cli_fail(CMD, "out of memory");
    for (int i = 0; i < nf; i++) {
        const lb_format *f = lb_format_at(i);
        if (s->quick && !in_quick(lb_format_name(f))) continue;
        variant *v = &s->vars[s->n_vars++];
        *v = (variant){f, LB_SCALE_FLOOR, ""};
        snprintf(v->label, sizeof v->label, "%s", lb_format_name(f));
        if (!strncmp(lb_format_name(f), "mx", 2) && !s->quick) {
            v = &s->vars[s->n_vars++];
            *v = (variant){f, LB_SCALE_MSE, ""};
            snprintf(v->label, sizeof v->label, "%s/mse", lb_format_name(f));
        }
    }
    return 0;
}

int bench_formats(int argc, char **argv)
{
    study s = {.rows = 256, .cols = 4096, .seed = 1};
    const char *out = NULL;
    bool json = false;
    int64_t seed = 1;
    const cli_optdef defs[] = {CLI_O_FLAG("--json", &json), CLI_O_FLAG("--quick", &s.quick), CLI_O_PATH("--out", &out),
                               CLI_O_INT("--seed", &seed, 0, INT64_C(1) << 40), {0}};
    int prc = cli_parse(CMD, argc, argv, defs, NULL, 0, NULL);
    if (prc < 0) return help();
    if (prc) return prc;
    s.seed = (uint64_t)seed;
    if (s.quick) s.rows = 32;
    snprintf(s.command, sizeof s.command, "lowbit bench formats%s --seed %llu", s.quick ? " --quick" : "",
             (unsigned long long)s.seed);
    fprintf(stderr, "lowbit %s: seed %llu, synthetic %lld x %lld, Hadamard sign seed %d\n", CMD,
            (unsigned long long)s.seed, (long long)s.rows, (long long)s.cols, SIGN_SEED);
    double t0 = lb_time_now();
    lb_pool *pool = NULL;
    int rc = build_sets(&s);
    if (!rc) rc = build_vars(&s);
    if (!rc) {
        s.cells = calloc((size_t)s.n_sets * s.n_vars * N_ROTS, sizeof *s.cells);
        lb_status st = s.cells ? lb_pool_create(0, &pool) : LB_ERR_NOMEM;
        rc = st ? cli_fail_status(CMD, st) : 0;
        for (size_t i = 0; !rc && i < (size_t)s.n_sets * s.n_vars * N_ROTS; i++) s.cells[i].qsnr = NAN;
    }
    if (!rc) rc = measure(&s, pool);
    s.seconds = lb_time_now() - t0;
    if (!rc) {
        finding fs[4] = {0};
        claim_int8(&s, &fs[0]);
        claim_nv(&s, &fs[1]);
        claim_hadamard(&s, &fs[2]);
        claim_crossover(&s, &fs[3], 0);
        rc = write_outputs(&s, fs, 4, out, json);
    }
    lb_pool_free(pool);
    for (int d = 0; d < s.n_sets; d++) free(s.sets[d].own), free(s.sets[d].mats);
    free(s.sets);
    free(s.vars);
    free(s.cells);
    return rc;
}
