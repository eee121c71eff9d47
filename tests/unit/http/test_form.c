/* test_form.c: the application/x-www-form-urlencoded parser of the OAuth
 * endpoints (strict: duplicates, bad escapes, missing '=', NUL bytes refused),
 * its JSON twin, and the allocation-free JSON writer of their answers (and of
 * /v1/verify), checked against jansson. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "http/http_int.h"

/* A heap copy of n bytes with one spare byte, as the request body has. */
static char *dup_body(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = 'X'; /* the parser may write here, never read it */
    return p;
}

static tsr_err parse_n(const char *s, size_t n, tsr_form *f, char **keep)
{
    char *b = dup_body(s, n);
    tsr_err rc;
    if (b == NULL)
        return TSR_ERR_NOMEM;
    rc = tsr_form_parse(b, n, f);
    *keep = b;
    return rc;
}

static tsr_err parse(const char *s, tsr_form *f, char **keep)
{
    return parse_n(s, strlen(s), f, keep);
}

static int get_is(const tsr_form *f, const char *name, const char *want)
{
    size_t n = 0;
    const char *v = tsr_form_get(f, name, &n);
    if (want == NULL)
        return v == NULL && n == 0;
    return v != NULL && n == strlen(want) && memcmp(v, want, n) == 0 && v[n] == '\0';
}

static void parses_password_grant(void)
{
    tsr_form f;
    char *b = NULL;

    CHECK(parse("grant_type=password&username=alice&password=s3cret%21&scope=read+write", &f,
                &b) == TSR_OK);
    CHECK(f.n == 4);
    CHECK(get_is(&f, "grant_type", "password"));
    CHECK(get_is(&f, "username", "alice"));
    CHECK(get_is(&f, "password", "s3cret!"));
    CHECK(get_is(&f, "scope", "read write"));
    CHECK(get_is(&f, "client_id", NULL));
    free(b);
}

static void decodes_plus_and_escapes(void)
{
    tsr_form f;
    char *b = NULL;

    CHECK(parse("a=%41%62%2b%2B+%20&b%5Fc=x%3Dy%26z&c=a=b", &f, &b) == TSR_OK);
    CHECK(get_is(&f, "a", "Ab++  "));
    CHECK(get_is(&f, "b_c", "x=y&z"));
    CHECK(get_is(&f, "c", "a=b")); /* only the first '=' separates */
    free(b);
    CHECK(parse("na+me=%E2%82%AC", &f, &b) == TSR_OK);
    CHECK(get_is(&f, "na me", "\xe2\x82\xac"));
    free(b);
}

static void empty_value_is_absent(void)
{
    tsr_form f;
    char *b = NULL;

    CHECK(parse("grant_type=&username=bob&password=", &f, &b) == TSR_OK);
    CHECK(f.n == 3);
    CHECK(get_is(&f, "grant_type", NULL));
    CHECK(get_is(&f, "password", NULL));
    CHECK(get_is(&f, "username", "bob"));
    free(b);
    /* The last value empty: its NUL lands on the spare byte. */
    CHECK(parse("a=", &f, &b) == TSR_OK);
    CHECK(f.n == 1 && f.f[0].value_len == 0 && f.f[0].value[0] == '\0');
    free(b);
}

static void rejects_duplicates(void)
{
    tsr_form f;
    char *b = NULL;

    CHECK(parse("grant_type=password&grant_type=refresh_token", &f, &b) == TSR_ERR_EXISTS);
    CHECK(f.n == 0);
    free(b);
    CHECK(parse("a=1&b=2&a=", &f, &b) == TSR_ERR_EXISTS);
    free(b);
    CHECK(parse("a=&a=1", &f, &b) == TSR_ERR_EXISTS);
    free(b);
    /* The same name once decoded. */
    CHECK(parse("password=x&pass%77ord=y", &f, &b) == TSR_ERR_EXISTS);
    free(b);
    CHECK(parse("a+b=1&a%20b=2", &f, &b) == TSR_ERR_EXISTS);
    free(b);
    /* Twins that differ are fine. */
    CHECK(parse("a=1&A=2&a_=3", &f, &b) == TSR_OK && f.n == 3);
    free(b);
}

static void rejects_bad_escapes(void)
{
    static const char *const bad[] = {"a=%",     "a=%4",   "a=%4g",  "a=%g4",  "a=%%41",
                                      "a=x%",    "%=1",    "a%2=1",  "a=%zz&b=1", "a=1&b=%-1",
                                      "a=% 1",   "a=%+1"};
    tsr_form f;
    char *b = NULL;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECKF(parse(bad[i], &f, &b) == TSR_ERR_INVALID, "%s", bad[i]);
        CHECK(f.n == 0);
        free(b);
    }
    /* Their valid twins. */
    CHECK(parse("a=%41", &f, &b) == TSR_OK && get_is(&f, "a", "A"));
    free(b);
    CHECK(parse("a=%ff", &f, &b) == TSR_OK && f.f[0].value_len == 1);
    free(b);
}

