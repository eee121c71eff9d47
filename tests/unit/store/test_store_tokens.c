/* test_store_tokens.c: the store's token-mode operations (refresh families, the
 * revocation log, signing keys), conformance-style like test_store.c.
 *
 * Written against the tsr_store_* API only; each test opens a fresh store (a SQLite
 * file in its own mkdtemp folder, or a fresh PostgreSQL schema with TSR_TEST_PG_URL). "now" is passed explicitly, except where the
 * store's own clock decides (the revocation rows every early session end appends):
 * those tests create sessions around time(NULL) and only check ranges, never time
 * anything. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "crypto/crypto.h"
#include "harness.h"
#include "store/store.h"

#define NOW ((int64_t)1700000000)
#define HOUR ((int64_t)3600)
#define DB_NAME "tessera.db"
#define REV_MAX 256

/* ---- fixture (as in test_store.c) ------------------------------------------------ */

#define TSR_FIXTURE_DIR_PREFIX "/tmp/tsr-stok-"
#include "store_fixture.h"

static void rand_hash(uint8_t h[TSR_HASH_BYTES])
{
    if (tsr_rand(h, TSR_HASH_BYTES) != TSR_OK)
        memset(h, 0x33, TSR_HASH_BYTES);
}

static int64_t wall(void)
{
    return (int64_t)time(NULL);
}

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

/* A cookie session created at `created`, alive for an hour (idle) from there. */
static tsr_session mk_session(const char *user_id, int64_t created)
{
    tsr_session s;
    memset(&s, 0, sizeof s);
    rand_id("ses_", s.id, sizeof s.id);
    rand_hash(s.secret_hash);
    (void)snprintf(s.user_id, sizeof s.user_id, "%s", user_id);
    s.kind = TSR_SESSION_COOKIE;
    s.created_at = created;
    s.last_seen_at = created;
    s.expires_at = created + 24 * HOUR;
    s.idle_expires_at = created + HOUR;
    (void)snprintf(s.ip, sizeof s.ip, "%s", "192.0.2.7");
    (void)snprintf(s.user_agent, sizeof s.user_agent, "%s", "curl/8 (test)");
    return s;
}

/* A refresh family at generation 0 with a scope. */
static tsr_session mk_family(const char *user_id, int64_t created)
{
    tsr_session s = mk_session(user_id, created);
    s.kind = TSR_SESSION_REFRESH;
    s.expires_at = created + 30 * 24 * HOUR;
    s.idle_expires_at = created + 7 * 24 * HOUR;
    (void)snprintf(s.scope, sizeof s.scope, "%s", "openid profile");
    return s;
}

static int session_eq(const tsr_session *a, const tsr_session *b)
{
    return strcmp(a->id, b->id) == 0 &&
           memcmp(a->secret_hash, b->secret_hash, TSR_HASH_BYTES) == 0 &&
           strcmp(a->user_id, b->user_id) == 0 && a->kind == b->kind &&
           a->created_at == b->created_at && a->last_seen_at == b->last_seen_at &&
           a->expires_at == b->expires_at && a->idle_expires_at == b->idle_expires_at &&
           strcmp(a->ip, b->ip) == 0 && strcmp(a->user_agent, b->user_agent) == 0 &&
           strcmp(a->scope, b->scope) == 0 && a->generation == b->generation;
}

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

/* A user and a family of theirs in a fresh store; 0 when that failed. */
static int setup_family(fixture *f, tsr_user *u, tsr_session *fam, int64_t created)
{
    if (!fx_open(f))
        return 0;
    *u = mk_user("alice");
    *fam = mk_family(u->id, created);
    CHECK(tsr_store_user_create(f->s, u) == TSR_OK);
    CHECK(tsr_store_session_create(f->s, fam, 0, created) == TSR_OK);
    return !tsr_test_failed_now;
}

/* ---- revocation-log helpers ------------------------------------------------------ */

static tsr_revocation revs[REV_MAX];

/* Every revocation row, oldest first; returns how many (at most REV_MAX). */
static size_t rev_all(tsr_store *s)
{
    size_t n = 0;
    CHECK(tsr_store_revocation_since(s, 0, INT64_MIN, revs, REV_MAX, &n) == TSR_OK);
    return n;
}

/* How many rows revoke sid (kind SID); checks each one's times on the way:
 * revoked_at by the store's clock within [t0, t1], expires_at 0. */
static int sid_rows(tsr_store *s, const char *sid, int64_t t0, int64_t t1)
{
    size_t n = rev_all(s);
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (revs[i].kind != TSR_REVOKE_SID || strcmp(revs[i].value, sid) != 0)
            continue;
        k++;
        /* Two seconds of slack: SQLite reads the wall clock on its own, and a VM's
         * wall clock may step between our reads and its. */
        CHECKF(revs[i].revoked_at >= t0 - 2 && revs[i].revoked_at <= t1 + 2,
               "revoked_at %lld not in [%lld, %lld]", (long long)revs[i].revoked_at,
               (long long)t0, (long long)t1);
        CHECK(revs[i].expires_at == 0);
    }
    return k;
}

/* ---- sessions carry scope and generation ----------------------------------------- */

static void session_create_stores_kind_scope_and_generation(void)
{
    fixture f;
    tsr_user u, gu;
    tsr_session fam, cookie, got, list[4];
    size_t n = 0;

    if (!setup_family(&f, &u, &fam, NOW))
        goto out;
    CHECK(tsr_store_session_get(f.s, fam.id, &got) == TSR_OK);
    CHECK(session_eq(&fam, &got));
    CHECK(got.kind == TSR_SESSION_REFRESH);
    CHECK(strcmp(got.scope, "openid profile") == 0);
    CHECK(tsr_store_session_get_by_hash(f.s, fam.secret_hash, &got) == TSR_OK);
    CHECK(session_eq(&fam, &got));
    CHECK(tsr_store_session_resolve(f.s, fam.secret_hash, &got, &gu) == TSR_OK);
    CHECK(session_eq(&fam, &got));
    CHECK(strcmp(gu.id, u.id) == 0 && gu.pwhash[0] == '\0');

    /* A generation is stored as given, like every other column. */
    cookie = mk_session(u.id, NOW + 1);
    cookie.generation = 7;
    (void)snprintf(cookie.scope, sizeof cookie.scope, "%s", "x");
    CHECK(tsr_store_session_create(f.s, &cookie, 0, NOW + 1) == TSR_OK);
    CHECK(tsr_store_session_list(f.s, u.id, NOW + 2, list, 4, &n) == TSR_OK);
    CHECK(n == 2);
    if (n == 2) {
        CHECK(session_eq(&cookie, &list[0]));
        CHECK(session_eq(&fam, &list[1]));
    }

    /* Mutated twins: a negative generation, an unterminated scope. */
    cookie = mk_session(u.id, NOW);
    cookie.generation = -1;
    CHECK(tsr_store_session_create(f.s, &cookie, 0, NOW) == TSR_ERR_INVALID);
    cookie = mk_session(u.id, NOW);
    memset(cookie.scope, 'a', sizeof cookie.scope);
    CHECK(tsr_store_session_create(f.s, &cookie, 0, NOW) == TSR_ERR_INVALID);
out:
    fx_close(&f);
}

/* ---- refresh_lookup -------------------------------------------------------------- */

static void refresh_lookup_finds_the_current_token_and_its_user(void)
{
    fixture f;
    tsr_user u, gu;
    tsr_session fam, got;
    tsr_refresh_match m;

    if (!setup_family(&f, &u, &fam, NOW))
        goto out;
    CHECK(tsr_store_refresh_lookup(f.s, fam.secret_hash, &got, &gu, &m) == TSR_OK);
    CHECK(session_eq(&fam, &got));
    CHECK(strcmp(gu.id, u.id) == 0 && strcmp(gu.username, "alice") == 0);
    CHECK(strcmp(gu.roles, "user") == 0 && gu.disabled == 0);
    CHECK(gu.pwhash[0] == '\0');
    CHECK(m.spent == 0 && m.spent_generation == 0 && m.spent_at == 0);
    CHECK(m.sealed_len == 0);
out:
    fx_close(&f);
}

