/* test_evict.c: KV-cache eviction (src/kv/score.c, evict.c). Every scorer,
 * the top-k rule (ties, NaN, ratios), AdaKV budgets and the PagedEviction
 * page choice against the independent NumPy statement tests/ref/evict_ref.py
 * on random heads (contiguous and gapped positions, both RoPE layouts);
 * properties that need no reference (StreamingLLM keeps sinks + recent,
 * random is seeded, bad input refused). */
#include "harness.h"
#include "kv/evict.h"
#include "kv/kv.h"
#include "model/model.h"
#include <unistd.h>

static lb_rng rng;

static const lb__evict_method ref_order[] = {LB_EVICT_KNORM, LB_EVICT_KEYDIFF, LB_EVICT_PAGED, LB_EVICT_STREAMING,
                                             LB_EVICT_SNAPKV, LB_EVICT_TOVA, LB_EVICT_OBSERVED, LB_EVICT_EXPECTED};
#define NREF 8
#define NRATIO 7
#define NH 3
static const double ratios[NRATIO] = {0, 0.25, 0.5, 0.75, 0.9, 0.3, 0.7};

typedef struct {
    int64_t T, hd, group, nq;
    float *k, *v, *q, *sel, *hs[NH];
    int64_t *pos, *qpos, Th[NH], keep[NH];
    int32_t *pos32, *qpos32;
    double *inv_freq;
    lb__evict_head h;
    lb__evict_params p;
} tcase;

static float rnd(void) { return (float)lb_rng_normal(&rng); }

/* A head of T tokens (positions 0..T-1, or gapped: an already compacted
 * cache) whose last nq tokens logged their queries. */
static void make_case(tcase *c, int64_t T, int64_t hd, int64_t group, int64_t nq, bool gaps, bool inter)
{
    memset(c, 0, sizeof *c);
    c->T = T; c->hd = hd; c->group = group; c->nq = nq;
    c->k = malloc(sizeof(float) * (size_t)(T * hd));
    c->v = malloc(sizeof(float) * (size_t)(T * hd));
    c->q = malloc(sizeof(float) * (size_t)(nq * group * hd));
    c->sel = malloc(sizeof(float) * (size_t)T);
    c->pos = malloc(sizeof(int64_t) * (size_t)T);
    c->qpos = malloc(sizeof(int64_t) * (size_t)nq);
    c->pos32 = malloc(sizeof(int32_t) * (size_t)T);
    c->qpos32 = malloc(sizeof(int32_t) * (size_t)nq);
    c->inv_freq = malloc(sizeof(double) * (size_t)(hd / 2));
    /* keys with a few strong channels and a bias, as real keys have */
    for (int64_t j = 0, p = 0; j < T; j++) {
        c->pos[j] = p;
        p += gaps && j >= 4 && j < T - nq ? 1 + (int64_t)(lb_rng_u64(&rng) % 3) : 1;
        for (int64_t e = 0; e < hd; e++) {
            c->k[j * hd + e] = rnd() * (e % 5 == 0 ? 3.0f : 1.0f) + (e == 1 ? 2.0f : 0.0f);
            c->v[j * hd + e] = rnd() * (0.5f + (float)(j % 7) / 7.0f);
        }
    }
    for (int64_t i = 0; i < nq * group * hd; i++) c->q[i] = rnd() + (i % hd == 1 ? 1.5f : 0.0f);
    for (int64_t i = 0; i < nq; i++) c->qpos[i] = c->pos[T - nq + i];
    for (int64_t j = 0; j < T; j++) c->pos32[j] = (int32_t)c->pos[j];
    for (int64_t i = 0; i < nq; i++) c->qpos32[i] = (int32_t)c->qpos[i];
    for (int64_t i = 0; i < hd / 2; i++) c->inv_freq[i] = pow(10000.0, -2.0 * (double)i / (double)hd);
    /* selection scores with ties, one NaN, one +inf */
    for (int64_t j = 0; j < T; j++) c->sel[j] = (float)(lb_rng_u64(&rng) % 9) / 4.0f;
    c->sel[T / 3] = NAN;
    c->sel[T / 2] = INFINITY;
    for (int h = 0; h < NH; h++) {
        c->Th[h] = T + (h == 1 ? -5 : h == 2 ? 3 : 0);
        c->keep[h] = lb__evict_nkeep(c->Th[h], 0.5 + 0.1 * h);
        c->hs[h] = malloc(sizeof(float) * (size_t)c->Th[h]);
        /* head 2 scores below the others: it keeps its floor only */
        for (int64_t j = 0; j < c->Th[h]; j++) c->hs[h][j] = (float)(lb_rng_u64(&rng) % 13) / 3.0f - (h == 2 ? 10.0f : 0.0f);
    }
    c->h = (lb__evict_head){T, hd, c->k, c->v, c->pos32, nq, group, group * hd, c->q, c->qpos32, c->inv_freq, inter,
                            c->pos[T - 1] + 1, NULL};
    lb__evict_defaults(&c->p, LB_EVICT_KNORM);
    c->p.window = 16; c->p.page = 8; c->p.n_future = 37; c->p.qbuf = nq - 3; c->p.eps = 0.01; c->p.ada_alpha = 0.2;
}

static void free_case(tcase *c)
{
    free(c->k); free(c->v); free(c->q); free(c->sel); free(c->pos); free(c->qpos); free(c->pos32); free(c->qpos32); free(c->inv_freq);
    for (int h = 0; h < NH; h++) free(c->hs[h]);
}


static void write_case(FILE *f, const tcase *c)
{
    const lb__evict_params *p = &c->p;
    int64_t hdr[16] = {c->T, c->hd, c->group, c->nq, c->h.rope_interleaved, c->h.next_pos, p->n_sink, p->window,
                       p->kernel, p->page, p->n_future, p->qbuf, p->cov, p->vnorm, NRATIO, NH};
    double d2[2] = {p->eps, p->ada_alpha};
    fwrite(hdr, 8, 16, f);
    fwrite(d2, 8, 2, f);
    fwrite(c->k, 4, (size_t)(c->T * c->hd), f);
    fwrite(c->v, 4, (size_t)(c->T * c->hd), f);
    fwrite(c->pos, 8, (size_t)c->T, f);
    fwrite(c->q, 4, (size_t)(c->nq * c->group * c->hd), f);
    fwrite(c->qpos, 8, (size_t)c->nq, f);
    fwrite(c->inv_freq, 8, (size_t)(c->hd / 2), f);
    fwrite(c->sel, 4, (size_t)c->T, f);
    fwrite(ratios, 8, NRATIO, f);
    fwrite(c->Th, 8, NH, f);
    fwrite(c->keep, 8, NH, f);
    for (int h = 0; h < NH; h++) fwrite(c->hs[h], 4, (size_t)c->Th[h], f);
}

