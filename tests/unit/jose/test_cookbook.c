/* test_cookbook.c: RFC 7520 (JOSE cookbook) and RFC 8037 known answers.
 *
 * JWK import of every key type with a component-exact re-export, RFC 7638
 * thumbprints, and the cookbook signatures: RS256, HS256 and EdDSA are
 * deterministic and compared byte for byte at the signature level (our signer
 * builds its own header); PS384 and ES512 are verified, and a mutated twin of
 * every accepted token is rejected. Vectors live in ../shared/vectors. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "jose/jose.h"

/* RFC 7638 section 3.1 example key and its thumbprint. */
#define RFC7638_N                                                                                  \
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"      \
    "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_"                              \
    "RN5w6Cf0h4QyQ5v-65YGjQR0_"                                                                    \
    "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbI"                         \
    "SD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-"            \
    "kEgU8awapJzKnqDKgw"
#define RFC7638_THUMBPRINT "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
/* RFC 8037 appendix A.3: thumbprint of the Ed25519 public key. */
#define RFC8037_THUMBPRINT "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
/* RFC 7638 thumbprints of the cookbook keys (computed independently with Python). */
#define TP_EC_P521 "dHri3SADZkrush5HU_50AoRhcKFryN-PI6jPBtPL55M"
#define TP_RSA "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
#define TP_OCT "RtoRur_1Dir5M4wuOfqNkDYOf9O_4RJ-aHkTA75RLA8"

#define COOKBOOK_KID "bilbo.baggins@hobbiton.example"

static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "k"};
static const char *const component_members[] = {"kty", "crv", "x",  "y",  "n",  "e", "d",
                                                "p",   "q",   "dp", "dq", "qi", "k"};

/* ---- helpers ---- */

static json_t *load_vector(const char *name)
{
    char rel[256];
    int w = snprintf(rel, sizeof rel, "jose-cookbook/%s", name);
    if (w < 0 || (size_t)w >= sizeof rel)
        return NULL;
    size_t len = 0;
    char *text = tsr_test_read_file(tsr_test_vector_path(rel), &len);
    CHECKF(text != NULL, "cannot read vector %s", name);
    if (text == NULL)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    CHECKF(j != NULL, "bad JSON in %s: %s", name, jerr.text);
    free(text);
    return j;
}

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Parses the text of a JWK file with a hint; NULL (and a failed CHECK) on error. */
static tsr_jwk *import_file(const char *name, tsr_alg hint)
{
    char rel[256];
    int w = snprintf(rel, sizeof rel, "jose-cookbook/%s", name);
    if (w < 0 || (size_t)w >= sizeof rel)
        return NULL;
    size_t len = 0;
    char *text = tsr_test_read_file(tsr_test_vector_path(rel), &len);
    CHECKF(text != NULL, "cannot read vector %s", name);
    if (text == NULL)
        return NULL;
    tsr_jwk *k = NULL;
    tsr_err rc = tsr_jwk_parse(text, len, hint, &k);
    CHECKF(rc == TSR_OK, "%s: tsr_jwk_parse -> %d (%s)", name, rc, tsr_err_text(rc));
    CHECKF(rc == TSR_OK || k == NULL, "%s: output not NULL after failure", name);
    free(text);
    return rc == TSR_OK ? k : NULL;
}

/* Parses a JWK given as a json_t after serialising it, so tsr_jwk_parse sees text. */
static tsr_err parse_obj(const json_t *obj, tsr_alg hint, tsr_jwk **out)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    if (text == NULL)
        return TSR_ERR_NOMEM;
    tsr_err rc = tsr_jwk_parse(text, strlen(text), hint, out);
    free(text);
    return rc;
}

/* Re-export with tsr_jwk_to_json and compare every component with the source JWK. */
static void check_roundtrip(const char *label, const json_t *orig, const tsr_jwk *k)
{
    json_t *full = NULL, *pub = NULL;
    tsr_err rc = tsr_jwk_to_json(k, 1, &full);
    CHECKF(rc == TSR_OK && full != NULL, "%s: to_json(private) -> %d", label, rc);
    rc = tsr_jwk_to_json(k, 0, &pub);
    CHECKF(rc == TSR_OK && pub != NULL, "%s: to_json(public) -> %d", label, rc);
    if (full == NULL || pub == NULL)
        goto out;

    for (size_t i = 0; i < sizeof component_members / sizeof component_members[0]; i++) {
        const char *m = component_members[i];
        const char *want = jstr(orig, m);
        const char *got = jstr(full, m);
        if (want != NULL)
            CHECKF(streq(got, want), "%s: member %s: got %s, want %s", label, m,
                   got ? got : "(absent)", want);
        else
            CHECKF(json_object_get(full, m) == NULL, "%s: member %s exported but not in source",
                   label, m);
    }
    CHECKF(streq(jstr(full, "kid"), jstr(orig, "kid")), "%s: kid %s", label,
           jstr(full, "kid") ? jstr(full, "kid") : "(absent)");
    CHECKF(streq(jstr(full, "alg"), tsr_alg_name(tsr_jwk_alg(k))), "%s: alg member", label);
    CHECKF(streq(jstr(full, "use"), "sig"), "%s: use member", label);

    /* The public form never carries private members, and keeps the public ones. */
    for (size_t i = 0; i < sizeof private_members / sizeof private_members[0]; i++)
        CHECKF(json_object_get(pub, private_members[i]) == NULL,
               "%s: public export carries private member %s", label, private_members[i]);
    const char *public_members[] = {"kty", "crv", "x", "y", "n", "e"};
    for (size_t i = 0; i < sizeof public_members / sizeof public_members[0]; i++) {
        const char *want = jstr(orig, public_members[i]);
        if (want != NULL)
            CHECKF(streq(jstr(pub, public_members[i]), want), "%s: public member %s", label,
                   public_members[i]);
    }

    /* The public export imports again, to the same thumbprint and kid. */
    {
        tsr_jwk *again = NULL;
        char tp1[TSR_THUMBPRINT_CHARS + 1], tp2[TSR_THUMBPRINT_CHARS + 1];
        rc = tsr_jwk_from_json(pub, TSR_ALG_INVALID, &again);
        CHECKF(rc == TSR_OK, "%s: re-import of public export -> %d (%s)", label, rc,
               tsr_err_text(rc));
        if (rc == TSR_OK) {
            CHECK(tsr_jwk_thumbprint(k, tp1) == TSR_OK);
            CHECK(tsr_jwk_thumbprint(again, tp2) == TSR_OK);
            CHECKF(strcmp(tp1, tp2) == 0, "%s: thumbprint changed on re-import", label);
            CHECKF(streq(tsr_jwk_kid(again), tsr_jwk_kid(k)), "%s: kid changed", label);
            CHECK(tsr_jwk_alg(again) == tsr_jwk_alg(k));
            CHECK(!tsr_key_has_private(tsr_jwk_key(again)));
        }
        tsr_jwk_free(again);
    }

    /* tsr_jwk_dump gives the same document as text. */
    {
        char *s = NULL;
        rc = tsr_jwk_dump(k, 1, &s);
        CHECKF(rc == TSR_OK && s != NULL, "%s: tsr_jwk_dump -> %d", label, rc);
        if (s != NULL) {
            json_t *back = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
            CHECKF(back != NULL && json_equal(back, full), "%s: dump differs from to_json", label);
            json_decref(back);
        }
        tsr_jwk_string_free(s);
    }
out:
    json_decref(full);
    json_decref(pub);
}

