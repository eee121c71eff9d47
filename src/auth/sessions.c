/* sessions.c: cookie sessions: issue (random secret, stored only as SHA-256),
 * resolve (look-up by hash, expiry, idle slide at most once a minute), the
 * derived CSRF token, revocation, and the password change that rotates the
 * current session and ends the others. */
#include <string.h>

#include "auth/auth_int.h"
#include "common/log.h"
#include "jose/jose.h"

#define CSRF_LABEL "tessera csrf v1"

/* Decodes a cookie value: exactly 43 strict base64url chars of 32 bytes. */
static tsr_err cookie_decode(const char *cookie, size_t n,
                             uint8_t secret[TSR_SESSION_SECRET_BYTES])
{
    size_t got = 0;

    if (cookie == NULL || n != TSR_COOKIE_VALUE_CHARS)
        return TSR_ERR_INVALID;
    if (tsr_b64url_decode(cookie, n, secret, TSR_SESSION_SECRET_BYTES, &got) != TSR_OK ||
        got != TSR_SESSION_SECRET_BYTES) {
        tsr_wipe(secret, TSR_SESSION_SECRET_BYTES);
        return TSR_ERR_INVALID;
    }
    return TSR_OK;
}

static tsr_err csrf_from_secret(const uint8_t secret[TSR_SESSION_SECRET_BYTES],
                                char out[TSR_CSRF_TOKEN_CHARS + 1])
{
    tsr_err rc = TSR_ERR_INTERNAL;
    uint8_t buf[sizeof CSRF_LABEL - 1 + TSR_SESSION_SECRET_BYTES];
    uint8_t h[TSR_SHA256_BYTES];
    size_t n = 0;

    memcpy(buf, CSRF_LABEL, sizeof CSRF_LABEL - 1);
    memcpy(buf + sizeof CSRF_LABEL - 1, secret, TSR_SESSION_SECRET_BYTES);
    rc = tsr_sha256(buf, sizeof buf, h);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_b64url_encode(h, sizeof h, out, TSR_CSRF_TOKEN_CHARS + 1, &n);
    if (rc != TSR_OK)
        goto out;
    if (n != TSR_CSRF_TOKEN_CHARS) {
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        memset(out, 0, TSR_CSRF_TOKEN_CHARS + 1);
    tsr_wipe(buf, sizeof buf);
    tsr_wipe(h, sizeof h);
    return rc;
}

tsr_err tsr_auth_csrf_derive(const char *cookie, size_t n, char out[TSR_CSRF_TOKEN_CHARS + 1])
{
    tsr_err rc = TSR_ERR_INTERNAL;
    uint8_t secret[TSR_SESSION_SECRET_BYTES];

    memset(secret, 0, sizeof secret);
    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, TSR_CSRF_TOKEN_CHARS + 1);
    rc = cookie_decode(cookie, n, secret);
    if (rc != TSR_OK)
        goto out;
    rc = csrf_from_secret(secret, out);
out:
    tsr_wipe(secret, sizeof secret);
    return rc;
}

tsr_err tsr_auth_csrf_check(const char *cookie, size_t n, const char *presented, size_t plen)
{
    tsr_err rc = TSR_ERR_CSRF;
    char want[TSR_CSRF_TOKEN_CHARS + 1];

    memset(want, 0, sizeof want);
    /* The length of a CSRF token is public; only its content is compared in
     * constant time. */
    if (presented == NULL || plen != TSR_CSRF_TOKEN_CHARS)
        goto out;
    if (tsr_auth_csrf_derive(cookie, n, want) != TSR_OK)
        goto out;
    if (!tsr_ct_eq(want, presented, TSR_CSRF_TOKEN_CHARS))
        goto out;
    rc = TSR_OK;
out:
    tsr_wipe(want, sizeof want);
    return rc;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Fills a fresh secret, its cookie and CSRF forms, and a new id into cred, and
 * the hash into cred->session. */
static tsr_err new_secret(tsr_auth_cred *cred)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    uint8_t secret[TSR_SESSION_SECRET_BYTES];
    size_t n = 0;

    memset(secret, 0, sizeof secret);
    rc = tsr_rand(secret, sizeof secret);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_b64url_encode(secret, sizeof secret, cred->cookie, sizeof cred->cookie, &n);
    if (rc != TSR_OK)
        goto out;
    if (n != TSR_COOKIE_VALUE_CHARS) {
        rc = TSR_ERR_INTERNAL;
        goto out;
    }
    rc = csrf_from_secret(secret, cred->csrf);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_sha256(secret, sizeof secret, cred->session.secret_hash);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_auth_rand_id("ses_", cred->session.id);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_OK;
out:
    tsr_wipe(secret, sizeof secret);
    return rc;
}

