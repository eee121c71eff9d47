/* test_auth.c: accounts, passwords, cookie sessions, CSRF, rate limits and the
 * admin key, against a real SQLite store in /tmp. Time is passed in, never slept;
 * Argon2id runs with libsodium's smallest cost (8 KiB, one pass) to stay fast. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_int.h" /* tsr_auth_password_change_commit: forcing interleavings */
#include "common/log.h"
#include "harness.h"
#include "jose/jose.h"

#define T0 ((int64_t)1700000000)
#define PW "correct horse battery"
#define PWLEN (sizeof PW - 1)

static const tsr_auth_opts base_opts = {
    .pw = {8, 1, 1},
    .idle_ttl = 1800,
    .absolute_ttl = 86400,
    .max_per_user = 3,
    .login_max_failures = 3,
    .login_window = 900,
};

static char db_path[128];
static int db_seq;

typedef struct fixture {
    tsr_store *store;
    tsr_auth *auth;
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

static int fx_open_opts(fixture *f, const tsr_auth_opts *o)
{
    char url[160];

    memset(f, 0, sizeof *f);
    int k = snprintf(db_path, sizeof db_path, "/tmp/tsr_test_auth_%d_%d.db", (int)getpid(),
                     db_seq++);
    if (k < 0 || (size_t)k >= sizeof db_path)
        return 0;
    remove_db();
    k = snprintf(url, sizeof url, "sqlite:%s", db_path);
    if (k < 0 || (size_t)k >= sizeof url)
        return 0;
    if (tsr_store_open(url, &f->store) != TSR_OK)
        return 0;
    return tsr_auth_new(f->store, o, &f->auth) == TSR_OK;
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

static int mkuser(fixture *f, const char *name, tsr_user *out)
{
    return tsr_auth_user_create(f->auth, name, strlen(name), PW, PWLEN, NULL, T0, out) == TSR_OK;
}

/* ---- passwords ---- */

static void password_policy_is_8_to_256_bytes(void)
{
    char long_pw[258];
    fixture f;
    tsr_user u;

    memset(long_pw, 'a', sizeof long_pw);
    CHECK(tsr_password_policy_check("1234567", 7) == TSR_ERR_WEAK_PASSWORD);
    CHECK(tsr_password_policy_check("12345678", 8) == TSR_OK);
    CHECK(tsr_password_policy_check(long_pw, 256) == TSR_OK);
    CHECK(tsr_password_policy_check(long_pw, 257) == TSR_ERR_WEAK_PASSWORD);
    CHECK(tsr_password_policy_check("", 0) == TSR_ERR_WEAK_PASSWORD);

    CHECK(fx_open(&f));
    CHECK(tsr_auth_user_create(f.auth, "alice", 5, "short", 5, NULL, T0, &u) ==
          TSR_ERR_WEAK_PASSWORD);
    CHECK(u.id[0] == '\0');
    CHECK(tsr_auth_user_create(f.auth, "alice", 5, long_pw, 257, NULL, T0, &u) ==
          TSR_ERR_WEAK_PASSWORD);
    CHECK(tsr_auth_user_create(f.auth, "alice", 5, long_pw, 256, NULL, T0, &u) == TSR_OK);
    CHECK(tsr_auth_authenticate(f.auth, "alice", 5, long_pw, 256, T0, &u) == TSR_OK);
    fx_close(&f);
}

static void argon2id_hash_verify_and_params(void)
{
    tsr_pwparams p = {8, 1, 1};
    char h[TSR_PWHASH_STR_BYTES];
    int needs = -1;

    CHECK(tsr_password_hash(&p, PW, PWLEN, h, sizeof h) == TSR_OK);
    CHECK(strncmp(h, "$argon2id$v=19$m=8,t=1,p=1$", 27) == 0);
    CHECK(tsr_password_verify(h, PW, PWLEN) == TSR_OK);
    CHECK(tsr_password_verify(h, PW, PWLEN - 1) == TSR_ERR_INVALID_CREDENTIALS);
    CHECK(tsr_password_verify(h, "correct horse batterz", PWLEN) == TSR_ERR_INVALID_CREDENTIALS);
    CHECK(tsr_password_needs_rehash(h, &p, &needs) == TSR_OK && needs == 0);
    tsr_pwparams q = {16, 1, 1};
    CHECK(tsr_password_needs_rehash(h, &q, &needs) == TSR_OK && needs == 1);
    q = (tsr_pwparams){8, 2, 1};
    CHECK(tsr_password_needs_rehash(h, &q, &needs) == TSR_OK && needs == 1);

    /* Argon2i, bcrypt or garbage are not Argon2id. */
    CHECK(tsr_password_verify("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", PW, PWLEN) ==
          TSR_ERR_INVALID);
    CHECK(tsr_password_verify("$2b$10$abcdefghijklmnopqrstuv", PW, PWLEN) == TSR_ERR_INVALID);
    CHECK(tsr_password_needs_rehash("garbage", &p, &needs) == TSR_ERR_INVALID && needs == 1);

    /* libsodium's Argon2id has one lane only. */
    tsr_pwparams par = {8, 1, 4};
    CHECK(tsr_password_params_check(&par) == TSR_ERR_UNSUPPORTED);
    CHECK(tsr_password_hash(&par, PW, PWLEN, h, sizeof h) == TSR_ERR_UNSUPPORTED);
    CHECK(h[0] == '\0');
    tsr_pwparams tiny = {4, 1, 1};
    CHECK(tsr_password_params_check(&tiny) == TSR_ERR_INVALID);
    tsr_pwparams zero_t = {8, 0, 1};
    CHECK(tsr_password_params_check(&zero_t) == TSR_ERR_INVALID);

    /* The dummy verify runs and returns nothing to leak. */
    tsr_password_dummy_verify(&p, PW, PWLEN);
    tsr_password_dummy_verify(&q, NULL, 0);
}

static void ct_helpers_compare_by_hash(void)
{
    char hex[TSR_SHA256_HEX_CHARS + 1];

    CHECK(tsr_sha256_hex("abc", 3, hex) == TSR_OK);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    CHECK(tsr_ct_eq_sha256("key-one", 7, "key-one", 7));
    CHECK(!tsr_ct_eq_sha256("key-one", 7, "key-one ", 8));
    CHECK(!tsr_ct_eq_sha256("key-one", 7, "key-onf", 7));
    CHECK(tsr_ct_eq_sha256("", 0, "", 0));
}

/* ---- users ---- */

static void usernames_and_roles_are_validated(void)
{
    fixture f;
    tsr_user u;
    char name65[66];

    CHECK(tsr_auth_username_check("a", 1) == TSR_OK);
    CHECK(tsr_auth_username_check("Alice.B_c+d-e@example.com", 25) == TSR_OK);
    memset(name65, 'x', sizeof name65);
    CHECK(tsr_auth_username_check(name65, 64) == TSR_OK);
    CHECK(tsr_auth_username_check(name65, 65) == TSR_ERR_INVALID);
    CHECK(tsr_auth_username_check("", 0) == TSR_ERR_INVALID);
    CHECK(tsr_auth_username_check("a b", 3) == TSR_ERR_INVALID);
    CHECK(tsr_auth_username_check("a/b", 3) == TSR_ERR_INVALID);
    CHECK(tsr_auth_username_check("a\0b", 3) == TSR_ERR_INVALID);
    CHECK(tsr_auth_username_check("\xc3\xa9", 2) == TSR_ERR_INVALID);

    CHECK(tsr_auth_roles_check("") == TSR_OK);
    CHECK(tsr_auth_roles_check("admin") == TSR_OK);
    CHECK(tsr_auth_roles_check("admin,billing.read,ops-team,x_1") == TSR_OK);
    CHECK(tsr_auth_roles_check("Admin") == TSR_ERR_INVALID);
    CHECK(tsr_auth_roles_check("a,,b") == TSR_ERR_INVALID);
    CHECK(tsr_auth_roles_check("a,") == TSR_ERR_INVALID);
    CHECK(tsr_auth_roles_check(",a") == TSR_ERR_INVALID);
    CHECK(tsr_auth_roles_check("a, b") == TSR_ERR_INVALID);
    CHECK(tsr_auth_roles_check("a,b,a") == TSR_ERR_INVALID);
    CHECK(tsr_auth_roles_check("abcdefghijklmnopqrstuvwxyz0123456") == TSR_ERR_INVALID);
    CHECK(tsr_auth_roles_has("admin,ops", "ops", 3));
    CHECK(!tsr_auth_roles_has("admin,ops", "op", 2));
    CHECK(!tsr_auth_roles_has("", "ops", 3));

    CHECK(fx_open(&f));
    CHECK(tsr_auth_user_create(f.auth, "bad name", 8, PW, PWLEN, NULL, T0, &u) ==
          TSR_ERR_INVALID);
    CHECK(tsr_auth_user_create(f.auth, "bob", 3, PW, PWLEN, "Admin", T0, &u) == TSR_ERR_INVALID);
    CHECK(tsr_auth_user_create(f.auth, "Bob", 3, PW, PWLEN, "admin,ops", T0, &u) == TSR_OK);
    CHECK(strncmp(u.id, "usr_", 4) == 0 && strlen(u.id) == 26);
    CHECK(strcmp(u.username, "Bob") == 0 && strcmp(u.roles, "admin,ops") == 0);
    CHECK(u.created_at == T0 && u.disabled == 0);
    CHECK(strstr(u.pwhash, PW) == NULL);
    /* Names are unique case-insensitively. */
    CHECK(tsr_auth_user_create(f.auth, "bob", 3, PW, PWLEN, NULL, T0, &u) ==
          TSR_ERR_USERNAME_TAKEN);
    CHECK(tsr_auth_user_create(f.auth, "BOB", 3, PW, PWLEN, NULL, T0, NULL) ==
          TSR_ERR_USERNAME_TAKEN);
    fx_close(&f);
}

static void wrong_password_and_unknown_user_fail_alike(void)
{
    fixture f;
    tsr_user u, v;
    char long_pw[300];

    memset(long_pw, 'p', sizeof long_pw);
    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "carol", &u));
    CHECK(tsr_auth_authenticate(f.auth, "carol", 5, PW, PWLEN, T0, &v) == TSR_OK);
    CHECK(strcmp(v.id, u.id) == 0);
    CHECK(tsr_auth_authenticate(f.auth, "CAROL", 5, PW, PWLEN, T0, &v) == TSR_OK);

    tsr_err wrong = tsr_auth_authenticate(f.auth, "carol", 5, "not the password", 16, T0, &v);
    CHECK(v.id[0] == '\0');
    tsr_err unknown = tsr_auth_authenticate(f.auth, "mallory", 7, PW, PWLEN, T0, &v);
    tsr_err malformed = tsr_auth_authenticate(f.auth, "no such user!", 13, PW, PWLEN, T0, &v);
    tsr_err too_long = tsr_auth_authenticate(f.auth, "carol", 5, long_pw, sizeof long_pw, T0, &v);
    tsr_err empty = tsr_auth_authenticate(f.auth, "carol", 5, "", 0, T0, &v);
    CHECK(wrong == TSR_ERR_INVALID_CREDENTIALS);
    CHECK(unknown == wrong && malformed == wrong && too_long == wrong && empty == wrong);

    /* A disabled user is refused the same way, even with the right password. */
    CHECK(tsr_auth_user_patch(f.auth, u.id, NULL, 1, T0, NULL, NULL) == TSR_OK);
    CHECK(tsr_auth_authenticate(f.auth, "carol", 5, PW, PWLEN, T0, &v) == wrong);
    fx_close(&f);
}

