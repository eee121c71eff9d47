/* auth.h: accounts, passwords, cookie sessions, CSRF, login rate limits and the
 * admin key: the logic behind the HTTP handlers and the CLI, free of HTTP.
 *
 * A tsr_auth holds the settings, a borrowed store and the in-memory login rate
 * limiter. Every function is thread-safe. Time is always passed in (`now`, Unix
 * seconds, e.g. time(NULL)) so tests need no sleeping. Functions that hash a
 * password (user_create, authenticate/login, password_change, user_set_password)
 * cost an Argon2id computation: call them from the hashing pool (common/pool.h),
 * never on a request thread.
 *
 * Secrets: the cookie value (43 base64url chars of a 32-byte random secret) is
 * handed back once in a tsr_auth_cred and never stored: the store keys sessions
 * by SHA-256 of the secret. The CSRF token is derived, not stored:
 * base64url(SHA-256("tessera csrf v1" || secret)). Callers wipe a tsr_auth_cred
 * with tsr_auth_cred_wipe and passwords with tsr_wipe once done.
 *
 * Errors (common/err.h): TSR_ERR_INVALID (malformed input), TSR_ERR_WEAK_PASSWORD,
 * TSR_ERR_USERNAME_TAKEN, TSR_ERR_INVALID_CREDENTIALS, TSR_ERR_UNAUTHENTICATED,
 * TSR_ERR_RATE_LIMITED, TSR_ERR_CSRF, TSR_ERR_NOT_FOUND, TSR_ERR_UNAVAILABLE (the
 * store is down: deny), TSR_ERR_NOMEM, TSR_ERR_INTERNAL. Outputs are zeroed on
 * entry, so a failed call leaves no half value. */
#ifndef TSR_AUTH_H
#define TSR_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/err.h"
#include "crypto/crypto.h"
#include "store/redis.h"
#include "store/store.h"

#define TSR_SESSION_SECRET_BYTES 32
#define TSR_COOKIE_VALUE_CHARS 43           /* base64url of 32 bytes, no padding */
#define TSR_CSRF_TOKEN_CHARS 43             /* base64url of SHA-256 */
#define TSR_ADMIN_KEY_PREFIX "tsr_admin_"
#define TSR_ADMIN_KEY_CHARS (10 + 43)       /* prefix + base64url of 32 bytes */
#define TSR_ADMIN_KEY_MIN_BYTES 16          /* shortest admin.key we accept */
#define TSR_ADMIN_KEY_MAX_BYTES 512
#define TSR_ADMIN_KEY_META "admin_key_sha256" /* store meta key: hex SHA-256 */
#define TSR_ROLE_MAX 32                     /* one role name: [a-z0-9_.-]{1,32} */
#define TSR_AUTH_LIST_MAX 1000              /* largest page of users */
#define TSR_SESSION_TOUCH_INTERVAL 60       /* idle expiry slides at most once a minute */
#define TSR_RATE_ENTRIES_MAX 100000         /* rate-limiter keys tracked at once */
#define TSR_ISSUER_MAX 255                  /* tokens.issuer */
#define TSR_AUDIENCE_MAX 127                /* tokens.audience */

/* Settings taken from the config (see tsr_auth_opts_from_config). */
typedef struct tsr_auth_opts {
    tsr_pwparams pw;              /* Argon2id cost of new hashes */
    int64_t idle_ttl;             /* session idle lifetime, seconds, >= 1 */
    int64_t absolute_ttl;         /* session absolute lifetime, seconds, >= 1 */
    size_t max_per_user;          /* session cap per user; 0: none */
    uint32_t login_max_failures;  /* failures allowed per window, per username and per IP */
    int64_t login_window;         /* seconds, >= 1 */
    /* Token and hybrid mode (tokens.h). A zero field takes the SPEC default. */
    tsr_alg alg;                  /* algorithm of new signing keys; ES256 */
    char issuer[TSR_ISSUER_MAX + 1];     /* "": the public URL (tsr_auth_set_default_issuer) */
    char audience[TSR_AUDIENCE_MAX + 1]; /* "tessera" */
    int64_t access_ttl;           /* 900 */
    int64_t refresh_ttl;          /* 30 days: absolute lifetime of a refresh family */
    int64_t refresh_idle_ttl;     /* 7 days */
    int64_t reuse_grace;          /* 10; -1 means none (0 takes the default) */
    int64_t key_rotation;         /* 0: no automatic rotation */
    tsr_verify_mode bearer;       /* revocation-list */
    size_t cache_entries;         /* 65536; SIZE_MAX means off (0 takes the default) */
} tsr_auth_opts;

