/* jose.h: tessera's JOSE layer: base64url, JWK/JWKS, JWS compact, JWT claims.
 *
 * Strict by design: base64url without padding or stray characters, JSON with
 * duplicate keys rejected, the algorithm pinned by the key, no "none", no key
 * taken from the token (jku, x5u, jwk, x5c ignored), unknown crit rejected.
 * Verification is built for the hot path: keys are prepared once and shared,
 * and a verify allocates nothing but the claims JSON. */
#ifndef TSR_JOSE_H
#define TSR_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/crypto.h"

struct json_t;

#define TSR_JWT_MAX_BYTES 8192   /* tokens longer than this are refused unread */
#define TSR_KID_MAX 128          /* longest kid we accept, in bytes */
#define TSR_JWK_MAX_BYTES 65536  /* longest JWK or JWKS document we parse */
#define TSR_JWKS_KEYS_MAX 64     /* most keys in one set */
#define TSR_THUMBPRINT_CHARS 43  /* base64url of SHA-256, without NUL */
#define TSR_JWT_DEFAULT_LEEWAY 30

/* ---- base64url (RFC 4648 section 5, no padding) ---- */

/* Characters needed to encode n bytes (no NUL). */
size_t tsr_b64url_encoded_len(size_t n);
/* Upper bound of bytes decoded from n characters. */
size_t tsr_b64url_decoded_max(size_t n);

/* Encodes n bytes into out and NUL-terminates; cap must hold len + 1. */
TSR_MUST_CHECK tsr_err tsr_b64url_encode(const uint8_t *in, size_t n, char *out /* OUT */,
                                         size_t cap, size_t *outlen /* OUT */);

/* Strict decode: only [A-Za-z0-9_-], no '=', length mod 4 never 1, unused trailing
 * bits zero (one canonical encoding per value). TSR_ERR_INVALID otherwise. */
TSR_MUST_CHECK tsr_err tsr_b64url_decode(const char *in, size_t n, uint8_t *out /* OUT */,
                                         size_t cap, size_t *outlen /* OUT */);

/* ---- algorithms ---- */

/* "HS256" ... "EdDSA"; NULL for TSR_ALG_INVALID. */
const char *tsr_alg_name(tsr_alg alg);
/* Exact, case-sensitive match; "none" and anything unknown give TSR_ALG_INVALID. */
tsr_alg tsr_alg_from_name(const char *s, size_t n);

/* ---- JWK (RFC 7517, 7518, 8037) ---- */

typedef struct tsr_jwk tsr_jwk;

/* Parses one JWK. Its alg is the "alg" member, else alg_hint, else implied by an
 * EC or OKP curve; a conflict or no alg at all is TSR_ERR_INVALID. kid is taken
 * from the JWK, else the RFC 7638 thumbprint. Keys are validated (see crypto.h). */
TSR_MUST_CHECK tsr_err tsr_jwk_parse(const char *json, size_t len, tsr_alg alg_hint,
                                     tsr_jwk **out /* OUT */);
TSR_MUST_CHECK tsr_err tsr_jwk_from_json(const struct json_t *obj, tsr_alg alg_hint,
                                         tsr_jwk **out /* OUT */);

/* Wraps a key (takes a reference). kid NULL: the thumbprint. */
TSR_MUST_CHECK tsr_err tsr_jwk_new(tsr_key *key, const char *kid, tsr_jwk **out /* OUT */);

/* A fresh key for alg (RSA 2048 bits), kid = thumbprint. */
TSR_MUST_CHECK tsr_err tsr_jwk_generate(tsr_alg alg, tsr_jwk **out /* OUT */);

/* PEM (SPKI or PKCS#8) to JWK; kid NULL: the thumbprint. */
TSR_MUST_CHECK tsr_err tsr_jwk_from_pem(tsr_alg alg, const char *pem, size_t len,
                                        const char *kid, tsr_jwk **out /* OUT */);

/* JSON object of the key with kty, kid, alg, use "sig" and its components; private
 * members only with with_private. New reference in *out. */
TSR_MUST_CHECK tsr_err tsr_jwk_to_json(const tsr_jwk *k, int with_private,
                                       struct json_t **out /* OUT */);
/* The same as a compact string (heap; free with tsr_jwk_string_free, which wipes). */
TSR_MUST_CHECK tsr_err tsr_jwk_dump(const tsr_jwk *k, int with_private, char **out /* OUT */);
void tsr_jwk_string_free(char *s);

/* RFC 7638 SHA-256 thumbprint, base64url, NUL-terminated. */
TSR_MUST_CHECK tsr_err tsr_jwk_thumbprint(const tsr_jwk *k,
                                          char out[TSR_THUMBPRINT_CHARS + 1] /* OUT */);

const char *tsr_jwk_kid(const tsr_jwk *k);     /* borrowed */
tsr_alg tsr_jwk_alg(const tsr_jwk *k);
tsr_key *tsr_jwk_key(const tsr_jwk *k);        /* borrowed */
tsr_jwk *tsr_jwk_ref(tsr_jwk *k);
void tsr_jwk_free(tsr_jwk *k);                  /* drops a reference; NULL no-op */

/* ---- JWKS: an immutable, refcounted key set ---- */

typedef struct tsr_jwks tsr_jwks;

/* Parses {"keys":[...]}. Entries with "use" other than "sig", or an unknown kty,
 * crv or alg, are skipped; a malformed supported key or a duplicate kid fails the
 * whole set. An empty result is TSR_ERR_NOT_FOUND. */
