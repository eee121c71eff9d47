/* test_wycheproof.c: every Wycheproof case of the JWS algorithms against tsr_key_verify.
 *
 * Each signature group's key is imported from its PEM and, where the file has one,
 * from its JWK too; every case runs against each imported key. "valid" must verify,
 * "invalid" must not, "acceptable" may go either way. HMAC adds the JWS policy:
 * a key shorter than the hash is refused and only full-length tags verify. Every
 * accepted signature has a twin with one flipped bit that must be rejected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto/crypto.h"
#include "harness.h"
#include "jose/jose.h"

typedef struct wp_counts {
    long total;       /* cases processed */
    long valid_ok;    /* "valid" and accepted */
    long invalid_rej; /* "invalid" and rejected */
    long acceptable;  /* "acceptable": either answer */
    long policy;      /* "valid" but refused by JWS policy (weak HMAC key, truncated tag) */
    long failed;      /* anything else: each one also failed a CHECKF */
} wp_counts;

typedef enum wp_expect { WP_VALID, WP_INVALID, WP_ACCEPTABLE } wp_expect;

#define WP_MAX_KEYS 2 /* PEM and JWK */

static json_t *load_vectors(const char *file, long long *declared)
{
    char rel[256];
    json_error_t jerr;
    *declared = -1;
    int w = snprintf(rel, sizeof rel, "wycheproof/%s", file);
    CHECKF(w > 0 && (size_t)w < sizeof rel, "%s: name too long", file);
    if (w <= 0 || (size_t)w >= sizeof rel)
        return NULL;
    json_t *root = json_load_file(tsr_test_vector_path(rel), 0, &jerr);
    CHECKF(root != NULL, "%s: cannot load: %s (line %d)", file, jerr.text, jerr.line);
    if (root == NULL)
        return NULL;
    json_t *nt = json_object_get(root, "numberOfTests");
    CHECKF(json_is_integer(nt), "%s: no numberOfTests", file);
    if (json_is_integer(nt))
        *declared = (long long)json_integer_value(nt);
    CHECKF(json_is_array(json_object_get(root, "testGroups")), "%s: no testGroups", file);
    return root;
}

static void print_counts(const char *file, const wp_counts *c, long long declared)
{
    printf("wycheproof %s: %ld cases: %ld valid accepted, %ld invalid rejected, "
           "%ld acceptable, %ld by policy",
           file, c->total, c->valid_ok, c->invalid_rej, c->acceptable, c->policy);
    if (c->failed != 0)
        printf(", %ld FAILED", c->failed);
    printf("\n");
    CHECKF(c->total == declared, "%s: processed %ld cases, file declares %lld", file, c->total,
           declared);
    CHECKF(c->total == c->valid_ok + c->invalid_rej + c->acceptable + c->policy + c->failed,
           "%s: buckets do not add up", file);
}

static int parse_expect(const char *file, int tcid, json_t *t, wp_expect *out)
{
    const char *r = json_string_value(json_object_get(t, "result"));
    if (r != NULL && strcmp(r, "valid") == 0)
        *out = WP_VALID;
    else if (r != NULL && strcmp(r, "invalid") == 0)
        *out = WP_INVALID;
    else if (r != NULL && strcmp(r, "acceptable") == 0)
        *out = WP_ACCEPTABLE;
    else {
        CHECKF(0, "%s tcId %d: unknown result \"%s\"", file, tcid, r ? r : "(none)");
        return 0;
    }
    return 1;
}

static int test_tcid(json_t *t)
{
    return (int)json_integer_value(json_object_get(t, "tcId"));
}

/* Hex member of a test as a heap buffer (free()); NULL (and a failed CHECK) if absent. */
static uint8_t *test_hex(const char *file, int tcid, json_t *t, const char *member, size_t *n)
{
    const char *hex = json_string_value(json_object_get(t, member));
    uint8_t *b = NULL;
    *n = 0;
    if (hex != NULL)
        b = tsr_test_unhex(hex, n);
    CHECKF(b != NULL, "%s tcId %d: member %s missing or not hex", file, tcid, member);
    return b;
}