static void check_thumbprint(const char *label, const tsr_jwk *k, const char *want)
{
    char tp[TSR_THUMBPRINT_CHARS + 1];
    memset(tp, 0, sizeof tp);
    tsr_err rc = tsr_jwk_thumbprint(k, tp);
    CHECKF(rc == TSR_OK, "%s: thumbprint -> %d", label, rc);
    CHECKF(strcmp(tp, want) == 0, "%s: thumbprint %s, want %s", label, tp, want);
}

/* Signs si with the JWK's key and compares the base64url signature with want. */
static void check_signature(const char *label, const tsr_jwk *k, const char *si, const char *want)
{
    uint8_t sig[TSR_SIG_MAX_BYTES];
    char enc[TSR_SIG_MAX_BYTES * 2];
    size_t siglen = 0, enclen = 0;
    tsr_err rc =
        tsr_key_sign(tsr_jwk_key(k), (const uint8_t *)si, strlen(si), sig, sizeof sig, &siglen);
    CHECKF(rc == TSR_OK, "%s: tsr_key_sign -> %d (%s)", label, rc, tsr_err_text(rc));
    if (rc != TSR_OK)
        return;
    CHECKF(siglen == tsr_key_sig_len(tsr_jwk_key(k)), "%s: siglen %zu", label, siglen);
    rc = tsr_b64url_encode(sig, siglen, enc, sizeof enc, &enclen);
    CHECK(rc == TSR_OK);
    if (rc != TSR_OK)
        return;
    CHECKF(enclen == strlen(enc), "%s: encoded length", label);
    CHECKF(strcmp(enc, want) == 0, "%s: signature\n got  %s\n want %s", label, enc, want);
    /* And the raw key verifies it; one flipped bit does not. */
    CHECK(tsr_key_verify(tsr_jwk_key(k), (const uint8_t *)si, strlen(si), sig, siglen) == TSR_OK);
    sig[siglen / 2] ^= 0x10;
    CHECK(tsr_key_verify(tsr_jwk_key(k), (const uint8_t *)si, strlen(si), sig, siglen) ==
          TSR_ERR_TOKEN_SIGNATURE);
}

/* Verifies tok (copied to an exact-size heap buffer) against a one-key set. */
static tsr_err verify_one(const tsr_jwk *k, int require_kid, const char *tok, size_t len,
                          uint8_t *buf, size_t cap, size_t *plen)
{
    tsr_jwks *set = NULL;
    tsr_jwk *arr[1] = {(tsr_jwk *)k};
    const tsr_jwk *used = NULL;
    tsr_jws_opts opts = {.typ = NULL, .require_kid = require_kid};
    tsr_err rc = tsr_jwks_new(arr, 1, &set);
    CHECKF(rc == TSR_OK, "tsr_jwks_new -> %d", rc);
    if (rc != TSR_OK)
        return rc;
    char *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        tsr_jwks_free(set);
        return TSR_ERR_NOMEM;
    }
    memcpy(copy, tok, len);
    *plen = 0;
    rc = tsr_jws_verify(set, &opts, copy, len, buf, cap, plen, &used);
    if (rc == TSR_OK)
        CHECK(used != NULL && streq(tsr_jwk_kid(used), tsr_jwk_kid(k)));
    else
        CHECK(used == NULL);
    free(copy);
    tsr_jwks_free(set);
    return rc;
}

