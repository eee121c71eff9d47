/* test_rfc7515.c: RFC 7515 appendix A known answers (JWS compact serialization).
 *
 * A.1 HS256 and A.2 RS256 are deterministic: the signature over the given
 * signing input must be the RFC's bytes. A.3 ES256 and A.4 ES512 are verified
 * only. A.5 (alg "none") must never verify. The payload is the RFC's JWT claims
 * set with exp 1300819380 (2011), so JWT-level checks run at a chosen "now".
 * Every accepted token has a mutated twin that is refused. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "jose/jose.h"

#define EXP_2011 ((int64_t)1300819380)

/* The payload of A.1 to A.3 and A.5: {"iss":"joe",\r\n "exp":1300819380,\r\n ...}. */
static const char payload_a[] = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
                                "\"http://example.com/is_root\":true}";
#define PAYLOAD_A_B64                                                                              \
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl" \
    "fQ"

/* A.1: HMAC SHA-256. */
static const char a1_jwk[] =
    "{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4"
    "hcgUuTwjAzZr1Z9CAow\"}";
#define A1_HEADER_B64 "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
#define A1_SIG "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
static const char a1_header[] = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
static const char a1_compact[] = A1_HEADER_B64 "." PAYLOAD_A_B64 "." A1_SIG;

/* A.2: RSASSA-PKCS1-v1_5 SHA-256 (the RSA key of A.2.1). */
#define A2_N                                                                                       \
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-"                        \
    "4qPCJrcS2mJPMEzP1Pt0Bm4d"                                                                     \
    "4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-"                      \
    "bSf63kpaSHSXndS5z5rexM"                                                                       \
    "dbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_"                 \
    "I5IhlJH7aGhyxXFvU"                                                                            \
    "K-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
#define A2_D                                                                                       \
    "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-"           \
    "7YwVol2NXOo"                                                                                  \
    "AJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_"     \
    "V51gf"                                                                                        \
    "pRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_"        \
    "jTj3ccPD"                                                                                     \
    "VZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ"
#define A2_P                                                                                       \
    "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_"     \
    "Py5PJ"                                                                                        \
    "dTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc"
#define A2_Q                                                                                       \
    "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-"                                                               \
    "7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD"                              \
    "_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc"
#define A2_DP                                                                                      \
    "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-"        \
    "FOKnu1R6"                                                                                     \
    "HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0"
#define A2_DQ                                                                                      \
    "h_96-mK1R_"                                                                                   \
    "7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaH"          \
    "F-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU"
#define A2_QI                                                                                      \
    "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_"             \
    "QJQ3ydy5cY7YI"                                                                                \
    "Bi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"
static const char a2_jwk[] =
    "{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":\"AQAB\",\"d\":\"" A2_D "\",\"p\":\"" A2_P
    "\",\"q\":\"" A2_Q "\",\"dp\":\"" A2_DP "\",\"dq\":\"" A2_DQ "\",\"qi\":\"" A2_QI "\"}";
static const char a2_jwk_public[] = "{\"kty\":\"RSA\",\"n\":\"" A2_N "\",\"e\":\"AQAB\"}";
#define A2_HEADER_B64 "eyJhbGciOiJSUzI1NiJ9"
#define A2_SIG                                                                                     \
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_"        \
    "O8W2Fp5j"                                                                                     \
    "ujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_"                                            \
    "nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L"                                                 \
    "07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-"                                                \
    "eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEU"                                             \
    "ipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
static const char a2_compact[] = A2_HEADER_B64 "." PAYLOAD_A_B64 "." A2_SIG;

/* A.3: ECDSA P-256 SHA-256. */
static const char a3_jwk[] = "{\"kty\":\"EC\",\"crv\":\"P-256\","
                             "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                             "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\","
                             "\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}";
#define A3_HEADER_B64 "eyJhbGciOiJFUzI1NiJ9"
#define A3_SIG                                                                                     \
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
static const char a3_compact[] = A3_HEADER_B64 "." PAYLOAD_A_B64 "." A3_SIG;

/* A.4: ECDSA P-521 SHA-512, payload "Payload" (not JSON). */
static const char a4_jwk[] =
    "{\"kty\":\"EC\",\"crv\":\"P-521\","
    "\"x\":\"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqw"
    "QGk\","
    "\"y\":\"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3ky"
    "Mj2\","
    "\"d\":\"AY5pb7A0UFiB3RELSD64fTLOSV_jazdF7fLYyuTw8lOfRhWg6Y6rUrPAxerEzgdRhajnu0ferB0d53vM9mE15"
    "j2C\"}";