static void refresh_lookup_refuses_cookie_and_unknown_hashes(void)
{
    fixture f;
    tsr_user u, gu;
    tsr_session fam, cookie, got;
    tsr_refresh_match m;
    uint8_t h[TSR_HASH_BYTES];

    if (!setup_family(&f, &u, &fam, NOW))
        goto out;
    cookie = mk_session(u.id, NOW);
    CHECK(tsr_store_session_create(f.s, &cookie, 0, NOW) == TSR_OK);
    memset(&got, 0x41, sizeof got);
    memset(&gu, 0x41, sizeof gu);
    memset(&m, 0x41, sizeof m);
    CHECK(tsr_store_refresh_lookup(f.s, cookie.secret_hash, &got, &gu, &m) == TSR_ERR_NOT_FOUND);
    CHECK(all_zero(&got, sizeof got) && all_zero(&gu, sizeof gu) && all_zero(&m, sizeof m));
    rand_hash(h);
    memset(&m, 0x41, sizeof m);
    CHECK(tsr_store_refresh_lookup(f.s, h, &got, &gu, &m) == TSR_ERR_NOT_FOUND);
    CHECK(all_zero(&got, sizeof got) && all_zero(&gu, sizeof gu) && all_zero(&m, sizeof m));
    /* One flipped bit of a real token's hash is another unknown hash. */
    memcpy(h, fam.secret_hash, sizeof h);
    h[31] ^= 1;
    CHECK(tsr_store_refresh_lookup(f.s, h, &got, &gu, &m) == TSR_ERR_NOT_FOUND);
out:
    fx_close(&f);
}

/* ---- refresh_rotate -------------------------------------------------------------- */

static void refresh_rotate_spends_the_old_hash_and_installs_the_new(void)
{
    fixture f;
    tsr_user u, gu;
    tsr_session fam, got;
    tsr_refresh_match m;
    uint8_t h1[TSR_HASH_BYTES], h2[TSR_HASH_BYTES], seal1[TSR_SEALED_MAX], seal2[40];

    if (!setup_family(&f, &u, &fam, NOW))
        goto out;
    rand_hash(h1);
    rand_hash(h2);
    for (size_t i = 0; i < sizeof seal1; i++)
        seal1[i] = (uint8_t)(i * 7 + 1);
    memset(seal2, 0xab, sizeof seal2);

    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, h1, seal1, sizeof seal1, NOW + 10,
                                   NOW + 10 + HOUR) == TSR_OK);
    /* The new token is current: generation 1, touched, sealed successor stored. */
    CHECK(tsr_store_refresh_lookup(f.s, h1, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 0);
    CHECK(strcmp(got.id, fam.id) == 0 && got.generation == 1);
    CHECK(memcmp(got.secret_hash, h1, sizeof h1) == 0);
    CHECK(got.last_seen_at == NOW + 10 && got.idle_expires_at == NOW + 10 + HOUR);
    CHECK(got.created_at == fam.created_at && got.expires_at == fam.expires_at);
    CHECK(strcmp(got.scope, fam.scope) == 0 && strcmp(gu.id, u.id) == 0);
    CHECK(m.sealed_len == sizeof seal1 && memcmp(m.sealed, seal1, sizeof seal1) == 0);
    /* The old one is spent, at generation 0, at NOW + 10: the same family. */
    CHECK(tsr_store_refresh_lookup(f.s, fam.secret_hash, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 1 && m.spent_generation == 0 && m.spent_at == NOW + 10);
    CHECK(strcmp(got.id, fam.id) == 0 && got.generation == 1);
    CHECK(memcmp(got.secret_hash, h1, sizeof h1) == 0);
    CHECK(m.sealed_len == sizeof seal1 && memcmp(m.sealed, seal1, sizeof seal1) == 0);
    CHECK(strcmp(gu.id, u.id) == 0 && gu.pwhash[0] == '\0');

    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 1, h2, seal2, sizeof seal2, NOW + 20,
                                   NOW + 20 + HOUR) == TSR_OK);
    CHECK(tsr_store_refresh_lookup(f.s, fam.secret_hash, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 1 && m.spent_generation == 0 && m.spent_at == NOW + 10);
    CHECK(got.generation == 2 && m.sealed_len == sizeof seal2);
    CHECK(tsr_store_refresh_lookup(f.s, h1, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 1 && m.spent_generation == 1 && m.spent_at == NOW + 20);
    CHECK(m.spent_generation == got.generation - 1); /* the latest spent one */
    CHECK(tsr_store_refresh_lookup(f.s, h2, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 0 && got.generation == 2);
    CHECK(m.sealed_len == sizeof seal2 && memcmp(m.sealed, seal2, sizeof seal2) == 0);
    /* The cookie-path look-ups see the current hash only. */
    CHECK(tsr_store_session_get_by_hash(f.s, h2, &got) == TSR_OK && got.generation == 2);
    CHECK(tsr_store_session_get_by_hash(f.s, h1, &got) == TSR_ERR_NOT_FOUND);

    /* A rotation without a sealed successor clears it. */
    rand_hash(h1);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 2, h1, NULL, 0, NOW + 30, NOW + 30) == TSR_OK);
    CHECK(tsr_store_refresh_lookup(f.s, h1, &got, &gu, &m) == TSR_OK);
    CHECK(m.sealed_len == 0 && all_zero(m.sealed, sizeof m.sealed) && got.generation == 3);
out:
    fx_close(&f);
}

static void refresh_rotate_with_a_stale_generation_is_a_conflict(void)
{
    fixture f;
    tsr_user u, gu;
    tsr_session fam, got;
    tsr_refresh_match m;
    uint8_t ha[TSR_HASH_BYTES], hb[TSR_HASH_BYTES];

    if (!setup_family(&f, &u, &fam, NOW))
        goto out;
    rand_hash(ha);
    rand_hash(hb);
    /* Two refreshes read generation 0; the first to write wins. */
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, ha, NULL, 0, NOW + 1, NOW + HOUR) == TSR_OK);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, hb, NULL, 0, NOW + 2, NOW + HOUR) ==
          TSR_ERR_CONFLICT);
    /* The loser changed nothing: its hash unknown, the winner's current, one spent. */
    CHECK(tsr_store_refresh_lookup(f.s, hb, &got, &gu, &m) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_refresh_lookup(f.s, ha, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 0 && got.generation == 1 && got.last_seen_at == NOW + 1);
    CHECK(tsr_store_refresh_lookup(f.s, fam.secret_hash, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 1 && m.spent_generation == 0 && m.spent_at == NOW + 1);
    /* A generation from the future is no better. */
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 5, hb, NULL, 0, NOW + 3, NOW + HOUR) ==
          TSR_ERR_CONFLICT);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 1, hb, NULL, 0, NOW + 3, NOW + HOUR) == TSR_OK);
out:
    fx_close(&f);
}

static void refresh_rotate_is_not_found_for_a_gone_family_or_disabled_user(void)
{
    fixture f;
    tsr_user u, gu;
    tsr_session fam, cookie, got;
    tsr_refresh_match m;
    uint8_t h[TSR_HASH_BYTES];

    if (!setup_family(&f, &u, &fam, NOW))
        goto out;
    rand_hash(h);
    CHECK(tsr_store_refresh_rotate(f.s, "ses_nope", 0, h, NULL, 0, NOW, NOW) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_refresh_rotate(f.s, "", 0, h, NULL, 0, NOW, NOW) == TSR_ERR_NOT_FOUND);
    /* A cookie session is no family. */
    cookie = mk_session(u.id, NOW);
    CHECK(tsr_store_session_create(f.s, &cookie, 0, NOW) == TSR_OK);
    CHECK(tsr_store_refresh_rotate(f.s, cookie.id, 0, h, NULL, 0, NOW, NOW) == TSR_ERR_NOT_FOUND);

    /* Disabled: NOT_FOUND, even with a stale generation, and nothing changes. */
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, 1, NOW) == TSR_OK);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, h, NULL, 0, NOW, NOW) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 9, h, NULL, 0, NOW, NOW) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_refresh_lookup(f.s, fam.secret_hash, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 0 && got.generation == 0 && gu.disabled == 1);
    CHECK(tsr_store_refresh_lookup(f.s, h, &got, &gu, &m) == TSR_ERR_NOT_FOUND);
    /* Enabled again, the family rotates (the disable path deletes sessions; the
     * store alone does not). */
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, 0, NOW) == TSR_OK);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, h, NULL, 0, NOW, NOW) == TSR_OK);

    /* Ended family. */
    CHECK(tsr_store_session_delete(f.s, fam.id) == TSR_OK);
    rand_hash(h);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 1, h, NULL, 0, NOW, NOW) == TSR_ERR_NOT_FOUND);
