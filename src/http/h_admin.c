/* h_admin.c: the user rows of the administration API, behind the admin key
 * (Authorization: Bearer <admin key>): create (hashes on the pool), paged
 * list, show, patch roles/disabled, revoke every session, delete. */
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "crypto/crypto.h"

static const char *const create_fields[] = {"username", "password", "roles", NULL};
static const char *const patch_fields[] = {"roles", "disabled", NULL};

typedef struct create_job {
    char roles[TSR_ROLES_MAX + 1];
} create_job;

static void create_work(tsr_http_req *r)
{
    create_job *j = r->work_ctx;
    const char *name = NULL, *pw = NULL;
    size_t nlen = 0, pwlen = 0;
    tsr_user u;
    tsr_err rc;

    memset(&u, 0, sizeof u);
    if (tsr_http_json_str(r, "username", 1, &name, &nlen) != TSR_OK ||
        tsr_http_json_str(r, "password", 1, &pw, &pwlen) != TSR_OK)
        goto out;
    rc = tsr_auth_user_create(r->srv->auth, name, nlen, pw, pwlen, j->roles, (int64_t)time(NULL),
                              &u);
    tsr_http_json_wipe(r, "password");
    if (rc == TSR_ERR_USERNAME_TAKEN) {
        (void)tsr_http_problem(r, 409, "username_taken", "this username is already taken");
        goto out;
    }
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, NULL);
        goto out;
    }
    (void)tsr_http_reply_json(r, 201, tsr_http_user_json(&u, 1), 0);
out:
    tsr_wipe(&u, sizeof u);
}

void tsr_h_admin_user_create(tsr_http_req *r)
{
    create_job *j = NULL;
    const char *name = NULL, *pw = NULL;
    size_t nlen = 0, pwlen = 0;
    int present = 0;

    if (tsr_http_admin_guard(r) != TSR_OK)
        goto out;
    j = calloc(1, sizeof *j);
    if (j == NULL) {
        (void)tsr_http_problem(r, 500, "internal", "out of memory");
        goto out;
    }
    if (tsr_http_body_object(r) != TSR_OK || tsr_http_json_only(r, create_fields) != TSR_OK ||
        tsr_http_json_str(r, "username", 1, &name, &nlen) != TSR_OK ||
        tsr_http_json_str(r, "password", 1, &pw, &pwlen) != TSR_OK ||
        tsr_http_json_roles(r, "roles", j->roles, sizeof j->roles, &present) != TSR_OK)
        goto out;
    if (tsr_auth_username_check(name, nlen) != TSR_OK) {
        (void)tsr_http_problem(r, 400, "invalid_request",
                               "username: 1 to 64 characters of A-Z a-z 0-9 . _ @ + -");
        goto out;
    }
    if (tsr_password_policy_check(pw, pwlen) != TSR_OK) {
        (void)tsr_http_problem(r, 400, "weak_password", "the password must be 8 to 256 bytes");
        goto out;
    }
    tsr_http_defer(r, create_work, j, free);
    j = NULL;
out:
    free(j);
}

/* Strict decimal in [1, max]; 0 when s is not one. */
static size_t parse_limit(const char *s, size_t max)
{
    size_t v = 0;
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        v = v * 10 + (size_t)(*s - '0');
        if (v > max)
            return 0;
    }
    return v;
}

