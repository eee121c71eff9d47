/* config.c: defaults, the INI file (libinih) and TESSERA_<SECTION>_<KEY>
 * overrides, driven by one table of known keys. Every value is parsed strictly
 * and range-checked; errors name the key and where it came from, never the value. */
#include "common/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

extern char **environ;

typedef enum key_kind {
    K_STR,        /* any string, may be empty */
    K_STR_REQ,    /* non-empty string */
    K_SECRET,     /* string wiped on reset */
    K_URL,        /* "" or http(s)://... */
    K_ORIGINS,    /* comma-separated http(s) origins */
    K_COOKIE,     /* RFC 6265 token */
    K_ALG,        /* a JWS algorithm name */
    K_BOOL,       /* int */
    K_DUR,        /* int64_t seconds in [min, max] */
    K_U32,        /* uint32_t in [min, max] */
    K_UNSIGNED,   /* unsigned in [min, max] */
    K_SIZE,       /* size_t in [min, max] */
    K_SAMESITE,
    K_BEARER,
    K_LOGLEVEL
} key_kind;

typedef struct key_def {
    const char *section, *key;
    key_kind kind;
    size_t off;
    int64_t min, max;
} key_def;

#define OFF(f) offsetof(tsr_config, f)

static const key_def keys[] = {
    {"server", "listen", K_STR_REQ, OFF(server.listen), 0, 0},
    {"server", "public_url", K_URL, OFF(server.public_url), 0, 0},
    {"server", "threads", K_UNSIGNED, OFF(server.threads), 1, 1024},
    {"server", "tls_cert", K_STR, OFF(server.tls_cert), 0, 0},
    {"server", "tls_key", K_STR, OFF(server.tls_key), 0, 0},
    {"server", "allow_insecure_http", K_BOOL, OFF(server.allow_insecure_http), 0, 0},
    {"store", "url", K_STR_REQ, OFF(store.url), 0, 0},
    {"cache", "url", K_STR_REQ, OFF(cache.url), 0, 0},
    {"session", "cookie_name", K_COOKIE, OFF(session.cookie_name), 0, 0},
    {"session", "same_site", K_SAMESITE, OFF(session.same_site), 0, 0},
    {"session", "idle_ttl", K_DUR, OFF(session.idle_ttl), 1, TSR_DURATION_MAX},
    {"session", "absolute_ttl", K_DUR, OFF(session.absolute_ttl), 1, TSR_DURATION_MAX},
    {"session", "max_per_user", K_SIZE, OFF(session.max_per_user), 0, 1000000},
    {"tokens", "alg", K_ALG, OFF(tokens.alg), 0, 0},
    {"tokens", "issuer", K_STR, OFF(tokens.issuer), 0, 0},
    {"tokens", "audience", K_STR_REQ, OFF(tokens.audience), 0, 0},
    {"tokens", "access_ttl", K_DUR, OFF(tokens.access_ttl), 1, TSR_DURATION_MAX},
    {"tokens", "refresh_ttl", K_DUR, OFF(tokens.refresh_ttl), 1, TSR_DURATION_MAX},
    {"tokens", "refresh_idle_ttl", K_DUR, OFF(tokens.refresh_idle_ttl), 1, TSR_DURATION_MAX},
    {"tokens", "reuse_grace", K_DUR, OFF(tokens.reuse_grace), 0, 3600},
    {"tokens", "key_rotation", K_DUR, OFF(tokens.key_rotation), 0, TSR_DURATION_MAX},
    {"verify", "bearer", K_BEARER, OFF(verify.bearer), 0, 0},
    {"verify", "cache_entries", K_SIZE, OFF(verify.cache_entries), 0, 16777216},
    {"security", "argon2_memory_kib", K_U32, OFF(security.argon2_memory_kib), 8, 4194304},
    {"security", "argon2_iterations", K_U32, OFF(security.argon2_iterations), 1, 64},
    {"security", "argon2_parallelism", K_U32, OFF(security.argon2_parallelism), 1, 1},
    {"security", "login_max_failures", K_U32, OFF(security.login_max_failures), 1, 1000000},
    {"security", "login_window", K_DUR, OFF(security.login_window), 1, TSR_DURATION_MAX},
    {"security", "allowed_origins", K_ORIGINS, OFF(security.allowed_origins), 0, 0},
    {"signup", "open", K_BOOL, OFF(signup.open), 0, 0},
    {"admin", "key", K_SECRET, OFF(admin.key), 0, 0},
    {"log", "level", K_LOGLEVEL, OFF(log.level), 0, 0},
};

