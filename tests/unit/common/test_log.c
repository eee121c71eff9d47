/* test_log.c: every log line is one valid JSON object (checked with jansson),
 * values are escaped, invalid UTF-8 is replaced, long lines are cut at a field,
 * the level threshold filters, and audit events are always written. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "harness.h"

/* Parses one line (without its newline) strictly; NULL when not one JSON object. */
static json_t *parse_line(const char *line, size_t len)
{
    json_error_t e;
    if (len == 0 || line[len - 1] != '\n')
        return NULL;
    if (memchr(line, '\n', len - 1) != NULL)
        return NULL;
    json_t *v = json_loadb(line, len - 1, JSON_REJECT_DUPLICATES, &e);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static void formats_one_json_object(void)
{
    char buf[TSR_LOG_LINE_MAX];
    tsr_log_field f[] = {TSR_F_STR("addr", "127.0.0.1:8080"), TSR_F_INT("threads", -4),
                         TSR_F_BOOL("tls", 0), TSR_F_ERR(TSR_ERR_UNAVAILABLE),
                         TSR_F_STRN("part", "abcdef", 3), TSR_F_STR("nothing", NULL)};
    size_t n = tsr_log_format(buf, sizeof buf, TSR_LOG_WARN, "listening", TSR_EV_INVALID, f, 6);
    json_t *v = parse_line(buf, n);
    CHECKF(v != NULL, "%s", buf);
    if (v == NULL)
        return;
    CHECK(json_is_string(json_object_get(v, "ts")));
    CHECK(strlen(json_string_value(json_object_get(v, "ts"))) == 24);
    CHECK(strcmp(json_string_value(json_object_get(v, "level")), "warn") == 0);
    CHECK(strcmp(json_string_value(json_object_get(v, "msg")), "listening") == 0);
    CHECK(strcmp(json_string_value(json_object_get(v, "addr")), "127.0.0.1:8080") == 0);
    CHECK(json_integer_value(json_object_get(v, "threads")) == -4);
    CHECK(json_is_false(json_object_get(v, "tls")));
    CHECK(strcmp(json_string_value(json_object_get(v, "error")), "unavailable") == 0);
    CHECK(strcmp(json_string_value(json_object_get(v, "part")), "abc") == 0);
    CHECK(json_is_null(json_object_get(v, "nothing")));
    CHECK(json_object_get(v, "event") == NULL);
    json_decref(v);
}

static void escapes_hostile_values(void)
{
    char buf[TSR_LOG_LINE_MAX];
    const char hostile[] = "a\"b\\c\nd\re\tf\x01g\x7fh}\",\"level\":\"error";
    const char utf8[] = "caf\xc3\xa9 \xe2\x82\xac";
    const char broken[] = "x\xff\xc3y\xed\xa0\x80z"; /* invalid byte, cut sequence, surrogate */
    tsr_log_field f[] = {TSR_F_STR("ua", hostile), TSR_F_STR("u", utf8), TSR_F_STR("b", broken)};
    size_t n = tsr_log_format(buf, sizeof buf, TSR_LOG_INFO, "m", TSR_EV_INVALID, f, 3);
    json_t *v = parse_line(buf, n);
    CHECKF(v != NULL, "%s", buf);
    if (v == NULL)
        return;
    CHECK(strcmp(json_string_value(json_object_get(v, "ua")), hostile) == 0);
    CHECK(strcmp(json_string_value(json_object_get(v, "level")), "info") == 0);
    CHECK(strcmp(json_string_value(json_object_get(v, "u")), utf8) == 0);
    CHECK(strcmp(json_string_value(json_object_get(v, "b")),
                 "x\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz") == 0);
    json_decref(v);
}

static void long_lines_are_cut_at_a_field(void)
{
    char buf[TSR_LOG_LINE_MAX];
    char big[TSR_LOG_VALUE_MAX + 100];
    tsr_log_field f[20];

    memset(big, '"', sizeof big - 1); /* escaping doubles it */
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 20; i++)
        f[i] = TSR_F_STR("v", big);
    size_t n = tsr_log_format(buf, sizeof buf, TSR_LOG_INFO, "m", TSR_EV_INVALID, f, 20);
    CHECK(n <= sizeof buf - 1);
    /* Duplicate "v" keys: parse without the duplicate check. */
    json_error_t e;
    CHECK(n > 0 && buf[n - 1] == '\n');
    json_t *v = json_loadb(buf, n - 1, 0, &e);
    CHECKF(v != NULL, "%s", e.text);
    if (v != NULL) {
        CHECK(json_is_true(json_object_get(v, "truncated")));
        /* Each value was cut to TSR_LOG_VALUE_MAX input bytes. */
        CHECK(strlen(json_string_value(json_object_get(v, "v"))) == TSR_LOG_VALUE_MAX);
        json_decref(v);
    }
}

