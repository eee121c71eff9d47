/* http.h: tessera's HTTP server (libmicrohttpd), seen from `tessera serve`.
 *
 * The server answers SPEC section 4 on an epoll thread pool. Password hashing
 * never runs on those threads: the routes that hash suspend their connection
 * and hand the work to the caller's bounded pool (common/pool.h); a full queue
 * answers 503 with Retry-After. Everything the server needs is borrowed from
 * the caller and must outlive tsr_http_server_stop: the config, the auth
 * context (and through it the store) and the pool. One server per process (the
 * metrics are process-wide). */
#ifndef TSR_HTTP_H
#define TSR_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "common/config.h"
#include "common/err.h"
#include "common/pool.h"
#include "store/store.h"

#define TSR_HTTP_ERR_MAX 256         /* a good errbuf size for start */
#define TSR_HTTP_GRACE_SECONDS 10    /* default time given to in-flight requests at stop */

typedef struct tsr_http_server tsr_http_server;

/* Binds cfg->server.listen and starts serving. Refuses plain HTTP on a
 * non-loopback address unless server.allow_insecure_http (TSR_ERR_INVALID), reads
 * server.tls_cert/tls_key when set (TSR_ERR_IO; the key buffer is wiped at stop).
 * TSR_ERR_IO when the address cannot be bound. errbuf gets one line of English
 * naming the setting (never a value that could be secret). Allocates. */
TSR_MUST_CHECK tsr_err tsr_http_server_start(const tsr_config *cfg, tsr_auth *auth,
                                             tsr_pool *pool, tsr_http_server **out /* OUT */,
                                             char *errbuf /* OUT */, size_t errcap);

/* The checks start makes before touching anything: a parseable listen address,
 * no plain HTTP on a non-loopback address unless allowed, readable TLS files.
 * For `serve` to refuse a bad config before it opens the store. */
TSR_MUST_CHECK tsr_err tsr_http_check_config(const tsr_config *cfg, char *errbuf /* OUT */,
                                             size_t errcap);

/* Graceful stop: stops accepting connections, lets in-flight requests finish
 * (at most grace_seconds; suspended hashing work always finishes), closes every
 * connection and frees the server. NULL is a no-op. */
void tsr_http_server_stop(tsr_http_server *s, unsigned grace_seconds);

/* Wraps a store so that every call is timed into the store-latency histogram
 * of /metrics. The wrapper borrows inner (close the wrapper, then inner). The
 * wrapper forwards the ops of store.h; Allocates. */
TSR_MUST_CHECK tsr_err tsr_http_store_metered_new(tsr_store *inner, tsr_store **out /* OUT */);

#endif