out:
    fx_close(&f);
}

static void refresh_rotate_refuses_bad_input_and_a_taken_hash_atomically(void)
{
    fixture f;
    tsr_user u, gu;
    tsr_session fam, other, got;
    tsr_refresh_match m;
    uint8_t h[TSR_HASH_BYTES], big[TSR_SEALED_MAX + 1];

    if (!setup_family(&f, &u, &fam, NOW))
        goto out;
    rand_hash(h);
    memset(big, 1, sizeof big);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, h, big, sizeof big, NOW, NOW) ==
          TSR_ERR_INVALID);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, h, NULL, 5, NOW, NOW) == TSR_ERR_INVALID);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, NULL, NULL, 0, NOW, NOW) == TSR_ERR_INVALID);
    CHECK(tsr_store_refresh_rotate(f.s, NULL, 0, h, NULL, 0, NOW, NOW) == TSR_ERR_INVALID);
    CHECK(tsr_store_refresh_rotate(NULL, fam.id, 0, h, NULL, 0, NOW, NOW) == TSR_ERR_INVALID);

    /* The new hash is another session's: EXISTS, and the spend is rolled back. */
    other = mk_session(u.id, NOW);
    CHECK(tsr_store_session_create(f.s, &other, 0, NOW) == TSR_OK);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, other.secret_hash, NULL, 0, NOW, NOW) ==
          TSR_ERR_EXISTS);
    CHECK(tsr_store_refresh_lookup(f.s, fam.secret_hash, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 0 && got.generation == 0);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, h, big, TSR_SEALED_MAX, NOW, NOW) == TSR_OK);
    CHECK(tsr_store_refresh_lookup(f.s, h, &got, &gu, &m) == TSR_OK);
    CHECK(m.sealed_len == TSR_SEALED_MAX && got.generation == 1);
out:
    fx_close(&f);
}

static void ending_a_family_forgets_its_spent_hashes(void)
{
    fixture f;
    tsr_user u, gu;
    tsr_session fam, fam2, got;
    tsr_refresh_match m;
    uint8_t h1[TSR_HASH_BYTES], h2[TSR_HASH_BYTES], k1[TSR_HASH_BYTES];

    if (!setup_family(&f, &u, &fam, NOW))
        goto out;
    rand_hash(h1);
    rand_hash(h2);
    rand_hash(k1);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, h1, NULL, 0, NOW, NOW + HOUR) == TSR_OK);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 1, h2, NULL, 0, NOW, NOW + HOUR) == TSR_OK);
    fam2 = mk_family(u.id, NOW);
    CHECK(tsr_store_session_create(f.s, &fam2, 0, NOW) == TSR_OK);
    CHECK(tsr_store_refresh_rotate(f.s, fam2.id, 0, k1, NULL, 0, NOW, NOW + HOUR) == TSR_OK);

    CHECK(tsr_store_session_delete(f.s, fam.id) == TSR_OK);
    CHECK(tsr_store_refresh_lookup(f.s, fam.secret_hash, &got, &gu, &m) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_refresh_lookup(f.s, h1, &got, &gu, &m) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_refresh_lookup(f.s, h2, &got, &gu, &m) == TSR_ERR_NOT_FOUND);
    /* The other family is untouched ... */
    CHECK(tsr_store_refresh_lookup(f.s, fam2.secret_hash, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 1 && strcmp(got.id, fam2.id) == 0);
    /* ... until its user goes: two levels of ON DELETE CASCADE. */
    CHECK(tsr_store_user_delete(f.s, u.id) == TSR_OK);
    CHECK(tsr_store_refresh_lookup(f.s, fam2.secret_hash, &got, &gu, &m) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_store_refresh_lookup(f.s, k1, &got, &gu, &m) == TSR_ERR_NOT_FOUND);
out:
    fx_close(&f);
}

/* ---- rotation races -------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 6
#define FREE_ATTEMPTS 40

typedef struct racer {
    tsr_store *s;
    const char *id;
    int64_t generation;
    pthread_barrier_t *start;
    tsr_err rc;
    uint8_t hash[TSR_HASH_BYTES];
    /* free-running: each win's expected generation and the hash it installed */
    size_t wins, conflicts, errors;
    int64_t won_gen[FREE_ATTEMPTS];
    uint8_t won_hash[FREE_ATTEMPTS][TSR_HASH_BYTES];
} racer;

static void *race_once(void *arg)
{
    racer *r = arg;
    (void)pthread_barrier_wait(r->start);
    r->rc = tsr_store_refresh_rotate(r->s, r->id, r->generation, r->hash, NULL, 0, NOW, NOW + HOUR);
    return NULL;
}

/* Every round, THREADS rotations expecting the same generation start together:
 * exactly one wins, the others are told CONFLICT. */
static void concurrent_rotations_of_one_generation_have_one_winner(void)
{
    fixture f;
    tsr_user u, gu;
    tsr_session fam, got;
    tsr_refresh_match m;
    racer r[THREADS];
    pthread_t th[THREADS];
    pthread_barrier_t start;

    if (!setup_family(&f, &u, &fam, NOW))
        goto out;
    for (int64_t g = 0; g < ROUNDS; g++) {
        int started = 0, ok = 0, conflict = 0, winner = -1;
        CHECK(pthread_barrier_init(&start, NULL, THREADS) == 0);
        for (int t = 0; t < THREADS; t++) {
            memset(&r[t], 0, sizeof r[t]);
            r[t].s = f.s;
            r[t].id = fam.id;
            r[t].generation = g;
            r[t].start = &start;
            rand_hash(r[t].hash);
        }
        for (; started < THREADS; started++)
            if (pthread_create(&th[started], NULL, race_once, &r[started]) != 0)
                break;
        CHECK(started == THREADS);
        if (started != THREADS)
            abort(); /* the barrier would never open */
        for (int t = 0; t < THREADS; t++)
            (void)pthread_join(th[t], NULL);
        (void)pthread_barrier_destroy(&start);
        for (int t = 0; t < THREADS; t++) {
            if (r[t].rc == TSR_OK) {
                ok++;
                winner = t;
            } else if (r[t].rc == TSR_ERR_CONFLICT) {
                conflict++;
            } else {
                CHECKF(0, "round %lld thread %d: %s", (long long)g, t, tsr_err_text(r[t].rc));
            }
        }
        CHECKF(ok == 1 && conflict == THREADS - 1, "round %lld: %d ok %d conflict", (long long)g,
               ok, conflict);
        if (winner < 0)
            break;
        /* The winner's token is the current one; every loser's is unknown. */
        for (int t = 0; t < THREADS; t++) {
            tsr_err rc = tsr_store_refresh_lookup(f.s, r[t].hash, &got, &gu, &m);
            if (t == winner)
                CHECK(rc == TSR_OK && m.spent == 0 && got.generation == g + 1);
            else
                CHECK(rc == TSR_ERR_NOT_FOUND);
        }
    }
out:
    fx_close(&f);
}

/* Free-running: each thread reads the generation and tries to rotate from it, over
 * and over. Whatever the interleaving, the generations won are exactly 0..W-1,
 * each once, and every token but the last is found spent at its own generation. */
static void *race_free(void *arg)
{
    racer *r = arg;
    tsr_session cur;
    uint8_t h[TSR_HASH_BYTES];
    tsr_err rc;

    (void)pthread_barrier_wait(r->start);
    for (int i = 0; i < FREE_ATTEMPTS; i++) {
        rc = tsr_store_session_get(r->s, r->id, &cur);
        if (rc != TSR_OK) {
            r->errors++;
            continue;
        }
        rand_hash(h);
        rc = tsr_store_refresh_rotate(r->s, r->id, cur.generation, h, NULL, 0, NOW, NOW + HOUR);
        if (rc == TSR_OK) {
            r->won_gen[r->wins] = cur.generation;
            memcpy(r->won_hash[r->wins], h, sizeof h);
            r->wins++;
        } else if (rc == TSR_ERR_CONFLICT) {
            r->conflicts++;
        } else {
            r->errors++;
        }
    }
    return NULL;
}

