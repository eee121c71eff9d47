/* users.c: accounts: create, authenticate (with a dummy verify for unknown
 * usernames and rehash on login), login with rate limiting and audit lines, and
 * the administrator's operations (list, show, patch, revoke, delete, reset). */
#include <string.h>

#include "auth/auth_int.h"
#include "common/log.h"

static void user_wipe(tsr_user *u)
{
    tsr_wipe(u, sizeof *u);
}

tsr_err tsr_auth_user_create(tsr_auth *a, const char *username, size_t ulen, const char *pw,
                             size_t pwlen, const char *roles, int64_t now, tsr_user *out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_user u, existing;

    memset(&u, 0, sizeof u);
    memset(&existing, 0, sizeof existing);
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (a == NULL) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    rc = tsr_auth_username_check(username, ulen);
    if (rc != TSR_OK)
        goto out;
    if (roles == NULL)
        roles = "";
    rc = tsr_auth_roles_check(roles);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_password_policy_check(pw, pwlen);
    if (rc != TSR_OK)
        goto out;
    memcpy(u.username, username, ulen);
    u.username[ulen] = '\0';
    /* Fail fast before paying for a hash; the insert below still decides races. */
    rc = tsr_store_user_get_by_name(a->store, u.username, &existing);
    if (rc == TSR_OK) {
        rc = TSR_ERR_USERNAME_TAKEN;
        goto out;
    }
    if (rc != TSR_ERR_NOT_FOUND)
        goto out;
    rc = tsr_password_hash(&a->opts.pw, pw, pwlen, u.pwhash, sizeof u.pwhash);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_auth_rand_id("usr_", u.id);
    if (rc != TSR_OK)
        goto out;
    memcpy(u.roles, roles, strlen(roles) + 1);
    u.disabled = 0;
    u.created_at = now;
    u.updated_at = now;
    rc = tsr_store_user_create(a->store, &u);
    if (rc == TSR_ERR_EXISTS)
        rc = TSR_ERR_USERNAME_TAKEN;
    if (rc != TSR_OK)
        goto out;
    tsr_log_event(TSR_EV_USER_CREATED, TSR_F_STR("user_id", u.id));
    if (out != NULL)
        *out = u;
    rc = TSR_OK;
out:
    user_wipe(&u);
    user_wipe(&existing);
    return rc;
}

