/* redis.c: tessera's Redis client over hiredis 0.14 (blocking API only).
 *
 * Three parts: a lazily opened pool of command connections guarded by a backoff
 * (a dead Redis costs callers nothing but an immediate TSR_ERR_UNAVAILABLE), the
 * token buckets (one Lua script for take, a read-only HMGET for peek, computed
 * identically), and a subscriber thread with its own connection, a keepalive PING
 * and reconnects with backoff. docs/internals/redis.md explains the choices.
 * Nothing here logs a key, a value or a Redis error text (which can echo them). */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "common/log.h"
#include "store/redis.h"

#define URL_MAX 512     /* bytes of a url */
#define HOST_MAX 253    /* bytes of a host name or IPv6 address */
#define KEY_MAX 1024    /* bytes of a key */
#define DEL_MAX 1024    /* keys in one DEL */
#define CHANNEL_MAX 128 /* bytes of a pub/sub channel name */
#define POOL_DEFAULT 16
#define POOL_CAP 4096 /* pool_max above is refused (serve: 1.5 * threads + 4) */
#define TTL_MAX_MS ((int64_t)10 * 366 * 86400 * 1000) /* ten years */
#define WINDOW_MAX ((int64_t)366 * 86400)             /* a bucket window, seconds */
#define NOW_MAX ((int64_t)1 << 40)                    /* exact in a double, and then some */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define PING_EVERY_MS 1000 /* keepalive on the subscribed connection */
#define SLICE_MS 50        /* the subscriber looks at its stop flag this often */
#define SHA_HEX 40

/* The take script. KEYS[1] the bucket; ARGV: max, window (s), now (s), expiry (s).
 * Returns the level after the take as a %.17g string (a Lua number would come back
 * truncated to an integer). peek_compute below must stay identical to the refill. */
/* clang-format off */
static const char take_script[] =
    "local v = redis.call('HMGET', KEYS[1], 't', 'l')\n"
    "local max = tonumber(ARGV[1])\n"
    "local window = tonumber(ARGV[2])\n"
    "local now = tonumber(ARGV[3])\n"
    "local t = tonumber(v[1])\n"
    "local l = tonumber(v[2])\n"
    "local ls = v[2]\n"
    "if t == nil or l == nil then\n"
    "  t = max\n"
    "  l = now\n"
    "  ls = ARGV[3]\n"
    "end\n"
    "if now > l then\n"
    "  t = t + (now - l) * max / window\n"
    "  ls = ARGV[3]\n"
    "end\n"
    "if t > max then t = max end\n"
    "t = t - 1\n"
    "if t < -max then t = -max end\n"
    "local s = string.format('%.17g', t)\n"
    "redis.call('HSET', KEYS[1], 't', s, 'l', ls)\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
    "return s\n";
/* clang-format on */

struct tsr_redis {
    char host[HOST_MAX + 1];
    int port;
    int db;
    size_t pool_max;

    /* mu guards the pool, the backoff and the script's SHA. */
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* a connection came back or a slot freed */
    redisContext **idle; /* pool_max slots */
    size_t n_idle;
    size_t n_open;         /* idle + in use */
    int64_t backoff_until; /* monotonic ms; calls before it are skipped */
    int64_t backoff_ms;    /* current delay; 0 after a success */
    int down;              /* logged as unavailable, not yet as back */
    char sha[SHA_HEX + 1]; /* "" until SCRIPT LOAD answered */

    /* Subscriber. sub_mu guards started and the sleeps; stop is read lock-free. */
    pthread_mutex_t sub_mu;
    pthread_cond_t sub_cv;
    int sub_started;
    atomic_int sub_stop;
    atomic_int subscribed;
    pthread_t sub_thread;
    char channel[CHANNEL_MAX + 1];
    size_t channel_len;
    tsr_redis_message_fn on_message;
    tsr_redis_state_fn on_state;
    void *ctx;

    atomic_uint_least64_t st_commands, st_failures, st_skipped, st_messages, st_dropped,
        st_resubscribes;
};

/* ---- small helpers ------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The absolute CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static int cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int ok;
    if (pthread_condattr_init(&a) != 0)
        return 0;
    ok = pthread_condattr_setclock(&a, CLOCK_MONOTONIC) == 0 && pthread_cond_init(cv, &a) == 0;
    pthread_condattr_destroy(&a);
    return ok;
}

static void stat_add(atomic_uint_least64_t *s)
{
    atomic_fetch_add_explicit(s, 1, memory_order_relaxed);
}

static struct timeval timeout_tv(void)
{
    struct timeval tv;
    tv.tv_sec = TSR_REDIS_TIMEOUT_MS / 1000;
    tv.tv_usec = (TSR_REDIS_TIMEOUT_MS % 1000) * 1000;
    return tv;
}

/* hiredis 0.14 writes with write(2): a peer that reset the connection raises
 * SIGPIPE, which kills a process that did not ignore it. tessera's serve ignores
 * it; a library must not rely on that, so every write runs with SIGPIPE blocked
 * in the calling thread, and a SIGPIPE it raised is consumed before unblocking. */
