/* test_store.c: the store conformance suite.
 *
 * Written against the tsr_store_* API only, so that it can run unchanged against
 * every backend: each test opens a fresh store through fx_open (a SQLite file in its
 * own mkdtemp folder, removed afterwards; or, with TSR_TEST_PG_URL set, a fresh
 * PostgreSQL schema, dropped afterwards). The few SQLite-specific checks
 * (URL forms, file modes) are at the end and say so. No test depends on timing:
 * "now" is always passed explicitly. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "crypto/crypto.h"
#include "harness.h"
#include "store/store.h"

#define NOW ((int64_t)1700000000)
#define HOUR ((int64_t)3600)
#define DB_NAME "tessera.db"

/* ---- fixture --------------------------------------------------------------------- */

#define TSR_FIXTURE_DIR_PREFIX "/tmp/tsr-store-"
#include "store_fixture.h"

static tsr_user mk_user(const char *name)
{
    tsr_user u;
    memset(&u, 0, sizeof u);
    rand_id("usr_", u.id, sizeof u.id);
    (void)snprintf(u.username, sizeof u.username, "%s", name);
    (void)snprintf(u.pwhash, sizeof u.pwhash, "%s", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
    (void)snprintf(u.roles, sizeof u.roles, "%s", "user");
    u.created_at = NOW;
    u.updated_at = NOW;
    return u;
}

/* A cookie session of user_id created at `created`, alive for an hour from there. */
static tsr_session mk_session(const char *user_id, int64_t created)
{
    tsr_session s;
    memset(&s, 0, sizeof s);
    rand_id("ses_", s.id, sizeof s.id);
    if (tsr_rand(s.secret_hash, sizeof s.secret_hash) != TSR_OK)
        memset(s.secret_hash, 0x77, sizeof s.secret_hash);
    (void)snprintf(s.user_id, sizeof s.user_id, "%s", user_id);
    s.kind = TSR_SESSION_COOKIE;
    s.created_at = created;
    s.last_seen_at = created;
    s.expires_at = created + 24 * HOUR;
    s.idle_expires_at = created + HOUR;
    (void)snprintf(s.ip, sizeof s.ip, "%s", "192.0.2.7");
    (void)snprintf(s.user_agent, sizeof s.user_agent, "%s", "Mozilla/5.0 (test)");
    return s;
}

static int user_eq(const tsr_user *a, const tsr_user *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->username, b->username) == 0 &&
           strcmp(a->pwhash, b->pwhash) == 0 && strcmp(a->roles, b->roles) == 0 &&
           (a->disabled != 0) == (b->disabled != 0) && a->created_at == b->created_at &&
           a->updated_at == b->updated_at;
}

static int session_eq(const tsr_session *a, const tsr_session *b)
{
    return strcmp(a->id, b->id) == 0 &&
           memcmp(a->secret_hash, b->secret_hash, TSR_HASH_BYTES) == 0 &&
           strcmp(a->user_id, b->user_id) == 0 && a->kind == b->kind &&
           a->created_at == b->created_at && a->last_seen_at == b->last_seen_at &&
           a->expires_at == b->expires_at && a->idle_expires_at == b->idle_expires_at &&
           strcmp(a->ip, b->ip) == 0 && strcmp(a->user_agent, b->user_agent) == 0;
}

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static int session_exists(tsr_store *s, const char *id)
{
    tsr_session got;
    return tsr_store_session_get(s, id, &got) == TSR_OK;
}

/* ---- users ----------------------------------------------------------------------- */

static void user_create_then_get_returns_every_field(void)
{
    fixture f;
    tsr_user u = mk_user("Alice"), got;

    if (!fx_open(&f))
        goto out;
    u.disabled = 1;
    u.created_at = NOW - 10;
    u.updated_at = NOW - 5;
    (void)snprintf(u.roles, sizeof u.roles, "%s", "admin,user");
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(user_eq(&u, &got));
out:
    fx_close(&f);
}

static void user_get_by_name_is_case_insensitive_and_keeps_spelling(void)
{
    fixture f;
    tsr_user u = mk_user("Alice.Smith@Example"), got;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_get_by_name(f.s, "alice.smith@example", &got) == TSR_OK);
    CHECK(strcmp(got.id, u.id) == 0);
    CHECK(strcmp(got.username, "Alice.Smith@Example") == 0);
    CHECK(tsr_store_user_get_by_name(f.s, "ALICE.SMITH@EXAMPLE", &got) == TSR_OK);
    CHECK(strcmp(got.id, u.id) == 0);
    CHECK(tsr_store_user_get_by_name(f.s, "alice.smith@exampl", &got) == TSR_ERR_NOT_FOUND);
    CHECK(all_zero(&got, sizeof got));
out:
    fx_close(&f);
}

static void user_duplicate_username_in_other_case_is_exists(void)
{
    fixture f;
    tsr_user a = mk_user("bob"), b = mk_user("BoB"), c, got;
    size_t n = 0;
    tsr_user list[4];

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &a) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &b) == TSR_ERR_EXISTS);
    /* The same id under another name is taken too. */
    c = mk_user("carol");
    memcpy(c.id, a.id, sizeof c.id);
    CHECK(tsr_store_user_create(f.s, &c) == TSR_ERR_EXISTS);
    /* Neither failed insert left anything behind. */
    CHECK(tsr_store_user_get(f.s, b.id, &got) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_user_get_by_name(f.s, "carol", &got) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_user_list(f.s, NULL, 4, list, &n) == TSR_OK);
    CHECK(n == 1);
out:
    fx_close(&f);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void user_list_pages_return_every_user_once_in_id_order(void)
{
    enum { N = 23, PAGE = 5 };
    fixture f;
    tsr_user users[N], page[PAGE];
    const char *want[N];
    char seen[N][TSR_ID_MAX + 1];
    char after[TSR_ID_MAX + 1] = "";
    size_t total = 0, n = 0, pages = 0;

    if (!fx_open(&f))
        goto out;
    for (int i = 0; i < N; i++) {
        char name[32];
        (void)snprintf(name, sizeof name, "user%02d", i);
        users[i] = mk_user(name);
        want[i] = users[i].id;
        CHECK(tsr_store_user_create(f.s, &users[i]) == TSR_OK);
    }
    qsort(want, N, sizeof want[0], cmp_str);
    for (;;) {
        CHECK(tsr_store_user_list(f.s, after[0] ? after : NULL, PAGE, page, &n) == TSR_OK);
        CHECK(n <= PAGE);
        pages++;
        if (n == 0 || pages > N)
            break;
        for (size_t i = 0; i < n && total < N; i++) {
            memcpy(seen[total++], page[i].id, sizeof seen[0]);
            CHECK(strcmp(page[i].pwhash, users[0].pwhash) == 0);
        }
        memcpy(after, page[n - 1].id, sizeof after);
        if (n < PAGE)
            break;
    }
    CHECK(total == N);
    CHECK(pages == (N + PAGE - 1) / PAGE);
    for (size_t i = 0; i < total && i < N; i++)
        CHECKF(strcmp(seen[i], want[i]) == 0, "position %zu", i);
    /* Past the last id: an empty page, not an error. */
    CHECK(tsr_store_user_list(f.s, want[N - 1], PAGE, page, &n) == TSR_OK);
    CHECK(n == 0);
    /* limit 0 answers nothing. */
    CHECK(tsr_store_user_list(f.s, NULL, 0, NULL, &n) == TSR_OK);
    CHECK(n == 0);
out:
    fx_close(&f);
}

#define H1 "$argon2id$v=19$m=65536,t=3,p=1$bmV3$bmV3"
#define H2 "$argon2id$v=19$m=65536,t=3,p=1$dHdv$dHdv"

