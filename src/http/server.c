/* server.c: the libmicrohttpd daemon: start-up checks, the per-request
 * context, bounded bodies, dispatch to the route table, pool work on suspended
 * connections, request logs and metrics, and the graceful stop.
 *
 * The daemon runs an epoll thread pool (server.threads). A request goes:
 * first call (route found, early 404/405/413 from the headers alone), body
 * calls (appended to a buffer capped at 64 KiB; past the cap it is counted and
 * dropped, past 16 MiB the connection is closed), the final call (the handler
 * answers, or defers to the hashing pool: the connection is suspended and the
 * pool thread resumes it once it has answered; the handler is then re-entered
 * and queues the stored response). Slow clients are cut by the idle timeout and
 * the per-connection memory limit caps the request line and headers. */
#include "http/http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/tokens.h"
#include "common/log.h"
#include "crypto/crypto.h"

#define TLS_FILE_MAX (1024 * 1024)
#define LISTEN_BACKLOG 1024

uint64_t tsr_http_now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void set_err(char *errbuf, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *errbuf, size_t errcap, const char *fmt, ...)
{
    va_list ap;
    if (errbuf == NULL || errcap == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(errbuf, errcap, fmt, ap);
    va_end(ap);
}

/* ---- the request context ---- */

static tsr_http_req *req_new(tsr_http_server *srv, struct MHD_Connection *conn, const char *url,
                             const char *method)
{
    tsr_http_req *r = calloc(1, sizeof *r);
    const union MHD_ConnectionInfo *ci;

    if (r == NULL)
        return NULL;
    r->srv = srv;
    r->conn = conn;
    r->url = url;
    r->method = method;
    r->route = -1;
    r->t_start_ns = tsr_http_now_ns();
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        const char *ok = NULL;
        if (sa->sa_family == AF_INET)
            ok = inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                           r->ip, sizeof r->ip);
        else if (sa->sa_family == AF_INET6)
            ok = inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                           r->ip, sizeof r->ip);
        if (ok == NULL)
            r->ip[0] = '\0';
    }
    atomic_fetch_add(&srv->inflight, 1);
    return r;
}

static void req_free(tsr_http_req *r)
{
    if (r == NULL)
        return;
    if (r->body != NULL) {
        tsr_wipe(r->body, r->body_cap);
        free(r->body);
    }
    /* Passwords the handlers did not get to wipe (early refusals). */
    tsr_http_json_wipe(r, "password");
    tsr_http_json_wipe(r, "current_password");
    tsr_http_json_wipe(r, "new_password");
    json_decref(r->json);
    if (r->work_free != NULL)
        r->work_free(r->work_ctx);
    if (r->resp != NULL)
        MHD_destroy_response(r->resp);
    atomic_fetch_sub(&r->srv->inflight, 1);
    free(r);
}

/* Appends body bytes; past the cap they are only counted. Returns 0 when the
 * connection must be closed (a chunked body far beyond the cap). */
static int body_append(tsr_http_req *r, const char *data, size_t n)
{
    r->body_seen += n;
    if (r->body_seen > TSR_HTTP_DISCARD_MAX)
        return 0;
    if (r->body_too_large)
        return 1;
    if (r->body_len + n > TSR_HTTP_BODY_MAX) {
        r->body_too_large = 1;
        return 1;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        /* Grow by copy so that no unwiped copy of a password is left behind. */
        size_t cap = r->body_cap == 0 ? 1024 : r->body_cap;
        char *nb;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > TSR_HTTP_BODY_MAX + 1)
            cap = TSR_HTTP_BODY_MAX + 1;
        nb = malloc(cap);
        if (nb == NULL)
            return 0;
        if (r->body != NULL) {
            memcpy(nb, r->body, r->body_len);
            tsr_wipe(r->body, r->body_cap);
            free(r->body);
        }
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 1;
}

/* Content-Length over the cap: refuse before reading the body. */
static int declared_too_large(tsr_http_req *r)
{
    const char *cl = tsr_http_req_header(r, "Content-Length");
    unsigned long long v = 0;

    if (cl == NULL)
        return 0;
    for (const char *p = cl; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return 0; /* libmicrohttpd rejects a malformed length itself */
        if (v > TSR_HTTP_BODY_MAX)
            return 1;
        v = v * 10 + (unsigned long long)(*p - '0');
    }
    return v > TSR_HTTP_BODY_MAX;
}