/* Run the reference on c; returns its output (malloc'd) or NULL. */
static uint8_t *run_ref(const char *py, const tcase *c, size_t *n)
{
    char in[] = "/tmp/lb_evict_in.XXXXXX", out[] = "/tmp/lb_evict_out.XXXXXX", cmd[512];
    int fi = mkstemp(in), fo = mkstemp(out);
    if (fi < 0 || fo < 0) return NULL;
    close(fo);
    FILE *f = fdopen(fi, "wb");
    write_case(f, c);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s tests/ref/evict_ref.py %s %s", py, in, out);
    int rc = system(cmd);
    uint8_t *buf = NULL;
    *n = 0;
    if (rc == 0) {
        f = fopen(out, "rb");
        buf = malloc(1 << 20);
        *n = f ? fread(buf, 1, 1 << 20, f) : 0;
        if (f) fclose(f);
    }
    remove(in); remove(out);
    return buf;
}

static void check_scores(const tcase *c, const double *ref, const char *what)
{
    float *s = malloc(sizeof(float) * (size_t)c->T);
    for (int m = 0; m < NREF; m++, ref += c->T) {
        lb__evict_params p = c->p;
        p.method = ref_order[m];
        double *scr = malloc(sizeof(double) * (size_t)(lb__evict_scratch(&p, &c->h) + 1));
        CHECK(lb__evict_score(&p, &c->h, s, scr) == LB_OK, "%s %s: %s", what, lb__evict_method_name(p.method),
              lb_errmsg());
        free(scr);
        double mx = 0, worst = 0;
        for (int64_t j = 0; j < c->T; j++) if (isfinite(ref[j])) mx = fmax(mx, fabs(ref[j]));
        int64_t bad_inf = 0;
        for (int64_t j = 0; j < c->T; j++) {
            if (isinf(ref[j]) || isinf(s[j])) { bad_inf += isinf(ref[j]) != isinf(s[j]); continue; }
            worst = fmax(worst, fabs(s[j] - ref[j]) / fmax(mx, 1e-30));
        }
        CHECK(bad_inf == 0 && worst < 2e-6, "%s %s: worst rel error %.3g, %lld protected tokens differ", what,
              lb__evict_method_name(p.method), worst, (long long)bad_inf);
    }
    free(s);
}

static const int64_t *check_selection(const tcase *c, const int64_t *ref, const char *what)
{
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(c->T + 8));
    void *scr = malloc((size_t)lb__evict_rank_bytes(c->T + 8));
    for (int r = 0; r < NRATIO; r++) {
        int64_t n = lb__evict_nkeep(c->T, ratios[r]);
        CHECK(n == ref[0], "%s ratio %g: keeps %lld, reference %lld", what, ratios[r], (long long)n, (long long)ref[0]);
        lb__evict_topk(c->sel, c->T, n, idx, scr);
        int64_t diff = 0;
        for (int64_t i = 0; i < n && n == ref[0]; i++) diff += idx[i] != ref[1 + i];
        CHECK(diff == 0, "%s ratio %g: %lld kept indices differ", what, ratios[r], (long long)diff);
        ref += 1 + ref[0];
    }
    /* AdaKV */
    int64_t sum = 0, nk[NH], *ix[NH];
    for (int h = 0; h < NH; h++) { sum += c->Th[h]; ix[h] = malloc(sizeof(int64_t) * (size_t)c->Th[h]); }
    void *scr2 = malloc((size_t)lb__evict_rank_bytes(sum));
    lb__evict_adakv(NH, c->Th, (const float *const *)c->hs, c->keep, c->p.ada_alpha, nk, ix, scr2);
    int64_t tot = 0, want = 0;
    for (int h = 0; h < NH; h++) {
        int64_t diff = nk[h] != ref[0];
        for (int64_t i = 0; i < nk[h] && !diff; i++) diff += ix[h][i] != ref[1 + i];
        CHECK(!diff, "%s adakv head %d: keeps %lld (reference %lld) or other tokens", what, h, (long long)nk[h],
              (long long)ref[0]);
        CHECK(h == 2 ? nk[h] == (int64_t)(0.2 * (double)c->keep[h]) : nk[h] >= (int64_t)(0.2 * (double)c->keep[h]),
              "%s adakv head %d keeps %lld, floor %lld", what, h, (long long)nk[h], (long long)c->keep[h] / 5);
        tot += nk[h]; want += c->keep[h];
        ref += 1 + ref[0];
        free(ix[h]);
    }
    CHECK(tot == want, "%s adakv keeps %lld in all, budget %lld", what, (long long)tot, (long long)want);
    free(scr2); free(scr); free(idx);
    return ref;
}

static void test_vs_numpy(void)
{
    const char *py = test_find_python();
    if (!py) SKIP("python3 with numpy not found (set LOWBIT_PYTHON); NumPy reference comparison not run");
    struct { int64_t T, hd, group, nq; bool gaps, inter; } cases[] = {
        {61, 8, 2, 61, false, false}, {90, 16, 4, 40, true, false}, {33, 8, 1, 33, false, true},
        {77, 16, 2, 20, true, true}, {24, 8, 3, 5, false, false}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tcase c;
        char what[64];
        snprintf(what, sizeof what, "case %zu (T %lld)", i, (long long)cases[i].T);
        make_case(&c, cases[i].T, cases[i].hd, cases[i].group, cases[i].nq, cases[i].gaps, cases[i].inter);
        if (i == 2) c.p.cov = false;
        if (i == 3) c.p.vnorm = false, c.p.qbuf = 0;
        size_t n = 0;
        uint8_t *out = run_ref(py, &c, &n);
        CHECK(out && n >= sizeof(double) * (size_t)(NREF * c.T), "%s: reference failed (%zu bytes)", what, n);
        if (out && n >= sizeof(double) * (size_t)(NREF * c.T)) {
            check_scores(&c, (const double *)out, what);
            const int64_t *r = check_selection(&c, (const int64_t *)(out + sizeof(double) * (size_t)(NREF * c.T)), what);
            /* the page the decode rule drops, from the paged scores */
            float *s = malloc(sizeof(float) * (size_t)c.T);
            lb__evict_params p = c.p;
            p.method = LB_EVICT_PAGED;
            lb__evict_score(&p, &c.h, s, NULL);
            int64_t pick = lb__evict_paged_pick(s, c.T, p.page);
            CHECK(pick == r[0], "%s paged pick %lld, reference %lld", what, (long long)pick, (long long)r[0]);
            free(s);
        }
        free(out);
        free_case(&c);
    }
}

