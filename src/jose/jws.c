/* jws.c: JWS compact serialisation (RFC 7515): sign and strict verify.
 *
 * Verification order: size cap, shape (exactly three parts), header decoded and
 * parsed strictly, alg known and not "none", no crit, typ, kid found in OUR set
 * (jku, x5u, jwk, x5c are never read), alg equal to the key's, then the signature
 * over the exact bytes received, then the payload decoded. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jose/jose_int.h"

#define HDR_MAX_BYTES 1024 /* our headers are ~100 bytes; a longer one is refused */

tsr_err tsr_jws_sign(const tsr_jwk *k, const char *typ, const uint8_t *payload, size_t n,
                     char **out, size_t *outlen)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    json_t *hdr = NULL;
    char *hjson = NULL, *tok = NULL;
    uint8_t sig[TSR_SIG_MAX_BYTES];
    size_t siglen = 0, hlen, plen, slen, cap, w;

    if (out == NULL || outlen == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    *outlen = 0;
    if (k == NULL || (payload == NULL && n > 0))
        return TSR_ERR_INVALID;
    if (n > TSR_JWT_MAX_BYTES)
        return TSR_ERR_TOO_LARGE;
    rc = TSR_ERR_NOMEM;
    hdr = json_object();
    if (hdr == NULL ||
        json_object_set_new(hdr, "alg", json_string(tsr_alg_name(tsr_jwk_alg(k)))) != 0 ||
        (typ != NULL && json_object_set_new(hdr, "typ", json_string(typ)) != 0) ||
        json_object_set_new(hdr, "kid", json_string(tsr_jwk_kid(k))) != 0)
        goto out;
    hjson = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (hjson == NULL)
        goto out;
    hlen = tsr_b64url_encoded_len(strlen(hjson));
    plen = tsr_b64url_encoded_len(n);
    slen = tsr_b64url_encoded_len(tsr_key_sig_len(tsr_jwk_key(k)));
    cap = hlen + 1 + plen + 1 + slen + 1;
    tok = malloc(cap);
    if (tok == NULL)
        goto out;
    rc = tsr_b64url_encode((const uint8_t *)hjson, strlen(hjson), tok, cap, &w);
    if (rc != TSR_OK)
        goto out;
    tok[hlen] = '.';
    rc = tsr_b64url_encode(payload, n, tok + hlen + 1, cap - hlen - 1, &w);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_key_sign(tsr_jwk_key(k), (const uint8_t *)tok, hlen + 1 + plen, sig, sizeof sig,
                      &siglen);
    if (rc != TSR_OK)
        goto out;
    tok[hlen + 1 + plen] = '.';
    rc = tsr_b64url_encode(sig, siglen, tok + hlen + 1 + plen + 1, cap - (hlen + 1 + plen + 1),
                           &w);
    if (rc != TSR_OK)
        goto out;
    *out = tok;
    *outlen = hlen + 1 + plen + 1 + w;
    tok = NULL;
    rc = TSR_OK;
out:
    free(tok);
    free(hjson);
    json_decref(hdr);
    return rc;
}

/* typ compare per RFC 7515 4.1.9: case-insensitive, "application/" optional. */
static int typ_matches(const tsr_jv *v, const char *want)
{
    char buf[64];
    const char *s = buf;
    size_t n;
    if (v == NULL || tsr_json_string(v, buf, sizeof buf, &n) != TSR_OK || strlen(buf) != n)
        return 0;
    if (strncasecmp(s, "application/", 12) == 0)
        s += 12;
    if (strncasecmp(want, "application/", 12) == 0)
        want += 12;
    return strcasecmp(s, want) == 0;
}

#define HDR_MEMBERS_MAX 16