static enum MHD_Result queue(tsr_http_req *r)
{
    enum MHD_Result ret;

    if (r->resp == NULL) {
        tsr_log(TSR_LOG_ERROR, "request failed without an answer",
                TSR_F_STR("method", r->method), TSR_F_INT("route", r->route));
        (void)tsr_http_problem(r, 500, "internal", "internal error");
        if (r->resp == NULL)
            return MHD_NO;
    }
    /* Counted before the answer leaves, so that a client's next request (a
     * /metrics scrape, say) already sees this one. */
    tsr_metrics_request(r->route, r->status, tsr_http_now_ns() - r->t_start_ns);
    r->counted = 1;
    ret = MHD_queue_response(r->conn, (unsigned)r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    r->state = TSR_REQ_QUEUED;
    return ret;
}

/* ---- pool work on a suspended connection ---- */

static void job_run(void *p)
{
    tsr_http_req *r = p;
    tsr_http_server *srv = r->srv;
    struct MHD_Connection *conn = r->conn;

    r->work(r);
    r->state = TSR_REQ_READY;
    /* From here on r belongs to the request thread again (and may be freed). */
    MHD_resume_connection(conn);
    pthread_mutex_lock(&srv->jobs_mu);
    srv->jobs--;
    pthread_mutex_unlock(&srv->jobs_mu);
}

void tsr_http_defer(tsr_http_req *r, tsr_http_handler fn, void *ctx, void (*free_fn)(void *))
{
    if (r->resp != NULL) {
        MHD_destroy_response(r->resp);
        r->resp = NULL;
    }
    r->work = fn;
    r->work_ctx = ctx;
    r->work_free = free_fn;
}

/* Suspends the connection and queues r->work on the pool. Returns 1 when the
 * connection was suspended (the answer is queued on re-entry, after the resume),
 * 0 when it was answered at once (shutting down). */
static int start_work(tsr_http_req *r)
{
    tsr_http_server *srv = r->srv;
    int stopping;

    pthread_mutex_lock(&srv->jobs_mu);
    stopping = srv->stopping;
    if (!stopping)
        srv->jobs++;
    pthread_mutex_unlock(&srv->jobs_mu);
    if (stopping) {
        (void)tsr_http_problem(r, 503, "unavailable", "the server is shutting down");
        tsr_http_header(r, "Retry-After", "1");
        r->state = TSR_REQ_READY;
        return 0;
    }
    r->state = TSR_REQ_SUSPENDED;
    MHD_suspend_connection(r->conn);
    if (tsr_pool_submit(srv->pool, job_run, r) == TSR_OK)
        return 1; /* r may already be back in READY: do not touch it */
    /* Queue full: answer 503 (queued when libmicrohttpd re-enters us). */
    pthread_mutex_lock(&srv->jobs_mu);
    srv->jobs--;
    pthread_mutex_unlock(&srv->jobs_mu);
    tsr_metrics_busy();
    (void)tsr_http_problem(r, 503, "unavailable", "the server is busy: retry shortly");
    tsr_http_header(r, "Retry-After", "1");
    r->state = TSR_REQ_READY;
    MHD_resume_connection(r->conn);
    return 1;
}

/* ---- libmicrohttpd callbacks ---- */

/* A CORS preflight (OPTIONS with Access-Control-Request-Method) from a trusted
 * origin for a route that exists: 204 with what the browser may send. */
static enum MHD_Result preflight(tsr_http_req *r, const char *want)
{
    char allow[64];
    char param[TSR_ID_MAX + 1];

    if (tsr_http_cors_origin(r) == NULL) {
        (void)tsr_http_problem(r, 403, "csrf", "the request comes from an origin that is not allowed");
        return queue(r);
    }
    if (tsr_http_route_find(want, r->url, param, sizeof param, allow, sizeof allow) < 0) {
        (void)tsr_http_problem(r, 404, "not_found", "no such route");
        return queue(r);
    }
    (void)tsr_http_reply_empty(r, 204);
    tsr_http_header(r, "Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE");
    tsr_http_header(r, "Access-Control-Allow-Headers", "Content-Type, X-CSRF-Token, Authorization");
    tsr_http_header(r, "Access-Control-Max-Age", "600");
    return queue(r);
}

static enum MHD_Result first_call(tsr_http_req *r)
{
    char allow[64];
    const char *want = NULL;
    int idx;