tsr_err tsr_auth_authenticate(tsr_auth *a, const char *username, size_t ulen, const char *pw,
                              size_t pwlen, int64_t now, tsr_user *out)
{
    tsr_err rc = TSR_ERR_INVALID_CREDENTIALS;
    tsr_user u;
    char name[TSR_USERNAME_MAX + 1];
    char newhash[TSR_PWHASH_STR_BYTES];
    int needs = 0;

    memset(&u, 0, sizeof u);
    memset(name, 0, sizeof name);
    memset(newhash, 0, sizeof newhash);
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (a == NULL) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    /* Too long to be anyone's password: refused before any look-up, for
     * every username alike. */
    if ((pw == NULL && pwlen > 0) || pwlen > TSR_PASSWORD_MAX_BYTES) {
        rc = TSR_ERR_INVALID_CREDENTIALS;
        goto out;
    }
    if (tsr_auth_username_check(username, ulen) != TSR_OK) {
        tsr_password_dummy_verify(&a->opts.pw, pw, pwlen);
        rc = TSR_ERR_INVALID_CREDENTIALS;
        goto out;
    }
    memcpy(name, username, ulen);
    rc = tsr_store_user_get_by_name(a->store, name, &u);
    if (rc == TSR_ERR_NOT_FOUND) {
        tsr_password_dummy_verify(&a->opts.pw, pw, pwlen);
        rc = TSR_ERR_INVALID_CREDENTIALS;
        goto out;
    }
    if (rc != TSR_OK)
        goto out;
    rc = tsr_password_verify(u.pwhash, pw, pwlen);
    if (rc == TSR_ERR_INVALID) {
        /* Not an Argon2id string: nobody can log in with it. */
        tsr_log(TSR_LOG_ERROR, "stored password hash is malformed", TSR_F_STR("user_id", u.id));
        tsr_password_dummy_verify(&a->opts.pw, pw, pwlen);
        rc = TSR_ERR_INVALID_CREDENTIALS;
        goto out;
    }
    if (rc != TSR_OK)
        goto out;
    if (u.disabled) {
        rc = TSR_ERR_INVALID_CREDENTIALS;
        goto out;
    }
    /* Rehash when the configured cost changed; a failure here does not fail the
     * login (the old hash still works). Only the hash is written, and only while
     * it is still the one verified and the user still enabled: a password change,
     * reset or disable during this Argon2 pass wins (NOT_FOUND, ignored). */
    if (tsr_password_needs_rehash(u.pwhash, &a->opts.pw, &needs) != TSR_OK || needs) {
        tsr_err r2 = tsr_password_hash(&a->opts.pw, pw, pwlen, newhash, sizeof newhash);
        if (r2 == TSR_OK)
            r2 = tsr_store_user_set_pwhash(a->store, u.id, u.pwhash, newhash, 1, now);
        if (r2 == TSR_OK) {
            memcpy(u.pwhash, newhash, sizeof newhash); /* NUL-terminated, fits */
            u.updated_at = now;
            tsr_log_event(TSR_EV_PASSWORD_REHASHED, TSR_F_STR("user_id", u.id));
        } else if (r2 == TSR_ERR_NOT_FOUND) {
            tsr_log(TSR_LOG_INFO, "password rehash skipped: the user changed meanwhile",
                    TSR_F_STR("user_id", u.id));
        } else {
            tsr_log(TSR_LOG_WARN, "password rehash failed", TSR_F_STR("user_id", u.id),
                    TSR_F_ERR(r2));
        }
    }
    if (out != NULL)
        *out = u;
    rc = TSR_OK;
out:
    user_wipe(&u);
    tsr_wipe(newhash, sizeof newhash);
    tsr_wipe(name, sizeof name);
    return rc;
}

/* One bucket: Redis's when it answers (shared by every instance), else ours. */
static tsr_err rate_check(tsr_auth *a, const uint8_t key[TSR_RATE_KEY_BYTES], int64_t now,
                          int64_t *retry_after)
{
    if (a->redis != NULL) {
        tsr_err rc = tsr_auth_hot_rate_check(a, key, now, retry_after);
        if (rc == TSR_OK || rc == TSR_ERR_RATE_LIMITED)
            return rc;
    }
    return tsr_rate_check(a->rate, key, a->opts.login_max_failures, a->opts.login_window, now,
                          retry_after);
}

/* Records in both: the local buckets take over should Redis fail later. */
static void rate_record(tsr_auth *a, const uint8_t key[TSR_RATE_KEY_BYTES], int ok, int64_t now)
{
    if (ok)
        tsr_rate_clear(a->rate, key);
    else
        tsr_rate_fail(a->rate, key, a->opts.login_max_failures, a->opts.login_window, now);
    if (a->redis != NULL && tsr_auth_hot_rate_record(a, key, ok, now) != TSR_OK)
        tsr_log(TSR_LOG_DEBUG, "shared login bucket not updated; the local one was");
}

tsr_err tsr_auth_login_check(tsr_auth *a, const char *username, size_t ulen, const char *ip,
                             int64_t now, int64_t *retry_after)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    uint8_t key[TSR_RATE_KEY_BYTES];
    int64_t ra_user = 0, ra_ip = 0;

    if (retry_after != NULL)
        *retry_after = 0;
    if (a == NULL)
        return TSR_ERR_INVALID;
    rc = tsr_auth_rate_key_user(a, username, ulen, key);
    if (rc != TSR_OK)
        goto out;
    tsr_err ru = rate_check(a, key, now, &ra_user);
    tsr_err ri = TSR_OK;
    if (ip != NULL && ip[0] != '\0') {
        rc = tsr_auth_rate_key_ip(a, ip, key);
        if (rc != TSR_OK)
            goto out;
        ri = rate_check(a, key, now, &ra_ip);
    }
    if (ru != TSR_OK || ri != TSR_OK) {
        if (retry_after != NULL)
            *retry_after = ra_user > ra_ip ? ra_user : ra_ip;
        rc = TSR_ERR_RATE_LIMITED;
        goto out;
    }
    rc = TSR_OK;