static void user_set_pwhash_is_a_compare_and_swap(void)
{
    fixture f;
    tsr_user u = mk_user("dave"), other = mk_user("erin"), got, want;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &other) == TSR_OK);
    /* A wrong old hash changes nothing. */
    CHECK(tsr_store_user_set_pwhash(f.s, u.id, H2, H1, 0, NOW + 1) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(user_eq(&u, &got));
    /* The right one swaps the hash and updated_at, and nothing else. */
    CHECK(tsr_store_user_set_pwhash(f.s, u.id, u.pwhash, H1, 1, NOW + 1) == TSR_OK);
    want = u;
    (void)snprintf(want.pwhash, sizeof want.pwhash, "%s", H1);
    want.updated_at = NOW + 1;
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(user_eq(&want, &got));
    /* The hash read before is stale now: a second swap from it is refused. */
    CHECK(tsr_store_user_set_pwhash(f.s, u.id, u.pwhash, H2, 0, NOW + 2) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(user_eq(&want, &got));
    /* A disabled user: refused when require_enabled, allowed (admin reset) otherwise. */
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, 1, NOW + 3) == TSR_OK);
    CHECK(tsr_store_user_set_pwhash(f.s, u.id, H1, H2, 1, NOW + 4) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(strcmp(got.pwhash, H1) == 0 && got.disabled != 0 && got.updated_at == NOW + 3);
    CHECK(tsr_store_user_set_pwhash(f.s, u.id, H1, H2, 0, NOW + 5) == TSR_OK);
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(strcmp(got.pwhash, H2) == 0 && got.disabled != 0 && got.updated_at == NOW + 5);
    /* Unknown user, empty new hash; the other user was never touched. */
    CHECK(tsr_store_user_set_pwhash(f.s, "usr_ghost", H2, H1, 0, NOW) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_user_set_pwhash(f.s, u.id, H2, "", 0, NOW) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_get(f.s, other.id, &got) == TSR_OK);
    CHECK(user_eq(&other, &got));
out:
    fx_close(&f);
}

static void user_set_flags_writes_only_the_given_columns(void)
{
    fixture f;
    tsr_user u = mk_user("Frank"), other = mk_user("gina"), got, want;
    char long_roles[TSR_ROLES_MAX + 2];

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &other) == TSR_OK);
    want = u;
    /* Roles only. */
    CHECK(tsr_store_user_set_flags(f.s, u.id, "admin,ops", -1, NOW + 1) == TSR_OK);
    (void)snprintf(want.roles, sizeof want.roles, "%s", "admin,ops");
    want.updated_at = NOW + 1;
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(user_eq(&want, &got));
    /* A password change lands in between: the next flag write must keep it. */
    CHECK(tsr_store_user_set_pwhash(f.s, u.id, u.pwhash, H1, 0, NOW + 2) == TSR_OK);
    (void)snprintf(want.pwhash, sizeof want.pwhash, "%s", H1);
    /* Disabled only. */
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, 1, NOW + 3) == TSR_OK);
    want.disabled = 1;
    want.updated_at = NOW + 3;
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(user_eq(&want, &got));
    /* "" clears the roles; disabled stays. */
    CHECK(tsr_store_user_set_flags(f.s, u.id, "", -1, NOW + 4) == TSR_OK);
    want.roles[0] = '\0';
    want.updated_at = NOW + 4;
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(user_eq(&want, &got));
    /* Both at once, re-enabling. */
    CHECK(tsr_store_user_set_flags(f.s, u.id, "user", 0, NOW + 5) == TSR_OK);
    (void)snprintf(want.roles, sizeof want.roles, "%s", "user");
    want.disabled = 0;
    want.updated_at = NOW + 5;
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(user_eq(&want, &got));
    /* Refused: unknown user, another disabled value, over-long roles; none wrote. */
    CHECK(tsr_store_user_set_flags(f.s, "usr_ghost", NULL, 1, NOW) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, 2, NOW + 6) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, -2, NOW + 6) == TSR_ERR_INVALID);
    memset(long_roles, 'r', sizeof long_roles - 1);
    long_roles[sizeof long_roles - 1] = '\0';
    CHECK(tsr_store_user_set_flags(f.s, u.id, long_roles, -1, NOW + 6) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(user_eq(&want, &got));
    CHECK(tsr_store_user_get(f.s, other.id, &got) == TSR_OK);
    CHECK(user_eq(&other, &got));
out:
    fx_close(&f);
}

static void user_delete_cascades_to_their_sessions_only(void)
{
    fixture f;
    tsr_user a = mk_user("frank"), b = mk_user("grace"), got;
    tsr_session sa1 = mk_session(a.id, NOW), sa2 = mk_session(a.id, NOW + 1);
    tsr_session sb = mk_session(b.id, NOW), gs;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &a) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &b) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &sa1, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &sa2, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &sb, 0, NOW) == TSR_OK);
    CHECK(tsr_store_user_delete(f.s, a.id) == TSR_OK);
    CHECK(tsr_store_user_get(f.s, a.id, &got) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_get(f.s, sa1.id, &gs) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_get_by_hash(f.s, sa2.secret_hash, &gs) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_get(f.s, sb.id, &gs) == TSR_OK);
    CHECK(tsr_store_user_delete(f.s, a.id) == TSR_ERR_NOT_FOUND);
    /* The name is free again. */
    a = mk_user("FRANK");
    CHECK(tsr_store_user_create(f.s, &a) == TSR_OK);
out:
    fx_close(&f);
}

/* ---- sessions -------------------------------------------------------------------- */

static void session_create_then_get_by_id_and_by_hash(void)
{
    fixture f;
    tsr_user u = mk_user("heidi");
    tsr_session s = mk_session(u.id, NOW), r = mk_session(u.id, NOW + 1), got;
    uint8_t other[TSR_HASH_BYTES];

    if (!fx_open(&f))
        goto out;
    r.kind = TSR_SESSION_REFRESH;
    r.ip[0] = '\0';
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &s, 100, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &r, 100, NOW) == TSR_OK);
    CHECK(tsr_store_session_get(f.s, s.id, &got) == TSR_OK);
    CHECK(session_eq(&s, &got));
    CHECK(tsr_store_session_get_by_hash(f.s, s.secret_hash, &got) == TSR_OK);
    CHECK(session_eq(&s, &got));
    CHECK(tsr_store_session_get_by_hash(f.s, r.secret_hash, &got) == TSR_OK);
    CHECK(session_eq(&r, &got));
    CHECK(got.kind == TSR_SESSION_REFRESH);
    /* One flipped bit of the hash finds nothing. */
    memcpy(other, s.secret_hash, sizeof other);
    other[TSR_HASH_BYTES - 1] ^= 1;
    CHECK(tsr_store_session_get_by_hash(f.s, other, &got) == TSR_ERR_NOT_FOUND);
    CHECK(all_zero(&got, sizeof got));
out:
    fx_close(&f);
}

static void session_resolve_returns_session_and_its_user(void)
{
    fixture f;
    tsr_user u = mk_user("ivan"), v = mk_user("judy"), gu;
    tsr_session s = mk_session(u.id, NOW), t = mk_session(v.id, NOW), gs;
    uint8_t other[TSR_HASH_BYTES];

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &v) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &s, 100, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &t, 100, NOW) == TSR_OK);
    CHECK(tsr_store_session_resolve(f.s, s.secret_hash, &gs, &gu) == TSR_OK);
    CHECK(session_eq(&s, &gs));
    /* Every user field but the password hash, which the cookie path never reads. */
    CHECK(gu.pwhash[0] == '\0' && u.pwhash[0] != '\0');
    memcpy(gu.pwhash, u.pwhash, sizeof gu.pwhash);
    CHECK(user_eq(&u, &gu));
    CHECK(tsr_store_session_resolve(f.s, t.secret_hash, &gs, &gu) == TSR_OK);
    CHECK(session_eq(&t, &gs));
    CHECK(gu.pwhash[0] == '\0');
    memcpy(gu.pwhash, v.pwhash, sizeof gu.pwhash);
    CHECK(user_eq(&v, &gu));
    /* Twin: one flipped bit of the hash finds nothing and leaves zeroes. */
    memcpy(other, s.secret_hash, sizeof other);
    other[0] ^= 0x80;
    CHECK(tsr_store_session_resolve(f.s, other, &gs, &gu) == TSR_ERR_NOT_FOUND);
    CHECK(all_zero(&gs, sizeof gs));
    CHECK(all_zero(&gu, sizeof gu));
    /* Gone with its user. */
    CHECK(tsr_store_user_delete(f.s, u.id) == TSR_OK);
    CHECK(tsr_store_session_resolve(f.s, s.secret_hash, &gs, &gu) == TSR_ERR_NOT_FOUND);