#define NKEYS (sizeof keys / sizeof keys[0])

static const char *const sections[] = {"server",   "store",  "cache", "session", "tokens",
                                       "verify",   "security", "signup", "admin", "log"};

static const char *const jws_algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                       "RS512", "PS256", "PS384", "PS512", "ES256",
                                       "ES384", "ES512", "EdDSA"};

static void errf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void errf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (buf == NULL || cap == 0)
        return;
    va_start(ap, fmt);
    int k = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (k < 0)
        buf[0] = '\0'; /* a cut message is still a message: truncation is fine here */
}

static void errclear(char *buf, size_t cap)
{
    if (buf != NULL && cap > 0)
        buf[0] = '\0';
}

static char **str_field(tsr_config *c, const key_def *d)
{
    return (char **)(void *)((char *)c + d->off);
}

static int is_str_kind(key_kind k)
{
    return k == K_STR || k == K_STR_REQ || k == K_SECRET || k == K_URL || k == K_ORIGINS ||
           k == K_COOKIE || k == K_ALG;
}

static void free_str(char *s, int secret)
{
    if (s == NULL)
        return;
    if (secret) {
        volatile char *v = s;
        for (size_t i = 0; v[i] != '\0'; i++)
            v[i] = 0;
    }
    free(s);
}

void tsr_config_reset(tsr_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        if (is_str_kind(keys[i].kind)) {
            char **f = str_field(c, &keys[i]);
            free_str(*f, keys[i].kind == K_SECRET);
            *f = NULL;
        }
    }
    memset(c, 0, sizeof *c);
}

static int set_str(char **f, const char *v, int secret)
{
    size_t n = strlen(v);
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, v, n + 1);
    free_str(*f, secret);
    *f = copy;
    return 1;
}

tsr_err tsr_config_defaults(tsr_config *out)
{
    tsr_err rc = TSR_ERR_NOMEM;
    static const struct {
        size_t off;
        const char *v;
    } strs[] = {
        {OFF(server.listen), "127.0.0.1:8080"},
        {OFF(server.public_url), ""},
        {OFF(server.tls_cert), ""},
        {OFF(server.tls_key), ""},
        {OFF(store.url), "sqlite:./var/tessera.db"},
        {OFF(cache.url), "memory"},
        {OFF(session.cookie_name), "__Host-tessera"},
        {OFF(tokens.alg), "ES256"},
        {OFF(tokens.issuer), ""},
        {OFF(tokens.audience), "tessera"},
        {OFF(security.allowed_origins), ""},
        {OFF(admin.key), ""},
    };

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        char **f = (char **)(void *)((char *)out + strs[i].off);
        if (!set_str(f, strs[i].v, 0))
            goto out;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    if (cores > 1024)
        cores = 1024;
    out->server.threads = (unsigned)cores;
    out->server.allow_insecure_http = 0;
    out->session.same_site = TSR_SAME_SITE_LAX;
    out->session.idle_ttl = 30 * 60;
    out->session.absolute_ttl = 24 * 3600;
    out->session.max_per_user = 100;
    out->tokens.access_ttl = 15 * 60;
    out->tokens.refresh_ttl = 30 * 86400;
    out->tokens.refresh_idle_ttl = 7 * 86400;
    out->tokens.reuse_grace = 10;
    out->tokens.key_rotation = 0;
    out->verify.bearer = TSR_VERIFY_REVOCATION_LIST;
    out->verify.cache_entries = 65536;
    out->security.argon2_memory_kib = 19456;
    out->security.argon2_iterations = 2;
    out->security.argon2_parallelism = 1;
    out->security.login_max_failures = 10;
    out->security.login_window = 15 * 60;
    out->signup.open = 1;
    out->log.level = TSR_LOG_INFO;
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        tsr_config_reset(out);
    return rc;
}

/* ---- strict value parsers ---- */

tsr_err tsr_config_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    const char *p = s;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = 0;
    if (s == NULL)
        return TSR_ERR_INVALID;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return TSR_ERR_INVALID;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return TSR_ERR_INVALID;
    if (v < min || v > max)
        return TSR_ERR_INVALID;
    *out = (int64_t)v;
    return TSR_OK;
}