tsr_err tsr_auth_session_create(tsr_auth *a, const tsr_user *u, const char *ip,
                                const char *user_agent, int64_t now, tsr_auth_cred *out)
{
    tsr_err rc = TSR_ERR_INTERNAL;

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (a == NULL || u == NULL || u->id[0] == '\0' || now < 0 ||
        now > INT64_MAX - TSR_DURATION_MAX) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    rc = new_secret(out);
    if (rc != TSR_OK)
        goto out;
    tsr_session *s = &out->session;
    memcpy(s->user_id, u->id, sizeof s->user_id);
    s->kind = TSR_SESSION_COOKIE;
    s->created_at = now;
    s->last_seen_at = now;
    s->expires_at = now + a->opts.absolute_ttl;
    s->idle_expires_at = min64(now + a->opts.idle_ttl, s->expires_at);
    tsr_auth_copy_printable(s->ip, sizeof s->ip, ip);
    tsr_auth_copy_printable(s->user_agent, sizeof s->user_agent, user_agent);
    rc = tsr_store_session_create(a->store, s, a->opts.max_per_user, now);
    /* The store refuses, in the insert itself, a user disabled or deleted since the
     * password was checked: answered like any disabled user's login. */
    if (rc == TSR_ERR_NOT_FOUND)
        rc = TSR_ERR_INVALID_CREDENTIALS;
    if (rc != TSR_OK)
        goto out;
    tsr_auth_revocations_changed(a); /* the cap may have evicted older sessions */
    tsr_log_event(TSR_EV_SESSION_CREATED, TSR_F_STR("user_id", s->user_id),
                  TSR_F_STR("session_id", s->id), TSR_F_STR("ip", s->ip));
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        tsr_auth_cred_wipe(out);
    return rc;
}

tsr_err tsr_auth_session_resolve(tsr_auth *a, const char *cookie, size_t n, int64_t now,
                                 tsr_session *s, tsr_user *u)
{
    tsr_err rc = TSR_ERR_UNAUTHENTICATED;
    uint8_t secret[TSR_SESSION_SECRET_BYTES];
    uint8_t hash[TSR_SHA256_BYTES];
    tsr_session ss;
    tsr_user uu;
    int cached = 0;

    memset(secret, 0, sizeof secret);
    memset(hash, 0, sizeof hash);
    memset(&ss, 0, sizeof ss);
    memset(&uu, 0, sizeof uu);
    if (s != NULL)
        memset(s, 0, sizeof *s);
    if (u != NULL)
        memset(u, 0, sizeof *u);
    if (a == NULL || s == NULL) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (cookie_decode(cookie, n, secret) != TSR_OK) {
        rc = TSR_ERR_UNAUTHENTICATED;
        goto out;
    }
    rc = tsr_sha256(secret, sizeof secret, hash);
    if (rc != TSR_OK)
        goto out;
    /* The store finds the session by the hash (no secret is ever compared), and
     * its user in the same statement: one read transaction per cookie. */
    cached = tsr_auth_hot_session_get(a, hash, now, &ss, &uu);
    if (!cached) {
        rc = tsr_store_session_resolve(a->store, hash, &ss, &uu);
        if (rc == TSR_ERR_NOT_FOUND) {
            rc = TSR_ERR_UNAUTHENTICATED;
            goto out;
        }
        if (rc != TSR_OK)
            goto out;
    }
    if (ss.kind != TSR_SESSION_COOKIE || now >= ss.expires_at || now >= ss.idle_expires_at) {
        rc = TSR_ERR_UNAUTHENTICATED;
        goto out;
    }
    if (uu.disabled) {
        rc = TSR_ERR_UNAUTHENTICATED;
        goto out;
    }
    /* Slide the idle expiry, but write at most once a minute per session so
     * that verifying a cookie is a read; with an idle TTL under two minutes,
     * every half TTL, so that an active session never idles out. */
    int64_t touch_every = min64(TSR_SESSION_TOUCH_INTERVAL, a->opts.idle_ttl / 2);
    if (touch_every < 1)
        touch_every = 1;
    if (now - ss.last_seen_at >= touch_every) {
        int64_t idle = min64(now + a->opts.idle_ttl, ss.expires_at);
        tsr_err rt = tsr_store_session_touch(a->store, ss.id, now, idle);
        if (rt == TSR_OK) {
            ss.last_seen_at = now;
            ss.idle_expires_at = idle;
            cached = 0; /* refresh the cached copy below */
        } else if (rt == TSR_ERR_NOT_FOUND) {
            rc = TSR_ERR_UNAUTHENTICATED; /* revoked in the meantime */
            goto out;
        } else {
            tsr_log(TSR_LOG_WARN, "session touch failed", TSR_F_STR("session_id", ss.id),
                    TSR_F_ERR(rt));
        }
    }
    if (!cached)
        tsr_auth_hot_session_put(a, hash, &ss, &uu, now);
    *s = ss;
    if (u != NULL)
        *u = uu;
    rc = TSR_OK;
out:
    tsr_wipe(secret, sizeof secret);
    tsr_wipe(hash, sizeof hash);
    tsr_wipe(&ss, sizeof ss);
    tsr_wipe(&uu, sizeof uu);
    return rc;
}

