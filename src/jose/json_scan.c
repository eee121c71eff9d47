/* json_scan.c: a strict, allocation-free JSON reader for token headers and claims.
 *
 * Verifying a token parses two small JSON objects; jansson builds a tree with an
 * allocation per value and took most of a verify's time. This reader validates
 * the whole document to the same rules as jansson with JSON_REJECT_DUPLICATES
 * (UTF-8, escapes, no \u0000, paired surrogates, number ranges, duplicate keys at
 * every level after unescaping, nothing after the value) and lists the top-level
 * members as spans of the input. It is stricter in two bounded ways: nesting
 * deeper than TSR_JSON_DEPTH_MAX and objects with more than TSR_JSON_KEYS_MAX keys
 * are refused. tests/unit/jose/test_json_scan.c checks it against jansson. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jose/jose_int.h"

typedef struct scan {
    const uint8_t *p, *end;
    int depth;
} scan;

static void skip_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex4(const uint8_t *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* Length of a valid UTF-8 sequence at p (non-ASCII lead byte), 0 if invalid:
 * no overlongs, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* A string starting at the opening quote; on success v spans the contents. */
static int scan_string(scan *s, tsr_jv *v)
{
    const uint8_t *p = s->p + 1;
    v->type = TSR_JV_STRING;
    v->has_escape = 0;
    while (p < s->end) {
        uint8_t c = *p;
        if (c == '"') {
            v->p = (const char *)s->p + 1;
            v->n = (size_t)(p - s->p - 1);
            s->p = p + 1;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            v->has_escape = 1;
            if (p + 1 >= s->end)
                return 0;
            c = p[1];
            if (c == 'u') {
                uint32_t u, lo;
                if (s->end - p < 6 || !hex4(p + 2, &u) || u == 0)
                    return 0;
                p += 6;
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return 0;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (s->end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return 0;
                    p += 6;
                }
                continue;
            }
            if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' &&
                c != 'r' && c != 't')
                return 0;
            p += 2;
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n = utf8_seq(p, s->end);
        if (n == 0)
            return 0;
        p += n;
    }
    return 0;
}

#define NUM_MAX_CHARS 64

/* A validated JSON integer (optional '-', digits) into int64; 0 on overflow. */
static int parse_int64(const uint8_t *p, size_t n, int64_t *out)
{
    int neg = n > 0 && p[0] == '-';
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t i = (size_t)neg; i < n; i++) {
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (lim - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

/* A number per RFC 8259, within jansson's ranges: integers fit in int64, reals
 * are finite. */
static int scan_number(scan *s, tsr_jv *v)
{
    const uint8_t *p = s->p, *start = s->p;
    int is_real = 0;
    if (p < s->end && *p == '-')
        p++;
    if (p >= s->end)
        return 0;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return 0;
    }
    if (p < s->end && *p == '.') {
        is_real = 1;
        p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return 0;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        is_real = 1;
        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return 0;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - start);
    if (n > NUM_MAX_CHARS)
        return 0;
    if (is_real) {
        char buf[NUM_MAX_CHARS + 1];
        char *e = NULL;
        memcpy(buf, start, n);
        buf[n] = '\0';
        errno = 0;
        double d = strtod(buf, &e);
        if (e != buf + n || ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE))
            return 0;
    } else {
        int64_t iv;
        if (!parse_int64(start, n, &iv))
            return 0;
    }
    v->type = is_real ? TSR_JV_REAL : TSR_JV_INTEGER;
    v->p = (const char *)start;
    v->n = n;
    v->has_escape = 0;
    s->p = p;
    return 1;
}

static int scan_value(scan *s, tsr_jv *v);

/* Decodes one character of a validated string span at *pp (an escape or one raw
 * byte) into out as UTF-8, advances *pp, and returns the bytes written (1-4). */