static void concurrent_free_running_rotations_yield_one_successor_per_generation(void)
{
    fixture f;
    tsr_user u, gu;
    tsr_session fam, got;
    tsr_refresh_match m;
    static racer r[THREADS];
    pthread_t th[THREADS];
    pthread_barrier_t start;
    unsigned char seen[THREADS * FREE_ATTEMPTS];
    size_t total = 0;
    int started = 0;

    memset(seen, 0, sizeof seen);
    if (!setup_family(&f, &u, &fam, NOW))
        goto out;
    CHECK(pthread_barrier_init(&start, NULL, THREADS) == 0);
    for (int t = 0; t < THREADS; t++) {
        memset(&r[t], 0, sizeof r[t]);
        r[t].s = f.s;
        r[t].id = fam.id;
        r[t].start = &start;
    }
    for (; started < THREADS; started++)
        if (pthread_create(&th[started], NULL, race_free, &r[started]) != 0)
            break;
    CHECK(started == THREADS);
    if (started != THREADS)
        abort();
    for (int t = 0; t < THREADS; t++)
        (void)pthread_join(th[t], NULL);
    (void)pthread_barrier_destroy(&start);

    for (int t = 0; t < THREADS; t++) {
        CHECK(r[t].errors == 0);
        CHECK(r[t].wins + r[t].conflicts + r[t].errors == FREE_ATTEMPTS);
        total += r[t].wins;
    }
    CHECK(total > 0);
    CHECK(tsr_store_session_get(f.s, fam.id, &got) == TSR_OK);
    CHECK(got.generation == (int64_t)total);
    for (int t = 0; t < THREADS; t++) {
        for (size_t i = 0; i < r[t].wins; i++) {
            int64_t g = r[t].won_gen[i];
            CHECK(g >= 0 && g < (int64_t)total);
            if (g < 0 || g >= (int64_t)total)
                continue;
            CHECKF(seen[g] == 0, "generation %lld won twice", (long long)g);
            seen[g] = 1;
            /* The token installed by the win at g has generation g + 1. */
            CHECK(tsr_store_refresh_lookup(f.s, r[t].won_hash[i], &got, &gu, &m) == TSR_OK);
            if (g + 1 == (int64_t)total)
                CHECK(m.spent == 0);
            else
                CHECKF(m.spent == 1 && m.spent_generation == g + 1, "g %lld", (long long)g);
        }
    }
    for (size_t g = 0; g < total; g++)
        CHECKF(seen[g] == 1, "generation %zu never won", g);
    CHECK(tsr_store_refresh_lookup(f.s, fam.secret_hash, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 1 && m.spent_generation == 0);
out:
    fx_close(&f);
}

/* ---- the revocation trigger: every early end of a session is logged -------------- */

static void deleting_a_live_session_logs_its_sid(void)
{
    fixture f;
    tsr_user u;
    tsr_session a, b, c, fam;
    int64_t t0 = wall();
    size_t n = 0;

    if (!fx_open(&f))
        goto out;
    u = mk_user("alice");
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    a = mk_session(u.id, t0);
    b = mk_session(u.id, t0);
    c = mk_session(u.id, t0);
    fam = mk_family(u.id, t0);
    CHECK(tsr_store_session_create(f.s, &a, 0, t0) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &b, 0, t0) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &c, 0, t0) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &fam, 0, t0) == TSR_OK);
    CHECK(rev_all(f.s) == 0); /* creating logs nothing */

    /* logout */
    CHECK(tsr_store_session_delete(f.s, a.id) == TSR_OK);
    CHECK(sid_rows(f.s, a.id, t0, wall()) == 1);
    CHECK(rev_all(f.s) == 1);
    /* revoke the others, sparing the current one */
    CHECK(tsr_store_session_delete_user(f.s, u.id, c.id, &n) == TSR_OK);
    CHECK(n == 2);
    CHECK(sid_rows(f.s, b.id, t0, wall()) == 1);
    CHECK(sid_rows(f.s, fam.id, t0, wall()) == 1);
    CHECK(sid_rows(f.s, c.id, t0, wall()) == 0);
    CHECK(rev_all(f.s) == 3);
    /* seqs increase */
    n = rev_all(f.s);
    for (size_t i = 1; i < n; i++)
        CHECK(revs[i].seq > revs[i - 1].seq);
    /* a delete that deletes nothing logs nothing */
    CHECK(tsr_store_session_delete(f.s, a.id) == TSR_ERR_NOT_FOUND);
    CHECK(rev_all(f.s) == 3);
out:
    fx_close(&f);
}

static void session_rotate_logs_the_old_sid_only(void)
{
    fixture f;
    tsr_user u, v;
    tsr_session old, fresh;
    int64_t t0 = wall();

    if (!fx_open(&f))
        goto out;
    u = mk_user("alice");
    v = mk_user("bob");
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &v) == TSR_OK);
    old = mk_session(u.id, t0);
    CHECK(tsr_store_session_create(f.s, &old, 0, t0) == TSR_OK);
    fresh = mk_session(u.id, t0);
    CHECK(tsr_store_session_rotate(f.s, old.id, &fresh) == TSR_OK);
    CHECK(sid_rows(f.s, old.id, t0, wall()) == 1);
    CHECK(sid_rows(f.s, fresh.id, t0, wall()) == 0);
    CHECK(rev_all(f.s) == 1);

    /* A rotation that fails rolls its delete back, and the log row with it. */
    old = fresh;
    fresh = mk_session(u.id, t0);
    CHECK(tsr_store_user_set_flags(f.s, u.id, NULL, 1, t0) == TSR_OK);
    CHECK(tsr_store_session_rotate(f.s, old.id, &fresh) == TSR_ERR_NOT_FOUND);
    CHECK(rev_all(f.s) == 1);
    /* So does one for someone else's session. */
    fresh = mk_session(v.id, t0);
    CHECK(tsr_store_session_rotate(f.s, old.id, &fresh) == TSR_ERR_NOT_FOUND);
    CHECK(rev_all(f.s) == 1);
out:
    fx_close(&f);
}

static void eviction_beyond_the_cap_logs_the_evicted_sid(void)
{
    fixture f;
    tsr_user u;
    tsr_session s1, s2, s3;
    int64_t t0 = wall();

    if (!fx_open(&f))
        goto out;
    u = mk_user("alice");
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    s1 = mk_session(u.id, t0);
    s2 = mk_session(u.id, t0 + 1);
    s3 = mk_family(u.id, t0 + 2); /* families count against the cap too */
    CHECK(tsr_store_session_create(f.s, &s1, 2, t0) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &s2, 2, t0 + 1) == TSR_OK);
    CHECK(rev_all(f.s) == 0);
    CHECK(tsr_store_session_create(f.s, &s3, 2, t0 + 2) == TSR_OK);
    CHECK(sid_rows(f.s, s1.id, t0, wall() + 2) == 1);
    CHECK(rev_all(f.s) == 1);
out:
    fx_close(&f);
}

static void password_change_logs_every_session_it_ends(void)
{
    fixture f;
    tsr_user u;
    tsr_session cur, other, fam, fresh;
    int64_t t0 = wall();
    size_t revoked = 0;

    if (!fx_open(&f))
        goto out;
    u = mk_user("alice");
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    cur = mk_session(u.id, t0);
    other = mk_session(u.id, t0);
    fam = mk_family(u.id, t0);
    CHECK(tsr_store_session_create(f.s, &cur, 0, t0) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &other, 0, t0) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &fam, 0, t0) == TSR_OK);

    /* A stale hash: nothing changes, nothing is logged. */
    fresh = mk_session(u.id, t0);
    CHECK(tsr_store_password_change(f.s, u.id, "$argon2id$stale", "$argon2id$new", cur.id, &fresh,
                                    t0, &revoked) == TSR_ERR_NOT_FOUND);
    CHECK(rev_all(f.s) == 0);

    CHECK(tsr_store_password_change(f.s, u.id, u.pwhash, "$argon2id$new", cur.id, &fresh, t0,
                                    &revoked) == TSR_OK);
    CHECK(revoked == 2);
    CHECK(sid_rows(f.s, cur.id, t0, wall()) == 1);
    CHECK(sid_rows(f.s, other.id, t0, wall()) == 1);
    CHECK(sid_rows(f.s, fam.id, t0, wall()) == 1);
    CHECK(sid_rows(f.s, fresh.id, t0, wall()) == 0);
    CHECK(rev_all(f.s) == 3);