tsr_err tsr_jws_verify(const tsr_jwks *set, const tsr_jws_opts *opts, const char *tok,
                       size_t len, uint8_t *buf, size_t cap, size_t *payload_len,
                       const tsr_jwk **key)
{
    tsr_err rc = TSR_ERR_TOKEN_MALFORMED;
    const char *d1, *d2;
    uint8_t hbuf[HDR_MAX_BYTES];
    uint8_t sig[TSR_SIG_MAX_BYTES];
    size_t hlen, siglen;
    tsr_jmember hm[HDR_MEMBERS_MAX];
    size_t nh = 0;
    const tsr_jv *v;
    const tsr_jwk *k = NULL;
    tsr_alg alg;

    if (payload_len == NULL || key == NULL)
        return TSR_ERR_INVALID;
    *payload_len = 0;
    *key = NULL;
    if (set == NULL || tok == NULL || buf == NULL)
        return TSR_ERR_INVALID;
    if (len > TSR_JWT_MAX_BYTES)
        return TSR_ERR_TOKEN_TOO_LARGE;

    /* Exactly three parts; the header part must not be empty. */
    d1 = memchr(tok, '.', len);
    if (d1 == NULL || d1 == tok)
        goto out;
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
        goto out;
    if ((size_t)(d1 - tok) > tsr_b64url_encoded_len(sizeof hbuf))
        goto out;
    if (tsr_b64url_decode(tok, (size_t)(d1 - tok), hbuf, sizeof hbuf, &hlen) != TSR_OK)
        goto out;

    rc = TSR_ERR_TOKEN_JSON;
    if (tsr_json_scan_object((const char *)hbuf, hlen, hm, HDR_MEMBERS_MAX, &nh) != TSR_OK)
        goto out;

    rc = TSR_ERR_TOKEN_ALG;
    v = tsr_json_find(hm, nh, "alg");
    {
        char name[64];
        size_t nlen;
        if (v == NULL || v->type != TSR_JV_STRING ||
            tsr_json_string(v, name, sizeof name, &nlen) != TSR_OK)
            goto out;
        alg = tsr_alg_from_name(name, nlen);
    }
    if (alg == TSR_ALG_INVALID)
        goto out;

    /* We implement no JWS extension, so any crit names one we do not understand. */
    if (tsr_json_find(hm, nh, "crit") != NULL) {
        rc = TSR_ERR_TOKEN_CRIT;
        goto out;
    }
    if (opts != NULL && opts->typ != NULL && !typ_matches(tsr_json_find(hm, nh, "typ"), opts->typ)) {
        rc = TSR_ERR_TOKEN_TYP;
        goto out;
    }

    rc = TSR_ERR_TOKEN_KID;
    v = tsr_json_find(hm, nh, "kid");
    if (v != NULL) {
        char kid[TSR_KID_MAX + 1];
        size_t kidlen;
        if (v->type != TSR_JV_STRING || tsr_json_string(v, kid, sizeof kid, &kidlen) != TSR_OK)
            goto out;
        k = tsr_jwks_find(set, kid, kidlen);
    } else if ((opts == NULL || !opts->require_kid) && tsr_jwks_count(set) == 1) {
        k = tsr_jwks_get(set, 0);
    }
    if (k == NULL)
        goto out;
    /* The key pins the algorithm. */
    if (tsr_key_alg(tsr_jwk_key(k)) != alg) {
        rc = TSR_ERR_TOKEN_ALG;
        goto out;
    }

    rc = TSR_ERR_TOKEN_MALFORMED;
    size_t slen_chars = len - (size_t)(d2 + 1 - tok);
    if (slen_chars == 0 || slen_chars > tsr_b64url_encoded_len(sizeof sig))
        goto out;
    if (tsr_b64url_decode(d2 + 1, slen_chars, sig, sizeof sig, &siglen) != TSR_OK)
        goto out;
    rc = tsr_key_verify(tsr_jwk_key(k), (const uint8_t *)tok, (size_t)(d2 - tok), sig, siglen);
    if (rc != TSR_OK)
        goto out;

    rc = TSR_ERR_TOKEN_MALFORMED;
    size_t plen_chars = (size_t)(d2 - d1 - 1);
    if (tsr_b64url_decoded_max(plen_chars) > cap)
        goto out;
    if (tsr_b64url_decode(d1 + 1, plen_chars, buf, cap, payload_len) != TSR_OK)
        goto out;
    *key = k;
    rc = TSR_OK;
out:
    return rc;
}
