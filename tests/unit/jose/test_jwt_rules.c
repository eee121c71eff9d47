/* test_jwt_rules.c: one test per verification rule of SPEC section 4.
 *
 * Good tokens come from tsr_jwt_sign; bad ones are forged by hand (header and
 * claims JSON written as text, base64url-encoded, and signed with the real key)
 * so that only the rule under test is broken. Each test first shows the accepted
 * twin, then the refused variants and the specific tsr_err jose.h documents.
 * Tokens are always passed in exact-size heap buffers so ASan sees over-reads. */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "jose/jose.h"

#define ISS "https://auth.example.test"
#define AUD "tessera"
#define NOW ((int64_t)1700000000)

static const tsr_alg all_algs[] = {
    TSR_ALG_HS256, TSR_ALG_HS384, TSR_ALG_HS512, TSR_ALG_RS256, TSR_ALG_RS384,
    TSR_ALG_RS512, TSR_ALG_PS256, TSR_ALG_PS384, TSR_ALG_PS512, TSR_ALG_ES256,
    TSR_ALG_ES384, TSR_ALG_ES512, TSR_ALG_EDDSA,
};
#define N_ALL_ALGS (sizeof all_algs / sizeof all_algs[0])

/* The keys of our set, generated once (RSA generation is slow). */
static const tsr_alg key_algs[] = {
    TSR_ALG_ES256, TSR_ALG_HS256, TSR_ALG_RS256, TSR_ALG_PS256, TSR_ALG_EDDSA,
    TSR_ALG_ES384, TSR_ALG_ES512, TSR_ALG_HS384, TSR_ALG_HS512,
};
#define N_KEYS (sizeof key_algs / sizeof key_algs[0])
static tsr_jwk *g_keys[N_KEYS];
static tsr_jwks *g_set;
static tsr_jwt_policy g_pol;

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#define EXPECT(want, expr, ...)                                                                    \
    do {                                                                                           \
        tsr_err got_ = (expr);                                                                     \
        tsr_err want_ = (want);                                                                    \
        CHECKF(got_ == want_, "got %d (%s), want %d (%s): %s", (int)got_, tsr_err_text(got_),      \
               (int)want_, tsr_err_text(want_), label_of(__VA_ARGS__));                            \
    } while (0)

#define EXPECT2(want1, want2, expr, ...)                                                           \
    do {                                                                                           \
        tsr_err got_ = (expr);                                                                     \
        CHECKF(got_ == (want1) || got_ == (want2), "got %d (%s), want %s or %s: %s", (int)got_,    \
               tsr_err_text(got_), tsr_err_text(want1), tsr_err_text(want2),                       \
               label_of(__VA_ARGS__));                                                             \
    } while (0)

#define EXPECT_REFUSED(expr, ...)                                                                  \
    do {                                                                                           \
        tsr_err got_ = (expr);                                                                     \
        CHECKF(got_ != TSR_OK && tsr_err_is_token(got_), "got %d (%s), want a token error: %s",    \
               (int)got_, tsr_err_text(got_), label_of(__VA_ARGS__));                              \
    } while (0)

/* ---- small string helpers ---- */

static char label_buf[512];

static const char *label_of(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *label_of(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int w = vsnprintf(label_buf, sizeof label_buf, f, ap);
    va_end(ap);
    if (w < 0)
        label_buf[0] = '\0';
    return label_buf;
}

/* Heap printf; aborts the process only on out-of-memory in the test itself. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        abort();
    va_start(ap, f);
    int w = vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    if (w != n)
        abort();
    return s;
}

/* a ‖ b ‖ c as a NUL-terminated heap string; *outlen excludes the NUL. */
static char *mem_cat(const char *a, size_t an, const char *b, size_t bn, const char *c, size_t cn,
                     size_t *outlen)
{
    char *s = malloc(an + bn + cn + 1);
    if (s == NULL)
        abort();
    memcpy(s, a, an);
    memcpy(s + an, b, bn);
    memcpy(s + an + bn, c, cn);
    s[an + bn + cn] = '\0';
    if (outlen != NULL)
        *outlen = an + bn + cn;
    return s;
}

/* Inserts ins at offset at of s. */
static char *insert_at(const char *s, size_t n, size_t at, const char *ins, size_t insn,
                       size_t *outlen)
{
    return mem_cat(s, at, ins, insn, s + at, n - at, outlen);
}

static char *b64enc(const void *p, size_t n)
{
    size_t cap = tsr_b64url_encoded_len(n) + 1, outlen = 0;
    char *s = malloc(cap);
    if (s == NULL)
        abort();
    tsr_err rc = tsr_b64url_encode((const uint8_t *)p, n, s, cap, &outlen);
    CHECKF(rc == TSR_OK, "tsr_b64url_encode(%zu bytes) -> %d", n, rc);
    if (rc != TSR_OK)
        s[0] = '\0';
    return s;
}

static uint8_t *b64dec(const char *s, size_t n, size_t *outlen)
{
    size_t cap = tsr_b64url_decoded_max(n) + 1;
    uint8_t *p = malloc(cap);
    if (p == NULL)
        abort();
    tsr_err rc = tsr_b64url_decode(s, n, p, cap, outlen);
    CHECKF(rc == TSR_OK, "tsr_b64url_decode -> %d", rc);
    if (rc != TSR_OK)
        *outlen = 0;
    return p;
}

static char *jdump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s == NULL)
        abort();
    return s;
}

/* "{" member "," rest-of-object: adds a member in front (a duplicate, say). */
static char *prepend_member(const char *obj, const char *member)
{
    return fmt("{%s,%s", member, obj + 1);
}

/* Positions of the two dots of a compact token; 0 if not exactly three parts. */
static int split3(const char *tok, size_t len, size_t *d1, size_t *d2)
{
    const char *a = memchr(tok, '.', len);
    if (a == NULL)
        return 0;
    const char *b = memchr(a + 1, '.', len - (size_t)(a + 1 - tok));
    if (b == NULL)
        return 0;
    *d1 = (size_t)(a - tok);
    *d2 = (size_t)(b - tok);
    return memchr(b + 1, '.', len - (size_t)(b + 1 - tok)) == NULL;
}

/* ---- keys, claims, forging ---- */

static int setup(void)
{
    if (g_set != NULL)
        return 1;
    for (size_t i = 0; i < N_KEYS; i++) {
        tsr_err rc = tsr_jwk_generate(key_algs[i], &g_keys[i]);
        CHECKF(rc == TSR_OK, "tsr_jwk_generate(%s) -> %d (%s)", tsr_alg_name(key_algs[i]), rc,
               tsr_err_text(rc));
        if (rc != TSR_OK)
            return 0;
    }
    tsr_err rc = tsr_jwks_new(g_keys, N_KEYS, &g_set);
    CHECKF(rc == TSR_OK, "tsr_jwks_new -> %d", rc);
    g_pol = tsr_jwt_policy_access(ISS, AUD);
    return rc == TSR_OK;
}

static void teardown(void)
{
    tsr_jwks_free(g_set);
    g_set = NULL;
    for (size_t i = 0; i < N_KEYS; i++) {
        tsr_jwk_free(g_keys[i]);
        g_keys[i] = NULL;
    }
}

static const tsr_jwk *key_for(tsr_alg alg)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (key_algs[i] == alg)
            return g_keys[i];
    return NULL;
}

static tsr_jwks *one_set(const tsr_jwk *k)
{
    tsr_jwks *set = NULL;
    tsr_jwk *arr[1] = {(tsr_jwk *)k};
    tsr_err rc = tsr_jwks_new(arr, 1, &set);
    CHECKF(rc == TSR_OK, "tsr_jwks_new(1) -> %d", rc);
    return set;
}

static json_t *claims_std(void)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:[s,s]}", "iss", ISS,
                          "sub", "user-42", "aud", AUD, "exp", (json_int_t)(NOW + 900), "iat",
                          (json_int_t)NOW, "nbf", (json_int_t)NOW, "jti", "jti-0001", "sid",
                          "sid-0001", "scope", "openid profile", "roles", "admin", "user");
    if (c == NULL)
        abort();
    return c;
}

/* Standard claims with one member replaced (v stolen) or, with v NULL, removed. */
static json_t *claims_with(const char *name, json_t *v)
{
    json_t *c = claims_std();
    if (v == NULL)
        json_object_del(c, name);
    else
        json_object_set_new(c, name, v);
    return c;
}

static json_t *hdr_std(const tsr_jwk *k)
{
    json_t *h = json_pack("{s:s, s:s, s:s}", "alg", tsr_alg_name(tsr_jwk_alg(k)), "typ", "at+jwt",
                          "kid", tsr_jwk_kid(k));
    if (h == NULL)
        abort();
    return h;
}

/* base64url of the signature by key over si[0..n). */
static char *sig64(const tsr_key *key, const char *si, size_t n)
{
    uint8_t sig[TSR_SIG_MAX_BYTES];
    size_t siglen = 0;
    tsr_err rc = tsr_key_sign(key, (const uint8_t *)si, n, sig, sizeof sig, &siglen);
    CHECKF(rc == TSR_OK, "tsr_key_sign -> %d (%s)", rc, tsr_err_text(rc));
    if (rc != TSR_OK)
        siglen = 0;
    return b64enc(sig, siglen);
}

/* h64 "." p64 "." signature-of-that, with explicit lengths (parts may hold NULs). */
static char *forge_b64n(const tsr_key *key, const char *h64, size_t hn, const char *p64, size_t pn,
                        size_t *len)
{
    size_t sin = 0;
    char *si = mem_cat(h64, hn, ".", 1, p64, pn, &sin);
    char *s = sig64(key, si, sin);
    char *tok = mem_cat(si, sin, ".", 1, s, strlen(s), len);
    free(si);
    free(s);
    return tok;
}

static char *forge_b64(const tsr_key *key, const char *h64, const char *p64, size_t *len)
{
    return forge_b64n(key, h64, strlen(h64), p64, strlen(p64), len);
}

/* Encodes header and claims text as given and signs them with key. */
static char *forge_str(const tsr_key *key, const char *hdr, const char *claims, size_t *len)
{
    char *h64 = b64enc(hdr, strlen(hdr));
    char *p64 = b64enc(claims, strlen(claims));
    char *tok = forge_b64(key, h64, p64, len);
    free(h64);
    free(p64);
    return tok;
}

static char *forge_json(const tsr_key *key, const json_t *h, const json_t *c, size_t *len)
{
    char *hs = jdump(h), *cs = jdump(c);
    char *tok = forge_str(key, hs, cs, len);
    free(hs);
    free(cs);
    return tok;
}

/* Standard header with one member set (v stolen) or removed (v NULL), std claims. */
static char *forge_hdr_with(const tsr_jwk *k, const char *name, json_t *v, size_t *len)
{
    json_t *h = hdr_std(k), *c = claims_std();
    if (v == NULL)
        json_object_del(h, name);
    else
        json_object_set_new(h, name, v);
    char *tok = forge_json(tsr_jwk_key(k), h, c, len);
    json_decref(h);
    json_decref(c);
    return tok;
}

static char *sign_claims(const tsr_jwk *k, const char *typ, const json_t *claims, size_t *len)
{
    char *tok = NULL;
    *len = 0;
    tsr_err rc = tsr_jwt_sign(k, typ, claims, &tok, len);
    CHECKF(rc == TSR_OK && tok != NULL, "tsr_jwt_sign(%s) -> %d (%s)", tsr_alg_name(tsr_jwk_alg(k)),
           rc, tsr_err_text(rc));
    if (tok == NULL)
        tok = fmt("%s", "");
    else
        CHECK(*len == strlen(tok));
    return tok;
}

/* ---- verification wrappers ---- */

static int claim_str_ok(const json_t *claims, const char *name, const char *got)
{
    const json_t *v = json_object_get(claims, name);
    if (v == NULL)
        return got == NULL;
    return got != NULL && json_is_string(v) && strcmp(json_string_value(v), got) == 0;
}

static int claim_int_ok(const json_t *claims, const char *name, int64_t got)
{
    const json_t *v = json_object_get(claims, name);
    if (v == NULL)
        return got == 0;
    return json_is_integer(v) && json_integer_value(v) == got;
}

static int zeroed_claims(const tsr_jwt *j)
{
    for (size_t i = 0; i < TSR_JWT_ROLES_MAX; i++)
        if (j->roles[i] != NULL)
            return 0;
    return j->iss == NULL && j->sub == NULL && j->sid == NULL && j->jti == NULL &&
           j->scope == NULL && j->nroles == 0 && j->exp == 0 && j->nbf == 0 && j->iat == 0 &&
           j->alg == TSR_ALG_INVALID && j->key == NULL && j->payload_len == 0;
}

/* tsr_jwt_verify on an exact-size copy; checks the output contract both ways: zeroed
 * on error; on success every field agrees with tsr_jwt_claims_json. The result is
 * left in *keep when given (its strings point into it), else in a heap struct so
 * ASan watches its buffers. */