out:
    tsr_wipe(key, sizeof key);
    return rc;
}

void tsr_auth_login_record(tsr_auth *a, const char *username, size_t ulen, const char *ip,
                           int ok, int64_t now)
{
    uint8_t key[TSR_RATE_KEY_BYTES];

    if (a == NULL)
        return;
    if (tsr_auth_rate_key_user(a, username, ulen, key) == TSR_OK)
        rate_record(a, key, ok, now);
    /* A success does not clear the IP's bucket: one valid account must not
     * reset the limit on guessing the others. */
    if (!ok && ip != NULL && ip[0] != '\0' && tsr_auth_rate_key_ip(a, ip, key) == TSR_OK)
        rate_record(a, key, 0, now);
    tsr_wipe(key, sizeof key);
}

void tsr_auth_login_reset(tsr_auth *a)
{
    if (a != NULL)
        tsr_rate_clear_all(a->rate);
}

tsr_err tsr_auth_login(tsr_auth *a, const char *username, size_t ulen, const char *pw,
                       size_t pwlen, const char *ip, int64_t now, tsr_user *out,
                       int64_t *retry_after)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    char fp[17];

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (retry_after != NULL)
        *retry_after = 0;
    if (a == NULL)
        return TSR_ERR_INVALID;
    tsr_auth_user_fingerprint(username, ulen, fp);
    rc = tsr_auth_login_check(a, username, ulen, ip, now, retry_after);
    if (rc == TSR_ERR_RATE_LIMITED) {
        tsr_log_event(TSR_EV_LOGIN_RATE_LIMITED, TSR_F_STR("username_fp", fp),
                      TSR_F_STR("ip", ip));
        goto out;
    }
    if (rc != TSR_OK)
        goto out;
    rc = tsr_auth_authenticate(a, username, ulen, pw, pwlen, now, out);
    if (rc == TSR_OK) {
        tsr_auth_login_record(a, username, ulen, ip, 1, now);
        tsr_log_event(TSR_EV_LOGIN_OK, TSR_F_STR("user_id", out != NULL ? out->id : NULL),
                      TSR_F_STR("ip", ip));
    } else if (rc == TSR_ERR_INVALID_CREDENTIALS) {
        tsr_auth_login_record(a, username, ulen, ip, 0, now);
        tsr_log_event(TSR_EV_LOGIN_FAILED, TSR_F_STR("username_fp", fp), TSR_F_STR("ip", ip));
    }
out:
    return rc;
}

/* ---- administration ---- */

tsr_err tsr_auth_user_get(tsr_auth *a, const char *id, tsr_user *out)
{
    char idbuf[TSR_ID_MAX + 1];

    if (a == NULL || id == NULL || out == NULL) {
        if (out != NULL)
            memset(out, 0, sizeof *out);
        return TSR_ERR_INVALID;
    }
    if (id[0] == '\0' || strlen(id) > TSR_ID_MAX) {
        memset(out, 0, sizeof *out);
        return TSR_ERR_NOT_FOUND;
    }
    /* id may point into *out, which is zeroed next. */
    memcpy(idbuf, id, strlen(id) + 1);
    memset(out, 0, sizeof *out);
    return tsr_store_user_get(a->store, idbuf, out);
}

tsr_err tsr_auth_user_find(tsr_auth *a, const char *id_or_name, tsr_user *out)
{
    tsr_err rc = TSR_ERR_NOT_FOUND;
    char key[TSR_USERNAME_MAX + 1];

    if (a == NULL || id_or_name == NULL || out == NULL) {
        if (out != NULL)
            memset(out, 0, sizeof *out);
        return TSR_ERR_INVALID;
    }
    if (strlen(id_or_name) > TSR_USERNAME_MAX) {
        memset(out, 0, sizeof *out);
        return TSR_ERR_NOT_FOUND;
    }
    /* id_or_name may point into *out, which is zeroed next. */
    memcpy(key, id_or_name, strlen(id_or_name) + 1);
    id_or_name = key;
    memset(out, 0, sizeof *out);
    if (strncmp(id_or_name, "usr_", 4) == 0) {
        rc = tsr_auth_user_get(a, id_or_name, out);
        if (rc != TSR_ERR_NOT_FOUND)
            return rc;
    }
    if (tsr_auth_username_check(id_or_name, strlen(id_or_name)) != TSR_OK)
        return TSR_ERR_NOT_FOUND;
    return tsr_store_user_get_by_name(a->store, id_or_name, out);
}

