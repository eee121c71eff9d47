/* pg_ops.c: the store operations of the PostgreSQL backend, and their SQL.
 *
 * Same contract as the SQLite backend (store.h). Where SQLite's single writer
 * makes a read-then-write safe, PostgreSQL (READ COMMITTED) gets an explicit row
 * lock or a conditional UPDATE instead; the comments say which. Locks are always
 * taken in one order, user row, then session rows, then the revocation counter
 * (through the delete trigger), so that these transactions cannot deadlock each
 * other; a deadlock or serialization failure all the same is retried by
 * tsr_pg_run. docs/internals/store.md explains the choices. */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "crypto/crypto.h"
#include "store/pg/pg_priv.h"

#define PURGE_BATCH 1000 /* rows per purge statement: keeps row locks short */

/* Persisted values, as in SQLite: mapped explicitly, never the C enums' order. */
#define KIND_DB_COOKIE 1
#define KIND_DB_REFRESH 2
#define KEY_DB_NEXT 1
#define KEY_DB_ACTIVE 2
#define KEY_DB_RETIRED 3
#define REVOKE_DB_SID 1
#define REVOKE_DB_JTI 2

#define SESSION_COLS                                                                               \
    "id, secret_hash, user_id, kind, created_at, last_seen_at, expires_at, "                       \
    "idle_expires_at, ip, user_agent, scope, generation"
#define SESSION_NCOLS 12
#define SESSION_COLS_S                                                                             \
    "s.id, s.secret_hash, s.user_id, s.kind, s.created_at, s.last_seen_at, s.expires_at, "         \
    "s.idle_expires_at, s.ip, s.user_agent, s.scope, s.generation"
#define USER_COLS "id, username, pwhash, roles, disabled, created_at, updated_at"
#define USER_NCOLS 7
/* The user without the password hash (the resolve paths never need it). */
#define USER_COLS_U_NOPW "u.id, u.username, '', u.roles, u.disabled, u.created_at, u.updated_at"
#define KEY_COLS "kid, alg, state, created_at, activated_at, retired_at, publish_until, jwk"
/* A session alive at $n by the one expiry rule of store.h. */
#define EXPIRED(n) "(expires_at <= $" n " OR idle_expires_at <= $" n ")"

