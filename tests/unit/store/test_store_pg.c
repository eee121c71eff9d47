/* test_store_pg.c: what only the PostgreSQL backend has to get right: revocation
 * rows visible in seq order across concurrent transactions, two instances migrating
 * one schema at once, the pool's bound and wait, connections the server ended,
 * schema versions, and URL errors.
 *
 * Runs only under tests/support/services.py --pg (TSR_TEST_PG_URL); without it the
 * suite fails rather than passing empty. Each test works in a fresh schema of its
 * own and finds the store's server processes by a per-test application_name.
 * Waits for server-side conditions are polled with a generous bound; nothing
 * asserts on a duration. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "crypto/crypto.h"
#include "harness.h"
#include "store/store.h"

#define HOUR ((int64_t)3600)
#define POLL_BOUND_MS 30000 /* a server-side condition that never comes is a failure */

/* ---- fixture --------------------------------------------------------------------- */

typedef struct fixture {
    char schema[64];
    char app[64];
    char url[1024]; /* the test URL with this schema as search_path and app as name */
    tsr_store *s;
} fixture;

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

static PGconn *raw_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "raw connect: %s", c != NULL ? PQerrorMessage(c) : "no memory\n");
        PQfinish(c);
        return NULL;
    }
    (void)PQsetNoticeProcessor(c, pg_quiet, NULL);
    return c;
}

