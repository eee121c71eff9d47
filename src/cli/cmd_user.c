/* cmd_user.c: `tessera user add|list|show|disable|enable|revoke|passwd`: account
 * administration on the configured store, safe while the server runs (SQLite in
 * WAL mode; every change is one transaction). Passwords are read from stdin
 * (prompted without echo on a terminal), never from argv, and wiped after use.
 * Output is JSON on stdout; password hashes are never printed. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifdef TSR_HAVE_SERVER

#include <jansson.h>

#include "auth/auth.h"
#include "common/config.h"
#include "common/log.h"
#include "crypto/crypto.h"
#include "store/store.h"

#define PW_INPUT_MAX 1024 /* bytes read for a password; the policy caps it at 256 */

static const char user_usage[] =
    "usage: tessera user <subcommand> [options] [--config FILE]\n"
    "\n"
    "subcommands:\n"
    "  add USERNAME [--roles R1,R2]   create a user; the password is read from stdin\n"
    "  list [--limit N] [--after ID]  list users (JSON, paged by id)\n"
    "  show USER                      show one user and their live sessions\n"
    "  disable USER                   disable a user and revoke all their sessions\n"
    "  enable USER                    enable a disabled user\n"
    "  revoke USER                    revoke every session of a user\n"
    "  passwd USER                    set a new password (from stdin); revokes all sessions\n"
    "\n"
    "USER is a user id (usr_...) or a username. Every subcommand takes --config FILE\n"
    "(the same file as `tessera serve`; TESSERA_* environment variables apply too)\n"
    "and is safe to run while the server runs.\n"
    "Exit codes: 0 ok, 1 failure (e.g. no such user), 2 usage error.\n";

static const char add_usage[] =
    "usage: tessera user add USERNAME [--roles R1,R2] [--config FILE]\n"
    "\n"
    "Creates a user. The password is read from stdin: typed twice without echo on\n"
    "a terminal, else the first line of stdin (e.g. from a password manager or a\n"
    "file). Passwords are 8 to 256 bytes. Prints the new user as JSON.\n"
    "\n"
    "  --roles R1,R2   comma-separated roles, each [a-z0-9_.-]{1,32}\n"
    "  --config FILE   settings file\n";

static const char list_usage[] =
    "usage: tessera user list [--limit N] [--after ID] [--config FILE]\n"
    "\n"
    "Prints {\"users\":[...],\"next\":ID|null}, ordered by id. Pass `next` as --after\n"
    "to get the following page.\n"
    "\n"
    "  --limit N       users per page, 1 to 1000 (default 100)\n"
    "  --after ID      start after this user id\n"
    "  --config FILE   settings file\n";

static const char show_usage[] =
    "usage: tessera user show USER [--config FILE]\n"
    "\n"
    "Prints the user (id, username, roles, disabled, dates) and their live sessions.\n";

static const char disable_usage[] =
    "usage: tessera user disable USER [--config FILE]\n"
    "\n"
    "Disables the user: logins are refused and every session is revoked at once.\n";

static const char enable_usage[] =
    "usage: tessera user enable USER [--config FILE]\n"
    "\n"
    "Enables a disabled user again (their old sessions stay revoked).\n";

static const char revoke_usage[] = "usage: tessera user revoke USER [--config FILE]\n"
                                   "\n"
                                   "Revokes every session of the user (they must log in again).\n";

static const char passwd_usage[] =
    "usage: tessera user passwd USER [--config FILE]\n"
    "\n"
    "Sets a new password, read from stdin like `user add`, and revokes every\n"
    "session of the user.\n";

/* Reads one line from fd 0 into buf (cap bytes with NUL); strips "\n" or "\r\n".
 * Returns the length, or -1 on error or when the line is too long. */
static long read_line(char *buf, size_t cap)
{
    size_t n = 0;

    for (;;) {
        char ch;
        ssize_t r = read(STDIN_FILENO, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0 || ch == '\n')
            break;
        if (n + 1 >= cap)
            return -1;
        buf[n++] = ch;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return (long)n;
}

/* Prompts on stderr and reads a line from the terminal with echo off. */
static long read_hidden(const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    long n;

    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &old) != 0)
        return -1;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
        return -1;
    n = read_line(buf, cap);
    (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    return n;
}

/* The new password: twice without echo on a terminal, else stdin's first line.
 * buf holds PW_INPUT_MAX bytes; the caller wipes it. Prints why on failure. */
