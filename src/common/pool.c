/* pool.c: the bounded worker pool: a ring buffer of jobs under one mutex, with
 * one condition variable for the workers. Submit never waits for a worker: a
 * full queue is an immediate TSR_ERR_UNAVAILABLE. Free drains, then joins. */
#include "common/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct pool_job {
    tsr_pool_fn fn;
    void *ctx;
} pool_job;

struct tsr_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pool_job *ring;
    size_t cap, head, count;  /* count jobs queued from head */
    size_t running;
    int stopping;
    pthread_t *threads;
    size_t nthreads;          /* started */
};

static void *worker(void *arg)
{
    tsr_pool *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->count == 0 && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->count == 0)
            break; /* stopping and drained */
        pool_job job = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        job.fn(job.ctx);
        pthread_mutex_lock(&p->mu);
        p->running--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_stop_join(tsr_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

tsr_err tsr_pool_new(size_t nthreads, size_t qcap, tsr_pool **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_pool *p = NULL;
    int mu_ok = 0, cv_ok = 0;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (nthreads < 1 || nthreads > TSR_POOL_THREADS_MAX || qcap < 1 || qcap > TSR_POOL_QUEUE_MAX) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    p->ring = calloc(qcap, sizeof *p->ring);
    p->threads = calloc(nthreads, sizeof *p->threads);
    if (p->ring == NULL || p->threads == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    p->cap = qcap;
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        goto out;
    mu_ok = 1;
    if (pthread_cond_init(&p->cv, NULL) != 0)
        goto out;
    cv_ok = 1;
    for (size_t i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
            goto out;
        p->nthreads++;
    }
    *out = p;
    p = NULL;
    rc = TSR_OK;
out:
    if (p != NULL) {
        if (mu_ok && cv_ok)
            pool_stop_join(p);
        if (cv_ok)
            pthread_cond_destroy(&p->cv);
        if (mu_ok)
            pthread_mutex_destroy(&p->mu);
        free(p->ring);
        free(p->threads);
        free(p);
    }
    return rc;
}

tsr_err tsr_pool_submit(tsr_pool *p, tsr_pool_fn fn, void *ctx)
{
    tsr_err rc = TSR_ERR_UNAVAILABLE;

    if (p == NULL || fn == NULL)
        return TSR_ERR_INVALID;
    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->count == p->cap)
        goto out;
    p->ring[(p->head + p->count) % p->cap] = (pool_job){fn, ctx};
    p->count++;
    pthread_cond_signal(&p->cv);
    rc = TSR_OK;
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

size_t tsr_pool_queued(tsr_pool *p)
{
    size_t n;
    if (p == NULL)
        return 0;
    pthread_mutex_lock(&p->mu);
    n = p->count;
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t tsr_pool_running(tsr_pool *p)
{
    size_t n;
    if (p == NULL)
        return 0;
    pthread_mutex_lock(&p->mu);
    n = p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void tsr_pool_free(tsr_pool *p)
{
    if (p == NULL)
        return;
    pool_stop_join(p);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->ring);
    free(p->threads);
    free(p);
}
