/* h_keys.c: the signing keys seen from outside: the JWKS, the two discovery
 * documents (OpenID Connect Discovery and RFC 8414), and the admin API of keys
 * (rotate, list).
 *
 * Discovery lists what tessera does and nothing it does not: no
 * authorization_endpoint, no userinfo, public clients only ("none"). Members
 * that RFC 8414 and OpenID Connect Discovery mark REQUIRED are present so that
 * strict parsers accept the documents: response_types_supported ["token"]
 * (harmless without an authorization endpoint), and for OpenID
 * subject_types_supported ["public"] and id_token_signing_alg_values_supported
 * (the published algorithms; tessera issues no ID tokens). Both documents and
 * the JWKS may be cached for 300 s, the same bound as key publication.
 *
 * Rotation generates a key (an RSA key takes a while): it runs on the hashing
 * pool, off the request threads, like the other slow admin call (user create). */
#include "http/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/tokens.h"
#include "crypto/crypto.h"
#include "jose/jose.h"

#define PUBLIC_MAX_AGE "max-age=300"

static const char *const rotate_fields[] = {"alg", NULL};

void tsr_h_jwks(tsr_http_req *r)
{
    char *text = NULL;
    size_t len = 0;
    tsr_err rc = tsr_auth_jwks_json(r->srv->auth, &text, &len);

    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "the key set is unavailable");
        return;
    }
    if (tsr_http_reply_owned(r, 200, "application/json", text, len, 0) != TSR_OK)
        return;
    tsr_http_header(r, "Cache-Control", PUBLIC_MAX_AGE);
}

/* public URL + path into a json string; NULL when it does not fit. */
static json_t *url_json(tsr_http_req *r, const char *path)
{
    char url[TSR_HTTP_URL_MAX + 64];
    int n = snprintf(url, sizeof url, "%s%s", r->srv->public_url, path);

    if (n < 0 || (size_t)n >= sizeof url)
        return NULL;
    return json_string(url);
}

static json_t *published_algs_json(tsr_http_req *r)
{
    const char *algs[TSR_KEYS_MAX];
    size_t n = tsr_auth_published_algs(r->srv->auth, algs, TSR_KEYS_MAX);
    json_t *a = json_array();

    if (a == NULL)
        return NULL;
    for (size_t i = 0; i < n && i < TSR_KEYS_MAX; i++) {
        if (algs[i] == NULL || json_array_append_new(a, json_string(algs[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static void discovery(tsr_http_req *r, int openid)
{
    const char *issuer = tsr_auth_issuer(r->srv->auth);
    json_t *doc = NULL, *algs = NULL;

    if (issuer == NULL || issuer[0] == '\0')
        issuer = r->srv->public_url;
    algs = published_algs_json(r);
    if (algs == NULL)
        goto fail;
    doc = json_pack("{s:s, s:o*, s:o*, s:o*, s:o*, s:[ss], s:[s], s:[s], s:[s], s:O}",
                    "issuer", issuer,
                    "jwks_uri", url_json(r, "/.well-known/jwks.json"),
                    "token_endpoint", url_json(r, "/v1/oauth/token"),
                    "revocation_endpoint", url_json(r, "/v1/oauth/revoke"),
                    "introspection_endpoint", url_json(r, "/v1/oauth/introspect"),
                    "grant_types_supported", "password", "refresh_token",
                    "token_endpoint_auth_methods_supported", "none",
                    "revocation_endpoint_auth_methods_supported", "none",
                    "response_types_supported", "token",
                    "access_token_signing_alg_values_supported", algs);
    if (doc == NULL || json_object_size(doc) != 10)
        goto fail;
    if (openid &&
        (json_object_set_new(doc, "subject_types_supported", json_pack("[s]", "public")) != 0 ||
         json_object_set(doc, "id_token_signing_alg_values_supported", algs) != 0))
        goto fail;
    json_decref(algs);
    if (tsr_http_reply_json(r, 200, doc, 0) != TSR_OK)
        return;
    tsr_http_header(r, "Cache-Control", PUBLIC_MAX_AGE);
    return;
fail:
    json_decref(doc);
    json_decref(algs);
    (void)tsr_http_problem(r, 500, "internal", "the discovery document could not be built");
}

void tsr_h_openid_configuration(tsr_http_req *r)
{
    discovery(r, 1);
}

void tsr_h_oauth_metadata(tsr_http_req *r)
{
    discovery(r, 0);
}

/* ---- admin: POST /v1/admin/keys/rotate, GET /v1/admin/keys ---- */

typedef struct rotate_job {
    tsr_alg alg; /* TSR_ALG_INVALID: the configured one */
} rotate_job;

/* The alg of kid as the store lists it; NULL when not found. */
static const char *alg_of(tsr_http_req *r, const char *kid, tsr_key_info *keys, size_t max)
{
    size_t n = 0;

    if (tsr_auth_keys_list(r->srv->auth, keys, max, &n) != TSR_OK)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].kid, kid) == 0)
            return keys[i].alg;
    }
    return NULL;
}

static void rotate_work(tsr_http_req *r)
{
    rotate_job *j = r->work_ctx;
    char kid[TSR_KID_STORE_MAX + 1];
    tsr_key_info *keys = NULL;
    const char *alg = NULL;
    tsr_err rc;

    kid[0] = '\0';
    rc = tsr_auth_keys_rotate(r->srv->auth, j->alg, (int64_t)time(NULL), kid);
    if (rc == TSR_ERR_CONFLICT) /* another rotation won; the keyring is reloaded: once more */
        rc = tsr_auth_keys_rotate(r->srv->auth, j->alg, (int64_t)time(NULL), kid);
    if (rc == TSR_ERR_CONFLICT) {
        (void)tsr_http_problem(r, 409, "conflict",
                               "another key rotation happened at the same time: retry");
        goto out;
    }
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "the keys could not be rotated");
        goto out;
    }
    keys = calloc(TSR_KEYS_MAX, sizeof *keys);
    if (keys != NULL)
        alg = alg_of(r, kid, keys, TSR_KEYS_MAX);
    if (alg == NULL)
        alg = j->alg != TSR_ALG_INVALID ? tsr_alg_name(j->alg) : r->srv->cfg->tokens.alg;
    (void)tsr_http_reply_json(r, 201, json_pack("{s:s, s:s}", "kid", kid, "alg", alg), 0);
out:
    free(keys);
}