const pg_stmt_def tsr_pg_stmts[PG_ST__COUNT] = {
    /* Reads a table of ours, so a missing schema or a lost server shows. */
    [PG_ST_PING] = {"tsr_ping", "SELECT 1 FROM meta LIMIT 1"},
    [PG_ST_USER_INSERT] = {"tsr_user_insert",
                           "INSERT INTO users (id, username, pwhash, roles, disabled, created_at, "
                           "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"},
    [PG_ST_USER_GET] = {"tsr_user_get", "SELECT " USER_COLS " FROM users WHERE id = $1"},
    /* $1 is ASCII-lowered by the caller; the expression matches the unique index. */
    [PG_ST_USER_GET_BY_NAME] = {"tsr_user_get_by_name",
                                "SELECT " USER_COLS " FROM users WHERE lower(username) = $1"},
    [PG_ST_USER_LIST] = {"tsr_user_list",
                         "SELECT " USER_COLS " FROM users WHERE id > $1 ORDER BY id LIMIT $2"},
    /* Compare-and-swap on the hash read before hashing (a conditional UPDATE: the
     * row lock it takes makes a concurrent writer re-check the condition). */
    [PG_ST_USER_SET_PWHASH] = {"tsr_user_set_pwhash",
                               "UPDATE users SET pwhash = $3, updated_at = $4 WHERE id = $1 "
                               "AND pwhash = $2 AND ($5::integer = 0 OR disabled = 0)"},
    [PG_ST_USER_SET_FLAGS] = {"tsr_user_set_flags",
                              "UPDATE users SET roles = coalesce($2::text, roles), "
                              "disabled = CASE WHEN $3::integer < 0 THEN disabled "
                              "ELSE $3::integer END, updated_at = $4 WHERE id = $1"},
    /* Sessions (and their spent hashes) go through ON DELETE CASCADE. */
    [PG_ST_USER_DELETE] = {"tsr_user_delete", "DELETE FROM users WHERE id = $1"},
    /* Serialises the writers of one user's sessions: a cap eviction, a rotation or
     * a password change sees every session committed before it, and an admin's
     * disable (an UPDATE of this row) lands wholly before or after. NO KEY UPDATE
     * does not block the foreign-key checks of other inserts. */
    [PG_ST_USER_LOCK] = {"tsr_user_lock",
                         "SELECT disabled FROM users WHERE id = $1 FOR NO KEY UPDATE"},
    /* Only for a user that exists and is enabled, checked and locked in this very
     * statement (re-checked on the newest row version if another transaction
     * changed it meanwhile): 0 rows is NOT_FOUND. */
    [PG_ST_SES_INSERT] = {"tsr_session_insert",
                          "INSERT INTO sessions (" SESSION_COLS ") "
                          "SELECT $1::text, $2::bytea, $3::text, $4::integer, $5::bigint, "
                          "$6::bigint, $7::bigint, $8::bigint, $9::text, $10::text, $11::text, "
                          "$12::bigint FROM users WHERE id = $3::text AND disabled = 0 "
                          "FOR NO KEY UPDATE"},
    /* After the insert, under its user lock: the user's expired sessions other than
     * the new one, and the oldest beyond the cap ($4) among the live ones and the
     * new one; SQLite's delete-expired, insert, evict in one statement. */
    [PG_ST_SES_CLEANUP] = {"tsr_session_cleanup",
                           "DELETE FROM sessions WHERE user_id = $1 AND ((id <> $2 AND " EXPIRED(
                               "3") ") OR id = ANY(ARRAY(SELECT id FROM sessions "
                                    "WHERE user_id = $1 AND (id = $2 OR (expires_at > $3 AND "
                                    "idle_expires_at > $3)) "
                                    "ORDER BY created_at DESC, ord DESC OFFSET $4)))"},
    [PG_ST_SES_GET] = {"tsr_session_get", "SELECT " SESSION_COLS " FROM sessions WHERE id = $1"},
    [PG_ST_SES_GET_BY_HASH] = {"tsr_session_get_by_hash",
                               "SELECT " SESSION_COLS " FROM sessions WHERE secret_hash = $1"},
    /* The cookie hot path: session and user in one statement, one round trip. */
    [PG_ST_SES_RESOLVE] = {"tsr_session_resolve",
                           "SELECT " SESSION_COLS_S ", " USER_COLS_U_NOPW " FROM sessions s "
                           "JOIN users u ON u.id = s.user_id WHERE s.secret_hash = $1"},
    [PG_ST_SES_TOUCH] = {"tsr_session_touch", "UPDATE sessions SET last_seen_at = $2, "
                                              "idle_expires_at = $3 WHERE id = $1"},
    [PG_ST_SES_LIST] = {"tsr_session_list",
                        "SELECT " SESSION_COLS " FROM sessions WHERE user_id = $1 "
                        "AND expires_at > $2 AND idle_expires_at > $2 "
                        "ORDER BY created_at DESC, ord DESC LIMIT $3"},
    [PG_ST_SES_DELETE] = {"tsr_session_delete", "DELETE FROM sessions WHERE id = $1"},
    [PG_ST_SES_DELETE_USER] = {"tsr_session_delete_user", "DELETE FROM sessions WHERE user_id = $1 "
                                                          "AND ($2::text IS NULL OR id <> $2)"},
    [PG_ST_SES_DELETE_OWNED] = {"tsr_session_delete_owned",
                                "DELETE FROM sessions WHERE id = $1 AND user_id = $2"},
    /* password_change steps 2 and 3 in one statement: every session of the user
     * goes, and whether the current one ($2) was among them. */
    [PG_ST_SES_END_ALL_KEEP] = {"tsr_session_end_all_keep",
                                "WITH d AS (DELETE FROM sessions WHERE user_id = $1 "
                                "RETURNING id) SELECT count(*), "
                                "count(*) FILTER (WHERE id = $2::text) FROM d"},
    [PG_ST_SES_COUNT] = {"tsr_session_count", "SELECT count(*) FROM sessions "
                                              "WHERE expires_at > $1 AND idle_expires_at > $1"},
    /* One range scan per expiry index, whatever plan the cache picks (a generic
     * plan of the OR form scans the table); up to 2 x $2 rows, fewer than $2 only
     * when both ranges ran dry. The condition again outside: a row touched
     * meanwhile is re-checked on its newest version. */
    [PG_ST_SES_PURGE_BATCH] = {"tsr_session_purge_batch",
                               "DELETE FROM sessions WHERE id = ANY(ARRAY("
                               "(SELECT id FROM sessions WHERE expires_at <= $1 LIMIT $2) "
                               "UNION ALL "
                               "(SELECT id FROM sessions WHERE idle_expires_at <= $1 LIMIT $2))) "
                               "AND " EXPIRED("1")},
    [PG_ST_META_GET] = {"tsr_meta_get", "SELECT value FROM meta WHERE key = $1"},
    [PG_ST_META_SET] = {"tsr_meta_set", "INSERT INTO meta (key, value) VALUES ($1, $2) "
                                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"},
    /* No upsert: a present key is a unique violation, i.e. TSR_ERR_EXISTS. */
    [PG_ST_META_INSERT] = {"tsr_meta_insert", "INSERT INTO meta (key, value) VALUES ($1, $2)"},
    /* Current token, else spent one, in ONE statement (one snapshot), as SQLite. */
    [PG_ST_REFRESH_LOOKUP] = {"tsr_refresh_lookup",
                              "SELECT " SESSION_COLS_S ", s.sealed, " USER_COLS_U_NOPW
                              ", 0 AS spent, 0, 0 "
                              "FROM sessions s JOIN users u ON u.id = s.user_id "
                              "WHERE s.secret_hash = $1 AND s.kind = 2 "
                              "UNION ALL "
                              "SELECT " SESSION_COLS_S ", s.sealed, " USER_COLS_U_NOPW
                              ", 1, r.generation, r.spent_at "
                              "FROM refresh_spent r JOIN sessions s ON s.id = r.session_id "
                              "JOIN users u ON u.id = s.user_id WHERE r.hash = $1 AND s.kind = 2 "
                              "ORDER BY spent LIMIT 1"},
    /* Rotation in one statement: the UPDATE is the compare-and-swap (on a row
     * another rotation changed meanwhile PostgreSQL re-checks generation = $2 on
     * the newest version, so of two racing rotations one updates and the other
     * matches nothing); the hash it replaced (from the same snapshot: the hash only
     * changes with the generation) becomes spent. A new hash taken by another
     * session fails the whole statement with 23505. */
    [PG_ST_REFRESH_ROTATE] =
        {"tsr_refresh_rotate",
         "WITH upd AS (UPDATE sessions s SET secret_hash = $3::bytea, "
         "generation = s.generation + 1, sealed = $4::bytea, last_seen_at = $5::bigint, "
         "idle_expires_at = $6::bigint "
         "FROM (SELECT id, secret_hash FROM sessions WHERE id = $1::text) o "
         "WHERE s.id = o.id AND s.generation = $2::bigint AND s.kind = 2 "
         "AND EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id AND u.disabled = 0) "
         "RETURNING o.secret_hash AS old_hash) "
         "INSERT INTO refresh_spent (hash, session_id, generation, spent_at) "
         "SELECT old_hash, $1::text, $2::bigint, $5::bigint FROM upd"},
    /* Only after a rotation that matched nothing: why. */
    [PG_ST_REFRESH_STATE] = {"tsr_refresh_state",
                             "SELECT s.generation FROM sessions s JOIN users u "
                             "ON u.id = s.user_id WHERE s.id = $1 AND s.kind = 2 "
                             "AND u.disabled = 0"},
    /* The seq from the counter row, locked until this statement commits: rows
     * become visible in seq order (see the migration in pg.c). */
    [PG_ST_REV_INSERT] = {"tsr_revocation_insert",
                          "WITH c AS (UPDATE revocation_counter SET last = last + 1 "
                          "WHERE id = 1 RETURNING last) "
                          "INSERT INTO revocations (seq, kind, value, revoked_at, expires_at) "
                          "SELECT last, $1::integer, $2::text, $3::bigint, $4::bigint FROM c"},
    [PG_ST_REV_SINCE] = {"tsr_revocation_since",
                         "SELECT seq, kind, value, revoked_at, expires_at FROM revocations "
                         "WHERE seq > $1 AND revoked_at >= $2 ORDER BY seq LIMIT $3"},
    [PG_ST_REV_PURGE_BATCH] = {"tsr_revocation_purge_batch",
                               "DELETE FROM revocations WHERE seq = ANY(ARRAY(SELECT seq "
                               "FROM revocations WHERE revoked_at < $1 "
                               "AND (kind <> 2 OR expires_at < $1) LIMIT $2))"},
    [PG_ST_KEY_LIST] = {"tsr_key_list",
                        "SELECT " KEY_COLS " FROM keys ORDER BY created_at, ord LIMIT $1"},
    [PG_ST_KEY_ACTIVE] = {"tsr_key_active", "SELECT kid FROM keys WHERE state = 2"},
    [PG_ST_KEY_RETIRE_ACTIVE] = {"tsr_key_retire_active",
                                 "UPDATE keys SET state = 3, retired_at = $1, publish_until = $2 "
                                 "WHERE state = 2"},
    [PG_ST_KEY_PROMOTE_NEXT] = {"tsr_key_promote_next",
                                "UPDATE keys SET state = 2, activated_at = $1 WHERE kid = "
                                "(SELECT kid FROM keys WHERE state = 1 "
                                "ORDER BY created_at, ord LIMIT 1)"},
    /* A next key passed over by a new active one never signed. */
    [PG_ST_KEY_RETIRE_NEXT] = {"tsr_key_retire_next",
                               "UPDATE keys SET state = 3, retired_at = $1::bigint, "
                               "publish_until = $1::bigint WHERE state = 1"},
    [PG_ST_KEY_INSERT] = {"tsr_key_insert",
                          "INSERT INTO keys (" KEY_COLS ") VALUES ($1, $2, $3, $4, $5, 0, 0, $6)"},
    [PG_ST_KEY_PURGE] = {"tsr_key_purge",
                         "DELETE FROM keys WHERE state = 3 AND publish_until < $1"},
};

/* ---- small helpers --------------------------------------------------------------- */

static int rows(const PGresult *r)
{
    return r != NULL ? PQntuples(r) : 0;
}

/* ---- rows ------------------------------------------------------------------------ */

static tsr_err read_user_at(const PGresult *r, int row, int off, tsr_user *u)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    int64_t disabled = 0;

    memset(u, 0, sizeof *u);
    rc = tsr_pg_text(r, row, off + 0, u->id, sizeof u->id);
    if (rc == TSR_OK)
        rc = tsr_pg_text(r, row, off + 1, u->username, sizeof u->username);
    if (rc == TSR_OK)
        rc = tsr_pg_text(r, row, off + 2, u->pwhash, sizeof u->pwhash);
    if (rc == TSR_OK)
        rc = tsr_pg_text(r, row, off + 3, u->roles, sizeof u->roles);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, off + 4, &disabled);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, off + 5, &u->created_at);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, off + 6, &u->updated_at);
    if (rc != TSR_OK)
        goto out;
    u->disabled = disabled != 0;
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        tsr_wipe(u, sizeof *u);
    return rc;
}