out:
    fx_close(&f);
}

static void session_create_refuses_duplicate_id_hash_and_unknown_user(void)
{
    fixture f;
    tsr_user u = mk_user("ivan");
    tsr_session s = mk_session(u.id, NOW), dup_id = mk_session(u.id, NOW);
    tsr_session dup_hash = mk_session(u.id, NOW), orphan = mk_session("usr_nobody", NOW);
    tsr_session bad_kind = mk_session(u.id, NOW), got;
    size_t n = 0;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &s, 0, NOW) == TSR_OK);
    memcpy(dup_id.id, s.id, sizeof dup_id.id);
    CHECK(tsr_store_session_create(f.s, &dup_id, 0, NOW) == TSR_ERR_EXISTS);
    memcpy(dup_hash.secret_hash, s.secret_hash, TSR_HASH_BYTES);
    CHECK(tsr_store_session_create(f.s, &dup_hash, 0, NOW) == TSR_ERR_EXISTS);
    CHECK(tsr_store_session_get(f.s, dup_hash.id, &got) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_create(f.s, &orphan, 0, NOW) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_get(f.s, orphan.id, &got) == TSR_ERR_NOT_FOUND);
    bad_kind.kind = TSR_SESSION_INVALID;
    CHECK(tsr_store_session_create(f.s, &bad_kind, 0, NOW) == TSR_ERR_INVALID);
    /* The original is untouched by the failed attempts. */
    CHECK(tsr_store_session_get(f.s, s.id, &got) == TSR_OK);
    CHECK(session_eq(&s, &got));
    CHECK(tsr_store_session_count(f.s, NOW, &n) == TSR_OK);
    CHECK(n == 1);
out:
    fx_close(&f);
}

static void session_touch_moves_last_seen_and_idle_expiry_only(void)
{
    fixture f;
    tsr_user u = mk_user("judy");
    tsr_session s = mk_session(u.id, NOW), other = mk_session(u.id, NOW), got;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &s, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &other, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_touch(f.s, s.id, NOW + 600, NOW + 600 + HOUR) == TSR_OK);
    CHECK(tsr_store_session_get(f.s, s.id, &got) == TSR_OK);
    CHECK(got.last_seen_at == NOW + 600);
    CHECK(got.idle_expires_at == NOW + 600 + HOUR);
    CHECK(got.created_at == s.created_at);
    CHECK(got.expires_at == s.expires_at);
    CHECK(memcmp(got.secret_hash, s.secret_hash, TSR_HASH_BYTES) == 0);
    CHECK(tsr_store_session_get(f.s, other.id, &got) == TSR_OK);
    CHECK(session_eq(&other, &got));
    CHECK(tsr_store_session_touch(f.s, "ses_unknown", NOW, NOW) == TSR_ERR_NOT_FOUND);
out:
    fx_close(&f);
}

static void session_list_is_newest_first_and_excludes_expired(void)
{
    fixture f;
    tsr_user u = mk_user("ken"), v = mk_user("lena");
    tsr_session s[5], dead_abs, dead_idle, foreign, out[8];
    size_t n = 0;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &v) == TSR_OK);
    /* Created out of order; two share a second (insertion order breaks the tie). */
    static const int64_t at[5] = {NOW - 50, NOW - 10, NOW - 30, NOW - 10, NOW - 40};
    for (int i = 0; i < 5; i++) {
        s[i] = mk_session(u.id, at[i]);
        CHECK(tsr_store_session_create(f.s, &s[i], 0, NOW - 60) == TSR_OK);
    }
    dead_abs = mk_session(u.id, NOW - 5);
    dead_abs.expires_at = NOW; /* expired exactly now */
    dead_idle = mk_session(u.id, NOW - 5);
    dead_idle.idle_expires_at = NOW - 1;
    foreign = mk_session(v.id, NOW - 1);
    CHECK(tsr_store_session_create(f.s, &dead_abs, 0, NOW - 60) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &dead_idle, 0, NOW - 60) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &foreign, 0, NOW - 60) == TSR_OK);

    CHECK(tsr_store_session_list(f.s, u.id, NOW, out, 8, &n) == TSR_OK);
    CHECK(n == 5);
    if (n == 5) {
        CHECK(strcmp(out[0].id, s[3].id) == 0); /* NOW-10, inserted later */
        CHECK(strcmp(out[1].id, s[1].id) == 0); /* NOW-10 */
        CHECK(strcmp(out[2].id, s[2].id) == 0); /* NOW-30 */
        CHECK(strcmp(out[3].id, s[4].id) == 0); /* NOW-40 */
        CHECK(strcmp(out[4].id, s[0].id) == 0); /* NOW-50 */
        CHECK(session_eq(&out[2], &s[2]));
    }
    /* max caps the answer and keeps the newest. */
    CHECK(tsr_store_session_list(f.s, u.id, NOW, out, 2, &n) == TSR_OK);
    CHECK(n == 2);
    CHECK(strcmp(out[0].id, s[3].id) == 0);
    CHECK(strcmp(out[1].id, s[1].id) == 0);
    /* Earlier, the two now-expired ones were alive. */
    CHECK(tsr_store_session_list(f.s, u.id, NOW - 2, out, 8, &n) == TSR_OK);
    CHECK(n == 7);
    CHECK(tsr_store_session_list(f.s, v.id, NOW, out, 8, &n) == TSR_OK);
    CHECK(n == 1);
    CHECK(tsr_store_session_list(f.s, "usr_nobody", NOW, out, 8, &n) == TSR_OK);
    CHECK(n == 0);
out:
    fx_close(&f);
}

static void session_delete_removes_that_session_only(void)
{
    fixture f;
    tsr_user u = mk_user("mallory");
    tsr_session a = mk_session(u.id, NOW), b = mk_session(u.id, NOW), got;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &a, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &b, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_delete(f.s, a.id) == TSR_OK);
    CHECK(tsr_store_session_get(f.s, a.id, &got) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_get_by_hash(f.s, a.secret_hash, &got) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_get(f.s, b.id, &got) == TSR_OK);
    CHECK(tsr_store_session_delete(f.s, a.id) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_user_get(f.s, u.id, &(tsr_user){0}) == TSR_OK);
out:
    fx_close(&f);
}

static void session_delete_user_spares_the_excepted_and_other_users(void)
{
    fixture f;
    tsr_user u = mk_user("niaj"), v = mk_user("olivia");
    tsr_session s[4], other = mk_session(v.id, NOW);
    size_t deleted = 99;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &v) == TSR_OK);
    for (int i = 0; i < 4; i++) {
        s[i] = mk_session(u.id, NOW + i);
        CHECK(tsr_store_session_create(f.s, &s[i], 0, NOW) == TSR_OK);
    }
    CHECK(tsr_store_session_create(f.s, &other, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_delete_user(f.s, u.id, s[2].id, &deleted) == TSR_OK);
    CHECK(deleted == 3);
    CHECK(!session_exists(f.s, s[0].id));
    CHECK(!session_exists(f.s, s[1].id));
    CHECK(session_exists(f.s, s[2].id));
    CHECK(!session_exists(f.s, s[3].id));
    CHECK(session_exists(f.s, other.id));
    /* NULL except: all of them. */
    CHECK(tsr_store_session_delete_user(f.s, u.id, NULL, &deleted) == TSR_OK);
    CHECK(deleted == 1);
    CHECK(!session_exists(f.s, s[2].id));
    CHECK(session_exists(f.s, other.id));
    CHECK(tsr_store_session_delete_user(f.s, u.id, NULL, &deleted) == TSR_OK);
    CHECK(deleted == 0);
    /* The user is still there: only sessions go. */
    CHECK(tsr_store_user_get(f.s, u.id, &(tsr_user){0}) == TSR_OK);
out:
    fx_close(&f);
}

