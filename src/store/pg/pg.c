/* pg.c: the PostgreSQL backend's plumbing: the connection pool, prepared
 * statements, error mapping, result parsing, the retry runner, migrations, and
 * opening and closing the store. The operations themselves are in pg_ops.c.
 *
 * libpq with text results and bound parameters only; each connection prepares a
 * statement the first time it runs it. A lost connection is closed and replaced
 * on next use. docs/internals/store.md ("PostgreSQL backend") explains the
 * choices. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "crypto/crypto.h"
#include "store/pg/pg_priv.h"

#define POOL_DEFAULT 16    /* connections when the caller leaves max_conns 0 */
#define POOL_HARD_MAX 4096 /* no sane caller asks for more */
#define POOL_WAIT_S 5      /* waiting for a free connection, then UNAVAILABLE */
#define RUN_ATTEMPTS 3     /* a body runs at most this often (deadlock, serialization) */
#define URL_MAX 4096
#define CLIENT_DEADLINE_MS 10000 /* a call with no answer by then: the connection is dropped */
#define MIN_SERVER_VERSION 120000 /* EXECUTE FUNCTION, GENERATED AS IDENTITY, ... */

/* Set on every connection right after it opens. statement_timeout bounds every
 * statement, lock waits included, so nothing hangs; a transaction left idle by a
 * stuck caller cannot hold the revocation counter's lock for long; READ COMMITTED
 * is what the locking in pg_ops.c is written for, whatever the server default. */
static const char session_setup[] = "SET statement_timeout = 5000;"
                                    "SET idle_in_transaction_session_timeout = 30000;"
                                    "SET default_transaction_isolation = 'read committed';"
                                    "SET bytea_output = 'hex'";

/* The schema, one entry per version: migrations[i] takes version i to i + 1.
 * Append only; never edit a shipped entry. The versions mirror SQLite's (1: users,
 * sessions, meta; 2: token mode). Tables go to the connection's current schema:
 * no name here is schema-qualified. */
