/* h_verify.c: GET /v1/verify, the forward-auth endpoint of reverse proxies
 * (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth), and the
 * operations endpoints /healthz, /readyz and /metrics.
 *
 * verify answers 200 with X-Auth-* headers for a valid access token
 * (Authorization: Bearer, checked by verify.bearer: stateless, revocation-list
 * or stateful) or a live session cookie, 401 with WWW-Authenticate (RFC 6750:
 * error="invalid_token" when a credential was sent but is not valid), 403 when
 * ?role= names a role the subject lacks. When both are sent the bearer token
 * decides: it is the explicit credential, the cookie an ambient one. The answer
 * is never cached.
 *
 * The bearer path is the benchmark's hot path: the body is formatted into a
 * stack buffer (no jansson), nothing is allocated but libmicrohttpd's response,
 * and nothing is logged at info level. */
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/tokens.h"
#include "common/log.h"
#include "crypto/crypto.h"

#define REALM_MISSING "Bearer realm=\"tessera\""
#define REALM_INVALID "Bearer realm=\"tessera\", error=\"invalid_token\""
#define VERIFY_BODY_MAX 2048 /* ids, roles (255 bytes) and exp, escaped */

static void verify_refuse(tsr_http_req *r, tsr_metric_cred c, tsr_metric_verify v,
                          const char *detail)
{
    int sent = c != TSR_MC_NONE;

    tsr_metrics_verify(c, v);
    (void)tsr_http_problem(r, 401, sent ? "invalid_token" : "unauthenticated", detail);
    tsr_http_header(r, "WWW-Authenticate", sent ? REALM_INVALID : REALM_MISSING);
    tsr_http_no_store(r);
}

static void verify_forbidden(tsr_http_req *r, tsr_metric_cred c)
{
    tsr_metrics_verify(c, TSR_MV_FORBIDDEN);
    (void)tsr_http_problem(r, 403, "forbidden", "the subject lacks the required role");
    tsr_http_no_store(r);
}

static void verify_bearer(tsr_http_req *r, const char *token, size_t len, const char *role)
{
    tsr_bearer b;
    char body[VERIFY_BODY_MAX];
    tsr_jbuf j;
    tsr_err rc;

    rc = tsr_auth_bearer_verify(r->srv->auth, token, len, r->srv->cfg->verify.bearer,
                                (int64_t)time(NULL), &b);
    if (rc != TSR_OK) {
        if (tsr_err_is_token(rc)) {
            if (tsr_log_enabled(TSR_LOG_DEBUG))
                tsr_log(TSR_LOG_DEBUG, "bearer refused", TSR_F_ERR(rc), TSR_F_STR("ip", r->ip));
            verify_refuse(r, TSR_MC_BEARER,
                          rc == TSR_ERR_TOKEN_REVOKED ? TSR_MV_REVOKED : TSR_MV_INVALID,
                          rc == TSR_ERR_TOKEN_REVOKED ? "the access token was revoked"
                                                      : "the access token is not valid");
            return;
        }
        tsr_metrics_verify(TSR_MC_BEARER, TSR_MV_ERROR);
        (void)tsr_http_problem_err(r, rc, "the access token could not be checked");
        tsr_http_no_store(r);
        return;
    }
    if (role != NULL && !tsr_auth_roles_has(b.roles, role, strlen(role))) {
        verify_forbidden(r, TSR_MC_BEARER);
        return;
    }
    tsr_jbuf_init(&j, body, sizeof body);
    tsr_jbuf_raw(&j, "{");
    tsr_jbuf_kv_str(&j, "sub", b.sub, strlen(b.sub));
    tsr_jbuf_kv_str(&j, "sid", b.sid, strlen(b.sid));
    tsr_jbuf_kv_str(&j, "method", "bearer", 6);
    tsr_jbuf_raw(&j, ",\"roles\":");
    tsr_jbuf_roles(&j, b.roles);
    tsr_jbuf_kv_int(&j, "exp", b.exp);
    tsr_jbuf_raw(&j, "}");
    if (j.failed) {
        tsr_metrics_verify(TSR_MC_BEARER, TSR_MV_ERROR);
        (void)tsr_http_problem(r, 500, "internal", "the answer does not fit");
        return;
    }
    r->no_store = 1; /* set before the response exists: one header, added with the others */
    if (tsr_http_reply(r, 200, "application/json", body, j.len) != TSR_OK)
        return;
    tsr_metrics_verify(TSR_MC_BEARER, TSR_MV_OK);
    tsr_http_header(r, "X-Auth-Subject", b.sub);
    if (b.username[0] != '\0')
        tsr_http_header(r, "X-Auth-Username", b.username);
    if (b.roles[0] != '\0') /* an empty header cannot be sent: absent means none */
        tsr_http_header(r, "X-Auth-Roles", b.roles);
    tsr_http_header(r, "X-Auth-Session", b.sid);
    tsr_http_header(r, "X-Auth-Method", "bearer");
}

