/* auth_int.h: what the files of src/auth/ share: the context and the login rate
 * limiter. Internal to src/auth/. */
#ifndef TSR_AUTH_INT_H
#define TSR_AUTH_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "auth/auth.h"
#include "auth/tokens.h"

#define TSR_RATE_KEY_BYTES 32

/* Redis side (hot.c). */
#define TSR_HOT_CHANNEL "tsr:revocations" /* pub/sub channel of revocations */
#define TSR_HOT_TTL 60                    /* seconds a cached session may live */
#define TSR_HOT_RECORD_MAX 1400           /* a cached session + user record */
#define TSR_HOT_PENDING_MAX 1024          /* revocations read, not yet published */
#define TSR_HOT_PENDING_AGE 2             /* seconds a read row waits to be published */
#define TSR_HOT_USER_SESSIONS_MAX 1024    /* sessions of one user forgotten at once */
#define TSR_HOT_MESSAGE_MAX 192           /* a revocation message with its MAC */
#define TSR_HOT_CLOCK_SLACK 60            /* seconds of clock difference allowed between instances */

typedef struct tsr_hot_pending {
    tsr_revocation_kind kind;
    int64_t until;                        /* when the revoked set may forget it */
    int64_t read_at;
    char value[TSR_ID_MAX + 1];
} tsr_hot_pending;

typedef struct tsr_rate tsr_rate;
typedef struct tsr_revset tsr_revset;
typedef struct tsr_vcache tsr_vcache;

/* One immutable snapshot of the signing keys (keys.c). Replaced whole, under
 * keys_rw, when the stored keys change; readers hold keys_rw for reading while
 * they use it. */
typedef struct tsr_keyring {
    tsr_jwks *verify;           /* next, active and live retired keys */
    tsr_jwk *active;            /* signs new tokens; NULL before keys_init */
    char *jwks_json;            /* the published set (public keys only) */
    size_t jwks_len;
    const char *algs[TSR_KEYS_MAX]; /* distinct algs of published keys (static names) */
    size_t nalgs;
    int64_t activated_at;       /* of the active key */
    int64_t next_expiry;        /* earliest publish_until of a live retired key, or 0 */
    uint8_t fingerprint[TSR_SHA256_BYTES]; /* of the effective key list */
} tsr_keyring;

struct tsr_auth {
    tsr_store *store;                 /* borrowed */
    tsr_auth_opts opts;
    tsr_rate *rate;
    uint8_t salt[16];                 /* per process: rate-limiter keys are unpredictable */
    pthread_mutex_t admin_mu;
    char admin_hash[TSR_SHA256_HEX_CHARS + 1]; /* "" until admin_key_init */
    /* Token mode (tokens.h). */
    pthread_rwlock_t keys_rw;
    pthread_mutex_t reload_mu;        /* one keyring reload at a time (keys.c) */
    tsr_keyring *keys;                /* NULL until keys_init */
    tsr_revset *revset;
    tsr_vcache *vcache;               /* NULL: cache off */
    pthread_mutex_t sync_mu;          /* one sync at a time; guards the fields below */
    int64_t revoked_seq;              /* last revocation row read */
    atomic_uint_fast64_t revocations_read; /* rows taken into the set (for /metrics) */
    int64_t keys_checked_at, purged_at, revset_purged_at;
    pthread_t sync_thread;
    int sync_running;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    int stop;
    /* Coalesced syncs: numbers of the last sync begun and the last one finished. */
    atomic_uint_fast64_t sync_begun, sync_done;
    /* Redis (hot.c); all NULL/0 with cache.url = memory. */
    tsr_redis *redis;                 /* borrowed */
    uint8_t cache_key[TSR_MAC_KEY_BYTES]; /* SECRET: MAC key of cached records (shared) */
    atomic_int feed_live;             /* subscription confirmed and caught up */
    atomic_uint_fast64_t resync_pending; /* nonzero: the subscription numbered so is
                                            confirmed, the log not yet read since */
    atomic_uint_fast64_t resync_gen;  /* subscriptions confirmed so far */
    atomic_uint_fast64_t sync_failed; /* number of the last sync that failed */
    tsr_hot_pending *pending;         /* under sync_mu */
    size_t npending;
    atomic_uint_fast64_t hot_hits, hot_misses, hot_published, hot_received;
};

/* Token-mode setup and teardown inside tsr_auth_new / tsr_auth_free (tokens.c). */
TSR_MUST_CHECK tsr_err tsr_auth_tokens_init(tsr_auth *a);
void tsr_auth_tokens_fini(tsr_auth *a);

/* Re-reads the stored keys and swaps the keyring when they changed (keys.c).
 * force: rebuild even when the fingerprint is unchanged. */
TSR_MUST_CHECK tsr_err tsr_auth_keys_reload(tsr_auth *a, int64_t now, int force);
void tsr_keyring_free(tsr_keyring *k);

/* Reads new revocation rows into the set (sync.c). Call with sync_mu NOT held. */
TSR_MUST_CHECK tsr_err tsr_auth_sync_revocations(tsr_auth *a, int64_t now);

/* Before a bearer check: when Redis is attached but its revocation feed is not
 * live, makes sure a store sync that BEGAN after this call has finished (joining
 * one in flight or running one), so no revocation committed before the request
 * arrived is missed. A no-op otherwise. TSR_ERR_UNAVAILABLE when the store
 * cannot be read (callers deny). */
TSR_MUST_CHECK tsr_err tsr_auth_revocations_fresh(tsr_auth *a, int64_t now);

/* ---- hot.c: Redis ---- */
/* Nonzero when Redis is attached and its revocation feed live: only then is the
 * session cache used. */
