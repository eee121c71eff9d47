/* sqlite.c: the SQLite backend of the store (the default, single-machine store).
 *
 * A small mutex-protected pool of connections, each with its own cache of prepared
 * statements; WAL journal with synchronous=NORMAL; busy timeout; foreign keys on;
 * versioned migrations applied in one transaction at open. Every change that
 * touches more than one row is one statement or one BEGIN IMMEDIATE transaction.
 * docs/internals/store.md explains the choices. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store_int.h"
#include "crypto/crypto.h"
#include "store/sqlite/sqlite_int.h"

#define BUSY_TIMEOUT_MS 5000 /* a writer waits this long for the lock, then UNAVAILABLE */
#define POOL_MAX 64          /* connections; more than any sane server.threads */
#define POOL_WAIT_S 5        /* waiting for a free connection, like the busy timeout */
#define PURGE_BATCH 1000     /* rows per purge transaction: keeps the write lock short */
#define PATH_CAP 4096

/* The schema, one entry per version: migrations[i] takes user_version i to i + 1.
 * Append only; never edit a shipped entry (databases in the field already ran it). */
static const char *const migrations[] = {
    /* 1: users, sessions, meta. STRICT makes a wrongly typed bind an error, not data. */
    "CREATE TABLE users ("
    " id TEXT PRIMARY KEY,"
    " username TEXT NOT NULL,"
    " username_lc TEXT NOT NULL UNIQUE,"
    " pwhash TEXT NOT NULL,"
    " roles TEXT NOT NULL DEFAULT '',"
    " disabled INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL DEFAULT 0,"
    " updated_at INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    "CREATE TABLE sessions ("
    " id TEXT PRIMARY KEY,"
    " secret_hash BLOB NOT NULL UNIQUE CHECK (length(secret_hash) = 32),"
    " user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
    " created_at INTEGER NOT NULL,"
    " last_seen_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " idle_expires_at INTEGER NOT NULL,"
    " ip TEXT NOT NULL DEFAULT '',"
    " user_agent TEXT NOT NULL DEFAULT ''"
    ") STRICT;"
    /* Per-user listing, cap eviction and the ON DELETE CASCADE look-up. */
    "CREATE INDEX sessions_user_created ON sessions (user_id, created_at);"
    /* purge_expired: one range scan per expiry column (SQLite's OR optimisation). */
    "CREATE INDEX sessions_expires ON sessions (expires_at);"
    "CREATE INDEX sessions_idle_expires ON sessions (idle_expires_at);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;",

    /* 2: token and hybrid mode. Refresh families are sessions of kind 2 that gain a
     * scope, a generation (rotations so far) and the sealed successor; the hashes of
     * their spent tokens live in refresh_spent until the family ends. revocations is
     * the durable log behind every instance's revoked set, fed by the trigger below
     * for every session ended early; keys holds the signing keys. */
    "ALTER TABLE sessions ADD COLUMN scope TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE sessions ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE sessions ADD COLUMN sealed BLOB"
    " CHECK (sealed IS NULL OR length(sealed) <= 128);"
    /* WITHOUT ROWID: the 32-byte hash is the key; no second B-tree for it. */
    "CREATE TABLE refresh_spent ("
    " hash BLOB PRIMARY KEY CHECK (length(hash) = 32),"
    " session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    " generation INTEGER NOT NULL,"
    " spent_at INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    /* The ON DELETE CASCADE look-up of every session delete. */
    "CREATE INDEX refresh_spent_session ON refresh_spent (session_id);"
    /* AUTOINCREMENT: a seq is never reused, even after a purge emptied the table, so
     * a reader paging by the last seq it saw can never skip a new row. */
    "CREATE TABLE revocations ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
    " value TEXT NOT NULL,"
    " revoked_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    "CREATE INDEX revocations_revoked_at ON revocations (revoked_at);"
    "CREATE TABLE keys ("
    " kid TEXT PRIMARY KEY,"
    " alg TEXT NOT NULL,"
    " state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),"
    " created_at INTEGER NOT NULL DEFAULT 0,"
    " activated_at INTEGER NOT NULL DEFAULT 0,"
    " retired_at INTEGER NOT NULL DEFAULT 0,"
    " publish_until INTEGER NOT NULL DEFAULT 0,"
    " jwk TEXT NOT NULL"
    ") STRICT;"
    /* At most one active key, whatever a buggy caller does. */
    "CREATE UNIQUE INDEX keys_one_active ON keys (state) WHERE state = 2;"
    /* Every statement that ends a session still alive by the store's clock (logout,
     * revoke, rotation, cap eviction, password change, user delete through ON DELETE
     * CASCADE, which fires this too) logs its sid in the same transaction; no code
     * path can forget it. Purging expired sessions logs nothing. */
    "CREATE TRIGGER sessions_revoke_on_delete AFTER DELETE ON sessions"
    " WHEN OLD.expires_at > unixepoch() AND OLD.idle_expires_at > unixepoch()"
    " BEGIN"
    " INSERT INTO revocations (kind, value, revoked_at, expires_at)"
    " VALUES (1, OLD.id, unixepoch(), 0);"
    " END;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* Persisted values of tsr_session_kind: mapped explicitly so that reordering the C
 * enum can never change what rows mean. */
#define KIND_DB_COOKIE 1
#define KIND_DB_REFRESH 2

/* Persisted values of tsr_key_state and tsr_revocation_kind: the enums' own numbers
 * are fixed by store.h ("never renumber"), and the schema's CHECKs name them. */
#define KEY_DB_NEXT 1
#define KEY_DB_ACTIVE 2
#define KEY_DB_RETIRED 3
#define REVOKE_DB_SID 1
#define REVOKE_DB_JTI 2

/* Statements that read a session and its user name the columns through these, so
 * read_session_at and read_user_at see them in one order everywhere. */
#define SESSION_COLS                                                                               \
    "id, secret_hash, user_id, kind, created_at, last_seen_at, expires_at, "                       \
    "idle_expires_at, ip, user_agent, scope, generation"
#define SESSION_NCOLS 12
#define SESSION_COLS_S                                                                             \
    "s.id, s.secret_hash, s.user_id, s.kind, s.created_at, s.last_seen_at, s.expires_at, "         \
    "s.idle_expires_at, s.ip, s.user_agent, s.scope, s.generation"
#define USER_COLS "id, username, pwhash, roles, disabled, created_at, updated_at"
/* The user without the password hash (the resolve paths never need it). */
#define USER_COLS_U_NOPW "u.id, u.username, '', u.roles, u.disabled, u.created_at, u.updated_at"
#define KEY_COLS "kid, alg, state, created_at, activated_at, retired_at, publish_until, jwk"

typedef enum stmt_id {
    ST_BEGIN = 0,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_PING,
    ST_USER_INSERT,
    ST_USER_GET,
    ST_USER_GET_BY_NAME,
    ST_USER_LIST,
    ST_USER_SET_PWHASH,
    ST_USER_SET_FLAGS,
    ST_USER_DELETE,
    ST_SES_INSERT,
    ST_SES_DELETE_EXPIRED_OF_USER,
    ST_SES_EVICT_BEYOND_CAP,
    ST_SES_GET,
    ST_SES_GET_BY_HASH,
    ST_SES_TOUCH,
    ST_SES_LIST,
    ST_SES_DELETE,
    ST_SES_DELETE_USER,
    ST_SES_DELETE_OWNED,
    ST_SES_COUNT,
    ST_SES_PURGE_BATCH,
    ST_META_GET,
    ST_META_SET,
    ST_META_INSERT,
    ST_SES_RESOLVE,
    ST_REFRESH_LOOKUP,
    ST_REFRESH_SPEND,
    ST_REFRESH_STATE,
    ST_REFRESH_ADVANCE,
    ST_REV_INSERT,
    ST_REV_SINCE,
    ST_REV_PURGE_BATCH,
    ST_KEY_LIST,
    ST_KEY_ACTIVE,
    ST_KEY_RETIRE_ACTIVE,
    ST_KEY_PROMOTE_NEXT,
    ST_KEY_RETIRE_NEXT,
    ST_KEY_INSERT,
    ST_KEY_PURGE,
    ST__COUNT
} stmt_id;

static const char *const stmt_sql[ST__COUNT] = {
    /* IMMEDIATE takes the write lock up front: a deferred transaction that reads and
     * then writes can fail with SQLITE_BUSY without the busy handler ever waiting. */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PING] = "SELECT 1 FROM meta LIMIT 1",
    [ST_USER_INSERT] = "INSERT INTO users (id, username, username_lc, pwhash, roles, disabled, "
                       "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = ?1",
    [ST_USER_GET_BY_NAME] = "SELECT " USER_COLS " FROM users WHERE username_lc = ?1",
    [ST_USER_LIST] = "SELECT " USER_COLS " FROM users WHERE id > ?1 ORDER BY id LIMIT ?2",
    /* Compare-and-swap: the hash read before a second of Argon2 must still be the one
     * stored. The old hash is the store's own value, not a guess: '=' is fine here. */
    [ST_USER_SET_PWHASH] = "UPDATE users SET pwhash = ?3, updated_at = ?4 "
                           "WHERE id = ?1 AND pwhash = ?2 AND (?5 = 0 OR disabled = 0)",
    /* NULL roles and disabled -1 keep the stored value: only the admin's columns move. */
    [ST_USER_SET_FLAGS] = "UPDATE users SET roles = coalesce(?2, roles), "
                          "disabled = CASE WHEN ?3 < 0 THEN disabled ELSE ?3 END, "
                          "updated_at = ?4 WHERE id = ?1",
    /* Sessions go with it through ON DELETE CASCADE, inside this one statement. */
    [ST_USER_DELETE] = "DELETE FROM users WHERE id = ?1",
    /* Only for a user that exists and is enabled, checked in this very statement: a
     * login racing an admin disable inserts nothing (0 rows: NOT_FOUND). */
    [ST_SES_INSERT] = "INSERT INTO sessions (" SESSION_COLS ") "
                      "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 "
                      "WHERE EXISTS (SELECT 1 FROM users WHERE id = ?3 AND disabled = 0)",
    [ST_SES_DELETE_EXPIRED_OF_USER] =
        "DELETE FROM sessions WHERE user_id = ?1 AND (expires_at <= ?2 OR idle_expires_at <= ?2)",
    /* rowid breaks ties between sessions created in the same second: insertion order. */
    [ST_SES_EVICT_BEYOND_CAP] =
        "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE user_id = ?1 "
        "ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?2)",
    [ST_SES_GET] = "SELECT " SESSION_COLS " FROM sessions WHERE id = ?1",
    /* The hot path: one probe of the UNIQUE index on secret_hash. */
    [ST_SES_GET_BY_HASH] = "SELECT " SESSION_COLS " FROM sessions WHERE secret_hash = ?1",
    /* The cookie hot path: session and user in one statement, one read transaction.
     * The password hash is not read: no request that only checks a cookie needs it. */
    [ST_SES_RESOLVE] = "SELECT " SESSION_COLS_S ", " USER_COLS_U_NOPW " FROM sessions s "
                       "JOIN users u ON u.id = s.user_id WHERE s.secret_hash = ?1",
    [ST_SES_TOUCH] = "UPDATE sessions SET last_seen_at = ?2, idle_expires_at = ?3 WHERE id = ?1",
    [ST_SES_LIST] = "SELECT " SESSION_COLS " FROM sessions WHERE user_id = ?1 "
                    "AND expires_at > ?2 AND idle_expires_at > ?2 "
                    "ORDER BY created_at DESC, rowid DESC LIMIT ?3",
    [ST_SES_DELETE] = "DELETE FROM sessions WHERE id = ?1",
    [ST_SES_DELETE_USER] = "DELETE FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR id <> ?2)",
    [ST_SES_DELETE_OWNED] = "DELETE FROM sessions WHERE id = ?1 AND user_id = ?2",
    [ST_SES_COUNT] = "SELECT count(*) FROM sessions WHERE expires_at > ?1 AND idle_expires_at > ?1",
    [ST_SES_PURGE_BATCH] = "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions "
                           "WHERE expires_at <= ?1 OR idle_expires_at <= ?1 LIMIT ?2)",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_META_INSERT] = "INSERT INTO meta (key, value) VALUES (?1, ?2)",
    /* A refresh token as the family's current token, else as a spent one, in ONE
     * statement (one read snapshot: a rotation committing between two look-ups
     * cannot make a token vanish from both). Current sorts first; at most one row
     * per arm (both probes are unique keys). Cookie sessions never match. */
    [ST_REFRESH_LOOKUP] =
        "SELECT " SESSION_COLS_S ", s.sealed, " USER_COLS_U_NOPW ", 0 AS spent, 0, 0 "
        "FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.secret_hash = ?1 AND s.kind = 2 "
        "UNION ALL "
        "SELECT " SESSION_COLS_S ", s.sealed, " USER_COLS_U_NOPW ", 1, r.generation, r.spent_at "
        "FROM refresh_spent r JOIN sessions s ON s.id = r.session_id "
        "JOIN users u ON u.id = s.user_id WHERE r.hash = ?1 AND s.kind = 2 "
        "ORDER BY spent LIMIT 1",
    /* Rotation step 1, and the compare-and-swap: the current hash becomes spent only
     * while the family has the expected generation and its user is enabled. */
    [ST_REFRESH_SPEND] =
        "INSERT INTO refresh_spent (hash, session_id, generation, spent_at) "
        "SELECT s.secret_hash, s.id, s.generation, ?3 FROM sessions s "
        "JOIN users u ON u.id = s.user_id "
        "WHERE s.id = ?1 AND s.generation = ?2 AND s.kind = 2 AND u.disabled = 0",
    /* Only after a failed spend: why (gone or disabled, or another generation). */
    [ST_REFRESH_STATE] = "SELECT s.generation FROM sessions s JOIN users u ON u.id = s.user_id "
                         "WHERE s.id = ?1 AND s.kind = 2 AND u.disabled = 0",
    [ST_REFRESH_ADVANCE] =
        "UPDATE sessions SET secret_hash = ?2, generation = generation + 1, sealed = ?3, "
        "last_seen_at = ?4, idle_expires_at = ?5 WHERE id = ?1 AND generation = ?6",
    [ST_REV_INSERT] = "INSERT INTO revocations (kind, value, revoked_at, expires_at) "
                      "VALUES (?1, ?2, ?3, ?4)",
    /* Walks the primary key from after_seq; purging keeps what lies before short. */
    [ST_REV_SINCE] = "SELECT seq, kind, value, revoked_at, expires_at FROM revocations "
                     "WHERE seq > ?1 AND revoked_at >= ?2 ORDER BY seq LIMIT ?3",
    [ST_REV_PURGE_BATCH] =
        "DELETE FROM revocations WHERE rowid IN (SELECT rowid FROM revocations "
        "WHERE revoked_at < ?1 AND (kind <> 2 OR expires_at < ?1) LIMIT ?2)",
    /* rowid breaks created_at ties: insertion order. */
    [ST_KEY_LIST] = "SELECT " KEY_COLS " FROM keys ORDER BY created_at, rowid LIMIT ?1",
    [ST_KEY_ACTIVE] = "SELECT kid FROM keys WHERE state = 2",
    [ST_KEY_RETIRE_ACTIVE] =
        "UPDATE keys SET state = 3, retired_at = ?1, publish_until = ?2 WHERE state = 2",
    [ST_KEY_PROMOTE_NEXT] = "UPDATE keys SET state = 2, activated_at = ?1 WHERE kid = "
                            "(SELECT kid FROM keys WHERE state = 1 "
                            "ORDER BY created_at, rowid LIMIT 1)",
    /* A next key passed over by a new active one was never used to sign. */
    [ST_KEY_RETIRE_NEXT] =
        "UPDATE keys SET state = 3, retired_at = ?1, publish_until = ?1 WHERE state = 1",
    [ST_KEY_INSERT] = "INSERT INTO keys (" KEY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, ?6)",
    [ST_KEY_PURGE] = "DELETE FROM keys WHERE state = 3 AND publish_until < ?1",
};