tsr_err tsr_config_parse_duration(const char *s, int64_t *out)
{
    char digits[24];
    int64_t v = 0, mult = 1;
    size_t n;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = 0;
    if (s == NULL)
        return TSR_ERR_INVALID;
    n = strlen(s);
    if (n == 0 || n >= sizeof digits)
        return TSR_ERR_INVALID;
    memcpy(digits, s, n + 1);
    switch (digits[n - 1]) {
    case 's': mult = 1; digits[--n] = '\0'; break;
    case 'm': mult = 60; digits[--n] = '\0'; break;
    case 'h': mult = 3600; digits[--n] = '\0'; break;
    case 'd': mult = 86400; digits[--n] = '\0'; break;
    default: break;
    }
    if (n == 0)
        return TSR_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)digits[i]))
            return TSR_ERR_INVALID;
    }
    if (tsr_config_parse_int(digits, 0, TSR_DURATION_MAX, &v) != TSR_OK)
        return TSR_ERR_INVALID;
    if (v > TSR_DURATION_MAX / mult)
        return TSR_ERR_INVALID;
    *out = v * mult;
    return TSR_OK;
}

static int ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    }
    return *a == *b;
}

tsr_err tsr_config_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = 0;
    if (s == NULL)
        return TSR_ERR_INVALID;
    for (size_t i = 0; i < 4; i++) {
        if (ieq(s, yes[i])) {
            *out = 1;
            return TSR_OK;
        }
        if (ieq(s, no[i]))
            return TSR_OK;
    }
    return TSR_ERR_INVALID;
}

/* RFC 6265 cookie-name: an RFC 2616 token. */
static int cookie_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7F || strchr("()<>@,;:\\\"/[]?={}", c) != NULL)
            return 0;
    }
    return 1;
}

/* "http://host[:port]" or "https://..." with a non-empty host and, for an origin,
 * no path. */
static int http_url_ok(const char *s, size_t n, int origin)
{
    size_t p;
    if (n > 7 && strncmp(s, "http://", 7) == 0)
        p = 7;
    else if (n > 8 && strncmp(s, "https://", 8) == 0)
        p = 8;
    else
        return 0;
    if (p >= n || s[p] == '/' || s[p] == ':')
        return 0;
    for (size_t i = p; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7F)
            return 0;
        if (origin && (c == '/' || c == '?' || c == '#'))
            return 0;
    }
    return 1;
}

static int origins_ok(const char *s)
{
    const char *p = s;
    if (*s == '\0')
        return 1;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        /* Blanks around entries are allowed. */
        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (!http_url_ok(p, n, 1))
            return 0;
        if (comma == NULL)
            return 1;
        p = comma + 1;
    }
}

static const key_def *find_key(const char *section, const char *key, int *section_known)
{
    *section_known = 0;
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        if (strcmp(section, sections[i]) == 0)
            *section_known = 1;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].key, key) == 0)
            return &keys[i];
    }
    return NULL;
}

