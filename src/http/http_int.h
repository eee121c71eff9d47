/* http_int.h: what the files of src/http share: the server and request
 * structs, the route table, response builders, JSON body helpers, the guards
 * (cookie session, CSRF, admin key) and the metrics. Internal to src/http/. */
#ifndef TSR_HTTP_INT_H
#define TSR_HTTP_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>

#include "auth/auth.h"
#include "auth/tokens.h"
#include "http/http.h"

#define TSR_HTTP_BODY_MAX (64 * 1024)       /* request bodies over this: 413 */
#define TSR_HTTP_DISCARD_MAX (16 * 1024 * 1024) /* chunked bodies past this: connection closed */
#define TSR_HTTP_HEADER_MEM (32 * 1024)     /* per-connection memory: request line + headers */
#define TSR_HTTP_IDLE_TIMEOUT 30            /* seconds a connection may stay silent */
#define TSR_HTTP_CONN_MAX 4096              /* open connections at once */
#define TSR_HTTP_ROUTES_MAX 32
#define TSR_HTTP_ORIGINS_MAX 16
#define TSR_HTTP_ORIGIN_MAX 256
#define TSR_HTTP_URL_MAX 512
#define TSR_HTTP_RETRY_AFTER_BUSY 1         /* seconds, when the hashing queue is full */
#define TSR_HTTP_SESSIONS_LIST_MAX 1000     /* sessions shown by GET /v1/sessions */
#define TSR_HTTP_USERS_PAGE_DEFAULT 50

typedef struct tsr_http_req tsr_http_req;

/* A route handler: answers with one of the tsr_http_reply_* calls, or asks for
 * pool work with tsr_http_defer. Runs on a request thread. */
typedef void (*tsr_http_handler)(tsr_http_req *r);

/* Route flags. */
#define TSR_ROUTE_ANY_METHOD 1u   /* matches every method (forward-auth) */

typedef struct tsr_http_route {
    const char *method;     /* "GET", ...; ignored with TSR_ROUTE_ANY_METHOD */
    const char *pattern;    /* "/v1/admin/users/{id}": {id} matches one segment */
    tsr_http_handler fn;
    unsigned flags;
} tsr_http_route;

struct tsr_http_server {
    struct MHD_Daemon *daemon;
    const tsr_config *cfg;
    tsr_auth *auth;
    tsr_store *store;     /* borrowed from auth */
    tsr_pool *pool;
    int tls;
    char public_url[TSR_HTTP_URL_MAX];
    /* Origins accepted for CSRF: the public URL's, then security.allowed_origins. */
    char origins[TSR_HTTP_ORIGINS_MAX][TSR_HTTP_ORIGIN_MAX];
    size_t norigins;
    char *tls_cert_pem, *tls_key_pem; /* kept until stop; the key is wiped */
    size_t tls_cert_len, tls_key_len;
    /* Drain: requests alive, pool jobs not yet resumed, and the stop flag. */
    atomic_size_t inflight;
    pthread_mutex_t jobs_mu;
    size_t jobs;
    int stopping;
};

typedef enum tsr_http_state {
    TSR_REQ_INVALID = 0,
    TSR_REQ_BODY,        /* receiving the body */
    TSR_REQ_SUSPENDED,   /* work queued on the pool */
    TSR_REQ_READY,       /* r->resp is set and waits to be queued */
    TSR_REQ_QUEUED       /* handed to libmicrohttpd */
} tsr_http_state;

/* One request: created at the first call of the access handler, freed when
 * libmicrohttpd reports it completed. The header pointers are borrowed from
 * libmicrohttpd and stay valid until then (suspended connections included). */
struct tsr_http_req {
    tsr_http_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    int route;               /* index in the route table; -1 when none matched */
    char param[TSR_ID_MAX + 1]; /* the {id} segment */
    tsr_http_state state;
    uint64_t t_start_ns;
    int counted;            /* request metrics recorded (when the answer was queued) */
    /* Body: bounded, wiped when freed (it may hold passwords). */
    char *body;
    size_t body_len, body_cap, body_seen;
    int body_too_large;
    json_t *json;            /* parsed body, when the handler asked for it */
    /* Client. */
    char ip[TSR_IP_MAX + 1];
    /* Pool work and what it needs. */
    tsr_http_handler work;
    void *work_ctx;          /* freed with work_free at completion */
    void (*work_free)(void *);
    /* Response. */
    int status;
    struct MHD_Response *resp;
    int no_store;
};