/* 1 when every case of the group is "invalid" (a key that fails to import is fine then). */
static int group_all_invalid(json_t *tests)
{
    size_t i;
    json_t *t;
    json_array_foreach(tests, i, t)
    {
        const char *r = json_string_value(json_object_get(t, "result"));
        if (r == NULL || strcmp(r, "invalid") != 0)
            return 0;
    }
    return 1;
}

static int group_first_tcid(json_t *tests)
{
    json_t *t = json_array_get(tests, 0);
    return t ? test_tcid(t) : -1;
}

/* The mutated twin of an accepted (msg, sig): one flipped signature bit, and one
 * flipped message bit when there is a message; both must be rejected. */
static void check_twins(const char *file, int tcid, const char *kname, const tsr_key *k,
                        const uint8_t *msg, size_t n, const uint8_t *sig, size_t siglen)
{
    uint8_t *s2 = malloc(siglen ? siglen : 1);
    uint8_t *m2 = malloc(n ? n : 1);
    CHECK(s2 != NULL && m2 != NULL);
    if (s2 == NULL || m2 == NULL)
        goto out;
    if (siglen > 0) {
        size_t bit = ((size_t)tcid * 131u + 7u) % (siglen * 8);
        memcpy(s2, sig, siglen);
        s2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        tsr_err rc = tsr_key_verify(k, msg, n, s2, siglen);
        CHECKF(rc != TSR_OK, "%s tcId %d (%s key): signature with bit %zu flipped accepted", file,
               tcid, kname, bit);
    }
    if (n > 0) {
        size_t bit = ((size_t)tcid * 37u + 3u) % (n * 8);
        memcpy(m2, msg, n);
        m2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        tsr_err rc = tsr_key_verify(k, m2, n, sig, siglen);
        CHECKF(rc != TSR_OK, "%s tcId %d (%s key): message with bit %zu flipped accepted", file,
               tcid, kname, bit);
    }
out:
    free(s2);
    free(m2);
}

/* Runs one case against one key; returns 1 when the outcome meets the expectation. */
static int verify_case(const char *file, int tcid, const char *kname, const tsr_key *k,
                       wp_expect exp, const uint8_t *msg, size_t n, const uint8_t *sig,
                       size_t siglen)
{
    tsr_err rc = tsr_key_verify(k, msg, n, sig, siglen);
    if (rc != TSR_OK)
        CHECKF(rc == TSR_ERR_TOKEN_SIGNATURE,
               "%s tcId %d (%s key): rejected with %s, crypto.h promises TSR_ERR_TOKEN_SIGNATURE",
               file, tcid, kname, tsr_err_text(rc));
    switch (exp) {
    case WP_VALID:
        CHECKF(rc == TSR_OK, "%s tcId %d (%s key): valid signature rejected (%s)", file, tcid,
               kname, tsr_err_text(rc));
        if (rc != TSR_OK)
            return 0;
        check_twins(file, tcid, kname, k, msg, n, sig, siglen);
        return 1;
    case WP_INVALID:
        CHECKF(rc != TSR_OK, "%s tcId %d (%s key): invalid signature accepted", file, tcid, kname);
        return rc != TSR_OK;
    case WP_ACCEPTABLE:
        if (rc == TSR_OK)
            check_twins(file, tcid, kname, k, msg, n, sig, siglen);
        return 1;
    }
    return 0;
}

