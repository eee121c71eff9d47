/* store_metered.c: a store that times every call of another store into the
 * store-latency histogram of /metrics, then returns the inner store's answer
 * untouched. It is a backend like any other (begins with tsr_store base), so
 * auth and the CLI need not know it is there. Closing it leaves inner open. */
#include "http/http_int.h"

#include <stdlib.h>

typedef struct metered {
    tsr_store base;
    tsr_store *inner;
} metered;

#define IN(s) (((metered *)(void *)(s))->inner)

#define TIMED(op, call)                                                                    \
    do {                                                                                   \
        uint64_t t0_ = tsr_http_now_ns();                                                  \
        tsr_err rc_ = (call);                                                              \
        tsr_metrics_store((op), tsr_http_now_ns() - t0_);                                  \
        return rc_;                                                                        \
    } while (0)

static void m_close(tsr_store *s)
{
    free(s);
}

static tsr_err m_ping(tsr_store *s)
{
    TIMED(TSR_MS_PING, tsr_store_ping(IN(s)));
}

static tsr_err m_user_create(tsr_store *s, const tsr_user *u)
{
    TIMED(TSR_MS_USER_WRITE, tsr_store_user_create(IN(s), u));
}

static tsr_err m_user_get(tsr_store *s, const char *id, tsr_user *out)
{
    TIMED(TSR_MS_USER_READ, tsr_store_user_get(IN(s), id, out));
}

static tsr_err m_user_get_by_name(tsr_store *s, const char *username, tsr_user *out)
{
    TIMED(TSR_MS_USER_READ, tsr_store_user_get_by_name(IN(s), username, out));
}

static tsr_err m_user_list(tsr_store *s, const char *after, size_t limit, tsr_user *out,
                           size_t *n)
{
    TIMED(TSR_MS_USER_READ, tsr_store_user_list(IN(s), after, limit, out, n));
}

static tsr_err m_user_set_pwhash(tsr_store *s, const char *id, const char *old_pwhash,
                                 const char *new_pwhash, int require_enabled, int64_t updated_at)
{
    TIMED(TSR_MS_USER_WRITE, tsr_store_user_set_pwhash(IN(s), id, old_pwhash, new_pwhash,
                                                       require_enabled, updated_at));
}

static tsr_err m_user_set_flags(tsr_store *s, const char *id, const char *roles, int disabled,
                                int64_t updated_at)
{
    TIMED(TSR_MS_USER_WRITE, tsr_store_user_set_flags(IN(s), id, roles, disabled, updated_at));
}

static tsr_err m_user_delete(tsr_store *s, const char *id)
{
    TIMED(TSR_MS_USER_WRITE, tsr_store_user_delete(IN(s), id));
}

static tsr_err m_session_create(tsr_store *s, const tsr_session *ss, size_t max_per_user,
                                int64_t now)
{
    TIMED(TSR_MS_SESSION_WRITE, tsr_store_session_create(IN(s), ss, max_per_user, now));
}

static tsr_err m_session_get(tsr_store *s, const char *id, tsr_session *out)
{
    TIMED(TSR_MS_SESSION_READ, tsr_store_session_get(IN(s), id, out));
}

static tsr_err m_session_get_by_hash(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES],
                                     tsr_session *out)
{
    TIMED(TSR_MS_SESSION_READ, tsr_store_session_get_by_hash(IN(s), hash, out));
}

static tsr_err m_session_resolve(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES],
                                tsr_session *ss, tsr_user *u)
{
    TIMED(TSR_MS_SESSION_READ, tsr_store_session_resolve(IN(s), hash, ss, u));
}

static tsr_err m_session_touch(tsr_store *s, const char *id, int64_t last_seen_at,
                               int64_t idle_expires_at)
{
    TIMED(TSR_MS_SESSION_TOUCH, tsr_store_session_touch(IN(s), id, last_seen_at, idle_expires_at));
}

static tsr_err m_session_list(tsr_store *s, const char *user_id, int64_t now, tsr_session *out,
                              size_t max, size_t *n)
{
    TIMED(TSR_MS_SESSION_READ, tsr_store_session_list(IN(s), user_id, now, out, max, n));
}

static tsr_err m_session_delete(tsr_store *s, const char *id)
{
    TIMED(TSR_MS_SESSION_WRITE, tsr_store_session_delete(IN(s), id));
}

static tsr_err m_session_delete_user(tsr_store *s, const char *user_id, const char *except_id,
                                     size_t *deleted)
{
    TIMED(TSR_MS_SESSION_WRITE, tsr_store_session_delete_user(IN(s), user_id, except_id, deleted));
}

static tsr_err m_session_rotate(tsr_store *s, const char *old_id, const tsr_session *fresh)
{
    TIMED(TSR_MS_SESSION_WRITE, tsr_store_session_rotate(IN(s), old_id, fresh));
}

static tsr_err m_password_change(tsr_store *s, const char *user_id, const char *old_pwhash,
                                 const char *new_pwhash, const char *keep_session_id,
                                 const tsr_session *fresh, int64_t now, size_t *revoked)
{
    TIMED(TSR_MS_USER_WRITE, tsr_store_password_change(IN(s), user_id, old_pwhash, new_pwhash,
                                                       keep_session_id, fresh, now, revoked));
}

