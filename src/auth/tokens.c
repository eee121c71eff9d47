/* tokens.c: access tokens (RFC 9068 at+jwt), the OAuth password and refresh
 * grants with rotation and reuse detection, RFC 7009 revoke, RFC 7662
 * introspection and bearer verification by mode. See tokens.h for the design. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/auth_int.h"
#include "auth/revset.h"
#include "auth/vcache.h"
#include "common/log.h"

#define REFRESH_SECRET_BYTES 32
#define SEAL_LABEL "tessera refresh seal v1"
#define LOOKUP_ATTEMPTS 4 /* a lost rotation race re-reads; more losses mean a storm */

static int64_t min64(int64_t x, int64_t y)
{
    return x < y ? x : y;
}

void tsr_auth_grant_wipe(tsr_auth_grant *g)
{
    if (g != NULL)
        tsr_wipe(g, sizeof *g);
}

const char *tsr_auth_issuer(const tsr_auth *a)
{
    return a != NULL ? a->opts.issuer : "";
}

tsr_err tsr_auth_set_default_issuer(tsr_auth *a, const char *public_url)
{
    size_t n;

    if (a == NULL || public_url == NULL)
        return TSR_ERR_INVALID;
    n = strlen(public_url);
    if (n == 0 || n > TSR_ISSUER_MAX)
        return TSR_ERR_INVALID;
    if (a->opts.issuer[0] == '\0')
        memcpy(a->opts.issuer, public_url, n + 1);
    return TSR_OK;
}

/* RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by one SP. */
tsr_err tsr_auth_scope_check(const char *scope, size_t n)
{
    int at_start = 1;

    if (scope == NULL || n > TSR_SCOPE_MAX)
        return TSR_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)scope[i];
        if (c == ' ') {
            if (at_start)
                return TSR_ERR_INVALID;
            at_start = 1;
            continue;
        }
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return TSR_ERR_INVALID;
        at_start = 0;
    }
    return n > 0 && at_start ? TSR_ERR_INVALID : TSR_OK;
}

/* ---- access tokens ---- */

static tsr_err roles_array(const char *roles, json_t **out)
{
    json_t *arr = json_array();
    const char *p = roles;

    *out = NULL;
    if (arr == NULL)
        return TSR_ERR_NOMEM;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len > 0 && json_array_append_new(arr, json_stringn(p, len)) != 0) {
            json_decref(arr);
            return TSR_ERR_NOMEM;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    *out = arr;
    return TSR_OK;
}

/* Signs an access token for user u bound to session sid into out. */
static tsr_err issue_access(tsr_auth *a, const tsr_user *u, const char *sid, const char *scope,
                            int64_t now, tsr_auth_grant *out)
{
    char jti[TSR_ID_MAX + 1];
    json_t *claims = NULL, *roles = NULL;
    tsr_jwk *key = NULL;
    char *tok = NULL;
    size_t len = 0;
    tsr_err rc;

    rc = tsr_auth_rand_id("", jti);
    if (rc != TSR_OK)
        return rc;
    rc = roles_array(u->roles, &roles);
    if (rc != TSR_OK)
        return rc;
    claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:o, s:s, s:s}", "iss",
                       a->opts.issuer, "sub", u->id, "aud", a->opts.audience, "exp",
                       (json_int_t)(now + a->opts.access_ttl), "iat", (json_int_t)now, "nbf",
                       (json_int_t)now, "jti", jti, "sid", sid, "scope", scope, "roles", roles,
                       "username", u->username, "client_id", a->opts.audience);
    if (claims == NULL)
        return TSR_ERR_NOMEM;
    pthread_rwlock_rdlock(&a->keys_rw);
    if (a->keys != NULL && a->keys->active != NULL)
        key = tsr_jwk_ref(a->keys->active);
    pthread_rwlock_unlock(&a->keys_rw);
    if (key == NULL) {
        rc = TSR_ERR_UNAVAILABLE;
        goto out;
    }
    rc = tsr_jwt_sign(key, "at+jwt", claims, &tok, &len);
    if (rc != TSR_OK)
        goto out;
    if (len >= sizeof out->access_token) {
        rc = TSR_ERR_TOO_LARGE;
        goto out;
    }
    memcpy(out->access_token, tok, len + 1);
    out->access_len = len;
    out->expires_in = a->opts.access_ttl;