static void rejects_missing_equals_and_empty_name(void)
{
    static const char *const bad[] = {"a", "a=1&b", "b&a=1", "=x", "a=1&=2", "grant_type"};
    tsr_form f;
    char *b = NULL;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECKF(parse(bad[i], &f, &b) == TSR_ERR_INVALID, "%s", bad[i]);
        free(b);
    }
}

static void skips_empty_segments(void)
{
    tsr_form f;
    char *b = NULL;

    CHECK(parse("&a=1&&b=2&", &f, &b) == TSR_OK);
    CHECK(f.n == 2 && get_is(&f, "a", "1") && get_is(&f, "b", "2"));
    free(b);
    CHECK(parse("&&&", &f, &b) == TSR_OK && f.n == 0);
    free(b);
}

static void rejects_nul_bytes(void)
{
    tsr_form f;
    char *b = NULL;

    CHECK(parse_n("a=1\0&b=2", 8, &f, &b) == TSR_ERR_INVALID);
    free(b);
    CHECK(parse_n("a\0b=1", 5, &f, &b) == TSR_ERR_INVALID);
    free(b);
    CHECK(parse("a=x%00y", &f, &b) == TSR_ERR_INVALID);
    free(b);
    CHECK(parse("a%00=1", &f, &b) == TSR_ERR_INVALID);
    free(b);
    /* Other control bytes are data when escaped. */
    CHECK(parse("a=x%01%0a", &f, &b) == TSR_OK && get_is(&f, "a", "x\x01\n"));
    free(b);
}

static void empty_input_has_no_fields(void)
{
    tsr_form f;

    CHECK(tsr_form_parse(NULL, 0, &f) == TSR_OK && f.n == 0);
    CHECK(tsr_form_get(&f, "grant_type", NULL) == NULL);
    CHECK(tsr_form_parse(NULL, 3, &f) == TSR_ERR_INVALID);
}

static void bounds_size_and_count(void)
{
    size_t big = TSR_FORM_BODY_MAX + 1;
    char *s = malloc(big + 1);
    char *fields = malloc(TSR_FORM_FIELDS_MAX * 8 + 16);
    size_t used = 0;
    tsr_form f;

    CHECK(s != NULL && fields != NULL);
    if (s == NULL || fields == NULL)
        goto out;
    memcpy(s, "a=", 2);
    memset(s + 2, 'x', big - 2);
    CHECK(tsr_form_parse(s, big, &f) == TSR_ERR_TOO_LARGE);
    /* Exactly at the cap: one huge value is fine. */
    memcpy(s, "a=", 2);
    memset(s + 2, 'x', big - 2);
    CHECK(tsr_form_parse(s, big - 1, &f) == TSR_OK && f.n == 1 &&
          f.f[0].value_len == big - 3);
    /* TSR_FORM_FIELDS_MAX pairs parse, one more does not. */
    for (size_t i = 0; i < TSR_FORM_FIELDS_MAX; i++) {
        int n = snprintf(fields + used, 16, "%sk%zu=v", i ? "&" : "", i);
        used += (size_t)n;
    }
    {
        char *b = NULL;
        CHECK(parse_n(fields, used, &f, &b) == TSR_OK && f.n == TSR_FORM_FIELDS_MAX);
        free(b);
        memcpy(fields + used, "&zz=1", 5);
        CHECK(parse_n(fields, used + 5, &f, &b) == TSR_ERR_TOO_LARGE && f.n == 0);
        free(b);
    }
out:
    free(s);
    free(fields);
}

/* Every prefix of a valid body parses or fails cleanly (ASan watches the reads). */
static void every_prefix_is_safe(void)
{
    static const char body[] =
        "grant_type=refresh_token&refresh_token=abc%2Ddef_ghi&scope=a+b%20c&x=";
    tsr_form f;

    for (size_t n = 0; n <= sizeof body - 1; n++) {
        char *b = NULL;
        tsr_err rc = parse_n(body, n, &f, &b);
        CHECKF(rc == TSR_OK || rc == TSR_ERR_INVALID, "prefix %zu", n);
        if (rc == TSR_OK) {
            for (size_t i = 0; i < f.n; i++)
                CHECK(f.f[i].value[f.f[i].value_len] == '\0');
        }
        free(b);
    }
}

static void wipe_zeroes_the_value(void)
{
    tsr_form f;
    char *b = NULL;

    CHECK(parse("username=a&password=hunter22", &f, &b) == TSR_OK);
    tsr_form_wipe(&f, "password");
    tsr_form_wipe(&f, "absent");
    CHECK(f.f[1].value_len == 8);
    for (size_t i = 0; i < f.f[1].value_len; i++)
        CHECK(f.f[1].value[i] == '\0');
    CHECK(get_is(&f, "username", "a"));
    free(b);
}