typedef struct pipe_guard {
    sigset_t old;
    int blocked;
    int was_pending;
} pipe_guard;

static void pipe_guard_begin(pipe_guard *g)
{
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    g->blocked = pthread_sigmask(SIG_BLOCK, &set, &g->old) == 0;
    g->was_pending = 0;
    if (g->blocked && sigpending(&pend) == 0)
        g->was_pending = sigismember(&pend, SIGPIPE) == 1;
}

static void pipe_guard_end(pipe_guard *g)
{
    sigset_t set, pend;
    int saved = errno;
    if (!g->blocked)
        return;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (!g->was_pending && sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    if (sigismember(&g->old, SIGPIPE) != 1)
        (void)pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    errno = saved;
}

/* ---- url ----------------------------------------------------------------------- */

/* Strict decimal: digits only, no sign, no leading zero (but "0"), at most max. */
static int parse_dec(const char *s, size_t n, long max, long *out)
{
    long v = 0;
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return 0;
    *out = v;
    return 1;
}

static int host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.';
}

static int ipv6_char(char ch)
{
    return (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || (ch >= '0' && ch <= '9') ||
           ch == ':' || ch == '.';
}

/* "redis://HOST[:PORT][/DB]"; anything else is TSR_ERR_INVALID. */
static tsr_err parse_url(const char *url, char *host /* OUT */, int *port /* OUT */,
                         int *db /* OUT */)
{
    static const char scheme[] = "redis://";
    const char *p, *h;
    size_t hlen, ulen;
    long v;

    host[0] = '\0';
    *port = 6379;
    *db = 0;
    ulen = strnlen(url, URL_MAX + 1);
    if (ulen > URL_MAX || strncmp(url, scheme, sizeof scheme - 1) != 0)
        return TSR_ERR_INVALID;
    p = url + sizeof scheme - 1;
    if (*p == '[') {
        h = ++p;
        while (ipv6_char(*p))
            p++;
        if (*p != ']')
            return TSR_ERR_INVALID;
        hlen = (size_t)(p - h);
        p++;
        if (hlen < 2 || memchr(h, ':', hlen) == NULL)
            return TSR_ERR_INVALID;
    } else {
        h = p;
        while (host_char(*p))
            p++;
        hlen = (size_t)(p - h);
        if (hlen == 0 || h[0] == '-' || h[0] == '.')
            return TSR_ERR_INVALID;
    }
    if (hlen > HOST_MAX)
        return TSR_ERR_INVALID;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (*p == ':') {
        const char *s = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (!parse_dec(s, (size_t)(p - s), 65535, &v) || v == 0)
            goto bad;
        *port = (int)v;
    }
    if (*p == '/') {
        const char *s = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (!parse_dec(s, (size_t)(p - s), 15, &v))
            goto bad;
        *db = (int)v;
    }
    if (*p != '\0')
        goto bad;
    return TSR_OK;
bad:
    host[0] = '\0';
    *port = 6379;
    *db = 0;
    return TSR_ERR_INVALID;
}

/* ---- backoff and the pool ----------------------------------------------------- */

/* Why a command failed, for the log (never a Redis error text: it can echo a key). */
static const char *ctx_reason(const redisContext *c)
{
    if (c == NULL)
        return "nomem";
    switch (c->err) {
    case 0:
        return "error_reply";
    case REDIS_ERR_EOF:
        return "closed";
    case REDIS_ERR_PROTOCOL:
        return "protocol";
    case REDIS_ERR_OOM:
        return "nomem";
    default:
        return "io"; /* includes the command timeout */
    }
}

/* Frees every idle connection: after a failure they probably share its fate (a
 * restarted Redis), and handing them out one by one would cost one failure and
 * one backoff step each. Caller holds mu. */
static void drop_idle_locked(tsr_redis *r)
{
    while (r->n_idle > 0) {
        redisFree(r->idle[--r->n_idle]);
        r->n_open--;
    }
    pthread_cond_broadcast(&r->cv);
}

static void note_failure(tsr_redis *r, const char *reason)
{
    int log_it;
    stat_add(&r->st_failures);
    pthread_mutex_lock(&r->mu);
    r->backoff_ms = r->backoff_ms == 0 ? BACKOFF_MIN_MS : r->backoff_ms * 2;
    if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
    r->backoff_until = mono_ms() + r->backoff_ms;
    log_it = !r->down;
    r->down = 1;
    drop_idle_locked(r);
    pthread_mutex_unlock(&r->mu);
    if (log_it)
        tsr_log(TSR_LOG_WARN, "redis unavailable", TSR_F_STR("host", r->host),
                TSR_F_INT("port", r->port), TSR_F_STR("reason", reason));
}

static void note_success(tsr_redis *r)
{
    int log_it;
    pthread_mutex_lock(&r->mu);
    r->backoff_ms = 0;
    r->backoff_until = 0;
    log_it = r->down;
    r->down = 0;
    pthread_mutex_unlock(&r->mu);
    if (log_it)
        tsr_log(TSR_LOG_INFO, "redis available", TSR_F_STR("host", r->host),
                TSR_F_INT("port", r->port));
}

/* One command, SIGPIPE-guarded and counted. NULL on a connection failure. */
static redisReply *run(tsr_redis *r, redisContext *c, int argc, const char **argv,
                       const size_t *lens)
{
    pipe_guard g;
    redisReply *rep;
    pipe_guard_begin(&g);
    rep = redisCommandArgv(c, argc, argv, lens);
    pipe_guard_end(&g);
    stat_add(&r->st_commands);
    return rep;
}

static int is_noscript(const redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_ERROR && rep->len >= 8 &&
           memcmp(rep->str, "NOSCRIPT", 8) == 0;
}

/* Nonzero when the connection cannot be trusted any more: an I/O error, no reply,
 * or an error reply (other than NOSCRIPT, which the bucket code handles). */
static int reply_broken(const redisContext *c, const redisReply *rep)
{
    return rep == NULL || c->err != 0 || (rep->type == REDIS_REPLY_ERROR && !is_noscript(rep));
}

static const char *reply_reason(const redisContext *c, const redisReply *rep)
{
    if (rep == NULL || c->err != 0)
        return ctx_reason(c);
    return rep->type == REDIS_REPLY_ERROR ? "error_reply" : "unexpected_reply";
}

/* Connects with the connect and command timeouts, and SELECTs the database. */
static redisContext *conn_open(tsr_redis *r, const char **reason /* OUT */)
{
    redisContext *c;
    *reason = "connect";
    c = redisConnectWithTimeout(r->host, r->port, timeout_tv());
    if (c == NULL) {
        *reason = "nomem";
        return NULL;
    }
    if (c->err != 0 || redisSetTimeout(c, timeout_tv()) != REDIS_OK)
        goto fail;
    if (r->db != 0) {
        char dbs[8];
        const char *argv[2] = {"SELECT", dbs};
        size_t lens[2];
        redisReply *rep;
        int n = snprintf(dbs, sizeof dbs, "%d", r->db);
        if (n <= 0 || (size_t)n >= sizeof dbs)
            goto fail;
        lens[0] = 6;
        lens[1] = (size_t)n;
        rep = run(r, c, 2, argv, lens);
        if (reply_broken(c, rep) || rep->type != REDIS_REPLY_STATUS) {
            *reason = reply_reason(c, rep);
            freeReplyObject(rep);
            goto fail;
        }
        freeReplyObject(rep);
    }
    return c;
fail:
    redisFree(c);
    return NULL;
}

/* Takes a free connection, or opens one below the cap, or waits up to the command
 * timeout for one. UNAVAILABLE at once during backoff (counted as skipped). */
static tsr_err pool_take(tsr_redis *r, redisContext **out /* OUT */)
{
    struct timespec until = deadline_in(TSR_REDIS_TIMEOUT_MS);
    const char *reason = NULL;
    redisContext *c;
    int timed_out = 0;

    *out = NULL;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (r->backoff_until != 0 && mono_ms() < r->backoff_until) {
            pthread_mutex_unlock(&r->mu);
            stat_add(&r->st_skipped);
            return TSR_ERR_UNAVAILABLE;
        }
        if (r->n_idle > 0) {
            *out = r->idle[--r->n_idle];
            pthread_mutex_unlock(&r->mu);
            return TSR_OK;
        }
        if (r->n_open < r->pool_max) {
            r->n_open++;
            break;
        }
        if (timed_out) {
            /* Every connection busy: local contention, not Redis's fault (no backoff). */
            pthread_mutex_unlock(&r->mu);
            return TSR_ERR_UNAVAILABLE;
        }
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT)
            timed_out = 1;
    }
    pthread_mutex_unlock(&r->mu);

    c = conn_open(r, &reason);
    if (c == NULL) {
        pthread_mutex_lock(&r->mu);
        r->n_open--;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->mu);
        note_failure(r, reason);
        return TSR_ERR_UNAVAILABLE;
    }
    *out = c;
    return TSR_OK;
}

