/* pool.c: a fixed pthread pool running one parallel-for at a time.
 * [0, n) is cut into at most n_threads contiguous chunks (rounded to `grain`);
 * chunk i always goes to worker i, so every output element is computed by the
 * same code on the same data whatever the thread count: reductions inside a
 * chunk never cross chunk borders, which keeps results thread-count
 * independent as long as kernels reduce within one output row. */
#include "core/core.h"
#include <pthread.h>
#include <unistd.h>

struct lb_pool {
    int n;                       /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t gen;                /* bumped for each job */
    int pending;                 /* workers still running the job */
    bool quit;
    lb_task_fn fn;
    void *ctx;
    int64_t n_items, chunk;
};

static void run_chunk(lb_pool *p, int i)
{
    int64_t b = (int64_t)i * p->chunk, e = lb__min64(b + p->chunk, p->n_items);
    if (b < e) p->fn(p->ctx, b, e, i);
}

typedef struct { lb_pool *p; int id; } worker_arg;

static void *worker(void *arg)
{
    worker_arg *wa = arg;
    lb_pool *p = wa->p;
    int id = wa->id;
    LB_FREE(wa);
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->quit) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) { pthread_mutex_unlock(&p->mu); return NULL; }
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        run_chunk(p, id);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

lb_status lb_pool_create(int n_threads, lb_pool **out)
{
    *out = NULL;
    if (n_threads <= 0) n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads <= 0) n_threads = 1;
    if (n_threads > 1024) return lb__err(LB_ERR_ARG, "thread count %d is absurd (max 1024)", n_threads);
    lb_pool *p = lb__zalloc(sizeof *p);
    if (!p) return LB_ERR_NOMEM;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->th = lb__zalloc(sizeof(pthread_t) * (size_t)n_threads);
    if (!p->th) { LB_FREE(p); return LB_ERR_NOMEM; }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = lb__alloc(sizeof *wa);
        if (wa) { wa->p = p; wa->id = i; }
        if (!wa || pthread_create(&p->th[i], NULL, worker, wa) != 0) {
            LB_FREE(wa);
            p->n = i;
            lb_pool_free(p);
            return lb__err(LB_ERR_NOMEM, "could not start thread %d", i);
        }
    }
    *out = p;
    return LB_OK;
}

void lb_pool_free(lb_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    LB_FREE(p->th);
    LB_FREE(p);
}

int lb_pool_threads(const lb_pool *p) { return p ? p->n : 1; }

void lb_pool_for(lb_pool *p, int64_t n, int64_t grain, lb_task_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t nt = p ? p->n : 1;
    int64_t chunk = (n + nt - 1) / nt;
    chunk = (chunk + grain - 1) / grain * grain;
    if (!p || p->n == 1 || chunk >= n) { fn(ctx, 0, n, 0); return; }
    pthread_mutex_lock(&p->mu);
    p->fn = fn; p->ctx = ctx; p->n_items = n; p->chunk = chunk;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    run_chunk(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