out:
    if (tok != NULL) {
        tsr_wipe(tok, len);
        free(tok);
    }
    tsr_jwk_free(key);
    json_decref(claims);
    return rc;
}

tsr_err tsr_auth_access_for_session(tsr_auth *a, const tsr_session *s, const tsr_user *u,
                                    int64_t now, tsr_auth_grant *out)
{
    tsr_err rc;

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (a == NULL || s == NULL || u == NULL || s->id[0] == '\0' ||
        strcmp(s->user_id, u->id) != 0)
        return TSR_ERR_INVALID;
    rc = issue_access(a, u, s->id, s->scope, now, out);
    if (rc != TSR_OK) {
        tsr_auth_grant_wipe(out);
        return rc;
    }
    out->session = *s;
    out->user = *u;
    out->user.pwhash[0] = '\0';
    snprintf(out->scope, sizeof out->scope, "%s", s->scope);
    return TSR_OK;
}

/* ---- refresh tokens ---- */

/* Decodes a refresh token's text to its secret: exactly 43 strict base64url chars. */
static int refresh_decode(const char *tok, size_t len, uint8_t secret[REFRESH_SECRET_BYTES])
{
    size_t n = 0;
    if (tok == NULL || len != TSR_REFRESH_TOKEN_CHARS)
        return 0;
    if (tsr_b64url_decode(tok, len, secret, REFRESH_SECRET_BYTES, &n) != TSR_OK ||
        n != REFRESH_SECRET_BYTES) {
        tsr_wipe(secret, REFRESH_SECRET_BYTES);
        return 0;
    }
    return 1;
}

/* The family of a refresh token given as text, for revoke and introspection.
 * *is_refresh is 0 when the text cannot be a refresh token (then it may be an
 * access token) and nothing is looked up. The sealed successor is wiped. */
static tsr_err refresh_find(tsr_auth *a, const char *tok, size_t len, tsr_session *s, tsr_user *u,
                            tsr_refresh_match *m, int *is_refresh)
{
    uint8_t secret[REFRESH_SECRET_BYTES], hash[TSR_HASH_BYTES];
    tsr_err rc;

    *is_refresh = refresh_decode(tok, len, secret);
    if (!*is_refresh)
        return TSR_ERR_NOT_FOUND;
    rc = tsr_sha256(secret, sizeof secret, hash);
    tsr_wipe(secret, sizeof secret);
    if (rc != TSR_OK)
        return rc;
    rc = tsr_store_refresh_lookup(a->store, hash, s, u, m);
    tsr_wipe(m->sealed, sizeof m->sealed);
    return rc;
}

/* The key that seals a successor: only the holder of the spent token has it. */
static tsr_err seal_key(const uint8_t secret[REFRESH_SECRET_BYTES],
                        uint8_t key[TSR_SEAL_KEY_BYTES])
{
    uint8_t buf[sizeof SEAL_LABEL - 1 + REFRESH_SECRET_BYTES];
    tsr_err rc;

    memcpy(buf, SEAL_LABEL, sizeof SEAL_LABEL - 1);
    memcpy(buf + sizeof SEAL_LABEL - 1, secret, REFRESH_SECRET_BYTES);
    rc = tsr_sha256(buf, sizeof buf, key);
    tsr_wipe(buf, sizeof buf);
    return rc;
}

