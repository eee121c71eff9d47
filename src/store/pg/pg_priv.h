/* pg_priv.h: what pg.c (pool, connections, statements, migrations, helpers) and
 * pg_ops.c (the store operations) share inside the PostgreSQL backend.
 *
 * Only src/store/pg/ includes this header, and with it libpq-fe.h. */
#ifndef TSR_STORE_PG_PRIV_H
#define TSR_STORE_PG_PRIV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store/pg/pg_int.h"
#include "store/store.h"

#define PG_PARAMS_MAX 12 /* the most parameters any statement binds */

/* Every prepared statement. Each connection prepares one on first use (PQprepare,
 * under the name in tsr_pg_stmts) and keeps it until the connection closes. */
typedef enum pg_stmt {
    PG_ST_PING = 0,
    PG_ST_USER_INSERT,
    PG_ST_USER_GET,
    PG_ST_USER_GET_BY_NAME,
    PG_ST_USER_LIST,
    PG_ST_USER_SET_PWHASH,
    PG_ST_USER_SET_FLAGS,
    PG_ST_USER_DELETE,
    PG_ST_USER_LOCK,
    PG_ST_SES_INSERT,
    PG_ST_SES_CLEANUP,
    PG_ST_SES_GET,
    PG_ST_SES_GET_BY_HASH,
    PG_ST_SES_RESOLVE,
    PG_ST_SES_TOUCH,
    PG_ST_SES_LIST,
    PG_ST_SES_DELETE,
    PG_ST_SES_DELETE_USER,
    PG_ST_SES_DELETE_OWNED,
    PG_ST_SES_END_ALL_KEEP,
    PG_ST_SES_COUNT,
    PG_ST_SES_PURGE_BATCH,
    PG_ST_META_GET,
    PG_ST_META_SET,
    PG_ST_META_INSERT,
    PG_ST_REFRESH_LOOKUP,
    PG_ST_REFRESH_ROTATE,
    PG_ST_REFRESH_STATE,
    PG_ST_REV_INSERT,
    PG_ST_REV_SINCE,
    PG_ST_REV_PURGE_BATCH,
    PG_ST_KEY_LIST,
    PG_ST_KEY_ACTIVE,
    PG_ST_KEY_RETIRE_ACTIVE,
    PG_ST_KEY_PROMOTE_NEXT,
    PG_ST_KEY_RETIRE_NEXT,
    PG_ST_KEY_INSERT,
    PG_ST_KEY_PURGE,
    PG_ST__COUNT
} pg_stmt;

typedef struct pg_stmt_def {
    const char *name; /* the server-side prepared statement name; also logged */
    const char *sql;
} pg_stmt_def;

/* Defined in pg_ops.c, indexed by pg_stmt. */
extern const pg_stmt_def tsr_pg_stmts[PG_ST__COUNT];
extern const tsr_store_ops tsr_pg_ops;

/* Closes every pooled connection and frees the store (tsr_pg_ops.close). */
void tsr_pg_close(tsr_store *base);

typedef struct pg_conn {
    PGconn *db;
    unsigned char prepared[PG_ST__COUNT]; /* 1 once PQprepare succeeded here */
    int broken;           /* the connection is lost or unusable: close, never reuse */
    int commit_sent;      /* tsr_pg_run: COMMIT went out (its outcome may be unknown) */
    char sqlstate[6];     /* SQLSTATE of the last failed command, "" if none */
    struct pg_conn *next; /* link in the idle list */
} pg_conn;

typedef struct tsr_pg {
    tsr_store base;
    char *url; /* the libpq URI (may hold a password: wiped at close) */
    size_t max_conns;
    pthread_mutex_t mu; /* guards idle and nopen */
    pthread_cond_t cv;  /* signalled when a connection slot frees up */
    pg_conn *idle;      /* LIFO: the most recently used connection first */
    size_t nopen;       /* idle plus in use plus being opened */
} tsr_pg;