typedef struct tsr_auth tsr_auth;

/* A freshly issued session: its record and its two secrets. Wipe it with
 * tsr_auth_cred_wipe. */
typedef struct tsr_auth_cred {
    tsr_session session;                      /* as stored (no secret in it) */
    char cookie[TSR_COOKIE_VALUE_CHARS + 1];  /* SECRET: the Set-Cookie value */
    char csrf[TSR_CSRF_TOKEN_CHARS + 1];      /* SECRET: the X-CSRF-Token value */
} tsr_auth_cred;

/* Copies the auth settings out of a loaded config. TSR_ERR_INVALID/UNSUPPORTED
 * for Argon2 parameters libsodium cannot use. */
TSR_MUST_CHECK tsr_err tsr_auth_opts_from_config(const tsr_config *c,
                                                 tsr_auth_opts *out /* OUT */);

/* Creates the context. store is borrowed and must outlive it. opts is copied.
 * TSR_ERR_INVALID for bad options. Allocates. */
TSR_MUST_CHECK tsr_err tsr_auth_new(tsr_store *store, const tsr_auth_opts *opts,
                                    tsr_auth **out /* OUT */);
void tsr_auth_free(tsr_auth *a); /* NULL is a no-op */

tsr_store *tsr_auth_get_store(const tsr_auth *a);          /* borrowed */

void tsr_auth_cred_wipe(tsr_auth_cred *c);

/* ---- validation ---- */

/* TSR_OK for 1..64 bytes of [A-Za-z0-9._@+-], else TSR_ERR_INVALID. */
TSR_MUST_CHECK tsr_err tsr_auth_username_check(const char *name, size_t n);

/* TSR_OK for "" or a comma-separated list of distinct [a-z0-9_.-]{1,32} names
 * fitting TSR_ROLES_MAX, no blanks; else TSR_ERR_INVALID. */
TSR_MUST_CHECK tsr_err tsr_auth_roles_check(const char *roles);

/* Nonzero when the comma-separated roles contain exactly the role name. */
int tsr_auth_roles_has(const char *roles, const char *role, size_t rolelen);

/* ---- users ---- */

/* Creates a user (id "usr_" + 22 base64url chars) with a new Argon2id hash.
 * roles NULL or "" for none. TSR_ERR_INVALID (username or roles),
 * TSR_ERR_WEAK_PASSWORD, TSR_ERR_USERNAME_TAKEN (case-insensitively), TSR_ERR_UNAVAILABLE.
 * out (may be NULL) gets the stored record, pwhash included. HASHES. */
TSR_MUST_CHECK tsr_err tsr_auth_user_create(tsr_auth *a, const char *username, size_t ulen,
                                            const char *pw, size_t pwlen, const char *roles,
                                            int64_t now, tsr_user *out /* OUT */);

/* Checks a username and password: TSR_OK and the user, or
 * TSR_ERR_INVALID_CREDENTIALS alike for an unknown user (after a dummy Argon2id
 * verify of the same cost), a wrong password, a disabled user and a malformed
 * username or password. When the stored hash uses other parameters than the
 * options, it is replaced (best effort; out then has the new hash).
 * TSR_ERR_UNAVAILABLE when the store is down. No rate limiting (see login). HASHES. */
