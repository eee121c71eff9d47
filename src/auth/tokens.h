/* tokens.h: token and hybrid mode: signing keys, access tokens, rotating refresh
 * tokens with reuse detection, the live revocation set, bearer verification with
 * its cache, RFC 7009 revoke and RFC 7662 introspection. Free of HTTP, like
 * auth.h, and part of the same tsr_auth context.
 *
 * Keys live in the store (private JWK, kid, alg, state next/active/retired); each
 * process keeps a snapshot (the "keyring") and reloads it when the store's list
 * changes (tsr_auth_sync). New tokens are signed by the active key; tokens verify
 * against next, active and retired keys, so an instance that has not yet seen a
 * rotation still accepts what another instance signed.
 *
 * Revocation: the store appends a row for every session ended early (see store.h)
 * and for every revoked jti; tsr_auth_sync reads the rows after the last one seen
 * into an in-memory set of sid and jti values, each kept until the longest access
 * token it could match has expired (revoked_at + access_ttl + leeway for a sid,
 * exp + leeway for a jti). Every revocation path of this process syncs before it
 * returns, so a logout here is refused here at once; other processes on the same
 * store see it within their sync interval.
 *
 * Refresh tokens: 43 base64url chars of 32 random bytes, stored as SHA-256. On
 * every use a new one; the store keeps the hashes of spent ones. The successor is
 * sealed (XChaCha20-Poly1305) under a key derived from the spent token, so the
 * store never holds a usable token, yet a spent token presented within
 * tokens.reuse_grace gets the identical successor back. Later, or any older spent
 * token: reuse, the family (session) is deleted and its sid revoked.
 *
 * Every output holding a token is SECRET: wipe it (tsr_auth_grant_wipe). */
#ifndef TSR_AUTH_TOKENS_H
#define TSR_AUTH_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "common/config.h"
#include "common/err.h"
#include "crypto/crypto.h"
#include "jose/jose.h"
#include "store/store.h"

#define TSR_REFRESH_TOKEN_CHARS 43        /* base64url of 32 random bytes */
#define TSR_ACCESS_TOKEN_MAX 4096         /* our own access tokens stay under this */
#define TSR_KEYS_MAX TSR_JWKS_KEYS_MAX    /* keys kept in the store at once */
#define TSR_SYNC_INTERVAL_MS 100          /* background sync of revocations and keys */
#define TSR_BEARER_ROLES_MAX 255          /* roles a cached token can carry, comma-joined */

/* ---- keys ---- */

/* Loads the keys from the store. When there is no active key, generates an active
 * and a next key of the configured alg (tokens.alg) in one store transaction (two
 * instances starting at once: one wins, the other loads its keys). Call once at
 * start-up, before any token is issued or verified. TSR_ERR_UNAVAILABLE. */
TSR_MUST_CHECK tsr_err tsr_auth_keys_init(tsr_auth *a, int64_t now);

/* Rotates: the next key becomes active (or, when alg differs from the next key's
 * alg, a new key of alg becomes active), the active one is retired but published
 * until now + access_ttl + leeway, and a new next key of the same alg is made.
 * alg TSR_ALG_INVALID: the configured one. kid (may be NULL) gets the new active
 * kid. TSR_ERR_CONFLICT when another rotation won the race (the keyring is then
 * reloaded; the caller may retry). HS keys are never published. */
TSR_MUST_CHECK tsr_err tsr_auth_keys_rotate(tsr_auth *a, tsr_alg alg, int64_t now,
                                            char kid[TSR_KID_STORE_MAX + 1] /* OUT */);

/* One key as the admin API and the CLI show it: no private material. */
typedef struct tsr_key_info {
    char kid[TSR_KID_STORE_MAX + 1];
    char alg[TSR_ALG_NAME_MAX + 1];
    const char *state;              /* "next", "active", "retired" (static) */
    int64_t created_at, activated_at, retired_at, publish_until;
} tsr_key_info;