    if (strcmp(r->method, "OPTIONS") == 0) {
        want = tsr_http_req_header(r, "Access-Control-Request-Method");
        if (want != NULL)
            return preflight(r, want);
    }
    idx = tsr_http_route_find(r->method, r->url, r->param, sizeof r->param, allow, sizeof allow);

    r->route = idx;
    if (idx == -1) {
        (void)tsr_http_problem(r, 404, "not_found", "no such route");
        return queue(r);
    }
    if (idx == -2) {
        r->route = -1;
        (void)tsr_http_problem(r, 405, "method_not_allowed", "method not allowed on this route");
        tsr_http_header(r, "Allow", allow);
        return queue(r);
    }
    if (declared_too_large(r)) {
        (void)tsr_http_problem(r, 413, "too_large", "the request body is over 64 KiB");
        return queue(r);
    }
    r->state = TSR_REQ_BODY;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    tsr_http_server *srv = cls;
    tsr_http_req *r = *con_cls;
    const tsr_http_route *rt;

    if (r == NULL) {
        r = req_new(srv, conn, url, method);
        if (r == NULL)
            return MHD_NO;
        *con_cls = r;
        return first_call(r);
    }
    switch (r->state) {
    case TSR_REQ_BODY:
        break;
    case TSR_REQ_READY:
        return queue(r);
    case TSR_REQ_SUSPENDED:
    case TSR_REQ_QUEUED:
    default:
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        int keep = body_append(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return keep ? MHD_YES : MHD_NO;
    }
    /* The whole request is in. */
    if (r->body_too_large) {
        (void)tsr_http_problem(r, 413, "too_large", "the request body is over 64 KiB");
        return queue(r);
    }
    rt = tsr_http_route_get(r->route);
    if (rt == NULL)
        return MHD_NO;
    rt->fn(r);
    if (r->work != NULL && start_work(r))
        return MHD_YES;
    return queue(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    tsr_http_req *r = *con_cls;
    const tsr_http_route *rt;
    uint64_t ns;

    if (r == NULL)
        return;
    *con_cls = NULL;
    ns = tsr_http_now_ns() - r->t_start_ns;
    rt = tsr_http_route_get(r->route);
    if (!r->counted)
        tsr_metrics_request(r->route, r->status, ns);
    tsr_log(TSR_LOG_INFO, "request", TSR_F_STR("method", r->method),
            TSR_F_STR("route", rt != NULL ? rt->pattern : "unmatched"),
            TSR_F_INT("status", r->status), TSR_F_INT("duration_us", ns / 1000),
            TSR_F_STR("ip", r->ip), TSR_F_BOOL("completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK));
    req_free(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    size_t n;

    (void)vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    tsr_log(TSR_LOG_WARN, "libmicrohttpd", TSR_F_STR("detail", line));
}

/* ---- start and stop ---- */

static tsr_err read_pem(const char *path, char **out, size_t *len)
{
    tsr_err rc = TSR_ERR_IO;
    int fd = -1;
    struct stat st;
    char *buf = NULL;
    size_t got = 0;

    *out = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto out;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto out;
    if (st.st_size <= 0 || st.st_size > TLS_FILE_MAX) {
        rc = TSR_ERR_TOO_LARGE;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            goto out;
        got += (size_t)k;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
    rc = TSR_OK;
out:
    if (buf != NULL) {
        tsr_wipe(buf, (size_t)st.st_size + 1);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* "scheme://authority" of a URL, without path or trailing slash. */
static tsr_err origin_of(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    size_t n;

    if (cap > 0)
        out[0] = '\0';
    if (p == NULL || p == url)
        return TSR_ERR_INVALID;
    p += 3;
    n = (size_t)(p - url) + strcspn(p, "/?#");
    if (n == (size_t)(p - url) || n >= cap)
        return TSR_ERR_INVALID;
    memcpy(out, url, n);
    out[n] = '\0';
    return TSR_OK;
}

static tsr_err setup_origins(tsr_http_server *srv, char *errbuf, size_t errcap)
{
    const char *p = srv->cfg->security.allowed_origins;

    if (origin_of(srv->public_url, srv->origins[0], sizeof srv->origins[0]) != TSR_OK) {
        set_err(errbuf, errcap, "server.public_url is not an absolute http(s) URL");
        return TSR_ERR_INVALID;
    }
    srv->norigins = 1;
    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, ",");
        const char *s = p;
        size_t k = n;
        while (k > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            k--;
        }
        while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t' || s[k - 1] == '/'))
            k--;
        if (k > 0) {
            if (srv->norigins >= TSR_HTTP_ORIGINS_MAX || k >= TSR_HTTP_ORIGIN_MAX ||
                memchr(s, ':', k) == NULL) {
                set_err(errbuf, errcap,
                        "security.allowed_origins: at most %d origins like https://app.example.com",
                        TSR_HTTP_ORIGINS_MAX - 1);
                return TSR_ERR_INVALID;
            }
            memcpy(srv->origins[srv->norigins], s, k);
            srv->origins[srv->norigins][k] = '\0';
            srv->norigins++;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return TSR_OK;
}

static tsr_err setup_public_url(tsr_http_server *srv, const tsr_listen_addr *la, char *errbuf,
                                size_t errcap)
{
    const char *cfg_url = srv->cfg->server.public_url;
    int n;

    if (cfg_url != NULL && cfg_url[0] != '\0') {
        size_t len = strlen(cfg_url);
        while (len > 0 && cfg_url[len - 1] == '/')
            len--;
        if (len == 0 || len >= sizeof srv->public_url) {
            set_err(errbuf, errcap, "server.public_url is empty or too long");
            return TSR_ERR_INVALID;
        }
        memcpy(srv->public_url, cfg_url, len);
        srv->public_url[len] = '\0';
        return TSR_OK;
    }
    n = snprintf(srv->public_url, sizeof srv->public_url, la->family == AF_INET6 ? "%s://[%s]:%u" : "%s://%s:%u",
                 srv->tls ? "https" : "http", la->host, (unsigned)la->port);
    if (n < 0 || (size_t)n >= sizeof srv->public_url) {
        set_err(errbuf, errcap, "server.listen is too long");
        return TSR_ERR_INVALID;
    }
    return TSR_OK;
}

tsr_err tsr_http_check_config(const tsr_config *cfg, char *errbuf, size_t errcap)
{
    tsr_listen_addr la;
    int tls = cfg->server.tls_cert[0] != '\0' && cfg->server.tls_key[0] != '\0';

    if (errbuf != NULL && errcap > 0)
        errbuf[0] = '\0';
    if (tsr_listen_parse(cfg->server.listen, &la) != TSR_OK) {
        set_err(errbuf, errcap,
                "server.listen is not an address like 127.0.0.1:8080 or [::1]:8080");
        return TSR_ERR_INVALID;
    }
    if (!tls && !cfg->server.allow_insecure_http && !tsr_config_is_loopback(la.host)) {
        set_err(errbuf, errcap,
                "refusing plain HTTP on the non-loopback address %s: set server.tls_cert and "
                "server.tls_key, or server.allow_insecure_http=true behind a TLS proxy",
                la.host);
        return TSR_ERR_INVALID;
    }
    if (tls && (access(cfg->server.tls_cert, R_OK) != 0 || access(cfg->server.tls_key, R_OK) != 0)) {
        set_err(errbuf, errcap, "server.tls_cert or server.tls_key is not a readable file");
        return TSR_ERR_IO;
    }
    return TSR_OK;
}

static void server_free(tsr_http_server *srv)
{
    if (srv == NULL)
        return;
    if (srv->tls_key_pem != NULL) {
        tsr_wipe(srv->tls_key_pem, srv->tls_key_len);
        free(srv->tls_key_pem);
    }
    free(srv->tls_cert_pem);
    pthread_mutex_destroy(&srv->jobs_mu);
    free(srv);
}

tsr_err tsr_http_server_start(const tsr_config *cfg, tsr_auth *auth, tsr_pool *pool,
                              tsr_http_server **out, char *errbuf, size_t errcap)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_http_server *srv = NULL;
    tsr_listen_addr la;
    unsigned flags;
    unsigned threads;

    *out = NULL;
    if (errbuf != NULL && errcap > 0)
        errbuf[0] = '\0';
    memset(&la, 0, sizeof la);
    srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    if (pthread_mutex_init(&srv->jobs_mu, NULL) != 0) {
        free(srv);
        srv = NULL;
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    atomic_init(&srv->inflight, 0);
    srv->cfg = cfg;
    srv->auth = auth;
    srv->store = tsr_auth_get_store(auth);
    srv->pool = pool;
    srv->tls = cfg->server.tls_cert[0] != '\0' && cfg->server.tls_key[0] != '\0';

    rc = tsr_http_check_config(cfg, errbuf, errcap);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_listen_parse(cfg->server.listen, &la);
    if (rc != TSR_OK)
        goto out;
    rc = setup_public_url(srv, &la, errbuf, errcap);
    if (rc != TSR_OK)
        goto out;
    rc = setup_origins(srv, errbuf, errcap);
    if (rc != TSR_OK)
        goto out;
    /* The token issuer is the public URL unless tokens.issuer says otherwise
     * (auth keeps a configured one): set before the first request. */
    rc = tsr_auth_set_default_issuer(auth, srv->public_url);
    if (rc != TSR_OK) {
        set_err(errbuf, errcap,
                "server.public_url cannot be the token issuer (too long): set tokens.issuer");
        goto out;
    }
    if (srv->tls) {
        rc = read_pem(cfg->server.tls_cert, &srv->tls_cert_pem, &srv->tls_cert_len);
        if (rc != TSR_OK) {
            set_err(errbuf, errcap, "cannot read server.tls_cert");
            goto out;
        }
        rc = read_pem(cfg->server.tls_key, &srv->tls_key_pem, &srv->tls_key_len);
        if (rc != TSR_OK) {
            set_err(errbuf, errcap, "cannot read server.tls_key");
            goto out;
        }
    }

    threads = cfg->server.threads > 0 ? cfg->server.threads : 1;
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG;
    if (la.family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (srv->tls)
        flags |= MHD_USE_TLS;
    {
        struct MHD_OptionItem opts[16];
        size_t no = 0;
        /* The logger first, so that every message of libmicrohttpd goes through it. */
        opts[no++] =
            (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &la.sa};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, TSR_HTTP_CONN_MAX, NULL};
        opts[no++] =
            (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, TSR_HTTP_IDLE_TIMEOUT, NULL};
        opts[no++] =
            (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, TSR_HTTP_HEADER_MEM, NULL};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, LISTEN_BACKLOG, NULL};
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL};
        opts[no++] =
            (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv};
        if (srv->tls) {
            opts[no++] =
                (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert_pem};
            opts[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key_pem};
        }
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
        srv->daemon = MHD_start_daemon(flags, la.port, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY,
                                       opts, MHD_OPTION_END);
    }
    if (srv->daemon == NULL) {
        rc = TSR_ERR_IO;
        set_err(errbuf, errcap,
                "cannot serve on %s (address in use, not allowed, or a bad TLS certificate or key)",
                cfg->server.listen);
        goto out;
    }
    tsr_log(TSR_LOG_INFO, "listening", TSR_F_STR("addr", cfg->server.listen),
            TSR_F_STR("public_url", srv->public_url), TSR_F_INT("threads", threads),
            TSR_F_BOOL("tls", srv->tls));
    *out = srv;
    srv = NULL;
    rc = TSR_OK;
out:
    server_free(srv);
    return rc;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void tsr_http_server_stop(tsr_http_server *s, unsigned grace_seconds)
{
    uint64_t deadline;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->jobs_mu);
    s->stopping = 1;
    pthread_mutex_unlock(&s->jobs_mu);
    /* No MHD_quiesce_daemon: on an epoll daemon with worker threads it races the
     * workers' own removal of the listen socket from their epoll sets, and
     * libmicrohttpd 0.9.75 aborts the process when it loses ("Failed to remove
     * listen FD from epoll set", seen at SIGTERM under load; a known defect).
     * Connections still arrive during the grace period; hashing work is refused
     * with 503 (start_work), everything else is served until the daemon stops. */
    deadline = tsr_http_now_ns() + (uint64_t)grace_seconds * 1000000000u;
    for (;;) {
        size_t jobs;
        pthread_mutex_lock(&s->jobs_mu);
        jobs = s->jobs;
        pthread_mutex_unlock(&s->jobs_mu);
        /* Suspended connections must be resumed before the daemon stops:
         * hashing work always runs to its end. */
        if (jobs == 0 && (atomic_load(&s->inflight) == 0 || tsr_http_now_ns() >= deadline))
            break;
        nap_ms(10);
    }
    MHD_stop_daemon(s->daemon);
    tsr_log(TSR_LOG_INFO, "stopped", TSR_F_INT("unfinished", atomic_load(&s->inflight)));
    server_free(s);
}
