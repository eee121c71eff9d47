/* h_verify.c: GET /v1/verify, the forward-auth endpoint of reverse proxies
 * (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth), and the
 * operations endpoints /healthz, /readyz and /metrics.
 *
 * verify answers 200 with X-Auth-* headers for a live session cookie, 401 with
 * WWW-Authenticate (RFC 6750: error="invalid_token" when a credential was sent
 * but is not valid), 403 when ?role= names a role the subject lacks. Bearer
 * access tokens are not issued yet: a Bearer credential is refused as
 * invalid_token until the token endpoints exist. The answer is never cached. */
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"

#define REALM_MISSING "Bearer realm=\"tessera\""
#define REALM_INVALID "Bearer realm=\"tessera\", error=\"invalid_token\""

static void verify_refuse(tsr_http_req *r, int sent_credential, const char *detail)
{
    tsr_metrics_verify(sent_credential ? TSR_MV_INVALID : TSR_MV_MISSING);
    (void)tsr_http_problem(r, 401, sent_credential ? "invalid_token" : "unauthenticated", detail);
    tsr_http_header(r, "WWW-Authenticate", sent_credential ? REALM_INVALID : REALM_MISSING);
    tsr_http_no_store(r);
}

void tsr_h_verify(tsr_http_req *r)
{
    size_t blen = 0, clen = 0;
    const char *bearer = tsr_http_bearer(r, &blen);
    const char *cookie;
    const char *role = tsr_http_req_query(r, "role");
    tsr_session s;
    tsr_user u;
    json_t *roles = NULL;
    int64_t exp;
    tsr_err rc;

    memset(&s, 0, sizeof s);
    memset(&u, 0, sizeof u);
    if (bearer != NULL) {
        verify_refuse(r, 1, "the access token is not valid");
        goto out;
    }
    cookie = tsr_http_cookie(r, &clen);
    if (cookie == NULL) {
        verify_refuse(r, 0, "no credential");
        goto out;
    }
    rc = tsr_auth_session_resolve(r->srv->auth, cookie, clen, (int64_t)time(NULL), &s, &u);
    if (rc == TSR_ERR_UNAUTHENTICATED) {
        verify_refuse(r, 1, "the session is missing, expired or revoked");
        goto out;
    }
    if (rc != TSR_OK) {
        tsr_metrics_verify(TSR_MV_ERROR);
        (void)tsr_http_problem_err(r, rc, "the session could not be checked");
        goto out;
    }
    if (role != NULL && !tsr_auth_roles_has(u.roles, role, strlen(role))) {
        tsr_metrics_verify(TSR_MV_FORBIDDEN);
        (void)tsr_http_problem(r, 403, "forbidden", "the subject lacks the required role");
        tsr_http_no_store(r);
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
    tsr_metrics_verify(TSR_MV_OK);
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
