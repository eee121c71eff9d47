/* guard.c: who is calling: the session cookie, the CSRF defences of
 * cookie-authenticated changes, the admin key, access tokens on the user's own
 * session routes, and the session cookie itself.
 *
 * CSRF (SPEC section 4, OWASP): a state-changing request authenticated by the
 * cookie needs X-CSRF-Token equal (constant time, in auth) to the token derived
 * from the cookie's secret, and, when the browser says where the request comes
 * from, an origin we trust: Origin equal to the public URL's origin, to one of
 * security.allowed_origins, or to this server's own origin as the browser
 * addressed it (scheme + Host); without Origin, Sec-Fetch-Site must be
 * same-origin or none. Clients that send neither (curl, servers) rely on the
 * token alone. */
#include "http/http_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "auth/tokens.h"
#include "crypto/crypto.h"

#define COOKIE_HEADER_MAX 512

const char *tsr_http_cookie(tsr_http_req *r, size_t *len)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND,
                                                r->srv->cfg->session.cookie_name);
    *len = v != NULL ? strlen(v) : 0;
    if (v != NULL && *len == 0)
        v = NULL;
    return v;
}

static int origin_eq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Nonzero when origin is "<scheme>://<Host header>" of this very request. */
static int origin_is_self(tsr_http_req *r, const char *origin)
{
    char self[TSR_HTTP_ORIGIN_MAX];
    const char *host = tsr_http_req_header(r, "Host");
    int n;

    if (host == NULL || host[0] == '\0')
        return 0;
    n = snprintf(self, sizeof self, "%s://%s", r->srv->tls ? "https" : "http", host);
    if (n < 0 || (size_t)n >= sizeof self)
        return 0;
    return origin_eq(self, origin);
}

const char *tsr_http_cors_origin(tsr_http_req *r)
{
    const char *origin = tsr_http_req_header(r, "Origin");

    if (origin == NULL)
        return NULL;
    for (size_t i = 0; i < r->srv->norigins; i++) {
        if (origin_eq(r->srv->origins[i], origin))
            return r->srv->origins[i];
    }
    return NULL;
}

tsr_err tsr_http_origin_check(tsr_http_req *r)
{
    const char *origin = tsr_http_req_header(r, "Origin");
    const char *sfs = tsr_http_req_header(r, "Sec-Fetch-Site");

    if (origin != NULL) {
        for (size_t i = 0; i < r->srv->norigins; i++) {
            if (origin_eq(r->srv->origins[i], origin))
                return TSR_OK;
        }
        if (origin_is_self(r, origin))
            return TSR_OK;
        goto refuse;
    }
    if (sfs != NULL) {
        if (strcasecmp(sfs, "same-origin") == 0 || strcasecmp(sfs, "none") == 0)
            return TSR_OK;
        goto refuse;
    }
    return TSR_OK;
refuse:
    tsr_log_event(TSR_EV_CSRF_REFUSED, TSR_F_STR("ip", r->ip), TSR_F_STR("reason", "origin"));
    (void)tsr_http_problem(r, 403, "csrf", "the request comes from an origin that is not allowed");
    return TSR_ERR_CSRF;
}

tsr_err tsr_http_cookie_session(tsr_http_req *r, int state_change, tsr_session *s, tsr_user *u)
{
    tsr_err rc = TSR_ERR_UNAUTHENTICATED;
    size_t clen = 0;
    const char *cookie = tsr_http_cookie(r, &clen);

    memset(s, 0, sizeof *s);
    if (u != NULL)
        memset(u, 0, sizeof *u);
    if (cookie == NULL) {
        (void)tsr_http_problem(r, 401, "unauthenticated", "no session cookie");
        goto out;
    }
    if (state_change) {
        rc = tsr_http_origin_check(r);
        if (rc != TSR_OK)
            goto out;
    }
    rc = tsr_auth_session_resolve(r->srv->auth, cookie, clen, (int64_t)time(NULL), s, u);
    if (rc == TSR_ERR_UNAUTHENTICATED) {
        (void)tsr_http_problem(r, 401, "unauthenticated",
                               "the session is missing, expired or revoked");
        goto out;
    }
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "the session could not be checked");
        goto out;
    }
    if (state_change) {
        const char *tok = tsr_http_req_header(r, "X-CSRF-Token");
        rc = tsr_auth_csrf_check(cookie, clen, tok != NULL ? tok : "",
                                 tok != NULL ? strlen(tok) : 0);
        if (rc != TSR_OK) {
            rc = TSR_ERR_CSRF;
            tsr_log_event(TSR_EV_CSRF_REFUSED, TSR_F_STR("ip", r->ip),
                          TSR_F_STR("session_id", s->id), TSR_F_STR("reason", "token"));
            (void)tsr_http_problem(r, 403, "csrf", "missing or wrong X-CSRF-Token");
            goto out;
        }
    }
    rc = TSR_OK;
out:
    if (rc != TSR_OK) {
        memset(s, 0, sizeof *s);
        if (u != NULL)
            memset(u, 0, sizeof *u);
    }
    return rc;
}