static tsr_err new_refresh(uint8_t secret[REFRESH_SECRET_BYTES],
                           char text[TSR_REFRESH_TOKEN_CHARS + 1], uint8_t hash[TSR_HASH_BYTES])
{
    size_t n = 0;
    tsr_err rc = tsr_rand(secret, REFRESH_SECRET_BYTES);
    if (rc != TSR_OK)
        return rc;
    rc = tsr_b64url_encode(secret, REFRESH_SECRET_BYTES, text, TSR_REFRESH_TOKEN_CHARS + 1, &n);
    if (rc != TSR_OK || n != TSR_REFRESH_TOKEN_CHARS)
        return rc != TSR_OK ? rc : TSR_ERR_INTERNAL;
    return tsr_sha256(secret, REFRESH_SECRET_BYTES, hash);
}

static int family_live(const tsr_session *s, const tsr_user *u, int64_t now)
{
    return s->kind == TSR_SESSION_REFRESH && s->expires_at > now && s->idle_expires_at > now &&
           !u->disabled;
}

/* Ends a family after reuse: the store's revocation row kills its access tokens. */
static void family_kill(tsr_auth *a, const tsr_session *s, const char *why)
{
    tsr_err rc = tsr_store_session_delete(a->store, s->id);
    if (rc != TSR_OK && rc != TSR_ERR_NOT_FOUND)
        tsr_log(TSR_LOG_ERROR, "could not end a reused refresh family", TSR_F_ERR(rc),
                TSR_F_STR("session_id", s->id));
    tsr_log_event(TSR_EV_TOKEN_REUSE, TSR_F_STR("user_id", s->user_id),
                  TSR_F_STR("session_id", s->id), TSR_F_STR("reason", why));
    tsr_auth_revocations_changed(a);
}

tsr_err tsr_auth_password_grant(tsr_auth *a, const char *username, size_t ulen, const char *pw,
                                size_t pwlen, const char *scope, const char *ip,
                                const char *user_agent, int64_t now, tsr_auth_grant *out,
                                int64_t *retry_after)
{
    uint8_t secret[REFRESH_SECRET_BYTES];
    tsr_session *s;
    tsr_user u;
    tsr_err rc;

    if (retry_after != NULL)
        *retry_after = 0;
    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    memset(&u, 0, sizeof u);
    memset(secret, 0, sizeof secret);
    if (a == NULL || scope == NULL || now < 0 || now > INT64_MAX - TSR_DURATION_MAX)
        return TSR_ERR_INVALID;
    rc = tsr_auth_scope_check(scope, strlen(scope));
    if (rc != TSR_OK)
        return rc;
    rc = tsr_auth_login(a, username, ulen, pw, pwlen, ip, now, &u, retry_after);
    if (rc == TSR_ERR_INVALID_CREDENTIALS)
        rc = TSR_ERR_INVALID_GRANT;
    if (rc != TSR_OK)
        goto out;
    s = &out->session;
    rc = new_refresh(secret, out->refresh_token, s->secret_hash);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_auth_rand_id("ses_", s->id);
    if (rc != TSR_OK)
        goto out;
    memcpy(s->user_id, u.id, sizeof s->user_id);
    s->kind = TSR_SESSION_REFRESH;
    s->created_at = now;
    s->last_seen_at = now;
    s->expires_at = now + a->opts.refresh_ttl;
    s->idle_expires_at = min64(now + a->opts.refresh_idle_ttl, s->expires_at);
    tsr_auth_copy_printable(s->ip, sizeof s->ip, ip);
    tsr_auth_copy_printable(s->user_agent, sizeof s->user_agent, user_agent);
    snprintf(s->scope, sizeof s->scope, "%s", scope);
    rc = tsr_store_session_create(a->store, s, a->opts.max_per_user, now);
    if (rc == TSR_ERR_NOT_FOUND)
        rc = TSR_ERR_INVALID_GRANT; /* disabled or deleted since the password check */
    if (rc != TSR_OK)
        goto out;
    tsr_auth_revocations_changed(a); /* the cap may have evicted older sessions */
    tsr_log_event(TSR_EV_SESSION_CREATED, TSR_F_STR("user_id", s->user_id),
                  TSR_F_STR("session_id", s->id), TSR_F_STR("ip", s->ip),
                  TSR_F_STR("kind", "refresh"));
    rc = issue_access(a, &u, s->id, scope, now, out);
    if (rc != TSR_OK)
        goto out;
    u.pwhash[0] = '\0';
    out->user = u;
    snprintf(out->scope, sizeof out->scope, "%s", scope);
out:
    tsr_wipe(secret, sizeof secret);
    tsr_wipe(&u, sizeof u);
    if (rc != TSR_OK)
        tsr_auth_grant_wipe(out);
    return rc;
}

