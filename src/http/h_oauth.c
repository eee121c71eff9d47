/* h_oauth.c: the OAuth 2.0 endpoints of token and hybrid mode: the token
 * endpoint (RFC 6749: password and refresh_token grants), revocation (RFC 7009)
 * and introspection (RFC 7662, behind the admin key).
 *
 * Parameters come as application/x-www-form-urlencoded (what RFC 6749 asks;
 * also assumed when Content-Type is missing) or as a JSON object of strings,
 * both read by form.c into one view. Unknown parameters are ignored (RFC 6749
 * 3.2), repeated ones refused, empty ones treated as absent (3.1). Errors have
 * the RFC 6749 5.2 shape {"error","error_description"}, never problem+json.
 *
 * The password grant hashes (Argon2id): after the cheap checks (parameters,
 * scope syntax, the login rate limiter) it runs on the hashing pool with the
 * connection suspended, as POST /v1/session/login does. The refresh grant,
 * revoke and introspect are SHA-256 and store look-ups: request thread.
 * Passwords and tokens are wiped in place once used (the body and the JSON
 * copies), and every body holding a token is wiped when sent. */
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/tokens.h"
#include "common/log.h"
#include "crypto/crypto.h"

#define CT_FORM "application/x-www-form-urlencoded"
#define CT_JSON "application/json"

typedef struct oauth_job {
    tsr_form form; /* borrowed from r->body or r->json, alive until the request ends */
} oauth_job;

static void invalid_request(tsr_http_req *r, const char *description)
{
    (void)tsr_http_oauth_error(r, 400, "invalid_request", description);
}

/* Store down → 503; anything else we cannot explain → 500. */
static void oauth_fail(tsr_http_req *r, tsr_err rc)
{
    const tsr_http_route *rt;

    if (rc == TSR_ERR_UNAVAILABLE) {
        (void)tsr_http_oauth_error(r, 503, "temporarily_unavailable",
                                   "the store is unavailable: retry shortly");
        return;
    }
    /* Unexplained: worth a line (the error code only, never a parameter). */
    rt = tsr_http_route_get(r->route);
    tsr_log(TSR_LOG_WARN, "oauth request failed",
            TSR_F_STR("route", rt != NULL ? rt->pattern : "unmatched"), TSR_F_ERR(rc));
    (void)tsr_http_oauth_error(r, 500, "server_error", "internal error");
}

/* "type/subtype" with optional parameters (charset=...), case-insensitive. */
static int media_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);

    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, want, n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* A refused JSON body may still hold a secret: jansson frees its strings
 * unwiped, so wipe them first (the raw body is wiped with the request). */
static void json_wipe_strings(json_t *obj)
{
    const char *key;
    json_t *v;

    if (obj == NULL || !json_is_object(obj))
        return;
    json_object_foreach(obj, key, v) {
        if (json_is_string(v))
            tsr_wipe((char *)(uintptr_t)json_string_value(v), json_string_length(v));
    }
}

/* The request's parameters into f. Answers 400 invalid_request and returns the
 * error when they cannot be read. */
static tsr_err oauth_params(tsr_http_req *r, tsr_form *f)
{
    const char *ct = tsr_http_req_header(r, "Content-Type");
    json_error_t jerr;
    tsr_err rc;

    memset(f, 0, sizeof *f);
    if (ct == NULL || media_type_is(ct, CT_FORM)) {
        rc = tsr_form_parse(r->body, r->body_len, f);
        if (rc == TSR_ERR_EXISTS)
            invalid_request(r, "a parameter is repeated");
        else if (rc == TSR_ERR_TOO_LARGE)
            invalid_request(r, "too many parameters");
        else if (rc != TSR_OK)
            invalid_request(r, "the body is not valid application/x-www-form-urlencoded");
        return rc;
    }
    if (!media_type_is(ct, CT_JSON)) {
        invalid_request(r, "Content-Type must be " CT_FORM " or " CT_JSON);
        return TSR_ERR_INVALID;
    }
    if (r->json == NULL) {
        if (r->body_len == 0) {
            invalid_request(r, "a JSON object body is required");
            return TSR_ERR_INVALID;
        }
        r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (r->json == NULL) {
            invalid_request(r, "the body is not valid JSON (or repeats a parameter)");
            return TSR_ERR_INVALID;
        }
        if (!json_is_object(r->json)) {
            invalid_request(r, "the body must be a JSON object of strings");
            return TSR_ERR_INVALID; /* r->json is released with the request */
        }
    }
    rc = tsr_form_from_json(r->json, f);
    if (rc == TSR_OK)
        return TSR_OK;
    json_wipe_strings(r->json);
    if (rc == TSR_ERR_TOO_LARGE)
        invalid_request(r, "too many parameters");
    else
        invalid_request(r, "the body must be a JSON object of strings");
    return rc;
}

