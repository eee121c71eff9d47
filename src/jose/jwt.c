/* jwt.c: JWT claims (RFC 7519) on top of JWS: sign, verify with policy, decode.
 *
 * Claims are checked after the signature: times with leeway, iss exact, aud as a
 * string or an array, and the registered string claims typed. The claims JSON is
 * the only allocation of a verify. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "jose/jose_int.h"

tsr_jwt_policy tsr_jwt_policy_access(const char *iss, const char *aud)
{
    tsr_jwt_policy p = {
        .iss = iss,
        .aud = aud,
        .typ = "at+jwt",
        .leeway = TSR_JWT_DEFAULT_LEEWAY,
        .require_exp = 1,
        .require_kid = 1,
    };
    return p;
}

/* The claim fields, everything before the payload buffer. */
#define JWT_HEAD_BYTES offsetof(tsr_jwt, payload_len)

void tsr_jwt_reset(tsr_jwt *jwt)
{
    if (jwt != NULL)
        memset(jwt, 0, JWT_HEAD_BYTES);
}

#define CLAIMS_MEMBERS_MAX TSR_JSON_KEYS_MAX

/* Optional string claim into the jwt's string buffer: absent gives NULL. */
static int string_claim(tsr_jwt *jwt, size_t *used, const tsr_jmember *m, size_t nm,
                        const char *name, const char **out)
{
    const tsr_jv *v = tsr_json_find(m, nm, name);
    size_t n;
    *out = NULL;
    if (v == NULL)
        return 1;
    if (v->type != TSR_JV_STRING ||
        tsr_json_string(v, jwt->strbuf + *used, sizeof jwt->strbuf - *used, &n) != TSR_OK ||
        strlen(jwt->strbuf + *used) != n)
        return 0;
    *out = jwt->strbuf + *used;
    *used += n + 1;
    return 1;
}

/* aud is a string or an array of strings (RFC 7519 4.1.3); is want among them? */
static int aud_check(const tsr_jv *aud, const char *want, char *scratch, size_t cap, int *ok)
{
    size_t n, pos = 0;
    int done = 0;
    tsr_jv e;
    *ok = 0;
    if (aud == NULL)
        return 1;
    if (aud->type == TSR_JV_STRING) {
        if (tsr_json_string(aud, scratch, cap, &n) != TSR_OK)
            return 0;
        *ok = want != NULL && strlen(want) == n && memcmp(scratch, want, n) == 0;
        return 1;
    }
    if (aud->type != TSR_JV_ARRAY)
        return 0;
    for (;;) {
        if (tsr_json_array_next(aud, &pos, &e, &done) != TSR_OK)
            return 0;
        if (done)
            return 1;
        if (e.type != TSR_JV_STRING || tsr_json_string(&e, scratch, cap, &n) != TSR_OK)
            return 0;
        if (want != NULL && strlen(want) == n && memcmp(scratch, want, n) == 0)
            *ok = 1;
    }
}

static int roles_claim(tsr_jwt *jwt, size_t *used, const tsr_jv *roles)
{
    size_t pos = 0, n;
    int done = 0;
    tsr_jv e;
    if (roles == NULL)
        return 1;
    if (roles->type != TSR_JV_ARRAY)
        return 0;
    for (;;) {
        if (tsr_json_array_next(roles, &pos, &e, &done) != TSR_OK)
            return 0;
        if (done)
            return 1;
        if (e.type != TSR_JV_STRING || jwt->nroles == TSR_JWT_ROLES_MAX ||
            tsr_json_string(&e, jwt->strbuf + *used, sizeof jwt->strbuf - *used, &n) != TSR_OK ||
            strlen(jwt->strbuf + *used) != n)
            return 0;
        jwt->roles[jwt->nroles++] = jwt->strbuf + *used;
        *used += n + 1;
    }
}

static int date_claim(const tsr_jmember *m, size_t nm, const char *name, int64_t *out,
                      int *present)
{
    const tsr_jv *v = tsr_json_find(m, nm, name);
    *present = v != NULL;
    *out = 0;
    return v == NULL || tsr_json_numeric(v, out);
}