static const char a4_compact[] =
    "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA.AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-"
    "mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrm"
    "xYbSW9ERBXukOXolLzeO_Jn";

/* A.5: unsecured JWS. */
static const char a5_compact[] = "eyJhbGciOiJub25lIn0." PAYLOAD_A_B64 ".";

/* ---- helpers ---- */

static tsr_jwk *import(const char *label, const char *json, tsr_alg hint)
{
    tsr_jwk *k = NULL;
    tsr_err rc = tsr_jwk_parse(json, strlen(json), hint, &k);
    CHECKF(rc == TSR_OK && k != NULL, "%s: tsr_jwk_parse -> %d (%s)", label, rc, tsr_err_text(rc));
    return rc == TSR_OK ? k : NULL;
}

static tsr_jwks *one_set(tsr_jwk *k)
{
    tsr_jwks *set = NULL;
    tsr_jwk *arr[1] = {k};
    tsr_err rc = tsr_jwks_new(arr, 1, &set);
    CHECKF(rc == TSR_OK, "tsr_jwks_new -> %d", rc);
    return set;
}

/* Heap copy of exactly len bytes (no NUL), so ASan catches a read past the token. */
static char *exact_copy(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    if (p != NULL)
        memcpy(p, s, len);
    return p;
}

static tsr_err jws_verify(const tsr_jwks *set, int require_kid, const char *typ, const char *tok,
                          size_t len, uint8_t *buf, size_t cap, size_t *plen)
{
    tsr_jws_opts opts = {.typ = typ, .require_kid = require_kid};
    const tsr_jwk *used = NULL;
    char *copy = exact_copy(tok, len);
    if (copy == NULL)
        return TSR_ERR_NOMEM;
    *plen = 0;
    tsr_err rc = tsr_jws_verify(set, &opts, copy, len, buf, cap, plen, &used);
    CHECKF((rc == TSR_OK) == (used != NULL), "key output %p with rc %d", (const void *)used, rc);
    free(copy);
    return rc;
}

static tsr_jwt_policy policy_2011(void)
{
    tsr_jwt_policy p;
    memset(&p, 0, sizeof p);
    p.iss = NULL;
    p.aud = NULL;
    p.typ = NULL;
    p.leeway = TSR_JWT_DEFAULT_LEEWAY;
    p.require_exp = 1;
    p.require_kid = 0;
    return p;
}

static tsr_err jwt_verify(const tsr_jwks *set, const tsr_jwt_policy *pol, int64_t now,
                          const char *tok, tsr_jwt *out)
{
    size_t len = strlen(tok);
    char *copy = exact_copy(tok, len);
    if (copy == NULL)
        return TSR_ERR_NOMEM;
    tsr_err rc = tsr_jwt_verify(set, pol, now, copy, len, out);
    if (rc != TSR_OK) {
        CHECKF(out->iss == NULL && out->sub == NULL && out->nroles == 0 && out->exp == 0 &&
                   out->key == NULL && out->alg == TSR_ALG_INVALID,
               "tsr_jwt out not zeroed after error %d", rc);
        memset(out, 0, sizeof *out);
    }
    free(copy);
    return rc;
}

static void check_sig_exact(const char *label, const tsr_jwk *k, const char *si, const char *want)
{
    uint8_t sig[TSR_SIG_MAX_BYTES];
    char enc[TSR_SIG_MAX_BYTES * 2];
    size_t siglen = 0, enclen = 0;
    tsr_err rc =
        tsr_key_sign(tsr_jwk_key(k), (const uint8_t *)si, strlen(si), sig, sizeof sig, &siglen);
    CHECKF(rc == TSR_OK, "%s: sign -> %d (%s)", label, rc, tsr_err_text(rc));
    if (rc != TSR_OK)
        return;
    CHECK(tsr_b64url_encode(sig, siglen, enc, sizeof enc, &enclen) == TSR_OK);
    CHECKF(strcmp(enc, want) == 0, "%s: signature\n got  %s\n want %s", label, enc, want);
}