const char *tsr_http_bearer(tsr_http_req *r, size_t *len)
{
    const char *h = tsr_http_req_header(r, "Authorization");
    size_t n;

    *len = 0;
    if (h == NULL || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (n == 0)
        return NULL;
    *len = n;
    return h;
}

tsr_err tsr_http_admin_key_check(tsr_http_req *r, int *sent)
{
    size_t n = 0;
    const char *key = tsr_http_bearer(r, &n);

    *sent = key != NULL;
    if (key == NULL)
        return TSR_ERR_UNAUTHENTICATED;
    if (tsr_auth_admin_key_verify(r->srv->auth, key, n) != TSR_OK) {
        tsr_log_event(TSR_EV_ADMIN_AUTH_FAILED, TSR_F_STR("ip", r->ip));
        return TSR_ERR_UNAUTHENTICATED;
    }
    return TSR_OK;
}

tsr_err tsr_http_admin_guard(tsr_http_req *r)
{
    int sent = 0;
    tsr_err rc = tsr_http_admin_key_check(r, &sent);

    if (rc == TSR_OK)
        return TSR_OK;
    if (!sent) {
        (void)tsr_http_problem(r, 401, "unauthenticated", "the admin API key is required");
        tsr_http_header(r, "WWW-Authenticate", "Bearer realm=\"tessera\"");
    } else {
        (void)tsr_http_problem(r, 401, "unauthenticated", "the admin API key is not valid");
        tsr_http_header(r, "WWW-Authenticate", "Bearer realm=\"tessera\", error=\"invalid_token\"");
    }
    return TSR_ERR_UNAUTHENTICATED;
}

void tsr_http_invalid_token(tsr_http_req *r, const char *detail)
{
    (void)tsr_http_problem(r, 401, "invalid_token", detail);
    tsr_http_header(r, "WWW-Authenticate", "Bearer realm=\"tessera\", error=\"invalid_token\"");
    tsr_http_no_store(r);
}

tsr_err tsr_http_caller_get(tsr_http_req *r, int state_change, tsr_http_caller *out)
{
    tsr_err rc = TSR_ERR_UNAUTHENTICATED;
    size_t blen = 0;
    const char *bearer = tsr_http_bearer(r, &blen);
    tsr_session s;
    tsr_bearer b;

    memset(out, 0, sizeof *out);
    memset(&s, 0, sizeof s);
    memset(&b, 0, sizeof b);
    if (bearer == NULL) {
        rc = tsr_http_cookie_session(r, state_change, &s, NULL);
        if (rc != TSR_OK)
            goto out;
        memcpy(out->user_id, s.user_id, sizeof out->user_id);
        memcpy(out->sid, s.id, sizeof out->sid);
        goto out;
    }
    /* These routes read the store anyway: check the session itself too. */
    rc = tsr_auth_bearer_verify(r->srv->auth, bearer, blen, TSR_VERIFY_STATEFUL,
                                (int64_t)time(NULL), &b);
    if (tsr_err_is_token(rc)) {
        tsr_http_invalid_token(r, "the access token is not valid");
        goto out;
    }
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "the access token could not be checked");
        goto out;
    }
    if (b.sub[0] == '\0' || b.sid[0] == '\0') {
        /* Every token we issue is bound to a session; one without is not ours. */
        rc = TSR_ERR_TOKEN_CLAIMS;
        tsr_http_invalid_token(r, "the access token is not valid");
        goto out;
    }
    memcpy(out->user_id, b.sub, sizeof out->user_id);
    memcpy(out->sid, b.sid, sizeof out->sid);
    out->bearer = 1;
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        memset(out, 0, sizeof *out);
    tsr_wipe(&s, sizeof s);
    tsr_wipe(&b, sizeof b);
    return rc;
}

static const char *same_site_name(tsr_same_site s)
{
    return s == TSR_SAME_SITE_STRICT ? "Strict" : "Lax";
}

void tsr_http_set_cookie(tsr_http_req *r, const char *secret)
{
    char line[COOKIE_HEADER_MAX];
    const tsr_config *c = r->srv->cfg;
    int n = snprintf(line, sizeof line, "%s=%s; Path=/; HttpOnly; Secure; SameSite=%s",
                     c->session.cookie_name, secret, same_site_name(c->session.same_site));

    if (n < 0 || (size_t)n >= sizeof line) {
        /* Never send a response that lost its cookie. */
        if (r->resp != NULL) {
            MHD_destroy_response(r->resp);
            r->resp = NULL;
            r->status = 0;
        }
    } else {
        tsr_http_header(r, "Set-Cookie", line);
    }
    tsr_wipe(line, sizeof line);
}

void tsr_http_clear_cookie(tsr_http_req *r)
{
    char line[COOKIE_HEADER_MAX];
    const tsr_config *c = r->srv->cfg;
    int n = snprintf(line, sizeof line, "%s=; Path=/; HttpOnly; Secure; SameSite=%s; Max-Age=0",
                     c->session.cookie_name, same_site_name(c->session.same_site));

    if (n > 0 && (size_t)n < sizeof line)
        tsr_http_header(r, "Set-Cookie", line);
}