static tsr_err read_session_at(const PGresult *r, int row, int off, tsr_session *ss)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    int64_t kind = 0;
    size_t hlen = 0;

    memset(ss, 0, sizeof *ss);
    rc = tsr_pg_text(r, row, off + 0, ss->id, sizeof ss->id);
    if (rc == TSR_OK)
        rc = tsr_pg_bytea(r, row, off + 1, ss->secret_hash, sizeof ss->secret_hash, &hlen);
    if (rc == TSR_OK && hlen != TSR_HASH_BYTES)
        rc = TSR_ERR_INTERNAL;
    if (rc == TSR_OK)
        rc = tsr_pg_text(r, row, off + 2, ss->user_id, sizeof ss->user_id);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, off + 3, &kind);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, off + 4, &ss->created_at);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, off + 5, &ss->last_seen_at);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, off + 6, &ss->expires_at);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, off + 7, &ss->idle_expires_at);
    if (rc == TSR_OK)
        rc = tsr_pg_text(r, row, off + 8, ss->ip, sizeof ss->ip);
    if (rc == TSR_OK)
        rc = tsr_pg_text(r, row, off + 9, ss->user_agent, sizeof ss->user_agent);
    if (rc == TSR_OK)
        rc = tsr_pg_text(r, row, off + 10, ss->scope, sizeof ss->scope);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, off + 11, &ss->generation);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_ERR_INTERNAL;
    if (kind == KIND_DB_COOKIE)
        ss->kind = TSR_SESSION_COOKIE;
    else if (kind == KIND_DB_REFRESH)
        ss->kind = TSR_SESSION_REFRESH;
    else
        goto out;
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        memset(ss, 0, sizeof *ss);
    return rc;
}

/* ---- shared statement runners ---------------------------------------------------- */

/* One statement keyed by one text value that must change a row: NOT_FOUND when it
 * changed none. */
static tsr_err change_by_key(tsr_pg *s, pg_stmt id, const char *key)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;

    if (!tsr_store_key_ok(key, TSR_ID_MAX)) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, key);
    rc = tsr_pg_one(s, 0, id, &p, &r);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_pg_changes(r) > 0 ? TSR_OK : TSR_ERR_NOT_FOUND;
out:
    PQclear(r);
    return rc;
}

/* A read of at most one row: TSR_ERR_NOT_FOUND when there is none. */
static tsr_err read_one(tsr_pg *s, pg_stmt id, const pg_params *p, PGresult **r)
{
    tsr_err rc = tsr_pg_one(s, PG_RO, id, p, r);
    if (rc == TSR_OK && rows(*r) == 0) {
        PQclear(*r);
        *r = NULL;
        rc = TSR_ERR_NOT_FOUND;
    }
    return rc;
}

/* Runs a purge statement ($1 the cut-off, $2 the batch size) in batches, each its
 * own statement and transaction, so that purging a million rows never holds row
 * locks (or the revocation counter) for long; a batch that deleted fewer than $2
 * rows found no more. Purging is idempotent. */
static tsr_err purge_batches(tsr_pg *s, pg_stmt id, int64_t cut, size_t *purged)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    size_t total = 0;
    int64_t k;

    *purged = 0;
    for (;;) {
        tsr_pg_params_init(&p);
        tsr_pg_p_i64(&p, cut);
        tsr_pg_p_i64(&p, PURGE_BATCH);
        rc = tsr_pg_one(s, 0, id, &p, &r);
        if (rc != TSR_OK)
            goto out;
        k = tsr_pg_changes(r);
        PQclear(r);
        r = NULL;
        if (k < 0) {
            rc = TSR_ERR_INTERNAL;
            goto out;
        }
        total += (size_t)k;
        if (k < PURGE_BATCH)
            break;
    }
    *purged = total;
    rc = TSR_OK;
out:
    PQclear(r);
    return rc;
}

/* ---- operations: users ----------------------------------------------------------- */

static tsr_err pg_ping(tsr_store *base)
{
    return tsr_pg_one((tsr_pg *)base, PG_RO, PG_ST_PING, NULL, NULL);
}

static tsr_err pg_user_create(tsr_store *base, const tsr_user *u)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    pg_params p;

    rc = tsr_store_check_user(u);
    if (rc != TSR_OK)
        return rc;
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, u->id);
    tsr_pg_p_text(&p, u->username);
    tsr_pg_p_text(&p, u->pwhash);
    tsr_pg_p_text(&p, u->roles);
    tsr_pg_p_i64(&p, u->disabled != 0);
    tsr_pg_p_i64(&p, u->created_at);
    tsr_pg_p_i64(&p, u->updated_at);
    /* A taken id or (case-insensitive) name is a unique violation: EXISTS. */
    return tsr_pg_one((tsr_pg *)base, 0, PG_ST_USER_INSERT, &p, NULL);
}

static tsr_err user_get_by(tsr_pg *s, pg_stmt id, const char *key, tsr_user *out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;

    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, key);
    rc = read_one(s, id, &p, &r);
    if (rc != TSR_OK)
        goto out;
    rc = read_user_at(r, 0, 0, out);
out:
    PQclear(r);
    return rc;
}

static tsr_err pg_user_get(tsr_store *base, const char *id, tsr_user *out)
{
    memset(out, 0, sizeof *out);
    if (!tsr_store_key_ok(id, TSR_ID_MAX))
        return TSR_ERR_NOT_FOUND;
    return user_get_by((tsr_pg *)base, PG_ST_USER_GET, id, out);
}

static tsr_err pg_user_get_by_name(tsr_store *base, const char *username, tsr_user *out)
{
    char lc[TSR_USERNAME_MAX + 1];

    memset(out, 0, sizeof *out);
    if (!tsr_store_key_ok(username, TSR_USERNAME_MAX))
        return TSR_ERR_NOT_FOUND;
    tsr_store_ascii_lower(username, lc, sizeof lc);
    return user_get_by((tsr_pg *)base, PG_ST_USER_GET_BY_NAME, lc, out);
}