/* Runs a command (with up to two text parameters) on c; 1 when it worked. */
static int q_ok(PGconn *c, const char *sql, const char *p1, const char *p2)
{
    const char *v[2] = {p1, p2};
    int n = p2 != NULL ? 2 : p1 != NULL ? 1 : 0;
    PGresult *r;
    int ok;

    if (c == NULL)
        return 0;
    r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
    ok = r != NULL &&
         (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

/* The first column of the first row as an integer; -1 on any failure. */
static long long q_int(PGconn *c, const char *sql, const char *p1)
{
    const char *v[1] = {p1};
    PGresult *r;
    long long x = -1;
    char *end = NULL;

    if (c == NULL)
        return -1;
    r = PQexecParams(c, sql, p1 != NULL ? 1 : 0, NULL, v, NULL, NULL, 0);
    if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
        !PQgetisnull(r, 0, 0)) {
        errno = 0;
        x = strtoll(PQgetvalue(r, 0, 0), &end, 10);
        if (errno != 0 || end == NULL || *end != '\0')
            x = -1;
    } else {
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    }
    PQclear(r);
    return x;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A fresh schema and the URL naming it (not opened). 0 when that failed. */
static int fx_schema(fixture *f, const char *app)
{
    static int counter;
    const char *base = pg_base();
    PGconn *c;
    char sql[128];
    int w, ok;

    memset(f, 0, sizeof *f);
    if (base == NULL) {
        CHECK(!"TSR_TEST_PG_URL is not set");
        return 0;
    }
    w = snprintf(f->schema, sizeof f->schema, "tpg_%ld_%d", (long)getpid(), ++counter);
    if (w < 0 || (size_t)w >= sizeof f->schema)
        goto fail;
    w = snprintf(f->app, sizeof f->app, "%s_%d", app, counter);
    if (w < 0 || (size_t)w >= sizeof f->app)
        goto fail;
    w = snprintf(f->url, sizeof f->url, "%s%coptions=-csearch_path%%3D%s&application_name=%s", base,
                 strchr(base, '?') != NULL ? '&' : '?', f->schema, f->app);
    if (w < 0 || (size_t)w >= sizeof f->url)
        goto fail;
    (void)snprintf(sql, sizeof sql, "CREATE SCHEMA %s", f->schema);
    c = raw_connect(base);
    ok = q_ok(c, sql, NULL, NULL);
    PQfinish(c);
    if (!ok)
        goto fail;
    return 1;
fail:
    CHECK(!"fixture schema");
    f->schema[0] = '\0';
    return 0;
}

static int fx_open(fixture *f, const char *app)
{
    if (!fx_schema(f, app))
        return 0;
    CHECK(tsr_store_open(f->url, &f->s) == TSR_OK);
    return f->s != NULL;
}

static void fx_close(fixture *f)
{
    char sql[128];
    PGconn *c;

    tsr_store_close(f->s);
    f->s = NULL;
    if (f->schema[0] == '\0')
        return;
    (void)snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", f->schema);
    c = raw_connect(pg_base());
    if (!q_ok(c, sql, NULL, NULL))
        fprintf(stderr, "note: could not drop schema %s\n", f->schema);
    PQfinish(c);
}

/* Server processes serving this fixture's store. */
static long long backends(PGconn *watch, const fixture *f)
{
    return q_int(watch, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                 f->app);
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

static tsr_user mk_user(const char *name)
{
    tsr_user u;
    memset(&u, 0, sizeof u);
    rand_id("usr_", u.id, sizeof u.id);
    (void)snprintf(u.username, sizeof u.username, "%s", name);
    (void)snprintf(u.pwhash, sizeof u.pwhash, "%s", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
    (void)snprintf(u.roles, sizeof u.roles, "%s", "user");
    u.created_at = (int64_t)time(NULL);
    u.updated_at = u.created_at;
    return u;
}

/* A cookie session alive by the wall clock (the revocation trigger reads it). */
static tsr_session mk_live_session(const char *user_id)
{
    tsr_session s;
    int64_t now = (int64_t)time(NULL);

    memset(&s, 0, sizeof s);
    rand_id("ses_", s.id, sizeof s.id);
    if (tsr_rand(s.secret_hash, sizeof s.secret_hash) != TSR_OK)
        memset(s.secret_hash, 0x77, sizeof s.secret_hash);
    (void)snprintf(s.user_id, sizeof s.user_id, "%s", user_id);
    s.kind = TSR_SESSION_COOKIE;
    s.created_at = now;
    s.last_seen_at = now;
    s.expires_at = now + 24 * HOUR;
    s.idle_expires_at = now + HOUR;
    return s;
}

/* ---- a store call on a thread of its own ----------------------------------------- */

typedef enum bg_op { BG_SESSION_DELETE = 1, BG_REVOCATION_ADD, BG_PING, BG_SESSION_CREATE } bg_op;

typedef struct bg_call {
    tsr_store *s;
    bg_op op;
    const char *arg;
    const tsr_session *session; /* BG_SESSION_CREATE */
    pthread_barrier_t *start;   /* NULL: start at once */
    pthread_mutex_t *mu;        /* shared by the calls of one test */
    pthread_cond_t *cv;
    int *finished;  /* under mu: how many calls of the group have returned */
    tsr_err *order; /* under mu: the group's results in the order they came */
    int done;       /* under mu */
    tsr_err rc;
} bg_call;

static void *bg_run(void *arg)
{
    bg_call *b = arg;
    tsr_err rc = TSR_ERR_INTERNAL;

    if (b->start != NULL)
        (void)pthread_barrier_wait(b->start);
    switch (b->op) {
    case BG_SESSION_DELETE:
        rc = tsr_store_session_delete(b->s, b->arg);
        break;
    case BG_REVOCATION_ADD:
        rc = tsr_store_revocation_add(b->s, TSR_REVOKE_JTI, b->arg, (int64_t)time(NULL),
                                      (int64_t)time(NULL) + HOUR);
        break;
    case BG_PING:
        rc = tsr_store_ping(b->s);
        break;
    case BG_SESSION_CREATE:
        rc = tsr_store_session_create(b->s, b->session, 10, b->session->created_at);
        break;
    }
    pthread_mutex_lock(b->mu);
    b->rc = rc;
    b->done = 1;
    if (b->order != NULL && b->finished != NULL)
        b->order[(*b->finished)++] = rc;
    pthread_cond_broadcast(b->cv);
    pthread_mutex_unlock(b->mu);
    return NULL;
}

/* ---- tests ----------------------------------------------------------------------- */

static void requires_tsr_test_pg_url(void)
{
    CHECKF(pg_base() != NULL, "run under: python3 tests/support/services.py --pg -- %s",
           "store_test_store_pg");
}

/* Waits until the call b has returned or a server process of f's store waits for a
 * lock; says which (1: waiting and not returned). */
static int wait_blocked(PGconn *watch, const fixture *f, bg_call *b, pthread_mutex_t *mu)
{
    int waiting = 0, done = 0;

    for (int ms = 0; ms < POLL_BOUND_MS; ms += 10) {
        pthread_mutex_lock(mu);
        done = b->done;
        pthread_mutex_unlock(mu);
        waiting = q_int(watch,
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
                        "AND wait_event_type = 'Lock'",
                        f->app) > 0;
        if (done || waiting)
            break;
        nap_ms(10);
    }
    return waiting && !done;
}

/* A transaction holding a revocation open (here a raw DELETE: the trigger logs it,
 * whoever deletes) must keep every later revocation from becoming visible before
 * it: otherwise a reader that paged past the later, higher seq would never see the
 * earlier one. With a plain sequence the store's write below would commit at once
 * with the higher seq, and the read in the middle would see it. */
static void revocations_become_visible_in_seq_order(void)
{
    fixture f;
    tsr_user u;
    tsr_session held[2], other;
    tsr_revocation out[8];
    PGconn *hold = NULL, *watch = NULL;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int64_t last = 0;
    size_t n = 0;

    if (!fx_open(&f, "tsr_pg_order"))
        goto out;
    u = mk_user("alice");
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    held[0] = mk_live_session(u.id);
    held[1] = mk_live_session(u.id);
    other = mk_live_session(u.id);
    for (int i = 0; i < 2; i++)
        CHECK(tsr_store_session_create(f.s, &held[i], 0, held[i].created_at) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &other, 0, other.created_at) == TSR_OK);
    hold = raw_connect(f.url);
    watch = raw_connect(pg_base());
    CHECK(hold != NULL && watch != NULL);
    if (hold == NULL || watch == NULL)
        goto out;

    /* Round 0: the store's own session delete (its trigger row); round 1: an
     * RFC 7009 revocation_add. Each waits behind a transaction holding a lower seq. */
    for (int round = 0; round < 2; round++) {
        bg_call b;
        pthread_t th;
        char jti[32];

        CHECK(q_ok(hold, "BEGIN", NULL, NULL));
        CHECK(q_ok(hold, "DELETE FROM sessions WHERE id = $1", held[round].id, NULL));
        memset(&b, 0, sizeof b);
        b.s = f.s;
        b.mu = &mu;
        b.cv = &cv;
        (void)snprintf(jti, sizeof jti, "jti_round_%d", round);
        b.op = round == 0 ? BG_SESSION_DELETE : BG_REVOCATION_ADD;
        b.arg = round == 0 ? other.id : jti;
        if (pthread_create(&th, NULL, bg_run, &b) != 0) {
            CHECK(!"pthread_create");
            (void)q_ok(hold, "ROLLBACK", NULL, NULL);
            goto out;
        }
        CHECKF(wait_blocked(watch, &f, &b, &mu), "round %d: the later revocation did not wait",
               round);
        /* Nothing new is visible while the lower seq is uncommitted. */
        CHECK(tsr_store_revocation_since(f.s, last, INT64_MIN, out, 8, &n) == TSR_OK);
        CHECKF(n == 0, "round %d: %zu rows visible before the lower seq committed", round, n);
        CHECK(q_ok(hold, "COMMIT", NULL, NULL));
        (void)pthread_join(th, NULL);
        CHECK(b.rc == TSR_OK);
        /* Paging on from the last seq seen yields both, lower seq first. */
        CHECK(tsr_store_revocation_since(f.s, last, INT64_MIN, out, 8, &n) == TSR_OK);
        CHECKF(n == 2, "round %d: %zu rows", round, n);
        if (n == 2) {
            CHECK(out[0].kind == TSR_REVOKE_SID && strcmp(out[0].value, held[round].id) == 0);
            CHECK(strcmp(out[1].value, b.arg) == 0);
            CHECK(out[1].kind == (round == 0 ? TSR_REVOKE_SID : TSR_REVOKE_JTI));
            CHECK(out[0].seq > last && out[1].seq == out[0].seq + 1);
            last = out[1].seq;
        }
    }
out:
    PQfinish(hold);
    PQfinish(watch);
    fx_close(&f);
}

enum { OPENERS = 4 };

typedef struct opener {
    const char *url;
    pthread_barrier_t *start;
    tsr_store *s;
    tsr_err rc;
} opener;

static void *open_run(void *arg)
{
    opener *o = arg;
    (void)pthread_barrier_wait(o->start);
    o->rc = tsr_store_open(o->url, &o->s);
    return NULL;
}

/* Four instances opening one new schema at the same moment: all succeed, the
 * schema is migrated exactly once (the advisory lock), and they share its data. */
static void stores_opened_at_once_migrate_once(void)
{
    fixture f;
    opener o[OPENERS];
    pthread_t th[OPENERS];
    pthread_barrier_t start;
    PGconn *c = NULL;
    tsr_user u = mk_user("Shared"), got;
    int started = 0;

    memset(o, 0, sizeof o);
    if (!fx_schema(&f, "tsr_pg_migrate"))
        goto out;
    CHECK(pthread_barrier_init(&start, NULL, OPENERS) == 0);
    for (int i = 0; i < OPENERS; i++) {
        o[i].url = f.url;
        o[i].start = &start;
    }
    for (; started < OPENERS; started++)
        if (pthread_create(&th[started], NULL, open_run, &o[started]) != 0)
            break;
    CHECK(started == OPENERS);
    if (started != OPENERS)
        abort(); /* the barrier would never open */
    for (int i = 0; i < OPENERS; i++)
        (void)pthread_join(th[i], NULL);
    (void)pthread_barrier_destroy(&start);
    for (int i = 0; i < OPENERS; i++)
        CHECKF(o[i].rc == TSR_OK && o[i].s != NULL, "opener %d: %s", i, tsr_err_text(o[i].rc));
    c = raw_connect(f.url);
    CHECK(q_int(c, "SELECT count(*) FROM schema_version", NULL) == 1);
    CHECK(q_int(c, "SELECT version FROM schema_version", NULL) == 2);
    CHECK(q_int(c, "SELECT count(*) FROM revocation_counter", NULL) == 1);
    /* The tables are in the connection's schema, none in public. */
    CHECK(q_int(c,
                "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN "
                "('users', 'sessions', 'meta', 'refresh_spent', 'revocation_counter', "
                "'revocations', 'keys', 'schema_version')",
                f.schema) == 8);
    CHECK(q_int(c, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", NULL) == 0);
    if (o[0].s != NULL && o[OPENERS - 1].s != NULL) {
        CHECK(tsr_store_user_create(o[0].s, &u) == TSR_OK);
        CHECK(tsr_store_user_get_by_name(o[OPENERS - 1].s, "sHARED", &got) == TSR_OK);
        CHECK(strcmp(got.id, u.id) == 0);
    }
out:
    PQfinish(c);
    for (int i = 0; i < OPENERS; i++)
        tsr_store_close(o[i].s);
    fx_close(&f);
}

/* A child that sends SIGCONT to pid when this process dies or after a minute, so
 * that a crash between SIGSTOP and SIGCONT cannot leave a server process stopped
 * (it would hold up the cluster's shutdown). Only async-signal-safe calls in the
 * child. Returns its pid, or -1. */
static pid_t resume_watchdog(pid_t pid)
{
    pid_t parent = getpid(), child = fork();

    if (child != 0)
        return child;
    for (int i = 0; i < 600 && getppid() == parent; i++) {
        struct timespec ts = {0, 100000000L};
        (void)nanosleep(&ts, NULL);
    }
    (void)kill(pid, SIGCONT);
    _exit(0);
}

/* Stops (SIGSTOP) the fixture's one idle server process, with a watchdog child
 * that resumes it should this process die first. Idle, waiting for a command, it
 * holds no server lock while stopped. 1 on success (the test resumes it with
 * SIGCONT and kills the watchdog), else 0 with the test failed. */
static int stop_idle_backend(PGconn *watch, const fixture *f, long long *pid, pid_t *watchdog)
{
    *pid = q_int(watch,
                 "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle'",
                 f->app);
    CHECK(*pid > 0);
    if (*pid <= 0)
        return 0;
    *watchdog = resume_watchdog((pid_t)*pid);
    CHECK(*watchdog > 0);
    if (*watchdog <= 0)
        return 0;
    CHECK(kill((pid_t)*pid, SIGSTOP) == 0);
    return 1;
}

/* A pool of one: while its connection is busy (its server process stopped with
 * SIGSTOP, so the call cannot finish on any timer of its own) a second caller waits
 * for the pool, then gets UNAVAILABLE; no second connection is ever opened. */
static void an_exhausted_pool_answers_unavailable_after_its_wait(void)
{
    fixture f;
    tsr_store *s = NULL;
    PGconn *watch = NULL;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    bg_call b[2];
    pthread_t th[2];
    tsr_err order[2] = {TSR_ERR_INTERNAL, TSR_ERR_INTERNAL};
    int finished = 0, started = 0, stopped = 0;
    long long pid = -1;
    pid_t watchdog = -1;

    memset(b, 0, sizeof b);
    if (!fx_schema(&f, "tsr_pg_pool"))
        goto out;
    CHECK(tsr_store_open_pool(f.url, 1, &s) == TSR_OK);
    if (s == NULL)
        goto out;
    CHECK(tsr_store_ping(s) == TSR_OK);
    watch = raw_connect(pg_base());
    CHECK(backends(watch, &f) == 1);
    if (!stop_idle_backend(watch, &f, &pid, &watchdog))
        goto out;
    stopped = 1;
    for (int i = 0; i < 2; i++) {
        b[i].s = s;
        b[i].op = BG_PING;
        b[i].mu = &mu;
        b[i].cv = &cv;
        b[i].finished = &finished;
        b[i].order = order;
    }
    for (; started < 2; started++)
        if (pthread_create(&th[started], NULL, bg_run, &b[started]) != 0)
            break;
    CHECK(started == 2);
    /* Whichever call got the connection is stuck on the stopped process; the other
     * returns after the pool's wait. */
    pthread_mutex_lock(&mu);
    for (int ms = 0; finished < 1 && ms < 4 * POLL_BOUND_MS; ms += 100) {
        pthread_mutex_unlock(&mu);
        nap_ms(100);
        pthread_mutex_lock(&mu);
    }
    CHECK(finished == 1);
    CHECKF(order[0] == TSR_ERR_UNAVAILABLE, "first to return: %s", tsr_err_text(order[0]));
    pthread_mutex_unlock(&mu);
    CHECK(backends(watch, &f) == 1);
    CHECK(kill((pid_t)pid, SIGCONT) == 0);
    stopped = 0;
    for (int i = 0; i < started; i++)
        (void)pthread_join(th[i], NULL);
    CHECK(finished == 2);
    CHECKF(order[1] == TSR_OK, "the stuck call: %s", tsr_err_text(order[1]));
    /* The pool works on. */
    CHECK(tsr_store_ping(s) == TSR_OK);
out:
    if (stopped)
        (void)kill((pid_t)pid, SIGCONT);
    if (watchdog > 0) {
        (void)kill(watchdog, SIGKILL);
        (void)waitpid(watchdog, NULL, 0);
    }
    PQfinish(watch);
    tsr_store_close(s);
    fx_close(&f);
}

/* 'T' when the process is stopped, per /proc/PID/stat. */
static int is_stopped(long long pid)
{
    char path[64], buf[256];
    FILE *fp;
    char *rp;
    int stopped = 0;

    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    if (fgets(buf, sizeof buf, fp) != NULL && (rp = strrchr(buf, ')')) != NULL && rp[1] == ' ')
        stopped = rp[2] == 'T' || rp[2] == 't';
    fclose(fp);
    return stopped;
}

/* statement_timeout is the server's: a server process that stops answering on a
 * host that still acknowledges packets would block a call for ever. The client's
 * own deadline drops the connection, and a read runs again on a fresh one: the
 * call returns while the old process is still stopped. */
static void a_stopped_server_process_does_not_hang_a_call(void)
{
    fixture f;
    tsr_store *s = NULL;
    PGconn *watch = NULL;
    long long pid = -1;
    pid_t watchdog = -1;
    int stopped = 0;

    if (!fx_schema(&f, "tsr_pg_hang"))
        goto out;
    CHECK(tsr_store_open_pool(f.url, 1, &s) == TSR_OK);
    if (s == NULL)
        goto out;
    CHECK(tsr_store_ping(s) == TSR_OK);
    watch = raw_connect(pg_base());
    if (!stop_idle_backend(watch, &f, &pid, &watchdog))
        goto out;
    stopped = 1;
    CHECK(tsr_store_ping(s) == TSR_OK);
    CHECK(is_stopped(pid)); /* it returned on its own, not because the process resumed */
    CHECK(kill((pid_t)pid, SIGCONT) == 0);
    stopped = 0;
    CHECK(tsr_store_ping(s) == TSR_OK);
out:
    if (stopped)
        (void)kill((pid_t)pid, SIGCONT);
    if (watchdog > 0) {
        (void)kill(watchdog, SIGKILL);
        (void)waitpid(watchdog, NULL, 0);
    }
    PQfinish(watch);
    tsr_store_close(s);
    fx_close(&f);
}

typedef struct pinger {
    tsr_store *s;
    pthread_barrier_t *start;
    int errors;
} pinger;

static void *ping_many(void *arg)
{
    pinger *p = arg;
    (void)pthread_barrier_wait(p->start);
    for (int i = 0; i < 20; i++)
        if (tsr_store_ping(p->s) != TSR_OK)
            p->errors++;
    return NULL;
}

/* Ends every server process of the store (what a server restart does to them:
 * a FATAL 57P01, then end of file) and waits until they are gone. */
static int terminate_all(PGconn *watch, const fixture *f)
{
    CHECK(q_int(watch,
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1) t",
                f->app) >= 1);
    for (int ms = 0; ms < POLL_BOUND_MS; ms += 10) {
        if (backends(watch, f) == 0)
            return 1;
        nap_ms(10);
    }
    CHECK(!"the server processes did not end");
    return 0;
}

/* After the server ended every pooled connection, the very next call works: a
 * write first (never run twice: it must find the dead connections before using
 * them), then a read. */
static void the_next_call_after_the_server_ended_the_connections_works(void)
{
    enum { T = 4 };
    fixture f;
    tsr_user u = mk_user("bob"), v = mk_user("carol"), got;
    tsr_session ss;
    PGconn *watch = NULL;
    pinger p[T];
    pthread_t th[T];
    pthread_barrier_t start;
    int started = 0;

    memset(p, 0, sizeof p);
    if (!fx_open(&f, "tsr_pg_term"))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    /* Several pooled connections (as many as the calls overlapped). */
    CHECK(pthread_barrier_init(&start, NULL, T) == 0);
    for (int i = 0; i < T; i++) {
        p[i].s = f.s;
        p[i].start = &start;
    }
    for (; started < T; started++)
        if (pthread_create(&th[started], NULL, ping_many, &p[started]) != 0)
            break;
    CHECK(started == T);
    if (started != T)
        abort();
    for (int i = 0; i < T; i++) {
        (void)pthread_join(th[i], NULL);
        CHECK(p[i].errors == 0);
    }
    (void)pthread_barrier_destroy(&start);
    watch = raw_connect(pg_base());
    CHECK(backends(watch, &f) >= 1);

    if (!terminate_all(watch, &f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &v) == TSR_OK);
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK && strcmp(got.username, "bob") == 0);
    ss = mk_live_session(u.id);
    CHECK(tsr_store_session_create(f.s, &ss, 10, ss.created_at) == TSR_OK);

    /* Again, a read first this time. */
    if (!terminate_all(watch, &f))
        goto out;
    CHECK(tsr_store_user_get_by_name(f.s, "CAROL", &got) == TSR_OK && strcmp(got.id, v.id) == 0);
    CHECK(tsr_store_ping(f.s) == TSR_OK);
    CHECK(tsr_store_session_delete(f.s, ss.id) == TSR_OK);
out:
    PQfinish(watch);
    fx_close(&f);
}

/* A login racing an admin's disable (another instance's UPDATE, not yet committed)
 * waits for the user's row, then sees the disable: no session is left behind to
 * come back alive on enable. Without the row lock it would read the old row and
 * commit a session for a user disabled a moment later. */
static void a_login_racing_a_disable_waits_and_is_refused(void)
{
    fixture f;
    tsr_user u = mk_user("dora");
    tsr_session ss, got;
    PGconn *admin = NULL, *watch = NULL;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    bg_call b;
    pthread_t th;

    memset(&b, 0, sizeof b);
    if (!fx_open(&f, "tsr_pg_disable"))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    ss = mk_live_session(u.id);
    admin = raw_connect(f.url);
    watch = raw_connect(pg_base());
    CHECK(admin != NULL && watch != NULL);
    if (admin == NULL || watch == NULL)
        goto out;
    CHECK(q_ok(admin, "BEGIN", NULL, NULL));
    CHECK(q_ok(admin, "UPDATE users SET disabled = 1 WHERE id = $1", u.id, NULL));
    b.s = f.s;
    b.op = BG_SESSION_CREATE;
    b.session = &ss;
    b.mu = &mu;
    b.cv = &cv;
    if (pthread_create(&th, NULL, bg_run, &b) != 0) {
        CHECK(!"pthread_create");
        goto out;
    }
    CHECK(wait_blocked(watch, &f, &b, &mu));
    CHECK(q_ok(admin, "COMMIT", NULL, NULL));
    (void)pthread_join(th, NULL);
    CHECKF(b.rc == TSR_ERR_NOT_FOUND, "login: %s", tsr_err_text(b.rc));
    CHECK(tsr_store_session_get(f.s, ss.id, &got) == TSR_ERR_NOT_FOUND);
    /* Enabled again, the same login works. */
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, 0, u.created_at) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &ss, 10, ss.created_at) == TSR_OK);
out:
    if (admin != NULL && PQtransactionStatus(admin) != PQTRANS_IDLE)
        (void)q_ok(admin, "ROLLBACK", NULL, NULL);
    PQfinish(admin);
    PQfinish(watch);
    fx_close(&f);
}