/* Verifies output.compact of a cookbook JWS, checks the payload, then mutated twins. */
static void check_compact(const char *label, const tsr_jwk *k, const char *compact,
                          const char *payload, int require_kid)
{
    static uint8_t buf[TSR_JWT_MAX_BYTES];
    size_t plen = 0, len = strlen(compact);
    tsr_err rc = verify_one(k, require_kid, compact, len, buf, sizeof buf, &plen);
    CHECKF(rc == TSR_OK, "%s: verify -> %d (%s)", label, rc, tsr_err_text(rc));
    if (rc == TSR_OK)
        CHECKF(plen == strlen(payload) && memcmp(buf, payload, plen) == 0, "%s: payload", label);

    const char *d1 = strchr(compact, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    CHECK(d1 != NULL && d2 != NULL);
    if (d1 == NULL || d2 == NULL)
        return;
    char *m = malloc(len + 1);
    if (m == NULL)
        return;
    /* A middle character of a part carries six data bits: any other letter is a
     * different, canonical encoding, so only the signature check can refuse it. */
    size_t where[3];
    where[0] = (size_t)(d1 - compact) / 2;
    where[1] = (size_t)(d1 - compact) + 1 + (size_t)(d2 - d1 - 1) / 2;
    where[2] = (size_t)(d2 - compact) + 1 + (len - (size_t)(d2 - compact) - 1) / 2;
    const char *names[3] = {"header", "payload", "signature"};
    for (int part = 0; part < 3; part++) {
        memcpy(m, compact, len + 1);
        m[where[part]] = (m[where[part]] == 'A') ? 'B' : 'A';
        rc = verify_one(k, require_kid, m, len, buf, sizeof buf, &plen);
        if (part == 0)
            CHECKF(rc != TSR_OK && tsr_err_is_token(rc), "%s: flipped %s accepted (%d)", label,
                   names[part], rc);
        else
            CHECKF(rc == TSR_ERR_TOKEN_SIGNATURE, "%s: flipped %s char -> %d (%s)", label,
                   names[part], rc, tsr_err_text(rc));
    }
    /* Signature of another message: the same token with payload and signature of
     * a sibling vector would need a second token; a dropped last char suffices. */
    rc = verify_one(k, require_kid, compact, len - 1, buf, sizeof buf, &plen);
    CHECKF(rc != TSR_OK && tsr_err_is_token(rc), "%s: truncated token -> %d", label, rc);
    free(m);
}

/* tsr_jws_sign with the cookbook key round-trips; when our header happens to be
 * the cookbook's protected header byte for byte, a deterministic algorithm must
 * then give the cookbook's compact output exactly. */
static void check_own_sign(const char *label, const tsr_jwk *k, const char *payload,
                           const char *protected_b64u, const char *compact, int deterministic)
{
    static uint8_t buf[TSR_JWT_MAX_BYTES];
    char *tok = NULL;
    size_t toklen = 0, plen = 0;
    tsr_err rc = tsr_jws_sign(k, NULL, (const uint8_t *)payload, strlen(payload), &tok, &toklen);
    CHECKF(rc == TSR_OK && tok != NULL, "%s: tsr_jws_sign -> %d (%s)", label, rc, tsr_err_text(rc));
    if (tok == NULL)
        return;
    CHECK(toklen == strlen(tok));
    rc = verify_one(k, 1, tok, toklen, buf, sizeof buf, &plen);
    CHECKF(rc == TSR_OK, "%s: own token verify -> %d (%s)", label, rc, tsr_err_text(rc));
    if (rc == TSR_OK)
        CHECK(plen == strlen(payload) && memcmp(buf, payload, plen) == 0);
    size_t hl = strlen(protected_b64u);
    if (deterministic && toklen > hl && memcmp(tok, protected_b64u, hl) == 0 && tok[hl] == '.')
        CHECKF(strcmp(tok, compact) == 0, "%s: same header, different compact output", label);

    /* The header it built is {"alg","kid"} (typ NULL: absent). */
    json_t *hdr = NULL, *claims = NULL;
    rc = tsr_jwt_decode_unverified(tok, toklen, &hdr, &claims);
    /* The payload here is prose, not JSON: decoding claims may fail; if it
     * succeeds, the header must still be the one described in jose.h. */
    if (rc == TSR_OK) {
        CHECK(streq(jstr(hdr, "alg"), tsr_alg_name(tsr_jwk_alg(k))));
        CHECK(streq(jstr(hdr, "kid"), tsr_jwk_kid(k)));
        CHECK(json_object_get(hdr, "typ") == NULL);
    }
    json_decref(hdr);
    json_decref(claims);
    free(tok);
}

/* ---- JWK import ---- */

static void imports_ec_public_p521(void)
{
    json_t *orig = load_vector("jwk_3_1.ec_public_key.json");
    tsr_jwk *k = import_file("jwk_3_1.ec_public_key.json", TSR_ALG_ES512);
    if (k != NULL && orig != NULL) {
        CHECK(streq(tsr_jwk_kid(k), COOKBOOK_KID));
        CHECK(tsr_jwk_alg(k) == TSR_ALG_ES512);
        CHECK(tsr_key_kty(tsr_jwk_key(k)) == TSR_KTY_EC);
        CHECK(tsr_key_curve(tsr_jwk_key(k)) == TSR_CURVE_P521);
        CHECK(tsr_key_alg(tsr_jwk_key(k)) == TSR_ALG_ES512);
        CHECK(!tsr_key_has_private(tsr_jwk_key(k)));
        CHECK(tsr_key_sig_len(tsr_jwk_key(k)) == 132);
        check_roundtrip("jwk_3_1", orig, k);
        check_thumbprint("jwk_3_1", k, TP_EC_P521);
        /* A public key cannot sign. */
        uint8_t sig[TSR_SIG_MAX_BYTES];
        size_t siglen = 1;
        CHECK(tsr_key_sign(tsr_jwk_key(k), (const uint8_t *)"x", 1, sig, sizeof sig, &siglen) !=
              TSR_OK);
    }
    tsr_jwk_free(k);

    /* Without a hint the P-521 curve implies ES512. */
    if (orig != NULL) {
        tsr_jwk *k2 = NULL;
        tsr_err rc = parse_obj(orig, TSR_ALG_INVALID, &k2);
        CHECKF(rc == TSR_OK, "no hint -> %d", rc);
        if (rc == TSR_OK)
            CHECK(tsr_jwk_alg(k2) == TSR_ALG_ES512);
        tsr_jwk_free(k2);
    }

    /* Mutated twins: the hint conflicts with the curve; the point is off the curve;
     * the coordinate loses its leading zero byte (wrong length). */
    if (orig != NULL) {
        tsr_jwk *bad = NULL;
        tsr_err rc = parse_obj(orig, TSR_ALG_ES256, &bad);
        CHECKF(rc == TSR_ERR_INVALID && bad == NULL, "P-521 with ES256 hint -> %d", rc);
        tsr_jwk_free(bad);
        bad = NULL;
        rc = parse_obj(orig, TSR_ALG_RS256, &bad);
        CHECKF(rc == TSR_ERR_INVALID && bad == NULL, "EC with RS256 hint -> %d", rc);
        tsr_jwk_free(bad);
        bad = NULL;

        json_t *m = json_deep_copy(orig);
        char y[128];
        int w = snprintf(y, sizeof y, "%s", jstr(orig, "y"));
        CHECK(w > 0 && (size_t)w < sizeof y);
        y[40] = (y[40] == 'A') ? 'B' : 'A';
        json_object_set_new(m, "y", json_string(y));
        rc = parse_obj(m, TSR_ALG_ES512, &bad);
        CHECKF(rc != TSR_OK && bad == NULL, "off-curve P-521 point accepted");
        tsr_jwk_free(bad);
        bad = NULL;

        /* x without its leading zero: 65 bytes, not 66. "AHKZ" -> decoded 00 72 99 ...;
         * re-encode the tail by dropping the first byte. */
        uint8_t raw[80];
        size_t rawlen = 0;
        char enc[128];
        size_t enclen = 0;
        rc = tsr_b64url_decode(jstr(orig, "x"), strlen(jstr(orig, "x")), raw, sizeof raw, &rawlen);
        CHECK(rc == TSR_OK && rawlen == 66 && raw[0] == 0);
        if (rc == TSR_OK && rawlen == 66) {
            CHECK(tsr_b64url_encode(raw + 1, rawlen - 1, enc, sizeof enc, &enclen) == TSR_OK);
            json_object_set_new(m, "y", json_string(jstr(orig, "y")));
            json_object_set_new(m, "x", json_string(enc));
            rc = parse_obj(m, TSR_ALG_ES512, &bad);
            CHECKF(rc != TSR_OK && bad == NULL, "65-byte P-521 x accepted");
            tsr_jwk_free(bad);
            bad = NULL;
        }
        json_decref(m);
    }
    json_decref(orig);
}

static void imports_ec_private_p521(void)
{
    json_t *orig = load_vector("jwk_3_2.ec_private_key.json");
    tsr_jwk *k = import_file("jwk_3_2.ec_private_key.json", TSR_ALG_ES512);
    if (k != NULL && orig != NULL) {
        CHECK(streq(tsr_jwk_kid(k), COOKBOOK_KID));
        CHECK(tsr_key_kty(tsr_jwk_key(k)) == TSR_KTY_EC);
        CHECK(tsr_key_curve(tsr_jwk_key(k)) == TSR_CURVE_P521);
        CHECK(tsr_key_has_private(tsr_jwk_key(k)));
        /* d starts with a zero byte: the export must keep all 66 bytes. */
        check_roundtrip("jwk_3_2", orig, k);
        check_thumbprint("jwk_3_2 (private)", k, TP_EC_P521);
        /* It signs, and the public twin verifies. */
        tsr_jwk *pub = import_file("jwk_3_1.ec_public_key.json", TSR_ALG_ES512);
        uint8_t sig[TSR_SIG_MAX_BYTES];
        size_t siglen = 0;
        const uint8_t msg[] = "cookbook";
        tsr_err rc = tsr_key_sign(tsr_jwk_key(k), msg, sizeof msg - 1, sig, sizeof sig, &siglen);
        CHECK(rc == TSR_OK && siglen == 132);
        if (rc == TSR_OK && pub != NULL)
            CHECK(tsr_key_verify(tsr_jwk_key(pub), msg, sizeof msg - 1, sig, siglen) == TSR_OK);
        tsr_jwk_free(pub);
    }
    tsr_jwk_free(k);

    /* Mutated twin: d of a different scalar no longer matches the public point. */
    if (orig != NULL) {
        json_t *m = json_deep_copy(orig);
        char d[128];
        int w = snprintf(d, sizeof d, "%s", jstr(orig, "d"));
        CHECK(w > 0 && (size_t)w < sizeof d);
        d[30] = (d[30] == 'A') ? 'B' : 'A';
        json_object_set_new(m, "d", json_string(d));
        tsr_jwk *bad = NULL;
        tsr_err rc = parse_obj(m, TSR_ALG_ES512, &bad);
        CHECKF(rc != TSR_OK && bad == NULL, "EC private d not matching x,y accepted");
        tsr_jwk_free(bad);
        json_decref(m);
    }
    json_decref(orig);
}

static void imports_rsa_public(void)
{
    json_t *orig = load_vector("jwk_3_3.rsa_public_key.json");
    tsr_jwk *k = import_file("jwk_3_3.rsa_public_key.json", TSR_ALG_RS256);
    if (k != NULL && orig != NULL) {
        CHECK(streq(tsr_jwk_kid(k), COOKBOOK_KID));
        CHECK(tsr_jwk_alg(k) == TSR_ALG_RS256);
        CHECK(tsr_key_kty(tsr_jwk_key(k)) == TSR_KTY_RSA);
        CHECK(tsr_key_curve(tsr_jwk_key(k)) == TSR_CURVE_NONE);
        CHECK(!tsr_key_has_private(tsr_jwk_key(k)));
        CHECK(tsr_key_bits(tsr_jwk_key(k)) == 2048);
        CHECK(tsr_key_sig_len(tsr_jwk_key(k)) == 256);
        check_roundtrip("jwk_3_3", orig, k);
        check_thumbprint("jwk_3_3", k, TP_RSA);
    }
    tsr_jwk_free(k);

    if (orig != NULL) {
        /* An RSA key has no implied algorithm: no alg and no hint fails. */
        tsr_jwk *bad = NULL;
        tsr_err rc = parse_obj(orig, TSR_ALG_INVALID, &bad);
        CHECKF(rc == TSR_ERR_INVALID && bad == NULL, "RSA without alg -> %d", rc);
        tsr_jwk_free(bad);
        bad = NULL;
        rc = parse_obj(orig, TSR_ALG_ES256, &bad);
        CHECKF(rc == TSR_ERR_INVALID && bad == NULL, "RSA with ES256 hint -> %d", rc);
        tsr_jwk_free(bad);
        bad = NULL;
        rc = parse_obj(orig, TSR_ALG_HS256, &bad);
        CHECKF(rc == TSR_ERR_INVALID && bad == NULL, "RSA with HS256 hint -> %d", rc);
        tsr_jwk_free(bad);
        bad = NULL;

        /* A 1024-bit modulus is too weak. */
        uint8_t n[128];
        char enc[200];
        size_t enclen = 0;
        memset(n, 0xc3, sizeof n);
        n[sizeof n - 1] = 0x01;
        CHECK(tsr_b64url_encode(n, sizeof n, enc, sizeof enc, &enclen) == TSR_OK);
        json_t *m = json_deep_copy(orig);
        json_object_set_new(m, "n", json_string(enc));
        rc = parse_obj(m, TSR_ALG_RS256, &bad);
        CHECKF(rc == TSR_ERR_WEAK_KEY && bad == NULL, "1024-bit RSA -> %d (%s)", rc,
               tsr_err_text(rc));
        tsr_jwk_free(bad);
        bad = NULL;

        /* The same modulus with a leading zero byte is not a canonical Base64urlUInt
         * and must not be read as a 2056-bit key either way: either refused, or read
         * as the same 2048-bit key. */
        uint8_t raw[300];
        size_t rawlen = 0;
        const char *n64 = jstr(orig, "n");
        rc = tsr_b64url_decode(n64, strlen(n64), raw + 1, sizeof raw - 1, &rawlen);
        CHECK(rc == TSR_OK && rawlen == 256);
        raw[0] = 0;
        char enc2[400];
        CHECK(tsr_b64url_encode(raw, rawlen + 1, enc2, sizeof enc2, &enclen) == TSR_OK);
        json_object_set_new(m, "n", json_string(enc2));
        rc = parse_obj(m, TSR_ALG_RS256, &bad);
        if (rc == TSR_OK)
            CHECK(tsr_key_bits(tsr_jwk_key(bad)) == 2048);
        tsr_jwk_free(bad);
        json_decref(m);
    }
    json_decref(orig);
}

static void imports_rsa_private(void)
{
    json_t *orig = load_vector("jwk_3_4.rsa_private_key.json");
    tsr_jwk *k = import_file("jwk_3_4.rsa_private_key.json", TSR_ALG_RS256);
    if (k != NULL && orig != NULL) {
        CHECK(streq(tsr_jwk_kid(k), COOKBOOK_KID));
        CHECK(tsr_key_kty(tsr_jwk_key(k)) == TSR_KTY_RSA);
        CHECK(tsr_key_has_private(tsr_jwk_key(k)));
        CHECK(tsr_key_bits(tsr_jwk_key(k)) == 2048);
        check_roundtrip("jwk_3_4", orig, k);
        check_thumbprint("jwk_3_4 (private)", k, TP_RSA);
    }
    tsr_jwk_free(k);

    /* Mutated twins: p or d changed (no longer a consistent key); CRT members
     * partly missing. */
    if (orig != NULL) {
        const char *members[] = {"p", "d", "qi"};
        for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
            json_t *m = json_deep_copy(orig);
            char v[512];
            int w = snprintf(v, sizeof v, "%s", jstr(orig, members[i]));
            CHECK(w > 0 && (size_t)w < sizeof v);
            v[50] = (v[50] == 'A') ? 'B' : 'A';
            json_object_set_new(m, members[i], json_string(v));
            tsr_jwk *bad = NULL;
            tsr_err rc = parse_obj(m, TSR_ALG_RS256, &bad);
            CHECKF(rc != TSR_OK && bad == NULL, "RSA private key with altered %s accepted",
                   members[i]);
            tsr_jwk_free(bad);
            json_decref(m);
        }
        json_t *m = json_deep_copy(orig);
        json_object_del(m, "dq");
        tsr_jwk *bad = NULL;
        tsr_err rc = parse_obj(m, TSR_ALG_RS256, &bad);
        CHECKF(rc != TSR_OK && bad == NULL, "RSA key with only some CRT members accepted");
        tsr_jwk_free(bad);
        json_decref(m);
    }
    json_decref(orig);
}