static tsr_err set_value(tsr_config *c, const key_def *d, const char *v, const char *where,
                         char *err, size_t errcap)
{
    void *f = (char *)c + d->off;
    int64_t n = 0;
    const char *why = NULL;

    switch (d->kind) {
    case K_STR:
    case K_SECRET:
        break;
    case K_STR_REQ:
        if (*v == '\0')
            why = "must not be empty";
        break;
    case K_URL:
        if (*v != '\0' && !http_url_ok(v, strlen(v), 0))
            why = "must be an http:// or https:// URL";
        break;
    case K_ORIGINS:
        if (!origins_ok(v))
            why = "must be comma-separated http(s)://host[:port] origins";
        break;
    case K_COOKIE:
        if (!cookie_name_ok(v))
            why = "must be a cookie name (1-64 token characters)";
        break;
    case K_ALG: {
        int ok = 0;
        for (size_t i = 0; i < sizeof jws_algs / sizeof jws_algs[0]; i++)
            ok |= strcmp(v, jws_algs[i]) == 0;
        if (!ok)
            why = "must be a JWS algorithm (ES256, EdDSA, RS256, HS256, ...)";
        break;
    }
    case K_BOOL: {
        int b = 0;
        if (tsr_config_parse_bool(v, &b) != TSR_OK)
            why = "must be true or false";
        else
            *(int *)f = b;
        break;
    }
    case K_DUR:
        if (tsr_config_parse_duration(v, &n) != TSR_OK)
            why = "must be a duration: seconds, or a number with s, m, h or d";
        else if (n < d->min || n > d->max)
            why = "duration out of range";
        else
            *(int64_t *)f = n;
        break;
    case K_U32:
    case K_UNSIGNED:
    case K_SIZE:
        if (tsr_config_parse_int(v, d->min, d->max, &n) != TSR_OK) {
            errf(err, errcap, "%s: [%s] %s must be an integer from %lld to %lld", where,
                 d->section, d->key, (long long)d->min, (long long)d->max);
            return TSR_ERR_INVALID;
        }
        if (d->kind == K_U32)
            *(uint32_t *)f = (uint32_t)n;
        else if (d->kind == K_UNSIGNED)
            *(unsigned *)f = (unsigned)n;
        else
            *(size_t *)f = (size_t)n;
        break;
    case K_SAMESITE:
        if (ieq(v, "Lax"))
            *(tsr_same_site *)f = TSR_SAME_SITE_LAX;
        else if (ieq(v, "Strict"))
            *(tsr_same_site *)f = TSR_SAME_SITE_STRICT;
        else
            why = "must be Strict or Lax";
        break;
    case K_BEARER:
        if (strcmp(v, "stateless") == 0)
            *(tsr_verify_mode *)f = TSR_VERIFY_STATELESS;
        else if (strcmp(v, "revocation-list") == 0)
            *(tsr_verify_mode *)f = TSR_VERIFY_REVOCATION_LIST;
        else if (strcmp(v, "stateful") == 0)
            *(tsr_verify_mode *)f = TSR_VERIFY_STATEFUL;
        else
            why = "must be stateless, revocation-list or stateful";
        break;
    case K_LOGLEVEL: {
        tsr_log_level l = tsr_log_level_from_name(v);
        if (l == TSR_LOG_INVALID)
            why = "must be debug, info, warn or error";
        else
            *(tsr_log_level *)f = l;
        break;
    }
    }
    if (why != NULL) {
        errf(err, errcap, "%s: [%s] %s %s", where, d->section, d->key, why);
        return TSR_ERR_INVALID;
    }
    if (is_str_kind(d->kind) && !set_str((char **)f, v, d->kind == K_SECRET)) {
        errf(err, errcap, "out of memory");
        return TSR_ERR_NOMEM;
    }
    return TSR_OK;
}

tsr_err tsr_config_set(tsr_config *c, const char *section, const char *key, const char *value,
                       char *errbuf, size_t errcap)
{
    int section_known = 0;
    const key_def *d;

    errclear(errbuf, errcap);
    if (c == NULL || section == NULL || key == NULL || value == NULL)
        return TSR_ERR_INVALID;
    d = find_key(section, key, &section_known);
    if (d == NULL) {
        if (section_known)
            errf(errbuf, errcap, "unknown key [%.40s] %.60s", section, key);
        else
            errf(errbuf, errcap, "unknown section [%.40s]", section);
        return TSR_ERR_NOT_FOUND;
    }
    return set_value(c, d, value, "config", errbuf, errcap);
}

/* ---- the INI file ---- */

typedef struct ini_ctx {
    tsr_config *c;
    const char *path;
    char *err;
    size_t errcap;
    tsr_err rc;
    unsigned char seen[NKEYS];
} ini_ctx;

static int on_ini_pair(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx *x = user;
    int section_known = 0;
    const key_def *d;
    char where[64];

    if (x->rc != TSR_OK)
        return 0;
    if (section[0] == '\0') {
        errf(x->err, x->errcap, "%.120s: key %.60s is outside any [section]", x->path, name);
        x->rc = TSR_ERR_INVALID;
        return 0;
    }
    d = find_key(section, name, &section_known);
    if (d == NULL) {
        if (section_known)
            errf(x->err, x->errcap, "%.120s: unknown key [%.40s] %.60s", x->path, section,
                 name);
        else
            errf(x->err, x->errcap, "%.120s: unknown section [%.40s]", x->path, section);
        x->rc = TSR_ERR_INVALID;
        return 0;
    }
    size_t idx = (size_t)(d - keys);
    if (x->seen[idx]) {
        errf(x->err, x->errcap, "%.120s: [%s] %s is set twice", x->path, d->section, d->key);
        x->rc = TSR_ERR_INVALID;
        return 0;
    }
    x->seen[idx] = 1;
    int k = snprintf(where, sizeof where, "%.60s", x->path);
    if (k < 0)
        where[0] = '\0';
    x->rc = set_value(x->c, d, value, where, x->err, x->errcap);
    return x->rc == TSR_OK;
}