/* ---- router.c ---- */

/* Finds the route of method and path; *param gets the {id} segment.
 * Returns the route index, -1 for no path match, -2 for a path matched under
 * another method (405; allow then lists the methods, "GET, POST"). */
int tsr_http_route_find(const char *method, const char *path, char *param /* OUT */,
                        size_t pcap, char *allow /* OUT */, size_t acap);
const tsr_http_route *tsr_http_route_get(int idx); /* NULL when out of range */
size_t tsr_http_route_count(void);

/* ---- respond.c ---- */

/* Builds the response (status, body copied, Content-Type, the headers every
 * response carries) into r->resp. Later calls replace an earlier response.
 * Returns TSR_OK or TSR_ERR_NOMEM (then r->resp is NULL: the core answers 500). */
tsr_err tsr_http_reply(tsr_http_req *r, int status, const char *ctype, const char *body,
                       size_t len);
/* JSON body; takes the reference to v (even on failure). secret: the body holds a
 * credential (it is wiped when sent) and Cache-Control: no-store is added. */
tsr_err tsr_http_reply_json(tsr_http_req *r, int status, json_t *v, int secret);
/* An empty answer (204 and the like). */
tsr_err tsr_http_reply_empty(tsr_http_req *r, int status);
/* problem+json {type, title, status, code, detail}. detail is English we wrote,
 * never request data. */
tsr_err tsr_http_problem(tsr_http_req *r, int status, const char *code, const char *detail);
/* Takes a heap body (malloc) and answers with it; it is freed by libmicrohttpd,
 * wiped first when secret (which also adds Cache-Control: no-store). The body
 * is released even on failure. */
tsr_err tsr_http_reply_owned(tsr_http_req *r, int status, const char *ctype, char *body,
                             size_t len, int secret);
/* RFC 6749 5.2 error of the OAuth endpoints: {"error","error_description"},
 * application/json, Cache-Control: no-store, Pragma: no-cache; 503 adds
 * Retry-After: 1. description is English we wrote, never request data. */
tsr_err tsr_http_oauth_error(tsr_http_req *r, int status, const char *error,
                             const char *description);
/* 429 {"error":"rate_limited"} with Retry-After: secs (at least 1). */
void tsr_http_oauth_rate_limited(tsr_http_req *r, int64_t secs);
/* The problem for an error of auth or the store (status and code from the error). */
tsr_err tsr_http_problem_err(tsr_http_req *r, tsr_err e, const char *detail);
/* 429 rate_limited with Retry-After: secs (at least 1). */
void tsr_http_rate_limited(tsr_http_req *r, int64_t secs);
/* Adds a header to the current response (no-op without one). */
void tsr_http_header(tsr_http_req *r, const char *name, const char *value);
/* Marks the response as carrying credentials: Cache-Control: no-store. */
void tsr_http_no_store(tsr_http_req *r);
/* The HTTP status of an error. */
int tsr_http_status_of(tsr_err e);

/* Request header, or NULL. */
const char *tsr_http_req_header(tsr_http_req *r, const char *name);
/* Query argument, or NULL. */
const char *tsr_http_req_query(tsr_http_req *r, const char *name);

/* Parses the body as one JSON object (duplicate keys rejected) into r->json.
 * On failure answers 400 invalid_request and returns TSR_ERR_INVALID. */
TSR_MUST_CHECK tsr_err tsr_http_body_object(tsr_http_req *r);
/* Strict members of r->json. Missing required or wrong type: answers 400
 * invalid_request naming the field and returns TSR_ERR_INVALID. Optional and
 * absent: TSR_OK with *out NULL (strings) or unchanged. */