static tsr_err pg_user_list(tsr_store *base, const char *after, size_t limit, tsr_user *out,
                            size_t *n)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    size_t got = 0;

    *n = 0;
    if (limit == 0)
        return TSR_OK;
    tsr_pg_params_init(&p);
    /* Every stored id is non-empty, so '' sorts before all of them. */
    tsr_pg_p_text(&p, after != NULL ? after : "");
    tsr_pg_p_size(&p, limit);
    rc = tsr_pg_one((tsr_pg *)base, PG_RO, PG_ST_USER_LIST, &p, &r);
    if (rc != TSR_OK)
        goto out;
    for (int i = 0; i < rows(r) && got < limit; i++) {
        rc = read_user_at(r, i, 0, &out[got]);
        if (rc != TSR_OK)
            goto out;
        got++;
    }
    *n = got;
    rc = TSR_OK;
out:
    PQclear(r);
    if (rc != TSR_OK && got > 0)
        tsr_wipe(out, got * sizeof *out);
    return rc;
}

static tsr_err pg_user_set_pwhash(tsr_store *base, const char *id, const char *old_pwhash,
                                  const char *new_pwhash, int require_enabled, int64_t updated_at)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;

    if (!tsr_store_key_ok(new_pwhash, TSR_PWHASH_MAX)) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    /* No stored row can have this id or this old hash. */
    if (!tsr_store_key_ok(id, TSR_ID_MAX) || strnlen(old_pwhash, TSR_PWHASH_MAX + 1) > TSR_PWHASH_MAX) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, id);
    tsr_pg_p_text(&p, old_pwhash);
    tsr_pg_p_text(&p, new_pwhash);
    tsr_pg_p_i64(&p, updated_at);
    tsr_pg_p_i64(&p, require_enabled != 0);
    rc = tsr_pg_one((tsr_pg *)base, 0, PG_ST_USER_SET_PWHASH, &p, &r);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_pg_changes(r) > 0 ? TSR_OK : TSR_ERR_NOT_FOUND;
out:
    PQclear(r);
    return rc;
}

static tsr_err pg_user_set_flags(tsr_store *base, const char *id, const char *roles, int disabled,
                                 int64_t updated_at)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;

    if (disabled < -1 || disabled > 1 ||
        (roles != NULL && strnlen(roles, TSR_ROLES_MAX + 1) > TSR_ROLES_MAX)) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (!tsr_store_key_ok(id, TSR_ID_MAX)) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, id);
    tsr_pg_p_text(&p, roles); /* NULL: unchanged */
    tsr_pg_p_i64(&p, disabled);
    tsr_pg_p_i64(&p, updated_at);
    rc = tsr_pg_one((tsr_pg *)base, 0, PG_ST_USER_SET_FLAGS, &p, &r);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_pg_changes(r) > 0 ? TSR_OK : TSR_ERR_NOT_FOUND;
out:
    PQclear(r);
    return rc;
}

static tsr_err pg_user_delete(tsr_store *base, const char *id)
{
    /* One statement: the user, their sessions and spent hashes, and the trigger's
     * log rows all commit together or not at all. */
    return change_by_key((tsr_pg *)base, PG_ST_USER_DELETE, id);
}

/* ---- operations: sessions -------------------------------------------------------- */

/* Inserts ss inside the caller's transaction, locking its user's row; NOT_FOUND
 * when the user is gone or disabled. */
static tsr_err insert_session(pg_conn *c, const tsr_session *ss)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;

    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, ss->id);
    tsr_pg_p_bytes(&p, ss->secret_hash, TSR_HASH_BYTES);
    tsr_pg_p_text(&p, ss->user_id);
    tsr_pg_p_i64(&p, ss->kind == TSR_SESSION_COOKIE ? KIND_DB_COOKIE : KIND_DB_REFRESH);
    tsr_pg_p_i64(&p, ss->created_at);
    tsr_pg_p_i64(&p, ss->last_seen_at);
    tsr_pg_p_i64(&p, ss->expires_at);
    tsr_pg_p_i64(&p, ss->idle_expires_at);
    tsr_pg_p_text(&p, ss->ip);
    tsr_pg_p_text(&p, ss->user_agent);
    tsr_pg_p_text(&p, ss->scope);
    tsr_pg_p_i64(&p, ss->generation);
    rc = tsr_pg_exec(c, PG_ST_SES_INSERT, &p, &r);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_pg_changes(r) == 1 ? TSR_OK : TSR_ERR_NOT_FOUND;
out:
    PQclear(r);
    return rc;
}

/* Runs a statement that must change at least one row: NOT_FOUND when none. */
static tsr_err exec_must_change(pg_conn *c, pg_stmt id, const pg_params *p)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;

    rc = tsr_pg_exec(c, id, p, &r);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_pg_changes(r) > 0 ? TSR_OK : TSR_ERR_NOT_FOUND;
out:
    PQclear(r);
    return rc;
}

typedef struct create_ctx {
    const tsr_session *ss;
    size_t cap;
    int64_t now;
} create_ctx;

/* Insert (taking the user's lock), then drop the user's expired sessions and
 * evict the oldest beyond the cap. Under the user lock every session of the user
 * committed before is visible to the clean-up, so concurrent logins of one user
 * still leave exactly the newest cap. */
static tsr_err create_body(pg_conn *c, void *arg)
{
    create_ctx *x = arg;
    tsr_err rc = TSR_ERR_INTERNAL;
    pg_params p;

    rc = insert_session(c, x->ss);
    if (rc != TSR_OK)
        return rc;
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, x->ss->user_id);
    tsr_pg_p_text(&p, x->ss->id);
    tsr_pg_p_i64(&p, x->now);
    /* 0: no cap; OFFSET INT64_MAX evicts nothing. */
    tsr_pg_p_size(&p, x->cap > 0 ? x->cap : (size_t)INT64_MAX);
    return tsr_pg_exec(c, PG_ST_SES_CLEANUP, &p, NULL);
}

static tsr_err pg_session_create(tsr_store *base, const tsr_session *ss, size_t max_per_user,
                                 int64_t now)
{
    create_ctx x = {ss, max_per_user, now};
    tsr_err rc = tsr_store_check_session(ss);

    if (rc != TSR_OK)
        return rc;
    return tsr_pg_run((tsr_pg *)base, PG_TX, create_body, &x);
}

static tsr_err session_get_by(tsr_pg *s, pg_stmt id, const char *key, const uint8_t *hash,
                              tsr_session *out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;

    tsr_pg_params_init(&p);
    if (hash != NULL)
        tsr_pg_p_bytes(&p, hash, TSR_HASH_BYTES);
    else
        tsr_pg_p_text(&p, key);
    rc = read_one(s, id, &p, &r);
    if (rc != TSR_OK)
        goto out;
    rc = read_session_at(r, 0, 0, out);
out:
    PQclear(r);
    return rc;
}

static tsr_err pg_session_get(tsr_store *base, const char *id, tsr_session *out)
{
    memset(out, 0, sizeof *out);
    if (!tsr_store_key_ok(id, TSR_ID_MAX))
        return TSR_ERR_NOT_FOUND;
    return session_get_by((tsr_pg *)base, PG_ST_SES_GET, id, NULL, out);
}

