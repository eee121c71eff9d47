/* log.c: the JSON-lines logger: formats one object per line in a bounded stack
 * buffer and writes it with one write(). Values are JSON-escaped; invalid UTF-8
 * becomes U+FFFD so a line is always valid JSON. */
#include "common/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = TSR_LOG_INFO;
static atomic_int log_fd = 2;

static const char *const level_names[] = {
    [TSR_LOG_INVALID] = NULL,
    [TSR_LOG_DEBUG] = "debug",
    [TSR_LOG_INFO] = "info",
    [TSR_LOG_WARN] = "warn",
    [TSR_LOG_ERROR] = "error",
};

static const char *const event_names[TSR_EV__COUNT] = {
    [TSR_EV_LOGIN_OK] = "login_ok",
    [TSR_EV_LOGIN_FAILED] = "login_failed",
    [TSR_EV_LOGIN_RATE_LIMITED] = "login_rate_limited",
    [TSR_EV_LOGOUT] = "logout",
    [TSR_EV_SESSION_CREATED] = "session_created",
    [TSR_EV_SESSION_REVOKED] = "session_revoked",
    [TSR_EV_SESSIONS_REVOKED] = "sessions_revoked",
    [TSR_EV_PASSWORD_CHANGED] = "password_changed",
    [TSR_EV_PASSWORD_REHASHED] = "password_rehashed",
    [TSR_EV_USER_CREATED] = "user_created",
    [TSR_EV_USER_UPDATED] = "user_updated",
    [TSR_EV_USER_DISABLED] = "user_disabled",
    [TSR_EV_USER_ENABLED] = "user_enabled",
    [TSR_EV_USER_DELETED] = "user_deleted",
    [TSR_EV_SIGNUP_REFUSED] = "signup_refused",
    [TSR_EV_CSRF_REFUSED] = "csrf_refused",
    [TSR_EV_ADMIN_KEY_GENERATED] = "admin_key_generated",
    [TSR_EV_ADMIN_KEY_SET] = "admin_key_set",
    [TSR_EV_ADMIN_AUTH_FAILED] = "admin_auth_failed",
    [TSR_EV_KEY_ROTATED] = "key_rotated",
    [TSR_EV_TOKEN_REUSE] = "token_reuse",
};

const char *tsr_log_event_name(tsr_log_event_kind ev)
{
    if ((unsigned)ev >= TSR_EV__COUNT || event_names[ev] == NULL)
        return "unknown";
    return event_names[ev];
}

void tsr_log_set_level(tsr_log_level level)
{
    if (level >= TSR_LOG_DEBUG && level <= TSR_LOG_ERROR)
        atomic_store(&log_level, (int)level);
}

tsr_log_level tsr_log_get_level(void)
{
    return (tsr_log_level)atomic_load(&log_level);
}

int tsr_log_enabled(tsr_log_level level)
{
    return level >= TSR_LOG_DEBUG && level <= TSR_LOG_ERROR &&
           (int)level >= atomic_load(&log_level) && atomic_load(&log_fd) >= 0;
}

tsr_log_level tsr_log_level_from_name(const char *s)
{
    if (s == NULL)
        return TSR_LOG_INVALID;
    for (int l = TSR_LOG_DEBUG; l <= TSR_LOG_ERROR; l++) {
        if (strcmp(s, level_names[l]) == 0)
            return (tsr_log_level)l;
    }
    return TSR_LOG_INVALID;
}

const char *tsr_log_level_name(tsr_log_level level)
{
    if (level < TSR_LOG_DEBUG || level > TSR_LOG_ERROR)
        return "unknown";
    return level_names[level];
}

void tsr_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd < 0 ? -1 : fd);
}

/* A bounded output buffer; once full, further appends are dropped and `full` set. */
typedef struct lbuf {
    char *p;
    size_t len, cap;
    int full;
} lbuf;

