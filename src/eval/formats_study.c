/* formats_study.c: the formats study (docs/formats-study.md). The QSNR
 *   QSNR = 10 log10(sum x^2 / sum (x - x')^2),  x' = R^T deq(q(R x))
 * of every registry format (floor scale rule; MX formats also with the MSE
 * rule) on synthetic data sets and on the linear weights of real models,
 * with R = I or a block-diagonal randomized Hadamard of block 16, 32, 128.
 * This file builds the data sets, measures the cells (one pool task per
 * format variant, each summing in a fixed order, so the numbers never depend
 * on the thread count) and holds the public calls; the findings and the
 * reports are in formats_study_findings.c and formats_study_report.c. */
#include "eval/formats_study.h"
#include <sys/stat.h>

const int64_t lb__fs_rots[LB_FS_N_ROTS] = {0, 16, 32, 128};
static const double CRESTS[] = {2, 5, 10, 20, 50, 100};
#define N_CRESTS ((int)(sizeof CRESTS / sizeof *CRESTS))
enum { N_OUTLIER_COLS = 2 };
#define OUTLIER_PEAK 3.5 /* largest |g| in each outlier column: makes every target crest reachable */

/* ---- data sets */

/* The crest over all values and the mean crest of the 32-blocks of rows. */
static void set_stats(lb_fs_set *d)
{
    double sx = 0, mx = 0, bc = 0;
    int64_t nb = 0;
    for (int k = 0; k < d->n_mats; k++) {
        const lb_fs_mat *m = &d->mats[k];
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

/* Give d one owned rows x cols matrix (values to be filled by the caller). */
static lb_status one_matrix(lb_fs_set *d, int64_t rows, int64_t cols)
{
    d->own = lb__alloc((size_t)(rows * cols) * sizeof *d->own);
    d->mats = lb__alloc(sizeof *d->mats);
    if (!d->own || !d->mats) return LB_ERR_NOMEM;
    d->mats[0] = (lb_fs_mat){d->own, rows, cols};
    d->n_mats = 1;
    d->values = rows * cols;
    return LB_OK;
}

/* One value of distribution kind 0 Gaussian, 1 Laplace (unit variance),
 * 2 Student-t with nu = 3. */
static double draw(lb_rng *g, int kind)
{
    if (kind == 0) return lb_rng_normal(g);
    if (kind == 1) {
        double u = lb_rng_uniform(g) - 0.5;
        return (u < 0 ? 1 : -1) * log(1 - 2 * fabs(u)) / sqrt(2.0);
    }
    double z = lb_rng_normal(g), a = lb_rng_normal(g), b = lb_rng_normal(g), c = lb_rng_normal(g);
    return z / sqrt((a * a + b * b + c * c) / 3);
}

/* A rows x cols set of distribution `kind` (see draw), value i drawn i-th. */
static lb_status make_dist(lb_fs_set *d, int kind, const lb_formats_study *s, uint64_t seed)
{
    static const char *names[] = {"gauss", "laplace", "t3"};
    static const char *descs[] = {"Gaussian N(0, 1)", "Laplace, unit variance: -sign(u) ln(1 - 2|u|) / sqrt(2)",
                                  "Student-t, nu = 3: z / sqrt(chi2_3 / 3)"};
    snprintf(d->name, sizeof d->name, "%s", names[kind]);
    snprintf(d->desc, sizeof d->desc, "%s", descs[kind]);
    lb_status st = one_matrix(d, s->rows, s->cols);
    if (st) return st;
    lb_rng g;
    lb_rng_seed(&g, seed);
    for (int64_t i = 0; i < d->values; i++) d->own[i] = (float)draw(&g, kind);
    set_stats(d);
    return LB_OK;
}

/* N_OUTLIER_COLS distinct seeded column indices. */
static void pick_columns(lb_rng *g, int64_t cols, int64_t *oc)
{
    for (int k = 0; k < N_OUTLIER_COLS; k++) {
        bool dup;
        do {
            oc[k] = (int64_t)(lb_rng_u64(g) % (uint64_t)cols);
            dup = false;
            for (int j = 0; j < k; j++) dup |= oc[j] == oc[k];
        } while (dup);
    }
}

/* Uniform base in [-sqrt 3, sqrt 3], then standard normal outlier columns
 * whose largest |g| is set to OUTLIER_PEAK. */
static void fill_outlier_base(float *x, int64_t rows, int64_t cols, const int64_t *oc, lb_rng *g)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) x[r * cols + c] = (float)((2 * lb_rng_uniform(g) - 1) * sqrt(3.0));
    for (int k = 0; k < N_OUTLIER_COLS; k++) {
        int64_t peak = 0;
        double pm = 0;
        for (int64_t r = 0; r < rows; r++) {
            double v = lb_rng_normal(g);
            x[r * cols + oc[k]] = (float)v;
            if (fabs(v) > pm) pm = fabs(v), peak = r;
        }
        float *p = &x[peak * cols + oc[k]];
        *p = *p < 0 ? (float)-OUTLIER_PEAK : (float)OUTLIER_PEAK;
    }
}

