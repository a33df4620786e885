/* stamp.c: STaMP (sequence transform and mixed precision, issue 10), an
 * activation format applied over the tokens of one batch instead of one
 * token at a time:
 *
 *   Z = T X        (X: nt tokens x cols inputs; T: nt x nt orthonormal, over tokens)
 *   Z' = Q(Z)      rows with the most energy (sum of squares) in int8_g32,
 *                  the others in the low format (avg bits decides how many)
 *   Y = T^T Z' W^T (= T^T (Z' W^T): T acts on tokens, W on features, so the
 *                  inverse may be taken before or after the product)
 *
 * The activation step is simulated (quantize-dequantize), so the inverse is
 * applied to the dequantized input, which equals applying it to the
 * product's output up to float rounding (linearity). Kinds: DCT-II
 * (orthonormal: T[k][t] = s_k cos(pi (2t+1) k / 2n), s_0 = sqrt(1/n), else
 * sqrt(2/n)), Haar DWT (full depth; at each level pairs (a+b)/sqrt2,
 * (a-b)/sqrt2, an odd last element passed on to the next level; layout
 * [approximation | details of this level | ...]), and the identity (the same
 * mixed precision without a transform: the baseline at equal bits).
 *
 * A decode step has one token: the transform of size 1 is the identity and
 * floor(1 * (avg - b) / (8 - b)) = 0 rows go to 8 bits, so decode is plain
 * per-token quantization in the low format. A batch longer than
 * LB__STAMP_SEG is transformed in consecutive segments. Every output row is
 * computed by the same sequence of operations whatever the split over
 * threads, so results do not depend on the thread count. */
#include "weights/weights.h"
#include <math.h>

static const char *kind_name(int k) { return k == LB__STAMP_DCT ? "dct" : k == LB__STAMP_HAAR ? "haar" : "id"; }

lb_status lb__stamp_parse(const char *spec, lb__stamp *st, const lb_format **low)
{
    memset(st, 0, sizeof *st);
    *low = NULL;
    const char *k = spec + 6, *c = strchr(k, ':');
    if (strncmp(spec, "stamp-", 6) || !c)
        return lb__err(LB_ERR_ARG, "'%s': a STaMP activation is stamp-KIND:FORMAT[:AVG] (KIND dct, haar or id)", spec);
    size_t kl = (size_t)(c - k);
    st->kind = kl == 3 && !strncmp(k, "dct", 3) ? LB__STAMP_DCT : kl == 4 && !strncmp(k, "haar", 4) ? LB__STAMP_HAAR
             : kl == 2 && !strncmp(k, "id", 2) ? LB__STAMP_ID : 0;
    if (!st->kind)
        return lb__err(LB_ERR_ARG, "'%s': unknown STaMP transform '%.*s' (dct, haar or id)", spec, (int)kl, k);
    char fname[40];
    const char *c2 = strchr(c + 1, ':');
    size_t fl = c2 ? (size_t)(c2 - c - 1) : strlen(c + 1);
    if (!fl || fl >= sizeof fname) return lb__err(LB_ERR_ARG, "'%s': bad STaMP activation format", spec);
    memcpy(fname, c + 1, fl);
    fname[fl] = 0;
    const char *fn = !strcmp(fname, "int4") ? "int4_g32" : !strcmp(fname, "int8") ? "int8_g32" : fname;
    const lb_format *f = lb_format_find(fn);
    if (!f) return lb__err(LB_ERR_ARG, "'%s': activation format '%s' is unknown (a format of `lowbit formats`)", spec, fname);
    int b = lb_elem_bits(f->elem);
    if (b >= 8)
        return lb__err(LB_ERR_ARG, "'%s': STaMP's low format needs elements under 8 bits (%s has %d)", spec, fn, b);
    st->avg = b + 0.25;
    if (c2) {
        char *end;
        st->avg = strtod(c2 + 1, &end);
        if (end == c2 + 1 || *end || !(st->avg >= b && st->avg <= 8))
            return lb__err(LB_ERR_ARG, "'%s': average bits '%s' must be a number in [%d, 8]", spec, c2 + 1, b);
    }
    snprintf(st->name, sizeof st->name, "stamp-%s:%s:%g", kind_name(st->kind), lb_format_name(f), st->avg);
    *low = f;
    return LB_OK;
}

lb_status lb__stamp_check(const lb__stamp *st, const lb_format *low, int64_t cols, const char *name)
{
    lb_status s = lb__act_check(low, cols, name);
    if (!s && st->kind) s = lb__act_check(lb_format_find("int8_g32"), cols, name);
    return s;
}

/* Forward Haar DWT of x (n values) in place, double; tmp: n values. */
static void haar(double *x, int64_t n, double *tmp)
{
    for (int64_t len = n; len > 1;) {
        int64_t h = len / 2, na = len - h;
        for (int64_t i = 0; i < h; i++) {
            tmp[i] = (x[2 * i] + x[2 * i + 1]) * M_SQRT1_2;
            tmp[na + i] = (x[2 * i] - x[2 * i + 1]) * M_SQRT1_2;
        }
        if (len & 1) tmp[h] = x[len - 1];
        memcpy(x, tmp, sizeof(double) * (size_t)len);
        len = na;
    }
}