static size_t unescape_one(const uint8_t **pp, uint8_t out[4])
{
    const uint8_t *p = *pp;
    uint32_t u = 0, lo = 0;
    size_t w = 0;

    if (*p != '\\') {
        out[0] = *p;
        *pp = p + 1;
        return 1;
    }
    *pp = p + 2;
    switch (p[1]) {
    case 'b': out[0] = '\b'; return 1;
    case 'f': out[0] = '\f'; return 1;
    case 'n': out[0] = '\n'; return 1;
    case 'r': out[0] = '\r'; return 1;
    case 't': out[0] = '\t'; return 1;
    case 'u': break;
    default: out[0] = p[1]; return 1; /* " \ / */
    }
    (void)hex4(p + 2, &u);
    p += 6;
    if (u >= 0xD800 && u <= 0xDBFF) {
        (void)hex4(p + 2, &lo);
        p += 6;
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    }
    *pp = p;
    if (u < 0x80) {
        out[w++] = (uint8_t)u;
    } else if (u < 0x800) {
        out[w++] = (uint8_t)(0xC0 | u >> 6);
        out[w++] = (uint8_t)(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
        out[w++] = (uint8_t)(0xE0 | u >> 12);
        out[w++] = (uint8_t)(0x80 | ((u >> 6) & 0x3F));
        out[w++] = (uint8_t)(0x80 | (u & 0x3F));
    } else {
        out[w++] = (uint8_t)(0xF0 | u >> 18);
        out[w++] = (uint8_t)(0x80 | ((u >> 12) & 0x3F));
        out[w++] = (uint8_t)(0x80 | ((u >> 6) & 0x3F));
        out[w++] = (uint8_t)(0x80 | (u & 0x3F));
    }
    return w;
}

/* Unescapes a string span into out (cap >= v->n suffices: escapes never grow). */
static size_t unescape(const tsr_jv *v, char *out)
{
    const uint8_t *p = (const uint8_t *)v->p, *end = p + v->n;
    size_t w = 0;
    if (!v->has_escape) {
        memcpy(out, v->p, v->n);
        return v->n;
    }
    while (p < end)
        w += unescape_one(&p, (uint8_t *)out + w);
    return w;
}

/* The unescaped bytes of a span, one at a time, with no buffer but four bytes. */
typedef struct ustream {
    const uint8_t *p, *end;
    uint8_t buf[4];
    size_t n, i;
} ustream;

static int us_next(ustream *u, uint8_t *c)
{
    if (u->i == u->n) {
        if (u->p >= u->end)
            return 0;
        u->n = unescape_one(&u->p, u->buf);
        u->i = 0;
    }
    *c = u->buf[u->i++];
    return 1;
}

/* Equal after unescaping? Spans without escapes compare directly; others are
 * decoded side by side without allocating (an attacker's header full of escaped
 * keys costs comparisons, not a malloc each). */
static int keys_equal(const tsr_jv *a, const tsr_jv *b)
{
    ustream ua = {(const uint8_t *)a->p, (const uint8_t *)a->p + a->n, {0}, 0, 0};
    ustream ub = {(const uint8_t *)b->p, (const uint8_t *)b->p + b->n, {0}, 0, 0};
    uint8_t x = 0, y = 0;

    if (!a->has_escape && !b->has_escape) {
        if (a->n != b->n || (a->n > 0 && a->p[0] != b->p[0]))
            return 0;
        return memcmp(a->p, b->p, a->n) == 0;
    }
    for (;;) {
        int ha = us_next(&ua, &x), hb = us_next(&ub, &y);
        if (ha != hb)
            return 0;
        if (!ha)
            return 1;
        if (x != y)
            return 0;
    }
}

/* An object starting at '{'. When members is not NULL the top-level members are
 * stored there (max of them). */
static int scan_object(scan *s, tsr_jmember *members, size_t max, size_t *count)
{
    tsr_jv keys[TSR_JSON_KEYS_MAX];
    size_t nk = 0;
    if (++s->depth > TSR_JSON_DEPTH_MAX)
        return 0;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        s->depth--;
        *count = 0;
        return 1;
    }
    for (;;) {
        tsr_jv key, val;
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"' || !scan_string(s, &key))
            return 0;
        if (nk == TSR_JSON_KEYS_MAX)
            return 0;
        for (size_t i = 0; i < nk; i++) {
            if (keys_equal(&keys[i], &key))
                return 0;
        }
        keys[nk++] = key;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return 0;
        s->p++;
        skip_ws(s);
        if (!scan_value(s, &val))
            return 0;
        if (members != NULL) {
            if (nk > max)
                return 0;
            members[nk - 1].key = key;
            members[nk - 1].val = val;
        }
        skip_ws(s);
        if (s->p >= s->end)
            return 0;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p == '}') {
            s->p++;
            break;
        }
        return 0;
    }
    s->depth--;
    *count = nk;
    return 1;
}

static int scan_array(scan *s)
{
    if (++s->depth > TSR_JSON_DEPTH_MAX)
        return 0;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        s->depth--;
        return 1;
    }
    for (;;) {
        tsr_jv val;
        skip_ws(s);
        if (!scan_value(s, &val))
            return 0;
        skip_ws(s);
        if (s->p >= s->end)
            return 0;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p == ']') {
            s->p++;
            break;
        }
        return 0;
    }
    s->depth--;
    return 1;
}