/* Outlier channels at a target crest factor C = max|x| / rms. Every value is
 * uniform in [-sqrt 3, sqrt 3] (rms 1, crest 1.73) except N_OUTLIER_COLS
 * seeded columns holding s * g, g standard normal with the largest |g| of
 * each column set to OUTLIER_PEAK. crest(s) = max(m0, s P) / sqrt((S0 + s^2
 * S1) / N) rises with s once s P > m0, so s is found by bisection. */
static lb_status make_outlier(lb_fs_set *d, double target, const lb_formats_study *s, uint64_t seed)
{
    snprintf(d->name, sizeof d->name, "c%g", target);
    snprintf(d->desc, sizeof d->desc, "uniform base, %d outlier columns scaled to crest %g", N_OUTLIER_COLS, target);
    d->target = target;
    lb_status st = one_matrix(d, s->rows, s->cols);
    if (st) return st;
    lb_rng g;
    lb_rng_seed(&g, seed);
    int64_t oc[N_OUTLIER_COLS];
    pick_columns(&g, s->cols, oc);
    fill_outlier_base(d->own, s->rows, s->cols, oc, &g);
    double s0 = 0, s1 = 0, m0 = 0;
    for (int64_t r = 0; r < s->rows; r++)
        for (int64_t c = 0; c < s->cols; c++) {
            double v = d->own[r * s->cols + c];
            bool out = false;
            for (int k = 0; k < N_OUTLIER_COLS; k++) out |= c == oc[k];
            if (out) s1 += v * v;
            else s0 += v * v, m0 = fabs(v) > m0 ? fabs(v) : m0;
        }
    double n = (double)d->values, lo = m0 / OUTLIER_PEAK, hi = 1e6;
    if (OUTLIER_PEAK / sqrt(s1 / n) <= target)
        return lb__err(LB_ERR_ARG, "formats study: crest %g is out of reach at %lld x %lld (more rows reach it)",
                       target, (long long)s->rows, (long long)s->cols);
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi), c = fmax(m0, mid * OUTLIER_PEAK) / sqrt((s0 + mid * mid * s1) / n);
        if (c < target) lo = mid; else hi = mid;
    }
    for (int64_t r = 0; r < s->rows; r++)
        for (int k = 0; k < N_OUTLIER_COLS; k++) d->own[r * s->cols + oc[k]] *= (float)lo;
    set_stats(d);
    snprintf(d->desc, sizeof d->desc, "uniform base; columns %lld and %lld are %.4g * N(0,1) (peak %.1f): crest %g",
             (long long)oc[0], (long long)oc[1], lo, OUTLIER_PEAK, target);
    return LB_OK;
}

/* Names (capacity nl * 7 + 1) of the linear weights of m: q, k, v, o, gate,
 * up, down of every layer, and lm_head when it is not the tied embedding. */