TSR_MUST_CHECK tsr_err tsr_jwks_parse(const char *json, size_t len, tsr_jwks **out /* OUT */);

/* A set of n keys (each gets a reference). Duplicate kids: TSR_ERR_EXISTS. */
TSR_MUST_CHECK tsr_err tsr_jwks_new(tsr_jwk *const *keys, size_t n, tsr_jwks **out /* OUT */);

/* Borrowed key with this kid, or NULL. */
const tsr_jwk *tsr_jwks_find(const tsr_jwks *set, const char *kid, size_t kidlen);
size_t tsr_jwks_count(const tsr_jwks *set);
const tsr_jwk *tsr_jwks_get(const tsr_jwks *set, size_t i);

/* {"keys":[...]} with public keys only: symmetric keys are never published. */
TSR_MUST_CHECK tsr_err tsr_jwks_to_json(const tsr_jwks *set, struct json_t **out /* OUT */);

tsr_jwks *tsr_jwks_ref(tsr_jwks *set);
void tsr_jwks_free(tsr_jwks *set);

/* ---- JWS compact (RFC 7515) ---- */

/* Signs payload with header {"alg","typ","kid"} (typ omitted when NULL).
 * *out is a heap NUL-terminated string (free()). */
TSR_MUST_CHECK tsr_err tsr_jws_sign(const tsr_jwk *k, const char *typ, const uint8_t *payload,
                                    size_t n, char **out /* OUT */, size_t *outlen /* OUT */);

/* Options of a JWS verification. */
typedef struct tsr_jws_opts {
    const char *typ;   /* required typ, compared case-insensitively with an optional
                          "application/" prefix; NULL: typ not checked */
    int require_kid;   /* without it a kid-less token is allowed when the set has one key */
} tsr_jws_opts;

/* Verifies a compact JWS against the set and decodes its payload into buf.
 * On TSR_OK: *payload_len bytes of payload in buf, *key the key that verified
 * (borrowed from set). Errors are the TSR_ERR_TOKEN_* reasons. */
TSR_MUST_CHECK tsr_err tsr_jws_verify(const tsr_jwks *set, const tsr_jws_opts *opts,
                                      const char *tok, size_t len, uint8_t *buf /* OUT */,
                                      size_t cap, size_t *payload_len /* OUT */,
                                      const tsr_jwk **key /* OUT */);

/* ---- JWT (RFC 7519, RFC 9068) ---- */

typedef struct tsr_jwt_policy {
    const char *iss;   /* required iss, exact; NULL: not checked */
    const char *aud;   /* required member of aud (string or array); NULL: not checked */
    const char *typ;   /* required typ ("at+jwt"); NULL: not checked */
    int64_t leeway;    /* seconds of clock skew allowed on exp, nbf and iat */
    int require_exp;   /* exp must be present */
    int require_kid;
} tsr_jwt_policy;

/* The default policy for tessera access tokens: typ at+jwt, exp and kid required,
 * 30 s leeway; the caller sets iss and aud. */
tsr_jwt_policy tsr_jwt_policy_access(const char *iss, const char *aud);

#define TSR_JWT_ROLES_MAX 32

/* A verified token. Strings point into strbuf (unescaped, NUL-terminated); the
 * struct owns nothing on the heap, so it can live on the stack of a request. */
typedef struct tsr_jwt {
    const char *iss, *sub, *sid, *jti, *scope; /* NULL if absent */
    const char *username;                      /* tessera's "username" claim; NULL if absent */
    const char *roles[TSR_JWT_ROLES_MAX];
    size_t nroles;
    int64_t exp, nbf, iat;                     /* 0 when absent */
    tsr_alg alg;
    const tsr_jwk *key;                        /* borrowed from the set that verified it */
    size_t payload_len;
    char payload[TSR_JWT_MAX_BYTES];           /* the claims JSON as received */
    char strbuf[TSR_JWT_MAX_BYTES];
} tsr_jwt;

/* Verifies signature and claims at time now (Unix seconds). On error the fields
 * above payload are zeroed and the error says why (TSR_ERR_TOKEN_*). Claims are
 * read with the strict allocation-free reader; a verify allocates nothing. */
TSR_MUST_CHECK tsr_err tsr_jwt_verify(const tsr_jwks *set, const tsr_jwt_policy *pol, int64_t now,
                                      const char *tok, size_t len, tsr_jwt *out /* OUT */);
/* Clears the claim fields (nothing to free; kept for symmetry with verify). */
void tsr_jwt_reset(tsr_jwt *jwt);
/* All claims of a verified token as a jansson object (new reference). */
TSR_MUST_CHECK tsr_err tsr_jwt_claims_json(const tsr_jwt *jwt, struct json_t **out /* OUT */);

/* Signs claims (a JSON object) as a JWT with the given typ. Heap string in *out (free()). */
TSR_MUST_CHECK tsr_err tsr_jwt_sign(const tsr_jwk *k, const char *typ,
                                    const struct json_t *claims, char **out /* OUT */,
                                    size_t *outlen /* OUT */);

/* Splits and decodes a token WITHOUT verifying it (for `tessera token decode`).
 * New references in *header and *claims. */
TSR_MUST_CHECK tsr_err tsr_jwt_decode_unverified(const char *tok, size_t len,
                                                 struct json_t **header /* OUT */,
                                                 struct json_t **claims /* OUT */);

#endif