static const char *const migrations[] = {
    /* 1: users, sessions, meta. Ids and keys compare bytewise (COLLATE "C"), as in
     * SQLite; lower() under "C" folds ASCII only, which is what usernames are. */
    "CREATE TABLE users ("
    " id text COLLATE \"C\" PRIMARY KEY,"
    " username text COLLATE \"C\" NOT NULL,"
    " pwhash text NOT NULL,"
    " roles text NOT NULL DEFAULT '',"
    " disabled integer NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"
    " created_at bigint NOT NULL DEFAULT 0,"
    " updated_at bigint NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX users_username_lower ON users (lower(username));"
    "CREATE TABLE sessions ("
    " id text COLLATE \"C\" PRIMARY KEY,"
    " secret_hash bytea NOT NULL UNIQUE CHECK (length(secret_hash) = 32),"
    " user_id text COLLATE \"C\" NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    " kind integer NOT NULL CHECK (kind IN (1, 2)),"
    " created_at bigint NOT NULL,"
    " last_seen_at bigint NOT NULL,"
    " expires_at bigint NOT NULL,"
    " idle_expires_at bigint NOT NULL,"
    " ip text NOT NULL DEFAULT '',"
    " user_agent text NOT NULL DEFAULT '',"
    /* Insertion order, SQLite's rowid: breaks ties between equal created_at. */
    " ord bigint GENERATED ALWAYS AS IDENTITY);"
    "CREATE INDEX sessions_user_created ON sessions (user_id, created_at, ord);"
    "CREATE INDEX sessions_expires ON sessions (expires_at);"
    "CREATE INDEX sessions_idle_expires ON sessions (idle_expires_at);"
    "CREATE TABLE meta (key text COLLATE \"C\" PRIMARY KEY, value text NOT NULL);",

    /* 2: token mode: refresh families, spent hashes, the revocation log and its
     * trigger, signing keys. */
    "ALTER TABLE sessions ADD COLUMN scope text NOT NULL DEFAULT '';"
    "ALTER TABLE sessions ADD COLUMN generation bigint NOT NULL DEFAULT 0;"
    "ALTER TABLE sessions ADD COLUMN sealed bytea"
    " CHECK (sealed IS NULL OR length(sealed) <= 128);"
    "CREATE TABLE refresh_spent ("
    " hash bytea PRIMARY KEY CHECK (length(hash) = 32),"
    " session_id text COLLATE \"C\" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
    " generation bigint NOT NULL,"
    " spent_at bigint NOT NULL);"
    "CREATE INDEX refresh_spent_session ON refresh_spent (session_id);"
    /* The seq of the revocation log comes from this one row, not from a sequence:
     * `UPDATE ... SET last = last + 1` locks the row until the writer commits, so
     * writers take seqs in commit order and a reader paging by the last seq seen
     * can never skip a row that commits later with a smaller seq. The row is never
     * reset: a seq is never reused, not even after a purge emptied the log. */
    "CREATE TABLE revocation_counter ("
    " id integer PRIMARY KEY CHECK (id = 1),"
    " last bigint NOT NULL);"
    "INSERT INTO revocation_counter (id, last) VALUES (1, 0);"
    "CREATE TABLE revocations ("
    " seq bigint PRIMARY KEY,"
    " kind integer NOT NULL CHECK (kind IN (1, 2)),"
    " value text NOT NULL,"
    " revoked_at bigint NOT NULL,"
    " expires_at bigint NOT NULL DEFAULT 0);"
    "CREATE INDEX revocations_revoked_at ON revocations (revoked_at);"
    "CREATE TABLE keys ("
    " kid text COLLATE \"C\" PRIMARY KEY,"
    " alg text NOT NULL,"
    " state integer NOT NULL CHECK (state IN (1, 2, 3)),"
    " created_at bigint NOT NULL DEFAULT 0,"
    " activated_at bigint NOT NULL DEFAULT 0,"
    " retired_at bigint NOT NULL DEFAULT 0,"
    " publish_until bigint NOT NULL DEFAULT 0,"
    " jwk text NOT NULL,"
    " ord bigint GENERATED ALWAYS AS IDENTITY);"
    /* At most one active key, whatever a buggy caller does. */
    "CREATE UNIQUE INDEX keys_one_active ON keys (state) WHERE state = 2;"
    /* Every delete of a session still alive by the store's clock (logout, revoke,
     * rotation, cap eviction, password change, user delete through the cascade)
     * logs its sid in the same transaction. SET search_path FROM CURRENT pins the
     * schema the tables were created in, whatever the caller's path later is. */
    "CREATE FUNCTION sessions_revoke_on_delete() RETURNS trigger"
    " LANGUAGE plpgsql SET search_path FROM CURRENT AS $$"
    " DECLARE s bigint;"
    " BEGIN"
    "  UPDATE revocation_counter SET last = last + 1 WHERE id = 1 RETURNING last INTO s;"
    "  INSERT INTO revocations (seq, kind, value, revoked_at, expires_at)"
    "  VALUES (s, 1, OLD.id, floor(extract(epoch FROM statement_timestamp()))::bigint, 0);"
    "  RETURN NULL;"
    " END $$;"
    "CREATE TRIGGER sessions_revoke_on_delete AFTER DELETE ON sessions FOR EACH ROW"
    " WHEN (OLD.expires_at > floor(extract(epoch FROM statement_timestamp()))::bigint"
    " AND OLD.idle_expires_at > floor(extract(epoch FROM statement_timestamp()))::bigint)"
    " EXECUTE FUNCTION sessions_revoke_on_delete();",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- parameters ------------------------------------------------------------------ */

void tsr_pg_params_init(pg_params *p)
{
    memset(p, 0, sizeof *p);
}

static int p_slot(pg_params *p)
{
    if (p->n >= PG_PARAMS_MAX) {
        p->overflow = 1;
        return -1;
    }
    return p->n++;
}

void tsr_pg_p_text(pg_params *p, const char *s)
{
    int i = p_slot(p);
    if (i < 0)
        return;
    p->v[i] = s;
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void tsr_pg_p_i64(pg_params *p, int64_t v)
{
    int i = p_slot(p);
    int w;
    if (i < 0)
        return;
    w = snprintf(p->num[i], sizeof p->num[i], "%lld", (long long)v);
    if (w < 0 || (size_t)w >= sizeof p->num[i]) {
        p->overflow = 1;
        return;
    }
    p->v[i] = p->num[i];
    p->fmt[i] = 0;
}

void tsr_pg_p_size(pg_params *p, size_t v)
{
    tsr_pg_p_i64(p, v > (size_t)INT64_MAX ? INT64_MAX : (int64_t)v);
}

void tsr_pg_p_bytes(pg_params *p, const uint8_t *b, size_t n)
{
    int i = p_slot(p);
    if (i < 0)
        return;
    if (n > (size_t)INT32_MAX) {
        p->overflow = 1;
        return;
    }
    p->v[i] = (const char *)b;
    p->len[i] = (int)n;
    p->fmt[i] = 1;
}

/* ---- errors ---------------------------------------------------------------------- */

/* SQLSTATEs after which a connection must not be used again: the server ended
 * it (08 connection exceptions, 57P01-03 shutdown), or its prepared statements no
 * longer match the server's (26000 after a DISCARD, 0A000 "cached plan must not
 * change result type" after a schema change). */
static int state_breaks_conn(const char *st)
{
    return strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 ||
           strcmp(st, "57P03") == 0 || strcmp(st, "26000") == 0 || strcmp(st, "0A000") == 0;
}

static int state_retryable(const char *st)
{
    return strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0;
}

/* The store boundary's translation (docs/internals/store.md has the table). */
static tsr_err map_state(const char *st, int broken)
{
    if (broken)
        return TSR_ERR_UNAVAILABLE;
    if (strcmp(st, "23505") == 0)
        return TSR_ERR_EXISTS;
    /* A session for a user that does not exist (or was just deleted). */
    if (strcmp(st, "23503") == 0)
        return TSR_ERR_NOT_FOUND;
    /* Another integrity constraint (CHECK, NOT NULL), or data the server refuses
     * (22xxx: e.g. bytes that are not valid in the database encoding). */
    if (strncmp(st, "23", 2) == 0 || strncmp(st, "22", 2) == 0)
        return TSR_ERR_INVALID;
    /* Still locked or conflicting after the retries, a statement_timeout or lock
     * timeout, too many connections, server out of disk or memory: the store is
     * down for now; callers deny. */
    if (strncmp(st, "40", 2) == 0 || strcmp(st, "57014") == 0 || strcmp(st, "55P03") == 0 ||
        strncmp(st, "53", 2) == 0 || strncmp(st, "57P", 3) == 0 || strncmp(st, "08", 2) == 0)
        return TSR_ERR_UNAVAILABLE;
    return TSR_ERR_INTERNAL;
}

/* Records a failed command's SQLSTATE, marks the connection broken when needed,
 * logs (the SQLSTATE and the statement's name, never a value or the server's
 * message, which can quote values) and returns the mapped error. */
static tsr_err fail(pg_conn *c, const PGresult *r, const char *what)
{
    const char *st = (r != NULL) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    tsr_err rc;

    if (st == NULL || strlen(st) != 5)
        st = "";
    memcpy(c->sqlstate, st, strlen(st) + 1);
    if (PQstatus(c->db) != CONNECTION_OK || st[0] == '\0' || state_breaks_conn(st))
        c->broken = 1;
    rc = map_state(st, c->broken);
    /* Duplicates and vanished users are answers, not failures. */
    if (rc == TSR_ERR_EXISTS || rc == TSR_ERR_NOT_FOUND || state_retryable(st))
        tsr_log(TSR_LOG_DEBUG, "store: postgresql statement refused", TSR_F_STR("statement", what),
                TSR_F_STR("sqlstate", st), TSR_F_ERR(rc));
    else
        tsr_log(TSR_LOG_WARN, "store: postgresql statement failed", TSR_F_STR("statement", what),
                TSR_F_STR("sqlstate", st[0] != '\0' ? st : "none"),
                TSR_F_BOOL("connection_lost", c->broken), TSR_F_ERR(rc));
    return rc;
}

/* ---- statements ------------------------------------------------------------------ */


/* ---- calls with a deadline ----
 * statement_timeout is enforced by the server, so a backend that stops answering
 * (stopped, stuck on I/O) on a host that still acknowledges packets would block a
 * blocking libpq call forever. Every call is therefore sent asynchronously and
 * awaited with poll() for at most CLIENT_DEADLINE_MS; past it the connection is
 * marked broken (never reused; the server rolls back what it held when the
 * socket closes) and NULL is returned, which callers map to UNAVAILABLE. */
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_socket(PGconn *db, short events, int64_t deadline)
{
    struct pollfd pfd = {.fd = PQsocket(db), .events = events};
    for (;;) {
        int64_t left = deadline - mono_ms();
        int n;
        if (pfd.fd < 0 || left <= 0)
            return 0;
        n = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return 0;
    }
}

/* After a successful PQsend*: the last result (PQexec's semantics), or NULL with
 * the connection marked broken on a deadline or a connection failure. */
static PGresult *await_result(pg_conn *c)
{
    int64_t deadline = mono_ms() + CLIENT_DEADLINE_MS;
    PGresult *last = NULL, *r;
    int f;

    while ((f = PQflush(c->db)) == 1) {
        if (!wait_socket(c->db, POLLOUT | POLLIN, deadline) || PQconsumeInput(c->db) == 0)
            goto broken;
    }
    if (f < 0)
        goto broken;
    for (;;) {
        while (PQisBusy(c->db)) {
            if (!wait_socket(c->db, POLLIN, deadline) || PQconsumeInput(c->db) == 0)
                goto broken;
        }
        r = PQgetResult(c->db);
        if (r == NULL)
            break;
        PQclear(last);
        last = r;
        if (PQstatus(c->db) == CONNECTION_BAD)
            break;
    }
    return last;
broken:
    PQclear(last);
    c->broken = 1;
    tsr_log(TSR_LOG_WARN, "postgresql call got no answer in time; connection dropped");
    return NULL;
}

static PGresult *call_prepare(pg_conn *c, const char *name, const char *sql)
{
    if (!PQsendPrepare(c->db, name, sql, 0, NULL))
        return NULL;
    return await_result(c);
}

static PGresult *call_prepared(pg_conn *c, const char *name, int n, const char *const *v,
                               const int *len, const int *fmt)
{
    if (!PQsendQueryPrepared(c->db, name, n, v, len, fmt, 0))
        return NULL;
    return await_result(c);
}

static PGresult *call_simple(pg_conn *c, const char *sql)
{
    if (!PQsendQuery(c->db, sql))
        return NULL;
    return await_result(c);
}

tsr_err tsr_pg_exec(pg_conn *c, pg_stmt id, const pg_params *p, PGresult **res)
{
    static const pg_params none;
    tsr_err rc = TSR_ERR_INTERNAL;
    const pg_stmt_def *d;
    PGresult *r = NULL;
    ExecStatusType est;

    if (res != NULL)
        *res = NULL;
    if ((int)id < 0 || id >= PG_ST__COUNT)
        goto out;
    if (p == NULL)
        p = &none;
    if (p->overflow)
        goto out;
    d = &tsr_pg_stmts[id];
    if (c->broken) {
        rc = TSR_ERR_UNAVAILABLE;
        goto out;
    }
    if (!c->prepared[id]) {
        /* Parameter types come from the SQL (casts, compared columns). */
        r = call_prepare(c, d->name, d->sql);
        if (r == NULL) {
            /* libpq could not even build a result: do not use this connection again. */
            c->broken = 1;
            rc = TSR_ERR_UNAVAILABLE; /* no answer in time, lost, or no memory */
            goto out;
        }
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            rc = fail(c, r, d->name);
            goto out;
        }
        PQclear(r);
        r = NULL;
        c->prepared[id] = 1;
    }
    /* Text results (format 0); binary only for byte-string parameters. */
    r = call_prepared(c, d->name, p->n, p->v, p->len, p->fmt);
    if (r == NULL) {
        c->broken = 1;
        rc = TSR_ERR_UNAVAILABLE; /* no answer in time, lost, or no memory */
        goto out;
    }
    est = PQresultStatus(r);
    if (est != PGRES_TUPLES_OK && est != PGRES_COMMAND_OK) {
        rc = fail(c, r, d->name);
        goto out;
    }
    if (res != NULL) {
        *res = r;
        r = NULL;
    }
    rc = TSR_OK;
out:
    PQclear(r);
    return rc;
}

tsr_err tsr_pg_exec_simple(pg_conn *c, const char *sql)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    char word[16]; /* the command's first word names it in the log: "BEGIN", "LOCK" */
    size_t wn = strcspn(sql, " ;");

    if (c->broken) {
        rc = TSR_ERR_UNAVAILABLE;
        goto out;
    }
    r = call_simple(c, sql);
    if (r == NULL) {
        c->broken = 1;
        rc = TSR_ERR_UNAVAILABLE; /* no answer in time, lost, or no memory */
        goto out;
    }
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (wn >= sizeof word)
            wn = sizeof word - 1;
        memcpy(word, sql, wn);
        word[wn] = '\0';
        rc = fail(c, r, word);
        goto out;
    }
    rc = TSR_OK;
