/* jwk.c: JSON Web Keys (RFC 7517/7518/8037): parse, serialise, thumbprint, PEM.
 *
 * Component bytes pass through stack buffers that are wiped on every path; the
 * key itself is validated by crypto (curve membership, RSA size, pair match). */
#include <stdlib.h>
#include <string.h>

#include "jose/jose_int.h"

#define JWK_COMPONENTS 10

json_t *tsr_jose_parse_object(const char *s, size_t n)
{
    json_error_t jerr;
    json_t *v;
    if (s == NULL)
        return NULL;
    v = json_loadb(s, n, JSON_REJECT_DUPLICATES, &jerr);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

tsr_err tsr_jose_member_b64(const json_t *obj, const char *name, uint8_t *out, size_t cap,
                            size_t *len, int *present)
{
    json_t *v = json_object_get(obj, name);
    *len = 0;
    *present = 0;
    if (v == NULL)
        return TSR_OK;
    *present = 1;
    if (!json_is_string(v))
        return TSR_ERR_INVALID;
    size_t sl = json_string_length(v);
    if (sl == 0 || tsr_b64url_decoded_max(sl) > cap)
        return TSR_ERR_INVALID;
    return tsr_b64url_decode(json_string_value(v), sl, out, cap, len) == TSR_OK
               ? TSR_OK
               : TSR_ERR_INVALID;
}

static tsr_kty kty_from_name(const char *s)
{
    if (strcmp(s, "oct") == 0)
        return TSR_KTY_OCT;
    if (strcmp(s, "RSA") == 0)
        return TSR_KTY_RSA;
    if (strcmp(s, "EC") == 0)
        return TSR_KTY_EC;
    if (strcmp(s, "OKP") == 0)
        return TSR_KTY_OKP;
    return TSR_KTY_INVALID;
}

static const char *kty_name(tsr_kty k)
{
    switch (k) {
    case TSR_KTY_OCT: return "oct";
    case TSR_KTY_RSA: return "RSA";
    case TSR_KTY_EC: return "EC";
    case TSR_KTY_OKP: return "OKP";
    default: return NULL;
    }
}

static tsr_curve curve_from_name(const char *s)
{
    if (strcmp(s, "P-256") == 0)
        return TSR_CURVE_P256;
    if (strcmp(s, "P-384") == 0)
        return TSR_CURVE_P384;
    if (strcmp(s, "P-521") == 0)
        return TSR_CURVE_P521;
    if (strcmp(s, "Ed25519") == 0)
        return TSR_CURVE_ED25519;
    return TSR_CURVE_NONE;
}

static const char *curve_name(tsr_curve c)
{
    switch (c) {
    case TSR_CURVE_P256: return "P-256";
    case TSR_CURVE_P384: return "P-384";
    case TSR_CURVE_P521: return "P-521";
    case TSR_CURVE_ED25519: return "Ed25519";
    default: return NULL;
    }
}

static tsr_alg alg_for_curve(tsr_curve c)
{
    switch (c) {
    case TSR_CURVE_P256: return TSR_ALG_ES256;
    case TSR_CURVE_P384: return TSR_ALG_ES384;
    case TSR_CURVE_P521: return TSR_ALG_ES512;
    case TSR_CURVE_ED25519: return TSR_ALG_EDDSA;
    default: return TSR_ALG_INVALID;
    }
}

static tsr_err kid_set(tsr_jwk *j, const char *kid, size_t n)
{
    if (n == 0 || n > TSR_KID_MAX || memchr(kid, '\0', n) != NULL)
        return TSR_ERR_INVALID;
    memcpy(j->kid, kid, n);
    j->kid[n] = '\0';
    j->kid_len = n;
    return TSR_OK;
}

/* Default kid: the RFC 7638 thumbprint for public-key types; for a symmetric key a
 * random id, since a hash of the secret would help guess a weak one. */
static tsr_err kid_default(tsr_jwk *j)
{
    tsr_err rc;
    if (tsr_key_kty(j->key) == TSR_KTY_OCT) {
        uint8_t r[16];
        size_t n;
        rc = tsr_rand(r, sizeof r);
        if (rc != TSR_OK)
            return rc;
        rc = tsr_b64url_encode(r, sizeof r, j->kid, sizeof j->kid, &n);
        j->kid_len = n;
        return rc;
    }
    rc = tsr_jwk_thumbprint(j, j->kid);
    j->kid_len = rc == TSR_OK ? TSR_THUMBPRINT_CHARS : 0;
    return rc;
}

tsr_err tsr_jwk_new(tsr_key *key, const char *kid, tsr_jwk **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_jwk *j = NULL;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (key == NULL)
        return TSR_ERR_INVALID;
    j = calloc(1, sizeof *j);
    if (j == NULL)
        return TSR_ERR_NOMEM;
    atomic_init(&j->refs, 1);
    j->key = tsr_key_ref(key);
    rc = kid != NULL ? kid_set(j, kid, strlen(kid)) : kid_default(j);
    if (rc != TSR_OK)
        goto out;
    *out = j;
    j = NULL;
    rc = TSR_OK;
out:
    tsr_jwk_free(j);
    return rc;
}

tsr_jwk *tsr_jwk_ref(tsr_jwk *k)
{
    if (k != NULL)
        atomic_fetch_add(&k->refs, 1);
    return k;
}

void tsr_jwk_free(tsr_jwk *k)
{
    if (k == NULL || atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    tsr_key_free(k->key);
    free(k);
}

const char *tsr_jwk_kid(const tsr_jwk *k) { return k ? k->kid : NULL; }
tsr_alg tsr_jwk_alg(const tsr_jwk *k) { return k ? tsr_key_alg(k->key) : TSR_ALG_INVALID; }
tsr_key *tsr_jwk_key(const tsr_jwk *k) { return k ? k->key : NULL; }

tsr_err tsr_jwk_from_json(const json_t *obj, tsr_alg alg_hint, tsr_jwk **out)
{
    static const char *names[JWK_COMPONENTS] = {"k", "n", "e", "d", "p", "q", "dp", "dq", "qi",
                                                "x"};
    tsr_err rc = TSR_ERR_INVALID;
    uint8_t buf[JWK_COMPONENTS + 1][TSR_KEY_COMPONENT_MAX_BYTES];
    tsr_bytes *slot[JWK_COMPONENTS + 1];
    tsr_key_parts parts;
    tsr_key *key = NULL;
    tsr_alg alg = TSR_ALG_INVALID;
    const json_t *v;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    memset(&parts, 0, sizeof parts);
    if (!json_is_object(obj))
        goto out;

    v = json_object_get(obj, "kty");
    if (!json_is_string(v))
        goto out;
    parts.kty = kty_from_name(json_string_value(v));
    if (parts.kty == TSR_KTY_INVALID) {
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }
    v = json_object_get(obj, "use");
    if (v != NULL && !(json_is_string(v) && strcmp(json_string_value(v), "sig") == 0)) {
        rc = TSR_ERR_UNSUPPORTED;
        goto out;
    }
    if (parts.kty == TSR_KTY_EC || parts.kty == TSR_KTY_OKP) {
        v = json_object_get(obj, "crv");
        if (!json_is_string(v))
            goto out;
        parts.crv = curve_from_name(json_string_value(v));
        if (parts.crv == TSR_CURVE_NONE ||
            (parts.crv == TSR_CURVE_ED25519) != (parts.kty == TSR_KTY_OKP)) {
            rc = TSR_ERR_UNSUPPORTED;
            goto out;
        }
    }

    /* The algorithm: the JWK's own, else the caller's hint, else the curve's. */
    v = json_object_get(obj, "alg");
    if (v != NULL) {
        if (!json_is_string(v))
            goto out;
        alg = tsr_alg_from_name(json_string_value(v), json_string_length(v));
        if (alg == TSR_ALG_INVALID) {
            rc = TSR_ERR_UNSUPPORTED;
            goto out;
        }
        if (alg_hint != TSR_ALG_INVALID && alg_hint != alg)
            goto out;
    } else if (alg_hint != TSR_ALG_INVALID) {
        alg = alg_hint;
    } else {
        alg = alg_for_curve(parts.crv);
        if (alg == TSR_ALG_INVALID)
            goto out;
    }
    if (tsr_alg_kty(alg) != parts.kty ||
        (parts.kty == TSR_KTY_EC && tsr_alg_curve(alg) != parts.crv))
        goto out;

    slot[0] = &parts.k;
    slot[1] = &parts.n;
    slot[2] = &parts.e;
    slot[3] = &parts.d;
    slot[4] = &parts.p;
    slot[5] = &parts.q;
    slot[6] = &parts.dp;
    slot[7] = &parts.dq;
    slot[8] = &parts.qi;
    slot[9] = &parts.x;
    slot[10] = &parts.y;
    for (int i = 0; i <= JWK_COMPONENTS; i++) {
        size_t len;
        int present;
        const char *name = i < JWK_COMPONENTS ? names[i] : "y";
        rc = tsr_jose_member_b64(obj, name, buf[i], sizeof buf[i], &len, &present);
        if (rc != TSR_OK)
            goto out;
        if (present) {
            slot[i]->p = buf[i];
            slot[i]->n = len;
        }
    }
    rc = tsr_key_from_parts(alg, &parts, &key);
    if (rc != TSR_OK)
        goto out;

    v = json_object_get(obj, "kid");
    if (v != NULL && !json_is_string(v)) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    if (v != NULL && json_string_length(v) > TSR_KID_MAX) {
        rc = TSR_ERR_INVALID;
        goto out;
    }
    rc = tsr_jwk_new(key, v != NULL ? json_string_value(v) : NULL, out);
out:
    tsr_key_free(key);
    tsr_wipe(buf, sizeof buf);
    return rc;
}

tsr_err tsr_jwk_parse(const char *json, size_t len, tsr_alg alg_hint, tsr_jwk **out)
{
    tsr_err rc;
    json_t *obj;
    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (len > TSR_JWK_MAX_BYTES)
        return TSR_ERR_TOO_LARGE;
    obj = tsr_jose_parse_object(json, len);
    if (obj == NULL)
        return TSR_ERR_INVALID;
    rc = tsr_jwk_from_json(obj, alg_hint, out);
    json_decref(obj);
    return rc;
}

tsr_err tsr_jwk_generate(tsr_alg alg, tsr_jwk **out)
{
    tsr_err rc;
    tsr_key *key = NULL;
    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    rc = tsr_key_generate(alg, 0, &key);
    if (rc != TSR_OK)
        return rc;
    rc = tsr_jwk_new(key, NULL, out);
    tsr_key_free(key);
    return rc;
}

tsr_err tsr_jwk_from_pem(tsr_alg alg, const char *pem, size_t len, const char *kid,
                         tsr_jwk **out)
{
    tsr_err rc;
    tsr_key *key = NULL;
    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    rc = tsr_key_from_pem(alg, pem, len, &key);
    if (rc != TSR_OK)
        return rc;
    rc = tsr_jwk_new(key, kid, out);
    tsr_key_free(key);
    return rc;
}

/* Sets obj[name] to the base64url of b (skipped when b is absent). */
static tsr_err set_b64(json_t *obj, const char *name, const tsr_bytes *b)
{
    char enc[TSR_KEY_COMPONENT_MAX_BYTES * 4 / 3 + 4];
    size_t n;
    tsr_err rc;
    if (b->p == NULL)
        return TSR_OK;
    rc = tsr_b64url_encode(b->p, b->n, enc, sizeof enc, &n);
    if (rc == TSR_OK && json_object_set_new(obj, name, json_stringn(enc, n)) != 0)
        rc = TSR_ERR_NOMEM;
    tsr_wipe(enc, sizeof enc);
    return rc;
}

tsr_err tsr_jwk_to_json(const tsr_jwk *k, int with_private, json_t **out)
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_key_parts parts;
    void *buf = NULL;
    json_t *obj = NULL;

    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    if (k == NULL)
        return TSR_ERR_INVALID;
    rc = tsr_key_export(k->key, with_private, &parts, &buf);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_ERR_NOMEM;
    obj = json_object();
    if (obj == NULL)
        goto out;
    if (json_object_set_new(obj, "kty", json_string(kty_name(parts.kty))) != 0 ||
        json_object_set_new(obj, "kid", json_string(k->kid)) != 0 ||
        json_object_set_new(obj, "use", json_string("sig")) != 0 ||
        json_object_set_new(obj, "alg", json_string(tsr_alg_name(tsr_key_alg(k->key)))) != 0)
        goto out;
    if (parts.crv != TSR_CURVE_NONE &&
        json_object_set_new(obj, "crv", json_string(curve_name(parts.crv))) != 0)
        goto out;
    const struct {
        const char *name;
        const tsr_bytes *b;
    } members[] = {{"n", &parts.n},   {"e", &parts.e},   {"x", &parts.x},   {"y", &parts.y},
                   {"d", &parts.d},   {"p", &parts.p},   {"q", &parts.q},   {"dp", &parts.dp},
                   {"dq", &parts.dq}, {"qi", &parts.qi}, {"k", &parts.k}};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        rc = set_b64(obj, members[i].name, members[i].b);
        if (rc != TSR_OK)
            goto out;
    }
    *out = obj;
    obj = NULL;
    rc = TSR_OK;
out:
    json_decref(obj);
    tsr_key_parts_buf_free(buf);
    return rc;
}