static void run_sig_group(const char *file, tsr_alg alg, json_t *group, wp_counts *c)
{
    json_t *tests = json_object_get(group, "tests");
    const char *pem = json_string_value(json_object_get(group, "publicKeyPem"));
    json_t *jwkobj = json_object_get(group, "publicKeyJwk");
    const tsr_key *keys[WP_MAX_KEYS] = {NULL};
    const char *names[WP_MAX_KEYS] = {NULL};
    size_t nkeys = 0;
    tsr_key *pemkey = NULL;
    tsr_jwk *jwk = NULL;
    size_t i;
    json_t *t;

    if (jwkobj == NULL)
        jwkobj = json_object_get(group, "keyJwk");
    CHECKF(json_is_array(tests), "%s: group without tests", file);
    if (!json_is_array(tests))
        return;
    int all_invalid = group_all_invalid(tests);
    int first = group_first_tcid(tests);

    CHECKF(pem != NULL, "%s: group of tcId %d has no publicKeyPem", file, first);
    if (pem != NULL) {
        tsr_err rc = tsr_key_from_pem(alg, pem, strlen(pem), &pemkey);
        if (rc != TSR_OK) {
            CHECKF(pemkey == NULL, "%s: failed PEM import left a key behind", file);
            CHECKF(all_invalid, "%s: group of tcId %d: PEM import failed (%s)", file, first,
                   tsr_err_text(rc));
            tsr_key_free(pemkey);
            pemkey = NULL;
        } else {
            CHECKF(tsr_key_alg(pemkey) == alg, "%s: group of tcId %d: PEM key has alg %d", file,
                   first, (int)tsr_key_alg(pemkey));
            keys[nkeys] = pemkey;
            names[nkeys] = "PEM";
            nkeys++;
        }
    }
    if (jwkobj != NULL) {
        tsr_err rc = tsr_jwk_from_json(jwkobj, alg, &jwk);
        if (rc != TSR_OK) {
            CHECKF(jwk == NULL, "%s: failed JWK import left a key behind", file);
            CHECKF(all_invalid, "%s: group of tcId %d: JWK import failed (%s)", file, first,
                   tsr_err_text(rc));
            tsr_jwk_free(jwk);
            jwk = NULL;
        } else {
            CHECKF(tsr_jwk_alg(jwk) == alg, "%s: group of tcId %d: JWK has alg %d", file, first,
                   (int)tsr_jwk_alg(jwk));
            keys[nkeys] = tsr_jwk_key(jwk);
            names[nkeys] = "JWK";
            nkeys++;
        }
    }

    json_array_foreach(tests, i, t)
    {
        int tcid = test_tcid(t);
        wp_expect exp;
        size_t n = 0, siglen = 0;
        int ok = 1;
        c->total++;
        if (!parse_expect(file, tcid, t, &exp)) {
            c->failed++;
            continue;
        }
        uint8_t *msg = test_hex(file, tcid, t, "msg", &n);
        uint8_t *sig = test_hex(file, tcid, t, "sig", &siglen);
        if (msg == NULL || sig == NULL)
            ok = 0;
        else if (nkeys == 0)
            ok = exp != WP_VALID; /* no key: everything is rejected */
        for (size_t k = 0; ok && k < nkeys; k++)
            ok = verify_case(file, tcid, names[k], keys[k], exp, msg, n, sig, siglen);
        if (!ok)
            c->failed++;
        else if (exp == WP_VALID)
            c->valid_ok++;
        else if (exp == WP_INVALID)
            c->invalid_rej++;
        else
            c->acceptable++;
        free(msg);
        free(sig);
    }
    tsr_key_free(pemkey);
    tsr_jwk_free(jwk);
}

static void run_sig_file(const char *file, tsr_alg alg)
{
    wp_counts c = {0};
    long long declared;
    json_t *root = load_vectors(file, &declared);
    size_t i;
    json_t *group;
    if (root == NULL)
        return;
    json_array_foreach(json_object_get(root, "testGroups"), i, group)
    {
        run_sig_group(file, alg, group, &c);
    }
    print_counts(file, &c, declared);
    json_decref(root);
}