static void rehash_on_login_when_params_change(void)
{
    fixture f;
    tsr_user u, v, stored;
    tsr_auth *stronger = NULL;
    tsr_auth_opts o = base_opts;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "dave", &u));
    CHECK(strstr(u.pwhash, "m=8,t=1,p=1") != NULL);
    o.pw.memory_kib = 16;
    o.pw.iterations = 2;
    CHECK(tsr_auth_new(f.store, &o, &stronger) == TSR_OK);
    /* A failed login does not rehash. */
    CHECK(tsr_auth_authenticate(stronger, "dave", 4, "wrong password", 14, T0 + 5, &v) ==
          TSR_ERR_INVALID_CREDENTIALS);
    CHECK(tsr_auth_user_get(f.auth, u.id, &stored) == TSR_OK);
    CHECK(strcmp(stored.pwhash, u.pwhash) == 0);
    /* A successful one does, and the new hash still verifies. */
    CHECK(tsr_auth_authenticate(stronger, "dave", 4, PW, PWLEN, T0 + 5, &v) == TSR_OK);
    CHECK(strstr(v.pwhash, "m=16,t=2,p=1") != NULL);
    CHECK(tsr_auth_user_get(f.auth, u.id, &stored) == TSR_OK);
    CHECK(strcmp(stored.pwhash, v.pwhash) == 0 && stored.updated_at == T0 + 5);
    CHECK(tsr_password_verify(stored.pwhash, PW, PWLEN) == TSR_OK);
    /* And the old context (weaker params) rehashes back on its next login. */
    CHECK(tsr_auth_authenticate(f.auth, "dave", 4, PW, PWLEN, T0 + 6, &v) == TSR_OK);
    CHECK(strstr(v.pwhash, "m=8,t=1,p=1") != NULL);
    tsr_auth_free(stronger);
    fx_close(&f);
}

/* ---- sessions ---- */

