/* store.h: the storage interface of tessera (a vtable) and its records.
 *
 * Backends (SQLite now, PostgreSQL later) implement tsr_store_ops; callers use
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
} tsr_session;

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
} tsr_store_ops;

/* Every backend struct begins with this. */
struct tsr_store {
    const tsr_store_ops *ops;
};

/* Opens the store named by url: "sqlite:PATH" (creates the file and its folder,
 * runs migrations). TSR_ERR_UNSUPPORTED for another scheme. */
TSR_MUST_CHECK tsr_err tsr_store_open(const char *url, tsr_store **out /* OUT */);
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
 * session behind that would come back alive on enable. */
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

#endif
