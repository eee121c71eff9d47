/* form.c: the parameters of the OAuth endpoints: a strict
 * application/x-www-form-urlencoded parser (RFC 6749 appendix B, WHATWG
 * urlencoded), and the same view of a JSON object of strings.
 *
 * Strict where leniency would make two readings of one request possible: a
 * pair without '=', an empty name, an invalid %XX escape, a NUL byte (raw or
 * %00) and a repeated name (RFC 6749 3.2) are refused; empty segments ("a=1&&b=2",
 * a trailing '&') are skipped as every form encoder's reader does. Decoding is
 * done in place (the decoded text is never longer than the encoded one), so a
 * password in the body is never copied: wiping the body wipes it. */
#include "http/http_int.h"

#include <string.h>

#include "crypto/crypto.h"

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes buf[from, to) into buf starting at *wr ('+' is a space, %XX a byte),
 * NUL-terminates, and advances *wr past the NUL. *wr <= from on entry, so the
 * output never overtakes the input. */
static tsr_err decode_part(char *buf, size_t from, size_t to, size_t *wr, size_t *outlen)
{
    size_t w = *wr;
    size_t start = w;

    for (size_t i = from; i < to; i++) {
        char c = buf[i];
        if (c == '\0')
            return TSR_ERR_INVALID;
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;
            if (to - i < 3)
                return TSR_ERR_INVALID;
            hi = hex_val(buf[i + 1]);
            lo = hex_val(buf[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return TSR_ERR_INVALID;
            c = (char)(unsigned char)(hi * 16 + lo);
            i += 2;
        }
        buf[w++] = c;
    }
    buf[w] = '\0';
    *outlen = w - start;
    *wr = w + 1;
    return TSR_OK;
}

static int name_seen(const tsr_form *f, const char *name, size_t n)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->f[i].name_len == n && memcmp(f->f[i].name, name, n) == 0)
            return 1;
    }
    return 0;
}

tsr_err tsr_form_parse(char *buf, size_t len, tsr_form *out)
{
    tsr_err rc = TSR_ERR_INVALID;
    size_t rd = 0, wr = 0;

    memset(out, 0, sizeof *out);
    if (len == 0)
        return TSR_OK;
    if (buf == NULL)
        return TSR_ERR_INVALID;
    if (len > TSR_FORM_BODY_MAX) {
        rc = TSR_ERR_TOO_LARGE;
        goto out;
    }
    while (rd < len) {
        size_t end = rd, eq;
        size_t name_at, name_len = 0, value_at, value_len = 0;

        while (end < len && buf[end] != '&')
            end++;
        if (end == rd) { /* empty segment */
            rd = end + 1;
            continue;
        }
        eq = rd;
        while (eq < end && buf[eq] != '=')
            eq++;
        if (eq == end || eq == rd) { /* no '=', or an empty name */
            rc = TSR_ERR_INVALID;
            goto out;
        }
        if (out->n >= TSR_FORM_FIELDS_MAX) {
            rc = TSR_ERR_TOO_LARGE;
            goto out;
        }
        name_at = wr;
        rc = decode_part(buf, rd, eq, &wr, &name_len);
        if (rc != TSR_OK)
            goto out;
        if (name_seen(out, buf + name_at, name_len)) {
            rc = TSR_ERR_EXISTS;
            goto out;
        }
        value_at = wr;
        /* The value's NUL lands at most on the '&' (or buf[len], the caller's
         * terminator), both already read. */
        rc = decode_part(buf, eq + 1, end, &wr, &value_len);
        if (rc != TSR_OK)
            goto out;
        out->f[out->n].name = buf + name_at;
        out->f[out->n].name_len = name_len;
        out->f[out->n].value = buf + value_at;
        out->f[out->n].value_len = value_len;
        out->n++;
        rd = end + 1;
    }
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

tsr_err tsr_form_from_json(const json_t *obj, tsr_form *out)
{
    tsr_err rc = TSR_ERR_INVALID;
    const char *key;
    json_t *v;

    memset(out, 0, sizeof *out);
    if (obj == NULL || !json_is_object(obj))
        goto out;
    /* jansson's iteration macro takes a non-const object; it does not change it. */
    json_object_foreach((json_t *)(uintptr_t)obj, key, v) {
        size_t klen = strlen(key);
        const char *s;
        size_t slen;

        if (!json_is_string(v) || klen == 0) {
            rc = TSR_ERR_INVALID;
            goto out;
        }
        s = json_string_value(v);
        slen = json_string_length(v);
        if (memchr(s, '\0', slen) != NULL) { /* "\u0000" */
            rc = TSR_ERR_INVALID;
            goto out;
        }
        if (out->n >= TSR_FORM_FIELDS_MAX) {
            rc = TSR_ERR_TOO_LARGE;
            goto out;
        }
        out->f[out->n].name = key;
        out->f[out->n].name_len = klen;
        out->f[out->n].value = s;
        out->f[out->n].value_len = slen;
        out->n++;
    }
    rc = TSR_OK;
out:
    if (rc != TSR_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

static const tsr_form_field *field_find(const tsr_form *f, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < f->n; i++) {
        if (f->f[i].name_len == n && memcmp(f->f[i].name, name, n) == 0)
            return &f->f[i];
    }
    return NULL;
}

const char *tsr_form_get(const tsr_form *f, const char *name, size_t *len)
{
    const tsr_form_field *e = field_find(f, name);

    if (len != NULL)
        *len = 0;
    if (e == NULL || e->value_len == 0)
        return NULL;
    if (len != NULL)
        *len = e->value_len;
    return e->value;
}

void tsr_form_wipe(const tsr_form *f, const char *name)
{
    const tsr_form_field *e = field_find(f, name);

    /* The value lives in the request body or in jansson's string: both are
     * writable memory we own; the const is the reader's promise only. */
    if (e != NULL && e->value_len > 0)
        tsr_wipe((char *)(uintptr_t)e->value, e->value_len);
}

void tsr_form_wipe_all(const tsr_form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->f[i].value_len > 0)
            tsr_wipe((char *)(uintptr_t)f->f[i].value, f->f[i].value_len);
    }
}