out:
    fx_close(&f);
}

static void user_delete_logs_every_session_through_the_cascade(void)
{
    fixture f;
    tsr_user u, v;
    tsr_session a, fam, keep;
    int64_t t0 = wall();

    if (!fx_open(&f))
        goto out;
    u = mk_user("alice");
    v = mk_user("bob");
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    CHECK(tsr_store_user_create(f.s, &v) == TSR_OK);
    a = mk_session(u.id, t0);
    fam = mk_family(u.id, t0);
    keep = mk_session(v.id, t0);
    CHECK(tsr_store_session_create(f.s, &a, 0, t0) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &fam, 0, t0) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &keep, 0, t0) == TSR_OK);
    CHECK(tsr_store_user_delete(f.s, u.id) == TSR_OK);
    CHECK(sid_rows(f.s, a.id, t0, wall()) == 1);
    CHECK(sid_rows(f.s, fam.id, t0, wall()) == 1);
    CHECK(sid_rows(f.s, keep.id, t0, wall()) == 0);
    CHECK(rev_all(f.s) == 2);
out:
    fx_close(&f);
}

static void ending_expired_sessions_logs_nothing(void)
{
    fixture f;
    tsr_user u;
    tsr_session idle1, idle2, abs1, dead, live;
    int64_t t0 = wall();
    size_t purged = 0;

    if (!fx_open(&f))
        goto out;
    u = mk_user("alice");
    CHECK(tsr_store_user_create(f.s, &u) == TSR_OK);
    /* Idle-expired an hour ago; absolute-expired a minute ago (idle still open). */
    idle1 = mk_session(u.id, t0 - 2 * HOUR);
    idle2 = mk_family(u.id, t0 - 2 * HOUR);
    idle2.idle_expires_at = t0 - HOUR;
    abs1 = mk_session(u.id, t0 - 2 * HOUR);
    abs1.expires_at = t0 - 60;
    abs1.idle_expires_at = t0 + HOUR;
    dead = mk_session(u.id, t0 - 2 * HOUR);
    live = mk_session(u.id, t0);
    /* Created with an old "now", so that create's own clean-up keeps them. */
    CHECK(tsr_store_session_create(f.s, &idle1, 0, t0 - 2 * HOUR) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &idle2, 0, t0 - 2 * HOUR) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &abs1, 0, t0 - 2 * HOUR) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &dead, 0, t0 - 2 * HOUR) == TSR_OK);

    /* Deleting an already expired session: it ended by itself, nothing to publish. */
    CHECK(tsr_store_session_delete(f.s, dead.id) == TSR_OK);
    CHECK(rev_all(f.s) == 0);
    CHECK(tsr_store_purge_expired(f.s, wall(), &purged) == TSR_OK);
    CHECK(purged == 3);
    CHECK(rev_all(f.s) == 0);

    /* session_create's drop of the user's expired sessions logs nothing either. */
    idle1 = mk_session(u.id, t0 - 2 * HOUR);
    CHECK(tsr_store_session_create(f.s, &idle1, 0, t0 - 2 * HOUR) == TSR_OK);
    CHECK(tsr_store_session_create(f.s, &live, 0, wall()) == TSR_OK);
    CHECK(tsr_store_session_get(f.s, idle1.id, &dead) == TSR_ERR_NOT_FOUND);
    CHECK(rev_all(f.s) == 0);
out:
    fx_close(&f);
}

/* ---- revocation_add / since / purge ---------------------------------------------- */

static void revocation_add_validates_kind_and_value(void)
{
    fixture f;
    char long_v[TSR_ID_MAX + 2], max_v[TSR_ID_MAX + 1];
    size_t n;

    if (!fx_open(&f))
        goto out;
    memset(long_v, 'j', sizeof long_v - 1);
    long_v[sizeof long_v - 1] = '\0';
    memset(max_v, 'k', sizeof max_v - 1);
    max_v[sizeof max_v - 1] = '\0';
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_INVALID, "x", NOW, 0) == TSR_ERR_INVALID);
    CHECK(tsr_store_revocation_add(f.s, (tsr_revocation_kind)3, "x", NOW, 0) == TSR_ERR_INVALID);
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_JTI, "", NOW, 0) == TSR_ERR_INVALID);
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_JTI, long_v, NOW, 0) == TSR_ERR_INVALID);
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_JTI, NULL, NOW, 0) == TSR_ERR_INVALID);
    CHECK(tsr_store_revocation_add(NULL, TSR_REVOKE_JTI, "x", NOW, 0) == TSR_ERR_INVALID);
    CHECK(rev_all(f.s) == 0);
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_JTI, max_v, NOW, NOW + 900) == TSR_OK);
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_SID, "ses_x", NOW + 1, 0) == TSR_OK);
    n = rev_all(f.s);
    CHECK(n == 2);
    if (n == 2) {
        CHECK(revs[0].kind == TSR_REVOKE_JTI && strcmp(revs[0].value, max_v) == 0);
        CHECK(revs[0].revoked_at == NOW && revs[0].expires_at == NOW + 900);
        CHECK(revs[1].kind == TSR_REVOKE_SID && strcmp(revs[1].value, "ses_x") == 0);
        CHECK(revs[1].revoked_at == NOW + 1 && revs[1].expires_at == 0);
        CHECK(revs[1].seq > revs[0].seq && revs[0].seq > 0);
    }
out:
    fx_close(&f);
}

static void revocation_since_pages_by_seq_and_filters_by_time(void)
{
    fixture f;
    tsr_revocation page[10];
    char v[32];
    int64_t after = 0;
    size_t n = 0, total = 0, k;

    if (!fx_open(&f))
        goto out;
    for (int i = 0; i < 25; i++) {
        (void)snprintf(v, sizeof v, "jti_%02d", i);
        CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_JTI, v, NOW + i, NOW + 900) == TSR_OK);
    }
    /* Pages of 10: 10, 10, 5, then nothing; in order, each row once. */
    for (int p = 0; p < 5; p++) {
        memset(page, 0x41, sizeof page);
        CHECK(tsr_store_revocation_since(f.s, after, INT64_MIN, page, 10, &n) == TSR_OK);
        CHECK(n == (p < 2 ? 10 : p == 2 ? 5 : 0));
        CHECK(all_zero(&page[n], (10 - n) * sizeof page[0]));
        for (size_t i = 0; i < n; i++) {
            (void)snprintf(v, sizeof v, "jti_%02zu", total + i);
            CHECK(strcmp(page[i].value, v) == 0);
            CHECK(page[i].seq > after);
            CHECK(page[i].revoked_at == NOW + (int64_t)(total + i));
            after = page[i].seq;
        }
        total += n;
    }
    CHECK(total == 25);

    /* revoked_at >= revoked_since: the last five. */
    CHECK(tsr_store_revocation_since(f.s, 0, NOW + 20, page, 10, &n) == TSR_OK);
    CHECK(n == 5);
    if (n == 5)
        CHECK(strcmp(page[0].value, "jti_20") == 0 && strcmp(page[4].value, "jti_24") == 0);
    /* Both filters at once. */
    k = rev_all(f.s);
    CHECK(k == 25);
    if (k == 25) {
        CHECK(tsr_store_revocation_since(f.s, revs[21].seq, NOW + 20, page, 10, &n) == TSR_OK);
        CHECK(n == 3 && strcmp(page[0].value, "jti_22") == 0);
    }
    /* max 0 reads nothing. */
    CHECK(tsr_store_revocation_since(f.s, 0, INT64_MIN, page, 0, &n) == TSR_OK && n == 0);
    CHECK(tsr_store_revocation_since(f.s, 0, INT64_MIN, NULL, 0, &n) == TSR_OK && n == 0);