static tsr_err vjwt_pol(const tsr_jwks *set, const tsr_jwt_policy *pol, int64_t now,
                        const char *tok, size_t len, tsr_jwt *keep /* OUT, may be NULL */)
{
    char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, tok, len);
    tsr_jwt *jwt = keep != NULL ? keep : malloc(sizeof *jwt);
    if (jwt == NULL)
        abort();
    memset(jwt, 0x5a, sizeof *jwt); /* outputs are zeroed on entry, per STYLE.md */
    tsr_err rc = tsr_jwt_verify(set, pol, now, copy, len, jwt);
    free(copy);
    if (rc != TSR_OK) {
        CHECKF(zeroed_claims(jwt), "tsr_jwt not zeroed after error %d (%s)", rc, tsr_err_text(rc));
        memset(jwt, 0, sizeof *jwt);
    } else {
        json_t *cj = NULL;
        tsr_err crc = tsr_jwt_claims_json(jwt, &cj);
        CHECKF(crc == TSR_OK && json_is_object(cj), "tsr_jwt_claims_json -> %d", crc);
        CHECK(jwt->key != NULL && jwt->alg == tsr_jwk_alg(jwt->key));
        CHECK(jwt->payload_len > 0 && jwt->payload_len < TSR_JWT_MAX_BYTES);
        CHECK(claim_str_ok(cj, "iss", jwt->iss));
        CHECK(claim_str_ok(cj, "sub", jwt->sub));
        CHECK(claim_str_ok(cj, "sid", jwt->sid));
        CHECK(claim_str_ok(cj, "jti", jwt->jti));
        CHECK(claim_str_ok(cj, "scope", jwt->scope));
        CHECK(claim_int_ok(cj, "exp", jwt->exp));
        CHECK(claim_int_ok(cj, "nbf", jwt->nbf));
        CHECK(claim_int_ok(cj, "iat", jwt->iat));
        const json_t *roles = json_object_get(cj, "roles");
        CHECK(jwt->nroles == json_array_size(roles) && jwt->nroles <= TSR_JWT_ROLES_MAX);
        for (size_t i = 0; i < jwt->nroles && i < json_array_size(roles); i++)
            CHECK(jwt->roles[i] != NULL &&
                  strcmp(jwt->roles[i], json_string_value(json_array_get(roles, i))) == 0);
        json_decref(cj);
    }
    if (keep == NULL) {
        tsr_jwt_reset(jwt);
        free(jwt);
    }
    return rc;
}

/* With our key set, the access-token policy and NOW. */
static tsr_err vjwt(const char *tok, size_t len)
{
    return vjwt_pol(g_set, &g_pol, NOW, tok, len, NULL);
}

static tsr_err vjws(const tsr_jwks *set, const char *typ, int require_kid, const char *tok,
                    size_t len)
{
    static uint8_t buf[TSR_JWT_MAX_BYTES];
    tsr_jws_opts opts = {.typ = typ, .require_kid = require_kid};
    const tsr_jwk *used = (const tsr_jwk *)&opts; /* must be overwritten */
    size_t plen = 12345;
    char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, tok, len);
    tsr_err rc = tsr_jws_verify(set, &opts, copy, len, buf, sizeof buf, &plen, &used);
    free(copy);
    if (rc == TSR_OK)
        CHECK(used != NULL && used != (const tsr_jwk *)&opts);
    else
        CHECKF(used == NULL && plen == 0, "jws outputs not zeroed after error %d", rc);
    return rc;
}

/* Signs modified claims with the ES256 key as at+jwt and verifies with pol at NOW. */
static tsr_err sign_verify_pol(json_t *claims /* stolen */, const tsr_jwt_policy *pol)
{
    size_t len = 0;
    char *tok = sign_claims(key_for(TSR_ALG_ES256), "at+jwt", claims, &len);
    tsr_err rc = vjwt_pol(g_set, pol, NOW, tok, len, NULL);
    free(tok);
    json_decref(claims);
    return rc;
}

static tsr_err sign_verify(json_t *claims /* stolen */)
{
    return sign_verify_pol(claims, &g_pol);
}

/* Forged token from raw header and claims text, signed by k, verified by default. */
static tsr_err forged_rc(const tsr_jwk *k, const char *hdr, const char *claims)
{
    size_t len = 0;
    char *tok = forge_str(tsr_jwk_key(k), hdr, claims, &len);
    tsr_err rc = vjwt(tok, len);
    free(tok);
    return rc;
}

/* ---- baseline ---- */

static void accepts_tokens_of_every_key(void)
{
    if (!setup())
        return;
    tsr_jwt_policy p = tsr_jwt_policy_access(ISS, AUD);
    CHECK(p.iss != NULL && strcmp(p.iss, ISS) == 0);
    CHECK(p.aud != NULL && strcmp(p.aud, AUD) == 0);
    CHECK(p.typ != NULL && strcmp(p.typ, "at+jwt") == 0);
    CHECK(p.leeway == 30 && p.require_exp && p.require_kid);

    json_t *c = claims_std();
    for (size_t i = 0; i < N_KEYS; i++) {
        const tsr_jwk *k = g_keys[i];
        const char *an = tsr_alg_name(key_algs[i]);
        size_t len = 0;
        char *tok = sign_claims(k, "at+jwt", c, &len);
        static tsr_jwt jwt;
        tsr_err vrc = vjwt_pol(g_set, &g_pol, NOW, tok, len, &jwt);
        EXPECT(TSR_OK, vrc, "signed %s", an);
        if (vrc == TSR_OK) {
            CHECK(jwt.alg == key_algs[i]);
            CHECK(jwt.key != NULL && strcmp(tsr_jwk_kid(jwt.key), tsr_jwk_kid(k)) == 0);
            CHECK(jwt.sub && strcmp(jwt.sub, "user-42") == 0);
            CHECK(jwt.sid && strcmp(jwt.sid, "sid-0001") == 0);
            CHECK(jwt.jti && strcmp(jwt.jti, "jti-0001") == 0);
            CHECK(jwt.scope && strcmp(jwt.scope, "openid profile") == 0);
            CHECK(jwt.iss && strcmp(jwt.iss, ISS) == 0);
            CHECK(jwt.exp == NOW + 900 && jwt.iat == NOW && jwt.nbf == NOW);
            CHECK(jwt.nroles == 2 && strcmp(jwt.roles[0], "admin") == 0 &&
                  strcmp(jwt.roles[1], "user") == 0);
            json_t *cj = NULL;
            CHECK(tsr_jwt_claims_json(&jwt, &cj) == TSR_OK && json_equal(cj, c));
            json_decref(cj);
        }
        tsr_jwt_reset(&jwt);
        CHECK(jwt.iss == NULL && jwt.sub == NULL && jwt.nroles == 0 && jwt.exp == 0);
        tsr_jwt_reset(&jwt); /* twice is harmless */

        /* The header is {"alg","typ":"at+jwt","kid"} (RFC 9068). */
        json_t *h = NULL, *cl = NULL;
        EXPECT(TSR_OK, tsr_jwt_decode_unverified(tok, len, &h, &cl), "decode %s", an);
        CHECK(json_object_size(h) == 3);
        CHECK(json_string_value(json_object_get(h, "alg")) &&
              strcmp(json_string_value(json_object_get(h, "alg")), an) == 0);
        CHECK(json_string_value(json_object_get(h, "typ")) &&
              strcmp(json_string_value(json_object_get(h, "typ")), "at+jwt") == 0);
        CHECK(json_string_value(json_object_get(h, "kid")) &&
              strcmp(json_string_value(json_object_get(h, "kid")), tsr_jwk_kid(k)) == 0);
        CHECK(json_equal(cl, c));
        json_decref(h);
        json_decref(cl);

        /* The token is strict base64url itself: three parts, no padding. */
        size_t d1 = 0, d2 = 0;
        CHECK(split3(tok, len, &d1, &d2));
        CHECK(strchr(tok, '=') == NULL && strchr(tok, '+') == NULL && strchr(tok, '/') == NULL);
        CHECK(len - d2 - 1 == tsr_b64url_encoded_len(tsr_key_sig_len(tsr_jwk_key(k))));
        free(tok);

        /* Our forging helper produces accepted tokens too (the twins below rely on it). */
        tok = forge_hdr_with(k, "typ", json_string("at+jwt"), &len);
        EXPECT(TSR_OK, vjwt(tok, len), "forged %s", an);
        free(tok);
    }
    json_decref(c);
}

/* ---- alg ---- */

static void rejects_alg_none(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256), *hs = key_for(TSR_ALG_HS256);
    const tsr_jwk *ks[2] = {es, hs};
    static const char *const nones[] = {"none", "None", "NONE", "nOnE"};
    char *claims = NULL;
    {
        json_t *c = claims_std();
        claims = jdump(c);
        json_decref(c);
    }
    char *p64 = b64enc(claims, strlen(claims));
    for (int i = 0; i < 2; i++) {
        char *good = fmt("{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
                         tsr_alg_name(tsr_jwk_alg(ks[i])), tsr_jwk_kid(ks[i]));
        EXPECT(TSR_OK, forged_rc(ks[i], good, claims), "twin %d", i);
        free(good);
        for (size_t j = 0; j < sizeof nones / sizeof nones[0]; j++) {
            char *h = fmt("{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", nones[j],
                          tsr_jwk_kid(ks[i]));
            char *h64 = b64enc(h, strlen(h));
            /* Empty signature. */
            size_t len = 0;
            char *tok = mem_cat(h64, strlen(h64), ".", 1, p64, strlen(p64), &len);
            char *tok2 = mem_cat(tok, len, ".", 1, "", 0, &len);
            EXPECT(TSR_ERR_TOKEN_ALG, vjwt(tok2, len), "alg %s, empty signature", nones[j]);
            EXPECT(TSR_ERR_TOKEN_ALG, vjws(g_set, NULL, 0, tok2, len), "jws alg %s", nones[j]);
            free(tok);
            free(tok2);
            /* A real signature by the key attached. */
            tok = forge_b64(tsr_jwk_key(ks[i]), h64, p64, &len);
            EXPECT(TSR_ERR_TOKEN_ALG, vjwt(tok, len), "alg %s, signed", nones[j]);
            free(tok);
            free(h64);
            free(h);
        }
    }
    /* Missing, empty, unknown and non-string alg. */
    static const char *const unknown[] = {"",    "ES257", "HS1",    "Ed25519",     "RSA-OAEP",
                                          "dir", "es256", "ES256 ", "ES256\\u0000"};
    for (size_t j = 0; j < sizeof unknown / sizeof unknown[0]; j++) {
        char *h =
            fmt("{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", unknown[j], tsr_jwk_kid(es));
        if (strstr(unknown[j], "\\u0000") != NULL)
            EXPECT_REFUSED(forged_rc(es, h, claims), "alg '%s'", unknown[j]);
        else
            EXPECT(TSR_ERR_TOKEN_ALG, forged_rc(es, h, claims), "alg '%s'", unknown[j]);
        free(h);
    }
    {
        size_t len = 0;
        char *tok = forge_hdr_with(es, "alg", NULL, &len);
        EXPECT(TSR_ERR_TOKEN_ALG, vjwt(tok, len), "alg missing");
        free(tok);
        json_t *bad[] = {json_null(), json_integer(256), json_pack("[s]", "ES256"),
                         json_pack("{s:s}", "name", "ES256"), json_true()};
        for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
            tok = forge_hdr_with(es, "alg", bad[j], &len);
            EXPECT_REFUSED(vjwt(tok, len), "alg of JSON type %d", (int)j);
            free(tok);
        }
    }
    /* No key can be made for "none". */
    tsr_jwk *nk = NULL;
    CHECK(tsr_jwk_generate(TSR_ALG_INVALID, &nk) != TSR_OK && nk == NULL);
    free(p64);
    free(claims);
}