static void json_object_of_strings(void)
{
    json_error_t err;
    json_t *ok = json_loads("{\"grant_type\":\"password\",\"username\":\"a\",\"scope\":\"\"}",
                            JSON_REJECT_DUPLICATES, &err);
    json_t *num = json_loads("{\"grant_type\":\"password\",\"n\":1}", 0, &err);
    json_t *nul = json_loads("{\"a\":\"x\\u0000y\"}", JSON_ALLOW_NUL, &err);
    json_t *empty_key = json_loads("{\"\":\"x\"}", 0, &err);
    json_t *arr = json_loads("[\"a\"]", 0, &err);
    tsr_form f;

    CHECK(ok != NULL && num != NULL && nul != NULL && empty_key != NULL && arr != NULL);
    CHECK(tsr_form_from_json(ok, &f) == TSR_OK && f.n == 3);
    CHECK(get_is(&f, "grant_type", "password"));
    CHECK(get_is(&f, "scope", NULL));
    CHECK(tsr_form_from_json(num, &f) == TSR_ERR_INVALID && f.n == 0);
    CHECK(tsr_form_from_json(nul, &f) == TSR_ERR_INVALID);
    CHECK(tsr_form_from_json(empty_key, &f) == TSR_ERR_INVALID);
    CHECK(tsr_form_from_json(arr, &f) == TSR_ERR_INVALID);
    CHECK(tsr_form_from_json(NULL, &f) == TSR_ERR_INVALID);
    json_decref(ok);
    json_decref(num);
    json_decref(nul);
    json_decref(empty_key);
    json_decref(arr);
}

static void jbuf_escapes_like_jansson(void)
{
    static const char nasty[] = "a\"b\\c\n\x01\x1f\x7f/\xc3\xa9";
    char buf[256];
    tsr_jbuf j;
    json_error_t err;
    json_t *v;

    tsr_jbuf_init(&j, buf, sizeof buf);
    tsr_jbuf_raw(&j, "{");
    tsr_jbuf_kv_str(&j, "s", nasty, sizeof nasty - 1);
    tsr_jbuf_raw(&j, ",\"roles\":");
    tsr_jbuf_roles(&j, "admin,ops.x,,a\"b");
    tsr_jbuf_kv_int(&j, "exp", -1234567890123LL);
    tsr_jbuf_raw(&j, ",\"e\":");
    tsr_jbuf_roles(&j, "");
    tsr_jbuf_raw(&j, "}");
    CHECK(!j.failed && j.len == strlen(buf));
    v = json_loadb(buf, j.len, JSON_REJECT_DUPLICATES, &err);
    CHECKF(v != NULL, "%s", buf);
    if (v == NULL)
        return;
    CHECK(json_string_length(json_object_get(v, "s")) == sizeof nasty - 1);
    CHECK(memcmp(json_string_value(json_object_get(v, "s")), nasty, sizeof nasty - 1) == 0);
    CHECK(json_array_size(json_object_get(v, "roles")) == 3);
    CHECK(strcmp(json_string_value(json_array_get(json_object_get(v, "roles"), 2)), "a\"b") == 0);
    CHECK(json_integer_value(json_object_get(v, "exp")) == -1234567890123LL);
    CHECK(json_array_size(json_object_get(v, "e")) == 0);
    json_decref(v);
}

static void jbuf_overflow_fails_and_stays_terminated(void)
{
    char buf[16];
    tsr_jbuf j;

    for (size_t cap = 1; cap <= sizeof buf; cap++) {
        tsr_jbuf_init(&j, buf, cap);
        tsr_jbuf_raw(&j, "{");
        tsr_jbuf_kv_str(&j, "k", "\x01value", 6);
        tsr_jbuf_raw(&j, "}");
        CHECKF(j.failed, "cap %zu", cap); /* {"k":"\u0001value"} is 20 bytes */
        CHECK(j.len < cap && buf[j.len] == '\0');
    }
    tsr_jbuf_init(&j, buf, 0);
    CHECK(j.failed);
}

int main(void)
{
    TSR_RUN(parses_password_grant);
    TSR_RUN(decodes_plus_and_escapes);
    TSR_RUN(empty_value_is_absent);
    TSR_RUN(rejects_duplicates);
    TSR_RUN(rejects_bad_escapes);
    TSR_RUN(rejects_missing_equals_and_empty_name);
    TSR_RUN(skips_empty_segments);
    TSR_RUN(rejects_nul_bytes);
    TSR_RUN(empty_input_has_no_fields);
    TSR_RUN(bounds_size_and_count);
    TSR_RUN(every_prefix_is_safe);
    TSR_RUN(wipe_zeroes_the_value);
    TSR_RUN(json_object_of_strings);
    TSR_RUN(jbuf_escapes_like_jansson);
    TSR_RUN(jbuf_overflow_fails_and_stays_terminated);
    return tsr_test_summary();
}