/* The stored keys, oldest first, at most max (TSR_KEYS_MAX is always enough). */
TSR_MUST_CHECK tsr_err tsr_auth_keys_list(tsr_auth *a, tsr_key_info *out /* OUT */, size_t max,
                                          size_t *n /* OUT */);

/* The published JWKS as JSON: next, active and not-yet-expired retired keys,
 * public parts only, never a symmetric key. Heap string in *out (free()). */
TSR_MUST_CHECK tsr_err tsr_auth_jwks_json(tsr_auth *a, char **out /* OUT */,
                                          size_t *len /* OUT */);

/* The distinct algorithms of the published keys, comma-free names into out (at
 * most max), for discovery's access_token_signing_alg_values_supported. */
size_t tsr_auth_published_algs(tsr_auth *a, const char **out /* OUT */, size_t max);

/* The token issuer (tokens.issuer, else the public URL set by the server). */
const char *tsr_auth_issuer(const tsr_auth *a);

/* Sets the issuer when tokens.issuer was left empty: the server calls it once it
 * knows its public URL, before serving. TSR_ERR_INVALID for "" or a long value. */
TSR_MUST_CHECK tsr_err tsr_auth_set_default_issuer(tsr_auth *a, const char *public_url);

/* ---- grants ---- */

typedef struct tsr_auth_grant {
    char access_token[TSR_ACCESS_TOKEN_MAX];      /* SECRET */
    size_t access_len;
    int64_t expires_in;                           /* seconds */
    char refresh_token[TSR_REFRESH_TOKEN_CHARS + 1]; /* SECRET; "" when none */
    char scope[TSR_SCOPE_MAX + 1];
    tsr_session session;                          /* the family or cookie session */
    tsr_user user;                                /* pwhash empty */
} tsr_auth_grant;

void tsr_auth_grant_wipe(tsr_auth_grant *g);

/* TSR_OK for "" or space-separated scope tokens (RFC 6749 3.3 characters), at most
 * TSR_SCOPE_MAX bytes, no empty token; else TSR_ERR_INVALID. */
TSR_MUST_CHECK tsr_err tsr_auth_scope_check(const char *scope, size_t n);

/* OAuth password grant: rate-limited login (as tsr_auth_login), then a new
 * refresh family (session kind REFRESH, absolute lifetime refresh_ttl, idle
 * refresh_idle_ttl, counted in the user's session cap) and an access token bound
 * to it. TSR_ERR_INVALID_GRANT for bad credentials, TSR_ERR_RATE_LIMITED with
 * *retry_after, TSR_ERR_INVALID (scope). HASHES. */
TSR_MUST_CHECK tsr_err tsr_auth_password_grant(tsr_auth *a, const char *username, size_t ulen,
                                               const char *pw, size_t pwlen, const char *scope,
                                               const char *ip, const char *user_agent,
                                               int64_t now, tsr_auth_grant *out /* OUT */,
                                               int64_t *retry_after /* OUT */);

/* OAuth refresh_token grant (see the top of this file). TSR_ERR_INVALID_GRANT for
 * a malformed, unknown, expired, reused or disabled user's token; reuse also ends
 * the family and publishes its sid before returning. Cheap: no hashing of
 * passwords, may run on a request thread. */
TSR_MUST_CHECK tsr_err tsr_auth_refresh_grant(tsr_auth *a, const char *token, size_t len,
                                              int64_t now, tsr_auth_grant *out /* OUT */);

/* POST /v1/session/token: an access token bound to a live session (its id is the
 * sid). out->refresh_token stays "". */
TSR_MUST_CHECK tsr_err tsr_auth_access_for_session(tsr_auth *a, const tsr_session *s,
                                                   const tsr_user *u, int64_t now,
                                                   tsr_auth_grant *out /* OUT */);

/* ---- revocation ---- */

/* RFC 7009: a refresh token (current or spent) ends its family; an access token
 * of ours that verifies (an expired one is simply ignored) gets its jti revoked
 * until its exp. hint is ignored: the two kinds cannot be confused (43 characters
 * against a JWS). Unknown tokens: TSR_OK. */