/* One HMAC case of a group with key_bits and tag_bits; counts it in *c. */
static void run_hmac_case(const char *file, tsr_alg alg, size_t hashlen, json_int_t key_bits,
                          json_int_t tag_bits, json_t *t, wp_counts *c)
{
    int tcid = test_tcid(t);
    wp_expect exp;
    size_t keylen = 0, n = 0, taglen = 0;
    tsr_key *k = NULL;
    uint8_t *key = NULL, *msg = NULL, *tag = NULL;
    uint8_t mac[TSR_SIG_MAX_BYTES];
    size_t maclen = 0;
    int ok = 0, by_policy = 0;
    tsr_key_parts parts = {.kty = TSR_KTY_OCT};
    tsr_err rc;

    c->total++;
    if (!parse_expect(file, tcid, t, &exp))
        goto out;
    key = test_hex(file, tcid, t, "key", &keylen);
    msg = test_hex(file, tcid, t, "msg", &n);
    tag = test_hex(file, tcid, t, "tag", &taglen);
    if (key == NULL || msg == NULL || tag == NULL)
        goto out;
    CHECKF((json_int_t)keylen * 8 == key_bits && (json_int_t)taglen * 8 == tag_bits,
           "%s tcId %d: key or tag length differs from the group's", file, tcid);

    parts.k = (tsr_bytes){key, keylen};
    rc = tsr_key_from_parts(alg, &parts, &k);
    if (keylen < hashlen) {
        /* JWS (RFC 7518 3.2): a key shorter than the hash output is refused. */
        CHECKF(rc == TSR_ERR_WEAK_KEY, "%s tcId %d: %zu-byte HMAC key gave %s, want %s", file, tcid,
               keylen, tsr_err_text(rc), tsr_err_text(TSR_ERR_WEAK_KEY));
        CHECKF(k == NULL, "%s tcId %d: refused key left behind", file, tcid);
        ok = rc == TSR_ERR_WEAK_KEY && k == NULL;
        by_policy = exp != WP_INVALID;
        goto out;
    }
    CHECKF(rc == TSR_OK, "%s tcId %d: %zu-byte HMAC key refused (%s)", file, tcid, keylen,
           tsr_err_text(rc));
    if (rc != TSR_OK)
        goto out;
    CHECKF(tsr_key_sig_len(k) == hashlen, "%s tcId %d: sig_len %zu, want %zu", file, tcid,
           tsr_key_sig_len(k), hashlen);

    /* Our own tag must match Wycheproof's (or its prefix, for a truncated one) when valid. */
    rc = tsr_key_sign(k, msg, n, mac, sizeof mac, &maclen);
    CHECKF(rc == TSR_OK && maclen == hashlen, "%s tcId %d: sign gave %s, %zu bytes", file, tcid,
           tsr_err_text(rc), maclen);
    if (exp == WP_VALID && rc == TSR_OK && maclen == hashlen && taglen <= hashlen)
        CHECKF(tsr_ct_eq(mac, tag, taglen), "%s tcId %d: computed tag differs", file, tcid);

    rc = tsr_key_verify(k, msg, n, tag, taglen);
    if (rc != TSR_OK)
        CHECKF(rc == TSR_ERR_TOKEN_SIGNATURE,
               "%s tcId %d: rejected with %s, crypto.h promises TSR_ERR_TOKEN_SIGNATURE", file,
               tcid, tsr_err_text(rc));
    if (taglen != hashlen) {
        /* JWS uses full-length tags only, whatever Wycheproof says. */
        CHECKF(rc != TSR_OK, "%s tcId %d: %zu-byte truncated tag accepted", file, tcid, taglen);
        ok = rc != TSR_OK;
        by_policy = exp != WP_INVALID;
    } else if (exp == WP_VALID) {
        CHECKF(rc == TSR_OK, "%s tcId %d: valid tag rejected (%s)", file, tcid, tsr_err_text(rc));
        ok = rc == TSR_OK;
        if (ok)
            check_twins(file, tcid, "oct", k, msg, n, tag, taglen);
    } else if (exp == WP_INVALID) {
        CHECKF(rc != TSR_OK, "%s tcId %d: invalid tag accepted", file, tcid);
        ok = rc != TSR_OK;
    } else {
        ok = 1;
    }
out:
    if (!ok)
        c->failed++;
    else if (by_policy)
        c->policy++;
    else if (exp == WP_VALID)
        c->valid_ok++;
    else if (exp == WP_INVALID)
        c->invalid_rej++;
    else
        c->acceptable++;
    tsr_key_free(k);
    free(key);
    free(msg);
    free(tag);
}