static void session_create_and_resolve(void)
{
    fixture f;
    tsr_user u, ru;
    tsr_auth_cred c;
    tsr_session s, stored;
    uint8_t secret[32], h[32];
    size_t n = 0;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "erin", &u));
    CHECK(tsr_auth_session_create(f.auth, &u, "192.0.2.7", "Mozilla/5.0\x01\n", T0, &c) ==
          TSR_OK);
    CHECK(strlen(c.cookie) == TSR_COOKIE_VALUE_CHARS);
    CHECK(strlen(c.csrf) == TSR_CSRF_TOKEN_CHARS);
    CHECK(strncmp(c.session.id, "ses_", 4) == 0 && strlen(c.session.id) == 26);
    CHECK(c.session.kind == TSR_SESSION_COOKIE);
    CHECK(c.session.created_at == T0 && c.session.last_seen_at == T0);
    CHECK(c.session.expires_at == T0 + 86400 && c.session.idle_expires_at == T0 + 1800);
    CHECK(strcmp(c.session.ip, "192.0.2.7") == 0);
    CHECK(strcmp(c.session.user_agent, "Mozilla/5.0??") == 0);

    /* The store holds SHA-256 of the secret, and the public id is not the secret. */
    CHECK(tsr_b64url_decode(c.cookie, 43, secret, sizeof secret, &n) == TSR_OK && n == 32);
    CHECK(tsr_sha256(secret, 32, h) == TSR_OK);
    CHECK(tsr_store_session_get(f.store, c.session.id, &stored) == TSR_OK);
    CHECK(memcmp(stored.secret_hash, h, 32) == 0);
    CHECK(strstr(c.session.id, c.cookie) == NULL && strstr(c.cookie, c.session.id + 4) == NULL);

    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 10, &s, &ru) == TSR_OK);
    CHECK(strcmp(s.id, c.session.id) == 0 && strcmp(ru.id, u.id) == 0);

    /* Every mutation of the cookie is refused. */
    char bad[44];
    memcpy(bad, c.cookie, 44);
    bad[0] = bad[0] == 'A' ? 'B' : 'A';
    CHECK(tsr_auth_session_resolve(f.auth, bad, 43, T0 + 10, &s, &ru) == TSR_ERR_UNAUTHENTICATED);
    CHECK(s.id[0] == '\0' && ru.id[0] == '\0');
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 42, T0 + 10, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    memcpy(bad, c.cookie, 44);
    bad[42] = '=';
    CHECK(tsr_auth_session_resolve(f.auth, bad, 43, T0 + 10, &s, NULL) == TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_session_resolve(f.auth, "", 0, T0 + 10, &s, NULL) == TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_session_resolve(f.auth, NULL, 0, T0 + 10, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    /* The session id is not a credential. */
    CHECK(tsr_auth_session_resolve(f.auth, c.session.id, strlen(c.session.id), T0, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    tsr_auth_cred_wipe(&c);
    fx_close(&f);
}

static void session_idle_and_absolute_expiry(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_cred c;
    tsr_session s;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "frank", &u));
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0, &c) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 1799, &s, NULL) == TSR_OK);
    /* That use slid the idle expiry to T0+1799+1800. */
    CHECK(s.idle_expires_at == T0 + 1799 + 1800);
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 1799 + 1800, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    tsr_auth_cred_wipe(&c);

    /* Used every 20 minutes, a session still ends at its absolute expiry. */
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0, &c) == TSR_OK);
    int64_t t = T0;
    int ok = 1;
    for (t = T0 + 1200; t < T0 + 86400; t += 1200)
        ok &= tsr_auth_session_resolve(f.auth, c.cookie, 43, t, &s, NULL) == TSR_OK;
    CHECK(ok);
    CHECK(s.idle_expires_at <= T0 + 86400);
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 86400, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    tsr_auth_cred_wipe(&c);
    fx_close(&f);
}

static void idle_slide_writes_at_most_once_a_minute(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_cred c;
    tsr_session s, stored;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "grace", &u));
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0, &c) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 30, &s, NULL) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 59, &s, NULL) == TSR_OK);
    CHECK(tsr_store_session_get(f.store, c.session.id, &stored) == TSR_OK);
    CHECK(stored.last_seen_at == T0 && stored.idle_expires_at == T0 + 1800);
    CHECK(s.last_seen_at == T0);

    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 60, &s, NULL) == TSR_OK);
    CHECK(tsr_store_session_get(f.store, c.session.id, &stored) == TSR_OK);
    CHECK(stored.last_seen_at == T0 + 60 && stored.idle_expires_at == T0 + 60 + 1800);
    CHECK(s.last_seen_at == T0 + 60 && s.idle_expires_at == T0 + 60 + 1800);

    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 100, &s, NULL) == TSR_OK);
    CHECK(tsr_store_session_get(f.store, c.session.id, &stored) == TSR_OK);
    CHECK(stored.last_seen_at == T0 + 60);
    tsr_auth_cred_wipe(&c);
    fx_close(&f);
}

static void csrf_token_is_derived_and_checked(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_cred c, c2;
    char want[44], got[44];
    uint8_t buf[15 + 32], h[32];
    size_t n = 0;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "heidi", &u));
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0, &c) == TSR_OK);
    /* Independent derivation: base64url(SHA-256("tessera csrf v1" || secret)). */
    memcpy(buf, "tessera csrf v1", 15);
    CHECK(tsr_b64url_decode(c.cookie, 43, buf + 15, 32, &n) == TSR_OK && n == 32);
    CHECK(tsr_sha256(buf, sizeof buf, h) == TSR_OK);
    CHECK(tsr_b64url_encode(h, 32, want, sizeof want, &n) == TSR_OK && n == 43);
    CHECK(strcmp(c.csrf, want) == 0);
    CHECK(tsr_auth_csrf_derive(c.cookie, 43, got) == TSR_OK && strcmp(got, want) == 0);

    CHECK(tsr_auth_csrf_check(c.cookie, 43, c.csrf, 43) == TSR_OK);
    for (size_t i = 0; i < 43; i++) {
        char m[44];
        memcpy(m, c.csrf, 44);
        m[i] = m[i] == 'x' ? 'y' : 'x';
        CHECKF(tsr_auth_csrf_check(c.cookie, 43, m, 43) == TSR_ERR_CSRF, "offset %zu", i);
    }
    CHECK(tsr_auth_csrf_check(c.cookie, 43, c.csrf, 42) == TSR_ERR_CSRF);
    CHECK(tsr_auth_csrf_check(c.cookie, 43, "", 0) == TSR_ERR_CSRF);
    CHECK(tsr_auth_csrf_check(c.cookie, 43, NULL, 0) == TSR_ERR_CSRF);
    CHECK(tsr_auth_csrf_check("garbage", 7, c.csrf, 43) == TSR_ERR_CSRF);
    /* Another session's token does not fit this one. */
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0, &c2) == TSR_OK);
    CHECK(tsr_auth_csrf_check(c.cookie, 43, c2.csrf, 43) == TSR_ERR_CSRF);
    tsr_auth_cred_wipe(&c);
    tsr_auth_cred_wipe(&c2);
    fx_close(&f);
}