static int value_is(const char *v, size_t n, const char *want)
{
    return v != NULL && n == strlen(want) && memcmp(v, want, n) == 0;
}

/* ---- POST /v1/oauth/token ---- */

void tsr_http_reply_grant(tsr_http_req *r, const tsr_auth_grant *g, int oauth)
{
    size_t rlen = oauth ? strlen(g->refresh_token) : 0;
    size_t cap = g->access_len * 2 + rlen * 2 + sizeof g->scope * 6 + 256;
    char *buf = malloc(cap);
    tsr_jbuf j;

    if (buf == NULL)
        goto fail;
    tsr_jbuf_init(&j, buf, cap);
    tsr_jbuf_raw(&j, "{");
    tsr_jbuf_kv_str(&j, "access_token", g->access_token, g->access_len);
    tsr_jbuf_kv_str(&j, "token_type", "Bearer", 6);
    tsr_jbuf_kv_int(&j, "expires_in", g->expires_in);
    if (rlen > 0)
        tsr_jbuf_kv_str(&j, "refresh_token", g->refresh_token, rlen);
    if (oauth)
        tsr_jbuf_kv_str(&j, "scope", g->scope, strlen(g->scope));
    tsr_jbuf_raw(&j, "}");
    if (j.failed) {
        tsr_wipe(buf, cap);
        free(buf);
        goto fail;
    }
    if (tsr_http_reply_owned(r, 200, CT_JSON, buf, j.len, 1) != TSR_OK)
        return;
    tsr_http_header(r, "Pragma", "no-cache");
    return;
fail:
    if (oauth)
        oauth_fail(r, TSR_ERR_NOMEM);
    else
        (void)tsr_http_problem(r, 500, "internal", "out of memory");
}

static void password_work(tsr_http_req *r)
{
    oauth_job *job = r->work_ctx;
    const tsr_form *f = &job->form;
    const char *name, *pw, *scope;
    size_t nlen = 0, pwlen = 0;
    int64_t retry = 0;
    tsr_auth_grant *g = NULL;
    tsr_err rc;

    /* Checked on the request thread already. */
    name = tsr_form_get(f, "username", &nlen);
    pw = tsr_form_get(f, "password", &pwlen);
    scope = tsr_form_get(f, "scope", NULL);
    if (name == NULL || pw == NULL) {
        invalid_request(r, "username and password are required");
        goto out;
    }
    g = calloc(1, sizeof *g);
    if (g == NULL) {
        tsr_form_wipe(f, "password");
        oauth_fail(r, TSR_ERR_NOMEM);
        goto out;
    }
    rc = tsr_auth_password_grant(r->srv->auth, name, nlen, pw, pwlen, scope != NULL ? scope : "",
                                 r->ip, tsr_http_req_header(r, "User-Agent"),
                                 (int64_t)time(NULL), g, &retry);
    tsr_form_wipe(f, "password");
    switch (rc) {
    case TSR_OK:
        tsr_metrics_login(TSR_ML_OK);
        tsr_metrics_token(TSR_MG_PASSWORD);
        tsr_http_reply_grant(r, g, 1);
        break;
    case TSR_ERR_INVALID_GRANT:
    case TSR_ERR_INVALID_CREDENTIALS:
        tsr_metrics_login(TSR_ML_FAILED);
        (void)tsr_http_oauth_error(r, 400, "invalid_grant", "invalid username or password");
        break;
    case TSR_ERR_RATE_LIMITED:
        tsr_metrics_login(TSR_ML_RATE_LIMITED);
        tsr_http_oauth_rate_limited(r, retry);
        break;
    case TSR_ERR_INVALID:
        invalid_request(r, "scope: space-separated tokens of printable ASCII, at most 255 bytes");
        break;
    default:
        oauth_fail(r, rc);
        break;
    }
out:
    tsr_form_wipe_all(f);
    if (g != NULL) {
        tsr_auth_grant_wipe(g);
        free(g);
    }
}