tsr_err tsr_auth_user_list(tsr_auth *a, const char *after, size_t limit, tsr_user *out,
                           size_t *n, char next[TSR_ID_MAX + 1])
{
    tsr_err rc = TSR_ERR_INVALID;

    if (n != NULL)
        *n = 0;
    if (next != NULL)
        memset(next, 0, TSR_ID_MAX + 1);
    if (a == NULL || out == NULL || n == NULL || next == NULL)
        return TSR_ERR_INVALID;
    if (limit < 1 || limit > TSR_AUTH_LIST_MAX)
        return TSR_ERR_INVALID;
    memset(out, 0, limit * sizeof *out);
    if (after != NULL && after[0] == '\0')
        after = NULL;
    if (after != NULL && strlen(after) > TSR_ID_MAX)
        return TSR_ERR_INVALID;
    rc = tsr_store_user_list(a->store, after, limit, out, n);
    if (rc != TSR_OK) {
        *n = 0;
        return rc;
    }
    if (*n == limit) {
        /* A full page is the last one when nothing follows it: look one row ahead,
         * so the last page answers next = null as SPEC asks. */
        tsr_user probe;
        size_t more = 0;
        rc = tsr_store_user_list(a->store, out[limit - 1].id, 1, &probe, &more);
        tsr_wipe(&probe, sizeof probe);
        if (rc != TSR_OK) {
            memset(out, 0, limit * sizeof *out);
            *n = 0;
            return rc;
        }
        if (more > 0)
            memcpy(next, out[limit - 1].id, TSR_ID_MAX + 1);
    }
    return TSR_OK;
}

tsr_err tsr_auth_user_patch(tsr_auth *a, const char *id, const char *roles, int disabled,
                            int64_t now, tsr_user *out, size_t *revoked)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_user u;
    size_t nrev = 0;
    int was_disabled;
    char idbuf[TSR_ID_MAX + 1];

    memset(&u, 0, sizeof u);
    memset(idbuf, 0, sizeof idbuf);
    /* id may point into *out (patching the user just read): copy it first. */
    if (id != NULL && strlen(id) <= TSR_ID_MAX) {
        memcpy(idbuf, id, strlen(id) + 1);
        id = idbuf;
    }
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (revoked != NULL)
        *revoked = 0;
    if (a == NULL || id == NULL || disabled < -1 || disabled > 1) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (roles != NULL) {
        rc = tsr_auth_roles_check(roles);
        if (rc != TSR_OK)
            goto out;
    }
    rc = tsr_auth_user_get(a, id, &u);
    if (rc != TSR_OK)
        goto out;
    was_disabled = u.disabled; /* for the audit lines only */
    /* Only the columns the admin changed: a whole-row write of u would bring back
     * a password hash replaced since u was read. */
    rc = tsr_store_user_set_flags(a->store, id, roles, disabled, now);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_auth_user_get(a, id, &u);
    if (rc != TSR_OK)
        goto out;
    if (disabled == 1 || u.disabled) {
        /* Disabled users keep nothing alive (also when already disabled: a
         * session created in a race is caught here). */
        rc = tsr_store_session_delete_user(a->store, u.id, NULL, &nrev);
        if (rc != TSR_OK)
            goto out;
        tsr_auth_revocations_changed(a);
    }
    if (disabled == 1 && !was_disabled)
        tsr_log_event(TSR_EV_USER_DISABLED, TSR_F_STR("user_id", u.id),
                      TSR_F_INT("sessions_revoked", nrev));
    else if (disabled == 0 && was_disabled)
        tsr_log_event(TSR_EV_USER_ENABLED, TSR_F_STR("user_id", u.id));
    if (roles != NULL) {
        /* No session ends, but cached copies carry the old roles. */
        tsr_auth_hot_forget_user(a, u.id, now);
        tsr_log_event(TSR_EV_USER_UPDATED, TSR_F_STR("user_id", u.id), TSR_F_STR("roles", u.roles));
    }
    if (revoked != NULL)
        *revoked = nrev;
    if (out != NULL)
        *out = u;
    rc = TSR_OK;
