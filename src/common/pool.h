/* pool.h: a bounded pool of worker threads for slow work off the request
 * threads (Argon2id hashing).
 *
 * N threads take jobs from a FIFO queue of at most Q entries. Submitting to a
 * full queue fails at once with TSR_ERR_UNAVAILABLE (the server answers 503 with
 * Retry-After) rather than blocking a request thread. A job runs fn(ctx) on a
 * pool thread; ctx is the caller's (the pool never frees it): the job itself
 * finishes the work, e.g. resumes its suspended HTTP connection. */
#ifndef TSR_COMMON_POOL_H
#define TSR_COMMON_POOL_H

#include <stddef.h>

#include "common/err.h"

#define TSR_POOL_THREADS_MAX 256
#define TSR_POOL_QUEUE_MAX 1000000

typedef struct tsr_pool tsr_pool;
typedef void (*tsr_pool_fn)(void *ctx);

/* Starts nthreads (1..TSR_POOL_THREADS_MAX) workers with a queue of qcap
 * (1..TSR_POOL_QUEUE_MAX) waiting jobs. TSR_ERR_INVALID for bad sizes,
 * TSR_ERR_NOMEM, TSR_ERR_INTERNAL when a thread cannot start (none left running).
 * Allocates. */
TSR_MUST_CHECK tsr_err tsr_pool_new(size_t nthreads, size_t qcap, tsr_pool **out /* OUT */);

/* Queues fn(ctx). TSR_OK when queued: fn will run exactly once, even if
 * tsr_pool_free is called before it starts. TSR_ERR_UNAVAILABLE when the queue
 * is full or the pool is shutting down: fn will not run and ctx stays the
 * caller's. Thread-safe; never blocks on the workers. */
TSR_MUST_CHECK tsr_err tsr_pool_submit(tsr_pool *p, tsr_pool_fn fn, void *ctx);

/* Jobs queued and not yet started, and jobs running now (for /metrics). */
size_t tsr_pool_queued(tsr_pool *p);
size_t tsr_pool_running(tsr_pool *p);

/* Stops accepting jobs, runs every queued job to the end, joins the threads and
 * frees the pool. Must not be called from a pool thread. NULL is a no-op. */
void tsr_pool_free(tsr_pool *p);

#endif