static void rejects_alg_mismatch(void)
{
    if (!setup())
        return;
    /* Every key, every other algorithm in the header, signed by the key itself. */
    for (size_t i = 0; i < N_KEYS; i++) {
        const tsr_jwk *k = g_keys[i];
        for (size_t a = 0; a < N_ALL_ALGS; a++) {
            if (all_algs[a] == key_algs[i])
                continue;
            size_t len = 0;
            char *tok = forge_hdr_with(k, "alg", json_string(tsr_alg_name(all_algs[a])), &len);
            EXPECT(TSR_ERR_TOKEN_ALG, vjwt(tok, len), "%s header on %s key",
                   tsr_alg_name(all_algs[a]), tsr_alg_name(key_algs[i]));
            free(tok);
        }
    }

    /* HS256 header and MAC (by our real HS256 key) but the kid of the ES256 key. */
    const tsr_jwk *es = key_for(TSR_ALG_ES256), *hs = key_for(TSR_ALG_HS256);
    const tsr_jwk *rs = key_for(TSR_ALG_RS256);
    {
        json_t *h = hdr_std(hs), *c = claims_std();
        json_object_set_new(h, "kid", json_string(tsr_jwk_kid(es)));
        size_t len = 0;
        char *tok = forge_json(tsr_jwk_key(hs), h, c, &len);
        EXPECT(TSR_ERR_TOKEN_ALG, vjwt(tok, len), "HS256 MAC with the ES256 kid");
        free(tok);
        json_decref(h);
        json_decref(c);
    }

    /* The RS256 key's own private key, used for a genuine PS256 signature. */
    {
        char *pem = NULL;
        size_t pemlen = 0;
        tsr_key *ps = NULL;
        tsr_err rc = tsr_key_to_pem(tsr_jwk_key(rs), 1, &pem, &pemlen);
        CHECKF(rc == TSR_OK, "tsr_key_to_pem(private) -> %d", rc);
        if (rc == TSR_OK) {
            rc = tsr_key_from_pem(TSR_ALG_PS256, pem, pemlen, &ps);
            CHECKF(rc == TSR_OK, "tsr_key_from_pem(PS256) -> %d", rc);
        }
        if (ps != NULL) {
            json_t *h = hdr_std(rs), *c = claims_std();
            json_object_set_new(h, "alg", json_string("PS256"));
            size_t len = 0;
            char *tok = forge_json(ps, h, c, &len);
            EXPECT(TSR_ERR_TOKEN_ALG, vjwt(tok, len), "PSS signature by the RS256-pinned key");
            free(tok);
            /* Twin: the same PSS key is fine when its own JWK (pinned PS256) is in the set. */
            tsr_jwk *psj = NULL;
            CHECK(tsr_jwk_new(ps, "ps-twin", &psj) == TSR_OK);
            tsr_jwks *pset = psj ? one_set(psj) : NULL;
            if (pset != NULL) {
                json_object_set_new(h, "kid", json_string("ps-twin"));
                tok = forge_json(ps, h, c, &len);
                EXPECT(TSR_OK, vjwt_pol(pset, &g_pol, NOW, tok, len, NULL), "PS256 twin");
                free(tok);
            }
            tsr_jwks_free(pset);
            tsr_jwk_free(psj);
            json_decref(h);
            json_decref(c);
        }
        tsr_key_free(ps);
        tsr_key_pem_free(pem, pemlen);
    }

    /* The classic confusion: HMAC keyed with the public key's bytes (PEM or JWK). */
    const tsr_alg pubs[] = {TSR_ALG_RS256, TSR_ALG_PS256, TSR_ALG_ES256, TSR_ALG_EDDSA};
    const tsr_alg macs[] = {TSR_ALG_HS256, TSR_ALG_HS384, TSR_ALG_HS512};
    for (size_t i = 0; i < sizeof pubs / sizeof pubs[0]; i++) {
        const tsr_jwk *k = key_for(pubs[i]);
        char *pem = NULL, *jwk = NULL;
        size_t pemlen = 0;
        CHECK(tsr_key_to_pem(tsr_jwk_key(k), 0, &pem, &pemlen) == TSR_OK);
        CHECK(tsr_jwk_dump(k, 0, &jwk) == TSR_OK);
        const char *secrets[2] = {pem, jwk};
        size_t lens[2] = {pemlen, jwk ? strlen(jwk) : 0};
        for (int s = 0; s < 2; s++) {
            if (secrets[s] == NULL)
                continue;
            for (size_t m = 0; m < sizeof macs / sizeof macs[0]; m++) {
                tsr_key_parts parts;
                memset(&parts, 0, sizeof parts);
                parts.kty = TSR_KTY_OCT;
                parts.k.p = (const uint8_t *)secrets[s];
                parts.k.n = lens[s];
                tsr_key *mac = NULL;
                tsr_err rc = tsr_key_from_parts(macs[m], &parts, &mac);
                CHECKF(rc == TSR_OK, "HMAC key from %zu public bytes -> %d", lens[s], rc);
                if (mac == NULL)
                    continue;
                json_t *h = hdr_std(k), *c = claims_std();
                json_object_set_new(h, "alg", json_string(tsr_alg_name(macs[m])));
                size_t len = 0;
                char *tok = forge_json(mac, h, c, &len);
                EXPECT(TSR_ERR_TOKEN_ALG, vjwt(tok, len), "%s keyed with %s public %s",
                       tsr_alg_name(macs[m]), tsr_alg_name(pubs[i]), s == 0 ? "PEM" : "JWK");
                /* With require_kid off and only the public key in the set. */
                tsr_jwks *one = one_set(k);
                tsr_jwt_policy p = g_pol;
                p.require_kid = 0;
                EXPECT(TSR_ERR_TOKEN_ALG, vjwt_pol(one, &p, NOW, tok, len, NULL),
                       "%s confusion, one-key set", tsr_alg_name(macs[m]));
                tsr_jwks_free(one);
                free(tok);
                json_decref(h);
                json_decref(c);
                tsr_key_free(mac);
            }
        }
        tsr_key_pem_free(pem, pemlen);
        tsr_jwk_string_free(jwk);
    }
}

/* ---- kid ---- */

static void rejects_unknown_kid(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256);
    size_t len = 0;
    char *tok = forge_hdr_with(es, "kid", json_string(tsr_jwk_kid(es)), &len);
    EXPECT(TSR_OK, vjwt(tok, len), "twin");
    free(tok);

    /* A fresh key, not ours, with its own kid. */
    tsr_jwk *att = NULL;
    CHECK(tsr_jwk_generate(TSR_ALG_ES256, &att) == TSR_OK);
    if (att != NULL) {
        json_t *c = claims_std();
        tok = sign_claims(att, "at+jwt", c, &len);
        EXPECT(TSR_ERR_TOKEN_KID, vjwt(tok, len), "foreign key");
        free(tok);
        json_decref(c);
    }
    tsr_jwk_free(att);

    /* Near misses of our kid. */
    const char *kid = tsr_jwk_kid(es);
    size_t kl = strlen(kid);
    char *variants[6];
    size_t nv = 0;
    {
        char *v = fmt("%s", kid);
        for (size_t i = 0; i < kl; i++) {
            char ch = v[i];
            if (ch >= 'a' && ch <= 'z') {
                v[i] = (char)(ch - 'a' + 'A');
                break;
            }
            if (ch >= 'A' && ch <= 'Z') {
                v[i] = (char)(ch - 'A' + 'a');
                break;
            }
        }
        variants[nv++] = v;
    }
    variants[nv++] = fmt("%.*s", (int)(kl - 1), kid);
    variants[nv++] = fmt("%sx", kid);
    variants[nv++] = fmt("%s", "");
    variants[nv++] = fmt("%s%s%s%s", kid, kid, kid, kid); /* over TSR_KID_MAX */
    variants[nv++] = fmt(" %s", kid);
    for (size_t i = 0; i < nv; i++) {
        tok = forge_hdr_with(es, "kid", json_string(variants[i]), &len);
        EXPECT(TSR_ERR_TOKEN_KID, vjwt(tok, len), "kid '%s'", variants[i]);
        free(tok);
        free(variants[i]);
    }
    /* Non-string kids. */
    json_t *bad[] = {json_integer(1), json_null(), json_pack("[s]", kid), json_object()};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tok = forge_hdr_with(es, "kid", bad[i], &len);
        EXPECT_REFUSED(vjwt(tok, len), "kid of JSON type %zu", i);
        free(tok);
    }
}

static void rejects_missing_kid_when_required(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256);
    size_t len = 0;
    char *tok = forge_hdr_with(es, "kid", NULL, &len);
    tsr_jwks *one = one_set(es);
    tsr_jwt_policy p = g_pol;

    EXPECT(TSR_ERR_TOKEN_KID, vjwt(tok, len), "no kid, require_kid");
    EXPECT(TSR_ERR_TOKEN_KID, vjwt_pol(one, &g_pol, NOW, tok, len, NULL),
           "no kid, require_kid, one key");
    p.require_kid = 0;
    EXPECT(TSR_OK, vjwt_pol(one, &p, NOW, tok, len, NULL), "no kid allowed, one key (twin)");
    EXPECT(TSR_ERR_TOKEN_KID, vjwt_pol(g_set, &p, NOW, tok, len, NULL),
           "no kid allowed but several keys");
    EXPECT(TSR_OK, vjws(one, "at+jwt", 0, tok, len), "jws, one key, no kid (twin)");
    EXPECT(TSR_ERR_TOKEN_KID, vjws(one, "at+jwt", 1, tok, len), "jws require_kid");
    EXPECT(TSR_ERR_TOKEN_KID, vjws(g_set, "at+jwt", 0, tok, len), "jws several keys");
    free(tok);

    /* kid-less token of another algorithm against the one ES256 key: alg pinned. */
    tok = forge_hdr_with(key_for(TSR_ALG_HS256), "kid", NULL, &len);
    EXPECT(TSR_ERR_TOKEN_ALG, vjwt_pol(one, &p, NOW, tok, len, NULL), "kid-less HS256 on ES256");
    free(tok);
    tsr_jwks_free(one);
}

static void ignores_embedded_jwk_jku_x5u_x5c(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256);
    tsr_jwk *att = NULL;
    json_t *aj = NULL;
    CHECK(tsr_jwk_generate(TSR_ALG_ES256, &att) == TSR_OK);
    if (att == NULL)
        return;
    CHECK(tsr_jwk_to_json(att, 0, &aj) == TSR_OK);
    if (aj == NULL) {
        tsr_jwk_free(att);
        return;
    }
    const char *jku = "https://attacker.example/jwks.json";
    const char *x5u = "https://attacker.example/cert.pem";
    size_t len = 0;
    char *tok;
    json_t *c = claims_std();

    /* Twin: our key, with jku/x5u/x5c/x5t pointing elsewhere: they are ignored. */
    {
        json_t *h = hdr_std(es);
        json_object_set_new(h, "jku", json_string(jku));
        json_object_set_new(h, "x5u", json_string(x5u));
        json_object_set_new(h, "x5c", json_pack("[s]", "MIIBszCCAVmgAwIBAgIUQm9ndXM"));
        json_object_set_new(h, "x5t", json_string("Qm9ndXMgdGh1bWJwcmludA"));
        json_object_set_new(h, "x5t#S256", json_string("Qm9ndXMgdGh1bWJwcmludCBzaGEyNTY"));
        tok = forge_json(tsr_jwk_key(es), h, c, &len);
        EXPECT(TSR_OK, vjwt(tok, len), "our token with jku/x5u/x5c/x5t");
        free(tok);
        /* Same headers, signed by the attacker under our kid. */
        tok = forge_json(tsr_jwk_key(att), h, c, &len);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(tok, len), "attacker-signed, our kid, jku");
        free(tok);
        json_decref(h);
    }

    struct {
        const char *what;
        const char *kid; /* NULL: no kid */
        const char *member;
        json_t *value;
        tsr_err want;
    } cases[] = {
        {"embedded jwk, no kid", NULL, "jwk", json_deep_copy(aj), TSR_ERR_TOKEN_KID},
        {"embedded jwk, attacker kid", tsr_jwk_kid(att), "jwk", json_deep_copy(aj),
         TSR_ERR_TOKEN_KID},
        {"embedded jwk, our kid", tsr_jwk_kid(es), "jwk", json_deep_copy(aj),
         TSR_ERR_TOKEN_SIGNATURE},
        {"jku, attacker kid", tsr_jwk_kid(att), "jku", json_string(jku), TSR_ERR_TOKEN_KID},
        {"x5u, attacker kid", tsr_jwk_kid(att), "x5u", json_string(x5u), TSR_ERR_TOKEN_KID},
        {"x5c, attacker kid", tsr_jwk_kid(att), "x5c", json_pack("[s]", "MIIBszCCAVmgAwIBAgIU"),
         TSR_ERR_TOKEN_KID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *h = hdr_std(att);
        if (cases[i].kid == NULL)
            json_object_del(h, "kid");
        else
            json_object_set_new(h, "kid", json_string(cases[i].kid));
        json_object_set_new(h, cases[i].member, cases[i].value);
        tok = forge_json(tsr_jwk_key(att), h, c, &len);
        EXPECT(cases[i].want, vjwt(tok, len), "%s", cases[i].what);
        /* kid-less with one key in the set and require_kid off: still our key only. */
        if (cases[i].kid == NULL) {
            tsr_jwks *one = one_set(es);
            tsr_jwt_policy p = g_pol;
            p.require_kid = 0;
            EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt_pol(one, &p, NOW, tok, len, NULL),
                   "%s, one-key set", cases[i].what);
            tsr_jwks_free(one);
        }
        free(tok);
        json_decref(h);
    }
    json_decref(c);
    json_decref(aj);
    tsr_jwk_free(att);
}

/* ---- crit ---- */

static void rejects_crit(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256);
    size_t len = 0;
    char *tok = forge_hdr_with(es, "typ", json_string("at+jwt"), &len);
    EXPECT(TSR_OK, vjwt(tok, len), "twin without crit");
    free(tok);

    struct {
        const char *what;
        const char *extra; /* members added to the header */
        int exact;         /* 1: TSR_ERR_TOKEN_CRIT; 0: any token error */
    } cases[] = {
        {"crit [exp] with exp", "\"crit\":[\"exp\"],\"exp\":1700000900", 1},
        {"crit [b64] with b64 false", "\"crit\":[\"b64\"],\"b64\":false", 1},
        {"crit [b64] with b64 true", "\"crit\":[\"b64\"],\"b64\":true", 1},
        {"crit [http://example.invalid/ext]",
         "\"crit\":[\"http://example.invalid/ext\"],"
         "\"http://example.invalid/ext\":1",
         1},
        {"crit naming an absent member", "\"crit\":[\"nope\"]", 1},
        {"crit naming a registered member", "\"crit\":[\"kid\"]", 1},
        {"empty crit", "\"crit\":[]", 1},
        {"crit not an array", "\"crit\":\"exp\"", 0},
        {"crit null", "\"crit\":null", 0},
        {"crit with a non-string", "\"crit\":[1]", 0},
    };
    char *claims = NULL;
    {
        json_t *c = claims_std();
        claims = jdump(c);
        json_decref(c);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *h = fmt("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\",%s}", tsr_jwk_kid(es),
                      cases[i].extra);
        if (cases[i].exact) {
            EXPECT(TSR_ERR_TOKEN_CRIT, forged_rc(es, h, claims), "%s", cases[i].what);
            tok = forge_str(tsr_jwk_key(es), h, claims, &len);
            EXPECT(TSR_ERR_TOKEN_CRIT, vjws(g_set, NULL, 0, tok, len), "jws %s", cases[i].what);
            free(tok);
        } else {
            EXPECT_REFUSED(forged_rc(es, h, claims), "%s", cases[i].what);
        }
        free(h);
    }
    free(claims);
}

/* ---- time ---- */