static void imports_oct(void)
{
    json_t *orig = load_vector("jwk_3_5.symmetric_key_mac_computation.json");
    tsr_jwk *k = import_file("jwk_3_5.symmetric_key_mac_computation.json", TSR_ALG_HS256);
    if (k != NULL && orig != NULL) {
        CHECK(streq(tsr_jwk_kid(k), "018c0ae5-4d9b-471b-bfd6-eef314bc7037"));
        CHECK(tsr_jwk_alg(k) == TSR_ALG_HS256);
        CHECK(tsr_key_kty(tsr_jwk_key(k)) == TSR_KTY_OCT);
        CHECK(tsr_key_has_private(tsr_jwk_key(k)));
        CHECK(tsr_key_sig_len(tsr_jwk_key(k)) == 32);
        check_thumbprint("jwk_3_5", k, TP_OCT);

        json_t *full = NULL, *pub = NULL;
        CHECK(tsr_jwk_to_json(k, 1, &full) == TSR_OK);
        CHECK(streq(jstr(full, "k"), jstr(orig, "k")));
        CHECK(streq(jstr(full, "kty"), "oct"));
        CHECK(streq(jstr(full, "kid"), jstr(orig, "kid")));
        CHECK(streq(jstr(full, "alg"), "HS256"));
        /* The secret is a private member: absent from the public form (or the
         * public form is refused outright). */
        tsr_err rc = tsr_jwk_to_json(k, 0, &pub);
        if (rc == TSR_OK)
            CHECK(json_object_get(pub, "k") == NULL);
        else
            CHECK(pub == NULL);
        json_decref(full);
        json_decref(pub);
    }
    tsr_jwk_free(k);

    if (orig != NULL) {
        /* No hint: the alg member decides. A conflicting hint fails. */
        tsr_jwk *k2 = NULL;
        tsr_err rc = parse_obj(orig, TSR_ALG_INVALID, &k2);
        CHECK(rc == TSR_OK && k2 != NULL && tsr_jwk_alg(k2) == TSR_ALG_HS256);
        tsr_jwk_free(k2);
        tsr_jwk *bad = NULL;
        rc = parse_obj(orig, TSR_ALG_HS512, &bad);
        CHECKF(rc == TSR_ERR_INVALID && bad == NULL, "alg HS256 with HS512 hint -> %d", rc);
        tsr_jwk_free(bad);
        bad = NULL;
        rc = parse_obj(orig, TSR_ALG_ES256, &bad);
        CHECKF(rc == TSR_ERR_INVALID && bad == NULL, "oct with ES256 hint -> %d", rc);
        tsr_jwk_free(bad);
        bad = NULL;

        /* A 16-byte secret is shorter than SHA-256's output. */
        json_t *m = json_deep_copy(orig);
        json_object_set_new(m, "k", json_string("hJtXIZ2uSN5kbQfbtTNWbg"));
        rc = parse_obj(m, TSR_ALG_HS256, &bad);
        CHECKF(rc != TSR_OK && bad == NULL, "16-byte HS256 secret accepted");
        tsr_jwk_free(bad);
        bad = NULL;
        /* Padding in k is not strict base64url. */
        json_object_set_new(m, "k", json_string("hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg="));
        rc = parse_obj(m, TSR_ALG_HS256, &bad);
        CHECKF(rc != TSR_OK && bad == NULL, "padded k accepted");
        tsr_jwk_free(bad);
        bad = NULL;
        /* "alg":"none" is not an algorithm. */
        json_object_set_new(m, "k", json_string(jstr(orig, "k")));
        json_object_set_new(m, "alg", json_string("none"));
        rc = parse_obj(m, TSR_ALG_INVALID, &bad);
        CHECKF(rc != TSR_OK && bad == NULL, "alg none JWK accepted");
        tsr_jwk_free(bad);
        json_decref(m);
    }
    json_decref(orig);
}

