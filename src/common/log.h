/* log.h: JSON-lines logging on stderr, one object per line, one write() per line.
 *
 *   {"ts":"2024-05-01T12:00:00.123Z","level":"info","msg":"listening","addr":"127.0.0.1:8080"}
 *
 * There is no printf-style free text: the message and every field name must be
 * string literals (the macros below refuse anything else at compile time), and
 * data goes only into named, typed fields whose values are JSON-escaped. Never
 * pass a password, token, cookie, CSRF token or key as a field value: log ids
 * and fingerprints only. Audit events (logins, logouts, revocations, account
 * changes) go through tsr_log_event with a fixed event enum.
 *
 * Thread-safe: each line is built in a bounded stack buffer (TSR_LOG_LINE_MAX,
 * at most PIPE_BUF so a line is never interleaved with another) and written with
 * one write(); a line that would overflow is cut at a field boundary and gets
 * "truncated":true. Logging never fails its caller. */
#ifndef TSR_COMMON_LOG_H
#define TSR_COMMON_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define TSR_LOG_LINE_MAX 4096      /* bytes of one line, newline included */
#define TSR_LOG_VALUE_MAX 512      /* bytes of one string value before escaping; cut beyond */

typedef enum tsr_log_level {
    TSR_LOG_INVALID = 0,
    TSR_LOG_DEBUG,
    TSR_LOG_INFO,
    TSR_LOG_WARN,
    TSR_LOG_ERROR
} tsr_log_level;

typedef enum tsr_log_field_type {
    TSR_LF_END = 0,
    TSR_LF_STR,    /* s: NUL-terminated string (NULL logs null) */
    TSR_LF_STRN,   /* s, n: n bytes (need not be NUL-terminated) */
    TSR_LF_INT,    /* i */
    TSR_LF_BOOL,   /* i: zero or not */
    TSR_LF_ERR     /* i: a tsr_err, logged as its public code and text */
} tsr_log_field_type;

/* One named field. Build them with the TSR_F_* macros, never by hand. */
typedef struct tsr_log_field {
    tsr_log_field_type type;
    const char *key;   /* a literal: [a-z0-9_] by convention */
    const char *s;
    size_t n;
    int64_t i;
} tsr_log_field;

/* Field constructors; the key must be a string literal. */
#define TSR_F_STR(k, v) ((tsr_log_field){TSR_LF_STR, "" k "", (v), 0, 0})
#define TSR_F_STRN(k, v, len) ((tsr_log_field){TSR_LF_STRN, "" k "", (v), (len), 0})
#define TSR_F_INT(k, v) ((tsr_log_field){TSR_LF_INT, "" k "", NULL, 0, (int64_t)(v)})
#define TSR_F_BOOL(k, v) ((tsr_log_field){TSR_LF_BOOL, "" k "", NULL, 0, (v) ? 1 : 0})
#define TSR_F_ERR(e) ((tsr_log_field){TSR_LF_ERR, "error", NULL, 0, (int64_t)(e)})

/* Logs a message (a string literal) with one or more fields:
 *   tsr_log(TSR_LOG_INFO, "listening", TSR_F_STR("addr", a), TSR_F_INT("threads", n));
 * Use tsr_log_msg for a message without fields. */
#define tsr_log(level, msg, ...)                                                           \
    tsr_log_write((level), "" msg "", (const tsr_log_field[]){__VA_ARGS__},              \
                  sizeof((const tsr_log_field[]){__VA_ARGS__}) / sizeof(tsr_log_field))
#define tsr_log_msg(level, msg) tsr_log_write((level), "" msg "", NULL, 0)

/* Audit events: always written whatever the level threshold (as "level":"info",
 * "msg":"audit", "event":"<name>"). */
typedef enum tsr_log_event_kind {
    TSR_EV_INVALID = 0,
    TSR_EV_LOGIN_OK,
    TSR_EV_LOGIN_FAILED,
    TSR_EV_LOGIN_RATE_LIMITED,
    TSR_EV_LOGOUT,
    TSR_EV_SESSION_CREATED,
    TSR_EV_SESSION_REVOKED,
    TSR_EV_SESSIONS_REVOKED,     /* several at once: revoke others, revoke all */
    TSR_EV_PASSWORD_CHANGED,
    TSR_EV_PASSWORD_REHASHED,
    TSR_EV_USER_CREATED,
    TSR_EV_USER_UPDATED,
    TSR_EV_USER_DISABLED,
    TSR_EV_USER_ENABLED,
    TSR_EV_USER_DELETED,
    TSR_EV_SIGNUP_REFUSED,
    TSR_EV_CSRF_REFUSED,
    TSR_EV_ADMIN_KEY_GENERATED,
    TSR_EV_ADMIN_KEY_SET,
    TSR_EV_ADMIN_AUTH_FAILED,
    TSR_EV_KEY_ROTATED,
    TSR_EV_TOKEN_REUSE,
    TSR_EV__COUNT
} tsr_log_event_kind;

/*   tsr_log_event(TSR_EV_LOGIN_OK, TSR_F_STR("user_id", u->id), TSR_F_STR("ip", ip)); */
#define tsr_log_event(ev, ...)                                                             \
    tsr_log_event_write((ev), (const tsr_log_field[]){__VA_ARGS__},                        \
                        sizeof((const tsr_log_field[]){__VA_ARGS__}) / sizeof(tsr_log_field))
#define tsr_log_event0(ev) tsr_log_event_write((ev), NULL, 0)

/* Writes one line if level passes the threshold. msg must be a literal (use the
 * macros); fields may be NULL when n is 0. */
void tsr_log_write(tsr_log_level level, const char *msg, const tsr_log_field *fields,
                   size_t n);
void tsr_log_event_write(tsr_log_event_kind ev, const tsr_log_field *fields, size_t n);

/* The event's name ("login_ok"); "unknown" for a bad value. */
const char *tsr_log_event_name(tsr_log_event_kind ev);

/* Threshold (default TSR_LOG_INFO); lines below it are dropped. Thread-safe. */
void tsr_log_set_level(tsr_log_level level);
tsr_log_level tsr_log_get_level(void);
/* Nonzero when a line at this level would be written (skip costly field work). */
int tsr_log_enabled(tsr_log_level level);

/* "debug", "info", "warn", "error" (exact, lower case) or TSR_LOG_INVALID. */
tsr_log_level tsr_log_level_from_name(const char *s);
const char *tsr_log_level_name(tsr_log_level level);

/* Where lines go (default 2, stderr); for tests. -1 silences the logger. */
void tsr_log_set_fd(int fd);

/* Formats one line into buf (cap >= 64) without writing it; returns its length
 * (newline included, NUL-terminated). For tests and for callers with their own
 * sink. ev other than TSR_EV_INVALID adds "event":"<name>" after msg. */
size_t tsr_log_format(char *buf /* OUT */, size_t cap, tsr_log_level level, const char *msg,
                      tsr_log_event_kind ev, const tsr_log_field *fields, size_t n);

#endif