typedef struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT]; /* prepared on first use, kept until close */
    struct conn *next;           /* link in the idle list */
} conn;

typedef struct tsr_sqlite {
    tsr_store base;
    char *path;
    pthread_mutex_t mu; /* guards idle and nopen */
    pthread_cond_t cv;  /* signalled when a connection goes back to the pool */
    conn *idle;         /* LIFO: the most recently used connection has warm caches */
    size_t nopen;       /* idle plus in use */
} tsr_sqlite;

/* ---- errors and small helpers ---------------------------------------------------- */

static tsr_err map_err(int e)
{
    switch (e & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return TSR_OK;
    case SQLITE_CONSTRAINT:
        if (e == SQLITE_CONSTRAINT_UNIQUE || e == SQLITE_CONSTRAINT_PRIMARYKEY)
            return TSR_ERR_EXISTS;
        /* A session for a user that does not exist (or was just deleted). */
        if (e == SQLITE_CONSTRAINT_FOREIGNKEY)
            return TSR_ERR_NOT_FOUND;
        return TSR_ERR_INVALID;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    /* The database file is gone, full or unwritable: the store is down, callers deny. */
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
        return TSR_ERR_UNAVAILABLE;
    case SQLITE_NOMEM:
        return TSR_ERR_NOMEM;
    case SQLITE_TOOBIG:
        return TSR_ERR_TOO_LARGE;
    default:
        return TSR_ERR_INTERNAL;
    }
}

static tsr_err col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *t;
    int n;

    dst[0] = '\0';
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return TSR_OK;
    t = sqlite3_column_text(st, i);
    if (t == NULL)
        return TSR_ERR_NOMEM;
    n = sqlite3_column_bytes(st, i);
    /* Longer than our record can hold: written by something else; refuse, never cut. */
    if (n < 0 || (size_t)n >= cap)
        return TSR_ERR_INTERNAL;
    memcpy(dst, t, (size_t)n);
    dst[n] = '\0';
    return TSR_OK;
}

static tsr_err bind_text(sqlite3_stmt *st, int i, const char *s)
{
    /* STATIC: every statement is reset and unbound before the caller's buffers go. */
    return map_err(sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC));
}

static tsr_err bind_i64(sqlite3_stmt *st, int i, int64_t v)
{
    return map_err(sqlite3_bind_int64(st, i, (sqlite3_int64)v));
}

static tsr_err bind_size(sqlite3_stmt *st, int i, size_t v)
{
    return bind_i64(st, i, v > (size_t)INT64_MAX ? INT64_MAX : (int64_t)v);
}