static void session_cap_evicts_the_oldest(void)
{
    fixture f;
    tsr_user u;
    tsr_auth_cred c[4];
    tsr_session s, list[8];
    size_t n = 0;

    CHECK(fx_open(&f)); /* max_per_user = 3 */
    CHECK(mkuser(&f, "ivan", &u));
    for (int i = 0; i < 4; i++)
        CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0 + i, &c[i]) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, c[0].cookie, 43, T0 + 5, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    for (int i = 1; i < 4; i++)
        CHECK(tsr_auth_session_resolve(f.auth, c[i].cookie, 43, T0 + 5, &s, NULL) == TSR_OK);
    CHECK(tsr_auth_session_list(f.auth, u.id, T0 + 5, list, 8, &n) == TSR_OK && n == 3);
    CHECK(strcmp(list[0].id, c[3].session.id) == 0); /* newest first */
    for (int i = 0; i < 4; i++)
        tsr_auth_cred_wipe(&c[i]);
    fx_close(&f);
}

static void revoke_own_others_and_not_another_users(void)
{
    fixture f;
    tsr_user a, b;
    tsr_auth_cred a1, a2, a3, b1;
    tsr_session s;
    size_t n = 99;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "judy", &a));
    CHECK(mkuser(&f, "mike", &b));
    CHECK(tsr_auth_session_create(f.auth, &a, NULL, NULL, T0, &a1) == TSR_OK);
    CHECK(tsr_auth_session_create(f.auth, &a, NULL, NULL, T0 + 1, &a2) == TSR_OK);
    CHECK(tsr_auth_session_create(f.auth, &a, NULL, NULL, T0 + 2, &a3) == TSR_OK);
    CHECK(tsr_auth_session_create(f.auth, &b, NULL, NULL, T0, &b1) == TSR_OK);

    /* Another user's session id is "not found", and stays alive. */
    CHECK(tsr_auth_session_revoke(f.auth, a.id, b1.session.id) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_auth_session_resolve(f.auth, b1.cookie, 43, T0 + 5, &s, NULL) == TSR_OK);
    CHECK(tsr_auth_session_revoke(f.auth, a.id, "ses_doesnotexist0000000") == TSR_ERR_NOT_FOUND);
    CHECK(tsr_auth_session_revoke(f.auth, a.id, "") == TSR_ERR_NOT_FOUND);

    CHECK(tsr_auth_session_revoke(f.auth, a.id, a2.session.id) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, a2.cookie, 43, T0 + 5, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_session_revoke(f.auth, a.id, a2.session.id) == TSR_ERR_NOT_FOUND);

    /* Revoke others keeps the current one and touches nobody else. */
    CHECK(tsr_auth_session_revoke_others(f.auth, a.id, a3.session.id, &n) == TSR_OK && n == 1);
    CHECK(tsr_auth_session_resolve(f.auth, a1.cookie, 43, T0 + 5, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_session_resolve(f.auth, a3.cookie, 43, T0 + 5, &s, NULL) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, b1.cookie, 43, T0 + 5, &s, NULL) == TSR_OK);
    tsr_auth_cred_wipe(&a1);
    tsr_auth_cred_wipe(&a2);
    tsr_auth_cred_wipe(&a3);
    tsr_auth_cred_wipe(&b1);
    fx_close(&f);
}

static void password_change_rotates_current_and_kills_others(void)
{
    fixture f;
    tsr_user u, v;
    tsr_auth_cred cur, other, fresh;
    tsr_session s, list[8];
    size_t n = 0;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "niaj", &u));
    CHECK(tsr_auth_session_create(f.auth, &u, "198.51.100.1", "ua", T0, &cur) == TSR_OK);
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0 + 1, &other) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, cur.cookie, 43, T0 + 100, &s, NULL) == TSR_OK);

    CHECK(tsr_auth_password_change(f.auth, &s, "wrong current", 13, "new password 1", 14,
                                   T0 + 100, &fresh) == TSR_ERR_INVALID_CREDENTIALS);
    CHECK(fresh.cookie[0] == '\0');
    CHECK(tsr_auth_password_change(f.auth, &s, PW, PWLEN, "short", 5, T0 + 100, &fresh) ==
          TSR_ERR_WEAK_PASSWORD);
    /* Nothing changed by the failures. */
    CHECK(tsr_auth_session_resolve(f.auth, other.cookie, 43, T0 + 100, &s, NULL) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, cur.cookie, 43, T0 + 100, &s, NULL) == TSR_OK);

    CHECK(tsr_auth_password_change(f.auth, &s, PW, PWLEN, "new password 1", 14, T0 + 200,
                                   &fresh) == TSR_OK);
    CHECK(strcmp(fresh.session.id, cur.session.id) != 0);
    CHECK(strcmp(fresh.cookie, cur.cookie) != 0 && strcmp(fresh.csrf, cur.csrf) != 0);
    CHECK(fresh.session.created_at == T0 && fresh.session.expires_at == T0 + 86400);
    CHECK(strcmp(fresh.session.ip, "198.51.100.1") == 0);
    /* The old cookie and the other session are dead; the new cookie works. */
    CHECK(tsr_auth_session_resolve(f.auth, cur.cookie, 43, T0 + 201, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_session_resolve(f.auth, other.cookie, 43, T0 + 201, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_session_resolve(f.auth, fresh.cookie, 43, T0 + 201, &s, NULL) == TSR_OK);
    CHECK(tsr_auth_csrf_check(fresh.cookie, 43, fresh.csrf, 43) == TSR_OK);
    CHECK(tsr_auth_session_list(f.auth, u.id, T0 + 201, list, 8, &n) == TSR_OK && n == 1);
    /* Only the new password works. */
    CHECK(tsr_auth_authenticate(f.auth, "niaj", 4, PW, PWLEN, T0 + 202, &v) ==
          TSR_ERR_INVALID_CREDENTIALS);
    CHECK(tsr_auth_authenticate(f.auth, "niaj", 4, "new password 1", 14, T0 + 202, &v) == TSR_OK);
    tsr_auth_cred_wipe(&cur);
    tsr_auth_cred_wipe(&other);
    tsr_auth_cred_wipe(&fresh);
    fx_close(&f);
}

/* A password change reads the user, spends two Argon2 passes, then writes. An admin
 * disabling the user (and changing the roles) in that gap must win: forced here
 * deterministically by running the change's write step on the row read before. */
static void password_change_loses_to_an_admin_disable_during_hashing(void)
{
    fixture f;
    tsr_user u, seen, now_u, v;
    tsr_auth_cred cur, fresh;
    tsr_session s, list[4];
    char newhash[TSR_PWHASH_MAX + 1];
    size_t n = 9;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "oscar", &u));
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0, &cur) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, cur.cookie, 43, T0 + 10, &s, NULL) == TSR_OK);
    /* The change's first half: the row as read, and the new hash. */
    CHECK(tsr_auth_user_get(f.auth, u.id, &seen) == TSR_OK);
    CHECK(tsr_password_hash(&base_opts.pw, "new password 1", 14, newhash, sizeof newhash) ==
          TSR_OK);
    /* Meanwhile the administrator disables the user and changes the roles. */
    CHECK(tsr_auth_user_patch(f.auth, u.id, "auditor", 1, T0 + 11, NULL, NULL) == TSR_OK);
    /* The change's write step fails and creates nothing. */
    CHECK(tsr_auth_password_change_commit(f.auth, &s, &seen, newhash, T0 + 12, &fresh) ==
          TSR_ERR_UNAUTHENTICATED);
    CHECK(fresh.cookie[0] == '\0' && fresh.session.id[0] == '\0');
    CHECK(tsr_auth_user_get(f.auth, u.id, &now_u) == TSR_OK);
    CHECK(now_u.disabled == 1);
    CHECK(strcmp(now_u.roles, "auditor") == 0);
    CHECK(strcmp(now_u.pwhash, seen.pwhash) == 0);
    CHECK(tsr_auth_session_list(f.auth, u.id, T0 + 12, list, 4, &n) == TSR_OK && n == 0);
    /* Re-enabled, the user has no session back and still the old password. */
    CHECK(tsr_auth_user_patch(f.auth, u.id, NULL, 0, T0 + 13, NULL, NULL) == TSR_OK);
    CHECK(tsr_auth_session_list(f.auth, u.id, T0 + 13, list, 4, &n) == TSR_OK && n == 0);
    CHECK(tsr_auth_authenticate(f.auth, "oscar", 5, PW, PWLEN, T0 + 14, &v) == TSR_OK);
    CHECK(tsr_auth_authenticate(f.auth, "oscar", 5, "new password 1", 14, T0 + 14, &v) ==
          TSR_ERR_INVALID_CREDENTIALS);
    tsr_auth_cred_wipe(&cur);
    fx_close(&f);
}