static int read_new_password(char *buf, size_t *len)
{
    char again[PW_INPUT_MAX];
    long n, m;
    int ok = 0;

    *len = 0;
    memset(again, 0, sizeof again);
    if (isatty(STDIN_FILENO)) {
        n = read_hidden("New password: ", buf, PW_INPUT_MAX);
        if (n < 0)
            goto fail_read;
        m = read_hidden("Repeat password: ", again, sizeof again);
        if (m < 0)
            goto fail_read;
        if (n != m || !tsr_ct_eq(buf, again, (size_t)n)) {
            tsr_cli_error("the passwords do not match");
            goto out;
        }
    } else {
        n = read_line(buf, PW_INPUT_MAX);
        if (n < 0)
            goto fail_read;
    }
    if (tsr_password_policy_check(buf, (size_t)n) != TSR_OK) {
        tsr_cli_error("the password must be %d to %d bytes long", TSR_PASSWORD_MIN_BYTES,
                      TSR_PASSWORD_MAX_BYTES);
        goto out;
    }
    *len = (size_t)n;
    ok = 1;
    goto out;
fail_read:
    tsr_cli_error("cannot read the password from stdin (at most %d bytes, one line)",
                  TSR_PASSWORD_MAX_BYTES);
out:
    tsr_wipe(again, sizeof again);
    return ok;
}

/* The public view of a user: never the password hash. */
static json_t *user_json(const tsr_user *u)
{
    json_t *roles = json_array();
    json_t *o = NULL;
    const char *p = u->roles;

    if (roles == NULL)
        return NULL;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        if (json_array_append_new(roles, json_stringn(p, n)) != 0) {
            json_decref(roles);
            return NULL;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    o = json_pack("{s:s, s:s, s:o, s:b, s:I, s:I}", "id", u->id, "username", u->username, "roles",
                  roles, "disabled", u->disabled, "created_at", (json_int_t)u->created_at,
                  "updated_at", (json_int_t)u->updated_at);
    return o;
}

static json_t *session_json(const tsr_session *s)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s}", "id", s->id, "kind",
                     s->kind == TSR_SESSION_REFRESH ? "refresh" : "cookie", "created_at",
                     (json_int_t)s->created_at, "last_seen_at", (json_int_t)s->last_seen_at,
                     "expires_at", (json_int_t)s->expires_at, "idle_expires_at",
                     (json_int_t)s->idle_expires_at, "ip", s->ip, "user_agent", s->user_agent);
}

static int print_and_free(json_t *v)
{
    int code = TSR_CLI_FAIL;
    if (v == NULL) {
        tsr_cli_error("out of memory");
        return TSR_CLI_FAIL;
    }
    if (tsr_cli_print_json(v) == TSR_OK)
        code = TSR_CLI_OK;
    else
        tsr_cli_error("cannot write to stdout");
    json_decref(v);
    return code;
}

/* Reports a failed look-up of USER. */
static void report_find(tsr_err rc)
{
    if (rc == TSR_ERR_NOT_FOUND)
        tsr_cli_error("no such user");
    else
        tsr_cli_error("cannot read the user: %s", tsr_err_text(rc));
}

/* Parses "[--config FILE] [--roles R] [--limit N] [--after ID] [ARG]" for the
 * options allowed (NULL pointers: not allowed). Returns 0 or -1 after a usage error. */
typedef struct user_args {
    const char *config, *roles, *limit, *after, *arg;
} user_args;

static int parse_args(int argc, char **argv, user_args *a, int want_arg, int roles, int paging)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        int m = tsr_cli_opt_value(argc, argv, &i, "--config", &a->config);
        if (m == 0 && roles)
            m = tsr_cli_opt_value(argc, argv, &i, "--roles", &a->roles);
        if (m == 0 && paging)
            m = tsr_cli_opt_value(argc, argv, &i, "--limit", &a->limit);
        if (m == 0 && paging)
            m = tsr_cli_opt_value(argc, argv, &i, "--after", &a->after);
        if (m < 0)
            return -1;
        if (m > 0)
            continue;
        if (strcmp(argv[i], "--") == 0 && want_arg && a->arg == NULL && i + 1 < argc) {
            a->arg = argv[++i];
            continue;
        }
        if (argv[i][0] != '-' && want_arg && a->arg == NULL) {
            a->arg = argv[i];
            continue;
        }
        tsr_cli_bad_arg(argv[i]);
        return -1;
    }
    if (want_arg && a->arg == NULL) {
        tsr_cli_error("missing USER argument");
        return -1;
    }
    return 0;
}