/* Returns a healthy connection to the pool, or frees a broken one. */
static void pool_give(tsr_redis *r, redisContext *c, int healthy)
{
    pthread_mutex_lock(&r->mu);
    if (healthy && c->err == 0 && r->n_idle < r->pool_max) {
        r->idle[r->n_idle++] = c;
    } else {
        redisFree(c);
        r->n_open--;
    }
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Gives c back after a failure: frees it, starts or extends the backoff. */
static tsr_err fail_conn(tsr_redis *r, redisContext *c, const char *reason)
{
    pool_give(r, c, 0);
    note_failure(r, reason);
    return TSR_ERR_UNAVAILABLE;
}

/* One command on a pooled connection. types: a mask of (1 << REDIS_REPLY_*) the
 * caller accepts; anything else is a failure (connection freed, backoff). On
 * TSR_OK the caller owns *out (freeReplyObject). */
static tsr_err call(tsr_redis *r, int argc, const char **argv, const size_t *lens, unsigned types,
                    redisReply **out /* OUT */)
{
    redisContext *c = NULL;
    redisReply *rep;
    tsr_err rc;

    *out = NULL;
    rc = pool_take(r, &c);
    if (rc != TSR_OK)
        return rc;
    rep = run(r, c, argc, argv, lens);
    if (reply_broken(c, rep) || rep->type < 0 || rep->type > 15 ||
        (types & (1u << rep->type)) == 0) {
        const char *reason = reply_reason(c, rep);
        freeReplyObject(rep);
        return fail_conn(r, c, reason);
    }
    pool_give(r, c, 1);
    note_success(r);
    *out = rep;
    return TSR_OK;
}

#define T_STRING (1u << REDIS_REPLY_STRING)
#define T_ARRAY (1u << REDIS_REPLY_ARRAY)
#define T_INTEGER (1u << REDIS_REPLY_INTEGER)
#define T_NIL (1u << REDIS_REPLY_NIL)
#define T_STATUS (1u << REDIS_REPLY_STATUS)

static int key_ok(const void *key, size_t klen)
{
    return key != NULL && klen >= 1 && klen <= KEY_MAX;
}

/* ---- lifecycle ----------------------------------------------------------------- */

tsr_err tsr_redis_new(const char *url, size_t pool_max, tsr_redis **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_redis *r = NULL;
    int mu = 0, cv = 0, smu = 0, scv = 0;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (url == NULL || pool_max > POOL_CAP)
        return TSR_ERR_INVALID;
    if (pool_max == 0)
        pool_max = POOL_DEFAULT;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return TSR_ERR_NOMEM;
    rc = parse_url(url, r->host, &r->port, &r->db);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_ERR_NOMEM;
    r->pool_max = pool_max;
    r->idle = calloc(pool_max, sizeof *r->idle);
    if (r->idle == NULL)
        goto out;
    rc = TSR_ERR_INTERNAL;
    mu = pthread_mutex_init(&r->mu, NULL) == 0;
    cv = mu && cond_init_mono(&r->cv);
    smu = cv && pthread_mutex_init(&r->sub_mu, NULL) == 0;
    scv = smu && cond_init_mono(&r->sub_cv);
    if (!scv)
        goto out;
    atomic_init(&r->sub_stop, 0);
    atomic_init(&r->subscribed, 0);
    atomic_init(&r->st_commands, 0);
    atomic_init(&r->st_failures, 0);
    atomic_init(&r->st_skipped, 0);
    atomic_init(&r->st_messages, 0);
    atomic_init(&r->st_dropped, 0);
    atomic_init(&r->st_resubscribes, 0);
    *out = r;
    r = NULL;
    rc = TSR_OK;
out:
    if (r != NULL) {
        if (smu)
            pthread_mutex_destroy(&r->sub_mu);
        if (cv)
            pthread_cond_destroy(&r->cv);
        if (mu)
            pthread_mutex_destroy(&r->mu);
        free(r->idle);
        free(r);
    }
    return rc;
}

void tsr_redis_free(tsr_redis *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->sub_mu);
    atomic_store(&r->sub_stop, 1);
    pthread_cond_broadcast(&r->sub_cv);
    pthread_mutex_unlock(&r->sub_mu);
    if (r->sub_started)
        (void)pthread_join(r->sub_thread, NULL);
    pthread_mutex_lock(&r->mu);
    drop_idle_locked(r);
    pthread_mutex_unlock(&r->mu);
    pthread_cond_destroy(&r->sub_cv);
    pthread_mutex_destroy(&r->sub_mu);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->idle);
    free(r);
}