static void levels_filter_and_audit_always_writes(void)
{
    int fds[2];
    char buf[8192];

    CHECK(pipe(fds) == 0);
    tsr_log_set_fd(fds[1]);
    tsr_log_set_level(TSR_LOG_WARN);
    CHECK(tsr_log_get_level() == TSR_LOG_WARN);
    CHECK(!tsr_log_enabled(TSR_LOG_INFO) && tsr_log_enabled(TSR_LOG_ERROR));
    tsr_log(TSR_LOG_INFO, "dropped", TSR_F_INT("n", 1));
    tsr_log_msg(TSR_LOG_DEBUG, "dropped too");
    tsr_log(TSR_LOG_ERROR, "kept", TSR_F_INT("n", 2));
    tsr_log_event(TSR_EV_LOGIN_FAILED, TSR_F_STR("ip", "192.0.2.1"));
    tsr_log_event0(TSR_EV_ADMIN_KEY_GENERATED);
    tsr_log_set_fd(-1);
    close(fds[1]);
    ssize_t r = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    CHECK(r > 0);
    buf[r > 0 ? r : 0] = '\0';
    CHECK(strstr(buf, "dropped") == NULL);
    CHECK(strstr(buf, "\"msg\":\"kept\"") != NULL);
    CHECK(strstr(buf, "\"msg\":\"audit\",\"event\":\"login_failed\",\"ip\":\"192.0.2.1\"") != NULL);
    CHECK(strstr(buf, "\"event\":\"admin_key_generated\"") != NULL);
    /* Three lines, each a JSON object. */
    int lines = 0;
    for (char *p = buf, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        json_t *v = parse_line(p, (size_t)(nl - p) + 1);
        CHECK(v != NULL);
        json_decref(v);
        lines++;
    }
    CHECK(lines == 3);
    tsr_log_set_level(TSR_LOG_INFO);
}

static void level_names(void)
{
    CHECK(tsr_log_level_from_name("debug") == TSR_LOG_DEBUG);
    CHECK(tsr_log_level_from_name("error") == TSR_LOG_ERROR);
    CHECK(tsr_log_level_from_name("INFO") == TSR_LOG_INVALID);
    CHECK(tsr_log_level_from_name("") == TSR_LOG_INVALID);
    CHECK(tsr_log_level_from_name(NULL) == TSR_LOG_INVALID);
    CHECK(strcmp(tsr_log_level_name(TSR_LOG_WARN), "warn") == 0);
    CHECK(strcmp(tsr_log_event_name(TSR_EV_PASSWORD_CHANGED), "password_changed") == 0);
    CHECK(strcmp(tsr_log_event_name((tsr_log_event_kind)999), "unknown") == 0);
    for (int e = 1; e < TSR_EV__COUNT; e++)
        CHECKF(strcmp(tsr_log_event_name((tsr_log_event_kind)e), "unknown") != 0, "event %d", e);
}

int main(void)
{
    TSR_RUN(formats_one_json_object);
    TSR_RUN(escapes_hostile_values);
    TSR_RUN(long_lines_are_cut_at_a_field);
    TSR_RUN(levels_filter_and_audit_always_writes);
    TSR_RUN(level_names);
    return tsr_test_summary();
}