out:
    user_wipe(&u);
    return rc;
}

tsr_err tsr_auth_user_revoke_all(tsr_auth *a, const char *id, size_t *revoked)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_user u;
    size_t nrev = 0;

    memset(&u, 0, sizeof u);
    if (revoked != NULL)
        *revoked = 0;
    if (a == NULL || id == NULL) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    rc = tsr_auth_user_get(a, id, &u);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_store_session_delete_user(a->store, u.id, NULL, &nrev);
    if (rc != TSR_OK)
        goto out;
    tsr_auth_revocations_changed(a);
    tsr_log_event(TSR_EV_SESSIONS_REVOKED, TSR_F_STR("user_id", u.id),
                  TSR_F_INT("count", nrev), TSR_F_STR("by", "admin"));
    if (revoked != NULL)
        *revoked = nrev;
    rc = TSR_OK;
out:
    user_wipe(&u);
    return rc;
}

tsr_err tsr_auth_user_delete(tsr_auth *a, const char *id)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_user u;

    memset(&u, 0, sizeof u);
    if (a == NULL || id == NULL) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    rc = tsr_auth_user_get(a, id, &u);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_store_user_delete(a->store, u.id);
    if (rc != TSR_OK)
        goto out;
    tsr_auth_revocations_changed(a);
    tsr_log_event(TSR_EV_USER_DELETED, TSR_F_STR("user_id", u.id));
    rc = TSR_OK;
out:
    user_wipe(&u);
    return rc;
}

tsr_err tsr_auth_user_set_password(tsr_auth *a, const char *id, const char *pw, size_t pwlen,
                                   int64_t now)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_user u;
    char newhash[TSR_PWHASH_MAX + 1];
    size_t nrev = 0;

    memset(&u, 0, sizeof u);
    memset(newhash, 0, sizeof newhash);
    if (a == NULL || id == NULL) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    rc = tsr_password_policy_check(pw, pwlen);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_auth_user_get(a, id, &u);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_password_hash(&a->opts.pw, pw, pwlen, newhash, sizeof newhash);
    if (rc != TSR_OK)
        goto out;
    /* Only the hash is written (roles and disabled as they are now), by
     * compare-and-swap against the hash read above. Should it have changed during
     * the Argon2 pass (the user's own change, a rehash on login), read it again
     * and swap once more: the administrator's reset is meant to win. The new
     * hash does not depend on the old one, so no second Argon2 pass. */
    rc = tsr_store_user_set_pwhash(a->store, u.id, u.pwhash, newhash, 0, now);
    if (rc == TSR_ERR_NOT_FOUND) {
        rc = tsr_auth_user_get(a, id, &u);
        if (rc != TSR_OK)
            goto out;
        rc = tsr_store_user_set_pwhash(a->store, u.id, u.pwhash, newhash, 0, now);
        /* Changed twice within a moment: report "busy, try again", not "no user". */
        if (rc == TSR_ERR_NOT_FOUND)
            rc = TSR_ERR_UNAVAILABLE;
    }
    if (rc != TSR_OK)
        goto out;
    rc = tsr_store_session_delete_user(a->store, u.id, NULL, &nrev);
    if (rc != TSR_OK)
        goto out;
    tsr_auth_revocations_changed(a);
    tsr_log_event(TSR_EV_PASSWORD_CHANGED, TSR_F_STR("user_id", u.id), TSR_F_STR("by", "admin"),
                  TSR_F_INT("sessions_revoked", nrev));
    rc = TSR_OK;
out:
    user_wipe(&u);
    tsr_wipe(newhash, sizeof newhash);
    return rc;
}
