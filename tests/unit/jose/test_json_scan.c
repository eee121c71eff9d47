/* test_json_scan.c: the allocation-free JSON reader of the verify path, checked
 * against jansson (JSON_REJECT_DUPLICATES), its plain reference. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "jose/jose_int.h"

/* jansson's verdict: one object, duplicates rejected, nothing after it. */
static int jansson_accepts(const char *s, size_t n)
{
    json_error_t e;
    json_t *v = json_loadb(s, n, JSON_REJECT_DUPLICATES, &e);
    int ok = v != NULL && json_is_object(v);
    json_decref(v);
    return ok;
}

static int scan_accepts(const char *s, size_t n)
{
    tsr_jmember m[TSR_JSON_KEYS_MAX];
    size_t count;
    /* A heap copy of exactly n bytes, so ASan sees any read past the end. */
    char *copy = malloc(n ? n : 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, s, n);
    int ok = tsr_json_scan_object(copy, n, m, TSR_JSON_KEYS_MAX, &count) == TSR_OK;
    free(copy);
    return ok;
}

static const char *corpus[] = {
    "{}",
    " { } ",
    "{\"a\":1}",
    "{\"iss\":\"https://auth.example.com\",\"sub\":\"usr_1\",\"aud\":[\"tessera\",\"x\"],"
    "\"exp\":1700000900,\"iat\":1700000000,\"nbf\":1700000000,\"jti\":\"abc\",\"sid\":\"s\","
    "\"scope\":\"openid\",\"roles\":[\"user\",\"admin\"]}",
    "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
    "{\"a\":{\"b\":[1,2.5,-3e2,true,false,null,{\"c\":\"\\u00e9\\n\\\"\"}]}}",
    "{\"s\":\"\\ud83d\\ude00 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
    "{\"n\":-0,\"m\":0.0,\"e\":1E+2,\"f\":1e-2,\"big\":9223372036854775807,"
    "\"small\":-9223372036854775808}",
    "{\"\":\"\",\"x\":[],\"y\":{}}",
    "{\"esc\":\"\\/\\\\\\b\\f\\r\\t\"}",
    /* Escaped and raw spellings of different characters are different keys. */
    "{\"\xc3\xa9\":1,\"\\u00e8\":2,\"\\u00e9x\":3,\"\\ud83d\\ude01\":4,\"\xf0\x9f\x98\x80\":5}",
};

static const char *rejected[] = {
    "",
    "[]",
    "1",
    "\"s\"",
    "{",
    "{\"a\":1,}",
    "{\"a\":1}x",
    "{\"a\":1}{}",
    "{\"a\" 1}",
    "{a:1}",
    "{'a':1}",
    "{\"a\":01}",
    "{\"a\":1.}",
    "{\"a\":.5}",
    "{\"a\":-}",
    "{\"a\":1e}",
    "{\"a\":+1}",
    "{\"a\":9223372036854775808}",
    "{\"a\":-9223372036854775809}",
    "{\"a\":1e400}",
    "{\"a\":tru}",
    "{\"a\":NaN}",
    "{\"a\":\"\\u0000\"}",
    "{\"a\":\"\\ud800\"}",
    "{\"a\":\"\\udc00\"}",
    "{\"a\":\"\\ud800\\u0041\"}",
    "{\"a\":\"\\x\"}",
    "{\"a\":\"\\u12\"}",
    "{\"a\":\"tab\there\"}",
    "{\"a\":\"\xc0\xaf\"}",
    "{\"a\":\"\xed\xa0\x80\"}",
    "{\"a\":\"\xf4\x90\x80\x80\"}",
    "{\"a\":\"\xff\"}",
    "{\"a\":\"\xe2\x82\"}",
    "{\"a\":1,\"a\":2}",
    "{\"a\":1,\"\\u0061\":2}",
    "{\"o\":{\"b\":1,\"b\":2}}",
    /* The same key, raw UTF-8 and escaped: duplicates after unescaping. */
    "{\"\xc3\xa9\":1,\"\\u00e9\":2}",
    "{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}",
    "{\"a\\nb\":1,\"a\\u000ab\":2}",
    "{\"a\":[1,]}",
    "{\"a\":[1 2]}",
};

static void accepts_what_jansson_accepts(void)
{
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        size_t n = strlen(corpus[i]);
        CHECKF(jansson_accepts(corpus[i], n), "corpus %zu not valid per jansson", i);
        CHECKF(scan_accepts(corpus[i], n) == 1, "corpus %zu refused", i);
    }
}

static void rejects_what_jansson_rejects(void)
{
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
        size_t n = strlen(rejected[i]);
        CHECKF(!jansson_accepts(rejected[i], n), "rejected %zu is valid per jansson", i);
        CHECKF(scan_accepts(rejected[i], n) == 0, "rejected %zu accepted: %s", i, rejected[i]);
    }
}

