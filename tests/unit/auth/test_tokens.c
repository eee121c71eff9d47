/* test_tokens.c: token and hybrid mode against a real SQLite store: keys and
 * their rotation, the password and refresh grants, rotation with the reuse
 * grace, reuse killing the family, racing refreshes, every revocation path
 * reaching access tokens per verify mode, the verified-token cache, RFC 7009
 * and RFC 7662, and a second context on the same store catching up by sync.
 * Times are near time(NULL): the store stamps revocations with its own clock. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "auth/auth.h"
#include "auth/tokens.h"
#include "harness.h"
#include "jose/jose.h"

#define PW "correct horse battery"
#define PWLEN (sizeof PW - 1)

static const tsr_auth_opts base_opts = {
    .pw = {8, 1, 1},
    .idle_ttl = 1800,
    .absolute_ttl = 86400,
    .max_per_user = 50,
    .login_max_failures = 100,
    .login_window = 900,
    .issuer = "https://auth.example",
    .reuse_grace = 10,
};

static char db_path[128];
static int db_seq;

typedef struct fixture {
    tsr_store *store;
    tsr_auth *auth;
    int64_t now;
} fixture;

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

static int open_url(char *url, size_t cap)
{
    int k = snprintf(url, cap, "sqlite:%s", db_path);
    return k > 0 && (size_t)k < cap;
}

static int fx_open_opts(fixture *f, const tsr_auth_opts *o)
{
    char url[160];

    memset(f, 0, sizeof *f);
    f->now = (int64_t)time(NULL);
    int k = snprintf(db_path, sizeof db_path, "/tmp/tsr_test_tokens_%d_%d.db", (int)getpid(),
                     db_seq++);
    if (k < 0 || (size_t)k >= sizeof db_path)
        return 0;
    remove_db();
    if (!open_url(url, sizeof url) || tsr_store_open(url, &f->store) != TSR_OK)
        return 0;
    if (tsr_auth_new(f->store, o, &f->auth) != TSR_OK)
        return 0;
    return tsr_auth_keys_init(f->auth, f->now) == TSR_OK;
}

static int fx_open(fixture *f)
{
    return fx_open_opts(f, &base_opts);
}

static void fx_close(fixture *f)
{
    tsr_auth_free(f->auth);
    tsr_store_close(f->store);
    remove_db();
    memset(f, 0, sizeof *f);
}

static int mkuser(fixture *f, const char *name, const char *roles, tsr_user *out)
{
    return tsr_auth_user_create(f->auth, name, strlen(name), PW, PWLEN, roles, f->now, out) ==
           TSR_OK;
}

static tsr_err grant(fixture *f, const char *name, tsr_auth_grant *g)
{
    int64_t ra = 0;
    return tsr_auth_password_grant(f->auth, name, strlen(name), PW, PWLEN, "read write",
                                   "127.0.0.1", "test", f->now, g, &ra);
}

static tsr_err verify(fixture *f, const char *tok, tsr_verify_mode mode, tsr_bearer *b)
{
    return tsr_auth_bearer_verify(f->auth, tok, strlen(tok), mode, f->now, b);
}

/* The kid in a token's header. */
static int token_kid(const char *tok, char *kid, size_t cap)
{
    json_t *h = NULL, *c = NULL;
    const char *k;
    int ok = 0;
    if (tsr_jwt_decode_unverified(tok, strlen(tok), &h, &c) != TSR_OK)
        return 0;
    k = json_string_value(json_object_get(h, "kid"));
    if (k != NULL && strlen(k) < cap) {
        memcpy(kid, k, strlen(k) + 1);
        ok = 1;
    }
    json_decref(h);
    json_decref(c);
    return ok;
}

static size_t jwks_count(fixture *f, int *has_private)
{
    char *js = NULL;
    size_t len = 0, n = 0;
    json_t *doc;
    *has_private = 0;
    if (tsr_auth_jwks_json(f->auth, &js, &len) != TSR_OK)
        return (size_t)-1;
    doc = json_loadb(js, len, 0, NULL);
    free(js);
    if (doc == NULL)
        return (size_t)-1;
    json_t *keys = json_object_get(doc, "keys");
    n = json_array_size(keys);
    for (size_t i = 0; i < n; i++) {
        json_t *k = json_array_get(keys, i);
        if (json_object_get(k, "d") != NULL || json_object_get(k, "k") != NULL)
            *has_private = 1;
    }
    json_decref(doc);
    return n;
}

/* ---- keys ---- */