out:
    PQclear(r);
    return rc;
}

/* ---- results --------------------------------------------------------------------- */

/* Strict decimal: optional '-', digits only, no overflow, nothing else. */
static int parse_i64(const char *s, int64_t *out)
{
    uint64_t v = 0, lim;
    int neg = 0;

    *out = 0;
    if (s == NULL)
        return 0;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    if (*s == '\0')
        return 0;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        if (v > (lim - (uint64_t)(*s - '0')) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (neg)
        *out = (v == (uint64_t)INT64_MAX + 1) ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 1;
}

int64_t tsr_pg_changes(const PGresult *r)
{
    int64_t v;
    /* PQcmdTuples takes a non-const result in libpq's prototype. */
    const char *t = PQcmdTuples((PGresult *)r);
    if (t == NULL || !parse_i64(t, &v) || v < 0)
        return -1;
    return v;
}

static int cell_ok(const PGresult *r, int row, int col)
{
    return r != NULL && row >= 0 && col >= 0 && row < PQntuples(r) && col < PQnfields(r);
}

tsr_err tsr_pg_text(const PGresult *r, int row, int col, char *dst, size_t cap)
{
    const char *v;
    int n;

    if (cap == 0)
        return TSR_ERR_INTERNAL;
    dst[0] = '\0';
    if (!cell_ok(r, row, col))
        return TSR_ERR_INTERNAL;
    if (PQgetisnull(r, row, col))
        return TSR_OK;
    v = PQgetvalue(r, row, col);
    n = PQgetlength(r, row, col);
    /* Longer than our record can hold: written by something else; refuse, never cut. */
    if (v == NULL || n < 0 || (size_t)n >= cap || memchr(v, '\0', (size_t)n) != NULL)
        return TSR_ERR_INTERNAL;
    memcpy(dst, v, (size_t)n);
    dst[n] = '\0';
    return TSR_OK;
}

tsr_err tsr_pg_i64(const PGresult *r, int row, int col, int64_t *v)
{
    *v = 0;
    if (!cell_ok(r, row, col) || PQgetisnull(r, row, col))
        return TSR_ERR_INTERNAL;
    return parse_i64(PQgetvalue(r, row, col), v) ? TSR_OK : TSR_ERR_INTERNAL;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

tsr_err tsr_pg_bytea(const PGresult *r, int row, int col, uint8_t *dst, size_t cap, size_t *len)
{
    const char *v;
    size_t n, bytes;

    *len = 0;
    if (!cell_ok(r, row, col))
        return TSR_ERR_INTERNAL;
    if (PQgetisnull(r, row, col))
        return TSR_OK;
    v = PQgetvalue(r, row, col);
    n = (size_t)PQgetlength(r, row, col);
    /* bytea_output = hex is set on every connection: "\x" then two digits a byte. */
    if (v == NULL || n < 2 || v[0] != '\\' || v[1] != 'x' || (n - 2) % 2 != 0)
        return TSR_ERR_INTERNAL;
    bytes = (n - 2) / 2;
    if (bytes > cap)
        return TSR_ERR_INTERNAL;
    for (size_t i = 0; i < bytes; i++) {
        int hi = hexval(v[2 + 2 * i]), lo = hexval(v[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            tsr_wipe(dst, i);
            return TSR_ERR_INTERNAL;
        }
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = bytes;
    return TSR_OK;
}

void tsr_pg_wipe_value(PGresult *r, int row, int col)
{
    char *v;
    int n;

    if (!cell_ok(r, row, col) || PQgetisnull(r, row, col))
        return;
    v = PQgetvalue(r, row, col);
    n = PQgetlength(r, row, col);
    if (v != NULL && n > 0)
        tsr_wipe(v, (size_t)n);
}

/* ---- connections ----------------------------------------------------------------- */

/* libpq prints notices (e.g. "relation already exists, skipping") to stderr by
 * default; the store logs only through tsr_log. */
static void quiet_notices(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static void conn_close(pg_conn *c)
{
    if (c == NULL)
        return;
    PQfinish(c->db); /* NULL is a no-op */
    free(c);
}

static tsr_err conn_open(const char *url, pg_conn **out)
{
    /* The URL comes last with expand_dbname: whatever it sets wins over these
     * defaults (libpq keeps the last value of a repeated keyword). */
    static const char *const kw[] = {"fallback_application_name",
                                     "connect_timeout",
                                     "client_encoding",
                                     "keepalives",
                                     "keepalives_idle",
                                     "keepalives_interval",
                                     "keepalives_count",
                                     "tcp_user_timeout",
                                     "dbname",
                                     NULL};
    /* connect_timeout 5 s; TCP keepalives (5 s idle, then 3 probes 2 s apart) and
     * tcp_user_timeout 15 s bound a wait on a server host that vanished without a
     * word, which no server-side statement_timeout can. */
    const char *val[sizeof kw / sizeof kw[0]] = {"tessera", "5", "UTF8",  "1", "5",
                                                 "2",       "3", "15000", url, NULL};
    tsr_err rc = TSR_ERR_INTERNAL;
    pg_conn *c = NULL;
    const char *msg;

    *out = NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    c->db = PQconnectdbParams(kw, val, 1);
    if (c->db == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    if (PQstatus(c->db) != CONNECTION_OK) {
        /* libpq's text names host, port, user and what went wrong, never a password. */
        msg = PQerrorMessage(c->db);
        tsr_log(TSR_LOG_WARN, "store: cannot connect to postgresql",
                TSR_F_STRN("detail", msg, msg != NULL ? strcspn(msg, "\n") : 0));
        rc = TSR_ERR_UNAVAILABLE;
        goto out;
    }
    (void)PQsetNoticeProcessor(c->db, quiet_notices, NULL);
    if (PQserverVersion(c->db) < MIN_SERVER_VERSION) {
        tsr_log(TSR_LOG_ERROR, "store: postgresql server too old",
                TSR_F_INT("server_version", PQserverVersion(c->db)),
                TSR_F_INT("minimum", MIN_SERVER_VERSION));
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }
    rc = tsr_pg_exec_simple(c, session_setup);
    if (rc != TSR_OK)
        goto out;
    *out = c;
    c = NULL;
    rc = TSR_OK;
out:
    conn_close(c);
    return rc;
}

/* Nonzero when an idle connection still looks usable. An idle connection has
 * nothing to read unless the server ended it (the FATAL message of a shutdown or
 * pg_terminate_backend, then end of file): anything readable means "replace it".
 * One poll() with no wait: no round trip. */
static int conn_alive(pg_conn *c)
{
    struct pollfd p;
    int fd, e;

    if (c->broken || PQstatus(c->db) != CONNECTION_OK || PQtransactionStatus(c->db) != PQTRANS_IDLE)
        return 0;
    fd = PQsocket(c->db);
    if (fd < 0)
        return 0;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    e = poll(&p, 1, 0);
    if (e == 0)
        return 1;
    if (e < 0)
        return errno == EINTR;
    return 0;
}

/* ---- the pool -------------------------------------------------------------------- */

/* A connection for one caller: an idle one that still looks alive (dead ones are
 * closed on the way), else a new one while fewer than max_conns are open, else
 * wait up to POOL_WAIT_S for one to come back. *reused says which. */
static tsr_err pool_get(tsr_pg *s, pg_conn **out, int *reused)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    struct timespec deadline;
    pg_conn *c = NULL;
    int have_deadline = 0, e;

    *out = NULL;
    *reused = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->idle == NULL && s->nopen >= s->max_conns) {
            /* Only a caller that has to wait reads the clock. */
            if (!have_deadline) {
                if (clock_gettime(CLOCK_MONOTONIC, &deadline) != 0)
                    goto out;
                deadline.tv_sec += POOL_WAIT_S;
                have_deadline = 1;
            }
            e = pthread_cond_timedwait(&s->cv, &s->mu, &deadline);
            if (e == ETIMEDOUT) {
                tsr_log(TSR_LOG_WARN, "store: no free postgresql connection",
                        TSR_F_INT("max_conns", s->max_conns), TSR_F_INT("wait_s", POOL_WAIT_S));
                rc = TSR_ERR_UNAVAILABLE;
                goto out;
            }
            if (e != 0)
                goto out;
        }
        if (s->idle == NULL)
            break;
        c = s->idle;
        s->idle = c->next;
        c->next = NULL;
        pthread_mutex_unlock(&s->mu);
        if (conn_alive(c)) {
            *out = c;
            *reused = 1;
            return TSR_OK;
        }
        /* Closed outside the lock (PQfinish may write a Terminate message). */
        conn_close(c);
        c = NULL;
        pthread_mutex_lock(&s->mu);
        s->nopen--;
    }
    /* Reserve the slot, then connect outside the lock. */
    s->nopen++;
    pthread_mutex_unlock(&s->mu);
    rc = conn_open(s->url, &c);
    pthread_mutex_lock(&s->mu);
    if (rc != TSR_OK) {
        s->nopen--;
        pthread_cond_signal(&s->cv);
        goto out;
    }
    *out = c;
    rc = TSR_OK;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Returns a connection to the pool, or closes it (freeing its slot) when it is
 * broken or cannot be brought back to a clean idle state. NULL is a no-op. */
static void pool_put(tsr_pg *s, pg_conn *c)
{
    PGTransactionStatusType ts;

    if (c == NULL)
        return;
    if (!c->broken && PQstatus(c->db) != CONNECTION_OK)
        c->broken = 1;
    if (!c->broken) {
        ts = PQtransactionStatus(c->db);
        /* Never hand the next caller a half-done transaction. */
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
            if (tsr_pg_exec_simple(c, "ROLLBACK") != TSR_OK)
                c->broken = 1;
            ts = PQtransactionStatus(c->db);
        }
        if (ts != PQTRANS_IDLE)
            c->broken = 1;
    }
    if (c->broken) {
        conn_close(c);
        pthread_mutex_lock(&s->mu);
        s->nopen--;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    c->sqlstate[0] = '\0';
    c->commit_sent = 0;
    pthread_mutex_lock(&s->mu);
    c->next = s->idle;
    s->idle = c;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- running a body -------------------------------------------------------------- */

static tsr_err run_once(pg_conn *c, unsigned flags, tsr_pg_body body, void *ctx)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    int in_tx = 0;

    c->sqlstate[0] = '\0';
    c->commit_sent = 0;
    if (flags & PG_TX) {
        rc = tsr_pg_exec_simple(c, "BEGIN");
        if (rc != TSR_OK)
            goto out;
        in_tx = 1;
    }
    rc = body(c, ctx);
    if (rc != TSR_OK)
        goto out;
    if (in_tx) {
        c->commit_sent = 1;
        rc = tsr_pg_exec_simple(c, "COMMIT");
        if (rc != TSR_OK)
            goto out;
        in_tx = 0;
    }
    rc = TSR_OK;
out:
    if (in_tx && !c->broken && tsr_pg_exec_simple(c, "ROLLBACK") != TSR_OK)
        c->broken = 1;
    return rc;
}

tsr_err tsr_pg_run(tsr_pg *s, unsigned flags, tsr_pg_body body, void *ctx)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    pg_conn *c = NULL;
    int reused = 0, fresh_retry = 0;

    for (int attempt = 0; attempt < RUN_ATTEMPTS; attempt++) {
        if (c == NULL) {
            rc = pool_get(s, &c, &reused);
            if (rc != TSR_OK)
                goto out;
        }
        rc = run_once(c, flags, body, ctx);
        if (rc == TSR_OK)
            goto out;
        if (c->broken) {
            /* A pooled connection the server had ended without our noticing: run
             * again once on a new one, when that cannot apply a change twice. */
            int safe = (flags & PG_RO) || ((flags & PG_TX) && !c->commit_sent);
            pool_put(s, c);
            c = NULL;
            if (!safe || !reused || fresh_retry)
                goto out;
            fresh_retry = 1;
            continue;
        }
        if (!state_retryable(c->sqlstate))
            goto out;
    }
out:
    pool_put(s, c);
    return rc;
}

typedef struct one_ctx {
    pg_stmt id;
    const pg_params *p;
    PGresult *res;
} one_ctx;

static tsr_err one_body(pg_conn *c, void *arg)
{
    one_ctx *o = arg;
    PQclear(o->res);
    o->res = NULL;
    return tsr_pg_exec(c, o->id, o->p, &o->res);
}

tsr_err tsr_pg_one(tsr_pg *s, unsigned flags, pg_stmt id, const pg_params *p, PGresult **res)
{
    one_ctx o = {id, p, NULL};
    tsr_err rc;

    if (res != NULL)
        *res = NULL;
    rc = tsr_pg_run(s, flags, one_body, &o);
    if (rc != TSR_OK || res == NULL) {
        PQclear(o.res);
        return rc;
    }
    *res = o.res;
    return TSR_OK;
}

/* ---- migrations ------------------------------------------------------------------ */

/* Brings the schema to SCHEMA_VERSION in one transaction. The advisory lock
 * (transaction-scoped, keyed by the schema's name) makes a second instance
 * starting at the same moment wait, then find the work done. */
static tsr_err migrate(pg_conn *c)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    PGresult *r = NULL;
    const char *param[1];
    char vbuf[16];
    int64_t version = 0;
    int in_tx = 0, w;

    rc = tsr_pg_exec_simple(c, "BEGIN");
    if (rc != TSR_OK)
        goto out;
    in_tx = 1;
    /* A migration may take longer than a request's statement. */
    rc = tsr_pg_exec_simple(c, "SET LOCAL statement_timeout = 60000");
    if (rc != TSR_OK)
        goto out;
    rc = tsr_pg_exec_simple(c, "SELECT pg_advisory_xact_lock(1953719666,"
                               " hashtext(coalesce(current_schema(), '')))");
    if (rc != TSR_OK)
        goto out;
    rc = tsr_pg_exec_simple(c, "CREATE TABLE IF NOT EXISTS schema_version ("
                               " id integer PRIMARY KEY CHECK (id = 1),"
                               " version integer NOT NULL)");
    if (rc != TSR_OK)
        goto out;
    r = PQexec(c->db, "SELECT version FROM schema_version WHERE id = 1");
    if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = r == NULL ? TSR_ERR_UNAVAILABLE : fail(c, r, "schema_version");
        if (r == NULL)
            c->broken = 1;
        goto out;
    }
    if (PQntuples(r) > 1) {
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    if (PQntuples(r) == 1) {
        rc = tsr_pg_i64(r, 0, 0, &version);
        if (rc != TSR_OK)
            goto out;
    }
    PQclear(r);
    r = NULL;
    /* A newer tessera wrote this schema: do not guess what it means. */
    if (version < 0 || version > SCHEMA_VERSION) {
        tsr_log(TSR_LOG_ERROR, "store: postgresql schema is newer than this binary",
                TSR_F_INT("schema_version", version), TSR_F_INT("supported", SCHEMA_VERSION));
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }
    if (version == SCHEMA_VERSION) {
        /* Nothing to do; the lock goes with the transaction. */
        rc = tsr_pg_exec_simple(c, "COMMIT");
        in_tx = 0;
        goto out;
    }
    for (int v = (int)version; v < SCHEMA_VERSION; v++) {
        rc = tsr_pg_exec_simple(c, migrations[v]);
        if (rc != TSR_OK) {
            tsr_log(TSR_LOG_ERROR, "store: postgresql migration failed",
                    TSR_F_INT("to_version", v + 1), TSR_F_STR("sqlstate", c->sqlstate));
            goto out;
        }
    }
    w = snprintf(vbuf, sizeof vbuf, "%d", SCHEMA_VERSION);
    if (w < 0 || (size_t)w >= sizeof vbuf) {
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    param[0] = vbuf;
    r = PQexecParams(c->db,
                     "INSERT INTO schema_version (id, version) VALUES (1, $1::integer)"
                     " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                     1, NULL, param, NULL, NULL, 0);
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
        rc = r == NULL ? TSR_ERR_UNAVAILABLE : fail(c, r, "schema_version_set");
        if (r == NULL)
            c->broken = 1;
        goto out;
    }
    PQclear(r);
    r = NULL;
    rc = tsr_pg_exec_simple(c, "COMMIT");
    if (rc != TSR_OK)
        goto out;
    in_tx = 0;
    tsr_log(TSR_LOG_INFO, "store: postgresql schema migrated", TSR_F_INT("from_version", version),
            TSR_F_INT("to_version", SCHEMA_VERSION));
    rc = TSR_OK;
out:
    PQclear(r);
    if (in_tx && !c->broken && tsr_pg_exec_simple(c, "ROLLBACK") != TSR_OK)
        c->broken = 1;
    return rc;
}

/* ---- open and close -------------------------------------------------------------- */

/* The URL must be one libpq can parse, with a numeric port list when it names one
 * (libpq would only notice a bad port when connecting, as if the server were down). */
static tsr_err check_url(const char *url)
{
    tsr_err rc = TSR_ERR_INVALID;
    PQconninfoOption *opts = NULL;
    char *err = NULL;

    opts = PQconninfoParse(url, &err);
    if (opts == NULL)
        goto out; /* err (if any) quotes the URL: not logged */
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "port") != 0 || o->val == NULL)
            continue;
        for (const char *q = o->val; *q != '\0'; q++)
            if ((*q < '0' || *q > '9') && *q != ',')
                goto out;
    }
    rc = TSR_OK;
out:
    if (err != NULL)
        PQfreemem(err);
    PQconninfoFree(opts);
    return rc;
}