/* A role change alone in the gap does not stop the change, and is not undone by it. */
static void password_change_keeps_a_concurrent_role_change(void)
{
    fixture f;
    tsr_user u, seen, now_u;
    tsr_auth_cred cur, fresh;
    tsr_session s;
    char newhash[TSR_PWHASH_MAX + 1];

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "pat", &u));
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0, &cur) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, cur.cookie, 43, T0 + 10, &s, NULL) == TSR_OK);
    CHECK(tsr_auth_user_get(f.auth, u.id, &seen) == TSR_OK);
    CHECK(tsr_password_hash(&base_opts.pw, "new password 1", 14, newhash, sizeof newhash) ==
          TSR_OK);
    CHECK(tsr_auth_user_patch(f.auth, u.id, "admin", -1, T0 + 11, NULL, NULL) == TSR_OK);
    CHECK(tsr_auth_password_change_commit(f.auth, &s, &seen, newhash, T0 + 12, &fresh) ==
          TSR_OK);
    CHECK(tsr_auth_user_get(f.auth, u.id, &now_u) == TSR_OK);
    CHECK(strcmp(now_u.roles, "admin") == 0 && now_u.disabled == 0);
    CHECK(strcmp(now_u.pwhash, newhash) == 0);
    CHECK(tsr_auth_session_resolve(f.auth, fresh.cookie, 43, T0 + 13, &s, NULL) == TSR_OK);
    /* A second change from the same stale row is refused: its hash is gone. */
    CHECK(tsr_auth_password_change_commit(f.auth, &s, &seen, newhash, T0 + 14, &cur) ==
          TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_session_resolve(f.auth, fresh.cookie, 43, T0 + 15, &s, NULL) == TSR_OK);
    tsr_auth_cred_wipe(&cur);
    tsr_auth_cred_wipe(&fresh);
    fx_close(&f);
}

/* The session a change is made from was revoked (admin revoke-all, logout in
 * another tab) after it was resolved: 401, and no session is made up for it. */
static void password_change_after_the_session_was_revoked_creates_nothing(void)
{
    fixture f;
    tsr_user u, v;
    tsr_auth_cred cur, other, fresh;
    tsr_session s, s2, list[4];
    size_t n = 9, rev = 0;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "quinn", &u));
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0, &cur) == TSR_OK);
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0, &other) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, cur.cookie, 43, T0 + 10, &s, NULL) == TSR_OK);
    CHECK(tsr_auth_user_revoke_all(f.auth, u.id, &rev) == TSR_OK && rev == 2);
    CHECK(tsr_auth_password_change(f.auth, &s, PW, PWLEN, "new password 1", 14, T0 + 11,
                                   &fresh) == TSR_ERR_UNAUTHENTICATED);
    CHECK(fresh.cookie[0] == '\0' && fresh.session.id[0] == '\0');
    CHECK(tsr_auth_session_list(f.auth, u.id, T0 + 11, list, 4, &n) == TSR_OK && n == 0);
    /* Nothing else changed either: the old password is still the password. */
    CHECK(tsr_auth_authenticate(f.auth, "quinn", 5, PW, PWLEN, T0 + 12, &v) == TSR_OK);

    /* Logout of the current session elsewhere: the same, and the other session lives. */
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0 + 20, &cur) == TSR_OK);
    CHECK(tsr_auth_session_create(f.auth, &u, NULL, NULL, T0 + 20, &other) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, cur.cookie, 43, T0 + 21, &s, NULL) == TSR_OK);
    CHECK(tsr_auth_session_revoke(f.auth, u.id, s.id) == TSR_OK);
    CHECK(tsr_auth_password_change(f.auth, &s, PW, PWLEN, "new password 1", 14, T0 + 22,
                                   &fresh) == TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_session_list(f.auth, u.id, T0 + 22, list, 4, &n) == TSR_OK && n == 1);
    CHECK(tsr_auth_session_resolve(f.auth, other.cookie, 43, T0 + 23, &s2, NULL) == TSR_OK);
    tsr_auth_cred_wipe(&cur);
    tsr_auth_cred_wipe(&other);
    fx_close(&f);
}

/* A login whose password check ran before an admin disable gets no session: none
 * that would come back alive on enable. */
static void login_racing_a_disable_creates_no_session(void)
{
    fixture f;
    tsr_user u, v;
    tsr_auth_cred c;
    tsr_session list[4];
    size_t n = 9;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "ruth", &u));
    CHECK(tsr_auth_authenticate(f.auth, "ruth", 4, PW, PWLEN, T0, &v) == TSR_OK);
    CHECK(tsr_auth_user_patch(f.auth, u.id, NULL, 1, T0 + 1, NULL, NULL) == TSR_OK);
    CHECK(tsr_auth_session_create(f.auth, &v, NULL, NULL, T0 + 2, &c) ==
          TSR_ERR_INVALID_CREDENTIALS);
    CHECK(c.cookie[0] == '\0');
    CHECK(tsr_auth_user_patch(f.auth, u.id, NULL, 0, T0 + 3, NULL, NULL) == TSR_OK);
    CHECK(tsr_auth_session_list(f.auth, u.id, T0 + 3, list, 4, &n) == TSR_OK && n == 0);
    /* A deleted user likewise. */
    CHECK(tsr_auth_user_delete(f.auth, u.id) == TSR_OK);
    CHECK(tsr_auth_session_create(f.auth, &v, NULL, NULL, T0 + 4, &c) ==
          TSR_ERR_INVALID_CREDENTIALS);
    fx_close(&f);
}