/* Cheap checks on the request thread, then the hashing on the pool. Takes job. */
static void password_start(tsr_http_req *r, oauth_job *job)
{
    const tsr_form *f = &job->form;
    const char *name, *pw, *scope;
    size_t nlen = 0, pwlen = 0, slen = 0;
    int64_t retry = 0;

    name = tsr_form_get(f, "username", &nlen);
    pw = tsr_form_get(f, "password", &pwlen);
    scope = tsr_form_get(f, "scope", &slen);
    if (name == NULL || pw == NULL) {
        invalid_request(r, name == NULL ? "missing parameter: username"
                                        : "missing parameter: password");
        goto out;
    }
    if (scope != NULL && tsr_auth_scope_check(scope, slen) != TSR_OK) {
        invalid_request(r, "scope: space-separated tokens of printable ASCII, at most 255 bytes");
        goto out;
    }
    if (tsr_auth_login_check(r->srv->auth, name, nlen, r->ip, (int64_t)time(NULL), &retry) ==
        TSR_ERR_RATE_LIMITED) {
        tsr_log_event(TSR_EV_LOGIN_RATE_LIMITED, TSR_F_STR("ip", r->ip));
        tsr_metrics_login(TSR_ML_RATE_LIMITED);
        tsr_http_oauth_rate_limited(r, retry);
        goto out;
    }
    tsr_http_defer(r, password_work, job, free);
    return;
out:
    tsr_form_wipe_all(f);
    free(job);
}

static void refresh_run(tsr_http_req *r, const tsr_form *f)
{
    const char *tok, *scope;
    size_t tlen = 0, slen = 0;
    tsr_auth_grant *g = NULL;
    tsr_err rc;

    tok = tsr_form_get(f, "refresh_token", &tlen);
    scope = tsr_form_get(f, "scope", &slen);
    if (tok == NULL) {
        invalid_request(r, "missing parameter: refresh_token");
        goto out;
    }
    /* A scope may be sent (RFC 6749 6); the family keeps the scope it was granted,
     * which the answer states. Only its syntax is checked. */
    if (scope != NULL && tsr_auth_scope_check(scope, slen) != TSR_OK) {
        invalid_request(r, "scope: space-separated tokens of printable ASCII, at most 255 bytes");
        goto out;
    }
    g = calloc(1, sizeof *g);
    if (g == NULL) {
        oauth_fail(r, TSR_ERR_NOMEM);
        goto out;
    }
    rc = tsr_auth_refresh_grant(r->srv->auth, tok, tlen, (int64_t)time(NULL), g);
    if (rc == TSR_OK) {
        tsr_metrics_token(TSR_MG_REFRESH);
        tsr_http_reply_grant(r, g, 1);
    } else if (rc == TSR_ERR_INVALID_GRANT || rc == TSR_ERR_INVALID) {
        (void)tsr_http_oauth_error(r, 400, "invalid_grant",
                                   "the refresh token is invalid, expired or revoked");
    } else {
        oauth_fail(r, rc);
    }
out:
    tsr_form_wipe(f, "refresh_token");
    if (g != NULL) {
        tsr_auth_grant_wipe(g);
        free(g);
    }
}

void tsr_h_oauth_token(tsr_http_req *r)
{
    oauth_job *job = calloc(1, sizeof *job);
    const char *gt;
    size_t gtlen = 0;

    if (job == NULL) {
        oauth_fail(r, TSR_ERR_NOMEM);
        return;
    }
    if (oauth_params(r, &job->form) != TSR_OK)
        goto out;
    gt = tsr_form_get(&job->form, "grant_type", &gtlen);
    if (gt == NULL) {
        invalid_request(r, "missing parameter: grant_type");
        goto out;
    }
    if (value_is(gt, gtlen, "password")) {
        password_start(r, job); /* takes job */
        return;
    }
    if (value_is(gt, gtlen, "refresh_token")) {
        refresh_run(r, &job->form);
        goto out;
    }
    (void)tsr_http_oauth_error(r, 400, "unsupported_grant_type",
                               "grant_type must be password or refresh_token");
out:
    tsr_form_wipe_all(&job->form);
    free(job);
}

