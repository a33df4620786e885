/* formats_study_report.c: the formats study's reports, rendered into memory:
 * markdown (data sets, findings, INT - FP along the crest, one QSNR table per
 * rotation), JSON (every cell with its coverage; docs/formats-study.md) and
 * an SVG dot chart. Infinite QSNR (an exact round trip) is "inf" in the
 * markdown and 999 in the JSON; a cell no tensor fits is "n/a" / null. */
#include "eval/formats_study.h"

/* ---- markdown */

/* One markdown table cell: QSNR with "*" when only part of the set fits. */
static void md_cell(lb_buf *o, const lb_fs_cell *c)
{
    if (isnan(c->qsnr)) lb__buf_printf(o, " n/a |");
    else if (isinf(c->qsnr)) lb__buf_printf(o, " inf |");
    else lb__buf_printf(o, " %.2f%s |", c->qsnr, c->coverage < 1 ? "*" : "");
}

/* Title, what was measured, and the data-set table. */
static void md_head(lb_buf *o, const lb_formats_study *s)
{
    lb__buf_printf(o, "# Formats study: QSNR of every lowbit number format\n\n"
                   "Produced by `%s` (lowbit %s, %.0f s on this machine). QSNR = 10 log10(sum x^2 / sum (x - x')^2) "
                   "in dB, x' the round trip x -> R^T deq(q(R x)); higher is better. Synthetic data: %lld x %lld, "
                   "seed %llu. R = I, or blockdiag(H_B) D with B = 16, 32, 128 and random signs D from seed %d "
                   "(per row of each matrix). Formats use the floor scale rule; `/mse` rows are the MX formats "
                   "with the per-block MSE scale search.\n\n",
                   s->command, lb_version(), s->seconds, (long long)s->rows, (long long)s->cols,
                   (unsigned long long)s->seed, LB_FORMATS_STUDY_SIGN_SEED);
    lb__buf_printf(o, "## Data sets\n\n| set | values | crest max/rms | mean block-32 crest | built as |\n"
                   "|---|---:|---:|---:|---|\n");
    for (int d = 0; d < s->n_sets; d++) {
        const lb_fs_set *x = &s->sets[d];
        if (x->skipped[0]) lb__buf_printf(o, "| %s | - | - | - | %s |\n", x->name, x->skipped);
        else lb__buf_printf(o, "| %s | %lld | %.2f | %.2f | %s |\n", x->name, (long long)x->values, x->crest,
                            x->block_crest, x->desc);
    }
}

/* The findings, then INT - FP of each pair at each outlier crest (no rotation). */
static void md_findings(lb_buf *o, const lb_formats_study *s)
{
    lb__buf_printf(o, "\n## Findings (computed from the tables below)\n\n");
    for (int i = 0; i < LB_FS_N_FINDINGS; i++)
        lb__buf_printf(o, "- **%s**: %s. %s.\n", s->findings[i].claim, s->findings[i].verdict, s->findings[i].detail);
    lb__buf_printf(o, "\n### INT minus FP (dB) along the crest factor, no rotation\n\n| pair |");
    for (int d = 0; d < s->n_sets; d++)
        if (s->sets[d].target) lb__buf_printf(o, " crest %.3g |", s->sets[d].crest);
    lb__buf_printf(o, "\n|---|");
    for (int d = 0; d < s->n_sets; d++)
        if (s->sets[d].target) lb__buf_printf(o, "---:|");
    lb__buf_printf(o, "\n");
    for (int p = 0; p < LB_FS_N_PAIRS; p++) {
        const char *i = lb__fs_pairs[p][0], *f = lb__fs_pairs[p][1];
        lb__buf_printf(o, "| %s - %s |", i, f);
        for (int d = 0; d < s->n_sets; d++)
            if (s->sets[d].target) lb__buf_printf(o, " %+.2f |", lb__fs_qsnr(s, d, i, 0) - lb__fs_qsnr(s, d, f, 0));
        lb__buf_printf(o, "\n");
    }
}

/* The QSNR table of rotation index r: one row per variant, one column per set. */
static void md_table(lb_buf *o, const lb_formats_study *s, int r)
{
    if (lb__fs_rots[r])
        lb__buf_printf(o, "\n## QSNR (dB), Hadamard block %lld with random signs\n\n", (long long)lb__fs_rots[r]);
    else lb__buf_printf(o, "\n## QSNR (dB), no rotation\n\n");
    lb__buf_printf(o, "| format | bits/w |");
    for (int d = 0; d < s->n_sets; d++) lb__buf_printf(o, " %s |", s->sets[d].name);
    lb__buf_printf(o, "\n|---|---:|");
    for (int d = 0; d < s->n_sets; d++) lb__buf_printf(o, "---:|");
    lb__buf_printf(o, "\n");
    for (int v = 0; v < s->n_vars; v++) {
        lb__buf_printf(o, "| %s | %.4g |", s->vars[v].label, lb_format_bits_per_weight(s->vars[v].f));
        for (int d = 0; d < s->n_sets; d++) {
            if (s->sets[d].skipped[0]) lb__buf_printf(o, " skip |");
            else md_cell(o, lb__fs_at(s, d, v, r));
        }
        lb__buf_printf(o, "\n");
    }
}