static void exp_and_nbf_leeway_30s(void)
{
    if (!setup())
        return;
    EXPECT(TSR_OK, sign_verify(claims_std()), "standard claims");
    EXPECT(TSR_OK, sign_verify(claims_with("exp", json_integer(NOW - 29))), "exp now-29");
    EXPECT(TSR_ERR_TOKEN_EXPIRED, sign_verify(claims_with("exp", json_integer(NOW - 31))),
           "exp now-31");
    EXPECT(TSR_ERR_TOKEN_EXPIRED, sign_verify(claims_with("exp", json_integer(NOW - 86400))),
           "exp a day ago");
    EXPECT(TSR_OK, sign_verify(claims_with("nbf", json_integer(NOW + 29))), "nbf now+29");
    EXPECT(TSR_ERR_TOKEN_NOT_YET, sign_verify(claims_with("nbf", json_integer(NOW + 31))),
           "nbf now+31");
    EXPECT(TSR_OK, sign_verify(claims_with("iat", json_integer(NOW + 29))), "iat now+29");
    EXPECT(TSR_ERR_TOKEN_NOT_YET, sign_verify(claims_with("iat", json_integer(NOW + 31))),
           "iat now+31");
    EXPECT(TSR_OK, sign_verify(claims_with("nbf", NULL)), "no nbf");
    EXPECT(TSR_OK, sign_verify(claims_with("iat", NULL)), "no iat");
    EXPECT(TSR_ERR_TOKEN_CLAIMS, sign_verify(claims_with("exp", NULL)), "no exp, exp required");

    tsr_jwt_policy p = g_pol;
    p.require_exp = 0;
    EXPECT(TSR_OK, sign_verify_pol(claims_with("exp", NULL), &p), "no exp, exp optional");
    EXPECT(TSR_ERR_TOKEN_EXPIRED, sign_verify_pol(claims_with("exp", json_integer(NOW - 31)), &p),
           "exp optional but present and past");

    /* Leeway is the policy's: 0 and 120. */
    p = g_pol;
    p.leeway = 0;
    EXPECT(TSR_OK, sign_verify_pol(claims_with("exp", json_integer(NOW + 1)), &p), "leeway 0");
    EXPECT(TSR_ERR_TOKEN_EXPIRED, sign_verify_pol(claims_with("exp", json_integer(NOW - 1)), &p),
           "leeway 0, exp now-1");
    /* RFC 7519 4.1.4: "on or after" exp the token MUST NOT be accepted. */
    EXPECT(TSR_ERR_TOKEN_EXPIRED, sign_verify_pol(claims_with("exp", json_integer(NOW)), &p),
           "leeway 0, exp == now");
    /* RFC 7519 4.1.5: "before" nbf it MUST NOT be accepted; at nbf it is. */
    EXPECT(TSR_OK, sign_verify_pol(claims_with("nbf", json_integer(NOW)), &p),
           "leeway 0, nbf == now");
    EXPECT(TSR_ERR_TOKEN_NOT_YET, sign_verify_pol(claims_with("nbf", json_integer(NOW + 1)), &p),
           "leeway 0, nbf now+1");
    p.leeway = 120;
    EXPECT(TSR_OK, sign_verify_pol(claims_with("exp", json_integer(NOW - 100)), &p),
           "leeway 120, exp now-100");
    EXPECT(TSR_ERR_TOKEN_EXPIRED, sign_verify_pol(claims_with("exp", json_integer(NOW - 121)), &p),
           "leeway 120, exp now-121");
    EXPECT(TSR_OK, sign_verify_pol(claims_with("nbf", json_integer(NOW + 100)), &p),
           "leeway 120, nbf now+100");
}

/* Numeric dates at the ends of int64 must not overflow (UBSan aborts if they do). */
static void extreme_numeric_dates_do_not_overflow(void)
{
    if (!setup())
        return;
    EXPECT2(TSR_OK, TSR_ERR_TOKEN_CLAIMS, sign_verify(claims_with("exp", json_integer(INT64_MAX))),
            "exp INT64_MAX");
    EXPECT2(TSR_ERR_TOKEN_EXPIRED, TSR_ERR_TOKEN_CLAIMS,
            sign_verify(claims_with("exp", json_integer(INT64_MIN))), "exp INT64_MIN");
    EXPECT2(TSR_OK, TSR_ERR_TOKEN_CLAIMS, sign_verify(claims_with("nbf", json_integer(INT64_MIN))),
            "nbf INT64_MIN");
    EXPECT2(TSR_ERR_TOKEN_NOT_YET, TSR_ERR_TOKEN_CLAIMS,
            sign_verify(claims_with("nbf", json_integer(INT64_MAX))), "nbf INT64_MAX");
    EXPECT2(TSR_OK, TSR_ERR_TOKEN_CLAIMS, sign_verify(claims_with("iat", json_integer(INT64_MIN))),
            "iat INT64_MIN");
    EXPECT2(TSR_ERR_TOKEN_NOT_YET, TSR_ERR_TOKEN_CLAIMS,
            sign_verify(claims_with("iat", json_integer(INT64_MAX))), "iat INT64_MAX");

    /* An exp that does not fit in int64 is not silently wrapped. */
    const tsr_jwk *es = key_for(TSR_ALG_ES256);
    char *h = fmt("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", tsr_jwk_kid(es));
    const char *bigs[] = {"9223372036854775808", "18446744073709551616", "1e300", "-1e300"};
    for (size_t i = 0; i < sizeof bigs / sizeof bigs[0]; i++) {
        char *cl =
            fmt("{\"iss\":\"%s\",\"sub\":\"u\",\"aud\":\"%s\",\"exp\":%s}", ISS, AUD, bigs[i]);
        EXPECT_REFUSED(forged_rc(es, h, cl), "exp %s", bigs[i]);
        free(cl);
    }
    free(h);
}

/* ---- iss, aud, typ ---- */

static void rejects_wrong_iss(void)
{
    if (!setup())
        return;
    EXPECT(TSR_OK, sign_verify(claims_with("iss", json_string(ISS))), "twin");
    const char *bad[] = {"https://evil.example",     ISS "/", "HTTPS://AUTH.EXAMPLE.TEST",
                         "https://auth.example.tes", "",      " " ISS};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT(TSR_ERR_TOKEN_ISSUER, sign_verify(claims_with("iss", json_string(bad[i]))),
               "iss '%s'", bad[i]);
    EXPECT(TSR_ERR_TOKEN_ISSUER, sign_verify(claims_with("iss", NULL)), "iss missing");
    EXPECT2(TSR_ERR_TOKEN_ISSUER, TSR_ERR_TOKEN_CLAIMS,
            sign_verify(claims_with("iss", json_pack("[s]", ISS))), "iss as array");
    /* With no iss in the policy, any issuer passes. */
    tsr_jwt_policy p = g_pol;
    p.iss = NULL;
    EXPECT(TSR_OK, sign_verify_pol(claims_with("iss", json_string("https://other.example")), &p),
           "iss unchecked");
}

static void rejects_wrong_aud(void)
{
    if (!setup())
        return;
    EXPECT(TSR_OK, sign_verify(claims_with("aud", json_string(AUD))), "aud string twin");
    EXPECT(TSR_OK, sign_verify(claims_with("aud", json_pack("[s]", AUD))), "aud [ours]");
    EXPECT(TSR_OK, sign_verify(claims_with("aud", json_pack("[s,s]", "billing", AUD))),
           "aud [other, ours]");
    EXPECT(TSR_OK, sign_verify(claims_with("aud", json_pack("[s,s]", AUD, "billing"))),
           "aud [ours, other]");

    const char *bad[] = {"billing", "TESSERA", "tessera ", "tesser", "", "tessera,billing"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT(TSR_ERR_TOKEN_AUDIENCE, sign_verify(claims_with("aud", json_string(bad[i]))),
               "aud '%s'", bad[i]);
    EXPECT(TSR_ERR_TOKEN_AUDIENCE,
           sign_verify(claims_with("aud", json_pack("[s,s]", "billing", "TESSERA"))),
           "aud [billing, TESSERA]");
    EXPECT(TSR_ERR_TOKEN_AUDIENCE, sign_verify(claims_with("aud", json_array())), "aud []");
    EXPECT(TSR_ERR_TOKEN_AUDIENCE, sign_verify(claims_with("aud", NULL)), "aud missing");
    /* An array that holds ours but also a non-string is malformed. */
    EXPECT2(TSR_ERR_TOKEN_AUDIENCE, TSR_ERR_TOKEN_CLAIMS,
            sign_verify(claims_with("aud", json_pack("[s,i]", AUD, 7))), "aud [ours, 7]");
    EXPECT2(TSR_ERR_TOKEN_AUDIENCE, TSR_ERR_TOKEN_CLAIMS,
            sign_verify(claims_with("aud", json_pack("[[s]]", AUD))), "aud [[ours]]");
}

static void rejects_wrong_typ(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256);
    json_t *c = claims_std();
    const char *good[] = {"at+jwt", "application/at+jwt", "AT+JWT", "At+Jwt", "application/AT+JWT"};
    const char *bad[] = {"JWT",
                         "jwt",
                         "application/jwt",
                         "at+jwt2",
                         "xat+jwt",
                         " at+jwt",
                         "at+jwt ",
                         "application/",
                         "at",
                         "",
                         "application/application/at+jwt",
                         "at+jwt; charset=utf-8"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t len = 0;
        char *tok = sign_claims(es, good[i], c, &len);
        EXPECT(TSR_OK, vjwt(tok, len), "typ '%s'", good[i]);
        free(tok);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = 0;
        char *tok = sign_claims(es, bad[i], c, &len);
        EXPECT(TSR_ERR_TOKEN_TYP, vjwt(tok, len), "typ '%s'", bad[i]);
        free(tok);
    }
    size_t len = 0;
    char *tok = sign_claims(es, NULL, c, &len);
    EXPECT(TSR_ERR_TOKEN_TYP, vjwt(tok, len), "typ missing");
    /* Unchecked when the policy has none. */
    tsr_jwt_policy p = g_pol;
    p.typ = NULL;
    EXPECT(TSR_OK, vjwt_pol(g_set, &p, NOW, tok, len, NULL), "typ missing, unchecked");
    free(tok);
    json_t *nonstr[] = {json_integer(1), json_null(), json_pack("[s]", "at+jwt")};
    for (size_t i = 0; i < sizeof nonstr / sizeof nonstr[0]; i++) {
        tok = forge_hdr_with(es, "typ", nonstr[i], &len);
        EXPECT_REFUSED(vjwt(tok, len), "typ of JSON type %zu", i);
        free(tok);
    }
    json_decref(c);
}

/* ---- size ---- */

/* A valid HS256 token of exactly target bytes (header whitespace and a pad claim). */
static char *token_of_length(size_t target, size_t *len)
{
    const tsr_jwk *hs = key_for(TSR_ALG_HS256);
    json_t *c = claims_std();
    char *claims = jdump(c);
    json_decref(c);
    size_t siglen = tsr_b64url_encoded_len(tsr_key_sig_len(tsr_jwk_key(hs)));
    char *hbase = fmt("\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", tsr_jwk_kid(hs));
    /* claims become {"pad":"aaa…",<rest>: 9 bytes of framing plus the pad. */
    for (size_t sp = 0; sp < 3; sp++) {
        size_t hl = 1 + sp + strlen(hbase);
        for (size_t pad = 0; pad < target; pad++) {
            size_t pl = strlen(claims) + 9 + pad;
            size_t total = tsr_b64url_encoded_len(hl) + 1 + tsr_b64url_encoded_len(pl) + 1 + siglen;
            if (total > target)
                break;
            if (total != target)
                continue;
            char *padstr = malloc(pad + 1);
            if (padstr == NULL)
                abort();
            memset(padstr, 'a', pad);
            padstr[pad] = '\0';
            char *h = fmt("{%*s%s", (int)sp, "", hbase);
            char *member = fmt("\"pad\":\"%s\"", padstr);
            char *cl = prepend_member(claims, member);
            CHECK(strlen(h) == hl && strlen(cl) == pl);
            char *tok = forge_str(tsr_jwk_key(hs), h, cl, len);
            free(padstr);
            free(h);
            free(member);
            free(cl);
            free(claims);
            free(hbase);
            return tok;
        }
    }
    CHECKF(0, "no token of length %zu", target);
    free(claims);
    free(hbase);
    *len = 0;
    return fmt("%s", "");
}

static void rejects_token_over_8k(void)
{
    if (!setup())
        return;
    size_t len = 0;
    char *tok = token_of_length(TSR_JWT_MAX_BYTES, &len);
    CHECK(len == TSR_JWT_MAX_BYTES);
    EXPECT(TSR_OK, vjwt(tok, len), "token of exactly 8192 bytes");
    EXPECT(TSR_OK, vjws(g_set, "at+jwt", 1, tok, len), "jws of exactly 8192 bytes");
    free(tok);

    tok = token_of_length(TSR_JWT_MAX_BYTES + 1, &len);
    CHECK(len == TSR_JWT_MAX_BYTES + 1);
    EXPECT(TSR_ERR_TOKEN_TOO_LARGE, vjwt(tok, len), "token of 8193 bytes");
    EXPECT(TSR_ERR_TOKEN_TOO_LARGE, vjws(g_set, "at+jwt", 1, tok, len), "jws of 8193 bytes");
    json_t *h = NULL, *c = NULL;
    CHECK(tsr_jwt_decode_unverified(tok, len, &h, &c) != TSR_OK);
    CHECK(h == NULL && c == NULL);
    json_decref(h);
    json_decref(c);
    free(tok);

    /* Garbage over the cap is refused unread, whatever it holds. */
    size_t big = 1u << 20;
    char *junk = malloc(big);
    if (junk == NULL)
        abort();
    memset(junk, 'A', big);
    EXPECT(TSR_ERR_TOKEN_TOO_LARGE, vjwt(junk, TSR_JWT_MAX_BYTES + 1), "8193 x 'A'");
    EXPECT(TSR_ERR_TOKEN_TOO_LARGE, vjwt(junk, big), "1 MiB of 'A'");
    memset(junk, '.', big);
    EXPECT(TSR_ERR_TOKEN_TOO_LARGE, vjwt(junk, big), "1 MiB of '.'");
    free(junk);
}