static int linear_names(const lb_model_info *info, char (*names)[96])
{
    static const char *const lin[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    int n = 0;
    for (int l = 0; l < (int)info->n_layers; l++)
        for (int k = 0; k < 7; k++) snprintf(names[n++], sizeof *names, "model.layers.%d.%s.weight", l, lin[k]);
    if (!info->tied_embeddings) snprintf(names[n++], sizeof *names, "lm_head.weight");
    return n;
}

/* d <- the n named weights of m converted to float32, one matrix each. */
static lb_status load_weights(lb_fs_set *d, const lb_model *m, char (*names)[96], int n)
{
    int64_t (*shape)[2] = lb__alloc((size_t)(n ? n : 1) * sizeof *shape), total = 0;
    lb_status st = shape ? LB_OK : LB_ERR_NOMEM;
    for (int k = 0; k < n && !st; k++) {
        st = lb_model_weight_f32(m, names[k], NULL, &shape[k][0], &shape[k][1]);
        total += st ? 0 : shape[k][0] * shape[k][1];
    }
    if (!st) {
        d->own = lb__alloc((size_t)total * sizeof *d->own);
        d->mats = lb__alloc((size_t)(n ? n : 1) * sizeof *d->mats);
        if (!d->own || !d->mats) st = LB_ERR_NOMEM;
    }
    for (int64_t k = 0, off = 0; k < n && !st; k++) {
        st = lb_model_weight_f32(m, names[k], d->own + off, NULL, NULL);
        d->mats[k] = (lb_fs_mat){d->own + off, shape[k][0], shape[k][1]};
        off += shape[k][0] * shape[k][1];
    }
    d->n_mats = st ? 0 : n;
    d->values = total;
    LB_FREE(shape);
    return st;
}

/* The linear weights of the model dir/name[/file]; a missing model makes a
 * skipped set (with a warning through the log callback), not an error. */
static lb_status make_model(lb_fs_set *d, const char *dir, const char *name, const char *file)
{
    char path[1024];
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(path, sizeof path, "%s/%s%s%s", dir, name, file ? "/" : "", file ? file : "");
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(d->skipped, sizeof d->skipped, "SKIP: %s not found (set LOWBIT_MODELS)", path);
        lb__log(LB_LOG_WARN, "%s", d->skipped);
        return LB_OK;
    }
    lb_model *m = NULL;
    lb_status st = lb_model_load(path, &m);
    if (st) return st;
    lb_model_info info;
    lb_model_get_info(m, &info);
    char (*names)[96] = lb__alloc((size_t)(info.n_layers * 7 + 1) * sizeof *names);
    int n = names ? linear_names(&info, names) : 0;
    st = names ? load_weights(d, m, names, n) : LB_ERR_NOMEM;
    snprintf(d->desc, sizeof d->desc, "%s: %d linear weights (%s), dim %lld, hidden %lld", path, n,
             info.tied_embeddings ? "lm_head tied to the embedding, not counted" : "with lm_head",
             (long long)info.dim, (long long)info.hidden_dim);
    LB_FREE(names);
    lb_model_free(m);
    if (!st) set_stats(d);
    return st;
}

/* Every data set: 3 distributions, the outlier sets, then the models. */
static lb_status build_sets(lb_formats_study *s, const char *models_dir)
{
    s->sets = lb__zalloc((size_t)(3 + N_CRESTS + 2) * sizeof *s->sets);
    if (!s->sets) return LB_ERR_NOMEM;
    lb_status st = LB_OK;
    for (int k = 0; k < 3 && !st; k++) st = make_dist(&s->sets[s->n_sets++], k, s, s->seed * 1000 + (uint64_t)k);
    for (int k = 0; k < N_CRESTS && !st; k++)
        if (!s->quick || CRESTS[k] == 2 || CRESTS[k] == 10 || CRESTS[k] == 100)
            st = make_outlier(&s->sets[s->n_sets++], CRESTS[k], s, s->seed * 1000 + 10 + (uint64_t)k);
    if (!st && models_dir) st = make_model(&s->sets[s->n_sets++], models_dir, "stories260K", "stories260K.bin");
    if (!st && models_dir && !s->quick) st = make_model(&s->sets[s->n_sets++], models_dir, "tinystories-656k", NULL);
    return st;
}

/* --quick measures these only (the claims' formats and one of each family). */
static const char *QUICK[] = {"mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4", "mxint8", "nvfp4",
                              "nvint4", "int2_g32", "int3_g32", "int4_g32", "int4_g128", "int8_g32", "int4_ch",
                              "int8_ch", "nf4", "ternary"};

