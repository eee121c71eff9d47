/* h_accounts.c: accounts: signup (POST /v1/users) and the password change of
 * the logged-in user (POST /v1/users/me/password).
 *
 * Both hash on the pool. Everything that can be refused without hashing
 * (closed signup, malformed username, password length, CSRF, rate limit) is
 * refused on the request thread first. The password change is rate limited
 * like a login: a stolen cookie must not become a password-guessing oracle. */
#include "http/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "crypto/crypto.h"

static const char *const signup_fields[] = {"username", "password", NULL};
static const char *const password_fields[] = {"current_password", "new_password", NULL};

static void signup_work(tsr_http_req *r)
{
    const char *name = NULL, *pw = NULL;
    size_t nlen = 0, pwlen = 0;
    tsr_user u;
    tsr_err rc;

    memset(&u, 0, sizeof u);
    if (tsr_http_json_str(r, "username", 1, &name, &nlen) != TSR_OK ||
        tsr_http_json_str(r, "password", 1, &pw, &pwlen) != TSR_OK)
        goto out;
    rc = tsr_auth_user_create(r->srv->auth, name, nlen, pw, pwlen, NULL, (int64_t)time(NULL), &u);
    tsr_http_json_wipe(r, "password");
    if (rc == TSR_ERR_USERNAME_TAKEN) {
        (void)tsr_http_problem(r, 409, "username_taken", "this username is already taken");
        goto out;
    }
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, NULL);
        goto out;
    }
    (void)tsr_http_reply_json(r, 201,
                              json_pack("{s:s, s:s, s:I}", "id", u.id, "username", u.username,
                                        "created_at", (json_int_t)u.created_at),
                              0);
out:
    tsr_wipe(&u, sizeof u);
}

/* Username syntax and password length: both answerable without hashing. */
static tsr_err check_new_account(tsr_http_req *r, const char *name, size_t nlen, const char *pw,
                                 size_t pwlen)
{
    if (tsr_auth_username_check(name, nlen) != TSR_OK) {
        (void)tsr_http_problem(r, 400, "invalid_request",
                               "username: 1 to 64 characters of A-Z a-z 0-9 . _ @ + -");
        return TSR_ERR_INVALID;
    }
    if (tsr_password_policy_check(pw, pwlen) != TSR_OK) {
        (void)tsr_http_problem(r, 400, "weak_password", "the password must be 8 to 256 bytes");
        return TSR_ERR_WEAK_PASSWORD;
    }
    return TSR_OK;
}

void tsr_h_signup(tsr_http_req *r)
{
    const char *name = NULL, *pw = NULL;
    size_t nlen = 0, pwlen = 0;

    if (!r->srv->cfg->signup.open) {
        tsr_log_event(TSR_EV_SIGNUP_REFUSED, TSR_F_STR("ip", r->ip));
        (void)tsr_http_problem(r, 403, "signup_closed", "signup is closed on this server");
        return;
    }
    if (tsr_http_origin_check(r) != TSR_OK)
        return;
    if (tsr_http_body_object(r) != TSR_OK || tsr_http_json_only(r, signup_fields) != TSR_OK ||
        tsr_http_json_str(r, "username", 1, &name, &nlen) != TSR_OK ||
        tsr_http_json_str(r, "password", 1, &pw, &pwlen) != TSR_OK)
        return;
    if (check_new_account(r, name, nlen, pw, pwlen) != TSR_OK)
        return;
    tsr_http_defer(r, signup_work, NULL, NULL);
}

/* What the password change carries from the request thread to the pool. */
typedef struct pw_job {
    tsr_session session;
    tsr_user user;
} pw_job;

static void pw_job_free(void *p)
{
    if (p == NULL)
        return;
    tsr_wipe(p, sizeof(pw_job));
    free(p);
}

static void password_work(tsr_http_req *r)
{
    pw_job *j = r->work_ctx;
    const char *cur = NULL, *nw = NULL;
    size_t curlen = 0, nwlen = 0;
    tsr_auth_cred cred;
    tsr_err rc;
    int64_t now = (int64_t)time(NULL), retry = 0;

    memset(&cred, 0, sizeof cred);
    if (tsr_http_json_str(r, "current_password", 1, &cur, &curlen) != TSR_OK ||
        tsr_http_json_str(r, "new_password", 1, &nw, &nwlen) != TSR_OK)
        goto out;
    rc = tsr_auth_password_change_limited(r->srv->auth, &j->session, j->user.username, r->ip, cur,
                                          curlen, nw, nwlen, now, &cred, &retry);
    tsr_http_json_wipe(r, "current_password");
    tsr_http_json_wipe(r, "new_password");
    if (rc == TSR_ERR_RATE_LIMITED) {
        tsr_http_rate_limited(r, retry);
        goto out;
    }
    if (rc == TSR_ERR_INVALID_CREDENTIALS) {
        (void)tsr_http_problem(r, 401, "invalid_credentials", "the current password is wrong");
        goto out;
    }
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, NULL);
        goto out;
    }
    (void)tsr_http_reply_empty(r, 204);
    tsr_http_no_store(r);
    tsr_http_set_cookie(r, cred.cookie);
    tsr_http_header(r, "X-CSRF-Token", cred.csrf);
out:
    tsr_auth_cred_wipe(&cred);
}

void tsr_h_password(tsr_http_req *r)
{
    pw_job *j = NULL;
    const char *cur = NULL, *nw = NULL;
    size_t curlen = 0, nwlen = 0;
    int64_t retry = 0;

    j = calloc(1, sizeof *j);
    if (j == NULL) {
        (void)tsr_http_problem(r, 500, "internal", "out of memory");
        goto out;
    }
    if (tsr_http_cookie_session(r, 1, &j->session, &j->user) != TSR_OK)
        goto out;
    if (tsr_http_body_object(r) != TSR_OK || tsr_http_json_only(r, password_fields) != TSR_OK ||
        tsr_http_json_str(r, "current_password", 1, &cur, &curlen) != TSR_OK ||
        tsr_http_json_str(r, "new_password", 1, &nw, &nwlen) != TSR_OK)
        goto out;
    if (tsr_password_policy_check(nw, nwlen) != TSR_OK) {
        (void)tsr_http_problem(r, 400, "weak_password", "the new password must be 8 to 256 bytes");
        goto out;
    }
    if (tsr_auth_login_check(r->srv->auth, j->user.username, strlen(j->user.username), r->ip,
                             (int64_t)time(NULL), &retry) == TSR_ERR_RATE_LIMITED) {
        tsr_http_rate_limited(r, retry);
        goto out;
    }
    tsr_http_defer(r, password_work, j, pw_job_free);
    j = NULL;
out:
    pw_job_free(j);
}
