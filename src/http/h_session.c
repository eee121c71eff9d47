/* h_session.c: session (cookie) mode: login, the current session, logout,
 * the hybrid access token of a cookie session (POST /v1/session/token), the
 * user's session list, revoking one session or all the others.
 *
 * The session list and the two revocations also take an access token
 * (Authorization: Bearer, verified stateful): then there is no CSRF check (a
 * header is not an ambient credential) and the current session is the token's
 * sid. POST /v1/users/me/password stays cookie-only: it rotates the cookie.
 *
 * Login runs its Argon2id verify on the hashing pool (tsr_http_defer); the
 * rate limiter is consulted first on the request thread so that a flood of
 * refused logins costs no hashing. A cookie already present at login is revoked
 * before the new session is issued (no fixation). */
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/tokens.h"
#include "common/log.h"
#include "crypto/crypto.h"

static const char *const login_fields[] = {"username", "password", NULL};

static void rate_limited(tsr_http_req *r, int64_t secs)
{
    tsr_metrics_login(TSR_ML_RATE_LIMITED);
    tsr_http_rate_limited(r, secs);
}

/* {user, session, csrf_token}: the body of login and of GET /v1/session. */
static void reply_session(tsr_http_req *r, int status, const tsr_user *u, const tsr_session *s,
                          const char *csrf)
{
    json_t *v = json_pack("{s:o, s:o, s:s}", "user", tsr_http_user_json(u, 0), "session",
                          tsr_http_session_json(s), "csrf_token", csrf);
    (void)tsr_http_reply_json(r, status, v, 1);
}

static void login_work(tsr_http_req *r)
{
    tsr_auth *a = r->srv->auth;
    const char *name = NULL, *pw = NULL;
    size_t nlen = 0, pwlen = 0, clen = 0;
    const char *cookie;
    const char *ua = tsr_http_req_header(r, "User-Agent");
    int64_t now = (int64_t)time(NULL);
    int64_t retry = 0;
    tsr_user u;
    tsr_session old;
    tsr_auth_cred cred;
    tsr_err rc;

    memset(&u, 0, sizeof u);
    memset(&old, 0, sizeof old);
    memset(&cred, 0, sizeof cred);
    /* Checked on the request thread already; cannot fail here. */
    if (tsr_http_json_str(r, "username", 1, &name, &nlen) != TSR_OK ||
        tsr_http_json_str(r, "password", 1, &pw, &pwlen) != TSR_OK)
        goto out;
    rc = tsr_auth_login(a, name, nlen, pw, pwlen, r->ip, now, &u, &retry);
    tsr_http_json_wipe(r, "password");
    if (rc == TSR_ERR_RATE_LIMITED) {
        rate_limited(r, retry);
        goto out;
    }
    if (rc == TSR_ERR_INVALID_CREDENTIALS) {
        tsr_metrics_login(TSR_ML_FAILED);
        (void)tsr_http_problem(r, 401, "invalid_credentials", "invalid username or password");
        goto out;
    }
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "login is unavailable right now");
        goto out;
    }
    /* Fixation defence: the session this browser held before is ended. */
    cookie = tsr_http_cookie(r, &clen);
    if (cookie != NULL && tsr_auth_session_resolve(a, cookie, clen, now, &old, NULL) == TSR_OK) {
        rc = tsr_auth_session_revoke(a, old.user_id, old.id); /* auth writes the audit line */
        if (rc != TSR_OK && rc != TSR_ERR_NOT_FOUND)
            tsr_log(TSR_LOG_WARN, "the session replaced by a login could not be revoked",
                    TSR_F_ERR(rc));
    }
    rc = tsr_auth_session_create(a, &u, r->ip, ua, now, &cred);
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "the session could not be created");
        goto out;
    }
    tsr_metrics_login(TSR_ML_OK);
    reply_session(r, 200, &u, &cred.session, cred.csrf);
    tsr_http_set_cookie(r, cred.cookie);
out:
    tsr_auth_cred_wipe(&cred);
    tsr_wipe(&u, sizeof u);
    tsr_wipe(&old, sizeof old);
}

void tsr_h_login(tsr_http_req *r)
{
    const char *name = NULL, *pw = NULL;
    size_t nlen = 0, pwlen = 0;
    int64_t retry = 0;

    if (tsr_http_origin_check(r) != TSR_OK)
        return;
    if (tsr_http_body_object(r) != TSR_OK || tsr_http_json_only(r, login_fields) != TSR_OK ||
        tsr_http_json_str(r, "username", 1, &name, &nlen) != TSR_OK ||
        tsr_http_json_str(r, "password", 1, &pw, &pwlen) != TSR_OK)
        return;
    if (tsr_auth_login_check(r->srv->auth, name, nlen, r->ip, (int64_t)time(NULL), &retry) ==
        TSR_ERR_RATE_LIMITED) {
        tsr_log_event(TSR_EV_LOGIN_RATE_LIMITED, TSR_F_STR("ip", r->ip));
        rate_limited(r, retry);
        return;
    }
    tsr_http_defer(r, login_work, NULL, NULL);
}