TSR_MUST_CHECK tsr_err tsr_auth_authenticate(tsr_auth *a, const char *username, size_t ulen,
                                             const char *pw, size_t pwlen, int64_t now,
                                             tsr_user *out /* OUT */);

/* The user by id. TSR_ERR_NOT_FOUND. */
TSR_MUST_CHECK tsr_err tsr_auth_user_get(tsr_auth *a, const char *id, tsr_user *out /* OUT */);

/* The user by id ("usr_...") or else by username (case-insensitive). For the CLI. */
TSR_MUST_CHECK tsr_err tsr_auth_user_find(tsr_auth *a, const char *id_or_name,
                                          tsr_user *out /* OUT */);

/* One page of users ordered by id, strictly after `after` (NULL or "": first page);
 * limit 1..TSR_AUTH_LIST_MAX (TSR_ERR_INVALID otherwise); out holds limit entries.
 * *next is set to the page's last id when more users follow (one row is read
 * ahead), "" on the last page, even a full one. */
TSR_MUST_CHECK tsr_err tsr_auth_user_list(tsr_auth *a, const char *after, size_t limit,
                                          tsr_user *out /* OUT */, size_t *n /* OUT */,
                                          char next[TSR_ID_MAX + 1] /* OUT */);

/* Admin change: roles (NULL: unchanged; "" clears) and disabled (-1: unchanged,
 * 0 or 1); only those columns are written, so a concurrent password change is
 * never undone. Disabling deletes every session of the user (*revoked counts
 * them; may be NULL). TSR_ERR_NOT_FOUND, TSR_ERR_INVALID (roles). out (may be
 * NULL) gets the record as read back after the change. */
TSR_MUST_CHECK tsr_err tsr_auth_user_patch(tsr_auth *a, const char *id, const char *roles,
                                           int disabled, int64_t now, tsr_user *out /* OUT */,
                                           size_t *revoked /* OUT */);

/* Deletes every session of the user. TSR_ERR_NOT_FOUND for an unknown user. */
TSR_MUST_CHECK tsr_err tsr_auth_user_revoke_all(tsr_auth *a, const char *id,
                                                size_t *revoked /* OUT */);

/* Deletes the user and all their sessions. TSR_ERR_NOT_FOUND. */
TSR_MUST_CHECK tsr_err tsr_auth_user_delete(tsr_auth *a, const char *id);

/* Admin password reset (CLI `user passwd`): new hash, every session deleted.
 * Writes only the hash (compare-and-swap against the hash read before hashing,
 * retried once), never roles or disabled. TSR_ERR_WEAK_PASSWORD,
 * TSR_ERR_NOT_FOUND, TSR_ERR_UNAVAILABLE (the hash changed under it twice). HASHES. */
TSR_MUST_CHECK tsr_err tsr_auth_user_set_password(tsr_auth *a, const char *id, const char *pw,
                                                  size_t pwlen, int64_t now);

/* ---- login rate limiting (in memory, per process) ----
 * Token buckets of login_max_failures failures refilled evenly over
 * login_window, one per username (case-folded) and one per IP; keys are kept as
 * SHA-256, never raw. ip may be NULL or "" (then only the username counts). */

/* TSR_OK when a login attempt may proceed, else TSR_ERR_RATE_LIMITED with
 * *retry_after (seconds, >= 1) until the next attempt is allowed. Cheap: call it
 * on the request thread before queuing the hashing work. */
TSR_MUST_CHECK tsr_err tsr_auth_login_check(tsr_auth *a, const char *username, size_t ulen,
                                            const char *ip, int64_t now,
                                            int64_t *retry_after /* OUT */);

/* Records the outcome: a failure costs a token in both buckets; a success clears
 * the username's bucket (not the IP's). */
void tsr_auth_login_record(tsr_auth *a, const char *username, size_t ulen, const char *ip,
                           int ok, int64_t now);