/* Parameters of one statement, all bound (never spliced into SQL). Text values are
 * borrowed from the caller and must outlive the call; integers are formatted into
 * the struct itself; byte strings go in binary format. */
typedef struct pg_params {
    int n;
    const char *v[PG_PARAMS_MAX];
    int len[PG_PARAMS_MAX];
    int fmt[PG_PARAMS_MAX];
    char num[PG_PARAMS_MAX][24];
    int overflow; /* more than PG_PARAMS_MAX were added: the exec refuses */
} pg_params;

void tsr_pg_params_init(pg_params *p);
void tsr_pg_p_text(pg_params *p, const char *s); /* NULL binds SQL NULL */
void tsr_pg_p_i64(pg_params *p, int64_t v);
void tsr_pg_p_size(pg_params *p, size_t v);                    /* capped at INT64_MAX */
void tsr_pg_p_bytes(pg_params *p, const uint8_t *b, size_t n); /* NULL binds SQL NULL */

/* Runs prepared statement id (preparing it first on this connection if needed).
 * On success *res (may be NULL: the result is dropped) gets the result, which the
 * caller PQclears. On failure *res is NULL, the error is mapped, logged by SQLSTATE
 * and remembered in c->sqlstate, and a lost connection is marked broken. */
TSR_MUST_CHECK tsr_err tsr_pg_exec(pg_conn *c, pg_stmt id, const pg_params *p,
                                   PGresult **res /* OUT */);
/* Runs a fixed SQL text without parameters (BEGIN, LOCK TABLE ...). */
TSR_MUST_CHECK tsr_err tsr_pg_exec_simple(pg_conn *c, const char *sql);

/* Flags of tsr_pg_run. */
#define PG_TX 1u /* wrap the body in BEGIN ... COMMIT (ROLLBACK on any failure) */
#define PG_RO 2u /* the body only reads: safe to run again on a fresh connection */

typedef tsr_err (*tsr_pg_body)(pg_conn *c, void *ctx);

/* Takes a connection from the pool and runs body on it (in a transaction with
 * PG_TX). Runs it again, up to 3 times in all, after a serialization failure or a
 * deadlock (40001, 40P01), and once on a fresh connection when a pooled one turns
 * out to be lost and running again cannot apply a change twice (PG_RO, or PG_TX
 * before COMMIT was sent). A body must therefore set its outputs afresh each run. */
TSR_MUST_CHECK tsr_err tsr_pg_run(tsr_pg *s, unsigned flags, tsr_pg_body body, void *ctx);
/* One statement through tsr_pg_run (no transaction). *res as in tsr_pg_exec. */
TSR_MUST_CHECK tsr_err tsr_pg_one(tsr_pg *s, unsigned flags, pg_stmt id, const pg_params *p,
                                  PGresult **res /* OUT */);

/* Rows an INSERT/UPDATE/DELETE changed (PQcmdTuples), -1 when unreadable. */
int64_t tsr_pg_changes(const PGresult *r);

/* Column readers for text-format results. A NULL reads as "" / 0 bytes. */
/* The value into dst; TSR_ERR_INTERNAL (dst "") when it does not fit cap. */
TSR_MUST_CHECK tsr_err tsr_pg_text(const PGresult *r, int row, int col, char *dst, size_t cap);
/* A strictly parsed decimal integer (a NULL is TSR_ERR_INTERNAL). */
TSR_MUST_CHECK tsr_err tsr_pg_i64(const PGresult *r, int row, int col, int64_t *v /* OUT */);
/* A bytea in hex output ("\x..."): at most cap bytes into dst, *len how many. */
TSR_MUST_CHECK tsr_err tsr_pg_bytea(const PGresult *r, int row, int col, uint8_t *dst, size_t cap,
                                    size_t *len /* OUT */);
/* Overwrites the value's bytes inside the result (a secret read out of it). */
void tsr_pg_wipe_value(PGresult *r, int row, int col);

#endif