static tsr_err bind_hash(sqlite3_stmt *st, int i, const uint8_t h[TSR_HASH_BYTES])
{
    return map_err(sqlite3_bind_blob(st, i, h, TSR_HASH_BYTES, SQLITE_STATIC));
}

/* ---- connections and their statement cache --------------------------------------- */

static tsr_err stmt_get(conn *c, stmt_id id, sqlite3_stmt **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    int e;

    *out = NULL;
    if (c->st[id] == NULL) {
        /* PERSISTENT: these live as long as the connection, so keep them off lookaside. */
        e = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id],
                               NULL);
        if (e != SQLITE_OK) {
            rc = map_err(e);
            goto out;
        }
    }
    *out = c->st[id];
    rc = TSR_OK;
out:
    return rc;
}

/* Ends a statement's use: a SELECT left un-reset would pin its read snapshot and
 * stall WAL checkpoints. NULL is a no-op. */
static void stmt_done(sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows. */
static tsr_err step_done(sqlite3_stmt *st)
{
    int e = sqlite3_step(st);
    if (e == SQLITE_DONE)
        return TSR_OK;
    if (e == SQLITE_ROW)
        return TSR_ERR_INTERNAL;
    return map_err(e);
}

/* Steps a statement expected to return one row: TSR_ERR_NOT_FOUND when it has none. */
static tsr_err step_row(sqlite3_stmt *st)
{
    int e = sqlite3_step(st);
    if (e == SQLITE_ROW)
        return TSR_OK;
    if (e == SQLITE_DONE)
        return TSR_ERR_NOT_FOUND;
    return map_err(e);
}

static tsr_err exec_cached(conn *c, stmt_id id)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;

    rc = stmt_get(c, id, &st);
    if (rc != TSR_OK)
        goto out;
    rc = step_done(st);
out:
    stmt_done(st);
    return rc;
}

static tsr_err tx_begin(conn *c)
{
    return exec_cached(c, ST_BEGIN);
}

static tsr_err tx_commit(conn *c)
{
    return exec_cached(c, ST_COMMIT);
}

static void tx_rollback(conn *c)
{
    if (sqlite3_get_autocommit(c->db))
        return;
    if (exec_cached(c, ST_ROLLBACK) != TSR_OK)
        (void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static void conn_close(conn *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(c->st[i]);
    /* Every statement is finalized above, so this closes now; close_v2 is the fallback
     * that still releases the handle should something have been missed. */
    if (c->db != NULL && sqlite3_close(c->db) != SQLITE_OK)
        sqlite3_close_v2(c->db);
    free(c);
}

/* Runs a PRAGMA that answers one row and checks the answer. */
static tsr_err pragma_expect(sqlite3 *db, const char *sql, const char *want)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    const unsigned char *got;
    int e;

    e = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (e != SQLITE_OK) {
        rc = map_err(e);
        goto out;
    }
    rc = step_row(st);
    if (rc == TSR_ERR_NOT_FOUND)
        rc = TSR_ERR_UNSUPPORTED; /* the library was built without this feature */
    if (rc != TSR_OK)
        goto out;
    got = sqlite3_column_text(st, 0);
    if (got == NULL || strcmp((const char *)got, want) != 0) {
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }
    rc = TSR_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

static tsr_err conn_open(const char *path, conn **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    conn *c = NULL;
    int e;

    *out = NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    /* NOMUTEX: the pool hands a connection to one thread at a time, so SQLite's own
     * per-connection mutex would be pure overhead. */
    e = sqlite3_open_v2(path, &c->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (e != SQLITE_OK) {
        rc = (c->db == NULL) ? TSR_ERR_NOMEM : map_err(e);
        goto out;
    }
    (void)sqlite3_extended_result_codes(c->db, 1);
    /* First, so that even the PRAGMAs below wait for a concurrent migration. */
    e = sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    if (e != SQLITE_OK) {
        rc = map_err(e);
        goto out;
    }
    /* Hardening: no writes to the schema tables by SQL, no functions run from the
     * schema. Failures are ignored: both are defence in depth, not correctness. */
    (void)sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    (void)sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    rc = pragma_expect(c->db, "PRAGMA journal_mode=WAL", "wal");
    if (rc != TSR_OK)
        goto out;
    /* In WAL mode NORMAL loses nothing when the process dies (kill -9): a commit is
     * in the WAL file, i.e. in the OS, before it returns. Only power loss can drop the
     * last commits; see docs/internals/store.md. */
    e = sqlite3_exec(c->db, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
    if (e != SQLITE_OK) {
        rc = map_err(e);
        goto out;
    }
    /* ON DELETE CASCADE is how user_delete removes sessions: refuse to run without it. */
    rc = pragma_expect(c->db, "PRAGMA foreign_keys", "1");
    if (rc != TSR_OK)
        goto out;
    /* Reads through a shared memory map rather than pread() into each connection's
     * 2 MiB page cache: with a million sessions the B-tree pages of a cookie look-up
     * stay in the OS page cache, shared by every pooled connection, so the hot path
     * costs the same at 1 k and 1 M sessions. Address space only: the mapping grows
     * with the file up to this size. */
    e = sqlite3_exec(c->db, "PRAGMA mmap_size=1073741824", NULL, NULL, NULL);
    if (e != SQLITE_OK) {
        rc = map_err(e);
        goto out;
    }
    /* Truncate the WAL back to 64 MiB after a checkpoint; it would otherwise keep its
     * largest size ever. */
    e = sqlite3_exec(c->db, "PRAGMA journal_size_limit=67108864", NULL, NULL, NULL);
    if (e != SQLITE_OK) {
        rc = map_err(e);
        goto out;
    }
    *out = c;
    c = NULL;
    rc = TSR_OK;
out:
    conn_close(c);
    return rc;
}

/* Brings the schema to SCHEMA_VERSION in one transaction. Reading the version inside
 * BEGIN IMMEDIATE makes two processes opening one new file at once safe: the second
 * waits, then finds the work done. */
static tsr_err migrate(conn *c)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    char sql[64];
    int in_tx = 0, version, e, w;

    e = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (e != SQLITE_OK) {
        rc = map_err(e);
        goto out;
    }
    in_tx = 1;
    e = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL);
    if (e != SQLITE_OK) {
        rc = map_err(e);
        goto out;
    }
    rc = step_row(st);
    if (rc == TSR_ERR_NOT_FOUND)
        rc = TSR_ERR_INTERNAL;
    if (rc != TSR_OK)
        goto out;
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    /* A newer tessera wrote this file: do not guess what its schema means. */
    if (version < 0 || version > SCHEMA_VERSION) {
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        e = sqlite3_exec(c->db, migrations[v], NULL, NULL, NULL);
        if (e != SQLITE_OK) {
            rc = map_err(e);
            goto out;
        }
    }
    if (version < SCHEMA_VERSION) {
        w = snprintf(sql, sizeof sql, "PRAGMA user_version=%d", SCHEMA_VERSION);
        if (w < 0 || (size_t)w >= sizeof sql) {
            rc = TSR_ERR_INTERNAL;
            goto out;
        }
        e = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
        if (e != SQLITE_OK) {
            rc = map_err(e);
            goto out;
        }
    }
    e = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (e != SQLITE_OK) {
        rc = map_err(e);
        goto out;
    }
    in_tx = 0;
    rc = TSR_OK;
out:
    sqlite3_finalize(st);
    if (in_tx)
        (void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- the pool -------------------------------------------------------------------- */

static tsr_err pool_get(tsr_sqlite *s, conn **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    struct timespec deadline;
    conn *c = NULL;
    int locked = 0, have_deadline = 0, e;

    *out = NULL;
    pthread_mutex_lock(&s->mu);
    locked = 1;
    while (s->idle == NULL && s->nopen >= POOL_MAX) {
        /* Only a caller that has to wait reads the clock. */
        if (!have_deadline) {
            if (clock_gettime(CLOCK_MONOTONIC, &deadline) != 0)
                goto out;
            deadline.tv_sec += POOL_WAIT_S;
            have_deadline = 1;
        }
        e = pthread_cond_timedwait(&s->cv, &s->mu, &deadline);
        if (e == ETIMEDOUT) {
            rc = TSR_ERR_UNAVAILABLE;
            goto out;
        }
        if (e != 0)
            goto out;
    }
    if (s->idle != NULL) {
        c = s->idle;
        s->idle = c->next;
        c->next = NULL;
        *out = c;
        rc = TSR_OK;
        goto out;
    }
    /* Reserve the slot, then open outside the lock: opening reads the file. */
    s->nopen++;
    pthread_mutex_unlock(&s->mu);
    locked = 0;
    rc = conn_open(s->path, &c);
    if (rc != TSR_OK) {
        pthread_mutex_lock(&s->mu);
        s->nopen--;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        goto out;
    }
    *out = c;
    rc = TSR_OK;
out:
    if (locked)
        pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Returns a connection to the pool. NULL is a no-op. */
static void pool_put(tsr_sqlite *s, conn *c)
{
    if (c == NULL)
        return;
    /* Never hand the next caller a half-done transaction. */
    tx_rollback(c);
    pthread_mutex_lock(&s->mu);
    c->next = s->idle;
    s->idle = c;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- rows ------------------------------------------------------------------------ */

/* The user columns (USER_COLS order) starting at column off. */
static tsr_err read_user_at(sqlite3_stmt *st, int off, tsr_user *u)
{
    tsr_err rc = TSR_ERR_INTERNAL;

    memset(u, 0, sizeof *u);
    rc = col_text(st, off + 0, u->id, sizeof u->id);
    if (rc != TSR_OK)
        goto out;
    rc = col_text(st, off + 1, u->username, sizeof u->username);
    if (rc != TSR_OK)
        goto out;
    rc = col_text(st, off + 2, u->pwhash, sizeof u->pwhash);
    if (rc != TSR_OK)
        goto out;
    rc = col_text(st, off + 3, u->roles, sizeof u->roles);
    if (rc != TSR_OK)
        goto out;
    u->disabled = sqlite3_column_int64(st, off + 4) != 0;
    u->created_at = sqlite3_column_int64(st, off + 5);
    u->updated_at = sqlite3_column_int64(st, off + 6);
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        memset(u, 0, sizeof *u);
    return rc;
}

static tsr_err read_user(sqlite3_stmt *st, tsr_user *u)
{
    return read_user_at(st, 0, u);
}

/* The session columns (SESSION_COLS order) starting at column off. */
static tsr_err read_session_at(sqlite3_stmt *st, int off, tsr_session *ss)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    const void *h;

    memset(ss, 0, sizeof *ss);
    rc = col_text(st, off + 0, ss->id, sizeof ss->id);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_ERR_INTERNAL;
    h = sqlite3_column_blob(st, off + 1);
    if (h == NULL || sqlite3_column_bytes(st, off + 1) != TSR_HASH_BYTES)
        goto out;
    memcpy(ss->secret_hash, h, TSR_HASH_BYTES);
    rc = col_text(st, off + 2, ss->user_id, sizeof ss->user_id);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_ERR_INTERNAL;
    switch (sqlite3_column_int64(st, off + 3)) {
    case KIND_DB_COOKIE:
        ss->kind = TSR_SESSION_COOKIE;
        break;
    case KIND_DB_REFRESH:
        ss->kind = TSR_SESSION_REFRESH;
        break;
    default:
        goto out;
    }
    ss->created_at = sqlite3_column_int64(st, off + 4);
    ss->last_seen_at = sqlite3_column_int64(st, off + 5);
    ss->expires_at = sqlite3_column_int64(st, off + 6);
    ss->idle_expires_at = sqlite3_column_int64(st, off + 7);
    rc = col_text(st, off + 8, ss->ip, sizeof ss->ip);
    if (rc != TSR_OK)
        goto out;
    rc = col_text(st, off + 9, ss->user_agent, sizeof ss->user_agent);
    if (rc != TSR_OK)
        goto out;
    rc = col_text(st, off + 10, ss->scope, sizeof ss->scope);
    if (rc != TSR_OK)
        goto out;
    ss->generation = sqlite3_column_int64(st, off + 11);
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        memset(ss, 0, sizeof *ss);
    return rc;
}

static tsr_err read_session(sqlite3_stmt *st, tsr_session *ss)
{
    return read_session_at(st, 0, ss);
}

static tsr_err bind_session(sqlite3_stmt *st, const tsr_session *ss)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    int64_t kind = ss->kind == TSR_SESSION_COOKIE ? KIND_DB_COOKIE : KIND_DB_REFRESH;

    rc = bind_text(st, 1, ss->id);
    if (rc != TSR_OK)
        goto out;
    rc = bind_hash(st, 2, ss->secret_hash);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 3, ss->user_id);
    if (rc != TSR_OK)
        goto out;
    rc = bind_i64(st, 4, kind);
    if (rc != TSR_OK)
        goto out;
    rc = bind_i64(st, 5, ss->created_at);
    if (rc != TSR_OK)
        goto out;
    rc = bind_i64(st, 6, ss->last_seen_at);
    if (rc != TSR_OK)
        goto out;
    rc = bind_i64(st, 7, ss->expires_at);
    if (rc != TSR_OK)
        goto out;
    rc = bind_i64(st, 8, ss->idle_expires_at);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 9, ss->ip);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 10, ss->user_agent);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 11, ss->scope);
    if (rc != TSR_OK)
        goto out;
    rc = bind_i64(st, 12, ss->generation);
out:
    return rc;
}