out:
    fx_close(&f);
}

static void revocation_purge_drops_old_rows_and_expired_jtis(void)
{
    fixture f;
    size_t purged = 99, n;
    int64_t last;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_SID, "ses_old", NOW - 100, 0) == TSR_OK);
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_JTI, "jti_old_exp", NOW - 100, NOW - 50) ==
          TSR_OK);
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_JTI, "jti_old_live", NOW - 100, NOW + 50) ==
          TSR_OK);
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_SID, "ses_new", NOW, 0) == TSR_OK);
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_JTI, "jti_new", NOW, NOW - 1) == TSR_OK);

    CHECK(tsr_store_revocation_purge(f.s, NOW, &purged) == TSR_OK);
    CHECK(purged == 2);
    n = rev_all(f.s);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(strcmp(revs[0].value, "jti_old_live") == 0);
        CHECK(strcmp(revs[1].value, "ses_new") == 0);
        CHECK(strcmp(revs[2].value, "jti_new") == 0);
    }
    CHECK(tsr_store_revocation_purge(f.s, NOW, &purged) == TSR_OK && purged == 0);
    CHECK(tsr_store_revocation_purge(f.s, NOW + 51, &purged) == TSR_OK && purged == 3);
    last = n == 3 ? revs[2].seq : 0;
    CHECK(rev_all(f.s) == 0);
    /* A seq is never reused, even once the table was emptied. */
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_SID, "ses_later", NOW, 0) == TSR_OK);
    CHECK(rev_all(f.s) == 1 && revs[0].seq > last);
    CHECK(tsr_store_revocation_purge(f.s, NOW, NULL) == TSR_ERR_INVALID);
out:
    fx_close(&f);
}

/* ---- signing keys ---------------------------------------------------------------- */

static tsr_key_record keys[8];

static tsr_key_record mk_key(const char *kid, const char *alg, int64_t created)
{
    tsr_key_record k;
    memset(&k, 0, sizeof k);
    (void)snprintf(k.kid, sizeof k.kid, "%s", kid);
    (void)snprintf(k.alg, sizeof k.alg, "%s", alg);
    (void)snprintf(k.jwk, sizeof k.jwk, "{\"kty\":\"EC\",\"kid\":\"%s\",\"d\":\"secret-%s\"}", kid,
                   kid);
    k.created_at = created;
    k.state = TSR_KEY_STATE_RETIRED; /* ignored: key_rotate sets the state */
    k.activated_at = 12345;          /* ignored too */
    return k;
}

static size_t key_list_all(tsr_store *s)
{
    size_t n = 0;
    CHECK(tsr_store_key_list(s, keys, 8, &n) == TSR_OK);
    return n;
}

static const tsr_key_record *find_key(size_t n, const char *kid)
{
    for (size_t i = 0; i < n && i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].kid, kid) == 0)
            return &keys[i];
    return NULL;
}

static int count_state(size_t n, tsr_key_state st)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += keys[i].state == st;
    return k;
}

/* Snapshot of the key rows to compare before/after a refused change. */
static int keys_same(const tsr_key_record *a, size_t na, const tsr_key_record *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].kid, b[i].kid) != 0 || a[i].state != b[i].state ||
            a[i].retired_at != b[i].retired_at || a[i].publish_until != b[i].publish_until ||
            a[i].activated_at != b[i].activated_at)
            return 0;
    return 1;
}

static void key_rotate_init_inserts_active_and_next(void)
{
    fixture f;
    tsr_key_record a = mk_key("k-a", "ES256", NOW - 5), nx = mk_key("k-n", "ES256", 0);
    const tsr_key_record *g;
    size_t n;

    if (!fx_open(&f))
        goto out;
    CHECK(key_list_all(f.s) == 0);
    CHECK(tsr_store_key_rotate(f.s, "", &a, &nx, NOW, NOW + HOUR) == TSR_OK);
    n = key_list_all(f.s);
    CHECK(n == 2);
    g = find_key(n, "k-a");
    CHECK(g != NULL);
    if (g != NULL) {
        CHECK(g->state == TSR_KEY_STATE_ACTIVE && strcmp(g->alg, "ES256") == 0);
        CHECK(g->created_at == NOW - 5 && g->activated_at == NOW);
        CHECK(g->retired_at == 0 && g->publish_until == 0);
        CHECK(strcmp(g->jwk, a.jwk) == 0);
    }
    g = find_key(n, "k-n");
    CHECK(g != NULL);
    if (g != NULL) {
        CHECK(g->state == TSR_KEY_STATE_NEXT && g->activated_at == 0);
        CHECK(g->created_at == NOW); /* 0 in the record: now */
        CHECK(strcmp(g->jwk, nx.jwk) == 0);
    }
    /* Oldest first. */
    CHECK(n == 2 && strcmp(keys[0].kid, "k-a") == 0);
    /* A second instance initialising with "" lost the race: CONFLICT, nothing changed. */
    a = mk_key("k-a2", "ES256", NOW);
    nx = mk_key("k-n2", "ES256", NOW);
    CHECK(tsr_store_key_rotate(f.s, "", &a, &nx, NOW, NOW + HOUR) == TSR_ERR_CONFLICT);
    CHECK(key_list_all(f.s) == 2);
    CHECK(count_state(2, TSR_KEY_STATE_ACTIVE) == 1);
    tsr_wipe(keys, sizeof keys);
out:
    fx_close(&f);
}

static void key_rotate_promotes_next_and_retires_active(void)
{
    fixture f;
    tsr_key_record a = mk_key("k-a", "ES256", NOW), nx = mk_key("k-n", "ES256", NOW);
    tsr_key_record n2 = mk_key("k-n2", "ES256", NOW + 100);
    const tsr_key_record *g;
    size_t n;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_key_rotate(f.s, "", &a, &nx, NOW, 0) == TSR_OK);
    CHECK(tsr_store_key_rotate(f.s, "k-a", NULL, &n2, NOW + 100, NOW + 1000) == TSR_OK);
    n = key_list_all(f.s);
    CHECK(n == 3);
    CHECK(count_state(n, TSR_KEY_STATE_ACTIVE) == 1);
    g = find_key(n, "k-a");
    CHECK(g != NULL && g->state == TSR_KEY_STATE_RETIRED && g->retired_at == NOW + 100 &&
          g->publish_until == NOW + 1000 && g->activated_at == NOW);
    g = find_key(n, "k-n");
    CHECK(g != NULL && g->state == TSR_KEY_STATE_ACTIVE && g->activated_at == NOW + 100);
    g = find_key(n, "k-n2");
    CHECK(g != NULL && g->state == TSR_KEY_STATE_NEXT);

    /* Without a new next key, promoting works once; then there is no next. */
    CHECK(tsr_store_key_rotate(f.s, "k-n", NULL, NULL, NOW + 200, NOW + 1100) == TSR_OK);
    n = key_list_all(f.s);
    g = find_key(n, "k-n2");
    CHECK(g != NULL && g->state == TSR_KEY_STATE_ACTIVE);
    {
        tsr_key_record before[8];
        size_t nb = n;
        memcpy(before, keys, sizeof before);
        CHECK(tsr_store_key_rotate(f.s, "k-n2", NULL, NULL, NOW + 300, NOW + 1200) ==
              TSR_ERR_NOT_FOUND);
        n = key_list_all(f.s);
        CHECK(keys_same(before, nb, keys, n));
        tsr_wipe(before, sizeof before);
    }
    tsr_wipe(keys, sizeof keys);
out:
    fx_close(&f);
}

