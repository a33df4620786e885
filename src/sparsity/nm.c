/* nm.c: the N:M pattern: in every row, each group of M consecutive inputs
 * keeps its N highest scores ("2:4" keeps 2 of 4: 50% sparse; "1:4" 75%;
 * "4:8" 50% with more freedom). A width that M does not divide ends in a
 * tail group of g < M inputs that keeps floor(N g / M) (documented in
 * docs/sparsity.md), so the whole row keeps its share and nothing fails. */
#include "sparsity/sparsity.h"
#include <stdio.h>

int64_t lb__nm_keep(int n, int m, int64_t g) { return (int64_t)n * g / m; }

static int nm_parse(const char *text, double ratio, lb__pattern *p, lb_status *s)
{
    int n, m, used = 0;
    if (sscanf(text, "%d:%d%n", &n, &m, &used) != 2 || text[used]) return 0;
    *p = (lb__pattern){.kind = LB__PAT_NM, .n = n, .m = m};
    if (m < 1 || m > 256) *s = lb__err(LB_ERR_ARG, "pattern %s: M must lie in [1, 256]", text);
    else if (n < 1 || n > m) *s = lb__err(LB_ERR_ARG, "pattern %s: N (kept per group) must lie in [1, M]", text);
    else *s = LB_OK;
    return 1;
}

/* Keep the `want` highest of the g scores s[0], s[1], ... (stride 1). */
static void keep_top(const double *s, int64_t g, int64_t want, uint8_t *keep, int64_t *idx)
{
    lb__order_asc(s, 1, g, idx);
    for (int64_t i = 0; i < g; i++) keep[idx[i]] = i >= g - want;
}

static void nm_select(const lb__pattern *p, const double *score, int64_t rows, int64_t cols, int64_t ld,
                      uint8_t *keep, int64_t kld)
{
    int64_t idx[256];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c += p->m) {
            int64_t g = lb__min64(p->m, cols - c);
            keep_top(score + r * ld + c, g, lb__nm_keep(p->n, p->m, g), keep + r * kld + c, idx);
        }
}


const lb__pattern_desc lb__pat_nm = {
    .name = "N:M",
    .syntax = "N:M (keep N of every M consecutive inputs: 2:4, 4:8, 1:4)",
    .parse = nm_parse,
    .select = nm_select,
};