static void rejects_embedded_nul(void)
{
    const char s[] = "{\"a\":\"x\0y\"}";
    CHECK(scan_accepts(s, sizeof s - 1) == 0);
    CHECK(!jansson_accepts(s, sizeof s - 1));
}

/* Every prefix of every corpus entry: the same verdict as jansson. */
static void agrees_with_jansson_on_every_prefix(void)
{
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        size_t n = strlen(corpus[i]);
        for (size_t k = 0; k <= n; k++)
            CHECKF(scan_accepts(corpus[i], k) == jansson_accepts(corpus[i], k),
                   "corpus %zu prefix %zu", i, k);
    }
}

/* Random single and double byte mutations drawn from JSON-ish characters. */
static void agrees_with_jansson_on_mutations(void)
{
    static const char alphabet[] = "{}[]\":,\\/ 0123456789.eE+-tfnulrsa\x01\x7f\xc3\xa9\xed\xff";
    char buf[512];
    uint32_t r[4];
    long disagreements = 0;
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        size_t n = strlen(corpus[i]);
        for (int round = 0; round < 3000; round++) {
            if (tsr_rand(r, sizeof r) != TSR_OK)
                return;
            memcpy(buf, corpus[i], n);
            size_t len = n;
            for (int k = 0; k < 1 + (int)(r[3] % 2); k++) {
                size_t pos = r[k] % (len + 1);
                char c = alphabet[r[2 + k % 2] % (sizeof alphabet - 1)];
                switch (r[k] % 3) {
                case 0: /* replace */
                    if (pos < len)
                        buf[pos] = c;
                    break;
                case 1: /* insert */
                    if (len + 1 < sizeof buf) {
                        memmove(buf + pos + 1, buf + pos, len - pos);
                        buf[pos] = c;
                        len++;
                    }
                    break;
                default: /* delete */
                    if (pos < len) {
                        memmove(buf + pos, buf + pos + 1, len - pos - 1);
                        len--;
                    }
                }
            }
            int a = scan_accepts(buf, len), b = jansson_accepts(buf, len);
            if (a != b) {
                disagreements++;
                CHECKF(a == b, "corpus %zu mutation: scan %d jansson %d: %.*s", i, a, b,
                       (int)len, buf);
            }
        }
    }
    CHECK(disagreements == 0);
}

static void lists_members_and_unescapes(void)
{
    const char *s = "{\"sub\":\"a\\u00e9\\n\",\"exp\":1700000900,\"roles\":[\"x\",\"y\"],"
                    "\"\\u0069ss\":\"i\",\"r\":1.9}";
    tsr_jmember m[8];
    size_t count;
    char out[64];
    size_t n;
    int64_t t;
    CHECK(tsr_json_scan_object(s, strlen(s), m, 8, &count) == TSR_OK);
    CHECK(count == 5);
    const tsr_jv *v = tsr_json_find(m, count, "sub");
    CHECK(v != NULL && tsr_json_string(v, out, sizeof out, &n) == TSR_OK);
    CHECK(n == 4 && memcmp(out, "a\xc3\xa9\n", 4) == 0);
    CHECK(tsr_json_numeric(tsr_json_find(m, count, "exp"), &t) && t == 1700000900);
    CHECK(tsr_json_numeric(tsr_json_find(m, count, "r"), &t) && t == 1);
    /* An escaped spelling of a key is found by its plain name. */
    v = tsr_json_find(m, count, "iss");
    CHECK(v != NULL && tsr_json_string(v, out, sizeof out, &n) == TSR_OK && strcmp(out, "i") == 0);
    CHECK(tsr_json_find(m, count, "aud") == NULL);
    /* More members than the caller's array: refused, not truncated. */
    CHECK(tsr_json_scan_object(s, strlen(s), m, 2, &count) != TSR_OK);
}

static void refuses_deep_nesting(void)
{
    char buf[256];
    size_t n = 0;
    buf[n++] = '{';
    memcpy(buf + n, "\"a\":", 4);
    n += 4;
    for (int i = 0; i < TSR_JSON_DEPTH_MAX + 1; i++)
        buf[n++] = '[';
    for (int i = 0; i < TSR_JSON_DEPTH_MAX + 1; i++)
        buf[n++] = ']';
    buf[n++] = '}';
    CHECK(scan_accepts(buf, n) == 0);
}

int main(void)
{
    TSR_RUN(accepts_what_jansson_accepts);
    TSR_RUN(rejects_what_jansson_rejects);
    TSR_RUN(rejects_embedded_nul);
    TSR_RUN(agrees_with_jansson_on_every_prefix);
    TSR_RUN(agrees_with_jansson_on_mutations);
    TSR_RUN(lists_members_and_unescapes);
    TSR_RUN(refuses_deep_nesting);
    return tsr_test_summary();
}