TSR_MUST_CHECK tsr_err tsr_http_json_str(tsr_http_req *r, const char *key, int required,
                          const char **out /* OUT */, size_t *len /* OUT */);
TSR_MUST_CHECK tsr_err tsr_http_json_bool(tsr_http_req *r, const char *key, int *out /* OUT */, int *present);
/* roles: an array of role-name strings joined into "a,b" (validated). */
TSR_MUST_CHECK tsr_err tsr_http_json_roles(tsr_http_req *r, const char *key, char *out /* OUT */,
                            size_t cap, int *present);
/* 400 when r->json has a member outside the NULL-terminated list. */
TSR_MUST_CHECK tsr_err tsr_http_json_only(tsr_http_req *r, const char *const *allowed);
/* Wipes a string member of r->json in place (passwords, before the free). */
void tsr_http_json_wipe(tsr_http_req *r, const char *key);

/* A JSON text written into a caller's buffer without allocation (the hot path
 * of /v1/verify, and bodies holding tokens that must not pass through jansson's
 * unwiped copies). A write that does not fit sets failed and stops writing. */
typedef struct tsr_jbuf {
    char *p;
    size_t len, cap;
    int failed;
} tsr_jbuf;
void tsr_jbuf_init(tsr_jbuf *b, char *p, size_t cap);
void tsr_jbuf_raw(tsr_jbuf *b, const char *s);                 /* s as is (our literals) */
void tsr_jbuf_str(tsr_jbuf *b, const char *s, size_t n);       /* "s", JSON-escaped */
void tsr_jbuf_int(tsr_jbuf *b, int64_t v);
/* "key":"value" with the comma before it when not the first member. */
void tsr_jbuf_kv_str(tsr_jbuf *b, const char *key, const char *s, size_t n);
void tsr_jbuf_kv_int(tsr_jbuf *b, const char *key, int64_t v);
/* A JSON array of the comma-separated names of roles. */
void tsr_jbuf_roles(tsr_jbuf *b, const char *roles);

/* JSON views of the records. */
json_t *tsr_http_roles_json(const char *roles);
json_t *tsr_http_user_json(const tsr_user *u, int admin_view);
json_t *tsr_http_session_json(const tsr_session *s);

/* ---- form.c ---- */

#define TSR_FORM_FIELDS_MAX 32              /* parameters in one request */
#define TSR_FORM_BODY_MAX TSR_HTTP_BODY_MAX

/* One parameter; name and value are NUL-terminated and borrowed from the parsed
 * buffer (or the JSON object). */
typedef struct tsr_form_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} tsr_form_field;

typedef struct tsr_form {
    tsr_form_field f[TSR_FORM_FIELDS_MAX];
    size_t n;
} tsr_form;

/* Parses application/x-www-form-urlencoded IN PLACE: buf holds len bytes and
 * buf[len] must be writable too (it may get a NUL). '&'-separated name=value
 * pairs, '+' is a space, %XX a byte (either case); empty segments are skipped.
 * TSR_ERR_INVALID: a pair without '=', an empty name, a bad escape, a NUL byte
 * (raw or %00); TSR_ERR_EXISTS: a name given twice; TSR_ERR_TOO_LARGE: over
 * TSR_FORM_BODY_MAX bytes or TSR_FORM_FIELDS_MAX pairs. out is zeroed on failure.
 * len 0 gives no fields (buf may then be NULL). */
TSR_MUST_CHECK tsr_err tsr_form_parse(char *buf, size_t len, tsr_form *out /* OUT */);
/* The same view of a JSON object whose members are all strings (obj is
 * borrowed and must outlive out). TSR_ERR_INVALID for another type, an empty
 * name or a NUL in a value; TSR_ERR_TOO_LARGE beyond TSR_FORM_FIELDS_MAX. */
TSR_MUST_CHECK tsr_err tsr_form_from_json(const json_t *obj, tsr_form *out /* OUT */);
/* The value of name, or NULL when absent or empty (RFC 6749 3.1: a parameter
 * without a value is treated as omitted). */