static tsr_err pg_session_get_by_hash(tsr_store *base, const uint8_t hash[TSR_HASH_BYTES],
                                      tsr_session *out)
{
    memset(out, 0, sizeof *out);
    return session_get_by((tsr_pg *)base, PG_ST_SES_GET_BY_HASH, NULL, hash, out);
}

static tsr_err pg_session_resolve(tsr_store *base, const uint8_t hash[TSR_HASH_BYTES],
                                  tsr_session *ss, tsr_user *u)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;

    memset(ss, 0, sizeof *ss);
    memset(u, 0, sizeof *u);
    tsr_pg_params_init(&p);
    tsr_pg_p_bytes(&p, hash, TSR_HASH_BYTES);
    rc = read_one((tsr_pg *)base, PG_ST_SES_RESOLVE, &p, &r);
    if (rc != TSR_OK)
        goto out;
    rc = read_session_at(r, 0, 0, ss);
    if (rc != TSR_OK)
        goto out;
    rc = read_user_at(r, 0, SESSION_NCOLS, u);
out:
    if (rc != TSR_OK) {
        memset(ss, 0, sizeof *ss);
        tsr_wipe(u, sizeof *u);
    }
    PQclear(r);
    return rc;
}

static tsr_err pg_session_touch(tsr_store *base, const char *id, int64_t last_seen_at,
                                int64_t idle_expires_at)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;

    if (!tsr_store_key_ok(id, TSR_ID_MAX)) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, id);
    tsr_pg_p_i64(&p, last_seen_at);
    tsr_pg_p_i64(&p, idle_expires_at);
    rc = tsr_pg_one((tsr_pg *)base, 0, PG_ST_SES_TOUCH, &p, &r);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_pg_changes(r) > 0 ? TSR_OK : TSR_ERR_NOT_FOUND;
out:
    PQclear(r);
    return rc;
}

static tsr_err pg_session_list(tsr_store *base, const char *user_id, int64_t now, tsr_session *out,
                               size_t max, size_t *n)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    size_t got = 0;

    *n = 0;
    /* An id that cannot exist has no sessions: an empty list, as for any unknown user. */
    if (max == 0 || !tsr_store_key_ok(user_id, TSR_ID_MAX))
        return TSR_OK;
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, user_id);
    tsr_pg_p_i64(&p, now);
    tsr_pg_p_size(&p, max);
    rc = tsr_pg_one((tsr_pg *)base, PG_RO, PG_ST_SES_LIST, &p, &r);
    if (rc != TSR_OK)
        goto out;
    for (int i = 0; i < rows(r) && got < max; i++) {
        rc = read_session_at(r, i, 0, &out[got]);
        if (rc != TSR_OK)
            goto out;
        got++;
    }
    *n = got;
    rc = TSR_OK;
out:
    PQclear(r);
    if (rc != TSR_OK && got > 0)
        memset(out, 0, got * sizeof *out);
    return rc;
}

static tsr_err pg_session_delete(tsr_store *base, const char *id)
{
    return change_by_key((tsr_pg *)base, PG_ST_SES_DELETE, id);
}

static tsr_err pg_session_delete_user(tsr_store *base, const char *user_id, const char *except_id,
                                      size_t *deleted)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    int64_t k;

    *deleted = 0;
    if (!tsr_store_key_ok(user_id, TSR_ID_MAX))
        return TSR_OK;
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, user_id);
    tsr_pg_p_text(&p, except_id); /* NULL: all of them */
    /* One statement: every row goes or none does. */
    rc = tsr_pg_one((tsr_pg *)base, 0, PG_ST_SES_DELETE_USER, &p, &r);
    if (rc != TSR_OK)
        goto out;
    k = tsr_pg_changes(r);
    if (k < 0) {
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    *deleted = (size_t)k;
    rc = TSR_OK;
out:
    PQclear(r);
    return rc;
}

/* Locks the user's row for the rest of the transaction: NOT_FOUND when the user
 * is gone or disabled. */
static tsr_err lock_enabled_user(pg_conn *c, const char *user_id)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    int64_t disabled = 1;

    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, user_id);
    rc = tsr_pg_exec(c, PG_ST_USER_LOCK, &p, &r);
    if (rc != TSR_OK)
        goto out;
    if (rows(r) == 0) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = tsr_pg_i64(r, 0, 0, &disabled);
    if (rc != TSR_OK)
        goto out;
    rc = disabled == 0 ? TSR_OK : TSR_ERR_NOT_FOUND;
out:
    PQclear(r);
    return rc;
}

typedef struct rotate_ctx {
    const char *old_id;
    const tsr_session *fresh;
} rotate_ctx;

/* User lock, delete the old session (its owner's only), insert the fresh one. Of
 * two rotations racing on one old id, the second waits for the user lock, then
 * finds the old session gone: NOT_FOUND, so there is only ever one successor. */
static tsr_err session_rotate_body(pg_conn *c, void *arg)
{
    rotate_ctx *x = arg;
    tsr_err rc = TSR_ERR_INTERNAL;
    pg_params p;

    rc = lock_enabled_user(c, x->fresh->user_id);
    if (rc != TSR_OK)
        return rc;
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, x->old_id);
    tsr_pg_p_text(&p, x->fresh->user_id);
    rc = exec_must_change(c, PG_ST_SES_DELETE_OWNED, &p);
    if (rc != TSR_OK)
        return rc;
    return insert_session(c, x->fresh);
}

static tsr_err pg_session_rotate(tsr_store *base, const char *old_id, const tsr_session *fresh)
{
    rotate_ctx x = {old_id, fresh};
    tsr_err rc = tsr_store_check_session(fresh);

    if (rc != TSR_OK)
        return rc;
    if (!tsr_store_key_ok(old_id, TSR_ID_MAX))
        return TSR_ERR_NOT_FOUND;
    return tsr_pg_run((tsr_pg *)base, PG_TX, session_rotate_body, &x);
}

typedef struct pwchange_ctx {
    const char *user_id, *old_pwhash, *new_pwhash, *keep_id;
    const tsr_session *fresh;
    int64_t now;
    size_t revoked;
} pwchange_ctx;

/* The four steps of store.h in one transaction. Step 1's UPDATE locks the user's
 * row, so a concurrent revoke-all, login or disable is wholly before or after. */
static tsr_err pwchange_body(pg_conn *c, void *arg)
{
    pwchange_ctx *x = arg;
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    int64_t all = 0, keep = 0;

    x->revoked = 0;
    /* 1. The hash the caller verified is still the stored one; the user enabled. */
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, x->user_id);
    tsr_pg_p_text(&p, x->old_pwhash);
    tsr_pg_p_text(&p, x->new_pwhash);
    tsr_pg_p_i64(&p, x->now);
    tsr_pg_p_i64(&p, 1);
    rc = exec_must_change(c, PG_ST_USER_SET_PWHASH, &p);
    if (rc != TSR_OK)
        goto out;
    /* 2 and 3. Every session of the user; the current one must have been among
     * them (a revoked session must not come back under a new id). */
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, x->user_id);
    tsr_pg_p_text(&p, x->keep_id);
    rc = tsr_pg_exec(c, PG_ST_SES_END_ALL_KEEP, &p, &r);
    if (rc != TSR_OK)
        goto out;
    if (rows(r) != 1) {
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    rc = tsr_pg_i64(r, 0, 0, &all);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, 0, 1, &keep);
    if (rc != TSR_OK)
        goto out;
    if (keep != 1 || all < 1) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    /* 4. The current session's successor. */
    rc = insert_session(c, x->fresh);
    if (rc != TSR_OK)
        goto out;
    x->revoked = (size_t)(all - 1);
    rc = TSR_OK;