/* True when the format named `name` is one --quick measures. */
static bool in_quick(const char *name)
{
    for (size_t i = 0; i < sizeof QUICK / sizeof *QUICK; i++)
        if (!strcmp(QUICK[i], name)) return true;
    return false;
}

/* The format variants in registry order; MX formats also with the MSE rule
 * (labelled "<name>/mse") unless quick. */
static lb_status build_vars(lb_formats_study *s)
{
    int nf = lb_format_count();
    s->vars = lb__zalloc((size_t)nf * 2 * sizeof *s->vars);
    if (!s->vars) return LB_ERR_NOMEM;
    for (int i = 0; i < nf; i++) {
        const lb_format *f = lb_format_at(i);
        if (s->quick && !in_quick(lb_format_name(f))) continue;
        lb_fs_variant *v = &s->vars[s->n_vars++];
        *v = (lb_fs_variant){f, LB_SCALE_FLOOR, ""};
        snprintf(v->label, sizeof v->label, "%s", lb_format_name(f));
        if (!strncmp(lb_format_name(f), "mx", 2) && !s->quick) {
            v = &s->vars[s->n_vars++];
            *v = (lb_fs_variant){f, LB_SCALE_MSE, ""};
            snprintf(v->label, sizeof v->label, "%s/mse", lb_format_name(f));
        }
    }
    return LB_OK;
}

/* ---- measurement */

/* The rotated round trip (lowbit.h); x is left untouched, y receives the result. */
lb_status lb_format_roundtrip(const lb_format *f, const lb_quant_opts *q, const float *x, int64_t rows, int64_t cols,
                              int64_t block, const int8_t *signs, float *y)
{
    LB_ARG(f, "lb_format_roundtrip: f is NULL");
    LB_ARG(x || !rows, "lb_format_roundtrip: x is NULL");
    LB_ARG(y || !rows, "lb_format_roundtrip: y is NULL");
    size_t n = (size_t)(rows * cols);
    float *xr = block ? lb__alloc(n * sizeof *xr) : NULL;
    uint8_t *p = lb__alloc(lb_format_row_bytes(f, cols) * (size_t)rows + 1);
    lb_status s = LB_ERR_NOMEM;
    float g = 1.0f;
    if (p && (xr || !block)) {
        if (block) memcpy(xr, x, n * sizeof *xr);
        s = block ? lb_hadamard_rows(xr, rows, cols, block, signs, 0) : LB_OK;
        if (!s) s = lb_format_quantize(f, q, block ? xr : x, rows, cols, p, &g);
        if (!s) s = lb_format_dequantize(f, p, g, rows, cols, y);
        if (!s && block) s = lb_hadamard_rows(y, rows, cols, block, signs, 1);
    }
    LB_FREE(p);
    LB_FREE(xr);
    return s;
}

/* One (data set, rotation) shared by the pool tasks. */
typedef struct job {
    const lb_formats_study *s;
    const lb_fs_set *d;
    int di, ri;
    int8_t **signs;      /* per matrix, or NULL */
    lb_status status;    /* first failure (written by the failing task only) */
} job;

/* Pool task: the cells of variants [begin, end) for one (set, rotation). A
 * variant sums over every matrix both blocks divide, in matrix order. */
static void run_vars(void *ctx, int64_t begin, int64_t end, int thread)
{
    job *j = ctx;
    const lb_fs_set *d = j->d;
    int64_t hb = lb__fs_rots[j->ri];
    for (int64_t v = begin; v < end; v++) {
        const lb_fs_variant *va = &j->s->vars[v];
        lb_quant_opts q = {va->rule};
        int64_t blk = lb_format_block(va->f), incl = 0;
        double sx = 0, se = 0;
        for (int k = 0; k < d->n_mats; k++) {
            const lb_fs_mat *m = &d->mats[k];
            if ((blk && m->cols % blk) || (hb && m->cols % hb)) continue;
            int64_t n = m->rows * m->cols;
            float *y = lb__alloc((size_t)n * sizeof *y);
            lb_status st = y ? lb_format_roundtrip(va->f, &q, m->x, m->rows, m->cols, hb, j->signs[k], y)
                             : LB_ERR_NOMEM;
            if (st) { j->status = st; LB_FREE(y); return; }
            for (int64_t i = 0; i < n; i++) {
                double e = (double)y[i] - m->x[i];
                se += e * e;
                sx += (double)m->x[i] * m->x[i];
            }
            incl += n;
            LB_FREE(y);
        }
        lb_fs_cell *c = lb__fs_at(j->s, j->di, (int)v, j->ri);
        c->coverage = (double)incl / (double)d->values;
        c->qsnr = !incl ? NAN : se > 0 ? 10 * log10(sx / se) : INFINITY;
    }
}