static void imports_from_json_object(void)
{
    /* tsr_jwk_from_json and tsr_jwk_parse agree. */
    json_t *orig = load_vector("jwk_3_4.rsa_private_key.json");
    if (orig == NULL)
        return;
    tsr_jwk *a = NULL, *b = NULL;
    CHECK(tsr_jwk_from_json(orig, TSR_ALG_PS256, &a) == TSR_OK);
    CHECK(parse_obj(orig, TSR_ALG_PS256, &b) == TSR_OK);
    if (a != NULL && b != NULL) {
        char ta[TSR_THUMBPRINT_CHARS + 1], tb[TSR_THUMBPRINT_CHARS + 1];
        CHECK(tsr_jwk_thumbprint(a, ta) == TSR_OK);
        CHECK(tsr_jwk_thumbprint(b, tb) == TSR_OK);
        CHECK(strcmp(ta, tb) == 0);
        CHECK(tsr_jwk_alg(a) == TSR_ALG_PS256 && tsr_jwk_alg(b) == TSR_ALG_PS256);
        CHECK(tsr_key_sig_len(tsr_jwk_key(a)) == 256);
    }
    tsr_jwk_free(a);
    tsr_jwk_free(b);
    json_decref(orig);
}

/* ---- RFC 7638 ---- */