/* Forgets every bucket (tests, admin). */
void tsr_auth_login_reset(tsr_auth *a);

/* check + authenticate + record in one call, and audit log lines (login_ok,
 * login_failed, login_rate_limited; never the password). TSR_ERR_RATE_LIMITED
 * (with *retry_after) or what tsr_auth_authenticate returns. HASHES. */
TSR_MUST_CHECK tsr_err tsr_auth_login(tsr_auth *a, const char *username, size_t ulen,
                                      const char *pw, size_t pwlen, const char *ip,
                                      int64_t now, tsr_user *out /* OUT */,
                                      int64_t *retry_after /* OUT */);

/* ---- cookie sessions ---- */

/* Starts a cookie session for the user: new secret and id ("ses_" + 22 chars),
 * idle and absolute expiry from the options; evicts the user's oldest sessions
 * beyond max_per_user. ip and user_agent may be NULL; they are cut to the store's
 * caps and non-printable bytes replaced by '?'. TSR_ERR_INVALID_CREDENTIALS when
 * the user is disabled or deleted in the store by now (the store checks it in the
 * insert, so a login racing an admin disable leaves no session behind). */
TSR_MUST_CHECK tsr_err tsr_auth_session_create(tsr_auth *a, const tsr_user *u, const char *ip,
                                               const char *user_agent, int64_t now,
                                               tsr_auth_cred *out /* OUT */);

/* Resolves a cookie value to its session and user. TSR_ERR_UNAUTHENTICATED when
 * the value is malformed, unknown, past its idle or absolute expiry, not a cookie
 * session, or its user is gone or disabled. Looks up by SHA-256 of the secret.
 * Slides the idle expiry (min(now + idle_ttl, expires_at)), writing to the store
 * only when last_seen_at is at least TSR_SESSION_TOUCH_INTERVAL old; s then holds
 * the new values. TSR_ERR_UNAVAILABLE when the store is down. u may be NULL. */
TSR_MUST_CHECK tsr_err tsr_auth_session_resolve(tsr_auth *a, const char *cookie, size_t n,
                                                int64_t now, tsr_session *s /* OUT */,
                                                tsr_user *u /* OUT */);

/* The CSRF token of a cookie value: base64url(SHA-256("tessera csrf v1" || secret)).
 * TSR_ERR_INVALID for a malformed cookie value. */
TSR_MUST_CHECK tsr_err tsr_auth_csrf_derive(const char *cookie, size_t n,
                                            char out[TSR_CSRF_TOKEN_CHARS + 1] /* OUT */);

/* CT: TSR_OK when presented equals the cookie's CSRF token, else TSR_ERR_CSRF
 * (also for a missing or malformed value). */
TSR_MUST_CHECK tsr_err tsr_auth_csrf_check(const char *cookie, size_t n, const char *presented,
                                           size_t plen);

/* The user's live sessions, newest first, at most max. */
TSR_MUST_CHECK tsr_err tsr_auth_session_list(tsr_auth *a, const char *user_id, int64_t now,
                                             tsr_session *out /* OUT */, size_t max,
                                             size_t *n /* OUT */);

/* Revokes one of the user's own sessions (logout, DELETE /v1/sessions/{id}).
 * TSR_ERR_NOT_FOUND when no such session belongs to user_id (another user's id
 * included). */
TSR_MUST_CHECK tsr_err tsr_auth_session_revoke(tsr_auth *a, const char *user_id,
                                               const char *session_id);

/* Revokes every session of the user except except_id (NULL: all). */
TSR_MUST_CHECK tsr_err tsr_auth_session_revoke_others(tsr_auth *a, const char *user_id,
                                                      const char *except_id,
                                                      size_t *revoked /* OUT */);

