/* huffman.c: length-limited canonical Huffman codes and their decode table.
 *
 * Lengths come from package-merge (Larmore & Hirschberg 1990), which gives
 * the optimal prefix code whose lengths are all <= cap. With the present
 * symbols sorted by weight, each level's list merges the leaves with the
 * packages (adjacent pairs) of the level below; taking the first 2m-2 items
 * of the top list, a leaf's code length is the number of levels at which it
 * is taken. At each level the taken leaves are a prefix of the sorted
 * leaves, so it is enough to count them.
 *
 * Codes are canonical: sorted by (length, symbol), each code is the previous
 * one plus one, shifted left when the length grows; so the lengths alone
 * describe the code. */
#include "lossless/lossless.h"

typedef struct { uint64_t w; int sym; } sym_weight;

static int cmp_weight(const void *a, const void *b)
{
    const sym_weight *x = a, *y = b;
    if (x->w != y->w) return x->w < y->w ? -1 : 1;
    return x->sym - y->sym;
}

/* Counts how many of the first `take` items of each level are leaves and
 * adds one to the length of that many lightest symbols. */
static void select_levels(const uint8_t *is_leaf, int stride, int cap, int m, const sym_weight *sw, uint8_t *len)
{
    int64_t take = 2 * (int64_t)m - 2;
    for (int lev = 1; lev <= cap && take > 0; lev++) {
        const uint8_t *leaf = is_leaf + (size_t)(lev - 1) * (size_t)stride;
        int64_t c = 0;
        for (int64_t k = 0; k < take; k++) c += leaf[k];
        for (int64_t i = 0; i < c; i++) len[sw[i].sym]++;
        take = 2 * (take - c);
    }
}

int lb__huff_lengths(const uint64_t *freq, int nsym, int cap, uint8_t *len)
{
    LB_ASSERT(nsym >= 0 && nsym <= 65536 && cap >= 1 && cap <= 32);
    memset(len, 0, (size_t)nsym);
    sym_weight *sw = LB_MALLOC(sizeof *sw * (size_t)(nsym ? nsym : 1));
    LB_ASSERT(sw);
    int m = 0;
    for (int i = 0; i < nsym; i++)
        if (freq[i]) sw[m++] = (sym_weight){freq[i], i};
    if (m <= 1) {
        if (m == 1) len[sw[0].sym] = 1;
        LB_FREE(sw);
        return m;
    }
    LB_ASSERT(cap >= 32 || ((int64_t)1 << cap) >= m);
    qsort(sw, (size_t)m, sizeof *sw, cmp_weight);
    int stride = 2 * m;
    uint64_t *cur = LB_MALLOC(sizeof(uint64_t) * (size_t)stride * 2);
    uint8_t *is_leaf = LB_MALLOC((size_t)stride * (size_t)cap);
    LB_ASSERT(cur && is_leaf);
    uint64_t *pk = cur + stride; /* packages handed up from the level below */
    int npk = 0;
    for (int lev = cap; lev >= 1; lev--) {
        uint8_t *leaf = is_leaf + (size_t)(lev - 1) * (size_t)stride;
        int i = 0, j = 0, k = 0;
        while (i < m || j < npk) {
            if (j >= npk || (i < m && sw[i].w <= pk[j])) { cur[k] = sw[i++].w; leaf[k++] = 1; }
            else { cur[k] = pk[j++]; leaf[k++] = 0; }
        }
        npk = k / 2;
        for (int t = 0; t < npk; t++) pk[t] = cur[2 * t] + cur[2 * t + 1];
    }
    select_levels(is_leaf, stride, cap, m, sw, len);
    LB_FREE(cur);
    LB_FREE(is_leaf);
    LB_FREE(sw);
    return m;
}

void lb__huff_codes(const uint8_t *len, int nsym, uint32_t *code)
{
    uint32_t next = 0;
    int prev = 0;
    for (int l = 1; l <= 32; l++) {
        for (int i = 0; i < nsym; i++) {
            if (len[i] != l) continue;
            next <<= (l - prev);
            prev = l;
            code[i] = next++;
        }
    }
    for (int i = 0; i < nsym; i++)
        if (!len[i]) code[i] = 0;
}

uint64_t lb__huff_kraft12(const uint8_t *len, int nsym)
{
    uint64_t k = 0;
    for (int i = 0; i < nsym; i++) {
        if (!len[i]) continue;
        if (len[i] > LB_HUFF_TABLE_BITS) return UINT64_MAX;
        k += (uint64_t)1 << (LB_HUFF_TABLE_BITS - len[i]);
    }
    return k;
}

void lb__huff_build_table(const uint8_t *len, uint64_t *table)
{
    enum { T = LB_HUFF_TABLE_BITS };
    uint32_t code[256];
    uint8_t sym1[LB_HUFF_TABLE_SIZE], len1[LB_HUFF_TABLE_SIZE];
    lb__huff_codes(len, 256, code);
    memset(len1, 0, sizeof len1);
    memset(sym1, 0, sizeof sym1);
    for (int s = 0; s < 256; s++) {
        if (!len[s]) continue;
        uint32_t base = code[s] << (T - len[s]), span = 1u << (T - len[s]);
        for (uint32_t j = 0; j < span; j++) { sym1[base + j] = (uint8_t)s; len1[base + j] = len[s]; }
    }
    for (uint32_t idx = 0; idx < LB_HUFF_TABLE_SIZE; idx++) {
        uint64_t e = 0;
        int used = 0, count = 0;
        while (count < LB_HUFF_MULTI) {
            uint32_t sub = (idx << used) & (LB_HUFF_TABLE_SIZE - 1);
            int l = len1[sub];
            if (l == 0 || used + l > T) break;
            e |= (uint64_t)sym1[sub] << (8 * count);
            count++;
            used += l;
        }
        int first = len1[idx];
        e = e << 8 | (uint64_t)used;
        e |= (uint64_t)(count | first << 3) << 56;
        table[idx] = e;
    }
}