/* The markdown report (what `lowbit bench formats` prints). */
void lb__fs_markdown(lb_buf *o, const lb_formats_study *s)
{
    md_head(o, s);
    md_findings(o, s);
    lb__buf_printf(o, "\n![QSNR per format and data set](formats-study.svg)\n");
    for (int r = 0; r < LB_FS_N_ROTS; r++) md_table(o, s, r);
    lb__buf_printf(o, "\n`*`: only the weights whose row length both the format block and the rotation block divide "
                   "(coverage in the JSON); `n/a`: no weight matrix fits.\n");
}

/* ---- JSON */

/* A JSON number with 4 decimals; NAN -> null, infinity -> 999. */
static void json_num(lb_buf *o, double v)
{
    if (isnan(v)) lb__buf_printf(o, "null");
    else if (isinf(v)) lb__buf_printf(o, "999");
    else lb__buf_printf(o, "%.4f", v);
}

/* "datasets": name, size, crests and description (or skip reason) of each. */
static void json_sets(lb_buf *o, const lb_formats_study *s)
{
    for (int d = 0; d < s->n_sets; d++) {
        const lb_fs_set *x = &s->sets[d];
        lb__buf_printf(o, "%s\n  {\"name\": \"%s\", \"values\": %lld, \"crest\": ", d ? "," : "", x->name,
                       (long long)x->values);
        json_num(o, x->skipped[0] ? NAN : x->crest);
        lb__buf_printf(o, ", \"block_crest\": ");
        json_num(o, x->skipped[0] ? NAN : x->block_crest);
        lb__buf_printf(o, ", \"target_crest\": ");
        json_num(o, x->target ? x->target : NAN);
        lb__buf_printf(o, ", \"skipped\": %s, \"description\": ", x->skipped[0] ? "true" : "false");
        lb__buf_json_str(o, x->skipped[0] ? x->skipped : x->desc);
        lb__buf_printf(o, "}");
    }
}

/* "results": every cell of every measured set, set-major, then variant, then rotation. */
static void json_cells(lb_buf *o, const lb_formats_study *s)
{
    int k = 0;
    for (int d = 0; d < s->n_sets; d++)
        for (int v = 0; v < s->n_vars; v++)
            for (int r = 0; r < LB_FS_N_ROTS && !s->sets[d].skipped[0]; r++) {
                const lb_fs_cell *c = lb__fs_at(s, d, v, r);
                const lb_fs_variant *va = &s->vars[v];
                lb__buf_printf(o, "%s\n  {\"dataset\": \"%s\", \"format\": \"%s\", \"scale_rule\": \"%s\", "
                               "\"hadamard\": %lld, \"bits_per_weight\": %.4f, \"qsnr_db\": ", k++ ? "," : "",
                               s->sets[d].name, lb_format_name(va->f), va->rule == LB_SCALE_MSE ? "mse" : "floor",
                               (long long)lb__fs_rots[r], lb_format_bits_per_weight(va->f));
                json_num(o, c->qsnr);
                lb__buf_printf(o, ", \"coverage\": %.4f}", c->coverage);
            }
}

/* The JSON report: options, data sets, every cell, the findings. */
void lb__fs_json(lb_buf *o, const lb_formats_study *s)
{
    lb__buf_printf(o, "{\n\"command\": ");
    lb__buf_json_str(o, s->command);
    lb__buf_printf(o, ",\n\"version\": \"%s\", \"seed\": %llu, \"sign_seed\": %d, \"rows\": %lld, \"cols\": %lld, "
                   "\"quick\": %s, \"seconds\": %.1f,\n\"rotations\": [0, 16, 32, 128],\n\"datasets\": [",
                   lb_version(), (unsigned long long)s->seed, LB_FORMATS_STUDY_SIGN_SEED, (long long)s->rows,
                   (long long)s->cols, s->quick ? "true" : "false", s->seconds);
    json_sets(o, s);
    lb__buf_printf(o, "\n],\n\"results\": [");
    json_cells(o, s);
    lb__buf_printf(o, "\n],\n\"findings\": [");
    for (int i = 0; i < LB_FS_N_FINDINGS; i++) {
        lb__buf_printf(o, "%s\n  {\"claim\": ", i ? "," : "");
        lb__buf_json_str(o, s->findings[i].claim);
        lb__buf_printf(o, ", \"verdict\": ");
        lb__buf_json_str(o, s->findings[i].verdict);
        lb__buf_printf(o, ", \"detail\": ");
        lb__buf_json_str(o, s->findings[i].detail);
        lb__buf_printf(o, "}");
    }
    lb__buf_printf(o, "\n]\n}\n");
}