/* Properties stated without a reference. */
static void test_properties(void)
{
    tcase c;
    make_case(&c, 50, 8, 2, 50, false, false);
    float *s = malloc(sizeof(float) * 50), *s2 = malloc(sizeof(float) * 50);
    int64_t idx[50];
    void *scr = malloc((size_t)lb__evict_rank_bytes(50));
    c.p.method = LB_EVICT_STREAMING;
    REQUIRE(lb__evict_score(&c.p, &c.h, s, NULL) == LB_OK, "%s", lb_errmsg());
    lb__evict_topk(s, 50, 20, idx, scr);
    for (int64_t i = 0; i < 20; i++)
        CHECK(idx[i] == (i < 4 ? i : 50 - 16 + (i - 4)), "streaming keeps %lld at %lld", (long long)idx[i], (long long)i);
    /* a budget below SnapKV's window keeps the most recent window tokens */
    c.p.method = LB_EVICT_SNAPKV;
    c.p.window = 16;
    double *sk = malloc(sizeof(double) * (size_t)lb__evict_scratch(&c.p, &c.h));
    REQUIRE(lb__evict_score(&c.p, &c.h, s, sk) == LB_OK, "%s", lb_errmsg());
    free(sk);
    lb__evict_topk(s, 50, 5, idx, scr);
    for (int64_t i = 0; i < 5; i++) CHECK(idx[i] == 45 + i, "snapkv keeps %lld at %lld", (long long)idx[i], (long long)i);
    c.p.method = LB_EVICT_RANDOM;
    c.p.seed = 7;
    lb__evict_score(&c.p, &c.h, s, NULL);
    lb__evict_score(&c.p, &c.h, s2, NULL);
    CHECK(!memcmp(s, s2, sizeof(float) * 50), "random: same seed, other scores");
    c.p.seed = 8;
    lb__evict_score(&c.p, &c.h, s2, NULL);
    CHECK(memcmp(s, s2, sizeof(float) * 50), "random: other seed, same scores");
    /* the query-based scorers refuse an empty query log */
    c.h.nq = 0;
    lb__evict_method need[] = {LB_EVICT_SNAPKV, LB_EVICT_TOVA, LB_EVICT_OBSERVED, LB_EVICT_EXPECTED};
    for (int m = 0; m < 4; m++) {
        c.p.method = need[m];
        CHECK(lb__evict_score(&c.p, &c.h, s, NULL) == LB_ERR_ARG && strstr(lb_errmsg(), "queries"),
              "%s without queries: %s", lb__evict_method_name(need[m]), lb_errmsg());
    }
    /* Expected Attention with every query inside the sinks: (0 + eps) ||v|| */
    c.h.nq = 3;
    c.p.method = LB_EVICT_EXPECTED;
    c.p.qbuf = 0;
    for (int64_t i = 0; i < 3; i++) c.qpos32[i] = (int32_t)i;
    double *sc = malloc(sizeof(double) * (size_t)lb__evict_scratch(&c.p, &c.h));
    CHECK(lb__evict_score(&c.p, &c.h, s, sc) == LB_OK, "%s", lb_errmsg());
    for (int64_t j = 0; j < 50; j++) {
        double vn = 0;
        for (int64_t e = 0; e < 8; e++) vn += (double)c.v[j * 8 + e] * c.v[j * 8 + e];
        double want = j < 4 ? INFINITY : c.p.eps * sqrt(vn);
        CHECK(j < 4 ? isinf(s[j]) : fabs(s[j] - want) < 1e-6 * want, "expected without queries: token %lld %g, want %g",
              (long long)j, s[j], want);
    }
    /* int(T (1 - r)) as Python computes it */
    CHECK(lb__evict_nkeep(10, 0.3) == 7 && lb__evict_nkeep(3, 0.9) == 0 && lb__evict_nkeep(100, 0.9) == 9 &&
              lb__evict_nkeep(5, 0) == 5, "nkeep %lld %lld %lld", (long long)lb__evict_nkeep(10, 0.3),
          (long long)lb__evict_nkeep(3, 0.9), (long long)lb__evict_nkeep(100, 0.9));
    free(sc); free(s); free(s2); free(scr);
    free_case(&c);
}

/* ---- the policies inside a real cache (src/kv, kv.h) */

enum { CL = 2, CH = 4, CKV = 2, CD = 8, CT = 70, CCTX = 96 };

typedef struct {
    float k[CL][CT][CKV * CD], v[CL][CT][CKV * CD], qpost[CL][CT][CH * CD];
    int32_t pos[CT];
    double inv_freq[CD / 2];
} cache_data;

static void rope(float *x, int64_t p, const double *f)
{
    for (int i = 0; i < CD / 2; i++) {
        double a = (double)p * f[i], x0 = x[i], x1 = x[i + CD / 2];
        x[i] = (float)(x0 * cos(a) - x1 * sin(a));
        x[i + CD / 2] = (float)(x0 * sin(a) + x1 * cos(a));
    }
}

/* Fill a cache with CT tokens per layer (positions 0..CT-1) and their queries;
 * d keeps a copy. */