static void session_create_and_rotate_refuse_a_disabled_user(void)
{
    fixture f;
    tsr_user u = mk_user("hank");
    tsr_session s = mk_session(u.id, NOW), old = mk_session(u.id, NOW);
    tsr_session fresh = mk_session(u.id, NOW + 5), got;
    size_t n = 9;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &old, 0, NOW) == TSR_OK);
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, 1, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &s, 0, NOW) == TSR_ERR_NOT_FOUND);
    CHECK(!session_exists(f.s, s.id));
    /* Rotation inserts too: refused, and the old session is not deleted either. */
    CHECK(tsr_store_session_rotate(f.s, old.id, &fresh) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_get(f.s, old.id, &got) == TSR_OK);
    CHECK(session_eq(&old, &got));
    CHECK(!session_exists(f.s, fresh.id));
    CHECK(tsr_store_session_count(f.s, NOW, &n) == TSR_OK && n == 1);
    /* Enabled again, both work. */
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &s, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_rotate(f.s, old.id, &fresh) == TSR_OK);
out:
    fx_close(&f);
}

static void password_change_is_one_transaction(void)
{
    fixture f;
    tsr_user u = mk_user("ike"), v = mk_user("jill"), got;
    tsr_session cur = mk_session(u.id, NOW), o1 = mk_session(u.id, NOW + 1);
    tsr_session o2 = mk_session(u.id, NOW + 2), vs = mk_session(v.id, NOW);
    tsr_session fresh = mk_session(u.id, NOW + 5), wrong_user = mk_session(v.id, NOW + 5);
    tsr_session list[8];
    size_t rev = 9, n = 0;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &v) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &cur, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &o1, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &o2, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &vs, 0, NOW) == TSR_OK);

    /* Each refusal leaves everything as it was. */
    /* a stale old hash */
    CHECK(tsr_store_password_change(f.s, u.id, H2, H1, cur.id, &fresh, NOW + 5, &rev) ==
          TSR_ERR_NOT_FOUND);
    CHECK(rev == 0);
    /* the current session revoked meanwhile */
    CHECK(tsr_store_password_change(f.s, u.id, u.pwhash, H1, "ses_revoked", &fresh, NOW + 5,
                                    &rev) == TSR_ERR_NOT_FOUND);
    /* another user's session as the current one */
    CHECK(tsr_store_password_change(f.s, u.id, u.pwhash, H1, vs.id, &fresh, NOW + 5, &rev) ==
          TSR_ERR_NOT_FOUND);
    /* a fresh session of another user */
    CHECK(tsr_store_password_change(f.s, u.id, u.pwhash, H1, cur.id, &wrong_user, NOW + 5,
                                    &rev) == TSR_ERR_INVALID);
    /* a fresh session whose insert fails (hash taken): the earlier steps are undone */
    memcpy(fresh.secret_hash, vs.secret_hash, TSR_HASH_BYTES);
    CHECK(tsr_store_password_change(f.s, u.id, u.pwhash, H1, cur.id, &fresh, NOW + 5, &rev) ==
          TSR_ERR_EXISTS);
    fresh = mk_session(u.id, NOW + 5);
    /* a disabled user */
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, 1, NOW) == TSR_OK);
    CHECK(tsr_store_password_change(f.s, u.id, u.pwhash, H1, cur.id, &fresh, NOW + 5, &rev) ==
          TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, 0, NOW) == TSR_OK);
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(strcmp(got.pwhash, u.pwhash) == 0 && got.updated_at == NOW);
    CHECK(session_exists(f.s, cur.id) && session_exists(f.s, o1.id) &&
          session_exists(f.s, o2.id) && session_exists(f.s, vs.id));
    CHECK(!session_exists(f.s, fresh.id));

    /* Then it goes through: new hash, only the fresh session left, others' intact. */
    CHECK(tsr_store_password_change(f.s, u.id, u.pwhash, H1, cur.id, &fresh, NOW + 5, &rev) ==
          TSR_OK);
    CHECK(rev == 2);
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(strcmp(got.pwhash, H1) == 0 && got.updated_at == NOW + 5);
    CHECK(strcmp(got.roles, u.roles) == 0 && got.disabled == 0);
    CHECK(tsr_store_session_list(f.s, u.id, NOW + 5, list, 8, &n) == TSR_OK && n == 1);
    CHECK(session_eq(&fresh, &list[0]));
    CHECK(session_exists(f.s, vs.id));
    /* Replayed from the same (now stale) state: refused. */
    wrong_user = mk_session(u.id, NOW + 6);
    CHECK(tsr_store_password_change(f.s, u.id, u.pwhash, H2, fresh.id, &wrong_user, NOW + 6,
                                    &rev) == TSR_ERR_NOT_FOUND);
    CHECK(session_exists(f.s, fresh.id) && !session_exists(f.s, wrong_user.id));
out:
    fx_close(&f);
}

static void session_rotate_replaces_old_by_fresh(void)
{
    fixture f;
    tsr_user u = mk_user("peggy");
    tsr_session old = mk_session(u.id, NOW), keep = mk_session(u.id, NOW);
    tsr_session fresh = mk_session(u.id, NOW + 5), got;
    size_t n = 0;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &old, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &keep, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_rotate(f.s, old.id, &fresh) == TSR_OK);
    CHECK(tsr_store_session_get(f.s, old.id, &got) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_get_by_hash(f.s, old.secret_hash, &got) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_get_by_hash(f.s, fresh.secret_hash, &got) == TSR_OK);
    CHECK(session_eq(&fresh, &got));
    CHECK(session_exists(f.s, keep.id));
    CHECK(tsr_store_session_count(f.s, NOW, &n) == TSR_OK);
    CHECK(n == 2);
    /* The old one cannot be rotated twice. */
    got = mk_session(u.id, NOW + 6);
    CHECK(tsr_store_session_rotate(f.s, old.id, &got) == TSR_ERR_NOT_FOUND);
    CHECK(!session_exists(f.s, got.id));
out:
    fx_close(&f);
}

static void session_rotate_is_atomic_when_the_fresh_session_conflicts(void)
{
    fixture f;
    tsr_user u = mk_user("quentin"), v = mk_user("rupert");
    tsr_session old = mk_session(u.id, NOW), other = mk_session(u.id, NOW);
    tsr_session fresh = mk_session(u.id, NOW + 5), theirs = mk_session(v.id, NOW), got;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &v) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &old, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &other, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &theirs, 0, NOW) == TSR_OK);
    /* The insert half fails (hash taken): the delete half must be undone. */
    memcpy(fresh.secret_hash, other.secret_hash, TSR_HASH_BYTES);
    CHECK(tsr_store_session_rotate(f.s, old.id, &fresh) == TSR_ERR_EXISTS);
    CHECK(tsr_store_session_get(f.s, old.id, &got) == TSR_OK);
    CHECK(session_eq(&old, &got));
    CHECK(!session_exists(f.s, fresh.id));
    /* Unknown old id: nothing inserted. */
    fresh = mk_session(u.id, NOW + 5);
    CHECK(tsr_store_session_rotate(f.s, "ses_unknown", &fresh) == TSR_ERR_NOT_FOUND);
    CHECK(!session_exists(f.s, fresh.id));
    /* Another user's session cannot be rotated into ours. */
    CHECK(tsr_store_session_rotate(f.s, theirs.id, &fresh) == TSR_ERR_NOT_FOUND);
    CHECK(session_exists(f.s, theirs.id));
    CHECK(!session_exists(f.s, fresh.id));
    /* And with a clean fresh session it goes through. */
    CHECK(tsr_store_session_rotate(f.s, old.id, &fresh) == TSR_OK);
    CHECK(session_exists(f.s, fresh.id));
    CHECK(!session_exists(f.s, old.id));