/* Flips one middle character of part (0 header, 1 payload, 2 signature). */
static char *flip_part(const char *tok, int part)
{
    size_t len = strlen(tok);
    char *m = malloc(len + 1);
    if (m == NULL)
        return NULL;
    memcpy(m, tok, len + 1);
    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    size_t start = part == 0 ? 0 : part == 1 ? (size_t)(d1 - tok) + 1 : (size_t)(d2 - tok) + 1;
    size_t end = part == 0 ? (size_t)(d1 - tok) : part == 1 ? (size_t)(d2 - tok) : len;
    size_t at = start + (end - start) / 2;
    m[at] = (m[at] == 'A') ? 'B' : 'A';
    return m;
}

/* JWS-level: verifies, payload equals payload_a, and every one-part flip is refused. */
static void check_jws(const char *label, const tsr_jwks *set, const char *tok, const uint8_t *want,
                      size_t wantlen)
{
    static uint8_t buf[TSR_JWT_MAX_BYTES];
    size_t plen = 0;
    tsr_err rc = jws_verify(set, 0, NULL, tok, strlen(tok), buf, sizeof buf, &plen);
    CHECKF(rc == TSR_OK, "%s: verify -> %d (%s)", label, rc, tsr_err_text(rc));
    if (rc == TSR_OK)
        CHECKF(plen == wantlen && memcmp(buf, want, plen) == 0, "%s: payload bytes", label);
    for (int part = 0; part < 3; part++) {
        char *m = flip_part(tok, part);
        if (m == NULL)
            continue;
        rc = jws_verify(set, 0, NULL, m, strlen(m), buf, sizeof buf, &plen);
        if (part == 0)
            CHECKF(rc != TSR_OK && tsr_err_is_token(rc), "%s: header flip -> %d", label, rc);
        else
            CHECKF(rc == TSR_ERR_TOKEN_SIGNATURE, "%s: part %d flip -> %d (%s)", label, part, rc,
                   tsr_err_text(rc));
        free(m);
    }
    /* A payload buffer too small is an error, never an overflow. */
    rc = jws_verify(set, 0, NULL, tok, strlen(tok), buf, wantlen > 0 ? wantlen - 1 : 0, &plen);
    CHECKF(rc != TSR_OK, "%s: payload into a short buffer -> OK", label);
}