static void pg_free(tsr_pg *s)
{
    if (s == NULL)
        return;
    if (s->url != NULL) {
        tsr_wipe(s->url, strlen(s->url));
        free(s->url);
    }
    free(s);
}

static void pg_close(tsr_store *base)
{
    tsr_pg *s = (tsr_pg *)base;
    pg_conn *c, *next;

    if (s == NULL)
        return;
    /* The caller guarantees no call is in flight. */
    for (c = s->idle; c != NULL; c = next) {
        next = c->next;
        conn_close(c);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pg_free(s);
}

void tsr_pg_close(tsr_store *base)
{
    pg_close(base);
}

tsr_err tsr_store_pg_open(const char *url, size_t max_conns, tsr_store **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_pg *s = NULL;
    pthread_condattr_t ca;
    pg_conn *c = NULL;
    size_t len;
    int have_mu = 0, have_cv = 0, have_ca = 0;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (url == NULL) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    len = strnlen(url, URL_MAX + 1);
    if (len == 0 || len > URL_MAX) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    rc = check_url(url);
    if (rc != TSR_OK)
        goto out;
    /* Connections are used from many threads (one at a time each). */
    if (PQisthreadsafe() == 0) {
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }
    rc = TSR_ERR_NOMEM;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto out;
    s->base.ops = &tsr_pg_ops;
    s->max_conns = max_conns == 0 ? POOL_DEFAULT : max_conns;
    if (s->max_conns > POOL_HARD_MAX)
        s->max_conns = POOL_HARD_MAX;
    s->url = malloc(len + 1);
    if (s->url == NULL)
        goto out;
    memcpy(s->url, url, len + 1);
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

    rc = conn_open(s->url, &c);
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
        pg_free(s);
    }
    return rc;
}