/* ---- SVG dot chart: one panel per rotation; x = every format variant, one
 * dot per data set (colour), y = QSNR in dB on a shared axis [lo, hi]. */

static const char *const COLOURS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                      "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aec7e8"};
#define N_COLOURS ((int)(sizeof COLOURS / sizeof *COLOURS))
static const double L = 60, STEP = 13, PH = 240, LAB = 120, TOP = 50; /* left margin, x step, panel height, ... */

typedef struct svg_axis { double lo, hi, pw; } svg_axis;   /* QSNR range (multiples of 10) and panel width */

/* The panel of rotation index r: title, grid, one column of dots per variant. */
static void svg_panel(lb_buf *o, const lb_formats_study *s, const svg_axis *a, int r)
{
    double y0 = TOP + r * (PH + LAB + 30) + 14, yb = y0 + PH, lo = a->lo, hi = a->hi, pw = a->pw;
    if (lb__fs_rots[r])
        lb__buf_printf(o, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">Hadamard block %lld, random signs</text>\n", L,
                       y0 - 4, (long long)lb__fs_rots[r]);
    else lb__buf_printf(o, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">no rotation</text>\n", L, y0 - 4);
    for (double g = lo; g <= hi + 1e-9; g += 10) {
        double y = yb - (g - lo) / (hi - lo) * PH;
        lb__buf_printf(o, "<line x1=\"%.0f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                       "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n", L, L + pw, y, y, L - 4, y + 3, g);
    }
    lb__buf_printf(o, "<text transform=\"translate(%.0f,%.0f) rotate(-90)\" text-anchor=\"middle\">QSNR (dB)</text>\n",
                   L - 34, y0 + PH / 2);
    for (int v = 0; v < s->n_vars; v++) {
        double x = L + STEP * (v + 0.5);
        lb__buf_printf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#f2f2f2\"/>"
                       "<text transform=\"translate(%.1f,%.1f) rotate(-70)\" text-anchor=\"end\" font-size=\"9\">"
                       "%s</text>\n", x, x, y0, yb, x + 3, yb + 6, s->vars[v].label);
        for (int d = 0; d < s->n_sets; d++) {
            double q = lb__fs_at(s, d, v, r)->qsnr;
            if (s->sets[d].skipped[0] || !isfinite(q)) continue;
            lb__buf_printf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\" fill-opacity=\"0.8\"/>\n", x,
                           yb - (q - lo) / (hi - lo) * PH, COLOURS[d % N_COLOURS]);
        }
    }
    lb__buf_printf(o, "<line x1=\"%.0f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", L, L + pw, yb, yb);
}

/* The SVG report: every panel, then the legend of data sets. */
void lb__fs_svg(lb_buf *o, const lb_formats_study *s)
{
    svg_axis a = {0, 10, STEP * s->n_vars};
    for (size_t i = 0; i < (size_t)s->n_sets * s->n_vars * LB_FS_N_ROTS; i++) {
        double q = s->cells[i].qsnr;
        if (isfinite(q)) a.lo = fmin(a.lo, q), a.hi = fmax(a.hi, q);
    }
    a.lo = floor(a.lo / 10) * 10, a.hi = ceil(a.hi / 10) * 10;
    double W = L + a.pw + 190, H = TOP + LB_FS_N_ROTS * (PH + LAB + 30);
    lb__buf_printf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                   "font-family=\"sans-serif\" font-size=\"10\">\n"
                   "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    lb__buf_printf(o, "<text x=\"%.0f\" y=\"22\" font-size=\"15\">QSNR (dB) of every lowbit format per data set "
                   "(%s)</text>\n", L, s->command);
    for (int r = 0; r < LB_FS_N_ROTS; r++) svg_panel(o, s, &a, r);
    for (int d = 0; d < s->n_sets; d++)
        lb__buf_printf(o, "<circle cx=\"%.0f\" cy=\"%d\" r=\"4\" fill=\"%s\"/>"
                       "<text x=\"%.0f\" y=\"%d\">%s%s</text>\n",
                       L + a.pw + 20, 64 + 16 * d, COLOURS[d % N_COLOURS], L + a.pw + 30, 68 + 16 * d, s->sets[d].name,
                       s->sets[d].skipped[0] ? " (skipped)" : "");
    lb__buf_printf(o, "</svg>\n");
}
