/* store.h: the storage interface of tessera (a vtable) and its records.
 *
 * Backends (SQLite, PostgreSQL) implement tsr_store_ops; callers use
 * only the tsr_store_* dispatch functions below, never a backend directly. Every
 * function is safe to call from any request thread at the same time; a backend
 * keeps one connection per thread or a pool. Every multi-row change happens in one
 * transaction. Secrets are never stored: sessions are keyed by SHA-256 of the
 * cookie secret (or refresh token); the public session id is a separate handle.
 * Errors are translated at this boundary: TSR_ERR_NOT_FOUND, TSR_ERR_EXISTS,
 * TSR_ERR_UNAVAILABLE (store down: callers deny), TSR_ERR_INTERNAL. */
#ifndef TSR_STORE_H
#define TSR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define TSR_ID_MAX 40          /* "usr_"/"ses_" + 22 base64url chars, and room */
#define TSR_USERNAME_MAX 64
#define TSR_PWHASH_MAX 192     /* libsodium Argon2id encoded string */
#define TSR_ROLES_MAX 512      /* comma-separated role names */
#define TSR_IP_MAX 64
#define TSR_UA_MAX 256
#define TSR_META_MAX 512
#define TSR_HASH_BYTES 32
#define TSR_SCOPE_MAX 255      /* space-separated OAuth scope of a refresh family */
#define TSR_KID_STORE_MAX 128  /* a signing key's kid */
#define TSR_ALG_NAME_MAX 15    /* "HS256" ... "EdDSA" */
#define TSR_KEY_JWK_MAX 16383  /* a private JWK as JSON (RSA 8192 fits) */
#define TSR_SEALED_MAX 128     /* a sealed refresh successor (nonce + ciphertext + tag) */

typedef struct tsr_user {
    char id[TSR_ID_MAX + 1];
    char username[TSR_USERNAME_MAX + 1];   /* as registered; unique case-insensitively */
    char pwhash[TSR_PWHASH_MAX + 1];       /* Argon2id encoded */
    char roles[TSR_ROLES_MAX + 1];         /* "a,b"; empty for none */
    int disabled;
    int64_t created_at, updated_at;
} tsr_user;

typedef enum tsr_session_kind {
    TSR_SESSION_INVALID = 0,
    TSR_SESSION_COOKIE,
    TSR_SESSION_REFRESH
} tsr_session_kind;

typedef struct tsr_session {
    char id[TSR_ID_MAX + 1];               /* public handle, also the token "sid" */
    uint8_t secret_hash[TSR_HASH_BYTES];   /* SHA-256 of the cookie secret */
    char user_id[TSR_ID_MAX + 1];
    tsr_session_kind kind;
    int64_t created_at, last_seen_at;
    int64_t expires_at;                    /* absolute expiry */
    int64_t idle_expires_at;               /* slides with use */
    char ip[TSR_IP_MAX + 1];
    char user_agent[TSR_UA_MAX + 1];
    char scope[TSR_SCOPE_MAX + 1];         /* refresh families: the granted scope; "" */
    int64_t generation;                    /* refresh families: rotations so far; 0 */
} tsr_session;

/* What a refresh-token look-up found (tsr_store_refresh_lookup). */
typedef struct tsr_refresh_match {
    int spent;                  /* 0: the hash is the family's current token;
                                   1: a token of this family already rotated away */
    int64_t spent_generation;   /* spent: the generation the token had (session
                                   generation - 1 means it is the latest spent one) */
    int64_t spent_at;           /* spent: when it was rotated away */
    uint8_t sealed[TSR_SEALED_MAX]; /* the current token sealed under a key derived from
                                       the latest spent token (for the reuse grace);
                                       filled whether the match is current or spent */
    size_t sealed_len;          /* 0 before the first rotation (or after a rotation
                                   that stored none) */
} tsr_refresh_match;

