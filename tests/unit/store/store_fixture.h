/* store_fixture.h: the fixture the store conformance suites share (test_store.c,
 * test_store_tokens.c): a fresh, empty store per test, a SQLite file in its own
 * mkdtemp folder, or, with TSR_TEST_PG_URL set (tests/support/services.py --pg), a
 * fresh PostgreSQL schema that fx_close drops. Include it once, after harness.h,
 * with TSR_FIXTURE_DIR_PREFIX and DB_NAME defined. */
#ifndef TSR_TEST_STORE_FIXTURE_H
#define TSR_TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "harness.h"
#include "store/store.h"

typedef struct fixture {
    char dir[64];   /* SQLite: the mkdtemp folder */
    char sub[128];  /* dir/var: created by the store itself */
    char path[192]; /* dir/var/tessera.db */
    char url[1024];
    char schema[64]; /* PostgreSQL: this test's own fresh schema ("" under SQLite) */
    tsr_store *s;
} fixture;

static int fmt(char *buf, size_t cap, const char *a, const char *b)
{
    int w = snprintf(buf, cap, "%s%s", a, b);
    return w >= 0 && (size_t)w < cap;
}

/* Opens a fresh, empty store. Returns 0 (and fails the test) when it cannot. */
/* With TSR_TEST_PG_URL set (tests/support/services.py --pg), every fixture runs
 * against PostgreSQL instead, in a fresh schema of its own that fx_close drops. */
static const char *pg_base(void)
{
    const char *u = getenv("TSR_TEST_PG_URL");
    return (u != NULL && u[0] != '\0') ? u : NULL;
}

static void pg_quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Runs one fixed command on a connection of its own to the test database. */
static int pg_admin(const char *sql)
{
    PGconn *c = PQconnectdb(pg_base());
    PGresult *r = NULL;
    int ok = 0;

    if (c != NULL && PQstatus(c) == CONNECTION_OK) {
        (void)PQsetNoticeProcessor(c, pg_quiet, NULL);
        r = PQexec(c, sql);
        ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
    }
    if (!ok)
        fprintf(stderr, "pg fixture: %s: %s", sql, c != NULL ? PQerrorMessage(c) : "no memory\n");
    PQclear(r);
    PQfinish(c);
    return ok;
}

/* A new schema t_<pid>_<n> and the store URL that makes it the search_path. */
static int pg_fx_open(fixture *f)
{
    static int counter;
    const char *base = pg_base();
    char sql[128];
    int w;

    w = snprintf(f->schema, sizeof f->schema, "t_%ld_%d", (long)getpid(), ++counter);
    if (w < 0 || (size_t)w >= sizeof f->schema) {
        CHECK(!"schema name");
        f->schema[0] = '\0';
        return 0;
    }
    w = snprintf(f->url, sizeof f->url, "%s%coptions=-csearch_path%%3D%s", base,
                 strchr(base, '?') != NULL ? '&' : '?', f->schema);
    if (w < 0 || (size_t)w >= sizeof f->url) {
        CHECK(!"url too long");
        f->schema[0] = '\0';
        return 0;
    }
    (void)snprintf(sql, sizeof sql, "CREATE SCHEMA %s", f->schema);
    if (!pg_admin(sql)) {
        CHECK(!"CREATE SCHEMA");
        f->schema[0] = '\0';
        return 0;
    }
    CHECK(tsr_store_open(f->url, &f->s) == TSR_OK);
    return f->s != NULL;
}

static void pg_fx_close(fixture *f)
{
    char sql[128];

    (void)snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", f->schema);
    if (!pg_admin(sql))
        fprintf(stderr, "note: could not drop schema %s\n", f->schema);
}

static int fx_open(fixture *f)
{
    memset(f, 0, sizeof *f);
    if (pg_base() != NULL)
        return pg_fx_open(f);
    if (!fmt(f->dir, sizeof f->dir, TSR_FIXTURE_DIR_PREFIX, "XXXXXX") || mkdtemp(f->dir) == NULL) {
        CHECK(!"mkdtemp");
        return 0;
    }
    if (!fmt(f->sub, sizeof f->sub, f->dir, "/var") ||
        !fmt(f->path, sizeof f->path, f->sub, "/" DB_NAME) ||
        !fmt(f->url, sizeof f->url, "sqlite:", f->path)) {
        CHECK(!"path too long");
        return 0;
    }
    CHECK(tsr_store_open(f->url, &f->s) == TSR_OK);
    return f->s != NULL;
}

static int fx_reopen(fixture *f)
{
    tsr_store_close(f->s);
    f->s = NULL;
    CHECK(tsr_store_open(f->url, &f->s) == TSR_OK);
    return f->s != NULL;
}

static void rm_file(const char *dir, const char *name)
{
    char p[256];
    int w = snprintf(p, sizeof p, "%s/%s", dir, name);
    if (w >= 0 && (size_t)w < sizeof p)
        (void)unlink(p);
}

static void fx_close(fixture *f)
{
    tsr_store_close(f->s);
    f->s = NULL;
    if (f->schema[0] != '\0') {
        pg_fx_close(f);
        return;
    }
    if (f->dir[0] == '\0')
        return;
    rm_file(f->sub, DB_NAME);
    rm_file(f->sub, DB_NAME "-wal");
    rm_file(f->sub, DB_NAME "-shm");
    rm_file(f->sub, DB_NAME "-journal");
    (void)rmdir(f->sub);
    if (rmdir(f->dir) != 0)
        fprintf(stderr, "note: could not remove %s (errno %d)\n", f->dir, errno);
}

/* ---- records --------------------------------------------------------------------- */

static void rand_id(const char *prefix, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t r[16];
    size_t n;

    memset(out, 0, cap);
    if (tsr_rand(r, sizeof r) != TSR_OK)
        memset(r, 0x5a, sizeof r);
    n = strlen(prefix);
    if (n + 2 * sizeof r + 1 > cap)
        return;
    memcpy(out, prefix, n);
    for (size_t i = 0; i < sizeof r; i++) {
        out[n + 2 * i] = hex[r[i] >> 4];
        out[n + 2 * i + 1] = hex[r[i] & 15];
    }
}

#endif