/* ---- operations ------------------------------------------------------------------ */

static tsr_err sq_ping(tsr_store *base)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;

    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_PING, &st);
    if (rc != TSR_OK)
        goto out;
    /* Reads the file (a page of meta), so a vanished or locked database shows. */
    rc = step_row(st);
    if (rc == TSR_ERR_NOT_FOUND)
        rc = TSR_OK;
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

/* Binds parameters 1-6 of the user insert statement:
 * id, username, lower-cased username, pwhash, roles, disabled. */
static tsr_err bind_user(sqlite3_stmt *st, const tsr_user *u, const char *lc)
{
    tsr_err rc = bind_text(st, 1, u->id);
    if (rc == TSR_OK)
        rc = bind_text(st, 2, u->username);
    if (rc == TSR_OK)
        rc = bind_text(st, 3, lc);
    if (rc == TSR_OK)
        rc = bind_text(st, 4, u->pwhash);
    if (rc == TSR_OK)
        rc = bind_text(st, 5, u->roles);
    if (rc == TSR_OK)
        rc = bind_i64(st, 6, u->disabled != 0);
    return rc;
}

static tsr_err sq_user_create(tsr_store *base, const tsr_user *u)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    char lc[TSR_USERNAME_MAX + 1];

    rc = tsr_store_check_user(u);
    if (rc != TSR_OK)
        goto out;
    tsr_store_ascii_lower(u->username, lc, sizeof lc);
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_USER_INSERT, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_user(st, u, lc);
    if (rc == TSR_OK)
        rc = bind_i64(st, 7, u->created_at);
    if (rc == TSR_OK)
        rc = bind_i64(st, 8, u->updated_at);
    if (rc != TSR_OK)
        goto out;
    rc = step_done(st);
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

/* Shared by user_get and user_get_by_name: one row by one text key. */
static tsr_err user_get_by(tsr_sqlite *s, stmt_id id, const char *key, tsr_user *out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;

    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, id, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, key);
    if (rc != TSR_OK)
        goto out;
    rc = step_row(st);
    if (rc != TSR_OK)
        goto out;
    rc = read_user(st, out);
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

static tsr_err sq_user_get(tsr_store *base, const char *id, tsr_user *out)
{
    memset(out, 0, sizeof *out);
    if (!tsr_store_key_ok(id, TSR_ID_MAX))
        return TSR_ERR_NOT_FOUND;
    return user_get_by((tsr_sqlite *)base, ST_USER_GET, id, out);
}

static tsr_err sq_user_get_by_name(tsr_store *base, const char *username, tsr_user *out)
{
    char lc[TSR_USERNAME_MAX + 1];

    memset(out, 0, sizeof *out);
    if (!tsr_store_key_ok(username, TSR_USERNAME_MAX))
        return TSR_ERR_NOT_FOUND;
    tsr_store_ascii_lower(username, lc, sizeof lc);
    return user_get_by((tsr_sqlite *)base, ST_USER_GET_BY_NAME, lc, out);
}

static tsr_err sq_user_list(tsr_store *base, const char *after, size_t limit, tsr_user *out,
                            size_t *n)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    size_t got = 0;
    int e;

    *n = 0;
    if (limit == 0) {
        rc = TSR_OK;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_USER_LIST, &st);
    if (rc != TSR_OK)
        goto out;
    /* Every stored id is non-empty, so '' sorts before all of them. */
    rc = bind_text(st, 1, after != NULL ? after : "");
    if (rc == TSR_OK)
        rc = bind_size(st, 2, limit);
    if (rc != TSR_OK)
        goto out;
    while (got < limit) {
        e = sqlite3_step(st);
        if (e == SQLITE_DONE)
            break;
        if (e != SQLITE_ROW) {
            rc = map_err(e);
            goto out;
        }
        rc = read_user(st, &out[got]);
        if (rc != TSR_OK)
            goto out;
        got++;
    }
    *n = got;
    rc = TSR_OK;
out:
    stmt_done(st);
    pool_put(s, c);
    if (rc != TSR_OK && got > 0)
        memset(out, 0, got * sizeof *out);
    return rc;
}

static tsr_err sq_user_set_pwhash(tsr_store *base, const char *id, const char *old_pwhash,
                                  const char *new_pwhash, int require_enabled, int64_t updated_at)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;

    if (!tsr_store_key_ok(new_pwhash, TSR_PWHASH_MAX)) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    /* No stored row can have this id or this old hash. */
    if (!tsr_store_key_ok(id, TSR_ID_MAX) || strnlen(old_pwhash, TSR_PWHASH_MAX + 1) > TSR_PWHASH_MAX) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_USER_SET_PWHASH, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, id);
    if (rc == TSR_OK)
        rc = bind_text(st, 2, old_pwhash);
    if (rc == TSR_OK)
        rc = bind_text(st, 3, new_pwhash);
    if (rc == TSR_OK)
        rc = bind_i64(st, 4, updated_at);
    if (rc == TSR_OK)
        rc = bind_i64(st, 5, require_enabled != 0);
    if (rc == TSR_OK)
        rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    if (sqlite3_changes64(c->db) == 0) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = TSR_OK;
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