static int user_add(int argc, char **argv)
{
    user_args a;
    tsr_cli_env e;
    tsr_user u;
    char pw[PW_INPUT_MAX];
    size_t pwlen = 0;
    int code = TSR_CLI_USAGE;
    tsr_err rc;

    memset(&e, 0, sizeof e);
    memset(&u, 0, sizeof u);
    memset(pw, 0, sizeof pw);
    if (tsr_cli_wants_help(argc, argv)) {
        fputs(add_usage, stdout);
        return TSR_CLI_OK;
    }
    if (parse_args(argc, argv, &a, 1, 1, 0) != 0)
        goto usage;
    if (tsr_auth_username_check(a.arg, strlen(a.arg)) != TSR_OK) {
        tsr_cli_error("a username is 1 to 64 characters of A-Z a-z 0-9 . _ @ + -");
        goto usage;
    }
    if (a.roles != NULL && tsr_auth_roles_check(a.roles) != TSR_OK) {
        tsr_cli_error("roles are comma-separated names of [a-z0-9_.-], 1 to 32 each, no blanks");
        goto usage;
    }
    code = TSR_CLI_FAIL;
    if (tsr_cli_env_open(&e, a.config) != TSR_OK)
        goto out;
    if (!read_new_password(pw, &pwlen))
        goto out;
    rc = tsr_auth_user_create(e.auth, a.arg, strlen(a.arg), pw, pwlen, a.roles, (int64_t)time(NULL),
                              &u);
    if (rc == TSR_ERR_USERNAME_TAKEN) {
        tsr_cli_error("the username is taken");
        goto out;
    }
    if (rc != TSR_OK) {
        tsr_cli_error("cannot create the user: %s", tsr_err_text(rc));
        goto out;
    }
    code = print_and_free(user_json(&u));
    goto out;
usage:
    fputs(add_usage, stderr);
out:
    tsr_wipe(pw, sizeof pw);
    tsr_wipe(&u, sizeof u);
    tsr_cli_env_close(&e);
    return code;
}

static int user_list(int argc, char **argv)
{
    user_args a;
    tsr_cli_env e;
    tsr_user *page = NULL;
    size_t n = 0;
    int64_t limit = 100;
    char next[TSR_ID_MAX + 1];
    int code = TSR_CLI_USAGE;
    json_t *arr = NULL, *o = NULL;
    tsr_err rc;

    memset(&e, 0, sizeof e);
    if (tsr_cli_wants_help(argc, argv)) {
        fputs(list_usage, stdout);
        return TSR_CLI_OK;
    }
    if (parse_args(argc, argv, &a, 0, 0, 1) != 0)
        goto usage;
    if (a.limit != NULL && tsr_cli_parse_i64(a.limit, 1, TSR_AUTH_LIST_MAX, &limit) != TSR_OK) {
        tsr_cli_error("--limit must be 1 to %d", TSR_AUTH_LIST_MAX);
        goto usage;
    }
    code = TSR_CLI_FAIL;
    if (tsr_cli_env_open(&e, a.config) != TSR_OK)
        goto out;
    page = calloc((size_t)limit, sizeof *page);
    arr = json_array();
    if (page == NULL || arr == NULL) {
        tsr_cli_error("out of memory");
        goto out;
    }
    rc = tsr_auth_user_list(e.auth, a.after, (size_t)limit, page, &n, next);
    if (rc != TSR_OK) {
        tsr_cli_error("cannot list users: %s", tsr_err_text(rc));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(arr, user_json(&page[i])) != 0) {
            tsr_cli_error("out of memory");
            goto out;
        }
    }
    o = json_pack("{s:O, s:o}", "users", arr, "next",
                  next[0] != '\0' ? json_string(next) : json_null());
    code = print_and_free(o);
    o = NULL;
    goto out;
usage:
    fputs(list_usage, stderr);
out:
    json_decref(arr);
    if (page != NULL) {
        tsr_wipe(page, (size_t)limit * sizeof *page);
        free(page);
    }
    tsr_cli_env_close(&e);
    return code;
}

enum user_action { ACT_SHOW, ACT_DISABLE, ACT_ENABLE, ACT_REVOKE, ACT_PASSWD };