typedef struct key_racer {
    tsr_store *s;
    pthread_barrier_t *start;
    tsr_key_record active, next;
    tsr_err rc;
} key_racer;

static void *key_race(void *arg)
{
    key_racer *k = arg;
    (void)pthread_barrier_wait(k->start);
    k->rc = tsr_store_key_rotate(k->s, "", &k->active, &k->next, 1700000000, 0);
    return NULL;
}

/* Four instances initialising the keys of an empty store at once, each on its own
 * store (pool): exactly one wins, the others are told CONFLICT (not EXISTS from the
 * one-active index): they reload and use the winner's keys. */
static void concurrent_key_initialisation_has_one_winner(void)
{
    enum { K = 4 };
    fixture f;
    static key_racer k[K];
    tsr_store *st[K] = {NULL};
    tsr_key_record list[4];
    pthread_t th[K];
    pthread_barrier_t start;
    int started = 0, ok = 0, conflict = 0;
    size_t n = 0;

    if (!fx_open(&f, "tsr_pg_keys"))
        goto out;
    CHECK(pthread_barrier_init(&start, NULL, K) == 0);
    for (int i = 0; i < K; i++) {
        memset(&k[i], 0, sizeof k[i]);
        CHECK(tsr_store_open(f.url, &st[i]) == TSR_OK);
        k[i].s = st[i] != NULL ? st[i] : f.s;
        k[i].start = &start;
        (void)snprintf(k[i].active.kid, sizeof k[i].active.kid, "k-a%d", i);
        (void)snprintf(k[i].next.kid, sizeof k[i].next.kid, "k-n%d", i);
        (void)snprintf(k[i].active.alg, sizeof k[i].active.alg, "%s", "ES256");
        (void)snprintf(k[i].next.alg, sizeof k[i].next.alg, "%s", "ES256");
        (void)snprintf(k[i].active.jwk, sizeof k[i].active.jwk, "{\"d\":\"a%d\"}", i);
        (void)snprintf(k[i].next.jwk, sizeof k[i].next.jwk, "{\"d\":\"n%d\"}", i);
    }
    for (; started < K; started++)
        if (pthread_create(&th[started], NULL, key_race, &k[started]) != 0)
            break;
    CHECK(started == K);
    if (started != K)
        abort();
    for (int i = 0; i < K; i++)
        (void)pthread_join(th[i], NULL);
    (void)pthread_barrier_destroy(&start);
    for (int i = 0; i < K; i++) {
        if (k[i].rc == TSR_OK)
            ok++;
        else if (k[i].rc == TSR_ERR_CONFLICT)
            conflict++;
        else
            CHECKF(0, "racer %d: %s", i, tsr_err_text(k[i].rc));
    }
    CHECKF(ok == 1 && conflict == K - 1, "%d ok, %d conflict", ok, conflict);
    CHECK(tsr_store_key_list(f.s, list, 4, &n) == TSR_OK);
    CHECK(n == 2);
    tsr_wipe(list, sizeof list);
    tsr_wipe(k, sizeof k);
out:
    for (int i = 0; i < K; i++)
        tsr_store_close(st[i]);
    fx_close(&f);
}