static tsr_err sq_user_set_flags(tsr_store *base, const char *id, const char *roles, int disabled,
                                 int64_t updated_at)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;

    if (disabled < -1 || disabled > 1 ||
        (roles != NULL && strnlen(roles, TSR_ROLES_MAX + 1) > TSR_ROLES_MAX)) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (!tsr_store_key_ok(id, TSR_ID_MAX)) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_USER_SET_FLAGS, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, id);
    if (rc == TSR_OK)
        rc = (roles != NULL) ? bind_text(st, 2, roles) : map_err(sqlite3_bind_null(st, 2));
    if (rc == TSR_OK)
        rc = bind_i64(st, 3, disabled);
    if (rc == TSR_OK)
        rc = bind_i64(st, 4, updated_at);
    if (rc == TSR_OK)
        rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    if (sqlite3_changes64(c->db) == 0) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = TSR_OK;
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

/* Runs a DELETE or UPDATE keyed by one id: TSR_ERR_NOT_FOUND when it touched nothing. */
static tsr_err change_by_id(tsr_sqlite *s, stmt_id id, const char *key)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;

    if (!tsr_store_key_ok(key, TSR_ID_MAX)) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, id, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, key);
    if (rc != TSR_OK)
        goto out;
    rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    if (sqlite3_changes64(c->db) == 0) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = TSR_OK;
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

static tsr_err sq_user_delete(tsr_store *base, const char *id)
{
    return change_by_id((tsr_sqlite *)base, ST_USER_DELETE, id);
}

/* Inserts one session inside the caller's transaction. TSR_ERR_NOT_FOUND when its
 * user is gone or disabled (the statement's own WHERE EXISTS inserted nothing). */
static tsr_err insert_session(conn *c, const tsr_session *ss)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;

    rc = stmt_get(c, ST_SES_INSERT, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_session(st, ss);
    if (rc == TSR_OK)
        rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    if (sqlite3_changes64(c->db) == 0) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = TSR_OK;
out:
    stmt_done(st);
    return rc;
}

/* Deletes session id if user_id owns it: TSR_ERR_NOT_FOUND when it does not exist
 * or belongs to someone else. */
static tsr_err delete_owned_session(conn *c, const char *id, const char *user_id)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;

    rc = stmt_get(c, ST_SES_DELETE_OWNED, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, id);
    if (rc == TSR_OK)
        rc = bind_text(st, 2, user_id);
    if (rc == TSR_OK)
        rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    if (sqlite3_changes64(c->db) == 0) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = TSR_OK;
out:
    stmt_done(st);
    return rc;
}

static tsr_err sq_session_create(tsr_store *base, const tsr_session *ss, size_t max_per_user,
                                 int64_t now)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    int in_tx = 0;

    rc = tsr_store_check_session(ss);
    if (rc != TSR_OK)
        goto out;
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = tx_begin(c);
    if (rc != TSR_OK)
        goto out;
    in_tx = 1;

    /* Expired sessions first, so that they never count against the cap. */
    rc = stmt_get(c, ST_SES_DELETE_EXPIRED_OF_USER, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, ss->user_id);
    if (rc == TSR_OK)
        rc = bind_i64(st, 2, now);
    if (rc == TSR_OK)
        rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    stmt_done(st);
    st = NULL;

    rc = insert_session(c, ss);
    if (rc != TSR_OK)
        goto out;

    if (max_per_user > 0) {
        rc = stmt_get(c, ST_SES_EVICT_BEYOND_CAP, &st);
        if (rc != TSR_OK)
            goto out;
        rc = bind_text(st, 1, ss->user_id);
        if (rc == TSR_OK)
            rc = bind_size(st, 2, max_per_user);
        if (rc == TSR_OK)
            rc = step_done(st);
        if (rc != TSR_OK)
            goto out;
        stmt_done(st);
    }
    st = NULL;

    rc = tx_commit(c);
    if (rc != TSR_OK)
        goto out;
    in_tx = 0;
    rc = TSR_OK;
out:
    stmt_done(st);
    if (in_tx)
        tx_rollback(c);
    pool_put(s, c);
    return rc;
}

static tsr_err session_get_by(tsr_sqlite *s, stmt_id id, const char *key, const uint8_t *hash,
                              tsr_session *out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;

    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, id, &st);
    if (rc != TSR_OK)
        goto out;
    rc = (hash != NULL) ? bind_hash(st, 1, hash) : bind_text(st, 1, key);
    if (rc != TSR_OK)
        goto out;
    rc = step_row(st);
    if (rc != TSR_OK)
        goto out;
    rc = read_session(st, out);
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

static tsr_err sq_session_get(tsr_store *base, const char *id, tsr_session *out)
{
    memset(out, 0, sizeof *out);
    if (!tsr_store_key_ok(id, TSR_ID_MAX))
        return TSR_ERR_NOT_FOUND;
    return session_get_by((tsr_sqlite *)base, ST_SES_GET, id, NULL, out);
}

static tsr_err sq_session_get_by_hash(tsr_store *base, const uint8_t hash[TSR_HASH_BYTES],
                                      tsr_session *out)
{
    memset(out, 0, sizeof *out);
    return session_get_by((tsr_sqlite *)base, ST_SES_GET_BY_HASH, NULL, hash, out);
}

static tsr_err sq_session_resolve(tsr_store *base, const uint8_t hash[TSR_HASH_BYTES],
                                  tsr_session *ss, tsr_user *u)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;

    memset(ss, 0, sizeof *ss);
    memset(u, 0, sizeof *u);
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_SES_RESOLVE, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_hash(st, 1, hash);
    if (rc != TSR_OK)
        goto out;
    rc = step_row(st);
    if (rc != TSR_OK)
        goto out;
    rc = read_session(st, ss);
    if (rc != TSR_OK)
        goto out;
    rc = read_user_at(st, SESSION_NCOLS, u);
out:
    if (rc != TSR_OK) {
        memset(ss, 0, sizeof *ss);
        tsr_wipe(u, sizeof *u);
    }
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

static tsr_err sq_session_touch(tsr_store *base, const char *id, int64_t last_seen_at,
                                int64_t idle_expires_at)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;

    if (!tsr_store_key_ok(id, TSR_ID_MAX)) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_SES_TOUCH, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, id);
    if (rc == TSR_OK)
        rc = bind_i64(st, 2, last_seen_at);
    if (rc == TSR_OK)
        rc = bind_i64(st, 3, idle_expires_at);
    if (rc == TSR_OK)
        rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    if (sqlite3_changes64(c->db) == 0) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = TSR_OK;
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

static tsr_err sq_session_list(tsr_store *base, const char *user_id, int64_t now, tsr_session *out,
                               size_t max, size_t *n)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    size_t got = 0;
    int e;

    *n = 0;
    /* An id that cannot exist has no sessions: an empty list, as for any unknown user. */
    if (max == 0 || !tsr_store_key_ok(user_id, TSR_ID_MAX)) {
        rc = TSR_OK;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_SES_LIST, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, user_id);
    if (rc == TSR_OK)
        rc = bind_i64(st, 2, now);
    if (rc == TSR_OK)
        rc = bind_size(st, 3, max);
    if (rc != TSR_OK)
        goto out;
    while (got < max) {
        e = sqlite3_step(st);
        if (e == SQLITE_DONE)
            break;
        if (e != SQLITE_ROW) {
            rc = map_err(e);
            goto out;
        }
        rc = read_session(st, &out[got]);
        if (rc != TSR_OK)
            goto out;
        got++;
    }
    *n = got;
    rc = TSR_OK;
out:
    stmt_done(st);
    pool_put(s, c);
    if (rc != TSR_OK && got > 0)
        memset(out, 0, got * sizeof *out);
    return rc;
}

static tsr_err sq_session_delete(tsr_store *base, const char *id)
{
    return change_by_id((tsr_sqlite *)base, ST_SES_DELETE, id);
}

static tsr_err sq_session_delete_user(tsr_store *base, const char *user_id, const char *except_id,
                                      size_t *deleted)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;

    *deleted = 0;
    if (!tsr_store_key_ok(user_id, TSR_ID_MAX)) {
        rc = TSR_OK;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_SES_DELETE_USER, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, user_id);
    if (rc != TSR_OK)
        goto out;
    if (except_id != NULL)
        rc = bind_text(st, 2, except_id);
    else
        rc = map_err(sqlite3_bind_null(st, 2));
    if (rc != TSR_OK)
        goto out;
    /* One statement: every row goes or none does. */
    rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    *deleted = (size_t)sqlite3_changes64(c->db);
    rc = TSR_OK;
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

static tsr_err sq_session_rotate(tsr_store *base, const char *old_id, const tsr_session *fresh)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    conn *c = NULL;
    int in_tx = 0;

    rc = tsr_store_check_session(fresh);
    if (rc != TSR_OK)
        goto out;
    if (!tsr_store_key_ok(old_id, TSR_ID_MAX)) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    /* The write lock serialises rotations: of two racing on one old id, the second
     * finds it gone and gets NOT_FOUND, so there is only ever one successor. */
    rc = tx_begin(c);
    if (rc != TSR_OK)
        goto out;
    in_tx = 1;
    /* Bound to the fresh session's user: rotating someone else's session is NOT_FOUND. */
    rc = delete_owned_session(c, old_id, fresh->user_id);
    if (rc != TSR_OK)
        goto out;
    /* A disabled or deleted user gets no successor: NOT_FOUND, the delete undone. */
    rc = insert_session(c, fresh);
    if (rc != TSR_OK)
        goto out;
    rc = tx_commit(c);
    if (rc != TSR_OK)
        goto out;
    in_tx = 0;
    rc = TSR_OK;
out:
    if (in_tx)
        tx_rollback(c);
    pool_put(s, c);
    return rc;
}