/* The admin reset writes the hash only: a disabled user stays disabled, roles stay. */
static void admin_password_reset_keeps_flags(void)
{
    fixture f;
    tsr_user u, got;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "sybil", &u));
    CHECK(tsr_auth_user_patch(f.auth, u.id, "ops", 1, T0 + 1, NULL, NULL) == TSR_OK);
    CHECK(tsr_auth_user_set_password(f.auth, u.id, "brand new secret", 16, T0 + 2) == TSR_OK);
    CHECK(tsr_auth_user_get(f.auth, u.id, &got) == TSR_OK);
    CHECK(got.disabled == 1 && strcmp(got.roles, "ops") == 0 && got.updated_at == T0 + 2);
    CHECK(tsr_password_verify(got.pwhash, "brand new secret", 16) == TSR_OK);
    CHECK(tsr_auth_user_set_password(f.auth, "usr_nope", "brand new secret", 16, T0) ==
          TSR_ERR_NOT_FOUND);
    fx_close(&f);
}

/* ---- admin ---- */

static void admin_key_generated_once_and_verified_by_hash(void)
{
    fixture f;
    char key[TSR_ADMIN_KEY_CHARS + 1], again[TSR_ADMIN_KEY_CHARS + 1];
    char meta[TSR_META_MAX + 1], hex[65];
    int gen = -1;
    tsr_auth *second = NULL;

    CHECK(fx_open(&f));
    CHECK(tsr_auth_admin_key_verify(f.auth, "anything-at-all", 15) == TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_admin_key_init(f.auth, NULL, key, &gen) == TSR_OK && gen == 1);
    CHECK(strncmp(key, "tsr_admin_", 10) == 0 && strlen(key) == TSR_ADMIN_KEY_CHARS);
    CHECK(tsr_store_meta_get(f.store, TSR_ADMIN_KEY_META, meta, sizeof meta) == TSR_OK);
    CHECK(tsr_sha256_hex(key, strlen(key), hex) == TSR_OK && strcmp(meta, hex) == 0);
    CHECK(strstr(meta, key + 10) == NULL);
    CHECK(tsr_auth_admin_key_verify(f.auth, key, strlen(key)) == TSR_OK);
    char bad[TSR_ADMIN_KEY_CHARS + 1];
    memcpy(bad, key, sizeof bad);
    bad[20] = bad[20] == 'a' ? 'b' : 'a';
    CHECK(tsr_auth_admin_key_verify(f.auth, bad, strlen(bad)) == TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_admin_key_verify(f.auth, key, strlen(key) - 1) == TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_admin_key_verify(f.auth, "", 0) == TSR_ERR_UNAUTHENTICATED);

    /* A restart finds the hash and generates nothing. */
    CHECK(tsr_auth_new(f.store, &base_opts, &second) == TSR_OK);
    CHECK(tsr_auth_admin_key_init(second, "", again, &gen) == TSR_OK && gen == 0);
    CHECK(again[0] == '\0');
    CHECK(tsr_auth_admin_key_verify(second, key, strlen(key)) == TSR_OK);

    /* A configured key replaces it; the generated one stops working. */
    CHECK(tsr_auth_admin_key_init(second, "too-short", again, &gen) == TSR_ERR_WEAK_KEY);
    CHECK(tsr_auth_admin_key_init(second, "my-configured-admin-key", again, &gen) == TSR_OK);
    CHECK(gen == 0 && again[0] == '\0');
    CHECK(tsr_auth_admin_key_verify(second, "my-configured-admin-key", 23) == TSR_OK);
    CHECK(tsr_auth_admin_key_verify(second, key, strlen(key)) == TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_store_meta_get(f.store, TSR_ADMIN_KEY_META, meta, sizeof meta) == TSR_OK);
    CHECK(strcmp(meta, hex) != 0);
    tsr_auth_free(second);
    fx_close(&f);
}

static void admin_user_operations(void)
{
    fixture f;
    tsr_user u[5], page[2], got;
    tsr_auth_cred c;
    tsr_session s;
    size_t n = 0, rev = 0;
    char next[TSR_ID_MAX + 1];
    char names[5][8];

    CHECK(fx_open(&f));
    for (int i = 0; i < 5; i++) {
        int k = snprintf(names[i], sizeof names[i], "user%d", i);
        CHECK(k > 0);
        CHECK(mkuser(&f, names[i], &u[i]));
    }
    /* Paging: two at a time, the cursor is the last id, null after the end. */
    size_t total = 0;
    const char *after = NULL;
    char cursor[TSR_ID_MAX + 1] = "";
    for (int guard = 0; guard < 5; guard++) {
        CHECK(tsr_auth_user_list(f.auth, after, 2, page, &n, next) == TSR_OK);
        total += n;
        if (next[0] == '\0')
            break;
        memcpy(cursor, next, sizeof cursor);
        after = cursor;
    }
    CHECK(total == 5);
    /* A full last page still says there is no next one. */
    tsr_user all[5];
    CHECK(tsr_auth_user_list(f.auth, NULL, 5, all, &n, next) == TSR_OK && n == 5);
    CHECK(next[0] == '\0');
    CHECK(tsr_auth_user_list(f.auth, NULL, 4, all, &n, next) == TSR_OK && n == 4);
    CHECK(strcmp(next, all[3].id) == 0);
    CHECK(tsr_auth_user_list(f.auth, NULL, 0, page, &n, next) == TSR_ERR_INVALID);
    CHECK(tsr_auth_user_list(f.auth, NULL, TSR_AUTH_LIST_MAX + 1, page, &n, next) ==
          TSR_ERR_INVALID);

    CHECK(tsr_auth_user_find(f.auth, "USER3", &got) == TSR_OK && strcmp(got.id, u[3].id) == 0);
    CHECK(tsr_auth_user_find(f.auth, u[2].id, &got) == TSR_OK && strcmp(got.username, "user2") == 0);
    CHECK(tsr_auth_user_find(f.auth, "nobody", &got) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_auth_user_get(f.auth, "usr_nope", &got) == TSR_ERR_NOT_FOUND);

    /* The id may live in the output struct itself. */
    got = u[4];
    CHECK(tsr_auth_user_get(f.auth, got.id, &got) == TSR_OK && strcmp(got.id, u[4].id) == 0);
    CHECK(tsr_auth_user_find(f.auth, got.username, &got) == TSR_OK &&
          strcmp(got.id, u[4].id) == 0);
    CHECK(tsr_auth_user_patch(f.auth, got.id, "x", -1, T0, &got, NULL) == TSR_OK);
    CHECK(strcmp(got.id, u[4].id) == 0 && strcmp(got.roles, "x") == 0);

    /* Roles. */
    CHECK(tsr_auth_user_patch(f.auth, u[0].id, "admin,ops", -1, T0 + 1, &got, &rev) == TSR_OK);
    CHECK(strcmp(got.roles, "admin,ops") == 0 && got.disabled == 0 && rev == 0);
    CHECK(tsr_auth_user_patch(f.auth, u[0].id, "BAD ROLE", -1, T0 + 1, &got, &rev) ==
          TSR_ERR_INVALID);
    CHECK(tsr_auth_user_patch(f.auth, "usr_nope", "", -1, T0, &got, &rev) == TSR_ERR_NOT_FOUND);

    /* Disabling revokes every session at once. */
    CHECK(tsr_auth_session_create(f.auth, &u[1], NULL, NULL, T0, &c) == TSR_OK);
    CHECK(tsr_auth_user_patch(f.auth, u[1].id, NULL, 1, T0 + 2, &got, &rev) == TSR_OK);
    CHECK(got.disabled == 1 && rev == 1);
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 3, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_user_patch(f.auth, u[1].id, NULL, 0, T0 + 4, &got, &rev) == TSR_OK);
    CHECK(got.disabled == 0);
    tsr_auth_cred_wipe(&c);

    /* A disabled user's surviving session (disabled behind auth's back) is refused too. */
    CHECK(tsr_auth_session_create(f.auth, &u[4], NULL, NULL, T0, &c) == TSR_OK);
    CHECK(tsr_store_user_set_flags(f.store, u[4].id, NULL, 1, T0) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 3, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    tsr_auth_cred_wipe(&c);

    /* Revoke all. */
    CHECK(tsr_auth_session_create(f.auth, &u[2], NULL, NULL, T0, &c) == TSR_OK);
    CHECK(tsr_auth_user_revoke_all(f.auth, u[2].id, &rev) == TSR_OK && rev == 1);
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 3, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_user_revoke_all(f.auth, "usr_nope", &rev) == TSR_ERR_NOT_FOUND);
    tsr_auth_cred_wipe(&c);

    /* Password reset by the administrator ends every session. */
    CHECK(tsr_auth_session_create(f.auth, &u[3], NULL, NULL, T0, &c) == TSR_OK);
    CHECK(tsr_auth_user_set_password(f.auth, u[3].id, "short", 5, T0) == TSR_ERR_WEAK_PASSWORD);
    CHECK(tsr_auth_user_set_password(f.auth, u[3].id, "brand new secret", 16, T0 + 5) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 6, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_authenticate(f.auth, "user3", 5, "brand new secret", 16, T0 + 6, &got) ==
          TSR_OK);
    tsr_auth_cred_wipe(&c);

    /* Delete takes the sessions with it. */
    CHECK(tsr_auth_session_create(f.auth, &u[0], NULL, NULL, T0, &c) == TSR_OK);
    CHECK(tsr_auth_user_delete(f.auth, u[0].id) == TSR_OK);
    CHECK(tsr_auth_user_get(f.auth, u[0].id, &got) == TSR_ERR_NOT_FOUND);
    CHECK(tsr_auth_session_resolve(f.auth, c.cookie, 43, T0 + 3, &s, NULL) ==
          TSR_ERR_UNAUTHENTICATED);
    CHECK(tsr_auth_user_delete(f.auth, u[0].id) == TSR_ERR_NOT_FOUND);
    tsr_auth_cred_wipe(&c);
    fx_close(&f);
}