static void rfc7638_thumbprint_of_rsa_example(void)
{
    const char *with_kid = "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\","
                           "\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
    tsr_jwk *k = NULL;
    tsr_err rc = tsr_jwk_parse(with_kid, strlen(with_kid), TSR_ALG_INVALID, &k);
    CHECKF(rc == TSR_OK, "RFC 7638 key -> %d (%s)", rc, tsr_err_text(rc));
    if (k != NULL) {
        CHECK(streq(tsr_jwk_kid(k), "2011-04-29"));
        check_thumbprint("RFC 7638 3.1", k, RFC7638_THUMBPRINT);
    }
    tsr_jwk_free(k);

    /* Member order, whitespace and extra members do not change it; without a kid
     * the kid is the thumbprint. */
    const char *reordered =
        "{ \"e\" : \"AQAB\", \"use\":\"sig\", \"n\":\"" RFC7638_N "\", \"kty\":\"RSA\" }";
    k = NULL;
    rc = tsr_jwk_parse(reordered, strlen(reordered), TSR_ALG_RS256, &k);
    CHECKF(rc == TSR_OK, "reordered RFC 7638 key -> %d", rc);
    if (k != NULL) {
        check_thumbprint("RFC 7638 reordered", k, RFC7638_THUMBPRINT);
        CHECK(streq(tsr_jwk_kid(k), RFC7638_THUMBPRINT));
    }
    tsr_jwk_free(k);

    /* Mutated twin: one character of n changed gives another thumbprint. */
    char *mut = strdup(reordered);
    if (mut != NULL) {
        char *p = strstr(mut, "0vx7ag");
        CHECK(p != NULL);
        if (p != NULL)
            p[100] = (p[100] == 'A') ? 'B' : 'A';
        k = NULL;
        rc = tsr_jwk_parse(mut, strlen(mut), TSR_ALG_RS256, &k);
        if (rc == TSR_OK) {
            char tp[TSR_THUMBPRINT_CHARS + 1];
            CHECK(tsr_jwk_thumbprint(k, tp) == TSR_OK);
            CHECK(strcmp(tp, RFC7638_THUMBPRINT) != 0);
            CHECK(!streq(tsr_jwk_kid(k), RFC7638_THUMBPRINT));
        }
        tsr_jwk_free(k);
        free(mut);
    }

    /* Duplicate members in a JWK are refused (strict JSON). */
    const char *dup = "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\",\"e\":\"Aw\","
                      "\"alg\":\"RS256\"}";
    k = NULL;
    rc = tsr_jwk_parse(dup, strlen(dup), TSR_ALG_INVALID, &k);
    CHECKF(rc != TSR_OK && k == NULL, "JWK with duplicate e accepted");
    tsr_jwk_free(k);
}