/* POST /v1/users/me/password: verifies current_pw (TSR_ERR_INVALID_CREDENTIALS),
 * checks new_pw (TSR_ERR_WEAK_PASSWORD), stores its hash, deletes every other
 * session of the user, and rotates the current session to a new id and secret,
 * returned in out (the new cookie and CSRF token; expiries kept). The last three
 * are one store transaction that writes only the hash, and only if the hash
 * verified is still stored and the user enabled: TSR_ERR_UNAUTHENTICATED, with
 * nothing changed and no session created, when the user was disabled or deleted,
 * the hash changed, or the current session was revoked during the hashing.
 * HASHES (twice). */
TSR_MUST_CHECK tsr_err tsr_auth_password_change(tsr_auth *a, const tsr_session *current,
                                                const char *current_pw, size_t curlen,
                                                const char *new_pw, size_t newlen, int64_t now,
                                                tsr_auth_cred *out /* OUT */);

/* tsr_auth_password_change behind the login limiter, as tsr_auth_login is: a
 * wrong current password is a failed login of username from ip (the buckets are
 * shared, so a stolen cookie is no better an oracle than the login form), checked
 * here, on the hashing thread, so that a burst of concurrent guesses cannot all
 * pass before the first failure is recorded. TSR_ERR_RATE_LIMITED with
 * *retry_after, or what tsr_auth_password_change returns. HASHES (twice). */
TSR_MUST_CHECK tsr_err tsr_auth_password_change_limited(
    tsr_auth *a, const tsr_session *current, const char *username, const char *ip,
    const char *current_pw, size_t curlen, const char *new_pw, size_t newlen, int64_t now,
    tsr_auth_cred *out /* OUT */, int64_t *retry_after /* OUT */);

/* ---- admin key ---- */

/* At start-up. configured (admin.key / TESSERA_ADMIN_KEY; NULL or "" when unset)
 * replaces the stored hash (TSR_ERR_WEAK_KEY under TSR_ADMIN_KEY_MIN_BYTES).
 * Otherwise, when the store holds no hash, a key "tsr_admin_" + 43 chars is
 * generated, its SHA-256 hex stored in meta TSR_ADMIN_KEY_META, and the key
 * returned ONCE in generated (for printing; wipe it) with *was_generated = 1.
 * generated is "" and *was_generated 0 otherwise. The hash is cached in a. */
TSR_MUST_CHECK tsr_err tsr_auth_admin_key_init(tsr_auth *a, const char *configured,
                                               char generated[TSR_ADMIN_KEY_CHARS + 1] /* OUT */,
                                               int *was_generated /* OUT */);

/* CT: TSR_OK when the presented key hashes to the admin key's hash, else
 * TSR_ERR_UNAUTHENTICATED (also before admin_key_init, or for an empty key). */
TSR_MUST_CHECK tsr_err tsr_auth_admin_key_verify(tsr_auth *a, const char *key, size_t n);

/* ---- scale-out: Redis (cache.url = redis://...) ----
 * Attaches a Redis client (borrowed: free it with tsr_redis_free BEFORE
 * tsr_auth_free, which stops its subscriber thread, whose callbacks use a). Call
 * once at start-up, before serving: it replaces the rate-limiter salt by one
 * shared by every instance (kept in the store's meta table), subscribes to the
 * revocation channel, and from then on publishes this process's revocations,
 * answers cookie and stateful look-ups from Redis when it can, and keeps login
 * buckets in Redis. See hot.c for the failure rules. TSR_ERR_INVALID when one is
 * attached already; a store error when the salt cannot be read or written. */
TSR_MUST_CHECK tsr_err tsr_auth_attach_redis(tsr_auth *a, tsr_redis *r);

typedef struct tsr_auth_hot_stats {
    int attached;               /* a Redis client is attached */
    int redis_up;               /* its commands are not backing off */
    int subscribed;             /* the revocation feed is live */
    uint64_t session_hits, session_misses; /* session cache look-ups */
    uint64_t published, received;          /* revocation messages */
} tsr_auth_hot_stats;
void tsr_auth_hot_stats_get(tsr_auth *a, tsr_auth_hot_stats *out /* OUT */);

#endif
