/* formats_study_findings.c: the published claims the formats study checks,
 * each evaluated from the measured cells into a verdict ("reproduced",
 * "mostly", "partly", "not reproduced", ...) and a detail line citing the
 * numbers (docs/formats-study.md, "Which claims reproduced"). */
#include "eval/formats_study.h"

/* Verdict for a claim that held in yes of n cases. */
static const char *verdict(int yes, int n)
{
    if (n == 0) return "not measured";
    if (yes == n) return "reproduced";
    if (4 * yes >= 3 * n) return "mostly reproduced";
    if (yes > 0) return "partly reproduced";
    return "not reproduced";
}

/* Append to a finding's detail line (truncated at its size). */
#define DETAIL(f, ...) snprintf((f)->detail + strlen((f)->detail), sizeof (f)->detail - strlen((f)->detail), __VA_ARGS__)

/* MXINT8 beats both MXFP8 variants, per (data set, rotation). */
static void claim_int8(const lb_formats_study *s, lb_fs_finding *f)
{
    int yes = 0, n = 0;
    double lo = INFINITY, hi = -INFINITY;
    snprintf(f->claim, sizeof f->claim, "MXINT8 beats MXFP8");
    for (int d = 0; d < s->n_sets; d++)
        for (int r = 0; r < LB_FS_N_ROTS; r++) {
            double i8 = lb__fs_qsnr(s, d, "mxint8", r), e4 = lb__fs_qsnr(s, d, "mxfp8_e4m3", r);
            double e5 = lb__fs_qsnr(s, d, "mxfp8_e5m2", r);
            if (isnan(i8) || isnan(e4) || isnan(e5)) continue;
            n++;
            if (i8 > e4 && i8 > e5) yes++;
            else DETAIL(f, "%sexception: %s H%lld (mxint8 %.2f, e4m3 %.2f, e5m2 %.2f)", f->detail[0] ? "; " : "",
                        s->sets[d].name, (long long)lb__fs_rots[r], i8, e4, e5);
            lo = fmin(lo, i8 - e4), hi = fmax(hi, i8 - e4);
        }
    snprintf(f->verdict, sizeof f->verdict, "%s", verdict(yes, n));
    DETAIL(f, "%smxint8 > both mxfp8 variants on %d of %d (data set, rotation) cases; mxint8 - mxfp8_e4m3 "
           "ranges from %+.2f to %+.2f dB", f->detail[0] ? ". " : "", yes, n, lo, hi);
}

/* NVINT4 >= NVFP4 (within 0.1 dB) with a rotation; unrotated cases counted apart. */
static void claim_nv(const lb_formats_study *s, lb_fs_finding *f)
{
    int yes = 0, n = 0, yes0 = 0, n0 = 0;
    snprintf(f->claim, sizeof f->claim, "NVINT4 matches or beats NVFP4 once rotated");
    for (int d = 0; d < s->n_sets; d++)
        for (int r = 0; r < LB_FS_N_ROTS; r++) {
            double a = lb__fs_qsnr(s, d, "nvint4", r), b = lb__fs_qsnr(s, d, "nvfp4", r);
            if (isnan(a) || isnan(b)) continue;
            bool ok = a >= b - 0.1;
            if (r == 0) { n0++; yes0 += ok; continue; }
            n++;
            yes += ok;
            if (!ok) DETAIL(f, "%sexception: %s H%lld (nvint4 %.2f, nvfp4 %.2f)", f->detail[0] ? "; " : "",
                            s->sets[d].name, (long long)lb__fs_rots[r], a, b);
        }
    snprintf(f->verdict, sizeof f->verdict, "%s", verdict(yes, n));
    DETAIL(f, "%srotated (H16/H32/H128): nvint4 >= nvfp4 - 0.1 dB on %d of %d cases; unrotated: %d of %d",
           f->detail[0] ? ". " : "", yes, n, yes0, n0);
}