/* The cells of set di at rotation ri (signs of LB_FORMATS_STUDY_SIGN_SEED
 * for each matrix the block divides). */
static lb_status measure_one(lb_formats_study *s, lb_pool *pool, int di, int ri)
{
    const lb_fs_set *d = &s->sets[di];
    int8_t **signs = lb__zalloc((size_t)(d->n_mats ? d->n_mats : 1) * sizeof *signs);
    if (!signs) return LB_ERR_NOMEM;
    lb_status st = LB_OK;
    for (int k = 0; k < d->n_mats && lb__fs_rots[ri] && !st; k++) {
        if (d->mats[k].cols % lb__fs_rots[ri]) continue;
        signs[k] = lb__alloc((size_t)d->mats[k].cols);
        st = signs[k] ? lb_hadamard_signs(LB_FORMATS_STUDY_SIGN_SEED, d->mats[k].cols, signs[k]) : LB_ERR_NOMEM;
    }
    job j = {s, d, di, ri, signs, LB_OK};
    if (!st) lb_pool_for(pool, s->n_vars, 1, run_vars, &j);
    for (int k = 0; k < d->n_mats; k++) LB_FREE(signs[k]);
    LB_FREE(signs);
    return st ? st : j.status;
}

/* Every (set, rotation), reporting progress before each. */
static lb_status measure(lb_formats_study *s, lb_pool *pool, const lb_formats_study_opts *o)
{
    int64_t done = 0, total = (int64_t)s->n_sets * LB_FS_N_ROTS;
    for (int di = 0; di < s->n_sets; di++)
        for (int ri = 0; ri < LB_FS_N_ROTS; ri++, done++) {
            if (o->progress) o->progress(done, total, s->sets[di].name, o->progress_user);
            if (s->sets[di].skipped[0]) continue;
            lb_status st = measure_one(s, pool, di, ri);
            if (st) return st;
        }
    return LB_OK;
}

/* ---- public calls */

/* Copy the options into s, with their defaults; LB_ERR_ARG for a bad size. */
static lb_status setup(lb_formats_study *s, const lb_formats_study_opts *o)
{
    s->quick = o->quick != 0;
    s->rows = o->rows > 0 ? o->rows : s->quick ? 32 : 256;
    s->cols = o->cols > 0 ? o->cols : 4096;
    s->seed = o->seed;
    snprintf(s->command, sizeof s->command, "%s", o->command ? o->command : "lb_formats_study_run");
    if (s->cols < 32 || s->rows > (INT64_C(1) << 20) || s->cols > (INT64_C(1) << 20) ||
        s->rows * s->cols > (INT64_C(1) << 28))
        return lb__err(LB_ERR_ARG, "formats study: %lld x %lld synthetic values: need cols >= 32, rows and cols "
                       "<= 2^20 and at most 2^28 values", (long long)s->rows, (long long)s->cols);
    return LB_OK;
}

