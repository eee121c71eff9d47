/* respond.c: building responses (JSON, problem+json, the headers every
 * response carries), reading request headers and strict JSON bodies, and the
 * JSON views of users and sessions.
 *
 * Every response gets X-Content-Type-Options: nosniff and Referrer-Policy:
 * no-referrer, plus Strict-Transport-Security under TLS. A body that carries a
 * credential is wiped when libmicrohttpd frees it and is sent with
 * Cache-Control: no-store. Error details are our own English: request data is
 * never echoed (it could be a password typed into the wrong field). */
#include "http/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define HSTS_VALUE "max-age=31536000"

/* Bodies handed to it are NUL-terminated text (JSON), so strlen covers them. */
static void free_wiped(void *p)
{
    if (p == NULL)
        return;
    tsr_wipe(p, strlen(p));
    free(p);
}

static tsr_err add_common_headers(tsr_http_req *r, struct MHD_Response *resp, const char *ctype)
{
    tsr_err rc = TSR_ERR_NOMEM;
    const char *cors = tsr_http_cors_origin(r);

    if (MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES)
        goto out;
    if (MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") != MHD_YES)
        goto out;
    if (ctype != NULL && MHD_add_response_header(resp, "Content-Type", ctype) != MHD_YES)
        goto out;
    if (r->srv->tls &&
        MHD_add_response_header(resp, "Strict-Transport-Security", HSTS_VALUE) != MHD_YES)
        goto out;
    if (r->no_store && MHD_add_response_header(resp, "Cache-Control", "no-store") != MHD_YES)
        goto out;
    if (cors != NULL &&
        (MHD_add_response_header(resp, "Access-Control-Allow-Origin", cors) != MHD_YES ||
         MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true") != MHD_YES ||
         MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                 "X-CSRF-Token, Retry-After, WWW-Authenticate") != MHD_YES ||
         MHD_add_response_header(resp, "Vary", "Origin") != MHD_YES))
        goto out;
    rc = TSR_OK;
out:
    return rc;
}

/* Installs resp as the request's response (dropping an earlier one). */
static tsr_err install(tsr_http_req *r, int status, struct MHD_Response *resp, const char *ctype)
{
    tsr_err rc = TSR_ERR_NOMEM;

    if (r->resp != NULL) {
        MHD_destroy_response(r->resp);
        r->resp = NULL;
    }
    r->status = 0;
    if (resp == NULL)
        goto out;
    rc = add_common_headers(r, resp, ctype);
    if (rc != TSR_OK) {
        MHD_destroy_response(resp);
        goto out;
    }
    r->resp = resp;
    r->status = status;
    rc = TSR_OK;
out:
    return rc;
}

tsr_err tsr_http_reply(tsr_http_req *r, int status, const char *ctype, const char *body,
                       size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    return install(r, status, resp, ctype);
}

tsr_err tsr_http_reply_owned(tsr_http_req *r, int status, const char *ctype, char *body,
                             size_t len, int secret)
{
    struct MHD_Response *resp;

    if (body == NULL)
        return install(r, status, NULL, ctype);
    if (secret) {
        r->no_store = 1;
        resp = MHD_create_response_from_buffer_with_free_callback(len, body, free_wiped);
        if (resp == NULL) {
            tsr_wipe(body, len);
            free(body);
        }
    } else {
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (resp == NULL)
            free(body);
    }
    return install(r, status, resp, ctype);
}

tsr_err tsr_http_reply_empty(tsr_http_req *r, int status)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    return install(r, status, resp, NULL);
}

static tsr_err reply_json_ctype(tsr_http_req *r, int status, json_t *v, int secret,
                                const char *ctype)
{
    tsr_err rc = TSR_ERR_NOMEM;
    char *text = NULL;
    struct MHD_Response *resp = NULL;

    if (v == NULL)
        goto out;
    text = json_dumps(v, JSON_COMPACT);
    if (text == NULL)
        goto out;
    if (secret) {
        r->no_store = 1;
        resp = MHD_create_response_from_buffer_with_free_callback(strlen(text), text,
                                                                   free_wiped);
    } else {
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    }
    if (resp == NULL) {
        if (secret)
            free_wiped(text);
        else
            free(text);
    }
    text = NULL;
    rc = install(r, status, resp, ctype);
out:
    if (rc != TSR_OK && r->resp != NULL) {
        MHD_destroy_response(r->resp);
        r->resp = NULL;
    }
    json_decref(v);
    return rc;
}