static lb_status fill_cache(const char *spec_text, cache_data *d, lb_kv **out)
{
    lb__kv_spec spec;
    lb_status st = lb__kv_parse(spec_text, "--kv", &spec);
    if (st) return st;
    for (int i = 0; i < CD / 2; i++) d->inv_freq[i] = pow(10000.0, -2.0 * i / CD);
    lb__kv_shape sh = {CL, CH, CKV, CD, CCTX, 16, 1, d->inv_freq, false};
    if ((st = lb__kv_create(&spec, &sh, "--kv", out))) return st;
    for (int t = 0; t < CT; t++) {
        d->pos[t] = t;
        for (int l = 0; l < CL; l++) {
            float qpre[CH * CD];
            for (int e = 0; e < CKV * CD; e++) {
                d->k[l][t][e] = rnd() + (e % CD == 1 ? 2.0f : 0.0f);
                d->v[l][t][e] = rnd();
            }
            for (int e = 0; e < CH * CD; e++) qpre[e] = d->qpost[l][t][e] = rnd() + (e % CD == 1 ? 1.0f : 0.0f);
            for (int h = 0; h < CH; h++) rope(d->qpost[l][t] + h * CD, t, d->inv_freq);
            lb__kv_append(*out, l, t, d->k[l][t], d->v[l][t]);
            if (lb__kv_wants_q(*out)) lb__kv_observe_q(*out, l, t, qpre, d->qpost[l][t]);
        }
    }
    return LB_OK;
}

/* The kept positions of head (l, kvh) as the pure functions choose them on
 * the test's own copy of the data. */
static int64_t expect_kept(float *sc, const lb__evict_params *p, const cache_data *d, int64_t l, int64_t kvh,
                           int64_t *idx)
{
    float k[CT * CD], v[CT * CD];
    for (int t = 0; t < CT; t++)
        for (int e = 0; e < CD; e++) {
            k[t * CD + e] = d->k[l][t][kvh * CD + e];
            v[t * CD + e] = d->v[l][t][kvh * CD + e];
        }
    lb__evict_head h = {CT, CD, k, v, d->pos, CT, CH / CKV, CH * CD, &d->qpost[l][0][kvh * (CH / CKV) * CD], d->pos,
                        d->inv_freq, false, CT, NULL};   /* pre-RoPE queries undone from qpost here */
    double *scr = malloc(sizeof(double) * (size_t)(lb__evict_scratch(p, &h) + 1));
    void *rk = malloc((size_t)lb__evict_rank_bytes(CT));
    lb__evict_params hp = *p;
    hp.seed = p->seed ^ (uint64_t)(l * 1000003 + kvh) * 0x9E3779B97F4A7C15ull;
    lb__evict_score(&hp, &h, sc, scr);
    int64_t n = lb__evict_nkeep(CT, p->ratio);
    lb__evict_topk(sc, CT, n, idx, rk);
    free(scr); free(rk);
    return n;
}

/* Attention of a random query over head (l, kvh) of the compacted cache
 * against attention over the full copy with the evicted positions masked
 * (double precision reference). Returns the worst absolute error. */
static double masked_attention_error(lb_kv *c, const cache_data *d, int64_t l, int64_t h)
{
    int64_t kvh = h / (CH / CKV), n = lb__kv_tokens(c, l, kvh);
    const int32_t *kept = lb__kv_positions(c, l, kvh);
    float q[CD], out[CD];
    for (int e = 0; e < CD; e++) q[e] = rnd();
    lb__kv_attend(c, l, h, q, 0, 0, out);
    double z[CT], mx = -INFINITY, sum = 0, ref[CD] = {0}, worst = 0;
    bool in[CT] = {false};
    for (int64_t i = 0; i < n; i++) in[kept[i]] = true;
    for (int t = 0; t < CT; t++) {
        double s = 0;
        for (int e = 0; e < CD; e++) s += (double)q[e] * d->k[l][t][kvh * CD + e];
        z[t] = in[t] ? s / sqrt((double)CD) : -INFINITY;
        mx = fmax(mx, z[t]);
    }
    for (int t = 0; t < CT; t++) { z[t] = in[t] ? exp(z[t] - mx) : 0; sum += z[t]; }
    for (int t = 0; t < CT; t++)
        for (int e = 0; e < CD; e++) ref[e] += z[t] / sum * d->v[l][t][kvh * CD + e];
    for (int e = 0; e < CD; e++) worst = fmax(worst, fabs(out[e] - ref[e]));
    return worst;
}

static void test_cache_prefill(void)
{
    static const char *pols[] = {"random", "streaming", "knorm", "snapkv", "tova", "observed", "keydiff", "paged",
                                 "expected"};
    static cache_data d;
    for (size_t i = 0; i < sizeof pols / sizeof *pols; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "%s:ratio=0.6+f32:page=8", pols[i]);
        lb_kv *c = NULL;
        REQUIRE(fill_cache(spec, &d, &c) == LB_OK, "%s: %s", spec, lb_errmsg());
        lb__kv_report before, after;
        lb__kv_report_get(c, &before);
        lb__evict_params p;
        lb__evict_defaults(&p, (lb__evict_method)i);
        p.ratio = 0.6;
        p.page = 8;   /* paged's page=0: the storage policy's page (f32:page=8) */
        int64_t want[CL][CKV][CT], nw[CL][CKV];
        double worst_hook = 0;
        for (int l = 0; l < CL; l++)
            for (int h = 0; h < CKV; h++) {
                /* the registry's per-head score hook (ThinKV-style users) gives
                 * the pure scorer's scores */
                float sc[CT], hook[CT], mx = 0;
                nw[l][h] = expect_kept(sc, &p, &d, l, h, want[l][h]);
                const lb__kv_stage *stg = &lb__kv_spec_of(c)->st[0];
                CHECK(stg->pol->score(c, stg, l, h, hook) == LB_OK, "%s: %s", spec, lb_errmsg());
                for (int t = 0; t < CT; t++) if (isfinite(sc[t])) mx = fmaxf(mx, fabsf(sc[t]));
                for (int t = 0; t < CT; t++)
                    worst_hook = fmax(worst_hook, isinf(sc[t]) ? (sc[t] == hook[t] ? 0 : 1) : fabs(sc[t] - hook[t]) / mx);
            }
        CHECK(worst_hook < 1e-5, "%s: score hook vs pure scorer: %.3g", spec, worst_hook);
        CHECK(lb__kv_compress(c) == LB_OK, "%s: %s", spec, lb_errmsg());
        lb__kv_report_get(c, &after);
        int64_t held = 0;
        for (int l = 0; l < CL; l++)
            for (int h = 0; h < CKV; h++) {
                int64_t n = lb__kv_tokens(c, l, h), diff = 0;
                const int32_t *ps = lb__kv_positions(c, l, h);
                held += n;
                /* TOVA averages over the layer's heads (all hold the same positions) */
                if (i == LB_EVICT_TOVA) { CHECK(n == nw[l][h], "tova %d/%d holds %lld", l, h, (long long)n); continue; }
                for (int64_t j = 0; j < n && n == nw[l][h]; j++) diff += ps[j] != want[l][h][j];
                CHECK(n == nw[l][h] && !diff, "%s layer %d head %d: holds %lld (want %lld), %lld other tokens", spec,
                      l, h, (long long)n, (long long)nw[l][h], (long long)diff);
            }
        CHECK(held == after.tokens && after.tokens == CL * CKV * lb__evict_nkeep(CT, 0.6),
              "%s: report %lld tokens, heads hold %lld", spec, (long long)after.tokens, (long long)held);
        /* f32 pages of 8 tokens: 8 * 8 * hd bytes each, plus a 4-byte position per token */
        size_t page = 8 * 8 * CD, want_before = CL * CKV * (((CT + 7) / 8) * page + 4 * CT);
        int64_t nk = lb__evict_nkeep(CT, 0.6);
        size_t want_after = CL * CKV * ((size_t)((nk + 7) / 8) * page + 4 * (size_t)nk);
        CHECK(before.bytes == want_before && after.bytes == want_after, "%s: bytes %zu -> %zu, derived %zu -> %zu",
              spec, before.bytes, after.bytes, want_before, want_after);
        double worst = 0;
        for (int l = 0; l < CL; l++)
            for (int h = 0; h < CH; h++) worst = fmax(worst, masked_attention_error(c, &d, l, h));
        CHECK(worst < 1e-5, "%s: attention over the compacted cache vs masked full cache: %.3g", spec, worst);
        lb__kv_free(c);
    }
}