/* Rotation raises MXFP4 and INT4 in >= 3/4 of cases and lowers NVFP4 in at least one. */
static void claim_hadamard(const lb_formats_study *s, lb_fs_finding *f)
{
    static const char *fm[] = {"mxfp4", "int4_g32", "nvfp4"};
    int up[3] = {0}, down[3] = {0}, n[3] = {0};
    snprintf(f->claim, sizeof f->claim, "Hadamard helps MXFP4 and INT4 but can hurt NVFP4");
    for (int k = 0; k < 3; k++)
        for (int d = 0; d < s->n_sets; d++)
            for (int r = 1; r < LB_FS_N_ROTS; r++) {
                double a = lb__fs_qsnr(s, d, fm[k], 0), b = lb__fs_qsnr(s, d, fm[k], r);
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
            double a = lb__fs_qsnr(s, d, fm[k], 0), best = -INFINITY;
            for (int r = 1; r < LB_FS_N_ROTS; r++) best = fmax(best, lb__fs_qsnr(s, d, fm[k], r));
            if (!isnan(a) && isfinite(best) && best < a - 0.05)
                DETAIL(f, "%s%s", w++ ? ", " : ", every block lowers it on ", s->sets[d].name);
        }
    }
    DETAIL(f, " (helps = raises in >= 3/4 of cases; can hurt = lowers in at least one)");
}

const char *const lb__fs_pairs[LB_FS_N_PAIRS][2] = {{"mxint8", "mxfp8_e4m3"}, {"nvint4", "nvfp4"},
                                                    {"int4_g32", "mxfp4"}};

/* INT - FP of pair p along the sets idx[0..n) (ascending crest cr[]):
 * the first and last difference, and the crest where INT stops winning. */
static void series(const lb_formats_study *s, int p, const int *idx, const double *cr, int n, int r, double *first,
                   double *last, double *cross)
{
    double prev = NAN, pc = 0;
    *first = *last = *cross = NAN;
    for (int k = 0; k < n; k++) {
        double diff = lb__fs_qsnr(s, idx[k], lb__fs_pairs[p][0], r) - lb__fs_qsnr(s, idx[k], lb__fs_pairs[p][1], r);
        if (isnan(diff)) continue;
        if (isnan(*first)) *first = diff;
        if (!isnan(prev) && prev > 0 && diff <= 0 && isnan(*cross))
            *cross = pc + (cr[k] - pc) * prev / (prev - diff);
        prev = diff, pc = cr[k], *last = diff;
    }
}

/* Along (a) the tensor crest of the outlier-column sets and (b) the mean
 * block-32 crest of every synthetic set, for each INT/FP pair. */
static void claim_crossover(const lb_formats_study *s, lb_fs_finding *f, int r)
{
    int idx[2][32], n[2] = {0, 0}, yes[2] = {0, 0};
    double cr[2][32];
    snprintf(f->claim, sizeof f->claim, "the INT/FP crossover moves with crest factor");
    for (int d = 0; d < s->n_sets && d < 32; d++) {
        const lb_fs_set *x = &s->sets[d];
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
        for (int p = 0; p < LB_FS_N_PAIRS; p++) {
            double first, last, cross;
            series(s, p, idx[a], cr[a], n[a], r, &first, &last, &cross);
            if (isnan(first)) continue;
            bool ok = first > 0 && last < 0;
            if (p < 2) yes[a] += ok;
            DETAIL(f, "%s%s - %s %+.2f dB -> %+.2f dB", p ? "; " : "", lb__fs_pairs[p][0], lb__fs_pairs[p][1], first,
                   last);
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
}

/* The four findings, in report order. */
void lb__fs_findings(lb_formats_study *s)
{
    memset(s->findings, 0, sizeof s->findings);
    claim_int8(s, &s->findings[0]);
    claim_nv(s, &s->findings[1]);
    claim_hadamard(s, &s->findings[2]);
    claim_crossover(s, &s->findings[3], 0);
}