/* JWT-level: claims parse at a time before exp, expire after it (30 s leeway). */
static void check_jwt_2011(const char *label, const tsr_jwks *set, const char *tok, tsr_alg alg)
{
    tsr_jwt_policy pol = policy_2011();
    static tsr_jwt jwt;
    memset(&jwt, 0xa5, sizeof jwt); /* outputs must be written, not assumed zero */
    tsr_err rc = jwt_verify(set, &pol, EXP_2011 - 10, tok, &jwt);
    CHECKF(rc == TSR_OK, "%s: jwt verify in 2011 -> %d (%s)", label, rc, tsr_err_text(rc));
    if (rc == TSR_OK) {
        CHECK(jwt.iss != NULL && strcmp(jwt.iss, "joe") == 0);
        CHECK(jwt.exp == EXP_2011);
        CHECK(jwt.nbf == 0 && jwt.iat == 0);
        CHECK(jwt.sub == NULL && jwt.sid == NULL && jwt.jti == NULL && jwt.scope == NULL);
        CHECK(jwt.alg == alg);
        CHECK(jwt.key != NULL);
        CHECK(jwt.nroles == 0);
        CHECK(jwt.payload_len == strlen(payload_a) &&
              memcmp(jwt.payload, payload_a, jwt.payload_len) == 0);
        json_t *cj = NULL;
        CHECK(tsr_jwt_claims_json(&jwt, &cj) == TSR_OK);
        CHECK(json_is_true(json_object_get(cj, "http://example.com/is_root")));
        CHECK(json_object_size(cj) == 3);
        json_decref(cj);
        tsr_jwt_reset(&jwt);
        CHECK(jwt.iss == NULL && jwt.exp == 0 && jwt.key == NULL);
    }

    /* Leeway: 29 s after exp still valid, 31 s after refused. */
    rc = jwt_verify(set, &pol, EXP_2011 + 29, tok, &jwt);
    CHECKF(rc == TSR_OK, "%s: exp+29 -> %d", label, rc);
    tsr_jwt_reset(&jwt);
    rc = jwt_verify(set, &pol, EXP_2011 + 31, tok, &jwt);
    CHECKF(rc == TSR_ERR_TOKEN_EXPIRED, "%s: exp+31 -> %d (%s)", label, rc, tsr_err_text(rc));
    tsr_jwt_reset(&jwt);
    rc = jwt_verify(set, &pol, (int64_t)2000000000, tok, &jwt);
    CHECKF(rc == TSR_ERR_TOKEN_EXPIRED, "%s: far future -> %d (%s)", label, rc, tsr_err_text(rc));
    tsr_jwt_reset(&jwt);

    /* Policy twins: iss matches exactly; no aud in the token; typ at+jwt required. */
    pol.iss = "joe";
    rc = jwt_verify(set, &pol, EXP_2011 - 10, tok, &jwt);
    CHECKF(rc == TSR_OK, "%s: iss joe -> %d", label, rc);
    tsr_jwt_reset(&jwt);
    pol.iss = "Joe";
    rc = jwt_verify(set, &pol, EXP_2011 - 10, tok, &jwt);
    CHECKF(rc == TSR_ERR_TOKEN_ISSUER, "%s: iss Joe -> %d", label, rc);
    tsr_jwt_reset(&jwt);
    pol.iss = NULL;
    pol.aud = "tessera";
    rc = jwt_verify(set, &pol, EXP_2011 - 10, tok, &jwt);
    CHECKF(rc == TSR_ERR_TOKEN_AUDIENCE, "%s: aud missing -> %d", label, rc);
    tsr_jwt_reset(&jwt);
    pol.aud = NULL;
    pol.typ = "at+jwt";
    rc = jwt_verify(set, &pol, EXP_2011 - 10, tok, &jwt);
    CHECKF(rc == TSR_ERR_TOKEN_TYP, "%s: typ required -> %d (%s)", label, rc, tsr_err_text(rc));
    tsr_jwt_reset(&jwt);
    pol.typ = NULL;
    pol.require_kid = 1;
    rc = jwt_verify(set, &pol, EXP_2011 - 10, tok, &jwt);
    CHECKF(rc == TSR_ERR_TOKEN_KID, "%s: kid required -> %d (%s)", label, rc, tsr_err_text(rc));
    tsr_jwt_reset(&jwt);
}

/* ---- A.1 ---- */

static void a1_hs256_exact_and_verifies(void)
{
    tsr_jwk *k = import("A.1", a1_jwk, TSR_ALG_HS256);
    if (k == NULL)
        return;
    CHECK(tsr_jwk_alg(k) == TSR_ALG_HS256);
    CHECK(tsr_key_kty(tsr_jwk_key(k)) == TSR_KTY_OCT);

    /* The header and payload encodings are the RFC's. */
    char enc[256];
    size_t enclen = 0;
    CHECK(tsr_b64url_encode((const uint8_t *)a1_header, strlen(a1_header), enc, sizeof enc,
                            &enclen) == TSR_OK);
    CHECK(strcmp(enc, A1_HEADER_B64) == 0);
    CHECK(tsr_b64url_encode((const uint8_t *)payload_a, strlen(payload_a), enc, sizeof enc,
                            &enclen) == TSR_OK);
    CHECK(strcmp(enc, PAYLOAD_A_B64) == 0);

    check_sig_exact("A.1", k, A1_HEADER_B64 "." PAYLOAD_A_B64, A1_SIG);

    tsr_jwks *set = one_set(k);
    if (set != NULL) {
        check_jws("A.1", set, a1_compact, (const uint8_t *)payload_a, strlen(payload_a));
        check_jwt_2011("A.1", set, a1_compact, TSR_ALG_HS256);

        /* typ "JWT" in the header: accepted when typ is not checked, refused when
         * at+jwt is required, accepted when JWT is required (case-insensitive). */
        static uint8_t buf[TSR_JWT_MAX_BYTES];
        size_t plen = 0;
        tsr_err rc =
            jws_verify(set, 0, "at+jwt", a1_compact, strlen(a1_compact), buf, sizeof buf, &plen);
        CHECKF(rc == TSR_ERR_TOKEN_TYP, "A.1 typ at+jwt -> %d", rc);
        rc = jws_verify(set, 0, "jwt", a1_compact, strlen(a1_compact), buf, sizeof buf, &plen);
        CHECKF(rc == TSR_OK, "A.1 typ jwt -> %d", rc);
        rc = jws_verify(set, 1, NULL, a1_compact, strlen(a1_compact), buf, sizeof buf, &plen);
        CHECKF(rc == TSR_ERR_TOKEN_KID, "A.1 require_kid -> %d", rc);
    }
    tsr_jwks_free(set);

    /* Mutated twin: the same token under another secret of the same length. */
    const char *other = "{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-"
                        "1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAoA\"}";
    tsr_jwk *k2 = import("A.1 other", other, TSR_ALG_HS256);
    tsr_jwks *set2 = k2 ? one_set(k2) : NULL;
    if (set2 != NULL) {
        static uint8_t buf[TSR_JWT_MAX_BYTES];
        size_t plen = 0;
        tsr_err rc =
            jws_verify(set2, 0, NULL, a1_compact, strlen(a1_compact), buf, sizeof buf, &plen);
        CHECKF(rc == TSR_ERR_TOKEN_SIGNATURE, "A.1 under another key -> %d", rc);
    }
    tsr_jwks_free(set2);
    tsr_jwk_free(k2);

    /* decode_unverified reads the RFC's header and claims. */
    json_t *h = NULL, *c = NULL;
    tsr_err rc = tsr_jwt_decode_unverified(a1_compact, strlen(a1_compact), &h, &c);
    CHECKF(rc == TSR_OK, "A.1 decode_unverified -> %d", rc);
    if (rc == TSR_OK) {
        CHECK(strcmp(json_string_value(json_object_get(h, "typ")), "JWT") == 0);
        CHECK(strcmp(json_string_value(json_object_get(h, "alg")), "HS256") == 0);
        CHECK(strcmp(json_string_value(json_object_get(c, "iss")), "joe") == 0);
        CHECK(json_integer_value(json_object_get(c, "exp")) == EXP_2011);
    }
    json_decref(h);
    json_decref(c);
    tsr_jwk_free(k);
}