/* One transaction for the whole password change (see store.h): the compare-and-swap
 * of the hash, the current session's delete, the others' delete and the fresh
 * insert either all happen or none does. Under the write lock, a concurrent
 * revoke-all or disable is wholly before or wholly after it. */
static tsr_err sq_password_change(tsr_store *base, const char *user_id, const char *old_pwhash,
                                  const char *new_pwhash, const char *keep_session_id,
                                  const tsr_session *fresh, int64_t now, size_t *revoked)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    size_t nrev = 0;
    int in_tx = 0;

    *revoked = 0;
    rc = tsr_store_check_session(fresh);
    if (rc != TSR_OK)
        goto out;
    if (!tsr_store_key_ok(new_pwhash, TSR_PWHASH_MAX) || strcmp(fresh->user_id, user_id) != 0) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (!tsr_store_key_ok(user_id, TSR_ID_MAX) || !tsr_store_key_ok(keep_session_id, TSR_ID_MAX) ||
        strnlen(old_pwhash, TSR_PWHASH_MAX + 1) > TSR_PWHASH_MAX) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = tx_begin(c);
    if (rc != TSR_OK)
        goto out;
    in_tx = 1;

    /* 1. The hash the caller verified against is still the stored one, and the
     *    user is enabled. */
    rc = stmt_get(c, ST_USER_SET_PWHASH, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, user_id);
    if (rc == TSR_OK)
        rc = bind_text(st, 2, old_pwhash);
    if (rc == TSR_OK)
        rc = bind_text(st, 3, new_pwhash);
    if (rc == TSR_OK)
        rc = bind_i64(st, 4, now);
    if (rc == TSR_OK)
        rc = bind_i64(st, 5, 1);
    if (rc == TSR_OK)
        rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    if (sqlite3_changes64(c->db) == 0) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    stmt_done(st);
    st = NULL;

    /* 2. The session the change is made from still exists: a revoked session must
     *    not come back under a new id. */
    rc = delete_owned_session(c, keep_session_id, user_id);
    if (rc != TSR_OK)
        goto out;

    /* 3. Every other session of the user. */
    rc = stmt_get(c, ST_SES_DELETE_USER, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, user_id);
    if (rc == TSR_OK)
        rc = map_err(sqlite3_bind_null(st, 2));
    if (rc == TSR_OK)
        rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    nrev = (size_t)sqlite3_changes64(c->db);
    stmt_done(st);
    st = NULL;

    /* 4. The current session's successor. */
    rc = insert_session(c, fresh);
    if (rc != TSR_OK)
        goto out;
    rc = tx_commit(c);
    if (rc != TSR_OK)
        goto out;
    in_tx = 0;
    *revoked = nrev;
    rc = TSR_OK;
out:
    stmt_done(st);
    if (in_tx)
        tx_rollback(c);
    pool_put(s, c);
    return rc;
}

static tsr_err sq_session_count(tsr_store *base, int64_t now, size_t *n)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    sqlite3_int64 v;

    *n = 0;
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_SES_COUNT, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_i64(st, 1, now);
    if (rc != TSR_OK)
        goto out;
    rc = step_row(st);
    if (rc != TSR_OK)
        goto out;
    v = sqlite3_column_int64(st, 0);
    *n = v > 0 ? (size_t)v : 0;
    rc = TSR_OK;
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

static tsr_err sq_purge_expired(tsr_store *base, int64_t now, size_t *purged)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    sqlite3_int64 k;
    size_t total = 0;

    *purged = 0;
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    /* In batches, each its own transaction: purging a million rows at once would hold
     * the write lock long enough to stall every login. Purging is idempotent, so a
     * batch failing half way leaves nothing inconsistent. */
    for (;;) {
        rc = stmt_get(c, ST_SES_PURGE_BATCH, &st);
        if (rc != TSR_OK)
            goto out;
        rc = bind_i64(st, 1, now);
        if (rc == TSR_OK)
            rc = bind_i64(st, 2, PURGE_BATCH);
        if (rc == TSR_OK)
            rc = step_done(st);
        if (rc != TSR_OK)
            goto out;
        k = sqlite3_changes64(c->db);
        stmt_done(st);
        total += (size_t)k;
        if (k < PURGE_BATCH)
            break;
    }
    *purged = total;
    rc = TSR_OK;
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

static tsr_err sq_meta_get(tsr_store *base, const char *key, char *out, size_t cap)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;

    memset(out, 0, cap);
    if (!tsr_store_key_ok(key, TSR_META_MAX)) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_META_GET, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, key);
    if (rc != TSR_OK)
        goto out;
    rc = step_row(st);
    if (rc != TSR_OK)
        goto out;
    rc = col_text(st, 0, out, cap);
    /* col_text refuses a value longer than the buffer; here that is the caller's cap. */
    if (rc == TSR_ERR_INTERNAL)
        rc = TSR_ERR_BUFFER;
out:
    stmt_done(st);
    pool_put(s, c);
    if (rc != TSR_OK)
        memset(out, 0, cap);
    return rc;
}

static tsr_err meta_write(tsr_store *base, int which, const char *key, const char *value)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;

    if (!tsr_store_key_ok(key, TSR_META_MAX)) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (strnlen(value, TSR_META_MAX + 1) > TSR_META_MAX) {
        rc = TSR_ERR_TOO_LARGE;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, which, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, key);
    if (rc == TSR_OK)
        rc = bind_text(st, 2, value);
    if (rc == TSR_OK)
        rc = step_done(st);
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

static tsr_err sq_meta_set(tsr_store *base, const char *key, const char *value)
{
    return meta_write(base, ST_META_SET, key, value);
}

/* A duplicate key is a primary-key violation: step_done maps it to TSR_ERR_EXISTS. */
static tsr_err sq_meta_insert(tsr_store *base, const char *key, const char *value)
{
    return meta_write(base, ST_META_INSERT, key, value);
}

/* ---- refresh families ------------------------------------------------------------ */

/* Column layout of ST_REFRESH_LOOKUP: the session, its sealed successor, the user,
 * then spent, the spent token's generation and when it was spent. */
#define RL_SEALED SESSION_NCOLS
#define RL_USER (SESSION_NCOLS + 1)
#define RL_SPENT (RL_USER + 7)

static tsr_err sq_refresh_lookup(tsr_store *base, const uint8_t hash[TSR_HASH_BYTES],
                                 tsr_session *ss, tsr_user *u, tsr_refresh_match *m)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    const void *b;
    int n;

    memset(ss, 0, sizeof *ss);
    memset(u, 0, sizeof *u);
    memset(m, 0, sizeof *m);
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_REFRESH_LOOKUP, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_hash(st, 1, hash);
    if (rc != TSR_OK)
        goto out;
    rc = step_row(st);
    if (rc != TSR_OK)
        goto out;
    rc = read_session_at(st, 0, ss);
    if (rc != TSR_OK)
        goto out;
    rc = read_user_at(st, RL_USER, u);
    if (rc != TSR_OK)
        goto out;
    /* blob before bytes, as SQLite asks; NULL (no rotation yet) reads as length 0. */
    rc = TSR_ERR_INTERNAL;
    b = sqlite3_column_blob(st, RL_SEALED);
    n = sqlite3_column_bytes(st, RL_SEALED);
    if (n < 0 || (size_t)n > sizeof m->sealed)
        goto out;
    if (n > 0) {
        if (b == NULL) {
            rc = TSR_ERR_NOMEM;
            goto out;
        }
        memcpy(m->sealed, b, (size_t)n);
    }
    m->sealed_len = (size_t)n;
    m->spent = sqlite3_column_int64(st, RL_SPENT) != 0;
    if (m->spent) {
        m->spent_generation = sqlite3_column_int64(st, RL_SPENT + 1);
        m->spent_at = sqlite3_column_int64(st, RL_SPENT + 2);
    }
    rc = TSR_OK;
out:
    if (rc != TSR_OK) {
        memset(ss, 0, sizeof *ss);
        tsr_wipe(u, sizeof *u);
        tsr_wipe(m, sizeof *m);
    }
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

/* After a spend that matched no row, inside the same transaction: NOT_FOUND when
 * the family is gone, is not a refresh family or its user is disabled; CONFLICT
 * when it lives on under another generation. */
static tsr_err rotate_failure(conn *c, const char *session_id, int64_t generation)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;

    rc = stmt_get(c, ST_REFRESH_STATE, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, session_id);
    if (rc != TSR_OK)
        goto out;
    rc = step_row(st);
    if (rc != TSR_OK)
        goto out;
    /* Same generation yet the spend matched nothing: cannot happen under the lock. */
    rc = sqlite3_column_int64(st, 0) != generation ? TSR_ERR_CONFLICT : TSR_ERR_INTERNAL;
out:
    stmt_done(st);
    return rc;
}

/* Rotation under the write lock (BEGIN IMMEDIATE): of two rotations expecting one
 * generation the second finds the generation moved on. The spend is the
 * compare-and-swap, so the success path is two statements. */