static int id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TSR_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void tsr_h_admin_user_list(tsr_http_req *r)
{
    const char *ls = tsr_http_req_query(r, "limit");
    const char *after = tsr_http_req_query(r, "after");
    size_t limit = TSR_HTTP_USERS_PAGE_DEFAULT;
    tsr_user *list = NULL;
    size_t n = 0;
    char next[TSR_ID_MAX + 1];
    json_t *arr = NULL;
    tsr_err rc;

    next[0] = '\0';
    if (tsr_http_admin_guard(r) != TSR_OK)
        goto out;
    if (ls != NULL) {
        limit = parse_limit(ls, TSR_AUTH_LIST_MAX);
        if (limit == 0) {
            (void)tsr_http_problem(r, 400, "invalid_request", "limit must be an integer 1..1000");
            goto out;
        }
    }
    if (after != NULL && after[0] != '\0' && !id_ok(after)) {
        (void)tsr_http_problem(r, 400, "invalid_request", "after must be a user id");
        goto out;
    }
    list = calloc(limit, sizeof *list);
    arr = json_array();
    if (list == NULL || arr == NULL) {
        (void)tsr_http_problem(r, 500, "internal", "out of memory");
        goto out;
    }
    rc = tsr_auth_user_list(r->srv->auth, after, limit, list, &n, next);
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, "the users could not be listed");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(arr, tsr_http_user_json(&list[i], 1)) != 0) {
            (void)tsr_http_problem(r, 500, "internal", "out of memory");
            goto out;
        }
    }
    (void)tsr_http_reply_json(r, 200,
                              json_pack("{s:O, s:o}", "users", arr, "next",
                                        next[0] != '\0' ? json_string(next) : json_null()),
                              0);
    tsr_http_no_store(r);
out:
    json_decref(arr);
    if (list != NULL) {
        tsr_wipe(list, limit * sizeof *list);
        free(list);
    }
}

static void reply_user(tsr_http_req *r, tsr_err rc, const tsr_user *u)
{
    if (rc == TSR_ERR_NOT_FOUND) {
        (void)tsr_http_problem(r, 404, "not_found", "no such user");
        return;
    }
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, NULL);
        return;
    }
    (void)tsr_http_reply_json(r, 200, tsr_http_user_json(u, 1), 0);
    tsr_http_no_store(r);
}

void tsr_h_admin_user_get(tsr_http_req *r)
{
    tsr_user u;

    memset(&u, 0, sizeof u);
    if (tsr_http_admin_guard(r) != TSR_OK)
        return;
    reply_user(r, tsr_auth_user_get(r->srv->auth, r->param, &u), &u);
    tsr_wipe(&u, sizeof u);
}

void tsr_h_admin_user_patch(tsr_http_req *r)
{
    char roles[TSR_ROLES_MAX + 1];
    int roles_present = 0, disabled = 0, disabled_present = 0;
    size_t revoked = 0;
    tsr_user u;
    tsr_err rc;

    memset(&u, 0, sizeof u);
    roles[0] = '\0';
    if (tsr_http_admin_guard(r) != TSR_OK)
        return;
    if (tsr_http_body_object(r) != TSR_OK || tsr_http_json_only(r, patch_fields) != TSR_OK ||
        tsr_http_json_roles(r, "roles", roles, sizeof roles, &roles_present) != TSR_OK ||
        tsr_http_json_bool(r, "disabled", &disabled, &disabled_present) != TSR_OK)
        return;
    rc = tsr_auth_user_patch(r->srv->auth, r->param, roles_present ? roles : NULL,
                             disabled_present ? disabled : -1, (int64_t)time(NULL), &u, &revoked);
    reply_user(r, rc, &u);
    tsr_wipe(&u, sizeof u);
}

void tsr_h_admin_user_revoke(tsr_http_req *r)
{
    size_t revoked = 0;
    tsr_err rc;

    if (tsr_http_admin_guard(r) != TSR_OK)
        return;
    rc = tsr_auth_user_revoke_all(r->srv->auth, r->param, &revoked);
    if (rc == TSR_ERR_NOT_FOUND) {
        (void)tsr_http_problem(r, 404, "not_found", "no such user");
        return;
    }
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, NULL);
        return;
    }
    (void)tsr_http_reply_empty(r, 204);
}

void tsr_h_admin_user_delete(tsr_http_req *r)
{
    tsr_err rc;

    if (tsr_http_admin_guard(r) != TSR_OK)
        return;
    rc = tsr_auth_user_delete(r->srv->auth, r->param);
    if (rc == TSR_ERR_NOT_FOUND) {
        (void)tsr_http_problem(r, 404, "not_found", "no such user");
        return;
    }
    if (rc != TSR_OK) {
        (void)tsr_http_problem_err(r, rc, NULL);
        return;
    }
    (void)tsr_http_reply_empty(r, 204);
}