static void keys_init_makes_active_and_next_once(void)
{
    fixture f;
    tsr_key_info keys[TSR_KEYS_MAX];
    size_t n = 0;
    int priv = 1;
    const char *algs[4];

    CHECK(fx_open(&f));
    CHECK(tsr_auth_keys_list(f.auth, keys, TSR_KEYS_MAX, &n) == TSR_OK);
    CHECK(n == 2);
    CHECK(n == 2 && strcmp(keys[0].state, "active") + strcmp(keys[1].state, "next") == 0);
    CHECK(n == 2 && strcmp(keys[0].alg, "ES256") == 0);
    CHECK(tsr_auth_keys_init(f.auth, f.now) == TSR_OK);
    CHECK(tsr_auth_keys_list(f.auth, keys, TSR_KEYS_MAX, &n) == TSR_OK && n == 2);
    CHECK(jwks_count(&f, &priv) == 2);
    CHECK(priv == 0);
    CHECK(tsr_auth_published_algs(f.auth, algs, 4) == 1 && strcmp(algs[0], "ES256") == 0);
    fx_close(&f);
}

static void rotation_keeps_old_tokens_and_signs_with_new_kid(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_grant g1, g2;
    tsr_bearer b;
    tsr_key_info keys[TSR_KEYS_MAX];
    char kid1[TSR_KID_STORE_MAX + 1], kid2[TSR_KID_STORE_MAX + 1], newkid[TSR_KID_STORE_MAX + 1];
    size_t n = 0;
    int priv = 1, retired = 0, active = 0, next = 0;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "alice", NULL, &u));
    CHECK(grant(&f, "alice", &g1) == TSR_OK);
    CHECK(token_kid(g1.access_token, kid1, sizeof kid1));
    CHECK(tsr_auth_keys_rotate(f.auth, TSR_ALG_INVALID, f.now, newkid) == TSR_OK);
    CHECK(grant(&f, "alice", &g2) == TSR_OK);
    CHECK(token_kid(g2.access_token, kid2, sizeof kid2));
    CHECK(strcmp(kid1, kid2) != 0);
    CHECK(strcmp(kid2, newkid) == 0);
    CHECK(verify(&f, g1.access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_OK);
    CHECK(verify(&f, g2.access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_OK);
    CHECK(tsr_auth_keys_list(f.auth, keys, TSR_KEYS_MAX, &n) == TSR_OK);
    for (size_t i = 0; i < n; i++) {
        retired += strcmp(keys[i].state, "retired") == 0 && strcmp(keys[i].kid, kid1) == 0;
        active += strcmp(keys[i].state, "active") == 0;
        next += strcmp(keys[i].state, "next") == 0;
        if (strcmp(keys[i].state, "retired") == 0)
            CHECK(keys[i].publish_until >= f.now + 900);
    }
    CHECK(n == 3 && retired == 1 && active == 1 && next == 1);
    CHECK(jwks_count(&f, &priv) == 3);
    /* Past the retired key's publish_until it leaves the set and its tokens fail. */
    f.now += 900 + 31 + 1;
    CHECK(tsr_auth_sync(f.auth, f.now) == TSR_OK);
    CHECK(jwks_count(&f, &priv) == 2);
    CHECK(verify(&f, g1.access_token, TSR_VERIFY_STATELESS, &b) != TSR_OK);
    /* Rotation to another algorithm. */
    CHECK(tsr_auth_keys_rotate(f.auth, TSR_ALG_EDDSA, f.now, newkid) == TSR_OK);
    tsr_auth_grant_wipe(&g2);
    CHECK(grant(&f, "alice", &g2) == TSR_OK);
    CHECK(token_kid(g2.access_token, kid2, sizeof kid2) && strcmp(kid2, newkid) == 0);
    CHECK(verify(&f, g2.access_token, TSR_VERIFY_STATEFUL, &b) == TSR_OK);
    {
        const char *algs[4];
        size_t na = tsr_auth_published_algs(f.auth, algs, 4);
        int eddsa = 0;
        for (size_t i = 0; i < na; i++)
            eddsa += strcmp(algs[i], "EdDSA") == 0;
        CHECK(eddsa == 1);
    }
    tsr_auth_grant_wipe(&g1);
    tsr_auth_grant_wipe(&g2);
    fx_close(&f);
}

static void hmac_keys_are_never_published(void)
{
    fixture f;
    tsr_auth_opts o = base_opts;
    tsr_user u;
    tsr_auth_grant g;
    tsr_bearer b;
    int priv = 1;
    const char *algs[4];

    o.alg = TSR_ALG_HS256;
    CHECK(fx_open_opts(&f, &o));
    CHECK(jwks_count(&f, &priv) == 0);
    CHECK(tsr_auth_published_algs(f.auth, algs, 4) == 0);
    CHECK(mkuser(&f, "hs", NULL, &u));
    CHECK(grant(&f, "hs", &g) == TSR_OK);
    CHECK(verify(&f, g.access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_OK);
    tsr_auth_grant_wipe(&g);
    fx_close(&f);
}

/* ---- grants and verification ---- */

static void password_grant_issues_bound_tokens(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_grant g;
    tsr_bearer b;
    tsr_session list[8];
    size_t n = 0;
    int64_t ra = 0;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "bob", "admin,dev", &u));
    CHECK(grant(&f, "bob", &g) == TSR_OK);
    CHECK(strlen(g.refresh_token) == TSR_REFRESH_TOKEN_CHARS);
    CHECK(g.expires_in == 900);
    CHECK(strcmp(g.scope, "read write") == 0);
    CHECK(g.session.kind == TSR_SESSION_REFRESH);
    CHECK(g.session.expires_at == f.now + 30 * 86400);
    CHECK(verify(&f, g.access_token, TSR_VERIFY_STATELESS, &b) == TSR_OK);
    CHECK(strcmp(b.sub, u.id) == 0);
    CHECK(strcmp(b.sid, g.session.id) == 0);
    CHECK(strcmp(b.username, "bob") == 0);
    CHECK(strcmp(b.roles, "admin,dev") == 0);
    CHECK(strcmp(b.scope, "read write") == 0);
    CHECK(b.exp == f.now + 900);
    CHECK(strlen(b.jti) == 22);
    CHECK(verify(&f, g.access_token, TSR_VERIFY_STATEFUL, &b) == TSR_OK);
    /* The family is a session of kind refresh in the user's list. */
    CHECK(tsr_auth_session_list(f.auth, u.id, f.now, list, 8, &n) == TSR_OK);
    CHECK(n == 1 && list[0].kind == TSR_SESSION_REFRESH && strcmp(list[0].id, b.sid) == 0);
    /* Wrong password and bad scope. */
    tsr_auth_grant_wipe(&g);
    CHECK(tsr_auth_password_grant(f.auth, "bob", 3, "wrong password", 14, "", NULL, NULL, f.now,
                                  &g, &ra) == TSR_ERR_INVALID_GRANT);
    CHECK(g.access_token[0] == '\0');
    CHECK(tsr_auth_password_grant(f.auth, "bob", 3, PW, PWLEN, "a  b", NULL, NULL, f.now, &g,
                                  &ra) == TSR_ERR_INVALID);
    CHECK(tsr_auth_password_grant(f.auth, "bob", 3, PW, PWLEN, "bad\"scope", NULL, NULL, f.now,
                                  &g, &ra) == TSR_ERR_INVALID);
    CHECK(tsr_auth_scope_check("", 0) == TSR_OK);
    CHECK(tsr_auth_scope_check("a b:c", 5) == TSR_OK);
    CHECK(tsr_auth_scope_check("a ", 2) == TSR_ERR_INVALID);
    CHECK(tsr_auth_scope_check(" a", 2) == TSR_ERR_INVALID);
    fx_close(&f);
}