/* A spent token presented within the grace: the successor, recovered from its
 * seal with the spent token itself, and a fresh access token. */
static tsr_err grace_reply(tsr_auth *a, const uint8_t secret[REFRESH_SECRET_BYTES],
                           const tsr_session *s, const tsr_user *u, const tsr_refresh_match *m,
                           int64_t now, tsr_auth_grant *out)
{
    uint8_t key[TSR_SEAL_KEY_BYTES], succ[REFRESH_SECRET_BYTES];
    size_t n = 0;
    tsr_err rc;

    rc = seal_key(secret, key);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_unseal(key, (const uint8_t *)s->id, strlen(s->id), m->sealed, m->sealed_len, succ,
                    sizeof succ, &n);
    if (rc != TSR_OK || n != sizeof succ) {
        rc = TSR_ERR_INVALID_GRANT;
        goto out;
    }
    rc = tsr_b64url_encode(succ, sizeof succ, out->refresh_token, sizeof out->refresh_token, &n);
    if (rc != TSR_OK)
        goto out;
    rc = issue_access(a, u, s->id, s->scope, now, out);
out:
    tsr_wipe(key, sizeof key);
    tsr_wipe(succ, sizeof succ);
    return rc;
}

/* Rotates the current token of family s to a new one, sealed under the old. */
static tsr_err rotate_family(tsr_auth *a, const uint8_t secret[REFRESH_SECRET_BYTES],
                             const tsr_session *s, int64_t now, tsr_auth_grant *out)
{
    uint8_t next[REFRESH_SECRET_BYTES], hash[TSR_HASH_BYTES], key[TSR_SEAL_KEY_BYTES];
    uint8_t sealed[TSR_SEALED_MAX];
    size_t sealed_len = 0;
    tsr_err rc;

    rc = new_refresh(next, out->refresh_token, hash);
    if (rc != TSR_OK)
        goto out;
    rc = seal_key(secret, key);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_seal(key, (const uint8_t *)s->id, strlen(s->id), next, sizeof next, sealed,
                  sizeof sealed, &sealed_len);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_store_refresh_rotate(a->store, s->id, s->generation, hash, sealed, sealed_len, now,
                                  min64(now + a->opts.refresh_idle_ttl, s->expires_at));
out:
    tsr_wipe(next, sizeof next);
    tsr_wipe(key, sizeof key);
    if (rc != TSR_OK)
        tsr_wipe(out->refresh_token, sizeof out->refresh_token);
    return rc;
}

