/* fuzz_packed.c: files written by `lowbit pack` (safetensors whose tensors
 * are lossless BF16 blobs, described by the "lowbit.lossless" metadata)
 * through the public API only: the input is written to a file, described
 * with lb_inspect and unpacked with lb_lossless_unpack_model (every table
 * entry, blob, stream and CRC checked, every value decoded). Packed model
 * folders are fuzz_hf_folder's. Seeds: build/fuzz-corpus/fuzz_packed. */
#include "fuzz_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[256], out[256];
    fuzz_path(in, sizeof in, "p.safetensors");
    fuzz_path(out, sizeof out, "u.safetensors");
    fuzz_write(in, data, size);
    fuzz_inspect(in, (int)(size & 1));
    lb_lossless_report rep;
    lb_lossless_unpack_model(in, out, NULL, NULL, NULL, &rep);
    unlink(out);
    return 0;
}

static const char *const fuzz_seeds[] = {"$CORPUS/fuzz_packed"};
#define FUZZ_DEFAULT_ITERS 600
#include "fuzz_main.h"
