/* metrics.c: the process-wide counters behind GET /metrics and their
 * Prometheus text rendering (exposition format 0.0.4).
 *
 * Counters are relaxed atomics bumped on the request threads; a scrape reads
 * them without locking (a scrape may see a request counted in one series and
 * not yet in the other, which Prometheus tolerates). Labels are route
 * patterns, status codes, outcomes and store operations: never request data. */
#include "http/http_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/tokens.h"
#include "crypto/crypto.h"

#define NROUTE (TSR_HTTP_ROUTES_MAX + 1) /* the last slot: unmatched */
#define RENDER_MAX (1024 * 1024)

typedef _Atomic uint64_t counter;

static const int status_codes[] = {200, 201, 204, 400, 401, 403, 404,
                                   405, 409, 413, 429, 500, 503};
#define NSTATUS (sizeof status_codes / sizeof status_codes[0] + 1) /* + other */

/* Upper bounds in seconds; the +Inf bucket is the count. */
static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                 0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
#define NBUCKET (sizeof buckets / sizeof buckets[0])

static counter req_total[NROUTE][NSTATUS];
static counter req_bucket[NROUTE][NBUCKET];
static counter req_sum_ns[NROUTE];
static counter req_count[NROUTE];
static counter verify_total[TSR_MC__COUNT][TSR_MV__COUNT];
static counter token_total[TSR_MG__COUNT];
static counter login_total[TSR_ML__COUNT];
static counter busy_total;
static counter store_bucket[TSR_MS__COUNT][NBUCKET];
static counter store_sum_ns[TSR_MS__COUNT];
static counter store_count[TSR_MS__COUNT];

static const char *const verify_names[TSR_MV__COUNT] = {"ok",        "missing", "invalid",
                                                        "revoked",   "forbidden", "error"};
static const char *const cred_names[TSR_MC__COUNT] = {"none", "cookie", "bearer"};
static const char *const grant_names[TSR_MG__COUNT] = {"password", "refresh_token", "session"};
static const char *const login_names[TSR_ML__COUNT] = {"ok", "failed", "rate_limited"};
static const char *const store_names[TSR_MS__COUNT] = {
    "ping", "user_read", "user_write", "session_read", "session_write", "session_touch",
    "meta", "purge"};

static void bump(counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static size_t bucket_of(uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < NBUCKET && s > buckets[i])
        i++;
    return i; /* NBUCKET: only +Inf */
}

void tsr_metrics_request(int route, int status, uint64_t ns)
{
    size_t ri = route >= 0 && route < TSR_HTTP_ROUTES_MAX ? (size_t)route : NROUTE - 1;
    size_t si = NSTATUS - 1;
    size_t b;

    for (size_t i = 0; i + 1 < NSTATUS; i++) {
        if (status_codes[i] == status) {
            si = i;
            break;
        }
    }
    bump(&req_total[ri][si], 1);
    b = bucket_of(ns);
    if (b < NBUCKET)
        bump(&req_bucket[ri][b], 1);
    bump(&req_sum_ns[ri], ns);
    bump(&req_count[ri], 1);
}

void tsr_metrics_verify(tsr_metric_cred c, tsr_metric_verify v)
{
    if ((unsigned)c < TSR_MC__COUNT && (unsigned)v < TSR_MV__COUNT)
        bump(&verify_total[c][v], 1);
}

void tsr_metrics_token(tsr_metric_grant g)
{
    if ((unsigned)g < TSR_MG__COUNT)
        bump(&token_total[g], 1);
}

void tsr_metrics_login(tsr_metric_login v)
{
    if ((unsigned)v < TSR_ML__COUNT)
        bump(&login_total[v], 1);
}

void tsr_metrics_busy(void)
{
    bump(&busy_total, 1);
}

void tsr_metrics_store(int op, uint64_t ns)
{
    size_t b;
    if (op < 0 || op >= TSR_MS__COUNT)
        return;
    b = bucket_of(ns);
    if (b < NBUCKET)
        bump(&store_bucket[op][b], 1);
    bump(&store_sum_ns[op], ns);
    bump(&store_count[op], 1);
}

/* ---- rendering ---- */

typedef struct out_buf {
    char *p;
    size_t len, cap;
    int failed;
} out_buf;

static void put(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out_buf *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->failed)
        return;
    for (;;) {
        size_t room = o->cap - o->len;
        va_start(ap, fmt);
        n = vsnprintf(o->p + o->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            o->len += (size_t)n;
            return;
        }
        if (o->cap * 2 > RENDER_MAX) {
            o->failed = 1;
            return;
        }
        {
            char *np = realloc(o->p, o->cap * 2);
            if (np == NULL) {
                o->failed = 1;
                return;
            }
            o->p = np;
            o->cap *= 2;
        }
    }
}