static tsr_err m_session_count(tsr_store *s, int64_t now, size_t *n)
{
    TIMED(TSR_MS_SESSION_READ, tsr_store_session_count(IN(s), now, n));
}

static tsr_err m_purge_expired(tsr_store *s, int64_t now, size_t *purged)
{
    TIMED(TSR_MS_PURGE, tsr_store_purge_expired(IN(s), now, purged));
}

static tsr_err m_meta_get(tsr_store *s, const char *key, char *out, size_t cap)
{
    TIMED(TSR_MS_META, tsr_store_meta_get(IN(s), key, out, cap));
}

static tsr_err m_meta_set(tsr_store *s, const char *key, const char *value)
{
    TIMED(TSR_MS_META, tsr_store_meta_set(IN(s), key, value));
}

static tsr_err m_meta_insert(tsr_store *s, const char *key, const char *value)
{
    TIMED(TSR_MS_META, tsr_store_meta_insert(IN(s), key, value));
}

/* Token-mode ops, under the existing labels until /metrics grows its own: family
 * reads and the revocation feed are session reads, rotations and revocations session
 * writes, the revocation purge a purge, keys (rare) meta. */
static tsr_err m_refresh_lookup(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES],
                                tsr_session *ss, tsr_user *u, tsr_refresh_match *m)
{
    TIMED(TSR_MS_SESSION_READ, tsr_store_refresh_lookup(IN(s), hash, ss, u, m));
}

static tsr_err m_refresh_rotate(tsr_store *s, const char *session_id, int64_t generation,
                                const uint8_t new_hash[TSR_HASH_BYTES], const uint8_t *sealed,
                                size_t sealed_len, int64_t now, int64_t idle_expires_at)
{
    TIMED(TSR_MS_SESSION_WRITE, tsr_store_refresh_rotate(IN(s), session_id, generation, new_hash,
                                                         sealed, sealed_len, now,
                                                         idle_expires_at));
}

static tsr_err m_revocation_add(tsr_store *s, tsr_revocation_kind kind, const char *value,
                                int64_t revoked_at, int64_t expires_at)
{
    TIMED(TSR_MS_SESSION_WRITE,
          tsr_store_revocation_add(IN(s), kind, value, revoked_at, expires_at));
}

static tsr_err m_revocation_since(tsr_store *s, int64_t after_seq, int64_t revoked_since,
                                  tsr_revocation *out, size_t max, size_t *n)
{
    TIMED(TSR_MS_SESSION_READ,
          tsr_store_revocation_since(IN(s), after_seq, revoked_since, out, max, n));
}

static tsr_err m_revocation_purge(tsr_store *s, int64_t revoked_before, size_t *purged)
{
    TIMED(TSR_MS_PURGE, tsr_store_revocation_purge(IN(s), revoked_before, purged));
}

static tsr_err m_key_list(tsr_store *s, tsr_key_record *out, size_t max, size_t *n)
{
    TIMED(TSR_MS_META, tsr_store_key_list(IN(s), out, max, n));
}

static tsr_err m_key_rotate(tsr_store *s, const char *expect_active_kid,
                            const tsr_key_record *new_active, const tsr_key_record *new_next,
                            int64_t now, int64_t publish_until)
{
    TIMED(TSR_MS_META, tsr_store_key_rotate(IN(s), expect_active_kid, new_active, new_next, now,
                                            publish_until));
}

static const tsr_store_ops metered_ops = {
    .name = "metered",
    .close = m_close,
    .ping = m_ping,
    .user_create = m_user_create,
    .user_get = m_user_get,
    .user_get_by_name = m_user_get_by_name,
    .user_list = m_user_list,
    .user_set_pwhash = m_user_set_pwhash,
    .user_set_flags = m_user_set_flags,
    .user_delete = m_user_delete,
    .session_create = m_session_create,
    .session_get = m_session_get,
    .session_get_by_hash = m_session_get_by_hash,
    .session_resolve = m_session_resolve,
    .session_touch = m_session_touch,
    .session_list = m_session_list,
    .session_delete = m_session_delete,
    .session_delete_user = m_session_delete_user,
    .session_rotate = m_session_rotate,
    .password_change = m_password_change,
    .session_count = m_session_count,
    .purge_expired = m_purge_expired,
    .meta_get = m_meta_get,
    .meta_set = m_meta_set,
    .meta_insert = m_meta_insert,
    .refresh_lookup = m_refresh_lookup,
    .refresh_rotate = m_refresh_rotate,
    .revocation_add = m_revocation_add,
    .revocation_since = m_revocation_since,
    .revocation_purge = m_revocation_purge,
    .key_list = m_key_list,
    .key_rotate = m_key_rotate,
};

tsr_err tsr_http_store_metered_new(tsr_store *inner, tsr_store **out)
{
    metered *m;

    *out = NULL;
    if (inner == NULL)
        return TSR_ERR_INVALID;
    m = calloc(1, sizeof *m);
    if (m == NULL)
        return TSR_ERR_NOMEM;
    m->base.ops = &metered_ops;
    m->inner = inner;
    *out = &m->base;
    return TSR_OK;
}