/* Signing keys. States are stored as these numbers: never renumber. */
typedef enum tsr_key_state {
    TSR_KEY_STATE_INVALID = 0,
    TSR_KEY_STATE_NEXT = 1,     /* published, not yet signing */
    TSR_KEY_STATE_ACTIVE = 2,   /* signs new tokens (exactly one) */
    TSR_KEY_STATE_RETIRED = 3   /* published until publish_until, then deleted */
} tsr_key_state;

typedef struct tsr_key_record {
    char kid[TSR_KID_STORE_MAX + 1];
    char alg[TSR_ALG_NAME_MAX + 1];
    tsr_key_state state;
    int64_t created_at;
    int64_t activated_at;       /* 0 until active */
    int64_t retired_at;         /* 0 until retired */
    int64_t publish_until;      /* retired: when the last token it signed has expired */
    char jwk[TSR_KEY_JWK_MAX + 1]; /* SECRET: the private JWK (JSON); wipe after use */
} tsr_key_record;

/* Revocations: the durable log that feeds every instance's in-memory revoked set.
 * Kinds are stored as these numbers: never renumber. */
typedef enum tsr_revocation_kind {
    TSR_REVOKE_INVALID = 0,
    TSR_REVOKE_SID = 1,         /* a session ended: every access token with this sid */
    TSR_REVOKE_JTI = 2          /* one access token */
} tsr_revocation_kind;

typedef struct tsr_revocation {
    int64_t seq;                /* increasing, assigned by the store */
    tsr_revocation_kind kind;
    char value[TSR_ID_MAX + 1]; /* the sid or jti */
    int64_t revoked_at;
    int64_t expires_at;         /* jti: the token's exp; sid: 0 (the reader adds the
                                   longest access-token lifetime to revoked_at) */
} tsr_revocation;

typedef struct tsr_store tsr_store;

typedef struct tsr_store_ops {
    const char *name;
    void (*close)(tsr_store *s);
    tsr_err (*ping)(tsr_store *s);
    tsr_err (*user_create)(tsr_store *s, const tsr_user *u);
    tsr_err (*user_get)(tsr_store *s, const char *id, tsr_user *out);
    tsr_err (*user_get_by_name)(tsr_store *s, const char *username, tsr_user *out);
    tsr_err (*user_list)(tsr_store *s, const char *after, size_t limit, tsr_user *out,
                         size_t *n);
    tsr_err (*user_set_pwhash)(tsr_store *s, const char *id, const char *old_pwhash,
                               const char *new_pwhash, int require_enabled, int64_t updated_at);
    tsr_err (*user_set_flags)(tsr_store *s, const char *id, const char *roles, int disabled,
                              int64_t updated_at);
    tsr_err (*user_delete)(tsr_store *s, const char *id);
    tsr_err (*session_create)(tsr_store *s, const tsr_session *ss, size_t max_per_user,
                              int64_t now);
    tsr_err (*session_get)(tsr_store *s, const char *id, tsr_session *out);
    tsr_err (*session_get_by_hash)(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES],
                                   tsr_session *out);
    tsr_err (*session_resolve)(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES],
                               tsr_session *ss, tsr_user *u);
    tsr_err (*session_touch)(tsr_store *s, const char *id, int64_t last_seen_at,
                             int64_t idle_expires_at);
    tsr_err (*session_list)(tsr_store *s, const char *user_id, int64_t now, tsr_session *out,
                            size_t max, size_t *n);
    tsr_err (*session_delete)(tsr_store *s, const char *id);
    tsr_err (*session_delete_user)(tsr_store *s, const char *user_id, const char *except_id,
                                   size_t *deleted);
    tsr_err (*session_rotate)(tsr_store *s, const char *old_id, const tsr_session *fresh);
    tsr_err (*password_change)(tsr_store *s, const char *user_id, const char *old_pwhash,
                               const char *new_pwhash, const char *keep_session_id,
                               const tsr_session *fresh, int64_t now, size_t *revoked);
    tsr_err (*session_count)(tsr_store *s, int64_t now, size_t *n);
    tsr_err (*purge_expired)(tsr_store *s, int64_t now, size_t *purged);
    tsr_err (*meta_get)(tsr_store *s, const char *key, char *out, size_t cap);
    tsr_err (*meta_set)(tsr_store *s, const char *key, const char *value);
    tsr_err (*meta_insert)(tsr_store *s, const char *key, const char *value);
    tsr_err (*refresh_lookup)(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES], tsr_session *ss,
                              tsr_user *u, tsr_refresh_match *m);
    tsr_err (*refresh_rotate)(tsr_store *s, const char *session_id, int64_t generation,
                              const uint8_t new_hash[TSR_HASH_BYTES], const uint8_t *sealed,
                              size_t sealed_len, int64_t now, int64_t idle_expires_at);
    tsr_err (*revocation_add)(tsr_store *s, tsr_revocation_kind kind, const char *value,
                              int64_t revoked_at, int64_t expires_at);
    tsr_err (*revocation_since)(tsr_store *s, int64_t after_seq, int64_t revoked_since,
                                tsr_revocation *out, size_t max, size_t *n);
    tsr_err (*revocation_purge)(tsr_store *s, int64_t revoked_before, size_t *purged);
    tsr_err (*key_list)(tsr_store *s, tsr_key_record *out, size_t max, size_t *n);
    tsr_err (*key_rotate)(tsr_store *s, const char *expect_active_kid,
                          const tsr_key_record *new_active, const tsr_key_record *new_next,
                          int64_t now, int64_t publish_until);
} tsr_store_ops;