/* labels: the series' labels without braces ("op=\"ping\""). */
static void put_histogram(out_buf *o, const char *name, const char *labels, counter *bk,
                          counter *sum_ns, counter *count)
{
    uint64_t cum = 0;
    for (size_t b = 0; b < NBUCKET; b++) {
        cum += get(&bk[b]);
        put(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, buckets[b],
            (unsigned long long)cum);
    }
    put(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)get(count));
    put(o, "%s_sum{%s} %.9f\n", name, labels, (double)get(sum_ns) / 1e9);
    put(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)get(count));
}

static const char *route_label(size_t ri)
{
    const tsr_http_route *rt = tsr_http_route_get((int)ri);
    return rt != NULL ? rt->pattern : "unmatched";
}

/* Routes share patterns across methods: the method makes the series unique. */
static const char *method_label(size_t ri)
{
    const tsr_http_route *rt = tsr_http_route_get((int)ri);
    return rt != NULL ? rt->method : "any";
}

static int route_shown(size_t ri)
{
    return ri == NROUTE - 1 || tsr_http_route_get((int)ri) != NULL;
}

tsr_err tsr_metrics_render(tsr_http_server *srv, char **out, size_t *len)
{
    tsr_err rc = TSR_ERR_NOMEM;
    out_buf o = {NULL, 0, 16384, 0};
    size_t active = 0;
    tsr_err arc;

    *out = NULL;
    *len = 0;
    o.p = malloc(o.cap);
    if (o.p == NULL)
        goto out;

    put(&o, "# HELP tessera_http_requests_total HTTP requests by route pattern and status.\n"
            "# TYPE tessera_http_requests_total counter\n");
    for (size_t ri = 0; ri < NROUTE; ri++) {
        if (!route_shown(ri))
            continue;
        for (size_t si = 0; si < NSTATUS; si++) {
            uint64_t v = get(&req_total[ri][si]);
            if (v == 0)
                continue;
            if (si + 1 < NSTATUS)
                put(&o,
                    "tessera_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} "
                    "%llu\n",
                    method_label(ri), route_label(ri), status_codes[si], (unsigned long long)v);
            else
                put(&o,
                    "tessera_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\"} "
                    "%llu\n",
                    method_label(ri), route_label(ri), (unsigned long long)v);
        }
    }
    put(&o, "# HELP tessera_http_request_duration_seconds Request latency by route pattern.\n"
            "# TYPE tessera_http_request_duration_seconds histogram\n");
    for (size_t ri = 0; ri < NROUTE; ri++) {
        char labels[128];
        int n;
        if (!route_shown(ri) || get(&req_count[ri]) == 0)
            continue;
        n = snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\"", method_label(ri),
                     route_label(ri));
        if (n < 0 || (size_t)n >= sizeof labels)
            continue;
        put_histogram(&o, "tessera_http_request_duration_seconds", labels, req_bucket[ri],
                      &req_sum_ns[ri], &req_count[ri]);
    }
    put(&o, "# HELP tessera_http_requests_in_flight Requests being served now.\n"
            "# TYPE tessera_http_requests_in_flight gauge\n"
            "tessera_http_requests_in_flight %zu\n",
        atomic_load(&srv->inflight));
    put(&o, "# HELP tessera_logins_total Login attempts by outcome.\n"
            "# TYPE tessera_logins_total counter\n");
    for (size_t i = 0; i < TSR_ML__COUNT; i++)
        put(&o, "tessera_logins_total{outcome=\"%s\"} %llu\n", login_names[i],
            (unsigned long long)get(&login_total[i]));
    put(&o, "# HELP tessera_verifications_total GET /v1/verify answers by credential and outcome.\n"
            "# TYPE tessera_verifications_total counter\n");
    for (size_t c = 0; c < TSR_MC__COUNT; c++) {
        for (size_t i = 0; i < TSR_MV__COUNT; i++) {
            /* Only the pairs that can happen: no credential is always "missing". */
            if ((c == TSR_MC_NONE) != (i == TSR_MV_MISSING))
                continue;
            if (c == TSR_MC_COOKIE && i == TSR_MV_REVOKED)
                continue; /* a revoked cookie session is simply unknown: invalid */
            put(&o, "tessera_verifications_total{method=\"%s\",outcome=\"%s\"} %llu\n",
                cred_names[c], verify_names[i], (unsigned long long)get(&verify_total[c][i]));
        }
    }
    put(&o, "# HELP tessera_tokens_issued_total Access tokens issued, by grant.\n"
            "# TYPE tessera_tokens_issued_total counter\n");
    for (size_t i = 0; i < TSR_MG__COUNT; i++)
        put(&o, "tessera_tokens_issued_total{grant=\"%s\"} %llu\n", grant_names[i],
            (unsigned long long)get(&token_total[i]));
    {
        uint64_t hits = 0, misses = 0;
        tsr_auth_cache_stats(srv->auth, &hits, &misses);
        put(&o, "# HELP tessera_token_cache_total Verified-token cache look-ups by result.\n"
                "# TYPE tessera_token_cache_total counter\n"
                "tessera_token_cache_total{result=\"hit\"} %llu\n"
                "tessera_token_cache_total{result=\"miss\"} %llu\n",
            (unsigned long long)hits, (unsigned long long)misses);
    }
    put(&o, "# HELP tessera_revocations_total Sessions ended early and access tokens revoked, by every path (logout, revoke, refresh reuse, password change, admin, CLI, other instances), as read from the store's revocation log since start.\n"
            "# TYPE tessera_revocations_total counter\n"
            "tessera_revocations_total %llu\n",
        (unsigned long long)tsr_auth_revocations_read(srv->auth));
    put(&o, "# HELP tessera_revoked_entries Revoked sid and jti values held in memory (until the tokens they match expire).\n"
            "# TYPE tessera_revoked_entries gauge\n"
            "tessera_revoked_entries %zu\n",
        tsr_auth_revoked_count(srv->auth));
    {
        tsr_auth_hot_stats hs;
        tsr_auth_hot_stats_get(srv->auth, &hs);
        if (hs.attached)
            put(&o, "# HELP tessera_redis_up Whether Redis commands are working (not backing off after a failure).\n"
                    "# TYPE tessera_redis_up gauge\n"
                    "tessera_redis_up %d\n"
                    "# HELP tessera_revocation_subscribed Whether the Redis revocation feed is live; while 0, bearer checks read the store's revocation log first.\n"
                    "# TYPE tessera_revocation_subscribed gauge\n"
                    "tessera_revocation_subscribed %d\n"
                    "# HELP tessera_session_cache_total Session look-ups (cookie and stateful bearer) answered by the Redis cache, by result.\n"
                    "# TYPE tessera_session_cache_total counter\n"
                    "tessera_session_cache_total{result=\"hit\"} %llu\n"
                    "tessera_session_cache_total{result=\"miss\"} %llu\n"
                    "# HELP tessera_revocation_messages_total Revocation messages on the Redis channel, by direction.\n"
                    "# TYPE tessera_revocation_messages_total counter\n"
                    "tessera_revocation_messages_total{direction=\"published\"} %llu\n"
                    "tessera_revocation_messages_total{direction=\"received\"} %llu\n",
                hs.redis_up, hs.subscribed, (unsigned long long)hs.session_hits,
                (unsigned long long)hs.session_misses, (unsigned long long)hs.published,
                (unsigned long long)hs.received);
    }
    arc = tsr_store_session_count(srv->store, (int64_t)time(NULL), &active);
    if (arc == TSR_OK)
        put(&o, "# HELP tessera_sessions_active Unexpired sessions in the store.\n"
                "# TYPE tessera_sessions_active gauge\n"
                "tessera_sessions_active %zu\n",
            active);
    put(&o, "# HELP tessera_store_up Whether the last store call of this scrape succeeded.\n"
            "# TYPE tessera_store_up gauge\n"
            "tessera_store_up %d\n",
        arc == TSR_OK ? 1 : 0);
    put(&o, "# HELP tessera_hash_jobs Password hashing jobs waiting and running.\n"
            "# TYPE tessera_hash_jobs gauge\n"
            "tessera_hash_jobs{state=\"queued\"} %zu\n"
            "tessera_hash_jobs{state=\"running\"} %zu\n",
        tsr_pool_queued(srv->pool), tsr_pool_running(srv->pool));
    put(&o, "# HELP tessera_hash_rejected_total Requests refused with 503 because the hashing queue was full.\n"
            "# TYPE tessera_hash_rejected_total counter\n"
            "tessera_hash_rejected_total %llu\n",
        (unsigned long long)get(&busy_total));
    put(&o, "# HELP tessera_store_duration_seconds Store call latency by operation.\n"
            "# TYPE tessera_store_duration_seconds histogram\n");
    for (size_t i = 0; i < TSR_MS__COUNT; i++) {
        char labels[64];
        int n = snprintf(labels, sizeof labels, "op=\"%s\"", store_names[i]);
        if (n < 0 || (size_t)n >= sizeof labels)
            continue;
        put_histogram(&o, "tessera_store_duration_seconds", labels, store_bucket[i],
                      &store_sum_ns[i], &store_count[i]);
    }
    if (o.failed)
        goto out;
    *out = o.p;
    *len = o.len;
    o.p = NULL;
    rc = TSR_OK;
out:
    free(o.p);
    return rc;
}