void tsr_h_session_get(tsr_http_req *r)
{
    tsr_session s;
    tsr_user u;
    char csrf[TSR_CSRF_TOKEN_CHARS + 1];
    size_t clen = 0;
    const char *cookie;

    csrf[0] = '\0';
    if (tsr_http_cookie_session(r, 0, &s, &u) != TSR_OK)
        goto out;
    cookie = tsr_http_cookie(r, &clen);
    if (cookie == NULL || tsr_auth_csrf_derive(cookie, clen, csrf) != TSR_OK) {
        (void)tsr_http_problem(r, 401, "unauthenticated", "no session cookie");
        goto out;
    }
    reply_session(r, 200, &u, &s, csrf);
out:
    tsr_wipe(csrf, sizeof csrf);
    tsr_wipe(&u, sizeof u);
}

void tsr_h_logout(tsr_http_req *r)
{
    tsr_session s;
    tsr_err rc;

    if (tsr_http_cookie_session(r, 1, &s, NULL) != TSR_OK) {
        if (r->status == 401)
            tsr_http_clear_cookie(r); /* a stale cookie goes away too */
        return;
    }
    rc = tsr_auth_session_revoke(r->srv->auth, s.user_id, s.id);
    if (rc != TSR_OK && rc != TSR_ERR_NOT_FOUND) {
        (void)tsr_http_problem_err(r, rc, "the session could not be ended");
        return;
    }
    tsr_log_event(TSR_EV_LOGOUT, TSR_F_STR("user_id", s.user_id), TSR_F_STR("session_id", s.id),
                  TSR_F_STR("ip", r->ip));
    (void)tsr_http_reply_empty(r, 204);
    tsr_http_no_store(r);
    tsr_http_clear_cookie(r);
}

static const char *kind_name(tsr_session_kind k)
{
    return k == TSR_SESSION_REFRESH ? "refresh" : "cookie";
}

void tsr_h_session_token(tsr_http_req *r)
{
    tsr_session s;
    tsr_user u;
    tsr_auth_grant *g = NULL;
    tsr_err rc;

    memset(&s, 0, sizeof s);
    memset(&u, 0, sizeof u);
    if (tsr_http_cookie_session(r, 1, &s, &u) != TSR_OK)
        goto out;
    /* A grant holds a 4 KiB token buffer: off the request thread's stack. */
    g = calloc(1, sizeof *g);
    if (g == NULL) {
        (void)tsr_http_problem(r, 500, "internal", "out of memory");
        goto out;
    }
    rc = tsr_auth_access_for_session(r->srv->auth, &s, &u, (int64_t)time(NULL), g);
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "the access token could not be issued");
        goto out;
    }
    tsr_metrics_token(TSR_MG_SESSION);
    tsr_http_reply_grant(r, g, 0);
out:
    if (g != NULL) {
        tsr_auth_grant_wipe(g);
        free(g);
    }
    tsr_wipe(&s, sizeof s);
    tsr_wipe(&u, sizeof u);
}

void tsr_h_sessions_list(tsr_http_req *r)
{
    tsr_http_caller s;
    tsr_session *list = NULL;
    size_t n = 0;
    json_t *arr = NULL;
    tsr_err rc;

    if (tsr_http_caller_get(r, 0, &s) != TSR_OK)
        return;
    list = calloc(TSR_HTTP_SESSIONS_LIST_MAX, sizeof *list);
    arr = json_array();
    if (list == NULL || arr == NULL) {
        (void)tsr_http_problem(r, 500, "internal", "out of memory");
        goto out;
    }
    rc = tsr_auth_session_list(r->srv->auth, s.user_id, (int64_t)time(NULL), list,
                               TSR_HTTP_SESSIONS_LIST_MAX, &n);
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "the sessions could not be listed");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const tsr_session *e = &list[i];
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:b}", "id", e->id,
                              "kind", kind_name(e->kind), "created_at", (json_int_t)e->created_at,
                              "last_seen_at", (json_int_t)e->last_seen_at, "expires_at",
                              (json_int_t)e->expires_at, "idle_expires_at",
                              (json_int_t)e->idle_expires_at, "ip", e->ip, "user_agent",
                              e->user_agent, "current", strcmp(e->id, s.sid) == 0);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            (void)tsr_http_problem(r, 500, "internal", "out of memory");
            goto out;
        }
    }
    (void)tsr_http_reply_json(r, 200, json_pack("{s:O}", "sessions", arr), 0);
    tsr_http_no_store(r);
out:
    json_decref(arr);
    if (list != NULL) {
        tsr_wipe(list, TSR_HTTP_SESSIONS_LIST_MAX * sizeof *list);
        free(list);
    }
}

void tsr_h_session_delete(tsr_http_req *r)
{
    tsr_http_caller s;
    tsr_err rc;

    if (tsr_http_caller_get(r, 1, &s) != TSR_OK)
        return;
    rc = tsr_auth_session_revoke(r->srv->auth, s.user_id, r->param);
    if (rc == TSR_ERR_NOT_FOUND) {
        (void)tsr_http_problem(r, 404, "not_found", "no such session");
        return;
    }
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "the session could not be revoked");
        return;
    }
    (void)tsr_http_reply_empty(r, 204);
    if (!s.bearer && strcmp(r->param, s.sid) == 0)
        tsr_http_clear_cookie(r);
}

void tsr_h_sessions_delete(tsr_http_req *r)
{
    tsr_http_caller s;
    size_t n = 0;
    tsr_err rc;

    if (tsr_http_caller_get(r, 1, &s) != TSR_OK)
        return;
    rc = tsr_auth_session_revoke_others(r->srv->auth, s.user_id, s.sid, &n);
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "the sessions could not be revoked");
        return;
    }
    (void)tsr_http_reply_empty(r, 204);
}