void tsr_h_admin_keys_rotate(tsr_http_req *r)
{
    rotate_job *j = NULL;
    const char *name = NULL;
    size_t nlen = 0;

    if (tsr_http_admin_guard(r) != TSR_OK)
        goto out;
    j = calloc(1, sizeof *j);
    if (j == NULL) {
        (void)tsr_http_problem(r, 500, "internal", "out of memory");
        goto out;
    }
    /* The body is optional: none (or {}) rotates to the configured algorithm. */
    if (r->body_len > 0) {
        if (tsr_http_body_object(r) != TSR_OK || tsr_http_json_only(r, rotate_fields) != TSR_OK ||
            tsr_http_json_str(r, "alg", 0, &name, &nlen) != TSR_OK)
            goto out;
        if (name != NULL) {
            j->alg = tsr_alg_from_name(name, nlen);
            if (j->alg == TSR_ALG_INVALID) {
                (void)tsr_http_problem(r, 400, "invalid_request",
                                       "alg: one of HS256 HS384 HS512 RS256 RS384 RS512 PS256 "
                                       "PS384 PS512 ES256 ES384 ES512 EdDSA");
                goto out;
            }
        }
    }
    tsr_http_defer(r, rotate_work, j, free);
    j = NULL;
out:
    free(j);
}

static json_t *date_json(int64_t t)
{
    return t > 0 ? json_integer((json_int_t)t) : json_null();
}

void tsr_h_admin_keys_list(tsr_http_req *r)
{
    tsr_key_info *keys = NULL;
    size_t n = 0;
    json_t *arr = NULL;
    tsr_err rc;

    if (tsr_http_admin_guard(r) != TSR_OK)
        return;
    keys = calloc(TSR_KEYS_MAX, sizeof *keys);
    arr = json_array();
    if (keys == NULL || arr == NULL) {
        (void)tsr_http_problem(r, 500, "internal", "out of memory");
        goto out;
    }
    rc = tsr_auth_keys_list(r->srv->auth, keys, TSR_KEYS_MAX, &n);
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "the keys could not be listed");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const tsr_key_info *k = &keys[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "kid", k->kid, "alg",
                              k->alg, "state", k->state != NULL ? k->state : "unknown",
                              "created_at", date_json(k->created_at), "activated_at",
                              date_json(k->activated_at), "retired_at",
                              date_json(k->retired_at), "publish_until",
                              date_json(k->publish_until));
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            (void)tsr_http_problem(r, 500, "internal", "out of memory");
            goto out;
        }
    }
    (void)tsr_http_reply_json(r, 200, json_pack("{s:O}", "keys", arr), 0);
    tsr_http_no_store(r);
out:
    json_decref(arr);
    free(keys);
}