static void forged_and_foreign_tokens_are_refused(void)
{
    fixture f, other;
    tsr_user u;
    tsr_auth_grant g;
    tsr_bearer b;
    char *bad;

    CHECK(fx_open(&f));
    CHECK(fx_open(&other)); /* a different key set (same issuer) */
    CHECK(mkuser(&other, "eve", NULL, &u));
    CHECK(grant(&other, "eve", &g) == TSR_OK);
    CHECK(verify(&f, g.access_token, TSR_VERIFY_STATELESS, &b) == TSR_ERR_TOKEN_KID);
    CHECK(verify(&other, g.access_token, TSR_VERIFY_STATELESS, &b) == TSR_OK);
    /* One flipped signature character. */
    bad = strdup(g.access_token);
    CHECK(bad != NULL);
    if (bad != NULL) {
        size_t n = strlen(bad);
        bad[n - 5] = bad[n - 5] == 'A' ? 'B' : 'A';
        CHECK(verify(&other, bad, TSR_VERIFY_STATELESS, &b) == TSR_ERR_TOKEN_SIGNATURE);
        CHECK(b.sub[0] == '\0');
        free(bad);
    }
    CHECK(verify(&other, "", TSR_VERIFY_STATELESS, &b) == TSR_ERR_TOKEN_MALFORMED);
    CHECK(verify(&other, "a.b.c", TSR_VERIFY_STATELESS, &b) != TSR_OK);
    /* Expired beyond the leeway. */
    other.now += 900 + 31;
    CHECK(verify(&other, g.access_token, TSR_VERIFY_STATELESS, &b) == TSR_ERR_TOKEN_EXPIRED);
    tsr_auth_grant_wipe(&g);
    fx_close(&other);
    fx_close(&f);
}

/* ---- refresh rotation ---- */