out:
    fx_close(&f);
}

static void session_cap_evicts_the_oldest_beyond_max_per_user(void)
{
    enum { CAP = 3, MADE = 6 };
    fixture f;
    tsr_user u = mk_user("sybil"), v = mk_user("trent");
    tsr_session s[MADE], vs = mk_session(v.id, NOW - 100), out[MADE];
    size_t n = 0;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &v) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &vs, CAP, NOW) == TSR_OK);
    /* Two share each second: eviction must still go strictly oldest first. */
    for (int i = 0; i < MADE; i++) {
        s[i] = mk_session(u.id, NOW + i / 2);
        CHECK(tsr_store_session_create(f.s, &s[i], CAP, NOW) == TSR_OK);
        CHECK(tsr_store_session_list(f.s, u.id, NOW, out, MADE, &n) == TSR_OK);
        CHECKF(n == (size_t)(i + 1 < CAP ? i + 1 : CAP), "after create %d: n=%zu", i, n);
    }
    for (int i = 0; i < MADE; i++)
        CHECKF(session_exists(f.s, s[i].id) == (i >= MADE - CAP), "session %d", i);
    /* Other users are not evicted. */
    CHECK(session_exists(f.s, vs.id));
    /* 0: no cap. */
    for (int i = 0; i < 3; i++) {
        tsr_session x = mk_session(u.id, NOW + 10 + i);
        CHECK(tsr_store_session_create(f.s, &x, 0, NOW) == TSR_OK);
    }
    CHECK(tsr_store_session_list(f.s, u.id, NOW, out, MADE, &n) == TSR_OK);
    CHECK(n == CAP + 3);
out:
    fx_close(&f);
}

static void session_create_drops_the_users_expired_sessions(void)
{
    fixture f;
    tsr_user u = mk_user("uma"), v = mk_user("victor");
    tsr_session alive = mk_session(u.id, NOW - 120), dead = mk_session(u.id, NOW - 60);
    tsr_session theirs_dead = mk_session(v.id, NOW - 2 * HOUR), fresh = mk_session(u.id, NOW);
    tsr_session dead2 = mk_session(u.id, NOW - 30), fresh2 = mk_session(u.id, NOW + 1);

    if (!fx_open(&f))
        goto out;
    /* Newer than `alive` but idle-expired: only expiry, not age, can remove it. */
    dead.idle_expires_at = NOW - 1;
    dead2.expires_at = NOW;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &v) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &alive, 0, NOW - 120) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &dead, 0, NOW - 120) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &theirs_dead, 0, NOW - 2 * HOUR) == TSR_OK);
    /* Expired sessions do not count against the cap: with cap 2 both live ones stay. */
    CHECK(tsr_store_session_create(f.s, &fresh, 2, NOW) == TSR_OK);
    CHECK(!session_exists(f.s, dead.id));
    CHECK(session_exists(f.s, alive.id));
    CHECK(session_exists(f.s, fresh.id));
    CHECK(session_exists(f.s, theirs_dead.id)); /* other users' are left for purge */
    /* Without a cap too. */
    CHECK(tsr_store_session_create(f.s, &dead2, 0, NOW - 30) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &fresh2, 0, NOW + 1) == TSR_OK);
    CHECK(!session_exists(f.s, dead2.id));
    CHECK(session_exists(f.s, alive.id));
out:
    fx_close(&f);
}

static void purge_removes_expired_sessions_only(void)
{
    enum { LIVE = 4, DEAD = 2500 }; /* more than one purge batch */
    fixture f;
    tsr_user u = mk_user("walter");
    tsr_session live[LIVE], abs_dead = mk_session(u.id, NOW - 30 * HOUR);
    tsr_session idle_dead = mk_session(u.id, NOW - 2 * HOUR), edge = mk_session(u.id, NOW);
    size_t purged = 0, n = 0;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    for (int i = 0; i < LIVE; i++) {
        live[i] = mk_session(u.id, NOW - i);
        CHECK(tsr_store_session_create(f.s, &live[i], 0, NOW - 31 * HOUR) == TSR_OK);
    }
    abs_dead.idle_expires_at = NOW + HOUR; /* idle fine, absolute past */
    abs_dead.expires_at = NOW - HOUR;
    edge.expires_at = NOW; /* expiry is exclusive: gone at NOW */
    CHECK(tsr_store_session_create(f.s, &abs_dead, 0, NOW - 31 * HOUR) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &idle_dead, 0, NOW - 31 * HOUR) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &edge, 0, NOW - 31 * HOUR) == TSR_OK);
    for (int i = 0; i < DEAD; i++) {
        tsr_session d = mk_session(u.id, NOW - 3 * HOUR);
        CHECK(tsr_store_session_create(f.s, &d, 0, NOW - 31 * HOUR) == TSR_OK);
    }
    CHECK(tsr_store_purge_expired(f.s, NOW, &purged) == TSR_OK);
    CHECK(purged == DEAD + 3);
    CHECK(!session_exists(f.s, abs_dead.id));
    CHECK(!session_exists(f.s, idle_dead.id));
    CHECK(!session_exists(f.s, edge.id));
    for (int i = 0; i < LIVE; i++)
        CHECK(session_exists(f.s, live[i].id));
    CHECK(tsr_store_session_count(f.s, 0, &n) == TSR_OK); /* everything still stored */
    CHECK(n == LIVE);
    CHECK(tsr_store_purge_expired(f.s, NOW, &purged) == TSR_OK);
    CHECK(purged == 0);
out:
    fx_close(&f);
}

static void session_count_counts_unexpired_only(void)
{
    fixture f;
    tsr_user u = mk_user("xavier"), v = mk_user("yvonne");
    size_t n = 99;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_session_count(f.s, NOW, &n) == TSR_OK);
    CHECK(n == 0);
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &v) == TSR_OK);
    for (int i = 0; i < 3; i++) {
        tsr_session a = mk_session(u.id, NOW), b = mk_session(v.id, NOW);
        CHECK(tsr_store_session_create(f.s, &a, 0, NOW) == TSR_OK);
        CHECK(tsr_store_session_create(f.s, &b, 0, NOW) == TSR_OK);
    }
    tsr_session dead = mk_session(v.id, NOW - 2 * HOUR);
    CHECK(tsr_store_session_create(f.s, &dead, 0, NOW - 2 * HOUR) == TSR_OK);
    CHECK(tsr_store_session_count(f.s, NOW, &n) == TSR_OK);
    CHECK(n == 6);
    CHECK(tsr_store_session_count(f.s, NOW - 2 * HOUR, &n) == TSR_OK);
    CHECK(n == 7); /* by expiry alone, the dead one was alive back then */
    CHECK(tsr_store_session_count(f.s, NOW + HOUR, &n) == TSR_OK);
    CHECK(n == 0); /* idle expiry passed for all */
out:
    fx_close(&f);
}

/* ---- meta ------------------------------------------------------------------------ */