/* Every backend struct begins with this. */
struct tsr_store {
    const tsr_store_ops *ops;
};

/* Opens the store named by url: "sqlite:PATH" (creates the file and its folder,
 * runs migrations) or "postgresql://..." / "postgres://..." (a libpq connection
 * URI; runs migrations). TSR_ERR_UNSUPPORTED for another scheme. */
TSR_MUST_CHECK tsr_err tsr_store_open(const char *url, tsr_store **out /* OUT */);
/* tsr_store_open with the most connections the backend may hold at once
 * (0: its default). A server passes its request threads + hashing threads + a
 * few for background work, so that a pool never outgrows what the database
 * allows (PostgreSQL's max_connections is shared by every instance). SQLite
 * ignores it. */
TSR_MUST_CHECK tsr_err tsr_store_open_pool(const char *url, size_t max_conns,
                                           tsr_store **out /* OUT */);
void tsr_store_close(tsr_store *s); /* NULL is a no-op */

TSR_MUST_CHECK tsr_err tsr_store_ping(tsr_store *s);

/* Users. Usernames are unique case-insensitively: TSR_ERR_EXISTS when taken. */
TSR_MUST_CHECK tsr_err tsr_store_user_create(tsr_store *s, const tsr_user *u);
TSR_MUST_CHECK tsr_err tsr_store_user_get(tsr_store *s, const char *id, tsr_user *out /* OUT */);
/* Case-insensitive look-up. */
TSR_MUST_CHECK tsr_err tsr_store_user_get_by_name(tsr_store *s, const char *username,
                                                  tsr_user *out /* OUT */);
/* Users ordered by id, strictly after `after` (NULL: from the start), at most limit. */
TSR_MUST_CHECK tsr_err tsr_store_user_list(tsr_store *s, const char *after, size_t limit,
                                           tsr_user *out /* OUT */, size_t *n /* OUT */);
/* There is no whole-row update on purpose: a caller that read a row, spent a second
 * hashing, then wrote the row back would undo whatever an administrator changed in
 * between. Each write below touches only its own columns. */