/* ---- base64url ---- */

static void b64url_decoder_is_strict(void)
{
    uint8_t out[16];
    size_t n = 99;
    EXPECT(TSR_OK, tsr_b64url_decode("QQ", 2, out, sizeof out, &n), "QQ");
    CHECK(n == 1 && out[0] == 'A');
    EXPECT(TSR_OK, tsr_b64url_decode("-_8", 3, out, sizeof out, &n), "-_8");
    CHECK(n == 2 && out[0] == 0xfb && out[1] == 0xff);
    EXPECT(TSR_OK, tsr_b64url_decode("", 0, out, sizeof out, &n), "empty");
    CHECK(n == 0);
    /* "QUE" is "AA" with its two unused bits zero; "QUF"/"QUG" set them. */
    EXPECT(TSR_OK, tsr_b64url_decode("QUE", 3, out, sizeof out, &n), "QUE");
    CHECK(n == 2 && out[0] == 'A' && out[1] == 'A');
    const char *bad[] = {"QR",  "QQ=", "QQ==", "Q",      "QUFB=", "+/8", "QU FB", "QUFB\n",
                         "QUF", "QUG", "====", "QQ\r\n", ".QQ",   "QQ.", "Q-==",  "QUFBQ"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 99;
        EXPECT(TSR_ERR_INVALID, tsr_b64url_decode(bad[i], strlen(bad[i]), out, sizeof out, &n),
               "decode '%s'", bad[i]);
    }
    EXPECT(TSR_ERR_INVALID, tsr_b64url_decode("QQ\0A", 4, out, sizeof out, &n), "embedded NUL");
    EXPECT(TSR_ERR_INVALID,
           tsr_b64url_decode("QQ\x80"
                             "A",
                             4, out, sizeof out, &n),
           "byte 0x80");
    /* Output capacity is respected. */
    tsr_err rc = tsr_b64url_decode("QUFBQUFB", 8, out, 5, &n);
    CHECKF(rc == TSR_ERR_BUFFER || rc == TSR_ERR_INVALID, "short output -> %d", rc);

    /* Round trip of every length 0..64 over all byte values. */
    uint8_t src[64], back[64];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 37 + 255);
    for (size_t len = 0; len <= sizeof src; len++) {
        char enc[100];
        size_t el = 0, bl = 0;
        CHECK(tsr_b64url_encode(src, len, enc, sizeof enc, &el) == TSR_OK);
        CHECK(el == tsr_b64url_encoded_len(len) && el == strlen(enc));
        CHECK(strchr(enc, '=') == NULL);
        CHECK(tsr_b64url_decoded_max(el) >= len);
        CHECK(tsr_b64url_decode(enc, el, back, sizeof back, &bl) == TSR_OK);
        CHECK(bl == len && memcmp(src, back, len) == 0);
        /* The cap must hold the NUL too. */
        CHECK(tsr_b64url_encode(src, len, enc, el, &el) != TSR_OK);
    }
}

static int b64_index(char c)
{
    const char *p = c ? strchr(B64URL, c) : NULL;
    return p ? (int)(p - B64URL) : -1;
}

/* Sets an unused trailing bit of a canonical encoding: same bytes, other text.
 * Returns 0 when the length leaves no unused bits. */
static int make_noncanonical(char *s, size_t n)
{
    if (n % 4 == 0 || n % 4 == 1)
        return 0;
    int v = b64_index(s[n - 1]);
    if (v < 0 || (v & 1))
        return 0;
    s[n - 1] = B64URL[v | 1];
    return 1;
}

/* Claims text whose length mod 3 is want (so its encoding has unused bits). */
static char *claims_len_mod3(size_t want, const char *extra)
{
    for (int i = 0; i < 3; i++) {
        json_t *c = claims_std();
        char jti[8] = "j";
        for (int j = 0; j < i; j++)
            jti[1 + j] = 'x';
        jti[1 + i] = '\0';
        json_object_set_new(c, "jti", json_string(jti));
        if (extra != NULL)
            json_object_set_new(c, "x", json_string(extra));
        char *s = jdump(c);
        json_decref(c);
        if (strlen(s) % 3 == want)
            return s;
        free(s);
    }
    abort();
}

static char *hdr_len_mod3(const tsr_jwk *k, size_t want, const char *extra)
{
    for (int i = 0; i < 3; i++) {
        json_t *h = hdr_std(k);
        char v[8] = "v";
        for (int j = 0; j < i; j++)
            v[1 + j] = 'x';
        v[1 + i] = '\0';
        json_object_set_new(h, "ext", json_string(v));
        if (extra != NULL)
            json_object_set_new(h, "x", json_string(extra));
        char *s = jdump(h);
        json_decref(h);
        if (strlen(s) % 3 == want)
            return s;
        free(s);
    }
    abort();
}

static void rejects_b64_padding_and_stray_chars(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256);
    const tsr_key *key = tsr_jwk_key(es);
    /* "?>?>…" encodes to text holding both '-' and '_' at any alignment. */
    char *h = hdr_len_mod3(es, 1, "?>?>?>?>?>?>");
    char *c = claims_len_mod3(2, "?>?>?>?>?>?>");
    char *parts[2] = {b64enc(h, strlen(h)), b64enc(c, strlen(c))};
    size_t len = 0;
    char *tok = forge_b64(key, parts[0], parts[1], &len);
    EXPECT(TSR_OK, vjwt(tok, len), "twin");
    free(tok);

    static const char strays[] = {'=',  '+', '/', ' ',  '\n',   '\r',
                                  '\t', '*', '.', '\0', '\x80', '%'};
    for (int part = 0; part < 2; part++) {
        const char *pname = part == 0 ? "header" : "claims";
        size_t pl = strlen(parts[part]);
        /* Padding, re-signed so that only strictness is at stake. */
        for (int eq = 1; eq <= 2; eq++) {
            char *v = fmt("%s%.*s", parts[part], eq, "==");
            tok = part == 0 ? forge_b64(key, v, parts[1], &len) : forge_b64(key, parts[0], v, &len);
            EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(tok, len), "%s + %d '='", pname, eq);
            free(tok);
            free(v);
        }
        /* Stray characters in the middle and at both ends. */
        for (size_t s = 0; s < sizeof strays; s++) {
            size_t at[3] = {0, pl / 2, pl};
            for (int w = 0; w < 3; w++) {
                size_t vl = 0;
                char *v = insert_at(parts[part], pl, at[w], &strays[s], 1, &vl);
                tok = part == 0 ? forge_b64n(key, v, vl, parts[1], strlen(parts[1]), &len)
                                : forge_b64n(key, parts[0], strlen(parts[0]), v, vl, &len);
                EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(tok, len), "%s with 0x%02x at %zu", pname,
                       (unsigned)(unsigned char)strays[s], at[w]);
                free(tok);
                free(v);
            }
        }
        /* The standard alphabet for the same bytes ('-' -> '+', '_' -> '/'). */
        {
            char *v = fmt("%s", parts[part]);
            int changed = 0;
            for (char *p = v; *p; p++) {
                if (*p == '-') {
                    *p = '+';
                    changed = 1;
                } else if (*p == '_') {
                    *p = '/';
                    changed = 1;
                }
            }
            CHECK(changed);
            tok = part == 0 ? forge_b64(key, v, parts[1], &len) : forge_b64(key, parts[0], v, &len);
            EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(tok, len), "%s in standard base64", pname);
            free(tok);
            free(v);
        }
        /* Non-canonical trailing bits: the same bytes under another spelling. */
        {
            char *v = fmt("%s", parts[part]);
            CHECK(make_noncanonical(v, pl));
            tok = part == 0 ? forge_b64(key, v, parts[1], &len) : forge_b64(key, parts[0], v, &len);
            EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(tok, len), "%s with non-canonical last char",
                   pname);
            free(tok);
            free(v);
        }
        /* A length of 1 mod 4 is never base64url. */
        {
            int extra = (int)((5 - pl % 4) % 4);
            char *v = fmt("%s%.*s", parts[part], extra, "AAA");
            CHECK(strlen(v) % 4 == 1);
            tok = part == 0 ? forge_b64(key, v, parts[1], &len) : forge_b64(key, parts[0], v, &len);
            EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(tok, len), "%s of length 1 mod 4", pname);
            free(tok);
            free(v);
        }
    }

    /* The signature part of every key: padding, strays, non-canonical bits. */
    json_t *cj = claims_std();
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *an = tsr_alg_name(key_algs[i]);
        tok = sign_claims(g_keys[i], "at+jwt", cj, &len);
        EXPECT(TSR_OK, vjwt(tok, len), "%s twin", an);
        size_t d1 = 0, d2 = 0;
        CHECK(split3(tok, len, &d1, &d2));
        size_t sl = len - d2 - 1;
        for (int eq = 1; eq <= 2; eq++) {
            char *v = fmt("%s%.*s", tok, eq, "==");
            EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(v, len + (size_t)eq), "%s sig + %d '='", an, eq);
            free(v);
        }
        for (size_t s = 0; s < sizeof strays; s++) {
            size_t vl = 0;
            char *v = insert_at(tok, len, d2 + 1 + sl / 2, &strays[s], 1, &vl);
            EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(v, vl), "%s sig with 0x%02x", an,
                   (unsigned)(unsigned char)strays[s]);
            free(v);
            v = insert_at(tok, len, len, &strays[s], 1, &vl);
            if (strays[s] == '=')
                EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(v, vl), "%s sig + '='", an);
            else
                EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(v, vl), "%s trailing 0x%02x", an,
                       (unsigned)(unsigned char)strays[s]);
            free(v);
        }
        {
            char *v = fmt("%s", tok);
            if (make_noncanonical(v + d2 + 1, sl))
                EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(v, len), "%s sig non-canonical", an);
            else
                CHECKF(tsr_key_sig_len(tsr_jwk_key(g_keys[i])) % 3 == 0,
                       "%s: no unused bits expected only for lengths divisible by 3", an);
            free(v);
        }
        free(tok);
    }
    json_decref(cj);

    /* Standard-alphabet signature: find an ES256 signature holding '-' or '_'. */
    for (int tries = 0; tries < 64; tries++) {
        tok = forge_b64(key, parts[0], parts[1], &len);
        size_t d1 = 0, d2 = 0;
        CHECK(split3(tok, len, &d1, &d2));
        char *sig = tok + d2 + 1;
        if (strpbrk(sig, "-_") == NULL) {
            free(tok);
            continue;
        }
        for (char *p = sig; *p; p++)
            *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
        EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(tok, len), "signature in standard base64");
        free(tok);
        break;
    }

    /* Whole-token framing. */
    tok = forge_b64(key, parts[0], parts[1], &len);
    {
        size_t d1 = 0, d2 = 0;
        CHECK(split3(tok, len, &d1, &d2));
        size_t vl = 0;
        char *v;
        const struct {
            size_t at;
            const char *ins;
            const char *what;
        } frames[] = {
            {0, " ", "leading space"},
            {len, " ", "trailing space"},
            {len, "\n", "trailing newline"},
            {len, ".", "trailing dot"},
            {0, ".", "leading dot"},
            {d1, ".", "empty part after header"},
            {d2, ".", "empty part before sig"},
            {len, ".QQ", "fourth part"},
            {len, "\r\n", "trailing CRLF"},
            {0, "Bearer ", "Bearer prefix"},
        };
        for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
            v = insert_at(tok, len, frames[i].at, frames[i].ins, strlen(frames[i].ins), &vl);
            EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(v, vl), "%s", frames[i].what);
            free(v);
        }
        EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(tok, d2), "two parts");
        EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(tok, d1), "one part");
        EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt("..", 2), "three empty parts");
        EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt("", 0), "empty token");
        /* A NUL byte inside the length (C-string truncation must not be assumed). */
        v = insert_at(tok, len, len, "\0", 1, &vl);
        EXPECT(TSR_ERR_TOKEN_MALFORMED, vjwt(v, vl), "trailing NUL within len");
        free(v);
    }
    free(tok);
    free(parts[0]);
    free(parts[1]);
    free(h);
    free(c);
}

/* ---- strict JSON ---- */