static void meta_set_get_and_overwrite(void)
{
    fixture f;
    char out[TSR_META_MAX + 1], small[4], big[TSR_META_MAX + 2];

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_meta_get(f.s, "admin_key_hash", out, sizeof out) == TSR_ERR_NOT_FOUND);
    CHECK(out[0] == '\0');
    CHECK(tsr_store_meta_set(f.s, "admin_key_hash", "abc123") == TSR_OK);
    CHECK(tsr_store_meta_get(f.s, "admin_key_hash", out, sizeof out) == TSR_OK);
    CHECK(strcmp(out, "abc123") == 0);
    CHECK(tsr_store_meta_set(f.s, "admin_key_hash", "def") == TSR_OK);
    CHECK(tsr_store_meta_get(f.s, "admin_key_hash", out, sizeof out) == TSR_OK);
    CHECK(strcmp(out, "def") == 0);
    CHECK(tsr_store_meta_set(f.s, "empty", "") == TSR_OK);
    CHECK(tsr_store_meta_get(f.s, "empty", out, sizeof out) == TSR_OK);
    CHECK(out[0] == '\0');
    /* A value that does not fit the caller's buffer is refused, never cut. */
    CHECK(tsr_store_meta_get(f.s, "admin_key_hash", small, 3) == TSR_ERR_BUFFER);
    CHECK(small[0] == '\0');
    CHECK(tsr_store_meta_get(f.s, "admin_key_hash", small, 4) == TSR_OK);
    CHECK(strcmp(small, "def") == 0);
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(tsr_store_meta_set(f.s, "big", big) == TSR_ERR_TOO_LARGE);
    big[TSR_META_MAX] = '\0';
    CHECK(tsr_store_meta_set(f.s, "big", big) == TSR_OK);
    CHECK(tsr_store_meta_get(f.s, "big", out, sizeof out) == TSR_OK);
    CHECK(strlen(out) == TSR_META_MAX);
    /* Keys are distinct. */
    CHECK(tsr_store_meta_get(f.s, "admin_key_hash", out, sizeof out) == TSR_OK);
    CHECK(strcmp(out, "def") == 0);
out:
    fx_close(&f);
}

/* ---- lifecycle ------------------------------------------------------------------- */

static void reopen_after_close_keeps_every_record(void)
{
    fixture f;
    tsr_user u = mk_user("zoe"), got;
    tsr_session s = mk_session(u.id, NOW), gs;
    char val[64];

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &s, 0, NOW) == TSR_OK);
    CHECK(tsr_store_session_touch(f.s, s.id, NOW + 1, NOW + 2 * HOUR) == TSR_OK);
    CHECK(tsr_store_meta_set(f.s, "k", "v1") == TSR_OK);
    if (!fx_reopen(&f))
        goto out;
    CHECK(tsr_store_user_get(f.s, u.id, &got) == TSR_OK);
    CHECK(user_eq(&u, &got));
    CHECK(tsr_store_session_get_by_hash(f.s, s.secret_hash, &gs) == TSR_OK);
    CHECK(gs.last_seen_at == NOW + 1);
    CHECK(gs.idle_expires_at == NOW + 2 * HOUR);
    CHECK(tsr_store_meta_get(f.s, "k", val, sizeof val) == TSR_OK);
    CHECK(strcmp(val, "v1") == 0);
    /* Constraints survive too: the index behind case-insensitive names still works. */
    got = mk_user("ZOE");
    CHECK(tsr_store_user_create(f.s, &got) == TSR_ERR_EXISTS);
out:
    fx_close(&f);
}

static void reopen_many_times_applies_migrations_once(void)
{
    fixture f;
    tsr_user u = mk_user("amy");
    size_t n = 0;
    tsr_user list[8];

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    for (int i = 0; i < 4; i++) {
        if (!fx_reopen(&f))
            goto out;
        CHECK(tsr_store_ping(f.s) == TSR_OK);
        /* A migration run twice would fail here ("table exists") or wipe data. */
        tsr_user x;
        char name[32];
        (void)snprintf(name, sizeof name, "amy%d", i);
        x = mk_user(name);
        CHECK(tsr_store_user_create(f.s, &x) == TSR_OK);
    }
    CHECK(tsr_store_user_list(f.s, NULL, 8, list, &n) == TSR_OK);
    CHECK(n == 5);
    /* Two stores open on one file at once (two processes, or a CLI next to a server). */
    tsr_store *second = NULL;
    CHECK(tsr_store_open(f.url, &second) == TSR_OK);
    CHECK(tsr_store_user_get_by_name(second, "AMY3", &list[0]) == TSR_OK);
    tsr_store_close(second);
out:
    fx_close(&f);
}

static void unknown_ids_are_not_found_and_leave_outputs_zeroed(void)
{
    fixture f;
    tsr_user u;
    tsr_session s;
    uint8_t h[TSR_HASH_BYTES] = {1, 2, 3};
    char long_id[TSR_ID_MAX + 10];
    char meta[16];
    size_t n = 7;

    if (!fx_open(&f))
        goto out;
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    memset(&u, 0xAA, sizeof u);
    CHECK(tsr_store_user_get(f.s, "usr_none", &u) == TSR_ERR_NOT_FOUND);
    CHECK(all_zero(&u, sizeof u));
    memset(&u, 0xAA, sizeof u);
    CHECK(tsr_store_user_get(f.s, long_id, &u) == TSR_ERR_NOT_FOUND);
    CHECK(all_zero(&u, sizeof u));
    CHECK(tsr_store_user_get(f.s, "", &u) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_user_get_by_name(f.s, "nobody", &u) == TSR_ERR_NOT_FOUND);
    memset(&s, 0xAA, sizeof s);
    CHECK(tsr_store_session_get(f.s, "ses_none", &s) == TSR_ERR_NOT_FOUND);
    CHECK(all_zero(&s, sizeof s));
    memset(&s, 0xAA, sizeof s);
    CHECK(tsr_store_session_get_by_hash(f.s, h, &s) == TSR_ERR_NOT_FOUND);
    CHECK(all_zero(&s, sizeof s));
    CHECK(tsr_store_session_touch(f.s, "ses_none", NOW, NOW) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_delete(f.s, "ses_none") == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_session_delete(f.s, long_id) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_user_delete(f.s, "usr_none") == TSR_ERR_NOT_FOUND);
    memset(meta, 'z', sizeof meta);
    CHECK(tsr_store_meta_get(f.s, "none", meta, sizeof meta) == TSR_ERR_NOT_FOUND);
    CHECK(all_zero(meta, sizeof meta));
    CHECK(tsr_store_session_delete_user(f.s, "usr_none", NULL, &n) == TSR_OK);
    CHECK(n == 0);
out:
    fx_close(&f);
}

static void bad_arguments_are_invalid_not_a_crash(void)
{
    fixture f;
    tsr_user u = mk_user("brad"), got;
    tsr_session s, gs;
    size_t n = 5;
    tsr_store *none = (tsr_store *)&n;

    if (!fx_open(&f))
        goto out;
    (void)none;
    CHECK(tsr_store_user_create(NULL, &u) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_create(f.s, NULL) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_get(f.s, NULL, &got) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_get(f.s, "x", NULL) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_list(f.s, NULL, 3, NULL, &n) == TSR_ERR_INVALID);
    CHECK(n == 0);
    CHECK(tsr_store_session_list(f.s, NULL, NOW, &gs, 1, &n) == TSR_ERR_INVALID);
    CHECK(tsr_store_session_count(NULL, NOW, &n) == TSR_ERR_INVALID);
    CHECK(tsr_store_meta_get(f.s, "k", NULL, 10) == TSR_ERR_INVALID);
    CHECK(tsr_store_meta_set(f.s, "k", NULL) == TSR_ERR_INVALID);
    CHECK(tsr_store_meta_set(f.s, "", "v") == TSR_ERR_INVALID);
    CHECK(tsr_store_ping(NULL) == TSR_ERR_INVALID);
    tsr_store_close(NULL);
    /* Records that are not NUL-terminated within their fields, or lack an id. */
    memset(u.username, 'x', sizeof u.username);
    CHECK(tsr_store_user_create(f.s, &u) == TSR_ERR_INVALID);
    u = mk_user("brad");
    u.id[0] = '\0';
    CHECK(tsr_store_user_create(f.s, &u) == TSR_ERR_INVALID);
    u = mk_user("");
    CHECK(tsr_store_user_create(f.s, &u) == TSR_ERR_INVALID);
    u = mk_user("brad");
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    s = mk_session(u.id, NOW);
    memset(s.user_agent, 'M', sizeof s.user_agent);
    CHECK(tsr_store_session_create(f.s, &s, 0, NOW) == TSR_ERR_INVALID);
    s = mk_session(u.id, NOW);
    CHECK(tsr_store_session_rotate(f.s, NULL, &s) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_set_pwhash(f.s, NULL, "a", "b", 0, NOW) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_set_pwhash(f.s, u.id, NULL, "b", 0, NOW) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_set_pwhash(f.s, u.id, "a", NULL, 0, NOW) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_set_flags(NULL, u.id, NULL, 0, NOW) == TSR_ERR_INVALID);
    CHECK(tsr_store_user_set_flags(f.s, NULL, NULL, 0, NOW) == TSR_ERR_INVALID);
    n = 5;
    CHECK(tsr_store_password_change(f.s, u.id, "a", "b", NULL, &s, NOW, &n) == TSR_ERR_INVALID);
    CHECK(n == 0);
    CHECK(tsr_store_password_change(f.s, u.id, "a", "b", s.id, NULL, NOW, &n) ==
          TSR_ERR_INVALID);
    CHECK(tsr_store_password_change(f.s, u.id, "a", "b", s.id, &s, NOW, NULL) ==
          TSR_ERR_INVALID);
    CHECK(tsr_store_session_count(f.s, NOW, &n) == TSR_OK);
    CHECK(n == 0);
out:
    fx_close(&f);
}