static tsr_err sq_refresh_rotate(tsr_store *base, const char *session_id, int64_t generation,
                                 const uint8_t new_hash[TSR_HASH_BYTES], const uint8_t *sealed,
                                 size_t sealed_len, int64_t now, int64_t idle_expires_at)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    int in_tx = 0;

    if (sealed_len > TSR_SEALED_MAX || (sealed == NULL && sealed_len > 0)) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (!tsr_store_key_ok(session_id, TSR_ID_MAX)) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = tx_begin(c);
    if (rc != TSR_OK)
        goto out;
    in_tx = 1;

    /* 1. The current hash becomes spent, only at this generation for an enabled user. */
    rc = stmt_get(c, ST_REFRESH_SPEND, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, session_id);
    if (rc == TSR_OK)
        rc = bind_i64(st, 2, generation);
    if (rc == TSR_OK)
        rc = bind_i64(st, 3, now);
    if (rc == TSR_OK)
        rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    if (sqlite3_changes64(c->db) == 0) {
        stmt_done(st);
        st = NULL;
        rc = rotate_failure(c, session_id, generation);
        goto out;
    }
    stmt_done(st);
    st = NULL;

    /* 2. The successor: new hash, generation + 1, its sealed copy, the idle slide. */
    rc = stmt_get(c, ST_REFRESH_ADVANCE, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, session_id);
    if (rc == TSR_OK)
        rc = bind_hash(st, 2, new_hash);
    if (rc == TSR_OK)
        rc = sealed_len > 0
                 ? map_err(sqlite3_bind_blob(st, 3, sealed, (int)sealed_len, SQLITE_STATIC))
                 : map_err(sqlite3_bind_null(st, 3));
    if (rc == TSR_OK)
        rc = bind_i64(st, 4, now);
    if (rc == TSR_OK)
        rc = bind_i64(st, 5, idle_expires_at);
    if (rc == TSR_OK)
        rc = bind_i64(st, 6, generation);
    if (rc == TSR_OK)
        rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    if (sqlite3_changes64(c->db) != 1) {
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    stmt_done(st);
    st = NULL;

    rc = tx_commit(c);
    if (rc != TSR_OK)
        goto out;
    in_tx = 0;
    rc = TSR_OK;
out:
    stmt_done(st);
    if (in_tx)
        tx_rollback(c);
    pool_put(s, c);
    return rc;
}

/* ---- revocations ----------------------------------------------------------------- */

static tsr_err sq_revocation_add(tsr_store *base, tsr_revocation_kind kind, const char *value,
                                 int64_t revoked_at, int64_t expires_at)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    int64_t k;

    if (kind == TSR_REVOKE_SID)
        k = REVOKE_DB_SID;
    else if (kind == TSR_REVOKE_JTI)
        k = REVOKE_DB_JTI;
    else {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (!tsr_store_key_ok(value, TSR_ID_MAX)) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_REV_INSERT, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_i64(st, 1, k);
    if (rc == TSR_OK)
        rc = bind_text(st, 2, value);
    if (rc == TSR_OK)
        rc = bind_i64(st, 3, revoked_at);
    if (rc == TSR_OK)
        rc = bind_i64(st, 4, expires_at);
    if (rc == TSR_OK)
        rc = step_done(st);
out:
    stmt_done(st);
    pool_put(s, c);
    return rc;
}

static tsr_err read_revocation(sqlite3_stmt *st, tsr_revocation *r)
{
    tsr_err rc = TSR_ERR_INTERNAL;

    memset(r, 0, sizeof *r);
    r->seq = sqlite3_column_int64(st, 0);
    switch (sqlite3_column_int64(st, 1)) {
    case REVOKE_DB_SID:
        r->kind = TSR_REVOKE_SID;
        break;
    case REVOKE_DB_JTI:
        r->kind = TSR_REVOKE_JTI;
        break;
    default:
        goto out;
    }
    rc = col_text(st, 2, r->value, sizeof r->value);
    if (rc != TSR_OK)
        goto out;
    r->revoked_at = sqlite3_column_int64(st, 3);
    r->expires_at = sqlite3_column_int64(st, 4);
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        memset(r, 0, sizeof *r);
    return rc;
}

static tsr_err sq_revocation_since(tsr_store *base, int64_t after_seq, int64_t revoked_since,
                                   tsr_revocation *out, size_t max, size_t *n)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    size_t got = 0;
    int e;

    *n = 0;
    if (max == 0) {
        rc = TSR_OK;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_REV_SINCE, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_i64(st, 1, after_seq);
    if (rc == TSR_OK)
        rc = bind_i64(st, 2, revoked_since);
    if (rc == TSR_OK)
        rc = bind_size(st, 3, max);
    if (rc != TSR_OK)
        goto out;
    while (got < max) {
        e = sqlite3_step(st);
        if (e == SQLITE_DONE)
            break;
        if (e != SQLITE_ROW) {
            rc = map_err(e);
            goto out;
        }
        rc = read_revocation(st, &out[got]);
        if (rc != TSR_OK)
            goto out;
        got++;
    }
    *n = got;
    rc = TSR_OK;
out:
    stmt_done(st);
    pool_put(s, c);
    if (rc != TSR_OK && got > 0)
        memset(out, 0, got * sizeof *out);
    return rc;
}

/* Runs a cached statement with integer parameters ?1 and ?2 (those it has) inside
 * the caller's transaction or as its own; *changes (may be NULL) gets the rows it
 * changed. */
static tsr_err exec_i64(conn *c, stmt_id id, int64_t p1, int64_t p2, int64_t *changes)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    int np;

    if (changes != NULL)
        *changes = 0;
    rc = stmt_get(c, id, &st);
    if (rc != TSR_OK)
        goto out;
    np = sqlite3_bind_parameter_count(st);
    if (np >= 1)
        rc = bind_i64(st, 1, p1);
    if (rc == TSR_OK && np >= 2)
        rc = bind_i64(st, 2, p2);
    if (rc == TSR_OK)
        rc = step_done(st);
    if (rc != TSR_OK)
        goto out;
    if (changes != NULL)
        *changes = (int64_t)sqlite3_changes64(c->db);
    rc = TSR_OK;
out:
    stmt_done(st);
    return rc;
}

/* In batches, each its own transaction, like purge_expired: a mass revocation's
 * rows expiring together never hold the write lock for long. */
static tsr_err sq_revocation_purge(tsr_store *base, int64_t revoked_before, size_t *purged)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    conn *c = NULL;
    int64_t k = 0;
    size_t total = 0;

    *purged = 0;
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    do {
        rc = exec_i64(c, ST_REV_PURGE_BATCH, revoked_before, PURGE_BATCH, &k);
        if (rc != TSR_OK)
            goto out;
        total += (size_t)k;
    } while (k >= PURGE_BATCH);
    *purged = total;
    rc = TSR_OK;
out:
    pool_put(s, c);
    return rc;
}

/* ---- signing keys ---------------------------------------------------------------- */

/* One key row (KEY_COLS order). The jwk goes straight into the caller's record:
 * no copy of the private key is made on the way. */
static tsr_err read_key(sqlite3_stmt *st, tsr_key_record *k)
{
    tsr_err rc = TSR_ERR_INTERNAL;

    memset(k, 0, sizeof *k);
    rc = col_text(st, 0, k->kid, sizeof k->kid);
    if (rc != TSR_OK)
        goto out;
    rc = col_text(st, 1, k->alg, sizeof k->alg);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_ERR_INTERNAL;
    switch (sqlite3_column_int64(st, 2)) {
    case KEY_DB_NEXT:
        k->state = TSR_KEY_STATE_NEXT;
        break;
    case KEY_DB_ACTIVE:
        k->state = TSR_KEY_STATE_ACTIVE;
        break;
    case KEY_DB_RETIRED:
        k->state = TSR_KEY_STATE_RETIRED;
        break;
    default:
        goto out;
    }
    k->created_at = sqlite3_column_int64(st, 3);
    k->activated_at = sqlite3_column_int64(st, 4);
    k->retired_at = sqlite3_column_int64(st, 5);
    k->publish_until = sqlite3_column_int64(st, 6);
    rc = col_text(st, 7, k->jwk, sizeof k->jwk);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        tsr_wipe(k, sizeof *k);
    return rc;
}

static tsr_err sq_key_list(tsr_store *base, tsr_key_record *out, size_t max, size_t *n)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;
    conn *c = NULL;
    size_t got = 0;
    int e;

    *n = 0;
    if (max == 0) {
        rc = TSR_OK;
        goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = stmt_get(c, ST_KEY_LIST, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_size(st, 1, max);
    if (rc != TSR_OK)
        goto out;
    while (got < max) {
        e = sqlite3_step(st);
        if (e == SQLITE_DONE)
            break;
        if (e != SQLITE_ROW) {
            rc = map_err(e);
            goto out;
        }
        rc = read_key(st, &out[got]);
        if (rc != TSR_OK)
            goto out;
        got++;
    }
    *n = got;
    rc = TSR_OK;
out:
    /* Resetting drops SQLite's own copy of the last row's text. */
    stmt_done(st);
    pool_put(s, c);
    if (rc != TSR_OK && got > 0)
        tsr_wipe(out, got * sizeof *out);
    return rc;
}

/* Inserts k in state (a KEY_DB_* value) inside the caller's transaction; created_at
 * as given, or now when the record leaves it 0. TSR_ERR_EXISTS for a taken kid. */
static tsr_err insert_key(conn *c, const tsr_key_record *k, int64_t state, int64_t activated_at,
                          int64_t now)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;

    rc = stmt_get(c, ST_KEY_INSERT, &st);
    if (rc != TSR_OK)
        goto out;
    rc = bind_text(st, 1, k->kid);
    if (rc == TSR_OK)
        rc = bind_text(st, 2, k->alg);
    if (rc == TSR_OK)
        rc = bind_i64(st, 3, state);
    if (rc == TSR_OK)
        rc = bind_i64(st, 4, k->created_at != 0 ? k->created_at : now);
    if (rc == TSR_OK)
        rc = bind_i64(st, 5, activated_at);
    /* STATIC: SQLite copies the private JWK into its page, not into a buffer of ours. */
    if (rc == TSR_OK)
        rc = bind_text(st, 6, k->jwk);
    if (rc == TSR_OK)
        rc = step_done(st);
out:
    stmt_done(st);
    return rc;
}