/* ---- JWS (RFC 7520 section 4) ---- */

/* Loads a JWS vector and imports its input key with its input alg. */
static json_t *load_jws(const char *name, tsr_jwk **key)
{
    *key = NULL;
    json_t *v = load_vector(name);
    if (v == NULL)
        return NULL;
    json_t *input = json_object_get(v, "input");
    tsr_alg alg = tsr_alg_from_name(jstr(input, "alg"), strlen(jstr(input, "alg")));
    CHECKF(alg != TSR_ALG_INVALID, "%s: alg name", name);
    tsr_err rc = tsr_jwk_from_json(json_object_get(input, "key"), alg, key);
    CHECKF(rc == TSR_OK, "%s: key import -> %d (%s)", name, rc, tsr_err_text(rc));
    if (rc != TSR_OK) {
        json_decref(v);
        return NULL;
    }
    CHECK(tsr_jwk_alg(*key) == alg);
    return v;
}

static void run_jws_vector(const char *name, int deterministic)
{
    tsr_jwk *k = NULL;
    json_t *v = load_jws(name, &k);
    if (v == NULL)
        return;
    json_t *input = json_object_get(v, "input");
    json_t *signing = json_object_get(v, "signing");
    json_t *output = json_object_get(v, "output");
    const char *payload = jstr(input, "payload");
    const char *compact = jstr(output, "compact");
    const char *si = jstr(signing, "sig-input");
    CHECK(payload != NULL && compact != NULL && si != NULL);
    if (payload == NULL || compact == NULL || si == NULL)
        goto out;

    /* The signing input is the first two parts of output.compact. */
    {
        const char *last = strrchr(compact, '.');
        CHECK(last != NULL && (size_t)(last - compact) == strlen(si) &&
              memcmp(compact, si, strlen(si)) == 0);
    }
    if (deterministic)
        check_signature(name, k, si, jstr(signing, "sig"));
    check_compact(name, k, compact, payload, 1);
    check_compact(name, k, compact, payload, 0);
    check_own_sign(name, k, payload, jstr(signing, "protected_b64u"), compact, deterministic);

    /* The public half alone verifies too. */
    {
        json_t *pubj = NULL;
        tsr_jwk *pub = NULL;
        static uint8_t buf[TSR_JWT_MAX_BYTES];
        size_t plen = 0;
        if (tsr_key_kty(tsr_jwk_key(k)) != TSR_KTY_OCT) {
            CHECK(tsr_jwk_to_json(k, 0, &pubj) == TSR_OK);
            CHECK(tsr_jwk_from_json(pubj, tsr_jwk_alg(k), &pub) == TSR_OK);
            if (pub != NULL) {
                tsr_err rc = verify_one(pub, 1, compact, strlen(compact), buf, sizeof buf, &plen);
                CHECKF(rc == TSR_OK, "%s: public-only verify -> %d", name, rc);
            }
        }
        tsr_jwk_free(pub);
        json_decref(pubj);
    }
out:
    tsr_jwk_free(k);
    json_decref(v);
}

static void jws_rs256_exact_signature(void)
{
    run_jws_vector("jws_4_1.rsa_v15_signature.json", 1);
}

static void jws_ps384_verifies(void)
{
    run_jws_vector("jws_4_2.rsa-pss_signature.json", 0);
}

static void jws_es512_verifies(void)
{
    run_jws_vector("jws_4_3.ecdsa_signature.json", 0);
}

static void jws_hs256_exact_signature(void)
{
    run_jws_vector("jws_4_4.hmac-sha2_integrity_protection.json", 1);
}