tsr_err tsr_redis_ping(tsr_redis *r)
{
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    redisReply *rep = NULL;
    tsr_err rc;

    if (r == NULL)
        return TSR_ERR_INVALID;
    rc = call(r, 1, argv, lens, T_STATUS, &rep);
    freeReplyObject(rep);
    return rc;
}

int tsr_redis_up(tsr_redis *r)
{
    int up;
    if (r == NULL)
        return 0;
    pthread_mutex_lock(&r->mu);
    up = r->backoff_until == 0 || mono_ms() >= r->backoff_until;
    pthread_mutex_unlock(&r->mu);
    return up;
}

/* ---- keys ---------------------------------------------------------------------- */

tsr_err tsr_redis_get(tsr_redis *r, const void *key, size_t klen, void *buf, size_t cap,
                      size_t *len)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, klen};
    redisReply *rep = NULL;
    size_t lim = cap < TSR_REDIS_VALUE_MAX ? cap : TSR_REDIS_VALUE_MAX;

    if (len == NULL)
        return TSR_ERR_INVALID;
    *len = 0;
    if (r == NULL || !key_ok(key, klen) || (buf == NULL && cap != 0))
        return TSR_ERR_INVALID;
    rc = call(r, 2, argv, lens, T_STRING | T_NIL, &rep);
    if (rc != TSR_OK)
        goto out;
    if (rep->type == REDIS_REPLY_NIL) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    if (rep->len > lim) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (rep->len > 0)
        memcpy(buf, rep->str, rep->len);
    *len = rep->len;
    rc = TSR_OK;
