/* formats_study.h: private pieces of the formats study (lb_formats_study_run,
 * docs/formats-study.md), shared by its three files:
 *   formats_study.c          data sets, the QSNR measurement, the public calls
 *   formats_study_findings.c the published claims, evaluated from the cells
 *   formats_study_report.c   markdown, JSON and SVG renderings into memory
 * The results are a cube of cells [data set][format variant][rotation]. */
#ifndef LB_FORMATS_STUDY_H
#define LB_FORMATS_STUDY_H

#include "core/core.h"
#include <math.h>

/* Rotations measured: 0 = none, else the Hadamard block (random signs). */
#define LB_FS_N_ROTS 4
extern const int64_t lb__fs_rots[LB_FS_N_ROTS];   /* {0, 16, 32, 128} */
#define LB_FS_N_FINDINGS 4
/* INT/FP pairs compared along the crest factor: {INT label, FP label}. */
#define LB_FS_N_PAIRS 3
extern const char *const lb__fs_pairs[LB_FS_N_PAIRS][2];

typedef struct lb_fs_mat { const float *x; int64_t rows, cols; } lb_fs_mat;

typedef struct lb_fs_set {
    char name[32];       /* column label */
    char desc[1280];
    float *own;          /* all values, owned */
    lb_fs_mat *mats;     /* (n_mats) views into own */
    int n_mats;
    int64_t values;
    double crest;        /* max |x| / rms over all values */
    double block_crest;  /* mean over 32-blocks of rows of max |x| / rms */
    double target;       /* outlier sets: the crest asked for; else 0 */
    char skipped[1100];  /* why the set was not measured; "" when it was */
} lb_fs_set;

typedef struct lb_fs_variant { const lb_format *f; lb_scale_rule rule; char label[40]; } lb_fs_variant;
typedef struct lb_fs_cell { double qsnr, coverage; } lb_fs_cell; /* qsnr NAN: no tensor fits (n/a) */
typedef struct lb_fs_finding { char claim[96], verdict[64], detail[2000]; } lb_fs_finding;

struct lb_formats_study {
    int64_t rows, cols;   /* synthetic matrices */
    uint64_t seed;
    bool quick;
    lb_fs_set *sets;      /* (n_sets) */
    int n_sets;
    lb_fs_variant *vars;  /* (n_vars) */
    int n_vars;
    lb_fs_cell *cells;    /* (n_sets, n_vars, LB_FS_N_ROTS) */
    double seconds;
    char command[256];
    lb_fs_finding findings[LB_FS_N_FINDINGS];
};

/* The cell of data set d, variant v, rotation index r. */
static inline lb_fs_cell *lb__fs_at(const lb_formats_study *s, int d, int v, int r)
{
    return &s->cells[((size_t)d * s->n_vars + v) * LB_FS_N_ROTS + r];
}

/* QSNR of the variant labelled `label` (NAN when that variant is absent). */
double lb__fs_qsnr(const lb_formats_study *s, int d, const char *label, int r);
/* Fill s->findings from the cells. */
void lb__fs_findings(lb_formats_study *s);
/* Append the markdown, JSON or SVG report to b. */
void lb__fs_markdown(lb_buf *b, const lb_formats_study *s);
void lb__fs_json(lb_buf *b, const lb_formats_study *s);
void lb__fs_svg(lb_buf *b, const lb_formats_study *s);

#endif