/* ---- rate limiting ---- */

static void rate_limit_trips_after_n_failures_and_recovers(void)
{
    fixture f;
    tsr_user u, v;
    int64_t ra = -1;

    CHECK(fx_open(&f)); /* 3 failures per 900 s */
    CHECK(mkuser(&f, "olivia", &u));
    for (int i = 0; i < 3; i++)
        CHECK(tsr_auth_login(f.auth, "olivia", 6, "wrong password", 14, "203.0.113.5", T0, &v,
                             &ra) == TSR_ERR_INVALID_CREDENTIALS);
    /* The fourth attempt is refused before any hashing, even with the right password. */
    CHECK(tsr_auth_login(f.auth, "olivia", 6, PW, PWLEN, "203.0.113.9", T0 + 1, &v, &ra) ==
          TSR_ERR_RATE_LIMITED);
    CHECK(ra >= 1 && ra <= 900);
    CHECK(v.id[0] == '\0');
    CHECK(tsr_auth_login_check(f.auth, "OLIVIA", 6, NULL, T0 + 1, &ra) == TSR_ERR_RATE_LIMITED);
    /* After the advertised wait one attempt is allowed again... */
    int64_t later = T0 + 1 + ra;
    CHECK(tsr_auth_login_check(f.auth, "olivia", 6, NULL, later - 1, &ra) == TSR_ERR_RATE_LIMITED);
    CHECK(tsr_auth_login_check(f.auth, "olivia", 6, NULL, T0 + 300, &ra) == TSR_OK);
    /* ...and after the whole window, all of them. */
    CHECK(tsr_auth_login(f.auth, "olivia", 6, PW, PWLEN, "203.0.113.9", T0 + 900, &v, &ra) ==
          TSR_OK);
    CHECK(strcmp(v.id, u.id) == 0);
    fx_close(&f);
}

static void rate_limit_per_ip_across_usernames(void)
{
    fixture f;
    tsr_user v;
    int64_t ra = 0;

    CHECK(fx_open(&f));
    tsr_auth_login_record(f.auth, "a1", 2, "203.0.113.7", 0, T0);
    tsr_auth_login_record(f.auth, "a2", 2, "203.0.113.7", 0, T0);
    tsr_auth_login_record(f.auth, "a3", 2, "203.0.113.7", 0, T0);
    CHECK(tsr_auth_login_check(f.auth, "a4", 2, "203.0.113.7", T0, &ra) == TSR_ERR_RATE_LIMITED);
    CHECK(ra >= 1);
    CHECK(tsr_auth_login_check(f.auth, "a4", 2, "203.0.113.8", T0, &ra) == TSR_OK);
    CHECK(tsr_auth_login(f.auth, "a4", 2, PW, PWLEN, "203.0.113.7", T0, &v, &ra) ==
          TSR_ERR_RATE_LIMITED);

    /* IPv6 clients count by their /64. */
    tsr_auth_login_record(f.auth, "b1", 2, "2001:db8:1:2::1", 0, T0);
    tsr_auth_login_record(f.auth, "b2", 2, "2001:db8:1:2::2", 0, T0);
    tsr_auth_login_record(f.auth, "b3", 2, "2001:db8:1:2:ffff::3", 0, T0);
    CHECK(tsr_auth_login_check(f.auth, "b4", 2, "2001:db8:1:2::99", T0, &ra) ==
          TSR_ERR_RATE_LIMITED);
    CHECK(tsr_auth_login_check(f.auth, "b4", 2, "2001:db8:1:3::1", T0, &ra) == TSR_OK);

    tsr_auth_login_reset(f.auth);
    CHECK(tsr_auth_login_check(f.auth, "a4", 2, "203.0.113.7", T0, &ra) == TSR_OK && ra == 0);
    fx_close(&f);
}

