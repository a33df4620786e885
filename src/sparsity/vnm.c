/* vnm.c: the V:N:M pattern ("Beyond 2:4"): the matrix is cut into blocks
 * of V rows x M consecutive inputs; each block keeps the 4 columns with the
 * highest summed score over its rows, then each row keeps the N highest of
 * those 4 (N:4 inside them), so a row keeps N of every M inputs and the
 * block needs 4 column indices plus N:4 bits per row. 64:2:8 is 75% sparse,
 * 64:3:8 62.5%. Rows that V does not divide end in a shorter last block; a
 * width that M does not divide ends in a tail group handled as N:M does
 * (each row keeps floor(N g / M) of its g inputs). */
#include "sparsity/sparsity.h"
#include <stdio.h>

static int vnm_parse(const char *text, double ratio, lb__pattern *p, lb_status *s)
{
    int v, n, m, used = 0;
    if (sscanf(text, "%d:%d:%d%n", &v, &n, &m, &used) != 3 || text[used]) return 0;
    *p = (lb__pattern){.kind = LB__PAT_VNM, .v = v, .n = n, .m = m};
    if (v < 1 || v > 1 << 20) *s = lb__err(LB_ERR_ARG, "pattern %s: V (rows per block) must lie in [1, 2^20]", text);
    else if (m < 4 || m > 256) *s = lb__err(LB_ERR_ARG, "pattern %s: M must lie in [4, 256] (4 columns are kept)", text);
    else if (n < 1 || n > 4) *s = lb__err(LB_ERR_ARG, "pattern %s: N (kept of the 4 columns) must lie in [1, 4]", text);
    else *s = LB_OK;
    return 1;
}

/* One block: rows [r0, r1) x columns [c, c + m). */
static void vnm_block(const lb__pattern *p, const double *score, int64_t r0, int64_t r1, int64_t c, int64_t ld,
                      uint8_t *keep, int64_t kld)
{
    double col[256], sub[4];
    int64_t idx[256], cols4[4], k = 0;
    for (int i = 0; i < p->m; i++) {
        col[i] = 0;
        for (int64_t r = r0; r < r1; r++) col[i] += score[r * ld + c + i];
    }
    lb__order_asc(col, 1, p->m, idx);
    for (int i = p->m - 4; i < p->m; i++) cols4[k++] = idx[i];
    for (int a = 1; a < 4; a++)          /* the 4 columns in increasing order */
        for (int b = a; b > 0 && cols4[b - 1] > cols4[b]; b--) { int64_t t = cols4[b]; cols4[b] = cols4[b - 1]; cols4[b - 1] = t; }
    for (int64_t r = r0; r < r1; r++) {
        uint8_t *kr = keep + r * kld + c;
        for (int i = 0; i < p->m; i++) kr[i] = 0;
        for (int i = 0; i < 4; i++) sub[i] = score[r * ld + c + cols4[i]];
        lb__order_asc(sub, 1, 4, idx);
        for (int i = 4 - p->n; i < 4; i++) kr[cols4[idx[i]]] = 1;
    }
}

static void vnm_select(const lb__pattern *p, const double *score, int64_t rows, int64_t cols, int64_t ld,
                       uint8_t *keep, int64_t kld)
{
    int64_t full = cols / p->m * p->m;
    for (int64_t r0 = 0; r0 < rows; r0 += p->v)
        for (int64_t c = 0; c < full; c += p->m) vnm_block(p, score, r0, lb__min64(rows, r0 + p->v), c, ld, keep, kld);
    if (full < cols) {   /* tail: per row, as N:M */
        lb__pattern t = {.kind = LB__PAT_NM, .n = p->n, .m = p->m};
        lb__pat_nm.select(&t, score + full, rows, cols - full, ld, keep + full, kld);
    }
}


const lb__pattern_desc lb__pat_vnm = {
    .name = "V:N:M",
    .syntax = "V:N:M (V x M blocks keep 4 columns, N of them per row: 64:2:8)",
    .parse = vnm_parse,
    .select = vnm_select,
};