const char *tsr_form_get(const tsr_form *f, const char *name, size_t *len /* OUT */);
/* Wipes the value of name in place (passwords, tokens). */
void tsr_form_wipe(const tsr_form *f, const char *name);
/* Wipes every value in place (the request is done with them). */
void tsr_form_wipe_all(const tsr_form *f);

/* ---- server.c ---- */

/* Asks for fn(r) to run on the hashing pool after the handler returns: the
 * connection is suspended meanwhile and resumed when fn has answered. ctx is
 * kept in r->work_ctx and released with free_fn at completion. */
void tsr_http_defer(tsr_http_req *r, tsr_http_handler fn, void *ctx, void (*free_fn)(void *));

/* ---- guard.c ---- */

/* The session of the request's cookie. Answers 401 unauthenticated (or 503)
 * and returns the error when there is none. state_change: also checks CSRF
 * (X-CSRF-Token and Origin/Sec-Fetch-Site) and answers 403 csrf. */
TSR_MUST_CHECK tsr_err tsr_http_cookie_session(tsr_http_req *r, int state_change, tsr_session *s /* OUT */,
                                tsr_user *u /* OUT */);
/* The raw cookie value, or NULL. */
const char *tsr_http_cookie(tsr_http_req *r, size_t *len /* OUT */);
/* The request's Origin when it is one of the trusted origins (public URL,
 * security.allowed_origins): responses then carry CORS headers for it. NULL
 * otherwise. Borrowed from the server. */
const char *tsr_http_cors_origin(tsr_http_req *r);
/* Origin / Sec-Fetch-Site check alone (login, signup): 403 csrf on failure. */
TSR_MUST_CHECK tsr_err tsr_http_origin_check(tsr_http_req *r);
/* Admin key as Bearer: 401 unauthenticated otherwise. */
TSR_MUST_CHECK tsr_err tsr_http_admin_guard(tsr_http_req *r);
/* The same check without an answer (the OAuth endpoints answer in their own
 * shape): TSR_OK, or TSR_ERR_UNAUTHENTICATED (*sent: a bearer was presented). */
TSR_MUST_CHECK tsr_err tsr_http_admin_key_check(tsr_http_req *r, int *sent /* OUT */);

/* Who calls the user's own session routes (GET/DELETE /v1/sessions*). */
typedef struct tsr_http_caller {
    char user_id[TSR_ID_MAX + 1];
    char sid[TSR_ID_MAX + 1];   /* the current session: the cookie's, or the token's sid */
    int bearer;                 /* authenticated by an access token */
} tsr_http_caller;
/* An access token in Authorization: Bearer (verified TSR_VERIFY_STATEFUL; no CSRF
 * check: a header is not an ambient credential) wins over the session cookie
 * (tsr_http_cookie_session with state_change). Answers 401 invalid_token with
 * WWW-Authenticate for a bad token, 401/403/503 as the cookie guard does. */
TSR_MUST_CHECK tsr_err tsr_http_caller_get(tsr_http_req *r, int state_change,
                                           tsr_http_caller *out /* OUT */);
/* 401 invalid_token problem with WWW-Authenticate (RFC 6750) and no-store. */
void tsr_http_invalid_token(tsr_http_req *r, const char *detail);
/* The bearer credential of Authorization, or NULL (len set). */
const char *tsr_http_bearer(tsr_http_req *r, size_t *len /* OUT */);
/* Set-Cookie with the session secret, and the clearing form. */
void tsr_http_set_cookie(tsr_http_req *r, const char *secret);
void tsr_http_clear_cookie(tsr_http_req *r);