/* AdaKV inside the cache: the layer keeps the sum of the per-head budgets,
 * every head at least its floor, attention = masked full attention. */
static void test_cache_adakv(void)
{
    static cache_data d;
    lb_kv *c = NULL;
    REQUIRE(fill_cache("snapkv:ratio=0.7,ada=1,floor=0.3", &d, &c) == LB_OK, "%s", lb_errmsg());
    REQUIRE(lb__kv_compress(c) == LB_OK, "%s", lb_errmsg());
    int64_t nk = lb__evict_nkeep(CT, 0.7), differ = 0;
    for (int l = 0; l < CL; l++) {
        int64_t tot = 0;
        for (int h = 0; h < CKV; h++) {
            int64_t n = lb__kv_tokens(c, l, h);
            tot += n;
            differ += n != nk;
            CHECK(n >= (int64_t)(0.3 * (double)nk), "layer %d head %d keeps %lld < floor", l, h, (long long)n);
        }
        CHECK(tot == CKV * nk, "layer %d keeps %lld, budget %lld", l, (long long)tot, (long long)(CKV * nk));
    }
    double worst = 0;
    for (int l = 0; l < CL; l++)
        for (int h = 0; h < CH; h++) worst = fmax(worst, masked_attention_error(c, &d, l, h));
    CHECK(worst < 1e-5, "adakv: attention vs masked full attention %.3g", worst);
    printf("adakv: %lld of %d heads hold other than the uniform budget\n", (long long)differ, CL * CKV);
    lb__kv_free(c);
}

/* Decode-time compression: every N appended tokens a layer goes back to its
 * target; PagedEviction drops whole pages, never the first or the last. */
static void test_cache_decode(void)
{
    static cache_data d;
    lb_kv *c = NULL;
    REQUIRE(fill_cache("knorm:ratio=0.5,every=6+f32:page=8", &d, &c) == LB_OK, "%s", lb_errmsg());
    REQUIRE(lb__kv_compress(c) == LB_OK, "%s", lb_errmsg());
    CHECK(lb__kv_tokens(c, 0, 0) == CT / 2, "prefill call of a decoding stage: %lld", (long long)lb__kv_tokens(c, 0, 0));
    float k[CKV * CD], v[CKV * CD];
    int trig = 0;
    for (int t = CT; t < CCTX; t++) {
        for (int l = 0; l < CL; l++) {
            for (int e = 0; e < CKV * CD; e++) { k[e] = rnd(); v[e] = rnd(); }
            lb__kv_append(c, l, t, k, v);
        }
        int64_t before = lb__kv_tokens(c, 1, 1);
        REQUIRE(lb__evict_decode(c) == LB_OK, "%s", lb_errmsg());
        int64_t n = lb__kv_tokens(c, 1, 1), tgt = lb__evict_nkeep(t + 1, 0.5);
        trig += n < before;
        CHECK(n < before ? n == tgt : n < tgt + 6, "t %d: %lld -> %lld tokens, target %lld", t, (long long)before,
              (long long)n, (long long)tgt);
    }
    CHECK(trig >= 2, "decode compression ran %d times", trig);   /* held - target grows 1/2 a step: every 12 */
    lb__kv_free(c);

    REQUIRE(fill_cache("paged:ratio=0.5,decode=1,page=8,target=30+f32:page=8", &d, &c) == LB_OK, "%s", lb_errmsg());
    REQUIRE(lb__kv_compress(c) == LB_OK, "%s", lb_errmsg());
    int drops = 0;
    for (int t = CT; t < CCTX; t++) {
        for (int l = 0; l < CL; l++) {
            for (int e = 0; e < CKV * CD; e++) { k[e] = rnd(); v[e] = rnd(); }
            lb__kv_append(c, l, t, k, v);
        }
        int32_t old[CCTX];
        int64_t before = lb__kv_tokens(c, 0, 1);
        memcpy(old, lb__kv_positions(c, 0, 1), sizeof(int32_t) * (size_t)before);
        REQUIRE(lb__evict_decode(c) == LB_OK, "%s", lb_errmsg());
        int64_t n = lb__kv_tokens(c, 0, 1);
        if (n == before) {
            CHECK(before % 8 || before <= 30, "t %d: a full last page past the target was kept (%lld)", t, (long long)n);
            continue;
        }
        drops++;
        CHECK(n == before - 8 && before % 8 == 0, "t %d: %lld -> %lld tokens", t, (long long)before, (long long)n);
        /* the dropped slots are one page [8p, 8p + 8) with 0 < p < last */
        const int32_t *now = lb__kv_positions(c, 0, 1);
        int64_t first = 0;
        while (first < n && now[first] == old[first]) first++;
        bool ok = first % 8 == 0 && first >= 8 && first + 8 <= before - 8;
        for (int64_t j = first; j < n && ok; j++) ok = now[j] == old[j + 8];
        CHECK(ok, "t %d: not one whole middle page dropped (first difference at slot %lld)", t, (long long)first);
    }
    CHECK(drops >= 1, "paged decode dropped no page");
    lb__kv_free(c);
}