static void success_clears_the_username_bucket_not_the_ips(void)
{
    fixture f;
    tsr_user u, v;
    int64_t ra = 0;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "peggy", &u));
    CHECK(tsr_auth_login(f.auth, "peggy", 5, "wrong password", 14, "192.0.2.1", T0, &v, &ra) ==
          TSR_ERR_INVALID_CREDENTIALS);
    CHECK(tsr_auth_login(f.auth, "peggy", 5, "wrong password", 14, "192.0.2.1", T0, &v, &ra) ==
          TSR_ERR_INVALID_CREDENTIALS);
    CHECK(tsr_auth_login(f.auth, "peggy", 5, PW, PWLEN, "192.0.2.1", T0, &v, &ra) == TSR_OK);
    /* The username may fail three more times from elsewhere... */
    for (int i = 0; i < 3; i++)
        CHECK(tsr_auth_login(f.auth, "peggy", 5, "wrong password", 14, "192.0.2.50", T0, &v,
                             &ra) == TSR_ERR_INVALID_CREDENTIALS);
    CHECK(tsr_auth_login_check(f.auth, "peggy", 5, "192.0.2.51", T0, &ra) == TSR_ERR_RATE_LIMITED);
    /* ...while the first IP kept its two failures. */
    tsr_auth_login_record(f.auth, "zed", 3, "192.0.2.1", 0, T0);
    CHECK(tsr_auth_login_check(f.auth, "quinn", 5, "192.0.2.1", T0, &ra) == TSR_ERR_RATE_LIMITED);
    fx_close(&f);
}

/* ---- logs ---- */

static void audit_logs_hold_no_secrets(void)
{
    fixture f;
    tsr_user u, v;
    tsr_auth_cred c;
    int64_t ra = 0;
    char path[] = "/tmp/tsr_test_auth_log_XXXXXX";
    int fd = mkstemp(path);

    CHECK(fd >= 0);
    CHECK(fx_open(&f));
    tsr_log_set_fd(fd);
    CHECK(mkuser(&f, "rupert", &u));
    CHECK(tsr_auth_login(f.auth, "rupert", 6, PW, PWLEN, "192.0.2.77", T0, &v, &ra) == TSR_OK);
    CHECK(tsr_auth_login(f.auth, "rupert", 6, "hunter2-wrong", 13, "192.0.2.77", T0, &v, &ra) ==
          TSR_ERR_INVALID_CREDENTIALS);
    CHECK(tsr_auth_session_create(f.auth, &u, "192.0.2.77", "ua", T0, &c) == TSR_OK);
    tsr_log_set_fd(-1);
    size_t len = 0;
    char *text = tsr_test_read_file(path, &len);
    CHECK(text != NULL);
    if (text != NULL) {
        CHECK(strstr(text, "\"event\":\"login_ok\"") != NULL);
        CHECK(strstr(text, "\"event\":\"login_failed\"") != NULL);
        CHECK(strstr(text, "\"event\":\"user_created\"") != NULL);
        CHECK(strstr(text, u.id) != NULL);
        CHECK(strstr(text, PW) == NULL);
        CHECK(strstr(text, "hunter2") == NULL);
        CHECK(strstr(text, c.cookie) == NULL);
        CHECK(strstr(text, c.csrf) == NULL);
        /* Failed usernames are fingerprinted, never written raw. */
        CHECK(strstr(text, "rupert") == NULL);
        free(text);
    }
    close(fd);
    unlink(path);
    tsr_auth_cred_wipe(&c);
    fx_close(&f);
}

/* Wrong current passwords count as failed logins; once over the limit even the
 * right one is refused, and the login form is closed for that name too. */
static void password_change_is_rate_limited_like_login(void)
{
    fixture f;
    tsr_user u, who;
    tsr_auth_cred cur, fresh;
    tsr_session s;
    int64_t retry = 0;

    CHECK(fx_open(&f));
    CHECK(mkuser(&f, "olivia", &u));
    CHECK(tsr_auth_session_create(f.auth, &u, "198.51.100.9", "ua", T0, &cur) == TSR_OK);
    CHECK(tsr_auth_session_resolve(f.auth, cur.cookie, 43, T0 + 1, &s, NULL) == TSR_OK);
    for (int i = 0; i < 3; i++)
        CHECK(tsr_auth_password_change_limited(f.auth, &s, "olivia", "198.51.100.9", "wrong one",
                                               9, "new password 1", 14, T0 + 2, &fresh,
                                               &retry) == TSR_ERR_INVALID_CREDENTIALS);
    CHECK(tsr_auth_password_change_limited(f.auth, &s, "olivia", "198.51.100.9", PW, PWLEN,
                                           "new password 1", 14, T0 + 2, &fresh,
                                           &retry) == TSR_ERR_RATE_LIMITED);
    CHECK(retry >= 1);
    CHECK(fresh.cookie[0] == '\0');
    /* The password did not change and the limiter is shared with the login form. */
    CHECK(tsr_auth_login(f.auth, "olivia", 6, PW, PWLEN, "203.0.113.7", T0 + 2, &who, &retry) ==
          TSR_ERR_RATE_LIMITED);
    /* Twin: once the window has passed, the right password changes it. */
    CHECK(tsr_auth_password_change_limited(f.auth, &s, "olivia", "198.51.100.9", PW, PWLEN,
                                           "new password 1", 14, T0 + 3600, &fresh,
                                           &retry) == TSR_OK);
    CHECK(fresh.cookie[0] != '\0');
    tsr_auth_cred_wipe(&cur);
    tsr_auth_cred_wipe(&fresh);
    fx_close(&f);
}

int main(void)
{
    if (tsr_crypto_init() != TSR_OK) {
        fprintf(stderr, "crypto init failed\n");
        return 1;
    }
    tsr_log_set_fd(-1);
    TSR_RUN(password_policy_is_8_to_256_bytes);
    TSR_RUN(argon2id_hash_verify_and_params);
    TSR_RUN(ct_helpers_compare_by_hash);
    TSR_RUN(usernames_and_roles_are_validated);
    TSR_RUN(wrong_password_and_unknown_user_fail_alike);
    TSR_RUN(rehash_on_login_when_params_change);
    TSR_RUN(session_create_and_resolve);
    TSR_RUN(session_idle_and_absolute_expiry);
    TSR_RUN(idle_slide_writes_at_most_once_a_minute);
    TSR_RUN(csrf_token_is_derived_and_checked);
    TSR_RUN(session_cap_evicts_the_oldest);
    TSR_RUN(revoke_own_others_and_not_another_users);
    TSR_RUN(password_change_rotates_current_and_kills_others);
    TSR_RUN(password_change_loses_to_an_admin_disable_during_hashing);
    TSR_RUN(password_change_keeps_a_concurrent_role_change);
    TSR_RUN(password_change_after_the_session_was_revoked_creates_nothing);
    TSR_RUN(login_racing_a_disable_creates_no_session);
    TSR_RUN(admin_password_reset_keeps_flags);
    TSR_RUN(admin_key_generated_once_and_verified_by_hash);
    TSR_RUN(admin_user_operations);
    TSR_RUN(rate_limit_trips_after_n_failures_and_recovers);
    TSR_RUN(rate_limit_per_ip_across_usernames);
    TSR_RUN(success_clears_the_username_bucket_not_the_ips);
    TSR_RUN(audit_logs_hold_no_secrets);
    TSR_RUN(password_change_is_rate_limited_like_login);
    return tsr_test_summary();
}