tsr_err tsr_jwk_dump(const tsr_jwk *k, int with_private, char **out)
{
    tsr_err rc;
    json_t *obj = NULL;
    if (out == NULL)
        return TSR_ERR_INVALID;
    *out = NULL;
    rc = tsr_jwk_to_json(k, with_private, &obj);
    if (rc != TSR_OK)
        return rc;
    *out = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    return *out != NULL ? TSR_OK : TSR_ERR_NOMEM;
}

void tsr_jwk_string_free(char *s)
{
    if (s == NULL)
        return;
    tsr_wipe(s, strlen(s));
    free(s);
}

tsr_err tsr_jwk_thumbprint(const tsr_jwk *k, char out[TSR_THUMBPRINT_CHARS + 1])
{
    tsr_err rc = TSR_ERR_INTERNAL;
    tsr_key_parts parts;
    void *buf = NULL;
    json_t *obj = NULL;
    char *canon = NULL;
    uint8_t digest[TSR_SHA256_BYTES];
    size_t n;

    if (out == NULL)
        return TSR_ERR_INVALID;
    out[0] = '\0';
    if (k == NULL)
        return TSR_ERR_INVALID;
    /* The required members only (RFC 7638 3.2), in lexicographic order, no spaces. */
    rc = tsr_key_export(k->key, tsr_key_kty(k->key) == TSR_KTY_OCT, &parts, &buf);
    if (rc != TSR_OK)
        goto out;
    rc = TSR_ERR_NOMEM;
    obj = json_object();
    if (obj == NULL)
        goto out;
    /* Members are added as they come; JSON_SORT_KEYS orders them on output. */
    {
        const tsr_bytes *b64[3] = {NULL, NULL, NULL};
        const char *b64n[3] = {NULL, NULL, NULL};
        switch (parts.kty) {
        case TSR_KTY_RSA:
            b64[0] = &parts.e, b64n[0] = "e";
            b64[1] = &parts.n, b64n[1] = "n";
            break;
        case TSR_KTY_EC:
            b64[1] = &parts.y, b64n[1] = "y";
            /* fall through */
        case TSR_KTY_OKP:
            b64[0] = &parts.x, b64n[0] = "x";
            if (json_object_set_new(obj, "crv", json_string(curve_name(parts.crv))) != 0)
                goto out;
            break;
        case TSR_KTY_OCT:
            b64[0] = &parts.k, b64n[0] = "k";
            break;
        default:
            rc = TSR_ERR_INVALID;
            goto out;
        }
        if (json_object_set_new(obj, "kty", json_string(kty_name(parts.kty))) != 0)
            goto out;
        for (int i = 0; i < 3 && b64[i] != NULL; i++) {
            rc = set_b64(obj, b64n[i], b64[i]);
            if (rc != TSR_OK)
                goto out;
        }
    }
    canon = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (canon == NULL) {
        rc = TSR_ERR_NOMEM;
        goto out;
    }
    rc = tsr_sha256(canon, strlen(canon), digest);
    if (rc != TSR_OK)
        goto out;
    rc = tsr_b64url_encode(digest, sizeof digest, out, TSR_THUMBPRINT_CHARS + 1, &n);
out:
    if (canon != NULL)
        tsr_jwk_string_free(canon);
    json_decref(obj);
    tsr_key_parts_buf_free(buf);
    return rc;
}