tsr_err tsr_auth_refresh_grant(tsr_auth *a, const char *token, size_t len, int64_t now,
                               tsr_auth_grant *out)
{
    uint8_t secret[REFRESH_SECRET_BYTES], hash[TSR_HASH_BYTES];
    tsr_session s;
    tsr_user u;
    tsr_refresh_match m;
    tsr_err rc = TSR_ERR_INVALID_GRANT;
    int64_t grace;

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    memset(&s, 0, sizeof s);
    memset(&u, 0, sizeof u);
    memset(&m, 0, sizeof m);
    if (a == NULL)
        return TSR_ERR_INVALID;
    if (!refresh_decode(token, len, secret))
        return TSR_ERR_INVALID_GRANT;
    rc = tsr_sha256(secret, sizeof secret, hash);
    if (rc != TSR_OK)
        goto out;
    grace = a->opts.reuse_grace;
    for (int attempt = 0; attempt < LOOKUP_ATTEMPTS; attempt++) {
        rc = tsr_store_refresh_lookup(a->store, hash, &s, &u, &m);
        if (rc == TSR_ERR_NOT_FOUND)
            rc = TSR_ERR_INVALID_GRANT;
        if (rc != TSR_OK)
            goto out;
        if (!family_live(&s, &u, now)) {
            rc = TSR_ERR_INVALID_GRANT;
            goto out;
        }
        if (m.spent) {
            /* Only the latest spent token, only within the grace, gets its
             * successor; anything else is a replay: the family dies. */
            if (m.spent_generation == s.generation - 1 && m.sealed_len > 0 && grace >= 0 &&
                now - m.spent_at <= grace) {
                rc = grace_reply(a, secret, &s, &u, &m, now, out);
                if (rc == TSR_OK)
                    goto done;
                if (rc != TSR_ERR_INVALID_GRANT)
                    goto out;
            }
            family_kill(a, &s, "spent refresh token presented again");
            rc = TSR_ERR_INVALID_GRANT;
            goto out;
        }
        rc = rotate_family(a, secret, &s, now, out);
        if (rc == TSR_ERR_CONFLICT)
            continue; /* another request rotated it first: now it is spent */
        if (rc == TSR_ERR_NOT_FOUND)
            rc = TSR_ERR_INVALID_GRANT;
        if (rc != TSR_OK)
            goto out;
        s.generation++;
        rc = issue_access(a, &u, s.id, s.scope, now, out);
        if (rc != TSR_OK)
            goto out;
        goto done;
    }
    rc = TSR_ERR_UNAVAILABLE;
    goto out;
done:
    out->session = s;
    out->user = u;
    snprintf(out->scope, sizeof out->scope, "%s", s.scope);
    rc = TSR_OK;
out:
    tsr_wipe(secret, sizeof secret);
    tsr_wipe(hash, sizeof hash);
    tsr_wipe(&m, sizeof m);
    if (rc != TSR_OK)
        tsr_auth_grant_wipe(out);
    return rc;
}

/* ---- verification ---- */

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n;
    if (src == NULL) {
        dst[0] = '\0';
        return 1;
    }
    n = strlen(src);
    if (n >= cap)
        return 0;
    memcpy(dst, src, n + 1);
    return 1;
}

/* Thread-local: the verified claims are ~16 KiB, kept off small request stacks. */
static _Thread_local tsr_jwt tl_jwt;

static tsr_err verify_signature(tsr_auth *a, const char *token, size_t len, int64_t now,
                                tsr_bearer *out)
{
    tsr_jwt *jwt = &tl_jwt;
    tsr_jwt_policy pol = tsr_jwt_policy_access(a->opts.issuer, a->opts.audience);
    size_t used = 0;
    tsr_err rc;

    pthread_rwlock_rdlock(&a->keys_rw);
    if (a->keys == NULL)
        rc = TSR_ERR_TOKEN_KID;
    else
        rc = tsr_jwt_verify(a->keys->verify, &pol, now, token, len, jwt);
    pthread_rwlock_unlock(&a->keys_rw);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_ERR_TOKEN_CLAIMS;
    if (jwt->sub == NULL || jwt->sid == NULL || jwt->jti == NULL || jwt->sub[0] == '\0' ||
        jwt->sid[0] == '\0' || jwt->jti[0] == '\0' || !copy_str(out->sub, sizeof out->sub, jwt->sub) ||
        !copy_str(out->sid, sizeof out->sid, jwt->sid) ||
        !copy_str(out->jti, sizeof out->jti, jwt->jti) ||
        !copy_str(out->username, sizeof out->username, jwt->username) ||
        !copy_str(out->scope, sizeof out->scope, jwt->scope))
        goto out;
    for (size_t i = 0; i < jwt->nroles; i++) {
        size_t rl = strlen(jwt->roles[i]);
        if (used + rl + (i > 0) >= sizeof out->roles)
            goto out;
        if (i > 0)
            out->roles[used++] = ',';
        memcpy(out->roles + used, jwt->roles[i], rl);
        used += rl;
    }
    out->roles[used] = '\0';
    out->exp = jwt->exp;
    out->iat = jwt->iat;
    rc = TSR_OK;
out:
    tsr_jwt_reset(jwt);
    return rc;
}