void lb__stamp_matrix(int kind, int64_t n, float *T)
{
    memset(T, 0, sizeof(float) * (size_t)(n * n));
    if (kind == LB__STAMP_DCT) {
        for (int64_t k = 0; k < n; k++) {
            double s = k ? sqrt(2.0 / (double)n) : sqrt(1.0 / (double)n);
            for (int64_t t = 0; t < n; t++)
                T[k * n + t] = (float)(s * cos(M_PI * (double)((2 * t + 1) * k % (4 * n)) / (double)(2 * n)));
        }
    } else if (kind == LB__STAMP_HAAR) {
        double *e = lb__alloc(sizeof(double) * (size_t)n * 2);
        LB_ASSERT(e);
        for (int64_t t = 0; t < n; t++) {   /* column t = transform of the unit vector e_t */
            memset(e, 0, sizeof(double) * (size_t)n);
            e[t] = 1;
            haar(e, n, e + n);
            for (int64_t k = 0; k < n; k++) T[k * n + t] = (float)e[k];
        }
        LB_FREE(e);
    } else
        for (int64_t k = 0; k < n; k++) T[k * n + k] = 1;
}

int64_t lb__stamp_rows8(const lb__stamp *st, const lb_format *low, int64_t n)
{
    int b = lb_elem_bits(low->elem);
    int64_t k = (int64_t)floor((double)n * (st->avg - b) / (8 - b) + 1e-9);
    return lb__min64(n, lb__max64(0, k));
}

typedef struct stamp_job {
    const float *T, *src;   /* out row k = sum_t T[k*n+t] src row t (trans: T[t*n+k]) */
    float *dst;
    int64_t n, cols;
    bool trans;
    /* quantization */
    const lb_format *low, *high;
    const uint8_t *hi;      /* per row: 1 when int8 */
    uint8_t *buf;
    size_t bufs;
} stamp_job;

static void mix_task(void *ctx, int64_t b, int64_t e, int thread)
{
    const stamp_job *j = ctx;
    for (int64_t k = b; k < e; k++) {
        float *d = j->dst + k * j->cols;
        memset(d, 0, sizeof(float) * (size_t)j->cols);
        for (int64_t t = 0; t < j->n; t++) {
            float c = j->trans ? j->T[t * j->n + k] : j->T[k * j->n + t];
            if (c == 0) continue;
            const float *s = j->src + t * j->cols;
            for (int64_t i = 0; i < j->cols; i++) d[i] = fmaf(c, s[i], d[i]);
        }
    }
}

static void quant_task(void *ctx, int64_t b, int64_t e, int thread)
{
    const stamp_job *j = ctx;
    for (int64_t k = b; k < e; k++)
        lb__act_qdq(j->hi[k] ? j->high : j->low, j->dst + k * j->cols, 1, j->cols, j->buf + (size_t)k * j->bufs);
}

void lb__stamp_qdq(const lb__stamp *st, const lb_format *low, float *x, int64_t nt, int64_t cols, float *z, float *T,
                   int64_t *tn, int *tkind, uint8_t *buf, size_t bufs, lb_pool *pool)
{
    const lb_format *high = lb_format_find("int8_g32");
    uint8_t hi[LB__STAMP_SEG];
    int64_t order[LB__STAMP_SEG];
    double en[LB__STAMP_SEG];
    int64_t grain = lb__max64(1, 4096 / lb__max64(1, cols));
    for (int64_t s0 = 0; s0 < nt; s0 += LB__STAMP_SEG) {
        int64_t n = lb__min64(LB__STAMP_SEG, nt - s0);
        float *xs = x + s0 * cols;
        if (*tn != n || *tkind != st->kind) {
            lb__stamp_matrix(st->kind, n, T);
            *tn = n;
            *tkind = st->kind;
        }
        stamp_job j = {.T = T, .src = xs, .dst = z, .n = n, .cols = cols, .low = low, .high = high, .hi = hi,
                       .buf = buf, .bufs = bufs};
        lb_pool_for(pool, n, grain, mix_task, &j);
        /* the k8 rows of most energy (ties: the lower index) go to 8 bits */
        for (int64_t k = 0; k < n; k++) {
            double e = 0;
            for (int64_t i = 0; i < cols; i++) e += (double)z[k * cols + i] * z[k * cols + i];
            en[k] = e;
            order[k] = k;
            hi[k] = 0;
        }
        int64_t k8 = lb__stamp_rows8(st, low, n);
        for (int64_t a = 0; a < k8; a++) {   /* partial selection sort: k8 is small */
            int64_t best = a;
            for (int64_t b = a + 1; b < n; b++)
                if (en[order[b]] > en[order[best]] || (en[order[b]] == en[order[best]] && order[b] < order[best]))
                    best = b;
            int64_t tmp = order[a]; order[a] = order[best]; order[best] = tmp;
            hi[order[a]] = 1;
        }
        lb_pool_for(pool, n, grain, quant_task, &j);
        stamp_job inv = j;
        inv.src = z;
        inv.dst = xs;
        inv.trans = true;
        lb_pool_for(pool, n, grain, mix_task, &inv);
    }
}