/* ---- A.2 ---- */

static void a2_rs256_exact_and_verifies(void)
{
    tsr_jwk *k = import("A.2", a2_jwk, TSR_ALG_RS256);
    tsr_jwk *pub = import("A.2 public", a2_jwk_public, TSR_ALG_RS256);
    if (k == NULL || pub == NULL)
        goto out;
    CHECK(tsr_key_bits(tsr_jwk_key(k)) == 2048);
    CHECK(tsr_key_has_private(tsr_jwk_key(k)));
    CHECK(!tsr_key_has_private(tsr_jwk_key(pub)));
    check_sig_exact("A.2", k, A2_HEADER_B64 "." PAYLOAD_A_B64, A2_SIG);

    tsr_jwks *set = one_set(pub);
    if (set != NULL) {
        check_jws("A.2", set, a2_compact, (const uint8_t *)payload_a, strlen(payload_a));
        check_jwt_2011("A.2", set, a2_compact, TSR_ALG_RS256);
    }
    tsr_jwks_free(set);

    /* The same key pinned to PS256 refuses the RS256 token (alg pinned by key). */
    tsr_jwk *ps = import("A.2 as PS256", a2_jwk_public, TSR_ALG_PS256);
    tsr_jwks *pset = ps ? one_set(ps) : NULL;
    if (pset != NULL) {
        static uint8_t buf[TSR_JWT_MAX_BYTES];
        size_t plen = 0;
        tsr_err rc =
            jws_verify(pset, 0, NULL, a2_compact, strlen(a2_compact), buf, sizeof buf, &plen);
        CHECKF(rc == TSR_ERR_TOKEN_ALG, "A.2 on PS256-pinned key -> %d (%s)", rc, tsr_err_text(rc));
    }
    tsr_jwks_free(pset);
    tsr_jwk_free(ps);
out:
    tsr_jwk_free(k);
    tsr_jwk_free(pub);
}

/* ---- A.3 ---- */