/* ---- concurrency ----------------------------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 60 };

typedef struct worker {
    tsr_store *s;
    tsr_user user;
    pthread_barrier_t *start;
    int index;          /* 0..THREADS-1 */
    const char *old_id; /* rotate race: the one session all workers rotate */
    tsr_session fresh;  /* rotate race: this worker's successor */
    tsr_err result;
    int errors; /* counted here: CHECK is not thread-safe */
    char first_err[128];
} worker;

static void worker_fail(worker *w, const char *what, int i, tsr_err rc)
{
    if (w->errors++ == 0)
        (void)snprintf(w->first_err, sizeof w->first_err, "%s at %d: %s", what, i,
                       tsr_err_text(rc));
}

static void *worker_sessions(void *arg)
{
    worker *w = arg;
    tsr_session mine[PER_THREAD], got, list[PER_THREAD + 1];
    size_t n = 0;
    tsr_err rc;

    (void)pthread_barrier_wait(w->start);
    for (int i = 0; i < PER_THREAD; i++) {
        mine[i] = mk_session(w->user.id, NOW + i);
        rc = tsr_store_session_create(w->s, &mine[i], 1000, NOW);
        if (rc != TSR_OK) {
            worker_fail(w, "create", i, rc);
            continue;
        }
        rc = tsr_store_session_get_by_hash(w->s, mine[i].secret_hash, &got);
        if (rc != TSR_OK || !session_eq(&got, &mine[i]))
            worker_fail(w, "get_by_hash", i, rc);
        if (i % 10 == 9) {
            rc = tsr_store_session_touch(w->s, mine[i - 1].id, NOW + i, NOW + i + HOUR);
            if (rc != TSR_OK)
                worker_fail(w, "touch", i, rc);
            rc = tsr_store_user_get(w->s, w->user.id, &(tsr_user){0});
            if (rc != TSR_OK)
                worker_fail(w, "user_get", i, rc);
        }
    }
    rc = tsr_store_session_list(w->s, w->user.id, NOW, list, PER_THREAD + 1, &n);
    if (rc != TSR_OK || n != PER_THREAD)
        worker_fail(w, "list", (int)n, rc);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].user_id, w->user.id) != 0)
            worker_fail(w, "list foreign", (int)i, TSR_OK);
        /* Newest first: mine[PER_THREAD - 1 - i]. */
        if (strcmp(list[i].id, mine[PER_THREAD - 1 - i].id) != 0)
            worker_fail(w, "list order", (int)i, TSR_OK);
    }
    return NULL;
}

static void concurrent_threads_create_and_read_sessions_consistently(void)
{
    fixture f;
    worker w[THREADS];
    pthread_t th[THREADS];
    pthread_barrier_t start;
    int started = 0;
    size_t n = 0;

    memset(w, 0, sizeof w);
    if (!fx_open(&f))
        goto out;
    CHECK(pthread_barrier_init(&start, NULL, THREADS) == 0);
    for (int t = 0; t < THREADS; t++) {
        char name[32];
        (void)snprintf(name, sizeof name, "worker%d", t);
        w[t].s = f.s;
        w[t].user = mk_user(name);
        w[t].start = &start;
        CHECK(tsr_store_user_create(f.s, &w[t].user) == TSR_OK);
    }
    for (; started < THREADS; started++)
        if (pthread_create(&th[started], NULL, worker_sessions, &w[started]) != 0)
            break;
    CHECK(started == THREADS);
    for (int t = 0; t < started; t++)
        (void)pthread_join(th[t], NULL);
    (void)pthread_barrier_destroy(&start);
    for (int t = 0; t < THREADS; t++)
        CHECKF(w[t].errors == 0, "thread %d: %d errors, first: %s", t, w[t].errors, w[t].first_err);
    CHECK(tsr_store_session_count(f.s, NOW, &n) == TSR_OK);
    CHECK(n == THREADS * PER_THREAD);
out:
    fx_close(&f);
}

enum { SHARED_CAP = 10, SHARED_PER_THREAD = 25 };

static void *worker_shared_cap(void *arg)
{
    worker *w = arg;
    tsr_err rc;

    (void)pthread_barrier_wait(w->start);
    for (int i = 0; i < SHARED_PER_THREAD; i++) {
        /* worker t creates at NOW + 4i + t: every created_at is distinct. */
        tsr_session s = mk_session(w->user.id, NOW + 4 * i + (int64_t)w->index);
        rc = tsr_store_session_create(w->s, &s, SHARED_CAP, NOW);
        if (rc != TSR_OK)
            worker_fail(w, "create", i, rc);
    }
    return NULL;
}

static void concurrent_creates_on_one_user_keep_exactly_the_newest_cap(void)
{
    fixture f;
    worker w[THREADS];
    pthread_t th[THREADS];
    pthread_barrier_t start;
    tsr_user u = mk_user("shared");
    tsr_session list[SHARED_CAP + 5];
    int started = 0;
    size_t n = 0;

    memset(w, 0, sizeof w);
    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(pthread_barrier_init(&start, NULL, THREADS) == 0);
    for (int t = 0; t < THREADS; t++) {
        w[t].s = f.s;
        w[t].user = u;
        w[t].index = t;
        w[t].start = &start;
    }
    for (; started < THREADS; started++)
        if (pthread_create(&th[started], NULL, worker_shared_cap, &w[started]) != 0)
            break;
    CHECK(started == THREADS);
    for (int t = 0; t < started; t++)
        (void)pthread_join(th[t], NULL);
    (void)pthread_barrier_destroy(&start);
    for (int t = 0; t < THREADS; t++)
        CHECKF(w[t].errors == 0, "thread %d: %d errors, first: %s", t, w[t].errors, w[t].first_err);
    /* Each create keeps the newest SHARED_CAP, so whatever the interleaving the
     * survivors are the SHARED_CAP newest of all: created_at NOW+99 down to NOW+90. */
    CHECK(tsr_store_session_list(f.s, u.id, NOW, list, SHARED_CAP + 5, &n) == TSR_OK);
    CHECK(n == SHARED_CAP);
    for (size_t i = 0; i < n && i < SHARED_CAP; i++)
        CHECKF(list[i].created_at == NOW + 4 * (SHARED_PER_THREAD - 1) + 3 - (int64_t)i,
               "position %zu: created_at NOW+%lld", i, (long long)(list[i].created_at - NOW));
    CHECK(tsr_store_session_count(f.s, NOW, &n) == TSR_OK);
    CHECK(n == SHARED_CAP);
out:
    fx_close(&f);
}

static void *worker_rotate(void *arg)
{
    worker *w = arg;

    (void)pthread_barrier_wait(w->start);
    w->result = tsr_store_session_rotate(w->s, w->old_id, &w->fresh);
    return NULL;
}