out:
    freeReplyObject(rep);
    return rc;
}

tsr_err tsr_redis_set(tsr_redis *r, const void *key, size_t klen, const void *val, size_t vlen,
                      int64_t ttl_ms)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char ttl[24];
    const char *argv[5] = {"SET", key, val, "PX", ttl};
    size_t lens[5] = {3, klen, vlen, 2, 0};
    redisReply *rep = NULL;
    int n;

    if (r == NULL || !key_ok(key, klen) || (val == NULL && vlen != 0) ||
        vlen > TSR_REDIS_VALUE_MAX || ttl_ms < 1 || ttl_ms > TTL_MAX_MS)
        return TSR_ERR_INVALID;
    if (val == NULL)
        argv[2] = "";
    n = snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    if (n <= 0 || (size_t)n >= sizeof ttl)
        return TSR_ERR_INTERNAL;
    lens[4] = (size_t)n;
    rc = call(r, 5, argv, lens, T_STATUS, &rep);
    freeReplyObject(rep);
    return rc;
}

tsr_err tsr_redis_del(tsr_redis *r, const void *const *keys, const size_t *klens, size_t n,
                      size_t *deleted)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    const char **argv = NULL;
    size_t *lens = NULL;
    redisReply *rep = NULL;

    if (deleted != NULL)
        *deleted = 0;
    if (r == NULL || n > DEL_MAX || (n > 0 && (keys == NULL || klens == NULL)))
        return TSR_ERR_INVALID;
    if (n == 0)
        return TSR_OK;
    for (size_t i = 0; i < n; i++)
        if (!key_ok(keys[i], klens[i]))
            return TSR_ERR_INVALID;
    rc = TSR_ERR_NOMEM;
    argv = calloc(n + 1, sizeof *argv);
    lens = calloc(n + 1, sizeof *lens);
    if (argv == NULL || lens == NULL)
        goto out;
    argv[0] = "DEL";
    lens[0] = 3;
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = keys[i];
        lens[i + 1] = klens[i];
    }
    rc = call(r, (int)(n + 1), argv, lens, T_INTEGER, &rep);
    if (rc != TSR_OK)
        goto out;
    if (deleted != NULL)
        *deleted = rep->integer < 0 ? 0 : (size_t)rep->integer;
    rc = TSR_OK;
out:
    freeReplyObject(rep);
    free(argv);
    free(lens);
    return rc;
}

/* ---- token buckets ------------------------------------------------------------- */

static int bucket_args_ok(tsr_redis *r, const void *key, size_t klen, uint32_t max, int64_t window,
                          int64_t now)
{
    return r != NULL && key_ok(key, klen) && max >= 1 && window >= 1 && window <= WINDOW_MAX &&
           now >= 0 && now <= NOW_MAX;
}

