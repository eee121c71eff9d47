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
    tsr_err (*user_update)(tsr_store *s, const tsr_user *u);
    tsr_err (*user_delete)(tsr_store *s, const char *id);
    tsr_err (*session_create)(tsr_store *s, const tsr_session *ss, size_t max_per_user,
                              int64_t now);
    tsr_err (*session_get)(tsr_store *s, const char *id, tsr_session *out);
    tsr_err (*session_get_by_hash)(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES],
                                   tsr_session *out);
    tsr_err (*session_touch)(tsr_store *s, const char *id, int64_t last_seen_at,
                             int64_t idle_expires_at);
    tsr_err (*session_list)(tsr_store *s, const char *user_id, int64_t now, tsr_session *out,
                            size_t max, size_t *n);
    tsr_err (*session_delete)(tsr_store *s, const char *id);
    tsr_err (*session_delete_user)(tsr_store *s, const char *user_id, const char *except_id,
                                   size_t *deleted);
    tsr_err (*session_rotate)(tsr_store *s, const char *old_id, const tsr_session *fresh);
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
/* Writes username, pwhash, roles, disabled, updated_at of the user with u->id. */
TSR_MUST_CHECK tsr_err tsr_store_user_update(tsr_store *s, const tsr_user *u);
/* Deletes the user and all their sessions, in one transaction. */
TSR_MUST_CHECK tsr_err tsr_store_user_delete(tsr_store *s, const char *id);

/* Sessions. create inserts and, in the same transaction, deletes the user's
 * oldest sessions beyond max_per_user (0: no cap) and their expired ones. */
TSR_MUST_CHECK tsr_err tsr_store_session_create(tsr_store *s, const tsr_session *ss,
                                                size_t max_per_user, int64_t now);
TSR_MUST_CHECK tsr_err tsr_store_session_get(tsr_store *s, const char *id,
                                             tsr_session *out /* OUT */);
TSR_MUST_CHECK tsr_err tsr_store_session_get_by_hash(tsr_store *s,
                                                     const uint8_t hash[TSR_HASH_BYTES],
                                                     tsr_session *out /* OUT */);
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
/* Replaces a session by a fresh one (new id and secret) in one transaction. */
TSR_MUST_CHECK tsr_err tsr_store_session_rotate(tsr_store *s, const char *old_id,
                                                const tsr_session *fresh);
/* Unexpired sessions in the store (for /metrics). */
TSR_MUST_CHECK tsr_err tsr_store_session_count(tsr_store *s, int64_t now, size_t *n /* OUT */);
/* Deletes sessions past their absolute or idle expiry. */
TSR_MUST_CHECK tsr_err tsr_store_purge_expired(tsr_store *s, int64_t now, size_t *purged /* OUT */);

/* Small key/value settings (admin key hash, schema notes). */
TSR_MUST_CHECK tsr_err tsr_store_meta_get(tsr_store *s, const char *key, char *out /* OUT */,
                                          size_t cap);
TSR_MUST_CHECK tsr_err tsr_store_meta_set(tsr_store *s, const char *key, const char *value);

#endif