/* Stateful mode: the session must still exist, unexpired, for this subject,
 * with an enabled user; roles and username come from the store. */
static tsr_err check_store(tsr_auth *a, tsr_bearer *b, int64_t now)
{
    tsr_session s;
    tsr_user u;
    tsr_err rc;

    if (!tsr_auth_hot_sid_get(a, b->sid, now, &s, &u)) {
        rc = tsr_store_session_get(a->store, b->sid, &s);
        if (rc == TSR_ERR_NOT_FOUND)
            return TSR_ERR_TOKEN_REVOKED;
        if (rc != TSR_OK)
            return TSR_ERR_UNAVAILABLE;
        if (strcmp(s.user_id, b->sub) != 0 || s.expires_at <= now || s.idle_expires_at <= now)
            return TSR_ERR_TOKEN_REVOKED;
        rc = tsr_store_user_get(a->store, s.user_id, &u);
        if (rc == TSR_ERR_NOT_FOUND)
            return TSR_ERR_TOKEN_REVOKED;
        if (rc != TSR_OK)
            return TSR_ERR_UNAVAILABLE;
        tsr_auth_hot_sid_put(a, &s, &u, now);
    }
    if (strcmp(s.user_id, b->sub) != 0 || s.expires_at <= now || s.idle_expires_at <= now) {
        tsr_wipe(&u, sizeof u);
        return TSR_ERR_TOKEN_REVOKED;
    }
    rc = u.disabled ? TSR_ERR_TOKEN_REVOKED : TSR_OK;
    if (rc == TSR_OK && (!copy_str(b->roles, sizeof b->roles, u.roles) ||
                         !copy_str(b->username, sizeof b->username, u.username)))
        rc = TSR_ERR_TOKEN_CLAIMS;
    tsr_wipe(&u, sizeof u);
    return rc;
}