/* A schema written by a newer tessera is refused, not guessed at; the same schema
 * at our version opens. */
static void a_newer_schema_version_is_unsupported(void)
{
    fixture f;
    tsr_store *s = (tsr_store *)&f;
    PGconn *c = NULL;

    if (!fx_open(&f, "tsr_pg_version"))
        goto out;
    tsr_store_close(f.s);
    f.s = NULL;
    c = raw_connect(f.url);
    CHECK(q_ok(c, "UPDATE schema_version SET version = 3", NULL, NULL));
    CHECK(tsr_store_open(f.url, &s) == TSR_ERR_UNSUPPORTED);
    CHECK(s == NULL);
    CHECK(q_ok(c, "UPDATE schema_version SET version = 2", NULL, NULL));
    CHECK(tsr_store_open(f.url, &f.s) == TSR_OK);
    CHECK(f.s != NULL && tsr_store_ping(f.s) == TSR_OK);
out:
    PQfinish(c);
    fx_close(&f);
}

/* URLs libpq cannot parse (or with a port that is no number) are INVALID before
 * any connection is tried; the test URL itself opens. */
static void a_bad_url_is_invalid(void)
{
    static const char *const bad[] = {
        "postgresql://[::1/tessera",
        "postgresql://127.0.0.1:54x2/tessera",
        "postgresql://127.0.0.1/tessera?no_such_option=1",
        "postgres://127.0.0.1/tessera?sslmode",
        "postgresql://127.0.0.1/%zz",
    };
    fixture f;
    tsr_store *s;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = (tsr_store *)&s;
        CHECKF(tsr_store_open(bad[i], &s) == TSR_ERR_INVALID, "url %zu", i);
        CHECK(s == NULL);
    }
    if (!fx_open(&f, "tsr_pg_url"))
        goto out;
    CHECK(tsr_store_ping(f.s) == TSR_OK);