/* ---- the engine: sessions with an eviction SPEC on a real model */

static void run_prompt_t(lb_model *m, const char *kv, int threads, const int32_t *tok, int64_t n, int64_t m2,
                         float *lg, lb_kv_stats *st)
{
    lb_session *s = NULL;
    lb_status rc = lb_session_create(m, &(lb_session_opts){threads, 256, 0, kv}, &s);
    CHECK(rc == LB_OK, "%s: %s", kv, lb_errmsg());
    if (rc) return;
    CHECK(lb_forward(s, tok, n, NULL) == LB_OK, "%s", lb_errmsg());
    CHECK(lb_session_kv_compress(s) == LB_OK, "%s: %s", kv, lb_errmsg());
    CHECK(lb_session_kv_stats(s, st) == LB_OK, "%s", lb_errmsg());
    CHECK(lb_forward_all(s, tok + n, m2, lg) == LB_OK, "%s", lb_errmsg());
    lb_session_free(s);
}

static void run_prompt(lb_model *m, const char *kv, const int32_t *tok, int64_t n, int64_t m2, float *lg,
                       lb_kv_stats *st)
{
    run_prompt_t(m, kv, 1, tok, n, m2, lg, st);
}

static void test_engine(void)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", test_models_dir());
    if (!test_file_exists(path)) SKIP("%s absent", path);
    lb_model *m;
    REQUIRE(lb_model_load(path, &m) == LB_OK, "%s", lb_errmsg());
    int64_t V = m->cfg.vocab_size, L = m->cfg.n_layers, Hk = m->cfg.n_kv_heads, n = 100, m2 = 8;
    int32_t tok[108];
    for (int i = 0; i < 108; i++) tok[i] = i == 0 ? 1 : (int32_t)(lb_rng_u64(&rng) % (uint64_t)V);
    float *base = malloc(sizeof(float) * (size_t)(m2 * V)), *lg = malloc(sizeof(float) * (size_t)(m2 * V));
    lb_kv_stats sb, se;
    run_prompt(m, "f32", tok, n, m2, base, &sb);
    /* ratio 0 evicts nothing: the same bits as the plain cache */
    static const char *pols[] = {"random", "streaming", "knorm", "snapkv", "tova", "observed", "keydiff", "paged",
                                 "expected"};
    for (int i = 0; i < 9; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "%s:ratio=0", pols[i]);
        run_prompt(m, spec, tok, n, m2, lg, &se);
        CHECK(!memcmp(lg, base, sizeof(float) * (size_t)(m2 * V)) && se.bytes == sb.bytes, "%s: not the f32 cache", spec);
        snprintf(spec, sizeof spec, "%s:ratio=0.75", pols[i]);
        run_prompt(m, spec, tok, n, m2, lg, &se);
        int64_t held = L * Hk * (lb__evict_nkeep(n, 0.75) + m2);
        CHECK(se.tokens == L * Hk * lb__evict_nkeep(n, 0.75), "%s: holds %lld after the prompt", spec,
              (long long)se.tokens);
        CHECK(se.bytes < sb.bytes / 2, "%s: %zu bytes vs %zu for f32", spec, se.bytes, sb.bytes);
        double diff = 0;
        bool finite = true;
        for (int64_t j = 0; j < m2 * V; j++) { diff = fmax(diff, fabs(lg[j] - base[j])); finite &= isfinite(lg[j]); }
        CHECK(finite && diff > 0, "%s: logits %s (max difference %.3g)", spec, finite ? "unchanged" : "not finite", diff);
        (void)held;
    }
    /* the same bits on every ISA path and thread count (the scorers are
     * sequential double code; the attention kernels promise it) */
    static const char *same[] = {"snapkv:ratio=0.75,ada=1", "expected:ratio=0.5", "observed:ratio=0.6+f16"};
    float *other = malloc(sizeof(float) * (size_t)(m2 * V));
    for (int i = 0; i < 3; i++) {
        lb_isa_set(LB_ISA_REF);
        run_prompt_t(m, same[i], 1, tok, n, m2, lg, &se);
        for (int isa = 0; isa <= (int)lb_isa_best(); isa++)
            for (int th = 1; th <= 2; th++) {
                lb_isa_set((lb_isa)isa);
                run_prompt_t(m, same[i], th, tok, n, m2, other, &sb);
                CHECK(!memcmp(lg, other, sizeof(float) * (size_t)(m2 * V)) && sb.bytes == se.bytes,
                      "%s: isa %s threads %d differs from the reference path", same[i], lb_isa_name((lb_isa)isa), th);
            }
    }
    lb_isa_set(lb_isa_best());
    free(other);
    /* decode-time compression inside lb_forward: every 8 generated tokens a
     * layer goes back to int(seen / 2) per head */
    lb_session *s = NULL;
    REQUIRE(lb_session_create(m, &(lb_session_opts){1, 256, 0, "snapkv:ratio=0.5,every=8"}, &s) == LB_OK, "%s",
            lb_errmsg());
    CHECK(lb_forward(s, tok, 90, NULL) == LB_OK && lb_session_kv_compress(s) == LB_OK, "%s", lb_errmsg());
    int shrinks = 0;
    int64_t prev = 0;
    for (int i = 90; i < 108; i++) {
        CHECK(lb_forward(s, tok + i, 1, lg) == LB_OK, "%s", lb_errmsg());
        lb_kv_stats ks;
        lb_session_kv_stats(s, &ks);
        int64_t per = ks.tokens / (L * Hk), tgt = lb__evict_nkeep(i + 1, 0.5);
        CHECK(per < tgt + 8 && per * L * Hk == ks.tokens, "after position %d: %lld tokens per head, target %lld", i,
              (long long)per, (long long)tgt);
        shrinks += per < prev;
        prev = per;
    }
    CHECK(shrinks >= 1, "no decode compression in 18 tokens");
    lb_session_free(s);
    /* bad SPECs: one clear error naming the option and the problem */
    static const char *bad[][2] = {{"snapkv:ratio=1", "ratio"},     {"snapkv:kernel=4", "odd"},
                                   {"knorm:floor=0.3", "ada=1"},    {"expected:target=10", "every"},
                                   {"snapkv:window=9999", "window"}, {"streaming:ada=1", "ada"},
                                   {"snapkv:ratio=-0.1", "ratio"}};
    for (int i = 0; i < 7; i++) {
        lb_session *bs = NULL;
        lb_status rc = lb_session_create(m, &(lb_session_opts){1, 256, 0, bad[i][0]}, &bs);
        CHECK(rc == LB_ERR_ARG && !bs && strstr(lb_errmsg(), bad[i][1]), "%s: rc %d, '%s'", bad[i][0], rc,
              lb_errmsg());
        lb_session_free(bs);
    }
    free(base); free(lg);
    lb_model_free(m);
}