tsr_err tsr_auth_bearer_verify(tsr_auth *a, const char *token, size_t len, tsr_verify_mode mode,
                               int64_t now, tsr_bearer *out)
{
    uint8_t key[TSR_SHA256_BYTES];
    int hit = 0;
    tsr_err rc;

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (a == NULL || token == NULL || mode == TSR_VERIFY_INVALID)
        return TSR_ERR_INVALID;
    if (len > TSR_JWT_MAX_BYTES)
        return TSR_ERR_TOKEN_TOO_LARGE;
    if (a->vcache != NULL) {
        rc = tsr_sha256(token, len, key);
        if (rc != TSR_OK)
            return rc;
        hit = tsr_vcache_get(a->vcache, key, now, TSR_JWT_DEFAULT_LEEWAY, out);
    }
    if (!hit) {
        rc = verify_signature(a, token, len, now, out);
        if (rc != TSR_OK) {
            memset(out, 0, sizeof *out);
            return rc;
        }
        if (a->vcache != NULL)
            tsr_vcache_put(a->vcache, key, out);
    }
    rc = TSR_OK;
    if (mode != TSR_VERIFY_STATELESS)
        rc = tsr_auth_revocations_fresh(a, now);
    if (rc == TSR_OK && mode != TSR_VERIFY_STATELESS &&
        tsr_auth_is_revoked(a, out->sid, out->jti, now))
        rc = TSR_ERR_TOKEN_REVOKED;
    if (rc == TSR_OK && mode == TSR_VERIFY_STATEFUL)
        rc = check_store(a, out, now);
    if (rc != TSR_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

void tsr_auth_cache_stats(tsr_auth *a, uint64_t *hits, uint64_t *misses)
{
    size_t entries = 0;
    if (hits != NULL)
        *hits = 0;
    if (misses != NULL)
        *misses = 0;
    if (a != NULL && a->vcache != NULL && hits != NULL && misses != NULL)
        tsr_vcache_stats(a->vcache, hits, misses, &entries);
}

/* ---- RFC 7009 and RFC 7662 ---- */

tsr_err tsr_auth_oauth_revoke(tsr_auth *a, const char *token, size_t len, const char *hint,
                              int64_t now)
{
    int is_refresh = 0;
    tsr_session s;
    tsr_user u;
    tsr_refresh_match m;
    tsr_bearer b;
    tsr_err rc = TSR_OK;

    (void)hint; /* the two kinds cannot be confused: 43 chars vs a JWS */
    if (a == NULL || token == NULL)
        return TSR_ERR_INVALID;
    rc = refresh_find(a, token, len, &s, &u, &m, &is_refresh);
    if (is_refresh) {
        if (rc == TSR_ERR_NOT_FOUND)
            return TSR_OK;
        if (rc != TSR_OK)
            return rc;
        rc = tsr_store_session_delete(a->store, s.id);
        if (rc == TSR_ERR_NOT_FOUND)
            rc = TSR_OK;
        if (rc != TSR_OK)
            return rc;
        tsr_log_event(TSR_EV_SESSION_REVOKED, TSR_F_STR("user_id", s.user_id),
                      TSR_F_STR("session_id", s.id), TSR_F_STR("via", "oauth_revoke"));
        tsr_auth_revocations_changed(a);
        return TSR_OK;
    }
    /* An access token of ours: its jti is refused until it expires. Anything that
     * does not verify is nobody's live token: nothing to do. */
    if (tsr_auth_bearer_verify(a, token, len, TSR_VERIFY_STATELESS, now, &b) != TSR_OK)
        return TSR_OK;
    rc = tsr_store_revocation_add(a->store, TSR_REVOKE_JTI, b.jti, now, b.exp);
    if (rc != TSR_OK)
        return rc;
    tsr_log_event(TSR_EV_SESSION_REVOKED, TSR_F_STR("user_id", b.sub),
                  TSR_F_STR("session_id", b.sid), TSR_F_STR("via", "oauth_revoke_access"));
    tsr_auth_revocations_changed(a);
    return TSR_OK;
}

tsr_err tsr_auth_introspect(tsr_auth *a, const char *token, size_t len, int64_t now,
                            tsr_token_info *out)
{
    int is_refresh = 0;
    tsr_session s;
    tsr_user u;
    tsr_refresh_match m;
    tsr_bearer b;
    tsr_err rc;

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (a == NULL || token == NULL)
        return TSR_ERR_INVALID;
    rc = refresh_find(a, token, len, &s, &u, &m, &is_refresh);
    if (is_refresh) {
        if (rc == TSR_ERR_NOT_FOUND)
            return TSR_OK;
        if (rc != TSR_OK)
            return rc;
        if (!m.spent && family_live(&s, &u, now)) {
            out->active = 1;
            out->token_type = "refresh_token";
            snprintf(out->sub, sizeof out->sub, "%s", u.id);
            snprintf(out->sid, sizeof out->sid, "%s", s.id);
            snprintf(out->username, sizeof out->username, "%s", u.username);
            snprintf(out->scope, sizeof out->scope, "%s", s.scope);
            out->exp = min64(s.expires_at, s.idle_expires_at);
            out->iat = s.last_seen_at;
        }
        tsr_wipe(&u, sizeof u);
        return TSR_OK;
    }
    rc = tsr_auth_bearer_verify(a, token, len, TSR_VERIFY_STATEFUL, now, &b);
    if (rc == TSR_ERR_UNAVAILABLE)
        return rc;
    if (rc != TSR_OK)
        return TSR_OK;
    out->active = 1;
    out->token_type = "access_token";
    memcpy(out->sub, b.sub, sizeof out->sub);
    memcpy(out->sid, b.sid, sizeof out->sid);
    memcpy(out->jti, b.jti, sizeof out->jti);
    memcpy(out->username, b.username, sizeof out->username);
    memcpy(out->scope, b.scope, sizeof out->scope);
    out->exp = b.exp;
    out->iat = b.iat;
    return TSR_OK;
}