out:
    fx_close(&f);
}

/* A port nothing listens on: UNAVAILABLE (the store is down, callers deny). */
static void an_unreachable_server_is_unavailable(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    tsr_store *s = (tsr_store *)&a;
    char url[128];
    int fd, port = 0;

    /* A port that was free a moment ago and is not listened on. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    CHECK(port > 0);
    (void)snprintf(url, sizeof url, "postgresql://tessera@127.0.0.1:%d/tessera", port);
    CHECK(tsr_store_open(url, &s) == TSR_ERR_UNAVAILABLE);
    CHECK(s == NULL);
    s = (tsr_store *)&a;
    CHECK(tsr_store_open_pool(url, 3, &s) == TSR_ERR_UNAVAILABLE);
    CHECK(s == NULL);
}

int main(void)
{
    /* Without the server this suite must fail, not pass having tested nothing. */
    TSR_RUN(requires_tsr_test_pg_url);
    if (pg_base() == NULL) {
        (void)tsr_test_summary();
        return 1;
    }
    TSR_RUN(revocations_become_visible_in_seq_order);
    TSR_RUN(stores_opened_at_once_migrate_once);
    TSR_RUN(an_exhausted_pool_answers_unavailable_after_its_wait);
    TSR_RUN(a_stopped_server_process_does_not_hang_a_call);
    TSR_RUN(the_next_call_after_the_server_ended_the_connections_works);
    TSR_RUN(a_login_racing_a_disable_waits_and_is_refused);
    TSR_RUN(concurrent_key_initialisation_has_one_winner);
    TSR_RUN(a_newer_schema_version_is_unsupported);
    TSR_RUN(a_bad_url_is_invalid);
    TSR_RUN(an_unreachable_server_is_unavailable);
    return tsr_test_summary();
}