tsr_err tsr_http_reply_json(tsr_http_req *r, int status, json_t *v, int secret)
{
    return reply_json_ctype(r, status, v, secret, "application/json");
}

tsr_err tsr_http_problem(tsr_http_req *r, int status, const char *code, const char *detail)
{
    const char *title = MHD_get_reason_phrase_for((unsigned)status);
    json_t *v = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title",
                          title != NULL && title[0] != '\0' ? title : "Error", "status", status,
                          "code", code, "detail", detail != NULL ? detail : "");
    return reply_json_ctype(r, status, v, 0, "application/problem+json");
}

tsr_err tsr_http_oauth_error(tsr_http_req *r, int status, const char *error,
                             const char *description)
{
    char buf[512];
    tsr_jbuf b;
    tsr_err rc;

    tsr_jbuf_init(&b, buf, sizeof buf);
    tsr_jbuf_raw(&b, "{");
    tsr_jbuf_kv_str(&b, "error", error, strlen(error));
    if (description != NULL)
        tsr_jbuf_kv_str(&b, "error_description", description, strlen(description));
    tsr_jbuf_raw(&b, "}");
    if (b.failed) {
        static const char fallback[] = "{\"error\":\"server_error\"}";
        return tsr_http_reply(r, 500, "application/json", fallback, sizeof fallback - 1);
    }
    r->no_store = 1;
    rc = tsr_http_reply(r, status, "application/json", buf, b.len);
    tsr_http_header(r, "Pragma", "no-cache");
    if (status == 503)
        tsr_http_header(r, "Retry-After", "1");
    return rc;
}

int tsr_http_status_of(tsr_err e)
{
    switch (e) {
    case TSR_ERR_INVALID_GRANT:
    case TSR_ERR_UNSUPPORTED_GRANT:
    case TSR_ERR_INVALID:
    case TSR_ERR_UNSUPPORTED:
    case TSR_ERR_WEAK_PASSWORD:
    case TSR_ERR_WEAK_KEY:
    case TSR_ERR_KEY_INVALID:
        return 400;
    case TSR_ERR_INVALID_CREDENTIALS:
    case TSR_ERR_UNAUTHENTICATED:
        return 401;
    case TSR_ERR_CSRF:
    case TSR_ERR_SIGNUP_CLOSED:
    case TSR_ERR_FORBIDDEN:
        return 403;
    case TSR_ERR_NOT_FOUND:
        return 404;
    case TSR_ERR_EXISTS:
    case TSR_ERR_CONFLICT:
    case TSR_ERR_USERNAME_TAKEN:
        return 409;
    case TSR_ERR_TOO_LARGE:
        return 413;
    case TSR_ERR_RATE_LIMITED:
        return 429;
    case TSR_ERR_UNAVAILABLE:
        return 503;
    default:
        break;
    }
    if (tsr_err_is_token(e))
        return 401;
    return 500;
}

tsr_err tsr_http_problem_err(tsr_http_req *r, tsr_err e, const char *detail)
{
    int status = tsr_http_status_of(e);
    tsr_err rc = tsr_http_problem(r, status, tsr_err_code(e),
                                  detail != NULL ? detail : tsr_err_text(e));
    if (rc == TSR_OK && status == 503)
        tsr_http_header(r, "Retry-After", "1");
    return rc;
}

void tsr_http_header(tsr_http_req *r, const char *name, const char *value)
{
    if (r->resp == NULL)
        return;
    if (MHD_add_response_header(r->resp, name, value) != MHD_YES) {
        /* A response missing a header it needs (Set-Cookie) must not go out. */
        MHD_destroy_response(r->resp);
        r->resp = NULL;
        r->status = 0;
    }
}

void tsr_http_no_store(tsr_http_req *r)
{
    if (!r->no_store) {
        r->no_store = 1;
        tsr_http_header(r, "Cache-Control", "no-store");
    }
}