/* ---- Expected Attention on a real model's prompt against kvpress's
 * statement (tests/ref/expected_model_ref.py: float64 forward, query
 * statistics from the attention inputs through Wq, the model's own RoPE
 * matrices averaged over 512 future positions). Scores must agree to 1e-3
 * of the head's largest score, and the kept set at ratio 0.5 may differ
 * only in tokens whose reference score is that close to the threshold. */
static void expected_model_case(const char *py, const char *path)
{
    lb_model *m;
    REQUIRE(lb_model_load(path, &m) == LB_OK, "%s", lb_errmsg());
    enum { N = 48 };
    int64_t V = m->cfg.vocab_size, L = m->cfg.n_layers, H = m->cfg.n_kv_heads;
    int32_t tok[N];
    char cmd[4096], out[] = "/tmp/lb_expected_ref.XXXXXX";
    int fd = mkstemp(out);
    REQUIRE(fd >= 0, "mkstemp");
    close(fd);
    int k = snprintf(cmd, sizeof cmd, "%s tests/ref/expected_model_ref.py '%s' %s", py, path, out);
    for (int i = 0; i < N; i++) {
        tok[i] = i == 0 ? 1 : (int32_t)(lb_rng_u64(&rng) % (uint64_t)V);
        k += snprintf(cmd + k, sizeof cmd - (size_t)k, " %d", tok[i]);
    }
    double *ref = malloc(sizeof(double) * (size_t)(L * H * N));
    int rc = system(cmd);
    FILE *f = rc == 0 ? fopen(out, "rb") : NULL;
    size_t rd = f ? fread(ref, sizeof(double), (size_t)(L * H * N), f) : 0;
    if (f) fclose(f);
    remove(out);
    CHECK(rd == (size_t)(L * H * N), "%s: reference failed (rc %d, %zu values)", path, rc, rd);
    lb_session *s = NULL;
    REQUIRE(lb_session_create(m, &(lb_session_opts){1, 256, 0, "expected:ratio=0.5"}, &s) == LB_OK, "%s", lb_errmsg());
    REQUIRE(lb_forward(s, tok, N, NULL) == LB_OK, "%s", lb_errmsg());
    lb_kv *c = lb__session_kv(s);
    const lb__kv_spec *sp = lb__kv_spec_of(c);
    const lb__kv_stage *st = &sp->st[sp->store == 0 ? 1 : 0];
    float score[N];
    int64_t idx[N], keep = lb__evict_nkeep(N, 0.5);
    void *rank = malloc((size_t)lb__evict_rank_bytes(N));
    double worst = 0;
    int moved = 0;
    for (int64_t l = 0; l < L && rd; l++)
        for (int64_t h = 0; h < H; h++) {
            const double *r = ref + (l * H + h) * N;
            CHECK(lb__kv_tokens(c, l, h) == N, "layer %lld head %lld holds %lld", (long long)l, (long long)h,
                  (long long)lb__kv_tokens(c, l, h));
            CHECK(st->pol->score(c, st, l, h, score) == LB_OK, "%s", lb_errmsg());
            double mx = 0, sorted[N];
            for (int j = 4; j < N; j++) mx = fmax(mx, r[j]);
            for (int j = 0; j < N; j++) {
                if (j < 4) { CHECK(isinf(score[j]) && score[j] > 0, "sink %d scored %g", j, score[j]); continue; }
                worst = fmax(worst, fabs(score[j] - r[j]) / mx);
            }
            /* the threshold: the keep-th largest reference score */
            memcpy(sorted, r, sizeof sorted);
            for (int a = 0; a < N; a++)
                for (int b = a + 1; b < N; b++)
                    if (sorted[b] > sorted[a]) { double t = sorted[a]; sorted[a] = sorted[b]; sorted[b] = t; }
            double thr = sorted[keep - 1];
            lb__evict_topk(score, N, keep, idx, rank);
            bool in[N] = {0};
            for (int64_t i = 0; i < keep; i++) in[idx[i]] = true;
            for (int j = 4; j < N; j++)
                if (in[j] != (r[j] >= thr) && !(r[j] == thr)) {
                    CHECK(fabs(r[j] - thr) <= 1e-3 * mx, "layer %lld head %lld token %d: kept %d, reference score "
                          "%.6g vs threshold %.6g", (long long)l, (long long)h, j, in[j], r[j], thr);
                    moved++;
                }
        }
    CHECK(worst <= 1e-3, "%s: Expected Attention scores differ from kvpress's statement by %.3g of the head maximum",
          path, worst);
    printf("%s: expected attention vs NumPy (kvpress statement): max error %.2e of the head maximum, %d near-tie "
           "swaps\n", path, worst, moved);
    free(rank); free(ref);
    lb_session_free(s);
    lb_model_free(m);
}

static void test_expected_model(void)
{
    const char *py = test_find_python();
    if (!py) SKIP("python3 with numpy not found (set LOWBIT_PYTHON); NumPy reference comparison not run");
    char path[1100];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", test_models_dir());
    if (!test_file_exists(path)) SKIP("%s absent", path);
    expected_model_case(py, path);
    snprintf(path, sizeof path, "%s/tinystories-656k", test_models_dir());
    if (!test_file_exists(path)) SKIP("%s absent", path);
    expected_model_case(py, path);
}