static void refresh_rotates_and_grace_returns_the_same_successor(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_grant g0, g1, g1b, g2, bad;
    tsr_bearer b;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "carol", NULL, &u));
    CHECK(grant(&f, "carol", &g0) == TSR_OK);
    CHECK(tsr_auth_refresh_grant(f.auth, g0.refresh_token, strlen(g0.refresh_token), f.now, &g1) ==
          TSR_OK);
    CHECK(strcmp(g1.refresh_token, g0.refresh_token) != 0);
    CHECK(strcmp(g1.session.id, g0.session.id) == 0);
    CHECK(strcmp(g1.scope, "read write") == 0);
    CHECK(verify(&f, g1.access_token, TSR_VERIFY_STATEFUL, &b) == TSR_OK);
    CHECK(strcmp(b.sid, g0.session.id) == 0);
    /* The spent token within the grace: the identical successor, a fresh access token. */
    f.now += 5;
    CHECK(tsr_auth_refresh_grant(f.auth, g0.refresh_token, strlen(g0.refresh_token), f.now,
                                 &g1b) == TSR_OK);
    CHECK(strcmp(g1b.refresh_token, g1.refresh_token) == 0);
    CHECK(strcmp(g1b.access_token, g1.access_token) != 0);
    /* The successor rotates on. */
    CHECK(tsr_auth_refresh_grant(f.auth, g1.refresh_token, strlen(g1.refresh_token), f.now, &g2) ==
          TSR_OK);
    CHECK(strcmp(g2.refresh_token, g1.refresh_token) != 0);
    /* g0 is now two generations old: reuse, the family dies. */
    CHECK(tsr_auth_refresh_grant(f.auth, g0.refresh_token, strlen(g0.refresh_token), f.now,
                                 &bad) == TSR_ERR_INVALID_GRANT);
    CHECK(bad.refresh_token[0] == '\0');
    CHECK(tsr_auth_refresh_grant(f.auth, g2.refresh_token, strlen(g2.refresh_token), f.now,
                                 &bad) == TSR_ERR_INVALID_GRANT);
    CHECK(verify(&f, g2.access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    CHECK(verify(&f, g1.access_token, TSR_VERIFY_STATEFUL, &b) == TSR_ERR_TOKEN_REVOKED);
    /* Stateless mode does not look: the documented trade-off. */
    CHECK(verify(&f, g2.access_token, TSR_VERIFY_STATELESS, &b) == TSR_OK);
    tsr_auth_grant_wipe(&g0);
    tsr_auth_grant_wipe(&g1);
    tsr_auth_grant_wipe(&g1b);
    tsr_auth_grant_wipe(&g2);
    fx_close(&f);
}

static void reuse_after_grace_kills_the_family(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_grant g0, g1, bad;
    tsr_bearer b;
    tsr_token_info ti;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "dave", NULL, &u));
    CHECK(grant(&f, "dave", &g0) == TSR_OK);
    CHECK(tsr_auth_refresh_grant(f.auth, g0.refresh_token, strlen(g0.refresh_token), f.now, &g1) ==
          TSR_OK);
    f.now += 11;
    CHECK(tsr_auth_refresh_grant(f.auth, g0.refresh_token, strlen(g0.refresh_token), f.now,
                                 &bad) == TSR_ERR_INVALID_GRANT);
    CHECK(tsr_auth_refresh_grant(f.auth, g1.refresh_token, strlen(g1.refresh_token), f.now,
                                 &bad) == TSR_ERR_INVALID_GRANT);
    CHECK(verify(&f, g1.access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    CHECK(verify(&f, g0.access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    CHECK(tsr_auth_introspect(f.auth, g1.refresh_token, strlen(g1.refresh_token), f.now, &ti) ==
          TSR_OK);
    CHECK(ti.active == 0);
    tsr_auth_grant_wipe(&g0);
    tsr_auth_grant_wipe(&g1);
    fx_close(&f);
}

static void refresh_refuses_garbage_expired_and_disabled(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_grant g0, bad;
    char tok[TSR_REFRESH_TOKEN_CHARS + 1];
    tsr_auth_opts o = base_opts;

    o.refresh_idle_ttl = 100;
    CHECK(fx_open_opts(&f, &o));
    CHECK(mkuser(&f, "erin", NULL, &u));
    CHECK(tsr_auth_refresh_grant(f.auth, "", 0, f.now, &bad) == TSR_ERR_INVALID_GRANT);
    CHECK(tsr_auth_refresh_grant(f.auth, "abc", 3, f.now, &bad) == TSR_ERR_INVALID_GRANT);
    CHECK(grant(&f, "erin", &g0) == TSR_OK);
    memcpy(tok, g0.refresh_token, sizeof tok);
    tok[0] = tok[0] == 'A' ? 'B' : 'A';
    CHECK(tsr_auth_refresh_grant(f.auth, tok, strlen(tok), f.now, &bad) == TSR_ERR_INVALID_GRANT);
    /* 44 characters, or a non-canonical last character. */
    CHECK(tsr_auth_refresh_grant(f.auth, g0.refresh_token, TSR_REFRESH_TOKEN_CHARS - 1, f.now,
                                 &bad) == TSR_ERR_INVALID_GRANT);
    /* Idle expiry. */
    CHECK(tsr_auth_refresh_grant(f.auth, g0.refresh_token, strlen(g0.refresh_token),
                                 f.now + 101, &bad) == TSR_ERR_INVALID_GRANT);
    /* Disabled user: refused, and the family gone. */
    CHECK(tsr_auth_user_patch(f.auth, u.id, NULL, 1, f.now, NULL, NULL) == TSR_OK);
    CHECK(tsr_auth_refresh_grant(f.auth, g0.refresh_token, strlen(g0.refresh_token), f.now,
                                 &bad) == TSR_ERR_INVALID_GRANT);
    tsr_auth_grant_wipe(&g0);
    fx_close(&f);
}

typedef struct race_arg {
    fixture *f;
    const char *token;
    pthread_barrier_t *bar;
    tsr_err rc;
    char successor[TSR_REFRESH_TOKEN_CHARS + 1];
} race_arg;

static void *race_main(void *p)
{
    race_arg *r = p;
    tsr_auth_grant g;
    pthread_barrier_wait(r->bar);
    r->rc = tsr_auth_refresh_grant(r->f->auth, r->token, strlen(r->token), r->f->now, &g);
    memcpy(r->successor, g.refresh_token, sizeof r->successor);
    tsr_auth_grant_wipe(&g);
    return NULL;
}

static void racing_refreshes_yield_one_successor(void)
{
    enum { N = 8 };
    fixture f;
    tsr_user u;
    tsr_auth_grant g0, g1;
    pthread_t th[N];
    race_arg args[N];
    pthread_barrier_t bar;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "frank", NULL, &u));
    CHECK(grant(&f, "frank", &g0) == TSR_OK);
    CHECK(pthread_barrier_init(&bar, NULL, N) == 0);
    for (int i = 0; i < N; i++) {
        args[i] = (race_arg){&f, g0.refresh_token, &bar, TSR_ERR_INTERNAL, ""};
        CHECK(pthread_create(&th[i], NULL, race_main, &args[i]) == 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    for (int i = 0; i < N; i++) {
        CHECKF(args[i].rc == TSR_OK, "thread %d: %s", i, tsr_err_text(args[i].rc));
        CHECKF(strcmp(args[i].successor, args[0].successor) == 0, "thread %d", i);
    }
    /* The one successor is live and rotates on. */
    CHECK(tsr_auth_refresh_grant(f.auth, args[0].successor, strlen(args[0].successor), f.now,
                                 &g1) == TSR_OK);
    tsr_auth_grant_wipe(&g0);
    tsr_auth_grant_wipe(&g1);
    fx_close(&f);
}

/* ---- revocation paths ---- */

static void every_revocation_path_reaches_access_tokens(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_grant g[6];
    tsr_auth_cred c;
    tsr_bearer b;
    size_t n = 0;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "gina", NULL, &u));
    for (int i = 0; i < 6; i++)
        CHECK(grant(&f, "gina", &g[i]) == TSR_OK);
    /* Own revoke of one session (logout, DELETE /v1/sessions/{id}). */
    CHECK(tsr_auth_session_revoke(f.auth, u.id, g[0].session.id) == TSR_OK);
    CHECK(verify(&f, g[0].access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    CHECK(verify(&f, g[0].access_token, TSR_VERIFY_STATEFUL, &b) == TSR_ERR_TOKEN_REVOKED);
    CHECK(verify(&f, g[0].access_token, TSR_VERIFY_STATELESS, &b) == TSR_OK);
    CHECK(verify(&f, g[1].access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_OK);
    /* RFC 7009 with the refresh token. */
    CHECK(tsr_auth_oauth_revoke(f.auth, g[1].refresh_token, strlen(g[1].refresh_token), NULL,
                                f.now) == TSR_OK);
    CHECK(verify(&f, g[1].access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    /* RFC 7009 with an access token: that jti only. */
    CHECK(tsr_auth_oauth_revoke(f.auth, g[2].access_token, strlen(g[2].access_token),
                                "access_token", f.now) == TSR_OK);
    CHECK(verify(&f, g[2].access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    {
        tsr_auth_grant again;
        CHECK(tsr_auth_refresh_grant(f.auth, g[2].refresh_token, strlen(g[2].refresh_token), f.now,
                                     &again) == TSR_OK);
        CHECK(verify(&f, again.access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_OK);
        tsr_auth_grant_wipe(&again);
    }
    /* Unknown and garbage tokens are fine. */
    CHECK(tsr_auth_oauth_revoke(f.auth, "garbage", 7, NULL, f.now) == TSR_OK);
    /* Revoke the others from a cookie session. */
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, f.now, &c) == TSR_OK);
    CHECK(tsr_auth_session_revoke_others(f.auth, u.id, c.session.id, &n) == TSR_OK);
    CHECK(verify(&f, g[3].access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    /* Admin: revoke all, disable, delete. */
    tsr_auth_grant_wipe(&g[4]);
    CHECK(grant(&f, "gina", &g[4]) == TSR_OK);
    CHECK(tsr_auth_user_revoke_all(f.auth, u.id, &n) == TSR_OK);
    CHECK(verify(&f, g[4].access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    tsr_auth_grant_wipe(&g[4]);
    CHECK(grant(&f, "gina", &g[4]) == TSR_OK);
    CHECK(tsr_auth_user_patch(f.auth, u.id, NULL, 1, f.now, NULL, &n) == TSR_OK);
    CHECK(verify(&f, g[4].access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    CHECK(tsr_auth_user_patch(f.auth, u.id, NULL, 0, f.now, NULL, &n) == TSR_OK);
    tsr_auth_grant_wipe(&g[5]);
    CHECK(grant(&f, "gina", &g[5]) == TSR_OK);
    CHECK(tsr_auth_user_delete(f.auth, u.id) == TSR_OK);
    CHECK(verify(&f, g[5].access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    CHECK(tsr_auth_revoked_count(f.auth) >= 6);
    tsr_auth_cred_wipe(&c);
    for (int i = 0; i < 6; i++)
        tsr_auth_grant_wipe(&g[i]);
    fx_close(&f);
}

static void cookie_session_token_dies_with_the_session(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_cred c;
    tsr_auth_grant g;
    tsr_bearer b;
    tsr_session s;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "hank", "ops", &u));
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, f.now, &c) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, strlen(c.cookie), f.now, &s, &u) == TSR_OK);
    CHECK(tsr_auth_access_for_session(f.auth, &s, &u, f.now, &g) == TSR_OK);
    CHECK(g.refresh_token[0] == '\0');
    CHECK(verify(&f, g.access_token, TSR_VERIFY_STATEFUL, &b) == TSR_OK);
    CHECK(strcmp(b.sid, c.session.id) == 0 && strcmp(b.roles, "ops") == 0);
    CHECK(tsr_auth_session_revoke(f.auth, u.id, c.session.id) == TSR_OK);
    CHECK(verify(&f, g.access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    tsr_auth_grant_wipe(&g);
    tsr_auth_cred_wipe(&c);
    fx_close(&f);
}

static void cache_hits_still_honour_revocation(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_grant g;
    tsr_bearer b;
    uint64_t hits = 0, misses = 0;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "ivy", NULL, &u));
    CHECK(grant(&f, "ivy", &g) == TSR_OK);
    CHECK(verify(&f, g.access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_OK);
    CHECK(b.cached == 0);
    CHECK(verify(&f, g.access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_OK);
    CHECK(b.cached == 1);
    CHECK(strcmp(b.sid, g.session.id) == 0);
    tsr_auth_cache_stats(f.auth, &hits, &misses);
    CHECK(hits >= 1 && misses >= 1);
    CHECK(tsr_auth_session_revoke(f.auth, u.id, g.session.id) == TSR_OK);
    CHECK(verify(&f, g.access_token, TSR_VERIFY_REVOCATION_LIST, &b) == TSR_ERR_TOKEN_REVOKED);
    /* A cached entry still expires. */
    f.now += 900 + 31;
    CHECK(verify(&f, g.access_token, TSR_VERIFY_STATELESS, &b) == TSR_ERR_TOKEN_EXPIRED);
    tsr_auth_grant_wipe(&g);
    fx_close(&f);
}

static void introspection_reports_live_tokens_only(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_grant g, g1;
    tsr_token_info ti;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "jack", NULL, &u));
    CHECK(grant(&f, "jack", &g) == TSR_OK);
    CHECK(tsr_auth_introspect(f.auth, g.access_token, g.access_len, f.now, &ti) == TSR_OK);
    CHECK(ti.active == 1 && strcmp(ti.token_type, "access_token") == 0);
    CHECK(strcmp(ti.sub, u.id) == 0 && strcmp(ti.sid, g.session.id) == 0);
    CHECK(strcmp(ti.scope, "read write") == 0 && ti.exp == f.now + 900 && ti.iat == f.now);
    CHECK(tsr_auth_introspect(f.auth, g.refresh_token, strlen(g.refresh_token), f.now, &ti) ==
          TSR_OK);
    CHECK(ti.active == 1 && strcmp(ti.token_type, "refresh_token") == 0);
    CHECK(strcmp(ti.sid, g.session.id) == 0);
    /* After a rotation the spent refresh token is inactive. */
    CHECK(tsr_auth_refresh_grant(f.auth, g.refresh_token, strlen(g.refresh_token), f.now, &g1) ==
          TSR_OK);
    CHECK(tsr_auth_introspect(f.auth, g.refresh_token, strlen(g.refresh_token), f.now, &ti) ==
          TSR_OK);
    CHECK(ti.active == 0 && ti.sub[0] == '\0');
    CHECK(tsr_auth_introspect(f.auth, "nope", 4, f.now, &ti) == TSR_OK && ti.active == 0);
    CHECK(tsr_auth_session_revoke(f.auth, u.id, g.session.id) == TSR_OK);
    CHECK(tsr_auth_introspect(f.auth, g.access_token, g.access_len, f.now, &ti) == TSR_OK);
    CHECK(ti.active == 0);
    tsr_auth_grant_wipe(&g);
    tsr_auth_grant_wipe(&g1);
    fx_close(&f);
}

/* Another process on the same store (the CLI, a second instance) learns of
 * revocations and key changes by sync. */
static void second_context_catches_up_by_sync(void)
{
    fixture f;
    tsr_auth *b2 = NULL;
    tsr_user u;
    tsr_auth_grant g, g2;
    tsr_bearer b;
    char kid[TSR_KID_STORE_MAX + 1];

    CHECK(fx_open(&f));
    CHECK(tsr_auth_new(f.store, &base_opts, &b2) == TSR_OK);
    CHECK(tsr_auth_keys_init(b2, f.now) == TSR_OK);
    CHECK(mkuser(&f, "kate", NULL, &u));
    CHECK(grant(&f, "kate", &g) == TSR_OK);
    CHECK(tsr_auth_bearer_verify(b2, g.access_token, g.access_len, TSR_VERIFY_REVOCATION_LIST,
                                 f.now, &b) == TSR_OK);
    CHECK(tsr_auth_session_revoke(f.auth, u.id, g.session.id) == TSR_OK);
    CHECK(tsr_auth_sync(b2, f.now) == TSR_OK);
    CHECK(tsr_auth_bearer_verify(b2, g.access_token, g.access_len, TSR_VERIFY_REVOCATION_LIST,
                                 f.now, &b) == TSR_ERR_TOKEN_REVOKED);
    /* A rotation made by the first: the second verifies the new kid after sync. */
    CHECK(tsr_auth_keys_rotate(f.auth, TSR_ALG_RS256, f.now, kid) == TSR_OK);
    CHECK(grant(&f, "kate", &g2) == TSR_OK);
    CHECK(tsr_auth_sync(b2, f.now + 2) == TSR_OK);
    CHECK(tsr_auth_bearer_verify(b2, g2.access_token, g2.access_len, TSR_VERIFY_REVOCATION_LIST,
                                 f.now, &b) == TSR_OK);
    /* A fresh context loads the revoked set at start. */
    tsr_auth_free(b2);
    b2 = NULL;
    CHECK(tsr_auth_new(f.store, &base_opts, &b2) == TSR_OK);
    CHECK(tsr_auth_keys_init(b2, f.now) == TSR_OK);
    CHECK(tsr_auth_sync(b2, f.now) == TSR_OK);
    CHECK(tsr_auth_is_revoked(b2, g.session.id, NULL, f.now));
    tsr_auth_free(b2);
    tsr_auth_grant_wipe(&g);
    tsr_auth_grant_wipe(&g2);
    fx_close(&f);
}

static void automatic_rotation_happens_when_due(void)
{
    fixture f;
    tsr_auth_opts o = base_opts;
    tsr_key_info before[TSR_KEYS_MAX], after[TSR_KEYS_MAX];
    size_t nb = 0, na = 0;
    const char *active_before = NULL, *active_after = NULL;

    o.key_rotation = 3600;
    CHECK(fx_open_opts(&f, &o));
    CHECK(tsr_auth_keys_list(f.auth, before, TSR_KEYS_MAX, &nb) == TSR_OK);
    /* Not yet due: nothing changes. */
    CHECK(tsr_auth_sync(f.auth, f.now + 3599) == TSR_OK);
    CHECK(tsr_auth_keys_list(f.auth, after, TSR_KEYS_MAX, &na) == TSR_OK);
    CHECK(na == nb);
    CHECK(tsr_auth_sync(f.auth, f.now + 3601) == TSR_OK);
    CHECK(tsr_auth_keys_list(f.auth, after, TSR_KEYS_MAX, &na) == TSR_OK);
    CHECK(na == nb + 1);
    for (size_t i = 0; i < nb; i++)
        if (strcmp(before[i].state, "active") == 0)
            active_before = before[i].kid;
    for (size_t i = 0; i < na; i++)
        if (strcmp(after[i].state, "active") == 0)
            active_after = after[i].kid;
    CHECK(active_before != NULL && active_after != NULL &&
          strcmp(active_before, active_after) != 0);
    fx_close(&f);
}

/* ---- a background reload racing a rotation ----
 * The store's key_list is wrapped: the first listing after `hold_list` is set
 * pauses, having read the keys, until the test says go. */
static tsr_store_ops held_ops;
static tsr_err (*real_key_list)(tsr_store *, tsr_key_record *, size_t, size_t *);
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int hold_list, listed, go, rotated;

static tsr_err held_key_list(tsr_store *s, tsr_key_record *out, size_t max, size_t *n)
{
    tsr_err rc = real_key_list(s, out, max, n);
    pthread_mutex_lock(&hold_mu);
    if (hold_list) {
        hold_list = 0;
        listed = 1;
        pthread_cond_broadcast(&hold_cv);
        while (!go)
            pthread_cond_wait(&hold_cv, &hold_mu);
    }
    pthread_mutex_unlock(&hold_mu);
    return rc;
}

typedef struct reload_arg {
    fixture *f;
    char kid[TSR_KID_STORE_MAX + 1];
    tsr_err rc;
} reload_arg;

static void *race_sync(void *arg)
{
    reload_arg *r = arg;
    r->rc = tsr_auth_sync(r->f->auth, r->f->now + 10); /* keys are due for a check */
    return NULL;
}

static void *race_rotate(void *arg)
{
    reload_arg *r = arg;
    r->rc = tsr_auth_keys_rotate(r->f->auth, TSR_ALG_ES256, r->f->now, r->kid);
    pthread_mutex_lock(&hold_mu);
    rotated = 1;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
    return NULL;
}

/* A background reload lists the keys, then a rotation commits and reloads; the
 * background reload must not swap its stale ring in afterwards: the next token is
 * signed with the new key. (Without the reload lock the rotation finishes during
 * the pause below and the stale ring wins.) */
static void stale_reload_never_undoes_a_rotation(void)
{
    fixture f;
    reload_arg rs, rr;
    pthread_t ts, tr;
    tsr_auth_grant g;
    char kid[TSR_KID_STORE_MAX + 1];

    memset(&g, 0, sizeof g);
    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "racer", "", NULL));
    held_ops = *f.store->ops;
    real_key_list = held_ops.key_list;
    held_ops.key_list = held_key_list;
    f.store->ops = &held_ops;
    hold_list = 1;
    listed = go = rotated = 0;
    memset(&rs, 0, sizeof rs);
    memset(&rr, 0, sizeof rr);
    rs.f = rr.f = &f;
    CHECK(pthread_create(&ts, NULL, race_sync, &rs) == 0);
    pthread_mutex_lock(&hold_mu);
    while (!listed)
        pthread_cond_wait(&hold_cv, &hold_mu);
    pthread_mutex_unlock(&hold_mu);
    CHECK(pthread_create(&tr, NULL, race_rotate, &rr) == 0);
    /* Give the rotation the chance to finish first (it must not, or must not
     * matter); a bound, not an assertion. */
    pthread_mutex_lock(&hold_mu);
    for (int i = 0; i < 50 && !rotated; i++) {
        struct timespec ts10;
        clock_gettime(CLOCK_REALTIME, &ts10);
        ts10.tv_nsec += 10000000L;
        if (ts10.tv_nsec >= 1000000000L) {
            ts10.tv_sec++;
            ts10.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&hold_cv, &hold_mu, &ts10);
    }
    go = 1;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
    pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    CHECK(rr.rc == TSR_OK);
    CHECK(grant(&f, "racer", &g) == TSR_OK);
    CHECK(token_kid(g.access_token, kid, sizeof kid));
    CHECKF(strcmp(kid, rr.kid) == 0, "signed with %s, rotated to %s", kid, rr.kid);
    tsr_auth_grant_wipe(&g);
    fx_close(&f);
}

int main(void)
{
    if (tsr_crypto_init() != TSR_OK)
        return 1;
    tsr_log_set_fd(-1);
    TSR_RUN(keys_init_makes_active_and_next_once);
    TSR_RUN(rotation_keeps_old_tokens_and_signs_with_new_kid);
    TSR_RUN(hmac_keys_are_never_published);
    TSR_RUN(password_grant_issues_bound_tokens);
    TSR_RUN(forged_and_foreign_tokens_are_refused);
    TSR_RUN(refresh_rotates_and_grace_returns_the_same_successor);
    TSR_RUN(reuse_after_grace_kills_the_family);
    TSR_RUN(refresh_refuses_garbage_expired_and_disabled);
    TSR_RUN(racing_refreshes_yield_one_successor);
    TSR_RUN(every_revocation_path_reaches_access_tokens);
    TSR_RUN(cookie_session_token_dies_with_the_session);
    TSR_RUN(cache_hits_still_honour_revocation);
    TSR_RUN(introspection_reports_live_tokens_only);
    TSR_RUN(second_context_catches_up_by_sync);
    TSR_RUN(automatic_rotation_happens_when_due);
    TSR_RUN(stale_reload_never_undoes_a_rotation);
    return tsr_test_summary();
}
