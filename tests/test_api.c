/* test_api: every public entry point given NULL for a required pointer
 * returns LB_ERR_ARG with a message that starts with its own name, and the
 * calls that return a value or nothing give the result lowbit.h documents
 * for NULL (docs/api.md "NULL arguments"). Out-parameters are cleared first. */
#include "harness.h"

/* `text` is the call as written ("lb_forward(NULL, tok, 1, NULL)"): the
 * function name is what stands before the first '('. */
static void null_arg(const char *text, lb_status s)
{
    size_t n = strcspn(text, "(");
    const char *msg = lb_errmsg();
    CHECK(s == LB_ERR_ARG, "%s returned %d (%s), not LB_ERR_ARG", text, (int)s, lb_status_str(s));
    CHECK(!strncmp(msg, text, n) && msg[n] == ':', "%s: message '%s' does not start with '%.*s:'", text, msg,
          (int)n, text);
}
/* Evaluates the call before null_arg reads lb_errmsg(). */
#define NULL_ARG(call) null_arg(#call, (call))

static float x32[32], y32[32];
static uint8_t packed[64];

/* Calls that need no model or tokenizer. */
static void test_null_status(void)
{
    char buf[256];
    int n_rm = 7;
    float ts;
    lb_quant_error e;
    lb_pool *pool = NULL;
    const lb_format *f = lb_format_find("mxfp4"), *nv = lb_format_find("nvfp4"), *fo = f;
    const lb_quantizer *q = lb_quantizer_find("rtn");
    REQUIRE(f && nv && q, "mxfp4, nvfp4 or rtn missing");
    uint16_t bf[8] = {0x3f80, 0x4000, 0x4040, 0x4080, 0xbf80, 0, 1, 2}, out8[8];
    lb_bf16_packed *p = NULL;
    REQUIRE(lb_bf16_pack(bf, 8, "t", NULL, NULL, &p) == LB_OK, "%s", lb_errmsg());
    lb_qmatrix qm;
    REQUIRE(lb_quantize_matrix(q, f, NULL, x32, 1, 32, &qm) == LB_OK, "%s", lb_errmsg());
    lb_synth_opts so;
    lb_sampler_opts sp = {0, 1, 0};
    lb_sampler *smp = NULL;

    NULL_ARG(lb_temp_path(NULL, 1, buf, sizeof buf));
    NULL_ARG(lb_temp_path("a/b", 1, NULL, sizeof buf));
    NULL_ARG(lb_temp_clean(NULL, &n_rm));
    CHECK(n_rm == 0, "lb_temp_clean left *n_removed = %d", n_rm);
    NULL_ARG(lb_pool_create(1, NULL));

    NULL_ARG(lb_format_quantize(NULL, NULL, x32, 1, 32, packed, &ts));
    NULL_ARG(lb_format_quantize(f, NULL, NULL, 1, 32, packed, &ts));
    NULL_ARG(lb_format_quantize(f, NULL, x32, 1, 32, NULL, &ts));
    NULL_ARG(lb_format_quantize(nv, NULL, x32, 1, 32, packed, NULL));
    NULL_ARG(lb_format_dequantize(NULL, packed, 1, 1, 32, y32));
    NULL_ARG(lb_format_dequantize(f, NULL, 1, 1, 32, y32));
    NULL_ARG(lb_format_dequantize(f, packed, 1, 1, 32, NULL));
    NULL_ARG(lb_format_error(NULL, NULL, x32, 1, 32, &e));
    NULL_ARG(lb_format_error(f, NULL, NULL, 1, 32, &e));
    NULL_ARG(lb_format_error(f, NULL, x32, 1, 32, NULL));
    NULL_ARG(lb_format_quantize_file(NULL, NULL, "in", 0, "out"));
    NULL_ARG(lb_format_quantize_file(f, NULL, NULL, 0, "out"));
    NULL_ARG(lb_format_quantize_file(f, NULL, "in", 0, NULL));
    NULL_ARG(lb_format_dequantize_file(NULL, "in", "out"));
    NULL_ARG(lb_format_dequantize_file(f, NULL, "out"));
    NULL_ARG(lb_format_dequantize_file(f, "in", NULL));

    NULL_ARG(lb_hadamard_plan_for(8, 0, NULL));
    NULL_ARG(lb_hadamard(NULL, 8));
    NULL_ARG(lb_hadamard_inverse(NULL, 8));
    NULL_ARG(lb_hadamard_signs(1, 8, NULL));
    NULL_ARG(lb_hadamard_rows(NULL, 1, 8, 0, NULL, 0));
    NULL_ARG(lb_hadamard_cols(NULL, 8, 1, 0, NULL, 0));

    NULL_ARG(lb_model_load(NULL, &(lb_model *){0}));
    NULL_ARG(lb_model_load("x.bin", NULL));
    NULL_ARG(lb_synth_preset("stories110m", NULL));
    REQUIRE(lb_synth_preset(NULL, &so) == LB_OK, "%s", lb_errmsg());
    NULL_ARG(lb_synth_write(NULL, &so, NULL, NULL));
    NULL_ARG(lb_synth_write("dir", NULL, NULL, NULL));
    NULL_ARG(lb_inspect(NULL, 0, &(char *){0}));
    NULL_ARG(lb_inspect("x.bin", 0, NULL));
    NULL_ARG(lb_tokenizer_load(NULL, &(lb_tokenizer *){0}));
    NULL_ARG(lb_tokenizer_load("tok.bin", NULL));
    NULL_ARG(lb_tokenizer_encode(NULL, "a", 1, 0, &(int32_t *){0}, &(int64_t){0}));
    NULL_ARG(lb_tokenizer_decode(NULL, (int32_t[]){1}, 1, &(char *){0}, NULL));
    NULL_ARG(lb_tokenizer_piece(NULL, -1, 1, buf, sizeof buf, &(const char *){0}, &(size_t){0}));
    NULL_ARG(lb_tokenizer_find(NULL, buf, sizeof buf));
    NULL_ARG(lb_tokenizer_find("x.bin", NULL, sizeof buf));
    NULL_ARG(lb_session_create(NULL, NULL, &(lb_session *){0}));
    NULL_ARG(lb_session_create(NULL, NULL, NULL));
    NULL_ARG(lb_forward(NULL, (int32_t[]){1}, 1, NULL));
    NULL_ARG(lb_forward_all(NULL, (int32_t[]){1}, 1, y32));
    NULL_ARG(lb_sampler_create(10, NULL, &smp));
    NULL_ARG(lb_sampler_create(10, &sp, NULL));

    NULL_ARG(lb_eval_ppl(NULL, (int32_t[]){1}, 1, &(lb_ppl_opts){0}, &(lb_ppl_result){0}));
    NULL_ARG(lb_eval_kld(NULL, "base", NULL, &(lb_kld_result){0}));
    NULL_ARG(lb_format_roundtrip(NULL, NULL, x32, 1, 32, 0, NULL, y32));
    NULL_ARG(lb_format_roundtrip(f, NULL, NULL, 1, 32, 0, NULL, y32));
    NULL_ARG(lb_format_roundtrip(f, NULL, x32, 1, 32, 0, NULL, NULL));
    NULL_ARG(lb_formats_study_run(NULL, NULL));
    double qs = 1, cov = 1;
    NULL_ARG(lb_formats_study_qsnr(NULL, "gauss", "mxfp4", 0, &qs, &cov));
    CHECK(isnan(qs) && cov == 0, "lb_formats_study_qsnr left %g, %g", qs, cov);
    NULL_ARG(lb_formats_study_report(NULL, LB_REPORT_JSON, &(char *){0}, NULL));
    NULL_ARG(lb_formats_study_report(NULL, LB_REPORT_JSON, NULL, NULL));

    NULL_ARG(lb_bf16_pack(NULL, 8, "t", NULL, NULL, &(lb_bf16_packed *){0}));
    NULL_ARG(lb_bf16_pack(bf, 8, "t", NULL, NULL, NULL));
    NULL_ARG(lb_bf16_unpack(NULL, out8, pool));
    NULL_ARG(lb_bf16_unpack(p, NULL, pool));
    NULL_ARG(lb_bf16_unpack_streams(NULL, 0, 1, out8, 0, pool));
    NULL_ARG(lb_bf16_unpack_streams(p, 0, 1, NULL, 0, pool));
    NULL_ARG(lb_bf16_unpack_range(NULL, 0, 8, out8, 0, pool));
    NULL_ARG(lb_bf16_unpack_range(p, 0, 8, NULL, 0, pool));
    NULL_ARG(lb_bf16_packed_write(NULL, buf, sizeof buf));
    NULL_ARG(lb_bf16_packed_write(p, NULL, sizeof buf));
    NULL_ARG(lb_bf16_packed_read(NULL, 64, "t", 0, &(lb_bf16_packed *){0}));
    NULL_ARG(lb_bf16_packed_read(buf, sizeof buf, "t", 0, NULL));
    lb_lossless_report rep = {.n_files = 5};
    NULL_ARG(lb_lossless_pack_model(NULL, "out", NULL, pool, NULL, NULL, &rep));
    CHECK(rep.n_files == 0, "lb_lossless_pack_model did not clear the report");
    NULL_ARG(lb_lossless_pack_model("in", NULL, NULL, pool, NULL, NULL, NULL));
    NULL_ARG(lb_lossless_unpack_model(NULL, "out", pool, NULL, NULL, NULL));
    NULL_ARG(lb_lossless_unpack_model("in", NULL, pool, NULL, NULL, NULL));

    NULL_ARG(lb_quant_format_resolve(NULL, 0, &fo));
    CHECK(fo == NULL, "lb_quant_format_resolve left *out set");
    NULL_ARG(lb_quant_format_resolve("mxfp4", 0, NULL));
    lb_qmatrix qm2;
    NULL_ARG(lb_quantize_matrix(NULL, f, NULL, x32, 1, 32, &qm2));
    NULL_ARG(lb_quantize_matrix(q, NULL, NULL, x32, 1, 32, &qm2));
    NULL_ARG(lb_quantize_matrix(q, f, NULL, NULL, 1, 32, &qm2));
    NULL_ARG(lb_quantize_matrix(q, f, NULL, x32, 1, 32, NULL));
    NULL_ARG(lb_qmatrix_dequantize(NULL, y32));
    NULL_ARG(lb_qmatrix_dequantize(&qm, NULL));
    lb_model_quant_opts mq = {.format = "mxfp4"};
    NULL_ARG(lb_model_quantize(NULL, &mq, &(lb_model *){0}, NULL));
    NULL_ARG(lb_model_quantize(NULL, &mq, NULL, NULL));
    NULL_ARG(lb_model_save(NULL, "out"));
    lb_quant_layer_error *le = (void *)buf;
    int64_t n_le = 3, rows = 3, cols = 3;
    NULL_ARG(lb_quant_layer_errors(NULL, NULL, (int32_t[]){1}, 1, &le, &n_le));
    CHECK(le == NULL && n_le == 0, "lb_quant_layer_errors did not clear its outputs");
    NULL_ARG(lb_model_weight_f32(NULL, "model.norm.weight", y32, &rows, &cols));
    CHECK(rows == 0 && cols == 0, "lb_model_weight_f32 did not clear rows, cols");

    lb_qmatrix_free(&qm);
    lb_bf16_packed_free(p);
}

