/* pool.c: a fixed pthread pool running one parallel-for at a time.
 * [0, n) is cut into at most n_threads contiguous chunks (rounded to `grain`);
 * chunk i always goes to worker i, so every output element is computed by the
 * same code on the same data whatever the thread count: reductions inside a
 * chunk never cross chunk borders, which keeps results thread-count
 * independent as long as kernels reduce within one output row.
 *
 * Hand-off: a decode step issues dozens of parallel-fors a few microseconds
 * apart, so a condition-variable wake per job (tens of microseconds on a VM)
 * would dominate. Workers therefore spin on the job counter for a short while
 * (SPIN_SECONDS) after each job before they sleep, and the caller spins on the
 * pending count. Sleeping workers are woken under the mutex, and a worker
 * re-checks the counter under the same mutex before it waits, so no wake-up is
 * lost. */
#include "core/core.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_SECONDS 100e-6

struct lb_pool {
    int n;                       /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t go;
    _Atomic uint64_t gen;        /* bumped for each job */
    _Atomic int pending;         /* workers still running the job */
    int sleeping;                /* workers waiting on `go` (under mu) */
    _Atomic bool quit;
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

/* Wait until the job counter moves past `seen` (or quit); spin, then sleep. */
static uint64_t wait_job(lb_pool *p, uint64_t seen)
{
    double t0 = 0;
    for (unsigned k = 0;; k++) {
        uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen || atomic_load(&p->quit)) return g;
        cpu_relax();
        if ((k & 255) == 0) {
            double t = lb_time_now();
            if (k == 0) t0 = t;
            else if (t - t0 > SPIN_SECONDS) break;
        }
    }
    pthread_mutex_lock(&p->mu);
    uint64_t g;
    while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit)) {
        p->sleeping++;
        pthread_cond_wait(&p->go, &p->mu);
        p->sleeping--;
    }
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker(void *arg)
{
    worker_arg *wa = arg;
    lb_pool *p = wa->p;
    int id = wa->id;
    LB_FREE(wa);
    uint64_t seen = 0;
    for (;;) {
        seen = wait_job(p, seen);
        if (atomic_load(&p->quit)) return NULL;
        run_chunk(p, id);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

lb_status lb_pool_create(int n_threads, lb_pool **out)
{
    LB_ARG(out, "lb_pool_create: out is NULL");
    *out = NULL;
    if (n_threads <= 0) n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads <= 0) n_threads = 1;
    if (n_threads > 1024) return lb__err(LB_ERR_ARG, "thread count %d is absurd (max 1024)", n_threads);
    lb_pool *p = lb__zalloc(sizeof *p);
    if (!p) return LB_ERR_NOMEM;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
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
    atomic_store(&p->quit, true);
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    LB_FREE(p->th);
    LB_FREE(p);
}

int lb_pool_threads(const lb_pool *p) { return p ? p->n : 1; }

void lb_pool_for(lb_pool *p, int64_t n, int64_t grain, lb_task_fn fn, void *ctx)
{
    if (n <= 0 || !fn) return;
    if (grain < 1) grain = 1;
    int64_t nt = p ? p->n : 1;
    int64_t chunk = (n + nt - 1) / nt;
    chunk = (chunk + grain - 1) / grain * grain;
    if (!p || p->n == 1 || chunk >= n) { fn(ctx, 0, n, 0); return; }
    p->fn = fn; p->ctx = ctx; p->n_items = n; p->chunk = chunk;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleeping) pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    run_chunk(p, 0);
    for (unsigned k = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; k++) {
        cpu_relax();
        if ((k & 1023) == 1023) sched_yield();
    }
}