/* Strict decimal double, as Lua's tonumber reads what the script wrote. */
static int parse_double(const char *s, size_t n, double *out)
{
    char tmp[64];
    char *end = NULL;
    double v;
    if (n == 0 || n >= sizeof tmp)
        return 0;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    v = strtod(tmp, &end);
    if (end != tmp + n || errno == ERANGE || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

/* The refill of the take script, in C, operation for operation (IEEE doubles in
 * the same order give the same bits). Missing or unreadable fields: a full bucket. */
static double peek_compute(const redisReply *t_rep, const redisReply *l_rep, uint32_t max,
                           int64_t window, int64_t now)
{
    double t, l, dmax = (double)max, dnow = (double)now;
    if (t_rep->type != REDIS_REPLY_STRING || l_rep->type != REDIS_REPLY_STRING ||
        !parse_double(t_rep->str, t_rep->len, &t) || !parse_double(l_rep->str, l_rep->len, &l))
        return dmax;
    if (dnow > l)
        t = t + (dnow - l) * dmax / (double)window;
    if (t > dmax)
        t = dmax;
    if (!(t >= -dmax)) /* a level no take could leave (written by someone else), or NaN */
        t = -dmax;
    return t;
}

tsr_err tsr_redis_bucket_peek(tsr_redis *r, const void *key, size_t klen, uint32_t max,
                              int64_t window, int64_t now, double *tokens)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    const char *argv[4] = {"HMGET", key, "t", "l"};
    size_t lens[4] = {5, klen, 1, 1};
    redisReply *rep = NULL;

    if (tokens == NULL)
        return TSR_ERR_INVALID;
    *tokens = 0;
    if (!bucket_args_ok(r, key, klen, max, window, now))
        return TSR_ERR_INVALID;
    rc = call(r, 4, argv, lens, T_ARRAY, &rep);
    if (rc != TSR_OK)
        goto out;
    if (rep->elements != 2) {
        /* Not what HMGET answers: treat Redis as broken rather than guess. */
        note_failure(r, "unexpected_reply");
        rc = TSR_ERR_UNAVAILABLE;
        goto out;
    }
    *tokens = peek_compute(rep->element[0], rep->element[1], max, window, now);
    rc = TSR_OK;
out:
    freeReplyObject(rep);
    return rc;
}

/* SCRIPT LOAD on c; remembers the SHA. 0 on success, else the connection is broken. */
static int script_load(tsr_redis *r, redisContext *c, char sha[SHA_HEX + 1] /* OUT */,
                       const char **reason /* OUT */)
{
    const char *argv[3] = {"SCRIPT", "LOAD", take_script};
    size_t lens[3] = {6, 4, sizeof take_script - 1};
    redisReply *rep = run(r, c, 3, argv, lens);
    int ok = !reply_broken(c, rep) && rep->type == REDIS_REPLY_STRING && rep->len == SHA_HEX;
    for (size_t i = 0; ok && i < SHA_HEX; i++) {
        char ch = rep->str[i];
        ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
    }
    if (!ok) {
        *reason = reply_reason(c, rep);
        freeReplyObject(rep);
        return -1;
    }
    memcpy(sha, rep->str, SHA_HEX);
    sha[SHA_HEX] = '\0';
    freeReplyObject(rep);
    pthread_mutex_lock(&r->mu);
    memcpy(r->sha, sha, SHA_HEX + 1);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

tsr_err tsr_redis_bucket_take(tsr_redis *r, const void *key, size_t klen, uint32_t max,
                              int64_t window, int64_t now, double *tokens)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char sha[SHA_HEX + 1];
    char smax[16], swin[24], snow[24], sexp[24];
    const char *argv[8] = {"EVALSHA", sha, "1", key, smax, swin, snow, sexp};
    size_t lens[8] = {7, SHA_HEX, 1, klen, 0, 0, 0, 0};
    const char *reason = "unexpected_reply";
    redisContext *c = NULL;
    redisReply *rep = NULL;
    double v = 0;
    int n[4];

    if (tokens != NULL)
        *tokens = 0;
    if (!bucket_args_ok(r, key, klen, max, window, now))
        return TSR_ERR_INVALID;
    n[0] = snprintf(smax, sizeof smax, "%lu", (unsigned long)max);
    n[1] = snprintf(swin, sizeof swin, "%lld", (long long)window);
    n[2] = snprintf(snow, sizeof snow, "%lld", (long long)now);
    n[3] = snprintf(sexp, sizeof sexp, "%lld", (long long)(2 * window));
    if (n[0] <= 0 || (size_t)n[0] >= sizeof smax || n[1] <= 0 || (size_t)n[1] >= sizeof swin ||
        n[2] <= 0 || (size_t)n[2] >= sizeof snow || n[3] <= 0 || (size_t)n[3] >= sizeof sexp)
        return TSR_ERR_INTERNAL;
    for (int i = 0; i < 4; i++)
        lens[4 + i] = (size_t)n[i];

    rc = pool_take(r, &c);
    if (rc != TSR_OK)
        return rc;
    pthread_mutex_lock(&r->mu);
    memcpy(sha, r->sha, sizeof sha);
    pthread_mutex_unlock(&r->mu);
    if (sha[0] == '\0' && script_load(r, c, sha, &reason) != 0)
        goto broken;
    rep = run(r, c, 8, argv, lens);
    if (is_noscript(rep)) {
        /* Redis lost its script cache (a restart, SCRIPT FLUSH): load it again, once. */
        freeReplyObject(rep);
        rep = NULL;
        if (script_load(r, c, sha, &reason) != 0)
            goto broken;
        rep = run(r, c, 8, argv, lens);
    }
    if (reply_broken(c, rep) || is_noscript(rep) || rep->type != REDIS_REPLY_STRING ||
        !parse_double(rep->str, rep->len, &v)) {
        reason = reply_reason(c, rep);
        goto broken;
    }
    freeReplyObject(rep);
    pool_give(r, c, 1);
    note_success(r);
    if (tokens != NULL)
        *tokens = v;
    return TSR_OK;
broken:
    freeReplyObject(rep);
    return fail_conn(r, c, reason);
}

/* ---- pub/sub ------------------------------------------------------------------- */

tsr_err tsr_redis_publish(tsr_redis *r, const char *channel, const void *msg, size_t len,
                          long long *receivers)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    const char *argv[3] = {"PUBLISH", channel, msg};
    size_t lens[3] = {7, 0, len};
    redisReply *rep = NULL;
    size_t clen;

    if (receivers != NULL)
        *receivers = 0;
    if (r == NULL || channel == NULL || (msg == NULL && len != 0) || len > TSR_REDIS_MESSAGE_MAX)
        return TSR_ERR_INVALID;
    clen = strnlen(channel, CHANNEL_MAX + 1);
    if (clen == 0 || clen > CHANNEL_MAX)
        return TSR_ERR_INVALID;
    if (msg == NULL)
        argv[2] = "";
    lens[1] = clen;
    rc = call(r, 3, argv, lens, T_INTEGER, &rep);
    if (rc == TSR_OK && receivers != NULL)
        *receivers = rep->integer;
    freeReplyObject(rep);
    return rc;
}