static void rejects_duplicate_keys(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256);
    json_t *hj = hdr_std(es), *cj = claims_std();
    char *h = jdump(hj), *c = jdump(cj);
    json_decref(hj);
    json_decref(cj);
    EXPECT(TSR_OK, forged_rc(es, h, c), "twin");

    char *kidm = fmt("\"kid\":\"%s\"", tsr_jwk_kid(es));
    const char *hdups[] = {"\"alg\":\"ES256\"",  "\"alg\":\"HS256\"",       kidm,
                           "\"typ\":\"at+jwt\"", "\"al\\u0067\":\"ES256\"", "\"typ\":\"JWT\""};
    for (size_t i = 0; i < sizeof hdups / sizeof hdups[0]; i++) {
        char *v = prepend_member(h, hdups[i]);
        EXPECT(TSR_ERR_TOKEN_JSON, forged_rc(es, v, c), "header %s", v);
        free(v);
    }
    char *expm = fmt("\"exp\":%" PRId64, NOW + 900);
    const char *cdups[] = {"\"sub\":\"someone-else\"", "\"sub\":\"user-42\"", expm,
                           "\"exp\":9999999999",       "\"aud\":\"tessera\"", "\"\\u0073ub\":\"x\"",
                           "\"iss\":\"" ISS "\""};
    for (size_t i = 0; i < sizeof cdups / sizeof cdups[0]; i++) {
        char *v = prepend_member(c, cdups[i]);
        EXPECT(TSR_ERR_TOKEN_JSON, forged_rc(es, h, v), "claims %s", cdups[i]);
        free(v);
    }
    /* Duplicates nested inside a claim count too. */
    char *v = prepend_member(c, "\"ext\":{\"a\":1,\"a\":2}");
    EXPECT(TSR_ERR_TOKEN_JSON, forged_rc(es, h, v), "nested duplicate");
    free(v);
    v = prepend_member(c, "\"ext\":{\"a\":1,\"b\":2}");
    EXPECT(TSR_OK, forged_rc(es, h, v), "nested twin");
    free(v);
    free(expm);
    free(kidm);
    free(h);
    free(c);
}

static void rejects_non_object_json(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256);
    json_t *hj = hdr_std(es), *cj = claims_std();
    char *h = jdump(hj), *c = jdump(cj);
    json_decref(hj);
    json_decref(cj);
    EXPECT(TSR_OK, forged_rc(es, h, c), "twin");

    char *arr = fmt("[%s]", h);
    const char *nonobj_h[] = {"[]", "null", "1", "\"ES256\"", "true", arr};
    for (size_t i = 0; i < sizeof nonobj_h / sizeof nonobj_h[0]; i++)
        EXPECT(TSR_ERR_TOKEN_JSON, forged_rc(es, nonobj_h[i], c), "header %s", nonobj_h[i]);
    free(arr);
    arr = fmt("[%s]", c);
    const char *nonobj_c[] = {"1", "[]", "null", "\"str\"", "true", arr, "-0", "1e5"};
    for (size_t i = 0; i < sizeof nonobj_c / sizeof nonobj_c[0]; i++)
        EXPECT(TSR_ERR_TOKEN_JSON, forged_rc(es, h, nonobj_c[i]), "claims %.20s", nonobj_c[i]);
    free(arr);

    EXPECT2(TSR_ERR_TOKEN_MALFORMED, TSR_ERR_TOKEN_JSON, forged_rc(es, "", c), "empty header");
    EXPECT2(TSR_ERR_TOKEN_MALFORMED, TSR_ERR_TOKEN_JSON, forged_rc(es, h, ""), "empty claims");

    /* Not JSON at all, or JSON with trailing bytes. */
    char *trail = fmt("%s{}", h);
    char *trail2 = fmt("%sx", h);
    char *cut = fmt("%.*s", (int)strlen(h) - 1, h);
    const char *badh[] = {"{", trail, trail2, cut, "{'alg':'ES256'}"};
    for (size_t i = 0; i < sizeof badh / sizeof badh[0]; i++)
        EXPECT(TSR_ERR_TOKEN_JSON, forged_rc(es, badh[i], c), "header '%s'", badh[i]);
    free(trail);
    free(trail2);
    free(cut);
    trail = fmt("%s{}", c);
    cut = fmt("%.*s", (int)strlen(c) - 1, c);
    char *badutf8 = prepend_member(c, "\"ext\":\"\xff\xfe\"");
    char *nul = prepend_member(c, "\"ext\":\"a\\u0000b\"");
    char *lone = prepend_member(c, "\"ext\":\"\\ud800\"");
    char *overlong = prepend_member(c, "\"ext\":\"\xc0\xaf\"");
    const char *badc[] = {"{", trail, cut, badutf8, nul, lone, overlong};
    for (size_t i = 0; i < sizeof badc / sizeof badc[0]; i++)
        EXPECT(TSR_ERR_TOKEN_JSON, forged_rc(es, h, badc[i]), "claims #%zu", i);
    free(trail);
    free(cut);
    free(badutf8);
    free(nul);
    free(lone);
    free(overlong);

    /* Deep nesting inside a claim: refused or accepted, never a crash. */
    size_t depth = 2100;
    char *deep = malloc(2 * depth + 1);
    if (deep == NULL)
        abort();
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    char *member = fmt("\"ext\":%s", deep);
    char *cl = prepend_member(c, member);
    EXPECT_REFUSED(forged_rc(es, h, cl), "nesting depth %zu", depth);
    free(cl);
    free(member);
    free(deep);
    free(h);
    free(c);
}