/* ---- POST /v1/oauth/revoke (RFC 7009) ---- */

void tsr_h_oauth_revoke(tsr_http_req *r)
{
    tsr_form f;
    const char *tok, *hint;
    size_t tlen = 0, hlen = 0;
    tsr_err rc;

    if (oauth_params(r, &f) != TSR_OK)
        return;
    tok = tsr_form_get(&f, "token", &tlen);
    hint = tsr_form_get(&f, "token_type_hint", &hlen);
    if (tok == NULL) {
        tsr_form_wipe_all(&f);
        invalid_request(r, "missing parameter: token");
        return;
    }
    /* An unknown hint is ignored (RFC 7009 2.1: the server may search everywhere). */
    if (!value_is(hint, hlen, "access_token") && !value_is(hint, hlen, "refresh_token"))
        hint = NULL;
    rc = tsr_auth_oauth_revoke(r->srv->auth, tok, tlen, hint, (int64_t)time(NULL));
    tsr_form_wipe_all(&f);
    /* Unknown, malformed or foreign tokens are not errors (RFC 7009 2.2). */
    if (rc == TSR_ERR_UNAVAILABLE || rc == TSR_ERR_NOMEM || rc == TSR_ERR_INTERNAL) {
        oauth_fail(r, rc);
        return;
    }
    (void)tsr_http_reply_empty(r, 200);
    tsr_http_no_store(r);
}

/* ---- POST /v1/oauth/introspect (RFC 7662) ---- */

static void reply_introspection(tsr_http_req *r, const tsr_token_info *info)
{
    char body[1024];
    tsr_jbuf j;

    tsr_jbuf_init(&j, body, sizeof body);
    if (!info->active) {
        tsr_jbuf_raw(&j, "{\"active\":false}");
    } else {
        tsr_jbuf_raw(&j, "{\"active\":true");
        tsr_jbuf_kv_str(&j, "sub", info->sub, strlen(info->sub));
        tsr_jbuf_kv_str(&j, "sid", info->sid, strlen(info->sid));
        tsr_jbuf_kv_int(&j, "exp", info->exp);
        tsr_jbuf_kv_int(&j, "iat", info->iat);
        tsr_jbuf_kv_str(&j, "scope", info->scope, strlen(info->scope));
        if (info->token_type != NULL)
            tsr_jbuf_kv_str(&j, "token_type", info->token_type, strlen(info->token_type));
        tsr_jbuf_kv_str(&j, "username", info->username, strlen(info->username));
        if (info->jti[0] != '\0')
            tsr_jbuf_kv_str(&j, "jti", info->jti, strlen(info->jti));
        tsr_jbuf_raw(&j, "}");
    }
    if (j.failed) {
        oauth_fail(r, TSR_ERR_BUFFER);
        return;
    }
    r->no_store = 1;
    (void)tsr_http_reply(r, 200, CT_JSON, body, j.len);
}

void tsr_h_oauth_introspect(tsr_http_req *r)
{
    tsr_form f;
    tsr_token_info info;
    const char *tok;
    size_t tlen = 0;
    int sent = 0;
    tsr_err rc;

    memset(&info, 0, sizeof info);
    /* The admin key only: a user's own token must not let them probe others'. */
    if (tsr_http_admin_key_check(r, &sent) != TSR_OK) {
        (void)tsr_http_oauth_error(r, 401, "invalid_client",
                                   sent ? "the admin API key is not valid"
                                        : "the admin API key is required");
        tsr_http_header(r, "WWW-Authenticate",
                        sent ? "Bearer realm=\"tessera\", error=\"invalid_token\""
                             : "Bearer realm=\"tessera\"");
        return;
    }
    if (oauth_params(r, &f) != TSR_OK)
        return;
    tok = tsr_form_get(&f, "token", &tlen);
    if (tok == NULL) {
        tsr_form_wipe_all(&f);
        invalid_request(r, "missing parameter: token");
        return;
    }
    rc = tsr_auth_introspect(r->srv->auth, tok, tlen, (int64_t)time(NULL), &info);
    tsr_form_wipe_all(&f);
    if (rc != TSR_OK) {
        oauth_fail(r, rc);
        return;
    }
    reply_introspection(r, &info);
}