static void a3_es256_verifies(void)
{
    tsr_jwk *k = import("A.3", a3_jwk, TSR_ALG_INVALID); /* P-256 implies ES256 */
    if (k == NULL)
        return;
    CHECK(tsr_jwk_alg(k) == TSR_ALG_ES256);
    CHECK(tsr_key_curve(tsr_jwk_key(k)) == TSR_CURVE_P256);
    CHECK(tsr_key_sig_len(tsr_jwk_key(k)) == 64);
    tsr_jwks *set = one_set(k);
    if (set != NULL) {
        check_jws("A.3", set, a3_compact, (const uint8_t *)payload_a, strlen(payload_a));
        check_jwt_2011("A.3", set, a3_compact, TSR_ALG_ES256);

        /* Our own ES256 signature over the same signing input verifies too, and
         * differs from the RFC's (ECDSA is randomised). */
        uint8_t sig[TSR_SIG_MAX_BYTES];
        size_t siglen = 0;
        const char *si = A3_HEADER_B64 "." PAYLOAD_A_B64;
        CHECK(tsr_key_sign(tsr_jwk_key(k), (const uint8_t *)si, strlen(si), sig, sizeof sig,
                           &siglen) == TSR_OK);
        CHECK(siglen == 64);
        CHECK(tsr_key_verify(tsr_jwk_key(k), (const uint8_t *)si, strlen(si), sig, siglen) ==
              TSR_OK);
        char enc[128];
        size_t enclen = 0;
        CHECK(tsr_b64url_encode(sig, siglen, enc, sizeof enc, &enclen) == TSR_OK);
        CHECK(strcmp(enc, A3_SIG) != 0);

        /* The RFC's signature swapped to S||R is refused. */
        uint8_t rs[64], sr[64];
        size_t rslen = 0;
        CHECK(tsr_b64url_decode(A3_SIG, strlen(A3_SIG), rs, sizeof rs, &rslen) == TSR_OK);
        CHECK(rslen == 64);
        memcpy(sr, rs + 32, 32);
        memcpy(sr + 32, rs, 32);
        CHECK(tsr_key_verify(tsr_jwk_key(k), (const uint8_t *)si, strlen(si), rs, 64) == TSR_OK);
        CHECK(tsr_key_verify(tsr_jwk_key(k), (const uint8_t *)si, strlen(si), sr, 64) ==
              TSR_ERR_TOKEN_SIGNATURE);
    }
    tsr_jwks_free(set);
    tsr_jwk_free(k);
}

/* ---- A.4 ---- */

static void a4_es512_verifies(void)
{
    tsr_jwk *k = import("A.4", a4_jwk, TSR_ALG_ES512);
    if (k == NULL)
        return;
    CHECK(tsr_key_curve(tsr_jwk_key(k)) == TSR_CURVE_P521);
    CHECK(tsr_key_sig_len(tsr_jwk_key(k)) == 132);
    tsr_jwks *set = one_set(k);
    if (set != NULL) {
        check_jws("A.4", set, a4_compact, (const uint8_t *)"Payload", 7);
        /* The payload is not a JSON object: no JWT. */
        tsr_jwt_policy pol = policy_2011();
        pol.require_exp = 0;
        static tsr_jwt jwt;
        tsr_err rc = jwt_verify(set, &pol, EXP_2011, a4_compact, &jwt);
        CHECKF(rc == TSR_ERR_TOKEN_JSON || rc == TSR_ERR_TOKEN_MALFORMED,
               "A.4 payload \"Payload\" as JWT -> %d (%s)", rc, tsr_err_text(rc));
        tsr_jwt_reset(&jwt);
    }
    tsr_jwks_free(set);
    tsr_jwk_free(k);
}

/* ---- A.5 ---- */

