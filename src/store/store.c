/* store.c: opens a store by URL and dispatches every call to its backend.
 *
 * The checks every backend would repeat live here once: NULL arguments are
 * TSR_ERR_INVALID and outputs are zeroed before the backend runs, so a failed call
 * leaves zero/NULL whatever the backend does. */
#include <string.h>

#include "store/pg/pg_int.h"
#include "store/sqlite/sqlite_int.h"
#include "store/store.h"

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

tsr_err tsr_store_open(const char *url, tsr_store **out)
{
    return tsr_store_open_pool(url, 0, out);
}

tsr_err tsr_store_open_pool(const char *url, size_t max_conns, tsr_store **out)
{
    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (url == NULL || url[0] == '\0')
        return TSR_ERR_INVALID;
    if (has_prefix(url, "sqlite:"))
        return tsr_store_sqlite_open(url + strlen("sqlite:"), out);
    if (has_prefix(url, "postgresql://") || has_prefix(url, "postgres://"))
        return tsr_store_pg_open(url, max_conns, out);
    return TSR_ERR_UNSUPPORTED;
}

void tsr_store_close(tsr_store *s)
{
    if (s == NULL || s->ops == NULL || s->ops->close == NULL)
        return;
    s->ops->close(s);
}

tsr_err tsr_store_ping(tsr_store *s)
{
    if (s == NULL || s->ops == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->ping == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->ping(s);
}

tsr_err tsr_store_user_create(tsr_store *s, const tsr_user *u)
{
    if (s == NULL || s->ops == NULL || u == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->user_create == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->user_create(s, u);
}

tsr_err tsr_store_user_get(tsr_store *s, const char *id, tsr_user *out)
{
    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (s == NULL || s->ops == NULL || id == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->user_get == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->user_get(s, id, out);
}

tsr_err tsr_store_user_get_by_name(tsr_store *s, const char *username, tsr_user *out)
{
    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (s == NULL || s->ops == NULL || username == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->user_get_by_name == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->user_get_by_name(s, username, out);
}

tsr_err tsr_store_user_list(tsr_store *s, const char *after, size_t limit, tsr_user *out, size_t *n)
{
    if (n == NULL)
        return TSR_ERR_INVALID;
    *n = 0;
    if (out == NULL && limit > 0)
        return TSR_ERR_INVALID;
    if (out != NULL && limit > 0)
        memset(out, 0, limit * sizeof *out);
    if (s == NULL || s->ops == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->user_list == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->user_list(s, after, limit, out, n);
}

tsr_err tsr_store_user_set_pwhash(tsr_store *s, const char *id, const char *old_pwhash,
                                  const char *new_pwhash, int require_enabled, int64_t updated_at)
{
    if (s == NULL || s->ops == NULL || id == NULL || old_pwhash == NULL || new_pwhash == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->user_set_pwhash == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->user_set_pwhash(s, id, old_pwhash, new_pwhash, require_enabled != 0,
                                   updated_at);
}

tsr_err tsr_store_user_set_flags(tsr_store *s, const char *id, const char *roles, int disabled,
                                 int64_t updated_at)
{
    if (s == NULL || s->ops == NULL || id == NULL || disabled < -1 || disabled > 1)
        return TSR_ERR_INVALID;
    if (s->ops->user_set_flags == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->user_set_flags(s, id, roles, disabled, updated_at);
}

tsr_err tsr_store_user_delete(tsr_store *s, const char *id)
{
    if (s == NULL || s->ops == NULL || id == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->user_delete == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->user_delete(s, id);
}

tsr_err tsr_store_session_create(tsr_store *s, const tsr_session *ss, size_t max_per_user,
                                 int64_t now)
{
    if (s == NULL || s->ops == NULL || ss == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->session_create == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->session_create(s, ss, max_per_user, now);
}

tsr_err tsr_store_session_get(tsr_store *s, const char *id, tsr_session *out)
{
    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (s == NULL || s->ops == NULL || id == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->session_get == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->session_get(s, id, out);
}

tsr_err tsr_store_session_resolve(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES],
                                  tsr_session *ss, tsr_user *u)
{
    if (ss == NULL || u == NULL)
        return TSR_ERR_INVALID;
    memset(ss, 0, sizeof *ss);
    memset(u, 0, sizeof *u);
    if (s == NULL || s->ops == NULL || hash == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->session_resolve == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->session_resolve(s, hash, ss, u);
}

tsr_err tsr_store_session_get_by_hash(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES],
                                      tsr_session *out)
{
    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (s == NULL || s->ops == NULL || hash == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->session_get_by_hash == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->session_get_by_hash(s, hash, out);
}

tsr_err tsr_store_session_touch(tsr_store *s, const char *id, int64_t last_seen_at,
                                int64_t idle_expires_at)
{
    if (s == NULL || s->ops == NULL || id == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->session_touch == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->session_touch(s, id, last_seen_at, idle_expires_at);
}

tsr_err tsr_store_session_list(tsr_store *s, const char *user_id, int64_t now, tsr_session *out,
                               size_t max, size_t *n)
{
    if (n == NULL)
        return TSR_ERR_INVALID;
    *n = 0;
    if (out == NULL && max > 0)
        return TSR_ERR_INVALID;
    if (out != NULL && max > 0)
        memset(out, 0, max * sizeof *out);
    if (s == NULL || s->ops == NULL || user_id == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->session_list == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->session_list(s, user_id, now, out, max, n);
}

tsr_err tsr_store_session_delete(tsr_store *s, const char *id)
{
    if (s == NULL || s->ops == NULL || id == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->session_delete == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->session_delete(s, id);
}

tsr_err tsr_store_session_delete_user(tsr_store *s, const char *user_id, const char *except_id,
                                      size_t *deleted)
{
    if (deleted == NULL)
        return TSR_ERR_INVALID;
    *deleted = 0;
    if (s == NULL || s->ops == NULL || user_id == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->session_delete_user == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->session_delete_user(s, user_id, except_id, deleted);
}

tsr_err tsr_store_session_rotate(tsr_store *s, const char *old_id, const tsr_session *fresh)
{
    if (s == NULL || s->ops == NULL || old_id == NULL || fresh == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->session_rotate == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->session_rotate(s, old_id, fresh);
}

tsr_err tsr_store_password_change(tsr_store *s, const char *user_id, const char *old_pwhash,
                                  const char *new_pwhash, const char *keep_session_id,
                                  const tsr_session *fresh, int64_t now, size_t *revoked)
{
    if (revoked == NULL)
        return TSR_ERR_INVALID;
    *revoked = 0;
    if (s == NULL || s->ops == NULL || user_id == NULL || old_pwhash == NULL ||
        new_pwhash == NULL || keep_session_id == NULL || fresh == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->password_change == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->password_change(s, user_id, old_pwhash, new_pwhash, keep_session_id, fresh,
                                   now, revoked);
}

tsr_err tsr_store_session_count(tsr_store *s, int64_t now, size_t *n)
{
    if (n == NULL)
        return TSR_ERR_INVALID;
    *n = 0;
    if (s == NULL || s->ops == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->session_count == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->session_count(s, now, n);
}

tsr_err tsr_store_purge_expired(tsr_store *s, int64_t now, size_t *purged)
{
    if (purged == NULL)
        return TSR_ERR_INVALID;
    *purged = 0;
    if (s == NULL || s->ops == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->purge_expired == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->purge_expired(s, now, purged);
}

tsr_err tsr_store_meta_get(tsr_store *s, const char *key, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return TSR_ERR_INVALID;
    memset(out, 0, cap);
    if (s == NULL || s->ops == NULL || key == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->meta_get == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->meta_get(s, key, out, cap);
}

tsr_err tsr_store_meta_set(tsr_store *s, const char *key, const char *value)
{
    if (s == NULL || s->ops == NULL || key == NULL || value == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->meta_set == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->meta_set(s, key, value);
}

tsr_err tsr_store_meta_insert(tsr_store *s, const char *key, const char *value)
{
    if (s == NULL || s->ops == NULL || key == NULL || value == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->meta_insert == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->meta_insert(s, key, value);
}

tsr_err tsr_store_refresh_lookup(tsr_store *s, const uint8_t hash[TSR_HASH_BYTES],
                                 tsr_session *ss, tsr_user *u, tsr_refresh_match *m)
{
    if (ss == NULL || u == NULL || m == NULL)
        return TSR_ERR_INVALID;
    memset(ss, 0, sizeof *ss);
    memset(u, 0, sizeof *u);
    memset(m, 0, sizeof *m);
    if (s == NULL || s->ops == NULL || hash == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->refresh_lookup == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->refresh_lookup(s, hash, ss, u, m);
}

tsr_err tsr_store_refresh_rotate(tsr_store *s, const char *session_id, int64_t generation,
                                 const uint8_t new_hash[TSR_HASH_BYTES], const uint8_t *sealed,
                                 size_t sealed_len, int64_t now, int64_t idle_expires_at)
{
    if (s == NULL || s->ops == NULL || session_id == NULL || new_hash == NULL)
        return TSR_ERR_INVALID;
    if ((sealed == NULL && sealed_len > 0) || sealed_len > TSR_SEALED_MAX)
        return TSR_ERR_INVALID;
    if (s->ops->refresh_rotate == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->refresh_rotate(s, session_id, generation, new_hash, sealed, sealed_len, now,
                                  idle_expires_at);
}

tsr_err tsr_store_revocation_add(tsr_store *s, tsr_revocation_kind kind, const char *value,
                                 int64_t revoked_at, int64_t expires_at)
{
    if (s == NULL || s->ops == NULL || value == NULL)
        return TSR_ERR_INVALID;
    if (kind != TSR_REVOKE_SID && kind != TSR_REVOKE_JTI)
        return TSR_ERR_INVALID;
    if (s->ops->revocation_add == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->revocation_add(s, kind, value, revoked_at, expires_at);
}

tsr_err tsr_store_revocation_since(tsr_store *s, int64_t after_seq, int64_t revoked_since,
                                   tsr_revocation *out, size_t max, size_t *n)
{
    if (n == NULL)
        return TSR_ERR_INVALID;
    *n = 0;
    if (out == NULL && max > 0)
        return TSR_ERR_INVALID;
    if (out != NULL && max > 0)
        memset(out, 0, max * sizeof *out);
    if (s == NULL || s->ops == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->revocation_since == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->revocation_since(s, after_seq, revoked_since, out, max, n);
}

tsr_err tsr_store_revocation_purge(tsr_store *s, int64_t revoked_before, size_t *purged)
{
    if (purged == NULL)
        return TSR_ERR_INVALID;
    *purged = 0;
    if (s == NULL || s->ops == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->revocation_purge == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->revocation_purge(s, revoked_before, purged);
}

tsr_err tsr_store_key_list(tsr_store *s, tsr_key_record *out, size_t max, size_t *n)
{
    if (n == NULL)
        return TSR_ERR_INVALID;
    *n = 0;
    if (out == NULL && max > 0)
        return TSR_ERR_INVALID;
    if (out != NULL && max > 0)
        memset(out, 0, max * sizeof *out);
    if (s == NULL || s->ops == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->key_list == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->key_list(s, out, max, n);
}

tsr_err tsr_store_key_rotate(tsr_store *s, const char *expect_active_kid,
                             const tsr_key_record *new_active, const tsr_key_record *new_next,
                             int64_t now, int64_t publish_until)
{
    if (s == NULL || s->ops == NULL || expect_active_kid == NULL)
        return TSR_ERR_INVALID;
    if (s->ops->key_rotate == NULL)
        return TSR_ERR_UNSUPPORTED;
    return s->ops->key_rotate(s, expect_active_kid, new_active, new_next, now, publish_until);
}