tsr_err tsr_auth_session_list(tsr_auth *a, const char *user_id, int64_t now, tsr_session *out,
                              size_t max, size_t *n)
{
    tsr_err rc;

    if (n != NULL)
        *n = 0;
    if (a == NULL || user_id == NULL || out == NULL || n == NULL || max == 0)
        return TSR_ERR_INVALID;
    memset(out, 0, max * sizeof *out);
    rc = tsr_store_session_list(a->store, user_id, now, out, max, n);
    if (rc != TSR_OK)
        *n = 0;
    return rc;
}

tsr_err tsr_auth_session_revoke(tsr_auth *a, const char *user_id, const char *session_id)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_session ss;

    memset(&ss, 0, sizeof ss);
    if (a == NULL || user_id == NULL || session_id == NULL) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (session_id[0] == '\0' || strlen(session_id) > TSR_ID_MAX) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = tsr_store_session_get(a->store, session_id, &ss);
    if (rc != TSR_OK)
        goto out;
    /* Another user's session answers exactly like a session that does not exist. */
    if (strcmp(ss.user_id, user_id) != 0) {
        rc = TSR_ERR_NOT_FOUND;
        goto out;
    }
    rc = tsr_store_session_delete(a->store, ss.id);
    if (rc != TSR_OK)
        goto out;
    tsr_auth_revocations_changed(a);
    tsr_log_event(TSR_EV_SESSION_REVOKED, TSR_F_STR("user_id", user_id),
                  TSR_F_STR("session_id", ss.id));
    rc = TSR_OK;
out:
    tsr_wipe(&ss, sizeof ss);
    return rc;
}

tsr_err tsr_auth_session_revoke_others(tsr_auth *a, const char *user_id, const char *except_id,
                                       size_t *revoked)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    size_t n = 0;

    if (revoked != NULL)
        *revoked = 0;
    if (a == NULL || user_id == NULL)
        return TSR_ERR_INVALID;
    rc = tsr_store_session_delete_user(a->store, user_id, except_id, &n);
    if (rc != TSR_OK)
        return rc;
    tsr_auth_revocations_changed(a);
    tsr_log_event(TSR_EV_SESSIONS_REVOKED, TSR_F_STR("user_id", user_id),
                  TSR_F_INT("count", n), TSR_F_STR("kept", except_id));
    if (revoked != NULL)
        *revoked = n;
    return TSR_OK;
}