static int scan_literal(scan *s, const char *lit, size_t n, tsr_jv_type t, tsr_jv *v)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return 0;
    v->type = t;
    v->p = (const char *)s->p;
    v->n = n;
    v->has_escape = 0;
    s->p += n;
    return 1;
}

static int scan_value(scan *s, tsr_jv *v)
{
    const uint8_t *start = s->p;
    size_t dummy;
    if (s->p >= s->end)
        return 0;
    switch (*s->p) {
    case '"': return scan_string(s, v);
    case '{':
        if (!scan_object(s, NULL, 0, &dummy))
            return 0;
        v->type = TSR_JV_OBJECT;
        break;
    case '[':
        if (!scan_array(s))
            return 0;
        v->type = TSR_JV_ARRAY;
        break;
    case 't': return scan_literal(s, "true", 4, TSR_JV_TRUE, v);
    case 'f': return scan_literal(s, "false", 5, TSR_JV_FALSE, v);
    case 'n': return scan_literal(s, "null", 4, TSR_JV_NULL, v);
    default: return scan_number(s, v);
    }
    v->p = (const char *)start;
    v->n = (size_t)(s->p - start);
    v->has_escape = 0;
    return 1;
}

tsr_err tsr_json_scan_object(const char *json, size_t n, tsr_jmember *members, size_t max,
                             size_t *count)
{
    scan s = {(const uint8_t *)json, (const uint8_t *)json + n, 0};
    *count = 0;
    if (json == NULL)
        return TSR_ERR_INVALID;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{' || !scan_object(&s, members, max, count)) {
        *count = 0;
        return TSR_ERR_INVALID;
    }
    skip_ws(&s);
    if (s.p != s.end) {
        *count = 0;
        return TSR_ERR_INVALID;
    }
    return TSR_OK;
}

const tsr_jv *tsr_json_find(const tsr_jmember *m, size_t count, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < count; i++) {
        /* Registered names have no escapes; an escaped spelling is unescaped first. */
        if (!m[i].key.has_escape) {
            if (m[i].key.n == n && m[i].key.p[0] == name[0] && memcmp(m[i].key.p, name, n) == 0)
                return &m[i].val;
        } else {
            tsr_jv want = {TSR_JV_STRING, name, n, 0};
            if (keys_equal(&m[i].key, &want))
                return &m[i].val;
        }
    }
    return NULL;
}

tsr_err tsr_json_string(const tsr_jv *v, char *out, size_t cap, size_t *len)
{
    *len = 0;
    if (v == NULL || v->type != TSR_JV_STRING)
        return TSR_ERR_INVALID;
    if (cap < v->n + 1)
        return TSR_ERR_BUFFER;
    *len = unescape(v, out);
    out[*len] = '\0';
    return TSR_OK;
}

int tsr_json_numeric(const tsr_jv *v, int64_t *out)
{
    char buf[NUM_MAX_CHARS + 1];
    if (v == NULL || (v->type != TSR_JV_INTEGER && v->type != TSR_JV_REAL) ||
        v->n > NUM_MAX_CHARS)
        return 0;
    memcpy(buf, v->p, v->n);
    buf[v->n] = '\0';
    if (v->type == TSR_JV_INTEGER)
        return parse_int64((const uint8_t *)v->p, v->n, out);
    double d = strtod(buf, NULL);
    if (!isfinite(d) || d < -9.2e18 || d > 9.2e18)
        return 0;
    *out = (int64_t)floor(d);
    return 1;
}

tsr_err tsr_json_array_next(const tsr_jv *arr, size_t *pos, tsr_jv *elem, int *done)
{
    scan s;
    *done = 0;
    if (arr == NULL || arr->type != TSR_JV_ARRAY)
        return TSR_ERR_INVALID;
    s.p = (const uint8_t *)arr->p + (*pos == 0 ? 1 : *pos);
    s.end = (const uint8_t *)arr->p + arr->n;
    s.depth = 1; /* the array was validated by the document scan */
    skip_ws(&s);
    if (s.p < s.end && *s.p == ',') {
        s.p++;
        skip_ws(&s);
    }
    if (s.p < s.end && *s.p == ']') {
        *done = 1;
        return TSR_OK;
    }
    if (!scan_value(&s, elem))
        return TSR_ERR_INVALID;
    *pos = (size_t)(s.p - (const uint8_t *)arr->p);
    return TSR_OK;
}