out:
    PQclear(r);
    return rc;
}

static tsr_err pg_password_change(tsr_store *base, const char *user_id, const char *old_pwhash,
                                  const char *new_pwhash, const char *keep_session_id,
                                  const tsr_session *fresh, int64_t now, size_t *revoked)
{
    pwchange_ctx x = {user_id, old_pwhash, new_pwhash, keep_session_id, fresh, now, 0};
    tsr_err rc = TSR_ERR_INTERNAL;

    *revoked = 0;
    rc = tsr_store_check_session(fresh);
    if (rc != TSR_OK)
        return rc;
    if (!tsr_store_key_ok(new_pwhash, TSR_PWHASH_MAX) || strcmp(fresh->user_id, user_id) != 0)
        return TSR_ERR_INVALID;
    if (!tsr_store_key_ok(user_id, TSR_ID_MAX) || !tsr_store_key_ok(keep_session_id, TSR_ID_MAX) ||
        strnlen(old_pwhash, TSR_PWHASH_MAX + 1) > TSR_PWHASH_MAX)
        return TSR_ERR_NOT_FOUND;
    rc = tsr_pg_run((tsr_pg *)base, PG_TX, pwchange_body, &x);
    if (rc != TSR_OK)
        return rc;
    *revoked = x.revoked;
    return TSR_OK;
}

static tsr_err pg_session_count(tsr_store *base, int64_t now, size_t *n)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    int64_t v = 0;

    *n = 0;
    tsr_pg_params_init(&p);
    tsr_pg_p_i64(&p, now);
    rc = read_one((tsr_pg *)base, PG_ST_SES_COUNT, &p, &r);
    if (rc == TSR_ERR_NOT_FOUND)
        rc = TSR_ERR_INTERNAL; /* count(*) always answers one row */
    if (rc != TSR_OK)
        goto out;
    rc = tsr_pg_i64(r, 0, 0, &v);
    if (rc != TSR_OK)
        goto out;
    *n = v > 0 ? (size_t)v : 0;
out:
    PQclear(r);
    return rc;
}

static tsr_err pg_purge_expired(tsr_store *base, int64_t now, size_t *purged)
{
    return purge_batches((tsr_pg *)base, PG_ST_SES_PURGE_BATCH, now, purged);
}

/* ---- operations: meta ------------------------------------------------------------ */

static tsr_err pg_meta_get(tsr_store *base, const char *key, char *out, size_t cap)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;

    memset(out, 0, cap);
    if (!tsr_store_key_ok(key, TSR_META_MAX)) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, key);
    rc = read_one((tsr_pg *)base, PG_ST_META_GET, &p, &r);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_pg_text(r, 0, 0, out, cap);
    /* A value longer than the caller's buffer is refused, never cut. */
    if (rc == TSR_ERR_INTERNAL && !PQgetisnull(r, 0, 0) && (size_t)PQgetlength(r, 0, 0) >= cap)
        rc = TSR_ERR_BUFFER;
out:
    PQclear(r);
    if (rc != TSR_OK)
        memset(out, 0, cap);
    return rc;
}

static tsr_err meta_write(tsr_store *base, pg_stmt id, const char *key, const char *value)
{
    pg_params p;

    if (!tsr_store_key_ok(key, TSR_META_MAX))
        return TSR_ERR_INVALID;
    if (strnlen(value, TSR_META_MAX + 1) > TSR_META_MAX)
        return TSR_ERR_TOO_LARGE;
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, key);
    tsr_pg_p_text(&p, value);
    return tsr_pg_one((tsr_pg *)base, 0, id, &p, NULL);
}

static tsr_err pg_meta_set(tsr_store *base, const char *key, const char *value)
{
    return meta_write(base, PG_ST_META_SET, key, value);
}

/* A present key is a unique violation: tsr_pg_exec maps it to TSR_ERR_EXISTS. */
static tsr_err pg_meta_insert(tsr_store *base, const char *key, const char *value)
{
    return meta_write(base, PG_ST_META_INSERT, key, value);
}

/* ---- operations: refresh families ------------------------------------------------ */

/* Column layout of PG_ST_REFRESH_LOOKUP: the session, its sealed successor, the
 * user, then spent, the spent token's generation and when it was spent. */
#define RL_SEALED SESSION_NCOLS
#define RL_USER (SESSION_NCOLS + 1)
#define RL_SPENT (RL_USER + USER_NCOLS)

static tsr_err pg_refresh_lookup(tsr_store *base, const uint8_t hash[TSR_HASH_BYTES],
                                 tsr_session *ss, tsr_user *u, tsr_refresh_match *m)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    int64_t spent = 0;

    memset(ss, 0, sizeof *ss);
    memset(u, 0, sizeof *u);
    memset(m, 0, sizeof *m);
    tsr_pg_params_init(&p);
    tsr_pg_p_bytes(&p, hash, TSR_HASH_BYTES);
    rc = read_one((tsr_pg *)base, PG_ST_REFRESH_LOOKUP, &p, &r);
    if (rc != TSR_OK)
        goto out;
    rc = read_session_at(r, 0, 0, ss);
    if (rc == TSR_OK)
        rc = read_user_at(r, 0, RL_USER, u);
    /* NULL (no rotation yet) reads as length 0. */
    if (rc == TSR_OK)
        rc = tsr_pg_bytea(r, 0, RL_SEALED, m->sealed, sizeof m->sealed, &m->sealed_len);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, 0, RL_SPENT, &spent);
    if (rc != TSR_OK)
        goto out;
    m->spent = spent != 0;
    if (m->spent) {
        rc = tsr_pg_i64(r, 0, RL_SPENT + 1, &m->spent_generation);
        if (rc == TSR_OK)
            rc = tsr_pg_i64(r, 0, RL_SPENT + 2, &m->spent_at);
        if (rc != TSR_OK)
            goto out;
    }
    rc = TSR_OK;
out:
    if (rc != TSR_OK) {
        memset(ss, 0, sizeof *ss);
        tsr_wipe(u, sizeof *u);
        tsr_wipe(m, sizeof *m);
    }
    PQclear(r);
    return rc;
}

typedef struct refresh_ctx {
    const char *session_id;
    int64_t generation;
    const uint8_t *new_hash;
    const uint8_t *sealed;
    size_t sealed_len;
    int64_t now, idle_expires_at;
} refresh_ctx;

/* The rotation statement; when it changed nothing, a second one says why:
 * NOT_FOUND when there is no enabled refresh family of that id (whatever the
 * generation), CONFLICT when it lives on under another generation. */