/* Reads the whole file (bounded) into a NUL-terminated heap buffer. */
static tsr_err read_file(const char *path, char **out, size_t *len, char *err, size_t errcap)
{
    tsr_err rc = TSR_ERR_IO;
    int fd = -1;
    char *buf = NULL;
    size_t n = 0;
    struct stat st;

    *out = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        errf(err, errcap, "%.120s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        errf(err, errcap, "%.120s: not a regular file", path);
        goto out;
    }
    buf = malloc(TSR_CONFIG_FILE_MAX + 1);
    if (buf == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, TSR_CONFIG_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            errf(err, errcap, "%.120s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > TSR_CONFIG_FILE_MAX) {
            errf(err, errcap, "%.120s: larger than %d bytes", path, TSR_CONFIG_FILE_MAX);
            rc = TSR_ERR_TOO_LARGE;
            goto out;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = TSR_OK;
out:
    if (buf != NULL) {
        memset(buf, 0, n);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static tsr_err load_file(tsr_config *c, const char *path, char *err, size_t errcap)
{
    tsr_err rc = TSR_ERR_INVALID;
    char *buf = NULL;
    size_t len = 0;
    ini_ctx x;

    rc = read_file(path, &buf, &len, err, errcap);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_ERR_INVALID;
    /* libinih splits lines longer than its buffer silently: refuse them instead,
     * and refuse NUL bytes (they would end the text early). */
    size_t line = 1, col = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\0') {
            errf(err, errcap, "%.120s: line %zu holds a NUL byte", path, line);
            goto out;
        }
        if (buf[i] == '\n') {
            line++;
            col = 0;
        } else if (++col > INI_MAX_LINE - 4) {
            errf(err, errcap, "%.120s: line %zu is longer than %d characters", path, line,
                 INI_MAX_LINE - 4);
            goto out;
        }
    }
    memset(&x, 0, sizeof x);
    x.c = c;
    x.path = path;
    x.err = err;
    x.errcap = errcap;
    x.rc = TSR_OK;
    int r = ini_parse_string(buf, on_ini_pair, &x);
    if (x.rc != TSR_OK) {
        rc = x.rc;
        goto out;
    }
    if (r != 0) {
        errf(err, errcap, "%.120s: line %d: syntax error (expected [section] or key = value)",
             path, r);
        goto out;
    }
    rc = TSR_OK;
out:
    if (buf != NULL) {
        memset(buf, 0, len); /* may hold admin.key */
        free(buf);
    }
    return rc;
}

/* ---- the environment ---- */

/* "TESSERA_" + upper(section) + "_" + upper(key) into out. */
static int env_name(const char *section, const char *key, char *out, size_t cap)
{
    int k = snprintf(out, cap, "TESSERA_%s_%s", section, key);
    if (k < 0 || (size_t)k >= cap)
        return 0;
    for (char *p = out; *p != '\0'; p++)
        *p = (char)toupper((unsigned char)*p);
    return 1;
}

static tsr_err load_env(tsr_config *c, char *const *envp, char *err, size_t errcap)
{
    char name[96];

    if (envp == NULL)
        return TSR_OK;
    for (size_t e = 0; envp[e] != NULL; e++) {
        const char *var = envp[e];
        const char *eq = strchr(var, '=');
        if (eq == NULL || strncmp(var, "TESSERA_", 8) != 0)
            continue;
        size_t nlen = (size_t)(eq - var);
        const key_def *d = NULL;
        for (size_t i = 0; i < NKEYS && d == NULL; i++) {
            if (env_name(keys[i].section, keys[i].key, name, sizeof name) &&
                strlen(name) == nlen && strncmp(name, var, nlen) == 0)
                d = &keys[i];
        }
        if (d == NULL) {
            /* A typo inside a known section is an error; other TESSERA_* names
             * (used by scripts) are not ours to judge. */
            for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
                if (!env_name(sections[s], "", name, sizeof name))
                    continue;
                if (nlen > strlen(name) && strncmp(var, name, strlen(name)) == 0) {
                    errf(err, errcap, "unknown environment variable %.*s", (int)(nlen > 64 ? 64 : nlen),
                         var);
                    return TSR_ERR_INVALID;
                }
            }
            continue;
        }
        if (!env_name(d->section, d->key, name, sizeof name))
            return TSR_ERR_INTERNAL;
        tsr_err rc = set_value(c, d, eq + 1, name, err, errcap);
        if (rc != TSR_OK)
            return rc;
    }
    return TSR_OK;
}

tsr_err tsr_config_check(const tsr_config *c, char *errbuf, size_t errcap)
{
    tsr_listen_addr la;

    errclear(errbuf, errcap);
    if (c == NULL)
        return TSR_ERR_INVALID;
    if ((c->server.tls_cert[0] == '\0') != (c->server.tls_key[0] == '\0')) {
        errf(errbuf, errcap, "[server] tls_cert and tls_key must be set together");
        return TSR_ERR_INVALID;
    }
    if (tsr_listen_parse(c->server.listen, &la) != TSR_OK) {
        errf(errbuf, errcap,
             "[server] listen must be IPv4:port or [IPv6]:port (e.g. 127.0.0.1:8080, [::1]:8080)");
        return TSR_ERR_INVALID;
    }
    return TSR_OK;
}

tsr_err tsr_config_load_env(const char *path, char *const *envp, tsr_config *out, char *errbuf,
                            size_t errcap)
{
    tsr_err rc = TSR_ERR_INTERNAL;

    errclear(errbuf, errcap);
    if (out == NULL)
        return TSR_ERR_INVALID;
    rc = tsr_config_defaults(out);
    if (rc != TSR_OK) {
        errf(errbuf, errcap, "out of memory");
        goto out;
    }
    if (path != NULL) {
        rc = load_file(out, path, errbuf, errcap);
        if (rc != TSR_OK)
            goto out;
    }
    rc = load_env(out, envp, errbuf, errcap);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_config_check(out, errbuf, errcap);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        tsr_config_reset(out);
    return rc;
}

tsr_err tsr_config_load(const char *path, tsr_config *out, char *errbuf, size_t errcap)
{
    return tsr_config_load_env(path, environ, out, errbuf, errcap);
}

/* ---- listen addresses ---- */

static tsr_err parse_port(const char *s, uint16_t *out)
{
    int64_t v = 0;
    *out = 0;
    if (*s == '-' || *s == '0')
        return TSR_ERR_INVALID; /* no sign, no leading zero, no port 0 */
    if (tsr_config_parse_int(s, 1, 65535, &v) != TSR_OK)
        return TSR_ERR_INVALID;
    *out = (uint16_t)v;
    return TSR_OK;
}

tsr_err tsr_listen_parse(const char *s, tsr_listen_addr *out)
{
    tsr_err rc = TSR_ERR_INVALID;
    char host[TSR_HOST_MAX + 1];
    const char *port;
    size_t hlen;

    if (out == NULL)
        return TSR_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (s == NULL)
        goto out;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            goto out;
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen > TSR_HOST_MAX)
            goto out;
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        port = close + 2;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out->sa;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            goto out;
        if (parse_port(port, &out->port) != TSR_OK)
            goto out;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(out->port);
        out->family = AF_INET6;
        out->salen = sizeof *a6;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL)
            goto out;
        hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen > TSR_HOST_MAX || memchr(s, ':', hlen) != NULL)
            goto out;
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (ieq(host, "localhost"))
            memcpy(host, "127.0.0.1", sizeof "127.0.0.1");
        port = colon + 1;
        struct sockaddr_in *a4 = (struct sockaddr_in *)&out->sa;
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            goto out;
        if (parse_port(port, &out->port) != TSR_OK)
            goto out;
        a4->sin_family = AF_INET;
        a4->sin_port = htons(out->port);
        out->family = AF_INET;
        out->salen = sizeof *a4;
    }
    memcpy(out->host, host, strlen(host) + 1);
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int tsr_config_is_loopback(const char *host)
{
    char buf[TSR_HOST_MAX + 1];
    struct in_addr a4;
    struct in6_addr a6;
    size_t n;

    if (host == NULL)
        return 0;
    n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n > TSR_HOST_MAX)
        return 0;
    memcpy(buf, host, n);
    buf[n] = '\0';
    if (ieq(buf, "localhost"))
        return 1;
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return 1;
        if (IN6_IS_ADDR_V4MAPPED(&a6))
            return a6.s6_addr[12] == 127;
    }
    return 0;
}
