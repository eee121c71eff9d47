/* jwt.c: JWT claims (RFC 7519) on top of JWS: sign, verify with policy, decode.
 *
 * Claims are checked after the signature: times with leeway, iss exact, aud as a
 * string or an array, and the registered string claims typed. The claims JSON is
 * the only allocation of a verify. */
#include <math.h>
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

void tsr_jwt_reset(tsr_jwt *jwt)
{
    if (jwt == NULL)
        return;
    json_decref(jwt->claims);
    memset(jwt, 0, sizeof *jwt);
}

/* A NumericDate: a JSON integer, or a finite real (floored). */
static int numeric_date(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d < -9.2e18 || d > 9.2e18)
            return 0;
        *out = (int64_t)floor(d);
        return 1;
    }
    return 0;
}

/* Optional string claim: absent gives NULL; present must be a string without NUL. */
static int string_claim(const json_t *claims, const char *name, const char **out)
{
    const json_t *v = json_object_get(claims, name);
    *out = NULL;
    if (v == NULL)
        return 1;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return 0;
    *out = json_string_value(v);
    return 1;
}

static int aud_contains(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0 &&
               strlen(want) == json_string_length(aud);
    if (json_is_array(aud)) {
        size_t i;
        const json_t *e;
        json_array_foreach(aud, i, e) {
            if (json_is_string(e) && strlen(want) == json_string_length(e) &&
                strcmp(json_string_value(e), want) == 0)
                return 1;
        }
    }
    return 0;
}

/* aud is a string or an array of strings (RFC 7519 4.1.3). */
static int aud_well_formed(const json_t *aud)
{
    if (aud == NULL || json_is_string(aud))
        return 1;
    if (!json_is_array(aud))
        return 0;
    size_t i;
    const json_t *e;
    json_array_foreach(aud, i, e) {
        if (!json_is_string(e))
            return 0;
    }
    return 1;
}

static int roles_well_formed(const json_t *roles)
{
    if (roles == NULL)
        return 1;
    if (!json_is_array(roles))
        return 0;
    size_t i;
    const json_t *e;
    json_array_foreach(roles, i, e) {
        if (!json_is_string(e))
            return 0;
    }
    return 1;
}

tsr_err tsr_jwt_verify(const tsr_jwks *set, const tsr_jwt_policy *pol, int64_t now,
                       const char *tok, size_t len, tsr_jwt *out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    uint8_t payload[TSR_JWT_MAX_BYTES];
    size_t plen = 0;
    const tsr_jwk *k = NULL;
    json_t *claims = NULL, *v;
    tsr_jws_opts opts = {0};
    int64_t leeway = 0;

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (set == NULL || pol == NULL || tok == NULL)
        return TSR_ERR_INVALID;
    opts.typ = pol->typ;
    opts.require_kid = pol->require_kid;
    leeway = pol->leeway < 0 ? 0 : pol->leeway;

    rc = tsr_jws_verify(set, &opts, tok, len, payload, sizeof payload, &plen, &k);
    if (rc != TSR_OK)
        goto out;

    rc = TSR_ERR_TOKEN_JSON;
    claims = tsr_jose_parse_object((const char *)payload, plen);
    if (claims == NULL)
        goto out;
    out->claims = claims;

    rc = TSR_ERR_TOKEN_CLAIMS;
    v = json_object_get(claims, "exp");
    if (v != NULL ? !numeric_date(v, &out->exp) : pol->require_exp)
        goto out;
    v = json_object_get(claims, "nbf");
    if (v != NULL && !numeric_date(v, &out->nbf))
        goto out;
    v = json_object_get(claims, "iat");
    if (v != NULL && !numeric_date(v, &out->iat))
        goto out;
    if (!string_claim(claims, "iss", &out->iss) || !string_claim(claims, "sub", &out->sub) ||
        !string_claim(claims, "sid", &out->sid) || !string_claim(claims, "jti", &out->jti) ||
        !string_claim(claims, "scope", &out->scope))
        goto out;
    if (!aud_well_formed(json_object_get(claims, "aud")) ||
        !roles_well_formed(json_object_get(claims, "roles")))
        goto out;

    if (json_object_get(claims, "exp") != NULL && now >= out->exp + leeway) {
        rc = TSR_ERR_TOKEN_EXPIRED;
        goto out;
    }
    if ((out->nbf != 0 && now + leeway < out->nbf) || (out->iat != 0 && now + leeway < out->iat)) {
        rc = TSR_ERR_TOKEN_NOT_YET;
        goto out;
    }
    if (pol->iss != NULL && (out->iss == NULL || strcmp(out->iss, pol->iss) != 0)) {
        rc = TSR_ERR_TOKEN_ISSUER;
        goto out;
    }
    if (pol->aud != NULL && !aud_contains(json_object_get(claims, "aud"), pol->aud)) {
        rc = TSR_ERR_TOKEN_AUDIENCE;
        goto out;
    }
    out->alg = tsr_key_alg(tsr_jwk_key(k));
    out->key = k;
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        tsr_jwt_reset(out);
    return rc;
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