/* Compare-and-swap of the password hash: sets pwhash = new_pwhash and updated_at
 * only while the stored hash still equals old_pwhash (and, with require_enabled,
 * the user is not disabled). TSR_ERR_NOT_FOUND when no such row matched: unknown
 * user, hash changed meanwhile, or disabled. TSR_ERR_INVALID for an empty or
 * over-long new_pwhash. */
TSR_MUST_CHECK tsr_err tsr_store_user_set_pwhash(tsr_store *s, const char *id,
                                                 const char *old_pwhash, const char *new_pwhash,
                                                 int require_enabled, int64_t updated_at);
/* Sets roles (NULL: unchanged) and disabled (-1: unchanged, 0 or 1) and updated_at;
 * no other column. TSR_ERR_NOT_FOUND for an unknown user, TSR_ERR_INVALID for
 * roles over TSR_ROLES_MAX or another disabled value. */
TSR_MUST_CHECK tsr_err tsr_store_user_set_flags(tsr_store *s, const char *id, const char *roles,
                                                int disabled, int64_t updated_at);
/* Deletes the user and all their sessions, in one transaction. */
TSR_MUST_CHECK tsr_err tsr_store_user_delete(tsr_store *s, const char *id);

/* Sessions. create inserts and, in the same transaction, deletes the user's
 * oldest sessions beyond max_per_user (0: no cap) and their expired ones. The
 * insert checks in the same statement that the user exists and is not disabled:
 * TSR_ERR_NOT_FOUND otherwise, so a login racing an admin disable cannot leave a
 * session behind that would come back alive on enable. kind, scope and generation
 * are stored as given (TSR_ERR_INVALID for a negative generation). */
TSR_MUST_CHECK tsr_err tsr_store_session_create(tsr_store *s, const tsr_session *ss,
                                                size_t max_per_user, int64_t now);
TSR_MUST_CHECK tsr_err tsr_store_session_get(tsr_store *s, const char *id,
                                             tsr_session *out /* OUT */);
TSR_MUST_CHECK tsr_err tsr_store_session_get_by_hash(tsr_store *s,
                                                     const uint8_t hash[TSR_HASH_BYTES],
                                                     tsr_session *out /* OUT */);
/* The cookie hot path: the session with this secret hash and its user, read in
 * one statement (one read transaction). Expiry is the caller's to check. The
 * user's pwhash is left empty: whoever needs it reads the user again. */
TSR_MUST_CHECK tsr_err tsr_store_session_resolve(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES],
                                                 tsr_session *ss /* OUT */,
                                                 tsr_user *u /* OUT */);
TSR_MUST_CHECK tsr_err tsr_store_session_touch(tsr_store *s, const char *id, int64_t last_seen_at,
                                               int64_t idle_expires_at);
/* The user's unexpired sessions, newest first, at most max. */
TSR_MUST_CHECK tsr_err tsr_store_session_list(tsr_store *s, const char *user_id, int64_t now,
                                              tsr_session *out /* OUT */, size_t max,
                                              size_t *n /* OUT */);
TSR_MUST_CHECK tsr_err tsr_store_session_delete(tsr_store *s, const char *id);
/* Deletes every session of the user except except_id (NULL: all). */
TSR_MUST_CHECK tsr_err tsr_store_session_delete_user(tsr_store *s, const char *user_id,
                                                     const char *except_id,
                                                     size_t *deleted /* OUT */);
/* Replaces a session by a fresh one (new id and secret) in one transaction.
 * TSR_ERR_NOT_FOUND when old_id is gone, is not fresh->user_id's, or that user is
 * disabled or deleted (then nothing changes). */
TSR_MUST_CHECK tsr_err tsr_store_session_rotate(tsr_store *s, const char *old_id,
                                                const tsr_session *fresh);