/* The kid of the active key into cur ("" when there is none). */
static tsr_err active_kid(conn *c, char *cur, size_t cap)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    sqlite3_stmt *st = NULL;

    cur[0] = '\0';
    rc = stmt_get(c, ST_KEY_ACTIVE, &st);
    if (rc != TSR_OK)
        goto out;
    rc = step_row(st);
    if (rc == TSR_ERR_NOT_FOUND) {
        rc = TSR_OK;
        goto out;
    }
    if (rc != TSR_OK)
        goto out;
    rc = col_text(st, 0, cur, cap);
out:
    stmt_done(st);
    return rc;
}

/* The five steps of store.h in one BEGIN IMMEDIATE transaction: two instances
 * rotating at once serialise on the write lock, and the second fails the
 * compare-and-swap on the active kid. */
static tsr_err sq_key_rotate(tsr_store *base, const char *expect_active_kid,
                             const tsr_key_record *new_active, const tsr_key_record *new_next,
                             int64_t now, int64_t publish_until)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    tsr_err rc = TSR_ERR_INTERNAL;
    conn *c = NULL;
    char cur[TSR_KID_STORE_MAX + 1];
    int64_t changed = 0;
    int in_tx = 0;

    if (new_active != NULL) {
        rc = tsr_store_check_key(new_active);
        if (rc != TSR_OK)
            goto out;
    }
    if (new_next != NULL) {
        rc = tsr_store_check_key(new_next);
        if (rc != TSR_OK)
            goto out;
    }
    rc = pool_get(s, &c);
    if (rc != TSR_OK)
        goto out;
    rc = tx_begin(c);
    if (rc != TSR_OK)
        goto out;
    in_tx = 1;

    /* 1. Compare: kids are public names, not secrets; strcmp is fine. */
    rc = active_kid(c, cur, sizeof cur);
    if (rc != TSR_OK)
        goto out;
    if (strcmp(cur, expect_active_kid) != 0) {
        rc = TSR_ERR_CONFLICT;
        goto out;
    }
    /* 2. Retire the active key, published until its last token has expired. */
    if (cur[0] != '\0') {
        rc = exec_i64(c, ST_KEY_RETIRE_ACTIVE, now, publish_until, NULL);
        if (rc != TSR_OK)
            goto out;
    }
    /* 3. The new active key: the next one promoted, or the caller's (which passes
     *    over any next key: it never signed, so it is published no longer). */
    if (new_active == NULL) {
        rc = exec_i64(c, ST_KEY_PROMOTE_NEXT, now, 0, &changed);
        if (rc != TSR_OK)
            goto out;
        if (changed == 0) {
            rc = TSR_ERR_NOT_FOUND;
            goto out;
        }
    } else {
        rc = exec_i64(c, ST_KEY_RETIRE_NEXT, now, 0, NULL);
        if (rc != TSR_OK)
            goto out;
        rc = insert_key(c, new_active, KEY_DB_ACTIVE, now, now);
        if (rc != TSR_OK)
            goto out;
    }
    /* 4. The new next key. */
    if (new_next != NULL) {
        rc = insert_key(c, new_next, KEY_DB_NEXT, 0, now);
        if (rc != TSR_OK)
            goto out;
    }
    /* 5. Retired keys whose last token has expired. */
    rc = exec_i64(c, ST_KEY_PURGE, now, 0, NULL);
    if (rc != TSR_OK)
        goto out;
    rc = tx_commit(c);
    if (rc != TSR_OK)
        goto out;
    in_tx = 0;
    rc = TSR_OK;
out:
    if (in_tx)
        tx_rollback(c);
    pool_put(s, c);
    return rc;
}

/* ---- open and close -------------------------------------------------------------- */

static void sq_close(tsr_store *base)
{
    tsr_sqlite *s = (tsr_sqlite *)base;
    conn *c, *next;

    if (s == NULL)
        return;
    /* The caller guarantees no call is in flight; connections still checked out
     * would be a caller bug and are not waited for. */
    for (c = s->idle; c != NULL; c = next) {
        next = c->next;
        conn_close(c);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

static const tsr_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .ping = sq_ping,
    .user_create = sq_user_create,
    .user_get = sq_user_get,
    .user_get_by_name = sq_user_get_by_name,
    .user_list = sq_user_list,
    .user_set_pwhash = sq_user_set_pwhash,
    .user_set_flags = sq_user_set_flags,
    .user_delete = sq_user_delete,
    .session_create = sq_session_create,
    .session_get = sq_session_get,
    .session_get_by_hash = sq_session_get_by_hash,
    .session_resolve = sq_session_resolve,
    .session_touch = sq_session_touch,
    .session_list = sq_session_list,
    .session_delete = sq_session_delete,
    .session_delete_user = sq_session_delete_user,
    .session_rotate = sq_session_rotate,
    .password_change = sq_password_change,
    .session_count = sq_session_count,
    .purge_expired = sq_purge_expired,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .meta_insert = sq_meta_insert,
    .refresh_lookup = sq_refresh_lookup,
    .refresh_rotate = sq_refresh_rotate,
    .revocation_add = sq_revocation_add,
    .revocation_since = sq_revocation_since,
    .revocation_purge = sq_revocation_purge,
    .key_list = sq_key_list,
    .key_rotate = sq_key_rotate,
};

/* Creates the missing folders of path at mode 0700 (sessions and password hashes
 * live there), and the database file itself at 0600 when it does not exist yet:
 * SQLite would create it 0644, and gives the -wal and -shm files the same mode as
 * the database. An existing file keeps the mode its owner chose. */
static tsr_err prepare_files(const char *path)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char buf[PATH_CAP];
    int w, fd;

    w = snprintf(buf, sizeof buf, "%s", path);
    if (w < 0 || (size_t)w >= sizeof buf) {
        rc = TSR_ERR_TOO_LARGE;
        goto out;
    }
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            rc = TSR_ERR_IO;
            goto out;
        }
        *p = '/';
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
        rc = TSR_ERR_IO;
        goto out;
    }
    if (fd >= 0)
        close(fd);
    rc = TSR_OK;
out:
    return rc;
}

/* SQLite keeps global allocation statistics behind one mutex that every
 * connection of every thread takes on each allocation; tessera reads none of
 * them, and the lock was a tenth of the cookie path's futex calls under load.
 * Must run before SQLite initialises (a later call is refused: harmless). */
static pthread_once_t sqlite_cfg_once = PTHREAD_ONCE_INIT;

static void sqlite_configure(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

tsr_err tsr_store_sqlite_open(const char *path, tsr_store **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_sqlite *s = NULL;
    pthread_condattr_t ca;
    conn *c = NULL;
    size_t len;
    int have_mu = 0, have_cv = 0, have_ca = 0;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    (void)pthread_once(&sqlite_cfg_once, sqlite_configure);
    if (path == NULL) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    len = strnlen(path, PATH_CAP);
    /* The pool's connections must all reach one file: no ":memory:", no URI forms,
     * and no "//x" (a "sqlite://x" typo that would land at the root). */
    if (len == 0 || path[0] == ':' || strncmp(path, "file:", 5) == 0 ||
        strncmp(path, "//", 2) == 0 || path[len - 1] == '/') {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (len >= PATH_CAP) {
        rc = TSR_ERR_TOO_LARGE;
        goto out;
    }
    /* NOMUTEX connections still need a library built thread-safe (the shared cache
     * and the WAL index are shared between connections). */
    if (sqlite3_threadsafe() == 0) {
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }
    rc = prepare_files(path);
    if (rc != TSR_OK)
        goto out;

    rc = TSR_ERR_NOMEM;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto out;
    s->base.ops = &sqlite_ops;
    s->path = malloc(len + 1);
    if (s->path == NULL)
        goto out;
    memcpy(s->path, path, len + 1);
    rc = TSR_ERR_INTERNAL;
    if (pthread_mutex_init(&s->mu, NULL) != 0)
        goto out;
    have_mu = 1;
    if (pthread_condattr_init(&ca) != 0)
        goto out;
    have_ca = 1;
    /* Waiting for a connection must not stretch when the wall clock is set back. */
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0)
        goto out;
    if (pthread_cond_init(&s->cv, &ca) != 0)
        goto out;
    have_cv = 1;

    rc = conn_open(s->path, &c);
    if (rc != TSR_OK)
        goto out;
    rc = migrate(c);
    if (rc != TSR_OK)
        goto out;
    /* The first connection becomes the pool's first idle one. */
    s->idle = c;
    s->nopen = 1;
    c = NULL;
    *out = &s->base;
    s = NULL;
    rc = TSR_OK;
out:
    if (have_ca)
        pthread_condattr_destroy(&ca);
    conn_close(c);
    if (s != NULL) {
        if (have_cv)
            pthread_cond_destroy(&s->cv);
        if (have_mu)
            pthread_mutex_destroy(&s->mu);
        free(s->path);
        free(s);
    }
    return rc;
}
