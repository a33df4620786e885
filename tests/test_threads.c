/* test_threads: the sharing rules of lowbit.h, checked from real threads
 * (and race-free under `make tsan`): one lb_model run by two sessions on two
 * threads at once gives logits bit-identical to one session on one thread; a
 * tokenizer shared by two threads encodes and decodes as on one; lb_errmsg()
 * is per thread. */
#include "harness.h"
#include <pthread.h>
#include <time.h>

enum { N_PROMPT = 24, N_GEN = 8 };

typedef struct run {
    const lb_model *m;
    int n_threads;
    int64_t vocab;
    float *logits;        /* (N_PROMPT + N_GEN, vocab): every position's logits */
    lb_status status;
} run;

/* Prefill N_PROMPT fixed tokens, then N_GEN greedy decode steps. */
static void *run_session(void *arg)
{
    run *r = arg;
    lb_session *s = NULL;
    r->status = lb_session_create(r->m, &(lb_session_opts){r->n_threads, 64, 8, NULL}, &s);
    if (r->status) return NULL;
    int32_t tok[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++) tok[i] = (int32_t)(1 + (i * 37) % (r->vocab - 1));
    r->status = lb_forward_all(s, tok, N_PROMPT, r->logits);
    for (int g = 0; g < N_GEN && !r->status; g++) {
        const float *last = r->logits + (N_PROMPT - 1 + g) * r->vocab;
        int32_t next = 0;
        for (int64_t v = 1; v < r->vocab; v++)
            if (last[v] > last[next]) next = (int32_t)v;
        r->status = lb_forward(s, &next, 1, r->logits + (N_PROMPT + g) * r->vocab);
    }
    lb_session_free(s);
    return NULL;
}

static void test_two_sessions_one_model(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", test_models_dir());
    if (!test_file_exists(path)) SKIP("%s absent", path);
    lb_model *m = NULL;
    REQUIRE(lb_model_load(path, &m) == LB_OK, "%s", lb_errmsg());
    lb_model_info info;
    lb_model_get_info(m, &info);
    size_t n = (size_t)(N_PROMPT + N_GEN) * (size_t)info.vocab_size;
    run ref = {m, 1, info.vocab_size, calloc(n, sizeof(float)), LB_OK}, r[2];
    run_session(&ref);
    CHECK(ref.status == LB_OK, "reference run: %s", lb_errmsg());
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        r[i] = (run){m, 2, info.vocab_size, calloc(n, sizeof(float)), LB_OK};
        CHECK(pthread_create(&th[i], NULL, run_session, &r[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK(r[i].status == LB_OK, "thread %d: status %d", i, (int)r[i].status);
        CHECK(!memcmp(r[i].logits, ref.logits, n * sizeof(float)), "thread %d: logits differ from one thread's", i);
        free(r[i].logits);
    }
    free(ref.logits);
    lb_model_free(m);
}

typedef struct tok_run {
    const lb_tokenizer *t;
    const char *text;
    int32_t *ids;
    int64_t n_ids;
    char *back;
    lb_status status;
} tok_run;

static void *run_tokenizer(void *arg)
{
    tok_run *r = arg;
    r->status = lb_tokenizer_encode(r->t, r->text, strlen(r->text), 1, &r->ids, &r->n_ids);
    if (!r->status) r->status = lb_tokenizer_decode(r->t, r->ids, r->n_ids, &r->back, NULL);
    return NULL;
}

/* One tokenizer shared by two threads: the same ids and text as one thread. */
static void check_shared_tokenizer(const char *path)
{
    static const char text[] = "Once upon a time, there was a little girl named Lily. She liked to play outside "
                               "in the park with her friends, 123 times!";
    lb_tokenizer *t = NULL;
    REQUIRE(lb_tokenizer_load(path, &t) == LB_OK, "%s", lb_errmsg());
    tok_run ref = {t, text, NULL, 0, NULL, LB_OK}, r[2];
    run_tokenizer(&ref);
    CHECK(ref.status == LB_OK, "%s: %s", path, lb_errmsg());
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        r[i] = (tok_run){t, text, NULL, 0, NULL, LB_OK};
        CHECK(pthread_create(&th[i], NULL, run_tokenizer, &r[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK(r[i].status == LB_OK && r[i].n_ids == ref.n_ids &&
                  !memcmp(r[i].ids, ref.ids, (size_t)ref.n_ids * sizeof(int32_t)) && !strcmp(r[i].back, ref.back),
              "%s: thread %d encodes or decodes differently", path, i);
        free(r[i].ids);
        free(r[i].back);
    }
    free(ref.ids);
    free(ref.back);
    lb_tokenizer_free(t);
}

static void test_shared_tokenizer(void)
{
    static const char *const rel[] = {"stories260K/tok512.bin", "tinystories-656k/tokenizer.json"};
    int found = 0;
    for (int k = 0; k < 2; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", test_models_dir(), rel[k]);
        if (!test_file_exists(path)) continue;
        found++;
        check_shared_tokenizer(path);
    }
    if (!found) SKIP("no tokenizer under %s", test_models_dir());
}

typedef struct pool_job { int64_t *out; int64_t job; } pool_job;

static void pool_task(void *ctx, int64_t begin, int64_t end, int thread)
{
    pool_job *j = ctx;
    for (int64_t i = begin; i < end; i++) j->out[i] = j->job * 1000 + i;
}

/* Many parallel-fors back to back (workers spinning) and after pauses
 * (workers asleep): every element written by its job, nothing lost. The
 * small models above never split their matmuls, so this is the pool's
 * check under TSan. */
static void test_pool_handoff(void)
{
    enum { N = 64, JOBS = 3000 };
    lb_pool *p = NULL;
    REQUIRE(lb_pool_create(4, &p) == LB_OK, "%s", lb_errmsg());
    int64_t out[N];
    int bad = 0;
    for (int64_t job = 0; job < JOBS; job++) {
        if (job % 500 == 499) nanosleep(&(struct timespec){0, 2000000}, NULL);
        pool_job j = {out, job};
        lb_pool_for(p, N, 1, pool_task, &j);
        for (int64_t i = 0; i < N; i++) bad += out[i] != job * 1000 + i;
    }
    CHECK(bad == 0, "%d elements not written by their job", bad);
    lb_pool_free(p);
}

static void *fail_on_thread(void *arg)
{
    lb_hadamard(NULL, 8);
    snprintf(arg, 256, "%s", lb_errmsg());
    return NULL;
}

/* An error on one thread leaves another thread's lb_errmsg() alone. */
static void test_errmsg_per_thread(void)
{
    char theirs[256] = "";
    lb_hadamard_signs(1, 8, NULL);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, fail_on_thread, theirs) == 0, "pthread_create");
    pthread_join(th, NULL);
    CHECK(!strncmp(lb_errmsg(), "lb_hadamard_signs:", 18), "main thread's message became '%s'", lb_errmsg());
    CHECK(!strncmp(theirs, "lb_hadamard:", 12), "the other thread saw '%s'", theirs);
}

int main(int argc, char **argv)
{
    TEST_INIT(argc, argv);
    RUN(test_two_sessions_one_model);
    RUN(test_shared_tokenizer);
    RUN(test_pool_handoff);
    RUN(test_errmsg_per_thread);
    return TEST_DONE();
}