/* The same RSA key pinned to another algorithm refuses the cookbook token. */
static void jws_key_pins_algorithm(void)
{
    tsr_jwk *rs = NULL, *ps = NULL;
    json_t *v1 = load_jws("jws_4_1.rsa_v15_signature.json", &rs);
    json_t *v2 = load_jws("jws_4_2.rsa-pss_signature.json", &ps);
    static uint8_t buf[TSR_JWT_MAX_BYTES];
    size_t plen = 0;
    if (v1 != NULL && v2 != NULL) {
        const char *c1 = jstr(json_object_get(v1, "output"), "compact");
        const char *c2 = jstr(json_object_get(v2, "output"), "compact");
        /* RS256 token against the PS384-pinned key, and the reverse. */
        tsr_err rc = verify_one(ps, 1, c1, strlen(c1), buf, sizeof buf, &plen);
        CHECKF(rc == TSR_ERR_TOKEN_ALG, "RS256 token on PS384 key -> %d (%s)", rc,
               tsr_err_text(rc));
        rc = verify_one(rs, 1, c2, strlen(c2), buf, sizeof buf, &plen);
        CHECKF(rc == TSR_ERR_TOKEN_ALG, "PS384 token on RS256 key -> %d (%s)", rc,
               tsr_err_text(rc));
    }
    tsr_jwk_free(rs);
    tsr_jwk_free(ps);
    json_decref(v1);
    json_decref(v2);
}

/* ---- RFC 8037 Ed25519 ---- */

static void eddsa_ed25519_exact_signature(void)
{
    json_t *v = load_vector("curve25519_jws.json");
    if (v == NULL)
        return;
    json_t *input = json_object_get(v, "input");
    json_t *signing = json_object_get(v, "signing");
    const char *payload = jstr(input, "payload");
    const char *compact = jstr(json_object_get(v, "output"), "compact");
    json_t *keyj = json_object_get(input, "key");
    tsr_jwk *k = NULL;
    /* No alg member and no hint: Ed25519 implies EdDSA. */
    tsr_err rc = tsr_jwk_from_json(keyj, TSR_ALG_INVALID, &k);
    CHECKF(rc == TSR_OK, "Ed25519 import -> %d (%s)", rc, tsr_err_text(rc));
    if (k == NULL)
        goto out;
    CHECK(tsr_jwk_alg(k) == TSR_ALG_EDDSA);
    CHECK(tsr_key_kty(tsr_jwk_key(k)) == TSR_KTY_OKP);
    CHECK(tsr_key_curve(tsr_jwk_key(k)) == TSR_CURVE_ED25519);
    CHECK(tsr_key_has_private(tsr_jwk_key(k)));
    CHECK(tsr_key_sig_len(tsr_jwk_key(k)) == 64);
    /* No kid in the JWK: the kid is the RFC 7638 thumbprint (RFC 8037 A.3). */
    check_thumbprint("RFC 8037 A.3", k, RFC8037_THUMBPRINT);
    CHECK(streq(tsr_jwk_kid(k), RFC8037_THUMBPRINT));

    {
        json_t *orig = json_deep_copy(keyj);
        json_object_set_new(orig, "kid", json_string(RFC8037_THUMBPRINT));
        check_roundtrip("curve25519", orig, k);
        json_decref(orig);
    }

    check_signature("curve25519", k, jstr(signing, "sig-input"), jstr(signing, "sig"));
    /* The compact header has no kid: fine with one key when kid is not required. */
    check_compact("curve25519", k, compact, payload, 0);
    {
        static uint8_t buf[TSR_JWT_MAX_BYTES];
        size_t plen = 0;
        rc = verify_one(k, 1, compact, strlen(compact), buf, sizeof buf, &plen);
        CHECKF(rc == TSR_ERR_TOKEN_KID, "kid-less token with require_kid -> %d (%s)", rc,
               tsr_err_text(rc));
    }
    check_own_sign("curve25519", k, payload, jstr(signing, "protected_b64u"), compact, 1);

    /* Mutated twins: a public x that does not match d; an ES256 hint. */
    {
        json_t *m = json_deep_copy(keyj);
        json_object_set_new(m, "x", json_string("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURA"));
        tsr_jwk *bad = NULL;
        rc = tsr_jwk_from_json(m, TSR_ALG_INVALID, &bad);
        CHECKF(rc != TSR_OK && bad == NULL, "Ed25519 d/x mismatch accepted");
        tsr_jwk_free(bad);
        bad = NULL;
        rc = tsr_jwk_from_json(keyj, TSR_ALG_ES256, &bad);
        CHECKF(rc == TSR_ERR_INVALID && bad == NULL, "Ed25519 with ES256 hint -> %d", rc);
        tsr_jwk_free(bad);
        bad = NULL;
        /* crv X25519 is a key-agreement curve, not a signature one. */
        json_object_set_new(m, "x", json_string(jstr(keyj, "x")));
        json_object_set_new(m, "crv", json_string("X25519"));
        rc = tsr_jwk_from_json(m, TSR_ALG_INVALID, &bad);
        CHECKF(rc != TSR_OK && bad == NULL, "OKP X25519 accepted as a signing key");
        tsr_jwk_free(bad);
        json_decref(m);
    }
out:
    tsr_jwk_free(k);
    json_decref(v);
}

int main(void)
{
    TSR_RUN(imports_ec_public_p521);
    TSR_RUN(imports_ec_private_p521);
    TSR_RUN(imports_rsa_public);
    TSR_RUN(imports_rsa_private);
    TSR_RUN(imports_oct);
    TSR_RUN(imports_from_json_object);
    TSR_RUN(rfc7638_thumbprint_of_rsa_example);
    TSR_RUN(jws_rs256_exact_signature);
    TSR_RUN(jws_ps384_verifies);
    TSR_RUN(jws_es512_verifies);
    TSR_RUN(jws_hs256_exact_signature);
    TSR_RUN(jws_key_pins_algorithm);
    TSR_RUN(eddsa_ed25519_exact_signature);
    return tsr_test_summary();
}