static void key_rotate_is_a_compare_and_swap_on_the_active_kid(void)
{
    fixture f;
    tsr_key_record a = mk_key("k-a", "ES256", NOW), nx = mk_key("k-n", "ES256", NOW);
    tsr_key_record n2 = mk_key("k-n2", "ES256", NOW), before[8];
    size_t n, nb;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_key_rotate(f.s, "", &a, &nx, NOW, 0) == TSR_OK);
    nb = key_list_all(f.s);
    memcpy(before, keys, sizeof before);
    CHECK(tsr_store_key_rotate(f.s, "k-n", NULL, &n2, NOW + 1, NOW + 9) == TSR_ERR_CONFLICT);
    CHECK(tsr_store_key_rotate(f.s, "k-a-", NULL, &n2, NOW + 1, NOW + 9) == TSR_ERR_CONFLICT);
    CHECK(tsr_store_key_rotate(f.s, "", NULL, &n2, NOW + 1, NOW + 9) == TSR_ERR_CONFLICT);
    n = key_list_all(f.s);
    CHECK(keys_same(before, nb, keys, n));
    /* Two rotations that both saw k-a: the first wins, the second conflicts. */
    CHECK(tsr_store_key_rotate(f.s, "k-a", NULL, &n2, NOW + 1, NOW + 9) == TSR_OK);
    n2 = mk_key("k-n3", "ES256", NOW);
    CHECK(tsr_store_key_rotate(f.s, "k-a", NULL, &n2, NOW + 1, NOW + 9) == TSR_ERR_CONFLICT);
    n = key_list_all(f.s);
    CHECK(n == 3 && count_state(n, TSR_KEY_STATE_ACTIVE) == 1);
    CHECK(find_key(n, "k-n3") == NULL);
    tsr_wipe(before, sizeof before);
    tsr_wipe(keys, sizeof keys);
out:
    fx_close(&f);
}

static void key_rotate_with_a_new_active_key_retires_the_next_one(void)
{
    fixture f;
    tsr_key_record a = mk_key("k-a", "ES256", NOW), nx = mk_key("k-n", "ES256", NOW);
    tsr_key_record ra = mk_key("k-rsa", "RS256", NOW + 50),
                   rn = mk_key("k-rsa-n", "RS256", NOW + 50);
    const tsr_key_record *g;
    size_t n;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_key_rotate(f.s, "", &a, &nx, NOW, 0) == TSR_OK);
    /* An alg change: the caller brings a new active key; the ES256 next key never
     * signed anything, so its publication ends now. */
    CHECK(tsr_store_key_rotate(f.s, "k-a", &ra, &rn, NOW + 50, NOW + 950) == TSR_OK);
    n = key_list_all(f.s);
    CHECK(n == 4);
    CHECK(count_state(n, TSR_KEY_STATE_ACTIVE) == 1);
    g = find_key(n, "k-a");
    CHECK(g != NULL && g->state == TSR_KEY_STATE_RETIRED && g->publish_until == NOW + 950);
    g = find_key(n, "k-n");
    CHECK(g != NULL && g->state == TSR_KEY_STATE_RETIRED && g->retired_at == NOW + 50 &&
          g->publish_until == NOW + 50 && g->activated_at == 0);
    g = find_key(n, "k-rsa");
    CHECK(g != NULL && g->state == TSR_KEY_STATE_ACTIVE && strcmp(g->alg, "RS256") == 0 &&
          g->activated_at == NOW + 50);
    g = find_key(n, "k-rsa-n");
    CHECK(g != NULL && g->state == TSR_KEY_STATE_NEXT);
    tsr_wipe(keys, sizeof keys);
out:
    fx_close(&f);
}

static void key_rotate_deletes_retired_keys_past_publish_until(void)
{
    fixture f;
    tsr_key_record a = mk_key("k-a", "ES256", NOW), nx = mk_key("k-n", "ES256", NOW + 1);
    tsr_key_record n2 = mk_key("k-n2", "ES256", NOW + 2), n3 = mk_key("k-n3", "ES256", NOW + 3);
    size_t n;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_key_rotate(f.s, "", &a, &nx, NOW, 0) == TSR_OK);
    CHECK(tsr_store_key_rotate(f.s, "k-a", NULL, &n2, NOW + 10, NOW + 100) == TSR_OK);
    /* At publish_until itself k-a is still published ... */
    CHECK(tsr_store_key_rotate(f.s, "k-n", NULL, &n3, NOW + 100, NOW + 500) == TSR_OK);
    n = key_list_all(f.s);
    CHECK(n == 4 && find_key(n, "k-a") != NULL);
    /* ... and gone at the next rotation after it; k-n (until NOW + 500) stays. */
    CHECK(tsr_store_key_rotate(f.s, "k-n2", NULL, NULL, NOW + 101, NOW + 600) == TSR_OK);
    n = key_list_all(f.s);
    CHECK(n == 3);
    CHECK(find_key(n, "k-a") == NULL);
    CHECK(find_key(n, "k-n") != NULL && find_key(n, "k-n2") != NULL);
    CHECK(count_state(n, TSR_KEY_STATE_ACTIVE) == 1);
    /* Oldest first still. */
    CHECK(n == 3 && strcmp(keys[0].kid, "k-n") == 0 && strcmp(keys[2].kid, "k-n3") == 0);
    tsr_wipe(keys, sizeof keys);
out:
    fx_close(&f);
}

static void key_rotate_refuses_a_duplicate_kid_with_nothing_changed(void)
{
    fixture f;
    tsr_key_record a = mk_key("k-a", "ES256", NOW), nx = mk_key("k-n", "ES256", NOW);
    tsr_key_record dup = mk_key("k-a", "ES256", NOW), x = mk_key("k-x", "ES256", NOW);
    tsr_key_record before[8];
    size_t n, nb;

    if (!fx_open(&f))
        goto out;
    /* Active and next under one kid. */
    CHECK(tsr_store_key_rotate(f.s, "", &a, &dup, NOW, 0) == TSR_ERR_EXISTS);
    CHECK(key_list_all(f.s) == 0);
    CHECK(tsr_store_key_rotate(f.s, "", &a, &nx, NOW, 0) == TSR_OK);
    nb = key_list_all(f.s);
    memcpy(before, keys, sizeof before);
    /* A new next key reusing the active kid: step 2 and 3 are rolled back too. */
    CHECK(tsr_store_key_rotate(f.s, "k-a", NULL, &dup, NOW + 1, NOW + 9) == TSR_ERR_EXISTS);
    n = key_list_all(f.s);
    CHECK(keys_same(before, nb, keys, n));
    /* A new active key reusing the next kid. */
    dup = mk_key("k-n", "ES256", NOW);
    CHECK(tsr_store_key_rotate(f.s, "k-a", &dup, &x, NOW + 1, NOW + 9) == TSR_ERR_EXISTS);
    n = key_list_all(f.s);
    CHECK(keys_same(before, nb, keys, n));
    CHECK(count_state(n, TSR_KEY_STATE_ACTIVE) == 1);
    tsr_wipe(before, sizeof before);
    tsr_wipe(keys, sizeof keys);
out:
    fx_close(&f);
}

static void key_rotate_refuses_incomplete_records(void)
{
    fixture f;
    tsr_key_record a = mk_key("k-a", "ES256", NOW), bad;

    if (!fx_open(&f))
        goto out;
    bad = mk_key("", "ES256", NOW);
    CHECK(tsr_store_key_rotate(f.s, "", &bad, NULL, NOW, 0) == TSR_ERR_INVALID);
    bad = mk_key("k-b", "", NOW);
    CHECK(tsr_store_key_rotate(f.s, "", &bad, NULL, NOW, 0) == TSR_ERR_INVALID);
    bad = mk_key("k-b", "ES256", NOW);
    bad.jwk[0] = '\0';
    CHECK(tsr_store_key_rotate(f.s, "", &a, &bad, NOW, 0) == TSR_ERR_INVALID);
    bad = mk_key("k-b", "ES256", NOW);
    memset(bad.kid, 'k', sizeof bad.kid);
    CHECK(tsr_store_key_rotate(f.s, "", &a, &bad, NOW, 0) == TSR_ERR_INVALID);
    CHECK(tsr_store_key_rotate(f.s, NULL, &a, NULL, NOW, 0) == TSR_ERR_INVALID);
    CHECK(key_list_all(f.s) == 0);
    /* No active key and no next one to promote. */
    CHECK(tsr_store_key_rotate(f.s, "", NULL, NULL, NOW, 0) == TSR_ERR_NOT_FOUND);
    /* Active only is fine. */
    CHECK(tsr_store_key_rotate(f.s, "", &a, NULL, NOW, 0) == TSR_OK);
    CHECK(key_list_all(f.s) == 1 && keys[0].state == TSR_KEY_STATE_ACTIVE);
    tsr_wipe(keys, sizeof keys);
    tsr_wipe(&a, sizeof a);
out:
    fx_close(&f);
}