static void verify_cookie(tsr_http_req *r, const char *role)
{
    size_t clen = 0;
    const char *cookie;
    tsr_session s;
    tsr_user u;
    json_t *roles = NULL;
    int64_t exp;
    tsr_err rc;

    memset(&s, 0, sizeof s);
    memset(&u, 0, sizeof u);
    cookie = tsr_http_cookie(r, &clen);
    if (cookie == NULL) {
        verify_refuse(r, TSR_MC_NONE, TSR_MV_MISSING, "no credential");
        goto out;
    }
    rc = tsr_auth_session_resolve(r->srv->auth, cookie, clen, (int64_t)time(NULL), &s, &u);
    if (rc == TSR_ERR_UNAUTHENTICATED) {
        verify_refuse(r, TSR_MC_COOKIE, TSR_MV_INVALID,
                      "the session is missing, expired or revoked");
        goto out;
    }
    if (rc != TSR_OK) {
        tsr_metrics_verify(TSR_MC_COOKIE, TSR_MV_ERROR);
        (void)tsr_http_problem_err(r, rc, "the session could not be checked");
        goto out;
    }
    if (role != NULL && !tsr_auth_roles_has(u.roles, role, strlen(role))) {
        verify_forbidden(r, TSR_MC_COOKIE);
        goto out;
    }
    roles = tsr_http_roles_json(u.roles);
    exp = s.idle_expires_at < s.expires_at ? s.idle_expires_at : s.expires_at;
    if (roles == NULL ||
        tsr_http_reply_json(r, 200,
                            json_pack("{s:s, s:s, s:s, s:O, s:I}", "sub", u.id, "sid", s.id,
                                      "method", "cookie", "roles", roles, "exp", (json_int_t)exp),
                            0) != TSR_OK)
        goto out;
    tsr_metrics_verify(TSR_MC_COOKIE, TSR_MV_OK);
    tsr_http_no_store(r);
    tsr_http_header(r, "X-Auth-Subject", u.id);
    tsr_http_header(r, "X-Auth-Username", u.username);
    if (u.roles[0] != '\0') /* an empty header cannot be sent: absent means none */
        tsr_http_header(r, "X-Auth-Roles", u.roles);
    tsr_http_header(r, "X-Auth-Session", s.id);
    tsr_http_header(r, "X-Auth-Method", "cookie");
out:
    json_decref(roles);
    tsr_wipe(&s, sizeof s);
    tsr_wipe(&u, sizeof u); /* holds the password hash */
}

void tsr_h_verify(tsr_http_req *r)
{
    size_t blen = 0;
    const char *bearer = tsr_http_bearer(r, &blen);
    const char *role = tsr_http_req_query(r, "role");

    if (bearer != NULL)
        verify_bearer(r, bearer, blen, role);
    else
        verify_cookie(r, role);
}

void tsr_h_healthz(tsr_http_req *r)
{
    (void)tsr_http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"), 0);
    tsr_http_no_store(r);
}

void tsr_h_readyz(tsr_http_req *r)
{
    tsr_err rc = tsr_store_ping(r->srv->store);

    if (rc != TSR_OK) {
        (void)tsr_http_problem(r, 503, "unavailable", "the store is not reachable");
        tsr_http_header(r, "Retry-After", "1");
        return;
    }
    (void)tsr_http_reply_json(r, 200,
                              json_pack("{s:s, s:s, s:s}", "status", "ready", "store", "ok",
                                        "cache", "ok"),
                              0);
    tsr_http_no_store(r);
}

void tsr_h_metrics(tsr_http_req *r)
{
    char *text = NULL;
    size_t len = 0;

    if (tsr_metrics_render(r->srv, &text, &len) != TSR_OK) {
        (void)tsr_http_problem(r, 500, "internal", "out of memory");
        return;
    }
    (void)tsr_http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    tsr_http_no_store(r);
    free(text);
}