/* Calls with a NULL after a valid model, tokenizer or session. */
static void test_null_status_model(void)
{
    char path[512], tpath[512], buf[64];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", test_models_dir());
    snprintf(tpath, sizeof tpath, "%s/stories260K/tok512.bin", test_models_dir());
    if (!test_file_exists(path) || !test_file_exists(tpath)) SKIP("%s or %s absent", path, tpath);
    lb_model *m = NULL;
    lb_tokenizer *t = NULL;
    lb_session *s = NULL;
    REQUIRE(lb_model_load(path, &m) == LB_OK, "%s", lb_errmsg());
    REQUIRE(lb_tokenizer_load(tpath, &t) == LB_OK, "%s", lb_errmsg());
    REQUIRE(lb_session_create(m, &(lb_session_opts){1, 16, 4, NULL}, &s) == LB_OK, "%s", lb_errmsg());
    int32_t *ids = (int32_t *)buf, tok[2] = {1, 2};
    int64_t n_ids = 5;
    char *text = buf;
    size_t len = 5;
    const char *piece = buf;
    float logits[512];

    NULL_ARG(lb_tokenizer_encode(t, NULL, 1, 0, &ids, &n_ids));
    NULL_ARG(lb_tokenizer_encode(t, "a", 1, 0, NULL, &n_ids));
    CHECK(n_ids == 0, "lb_tokenizer_encode did not clear *n_ids");
    NULL_ARG(lb_tokenizer_encode(t, "a", 1, 0, &ids, NULL));
    CHECK(ids == NULL, "lb_tokenizer_encode did not clear *ids");
    NULL_ARG(lb_tokenizer_decode(t, NULL, 1, &text, &len));
    CHECK(text == NULL && len == 0, "lb_tokenizer_decode did not clear its outputs");
    NULL_ARG(lb_tokenizer_decode(t, tok, 2, NULL, NULL));
    NULL_ARG(lb_tokenizer_piece(t, -1, 1, buf, sizeof buf, NULL, &len));
    NULL_ARG(lb_tokenizer_piece(t, -1, 1, buf, sizeof buf, &piece, NULL));
    CHECK(piece && !*piece, "lb_tokenizer_piece did not clear *piece");
    NULL_ARG(lb_forward(s, NULL, 1, logits));
    NULL_ARG(lb_forward_all(s, NULL, 1, logits));
    NULL_ARG(lb_forward_all(s, tok, 1, NULL));
    CHECK(lb_session_pos(s) == 0, "a refused forward moved the session to %lld", (long long)lb_session_pos(s));

    lb_ppl_opts po = {.ctx = 8};
    lb_ppl_result pr;
    NULL_ARG(lb_eval_ppl(m, NULL, 16, &po, &pr));
    NULL_ARG(lb_eval_ppl(m, tok, 2, NULL, &pr));
    NULL_ARG(lb_eval_ppl(m, tok, 2, &po, NULL));
    lb_kld_result kr;
    NULL_ARG(lb_eval_kld(m, NULL, NULL, &kr));
    NULL_ARG(lb_eval_kld(m, "base", NULL, NULL));
    NULL_ARG(lb_model_quantize(m, NULL, &(lb_model *){0}, NULL));
    NULL_ARG(lb_model_save(m, NULL));
    lb_quant_layer_error *le;
    int64_t n_le;
    NULL_ARG(lb_quant_layer_errors(m, NULL, tok, 2, &le, &n_le));
    NULL_ARG(lb_quant_layer_errors(m, m, NULL, 2, &le, &n_le));
    NULL_ARG(lb_quant_layer_errors(m, m, tok, 2, NULL, &n_le));
    NULL_ARG(lb_quant_layer_errors(m, m, tok, 2, &le, NULL));
    NULL_ARG(lb_model_weight_f32(m, NULL, NULL, NULL, NULL));

    lb_model_info info = {.dim = 5};
    lb_model_get_info(m, NULL);
    lb_model_get_info(NULL, &info);
    CHECK(info.dim == 0 && info.arch[0] == 0, "lb_model_get_info(NULL) did not zero the info");
    lb_sampler *smp = NULL;
    REQUIRE(lb_sampler_create(512, &(lb_sampler_opts){0, 1, 0}, &smp) == LB_OK, "%s", lb_errmsg());
    CHECK(lb_sample(smp, NULL) == -1, "lb_sample(s, NULL) != -1");
    lb_sampler_free(smp);
    lb_session_free(s);
    lb_tokenizer_free(t);
    lb_model_free(m);
}