static void rejects_wrong_claim_types(void)
{
    if (!setup())
        return;
    EXPECT(TSR_OK, sign_verify(claims_std()), "twin");
    struct {
        const char *name;
        json_t *v;
    } cases[] = {
        {"exp", json_string("1700000900")},
        {"exp", json_true()},
        {"exp", json_null()},
        {"exp", json_object()},
        {"exp", json_pack("[I]", (json_int_t)(NOW + 900))},
        {"nbf", json_string("1700000000")},
        {"nbf", json_null()},
        {"iat", json_string("1700000000")},
        {"iat", json_false()},
        {"sub", json_integer(42)},
        {"sub", json_null()},
        {"sub", json_pack("[s]", "user-42")},
        {"jti", json_integer(1)},
        {"sid", json_integer(1)},
        {"sid", json_object()},
        {"scope", json_integer(1)},
        {"scope", json_pack("[s]", "openid")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *shown = json_dumps(cases[i].v, JSON_ENCODE_ANY);
        EXPECT(TSR_ERR_TOKEN_CLAIMS, sign_verify(claims_with(cases[i].name, cases[i].v)), "%s = %s",
               cases[i].name, shown ? shown : "?");
        free(shown);
    }
    EXPECT2(TSR_ERR_TOKEN_ISSUER, TSR_ERR_TOKEN_CLAIMS,
            sign_verify(claims_with("iss", json_integer(5))), "iss = 5");
    EXPECT2(TSR_ERR_TOKEN_AUDIENCE, TSR_ERR_TOKEN_CLAIMS,
            sign_verify(claims_with("aud", json_integer(7))), "aud = 7");
    EXPECT2(TSR_ERR_TOKEN_AUDIENCE, TSR_ERR_TOKEN_CLAIMS,
            sign_verify(claims_with("aud", json_pack("{s:s}", "aud", AUD))), "aud = {}");
    EXPECT2(TSR_ERR_TOKEN_AUDIENCE, TSR_ERR_TOKEN_CLAIMS,
            sign_verify(claims_with("aud", json_pack("[i]", 7))), "aud = [7]");

    /* roles: an array of strings, at most TSR_JWT_ROLES_MAX. */
    EXPECT(TSR_OK, sign_verify(claims_with("roles", json_array())), "roles []");
    EXPECT(TSR_ERR_TOKEN_CLAIMS, sign_verify(claims_with("roles", json_string("admin"))),
           "roles = \"admin\"");
    EXPECT(TSR_ERR_TOKEN_CLAIMS, sign_verify(claims_with("roles", json_pack("[s,i]", "admin", 1))),
           "roles = [\"admin\", 1]");
    EXPECT(TSR_ERR_TOKEN_CLAIMS, sign_verify(claims_with("roles", json_null())), "roles = null");
    for (int extra = 0; extra <= 1; extra++) {
        json_t *roles = json_array();
        for (int i = 0; i < TSR_JWT_ROLES_MAX + extra; i++) {
            char r[16];
            int w = snprintf(r, sizeof r, "r%d", i);
            CHECK(w > 0 && (size_t)w < sizeof r);
            json_array_append_new(roles, json_string(r));
        }
        if (extra == 0)
            EXPECT(TSR_OK, sign_verify(claims_with("roles", roles)), "%d roles", TSR_JWT_ROLES_MAX);
        else
            EXPECT(TSR_ERR_TOKEN_CLAIMS, sign_verify(claims_with("roles", roles)), "%d roles",
                   TSR_JWT_ROLES_MAX + 1);
    }
}

/* ---- signatures ---- */

static size_t der_int(const uint8_t *v, size_t n, uint8_t *out)
{
    while (n > 1 && v[0] == 0) {
        v++;
        n--;
    }
    size_t o = 0, pad = (v[0] & 0x80) ? 1 : 0;
    out[o++] = 0x02;
    out[o++] = (uint8_t)(n + pad);
    if (pad)
        out[o++] = 0;
    memcpy(out + o, v, n);
    return o + n;
}

/* DER SEQUENCE { INTEGER r, INTEGER s } of a raw R||S signature. */
static size_t raw_to_der(const uint8_t *rs, size_t n, uint8_t *out)
{
    uint8_t body[2 * (TSR_SIG_MAX_BYTES / 2 + 3)];
    size_t bl = der_int(rs, n / 2, body);
    bl += der_int(rs + n / 2, n / 2, body + bl);
    size_t o = 0;
    out[o++] = 0x30;
    if (bl >= 128)
        out[o++] = 0x81;
    out[o++] = (uint8_t)bl;
    memcpy(out + o, body, bl);
    return o + bl;
}

/* tok with its signature part replaced by the encoding of sig[0..n). */
static char *with_sig(const char *tok, size_t len, const uint8_t *sig, size_t n, size_t *outlen)
{
    size_t d1 = 0, d2 = 0;
    CHECK(split3(tok, len, &d1, &d2));
    char *s = b64enc(sig, n);
    char *out = mem_cat(tok, d2 + 1, s, strlen(s), "", 0, outlen);
    free(s);
    return out;
}

static uint8_t *sig_of(const char *tok, size_t len, size_t *n)
{
    size_t d1 = 0, d2 = 0;
    CHECK(split3(tok, len, &d1, &d2));
    return b64dec(tok + d2 + 1, len - d2 - 1, n);
}

static void rejects_ecdsa_der_signature(void)
{
    if (!setup())
        return;
    const tsr_alg ecs[] = {TSR_ALG_ES256, TSR_ALG_ES384, TSR_ALG_ES512};
    json_t *c = claims_std();
    for (size_t i = 0; i < sizeof ecs / sizeof ecs[0]; i++) {
        const char *an = tsr_alg_name(ecs[i]);
        size_t len = 0, n = 0, bl = 0;
        char *tok = sign_claims(key_for(ecs[i]), "at+jwt", c, &len);
        EXPECT(TSR_OK, vjwt(tok, len), "%s twin", an);
        uint8_t *raw = sig_of(tok, len, &n);
        CHECK(n == 2 * tsr_curve_coord_len(tsr_alg_curve(ecs[i])));
        uint8_t buf[TSR_SIG_MAX_BYTES + 16];
        char *bad;

        bl = raw_to_der(raw, n, buf);
        bad = with_sig(tok, len, buf, bl, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s DER signature", an);
        free(bad);

        memcpy(buf, raw, n);
        buf[n] = 0;
        bad = with_sig(tok, len, buf, n + 1, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s R||S plus a byte", an);
        free(bad);
        bad = with_sig(tok, len, raw, n - 1, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s R||S minus a byte", an);
        free(bad);
        buf[0] = 0;
        memcpy(buf + 1, raw, n);
        bad = with_sig(tok, len, buf, n + 1, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s zero byte + R||S", an);
        free(bad);
        /* R||S without the last byte of R and of S (short coordinates). */
        memcpy(buf, raw, n / 2 - 1);
        memcpy(buf + n / 2 - 1, raw + n / 2, n / 2 - 1);
        bad = with_sig(tok, len, buf, n - 2, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s short R and S", an);
        free(bad);
        memset(buf, 0, n);
        bad = with_sig(tok, len, buf, n, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s r = s = 0", an);
        free(bad);
        memcpy(buf, raw + n / 2, n / 2);
        memcpy(buf + n / 2, raw, n / 2);
        bad = with_sig(tok, len, buf, n, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s S||R", an);
        free(bad);
        free(raw);
        free(tok);
    }
    json_decref(c);
}

static void rejects_truncated_hmac(void)
{
    if (!setup())
        return;
    json_t *c = claims_std();
    const tsr_alg macs[] = {TSR_ALG_HS256, TSR_ALG_HS384, TSR_ALG_HS512};
    for (size_t i = 0; i < sizeof macs / sizeof macs[0]; i++) {
        const char *an = tsr_alg_name(macs[i]);
        size_t len = 0, n = 0, bl = 0;
        char *tok = sign_claims(key_for(macs[i]), "at+jwt", c, &len);
        EXPECT(TSR_OK, vjwt(tok, len), "%s twin", an);
        uint8_t *mac = sig_of(tok, len, &n);
        CHECK(n == tsr_alg_fixed_sig_len(macs[i]));
        size_t cuts[] = {n - 1, n / 2, 32, 16, 1};
        for (size_t j = 0; j < sizeof cuts / sizeof cuts[0]; j++) {
            if (cuts[j] >= n)
                continue;
            char *bad = with_sig(tok, len, mac, cuts[j], &bl);
            EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s truncated to %zu", an, cuts[j]);
            free(bad);
        }
        char *bad = with_sig(tok, len, mac, 0, &bl);
        EXPECT2(TSR_ERR_TOKEN_SIGNATURE, TSR_ERR_TOKEN_MALFORMED, vjwt(bad, bl), "%s empty", an);
        free(bad);
        uint8_t longer[TSR_SIG_MAX_BYTES];
        memcpy(longer, mac, n);
        memcpy(longer + n, mac, n);
        bad = with_sig(tok, len, longer, n + 1, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s plus a byte", an);
        free(bad);
        bad = with_sig(tok, len, longer, 2 * n, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s doubled", an);
        free(bad);
        free(mac);
        free(tok);
    }
    json_decref(c);
}

static void rejects_signature_bit_flips(void)
{
    if (!setup())
        return;
    const tsr_alg algs[] = {TSR_ALG_ES256, TSR_ALG_HS256, TSR_ALG_EDDSA, TSR_ALG_RS256,
                            TSR_ALG_PS256};
    json_t *c = claims_std();
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        const char *an = tsr_alg_name(algs[i]);
        size_t len = 0, n = 0;
        char *tok = sign_claims(key_for(algs[i]), "at+jwt", c, &len);
        EXPECT(TSR_OK, vjwt(tok, len), "%s twin", an);
        uint8_t *sig = sig_of(tok, len, &n);
        size_t bad_count = 0, first_bad = 0;
        tsr_err first_rc = TSR_OK;
        for (size_t pos = 0; pos < n; pos++) {
            sig[pos] ^= (uint8_t)(1u << (pos % 8));
            size_t bl = 0;
            char *bad = with_sig(tok, len, sig, n, &bl);
            tsr_err rc = vjwt(bad, bl);
            if (rc != TSR_ERR_TOKEN_SIGNATURE) {
                if (bad_count++ == 0) {
                    first_bad = pos;
                    first_rc = rc;
                }
            }
            free(bad);
            sig[pos] ^= (uint8_t)(1u << (pos % 8));
        }
        CHECKF(bad_count == 0,
               "%s: %zu of %zu flipped bytes not refused as SIGNATURE; first "
               "at byte %zu -> %d (%s)",
               an, bad_count, n, first_bad, first_rc, tsr_err_text(first_rc));
        EXPECT(TSR_OK, vjwt(tok, len), "%s unflipped again", an);
        free(sig);
        free(tok);
    }
    json_decref(c);
}

/* ---- JSON escapes: a member or value spelled with \u escapes is the same one ---- */

static void escaped_names_and_values_mean_the_same(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256);
    const char *kid = tsr_jwk_kid(es);
    char *h = fmt("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    /* Claims with every registered member present once, under the given spellings. */
#define CLAIMS_FMT                                                                                 \
    "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":\"" AUD "\",%s,\"jti\":\"j\",\"iat\":%" PRId64 "}"
    char *twin_exp = fmt("\"exp\":%" PRId64, NOW + 900);
    char *c = fmt(CLAIMS_FMT, twin_exp, NOW);
    EXPECT(TSR_OK, forged_rc(es, h, c), "twin");
    free(c);

    /* An escaped "exp" that is in the past must expire the token, with or without
     * exp being required (unread, it would make the token immortal). */
    tsr_jwt_policy p = g_pol;
    p.require_exp = 0;
    char *past = fmt("\"\\u0065xp\":%" PRId64, NOW - 100);
    c = fmt(CLAIMS_FMT, past, NOW);
    size_t len = 0;
    char *tok = forge_str(tsr_jwk_key(es), h, c, &len);
    EXPECT(TSR_ERR_TOKEN_EXPIRED, vjwt(tok, len), "\\u0065xp in the past");
    EXPECT(TSR_ERR_TOKEN_EXPIRED, vjwt_pol(g_set, &p, NOW, tok, len, NULL),
           "\\u0065xp in the past, exp optional");
    free(tok);
    free(c);
    free(past);
    char *future = fmt("\"exp\":%" PRId64 ",\"\\u006ebf\":%" PRId64, NOW + 900, NOW + 100);
    c = fmt(CLAIMS_FMT, future, NOW);
    EXPECT(TSR_ERR_TOKEN_NOT_YET, forged_rc(es, h, c), "\\u006ebf in the future");
    free(c);
    free(future);
    /* Escaped iss/aud names and escaped values of the right claims are accepted. */
    c = fmt("{\"\\u0069ss\":\"https:\\/\\/auth.example.test\",\"sub\":\"u\\u00e9\\ud83d\\ude00\","
            "\"\\u0061ud\":[\"x\",\"tess\\u0065ra\"],%s,\"sid\":\"s\\\"1\\\\\"}",
            twin_exp);
    EXPECT(TSR_OK, forged_rc(es, h, c), "escaped iss/aud names and values");
    {
        static tsr_jwt jwt;
        tok = forge_str(tsr_jwk_key(es), h, c, &len);
        if (vjwt_pol(g_set, &g_pol, NOW, tok, len, &jwt) == TSR_OK) {
            CHECK(jwt.iss && strcmp(jwt.iss, ISS) == 0);
            CHECK(jwt.sub && strcmp(jwt.sub, "u\xc3\xa9\xf0\x9f\x98\x80") == 0);
            CHECK(jwt.sid && strcmp(jwt.sid, "s\"1\\") == 0);
        }
        tsr_jwt_reset(&jwt);
        free(tok);
    }
    free(c);
    /* Escaped iss/aud values that differ after unescaping are refused. */
    c = fmt("{\"iss\":\"https:\\/\\/auth.example.tesT\",\"sub\":\"u\",\"aud\":\"" AUD "\",%s}",
            twin_exp);
    EXPECT(TSR_ERR_TOKEN_ISSUER, forged_rc(es, h, c), "escaped iss, other value");
    free(c);
    c = fmt(CLAIMS_FMT, twin_exp, NOW);

    /* Header: escaped crit is crit; escaped alg, typ and kid values are the same. */
    char *hh = fmt("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\",\"\\u0063rit\":[\"x\"],"
                   "\"x\":1}",
                   kid);
    EXPECT(TSR_ERR_TOKEN_CRIT, forged_rc(es, hh, c), "\\u0063rit");
    free(hh);
    hh = fmt("{\"alg\":\"ES\\u0032\\u0035\\u0036\",\"\\u0074yp\":\"at\\u002bjwt\",\"kid\":\"\\u00"
             "%02x%s\"}",
             (unsigned)(unsigned char)kid[0], kid + 1);
    EXPECT(TSR_OK, forged_rc(es, hh, c), "escaped alg, typ and kid");
    free(hh);
    hh = fmt("{\"alg\":\"ES256\",\"\\u0074yp\":\"JWT\",\"kid\":\"%s\"}", kid);
    EXPECT(TSR_ERR_TOKEN_TYP, forged_rc(es, hh, c), "escaped typ name, JWT");
    free(hh);
    /* A BOM and a number with leading zeros are not strict JSON. */
    hh = fmt("\xef\xbb\xbf%s", h);
    EXPECT(TSR_ERR_TOKEN_JSON, forged_rc(es, hh, c), "BOM before the header");
    free(hh);
    char *lz = fmt("\"exp\":0%" PRId64, NOW + 900);
    free(c);
    c = fmt(CLAIMS_FMT, lz, NOW);
    EXPECT(TSR_ERR_TOKEN_JSON, forged_rc(es, h, c), "exp with a leading zero");
    free(c);
    free(lz);
#undef CLAIMS_FMT
    free(twin_exp);
    free(h);
}

static void rejects_wrong_length_rsa_and_eddsa_signatures(void)
{
    if (!setup())
        return;
    const tsr_alg algs[] = {TSR_ALG_RS256, TSR_ALG_PS256, TSR_ALG_EDDSA};
    json_t *c = claims_std();
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        const char *an = tsr_alg_name(algs[i]);
        size_t len = 0, n = 0, bl = 0;
        char *tok = sign_claims(key_for(algs[i]), "at+jwt", c, &len);
        EXPECT(TSR_OK, vjwt(tok, len), "%s twin", an);
        uint8_t *sig = sig_of(tok, len, &n);
        CHECK(n == tsr_key_sig_len(tsr_jwk_key(key_for(algs[i]))));
        uint8_t buf[TSR_SIG_MAX_BYTES + 2];
        buf[0] = 0;
        memcpy(buf + 1, sig, n);
        char *bad = with_sig(tok, len, buf, n + 1, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s zero byte + signature", an);
        free(bad);
        bad = with_sig(tok, len, sig, n - 1, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s signature minus its last byte", an);
        free(bad);
        bad = with_sig(tok, len, sig + 1, n - 1, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s signature minus its first byte", an);
        free(bad);
        memset(buf, 0xff, n);
        bad = with_sig(tok, len, buf, n, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s all-ones signature", an);
        free(bad);
        memset(buf, 0, n);
        bad = with_sig(tok, len, buf, n, &bl);
        EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "%s all-zero signature", an);
        free(bad);
        free(sig);
        free(tok);
    }
    json_decref(c);
}

/* ---- robustness ---- */

static void rejects_token_split_at_every_offset(void)
{
    if (!setup())
        return;
    const tsr_alg algs[] = {TSR_ALG_ES256, TSR_ALG_HS256};
    json_t *c = claims_std();
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        const char *an = tsr_alg_name(algs[i]);
        size_t len = 0;
        char *tok = sign_claims(key_for(algs[i]), "at+jwt", c, &len);
        EXPECT(TSR_OK, vjwt(tok, len), "%s whole", an);
        size_t prefix_bad = 0, suffix_bad = 0, jws_bad = 0;
        for (size_t k = 0; k < len; k++) {
            tsr_err rc = vjwt(tok, k);
            if (rc == TSR_OK || !tsr_err_is_token(rc))
                prefix_bad++;
            rc = vjwt(tok + k + 1, len - k - 1);
            if (rc == TSR_OK || !tsr_err_is_token(rc))
                suffix_bad++;
            rc = vjws(g_set, "at+jwt", 1, tok, k);
            if (rc == TSR_OK || !tsr_err_is_token(rc))
                jws_bad++;
            /* Unverified decoding of a prefix: any answer, no crash, no leak. */
            char *copy = malloc(k ? k : 1);
            if (copy == NULL)
                abort();
            memcpy(copy, tok, k);
            json_t *h = NULL, *cl = NULL;
            if (tsr_jwt_decode_unverified(copy, k, &h, &cl) != TSR_OK)
                CHECK(h == NULL && cl == NULL);
            json_decref(h);
            json_decref(cl);
            free(copy);
        }
        CHECKF(prefix_bad == 0, "%s: %zu prefixes not refused with a token error", an, prefix_bad);
        CHECKF(suffix_bad == 0, "%s: %zu suffixes not refused with a token error", an, suffix_bad);
        CHECKF(jws_bad == 0, "%s: %zu jws prefixes not refused", an, jws_bad);
        free(tok);
    }
    json_decref(c);
}

/* ---- JWKS ---- */

static json_t *public_jwk(const tsr_jwk *k, const char *kid, const char *use)
{
    json_t *j = NULL;
    tsr_err rc = tsr_jwk_to_json(k, 0, &j);
    CHECKF(rc == TSR_OK, "tsr_jwk_to_json -> %d", rc);
    if (j == NULL)
        abort();
    if (kid != NULL)
        json_object_set_new(j, "kid", json_string(kid));
    if (use == NULL)
        json_object_del(j, "use");
    else
        json_object_set_new(j, "use", json_string(use));
    return j;
}

static tsr_err parse_jwks_json(const json_t *doc, tsr_jwks **out)
{
    char *s = jdump(doc);
    *out = (tsr_jwks *)doc; /* must be overwritten */
    tsr_err rc = tsr_jwks_parse(s, strlen(s), out);
    free(s);
    if (rc != TSR_OK)
        CHECKF(*out == NULL, "jwks output not NULL after error %d", rc);
    return rc;
}

static void jwks_parse_skips_enc_and_unknown(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256), *rs = key_for(TSR_ALG_RS256);
    json_t *enc = public_jwk(rs, "enc-1", "enc");
    json_t *oaep = public_jwk(rs, "oaep-1", NULL);
    json_object_set_new(oaep, "alg", json_string("RSA-OAEP-256"));
    json_t *k1 = public_jwk(es, "secp256k1", "sig");
    json_object_set_new(k1, "crv", json_string("secp256k1"));
    json_object_set_new(k1, "alg", json_string("ES256K"));
    json_t *doc = json_pack("{s:[o,o,o,o,{s:s,s:s,s:s},o]}", "keys",
                            public_jwk(es, "sig-es", "sig"), enc, oaep, k1, "kty", "XYZ", "kid",
                            "weird", "alg", "ES256", public_jwk(rs, "rs-nouse", NULL));
    if (doc == NULL)
        abort();
    tsr_jwks *set = NULL;
    tsr_err rc = parse_jwks_json(doc, &set);
    EXPECT(TSR_OK, rc, "mixed set");
    if (set != NULL) {
        CHECKF(tsr_jwks_count(set) == 2, "count %zu", tsr_jwks_count(set));
        CHECK(tsr_jwks_find(set, "sig-es", 6) != NULL);
        CHECK(tsr_jwks_find(set, "rs-nouse", 8) != NULL);
        CHECK(tsr_jwks_find(set, "enc-1", 5) == NULL);
        CHECK(tsr_jwks_find(set, "oaep-1", 6) == NULL);
        CHECK(tsr_jwks_find(set, "secp256k1", 9) == NULL);
        CHECK(tsr_jwks_find(set, "weird", 5) == NULL);
        CHECK(tsr_jwks_find(set, "sig-e", 5) == NULL);   /* kid matched by length too */
        CHECK(tsr_jwks_find(set, "sig-esX", 6) != NULL); /* kidlen bounds the compare */
        for (size_t i = 0; i < tsr_jwks_count(set); i++)
            CHECK(tsr_jwks_get(set, i) != NULL &&
                  !tsr_key_has_private(tsr_jwk_key(tsr_jwks_get(set, i))));
        /* A token of the ES256 key verifies against the parsed public set. */
        tsr_jwk *renamed = NULL;
        CHECK(tsr_jwk_new(tsr_jwk_key(es), "sig-es", &renamed) == TSR_OK);
        if (renamed != NULL) {
            json_t *c = claims_std();
            size_t len = 0;
            char *tok = sign_claims(renamed, "at+jwt", c, &len);
            EXPECT(TSR_OK, vjwt_pol(set, &g_pol, NOW, tok, len, NULL), "token vs parsed set");
            free(tok);
            json_decref(c);
        }
        tsr_jwk_free(renamed);
    }
    tsr_jwks_free(set);
    json_decref(doc);

    /* Only enc keys: nothing left. */
    doc = json_pack("{s:[o]}", "keys", public_jwk(rs, "enc-1", "enc"));
    EXPECT(TSR_ERR_NOT_FOUND, parse_jwks_json(doc, &set), "only enc keys");
    tsr_jwks_free(set);
    json_decref(doc);
    doc = json_pack("{s:[]}", "keys");
    EXPECT(TSR_ERR_NOT_FOUND, parse_jwks_json(doc, &set), "empty keys");
    tsr_jwks_free(set);
    json_decref(doc);
}

static void jwks_parse_rejects_duplicates_and_malformed(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256), *ed = key_for(TSR_ALG_EDDSA);
    tsr_jwks *set = NULL;

    json_t *doc =
        json_pack("{s:[o,o]}", "keys", public_jwk(es, "a", "sig"), public_jwk(ed, "b", "sig"));
    EXPECT(TSR_OK, parse_jwks_json(doc, &set), "twin: two kids");
    tsr_jwks_free(set);
    json_decref(doc);

    doc = json_pack("{s:[o,o]}", "keys", public_jwk(es, "same", "sig"),
                    public_jwk(ed, "same", "sig"));
    tsr_err drc = parse_jwks_json(doc, &set);
    CHECKF(drc != TSR_OK && set == NULL, "JWKS with a duplicate kid -> %d", drc);
    tsr_jwks_free(set);
    set = NULL;
    json_decref(doc);

    /* A supported key that is malformed fails the whole set. */
    json_t *shortx = public_jwk(es, "short", "sig");
    json_object_set_new(shortx, "x", json_string("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVQ"));
    json_t *offcurve = public_jwk(es, "off", "sig");
    {
        char y[64];
        int w = snprintf(y, sizeof y, "%s", json_string_value(json_object_get(offcurve, "y")));
        CHECK(w > 0 && (size_t)w < sizeof y);
        y[10] = y[10] == 'A' ? 'B' : 'A';
        json_object_set_new(offcurve, "y", json_string(y));
    }
    json_t *pad = public_jwk(es, "pad", "sig");
    {
        char *x = fmt("%s=", json_string_value(json_object_get(pad, "x")));
        json_object_set_new(pad, "x", json_string(x));
        free(x);
    }
    json_t *bads[] = {shortx, offcurve, pad};
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        doc = json_pack("{s:[o,o]}", "keys", public_jwk(ed, "good", "sig"), bads[i]);
        tsr_err rc = parse_jwks_json(doc, &set);
        CHECKF(rc != TSR_OK && set == NULL, "malformed key #%zu accepted", i);
        tsr_jwks_free(set);
        set = NULL;
        json_decref(doc);
    }

    /* Document-level errors. */
    const char *docs[] = {"{}",
                          "[]",
                          "{\"keys\":{}}",
                          "{\"keys\":null}",
                          "not json",
                          "{\"keys\":[],\"keys\":[]}",
                          "{\"keys\":[1]}"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        set = (tsr_jwks *)docs;
        tsr_err rc = tsr_jwks_parse(docs[i], strlen(docs[i]), &set);
        CHECKF(rc != TSR_OK && set == NULL, "jwks '%s' -> %d", docs[i], rc);
        if (rc == TSR_OK)
            tsr_jwks_free(set);
    }

    /* TSR_JWKS_KEYS_MAX keys are fine; one more is not. */
    for (int extra = 0; extra <= 1; extra++) {
        json_t *keys = json_array();
        for (int i = 0; i < TSR_JWKS_KEYS_MAX + extra; i++) {
            char kid[16];
            int w = snprintf(kid, sizeof kid, "k%d", i);
            CHECK(w > 0 && (size_t)w < sizeof kid);
            json_array_append_new(keys, public_jwk(es, kid, "sig"));
        }
        doc = json_pack("{s:o}", "keys", keys);
        set = NULL;
        tsr_err rc = parse_jwks_json(doc, &set);
        if (extra == 0) {
            EXPECT(TSR_OK, rc, "%d keys", TSR_JWKS_KEYS_MAX);
            CHECK(set == NULL || tsr_jwks_count(set) == TSR_JWKS_KEYS_MAX);
        } else {
            CHECKF(rc != TSR_OK, "%d keys accepted", TSR_JWKS_KEYS_MAX + 1);
        }
        tsr_jwks_free(set);
        json_decref(doc);
    }

    /* tsr_jwks_new with a duplicate kid. */
    tsr_jwk *arr[2] = {(tsr_jwk *)es, (tsr_jwk *)es};
    set = NULL;
    EXPECT(TSR_ERR_EXISTS, tsr_jwks_new(arr, 2, &set), "jwks_new duplicate kid");
    CHECK(set == NULL);
    tsr_jwks_free(set);
}

static void jwks_to_json_never_publishes_secrets(void)
{
    if (!setup())
        return;
    json_t *doc = NULL;
    EXPECT(TSR_OK, tsr_jwks_to_json(g_set, &doc), "to_json");
    if (doc == NULL)
        return;
    json_t *keys = json_object_get(doc, "keys");
    CHECK(json_is_array(keys));
    size_t n_asym = 0;
    for (size_t i = 0; i < N_KEYS; i++)
        if (tsr_key_kty(tsr_jwk_key(g_keys[i])) != TSR_KTY_OCT)
            n_asym++;
    CHECKF(json_array_size(keys) == n_asym, "published %zu keys, want %zu", json_array_size(keys),
           n_asym);
    static const char *const secret_members[] = {"k", "d", "p", "q", "dp", "dq", "qi", "oth"};
    size_t idx;
    json_t *k;
    json_array_foreach(keys, idx, k)
    {
        const char *kty = json_string_value(json_object_get(k, "kty"));
        CHECK(kty != NULL && strcmp(kty, "oct") != 0);
        for (size_t m = 0; m < sizeof secret_members / sizeof secret_members[0]; m++)
            CHECKF(json_object_get(k, secret_members[m]) == NULL, "published member %s",
                   secret_members[m]);
        CHECK(json_is_string(json_object_get(k, "kid")));
        CHECK(json_is_string(json_object_get(k, "alg")));
    }
    /* Round trip: the published set verifies every asymmetric key's tokens and
     * knows nothing of the HMAC keys. */
    tsr_jwks *pub = NULL;
    EXPECT(TSR_OK, parse_jwks_json(doc, &pub), "parse published set");
    if (pub != NULL) {
        CHECK(tsr_jwks_count(pub) == n_asym);
        json_t *c = claims_std();
        for (size_t i = 0; i < N_KEYS; i++) {
            size_t len = 0;
            char *tok = sign_claims(g_keys[i], "at+jwt", c, &len);
            int sym = tsr_key_kty(tsr_jwk_key(g_keys[i])) == TSR_KTY_OCT;
            EXPECT(sym ? TSR_ERR_TOKEN_KID : TSR_OK, vjwt_pol(pub, &g_pol, NOW, tok, len, NULL),
                   "%s token vs published set", tsr_alg_name(key_algs[i]));
            const tsr_jwk *f =
                tsr_jwks_find(pub, tsr_jwk_kid(g_keys[i]), strlen(tsr_jwk_kid(g_keys[i])));
            CHECK(sym ? f == NULL
                      : (f != NULL && !tsr_key_has_private(tsr_jwk_key(f)) &&
                         tsr_jwk_alg(f) == key_algs[i]));
            free(tok);
        }
        json_decref(c);
    }
    tsr_jwks_free(pub);
    json_decref(doc);

    /* A set of only symmetric keys publishes an empty list. */
    tsr_jwks *hs = one_set(key_for(TSR_ALG_HS256));
    doc = NULL;
    if (hs != NULL && tsr_jwks_to_json(hs, &doc) == TSR_OK)
        CHECK(json_array_size(json_object_get(doc, "keys")) == 0);
    json_decref(doc);
    tsr_jwks_free(hs);
}

static void decode_unverified_reads_without_verifying(void)
{
    if (!setup())
        return;
    const tsr_jwk *es = key_for(TSR_ALG_ES256);
    json_t *cj = claims_with("exp", json_integer(NOW - 86400)); /* expired: still decodes */
    size_t len = 0;
    char *tok = sign_claims(es, "at+jwt", cj, &len);
    json_t *h = NULL, *c = NULL;
    EXPECT(TSR_OK, tsr_jwt_decode_unverified(tok, len, &h, &c), "expired token");
    CHECK(h != NULL && c != NULL && json_equal(c, cj));
    CHECK(json_string_value(json_object_get(h, "kid")) &&
          strcmp(json_string_value(json_object_get(h, "kid")), tsr_jwk_kid(es)) == 0);
    json_decref(h);
    json_decref(c);

    /* A bad signature does not matter here... */
    size_t n = 0, bl = 0;
    uint8_t *sig = sig_of(tok, len, &n);
    sig[0] ^= 1;
    char *bad = with_sig(tok, len, sig, n, &bl);
    h = c = NULL;
    EXPECT(TSR_OK, tsr_jwt_decode_unverified(bad, bl, &h, &c), "bad signature");
    json_decref(h);
    json_decref(c);
    EXPECT(TSR_ERR_TOKEN_SIGNATURE, vjwt(bad, bl), "...but verify refuses it");
    free(bad);
    free(sig);

    /* ...but the structure does. */
    json_t *hj = hdr_std(es);
    char *hs = jdump(hj), *cs = jdump(cj);
    json_decref(hj);
    char *dup = prepend_member(cs, "\"sub\":\"x\"");
    char *h64 = b64enc(hs, strlen(hs)), *p64 = b64enc(cs, strlen(cs));
    char *pad = fmt("%s=.%s.AAAA", h64, p64);
    char *t_dup = forge_str(tsr_jwk_key(es), hs, dup, &bl);
    char *t_arr = forge_str(tsr_jwk_key(es), "[]", cs, &bl);
    const char *bads[] = {"abc", "a.b", pad, t_dup, t_arr, "..", ""};
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        h = (json_t *)bads;
        c = (json_t *)bads;
        tsr_err rc = tsr_jwt_decode_unverified(bads[i], strlen(bads[i]), &h, &c);
        CHECKF(rc != TSR_OK && h == NULL && c == NULL, "decode_unverified #%zu -> %d", i, rc);
        if (rc == TSR_OK) {
            json_decref(h);
            json_decref(c);
        }
    }
    h = c = NULL;
    EXPECT(TSR_ERR_TOKEN_JSON, tsr_jwt_decode_unverified(t_dup, strlen(t_dup), &h, &c),
           "duplicate claim");
    EXPECT(TSR_ERR_TOKEN_JSON, tsr_jwt_decode_unverified(t_arr, strlen(t_arr), &h, &c),
           "array header");
    EXPECT(TSR_ERR_TOKEN_MALFORMED, tsr_jwt_decode_unverified(pad, strlen(pad), &h, &c),
           "padded header");
    free(t_dup);
    free(t_arr);
    free(pad);
    free(h64);
    free(p64);
    free(dup);
    free(hs);
    free(cs);
    free(tok);
    json_decref(cj);
}

int main(void)
{
    TSR_RUN(accepts_tokens_of_every_key);
    TSR_RUN(rejects_alg_none);
    TSR_RUN(rejects_alg_mismatch);
    TSR_RUN(rejects_unknown_kid);
    TSR_RUN(rejects_missing_kid_when_required);
    TSR_RUN(ignores_embedded_jwk_jku_x5u_x5c);
    TSR_RUN(rejects_crit);
    TSR_RUN(exp_and_nbf_leeway_30s);
    TSR_RUN(rejects_wrong_iss);
    TSR_RUN(rejects_wrong_aud);
    TSR_RUN(rejects_wrong_typ);
    TSR_RUN(rejects_token_over_8k);
    TSR_RUN(b64url_decoder_is_strict);
    TSR_RUN(rejects_b64_padding_and_stray_chars);
    TSR_RUN(rejects_duplicate_keys);
    TSR_RUN(rejects_non_object_json);
    TSR_RUN(rejects_wrong_claim_types);
    TSR_RUN(rejects_ecdsa_der_signature);
    TSR_RUN(rejects_truncated_hmac);
    TSR_RUN(rejects_signature_bit_flips);
    TSR_RUN(rejects_wrong_length_rsa_and_eddsa_signatures);
    TSR_RUN(escaped_names_and_values_mean_the_same);
    TSR_RUN(rejects_token_split_at_every_offset);
    TSR_RUN(jwks_parse_skips_enc_and_unknown);
    TSR_RUN(jwks_parse_rejects_duplicates_and_malformed);
    TSR_RUN(jwks_to_json_never_publishes_secrets);
    TSR_RUN(decode_unverified_reads_without_verifying);
    /* Last: an int64 overflow in the implementation aborts the process under UBSan. */
    TSR_RUN(extreme_numeric_dates_do_not_overflow);
    teardown();
    return tsr_test_summary();
}