tsr_err tsr_jwt_verify(const tsr_jwks *set, const tsr_jwt_policy *pol, int64_t now,
                       const char *tok, size_t len, tsr_jwt *out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    const tsr_jwk *k = NULL;
    tsr_jws_opts opts = {0};
    tsr_jmember m[CLAIMS_MEMBERS_MAX];
    size_t nm = 0, used = 0;
    int64_t leeway;
    int has_exp, has_nbf, has_iat, aud_ok;

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, JWT_HEAD_BYTES);
    out->payload_len = 0;
    if (set == NULL || pol == NULL || tok == NULL)
        return TSR_ERR_INVALID;
    opts.typ = pol->typ;
    opts.require_kid = pol->require_kid;
    leeway = pol->leeway < 0 ? 0 : pol->leeway;

    rc = tsr_jws_verify(set, &opts, tok, len, (uint8_t *)out->payload, sizeof out->payload - 1,
                        &out->payload_len, &k);
    if (rc != TSR_OK)
        goto out;
    out->payload[out->payload_len] = '\0';

    rc = TSR_ERR_TOKEN_JSON;
    if (tsr_json_scan_object(out->payload, out->payload_len, m, CLAIMS_MEMBERS_MAX, &nm) != TSR_OK)
        goto out;

    rc = TSR_ERR_TOKEN_CLAIMS;
    if (!date_claim(m, nm, "exp", &out->exp, &has_exp) ||
        !date_claim(m, nm, "nbf", &out->nbf, &has_nbf) ||
        !date_claim(m, nm, "iat", &out->iat, &has_iat))
        goto out;
    if (pol->require_exp && !has_exp)
        goto out;
    if (!string_claim(out, &used, m, nm, "iss", &out->iss) ||
        !string_claim(out, &used, m, nm, "sub", &out->sub) ||
        !string_claim(out, &used, m, nm, "sid", &out->sid) ||
        !string_claim(out, &used, m, nm, "jti", &out->jti) ||
        !string_claim(out, &used, m, nm, "scope", &out->scope) ||
        !string_claim(out, &used, m, nm, "username", &out->username) ||
        !roles_claim(out, &used, tsr_json_find(m, nm, "roles")))
        goto out;
    /* aud's scratch: the rest of strbuf, enough for any one string of the payload. */
    if (!aud_check(tsr_json_find(m, nm, "aud"), pol->aud, out->strbuf + used,
                   sizeof out->strbuf - used, &aud_ok))
        goto out;

    if (has_exp && now - leeway >= out->exp) { /* now is sane; exp may be INT64_MAX */
        rc = TSR_ERR_TOKEN_EXPIRED;
        goto out;
    }
    if ((has_nbf && now + leeway < out->nbf) || (has_iat && now + leeway < out->iat)) {
        rc = TSR_ERR_TOKEN_NOT_YET;
        goto out;
    }
    if (pol->iss != NULL && (out->iss == NULL || strcmp(out->iss, pol->iss) != 0)) {
        rc = TSR_ERR_TOKEN_ISSUER;
        goto out;
    }
    if (pol->aud != NULL && !aud_ok) {
        rc = TSR_ERR_TOKEN_AUDIENCE;
        goto out;
    }
    out->alg = tsr_key_alg(tsr_jwk_key(k));
    out->key = k;
    rc = TSR_OK;
out:
    if (rc != TSR_OK) {
        tsr_jwt_reset(out);
        out->payload_len = 0;
    }
    return rc;
}

tsr_err tsr_jwt_claims_json(const tsr_jwt *jwt, json_t **out)
{
    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (jwt == NULL || jwt->payload_len == 0)
        return TSR_ERR_INVALID;
    *out = tsr_jose_parse_object(jwt->payload, jwt->payload_len);
    return *out != NULL ? TSR_OK : TSR_ERR_TOKEN_JSON;
}

tsr_err tsr_jwt_sign(const tsr_jwk *k, const char *typ, const json_t *claims, char **out,
                     size_t *outlen)
{
    tsr_err rc;
    char *payload;

    if (out == NULL || outlen == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    *outlen = 0;
    if (k == NULL || !json_is_object(claims))
        return TSR_ERR_INVALID;
    payload = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (payload == NULL)
        return TSR_ERR_NOMEM;
    rc = tsr_jws_sign(k, typ, (const uint8_t *)payload, strlen(payload), out, outlen);
    free(payload);
    return rc;
}

tsr_err tsr_jwt_decode_unverified(const char *tok, size_t len, json_t **header, json_t **claims)
{
    tsr_err rc = TSR_ERR_TOKEN_MALFORMED;
    uint8_t buf[TSR_JWT_MAX_BYTES];
    size_t n;
    const char *d1, *d2;

    if (header == NULL || claims == NULL)
        return TSR_ERR_INVALID;
    *header = NULL;
    *claims = NULL;
    if (tok == NULL)
        return TSR_ERR_INVALID;
    if (len > TSR_JWT_MAX_BYTES)
        return TSR_ERR_TOKEN_TOO_LARGE;
    d1 = memchr(tok, '.', len);
    if (d1 == NULL)
        goto out;
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
        goto out;
    if (tsr_b64url_decode(tok, (size_t)(d1 - tok), buf, sizeof buf, &n) != TSR_OK)
        goto out;
    rc = TSR_ERR_TOKEN_JSON;
    *header = tsr_jose_parse_object((const char *)buf, n);
    if (*header == NULL)
        goto out;
    rc = TSR_ERR_TOKEN_MALFORMED;
    if (tsr_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, sizeof buf, &n) != TSR_OK)
        goto out;
    rc = TSR_ERR_TOKEN_JSON;
    *claims = tsr_jose_parse_object((const char *)buf, n);
    if (*claims == NULL)
        goto out;
    rc = TSR_OK;
out:
    if (rc != TSR_OK) {
        json_decref(*header);
        json_decref(*claims);
        *header = NULL;
        *claims = NULL;
    }
    return rc;
}