/* A user's own password change, in ONE transaction, all or nothing:
 * 1. pwhash = new_pwhash where the stored hash still equals old_pwhash and the
 *    user is not disabled (compare-and-swap, updated_at = now);
 * 2. delete keep_session_id, which must be the user's (the session the change was
 *    made from);
 * 3. delete every other session of the user (*revoked counts them);
 * 4. insert fresh (fresh->user_id must be user_id, else TSR_ERR_INVALID).
 * TSR_ERR_NOT_FOUND, with nothing changed, when step 1 or 2 matches no row: the
 * hash changed, the user was disabled or deleted, or the current session was
 * revoked meanwhile. A concurrent revoke-all or disable thus lands either before
 * (this fails) or after (it takes the fresh session too). */
TSR_MUST_CHECK tsr_err tsr_store_password_change(tsr_store *s, const char *user_id,
                                                 const char *old_pwhash, const char *new_pwhash,
                                                 const char *keep_session_id,
                                                 const tsr_session *fresh, int64_t now,
                                                 size_t *revoked /* OUT */);
/* Unexpired sessions in the store (for /metrics). */
TSR_MUST_CHECK tsr_err tsr_store_session_count(tsr_store *s, int64_t now, size_t *n /* OUT */);
/* Deletes sessions past their absolute or idle expiry. */
TSR_MUST_CHECK tsr_err tsr_store_purge_expired(tsr_store *s, int64_t now, size_t *purged /* OUT */);

/* Small key/value settings (admin key hash, schema notes). */
TSR_MUST_CHECK tsr_err tsr_store_meta_get(tsr_store *s, const char *key, char *out /* OUT */,
                                          size_t cap);
TSR_MUST_CHECK tsr_err tsr_store_meta_set(tsr_store *s, const char *key, const char *value);
/* Inserts key only when it is absent: TSR_ERR_EXISTS, nothing changed, when it is
 * there already (the first of several instances starting at once wins; the others
 * read its value). Same checks as meta_set. */
TSR_MUST_CHECK tsr_err tsr_store_meta_insert(tsr_store *s, const char *key, const char *value);

/* ---- refresh families (sessions of kind TSR_SESSION_REFRESH) ----
 * A family is a session row whose secret_hash is the SHA-256 of its CURRENT refresh
 * token and whose generation counts rotations. Every rotated-away token's hash is
 * kept (with its generation and time) until the family ends, so that presenting
 * any spent token is recognised: within the grace it gets the successor, after it
 * the family dies. A family is created with tsr_store_session_create (kind
 * REFRESH, generation 0, scope set). */

/* Finds the refresh family of a token hash: first as a current token (m->spent 0),
 * else as a spent one (m->spent 1). The session and its user in one read (pwhash
 * left empty, as session_resolve). TSR_ERR_NOT_FOUND for an unknown hash, a cookie
 * session's hash, or a family that has ended. Expiry is the caller's to check. */
TSR_MUST_CHECK tsr_err tsr_store_refresh_lookup(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES],
                                                tsr_session *ss /* OUT */,
                                                tsr_user *u /* OUT */,
                                                tsr_refresh_match *m /* OUT */);

/* Rotation, linearizable per family, in ONE transaction: only while the family
 * session_id still has this generation (compare-and-swap) and its user is enabled,
 * record the current hash as spent (with that generation and now), set
 * secret_hash = new_hash, generation + 1, the sealed successor, last_seen_at = now
 * and idle_expires_at. TSR_ERR_CONFLICT, with nothing changed, when the
 * generation moved on (another rotation won: look the token up again);
 * TSR_ERR_NOT_FOUND when the family is gone (or session_id is not a refresh
 * family) or its user disabled or deleted, whatever the generation: NOT_FOUND wins
 * over CONFLICT; TSR_ERR_INVALID for sealed_len over TSR_SEALED_MAX or sealed NULL
 * with sealed_len > 0; sealed_len 0 stores no successor. TSR_ERR_EXISTS, nothing
 * changed, when new_hash is already another session's. */