static void put(lbuf *b, const char *s, size_t n)
{
    if (b->full || n > b->cap - b->len) {
        b->full = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(lbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Appends s as a JSON string (quotes included), cut at TSR_LOG_VALUE_MAX input bytes. */
static void put_json_str(lbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    if (n > TSR_LOG_VALUE_MAX)
        n = TSR_LOG_VALUE_MAX;
    put(b, "\"", 1);
    while (i < n) {
        unsigned char c = u[i];
        char esc[7];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            const char *e = NULL;
            if (c == '\n')
                e = "\\n";
            else if (c == '\r')
                e = "\\r";
            else if (c == '\t')
                e = "\\t";
            if (e != NULL) {
                put(b, e, 2);
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                put(b, esc, 6);
            }
            i++;
        } else if (c < 0x80) {
            put(b, (const char *)&u[i], 1);
            i++;
        } else {
            size_t l = utf8_len(u + i, n - i);
            if (l == 0) {
                put(b, "\\ufffd", 6);
                i++;
            } else {
                put(b, (const char *)&u[i], l);
                i += l;
            }
        }
    }
    put(b, "\"", 1);
}

static void put_int(lbuf *b, int64_t v)
{
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    if (k > 0 && (size_t)k < sizeof tmp)
        put(b, tmp, (size_t)k);
    else
        b->full = 1;
}

static void put_field(lbuf *b, const tsr_log_field *f)
{
    put(b, ",", 1);
    put_json_str(b, f->key != NULL ? f->key : "field", f->key != NULL ? strlen(f->key) : 5);
    put(b, ":", 1);
    switch (f->type) {
    case TSR_LF_STR:
        if (f->s == NULL)
            puts_(b, "null");
        else
            put_json_str(b, f->s, strlen(f->s));
        break;
    case TSR_LF_STRN:
        if (f->s == NULL)
            puts_(b, "null");
        else
            put_json_str(b, f->s, f->n);
        break;
    case TSR_LF_INT:
        put_int(b, f->i);
        break;
    case TSR_LF_BOOL:
        puts_(b, f->i ? "true" : "false");
        break;
    case TSR_LF_ERR:
        put_json_str(b, tsr_err_code((tsr_err)f->i), strlen(tsr_err_code((tsr_err)f->i)));
        put(b, ",\"error_text\":", 14);
        put_json_str(b, tsr_err_text((tsr_err)f->i), strlen(tsr_err_text((tsr_err)f->i)));
        break;
    default:
        puts_(b, "null");
        break;
    }
}

static void put_ts(lbuf *b)
{
    struct timespec ts;
    struct tm tm;
    char tmp[40];

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL) {
        puts_(b, "null");
        return;
    }
    int k = snprintf(tmp, sizeof tmp, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L);
    if (k > 0 && (size_t)k < sizeof tmp)
        put(b, tmp, (size_t)k);
    else
        puts_(b, "null");
}

size_t tsr_log_format(char *buf, size_t cap, tsr_log_level level, const char *msg,
                      tsr_log_event_kind ev, const tsr_log_field *fields, size_t n)
{
    static const char tail_cut[] = ",\"truncated\":true}\n";
    lbuf b;

    if (buf == NULL || cap < 64)
        return 0;
    /* Reserve room for the closing part so a cut line is still one JSON object. */
    b.p = buf;
    b.len = 0;
    b.cap = cap - sizeof tail_cut;
    b.full = 0;

    puts_(&b, "{\"ts\":");
    put_ts(&b);
    puts_(&b, ",\"level\":\"");
    puts_(&b, tsr_log_level_name(level));
    puts_(&b, "\",\"msg\":");
    if (msg == NULL)
        msg = "";
    put_json_str(&b, msg, strlen(msg));
    if (ev != TSR_EV_INVALID) {
        puts_(&b, ",\"event\":\"");
        puts_(&b, tsr_log_event_name(ev));
        puts_(&b, "\"");
    }
    size_t kept = b.len;
    for (size_t i = 0; i < n && fields != NULL && fields[i].type != TSR_LF_END; i++) {
        put_field(&b, &fields[i]);
        if (b.full)
            break;
        kept = b.len;
    }
    if (b.full) {
        /* Cut at the last whole field. */
        memcpy(buf + kept, tail_cut, sizeof tail_cut);
        return kept + sizeof tail_cut - 1;
    }
    memcpy(buf + b.len, "}\n", 3);
    return b.len + 2;
}

static void emit(tsr_log_level level, const char *msg, tsr_log_event_kind ev,
                 const tsr_log_field *fields, size_t n)
{
    char line[TSR_LOG_LINE_MAX];
    int fd = atomic_load(&log_fd);

    if (fd < 0)
        return;
    size_t len = tsr_log_format(line, sizeof line, level, msg, ev, fields, n);
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

void tsr_log_write(tsr_log_level level, const char *msg, const tsr_log_field *fields, size_t n)
{
    if (!tsr_log_enabled(level))
        return;
    emit(level, msg, TSR_EV_INVALID, fields, n);
}

void tsr_log_event_write(tsr_log_event_kind ev, const tsr_log_field *fields, size_t n)
{
    emit(TSR_LOG_INFO, "audit", ev, fields, n);
}