static void concurrent_rotations_of_one_session_have_one_winner(void)
{
    enum { ROUNDS = 5 };
    fixture f;
    worker w[THREADS];
    pthread_t th[THREADS];
    pthread_barrier_t start;
    tsr_user u = mk_user("racer");
    size_t n = 0;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    for (int round = 0; round < ROUNDS; round++) {
        tsr_session old = mk_session(u.id, NOW);
        int ok = 0, gone = 0, started = 0, winner = -1;

        CHECK(tsr_store_session_create(f.s, &old, 0, NOW) == TSR_OK);
        memset(w, 0, sizeof w);
        CHECK(pthread_barrier_init(&start, NULL, THREADS) == 0);
        for (int t = 0; t < THREADS; t++) {
            w[t].s = f.s;
            w[t].start = &start;
            w[t].old_id = old.id;
            w[t].fresh = mk_session(u.id, NOW + 1);
        }
        for (; started < THREADS; started++)
            if (pthread_create(&th[started], NULL, worker_rotate, &w[started]) != 0)
                break;
        CHECK(started == THREADS);
        for (int t = 0; t < started; t++)
            (void)pthread_join(th[t], NULL);
        (void)pthread_barrier_destroy(&start);
        for (int t = 0; t < THREADS; t++) {
            if (w[t].result == TSR_OK) {
                ok++;
                winner = t;
            } else if (w[t].result == TSR_ERR_NOT_FOUND) {
                gone++;
            }
        }
        CHECKF(ok == 1 && gone == THREADS - 1, "round %d: %d ok, %d not found", round, ok, gone);
        CHECK(!session_exists(f.s, old.id));
        for (int t = 0; t < THREADS; t++)
            CHECKF(session_exists(f.s, w[t].fresh.id) == (t == winner), "round %d thread %d", round,
                   t);
    }
    /* One successor per round, nothing else. */
    CHECK(tsr_store_session_count(f.s, NOW, &n) == TSR_OK);
    CHECK(n == ROUNDS);
out:
    fx_close(&f);
}

/* ---- SQLite specifics (not part of the backend-neutral suite) --------------------- */

static void open_refuses_unknown_schemes_and_bad_sqlite_paths(void)
{
    tsr_store *s = (tsr_store *)1;

    CHECK(tsr_store_open(NULL, &s) == TSR_ERR_INVALID);
    CHECK(s == NULL);
    CHECK(tsr_store_open("sqlite:x", NULL) == TSR_ERR_INVALID);
    CHECK(tsr_store_open("", &s) == TSR_ERR_INVALID);
    /* PostgreSQL URLs go to that backend: one libpq cannot parse is INVALID. */
    CHECK(tsr_store_open("postgresql://tessera@[::1/tessera", &s) == TSR_ERR_INVALID);
    CHECK(s == NULL);
    CHECK(tsr_store_open("postgres://localhost/db?no_such_option=1", &s) == TSR_ERR_INVALID);
    CHECK(tsr_store_open("mysql://localhost/db", &s) == TSR_ERR_UNSUPPORTED);
    CHECK(tsr_store_open("/tmp/plain/path.db", &s) == TSR_ERR_UNSUPPORTED);
    CHECK(tsr_store_open("sqlite:", &s) == TSR_ERR_INVALID);
    CHECK(tsr_store_open("sqlite::memory:", &s) == TSR_ERR_INVALID);
    CHECK(tsr_store_open("sqlite:file:x.db?mode=memory", &s) == TSR_ERR_INVALID);
    CHECK(tsr_store_open("sqlite://tmp/x.db", &s) == TSR_ERR_INVALID);
    CHECK(tsr_store_open("sqlite:/tmp/", &s) == TSR_ERR_INVALID);
    CHECK(s == NULL);
}

static void sqlite_creates_private_folder_and_file(void)
{
    fixture f;
    struct stat st;
    char wal[256];
    tsr_user u = mk_user("perm");

    if (!fx_open(&f))
        goto out;
    CHECK(stat(f.sub, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK((st.st_mode & 0777) == 0700);
    CHECK(stat(f.path, &st) == 0 && S_ISREG(st.st_mode));
    CHECK((st.st_mode & 0077) == 0);
    /* The WAL inherits the database's mode. */
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    (void)snprintf(wal, sizeof wal, "%s-wal", f.path);
    CHECK(stat(wal, &st) == 0 && (st.st_mode & 0077) == 0);
    CHECK(tsr_store_ping(f.s) == TSR_OK);
out:
    fx_close(&f);
}

static void sqlite_refuses_a_path_it_cannot_create(void)
{
    fixture f;
    tsr_store *s = NULL;
    char url[256];

    if (!fx_open(&f))
        goto out;
    /* A folder where the database file should be. */
    (void)snprintf(url, sizeof url, "sqlite:%s", f.sub);
    CHECK(tsr_store_open(url, &s) != TSR_OK);
    CHECK(s == NULL);
    /* A file where a parent folder should be. */
    (void)snprintf(url, sizeof url, "sqlite:%s/sub/x.db", f.path);
    CHECK(tsr_store_open(url, &s) != TSR_OK);
    CHECK(s == NULL);
out:
    fx_close(&f);
}

int main(void)
{
    TSR_RUN(user_create_then_get_returns_every_field);
    TSR_RUN(user_get_by_name_is_case_insensitive_and_keeps_spelling);
    TSR_RUN(user_duplicate_username_in_other_case_is_exists);
    TSR_RUN(user_list_pages_return_every_user_once_in_id_order);
    TSR_RUN(user_set_pwhash_is_a_compare_and_swap);
    TSR_RUN(user_set_flags_writes_only_the_given_columns);
    TSR_RUN(user_delete_cascades_to_their_sessions_only);
    TSR_RUN(session_create_then_get_by_id_and_by_hash);
    TSR_RUN(session_resolve_returns_session_and_its_user);
    TSR_RUN(session_create_refuses_duplicate_id_hash_and_unknown_user);
    TSR_RUN(session_touch_moves_last_seen_and_idle_expiry_only);
    TSR_RUN(session_list_is_newest_first_and_excludes_expired);
    TSR_RUN(session_delete_removes_that_session_only);
    TSR_RUN(session_delete_user_spares_the_excepted_and_other_users);
    TSR_RUN(session_create_and_rotate_refuse_a_disabled_user);
    TSR_RUN(password_change_is_one_transaction);
    TSR_RUN(session_rotate_replaces_old_by_fresh);
    TSR_RUN(session_rotate_is_atomic_when_the_fresh_session_conflicts);
    TSR_RUN(session_cap_evicts_the_oldest_beyond_max_per_user);
    TSR_RUN(session_create_drops_the_users_expired_sessions);
    TSR_RUN(purge_removes_expired_sessions_only);
    TSR_RUN(session_count_counts_unexpired_only);
    TSR_RUN(meta_set_get_and_overwrite);
    TSR_RUN(reopen_after_close_keeps_every_record);
    TSR_RUN(reopen_many_times_applies_migrations_once);
    TSR_RUN(unknown_ids_are_not_found_and_leave_outputs_zeroed);
    TSR_RUN(bad_arguments_are_invalid_not_a_crash);
    TSR_RUN(concurrent_threads_create_and_read_sessions_consistently);
    TSR_RUN(concurrent_creates_on_one_user_keep_exactly_the_newest_cap);
    TSR_RUN(concurrent_rotations_of_one_session_have_one_winner);
    TSR_RUN(open_refuses_unknown_schemes_and_bad_sqlite_paths);
    if (pg_base() == NULL) {
        TSR_RUN(sqlite_creates_private_folder_and_file);
        TSR_RUN(sqlite_refuses_a_path_it_cannot_create);
    } else {
        printf("skip sqlite_creates_private_folder_and_file (SQLite file modes)\n");
        printf("skip sqlite_refuses_a_path_it_cannot_create (SQLite paths)\n");
    }
    return tsr_test_summary();
}