TSR_MUST_CHECK tsr_err tsr_store_refresh_rotate(tsr_store *s, const char *session_id,
                                                int64_t generation,
                                                const uint8_t new_hash[TSR_HASH_BYTES],
                                                const uint8_t *sealed, size_t sealed_len,
                                                int64_t now, int64_t idle_expires_at);

/* ---- revocations ----
 * Every statement that ends a session before its expiry (any delete of a session
 * whose expires_at and idle_expires_at are still in the future by the store's
 * clock: logout, revoke, rotation, eviction by the cap, password change, disable,
 * user delete) appends a TSR_REVOKE_SID row in the same transaction (the backend
 * does it itself, e.g. with a trigger, so no path can forget it). Purging expired
 * sessions appends nothing. Such rows carry revoked_at from the store's clock, not
 * from any caller's now. Deleting a session that does not exist appends nothing;
 * a transaction rolled back takes its rows with it. */

/* Appends one revocation (an access token's jti, from RFC 7009 revoke; a sid is
 * accepted too). TSR_ERR_INVALID for an empty or over-long value or an unknown
 * kind. */
TSR_MUST_CHECK tsr_err tsr_store_revocation_add(tsr_store *s, tsr_revocation_kind kind,
                                                const char *value, int64_t revoked_at,
                                                int64_t expires_at);
/* Revocations with seq > after_seq and revoked_at >= revoked_since, by seq, at
 * most max. Callers page with the last seq seen: a seq is never reused (not even
 * after a purge emptied the log), and rows become visible in seq order. */
TSR_MUST_CHECK tsr_err tsr_store_revocation_since(tsr_store *s, int64_t after_seq,
                                                  int64_t revoked_since,
                                                  tsr_revocation *out /* OUT */, size_t max,
                                                  size_t *n /* OUT */);
/* Deletes revocations with revoked_at < revoked_before and, for jti rows,
 * expires_at < revoked_before too. */
TSR_MUST_CHECK tsr_err tsr_store_revocation_purge(tsr_store *s, int64_t revoked_before,
                                                  size_t *purged /* OUT */);

/* ---- signing keys ---- */

/* Every stored key (next, active and retired), oldest first (created_at, then
 * insertion order), at most max. Each out[i].jwk is SECRET: wipe the array after
 * use; on failure the store has wiped it. */
TSR_MUST_CHECK tsr_err tsr_store_key_list(tsr_store *s, tsr_key_record *out /* OUT */,
                                          size_t max, size_t *n /* OUT */);
/* Key rotation in ONE transaction, compare-and-swap on the active key:
 * 1. the active key's kid must equal expect_active_kid ("" : there is no active
 *    key), else TSR_ERR_CONFLICT with nothing changed;
 * 2. the active key (if any) becomes retired (retired_at = now, publish_until);
 * 3. new_active NULL: the NEXT key (the oldest, should there be several) becomes
 *    active (activated_at = now; TSR_ERR_NOT_FOUND, nothing changed, when there is
 *    none); new_active set: it is inserted as active and any NEXT key is retired
 *    with retired_at = publish_until = now;
 * 4. new_next (may be NULL) is inserted as NEXT;
 * 5. retired keys with publish_until < now are deleted (a key retired in step 3
 *    with publish_until = now thus stays listed until a later rotation; readers
 *    should publish a retired key only while publish_until >= their now).
 * From the records only kid, alg, jwk and created_at are used (created_at 0: now);
 * state, activated_at, retired_at and publish_until are set by the steps.
 * TSR_ERR_INVALID for an empty or unterminated kid, alg or jwk; TSR_ERR_EXISTS,
 * nothing changed, for a duplicate kid. The jwk is bound, never copied. */
TSR_MUST_CHECK tsr_err tsr_store_key_rotate(tsr_store *s, const char *expect_active_kid,
                                            const tsr_key_record *new_active,
                                            const tsr_key_record *new_next, int64_t now,
                                            int64_t publish_until);

#endif
