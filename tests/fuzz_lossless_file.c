/* fuzz_lossless_file.c: the packed-model metadata ("lowbit.lossless") and
 * tensor checks. Each input's first bytes become a small BF16 tensor; it is
 * packed into a one-tensor packed safetensors file built here in memory,
 * which is then damaged in ways derived from the input (header JSON bytes
 * included) and read back the way the loader and `lowbit unpack` do:
 * safetensors parse, table entry, blob read, decode. Errors are fine;
 * crashes and sanitizer reports are not. */
#include "lossless/lossless.h"
#include <stdlib.h>
#include <string.h>

/* Returns how many tensors decoded completely. */
static int check_file(const uint8_t *file, size_t n)
{
    lb_st_file f;
    int ok = 0;
    if (lb__st_parse(file, n, "fuzz.safetensors", &f)) return 0;
    for (int64_t i = 0; lb__lossless_file(&f) && i < f.n_tensors; i++) {
        const lb_st_tensor *t = &f.tensors[i];
        int ndim;
        int64_t shape[LB_ST_MAX_DIMS], numel;
        if (lb__lossless_entry(&f, t, &ndim, shape, &numel)) continue;
        lb_bf16_packed *p = NULL;
        if (lb_bf16_packed_read(t->data, (size_t)(t->end - t->begin), t->name, LB_PACKED_BORROW, &p) == LB_OK &&
            p->n == numel) {
            uint16_t *y = malloc(sizeof *y * (size_t)(numel + 1));
            ok += y && lb_bf16_unpack(p, y, NULL) == LB_OK;
            free(y);
        }
        lb_bf16_packed_free(p);
    }
    lb__st_close(&f);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t n = (int64_t)(size < 512 ? size : 512) / 2, rows = n >= 4 ? 2 : 1;
    n -= n % rows;
    uint16_t x[256];
    if (n) memcpy(x, data, (size_t)n * 2);
    lb_bf16_pack_opts o = {.stream_len = 16};
    lb_bf16_packed *p;
    if (lb_bf16_pack(x, n, "w", &o, NULL, &p)) abort();
    size_t bs = lb_bf16_packed_blob_size(p);
    char hdr[512];
    int hl = snprintf(hdr, sizeof hdr,
                      "{\"__metadata__\":{\"lowbit.format\":\"lossless-bf16\",\"lowbit.lossless\":\"{\\\"version\\\":1,"
                      "\\\"tensors\\\":{\\\"w\\\":{\\\"dtype\\\":\\\"BF16\\\",\\\"shape\\\":[%lld,%lld]}}}\"},"
                      "\"w\":{\"dtype\":\"U8\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}",
                      (long long)rows, (long long)(n / rows), bs, bs);
    size_t total = 8 + (size_t)hl + bs;
    uint8_t *file = malloc(total), *c = malloc(total);
    for (int i = 0; i < 8; i++) file[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(file + 8, hdr, (size_t)hl);
    lb_bf16_packed_write(p, file + 8 + hl, bs);
    lb_bf16_packed_free(p);
    if (check_file(file, total) != 1) abort();   /* the undamaged file must decode */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ull;
    for (int k = 0; k < 6; k++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        memcpy(c, file, total);
        size_t at = 8 + (size_t)(h >> 20) % (total - 8);
        if (k % 2 == 0 && hl) at = 8 + (size_t)(h >> 20) % (size_t)hl;   /* inside the JSON */
        c[at] = k % 3 == 0 ? (uint8_t)"0123456789[]{}\",:-"[(h >> 40) % 18] : (uint8_t)(c[at] ^ (1u << (h >> 8) % 8));
        check_file(c, total);
    }
    free(file);
    free(c);
    return 0;
}

static const char *const fuzz_seeds[] = {"$MODELS/stories260K/tok512.bin"};
#include "fuzz_main.h"