/* Calls that return a value or nothing: the documented result for NULL. */
static void test_null_values(void)
{
    lb_quant_error e = {1, 1, 1};
    lb_bf16_packed_info pi = {.n = 9};
    int64_t orders[4];
    lb_pool_for(NULL, 10, 1, NULL, NULL);
    CHECK(lb_pool_threads(NULL) == 1, "lb_pool_threads(NULL)");
    lb_rng_seed(NULL, 1);
    CHECK(lb_rng_u64(NULL) == 0 && lb_rng_uniform(NULL) == 0 && lb_rng_normal(NULL) == 0, "lb_rng_*(NULL) != 0");
    lb_f32_to_bf16_row(NULL, NULL, 4);
    lb_bf16_to_f32_row(NULL, NULL, 4);
    lb_f32_to_f16_row(NULL, NULL, 4);
    lb_f16_to_f32_row(NULL, NULL, 4);
    CHECK(lb_format_find(NULL) == NULL && lb_quantizer_find(NULL) == NULL, "find(NULL) != NULL");
    CHECK(!strcmp(lb_format_name(NULL), "") && !strcmp(lb_format_describe(NULL), ""), "lb_format_name(NULL)");
    CHECK(lb_format_block(NULL) == 0 && lb_format_bits_per_weight(NULL) == 0 && lb_format_row_bytes(NULL, 32) == 0 &&
          lb_format_uses_tensor_scale(NULL) == 0, "lb_format_*(NULL) != 0");
    CHECK(isnan(lb_format_dot(NULL, packed, 1, x32, 32)), "lb_format_dot(NULL) is not NaN");
    CHECK(isnan(lb_format_dot(lb_format_find("mxfp4"), NULL, 1, x32, 32)), "lb_format_dot(f, NULL) is not NaN");
    lb_quant_error_between(NULL, y32, 32, &e);
    CHECK(isnan(e.mse) && isnan(e.qsnr_db) && isnan(e.max_abs), "lb_quant_error_between(NULL) is not NaN");
    lb_quant_error_between(x32, y32, 32, NULL);
    CHECK(lb_hadamard_small_orders(NULL, 4) == lb_hadamard_small_orders(orders, 4), "lb_hadamard_small_orders(NULL)");
    CHECK(lb_tokenizer_vocab_size(NULL) == 0 && lb_tokenizer_bos(NULL) == -1 && lb_tokenizer_eos(NULL) == -1,
          "lb_tokenizer_*(NULL)");
    lb_session_reset(NULL);
    CHECK(lb_session_pos(NULL) == 0 && lb_session_max_ctx(NULL) == 0, "lb_session_*(NULL) != 0");
    CHECK(lb_sample(NULL, y32) == -1, "lb_sample(NULL) != -1");
    CHECK(lb_eval_text_hash(NULL, 5) == lb_eval_text_hash("", 0), "lb_eval_text_hash(NULL) != hash of \"\"");
    lb_bf16_packed_get_info(NULL, &pi);
    CHECK(pi.n == 0 && pi.name && !*pi.name, "lb_bf16_packed_get_info(NULL) did not clear the info");
    lb_bf16_packed_get_info(NULL, NULL);
    CHECK(lb_bf16_packed_blob_size(NULL) == 0, "lb_bf16_packed_blob_size(NULL) != 0");
    CHECK(!strcmp(lb_quantizer_name(NULL), "") && !strcmp(lb_quantizer_describe(NULL), ""), "lb_quantizer_name(NULL)");
    lb_set_log(NULL, NULL);
    lb_pool_free(NULL);
    lb_model_free(NULL);
    lb_tokenizer_free(NULL);
    lb_session_free(NULL);
    lb_sampler_free(NULL);
    lb_formats_study_free(NULL);
    lb_bf16_packed_free(NULL);
    lb_qmatrix_free(NULL);
    lb_quant_report_free(NULL);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    for (int i = 0; i < 32; i++) x32[i] = (float)(i % 7) - 3.0f;
    RUN(test_null_status);
    RUN(test_null_status_model);
    RUN(test_null_values);
    return TEST_DONE();
}