static int sub_stopping(tsr_redis *r)
{
    return atomic_load(&r->sub_stop) != 0;
}

/* Sleeps ms, or less when stop is requested. */
static void sub_sleep(tsr_redis *r, int64_t ms)
{
    struct timespec until = deadline_in(ms);
    pthread_mutex_lock(&r->sub_mu);
    while (!sub_stopping(r)) {
        if (pthread_cond_timedwait(&r->sub_cv, &r->sub_mu, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&r->sub_mu);
}

/* Writes everything appended to c. 0, or -1 (broken; the send timeout applies). */
static int sub_flush(redisContext *c)
{
    int done = 0;
    do {
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return -1;
    } while (!done);
    return 0;
}

/* Waits for one reply until `until` (monotonic ms), polling in slices so that a stop
 * request is seen promptly. The socket is read only when poll says so: hiredis marks
 * a context dead after a read timeout, so its own blocking read cannot be used here.
 * 1: *reply set (caller frees); 0: deadline passed or stopping; -1: broken. */
static int sub_wait(tsr_redis *r, redisContext *c, int64_t until, redisReply **reply /* OUT */)
{
    *reply = NULL;
    for (;;) {
        void *aux = NULL;
        struct pollfd p;
        int64_t now, ms;
        int n;

        if (redisGetReplyFromReader(c, &aux) != REDIS_OK)
            return -1;
        if (aux != NULL) {
            *reply = aux;
            return 1;
        }
        if (sub_stopping(r))
            return 0;
        now = mono_ms();
        if (now >= until)
            return 0;
        ms = until - now;
        if (ms > SLICE_MS)
            ms = SLICE_MS;
        p.fd = c->fd;
        p.events = POLLIN;
        p.revents = 0;
        n = poll(&p, 1, (int)ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (p.revents & POLLNVAL) != 0)
            return -1;
        if (n > 0 && redisBufferRead(c) != REDIS_OK)
            return -1;
    }
}

static int str_is(const redisReply *e, const char *s, size_t n)
{
    return e->type == REDIS_REPLY_STRING && e->len == n && memcmp(e->str, s, n) == 0;
}

/* Connects and subscribes. The context once SUBSCRIBE is confirmed, else NULL. */
static redisContext *sub_connect(tsr_redis *r, const char **reason /* OUT */)
{
    const char *argv[2] = {"SUBSCRIBE", r->channel};
    size_t lens[2] = {9, r->channel_len};
    redisContext *c;
    redisReply *rep = NULL;
    int w;

    *reason = "connect";
    c = redisConnectWithTimeout(r->host, r->port, timeout_tv());
    if (c == NULL) {
        *reason = "nomem";
        return NULL;
    }
    if (c->err != 0 || redisSetTimeout(c, timeout_tv()) != REDIS_OK)
        goto fail;
    *reason = "io";
    if (redisAppendCommandArgv(c, 2, argv, lens) != REDIS_OK || sub_flush(c) != 0)
        goto fail;
    w = sub_wait(r, c, mono_ms() + TSR_REDIS_TIMEOUT_MS, &rep);
    if (w <= 0) {
        *reason = w == 0 ? "timeout" : ctx_reason(c);
        goto fail;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        !str_is(rep->element[0], "subscribe", 9) ||
        !str_is(rep->element[1], r->channel, r->channel_len)) {
        *reason = "unexpected_reply";
        freeReplyObject(rep);
        goto fail;
    }
    freeReplyObject(rep);
    return c;
fail:
    redisFree(c);
    return NULL;
}

/* Handles one reply on the subscribed connection. NULL, or why it is lost. */
static const char *sub_handle(tsr_redis *r, const redisReply *rep)
{
    const redisReply *kind;
    if (rep->type == REDIS_REPLY_ERROR)
        return "error_reply";
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
        return "unexpected_reply";
    kind = rep->element[0];
    if (rep->elements == 3 && str_is(kind, "message", 7)) {
        const redisReply *m = rep->element[2];
        if (m->type != REDIS_REPLY_STRING || !str_is(rep->element[1], r->channel, r->channel_len))
            return "unexpected_reply";
        if (m->len > TSR_REDIS_MESSAGE_MAX) {
            stat_add(&r->st_dropped);
            return NULL;
        }
        stat_add(&r->st_messages);
        r->on_message(r->ctx, m->str, m->len);
    }
    /* "pong" (the keepalive) and (un)subscribe confirmations: traffic, nothing else. */
    return NULL;
}

/* Runs the subscribed connection until it is lost (returns why) or stop (NULL). */
static const char *sub_loop(tsr_redis *r, redisContext *c)
{
    const char *ping_argv[1] = {"PING"};
    size_t ping_lens[1] = {4};
    int64_t next_ping = mono_ms() + PING_EVERY_MS, ping_deadline = 0;
    int ping_out = 0;

    while (!sub_stopping(r)) {
        int64_t now = mono_ms();
        redisReply *rep = NULL;
        const char *why;
        int w;

        if (ping_out && now >= ping_deadline)
            return "timeout";
        if (!ping_out && now >= next_ping) {
            if (redisAppendCommandArgv(c, 1, ping_argv, ping_lens) != REDIS_OK || sub_flush(c) != 0)
                return ctx_reason(c);
            ping_out = 1;
            ping_deadline = now + TSR_REDIS_TIMEOUT_MS;
            next_ping = now + PING_EVERY_MS;
        }
        w = sub_wait(r, c, ping_out ? ping_deadline : next_ping, &rep);
        if (w < 0)
            return ctx_reason(c);
        if (w == 0)
            continue;
        ping_out = 0; /* any traffic proves the connection alive */
        why = sub_handle(r, rep);
        freeReplyObject(rep);
        if (why != NULL)
            return why;
    }
    return NULL;
}

/* Reports a change of state to the callee; never the same value twice in a row.
 * The callee starts as "not subscribed", so the first report is always 1. */
static void sub_report(tsr_redis *r, int *reported, int v)
{
    atomic_store(&r->subscribed, v);
    if (*reported == v)
        return;
    *reported = v;
    if (r->on_state != NULL)
        r->on_state(r->ctx, v);
}

static void *sub_main(void *arg)
{
    tsr_redis *r = arg;
    int reported = 0, confirmed_once = 0, logged = -1;
    int64_t delay = 0;
    sigset_t set;

    /* This thread writes only on its own socket: keep a reset peer's SIGPIPE here. */
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    (void)pthread_sigmask(SIG_BLOCK, &set, NULL);

    while (!sub_stopping(r)) {
        const char *reason = NULL;
        redisContext *c = sub_connect(r, &reason);
        if (c != NULL) {
            delay = 0;
            if (confirmed_once)
                stat_add(&r->st_resubscribes);
            confirmed_once = 1;
            if (logged != 1)
                tsr_log(TSR_LOG_INFO, "redis subscribed", TSR_F_STR("host", r->host),
                        TSR_F_INT("port", r->port));
            logged = 1;
            sub_report(r, &reported, 1);
            reason = sub_loop(r, c);
            redisFree(c);
        }
        if (sub_stopping(r))
            break;
        if (logged != 0)
            tsr_log(TSR_LOG_WARN, "redis subscription lost", TSR_F_STR("host", r->host),
                    TSR_F_INT("port", r->port), TSR_F_STR("reason", reason));
        logged = 0;
        sub_report(r, &reported, 0);
        delay = delay == 0 ? BACKOFF_MIN_MS : delay * 2;
        if (delay > BACKOFF_MAX_MS)
            delay = BACKOFF_MAX_MS;
        sub_sleep(r, delay);
    }
    /* Stopping: no callback (the owner is tearing down), just the flag. */
    atomic_store(&r->subscribed, 0);
    return NULL;
}

tsr_err tsr_redis_subscribe_start(tsr_redis *r, const char *channel,
                                  tsr_redis_message_fn on_message, tsr_redis_state_fn on_state,
                                  void *ctx)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    size_t clen;

    if (r == NULL || channel == NULL || on_message == NULL)
        return TSR_ERR_INVALID;
    clen = strnlen(channel, CHANNEL_MAX + 1);
    if (clen == 0 || clen > CHANNEL_MAX)
        return TSR_ERR_INVALID;
    pthread_mutex_lock(&r->sub_mu);
    if (r->sub_started || sub_stopping(r)) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    memcpy(r->channel, channel, clen);
    r->channel[clen] = '\0';
    r->channel_len = clen;
    r->on_message = on_message;
    r->on_state = on_state;
    r->ctx = ctx;
    if (pthread_create(&r->sub_thread, NULL, sub_main, r) != 0) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    r->sub_started = 1;
    rc = TSR_OK;
out:
    pthread_mutex_unlock(&r->sub_mu);
    return rc;
}

int tsr_redis_subscribed(tsr_redis *r)
{
    return r != NULL && atomic_load(&r->subscribed) != 0;
}

void tsr_redis_get_stats(tsr_redis *r, tsr_redis_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (r == NULL)
        return;
    out->commands = atomic_load_explicit(&r->st_commands, memory_order_relaxed);
    out->failures = atomic_load_explicit(&r->st_failures, memory_order_relaxed);
    out->skipped = atomic_load_explicit(&r->st_skipped, memory_order_relaxed);
    out->messages = atomic_load_explicit(&r->st_messages, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&r->st_dropped, memory_order_relaxed);
    out->resubscribes = atomic_load_explicit(&r->st_resubscribes, memory_order_relaxed);
}