const char *tsr_http_req_header(tsr_http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *tsr_http_req_query(tsr_http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- strict JSON bodies ---- */

static tsr_err bad_request(tsr_http_req *r, const char *detail)
{
    (void)tsr_http_problem(r, 400, "invalid_request", detail);
    return TSR_ERR_INVALID;
}

tsr_err tsr_http_body_object(tsr_http_req *r)
{
    json_error_t jerr;

    if (r->json != NULL)
        return TSR_OK;
    if (r->body_len == 0)
        return bad_request(r, "a JSON object body is required");
    r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (r->json == NULL)
        return bad_request(r, "the body is not valid JSON (or repeats a key)");
    if (!json_is_object(r->json)) {
        json_decref(r->json);
        r->json = NULL;
        return bad_request(r, "the body must be a JSON object");
    }
    return TSR_OK;
}

/* 400 invalid_request naming the field; keys are our own constants, but a detail
 * that would not fit falls back to a generic one rather than a cut-off text. */
static tsr_err bad_field(tsr_http_req *r, const char *fmt_prefix, const char *key,
                         const char *fmt_suffix)
{
    char detail[160];
    int n = snprintf(detail, sizeof detail, "%s%s%s", fmt_prefix, key, fmt_suffix);
    if (n < 0 || (size_t)n >= sizeof detail)
        return bad_request(r, "a field is missing or has the wrong type");
    return bad_request(r, detail);
}

tsr_err tsr_http_json_str(tsr_http_req *r, const char *key, int required, const char **out,
                          size_t *len)
{
    json_t *v = r->json != NULL ? json_object_get(r->json, key) : NULL;

    *out = NULL;
    if (len != NULL)
        *len = 0;
    if (v == NULL) {
        if (!required)
            return TSR_OK;
        return bad_field(r, "missing field: ", key, "");
    }
    if (!json_is_string(v)) {
        return bad_field(r, "field ", key, " must be a string");
    }
    *out = json_string_value(v);
    if (len != NULL)
        *len = json_string_length(v);
    return TSR_OK;
}

tsr_err tsr_http_json_bool(tsr_http_req *r, const char *key, int *out, int *present)
{
    json_t *v = r->json != NULL ? json_object_get(r->json, key) : NULL;

    *present = 0;
    if (v == NULL)
        return TSR_OK;
    if (!json_is_boolean(v)) {
        return bad_field(r, "field ", key, " must be true or false");
    }
    *out = json_is_true(v) ? 1 : 0;
    *present = 1;
    return TSR_OK;
}

tsr_err tsr_http_json_roles(tsr_http_req *r, const char *key, char *out, size_t cap,
                            int *present)
{
    json_t *v = r->json != NULL ? json_object_get(r->json, key) : NULL;
    size_t used = 0, i;
    json_t *item;

    *present = 0;
    if (cap > 0)
        out[0] = '\0';
    if (v == NULL)
        return TSR_OK;
    if (!json_is_array(v))
        goto bad;
    json_array_foreach(v, i, item) {
        size_t n;
        if (!json_is_string(item))
            goto bad;
        n = json_string_length(item);
        if (n == 0 || used + n + 2 > cap || memchr(json_string_value(item), ',', n) != NULL)
            goto bad;
        if (used > 0)
            out[used++] = ',';
        memcpy(out + used, json_string_value(item), n);
        used += n;
        out[used] = '\0';
    }
    if (tsr_auth_roles_check(out) != TSR_OK)
        goto bad;
    *present = 1;
    return TSR_OK;
bad:
    if (cap > 0)
        out[0] = '\0';
    return bad_field(r, "field ", key,
                     " must be an array of distinct role names ([a-z0-9_.-]{1,32})");
}

tsr_err tsr_http_json_only(tsr_http_req *r, const char *const *allowed)
{
    const char *key;
    json_t *v;

    json_object_foreach(r->json, key, v) {
        int known = 0;
        for (size_t i = 0; allowed[i] != NULL; i++) {
            if (strcmp(allowed[i], key) == 0) {
                known = 1;
                break;
            }
        }
        if (!known)
            return bad_request(r, "the body has an unknown field");
    }
    return TSR_OK;
}

void tsr_http_json_wipe(tsr_http_req *r, const char *key)
{
    json_t *v = r->json != NULL ? json_object_get(r->json, key) : NULL;

    /* jansson owns the bytes and frees them unwiped: wipe them in place first. */
    if (v != NULL && json_is_string(v))
        tsr_wipe((char *)(uintptr_t)json_string_value(v), json_string_length(v));
}

/* ---- JSON into a caller's buffer ---- */

void tsr_jbuf_init(tsr_jbuf *b, char *p, size_t cap)
{
    b->p = p;
    b->len = 0;
    b->cap = cap;
    b->failed = cap == 0;
    if (cap > 0)
        p[0] = '\0';
}

static void jbuf_put(tsr_jbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n >= b->cap - b->len) { /* room for the NUL too */
        b->failed = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void tsr_jbuf_raw(tsr_jbuf *b, const char *s)
{
    jbuf_put(b, s, strlen(s));
}

void tsr_jbuf_str(tsr_jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    jbuf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (elen == 0)
            continue;
        /* Flush the plain run before the escape. */
        jbuf_put(b, s + run, i - run);
        jbuf_put(b, esc, elen);
        run = i + 1;
    }
    jbuf_put(b, s + run, n - run);
    jbuf_put(b, "\"", 1);
}

void tsr_jbuf_int(tsr_jbuf *b, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)v);

    if (n < 0 || (size_t)n >= sizeof num) {
        b->failed = 1;
        return;
    }
    jbuf_put(b, num, (size_t)n);
}