static void a5_unsecured_never_verifies(void)
{
    tsr_jwk *keys[4] = {import("A.1", a1_jwk, TSR_ALG_HS256), import("A.2", a2_jwk, TSR_ALG_RS256),
                        import("A.3", a3_jwk, TSR_ALG_ES256), import("A.4", a4_jwk, TSR_ALG_ES512)};
    static uint8_t buf[TSR_JWT_MAX_BYTES];
    for (int i = 0; i < 4; i++) {
        if (keys[i] == NULL)
            continue;
        tsr_jwks *set = one_set(keys[i]);
        if (set == NULL)
            continue;
        size_t plen = 0;
        tsr_err rc =
            jws_verify(set, 0, NULL, a5_compact, strlen(a5_compact), buf, sizeof buf, &plen);
        CHECKF(rc == TSR_ERR_TOKEN_ALG, "A.5 against key %d -> %d (%s)", i, rc, tsr_err_text(rc));
        tsr_jwt_policy pol = policy_2011();
        static tsr_jwt jwt;
        rc = jwt_verify(set, &pol, EXP_2011 - 10, a5_compact, &jwt);
        CHECKF(rc == TSR_ERR_TOKEN_ALG, "A.5 as JWT against key %d -> %d (%s)", i, rc,
               tsr_err_text(rc));
        tsr_jwt_reset(&jwt);

        /* "none" with a real signature of the signing input attached. */
        uint8_t sig[TSR_SIG_MAX_BYTES];
        char enc[TSR_SIG_MAX_BYTES * 2];
        size_t siglen = 0, enclen = 0;
        const char *si = "eyJhbGciOiJub25lIn0." PAYLOAD_A_B64;
        if (tsr_key_sign(tsr_jwk_key(keys[i]), (const uint8_t *)si, strlen(si), sig, sizeof sig,
                         &siglen) == TSR_OK &&
            tsr_b64url_encode(sig, siglen, enc, sizeof enc, &enclen) == TSR_OK) {
            char tok[2048];
            int w = snprintf(tok, sizeof tok, "%s.%s", si, enc);
            CHECK(w > 0 && (size_t)w < sizeof tok);
            rc = jws_verify(set, 0, NULL, tok, strlen(tok), buf, sizeof buf, &plen);
            CHECKF(rc == TSR_ERR_TOKEN_ALG, "signed none against key %d -> %d", i, rc);
        }
        tsr_jwks_free(set);
    }
    /* decode_unverified may read it: it verifies nothing. */
    json_t *h = NULL, *c = NULL;
    if (tsr_jwt_decode_unverified(a5_compact, strlen(a5_compact), &h, &c) == TSR_OK)
        CHECK(strcmp(json_string_value(json_object_get(h, "alg")), "none") == 0);
    json_decref(h);
    json_decref(c);
    CHECK(tsr_alg_from_name("none", 4) == TSR_ALG_INVALID);
    for (int i = 0; i < 4; i++)
        tsr_jwk_free(keys[i]);
}

/* ---- the RFC algorithm names ---- */

static void alg_names_are_exact(void)
{
    static const struct {
        const char *name;
        tsr_alg alg;
    } names[] = {
        {"HS256", TSR_ALG_HS256}, {"HS384", TSR_ALG_HS384}, {"HS512", TSR_ALG_HS512},
        {"RS256", TSR_ALG_RS256}, {"RS384", TSR_ALG_RS384}, {"RS512", TSR_ALG_RS512},
        {"PS256", TSR_ALG_PS256}, {"PS384", TSR_ALG_PS384}, {"PS512", TSR_ALG_PS512},
        {"ES256", TSR_ALG_ES256}, {"ES384", TSR_ALG_ES384}, {"ES512", TSR_ALG_ES512},
        {"EdDSA", TSR_ALG_EDDSA},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECKF(tsr_alg_from_name(names[i].name, strlen(names[i].name)) == names[i].alg, "%s",
               names[i].name);
        CHECKF(tsr_alg_name(names[i].alg) != NULL &&
                   strcmp(tsr_alg_name(names[i].alg), names[i].name) == 0,
               "%s", names[i].name);
    }
    /* Case, prefixes, suffixes and embedded NUL are not names. */
    static const char *const bad[] = {"hs256",  "Hs256", "HS25",   "HS2566", "EDDSA",
                                      "eddsa",  "None",  "NONE",   "",       "ES256 ",
                                      " HS256", "RS1",   "ES256K", "Ed25519"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(tsr_alg_from_name(bad[i], strlen(bad[i])) == TSR_ALG_INVALID, "'%s'", bad[i]);
    CHECK(tsr_alg_from_name("HS256\0x", 7) == TSR_ALG_INVALID);
    CHECK(tsr_alg_from_name("HS256x", 5) == TSR_ALG_HS256); /* length-bounded */
    CHECK(tsr_alg_name(TSR_ALG_INVALID) == NULL);
}

int main(void)
{
    TSR_RUN(alg_names_are_exact);
    TSR_RUN(a1_hs256_exact_and_verifies);
    TSR_RUN(a2_rs256_exact_and_verifies);
    TSR_RUN(a3_es256_verifies);
    TSR_RUN(a4_es512_verifies);
    TSR_RUN(a5_unsecured_never_verifies);
    return tsr_test_summary();
}