/* Build, measure, then judge the findings; on failure nothing is returned. */
lb_status lb_formats_study_run(const lb_formats_study_opts *opts, lb_formats_study **out)
{
    static const lb_formats_study_opts none = {0};
    const lb_formats_study_opts *o = opts ? opts : &none;
    LB_ARG(out, "lb_formats_study_run: out is NULL");
    *out = NULL;
    double t0 = lb_time_now();
    lb_formats_study *s = lb__zalloc(sizeof *s);
    if (!s) return LB_ERR_NOMEM;
    lb_pool *pool = NULL;
    lb_status st = setup(s, o);
    if (!st) st = build_sets(s, o->models_dir);
    if (!st) st = build_vars(s);
    if (!st) {
        size_t nc = (size_t)s->n_sets * s->n_vars * LB_FS_N_ROTS;
        s->cells = lb__alloc(nc * sizeof *s->cells);
        st = s->cells ? lb_pool_create(o->n_threads, &pool) : LB_ERR_NOMEM;
        for (size_t i = 0; !st && i < nc; i++) s->cells[i] = (lb_fs_cell){NAN, 0};
    }
    if (!st) st = measure(s, pool, o);
    lb_pool_free(pool);
    s->seconds = lb_time_now() - t0;
    if (st) { lb_formats_study_free(s); return st; }
    lb__fs_findings(s);
    *out = s;
    return LB_OK;
}

/* Frees the data sets, variants and cells; NULL is a no-op. */
void lb_formats_study_free(lb_formats_study *s)
{
    if (!s) return;
    for (int d = 0; d < s->n_sets; d++) LB_FREE(s->sets[d].own), LB_FREE(s->sets[d].mats);
    LB_FREE(s->sets);
    LB_FREE(s->vars);
    LB_FREE(s->cells);
    LB_FREE(s);
}

/* Index of the variant labelled `label`, -1 when absent. */
static int var_index(const lb_formats_study *s, const char *label)
{
    for (int v = 0; v < s->n_vars; v++)
        if (!strcmp(s->vars[v].label, label)) return v;
    return -1;
}

/* See formats_study.h. */
double lb__fs_qsnr(const lb_formats_study *s, int d, const char *label, int r)
{
    int v = var_index(s, label);
    return v < 0 ? NAN : lb__fs_at(s, d, v, r)->qsnr;
}

/* Look up one cell by set name, variant label and rotation block. */
lb_status lb_formats_study_qsnr(const lb_formats_study *s, const char *set, const char *format, int64_t hadamard,
                                double *qsnr_db, double *coverage)
{
    if (qsnr_db) *qsnr_db = NAN;
    if (coverage) *coverage = 0;
    LB_ARG(s, "lb_formats_study_qsnr: s is NULL");
    LB_ARG(set, "lb_formats_study_qsnr: set is NULL");
    LB_ARG(format, "lb_formats_study_qsnr: format is NULL");
    int d = 0, r = 0, v = var_index(s, format);
    while (d < s->n_sets && strcmp(s->sets[d].name, set)) d++;
    while (r < LB_FS_N_ROTS && lb__fs_rots[r] != hadamard) r++;
    if (d == s->n_sets || v < 0 || r == LB_FS_N_ROTS)
        return lb__err(LB_ERR_NOTFOUND, "formats study: no cell for data set '%s', format '%s', Hadamard %lld", set,
                       format, (long long)hadamard);
    const lb_fs_cell *c = lb__fs_at(s, d, v, r);
    if (qsnr_db) *qsnr_db = c->qsnr;
    if (coverage) *coverage = c->coverage;
    return LB_OK;
}

/* Render one report into a malloc'd string the caller frees. */
lb_status lb_formats_study_report(const lb_formats_study *s, lb_report_kind kind, char **text, size_t *len)
{
    if (len) *len = 0;
    LB_ARG(text, "lb_formats_study_report: text is NULL");
    *text = NULL;
    LB_ARG(s, "lb_formats_study_report: s is NULL");
    if (kind < LB_REPORT_MARKDOWN || kind > LB_REPORT_SVG)
        return lb__err(LB_ERR_ARG, "formats study: unknown report kind %d", (int)kind);
    lb_buf b = {0};
    if (kind == LB_REPORT_MARKDOWN) lb__fs_markdown(&b, s);
    else if (kind == LB_REPORT_JSON) lb__fs_json(&b, s);
    else lb__fs_svg(&b, s);
    if (b.failed || !b.data) {
        lb__buf_free(&b);
        return lb__err(LB_ERR_NOMEM, "formats study: out of memory for the report");
    }
    *text = b.data;
    if (len) *len = b.len;
    return LB_OK;
}