tsr_err tsr_auth_password_change(tsr_auth *a, const tsr_session *current, const char *current_pw,
                                 size_t curlen, const char *new_pw, size_t newlen, int64_t now,
                                 tsr_auth_cred *out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_user u;
    char newhash[TSR_PWHASH_MAX + 1];

    memset(&u, 0, sizeof u);
    memset(newhash, 0, sizeof newhash);
    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (a == NULL || current == NULL || current->id[0] == '\0') {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    /* The new password's policy first: no hashing for a request bound to fail. */
    rc = tsr_password_policy_check(new_pw, newlen);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_store_user_get(a->store, current->user_id, &u);
    if (rc == TSR_ERR_NOT_FOUND) {
        rc = TSR_ERR_UNAUTHENTICATED;
        goto out;
    }
    if (rc != TSR_OK)
        goto out;
    if (u.disabled) {
        rc = TSR_ERR_UNAUTHENTICATED;
        goto out;
    }
    rc = tsr_password_verify(u.pwhash, current_pw, curlen);
    if (rc == TSR_ERR_INVALID)
        rc = TSR_ERR_INVALID_CREDENTIALS; /* a malformed stored hash matches nothing */
    if (rc != TSR_OK)
        goto out;
    rc = tsr_password_hash(&a->opts.pw, new_pw, newlen, newhash, sizeof newhash);
    if (rc != TSR_OK)
        goto out;
    /* Two Argon2 passes later, u may be stale: the commit writes nothing of it
     * but the new hash, and only if u.pwhash is still the stored one. */
    rc = tsr_auth_password_change_commit(a, current, &u, newhash, now, out);
out:
    if (rc != TSR_OK)
        tsr_auth_cred_wipe(out);
    tsr_wipe(&u, sizeof u);
    tsr_wipe(newhash, sizeof newhash);
    return rc;
}

tsr_err tsr_auth_password_change_commit(tsr_auth *a, const tsr_session *current,
                                        const tsr_user *seen, const char *new_pwhash,
                                        int64_t now, tsr_auth_cred *out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    size_t nrev = 0;

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (a == NULL || current == NULL || seen == NULL || new_pwhash == NULL ||
        current->id[0] == '\0' || seen->id[0] == '\0' ||
        strncmp(current->user_id, seen->id, sizeof seen->id) != 0) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    /* The current session lives on under a new id and secret: whoever held the
     * old cookie (the reason for a password change, often) holds nothing. */
    rc = new_secret(out);
    if (rc != TSR_OK)
        goto out;
    tsr_session *s = &out->session;
    memcpy(s->user_id, seen->id, sizeof s->user_id);
    s->kind = current->kind != TSR_SESSION_INVALID ? current->kind : TSR_SESSION_COOKIE;
    s->created_at = current->created_at;
    s->last_seen_at = now;
    s->expires_at = current->expires_at;
    s->idle_expires_at = min64(now + a->opts.idle_ttl, s->expires_at);
    memcpy(s->ip, current->ip, sizeof s->ip);
    memcpy(s->user_agent, current->user_agent, sizeof s->user_agent);
    /* One store transaction: hash compare-and-swap, delete the current session and
     * every other, insert the successor. It fails whole (NOT_FOUND) when, since
     * seen was read, the hash changed, the user was disabled or deleted, or the
     * current session was revoked (logout, admin revoke-all): the caller is then
     * no longer authenticated, and no session is created for it. */
    rc = tsr_store_password_change(a->store, seen->id, seen->pwhash, new_pwhash, current->id, s,
                                   now, &nrev);
    if (rc == TSR_OK)
        tsr_auth_revocations_changed(a);
    if (rc == TSR_ERR_NOT_FOUND)
        rc = TSR_ERR_UNAUTHENTICATED;
    if (rc != TSR_OK)
        goto out;
    tsr_log_event(TSR_EV_PASSWORD_CHANGED, TSR_F_STR("user_id", seen->id),
                  TSR_F_STR("session_id", s->id), TSR_F_INT("sessions_revoked", nrev));
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        tsr_auth_cred_wipe(out);
    return rc;
}

tsr_err tsr_auth_password_change_limited(tsr_auth *a, const tsr_session *current,
                                         const char *username, const char *ip,
                                         const char *current_pw, size_t curlen,
                                         const char *new_pw, size_t newlen, int64_t now,
                                         tsr_auth_cred *out, int64_t *retry_after)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    size_t ulen = username != NULL ? strlen(username) : 0;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (retry_after != NULL)
        *retry_after = 0;
    if (a == NULL || username == NULL)
        return TSR_ERR_INVALID;
    rc = tsr_auth_login_check(a, username, ulen, ip, now, retry_after);
    if (rc != TSR_OK)
        return rc;
    rc = tsr_auth_password_change(a, current, current_pw, curlen, new_pw, newlen, now, out);
    if (rc == TSR_OK || rc == TSR_ERR_INVALID_CREDENTIALS)
        tsr_auth_login_record(a, username, ulen, ip, rc == TSR_OK, now);
    return rc;
}
