/* test_hot.c: auth's Redis side against a real redis-server (TSR_TEST_REDIS_URL,
 * set by tests/support/services.py) and one SQLite store shared by two auth
 * contexts, standing for two instances: the revocation feed (no background sync
 * runs here, so only Redis can carry a revocation from A to B), the session
 * cache and its deletion by the revoking side, the shared login buckets, and the
 * fallback when the feed is down: a bearer check then reads the store first. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/tokens.h"
#include "harness.h"
#include "crypto/crypto.h"
#include "jose/jose.h"
#include "store/redis.h"

#define PW "correct horse battery"
#define PWLEN (sizeof PW - 1)
#define WAIT_BOUND_MS 5000 /* a hang guard, not a speed assertion */
#define TSR_TEST_LATER 61  /* seconds: past any cached record's validity */

static const tsr_auth_opts base_opts = {
    .pw = {8, 1, 1},
    .idle_ttl = 1800,
    .absolute_ttl = 86400,
    .max_per_user = 50,
    .login_max_failures = 3,
    .login_window = 900,
    .issuer = "https://auth.example",
    .reuse_grace = 10,
};

static const char *redis_url;
static char db_path[128];
static int db_seq;

/* One "instance": its own store handle, auth context and Redis client. */
typedef struct node {
    tsr_store *store;
    tsr_auth *auth;
    tsr_redis *redis;
} node;