TSR_MUST_CHECK tsr_err tsr_auth_oauth_revoke(tsr_auth *a, const char *token, size_t len,
                                             const char *hint, int64_t now);

/* Reads revocations appended since the last sync into the in-memory set, drops
 * expired entries, reloads the keyring when the stored keys changed, and rotates
 * keys when tokens.key_rotation is due. Safe from any thread; concurrent calls
 * serialise. Every local revocation path calls it before returning. */
TSR_MUST_CHECK tsr_err tsr_auth_sync(tsr_auth *a, int64_t now);

/* Starts a thread calling tsr_auth_sync every TSR_SYNC_INTERVAL_MS (and the purge
 * of expired sessions and revocations once a minute); tsr_auth_free stops it. */
TSR_MUST_CHECK tsr_err tsr_auth_sync_start(tsr_auth *a);

/* Nonzero when sid or jti (either may be NULL) is in the revoked set at now. */
int tsr_auth_is_revoked(tsr_auth *a, const char *sid, const char *jti, int64_t now);

/* Revocation rows this process has read since it started: sessions ended early
 * and access tokens revoked, by any path, here or in another process on the same
 * store (for /metrics). */
uint64_t tsr_auth_revocations_read(tsr_auth *a);

/* Entries in the revoked set (for /metrics). */
size_t tsr_auth_revoked_count(tsr_auth *a);

/* ---- verification ---- */

/* What a valid bearer token says. */
typedef struct tsr_bearer {
    char sub[TSR_ID_MAX + 1];
    char sid[TSR_ID_MAX + 1];
    char jti[TSR_ID_MAX + 1];
    char username[TSR_USERNAME_MAX + 1];
    char roles[TSR_BEARER_ROLES_MAX + 1];  /* comma-separated */
    char scope[TSR_SCOPE_MAX + 1];
    int64_t exp, iat;
    int cached;                            /* answered from the verified-token cache */
} tsr_bearer;

/* Verifies an access token by SPEC section 4's rules (signature with a kid of our
 * keyring and its pinned alg, typ at+jwt, iss, aud, exp/nbf with 30 s leeway, at
 * most 8 KiB, strict base64url and JSON), then by mode: STATELESS nothing more;
 * REVOCATION_LIST its sid and jti must not be in the revoked set; STATEFUL also
 * its session must exist unexpired in the store with an enabled user (roles and
 * username then come from the store). A bounded cache keyed by SHA-256 of the
 * token skips the signature check for a token verified before (entries honour
 * exp; the revoked set and the store are still consulted per mode). Errors: the
 * TSR_ERR_TOKEN_* reasons, TSR_ERR_TOKEN_REVOKED, TSR_ERR_UNAVAILABLE (stateful,
 * store down). */
TSR_MUST_CHECK tsr_err tsr_auth_bearer_verify(tsr_auth *a, const char *token, size_t len,
                                              tsr_verify_mode mode, int64_t now,
                                              tsr_bearer *out /* OUT */);

/* RFC 7662 introspection (the caller checks the admin key). */
typedef struct tsr_token_info {
    int active;
    const char *token_type;          /* "access_token" or "refresh_token" (static) */
    char sub[TSR_ID_MAX + 1];
    char sid[TSR_ID_MAX + 1];
    char jti[TSR_ID_MAX + 1];        /* access tokens */
    char username[TSR_USERNAME_MAX + 1];
    char scope[TSR_SCOPE_MAX + 1];
    int64_t exp, iat;
} tsr_token_info;

/* active = 1 for an access token that passes REVOCATION_LIST verification (and
 * whose session still exists), or a current refresh token of a live family;
 * active = 0 for anything else. TSR_ERR_UNAVAILABLE when the store is down. */
TSR_MUST_CHECK tsr_err tsr_auth_introspect(tsr_auth *a, const char *token, size_t len,
                                           int64_t now, tsr_token_info *out /* OUT */);

/* Verified-token cache statistics (for /metrics and the benchmark notes). */
void tsr_auth_cache_stats(tsr_auth *a, uint64_t *hits /* OUT */, uint64_t *misses /* OUT */);

#endif