/* ---- handlers (one file per API area) ---- */
void tsr_h_signup(tsr_http_req *r);
void tsr_h_password(tsr_http_req *r);
void tsr_h_login(tsr_http_req *r);
void tsr_h_session_get(tsr_http_req *r);
void tsr_h_logout(tsr_http_req *r);
void tsr_h_sessions_list(tsr_http_req *r);
void tsr_h_session_delete(tsr_http_req *r);
void tsr_h_sessions_delete(tsr_http_req *r);
void tsr_h_admin_user_create(tsr_http_req *r);
void tsr_h_admin_user_list(tsr_http_req *r);
void tsr_h_admin_user_get(tsr_http_req *r);
void tsr_h_admin_user_patch(tsr_http_req *r);
void tsr_h_admin_user_revoke(tsr_http_req *r);
void tsr_h_admin_user_delete(tsr_http_req *r);
/* h_oauth.c: 200 {access_token, token_type:"Bearer", expires_in} and, when
 * oauth, refresh_token (when the grant has one) and scope (RFC 6749 5.1), in a
 * body wiped when sent, with Cache-Control: no-store and Pragma: no-cache. */
void tsr_http_reply_grant(tsr_http_req *r, const tsr_auth_grant *g, int oauth);
void tsr_h_session_token(tsr_http_req *r);
void tsr_h_oauth_token(tsr_http_req *r);
void tsr_h_oauth_revoke(tsr_http_req *r);
void tsr_h_oauth_introspect(tsr_http_req *r);
void tsr_h_jwks(tsr_http_req *r);
void tsr_h_openid_configuration(tsr_http_req *r);
void tsr_h_oauth_metadata(tsr_http_req *r);
void tsr_h_admin_keys_rotate(tsr_http_req *r);
void tsr_h_admin_keys_list(tsr_http_req *r);
void tsr_h_verify(tsr_http_req *r);
void tsr_h_healthz(tsr_http_req *r);
void tsr_h_readyz(tsr_http_req *r);
void tsr_h_metrics(tsr_http_req *r);

/* ---- metrics.c (process-wide counters) ---- */

typedef enum tsr_metric_verify {
    TSR_MV_OK = 0,
    TSR_MV_MISSING,      /* no credential */
    TSR_MV_INVALID,      /* a credential that is not valid */
    TSR_MV_REVOKED,      /* a bearer token whose sid or jti was revoked */
    TSR_MV_FORBIDDEN,    /* valid, lacks the role */
    TSR_MV_ERROR,        /* store down */
    TSR_MV__COUNT
} tsr_metric_verify;

/* The credential a verification looked at (label "method"). */
typedef enum tsr_metric_cred {
    TSR_MC_NONE = 0,
    TSR_MC_COOKIE,
    TSR_MC_BEARER,
    TSR_MC__COUNT
} tsr_metric_cred;

/* Tokens issued, by grant (label "grant"). */
typedef enum tsr_metric_grant {
    TSR_MG_PASSWORD = 0,
    TSR_MG_REFRESH,
    TSR_MG_SESSION,      /* POST /v1/session/token */
    TSR_MG__COUNT
} tsr_metric_grant;

typedef enum tsr_metric_login {
    TSR_ML_OK = 0,
    TSR_ML_FAILED,
    TSR_ML_RATE_LIMITED,
    TSR_ML__COUNT
} tsr_metric_login;

uint64_t tsr_http_now_ns(void);
void tsr_metrics_request(int route, int status, uint64_t ns);
void tsr_metrics_verify(tsr_metric_cred c, tsr_metric_verify v);
void tsr_metrics_token(tsr_metric_grant g);
void tsr_metrics_login(tsr_metric_login v);
void tsr_metrics_busy(void);   /* a job refused: hashing queue full */
void tsr_metrics_store(int op, uint64_t ns);
/* Prometheus text exposition into a heap string (free it). */
TSR_MUST_CHECK tsr_err tsr_metrics_render(tsr_http_server *srv, char **out /* OUT */, size_t *len /* OUT */);

/* Store ops timed by the metered wrapper (label values of store latency). */
typedef enum tsr_metric_store_op {
    TSR_MS_PING = 0,
    TSR_MS_USER_READ,
    TSR_MS_USER_WRITE,
    TSR_MS_SESSION_READ,
    TSR_MS_SESSION_WRITE,
    TSR_MS_SESSION_TOUCH,
    TSR_MS_META,
    TSR_MS_PURGE,
    TSR_MS__COUNT
} tsr_metric_store_op;

#endif