static void run_hmac_file(const char *file, tsr_alg alg, size_t hashlen)
{
    wp_counts c = {0};
    long long declared;
    json_t *root = load_vectors(file, &declared);
    size_t i, j;
    json_t *group, *t;
    if (root == NULL)
        return;
    json_array_foreach(json_object_get(root, "testGroups"), i, group)
    {
        json_int_t key_bits = json_integer_value(json_object_get(group, "keySize"));
        json_int_t tag_bits = json_integer_value(json_object_get(group, "tagSize"));
        json_t *tests = json_object_get(group, "tests");
        CHECKF(key_bits > 0 && tag_bits > 0 && json_is_array(tests),
               "%s: group %zu lacks keySize, tagSize or tests", file, i);
        json_array_foreach(tests, j, t)
        {
            run_hmac_case(file, alg, hashlen, key_bits, tag_bits, t, &c);
        }
    }
    print_counts(file, &c, declared);
    json_decref(root);
}

static void wycheproof_es256_p1363(void)
{
    run_sig_file("ecdsa_secp256r1_sha256_p1363_test.json", TSR_ALG_ES256);
}

static void wycheproof_es384_p1363(void)
{
    run_sig_file("ecdsa_secp384r1_sha384_p1363_test.json", TSR_ALG_ES384);
}

static void wycheproof_es512_p1363(void)
{
    run_sig_file("ecdsa_secp521r1_sha512_p1363_test.json", TSR_ALG_ES512);
}

static void wycheproof_eddsa_ed25519(void)
{
    run_sig_file("ed25519_test.json", TSR_ALG_EDDSA);
}

static void wycheproof_rs256_pkcs1(void)
{
    run_sig_file("rsa_signature_2048_sha256_test.json", TSR_ALG_RS256);
}

static void wycheproof_rs384_pkcs1(void)
{
    run_sig_file("rsa_signature_3072_sha384_test.json", TSR_ALG_RS384);
}

static void wycheproof_rs512_pkcs1(void)
{
    run_sig_file("rsa_signature_4096_sha512_test.json", TSR_ALG_RS512);
}

static void wycheproof_ps256_mgf1_salt32(void)
{
    run_sig_file("rsa_pss_2048_sha256_mgf1_32_test.json", TSR_ALG_PS256);
}

static void wycheproof_hmac_sha256(void)
{
    run_hmac_file("hmac_sha256_test.json", TSR_ALG_HS256, 32);
}

static void wycheproof_hmac_sha384(void)
{
    run_hmac_file("hmac_sha384_test.json", TSR_ALG_HS384, 48);
}

static void wycheproof_hmac_sha512(void)
{
    run_hmac_file("hmac_sha512_test.json", TSR_ALG_HS512, 64);
}

int main(void)
{
    TSR_RUN(wycheproof_es256_p1363);
    TSR_RUN(wycheproof_es384_p1363);
    TSR_RUN(wycheproof_es512_p1363);
    TSR_RUN(wycheproof_eddsa_ed25519);
    TSR_RUN(wycheproof_rs256_pkcs1);
    TSR_RUN(wycheproof_rs384_pkcs1);
    TSR_RUN(wycheproof_rs512_pkcs1);
    TSR_RUN(wycheproof_ps256_mgf1_salt32);
    TSR_RUN(wycheproof_hmac_sha256);
    TSR_RUN(wycheproof_hmac_sha384);
    TSR_RUN(wycheproof_hmac_sha512);
    return tsr_test_summary();
}