static tsr_err refresh_rotate_body(pg_conn *c, void *arg)
{
    refresh_ctx *x = arg;
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    int64_t k, gen = 0;

    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, x->session_id);
    tsr_pg_p_i64(&p, x->generation);
    tsr_pg_p_bytes(&p, x->new_hash, TSR_HASH_BYTES);
    tsr_pg_p_bytes(&p, x->sealed_len > 0 ? x->sealed : NULL, x->sealed_len);
    tsr_pg_p_i64(&p, x->now);
    tsr_pg_p_i64(&p, x->idle_expires_at);
    rc = tsr_pg_exec(c, PG_ST_REFRESH_ROTATE, &p, &r);
    if (rc != TSR_OK)
        goto out;
    k = tsr_pg_changes(r);
    PQclear(r);
    r = NULL;
    if (k == 1) {
        rc = TSR_OK;
        goto out;
    }
    if (k != 0) {
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, x->session_id);
    rc = tsr_pg_exec(c, PG_ST_REFRESH_STATE, &p, &r);
    if (rc != TSR_OK)
        goto out;
    if (rows(r) == 0) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = tsr_pg_i64(r, 0, 0, &gen);
    if (rc != TSR_OK)
        goto out;
    /* Another generation: another rotation won. The same one can only mean the
     * user was disabled and enabled again between the two statements: the caller
     * looks the token up again either way. */
    rc = TSR_ERR_CONFLICT;
out:
    PQclear(r);
    return rc;
}

static tsr_err pg_refresh_rotate(tsr_store *base, const char *session_id, int64_t generation,
                                 const uint8_t new_hash[TSR_HASH_BYTES], const uint8_t *sealed,
                                 size_t sealed_len, int64_t now, int64_t idle_expires_at)
{
    refresh_ctx x = {session_id, generation, new_hash, sealed, sealed_len, now, idle_expires_at};

    if (sealed_len > TSR_SEALED_MAX || (sealed == NULL && sealed_len > 0))
        return TSR_ERR_INVALID;
    if (!tsr_store_key_ok(session_id, TSR_ID_MAX))
        return TSR_ERR_NOT_FOUND;
    return tsr_pg_run((tsr_pg *)base, 0, refresh_rotate_body, &x);
}

/* ---- operations: revocations ----------------------------------------------------- */

static tsr_err pg_revocation_add(tsr_store *base, tsr_revocation_kind kind, const char *value,
                                 int64_t revoked_at, int64_t expires_at)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    int64_t k;

    if (kind == TSR_REVOKE_SID)
        k = REVOKE_DB_SID;
    else if (kind == TSR_REVOKE_JTI)
        k = REVOKE_DB_JTI;
    else
        return TSR_ERR_INVALID;
    if (!tsr_store_key_ok(value, TSR_ID_MAX))
        return TSR_ERR_INVALID;
    tsr_pg_params_init(&p);
    tsr_pg_p_i64(&p, k);
    tsr_pg_p_text(&p, value);
    tsr_pg_p_i64(&p, revoked_at);
    tsr_pg_p_i64(&p, expires_at);
    rc = tsr_pg_one((tsr_pg *)base, 0, PG_ST_REV_INSERT, &p, &r);
    if (rc != TSR_OK)
        goto out;
    /* No counter row (someone deleted it): nothing was logged. */
    rc = tsr_pg_changes(r) == 1 ? TSR_OK : TSR_ERR_INTERNAL;
out:
    PQclear(r);
    return rc;
}

static tsr_err read_revocation(const PGresult *r, int row, tsr_revocation *v)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    int64_t kind = 0;

    memset(v, 0, sizeof *v);
    rc = tsr_pg_i64(r, row, 0, &v->seq);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, 1, &kind);
    if (rc == TSR_OK)
        rc = tsr_pg_text(r, row, 2, v->value, sizeof v->value);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, 3, &v->revoked_at);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, 4, &v->expires_at);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_ERR_INTERNAL;
    if (kind == REVOKE_DB_SID)
        v->kind = TSR_REVOKE_SID;
    else if (kind == REVOKE_DB_JTI)
        v->kind = TSR_REVOKE_JTI;
    else
        goto out;
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        memset(v, 0, sizeof *v);
    return rc;
}

static tsr_err pg_revocation_since(tsr_store *base, int64_t after_seq, int64_t revoked_since,
                                   tsr_revocation *out, size_t max, size_t *n)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    size_t got = 0;

    *n = 0;
    if (max == 0)
        return TSR_OK;
    tsr_pg_params_init(&p);
    tsr_pg_p_i64(&p, after_seq);
    tsr_pg_p_i64(&p, revoked_since);
    tsr_pg_p_size(&p, max);
    rc = tsr_pg_one((tsr_pg *)base, PG_RO, PG_ST_REV_SINCE, &p, &r);
    if (rc != TSR_OK)
        goto out;
    for (int i = 0; i < rows(r) && got < max; i++) {
        rc = read_revocation(r, i, &out[got]);
        if (rc != TSR_OK)
            goto out;
        got++;
    }
    *n = got;
    rc = TSR_OK;
out:
    PQclear(r);
    if (rc != TSR_OK && got > 0)
        memset(out, 0, got * sizeof *out);
    return rc;
}

static tsr_err pg_revocation_purge(tsr_store *base, int64_t revoked_before, size_t *purged)
{
    return purge_batches((tsr_pg *)base, PG_ST_REV_PURGE_BATCH, revoked_before, purged);
}

/* ---- operations: signing keys ---------------------------------------------------- */

/* One key row (KEY_COLS order) straight into the caller's record. */
static tsr_err read_key(const PGresult *r, int row, tsr_key_record *k)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    int64_t state = 0;

    memset(k, 0, sizeof *k);
    rc = tsr_pg_text(r, row, 0, k->kid, sizeof k->kid);
    if (rc == TSR_OK)
        rc = tsr_pg_text(r, row, 1, k->alg, sizeof k->alg);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, 2, &state);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, 3, &k->created_at);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, 4, &k->activated_at);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, 5, &k->retired_at);
    if (rc == TSR_OK)
        rc = tsr_pg_i64(r, row, 6, &k->publish_until);
    if (rc == TSR_OK)
        rc = tsr_pg_text(r, row, 7, k->jwk, sizeof k->jwk);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_ERR_INTERNAL;
    if (state == KEY_DB_NEXT)
        k->state = TSR_KEY_STATE_NEXT;
    else if (state == KEY_DB_ACTIVE)
        k->state = TSR_KEY_STATE_ACTIVE;
    else if (state == KEY_DB_RETIRED)
        k->state = TSR_KEY_STATE_RETIRED;
    else
        goto out;
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        tsr_wipe(k, sizeof *k);
    return rc;
}

static tsr_err pg_key_list(tsr_store *base, tsr_key_record *out, size_t max, size_t *n)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;
    size_t got = 0;

    *n = 0;
    if (max == 0)
        return TSR_OK;
    tsr_pg_params_init(&p);
    tsr_pg_p_size(&p, max);
    rc = tsr_pg_one((tsr_pg *)base, PG_RO, PG_ST_KEY_LIST, &p, &r);
    if (rc != TSR_OK)
        goto out;
    for (int i = 0; i < rows(r) && got < max; i++) {
        rc = read_key(r, i, &out[got]);
        if (rc != TSR_OK)
            goto out;
        got++;
    }
    *n = got;
    rc = TSR_OK;
