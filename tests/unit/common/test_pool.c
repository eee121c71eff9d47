/* test_pool.c: the bounded worker pool runs every accepted job once, refuses
 * work when its queue is full, and drains and joins on free. No timing: jobs
 * block on a gate the test opens. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "common/pool.h"
#include "harness.h"

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    int waiting; /* jobs blocked on the gate */
} gate;

static gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
static atomic_int ran;

static void gate_reset(void)
{
    pthread_mutex_lock(&g.mu);
    g.open = 0;
    g.waiting = 0;
    pthread_mutex_unlock(&g.mu);
    atomic_store(&ran, 0);
}

static void gate_open(void)
{
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
}

static void gate_wait_blocked(int n)
{
    pthread_mutex_lock(&g.mu);
    while (g.waiting < n)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
}

static void gated_job(void *ctx)
{
    int *slot = ctx;
    pthread_mutex_lock(&g.mu);
    g.waiting++;
    pthread_cond_broadcast(&g.cv);
    while (!g.open)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    if (slot != NULL)
        (*slot)++;
    atomic_fetch_add(&ran, 1);
}

static void counting_job(void *ctx)
{
    atomic_int *n = ctx;
    atomic_fetch_add(n, 1);
}

static void runs_every_job_once(void)
{
    tsr_pool *p = NULL;
    atomic_int n = 0;

    CHECK(tsr_pool_new(4, 1000, &p) == TSR_OK && p != NULL);
    for (int i = 0; i < 500; i++)
        CHECK(tsr_pool_submit(p, counting_job, &n) == TSR_OK);
    tsr_pool_free(p); /* drains */
    CHECK(atomic_load(&n) == 500);
}

static void full_queue_is_unavailable(void)
{
    tsr_pool *p = NULL;
    int slots[4];

    memset(slots, 0, sizeof slots);
    gate_reset();
    CHECK(tsr_pool_new(1, 2, &p) == TSR_OK);
    /* One job occupies the only worker... */
    CHECK(tsr_pool_submit(p, gated_job, &slots[0]) == TSR_OK);
    gate_wait_blocked(1);
    CHECK(tsr_pool_running(p) == 1);
    /* ...two fill the queue, the next is refused and will never run. */
    CHECK(tsr_pool_submit(p, gated_job, &slots[1]) == TSR_OK);
    CHECK(tsr_pool_submit(p, gated_job, &slots[2]) == TSR_OK);
    CHECK(tsr_pool_queued(p) == 2);
    CHECK(tsr_pool_submit(p, gated_job, &slots[3]) == TSR_ERR_UNAVAILABLE);
    gate_open();
    tsr_pool_free(p);
    CHECK(slots[0] == 1 && slots[1] == 1 && slots[2] == 1 && slots[3] == 0);
    CHECK(atomic_load(&ran) == 3);
}

static void free_runs_queued_jobs_and_joins(void)
{
    tsr_pool *p = NULL;
    int slots[8];

    memset(slots, 0, sizeof slots);
    gate_reset();
    CHECK(tsr_pool_new(2, 8, &p) == TSR_OK);
    for (int i = 0; i < 8; i++)
        CHECK(tsr_pool_submit(p, gated_job, &slots[i]) == TSR_OK);
    gate_wait_blocked(2);
    gate_open();
    tsr_pool_free(p); /* returns only after all eight ran: slots are read right after */
    for (int i = 0; i < 8; i++)
        CHECK(slots[i] == 1);
    CHECK(atomic_load(&ran) == 8);
}

static void rejects_bad_sizes(void)
{
    tsr_pool *p = (tsr_pool *)&p;
    CHECK(tsr_pool_new(0, 1, &p) == TSR_ERR_INVALID && p == NULL);
    CHECK(tsr_pool_new(1, 0, &p) == TSR_ERR_INVALID && p == NULL);
    CHECK(tsr_pool_new(TSR_POOL_THREADS_MAX + 1, 1, &p) == TSR_ERR_INVALID);
    CHECK(tsr_pool_new(1, 1, NULL) == TSR_ERR_INVALID);
    CHECK(tsr_pool_submit(NULL, counting_job, NULL) == TSR_ERR_INVALID);
    tsr_pool_free(NULL);
}

/* Many threads submitting at once: every accepted job runs, refused ones never. */
typedef struct submitter {
    tsr_pool *p;
    atomic_int *count;
    int accepted;
} submitter;

static void *submit_many(void *arg)
{
    submitter *s = arg;
    for (int i = 0; i < 2000; i++) {
        if (tsr_pool_submit(s->p, counting_job, s->count) == TSR_OK)
            s->accepted++;
    }
    return NULL;
}

static void concurrent_submitters(void)
{
    tsr_pool *p = NULL;
    atomic_int n = 0;
    pthread_t th[4];
    submitter s[4];

    CHECK(tsr_pool_new(3, 16, &p) == TSR_OK);
    for (int i = 0; i < 4; i++) {
        s[i] = (submitter){p, &n, 0};
        CHECK(pthread_create(&th[i], NULL, submit_many, &s[i]) == 0);
    }
    int accepted = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        accepted += s[i].accepted;
    }
    tsr_pool_free(p);
    CHECK(accepted > 0);
    CHECK(atomic_load(&n) == accepted);
}

int main(void)
{
    TSR_RUN(runs_every_job_once);
    TSR_RUN(full_queue_is_unavailable);
    TSR_RUN(free_runs_queued_jobs_and_joins);
    TSR_RUN(rejects_bad_sizes);
    TSR_RUN(concurrent_submitters);
    return tsr_test_summary();
}