static void remove_db(void)
{
    char p[160];
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        int k = snprintf(p, sizeof p, "%s%s", db_path, sfx[i]);
        if (k > 0 && (size_t)k < sizeof p)
            unlink(p);
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int node_open(node *n, const char *rurl)
{
    char url[160];
    int k = snprintf(url, sizeof url, "sqlite:%s", db_path);

    memset(n, 0, sizeof *n);
    if (k < 0 || (size_t)k >= sizeof url)
        return 0;
    if (tsr_store_open(url, &n->store) != TSR_OK ||
        tsr_auth_new(n->store, &base_opts, &n->auth) != TSR_OK ||
        tsr_auth_keys_init(n->auth, (int64_t)time(NULL)) != TSR_OK ||
        tsr_redis_new(rurl, 8, &n->redis) != TSR_OK)
        return 0;
    return tsr_auth_attach_redis(n->auth, n->redis) == TSR_OK;
}

static void node_close(node *n)
{
    tsr_redis_free(n->redis); /* first: its subscriber calls into auth */
    tsr_auth_free(n->auth);
    tsr_store_close(n->store);
    memset(n, 0, sizeof *n);
}

static int live(node *n)
{
    tsr_auth_hot_stats hs;
    tsr_auth_hot_stats_get(n->auth, &hs);
    return hs.subscribed;
}

static int wait_live(node *n)
{
    for (int ms = 0; ms < WAIT_BOUND_MS; ms += 5) {
        if (live(n))
            return 1;
        sleep_ms(5);
    }
    return 0;
}

/* Two nodes on a fresh store, both subscribed. */
static int pair_open(node *a, node *b)
{
    int k = snprintf(db_path, sizeof db_path, "/tmp/tsr_test_hot_%d_%d.db", (int)getpid(),
                     db_seq++);
    if (k < 0 || (size_t)k >= sizeof db_path)
        return 0;
    remove_db();
    return node_open(a, redis_url) && node_open(b, redis_url) && wait_live(a) && wait_live(b);
}

static void pair_close(node *a, node *b)
{
    node_close(a);
    node_close(b);
    remove_db();
}

static int mkuser(node *n, const char *name, tsr_user *out)
{
    return tsr_auth_user_create(n->auth, name, strlen(name), PW, PWLEN, "", (int64_t)time(NULL),
                                out) == TSR_OK;
}

/* A unique username per call (Redis outlives the stores). */
static const char *uname(const char *prefix)
{
    static char buf[64];
    static int seq;
    snprintf(buf, sizeof buf, "%s%d_%d", prefix, (int)getpid(), seq++);
    return buf;
}

static void revocation_reaches_the_other_instance_by_the_feed_alone(void)
{
    node a, b;
    tsr_user u;
    tsr_auth_grant g;
    tsr_bearer br;
    int64_t ra = 0, now = (int64_t)time(NULL);
    int seen = 0;

    memset(&g, 0, sizeof g);
    CHECK(pair_open(&a, &b));
    CHECK(mkuser(&a, uname("feed"), &u));
    CHECK(tsr_auth_password_grant(a.auth, u.username, strlen(u.username), PW, PWLEN, "", "127.0.0.1",
                                  "t", now, &g, &ra) == TSR_OK);
    CHECK(tsr_auth_bearer_verify(b.auth, g.access_token, g.access_len, TSR_VERIFY_REVOCATION_LIST,
                                 now, &br) == TSR_OK);
    CHECK(!tsr_auth_is_revoked(b.auth, g.session.id, NULL, now));
    CHECK(tsr_auth_session_revoke(a.auth, u.id, g.session.id) == TSR_OK);
    /* B runs no sync thread: only a message can tell it. */
    for (int ms = 0; ms < WAIT_BOUND_MS && !seen; ms += 2) {
        seen = tsr_auth_is_revoked(b.auth, g.session.id, NULL, now);
        if (!seen)
            sleep_ms(2);
    }
    CHECK(seen);
    CHECK(tsr_auth_bearer_verify(b.auth, g.access_token, g.access_len, TSR_VERIFY_REVOCATION_LIST,
                                 now, &br) == TSR_ERR_TOKEN_REVOKED);
    {
        tsr_auth_hot_stats hs;
        tsr_auth_hot_stats_get(a.auth, &hs);
        CHECK(hs.published >= 1);
        tsr_auth_hot_stats_get(b.auth, &hs);
        CHECK(hs.received >= 1);
    }
    tsr_auth_grant_wipe(&g);
    pair_close(&a, &b);
}

static void cookie_cache_hits_and_the_revoking_side_deletes_it(void)
{
    node a, b;
    tsr_user u, got;
    tsr_auth_cred c;
    tsr_session s;
    tsr_auth_hot_stats before, after;
    int64_t now = (int64_t)time(NULL);

    CHECK(pair_open(&a, &b));
    CHECK(mkuser(&a, uname("ck"), &u));
    CHECK(tsr_auth_session_create(a.auth, &u, "127.0.0.1", "t", now, &c) == TSR_OK);
    tsr_auth_hot_stats_get(b.auth, &before);
    CHECK(tsr_auth_session_resolve(b.auth, c.cookie, strlen(c.cookie), now, &s, &got) == TSR_OK);
    CHECK(tsr_auth_session_resolve(b.auth, c.cookie, strlen(c.cookie), now, &s, &got) == TSR_OK);
    CHECK(strcmp(got.id, u.id) == 0 && strcmp(s.id, c.session.id) == 0);
    tsr_auth_hot_stats_get(b.auth, &after);
    CHECK(after.session_hits == before.session_hits + 1);   /* the second look-up */
    CHECK(after.session_misses == before.session_misses + 1);
    /* A resolves from the entry B filled: same record. */
    CHECK(tsr_auth_session_resolve(a.auth, c.cookie, strlen(c.cookie), now, &s, &got) == TSR_OK);
    CHECK(strcmp(got.username, u.username) == 0 && s.expires_at == c.session.expires_at);
    /* Logout on A: B refuses at once, though the feed may not have arrived yet. */
    CHECK(tsr_auth_session_revoke(a.auth, u.id, c.session.id) == TSR_OK);
    CHECK(tsr_auth_session_resolve(b.auth, c.cookie, strlen(c.cookie), now, &s, &got) ==
          TSR_ERR_UNAUTHENTICATED);
    tsr_auth_cred_wipe(&c);
    pair_close(&a, &b);
}

static void stateful_check_is_cached_and_dropped_on_revoke(void)
{
    node a, b;
    tsr_user u;
    tsr_auth_grant g;
    tsr_bearer br;
    tsr_auth_hot_stats before, after;
    int64_t ra = 0, now = (int64_t)time(NULL);

    memset(&g, 0, sizeof g);
    CHECK(pair_open(&a, &b));
    CHECK(mkuser(&a, uname("sf"), &u));
    CHECK(tsr_auth_password_grant(a.auth, u.username, strlen(u.username), PW, PWLEN, "", "127.0.0.1",
                                  "t", now, &g, &ra) == TSR_OK);
    tsr_auth_hot_stats_get(b.auth, &before);
    CHECK(tsr_auth_bearer_verify(b.auth, g.access_token, g.access_len, TSR_VERIFY_STATEFUL, now,
                                 &br) == TSR_OK);
    CHECK(tsr_auth_bearer_verify(b.auth, g.access_token, g.access_len, TSR_VERIFY_STATEFUL, now,
                                 &br) == TSR_OK);
    CHECK(strcmp(br.username, u.username) == 0);
    tsr_auth_hot_stats_get(b.auth, &after);
    CHECK(after.session_hits == before.session_hits + 1);
    CHECK(tsr_auth_user_revoke_all(a.auth, u.id, NULL) == TSR_OK);
    CHECK(tsr_auth_bearer_verify(b.auth, g.access_token, g.access_len, TSR_VERIFY_STATEFUL, now,
                                 &br) == TSR_ERR_TOKEN_REVOKED);
    tsr_auth_grant_wipe(&g);
    pair_close(&a, &b);
}

static void role_change_reaches_cached_sessions(void)
{
    node a, b;
    tsr_user u, got;
    tsr_auth_cred c;
    tsr_session s;
    int64_t now = (int64_t)time(NULL);

    CHECK(pair_open(&a, &b));
    CHECK(mkuser(&a, uname("rl"), &u));
    CHECK(tsr_auth_session_create(a.auth, &u, NULL, NULL, now, &c) == TSR_OK);
    CHECK(tsr_auth_session_resolve(b.auth, c.cookie, strlen(c.cookie), now, &s, &got) == TSR_OK);
    CHECK(strcmp(got.roles, "") == 0);
    CHECK(tsr_auth_user_patch(a.auth, u.id, "admin", -1, now, NULL, NULL) == TSR_OK);
    CHECK(tsr_auth_session_resolve(b.auth, c.cookie, strlen(c.cookie), now, &s, &got) == TSR_OK);
    CHECK(strcmp(got.roles, "admin") == 0);
    /* Disabling ends the session everywhere at once. */
    CHECK(tsr_auth_user_patch(a.auth, u.id, NULL, 1, now, NULL, NULL) == TSR_OK);
    CHECK(tsr_auth_session_resolve(b.auth, c.cookie, strlen(c.cookie), now, &s, &got) ==
          TSR_ERR_UNAUTHENTICATED);
    tsr_auth_cred_wipe(&c);
    pair_close(&a, &b);
}

static void login_failures_count_on_every_instance(void)
{
    node a, b;
    const char *name = uname("rate");
    char copy[64];
    int64_t ra = 0, now = (int64_t)time(NULL);

    snprintf(copy, sizeof copy, "%s", name);
    CHECK(pair_open(&a, &b));
    CHECK(tsr_auth_login_check(b.auth, copy, strlen(copy), NULL, now, &ra) == TSR_OK);
    for (int i = 0; i < 3; i++)
        tsr_auth_login_record(a.auth, copy, strlen(copy), NULL, 0, now);
    /* B has no local failures for this name: only the shared bucket refuses. */
    CHECK(tsr_auth_login_check(b.auth, copy, strlen(copy), NULL, now, &ra) ==
          TSR_ERR_RATE_LIMITED);
    CHECK(ra >= 1);
    /* A success on B clears the username's bucket for A as well. */
    tsr_auth_login_record(b.auth, copy, strlen(copy), NULL, 1, now);
    CHECK(tsr_auth_login_check(a.auth, copy, strlen(copy), NULL, now, &ra) == TSR_OK);
    pair_close(&a, &b);
}

static void feed_down_means_bearer_checks_read_the_store(void)
{
    node a, b, dead;
    tsr_user u;
    tsr_auth_grant g;
    tsr_bearer br;
    char url[64];
    int64_t ra = 0, now = (int64_t)time(NULL);

    memset(&g, 0, sizeof g);
    CHECK(pair_open(&a, &b));
    /* A third instance whose Redis is unreachable: port 1 on loopback. */
    snprintf(url, sizeof url, "redis://127.0.0.1:1/0");
    CHECK(node_open(&dead, url));
    CHECK(!live(&dead));
    CHECK(mkuser(&a, uname("down"), &u));
    CHECK(tsr_auth_password_grant(a.auth, u.username, strlen(u.username), PW, PWLEN, "", "127.0.0.1",
                                  "t", now, &g, &ra) == TSR_OK);
    CHECK(tsr_auth_bearer_verify(dead.auth, g.access_token, g.access_len,
                                 TSR_VERIFY_REVOCATION_LIST, now, &br) == TSR_OK);
    CHECK(tsr_auth_session_revoke(a.auth, u.id, g.session.id) == TSR_OK);
    /* No feed, no sync thread: the check itself must read the revocation log. */
    CHECK(tsr_auth_bearer_verify(dead.auth, g.access_token, g.access_len,
                                 TSR_VERIFY_REVOCATION_LIST, now, &br) == TSR_ERR_TOKEN_REVOKED);
    /* Sessions still work through the store, with no cache. */
    {
        tsr_auth_cred c;
        tsr_session s;
        tsr_user got;
        CHECK(tsr_auth_session_create(dead.auth, &u, NULL, NULL, now, &c) == TSR_OK);
        CHECK(tsr_auth_session_resolve(dead.auth, c.cookie, strlen(c.cookie), now, &s, &got) ==
              TSR_OK);
        tsr_auth_cred_wipe(&c);
    }
    tsr_auth_grant_wipe(&g);
    node_close(&dead);
    pair_close(&a, &b);
}

static void messages_not_from_an_instance_are_ignored(void)
{
    node a, b;
    tsr_redis *raw = NULL;
    tsr_user u;
    tsr_auth_grant g;
    tsr_bearer br;
    char forged[256];
    int64_t ra = 0, now = (int64_t)time(NULL);
    static const char *const bad[] = {
        "",
        "1 1 4000000000 ses_x",              /* well formed, but unsigned */
        "1 1 4000000000 ses_x 00000000000000000000000000000000000000000000000000000000000000",
        "2 1 4000000000 ses_x",
        "1 3 4000000000 ses_x",
        "1 1 notanumber ses_x",
        "1 1 4000000000 ",
        "1 1 4000000000",
    };
    size_t before;
    int seen = 0;

    memset(&g, 0, sizeof g);
    CHECK(pair_open(&a, &b));
    CHECK(tsr_redis_new(redis_url, 2, &raw) == TSR_OK);
    before = tsr_auth_revoked_count(b.auth);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(tsr_redis_publish(raw, "tsr:revocations", bad[i], strlen(bad[i]), NULL) == TSR_OK);
    /* A MAC of the right shape that is not ours. */
    snprintf(forged, sizeof forged, "1 1 4000000000 ses_x %064d", 7);
    CHECK(tsr_redis_publish(raw, "tsr:revocations", forged, strlen(forged), NULL) == TSR_OK);
    /* Then a real one, from instance A: once it is in, the others were seen first. */
    CHECK(mkuser(&a, uname("msg"), &u));
    CHECK(tsr_auth_password_grant(a.auth, u.username, strlen(u.username), PW, PWLEN, "", "127.0.0.1",
                                  "t", now, &g, &ra) == TSR_OK);
    CHECK(tsr_auth_bearer_verify(b.auth, g.access_token, g.access_len, TSR_VERIFY_REVOCATION_LIST,
                                 now, &br) == TSR_OK);
    CHECK(tsr_auth_oauth_revoke(a.auth, g.access_token, g.access_len, "access_token", now) ==
          TSR_OK);
    for (int ms = 0; ms < WAIT_BOUND_MS && !seen; ms += 2) {
        seen = tsr_auth_is_revoked(b.auth, NULL, br.jti, now);
        if (!seen)
            sleep_ms(2);
    }
    CHECK(seen);
    CHECK(tsr_auth_revoked_count(b.auth) == before + 1);
    CHECK(!tsr_auth_is_revoked(b.auth, "ses_x", NULL, now));
    tsr_auth_grant_wipe(&g);
    tsr_redis_free(raw);
    pair_close(&a, &b);
}

/* "tsr:h:<hex SHA-256 of the secret>" of a cookie value. */
static int cookie_key(const char *cookie, char out[80])
{
    uint8_t secret[64], hash[32];
    size_t n = 0;
    if (tsr_b64url_decode(cookie, strlen(cookie), secret, sizeof secret, &n) != TSR_OK ||
        tsr_sha256(secret, n, hash) != TSR_OK)
        return 0;
    memcpy(out, "tsr:h:", 6);
    for (size_t i = 0; i < 32; i++)
        snprintf(out + 6 + 2 * i, 3, "%02x", hash[i]);
    return 1;
}

static void records_not_written_by_us_are_misses(void)
{
    node a, b;
    tsr_redis *raw = NULL;
    tsr_user u, got;
    tsr_auth_cred c;
    tsr_session s;
    char key[80], other[80], forged_cookie[64], val[2048];
    uint8_t rnd[32];
    size_t len = 0, flen = 0;
    tsr_auth_hot_stats before, after;
    int64_t now = (int64_t)time(NULL);

    CHECK(pair_open(&a, &b));
    CHECK(tsr_redis_new(redis_url, 2, &raw) == TSR_OK);
    CHECK(mkuser(&a, uname("mac"), &u));
    CHECK(tsr_auth_session_create(a.auth, &u, NULL, NULL, now, &c) == TSR_OK);
    CHECK(tsr_auth_session_resolve(b.auth, c.cookie, strlen(c.cookie), now, &s, &got) == TSR_OK);
    CHECK(cookie_key(c.cookie, key));
    CHECK(tsr_redis_get(raw, key, strlen(key), val, sizeof val, &len) == TSR_OK);
    /* The victim's valid record under the hash of a cookie the attacker made up. */
    CHECK(tsr_rand(rnd, sizeof rnd) == TSR_OK);
    CHECK(tsr_b64url_encode(rnd, sizeof rnd, forged_cookie, sizeof forged_cookie, &flen) ==
          TSR_OK);
    forged_cookie[flen] = '\0';
    CHECK(cookie_key(forged_cookie, other));
    CHECK(tsr_redis_set(raw, other, strlen(other), val, len, 60000) == TSR_OK);
    CHECK(tsr_auth_session_resolve(b.auth, forged_cookie, flen, now, &s, &got) ==
          TSR_ERR_UNAUTHENTICATED);
    /* A record edited in place (roles) is a miss: the store answers, unedited. */
    CHECK(tsr_auth_user_patch(a.auth, u.id, "", -1, now, NULL, NULL) == TSR_OK);
    CHECK(tsr_auth_session_resolve(b.auth, c.cookie, strlen(c.cookie), now, &s, &got) == TSR_OK);
    CHECK(tsr_redis_get(raw, key, strlen(key), val, sizeof val, &len) == TSR_OK);
    {
        char edited[2100];
        /* roles are field 17: insert "admin" before the tab that ends them */
        size_t tabs = 0, at = 0;
        for (size_t i = 0; i < len && tabs < 17; i++)
            if (val[i] == '\t' && ++tabs == 17)
                at = i;
        CHECK(at > 0);
        memcpy(edited, val, at);
        memcpy(edited + at, "admin", 5);
        memcpy(edited + at + 5, val + at, len - at);
        CHECK(tsr_redis_set(raw, key, strlen(key), edited, len + 5, 60000) == TSR_OK);
    }
    tsr_auth_hot_stats_get(b.auth, &before);
    CHECK(tsr_auth_session_resolve(b.auth, c.cookie, strlen(c.cookie), now, &s, &got) == TSR_OK);
    CHECK(strcmp(got.roles, "") == 0);
    tsr_auth_hot_stats_get(b.auth, &after);
    CHECK(after.session_misses == before.session_misses + 1);
    /* The unedited record, replayed after its validity, is a miss too. */
    CHECK(tsr_auth_session_resolve(b.auth, c.cookie, strlen(c.cookie), now + TSR_TEST_LATER, &s,
                                   &got) == TSR_OK);
    tsr_auth_hot_stats_get(b.auth, &before);
    CHECK(before.session_misses == after.session_misses + 1);
    tsr_auth_cred_wipe(&c);
    tsr_redis_free(raw);
    pair_close(&a, &b);
}

/* ---- a store read failing when the subscription comes up ----
 * revocation_since is wrapped to fail while fail_since is set. */
static tsr_store_ops flaky_ops;
static tsr_err (*real_since)(tsr_store *, int64_t, int64_t, tsr_revocation *, size_t, size_t *);
static atomic_int fail_since, since_calls;

static tsr_err flaky_since(tsr_store *s, int64_t after, int64_t since, tsr_revocation *out,
                           size_t max, size_t *n)
{
    atomic_fetch_add(&since_calls, 1);
    if (atomic_load(&fail_since)) {
        *n = 0;
        return TSR_ERR_UNAVAILABLE;
    }
    return real_since(s, after, since, out, max, n);
}

/* The read that follows a confirmed subscription fails: the feed stays off (the
 * store answers every check), and the next successful background sync turns it on;
 * it must not stay off for as long as the subscription lasts. */
static void feed_goes_live_once_a_read_after_subscribing_succeeds(void)
{
    node n;
    char url[160];
    int k;

    memset(&n, 0, sizeof n);
    k = snprintf(db_path, sizeof db_path, "/tmp/tsr_test_hot_%d_%d.db", (int)getpid(), db_seq++);
    CHECK(k > 0 && (size_t)k < sizeof db_path);
    remove_db();
    snprintf(url, sizeof url, "sqlite:%s", db_path);
    CHECK(tsr_store_open(url, &n.store) == TSR_OK);
    if (n.store == NULL)
        return;
    flaky_ops = *n.store->ops;
    real_since = flaky_ops.revocation_since;
    flaky_ops.revocation_since = flaky_since;
    n.store->ops = &flaky_ops;
    CHECK(tsr_auth_new(n.store, &base_opts, &n.auth) == TSR_OK);
    CHECK(tsr_auth_keys_init(n.auth, (int64_t)time(NULL)) == TSR_OK);
    CHECK(tsr_redis_new(redis_url, 4, &n.redis) == TSR_OK);
    atomic_store(&fail_since, 1);
    atomic_store(&since_calls, 0);
    CHECK(tsr_auth_attach_redis(n.auth, n.redis) == TSR_OK);
    /* Subscribed, and its read attempted (and failed). */
    for (int ms = 0; ms < WAIT_BOUND_MS &&
                     !(tsr_redis_subscribed(n.redis) && atomic_load(&since_calls) > 0);
         ms += 5)
        sleep_ms(5);
    CHECK(tsr_redis_subscribed(n.redis));
    CHECK(atomic_load(&since_calls) > 0);
    CHECK(!live(&n));
    atomic_store(&fail_since, 0);
    CHECK(tsr_auth_sync(n.auth, (int64_t)time(NULL)) == TSR_OK);
    CHECK(live(&n));
    node_close(&n);
    remove_db();
}

int main(void)
{
    redis_url = getenv("TSR_TEST_REDIS_URL");
    if (redis_url == NULL || redis_url[0] == '\0') {
        fprintf(stderr, "test_hot: TSR_TEST_REDIS_URL is not set (run under "
                        "tests/support/services.py --redis)\n");
        return 1;
    }
    if (tsr_crypto_init() != TSR_OK)
        return 1;
    TSR_RUN(revocation_reaches_the_other_instance_by_the_feed_alone);
    TSR_RUN(cookie_cache_hits_and_the_revoking_side_deletes_it);
    TSR_RUN(stateful_check_is_cached_and_dropped_on_revoke);
    TSR_RUN(role_change_reaches_cached_sessions);
    TSR_RUN(login_failures_count_on_every_instance);
    TSR_RUN(feed_down_means_bearer_checks_read_the_store);
    TSR_RUN(messages_not_from_an_instance_are_ignored);
    TSR_RUN(records_not_written_by_us_are_misses);
    TSR_RUN(feed_goes_live_once_a_read_after_subscribing_succeeds);
    return tsr_test_summary();
}