static void jbuf_key(tsr_jbuf *b, const char *key)
{
    if (b->len > 0 && b->p[b->len - 1] != '{' && b->p[b->len - 1] != '[')
        jbuf_put(b, ",", 1);
    tsr_jbuf_str(b, key, strlen(key));
    jbuf_put(b, ":", 1);
}

void tsr_jbuf_kv_str(tsr_jbuf *b, const char *key, const char *s, size_t n)
{
    jbuf_key(b, key);
    tsr_jbuf_str(b, s, n);
}

void tsr_jbuf_kv_int(tsr_jbuf *b, const char *key, int64_t v)
{
    jbuf_key(b, key);
    tsr_jbuf_int(b, v);
}

void tsr_jbuf_roles(tsr_jbuf *b, const char *roles)
{
    const char *p = roles;
    int first = 1;

    jbuf_put(b, "[", 1);
    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, ",");
        if (n > 0) {
            if (!first)
                jbuf_put(b, ",", 1);
            tsr_jbuf_str(b, p, n);
            first = 0;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    jbuf_put(b, "]", 1);
}

/* ---- views ---- */

json_t *tsr_http_roles_json(const char *roles)
{
    json_t *a = json_array();
    const char *p = roles;

    if (a == NULL)
        return NULL;
    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, ",");
        if (n > 0 && json_array_append_new(a, json_stringn(p, n)) != 0) {
            json_decref(a);
            return NULL;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return a;
}

json_t *tsr_http_user_json(const tsr_user *u, int admin_view)
{
    if (admin_view)
        return json_pack("{s:s, s:s, s:o, s:b, s:I, s:I}", "id", u->id, "username", u->username,
                         "roles", tsr_http_roles_json(u->roles), "disabled", u->disabled,
                         "created_at", (json_int_t)u->created_at, "updated_at",
                         (json_int_t)u->updated_at);
    return json_pack("{s:s, s:s, s:o}", "id", u->id, "username", u->username, "roles",
                     tsr_http_roles_json(u->roles));
}

json_t *tsr_http_session_json(const tsr_session *s)
{
    return json_pack("{s:s, s:I, s:I, s:I}", "id", s->id, "created_at", (json_int_t)s->created_at,
                     "expires_at", (json_int_t)s->expires_at, "idle_expires_at",
                     (json_int_t)s->idle_expires_at);
}

void tsr_http_rate_limited(tsr_http_req *r, int64_t secs)
{
    char v[24];
    int n;

    if (secs < 1)
        secs = 1;
    (void)tsr_http_problem(r, 429, "rate_limited", "too many failed attempts: retry later");
    n = snprintf(v, sizeof v, "%lld", (long long)secs);
    if (n > 0 && (size_t)n < sizeof v)
        tsr_http_header(r, "Retry-After", v);
}

void tsr_http_oauth_rate_limited(tsr_http_req *r, int64_t secs)
{
    char v[24];
    int n;

    if (secs < 1)
        secs = 1;
    (void)tsr_http_oauth_error(r, 429, "rate_limited", "too many failed attempts: retry later");
    n = snprintf(v, sizeof v, "%lld", (long long)secs);
    if (n > 0 && (size_t)n < sizeof v)
        tsr_http_header(r, "Retry-After", v);
}