static void key_list_returns_at_most_max_oldest_first(void)
{
    fixture f;
    tsr_key_record a = mk_key("k-a", "ES256", NOW), nx = mk_key("k-n", "ES256", NOW + 1);
    tsr_key_record n2 = mk_key("k-n2", "ES256", NOW + 2), two[2];
    size_t n = 9;

    if (!fx_open(&f))
        goto out;
    CHECK(tsr_store_key_rotate(f.s, "", &a, &nx, NOW, 0) == TSR_OK);
    CHECK(tsr_store_key_rotate(f.s, "k-a", NULL, &n2, NOW + 2, NOW + 100) == TSR_OK);
    CHECK(tsr_store_key_list(f.s, two, 2, &n) == TSR_OK);
    CHECK(n == 2 && strcmp(two[0].kid, "k-a") == 0 && strcmp(two[1].kid, "k-n") == 0);
    CHECK(tsr_store_key_list(f.s, two, 0, &n) == TSR_OK && n == 0);
    CHECK(tsr_store_key_list(f.s, NULL, 2, &n) == TSR_ERR_INVALID && n == 0);
    tsr_wipe(two, sizeof two);
out:
    fx_close(&f);
}

/* ---- arguments, outputs, reopen -------------------------------------------------- */

static void bad_arguments_are_invalid_and_outputs_zeroed(void)
{
    fixture f;
    tsr_session ss;
    tsr_user u;
    tsr_refresh_match m;
    tsr_revocation r[2];
    uint8_t h[TSR_HASH_BYTES] = {0};
    size_t n = 7;

    if (!fx_open(&f))
        goto out;
    memset(&ss, 0x41, sizeof ss);
    memset(&u, 0x41, sizeof u);
    memset(&m, 0x41, sizeof m);
    CHECK(tsr_store_refresh_lookup(f.s, NULL, &ss, &u, &m) == TSR_ERR_INVALID);
    CHECK(all_zero(&ss, sizeof ss) && all_zero(&u, sizeof u) && all_zero(&m, sizeof m));
    CHECK(tsr_store_refresh_lookup(NULL, h, &ss, &u, &m) == TSR_ERR_INVALID);
    CHECK(tsr_store_refresh_lookup(f.s, h, NULL, &u, &m) == TSR_ERR_INVALID);
    CHECK(tsr_store_refresh_lookup(f.s, h, &ss, NULL, &m) == TSR_ERR_INVALID);
    CHECK(tsr_store_refresh_lookup(f.s, h, &ss, &u, NULL) == TSR_ERR_INVALID);
    memset(r, 0x41, sizeof r);
    CHECK(tsr_store_revocation_since(NULL, 0, 0, r, 2, &n) == TSR_ERR_INVALID);
    CHECK(n == 0 && all_zero(r, sizeof r));
    CHECK(tsr_store_revocation_since(f.s, 0, 0, NULL, 2, &n) == TSR_ERR_INVALID);
    CHECK(tsr_store_revocation_since(f.s, 0, 0, r, 2, NULL) == TSR_ERR_INVALID);
    n = 7;
    CHECK(tsr_store_revocation_purge(NULL, NOW, &n) == TSR_ERR_INVALID && n == 0);
    n = 7;
    CHECK(tsr_store_key_list(NULL, keys, 2, &n) == TSR_ERR_INVALID && n == 0);
    CHECK(all_zero(keys, 2 * sizeof keys[0]));
    CHECK(tsr_store_key_list(f.s, keys, 2, NULL) == TSR_ERR_INVALID);
    CHECK(tsr_store_key_rotate(NULL, "", NULL, NULL, NOW, 0) == TSR_ERR_INVALID);
out:
    fx_close(&f);
}

static void reopen_keeps_families_revocations_and_keys(void)
{
    fixture f;
    tsr_user u, gu;
    tsr_session fam, got;
    tsr_refresh_match m;
    tsr_key_record a = mk_key("k-a", "ES256", NOW), nx = mk_key("k-n", "ES256", NOW);
    uint8_t h1[TSR_HASH_BYTES], seal[16];
    size_t n;

    if (!setup_family(&f, &u, &fam, NOW))
        goto out;
    rand_hash(h1);
    memset(seal, 0x5c, sizeof seal);
    CHECK(tsr_store_refresh_rotate(f.s, fam.id, 0, h1, seal, sizeof seal, NOW + 5, NOW + HOUR) ==
          TSR_OK);
    CHECK(tsr_store_revocation_add(f.s, TSR_REVOKE_JTI, "jti_1", NOW, NOW + 900) == TSR_OK);
    CHECK(tsr_store_key_rotate(f.s, "", &a, &nx, NOW, 0) == TSR_OK);
    if (!fx_reopen(&f))
        goto out;
    CHECK(tsr_store_refresh_lookup(f.s, fam.secret_hash, &got, &gu, &m) == TSR_OK);
    CHECK(m.spent == 1 && m.spent_generation == 0 && m.spent_at == NOW + 5);
    CHECK(m.sealed_len == sizeof seal && memcmp(m.sealed, seal, sizeof seal) == 0);
    CHECK(got.generation == 1 && strcmp(got.scope, "openid profile") == 0);
    n = rev_all(f.s);
    CHECK(n == 1 && strcmp(revs[0].value, "jti_1") == 0);
    n = key_list_all(f.s);
    CHECK(n == 2 && count_state(n, TSR_KEY_STATE_ACTIVE) == 1);
    tsr_wipe(keys, sizeof keys);
out:
    fx_close(&f);
}

int main(void)
{
    TSR_RUN(session_create_stores_kind_scope_and_generation);
    TSR_RUN(refresh_lookup_finds_the_current_token_and_its_user);
    TSR_RUN(refresh_lookup_refuses_cookie_and_unknown_hashes);
    TSR_RUN(refresh_rotate_spends_the_old_hash_and_installs_the_new);
    TSR_RUN(refresh_rotate_with_a_stale_generation_is_a_conflict);
    TSR_RUN(refresh_rotate_is_not_found_for_a_gone_family_or_disabled_user);
    TSR_RUN(refresh_rotate_refuses_bad_input_and_a_taken_hash_atomically);
    TSR_RUN(ending_a_family_forgets_its_spent_hashes);
    TSR_RUN(concurrent_rotations_of_one_generation_have_one_winner);
    TSR_RUN(concurrent_free_running_rotations_yield_one_successor_per_generation);
    TSR_RUN(deleting_a_live_session_logs_its_sid);
    TSR_RUN(session_rotate_logs_the_old_sid_only);
    TSR_RUN(eviction_beyond_the_cap_logs_the_evicted_sid);
    TSR_RUN(password_change_logs_every_session_it_ends);
    TSR_RUN(user_delete_logs_every_session_through_the_cascade);
    TSR_RUN(ending_expired_sessions_logs_nothing);
    TSR_RUN(revocation_add_validates_kind_and_value);
    TSR_RUN(revocation_since_pages_by_seq_and_filters_by_time);
    TSR_RUN(revocation_purge_drops_old_rows_and_expired_jtis);
    TSR_RUN(key_rotate_init_inserts_active_and_next);
    TSR_RUN(key_rotate_promotes_next_and_retires_active);
    TSR_RUN(key_rotate_is_a_compare_and_swap_on_the_active_kid);
    TSR_RUN(key_rotate_with_a_new_active_key_retires_the_next_one);
    TSR_RUN(key_rotate_deletes_retired_keys_past_publish_until);
    TSR_RUN(key_rotate_refuses_a_duplicate_kid_with_nothing_changed);
    TSR_RUN(key_rotate_refuses_incomplete_records);
    TSR_RUN(key_list_returns_at_most_max_oldest_first);
    TSR_RUN(bad_arguments_are_invalid_and_outputs_zeroed);
    TSR_RUN(reopen_keeps_families_revocations_and_keys);
    return tsr_test_summary();
}
