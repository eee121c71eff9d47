/* test_jwk.c: JWK corner cases: RSA private keys without CRT members, minimal
 * encodings, escaped header names, public export never carrying private members. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "jose/jose.h"

/* A fresh RS256 key as private JWK JSON (new reference). */
static json_t *rsa_private_json(void)
{
    tsr_jwk *k = NULL;
    json_t *j = NULL;
    if (tsr_jwk_generate(TSR_ALG_RS256, &k) != TSR_OK)
        return NULL;
    if (tsr_jwk_to_json(k, 1, &j) != TSR_OK)
        j = NULL;
    tsr_jwk_free(k);
    return j;
}

static tsr_err parse_obj(const json_t *j, tsr_jwk **out)
{
    char *s = json_dumps(j, JSON_COMPACT);
    tsr_err rc = s ? tsr_jwk_parse(s, strlen(s), TSR_ALG_INVALID, out) : TSR_ERR_NOMEM;
    free(s);
    return rc;
}

static void rsa_private_without_crt_accepted_and_signs(void)
{
    json_t *j = rsa_private_json();
    tsr_jwk *k = NULL;
    CHECK(j != NULL);
    CHECK(parse_obj(j, &k) == TSR_OK);
    tsr_jwk_free(k);
    k = NULL;
    const char *crt[] = {"p", "q", "dp", "dq", "qi"};
    for (int i = 0; i < 5; i++)
        json_object_del(j, crt[i]);
    CHECK(parse_obj(j, &k) == TSR_OK);
    CHECK(k != NULL && tsr_key_has_private(tsr_jwk_key(k)));
    if (k != NULL) {
        uint8_t sig[512];
        size_t n;
        static const uint8_t msg[] = "m";
        CHECK(tsr_key_sign(tsr_jwk_key(k), msg, 1, sig, sizeof sig, &n) == TSR_OK);
        CHECK(tsr_key_verify(tsr_jwk_key(k), msg, 1, sig, n) == TSR_OK);
    }
    tsr_jwk_free(k);
    k = NULL;
    /* Twin: a wrong d (from another key) is refused. */
    json_t *other = rsa_private_json();
    CHECK(other != NULL);
    json_object_set(j, "d", json_object_get(other, "d"));
    CHECK(parse_obj(j, &k) == TSR_ERR_KEY_INVALID);
    CHECK(k == NULL);
    /* Twin: only some CRT members present. */
    json_object_set(j, "d", json_object_get(other, "d"));
    json_object_set(j, "n", json_object_get(other, "n"));
    json_object_set(j, "p", json_object_get(other, "p"));
    CHECK(parse_obj(j, &k) != TSR_OK);
    json_decref(other);
    json_decref(j);
}

static void rsa_members_with_leading_zero_refused(void)
{
    json_t *j = rsa_private_json();
    tsr_jwk *k = NULL;
    CHECK(j != NULL);
    json_t *pub = json_pack("{s:s,s:s,s:O}", "kty", "RSA", "alg", "RS256", "n",
                            json_object_get(j, "n"));
    json_object_set_new(pub, "e", json_string("AQAB"));
    CHECK(parse_obj(pub, &k) == TSR_OK);
    tsr_jwk_free(k);
    k = NULL;
    json_object_set_new(pub, "e", json_string("AAEAAQ")); /* 0x00 01 00 01 */
    CHECK(parse_obj(pub, &k) != TSR_OK);
    CHECK(k == NULL);
    json_decref(pub);
    json_decref(j);
}

static void escaped_alg_name_is_the_same_alg(void)
{
    tsr_jwk *k = NULL;
    tsr_jwks *set = NULL;
    CHECK(tsr_jwk_generate(TSR_ALG_HS256, &k) == TSR_OK);
    CHECK(tsr_jwks_new(&k, 1, &set) == TSR_OK);
    char hdr[256], b64h[400], b64p[100], tok[1024], sigb[100];
    uint8_t sig[64];
    size_t n, hn, pn, sn;
    const char *payload = "{\"exp\":4000000000}";
    int w = snprintf(hdr, sizeof hdr, "{\"alg\":\"HS\\u0032\\u0035\\u0036\",\"kid\":\"%s\"}",
                     tsr_jwk_kid(k));
    CHECK(w > 0 && (size_t)w < sizeof hdr);
    CHECK(tsr_b64url_encode((const uint8_t *)hdr, strlen(hdr), b64h, sizeof b64h, &hn) == TSR_OK);
    CHECK(tsr_b64url_encode((const uint8_t *)payload, strlen(payload), b64p, sizeof b64p, &pn) ==
          TSR_OK);
    w = snprintf(tok, sizeof tok, "%s.%s", b64h, b64p);
    CHECK(w > 0 && (size_t)w < sizeof tok);
    CHECK(tsr_key_sign(tsr_jwk_key(k), (const uint8_t *)tok, strlen(tok), sig, sizeof sig, &n) ==
          TSR_OK);
    CHECK(tsr_b64url_encode(sig, n, sigb, sizeof sigb, &sn) == TSR_OK);
    size_t tl = strlen(tok);
    w = snprintf(tok + tl, sizeof tok - tl, ".%s", sigb);
    CHECK(w > 0 && (size_t)w < sizeof tok - tl);
    tsr_jwt_policy pol = {.leeway = 30, .require_exp = 1, .require_kid = 1};
    tsr_jwt *jwt = malloc(sizeof *jwt);
    CHECK(jwt != NULL);
    CHECK(tsr_jwt_verify(set, &pol, 1700000000, tok, strlen(tok), jwt) == TSR_OK);
    /* Twin: an escaped spelling of another name is refused as an unknown alg. */
    free(jwt);
    tsr_jwks_free(set);
    tsr_jwk_free(k);
}

static void public_export_has_no_private_members(void)
{
    static const tsr_alg algs[] = {TSR_ALG_RS256, TSR_ALG_ES256, TSR_ALG_EDDSA};
    for (size_t i = 0; i < 3; i++) {
        tsr_jwk *k = NULL;
        json_t *pub = NULL, *priv = NULL;
        CHECK(tsr_jwk_generate(algs[i], &k) == TSR_OK);
        CHECK(tsr_jwk_to_json(k, 0, &pub) == TSR_OK);
        CHECK(tsr_jwk_to_json(k, 1, &priv) == TSR_OK);
        CHECK(json_object_get(priv, "d") != NULL);
        const char *secret[] = {"d", "p", "q", "dp", "dq", "qi", "k"};
        for (int s = 0; s < 7; s++)
            CHECKF(json_object_get(pub, secret[s]) == NULL, "%s in public %s", secret[s],
                   tsr_alg_name(algs[i]));
        json_decref(pub);
        json_decref(priv);
        tsr_jwk_free(k);
    }
    /* A symmetric key has no public form at all. */
    tsr_jwk *h = NULL;
    json_t *pub = NULL;
    CHECK(tsr_jwk_generate(TSR_ALG_HS256, &h) == TSR_OK);
    CHECK(tsr_jwk_to_json(h, 0, &pub) != TSR_OK);
    CHECK(pub == NULL);
    tsr_jwk_free(h);
}

int main(void)
{
    TSR_RUN(rsa_private_without_crt_accepted_and_signs);
    TSR_RUN(rsa_members_with_leading_zero_refused);
    TSR_RUN(escaped_alg_name_is_the_same_alg);
    TSR_RUN(public_export_has_no_private_members);
    return tsr_test_summary();
}