static int user_one(int argc, char **argv, enum user_action act, const char *usage)
{
    user_args a;
    tsr_cli_env e;
    tsr_user u;
    tsr_session *sessions = NULL;
    size_t n = 0, revoked = 0;
    char pw[PW_INPUT_MAX];
    size_t pwlen = 0;
    int code = TSR_CLI_USAGE;
    int64_t now = (int64_t)time(NULL);
    tsr_err rc;

    memset(&e, 0, sizeof e);
    memset(&u, 0, sizeof u);
    memset(pw, 0, sizeof pw);
    if (tsr_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return TSR_CLI_OK;
    }
    if (parse_args(argc, argv, &a, 1, 0, 0) != 0)
        goto usage;
    code = TSR_CLI_FAIL;
    if (tsr_cli_env_open(&e, a.config) != TSR_OK)
        goto out;
    rc = tsr_auth_user_find(e.auth, a.arg, &u);
    if (rc != TSR_OK) {
        report_find(rc);
        goto out;
    }
    switch (act) {
    case ACT_SHOW: {
        enum { SHOW_SESSIONS_MAX = 1000 };
        json_t *o = user_json(&u), *arr = json_array();
        sessions = calloc(SHOW_SESSIONS_MAX, sizeof *sessions);
        if (o == NULL || arr == NULL || sessions == NULL) {
            json_decref(o);
            json_decref(arr);
            tsr_cli_error("out of memory");
            goto out;
        }
        rc = tsr_auth_session_list(e.auth, u.id, now, sessions, SHOW_SESSIONS_MAX, &n);
        if (rc != TSR_OK) {
            json_decref(o);
            json_decref(arr);
            tsr_cli_error("cannot list sessions: %s", tsr_err_text(rc));
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            (void)json_array_append_new(arr, session_json(&sessions[i]));
        (void)json_object_set_new(o, "sessions", arr);
        code = print_and_free(o);
        goto out;
    }
    case ACT_DISABLE:
    case ACT_ENABLE:
        rc = tsr_auth_user_patch(e.auth, u.id, NULL, act == ACT_DISABLE ? 1 : 0, now, &u, &revoked);
        if (rc != TSR_OK) {
            tsr_cli_error("cannot change the user: %s", tsr_err_text(rc));
            goto out;
        }
        if (act == ACT_DISABLE)
            fprintf(stderr, "disabled %s; %zu session(s) revoked\n", u.id, revoked);
        else
            fprintf(stderr, "enabled %s\n", u.id);
        break;
    case ACT_REVOKE:
        rc = tsr_auth_user_revoke_all(e.auth, u.id, &revoked);
        if (rc != TSR_OK) {
            tsr_cli_error("cannot revoke: %s", tsr_err_text(rc));
            goto out;
        }
        fprintf(stderr, "%zu session(s) of %s revoked\n", revoked, u.id);
        break;
    case ACT_PASSWD:
        if (!read_new_password(pw, &pwlen))
            goto out;
        rc = tsr_auth_user_set_password(e.auth, u.id, pw, pwlen, now);
        if (rc != TSR_OK) {
            tsr_cli_error("cannot set the password: %s", tsr_err_text(rc));
            goto out;
        }
        fprintf(stderr, "password of %s changed; every session revoked\n", u.id);
        break;
    }
    code = TSR_CLI_OK;
    goto out;
usage:
    fputs(usage, stderr);
out:
    free(sessions);
    tsr_wipe(pw, sizeof pw);
    tsr_wipe(&u, sizeof u);
    tsr_cli_env_close(&e);
    return code;
}

static int user_show(int argc, char **argv)
{
    return user_one(argc, argv, ACT_SHOW, show_usage);
}

static int user_disable(int argc, char **argv)
{
    return user_one(argc, argv, ACT_DISABLE, disable_usage);
}

static int user_enable(int argc, char **argv)
{
    return user_one(argc, argv, ACT_ENABLE, enable_usage);
}

static int user_revoke(int argc, char **argv)
{
    return user_one(argc, argv, ACT_REVOKE, revoke_usage);
}

static int user_passwd(int argc, char **argv)
{
    return user_one(argc, argv, ACT_PASSWD, passwd_usage);
}

int tsr_cli_user(int argc, char **argv)
{
    static const tsr_cli_sub subs[] = {{"add", user_add},       {"list", user_list},
                                       {"show", user_show},     {"disable", user_disable},
                                       {"enable", user_enable}, {"revoke", user_revoke},
                                       {"passwd", user_passwd}, {NULL, NULL}};
    return tsr_cli_dispatch(argc, argv, user_usage, subs);
}

#else

int tsr_cli_user(int argc, char **argv)
{
    tsr_cli_error("this build has no account store");
    return TSR_CLI_FAIL;
}

#endif