int tsr_auth_hot_live(tsr_auth *a);
/* A cached cookie session by its secret's hash: 1 and s, u filled (secret_hash
 * set) when present and its sid not revoked; 0 otherwise (read the store). */
int tsr_auth_hot_session_get(tsr_auth *a, const uint8_t hash[TSR_HASH_BYTES], int64_t now,
                             tsr_session *s /* OUT */, tsr_user *u /* OUT */);
void tsr_auth_hot_session_put(tsr_auth *a, const uint8_t hash[TSR_HASH_BYTES],
                              const tsr_session *s, const tsr_user *u, int64_t now);
/* The same by sid, for stateful bearer checks. */
int tsr_auth_hot_sid_get(tsr_auth *a, const char *sid, int64_t now, tsr_session *s /* OUT */,
                         tsr_user *u /* OUT */);
void tsr_auth_hot_sid_put(tsr_auth *a, const tsr_session *s, const tsr_user *u, int64_t now);
/* Deletes the cache entries of every live session of the user (after a change of
 * the user's roles, which ends no session). */
void tsr_auth_hot_forget_user(tsr_auth *a, const char *user_id, int64_t now);
/* With sync_mu held: remembers a revocation row just read; drops remembered rows
 * older than TSR_HOT_PENDING_AGE; publishes the remembered rows (and deletes the
 * cache entries of their sids), after a change made by this process. */
void tsr_auth_hot_note(tsr_auth *a, const tsr_revocation *r, int64_t until, int64_t now);
void tsr_auth_hot_expire_pending(tsr_auth *a, int64_t now);
void tsr_auth_hot_publish_pending(tsr_auth *a);
/* After a successful store read that began while a resubscribe was pending: the
 * feed is live again. */
void tsr_auth_hot_resync_done(tsr_auth *a, uint64_t g);
/* The login buckets in Redis: as tsr_rate_check / tsr_rate_fail (ok 0) or
 * tsr_rate_clear (ok 1). TSR_ERR_UNAVAILABLE when Redis fails (use the local
 * limiter). */
TSR_MUST_CHECK tsr_err tsr_auth_hot_rate_check(tsr_auth *a, const uint8_t key[TSR_RATE_KEY_BYTES],
                                               int64_t now, int64_t *retry_after /* OUT */);
TSR_MUST_CHECK tsr_err tsr_auth_hot_rate_record(tsr_auth *a,
                                                const uint8_t key[TSR_RATE_KEY_BYTES], int ok,
                                                int64_t now);

/* After a store call that may have ended sessions: pulls the new revocation rows
 * at once, so this process refuses their tokens before the caller answers. A
 * failure is logged (the background sync retries). */
void tsr_auth_revocations_changed(tsr_auth *a);

/* "usr_"/"ses_" + 22 base64url chars of 16 random bytes. */
TSR_MUST_CHECK tsr_err tsr_auth_rand_id(const char *prefix, char out[TSR_ID_MAX + 1] /* OUT */);

/* Copies src into dst (cap bytes with the NUL), cut to fit, replacing bytes
 * outside printable ASCII by '?'. NULL src gives "". */
void tsr_auth_copy_printable(char *dst, size_t cap, const char *src);

/* The second half of tsr_auth_password_change, after its Argon2 work: seen is the
 * user row read before hashing (current_pw was verified against seen->pwhash) and
 * new_pwhash the new password's hash. In one store transaction it swaps the hash
 * only while seen->pwhash is still stored and the user enabled, deletes the
 * current session and all others, and inserts the current session's successor
 * (returned in out, as tsr_auth_password_change does). TSR_ERR_UNAUTHENTICATED,
 * with nothing changed, when any of that no longer holds. Separate so that tests
 * can force an admin change between the read and the write without timing. */
TSR_MUST_CHECK tsr_err tsr_auth_password_change_commit(tsr_auth *a, const tsr_session *current,
                                                       const tsr_user *seen,
                                                       const char *new_pwhash, int64_t now,
                                                       tsr_auth_cred *out /* OUT */);

/* The rate limiter: token buckets keyed by 32-byte digests. */
TSR_MUST_CHECK tsr_err tsr_rate_new(size_t cap, tsr_rate **out /* OUT */);
void tsr_rate_free(tsr_rate *r);
/* TSR_OK or TSR_ERR_RATE_LIMITED with *retry_after >= 1. */
TSR_MUST_CHECK tsr_err tsr_rate_check(tsr_rate *r, const uint8_t key[TSR_RATE_KEY_BYTES],
                                      uint32_t max, int64_t window, int64_t now,
                                      int64_t *retry_after /* OUT */);
void tsr_rate_fail(tsr_rate *r, const uint8_t key[TSR_RATE_KEY_BYTES], uint32_t max,
                   int64_t window, int64_t now);
void tsr_rate_clear(tsr_rate *r, const uint8_t key[TSR_RATE_KEY_BYTES]);
void tsr_rate_clear_all(tsr_rate *r);

/* Rate-limiter key of a username (ASCII case-folded) or an IP (IPv6 by its /64). */
TSR_MUST_CHECK tsr_err tsr_auth_rate_key_user(const tsr_auth *a, const char *username,
                                              size_t ulen,
                                              uint8_t out[TSR_RATE_KEY_BYTES] /* OUT */);
TSR_MUST_CHECK tsr_err tsr_auth_rate_key_ip(const tsr_auth *a, const char *ip,
                                            uint8_t out[TSR_RATE_KEY_BYTES] /* OUT */);

/* A short non-reversible fingerprint of a username for logs: 16 hex chars of
 * SHA-256 (case-folded). Never log a failed username raw: people type passwords
 * into it. */
void tsr_auth_user_fingerprint(const char *username, size_t ulen, char out[17] /* OUT */);

#endif