out:
    /* The private JWKs in libpq's result memory go before it is freed. */
    for (int i = 0; i < rows(r); i++)
        tsr_pg_wipe_value(r, i, 7);
    PQclear(r);
    if (rc != TSR_OK && got > 0)
        tsr_wipe(out, got * sizeof *out);
    return rc;
}

/* Inserts k in state (a KEY_DB_* value) inside the caller's transaction; created_at
 * as given, or now when the record leaves it 0. EXISTS for a taken kid. */
static tsr_err insert_key(pg_conn *c, const tsr_key_record *k, int64_t state, int64_t activated_at,
                          int64_t now)
{
    pg_params p;

    tsr_pg_params_init(&p);
    tsr_pg_p_text(&p, k->kid);
    tsr_pg_p_text(&p, k->alg);
    tsr_pg_p_i64(&p, state);
    tsr_pg_p_i64(&p, k->created_at != 0 ? k->created_at : now);
    tsr_pg_p_i64(&p, activated_at);
    tsr_pg_p_text(&p, k->jwk); /* bound from the caller's record */
    return tsr_pg_exec(c, PG_ST_KEY_INSERT, &p, NULL);
}

/* Runs a key statement with integer parameter $1 and, with have_p2, $2. */
static tsr_err key_exec(pg_conn *c, pg_stmt id, int64_t p1, int have_p2, int64_t p2,
                        int64_t *changed)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    pg_params p;

    if (changed != NULL)
        *changed = 0;
    tsr_pg_params_init(&p);
    tsr_pg_p_i64(&p, p1);
    if (have_p2)
        tsr_pg_p_i64(&p, p2);
    rc = tsr_pg_exec(c, id, &p, &r);
    if (rc != TSR_OK)
        goto out;
    if (changed != NULL)
        *changed = tsr_pg_changes(r);
out:
    PQclear(r);
    return rc;
}

typedef struct key_rotate_ctx {
    const char *expect;
    const tsr_key_record *new_active, *new_next;
    int64_t now, publish_until;
} key_rotate_ctx;

/* The five steps of store.h in one transaction. The table lock (SHARE ROW
 * EXCLUSIVE conflicts with itself, not with readers) serialises rotations, even
 * two that both find no active key: the second then fails the compare. */
static tsr_err key_rotate_body(pg_conn *c, void *arg)
{
    key_rotate_ctx *x = arg;
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    char cur[TSR_KID_STORE_MAX + 1];
    int64_t changed = 0;

    cur[0] = '\0';
    rc = tsr_pg_exec_simple(c, "LOCK TABLE keys IN SHARE ROW EXCLUSIVE MODE");
    if (rc != TSR_OK)
        goto out;
    /* 1. Compare: kids are public names, not secrets; strcmp is fine. */
    rc = tsr_pg_exec(c, PG_ST_KEY_ACTIVE, NULL, &r);
    if (rc != TSR_OK)
        goto out;
    if (rows(r) > 1) {
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    if (rows(r) == 1) {
        rc = tsr_pg_text(r, 0, 0, cur, sizeof cur);
        if (rc != TSR_OK)
            goto out;
    }
    PQclear(r);
    r = NULL;
    if (strcmp(cur, x->expect) != 0) {
        rc = TSR_ERR_CONFLICT;
        goto out;
    }
    /* 2. Retire the active key, published until its last token has expired. */
    if (cur[0] != '\0') {
        rc = key_exec(c, PG_ST_KEY_RETIRE_ACTIVE, x->now, 1, x->publish_until, NULL);
        if (rc != TSR_OK)
            goto out;
    }
    /* 3. The next key promoted, or the caller's (passing over any next key). */
    if (x->new_active == NULL) {
        rc = key_exec(c, PG_ST_KEY_PROMOTE_NEXT, x->now, 0, 0, &changed);
        if (rc != TSR_OK)
            goto out;
        if (changed != 1) {
            rc = changed == 0 ? TSR_ERR_NOT_FOUND : TSR_ERR_INTERNAL;
            goto out;
        }
    } else {
        rc = key_exec(c, PG_ST_KEY_RETIRE_NEXT, x->now, 0, 0, NULL);
        if (rc != TSR_OK)
            goto out;
        rc = insert_key(c, x->new_active, KEY_DB_ACTIVE, x->now, x->now);
        if (rc != TSR_OK)
            goto out;
    }
    /* 4. The new next key. */
    if (x->new_next != NULL) {
        rc = insert_key(c, x->new_next, KEY_DB_NEXT, 0, x->now);
        if (rc != TSR_OK)
            goto out;
    }
    /* 5. Retired keys whose last token has expired. */
    rc = key_exec(c, PG_ST_KEY_PURGE, x->now, 0, 0, NULL);
out:
    PQclear(r);
    return rc;
}

static tsr_err pg_key_rotate(tsr_store *base, const char *expect_active_kid,
                             const tsr_key_record *new_active, const tsr_key_record *new_next,
                             int64_t now, int64_t publish_until)
{
    key_rotate_ctx x = {expect_active_kid, new_active, new_next, now, publish_until};
    tsr_err rc = TSR_ERR_INTERNAL;

    if (new_active != NULL) {
        rc = tsr_store_check_key(new_active);
        if (rc != TSR_OK)
            return rc;
    }
    if (new_next != NULL) {
        rc = tsr_store_check_key(new_next);
        if (rc != TSR_OK)
            return rc;
    }
    /* No stored kid is longer than this: the compare would fail anyway. */
    if (strnlen(expect_active_kid, TSR_KID_STORE_MAX + 1) > TSR_KID_STORE_MAX)
        return TSR_ERR_CONFLICT;
    return tsr_pg_run((tsr_pg *)base, PG_TX, key_rotate_body, &x);
}

const tsr_store_ops tsr_pg_ops = {
    .name = "postgresql",
    .close = tsr_pg_close,
    .ping = pg_ping,
    .user_create = pg_user_create,
    .user_get = pg_user_get,
    .user_get_by_name = pg_user_get_by_name,
    .user_list = pg_user_list,
    .user_set_pwhash = pg_user_set_pwhash,
    .user_set_flags = pg_user_set_flags,
    .user_delete = pg_user_delete,
    .session_create = pg_session_create,
    .session_get = pg_session_get,
    .session_get_by_hash = pg_session_get_by_hash,
    .session_resolve = pg_session_resolve,
    .session_touch = pg_session_touch,
    .session_list = pg_session_list,
    .session_delete = pg_session_delete,
    .session_delete_user = pg_session_delete_user,
    .session_rotate = pg_session_rotate,
    .password_change = pg_password_change,
    .session_count = pg_session_count,
    .purge_expired = pg_purge_expired,
    .meta_get = pg_meta_get,
    .meta_set = pg_meta_set,
    .meta_insert = pg_meta_insert,
    .refresh_lookup = pg_refresh_lookup,
    .refresh_rotate = pg_refresh_rotate,
    .revocation_add = pg_revocation_add,
    .revocation_since = pg_revocation_since,
    .revocation_purge = pg_revocation_purge,
    .key_list = pg_key_list,
    .key_rotate = pg_key_rotate,
};