/* ---- lowbit eval kv's eviction measures (src/eval/kv_eval.c) on
 * stories260K: the attention kept (1 when nothing is evicted, never above
 * the oracle's, the layers' mean is the whole), and --decode: without a
 * decode stage it changes nothing; with every=4 its KL divergence is the
 * one of a session run here by hand (prefill, compress, one token at a
 * time, each logit row against the f32 run's). */
static double kl_rows(const float *p, const float *q, int64_t n, int64_t V)
{
    double tot = 0;
    for (int64_t j = 0; j < n; j++) {
        const float *a = p + j * V, *b = q + j * V;
        double ma = a[0], mb = b[0], sa = 0, sb = 0, kl = 0;
        for (int64_t v = 1; v < V; v++) ma = fmax(ma, a[v]), mb = fmax(mb, b[v]);
        for (int64_t v = 0; v < V; v++) sa += exp(a[v] - ma), sb += exp(b[v] - mb);
        for (int64_t v = 0; v < V; v++) {
            double la = a[v] - ma - log(sa), lq = b[v] - mb - log(sb);
            kl += exp(la) * (la - lq);
        }
        tot += kl;
    }
    return tot / (double)n;
}

static void test_eval_protocol(void)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", test_models_dir());
    if (!test_file_exists(path)) SKIP("%s absent", path);
    lb_model *m;
    REQUIRE(lb_model_load(path, &m) == LB_OK, "%s", lb_errmsg());
    enum { CTX = 64, CONT = 16, NT = CTX + CONT + 1 };
    int64_t V = m->cfg.vocab_size, L = m->cfg.n_layers;
    int32_t tok[NT];
    for (int i = 0; i < NT; i++) tok[i] = i == 0 ? 1 : (int32_t)(lb_rng_u64(&rng) % (uint64_t)V);
    const char *specs[] = {"f32", "snapkv:ratio=0", "streaming:ratio=0.5", "snapkv:ratio=0.5", "random:ratio=0.75",
                           "snapkv:every=4,target=32"};
    enum { NS = 6 };
    lb_kv_eval_row r[NS], d[NS];
    lb_kv_eval_opts o = {.ctx = CTX, .cont = CONT, .n_threads = 1, .bos = 1, .specs = specs, .n_specs = NS};
    REQUIRE(lb_eval_kv(m, tok, NT, &o, r) == LB_OK, "%s", lb_errmsg());
    o.decode = 1;
    REQUIRE(lb_eval_kv(m, tok, NT, &o, d) == LB_OK, "%s", lb_errmsg());
    for (int i = 0; i < NS; i++) {
        double lm = 0, om = 0;
        for (int64_t l = 0; l < L; l++) {
            CHECK(r[i].attn_kept_layer[l] <= r[i].attn_oracle_layer[l] + 1e-12, "%s layer %lld: kept %g > oracle %g",
                  specs[i], (long long)l, r[i].attn_kept_layer[l], r[i].attn_oracle_layer[l]);
            lm += r[i].attn_kept_layer[l] / (double)L;
            om += r[i].attn_oracle_layer[l] / (double)L;
        }
        CHECK(fabs(lm - r[i].attn_kept) < 1e-12 && fabs(om - r[i].attn_oracle) < 1e-12, "%s: layers' mean %g / %g vs "
              "%g / %g", specs[i], lm, om, r[i].attn_kept, r[i].attn_oracle);
        if (i < 2)
            CHECK(fabs(r[i].attn_kept - 1) < 1e-12 && fabs(r[i].attn_oracle - 1) < 1e-12 && r[i].kld == 0, "%s: attention kept %g, oracle %g, "
                  "KL %g", specs[i], r[i].attn_kept, r[i].attn_oracle, r[i].kld);
        else
            CHECK(r[i].attn_kept < 1 && r[i].attn_oracle < 1 && r[i].attn_oracle > 0.25, "%s: kept %g oracle %g",
                  specs[i], r[i].attn_kept, r[i].attn_oracle);
        if (i < NS - 1)
            CHECK(fabs(d[i].kld - r[i].kld) <= 1e-9 * fmax(r[i].kld, 1e-3), "%s: --decode changed KL %g -> %g",
                  specs[i], r[i].kld, d[i].kld);
    }
    CHECK(fabs(d[NS - 1].kld - r[NS - 1].kld) > 1e-6, "%s: --decode gives the batch's KL %g", specs[NS - 1], r[NS - 1].kld);
    /* the decode row by hand */
    float *base = malloc(sizeof(float) * (size_t)(CONT * V)), *lg = malloc(sizeof(float) * (size_t)(CONT * V));
    lb_session *s = NULL;
    REQUIRE(lb_session_create(m, &(lb_session_opts){1, CTX + CONT, 0, "f32"}, &s) == LB_OK, "%s", lb_errmsg());
    CHECK(lb_forward(s, tok, CTX, NULL) == LB_OK && lb_forward_all(s, tok + CTX, CONT, base) == LB_OK, "%s", lb_errmsg());
    lb_session_free(s);
    REQUIRE(lb_session_create(m, &(lb_session_opts){1, CTX + CONT, 0, specs[NS - 1]}, &s) == LB_OK, "%s", lb_errmsg());
    CHECK(lb_forward(s, tok, CTX, NULL) == LB_OK && lb_session_kv_compress(s) == LB_OK, "%s", lb_errmsg());
    for (int j = 0; j < CONT; j++) CHECK(lb_forward(s, tok + CTX + j, 1, lg + j * V) == LB_OK, "%s", lb_errmsg());
    lb_kv_stats ks;
    lb_session_kv_stats(s, &ks);
    lb_session_free(s);
    double want = kl_rows(base, lg, CONT, V);
    CHECK(fabs(d[NS - 1].kld - want) <= 1e-6 * want, "%s --decode: KL %.9g, by hand %.9g", specs[NS - 1],
          d[NS - 1].kld, want);
    CHECK(ks.tokens <= L * m->cfg.n_kv_heads * (32 + 4), "by hand: %lld tokens held", (long long)ks.tokens);
    free(base); free(lg);
    lb_model_free(m);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    lb_rng_seed(&rng, TEST_SEED);
    RUN(test_vs_numpy);
    RUN(test_properties);
    RUN(test_cache_prefill);
    RUN(test_cache_adakv);
    RUN(test_cache_decode);
    RUN(test_engine);
    RUN(test_expected_model);
    RUN(test_eval_protocol);
    return TEST_DONE();
}
